//! The built-in demo city: a Qingdao-like city that examples and tests use.
//!
//! [`demo_config_for`] derives the units from any grid whose cells name their district,
//! street office and community, and fills in the rest as a command center would: the
//! organs of every street office (real names, within each district's organ limit), district
//! departments, agencies sent down by vertical departments, a catalogue across the four
//! platforms with realistic deadlines, duty lists with a few per-unit overrides, service
//! points and a few hundred multi-role workers. Everything is deterministic.
//!
//! The catalogue (roles, service items, categories, default duty lists) and the templates of
//! the departments, organs, agencies and street forces are data, `src/city/demo.toml`, in
//! the crate's own config format and compiled into the crate; the code expands them per
//! district and street office.

use crate::rng::SplitMix64;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::config::{
    AgencyConfig, CategoryConfig, CityConfig, CommunityConfig, DEFAULT_MAX_ORGANS,
    DepartmentConfig, DistrictConfig, DutyListsConfig, DutyOverrideConfig, OrganConfig, Platform,
    RoleConfig, ServiceItemConfig, ServicePointConfig, StreetConfig, UnitConfig, WorkerConfig,
    WorkerKind,
};
use super::error::{ConfigError, ConfigProblem, ConfigProblemKind};
use super::model::City;
use crate::grid::{CellId, Grid, Location};

/// The demo's catalogue and organisation templates, kept as data in the crate's own config
/// format (`demo.toml`): department, organ and agency ids there are keys that
/// [`demo_config_for`] expands per district and street office.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalogue {
    roles: Vec<RoleConfig>,
    service_items: Vec<ServiceItemConfig>,
    departments: Vec<DepartmentTemplate>,
    /// Mandatory organs first, so that a district's lower organ limit keeps them.
    organs: Vec<OrganConfig>,
    agencies: Vec<AgencyTemplate>,
    categories: Vec<CategoryConfig>,
    /// The default lists; the per-unit overrides are generated.
    duty_lists: DutyListsConfig,
    forces: Vec<ForceTemplate>,
}

/// A district department: `<district>-<id>`, named `<district><name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentTemplate {
    id: String,
    name: String,
    #[serde(default)]
    reports_to: Option<String>,
}

/// An agency in every street office: `<street>-<id>`, named `<short street name><name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyTemplate {
    id: String,
    name: String,
    department: String,
    platform: Platform,
}

/// A street office's own force: `count` workers of the organ or agency `unit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceTemplate {
    unit: String,
    count: usize,
    kind: WorkerKind,
    roles: Vec<String>,
}

const CATALOGUE_TOML: &str = include_str!("demo.toml");

fn parse_catalogue() -> Result<Catalogue, toml::de::Error> {
    toml::from_str(CATALOGUE_TOML)
}

/// The embedded catalogue, parsed once.
fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    // The file is compiled in and parsed by this module's tests: only a broken file fails.
    CATALOGUE.get_or_init(|| parse_catalogue().expect("src/city/demo.toml is a valid catalogue"))
}

/// The grid of the demo city: the built-in demo grid
/// ([`generate::demo_grid`](crate::generate::demo_grid)), about 3,200 cells of 500 m over
/// Qingdao's districts, each naming its district, street office and community.
pub fn demo_city_grid() -> Grid {
    crate::grid::generate::demo_grid()
}

/// The config of the demo city over [`demo_city_grid`].
pub fn demo_config() -> CityConfig {
    // The demo grid names every parent consistently; tests check this.
    demo_config_for(&demo_city_grid()).expect("the demo grid names every parent")
}

/// The demo city: [`demo_config`] over [`demo_city_grid`], validated.
pub fn demo_city() -> City {
    let grid = demo_city_grid();
    let config = demo_config_for(&grid).expect("the demo grid names every parent");
    // The demo config is data of this crate, checked by its tests.
    City::new(&config, grid).expect("the demo city is valid")
}

/// A point inside cell `id`: its envelope's center if the cell covers it, else a point of
/// a sampled lattice over the envelope, else a vertex (on the closed boundary).
fn point_in(grid: &Grid, id: CellId) -> Option<Location> {
    let [x0, y0, x1, y1] = grid.cell_bounds(id)?;
    const STEPS: usize = 7;
    let center = std::iter::once((0.5, 0.5));
    let lattice = (1..STEPS)
        .flat_map(|i| (1..STEPS).map(move |j| (i as f64 / STEPS as f64, j as f64 / STEPS as f64)));
    for (fx, fy) in center.chain(lattice) {
        if let Ok(p) = Location::new(x0 + (x1 - x0) * fx, y0 + (y1 - y0) * fy)
            && grid.covers(id, p)
        {
            return Some(p);
        }
    }
    let [lon, lat] = *grid.cell(id)?.polygons.first()?.exterior.first()?;
    Location::new(lon, lat).ok()
}

