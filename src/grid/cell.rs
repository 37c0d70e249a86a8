//! Cells: their ids, names, parents and shapes.

use serde::{Deserialize, Serialize};

/// A cell's position in its [`Grid`](crate::Grid): an index in input order.
///
/// Ids are dense (`0..grid.len()`), so tables indexed by cell are plain vectors. The
/// order matters: a point on an edge shared by several cells belongs to the one with the
/// smallest id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellId(pub(crate) u32);

impl CellId {
    /// The index of the cell in the grid's input order.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the cell at `index` in input order, if the index fits in a `u32`.
    ///
    /// The result names a cell of a given grid only if `index < grid.len()`;
    /// [`Grid::cell`](crate::Grid::cell) checks that.
    pub fn from_index(index: usize) -> Option<CellId> {
        u32::try_from(index).ok().map(CellId)
    }
}

impl std::fmt::Display for CellId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cell#{}", self.0)
    }
}

/// A ring of `[lon, lat]` positions. GeoJSON rules: closed (first position = last) and at
/// least four positions.
pub type Ring = Vec<[f64; 2]>;

/// One polygon: an exterior ring and zero or more holes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Polygon {
    /// The outer boundary.
    pub exterior: Ring,
    /// Holes cut out of it; their boundaries still belong to the polygon.
    #[serde(default)]
    pub holes: Vec<Ring>,
}

impl Polygon {
    /// A polygon without holes.
    pub fn new(exterior: Ring) -> Self {
        Polygon {
            exterior,
            holes: Vec::new(),
        }
    }

    /// An axis-aligned rectangle from its lower-left and upper-right corners, wound
    /// counter-clockwise.
    pub fn rect(min: [f64; 2], max: [f64; 2]) -> Self {
        Polygon::new(vec![min, [max[0], min[1]], max, [min[0], max[1]], min])
    }

    /// All rings, exterior first.
    pub fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.exterior).chain(self.holes.iter())
    }
}

/// The description of one cell, as read from GeoJSON or built in code.
///
/// `name` is the GeoJSON `id` property: unique in the grid, and what people and files call
/// the cell. `community`, `street` and `district` name its parents in the org hierarchy
/// (村居, 镇街, 区市).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Unique name of the cell (the GeoJSON `id` property).
    pub name: String,
    /// The community or village (村居) the cell belongs to: the community's **id** in the
    /// city config (`CityConfig::communities[..].id`), which is how a
    /// [`City`](crate::City) ties cells to units.
    #[serde(default)]
    pub community: Option<String>,
    /// The street or town office (镇街).
    #[serde(default)]
    pub street: Option<String>,
    /// The district (区市).
    #[serde(default)]
    pub district: Option<String>,
    /// The cell's area: one polygon, or several (a MultiPolygon).
    pub polygons: Vec<Polygon>,
}

impl Cell {
    /// A cell with a name and shape and no parents.
    pub fn new(name: impl Into<String>, polygons: Vec<Polygon>) -> Self {
        Cell {
            name: name.into(),
            community: None,
            street: None,
            district: None,
            polygons,
        }
    }

    /// Sets the parents (community, street office, district).
    pub fn with_parents(
        mut self,
        community: impl Into<String>,
        street: impl Into<String>,
        district: impl Into<String>,
    ) -> Self {
        self.community = Some(community.into());
        self.street = Some(street.into());
        self.district = Some(district.into());
        self
    }
}
