//! Point-to-cell lookup: an R-tree of cell envelopes (the reference path) and a flat
//! bucket table (the fast path), both exact.
//!
//! # The bucket table
//!
//! The grid's bounding box is cut into `nx * ny` buckets, about
//! [`BUCKETS_PER_CELL`] per cell, addressed straight from the coordinates. Each bucket
//! is classified once, at build time, against a copy of itself inflated by a small margin
//! (so that a point which rounding sends to a neighbouring bucket is still inside the
//! rectangle that bucket was classified on):
//!
//! ```text
//!   pure      no cell edge touches it: every point in it has the same answer,
//!             stored in the bucket itself (most buckets)
//!   one edge  a single straight edge crosses it and both ends lie outside: one exact
//!             orientation test picks the answer for the left side, the right side or
//!             the edge itself
//!   mixed     anything else (a vertex, several edges): the cells to test exactly,
//!             in input order, then the answer if none of them covers the point
//! ```
//!
//! A table entry is a `u32`: two tag bits and a 30-bit payload (a cell, or an offset into
//! the edge or mixed tables). The lookup allocates nothing and takes no lock.

use super::cell::CellId;
use super::geometry::{BBox, Shapes, Side, bbox_contains, orient, ring_side};
use super::location::Location;
use crate::csr::Csr;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// How many buckets the table aims for per cell. More buckets mean fewer points that
/// need an exact test, at 4 bytes per bucket.
pub const BUCKETS_PER_CELL: usize = 32;

/// The table never grows beyond this many buckets (256 MiB).
const MAX_BUCKETS: usize = 1 << 26;
/// The most (bucket, cell) or (bucket, edge) pairs the build may hold at once: overlapping
/// giant cells could ask for more than memory allows, and the build refuses instead.
const MAX_ROW_ITEMS: u64 = 1 << 27;
/// The most bucket tests the edges' envelopes may ask for (a long slanted edge is tested
/// against every bucket of its envelope): about a second of work.
const MAX_EDGE_WORK: u64 = 1 << 28;

const TAG_SHIFT: u32 = 30;
const PAYLOAD: u32 = (1 << TAG_SHIFT) - 1;
const TAG_CELL: u32 = 0;
const TAG_EDGE: u32 = 1;
const TAG_STAR: u32 = 2;
const TAG_MIXED: u32 = 3;
/// Payload meaning "no cell" (outside the grid).
pub(crate) const NO_CELL: u32 = PAYLOAD;
/// The largest number of cells the table can encode.
pub(crate) const MAX_CELLS: usize = PAYLOAD as usize;

/// A bucket crossed by one straight edge `a -> b`.
#[derive(Debug, Clone, Copy)]
struct EdgeBucket {
    a: [f64; 2],
    b: [f64; 2],
    /// Answer for points strictly left of `a -> b`.
    left: u32,
    /// Answer for points strictly right of it.
    right: u32,
}

/// One item of a star run. The run's header holds the vertex `V` in `p`, the number of rays
/// in `n` and the answer for `V` itself in `cell`; each ray item holds the far end of the
/// ray in `p`, its half-plane around `V` in `n` and, in `cell`, the answer for the sector
/// that starts at this ray and turns counter-clockwise to the next.
#[derive(Debug, Clone, Copy)]
struct StarItem {
    p: [f64; 2],
    cell: u32,
    n: u32,
}

/// Counts that describe a built bucket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Buckets along x.
    pub nx: usize,
    /// Buckets along y.
    pub ny: usize,
    /// Buckets answered without any test.
    pub pure: usize,
    /// Buckets answered by one orientation test.
    pub one_edge: usize,
    /// Buckets around one vertex, answered by a few orientation tests.
    pub star: usize,
    /// Buckets that need exact point-in-polygon tests.
    pub mixed: usize,
    /// Heap bytes of the bucket table and its side tables (not the cells' geometry).
    pub bytes: usize,
    /// How long building the table took.
    pub build_time: std::time::Duration,
}