/// Cells of the same community whose envelope touches `id`'s, in id order.
fn touching(grid: &Grid, id: CellId, community: &str) -> Vec<CellId> {
    let Some([x0, y0, x1, y1]) = grid.cell_bounds(id) else {
        return Vec::new();
    };
    let eps = 1e-9;
    let mut out: Vec<CellId> = grid
        .cells_near([x0 - eps, y0 - eps], [x1 + eps, y1 + eps])
        .filter(|&c| c != id && grid[c].community.as_deref() == Some(community))
        .collect();
    out.sort_unstable();
    out
}

/// The demo city's config for any grid whose cells name their district, street office
/// and community: units are derived from the cells' parent names (which become the units'
/// ids), and the rest is generated deterministically around them.
///
/// # Errors
/// [`ConfigError::Problems`] naming each cell without a community, street office or
/// district, and each cell whose community was already seen under another street office
/// (or street office under another district).
pub fn demo_config_for(grid: &Grid) -> Result<CityConfig, ConfigError> {
    config_for(grid, None)
}

/// [`demo_config_for`] with about `workers` workers in all (at least one per community,
/// two street-office staff per street office and each street office's own forces): for
/// generated cities of any size, such as the benchmark city.
///
/// # Errors
/// As [`demo_config_for`].
pub fn demo_config_with_workers(grid: &Grid, workers: usize) -> Result<CityConfig, ConfigError> {
    config_for(grid, Some(workers))
}

