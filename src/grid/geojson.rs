//! Reading and writing grids as GeoJSON FeatureCollections.

use super::cell::{Cell, Polygon, Ring};
use super::error::{CellProblemKind, GridError, RingRef};
use geojson::{Geometry, GeometryValue, Position};
use serde::Deserialize;
use serde_json::Value;

/// The features of a FeatureCollection, each read into a cell or into the problems that
/// only GeoJSON can have (missing id, wrong geometry type, malformed coordinates).
///
/// Geometry problems (ring length, closure, coordinates, self-intersection) are checked
/// afterwards, on cells however they were made.
pub(crate) fn read_features(text: &str) -> Result<Vec<Result<Cell, FeatureFailure>>, GridError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| GridError::Json {
        message: e.to_string(),
    })?;
    match (&doc.get("type"), doc.get("features")) {
        (Some(Value::String(t)), Some(Value::Array(features))) if t == "FeatureCollection" => {
            Ok(features.iter().map(read_feature).collect())
        }
        _ => Err(GridError::NotFeatureCollection {
            found: describe(&doc),
        }),
    }
}

/// The id (if usable) and problems of a feature that could not be read.
pub(crate) type FeatureFailure = (Option<String>, Vec<CellProblemKind>);

fn read_feature(feature: &Value) -> Result<Cell, FeatureFailure> {
    let props = feature.get("properties").and_then(Value::as_object);
    let mut kinds = Vec::new();
    let id = match props.and_then(|p| p.get("id")) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            kinds.push(CellProblemKind::NonStringId {
                found: short(other),
            });
            None
        }
        None => {
            kinds.push(CellProblemKind::MissingId);
            None
        }
    };
    let mut parent = |name: &'static str| match props.and_then(|p| p.get(name)) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            kinds.push(CellProblemKind::BadProperty { name });
            None
        }
    };
    let (community, street, district) = (parent("community"), parent("street"), parent("district"));
    let polygons = match feature.get("geometry") {
        None | Some(Value::Null) => {
            kinds.push(CellProblemKind::BadGeometry {
                message: "feature has no geometry".into(),
            });
            None
        }
        Some(g) => match Geometry::deserialize(g) {
            Err(e) => {
                kinds.push(CellProblemKind::BadGeometry {
                    message: e.to_string(),
                });
                None
            }
            Ok(geometry) => to_polygons(geometry.value, &mut kinds),
        },
    };
    match (id, polygons) {
        (Some(name), Some(polygons)) if kinds.is_empty() => Ok(Cell {
            name,
            community,
            street,
            district,
            polygons,
        }),
        (id, _) => Err((id, kinds)),
    }
}

fn to_polygons(value: GeometryValue, kinds: &mut Vec<CellProblemKind>) -> Option<Vec<Polygon>> {
    let raw = match value {
        GeometryValue::Polygon { coordinates } => vec![coordinates],
        GeometryValue::MultiPolygon { coordinates } => coordinates,
        other => {
            kinds.push(CellProblemKind::NotPolygon {
                found: other.type_name().to_string(),
            });
            return None;
        }
    };
    let before = kinds.len();
    let mut polygons = Vec::with_capacity(raw.len());
    for (pi, rings) in raw.into_iter().enumerate() {
        let mut rings = rings.into_iter().enumerate().map(|(ri, ring)| {
            to_ring(
                ring,
                RingRef {
                    polygon: pi,
                    ring: ri,
                },
                kinds,
            )
        });
        match rings.next() {
            None => kinds.push(CellProblemKind::EmptyGeometry),
            Some(exterior) => {
                let holes = rings.collect();
                polygons.push(Polygon { exterior, holes });
            }
        }
    }
    if polygons.is_empty() && kinds.len() == before {
        kinds.push(CellProblemKind::EmptyGeometry);
    }
    (kinds.len() == before).then_some(polygons)
}

fn to_ring(positions: Vec<Position>, at: RingRef, kinds: &mut Vec<CellProblemKind>) -> Ring {
    positions
        .iter()
        .enumerate()
        .map(|(position, p)| match p.as_slice() {
            [lon, lat, ..] => [*lon, *lat],
            _ => {
                kinds.push(CellProblemKind::ShortPosition { at, position });
                [f64::NAN, f64::NAN]
            }
        })
        .collect()
}

fn describe(v: &Value) -> String {
    match v {
        Value::Object(o) => match o.get("type") {
            Some(Value::String(t)) => format!("a {t}"),
            _ => "an object without a FeatureCollection `type` and `features` array".into(),
        },
        other => short(other),
    }
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 40 {
        let cut = (0..=40).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The cells as a GeoJSON FeatureCollection (coordinates written exactly: shortest
/// round-trip form).
pub(crate) fn write_cells(cells: &[Cell]) -> String {
    let features: Vec<geojson::Feature> = cells
        .iter()
        .map(|c| {
            let polys: Vec<Vec<Vec<Position>>> = c
                .polygons
                .iter()
                .map(|p| {
                    p.rings()
                        .map(|r| r.iter().map(|&xy| Position::from(xy)).collect())
                        .collect()
                })
                .collect();
            let value = if polys.len() == 1 {
                GeometryValue::Polygon {
                    coordinates: polys.into_iter().next().unwrap_or_default(),
                }
            } else {
                GeometryValue::MultiPolygon { coordinates: polys }
            };
            let mut f = geojson::Feature::from(Geometry::new(value));
            f.set_property("id", c.name.clone());
            for (key, v) in [
                ("community", &c.community),
                ("street", &c.street),
                ("district", &c.district),
            ] {
                if let Some(v) = v {
                    f.set_property(key, v.clone());
                }
            }
            f
        })
        .collect();
    geojson::FeatureCollection {
        bbox: None,
        features,
        foreign_members: None,
    }
    .to_string()
}
