//! The engine: time per case from submission to dispatch, and through the whole
//! lifecycle, on a generated city of about 10,000 cells and 2,000 workers.
//!
//! ```text
//!   pre-drawn reports ─► submit_batch ─► collect ─► assign ─► flush      (dispatch; the
//!                                    batch before is handled to the end, untimed)
//!                      ─► 2 parallel dispatchers (collect + route) ─► flush
//!                                                   (the same, `dispatchers: 2`)
//!   ... then briefs ─► execute_batch [accept, resolve, verify, close]     (lifecycle)
//! ```
//!
//! Each iteration takes one batch of reports; `Throughput::Elements` gives cases per
//! second. Every case stays in the engine's store, as it would in service.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::Duration;
use wangge::config::MAX_CAPACITY;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::pipeline::{CaseBrief, Reporter};
use wangge::rng::SplitMix64 as Rng;
use wangge::{
    CaseState, CategoryId, City, Command, Engine, EngineConfig, Grid, LifecycleError, Location,
    Report, SimClock, Source, Timestamp, Verifier, WorkerId,
};

/// Cells of the generated city (about).
const CELLS: usize = 10_000;
/// Workers.
const WORKERS: usize = 2_000;
/// Reports per iteration: sixteen store segments, so that parallel dispatchers share it.
const BATCH: usize = 16_384;
const T0: u64 = 1_764_460_800_000;
const SEED: u64 = 0x5EED_A551;

fn city() -> Arc<City> {
    let side = ((CELLS as f64 / 0.86).sqrt().ceil() as usize).max(8);
    let params = CityParams {
        seed: 7,
        cols: side,
        rows: side,
        ..CityParams::large()
    };
    let grid = Grid::new(generate::city(&params)).unwrap();
    let config = demo_config_with_workers(&grid, WORKERS).unwrap();
    Arc::new(City::new(&config, grid).unwrap())
}

fn engine(city: &Arc<City>, dispatchers: usize) -> Engine {
    let engine = Engine::builder(city.clone())
        .clock(SimClock::new(Timestamp(T0)))
        .config(EngineConfig {
            dispatchers,
            ..EngineConfig::default()
        })
        .build()
        .unwrap();
    for w in 0..city.workers().len() {
        engine
            .router()
            .set_capacity(WorkerId::from_index(w).unwrap(), MAX_CAPACITY)
            .unwrap();
    }
    engine
}

fn reports(city: &City, rng: &mut Rng) -> Vec<Report> {
    let [x0, y0, x1, y1] = city.grid().bounds();
    (0..BATCH)
        .map(|_| {
            let p =
                Location::new(x0 + rng.unit() * (x1 - x0), y0 + rng.unit() * (y1 - y0)).unwrap();
            let k = (rng.next_u64() % city.categories().len() as u64) as usize;
            Report::new(
                Source::Hotline,
                CategoryId::from_index(k).unwrap(),
                p,
                Timestamp(T0),
            )
            .with_reporter(Reporter::Citizen(1))
        })
        .collect()
}

fn handle(engine: &Engine, first: u64, scratch: &mut (Vec<CaseBrief>, Vec<Command>)) {
    let (briefs, commands) = scratch;
    briefs.clear();
    commands.clear();
    engine.briefs(first..engine.submitted(), briefs);
    for b in briefs.iter() {
        if let (CaseState::Dispatched, Some(worker)) = (b.state, b.worker) {
            let case = b.id;
            commands.push(Command::Accept { case, worker });
            commands.push(Command::Resolve { case, worker });
            commands.push(Command::Verify {
                case,
                by: Verifier::Center,
                passed: true,
            });
            commands.push(Command::Close {
                case,
                satisfaction: None,
            });
        }
    }
    let mut results: Vec<Result<CaseState, LifecycleError>> =
        vec![Ok(CaseState::Reported); commands.len()];
    engine.execute_batch(commands, &mut results);
}

fn pipeline(c: &mut Criterion) {
    let city = city();
    let mut rng = Rng(SEED);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.measurement_time(Duration::from_secs(5));
    g.sample_size(20);
    let mut scratch = (Vec::new(), Vec::new());
    for (name, dispatchers) in [
        ("submit_to_dispatched", 0),
        ("submit_to_dispatched_2_dispatchers", 2),
    ] {
        let e = engine(&city, dispatchers);
        let mut last = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                // Untimed: the previous batch is handled to the end, so loads stay steady.
                || {
                    handle(&e, last, &mut scratch);
                    last = e.submitted();
                    reports(&city, &mut rng)
                },
                |batch| {
                    e.submit_batch(batch);
                    e.flush();
                },
                BatchSize::LargeInput,
            )
        });
    }
    let e = engine(&city, 0);
    g.bench_function("whole_lifecycle", |b| {
        b.iter_batched(
            || reports(&city, &mut rng),
            |batch| {
                let first = e.submitted();
                e.submit_batch(batch);
                e.flush();
                handle(&e, first, &mut scratch);
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