fn config_for(grid: &Grid, workers_wanted: Option<usize>) -> Result<CityConfig, ConfigError> {
    let mut problems = Vec::new();
    let mut districts: Vec<String> = Vec::new();
    let mut streets: Vec<(String, String)> = Vec::new();
    let mut communities: Vec<(String, String)> = Vec::new();
    let mut street_of: HashMap<String, usize> = HashMap::new();
    let mut community_of: HashMap<String, usize> = HashMap::new();
    let mut community_cells: Vec<Vec<CellId>> = Vec::new();
    for (i, cell) in grid.cells().iter().enumerate() {
        let path = format!("grid.cells[{i}]");
        let parents = [
            ("district", &cell.district),
            ("street", &cell.street),
            ("community", &cell.community),
        ];
        let mut missing = false;
        for (field, value) in parents {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                missing = true;
                problems.push(ConfigProblem {
                    path: format!("{path}.{field}"),
                    kind: ConfigProblemKind::CellWithoutParent {
                        cell: cell.name.clone(),
                        field,
                    },
                });
            }
        }
        let (Some(d), Some(s), Some(m), false) =
            (&cell.district, &cell.street, &cell.community, missing)
        else {
            continue;
        };
        let mismatch = |field: &'static str, found: &str, expected: &str| ConfigProblem {
            path: format!("{path}.{field}"),
            kind: ConfigProblemKind::CellParentMismatch {
                cell: cell.name.clone(),
                field,
                found: found.to_string(),
                expected: expected.to_string(),
            },
        };
        if !districts.contains(d) {
            districts.push(d.clone());
        }
        match street_of.get(s) {
            Some(&k) if streets[k].1 != *d => {
                problems.push(mismatch("district", d, &streets[k].1));
                continue;
            }
            Some(_) => {}
            None => {
                street_of.insert(s.clone(), streets.len());
                streets.push((s.clone(), d.clone()));
            }
        }
        let k = match community_of.get(m) {
            Some(&k) if communities[k].1 != *s => {
                problems.push(mismatch("street", s, &communities[k].1));
                continue;
            }
            Some(&k) => k,
            None => {
                community_of.insert(m.clone(), communities.len());
                communities.push((m.clone(), s.clone()));
                community_cells.push(Vec::new());
                communities.len() - 1
            }
        };
        community_cells[k].push(CellId(i as u32));
    }
    if !problems.is_empty() {
        return Err(ConfigError::Problems(problems));
    }

    let cat = catalogue();
    let mut rng = SplitMix64(0x5eed_c17a_9e00_0001);
    let dept_id = |district: &str, key: &str| format!("{district}-{key}");

    let district_configs: Vec<DistrictConfig> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| DistrictConfig {
            id: d.clone(),
            name: d.clone(),
            // Districts may set a lower organ limit than the city's 12.
            max_organs: match i % 4 {
                1 => Some(10),
                2 => Some(7),
                _ => None,
            },
        })
        .collect();
    let limit_of: HashMap<&str, u32> = district_configs
        .iter()
        .map(|d| (d.id.as_str(), d.max_organs.unwrap_or(DEFAULT_MAX_ORGANS)))
        .collect();

    let departments: Vec<DepartmentConfig> = districts
        .iter()
        .flat_map(|d| {
            cat.departments.iter().map(move |t| DepartmentConfig {
                id: dept_id(d, &t.id),
                name: format!("{d}{}", t.name),
                district: d.clone(),
                reports_to: t.reports_to.as_deref().map(|u| dept_id(d, u)),
            })
        })
        .collect();

    let short = |s: &str| {
        s.trim_end_matches("街道")
            .trim_end_matches('镇')
            .to_string()
    };
    let street_configs: Vec<StreetConfig> = streets
        .iter()
        .map(|(s, d)| {
            let limit = limit_of
                .get(d.as_str())
                .copied()
                .unwrap_or(DEFAULT_MAX_ORGANS);
            let count = (limit as usize).min(cat.organs.len());
            StreetConfig {
                id: s.clone(),
                name: s.clone(),
                district: d.clone(),
                organs: cat.organs[..count]
                    .iter()
                    .map(|o| OrganConfig {
                        id: format!("{s}-{}", o.id),
                        departments: o.departments.iter().map(|k| dept_id(d, k)).collect(),
                        ..o.clone()
                    })
                    .collect(),
            }
        })
        .collect();

    let agencies: Vec<AgencyConfig> = streets
        .iter()
        .flat_map(|(s, d)| {
            let short = short(s);
            cat.agencies.iter().map(move |t| AgencyConfig {
                id: format!("{s}-{}", t.id),
                name: format!("{short}{}", t.name),
                department: dept_id(d, &t.department),
                street: s.clone(),
                platform: Some(t.platform),
            })
        })
        .collect();

    let community_configs: Vec<CommunityConfig> = communities
        .iter()
        .map(|(m, s)| CommunityConfig {
            id: m.clone(),
            name: m.clone(),
            street: s.clone(),
            village: m.ends_with('村'),
        })
        .collect();

    // Each category is owned in every district by that district's department of its key.
    let categories: Vec<CategoryConfig> = cat
        .categories
        .iter()
        .map(|k| CategoryConfig {
            departments: districts
                .iter()
                .flat_map(|d| k.departments.iter().map(move |key| dept_id(d, key)))
                .collect(),
            ..k.clone()
        })
        .collect();

    let mut overrides = Vec::new();
    // Every third street office has a market-supervision team of its own for food-safety
    // complaints; elsewhere they go to the district's market-supervision bureau.
    for (i, (s, _)) in streets.iter().enumerate() {
        if i % 3 == 0 {
            overrides.push(DutyOverrideConfig {
                unit: s.clone(),
                add: vec!["ZF-09".into()],
                remove: Vec::new(),
            });
        }
    }
    // Villages, and every seventh community, leave public-order risks to their police
    // station (through the street office); every fifth community, with a property
    // committee, takes property disputes.
    for (i, (m, _)) in communities.iter().enumerate() {
        if m.ends_with('村') || i % 7 == 3 {
            overrides.push(DutyOverrideConfig {
                unit: m.clone(),
                add: Vec::new(),
                remove: vec!["ZZ-04".into()],
            });
        } else if i % 5 == 0 {
            overrides.push(DutyOverrideConfig {
                unit: m.clone(),
                add: vec!["ZZ-05".into()],
                remove: Vec::new(),
            });
        }
    }
    let duty_lists = DutyListsConfig {
        community: cat.duty_lists.community.clone(),
        street: cat.duty_lists.street.clone(),
        overrides,
    };

    let position = |id: CellId| point_in(grid, id).map(|p| [p.lon(), p.lat()]);
    let mut service_points = Vec::new();
    for (s, _) in &streets {
        let cells: Vec<CellId> = communities
            .iter()
            .zip(&community_cells)
            .filter(|((_, st), _)| st == s)
            .flat_map(|(_, cs)| cs.iter().copied())
            .collect();
        if let Some(pos) = cells.get(cells.len() / 2).and_then(|&c| position(c)) {
            service_points.push(ServicePointConfig {
                id: format!("{s}-bmfwzx"),
                name: format!("{}便民服务中心", short(s)),
                unit: s.clone(),
                position: pos,
                items: cat.service_items.iter().map(|i| i.id.clone()).collect(),
            });
        }
    }
    for ((m, _), cells) in communities.iter().zip(&community_cells) {
        if let Some(pos) = cells.first().and_then(|&c| position(c)) {
            service_points.push(ServicePointConfig {
                id: format!("{m}-bmfwz"),
                name: format!("{m}便民服务站"),
                unit: m.clone(),
                position: pos,
                items: vec!["social_insurance".into(), "elderly_card".into()],
            });
        }
    }

    let forces = street_forces(
        grid,
        &street_configs,
        &agencies,
        &communities,
        &community_cells,
        &mut rng,
    );
    let mut workers = demo_workers(
        grid,
        &communities,
        &community_cells,
        workers_wanted.map(|w| w.saturating_sub(forces.len())),
        &mut rng,
    );
    workers.extend(forces);

    Ok(CityConfig {
        city: UnitConfig {
            id: "qingdao".into(),
            name: "青岛市".into(),
        },
        max_organs: DEFAULT_MAX_ORGANS,
        districts: district_configs,
        streets: street_configs,
        communities: community_configs,
        departments,
        agencies,
        roles: cat.roles.clone(),
        service_items: cat.service_items.clone(),
        categories,
        duty_lists,
        service_points,
        workers,
    })
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "高", "罗",
];
const GIVEN: [&str; 16] = [
    "志强", "秀英", "海燕", "建国", "丽娟", "俊杰", "晓东", "桂兰", "明辉", "雪梅", "国庆", "婷婷",
    "立新", "春华", "文静", "德胜",
];

