//! Feedback (反馈): verification (核查), never by the worker who resolved the case;
//! failure reopens it (返工) to the same unit; closure (结案) with satisfaction.

use super::CaseId;
use super::case::{NONE32, Rec, Reporter, Satisfaction};
use super::engine::{Out, Shared, Verifier, finish, step};
use super::lifecycle::{Action, Actor, CaseState, LifecycleError};
use crate::city::WorkerId;
use crate::clock::Timestamp;

fn illegal(id: u64, rec: &Rec, action: Action) -> LifecycleError {
    LifecycleError::Illegal {
        case: CaseId(id),
        action,
        from: rec.state,
        to: action.to_states().first().copied(),
    }
}

pub(crate) fn verify(
    id: u64,
    rec: &mut Rec,
    by: Verifier,
    passed: bool,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    let action = if passed { Action::Pass } else { Action::Fail };
    if !action.allowed_from(rec.state) {
        return Err(illegal(id, rec, action));
    }
    let resolver = (rec.resolver != NONE32).then_some(WorkerId(rec.resolver));
    let (actor, as_worker) = match by {
        Verifier::Reporter => match rec.reporter {
            Reporter::Worker(w) => (Actor::Reporter, Some(w)),
            _ => (Actor::Reporter, None),
        },
        Verifier::Inspector(i) => (Actor::Inspector(i), None),
        Verifier::Worker(w) => (Actor::Worker(w), Some(w)),
        Verifier::Center => (Actor::Center, None),
    };
    if let (Some(w), Some(r)) = (as_worker, resolver)
        && w == r
    {
        return Err(LifecycleError::VerifierIsResolver {
            case: CaseId(id),
            worker: w,
        });
    }
    if passed {
        step(rec, id, now, CaseState::Verified, action, actor, out);
    } else {
        rec.reopens = rec.reopens.saturating_add(1);
        step(rec, id, now, CaseState::Reopened, action, actor, out);
        out.reroute.push(id);
    }
    Ok(rec.state)
}

pub(crate) fn close(
    _s: &Shared,
    id: u64,
    rec: &mut Rec,
    satisfaction: Option<Satisfaction>,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    if !Action::Close.allowed_from(rec.state) {
        return Err(illegal(id, rec, Action::Close));
    }
    rec.set_satisfaction(satisfaction);
    step(
        rec,
        id,
        now,
        CaseState::Closed,
        Action::Close,
        Actor::Center,
        out,
    );
    finish(id, rec, out);
    Ok(rec.state)
}

pub(crate) fn reopen(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    text: &str,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    if !Action::Reopen.allowed_from(rec.state) {
        return Err(illegal(id, rec, Action::Reopen));
    }
    if text.trim().is_empty() {
        return Err(LifecycleError::EmptyReason {
            case: CaseId(id),
            action: Action::Reopen,
        });
    }
    rec.reopens = rec.reopens.saturating_add(1);
    step(
        rec,
        id,
        now,
        CaseState::Reopened,
        Action::Reopen,
        Actor::Center,
        out,
    );
    rec.note(&s.texts, text);
    out.reroute.push(id);
    Ok(rec.state)
}
