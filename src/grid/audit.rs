//! The coverage audit (横到边、纵到底、全覆盖): does the grid cover its jurisdiction edge to
//! edge, with no gap, no overlap and no broken cell?
//!
//! ```text
//!   cells ─┬─► node (exact) ─► geo polygons ─┬─► envelope pairs ─► intersection ─► overlaps
//!          │   every vertex lying on another  ├─► unary union ──┬─► holes / boundary − union ─► gaps
//!          │   ring's edge is inserted there  │                 └─► union − boundary ─► outside
//!   boundary ┘                                └─► Validation ─────────────────────────► invalid
//! ```
//!
//! # Robustness
//!
//! geo's boolean operations (i_overlay) round coordinates to an integer lattice. Two cells
//! meeting along one edge whose vertices differ (a T-junction: one long edge against two
//! short ones) would then no longer meet exactly, and the union would show slivers that are
//! not in the data. So the audit first *nodes* the input exactly: every vertex that lies
//! exactly on another ring's edge (by the exact [`orient`](super::geometry::orient)) is
//! inserted into that edge. Afterwards every shared piece of boundary has the same two
//! endpoints on both sides, rounds identically, and cancels exactly. The union's output
//! is itself rounded, so before it is differenced with the boundary its vertices are moved
//! back onto the input's exact coordinates (those within a few rounding units of one).
//!
//! # Negligible areas
//!
//! Overlaps, gaps and parts outside the boundary smaller than [`NEGLIGIBLE_AREA_M2`]
//! (1e-6 m², a square millimetre) are not reported: they are rounding residue of the
//! boolean operations, not features of the data. Everything larger is reported.

use super::cell::{CellId, Polygon, Ring};
use super::error::CellProblemKind;
use super::neighbours::{FlatRings, vertices_inside_segments};
use super::validate;
use geo::{BooleanOps, InteriorPoint, Validation};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Areas below this (in m²) are rounding residue and are not reported as overlaps, gaps or
/// parts outside the boundary.
pub const NEGLIGIBLE_AREA_M2: f64 = 1e-6;

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
    /// Area of the overlap in m² (on the WGS84 ellipsoid).
    pub area_m2: f64,
    /// A point inside the overlap, `[lon, lat]`.
    pub point: [f64; 2],
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
    /// Cells with invalid geometry.
    pub invalid: Vec<InvalidCell>,
    /// How long the audit took.
    pub elapsed: Duration,
}

