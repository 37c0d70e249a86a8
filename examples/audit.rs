//! Coverage audit of a grid (横到边、纵到底、全覆盖): overlaps, gaps, parts outside the
//! jurisdiction, invalid cells.
//!
//! ```text
//!   GRID.geojson ──► Grid::from_geojson ──┐
//!                                         ├─► Grid::audit ──► report ──► exit 0 clean
//!   BOUNDARY.geojson ──► Jurisdiction ────┘                              1 not clean
//!   (optional)                                                           2 unreadable input
//!
//!   no arguments: a built-in lattice with T-junctions and triangles
//!   ┌────┬────┬─────────┬────┐
//!   │    │    │         │ ╱  │   audited twice: exact (must be clean), then with
//!   ├────┼────┼────┬────┼────┤   one cell removed and one shifted (must report
//!   │         │    │    │    │   exactly that gap and those overlaps)
//!   └─────────┴────┴────┴────┘
//! ```
//!
//! `cargo run --release --example audit -- [--json] GRID.geojson [BOUNDARY.geojson]`
//! (`--json`: one JSON object on stdout, see `AuditReport::to_json`)
//! `cargo run --release --example audit -- --lattice 224` (a 50,000-cell lattice, timed)
//! `cargo run --release --example audit -- --clipped [GRID.geojson BOUNDARY.geojson]`: the
//! 50,000-cell city clipped to an off-lattice boundary with planted faults
//! (`generate::clipped_city`), audited, timed and checked against what was planted;
//! optionally written out for `.ci/audit_check.py`.
//! `cargo run --release --example audit -- --hostile`: grids built to cost as much as
//! possible (stacked cells, a comb ring, a 2M-vertex ring, world-sized and crowded cells),
//! each refused or audited, timed.

use std::process::ExitCode;
use std::time::Instant;
use wangge::generate::{ClippedParams, clipped_city};
use wangge::grid::{AuditReport, Jurisdiction};
use wangge::{Cell, Grid, Polygon};

const X0: f64 = 120.2;
const Y0: f64 = 36.0;
const STEP: f64 = 0.0045; // about 400 m by 500 m at Qingdao's latitude
const DEMO_SIDE: usize = 60;

/// An `n * n` lattice: every third row has cells two squares wide (T-junctions with the
/// rows around it), every seventh square is cut into two triangles. `skip` leaves one
/// square empty; `shift` moves one square a third of a step to the right.
fn lattice(n: usize, skip: Option<(usize, usize)>, shift: Option<(usize, usize)>) -> Vec<Cell> {
    let x = |i: usize| X0 + i as f64 * STEP;
    let y = |j: usize| Y0 + j as f64 * STEP;
    let mut cells = Vec::new();
    for j in 0..n {
        let mut i = 0;
        while i < n {
            let wide = j % 3 == 1 && i + 1 < n && (i / 2) % 2 == 0;
            let i1 = if wide { i + 2 } else { i + 1 };
            let name = format!("G{i:03}-{j:03}");
            if skip == Some((i, j)) {
                // Left out: the deliberate gap.
            } else if shift == Some((i, j)) {
                let d = STEP / 3.0;
                let p = Polygon::rect([x(i) + d, y(j)], [x(i1) + d, y(j + 1)]);
                cells.push(Cell::new(name, vec![p]));
            } else if !wide && (i + j) % 7 == 0 {
                let (a, b, c, d) = (
                    [x(i), y(j)],
                    [x(i1), y(j)],
                    [x(i1), y(j + 1)],
                    [x(i), y(j + 1)],
                );
                cells.push(Cell::new(
                    format!("{name}a"),
                    vec![Polygon::new(vec![a, b, c, a])],
                ));
                cells.push(Cell::new(
                    format!("{name}b"),
                    vec![Polygon::new(vec![a, c, d, a])],
                ));
            } else {
                let p = Polygon::rect([x(i), y(j)], [x(i1), y(j + 1)]);
                cells.push(Cell::new(name, vec![p]));
            }
            i = i1;
        }
    }
    cells
}

fn frame(n: usize) -> Result<Jurisdiction, wangge::grid::JurisdictionError> {
    let corner = [X0 + n as f64 * STEP, Y0 + n as f64 * STEP];
    Jurisdiction::new(vec![Polygon::rect([X0, Y0], corner)])
}

fn audit(grid: &Grid, boundary: Option<&Jurisdiction>) -> AuditReport {
    let s = grid.neighbour_stats();
    println!(
        "grid: {} cells built in {:.1} ms (neighbour graph {:.1} ms: {} pairs, {} component(s), {} isolated)",
        grid.len(),
        grid.build_time().as_secs_f64() * 1e3,
        s.build_time.as_secs_f64() * 1e3,
        s.pairs,
        s.components,
        s.isolated
    );
    let report = grid.audit(boundary);
    print!("{report}");
    println!("audit took {:.1} ms", report.elapsed.as_secs_f64() * 1e3);
    report
}

