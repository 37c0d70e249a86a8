//! The routing core against its constraints: every decision checked by brute force on the
//! demo city, concurrent routing never over capacity, returns, rulings, service points and
//! refused requests.

use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use wangge::city::ServiceItemId;
use wangge::routing::Candidate;
use wangge::{
    CaseRequest, CategoryId, CellId, City, Found, Holder, Location, Outcome, Platform, PolicyKind,
    Router, RouterConfig, RoutingError, WorkerId, WorkerStatus,
};

fn city() -> Arc<City> {
    static CITY: OnceLock<Arc<City>> = OnceLock::new();
    CITY.get_or_init(|| Arc::new(wangge::demo::demo_city()))
        .clone()
}

/// A place inside `cell` (its envelope's center if covered, else a vertex).
fn place(city: &City, cell: CellId) -> Location {
    let [x0, y0, x1, y1] = city.grid().cell_bounds(cell).unwrap();
    let c = Location::new((x0 + x1) / 2.0, (y0 + y1) / 2.0).unwrap();
    if city.grid().covers(cell, c) {
        return c;
    }
    let [lon, lat] = city.grid()[cell].polygons[0].exterior[0];
    Location::new(lon, lat).unwrap()
}

/// Whether `w` could take a case of `category` now, by definition.
fn eligible(
    router: &Router,
    city: &City,
    w: WorkerId,
    category: CategoryId,
    returned: &[WorkerId],
) -> bool {
    let s = router.worker_state(w).unwrap();
    city.worker(w)
        .unwrap()
        .roles
        .intersects(city.category(category).unwrap().roles)
        && s.status == WorkerStatus::OnDuty
        && s.load < s.capacity
        && !returned.contains(&w)
}

/// The workers the router must consider at each level, by definition: level d < rings is
/// the workers with a home cell exactly d steps away (and none nearer); the last level is
/// the community of the cell.
fn levels(city: &City, cell: CellId, max_ring: usize) -> Vec<Vec<WorkerId>> {
    let mut seen: Vec<WorkerId> = Vec::new();
    let mut out = Vec::new();
    for ring in city.grid().within(cell, max_ring) {
        let mut level: Vec<WorkerId> = ring
            .iter()
            .flat_map(|&c| city.workers_in(c).iter().copied())
            .filter(|w| !seen.contains(w))
            .collect();
        level.sort();
        level.dedup();
        seen.extend(&level);
        out.push(level);
    }
    let community = city.community_of(cell).unwrap();
    let mut all: Vec<WorkerId> = city
        .community_cells(community)
        .iter()
        .flat_map(|&c| city.workers_in(c).iter().copied())
        .collect();
    all.sort();
    all.dedup();
    out.push(all);
    out
}

