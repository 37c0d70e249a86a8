//! Reports, cases and the case store.
//!
//! The store is a table of segments of [`SEGMENT`] cases, each behind its own parking_lot
//! mutex. Case ids are handed out in increasing order, a batch of reports gets consecutive
//! ids, so a stage that works on a batch takes one or two locks for the whole batch instead
//! of one per case, and threads working on different batches rarely meet.

use super::CaseId;
use super::lifecycle::{Action, Actor, CaseState, Transition};
use crate::city::{CategoryId, DepartmentId, Priority, WorkerId};
use crate::clock::Timestamp;
use crate::grid::{CellId, Location};
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A grid worker on patrol (网格员巡查).
    Patrol,
    /// The citizen hotline 12345.
    Hotline,
    /// A sensor (camera, smoke or water-level alarm...).
    Sensor,
    /// Referred by a department.
    Referral,
}

/// Who reported a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reporter {
    /// Nobody who can be called back.
    Anonymous,
    /// A citizen, by the application's own numbering (a caller id, an account).
    Citizen(u32),
    /// A grid worker.
    Worker(WorkerId),
    /// A sensor, by the application's own numbering.
    Sensor(u32),
    /// A department.
    Department(DepartmentId),
}

/// The reporter's (or the center's) verdict when a case is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意.
    Satisfied,
    /// 基本满意.
    Basic,
    /// 不满意.
    Dissatisfied,
}

impl Satisfaction {
    pub(crate) fn code(self) -> u8 {
        match self {
            Satisfaction::Satisfied => 1,
            Satisfaction::Basic => 2,
            Satisfaction::Dissatisfied => 3,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Satisfaction> {
        match c {
            1 => Some(Satisfaction::Satisfied),
            2 => Some(Satisfaction::Basic),
            3 => Some(Satisfaction::Dissatisfied),
            _ => None,
        }
    }
}

/// An incident as reported: what, where, when, how urgent, by whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Where it came from.
    pub source: Source,
    /// Its category in the city's catalogue.
    pub category: CategoryId,
    /// Where it is.
    pub location: Location,
    /// When it was seen.
    pub at: Timestamp,
    /// How urgent it is.
    pub priority: Priority,
    /// Who reported it.
    pub reporter: Reporter,
    /// Free text (empty for none; at most [`MAX_DESCRIPTION`] bytes).
    pub description: String,
    /// On-the-spot handling (随手办): the reporting worker takes the case at once if the
    /// case is theirs to hold. Only for a patrol report by a worker.
    pub on_the_spot: bool,
}

/// The longest description a report may carry, in bytes.
pub const MAX_DESCRIPTION: usize = 4096;

impl Report {
    /// A report of normal priority, by nobody in particular, without a description.
    pub fn new(source: Source, category: CategoryId, location: Location, at: Timestamp) -> Report {
        Report {
            source,
            category,
            location,
            at,
            priority: Priority::Normal,
            reporter: Reporter::Anonymous,
            description: String::new(),
            on_the_spot: false,
        }
    }

    /// The same report with another priority.
    pub fn with_priority(mut self, priority: Priority) -> Report {
        self.priority = priority;
        self
    }

    /// The same report by `reporter`.
    pub fn with_reporter(mut self, reporter: Reporter) -> Report {
        self.reporter = reporter;
        self
    }

    /// The same report with a description.
    pub fn with_description(mut self, text: impl Into<String>) -> Report {
        self.description = text.into();
        self
    }

