//! Checks of cell geometry: every problem of every cell, never a panic.

use super::cell::{Cell, Polygon};
use super::error::{CellProblem, CellProblemKind, RingRef};
use super::geometry::{Side, orient, ring_side, segments_touch};
use std::collections::HashMap;

/// How many pairs of edges the checks of one grid (or one boundary) may compare, besides
/// [`PAIR_TESTS_PER_EDGE`] per edge: well under a second of work. Real rings need a few
/// comparisons per edge; a ring built so that every edge's extent overlaps every other's
/// (a comb of a million teeth) would need 1e12. The comparisons a sweep will make are
/// counted before it runs (`O(n log n)`), so such a ring is refused at once with
/// [`CellProblemKind::TooComplex`].
const MAX_PAIR_TESTS: u64 = 1 << 23;
/// Comparisons allowed per edge on top of [`MAX_PAIR_TESTS`].
const PAIR_TESTS_PER_EDGE: u64 = 16;

fn budget_for<'a>(polygons: impl Iterator<Item = &'a Polygon>) -> u64 {
    let edges: u64 = polygons
        .flat_map(|p| p.rings())
        .map(|r| r.len() as u64)
        .sum();
    MAX_PAIR_TESTS.saturating_add(PAIR_TESTS_PER_EDGE.saturating_mul(edges))
}

/// All problems of all cells, including duplicate names.
pub(crate) fn check_cells(cells: &[Cell]) -> Vec<CellProblem> {
    let mut budget = budget_for(cells.iter().flat_map(|c| &c.polygons));
    let mut problems = Vec::new();
    let mut first_by_name: HashMap<&str, usize> = HashMap::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        let mut push = |kind| {
            problems.push(CellProblem {
                index,
                id: Some(cell.name.clone()),
                kind,
            });
        };
        if let Some(&first) = first_by_name.get(cell.name.as_str()) {
            push(CellProblemKind::DuplicateId { first });
        } else {
            first_by_name.insert(&cell.name, index);
        }
        for kind in polygon_problems_within(&cell.polygons, &mut budget) {
            push(kind);
        }
    }
    problems
}

/// Problems of one cell's polygons.
pub(crate) fn polygon_problems(polygons: &[Polygon]) -> Vec<CellProblemKind> {
    polygon_problems_within(polygons, &mut budget_for(polygons.iter()))
}

/// Problems of one cell's polygons, spending at most `budget` edge-pair comparisons.
fn polygon_problems_within(polygons: &[Polygon], budget: &mut u64) -> Vec<CellProblemKind> {
    let mut out = Vec::new();
    if polygons.is_empty() {
        out.push(CellProblemKind::EmptyGeometry);
    }
    for (pi, poly) in polygons.iter().enumerate() {
        let before = out.len();
        for (ri, ring) in poly.rings().enumerate() {
            ring_problems(
                ring,
                RingRef {
                    polygon: pi,
                    ring: ri,
                },
                budget,
                &mut out,
            );
        }
        if out.len() == before {
            hole_problems(poly, pi, budget, &mut out);
        }
    }
    out
}

fn ring_problems(ring: &[[f64; 2]], at: RingRef, budget: &mut u64, out: &mut Vec<CellProblemKind>) {
    let before = out.len();
    for (position, &[lon, lat]) in ring.iter().enumerate() {
        if !lon.is_finite() || !lat.is_finite() {
            out.push(CellProblemKind::NonFinite { at, position });
        } else if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            out.push(CellProblemKind::OutOfRange {
                at,
                position,
                lon,
                lat,
            });
        }
    }
    if ring.len() < 4 {
        out.push(CellProblemKind::RingTooShort {
            at,
            positions: ring.len(),
        });
    } else if ring.first() != ring.last() {
        out.push(CellProblemKind::RingNotClosed { at });
    }
    if out.len() > before {
        return;
    }
    // Repeated consecutive positions are allowed (as in OGC); compare distinct vertices.
    let mut verts: Vec<([f64; 2], usize)> = Vec::with_capacity(ring.len());
    for (i, &p) in ring.iter().enumerate() {
        if verts.last().map(|&(q, _)| q) != Some(p) {
            verts.push((p, i));
        }
    }
    // verts is closed: first == last.
    let edges = verts.len() - 1;
    if edges < 3 {
        out.push(CellProblemKind::DegenerateRing { at });
        return;
    }
    // Sweep along the axis on which the edges' extents overlap least, if that fits.
    let (cost, axis) = [0, 1]
        .map(|axis| (sweep_cost(&verts, axis), axis))
        .into_iter()
        .min()
        .unwrap_or((0, 0));
    if cost > *budget {
        out.push(CellProblemKind::TooComplex { at, edges });
        return;
    }
    *budget -= cost;
    if let Some((first, second)) = first_self_intersection(&verts, axis) {
        out.push(CellProblemKind::SelfIntersection { at, first, second });
    }
}