fn person_name(rng: &mut SplitMix64) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.below(SURNAMES.len())],
        GIVEN[rng.below(GIVEN.len())]
    )
}

/// Every street office's own forces: the staff of its organs and of the agencies it
/// manages (ids `F0001` ...), each with one to three home cells in the street office's
/// area, standing in one of them, with a capacity of 4 to 10.
fn street_forces(
    grid: &Grid,
    streets: &[StreetConfig],
    agencies: &[AgencyConfig],
    communities: &[(String, String)],
    community_cells: &[Vec<CellId>],
    rng: &mut SplitMix64,
) -> Vec<WorkerConfig> {
    let mut workers = Vec::new();
    for street in streets {
        let area: Vec<CellId> = communities
            .iter()
            .zip(community_cells)
            .filter(|((_, s), _)| *s == street.id)
            .flat_map(|(_, cells)| cells.iter().copied())
            .collect();
        if area.is_empty() {
            continue;
        }
        for force in &catalogue().forces {
            let unit = format!("{}-{}", street.id, force.unit);
            let exists =
                street.organs.iter().any(|o| o.id == unit) || agencies.iter().any(|a| a.id == unit);
            if !exists {
                continue;
            }
            for _ in 0..force.count {
                let first = rng.below(area.len());
                let cells: Vec<CellId> = (0..1 + rng.below(3))
                    .map(|k| area[(first + k * area.len() / 3) % area.len()])
                    .collect();
                let mut cells_named: Vec<String> =
                    cells.iter().map(|&c| grid[c].name.clone()).collect();
                cells_named.dedup();
                let position =
                    point_in(grid, cells[rng.below(cells.len())]).map(|p| [p.lon(), p.lat()]);
                let n = workers.len() + 1;
                workers.push(WorkerConfig {
                    id: format!("F{n:04}"),
                    name: person_name(rng),
                    kind: force.kind,
                    unit: unit.clone(),
                    roles: force.roles.clone(),
                    cells: cells_named,
                    capacity: 4 + rng.below(7) as u32,
                    position,
                });
            }
        }
    }
    workers
}

