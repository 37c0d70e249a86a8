//! The case lifecycle: states, the actions that move a case, the one table of legal moves,
//! and the compact record every transition leaves in a case's history.
//!
//! ```text
//! reported ─► registered ─► dispatched ─► accepted ─► resolved ─► verified ─► closed
//!    │  │  │       │  │        ▲  │  │       │  │         │            │
//!    │  │  │       │  ▼        │  │  │       │  │         ▼            ▼
//!    │  │  │       │ queued ───┘  │  │       │  │      reopened ──► dispatched (返工)
//!    │  │  │       ▼              ▼  ▼       ▼  ▼
//!    │  │  └──► referred    ruling / queued / dispatched again (退单, accept timeout)
//!    │  └────► rejected (outside the grid)
//!    └───────► merged ─► closed (with the case it duplicates)
//! ```
//!
//! Reminders (催办), escalation (督办), extension (延期), suspension (缓办) and resumption
//! are events on an open case: they are recorded in its history with `from == to`.

use super::CaseId;
use crate::city::WorkerId;
use crate::clock::Timestamp;
use crate::routing::RoutingError;
use serde::Serialize;

/// Where a case is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Submitted, not yet located and admitted.
    Reported,
    /// Located, admitted and held by a unit (立案); waiting to be routed.
    Registered,
    /// Waiting in its organ's queue: nobody of the holder's forces was free.
    Queued,
    /// Given to a worker who has not accepted it yet.
    Dispatched,
    /// Accepted by its worker, being handled.
    Accepted,
    /// Handled by its worker, waiting for verification (核查).
    Resolved,
    /// Verification passed; waiting to be closed.
    Verified,
    /// Closed (结案). Terminal.
    Closed,
    /// Verification failed (返工): going back to the same unit.
    Reopened,
    /// Refused at collection (outside the grid). Terminal.
    Rejected,
    /// No unit on the cell's chain may hold it: referred to a district department. Terminal.
    Referred,
    /// A duplicate of an open case; closes with it.
    Merged,
    /// Returned too often (退单 breaker): waits for the command center's manual dispatch.
    Ruling,
}

impl CaseState {
    /// Every state, in the order of their codes.
    pub const ALL: [CaseState; 13] = [
        CaseState::Reported,
        CaseState::Registered,
        CaseState::Queued,
        CaseState::Dispatched,
        CaseState::Accepted,
        CaseState::Resolved,
        CaseState::Verified,
        CaseState::Closed,
        CaseState::Reopened,
        CaseState::Rejected,
        CaseState::Referred,
        CaseState::Merged,
        CaseState::Ruling,
    ];

    /// Its name in records and files (`"dispatched"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Reported => "reported",
            CaseState::Registered => "registered",
            CaseState::Queued => "queued",
            CaseState::Dispatched => "dispatched",
            CaseState::Accepted => "accepted",
            CaseState::Resolved => "resolved",
            CaseState::Verified => "verified",
            CaseState::Closed => "closed",
            CaseState::Reopened => "reopened",
            CaseState::Rejected => "rejected",
            CaseState::Referred => "referred",
            CaseState::Merged => "merged",
            CaseState::Ruling => "ruling",
        }
    }

    /// Position in [`CaseState::ALL`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    #[inline]
    pub(crate) fn from_code(code: u8) -> Option<CaseState> {
        CaseState::ALL.get(usize::from(code)).copied()
    }

    /// Closed, rejected or referred: nothing moves it any more.
    #[inline]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CaseState::Closed | CaseState::Rejected | CaseState::Referred
        )
    }

    /// Still to be handled: neither terminal nor merged into another case.
    #[inline]
    pub fn is_open(self) -> bool {
        !self.is_terminal() && self != CaseState::Merged
    }

    /// Open and not yet handled: its deadline runs (resolved and verified cases met it or
    /// not already).
    #[inline]
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            CaseState::Reported
                | CaseState::Registered
                | CaseState::Queued
                | CaseState::Dispatched
                | CaseState::Accepted
                | CaseState::Reopened
                | CaseState::Ruling
        )
    }
}