/// The fast exact lookup.
#[derive(Debug, Clone)]
pub(crate) struct BucketIndex {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    inv_w: f64,
    inv_h: f64,
    nx: usize,
    ny: usize,
    table: Vec<u32>,
    edges: Vec<EdgeBucket>,
    /// Runs of a header and its rays.
    stars: Vec<StarItem>,
    /// Runs of `[n, (cell, first point, point count) * n, default]`; a point count of 0
    /// means the cell has several rings and takes the general test.
    mixed: Vec<u32>,
    stats: IndexStats,
}

impl BucketIndex {
    /// Builds the table for `shapes` (at least one cell, fewer than [`MAX_CELLS`]); `None`
    /// if the cells' envelopes overlap so much that the build would not fit in memory.
    pub(crate) fn build(shapes: &Shapes) -> Option<BucketIndex> {
        let started = std::time::Instant::now();
        let n = shapes.cell_count();
        let bb = shapes.cell_bbox.iter().fold(shapes.cell_bbox[0], |a, b| {
            super::geometry::bbox_union(&a, b)
        });
        let (w_all, h_all) = (
            (bb[2] - bb[0]).max(f64::MIN_POSITIVE),
            (bb[3] - bb[1]).max(f64::MIN_POSITIVE),
        );
        // Buckets shaped like the average cell, so that a cell spans a square of them.
        let (sum_w, sum_h) = shapes.cell_bbox.iter().fold((0.0, 0.0), |(sw, sh), b| {
            (sw + (b[2] - b[0]), sh + (b[3] - b[1]))
        });
        let aspect = if sum_w > 0.0 && sum_h > 0.0 {
            sum_w / sum_h
        } else {
            1.0
        };
        let target = (n.saturating_mul(BUCKETS_PER_CELL)).clamp(1, MAX_BUCKETS) as f64;
        let side = (w_all * h_all / target).sqrt();
        let nx = ((w_all / (side * aspect.sqrt())).ceil() as usize).clamp(1, MAX_BUCKETS);
        let ny =
            ((h_all / (side / aspect.sqrt())).ceil() as usize).clamp(1, (MAX_BUCKETS / nx).max(1));
        let (w, h) = (w_all / nx as f64, h_all / ny as f64);
        // Margin around each bucket: far beyond the rounding error of the index arithmetic
        // (a few ulps of the coordinates), still tiny next to a bucket.
        let scale = bb[0]
            .abs()
            .max(bb[2].abs())
            .max(bb[1].abs())
            .max(bb[3].abs())
            .max(1.0);
        let mx = w * 1e-6 + scale * 1e-13;
        let my = h * 1e-6 + scale * 1e-13;
        let rect = |i: usize, j: usize| -> BBox {
            [
                bb[0] + i as f64 * w - mx,
                bb[1] + j as f64 * h - my,
                bb[0] + (i + 1) as f64 * w + mx,
                bb[1] + (j + 1) as f64 * h + my,
            ]
        };
        // Bucket range (inclusive) that an inflated box may touch.
        let range = |b: &BBox| -> (usize, usize, usize, usize) {
            let ix = |x: f64| (((x - bb[0]) / w).floor().max(0.0) as usize).min(nx - 1);
            let iy = |y: f64| (((y - bb[1]) / h).floor().max(0.0) as usize).min(ny - 1);
            (
                ix(b[0] - 2.0 * mx),
                iy(b[1] - 2.0 * my),
                ix(b[2] + 2.0 * mx),
                iy(b[3] + 2.0 * my),
            )
        };
        let buckets = nx * ny;
        // Refuse before any work that would be refused at the end: the pairs are counted
        // from the envelopes' bucket ranges in O(cells + edges), where emitting them could
        // take minutes (100,000 stacked cells ask for 3e11).
        let span = |b: &BBox| -> u64 {
            let (i0, j0, i1, j1) = range(b);
            (i1 - i0 + 1) as u64 * (j1 - j0 + 1) as u64
        };
        let mut cell_pairs = 0u64;
        for cb in &shapes.cell_bbox {
            cell_pairs = cell_pairs.saturating_add(span(cb));
            if cell_pairs > MAX_ROW_ITEMS {
                return None;
            }
        }
        let mut edge_work = 0u64;
        for r in 0..shapes.ring_start.len() - 1 {
            for e in shapes.ring(r).windows(2) {
                let (a, b) = (e[0], e[1]);
                let env = [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[0].max(b[0]),
                    a[1].max(b[1]),
                ];
                edge_work = edge_work.saturating_add(span(&env));
                if edge_work > MAX_EDGE_WORK {
                    return None;
                }
            }
        }

        // Cells whose envelope meets each bucket, in input order.
        let cands: Csr<u32> = Csr::build(buckets, MAX_ROW_ITEMS, |emit| {
            for (c, cb) in shapes.cell_bbox.iter().enumerate() {
                let (i0, j0, i1, j1) = range(cb);
                for j in j0..=j1 {
                    for i in i0..=i1 {
                        emit(j * nx + i, c as u32);
                    }
                }
            }
        })?;
        // Edges (by the index of their first vertex) that may touch each bucket.
        let ring_cell: Vec<u32> = {
            let mut v = vec![0u32; shapes.ring_start.len() - 1];
            for c in 0..n {
                for r in shapes.cell_rings(c) {
                    v[r] = c as u32;
                }
            }
            v
        };
        let edge_rows: Csr<(u32, u32)> = Csr::build(buckets, MAX_ROW_ITEMS, |emit| {
            for (r, &cell) in ring_cell.iter().enumerate() {
                let first = shapes.ring_start[r] as usize;
                for (k, e) in shapes.ring(r).windows(2).enumerate() {
                    let (a, b) = (e[0], e[1]);
                    if a == b {
                        continue;
                    }
                    let (i0, j0, i1, j1) = range(&[
                        a[0].min(b[0]),
                        a[1].min(b[1]),
                        a[0].max(b[0]),
                        a[1].max(b[1]),
                    ]);
                    for j in j0..=j1 {
                        for i in i0..=i1 {
                            if segment_may_touch(a, b, &rect(i, j)) {
                                emit(j * nx + i, (cell, (first + k) as u32));
                            }
                        }
                    }
                }
            }
        })?;

        let mut table = vec![0u32; buckets];
        let mut edges = Vec::new();
        let mut edge_ids: std::collections::HashMap<[u64; 5], u32> =
            std::collections::HashMap::new();
        let mut stars = Vec::new();
        let mut mixed = Vec::new();
        let mut stats = IndexStats {
            nx,
            ny,
            ..IndexStats::default()
        };
        let first_cover = |cands: &[u32], p: [f64; 2]| -> u32 {
            cands
                .iter()
                .copied()
                .find(|&c| shapes.covers(c as usize, p))
                .unwrap_or(NO_CELL)
        };
        let mut edge_cells: Vec<u32> = Vec::new();
        for j in 0..ny {
            for i in 0..nx {
                let bucket = j * nx + i;
                let r = rect(i, j);
                let cands = cands.row(bucket);
                let touching = edge_rows.row(bucket);
                let center = [(r[0] + r[2]) * 0.5, (r[1] + r[3]) * 0.5];
                if touching.is_empty() {
                    table[bucket] = TAG_CELL << TAG_SHIFT | first_cover(cands, center);
                    stats.pure += 1;
                    continue;
                }
                if let Some((a, b)) = single_segment(shapes, touching, &r) {
                    let corners = [[r[0], r[1]], [r[2], r[1]], [r[2], r[3]], [r[0], r[3]]];
                    let side_sample = |want_left: bool| {
                        corners.iter().copied().find(|&q| {
                            let o = orient(a, b, q);
                            if want_left { o > 0.0 } else { o < 0.0 }
                        })
                    };
                    let left = side_sample(true).map_or(NO_CELL, |q| first_cover(cands, q));
                    let right = side_sample(false).map_or(NO_CELL, |q| first_cover(cands, q));
                    // A segment crosses several buckets with the same answers: share them,
                    // which keeps the side table small enough to stay in cache.
                    let key = [
                        a[0].to_bits(),
                        a[1].to_bits(),
                        b[0].to_bits(),
                        b[1].to_bits(),
                        u64::from(left) << 32 | u64::from(right),
                    ];
                    let at = *edge_ids.entry(key).or_insert_with(|| {
                        edges.push(EdgeBucket { a, b, left, right });
                        (edges.len() - 1) as u32
                    });
                    table[bucket] = TAG_EDGE << TAG_SHIFT | at;
                    stats.one_edge += 1;
                    continue;
                }
                if let Some(run) = star(shapes, touching, &r, |q| first_cover(cands, q)) {
                    table[bucket] = TAG_STAR << TAG_SHIFT | stars.len() as u32;
                    stars.extend_from_slice(&run);
                    stats.star += 1;
                    continue;
                }
                edge_cells.clear();
                edge_cells.extend(touching.iter().map(|&(c, _)| c));
                edge_cells.sort_unstable();
                edge_cells.dedup();
                let start = mixed.len();
                mixed.push(0);
                let mut default = NO_CELL;
                let mut n = 0;
                for &c in cands {
                    if edge_cells.binary_search(&c).is_ok() {
                        let (first, len) = shapes.single_ring(c as usize).unwrap_or((0, 0));
                        mixed.extend_from_slice(&[c, first, len]);
                        n += 1;
                    } else if shapes.covers(c as usize, center) {
                        // No edge of c comes near: c covers the whole bucket, and later
                        // cells can never win here.
                        default = c;
                        break;
                    }
                }
                mixed[start] = n;
                mixed.push(default);
                table[bucket] = TAG_MIXED << TAG_SHIFT | start as u32;
                stats.mixed += 1;
            }
        }
        edges.shrink_to_fit();
        stars.shrink_to_fit();
        mixed.shrink_to_fit();
        stats.bytes = table.capacity() * 4
            + edges.capacity() * std::mem::size_of::<EdgeBucket>()
            + stars.capacity() * std::mem::size_of::<StarItem>()
            + mixed.capacity() * 4;
        stats.build_time = started.elapsed();
        Some(BucketIndex {
            x0: bb[0],
            y0: bb[1],
            x1: bb[2],
            y1: bb[3],
            inv_w: nx as f64 / w_all,
            inv_h: ny as f64 / h_all,
            nx,
            ny,
            table,
            edges,
            stars,
            mixed,
            stats,
        })
    }

