//! From a [`CityConfig`] and its grid to a [`City`]: every reference resolved, every rule
//! checked, every problem reported at once with the path to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{CityConfig, DutyLevel, MandatoryOrgan, Priority};
use super::duty::{Admission, AdmissionTrace, DutyTable, Holder, Refusal};
use super::error::{ConfigError, ConfigProblem, ConfigProblemKind as K};
use super::ids::{
    AgencyId, CategoryId, Csr, DepartmentId, MAX_ROLES, OrganId, Role, RoleSet, ServiceItemId,
    ServicePointId, UnitId, WorkerId,
};
use super::model::{
    Agency, Category, City, Department, NO_ORGAN, Names, Organ, RoleInfo, ServiceItem,
    ServicePoint, Unit, UnitKind,
};
use super::org::{OrgEdge, OrgGraph, OrgNode};
use super::workers::{MAX_CAPACITY, Worker, WorkerUnit, Workforce};
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

pub(crate) fn build(config: &CityConfig, grid: Arc<Grid>) -> Result<City, ConfigError> {
    let mut p = Problems::default();
    let c = config;
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

    // ---- units: one namespace, laid out city, districts, streets, communities ----
    let d0 = 1;
    let s0 = d0 + c.districts.len();
    let c0 = s0 + c.streets.len();
    let kind_start = [
        0,
        d0 as u32,
        s0 as u32,
        c0 as u32,
        (c0 + c.communities.len()) as u32,
    ];
    let mut units_reg = Registry::new();
    units_reg.add(&mut p, "city".into(), &c.city.id, &c.city.name, 0);
    for (i, d) in c.districts.iter().enumerate() {
        units_reg.add(&mut p, format!("districts[{i}]"), &d.id, &d.name, d0 + i);
    }
    for (i, s) in c.streets.iter().enumerate() {
        units_reg.add(&mut p, format!("streets[{i}]"), &s.id, &s.name, s0 + i);
    }
    for (i, m) in c.communities.iter().enumerate() {
        units_reg.add(&mut p, format!("communities[{i}]"), &m.id, &m.name, c0 + i);
    }
    let kind_of = |u: usize| -> UnitKind {
        match u {
            0 => UnitKind::City,
            u if u < s0 => UnitKind::District,
            u if u < c0 => UnitKind::Street,
            _ => UnitKind::Community,
        }
    };
    let find_kind = |id: &str, kind: UnitKind| units_reg.get(id).filter(|&u| kind_of(u) == kind);

    let mut units: Vec<Unit> = Vec::with_capacity(c0 + c.communities.len());
    units.push(Unit {
        id: c.city.id.clone(),
        name: c.city.name.clone(),
        kind: UnitKind::City,
        parent: None,
        village: false,
    });
    for d in &c.districts {
        units.push(Unit {
            id: d.id.clone(),
            name: d.name.clone(),
            kind: UnitKind::District,
            parent: Some(UnitId(0)),
            village: false,
        });
    }
    for (i, s) in c.streets.iter().enumerate() {
        let parent = find_kind(&s.district, UnitKind::District);
        if parent.is_none() {
            p.unknown(format!("streets[{i}].district"), "district", &s.district);
        }
        units.push(Unit {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: UnitKind::Street,
            parent: parent.map(|u| UnitId(u as u32)),
            village: false,
        });
    }
    for (i, m) in c.communities.iter().enumerate() {
        let parent = find_kind(&m.street, UnitKind::Street);
        if parent.is_none() {
            p.unknown(
                format!("communities[{i}].street"),
                "street office",
                &m.street,
            );
        }
        units.push(Unit {
            id: m.id.clone(),
            name: m.name.clone(),
            kind: UnitKind::Community,
            parent: parent.map(|u| UnitId(u as u32)),
            village: m.village,
        });
    }
    let district_of = |u: usize| -> Option<UnitId> {
        let mut at = u;
        loop {
            let unit = units.get(at)?;
            match unit.kind {
                UnitKind::District => return Some(UnitId(at as u32)),
                UnitKind::City => return None,
                _ => at = unit.parent?.index(),
            }
        }
    };

    // ---- organ limits ----
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

    // ---- departments ----
    let mut dept_reg = Registry::new();
    for (i, d) in c.departments.iter().enumerate() {
        dept_reg.add(&mut p, format!("departments[{i}]"), &d.id, &d.name, i);
    }
    let mut departments: Vec<Department> = Vec::with_capacity(c.departments.len());
    for (i, d) in c.departments.iter().enumerate() {
        let district = find_kind(&d.district, UnitKind::District);
        if district.is_none() {
            p.unknown(
                format!("departments[{i}].district"),
                "district",
                &d.district,
            );
        }
        let reports_to = d.reports_to.as_deref().and_then(|up| {
            let found = dept_reg.get(up);
            if found.is_none() {
                p.unknown(format!("departments[{i}].reports_to"), "department", up);
            }
            found
        });
        departments.push(Department {
            id: d.id.clone(),
            name: d.name.clone(),
            district: UnitId(district.unwrap_or(0) as u32),
            reports_to: reports_to.map(|u| DepartmentId(u as u32)),
        });
    }
    // A cross-district reference names the district of each side.
    let district_id = |u: UnitId| units.get(u.index()).map_or(String::new(), |u| u.id.clone());
    for (i, d) in c.departments.iter().enumerate() {
        if let (Some(up), Some(dist)) = (
            departments[i].reports_to,
            find_kind(&d.district, UnitKind::District),
        ) {
            let up_dist = departments[up.index()].district;
            if up_dist.index() != dist && up_dist.index() != 0 {
                p.push(
                    format!("departments[{i}].reports_to"),
                    K::OtherDistrict {
                        id: departments[up.index()].id.clone(),
                        found: district_id(up_dist),
                        expected: d.district.clone(),
                    },
                );
            }
        }
    }
    let same_district = |p: &mut Problems, path: String, dept: usize, unit: usize| {
        let (Some(want), dd) = (district_of(unit), departments[dept].district) else {
            return;
        };
        if dd != want && dd.index() != 0 {
            p.push(
                path,
                K::OtherDistrict {
                    id: departments[dept].id.clone(),
                    found: district_id(dd),
                    expected: district_id(want),
                },
            );
        }
    };

    // ---- organs ----
    let mut organ_reg = Registry::new();
    let mut organs: Vec<Organ> = Vec::new();
    let mut street_organ_pairs = Vec::new();
    let mut organ_dept_pairs = Vec::new();
    let mut platform_organs = vec![[NO_ORGAN; 4]; units.len()];
    for (i, s) in c.streets.iter().enumerate() {
        let street = s0 + i;
        let limit = find_kind(&s.district, UnitKind::District)
            .and_then(|d| c.districts[d - d0].max_organs)
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
        for (j, o) in s.organs.iter().enumerate() {
            let path = format!("streets[{i}].organs[{j}]");
            let id = OrganId(organs.len() as u32);
            organ_reg.add(&mut p, path.clone(), &o.id, &o.name, id.index());
            if let Some(m) = o.mandatory {
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
                        platform_organs[street][m.platform().index()] = id;
                    }
                }
                if o.platform != Some(m.platform()) {
                    p.push(
                        format!("{path}.platform"),
                        K::MandatoryOrganPlatform {
                            organ: m,
                            expected: m.platform(),
                            found: o.platform,
                        },
                    );
                }
            }
            let depts = resolve_list(
                &mut p,
                &format!("{path}.departments"),
                "department",
                &o.departments,
                |d| dept_reg.get(d),
            );
            for (k, &d) in depts.iter().enumerate() {
                same_district(&mut p, format!("{path}.departments[{k}]"), d, street);
                organ_dept_pairs.push((id.index(), DepartmentId(d as u32)));
            }
            street_organ_pairs.push((street, id));
            organs.push(Organ {
                id: o.id.clone(),
                name: o.name.clone(),
                kind: o.kind,
                mandatory: o.mandatory,
                platform: o.platform,
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
    check_count(&mut p, "organs", organs.len());

    // ---- agencies ----
    let mut agency_reg = Registry::new();
    let mut agencies: Vec<Agency> = Vec::new();
    let mut street_agency_pairs = Vec::new();
    for (i, a) in c.agencies.iter().enumerate() {
        let path = format!("agencies[{i}]");
        agency_reg.add(&mut p, path.clone(), &a.id, &a.name, i);
        let dept = dept_reg.get(&a.department);
        if dept.is_none() {
            p.unknown(format!("{path}.department"), "department", &a.department);
        }
        let street = find_kind(&a.street, UnitKind::Street);
        if street.is_none() {
            p.unknown(format!("{path}.street"), "street office", &a.street);
        }
        if let (Some(d), Some(s)) = (dept, street) {
            same_district(&mut p, format!("{path}.department"), d, s);
            street_agency_pairs.push((s, AgencyId(i as u32)));
        }
        agencies.push(Agency {
            id: a.id.clone(),
            name: a.name.clone(),
            department: DepartmentId(dept.unwrap_or(0) as u32),
            street: UnitId(street.unwrap_or(0) as u32),
            platform: a.platform,
        });
    }

    // ---- roles and service items ----
    let mut role_reg = Registry::new();
    for (i, r) in c.roles.iter().enumerate() {
        role_reg.add(&mut p, format!("roles[{i}]"), &r.id, &r.name, i);
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
    let find_role = |id: &str| role_reg.get(id).filter(|&r| r < MAX_ROLES);
    let mut item_reg = Registry::new();
    for (i, s) in c.service_items.iter().enumerate() {
        item_reg.add(&mut p, format!("service_items[{i}]"), &s.id, &s.name, i);
    }

    // ---- categories ----
    let mut cat_reg = Registry::new();
    let mut categories: Vec<Category> = Vec::with_capacity(c.categories.len());
    let n_districts = c.districts.len();
    // owner[category * districts + district offset]
    let mut owner: Vec<Option<DepartmentId>> = vec![None; c.categories.len() * n_districts];
    for (i, k) in c.categories.iter().enumerate() {
        let path = format!("categories[{i}]");
        if k.code.trim().is_empty() {
            p.push(format!("{path}.code"), K::Empty { field: "code" });
        }
        // Registry::add checks the name and reports the id under `.id`; categories say `.code`.
        if k.name.trim().is_empty() {
            p.push(format!("{path}.name"), K::Empty { field: "name" });
        }
        match cat_reg.ids.get(k.code.as_str()) {
            Some((_, first)) => p.push(
                format!("{path}.code"),
                K::DuplicateId {
                    id: k.code.clone(),
                    first: first.clone(),
                },
            ),
            None => {
                cat_reg.ids.insert(&k.code, (i, path.clone()));
            }
        }
        if k.roles.is_empty() {
            p.push(format!("{path}.roles"), K::Missing { what: "roles" });
        }
        let roles: RoleSet =
            resolve_list(&mut p, &format!("{path}.roles"), "role", &k.roles, |r| {
                find_role(r)
            })
            .into_iter()
            .filter_map(Role::from_index)
            .collect();
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
        let depts = resolve_list(
            &mut p,
            &format!("{path}.departments"),
            "department",
            &k.departments,
            |d| dept_reg.get(d),
        );
        for (j, &d) in depts.iter().enumerate() {
            let dist = departments[d].district.index();
            if dist < d0 || dist >= s0 {
                continue;
            }
            let slot = &mut owner[i * n_districts + dist - d0];
            if slot.is_some() {
                p.push(
                    format!("{path}.departments[{j}]"),
                    K::TwoOwners {
                        department: departments[d].id.clone(),
                        district: district_id(departments[d].district),
                    },
                );
            } else {
                *slot = Some(DepartmentId(d as u32));
            }
        }
        let service_item = k.service_item.as_deref().and_then(|s| {
            let found = item_reg.get(s);
            if found.is_none() {
                p.unknown(format!("{path}.service_item"), "service item", s);
            }
            found.map(|x| ServiceItemId(x as u32))
        });
        categories.push(Category {
            code: k.code.clone(),
            name: k.name.clone(),
            platform: k.platform,
            roles,
            deadlines,
            level: k.level,
            service_item,
        });
    }

    // ---- duty lists ----
    let mut duty = DutyTable::new(units.len(), categories.len());
    let words = duty.words();
    let level_list = |p: &mut Problems, path: &str, codes: &[String], target: DutyLevel| {
        let cats = resolve_list(p, path, "category", codes, |code| cat_reg.get(code));
        for (k, &cat) in cats.iter().enumerate() {
            let level = categories[cat].level;
            if level > target {
                p.push(
                    format!("{path}[{k}]"),
                    K::PushedDown {
                        category: categories[cat].code.clone(),
                        level,
                        target,
                    },
                );
            }
        }
        cats
    };
    let community_list = level_list(
        &mut p,
        "duty_lists.community",
        &c.duty_lists.community,
        DutyLevel::Community,
    );
    let street_list = level_list(
        &mut p,
        "duty_lists.street",
        &c.duty_lists.street,
        DutyLevel::Street,
    );
    for u in s0..units.len() {
        let list = if u < c0 {
            &street_list
        } else {
            &community_list
        };
        for &cat in list {
            DutyTable::set(&mut duty.held, words, u, cat, true);
        }
    }
    let mut overridden: HashMap<usize, usize> = HashMap::new();
    for (i, o) in c.duty_lists.overrides.iter().enumerate() {
        let path = format!("duty_lists.overrides[{i}]");
        let Some(u) = units_reg.get(&o.unit) else {
            p.unknown(format!("{path}.unit"), "unit", &o.unit);
            continue;
        };
        let target = match kind_of(u) {
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
        let adds = level_list(&mut p, &format!("{path}.add"), &o.add, target);
        let removes = resolve_list(
            &mut p,
            &format!("{path}.remove"),
            "category",
            &o.remove,
            |x| cat_reg.get(x),
        );
        for (k, cat) in removes.iter().enumerate() {
            if adds.contains(cat) {
                p.push(
                    format!("{path}.remove[{k}]"),
                    K::AddAndRemove {
                        category: categories[*cat].code.clone(),
                    },
                );
            }
        }
        for &cat in &removes {
            DutyTable::set(&mut duty.held, words, u, cat, false);
            DutyTable::set(&mut duty.removed, words, u, cat, true);
        }
        for &cat in &adds {
            DutyTable::set(&mut duty.held, words, u, cat, true);
            DutyTable::set(&mut duty.added, words, u, cat, true);
            DutyTable::set(&mut duty.removed, words, u, cat, false);
        }
    }

    // ---- grid cells ----
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
        let Some(m) = find_kind(name, UnitKind::Community) else {
            p.unknown(format!("{path}.community"), "community", name);
            cell_community.push(UnitId(0));
            continue;
        };
        cell_community.push(UnitId(m as u32));
        community_cell_pairs.push((m - c0, CellId(i as u32)));
        let street = units[m].parent;
        let district = street.and_then(|s| units[s.index()].parent);
        for (field, given, want) in [
            ("street", &cell.street, street),
            ("district", &cell.district, district),
        ] {
            if let (Some(given), Some(want)) = (given, want) {
                let w = &units[want.index()];
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
    for (u, unit) in units.iter().enumerate().skip(1) {
        if let Some(parent) = unit.parent {
            children_pairs.push((parent.index(), UnitId(u as u32)));
        }
    }
    let children = Csr::from_pairs(units.len(), &children_pairs);
    // A unit with nothing below it is not covered by the grid.
    for (i, _) in c.communities.iter().enumerate() {
        if community_cells.row(i).is_empty() {
            p.push(format!("communities[{i}]"), K::NoCells);
        }
    }
    for (i, _) in c.streets.iter().enumerate() {
        if children.row(s0 + i).is_empty() {
            p.push(format!("streets[{i}]"), K::NoCells);
        }
    }
    for (i, _) in c.districts.iter().enumerate() {
        if children.row(d0 + i).is_empty() {
            p.push(format!("districts[{i}]"), K::NoCells);
        }
    }

    // ---- service points ----
    let mut point_reg = Registry::new();
    let mut service_points = Vec::with_capacity(c.service_points.len());
    let mut item_point_pairs = Vec::new();
    for (i, s) in c.service_points.iter().enumerate() {
        let path = format!("service_points[{i}]");
        point_reg.add(&mut p, path.clone(), &s.id, &s.name, i);
        let unit = units_reg.get(&s.unit);
        if unit.is_none() {
            p.unknown(format!("{path}.unit"), "unit", &s.unit);
        }
        let position = location(&mut p, format!("{path}.position"), s.position);
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
        let items: Vec<ServiceItemId> = resolve_list(
            &mut p,
            &format!("{path}.items"),
            "service item",
            &s.items,
            |x| item_reg.get(x),
        )
        .into_iter()
        .map(|x| ServiceItemId(x as u32))
        .collect();
        for &it in &items {
            item_point_pairs.push((it.index(), ServicePointId(i as u32)));
        }
        if let (Some(position), Some(cell)) = (position, cell) {
            service_points.push(ServicePoint {
                id: s.id.clone(),
                name: s.name.clone(),
                unit: UnitId(unit.unwrap_or(0) as u32),
                position,
                cell,
                items,
            });
        }
    }

    // ---- workers ----
    let find_unit = |id: &str| -> [Option<WorkerUnit>; 3] {
        [
            find_kind(id, UnitKind::Community).map(|u| WorkerUnit::Community(UnitId(u as u32))),
            organ_reg
                .get(id)
                .map(|o| WorkerUnit::Organ(OrganId(o as u32))),
            agency_reg
                .get(id)
                .map(|a| WorkerUnit::Agency(AgencyId(a as u32))),
        ]
    };
    let mut worker_reg = Registry::new();
    let mut workers = Vec::with_capacity(c.workers.len());
    let mut homes = Vec::with_capacity(c.workers.len());
    for (i, w) in c.workers.iter().enumerate() {
        let path = format!("workers[{i}]");
        worker_reg.add(&mut p, path.clone(), &w.id, &w.name, i);
        if w.roles.is_empty() {
            p.push(format!("{path}.roles"), K::Missing { what: "roles" });
        }
        let roles: RoleSet =
            resolve_list(&mut p, &format!("{path}.roles"), "role", &w.roles, |r| {
                find_role(r)
            })
            .into_iter()
            .filter_map(Role::from_index)
            .collect();
        if w.cells.is_empty() {
            p.push(format!("{path}.cells"), K::Missing { what: "cells" });
        }
        let cells: Vec<CellId> =
            resolve_list(&mut p, &format!("{path}.cells"), "cell", &w.cells, |x| {
                grid.id_of(x).map(CellId::index)
            })
            .into_iter()
            .map(|x| CellId(x as u32))
            .collect();
        let unit = worker_unit(&mut p, &path, &w.unit, &find_unit);
        // The street office the worker works in, and the area their home cells must lie in.
        let (street, area) = match unit {
            Some(WorkerUnit::Community(m)) => (units[m.index()].parent, Some(m)),
            Some(WorkerUnit::Organ(o)) => (Some(organs[o.index()].street), None),
            Some(WorkerUnit::Agency(a)) => (Some(agencies[a.index()].street), None),
            None => (None, None),
        };
        if let Some(street) = street {
            for (k, &cell) in cells.iter().enumerate() {
                let m = cell_community[cell.index()];
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
            .and_then(|pos| location(&mut p, format!("{path}.position"), pos));
        workers.push(Worker {
            id: w.id.clone(),
            name: w.name.clone(),
            kind: w.kind,
            unit: unit.unwrap_or(WorkerUnit::Community(UnitId(0))),
            street: street.unwrap_or(UnitId(0)),
            roles,
            capacity: w.capacity,
            position,
        });
        homes.push(cells);
    }

    // ---- org graph, and its cycles ----
    let mut org = OrgGraph::new(units.len(), organs.len(), departments.len(), agencies.len());
    for (u, unit) in units.iter().enumerate() {
        if let Some(parent) = unit.parent {
            org.add_edge(
                OrgNode::Unit(UnitId(u as u32)),
                OrgNode::Unit(parent),
                OrgEdge::Parent,
            );
        }
    }
    for (o, organ) in organs.iter().enumerate() {
        org.add_edge(
            OrgNode::Organ(OrganId(o as u32)),
            OrgNode::Unit(organ.street),
            OrgEdge::Parent,
        );
    }
    for &(o, d) in &organ_dept_pairs {
        org.add_edge(
            OrgNode::Organ(OrganId(o as u32)),
            OrgNode::Department(d),
            OrgEdge::AnswersTo,
        );
    }
    for (d, dept) in departments.iter().enumerate() {
        let node = OrgNode::Department(DepartmentId(d as u32));
        org.add_edge(node, OrgNode::Unit(dept.district), OrgEdge::Parent);
        if let Some(up) = dept.reports_to {
            org.add_edge(node, OrgNode::Department(up), OrgEdge::ReportsTo);
        }
    }
    for (a, agency) in agencies.iter().enumerate() {
        let node = OrgNode::Agency(AgencyId(a as u32));
        org.add_edge(node, OrgNode::Unit(agency.street), OrgEdge::ManagedBy);
        org.add_edge(
            node,
            OrgNode::Department(agency.department),
            OrgEdge::SentBy,
        );
    }
    for cycle in org.cycles() {
        let mut depts: Vec<usize> = cycle
            .iter()
            .filter_map(|n| match n {
                OrgNode::Department(d) => Some(d.index()),
                _ => None,
            })
            .collect();
        depts.sort_unstable();
        let first = depts.first().copied().unwrap_or(0);
        p.push(
            format!("departments[{first}].reports_to"),
            K::Cycle {
                ids: depts.iter().map(|&d| departments[d].id.clone()).collect(),
            },
        );
    }

    // ---- admission, per community and category; an unheld pair is a problem ----
    let n_cats = categories.len();
    let mut admissions = Vec::with_capacity(c.communities.len() * n_cats);
    let mut unheld: Vec<usize> = vec![0; n_cats * n_districts];
    let refusal = |u: usize, cat: usize, unit_level: DutyLevel| -> Refusal {
        if categories[cat].level > unit_level {
            Refusal::AboveUnit(categories[cat].level)
        } else if bit_of(&duty.removed, words, u, cat) {
            Refusal::Removed
        } else {
            Refusal::NotOnList
        }
    };
    for m in c0..units.len() {
        let community = UnitId(m as u32);
        let street = units[m].parent;
        let district = street.and_then(|s| units[s.index()].parent);
        for cat in 0..n_cats {
            let category = CategoryId(cat as u32);
            let decided = if duty.holds(community, cat) {
                Some((
                    Holder::Community(community),
                    AdmissionTrace::CommunityList {
                        by_override: duty.was_added(community, cat),
                    },
                ))
            } else if let Some(s) = street.filter(|s| duty.holds(*s, cat)) {
                Some((
                    Holder::Street {
                        street: s,
                        organ: platform_organs[s.index()][categories[cat].platform.index()],
                    },
                    AdmissionTrace::StreetList {
                        community,
                        refusal: refusal(m, cat, DutyLevel::Community),
                        by_override: duty.was_added(s, cat),
                    },
                ))
            } else {
                match (street, district) {
                    (Some(s), Some(d)) => owner[cat * n_districts + d.index() - d0].map(|dept| {
                        (
                            Holder::Department(dept),
                            AdmissionTrace::Referred {
                                community,
                                community_refusal: refusal(m, cat, DutyLevel::Community),
                                street: s,
                                street_refusal: refusal(s.index(), cat, DutyLevel::Street),
                            },
                        )
                    }),
                    _ => None,
                }
            };
            match decided {
                Some((holder, trace)) => admissions.push(Admission {
                    category,
                    holder,
                    trace,
                }),
                None => {
                    if let Some(d) = district {
                        unheld[cat * n_districts + d.index() - d0] += 1;
                    }
                }
            }
        }
    }
    for cat in 0..n_cats {
        for d in 0..n_districts {
            let n = unheld[cat * n_districts + d];
            if n > 0 {
                p.push(
                    format!("categories[{cat}]"),
                    K::Unheld {
                        category: categories[cat].code.clone(),
                        district: c.districts[d].id.clone(),
                        communities: n,
                    },
                );
            }
        }
    }

    if !p.0.is_empty() {
        return Err(ConfigError::Problems(p.0));
    }
    duty.set_admissions(admissions);

    let organ_departments = Csr::from_pairs(organs.len(), &organ_dept_pairs);
    let dept_organ_pairs: Vec<(usize, OrganId)> = organ_dept_pairs
        .iter()
        .map(|&(o, d)| (d.index(), OrganId(o as u32)))
        .collect();
    let names = Names {
        units: names_of(&units_reg, |i| UnitId(i as u32)),
        organs: names_of(&organ_reg, |i| OrganId(i as u32)),
        departments: names_of(&dept_reg, |i| DepartmentId(i as u32)),
        agencies: names_of(&agency_reg, |i| AgencyId(i as u32)),
        roles: names_of(&role_reg, |i| Role(i as u8)),
        categories: names_of(&cat_reg, |i| CategoryId(i as u32)),
        workers: names_of(&worker_reg, |i| WorkerId(i as u32)),
        service_points: names_of(&point_reg, |i| ServicePointId(i as u32)),
        service_items: names_of(&item_reg, |i| ServiceItemId(i as u32)),
    };
    Ok(City {
        kind_start,
        children,
        cell_community,
        community_cells,
        street_organs: Csr::from_pairs(units.len(), &street_organ_pairs),
        platform_organs,
        organ_departments,
        department_organs: Csr::from_pairs(departments.len(), &dept_organ_pairs),
        street_agencies: Csr::from_pairs(units.len(), &street_agency_pairs),
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
        item_points: Csr::from_pairs(c.service_items.len(), &item_point_pairs),
        workforce: Workforce::new(workers, &homes, grid.len()),
        units,
        organs,
        departments,
        agencies,
        categories,
        duty,
        service_points,
        org,
        names,
        grid,
    })
}

fn bit_of(v: &[u64], words: usize, unit: usize, cat: usize) -> bool {
    v.get(unit * words + cat / 64)
        .is_some_and(|w| w >> (cat % 64) & 1 != 0)
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
