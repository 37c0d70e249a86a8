//! A generated city clipped to a boundary whose vertices are not on the lattice, with
//! planted faults: what the coverage audit is checked on, against GEOS in CI.
//!
//! ```text
//!        boundary (off-lattice vertices)        planted:
//!      ╭──╮_╭────────╮___                         void: one square, a 2 x 3 block, a
//!     ╱ ┌┬┬┬┬┬┬┬┬┬┬┬┐   ╲                           block touching the boundary
//!    │  ├┼┼┼┼┼┼┼┼┼┼┼┤    │  border squares are      island: a square ringed by a void
//!    │  ├┼┼┼┼┼┼┼┼┼┼┼┤    │  clipped: their border   moat: a boundary hole whose squares
//!     ╲ └┴┴┴┴┴┴┴┴┴┴┴┘   ╱   vertices are computed    are all left out
//!      ╰──────────────╯     intersections           enclave: a boundary hole covered by
//!                                                     whole squares (part outside)
//!                                                   overlaps: a shifted copy, a widened
//!                                                     square, a duplicate
//!                                                   outside: border squares left unclipped
//! ```
//!
//! Shared vertices are computed once: a point where the boundary crosses a lattice line
//! is computed from that boundary edge and that line only, so both squares beside the line
//! get the same bits, as in a real grid clipped to real borders.

use super::super::cell::{Cell, Polygon, Ring};
use super::super::geometry::{Side, orient, ring_side};
use super::super::validate;
use crate::rng::SplitMix64;

/// Parameters of [`clipped_city`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClippedParams {
    /// Seed of the boundary's shape.
    pub seed: u64,
    /// Lattice columns (at least 40 for every planted fault to fit).
    pub cols: usize,
    /// Lattice rows (at least 40).
    pub rows: usize,
    /// South-west corner `[lon, lat]`.
    pub origin: [f64; 2],
    /// Side of a square in metres.
    pub cell_m: f64,
}

impl ClippedParams {
    /// About 50,000 cells of 500 m near Qingdao.
    pub fn large() -> ClippedParams {
        ClippedParams {
            seed: 0x5167_4441_4f00_0012,
            cols: 320,
            rows: 318,
            origin: [120.1, 36.0],
            cell_m: 500.0,
        }
    }

    /// About 900 cells: for tests.
    pub fn small() -> ClippedParams {
        ClippedParams {
            cols: 44,
            rows: 40,
            ..ClippedParams::large()
        }
    }
}

/// What [`clipped_city`] planted, with a point inside each fault.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Planted {
    /// A point inside each planted gap.
    pub gaps: Vec<[f64; 2]>,
    /// Each planted overlapping pair (cell names) with a point inside the overlap.
    pub overlaps: Vec<([String; 2], [f64; 2])>,
    /// A point inside each planted part outside the boundary (an unclipped border square
    /// may stick out in more than one piece: one point per square).
    pub outside: Vec<[f64; 2]>,
    /// Squares whose intersection with the boundary came apart in several pieces: left
    /// out, so they are gaps too (usually none).
    pub dropped: Vec<[f64; 2]>,
}

/// A generated grid, its boundary, and what was planted.
#[derive(Debug, Clone, PartialEq)]
pub struct ClippedCity {
    /// The cells, named `C{row}-{col}` (planted extras are named apart).
    pub cells: Vec<Cell>,
    /// The jurisdiction: one polygon with two holes (enclaves).
    pub boundary: Vec<Polygon>,
    /// The faults planted.
    pub planted: Planted,
}

/// What a piece of a clipped ring runs along.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Along {
    /// Boundary edge `e` (from vertex `e` to `e + 1`).
    Edge(usize),
    /// A lattice line: `x = v` (axis 0) or `y = v` (axis 1).
    Line(usize, f64),
}