/// What the router must decide, worked out by definition from the city and the live state.
fn oracle(
    router: &Router,
    city: &City,
    case: &CaseRequest<'_>,
    policy: PolicyKind,
) -> (Outcome, Found, Option<WorkerId>, usize) {
    let config = router.config();
    let admission = city.admit(case.cell, case.category).unwrap();
    let category = city.category(case.category).unwrap();
    let street = city.chain(case.cell).unwrap().street;
    let street = match admission.holder {
        Holder::Department(department) => {
            return (Outcome::Referred { department }, Found::Nowhere, None, 0);
        }
        Holder::Street { street, .. } => street,
        Holder::Community(_) => street,
    };
    if case.returned_by.len() >= usize::from(config.max_returns) {
        let organ = city.platform_organ(street, Platform::Governance).unwrap();
        return (Outcome::Ruling { organ }, Found::Nowhere, None, 0);
    }
    let policy = policy.policy();
    let lv = levels(city, case.cell, config.max_ring.into());
    for (d, level) in lv.iter().enumerate() {
        let mut ranked: Vec<(u64, WorkerId)> = level
            .iter()
            .copied()
            .filter(|&w| eligible(router, city, w, case.category, case.returned_by))
            .map(|w| {
                let s = router.worker_state(w).unwrap();
                let c = Candidate {
                    worker: w,
                    load: s.load,
                    capacity: s.capacity,
                    last_assigned: s.last_assigned,
                    position: s.position.map(|p| [p.lon(), p.lat()]),
                    case: case.location,
                    cos_lat: case.location.lat().to_radians().cos(),
                };
                (policy.rank(&c), w)
            })
            .collect();
        ranked.sort();
        if let Some(&(_, w)) = ranked.first() {
            let found = if d + 1 == lv.len() {
                Found::Community
            } else if d == 0 {
                Found::Cell
            } else {
                Found::Ring(d as u8)
            };
            return (
                Outcome::Assigned { worker: w },
                found,
                ranked.get(1).map(|r| r.1),
                ranked.len(),
            );
        }
    }
    let organ = match admission.holder {
        Holder::Street { organ, .. } => organ,
        _ => city.platform_organ(street, category.platform).unwrap(),
    };
    (Outcome::Queued { organ }, Found::Nowhere, None, 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every decision is the one the rules give, worked out independently: referral,
    /// ruling, the policy's best worker (a needed role, on duty, under capacity, not a
    /// returner) at the nearest level that has any, its runner-up, or the organ's queue.
    /// Cases stay with their workers, so capacity runs out as the steps go on.
    #[test]
    fn decisions_obey_the_rules(
        seed in any::<u64>(),
        steps in prop::collection::vec((any::<u32>(), any::<u16>(), 0u8..4), 1..80),
        policy in prop_oneof![Just(PolicyKind::Nearest), Just(PolicyKind::LeastLoaded), Just(PolicyKind::FairRotation)],
    ) {
        let city = city();
        let config = RouterConfig { policy, ..RouterConfig::default() };
        let router = Router::new(city.clone(), config).unwrap();
        let workers = city.workers().len();
        // Random statuses: a third of the workers off duty or busy.
        for w in 0..workers {
            let r = (seed.wrapping_mul(w as u64 + 1) >> 7) % 6;
            let status = match r { 0 => WorkerStatus::OffDuty, 1 => WorkerStatus::Busy, _ => WorkerStatus::OnDuty };
            router.set_status(WorkerId::from_index(w).unwrap(), status).unwrap();
        }
        // Cases crowd into a small area so that workers fill up.
        for (cell_pick, cat_pick, returns) in steps {
            let cell = CellId::from_index(cell_pick as usize % 64).unwrap();
            let category = CategoryId::from_index(cat_pick as usize % city.categories().len()).unwrap();
            let location = place(&city, cell);
            // Returners: workers of the cell's own levels, to make exclusion matter.
            let returned: Vec<WorkerId> =
                levels(&city, cell, config.max_ring.into()).into_iter().flatten().take(returns as usize).collect();
            let case = CaseRequest::new(cell, category, location).returned_by(&returned);
            let (outcome, found, runner_up, candidates) = oracle(&router, &city, &case, policy);
            let decision = router.route(&case).unwrap();
            prop_assert_eq!(decision.outcome, outcome, "{}", router.explain(&decision));
            prop_assert_eq!(decision.trace.found, found);
            prop_assert_eq!(decision.trace.runner_up, runner_up);
            prop_assert_eq!(usize::from(decision.trace.candidates), candidates);
            prop_assert_eq!(usize::from(decision.trace.returns), returned.len());
            if let Some(w) = decision.worker() {
                let s = router.worker_state(w).unwrap();
                prop_assert!(s.load <= s.capacity);
            }
        }
    }
}

#[test]
fn concurrent_routing_never_exceeds_capacity_and_loses_nothing() {
    let city = city();
    let router = Arc::new(Router::new(city.clone(), RouterConfig::default()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let over = Arc::new(AtomicUsize::new(0));
    // A watcher samples every worker's state while the routers run.
    let watcher = {
        let (router, stop, over, n) = (
            router.clone(),
            stop.clone(),
            over.clone(),
            city.workers().len(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for w in 0..n {
                    let s = router
                        .worker_state(WorkerId::from_index(w).unwrap())
                        .unwrap();
                    if s.load > s.capacity {
                        over.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (router, city) = (router.clone(), city.clone());
            std::thread::spawn(move || {
                let mut held: Vec<WorkerId> = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let mut assigned = 0usize;
                for i in 0..20_000usize {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Cases concentrate on a few cells so threads fight over the same workers.
                    let cell = CellId::from_index((x % 40) as usize).unwrap();
                    let category =
                        CategoryId::from_index((x >> 20) as usize % city.categories().len())
                            .unwrap();
                    let d = router
                        .route(&CaseRequest::new(cell, category, place(&city, cell)))
                        .unwrap();
                    if let Some(w) = d.worker() {
                        let s = router.worker_state(w).unwrap();
                        assert!(s.load <= s.capacity);
                        held.push(w);
                        assigned += 1;
                    }
                    if i % 3 == 0 && !held.is_empty() {
                        let w = held.swap_remove((x >> 33) as usize % held.len());
                        router.release(w).unwrap();
                    }
                }
                (assigned, held)
            })
        })
        .collect();
    let mut open = vec![0u32; city.workers().len()];
    let mut assigned = 0;
    for t in threads {
        let (a, held) = t.join().unwrap();
        assigned += a;
        for w in held {
            open[w.index()] += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(
        over.load(Ordering::Relaxed),
        0,
        "a worker was seen over capacity"
    );
    for (w, &n) in open.iter().enumerate() {
        assert_eq!(
            router
                .worker_state(WorkerId::from_index(w).unwrap())
                .unwrap()
                .load,
            n,
            "worker {w}"
        );
    }
    let (claims, releases) = router.totals();
    assert_eq!(claims as usize, assigned);
    assert_eq!(
        (claims - releases) as usize,
        open.iter().map(|&n| n as usize).sum::<usize>()
    );
    assert!(
        assigned > 1000,
        "the stress test must assign a lot: {assigned}"
    );
}

#[test]
fn returns_exclude_returners_then_go_to_a_ruling() {
    let city = city();
    let router = Router::new(
        city.clone(),
        RouterConfig {
            max_returns: 2,
            ..RouterConfig::default()
        },
    )
    .unwrap();
    // A community-held category, in a cell with workers.
    let (cell, category) = city
        .grid()
        .ids()
        .flat_map(|c| {
            (0..city.categories().len()).map(move |k| (c, CategoryId::from_index(k).unwrap()))
        })
        .find(|&(c, k)| {
            matches!(city.admit(c, k).unwrap().holder, Holder::Community(_))
                && !city.workers_in(c).is_empty()
        })
        .unwrap();
    let at = place(&city, cell);
    let first = router.route(&CaseRequest::new(cell, category, at)).unwrap();
    let w1 = first.worker().expect("someone takes it");
    let mut returned = vec![w1];
    let second = router
        .return_case(
            w1,
            &CaseRequest::new(cell, category, at).returned_by(&returned),
        )
        .unwrap();
    assert_eq!(
        router.worker_state(w1).unwrap().load,
        0,
        "the returner is freed"
    );
    if let Some(w2) = second.worker() {
        assert_ne!(w2, w1);
        returned.push(w2);
        let third = router
            .return_case(
                w2,
                &CaseRequest::new(cell, category, at).returned_by(&returned),
            )
            .unwrap();
        let street = city.chain(cell).unwrap().street;
        assert_eq!(
            third.outcome,
            Outcome::Ruling {
                organ: city.platform_organ(street, Platform::Governance).unwrap()
            }
        );
        assert_eq!(third.trace.returns, 2);
        assert!(
            router.explain(&third).contains("ruling"),
            "{}",
            router.explain(&third)
        );
    }
    // A return by someone not listed, or who holds nothing, is refused and changes nothing.
    let before = router.totals();
    assert_eq!(
        router.return_case(w1, &CaseRequest::new(cell, category, at)),
        Err(RoutingError::ReturnerNotListed(w1))
    );
    assert_eq!(
        router.return_case(w1, &CaseRequest::new(cell, category, at).returned_by(&[w1])),
        Err(RoutingError::NotHolding(w1))
    );
    assert_eq!(router.totals(), before);
}

#[test]
fn bad_requests_are_refused_with_typed_errors() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let at = place(&city, CellId::from_index(0).unwrap());
    let cell = CellId::from_index(0).unwrap();
    let bad_cell = CellId::from_index(city.grid().len()).unwrap();
    let bad_cat = CategoryId::from_index(city.categories().len()).unwrap();
    let bad_worker = WorkerId::from_index(city.workers().len()).unwrap();
    let ok_cat = CategoryId::from_index(0).unwrap();
    assert_eq!(
        router.route(&CaseRequest::new(bad_cell, ok_cat, at)),
        Err(RoutingError::UnknownCell(bad_cell))
    );
    assert_eq!(
        router.route(&CaseRequest::new(cell, bad_cat, at)),
        Err(RoutingError::UnknownCategory(bad_cat))
    );
    assert_eq!(
        router.release(bad_worker),
        Err(RoutingError::UnknownWorker(bad_worker))
    );
    assert_eq!(
        router.release(WorkerId::from_index(0).unwrap()),
        Err(RoutingError::NotHolding(WorkerId::from_index(0).unwrap()))
    );
    assert_eq!(
        router.set_capacity(WorkerId::from_index(0).unwrap(), 0),
        Err(RoutingError::Capacity(0))
    );
    assert!(matches!(
        router.set_status(bad_worker, WorkerStatus::Busy),
        Err(RoutingError::UnknownWorker(_))
    ));
    let many = vec![WorkerId::from_index(0).unwrap(); 17];
    assert!(matches!(
        router.route(&CaseRequest::new(cell, ok_cat, at).returned_by(&many)),
        Err(RoutingError::TooManyReturns { listed: 17, .. })
    ));
    assert!(matches!(
        Router::new(
            city.clone(),
            RouterConfig {
                max_ring: 9,
                ..RouterConfig::default()
            }
        ),
        Err(RoutingError::Config {
            field: "max_ring",
            ..
        })
    ));
    assert!(matches!(
        Router::new(
            city.clone(),
            RouterConfig {
                max_returns: 0,
                ..RouterConfig::default()
            }
        ),
        Err(RoutingError::Config {
            field: "max_returns",
            ..
        })
    ));
    assert_eq!(router.totals(), (0, 0), "refusals change nothing");
    let bad_config =
        serde_json::from_str::<RouterConfig>(r#"{"max_ring": 2, "policy": "fastest"}"#);
    assert!(bad_config.is_err());
}

#[test]
fn service_requests_go_to_the_nearest_point_offering_the_item() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let mut checked = 0;
    for item in 0..city.service_items().len() {
        let item = ServiceItemId::from_index(item).unwrap();
        for cell in city.grid().ids().step_by(97) {
            let from = place(&city, cell);
            let got = router.nearest_service_point(item, from).unwrap();
            let want = city
                .points_offering(item)
                .iter()
                .map(|&p| (from.distance_m(city.service_point(p).unwrap().position), p))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            assert_eq!(got.map(|c| (c.distance_m, c.point)), want);
            checked += usize::from(want.is_some());
        }
    }
    assert!(checked > 0);
    // Through a service category of the catalogue, and refused for any other.
    let at = place(&city, CellId::from_index(0).unwrap());
    let (service, other): (Vec<_>, Vec<_>) = (0..city.categories().len())
        .map(|k| CategoryId::from_index(k).unwrap())
        .partition(|&k| city.category(k).unwrap().service_item.is_some());
    let k = service[0];
    let item = city.category(k).unwrap().service_item.unwrap();
    assert_eq!(
        router.service_point_for(k, at).unwrap(),
        router.nearest_service_point(item, at).unwrap()
    );
    assert_eq!(
        router.service_point_for(other[0], at),
        Err(RoutingError::NotAService(other[0]))
    );
    let bad = ServiceItemId::from_index(city.service_items().len()).unwrap();
    assert_eq!(
        router.nearest_service_point(bad, place(&city, CellId::from_index(0).unwrap())),
        Err(RoutingError::UnknownServiceItem(bad))
    );
}

#[test]
fn positions_steer_the_nearest_policy() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    // A cell and category with at least two eligible workers at the deciding level.
    for cell in city.grid().ids() {
        for k in 0..city.categories().len() {
            let category = CategoryId::from_index(k).unwrap();
            let at = place(&city, cell);
            let d = router.route(&CaseRequest::new(cell, category, at)).unwrap();
            let (Some(w), Some(runner)) = (d.worker(), d.trace.runner_up) else {
                if let Some(w) = d.worker() {
                    router.release(w).unwrap();
                }
                continue;
            };
            router.release(w).unwrap();
            // Move the runner-up onto the case: now they are the nearest.
            router.set_position(runner, at).unwrap();
            let again = router.route(&CaseRequest::new(cell, category, at)).unwrap();
            assert_eq!(again.worker(), Some(runner), "{}", router.explain(&again));
            return;
        }
    }
    panic!("the demo city has no case with two candidates");
}
