//! Recovery: an engine rebuilt from its journal, after its latest snapshot if it has one.
//!
//! Three passes. The journal's records are read in order into the case store: a report
//! makes its case, a transition goes into its case's history at its index (one that comes
//! early waits for the ones before it), a command's texts and amounts are kept by the
//! index of the transition they go with. Then each case's fields (cell, worker, deadlines,
//! counters, notes) are folded from the transitions it gained, in index order, the way
//! the stages set them. Last, everything else follows from the cases: the organ queues,
//! the timers, the duplicate index, the router's holdings and returners, the counters;
//! and what the stages had not finished is handed to them again once they run (cases
//! still to collect, to route, to route again, duplicates of closed cases).

use super::case::{Extra, F_LATE, F_ON_TIME, F_REMINDED, F_UNCLAIMED, NONE32, NONE64, Rec};
use super::collect::Fast;
use super::engine::{Command, Shared};
use super::lifecycle::{Action, Actor, CaseState, Transition, is_legal_move};
use super::wal::{Record, decode, known_reporter, known_workers};
use super::{CaseId, Satisfaction};
use crate::city::WorkerId;
use crate::clock::{Timestamp, duration_ms};
use crate::journal::{Journal, JournalError};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

/// What recovery found and did, from [`Engine::recovery`](super::Engine::recovery).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Recovery {
    /// The position the loaded snapshot covers (none loaded: `None`).
    pub snapshot: Option<u64>,
    /// Cases the snapshot held.
    pub snapshot_cases: u64,
    /// Journal records read after the snapshot.
    pub records: u64,
    /// Records the snapshot reflected already (a batch that was on its way to the journal
    /// while the snapshot was taken), skipped.
    pub skipped: u64,
    /// Transitions dropped because one before them in their case's history was not in the
    /// journal: written by another thread a moment earlier, and lost with the journal's
    /// tail in a crash. Their case stands at the last transition that has no gap before it.
    pub dropped: u64,
    /// Cases in the engine after recovery (archived ones included).
    pub cases: u64,
    /// Of which in the archive.
    pub archived: u64,
    /// Open cases among them (neither terminal nor merged).
    pub open: u64,
    /// Cases handed back to the stages: still to collect, to route or to route again.
    pub resumed: u64,
    /// The latest time the journal records (ms since the epoch): a simulated clock should
    /// start no earlier.
    pub last_time: Timestamp,
}

/// Why a journal cannot be replayed into this engine.
pub(crate) struct ReplayError {
    pub(crate) position: u64,
    pub(crate) why: String,
}

impl From<ReplayError> for super::EngineError {
    fn from(e: ReplayError) -> super::EngineError {
        super::EngineError::Replay {
            position: e.position,
            why: e.why,
        }
    }
}

impl From<JournalError> for ReplayError {
    fn from(e: JournalError) -> ReplayError {
        ReplayError {
            position: u64::MAX,
            why: e.to_string(),
        }
    }
}

/// A command's texts and amounts, by the case and history index of its first transition.
#[derive(Default)]
struct Detail {
    note: Option<String>,
    extend_ms: u64,
    satisfaction: Option<Satisfaction>,
}

/// What the stages are handed once they run.
#[derive(Default)]
pub(crate) struct Resume {
    pub(crate) collect: Vec<u64>,
    pub(crate) route: Vec<u64>,
    pub(crate) reroute: Vec<u64>,
    pub(crate) close_children: Vec<CaseId>,
}

/// Replays `journal` (from `from`) into the engine's shared state, which holds the
/// snapshot's cases if one was loaded. Nothing else runs yet.
pub(crate) fn replay(
    s: &Shared,
    journal: &mut dyn Journal,
    from: u64,
    report: &mut Recovery,
) -> Result<Resume, ReplayError> {
    let mut r = Replayer {
        s,
        pending: HashMap::default(),
        details: HashMap::default(),
        links: Vec::new(),
        report,
        max_id: None,
        error: None,
    };
    journal.read_from(
        from,
        &mut |position, bytes| match r.record(position, bytes) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                r.error = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    if let Some(e) = r.error.take() {
        return Err(e);
    }
    let max_id = r.max_id;
    let (pending, details, links) = (r.pending, r.details, r.links);
    report.dropped += pending.values().map(|p| p.len() as u64).sum::<u64>();
    settle(s, max_id, &details, &links, report)
}

struct Replayer<'a> {
    s: &'a Shared,
    /// Transitions that came before the ones ahead of them in their case's history.
    pending: HashMap<u64, BTreeMap<u32, Transition>, Fast>,
    details: HashMap<(u64, u32), Detail, Fast>,
    links: Vec<(u64, u64, bool)>,
    report: &'a mut Recovery,
    max_id: Option<u64>,
    error: Option<ReplayError>,
}

