//! The engine against the lifecycle's rules: a permission table written here by hand (not
//! the engine's), every illegal action on every state refused without a change, deadlines
//! on the simulated clock, queues, duplicates, subscribers, conservation as a property
//! test and under threads.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wangge::pipeline::{Action, Notice, Reporter};
use wangge::{
    CaseId, CaseRequest, CaseState, CategoryId, City, Clock, Command, Engine, EngineConfig,
    LifecycleError, Location, Outcome, Priority, Report, Router, RouterConfig, Satisfaction,
    SimClock, Source, SubmitError, Timestamp, Verifier, WorkerId, WorkerStatus,
};

const T0: u64 = 1_764_460_800_000;
const HOUR: Duration = Duration::from_secs(3600);

fn city() -> Arc<City> {
    static CITY: OnceLock<Arc<City>> = OnceLock::new();
    CITY.get_or_init(|| Arc::new(wangge::demo::demo_city()))
        .clone()
}

fn engine_with(config: EngineConfig) -> (Engine, SimClock) {
    let clock = SimClock::new(Timestamp(T0));
    let engine = Engine::builder(city())
        .clock(clock.clone())
        .config(config)
        .build()
        .expect("engine");
    (engine, clock)
}

fn engine() -> (Engine, SimClock) {
    engine_with(EngineConfig::default())
}

fn cat(code: &str) -> CategoryId {
    city().category_id(code).expect("in the demo catalogue")
}

/// Points spread over the demo city, inside its grid, 1 km or more apart.
fn places() -> &'static [Location] {
    static P: OnceLock<Vec<Location>> = OnceLock::new();
    P.get_or_init(|| {
        let c = city();
        let [x0, y0, x1, y1] = c.grid().bounds();
        let mut v = Vec::new();
        for i in 0..40 {
            for j in 0..40 {
                let p = Location::new(
                    x0 + (x1 - x0) * (i as f64 + 0.5) / 40.0,
                    y0 + (y1 - y0) * (j as f64 + 0.5) / 40.0,
                )
                .unwrap();
                if c.grid().locate(p).is_some() {
                    v.push(p);
                }
            }
        }
        v
    })
}

fn report(code: &str, at: Location) -> Report {
    Report::new(Source::Hotline, cat(code), at, Timestamp(T0)).with_reporter(Reporter::Citizen(7))
}

/// Submits reports of `code` at successive places until one is dispatched; returns it and
/// its worker.
fn dispatched(engine: &Engine, code: &str, from: usize) -> (CaseId, WorkerId) {
    for p in &places()[from..] {
        let id = engine.submit(report(code, *p)).expect("valid");
        engine.flush();
        let c = engine.case(id).expect("stored");
        if c.state == CaseState::Dispatched {
            return (id, c.worker.expect("a dispatched case has a worker"));
        }
    }
    panic!("no place of the demo city dispatched a {code} case");
}

fn states(engine: &Engine, id: CaseId) -> Vec<CaseState> {
    engine
        .case(id)
        .expect("stored")
        .history
        .iter()
        .map(|t| t.to())
        .collect()
}

/// The pipeline routes every registered case as the router alone does, given the same
/// cases in the order of their ids: what the stages read ahead, hand over to each other
/// or split into chunks changes no decision.
#[test]
fn the_pipeline_decides_as_the_router_alone_in_id_order() {
    let (engine, _clock) = engine();
    let c = city();
    let categories = c.categories().len() as u64;
    let [x0, y0, x1, y1] = c.grid().bounds();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let reports: Vec<Report> = (0..3000)
        .map(|_| {
            let (fx, fy) = ((next() % 10_000) as f64, (next() % 10_000) as f64);
            let p = Location::new(x0 + (x1 - x0) * fx / 1e4, y0 + (y1 - y0) * fy / 1e4).unwrap();
            let category = CategoryId::from_index((next() % categories) as usize).unwrap();
            Report::new(Source::Hotline, category, p, Timestamp(T0))
                .with_priority(Priority::ALL[(next() % 4) as usize])
                .with_reporter(Reporter::Citizen(1))
        })
        .collect();
    let ids: Vec<CaseId> = engine
        .submit_batch(reports)
        .into_iter()
        .map(|r| r.expect("valid"))
        .collect();
    engine.flush();
    let router = Router::new(c.clone(), RouterConfig::default()).unwrap();
    let mut kinds = [0usize; 4];
    for id in ids {
        let case = engine.case(id).expect("stored");
        // Collect routes nothing it rejects, refers or merges.
        if !case.history.iter().any(|t| t.to() == CaseState::Registered) {
            continue;
        }
        let cell = case.cell.expect("a registered case lies in a cell");
        let req =
            CaseRequest::new(id, cell, case.category, case.location).with_priority(case.priority);
        let outcome = router.route(&req).expect("routable").outcome;
        let (kind, state) = match outcome {
            Outcome::Assigned { .. } => (0, CaseState::Dispatched),
            Outcome::Queued { .. } => (1, CaseState::Queued),
            Outcome::Ruling { .. } => (2, CaseState::Ruling),
            Outcome::Referred { .. } => (3, CaseState::Referred),
        };
        kinds[kind] += 1;
        assert_eq!(case.state, state, "{id}: {outcome:?}");
        if let Outcome::Assigned { worker } = outcome {
            assert_eq!(case.worker, Some(worker), "{id}");
        }
    }
    assert!(
        kinds[0] > 1000 && kinds[1] > 100,
        "dispatched and queued both: {kinds:?}"
    );
}

