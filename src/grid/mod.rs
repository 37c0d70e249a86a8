//! The spatial grid: cells read from GeoJSON or built in code, and exact point-to-cell
//! location.
//!
//! ```text
//!   GeoJSON / Vec<Cell> ──► validate ──► Shapes (flat rings) ──┬─► BucketIndex  (fast path)
//!                           (every problem,                     └─► EnvelopeTree (reference)
//!                            typed)
//!   Location ──► Grid::locate ──► Some(CellId) | None (outside the grid)
//! ```
//!
//! # Semantics of `locate`
//!
//! A point belongs to the first cell, in the grid's input order, whose closed area
//! (boundary included) covers it. So a point inside a cell belongs to it; a point on an
//! edge or vertex shared by several cells belongs to exactly one, the earliest; a point in a
//! hole that no cell fills, or off every cell, is outside (`None`). All predicates are
//! exact: coordinate comparisons and adaptive-precision orientation, so answers agree with
//! GEOS `covers` even for points on edges or a hair (1e-12 degrees) off them.

mod audit;
mod cell;
mod error;
pub mod generate;
mod geojson;
pub(crate) mod geometry;
mod index;
mod location;
mod neighbours;
mod validate;

pub use audit::{
    AuditReport, InvalidCell, Jurisdiction, JurisdictionError, MAX_MEASURED_PAIRS,
    NEGLIGIBLE_AREA_M2, Overlap, Region, SLIVER_WIDTH_M, Slivers,
};
pub use cell::{Cell, CellId, Polygon, Ring};
pub use error::{CellProblem, CellProblemKind, GridError, RingRef};
pub use index::{BUCKETS_PER_CELL, IndexStats};
pub use location::{EARTH_RADIUS_M, Location, LocationError, M_PER_DEG};
pub use neighbours::{NeighbourStats, RingBuf};

use geometry::Shapes;
use index::{BucketIndex, EnvelopeTree, MAX_CELLS, NO_CELL, cell_id};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A city's grid: cells in input order, with their exact geometry and lookup indexes.
///
/// Immutable once built (a change of geometry means building a new grid), and so `Send +
/// Sync`: share it across threads behind an `Arc`.
///
/// ```
/// use wangge::{Cell, Grid, Location, Polygon};
///
/// let grid = Grid::new(vec![
///     Cell::new("A", vec![Polygon::rect([0.0, 0.0], [1.0, 1.0])]),
///     Cell::new("B", vec![Polygon::rect([1.0, 0.0], [2.0, 1.0])]),
/// ])?;
/// let name = |lon, lat| {
///     grid.locate(Location::new(lon, lat).unwrap()).map(|id| grid[id].name.as_str())
/// };
/// assert_eq!(name(0.5, 0.5), Some("A"));
/// assert_eq!(name(1.0, 0.5), Some("A")); // shared edge: the first cell in input order
/// assert_eq!(name(1.5, 0.5), Some("B"));
/// assert_eq!(name(3.0, 0.5), None); // outside the grid
/// # Ok::<(), wangge::GridError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Grid {
    cells: Vec<Cell>,
    by_name: HashMap<String, CellId>,
    shapes: Shapes,
    buckets: BucketIndex,
    tree: EnvelopeTree,
    adjacency: neighbours::Adjacency,
    build_time: Duration,
}