impl std::fmt::Display for CaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What moves a case (or marks it, for the events that leave its state alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Submitted: the first record of every case.
    Submit,
    /// Located and admitted (立案).
    Register,
    /// Outside the grid.
    Reject,
    /// No unit may hold it: referred to a department.
    Refer,
    /// A duplicate of an open case.
    Merge,
    /// Routed by the router: dispatched, queued or sent to a ruling.
    Route,
    /// A worker accepts the case given to them.
    Accept,
    /// A worker hands the case back (退单); it is routed again.
    Return,
    /// Not accepted in time: taken back and routed again.
    AcceptTimeout,
    /// A worker reports the case handled.
    Resolve,
    /// A patrolling worker takes the case they reported at once (随手办).
    TakeOnSpot,
    /// Verification (核查) passed.
    Pass,
    /// Verification failed: back to the same unit (返工).
    Fail,
    /// The center reopens a verified case.
    Reopen,
    /// Closed (结案).
    Close,
    /// Closed with the case it duplicates.
    CloseWithParent,
    /// The center gives the case to a worker by hand.
    ManualDispatch,
    /// A reminder (催办) before the deadline.
    Remind,
    /// Escalated (督办) to the unit above: the deadline passed.
    Escalate,
    /// The deadline moved (延期).
    Extend,
    /// The clock stopped (缓办).
    Suspend,
    /// The clock runs again.
    Resume,
}

use CaseState as S;

/// One row of the table of legal moves.
struct Move {
    action: Action,
    from: &'static [CaseState],
    to: &'static [CaseState],
}

const PENDING: &[CaseState] = &[
    S::Registered,
    S::Queued,
    S::Dispatched,
    S::Accepted,
    S::Reopened,
    S::Ruling,
];

/// THE table of legal moves. Every transition the engine records is checked against it,
/// and the tests read it to try every illegal one. Events (reminders, escalation,
/// extension, suspension) keep the state: their `to` is empty and means "the same".
const MOVES: &[Move] = &[
    Move {
        action: Action::Submit,
        from: &[],
        to: &[S::Reported],
    },
    Move {
        action: Action::Register,
        from: &[S::Reported],
        to: &[S::Registered],
    },
    Move {
        action: Action::Reject,
        from: &[S::Reported],
        to: &[S::Rejected],
    },
    Move {
        action: Action::Refer,
        from: &[S::Reported, S::Registered, S::Queued, S::Reopened],
        to: &[S::Referred],
    },
    Move {
        action: Action::Merge,
        from: &[S::Reported],
        to: &[S::Merged],
    },
    Move {
        action: Action::Route,
        from: &[S::Registered, S::Queued, S::Reopened],
        to: &[S::Dispatched, S::Queued, S::Ruling, S::Referred],
    },
    Move {
        action: Action::Accept,
        from: &[S::Dispatched],
        to: &[S::Accepted],
    },
    Move {
        action: Action::Return,
        from: &[S::Dispatched, S::Accepted],
        to: &[S::Dispatched, S::Queued, S::Ruling],
    },
    Move {
        action: Action::AcceptTimeout,
        from: &[S::Dispatched],
        to: &[S::Dispatched, S::Queued, S::Ruling],
    },
    Move {
        action: Action::Resolve,
        from: &[S::Accepted],
        to: &[S::Resolved],
    },
    Move {
        action: Action::TakeOnSpot,
        from: &[S::Registered],
        to: &[S::Accepted],
    },
    Move {
        action: Action::Pass,
        from: &[S::Resolved],
        to: &[S::Verified],
    },
    Move {
        action: Action::Fail,
        from: &[S::Resolved],
        to: &[S::Reopened],
    },
    Move {
        action: Action::Reopen,
        from: &[S::Verified],
        to: &[S::Reopened],
    },
    Move {
        action: Action::Close,
        from: &[S::Verified],
        to: &[S::Closed],
    },
    Move {
        action: Action::CloseWithParent,
        from: &[S::Merged],
        to: &[S::Closed],
    },
    Move {
        action: Action::ManualDispatch,
        from: &[S::Registered, S::Queued, S::Ruling, S::Reopened],
        to: &[S::Dispatched],
    },
    Move {
        action: Action::Remind,
        from: PENDING,
        to: &[],
    },
    Move {
        action: Action::Escalate,
        from: PENDING,
        to: &[],
    },
    Move {
        action: Action::Extend,
        from: PENDING,
        to: &[],
    },
    Move {
        action: Action::Suspend,
        from: PENDING,
        to: &[],
    },
    Move {
        action: Action::Resume,
        from: PENDING,
        to: &[],
    },
];

