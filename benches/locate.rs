//! Point-to-cell lookup: ns per point of every path, on lattices, an irregular grid and a
//! realistic city.
//!
//! ```text
//!   grid ──┬─ locate_many   (bucket table, batched)        ◄─ the fast path
//!          ├─ locate        (bucket table, one point)
//!          ├─ locate_rtree  (R-tree of envelopes + exact test)
//!          ├─ rstar + geo   (plain RTree<GeomWithData<Rectangle>> + geo Intersects)
//!          └─ brute force   (every cell in order; small grids only)
//! ```
//!
//! Points are uniform in the grid's bounding box, seeded: a pool of about a million per
//! grid, walked a batch per iteration so caches are as cold as with live reports. Each
//! benchmark reports a rate per point (`Throughput::Elements`).

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use geo::{Coord, Intersects, LineString, MultiPolygon, Point};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use std::hint::black_box;
use std::time::Duration;
use wangge::generate::{self, CityParams};
use wangge::{Cell, CellId, Grid, Location};

/// Side of the small lattice (10k squares).
const SMALL_SIDE: usize = 100;
/// Side of the large lattice (about 100k squares).
const LARGE_SIDE: usize = 317;
/// Side of the irregular grid (4,096 cells of 20-40 vertices).
const IRREGULAR_SIDE: usize = 64;
/// Points per batch (and per iteration of the single-point paths).
const BATCH: usize = 4096;
/// Points drawn per grid; iterations walk through them batch by batch, so that the
/// lookups meet cold caches as they would with live reports, not the same warm batch.
const POOL: usize = 1 << 20;
/// Points per iteration of the linear scan.
const BRUTE_POINTS: usize = 64;
const SEED: u64 = 0x5EED_0001;

type Envelope = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// The textbook path: candidates from an rstar tree of envelopes, then geo `intersects`
/// (boundary included) on each, keeping the first cell in input order.
struct RstarGeo {
    tree: RTree<Envelope>,
    shapes: Vec<MultiPolygon<f64>>,
}

impl RstarGeo {
    fn new(grid: &Grid) -> RstarGeo {
        let envelopes = grid
            .ids()
            .map(|id| {
                let b = grid.cell_bounds(id).unwrap();
                GeomWithData::new(
                    Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]),
                    id.index() as u32,
                )
            })
            .collect();
        let shapes = grid.cells().iter().map(to_geo).collect();
        RstarGeo {
            tree: RTree::bulk_load(envelopes),
            shapes,
        }
    }

    fn locate(&self, p: [f64; 2]) -> Option<u32> {
        let point = Point::new(p[0], p[1]);
        self.tree
            .locate_all_at_point(p)
            .map(|e| e.data)
            .filter(|&c| self.shapes[c as usize].intersects(&point))
            .min()
    }
}

fn to_geo(cell: &Cell) -> MultiPolygon<f64> {
    let ring = |r: &Vec<[f64; 2]>| LineString(r.iter().map(|&[x, y]| Coord { x, y }).collect());
    MultiPolygon(
        cell.polygons
            .iter()
            .map(|p| geo::Polygon::new(ring(&p.exterior), p.holes.iter().map(ring).collect()))
            .collect(),
    )
}

/// Uniform points in the grid's bounding box (xorshift, seeded).
fn uniform(grid: &Grid, n: usize, mut seed: u64) -> Vec<Location> {
    let [x0, y0, x1, y1] = grid.bounds();
    let mut unit = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| Location::new(x0 + unit() * (x1 - x0), y0 + unit() * (y1 - y0)).unwrap())
        .collect()
}

/// Consecutive batches of a point pool, wrapping around.
struct Walk<'a> {
    pool: &'a [Location],
    at: usize,
}

impl<'a> Walk<'a> {
    fn next(&mut self) -> &'a [Location] {
        let batch = &self.pool[self.at..self.at + BATCH];
        self.at = (self.at + BATCH) % self.pool.len();
        batch
    }
}

fn bench_grid(c: &mut Criterion, name: &str, grid: &Grid, brute: bool) {
    let pool = uniform(grid, POOL, SEED);
    let reference = RstarGeo::new(grid);
    // The paths are compared only if they give the same answers.
    for &p in &pool[..BATCH] {
        let want = grid.locate_brute_force(p);
        assert_eq!(grid.locate(p), want);
        assert_eq!(
            reference.locate([p.lon(), p.lat()]),
            want.map(|id| id.index() as u32)
        );
    }
    let mut walk = Walk { pool: &pool, at: 0 };
    let mut group: BenchmarkGroup<'_, _> = c.benchmark_group(format!("locate/{name}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(3));
    let mut out: Vec<Option<CellId>> = Vec::with_capacity(BATCH);
    group.bench_function("locate_many", |b| {
        b.iter(|| {
            grid.locate_many(black_box(walk.next()), &mut out);
            black_box(&out);
        })
    });
    group.bench_function("locate", |b| {
        b.iter(|| {
            for &p in walk.next() {
                black_box(grid.locate(black_box(p)));
            }
        })
    });
    group.bench_function("locate_rtree", |b| {
        b.iter(|| {
            for &p in walk.next() {
                black_box(grid.locate_rtree(black_box(p)));
            }
        })
    });
    group.bench_function("rstar_geo", |b| {
        b.iter(|| {
            for &p in walk.next() {
                black_box(reference.locate(black_box([p.lon(), p.lat()])));
            }
        })
    });
    if brute {
        group.throughput(Throughput::Elements(BRUTE_POINTS as u64));
        group.sample_size(10);
        group.bench_function("brute_force", |b| {
            b.iter(|| {
                for &p in &walk.next()[..BRUTE_POINTS] {
                    black_box(grid.locate_brute_force(black_box(p)));
                }
            })
        });
    }
    group.finish();
}

fn lattices(c: &mut Criterion) {
    for (name, side, brute) in [
        ("lattice_10k", SMALL_SIDE, true),
        ("lattice_100k", LARGE_SIDE, false),
    ] {
        let grid = Grid::new(generate::lattice([120.0, 36.0], side, side, [0.005, 0.004])).unwrap();
        bench_grid(c, name, &grid, brute);
    }
}

fn irregular(c: &mut Criterion) {
    let grid = Grid::new(generate::irregular(
        IRREGULAR_SIDE,
        IRREGULAR_SIDE,
        SEED,
        [120.0, 36.0],
        [0.005, 0.004],
    ))
    .unwrap();
    bench_grid(c, "irregular_4k", &grid, true);
}

fn city(c: &mut Criterion) {
    let grid = Grid::new(generate::city(&CityParams::large())).unwrap();
    bench_grid(c, "city_50k", &grid, false);
}

criterion_group!(benches, lattices, irregular, city);
criterion_main!(benches);
