//! The engine's one door to the router: every routing call of the pipeline goes through
//! here, so that the pipeline speaks of cases (a case id on every call) whatever the
//! router's own signatures are.

use super::CaseId;
use crate::city::{CategoryId, Priority, WorkerId};
use crate::grid::{CellId, Location};
use crate::routing::{CaseRequest, Outcome, Router, RoutingError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the pipeline asks the router about a case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    pub(crate) case: CaseId,
    pub(crate) cell: CellId,
    pub(crate) category: CategoryId,
    pub(crate) location: Location,
    #[allow(dead_code)]
    pub(crate) priority: Priority,
}

/// The router and what this version of it does not keep itself: who returned each case.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) router: Router,
    returners: Mutex<HashMap<u64, Vec<WorkerId>>>,
    /// Whether any case was ever returned, so that the common case takes no lock.
    any: AtomicBool,
}

impl Port {
    pub(crate) fn new(router: Router) -> Port {
        Port {
            router,
            returners: Mutex::new(HashMap::new()),
            any: AtomicBool::new(false),
        }
    }

    fn request(req: &Req) -> CaseRequest<'static> {
        CaseRequest::new(req.cell, req.category, req.location)
    }

    /// Routes a case (its earlier returners excluded).
    pub(crate) fn route(&self, req: &Req) -> Result<Outcome, RoutingError> {
        let r = Port::request(req);
        let returners = if self.any.load(Ordering::Relaxed) {
            self.returners.lock().get(&req.case.0).cloned()
        } else {
            None
        };
        match returners {
            Some(list) => self.router.route(&r.returned_by(&list)).map(|d| d.outcome),
            None => self.router.route(&r).map(|d| d.outcome),
        }
    }

    /// 退单: `worker`, who holds the case, hands it back; it is routed again without them.
    pub(crate) fn return_case(&self, req: &Req, worker: WorkerId) -> Result<Outcome, RoutingError> {
        let mut map = self.returners.lock();
        self.any.store(true, Ordering::Relaxed);
        let list = map.entry(req.case.0).or_default();
        let added = !list.contains(&worker);
        if added {
            list.push(worker);
        }
        let d = self
            .router
            .return_case(worker, &Port::request(req).returned_by(list));
        if d.is_err() && added {
            list.pop();
        }
        d.map(|d| d.outcome)
    }

    /// The case's worker is done with it: their slot is free again.
    pub(crate) fn release(&self, _case: CaseId, worker: WorkerId) {
        // The case held this slot (the store says so under its lock), so the release
        // cannot fail for a worker the router knows.
        let _ = self.router.release(worker);
    }

    /// The center gives a case to a worker by hand. This router keeps no per-case claim
    /// to force, so the worker's load does not count the case (see `claimed`).
    pub(crate) fn assign_to(&self, _req: &Req, worker: WorkerId) -> Result<bool, RoutingError> {
        self.router.worker_state(worker).map(|_| false)
    }

    /// The cases reached a terminal state.
    pub(crate) fn forget(&self, cases: &[u64]) {
        if cases.is_empty() || !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut map = self.returners.lock();
        for case in cases {
            map.remove(case);
        }
    }
}
