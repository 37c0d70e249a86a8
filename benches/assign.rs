//! The routing core: time per routing decision on the demo city and on a large generated
//! city (about 50,000 cells and 10,000 workers), with and without interleaved position
//! updates.
//!
//! ```text
//!   pre-drawn cases (cell, category, place) ─► Router::route ─► release the worker
//!                                               (steady state: loads stay low)
//!   + variant: every decision follows a worker position update
//! ```
//!
//! Each iteration routes one batch; `Throughput::Elements` gives decisions per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::{
    CaseId, CaseRequest, CategoryId, CellId, City, Grid, Location, Router, RouterConfig, WorkerId,
};

/// Workers in the large city.
const LARGE_WORKERS: usize = 10_000;
/// Decisions per iteration.
const BATCH: usize = 1024;
/// Cases drawn per city; iterations walk through them.
const POOL: usize = 1 << 16;
const SEED: u64 = 0x5EED_A551;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Uniform places in the grid (those outside it redrawn), random categories.
fn cases(city: &City, n: usize) -> Vec<(CellId, CategoryId, Location)> {
    let mut rng = Rng(SEED);
    let [x0, y0, x1, y1] = city.grid().bounds();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = Location::new(x0 + rng.unit() * (x1 - x0), y0 + rng.unit() * (y1 - y0)).unwrap();
        if let Some(cell) = city.grid().locate(p) {
            let k = (rng.next() % city.categories().len() as u64) as usize;
            out.push((cell, CategoryId::from_index(k).unwrap(), p));
        }
    }
    out
}

/// Routes each case of `batch` (after `before` runs with its place) and releases the
/// worker, so loads stay in a steady state.
fn route_batch(
    router: &Router,
    batch: &[(CellId, CategoryId, Location)],
    mut before: impl FnMut(Location),
) {
    for (k, &(cell, category, location)) in batch.iter().enumerate() {
        before(location);
        let case = CaseId(k as u64);
        let d = router
            .route(black_box(&CaseRequest::new(case, cell, category, location)))
            .unwrap();
        if d.worker().is_some() {
            router.release(case).unwrap();
        }
        black_box(d);
    }
}

fn bench_city(c: &mut Criterion, name: &str, city: Arc<City>) {
    let router = Router::new(city.clone(), RouterConfig::default()).unwrap();
    let pool = cases(&city, POOL);
    let workers = city.workers().len();
    let mut group = c.benchmark_group(format!("assign/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(4));
    let mut at = 0;
    group.bench_function("route", |b| {
        b.iter(|| {
            route_batch(&router, &pool[at..at + BATCH], |_| {});
            at = (at + BATCH) % POOL;
        })
    });
    let mut rng = Rng(SEED ^ 1);
    group.bench_function("route_with_position_updates", |b| {
        b.iter(|| {
            route_batch(&router, &pool[at..at + BATCH], |location| {
                let w = WorkerId::from_index((rng.next() % workers as u64) as usize).unwrap();
                router.set_position(w, location).unwrap();
            });
            at = (at + BATCH) % POOL;
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
