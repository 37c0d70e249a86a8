//! The router: from an admitted case to one worker.

use super::decision::{Decision, Found, Outcome, Skipped, Trace};
use super::policy::{Candidate, Policy, PolicyKind};
use super::state::{Board, ClaimFailure, WorkerState, WorkerStatus};
use crate::city::{
    Admission, CategoryId, City, Csr, Holder, OrganId, Platform, RoleSet, ServiceItemId,
    ServicePointId, UnitId, UnitKind, WorkerId,
};
use crate::grid::{CellId, Location, RingBuf};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The farthest ring of neighbouring cells the router may search.
pub const MAX_RING: u8 = 8;
/// The most returns a case may have before it goes to a ruling.
pub const MAX_RETURNS: u8 = 16;
/// The most (cell, worker) entries the candidate lists may hold (1 GiB of pairs while
/// building): beyond it, workers' home areas overlap far more than any real grid's.
const MAX_CANDIDATE_ENTRIES: usize = 1 << 27;
/// How often a decision searches again after losing a claim to a concurrent one.
const MAX_LOST_CLAIMS: usize = 8;

/// How the router searches and chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// How many rings of neighbouring cells to search after the case's own cell
    /// (0 to [`MAX_RING`]).
    pub max_ring: u8,
    /// After this many returns (退单) a case goes to the street office's governance center
    /// for a ruling instead of being routed again (1 to [`MAX_RETURNS`]).
    pub max_returns: u8,
    /// The policy that chooses among the candidates of a ring.
    pub policy: PolicyKind,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_ring: 2,
            max_returns: 2,
            policy: PolicyKind::Nearest,
        }
    }
}

/// Why the router refused a request. Nothing changes when it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoutingError {
    /// The cell is not in the city's grid.
    #[error("unknown cell {0}")]
    UnknownCell(CellId),
    /// The category is not in the city's catalogue.
    #[error("unknown category {0}")]
    UnknownCategory(CategoryId),
    /// The worker is not in the city.
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    /// The service item is not in the city's catalogue.
    #[error("unknown service item {0}")]
    UnknownServiceItem(ServiceItemId),
    /// A service-point request for a category that names no service item.
    #[error("category {0} is not a service request (it names no service item)")]
    NotAService(CategoryId),
    /// A release for a worker who holds no case.
    #[error("{0} holds no case to release")]
    NotHolding(WorkerId),
    /// A return from a worker the case was not listed as returned by.
    #[error("{0} must be listed in `returned_by` of the case being returned")]
    ReturnerNotListed(WorkerId),
    /// More returners listed than the router tracks.
    #[error("{listed} returners listed; at most {max} are tracked")]
    TooManyReturns {
        /// How many were listed.
        listed: usize,
        /// The most allowed ([`MAX_RETURNS`]).
        max: usize,
    },
    /// A configuration value out of range.
    #[error("router config: {field} = {value} is out of range ({range})")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// The allowed range.
        range: &'static str,
    },
    /// The street office has no organ for the platform (a city built by [`City::new`]
    /// always has all four).
    #[error("street office {street} has no organ for {platform}")]
    NoOrgan {
        /// The street office.
        street: UnitId,
        /// The platform.
        platform: Platform,
    },
    /// The candidate lists would not fit in memory: workers whose home cells cover much of
    /// the grid, many times over.
    #[error("candidate lists too large ({entries} entries): workers' home areas overlap too much")]
    TooLarge {
        /// Entries reached when the build stopped.
        entries: usize,
    },
    /// A capacity of zero or above the city's maximum.
    #[error("capacity {0} out of range (1 to {max})", max = crate::city::MAX_CAPACITY)]
    Capacity(u32),
}

/// A case to route: where it is, what it is, and who returned it already.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseRequest<'a> {
    /// The cell it was located to.
    pub cell: CellId,
    /// Its category.
    pub category: CategoryId,
    /// Where it is (for the nearest-worker policy).
    pub location: Location,
    /// Workers who returned it (退单), oldest first; they are never chosen again.
    pub returned_by: &'a [WorkerId],
}

