//! Assign (分办): route registered and reopened cases with the router; keep the organ
//! queues (priority, then age) and drain them when a worker of their street frees up or
//! comes on duty; on-the-spot handling (随手办) of a patrolling worker's own report.

use super::case::{F_ON_SPOT, F_UNCLAIMED, NONE32, Rec, Reporter, SEGMENT};
use super::engine::{AssignMsg, Out, Shared, finish, step};
use super::handle::rearm;
use super::lifecycle::{Action, Actor, CaseState};
use super::port::Admitted;
use crate::READ_AHEAD as WARM;
use crate::city::{Admission, Holder, OrganId, UnitId, WorkerId};
use crate::clock::Timestamp;
use crate::grid::CellId;
use crate::routing::Outcome;
use crossbeam_channel::{Receiver, TryRecvError};
use std::sync::atomic::Ordering;

/// The assign thread.
pub(crate) fn run(s: &Shared, rx: &Receiver<AssignMsg>) {
    loop {
        let msg = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                // Nothing to route: on this otherwise idle core, make the store segments
                // of the cases submitted and not yet stored and of the next 1,024, until
                // a message comes.
                let next = s.next_id.load(Ordering::Relaxed);
                s.store
                    .prepare(next.saturating_add(SEGMENT as u64 - 1), || !rx.is_empty());
                match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => return,
                }
            }
        };
        let mut out = Out::new(s);
        match msg {
            AssignMsg::New(ids) => {
                route_batch(s, &ids, true, &mut out);
                s.assigned.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
            AssignMsg::Reroute(ids) => route_batch(s, &ids, false, &mut out),
            AssignMsg::Freed(workers) => out.freed = workers,
            AssignMsg::Enqueue(items) => out.enqueue = items,
            AssignMsg::Barrier(tx) => {
                s.bus.barrier(tx);
                continue;
            }
            AssignMsg::Stop => {
                s.bus.stop();
                return;
            }
        }
        settle(s, out);
    }
}

/// Does this thread's own follow-ups here (it must never wait on its own channel), then
/// sends the rest on.
fn settle(s: &Shared, mut out: Out) {
    loop {
        let enqueue = std::mem::take(&mut out.enqueue);
        let mut organs: Vec<OrganId> = Vec::with_capacity(enqueue.len());
        for (organ, key) in enqueue {
            if let Some(q) = s.queues.get(organ.index()) {
                q.lock().insert(key);
                organs.push(organ);
            }
        }
        let reroute = std::mem::take(&mut out.reroute);
        if !reroute.is_empty() {
            route_batch(s, &reroute, false, &mut out);
        }
        let freed = std::mem::take(&mut out.freed);
        let mut streets: Vec<u32> = freed
            .iter()
            .filter_map(|w| s.worker_street.get(w.index()).copied())
            .filter(|&st| st != NONE32)
            .collect();
        streets.sort_unstable();
        streets.dedup();
        for street in streets {
            for &organ in s.city.street_organs(UnitId(street)) {
                drain(s, organ, &mut out);
            }
        }
        // A case queued just now may find a worker freed a moment ago.
        organs.sort_unstable();
        organs.dedup();
        for organ in organs {
            drain(s, organ, &mut out);
        }
        if out.enqueue.is_empty() && out.reroute.is_empty() && out.freed.is_empty() {
            break;
        }
    }
    // A journal error stays in the sink and refuses every later write; the caller
    // that acts next is told.
    let _ = s.flush(out);
}

/// Routes registered (`fresh`) or reopened cases of a batch.
fn route_batch(s: &Shared, ids: &[u64], fresh: bool, out: &mut Out) {
    // What collect found of a fresh batch, in the batch's (increasing) order.
    let admitted = if fresh {
        s.port.take_admitted(ids).unwrap_or_default()
    } else {
        Vec::new()
    };
    route_ids(s, ids, fresh, &admitted, out);
}

/// Routes the cases a parallel dispatcher has just registered, with the admissions it
/// found for them (in the batch's order), on the dispatcher's own thread.
pub(crate) fn route_registered(s: &Shared, ids: &[u64], admitted: Admitted, out: &mut Out) {
    route_ids(s, ids, true, &admitted, out);
}

fn route_ids(s: &Shared, ids: &[u64], fresh: bool, admitted: &Admitted, out: &mut Out) {
    let now = s.now();
    let mut next = 0;
    let mut sorted;
    let ids = if ids.is_sorted() {
        ids
    } else {
        sorted = ids.to_vec();
        sorted.sort_unstable();
        &sorted[..]
    };
    let expected = if fresh {
        CaseState::Registered
    } else {
        CaseState::Reopened
    };
    // A chunk at a time: the router first reads ahead what the chunk's decisions will
    // read (their cells' candidate lists), so that those misses overlap.
    let mut cases = [(CellId(0), UnitId(u32::MAX)); WARM];
    for chunk in ids.chunks(WARM) {
        let last = chunk.last().copied().unwrap_or(0);
        let mut n = 0;
        for &(a_id, admission, cell) in admitted.iter().skip(next) {
            if a_id > last || n == WARM {
                break;
            }
            let unit = match admission.holder {
                Holder::Community(unit) | Holder::Street { street: unit, .. } => unit,
                Holder::Department(_) => UnitId(u32::MAX),
            };
            cases[n] = (cell, unit);
            n += 1;
        }
        std::hint::black_box(s.port.router.warm(&cases[..n]));
        route_chunk(s, chunk, expected, admitted, &mut next, now, out);
    }
}

