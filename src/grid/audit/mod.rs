//! The coverage audit (横到边、纵到底、全覆盖): does the grid cover its jurisdiction edge to
//! edge, with no gap, no overlap and no broken cell?
//!
//! ```text
//!   cells ──► node (exact) ──► cancel shared edges ──► exact union rings ──┬─► holes ─► gaps
//!   boundary ┘  every vertex     (exact.rs; cells that     │               │   (no boundary)
//!               lying on another  overlap are set aside) ──┤               └─► boundary − union
//!               ring's edge is                             │                   union − boundary
//!               inserted there    set-aside cells × their  └─► overlaps        (geo, slivers
//!                                 envelope neighbours (geo)                     counted apart)
//!   cells ──► geo Validation ──────────────────────────────────────────────► invalid
//! ```
//!
//! # Exact where the grid is exact
//!
//! First every ring is *noded* exactly: each vertex lying exactly on another ring's edge
//! (by the exact [`orient`](super::geometry::orient)) is inserted into that edge, so every
//! shared piece of boundary has the same two endpoints on both sides. Then the union is
//! formed by counting directed edges: an edge present once in each direction is shared and
//! cancels, what is left is the union's boundary, linked into rings. No coordinate is
//! computed, so a grid whose neighbours share vertices bit for bit shows no spurious gap or
//! overlap at all: holes of the union are gaps, exactly; two cells lying on the same side
//! of one edge, edges of the union crossing, or a ring enclosing area already covered mean
//! an overlap, and only the cells concerned are set aside and handled by geo's boolean
//! operations (i_overlay), pairwise with their envelope neighbours.
//!
//! # Against a boundary: a documented tolerance
//!
//! A grid clipped to real borders has computed border vertices that lie within rounding
//! of the boundary's edges, not on them. The gaps (`boundary − union`) and parts outside
//! (`union − boundary`) are then computed by geo's boolean operations, and every piece
//! whose mean width `2 · area / perimeter` is under [`SLIVER_WIDTH_M`] (or whose area is
//! under [`NEGLIGIBLE_AREA_M2`]) is a *sliver*: counted with its area in
//! [`AuditReport::slivers`], not listed and not in the verdict. The same rule applies to
//! the pieces of overlaps and of holes.
//!
//! # Units
//!
//! Areas are on the WGS84 ellipsoid, edges straight in lon/lat (as the grid's predicates
//! treat them): the shoelace formula in Lambert's cylindrical equal-area projection,
//! `x = a·λ`, `y = a·q(φ)/2` with `q` the authalic function (which keeps parallels and
//! meridians straight, so axis-parallel edges are exact). Lengths, for the width, are
//! measured edge by edge in a local equirectangular frame on a sphere of radius
//! 6,371,008.8 m. `.ci/audit_check.py` computes both the same way.

use super::cell::{CellId, Polygon, Ring};
use super::error::CellProblemKind;
use super::neighbours::{FlatRings, vertices_inside_segments};
use super::validate;
use geo::{BooleanOps, InteriorPoint, Validation};
use serde::Serialize;
use std::time::{Duration, Instant};

mod exact;
pub(crate) mod planted;

/// Pieces smaller than this (in m²) are rounding residue of the boolean operations: never
/// findings, only counted as slivers.
pub const NEGLIGIBLE_AREA_M2: f64 = 1e-6;

/// The most pairs of cells whose overlap the audit measures; the rest are counted in
/// [`AuditReport::unmeasured_pairs`].
pub const MAX_MEASURED_PAIRS: usize = 20_000;

/// Cells of several rings with more vertices than this are not checked for how their rings
/// meet (geo's check compares every pair of edges) and are listed as invalid, saying so.
const MAX_VALIDATED_VERTICES: usize = 20_000;

/// Pieces of gaps, overlaps and parts outside whose mean width (`2 · area / perimeter`) is
/// under this many metres are slivers: where computed border vertices and a boundary's
/// edges part by a hair. Half a metre is far above rounding (nanometres) and far below any
/// planning concern.
pub const SLIVER_WIDTH_M: f64 = 0.5;

/// The boundary of the area a grid must cover: one or more polygons in WGS84 lon/lat.
#[derive(Debug, Clone, PartialEq)]
pub struct Jurisdiction {
    polygons: Vec<Polygon>,
}

/// Why a jurisdiction boundary was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JurisdictionError {
    /// The text is not GeoJSON.
    #[error("boundary is not valid GeoJSON: {message}")]
    Json {
        /// The parser's message.
        message: String,
    },
    /// The GeoJSON holds geometry that is not a Polygon or MultiPolygon.
    #[error("boundary geometry {at} is a {found}, not a Polygon or MultiPolygon")]
    NotPolygonal {
        /// Which feature or geometry (e.g. "feature 2").
        at: String,
        /// The geometry type found.
        found: String,
    },
    /// No polygon at all.
    #[error("boundary has no polygon")]
    Empty,
    /// The polygons are malformed; every problem is listed.
    #[error("boundary has {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Geometry(Vec<CellProblemKind>),
}

impl Jurisdiction {
    /// A boundary from polygons, checked like a cell's geometry.
    ///
    /// # Errors
    /// [`JurisdictionError::Empty`] for no polygons, [`JurisdictionError::Geometry`] listing
    /// every malformed ring (short, open, non-finite, out of range, self-intersecting).
    pub fn new(polygons: Vec<Polygon>) -> Result<Jurisdiction, JurisdictionError> {
        if polygons.is_empty() {
            return Err(JurisdictionError::Empty);
        }
        let problems = validate::polygon_problems(&polygons);
        if !problems.is_empty() {
            return Err(JurisdictionError::Geometry(problems));
        }
        Ok(Jurisdiction { polygons })
    }

