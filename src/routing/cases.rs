//! Case identity in the router: which worker holds each case, and who returned it.
//!
//! The router keeps a record only for cases that a worker holds now or that have been
//! returned (退单) at least once: the first so that releasing a case twice frees one slot,
//! not two, and a worker can only return what they hold; the second so that the 退单 breaker
//! counts distinct returners over the case's life, whatever the caller says.
//!
//! Records live in shards chosen by the case id, each behind a parking_lot mutex. A
//! decision locks its case's shard for its whole length (then, inside it, the worker's
//! street-office lock for the claim): two decisions on one case never interleave, and the
//! lock order (case shard, then street office) is the same everywhere.

use super::router::MAX_RETURNS;
use crate::city::WorkerId;
use parking_lot::{Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A case's identity: the number the engine (or the caller) gave it. Small, `Copy`, the
/// same in every record and file.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CaseId(pub u64);

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// No worker.
const NOBODY: u32 = u32::MAX;

/// What the router keeps on one case. Its returners live out of line: few cases are ever
/// returned, and a small record keeps the shard tables small (a decision and a release
/// each read one).
#[derive(Debug, Clone)]
pub(crate) struct CaseRecord {
    worker: u32,
    returned: u8,
    returners: Option<Box<[u32; MAX_RETURNS as usize]>>,
}

impl Default for CaseRecord {
    fn default() -> Self {
        CaseRecord {
            worker: NOBODY,
            returned: 0,
            returners: None,
        }
    }
}

impl CaseRecord {
    /// The worker holding the case now.
    #[inline]
    pub(crate) fn worker(&self) -> Option<WorkerId> {
        (self.worker != NOBODY).then_some(WorkerId(self.worker))
    }

    pub(crate) fn set_worker(&mut self, w: Option<WorkerId>) {
        self.worker = w.map_or(NOBODY, |w| w.0);
    }

    /// Everyone who returned the case, first returner first, each once.
    #[inline]
    pub(crate) fn returners(&self) -> &[u32] {
        match &self.returners {
            Some(r) => &r[..usize::from(self.returned)],
            None => &[],
        }
    }

    /// Records a return by `w`; a worker who returned the case before is not counted again.
    /// False if the record is full (the breaker sends a case to a ruling long before).
    pub(crate) fn add_returner(&mut self, w: WorkerId) -> bool {
        if self.returners().contains(&w.0) {
            return true;
        }
        let n = usize::from(self.returned);
        let list = self
            .returners
            .get_or_insert_with(|| Box::new([NOBODY; MAX_RETURNS as usize]));
        match list.get_mut(n) {
            Some(slot) => {
                *slot = w.0;
                self.returned += 1;
                true
            }
            None => false,
        }
    }

    /// Whether the record says nothing worth keeping.
    pub(crate) fn is_empty(&self) -> bool {
        self.worker == NOBODY && self.returned == 0
    }
}

/// Mixes the high bits of a case id (all but the low [`BLOCK_BITS`]).
#[inline]
fn mix(id: u64) -> u64 {
    let h = (id >> BLOCK_BITS).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// Ids in blocks of this many bits' worth of consecutive numbers share their shard and a
/// run of neighbouring table slots.
const BLOCK_BITS: u32 = 8;

/// A hasher for case ids. The engine numbers its cases consecutively and works on them in
/// batches of consecutive ids, so an id's low bits stay its slot's low bits (scrambled
/// within the block by the mixed high bits): a batch touches a few runs of adjacent slots
/// instead of a cache line per case. The high bits, mixed, place the block and give the
/// table's tag bits, so ids taken at any stride still spread; the id's own low bits go
/// into the tag too, so that the ids of one block, which sit side by side in the table,
/// differ in their tags and a probe compares no key but its own. One multiply, so the hot
/// path pays no SipHash; ids are chosen by the caller, so a hostile sequence could crowd
/// one bucket chain; the shard is still bounded by the number of open cases.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        let m = mix(v);
        let low = (1u64 << BLOCK_BITS) - 1;
        // The table's tag is the top seven bits.
        self.0 = ((m & !low) | ((v ^ m) & low)) ^ ((v & 0x7f) << 57);
    }
}

type Shard = HashMap<CaseId, CaseRecord, BuildHasherDefault<IdHasher>>;

/// The shard of a case: its block's, so that a batch of consecutive cases takes few
/// locks. Other bits of the mix than the table's tag bits, which would otherwise be alike
/// for every record of a shard.
#[inline]
fn shard_of(case: CaseId) -> usize {
    (mix(case.0).rotate_left(29) >> (64 - SHARD_BITS)) as usize
}

/// Shards of case records.
#[derive(Debug)]
pub(crate) struct CaseBook {
    shards: Box<[Mutex<Shard>]>,
}

const SHARD_BITS: u32 = 6;

