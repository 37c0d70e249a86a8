//! Live worker state: status, load against capacity, position, last assignment.
//!
//! Read on the hot path without locks (atomics); written under a parking_lot mutex of the
//! worker's street office, so that a claim (status check + load increment) and every other
//! change of a worker are one consistent step, and threads working in different street
//! offices never wait for each other.

use crate::city::WorkerId;
use crate::grid::Location;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

/// Whether a worker takes new cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// On duty and taking cases (up to capacity).
    OnDuty,
    /// On duty but taking no new case (at an incident, in a meeting ...).
    Busy,
    /// Off duty.
    OffDuty,
}

impl WorkerStatus {
    fn to_u8(self) -> u8 {
        match self {
            WorkerStatus::OnDuty => 0,
            WorkerStatus::Busy => 1,
            WorkerStatus::OffDuty => 2,
        }
    }

    fn from_u8(v: u8) -> WorkerStatus {
        match v {
            0 => WorkerStatus::OnDuty,
            1 => WorkerStatus::Busy,
            _ => WorkerStatus::OffDuty,
        }
    }
}

/// A consistent copy of one worker's live state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorkerState {
    /// Whether they take new cases.
    pub status: WorkerStatus,
    /// Cases they hold now.
    pub load: u32,
    /// Cases they may hold at once.
    pub capacity: u32,
    /// Last known position (to 1e-7 degree, about 1 cm).
    pub position: Option<Location>,
    /// When that position was reported, in milliseconds since the Unix epoch, if the
    /// caller said ([`Router::set_position_at`](crate::Router::set_position_at)).
    pub position_at_ms: Option<u64>,
    /// Assignment ticket of their last case (0: none yet); fair rotation prefers the lowest.
    pub last_assigned: u64,
}

/// Positions are packed as two `i32` in 1e-7 degrees so that one atomic word holds both
/// coordinates and a reader never sees a longitude from one update with a latitude from
/// another.
const NO_POSITION: u64 = u64::MAX;
const E7: f64 = 1e7;

fn pack(p: Location) -> u64 {
    let lon = (p.lon() * E7).round() as i32;
    let lat = (p.lat() * E7).round() as i32;
    (u64::from(lon as u32) << 32) | u64::from(lat as u32)
}

#[inline]
pub(crate) fn unpack(v: u64) -> Option<[f64; 2]> {
    (v != NO_POSITION).then(|| {
        [
            f64::from((v >> 32) as u32 as i32) / E7,
            f64::from(v as u32 as i32) / E7,
        ]
    })
}

/// One worker's slot. 32 bytes, so two share a cache line at most.
#[derive(Debug)]
#[repr(align(32))]
pub(crate) struct Slot {
    status: AtomicU8,
    load: AtomicU32,
    capacity: AtomicU32,
    position: AtomicU64,
    last: AtomicU64,
}

/// Every worker's slot, and one lock per street office for writers.
#[derive(Debug)]
pub(crate) struct Board {
    slots: Vec<Slot>,
    /// When each position was reported (ms since the epoch; 0: not said). Off the hot
    /// path, so kept out of the 32-byte slots.
    position_at: Vec<AtomicU64>,
    shard_of: Vec<u32>,
    shards: Vec<Mutex<ShardStats>>,
    ticket: AtomicU64,
}

/// Per street office counters, kept under the shard's lock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardStats {
    pub(crate) claims: u64,
    pub(crate) releases: u64,
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimFailure {
    NotOnDuty,
    Full,
}