impl Action {
    /// Every action.
    pub const ALL: [Action; 22] = [
        Action::Submit,
        Action::Register,
        Action::Reject,
        Action::Refer,
        Action::Merge,
        Action::Route,
        Action::Accept,
        Action::Return,
        Action::AcceptTimeout,
        Action::Resolve,
        Action::TakeOnSpot,
        Action::Pass,
        Action::Fail,
        Action::Reopen,
        Action::Close,
        Action::CloseWithParent,
        Action::ManualDispatch,
        Action::Remind,
        Action::Escalate,
        Action::Extend,
        Action::Suspend,
        Action::Resume,
    ];

    fn row(self) -> &'static Move {
        // Every action has exactly one row (a unit test checks it), so the fallback to the
        // first row is never taken.
        MOVES.iter().find(|m| m.action == self).unwrap_or(&MOVES[0])
    }

    /// The states this action may be taken from.
    pub fn from_states(self) -> &'static [CaseState] {
        self.row().from
    }

    /// The states it may lead to (empty for an event, which keeps the state).
    pub fn to_states(self) -> &'static [CaseState] {
        self.row().to
    }

    /// Whether the action may be taken in `state`.
    #[inline]
    pub fn allowed_from(self, state: CaseState) -> bool {
        self.row().from.contains(&state)
    }

    /// Whether it keeps the state (an event, not a transition).
    pub fn is_event(self) -> bool {
        self.row().to.is_empty()
    }

    /// Its name (`"accept"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Register => "register",
            Action::Reject => "reject",
            Action::Refer => "refer",
            Action::Merge => "merge",
            Action::Route => "route",
            Action::Accept => "accept",
            Action::Return => "return",
            Action::AcceptTimeout => "accept_timeout",
            Action::Resolve => "resolve",
            Action::TakeOnSpot => "take_on_spot",
            Action::Pass => "pass",
            Action::Fail => "fail",
            Action::Reopen => "reopen",
            Action::Close => "close",
            Action::CloseWithParent => "close_with_parent",
            Action::ManualDispatch => "manual_dispatch",
            Action::Remind => "remind",
            Action::Escalate => "escalate",
            Action::Extend => "extend",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
        }
    }

    #[inline]
    pub(crate) fn code(self) -> u8 {
        Action::ALL.iter().position(|&a| a == self).unwrap_or(0) as u8
    }

    #[inline]
    pub(crate) fn from_code(code: u8) -> Option<Action> {
        Action::ALL.get(usize::from(code)).copied()
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `from → to` is a move some action allows (events: `from == to` and an event
/// action allows `from`). The check an outside reader of a history applies.
pub fn is_legal_move(from: CaseState, to: CaseState) -> bool {
    MOVES
        .iter()
        .any(|m| m.from.contains(&from) && (m.to.contains(&to) || (m.to.is_empty() && from == to)))
}

/// Whether a case may start its life in `state` (its first record has no `from`).
pub fn is_legal_start(state: CaseState) -> bool {
    state == CaseState::Reported
}

/// Who did something to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The engine itself (collection, routing, timers).
    System,
    /// The command center (指挥中心).
    Center,
    /// The person who reported the case.
    Reporter,
    /// A grid worker.
    Worker(WorkerId),
    /// An inspector (核查员), by the application's own numbering.
    Inspector(u32),
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Center => f.write_str("center"),
            Actor::Reporter => f.write_str("reporter"),
            Actor::Worker(w) => write!(f, "worker:{}", w.index()),
            Actor::Inspector(i) => write!(f, "inspector:{i}"),
        }
    }
}

