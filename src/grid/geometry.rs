//! Exact planar predicates and the flat, contiguous storage of every cell's rings.
//!
//! All answers rest on two exact operations: comparing coordinates, and the sign of
//! [`orient`] (adaptive-precision, so never wrong however close the point is to an edge).

use super::cell::Cell;

/// Sign of the orientation of `c` relative to the directed line `a -> b`: positive if
/// `c` lies to the left, negative to the right, zero if collinear. The sign is exact.
#[inline]
pub(crate) fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    // Cheap filter first: the same error bound that `robust` applies, written out so that
    // the common case needs no call at all.
    let detleft = (a[0] - c[0]) * (b[1] - c[1]);
    let detright = (a[1] - c[1]) * (b[0] - c[0]);
    let det = detleft - detright;
    let detsum = (detleft.abs()) + (detright.abs());
    // (3 + 16 eps) eps, from Shewchuk's ccwerrboundA.
    const ERR_BOUND: f64 = 3.330_669_073_875_471_6e-16;
    if det.abs() > ERR_BOUND * detsum {
        return det;
    }
    robust::orient2d(
        robust::Coord { x: a[0], y: a[1] },
        robust::Coord { x: b[0], y: b[1] },
        robust::Coord { x: c[0], y: c[1] },
    )
}

/// Where a point lies relative to a closed ring or polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Outside,
    Boundary,
    Inside,
}

/// Classifies `p` against one closed ring (first vertex repeated last). Exact.
///
/// Crossing number of the ray from `p` towards +x, with the half-open rule on y so that
/// vertices are counted once, plus exact boundary detection.
#[inline]
pub(crate) fn ring_side(ring: &[[f64; 2]], p: [f64; 2]) -> Side {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let a_above = a[1] > p[1];
        let b_above = b[1] > p[1];
        if a_above != b_above {
            let o = orient(a, b, p);
            if o == 0.0 {
                return Side::Boundary;
            }
            // Upward edge (b above): crossing if p is left of it; downward: if right.
            if (o > 0.0) == b_above {
                inside = !inside;
            }
        } else if a == p
            || (a[1] == p[1] && b[1] == p[1] && p[0] >= a[0].min(b[0]) && p[0] <= a[0].max(b[0]))
        {
            // p is a vertex, or lies on a horizontal edge (inclusive at both ends).
            return Side::Boundary;
        }
    }
    if inside { Side::Inside } else { Side::Outside }
}

/// Whether two closed segments share at least one point. Exact.
pub(crate) fn segments_touch(p1: [f64; 2], p2: [f64; 2], q1: [f64; 2], q2: [f64; 2]) -> bool {
    let o1 = orient(p1, p2, q1);
    let o2 = orient(p1, p2, q2);
    let o3 = orient(q1, q2, p1);
    let o4 = orient(q1, q2, p2);
    if ((o1 > 0.0 && o2 < 0.0) || (o1 < 0.0 && o2 > 0.0))
        && ((o3 > 0.0 && o4 < 0.0) || (o3 < 0.0 && o4 > 0.0))
    {
        return true;
    }
    (o1 == 0.0 && within_box(p1, p2, q1))
        || (o2 == 0.0 && within_box(p1, p2, q2))
        || (o3 == 0.0 && within_box(q1, q2, p1))
        || (o4 == 0.0 && within_box(q1, q2, p2))
}

/// Whether `c` lies in the bounding box of `a` and `b` (closed).
#[inline]
fn within_box(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> bool {
    c[0] >= a[0].min(b[0])
        && c[0] <= a[0].max(b[0])
        && c[1] >= a[1].min(b[1])
        && c[1] <= a[1].max(b[1])
}

/// An axis-aligned box `[min_x, min_y, max_x, max_y]`.
pub(crate) type BBox = [f64; 4];

#[inline]
pub(crate) fn bbox_contains(b: &BBox, p: [f64; 2]) -> bool {
    p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3]
}