impl<'a> CaseRequest<'a> {
    /// A case nobody has returned.
    pub fn new(cell: CellId, category: CategoryId, location: Location) -> CaseRequest<'static> {
        CaseRequest {
            cell,
            category,
            location,
            returned_by: &[],
        }
    }

    /// The same case, returned by `returned_by`.
    pub fn returned_by(self, returned_by: &[WorkerId]) -> CaseRequest<'_> {
        CaseRequest {
            cell: self.cell,
            category: self.category,
            location: self.location,
            returned_by,
        }
    }
}

/// The nearest service point offering an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceChoice {
    /// The point.
    pub point: ServicePointId,
    /// Its distance from the requester, in metres.
    pub distance_m: f64,
    /// The next nearest point offering the item, if any (多点可办).
    pub runner_up: Option<ServicePointId>,
}

/// One entry of a cell's candidate list: a worker and the ring of their nearest home cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Near {
    ring: u8,
    worker: u32,
}

/// Workers a decision must not choose: the case's returners first, then those it lost
/// claims on.
struct Excluded {
    ids: [u32; MAX_RETURNS as usize + MAX_LOST_CLAIMS],
    len: usize,
    returners: usize,
}

impl Excluded {
    /// Whether `w` is excluded, and if so whether as a returner.
    #[inline]
    fn find(&self, w: u32) -> Option<bool> {
        self.ids[..self.len]
            .iter()
            .position(|&x| x == w)
            .map(|i| i < self.returners)
    }
    fn push(&mut self, w: u32) {
        if self.len < self.ids.len() {
            self.ids[self.len] = w;
            self.len += 1;
        }
    }
}

/// The best and second-best candidates seen, by (rank, worker id).
#[derive(Default)]
struct Best {
    first: Option<(u64, u32)>,
    second: Option<(u64, u32)>,
    count: u16,
}

impl Best {
    #[inline]
    fn offer(&mut self, key: (u64, u32)) {
        self.count = self.count.saturating_add(1);
        if self.first.is_none_or(|f| key < f) {
            self.second = self.first;
            self.first = Some(key);
        } else if self.second.is_none_or(|s| key < s) {
            self.second = Some(key);
        }
    }
}

/// Routes admitted cases to workers and keeps the workers' live state.
///
/// ```text
///   case (cell, category) ─► admission ─► referred? ──────────────► Referred(department)
///                                │ held by a community or street office
///                                ▼
///                 returned max_returns times? ────────────────────► Ruling(governance center)
///                                │
///   candidates with a role the category needs, on duty, under capacity, not a returner:
///     own cell ─► ring 1 ─► ... ─► ring max_ring ─► rest of the community
///                                │ first level with any candidate: the policy picks one
///                                ▼
///                        claim (atomic, per street office) ─────► Assigned(worker)
///                                │ nobody anywhere
///                                ▼
///                 the platform organ's queue ──────────────────► Queued(organ)
/// ```
///
/// Thread-safe: share it behind an `Arc`; decisions, releases and state updates run
/// concurrently. A worker's load never exceeds their capacity: the claim that counts a case
/// checks and increments under the lock of the worker's street office.
///
/// # Complexity
/// A decision reads the cell's precomputed candidate list (workers of the cell and its
/// rings, nearest ring first) and stops at the first ring that has a candidate; no
/// allocation, no lock but the claim's.
#[derive(Debug)]
pub struct Router {
    city: Arc<City>,
    config: RouterConfig,
    policy: Box<dyn Policy>,
    board: Board,
    roles: Vec<RoleSet>,
    near: Csr<Near>,
    community: Csr<u32>,
}

impl Router {
    /// A router over `city` with one of the built-in policies.
    ///
    /// # Errors
    /// [`RoutingError::Config`] for a `max_ring` above [`MAX_RING`] or a `max_returns`
    /// outside 1 to [`MAX_RETURNS`]; [`RoutingError::TooLarge`] if the candidate lists
    /// would exceed 2^27 entries.
    pub fn new(city: Arc<City>, config: RouterConfig) -> Result<Router, RoutingError> {
        let policy = config.policy.policy();
        Router::with_policy(city, config, policy)
    }

