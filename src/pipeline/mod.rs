//! The engine: reports in, each becomes a case that flows through the four stages of the
//! loop (信息收集、分办、处置、反馈) to the unit and the person who hold it, every deadline
//! watched, the command center (指挥中心) seeing it all live.
//!
//! ```text
//!  submit ─►[batches]─► collect ─►[batches]─► assign ─────────►  dispatched / queued / ruling
//!  (caller)             validate  locate       route, organ      │
//!   stores the case     dedupe    admit        queues drained ◄──┤ freed workers, reroutes
//!   as `reported`       (collect.rs)           (assign.rs)       │
//!                                                                │
//!  accept / return / resolve ── handle.rs ──(caller's thread)────┤
//!  verify / close / reopen ──── feedback.rs ─(caller's thread)───┘
//!  tick (timer thread or Engine::tick): accept deadlines, 催办, 督办 (handle.rs)
//!
//!  every transition ─►[batches]─► event bus ─► subscribers (lossy, each told what it missed)
//!  snapshot(): a scan of the case store (center.rs)
//! ```
//!
//! Commands (accept, resolve, verify...) run on the caller's thread under the lock of the
//! case's store segment, so a refusal is an immediate typed error that changes nothing;
//! what they set in motion (routing again, draining queues, events) goes to the stage
//! threads in batches.

mod archive;
mod assign;
mod case;
mod center;
mod checkpoint;
mod collect;
mod engine;
mod feedback;
mod handle;
mod lifecycle;
mod port;
mod query;
mod recover;
mod wal;

pub use case::{Case, MAX_DESCRIPTION, Report, Reporter, Satisfaction, Source};
pub use center::{CaseEvent, Indicators, Notice, Snapshot, Subscription, Tally};
pub use engine::{
    CaseBrief, Checkpoint, Command, Engine, EngineBuilder, EngineConfig, EngineError, SubmitError,
    Verifier,
};
pub use lifecycle::{
    Action, Actor, CaseState, LifecycleError, Transition, is_legal_move, is_legal_start,
};
pub use recover::Recovery;

pub(crate) use crate::routing::CaseId;