/// Three workers per community (two grid workers and one of the other kinds; or as many as
/// it takes to reach `wanted` in all, spread evenly) and, per street office, an area
/// director and a village-liaison cadre: each with one to three adjacent home cells,
/// several roles and a capacity of 2 to 8.
fn demo_workers(
    grid: &Grid,
    communities: &[(String, String)],
    community_cells: &[Vec<CellId>],
    wanted: Option<usize>,
    rng: &mut SplitMix64,
) -> Vec<WorkerConfig> {
    const OTHERS: [WorkerKind; 5] = [
        WorkerKind::PartyMember,
        WorkerKind::CommunityPolice,
        WorkerKind::CommitteeMember,
        WorkerKind::Volunteer,
        WorkerKind::ResidentRepresentative,
    ];
    let base_roles = |kind: WorkerKind| -> &'static [&'static str] {
        match kind {
            WorkerKind::FullTimeGridWorker => &["public_order", "urban_management", "emergency"],
            WorkerKind::PartTimeGridWorker => &["public_order", "civil_affairs"],
            WorkerKind::AreaDirector => &["public_order", "petition", "ethnic_religious"],
            WorkerKind::VillageLiaisonCadre => &["party_building", "market", "health"],
            WorkerKind::PartyMember => &["party_building", "service"],
            WorkerKind::CommunityPolice => &["police", "public_order", "justice"],
            WorkerKind::CommitteeMember => &["civil_affairs", "justice", "petition"],
            WorkerKind::Volunteer => &["service", "civil_affairs"],
            WorkerKind::ResidentRepresentative => &["public_order", "petition"],
            // Street forces are made by `street_forces`, with the roles of their unit.
            WorkerKind::OrganStaff
            | WorkerKind::LawEnforcementOfficer
            | WorkerKind::AgencyStaff => &["public_order"],
        }
    };
    let mut workers = Vec::new();
    let mut add = |kind: WorkerKind, seed: CellId, community: &str, rng: &mut SplitMix64| {
        let mut cells = vec![seed];
        let extra = rng.below(3);
        cells.extend(touching(grid, seed, community).into_iter().take(extra));
        let mut roles: Vec<String> = base_roles(kind).iter().map(|r| r.to_string()).collect();
        // One more role at random: everyone in the grid does several jobs.
        let roles_all = &catalogue().roles;
        let more = roles_all[rng.below(roles_all.len())].id.clone();
        if !roles.contains(&more) {
            roles.push(more);
        }
        let position = point_in(grid, cells[rng.below(cells.len())]).map(|p| [p.lon(), p.lat()]);
        let n = workers.len() + 1;
        workers.push(WorkerConfig {
            id: format!("W{n:04}"),
            name: person_name(rng),
            kind,
            unit: community.to_string(),
            roles,
            cells: cells.iter().map(|&c| grid[c].name.clone()).collect(),
            capacity: 2 + rng.below(7) as u32,
            position,
        });
    };
    let staffed = communities.len();
    let streets = {
        let mut v: Vec<&str> = communities.iter().map(|(_, s)| s.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    // Workers per community: three, or `wanted` (less the street staff) spread evenly.
    let per_community = |k: usize| match wanted {
        None => 3,
        Some(w) => {
            let pool = w.saturating_sub(2 * streets);
            let (base, extra) = (pool / staffed.max(1), pool % staffed.max(1));
            (base + usize::from(k < extra)).max(1)
        }
    };
    let mut street_seen: Vec<&str> = Vec::new();
    for (k, ((m, s), cells)) in communities.iter().zip(community_cells).enumerate() {
        if cells.is_empty() {
            continue;
        }
        let n = per_community(k);
        for j in 0..n {
            let kind = match j % 3 {
                0 => WorkerKind::FullTimeGridWorker,
                1 => WorkerKind::PartTimeGridWorker,
                _ => OTHERS[(k + j / 3) % OTHERS.len()],
            };
            add(kind, cells[j * cells.len() / n], m, rng);
        }
        if !street_seen.contains(&s.as_str()) {
            street_seen.push(s);
            add(WorkerKind::AreaDirector, cells[cells.len() / 2], m, rng);
            add(
                WorkerKind::VillageLiaisonCadre,
                cells[cells.len() - 1],
                m,
                rng,
            );
        }
    }
    workers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::{Holder, Platform, UnitKind};
    use crate::grid::{Cell, Polygon};

    /// A 6 x 4 lattice: 2 districts, 3 street offices, 6 communities of 4 cells.
    fn small_grid() -> Grid {
        let mut cells = Vec::new();
        for r in 0..4 {
            for c in 0..6 {
                let street = c / 2;
                let district = if street < 2 { "东区" } else { "西区" };
                let community = format!("S{street}-C{}", r / 2);
                let min = [120.0 + c as f64 * 0.01, 36.0 + r as f64 * 0.01];
                cells.push(
                    Cell::new(
                        format!("c{r}{c}"),
                        vec![Polygon::rect(min, [min[0] + 0.01, min[1] + 0.01])],
                    )
                    .with_parents(
                        community,
                        format!("S{street}街道"),
                        district,
                    ),
                );
            }
        }
        Grid::new(cells).unwrap()
    }

    #[test]
    fn embedded_catalogue_parses() {
        let cat = parse_catalogue().unwrap_or_else(|e| panic!("src/city/demo.toml: {e}"));
        assert_eq!(
            (
                cat.roles.len(),
                cat.service_items.len(),
                cat.categories.len()
            ),
            (13, 5, 26)
        );
        assert_eq!(
            (cat.departments.len(), cat.organs.len(), cat.agencies.len()),
            (15, 11, 3)
        );
        assert_eq!(cat.forces.iter().map(|f| f.count).sum::<usize>(), 14);
        // The first four organs are the mandatory ones: a low organ limit keeps them.
        assert!(cat.organs[..4].iter().all(|o| o.mandatory.is_some()));
        assert!(cat.organs[4..].iter().all(|o| o.mandatory.is_none()));
        assert!(cat.duty_lists.overrides.is_empty());
        // Every key the file names is defined in it.
        let dept = |k: &str| cat.departments.iter().any(|d| d.id == k);
        assert!(
            cat.categories
                .iter()
                .all(|k| k.departments.iter().all(|d| dept(d)))
        );
        assert!(
            cat.organs
                .iter()
                .all(|o| o.departments.iter().all(|d| dept(d)))
        );
        assert!(cat.agencies.iter().all(|a| dept(&a.department)));
        assert!(
            cat.departments
                .iter()
                .all(|d| d.reports_to.as_deref().is_none_or(dept))
        );
        let unit = |k: &str| {
            cat.organs.iter().any(|o| o.id == k) || cat.agencies.iter().any(|a| a.id == k)
        };
        assert!(cat.forces.iter().all(|f| unit(&f.unit)));
    }

    #[test]
    fn config_is_derived_from_the_grid_parents() {
        let grid = small_grid();
        let config = demo_config_for(&grid).unwrap();
        assert_eq!(config.districts.len(), 2);
        assert_eq!(config.streets.len(), 3);
        assert_eq!(config.communities.len(), 6);
        // Three grid workers per community, two street staff per street office in its
        // communities, and the street offices' own forces: 3 law-enforcement officers,
        // 1 urban-management, 2 + 1 governance, 2 public-service and 1 party-building staff,
        // and 2 + 1 + 1 agency staff.
        assert_eq!(config.workers.len(), 6 * 3 + 3 * 2 + 3 * 14);
        let city = City::new(&config, grid).unwrap();
        assert_eq!(city.units_of(UnitKind::Community).len(), 6);
        for cell in city.grid().ids() {
            let chain = city.chain(cell).unwrap();
            let name = &city.grid()[cell].community;
            assert_eq!(
                name.as_deref(),
                Some(city.units()[chain.community.index()].id.as_str())
            );
        }
        // Workers stand in one of their home cells.
        for (w, worker) in city.workers().iter().enumerate() {
            let id = crate::city::WorkerId(w as u32);
            let p = worker.position.unwrap();
            assert!(
                city.home_cells(id)
                    .iter()
                    .any(|&c| city.grid().covers(c, p))
            );
        }
    }

    #[test]
    fn missing_and_inconsistent_parents_are_refused() {
        let mut cells: Vec<Cell> = small_grid().cells().to_vec();
        cells[2].community = None;
        // c03 is in street S1; claim its community is under S2 too.
        cells[5].community = Some("S1-C0".into());
        let err = demo_config_for(&Grid::new(cells).unwrap()).unwrap_err();
        let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["grid.cells[2].community", "grid.cells[5].street"]);
    }

    #[test]
    fn demo_grid_is_a_qingdao_like_lattice() {
        let grid = demo_city_grid();
        assert!((2_500..=3_500).contains(&grid.len()), "{}", grid.len());
        let [x0, y0, x1, y1] = grid.bounds();
        assert!(x0 > 120.0 && x1 < 121.0 && y0 > 35.9 && y1 < 36.5);
        let city = demo_city();
        for street in city.units_of(UnitKind::Street) {
            for platform in Platform::ALL {
                assert!(city.platform_organ(street, platform).is_some());
            }
        }
        // Villages are the communities named so.
        for u in city.units() {
            assert_eq!(
                u.village,
                u.kind == UnitKind::Community && u.name.ends_with('村')
            );
        }
        // Some community takes public-order risks off its list.
        let risk = city.category_id("ZZ-04").unwrap();
        assert!(city.units_of(UnitKind::Community).any(|m| {
            city.duty_list(m).unwrap().refusal(risk) == Some(crate::city::Refusal::Removed)
        }));
        let a = city
            .admit(CellId(0), city.category_id("ZF-01").unwrap())
            .unwrap();
        assert!(matches!(a.holder, Holder::Community(_)));
    }
}