#[test]
fn a_case_lives_its_whole_life() {
    let (engine, _) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0);
    assert_eq!(engine.accept(id, w), Ok(CaseState::Accepted));
    assert_eq!(engine.router().holder(id), Some(w));
    assert_eq!(engine.resolve(id, w), Ok(CaseState::Resolved));
    assert_eq!(
        engine.router().holder(id),
        None,
        "resolving frees the worker's slot"
    );
    assert_eq!(
        engine.verify(id, Verifier::Inspector(3), true),
        Ok(CaseState::Verified)
    );
    assert_eq!(
        engine.close(id, Some(Satisfaction::Basic)),
        Ok(CaseState::Closed)
    );
    use CaseState::*;
    assert_eq!(
        states(&engine, id),
        vec![
            Reported, Registered, Dispatched, Accepted, Resolved, Verified, Closed
        ]
    );
    let case = engine.case(id).unwrap();
    assert_eq!(case.satisfaction, Some(Satisfaction::Basic));
    assert_eq!(case.on_time, Some(true));
    assert_eq!(case.resolver, Some(w));
    let s = engine.shutdown();
    assert_eq!(s.by_state["closed"], 1);
    assert_eq!(s.indicators.closure_rate, Some(1.0));
    assert_eq!(s.indicators.satisfaction_rate, Some(1.0));
    assert_eq!(s.indicators.dispatch_accuracy, Some(1.0));
    assert_eq!(s.by_state.values().sum::<u64>(), 1);
}

#[test]
fn only_the_dispatched_worker_may_act_and_the_resolver_never_verifies() {
    let (engine, _) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0);
    let other = WorkerId::from_index((w.index() + 1) % city().workers().len()).unwrap();
    let before = engine.case(id).unwrap();
    for c in [
        Command::Accept {
            case: id,
            worker: other,
        },
        Command::Return {
            case: id,
            worker: other,
            reason: Some("不属于本人职责".into()),
        },
    ] {
        assert!(
            matches!(engine.execute(&c), Err(LifecycleError::WrongWorker { worker, holder: Some(h), .. }) if worker == other && h == w),
            "{c:?}"
        );
    }
    assert_eq!(
        engine.case(id).unwrap(),
        before,
        "a refusal changes nothing"
    );
    engine.accept(id, w).unwrap();
    assert!(matches!(
        engine.resolve(id, other),
        Err(LifecycleError::WrongWorker { .. })
    ));
    engine.resolve(id, w).unwrap();
    let before = engine.case(id).unwrap();
    assert_eq!(
        engine.verify(id, Verifier::Worker(w), true),
        Err(LifecycleError::VerifierIsResolver {
            case: id,
            worker: w
        })
    );
    assert_eq!(engine.case(id).unwrap(), before);
    assert_eq!(
        engine.verify(id, Verifier::Worker(other), false),
        Ok(CaseState::Reopened)
    );
    engine.flush();
    let case = engine.case(id).unwrap();
    assert_eq!(case.reopens, 1);
    assert!(
        matches!(case.state, CaseState::Dispatched | CaseState::Queued),
        "a reopened case goes back out: {:?}",
        case.state
    );
}

#[test]
fn on_the_spot_handling_and_its_reporter_cannot_verify() {
    let (engine, _) = engine();
    let c = city();
    let category = cat("ZF-01");
    let needs = c.category(category).unwrap().roles;
    // A community worker with the role, reporting in their own community's cell.
    let (w, cell) = c
        .workers()
        .iter()
        .enumerate()
        .find_map(|(i, wk)| {
            let w = WorkerId::from_index(i).unwrap();
            let cell = *c.home_cells(w).first()?;
            (wk.roles.intersects(needs)
                && matches!(wk.unit, wangge::WorkerUnit::Community(u) if c.community_of(cell) == Some(u)))
            .then_some((w, cell))
        })
        .expect("the demo city has community workers");
    let [x0, y0, x1, y1] = c.grid().cell_bounds(cell).unwrap();
    let mut at = Location::new((x0 + x1) / 2.0, (y0 + y1) / 2.0).unwrap();
    if c.grid().locate(at) != Some(cell) {
        at = (0..100)
            .flat_map(|i| (0..100).map(move |j| (i, j)))
            .map(|(i, j)| {
                Location::new(
                    x0 + (x1 - x0) * (i as f64 + 0.5) / 100.0,
                    y0 + (y1 - y0) * (j as f64 + 0.5) / 100.0,
                )
                .unwrap()
            })
            .find(|p| c.grid().locate(*p) == Some(cell))
            .expect("a point of the cell");
    }
    let r = Report::new(Source::Patrol, category, at, Timestamp(T0))
        .with_reporter(Reporter::Worker(w))
        .on_the_spot();
    let id = engine.submit(r).unwrap();
    engine.flush();
    let case = engine.case(id).unwrap();
    assert_eq!(case.state, CaseState::Accepted, "{:?}", case.history);
    assert_eq!(case.worker, Some(w));
    assert_eq!(case.history.last().unwrap().action(), Action::TakeOnSpot);
    engine.resolve(id, w).unwrap();
    assert_eq!(
        engine.verify(id, Verifier::Reporter, true),
        Err(LifecycleError::VerifierIsResolver {
            case: id,
            worker: w
        })
    );
    // On the spot is only for a patrol report.
    let bad = report("ZF-01", at).on_the_spot();
    assert!(matches!(engine.submit(bad), Err(SubmitError::NotOnPatrol)));
}

