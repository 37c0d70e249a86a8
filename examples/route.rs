//! Routes cases across a generated city while workers take, return and finish them, checks
//! every decision against the routing constraints, and prints one JSON line.
//!
//! ```text
//!   generated city (cells, workers) ─► Router
//!        │
//!        ├─ each round: draw cases (random place and category)
//!        │     └─ timed: Router::route for the whole round
//!        ├─ check every decision: role, on duty, within capacity, not a returner,
//!        │     own load model == router's load for every worker
//!        └─ untimed: some cases returned (退单) and re-routed, some finished
//!              (release), some workers move or go off duty
//! ```
//!
//! `cargo run --release --example route -- [--cells N] [--workers M] [--cases K] [--seed S]`
//!
//! Prints `{"cells":..,"workers":..,"cases":..,"ns_per_decision":..,"violations":0,..}`
//! (`ns_per_decision` is the mean over rounds timed as a whole; `median_ns` and `p99_ns`
//! come from the other rounds, each decision timed alone, clock reads included) and
//! exits non-zero if any decision broke a constraint or routing allocated memory.

use clap::Parser;
use serde::Serialize;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::{
    CaseId, CaseRequest, CategoryId, City, Grid, Location, Outcome, Router, RouterConfig, WorkerId,
    WorkerStatus,
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
}

#[derive(Serialize, Default)]
struct Report {
    cells: usize,
    workers: usize,
    cases: usize,
    decisions: usize,
    assigned: usize,
    queued: usize,
    referred: usize,
    rulings: usize,
    returns: usize,
    released: usize,
    ns_per_decision: f64,
    median_ns: u64,
    p99_ns: u64,
    allocations_while_routing: usize,
    city_build_ms: f64,
    router_build_ms: f64,
    violations: usize,
}

/// SplitMix64: the cases are the same for a seed on every machine.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A case still open: its place, category and the workers who returned it.
struct Open {
    case: CaseId,
    worker: WorkerId,
    cell: wangge::CellId,
    category: CategoryId,
    location: Location,
    returned_by: Vec<WorkerId>,
}

const ROUND: usize = 1024;

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
    let mut timed_ns = 0u128;
    let mut requests: Vec<(CaseId, wangge::CellId, CategoryId, Location)> =
        Vec::with_capacity(ROUND);
    let mut next_case = 0u64;
    let mut decisions = Vec::with_capacity(ROUND);
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
                next_case += 1;
                requests.push((CaseId(next_case), cell, category, p));
            }
        }
        decisions.clear();
        let region = Region::new(GLOBAL);
        if sample_round {
            // Every decision timed on its own, for the median and tail (clock reads included).
            for &(case, cell, category, location) in &requests {
                let t = Instant::now();
                let d = router.route(&CaseRequest::new(case, cell, category, location));
                let ns = t.elapsed().as_nanos() as u64;
                decisions.push(d);
                if samples.len() < samples.capacity() {
                    samples.push(ns);
                }
            }
        } else {
            let t = Instant::now();
            for &(case, cell, category, location) in &requests {
                decisions.push(router.route(&CaseRequest::new(case, cell, category, location)));
            }
            timed_ns += t.elapsed().as_nanos();
            timed_cases += n;
        }
        sample_round = !sample_round;
        report.allocations_while_routing += region.change().allocations;
        for (&(case, cell, category, location), decision) in requests.iter().zip(&decisions) {
            let decision = decision.as_ref().map_err(|e| e.to_string())?;
            report.cases += 1;
            report.violations += check(&router, &city, decision, category, &[], &mut model_load);
            tally(&mut report, decision.outcome);
            if let Some(worker) = decision.worker() {
                open.push(Open {
                    case,
                    worker,
                    cell,
                    category,
                    location,
                    returned_by: Vec::new(),
                });
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
            case.returned_by.push(case.worker);
            let req = CaseRequest::new(case.case, case.cell, case.category, case.location);
            let decision = router.return_case(&req, case.worker)?;
            model_load[case.worker.index()] -= 1;
            report.returns += 1;
            report.decisions += 1;
            report.violations += check(
                &router,
                &city,
                &decision,
                case.category,
                &case.returned_by,
                &mut model_load,
            );
            tally(&mut report, decision.outcome);
            if let Some(worker) = decision.worker() {
                case.worker = worker;
                open.push(case);
            }
        }
        let finish = open.len() * 3 / 4;
        for _ in 0..finish {
            let k = rng.below(open.len());
            let case = open.swap_remove(k);
            router.release(case.case)?;
            router.forget(case.case);
            model_load[case.worker.index()] -= 1;
            report.released += 1;
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
    assert_eq!(
        report.violations, 0,
        "decisions broke the routing constraints"
    );
    assert_eq!(report.allocations_while_routing, 0, "routing allocated");
    assert_eq!(
        report.assigned + report.queued + report.referred + report.rulings,
        report.decisions
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

fn tally(report: &mut Report, outcome: Outcome) {
    match outcome {
        Outcome::Assigned { .. } => report.assigned += 1,
        Outcome::Queued { .. } => report.queued += 1,
        Outcome::Referred { .. } => report.referred += 1,
        Outcome::Ruling { .. } => report.rulings += 1,
    }
}

/// Violations in one decision: the worker must hold a role of the category, be on duty,
/// not be a returner, and stay within capacity. Counts the case in our own load model.
fn check(
    router: &Router,
    city: &City,
    decision: &wangge::Decision,
    category: CategoryId,
    returned_by: &[WorkerId],
    model_load: &mut [u32],
) -> usize {
    let Some(w) = decision.worker() else { return 0 };
    let mut bad = 0;
    let (Some(worker), Some(cat), Ok(state)) = (
        city.worker(w),
        city.category(category),
        router.worker_state(w),
    ) else {
        return 1;
    };
    model_load[w.index()] += 1;
    bad += usize::from(!worker.roles.intersects(cat.roles));
    bad += usize::from(returned_by.contains(&w));
    bad += usize::from(state.status != WorkerStatus::OnDuty);
    bad += usize::from(state.load > state.capacity);
    bad
}