/// Cells per community that [`group_cells`] aims at when it groups a grid for
/// [`demo_config_grouped`]: a community (社区) of a real grid holds some 10-40 cells.
pub const COMMUNITY_CELLS: usize = 25;

/// Communities per street office that [`group_cells`] aims at: a street office (街道)
/// oversees some 8-20 communities.
pub const STREET_COMMUNITIES: usize = 12;

/// The cells of `grid` with every cell that lacks a community or a street office put in
/// one: such cells are grouped into contiguous communities of about `community_cells`
/// cells (by the grid's neighbour graph), and those into contiguous street offices of
/// about `street_communities` communities, never across the cells' `district` property.
/// Cells without a district are grouped as one district named `"district"`. Cells that
/// name both their community and street office keep them.
///
/// Groups grow breadth-first from the lowest-numbered cell not yet grouped; a leftover
/// piece smaller than half the target joins a neighbouring group of its district, so
/// groups hold at most about one and a half times the target, except where the grid
/// itself is cut into pieces (an island smaller than half a community stays on its own).
///
/// Names: street office `{district}-S{n}`, community `{district}-S{n}-C{m}`, numbered in
/// the order they were grown.
///
/// # Complexity
/// Linear in the number of cells and neighbour links.
pub fn group_cells(
    grid: &Grid,
    community_cells: usize,
    street_communities: usize,
) -> Vec<crate::grid::Cell> {
    let community_cells = community_cells.max(1);
    let street_communities = street_communities.max(1);
    let n = grid.len();
    let mut cells: Vec<crate::grid::Cell> = grid.cells().to_vec();
    let district_name = |c: &crate::grid::Cell| {
        c.district
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or("district")
            .to_string()
    };
    let named = |c: &crate::grid::Cell| {
        [&c.community, &c.street]
            .iter()
            .all(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
    };
    // District of every cell as an index, and whether it takes part in the grouping.
    let mut districts: Vec<String> = Vec::new();
    let mut district_of = vec![0usize; n];
    let mut free = vec![false; n];
    for (i, c) in cells.iter().enumerate() {
        let d = district_name(c);
        district_of[i] = match districts.iter().position(|x| *x == d) {
            Some(k) => k,
            None => {
                districts.push(d);
                districts.len() - 1
            }
        };
        free[i] = !named(c);
    }
    let links: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            CellId::from_index(i)
                .map(|id| grid.neighbours(id).iter().map(|c| c.index()).collect())
                .unwrap_or_default()
        })
        .collect();
    let community = grow(&links, &free, &district_of, community_cells);
    let k = community.iter().flatten().max().map_or(0, |m| m + 1);
    // The communities' own neighbour graph, for growing street offices.
    let mut c_links: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut c_district = vec![0usize; k];
    for i in 0..n {
        let Some(a) = community[i] else { continue };
        c_district[a] = district_of[i];
        for &j in &links[i] {
            if let Some(b) = community[j]
                && a != b
                && !c_links[a].contains(&b)
            {
                c_links[a].push(b);
            }
        }
    }
    for l in &mut c_links {
        l.sort_unstable();
    }
    let street = grow(&c_links, &vec![true; k], &c_district, street_communities);
    // Number the communities within each street office, in the order they were grown.
    let mut seen_in_street: HashMap<usize, usize> = HashMap::new();
    let mut c_number = vec![0usize; k];
    for (c, s) in street.iter().enumerate() {
        let Some(s) = s else { continue };
        let m = seen_in_street.entry(*s).or_insert(0);
        *m += 1;
        c_number[c] = *m;
    }
    for (i, cell) in cells.iter_mut().enumerate() {
        let Some(c) = community[i] else { continue };
        let Some(s) = street[c] else { continue };
        let d = &districts[district_of[i]];
        cell.district = Some(d.clone());
        cell.street = Some(format!("{d}-S{}", s + 1));
        cell.community = Some(format!("{d}-S{}-C{}", s + 1, c_number[c]));
    }
    cells
}

