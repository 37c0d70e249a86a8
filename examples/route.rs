//! Routes cases across a generated city while workers take, return and finish them, checks
//! every decision against the routing rules, and prints one JSON line.
//!
//! ```text
//!   generated city (cells, communities, street organs and agencies, workers) ─► Router
//!        │                                        └─ --write-city DIR: city.json, grid.geojson
//!        ├─ each round: draw cases (random place and category), each with its own CaseId
//!        │     └─ timed: Router::route for the whole round (no allocation allowed)
//!        ├─ check every decision: the holder's own forces only (community-held: a worker
//!        │     of that community; street-held: a worker of that street's organs or agencies
//!        │     on the category's platform), queue/ruling at the holder's street, role, on
//!        │     duty, within capacity, not a returner; own load model == router's load
//!        │     └─ --decisions FILE: one CSV row per decision (written untimed)
//!        └─ untimed: some cases returned (退单) and routed again, some finished (release,
//!              sometimes twice), some workers move or go off duty
//! ```
//!
//! `cargo run --release --example route -- [--cells N] [--workers M] [--cases K] [--seed S]
//!  [--write-city DIR] [--decisions FILE]`
//!
//! Prints `{"cells":..,"workers":..,"cases":..,"ns_per_decision":..,"violations":0,..}`
//! (`ns_per_decision` is the mean over rounds timed as a whole; `median_ns` and `p99_ns`
//! come from the other rounds, each decision timed alone, clock reads included) and
//! exits non-zero if any decision broke a rule or routing allocated memory. The written
//! city and decisions can be checked from outside: `.ci/route_check.py DIR/city.json
//! DIR/grid.geojson FILE` recomputes every holder from the config alone.

use clap::Parser;
use serde::Serialize;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wangge::city::MandatoryOrgan;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::rng::SplitMix64 as Rng;
use wangge::routing::DecisionRecord;
use wangge::{
    CaseId, CaseRequest, CategoryId, City, Decision, Found, Grid, Holder, Location, Outcome,
    Router, RouterConfig, RoutingError, WorkerId, WorkerStatus, WorkerUnit,
};

/// Counts allocations, so the example can show that a decision makes none.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Parser, Debug)]
#[command(about = "Route cases across a generated city and check every decision")]
struct Args {
    /// About how many grid cells the city has.
    #[arg(long, default_value_t = 50_000)]
    cells: usize,
    /// About how many workers.
    #[arg(long, default_value_t = 10_000)]
    workers: usize,
    /// How many new cases to route.
    #[arg(long, default_value_t = 200_000)]
    cases: usize,
    /// Seed of the city and the cases.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Write the generated city to DIR/city.json and DIR/grid.geojson (created if needed).
    #[arg(long, value_name = "DIR")]
    write_city: Option<PathBuf>,
    /// Write one CSV row per decision to FILE.
    #[arg(long, value_name = "FILE")]
    decisions: Option<PathBuf>,
}

#[derive(Serialize, Default)]
struct Report {
    cells: usize,
    workers: usize,
    cases: usize,
    decisions: usize,
    assigned: usize,
    assigned_community_held: usize,
    assigned_street_held: usize,
    queued: usize,
    referred: usize,
    rulings: usize,
    returns: usize,
    released: usize,
    duplicate_releases: usize,
    ns_per_decision: f64,
    median_ns: u64,
    p99_ns: u64,
    allocations_while_routing: usize,
    city_build_ms: f64,
    router_build_ms: f64,
    violations: usize,
}

/// A case a worker holds now, and everyone who returned it (our own count, not the
/// router's).
struct Open {
    req: CaseRequest,
    worker: WorkerId,
    returned_by: Vec<WorkerId>,
}

const ROUND: usize = 1024;

/// The decisions CSV, in the order of the header.
struct Decisions(csv::Writer<BufWriter<File>>);

impl Decisions {
    const HEADER: [&'static str; 8] = [
        "case", "cell", "category", "holder", "outcome", "worker", "organ", "returns",
    ];