/// Generates the clipped city. Deterministic.
pub fn clipped_city(p: &ClippedParams) -> ClippedCity {
    let dlat = p.cell_m / 111_320.0;
    let d = [dlat / p.origin[1].to_radians().cos(), dlat];
    let x = |i: usize| p.origin[0] + i as f64 * d[0];
    let y = |j: usize| p.origin[1] + j as f64 * d[1];
    let (cols, rows) = (p.cols.max(40), p.rows.max(40));
    let (ci, cj) = (cols as f64 / 2.0, rows as f64 / 2.0);
    let centre = [p.origin[0] + ci * d[0], p.origin[1] + cj * d[1]];

    // The boundary: a wavy ring around the centre, vertices about two squares apart, every
    // one off the lattice.
    let mut rng = SplitMix64(p.seed);
    let radius = [ci * 0.9, cj * 0.9];
    let k = ((radius[0] + radius[1]) * std::f64::consts::PI / 1.8) as usize;
    let phase = rng.unit() * 6.0;
    let mut outer: Ring = (0..k)
        .map(|n| {
            let a = n as f64 / k as f64 * std::f64::consts::TAU;
            let r = 0.88 + 0.08 * (3.0 * a + phase).sin() + 0.001 * (rng.unit() - 0.5);
            [
                centre[0] + radius[0] * r * a.cos() * d[0],
                centre[1] + radius[1] * r * a.sin() * d[1],
            ]
        })
        .collect();
    outer.push(outer[0]);

    let octagon = |c: [f64; 2], r: f64, ccw: bool| -> Ring {
        let mut ring: Ring = (0..8)
            .map(|n| {
                let a = (n as f64 + 0.37) * std::f64::consts::FRAC_PI_4;
                let a = if ccw { a } else { -a };
                [c[0] + r * a.cos() * d[0], c[1] + r * a.sin() * d[1]]
            })
            .collect();
        ring.push(ring[0]);
        ring
    };
    // Square (i, j)'s south-west corner plus fractions of a square.
    let at = |i: usize, j: usize, fx: f64, fy: f64| [x(i) + fx * d[0], y(j) + fy * d[1]];
    let (i0, j0) = (cols / 2, rows / 2);
    let enclave = octagon(at(i0 - 8, j0 + 6, 0.41, 0.63), 1.7, false);
    let moat = octagon(at(i0 + 7, j0 + 7, 0.29, 0.52), 1.3, false);
    let moat_box = super::super::geometry::bbox_of(&moat);

    // Boundary edges by the squares their envelope meets, for the crossing test.
    let mut crossed = vec![false; cols * rows];
    for e in outer.windows(2) {
        let lo = [e[0][0].min(e[1][0]), e[0][1].min(e[1][1])];
        let hi = [e[0][0].max(e[1][0]), e[0][1].max(e[1][1])];
        let col = |v: f64| ((v - p.origin[0]) / d[0]).floor();
        let row = |v: f64| ((v - p.origin[1]) / d[1]).floor();
        let (a0, a1) = (col(lo[0]) - 1.0, col(hi[0]) + 1.0);
        let (b0, b1) = (row(lo[1]) - 1.0, row(hi[1]) + 1.0);
        for j in (b0.max(0.0) as usize)..=(b1.max(0.0) as usize).min(rows - 1) {
            for i in (a0.max(0.0) as usize)..=(a1.max(0.0) as usize).min(cols - 1) {
                crossed[j * cols + i] = true;
            }
        }
    }

    let mut planted = Planted::default();
    let mid = |i: usize, j: usize| at(i, j, 0.5, 0.5);
    // Planted voids and the island's ring (squares left out).
    let mut void: Vec<(usize, usize)> = vec![(i0 - 3, j0 - 9)];
    planted.gaps.push(mid(i0 - 3, j0 - 9));
    for a in 0..2 {
        for b in 0..3 {
            void.push((i0 + 4 + a, j0 - 4 + b));
        }
    }
    planted.gaps.push(mid(i0 + 4, j0 - 4));
    for a in 0..3 {
        for b in 0..3 {
            if (a, b) != (1, 1) {
                void.push((i0 - 10 + a, j0 - 8 + b));
            }
        }
    }
    planted.gaps.push(mid(i0 - 10, j0 - 8));
    planted.gaps.push(at(i0 + 7, j0 + 7, 0.5, 0.05));
    // The first crossed square from the west on the middle row, and its east neighbour.
    let west_edge = (0..cols).find(|&i| crossed[j0 * cols + i]).unwrap_or(0);
    let east_edge = (0..cols)
        .rev()
        .find(|&i| crossed[j0 * cols + i])
        .unwrap_or(cols - 1);
    let mut border_void = Vec::new();
    let mut i = west_edge;
    while i < cols && crossed[j0 * cols + i] {
        border_void.push((i, j0));
        i += 1;
    }
    border_void.push((i, j0));
    planted.gaps.push(mid(i, j0));
    void.extend(border_void);
    // Border squares left whole: parts outside.
    let unclipped = [
        (east_edge, j0),
        (i0, (0..rows).find(|&j| crossed[j * cols + i0]).unwrap_or(0)),
    ];
    for &(i, j) in &unclipped {
        planted.outside.push(mid(i, j));
    }
    planted.outside.push(at(i0 - 8, j0 + 6, 0.41, 0.63));

    let mut cells = Vec::new();
    for j in 0..rows {
        for i in 0..cols {
            if void.contains(&(i, j)) {
                continue;
            }
            let sq = [x(i), y(j), x(i + 1), y(j + 1)];
            if sq[0] <= moat_box[2]
                && sq[2] >= moat_box[0]
                && sq[1] <= moat_box[3]
                && sq[3] >= moat_box[1]
            {
                continue;
            }
            let whole = Polygon::rect([sq[0], sq[1]], [sq[2], sq[3]]);
            let name = format!("C{j:03}-{i:03}");
            if !crossed[j * cols + i] {
                if ring_side(&outer, mid(i, j)) == Side::Inside {
                    cells.push(Cell::new(name, vec![whole]));
                }
                continue;
            }
            if unclipped.contains(&(i, j)) {
                cells.push(Cell::new(name, vec![whole]));
                continue;
            }
            let Some(ring) = clip(&outer, sq) else {
                continue;
            };
            let poly = Polygon::new(ring);
            if validate::polygon_problems(std::slice::from_ref(&poly)).is_empty() {
                cells.push(Cell::new(name, vec![poly]));
            } else {
                planted.dropped.push(mid(i, j));
            }
        }
    }

    // Overlaps: a copy shifted by a third and a quarter of a square (over four squares),
    // a square widened into its east neighbour, a duplicate.
    let (si, sj) = (i0 + 2, j0 + 3);
    cells.push(Cell::new(
        "shifted",
        vec![Polygon::rect(
            at(si, sj, 1.0 / 3.0, 0.25),
            at(si + 1, sj + 1, 1.0 / 3.0, 0.25),
        )],
    ));
    for (a, b) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        planted.overlaps.push((
            [format!("C{:03}-{:03}", sj + b, si + a), "shifted".into()],
            at(
                si + a,
                sj + b,
                if a == 0 { 0.6 } else { 0.1 },
                if b == 0 { 0.6 } else { 0.1 },
            ),
        ));
    }
    let (wi, wj) = (i0 - 5, j0 + 2);
    let widened = format!("C{wj:03}-{wi:03}");
    if let Some(c) = cells.iter_mut().find(|c| c.name == widened) {
        c.polygons = vec![Polygon::rect(
            at(wi, wj, 0.0, 0.0),
            at(wi + 1, wj + 1, 0.3, 0.0),
        )];
    }
    planted.overlaps.push((
        [widened, format!("C{wj:03}-{:03}", wi + 1)],
        at(wi + 1, wj, 0.15, 0.5),
    ));
    let dup = format!("C{:03}-{:03}", j0 - 2, i0 + 9);
    if let Some(c) = cells.iter().find(|c| c.name == dup).cloned() {
        cells.push(Cell::new("duplicate", c.polygons));
    }
    planted
        .overlaps
        .push(([dup, "duplicate".into()], mid(i0 + 9, j0 - 2)));

    ClippedCity {
        cells,
        boundary: vec![Polygon {
            exterior: outer,
            holes: vec![enclave, moat],
        }],
        planted,
    }
}