/// Grows groups of about `target` nodes over `links` among the `free` nodes, never across
/// `district`: breadth-first from the lowest free node not yet taken, then leftover pieces
/// smaller than half the target are given to a neighbouring group of their district.
fn grow(
    links: &[Vec<usize>],
    free: &[bool],
    district: &[usize],
    target: usize,
) -> Vec<Option<usize>> {
    let n = links.len();
    let mut group: Vec<Option<usize>> = vec![None; n];
    let mut sizes: Vec<usize> = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    for seed in 0..n {
        if !free[seed] || group[seed].is_some() {
            continue;
        }
        let g = sizes.len();
        sizes.push(0);
        group[seed] = Some(g);
        queue.clear();
        queue.push_back(seed);
        while let Some(i) = queue.pop_front() {
            sizes[g] += 1;
            if sizes[g] + queue.len() >= target {
                continue;
            }
            for &j in &links[i] {
                if free[j]
                    && group[j].is_none()
                    && district[j] == district[seed]
                    && sizes[g] + queue.len() < target
                {
                    group[j] = Some(g);
                    queue.push_back(j);
                }
            }
        }
    }
    // Small pieces join the smallest neighbouring group of their district (once each, so
    // that groups stay within about one and a half times the target).
    let small = target.div_ceil(2);
    let mut merged_into: Vec<usize> = (0..sizes.len()).collect();
    for g in 0..sizes.len() {
        if sizes[g] >= small || merged_into[g] != g {
            continue;
        }
        let mut best: Option<usize> = None;
        for i in 0..n {
            if group[i].map(|x| merged_into[x]) != Some(g) {
                continue;
            }
            for &j in &links[i] {
                let Some(h) = group[j].map(|x| merged_into[x]) else {
                    continue;
                };
                if h != g
                    && district[j] == district[i]
                    && sizes[h] < target + small
                    && best.is_none_or(|b| sizes[h] < sizes[b])
                {
                    best = Some(h);
                }
            }
        }
        if let Some(h) = best {
            sizes[h] += sizes[g];
            sizes[g] = 0;
            for m in merged_into.iter_mut() {
                if *m == g {
                    *m = h;
                }
            }
        }
    }
    // Renumber densely, in the order the groups were grown.
    let mut dense: HashMap<usize, usize> = HashMap::new();
    group
        .iter()
        .map(|g| {
            g.map(|g| {
                let root = merged_into[g];
                let next = dense.len();
                *dense.entry(root).or_insert(next)
            })
        })
        .collect()
}

/// The demo city's config ([`demo_config_for`]) for any grid, with the cells that name no
/// community or street office grouped by [`group_cells`] (about [`COMMUNITY_CELLS`] cells
/// a community, [`STREET_COMMUNITIES`] communities a street office), and about `workers`
/// workers if given. Returns the grid with its cells' parents filled in, which the config
/// belongs to.
///
/// # Errors
/// [`Error::Grid`](crate::Error::Grid) if the regrouped cells do not make a grid (they
/// always do when `grid` is one), and the errors of [`demo_config_for`].
pub fn demo_config_grouped(
    grid: &Grid,
    workers: Option<usize>,
) -> Result<(Grid, CityConfig), crate::Error> {
    let grouped = Grid::new(group_cells(grid, COMMUNITY_CELLS, STREET_COMMUNITIES))?;
    let config = config_for(&grouped, workers)?;
    Ok((grouped, config))
}

#[cfg(test)]
mod grouping_tests {
    use super::*;
    use crate::grid::{Cell, Polygon};
    use std::collections::{BTreeMap, BTreeSet};