fn verdict(report: &AuditReport) -> ExitCode {
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn demo() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let n = DEMO_SIDE;
    println!("== exact lattice, {n} x {n} squares, with its boundary");
    let grid = Grid::new(lattice(n, None, None))?;
    let clean = audit(&grid, Some(&frame(n)?));
    assert!(clean.is_clean(), "an exact tiling must audit clean");

    println!("\n== one square removed, one shifted by a third of a square");
    let broken = Grid::new(lattice(n, Some((10, 12)), Some((30, 30))))?;
    let report = audit(&broken, Some(&frame(n)?));
    let square = clean.covered_area_m2 / (n * n) as f64; // squares differ by < 0.5 % here
    // The removed square, and the third of a square the shift uncovers.
    assert_eq!(report.gaps.len(), 2, "{report}");
    assert!((report.gaps[0].area_m2 / square - 1.0).abs() < 0.01);
    assert!((report.gaps[1].area_m2 / square - 1.0 / 3.0).abs() < 0.01);
    // The shifted square overlaps the cell to its right by a third of a square.
    let overlap: f64 = report.overlaps.iter().map(|o| o.area_m2).sum();
    assert!((overlap / square - 1.0 / 3.0).abs() < 0.01, "{report}");
    assert!(report.outside.is_empty() && report.invalid.is_empty());
    println!("\ndemo: both audits found exactly what was built in");
    Ok(ExitCode::SUCCESS)
}

fn timed_lattice(n: usize) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let grid = Grid::new(lattice(n, None, None))?;
    println!("built {n} x {n} lattice in {:.2?}", started.elapsed());
    let report = audit(&grid, Some(&frame(n)?));
    assert!(report.is_clean(), "an exact tiling must audit clean");
    Ok(verdict(&report))
}

/// Whether `p` lies in one of `regions` (crossing test on the exterior, holes ignored:
/// the planted points are far from any hole).
fn in_some(regions: &[wangge::grid::Region], p: [f64; 2]) -> bool {
    regions.iter().any(|r| {
        let ring = &r.polygon.exterior;
        let mut inside = false;
        for w in ring.windows(2) {
            let (a, b) = (w[0], w[1]);
            if (a[1] > p[1]) != (b[1] > p[1])
                && p[0] < a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0])
            {
                inside = !inside;
            }
        }
        inside
    })
}

fn clipped(out: Option<(&str, &str)>) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let city = clipped_city(&ClippedParams::large());
    let boundary = Jurisdiction::new(city.boundary.clone())?;
    let grid = Grid::new(city.cells.clone())?;
    println!(
        "clipped city: {} cells generated and built in {:.2?}",
        grid.len(),
        started.elapsed()
    );
    if let Some((g, b)) = out {
        std::fs::write(g, grid.to_geojson())?;
        std::fs::write(b, boundary.to_geojson())?;
    }
    let report = audit(&grid, Some(&boundary));
    let planted = &city.planted;
    // Every planted fault is found where it was planted, and nothing else is listed.
    let gaps = planted.gaps.len() + planted.dropped.len();
    assert_eq!(report.gaps.len(), gaps, "{report}");
    for &p in planted.gaps.iter().chain(&planted.dropped) {
        assert!(in_some(&report.gaps, p), "no gap found at {p:?}");
    }
    let mut found: Vec<[String; 2]> = report.overlaps.iter().map(|o| o.names.clone()).collect();
    let mut want: Vec<[String; 2]> = planted
        .overlaps
        .iter()
        .map(|(names, _)| {
            let mut n = names.clone();
            if grid.id_of(&n[0]) > grid.id_of(&n[1]) {
                n.swap(0, 1);
            }
            n
        })
        .collect();
    found.sort();
    want.sort();
    assert_eq!(found, want, "{report}");
    for &p in &planted.outside {
        assert!(
            in_some(&report.outside, p),
            "no part outside found at {p:?}"
        );
    }
    assert!(report.invalid.is_empty(), "{report}");
    assert!(
        report.slivers.count > 0,
        "computed border vertices leave slivers: {report}"
    );
    println!(
        "clipped city: every planted fault found ({} gaps, {} overlaps, {} parts outside), {} slivers apart",
        report.gaps.len(),
        report.overlaps.len(),
        report.outside.len(),
        report.slivers.count
    );
    // The faults are planted: finding exactly them is the success here.
    Ok(ExitCode::SUCCESS)
}