    /// Reads a boundary from GeoJSON: a bare Polygon or MultiPolygon, a Feature holding
    /// one, or a FeatureCollection (every feature's polygons together). Coordinates are read
    /// exactly.
    ///
    /// # Errors
    /// [`JurisdictionError::Json`] for text that is not GeoJSON,
    /// [`JurisdictionError::NotPolygonal`] for other geometry types or a feature without
    /// geometry, and the errors of [`Jurisdiction::new`].
    ///
    /// ```
    /// use wangge::grid::Jurisdiction;
    ///
    /// let b = Jurisdiction::from_geojson(
    ///     r#"{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}"#,
    /// )?;
    /// assert_eq!(b.polygons().len(), 1);
    /// # Ok::<(), wangge::grid::JurisdictionError>(())
    /// ```
    pub fn from_geojson(text: &str) -> Result<Jurisdiction, JurisdictionError> {
        let doc: geojson::GeoJson =
            text.parse()
                .map_err(|e: geojson::Error| JurisdictionError::Json {
                    message: e.to_string(),
                })?;
        let mut polygons = Vec::new();
        match doc {
            geojson::GeoJson::Geometry(g) => {
                add_polygons(g.value, "geometry".into(), &mut polygons)?
            }
            geojson::GeoJson::Feature(f) => add_feature(f, "feature".into(), &mut polygons)?,
            geojson::GeoJson::FeatureCollection(fc) => {
                for (i, f) in fc.features.into_iter().enumerate() {
                    add_feature(f, format!("feature {i}"), &mut polygons)?;
                }
            }
        }
        Jurisdiction::new(polygons)
    }

    /// The boundary as a GeoJSON MultiPolygon geometry that [`Jurisdiction::from_geojson`]
    /// reads back to the same polygons (coordinates in shortest round-trip form).
    pub fn to_geojson(&self) -> String {
        serde_json::json!({
            "type": "MultiPolygon",
            "coordinates": self
                .polygons
                .iter()
                .map(|p| p.rings().cloned().collect::<Vec<Ring>>())
                .collect::<Vec<_>>(),
        })
        .to_string()
    }

    /// The boundary's polygons.
    pub fn polygons(&self) -> &[Polygon] {
        &self.polygons
    }

    /// The area enclosed, in m² (on the WGS84 ellipsoid, edges straight in lon/lat).
    pub fn area_m2(&self) -> f64 {
        self.polygons
            .iter()
            .map(|p| area_m2(&to_geo_polygon(p)))
            .sum()
    }
}

fn add_feature(
    f: geojson::Feature,
    at: String,
    out: &mut Vec<Polygon>,
) -> Result<(), JurisdictionError> {
    match f.geometry {
        Some(g) => add_polygons(g.value, at, out),
        None => Err(JurisdictionError::NotPolygonal {
            at,
            found: "feature without geometry".into(),
        }),
    }
}

fn add_polygons(
    value: geojson::GeometryValue,
    at: String,
    out: &mut Vec<Polygon>,
) -> Result<(), JurisdictionError> {
    let raw = match value {
        geojson::GeometryValue::Polygon { coordinates } => vec![coordinates],
        geojson::GeometryValue::MultiPolygon { coordinates } => coordinates,
        other => {
            return Err(JurisdictionError::NotPolygonal {
                at,
                found: other.type_name().into(),
            });
        }
    };
    for rings in raw {
        // A position with fewer than two numbers becomes NaN, which `new` reports.
        let mut rings = rings.into_iter().map(|ring| {
            ring.iter()
                .map(|p| match p.as_slice() {
                    [lon, lat, ..] => [*lon, *lat],
                    _ => [f64::NAN, f64::NAN],
                })
                .collect::<Ring>()
        });
        if let Some(exterior) = rings.next() {
            out.push(Polygon {
                exterior,
                holes: rings.collect(),
            });
        }
    }
    Ok(())
}

/// A region of the plane found by the audit: a gap, or a part outside the boundary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Region {
    /// Its shape (exterior counter-clockwise, holes clockwise).
    pub polygon: Polygon,
    /// Its area in m² (on the WGS84 ellipsoid).
    pub area_m2: f64,
    /// A point inside it, `[lon, lat]`, to show on a map.
    pub point: [f64; 2],
}

/// Two cells whose areas overlap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overlap {
    /// The two cells, smaller id first.
    pub cells: [CellId; 2],
    /// Their names.
    pub names: [String; 2],
    /// Area of the overlap in m² (on the WGS84 ellipsoid), slivers not counted.
    pub area_m2: f64,
    /// A point inside the overlap, `[lon, lat]`.
    pub point: [f64; 2],
}

/// Pieces thinner than [`SLIVER_WIDTH_M`] found by the boolean operations: where a grid's
/// computed border vertices do not lie exactly on the boundary's edges, the two lines part
/// by a hair and leave such pieces. Counted apart, not listed, and not in the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Slivers {
    /// How many pieces.
    pub count: usize,
    /// Their total area in m².
    pub area_m2: f64,
}

/// A cell whose geometry is not valid in the OGC sense (a hole outside its shell, parts of
/// a MultiPolygon overlapping or touching along a line, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidCell {
    /// The cell.
    pub cell: CellId,
    /// Its name.
    pub name: String,
    /// What is wrong, one sentence per problem.
    pub problems: Vec<String>,
}

