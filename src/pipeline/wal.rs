//! The engine's side of the write-ahead journal: its record type, the record's bytes, and
//! the sink every batch hands its records to before anything it did is acknowledged.
//!
//! # Record format, version 2
//!
//! Each journal record is one engine record: a tag byte, then fixed-width little-endian
//! fields. The encoding is written by hand rather than derived, because the engine's types
//! keep compact private layouts (a [`Transition`] is a packed word) that a derived encoding
//! would have to unpack and check field by field anyway; decoding checks every code and
//! answers a typed error, never a panic.
//!
//! - tag 1, **report**: case `u64`, intake time `u64` (ms), source `u8`, category `u32`,
//!   lon `f64`, lat `f64`, report time `u64`, priority `u8`, reporter kind `u8` and id `u32`,
//!   on the spot `u8`, description length `u32` and its UTF-8 bytes. The case's first
//!   transition (`reported`) follows from it and is not written again.
//!   Concurrent submitters allocate ids and then append, so reports may be journaled out
//!   of id order, and an id whose append failed is never journaled: replay must not
//!   assume that ids come in order or without gaps.
//! - tag 2, **withdrawn**: case `u64`. A report journaled and then handed back
//!   (`try_submit` answering `Full`, or a submission racing shutdown): it is no case.
//! - tag 3, **transition**: case `u64`, its index in the case's history `u32`, the
//!   transition's packed word `u64`, actor id `u32`, worker `u32`. Transitions of one case
//!   made by different threads may be journaled out of order; the index orders them.
//! - tag 4, **command**: a command the engine took (answered `Ok`) that says what its
//!   transitions do not (a reason, an extension, a verdict; the others are not written):
//!   the engine's time
//!   `u64`, case `u64`, the index in the case's history of the first transition it made
//!   `u32`, kind `u8` (accept, return, resolve, verify, close, reopen, dispatch, extend,
//!   suspend, resume: 0 to 9), then by kind: a worker `u32` (a return: then a flag `u8`
//!   and a text, its reason); a verifier (kind `u8`, id `u32`) and passed `u8`; a verdict
//!   `u8` (0 for none); a text; a worker, a flag `u8` and a text; milliseconds `u64` and a
//!   text. A text is a length `u32` and its UTF-8
//!   bytes. Journaled just before the batch's transitions.
//! - tag 5, **worker status**: worker `u32`, status `u8` (on duty, busy, off duty: 0 to
//!   2), set through the engine.
//! - tag 6, **merge link**: case `u64`, the case it duplicates `u64`, and `u8` 1 if it was
//!   listed among that case's duplicates (0: that case had closed already, and the
//!   duplicate closed with it at once).
//!
//! Version 1 had no index in the command record and no tags 5 and 6; nothing reads it.
//!
//! # Replay
//!
//! Replay (see `recover.rs`) needs nothing else: a case's fields follow from its report
//! and its transitions in index order, the commands' texts and amounts attach to the
//! transition at their index, and queues, timers, the duplicate index and the router's
//! holdings follow from the cases. A transition whose index a case already has is
//! skipped, so that a snapshot taken while a batch was between the store and the journal
//! replays cleanly.

use super::case::{Report, Reporter, Satisfaction, Source};
use super::engine::{Command, Verifier};
use super::lifecycle::Transition;
use crate::city::{CategoryId, DepartmentId, Priority, WorkerId};
use crate::clock::Timestamp;
use crate::grid::Location;
use crate::journal::{Batch, Journal, JournalError};
use crate::routing::WorkerStatus;

/// One engine record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    Report {
        case: u64,
        now: Timestamp,
        report: Report,
    },
    Withdrawn {
        case: u64,
    },
    Transition {
        case: u64,
        seq: u32,
        transition: Transition,
    },
    Command {
        now: Timestamp,
        seq: u32,
        command: Command,
    },
    Status {
        worker: WorkerId,
        status: WorkerStatus,
    },
    Link {
        case: u64,
        parent: u64,
        listed: bool,
    },
}

const TAG_REPORT: u8 = 1;
const TAG_WITHDRAWN: u8 = 2;
const TAG_TRANSITION: u8 = 3;
const TAG_COMMAND: u8 = 4;
const TAG_STATUS: u8 = 5;
const TAG_LINK: u8 = 6;

/// Worker statuses by their code in records and snapshots.
pub(crate) const STATUSES: [WorkerStatus; 3] = [
    WorkerStatus::OnDuty,
    WorkerStatus::Busy,
    WorkerStatus::OffDuty,
];

/// A status's code.
pub(crate) fn status_code(status: WorkerStatus) -> u8 {
    STATUSES.iter().position(|&s| s == status).unwrap_or(2) as u8
}

/// The status of a code.
pub(crate) fn status_from(code: u8) -> Result<WorkerStatus, DecodeError> {
    STATUSES
        .get(usize::from(code))
        .copied()
        .ok_or(DecodeError("unknown worker status"))
}

/// Whether a reporter is this city's (workers and departments are numbered by it).
pub(crate) fn known_reporter(city: &crate::City, r: Reporter) -> bool {
    match r {
        Reporter::Worker(w) => city.worker(w).is_some(),
        Reporter::Department(d) => city.department(d).is_some(),
        _ => true,
    }
}

/// Whether every worker a transition names (its actor, the case's worker) is this
/// city's.
pub(crate) fn known_workers(city: &crate::City, t: &Transition) -> bool {
    let known = |w: WorkerId| city.worker(w).is_some();
    t.worker().is_none_or(known)
        && match t.actor() {
            super::lifecycle::Actor::Worker(w) => known(w),
            _ => true,
        }
}