/// Grids built to cost as much as possible, each either refused or accepted and audited:
/// what matters is that each answer comes within about a second.
fn hostile() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let square = |x: f64, y: f64, s: f64| Polygon::rect([x, y], [x + s, y + s]);
    // 100,000 identical squares stacked on one spot.
    let stacked = || {
        (0..100_000)
            .map(|i| Cell::new(format!("s{i}"), vec![square(120.0, 36.0, 0.1)]))
            .collect::<Vec<_>>()
    };
    // One ring of about two million vertices: a comb whose teeth all span the same
    // longitudes, so that every edge's x-range overlaps every other's.
    let comb = || {
        let teeth = 500_000;
        let (x0, w, h) = (120.0, 0.5, 1e-6);
        let mut ring = vec![[x0, 36.0]];
        for t in 0..teeth {
            let y = 36.0 + 2.0 * t as f64 * h;
            ring.extend([
                [x0 + w, y],
                [x0 + w, y + h],
                [x0 + 1e-4, y + h],
                [x0 + 1e-4, y + 2.0 * h],
            ]);
        }
        ring.push([x0, 36.0 + 2.0 * teeth as f64 * h]);
        ring.push([x0, 36.0]);
        vec![Cell::new("comb", vec![Polygon::new(ring)])]
    };
    // A round ring of two million vertices: large but harmless.
    let round = || {
        let n = 2_000_000;
        let mut ring: Vec<[f64; 2]> = (0..n)
            .map(|k| {
                let a = k as f64 / n as f64 * std::f64::consts::TAU;
                [120.0 + 0.1 * a.cos(), 36.0 + 0.1 * a.sin()]
            })
            .collect();
        ring.push(ring[0]);
        vec![Cell::new("round", vec![Polygon::new(ring)])]
    };
    // The 50,000-cell lattice plus 2,000 cells as large as the world.
    let world = || {
        let mut cells = lattice(224, None, None);
        for i in 0..2_000 {
            cells.push(Cell::new(
                format!("w{i}"),
                vec![Polygon::rect([-180.0, -90.0], [180.0, 90.0])],
            ));
        }
        cells
    };
    // Tiny cells at the ends of the world: an envelope of the whole globe, cells of 1e-9°.
    let spread = || {
        (0..50_000)
            .map(|i| {
                let x = if i % 2 == 0 { -179.0 } else { 179.0 } + (i / 2) as f64 * 1e-6;
                let y = if i % 4 < 2 { -89.0 } else { 89.0 };
                Cell::new(format!("t{i}"), vec![square(x, y, 1e-9)])
            })
            .collect::<Vec<_>>()
    };
    // As many stacked squares as the index accepts: every pair overlaps.
    let stacked_few = || {
        (0..1_000)
            .map(|i| Cell::new(format!("s{i}"), vec![square(120.0, 36.0, 0.1)]))
            .collect::<Vec<_>>()
    };
    let cases: [(&str, &dyn Fn() -> Vec<Cell>); 6] = [
        ("100,000 stacked squares", &stacked),
        ("1,000 stacked squares", &stacked_few),
        ("comb ring of 2,000,003 vertices", &comb),
        ("round ring of 2,000,001 vertices", &round),
        ("50,176-cell lattice + 2,000 world-sized cells", &world),
        ("50,000 cells of 1e-9° at the ends of the world", &spread),
    ];
    let mut slowest = 0.0f64;
    for (name, make) in cases {
        let cells = make();
        let started = Instant::now();
        let outcome = match Grid::new(cells) {
            Ok(grid) => {
                let built = started.elapsed().as_secs_f64();
                let report = grid.audit(None);
                format!(
                    "accepted (built in {built:.2} s); audit: {} overlap(s), {} more pair(s) not measured, {} gap(s)",
                    report.overlaps.len(),
                    report.unmeasured_pairs,
                    report.gaps.len()
                )
            }
            Err(e) => format!("refused: {e}"),
        };
        let secs = started.elapsed().as_secs_f64();
        slowest = slowest.max(secs);
        println!("{name}: {secs:.2} s, {outcome}");
    }
    println!("slowest answer: {slowest:.2} s");
    // About a second each on a quiet machine; the margin is for a loaded one.
    assert!(
        slowest < 5.0,
        "a hostile grid held a core for {slowest:.1} s"
    );
    Ok(ExitCode::SUCCESS)
}

fn from_files(grid_path: &str, boundary_path: Option<&str>, json: bool) -> ExitCode {
    let read =
        |path: &str| std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    let grid = match read(grid_path)
        .and_then(|t| Grid::from_geojson(&t).map_err(|e| format!("{grid_path}: {e}")))
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let boundary = match boundary_path.map(|p| {
        read(p).and_then(|t| Jurisdiction::from_geojson(&t).map_err(|e| format!("{p}: {e}")))
    }) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        let report = grid.audit(boundary.as_ref());
        println!("{}", report.to_json());
        verdict(&report)
    } else {
        verdict(&audit(&grid, boundary.as_ref()))
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    args.retain(|a| a != "--json");
    let result = match args.as_slice() {
        [] => demo(),
        [flag] if flag == "--clipped" => clipped(None),
        [flag] if flag == "--hostile" => hostile(),
        [flag, g, b] if flag == "--clipped" => clipped(Some((g, b))),
        [flag, n] if flag == "--lattice" => match n.parse() {
            Ok(n) => timed_lattice(n),
            Err(_) => {
                eprintln!("error: --lattice needs a side length, got {n:?}");
                return ExitCode::from(2);
            }
        },
        [grid] => return from_files(grid, None, json),
        [grid, boundary] => return from_files(grid, Some(boundary), json),
        _ => {
            eprintln!(
                "usage: audit [--json] [GRID.geojson [BOUNDARY.geojson]] | audit --lattice N | audit --clipped [GRID.geojson BOUNDARY.geojson]"
            );
            return ExitCode::from(2);
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}