impl Replayer<'_> {
    fn record(&mut self, position: u64, bytes: &[u8]) -> Result<(), ReplayError> {
        let bad = |why: String| ReplayError { position, why };
        let record = decode(bytes).map_err(|e| bad(e.to_string()))?;
        self.report.records += 1;
        let s = self.s;
        match record {
            Record::Report { case, now, report } => {
                self.seen(case, now);
                if s.city.category(report.category).is_none() {
                    return Err(bad(format!(
                        "case {case}: category {} is not in this city's catalogue",
                        report.category
                    )));
                }
                if !known_reporter(&s.city, report.reporter) {
                    return Err(bad(format!(
                        "case {case}: reporter {:?} is not in this city",
                        report.reporter
                    )));
                }
                let seg = s
                    .store
                    .segment(case)
                    .ok_or_else(|| bad(format!("case id {case} beyond the store")))?;
                let mut g = seg.lock();
                let slot = &mut g[super::case::Store::split(case).1];
                if slot.is_some() || s.archive.contains(case) {
                    self.report.skipped += 1;
                } else {
                    let mut rec = Rec::from_report(report, now);
                    // Fold from the second entry on (the first is the report's).
                    rec.armed = 1;
                    *slot = Some(rec);
                }
            }
            Record::Withdrawn { case } => {
                if s.store.with(case, |rec| rec.history.len() != 1) == Some(true) {
                    return Err(bad(format!("case {case} withdrawn after it moved")));
                }
                s.store.take(case);
            }
            Record::Transition {
                case,
                seq,
                transition,
            } => {
                self.seen(case, transition.at());
                if !known_workers(&s.city, &transition) {
                    return Err(bad(format!(
                        "case {case}: a transition names a worker not in this city"
                    )));
                }
                let pending = &mut self.pending;
                let outcome = s.store.with(case, |rec| {
                    let len = rec.history.len() as u32;
                    if seq < len {
                        return Ok::<u64, String>(1);
                    }
                    if rec.armed == 0 {
                        // A case of the snapshot: its fields stand as of its history so far.
                        rec.armed = u64::from(len);
                    }
                    if seq > len {
                        pending.entry(case).or_default().insert(seq, transition);
                        return Ok(0);
                    }
                    push(rec, transition)?;
                    // Those that were waiting for this one.
                    if let Some(waiting) = pending.get_mut(&case) {
                        while let Some(t) = waiting.remove(&(rec.history.len() as u32)) {
                            push(rec, t)?;
                        }
                        if waiting.is_empty() {
                            pending.remove(&case);
                        }
                    }
                    Ok(0)
                });
                match outcome {
                    // A case archived by the snapshot: its last transitions were on their
                    // way to the journal while the snapshot was taken.
                    None if s.archive.contains(case) => self.report.skipped += 1,
                    None => {
                        return Err(bad(format!(
                            "a transition of case {case}, which the journal never reported"
                        )));
                    }
                    Some(Err(why)) => return Err(bad(format!("case {case}: {why}"))),
                    Some(Ok(skipped)) => self.report.skipped += skipped,
                }
            }
            Record::Command { now, seq, command } => {
                self.seen(command.case().0, now);
                let key = (command.case().0, seq);
                let detail = match command {
                    Command::Extend { by, reason, .. } => Detail {
                        note: Some(reason),
                        extend_ms: duration_ms(by),
                        ..Detail::default()
                    },
                    Command::Suspend { reason, .. }
                    | Command::Reopen { reason, .. }
                    | Command::Return {
                        reason: Some(reason),
                        ..
                    } => Detail {
                        note: Some(reason),
                        ..Detail::default()
                    },
                    Command::Dispatch {
                        over_capacity: Some(reason),
                        ..
                    } => Detail {
                        note: Some(reason),
                        ..Detail::default()
                    },
                    Command::Close {
                        satisfaction: Some(v),
                        ..
                    } => Detail {
                        satisfaction: Some(v),
                        ..Detail::default()
                    },
                    _ => return Ok(()),
                };
                self.details.insert(key, detail);
            }
            Record::Status { worker, status } => {
                s.port
                    .router
                    .set_status(worker, status)
                    .map_err(|e| bad(e.to_string()))?;
            }
            Record::Link {
                case,
                parent,
                listed,
            } => self.links.push((case, parent, listed)),
        }
        Ok(())
    }

    fn seen(&mut self, case: u64, at: Timestamp) {
        self.max_id = Some(self.max_id.map_or(case, |m| m.max(case)));
        self.report.last_time = self.report.last_time.max(at);
    }
}

