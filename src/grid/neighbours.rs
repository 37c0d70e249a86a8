//! The neighbour graph: which cells share a piece of boundary of positive length.
//!
//! ```text
//!   every edge ──► exact twins (same two endpoints)       ──┐
//!              └─► vertex strictly inside another edge,     ├─► cell pairs ──► CSR adjacency
//!                  with an incident edge collinear to it  ──┘    (sorted)      (+ union-find
//!                  (T-junctions, offset rows), exact             dedup          components)
//! ```
//!
//! Two collinear segments overlap with positive length if and only if they are identical
//! or an endpoint of one lies strictly inside the other; so exact twins plus a
//! vertex-in-segment search find every shared piece, with no pairwise scan of edges.
//! Cells touching only at a corner are not neighbours.

use super::cell::CellId;
use super::geometry::{Shapes, orient};
use crate::csr::Csr;
use std::time::{Duration, Instant};

/// Adjacency of the grid's cells in compressed sparse row form: row `c` holds the
/// neighbours of cell `c`, sorted by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Adjacency {
    rows: Csr<CellId>,
    components: usize,
    isolated: usize,
    build_time: Duration,
}

/// Counts describing the neighbour graph, with the time it took to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NeighbourStats {
    /// Number of neighbour pairs (undirected edges of the graph).
    pub pairs: usize,
    /// Largest number of neighbours of one cell.
    pub max_degree: usize,
    /// Cells with no neighbour at all.
    pub isolated: usize,
    /// Connected components (a grid on one piece of land is one component; islands add more).
    pub components: usize,
    /// How long finding the pairs and building the adjacency took.
    pub build_time: Duration,
}

impl Adjacency {
    /// Finds every pair of cells sharing a boundary piece of positive length.
    pub(crate) fn build(shapes: &Shapes) -> Adjacency {
        let started = Instant::now();
        let n = shapes.cell_count();
        let pairs = neighbour_pairs(shapes);
        // Pairs are sorted by (a, b) with a < b, so writing both directions in pair order
        // leaves each row sorted: a row's smaller ids come from pairs (x, c) seen before
        // pairs (c, y), and both groups are in increasing order. Fewer than `MAX_CELLS`
        // cells share far fewer than `u32::MAX` boundary pieces, so the limit never refuses.
        let rows = Csr::build(n, u64::MAX, |emit| {
            for &(a, b) in &pairs {
                emit(a as usize, CellId(b));
                emit(b as usize, CellId(a));
            }
        })
        .unwrap_or_default();
        let mut sets = petgraph::unionfind::UnionFind::<u32>::new(n);
        for &(a, b) in &pairs {
            sets.union(a, b);
        }
        let mut roots: Vec<u32> = sets.into_labeling();
        roots.sort_unstable();
        roots.dedup();
        let isolated = (0..n).filter(|&c| rows.row(c).is_empty()).count();
        Adjacency {
            rows,
            components: roots.len(),
            isolated,
            build_time: started.elapsed(),
        }
    }

    /// The sorted neighbours of `c`; empty for an id outside the grid.
    #[inline]
    pub(crate) fn of(&self, c: CellId) -> &[CellId] {
        self.rows.row(c.index())
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.rows()
    }

    pub(crate) fn stats(&self) -> NeighbourStats {
        NeighbourStats {
            pairs: self.rows.len() / 2,
            max_degree: self.rows.max_row_len(),
            isolated: self.isolated,
            components: self.components,
            build_time: self.build_time,
        }
    }

    /// Breadth-first rings around `start` up to distance `k`, into `buf`.
    pub(crate) fn rings_into(&self, start: CellId, k: usize, buf: &mut RingBuf) -> bool {
        buf.cells.clear();
        buf.starts.clear();
        if start.index() >= self.len() {
            return false;
        }
        buf.next_stamp(self.len());
        let stamp = buf.stamp;
        buf.mark[start.index()] = stamp;
        buf.starts.push(0);
        buf.cells.push(start);
        for _ in 0..k {
            let (from, to) = (*buf.starts.last().unwrap_or(&0), buf.cells.len());
            for i in from..to {
                let c = buf.cells[i];
                for &n in self.of(c) {
                    let m = &mut buf.mark[n.index()];
                    if *m != stamp {
                        *m = stamp;
                        buf.cells.push(n);
                    }
                }
            }
            if buf.cells.len() == to {
                break;
            }
            buf.cells[to..].sort_unstable();
            buf.starts.push(to);
        }
        true
    }
}

