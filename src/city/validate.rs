//! From a [`CityConfig`] and its grid to a [`City`]: every reference resolved, every rule
//! checked, every problem reported at once with the path to it.
//!
//! ```text
//!   units ─► departments ─► organs, agencies ─► catalogue (roles, items, categories)
//!     ─► duty lists ─► grid cells ─► service points ─► workers ─► org graph + cycles
//!     ─► admission (precomputed in duty.rs) ─► no problem? the City
//! ```
//!
//! Each phase is one function: it records its problems and returns what it built (ids
//! registered, tables) for the later phases, which go on checking even where an earlier
//! reference was bad, so that one pass reports everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CategoryConfig, CityConfig, DutyLevel, MandatoryOrgan, Priority};
use super::duty::{DutyTable, Precompute};
use super::error::{ConfigError, ConfigProblem, ConfigProblemKind as K};
use super::ids::{
    AgencyId, CategoryId, DepartmentId, MAX_ROLES, OrganId, Role, RoleSet, ServiceItemId,
    ServicePointId, UnitId, WorkerId,
};
use super::model::{
    Agency, Category, City, Department, NO_ORGAN, Names, Organ, RoleInfo, ServiceItem,
    ServicePoint, Unit, UnitKind,
};
use super::org::{OrgEdge, OrgGraph, OrgNode};
use super::workers::{MAX_CAPACITY, Worker, WorkerUnit, Workforce};
use crate::csr::Csr;
use crate::grid::{CellId, Grid, Location};

/// The highest organ limit a city may set.
pub const MAX_ORGAN_LIMIT: u32 = 64;
/// The lowest: the four mandatory organs must fit.
const MIN_ORGAN_LIMIT: u32 = 4;
/// A year: no deadline is longer.
const MAX_DEADLINE_HOURS: f64 = 8760.0;

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, kind: K) {
        self.0.push(ConfigProblem {
            path: path.into(),
            kind,
        });
    }

    fn unknown(&mut self, path: impl Into<String>, what: &'static str, id: &str) {
        self.push(
            path,
            K::UnknownReference {
                what,
                id: id.to_string(),
            },
        );
    }
}

/// Registers ids in one namespace: empty and duplicate ids are problems; the first of a
/// duplicate keeps the id.
struct Registry<'a> {
    ids: HashMap<&'a str, (usize, String)>,
}

impl<'a> Registry<'a> {
    fn new() -> Self {
        Registry {
            ids: HashMap::new(),
        }
    }

    fn add(&mut self, p: &mut Problems, path: String, id: &'a str, name: &str, index: usize) {
        if id.trim().is_empty() {
            p.push(format!("{path}.id"), K::Empty { field: "id" });
        }
        if name.trim().is_empty() {
            p.push(format!("{path}.name"), K::Empty { field: "name" });
        }
        match self.ids.get(id) {
            Some((_, first)) => p.push(
                format!("{path}.id"),
                K::DuplicateId {
                    id: id.to_string(),
                    first: first.clone(),
                },
            ),
            None => {
                self.ids.insert(id, (index, path));
            }
        }
    }

    fn get(&self, id: &str) -> Option<usize> {
        self.ids.get(id).map(|(i, _)| *i)
    }
}

/// Resolves a list of references: unknown and repeated ids are problems.
fn resolve_list(
    p: &mut Problems,
    path: &str,
    what: &'static str,
    ids: &[String],
    find: impl Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::with_capacity(ids.len());
    for (k, id) in ids.iter().enumerate() {
        match find(id) {
            None => p.unknown(format!("{path}[{k}]"), what, id),
            Some(i) if out.contains(&i) => {
                p.push(format!("{path}[{k}]"), K::Repeated { id: id.clone() })
            }
            Some(i) => out.push(i),
        }
    }
    out
}

/// Resolves a worker's `unit`: exactly one of a community, an organ and an agency.
fn worker_unit(
    p: &mut Problems,
    path: &str,
    id: &str,
    find: &dyn Fn(&str) -> [Option<WorkerUnit>; 3],
) -> Option<WorkerUnit> {
    const WHAT: [&str; 3] = ["community", "organ", "agency"];
    let found = find(id);
    let mut hits = found
        .iter()
        .enumerate()
        .filter_map(|(k, u)| u.map(|u| (k, u)));
    match (hits.next(), hits.next()) {
        (None, _) => {
            p.unknown(format!("{path}.unit"), "community, organ or agency", id);
            None
        }
        (Some((k, _)), Some((j, _))) => {
            p.push(
                format!("{path}.unit"),
                K::AmbiguousUnit {
                    id: id.to_string(),
                    first: WHAT[k],
                    second: WHAT[j],
                },
            );
            None
        }
        (Some((_, u)), None) => Some(u),
    }
}

fn check_count(p: &mut Problems, what: &'static str, count: usize) {
    if count >= u32::MAX as usize {
        p.push(what, K::TooMany { what, count });
    }
}

fn location(p: &mut Problems, path: String, [lon, lat]: [f64; 2]) -> Option<Location> {
    match Location::new(lon, lat) {
        Ok(l) => Some(l),
        Err(_) => {
            p.push(path, K::BadPosition { lon, lat });
            None
        }
    }
}

