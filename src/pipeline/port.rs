//! The engine's one door to the router: every routing call of the pipeline goes through
//! here.

use crate::city::{CategoryId, Priority, WorkerId};
use crate::grid::{CellId, Location};
use crate::routing::{CaseId, CaseRequest, Outcome, Router, RoutingError};

/// What the pipeline asks the router about a case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    pub(crate) case: CaseId,
    pub(crate) cell: CellId,
    pub(crate) category: CategoryId,
    pub(crate) location: Location,
    pub(crate) priority: Priority,
}

/// The router, spoken to in cases.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) router: Router,
}

impl Port {
    pub(crate) fn new(router: Router) -> Port {
        Port { router }
    }

    fn request(req: &Req) -> CaseRequest {
        CaseRequest::new(req.case, req.cell, req.category, req.location).with_priority(req.priority)
    }

    /// Routes a case (the router excludes its earlier returners itself).
    pub(crate) fn route(&self, req: &Req) -> Result<Outcome, RoutingError> {
        self.router.route(&Port::request(req)).map(|d| d.outcome)
    }

    /// 退单: `worker`, who holds the case, hands it back; it is routed again without them.
    pub(crate) fn return_case(&self, req: &Req, worker: WorkerId) -> Result<Outcome, RoutingError> {
        self.router
            .return_case(&Port::request(req), worker)
            .map(|d| d.outcome)
    }

    /// The case's worker is done with it: their slot is free again (idempotent per case).
    pub(crate) fn release(&self, case: CaseId, _worker: WorkerId) {
        // Only an unknown case id could be refused, and every case id is valid here.
        let _ = self.router.release(case);
    }

    /// The center gives a case to a worker by hand; `over_capacity` overrides capacity and
    /// duty. Whether the router counts the case in the worker's load (it does).
    pub(crate) fn assign_to(
        &self,
        req: &Req,
        worker: WorkerId,
        over_capacity: Option<&str>,
    ) -> Result<bool, RoutingError> {
        self.router
            .assign_to(&Port::request(req), worker, over_capacity)
            .map(|_| true)
    }

    /// The cases reached a terminal state: the router drops what it keeps on them.
    pub(crate) fn forget(&self, cases: &[u64]) {
        for &case in cases {
            self.router.forget(CaseId(case));
        }
    }
}