impl CaseBook {
    /// A book whose shards together hold `expected` records before they grow. Ids come to
    /// a shard a block at a time, so each has room for twice its share and two more whole
    /// blocks.
    pub(crate) fn new(expected: usize) -> CaseBook {
        let per = expected / (1 << SHARD_BITS) * 2 + (2 << BLOCK_BITS);
        CaseBook {
            shards: (0..1 << SHARD_BITS)
                .map(|_| Mutex::new(Shard::with_capacity_and_hasher(per, Default::default())))
                .collect(),
        }
    }

    /// The shard of `case`, locked.
    #[inline]
    pub(crate) fn lock(&self, case: CaseId) -> MutexGuard<'_, Shard> {
        self.shards[shard_of(case)].lock()
    }

    /// Every record, shard by shard (each shard locked while it is read).
    pub(crate) fn all(&self) -> Vec<(CaseId, CaseRecord)> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(s.lock().iter().map(|(&k, v)| (k, v.clone())));
        }
        out.sort_unstable_by_key(|&(k, _)| k);
        out
    }

    /// Whether no case is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.lock().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returners_are_counted_once_each() {
        let mut r = CaseRecord::default();
        assert!(r.is_empty());
        assert!(r.add_returner(WorkerId(3)));
        assert!(r.add_returner(WorkerId(3)));
        assert!(r.add_returner(WorkerId(5)));
        assert_eq!(r.returners(), &[3, 5]);
        for w in 10..24 {
            assert!(r.add_returner(WorkerId(w)));
        }
        assert!(
            !r.add_returner(WorkerId(99)),
            "the record holds 16 returners"
        );
        assert_eq!(r.returners().len(), usize::from(MAX_RETURNS));
    }

    fn hash(id: u64) -> u64 {
        let mut h = IdHasher::default();
        h.write_u64(id);
        h.finish()
    }

    #[test]
    fn consecutive_ids_share_a_shard_and_a_run_of_slots() {
        for block in [0u64, 1, 77, 1 << 40] {
            let ids: Vec<u64> = (0..256).map(|i| (block << BLOCK_BITS) + i).collect();
            let shard = shard_of(CaseId(ids[0]));
            assert!(ids.iter().all(|&id| shard_of(CaseId(id)) == shard));
            // The block's 256 ids fill 256 different slots of one aligned run.
            let high: std::collections::HashSet<u64> =
                ids.iter().map(|&id| (hash(id) << 7) >> (8 + 7)).collect();
            assert_eq!(high.len(), 1);
            let low: std::collections::HashSet<u64> =
                ids.iter().map(|&id| hash(id) & 0xff).collect();
            assert_eq!(low.len(), 256);
            // Any 128 ids in a row carry 128 different tags (the top seven bits), so a
            // probe finds no other id of its block under its own tag.
            for run in ids.windows(128).step_by(64) {
                let tags: std::collections::HashSet<u64> =
                    run.iter().map(|&id| hash(id) >> 57).collect();
                assert_eq!(tags.len(), 128);
            }
        }
    }

    #[test]
    fn strided_ids_still_spread_over_slots_tags_and_shards() {
        for stride in [1u64 << 8, 1 << 10, 1 << 16, 1000] {
            let ids: Vec<u64> = (0..4096).map(|i| i * stride).collect();
            let slots: std::collections::HashSet<u64> =
                ids.iter().map(|&id| hash(id) & 0xfff).collect();
            assert!(slots.len() > 2000, "stride {stride}: {} slots", slots.len());
            let tags: std::collections::HashSet<u64> =
                ids.iter().map(|&id| hash(id) >> 57).collect();
            assert_eq!(tags.len(), 128, "stride {stride}");
            let shards: std::collections::HashSet<usize> =
                ids.iter().map(|&id| shard_of(CaseId(id))).collect();
            assert_eq!(shards.len(), 1 << SHARD_BITS, "stride {stride}");
        }
    }

    #[test]
    fn a_record_keeps_its_returners_out_of_line_only_once_returned() {
        let mut r = CaseRecord::default();
        r.set_worker(Some(WorkerId(4)));
        assert!(r.returners.is_none() && r.returners().is_empty() && !r.is_empty());
        assert!(r.add_returner(WorkerId(4)));
        r.set_worker(None);
        assert_eq!(r.returners(), &[4]);
        assert!(!r.is_empty());
        assert!(std::mem::size_of::<CaseRecord>() <= 16);
    }

    #[test]
    fn one_case_always_lands_in_one_shard() {
        let book = CaseBook::new(100);
        book.lock(CaseId(7))
            .entry(CaseId(7))
            .or_default()
            .set_worker(Some(WorkerId(1)));
        assert_eq!(
            book.lock(CaseId(7))
                .get(&CaseId(7))
                .and_then(|r| r.worker()),
            Some(WorkerId(1))
        );
        assert_eq!(book.all().len(), 1);
        assert!(!book.is_empty());
    }
}