/// Builds the city phase by phase; each phase records its problems and hands what it built
/// to the later ones, so that every problem is reported at once.
pub(crate) fn build(config: &CityConfig, grid: Arc<Grid>) -> Result<City, ConfigError> {
    let c = config;
    let mut p = Problems::default();
    for (what, n) in [
        ("communities", c.communities.len()),
        ("categories", c.categories.len()),
        ("workers", c.workers.len()),
        ("service_points", c.service_points.len()),
        ("departments", c.departments.len()),
    ] {
        check_count(&mut p, what, n);
    }
    if !p.0.is_empty() {
        return Err(ConfigError::Problems(p.0));
    }

    let units = units(&mut p, c);
    organ_limits(&mut p, c);
    let depts = departments(&mut p, c, &units);
    let organs = organs(&mut p, c, &units, &depts);
    let agencies = agencies(&mut p, c, &units, &depts);
    let cat = catalogue(&mut p, c, &units, &depts);
    let mut duty = duty_lists(&mut p, c, &units, &cat);
    let cells = grid_cells(&mut p, c, &units, &grid);
    let points = service_points(&mut p, c, &units, &cat, &grid);
    let staff = workers(
        &mut p,
        c,
        &Forces {
            units: &units,
            organs: &organs,
            agencies: &agencies,
            catalogue: &cat,
            cell_community: &cells.cell_community,
        },
        &grid,
    );
    let org = org_graph(&mut p, &units, &depts, &organs, &agencies);
    admission(&mut p, c, &units, &organs, &cat, &mut duty);
    if !p.0.is_empty() {
        return Err(ConfigError::Problems(p.0));
    }

    let dept_organ_pairs: Vec<(usize, OrganId)> = organs
        .dept_pairs
        .iter()
        .map(|&(o, d)| (d.index(), OrganId(o as u32)))
        .collect();
    let names = Names {
        units: names_of(&units.reg, |i| UnitId(i as u32)),
        organs: names_of(&organs.reg, |i| OrganId(i as u32)),
        departments: names_of(&depts.reg, |i| DepartmentId(i as u32)),
        agencies: names_of(&agencies.reg, |i| AgencyId(i as u32)),
        roles: names_of(&cat.roles, |i| Role(i as u8)),
        categories: names_of(&cat.codes, |i| CategoryId(i as u32)),
        workers: names_of(&staff.reg, |i| WorkerId(i as u32)),
        service_points: names_of(&points.reg, |i| ServicePointId(i as u32)),
        service_items: names_of(&cat.items, |i| ServiceItemId(i as u32)),
    };
    Ok(City {
        kind_start: units.kind_start(),
        children: cells.children,
        cell_community: cells.cell_community,
        community_cells: cells.community_cells,
        street_organs: Csr::from_pairs(units.list.len(), &organs.street_pairs),
        platform_organs: organs.platform,
        organ_departments: Csr::from_pairs(organs.list.len(), &organs.dept_pairs),
        department_organs: Csr::from_pairs(depts.list.len(), &dept_organ_pairs),
        street_agencies: Csr::from_pairs(units.list.len(), &agencies.street_pairs),
        roles: c
            .roles
            .iter()
            .map(|r| RoleInfo {
                id: r.id.clone(),
                name: r.name.clone(),
            })
            .collect(),
        service_items: c
            .service_items
            .iter()
            .map(|s| ServiceItem {
                id: s.id.clone(),
                name: s.name.clone(),
            })
            .collect(),
        item_points: Csr::from_pairs(c.service_items.len(), &points.item_pairs),
        workforce: Workforce::new(staff.list, &staff.homes, grid.len()),
        units: units.list,
        organs: organs.list,
        departments: depts.list,
        agencies: agencies.list,
        categories: cat.categories,
        duty,
        service_points: points.list,
        org,
        names,
        grid,
    })
}

/// The units in one namespace, laid out city, districts (from `d0`), street offices (from
/// `s0`), communities (from `c0`).
struct Units<'a> {
    reg: Registry<'a>,
    list: Vec<Unit>,
    d0: usize,
    s0: usize,
    c0: usize,
}

impl Units<'_> {
    fn kind_of(&self, u: usize) -> UnitKind {
        match u {
            0 => UnitKind::City,
            u if u < self.s0 => UnitKind::District,
            u if u < self.c0 => UnitKind::Street,
            _ => UnitKind::Community,
        }
    }

    fn find(&self, id: &str, kind: UnitKind) -> Option<usize> {
        self.reg.get(id).filter(|&u| self.kind_of(u) == kind)
    }

    fn district_of(&self, u: usize) -> Option<UnitId> {
        let mut at = u;
        loop {
            let unit = self.list.get(at)?;
            match unit.kind {
                UnitKind::District => return Some(UnitId(at as u32)),
                UnitKind::City => return None,
                _ => at = unit.parent?.index(),
            }
        }
    }

    /// The config id of `u`, or an empty string for an id out of range.
    fn id(&self, u: UnitId) -> String {
        self.list
            .get(u.index())
            .map_or(String::new(), |u| u.id.clone())
    }

    fn kind_start(&self) -> [u32; 5] {
        [
            0,
            self.d0 as u32,
            self.s0 as u32,
            self.c0 as u32,
            self.list.len() as u32,
        ]
    }
}