    pub(crate) fn stats(&self) -> IndexStats {
        self.stats
    }

    /// Whether the payloads fit: the table addresses its side tables with 30 bits.
    pub(crate) fn fits(&self) -> bool {
        self.edges.len() < PAYLOAD as usize
            && self.stars.len() < PAYLOAD as usize
            && self.mixed.len() < PAYLOAD as usize
    }

    /// The table entry for `p`, or an "outside" entry for points off the bounding box.
    #[inline(always)]
    fn entry(&self, p: [f64; 2]) -> u32 {
        if !(p[0] >= self.x0 && p[0] <= self.x1 && p[1] >= self.y0 && p[1] <= self.y1) {
            return NO_CELL;
        }
        let i = (((p[0] - self.x0) * self.inv_w) as usize).min(self.nx - 1);
        let j = (((p[1] - self.y0) * self.inv_h) as usize).min(self.ny - 1);
        self.table[j * self.nx + i]
    }

    /// The answer behind an entry. Exact.
    #[inline(always)]
    fn resolve(&self, shapes: &Shapes, entry: u32, p: [f64; 2]) -> u32 {
        let payload = entry & PAYLOAD;
        match entry >> TAG_SHIFT {
            TAG_CELL => payload,
            TAG_EDGE => {
                let e = &self.edges[payload as usize];
                let o = orient(e.a, e.b, p);
                // On the edge: covered by every cell on either side; the first wins.
                let side = if o > 0.0 { e.left } else { e.right };
                if o == 0.0 { e.left.min(e.right) } else { side }
            }
            TAG_STAR => {
                let start = payload as usize;
                let head = self.stars[start];
                let rays = &self.stars[start + 1..start + 1 + head.n as usize];
                match star_sector(head.p, rays, p) {
                    Some(Ok(sector)) => rays[sector].cell,
                    // On ray i: covered by the cells of both sectors beside it.
                    Some(Err(ray)) => rays[ray]
                        .cell
                        .min(rays[(ray + rays.len() - 1) % rays.len()].cell),
                    // The vertex itself: covered by every cell around it.
                    None => head.cell,
                }
            }
            _ => {
                let start = payload as usize;
                let n = self.mixed[start] as usize;
                let run = &self.mixed[start + 1..start + 2 + 3 * n];
                for item in run[..3 * n].chunks_exact(3) {
                    let (c, first, len) = (item[0], item[1] as usize, item[2] as usize);
                    let covered = if len > 0 {
                        ring_side(&shapes.points[first..first + len], p) != Side::Outside
                    } else {
                        shapes.covers(c as usize, p)
                    };
                    if covered {
                        return c;
                    }
                }
                run[3 * n]
            }
        }
    }