/// The result of [`Grid::audit`](crate::Grid::audit).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// Number of cells audited.
    pub cells: usize,
    /// Area covered by the union of the cells, m².
    pub covered_area_m2: f64,
    /// Sum of the cells' own areas, m² (exceeds the covered area by the overlaps).
    pub cell_area_m2: f64,
    /// Area of the jurisdiction boundary, m², when one was given.
    pub boundary_area_m2: Option<f64>,
    /// Pairs of cells that overlap, by the first cell's id.
    pub overlaps: Vec<Overlap>,
    /// Uncovered areas: inside the boundary if one was given, otherwise holes enclosed by
    /// the cells. Largest first.
    pub gaps: Vec<Region>,
    /// Parts of cells outside the boundary (empty without a boundary). Largest first.
    pub outside: Vec<Region>,
    /// Pieces of gaps, overlaps and parts outside thinner than [`SLIVER_WIDTH_M`].
    pub slivers: Slivers,
    /// Cells with invalid geometry (or, with several rings, too many vertices to check).
    pub invalid: Vec<InvalidCell>,
    /// Cells whose coverage the exact union could not settle (they overlap another cell),
    /// left to the boolean operations.
    pub inexact_cells: usize,
    /// Pairs of cells that may overlap (envelopes overlapping, one of them overlapping
    /// some cell) beyond the first [`MAX_MEASURED_PAIRS`]: not measured. Not clean while
    /// any is left.
    pub unmeasured_pairs: usize,
    /// How long the audit took.
    pub elapsed: Duration,
}

impl AuditReport {
    /// True when nothing a planner must act on was found: no overlap, gap, part outside
    /// the boundary or invalid cell. Slivers do not count.
    pub fn is_clean(&self) -> bool {
        self.overlaps.is_empty()
            && self.gaps.is_empty()
            && self.outside.is_empty()
            && self.invalid.is_empty()
            && self.unmeasured_pairs == 0
    }

    /// The findings as one JSON object: `gaps`, `overlaps` and `outside` (each a list of
    /// `{"area_m2", "point": [lon, lat]}`, overlaps also with their two cells' names),
    /// `slivers` (`{"count", "area_m2"}`), `invalid` (`{"cell", "problems"}`) and `clean`.
    pub fn to_json(&self) -> String {
        let regions = |list: &[Region]| -> Vec<serde_json::Value> {
            list.iter()
                .map(|r| serde_json::json!({"area_m2": r.area_m2, "point": r.point}))
                .collect()
        };
        serde_json::json!({
            "cells": self.cells,
            "covered_area_m2": self.covered_area_m2,
            "boundary_area_m2": self.boundary_area_m2,
            "gaps": regions(&self.gaps),
            "overlaps": self.overlaps.iter().map(|o| serde_json::json!({
                "area_m2": o.area_m2,
                "point": o.point,
                "cells": o.names,
            })).collect::<Vec<_>>(),
            "outside": regions(&self.outside),
            "slivers": {"count": self.slivers.count, "area_m2": self.slivers.area_m2},
            "sliver_width_m": SLIVER_WIDTH_M,
            "unmeasured_pairs": self.unmeasured_pairs,
            "invalid": self.invalid.iter().map(|c| serde_json::json!({
                "cell": c.name,
                "problems": c.problems,
            })).collect::<Vec<_>>(),
            "clean": self.is_clean(),
            "elapsed_ms": self.elapsed.as_secs_f64() * 1e3,
        })
        .to_string()
    }
}

impl std::fmt::Display for AuditReport {
    /// Counts first, then one line per finding.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} cells, covered {:.1} m² (cells' own areas {:.1} m²){}",
            self.cells,
            self.covered_area_m2,
            self.cell_area_m2,
            self.boundary_area_m2
                .map(|b| format!(", boundary {b:.1} m²"))
                .unwrap_or_default()
        )?;
        writeln!(
            f,
            "{} overlap(s), {} gap(s), {} part(s) outside the boundary, {} invalid cell(s): {}",
            self.overlaps.len(),
            self.gaps.len(),
            self.outside.len(),
            self.invalid.len(),
            if self.is_clean() {
                "clean"
            } else {
                "NOT clean"
            }
        )?;
        writeln!(
            f,
            "{} sliver(s) thinner than {SLIVER_WIDTH_M} m, {:.3} m² in all (not findings)",
            self.slivers.count, self.slivers.area_m2
        )?;
        if self.unmeasured_pairs > 0 {
            writeln!(
                f,
                "{} more pair(s) of cells that may overlap, not measured",
                self.unmeasured_pairs
            )?;
        }
        for o in &self.overlaps {
            writeln!(
                f,
                "overlap {} / {}: {:.3} m² near ({}, {})",
                o.names[0], o.names[1], o.area_m2, o.point[0], o.point[1]
            )?;
        }
        for (kind, list) in [("gap", &self.gaps), ("outside", &self.outside)] {
            for r in list {
                writeln!(
                    f,
                    "{kind}: {:.3} m² near ({}, {}), {} vertices",
                    r.area_m2,
                    r.point[0],
                    r.point[1],
                    r.polygon.exterior.len()
                )?;
            }
        }
        for c in &self.invalid {
            writeln!(f, "invalid {}: {}", c.name, c.problems.join("; "))?;
        }
        Ok(())
    }
}

type GeoPolygon = geo::Polygon<f64>;
type GeoMulti = geo::MultiPolygon<f64>;

/// WGS84 semi-major axis (m) and first eccentricity squared.
const WGS84_A: f64 = 6_378_137.0;
const WGS84_E2: f64 = 6.694_379_990_141_316e-3;

