//! Handle (处置): what the dispatched worker does (accept, return, resolve), what the
//! center does to a waiting or running case (manual dispatch, extension, suspension), and
//! the deadlines: accept deadlines, reminders (催办) and escalation (督办), checked by
//! [`tick`].

use super::CaseId;
use super::assign::apply;
use super::case::{F_LATE, F_ON_TIME, F_REMINDED, F_UNCLAIMED, NONE32, Rec};
use super::engine::{Out, Shared, step};
use super::lifecycle::{Action, Actor, CaseState, LifecycleError};
use crate::city::WorkerId;
use crate::clock::{Timestamp, duration_ms};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Timers fire in slots of this many ms: a deadline is noticed at the first tick after
/// its slot ends (within a second).
pub(crate) const SLOT_MS: u64 = 1000;

#[inline]
fn slot_of(ms: u64) -> u64 {
    ms.div_ceil(SLOT_MS)
}

fn illegal(id: u64, action: Action, from: CaseState) -> LifecycleError {
    LifecycleError::Illegal {
        case: CaseId(id),
        action,
        from,
        to: action.to_states().first().copied(),
    }
}

fn check(id: u64, rec: &Rec, action: Action) -> Result<(), LifecycleError> {
    if action.allowed_from(rec.state) {
        Ok(())
    } else {
        Err(illegal(id, action, rec.state))
    }
}

fn check_worker(
    id: u64,
    rec: &Rec,
    action: Action,
    worker: WorkerId,
) -> Result<(), LifecycleError> {
    check(id, rec, action)?;
    if rec.worker() == Some(worker) {
        Ok(())
    } else {
        Err(LifecycleError::WrongWorker {
            case: CaseId(id),
            action,
            worker,
            holder: rec.worker(),
        })
    }
}