/// The kinds of command, and the states each may act on: written from the rules of the
/// lifecycle, not read from the engine's table.
fn allowed(kind: usize, s: CaseState) -> bool {
    use CaseState::*;
    let pending = matches!(
        s,
        Registered | Queued | Dispatched | Accepted | Reopened | Ruling
    );
    match kind {
        0 => s == Dispatched,                                      // accept
        1 => matches!(s, Dispatched | Accepted),                   // return
        2 => s == Accepted,                                        // resolve
        3 | 4 => s == Resolved,                                    // verify pass / fail
        5 => s == Verified,                                        // close
        6 => s == Verified,                                        // reopen
        7 => matches!(s, Registered | Queued | Ruling | Reopened), // manual dispatch
        8 | 9 => pending,                                          // extend, suspend
        _ => unreachable!(),
    }
}

const KINDS: usize = 10;

fn command(kind: usize, case: CaseId, worker: WorkerId) -> Command {
    match kind {
        0 => Command::Accept { case, worker },
        1 => Command::Return {
            case,
            worker,
            reason: None,
        },
        2 => Command::Resolve { case, worker },
        3 => Command::Verify {
            case,
            by: Verifier::Inspector(1),
            passed: true,
        },
        4 => Command::Verify {
            case,
            by: Verifier::Inspector(1),
            passed: false,
        },
        5 => Command::Close {
            case,
            satisfaction: None,
        },
        6 => Command::Reopen {
            case,
            reason: "recheck".into(),
        },
        7 => Command::Dispatch {
            case,
            worker,
            over_capacity: None,
        },
        8 => Command::Extend {
            case,
            by: HOUR,
            reason: "rain".into(),
        },
        _ => Command::Suspend {
            case,
            reason: "waiting for the owner".into(),
        },
    }
}

#[test]
fn every_illegal_action_on_every_state_is_refused_and_changes_nothing() {
    let (engine, _) = engine();
    let mut cases: Vec<(CaseId, WorkerId)> = Vec::new();
    let (d, w) = dispatched(&engine, "ZF-01", 0);
    cases.push((d, w));
    let (a, wa) = dispatched(&engine, "ZF-01", 5);
    engine.accept(a, wa).unwrap();
    cases.push((a, wa));
    let (r, wr) = dispatched(&engine, "ZF-01", 10);
    engine.accept(r, wr).unwrap();
    engine.resolve(r, wr).unwrap();
    cases.push((r, wr));
    let (v, wv) = dispatched(&engine, "ZF-01", 15);
    engine.accept(v, wv).unwrap();
    engine.resolve(v, wv).unwrap();
    engine.verify(v, Verifier::Center, true).unwrap();
    cases.push((v, wv));
    let (c, wc) = dispatched(&engine, "ZF-01", 20);
    engine.accept(c, wc).unwrap();
    engine.resolve(c, wc).unwrap();
    engine.verify(c, Verifier::Center, true).unwrap();
    engine.close(c, None).unwrap();
    cases.push((c, wc));
    // Outside the grid, and a district-level duty.
    let [x0, y0, _, _] = city().grid().bounds();
    let outside = engine
        .submit(report("ZF-01", Location::new(x0 - 1.0, y0 - 1.0).unwrap()))
        .unwrap();
    let referred = engine.submit(report("ZF-07", places()[30])).unwrap();
    // A duplicate of the dispatched case.
    let dup = engine
        .submit(report("ZF-01", engine.case(d).unwrap().location))
        .unwrap();
    engine.flush();
    for id in [outside, referred, dup] {
        cases.push((id, w));
    }
    // A ruling: returned by distinct workers until the breaker trips (where the holder
    // has workers enough to be returned by; elsewhere the case queues and the next place
    // is tried).
    let mut ruling = None;
    let mut from = 25;
    'places: while ruling.is_none() && from < places().len() {
        let (g, mut wg) = dispatched(&engine, "ZF-01", from);
        from += 1;
        for _ in 0..4 {
            match engine.return_case(g, wg).unwrap() {
                CaseState::Ruling => {
                    ruling = Some(g);
                    break 'places;
                }
                CaseState::Dispatched => wg = engine.case(g).unwrap().worker.unwrap(),
                _ => continue 'places,
            }
        }
    }
    cases.push((
        ruling.expect("the 退单 breaker sends a case to a ruling"),
        w,
    ));
    let seen: Vec<CaseState> = cases
        .iter()
        .map(|(id, _)| engine.case(*id).unwrap().state)
        .collect();
    use CaseState::*;
    for s in [
        Dispatched, Accepted, Resolved, Verified, Closed, Rejected, Referred, Merged, Ruling,
    ] {
        assert!(seen.contains(&s), "no case in {s}: {seen:?}");
    }
    let mut refused = 0;
    for &(id, worker) in &cases {
        let state = engine.case(id).unwrap().state;
        for kind in 0..KINDS {
            if allowed(kind, state) {
                continue;
            }
            let before = engine.case(id).unwrap();
            let r = engine.execute(&command(kind, id, worker));
            assert!(
                matches!(r, Err(LifecycleError::Illegal { case, from, .. }) if case == id && from == state),
                "kind {kind} on a {state} case: {r:?}"
            );
            assert_eq!(
                engine.case(id).unwrap(),
                before,
                "kind {kind} on {state} changed it"
            );
            refused += 1;
        }
    }
    assert!(refused >= 60, "{refused}");
    assert!(matches!(
        engine.accept(CaseId(1 << 40), w),
        Err(LifecycleError::UnknownCase(_))
    ));
}