/// Appends a journaled transition to its case's history, if it is a legal move from
/// where the case stands.
fn push(rec: &mut Rec, t: Transition) -> Result<(), String> {
    if t.from() != Some(rec.state) || !is_legal_move(rec.state, t.to()) {
        return Err(format!(
            "{:?} does not follow from {} (entry {})",
            t,
            rec.state,
            rec.history.len()
        ));
    }
    rec.state = t.to();
    rec.history.push(t);
    Ok(())
}

/// Sets the fields that follow from the transition at `seq` of `rec`'s history, the way
/// the stage or command that made it set them; `rec` stands as after the one before.
fn fold(s: &Shared, rec: &mut Rec, seq: u32, detail: Option<&Detail>) {
    let Some(&t) = rec.history.get(seq as usize) else {
        return;
    };
    let at = t.at().0;
    let note = |rec: &mut Rec| {
        if let Some(text) = detail.and_then(|d| d.note.as_deref()) {
            let notes = &mut rec.extra.get_or_insert_with(Box::<Extra>::default).notes;
            notes.push((seq, s.texts.intern(text)));
        }
    };
    match t.action() {
        Action::Submit | Action::Reject | Action::Pass | Action::CloseWithParent => {}
        Action::Register => {
            locate(s, rec);
            let limit = s.limit_ms(rec);
            if limit > 0 {
                rec.due = at.saturating_add(limit);
            }
        }
        Action::Merge => locate(s, rec),
        Action::Refer => {
            locate(s, rec);
            rec.worker = NONE32;
            rec.accept_by = 0;
            rec.flags &= !F_UNCLAIMED;
        }
        Action::Route | Action::Return | Action::AcceptTimeout | Action::ManualDispatch => {
            if t.action() == Action::Return {
                rec.returns = rec.returns.saturating_add(1);
                note(rec);
            }
            rec.flags &= !F_UNCLAIMED;
            let organs = rec
                .cell()
                .and_then(|cell| s.port.router.queue_and_ruling(cell, rec.category()));
            match t.to() {
                CaseState::Dispatched => {
                    rec.worker = t.worker().map_or(NONE32, |w| w.index() as u32);
                    rec.organ = NONE32;
                    rec.accept_by = Timestamp(at).plus(s.config.accept_within).0;
                }
                CaseState::Queued => {
                    rec.worker = NONE32;
                    rec.organ = organs.map_or(NONE32, |(q, _)| q.index() as u32);
                    rec.accept_by = 0;
                }
                CaseState::Ruling => {
                    rec.worker = NONE32;
                    rec.organ = organs.map_or(NONE32, |(_, r)| r.index() as u32);
                    rec.accept_by = 0;
                }
                _ => {}
            }
            if t.action() == Action::ManualDispatch {
                note(rec);
            }
        }
        Action::Accept => rec.accept_by = 0,
        Action::TakeOnSpot => {
            rec.worker = t.worker().map_or(NONE32, |w| w.index() as u32);
        }
        Action::Resolve => {
            rec.flags &= !(F_UNCLAIMED | F_ON_TIME | F_LATE);
            let on_time = rec.due == 0 || at <= super::handle::effective_due(rec, Timestamp(at));
            rec.flags |= if on_time { F_ON_TIME } else { F_LATE };
            if let Actor::Worker(w) = t.actor() {
                rec.resolver = w.index() as u32;
            }
            rec.worker = NONE32;
        }
        Action::Fail => rec.reopens = rec.reopens.saturating_add(1),
        Action::Reopen => {
            rec.reopens = rec.reopens.saturating_add(1);
            note(rec);
        }
        Action::Close => {
            rec.set_satisfaction(detail.and_then(|d| d.satisfaction));
        }
        Action::Remind => rec.flags |= F_REMINDED,
        Action::Escalate => {
            rec.flags |= F_REMINDED;
            rec.escalation = rec.escalation.saturating_add(1);
        }
        Action::Extend => {
            rec.due = rec.due.saturating_add(detail.map_or(0, |d| d.extend_ms));
            note(rec);
        }
        Action::Suspend => {
            rec.suspended_at = at.max(1);
            note(rec);
        }
        Action::Resume => {
            let stood = at.saturating_sub(rec.suspended_at);
            rec.suspended_at = 0;
            if rec.due != 0 {
                rec.due = rec.due.saturating_add(stood);
            }
            if rec.accept_by != 0 {
                rec.accept_by = rec.accept_by.saturating_add(stood);
            }
        }
    }
}