    /// Touches the side-table data an entry will need, so that a batch's cache misses
    /// overlap instead of coming one after another.
    #[inline(always)]
    fn touch(&self, entry: u32) -> u64 {
        let payload = (entry & PAYLOAD) as usize;
        match entry >> TAG_SHIFT {
            TAG_CELL => 0,
            TAG_EDGE => self.edges[payload].a[0].to_bits(),
            TAG_STAR => self.stars[payload].p[0].to_bits(),
            _ => u64::from(self.mixed[payload]),
        }
    }

    /// The first cell covering `p`, or [`NO_CELL`].
    #[inline]
    pub(crate) fn locate(&self, shapes: &Shapes, p: [f64; 2]) -> u32 {
        self.resolve(shapes, self.entry(p), p)
    }

    /// Locates `points` into `out` (cleared first), in chunks whose table reads are issued
    /// back to back so that their cache misses overlap.
    pub(crate) fn locate_into(
        &self,
        shapes: &Shapes,
        points: &[Location],
        out: &mut Vec<Option<CellId>>,
    ) {
        const CHUNK: usize = 64;
        out.clear();
        out.reserve(points.len());
        let mut entries = [0u32; CHUNK];
        let mut slots = [0u32; CHUNK];
        let mut inside = [false; CHUNK];
        let mut answers = [NO_CELL; CHUNK];
        let mut pending = [0u8; CHUNK];
        let mut touched = 0u64;
        let (x0, x1, y0, y1) = (self.x0, self.x1, self.y0, self.y1);
        let (inv_w, inv_h) = (self.inv_w, self.inv_h);
        let (last_x, last_y) = (self.nx - 1, self.ny - 1);
        let nx = self.nx;
        let table = &self.table[..];
        for pts in points.chunks(CHUNK) {
            // Stage 1: the table slot of every point (arithmetic only; a point off the
            // box gets the nearest slot on its edge and is answered "outside" below), then
            // every table read of the chunk in a loop of nothing else, so that many misses
            // are in flight at once (a loop with the arithmetic in it keeps only a few).
            for ((slot, inside), p) in slots.iter_mut().zip(inside.iter_mut()).zip(pts) {
                let (x, y) = (p.lon(), p.lat());
                *inside = x >= x0 && x <= x1 && y >= y0 && y <= y1;
                // `as usize` saturates: NaN and negatives give 0.
                let i = (((x - x0) * inv_w) as usize).min(last_x);
                let j = (((y - y0) * inv_h) as usize).min(last_y);
                *slot = (j * nx + i) as u32;
            }
            for (e, &slot) in entries.iter_mut().zip(&slots[..pts.len()]) {
                *e = table.get(slot as usize).copied().unwrap_or(NO_CELL);
            }
            for (e, &inside) in entries.iter_mut().zip(&inside[..pts.len()]) {
                if !inside {
                    *e = NO_CELL;
                }
            }
            // Stage 2: pure buckets are answered; the rest are listed, without branches.
            let mut n = 0;
            for (k, &e) in entries[..pts.len()].iter().enumerate() {
                answers[k] = e & PAYLOAD;
                pending[n] = k as u8;
                n += usize::from(e >> TAG_SHIFT != TAG_CELL);
            }
            // Stage 3: the side-table reads of the listed points, back to back.
            for &k in &pending[..n] {
                touched ^= self.touch(entries[usize::from(k)]);
            }
            // Stage 4: exact tests, on data now in cache.
            for &k in &pending[..n] {
                let k = usize::from(k);
                let p = &pts[k];
                answers[k] = self.resolve(shapes, entries[k], [p.lon(), p.lat()]);
            }
            out.extend(answers[..pts.len()].iter().map(|&a| cell_id(a)));
        }
        std::hint::black_box(touched);
    }
}