#[test]
fn reminders_and_escalation_follow_the_simulated_clock() {
    let (engine, clock) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0); // normal priority: 4 h
    engine.accept(id, w).unwrap();
    let due = engine.case(id).unwrap().due.expect("a deadline");
    assert_eq!(due.ms() - T0, 4 * 3600 * 1000);
    clock.advance(Duration::from_secs(3 * 3600));
    engine.tick();
    assert!(!engine.case(id).unwrap().reminded, "3 h of 4: not yet");
    clock.advance(Duration::from_secs(20 * 60)); // 3 h 20: past 80 %
    engine.tick();
    let c = engine.case(id).unwrap();
    assert!(c.reminded);
    assert_eq!(c.escalation, 0);
    assert_eq!(c.history.last().unwrap().action(), Action::Remind);
    clock.advance(Duration::from_secs(41 * 60)); // 4 h 01
    engine.tick();
    assert_eq!(engine.case(id).unwrap().escalation, 1);
    assert_eq!(engine.snapshot().overdue_by_level[1], 1);
    clock.advance(Duration::from_secs(4 * 3600));
    engine.tick();
    let c = engine.case(id).unwrap();
    assert_eq!(c.escalation, 2, "one level per deadline period overdue");
    assert_eq!(
        c.history
            .iter()
            .filter(|t| t.action() == Action::Escalate)
            .count(),
        2
    );
    engine.resolve(id, w).unwrap();
    assert_eq!(engine.case(id).unwrap().on_time, Some(false));
}

#[test]
fn suspension_stops_the_clock_and_extension_moves_it() {
    let (engine, clock) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0);
    engine.accept(id, w).unwrap();
    assert!(matches!(
        engine.suspend(id, " "),
        Err(LifecycleError::EmptyReason { .. })
    ));
    engine.suspend(id, "owner abroad").unwrap();
    assert!(matches!(
        engine.suspend(id, "again"),
        Err(LifecycleError::Suspension { .. })
    ));
    clock.advance(10 * HOUR);
    engine.tick();
    assert_eq!(
        engine.case(id).unwrap().escalation,
        0,
        "a suspended clock stands"
    );
    engine.resume(id).unwrap();
    let due = engine.case(id).unwrap().due.unwrap();
    assert_eq!(
        due.ms() - T0,
        14 * 3600 * 1000,
        "the deadline moved by the 10 h"
    );
    engine.extend(id, 2 * HOUR, "heavy rain").unwrap();
    assert_eq!(
        engine.case(id).unwrap().due.unwrap().ms() - T0,
        16 * 3600 * 1000
    );
    clock.advance(5 * HOUR + Duration::from_secs(1)); // 15 h: before the 16 h deadline
    engine.tick();
    assert_eq!(engine.case(id).unwrap().escalation, 0);
    engine.resolve(id, w).unwrap();
    assert_eq!(engine.case(id).unwrap().on_time, Some(true));
    let notes = engine.case(id).unwrap().notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
}

#[test]
fn a_case_not_accepted_in_time_is_routed_again() {
    let (engine, clock) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0);
    clock.advance(Duration::from_secs(29 * 60));
    engine.tick();
    assert_eq!(engine.case(id).unwrap().worker, Some(w));
    clock.advance(Duration::from_secs(2 * 60));
    engine.tick();
    engine.flush();
    let c = engine.case(id).unwrap();
    let timeout = c
        .history
        .iter()
        .find(|t| t.action() == Action::AcceptTimeout)
        .expect("an accept timeout was recorded");
    assert_eq!(timeout.from(), Some(CaseState::Dispatched));
    assert_eq!(
        engine.router().holder(id),
        c.worker,
        "router and case agree"
    );
}

#[test]
fn queued_cases_go_out_when_workers_come_on_duty() {
    let (engine, _) = engine();
    let n = city().workers().len();
    for i in 0..n {
        engine
            .set_worker_status(WorkerId::from_index(i).unwrap(), WorkerStatus::OffDuty)
            .unwrap();
    }
    let ids: Vec<CaseId> = places()[..20]
        .iter()
        .map(|p| engine.submit(report("ZF-01", *p)).unwrap())
        .collect();
    engine.flush();
    for &id in &ids {
        assert_eq!(engine.case(id).unwrap().state, CaseState::Queued);
    }
    let s = engine.snapshot();
    assert_eq!(s.queues.values().sum::<u64>(), 20);
    for i in 0..n {
        engine
            .set_worker_status(WorkerId::from_index(i).unwrap(), WorkerStatus::OnDuty)
            .unwrap();
    }
    engine.flush();
    for &id in &ids {
        let c = engine.case(id).unwrap();
        assert_eq!(c.state, CaseState::Dispatched, "{:?}", c.history);
    }
    assert!(engine.snapshot().queues.is_empty());
}