/// `q(φ)` of the authalic latitude: `sin ξ = q(φ) / q(90°)`.
fn authalic_q(lat: f64) -> f64 {
    let e = WGS84_E2.sqrt();
    let s = lat.to_radians().sin();
    (1.0 - WGS84_E2)
        * (s / (1.0 - WGS84_E2 * s * s) - (((1.0 - e * s) / (1.0 + e * s)).ln()) / (2.0 * e))
}

/// Area in m² enclosed by a ring, on the WGS84 ellipsoid, with edges straight in lon/lat
/// (as the grid's predicates treat them). Shoelace in Lambert's cylindrical equal-area
/// projection (x = λ, y = sin ξ, ξ the authalic latitude), which maps parallels and
/// meridians to straight lines, so axis-parallel edges are exact; relative to the first
/// vertex so that slivers keep their precision.
fn ring_area_m2(ring: &[geo::Coord<f64>]) -> f64 {
    let qp = authalic_q(90.0);
    let scale = WGS84_A * WGS84_A * qp / 2.0;
    let Some(o) = ring.first() else { return 0.0 };
    let (ox, oy) = (o.x.to_radians(), authalic_q(o.y) / qp);
    let mut prev: Option<(f64, f64)> = None;
    let mut sum = 0.0;
    for c in ring {
        let p = (c.x.to_radians() - ox, authalic_q(c.y) / qp - oy);
        if let Some(q) = prev {
            sum += q.0 * p.1 - p.0 * q.1;
        }
        prev = Some(p);
    }
    (sum / 2.0).abs() * scale
}

/// Area in m² of a polygon (shell less holes); see [`ring_area_m2`].
fn area_m2(p: &GeoPolygon) -> f64 {
    let holes: f64 = p.interiors().iter().map(|h| ring_area_m2(&h.0)).sum();
    (ring_area_m2(&p.exterior().0) - holes).max(0.0)
}

/// Twice the signed area of a closed ring, relative to its first vertex for precision.
fn signed_area2(ring: &[[f64; 2]]) -> f64 {
    let Some(&o) = ring.first() else { return 0.0 };
    ring.windows(2)
        .map(|w| (w[0][0] - o[0]) * (w[1][1] - o[1]) - (w[1][0] - o[0]) * (w[0][1] - o[1]))
        .sum()
}

/// A geo ring wound counter-clockwise (`ccw`) or clockwise, as the union's fill rule needs.
fn line_string(ring: &[[f64; 2]], ccw: bool) -> geo::LineString<f64> {
    let mut coords: Vec<geo::Coord<f64>> = ring
        .iter()
        .map(|&[x, y]| geo::coord! {x: x, y: y})
        .collect();
    if (signed_area2(ring) > 0.0) != ccw {
        coords.reverse();
    }
    geo::LineString::new(coords)
}

fn to_geo_polygon(p: &Polygon) -> GeoPolygon {
    GeoPolygon::new(
        line_string(&p.exterior, true),
        p.holes.iter().map(|h| line_string(h, false)).collect(),
    )
}

fn from_geo_polygon(p: &GeoPolygon) -> Polygon {
    let ring = |l: &geo::LineString<f64>| l.coords().map(|c| [c.x, c.y]).collect::<Ring>();
    Polygon {
        exterior: ring(p.exterior()),
        holes: p.interiors().iter().map(ring).collect(),
    }
}

// Lengths on the mean sphere: the sliver rule needs a width to a few percent, not
// geodesic precision.
use crate::grid::EARTH_RADIUS_M;

/// Length of a ring in metres: each edge measured in a local equirectangular frame at its
/// middle latitude.
fn ring_length_m(ring: &[geo::Coord<f64>]) -> f64 {
    ring.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let k = ((a.y + b.y) / 2.0).to_radians().cos();
            let dx = (b.x - a.x).to_radians() * k;
            let dy = (b.y - a.y).to_radians();
            EARTH_RADIUS_M * dx.hypot(dy)
        })
        .sum()
}

/// Mean width of a polygon in metres, `2 * area / perimeter` (holes' length included): a
/// strip `w` wide has width `w`, a disc of diameter `d` has `d / 2`.
fn width_m(p: &GeoPolygon, area: f64) -> f64 {
    let length = ring_length_m(&p.exterior().0)
        + p.interiors()
            .iter()
            .map(|h| ring_length_m(&h.0))
            .sum::<f64>();
    if length > 0.0 {
        2.0 * area / length
    } else {
        0.0
    }
}

/// Splits pieces into findings (largest first) and slivers (counted into `slivers`).
fn classify<'a>(
    pieces: impl IntoIterator<Item = &'a GeoPolygon>,
    slivers: &mut Slivers,
) -> Vec<Region> {
    let mut out = Vec::new();
    for p in pieces {
        let area = area_m2(p);
        if area <= 0.0 {
            continue;
        }
        if width_m(p, area) < SLIVER_WIDTH_M || area < NEGLIGIBLE_AREA_M2 {
            slivers.count += 1;
            slivers.area_m2 += area;
        } else {
            out.push(Region {
                polygon: from_geo_polygon(p),
                area_m2: area,
                point: point_in(p),
            });
        }
    }
    out.sort_by(|a, b| b.area_m2.total_cmp(&a.area_m2));
    out
}

fn point_in(p: &GeoPolygon) -> [f64; 2] {
    p.interior_point()
        .map(|q| [q.x(), q.y()])
        .or_else(|| p.exterior().0.first().map(|c| [c.x, c.y]))
        .unwrap_or([f64::NAN, f64::NAN])
}

