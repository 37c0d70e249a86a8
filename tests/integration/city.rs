//! The city model: every validation rule (problem kind and path), the org graph,
//! admission with its trace, and the demo city.

use std::collections::HashSet;

use wangge::city::{
    AdmissionTrace, ConfigProblemKind as K, DutyLevel, MandatoryOrgan, OrgEdge, OrgNode, Refusal,
};
use wangge::config::{CityConfig, DutyOverrideConfig, RoleConfig};
use wangge::{
    Cell, CellId, City, ConfigError, Grid, Holder, Platform, Polygon, Priority, UnitKind, WorkerId,
    WorkerUnit,
};

/// A 6 x 4 lattice: districts 东区 (streets S0, S1) and 西区 (S2), each street two
/// communities of four cells; the last street's communities are villages.
fn small_grid() -> Grid {
    let mut cells = Vec::new();
    for r in 0..4 {
        for c in 0..6 {
            let street = c / 2;
            let district = if street < 2 { "东区" } else { "西区" };
            let community = if street == 2 {
                format!("S{street}-V{}村", r / 2)
            } else {
                format!("S{street}-C{}", r / 2)
            };
            let min = [120.0 + c as f64 * 0.01, 36.0 + r as f64 * 0.01];
            cells.push(
                Cell::new(
                    format!("c{r}{c}"),
                    vec![Polygon::rect(min, [min[0] + 0.01, min[1] + 0.01])],
                )
                .with_parents(community, format!("S{street}街道"), district),
            );
        }
    }
    Grid::new(cells).unwrap()
}

fn small_config() -> CityConfig {
    wangge::demo::demo_config_for(&small_grid()).unwrap()
}

/// Builds the city expecting failure; returns `(path, kind)` of every problem.
fn problems(config: &CityConfig) -> Vec<(String, K)> {
    problems_on(config, small_grid())
}

