//! Collect (信息收集): locate a batch of reported cases, admit them, merge duplicates.
//!
//! Outside the grid → `rejected`; no unit on the cell's chain may hold the category →
//! `referred`; the same category near in space and time to an open case → `merged` under
//! it; else `registered` (立案), its deadline set, and on to the assign stage.

use super::CaseId;
use super::case::{Extra, NONE64, Rec, Store};
use super::engine::{AssignMsg, CollectMsg, Out, Shared, step};
use super::lifecycle::{Action, Actor, CaseState};
use crate::READ_AHEAD as WARM;
use crate::city::{Admission, City};
use crate::clock::{Timestamp, duration_ms};
use crate::grid::{CellId, Location, M_PER_DEG};
use crossbeam_channel::{Receiver, Select, TryRecvError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A multiplicative hash: bucket keys are small integers, SipHash's DoS resistance buys
/// nothing here and costs most of a lookup.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_i32(&mut self, v: i32) {
        self.write_u64(u64::from(v as u32));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type Fast = std::hash::BuildHasherDefault<KeyHasher>;

/// How much the duplicate index's scale gives up on the exact metres per degree.
const SCALE_MARGIN: f64 = 1e-3;

/// The side of the duplicate index's buckets in merge distances: wider buckets mean fewer
/// neighbours looked at (a report is near a side in 2 / 8 of the cases per axis) but more
/// cases per bucket.
const BUCKET_WIDTH: f64 = 8.0;

/// `x.floor() as i32` (saturating, 0 for NaN) without a call: `floor` is a library call
/// on the baseline x86-64, and the duplicate index takes four per report.
#[inline]
fn floor_i32(x: f64) -> i32 {
    let t = x as i32;
    if f64::from(t) > x {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// Open cases by place, to find duplicates: a flat table of square buckets over the grid's
/// bounding box, [`BUCKET_WIDTH`] merge distances wide (wider if the box would need more
/// than [`MAX_BUCKETS`]), so that a duplicate lies in the report's own bucket, or in a
/// neighbour only when the report is within the merge distance of that neighbour's side:
/// one bucket looked at for most reports, 1.56 on average.
///
/// The table holds, per bucket, the index of its newest entry; the entries sit in a slab,
/// appended in order and chained per bucket, every category in one chain (each entry says
/// its own). A bucket is found from the coordinates alone, without a hash, and most
/// reports read only its byte of marks (below), then write its word. The table's size is
/// fixed by the grid's box (five bytes a bucket: 1.1 MB for a city 110 km across at the
/// default 30 m), not by the number of open cases.
#[derive(Debug)]
pub(crate) struct Dedupe {
    /// The newest entry of each bucket ([`END`]: none), bucket `(x, y)` at
    /// `(y - y0) * columns + (x - x0)`.
    heads: Vec<u32>,
    /// One byte per bucket: bit `category % 8` set exactly when its chain holds an entry
    /// of such a category (0: the chain is empty). A quarter of the table's size, it stays
    /// in cache: most reports have no open case of their category nearby, and this says
    /// so without a read of the table or the slab; an insert into an empty bucket only
    /// writes the table's word.
    marks: Vec<u8>,
    /// The bucket coordinates of the table's first column and row (the grid's box starts
    /// one bucket in, so that every neighbour of a bucket in the box is in the table).
    x0: i32,
    y0: i32,
    columns: i32,
    rows: i32,
    /// Every entry since the last sweep, removed ones unlinked from their chain and marked
    /// (the sweep compacts the slab).
    slab: Vec<Link>,
    /// The slab before the last sweep, emptied, for the next one to fill.
    spare: Vec<Link>,
    /// Entries linked in a chain.
    live: usize,
    distance_m: f64,
    /// The side of a bucket in metres.
    side_m: f64,
    /// Bucket sides per degree of longitude and latitude.
    fx: f64,
    fy: f64,
    window_ms: u64,
    /// Metres per degree of longitude and latitude, never more than the exact figure
    /// anywhere on the grid.
    kx: f64,
    ky: f64,
    inserted: usize,
    newest: u64,
    /// Inserts between sweeps.
    sweep_every: usize,
}

/// The most buckets the table may have (5 bytes each): a grid whose box needs more at
/// [`BUCKET_WIDTH`] merge distances gets wider buckets.
const MAX_BUCKETS: usize = 1 << 22;

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    at: u64,
    location: Location,
}

/// An entry of the slab, its category, its bucket ([`END`] once removed) and the next
/// (older) entry of its bucket.
#[derive(Debug, Clone, Copy)]
struct Link {
    entry: Entry,
    category: u32,
    bucket: u32,
    next: u32,
}

/// The end of a bucket's chain, and the bucket of a removed entry.
const END: u32 = u32::MAX;

impl Dedupe {
    pub(crate) fn new(city: &City, distance_m: f64, window: Duration) -> Dedupe {
        Dedupe::with_max_buckets(city, distance_m, window, MAX_BUCKETS)
    }

    /// [`Dedupe::new`] with a table of at most `max_buckets` (at least 16).
    fn with_max_buckets(
        city: &City,
        distance_m: f64,
        window: Duration,
        max_buckets: usize,
    ) -> Dedupe {
        let max_buckets = max_buckets.max(16);
        let b = city.grid().bounds();
        // The scale must never make two points look farther apart than they are: then a
        // duplicate at the merge distance is at most that far in either axis (in the
        // report's bucket or in a neighbour it is that near), and the scaled distance is a
        // lower bound that may rule a candidate out before the exact distance is computed.
        // So east-west uses the cosine of the latitude farthest from the equator the grid
        // reaches, and both axes give up 0.1 % (far more than a great circle's shortfall
        // from the scaled straight line over a few kilometres).
        let polar = b[1].abs().max(b[3].abs()).min(89.0).to_radians();
        let mut d = Dedupe {
            heads: Vec::new(),
            marks: Vec::new(),
            x0: 0,
            y0: 0,
            columns: 0,
            rows: 0,
            slab: Vec::new(),
            spare: Vec::new(),
            live: 0,
            distance_m,
            side_m: BUCKET_WIDTH * distance_m.max(0.5),
            fx: 0.0,
            fy: 0.0,
            window_ms: duration_ms(window),
            kx: M_PER_DEG * polar.cos() / (1.0 + SCALE_MARGIN),
            ky: M_PER_DEG / (1.0 + SCALE_MARGIN),
            inserted: 0,
            newest: 0,
            sweep_every: 1 << 16,
        };
        d.set_side(d.side_m);
        if !d.enabled() {
            return d;
        }
        // The box's buckets, and one more all round; wider buckets until they fit (a side
        // longer than the box is across leaves at most 4 x 4).
        let across_m = (b[2] - b[0]).abs() * d.kx + (b[3] - b[1]).abs() * d.ky;
        for round in 0.. {
            let (lo, hi) = (d.raw_bucket(b[0], b[1]), d.raw_bucket(b[2], b[3]));
            let columns = i64::from(hi.0) - i64::from(lo.0) + 3;
            let rows = i64::from(hi.1) - i64::from(lo.1) + 3;
            let cells = columns.saturating_mul(rows);
            let inside = |v: i32| v > i32::MIN + 1 && v < i32::MAX - 1;
            if cells <= max_buckets as i64 && [lo.0, lo.1, hi.0, hi.1].into_iter().all(inside) {
                (d.x0, d.y0) = (lo.0 - 1, lo.1 - 1);
                (d.columns, d.rows) = (columns as i32, rows as i32);
                break;
            }
            let side = if round < 100 {
                d.side_m * ((cells as f64 / max_buckets as f64).sqrt() * 1.01).max(1.01)
            } else {
                2.0 * across_m + 1.0
            };
            d.set_side(side);
        }
        d.heads = vec![END; d.columns as usize * d.rows as usize];
        d.marks = vec![0; d.heads.len()];
        d
    }

    pub(crate) fn enabled(&self) -> bool {
        self.distance_m > 0.0 && self.window_ms > 0
    }

    /// Sets the side of a bucket, and with it the scale from degrees to bucket sides.
    fn set_side(&mut self, side_m: f64) {
        self.side_m = side_m;
        (self.fx, self.fy) = (self.kx / side_m, self.ky / side_m);
    }

    /// Coordinates in units of a bucket's side.
    #[inline]
    fn scaled(&self, lon: f64, lat: f64) -> (f64, f64) {
        (lon * self.fx, lat * self.fy)
    }

    fn raw_bucket(&self, lon: f64, lat: f64) -> (i32, i32) {
        let (x, y) = self.scaled(lon, lat);
        (floor_i32(x), floor_i32(y))
    }

    /// Reads ahead the marks and chain heads of the buckets of `points` (at most
    /// [`WARM`] of them), in loops of nothing else so that their misses overlap: the
    /// looks that follow find them in cache. Changes nothing; returns a value made of what
    /// was read, for the caller to drop.
    fn warm(&self, points: impl Iterator<Item = Location>) -> u64 {
        let mut slots = [0usize; WARM];
        let mut n = 0;
        for (slot, p) in slots.iter_mut().zip(points) {
            *slot = self.bucket_of(p);
            n += 1;
        }
        let mut read = 0u64;
        for &slot in &slots[..n] {
            read ^= u64::from(self.marks_of(slot));
        }
        for &slot in &slots[..n] {
            read ^= self.heads.get(slot).map_or(0, |&h| u64::from(h));
        }
        read
    }

    /// The table index of `p`'s bucket.
    fn bucket_of(&self, p: Location) -> usize {
        let (bx, by) = self.raw_bucket(p.lon(), p.lat());
        self.slot(bx, by)
    }

    /// The table index of bucket `(bx, by)`; a bucket off the table is taken as the
    /// nearest one on it (only points outside the grid's box, which are never registered,
    /// fall there).
    #[inline]
    fn slot(&self, bx: i32, by: i32) -> usize {
        if self.columns <= 0 || self.rows <= 0 {
            return usize::MAX;
        }
        let x = bx.saturating_sub(self.x0).clamp(0, self.columns - 1);
        let y = by.saturating_sub(self.y0).clamp(0, self.rows - 1);
        y as usize * self.columns as usize + x as usize
    }

    /// The mark of a category (see [`Dedupe::marks`]).
    #[inline]
    fn mark(category: u32) -> u8 {
        1 << (category % 8)
    }

    /// The marks of bucket `slot`, 0 for none.
    #[inline]
    fn marks_of(&self, slot: usize) -> u8 {
        self.marks.get(slot).copied().unwrap_or(0)
    }

    /// Marks bucket `slot` again from its chain.
    fn remark(&mut self, slot: usize) {
        let mut m = 0;
        let mut link = self.heads.get(slot).copied().unwrap_or(END);
        while let Some(l) = self.slab.get(link as usize) {
            m |= Dedupe::mark(l.category);
            link = l.next;
        }
        if let Some(w) = self.marks.get_mut(slot) {
            *w = m;
        }
    }

    /// Whether `a` and `b` may be within the merge distance: false only when the scaled
    /// distance, a lower bound of the exact one, is beyond it already. Always true for
    /// points more than a tenth of a degree apart in latitude or longitude (never the case
    /// for neighbouring buckets at any realistic merge distance), where the bound is not
    /// claimed.
    #[inline]
    fn may_be_near(&self, a: Location, b: Location) -> bool {
        let (dlon, dlat) = ((a.lon() - b.lon()).abs(), (a.lat() - b.lat()).abs());
        if dlon > 0.1 || dlat > 0.1 {
            return true;
        }
        let (dx, dy) = (dlon * self.kx, dlat * self.ky);
        dx * dx + dy * dy <= self.distance_m * self.distance_m
    }

    /// The oldest open case this report duplicates.
    #[cfg(test)]
    fn find(&self, category: u32, p: Location, at: u64) -> Option<u64> {
        self.look(category, p, at).0
    }

    /// The oldest open case this report duplicates, or else the report goes in as an
    /// open case (`id`) itself.
    pub(crate) fn find_or_insert(
        &mut self,
        category: u32,
        p: Location,
        at: u64,
        id: u64,
    ) -> Option<u64> {
        let (found, slot) = self.look(category, p, at);
        if found.is_none() {
            self.insert_at(slot, category, p, at, id);
        }
        found
    }

    /// [`Dedupe::find`], and the table index of the report's own bucket.
    fn look(&self, category: u32, p: Location, at: u64) -> (Option<u64>, usize) {
        let (x, y) = self.scaled(p.lon(), p.lat());
        let (bx, by) = (floor_i32(x), floor_i32(y));
        // The scaled distance is never more than the exact one, so a duplicate is at most
        // `reach` (in bucket sides) from the report along either axis: its bucket is the
        // report's own, or the neighbour on a side the report is that close to.
        let reach = self.distance_m / self.side_m;
        let side = |f: f64| {
            if f < reach {
                -1
            } else if f > 1.0 - reach {
                1
            } else {
                0
            }
        };
        let (sx, sy) = (side(x - f64::from(bx)), side(y - f64::from(by)));
        // The report's own bucket, then each neighbour it is near, each once.
        let mut near = [(0, 0); 4];
        let mut n = 1;
        for (dx, dy, needed) in [
            (sx, 0, sx != 0),
            (0, sy, sy != 0),
            (sx, sy, sx != 0 && sy != 0),
        ] {
            near[n] = (dx, dy);
            n += usize::from(needed);
        }
        let own = self.slot(bx, by);
        let mut best: Option<Entry> = None;
        for &(dx, dy) in &near[..n] {
            let slot = if (dx, dy) == (0, 0) {
                own
            } else {
                self.slot(bx + dx, by + dy)
            };
            if self.marks_of(slot) & Dedupe::mark(category) == 0 {
                continue;
            }
            let mut link = self.heads.get(slot).copied();
            while let Some(l) = link.and_then(|k| self.slab.get(k as usize)) {
                link = Some(l.next);
                let e = &l.entry;
                if l.category == category
                    && e.at.abs_diff(at) <= self.window_ms
                    && self.may_be_near(e.location, p)
                    && e.location.distance_m(p) <= self.distance_m
                    && best.is_none_or(|b| (e.at, e.id) < (b.at, b.id))
                {
                    best = Some(*e);
                }
            }
        }
        (best.map(|e| e.id), own)
    }

    /// Puts an open case in the index.
    pub(crate) fn insert(&mut self, category: u32, p: Location, at: u64, id: u64) {
        self.insert_at(self.bucket_of(p), category, p, at, id);
    }

    fn insert_at(&mut self, bucket: usize, category: u32, p: Location, at: u64, id: u64) {
        // The slab's indices are 32 bits: a sweep compacts it first if it is that full
        // (never in practice: a sweep comes every `sweep_every` inserts).
        if self.slab.len() >= END as usize - 1 {
            self.sweep();
        }
        // An empty bucket's word is only written: no wait for it to come from memory.
        let marks = self.marks_of(bucket);
        let Some(head) = self.heads.get_mut(bucket) else {
            return;
        };
        let next = if marks != 0 { *head } else { END };
        *head = self.slab.len() as u32;
        if let Some(m) = self.marks.get_mut(bucket) {
            *m = marks | Dedupe::mark(category);
        }
        self.slab.push(Link {
            entry: Entry {
                id,
                at,
                location: p,
            },
            category,
            bucket: bucket as u32,
            next,
        });
        self.live += 1;
        self.newest = self.newest.max(at);
        self.inserted += 1;
        // Entries older than the window can match no new report: sweep them now and then,
        // so the index holds about one window's worth of open cases.
        if self.inserted >= self.sweep_every {
            self.sweep();
        }
    }

    /// Drops the entries no new report can match and those removed, compacting the slab.
    fn sweep(&mut self) {
        self.inserted = 0;
        let horizon = self.newest.saturating_sub(self.window_ms);
        let old = std::mem::take(&mut self.slab);
        // Every bucket an entry was in starts empty; the entries kept go back oldest first,
        // each at its bucket's head, so each chain keeps its newest-first order.
        for l in &old {
            if let Some(h) = self.heads.get_mut(l.bucket as usize) {
                *h = END;
                if let Some(m) = self.marks.get_mut(l.bucket as usize) {
                    *m = 0;
                }
            }
        }
        // The slab before last is refilled: a new one each time would be memory the
        // kernel hands out afresh, a page fault per 4 KiB.
        let mut slab = std::mem::take(&mut self.spare);
        slab.clear();
        slab.reserve(self.live.min(old.len()));
        for &l in &old {
            if l.entry.at < horizon {
                continue;
            }
            // A removed entry's bucket is END, no bucket: it does not go back.
            if let Some(h) = self.heads.get_mut(l.bucket as usize) {
                let next = std::mem::replace(h, slab.len() as u32);
                slab.push(Link { next, ..l });
                if let Some(m) = self.marks.get_mut(l.bucket as usize) {
                    *m |= Dedupe::mark(l.category);
                }
            }
        }
        self.live = slab.len();
        self.slab = slab;
        // Kept for the next sweep unless far larger than what the index holds now.
        if old.capacity() <= 4 * self.sweep_every.max(self.live) {
            self.spare = old;
        }
    }

    /// Cases that finished: they take no more duplicates.
    pub(crate) fn remove(&mut self, done: &[(u64, u32, Location)]) {
        if !self.enabled() {
            return;
        }
        for &(id, _, p) in done {
            let bucket = self.bucket_of(p);
            if self.marks_of(bucket) == 0 {
                continue;
            }
            let Some(&head) = self.heads.get(bucket) else {
                continue;
            };
            // Unlinked from its chain and marked; its slot in the slab goes at the next
            // sweep.
            let mut prev: Option<usize> = None;
            let mut link = head;
            while let Some(l) = self.slab.get(link as usize) {
                let (here, next) = (link as usize, l.next);
                if l.entry.id == id {
                    match prev {
                        Some(k) => self.slab[k].next = next,
                        None => self.heads[bucket] = next,
                    }
                    self.slab[here].bucket = END;
                    self.live -= 1;
                    self.remark(bucket);
                    break;
                }
                prev = Some(here);
                link = next;
            }
        }
        // After a rush the slab would keep its peak size until the next sweep.
        if self.slab.len() > 1 << 16 && self.live < self.slab.len() / 8 {
            self.sweep();
        }
    }
}

/// The collect thread: batches of reported cases in, registered cases out to assign.
/// With [`EngineConfig::dispatchers`](super::EngineConfig::dispatchers) at 1 or more,
/// each of that many threads runs this loop and routes the cases it registers itself.
pub(crate) fn run(s: &Shared, rx: &Receiver<CollectMsg>, live: &AtomicUsize) {
    /// Counts this thread out however it ends; the last one out stops assign (every
    /// batch's follow-ups are in its channel already).
    struct Leaving<'a>(&'a Shared, &'a AtomicUsize);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            if self.1.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _ = self.0.assign_tx.send(AssignMsg::Stop);
            }
        }
    }
    let _leaving = Leaving(s, live);
    let mut ids: Vec<u64> = Vec::new();
    let mut own = Scratch::default();
    loop {
        // The pipeline's one collect thread takes its messages only under the collect
        // lock, so that a submitting thread that finds the stage idle and its channel
        // empty can collect its own batch (see `Engine::submit_batch`) and never overtakes
        // a batch sent before it. Parallel dispatchers each keep their own scratch.
        let mut locked = None;
        let (msg, scratch) = if s.config.dispatchers == 0 {
            let mut ready = Select::new();
            ready.recv(rx);
            ready.ready();
            let scratch = &mut **locked.insert(s.collecting.lock());
            match rx.try_recv() {
                Ok(msg) => (msg, scratch),
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(msg) => (msg, &mut own),
                Err(_) => return,
            }
        };
        let mut barrier = None;
        match msg {
            CollectMsg::Cases(r) => ids.extend(r),
            CollectMsg::Barrier(tx, gate) => barrier = Some((tx, gate)),
        }
        // Single submissions arrive one per message: gather what is waiting into a batch.
        while barrier.is_none() && ids.len() < s.config.batch {
            match rx.try_recv() {
                Ok(CollectMsg::Cases(r)) => ids.extend(r),
                Ok(CollectMsg::Barrier(tx, gate)) => barrier = Some((tx, gate)),
                Err(_) => break,
            }
        }
        // Chunks end at store segments too: assign then routes one segment while this
        // thread collects the next, and neither waits for the other's lock.
        let mut rest = &ids[..];
        while !rest.is_empty() {
            let segment = Store::split(rest[0]).0;
            let n = rest
                .iter()
                .take(s.config.batch)
                .take_while(|&&id| Store::split(id).0 == segment)
                .count();
            let (chunk, more) = rest.split_at(n);
            process(s, chunk, scratch);
            rest = more;
        }
        ids.clear();
        drop(locked);
        if let Some((tx, gate)) = barrier {
            // Parallel dispatchers each take one of a barrier's messages and meet here:
            // then every batch sent before it is done, whoever took it.
            if let Some(gate) = gate {
                gate.wait(live);
            }
            if let Some(tx) = tx {
                let _ = s.assign_tx.send(AssignMsg::Barrier(tx));
            }
        }
    }
}

