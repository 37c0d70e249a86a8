//! The engine's one door to the router: every routing call of the pipeline goes through
//! here.

use crate::city::{Admission, CategoryId, Priority, WorkerId};
use crate::grid::{CellId, Location};
use crate::routing::{CaseId, CaseRequest, Outcome, Router, RoutingError};
use parking_lot::Mutex;
use std::collections::VecDeque;

/// What the pipeline asks the router about a case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    pub(crate) case: CaseId,
    pub(crate) cell: CellId,
    pub(crate) category: CategoryId,
    pub(crate) location: Location,
    pub(crate) priority: Priority,
}

/// The admissions collect found for one batch of registered cases, in the batch's order,
/// with each case's cell.
pub(crate) type Admitted = Vec<(u64, Admission, CellId)>;

/// More batches than assign's channel can hold at once.
const MAX_WAITING: usize = 4096;

/// The router, spoken to in cases.
#[derive(Debug)]
pub(crate) struct Port {
    pub(crate) router: Router,
    /// Admissions handed from collect to assign, one entry per batch sent, in the order
    /// the batches were sent: collect has read the duty table for every case already, and
    /// a second read of it is a cache miss per case on the hot path.
    admitted: Mutex<VecDeque<Admitted>>,
}

impl Port {
    pub(crate) fn new(router: Router) -> Port {
        Port {
            router,
            admitted: Mutex::new(VecDeque::new()),
        }
    }

    /// Collect leaves the admissions of a batch it is about to send to assign.
    pub(crate) fn hand_over(&self, admitted: Admitted) {
        if admitted.is_empty() {
            return;
        }
        let mut q = self.admitted.lock();
        // Batches are taken as fast as assign's bounded channel lets them come; should
        // some never be taken (the stage gone), the oldest go rather than pile up.
        if q.len() >= MAX_WAITING {
            q.pop_front();
        }
        q.push_back(admitted);
    }

    /// Assign takes the admissions of the batch `ids`, if collect left them: only the
    /// oldest batch left may match (batches travel in order); anything else (a batch sent
    /// by recovery, say) finds none and is admitted by the router as usual.
    pub(crate) fn take_admitted(&self, ids: &[u64]) -> Option<Admitted> {
        let mut q = self.admitted.lock();
        let front = q.front()?;
        let same = front.len() == ids.len() && front.iter().zip(ids).all(|(a, &id)| a.0 == id);
        if same { q.pop_front() } else { None }
    }

    /// Routes a case whose admission collect found (see [`Router::route_admitted`]).
    pub(crate) fn route_admitted(
        &self,
        req: &Req,
        admission: Admission,
    ) -> Result<Outcome, RoutingError> {
        self.router
            .route_admitted(&Port::request(req), admission)
            .map(|d| d.outcome)
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

    /// [`Port::assign_to`] without override, for a case whose admission collect found.
    pub(crate) fn assign_admitted(
        &self,
        req: &Req,
        worker: WorkerId,
        admission: Admission,
    ) -> Result<bool, RoutingError> {
        self.router
            .assign_admitted(&Port::request(req), worker, admission)
            .map(|_| true)
    }

    /// The cases reached a terminal state: the router drops what it keeps on them.
    pub(crate) fn forget(&self, cases: &[u64]) {
        for &case in cases {
            self.router.forget(CaseId(case));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::demo::demo_city;
    use crate::routing::RouterConfig;
    use std::sync::Arc;

    #[test]
    fn admissions_are_taken_by_the_batch_they_were_left_for_only() {
        let city = Arc::new(demo_city());
        let cell = CellId(0);
        let admission = city.admit(cell, CategoryId(0)).unwrap();
        let port = Port::new(Router::new(city, RouterConfig::default()).unwrap());
        port.hand_over(vec![(5, admission, CellId(0)), (6, admission, CellId(0))]);
        port.hand_over(vec![(7, admission, CellId(0))]);
        assert!(port.take_admitted(&[7]).is_none(), "not the oldest batch");
        assert!(port.take_admitted(&[5]).is_none(), "not the whole batch");
        assert!(port.take_admitted(&[5, 9]).is_none(), "another case");
        assert_eq!(port.take_admitted(&[5, 6]).map(|a| a.len()), Some(2));
        assert_eq!(port.take_admitted(&[7]).map(|a| a.len()), Some(1));
        assert!(port.take_admitted(&[7]).is_none(), "taken once");
    }
}