fn problems_on(config: &CityConfig, grid: Grid) -> Vec<(String, K)> {
    match City::new(config, grid) {
        Ok(_) => panic!("config accepted"),
        Err(ConfigError::Problems(ps)) => ps.into_iter().map(|p| (p.path, p.kind)).collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Asserts that some problem sits at `path` and matches `want`.
#[track_caller]
fn assert_problem(found: &[(String, K)], path: &str, want: impl Fn(&K) -> bool) {
    assert!(
        found.iter().any(|(p, k)| p == path && want(k)),
        "no matching problem at {path}; found {found:#?}"
    );
}

#[test]
fn the_small_config_is_valid_and_round_trips_through_json() {
    let config = small_config();
    let city = City::new(&config, small_grid()).unwrap();
    assert_eq!(city.units_of(UnitKind::Street).len(), 3);
    let back = CityConfig::from_json(&config.to_json()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn json_shape_errors_are_refused() {
    let mut text = small_config().to_json();
    text = text.replacen("\"max_organs\"", "\"max_organz\"", 1);
    assert!(matches!(
        CityConfig::from_json(&text),
        Err(ConfigError::Json { message }) if message.contains("max_organz")
    ));
    assert!(matches!(
        City::from_json("not json", small_grid()),
        Err(ConfigError::Json { .. })
    ));
}

#[test]
fn empty_ids_and_names() {
    let mut c = small_config();
    c.workers[0].id = String::new();
    c.categories[1].name = " ".into();
    let found = problems(&c);
    assert_problem(&found, "workers[0].id", |k| *k == K::Empty { field: "id" });
    assert_problem(&found, "categories[1].name", |k| {
        *k == K::Empty { field: "name" }
    });
}

#[test]
fn duplicate_ids_across_unit_kinds_and_within_tables() {
    let mut c = small_config();
    c.communities[0].id = c.streets[1].id.clone();
    let organ = c.streets[0].organs[0].id.clone();
    c.streets[1].organs[5].id = organ;
    c.categories[3].code = c.categories[2].code.clone();
    let found = problems(&c);
    assert_problem(
        &found,
        "communities[0].id",
        |k| matches!(k, K::DuplicateId { first, .. } if first == "streets[1]"),
    );
    assert_problem(
        &found,
        "streets[1].organs[5].id",
        |k| matches!(k, K::DuplicateId { first, .. } if first == "streets[0].organs[0]"),
    );
    assert_problem(
        &found,
        "categories[3].code",
        |k| matches!(k, K::DuplicateId { first, .. } if first == "categories[2]"),
    );
}

#[test]
fn unknown_references_name_what_was_expected() {
    let mut c = small_config();
    c.streets[0].district = "北区".into();
    c.communities[1].street = c.districts[0].id.clone(); // a district is not a street office
    c.streets[1].organs[2]
        .departments
        .push("no-such-dept".into());
    c.categories[0].roles.push("astronaut".into());
    c.agencies[0].department = "gone".into();
    c.departments[0].reports_to = Some("nobody".into());
    c.service_points[0].items.push("nothing".into());
    let found = problems(&c);
    let unknown = |what: &'static str, id: &'static str| {
        move |k: &K| {
            *k == K::UnknownReference {
                what,
                id: id.into(),
            }
        }
    };
    assert_problem(&found, "streets[0].district", unknown("district", "北区"));
    assert_problem(
        &found,
        "communities[1].street",
        unknown("street office", "东区"),
    );
    let last = c.streets[1].organs[2].departments.len() - 1;
    assert_problem(
        &found,
        &format!("streets[1].organs[2].departments[{last}]"),
        unknown("department", "no-such-dept"),
    );
    let last = c.categories[0].roles.len() - 1;
    assert_problem(
        &found,
        &format!("categories[0].roles[{last}]"),
        unknown("role", "astronaut"),
    );
    assert_problem(
        &found,
        "agencies[0].department",
        unknown("department", "gone"),
    );
    assert_problem(
        &found,
        "departments[0].reports_to",
        unknown("department", "nobody"),
    );
    let last = c.service_points[0].items.len() - 1;
    assert_problem(
        &found,
        &format!("service_points[0].items[{last}]"),
        unknown("service item", "nothing"),
    );
}

#[test]
fn a_reference_listed_twice() {
    let mut c = small_config();
    let role = c.workers[2].roles[0].clone();
    c.workers[2].roles.push(role.clone());
    let found = problems(&c);
    let last = c.workers[2].roles.len() - 1;
    assert_problem(&found, &format!("workers[2].roles[{last}]"), |k| {
        *k == K::Repeated { id: role.clone() }
    });
}

#[test]
fn missing_mandatory_organ() {
    let mut c = small_config();
    c.streets[2]
        .organs
        .retain(|o| o.mandatory != Some(MandatoryOrgan::GovernanceCenter));
    let found = problems(&c);
    assert_problem(&found, "streets[2].organs", |k| {
        *k == K::MissingMandatoryOrgan {
            organ: MandatoryOrgan::GovernanceCenter,
        }
    });
    // Only that street office and only that organ.
    assert_eq!(
        found
            .iter()
            .filter(|(_, k)| matches!(k, K::MissingMandatoryOrgan { .. }))
            .count(),
        1
    );
}

#[test]
fn doubled_mandatory_organ_and_wrong_platform() {
    let mut c = small_config();
    // The fifth organ (城市管理办公室) claims to be the law-enforcement office too.
    c.streets[0].organs[4].mandatory = Some(MandatoryOrgan::LawEnforcementOffice);
    c.streets[1].organs[0].platform = Some(Platform::PublicService);
    let found = problems(&c);
    assert_problem(&found, "streets[0].organs[4].mandatory", |k| {
        *k == K::DuplicateMandatoryOrgan {
            organ: MandatoryOrgan::LawEnforcementOffice,
            first: "streets[0].organs[1]".into(),
        }
    });
    assert_problem(&found, "streets[1].organs[0].platform", |k| {
        *k == K::MandatoryOrganPlatform {
            organ: MandatoryOrgan::PartyBuildingOffice,
            expected: Platform::PartyBuilding,
            found: Some(Platform::PublicService),
        }
    });
}

#[test]
fn too_many_organs_by_city_and_by_district_limit() {
    let mut c = small_config();
    // 东区 keeps the city's 12; its streets have 11 organs. Two more is one too many.
    assert_eq!(c.districts[0].max_organs, None);
    for k in 0..2 {
        let mut extra = c.streets[0].organs[7].clone();
        extra.id = format!("extra-{k}");
        c.streets[0].organs.push(extra);
    }
    // 西区 sets 10; its streets have 10 organs. Lower the limit to 7.
    c.districts[1].max_organs = Some(7);
    let found = problems(&c);
    assert_problem(&found, "streets[0].organs", |k| {
        *k == K::TooManyOrgans {
            count: 13,
            limit: 12,
        }
    });
    assert_problem(&found, "streets[2].organs", |k| {
        *k == K::TooManyOrgans {
            count: 10,
            limit: 7,
        }
    });
    assert!(!found.iter().any(|(p, _)| p == "streets[1].organs"));
}

#[test]
fn organ_limits_out_of_range() {
    let mut c = small_config();
    c.districts[0].max_organs = Some(13);
    c.districts[1].max_organs = Some(3);
    let found = problems(&c);
    assert_problem(&found, "districts[0].max_organs", |k| {
        *k == K::BadOrganLimit { limit: 13, max: 12 }
    });
    assert_problem(&found, "districts[1].max_organs", |k| {
        *k == K::BadOrganLimit { limit: 3, max: 12 }
    });
    let mut c = small_config();
    c.max_organs = 2;
    assert_problem(&problems(&c), "max_organs", |k| {
        matches!(k, K::BadOrganLimit { limit: 2, .. })
    });
}

#[test]
fn references_into_another_district() {
    let mut c = small_config();
    let other = c
        .departments
        .iter()
        .find(|d| d.district == "西区")
        .unwrap()
        .id
        .clone();
    c.streets[0].organs[0].departments = vec![other.clone()];
    c.agencies[0].department = other.clone();
    let found = problems(&c);
    let want = |k: &K| {
        *k == K::OtherDistrict {
            id: other.clone(),
            found: "西区".into(),
            expected: "东区".into(),
        }
    };
    assert_problem(&found, "streets[0].organs[0].departments[0]", want);
    assert_problem(&found, "agencies[0].department", want);
}

#[test]
fn departments_reporting_in_a_cycle() {
    let mut c = small_config();
    // 东区-zfdd reports to 东区-zf; close the loop through 东区-cg.
    let ids: Vec<String> = c.departments.iter().map(|d| d.id.clone()).collect();
    let pos = |id: &str| ids.iter().position(|d| d == id).unwrap();
    let (zf, cg) = (pos("东区-zf"), pos("东区-cg"));
    c.departments[zf].reports_to = Some("东区-cg".into());
    c.departments[cg].reports_to = Some("东区-zfdd".into());
    let found = problems(&c);
    let first = cg.min(zf).min(pos("东区-zfdd"));
    assert_problem(&found, &format!("departments[{first}].reports_to"), |k| {
        matches!(k, K::Cycle { ids } if ids.len() == 3
            && ["东区-zf", "东区-cg", "东区-zfdd"].iter().all(|d| ids.iter().any(|i| i == d)))
    });
    // A department reporting to itself is a cycle of one.
    let mut c = small_config();
    c.departments[0].reports_to = Some(c.departments[0].id.clone());
    assert_problem(
        &problems(&c),
        "departments[0].reports_to",
        |k| matches!(k, K::Cycle { ids } if ids.len() == 1),
    );
}

#[test]
fn too_many_roles() {
    let mut c = small_config();
    for i in c.roles.len()..=wangge::city::MAX_ROLES {
        c.roles.push(RoleConfig {
            id: format!("r{i}"),
            name: format!("role {i}"),
        });
    }
    assert_problem(&problems(&c), "roles", |k| {
        *k == K::TooManyRoles {
            count: wangge::city::MAX_ROLES + 1,
            limit: wangge::city::MAX_ROLES,
        }
    });
}

#[test]
fn categories_without_roles_or_deadlines_or_with_bad_ones() {
    let mut c = small_config();
    c.categories[0].roles.clear();
    c.categories[1].deadlines.clear();
    c.categories[2].deadlines[1].hours = f64::NAN;
    c.categories[3].deadlines[2].hours = -4.0;
    c.categories[4].deadlines[3].priority = Priority::Urgent;
    let found = problems(&c);
    assert_problem(&found, "categories[0].roles", |k| {
        *k == K::Missing { what: "roles" }
    });
    assert_problem(&found, "categories[1].deadlines", |k| {
        *k == K::Missing { what: "deadlines" }
    });
    assert_problem(
        &found,
        "categories[2].deadlines[1]",
        |k| matches!(k, K::BadDeadline { priority: Priority::High, hours } if hours.is_nan()),
    );
    assert_problem(&found, "categories[3].deadlines[2]", |k| {
        *k == K::BadDeadline {
            priority: Priority::Normal,
            hours: -4.0,
        }
    });
    assert_problem(&found, "categories[4].deadlines[3]", |k| {
        *k == K::Repeated {
            id: "urgent".into(),
        }
    });
}

#[test]
fn a_category_owned_twice_in_one_district() {
    let mut c = small_config();
    c.categories[0].departments.push("东区-zj".into());
    let last = c.categories[0].departments.len() - 1;
    assert_problem(
        &problems(&c),
        &format!("categories[0].departments[{last}]"),
        |k| {
            *k == K::TwoOwners {
                department: "东区-zj".into(),
                district: "东区".into(),
            }
        },
    );
}

#[test]
fn a_duty_pushed_down_to_a_community() {
    let mut c = small_config();
    // Illegal parking sits at street-office level: not on any community's list.
    c.duty_lists.community.push("ZF-02".into());
    let at = c.duty_lists.community.len() - 1;
    // Nor may one community's override take a district-level duty.
    c.duty_lists.overrides.push(DutyOverrideConfig {
        unit: "S0-C1".into(),
        add: vec!["ZF-07".into()],
        remove: vec![],
    });
    let o = c.duty_lists.overrides.len() - 1;
    let found = problems(&c);
    assert_problem(&found, &format!("duty_lists.community[{at}]"), |k| {
        *k == K::PushedDown {
            category: "ZF-02".into(),
            level: DutyLevel::Street,
            target: DutyLevel::Community,
        }
    });
    assert_problem(&found, &format!("duty_lists.overrides[{o}].add[0]"), |k| {
        *k == K::PushedDown {
            category: "ZF-07".into(),
            level: DutyLevel::District,
            target: DutyLevel::Community,
        }
    });
}

#[test]
fn overrides_on_units_without_lists_or_contradicting_themselves() {
    let mut c = small_config();
    c.duty_lists.overrides.push(DutyOverrideConfig {
        unit: "东区".into(),
        add: vec![],
        remove: vec!["ZF-01".into()],
    });
    c.duty_lists.overrides.push(DutyOverrideConfig {
        unit: "S1街道".into(),
        add: vec!["ZF-09".into()],
        remove: vec!["ZF-09".into()],
    });
    let n = c.duty_lists.overrides.len();
    let found = problems(&c);
    assert_problem(
        &found,
        &format!("duty_lists.overrides[{}].unit", n - 2),
        |k| {
            *k == K::NoDutyList {
                unit: "东区".into(),
                kind: "district",
            }
        },
    );
    assert_problem(
        &found,
        &format!("duty_lists.overrides[{}].remove[0]", n - 1),
        |k| {
            *k == K::AddAndRemove {
                category: "ZF-09".into(),
            }
        },
    );
}

#[test]
fn a_category_that_no_unit_holds() {
    let mut c = small_config();
    // Outdoor billboards are on no list; without an owning department in 西区 a case
    // there could go nowhere.
    let k = c.categories.iter().position(|k| k.code == "ZF-07").unwrap();
    c.categories[k]
        .departments
        .retain(|d| !d.starts_with("西区"));
    let found = problems(&c);
    assert_problem(&found, &format!("categories[{k}]"), |kind| {
        *kind
            == K::Unheld {
                category: "ZF-07".into(),
                district: "西区".into(),
                communities: 2,
            }
    });
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn grid_cells_must_name_a_known_community_with_consistent_parents() {
    let c = small_config();
    let mut cells: Vec<Cell> = small_grid().cells().to_vec();
    cells[0].community = None;
    cells[1].community = Some("nowhere".into());
    cells[2].street = Some("S2街道".into()); // c02 lies in S1
    cells[3].district = Some("西区".into()); // c03 lies in 东区
    let found = problems_on(&c, Grid::new(cells).unwrap());
    assert_problem(&found, "grid.cells[0]", |k| {
        *k == K::CellWithoutParent {
            cell: "c00".into(),
            field: "community",
        }
    });
    assert_problem(&found, "grid.cells[1].community", |k| {
        *k == K::UnknownReference {
            what: "community",
            id: "nowhere".into(),
        }
    });
    assert_problem(&found, "grid.cells[2].street", |k| {
        *k == K::CellParentMismatch {
            cell: "c02".into(),
            field: "street",
            found: "S2街道".into(),
            expected: "S1街道".into(),
        }
    });
    assert_problem(&found, "grid.cells[3].district", |k| {
        matches!(
            k,
            K::CellParentMismatch {
                field: "district",
                ..
            }
        )
    });
}

#[test]
fn a_unit_with_no_cells() {
    let mut c = small_config();
    let mut extra = c.communities[0].clone();
    extra.id = "空社区".into();
    c.communities.push(extra);
    let at = c.communities.len() - 1;
    assert_problem(&problems(&c), &format!("communities[{at}]"), |k| {
        *k == K::NoCells
    });
}

#[test]
fn workers_in_cells_that_do_not_exist_and_bad_capacities_and_positions() {
    let mut c = small_config();
    c.workers[0].cells.push("c99".into());
    c.workers[1].cells.clear();
    c.workers[2].capacity = 0;
    c.workers[3].position = Some([200.0, 36.0]);
    c.workers[4].roles.clear();
    let found = problems(&c);
    let last = c.workers[0].cells.len() - 1;
    assert_problem(&found, &format!("workers[0].cells[{last}]"), |k| {
        *k == K::UnknownReference {
            what: "cell",
            id: "c99".into(),
        }
    });
    assert_problem(&found, "workers[1].cells", |k| {
        *k == K::Missing { what: "cells" }
    });
    assert_problem(&found, "workers[2].capacity", |k| {
        matches!(k, K::BadCapacity { capacity: 0, .. })
    });
    assert_problem(&found, "workers[3].position", |k| {
        *k == K::BadPosition {
            lon: 200.0,
            lat: 36.0,
        }
    });
    assert_problem(&found, "workers[4].roles", |k| {
        *k == K::Missing { what: "roles" }
    });
}

#[test]
fn service_points_outside_the_grid_or_offering_nothing() {
    let mut c = small_config();
    c.service_points[0].position = [121.0, 37.0];
    c.service_points[1].items.clear();
    c.service_points[2].unit = "nobody".into();
    let found = problems(&c);
    assert_problem(&found, "service_points[0].position", |k| {
        *k == K::OutsideGrid {
            lon: 121.0,
            lat: 37.0,
        }
    });
    assert_problem(&found, "service_points[1].items", |k| {
        *k == K::Missing { what: "items" }
    });
    assert_problem(&found, "service_points[2].unit", |k| {
        *k == K::UnknownReference {
            what: "unit",
            id: "nobody".into(),
        }
    });
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut c = small_config();
    c.streets[0].organs.remove(0);
    c.workers[0].cells[0] = "nope".into();
    c.categories[0].roles.clear();
    c.duty_lists.community.push("ZF-02".into());
    let found = problems(&c);
    for path in [
        "streets[0].organs",
        "workers[0].cells[0]",
        "categories[0].roles",
    ] {
        assert!(found.iter().any(|(p, _)| p == path), "{path}: {found:#?}");
    }
    assert!(found.iter().any(|(_, k)| matches!(k, K::PushedDown { .. })));
    let err = City::new(&c, small_grid()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("streets[0].organs") && text.contains("problem(s)"),
        "{text}"
    );
}

// ---- the org graph ----

#[test]
fn chain_platform_organs_departments_and_escalation() {
    let city = City::new(&small_config(), small_grid()).unwrap();
    let grid = city.grid();
    let cell = grid.id_of("c13").unwrap(); // row 1, column 3: street S1, community S1-C0
    let chain = city.chain(cell).unwrap();
    let name = |u: wangge::UnitId| city.unit(u).unwrap().id.as_str();
    assert_eq!(
        [
            name(chain.community),
            name(chain.street),
            name(chain.district),
            name(chain.city)
        ],
        ["S1-C0", "S1街道", "东区", "qingdao"]
    );
    assert!(city.community_cells(chain.community).contains(&cell));
    assert!(city.children(chain.street).contains(&chain.community));

    for platform in Platform::ALL {
        let organ = city.platform_organ(chain.street, platform).unwrap();
        let organ = city.organ(organ).unwrap();
        assert_eq!(organ.mandatory, Some(platform.owner()));
        assert_eq!(organ.street, chain.street);
    }
    assert!(
        city.platform_organ(chain.community, Platform::PartyBuilding)
            .is_none()
    );

    // One organ to several departments, several organs to one department.
    let zf = city.organ_id("S1街道-zf").unwrap();
    let depts: Vec<&str> = city
        .organ_departments(zf)
        .iter()
        .map(|&d| city.department(d).unwrap().id.as_str())
        .collect();
    assert_eq!(depts, ["东区-zf", "东区-cg"]);
    let cg = city.department_id("东区-cg").unwrap();
    let organs: HashSet<&str> = city
        .department_organs(cg)
        .iter()
        .map(|&o| city.organ(o).unwrap().id.as_str())
        .collect();
    for s in ["S0街道", "S1街道"] {
        assert!(organs.contains(format!("{s}-zf").as_str()));
        assert!(organs.contains(format!("{s}-ca").as_str()));
    }
    assert!(!organs.iter().any(|o| o.starts_with("S2")));

    // Escalation: a community goes up to the city; a brigade goes through its bureau.
    let up: Vec<OrgNode> = city.escalation(OrgNode::Unit(chain.community)).collect();
    assert_eq!(
        up,
        [
            OrgNode::Unit(chain.street),
            OrgNode::Unit(chain.district),
            OrgNode::Unit(chain.city)
        ]
    );
    let brigade = city.department_id("东区-zfdd").unwrap();
    let bureau = city.department_id("东区-zf").unwrap();
    let up: Vec<OrgNode> = city.escalation(OrgNode::Department(brigade)).collect();
    assert_eq!(
        up,
        [
            OrgNode::Department(bureau),
            OrgNode::Unit(chain.district),
            OrgNode::Unit(chain.city)
        ]
    );
    // Agencies: managed by their street office, sent by their department (dual management).
    let police = city.agency_id("S1街道-pcs").unwrap();
    let edges: Vec<(OrgEdge, OrgNode)> = city.org().up(OrgNode::Agency(police)).collect();
    assert!(edges.contains(&(OrgEdge::ManagedBy, OrgNode::Unit(chain.street))));
    let ga = city.department_id("东区-ga").unwrap();
    assert!(edges.contains(&(OrgEdge::SentBy, OrgNode::Department(ga))));
    assert!(city.street_agencies(chain.street).contains(&police));
    assert_eq!(
        city.escalation(OrgNode::Agency(police)).next(),
        Some(OrgNode::Unit(chain.street))
    );
    // The graph holds every node once.
    assert_eq!(
        city.org().node_count(),
        city.units().len() + city.organs().len() + city.departments().len() + city.agencies().len()
    );
}

// ---- admission ----

#[test]
fn admission_at_each_level_with_its_reason() {
    let city = City::new(&small_config(), small_grid()).unwrap();
    let cell = city.grid().id_of("c13").unwrap(); // S1-C0, an urban community
    let chain = city.chain(cell).unwrap();
    let k = |code: &str| city.category_id(code).unwrap();

    // Exposed garbage: on the community list.
    let a = city.admit(cell, k("ZF-01")).unwrap();
    assert_eq!(a.holder, Holder::Community(chain.community));
    assert_eq!(
        a.trace,
        AdmissionTrace::CommunityList { by_override: false }
    );

    // Illegal parking: the duty sits at street level and is never pushed down.
    let a = city.admit(cell, k("ZF-02")).unwrap();
    let organ = city
        .platform_organ(chain.street, Platform::LawEnforcement)
        .unwrap();
    assert_eq!(
        a.holder,
        Holder::Street {
            street: chain.street,
            organ
        }
    );
    assert_eq!(
        a.trace,
        AdmissionTrace::StreetList {
            community: chain.community,
            refusal: Refusal::AboveUnit(DutyLevel::Street),
            by_override: false
        }
    );
    let text = city.explain(&a).to_string();
    assert!(
        text.contains("S1-C0")
            && text.contains("never pushed down")
            && text.contains("S1街道")
            && text.contains("综合行政执法办公室"),
        "{text}"
    );

    // Property disputes are a community-level duty, but not on the community list.
    let a = city.admit(cell, k("ZZ-05")).unwrap();
    assert!(matches!(
        a.trace,
        AdmissionTrace::StreetList {
            refusal: Refusal::NotOnList,
            ..
        }
    ));

    // Outdoor billboards: on no list; referred to the district's urban-management bureau.
    let a = city.admit(cell, k("ZF-07")).unwrap();
    let cg = city.department_id("东区-cg").unwrap();
    assert_eq!(a.holder, Holder::Department(cg));
    assert!(a.is_referral());
    assert_eq!(
        a.trace,
        AdmissionTrace::Referred {
            community: chain.community,
            community_refusal: Refusal::AboveUnit(DutyLevel::District),
            street: chain.street,
            street_refusal: Refusal::AboveUnit(DutyLevel::District),
        }
    );
    let text = city.explain(&a).to_string();
    assert!(
        text.contains("referred to district department 东区城市管理局"),
        "{text}"
    );
    assert!(a.to_string().contains("department#"), "{a}");
}

#[test]
fn overrides_add_and_remove_per_unit() {
    let config = small_config();
    let city = City::new(&config, small_grid()).unwrap();
    let k = |code: &str| city.category_id(code).unwrap();
    // Food-safety complaints: added to every third street office (S0), referred elsewhere.
    let in_s0 = city.grid().id_of("c00").unwrap();
    let in_s1 = city.grid().id_of("c02").unwrap();
    let a = city.admit(in_s0, k("ZF-09")).unwrap();
    assert!(matches!(
        a.trace,
        AdmissionTrace::StreetList {
            by_override: true,
            ..
        }
    ));
    let a = city.admit(in_s1, k("ZF-09")).unwrap();
    assert!(matches!(
        a.trace,
        AdmissionTrace::Referred {
            street_refusal: Refusal::NotOnList,
            ..
        }
    ));
    assert_eq!(
        a.holder,
        Holder::Department(city.department_id("东区-sj").unwrap())
    );
    // Villages take public-order risks off their list: the street office holds them.
    let village = city.grid().id_of("c05").unwrap();
    let a = city.admit(village, k("ZZ-04")).unwrap();
    assert!(matches!(
        a.trace,
        AdmissionTrace::StreetList {
            refusal: Refusal::Removed,
            ..
        }
    ));
    // The first community adds property disputes.
    let a = city.admit(in_s0, k("ZZ-05")).unwrap();
    assert_eq!(a.trace, AdmissionTrace::CommunityList { by_override: true });

    // Removing a duty from every community of a street office hands it to that street
    // office and to no community.
    let mut c = config.clone();
    for m in ["S1-C0", "S1-C1"] {
        c.duty_lists.overrides.retain(|o| o.unit != m);
        c.duty_lists.overrides.push(DutyOverrideConfig {
            unit: m.into(),
            add: vec![],
            remove: vec!["FW-01".into()],
        });
    }
    let city = City::new(&c, small_grid()).unwrap();
    for cell in city.grid().ids() {
        let chain = city.chain(cell).unwrap();
        let a = city.admit(cell, k("FW-01")).unwrap();
        if city.unit(chain.street).unwrap().id == "S1街道" {
            assert!(matches!(a.holder, Holder::Street { .. }));
        } else {
            assert_eq!(a.holder, Holder::Community(chain.community));
        }
    }
}

#[test]
fn refusals_follow_their_precedence_in_lists_and_traces() {
    // Cases worked out by hand from the demo catalogue: ZF-01 grid level on both lists,
    // ZF-02 street level, ZF-07 district level on no list, ZZ-05 community level on the
    // street list only, ZF-09 street level on no default list, ZZ-04 community level that
    // villages remove.
    let mut config = small_config();
    // S1-C0 also "removes" street-level illegal parking, which was never its duty: the
    // level decides the refusal, not the override.
    config.duty_lists.overrides.retain(|o| o.unit != "S1-C0");
    config.duty_lists.overrides.push(DutyOverrideConfig {
        unit: "S1-C0".into(),
        add: vec![],
        remove: vec!["ZF-02".into(), "FW-01".into()],
    });
    let city = City::new(&config, small_grid()).unwrap();
    let k = |code: &str| city.category_id(code).unwrap();
    let chain = |cell: &str| city.chain(city.grid().id_of(cell).unwrap()).unwrap();
    let urban = chain("c13"); // S1-C0
    let village = chain("c05"); // S2-V0村
    let community = city.duty_list(urban.community).unwrap();
    let street = city.duty_list(urban.street).unwrap();
    let village_list = city.duty_list(village.community).unwrap();
    let above = |level| Some(Refusal::AboveUnit(level));

    assert_eq!(community.refusal(k("ZF-01")), None);
    assert_eq!(community.refusal(k("ZF-02")), above(DutyLevel::Street));
    assert_eq!(community.refusal(k("FW-01")), Some(Refusal::Removed));
    assert_eq!(community.refusal(k("ZF-07")), above(DutyLevel::District));
    assert_eq!(street.refusal(k("ZF-07")), above(DutyLevel::District));
    assert_eq!(community.refusal(k("ZZ-05")), Some(Refusal::NotOnList));
    assert_eq!(street.refusal(k("ZF-09")), Some(Refusal::NotOnList));
    assert_eq!(street.refusal(k("ZF-02")), None);
    assert_eq!(village_list.refusal(k("ZZ-04")), Some(Refusal::Removed));

    // The precomputed traces give the same reasons.
    let cell = city.grid().id_of("c13").unwrap();
    let community_refusal = |code: &str| match city.admit(cell, k(code)).unwrap().trace {
        AdmissionTrace::StreetList { refusal, .. } => refusal,
        AdmissionTrace::Referred {
            community_refusal, ..
        } => community_refusal,
        trace => panic!("{code} held by the community: {trace:?}"),
    };
    assert_eq!(
        community_refusal("ZF-02"),
        Refusal::AboveUnit(DutyLevel::Street)
    );
    assert_eq!(community_refusal("FW-01"), Refusal::Removed);
    assert_eq!(community_refusal("ZZ-05"), Refusal::NotOnList);
    let referred = city.admit(cell, k("ZF-09")).unwrap().trace;
    assert!(
        matches!(
            referred,
            AdmissionTrace::Referred {
                community_refusal: Refusal::AboveUnit(DutyLevel::Street),
                street_refusal: Refusal::NotOnList,
                ..
            }
        ),
        "{referred:?}"
    );
    let village_cell = city.grid().id_of("c05").unwrap();
    assert_eq!(
        city.admit(village_cell, k("ZZ-04")).unwrap().trace,
        AdmissionTrace::StreetList {
            community: village.community,
            refusal: Refusal::Removed,
            by_override: false,
        }
    );
}

#[test]
fn admission_agrees_with_the_duty_lists_everywhere() {
    let city = wangge::demo::demo_city();
    let ncat = city.categories().len();
    for cell in city.grid().ids() {
        let chain = city.chain(cell).unwrap();
        let community = city.duty_list(chain.community).unwrap();
        let street = city.duty_list(chain.street).unwrap();
        for k in 0..ncat {
            let k = wangge::CategoryId::from_index(k).unwrap();
            let a = city.admit(cell, k).unwrap();
            assert_eq!(a.category, k);
            let category = city.category(k).unwrap();
            match a.holder {
                Holder::Community(m) => {
                    assert_eq!(m, chain.community);
                    assert!(community.contains(k));
                    assert!(category.level <= DutyLevel::Community);
                }
                Holder::Street { street: s, organ } => {
                    assert_eq!(s, chain.street);
                    assert!(!community.contains(k) && street.contains(k));
                    assert_eq!(city.organ(organ).unwrap().platform, Some(category.platform));
                    assert!(
                        matches!(a.trace, AdmissionTrace::StreetList { community: m, .. } if m == chain.community),
                        "{a:?}"
                    );
                }
                Holder::Department(d) => {
                    assert!(!community.contains(k) && !street.contains(k));
                    assert_eq!(city.department(d).unwrap().district, chain.district);
                    assert!(
                        matches!(a.trace, AdmissionTrace::Referred { community: m, street: s, .. }
                            if m == chain.community && s == chain.street),
                        "{a:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_ids_are_errors_not_panics() {
    let city = City::new(&small_config(), small_grid()).unwrap();
    let k = city.category_id("ZF-01").unwrap();
    let far = CellId::from_index(10_000).unwrap();
    assert_eq!(city.admit(far, k).unwrap_err().what, "cell");
    let bad = wangge::CategoryId::from_index(999).unwrap();
    assert_eq!(
        city.admit(CellId::from_index(0).unwrap(), bad)
            .unwrap_err()
            .what,
        "category"
    );
    assert!(city.chain(far).is_none());
    assert!(city.workers_in(far).is_empty());
    assert!(
        city.home_cells(WorkerId::from_index(9_999).unwrap())
            .is_empty()
    );
    assert!(city.duty_list(city.root()).is_none());
}

// ---- workers ----

#[test]
fn workers_by_cell_mirror_home_cells() {
    let city = wangge::demo::demo_city();
    for (w, worker) in city.workers().iter().enumerate() {
        let id = WorkerId::from_index(w).unwrap();
        assert_eq!(city.worker_id(&worker.id), Some(id));
        assert!(!worker.roles.is_empty());
        let home = city.home_cells(id);
        assert!((1..=3).contains(&home.len()), "{}", home.len());
        for &c in home {
            assert!(city.workers_in(c).contains(&id));
        }
        match worker.unit {
            // Grid workers: home cells of their own community, several roles each.
            WorkerUnit::Community(community) => {
                assert!(worker.roles.len() >= 2);
                assert!((2..=8).contains(&worker.capacity));
                assert!(
                    home.iter()
                        .all(|&c| city.community_of(c).unwrap() == community)
                );
                assert_eq!(Some(worker.street), city.unit(community).unwrap().parent);
            }
            // Street forces: home cells anywhere in their street office's area.
            WorkerUnit::Organ(o) => {
                assert_eq!(worker.street, city.organ(o).unwrap().street);
                assert!((4..=10).contains(&worker.capacity));
            }
            WorkerUnit::Agency(a) => {
                assert_eq!(worker.street, city.agency(a).unwrap().street);
                assert!((4..=10).contains(&worker.capacity));
            }
        }
        for &c in home {
            assert_eq!(city.chain(c).unwrap().street, worker.street);
        }
        let p = worker.position.unwrap();
        assert!(home.iter().any(|&c| city.grid().covers(c, p)));
    }
    let listed: usize = city.grid().ids().map(|c| city.workers_in(c).len()).sum();
    let homes: usize = (0..city.workers().len())
        .map(|w| city.home_cells(WorkerId::from_index(w).unwrap()).len())
        .sum();
    assert_eq!(listed, homes);
}

// ---- the demo city ----

#[test]
fn demo_city_loads_and_follows_the_reform() {
    let city = wangge::demo::demo_city();
    assert!(city.grid().len() >= 2_500);
    assert!((500..=2_000).contains(&city.workers().len()));
    assert!(city.units_of(UnitKind::District).len() >= 3);
    // Every platform has categories.
    for p in Platform::ALL {
        assert!(city.categories().iter().any(|c| c.platform == p), "{p}");
    }
    // Every street office has the four mandatory organs and keeps its district's limit.
    for s in city.units_of(UnitKind::Street) {
        let organs = city.street_organs(s);
        for m in MandatoryOrgan::ALL {
            let count = organs
                .iter()
                .filter(|&&o| city.organ(o).unwrap().mandatory == Some(m))
                .count();
            assert_eq!(count, 1, "{m}");
        }
        assert!(organs.len() <= 12);
    }
    // Every category is held somewhere, and the three outcomes all occur.
    let mut outcomes = [false; 3];
    for k in 0..city.categories().len() {
        let k = wangge::CategoryId::from_index(k).unwrap();
        for cell in city.grid().ids() {
            let i = match city.admit(cell, k).unwrap().holder {
                Holder::Community(_) => 0,
                Holder::Street { .. } => 1,
                Holder::Department(_) => 2,
            };
            outcomes[i] = true;
        }
    }
    assert_eq!(outcomes, [true; 3]);
    // Realistic deadlines: hours for garbage, days for repairs.
    let garbage = city.category(city.category_id("ZF-01").unwrap()).unwrap();
    let manhole = city.category(city.category_id("ZF-03").unwrap()).unwrap();
    let hours = |c: &wangge::Category| c.deadline(Priority::Normal).unwrap().as_secs() / 3600;
    assert!(hours(garbage) <= 8 && hours(manhole) >= 48);
    // Service points: every item is offered somewhere, inside the grid.
    for item in 0..city.service_items().len() {
        let item = wangge::city::ServiceItemId::from_index(item).unwrap();
        assert!(!city.points_offering(item).is_empty());
    }
    for p in city.service_points() {
        assert_eq!(city.grid().locate(p.position), Some(p.cell));
    }
}

#[test]
fn demo_config_round_trips_and_is_deterministic() {
    let a = wangge::demo::demo_config();
    let b = wangge::demo::demo_config();
    assert_eq!(a, b);
    let back = CityConfig::from_json(&a.to_json()).unwrap();
    assert_eq!(back, a);
    let grid = Grid::from_geojson(&wangge::demo::demo_city_grid().to_geojson()).unwrap();
    let city = City::new(&back, grid).unwrap();
    assert_eq!(city.to_string(), wangge::demo::demo_city().to_string());
}

// ---- no panic on any input ----

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Overwrites one reference or number of the config with `value` / `number`.
    fn mutate(c: &mut CityConfig, field: usize, at: usize, value: String, number: f64) {
        let pick = |n: usize| at % n.max(1);
        match field {
            0 => {
                let i = pick(c.streets.len());
                c.streets[i].district = value;
            }
            1 => {
                let i = pick(c.communities.len());
                c.communities[i].street = value;
            }
            2 => {
                let i = pick(c.departments.len());
                c.departments[i].reports_to = Some(value);
            }
            3 => {
                let i = pick(c.workers.len());
                c.workers[i].cells.push(value);
            }
            4 => {
                let i = pick(c.categories.len());
                c.categories[i].deadlines[0].hours = number;
            }
            5 => {
                let i = pick(c.workers.len());
                c.workers[i].position = Some([number, number / 2.0]);
            }
            6 => c.duty_lists.overrides.push(DutyOverrideConfig {
                unit: value.clone(),
                add: vec![value],
                remove: vec![],
            }),
            7 => {
                let i = pick(c.streets.len());
                let n = c.streets[i].organs.len();
                c.streets[i].organs.truncate(at % (n + 1));
            }
            8 => {
                let i = pick(c.categories.len());
                c.categories[i].departments = vec![value];
            }
            9 => {
                let i = pick(c.service_points.len());
                c.service_points[i].position = [number, number];
            }
            _ => {
                let i = pick(c.workers.len());
                c.workers[i].capacity = number.abs() as u32;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn broken_configs_are_refused_with_paths_never_a_panic(
            edits in proptest::collection::vec(
                (0usize..11, 0usize..1000, "[a-zS0-9东西区街道村-]{0,8}",
                 prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -1e3f64..1e3]),
                1..4,
            )
        ) {
            let mut c = small_config();
            for (field, at, value, number) in edits {
                mutate(&mut c, field, at, value, number);
            }
            let tops = [
                "city", "max_organs", "districts", "streets", "communities", "departments",
                "agencies", "roles", "service_items", "categories", "duty_lists",
                "service_points", "workers", "grid",
            ];
            match City::new(&c, small_grid()) {
                Ok(city) => {
                    // Whatever was accepted answers every admission.
                    for cell in city.grid().ids() {
                        for k in 0..city.categories().len() {
                            let k = wangge::CategoryId::from_index(k).unwrap();
                            prop_assert!(city.admit(cell, k).is_ok());
                        }
                    }
                }
                Err(ConfigError::Problems(ps)) => {
                    prop_assert!(!ps.is_empty());
                    for p in ps {
                        let top = p.path.split(['.', '[']).next().unwrap_or("");
                        prop_assert!(tops.contains(&top), "{}", p);
                    }
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

#[test]
fn toml_reads_back_the_same_city_and_reports_its_errors() {
    let config = wangge::demo::demo_config();
    let text = config.to_toml().unwrap();
    assert_eq!(
        wangge::config::CityConfig::from_toml(&text).unwrap(),
        config
    );
    assert!(wangge::City::from_toml(&text, wangge::demo::demo_city_grid()).is_ok());
    let err = wangge::config::CityConfig::from_toml("districts = 3").unwrap_err();
    assert!(matches!(err, wangge::ConfigError::Toml { .. }), "{err}");
}

// ---- whose forces: every worker belongs to one unit ----

#[test]
fn a_worker_belongs_to_one_existing_unit_and_works_inside_it() {
    let base = small_config();
    let community_worker = base
        .workers
        .iter()
        .position(|w| w.unit == "S0-C0")
        .expect("the small city has grid workers in S0-C0");
    let organ_worker = base
        .workers
        .iter()
        .position(|w| w.unit == "S0街道-zf")
        .expect("the small city has law-enforcement officers in S0街道");
    let path = |i: usize| format!("workers[{i}]");

    // A unit that does not exist.
    let mut c = base.clone();
    c.workers[community_worker].unit = "nowhere".into();
    assert_problem(
        &problems(&c),
        &format!("{}.unit", path(community_worker)),
        |k| matches!(k, K::UnknownReference { id, .. } if id == "nowhere"),
    );

    // A grid worker with a home cell in another community of the same street office.
    let mut c = base.clone();
    c.workers[community_worker].cells = vec!["c00".into(), "c20".into()];
    assert_problem(
        &problems(&c),
        &format!("{}.cells[1]", path(community_worker)),
        |k| matches!(k, K::OutsideUnit { cell, unit } if cell == "c20" && unit == "S0-C0"),
    );

    // A street officer with a home cell in another street office.
    let mut c = base.clone();
    c.workers[organ_worker].cells = vec!["c00".into(), "c05".into()];
    assert_problem(
        &problems(&c),
        &format!("{}.cells[1]", path(organ_worker)),
        |k| matches!(k, K::OutsideUnit { cell, unit } if cell == "c05" && unit == "S0街道"),
    );
    // The same officer may patrol any cell of their own street office.
    let mut c = base.clone();
    c.workers[organ_worker].cells = vec!["c00".into(), "c31".into()];
    assert!(City::new(&c, small_grid()).is_ok());

    // An id that names both a community and an organ is ambiguous.
    let mut c = base.clone();
    c.communities[0].id = "S0街道-zf".into();
    for cell_worker in &mut c.workers {
        if cell_worker.unit == "S0-C0" {
            cell_worker.unit = "S0街道-zf".into();
        }
    }
    let found = problems(&c);
    assert!(
        found.iter().any(|(p, k)| p.ends_with(".unit")
            && matches!(
                k,
                K::AmbiguousUnit {
                    first: "community",
                    second: "organ",
                    ..
                }
            )),
        "{found:#?}"
    );
}