    const COLS: usize = 40;
    const ROWS: usize = 30;

    /// A 40 x 30 lattice without communities or street offices: the west 24 columns in
    /// district 西区, the rest in 东区, with a lake (no cells) cutting a few rows and a
    /// two-cell island inside the lake.
    fn lattice() -> (Grid, Vec<(usize, usize)>) {
        let mut cells = Vec::new();
        let mut at = Vec::new();
        for r in 0..ROWS {
            for c in 0..COLS {
                let lake = (10..14).contains(&r) && (5..20).contains(&c);
                let island = r == 12 && (11..13).contains(&c);
                if lake && !island {
                    continue;
                }
                // Sixty-fourths of a degree: exact in binary, so that shared edges match.
                let deg = |i: usize| i as f64 / 64.0;
                let mut cell = Cell::new(
                    format!("r{r}c{c}"),
                    vec![Polygon::rect(
                        [120.0 + deg(c), 36.0 + deg(r)],
                        [120.0 + deg(c + 1), 36.0 + deg(r + 1)],
                    )],
                );
                cell.district = Some(if c < 24 { "西区" } else { "东区" }.to_string());
                cells.push(cell);
                at.push((r, c));
            }
        }
        (Grid::new(cells).unwrap(), at)
    }

    /// Whether `members` is connected by the lattice's own 4-neighbourhood (not the grid's
    /// neighbour graph, which the grouping uses).
    fn connected(members: &BTreeSet<(usize, usize)>) -> bool {
        let Some(&first) = members.iter().next() else {
            return false;
        };
        let mut seen = BTreeSet::from([first]);
        let mut stack = vec![first];
        while let Some((r, c)) = stack.pop() {
            let next = [
                (r.wrapping_sub(1), c),
                (r + 1, c),
                (r, c.wrapping_sub(1)),
                (r, c + 1),
            ];
            for p in next {
                if members.contains(&p) && seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        seen.len() == members.len()
    }

    #[test]
    fn groups_are_contiguous_of_sensible_size_and_within_their_district() {
        let (grid, at) = lattice();
        let cells = group_cells(&grid, 25, 12);
        assert_eq!(cells.len(), grid.len());
        let mut communities: BTreeMap<String, BTreeSet<(usize, usize)>> = BTreeMap::new();
        let mut streets: BTreeMap<String, BTreeSet<(usize, usize)>> = BTreeMap::new();
        let mut community_street: BTreeMap<String, String> = BTreeMap::new();
        let mut district_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (i, cell) in cells.iter().enumerate() {
            let m = cell.community.clone().expect("every cell has a community");
            let s = cell.street.clone().expect("every cell has a street office");
            let d = cell.district.clone().expect("districts are kept");
            assert_eq!(Some(d.as_str()), grid.cells()[i].district.as_deref());
            communities.entry(m.clone()).or_default().insert(at[i]);
            streets.entry(s.clone()).or_default().insert(at[i]);
            let previous = community_street.insert(m.clone(), s.clone());
            assert!(previous.is_none_or(|p| p == s), "{m} in two street offices");
            district_of.entry(s).or_default().insert(d);
        }
        for (s, ds) in &district_of {
            assert_eq!(ds.len(), 1, "{s} spans districts {ds:?}");
        }
        for (m, members) in &communities {
            assert!(connected(members), "community {m} is not contiguous");
            // The island (2 cells) is the only group allowed below half the target.
            let island = members
                .iter()
                .all(|&(r, c)| r == 12 && (11..13).contains(&c));
            assert!(
                island || (13..=38).contains(&members.len()),
                "community {m} has {} cells",
                members.len()
            );
        }
        for (s, members) in &streets {
            assert!(connected(members), "street office {s} is not contiguous");
        }
        // 1,140 cells: about 45 communities of 25, about 4 street offices of 12.
        assert!(
            (35..=55).contains(&communities.len()),
            "{:?}",
            communities.values().map(|m| m.len()).collect::<Vec<_>>()
        );
        assert!(
            (3..=8).contains(&streets.len()),
            "{:?}",
            streets.values().map(|m| m.len()).collect::<Vec<_>>()
        );
        // And the result makes a valid demo city.
        let (grouped, config) = demo_config_grouped(&grid, Some(300)).unwrap();
        assert_eq!(config.communities.len(), communities.len());
        City::new(&config, grouped).unwrap();
    }

    #[test]
    fn cells_that_name_their_parents_keep_them() {
        let (grid, _) = lattice();
        let mut named: Vec<Cell> = grid.cells().to_vec();
        for c in named.iter_mut().take(10) {
            c.community = Some("M".into());
            c.street = Some("S".into());
        }
        let grid = Grid::new(named).unwrap();
        let cells = group_cells(&grid, 25, 12);
        for c in &cells[..10] {
            assert_eq!(c.community.as_deref(), Some("M"));
        }
        assert!(
            cells[10..]
                .iter()
                .all(|c| c.community.as_deref() != Some("M"))
        );
    }
}
