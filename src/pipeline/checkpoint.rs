//! Engine snapshots: the whole case store, the reason texts and the workers' live state,
//! written to the journal at a position so that recovery loads it and replays only what
//! came after, and the journal can drop what it covers.
//!
//! # Snapshot format, version 2
//!
//! Little-endian, fixed-width, hand-written like the journal's records (see `wal.rs`):
//! magic `WGENGINE`, version `u32`; the next case id `u64`; the fair-rotation ticket
//! `u64`; the worker count `u32` and per worker its status `u8`, capacity `u32` and last
//! ticket `u64`; the case count `u64` and per case: id `u64`, report time `u64`, lon `f64`, lat `f64`, due
//! `u64`, accept-by `u64`, suspended-at `u64`, the case it duplicates `u64`, reporter
//! kind `u8` and id `u32`, cell, category, worker, resolver and organ `u32` each, state,
//! source, priority, escalation, returns, reopens, satisfaction and flags `u8` each, the
//! history (count `u32`, then per transition its packed word `u64`, actor id `u32`,
//! worker `u32`), then `u8` 1 if it has a description, notes or duplicates (then the
//! description as a text, the notes' count `u32` and per note its history index `u32`
//! and its text, the duplicates' count `u32` and their ids `u64`), else 0.
//! Zero is "none" for the times, `u32::MAX` for the ids, `u64::MAX` for the case
//! duplicated. Last, the archive (see `archive.rs`): the count `u32` and numbers `u32` of
//! the archive files that hold the cases moved out of the store, and the totals the
//! command center keeps for them.

use super::case::{Extra, NONE32, Rec, Store, Texts};
use super::engine::Shared;
use super::lifecycle::{CaseState, Transition};
use super::recover::{Recovery, ReplayError};
use super::wal::{
    DecodeError, Reader, known_reporter, known_workers, put_text, reporter_code, reporter_from,
    source_code, source_from, status_code, status_from,
};
use super::{CaseId, Satisfaction};
use crate::city::{Priority, WorkerId};
use crate::grid::Location;
use crate::journal::Journal;
use crate::routing::WorkerStatus;
use std::sync::atomic::Ordering;

const MAGIC: &[u8; 8] = b"WGENGINE";
const VERSION: u32 = 2;

/// The engine's state as snapshot bytes, read case by case while the engine runs (see
/// [`Engine::checkpoint`](super::Engine::checkpoint) for why that is consistent).
pub(crate) fn encode(s: &Shared) -> Vec<u8> {
    let end = s.next_id.load(Ordering::Relaxed);
    let mut buf = Vec::with_capacity(64 + (end as usize) * 200);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_le_bytes());
    buf.extend_from_slice(&end.to_le_bytes());
    let router = &s.port.router;
    let (ticket, last) = router.tickets();
    buf.extend_from_slice(&ticket.to_le_bytes());
    buf.extend_from_slice(&(last.len() as u32).to_le_bytes());
    for (w, &t) in last.iter().enumerate() {
        let (status, capacity) = router
            .worker_state(WorkerId(w as u32))
            .map_or((WorkerStatus::OffDuty, 1), |st| (st.status, st.capacity));
        buf.push(status_code(status));
        buf.extend_from_slice(&capacity.to_le_bytes());
        buf.extend_from_slice(&t.to_le_bytes());
    }
    let count_at = buf.len();
    buf.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    s.store.scan(end, |id, rec| {
        count += 1;
        put_case(&mut buf, id, rec, &s.texts);
    });
    buf[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
    super::archive::encode(s, &mut buf);
    buf
}

pub(crate) fn put_case(buf: &mut Vec<u8>, id: u64, r: &Rec, texts: &Texts) {
    for v in [id, r.at] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&r.location.lon().to_le_bytes());
    buf.extend_from_slice(&r.location.lat().to_le_bytes());
    for v in [r.due, r.accept_by, r.suspended_at, r.parent] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    let (kind, rid) = reporter_code(r.reporter);
    buf.push(kind);
    buf.extend_from_slice(&rid.to_le_bytes());
    for v in [r.cell, r.category, r.worker, r.resolver, r.organ] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&[
        r.state as u8,
        source_code(r.source),
        r.priority.index() as u8,
        r.escalation,
        r.returns,
        r.reopens,
        r.satisfaction,
        r.flags,
    ]);
    buf.extend_from_slice(&(r.history.len() as u32).to_le_bytes());
    for t in &r.history {
        let (packed, actor, worker) = t.raw();
        buf.extend_from_slice(&packed.to_le_bytes());
        buf.extend_from_slice(&actor.to_le_bytes());
        buf.extend_from_slice(&worker.to_le_bytes());
    }
    match r.extra.as_deref() {
        None => buf.push(0),
        Some(e) => {
            buf.push(1);
            put_text(buf, &e.description);
            buf.extend_from_slice(&(e.notes.len() as u32).to_le_bytes());
            for &(i, t) in &e.notes {
                buf.extend_from_slice(&i.to_le_bytes());
                put_text(buf, &texts.get(t));
            }
            buf.extend_from_slice(&(e.duplicates.len() as u32).to_le_bytes());
            for d in &e.duplicates {
                buf.extend_from_slice(&d.0.to_le_bytes());
            }
        }
    }
}

/// Loads the journal's latest snapshot into a new engine's state, if there is one.
/// Answers the position to replay the journal from.
pub(crate) fn load(
    s: &Shared,
    journal: &mut dyn Journal,
    report: &mut Recovery,
) -> Result<u64, ReplayError> {
    let Some(snapshot) = journal.latest_snapshot()? else {
        return Ok(journal.first_position());
    };
    let bad = |e: DecodeError| ReplayError {
        position: snapshot.covers,
        why: format!("the snapshot covering position {}: {e}", snapshot.covers),
    };
    report.snapshot = Some(snapshot.covers);
    report.snapshot_cases = decode(s, &snapshot.state).map_err(bad)?;
    Ok(snapshot.covers)
}