impl Board {
    /// `workers[i] = (capacity, position, shard)`.
    pub(crate) fn new(
        workers: impl Iterator<Item = (u32, Option<Location>, u32)>,
        shards: usize,
    ) -> Board {
        let mut slots = Vec::new();
        let mut shard_of = Vec::new();
        for (capacity, position, shard) in workers {
            slots.push(Slot {
                status: AtomicU8::new(WorkerStatus::OnDuty.to_u8()),
                load: AtomicU32::new(0),
                capacity: AtomicU32::new(capacity),
                position: AtomicU64::new(position.map_or(NO_POSITION, pack)),
                last: AtomicU64::new(0),
            });
            shard_of.push(shard);
        }
        Board {
            position_at: slots.iter().map(|_| AtomicU64::new(0)).collect(),
            slots,
            shard_of,
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(ShardStats::default()))
                .collect(),
            ticket: AtomicU64::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn slot(&self, w: WorkerId) -> &Slot {
        &self.slots[w.index()]
    }

    fn shard(&self, w: WorkerId) -> &Mutex<ShardStats> {
        &self.shards[self.shard_of[w.index()] as usize]
    }

    /// Gives `w` one more case if they are on duty and under capacity, as one step.
    pub(crate) fn claim(&self, w: WorkerId) -> Result<(), ClaimFailure> {
        let mut shard = self.shard(w).lock();
        let s = &self.slots[w.index()];
        if s.status.load(Ordering::Acquire) != 0 {
            return Err(ClaimFailure::NotOnDuty);
        }
        let load = s.load.load(Ordering::Acquire);
        if load >= s.capacity.load(Ordering::Acquire) {
            return Err(ClaimFailure::Full);
        }
        s.load.store(load + 1, Ordering::Release);
        s.last.store(
            self.ticket.fetch_add(1, Ordering::Relaxed) + 1,
            Ordering::Release,
        );
        shard.claims += 1;
        Ok(())
    }

    /// Gives `w` one more case whatever their status and capacity: the command center's
    /// override (a new assignment, so it takes a ticket), and restoring cases a worker held
    /// (not a new assignment: `ticket` false keeps their fair-rotation place).
    pub(crate) fn claim_forced(&self, w: WorkerId, ticket: bool) {
        let mut shard = self.shard(w).lock();
        let s = &self.slots[w.index()];
        s.load
            .store(s.load.load(Ordering::Acquire) + 1, Ordering::Release);
        if ticket {
            s.last.store(
                self.ticket.fetch_add(1, Ordering::Relaxed) + 1,
                Ordering::Release,
            );
        }
        shard.claims += 1;
    }

    /// Restores a worker's fair-rotation ticket, and keeps the next ticket above it.
    pub(crate) fn set_last_assigned(&self, w: WorkerId, ticket: u64) {
        let _shard = self.shard(w).lock();
        self.slots[w.index()].last.store(ticket, Ordering::Release);
        self.ticket.fetch_max(ticket, Ordering::Relaxed);
    }

    /// The last ticket handed out.
    pub(crate) fn ticket(&self) -> u64 {
        self.ticket.load(Ordering::Relaxed)
    }

    /// Keeps the next ticket above `ticket`.
    pub(crate) fn raise_ticket(&self, ticket: u64) {
        self.ticket.fetch_max(ticket, Ordering::Relaxed);
    }

    /// Takes one case off `w`. False if they held none.
    pub(crate) fn release(&self, w: WorkerId) -> bool {
        let mut shard = self.shard(w).lock();
        let s = &self.slots[w.index()];
        let load = s.load.load(Ordering::Acquire);
        if load == 0 {
            return false;
        }
        s.load.store(load - 1, Ordering::Release);
        shard.releases += 1;
        true
    }

    pub(crate) fn set_status(&self, w: WorkerId, status: WorkerStatus) {
        let _shard = self.shard(w).lock();
        self.slots[w.index()]
            .status
            .store(status.to_u8(), Ordering::Release);
    }

    pub(crate) fn set_capacity(&self, w: WorkerId, capacity: u32) {
        let _shard = self.shard(w).lock();
        self.slots[w.index()]
            .capacity
            .store(capacity, Ordering::Release);
    }

    /// Moves `w`. One atomic store: no lock, since a position is one word and needs no
    /// agreement with any other field.
    #[inline]
    pub(crate) fn set_position(&self, w: WorkerId, p: Location) {
        self.slots[w.index()]
            .position
            .store(pack(p), Ordering::Release);
    }

    /// Moves `w` and records when the position was reported.
    pub(crate) fn set_position_at(&self, w: WorkerId, p: Location, at_ms: u64) {
        self.set_position(w, p);
        self.position_at[w.index()].store(at_ms, Ordering::Release);
    }

    pub(crate) fn state(&self, w: WorkerId) -> WorkerState {
        let _shard = self.shard(w).lock();
        let s = &self.slots[w.index()];
        WorkerState {
            status: WorkerStatus::from_u8(s.status.load(Ordering::Acquire)),
            load: s.load.load(Ordering::Acquire),
            capacity: s.capacity.load(Ordering::Acquire),
            position: s.position(),
            last_assigned: s.last.load(Ordering::Acquire),
            position_at_ms: match self.position_at[w.index()].load(Ordering::Acquire) {
                0 => None,
                t => Some(t),
            },
        }
    }

    /// Claims and releases so far, summed over street offices.
    pub(crate) fn totals(&self) -> ShardStats {
        self.shards.iter().fold(ShardStats::default(), |mut t, s| {
            let s = s.lock();
            t.claims += s.claims;
            t.releases += s.releases;
            t
        })
    }
}

impl Slot {
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.load.load(Ordering::Acquire)
    }
    #[inline]
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity.load(Ordering::Acquire)
    }
    #[inline]
    pub(crate) fn on_duty(&self) -> bool {
        self.status.load(Ordering::Acquire) == 0
    }
    #[inline]
    pub(crate) fn position(&self) -> Option<Location> {
        unpack(self.position.load(Ordering::Acquire))
            .map(|[lon, lat]| Location::from_checked(lon, lat))
    }
    #[inline]
    pub(crate) fn last_assigned(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_pack_to_a_centimetre() {
        for (lon, lat) in [
            (120.3812345, 36.0712345),
            (-180.0, -90.0),
            (180.0, 90.0),
            (0.0, 0.0),
        ] {
            let [x, y] = unpack(pack(Location::new(lon, lat).unwrap())).unwrap();
            assert!(
                (x - lon).abs() <= 0.5e-7 && (y - lat).abs() <= 0.5e-7,
                "{x} {y}"
            );
        }
        assert_eq!(unpack(NO_POSITION), None);
    }

    #[test]
    fn claims_respect_status_and_capacity() {
        let board = Board::new([(2, None, 0)].into_iter(), 1);
        let w = WorkerId(0);
        assert_eq!(board.claim(w), Ok(()));
        assert_eq!(board.claim(w), Ok(()));
        assert_eq!(board.claim(w), Err(ClaimFailure::Full));
        assert!(board.release(w));
        board.set_status(w, WorkerStatus::Busy);
        assert_eq!(board.claim(w), Err(ClaimFailure::NotOnDuty));
        assert!(board.release(w));
        assert!(!board.release(w));
        let st = board.state(w);
        assert_eq!(
            (st.load, st.capacity, st.status),
            (0, 2, WorkerStatus::Busy)
        );
        assert_eq!(board.totals().claims, 2);
    }
}
