//! The coverage audit on a city clipped to an off-lattice boundary with planted faults,
//! its JSON, and grids built to cost as much as possible, refused with their reason.

use wangge::generate::{ClippedParams, clipped_city};
use wangge::grid::{CellProblemKind, Jurisdiction};
use wangge::{Cell, Grid, GridError, Polygon};

/// Area of a lon/lat rectangle on the authalic sphere: independent of the crate, within a
/// fraction of a percent of the ellipsoidal area at this latitude.
fn rect_area(x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    const R: f64 = 6_371_007.2;
    R * R * (x1 - x0).to_radians() * (y1.to_radians().sin() - y0.to_radians().sin())
}

/// Crossing-number test on a region's exterior (its own code, not the crate's).
fn inside(ring: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut odd = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < a[0] + (p[1] - a[1]) / (b[1] - a[1]) * (b[0] - a[0])
        {
            odd = !odd;
        }
    }
    odd
}

#[test]
fn clipped_city_reports_exactly_the_planted_faults_and_slivers_apart() {
    let p = ClippedParams::small();
    let city = clipped_city(&p);
    assert!(
        city.planted.dropped.is_empty(),
        "{:?}",
        city.planted.dropped
    );
    let grid = Grid::new(city.cells.clone()).unwrap();
    let boundary = Jurisdiction::new(city.boundary.clone()).unwrap();
    let report = grid.audit(Some(&boundary));

    // One gap per planted void, each holding its planted point.
    assert_eq!(report.gaps.len(), city.planted.gaps.len(), "{report}");
    for &q in &city.planted.gaps {
        let hits = report
            .gaps
            .iter()
            .filter(|g| inside(&g.polygon.exterior, q))
            .count();
        assert_eq!(hits, 1, "gap at {q:?}: {report}");
    }
    // The single-square void: its area, from the lattice alone.
    let d = [
        p.cell_m / 111_320.0 / p.origin[1].to_radians().cos(),
        p.cell_m / 111_320.0,
    ];
    let q = city.planted.gaps[0];
    let (i, j) = (
        ((q[0] - p.origin[0]) / d[0]).floor(),
        ((q[1] - p.origin[1]) / d[1]).floor(),
    );
    let x0 = p.origin[0] + i * d[0];
    let y0 = p.origin[1] + j * d[1];
    let square = rect_area(x0, y0, x0 + d[0], y0 + d[1]);
    let single = report
        .gaps
        .iter()
        .find(|g| inside(&g.polygon.exterior, q))
        .unwrap();
    assert!((single.area_m2 / square - 1.0).abs() < 0.005, "{report}");

    // Exactly the planted overlapping pairs.
    let mut found: Vec<[String; 2]> = report.overlaps.iter().map(|o| o.names.clone()).collect();
    let mut want: Vec<[String; 2]> = city
        .planted
        .overlaps
        .iter()
        .map(|(n, _)| {
            let mut n = n.clone();
            if grid.id_of(&n[0]) > grid.id_of(&n[1]) {
                n.swap(0, 1);
            }
            n
        })
        .collect();
    found.sort();
    want.sort();
    assert_eq!(found, want, "{report}");
    let duplicate = report
        .overlaps
        .iter()
        .find(|o| o.names.contains(&"duplicate".to_string()))
        .unwrap();
    assert!((duplicate.area_m2 / square - 1.0).abs() < 0.005, "{report}");
    let shifted: f64 = report
        .overlaps
        .iter()
        .filter(|o| o.names.contains(&"shifted".to_string()))
        .map(|o| o.area_m2)
        .sum();
    // The shifted copy lies wholly on four cells: it overlaps them by its whole area.
    assert!((shifted / square - 1.0).abs() < 0.005, "{report}");

    // Parts outside: the enclave covered by whole squares, the unclipped border squares.
    assert_eq!(report.outside.len(), city.planted.outside.len(), "{report}");
    for &q in &city.planted.outside {
        assert!(
            report
                .outside
                .iter()
                .any(|r| inside(&r.polygon.exterior, q)),
            "outside at {q:?}: {report}"
        );
    }
    assert!(report.invalid.is_empty(), "{report}");
    // The computed border vertices part from the boundary's edges by a hair: slivers,
    // which do not make the verdict.
    assert!(report.slivers.count > 0, "{report}");
    assert!(
        report.slivers.area_m2 < 1e-6 * boundary.area_m2(),
        "{report}"
    );
    assert!(!report.is_clean());

    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["clean"], false);
    assert_eq!(json["gaps"].as_array().unwrap().len(), report.gaps.len());
    assert_eq!(
        json["overlaps"].as_array().unwrap().len(),
        report.overlaps.len()
    );
    assert_eq!(
        json["outside"].as_array().unwrap().len(),
        report.outside.len()
    );
    assert_eq!(json["slivers"]["count"], report.slivers.count);
    assert!(json["gaps"][0]["point"][1].is_f64() && json["gaps"][0]["area_m2"].is_f64());
}

