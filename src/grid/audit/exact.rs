//! The union of cells formed exactly, by cancelling shared edges.
//!
//! ```text
//!   noded rings ─► directed edges ─► sort by undirected key ─┬─ +1 −1      cancels (shared)
//!   (exterior ccw,                                           ├─ +1 alone   union boundary
//!    holes cw)                                               └─ +1 +1 ...  two cells on one
//!                                                                          side: overlap
//!   union boundary ─► crossings? ─► rings (tightest turn at pinches) ─► depth of each ring
//! ```
//!
//! Where cells share vertices and edges bit for bit (after exact noding, which puts every
//! vertex lying on another ring's edge into that edge), an edge shared by two cells appears
//! once in each direction and cancels; what is left is the boundary of the union, with no
//! floating-point construction at all. The left of every directed edge is inside its cell,
//! so the coverage depth (how many cells cover a point) is the winding number of the edges
//! that are left. Anything that breaks the picture of a union of non-overlapping cells
//! (two cells on the same side of an edge, left edges crossing, a ring enclosing area
//! already covered) names the cells concerned; they are taken out and the rest is formed
//! again, so the union of the remaining cells is always exact and the few cells taken out
//! go to the robust boolean operations.

use super::super::geometry::{Side, ring_side, segments_touch};
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};

/// A ring of the union of the cells that were kept.
#[derive(Debug, Clone)]
pub(super) struct UnionRing {
    /// Closed ring; counter-clockwise for a shell (covered on its left), clockwise for a
    /// hole.
    pub(super) points: Vec<[f64; 2]>,
    /// Twice the signed area in lon/lat (positive for shells).
    pub(super) area2: f64,
    /// The nearest ring enclosing this one, if any.
    pub(super) parent: Option<usize>,
}

impl UnionRing {
    pub(super) fn is_shell(&self) -> bool {
        self.area2 > 0.0
    }
}

/// The exact union of the cells not set aside, and the cells set aside.
#[derive(Debug)]
pub(super) struct ExactUnion {
    pub(super) rings: Vec<UnionRing>,
    /// Cells whose coverage overlaps another's (or may): not in `rings`, left to the
    /// boolean operations. Sorted.
    pub(super) set_aside: Vec<u32>,
}

/// A directed edge of a cell ring.
#[derive(Debug, Clone, Copy)]
struct DirEdge {
    /// Canonical undirected key: the two endpoints' bits, smaller first.
    key: [u64; 4],
    /// +1 if the edge runs from the smaller endpoint to the larger, −1 otherwise.
    dir: i8,
    cell: u32,
}

fn bits(p: [f64; 2]) -> [u64; 2] {
    // +0.0 so that -0.0 and 0.0 are one coordinate.
    [(p[0] + 0.0).to_bits(), (p[1] + 0.0).to_bits()]
}

fn point(b: [u64; 2]) -> [f64; 2] {
    [f64::from_bits(b[0]), f64::from_bits(b[1])]
}

/// How many rounds of setting cells aside before giving up on exactness and setting aside
/// every cell still involved.
const MAX_ROUNDS: usize = 16;

/// Forms the union of the cells' `rings` (`(cell, ring)`, noded, exteriors
/// counter-clockwise and holes clockwise).
pub(super) fn union(rings: &[(u32, Vec<[f64; 2]>)], cells: usize) -> ExactUnion {
    let mut edges: Vec<DirEdge> = Vec::new();
    for (cell, ring) in rings {
        for w in ring.windows(2) {
            let (a, b) = (bits(w[0]), bits(w[1]));
            if a == b {
                continue;
            }
            let (key, dir) = if a < b {
                ([a[0], a[1], b[0], b[1]], 1)
            } else {
                ([b[0], b[1], a[0], a[1]], -1)
            };
            edges.push(DirEdge {
                key,
                dir,
                cell: *cell,
            });
        }
    }
    edges.sort_unstable_by(|x, y| x.key.cmp(&y.key).then(x.cell.cmp(&y.cell)));

    let mut aside = vec![false; cells];
    for round in 0..MAX_ROUNDS {
        let mut flagged: Vec<u32> = Vec::new();
        let left = left_edges(&edges, &aside, &mut flagged);
        if flagged.is_empty() {
            crossings(&left, &mut flagged);
        }
        let mut out = None;
        if flagged.is_empty() {
            let (union_rings, bad) = assemble(&left);
            flagged.extend(bad);
            if flagged.is_empty() {
                out = Some(union_rings);
            }
        }
        if round + 1 >= MAX_ROUNDS && out.is_none() {
            // Overlaps nested this deep are not a grid's: give up on exactness and leave
            // every cell to the boolean operations.
            return ExactUnion {
                rings: Vec::new(),
                set_aside: (0..cells as u32).collect(),
            };
        }
        if let Some(union_rings) = out {
            let set_aside = (0..cells as u32).filter(|&c| aside[c as usize]).collect();
            return ExactUnion {
                rings: union_rings,
                set_aside,
            };
        }
        for c in flagged {
            aside[c as usize] = true;
        }
    }
    ExactUnion {
        rings: Vec::new(),
        set_aside: (0..cells as u32).collect(),
    }
}

