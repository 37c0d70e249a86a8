//! Clocks: the engine reads time only through [`Clock`], so that tests and simulations run
//! on a [`SimClock`] they move by hand while a deployment uses the [`SystemClock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time: milliseconds since the Unix epoch (UTC).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    #[inline]
    pub fn ms(self) -> u64 {
        self.0
    }

    /// This time moved forward by `d` (saturating; sub-millisecond parts are dropped).
    #[inline]
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_ms(d)))
    }

    /// Time from `earlier` to this one (zero if `earlier` is later).
    #[inline]
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
#[inline]
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where the engine reads the time. `Send + Sync`; shared as an `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Whether time moves by itself. The engine runs its own deadline ticker only on a
    /// clock that does; on a simulated clock the owner calls
    /// [`Engine::tick`](crate::Engine::tick) after moving it.
    fn is_real_time(&self) -> bool {
        false
    }
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock set before 1970 reads as the epoch rather than failing.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_ms);
        Timestamp(ms)
    }

    fn is_real_time(&self) -> bool {
        true
    }
}

/// A clock that moves only when told to: tests and simulations advance it and then let the
/// engine look at its deadlines. Cloning shares the same time.
///
/// ```
/// use std::time::Duration;
/// use wangge::{Clock, SimClock, Timestamp};
///
/// let clock = SimClock::new(Timestamp(1_000));
/// let seen_by_engine = clock.clone();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(seen_by_engine.now(), Timestamp(3_000));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SimClock {
    now: Arc<AtomicU64>,
}

impl SimClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> SimClock {
        SimClock {
            now: Arc::new(AtomicU64::new(start.0)),
        }
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = duration_ms(d);
        let _ = self
            .now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the clock. Time never goes back: an earlier `t` leaves it where it is.
    pub fn set(&self, t: Timestamp) {
        self.now.fetch_max(t.0, Ordering::AcqRel);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_moves_only_forward_and_is_shared() {
        let c = SimClock::new(Timestamp(10));
        let d = c.clone();
        c.advance(Duration::from_millis(5));
        assert_eq!(d.now(), Timestamp(15));
        c.set(Timestamp(3));
        assert_eq!(d.now(), Timestamp(15));
        c.set(Timestamp(40));
        assert_eq!(d.now(), Timestamp(40));
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp(1_577_836_800_000));
    }
}