fn units<'a>(p: &mut Problems, c: &'a CityConfig) -> Units<'a> {
    let d0 = 1;
    let s0 = d0 + c.districts.len();
    let c0 = s0 + c.streets.len();
    let mut reg = Registry::new();
    reg.add(p, "city".into(), &c.city.id, &c.city.name, 0);
    for (i, d) in c.districts.iter().enumerate() {
        reg.add(p, format!("districts[{i}]"), &d.id, &d.name, d0 + i);
    }
    for (i, s) in c.streets.iter().enumerate() {
        reg.add(p, format!("streets[{i}]"), &s.id, &s.name, s0 + i);
    }
    for (i, m) in c.communities.iter().enumerate() {
        reg.add(p, format!("communities[{i}]"), &m.id, &m.name, c0 + i);
    }
    let mut units = Units {
        reg,
        list: Vec::with_capacity(c0 + c.communities.len()),
        d0,
        s0,
        c0,
    };
    units.list.push(Unit {
        id: c.city.id.clone(),
        name: c.city.name.clone(),
        kind: UnitKind::City,
        parent: None,
        village: false,
    });
    for d in &c.districts {
        units.list.push(Unit {
            id: d.id.clone(),
            name: d.name.clone(),
            kind: UnitKind::District,
            parent: Some(UnitId(0)),
            village: false,
        });
    }
    for (i, s) in c.streets.iter().enumerate() {
        let parent = units.find(&s.district, UnitKind::District);
        if parent.is_none() {
            p.unknown(format!("streets[{i}].district"), "district", &s.district);
        }
        units.list.push(Unit {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: UnitKind::Street,
            parent: parent.map(|u| UnitId(u as u32)),
            village: false,
        });
    }
    for (i, m) in c.communities.iter().enumerate() {
        let parent = units.find(&m.street, UnitKind::Street);
        if parent.is_none() {
            p.unknown(
                format!("communities[{i}].street"),
                "street office",
                &m.street,
            );
        }
        units.list.push(Unit {
            id: m.id.clone(),
            name: m.name.clone(),
            kind: UnitKind::Community,
            parent: parent.map(|u| UnitId(u as u32)),
            village: m.village,
        });
    }
    units
}

fn organ_limits(p: &mut Problems, c: &CityConfig) {
    if !(MIN_ORGAN_LIMIT..=MAX_ORGAN_LIMIT).contains(&c.max_organs) {
        p.push(
            "max_organs",
            K::BadOrganLimit {
                limit: c.max_organs,
                max: MAX_ORGAN_LIMIT,
            },
        );
    }
    for (i, d) in c.districts.iter().enumerate() {
        if let Some(limit) = d.max_organs
            && !(MIN_ORGAN_LIMIT..=c.max_organs).contains(&limit)
        {
            p.push(
                format!("districts[{i}].max_organs"),
                K::BadOrganLimit {
                    limit,
                    max: c.max_organs,
                },
            );
        }
    }
}

struct Departments<'a> {
    reg: Registry<'a>,
    list: Vec<Department>,
}

impl Departments<'_> {
    /// A department serving `unit` must be of the unit's district (or of the city).
    fn same_district(
        &self,
        p: &mut Problems,
        units: &Units,
        path: String,
        dept: usize,
        unit: usize,
    ) {
        let (Some(want), dd) = (units.district_of(unit), self.list[dept].district) else {
            return;
        };
        if dd != want && dd.index() != 0 {
            p.push(
                path,
                K::OtherDistrict {
                    id: self.list[dept].id.clone(),
                    found: units.id(dd),
                    expected: units.id(want),
                },
            );
        }
    }
}

fn departments<'a>(p: &mut Problems, c: &'a CityConfig, units: &Units) -> Departments<'a> {
    let mut reg = Registry::new();
    for (i, d) in c.departments.iter().enumerate() {
        reg.add(p, format!("departments[{i}]"), &d.id, &d.name, i);
    }
    let mut list: Vec<Department> = Vec::with_capacity(c.departments.len());
    for (i, d) in c.departments.iter().enumerate() {
        let district = units.find(&d.district, UnitKind::District);
        if district.is_none() {
            p.unknown(
                format!("departments[{i}].district"),
                "district",
                &d.district,
            );
        }
        let reports_to = d.reports_to.as_deref().and_then(|up| {
            let found = reg.get(up);
            if found.is_none() {
                p.unknown(format!("departments[{i}].reports_to"), "department", up);
            }
            found
        });
        list.push(Department {
            id: d.id.clone(),
            name: d.name.clone(),
            district: UnitId(district.unwrap_or(0) as u32),
            reports_to: reports_to.map(|u| DepartmentId(u as u32)),
        });
    }
    // A cross-district reference names the district of each side.
    for (i, d) in c.departments.iter().enumerate() {
        if let (Some(up), Some(dist)) = (
            list[i].reports_to,
            units.find(&d.district, UnitKind::District),
        ) {
            let up_dist = list[up.index()].district;
            if up_dist.index() != dist && up_dist.index() != 0 {
                p.push(
                    format!("departments[{i}].reports_to"),
                    K::OtherDistrict {
                        id: list[up.index()].id.clone(),
                        found: units.id(up_dist),
                        expected: d.district.clone(),
                    },
                );
            }
        }
    }
    Departments { reg, list }
}