    /// A router with a policy of your own (`config.policy` is then ignored).
    ///
    /// # Errors
    /// As [`Router::new`].
    pub fn with_policy(
        city: Arc<City>,
        config: RouterConfig,
        policy: Box<dyn Policy>,
    ) -> Result<Router, RoutingError> {
        if config.max_ring > MAX_RING {
            return Err(RoutingError::Config {
                field: "max_ring",
                value: config.max_ring.into(),
                range: "0 to 8",
            });
        }
        if config.max_returns == 0 || config.max_returns > MAX_RETURNS {
            return Err(RoutingError::Config {
                field: "max_returns",
                value: config.max_returns.into(),
                range: "1 to 16",
            });
        }
        let grid = city.grid();
        let workers = city.workers();
        // Candidate lists: for each cell, the workers of every cell up to max_ring away,
        // each once at its nearest ring, nearest ring first, then by id.
        let mut pairs: Vec<(usize, Near)> = Vec::new();
        let mut seen = vec![u32::MAX; workers.len()];
        let mut buf = RingBuf::new();
        let mut row: Vec<Near> = Vec::new();
        for cell in grid.ids() {
            grid.rings_into(cell, usize::from(config.max_ring), &mut buf);
            row.clear();
            for (ring, cells) in buf.rings().enumerate() {
                for &c in cells {
                    for &w in city.workers_in(c) {
                        if seen[w.index()] != cell.index() as u32 {
                            seen[w.index()] = cell.index() as u32;
                            row.push(Near {
                                ring: ring as u8,
                                worker: w.index() as u32,
                            });
                        }
                    }
                }
            }
            row.sort_unstable();
            pairs.extend(row.iter().map(|&n| (cell.index(), n)));
            if pairs.len() > MAX_CANDIDATE_ENTRIES {
                return Err(RoutingError::TooLarge {
                    entries: pairs.len(),
                });
            }
        }
        let near = Csr::from_pairs(grid.len(), &pairs);
        // Community lists: every worker with a home cell in the community, by id.
        let mut cpairs: Vec<(usize, u32)> = Vec::new();
        let mut members: Vec<u32> = Vec::new();
        for community in city.units_of(UnitKind::Community) {
            members.clear();
            for &c in city.community_cells(community) {
                members.extend(city.workers_in(c).iter().map(|w| w.index() as u32));
            }
            members.sort_unstable();
            members.dedup();
            cpairs.extend(members.iter().map(|&w| (community.index(), w)));
        }
        let community = Csr::from_pairs(city.units().len(), &cpairs);
        // One shard per street office: a worker belongs to the street office of their
        // first home cell.
        let mut shard_of_unit = vec![0u32; city.units().len()];
        for (k, street) in city.units_of(UnitKind::Street).enumerate() {
            shard_of_unit[street.index()] = k as u32;
        }
        let streets = city.units_of(UnitKind::Street).len();
        let board = Board::new(
            workers.iter().enumerate().map(|(w, worker)| {
                let id = WorkerId(w as u32);
                let shard = city
                    .home_cells(id)
                    .first()
                    .and_then(|&c| city.chain(c).ok())
                    .map_or(0, |chain| shard_of_unit[chain.street.index()]);
                (worker.capacity, worker.position, shard)
            }),
            streets,
        );
        let roles = workers.iter().map(|w| w.roles).collect();
        Ok(Router {
            city,
            config,
            policy,
            board,
            roles,
            near,
            community,
        })
    }

    /// The city routed over.
    pub fn city(&self) -> &City {
        &self.city
    }

    /// The configuration in force.
    pub fn config(&self) -> RouterConfig {
        self.config
    }