impl Grid {
    /// Validates `cells` and builds the indexes.
    ///
    /// # Errors
    /// [`GridError::Empty`] for no cells, [`GridError::Cells`] listing every problem of
    /// every cell (duplicate names, short, open, degenerate or self-intersecting rings,
    /// non-finite or out-of-range coordinates, rings too complex to check),
    /// [`GridError::TooLarge`] past 2^30 cells or envelopes stacked too deep,
    /// [`GridError::TooCostly`] where the neighbour search would do far more work than the
    /// grid's size suggests. Each refusal is decided before the work it avoids.
    ///
    /// # Complexity
    /// About `O(V + B)` for `V` vertices and `B` buckets (32 per cell), plus the
    /// self-intersection check of each ring (a sweep over x).
    pub fn new(cells: Vec<Cell>) -> Result<Grid, GridError> {
        let started = Instant::now();
        if cells.is_empty() {
            return Err(GridError::Empty);
        }
        if cells.len() >= MAX_CELLS {
            return Err(GridError::TooLarge { count: cells.len() });
        }
        let vertices: usize = cells
            .iter()
            .flat_map(|c| &c.polygons)
            .flat_map(|p| p.rings())
            .map(Vec::len)
            .sum();
        if vertices >= u32::MAX as usize {
            return Err(GridError::TooLarge { count: vertices });
        }
        let problems = validate::check_cells(&cells);
        if !problems.is_empty() {
            return Err(GridError::Cells(problems));
        }
        let shapes = Shapes::pack(&cells);
        let (visits, tests) = segment_hash_work(&shapes);
        let edges = shapes.points.len() - (shapes.ring_start.len() - 1);
        if visits > MAX_SEGMENT_HASH_WORK {
            return Err(GridError::TooCostly {
                reason: format!(
                    "the neighbour search would walk about {visits:.1e} buckets for {edges} edges (at most {MAX_SEGMENT_HASH_WORK:.1e}): edges far longer than the grid's spacing, or stacked"
                ),
            });
        }
        if tests > MAX_SEGMENT_HASH_WORK {
            return Err(GridError::TooCostly {
                reason: format!(
                    "the neighbour search would make about {tests:.1e} vertex-edge tests for {edges} edges (at most {MAX_SEGMENT_HASH_WORK:.1e}): cells crowded into a tiny part of the grid's extent"
                ),
            });
        }
        let buckets = BucketIndex::build(&shapes)
            .filter(BucketIndex::fits)
            .ok_or(GridError::TooLarge { count: cells.len() })?;
        let tree = EnvelopeTree::build(&shapes);
        let adjacency = neighbours::Adjacency::build(&shapes);
        let by_name = cells
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), CellId(i as u32)))
            .collect();
        Ok(Grid {
            cells,
            by_name,
            shapes,
            buckets,
            tree,
            adjacency,
            build_time: started.elapsed(),
        })
    }

    /// Reads a GeoJSON FeatureCollection: one feature per cell, a Polygon or MultiPolygon
    /// in WGS84 lon/lat, a unique string property `id`, optional string properties
    /// `community`, `street` and `district`. Coordinates are read exactly.
    ///
    /// # Errors
    /// [`GridError::Json`] for text that is not JSON, [`GridError::NotFeatureCollection`],
    /// and otherwise [`GridError::Cells`] naming each bad feature (index and id) with every
    /// problem found: missing or non-string `id`, geometry of another type, empty or
    /// malformed geometry, and all the problems [`Grid::new`] checks.
    pub fn from_geojson(text: &str) -> Result<Grid, GridError> {
        let features = geojson::read_features(text)?;
        if features.iter().all(Result::is_ok) {
            return Grid::new(features.into_iter().flatten().collect());
        }
        // Report everything at once: what GeoJSON got wrong, and the problems of the
        // features that could be read.
        let mut problems = Vec::new();
        let mut readable = Vec::new();
        let mut readable_index = Vec::new();
        for (index, feature) in features.into_iter().enumerate() {
            match feature {
                Ok(cell) => {
                    readable.push(cell);
                    readable_index.push(index);
                }
                Err((id, kinds)) => problems.extend(kinds.into_iter().map(|kind| CellProblem {
                    index,
                    id: id.clone(),
                    kind,
                })),
            }
        }
        for mut p in validate::check_cells(&readable) {
            p.index = readable_index[p.index];
            if let CellProblemKind::DuplicateId { first } = &mut p.kind {
                *first = readable_index[*first];
            }
            problems.push(p);
        }
        problems.sort_by_key(|p| p.index);
        Err(GridError::Cells(problems))
    }

    /// The grid as a GeoJSON FeatureCollection that [`Grid::from_geojson`] reads back to
    /// the same cells (coordinates are written in shortest round-trip form).
    pub fn to_geojson(&self) -> String {
        geojson::write_cells(&self.cells)
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Always false: a grid has at least one cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells in input order (`cells()[id.index()]` is the cell `id`).
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// The cell `id`, if it belongs to this grid.
    pub fn cell(&self, id: CellId) -> Option<&Cell> {
        self.cells.get(id.index())
    }

    /// Every cell id, in input order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = CellId> + '_ {
        (0..self.cells.len() as u32).map(CellId)
    }

    /// The id of the cell named `name` (its GeoJSON `id`).
    pub fn id_of(&self, name: &str) -> Option<CellId> {
        self.by_name.get(name).copied()
    }

    /// The grid's bounding box `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn bounds(&self) -> [f64; 4] {
        self.shapes
            .cell_bbox
            .iter()
            .fold(self.shapes.cell_bbox[0], |a, b| geometry::bbox_union(&a, b))
    }

    /// The envelope `[min_lon, min_lat, max_lon, max_lat]` of cell `id`.
    pub fn cell_bounds(&self, id: CellId) -> Option<[f64; 4]> {
        self.shapes.cell_bbox.get(id.index()).copied()
    }

    /// Whether the closed area of cell `id` covers `p` (exact; false for an unknown id).
    pub fn covers(&self, id: CellId, p: Location) -> bool {
        id.index() < self.len() && self.shapes.covers(id.index(), [p.lon(), p.lat()])
    }

    /// The cell that `p` belongs to, or `None` for a point outside the grid.
    ///
    /// # Complexity
    /// One table read for most points; one orientation test near an edge; exact
    /// point-in-polygon tests only near vertices. No allocation, no lock.
    #[inline]
    pub fn locate(&self, p: Location) -> Option<CellId> {
        cell_id(self.buckets.locate(&self.shapes, [p.lon(), p.lat()]))
    }

    /// Locates every point of `points` into `out` (cleared first, then one answer per
    /// point, in order). Faster per point than [`Grid::locate`] in a loop: table reads are
    /// issued in batches so their cache misses overlap. Allocates only if `out` lacks the
    /// capacity.
    pub fn locate_many(&self, points: &[Location], out: &mut Vec<Option<CellId>>) {
        self.buckets.locate_into(&self.shapes, points, out);
    }

    /// The same answer as [`Grid::locate`], by the reference path: an R-tree of cell
    /// envelopes, then the exact test on every candidate. For verification and benchmarks.
    pub fn locate_rtree(&self, p: Location) -> Option<CellId> {
        cell_id(self.tree.locate(&self.shapes, [p.lon(), p.lat()]))
    }

    /// The same answer as [`Grid::locate`], by testing every cell in order. It uses the
    /// same exact predicates as the fast path, so it checks the lookup table, not the
    /// predicates: an independent check needs a point-in-polygon of its own (or `geo`'s).
    ///
    /// # Complexity
    /// `O(V)` over all vertices of the grid.
    pub fn locate_brute_force(&self, p: Location) -> Option<CellId> {
        self.shapes
            .first_covering([p.lon(), p.lat()])
            .map(|c| CellId(c as u32))
    }

    /// Cells whose envelope meets the box `[min, max]` (`[lon, lat]` corners), in no
    /// particular order.
    pub fn cells_near(&self, min: [f64; 2], max: [f64; 2]) -> impl Iterator<Item = CellId> + '_ {
        self.tree.envelope_hits(min, max).map(CellId)
    }

    /// Counts describing the fast lookup table, with its memory.
    pub fn index_stats(&self) -> IndexStats {
        self.buckets.stats()
    }

    /// Heap bytes held by the cells' packed geometry (the exact test's data).
    pub fn geometry_bytes(&self) -> usize {
        self.shapes.heap_bytes()
    }

    /// How long validating and indexing took when the grid was built.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }
}