    /// The same report, to be handled on the spot by its reporting worker (随手办).
    pub fn on_the_spot(mut self) -> Report {
        self.on_the_spot = true;
        self
    }
}

/// A case as the command center sees it: its report, where it is now and its whole
/// history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Case {
    /// Its id.
    pub id: CaseId,
    /// Where the report came from.
    pub source: Source,
    /// Category.
    pub category: CategoryId,
    /// Where.
    pub location: Location,
    /// When it was seen.
    pub reported_at: Timestamp,
    /// How urgent.
    pub priority: Priority,
    /// Who reported it.
    pub reporter: Reporter,
    /// The report's text.
    pub description: String,
    /// The cell it lies in (none before collection, or outside the grid).
    pub cell: Option<CellId>,
    /// Its state.
    pub state: CaseState,
    /// The worker who holds it now (dispatched or accepted).
    pub worker: Option<WorkerId>,
    /// The worker who resolved it last.
    pub resolver: Option<WorkerId>,
    /// When it must be resolved (moved by extensions and suspensions).
    pub due: Option<Timestamp>,
    /// When its worker must have accepted it.
    pub accept_by: Option<Timestamp>,
    /// Whether its clock is stopped (缓办).
    pub suspended: bool,
    /// How many levels up it has been escalated (督办); 0 for none.
    pub escalation: u8,
    /// Whether a reminder (催办) went out.
    pub reminded: bool,
    /// How many times it was returned (退单).
    pub returns: u8,
    /// How many times it was reopened (返工).
    pub reopens: u8,
    /// The verdict at closure.
    pub satisfaction: Option<Satisfaction>,
    /// Whether it was resolved by its deadline (suspended time not counted).
    pub on_time: Option<bool>,
    /// The case it duplicates, if merged.
    pub merged_into: Option<CaseId>,
    /// Cases merged into it.
    pub duplicates: Vec<CaseId>,
    /// Every transition, oldest first.
    pub history: Vec<Transition>,
    /// Free-text reasons given with some transitions: (index in `history`, text).
    pub notes: Vec<(usize, String)>,
}

pub(crate) const NONE32: u32 = u32::MAX;
pub(crate) const NONE64: u64 = u64::MAX;

pub(crate) const F_REMINDED: u8 = 1;
pub(crate) const F_ON_TIME: u8 = 2;
pub(crate) const F_LATE: u8 = 4;
pub(crate) const F_ON_SPOT: u8 = 8;
pub(crate) const F_UNCLAIMED: u8 = 16;

/// What most cases never need, kept out of line.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub(crate) description: Box<str>,
    /// (index in the history, interned text).
    pub(crate) notes: Vec<(u32, u32)>,
    pub(crate) duplicates: Vec<CaseId>,
}

/// A case in the store. About 144 bytes plus its history (16 bytes per transition).
#[derive(Debug)]
pub(crate) struct Rec {
    pub(crate) at: u64,
    pub(crate) location: Location,
    pub(crate) due: u64,
    pub(crate) accept_by: u64,
    pub(crate) suspended_at: u64,
    pub(crate) parent: u64,
    pub(crate) armed: u64,
    pub(crate) history: History,
    pub(crate) extra: Option<Box<Extra>>,
    pub(crate) reporter: Reporter,
    pub(crate) cell: u32,
    pub(crate) category: u32,
    pub(crate) worker: u32,
    pub(crate) resolver: u32,
    pub(crate) organ: u32,
    pub(crate) state: CaseState,
    pub(crate) source: Source,
    pub(crate) priority: Priority,
    pub(crate) escalation: u8,
    pub(crate) returns: u8,
    pub(crate) reopens: u8,
    pub(crate) satisfaction: u8,
    pub(crate) flags: u8,
}

/// The usual life (reported, registered, dispatched, accepted, resolved, verified,
/// closed) fits in the record itself.
const HISTORY: usize = 7;

/// A case's transitions, the first [`HISTORY`] in place.
pub(crate) type History = smallvec::SmallVec<[Transition; HISTORY]>;

impl Rec {
    pub(crate) fn from_report(r: Report, now: Timestamp) -> Rec {
        let extra = (!r.description.is_empty()).then(|| {
            Box::new(Extra {
                description: r.description.into_boxed_str(),
                ..Extra::default()
            })
        });
        let mut history = History::new();
        let worker = None;
        history.push(Transition::new(
            now,
            None,
            CaseState::Reported,
            Action::Submit,
            actor_of(r.reporter),
            worker,
        ));
        Rec {
            at: r.at.0,
            location: r.location,
            due: 0,
            accept_by: 0,
            suspended_at: 0,
            parent: NONE64,
            armed: 0,
            history,
            extra,
            reporter: r.reporter,
            cell: NONE32,
            category: r.category.index() as u32,
            worker: NONE32,
            resolver: NONE32,
            organ: NONE32,
            state: CaseState::Reported,
            source: r.source,
            priority: r.priority,
            escalation: 0,
            returns: 0,
            reopens: 0,
            satisfaction: 0,
            flags: if r.on_the_spot { F_ON_SPOT } else { 0 },
        }
    }

