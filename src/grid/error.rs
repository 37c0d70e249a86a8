//! Errors of reading and building a grid.

use crate::error::summary;
/// Why a grid was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridError {
    /// The input is not JSON at all.
    #[error("grid input is not valid JSON: {message}")]
    Json {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The input is JSON but not a GeoJSON FeatureCollection.
    #[error("grid input is not a GeoJSON FeatureCollection (found {found})")]
    NotFeatureCollection {
        /// What was found instead.
        found: String,
    },
    /// The grid has no cell.
    #[error("grid has no cells")]
    Empty,
    /// One or more cells are bad; every problem found is listed.
    #[error("{} bad cell(s): {}", .0.len(), summary(.0))]
    Cells(Vec<CellProblem>),
    /// The grid is too large to index: more cells or vertices than a `u32` addresses, or
    /// cells whose envelopes overlap so much (thousands stacked on one another) that the
    /// lookup table would not fit in memory.
    #[error("grid too large to index ({count} cells or vertices, or envelopes stacked too deep)")]
    TooLarge {
        /// The number that did not fit.
        count: usize,
    },
    /// Building the grid would take far more work than its size suggests (edges so long
    /// that the neighbour search would walk billions of buckets): refused before the work
    /// starts, with what would cost too much.
    #[error("grid refused before indexing: {reason}")]
    TooCostly {
        /// What would cost too much, with the numbers.
        reason: String,
    },
}

/// One problem with one cell (a GeoJSON feature).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("feature {index}{}: {kind}", .id.as_ref().map(|i| format!(" (id {i:?})")).unwrap_or_default())]
pub struct CellProblem {
    /// Position of the feature (cell) in the input, from 0.
    pub index: usize,
    /// Its `id`, where it has a usable one.
    pub id: Option<String>,
    /// What is wrong.
    pub kind: CellProblemKind,
}

/// Where in a cell's geometry a problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRef {
    /// Polygon index within the cell (0 for a plain Polygon).
    pub polygon: usize,
    /// Ring index within the polygon (0 = exterior, 1.. = holes).
    pub ring: usize,
}

impl std::fmt::Display for RingRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "polygon {} ring {}", self.polygon, self.ring)
    }
}

/// What is wrong with a cell.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CellProblemKind {
    /// The feature is not a JSON object or has no `properties` object holding `id`.
    #[error("missing `id` property")]
    MissingId,
    /// `id` is present but not a string.
    #[error("`id` property is not a string (found {found})")]
    NonStringId {
        /// The JSON found, shortened.
        found: String,
    },
    /// Another cell already has this id.
    #[error("duplicate id, first used by feature {first}")]
    DuplicateId {
        /// Index of the first cell with the id.
        first: usize,
    },
    /// A parent property (`community`, `street`, `district`) is present but not a string.
    #[error("property `{name}` is not a string")]
    BadProperty {
        /// The property's name.
        name: &'static str,
    },
    /// The feature has no geometry or a malformed one.
    #[error("malformed geometry: {message}")]
    BadGeometry {
        /// What the GeoJSON reader said.
        message: String,
    },
    /// The geometry is neither a Polygon nor a MultiPolygon.
    #[error("geometry is a {found}, not a Polygon or MultiPolygon")]
    NotPolygon {
        /// The geometry type found.
        found: String,
    },
    /// The geometry has no polygon or a polygon with no ring.
    #[error("empty geometry")]
    EmptyGeometry,
    /// A ring has fewer than four positions.
    #[error("{at}: ring has {positions} position(s), at least 4 are needed")]
    RingTooShort {
        /// The ring.
        at: RingRef,
        /// How many positions it has.
        positions: usize,
    },
    /// A ring's last position differs from its first.
    #[error("{at}: ring is not closed")]
    RingNotClosed {
        /// The ring.
        at: RingRef,
    },
    /// A position has fewer than two numbers.
    #[error("{at}: position {position} has fewer than two coordinates")]
    ShortPosition {
        /// The ring.
        at: RingRef,
        /// The position's index in the ring.
        position: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("{at}: position {position} is not finite")]
    NonFinite {
        /// The ring.
        at: RingRef,
        /// The position's index in the ring.
        position: usize,
    },
    /// A coordinate is outside lon [-180, 180] or lat [-90, 90].
    #[error("{at}: position {position} ({lon}, {lat}) is out of range")]
    OutOfRange {
        /// The ring.
        at: RingRef,
        /// The position's index in the ring.
        position: usize,
        /// Its longitude.
        lon: f64,
        /// Its latitude.
        lat: f64,
    },
    /// A ring has fewer than three distinct vertices, so it encloses no area.
    #[error("{at}: ring is degenerate (fewer than 3 distinct vertices)")]
    DegenerateRing {
        /// The ring.
        at: RingRef,
    },
    /// A hole has a vertex outside its polygon's exterior ring.
    #[error("{at}: hole has position {position} outside the exterior ring")]
    HoleOutsideShell {
        /// The hole.
        at: RingRef,
        /// The first position outside.
        position: usize,
    },
    /// An edge of a hole crosses the polygon's exterior ring.
    #[error("{at}: hole crosses the exterior ring")]
    HoleCrossesShell {
        /// The hole.
        at: RingRef,
    },
    /// The ring's edges overlap one another's extents so much (a comb of countless teeth)
    /// that checking it for self-intersection would take more than the allowed work.
    #[error(
        "{at}: ring of {edges} edges too complex to check (its edges' extents overlap too much)"
    )]
    TooComplex {
        /// The ring.
        at: RingRef,
        /// How many edges it has.
        edges: usize,
    },
    /// Two edges of a ring cross or touch, or the ring doubles back on itself.
    #[error("{at}: ring intersects itself between edges {first} and {second}")]
    SelfIntersection {
        /// The ring.
        at: RingRef,
        /// Index of the first edge (edge i runs from position i to i+1).
        first: usize,
        /// Index of the second edge.
        second: usize,
    },
}