    /// Routes a case and, if a worker is chosen, gives it to them (their load counts it
    /// until [`Router::release`] or [`Router::return_case`]).
    ///
    /// # Errors
    /// [`RoutingError::UnknownCell`] / [`RoutingError::UnknownCategory`] for ids outside
    /// the city, [`RoutingError::TooManyReturns`] for more returners than tracked. A refused
    /// request changes nothing.
    pub fn route(&self, case: &CaseRequest<'_>) -> Result<Decision, RoutingError> {
        if case.returned_by.len() > usize::from(MAX_RETURNS) {
            return Err(RoutingError::TooManyReturns {
                listed: case.returned_by.len(),
                max: usize::from(MAX_RETURNS),
            });
        }
        let category = self
            .city
            .category(case.category)
            .ok_or(RoutingError::UnknownCategory(case.category))?;
        let admission = self
            .city
            .admit(case.cell, case.category)
            .map_err(|_| RoutingError::UnknownCell(case.cell))?;
        let returns = case.returned_by.len() as u8;
        let mut trace = Trace {
            admission,
            found: Found::Nowhere,
            policy: self.policy.name(),
            candidates: 0,
            runner_up: None,
            skipped: Skipped::default(),
            returns,
            lost_claims: 0,
        };
        let street = match admission.holder {
            Holder::Department(department) => {
                return Ok(Decision {
                    outcome: Outcome::Referred { department },
                    trace,
                });
            }
            Holder::Community(community) => self.street_of(community),
            Holder::Street { street, .. } => street,
        };
        if returns >= self.config.max_returns {
            let organ = self.organ(street, Platform::Governance)?;
            return Ok(Decision {
                outcome: Outcome::Ruling { organ },
                trace,
            });
        }
        let mut excluded = Excluded {
            ids: [u32::MAX; MAX_RETURNS as usize + MAX_LOST_CLAIMS],
            len: 0,
            returners: 0,
        };
        for w in case.returned_by {
            excluded.push(w.index() as u32);
        }
        excluded.returners = excluded.len;
        let cos_lat = case.location.lat().to_radians().cos();
        loop {
            let (found, best, skipped) =
                self.search(case, category.roles, cos_lat, &admission, &excluded);
            trace.found = found;
            trace.skipped = skipped;
            trace.candidates = best.count;
            trace.runner_up = best.second.map(|(_, w)| WorkerId(w));
            let Some((_, w)) = best.first else {
                trace.found = Found::Nowhere;
                let organ = match admission.holder {
                    Holder::Street { organ, .. } => organ,
                    _ => self.organ(street, category.platform)?,
                };
                return Ok(Decision {
                    outcome: Outcome::Queued { organ },
                    trace,
                });
            };
            match self.board.claim(WorkerId(w)) {
                Ok(()) => {
                    return Ok(Decision {
                        outcome: Outcome::Assigned {
                            worker: WorkerId(w),
                        },
                        trace,
                    });
                }
                Err(ClaimFailure::Full | ClaimFailure::NotOnDuty) => {
                    trace.lost_claims += 1;
                    if usize::from(trace.lost_claims) > MAX_LOST_CLAIMS {
                        let organ = self.organ(street, category.platform)?;
                        trace.found = Found::Nowhere;
                        return Ok(Decision {
                            outcome: Outcome::Queued { organ },
                            trace,
                        });
                    }
                    excluded.push(w);
                }
            }
        }
    }