/// Every ring of the cells and the boundary, with each vertex that lies exactly on another
/// ring's edge inserted into that edge. Returned per input ring, in order.
fn noded_rings(rings: FlatRings<'_>) -> Vec<Vec<[f64; 2]>> {
    let mut splits: Vec<(u32, [f64; 2])> = Vec::new();
    vertices_inside_segments(rings, |v, s| splits.push((s as u32, rings.points[v])));
    // Order each segment's inserted points from its start to its end: along the segment's
    // major axis, by raw coordinate (exact, as they are collinear).
    splits.sort_unstable_by(|x, y| {
        x.0.cmp(&y.0).then_with(|| {
            let s = x.0 as usize;
            let (a, b) = (rings.points[s], rings.points[s + 1]);
            let axis = usize::from((b[1] - a[1]).abs() > (b[0] - a[0]).abs());
            let ord = x.1[axis].total_cmp(&y.1[axis]);
            if b[axis] >= a[axis] {
                ord
            } else {
                ord.reverse()
            }
        })
    });
    splits.dedup();
    let mut next = splits.iter().peekable();
    rings
        .ring_start
        .windows(2)
        .map(|w| {
            let (start, end) = (w[0] as usize, w[1] as usize);
            let mut out = Vec::with_capacity(end - start);
            for i in start..end {
                out.push(rings.points[i]);
                while let Some(&&(s, p)) = next.peek() {
                    if s as usize != i {
                        break;
                    }
                    out.push(p);
                    next.next();
                }
            }
            out
        })
        .collect()
}