/// The part of the ring `outer` (counter-clockwise) inside the square `sq`, by
/// Sutherland–Hodgman against the square's four sides; `None` if nothing is left. Each
/// crossing of a boundary edge with a lattice line is computed from that edge and that
/// line alone.
fn clip(outer: &[[f64; 2]], sq: [f64; 4]) -> Option<Ring> {
    let cut = |along: Along, axis: usize, v: f64| -> [f64; 2] {
        match along {
            Along::Edge(e) => {
                let (a, b) = (outer[e], outer[e + 1]);
                let o = 1 - axis;
                let t = (v - a[axis]) / (b[axis] - a[axis]);
                let mut q = [0.0; 2];
                q[axis] = v;
                q[o] = a[o] + t * (b[o] - a[o]);
                q
            }
            // A lattice line across this one: the lattice corner.
            Along::Line(ax, w) => {
                let mut q = [0.0; 2];
                q[axis] = v;
                q[ax] = w;
                q
            }
        }
    };
    let mut poly: Vec<([f64; 2], Along)> = outer
        .windows(2)
        .enumerate()
        .map(|(e, w)| (w[0], Along::Edge(e)))
        .collect();
    for (axis, v, keep_above) in [
        (0, sq[0], true),
        (0, sq[2], false),
        (1, sq[1], true),
        (1, sq[3], false),
    ] {
        let inside = |q: [f64; 2]| {
            if keep_above {
                q[axis] >= v
            } else {
                q[axis] <= v
            }
        };
        let mut out = Vec::with_capacity(poly.len());
        for k in 0..poly.len() {
            let (s, along) = poly[k];
            let e = poly[(k + 1) % poly.len()].0;
            let (si, ei) = (inside(s), inside(e));
            if si {
                out.push((s, along));
            }
            if si && !ei {
                out.push((cut(along, axis, v), Along::Line(axis, v)));
            } else if !si && ei {
                out.push((cut(along, axis, v), along));
            }
        }
        poly = out;
        if poly.len() < 3 {
            return None;
        }
    }
    let mut ring: Ring = Vec::with_capacity(poly.len() + 1);
    for (q, _) in poly {
        if ring.last() != Some(&q) {
            ring.push(q);
        }
        // Where the boundary leaves and re-enters across one side, the clipped ring runs
        // out along that side and back: drop such spikes, which enclose nothing.
        while ring.len() >= 3 {
            let (a, b, c) = (
                ring[ring.len() - 3],
                ring[ring.len() - 2],
                ring[ring.len() - 1],
            );
            let back = orient(a, b, c) == 0.0
                && (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0.0;
            if !back {
                break;
            }
            ring.remove(ring.len() - 2);
            if ring[ring.len() - 2] == ring[ring.len() - 1] {
                ring.pop();
            }
        }
    }
    while ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    if ring.len() < 3 {
        return None;
    }
    ring.push(ring[0]);
    // Where the ring only runs along the square's sides, what is left has no area.
    let on_side = |q: &[f64; 2]| q[0] == sq[0] || q[0] == sq[2] || q[1] == sq[1] || q[1] == sq[3];
    let area2: f64 = ring
        .windows(2)
        .map(|w| (w[0][0] - sq[0]) * (w[1][1] - sq[1]) - (w[1][0] - sq[0]) * (w[0][1] - sq[1]))
        .sum();
    let full = (sq[2] - sq[0]) * (sq[3] - sq[1]);
    if ring.iter().all(on_side) && area2.abs() < 1e-9 * full {
        return None;
    }
    Some(ring)
}