impl AuditReport {
    /// True when nothing is wrong: no overlap, gap, part outside the boundary or invalid
    /// cell.
    pub fn is_clean(&self) -> bool {
        self.overlaps.is_empty()
            && self.gaps.is_empty()
            && self.outside.is_empty()
            && self.invalid.is_empty()
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

/// The regions of `m` that are not negligible, largest first.
fn regions(m: &GeoMulti) -> Vec<Region> {
    let mut out: Vec<Region> = m
        .iter()
        .filter_map(|p| {
            let area = area_m2(p);
            (area >= NEGLIGIBLE_AREA_M2).then(|| Region {
                polygon: from_geo_polygon(p),
                area_m2: area,
                point: point_in(p),
            })
        })
        .collect();
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

impl super::Grid {
    /// Audits the grid's coverage: overlaps between cells, gaps (inside `boundary` if given,
    /// otherwise holes enclosed by the cells), parts of cells outside `boundary`, and cells
    /// whose geometry is invalid (OGC rules, checked by geo's `Validation`). Areas below
    /// [`NEGLIGIBLE_AREA_M2`] are ignored. Shared edges do not show spurious slivers:
    /// vertices lying exactly on another cell's edge are inserted into it before geo's
    /// boolean operations, and the union's rounded output is snapped back onto the input's
    /// coordinates before it is differenced with the boundary.
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
    /// One intersection per pair of cells whose envelopes overlap with positive area, one
    /// union of all cells (a sweep), one difference with the boundary.
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

        let mut cell_geo: Vec<GeoMulti> = Vec::with_capacity(n);
        for c in 0..n {
            let mut polys = Vec::new();
            for poly in shapes.cell_poly[c] as usize..shapes.cell_poly[c + 1] as usize {
                let rings = (shapes.poly_ring[poly + 1] - shapes.poly_ring[poly]) as usize;
                let mut rs = noded.by_ref().take(rings).collect::<Vec<_>>().into_iter();
                let exterior = rs.next().unwrap_or_default();
                polys.push(GeoPolygon::new(
                    line_string(&exterior, true),
                    rs.map(|h| line_string(&h, false)).collect(),
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

        let mut overlaps = Vec::new();
        for (i, a) in cell_geo.iter().enumerate() {
            let bi = shapes.cell_bbox[i];
            for j in self.cells_near([bi[0], bi[1]], [bi[2], bi[3]]) {
                let j = j.index();
                if j <= i || !envelopes_overlap(&bi, &shapes.cell_bbox[j]) {
                    continue;
                }
                let common = a.intersection(&cell_geo[j]);
                let area: f64 = common.iter().map(area_m2).sum();
                if area >= NEGLIGIBLE_AREA_M2 {
                    let largest = common
                        .iter()
                        .max_by(|x, y| area_m2(x).total_cmp(&area_m2(y)));
                    overlaps.push(Overlap {
                        cells: [CellId(i as u32), CellId(j as u32)],
                        names: [self.cells[i].name.clone(), self.cells[j].name.clone()],
                        area_m2: area,
                        point: largest.map(point_in).unwrap_or([f64::NAN, f64::NAN]),
                    });
                }
            }
        }
        overlaps.sort_by_key(|o| o.cells);

        let union = geo::unary_union(cell_geo.iter());
        let covered_area_m2: f64 = union.iter().map(area_m2).sum();
        let cell_area_m2: f64 = cell_geo.iter().flat_map(|m| m.iter()).map(area_m2).sum();

        let (gaps, outside, boundary_area_m2) = match &boundary_geo {
            Some(b) => {
                // The union's output is rounded to its own integer lattice; put its vertices
                // back on the input's exact coordinates so that shared boundaries with the
                // boundary polygon cancel exactly in the second operation. (One overlay of
                // the boundary against all cells' rings would avoid this, but i_overlay
                // slows down by orders of magnitude past ~45,000 contours in a clip.)
                let snapped = snap_to(&union, &points);
                (
                    regions(&b.difference(&snapped)),
                    regions(&snapped.difference(b)),
                    Some(b.iter().map(area_m2).sum()),
                )
            }
            None => (holes_of(&union), Vec::new(), None),
        };

        let invalid = self
            .cells
            .iter()
            .enumerate()
            .filter_map(|(i, cell)| {
                let m = GeoMulti::new(cell.polygons.iter().map(to_geo_polygon).collect());
                let problems: Vec<String> = m
                    .validation_errors()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
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
            invalid,
            elapsed: started.elapsed(),
        }
    }
}

/// Areas enclosed by `union` but not covered by it: its holes, less any parts of the union
/// lying inside them (islands in a lake).
fn holes_of(union: &GeoMulti) -> Vec<Region> {
    use geo::BoundingRect;
    let mut out = Vec::new();
    for p in union {
        for hole in p.interiors() {
            let mut gap = GeoMulti::new(vec![GeoPolygon::new(hole.clone(), Vec::new())]);
            let Some(hb) = hole.bounding_rect() else {
                continue;
            };
            let islands: Vec<GeoPolygon> = union
                .iter()
                .filter(|q| {
                    q.bounding_rect().is_some_and(|qb| {
                        qb.min().x >= hb.min().x
                            && qb.max().x <= hb.max().x
                            && qb.min().y >= hb.min().y
                            && qb.max().y <= hb.max().y
                            && !std::ptr::eq(*q, p)
                    })
                })
                .cloned()
                .collect();
            if !islands.is_empty() {
                gap = gap.difference(&GeoMulti::new(islands));
            }
            out.extend(regions(&gap));
        }
    }
    out.sort_by(|a, b| b.area_m2.total_cmp(&a.area_m2));
    out
}

/// `m` with every vertex within a few rounding units of an input vertex moved exactly onto
/// it; other vertices (new intersection points) are kept.
fn snap_to(m: &GeoMulti, input: &[[f64; 2]]) -> GeoMulti {
    use std::collections::HashMap;
    let b = input.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, p| {
            [
                b[0].min(p[0]),
                b[1].min(p[1]),
                b[2].max(p[0]),
                b[3].max(p[1]),
            ]
        },
    );
    // i_overlay's unit is about half the larger half-extent over 2^29; allow four units.
    let half = ((b[2] - b[0]).max(b[3] - b[1]) / 2.0).max(f64::MIN_POSITIVE);
    let tol = half / f64::from(1u32 << 27);
    let cell = |x: f64, o: f64| ((x - o) / (4.0 * tol)).floor() as i64;
    let mut table: HashMap<(i64, i64), Vec<[f64; 2]>> = HashMap::with_capacity(input.len());
    for &p in input {
        table
            .entry((cell(p[0], b[0]), cell(p[1], b[1])))
            .or_default()
            .push(p);
    }
    let snap = |c: geo::Coord<f64>| -> geo::Coord<f64> {
        let (kx, ky) = (cell(c.x, b[0]), cell(c.y, b[1]));
        let mut best: Option<([f64; 2], f64)> = None;
        for dx in -1..=1 {
            for dy in -1..=1 {
                for &p in table
                    .get(&(kx + dx, ky + dy))
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    let d = (p[0] - c.x).abs().max((p[1] - c.y).abs());
                    if d <= tol && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((p, d));
                    }
                }
            }
        }
        best.map_or(c, |(p, _)| geo::coord! {x: p[0], y: p[1]})
    };
    let ring =
        |l: &geo::LineString<f64>| geo::LineString::new(l.coords().map(|&c| snap(c)).collect());
    GeoMulti::new(
        m.iter()
            .map(|p| GeoPolygon::new(ring(p.exterior()), p.interiors().iter().map(ring).collect()))
            .collect(),
    )
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
}