struct Organs<'a> {
    reg: Registry<'a>,
    list: Vec<Organ>,
    street_pairs: Vec<(usize, OrganId)>,
    dept_pairs: Vec<(usize, DepartmentId)>,
    /// Per unit, the organ of each platform (`NO_ORGAN` where none).
    platform: Vec<[OrganId; 4]>,
}

fn organs<'a>(
    p: &mut Problems,
    c: &'a CityConfig,
    units: &Units,
    depts: &Departments,
) -> Organs<'a> {
    let mut o = Organs {
        reg: Registry::new(),
        list: Vec::new(),
        street_pairs: Vec::new(),
        dept_pairs: Vec::new(),
        platform: vec![[NO_ORGAN; 4]; units.list.len()],
    };
    for (i, s) in c.streets.iter().enumerate() {
        let street = units.s0 + i;
        let limit = units
            .find(&s.district, UnitKind::District)
            .and_then(|d| c.districts[d - units.d0].max_organs)
            .unwrap_or(c.max_organs);
        if s.organs.len() > limit as usize {
            p.push(
                format!("streets[{i}].organs"),
                K::TooManyOrgans {
                    count: s.organs.len(),
                    limit,
                },
            );
        }
        let mut mandatory: [Option<usize>; 4] = [None; 4];
        for (j, organ) in s.organs.iter().enumerate() {
            let path = format!("streets[{i}].organs[{j}]");
            let id = OrganId(o.list.len() as u32);
            o.reg
                .add(p, path.clone(), &organ.id, &organ.name, id.index());
            if let Some(m) = organ.mandatory {
                let slot = &mut mandatory[m as usize];
                match *slot {
                    Some(first) => p.push(
                        format!("{path}.mandatory"),
                        K::DuplicateMandatoryOrgan {
                            organ: m,
                            first: format!("streets[{i}].organs[{first}]"),
                        },
                    ),
                    None => {
                        *slot = Some(j);
                        o.platform[street][m.platform().index()] = id;
                    }
                }
                if organ.platform != Some(m.platform()) {
                    p.push(
                        format!("{path}.platform"),
                        K::MandatoryOrganPlatform {
                            organ: m,
                            expected: m.platform(),
                            found: organ.platform,
                        },
                    );
                }
            }
            let ds = resolve_list(
                p,
                &format!("{path}.departments"),
                "department",
                &organ.departments,
                |d| depts.reg.get(d),
            );
            for (k, &d) in ds.iter().enumerate() {
                depts.same_district(p, units, format!("{path}.departments[{k}]"), d, street);
                o.dept_pairs.push((id.index(), DepartmentId(d as u32)));
            }
            o.street_pairs.push((street, id));
            o.list.push(Organ {
                id: organ.id.clone(),
                name: organ.name.clone(),
                kind: organ.kind,
                mandatory: organ.mandatory,
                platform: organ.platform,
                street: UnitId(street as u32),
            });
        }
        for m in MandatoryOrgan::ALL {
            if mandatory[m as usize].is_none() {
                p.push(
                    format!("streets[{i}].organs"),
                    K::MissingMandatoryOrgan { organ: m },
                );
            }
        }
    }
    check_count(p, "organs", o.list.len());
    o
}

struct Agencies<'a> {
    reg: Registry<'a>,
    list: Vec<Agency>,
    street_pairs: Vec<(usize, AgencyId)>,
}

fn agencies<'a>(
    p: &mut Problems,
    c: &'a CityConfig,
    units: &Units,
    depts: &Departments,
) -> Agencies<'a> {
    let mut out = Agencies {
        reg: Registry::new(),
        list: Vec::new(),
        street_pairs: Vec::new(),
    };
    for (i, a) in c.agencies.iter().enumerate() {
        let path = format!("agencies[{i}]");
        out.reg.add(p, path.clone(), &a.id, &a.name, i);
        let dept = depts.reg.get(&a.department);
        if dept.is_none() {
            p.unknown(format!("{path}.department"), "department", &a.department);
        }
        let street = units.find(&a.street, UnitKind::Street);
        if street.is_none() {
            p.unknown(format!("{path}.street"), "street office", &a.street);
        }
        if let (Some(d), Some(s)) = (dept, street) {
            depts.same_district(p, units, format!("{path}.department"), d, s);
            out.street_pairs.push((s, AgencyId(i as u32)));
        }
        out.list.push(Agency {
            id: a.id.clone(),
            name: a.name.clone(),
            department: DepartmentId(dept.unwrap_or(0) as u32),
            street: UnitId(street.unwrap_or(0) as u32),
            platform: a.platform,
        });
    }
    out
}

/// Roles, service items and categories, with the department owning each category in each
/// district.
struct Catalogue<'a> {
    roles: Registry<'a>,
    items: Registry<'a>,
    /// Categories by code.
    codes: Registry<'a>,
    categories: Vec<Category>,
    /// `owner[category * districts + district offset]`.
    owner: Vec<Option<DepartmentId>>,
}

