//! The routing core: from an admitted case to one multi-role worker (多网合一、一员多能).
//!
//! ```text
//!   CaseRequest ─► Router::route ─► Decision { outcome, trace }
//!                    │  admission (duty lists) ─► candidate search (cell, rings,
//!                    │  community) ─► policy (nearest, least loaded, fair rotation)
//!                    │  ─► claim (never over capacity) ─► or the organ's queue
//!                    └─ live worker state: status, load, position (lock-free reads,
//!                       writes under the worker's street-office lock)
//! ```
//!
//! Every decision carries a [`Trace`]: who holds the case and why (the admission), where
//! the worker was found, by which policy, among how many, the runner-up, and who was passed
//! over for what reason. Traces are `Copy` values built without allocation;
//! [`Router::explain`] renders one with names.

mod decision;
mod policy;
mod router;
mod state;

pub use decision::{Decision, Found, Outcome, Skipped, Trace};
pub use policy::{Candidate, FairRotation, LeastLoaded, Nearest, Policy, PolicyKind};
pub use router::{
    CaseRequest, MAX_RETURNS, MAX_RING, Router, RouterConfig, RoutingError, ServiceChoice,
};
pub use state::{WorkerState, WorkerStatus};