/// Reusable storage for breadth-first rings around a cell
/// ([`Grid::rings_into`](crate::Grid::rings_into)).
///
/// Keep one per thread and pass it to every call: after the first calls have grown it, a
/// search allocates nothing, and it costs time in proportion to the cells it finds, not to
/// the grid's size.
///
/// ```
/// use wangge::grid::RingBuf;
/// use wangge::{Cell, Grid, Polygon};
///
/// let cells = (0..4)
///     .map(|i| Cell::new(format!("c{i}"), vec![Polygon::rect([i as f64, 0.0], [i as f64 + 1.0, 1.0])]))
///     .collect();
/// let grid = Grid::new(cells)?;
/// let mut buf = RingBuf::new();
/// assert!(grid.rings_into(grid.id_of("c0").unwrap(), 2, &mut buf));
/// let names = |d| buf.ring(d).iter().map(|&c| grid[c].name.as_str()).collect::<Vec<_>>();
/// assert_eq!(names(0), ["c0"]);
/// assert_eq!(names(1), ["c1"]);
/// assert_eq!(names(2), ["c2"]);
/// assert_eq!(buf.depth(), 3);
/// # Ok::<(), wangge::GridError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RingBuf {
    /// `mark[c] == stamp` means cell `c` was reached in the current search.
    mark: Vec<u32>,
    stamp: u32,
    cells: Vec<CellId>,
    starts: Vec<usize>,
}

impl RingBuf {
    /// An empty buffer.
    pub fn new() -> RingBuf {
        RingBuf::default()
    }

    fn next_stamp(&mut self, cells: usize) {
        if self.mark.len() < cells {
            self.mark.resize(cells, 0);
        }
        if self.stamp == u32::MAX {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.stamp = 0;
        }
        self.stamp += 1;
    }

    /// Number of non-empty rings found (the start cell's ring 0 included); 0 after a search
    /// from an unknown cell. Can be less than `k + 1` when the start's component is exhausted.
    pub fn depth(&self) -> usize {
        self.starts.len()
    }

    /// The cells exactly `d` steps from the start, sorted by id; empty past the last ring.
    pub fn ring(&self, d: usize) -> &[CellId] {
        let Some(&s) = self.starts.get(d) else {
            return &[];
        };
        let e = self.starts.get(d + 1).copied().unwrap_or(self.cells.len());
        &self.cells[s..e]
    }

    /// The rings in order of distance, from ring 0 (the start cell alone).
    pub fn rings(&self) -> impl ExactSizeIterator<Item = &[CellId]> + '_ {
        (0..self.depth()).map(|d| self.ring(d))
    }

    /// Every cell found, nearest ring first (sorted within each ring).
    pub fn cells(&self) -> &[CellId] {
        &self.cells
    }
}

/// A flat set of closed rings: `points[ring_start[r]..ring_start[r + 1]]` is ring `r`, its
/// first point repeated last. Segment `i` runs from `points[i]` to `points[i + 1]` for `i`
/// not the last index of a ring.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlatRings<'a> {
    pub(crate) points: &'a [[f64; 2]],
    pub(crate) ring_start: &'a [u32],
}

impl FlatRings<'_> {
    fn rings(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        self.ring_start
            .windows(2)
            .map(|w| w[0] as usize..w[1] as usize)
    }

    /// Indices of every segment start (all ring positions but the closing one).
    fn segments(&self) -> impl Iterator<Item = usize> + '_ {
        self.rings().flat_map(|r| r.start..r.end.saturating_sub(1))
    }
}

/// Whether `v` lies strictly inside segment `a`-`b` (on it, not at either end). Exact.
#[inline]
pub(crate) fn strictly_inside(a: [f64; 2], b: [f64; 2], v: [f64; 2]) -> bool {
    let between = |lo: f64, hi: f64, x: f64| lo.min(hi) < x && x < lo.max(hi);
    let in_range = if a[0] != b[0] {
        between(a[0], b[0], v[0]) && v[1] >= a[1].min(b[1]) && v[1] <= a[1].max(b[1])
    } else {
        v[0] == a[0] && between(a[1], b[1], v[1])
    };
    in_range && orient(a, b, v) == 0.0
}