    /// The report back, for a submission refused after the case was stored.
    pub(crate) fn into_report(self) -> Report {
        Report {
            source: self.source,
            category: CategoryId(self.category),
            location: self.location,
            at: Timestamp(self.at),
            priority: self.priority,
            reporter: self.reporter,
            description: self
                .extra
                .map(|e| String::from(e.description))
                .unwrap_or_default(),
            on_the_spot: self.flags & F_ON_SPOT != 0,
        }
    }

    #[inline]
    pub(crate) fn worker(&self) -> Option<WorkerId> {
        (self.worker != NONE32).then_some(WorkerId(self.worker))
    }

    #[inline]
    pub(crate) fn cell(&self) -> Option<CellId> {
        (self.cell != NONE32).then_some(CellId(self.cell))
    }

    #[inline]
    pub(crate) fn category(&self) -> CategoryId {
        CategoryId(self.category)
    }

    /// Moves the case and records it. The caller has checked the move against the table.
    #[inline]
    pub(crate) fn go(
        &mut self,
        at: Timestamp,
        to: CaseState,
        action: Action,
        actor: Actor,
    ) -> Transition {
        let t = Transition::new(at, Some(self.state), to, action, actor, self.worker());
        debug_assert!(super::lifecycle::is_legal_move(self.state, to), "{t:?}");
        self.state = to;
        // Past the usual seven records (kept in place) a history moves to the heap and
        // grows two at a time, not by doubling: the long ones are few, and doubling would
        // give each of them a half-empty tail.
        if self.history.len() == self.history.capacity() {
            self.history.reserve_exact(2);
        }
        self.history.push(t);
        t
    }

    pub(crate) fn note(&mut self, texts: &Texts, text: &str) {
        self.note_at(texts, self.history.len().saturating_sub(1), text);
    }

    /// A note on the entry `index` of the history.
    pub(crate) fn note_at(&mut self, texts: &Texts, index: usize, text: &str) {
        let index = index as u32;
        let notes = &mut self.extra.get_or_insert_with(Box::default).notes;
        notes.reserve_exact(1);
        notes.push((index, texts.intern(text)));
    }