/// Collects the cases `ids` (stored, consecutive, in one store segment) on the calling
/// thread, as the collect thread would: the caller holds the collect lock.
pub(crate) fn collect_here(s: &Shared, ids: std::ops::Range<u64>, scratch: &mut Scratch) {
    let ids: Vec<u64> = ids.collect();
    for chunk in ids.chunks(s.config.batch.max(1)) {
        process(s, chunk, scratch);
    }
}

/// A collect pass's working buffers, kept from one batch to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    ids: Vec<u64>,
    categories: Vec<(u32, u64)>,
    locations: Vec<Location>,
    cells: Vec<Option<CellId>>,
    verdicts: Vec<Verdict>,
    admissions: Vec<Option<Admission>>,
    merges: Vec<(u64, u64)>,
}

#[derive(Clone, Copy)]
enum Verdict {
    Reject,
    Refer(CellId),
    Merge(CellId, u64),
    Register(CellId),
}

/// Three passes, so that the duplicate index is locked only for its own lookups (cases
/// closing on other threads take it too): read the batch, decide (locate, admit, find
/// duplicates), then write the batch.
fn process(s: &Shared, ids: &[u64], sc: &mut Scratch) {
    #[cfg(test)]
    drop(s.pause.lock());
    let now = s.now();
    sc.ids.clear();
    sc.locations.clear();
    sc.categories.clear();
    s.store.each(ids, |id, rec| {
        if rec.state == CaseState::Reported {
            sc.ids.push(id);
            sc.locations.push(rec.location);
            sc.categories.push((rec.category, rec.at));
        }
    });
    s.city.grid().locate_many(&sc.locations, &mut sc.cells);
    sc.verdicts.clear();
    sc.admissions.clear();
    // A chunk at a time, its duty-table reads warmed first so that their misses overlap.
    for (c, cells) in sc.cells.chunks(WARM).enumerate() {
        let category = |k: usize| crate::city::CategoryId(sc.categories[c * WARM + k].0);
        std::hint::black_box(s.city.warm_admit(cells, category));
        for (k, &cell) in cells.iter().enumerate() {
            let admission = cell.and_then(|cell| s.city.admit(cell, category(k)).ok());
            sc.admissions.push(admission);
            sc.verdicts.push(match (cell, admission) {
                (Some(c), Some(a)) if a.is_referral() => Verdict::Refer(c),
                (Some(c), Some(_)) => Verdict::Register(c),
                _ => Verdict::Reject,
            });
        }
    }
    {
        let mut dedupe = s.dedupe.lock();
        if dedupe.enabled() {
            for (c, verdicts) in sc.verdicts.chunks_mut(WARM).enumerate() {
                let base = c * WARM;
                let registered = verdicts
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| matches!(v, Verdict::Register(_)))
                    .map(|(k, _)| sc.locations[base + k]);
                std::hint::black_box(dedupe.warm(registered));
                for (k, v) in verdicts.iter_mut().enumerate() {
                    if let Verdict::Register(cell) = *v {
                        let (category, at) = sc.categories[base + k];
                        let p = sc.locations[base + k];
                        if let Some(parent) =
                            dedupe.find_or_insert(category, p, at, sc.ids[base + k])
                        {
                            *v = Verdict::Merge(cell, parent);
                        }
                    }
                }
            }
        }
    }
    let mut out = Out::new(s);
    let mut registered = Vec::with_capacity(sc.ids.len());
    let mut admitted = Vec::with_capacity(sc.ids.len());
    let mut left = 0u64;
    sc.merges.clear();
    let mut k = 0;
    s.store.each(&sc.ids, |id, rec| {
        let verdict = sc.verdicts[k];
        k += 1;
        out.event(id, 0, rec.history[0]);
        let (to, action) = match verdict {
            Verdict::Reject => (CaseState::Rejected, Action::Reject),
            Verdict::Refer(c) => {
                rec.cell = c.0;
                (CaseState::Referred, Action::Refer)
            }
            Verdict::Merge(c, parent) => {
                rec.cell = c.0;
                rec.parent = parent;
                sc.merges.push((parent, id));
                (CaseState::Merged, Action::Merge)
            }
            Verdict::Register(c) => {
                rec.cell = c.0;
                let limit = s.limit_ms(rec);
                if limit > 0 {
                    rec.due = now.0.saturating_add(limit);
                }
                registered.push(id);
                if let Some(a) = sc.admissions[k - 1] {
                    admitted.push((id, a, c));
                }
                // Its timer is armed by the routing outcome, a moment from now.
                (CaseState::Registered, Action::Register)
            }
        };
        step(rec, id, now, to, action, Actor::System, &mut out);
        if to.is_terminal() {
            out.finished.push(id);
        }
        if to != CaseState::Registered {
            left += 1;
        }
    });
    s.assigned.fetch_add(left, Ordering::Relaxed);
    for &(parent, child) in &sc.merges {
        link(s, parent, child, now, &mut out);
    }
    // A journal error stays in the sink and refuses every later write; the caller
    // that acts next is told.
    let _ = s.flush(out);
    if registered.is_empty() {
        return;
    }
    if s.config.dispatchers == 0 {
        s.port.hand_over(admitted);
        let _ = s.assign_tx.send(AssignMsg::New(registered));
    } else {
        // A parallel dispatcher routes its own batch: the cases are still in this core's
        // cache, and no thread waits on another to go on.
        let mut out = Out::new(s);
        super::assign::route_registered(s, &registered, admitted, &mut out);
        s.assigned
            .fetch_add(registered.len() as u64, Ordering::Relaxed);
        let _ = s.flush(out);
    }
}

