//! A validated WGS84 position.

use serde::{Deserialize, Serialize};

/// Why a pair of numbers is not a [`Location`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// A coordinate is NaN or infinite.
    #[error("coordinate is not a finite number (lon {lon}, lat {lat})")]
    NotFinite {
        /// The longitude given.
        lon: f64,
        /// The latitude given.
        lat: f64,
    },
    /// The longitude is outside [-180, 180] or the latitude outside [-90, 90].
    #[error("coordinate out of range (lon {lon} must be in [-180, 180], lat {lat} in [-90, 90])")]
    OutOfRange {
        /// The longitude given.
        lon: f64,
        /// The latitude given.
        lat: f64,
    },
}

/// The mean Earth radius in metres, the sphere [`Location::distance_m`] measures on.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Metres per degree along a meridian on that sphere.
pub const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// A WGS84 longitude/latitude pair in degrees, checked at construction.
///
/// Both coordinates are finite, `|lon| <= 180` and `|lat| <= 90`. Every value of this type
/// is therefore safe to hand to [`Grid::locate`](crate::Grid::locate) and to the router.
///
/// ```
/// use wangge::{Location, LocationError};
///
/// let p = Location::new(120.38, 36.07)?;
/// assert_eq!((p.lon(), p.lat()), (120.38, 36.07));
/// assert!(matches!(Location::new(f64::NAN, 0.0), Err(LocationError::NotFinite { .. })));
/// assert!(matches!(Location::new(181.0, 0.0), Err(LocationError::OutOfRange { .. })));
/// # Ok::<(), LocationError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Location {
    lon: f64,
    lat: f64,
}

impl Location {
    /// Checks and wraps a longitude/latitude pair.
    ///
    /// # Errors
    /// [`LocationError::NotFinite`] for NaN or infinities, [`LocationError::OutOfRange`] for
    /// `|lon| > 180` or `|lat| > 90`.
    pub fn new(lon: f64, lat: f64) -> Result<Self, LocationError> {
        if !lon.is_finite() || !lat.is_finite() {
            return Err(LocationError::NotFinite { lon, lat });
        }
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(LocationError::OutOfRange { lon, lat });
        }
        Ok(Location { lon, lat })
    }

    /// A pair already known to be in range (it came out of a `Location`).
    #[inline]
    pub(crate) fn from_checked(lon: f64, lat: f64) -> Location {
        debug_assert!(Location::new(lon, lat).is_ok());
        Location { lon, lat }
    }

    /// Longitude in degrees, in [-180, 180].
    #[inline]
    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Latitude in degrees, in [-90, 90].
    #[inline]
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Great-circle distance to `other` in metres (haversine, mean Earth radius).
    ///
    /// Accurate to well under 0.5 % at city scale, which is what choosing the nearest
    /// worker or service point needs.
    pub fn distance_m(self, other: Location) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lon - self.lon).to_radians();
        let h =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            lon: f64,
            lat: f64,
        }
        let raw = Raw::deserialize(deserializer)?;
        Location::new(raw.lon, raw.lat).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<(f64, f64)> for Location {
    type Error = LocationError;
    fn try_from((lon, lat): (f64, f64)) -> Result<Self, Self::Error> {
        Location::new(lon, lat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_every_bad_coordinate() {
        for (lon, lat) in [
            (f64::NAN, 0.0),
            (0.0, f64::NAN),
            (f64::INFINITY, 0.0),
            (0.0, f64::NEG_INFINITY),
        ] {
            assert!(matches!(
                Location::new(lon, lat),
                Err(LocationError::NotFinite { .. })
            ));
        }
        for (lon, lat) in [(180.000001, 0.0), (-181.0, 0.0), (0.0, 90.5), (0.0, -91.0)] {
            assert!(matches!(
                Location::new(lon, lat),
                Err(LocationError::OutOfRange { .. })
            ));
        }
        for (lon, lat) in [(180.0, 90.0), (-180.0, -90.0), (0.0, 0.0)] {
            assert!(Location::new(lon, lat).is_ok());
        }
    }

    #[test]
    fn deserializing_validates() {
        let ok: Location = serde_json::from_str(r#"{"lon": 120.5, "lat": 36.1}"#).unwrap();
        assert_eq!(ok.lon(), 120.5);
        assert!(serde_json::from_str::<Location>(r#"{"lon": 200, "lat": 36.1}"#).is_err());
    }

    #[test]
    fn distance_is_metric_at_city_scale() {
        let a = Location::new(120.38, 36.07).unwrap();
        let b = Location::new(120.39, 36.07).unwrap();
        // One hundredth of a degree of longitude at 36.07 N is about 899 m.
        let d = a.distance_m(b);
        assert!((d - 899.0).abs() < 3.0, "{d}");
        assert_eq!(a.distance_m(a), 0.0);
    }
}
