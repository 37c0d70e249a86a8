//! The city model: admission (the first step of every assignment) and building the demo
//! city from its config.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wangge::{CategoryId, CellId, City};

/// Pairs looked up per iteration, spread over cells and categories by a fixed stride.
const PAIRS: usize = 4096;

fn admission(c: &mut Criterion) {
    let city = wangge::demo::demo_city();
    let cells = city.grid().len();
    let cats = city.categories().len();
    let pairs: Vec<(CellId, CategoryId)> = (0..PAIRS)
        .map(|i| {
            (
                CellId::from_index(i * 7919 % cells).unwrap(),
                CategoryId::from_index(i * 31 % cats).unwrap(),
            )
        })
        .collect();
    c.bench_function("admit 4096 pairs", |b| {
        b.iter(|| {
            let mut referred = 0usize;
            for &(cell, k) in &pairs {
                referred += city.admit(cell, k).map_or(0, |a| a.is_referral() as usize);
            }
            black_box(referred)
        })
    });
    c.bench_function("chain + platform organ", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for &(cell, k) in &pairs {
                let chain = city.chain(cell).unwrap();
                let platform = city.category(k).unwrap().platform;
                sum += city.platform_organ(chain.street, platform).unwrap().index();
            }
            black_box(sum)
        })
    });
}

fn build(c: &mut Criterion) {
    let grid = std::sync::Arc::new(wangge::demo::demo_city_grid());
    let config = wangge::demo::demo_config_for(&grid).unwrap();
    c.bench_function("City::new demo", |b| {
        b.iter(|| City::new(black_box(&config), grid.clone()).unwrap())
    });
}

criterion_group!(benches, admission, build);
criterion_main!(benches);
