//! The routing core against its rules: every decision checked against an oracle written
//! from the rules alone (its own search inside the holder, its own model of who holds and
//! who returned each case), on every part of the demo city; the holder rule (职责准入) on
//! every cell; idempotent releases and returns; snapshot and restore; concurrent routing
//! never over capacity; refused requests.

use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use wangge::city::ServiceItemId;
use wangge::routing::{Candidate, RouterSnapshot};
use wangge::{
    CaseId, CaseRequest, CategoryId, CellId, City, Found, Holder, Location, Outcome, Platform,
    PolicyKind, Router, RouterConfig, RoutingError, UnitId, WorkerId, WorkerStatus, WorkerUnit,
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

/// Whether worker `w` belongs to the holder of `admission`, by the rule: a community's own
/// people for a community-held case; for a street-held one, the staff of that street
/// office's organs and agencies serving the category's platform.
fn belongs_to_holder(city: &City, w: WorkerId, holder: Holder, platform: Platform) -> bool {
    let worker = city.worker(w).unwrap();
    match (holder, worker.unit) {
        (Holder::Community(m), WorkerUnit::Community(u)) => m == u,
        (Holder::Street { street, .. }, WorkerUnit::Organ(o)) => {
            let organ = city.organ(o).unwrap();
            organ.street == street && organ.platform == Some(platform)
        }
        (Holder::Street { street, .. }, WorkerUnit::Agency(a)) => {
            let agency = city.agency(a).unwrap();
            agency.street == street && agency.platform == Some(platform)
        }
        _ => false,
    }
}

/// The levels the rules search for a case in `cell` held by `holder`, worked out here
/// from the grid's adjacency and the workers' units: for a community, its workers whose
/// nearest home cell is d steps away (walking only through the community's cells), for d
/// up to `max_ring`, then the rest of its workers; for a street office, its force.
fn levels(
    city: &City,
    cell: CellId,
    holder: Holder,
    platform: Platform,
    max_ring: usize,
) -> Vec<(Found, Vec<WorkerId>)> {
    let all: Vec<WorkerId> = (0..city.workers().len())
        .map(|w| WorkerId::from_index(w).unwrap())
        .filter(|&w| belongs_to_holder(city, w, holder, platform))
        .collect();
    let Holder::Community(community) = holder else {
        return vec![(Found::Force, all)];
    };
    // Breadth-first search inside the community.
    let mut dist: HashMap<CellId, usize> = HashMap::from([(cell, 0)]);
    let mut queue = VecDeque::from([cell]);
    while let Some(c) = queue.pop_front() {
        let d = dist[&c];
        if d == max_ring {
            continue;
        }
        for &n in city.grid().neighbours(c) {
            if city.community_of(n) == Some(community) && !dist.contains_key(&n) {
                dist.insert(n, d + 1);
                queue.push_back(n);
            }
        }
    }
    let mut out: Vec<(Found, Vec<WorkerId>)> = (0..=max_ring)
        .map(|d| {
            let found = if d == 0 {
                Found::Cell
            } else {
                Found::Ring(d as u8)
            };
            (found, Vec::new())
        })
        .collect();
    let mut rest = Vec::new();
    for &w in &all {
        let nearest = city.home_cells(w).iter().filter_map(|c| dist.get(c)).min();
        match nearest {
            Some(&d) => out[d].1.push(w),
            None => rest.push(w),
        }
    }
    out.push((Found::Community, rest));
    out
}

/// The fields in which two snapshots differ, for a readable failure.
fn snapshot_diff(a: &RouterSnapshot, b: &RouterSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    if a.ticket != b.ticket {
        out.push(format!("ticket {} vs {}", a.ticket, b.ticket));
    }
    for (x, y) in a.workers.iter().zip(&b.workers) {
        if x != y {
            out.push(format!("{x:?} vs {y:?}"));
        }
    }
    if a.cases != b.cases {
        out.push(format!("cases {:?} vs {:?}", a.cases, b.cases));
    }
    out
}

/// The oracle's own model of the cases: who holds each, who returned it.
#[derive(Default, Clone)]
struct Model {
    holder: HashMap<CaseId, WorkerId>,
    returners: HashMap<CaseId, Vec<WorkerId>>,
}

/// What the router must decide for `req`, worked out from the rules, the live worker
/// state and the oracle's model.
fn oracle(
    router: &Router,
    city: &City,
    model: &Model,
    req: &CaseRequest,
    policy: PolicyKind,
) -> (Outcome, Found, Option<WorkerId>, usize) {
    let config = router.config();
    let admission = city.admit(req.cell, req.category).unwrap();
    let category = city.category(req.category).unwrap();
    let returned = model.returners.get(&req.case).cloned().unwrap_or_default();
    let street = match admission.holder {
        Holder::Department(department) => {
            return (Outcome::Referred { department }, Found::Nowhere, None, 0);
        }
        Holder::Street { street, .. } => street,
        Holder::Community(c) => city.unit(c).unwrap().parent.unwrap(),
    };
    if returned.len() >= usize::from(config.max_returns) {
        let organ = city.platform_organ(street, Platform::Governance).unwrap();
        return (Outcome::Ruling { organ }, Found::Nowhere, None, 0);
    }
    let policy = policy.policy();
    let levels = levels(
        city,
        req.cell,
        admission.holder,
        category.platform,
        config.max_ring.into(),
    );
    for (found, level) in levels {
        let mut ranked: Vec<(u64, WorkerId)> = level
            .into_iter()
            .filter(|&w| {
                let s = router.worker_state(w).unwrap();
                city.worker(w).unwrap().roles.intersects(category.roles)
                    && s.status == WorkerStatus::OnDuty
                    && s.load < s.capacity
                    && !returned.contains(&w)
            })
            .map(|w| {
                let s = router.worker_state(w).unwrap();
                let c = Candidate {
                    worker: w,
                    load: s.load,
                    capacity: s.capacity,
                    last_assigned: s.last_assigned,
                    position: s.position,
                    case: req.location,
                    cos_lat: req.location.lat().to_radians().cos(),
                };
                (policy.rank(&c), w)
            })
            .collect();
        ranked.sort();
        if let Some(&(_, w)) = ranked.first() {
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

/// The cells of the street office of `cell`: cases crowd into one street office so that
/// its people fill up, while the street office itself is drawn from the whole city.
fn street_cells(city: &City, cell: CellId) -> Vec<CellId> {
    let street = city.chain(cell).unwrap().street;
    city.grid()
        .ids()
        .filter(|&c| city.chain(c).unwrap().street == street)
        .collect()
}

/// One step of a random run: a new case, a return or a release of an open one.
#[derive(Debug, Clone, Copy)]
enum Step {
    New { cell: u32, category: u16 },
    Return { pick: u32 },
    Release { pick: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<u32>(), any::<u16>()).prop_map(|(cell, category)| Step::New { cell, category }),
        1 => any::<u32>().prop_map(|pick| Step::Return { pick }),
        1 => any::<u32>().prop_map(|pick| Step::Release { pick }),
    ]
}

/// The state of a random run: the oracle's model, the open requests in the order they
/// were opened, the last case id given.
#[derive(Default, Clone)]
struct Run {
    model: Model,
    open: Vec<CaseRequest>,
    next: u64,
}

/// Runs `steps` on `router`, checking each decision against the oracle; returns the open
/// requests (case, request) in the order they were opened.
fn run_checked(
    router: &Router,
    city: &City,
    base: CellId,
    steps: &[Step],
    policy: PolicyKind,
    run: &mut Run,
) -> Result<(), TestCaseError> {
    let Run { model, open, next } = run;
    let next_case = next;
    let cells = street_cells(city, base);
    for &s in steps {
        match s {
            Step::New { cell, category } => {
                let cell = cells[cell as usize % cells.len()];
                let category =
                    CategoryId::from_index(category as usize % city.categories().len()).unwrap();
                *next_case += 1;
                let req = CaseRequest::new(CaseId(*next_case), cell, category, place(city, cell));
                let want = oracle(router, city, model, &req, policy);
                let d = router.route(&req).unwrap();
                check(router, city, &d, want)?;
                if let Some(w) = d.worker() {
                    model.holder.insert(req.case, w);
                }
                open.push(req);
            }
            Step::Return { pick } => {
                let held: Vec<CaseRequest> = open
                    .iter()
                    .copied()
                    .filter(|r| model.holder.contains_key(&r.case))
                    .collect();
                if held.is_empty() {
                    continue;
                }
                let req = held[pick as usize % held.len()];
                let w = model.holder[&req.case];
                // The oracle sees the returner freed and excluded.
                let mut after = model.clone();
                after.holder.remove(&req.case);
                let r = after.returners.entry(req.case).or_default();
                if !r.contains(&w) {
                    r.push(w);
                }
                let load = router.worker_state(w).unwrap().load;
                let want = {
                    // Free the slot in the oracle's view by routing as if released: the
                    // returner is excluded anyway, so their load does not matter to it.
                    oracle(router, city, &after, &req, policy)
                };
                let d = router.return_case(&req, w).unwrap();
                prop_assert_eq!(router.worker_state(w).unwrap().load, load - 1);
                check(router, city, &d, want)?;
                prop_assert_eq!(
                    usize::from(d.trace.returns),
                    after.returners[&req.case].len()
                );
                *model = after;
                if let Some(w2) = d.worker() {
                    model.holder.insert(req.case, w2);
                }
            }
            Step::Release { pick } => {
                if open.is_empty() {
                    continue;
                }
                let req = open.remove(pick as usize % open.len());
                let held = model.holder.remove(&req.case);
                let load = held.map(|w| router.worker_state(w).unwrap().load);
                prop_assert_eq!(router.release(req.case).unwrap(), held);
                // A second "finished" frees nothing.
                prop_assert_eq!(router.release(req.case).unwrap(), None);
                if let (Some(w), Some(load)) = (held, load) {
                    prop_assert_eq!(router.worker_state(w).unwrap().load, load - 1);
                }
                router.forget(req.case);
                model.returners.remove(&req.case);
            }
        }
    }
    Ok(())
}

fn check(
    router: &Router,
    city: &City,
    d: &wangge::Decision,
    (outcome, found, runner_up, candidates): (Outcome, Found, Option<WorkerId>, usize),
) -> Result<(), TestCaseError> {
    prop_assert_eq!(d.outcome, outcome, "{}", router.explain(d));
    prop_assert_eq!(d.trace.found, found);
    prop_assert_eq!(d.trace.runner_up, runner_up);
    prop_assert_eq!(usize::from(d.trace.candidates), candidates);
    if let Some(w) = d.worker() {
        let s = router.worker_state(w).unwrap();
        prop_assert!(s.load <= s.capacity);
        let category = city.category(d.trace.admission.category).unwrap();
        prop_assert!(belongs_to_holder(
            city,
            w,
            d.trace.admission.holder,
            category.platform
        ));
    }
    Ok(())
}

/// A router with a third of its workers off duty or busy and small capacities, so that
/// searches go past the first level and queues happen.
fn crowded_router(policy: PolicyKind, seed: u64) -> Router {
    let city = city();
    let config = RouterConfig {
        policy,
        ..RouterConfig::default()
    };
    let router = Router::new(city.clone(), config).unwrap();
    for w in 0..city.workers().len() {
        let id = WorkerId::from_index(w).unwrap();
        let r = (seed.wrapping_mul(w as u64 + 1) >> 7) % 6;
        let status = match r {
            0 => WorkerStatus::OffDuty,
            1 => WorkerStatus::Busy,
            _ => WorkerStatus::OnDuty,
        };
        router.set_status(id, status).unwrap();
        router.set_capacity(id, 1 + (r as u32 % 2)).unwrap();
    }
    router
}

fn policy() -> impl Strategy<Value = PolicyKind> {
    prop_oneof![
        Just(PolicyKind::Nearest),
        Just(PolicyKind::LeastLoaded),
        Just(PolicyKind::FairRotation)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every decision is the one the rules give, worked out independently: referral,
    /// ruling after max_returns distinct returners, the policy's best worker of the
    /// holder's own people (a needed role, on duty, under capacity, not a returner) at the
    /// nearest level that has any, its runner-up, or the organ's queue. Cases crowd into
    /// one street office drawn from the whole city, with returns and releases between.
    #[test]
    fn decisions_obey_the_rules(
        seed in any::<u64>(),
        base in any::<u32>(),
        steps in prop::collection::vec(step(), 1..60),
        policy in policy(),
    ) {
        let city = city();
        let router = crowded_router(policy, seed);
        let base = CellId::from_index(base as usize % city.grid().len()).unwrap();
        let mut run = Run::default();
        run_checked(&router, &city, base, &steps, policy, &mut run)?;
        // Loads are exactly the open cases each worker holds.
        let mut load: HashMap<WorkerId, u32> = HashMap::new();
        for w in run.model.holder.values() {
            *load.entry(*w).or_default() += 1;
        }
        for w in 0..city.workers().len() {
            let id = WorkerId::from_index(w).unwrap();
            prop_assert_eq!(router.worker_state(id).unwrap().load, load.get(&id).copied().unwrap_or(0));
        }
    }

    /// Snapshot, restore into a new router, and both answer the same from then on: the
    /// same decisions for the same further steps, the same worker states.
    #[test]
    fn snapshot_then_restore_gives_the_same_answers(
        seed in any::<u64>(),
        base in any::<u32>(),
        before in prop::collection::vec(step(), 1..40),
        after in prop::collection::vec(step(), 1..40),
        policy in policy(),
    ) {
        let city = city();
        let a = crowded_router(policy, seed);
        let base = CellId::from_index(base as usize % city.grid().len()).unwrap();
        let mut run = Run::default();
        run_checked(&a, &city, base, &before, policy, &mut run)?;
        // Through JSON, as a file would hold it.
        let text = serde_json::to_string(&a.snapshot()).unwrap();
        let snapshot: RouterSnapshot = serde_json::from_str(&text).unwrap();
        let b = Router::new(city.clone(), RouterConfig { policy, ..RouterConfig::default() }).unwrap();
        let report = b.restore(&snapshot).unwrap();
        prop_assert_eq!(report.workers, city.workers().len());
        prop_assert!(report.orphaned_cases.is_empty());
        let diff = snapshot_diff(&a.snapshot(), &b.snapshot());
        prop_assert!(diff.is_empty(), "{:?}", diff);
        let mut run_b = run.clone();
        run_checked(&a, &city, base, &after, policy, &mut run)?;
        run_checked(&b, &city, base, &after, policy, &mut run_b)?;
        let diff = snapshot_diff(&a.snapshot(), &b.snapshot());
        prop_assert!(diff.is_empty(), "{:?}", diff);
    }
}

/// 职责准入 on every cell of the demo city: a street-held duty goes to the street office's
/// force, never to a community's people; a community-held one to the community's own.
#[test]
fn work_goes_only_to_the_holder_and_its_own_people() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let mut by_found: HashMap<Found, usize> = HashMap::new();
    let mut case = 0;
    for code in ["ZF-02", "ZZ-04", "ZZ-02", "FW-01", "DJ-02"] {
        let category = city.category_id(code).unwrap();
        let platform = city.category(category).unwrap().platform;
        for cell in city.grid().ids().step_by(5) {
            case += 1;
            let d = router
                .route(&CaseRequest::new(
                    CaseId(case),
                    cell,
                    category,
                    place(&city, cell),
                ))
                .unwrap();
            let holder = d.trace.admission.holder;
            *by_found.entry(d.trace.found).or_default() += 1;
            // The router's own statement of the rule agrees with the test's, worker by worker.
            let roles = city.category(category).unwrap().roles;
            for w in (0..city.workers().len()).step_by(7) {
                let w = WorkerId::from_index(w).unwrap();
                let rule = !holder_is_department(holder)
                    && belongs_to_holder(&city, w, holder, platform)
                    && city.worker(w).unwrap().roles.intersects(roles);
                assert_eq!(router.may_take(w, cell, category), rule, "{w} in {cell}");
            }
            match d.outcome {
                Outcome::Assigned { worker } => {
                    assert!(
                        belongs_to_holder(&city, worker, holder, platform),
                        "{}",
                        router.explain(&d)
                    );
                }
                Outcome::Queued { organ } => {
                    let street = match holder {
                        Holder::Street { street, .. } => street,
                        Holder::Community(m) => city.unit(m).unwrap().parent.unwrap(),
                        Holder::Department(_) => panic!("a referral is never queued"),
                    };
                    assert_eq!(city.organ(organ).unwrap().street, street);
                }
                Outcome::Referred { .. } => assert!(holder_is_department(holder)),
                Outcome::Ruling { .. } => panic!("no case was returned"),
            }
            router.release(CaseId(case)).unwrap();
        }
    }
    // Both paths ran: street forces and community people.
    assert!(
        by_found.get(&Found::Force).copied().unwrap_or(0) > 100,
        "{by_found:?}"
    );
    assert!(
        by_found.get(&Found::Cell).copied().unwrap_or(0) > 100,
        "{by_found:?}"
    );
    assert!(
        by_found.keys().all(|f| !matches!(f, Found::Support(_))),
        "{by_found:?}"
    );
}

fn holder_is_department(h: Holder) -> bool {
    matches!(h, Holder::Department(_))
}

/// With support allowed, a case whose holder has nobody free goes to someone of another
/// unit nearby, and the trace says so; without it, the case queues.
#[test]
fn support_across_a_border_only_when_allowed_and_traced() {
    let city = city();
    let category = city.category_id("ZZ-01").unwrap();
    let cell = city
        .grid()
        .ids()
        .find(|&c| {
            let Holder::Community(m) = city.admit(c, category).unwrap().holder else {
                return false;
            };
            // Someone of another unit with the role lives within two cells.
            let roles = city.category(category).unwrap().roles;
            city.grid().within(c, 2).iter().flatten().any(|&near| {
                city.workers_in(near).iter().any(|&w| {
                    let worker = city.worker(w).unwrap();
                    worker.unit != WorkerUnit::Community(m) && worker.roles.intersects(roles)
                })
            })
        })
        .unwrap();
    let Holder::Community(community) = city.admit(cell, category).unwrap().holder else {
        unreachable!("found above")
    };
    for support in [false, true] {
        let router = Router::new(
            city.clone(),
            RouterConfig {
                support,
                ..RouterConfig::default()
            },
        )
        .unwrap();
        // The whole community goes off duty.
        for (w, worker) in city.workers().iter().enumerate() {
            if worker.unit == WorkerUnit::Community(community) {
                router
                    .set_status(WorkerId::from_index(w).unwrap(), WorkerStatus::OffDuty)
                    .unwrap();
            }
        }
        let d = router
            .route(&CaseRequest::new(
                CaseId(1),
                cell,
                category,
                place(&city, cell),
            ))
            .unwrap();
        if support {
            let w = d.worker().expect("a neighbour helps");
            assert!(matches!(d.trace.found, Found::Support(_)));
            assert_ne!(
                city.worker(w).unwrap().unit,
                WorkerUnit::Community(community)
            );
            assert!(
                router.explain(&d).contains("support"),
                "{}",
                router.explain(&d)
            );
        } else {
            assert!(matches!(d.outcome, Outcome::Queued { .. }), "{d}");
        }
    }
}

/// A community-held case in a cell with workers, and its street office.
fn community_case(city: &City) -> (CellId, CategoryId, UnitId) {
    let (cell, category) = city
        .grid()
        .ids()
        .flat_map(|c| {
            (0..city.categories().len()).map(move |k| (c, CategoryId::from_index(k).unwrap()))
        })
        .find(|&(c, k)| {
            let Holder::Community(m) = city.admit(c, k).unwrap().holder else {
                return false;
            };
            let roles = city.category(k).unwrap().roles;
            let able = city
                .workers()
                .iter()
                .filter(|w| w.unit == WorkerUnit::Community(m) && w.roles.intersects(roles))
                .count();
            able >= 3
                && city
                    .workers_in(c)
                    .iter()
                    .any(|&w| city.worker(w).unwrap().roles.intersects(roles))
        })
        .unwrap();
    (cell, category, city.chain(cell).unwrap().street)
}

#[test]
fn returns_are_counted_by_the_router_and_only_the_holder_may_return() {
    let city = city();
    let router = Router::new(
        city.clone(),
        RouterConfig {
            max_returns: 2,
            ..RouterConfig::default()
        },
    )
    .unwrap();
    let (cell, category, street) = community_case(&city);
    let req = CaseRequest::new(CaseId(7), cell, category, place(&city, cell));
    let w1 = router
        .route(&req)
        .unwrap()
        .worker()
        .expect("someone takes it");
    // Routing a held case again is refused: no case is held twice.
    assert_eq!(
        router.route(&req),
        Err(RoutingError::AlreadyAssigned {
            case: req.case,
            worker: w1
        })
    );
    // Someone else cannot return it.
    let other = (0..city.workers().len())
        .map(|w| WorkerId::from_index(w).unwrap())
        .find(|&w| w != w1)
        .unwrap();
    let before = router.snapshot();
    assert_eq!(
        router.return_case(&req, other),
        Err(RoutingError::NotHolding {
            case: req.case,
            worker: other
        })
    );
    assert_eq!(
        router.snapshot(),
        before,
        "a refused return changes nothing"
    );
    let second = router.return_case(&req, w1).unwrap();
    assert_eq!(
        router.worker_state(w1).unwrap().load,
        0,
        "the returner is freed"
    );
    assert_eq!(router.returns(req.case), 1);
    // The first returner returning again (they no longer hold it) is refused.
    assert!(matches!(
        router.return_case(&req, w1),
        Err(RoutingError::NotHolding { .. })
    ));
    let w2 = second
        .worker()
        .expect("the demo community has a second worker for it");
    assert_ne!(w2, w1);
    let third = router.return_case(&req, w2).unwrap();
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
    // A ruling holds nobody; the center dispatches by hand, even to a returner.
    assert_eq!(router.holder(req.case), None);
    let manual = router.assign_to(&req, w1, None).unwrap();
    assert_eq!(manual.trace.found, Found::Manual);
    assert_eq!(router.holder(req.case), Some(w1));
    // Released twice: one slot freed, not two.
    let load = router.worker_state(w1).unwrap().load;
    assert_eq!(router.release(req.case), Ok(Some(w1)));
    assert_eq!(router.release(req.case), Ok(None));
    assert_eq!(router.worker_state(w1).unwrap().load, load - 1);
    // The breaker remembers the returners until the case is forgotten.
    assert_eq!(router.returns(req.case), 2);
    assert_eq!(router.forget(req.case), None);
    assert_eq!(router.returns(req.case), 0);
}

#[test]
fn manual_dispatch_respects_capacity_unless_overridden_with_a_reason() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let (cell, category, _) = community_case(&city);
    let w = city.workers_in(cell)[0];
    router.set_capacity(w, 1).unwrap();
    let at = place(&city, cell);
    router
        .assign_to(&CaseRequest::new(CaseId(1), cell, category, at), w, None)
        .unwrap();
    let second = CaseRequest::new(CaseId(2), cell, category, at);
    assert_eq!(
        router.assign_to(&second, w, None),
        Err(RoutingError::Unavailable {
            worker: w,
            why: "at capacity"
        })
    );
    assert_eq!(
        router.assign_to(&second, w, Some("  ")),
        Err(RoutingError::EmptyReason)
    );
    assert_eq!(
        router.worker_state(w).unwrap().load,
        1,
        "refusals change nothing"
    );
    router
        .assign_to(&second, w, Some("the only officer who knows the site"))
        .unwrap();
    assert_eq!(router.worker_state(w).unwrap().load, 2);
    assert_eq!(router.held_by(w), vec![CaseId(1), CaseId(2)]);
}

/// A roster change: a new city with one worker gone and the rest renumbered; the rebuilt
/// router carries every remaining worker's state by string id, and the departed worker's
/// cases come back orphaned.
#[test]
fn a_rebuilt_router_carries_state_over_by_string_id() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let (cell, category, _) = community_case(&city);
    let at = place(&city, cell);
    let mut held = Vec::new();
    for k in 0..6 {
        let d = router
            .route(&CaseRequest::new(CaseId(k), cell, category, at))
            .unwrap();
        if let Some(w) = d.worker() {
            held.push((CaseId(k), w));
        }
    }
    assert!(held.len() >= 2, "{held:?}");
    let (gone_case, gone) = held[0];
    let moved = WorkerId::from_index(city.workers().len() - 1).unwrap();
    router.set_status(moved, WorkerStatus::Busy).unwrap();
    router
        .set_position_at(moved, at, 1_700_000_000_000)
        .unwrap();

    let mut config = wangge::demo::demo_config();
    let gone_id = city.worker(gone).unwrap().id.clone();
    config.workers.retain(|w| w.id != gone_id);
    config.workers.reverse();
    let new_city = Arc::new(City::new(&config, wangge::demo::demo_city_grid()).unwrap());
    let (rebuilt, report) = router
        .rebuild(new_city.clone(), RouterConfig::default())
        .unwrap();
    assert_eq!(report.unknown_workers, vec![gone_id]);
    assert!(report.orphaned_cases.contains(&gone_case));
    for &(case, w) in &held {
        let id = &city.worker(w).unwrap().id;
        let want = if w == gone {
            None
        } else {
            new_city.worker_id(id)
        };
        assert_eq!(rebuilt.holder(case), want, "case {case}");
    }
    let moved_new = new_city.worker_id(&city.worker(moved).unwrap().id).unwrap();
    let s = rebuilt.worker_state(moved_new).unwrap();
    assert_eq!(s.status, WorkerStatus::Busy);
    let p = s.position.unwrap();
    // Positions are kept to 1e-7 degree.
    assert!((p.lon() - at.lon()).abs() <= 1e-7 && (p.lat() - at.lat()).abs() <= 1e-7);
    assert_eq!(s.position_at_ms, Some(1_700_000_000_000));
    // A restore needs an empty router.
    assert!(matches!(
        rebuilt.restore(&router.snapshot()),
        Err(RoutingError::NotEmpty { .. })
    ));
}

#[test]
fn decisions_serialize_with_string_ids_and_come_back() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let mut kinds = std::collections::HashSet::new();
    for (k, cell) in city.grid().ids().step_by(13).enumerate() {
        let category = CategoryId::from_index(k % city.categories().len()).unwrap();
        let d = router
            .route(&CaseRequest::new(
                CaseId(k as u64),
                cell,
                category,
                place(&city, cell),
            ))
            .unwrap();
        let record = router.record(&d);
        assert_eq!(record.cell, city.grid()[cell].name);
        let text = serde_json::to_string(&record).unwrap();
        let back: wangge::routing::DecisionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(router.decision_from_record(&back).unwrap(), d);
        kinds.insert(record.outcome);
    }
    assert!(kinds.len() >= 2, "{kinds:?}");
}