impl Catalogue<'_> {
    fn find_role(&self, id: &str) -> Option<usize> {
        self.roles.get(id).filter(|&r| r < MAX_ROLES)
    }

    fn roles(&self, p: &mut Problems, path: &str, ids: &[String]) -> RoleSet {
        resolve_list(p, path, "role", ids, |r| self.find_role(r))
            .into_iter()
            .filter_map(Role::from_index)
            .collect()
    }
}

fn catalogue<'a>(
    p: &mut Problems,
    c: &'a CityConfig,
    units: &Units,
    depts: &Departments,
) -> Catalogue<'a> {
    let mut roles = Registry::new();
    for (i, r) in c.roles.iter().enumerate() {
        roles.add(p, format!("roles[{i}]"), &r.id, &r.name, i);
    }
    if c.roles.len() > MAX_ROLES {
        p.push(
            "roles",
            K::TooManyRoles {
                count: c.roles.len(),
                limit: MAX_ROLES,
            },
        );
    }
    let mut items = Registry::new();
    for (i, s) in c.service_items.iter().enumerate() {
        items.add(p, format!("service_items[{i}]"), &s.id, &s.name, i);
    }
    let n_districts = c.districts.len();
    let mut cat = Catalogue {
        roles,
        items,
        codes: Registry::new(),
        categories: Vec::with_capacity(c.categories.len()),
        owner: vec![None; c.categories.len() * n_districts],
    };
    for (i, k) in c.categories.iter().enumerate() {
        let path = format!("categories[{i}]");
        if k.code.trim().is_empty() {
            p.push(format!("{path}.code"), K::Empty { field: "code" });
        }
        // Registry::add checks the name and reports the id under `.id`; categories say `.code`.
        if k.name.trim().is_empty() {
            p.push(format!("{path}.name"), K::Empty { field: "name" });
        }
        match cat.codes.ids.get(k.code.as_str()) {
            Some((_, first)) => p.push(
                format!("{path}.code"),
                K::DuplicateId {
                    id: k.code.clone(),
                    first: first.clone(),
                },
            ),
            None => {
                cat.codes.ids.insert(&k.code, (i, path.clone()));
            }
        }
        if k.roles.is_empty() {
            p.push(format!("{path}.roles"), K::Missing { what: "roles" });
        }
        let roles = cat.roles(p, &format!("{path}.roles"), &k.roles);
        let deadlines = deadlines(p, &path, k);
        let ds = resolve_list(
            p,
            &format!("{path}.departments"),
            "department",
            &k.departments,
            |d| depts.reg.get(d),
        );
        for (j, &d) in ds.iter().enumerate() {
            let dist = depts.list[d].district.index();
            if dist < units.d0 || dist >= units.s0 {
                continue;
            }
            let slot = &mut cat.owner[i * n_districts + dist - units.d0];
            if slot.is_some() {
                p.push(
                    format!("{path}.departments[{j}]"),
                    K::TwoOwners {
                        department: depts.list[d].id.clone(),
                        district: units.id(depts.list[d].district),
                    },
                );
            } else {
                *slot = Some(DepartmentId(d as u32));
            }
        }
        let service_item = k.service_item.as_deref().and_then(|s| {
            let found = cat.items.get(s);
            if found.is_none() {
                p.unknown(format!("{path}.service_item"), "service item", s);
            }
            found.map(|x| ServiceItemId(x as u32))
        });
        cat.categories.push(Category {
            code: k.code.clone(),
            name: k.name.clone(),
            platform: k.platform,
            roles,
            deadlines,
            level: k.level,
            service_item,
        });
    }
    cat
}

fn deadlines(p: &mut Problems, path: &str, k: &CategoryConfig) -> [Option<Duration>; 4] {
    if k.deadlines.is_empty() {
        p.push(
            format!("{path}.deadlines"),
            K::Missing { what: "deadlines" },
        );
    }
    let mut deadlines = [None; 4];
    for (j, d) in k.deadlines.iter().enumerate() {
        let dpath = format!("{path}.deadlines[{j}]");
        if !(d.hours > 0.0 && d.hours <= MAX_DEADLINE_HOURS) {
            p.push(
                dpath,
                K::BadDeadline {
                    priority: d.priority,
                    hours: d.hours,
                },
            );
        } else if deadlines[d.priority.index()].is_some() {
            p.push(
                dpath,
                K::Repeated {
                    id: priority_name(d.priority).to_string(),
                },
            );
        } else {
            deadlines[d.priority.index()] = Some(Duration::from_secs_f64(d.hours * 3600.0));
        }
    }
    deadlines
}

/// Resolves a list of category codes given to units at `target`: a category above that
/// level would be pushed down, a problem.
fn level_list(
    p: &mut Problems,
    cat: &Catalogue,
    path: &str,
    codes: &[String],
    target: DutyLevel,
) -> Vec<usize> {
    let cats = resolve_list(p, path, "category", codes, |code| cat.codes.get(code));
    for (k, &i) in cats.iter().enumerate() {
        let level = cat.categories[i].level;
        if level > target {
            p.push(
                format!("{path}[{k}]"),
                K::PushedDown {
                    category: cat.categories[i].code.clone(),
                    level,
                    target,
                },
            );
        }
    }
    cats
}