/// Holes must lie inside their shell: no vertex outside it and no edge crossing it.
/// Otherwise the even-odd rule would count the "hole" as part of the cell.
fn hole_problems(poly: &Polygon, polygon: usize, budget: &mut u64, out: &mut Vec<CellProblemKind>) {
    let shell = &poly.exterior;
    for (h, hole) in poly.holes.iter().enumerate() {
        let at = RingRef {
            polygon,
            ring: h + 1,
        };
        // Each hole vertex against the shell, then each hole edge against each shell edge.
        let cost = 2 * (hole.len() as u64).saturating_mul(shell.len() as u64);
        if cost > *budget {
            out.push(CellProblemKind::TooComplex {
                at,
                edges: hole.len().saturating_sub(1),
            });
            continue;
        }
        *budget -= cost;
        if let Some(position) = hole
            .iter()
            .position(|&p| ring_side(shell, p) == Side::Outside)
        {
            out.push(CellProblemKind::HoleOutsideShell { at, position });
            continue;
        }
        let crosses = hole.windows(2).any(|e| {
            shell.windows(2).any(|f| {
                let (o1, o2) = (orient(e[0], e[1], f[0]), orient(e[0], e[1], f[1]));
                let (o3, o4) = (orient(f[0], f[1], e[0]), orient(f[0], f[1], e[1]));
                o1 * o2 < 0.0 && o3 * o4 < 0.0
            })
        });
        if crosses {
            out.push(CellProblemKind::HoleCrossesShell { at });
        }
    }
}

/// The first pair of edges (as indices into the original ring) that intersect where they
/// should not: any contact between non-adjacent edges, or adjacent edges doubling back.
/// Sweeps along `axis`, comparing [`sweep_cost`] pairs.
fn first_self_intersection(verts: &[([f64; 2], usize)], axis: usize) -> Option<(usize, usize)> {
    let n = verts.len() - 1;
    let seg = |i: usize| (verts[i].0, verts[i + 1].0);
    // Adjacent edges meet at one vertex; they are wrong only if they fold back onto each other.
    for i in 0..n {
        let j = (i + 1) % n;
        let (a, b) = seg(i);
        let (_, c) = seg(j);
        if orient(a, b, c) == 0.0 {
            let dot = (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]);
            if dot < 0.0 {
                return Some(ordered(verts[i].1, verts[j].1));
            }
        }
    }
    // Non-adjacent edges: sweep along the axis so that only edges with overlapping ranges
    // meet.
    let mut order: Vec<usize> = (0..n).collect();
    let min_x = |i: usize| seg(i).0[axis].min(seg(i).1[axis]);
    let max_x = |i: usize| seg(i).0[axis].max(seg(i).1[axis]);
    order.sort_by(|&a, &b| min_x(a).total_cmp(&min_x(b)));
    let mut found: Option<(usize, usize)> = None;
    for (k, &i) in order.iter().enumerate() {
        let (p1, p2) = seg(i);
        let hi = max_x(i);
        for &j in &order[k + 1..] {
            if min_x(j) > hi {
                break;
            }
            let adjacent = j == (i + 1) % n || i == (j + 1) % n;
            if adjacent {
                continue;
            }
            let (q1, q2) = seg(j);
            if segments_touch(p1, p2, q1, q2) {
                let pair = ordered(verts[i].1, verts[j].1);
                if found.is_none_or(|f| pair < f) {
                    found = Some(pair);
                }
            }
        }
    }
    found
}

/// How many pairs the sweep of [`first_self_intersection`] along `axis` compares: for each
/// edge in order of its least coordinate, the later edges starting before it ends.
fn sweep_cost(verts: &[([f64; 2], usize)], axis: usize) -> u64 {
    let n = verts.len() - 1;
    let mut ranges: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let (a, b) = (verts[i].0[axis], verts[i + 1].0[axis]);
            (a.min(b), a.max(b))
        })
        .collect();
    ranges.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mins: Vec<f64> = ranges.iter().map(|r| r.0).collect();
    ranges
        .iter()
        .enumerate()
        .map(|(k, &(_, hi))| (mins.partition_point(|&m| m <= hi) - (k + 1).min(n)) as u64)
        .sum()
}