fn decode(s: &Shared, bytes: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader(bytes);
    if &r.take::<8>()? != MAGIC {
        return Err(DecodeError("not an engine snapshot"));
    }
    if r.u32()? != VERSION {
        return Err(DecodeError("unknown engine snapshot version"));
    }
    let end = r.u64()?;
    let router = &s.port.router;
    let ticket = r.u64()?;
    let workers = r.u32()? as usize;
    if workers != s.city.workers().len() {
        return Err(DecodeError("the snapshot's workers are not this city's"));
    }
    let mut last = Vec::with_capacity(workers);
    for w in 0..workers {
        let w = WorkerId(w as u32);
        let status = status_from(r.u8()?)?;
        let capacity = r.u32()?;
        last.push(r.u64()?);
        router
            .set_status(w, status)
            .map_err(|_| DecodeError("unknown worker"))?;
        router
            .set_capacity(w, capacity)
            .map_err(|_| DecodeError("worker capacity out of range"))?;
    }
    router.set_tickets(ticket, &last);
    let count = r.u64()?;
    let categories = s.city.categories().len() as u32;
    for _ in 0..count {
        let (id, rec) = read_case(s, &mut r, categories)?;
        if id >= end {
            return Err(DecodeError("a case id past the snapshot's end"));
        }
        let seg = s
            .store
            .segment(id)
            .ok_or(DecodeError("a case id beyond the store"))?;
        let mut g = seg.lock();
        let slot = &mut g[Store::split(id).1];
        if slot.is_some() {
            return Err(DecodeError("a case twice"));
        }
        *slot = Some(rec);
    }
    super::archive::load(s, &mut r, end)?;
    r.end()?;
    s.next_id.store(end, Ordering::Relaxed);
    Ok(count)
}

/// Reads a case (its id, then its fields) and checks that every id it names is this
/// city's.
pub(crate) fn read_case(
    s: &Shared,
    r: &mut Reader<'_>,
    categories: u32,
) -> Result<(u64, Rec), DecodeError> {
    let id = r.u64()?;
    let rec = case(r, &s.texts, categories)?;
    let within = |v: u32, n: usize| v == NONE32 || (v as usize) < n;
    let workers = s.city.workers().len();
    let in_city = within(rec.cell, s.city.grid().len())
        && within(rec.worker, workers)
        && within(rec.resolver, workers)
        && within(rec.organ, s.city.organs().len())
        && rec.history.iter().all(|t| known_workers(&s.city, t))
        && known_reporter(&s.city, rec.reporter);
    if in_city {
        Ok((id, rec))
    } else {
        Err(DecodeError(
            "a case names a cell, worker or organ not in this city",
        ))
    }
}

fn case(r: &mut Reader<'_>, texts: &Texts, categories: u32) -> Result<Rec, DecodeError> {
    let at = r.u64()?;
    let location =
        Location::new(r.f64()?, r.f64()?).map_err(|_| DecodeError("a case's location"))?;
    let (due, accept_by, suspended_at, parent) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let reporter = reporter_from(r.u8()?, r.u32()?)?;
    let (cell, category, worker, resolver, organ) =
        (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
    if category >= categories {
        return Err(DecodeError("a category not in this city's catalogue"));
    }
    let state = CaseState::from_code(r.u8()?).ok_or(DecodeError("unknown state"))?;
    let source = source_from(r.u8()?)?;
    let priority = *Priority::ALL
        .get(usize::from(r.u8()?))
        .ok_or(DecodeError("unknown priority"))?;
    let [escalation, returns, reopens, satisfaction, flags] = r.take::<5>()?;
    if satisfaction != 0 && Satisfaction::from_code(satisfaction).is_none() {
        return Err(DecodeError("unknown verdict"));
    }
    let n = r.u32()? as usize;
    if n == 0 || n > r.0.len() / 16 {
        return Err(DecodeError("a history's length"));
    }
    let mut history = super::case::History::with_capacity(n);
    for _ in 0..n {
        let (packed, actor, w) = (r.u64()?, r.u32()?, r.u32()?);
        history.push(Transition::from_raw(packed, actor, w).ok_or(DecodeError("bad transition"))?);
    }
    if history.last().map(Transition::to) != Some(state) {
        return Err(DecodeError("a case's state is not its history's last"));
    }
    let extra = if r.flag()? {
        let description = r.text()?.into_boxed_str();
        let n = r.u32()? as usize;
        if n > r.0.len() / 8 {
            return Err(DecodeError("a note count"));
        }
        let mut notes = Vec::with_capacity(n);
        for _ in 0..n {
            let (i, text) = (r.u32()?, r.text()?);
            if i as usize >= history.len() {
                return Err(DecodeError("a note"));
            }
            notes.push((i, texts.intern(&text)));
        }
        let n = r.u32()? as usize;
        if n > r.0.len() / 8 {
            return Err(DecodeError("a duplicate count"));
        }
        let mut duplicates = Vec::with_capacity(n);
        for _ in 0..n {
            duplicates.push(CaseId(r.u64()?));
        }
        Some(Box::new(Extra {
            description,
            notes,
            duplicates,
        }))
    } else {
        None
    };
    Ok(Rec {
        at,
        location,
        due,
        accept_by,
        suspended_at,
        parent,
        armed: 0,
        history,
        extra,
        reporter,
        cell,
        category,
        worker,
        resolver,
        organ,
        state,
        source,
        priority,
        escalation,
        returns,
        reopens,
        satisfaction,
        flags,
    })
}