fn duty_lists(p: &mut Problems, c: &CityConfig, units: &Units, cat: &Catalogue) -> DutyTable {
    let mut duty = DutyTable::new(units.list.len(), cat.categories.len());
    let words = duty.words();
    let community_list = level_list(
        p,
        cat,
        "duty_lists.community",
        &c.duty_lists.community,
        DutyLevel::Community,
    );
    let street_list = level_list(
        p,
        cat,
        "duty_lists.street",
        &c.duty_lists.street,
        DutyLevel::Street,
    );
    for u in units.s0..units.list.len() {
        let list = if u < units.c0 {
            &street_list
        } else {
            &community_list
        };
        for &k in list {
            DutyTable::set(&mut duty.held, words, u, k, true);
        }
    }
    let mut overridden: HashMap<usize, usize> = HashMap::new();
    for (i, o) in c.duty_lists.overrides.iter().enumerate() {
        let path = format!("duty_lists.overrides[{i}]");
        let Some(u) = units.reg.get(&o.unit) else {
            p.unknown(format!("{path}.unit"), "unit", &o.unit);
            continue;
        };
        let target = match units.kind_of(u) {
            UnitKind::Street => DutyLevel::Street,
            UnitKind::Community => DutyLevel::Community,
            kind => {
                p.push(
                    format!("{path}.unit"),
                    K::NoDutyList {
                        unit: o.unit.clone(),
                        kind: kind.as_str(),
                    },
                );
                continue;
            }
        };
        if let Some(first) = overridden.insert(u, i) {
            p.push(
                format!("{path}.unit"),
                K::DuplicateId {
                    id: o.unit.clone(),
                    first: format!("duty_lists.overrides[{first}]"),
                },
            );
        }
        let adds = level_list(p, cat, &format!("{path}.add"), &o.add, target);
        let removes = resolve_list(p, &format!("{path}.remove"), "category", &o.remove, |x| {
            cat.codes.get(x)
        });
        for (k, i) in removes.iter().enumerate() {
            if adds.contains(i) {
                p.push(
                    format!("{path}.remove[{k}]"),
                    K::AddAndRemove {
                        category: cat.categories[*i].code.clone(),
                    },
                );
            }
        }
        for &k in &removes {
            DutyTable::set(&mut duty.held, words, u, k, false);
            DutyTable::set(&mut duty.removed, words, u, k, true);
        }
        for &k in &adds {
            DutyTable::set(&mut duty.held, words, u, k, true);
            DutyTable::set(&mut duty.added, words, u, k, true);
            DutyTable::set(&mut duty.removed, words, u, k, false);
        }
    }
    duty
}

/// Which community each cell lies in, and the units below each unit.
struct Cells {
    cell_community: Vec<UnitId>,
    community_cells: Csr<CellId>,
    children: Csr<UnitId>,
}

fn grid_cells(p: &mut Problems, c: &CityConfig, units: &Units, grid: &Grid) -> Cells {
    let mut cell_community = Vec::with_capacity(grid.len());
    let mut community_cell_pairs = Vec::with_capacity(grid.len());
    for (i, cell) in grid.cells().iter().enumerate() {
        let path = format!("grid.cells[{i}]");
        let Some(name) = cell.community.as_deref() else {
            p.push(
                path,
                K::CellWithoutParent {
                    cell: cell.name.clone(),
                    field: "community",
                },
            );
            cell_community.push(UnitId(0));
            continue;
        };
        let Some(m) = units.find(name, UnitKind::Community) else {
            p.unknown(format!("{path}.community"), "community", name);
            cell_community.push(UnitId(0));
            continue;
        };
        cell_community.push(UnitId(m as u32));
        community_cell_pairs.push((m - units.c0, CellId(i as u32)));
        let street = units.list[m].parent;
        let district = street.and_then(|s| units.list[s.index()].parent);
        for (field, given, want) in [
            ("street", &cell.street, street),
            ("district", &cell.district, district),
        ] {
            if let (Some(given), Some(want)) = (given, want) {
                let w = &units.list[want.index()];
                if given != &w.id && given != &w.name {
                    p.push(
                        format!("{path}.{field}"),
                        K::CellParentMismatch {
                            cell: cell.name.clone(),
                            field,
                            found: given.clone(),
                            expected: w.id.clone(),
                        },
                    );
                }
            }
        }
    }
    let community_cells = Csr::from_pairs(c.communities.len(), &community_cell_pairs);
    let mut children_pairs = Vec::new();
    for (u, unit) in units.list.iter().enumerate().skip(1) {
        if let Some(parent) = unit.parent {
            children_pairs.push((parent.index(), UnitId(u as u32)));
        }
    }
    let children = Csr::from_pairs(units.list.len(), &children_pairs);
    // A unit with nothing below it is not covered by the grid.
    for (i, _) in c.communities.iter().enumerate() {
        if community_cells.row(i).is_empty() {
            p.push(format!("communities[{i}]"), K::NoCells);
        }
    }
    for (i, _) in c.streets.iter().enumerate() {
        if children.row(units.s0 + i).is_empty() {
            p.push(format!("streets[{i}]"), K::NoCells);
        }
    }
    for (i, _) in c.districts.iter().enumerate() {
        if children.row(units.d0 + i).is_empty() {
            p.push(format!("districts[{i}]"), K::NoCells);
        }
    }
    Cells {
        cell_community,
        community_cells,
        children,
    }
}

