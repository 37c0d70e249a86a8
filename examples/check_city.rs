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

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use wangge::config::CityConfig;
use wangge::{City, ConfigError, Grid, Holder, Platform, UnitKind};

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
    let (label, result) = match &args.city {
        Some(path) => {
            let text = std::fs::read_to_string(path)?;
            let read = if path.ends_with(".toml") {
                City::from_toml
            } else {
                City::from_json
            };
            (path.clone(), read(&text, grid))
        }
        None => {
            let config: CityConfig = wangge::demo::demo_config_for(&grid)?;
            ("demo city".to_string(), City::new(&config, grid))
        }
    };
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
            let category = wangge::CategoryId::from_index(k).ok_or("category index")?;
            match city.admit(cell, category)?.holder {
                Holder::Community(_) => held[0] += 1,
                Holder::Street { .. } => held[1] += 1,
                Holder::Department(_) => held[2] += 1,
            }
        }
    }
    let admit_time = started.elapsed();
    let total: usize = held.iter().sum();
    assert_eq!(total, city.grid().len() * city.categories().len());
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
