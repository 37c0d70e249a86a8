//! Policies: how one worker is chosen among the candidates of a ring.

use crate::city::WorkerId;
use crate::grid::{Location, M_PER_DEG};
use serde::{Deserialize, Serialize};

/// What a policy sees of one candidate: read from the live worker state without locks.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The worker.
    pub worker: WorkerId,
    /// Cases they hold now.
    pub load: u32,
    /// Cases they may hold at once (> `load`: only available workers are candidates).
    pub capacity: u32,
    /// Assignment ticket of their last case (0: none yet). Lower means longer ago.
    pub last_assigned: u64,
    /// Their last known position.
    pub position: Option<Location>,
    /// Where the case is.
    pub case: Location,
    /// `cos(latitude)` of the case, so distances need no trigonometry per candidate.
    pub cos_lat: f64,
}

impl Candidate {
    /// Distance in metres from the worker to the case (equirectangular, exact to well
    /// under 0.1 % across a city), or `None` if the worker's position is unknown.
    #[inline]
    pub fn distance_m(&self) -> Option<f64> {
        self.position.map(|p| {
            let dx = (p.lon() - self.case.lon()) * self.cos_lat * M_PER_DEG;
            let dy = (p.lat() - self.case.lat()) * M_PER_DEG;
            // No overflow to guard against at the Earth's scale: a plain square root is
            // several times cheaper than `hypot`.
            (dx * dx + dy * dy).sqrt()
        })
    }
}

/// A rule for choosing among candidates: the lowest rank wins, ties go to the lowest
/// worker id, so the choice is deterministic.
///
/// Only [`Policy::rank`] is required. Ranks are compared within one decision only.
///
/// ```
/// use wangge::Policy;
/// use wangge::routing::Candidate;
///
/// /// Prefers whoever holds the fewest cases, whatever their capacity.
/// #[derive(Debug)]
/// struct FewestCases;
///
/// impl Policy for FewestCases {
///     fn rank(&self, c: &Candidate) -> u64 {
///         u64::from(c.load)
///     }
///     fn name(&self) -> &'static str {
///         "fewest cases"
///     }
/// }
/// ```
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The candidate's rank: lower is better.
    fn rank(&self, candidate: &Candidate) -> u64;

    /// A short name for traces.
    fn name(&self) -> &'static str {
        "custom"
    }
}

/// The nearest worker to the case, by distance in metres; workers whose position is
/// unknown come after every located one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nearest;

impl Policy for Nearest {
    #[inline]
    fn rank(&self, c: &Candidate) -> u64 {
        // Centimetres: finer than any position we hold, and an integer rank.
        c.distance_m().map_or(u64::MAX, |d| (d * 100.0) as u64)
    }
    fn name(&self) -> &'static str {
        "nearest"
    }
}

/// The worker with the smallest share of their capacity in use.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastLoaded;

impl Policy for LeastLoaded {
    #[inline]
    fn rank(&self, c: &Candidate) -> u64 {
        (u64::from(c.load) << 32) / u64::from(c.capacity.max(1))
    }
    fn name(&self) -> &'static str {
        "least loaded"
    }
}

/// Fair rotation: the worker whose last case is the oldest (never assigned first), so that
/// the same person is not always picked.
#[derive(Debug, Clone, Copy, Default)]
pub struct FairRotation;

impl Policy for FairRotation {
    #[inline]
    fn rank(&self, c: &Candidate) -> u64 {
        c.last_assigned
    }
    fn name(&self) -> &'static str {
        "fair rotation"
    }
}

/// The built-in policies, by name, for configuration files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// [`Nearest`].
    #[default]
    Nearest,
    /// [`LeastLoaded`].
    LeastLoaded,
    /// [`FairRotation`].
    FairRotation,
}

impl PolicyKind {
    /// The policy itself.
    pub fn policy(self) -> Box<dyn Policy> {
        match self {
            PolicyKind::Nearest => Box::new(Nearest),
            PolicyKind::LeastLoaded => Box::new(LeastLoaded),
            PolicyKind::FairRotation => Box::new(FairRotation),
        }
    }
}

/// The policy a router ranks with: a built-in one is called directly (so that its rank is
/// worked out in line in the candidate loop), one of the caller's through its trait object.
#[derive(Debug)]
pub(crate) enum Ranker {
    Builtin(PolicyKind),
    Custom(Box<dyn Policy>),
}

impl Ranker {
    #[inline(always)]
    pub(crate) fn rank(&self, c: &Candidate) -> u64 {
        match self {
            Ranker::Builtin(PolicyKind::Nearest) => Nearest.rank(c),
            Ranker::Builtin(PolicyKind::LeastLoaded) => LeastLoaded.rank(c),
            Ranker::Builtin(PolicyKind::FairRotation) => FairRotation.rank(c),
            Ranker::Custom(p) => p.rank(c),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Ranker::Builtin(PolicyKind::Nearest) => Nearest.name(),
            Ranker::Builtin(PolicyKind::LeastLoaded) => LeastLoaded.name(),
            Ranker::Builtin(PolicyKind::FairRotation) => FairRotation.name(),
            Ranker::Custom(p) => p.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(load: u32, capacity: u32, last: u64, position: Option<[f64; 2]>) -> Candidate {
        let position = position.map(|[lon, lat]| Location::new(lon, lat).unwrap());
        let case = Location::new(120.38, 36.07).unwrap();
        Candidate {
            worker: WorkerId(0),
            load,
            capacity,
            last_assigned: last,
            position,
            case,
            cos_lat: case.lat().to_radians().cos(),
        }
    }

    #[test]
    fn distance_matches_haversine_at_city_scale() {
        let c = cand(0, 1, 0, Some([120.43, 36.11]));
        let hav = c.case.distance_m(Location::new(120.43, 36.11).unwrap());
        let d = c.distance_m().unwrap();
        assert!((d - hav).abs() / hav < 1e-3, "{d} vs {hav}");
    }

    #[test]
    fn ranks_order_as_documented() {
        let near = cand(0, 1, 0, Some([120.381, 36.07]));
        let far = cand(0, 1, 0, Some([120.39, 36.07]));
        let lost = cand(0, 1, 0, None);
        assert!(Nearest.rank(&near) < Nearest.rank(&far));
        assert!(Nearest.rank(&far) < Nearest.rank(&lost));
        assert!(LeastLoaded.rank(&cand(1, 4, 0, None)) < LeastLoaded.rank(&cand(1, 2, 0, None)));
        assert!(FairRotation.rank(&cand(0, 1, 3, None)) < FairRotation.rank(&cand(0, 1, 9, None)));
    }
}