struct Points<'a> {
    reg: Registry<'a>,
    list: Vec<ServicePoint>,
    item_pairs: Vec<(usize, ServicePointId)>,
}

fn service_points<'a>(
    p: &mut Problems,
    c: &'a CityConfig,
    units: &Units,
    cat: &Catalogue,
    grid: &Grid,
) -> Points<'a> {
    let mut out = Points {
        reg: Registry::new(),
        list: Vec::with_capacity(c.service_points.len()),
        item_pairs: Vec::new(),
    };
    for (i, s) in c.service_points.iter().enumerate() {
        let path = format!("service_points[{i}]");
        out.reg.add(p, path.clone(), &s.id, &s.name, i);
        let unit = units.reg.get(&s.unit);
        if unit.is_none() {
            p.unknown(format!("{path}.unit"), "unit", &s.unit);
        }
        let position = location(p, format!("{path}.position"), s.position);
        let cell = position.and_then(|l| {
            let cell = grid.locate(l);
            if cell.is_none() {
                p.push(
                    format!("{path}.position"),
                    K::OutsideGrid {
                        lon: l.lon(),
                        lat: l.lat(),
                    },
                );
            }
            cell
        });
        if s.items.is_empty() {
            p.push(format!("{path}.items"), K::Missing { what: "items" });
        }
        let items: Vec<ServiceItemId> =
            resolve_list(p, &format!("{path}.items"), "service item", &s.items, |x| {
                cat.items.get(x)
            })
            .into_iter()
            .map(|x| ServiceItemId(x as u32))
            .collect();
        for &it in &items {
            out.item_pairs.push((it.index(), ServicePointId(i as u32)));
        }
        if let (Some(position), Some(cell)) = (position, cell) {
            out.list.push(ServicePoint {
                id: s.id.clone(),
                name: s.name.clone(),
                unit: UnitId(unit.unwrap_or(0) as u32),
                position,
                cell,
                items,
            });
        }
    }
    out
}

/// What the workers phase reads: the units a worker may belong to, the roles, and where
/// each cell lies.
struct Forces<'x, 'a> {
    units: &'x Units<'a>,
    organs: &'x Organs<'a>,
    agencies: &'x Agencies<'a>,
    catalogue: &'x Catalogue<'a>,
    cell_community: &'x [UnitId],
}

impl Forces<'_, '_> {
    fn find_unit(&self, id: &str) -> [Option<WorkerUnit>; 3] {
        [
            self.units
                .find(id, UnitKind::Community)
                .map(|u| WorkerUnit::Community(UnitId(u as u32))),
            self.organs
                .reg
                .get(id)
                .map(|o| WorkerUnit::Organ(OrganId(o as u32))),
            self.agencies
                .reg
                .get(id)
                .map(|a| WorkerUnit::Agency(AgencyId(a as u32))),
        ]
    }
}

struct Staff<'a> {
    reg: Registry<'a>,
    list: Vec<Worker>,
    homes: Vec<Vec<CellId>>,
}

fn workers<'a>(p: &mut Problems, c: &'a CityConfig, f: &Forces, grid: &Grid) -> Staff<'a> {
    let units = &f.units.list;
    let mut out = Staff {
        reg: Registry::new(),
        list: Vec::with_capacity(c.workers.len()),
        homes: Vec::with_capacity(c.workers.len()),
    };
    for (i, w) in c.workers.iter().enumerate() {
        let path = format!("workers[{i}]");
        out.reg.add(p, path.clone(), &w.id, &w.name, i);
        if w.roles.is_empty() {
            p.push(format!("{path}.roles"), K::Missing { what: "roles" });
        }
        let roles = f.catalogue.roles(p, &format!("{path}.roles"), &w.roles);
        if w.cells.is_empty() {
            p.push(format!("{path}.cells"), K::Missing { what: "cells" });
        }
        let cells: Vec<CellId> = resolve_list(p, &format!("{path}.cells"), "cell", &w.cells, |x| {
            grid.id_of(x).map(CellId::index)
        })
        .into_iter()
        .map(|x| CellId(x as u32))
        .collect();
        let unit = worker_unit(p, &path, &w.unit, &|id| f.find_unit(id));
        // The street office the worker works in, and the area their home cells must lie in.
        let (street, area) = match unit {
            Some(WorkerUnit::Community(m)) => (units[m.index()].parent, Some(m)),
            Some(WorkerUnit::Organ(o)) => (Some(f.organs.list[o.index()].street), None),
            Some(WorkerUnit::Agency(a)) => (Some(f.agencies.list[a.index()].street), None),
            None => (None, None),
        };
        if let Some(street) = street {
            for (k, &cell) in cells.iter().enumerate() {
                let m = f.cell_community[cell.index()];
                let inside = match area {
                    Some(community) => m == community,
                    None => units[m.index()].parent == Some(street),
                };
                if !inside {
                    let owner = area.unwrap_or(street);
                    p.push(
                        format!("{path}.cells[{k}]"),
                        K::OutsideUnit {
                            cell: grid[cell].name.clone(),
                            unit: units[owner.index()].id.clone(),
                        },
                    );
                }
            }
        }
        if !(1..=MAX_CAPACITY).contains(&w.capacity) {
            p.push(
                format!("{path}.capacity"),
                K::BadCapacity {
                    capacity: w.capacity,
                    max: MAX_CAPACITY,
                },
            );
        }
        let position = w
            .position
            .and_then(|pos| location(p, format!("{path}.position"), pos));
        out.list.push(Worker {
            id: w.id.clone(),
            name: w.name.clone(),
            kind: w.kind,
            unit: unit.unwrap_or(WorkerUnit::Community(UnitId(0))),
            street: street.unwrap_or(UnitId(0)),
            roles,
            capacity: w.capacity,
            position,
        });
        out.homes.push(cells);
    }
    out
}