    /// The candidate search: the first level (own cell, ring k, community) with any
    /// available candidate, and the best two there.
    #[inline]
    fn search(
        &self,
        case: &CaseRequest<'_>,
        needed: RoleSet,
        cos_lat: f64,
        admission: &Admission,
        excluded: &Excluded,
    ) -> (Found, Best, Skipped) {
        let mut skipped = Skipped::default();
        let mut best = Best::default();
        let list = self.near.row(case.cell.index());
        let mut i = 0;
        while i < list.len() {
            let ring = list[i].ring;
            while i < list.len() && list[i].ring == ring {
                self.consider(
                    list[i].worker,
                    case,
                    needed,
                    cos_lat,
                    excluded,
                    &mut best,
                    &mut skipped,
                );
                i += 1;
            }
            if best.first.is_some() {
                let found = if ring == 0 {
                    Found::Cell
                } else {
                    Found::Ring(ring)
                };
                return (found, best, skipped);
            }
        }
        // The rest of the community: the unit that holds the case, or the community of the
        // cell when the street office holds it.
        let community = match admission.holder {
            Holder::Community(c) => Some(c),
            _ => self.city.community_of(case.cell).ok(),
        };
        if let Some(c) = community {
            for &w in self.community.row(c.index()) {
                self.consider(w, case, needed, cos_lat, excluded, &mut best, &mut skipped);
            }
        }
        (Found::Community, best, skipped)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn consider(
        &self,
        w: u32,
        case: &CaseRequest<'_>,
        needed: RoleSet,
        cos_lat: f64,
        excluded: &Excluded,
        best: &mut Best,
        skipped: &mut Skipped,
    ) {
        if !self.roles[w as usize].intersects(needed) {
            skipped.no_role = skipped.no_role.saturating_add(1);
            return;
        }
        match excluded.find(w) {
            Some(true) => {
                skipped.returned = skipped.returned.saturating_add(1);
                return;
            }
            // Lost to a concurrent decision a moment ago: no longer available.
            Some(false) => {
                skipped.unavailable = skipped.unavailable.saturating_add(1);
                return;
            }
            None => {}
        }
        let slot = self.board.slot(WorkerId(w));
        let (load, capacity) = (slot.load(), slot.capacity());
        if !slot.on_duty() || load >= capacity {
            skipped.unavailable = skipped.unavailable.saturating_add(1);
            return;
        }
        let candidate = Candidate {
            worker: WorkerId(w),
            load,
            capacity,
            last_assigned: slot.last_assigned(),
            position: slot.position(),
            case: case.location,
            cos_lat,
        };
        best.offer((self.policy.rank(&candidate), w));
    }

    fn street_of(&self, community: UnitId) -> UnitId {
        self.city
            .unit(community)
            .and_then(|u| u.parent)
            .unwrap_or(community)
    }

    fn organ(&self, street: UnitId, platform: Platform) -> Result<OrganId, RoutingError> {
        self.city
            .platform_organ(street, platform)
            .map_err(|_| RoutingError::NoOrgan { street, platform })
    }

    /// A worker hands back a case (退单): their load drops, and the case is routed again
    /// without everyone in `case.returned_by` (which must list `worker`, after any earlier
    /// returners). After `max_returns` returns it goes to the governance center for a
    /// ruling.
    ///
    /// # Errors
    /// [`RoutingError::ReturnerNotListed`] if `worker` is not in `case.returned_by`,
    /// [`RoutingError::NotHolding`] if they hold no case, and those of [`Router::route`].
    /// Nothing changes on an error.
    pub fn return_case(
        &self,
        worker: WorkerId,
        case: &CaseRequest<'_>,
    ) -> Result<Decision, RoutingError> {
        self.check_worker(worker)?;
        if !case.returned_by.contains(&worker) {
            return Err(RoutingError::ReturnerNotListed(worker));
        }
        if case.returned_by.len() > usize::from(MAX_RETURNS) {
            return Err(RoutingError::TooManyReturns {
                listed: case.returned_by.len(),
                max: usize::from(MAX_RETURNS),
            });
        }
        if self.city.category(case.category).is_none() {
            return Err(RoutingError::UnknownCategory(case.category));
        }
        if self.city.grid().cell(case.cell).is_none() {
            return Err(RoutingError::UnknownCell(case.cell));
        }
        if !self.board.release(worker) {
            return Err(RoutingError::NotHolding(worker));
        }
        self.route(case)
    }

    /// A worker finished a case (resolved, closed or taken off them): their load drops.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`], or [`RoutingError::NotHolding`] if they hold none.
    pub fn release(&self, worker: WorkerId) -> Result<(), RoutingError> {
        self.check_worker(worker)?;
        if self.board.release(worker) {
            Ok(())
        } else {
            Err(RoutingError::NotHolding(worker))
        }
    }

    /// Puts a worker on duty, busy or off duty. Cases they hold stay with them.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`].
    pub fn set_status(&self, worker: WorkerId, status: WorkerStatus) -> Result<(), RoutingError> {
        self.check_worker(worker)?;
        self.board.set_status(worker, status);
        Ok(())
    }

    /// Records a worker's position (kept to 1e-7 degree). One atomic store.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`].
    #[inline]
    pub fn set_position(&self, worker: WorkerId, position: Location) -> Result<(), RoutingError> {
        self.check_worker(worker)?;
        self.board.set_position(worker, position);
        Ok(())
    }

    /// Changes how many cases a worker may hold at once. Lowering it below their load
    /// takes nothing from them; they get no new case until under it again.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`], [`RoutingError::Capacity`] for 0 or more than
    /// [`MAX_CAPACITY`](crate::MAX_CAPACITY).
    pub fn set_capacity(&self, worker: WorkerId, capacity: u32) -> Result<(), RoutingError> {
        self.check_worker(worker)?;
        if capacity == 0 || capacity > crate::city::MAX_CAPACITY {
            return Err(RoutingError::Capacity(capacity));
        }
        self.board.set_capacity(worker, capacity);
        Ok(())
    }

    /// A consistent copy of a worker's live state.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`].
    pub fn worker_state(&self, worker: WorkerId) -> Result<WorkerState, RoutingError> {
        self.check_worker(worker)?;
        Ok(self.board.state(worker))
    }

    /// Cases given to workers and released, since the router was built.
    pub fn totals(&self) -> (u64, u64) {
        let t = self.board.totals();
        (t.claims, t.releases)
    }

    fn check_worker(&self, worker: WorkerId) -> Result<(), RoutingError> {
        if worker.index() < self.board.len() {
            Ok(())
        } else {
            Err(RoutingError::UnknownWorker(worker))
        }
    }

    /// The nearest service point offering `item` (就近能办, 多点可办), by great-circle
    /// distance; ties go to the lower id. `None` if no point offers it.
    ///
    /// # Errors
    /// [`RoutingError::UnknownServiceItem`].
    pub fn nearest_service_point(
        &self,
        item: ServiceItemId,
        from: Location,
    ) -> Result<Option<ServiceChoice>, RoutingError> {
        if item.index() >= self.city.service_items().len() {
            return Err(RoutingError::UnknownServiceItem(item));
        }
        let mut best: Option<(f64, ServicePointId)> = None;
        let mut second: Option<(f64, ServicePointId)> = None;
        for &p in self.city.points_offering(item) {
            let Some(point) = self.city.service_point(p) else {
                continue;
            };
            let key = (from.distance_m(point.position), p);
            let better = |other: Option<(f64, ServicePointId)>| {
                other.is_none_or(|o| key.0 < o.0 || (key.0 == o.0 && key.1 < o.1))
            };
            if better(best) {
                second = best;
                best = Some(key);
            } else if better(second) {
                second = Some(key);
            }
        }
        Ok(best.map(|(d, p)| ServiceChoice {
            point: p,
            distance_m: d,
            runner_up: second.map(|s| s.1),
        }))
    }

    /// The nearest service point for a service request of `category` (a category whose
    /// catalogue entry names a service item), as [`Router::nearest_service_point`].
    ///
    /// # Errors
    /// [`RoutingError::UnknownCategory`], or [`RoutingError::NotAService`] for a category
    /// that names no service item.
    pub fn service_point_for(
        &self,
        category: CategoryId,
        from: Location,
    ) -> Result<Option<ServiceChoice>, RoutingError> {
        let item = self
            .city
            .category(category)
            .ok_or(RoutingError::UnknownCategory(category))?
            .service_item;
        self.nearest_service_point(item.ok_or(RoutingError::NotAService(category))?, from)
    }

    /// A decision explained with names, for the command center. Allocates; keep it off
    /// the hot path.
    pub fn explain(&self, decision: &Decision) -> String {
        let worker = |w: WorkerId| {
            self.city
                .worker(w)
                .map_or_else(|| w.to_string(), |x| format!("{} ({})", x.name, x.id))
        };
        let organ = |o: OrganId| {
            self.city
                .organ(o)
                .map_or_else(|| o.to_string(), |x| x.name.clone())
        };
        let t = &decision.trace;
        let mut s = match decision.outcome {
            Outcome::Assigned { worker: w } => {
                let mut s = format!(
                    "assigned to {}, found {} by {} among {} candidate(s)",
                    worker(w),
                    t.found,
                    t.policy,
                    t.candidates
                );
                if let Some(r) = t.runner_up {
                    s.push_str(&format!("; runner-up {}", worker(r)));
                }
                s
            }
            Outcome::Queued { organ: o } => {
                format!("queued at {}: no available worker with the role", organ(o))
            }
            Outcome::Ruling { organ: o } => format!(
                "sent to {} for a ruling after {} return(s)",
                organ(o),
                t.returns
            ),
            Outcome::Referred { department } => format!(
                "referred to {}",
                self.city
                    .department(department)
                    .map_or_else(|| department.to_string(), |d| d.name.clone())
            ),
        };
        let k = t.skipped;
        if k.no_role + k.unavailable + k.returned > 0 {
            s.push_str(&format!(
                "; passed over {} without the role, {} unavailable, {} who returned it",
                k.no_role, k.unavailable, k.returned
            ));
        }
        s.push_str("; ");
        s.push_str(&self.city.explain(&t.admission).to_string());
        s
    }
}