fn envelopes_overlap(a: &[f64; 4], b: &[f64; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

fn geo_bbox(p: &GeoPolygon) -> [f64; 4] {
    p.exterior().0.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, c| [b[0].min(c.x), b[1].min(c.y), b[2].max(c.x), b[3].max(c.y)],
    )
}

/// A ring as a geo ring, as it is (no rewinding).
fn geo_ring(ring: &[[f64; 2]]) -> geo::LineString<f64> {
    geo::LineString::new(
        ring.iter()
            .map(|&[x, y]| geo::coord! {x: x, y: y})
            .collect(),
    )
}

impl super::Grid {
    /// Audits the grid's coverage: overlaps between cells, gaps (inside `boundary` if given,
    /// otherwise holes enclosed by the cells), parts of cells outside `boundary`, and cells
    /// whose geometry is invalid (OGC rules, checked by geo's `Validation`).
    ///
    /// Where cells share vertices and edges the union is formed exactly, by cancelling
    /// shared edges: its holes, and the overlaps between cells, are found with no
    /// floating-point construction. Against a boundary whose vertices are not the grid's,
    /// geo's boolean operations decide, and pieces thinner than [`SLIVER_WIDTH_M`] are
    /// counted as [`Slivers`] instead of gaps or parts outside. See the module's docs.
    ///
    /// ```
    /// use wangge::grid::Jurisdiction;
    /// use wangge::{Cell, Grid, Polygon};
    ///
    /// let grid = Grid::new(vec![
    ///     Cell::new("A", vec![Polygon::rect([0.0, 0.0], [0.01, 0.01])]),
    ///     Cell::new("B", vec![Polygon::rect([0.01, 0.0], [0.02, 0.01])]),
    /// ])?;
    /// assert!(grid.audit(None).is_clean());
    /// let wider = Jurisdiction::new(vec![Polygon::rect([0.0, 0.0], [0.03, 0.01])])?;
    /// let report = grid.audit(Some(&wider));
    /// assert_eq!(report.gaps.len(), 1); // the strip from 0.02 to 0.03 is uncovered
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Complexity
    /// A sort of all edges; then work in the size of the union's boundary (its rings, and
    /// one difference each way with the boundary), plus one intersection per pair of
    /// envelope-overlapping cells of which one overlaps some cell.
    pub fn audit(&self, boundary: Option<&Jurisdiction>) -> AuditReport {
        let started = Instant::now();
        let shapes = &self.shapes;
        let n = self.len();

        // Flat rings of the cells, then of the boundary, noded together.
        let mut points = shapes.points.clone();
        let mut ring_start = shapes.ring_start.clone();
        let mut boundary_shape: Vec<usize> = Vec::new();
        for p in boundary.map(Jurisdiction::polygons).unwrap_or(&[]) {
            boundary_shape.push(p.holes.len() + 1);
            for r in p.rings() {
                points.extend_from_slice(r);
                ring_start.push(points.len() as u32);
            }
        }
        let mut noded = noded_rings(FlatRings {
            points: &points,
            ring_start: &ring_start,
        })
        .into_iter();

        // Each cell's rings wound the union's way: exteriors counter-clockwise, holes
        // clockwise, so that every cell's inside lies left of its edges.
        let mut cell_rings: Vec<(u32, Vec<[f64; 2]>)> = Vec::with_capacity(shapes.ring_start.len());
        let mut cell_geo: Vec<GeoMulti> = Vec::with_capacity(n);
        for c in 0..n {
            let mut polys = Vec::new();
            for poly in shapes.cell_poly[c] as usize..shapes.cell_poly[c + 1] as usize {
                let rings = (shapes.poly_ring[poly + 1] - shapes.poly_ring[poly]) as usize;
                let mut exterior = None;
                let mut holes = Vec::new();
                for (k, mut r) in noded.by_ref().take(rings).enumerate() {
                    if (signed_area2(&r) > 0.0) != (k == 0) {
                        r.reverse();
                    }
                    let l = geo_ring(&r);
                    if k == 0 {
                        exterior = Some(l);
                    } else {
                        holes.push(l);
                    }
                    cell_rings.push((c as u32, r));
                }
                polys.push(GeoPolygon::new(
                    exterior.unwrap_or_else(|| geo::LineString::new(Vec::new())),
                    holes,
                ));
            }
            cell_geo.push(GeoMulti::new(polys));
        }
        let boundary_geo: Option<GeoMulti> = boundary.map(|_| {
            GeoMulti::new(
                boundary_shape
                    .iter()
                    .map(|&rings| {
                        let mut rs = noded.by_ref().take(rings).collect::<Vec<_>>().into_iter();
                        let exterior = rs.next().unwrap_or_default();
                        GeoPolygon::new(
                            line_string(&exterior, true),
                            rs.map(|h| line_string(&h, false)).collect(),
                        )
                    })
                    .collect(),
            )
        });

        let exact = exact::union(&cell_rings, n);
        let mut slivers = Slivers::default();

        // Overlaps: only cells set aside can overlap another.
        let mut is_aside = vec![false; n];
        for &c in &exact.set_aside {
            is_aside[c as usize] = true;
        }
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &c in &exact.set_aside {
            let i = c as usize;
            let bi = shapes.cell_bbox[i];
            for j in self.cells_near([bi[0], bi[1]], [bi[2], bi[3]]) {
                let j = j.index();
                if j != i && (!is_aside[j] || i < j) && envelopes_overlap(&bi, &shapes.cell_bbox[j])
                {
                    pairs.push((i.min(j), i.max(j)));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        // Hundreds of cells stacked on one another make a quarter of a million pairs; the
        // first ones tell the planner enough, and the rest must not hold a core.
        let unmeasured_pairs = pairs.len().saturating_sub(MAX_MEASURED_PAIRS);
        pairs.truncate(MAX_MEASURED_PAIRS);
        let mut overlaps = Vec::new();
        for (i, j) in pairs {
            let common = cell_geo[i].intersection(&cell_geo[j]);
            let found = classify(common.iter(), &mut slivers);
            if let Some(largest) = found.first() {
                overlaps.push(Overlap {
                    cells: [CellId(i as u32), CellId(j as u32)],
                    names: [self.cells[i].name.clone(), self.cells[j].name.clone()],
                    area_m2: found.iter().map(|r| r.area_m2).sum(),
                    point: largest.point,
                });
            }
        }

        // The exact union as polygons: each shell with the holes whose parent it is.
        let mut holes_of: Vec<Vec<usize>> = vec![Vec::new(); exact.rings.len()];
        for (k, r) in exact.rings.iter().enumerate() {
            if let Some(p) = r.parent {
                holes_of[p].push(k);
            }
        }
        let exact_geo = GeoMulti::new(
            exact
                .rings
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_shell())
                .map(|(k, r)| {
                    GeoPolygon::new(
                        geo_ring(&r.points),
                        holes_of[k]
                            .iter()
                            .filter(|&&h| !exact.rings[h].is_shell())
                            .map(|&h| geo_ring(&exact.rings[h].points))
                            .collect(),
                    )
                })
                .collect(),
        );
        let aside_geo: Vec<GeoPolygon> = exact
            .set_aside
            .iter()
            .flat_map(|&c| cell_geo[c as usize].iter().cloned())
            .collect();
        let union = if aside_geo.is_empty() {
            exact_geo.clone()
        } else {
            geo::unary_union(exact_geo.iter().chain(aside_geo.iter()))
        };
        let covered_area_m2: f64 = union.iter().map(area_m2).sum();
        let cell_area_m2: f64 = cell_geo.iter().flat_map(|m| m.iter()).map(area_m2).sum();

        let (gaps, outside, boundary_area_m2) = match &boundary_geo {
            Some(b) => (
                classify(b.difference(&union).iter(), &mut slivers),
                classify(union.difference(b).iter(), &mut slivers),
                Some(b.iter().map(area_m2).sum()),
            ),
            None => {
                // The holes of the exact union, each less the islands inside it, less the
                // cells set aside.
                let mut faces = Vec::new();
                for (k, r) in exact.rings.iter().enumerate() {
                    if r.is_shell() {
                        continue;
                    }
                    let mut outer = r.points.clone();
                    outer.reverse();
                    let islands = holes_of[k]
                        .iter()
                        .filter(|&&s| exact.rings[s].is_shell())
                        .map(|&s| {
                            let mut l = exact.rings[s].points.clone();
                            l.reverse();
                            geo_ring(&l)
                        })
                        .collect();
                    let face = GeoPolygon::new(geo_ring(&outer), islands);
                    let fb = geo_bbox(&face);
                    let near: Vec<GeoPolygon> = aside_geo
                        .iter()
                        .filter(|p| envelopes_overlap(&fb, &geo_bbox(p)))
                        .cloned()
                        .collect();
                    if near.is_empty() {
                        faces.push(face);
                    } else {
                        let face = GeoMulti::new(vec![face]);
                        // Unioned first: set-aside cells overlap, and a difference with
                        // overlapping parts would count their overlap twice.
                        faces.extend(face.difference(&geo::unary_union(near.iter())));
                    }
                }
                (classify(faces.iter(), &mut slivers), Vec::new(), None)
            }
        };

        let invalid = self
            .cells
            .iter()
            .enumerate()
            .filter_map(|(i, cell)| {
                // A cell of one ring was fully checked when the grid was built (closed, no
                // self-contact): OGC-valid. Only the relations between rings are left to
                // geo, whose check compares every pair of edges, so only up to a size.
                let rings: Vec<&Ring> = cell.polygons.iter().flat_map(|p| p.rings()).collect();
                if rings.len() < 2 {
                    return None;
                }
                let vertices: usize = rings.iter().map(|r| r.len()).sum();
                let problems: Vec<String> = if vertices > MAX_VALIDATED_VERTICES {
                    vec![format!(
                        "{vertices} vertices in {} rings: too many to check how its rings meet (at most {MAX_VALIDATED_VERTICES})",
                        rings.len()
                    )]
                } else {
                    let m = GeoMulti::new(cell.polygons.iter().map(to_geo_polygon).collect());
                    m.validation_errors()
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                };
                (!problems.is_empty()).then(|| InvalidCell {
                    cell: CellId(i as u32),
                    name: cell.name.clone(),
                    problems,
                })
            })
            .collect();

        AuditReport {
            cells: n,
            covered_area_m2,
            cell_area_m2,
            boundary_area_m2,
            overlaps,
            gaps,
            outside,
            slivers,
            invalid,
            inexact_cells: exact.set_aside.len(),
            unmeasured_pairs,
            elapsed: started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cell, Grid};

    const X0: f64 = 120.0;
    const Y0: f64 = 36.0;
    const STEP: f64 = 0.01;

    fn x(i: usize) -> f64 {
        X0 + i as f64 * STEP
    }
    fn y(j: usize) -> f64 {
        Y0 + j as f64 * STEP
    }

    /// Area of a lon/lat rectangle on the authalic sphere: an independent estimate, within
    /// a fraction of a percent of the ellipsoidal area at this latitude.
    fn rect_area(x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
        const R: f64 = 6_371_007.2;
        R * R * (x1 - x0).to_radians() * (y1.to_radians().sin() - y0.to_radians().sin())
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 0.01 * want
    }

    /// An `n * n` lattice; odd rows are bricks two columns wide, and cell (1, 2) is split
    /// along its diagonal, so shared edges include T-junctions and slanted edges.
    fn lattice(n: usize, skip: Option<(usize, usize)>) -> Vec<Cell> {
        let mut cells = Vec::new();
        for j in 0..n {
            let mut i = 0;
            while i < n {
                let wide = j % 2 == 1 && i + 1 < n;
                let i1 = if wide { i + 2 } else { i + 1 };
                if skip != Some((i, j)) {
                    if (i, j) == (1, 2) {
                        let (a, b, c, d) = ([x(1), y(2)], [x(2), y(2)], [x(2), y(3)], [x(1), y(3)]);
                        cells.push(Cell::new("t1", vec![Polygon::new(vec![a, b, c, a])]));
                        cells.push(Cell::new("t2", vec![Polygon::new(vec![a, c, d, a])]));
                    } else {
                        let p = Polygon::rect([x(i), y(j)], [x(i1), y(j + 1)]);
                        cells.push(Cell::new(format!("{i},{j}"), vec![p]));
                    }
                }
                i = i1;
            }
        }
        cells
    }

    fn frame(n: usize) -> Jurisdiction {
        Jurisdiction::new(vec![Polygon::rect([x(0), y(0)], [x(n), y(n)])]).unwrap()
    }

    #[test]
    fn exact_lattice_with_t_junctions_is_clean() {
        let n = 10;
        let grid = Grid::new(lattice(n, None)).unwrap();
        let report = grid.audit(None);
        assert!(report.is_clean(), "{report}");
        let want = rect_area(x(0), y(0), x(n), y(n));
        assert!(close(report.covered_area_m2, want), "{report}");
        assert!(
            (report.covered_area_m2 - report.cell_area_m2).abs() < 1e-6 * want,
            "{report}"
        );
        // The boundary's edges carry only its four corners, the cells' many vertices.
        let report = grid.audit(Some(&frame(n)));
        assert!(report.is_clean(), "{report}");
        let b = report.boundary_area_m2.unwrap();
        assert!((b - report.covered_area_m2).abs() < 1e-6 * b);
    }

    #[test]
    fn a_missing_cell_is_one_gap_of_its_area() {
        let n = 8;
        let grid = Grid::new(lattice(n, Some((4, 4)))).unwrap();
        let want = rect_area(x(4), y(4), x(5), y(5));
        for boundary in [None, Some(frame(n))] {
            let report = grid.audit(boundary.as_ref());
            assert_eq!(report.gaps.len(), 1, "{report}");
            assert!(
                report.overlaps.is_empty() && report.outside.is_empty(),
                "{report}"
            );
            let gap = &report.gaps[0];
            assert!(close(gap.area_m2, want), "{} vs {want}", gap.area_m2);
            assert!(
                gap.point[0] > x(4) && gap.point[0] < x(5),
                "{:?}",
                gap.point
            );
            assert!(
                gap.point[1] > y(4) && gap.point[1] < y(5),
                "{:?}",
                gap.point
            );
            assert!(!report.is_clean());
        }
        // A gap on the edge of the grid is not enclosed: only the boundary reveals it.
        let grid = Grid::new(lattice(n, Some((0, 0)))).unwrap();
        assert!(grid.audit(None).is_clean());
        let report = grid.audit(Some(&frame(n)));
        assert_eq!(report.gaps.len(), 1, "{report}");
        assert!(close(
            report.gaps[0].area_m2,
            rect_area(x(0), y(0), x(1), y(1))
        ));
    }

    #[test]
    fn an_overlapping_cell_is_found_with_its_area() {
        let n = 6;
        let mut cells = lattice(n, None);
        // A cell covering the right half of (2, 0) and the left half of (3, 0).
        let (xa, xb) = (x(2) + STEP / 2.0, x(3) + STEP / 2.0);
        cells.push(Cell::new(
            "extra",
            vec![Polygon::rect([xa, y(0)], [xb, y(1)])],
        ));
        let grid = Grid::new(cells).unwrap();
        let report = grid.audit(Some(&frame(n)));
        let names: Vec<_> = report.overlaps.iter().map(|o| o.names.clone()).collect();
        assert_eq!(names, [["2,0", "extra"], ["3,0", "extra"]], "{report}");
        let half = rect_area(xa, y(0), x(3), y(1));
        for o in &report.overlaps {
            assert!(close(o.area_m2, half), "{} vs {half}", o.area_m2);
        }
        assert!(
            report.gaps.is_empty() && report.outside.is_empty(),
            "{report}"
        );
        assert!(close(
            report.cell_area_m2 - report.covered_area_m2,
            2.0 * half
        ));
    }

    #[test]
    fn parts_outside_the_boundary_are_reported() {
        let n = 4;
        let grid = Grid::new(lattice(n, None)).unwrap();
        let smaller =
            Jurisdiction::new(vec![Polygon::rect([x(0), y(0)], [x(n), y(n - 1)])]).unwrap();
        let report = grid.audit(Some(&smaller));
        assert_eq!(report.outside.len(), 1, "{report}");
        assert!(close(
            report.outside[0].area_m2,
            rect_area(x(0), y(n - 1), x(n), y(n))
        ));
        assert!(report.gaps.is_empty());
    }

    #[test]
    fn invalid_cells_are_named_with_their_problem() {
        let cells = vec![
            Cell::new("ok", vec![Polygon::rect([0.0, 0.0], [1.0, 1.0])]),
            Cell::new(
                "overlapping-parts",
                vec![
                    Polygon::rect([1.0, 0.0], [2.0, 1.0]),
                    Polygon::rect([1.5, 0.5], [2.5, 1.5]),
                ],
            ),
        ];
        let grid = Grid::new(cells).unwrap();
        let report = grid.audit(None);
        let invalid: Vec<_> = report.invalid.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(invalid, ["overlapping-parts"], "{report}");
        assert!(
            report.invalid[0].problems[0].contains("overlap"),
            "{report}"
        );
        assert!(!report.is_clean());
    }

    #[test]
    fn jurisdiction_reads_each_geojson_form_and_refuses_bad_input() {
        let poly =
            r#"{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}"#;
        let feature = format!(r#"{{"type": "Feature", "properties": {{}}, "geometry": {poly}}}"#);
        let fc = format!(r#"{{"type": "FeatureCollection", "features": [{feature}, {feature}]}}"#);
        assert_eq!(
            Jurisdiction::from_geojson(poly).unwrap().polygons().len(),
            1
        );
        assert_eq!(
            Jurisdiction::from_geojson(&feature)
                .unwrap()
                .polygons()
                .len(),
            1
        );
        assert_eq!(Jurisdiction::from_geojson(&fc).unwrap().polygons().len(), 2);
        let area = Jurisdiction::from_geojson(poly).unwrap().area_m2();
        assert!(close(area, rect_area(0.0, 0.0, 1.0, 1.0)), "{area}");

        assert!(matches!(
            Jurisdiction::from_geojson("not json"),
            Err(JurisdictionError::Json { .. })
        ));
        assert!(matches!(
            Jurisdiction::from_geojson(r#"{"type": "Point", "coordinates": [0, 0]}"#),
            Err(JurisdictionError::NotPolygonal { .. })
        ));
        assert!(matches!(
            Jurisdiction::from_geojson(r#"{"type": "FeatureCollection", "features": []}"#),
            Err(JurisdictionError::Empty)
        ));
        let open = r#"{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}"#;
        assert!(matches!(
            Jurisdiction::from_geojson(open),
            Err(JurisdictionError::Geometry(_))
        ));
        let short =
            r#"{"type": "Polygon", "coordinates": [[[0, 0], [1], [1, 1], [0, 1], [0, 0]]]}"#;
        assert!(Jurisdiction::from_geojson(short).is_err());
    }

    #[test]
    fn a_strip_a_metre_wide_is_a_sliver_of_width_one_metre_and_a_wider_one_is_not() {
        // Widths from metres, converted with the same sphere the rule documents.
        let deg = |m: f64| (m / EARTH_RADIUS_M).to_degrees();
        let strip = |w_m: f64| {
            let lat: f64 = 36.0;
            let dx = deg(1000.0) / lat.to_radians().cos();
            GeoPolygon::new(
                line_string(
                    &Polygon::rect([120.0, lat], [120.0 + dx, lat + deg(w_m)]).exterior,
                    true,
                ),
                Vec::new(),
            )
        };
        for (w, sliver) in [(0.3, true), (1.0, false)] {
            let p = strip(w);
            let area = area_m2(&p);
            assert!((area / (1000.0 * w) - 1.0).abs() < 0.01, "{area}");
            // 2 * area / perimeter of a w x 1000 m strip.
            let want = 2.0 * 1000.0 * w / (2.0 * (1000.0 + w));
            assert!((width_m(&p, area) / want - 1.0).abs() < 0.01);
            let mut slivers = Slivers::default();
            let found = classify([&p], &mut slivers);
            assert_eq!(found.is_empty(), sliver);
            assert_eq!(slivers.count, usize::from(sliver));
        }
    }
}
