//! Locates every point of a CSV file in a grid and prints one answer per row.
//!
//! ```text
//!   GRID.geojson ──► Grid::from_geojson ──► bucket table (+ R-tree for comparison)
//!                                                 │
//!   POINTS.csv ──► pid, lon, lat ──► Location ──► locate_many ──► stdout: pid,cell,status
//!   (any column order,      │ does not parse / out of range            ok       name
//!    extra columns ignored) └──────────────────────────────────────►  outside  (empty)
//!                                                                      invalid  (empty)
//! ```
//!
//! `cargo run --release --example locate -- GRID.geojson POINTS.csv [--repeat N]`
//!
//! Rows are read, located and written in chunks, so files with very many rows stream
//! through. `--repeat N` then locates the whole batch N more times without printing and
//! reports on stderr the index build time, the index memory and the time per point of the
//! batch path (`locate_many`), of single `locate` calls and of the R-tree path
//! (`locate_rtree`); all three must agree. Without arguments the example checks itself on
//! the built-in demo grid: every answer of every path equals `locate_brute_force`.

use clap::Parser;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::error::Error;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wangge::{CellId, Grid, Location, generate};

#[derive(Debug, Parser)]
#[command(about = "Locate the points of a CSV file (pid, lon, lat) in a GeoJSON grid")]
struct Args {
    /// The grid: a GeoJSON FeatureCollection of cells with an `id` property.
    grid: Option<PathBuf>,
    /// The points: CSV with a header and at least the columns pid, lon, lat.
    points: Option<PathBuf>,
    /// After printing, locate the whole batch N more times and report timings on stderr.
    #[arg(long)]
    repeat: Option<u32>,
}

/// An error message that `main` prints as is (its `Debug` shows no quotes).
struct Failure(String);

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Failure {}

fn fail(message: impl Into<String>) -> Box<dyn Error> {
    Box::new(Failure(message.into()))
}

/// Counts allocations, so the report can say how much memory the grid holds in all.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Rows located and written per chunk.
const CHUNK: usize = 1 << 16;

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    match (&args.grid, &args.points) {
        (Some(grid), Some(points)) => run(grid, points, args.repeat),
        (None, None) => self_check(),
        _ => Err(fail(
            "give both GRID.geojson and POINTS.csv, or neither for the built-in demo",
        )),
    }
}

fn run(grid_path: &Path, points_path: &Path, repeat: Option<u32>) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(grid_path)
        .map_err(|e| fail(format!("cannot read grid {}: {e}", grid_path.display())))?;
    let region = Region::new(GLOBAL);
    let grid = Grid::from_geojson(&text)
        .map_err(|e| fail(format!("bad grid {}: {e}", grid_path.display())))?;
    // What the parse allocated and did not free: everything the grid holds (a
    // reallocation is in `bytes_allocated` or `bytes_deallocated` already).
    let change = region.change();
    let held = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    drop(text);

    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(points_path)
        .map_err(|e| fail(format!("cannot read points {}: {e}", points_path.display())))?;
    let header = reader
        .byte_headers()
        .map_err(|e| {
            fail(format!(
                "cannot read the header of {}: {e}",
                points_path.display()
            ))
        })?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| String::from_utf8_lossy(h).trim() == name)
            .ok_or_else(|| {
                fail(format!(
                    "{} has no column `{name}` (it needs pid, lon and lat)",
                    points_path.display()
                ))
            })
    };
    let (pid_col, lon_col, lat_col) = (column("pid")?, column("lon")?, column("lat")?);

    let mut out = csv::Writer::from_writer(BufWriter::new(std::io::stdout().lock()));
    out.write_record(["pid", "cell", "status"])?;
    let keep_all = repeat.is_some_and(|n| n > 0);
    let mut all: Vec<Location> = Vec::new();
    let mut pids: Vec<String> = Vec::with_capacity(CHUNK);
    let mut slots: Vec<Option<usize>> = Vec::with_capacity(CHUNK);
    let mut batch: Vec<Location> = Vec::with_capacity(CHUNK);
    let mut answers: Vec<Option<CellId>> = Vec::with_capacity(CHUNK);
    let mut record = csv::ByteRecord::new();
    let mut line = 1u64;
    let mut flush = |pids: &mut Vec<String>,
                     slots: &mut Vec<Option<usize>>,
                     batch: &mut Vec<Location>,
                     out: &mut csv::Writer<_>|
     -> Result<(), Box<dyn Error>> {
        grid.locate_many(batch, &mut answers);
        for (pid, slot) in pids.iter().zip(slots.iter()) {
            let (cell, status) = match slot.map(|k| answers[k]) {
                None => ("", "invalid"),
                Some(None) => ("", "outside"),
                Some(Some(id)) => (grid[id].name.as_str(), "ok"),
            };
            out.write_record([pid.as_str(), cell, status])?;
        }
        if keep_all {
            all.extend_from_slice(batch);
        }
        pids.clear();
        slots.clear();
        batch.clear();
        Ok(())
    };
    loop {
        line += 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(fail(format!("{} line {line}: {e}", points_path.display())));
            }
        }
        let field = |k: usize| record.get(k).map(String::from_utf8_lossy);
        pids.push(field(pid_col).map(|p| p.into_owned()).unwrap_or_default());
        let number = |k: usize| field(k).and_then(|s| s.trim().parse::<f64>().ok());
        let location = match (number(lon_col), number(lat_col)) {
            (Some(lon), Some(lat)) => Location::new(lon, lat).ok(),
            _ => None,
        };
        slots.push(location.map(|p| {
            batch.push(p);
            batch.len() - 1
        }));
        if pids.len() == CHUNK {
            flush(&mut pids, &mut slots, &mut batch, &mut out)?;
        }
    }
    flush(&mut pids, &mut slots, &mut batch, &mut out)?;
    out.flush()?;
    drop(out);

    if let Some(n) = repeat.filter(|&n| n > 0) {
        report(&grid, Some(held), &all, n)?;
    }
    Ok(())
}