fn locate(s: &Shared, rec: &mut Rec) {
    if rec.cell == NONE32
        && let Some(c) = s.city.grid().locate(rec.location)
    {
        rec.cell = c.0;
    }
}

/// The second and third passes: fields, links, then everything that follows from the
/// cases.
fn settle(
    s: &Shared,
    max_id: Option<u64>,
    details: &HashMap<(u64, u32), Detail, Fast>,
    links: &[(u64, u64, bool)],
    report: &mut Recovery,
) -> Result<Resume, ReplayError> {
    let end = s
        .next_id
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(max_id.map_or(0, |m| m + 1));
    s.store.scan_mut(end, |id, rec| {
        let from = std::mem::take(&mut rec.armed);
        if from == 0 {
            return;
        }
        for seq in from as u32..rec.history.len() as u32 {
            fold(s, rec, seq, details.get(&(id, seq)));
        }
    });
    for &(child, parent, listed) in links {
        if s.archive.contains(child) {
            continue;
        }
        let parent_known = s.store.with(parent, |_| ()).is_some() || s.archive.contains(parent);
        let set = s.store.with(child, |c| {
            c.parent = parent;
            c.state
        });
        if !parent_known || set.is_none() {
            return Err(ReplayError {
                position: u64::MAX,
                why: format!("case {child} merged into case {parent}, one of them unknown"),
            });
        }
        if listed {
            s.store.with(parent, |p| {
                let dups = &mut p.extra.get_or_insert_with(Box::<Extra>::default).duplicates;
                if !dups.contains(&CaseId(child)) {
                    dups.push(CaseId(child));
                }
            });
        }
    }
    let mut resume = Resume::default();
    let mut merged = Vec::new();
    let (mut finished, mut assigned) = (0u64, 0u64);
    let mut arm: Vec<(u64, u64)> = Vec::new();
    {
        let mut dedupe = s.dedupe.lock();
        s.store.scan_mut(end, |id, rec| {
            report.cases += 1;
            let state = rec.state;
            finished += u64::from(state.is_terminal());
            assigned += u64::from(!matches!(
                state,
                CaseState::Reported | CaseState::Registered
            ));
            match state {
                CaseState::Reported => resume.collect.push(id),
                CaseState::Registered => resume.route.push(id),
                CaseState::Reopened => resume.reroute.push(id),
                CaseState::Queued => {
                    if let Some(q) = s.queues.get(rec.organ as usize) {
                        q.lock().insert((rec.priority.index() as u8, rec.at, id));
                    }
                }
                CaseState::Merged => merged.push((id, rec.parent)),
                _ => {}
            }
            if !state.is_open() {
                return;
            }
            report.open += 1;
            let holds = matches!(state, CaseState::Dispatched | CaseState::Accepted)
                && rec.flags & F_UNCLAIMED == 0;
            let mut returners: Vec<WorkerId> = rec
                .history
                .iter()
                .filter(|t| t.action() == Action::Return)
                .filter_map(|t| match t.actor() {
                    Actor::Worker(w) => Some(w),
                    _ => None,
                })
                .collect();
            returners.sort_unstable();
            returners.dedup();
            if holds || !returners.is_empty() {
                s.port.router.reinstate(
                    CaseId(id),
                    if holds { rec.worker() } else { None },
                    returners,
                );
            }
            if dedupe.enabled()
                && state != CaseState::Reported
                && rec.parent == NONE64
                && rec.cell != NONE32
            {
                dedupe.insert(rec.category, rec.location, rec.at, id);
            }
            if let Some(slot) = super::handle::next_slot(s, rec) {
                rec.armed = slot;
                arm.push((slot, id));
            }
        });
    }
    for (child, parent) in merged {
        let closed = s.store.with(parent, |p| !p.state.is_open()).unwrap_or(true);
        if closed {
            resume.close_children.push(CaseId(child));
        }
    }
    arm.sort_unstable();
    {
        let mut timers = s.timers.lock();
        for run in arm.chunk_by(|a, b| a.0 == b.0) {
            timers
                .entry(run[0].0)
                .or_default()
                .push(run.iter().map(|&(_, id)| id).collect());
        }
    }
    let archived = s.archive.len();
    report.archived = archived;
    report.cases += archived;
    finished += archived;
    assigned += archived;
    s.next_id.store(end, std::sync::atomic::Ordering::Relaxed);
    s.finished
        .store(finished, std::sync::atomic::Ordering::Relaxed);
    s.assigned
        .store(assigned, std::sync::atomic::Ordering::Relaxed);
    report.resumed = (resume.collect.len()
        + resume.route.len()
        + resume.reroute.len()
        + resume.close_children.len()) as u64;
    Ok(resume)
}