impl std::ops::Index<CellId> for Grid {
    type Output = Cell;
    /// The cell `id`.
    ///
    /// # Panics
    /// If `id` does not belong to this grid; use [`Grid::cell`] for ids from outside.
    fn index(&self, id: CellId) -> &Cell {
        &self.cells[id.index()]
    }
}

#[allow(dead_code)]
const _: () = assert!(NO_CELL as usize == MAX_CELLS);

/// The most bucket visits, and vertex-segment tests, the neighbour search's segment hash
/// may make: each a few hundred milliseconds.
const MAX_SEGMENT_HASH_WORK: u64 = 1 << 27;

/// About how much work the neighbour search's segment hash (about one bucket per edge over
/// the grid's bounding box, square where the extent allows, at most 2^14 a side) would do:
/// the buckets each edge walks, and the tests of each vertex against the edges of its
/// bucket. Estimated in `O(edges)` so that a grid of long edges (a comb of a million teeth)
/// or of cells crowded into a few buckets (tiny cells at the ends of the world) is refused
/// before the work.
fn segment_hash_work(shapes: &Shapes) -> (u64, u64) {
    let b = geometry::bbox_of(&shapes.points);
    let (w, h) = ((b[2] - b[0]).max(0.0), (b[3] - b[1]).max(0.0));
    let edges = shapes
        .points
        .len()
        .saturating_sub(shapes.ring_start.len() - 1)
        .max(1) as f64;
    let side = if w > 0.0 && h > 0.0 {
        (w * h / edges).sqrt()
    } else {
        w.max(h) / edges
    };
    let count = |extent: f64| -> usize {
        if side > 0.0 && extent > 0.0 {
            ((extent / side).ceil() as usize).clamp(1, 1 << 14)
        } else {
            1
        }
    };
    let (nx, ny) = (count(w), count(h));
    let (sx, sy) = (w / nx as f64, h / ny as f64);
    let mut visits = 0.0;
    let mut per_bucket = vec![0u32; nx * ny];
    for r in 0..shapes.ring_start.len() - 1 {
        for e in shapes.ring(r).windows(2) {
            let along = |d: f64, s: f64| if s > 0.0 { d.abs() / s } else { 0.0 };
            visits += along(e[1][0] - e[0][0], sx) + along(e[1][1] - e[0][1], sy) + 2.0;
            let cell = |x: f64, o: f64, s: f64, n: usize| -> usize {
                if s > 0.0 {
                    (((x - o) / s) as usize).min(n - 1)
                } else {
                    0
                }
            };
            let k = cell(e[0][1], b[1], sy, ny) * nx + cell(e[0][0], b[0], sx, nx);
            per_bucket[k] = per_bucket[k].saturating_add(1);
        }
    }
    // Every vertex (one per edge) is tested against the edges of its bucket.
    let tests = per_bucket
        .iter()
        .map(|&c| u64::from(c) * u64::from(c))
        .fold(0u64, u64::saturating_add);
    (visits as u64, tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lattice of `n * n` unit-ish squares with a triangle-split row, seeded points.
    fn lattice(n: usize) -> Grid {
        let mut cells = Vec::new();
        for j in 0..n {
            for i in 0..n {
                // Every corner from one formula, so neighbours share edges bit for bit.
                let at = |k: usize, base: f64| base + k as f64 * 0.01;
                let (x, y, x1, y1) = (at(i, 120.0), at(j, 36.0), at(i + 1, 120.0), at(j + 1, 36.0));
                if j == 1 {
                    // Split the square along its diagonal into two triangles.
                    let (a, b, c, d) = ([x, y], [x1, y], [x1, y1], [x, y1]);
                    cells.push(Cell::new(
                        format!("t{i}-{j}a"),
                        vec![Polygon::new(vec![a, b, c, a])],
                    ));
                    cells.push(Cell::new(
                        format!("t{i}-{j}b"),
                        vec![Polygon::new(vec![a, c, d, a])],
                    ));
                } else {
                    cells.push(Cell::new(
                        format!("s{i}-{j}"),
                        vec![Polygon::rect([x, y], [x1, y1])],
                    ));
                }
            }
        }
        Grid::new(cells).unwrap()
    }

    #[test]
    fn fast_path_agrees_with_brute_force_on_and_off_edges() {
        let grid = lattice(12);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut pts = Vec::new();
        for _ in 0..20_000 {
            let r = next();
            let fx = (r % 1300) as f64 / 100.0 - 0.25;
            let fy = ((r >> 20) % 1300) as f64 / 100.0 - 0.25;
            // Snap some to the lattice lines and diagonals, nudge some by an ulp.
            let (mut x, mut y) = (120.0 + fx * 0.01, 36.0 + fy * 0.01);
            match (r >> 40) % 4 {
                0 => x = 120.0 + (fx.round()) * 0.01,
                1 => y = 36.0 + (fy.round()) * 0.01,
                2 => x = f64::from_bits(x.to_bits() + 1),
                _ => {}
            }
            pts.push(Location::new(x, y).unwrap());
        }
        let mut many = Vec::new();
        grid.locate_many(&pts, &mut many);
        for (p, m) in pts.iter().zip(&many) {
            let want = grid.locate_brute_force(*p);
            assert_eq!(grid.locate(*p), want, "{p:?}");
            assert_eq!(grid.locate_rtree(*p), want, "{p:?}");
            assert_eq!(*m, want);
        }
        let s = grid.index_stats();
        assert!(s.pure > 0 && s.one_edge > 0 && s.mixed > 0, "{s:?}");
    }
}