/// The id behind a lookup answer.
#[inline(always)]
pub(crate) fn cell_id(answer: u32) -> Option<CellId> {
    (answer != NO_CELL).then_some(CellId(answer))
}

/// Half-plane of `q` around `v`: 0 for directions in [0, 180) degrees, 1 for [180, 360).
#[inline(always)]
fn half(v: [f64; 2], q: [f64; 2]) -> u32 {
    u32::from(!(q[1] > v[1] || (q[1] == v[1] && q[0] > v[0])))
}

/// Exact comparison of the directions `v -> a` and `v -> b` by angle from +x.
#[inline(always)]
fn angle_cmp(v: [f64; 2], a: [f64; 2], ha: u32, b: [f64; 2], hb: u32) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    if ha != hb {
        return ha.cmp(&hb);
    }
    let o = orient(v, a, b);
    if o > 0.0 {
        Less
    } else if o < 0.0 {
        Greater
    } else {
        Equal
    }
}

/// The sector of a star that `p` lies in (`Ok(i)`: between ray i and ray i + 1), the ray it
/// lies on (`Err(i)`), or `None` for the vertex itself. Rays are sorted by angle.
#[inline(always)]
fn star_sector(v: [f64; 2], rays: &[StarItem], p: [f64; 2]) -> Option<Result<usize, usize>> {
    if p == v {
        return None;
    }
    let hp = half(v, p);
    let mut sector = rays.len() - 1;
    for (i, r) in rays.iter().enumerate() {
        match angle_cmp(v, r.p, r.n, p, hp) {
            std::cmp::Ordering::Less => sector = i,
            std::cmp::Ordering::Equal => return Some(Err(i)),
            std::cmp::Ordering::Greater => break,
        }
    }
    Some(Ok(sector))
}