/// Records a duplicate under its case, or closes it at once if that case finished in the
/// meantime (so that no merged case is left behind by a parent that will never close it).
fn link(s: &Shared, parent: u64, child: u64, now: Timestamp, out: &mut Out) {
    let linked = s
        .store
        .with(parent, |p| {
            if p.state.is_open() {
                p.extra
                    .get_or_insert_with(Box::<Extra>::default)
                    .duplicates
                    .push(CaseId(child));
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    out.links.push((child, parent, linked));
    if !linked {
        s.store.with(child, |c| close_merged(child, c, now, out));
    }
}

/// Closes a merged case with the case it duplicates.
pub(crate) fn close_merged(id: u64, rec: &mut Rec, now: Timestamp, out: &mut Out) {
    if rec.state == CaseState::Merged && rec.parent != NONE64 {
        step(
            rec,
            id,
            now,
            CaseState::Closed,
            Action::CloseWithParent,
            Actor::System,
            out,
        );
        out.finished.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::demo::demo_city;

    #[test]
    fn floor_is_the_library_floor() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            -1e-300,
            2.999_999_999_999_999_6,
            -2.999_999_999_999_999_6,
            1e12,
            -1e12,
            f64::from(i32::MAX),
            f64::from(i32::MIN),
            f64::from(i32::MIN) - 0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut v = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
            xs.push((v as f64 / u64::MAX as f64 - 0.5) * 2e6);
        }
        for x in xs {
            assert_eq!(floor_i32(x), x.floor() as i32, "{x}");
        }
    }

    /// Great-circle distance by the chord between unit vectors: another formula than the
    /// haversine the index uses, on the same sphere.
    fn chord_distance_m(a: Location, b: Location) -> f64 {
        let v = |p: Location| {
            let (lon, lat) = (p.lon().to_radians(), p.lat().to_radians());
            [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
        };
        let (u, w) = (v(a), v(b));
        let c = ((u[0] - w[0]).powi(2) + (u[1] - w[1]).powi(2) + (u[2] - w[2]).powi(2)).sqrt();
        2.0 * crate::grid::EARTH_RADIUS_M * (c / 2.0).asin()
    }

    proptest::proptest! {
        /// Against every entry checked by brute force: cases placed around the merge
        /// distance in every direction, at the grid's edge farthest from the equator
        /// (where a degree of longitude is shortest) and at its middle, the report anywhere
        /// in its bucket; some removed (at once or after the others), and
        /// sweeps (which drop what is too old and rebuild the occupancy bits) every few
        /// inserts or never.
        #[test]
        fn finds_what_brute_force_finds(
            distance in 5.0f64..500.0,
            at_edge in proptest::bool::ANY,
            placed in proptest::collection::vec(
                (0.0f64..std::f64::consts::TAU, 0.95f64..1.05, 0u64..2_000, 0u32..2, 0u8..10),
                1..40,
            ),
            sweep_every in proptest::sample::select(vec![2usize, 5, 1 << 16]),
            query_at in 0u64..2_000,
            shift in proptest::array::uniform2((0u8..3, 0.0f64..1.0)),
            max_buckets in proptest::sample::select(vec![MAX_BUCKETS, 64, 16]),
        ) {
            static CITY: std::sync::LazyLock<City> = std::sync::LazyLock::new(demo_city);
            let b = CITY.grid().bounds();
            let mut d = Dedupe::with_max_buckets(
                &CITY,
                distance,
                Duration::from_millis(1_000),
                max_buckets,
            );
            proptest::prop_assert!(d.heads.len() <= max_buckets);
            proptest::prop_assert!(d.side_m >= BUCKET_WIDTH * distance);
            d.sweep_every = sweep_every;
            let lat = if at_edge { b[3] - 0.01 } else { (b[1] + b[3]) / 2.0 };
            // Moved by up to a bucket's width, so that the report falls anywhere in its
            // bucket, often about a merge distance from a side (where the index must look
            // at the neighbour too, or must not need to).
            let reach = distance / d.side_m;
            let [x, y] = shift.map(|(kind, u)| match kind {
                0 => u,
                1 => reach * (0.8 + 0.4 * u),
                _ => 1.0 - reach * (0.8 + 0.4 * u),
            });
            let width = d.side_m / crate::grid::M_PER_DEG;
            let centre = Location::new(
                (b[0] + b[2]) / 2.0 + x * width / lat.to_radians().cos(),
                lat - y * width,
            )
            .unwrap();
            // What the index should hold: (id, category, place, time, still there).
            let mut all = Vec::new();
            let mut newest = 0;
            // `removal`: 0-1 removed at once (the newest of its bucket), 2-3 once all are in
            // (anywhere in its bucket's chain), else kept.
            let mut later = Vec::new();
            for (k, &(angle, factor, at, category, removal)) in placed.iter().enumerate() {
                let r = distance * factor / crate::grid::M_PER_DEG;
                let p = Location::new(
                    centre.lon() + r * angle.cos() / lat.to_radians().cos(),
                    centre.lat() + r * angle.sin(),
                )
                .unwrap();
                d.insert(category, p, at, k as u64);
                newest = newest.max(at);
                all.push((k as u64, category, p, at, true));
                if (k + 1) % sweep_every == 0 {
                    // A sweep ran: what is older than the window behind the newest went.
                    for e in all.iter_mut() {
                        e.4 &= e.3 + 1_000 >= newest;
                    }
                }
                match removal {
                    0..=1 => {
                        d.remove(&[(k as u64, category, p)]);
                        all[k].4 = false;
                    }
                    2..=3 => later.push((k as u64, category, p)),
                    _ => {}
                }
            }
            d.remove(&later);
            for &(k, ..) in &later {
                all[k as usize].4 = false;
            }
            // Too close to the merge distance for two formulas to agree on its side.
            let unclear = all.iter().any(|&(_, _, p, _, _)| {
                (chord_distance_m(p, centre) - distance).abs() < 1e-6 * distance
            });
            proptest::prop_assume!(!unclear);
            for category in 0..2 {
                let expected = all
                    .iter()
                    .filter(|&&(_, c, p, at, there)| {
                        there
                            && c == category
                            && at.abs_diff(query_at) <= 1_000
                            && chord_distance_m(p, centre) <= distance
                    })
                    .min_by_key(|&&(id, _, _, at, _)| (at, id))
                    .map(|&(id, ..)| id);
                proptest::prop_assert_eq!(d.find(category, centre, query_at), expected);
            }
            // The engine's one call: the same answer, and the report goes in when it is
            // no duplicate.
            for category in 0..2 {
                let before = d.find(category, centre, query_at);
                let id = 1_000 + u64::from(category);
                proptest::prop_assert_eq!(d.find_or_insert(category, centre, query_at, id), before);
                if before.is_none() && sweep_every == 1 << 16 {
                    proptest::prop_assert_eq!(d.find(category, centre, query_at), Some(id));
                }
            }
        }
    }

    #[test]
    fn duplicates_are_found_until_their_case_is_removed() {
        let city = demo_city();
        let mut d = Dedupe::new(&city, 30.0, Duration::from_secs(3600));
        let [lon, lat, ..] = city.grid().bounds();
        let p = Location::new(lon + 0.01, lat + 0.01).unwrap();
        let near = Location::new(lon + 0.01 + 0.0001, lat + 0.01).unwrap();
        let far = Location::new(lon + 0.02, lat + 0.01).unwrap();
        d.insert(3, p, 1_000, 10);
        d.insert(3, near, 2_000, 11);
        assert_eq!(d.find(3, near, 2_500), Some(10), "the oldest open case");
        assert_eq!(d.find(4, near, 2_500), None, "another category");
        assert_eq!(d.find(3, far, 2_500), None, "too far");
        d.remove(&[(10, 3, p)]);
        assert_eq!(d.find(3, near, 2_500), Some(11));
        d.remove(&[(11, 3, near)]);
        assert_eq!(d.find(3, near, 2_500), None);
        assert_eq!(d.live, 0);
        assert!(d.heads.iter().all(|&h| h == END), "every chain empty");
        assert!(d.marks.iter().all(|&m| m == 0), "every bucket marked empty");
    }

    #[test]
    fn warm_ups_take_any_input_and_change_nothing() {
        let city = std::sync::Arc::new(demo_city());
        let [x0, y0, x1, y1] = city.grid().bounds();
        let inside = Location::new((x0 + x1) / 2.0, (y0 + y1) / 2.0).unwrap();
        let points = [
            inside,
            Location::new(x0 - 1.0, y0 - 1.0).unwrap(),
            Location::new(x1 + 1.0, y1 + 1.0).unwrap(),
            Location::new(-180.0, 90.0).unwrap(),
        ];
        let mut d = Dedupe::new(&city, 30.0, Duration::from_secs(3600));
        d.insert(1, inside, 1_000, 7);
        let _ = d.warm(points.iter().copied());
        let _ = d.warm(std::iter::repeat_n(inside, 3 * WARM));
        assert_eq!(d.find(1, inside, 1_500), Some(7));
        assert_eq!(d.live, 1);

        let n = city.grid().len() as u32;
        let cells = [
            Some(CellId(0)),
            None,
            Some(CellId(n)),
            Some(CellId(u32::MAX)),
        ];
        let categories = [0, u32::MAX, 1, 0];
        let _ = city.warm_admit(&cells, |k| crate::city::CategoryId(categories[k]));
        let router = crate::routing::Router::new(city.clone(), Default::default()).unwrap();
        let unit = crate::city::UnitId;
        let _ = router.warm(&[
            (CellId(0), unit(0)),
            (CellId(n), unit(u32::MAX)),
            (CellId(u32::MAX), unit(7)),
        ]);
        let long: Vec<_> = (0..200).map(|k| (CellId(k % n), unit(k))).collect();
        let _ = router.warm(&long);
    }
}