/// The edges left after cancellation among cells not set aside, as `(from, to, cell)`.
/// Cells that lie on the same side of one edge are pushed onto `flagged`.
fn left_edges(
    edges: &[DirEdge],
    aside: &[bool],
    flagged: &mut Vec<u32>,
) -> Vec<([f64; 2], [f64; 2], u32)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < edges.len() {
        let mut j = i;
        while j < edges.len() && edges[j].key == edges[i].key {
            j += 1;
        }
        let group = edges[i..j]
            .iter()
            .filter(|e| !aside[e.cell as usize])
            .copied();
        let (mut fwd, mut back) = (0usize, 0usize);
        let (mut fwd_cell, mut back_cell) = (0u32, 0u32);
        for e in group.clone() {
            if e.dir > 0 {
                fwd += 1;
                fwd_cell = e.cell;
            } else {
                back += 1;
                back_cell = e.cell;
            }
        }
        if fwd > 1 || back > 1 {
            // Two cells with the same directed edge both have their inside on its left.
            for e in group {
                if (e.dir > 0 && fwd > 1) || (e.dir < 0 && back > 1) {
                    flagged.push(e.cell);
                }
            }
        } else if fwd != back {
            let k = edges[i].key;
            let (lo, hi) = (point([k[0], k[1]]), point([k[2], k[3]]));
            out.push(if fwd == 1 {
                (lo, hi, fwd_cell)
            } else {
                (hi, lo, back_cell)
            });
        }
        i = j;
    }
    out
}

/// Pushes the cells of left edges that cross or touch other than at a shared endpoint
/// (after noding, only crossings of overlapping cells do).
fn crossings(left: &[([f64; 2], [f64; 2], u32)], flagged: &mut Vec<u32>) {
    if left.len() < 2 {
        return;
    }
    let tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> = RTree::bulk_load(
        left.iter()
            .enumerate()
            .map(|(i, &(a, b, _))| {
                GeomWithData::new(
                    Rectangle::from_corners(
                        [a[0].min(b[0]), a[1].min(b[1])],
                        [a[0].max(b[0]), a[1].max(b[1])],
                    ),
                    i,
                )
            })
            .collect(),
    );
    for (i, &(a, b, ci)) in left.iter().enumerate() {
        let env = rstar::AABB::from_corners(
            [a[0].min(b[0]), a[1].min(b[1])],
            [a[0].max(b[0]), a[1].max(b[1])],
        );
        for hit in tree.locate_in_envelope_intersecting(env) {
            let j = hit.data;
            if j <= i {
                continue;
            }
            let (c, d, cj) = left[j];
            let shares_end = a == c || a == d || b == c || b == d;
            if !shares_end && segments_touch(a, b, c, d) {
                flagged.push(ci);
                flagged.push(cj);
            }
        }
    }
}

