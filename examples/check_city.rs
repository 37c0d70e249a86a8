//! Checks a city config against its grid.
//!
//! ```text
//!   CITY.json ──┐
//!               ├─► City::new ──► summary, exit 0
//!   GRID.geojson┘              └► every problem, one per line, exit 1
//! ```
//!
//! ```text
//! cargo run --example check_city                          # the demo city
//! cargo run --example check_city -- CITY.json [GRID.geojson]
//! cargo run --example check_city -- --write-demo city.json --write-demo-grid grid.geojson
//! ```
//!
//! Without a grid file, the demo city's grid is used. Configs ending in `.toml` are read
//! (and written) as TOML, others as JSON.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use wangge::city::DutyLevel;
use wangge::config::CityConfig;
use wangge::{CategoryId, City, ConfigError, Grid, Holder, Platform, UnitKind};

#[derive(Parser)]
#[command(about = "Check a city config against its grid")]
struct Args {
    /// The city config (JSON, or TOML if the name ends in `.toml`); the demo city if
    /// omitted.
    city: Option<String>,
    /// The grid (GeoJSON); the demo city's grid if omitted.
    grid: Option<String>,
    /// Write the demo city's config to this file (TOML if it ends in `.toml`) and exit.
    #[arg(long)]
    write_demo: Option<String>,
    /// Write the demo city's grid to this file and exit.
    #[arg(long)]
    write_demo_grid: Option<String>,
}

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.write_demo.is_some() || args.write_demo_grid.is_some() {
        if let Some(out) = &args.write_demo {
            let config = wangge::demo::demo_config();
            let text = if out.ends_with(".toml") {
                config.to_toml()?
            } else {
                config.to_json()
            };
            std::fs::write(out, text)?;
            println!("wrote the demo city config to {out}");
        }
        if let Some(out) = &args.write_demo_grid {
            std::fs::write(out, wangge::demo::demo_city_grid().to_geojson())?;
            println!("wrote the demo city grid to {out}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let started = Instant::now();
    let grid = match &args.grid {
        Some(path) => match Grid::from_geojson(&std::fs::read_to_string(path)?) {
            Ok(g) => g,
            Err(e) => {
                println!("{path}: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => wangge::demo::demo_city_grid(),
    };
    let grid_time = started.elapsed();
    let started = Instant::now();
    // The config is kept: the self-check below works out admission again from it.
    let (label, config) = match &args.city {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let read = if path.ends_with(".toml") {
                CityConfig::from_toml
            } else {
                CityConfig::from_json
            };
            (path.clone(), read(&text))
        }
        None => (
            "demo city".to_string(),
            wangge::demo::demo_config_for(&grid),
        ),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            println!("{label}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let result = City::new(&config, grid);
    let city_time = started.elapsed();
    let city = match result {
        Ok(city) => city,
        Err(ConfigError::Problems(problems)) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{label}: {} problem(s)", problems.len());
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            println!("{label}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };

    println!("{label}: valid");
    println!("{city}");
    let n = |k| city.units_of(k).len();
    println!(
        "units: {} districts, {} street offices, {} communities ({} villages)",
        n(UnitKind::District),
        n(UnitKind::Street),
        n(UnitKind::Community),
        city.units().iter().filter(|u| u.village).count()
    );
    let mut per_platform = [0usize; 4];
    for c in city.categories() {
        per_platform[c.platform.index()] += 1;
    }
    let platforms: Vec<String> = Platform::ALL
        .iter()
        .map(|p| format!("{} {}", p.name_zh(), per_platform[p.index()]))
        .collect();
    println!("categories by platform: {}", platforms.join(", "));

    // Admission over every cell and category: where cases go, and how fast the answer is.
    let started = Instant::now();
    let mut held = [0usize; 3];
    for cell in city.grid().ids() {
        for k in 0..city.categories().len() {
            let category = CategoryId::from_index(k).ok_or("category index")?;
            match city.admit(cell, category)?.holder {
                Holder::Community(_) => held[0] += 1,
                Holder::Street { .. } => held[1] += 1,
                Holder::Department(_) => held[2] += 1,
            }
        }
    }
    let admit_time = started.elapsed();
    let total: usize = held.iter().sum();
    let mismatches = recheck(&config, &city, held)?;
    if !mismatches.is_empty() {
        for m in mismatches.iter().take(20) {
            println!("self-check: {m}");
        }
        println!(
            "{label}: the city disagrees with its config in {} place(s)",
            mismatches.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "admission over {total} (cell, category) pairs: {} community, {} street office, {} referred \
         ({:.1} ns each)",
        held[0],
        held[1],
        held[2],
        admit_time.as_nanos() as f64 / total as f64
    );
    if let (Some(cell), Some(k)) = (city.grid().ids().next(), city.category_id("ZF-02")) {
        println!("e.g. {}", city.explain(&city.admit(cell, k)?));
    }
    println!(
        "grid {:.1} ms, city {:.1} ms, tables {} KiB",
        grid_time.as_secs_f64() * 1e3,
        city_time.as_secs_f64() * 1e3,
        city.table_bytes() / 1024
    );
    Ok(ExitCode::SUCCESS)
}

/// Where a case must go, worked out again from the config and the grid's own cell
/// properties, with none of the city's tables: the cell's community if its list (the
/// level's list, less its override's removals, plus its additions) holds the category,
/// else its street office (through the organ that owns the category's platform) if its
/// list does, else the district department that owns the category.
///
/// Returns every disagreement with `city`: per (cell, category) holder, the admission
/// counts `held` (community, street office, referred) that `main` printed, the unit and
/// category counts, and each community's cells.
fn recheck(
    config: &CityConfig,
    city: &City,
    held: [usize; 3],
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let list = |base: &[String], unit: &str| -> HashSet<String> {
        let mut codes: HashSet<String> = base.iter().cloned().collect();
        for o in config
            .duty_lists
            .overrides
            .iter()
            .filter(|o| o.unit == unit)
        {
            for code in &o.remove {
                codes.remove(code);
            }
            codes.extend(o.add.iter().cloned());
        }
        codes
    };
    let streets: HashMap<&str, _> = config.streets.iter().map(|s| (s.id.as_str(), s)).collect();
    let dept_district: HashMap<&str, &str> = config
        .departments
        .iter()
        .map(|d| (d.id.as_str(), d.district.as_str()))
        .collect();
    // The expected holder of every category, per community, as "kind id".
    let mut expected: HashMap<&str, Vec<String>> = HashMap::new();
    for m in &config.communities {
        let street = streets
            .get(m.street.as_str())
            .ok_or_else(|| format!("community {} names no street office", m.id))?;
        let community_list = list(&config.duty_lists.community, &m.id);
        let street_list = list(&config.duty_lists.street, &street.id);
        let row = config
            .categories
            .iter()
            .map(|k| {
                if community_list.contains(&k.code) && k.level <= DutyLevel::Community {
                    format!("community {}", m.id)
                } else if street_list.contains(&k.code) && k.level <= DutyLevel::Street {
                    let organ = street
                        .organs
                        .iter()
                        .find(|o| o.mandatory.map(|m| m.platform()) == Some(k.platform))
                        .map_or("?", |o| o.id.as_str());
                    format!("street {} organ {organ}", street.id)
                } else {
                    let dept = k
                        .departments
                        .iter()
                        .find(|d| dept_district.get(d.as_str()) == Some(&street.district.as_str()))
                        .map_or("?", |d| d.as_str());
                    format!("department {dept}")
                }
            })
            .collect();
        expected.insert(m.id.as_str(), row);
    }

    let mut problems = Vec::new();
    let mut want_held = [0usize; 3];
    for (i, cell) in city.grid().cells().iter().enumerate() {
        let id = wangge::CellId::from_index(i).ok_or("cell index")?;
        let Some(row) = cell.community.as_deref().and_then(|c| expected.get(c)) else {
            problems.push(format!("cell {}: no community in the config", cell.name));
            continue;
        };
        for (k, want) in row.iter().enumerate() {
            want_held[match want.split(' ').next() {
                Some("community") => 0,
                Some("street") => 1,
                _ => 2,
            }] += 1;
            let category = CategoryId::from_index(k).ok_or("category index")?;
            let got = match city.admit(id, category)?.holder {
                Holder::Community(c) => format!("community {}", unit_id(city, c)),
                Holder::Street { street, organ } => format!(
                    "street {} organ {}",
                    unit_id(city, street),
                    city.organ(organ).map_or("?", |o| o.id.as_str())
                ),
                Holder::Department(d) => format!(
                    "department {}",
                    city.department(d).map_or("?", |d| d.id.as_str())
                ),
            };
            if &got != want {
                problems.push(format!(
                    "cell {} category {}: admitted to {got}, the config says {want}",
                    cell.name, config.categories[k].code
                ));
            }
        }
    }
    if held != want_held {
        problems.push(format!(
            "admission counts (community, street office, referred) {held:?}, the config gives \
             {want_held:?}"
        ));
    }

    let counts = [
        (UnitKind::District, config.districts.len()),
        (UnitKind::Street, config.streets.len()),
        (UnitKind::Community, config.communities.len()),
    ];
    for (kind, want) in counts {
        let got = city.units_of(kind).len();
        if got != want {
            problems.push(format!(
                "{got} units of kind {kind:?}, the config lists {want}"
            ));
        }
    }
    let villages = config.communities.iter().filter(|m| m.village).count();
    let got = city.units().iter().filter(|u| u.village).count();
    if got != villages {
        problems.push(format!("{got} villages, the config lists {villages}"));
    }
    for p in Platform::ALL {
        let want = config.categories.iter().filter(|k| k.platform == p).count();
        let got = city.categories().iter().filter(|k| k.platform == p).count();
        if got != want {
            problems.push(format!("{got} categories on {p}, the config lists {want}"));
        }
    }
    // Every cell listed once, under the community its own properties name.
    let mut listed = 0;
    for c in city.units_of(UnitKind::Community) {
        let name = unit_id(city, c);
        for &cell in city.community_cells(c) {
            listed += 1;
            let own = city.grid().cell(cell).and_then(|x| x.community.as_deref());
            if own != Some(name) {
                problems.push(format!(
                    "community {name} lists cell {cell:?}, whose community is {own:?}"
                ));
            }
        }
    }
    if listed != city.grid().len() {
        problems.push(format!(
            "communities list {listed} cells, the grid has {}",
            city.grid().len()
        ));
    }
    Ok(problems)
}

fn unit_id(city: &City, id: wangge::UnitId) -> &str {
    city.unit(id).map_or("?", |u| u.id.as_str())
}