#[test]
fn without_a_boundary_holes_are_exact_and_leave_no_slivers() {
    // The planted extras removed: only the voids and the widened square remain.
    let city = clipped_city(&ClippedParams::small());
    let clean: Vec<Cell> = city
        .cells
        .into_iter()
        .filter(|c| c.name.starts_with('C'))
        .collect();
    let grid = Grid::new(clean).unwrap();
    let report = grid.audit(None);
    // Without the boundary only enclosed voids count: the island's ring, the blocks, the
    // moat; the widened square still overlaps its neighbour.
    assert_eq!(report.overlaps.len(), 1, "{report}");
    assert!(report.gaps.len() >= 3, "{report}");
    assert_eq!(
        report.slivers.count, 0,
        "exact holes leave no slivers: {report}"
    );
}

#[test]
fn a_hundred_thousand_stacked_cells_are_refused_with_the_reason() {
    let cells: Vec<Cell> = (0..100_000)
        .map(|i| {
            Cell::new(
                format!("s{i}"),
                vec![Polygon::rect([120.0, 36.0], [120.1, 36.1])],
            )
        })
        .collect();
    let err = Grid::new(cells).unwrap_err();
    assert!(matches!(err, GridError::TooCostly { .. }), "{err}");
    assert!(err.to_string().contains("buckets"), "{err}");
}

/// A comb whose `teeth` run side by side, turned by `angle` radians around its root.
fn comb(teeth: usize, angle: f64) -> Vec<[f64; 2]> {
    let (x0, y0, w, h) = (120.0, 36.0, 0.5, 1e-6);
    let mut ring = vec![[0.0, 0.0]];
    for t in 0..teeth {
        let y = 2.0 * t as f64 * h;
        ring.extend([[w, y], [w, y + h], [1e-4, y + h], [1e-4, y + 2.0 * h]]);
    }
    ring.push([0.0, 2.0 * teeth as f64 * h]);
    ring.push([0.0, 0.0]);
    let (s, c) = angle.sin_cos();
    ring.iter()
        .map(|&[x, y]| [x0 + x * c - y * s, y0 + x * s + y * c])
        .collect()
}

#[test]
fn a_ring_too_complex_to_check_is_refused_not_swept() {
    // Turned by 45 degrees, every edge's extent overlaps every other's on both axes.
    let cells = vec![Cell::new("comb", vec![Polygon::new(comb(20_000, 0.785))])];
    let err = Grid::new(cells).unwrap_err();
    let GridError::Cells(problems) = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(
            problems[..],
            [wangge::grid::CellProblem {
                kind: CellProblemKind::TooComplex { edges: 80_002, .. },
                ..
            }]
        ),
        "{err}"
    );
}

#[test]
fn a_comb_of_long_teeth_is_refused_before_the_neighbour_search() {
    // Straight, it passes the sweep along y, but its teeth would walk 1e9 buckets.
    let cells = vec![Cell::new("comb", vec![Polygon::new(comb(500_000, 0.0))])];
    let err = Grid::new(cells).unwrap_err();
    assert!(matches!(err, GridError::TooCostly { .. }), "{err}");
}

#[test]
fn tiny_cells_at_the_ends_of_the_world_are_refused() {
    let cells: Vec<Cell> = (0..20_000)
        .map(|i| {
            let x = if i % 2 == 0 { -179.0 } else { 179.0 } + (i / 2) as f64 * 1e-6;
            let y = if i % 4 < 2 { -89.0 } else { 89.0 };
            Cell::new(
                format!("t{i}"),
                vec![Polygon::rect([x, y], [x + 1e-9, y + 1e-9])],
            )
        })
        .collect();
    let err = Grid::new(cells).unwrap_err();
    assert!(matches!(err, GridError::TooCostly { .. }), "{err}");
}

#[test]
fn a_cell_wholly_inside_another_is_an_overlap_found_by_depth_alone() {
    // No edge is shared or crossed: only the coverage depth around its ring shows it.
    let s = 0.01;
    // Every corner from one formula, so that neighbours share vertices bit for bit.
    let x = |i: usize| 120.0 + i as f64 * s;
    let y = |j: usize| 36.0 + j as f64 * s;
    let mut cells: Vec<Cell> = (0..9)
        .map(|k| {
            let (i, j) = (k % 3, k / 3);
            Cell::new(
                format!("q{k}"),
                vec![Polygon::rect([x(i), y(j)], [x(i + 1), y(j + 1)])],
            )
        })
        .collect();
    let (x0, y0) = (120.0 + 1.25 * s, 36.0 + 1.25 * s);
    cells.push(Cell::new(
        "inner",
        vec![Polygon::rect([x0, y0], [x0 + s / 2.0, y0 + s / 2.0])],
    ));
    let grid = Grid::new(cells).unwrap();
    let report = grid.audit(None);
    let names: Vec<_> = report.overlaps.iter().map(|o| o.names.clone()).collect();
    assert_eq!(names, [["q4".to_string(), "inner".to_string()]], "{report}");
    let want = rect_area(x0, y0, x0 + s / 2.0, y0 + s / 2.0);
    assert!(
        (report.overlaps[0].area_m2 / want - 1.0).abs() < 0.005,
        "{report}"
    );
    assert!(report.gaps.is_empty(), "{report}");
    assert_eq!(report.inexact_cells, 1, "only the inner cell is set aside");
}