/// A shift change in one call: every change is made before any street's queue gives out
/// a case, so a worker who comes on duty and leaves again within the call takes nothing,
/// however the assign thread runs.
#[test]
fn a_shift_change_in_one_call_is_made_whole_before_the_queues_give_out_cases() {
    let (engine, _) = engine();
    let n = city().workers().len();
    let all = |status| -> Vec<(WorkerId, WorkerStatus)> {
        (0..n)
            .map(|i| (WorkerId::from_index(i).unwrap(), status))
            .collect()
    };
    engine
        .set_worker_statuses(&all(WorkerStatus::OffDuty))
        .unwrap();
    let ids: Vec<CaseId> = places()[..60]
        .iter()
        .map(|p| engine.submit(report("ZF-01", *p)).unwrap())
        .collect();
    engine.flush();
    assert!(
        ids.iter()
            .all(|&id| engine.case(id).unwrap().state == CaseState::Queued)
    );
    // Everyone comes on duty, then the odd-numbered workers leave again, in one call.
    let mut shift = all(WorkerStatus::OnDuty);
    shift.extend(
        (1..n)
            .step_by(2)
            .map(|i| (WorkerId::from_index(i).unwrap(), WorkerStatus::OffDuty)),
    );
    engine.set_worker_statuses(&shift).unwrap();
    engine.flush();
    let mut given = 0;
    for &id in &ids {
        let c = engine.case(id).unwrap();
        match c.state {
            CaseState::Dispatched => {
                let w = c.worker.expect("a dispatched case has a worker");
                assert_eq!(
                    w.index() % 2,
                    0,
                    "{id:?} went to {w:?}, who left in the call"
                );
                given += 1;
            }
            CaseState::Queued => {}
            other => panic!("{id:?} is {other:?}"),
        }
    }
    assert!(given > 0, "nobody on duty took a waiting case");
    for i in 0..n {
        let w = WorkerId::from_index(i).unwrap();
        let want = if i % 2 == 0 {
            WorkerStatus::OnDuty
        } else {
            WorkerStatus::OffDuty
        };
        assert_eq!(engine.router().worker_state(w).unwrap().status, want);
    }
    // An unknown worker anywhere in the call: refused, and nobody's status changes.
    let past = WorkerId::from_index(n).unwrap();
    let bad = [
        (WorkerId::from_index(1).unwrap(), WorkerStatus::OnDuty),
        (past, WorkerStatus::OnDuty),
    ];
    assert_eq!(
        engine.set_worker_statuses(&bad),
        Err(LifecycleError::UnknownWorker(past))
    );
    assert_eq!(
        engine
            .router()
            .worker_state(WorkerId::from_index(1).unwrap())
            .unwrap()
            .status,
        WorkerStatus::OffDuty
    );
}

#[test]
fn duplicates_merge_and_close_with_their_case() {
    let (engine, _) = engine();
    let (id, w) = dispatched(&engine, "ZF-01", 0);
    let at = engine.case(id).unwrap().location;
    let near = Location::new(at.lon() + 0.0001, at.lat()).unwrap(); // ~9 m
    let dup = engine.submit(report("ZF-01", near)).unwrap();
    let other_category = engine.submit(report("ZZ-04", near)).unwrap();
    let far = Location::new(at.lon() + 0.01, at.lat()).unwrap();
    let not_dup = engine.submit(report("ZF-01", far)).unwrap();
    engine.flush();
    let d = engine.case(dup).unwrap();
    assert_eq!(d.state, CaseState::Merged);
    assert_eq!(d.merged_into, Some(id));
    assert_eq!(engine.case(id).unwrap().duplicates, vec![dup]);
    assert_ne!(
        engine.case(other_category).unwrap().state,
        CaseState::Merged
    );
    assert_ne!(engine.case(not_dup).unwrap().state, CaseState::Merged);
    engine.accept(id, w).unwrap();
    engine.resolve(id, w).unwrap();
    engine.verify(id, Verifier::Reporter, true).unwrap();
    engine.close(id, None).unwrap();
    assert_eq!(engine.case(dup).unwrap().state, CaseState::Closed);
    // Closed cases take no more duplicates.
    let later = engine.submit(report("ZF-01", near)).unwrap();
    engine.flush();
    assert_ne!(engine.case(later).unwrap().state, CaseState::Merged);
}

#[test]
fn outside_the_grid_is_rejected_and_district_duties_referred() {
    let (engine, clock) = engine();
    let [x0, y0, _, _] = city().grid().bounds();
    let out = engine
        .submit(report("ZF-01", Location::new(x0 - 0.5, y0).unwrap()))
        .unwrap();
    let referred = engine.submit(report("ZF-07", places()[3])).unwrap();
    engine.flush();
    assert_eq!(engine.case(out).unwrap().state, CaseState::Rejected);
    assert_eq!(engine.case(referred).unwrap().state, CaseState::Referred);
    // Bad reports are refused before they become cases.
    let future = Report::new(
        Source::Hotline,
        cat("ZF-01"),
        places()[0],
        clock.now().plus(HOUR),
    );
    assert!(matches!(
        engine.submit(future),
        Err(SubmitError::InTheFuture { .. })
    ));
    let unknown = Report::new(
        Source::Hotline,
        CategoryId::from_index(9999).unwrap(),
        places()[0],
        Timestamp(T0),
    );
    assert!(matches!(
        engine.submit(unknown),
        Err(SubmitError::UnknownCategory(_))
    ));
    let patrol = Report::new(Source::Patrol, cat("ZF-01"), places()[0], Timestamp(T0));
    assert!(matches!(
        engine.submit(patrol),
        Err(SubmitError::ReporterMismatch { .. })
    ));
    assert_eq!(engine.submitted(), 2);
}

#[test]
fn a_slow_subscriber_is_told_how_many_events_it_missed() {
    let (engine, _) = engine_with(EngineConfig {
        subscriber_buffer: 8,
        ..EngineConfig::default()
    });
    let sub = engine.subscribe();
    let ids: Vec<CaseId> = places()[..60]
        .iter()
        .map(|p| engine.submit(report("ZF-01", *p)).unwrap())
        .collect();
    engine.flush();
    let total: usize = ids
        .iter()
        .map(|&id| engine.case(id).unwrap().history.len())
        .sum();
    let (mut got, mut missed) = (0u64, 0u64);
    while let Some(n) = sub.try_recv() {
        match n {
            Notice::Event(_) => got += 1,
            Notice::Missed(k) => missed += k,
        }
    }
    assert_eq!(got, 8, "the buffer's worth");
    assert!(missed > 0);
    assert_eq!(
        got + missed,
        total as u64,
        "every event received or counted as missed"
    );
    drop(sub);
    engine.shutdown();
}