pub(crate) fn bbox_of(points: &[[f64; 2]]) -> BBox {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for p in points {
        b[0] = b[0].min(p[0]);
        b[1] = b[1].min(p[1]);
        b[2] = b[2].max(p[0]);
        b[3] = b[3].max(p[1]);
    }
    b
}

pub(crate) fn bbox_union(a: &BBox, b: &BBox) -> BBox {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// Every cell's rings in one contiguous array, with offset tables, so that the exact test
/// walks memory in order and the whole grid costs a handful of allocations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shapes {
    /// Ring vertices, each ring closed (first vertex repeated last).
    pub(crate) points: Vec<[f64; 2]>,
    /// `ring_start[r]..ring_start[r + 1]` are ring `r`'s vertices.
    pub(crate) ring_start: Vec<u32>,
    /// `poly_ring[p]..poly_ring[p + 1]` are polygon `p`'s rings, exterior first.
    pub(crate) poly_ring: Vec<u32>,
    /// Envelope of each polygon.
    pub(crate) poly_bbox: Vec<BBox>,
    /// `cell_poly[c]..cell_poly[c + 1]` are cell `c`'s polygons.
    pub(crate) cell_poly: Vec<u32>,
    /// Envelope of each cell.
    pub(crate) cell_bbox: Vec<BBox>,
}

impl Shapes {
    /// Packs validated cells. Callers have checked that every count fits in a `u32`.
    pub(crate) fn pack(cells: &[Cell]) -> Shapes {
        let mut s = Shapes {
            ring_start: vec![0],
            poly_ring: vec![0],
            cell_poly: vec![0],
            ..Shapes::default()
        };
        for cell in cells {
            let mut cell_box = [
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ];
            for poly in &cell.polygons {
                for ring in poly.rings() {
                    s.points.extend_from_slice(ring);
                    s.ring_start.push(s.points.len() as u32);
                }
                s.poly_ring.push((s.ring_start.len() - 1) as u32);
                let pb = bbox_of(&poly.exterior);
                cell_box = bbox_union(&cell_box, &pb);
                s.poly_bbox.push(pb);
            }
            s.cell_poly.push(s.poly_bbox.len() as u32);
            s.cell_bbox.push(cell_box);
        }
        s
    }

    pub(crate) fn cell_count(&self) -> usize {
        self.cell_bbox.len()
    }

    #[inline]
    pub(crate) fn ring(&self, r: usize) -> &[[f64; 2]] {
        &self.points[self.ring_start[r] as usize..self.ring_start[r + 1] as usize]
    }

    /// Ring indices of cell `c`, across all its polygons.
    pub(crate) fn cell_rings(&self, c: usize) -> std::ops::Range<usize> {
        let p0 = self.cell_poly[c] as usize;
        let p1 = self.cell_poly[c + 1] as usize;
        self.poly_ring[p0] as usize..self.poly_ring[p1] as usize
    }

    /// The point range `(first, count)` of cell `c`'s only ring, if it has one polygon
    /// without holes (most cells): such a cell is tested with one ring walk.
    pub(crate) fn single_ring(&self, c: usize) -> Option<(u32, u32)> {
        let rings = self.cell_rings(c);
        (rings.len() == 1).then(|| {
            let (a, b) = (
                self.ring_start[rings.start],
                self.ring_start[rings.start + 1],
            );
            (a, b - a)
        })
    }

    /// Where `p` lies relative to polygon `poly` (shell and holes). Exact.
    #[inline]
    pub(crate) fn polygon_side(&self, poly: usize, p: [f64; 2]) -> Side {
        if !bbox_contains(&self.poly_bbox[poly], p) {
            return Side::Outside;
        }
        let mut inside = false;
        for r in self.poly_ring[poly] as usize..self.poly_ring[poly + 1] as usize {
            match ring_side(self.ring(r), p) {
                Side::Boundary => return Side::Boundary,
                Side::Inside => inside = !inside,
                Side::Outside => {}
            }
        }
        if inside { Side::Inside } else { Side::Outside }
    }