    fn create(path: &PathBuf) -> Result<Decisions, Box<dyn Error>> {
        let mut w = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
        w.write_record(Self::HEADER)?;
        Ok(Decisions(w))
    }

    fn row(&mut self, r: &DecisionRecord) -> Result<(), Box<dyn Error>> {
        self.0.write_record([
            r.case.0.to_string().as_str(),
            &r.cell,
            &r.category,
            &r.holder,
            r.outcome.as_str(),
            r.worker.as_deref().unwrap_or(""),
            r.organ.as_deref().unwrap_or(""),
            r.returns.to_string().as_str(),
        ])?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let mut rng = Rng(args.seed);
    let started = Instant::now();
    // The generated city keeps about 86 % of its lattice after the coast is cut away.
    let side = ((args.cells as f64 / 0.86).sqrt().ceil() as usize).max(8);
    let params = CityParams {
        seed: args.seed,
        cols: side,
        rows: side,
        ..CityParams::large()
    };
    let grid = Grid::new(generate::city(&params))?;
    let config = demo_config_with_workers(&grid, args.workers)?;
    let city = Arc::new(City::new(&config, grid)?);
    let city_build_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let router = Router::new(city.clone(), RouterConfig::default())?;
    let router_build_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(dir) = &args.write_city {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("city.json"), config.to_json())?;
        std::fs::write(dir.join("grid.geojson"), city.grid().to_geojson())?;
    }
    let mut csv = match &args.decisions {
        Some(path) => Some(Decisions::create(path)?),
        None => None,
    };

    let grid = city.grid();
    let bounds = grid.bounds();
    let n_workers = city.workers().len();
    let categories = city.categories().len();
    let mut model_load = vec![0u32; n_workers];
    let mut open: Vec<Open> = Vec::new();
    let mut report = Report {
        cells: grid.len(),
        workers: n_workers,
        city_build_ms,
        router_build_ms,
        ..Report::default()
    };
    let mut next_case = 0u64;
    let mut timed_ns = 0u128;
    let mut requests: Vec<CaseRequest> = Vec::with_capacity(ROUND);
    let mut decisions: Vec<Result<Decision, RoutingError>> = Vec::with_capacity(ROUND);
    // Rounds alternate: one timed as a whole (the mean), one decision by decision.
    let mut sample_round = false;
    let mut timed_cases = 0usize;
    let mut samples: Vec<u64> = Vec::with_capacity(args.cases / 2 + ROUND);