/// A star run for a bucket whose touching edges all start at one vertex inside it and end
/// outside it, with the answer of each sector from an exactly verified sample point. `None`
/// when the bucket is not such a star or no sample can be verified.
fn star(
    shapes: &Shapes,
    touching: &[(u32, u32)],
    r: &BBox,
    answer: impl Fn([f64; 2]) -> u32,
) -> Option<Vec<StarItem>> {
    let (a0, b0) = (
        shapes.points[touching[0].1 as usize],
        shapes.points[touching[0].1 as usize + 1],
    );
    let in_r = |q: [f64; 2]| bbox_contains(r, q);
    let v = match (in_r(a0), in_r(b0)) {
        (true, false) => a0,
        (false, true) => b0,
        _ => return None,
    };
    let mut rays: Vec<StarItem> = Vec::with_capacity(touching.len());
    for &(_, k) in touching {
        let (a, b) = (shapes.points[k as usize], shapes.points[k as usize + 1]);
        let far = if a == v && !in_r(b) {
            b
        } else if b == v && !in_r(a) {
            a
        } else {
            return None;
        };
        rays.push(StarItem {
            p: far,
            cell: NO_CELL,
            n: half(v, far),
        });
    }
    rays.sort_by(|x, y| angle_cmp(v, x.p, x.n, y.p, y.n));
    // Rays in one direction coincide inside the bucket (shared edges, collinear overlaps).
    rays.dedup_by(|x, y| angle_cmp(v, x.p, x.n, y.p, y.n) == std::cmp::Ordering::Equal);
    if rays.len() < 2 {
        return None;
    }
    // Room around v inside the bucket for sample points.
    let room = (v[0] - r[0])
        .min(r[2] - v[0])
        .min(v[1] - r[1])
        .min(r[3] - v[1])
        * 0.5;
    if room <= 0.0 {
        return None;
    }
    let unit = |q: [f64; 2]| {
        let (dx, dy) = (q[0] - v[0], q[1] - v[1]);
        let len = dx.hypot(dy);
        [dx / len, dy / len]
    };
    let k = rays.len();
    let mut min_all = NO_CELL;
    for i in 0..k {
        let (ra, rb) = (rays[i].p, rays[(i + 1) % k].p);
        let (ua, ub) = (unit(ra), unit(rb));
        let o = orient(v, ra, rb);
        let d = if k == 2 && o == 0.0 {
            // Two opposite rays: the sector is a half-plane, left of the first ray.
            [-ua[1], ua[0]]
        } else if o > 0.0 {
            [ua[0] + ub[0], ua[1] + ub[1]]
        } else {
            [-(ua[0] + ub[0]), -(ua[1] + ub[1])]
        };
        let len = d[0].hypot(d[1]);
        if len <= 1e-9 {
            return None;
        }
        let sample = [v[0] + d[0] / len * room, v[1] + d[1] / len * room];
        if !in_r(sample) || star_sector(v, &rays, sample) != Some(Ok(i)) {
            return None;
        }
        rays[i].cell = answer(sample);
        min_all = min_all.min(rays[i].cell);
    }
    let mut run = Vec::with_capacity(k + 1);
    run.push(StarItem {
        p: v,
        cell: min_all,
        n: k as u32,
    });
    run.extend(rays);
    Some(run)
}