impl Actor {
    fn pack(self) -> (u64, u32) {
        match self {
            Actor::System => (0, 0),
            Actor::Center => (1, 0),
            Actor::Reporter => (2, 0),
            Actor::Worker(w) => (3, w.index() as u32),
            Actor::Inspector(i) => (4, i),
        }
    }

    fn unpack(kind: u64, id: u32) -> Actor {
        match kind {
            1 => Actor::Center,
            2 => Actor::Reporter,
            3 => Actor::Worker(WorkerId(id)),
            4 => Actor::Inspector(id),
            _ => Actor::System,
        }
    }
}

const NO_WORKER: u32 = u32::MAX;
const NO_STATE: u64 = 31;
const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// One recorded move of a case: 16 bytes. Time (ms, 44 bits: until the year 2527), the
/// states before and after, the action, who did it, and the case's worker after it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// time:44 | from:5 | to:5 | action:5 | actor kind:3 | flag:2
    packed: u64,
    actor: u32,
    worker: u32,
}

impl Transition {
    pub(crate) fn new(
        at: Timestamp,
        from: Option<CaseState>,
        to: CaseState,
        action: Action,
        actor: Actor,
        worker: Option<WorkerId>,
    ) -> Transition {
        let (kind, id) = actor.pack();
        let from = from.map_or(NO_STATE, |s| s as u64);
        let packed = (at.0.min(TIME_MASK))
            | (from << 44)
            | ((to as u64) << 49)
            | (u64::from(action.code()) << 54)
            | (kind << 59);
        Transition {
            packed,
            actor: id,
            worker: worker.map_or(NO_WORKER, |w| w.index() as u32),
        }
    }

    /// The packed word, actor id and worker, as the journal stores them.
    pub(crate) fn raw(&self) -> (u64, u32, u32) {
        (self.packed, self.actor, self.worker)
    }

    /// A transition from its journaled parts, `None` unless every code in it is known.
    pub(crate) fn from_raw(packed: u64, actor: u32, worker: u32) -> Option<Transition> {
        let from = (packed >> 44) & 31;
        let known = (from == NO_STATE || CaseState::from_code(from as u8).is_some())
            && CaseState::from_code(((packed >> 49) & 31) as u8).is_some()
            && Action::from_code(((packed >> 54) & 31) as u8).is_some()
            && (packed >> 59) & 7 <= 4
            && packed >> 62 == 0;
        known.then_some(Transition {
            packed,
            actor,
            worker,
        })
    }

    /// When.
    #[inline]
    pub fn at(&self) -> Timestamp {
        Timestamp(self.packed & TIME_MASK)
    }

    /// The state before (`None` for the first record).
    #[inline]
    pub fn from(&self) -> Option<CaseState> {
        CaseState::from_code(((self.packed >> 44) & 31) as u8)
    }

    /// The state after.
    #[inline]
    pub fn to(&self) -> CaseState {
        CaseState::from_code(((self.packed >> 49) & 31) as u8).unwrap_or(CaseState::Reported)
    }

    /// The action that made it.
    #[inline]
    pub fn action(&self) -> Action {
        Action::from_code(((self.packed >> 54) & 31) as u8).unwrap_or(Action::Register)
    }

    /// Who made it.
    #[inline]
    pub fn actor(&self) -> Actor {
        Actor::unpack((self.packed >> 59) & 7, self.actor)
    }

    /// The case's worker after it.
    #[inline]
    pub fn worker(&self) -> Option<WorkerId> {
        (self.worker != NO_WORKER).then_some(WorkerId(self.worker))
    }
}

impl std::fmt::Debug for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transition")
            .field("at", &self.at())
            .field("from", &self.from())
            .field("to", &self.to())
            .field("action", &self.action())
            .field("actor", &self.actor())
            .field("worker", &self.worker())
            .finish()
    }
}