/// A policy of the caller's goes through its trait object, the built-in ones are called
/// directly: the same ranks must give the same decisions either way, and the caller's own
/// ranking must be the one used.
#[test]
fn a_policy_of_ones_own_ranks_as_the_built_in_one_would() {
    /// The built-in nearest-worker rank, under another name.
    #[derive(Debug)]
    struct NearestAgain;
    impl wangge::Policy for NearestAgain {
        fn rank(&self, c: &Candidate) -> u64 {
            wangge::Policy::rank(&wangge::routing::Nearest, c)
        }
        fn name(&self) -> &'static str {
            "nearest, again"
        }
    }
    /// The highest worker id first: no built-in policy ranks so.
    #[derive(Debug)]
    struct HighestId;
    impl wangge::Policy for HighestId {
        fn rank(&self, c: &Candidate) -> u64 {
            u64::MAX - c.worker.index() as u64
        }
        fn name(&self) -> &'static str {
            "highest id"
        }
    }
    let city = city();
    let built_in = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let own = Router::with_policy(
        city.clone(),
        RouterConfig::default(),
        Box::new(NearestAgain),
    )
    .unwrap();
    let highest =
        Router::with_policy(city.clone(), RouterConfig::default(), Box::new(HighestId)).unwrap();
    let categories = city.categories().len();
    let (mut assigned, mut compared) = (0, 0);
    for k in 0..3000usize {
        let cell = CellId::from_index(k * 7919 % city.grid().len()).unwrap();
        let category = CategoryId::from_index(k % categories).unwrap();
        let req = CaseRequest::new(CaseId(k as u64), cell, category, place(&city, cell));
        let a = built_in.route(&req).unwrap();
        let b = own.route(&req).unwrap();
        assert_eq!(a.outcome, b.outcome, "case {k}");
        assert_eq!(
            (a.trace.policy, b.trace.policy),
            ("nearest", "nearest, again")
        );
        let h = highest.route(&req).unwrap();
        assert_eq!(h.trace.policy, "highest id");
        if let (Outcome::Assigned { worker }, Some(next)) = (h.outcome, h.trace.runner_up) {
            assert!(
                worker.index() > next.index(),
                "case {k}: {worker:?} before {next:?}"
            );
            compared += 1;
        }
        assigned += usize::from(matches!(a.outcome, Outcome::Assigned { .. }));
    }
    assert!(
        assigned > 1000 && compared > 100,
        "{assigned} assigned, {compared} compared"
    );
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
                let mut held: Vec<(CaseId, WorkerId)> = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let mut assigned = 0usize;
                for i in 0..20_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Cases concentrate on a few cells so threads fight over the same workers.
                    let cell = CellId::from_index((x % 40) as usize).unwrap();
                    let category =
                        CategoryId::from_index((x >> 20) as usize % city.categories().len())
                            .unwrap();
                    let case = CaseId(t << 32 | i);
                    let d = router
                        .route(&CaseRequest::new(case, cell, category, place(&city, cell)))
                        .unwrap();
                    if let Some(w) = d.worker() {
                        held.push((case, w));
                        assigned += 1;
                    }
                    if i % 3 == 0 && !held.is_empty() {
                        let (case, w) = held.swap_remove((x >> 33) as usize % held.len());
                        assert_eq!(router.release(case).unwrap(), Some(w));
                        // The "finished" message delivered twice.
                        assert_eq!(router.release(case).unwrap(), None);
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
        for (case, w) in held {
            assert_eq!(router.holder(case), Some(w));
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
        let id = WorkerId::from_index(w).unwrap();
        assert_eq!(router.worker_state(id).unwrap().load, n, "worker {w}");
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
fn bad_requests_are_refused_with_typed_errors() {
    let city = city();
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let cell = CellId::from_index(0).unwrap();
    let at = place(&city, cell);
    let bad_cell = CellId::from_index(city.grid().len()).unwrap();
    let bad_cat = CategoryId::from_index(city.categories().len()).unwrap();
    let bad_worker = WorkerId::from_index(city.workers().len()).unwrap();
    let ok_cat = CategoryId::from_index(0).unwrap();
    let case = CaseId(1);
    assert_eq!(
        router.route(&CaseRequest::new(case, bad_cell, ok_cat, at)),
        Err(RoutingError::UnknownCell(bad_cell))
    );
    assert_eq!(
        router.route(&CaseRequest::new(case, cell, bad_cat, at)),
        Err(RoutingError::UnknownCategory(bad_cat))
    );
    assert_eq!(
        router.return_case(&CaseRequest::new(case, cell, ok_cat, at), bad_worker),
        Err(RoutingError::UnknownWorker(bad_worker))
    );
    assert_eq!(
        router.assign_to(&CaseRequest::new(case, cell, ok_cat, at), bad_worker, None),
        Err(RoutingError::UnknownWorker(bad_worker))
    );
    assert_eq!(
        router.release(CaseId(999)),
        Ok(None),
        "an unknown case holds nobody"
    );
    assert_eq!(
        router.set_capacity(WorkerId::from_index(0).unwrap(), 0),
        Err(RoutingError::Capacity(0))
    );
    assert!(matches!(
        router.set_status(bad_worker, WorkerStatus::Busy),
        Err(RoutingError::UnknownWorker(_))
    ));
    let mut snapshot = router.snapshot();
    snapshot.version = 99;
    assert!(matches!(
        router.restore(&snapshot),
        Err(RoutingError::SnapshotVersion { found: 99, .. })
    ));
    for (field, config) in [
        (
            "max_ring",
            RouterConfig {
                max_ring: 9,
                ..RouterConfig::default()
            },
        ),
        (
            "max_returns",
            RouterConfig {
                max_returns: 0,
                ..RouterConfig::default()
            },
        ),
    ] {
        assert!(matches!(
            Router::new(city.clone(), config),
            Err(RoutingError::Config { field: f, .. }) if f == field
        ));
    }
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
    let mut case = 0;
    // A cell and category with at least two eligible workers at the deciding level.
    for cell in city.grid().ids() {
        for k in 0..city.categories().len() {
            let category = CategoryId::from_index(k).unwrap();
            let at = place(&city, cell);
            case += 1;
            let d = router
                .route(&CaseRequest::new(CaseId(case), cell, category, at))
                .unwrap();
            router.release(CaseId(case)).unwrap();
            let (Some(w), Some(runner)) = (d.worker(), d.trace.runner_up) else {
                continue;
            };
            // The chosen one must not already stand on the case (a tie at 0 m goes to the
            // lower id).
            let chosen = router.worker_state(w).unwrap().position.unwrap();
            if chosen.distance_m(at) < 10.0 {
                continue;
            }
            // Move the runner-up onto the case: now they are the nearest.
            router.set_position(runner, at).unwrap();
            case += 1;
            let again = router
                .route(&CaseRequest::new(CaseId(case), cell, category, at))
                .unwrap();
            assert_eq!(again.worker(), Some(runner), "{}", router.explain(&again));
            return;
        }
    }
    panic!("the demo city has no case with two candidates");
}

/// Rings are walked inside the holding community: in a U-shaped community, a worker at the
/// far tip of the U is two cells away across the neighbouring community but six inside
/// its own, so the router finds them at the community level, not at ring 2. Worked out by
/// hand on a 3 x 3 lattice:
///
/// ```text
///   row 2:  A  B  A      A: the U-shaped community, B: its neighbour in the middle
///   row 1:  A  B  A      the case is in A at (0, 2); A's worker lives at (2, 2);
///   row 0:  A  A  A      B's worker lives at (1, 2), next to the case
/// ```
#[test]
fn rings_are_walked_inside_the_holding_community() {
    use wangge::config::WorkerConfig;
    use wangge::{Cell, Grid, Polygon};
    let mut cells = Vec::new();
    for row in 0..3 {
        for col in 0..3 {
            let community = if col == 1 && row > 0 { "B" } else { "A" };
            let min = [120.0 + col as f64 * 0.01, 36.0 + row as f64 * 0.01];
            cells.push(
                Cell::new(
                    format!("c{col}{row}"),
                    vec![Polygon::rect(min, [min[0] + 0.01, min[1] + 0.01])],
                )
                .with_parents(community, "S街道", "D区"),
            );
        }
    }
    let grid = Grid::new(cells).unwrap();
    let mut config = wangge::demo::demo_config_for(&grid).unwrap();
    let category = "ZZ-01";
    let roles = config
        .categories
        .iter()
        .find(|c| c.code == category)
        .unwrap()
        .roles
        .clone();
    let worker = |id: &str, unit: &str, cell: &str, at: [f64; 2]| WorkerConfig {
        id: id.into(),
        name: id.into(),
        kind: wangge::city::WorkerKind::FullTimeGridWorker,
        unit: unit.into(),
        roles: roles.clone(),
        cells: vec![cell.into()],
        capacity: 2,
        position: Some(at),
    };
    config.workers = vec![
        worker("far", "A", "c22", [120.025, 36.025]),
        worker("next-door", "B", "c12", [120.015, 36.025]),
    ];
    let city = Arc::new(City::new(&config, grid).unwrap());
    let cell = city.grid().id_of("c02").unwrap();
    let k = city.category_id(category).unwrap();
    assert!(matches!(
        city.admit(cell, k).unwrap().holder,
        Holder::Community(_)
    ));
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let d = router
        .route(&CaseRequest::new(CaseId(1), cell, k, place(&city, cell)))
        .unwrap();
    assert_eq!(d.worker(), city.worker_id("far"), "{}", router.explain(&d));
    assert_eq!(d.trace.found, Found::Community, "{}", router.explain(&d));
}