/// The one straight segment behind all edges touching the bucket, if there is exactly one
/// (an edge shared by two cells counts once) and both its ends lie outside the bucket.
fn single_segment(
    shapes: &Shapes,
    touching: &[(u32, u32)],
    r: &BBox,
) -> Option<([f64; 2], [f64; 2])> {
    let norm = |k: u32| {
        let (a, b) = (shapes.points[k as usize], shapes.points[k as usize + 1]);
        if (a[0], a[1]) <= (b[0], b[1]) {
            (a, b)
        } else {
            (b, a)
        }
    };
    let first = norm(touching[0].1);
    if touching.iter().any(|&(_, k)| norm(k) != first) {
        return None;
    }
    let (a, b) = first;
    (!bbox_contains(r, a) && !bbox_contains(r, b)).then_some((a, b))
}

/// Whether segment `a-b` may touch the closed box `r`. Never says no wrongly: a sign is
/// trusted only when it exceeds the rounding error of its own computation.
fn segment_may_touch(a: [f64; 2], b: [f64; 2], r: &BBox) -> bool {
    if a[0].max(b[0]) < r[0]
        || a[0].min(b[0]) > r[2]
        || a[1].max(b[1]) < r[1]
        || a[1].min(b[1]) > r[3]
    {
        return false;
    }
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut pos, mut neg) = (false, false);
    for q in [[r[0], r[1]], [r[2], r[1]], [r[2], r[3]], [r[0], r[3]]] {
        let (u, v) = (dx * (q[1] - a[1]), dy * (q[0] - a[0]));
        let cross = u - v;
        let err = 1e-12 * (u.abs() + v.abs());
        if cross > err {
            pos = true;
        } else if cross < -err {
            neg = true;
        } else {
            return true;
        }
    }
    pos && neg
}

/// The reference lookup: an R-tree of cell envelopes, then the exact test on every
/// candidate, keeping the first in input order.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopeTree {
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
}

impl EnvelopeTree {
    pub(crate) fn build(shapes: &Shapes) -> EnvelopeTree {
        let items = shapes
            .cell_bbox
            .iter()
            .enumerate()
            .map(|(c, b)| {
                GeomWithData::new(
                    Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]),
                    c as u32,
                )
            })
            .collect();
        EnvelopeTree {
            tree: RTree::bulk_load(items),
        }
    }

    pub(crate) fn locate(&self, shapes: &Shapes, p: [f64; 2]) -> u32 {
        let mut best = NO_CELL;
        for item in self.tree.locate_all_at_point(p) {
            if item.data < best && shapes.covers(item.data as usize, p) {
                best = item.data;
            }
        }
        best
    }

    /// Cells whose envelope meets the box `[min, max]`.
    pub(crate) fn envelope_hits(
        &self,
        min: [f64; 2],
        max: [f64; 2],
    ) -> impl Iterator<Item = u32> + '_ {
        self.tree
            .locate_in_envelope_intersecting(AABB::from_corners(min, max))
            .map(|i| i.data)
    }
}