/// Times the three lookup paths over the whole batch and checks that they agree.
fn report(
    grid: &Grid,
    held: Option<usize>,
    points: &[Location],
    n: u32,
) -> Result<(), Box<dyn Error>> {
    let stats = grid.index_stats();
    let geometry = grid.geometry_bytes();
    let per_cell = |bytes: usize| bytes as f64 / grid.len() as f64;
    eprintln!(
        "grid: {} cells, validated and indexed in {:.1} ms (bucket table {:.1} ms)",
        grid.len(),
        grid.build_time().as_secs_f64() * 1e3,
        stats.build_time.as_secs_f64() * 1e3
    );
    eprintln!(
        "memory: index {} bytes ({:.0} per cell), geometry {} bytes ({:.0} per cell); buckets {}x{}: {} pure, {} one-edge, {} one-vertex, {} mixed",
        stats.bytes,
        per_cell(stats.bytes),
        geometry,
        per_cell(geometry),
        stats.nx,
        stats.ny,
        stats.pure,
        stats.one_edge,
        stats.star,
        stats.mixed
    );
    if let Some(held) = held {
        eprintln!(
            "the grid holds {held} bytes in all ({:.0} per cell): cells as given, packed geometry, bucket table, R-tree, neighbour graph, names",
            per_cell(held)
        );
    }
    if points.is_empty() {
        eprintln!("no valid points to time");
        return Ok(());
    }
    let total = points.len() as f64 * f64::from(n);
    let mut batch = Vec::with_capacity(points.len());
    let started = Instant::now();
    for _ in 0..n {
        grid.locate_many(black_box(points), &mut batch);
        black_box(&batch);
    }
    let many_ns = started.elapsed().as_secs_f64() * 1e9 / total;

    let time = |f: &dyn Fn(Location) -> Option<CellId>| {
        let started = Instant::now();
        for _ in 0..n {
            for &p in points {
                black_box(f(black_box(p)));
            }
        }
        started.elapsed().as_secs_f64() * 1e9 / total
    };
    let single_ns = time(&|p| grid.locate(p));
    let rtree_ns = time(&|p| grid.locate_rtree(p));

    let disagree = points
        .iter()
        .zip(&batch)
        .filter(|&(&p, &b)| grid.locate(p) != b || grid.locate_rtree(p) != b)
        .count();
    eprintln!(
        "{} points x {n}: locate_many {many_ns:.1} ns/point, locate {single_ns:.1} ns/point, locate_rtree {rtree_ns:.1} ns/point",
        points.len()
    );
    if disagree > 0 {
        return Err(fail(format!(
            "{disagree} points where the lookup paths disagree"
        )));
    }
    Ok(())
}

/// The demo grid and its generated points: every path agrees with the linear scan.
fn self_check() -> Result<(), Box<dyn Error>> {
    let grid = generate::demo_grid();
    let points: Vec<Location> = generate::points(&grid, 20_000, 42)
        .into_iter()
        .map(|[lon, lat]| Location::new(lon, lat))
        .collect::<Result<_, _>>()?;
    let mut batch = Vec::new();
    grid.locate_many(&points, &mut batch);
    let mut inside = 0;
    for (&p, &b) in points.iter().zip(&batch) {
        let want = grid.locate_brute_force(p);
        assert_eq!(b, want, "locate_many at {p:?}");
        assert_eq!(grid.locate(p), want, "locate at {p:?}");
        assert_eq!(grid.locate_rtree(p), want, "locate_rtree at {p:?}");
        inside += usize::from(want.is_some());
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "demo grid: {} cells; {} points ({inside} inside, {} outside): every answer equals locate_brute_force",
        grid.len(),
        points.len(),
        points.len() - inside
    )?;
    out.flush()?;
    report(&grid, None, &points, 3)
}