    pub(crate) fn view(&self, id: CaseId, texts: &Texts) -> Case {
        let extra = self.extra.as_deref();
        Case {
            id,
            source: self.source,
            category: self.category(),
            location: self.location,
            reported_at: Timestamp(self.at),
            priority: self.priority,
            reporter: self.reporter,
            description: extra.map(|e| e.description.to_string()).unwrap_or_default(),
            cell: self.cell(),
            state: self.state,
            worker: self.worker(),
            resolver: (self.resolver != NONE32).then_some(WorkerId(self.resolver)),
            due: (self.due != 0).then_some(Timestamp(self.due)),
            accept_by: (self.accept_by != 0).then_some(Timestamp(self.accept_by)),
            suspended: self.suspended_at != 0,
            escalation: self.escalation,
            reminded: self.flags & F_REMINDED != 0,
            returns: self.returns,
            reopens: self.reopens,
            satisfaction: Satisfaction::from_code(self.satisfaction),
            on_time: if self.flags & F_ON_TIME != 0 {
                Some(true)
            } else if self.flags & F_LATE != 0 {
                Some(false)
            } else {
                None
            },
            merged_into: (self.parent != NONE64).then_some(CaseId(self.parent)),
            duplicates: extra.map(|e| e.duplicates.clone()).unwrap_or_default(),
            history: self.history.to_vec(),
            notes: extra
                .map(|e| {
                    e.notes
                        .iter()
                        .map(|&(i, t)| (i as usize, texts.get(t)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub(crate) fn set_satisfaction(&mut self, s: Option<Satisfaction>) {
        self.satisfaction = s.map_or(0, Satisfaction::code);
    }

    pub(crate) fn satisfaction(&self) -> Option<Satisfaction> {
        Satisfaction::from_code(self.satisfaction)
    }
}

/// Reason texts, each kept once however many cases give it (the same few reasons recur:
/// "owner abroad", "heavy rain").
#[derive(Debug, Default)]
pub(crate) struct Texts {
    inner: Mutex<Interned>,
}

#[derive(Debug, Default)]
struct Interned {
    ids: std::collections::HashMap<Box<str>, u32>,
    texts: Vec<Box<str>>,
}

impl Texts {
    pub(crate) fn intern(&self, text: &str) -> u32 {
        let mut g = self.inner.lock();
        if let Some(&k) = g.ids.get(text) {
            return k;
        }
        let k = g.texts.len() as u32;
        g.texts.push(text.into());
        g.ids.insert(text.into(), k);
        k
    }

    pub(crate) fn get(&self, k: u32) -> String {
        self.inner
            .lock()
            .texts
            .get(k as usize)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }
}

/// How a reporter appears as an actor.
pub(crate) fn actor_of(r: Reporter) -> Actor {
    match r {
        Reporter::Worker(w) => Actor::Worker(w),
        _ => Actor::Reporter,
    }
}

/// Cases per segment. A stage's batch (1,024 cases by default) fills one segment, so that
/// collect, working on one batch, and assign, working on the one before it, never wait
/// for each other's lock (with 4,096-case segments they did, three batches in four).
pub(crate) const SEGMENT: usize = 1 << SEGMENT_BITS;
const SEGMENT_BITS: u32 = 10;
/// Segments per block of the store's directory: blocks are made as ids reach them, so
/// that an engine starts with a directory of a few kilobytes.
const BLOCK_BITS: u32 = 10;
const BLOCK: usize = 1 << BLOCK_BITS;
/// Blocks the store can hold: 2^8 × 2^10 segments × 2^10 cases = 268 million cases.
const BLOCKS: usize = 1 << 8;
const SEGMENTS: usize = BLOCKS * BLOCK;
/// The most segments one [`Store::prepare`] call makes (an id far ahead, such as a
/// refused submission's for a moment, never makes the store grow by much).
const PREPARE: usize = 8;

pub(crate) type Segment = Mutex<Box<[Option<Rec>]>>;

/// A block of the directory: [`BLOCK`] segments, each made on first use.
type Block = Box<[OnceLock<Segment>]>;

/// The case store: cases by id in segments, one lock per segment.
pub(crate) struct Store {
    blocks: Box<[OnceLock<Block>]>,
    /// Segments `0..made` exist: where [`Store::prepare`] starts looking (others may
    /// exist too).
    made: AtomicUsize,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// The most cases a store holds.
pub(crate) const MAX_CASES: u64 = (SEGMENTS * SEGMENT) as u64;

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            blocks: (0..BLOCKS).map(|_| OnceLock::new()).collect(),
            made: AtomicUsize::new(0),
        }
    }

    /// Makes, in order, the segments up to the one holding id `upto` that do not exist
    /// yet, at most [`PREPARE`] of them, asking `stop` before each: a thread with nothing
    /// else to do makes them for cases about to be stored, so that the thread storing
    /// them does not take the kernel's page faults of a new segment's first writes
    /// itself. Ids past the store's size are ignored. Returns how many it made.
    pub(crate) fn prepare(&self, upto: u64, stop: impl Fn() -> bool) -> usize {
        let last = Store::split(upto.min(MAX_CASES - 1)).0;
        let mut s = self.made.load(Ordering::Relaxed);
        let mut made = 0;
        while s <= last && made < PREPARE {
            if self.numbered(s).is_none() {
                if stop() {
                    break;
                }
                let _ = self.segment((s as u64) << SEGMENT_BITS);
                made += 1;
            }
            s += 1;
            self.made.fetch_max(s, Ordering::Relaxed);
        }
        made
    }

    /// The segment number of an id and its slot in the segment.
    #[inline]
    pub(crate) fn split(id: u64) -> (usize, usize) {
        ((id >> SEGMENT_BITS) as usize, (id as usize) & (SEGMENT - 1))
    }

    /// The segment holding `id`, created on first use (`None` beyond the store's size).
    pub(crate) fn segment(&self, id: u64) -> Option<&Segment> {
        let (s, _) = Store::split(id);
        let block = self
            .blocks
            .get(s >> BLOCK_BITS)?
            .get_or_init(|| (0..BLOCK).map(|_| OnceLock::new()).collect());
        Some(
            block[s & (BLOCK - 1)].get_or_init(|| Mutex::new((0..SEGMENT).map(|_| None).collect())),
        )
    }

    /// The segment holding `id` if it exists already.
    #[inline]
    pub(crate) fn existing(&self, id: u64) -> Option<&Segment> {
        self.numbered(Store::split(id).0)
    }

    /// Segment number `s` if it exists already.
    #[inline]
    fn numbered(&self, s: usize) -> Option<&Segment> {
        self.blocks.get(s >> BLOCK_BITS)?.get()?[s & (BLOCK - 1)].get()
    }

    /// Runs `f` on the case `id` under its segment's lock.
    #[inline]
    pub(crate) fn with<R>(&self, id: u64, f: impl FnOnce(&mut Rec) -> R) -> Option<R> {
        let seg = self.existing(id)?;
        let mut g = seg.lock();
        g[Store::split(id).1].as_mut().map(f)
    }

    /// Runs `f` on every stored case of `ids` (ascending, mostly consecutive), taking
    /// each segment's lock once per run of ids in it.
    pub(crate) fn each(&self, ids: &[u64], mut f: impl FnMut(u64, &mut Rec)) {
        let mut i = 0;
        while i < ids.len() {
            let seg_no = Store::split(ids[i]).0;
            let Some(seg) = self.existing(ids[i]) else {
                i += 1;
                continue;
            };
            let mut g = seg.lock();
            while i < ids.len() && Store::split(ids[i]).0 == seg_no {
                if let Some(rec) = g[Store::split(ids[i]).1].as_mut() {
                    f(ids[i], rec);
                }
                i += 1;
            }
        }
    }

    /// Runs `f` on every stored case with an id in `ids`, one lock per segment.
    pub(crate) fn range(&self, ids: std::ops::Range<u64>, mut f: impl FnMut(u64, &Rec)) {
        let end = ids.end.min(MAX_CASES);
        let mut id = ids.start;
        while id < end {
            let (seg_no, _) = Store::split(id);
            let seg_end = (((seg_no as u64) + 1) << SEGMENT_BITS).min(end);
            if let Some(seg) = self.existing(id) {
                let g = seg.lock();
                for i in id..seg_end {
                    if let Some(rec) = g[Store::split(i).1].as_ref() {
                        f(i, rec);
                    }
                }
            }
            id = seg_end;
        }
    }

    /// Stores cases under consecutive ids from `first`.
    pub(crate) fn insert(&self, first: u64, recs: impl IntoIterator<Item = Rec>) {
        let mut id = first;
        let mut recs = recs.into_iter().peekable();
        while recs.peek().is_some() {
            let Some(seg) = self.segment(id) else { return };
            let mut g = seg.lock();
            let seg_no = Store::split(id).0;
            while Store::split(id).0 == seg_no {
                let Some(rec) = recs.next() else { break };
                g[Store::split(id).1] = Some(rec);
                id += 1;
            }
        }
    }

    /// Takes a case out (a submission refused after it was stored).
    pub(crate) fn take(&self, id: u64) -> Option<Rec> {
        let seg = self.existing(id)?;
        seg.lock()[Store::split(id).1].take()
    }

    /// Visits every stored case with an id below `end` mutably, segment by segment.
    pub(crate) fn scan_mut(&self, end: u64, mut f: impl FnMut(u64, &mut Rec)) {
        if end == 0 {
            return;
        }
        let last = Store::split(end - 1).0.min(SEGMENTS - 1);
        for s in 0..=last {
            let Some(seg) = self.numbered(s) else {
                continue;
            };
            let mut g = seg.lock();
            let base = (s as u64) << SEGMENT_BITS;
            let n = (end - base).min(SEGMENT as u64) as usize;
            for (k, rec) in g.iter_mut().take(n).enumerate() {
                if let Some(rec) = rec {
                    f(base | k as u64, rec);
                }
            }
        }
    }

    /// Visits every stored case, segment by segment (each segment under its lock while it
    /// is read), ids below `end`.
    pub(crate) fn scan(&self, end: u64, mut f: impl FnMut(u64, &Rec)) {
        let last = Store::split(end.saturating_sub(1)).0;
        if end == 0 {
            return;
        }
        for s in 0..=last.min(SEGMENTS - 1) {
            let Some(seg) = self.numbered(s) else {
                continue;
            };
            let g = seg.lock();
            let base = (s as u64) << SEGMENT_BITS;
            let n = (end - base).min(SEGMENT as u64) as usize;
            for (k, rec) in g.iter().take(n).enumerate() {
                if let Some(rec) = rec {
                    f(base | k as u64, rec);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_small() {
        // Its usual seven transitions included.
        assert!(
            std::mem::size_of::<Rec>() <= 240,
            "{}",
            std::mem::size_of::<Rec>()
        );
        assert!(std::mem::size_of::<Option<Rec>>() == std::mem::size_of::<Rec>());
    }

    #[test]
    fn prepare_makes_the_segments_asked_for_and_no_more() {
        let seg = SEGMENT as u64;
        let store = Store::new();
        assert_eq!(
            store.prepare(5 * seg, || true),
            0,
            "told to stop: nothing made"
        );
        assert!(store.numbered(0).is_none());
        // A segment made by storing a case is not made again nor counted.
        assert!(store.segment(seg).is_some());
        assert_eq!(store.prepare(3 * seg - 1, || false), 2, "segments 0 and 2");
        assert!((0..3).all(|s| store.numbered(s).is_some()));
        assert!(
            store.numbered(3).is_none(),
            "nothing past the one holding `upto`"
        );
        assert_eq!(store.prepare(3 * seg - 1, || false), 0, "all there already");
        // Far ahead (a refused submission's ids, for a moment): a few segments at most.
        assert_eq!(store.prepare(u64::MAX, || false), PREPARE);
        assert!(store.numbered(3 + PREPARE).is_none());
        // Stopped half way: what was made stays, and the next call goes on from there.
        let asked = std::cell::Cell::new(0);
        let made = store.prepare(u64::MAX, || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        });
        assert_eq!(made, 2);
        assert!(store.numbered(3 + PREPARE + 1).is_some());
        assert!(store.numbered(3 + PREPARE + 2).is_none());
    }

    #[test]
    fn store_runs_across_segments_and_blocks() {
        let loc = Location::new(120.0, 36.0).expect("valid");
        let r = Report::new(Source::Hotline, CategoryId(0), loc, Timestamp(5));
        // Across a segment's end, and across a block's (the directory's second level).
        for first in [SEGMENT as u64 - 2, (BLOCK * SEGMENT) as u64 - 2] {
            let store = Store::new();
            store.insert(
                first,
                (0..5).map(|_| Rec::from_report(r.clone(), Timestamp(9))),
            );
            let mut seen = Vec::new();
            store.each(
                &[first, first + 1, first + 2, first + 4, first + 9],
                |id, rec| {
                    rec.cell = 3;
                    seen.push(id)
                },
            );
            assert_eq!(seen, vec![first, first + 1, first + 2, first + 4]);
            let mut n = 0;
            let mut ranged = 0;
            store.range(first..u64::MAX, |_, _| ranged += 1);
            assert_eq!(ranged, 5, "a range past the store's end stops at it");
            let mut scanned = Vec::new();
            store.scan(u64::MAX, |id, rec| {
                n += 1;
                assert_eq!(rec.at, 5);
                scanned.push(id);
            });
            assert_eq!(n, 5);
            assert_eq!(scanned, (first..first + 5).collect::<Vec<_>>());
            let mut cells = Vec::new();
            store.scan_mut(first + 3, |_, rec| cells.push(rec.cell));
            assert_eq!(cells, vec![3, 3, 3], "scan_mut stops below its end");
            let mut below = Vec::new();
            store.scan(first + 3, |id, _| below.push(id));
            assert_eq!(below, (first..first + 3).collect::<Vec<_>>(), "scan too");
            assert_eq!(store.take(first).map(Rec::into_report), Some(r.clone()));
        }
        let store = Store::new();
        assert!(store.segment(MAX_CASES - 1).is_some());
        assert!(
            store.segment(MAX_CASES).is_none(),
            "no segment past the store's size"
        );
    }
}