/// A uniform grid of buckets over the rings' bounding box, each listing the segments that
/// pass through it (conservatively: a few extra, never one missing).
struct SegmentHash {
    min: [f64; 2],
    inv: [f64; 2],
    n: [usize; 2],
    /// Margin on the minor coordinate, far above the rounding error of interpolating it.
    pad: f64,
    start: Vec<u32>,
    segs: Vec<u32>,
}

impl SegmentHash {
    fn build(rings: FlatRings<'_>) -> SegmentHash {
        let mut b = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for p in rings.points {
            b = [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ];
        }
        let segments = rings.segments().count().max(1);
        let (w, h) = ((b[2] - b[0]).max(0.0), (b[3] - b[1]).max(0.0));
        // About one bucket per segment, square buckets where the box allows.
        let side = if w > 0.0 && h > 0.0 {
            (w * h / segments as f64).sqrt()
        } else {
            w.max(h) / segments as f64
        };
        let count = |extent: f64| -> usize {
            if side > 0.0 && extent > 0.0 {
                ((extent / side).ceil() as usize).clamp(1, 1 << 14)
            } else {
                1
            }
        };
        let n = [count(w), count(h)];
        let inv = [
            if w > 0.0 { n[0] as f64 / w } else { 0.0 },
            if h > 0.0 { n[1] as f64 / h } else { 0.0 },
        ];
        let mut hash = SegmentHash {
            min: [b[0], b[1]],
            inv,
            n,
            pad: 1e-9 * w.max(h).max(b[0].abs()).max(b[1].abs()),
            start: vec![0; n[0] * n[1] + 1],
            segs: Vec::new(),
        };
        // Two passes (count, then fill) give one flat array instead of a Vec per bucket.
        let mut counts = vec![0u32; n[0] * n[1]];
        for s in rings.segments() {
            hash.each_bucket(rings.points[s], rings.points[s + 1], |k| counts[k] += 1);
        }
        let mut acc = 0u32;
        for (k, c) in counts.iter().enumerate() {
            hash.start[k] = acc;
            acc += c;
        }
        hash.start[n[0] * n[1]] = acc;
        let mut segs = vec![0; acc as usize];
        let mut fill = hash.start.clone();
        for s in rings.segments() {
            hash.each_bucket(rings.points[s], rings.points[s + 1], |k| {
                segs[fill[k] as usize] = s as u32;
                fill[k] += 1;
            });
        }
        hash.segs = segs;
        hash
    }

    #[inline]
    fn bucket(&self, axis: usize, x: f64) -> usize {
        let f = (x - self.min[axis]) * self.inv[axis];
        if f.is_nan() || f <= 0.0 {
            0
        } else {
            (f as usize).min(self.n[axis] - 1)
        }
    }

    /// Calls `f` with every bucket that the segment `a`-`b` may pass through. Walks the
    /// segment's major axis one bucket column (or row) at a time and takes the minor
    /// coordinate's range there, padded far beyond rounding error.
    fn each_bucket(&self, a: [f64; 2], b: [f64; 2], mut f: impl FnMut(usize)) {
        if a == b {
            return;
        }
        let major = usize::from((b[1] - a[1]).abs() > (b[0] - a[0]).abs());
        let minor = 1 - major;
        let (lo, hi) = if a[major] <= b[major] { (a, b) } else { (b, a) };
        let pad = self.pad;
        let slope = (hi[minor] - lo[minor]) / (hi[major] - lo[major]);
        let (m0, m1) = (self.bucket(major, lo[major]), self.bucket(major, hi[major]));
        for m in m0..=m1 {
            let x0 = if self.inv[major] > 0.0 {
                self.min[major] + m as f64 / self.inv[major]
            } else {
                lo[major]
            };
            let x1 = if self.inv[major] > 0.0 {
                self.min[major] + (m + 1) as f64 / self.inv[major]
            } else {
                hi[major]
            };
            let (xl, xr) = (x0.max(lo[major]), x1.min(hi[major]));
            let yl = lo[minor] + slope * (xl - lo[major]);
            let yr = lo[minor] + slope * (xr - lo[major]);
            let (ylo, yhi) = (yl.min(yr) - pad, yl.max(yr) + pad);
            let (ylo, yhi) = (
                ylo.max(lo[minor].min(hi[minor]) - pad),
                yhi.min(lo[minor].max(hi[minor]) + pad),
            );
            for k in self.bucket(minor, ylo)..=self.bucket(minor, yhi) {
                let (ix, iy) = if major == 0 { (m, k) } else { (k, m) };
                f(iy * self.n[0] + ix);
            }
        }
    }