    let mut remaining = args.cases;
    while remaining > 0 {
        let n = remaining.min(ROUND);
        remaining -= n;
        requests.clear();
        while requests.len() < n {
            let p = Location::new(
                bounds[0] + rng.unit() * (bounds[2] - bounds[0]),
                bounds[1] + rng.unit() * (bounds[3] - bounds[1]),
            )?;
            if let Some(cell) = grid.locate(p) {
                let category = CategoryId::from_index(rng.below(categories)).ok_or("category")?;
                requests.push(CaseRequest::new(CaseId(next_case), cell, category, p));
                next_case += 1;
            }
        }
        decisions.clear();
        let region = Region::new(GLOBAL);
        if sample_round {
            // Every decision timed on its own, for the median and tail (clock reads included).
            for req in &requests {
                let t = Instant::now();
                let d = router.route(req);
                let ns = t.elapsed().as_nanos() as u64;
                decisions.push(d);
                if samples.len() < samples.capacity() {
                    samples.push(ns);
                }
            }
        } else {
            let t = Instant::now();
            for req in &requests {
                decisions.push(router.route(req));
            }
            timed_ns += t.elapsed().as_nanos();
            timed_cases += n;
        }
        sample_round = !sample_round;
        report.allocations_while_routing += region.change().allocations;
        for (req, decision) in requests.iter().zip(&decisions) {
            let decision = decision.as_ref().map_err(|e| e.to_string())?;
            report.cases += 1;
            report.violations += check(&router, &city, decision, req, &[], &mut model_load);
            tally(&mut report, decision);
            if let Some(csv) = &mut csv {
                csv.row(&router.record(decision))?;
            }
            match decision.worker() {
                Some(worker) => open.push(Open {
                    req: *req,
                    worker,
                    returned_by: Vec::new(),
                }),
                // Queued or referred: another stage takes it from here.
                None => report.violations += usize::from(router.forget(req.case).is_some()),
            }
        }
        report.decisions += n;
        report.violations += load_mismatches(&router, &model_load)?;

        // Untimed: the city moves on. Some cases are returned and routed again, some
        // finished; a few workers move, go off duty or come back.
        for _ in 0..n / 8 {
            if open.is_empty() {
                break;
            }
            let k = rng.below(open.len());
            let mut case = open.swap_remove(k);
            // A return by someone who does not hold the case changes nothing.
            let stranger = WorkerId::from_index(rng.below(n_workers)).ok_or("worker")?;
            if stranger != case.worker {
                let refused = matches!(
                    router.return_case(&case.req, stranger),
                    Err(RoutingError::NotHolding { .. })
                );
                report.violations += usize::from(!refused);
            }
            if !case.returned_by.contains(&case.worker) {
                case.returned_by.push(case.worker);
            }
            let decision = router.return_case(&case.req, case.worker)?;
            model_load[case.worker.index()] -= 1;
            report.returns += 1;
            report.decisions += 1;
            report.violations += check(
                &router,
                &city,
                &decision,
                &case.req,
                &case.returned_by,
                &mut model_load,
            );
            // The router counts distinct returners itself.
            report.violations +=
                usize::from(usize::from(router.returns(case.req.case)) != case.returned_by.len());
            tally(&mut report, &decision);
            if let Some(csv) = &mut csv {
                csv.row(&router.record(&decision))?;
            }
            match decision.worker() {
                Some(worker) => {
                    case.worker = worker;
                    open.push(case);
                }
                None => report.violations += usize::from(router.forget(case.req.case).is_some()),
            }
        }
        let finish = open.len() * 3 / 4;
        for i in 0..finish {
            let k = rng.below(open.len());
            let case = open.swap_remove(k);
            report.violations += usize::from(router.release(case.req.case)? != Some(case.worker));
            model_load[case.worker.index()] -= 1;
            report.released += 1;
            // A "finished" delivered twice must not free a second slot.
            if i % 8 == 0 {
                report.violations += usize::from(router.release(case.req.case)?.is_some());
                report.duplicate_releases += 1;
            }
            report.violations += usize::from(router.forget(case.req.case).is_some());
        }
        for _ in 0..n / 16 {
            let w = WorkerId::from_index(rng.below(n_workers)).ok_or("worker")?;
            let status = match rng.below(10) {
                0 => WorkerStatus::OffDuty,
                1 => WorkerStatus::Busy,
                _ => WorkerStatus::OnDuty,
            };
            router.set_status(w, status)?;
            let p = Location::new(
                bounds[0] + rng.unit() * (bounds[2] - bounds[0]),
                bounds[1] + rng.unit() * (bounds[3] - bounds[1]),
            )?;
            router.set_position(w, p)?;
        }
    }
    report.violations += load_mismatches(&router, &model_load)?;
    if let Some(csv) = &mut csv {
        csv.0.flush()?;
    }
    report.ns_per_decision = timed_ns as f64 / timed_cases.max(1) as f64;
    samples.sort_unstable();
    let pick = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    report.median_ns = pick(0.5);
    report.p99_ns = pick(0.99);
    println!("{}", serde_json::to_string(&report)?);
    assert_eq!(report.violations, 0, "decisions broke the routing rules");
    assert_eq!(report.allocations_while_routing, 0, "routing allocated");
    assert_eq!(
        report.assigned + report.queued + report.referred + report.rulings,
        report.decisions
    );
    assert!(
        report.assigned_community_held > 0 && report.assigned_street_held > 0,
        "both the community and the street path must be exercised"
    );
    Ok(())
}

