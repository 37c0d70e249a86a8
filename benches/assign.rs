//! The routing core: time per routing decision on the demo city and on a large generated
//! city (about 50,000 cells and 10,000 workers), in three states.
//!
//! ```text
//!   pre-drawn cases (cell, category, place), each a new CaseId
//!     route_release:   Router::route ─► release at once (loads stay near zero: most
//!                      decisions end in the case's own cell, the best case)
//!     route_with_position_updates: the same, each decision after a worker moves
//!     busy:            Router::route ─► FIFO of open cases (BUSY_FILL of the workers'
//!                      total capacity) ─► the oldest released; workers sit near capacity,
//!                      so decisions search rings, whole communities and street forces,
//!                      pass over full workers and queue
//! ```
//!
//! Each iteration routes one batch; `Throughput::Elements` gives decisions per second.
//! Before the busy measurement, the outcomes of one pool's worth of busy decisions are
//! printed (where workers were found), so the state measured is visible.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::rng::SplitMix64 as Rng;
use wangge::{
    CaseId, CaseRequest, CategoryId, CellId, City, Decision, Found, Grid, Location, Outcome,
    Router, RouterConfig, WorkerId,
};

/// Workers in the large city.
const LARGE_WORKERS: usize = 10_000;
/// Decisions per iteration.
const BATCH: usize = 1024;
/// Cases drawn per city; iterations walk through them.
const POOL: usize = 1 << 16;
/// Open cases in the busy state, as a share of the workers' total capacity.
const BUSY_FILL: f64 = 0.75;
const SEED: u64 = 0x5EED_A551;

/// Uniform places in the grid (those outside it redrawn), random categories.
fn cases(city: &City, n: usize) -> Vec<(CellId, CategoryId, Location)> {
    let mut rng = Rng(SEED);
    let [x0, y0, x1, y1] = city.grid().bounds();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = Location::new(x0 + rng.unit() * (x1 - x0), y0 + rng.unit() * (y1 - y0)).unwrap();
        if let Some(cell) = city.grid().locate(p) {
            let k = (rng.next_u64() % city.categories().len() as u64) as usize;
            out.push((cell, CategoryId::from_index(k).unwrap(), p));
        }
    }
    out
}

/// Walks the pool, giving every case a new id.
struct Cases {
    pool: Vec<(CellId, CategoryId, Location)>,
    at: usize,
    next_id: u64,
}

impl Cases {
    fn next(&mut self) -> CaseRequest {
        let (cell, category, location) = self.pool[self.at];
        self.at = (self.at + 1) % self.pool.len();
        self.next_id += 1;
        CaseRequest::new(CaseId(self.next_id), cell, category, location)
    }
}

/// Routes `BATCH` cases (each after `before` runs with its place) and releases each at once.
fn route_release(router: &Router, cases: &mut Cases, mut before: impl FnMut(Location)) {
    for _ in 0..BATCH {
        let req = cases.next();
        before(req.location);
        let d = router.route(black_box(&req)).unwrap();
        if d.worker().is_some() {
            router.release(req.case).unwrap();
        }
        black_box(d);
    }
}

/// The busy state: every assigned case stays open until `open` is full, then the oldest is
/// released. Queued and referred cases hold nobody, so there is nothing to release.
struct Busy {
    open: VecDeque<CaseId>,
    len: usize,
}

impl Busy {
    fn step(&mut self, router: &Router, req: &CaseRequest) -> Decision {
        let d = router.route(black_box(req)).unwrap();
        if d.worker().is_some() {
            self.open.push_back(req.case);
            if self.open.len() > self.len {
                let oldest = self.open.pop_front().unwrap();
                router.release(oldest).unwrap();
            }
        }
        d
    }
}

fn bench_city(c: &mut Criterion, name: &str, city: Arc<City>) {
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let mut cases = Cases {
        pool: cases(&city, POOL),
        at: 0,
        next_id: 0,
    };
    let workers = city.workers().len();
    let mut group = c.benchmark_group(format!("assign/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("route_release", |b| {
        b.iter(|| route_release(&router, &mut cases, |_| {}))
    });
    let mut rng = Rng(SEED ^ 1);
    group.bench_function("route_with_position_updates", |b| {
        b.iter(|| {
            route_release(&router, &mut cases, |location| {
                let w = WorkerId::from_index((rng.next_u64() % workers as u64) as usize).unwrap();
                router.set_position(w, location).unwrap();
            })
        })
    });

    let capacity: usize = city.workers().iter().map(|w| w.capacity as usize).sum();
    let len = (capacity as f64 * BUSY_FILL) as usize;
    let mut busy = Busy {
        open: VecDeque::with_capacity(len + 1),
        len,
    };
    // Fill up to the steady state, then show where one pool's worth of decisions end.
    while busy.open.len() < len {
        let req = cases.next();
        busy.step(&router, &req);
    }
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..POOL {
        let req = cases.next();
        let d = busy.step(&router, &req);
        let key = match (d.outcome, d.trace.found) {
            (Outcome::Assigned { .. }, Found::Ring(_)) => "ring".to_string(),
            (Outcome::Assigned { .. }, f) => format!("{f:?}").to_lowercase(),
            (o, _) => format!("{:?}", o.kind()).to_lowercase(),
        };
        *found.entry(key).or_default() += 1;
    }
    let loaded: u32 = (0..workers)
        .map(|w| {
            router
                .worker_state(WorkerId::from_index(w).unwrap())
                .unwrap()
                .load
        })
        .sum();
    eprintln!(
        "assign/{name}/busy: {} open cases of {capacity} capacity ({loaded} held); \
         outcomes of {POOL} decisions: {found:?}",
        busy.open.len()
    );
    group.bench_function("busy", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let req = cases.next();
                black_box(busy.step(&router, &req));
            }
        })
    });
    group.finish();
}

fn demo(c: &mut Criterion) {
    bench_city(c, "demo_city", Arc::new(wangge::demo::demo_city()));
}

fn large(c: &mut Criterion) {
    let grid = Grid::new(generate::city(&CityParams::large())).unwrap();
    let config = demo_config_with_workers(&grid, LARGE_WORKERS).unwrap();
    bench_city(c, "city_50k", Arc::new(City::new(&config, grid).unwrap()));
}

criterion_group!(benches, demo, large);
criterion_main!(benches);