/// Links the left edges into rings and finds each ring's parent and the coverage depth
/// around it. Returns the rings and the cells of rings around which the depth is not that
/// of a union of non-overlapping cells (a shell with covered area outside it, a hole with
/// no covered area around it).
fn assemble(left: &[([f64; 2], [f64; 2], u32)]) -> (Vec<UnionRing>, Vec<u32>) {
    // Outgoing edges by start vertex.
    let mut order: Vec<usize> = (0..left.len()).collect();
    order.sort_unstable_by_key(|&e| bits(left[e].0));
    let starts: Vec<[u64; 2]> = order.iter().map(|&e| bits(left[e].0)).collect();
    let mut used = vec![false; left.len()];
    let mut rings: Vec<(Vec<[f64; 2]>, Vec<u32>)> = Vec::new();
    for first in 0..left.len() {
        if used[first] {
            continue;
        }
        let mut pts = vec![left[first].0];
        let mut owners = Vec::new();
        let mut e = first;
        loop {
            used[e] = true;
            let (from, to, cell) = left[e];
            pts.push(to);
            owners.push(cell);
            if to == left[first].0 {
                break;
            }
            let key = bits(to);
            let lo = starts.partition_point(|s| *s < key);
            let hi = starts.partition_point(|s| *s <= key);
            // Turn as tightly as the coverage allows: the first outgoing edge clockwise
            // from the way back, so that rings meeting at a vertex come out separate.
            let back = (from[1] - to[1]).atan2(from[0] - to[0]);
            let next = order[lo..hi]
                .iter()
                .copied()
                .filter(|&o| !used[o])
                .min_by(|&x, &y| {
                    let turn = |o: usize| {
                        let (_, q, _) = left[o];
                        let a = (q[1] - to[1]).atan2(q[0] - to[0]);
                        (back - a).rem_euclid(std::f64::consts::TAU)
                    };
                    turn(x).total_cmp(&turn(y))
                });
            match next {
                Some(n) => e = n,
                // Cannot happen when every vertex has as many edges in as out (which
                // cancellation keeps), but an open chain must not loop forever.
                None => break,
            }
        }
        rings.push((pts, owners));
    }

    let area2 = |r: &[[f64; 2]]| -> f64 {
        let o = r[0];
        r.windows(2)
            .map(|w| (w[0][0] - o[0]) * (w[1][1] - o[1]) - (w[1][0] - o[0]) * (w[0][1] - o[1]))
            .sum()
    };
    let mut out: Vec<UnionRing> = rings
        .iter()
        .map(|(pts, _)| UnionRing {
            area2: area2(pts),
            points: pts.clone(),
            parent: None,
        })
        .collect();
    let tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> = RTree::bulk_load(
        out.iter()
            .enumerate()
            .map(|(i, r)| {
                let b = super::super::geometry::bbox_of(&r.points);
                GeomWithData::new(Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]), i)
            })
            .collect(),
    );
    let mut bad = Vec::new();
    for i in 0..out.len() {
        let q = probe(&out[i].points);
        let mut depth = 0i64;
        let mut parent: Option<(usize, f64)> = None;
        for hit in tree.locate_all_at_point(q) {
            let j = hit.data;
            if j == i {
                continue;
            }
            let other = &out[j];
            if ring_side(&other.points, q) == Side::Inside {
                depth += if other.is_shell() { 1 } else { -1 };
                let size = other.area2.abs();
                if parent.is_none_or(|(_, s)| size < s) {
                    parent = Some((j, size));
                }
            }
        }
        out[i].parent = parent.map(|(j, _)| j);
        let want = if out[i].is_shell() { 0 } else { 1 };
        let closed = out[i].points.first() == out[i].points.last();
        if depth != want || !closed || out[i].area2 == 0.0 {
            bad.extend_from_slice(&rings[i].1);
        }
    }
    (out, bad)
}

/// A point on the ring, away from its vertices: the middle of its longest edge. Other rings
/// neither cross nor share this edge, so the point is inside or outside each of them as the
/// whole edge is.
fn probe(ring: &[[f64; 2]]) -> [f64; 2] {
    let longest = ring
        .windows(2)
        .max_by(|x, y| len2(x).total_cmp(&len2(y)))
        .unwrap_or(&ring[..1]);
    let (a, b) = (longest[0], longest[longest.len() - 1]);
    // Rounding may put the middle a hair off the edge; that side of it is still the side
    // of the edge, as no other ring comes that close to its middle.
    [a[0] + (b[0] - a[0]) / 2.0, a[1] + (b[1] - a[1]) / 2.0]
}

fn len2(w: &[[f64; 2]]) -> f64 {
    let (a, b) = (w[0], w[w.len() - 1]);
    (b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)
}
