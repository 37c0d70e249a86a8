//! The routing core: from an admitted case to one multi-role worker of the unit that holds
//! it (多网合一、一员多能; 职责准入: work goes only to the holder and its own people).
//!
//! ```text
//!   CaseRequest ─► Router::route ─► Decision { case, outcome, trace, deadline }
//!   (case id,        │  admission (duty lists) ─► the holder's own forces: the community's
//!    cell, category, │  people by rings inside it, or the street office's force for the
//!    priority)       │  platform ─► policy (nearest, least loaded, fair rotation)
//!                    │  ─► claim (never over capacity) ─► or the organ's queue
//!                    ├─ case identity: who holds each case, who returned it (退单 breaker)
//!                    └─ live worker state: status, load, position (lock-free reads,
//!                       writes under the worker's street-office lock); snapshot, restore
//! ```
//!
//! Every decision carries a [`Trace`]: who holds the case and why (the admission), where
//! the worker was found, by which policy, among how many, the runner-up, and who was passed
//! over for what reason. Traces are `Copy` values built without allocation;
//! [`Router::explain`] renders one with names and [`Router::record`] turns a decision into
//! a serializable [`DecisionRecord`] with string ids.

mod cases;
mod decision;
mod policy;
mod router;
mod state;

pub use cases::CaseId;
pub use decision::{Decision, DecisionRecord, Found, Outcome, OutcomeKind, Skipped, Trace};
pub use policy::{Candidate, FairRotation, LeastLoaded, Nearest, Policy, PolicyKind};
pub use router::{
    CaseRequest, CaseSnapshot, MAX_RETURNS, MAX_RING, RestoreReport, Router, RouterConfig,
    RouterSnapshot, RoutingError, SNAPSHOT_VERSION, ServiceChoice, WorkerSnapshot,
};
pub use state::{WorkerState, WorkerStatus};