    #[inline]
    fn near(&self, p: [f64; 2]) -> &[u32] {
        let k = self.bucket(1, p[1]) * self.n[0] + self.bucket(0, p[0]);
        &self.segs[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// Calls `f(vertex, segment)` for every ring vertex lying strictly inside a segment (of any
/// ring, its own included), each such pair once. Exact.
///
/// # Complexity
/// About `O(S + V * b)` for `S` segments, `V` vertices and `b` segments per bucket (a
/// handful), plus the buckets long segments cross.
pub(crate) fn vertices_inside_segments(rings: FlatRings<'_>, mut f: impl FnMut(usize, usize)) {
    let hash = SegmentHash::build(rings);
    for v in rings.segments() {
        let p = rings.points[v];
        for &s in hash.near(p) {
            let s = s as usize;
            if strictly_inside(rings.points[s], rings.points[s + 1], p) {
                f(v, s);
            }
        }
    }
}

/// Canonical bits of a coordinate, so that -0.0 and 0.0 compare equal.
#[inline]
fn key(x: f64) -> u64 {
    (x + 0.0).to_bits()
}

/// The ring index of each ring's owning cell.
fn ring_cells(shapes: &Shapes) -> Vec<u32> {
    let mut out = Vec::with_capacity(shapes.ring_start.len().saturating_sub(1));
    for c in 0..shapes.cell_count() {
        for _ in shapes.cell_rings(c) {
            out.push(c as u32);
        }
    }
    out
}

/// Sorted, deduplicated pairs `(a, b)`, `a < b`, of cells sharing a boundary piece of
/// positive length.
pub(crate) fn neighbour_pairs(shapes: &Shapes) -> Vec<(u32, u32)> {
    let rings = FlatRings {
        points: &shapes.points,
        ring_start: &shapes.ring_start,
    };
    let ring_cell = ring_cells(shapes);
    let mut seg_cell = vec![u32::MAX; shapes.points.len()];
    for (r, range) in rings.rings().enumerate() {
        for i in range {
            seg_cell[i] = ring_cell[r];
        }
    }
    let mut pairs = Vec::new();

    // Exact twins: the same two endpoints, in either direction.
    let mut twins: Vec<([u64; 4], u32)> = rings
        .segments()
        .filter_map(|s| {
            let (a, b) = (shapes.points[s], shapes.points[s + 1]);
            if a == b {
                return None;
            }
            let (ka, kb) = ([key(a[0]), key(a[1])], [key(b[0]), key(b[1])]);
            let (p, q) = if (a[0], a[1]) < (b[0], b[1]) {
                (ka, kb)
            } else {
                (kb, ka)
            };
            Some(([p[0], p[1], q[0], q[1]], seg_cell[s]))
        })
        .collect();
    twins.sort_unstable();
    for run in twins.chunk_by(|x, y| x.0 == y.0) {
        for (i, x) in run.iter().enumerate() {
            for y in &run[i + 1..] {
                if x.1 != y.1 {
                    pairs.push((x.1.min(y.1), x.1.max(y.1)));
                }
            }
        }
    }

    // Partial overlaps: a vertex strictly inside another cell's edge, with one of the
    // vertex's own edges running along that edge.
    let ring_of = |i: usize| shapes.ring_start.partition_point(|&s| s as usize <= i) - 1;
    vertices_inside_segments(rings, |v, s| {
        let (cv, cs) = (seg_cell[v], seg_cell[s]);
        if cv == cs {
            return;
        }
        let r = ring_of(v);
        let (start, end) = (
            shapes.ring_start[r] as usize,
            shapes.ring_start[r + 1] as usize,
        );
        let p = shapes.points[v];
        let prev = if v > start {
            shapes.points[v - 1]
        } else {
            shapes.points[end - 2]
        };
        let next = shapes.points[v + 1];
        let (a, b) = (shapes.points[s], shapes.points[s + 1]);
        let along = |q: [f64; 2]| q != p && orient(a, b, q) == 0.0;
        if along(prev) || along(next) {
            pairs.push((cv.min(cs), cv.max(cs)));
        }
    });
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

impl super::Grid {
    /// The cells sharing a boundary piece of positive length with `id`, sorted by id.
    /// Cells touching `id` only at a corner are not among them. Empty for an id outside the
    /// grid.
    ///
    /// # Complexity
    /// Two table reads; no allocation.
    ///
    /// ```
    /// use wangge::{Cell, Grid, Polygon};
    ///
    /// // One wide cell above two narrow ones (a T-junction), and one touching at a corner.
    /// let grid = Grid::new(vec![
    ///     Cell::new("top", vec![Polygon::rect([0.0, 1.0], [2.0, 2.0])]),
    ///     Cell::new("left", vec![Polygon::rect([0.0, 0.0], [1.0, 1.0])]),
    ///     Cell::new("right", vec![Polygon::rect([1.0, 0.0], [2.0, 1.0])]),
    ///     Cell::new("corner", vec![Polygon::rect([2.0, 2.0], [3.0, 3.0])]),
    /// ])?;
    /// let names = |n: &str| {
    ///     grid.neighbours(grid.id_of(n).unwrap()).iter().map(|&c| grid[c].name.clone()).collect::<Vec<_>>()
    /// };
    /// assert_eq!(names("top"), ["left", "right"]);
    /// assert_eq!(names("left"), ["top", "right"]);
    /// assert!(names("corner").is_empty());
    /// # Ok::<(), wangge::GridError>(())
    /// ```
    #[inline]
    pub fn neighbours(&self, id: CellId) -> &[CellId] {
        self.adjacency.of(id)
    }

    /// Whether `a` and `b` are neighbours (false for ids outside the grid).
    pub fn are_neighbours(&self, a: CellId, b: CellId) -> bool {
        self.adjacency.of(a).binary_search(&b).is_ok()
    }

    /// The cells exactly `k` steps from `id` in the neighbour graph, sorted by id (ring 0 is
    /// `id` itself). Empty for an id outside the grid or when no cell is that far.
    ///
    /// Allocates its answer; a router searching many cells should use
    /// [`Grid::rings_into`](crate::Grid::rings_into) with a reused [`RingBuf`].
    pub fn ring(&self, id: CellId, k: usize) -> Vec<CellId> {
        let mut buf = RingBuf::new();
        self.adjacency.rings_into(id, k, &mut buf);
        buf.ring(k).to_vec()
    }

    /// The cells at most `k` steps from `id`, grouped by distance: element `d` holds the
    /// cells exactly `d` steps away, sorted by id. Stops early when no cell is farther; empty
    /// for an id outside the grid.
    pub fn within(&self, id: CellId, k: usize) -> Vec<Vec<CellId>> {
        let mut buf = RingBuf::new();
        self.adjacency.rings_into(id, k, &mut buf);
        buf.rings().map(<[CellId]>::to_vec).collect()
    }

    /// Breadth-first rings around `id` up to distance `k`, into `buf` (see [`RingBuf`]).
    /// Returns false, with `buf` empty, for an id outside the grid.
    ///
    /// # Complexity
    /// Proportional to the cells found and their neighbours; no allocation once `buf` has
    /// grown to the grid's size.
    pub fn rings_into(&self, id: CellId, k: usize, buf: &mut RingBuf) -> bool {
        self.adjacency.rings_into(id, k, buf)
    }

    /// Counts describing the neighbour graph, with its build time.
    pub fn neighbour_stats(&self) -> NeighbourStats {
        self.adjacency.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cell, Grid, Polygon};

    /// Whether two closed segments are collinear and overlap with positive length, by
    /// definition.
    fn share_piece(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
        if a == b || c == d || orient(a, b, c) != 0.0 || orient(a, b, d) != 0.0 {
            return false;
        }
        let axis = usize::from(a[0] == b[0]);
        let (lo1, hi1) = (a[axis].min(b[axis]), a[axis].max(b[axis]));
        let (lo2, hi2) = (c[axis].min(d[axis]), c[axis].max(d[axis]));
        lo1.max(lo2) < hi1.min(hi2)
    }

    fn edges(cell: &Cell) -> Vec<([f64; 2], [f64; 2])> {
        cell.polygons
            .iter()
            .flat_map(|p| p.rings())
            .flat_map(|r| r.windows(2).map(|w| (w[0], w[1])))
            .collect()
    }

    /// Neighbours of every cell by comparing every edge of every pair of cells.
    fn brute_force(cells: &[Cell]) -> Vec<Vec<CellId>> {
        let e: Vec<_> = cells.iter().map(edges).collect();
        (0..cells.len())
            .map(|i| {
                (0..cells.len())
                    .filter(|&j| {
                        j != i
                            && e[i]
                                .iter()
                                .any(|&(a, b)| e[j].iter().any(|&(c, d)| share_piece(a, b, c, d)))
                    })
                    .map(|j| CellId(j as u32))
                    .collect()
            })
            .collect()
    }

    fn check(cells: Vec<Cell>) -> Grid {
        let want = brute_force(&cells);
        let grid = Grid::new(cells).unwrap();
        for id in grid.ids() {
            assert_eq!(grid.neighbours(id), want[id.index()].as_slice(), "{id}");
        }
        grid
    }

    fn sq(name: String, x: f64, y: f64, w: f64, h: f64) -> Cell {
        Cell::new(name, vec![Polygon::rect([x, y], [x + w, y + h])])
    }

    fn lattice(n: usize) -> Vec<Cell> {
        let mut cells = Vec::new();
        for j in 0..n {
            for i in 0..n {
                // Both sides of a shared line from the same expression, so that the
                // coordinates agree to the bit (x + 0.01 need not equal the next x).
                let x = |i: usize| 120.0 + i as f64 * 0.01;
                let y = |j: usize| 36.0 + j as f64 * 0.01;
                cells.push(Cell::new(
                    format!("{i},{j}"),
                    vec![Polygon::rect([x(i), y(j)], [x(i + 1), y(j + 1)])],
                ));
            }
        }
        cells
    }

    #[test]
    fn lattice_neighbours_are_the_four_sides() {
        let n = 7;
        let grid = check(lattice(n));
        let id = |i: usize, j: usize| CellId((j * n + i) as u32);
        assert_eq!(
            grid.neighbours(id(3, 3)),
            [id(3, 2), id(2, 3), id(4, 3), id(3, 4)]
        );
        assert_eq!(grid.neighbours(id(0, 0)), [id(1, 0), id(0, 1)]);
        assert!(!grid.are_neighbours(id(0, 0), id(1, 1)), "corner only");
        let s = grid.neighbour_stats();
        assert_eq!(s.pairs, 2 * n * (n - 1));
        assert_eq!((s.components, s.isolated, s.max_degree), (1, 0, 4));
    }

    #[test]
    fn bricks_and_t_junctions_are_found() {
        // Rows of bricks two units wide, every other row offset by one: each brick's long
        // edges meet two bricks above and two below with no shared endpoint.
        let mut cells = Vec::new();
        for j in 0..6 {
            let off = if j % 2 == 1 { -1.0 } else { 0.0 };
            for i in 0..5 {
                let x = off + 2.0 * i as f64;
                cells.push(sq(format!("b{i},{j}"), x, j as f64, 2.0, 1.0));
            }
        }
        // A wide cell on top, and a brick cut into two triangles beside it.
        cells.push(sq("wide".into(), 0.0, 6.0, 4.0, 1.0));
        cells.push(Cell::new(
            "tri-a",
            vec![Polygon::new(vec![
                [4.0, 6.0],
                [6.0, 6.0],
                [6.0, 7.0],
                [4.0, 6.0],
            ])],
        ));
        cells.push(Cell::new(
            "tri-b",
            vec![Polygon::new(vec![
                [4.0, 6.0],
                [6.0, 7.0],
                [4.0, 7.0],
                [4.0, 6.0],
            ])],
        ));
        // On top of "wide" (part of its edge), touching tri-b only at the point (4, 7).
        cells.push(sq("corner".into(), 3.0, 7.0, 1.0, 1.0));
        // Touches "corner" only at the point (4, 8).
        cells.push(sq("diag".into(), 4.0, 8.0, 1.0, 1.0));
        let grid = check(cells);
        let id = |n: &str| grid.id_of(n).unwrap();
        let names = |n: &str| {
            grid.neighbours(id(n))
                .iter()
                .map(|&c| grid[c].name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("b2,2"),
            ["b2,1", "b3,1", "b1,2", "b3,2", "b2,3", "b3,3"]
        );
        assert_eq!(names("wide"), ["b0,5", "b1,5", "b2,5", "tri-b", "corner"]);
        assert_eq!(names("tri-a"), ["b2,5", "b3,5", "tri-b"]);
        assert_eq!(names("corner"), ["wide"]);
        assert_eq!(names("diag"), Vec::<String>::new());
    }

    #[test]
    fn irregular_shared_vertices_and_multipolygons() {
        // A lattice whose interior vertices are jittered (shared exactly by the four cells
        // around them), one cell with a hole filled by another, one made of two parts.
        let n = 8;
        let jitter = |i: usize, j: usize| {
            let h = (i * 7919 + j * 104_729) % 97;
            if i == 0 || j == 0 || i == n || j == n {
                0.0
            } else {
                (h as f64 / 97.0 - 0.5) * 0.004
            }
        };
        let v = |i: usize, j: usize| {
            [
                120.0 + i as f64 * 0.01 + jitter(i, j),
                36.0 + j as f64 * 0.01 + jitter(j, i),
            ]
        };
        let mut cells = Vec::new();
        for j in 0..n {
            for i in 0..n {
                let ring = vec![v(i, j), v(i + 1, j), v(i + 1, j + 1), v(i, j + 1), v(i, j)];
                cells.push(Cell::new(format!("{i},{j}"), vec![Polygon::new(ring)]));
            }
        }
        let hole = Polygon::rect([121.0, 37.0], [121.01, 37.01]).exterior;
        cells.push(Cell::new(
            "donut",
            vec![Polygon {
                exterior: Polygon::rect([120.99, 36.99], [121.02, 37.02]).exterior,
                holes: vec![hole.clone()],
            }],
        ));
        cells.push(Cell::new("plug", vec![Polygon::new(hole)]));
        cells.push(Cell::new(
            "two-parts",
            vec![
                Polygon::rect([121.02, 36.99], [121.03, 37.0]),
                Polygon::rect([121.02, 37.01], [121.03, 37.02]),
            ],
        ));
        let grid = check(cells);
        let id = |n: &str| grid.id_of(n).unwrap();
        assert_eq!(grid.neighbours(id("plug")), [id("donut")]);
        assert_eq!(grid.neighbours(id("two-parts")), [id("donut")]);
        assert_eq!(grid.neighbour_stats().components, 2);
    }

    #[test]
    fn rings_are_manhattan_distance_on_a_lattice() {
        let n = 9;
        let grid = Grid::new(lattice(n)).unwrap();
        let id = |i: usize, j: usize| CellId((j * n + i) as u32);
        let start = id(4, 4);
        let mut buf = RingBuf::new();
        for k in 0..10 {
            let mut want: Vec<CellId> = (0..n * n)
                .filter(|&c| (c % n).abs_diff(4) + (c / n).abs_diff(4) == k)
                .map(|c| CellId(c as u32))
                .collect();
            want.sort();
            assert_eq!(grid.ring(start, k), want, "k={k}");
            assert!(grid.rings_into(start, k, &mut buf));
            assert_eq!(buf.ring(k), want.as_slice());
        }
        let within = grid.within(start, 20);
        assert_eq!(
            within.len(),
            9,
            "rings stop at the farthest cell (distance 8)"
        );
        assert_eq!(within.iter().map(Vec::len).sum::<usize>(), n * n);
        assert_eq!(within[0], [start]);
        // Reuse across starts leaves no trace of the previous search.
        assert!(grid.rings_into(id(0, 0), 1, &mut buf));
        assert_eq!(buf.cells(), [id(0, 0), id(1, 0), id(0, 1)]);
        assert_eq!(buf.depth(), 2);
        assert!(buf.ring(2).is_empty());
    }

    #[test]
    fn unknown_ids_are_empty_not_a_panic() {
        let grid = Grid::new(lattice(2)).unwrap();
        let far = CellId(99);
        assert!(grid.neighbours(far).is_empty());
        assert!(grid.ring(far, 1).is_empty());
        assert!(grid.within(far, 1).is_empty());
        assert!(!grid.are_neighbours(far, CellId(0)));
        let mut buf = RingBuf::new();
        assert!(grid.rings_into(CellId(0), 1, &mut buf));
        assert!(!grid.rings_into(far, 1, &mut buf));
        assert_eq!(buf.depth(), 0);
        assert!(buf.cells().is_empty());
    }

    #[test]
    fn stamp_wraparound_resets_marks() {
        let grid = Grid::new(lattice(3)).unwrap();
        let mut buf = RingBuf::new();
        assert!(grid.rings_into(CellId(4), 1, &mut buf));
        buf.stamp = u32::MAX - 1;
        for _ in 0..3 {
            assert!(grid.rings_into(CellId(4), 1, &mut buf));
            assert_eq!(buf.ring(1).len(), 4);
        }
    }
}