/// Workers whose load in the router differs from the open cases we count for them: a case
/// lost or counted twice.
fn load_mismatches(router: &Router, model_load: &[u32]) -> Result<usize, Box<dyn Error>> {
    let mut bad = 0;
    for (w, &load) in model_load.iter().enumerate() {
        let id = WorkerId::from_index(w).ok_or("worker")?;
        bad += usize::from(router.worker_state(id)?.load != load);
    }
    Ok(bad)
}

fn tally(report: &mut Report, d: &Decision) {
    match d.outcome {
        Outcome::Assigned { .. } => {
            report.assigned += 1;
            match d.trace.admission.holder {
                Holder::Community(_) => report.assigned_community_held += 1,
                _ => report.assigned_street_held += 1,
            }
        }
        Outcome::Queued { .. } => report.queued += 1,
        Outcome::Referred { .. } => report.referred += 1,
        Outcome::Ruling { .. } => report.rulings += 1,
    }
}

/// Violations in one decision. The holder comes from the city's duty lists, not from the
/// decision; an assigned worker must belong to it (community-held: a worker of that
/// community; street-held: a worker of that street office whose organ or agency serves the
/// category's platform), hold a role of the category, be on duty, not be a returner and
/// stay within capacity; a queue or ruling must sit at the holder's street office. Counts
/// the case in our own load model.
fn check(
    router: &Router,
    city: &City,
    decision: &Decision,
    req: &CaseRequest,
    returned_by: &[WorkerId],
    model_load: &mut [u32],
) -> usize {
    let (Ok(admission), Some(cat)) = (
        city.admit(req.cell, req.category),
        city.category(req.category),
    ) else {
        return 1;
    };
    let mut bad = usize::from(decision.case != req.case || decision.cell != req.cell);
    bad += usize::from(decision.trace.admission != admission);
    // Support is off: nothing crosses a border.
    bad += usize::from(matches!(decision.trace.found, Found::Support(_)));
    let street = match admission.holder {
        Holder::Community(c) => city.unit(c).and_then(|u| u.parent),
        Holder::Street { street, .. } => Some(street),
        Holder::Department(_) => None,
    };
    let organ_street = |o| city.organ(o).map(|o| o.street);
    match decision.outcome {
        Outcome::Assigned { worker: w } => {
            let (Some(worker), Ok(state)) = (city.worker(w), router.worker_state(w)) else {
                return bad + 1;
            };
            model_load[w.index()] += 1;
            let belongs = match (admission.holder, worker.unit) {
                (Holder::Community(c), WorkerUnit::Community(u)) => u == c,
                (Holder::Street { street, .. }, WorkerUnit::Organ(o)) => city
                    .organ(o)
                    .is_some_and(|o| o.street == street && o.platform == Some(cat.platform)),
                (Holder::Street { street, .. }, WorkerUnit::Agency(a)) => city
                    .agency(a)
                    .is_some_and(|a| a.street == street && a.platform == Some(cat.platform)),
                _ => false,
            };
            bad += usize::from(!belongs);
            bad += usize::from(Some(worker.street) != street);
            bad += usize::from(!worker.roles.intersects(cat.roles));
            bad += usize::from(returned_by.contains(&w));
            bad += usize::from(state.status != WorkerStatus::OnDuty);
            bad += usize::from(state.load > state.capacity);
        }
        Outcome::Queued { organ } => {
            bad += usize::from(street.is_none() || organ_street(organ) != street);
        }
        Outcome::Ruling { organ } => {
            bad += usize::from(street.is_none() || organ_street(organ) != street);
            bad += usize::from(
                city.organ(organ).and_then(|o| o.mandatory)
                    != Some(MandatoryOrgan::GovernanceCenter),
            );
            bad += usize::from(returned_by.len() < usize::from(router.config().max_returns));
        }
        Outcome::Referred { department } => {
            bad += usize::from(admission.holder != Holder::Department(department));
        }
    }
    bad
}