    /// Whether the closed area of cell `c` (boundary included) covers `p`. Exact.
    #[inline]
    pub(crate) fn covers(&self, c: usize, p: [f64; 2]) -> bool {
        if !bbox_contains(&self.cell_bbox[c], p) {
            return false;
        }
        (self.cell_poly[c] as usize..self.cell_poly[c + 1] as usize)
            .any(|poly| self.polygon_side(poly, p) != Side::Outside)
    }

    /// The first cell in input order that covers `p`, by scanning them all.
    pub(crate) fn first_covering(&self, p: [f64; 2]) -> Option<usize> {
        (0..self.cell_count()).find(|&c| self.covers(c, p))
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.points.capacity() * 16
            + (self.ring_start.capacity() + self.poly_ring.capacity() + self.cell_poly.capacity())
                * 4
            + (self.poly_bbox.capacity() + self.cell_bbox.capacity()) * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<[f64; 2]> {
        vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    }

    #[test]
    fn ring_side_is_exact_on_boundary() {
        let r = square();
        assert_eq!(ring_side(&r, [0.5, 0.5]), Side::Inside);
        assert_eq!(ring_side(&r, [1.5, 0.5]), Side::Outside);
        for p in [
            [0.0, 0.0],
            [1.0, 1.0],
            [0.5, 0.0],
            [0.5, 1.0],
            [0.0, 0.5],
            [1.0, 0.25],
            [0.0, 1.0],
        ] {
            assert_eq!(ring_side(&r, p), Side::Boundary, "{p:?}");
        }
        assert_eq!(ring_side(&r, [-1e-300, 0.5]), Side::Outside);
        assert_eq!(ring_side(&r, [1e-300, 0.5]), Side::Inside);
        assert_eq!(ring_side(&r, [2.0, 0.0]), Side::Outside);
        assert_eq!(ring_side(&r, [-2.0, 1.0]), Side::Outside);
    }

    #[test]
    fn diagonal_edge_is_exact() {
        // Triangle with a long diagonal edge; points a hair off it on either side.
        let tri = vec![[0.0, 0.0], [3.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
        let on = [1.5, 0.5];
        assert_eq!(ring_side(&tri, on), Side::Boundary);
        let left = [1.5, f64::from_bits(0.5f64.to_bits() + 1)];
        let right = [1.5, f64::from_bits(0.5f64.to_bits() - 1)];
        assert_eq!(ring_side(&tri, left), Side::Inside);
        assert_eq!(ring_side(&tri, right), Side::Outside);
    }

    #[test]
    fn orientation_filter_agrees_with_robust() {
        let a = [120.123456789, 36.987654321];
        let b = [120.2, 36.9];
        for k in 0..200 {
            let t = k as f64 / 199.0;
            let c = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
            let exact = robust::orient2d(
                robust::Coord { x: a[0], y: a[1] },
                robust::Coord { x: b[0], y: b[1] },
                robust::Coord { x: c[0], y: c[1] },
            );
            assert_eq!(orient(a, b, c).signum(), exact.signum());
        }
    }

    #[test]
    fn segment_touching() {
        assert!(segments_touch(
            [0.0, 0.0],
            [2.0, 2.0],
            [0.0, 2.0],
            [2.0, 0.0]
        ));
        assert!(segments_touch(
            [0.0, 0.0],
            [2.0, 0.0],
            [1.0, 0.0],
            [1.0, 5.0]
        ));
        assert!(segments_touch(
            [0.0, 0.0],
            [2.0, 0.0],
            [1.0, 0.0],
            [3.0, 0.0]
        ));
        assert!(!segments_touch(
            [0.0, 0.0],
            [2.0, 0.0],
            [2.5, 0.0],
            [3.0, 0.0]
        ));
        assert!(!segments_touch(
            [0.0, 0.0],
            [2.0, 0.0],
            [0.0, 1.0],
            [2.0, 1.0]
        ));
    }
}