/// A batch with bad reports among good ones: each bad one gets its own error, the good
/// ones consecutive ids in their order, and each id holds its own report.
#[test]
fn a_batch_refuses_its_bad_reports_and_takes_the_rest_in_order() {
    let (engine, _) = engine();
    let mut reports = Vec::new();
    let mut expect_ok = Vec::new();
    for (i, p) in places().iter().take(60).enumerate() {
        let mut r = report(if i % 3 == 0 { "ZF-01" } else { "ZZ-04" }, *p)
            .with_description(format!("report {i}"));
        let good = match i % 7 {
            2 => {
                r.category = CategoryId::from_index(9_999).expect("an id");
                false
            }
            5 => {
                r.description = "x".repeat(wangge::pipeline::MAX_DESCRIPTION + 1);
                false
            }
            _ => true,
        };
        expect_ok.push(good);
        reports.push(r);
    }
    let answers = engine.submit_batch(reports.clone());
    assert_eq!(answers.len(), reports.len());
    let mut next = 0;
    for ((r, a), good) in reports.iter().zip(&answers).zip(&expect_ok) {
        match (a, good) {
            (Ok(id), true) => {
                assert_eq!(*id, CaseId(next), "good reports take consecutive ids");
                next += 1;
                let c = engine.case(*id).expect("stored");
                assert_eq!(
                    (c.category, c.location, c.description.as_str()),
                    (r.category, r.location, r.description.as_str())
                );
            }
            (Err(SubmitError::UnknownCategory(_) | SubmitError::DescriptionTooLong(_)), false) => {}
            other => panic!("{other:?} for {:?}", r.description.get(..12)),
        }
    }
    assert_eq!(engine.submitted(), next);
    engine.shutdown();
}

#[test]
fn shutdown_drains_and_refuses_what_comes_after() {
    let (engine, _) = engine();
    let reports: Vec<Report> = places()
        .iter()
        .cycle()
        .take(3000)
        .enumerate()
        .map(|(i, p)| report(if i % 2 == 0 { "ZF-01" } else { "ZZ-04" }, *p))
        .collect();
    let answers = engine.submit_batch(reports);
    assert!(answers.iter().all(Result::is_ok));
    let s = engine.shutdown();
    assert_eq!(s.cases, 3000);
    assert_eq!(s.by_state.values().sum::<u64>(), 3000);
    assert_eq!(s.by_state["reported"], 0, "collect drained");
    assert_eq!(s.by_state["registered"], 0, "assign drained");
    assert!(matches!(
        engine.submit(report("ZF-01", places()[0])),
        Err(SubmitError::ShutDown(_))
    ));
    assert_eq!(
        engine.accept(CaseId(0), WorkerId::from_index(0).unwrap()),
        Err(LifecycleError::ShutDown)
    );
    assert_eq!(engine.shutdown(), s);
}

/// The moves of the lifecycle as the design states them, written out here to check
/// histories with (an independent copy of the rules; events keep the state).
fn legal(from: CaseState, to: CaseState, action: Action) -> bool {
    use CaseState::*;
    let pending = matches!(
        from,
        Registered | Queued | Dispatched | Accepted | Reopened | Ruling
    );
    match action {
        Action::Remind | Action::Escalate | Action::Extend | Action::Suspend | Action::Resume => {
            pending && from == to
        }
        Action::Register => from == Reported && to == Registered,
        Action::Reject => from == Reported && to == Rejected,
        Action::Merge => from == Reported && to == Merged,
        Action::Refer => {
            to == Referred && matches!(from, Reported | Registered | Queued | Reopened)
        }
        Action::Route => {
            matches!(from, Registered | Queued | Reopened)
                && matches!(to, Dispatched | Queued | Ruling)
        }
        Action::Accept => from == Dispatched && to == Accepted,
        Action::Return => {
            matches!(from, Dispatched | Accepted) && matches!(to, Dispatched | Queued | Ruling)
        }
        Action::AcceptTimeout => from == Dispatched && matches!(to, Dispatched | Queued | Ruling),
        Action::Resolve => from == Accepted && to == Resolved,
        Action::TakeOnSpot => from == Registered && to == Accepted,
        Action::Pass => from == Resolved && to == Verified,
        Action::Fail => from == Resolved && to == Reopened,
        Action::Reopen => from == Verified && to == Reopened,
        Action::Close => from == Verified && to == Closed,
        Action::CloseWithParent => from == Merged && to == Closed,
        Action::ManualDispatch => {
            matches!(from, Registered | Queued | Ruling | Reopened) && to == Dispatched
        }
        _ => false,
    }
}

fn check_history(engine: &Engine, id: CaseId) {
    let c = engine.case(id).expect("every submitted case is stored");
    let first = c.history.first().expect("a first record");
    assert_eq!((first.from(), first.to()), (None, CaseState::Reported));
    for pair in c.history.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert_eq!(b.from(), Some(a.to()), "{id}: records chain");
        assert!(b.at() >= a.at(), "{id}: time runs forward");
        assert!(
            legal(a.to(), b.to(), b.action()),
            "{id}: {:?} after {:?}",
            b,
            a
        );
    }
    assert_eq!(c.history.last().unwrap().to(), c.state, "{id}");
}