impl Serialize for Transition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Transition", 6)?;
        st.serialize_field("at", &self.at())?;
        st.serialize_field("from", &self.from())?;
        st.serialize_field("to", &self.to())?;
        st.serialize_field("action", &self.action())?;
        st.serialize_field("actor", &self.actor().to_string())?;
        st.serialize_field("worker", &self.worker().map(|w| w.index()))?;
        st.end()
    }
}

/// Why an action on a case was refused. Nothing changes when it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// No case has this id.
    #[error("unknown case {0}")]
    UnknownCase(CaseId),
    /// The action is not legal in the case's state.
    #[error("case {case}: cannot {action} a {from} case (allowed from {allowed})", allowed = list(action.from_states()))]
    Illegal {
        /// The case.
        case: CaseId,
        /// What was tried.
        action: Action,
        /// The state it is in.
        from: CaseState,
        /// Where the action would have taken it (`None` for an event).
        to: Option<CaseState>,
    },
    /// Only the worker a case is dispatched to may accept, return or resolve it.
    #[error("case {case}: {worker} may not {action} it (its worker is {holder:?})")]
    WrongWorker {
        /// The case.
        case: CaseId,
        /// What was tried.
        action: Action,
        /// Who tried.
        worker: WorkerId,
        /// The case's worker, if any.
        holder: Option<WorkerId>,
    },
    /// The worker who resolved a case may not verify it.
    #[error("case {case}: {worker} resolved it and may not verify it")]
    VerifierIsResolver {
        /// The case.
        case: CaseId,
        /// The resolver.
        worker: WorkerId,
    },
    /// A center action that needs a reason got an empty one.
    #[error("case {case}: {action} needs a reason")]
    EmptyReason {
        /// The case.
        case: CaseId,
        /// The action.
        action: Action,
    },
    /// The journal refused a write (now or earlier). The engine takes no more writes; a
    /// command answered this may have moved its case in memory, but not in the journal,
    /// which is what a restart goes by.
    #[error("journal: {0}")]
    Journal(String),
    /// Suspending a suspended case, or resuming a running one.
    #[error("case {case}: {action} refused, the case is {state}")]
    Suspension {
        /// The case.
        case: CaseId,
        /// The action.
        action: Action,
        /// `"suspended"` or `"running"`.
        state: &'static str,
    },
    /// An extension of zero, or one on a case without a deadline.
    #[error("case {case}: nothing to extend ({why})")]
    Extension {
        /// The case.
        case: CaseId,
        /// Why.
        why: &'static str,
    },
    /// The worker is not in the city.
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    /// The router refused a manual dispatch.
    #[error("case {case}: {source}")]
    Routing {
        /// The case.
        case: CaseId,
        /// The router's refusal.
        source: RoutingError,
    },
    /// The engine has shut down.
    #[error("the engine has shut down")]
    ShutDown,
}

fn list(states: &[CaseState]) -> String {
    let v: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_row() {
        for a in Action::ALL {
            assert_eq!(MOVES.iter().filter(|m| m.action == a).count(), 1, "{a}");
            assert_eq!(Action::from_code(a.code()), Some(a));
        }
        assert_eq!(MOVES.len(), Action::ALL.len());
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for s in CaseState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for a in Action::ALL {
                assert!(!a.allowed_from(s), "{a} from {s}");
            }
        }
    }

    #[test]
    fn a_transition_is_16_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<Transition>(), 16);
        let at = Timestamp(1_764_460_000_123);
        for &from in &[None, Some(CaseState::Ruling)] {
            for to in CaseState::ALL {
                for a in Action::ALL {
                    for actor in [
                        Actor::System,
                        Actor::Center,
                        Actor::Reporter,
                        Actor::Worker(WorkerId(7)),
                        Actor::Inspector(u32::MAX - 1),
                    ] {
                        let t = Transition::new(at, from, to, a, actor, Some(WorkerId(3)));
                        assert_eq!(
                            (t.at(), t.from(), t.to(), t.action(), t.actor(), t.worker()),
                            (at, from, to, a, actor, Some(WorkerId(3)))
                        );
                    }
                }
            }
        }
    }
}