/// The org graph; a cycle of departments reporting to each other is a problem.
fn org_graph(
    p: &mut Problems,
    units: &Units,
    depts: &Departments,
    organs: &Organs,
    agencies: &Agencies,
) -> OrgGraph {
    let mut org = OrgGraph::new(
        units.list.len(),
        organs.list.len(),
        depts.list.len(),
        agencies.list.len(),
    );
    for (u, unit) in units.list.iter().enumerate() {
        if let Some(parent) = unit.parent {
            org.add_edge(
                OrgNode::Unit(UnitId(u as u32)),
                OrgNode::Unit(parent),
                OrgEdge::Parent,
            );
        }
    }
    for (o, organ) in organs.list.iter().enumerate() {
        org.add_edge(
            OrgNode::Organ(OrganId(o as u32)),
            OrgNode::Unit(organ.street),
            OrgEdge::Parent,
        );
    }
    for &(o, d) in &organs.dept_pairs {
        org.add_edge(
            OrgNode::Organ(OrganId(o as u32)),
            OrgNode::Department(d),
            OrgEdge::AnswersTo,
        );
    }
    for (d, dept) in depts.list.iter().enumerate() {
        let node = OrgNode::Department(DepartmentId(d as u32));
        org.add_edge(node, OrgNode::Unit(dept.district), OrgEdge::Parent);
        if let Some(up) = dept.reports_to {
            org.add_edge(node, OrgNode::Department(up), OrgEdge::ReportsTo);
        }
    }
    for (a, agency) in agencies.list.iter().enumerate() {
        let node = OrgNode::Agency(AgencyId(a as u32));
        org.add_edge(node, OrgNode::Unit(agency.street), OrgEdge::ManagedBy);
        org.add_edge(
            node,
            OrgNode::Department(agency.department),
            OrgEdge::SentBy,
        );
    }
    for cycle in org.cycles() {
        let mut ds: Vec<usize> = cycle
            .iter()
            .filter_map(|n| match n {
                OrgNode::Department(d) => Some(d.index()),
                _ => None,
            })
            .collect();
        ds.sort_unstable();
        let first = ds.first().copied().unwrap_or(0);
        p.push(
            format!("departments[{first}].reports_to"),
            K::Cycle {
                ids: ds.iter().map(|&d| depts.list[d].id.clone()).collect(),
            },
        );
    }
    org
}

/// Decides every community and category once (see [`DutyTable::precompute`]); a pair no
/// unit holds is a problem, counted per category and district.
fn admission(
    p: &mut Problems,
    c: &CityConfig,
    units: &Units,
    organs: &Organs,
    cat: &Catalogue,
    duty: &mut DutyTable,
) {
    let n_cats = cat.categories.len();
    let n_districts = c.districts.len();
    let owner =
        |k: usize, district: UnitId| cat.owner[k * n_districts + district.index() - units.d0];
    let unheld_pairs = duty.precompute(&Precompute {
        units: &units.list,
        communities: units.c0..units.list.len(),
        categories: &cat.categories,
        platform_organs: &organs.platform,
        owner: &owner,
    });
    let mut unheld: Vec<usize> = vec![0; n_cats * n_districts];
    for (k, district) in unheld_pairs {
        unheld[k * n_districts + district.index() - units.d0] += 1;
    }
    for k in 0..n_cats {
        for d in 0..n_districts {
            let n = unheld[k * n_districts + d];
            if n > 0 {
                p.push(
                    format!("categories[{k}]"),
                    K::Unheld {
                        category: cat.categories[k].code.clone(),
                        district: c.districts[d].id.clone(),
                        communities: n,
                    },
                );
            }
        }
    }
}

fn names_of<T>(reg: &Registry<'_>, id: impl Fn(usize) -> T) -> HashMap<String, T> {
    reg.ids
        .iter()
        .map(|(k, (i, _))| (k.to_string(), id(*i)))
        .collect()
}

/// Priorities are named in problems as in the config.
fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Urgent => "urgent",
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}