fn route_chunk(
    s: &Shared,
    ids: &[u64],
    expected: CaseState,
    admitted: &Admitted,
    next: &mut usize,
    now: Timestamp,
    out: &mut Out,
) {
    let fresh = expected == CaseState::Registered;
    s.store.each(ids, |id, rec| {
        if rec.state != expected {
            return;
        }
        while admitted.get(*next).is_some_and(|a| a.0 < id) {
            *next += 1;
        }
        let admission = admitted
            .get(*next)
            .and_then(|&(a_id, a, _)| (a_id == id).then_some(a));
        if fresh && rec.flags & F_ON_SPOT != 0 && take_on_spot(s, id, rec, admission, now, out) {
            return;
        }
        let Some(req) = s.req(id, rec) else { return };
        let routed = match admission {
            Some(a) => s.port.route_admitted(&req, a),
            None => s.port.route(&req),
        };
        // Only unknown ids make the router refuse, and collection checked them: on a
        // refusal the case stays where it is, for the center to see.
        if let Ok(outcome) = routed {
            apply(s, id, rec, outcome, Action::Route, Actor::System, now, out);
        }
    });
}

/// Puts a routing outcome on the case.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    outcome: Outcome,
    action: Action,
    actor: Actor,
    now: Timestamp,
    out: &mut Out,
) -> CaseState {
    rec.flags &= !F_UNCLAIMED;
    match outcome {
        Outcome::Assigned { worker } => {
            rec.worker = worker.index() as u32;
            rec.organ = NONE32;
            rec.accept_by = now.plus(s.config.accept_within).0;
            step(rec, id, now, CaseState::Dispatched, action, actor, out);
            rearm(s, id, rec, now, out);
        }
        Outcome::Queued { organ } => {
            rec.worker = NONE32;
            rec.organ = organ.index() as u32;
            rec.accept_by = 0;
            step(rec, id, now, CaseState::Queued, action, actor, out);
            rearm(s, id, rec, now, out);
            out.enqueue
                .push((organ, (rec.priority.index() as u8, rec.at, id)));
        }
        Outcome::Ruling { organ } => {
            rec.worker = NONE32;
            rec.organ = organ.index() as u32;
            rec.accept_by = 0;
            step(rec, id, now, CaseState::Ruling, action, actor, out);
            rearm(s, id, rec, now, out);
        }
        Outcome::Referred { .. } => {
            rec.worker = NONE32;
            rec.accept_by = 0;
            step(rec, id, now, CaseState::Referred, Action::Refer, actor, out);
            finish(id, rec, out);
        }
    }
    rec.state
}

/// 随手办: the reporting worker takes the case at once if it is theirs to hold: they have
/// a role the category needs and belong to the holder (their home cells lie in the holding
/// community, or in the holding street office).
fn take_on_spot(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    admission: Option<Admission>,
    now: Timestamp,
    out: &mut Out,
) -> bool {
    let Reporter::Worker(w) = rec.reporter else {
        return false;
    };
    let may = match admission {
        Some(a) => s.port.router.may_take_admitted(w, a),
        None => may_hold(s, rec, w),
    };
    if !may {
        return false;
    }
    let Some(req) = s.req(id, rec) else {
        return false;
    };
    let claimed = match admission {
        Some(a) => s.port.assign_admitted(&req, w, a),
        None => s.port.assign_to(&req, w, None),
    };
    let Ok(claimed) = claimed else {
        return false;
    };
    rec.worker = w.index() as u32;
    if !claimed {
        rec.flags |= F_UNCLAIMED;
    }
    step(
        rec,
        id,
        now,
        CaseState::Accepted,
        Action::TakeOnSpot,
        Actor::Worker(w),
        out,
    );
    true
}

fn may_hold(s: &Shared, rec: &Rec, w: WorkerId) -> bool {
    rec.cell()
        .is_some_and(|cell| s.port.router.may_take(w, cell, rec.category()))
}

/// Gives the heads of an organ's queue to whoever the router finds, until the head finds
/// nobody.
fn drain(s: &Shared, organ: OrganId, out: &mut Out) {
    let Some(queue) = s.queues.get(organ.index()) else {
        return;
    };
    let now = s.now();
    loop {
        let Some(key) = queue.lock().pop_first() else {
            return;
        };
        let id = key.2;
        let requeue = s
            .store
            .with(id, |rec| {
                // Taken by hand, or queued elsewhere since: the entry is stale.
                if rec.state != CaseState::Queued || rec.organ != organ.index() as u32 {
                    return false;
                }
                let Some(req) = s.req(id, rec) else {
                    return false;
                };
                match s.port.route(&req) {
                    Ok(Outcome::Queued { .. }) | Err(_) => true,
                    Ok(outcome) => {
                        apply(s, id, rec, outcome, Action::Route, Actor::System, now, out);
                        false
                    }
                }
            })
            .unwrap_or(false);
        if requeue {
            queue.lock().insert(key);
            return;
        }
    }
}