fn ordered(a: usize, b: usize) -> (usize, usize) {
    if a <= b { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(ring: Vec<[f64; 2]>) -> Vec<CellProblemKind> {
        polygon_problems(&[Polygon::new(ring)])
    }

    #[test]
    fn a_square_is_fine_even_with_repeated_points() {
        assert!(
            kinds(vec![
                [0.0, 0.0],
                [1.0, 0.0],
                [1.0, 0.0],
                [1.0, 1.0],
                [0.0, 1.0],
                [0.0, 0.0]
            ])
            .is_empty()
        );
    }

    #[test]
    fn bow_tie_is_self_intersecting() {
        let k = kinds(vec![
            [0.0, 0.0],
            [1.0, 1.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [0.0, 0.0],
        ]);
        assert!(
            matches!(
                k[..],
                [CellProblemKind::SelfIntersection {
                    first: 0,
                    second: 2,
                    ..
                }]
            ),
            "{k:?}"
        );
    }

    #[test]
    fn ring_touching_itself_at_a_vertex_is_refused() {
        // Figure-eight through (1, 1).
        let k = kinds(vec![
            [0.0, 0.0],
            [1.0, 1.0],
            [2.0, 0.0],
            [2.0, 2.0],
            [1.0, 1.0],
            [0.0, 2.0],
            [0.0, 0.0],
        ]);
        assert!(
            matches!(k[..], [CellProblemKind::SelfIntersection { .. }]),
            "{k:?}"
        );
    }

    #[test]
    fn holes_must_lie_inside_their_shell() {
        let shell = Polygon::rect([0.0, 0.0], [4.0, 4.0]).exterior;
        let square = |x: f64, y: f64| Polygon::rect([x, y], [x + 1.0, y + 1.0]).exterior;
        let with_hole = |hole| {
            vec![Polygon {
                exterior: shell.clone(),
                holes: vec![hole],
            }]
        };
        assert!(polygon_problems(&with_hole(square(1.0, 1.0))).is_empty());
        // A hole touching the shell from inside at a vertex is still inside.
        assert!(polygon_problems(&with_hole(square(0.0, 0.0))).is_empty());
        let k = polygon_problems(&with_hole(square(6.0, 6.0)));
        assert!(
            matches!(
                k[..],
                [CellProblemKind::HoleOutsideShell { position: 0, .. }]
            ),
            "{k:?}"
        );
        let k = polygon_problems(&with_hole(square(3.5, 1.0)));
        assert!(
            matches!(k[..], [CellProblemKind::HoleOutsideShell { .. }]),
            "{k:?}"
        );
        // All vertices inside a concave shell, yet an edge leaves it.
        let u = vec![
            [0.0, 0.0],
            [3.0, 0.0],
            [3.0, 3.0],
            [2.0, 3.0],
            [2.0, 1.0],
            [1.0, 1.0],
            [1.0, 3.0],
            [0.0, 3.0],
            [0.0, 0.0],
        ];
        let hole = vec![[0.5, 2.0], [2.5, 2.0], [2.5, 0.5], [0.5, 0.5], [0.5, 2.0]];
        let k = polygon_problems(&[Polygon {
            exterior: u,
            holes: vec![hole],
        }]);
        assert!(
            matches!(k[..], [CellProblemKind::HoleCrossesShell { .. }]),
            "{k:?}"
        );
    }

    #[test]
    fn spike_is_refused() {
        let k = kinds(vec![
            [0.0, 0.0],
            [2.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.0, 0.0],
        ]);
        assert!(
            matches!(k[..], [CellProblemKind::SelfIntersection { .. }]),
            "{k:?}"
        );
    }

    #[test]
    fn short_open_degenerate_and_bad_numbers() {
        assert!(matches!(
            kinds(vec![[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])[..],
            [CellProblemKind::RingTooShort { positions: 3, .. }]
        ));
        assert!(matches!(
            kinds(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])[..],
            [CellProblemKind::RingNotClosed { .. }]
        ));
        assert!(matches!(
            kinds(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])[..],
            [CellProblemKind::DegenerateRing { .. }]
        ));
        let k = kinds(vec![[0.0, 0.0], [f64::NAN, 0.0], [1.0, 181.0], [0.0, 0.0]]);
        assert!(
            matches!(
                k[..],
                [
                    CellProblemKind::NonFinite { position: 1, .. },
                    CellProblemKind::OutOfRange { position: 2, .. }
                ]
            ),
            "{k:?}"
        );
        assert!(matches!(
            polygon_problems(&[])[..],
            [CellProblemKind::EmptyGeometry]
        ));
    }
}