pub(crate) fn encode_status(buf: &mut Vec<u8>, worker: WorkerId, status: WorkerStatus) {
    buf.push(TAG_STATUS);
    buf.extend_from_slice(&(worker.index() as u32).to_le_bytes());
    buf.push(status_code(status));
}

pub(crate) fn encode_link(buf: &mut Vec<u8>, case: u64, parent: u64, listed: bool) {
    buf.push(TAG_LINK);
    buf.extend_from_slice(&case.to_le_bytes());
    buf.extend_from_slice(&parent.to_le_bytes());
    buf.push(u8::from(listed));
}

pub(crate) fn put_text(buf: &mut Vec<u8>, text: &str) {
    buf.extend_from_slice(&(text.len() as u32).to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
}

/// Whether a command says what its transitions do not: a reason, an extension's length,
/// a verdict. Only those are journaled; the others' transitions say it all (who, when,
/// what, the verifier and the outcome).
pub(crate) fn has_detail(c: &Command) -> bool {
    match c {
        Command::Extend { .. } | Command::Suspend { .. } | Command::Reopen { .. } => true,
        Command::Return { reason, .. } => reason.is_some(),
        Command::Dispatch { over_capacity, .. } => over_capacity.is_some(),
        Command::Close { satisfaction, .. } => satisfaction.is_some(),
        Command::Accept { .. }
        | Command::Resolve { .. }
        | Command::Verify { .. }
        | Command::Resume { .. } => false,
    }
}

pub(crate) fn encode_command(buf: &mut Vec<u8>, now: Timestamp, seq: u32, c: &Command) {
    buf.push(TAG_COMMAND);
    buf.extend_from_slice(&now.0.to_le_bytes());
    buf.extend_from_slice(&c.case().0.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    let worker = |buf: &mut Vec<u8>, w: &WorkerId| {
        buf.extend_from_slice(&(w.index() as u32).to_le_bytes());
    };
    match c {
        Command::Accept { worker: w, .. } => {
            buf.push(0);
            worker(buf, w);
        }
        Command::Return {
            worker: w, reason, ..
        } => {
            buf.push(1);
            worker(buf, w);
            buf.push(u8::from(reason.is_some()));
            put_text(buf, reason.as_deref().unwrap_or_default());
        }
        Command::Resolve { worker: w, .. } => {
            buf.push(2);
            worker(buf, w);
        }
        Command::Verify { by, passed, .. } => {
            buf.push(3);
            let (kind, id) = match by {
                Verifier::Reporter => (0u8, 0u32),
                Verifier::Inspector(i) => (1, *i),
                Verifier::Worker(w) => (2, w.index() as u32),
                Verifier::Center => (3, 0),
            };
            buf.push(kind);
            buf.extend_from_slice(&id.to_le_bytes());
            buf.push(u8::from(*passed));
        }
        Command::Close { satisfaction, .. } => {
            buf.push(4);
            buf.push(satisfaction.map_or(0, Satisfaction::code));
        }
        Command::Reopen { reason, .. } => {
            buf.push(5);
            put_text(buf, reason);
        }
        Command::Dispatch {
            worker: w,
            over_capacity,
            ..
        } => {
            buf.push(6);
            worker(buf, w);
            buf.push(u8::from(over_capacity.is_some()));
            put_text(buf, over_capacity.as_deref().unwrap_or_default());
        }
        Command::Extend { by, reason, .. } => {
            buf.push(7);
            buf.extend_from_slice(&(by.as_millis().min(u128::from(u64::MAX)) as u64).to_le_bytes());
            put_text(buf, reason);
        }
        Command::Suspend { reason, .. } => {
            buf.push(8);
            put_text(buf, reason);
        }
        Command::Resume { .. } => buf.push(9),
    }
}

/// Why a record's bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal record: {0}")]
pub(crate) struct DecodeError(pub(crate) &'static str);

pub(crate) fn source_code(source: Source) -> u8 {
    match source {
        Source::Patrol => 0,
        Source::Hotline => 1,
        Source::Sensor => 2,
        Source::Referral => 3,
    }
}

pub(crate) fn source_from(code: u8) -> Result<Source, DecodeError> {
    Ok(match code {
        0 => Source::Patrol,
        1 => Source::Hotline,
        2 => Source::Sensor,
        3 => Source::Referral,
        _ => return Err(DecodeError("unknown source")),
    })
}

pub(crate) fn reporter_code(reporter: Reporter) -> (u8, u32) {
    match reporter {
        Reporter::Anonymous => (0, 0),
        Reporter::Citizen(c) => (1, c),
        Reporter::Worker(w) => (2, w.index() as u32),
        Reporter::Sensor(s) => (3, s),
        Reporter::Department(d) => (4, d.index() as u32),
    }
}

pub(crate) fn reporter_from(kind: u8, id: u32) -> Result<Reporter, DecodeError> {
    Ok(match kind {
        0 => Reporter::Anonymous,
        1 => Reporter::Citizen(id),
        2 => Reporter::Worker(WorkerId(id)),
        3 => Reporter::Sensor(id),
        4 => Reporter::Department(DepartmentId(id)),
        _ => return Err(DecodeError("unknown reporter kind")),
    })
}

/// Appends a report record to `buf`.
pub(crate) fn encode_report(buf: &mut Vec<u8>, case: u64, now: Timestamp, r: &Report) {
    buf.push(TAG_REPORT);
    buf.extend_from_slice(&case.to_le_bytes());
    buf.extend_from_slice(&now.0.to_le_bytes());
    buf.push(source_code(r.source));
    buf.extend_from_slice(&r.category.0.to_le_bytes());
    buf.extend_from_slice(&r.location.lon().to_le_bytes());
    buf.extend_from_slice(&r.location.lat().to_le_bytes());
    buf.extend_from_slice(&r.at.0.to_le_bytes());
    buf.push(r.priority.index() as u8);
    let (kind, id) = reporter_code(r.reporter);
    buf.push(kind);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.push(u8::from(r.on_the_spot));
    buf.extend_from_slice(&(r.description.len() as u32).to_le_bytes());
    buf.extend_from_slice(r.description.as_bytes());
}

pub(crate) fn encode_withdrawn(buf: &mut Vec<u8>, case: u64) {
    buf.push(TAG_WITHDRAWN);
    buf.extend_from_slice(&case.to_le_bytes());
}

pub(crate) fn encode_transition(buf: &mut Vec<u8>, case: u64, seq: u32, t: &Transition) {
    let (packed, actor, worker) = t.raw();
    buf.push(TAG_TRANSITION);
    buf.extend_from_slice(&case.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&packed.to_le_bytes());
    buf.extend_from_slice(&actor.to_le_bytes());
    buf.extend_from_slice(&worker.to_le_bytes());
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(DecodeError("too short"))?;
        self.0 = rest;
        Ok(*head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub(crate) fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad flag")),
        }
    }
    pub(crate) fn text(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return Err(DecodeError("text past the end"));
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(std::str::from_utf8(text)
            .map_err(|_| DecodeError("text is not UTF-8"))?
            .to_string())
    }
    pub(crate) fn end(self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

/// Reads one record back.
pub(crate) fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader(bytes);
    let record = match r.u8()? {
        TAG_REPORT => {
            let case = r.u64()?;
            let now = Timestamp(r.u64()?);
            let source = source_from(r.u8()?)?;
            let category = CategoryId(r.u32()?);
            let (lon, lat) = (r.f64()?, r.f64()?);
            let location = Location::new(lon, lat).map_err(|_| DecodeError("bad location"))?;
            let at = Timestamp(r.u64()?);
            let priority = *Priority::ALL
                .get(usize::from(r.u8()?))
                .ok_or(DecodeError("unknown priority"))?;
            let reporter = reporter_from(r.u8()?, r.u32()?)?;
            let on_the_spot = r.flag()?;
            let description = r.text()?;
            Record::Report {
                case,
                now,
                report: Report {
                    source,
                    category,
                    location,
                    at,
                    priority,
                    reporter,
                    description,
                    on_the_spot,
                },
            }
        }
        TAG_WITHDRAWN => Record::Withdrawn { case: r.u64()? },
        TAG_TRANSITION => {
            let case = r.u64()?;
            let seq = r.u32()?;
            let (packed, actor, worker) = (r.u64()?, r.u32()?, r.u32()?);
            let transition =
                Transition::from_raw(packed, actor, worker).ok_or(DecodeError("bad transition"))?;
            Record::Transition {
                case,
                seq,
                transition,
            }
        }
        TAG_COMMAND => {
            let now = Timestamp(r.u64()?);
            let case = super::CaseId(r.u64()?);
            let seq = r.u32()?;
            let command = match r.u8()? {
                0 => Command::Accept {
                    case,
                    worker: WorkerId(r.u32()?),
                },
                1 => {
                    let worker = WorkerId(r.u32()?);
                    let given = r.flag()?;
                    let text = r.text()?;
                    Command::Return {
                        case,
                        worker,
                        reason: given.then_some(text),
                    }
                }
                2 => Command::Resolve {
                    case,
                    worker: WorkerId(r.u32()?),
                },
                3 => {
                    let (kind, id) = (r.u8()?, r.u32()?);
                    let by = match kind {
                        0 => Verifier::Reporter,
                        1 => Verifier::Inspector(id),
                        2 => Verifier::Worker(WorkerId(id)),
                        3 => Verifier::Center,
                        _ => return Err(DecodeError("unknown verifier")),
                    };
                    Command::Verify {
                        case,
                        by,
                        passed: r.flag()?,
                    }
                }
                4 => Command::Close {
                    case,
                    satisfaction: match r.u8()? {
                        0 => None,
                        c => {
                            Some(Satisfaction::from_code(c).ok_or(DecodeError("unknown verdict"))?)
                        }
                    },
                },
                5 => Command::Reopen {
                    case,
                    reason: r.text()?,
                },
                6 => {
                    let worker = WorkerId(r.u32()?);
                    let over = r.flag()?;
                    let text = r.text()?;
                    Command::Dispatch {
                        case,
                        worker,
                        over_capacity: over.then_some(text),
                    }
                }
                7 => Command::Extend {
                    case,
                    by: std::time::Duration::from_millis(r.u64()?),
                    reason: r.text()?,
                },
                8 => Command::Suspend {
                    case,
                    reason: r.text()?,
                },
                9 => Command::Resume { case },
                _ => return Err(DecodeError("unknown command")),
            };
            Record::Command { now, seq, command }
        }
        TAG_STATUS => Record::Status {
            worker: WorkerId(r.u32()?),
            status: status_from(r.u8()?)?,
        },
        TAG_LINK => Record::Link {
            case: r.u64()?,
            parent: r.u64()?,
            listed: r.flag()?,
        },
        _ => return Err(DecodeError("unknown tag")),
    };
    r.end()?;
    Ok(record)
}

thread_local! {
    /// Each thread's batch, kept between appends for its buffers.
    static BATCH: std::cell::RefCell<Batch> = std::cell::RefCell::new(Batch::new());
}

/// Serializes the records `fill` pushes into this thread's batch, outside the journal's
/// lock (the threads that write ahead encode in parallel), and hands it to `append`.
/// A record too large for the journal is an error that appends nothing.
pub(crate) fn with_batch(
    fill: impl FnOnce(&mut dyn FnMut(&dyn Fn(&mut Vec<u8>))),
    append: impl FnOnce(&Batch) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    BATCH.with(|cell| {
        let mut batch = cell.borrow_mut();
        batch.clear();
        let mut pushed = Ok(());
        {
            let mut push = |write: &dyn Fn(&mut Vec<u8>)| {
                if pushed.is_ok() {
                    pushed = batch.push_with(|buf: &mut Vec<u8>| {
                        write(buf);
                        Ok::<_, JournalError>(())
                    });
                }
            };
            fill(&mut push);
        }
        pushed?;
        append(&batch)
    })
}

/// The journal as the engine holds it, behind one lock. A failed append leaves the error here, and the engine refuses every
/// later write (see [`Engine`](super::Engine)'s durability notes).
pub(crate) struct Sink {
    journal: Box<dyn Journal>,
    pub(crate) failed: Option<JournalError>,
}

impl Sink {
    pub(crate) fn new(journal: Box<dyn Journal>) -> Sink {
        Sink {
            journal,
            failed: None,
        }
    }

    /// Appends a batch, unless a write failed before.
    pub(crate) fn append(&mut self, batch: &Batch) -> Result<(), JournalError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let appended = self.journal.append(batch).map(|_| ());
        if let Err(e) = &appended {
            self.failed = Some(e.clone());
        }
        appended
    }

    pub(crate) fn sync(&mut self) -> Result<(), JournalError> {
        self.journal.sync()
    }

    /// The journal itself, for a snapshot (the caller holds the sink's lock throughout).
    pub(crate) fn journal(&mut self) -> &mut dyn Journal {
        &mut *self.journal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::journal::FileJournal;
    use crate::pipeline::CaseId;
    use crate::pipeline::{
        CaseState, Command, Engine, EngineConfig, LifecycleError, Satisfaction, Verifier,
    };
    use crate::rng::SplitMix64;
    use crate::{City, SimClock};
    use std::collections::BTreeMap;
    use std::ops::ControlFlow;
    use std::sync::Arc;
    use std::time::Duration;

    const T0: u64 = 1_764_460_800_000;

    fn city() -> Arc<City> {
        Arc::new(crate::city::demo::demo_city())
    }

    /// Reports over the demo city's bounds, of every category, some with text.
    fn reports(city: &City, rng: &mut SplitMix64, n: usize, at: Timestamp) -> Vec<Report> {
        let [x0, y0, x1, y1] = city.grid().bounds();
        let codes = ["ZF-01", "ZF-02"];
        (0..n)
            .map(|i| {
                let category = city
                    .category_id(codes[rng.below(codes.len())])
                    .expect("in the demo catalogue");
                let p = Location::new(rng.range(x0, x1), rng.range(y0, y1)).expect("in bounds");
                let mut r = Report::new(Source::Hotline, category, p, at)
                    .with_reporter(Reporter::Citizen(i as u32));
                if rng.below(4) == 0 {
                    r.description = format!("报告 {i}");
                }
                r.priority = Priority::ALL[rng.below(4)];
                r
            })
            .collect()
    }

    fn read_all(dir: &std::path::Path) -> Vec<Record> {
        let mut j = FileJournal::open(dir).expect("reopens");
        let mut out = Vec::new();
        let mut bad = None;
        j.read_from(0, &mut |pos, bytes| match decode(bytes) {
            Ok(r) => {
                out.push(r);
                ControlFlow::Continue(())
            }
            Err(e) => {
                bad = Some((pos, e));
                ControlFlow::Break(())
            }
        })
        .expect("reads");
        assert_eq!(bad, None, "every record decodes");
        out
    }

    /// Reports taken, by case id: the engine's time at intake and the report.
    type Taken = BTreeMap<u64, (Timestamp, Report)>;

    /// Drives `engine` for `rounds` rounds: reports (some of them the same incident
    /// twice), a random mix of every kind of command (returns, suspensions, extensions,
    /// verification failures, reopening, closure with a verdict, manual dispatch of
    /// rulings and queued cases, status changes) and ticks on the clock. Records every
    /// report taken and every command taken.
    pub(crate) fn drive(
        engine: &Engine,
        clock: &SimClock,
        rng: &mut SplitMix64,
        rounds: usize,
        taken: &mut Taken,
        took: &mut Vec<(Timestamp, Command)>,
    ) {
        let city = engine.city();
        for _ in 0..rounds {
            let now = clock.now();
            let n = 1 + rng.below(20);
            let mut batch = reports(city, rng, n, now);
            if let Some(first) = batch.first().cloned()
                && rng.below(2) == 0
            {
                batch.push(first);
            }
            for (r, a) in batch.iter().zip(engine.submit_batch(batch.clone())) {
                let id = a.expect("valid reports are taken");
                taken.insert(id.0, (now, r.clone()));
            }
            engine.flush();
            if rng.below(4) == 0 {
                let w = WorkerId(rng.below(city.workers().len()) as u32);
                let status = STATUSES[rng.below(3)];
                engine.set_worker_status(w, status).expect("a known worker");
            }
            let mut commands = Vec::new();
            for &id in taken.keys() {
                let case = engine.case(CaseId(id)).expect("stored");
                let pick = rng.below(6);
                let c = match (case.state, case.worker) {
                    (CaseState::Dispatched, Some(worker)) if pick == 0 => Command::Return {
                        case: case.id,
                        worker,
                        reason: (rng.below(2) == 0).then(|| "不属于本人职责".to_string()),
                    },
                    (CaseState::Dispatched, Some(worker)) => Command::Accept {
                        case: case.id,
                        worker,
                    },
                    (CaseState::Accepted, Some(_)) if pick == 1 => Command::Suspend {
                        case: case.id,
                        reason: "等待配件".into(),
                    },
                    (CaseState::Accepted, Some(_)) if pick == 2 => Command::Extend {
                        case: case.id,
                        by: Duration::from_secs(3600 * (1 + rng.below(48) as u64)),
                        reason: format!("雨天 {}", rng.below(3)),
                    },
                    (CaseState::Accepted, Some(worker)) => Command::Resolve {
                        case: case.id,
                        worker,
                    },
                    (CaseState::Resolved, _) => Command::Verify {
                        case: case.id,
                        by: if pick == 3 {
                            Verifier::Inspector(7)
                        } else {
                            Verifier::Center
                        },
                        passed: pick != 2,
                    },
                    (CaseState::Verified, _) if pick == 4 => Command::Reopen {
                        case: case.id,
                        reason: "群众再次反映".into(),
                    },
                    (CaseState::Verified, _) => Command::Close {
                        case: case.id,
                        satisfaction: Satisfaction::from_code(pick as u8 % 4),
                    },
                    (CaseState::Ruling | CaseState::Queued, _) if !case.suspended => {
                        Command::Dispatch {
                            case: case.id,
                            worker: WorkerId(rng.below(city.workers().len()) as u32),
                            over_capacity: Some("指挥中心指派".into()),
                        }
                    }
                    _ if case.suspended => Command::Resume { case: case.id },
                    _ => continue,
                };
                if rng.below(3) != 0 {
                    commands.push(c);
                }
            }
            let mut results = vec![Ok(CaseState::Reported); commands.len()];
            engine.execute_batch(&commands, &mut results);
            for (c, r) in commands.into_iter().zip(&results) {
                assert!(
                    !matches!(r, Err(LifecycleError::Journal(_))),
                    "the journal takes every write: {r:?}"
                );
                if r.is_ok() {
                    took.push((clock.now(), c));
                }
            }
            engine.flush();
            clock.advance(Duration::from_secs(60 * (1 + rng.below(120) as u64)));
            engine.tick();
            engine.flush();
        }
    }

    /// An engine on the journal in `dir`, with the tests' settings (small segments, so
    /// that compaction has whole segments to drop).
    pub(crate) fn engine_on(dir: &std::path::Path, clock: &SimClock) -> Engine {
        engine_with_archive(dir, clock, false)
    }

    /// The same, with an archive in `dir/archive` that takes cases closed for an hour.
    fn engine_with_archive(dir: &std::path::Path, clock: &SimClock, archive: bool) -> Engine {
        let options = crate::journal::JournalOptions::default().segment_bytes(16 << 10);
        let mut builder = Engine::builder(city());
        if archive {
            builder = builder.archive(dir.join("archive"), Duration::from_secs(3600));
        }
        builder
            .clock(clock.clone())
            .config(EngineConfig {
                batch: 7,
                ..EngineConfig::default()
            })
            .journal(Box::new(
                FileJournal::open_with(dir, options).expect("opens"),
            ))
            .build()
            .expect("engine")
    }

    /// Everything an engine shows: every case with its history, notes and deadlines, and
    /// the command center's view (counts, queues, every worker's load, indicators).
    type State = (
        Vec<crate::pipeline::Case>,
        crate::pipeline::Snapshot,
        Vec<Vec<(u8, u64, u64)>>,
        Vec<(crate::routing::WorkerStatus, u32, u32, Vec<CaseId>)>,
        Vec<u8>,
    );

    fn state_of(engine: &Engine) -> State {
        let cases: Vec<_> = (0..engine.submitted())
            .filter_map(|id| engine.case(CaseId(id)))
            .collect();
        let router = engine.router();
        let workers = (0..engine.city().workers().len())
            .map(|w| {
                let w = WorkerId(w as u32);
                let mut held = router.held_by(w);
                held.sort_unstable();
                let st = router.worker_state(w).expect("known");
                // The fair-rotation place is not in the journal: only a snapshot keeps it.
                (st.status, st.load, st.capacity, held)
            })
            .collect();
        let returns = cases.iter().map(|c| router.returns(c.id)).collect();
        (
            cases,
            engine.snapshot(),
            engine.queue_contents(),
            workers,
            returns,
        )
    }

    /// Replaying the journal of a run gives the state the run ended in, case by case and
    /// in the command center's view; the recovered engine goes on where it stood, and a
    /// second recovery (over records of both runs) does the same. With `checkpoint`, a
    /// snapshot taken mid-run (its segments compacted away) is loaded and only what
    /// came after it is replayed.
    fn recover_and_compare(seed: u64, checkpoint: bool, archive: bool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = SimClock::new(Timestamp(T0));
        let mut rng = SplitMix64(seed);
        let (mut taken, mut took) = (Taken::new(), Vec::new());
        let mut expected_snapshot = None;
        for run in 0..3 {
            let engine = engine_with_archive(dir.path(), &clock, archive);
            engine.flush();
            if run == 0 {
                // Few on duty: cases queue, and rulings wait for the center.
                for w in 0..engine.city().workers().len() {
                    if w % 5 != 0 {
                        engine
                            .set_worker_status(
                                WorkerId(w as u32),
                                crate::routing::WorkerStatus::OffDuty,
                            )
                            .expect("known");
                    }
                }
            }
            let recovered = engine.recovery().cloned().expect("a journal's report");
            if run == 0 {
                assert_eq!(recovered.cases, 0);
            } else {
                let before: State = expected_snapshot.take().expect("the run before");
                let now = state_of(&engine);
                assert_eq!(
                    recovered.cases,
                    taken.len() as u64,
                    "seed {seed}, run {run}: {recovered:?}"
                );
                assert_eq!(recovered.dropped, 0);
                assert_eq!(recovered.snapshot.is_some(), checkpoint);
                assert!(
                    before.2.iter().any(|q| !q.is_empty()),
                    "seed {seed}: some cases wait in queues"
                );
                assert_eq!(now.0, before.0, "seed {seed}, run {run}: the cases");
                assert_eq!(now.1, before.1, "seed {seed}, run {run}: the center's view");
                assert_eq!(now.2, before.2, "seed {seed}, run {run}: the queues");
                assert_eq!(now.3, before.3, "seed {seed}, run {run}: the workers");
                assert_eq!(now.4, before.4, "seed {seed}, run {run}: the returners");
            }
            drive(&engine, &clock, &mut rng, 6, &mut taken, &mut took);
            if checkpoint {
                engine.flush();
                let before = state_of(&engine);
                let c = engine.checkpoint().expect("checkpoint");
                assert!(c.bytes > 0);
                assert_eq!(c.archived > 0, archive, "seed {seed}: {c:?}");
                // Archived cases read back as they were, and count as they did.
                let after = state_of(&engine);
                assert_eq!(after.0, before.0, "seed {seed}: cases through the archive");
                assert_eq!(
                    after.1, before.1,
                    "seed {seed}: the view through the archive"
                );
                if run > 0 {
                    assert!(
                        c.compaction.segments_removed > 0,
                        "seed {seed}: the snapshot covers whole segments: {c:?}"
                    );
                }
            }
            drive(&engine, &clock, &mut rng, 4, &mut taken, &mut took);
            engine.flush();
            expected_snapshot = Some(state_of(&engine));
            // Dropped without a shutdown's sync: what the process handed to the journal
            // is what a restart finds.
            std::mem::forget(engine);
        }
    }

    /// Snapshots taken while threads submit and act (and the clock ticks) recover the
    /// state the run ended in: what changed while a snapshot was read is replayed, what it
    /// held already is skipped.
    #[test]
    fn checkpoints_under_load_recover_the_state_of_the_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = SimClock::new(Timestamp(T0));
        let engine = engine_on(dir.path(), &clock);
        let done = std::sync::atomic::AtomicBool::new(false);
        let snapshots = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            let mut drivers = Vec::new();
            for t in 0..3u64 {
                let (engine, clock) = (&engine, &clock);
                drivers.push(scope.spawn(move || {
                    let mut rng = SplitMix64(40 + t);
                    let (mut taken, mut took) = (Taken::new(), Vec::new());
                    drive(engine, clock, &mut rng, 8, &mut taken, &mut took);
                }));
            }
            let (engine, done, snapshots) = (&engine, &done, &snapshots);
            scope.spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    engine.checkpoint().expect("checkpoint");
                    snapshots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(3));
                }
            });
            for d in drivers {
                d.join().expect("driver");
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        engine.flush();
        let before = state_of(&engine);
        std::mem::forget(engine);
        assert!(snapshots.load(std::sync::atomic::Ordering::Relaxed) > 2);
        let recovered = engine_on(dir.path(), &clock);
        recovered.flush();
        let r = recovered.recovery().cloned().expect("report");
        assert!(r.snapshot.is_some(), "{r:?}");
        let now = state_of(&recovered);
        assert_eq!(now.0, before.0, "the cases");
        assert_eq!(now.1, before.1, "the center's view");
        assert_eq!(now.2, before.2, "the queues");
        assert_eq!(now.3, before.3, "the workers");
        assert_eq!(now.4, before.4, "the returners");
    }

    #[test]
    fn replaying_the_journal_gives_the_state_of_the_run() {
        for seed in 1..6 {
            recover_and_compare(seed, false, false);
        }
    }

    #[test]
    fn a_checkpoint_is_loaded_and_only_what_followed_is_replayed() {
        for seed in 11..15 {
            recover_and_compare(seed, true, false);
        }
    }

    #[test]
    fn archived_cases_stay_readable_and_counted_through_recovery() {
        for seed in 21..24 {
            recover_and_compare(seed, true, true);
        }
    }

    /// Drives an engine on a journal through reports and a random mix of commands and
    /// ticks, then checks the journal against what the engine shows: every acknowledged
    /// report once, with its intake time, and every case's history after its first entry
    /// exactly, by index, nothing missing and nothing extra.
    fn run_and_check(seed: u64, rounds: usize) {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = SimClock::new(Timestamp(T0));
        let engine = engine_on(dir.path(), &clock);
        let mut rng = SplitMix64(seed);
        let mut taken = Taken::new();
        let mut took = Vec::new();
        drive(&engine, &clock, &mut rng, rounds, &mut taken, &mut took);
        engine.shutdown();
        let (journaled, transitions) = check(dir.path(), &engine, &taken);
        let detailed: Vec<_> = took
            .iter()
            .filter(|(_, c)| has_detail(c))
            .cloned()
            .collect();
        assert_eq!(
            journaled, detailed,
            "every command taken that says more than its transitions, in order, with its time"
        );
        assert!(
            transitions > taken.len() * 2,
            "the mix moved cases: {transitions} transitions for {} cases",
            taken.len()
        );
        for kind in ["Suspend", "Extend", "Reopen", "Dispatch", "Close"] {
            assert!(
                took.iter().any(|(_, c)| format!("{c:?}").starts_with(kind)),
                "the mix took a {kind}"
            );
        }
    }

    /// The journal in `dir` against what `engine` shows of the `taken` reports.
    /// Answers the commands journaled, in order, and how many transitions were.
    fn check(
        dir: &std::path::Path,
        engine: &Engine,
        taken: &BTreeMap<u64, (Timestamp, Report)>,
    ) -> (Vec<(Timestamp, Command)>, usize) {
        let records = read_all(dir);
        let mut commands = Vec::new();
        let mut journaled_reports = BTreeMap::new();
        let mut histories: BTreeMap<u64, BTreeMap<u32, Transition>> = BTreeMap::new();
        for r in records {
            match r {
                Record::Report { case, now, report } => {
                    assert!(
                        journaled_reports.insert(case, (now, report)).is_none(),
                        "case {case} journaled twice"
                    );
                }
                Record::Withdrawn { case } => panic!("case {case} withdrawn without cause"),
                Record::Command { now, command, .. } => commands.push((now, command)),
                Record::Status { .. } | Record::Link { .. } => {}
                Record::Transition {
                    case,
                    seq,
                    transition,
                } => {
                    assert!(
                        journaled_reports.contains_key(&case),
                        "a transition of case {case} before its report"
                    );
                    let old = histories.entry(case).or_default().insert(seq, transition);
                    assert_eq!(old, None, "case {case}, entry {seq} journaled twice");
                }
            }
        }
        assert_eq!(
            &journaled_reports, taken,
            "every acknowledged report, as it was"
        );
        let mut transitions = 0;
        for (&id, (now, _)) in taken {
            let case = engine.case(CaseId(id)).expect("stored");
            assert_eq!(case.history[0].at(), *now);
            let journaled: Vec<Transition> = histories
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, (seq, t))| {
                    assert_eq!(seq as usize, i + 1, "case {id}: no gap in the journal");
                    t
                })
                .collect();
            assert_eq!(journaled, case.history[1..], "case {id}");
            transitions += journaled.len();
        }
        assert!(histories.is_empty(), "transitions of unknown cases");
        (commands, transitions)
    }

    #[test]
    fn the_journal_holds_every_report_and_every_transition() {
        for seed in 1..4 {
            run_and_check(seed, 12);
        }
    }

    /// Submissions and commands from several threads at once: every case's transitions
    /// are journaled after its report and complete, whichever thread made them.
    #[test]
    fn the_journal_is_complete_under_threads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let city = city();
        let clock = SimClock::new(Timestamp(T0));
        let engine = Engine::builder(city.clone())
            .clock(clock.clone())
            .config(EngineConfig {
                batch: 5,
                ..EngineConfig::default()
            })
            .journal(Box::new(FileJournal::open(dir.path()).expect("opens")))
            .build()
            .expect("engine");
        let taken = std::sync::Mutex::new(BTreeMap::new());
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (engine, city, taken) = (&engine, &city, &taken);
                scope.spawn(move || {
                    let mut rng = SplitMix64(100 + t);
                    let mut mine = Vec::new();
                    for _ in 0..30 {
                        let now = Timestamp(T0);
                        let batch = reports(city, &mut rng, 8, now);
                        for (r, a) in batch.iter().zip(engine.submit_batch(batch.clone())) {
                            let id = a.expect("taken");
                            mine.push(id);
                            taken.lock().expect("lock").insert(id.0, (now, r.clone()));
                        }
                        // Without waiting for the stages: commands race the assign stage.
                        for &id in &mine {
                            let case = engine.case(id).expect("stored");
                            let _ = match (case.state, case.worker) {
                                (CaseState::Dispatched, Some(w)) => engine.accept(id, w),
                                (CaseState::Accepted, Some(w)) => engine.resolve(id, w),
                                (CaseState::Resolved, _) => {
                                    engine.verify(id, Verifier::Center, true)
                                }
                                (CaseState::Verified, _) => {
                                    engine.close(id, Some(Satisfaction::Satisfied))
                                }
                                (state, _) => Ok(state),
                            };
                        }
                    }
                });
            }
        });
        engine.flush();
        engine.shutdown();
        let taken = taken.into_inner().expect("lock");
        assert_eq!(taken.len(), 4 * 30 * 8);
        let (commands, transitions) = check(dir.path(), &engine, &taken);
        assert!(!commands.is_empty(), "the threads' commands are journaled");
        // At least every case's registration, and the commands' moves.
        assert!(transitions > taken.len(), "{transitions} transitions");
    }

    #[test]
    fn an_engine_refuses_a_journal_it_cannot_replay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut j = FileJournal::open(dir.path()).expect("opens");
        let mut b = Batch::new();
        b.push(b"old").expect("small");
        j.append(&b).expect("appends");
        let built = Engine::builder(city()).journal(Box::new(j)).build();
        assert!(
            matches!(
                built,
                Err(crate::pipeline::EngineError::Replay { position: 0, .. })
            ),
            "{built:?}"
        );
    }

    /// A journal whose appends fail after `ok` of them.
    struct Failing {
        ok: usize,
        next: u64,
    }

    impl Journal for Failing {
        fn append(&mut self, batch: &Batch) -> Result<std::ops::Range<u64>, JournalError> {
            if self.ok == 0 {
                return Err(JournalError::Io {
                    action: "append",
                    path: "failing".into(),
                    source: std::io::Error::other("disk full").into(),
                });
            }
            self.ok -= 1;
            let first = self.next;
            self.next += batch.len() as u64;
            Ok(first..self.next)
        }
        fn sync(&mut self) -> Result<(), JournalError> {
            Ok(())
        }
        fn first_position(&self) -> u64 {
            0
        }
        fn next_position(&self) -> u64 {
            self.next
        }
        fn read_from(
            &mut self,
            from: u64,
            _: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
        ) -> Result<u64, JournalError> {
            Ok(from)
        }
        fn write_snapshot(&mut self, _: u64, _: &[u8]) -> Result<(), JournalError> {
            Ok(())
        }
        fn latest_snapshot(&mut self) -> Result<Option<crate::journal::Snapshot>, JournalError> {
            Ok(None)
        }
        fn compact(&mut self) -> Result<crate::journal::Compaction, JournalError> {
            Ok(Default::default())
        }
    }

    #[test]
    fn a_failed_append_refuses_the_write_and_every_later_one() {
        let city = city();
        let clock = SimClock::new(Timestamp(T0));
        let engine = Engine::builder(city.clone())
            .clock(clock.clone())
            .journal(Box::new(Failing { ok: 1, next: 0 }))
            .build()
            .expect("engine");
        let mut rng = SplitMix64(9);
        let first = reports(&city, &mut rng, 1, clock.now()).remove(0);
        let id = engine.submit(first).expect("the first append succeeds");
        let second = reports(&city, &mut rng, 1, clock.now()).remove(0);
        assert!(matches!(
            engine.submit(second.clone()),
            Err(crate::pipeline::SubmitError::Journal(_))
        ));
        assert!(matches!(
            engine.submit_batch(vec![second])[..],
            [Err(crate::pipeline::SubmitError::Journal(_))]
        ));
        assert!(matches!(engine.resume(id), Err(LifecycleError::Journal(_))));
        let s = engine.shutdown();
        assert_eq!(s.cases, 1, "nothing refused was stored");
    }

    #[test]
    fn records_read_back_as_written_and_garbage_is_an_error() {
        let city = city();
        let mut rng = SplitMix64(3);
        for (i, r) in reports(&city, &mut rng, 50, Timestamp(T0))
            .into_iter()
            .enumerate()
        {
            let mut buf = Vec::new();
            encode_report(&mut buf, i as u64, Timestamp(T0 + i as u64), &r);
            let back = decode(&buf).expect("decodes");
            assert_eq!(
                back,
                Record::Report {
                    case: i as u64,
                    now: Timestamp(T0 + i as u64),
                    report: r
                }
            );
            for cut in 0..buf.len() {
                assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
            }
        }
        let mut buf = Vec::new();
        encode_withdrawn(&mut buf, 42);
        assert_eq!(decode(&buf), Ok(Record::Withdrawn { case: 42 }));
        let (case, worker) = (CaseId(7), WorkerId(3));
        let commands = [
            Command::Accept { case, worker },
            Command::Return {
                case,
                worker,
                reason: None,
            },
            Command::Return {
                case,
                worker,
                reason: Some("不属于本人职责".into()),
            },
            Command::Resolve { case, worker },
            Command::Verify {
                case,
                by: Verifier::Worker(worker),
                passed: false,
            },
            Command::Verify {
                case,
                by: Verifier::Inspector(9),
                passed: true,
            },
            Command::Close {
                case,
                satisfaction: Some(crate::pipeline::Satisfaction::Basic),
            },
            Command::Close {
                case,
                satisfaction: None,
            },
            Command::Reopen {
                case,
                reason: "复查未通过".into(),
            },
            Command::Dispatch {
                case,
                worker,
                over_capacity: Some("急".into()),
            },
            Command::Dispatch {
                case,
                worker,
                over_capacity: None,
            },
            Command::Extend {
                case,
                by: Duration::from_secs(7200),
                reason: "雨天".into(),
            },
            Command::Suspend {
                case,
                reason: "等待配件".into(),
            },
            Command::Resume { case },
        ];
        for command in commands {
            let mut buf = Vec::new();
            encode_command(&mut buf, Timestamp(T0), 5, &command);
            for cut in 0..buf.len() {
                assert!(decode(&buf[..cut]).is_err(), "{command:?} cut at {cut}");
            }
            assert_eq!(
                decode(&buf),
                Ok(Record::Command {
                    now: Timestamp(T0),
                    seq: 5,
                    command
                })
            );
        }
        for _ in 0..20_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = decode(&bytes);
        }
    }
}