#[derive(Debug, Clone)]
enum Op {
    Submit {
        place: usize,
        category: usize,
        priority: usize,
    },
    Act {
        case: usize,
        kind: usize,
        right_worker: bool,
    },
    Flush,
    Advance {
        minutes: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..1000usize, 0..100usize, 0..4usize)
            .prop_map(|(place, category, priority)| Op::Submit { place, category, priority }),
        6 => (0..1000usize, 0..KINDS, any::<bool>())
            .prop_map(|(case, kind, right_worker)| Op::Act { case, kind, right_worker }),
        2 => Just(Op::Flush),
        1 => (1..600u64).prop_map(|minutes| Op::Advance { minutes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Conservation against a model: the model knows which reports were taken, and each
    /// action's answer is predicted from the hand-written permission table and the state
    /// the case was in; every case is in exactly one state, its history legal, always.
    /// The same with new reports collected and routed by parallel dispatchers.
    #[test]
    fn conservation_against_a_model(
        ops in proptest::collection::vec(op(), 1..120),
        dispatchers in proptest::sample::select(vec![0usize, 2, 3]),
    ) {
        let (engine, clock) = engine_with(EngineConfig { dispatchers, batch: 4, ..EngineConfig::default() });
        let c = city();
        let categories = c.categories().len();
        let mut ids: Vec<CaseId> = Vec::new();
        let mut expect_target: HashMap<usize, CaseState> = HashMap::new();
        expect_target.insert(0, CaseState::Accepted);
        expect_target.insert(2, CaseState::Resolved);
        expect_target.insert(3, CaseState::Verified);
        expect_target.insert(4, CaseState::Reopened);
        expect_target.insert(5, CaseState::Closed);
        expect_target.insert(6, CaseState::Reopened);
        expect_target.insert(7, CaseState::Dispatched);
        for op in ops {
            match op {
                Op::Submit { place, category, priority } => {
                    let p = places()[place % places().len()];
                    let r = Report::new(Source::Hotline, CategoryId::from_index(category % categories).unwrap(), p, clock.now())
                        .with_priority(Priority::ALL[priority]);
                    ids.push(engine.submit(r).unwrap());
                }
                Op::Act { case, kind, right_worker } => {
                    if ids.is_empty() { continue; }
                    let id = ids[case % ids.len()];
                    // The stages move a case submitted a moment ago on their own threads:
                    // without this the model would predict from a state already gone.
                    engine.flush();
                    let before = engine.case(id).unwrap();
                    let holder = before.worker;
                    let worker = match (right_worker, holder) {
                        (true, Some(w)) => w,
                        _ => WorkerId::from_index((holder.map_or(0, |w| w.index()) + 1) % c.workers().len()).unwrap(),
                    };
                    let r = engine.execute(&command(kind, id, worker));
                    let needs_holder = kind <= 2;
                    let may = allowed(kind, before.state)
                        && (!needs_holder || holder == Some(worker))
                        && (kind != 9 || !before.suspended)
                        && (kind != 8 || before.due.is_some());
                    match &r {
                        Ok(s) => {
                            prop_assert!(may, "kind {} on {:?} succeeded: {:?}", kind, before.state, s);
                            if let Some(t) = expect_target.get(&kind) {
                                prop_assert_eq!(*s, *t);
                            }
                        }
                        Err(e) => {
                            prop_assert_eq!(&engine.case(id).unwrap(), &before, "refused ({}) yet changed", e);
                            let routing = matches!(e, LifecycleError::Routing { .. });
                            prop_assert!(!may || routing, "kind {} on {:?} refused: {}", kind, before.state, e);
                        }
                    }
                }
                Op::Flush => {
                    engine.flush();
                    let s = engine.snapshot();
                    prop_assert_eq!(s.cases, ids.len() as u64);
                    prop_assert_eq!(s.by_state.values().sum::<u64>(), ids.len() as u64);
                }
                Op::Advance { minutes } => {
                    engine.flush();
                    clock.advance(Duration::from_secs(minutes * 60));
                    engine.tick();
                }
            }
        }
        let s = engine.shutdown();
        prop_assert_eq!(s.by_state.values().sum::<u64>(), ids.len() as u64);
        prop_assert_eq!(s.by_state["reported"], 0);
        for &id in &ids {
            check_history(&engine, id);
        }
        // Loads: what the router counts is what the cases say.
        let mut load = vec![0u32; c.workers().len()];
        for &id in &ids {
            let k = engine.case(id).unwrap();
            if matches!(k.state, CaseState::Dispatched | CaseState::Accepted) {
                load[k.worker.unwrap().index()] += 1;
            }
        }
        for (w, &n) in load.iter().enumerate() {
            prop_assert_eq!(engine.router().worker_state(WorkerId::from_index(w).unwrap()).unwrap().load, n);
        }
    }
}

#[test]
fn threads_submitting_and_handling_at_once_lose_nothing() {
    threads_lose_nothing(EngineConfig::default());
}

#[test]
fn threads_and_parallel_dispatchers_lose_nothing() {
    threads_lose_nothing(EngineConfig {
        dispatchers: 3,
        batch: 16,
        ..EngineConfig::default()
    });
}

/// Whatever is submitted before a flush has been through collect and assign when the
/// flush returns, however many dispatchers share the batches and however many threads
/// submit and flush at once.
#[test]
fn a_flush_waits_for_every_dispatcher() {
    for dispatchers in [0, 1, 2, 4] {
        let (engine, clock) = engine_with(EngineConfig {
            dispatchers,
            batch: 8,
            ..EngineConfig::default()
        });
        let engine = Arc::new(engine);
        let handles: Vec<_> = (0..3)
            .map(|t| {
                let (engine, clock) = (engine.clone(), clock.clone());
                std::thread::spawn(move || {
                    for round in 0..40 {
                        let reports: Vec<Report> = (0..(t * 7 + round) % 50 + 1)
                            .map(|i| {
                                let p = places()[(t * 1000 + round * 50 + i) % places().len()];
                                Report::new(Source::Hotline, cat("ZF-01"), p, clock.now())
                            })
                            .collect();
                        let ids: Vec<CaseId> = engine
                            .submit_batch(reports)
                            .into_iter()
                            .map(|r| r.expect("taken"))
                            .collect();
                        engine.flush();
                        for id in ids {
                            let state = engine.case(id).expect("stored").state;
                            assert!(
                                !matches!(state, CaseState::Reported | CaseState::Registered),
                                "{dispatchers} dispatchers: case {id:?} still {state:?} after a flush"
                            );
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("no thread panics");
        }
        let s = engine.shutdown();
        assert_eq!(s.by_state.values().sum::<u64>(), s.cases);
        assert_eq!(engine.assigned(), s.cases, "{dispatchers} dispatchers");
    }
}

fn threads_lose_nothing(config: EngineConfig) {
    const THREADS: usize = 4;
    const PER: usize = 400;
    let (engine, _) = engine_with(config);
    let engine = Arc::new(engine);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..PER {
                    let p = places()[(t * PER + i) % places().len()];
                    let code = ["ZF-01", "ZZ-04", "ZF-02", "FW-04"][i % 4];
                    let r = Report::new(
                        Source::Hotline,
                        cat(code),
                        p,
                        Timestamp(T0 - (i as u64) * 7_200_000),
                    );
                    mine.push(engine.submit(r).unwrap());
                }
                for round in 0..400 {
                    engine.flush();
                    let mut open = 0;
                    for (k, &id) in mine.iter().enumerate() {
                        let c = engine.case(id).unwrap();
                        let w = c.worker;
                        let r = match (c.state, w) {
                            (CaseState::Dispatched, Some(w)) if (k + round) % 17 == 0 => {
                                engine.return_case(id, w)
                            }
                            (CaseState::Dispatched, Some(w)) => engine.accept(id, w),
                            (CaseState::Accepted, Some(w)) => engine.resolve(id, w),
                            (CaseState::Resolved, _) => {
                                engine.verify(id, Verifier::Center, (k + round) % 13 != 0)
                            }
                            (CaseState::Verified, _) => {
                                engine.close(id, Some(Satisfaction::Satisfied))
                            }
                            (CaseState::Ruling | CaseState::Queued, _) if round > 3 => {
                                let cell = c.cell.unwrap();
                                let w = engine
                                    .city()
                                    .workers_in(cell)
                                    .first()
                                    .copied()
                                    .unwrap_or(WorkerId::from_index(0).unwrap());
                                engine.dispatch_to(id, w, Some("center decides"))
                            }
                            _ => Ok(c.state),
                        };
                        // A queued case may be dispatched by a drain another thread's
                        // release set off after this thread read it: a refusal is right
                        // then. On a case that did not move, it is a failure.
                        if let Err(e) = r {
                            let now = engine.case(id).unwrap().state;
                            assert!(
                                now != c.state && matches!(c.state, CaseState::Queued),
                                "case {id:?} in {:?}: {e}",
                                c.state
                            );
                        }
                        if c.state.is_open() {
                            open += 1;
                        }
                    }
                    if open == 0 {
                        return mine;
                    }
                }
                panic!("thread {t}: cases still open");
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("no thread panics"));
    }
    let s = engine.shutdown();
    assert_eq!(all.len(), THREADS * PER);
    assert_eq!(s.cases, (THREADS * PER) as u64);
    assert_eq!(s.by_state.values().sum::<u64>(), s.cases);
    let finals = s.by_state["closed"] + s.by_state["rejected"] + s.by_state["referred"];
    assert_eq!(finals, s.cases, "{:?}", s.by_state);
    for &id in &all {
        check_history(&engine, id);
    }
    for w in 0..city().workers().len() {
        let st = engine
            .router()
            .worker_state(WorkerId::from_index(w).unwrap())
            .unwrap();
        assert_eq!(st.load, 0, "every slot given back");
    }
}

/// A return's reason is kept with the return's own entry in the history; a blank one is
/// refused and changes nothing.
#[test]
fn a_return_keeps_its_reason() {
    let (engine, _clock) = engine();
    let (id, worker) = dispatched(&engine, "ZF-02", 0);
    let before = engine.case(id).expect("stored");
    let blank = engine.execute(&Command::Return {
        case: id,
        worker,
        reason: Some("  ".into()),
    });
    assert!(
        matches!(blank, Err(LifecycleError::EmptyReason { .. })),
        "{blank:?}"
    );
    assert_eq!(engine.case(id).expect("stored"), before, "nothing changed");
    engine
        .execute(&Command::Return {
            case: id,
            worker,
            reason: Some("不在本人网格".into()),
        })
        .expect("returned");
    let case = engine.case(id).expect("stored");
    let at = before.history.len();
    assert_eq!(case.history[at].action(), Action::Return);
    assert_eq!(case.notes, vec![(at, "不在本人网格".to_string())]);
}