fn reason(id: u64, action: Action, text: &str) -> Result<(), LifecycleError> {
    if text.trim().is_empty() {
        Err(LifecycleError::EmptyReason {
            case: CaseId(id),
            action,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn accept(
    _s: &Shared,
    id: u64,
    rec: &mut Rec,
    worker: WorkerId,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check_worker(id, rec, Action::Accept, worker)?;
    rec.accept_by = 0;
    step(
        rec,
        id,
        now,
        CaseState::Accepted,
        Action::Accept,
        Actor::Worker(worker),
        out,
    );
    Ok(rec.state)
}

pub(crate) fn return_case(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    worker: WorkerId,
    why: Option<&str>,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check_worker(id, rec, Action::Return, worker)?;
    if let Some(text) = why {
        reason(id, Action::Return, text)?;
    }
    // The note goes with the return's own entry, the first the command makes.
    let at = rec.history.len();
    let req = s
        .req(id, rec)
        .ok_or(illegal(id, Action::Return, rec.state))?;
    let outcome = if rec.flags & F_UNCLAIMED != 0 {
        // Given by hand without a claim in the router: nothing to hand back there.
        s.port.route(&req)
    } else {
        s.port.return_case(&req, worker)
    }
    .map_err(|source| LifecycleError::Routing {
        case: CaseId(id),
        source,
    })?;
    rec.returns = rec.returns.saturating_add(1);
    out.freed.push(worker);
    let state = apply(
        s,
        id,
        rec,
        outcome,
        Action::Return,
        Actor::Worker(worker),
        now,
        out,
    );
    if let Some(text) = why {
        rec.note_at(&s.texts, at, text);
    }
    Ok(state)
}

pub(crate) fn resolve(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    worker: WorkerId,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check_worker(id, rec, Action::Resolve, worker)?;
    if rec.flags & F_UNCLAIMED == 0 {
        s.port.release(CaseId(id), worker);
    }
    rec.flags &= !(F_UNCLAIMED | F_ON_TIME | F_LATE);
    let on_time = rec.due == 0 || now.0 <= effective_due(rec, now);
    rec.flags |= if on_time { F_ON_TIME } else { F_LATE };
    rec.resolver = worker.index() as u32;
    rec.worker = NONE32;
    step(
        rec,
        id,
        now,
        CaseState::Resolved,
        Action::Resolve,
        Actor::Worker(worker),
        out,
    );
    out.freed.push(worker);
    Ok(rec.state)
}

/// The deadline with the time it has stood suspended so far added.
pub(crate) fn effective_due(rec: &Rec, now: Timestamp) -> u64 {
    if rec.suspended_at != 0 {
        rec.due
            .saturating_add(now.0.saturating_sub(rec.suspended_at))
    } else {
        rec.due
    }
}

pub(crate) fn dispatch_to(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    worker: WorkerId,
    over_capacity: Option<&str>,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check(id, rec, Action::ManualDispatch)?;
    if s.city.worker(worker).is_none() {
        return Err(LifecycleError::UnknownWorker(worker));
    }
    if let Some(text) = over_capacity {
        reason(id, Action::ManualDispatch, text)?;
    }
    let req = s
        .req(id, rec)
        .ok_or(illegal(id, Action::ManualDispatch, rec.state))?;
    let claimed = s
        .port
        .assign_to(&req, worker, over_capacity)
        .map_err(|source| LifecycleError::Routing {
            case: CaseId(id),
            source,
        })?;
    rec.worker = worker.index() as u32;
    rec.organ = NONE32;
    rec.flags &= !F_UNCLAIMED;
    if !claimed {
        rec.flags |= F_UNCLAIMED;
    }
    rec.accept_by = now.plus(s.config.accept_within).0;
    step(
        rec,
        id,
        now,
        CaseState::Dispatched,
        Action::ManualDispatch,
        Actor::Center,
        out,
    );
    if let Some(text) = over_capacity {
        rec.note(&s.texts, text);
    }
    rearm(s, id, rec, now, out);
    Ok(rec.state)
}

pub(crate) fn extend(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    by: Duration,
    text: &str,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check(id, rec, Action::Extend)?;
    reason(id, Action::Extend, text)?;
    if by.is_zero() || duration_ms(by) == 0 {
        return Err(LifecycleError::Extension {
            case: CaseId(id),
            why: "an extension of zero",
        });
    }
    if rec.due == 0 {
        return Err(LifecycleError::Extension {
            case: CaseId(id),
            why: "the case has no deadline",
        });
    }
    rec.due = rec.due.saturating_add(duration_ms(by));
    let state = rec.state;
    step(rec, id, now, state, Action::Extend, Actor::Center, out);
    rec.note(&s.texts, text);
    rearm(s, id, rec, now, out);
    Ok(rec.state)
}

pub(crate) fn suspend(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    text: &str,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check(id, rec, Action::Suspend)?;
    reason(id, Action::Suspend, text)?;
    if rec.suspended_at != 0 {
        return Err(LifecycleError::Suspension {
            case: CaseId(id),
            action: Action::Suspend,
            state: "suspended",
        });
    }
    rec.suspended_at = now.0.max(1);
    let state = rec.state;
    step(rec, id, now, state, Action::Suspend, Actor::Center, out);
    rec.note(&s.texts, text);
    Ok(rec.state)
}

pub(crate) fn resume(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    check(id, rec, Action::Resume)?;
    if rec.suspended_at == 0 {
        return Err(LifecycleError::Suspension {
            case: CaseId(id),
            action: Action::Resume,
            state: "running",
        });
    }
    let stood = now.0.saturating_sub(rec.suspended_at);
    rec.suspended_at = 0;
    if rec.due != 0 {
        rec.due = rec.due.saturating_add(stood);
    }
    if rec.accept_by != 0 {
        rec.accept_by = rec.accept_by.saturating_add(stood);
    }
    let state = rec.state;
    step(rec, id, now, state, Action::Resume, Actor::Center, out);
    rearm(s, id, rec, now, out);
    Ok(rec.state)
}

/// When the case next needs looking at: its accept deadline, its reminder, its deadline
/// or its next escalation, whichever comes first.
fn next_check(s: &Shared, rec: &Rec) -> Option<u64> {
    if rec.suspended_at != 0 || !rec.state.is_pending() {
        return None;
    }
    let mut next = u64::MAX;
    if rec.state == CaseState::Dispatched && rec.accept_by != 0 {
        next = next.min(rec.accept_by);
    }
    if rec.due != 0 {
        let limit = s.limit_ms(rec).max(1);
        if rec.flags & F_REMINDED == 0 {
            next = next.min(remind_time(s, rec, limit));
        }
        if rec.escalation < s.config.max_escalation {
            next = next.min(
                rec.due
                    .saturating_add(limit.saturating_mul(u64::from(rec.escalation))),
            );
        }
    }
    (next != u64::MAX).then_some(next)
}

fn remind_time(s: &Shared, rec: &Rec, limit: u64) -> u64 {
    let before = ((1.0 - s.config.remind_at) * limit as f64) as u64;
    rec.due.saturating_sub(before)
}

/// The timer slot in which the case next needs looking at, if it does.
pub(crate) fn next_slot(s: &Shared, rec: &Rec) -> Option<u64> {
    next_check(s, rec).map(slot_of)
}

/// Makes sure a timer will look at the case when it next needs it.
pub(crate) fn rearm(s: &Shared, id: u64, rec: &mut Rec, _now: Timestamp, out: &mut Out) {
    let Some(at) = next_check(s, rec) else {
        return;
    };
    let slot = slot_of(at);
    if rec.armed == 0 || slot < rec.armed {
        rec.armed = slot;
        out.arm.push((slot, id));
    }
}

/// Looks at every case whose timer slot has passed. Returns how many it looked at.
pub(crate) fn tick(s: &Shared) -> usize {
    let now = s.now();
    let current = now.0 / SLOT_MS;
    let fired: Vec<(u64, Vec<Box<[u64]>>)> = {
        let mut timers = s.timers.lock();
        let later = timers.split_off(&(current + 1));
        std::mem::replace(&mut *timers, later).into_iter().collect()
    };
    let mut looked = 0;
    let mut out = Out::new(s);
    for (slot, chunks) in fired {
        let mut ids: Vec<u64> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        looked += ids.len();
        s.store.each(&ids, |id, rec| {
            if rec.armed != slot {
                return;
            }
            rec.armed = 0;
            fire(s, id, rec, now, &mut out);
            rearm(s, id, rec, now, &mut out);
        });
    }
    // A journal error stays in the sink and refuses every later write; the caller
    // that acts next is told.
    let _ = s.flush(out);
    looked
}

fn fire(s: &Shared, id: u64, rec: &mut Rec, now: Timestamp, out: &mut Out) {
    if rec.suspended_at != 0 || !rec.state.is_pending() {
        return;
    }
    if rec.state == CaseState::Dispatched && rec.accept_by != 0 && now.0 >= rec.accept_by {
        accept_timeout(s, id, rec, now, out);
    }
    if rec.due == 0 || !rec.state.is_pending() {
        return;
    }
    let limit = s.limit_ms(rec).max(1);
    if rec.flags & F_REMINDED == 0 && now.0 >= remind_time(s, rec, limit) && now.0 < rec.due {
        rec.flags |= F_REMINDED;
        let state = rec.state;
        step(rec, id, now, state, Action::Remind, Actor::System, out);
    }
    if now.0 >= rec.due {
        // Past the deadline the reminder is moot: escalation says more.
        rec.flags |= F_REMINDED;
        let periods = (now.0 - rec.due) / limit + 1;
        let target = periods.min(u64::from(s.config.max_escalation)) as u8;
        while rec.escalation < target {
            rec.escalation += 1;
            let state = rec.state;
            step(rec, id, now, state, Action::Escalate, Actor::System, out);
        }
    }
}

/// Not accepted in time: the worker's claim is dropped and the case routed again.
fn accept_timeout(s: &Shared, id: u64, rec: &mut Rec, now: Timestamp, out: &mut Out) {
    let Some(worker) = rec.worker() else { return };
    let Some(req) = s.req(id, rec) else { return };
    if rec.flags & F_UNCLAIMED == 0 {
        s.port.release(CaseId(id), worker);
    }
    out.freed.push(worker);
    match s.port.route(&req) {
        Ok(outcome) => {
            apply(
                s,
                id,
                rec,
                outcome,
                Action::AcceptTimeout,
                Actor::System,
                now,
                out,
            );
        }
        // Collection checked the ids the router could refuse; should it refuse anyway,
        // the case stays with its worker, unclaimed, and no longer times out.
        Err(_) => {
            rec.flags |= F_UNCLAIMED;
            rec.accept_by = 0;
        }
    }
}

/// The timer thread of a real-time clock.
pub(crate) fn run_ticker(s: &Shared, stop: &Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                tick(s);
            }
            _ => return,
        }
    }
}
