//! The router: from an admitted case to one worker of the unit that holds it.

use super::cases::{CaseBook, CaseId, CaseRecord};
use super::decision::{
    Decision, DecisionRecord, Found, Name, Outcome, OutcomeKind, Skipped, Trace, write_decision,
};
use super::policy::{Candidate, Policy, PolicyKind, Ranker};
use super::state::{Board, ClaimFailure, WorkerState, WorkerStatus};
use crate::city::{
    Admission, CategoryId, City, Csr, Holder, OrganId, Platform, Priority, RoleSet, ServiceItemId,
    ServicePointId, UnitId, UnitKind, WorkerId, WorkerUnit,
};
use crate::grid::{CellId, Location, RingBuf};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The farthest ring of neighbouring cells the router may search.
pub const MAX_RING: u8 = 8;
/// The most returns a case may have before it goes to a ruling.
pub const MAX_RETURNS: u8 = 16;
/// The most (cell, worker) entries the candidate lists may hold (1 GiB of pairs while
/// building): beyond it, workers' home areas overlap far more than any real grid's.
const MAX_CANDIDATE_ENTRIES: usize = 1 << 27;
/// How often a decision searches again after losing a claim to a concurrent one.
const MAX_LOST_CLAIMS: usize = 8;
/// The version of [`RouterSnapshot`] this crate writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// How the router searches and chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// How many rings of neighbouring cells to search after the case's own cell, inside
    /// the holding community (0 to [`MAX_RING`]); also how far support reaches.
    pub max_ring: u8,
    /// After this many distinct workers returned (退单) a case, it goes to the street
    /// office's governance center for a ruling instead of being routed again (1 to
    /// [`MAX_RETURNS`]).
    pub max_returns: u8,
    /// The policy that chooses among the candidates of a level.
    pub policy: PolicyKind,
    /// Help across a border (支援): when the holder's own forces have nobody free, look for
    /// a worker of another unit within `max_ring` cells before queueing. Off by default:
    /// work goes only to the unit that holds it and to that unit's own people, and a
    /// decision that crosses a border says so in its trace ([`Found::Support`]).
    pub support: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            max_ring: 2,
            max_returns: 2,
            policy: PolicyKind::Nearest,
            support: false,
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
    /// The case is held by a worker already: it is released or returned first.
    #[error("case {case} is already held by {worker}")]
    AlreadyAssigned {
        /// The case.
        case: CaseId,
        /// Its worker.
        worker: WorkerId,
    },
    /// A return from a worker who does not hold the case.
    #[error("{worker} does not hold case {case}")]
    NotHolding {
        /// The case.
        case: CaseId,
        /// The worker named.
        worker: WorkerId,
    },
    /// A manual dispatch to a worker who is off duty, busy or at capacity, without an
    /// override.
    #[error("{worker} cannot take a case now ({why}); give a reason to override")]
    Unavailable {
        /// The worker.
        worker: WorkerId,
        /// `off duty or busy`, or `at capacity`.
        why: &'static str,
    },
    /// An override without a reason.
    #[error("an override needs a reason")]
    EmptyReason,
    /// A restore on a router that holds cases already.
    #[error("restore needs a router that holds no case ({cases} recorded)")]
    NotEmpty {
        /// Cases recorded.
        cases: usize,
    },
    /// A snapshot of another version.
    #[error("snapshot version {found}, this router reads version {expected}")]
    SnapshotVersion {
        /// The version found.
        found: u32,
        /// The version read.
        expected: u32,
    },
    /// A record naming something this router's city does not know.
    #[error("record names unknown {what} {id:?}")]
    UnknownName {
        /// `cell`, `category`, `worker`, `organ`, `department`.
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// A record that contradicts itself (an assigned outcome without a worker ...).
    #[error("record is inconsistent: {0}")]
    BadRecord(&'static str),
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

/// A case to route: which case, where it is, what it is and how urgent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseRequest {
    /// The case.
    pub case: CaseId,
    /// The cell it was located to.
    pub cell: CellId,
    /// Its category.
    pub category: CategoryId,
    /// Where it is (for the nearest-worker policy).
    pub location: Location,
    /// How urgent it is; the deadline comes from the category for this priority.
    pub priority: Priority,
}

impl CaseRequest {
    /// A case of normal priority.
    pub fn new(case: CaseId, cell: CellId, category: CategoryId, location: Location) -> Self {
        CaseRequest {
            case,
            cell,
            category,
            location,
            priority: Priority::Normal,
        }
    }

    /// The same case with another priority.
    pub fn with_priority(self, priority: Priority) -> Self {
        CaseRequest { priority, ..self }
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

/// All the router's live state, with every id written as the config's string id, so that
/// it can be kept in a file and restored into a router over another roster
/// ([`Router::snapshot`], [`Router::restore`], [`Router::rebuild`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// The last fair-rotation ticket handed out.
    pub ticket: u64,
    /// Every worker's state, in the city's worker order.
    pub workers: Vec<WorkerSnapshot>,
    /// Every case the router keeps: held by a worker, or returned at least once.
    pub cases: Vec<CaseSnapshot>,
}

/// One worker's live state in a [`RouterSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSnapshot {
    /// The worker's config id.
    pub id: String,
    /// Whether they take new cases.
    pub status: WorkerStatus,
    /// Cases they may hold at once.
    pub capacity: u32,
    /// Last known position, `[lon, lat]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 2]>,
    /// When it was reported (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_at_ms: Option<u64>,
    /// Fair-rotation ticket of their last case (0: none).
    pub last_assigned: u64,
}

/// One case the router keeps, in a [`RouterSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSnapshot {
    /// The case.
    pub case: CaseId,
    /// The worker holding it (config id), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Everyone who returned it, first first (config ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned_by: Vec<String>,
}

/// What a restore carried over, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Workers whose state was restored.
    pub workers: usize,
    /// Cases restored with their worker or returners.
    pub cases: usize,
    /// Workers in the snapshot that this router's city does not have.
    pub unknown_workers: Vec<String>,
    /// Cases held by a worker this city does not have: they hold nobody now and must be
    /// routed again (their returners are kept).
    pub orphaned_cases: Vec<CaseId>,
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
    fn new(returners: &[u32]) -> Excluded {
        let mut e = Excluded {
            ids: [u32::MAX; MAX_RETURNS as usize + MAX_LOST_CLAIMS],
            len: 0,
            returners: 0,
        };
        for &w in returners {
            e.push(w);
        }
        e.returners = e.len;
        e
    }

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

/// The force a worker belongs to, as one number: a community's unit index, or a street
/// office's platform force.
#[inline]
fn force_key(street_index: usize, platform: Platform) -> u32 {
    0x8000_0000 | (street_index * 4 + platform.index()) as u32
}

/// The force that holds a case: the community itself, or the street office's force for
/// the platform; `None` for a referral.
#[inline]
fn holder_force(holder: Holder, platform: Platform) -> Option<u32> {
    match holder {
        Holder::Community(c) => Some(c.0),
        Holder::Street { street, .. } => Some(force_key(street.index(), platform)),
        Holder::Department(_) => None,
    }
}

/// No force: staff of an organ or agency that serves no platform.
const NO_FORCE: u32 = u32::MAX;

/// Routes admitted cases to the workers of the unit that holds them, and keeps the
/// workers' live state and which case each holds.
///
/// ```text
///   case (cell, category) ─► admission ─► referred? ────────────────────► Referred(department)
///                                │ held by a community or a street office
///                                ▼
///             returned by max_returns workers? ─────────────────────────► Ruling(governance center)
///                                │
///   the holder's own people with a role the category needs, on duty, under capacity,
///   not a returner:
///     community-held: own cell ─► ring 1 ─► ... ─► ring max_ring (inside the community)
///                     ─► rest of the community
///     street-held:    the street office's force for the category's platform (its organs'
///                     staff and the agencies it manages on that platform)
///                                │ first level with any candidate: the policy picks one
///                                ▼
///                        claim (never over capacity) ─────────────────► Assigned(worker)
///                                │ nobody free (and no support allowed)
///                                ▼
///             the platform organ's queue ──────────────────────────────► Queued(organ)
/// ```
///
/// Thread-safe: share it behind an `Arc`; decisions, releases, returns and state updates
/// run concurrently. A worker's load never exceeds their capacity, a case is never held
/// by two workers, and releasing a case twice frees one slot.
///
/// # Complexity
/// A decision reads the cell's precomputed candidate list (the holding community's
/// workers of the cell and its rings, nearest ring first) or the street force's list, and
/// stops at the first level that has a candidate; no allocation (case records are
/// pre-sized to the workers' total capacity), two short locks (the case's shard, the
/// worker's street office).
#[derive(Debug)]
pub struct Router {
    city: Arc<City>,
    config: RouterConfig,
    policy: Ranker,
    board: Board,
    cases: CaseBook,
    roles: Vec<RoleSet>,
    /// Each worker's force ([`force_key`] or a community's unit index).
    force_of: Vec<u32>,
    /// Per cell: the cell's community's own workers, by ring inside the community.
    near: Csr<Near>,
    /// Per unit: a community's own workers, by id.
    community: Csr<u32>,
    /// Per street office and platform (`street * 4 + platform`): its force, by id.
    force: Csr<u32>,
    /// Per cell: every worker within `max_ring` cells, by ring (only with `support`).
    support: Csr<Near>,
    /// Per unit: the street office it lies in (itself for a street office), and that
    /// street office's organ for each platform (queues and rulings), so that a decision
    /// reads one small row instead of the city's unit records.
    street_organs: Vec<(UnitId, [OrganId; 4])>,
    /// Per category: what a decision needs of it, packed.
    categories: Vec<CategoryInfo>,
}

/// What a decision reads of a category.
#[derive(Debug, Clone, Copy)]
struct CategoryInfo {
    roles: RoleSet,
    platform: Platform,
    deadlines: [Option<Duration>; 4],
}

/// Where a case waits when nobody takes it.
enum Waiting {
    Department(crate::city::DepartmentId),
    Organs {
        street: UnitId,
        queue: OrganId,
        ruling: OrganId,
    },
}

impl Router {
    /// A router over `city` with one of the built-in policies.
    ///
    /// # Errors
    /// [`RoutingError::Config`] for a `max_ring` above [`MAX_RING`] or a `max_returns`
    /// outside 1 to [`MAX_RETURNS`]; [`RoutingError::TooLarge`] if the candidate lists
    /// would exceed 2^27 entries.
    pub fn new(city: Arc<City>, config: RouterConfig) -> Result<Router, RoutingError> {
        let policy = Ranker::Builtin(config.policy);
        Router::with_ranker(city, config, policy)
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
        Router::with_ranker(city, config, Ranker::Custom(policy))
    }

    fn with_ranker(
        city: Arc<City>,
        config: RouterConfig,
        policy: Ranker,
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
        let workers = city.workers();
        let force_of: Vec<u32> = workers
            .iter()
            .map(|w| match w.unit {
                WorkerUnit::Community(m) => m.0,
                WorkerUnit::Organ(o) => city
                    .organ(o)
                    .and_then(|o| o.platform.map(|p| force_key(o.street.index(), p)))
                    .unwrap_or(NO_FORCE),
                WorkerUnit::Agency(a) => city
                    .agency(a)
                    .and_then(|a| a.platform.map(|p| force_key(a.street.index(), p)))
                    .unwrap_or(NO_FORCE),
            })
            .collect();
        let near = community_rings(&city, &force_of, config.max_ring)?;
        let units = city.units().len();
        let mut community_pairs = Vec::new();
        let mut force_pairs = Vec::new();
        for (w, &f) in force_of.iter().enumerate() {
            if f == NO_FORCE {
                continue;
            }
            if f & 0x8000_0000 == 0 {
                community_pairs.push((f as usize, w as u32));
            } else {
                force_pairs.push(((f & 0x7fff_ffff) as usize, w as u32));
            }
        }
        let community = Csr::from_pairs(units, &community_pairs);
        let force = Csr::from_pairs(units * 4, &force_pairs);
        let support = if config.support {
            all_rings(&city, config.max_ring)?
        } else {
            Csr::from_pairs(0, &[])
        };
        // One lock per street office: a worker's is the street office they work in.
        let mut shard_of_unit = vec![0u32; units];
        for (k, street) in city.units_of(UnitKind::Street).enumerate() {
            shard_of_unit[street.index()] = k as u32;
        }
        let streets = city.units_of(UnitKind::Street).len();
        let board = Board::new(
            workers.iter().map(|w| {
                let shard = shard_of_unit.get(w.street.index()).copied().unwrap_or(0);
                (w.capacity, w.position, shard)
            }),
            streets,
        );
        let capacity: usize = workers.iter().map(|w| w.capacity as usize).sum();
        let roles = workers.iter().map(|w| w.roles).collect();
        let mut street_organs = Vec::with_capacity(units);
        for u in 0..units {
            let unit = UnitId(u as u32);
            let street = match city.unit(unit).map(|x| x.kind) {
                Some(UnitKind::Street) => unit,
                Some(UnitKind::Community) => city.unit(unit).and_then(|x| x.parent).unwrap_or(unit),
                _ => {
                    street_organs.push((unit, [OrganId(u32::MAX); 4]));
                    continue;
                }
            };
            let mut row = [OrganId(u32::MAX); 4];
            for p in Platform::ALL {
                row[p.index()] = city
                    .platform_organ(street, p)
                    .ok_or(RoutingError::NoOrgan {
                        street,
                        platform: p,
                    })?;
            }
            street_organs.push((street, row));
        }
        let categories = city
            .categories()
            .iter()
            .map(|c| CategoryInfo {
                roles: c.roles,
                platform: c.platform,
                deadlines: c.deadlines,
            })
            .collect();
        Ok(Router {
            city,
            config,
            policy,
            board,
            cases: CaseBook::new(capacity),
            roles,
            force_of,
            near,
            community,
            force,
            support,
            street_organs,
            categories,
        })
    }

    /// A router over `city` (a new roster, new duty lists) that carries over this
    /// router's state: every worker's status, capacity, position and load by their string
    /// id, every held case and every case's returners ([`Router::restore`]).
    ///
    /// # Errors
    /// As [`Router::with_policy`]. The policy is the configured built-in one.
    pub fn rebuild(
        &self,
        city: Arc<City>,
        config: RouterConfig,
    ) -> Result<(Router, RestoreReport), RoutingError> {
        let router = Router::new(city, config)?;
        let report = router.restore(&self.snapshot())?;
        Ok((router, report))
    }

    /// The city routed over.
    pub fn city(&self) -> &City {
        &self.city
    }

    /// The configuration in force.
    pub fn config(&self) -> RouterConfig {
        self.config
    }

    /// Routes a case and, if a worker is chosen, gives it to them: they hold it until
    /// [`Router::release`], [`Router::return_case`] or [`Router::forget`]. Every worker who
    /// returned the case before is passed over; after `max_returns` of them the case goes
    /// to a ruling.
    ///
    /// # Errors
    /// [`RoutingError::UnknownCell`] / [`RoutingError::UnknownCategory`] for ids outside
    /// the city, [`RoutingError::AlreadyAssigned`] for a case a worker holds now. A refused
    /// request changes nothing.
    pub fn route(&self, req: &CaseRequest) -> Result<Decision, RoutingError> {
        let admission = self.admit(req)?;
        self.route_with(req, admission)
    }

    /// Reads ahead what deciding cases reads first, for cases given as (cell, the unit
    /// holding it): each cell's candidate list and its first candidate's roles and slot,
    /// and the holding unit's organs. Changes nothing; the decisions that follow find
    /// those in cache. Each kind of read is issued in a loop of nothing else, so that the
    /// misses of many cases are in flight at once instead of one after another. Returns a
    /// value made of what was read, for the caller to drop.
    pub(crate) fn warm(&self, cases: &[(CellId, UnitId)]) -> u64 {
        const CHUNK: usize = crate::READ_AHEAD;
        let mut starts = [0u32; CHUNK];
        let mut firsts = [u32::MAX; CHUNK];
        let mut read = 0u64;
        for chunk in cases.chunks(CHUNK) {
            for (start, (cell, _)) in starts.iter_mut().zip(chunk) {
                *start = self.near.start(cell.index());
            }
            for (_, unit) in chunk {
                if let Some((street, _)) = self.street_organs.get(unit.index()) {
                    read ^= u64::from(street.0);
                }
            }
            for (first, &start) in firsts.iter_mut().zip(&starts[..chunk.len()]) {
                *first = self
                    .near
                    .item(start as usize)
                    .map_or(u32::MAX, |n| n.worker);
            }
            for &w in &firsts[..chunk.len()] {
                if let Some(roles) = self.roles.get(w as usize) {
                    read ^= roles.bits() as u64;
                }
            }
            for &w in &firsts[..chunk.len()] {
                if (w as usize) < self.board.len() {
                    read ^= u64::from(self.board.slot(WorkerId(w)).load());
                }
            }
        }
        read
    }

    /// [`Router::route`] for a case whose admission the caller has just found with
    /// [`City::admit`] for the request's cell and category (the engine's collect stage
    /// does, for every case): the duty table is not read a second time. An admission of
    /// another category is not trusted: the router admits the case itself.
    pub(crate) fn route_admitted(
        &self,
        req: &CaseRequest,
        admission: Admission,
    ) -> Result<Decision, RoutingError> {
        if admission.category != req.category {
            return self.route(req);
        }
        self.route_with(req, admission)
    }

    fn route_with(
        &self,
        req: &CaseRequest,
        admission: Admission,
    ) -> Result<Decision, RoutingError> {
        let mut book = self.cases.lock(req.case);
        // One probe of the shard for the look and the record both (a fresh case has none).
        match book.entry(req.case) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if let Some(worker) = o.get().worker() {
                    return Err(RoutingError::AlreadyAssigned {
                        case: req.case,
                        worker,
                    });
                }
                let decision = self.decide(req, admission, o.get())?;
                if let Some(w) = decision.worker() {
                    o.get_mut().set_worker(Some(w));
                }
                Ok(decision)
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let decision = self.decide(req, admission, &CaseRecord::default())?;
                if let Some(w) = decision.worker() {
                    v.insert(CaseRecord::default()).set_worker(Some(w));
                }
                Ok(decision)
            }
        }
    }

    /// A worker hands back a case they hold (退单): they are recorded as a returner (once,
    /// however often they return it), their slot is freed, and the case is routed again
    /// without any of its returners. After `max_returns` distinct returners it goes to the
    /// governance center for a ruling.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`], [`RoutingError::NotHolding`] if `worker` does not
    /// hold `req.case`, and those of [`Router::route`]. Nothing changes on an error.
    pub fn return_case(
        &self,
        req: &CaseRequest,
        worker: WorkerId,
    ) -> Result<Decision, RoutingError> {
        self.check_worker(worker)?;
        let admission = self.admit(req)?;
        let mut book = self.cases.lock(req.case);
        let mut record = match book.get(&req.case) {
            Some(r) if r.worker() == Some(worker) => r.clone(),
            _ => {
                return Err(RoutingError::NotHolding {
                    case: req.case,
                    worker,
                });
            }
        };
        // The breaker sends a case to a ruling at max_returns <= MAX_RETURNS, so the
        // record always has room for one more returner.
        record.add_returner(worker);
        record.set_worker(None);
        // Decide first (it may only fail for a city without organs, checked before any
        // change), then free the slot: the returner is excluded either way.
        let decision = self.decide_after(req, admission, &record, || {
            self.board.release(worker);
        })?;
        record.set_worker(decision.worker());
        book.insert(req.case, record);
        Ok(decision)
    }

    /// The case is finished with (resolved, closed, or taken off its worker): its worker's
    /// slot is freed. Idempotent per case: `Some(worker)` when this call freed a slot,
    /// `None` when the case held nobody (a second "finished", a case never assigned). The
    /// case's returners are remembered until [`Router::forget`].
    ///
    /// # Errors
    /// None today; the `Result` leaves room for a journal that can fail.
    pub fn release(&self, case: CaseId) -> Result<Option<WorkerId>, RoutingError> {
        let mut book = self.cases.lock(case);
        let Some(record) = book.get_mut(&case) else {
            return Ok(None);
        };
        let worker = record.worker();
        if let Some(w) = worker {
            record.set_worker(None);
            self.board.release(w);
        }
        if record.is_empty() {
            book.remove(&case);
        }
        Ok(worker)
    }

    /// The case reached a terminal state: everything the router keeps on it is dropped,
    /// and its worker (returned) is released if they still held it.
    pub fn forget(&self, case: CaseId) -> Option<WorkerId> {
        let record = self.cases.lock(case).remove(&case)?;
        let worker = record.worker();
        if let Some(w) = worker {
            self.board.release(w);
        }
        worker
    }

    /// The command center's manual dispatch (after a ruling, or whenever it decides):
    /// gives the case to `worker`. The worker must be on duty and under capacity unless
    /// `override_reason` says why not (the reason itself belongs in the case's history).
    /// The trace says [`Found::Manual`].
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`], [`RoutingError::EmptyReason`] for a blank reason,
    /// [`RoutingError::AlreadyAssigned`], [`RoutingError::Unavailable`], and those of
    /// [`Router::route`]. Nothing changes on an error.
    pub fn assign_to(
        &self,
        req: &CaseRequest,
        worker: WorkerId,
        override_reason: Option<&str>,
    ) -> Result<Decision, RoutingError> {
        self.check_worker(worker)?;
        if override_reason.is_some_and(|r| r.trim().is_empty()) {
            return Err(RoutingError::EmptyReason);
        }
        let admission = self.admit(req)?;
        self.assign_with(req, worker, override_reason, admission)
    }

    /// [`Router::assign_to`] for a case whose admission the caller has just found with
    /// [`City::admit`] for the request's cell and category; one of another category is not
    /// trusted.
    pub(crate) fn assign_admitted(
        &self,
        req: &CaseRequest,
        worker: WorkerId,
        admission: Admission,
    ) -> Result<Decision, RoutingError> {
        if admission.category != req.category {
            return self.assign_to(req, worker, None);
        }
        self.check_worker(worker)?;
        self.assign_with(req, worker, None, admission)
    }

    fn assign_with(
        &self,
        req: &CaseRequest,
        worker: WorkerId,
        override_reason: Option<&str>,
        admission: Admission,
    ) -> Result<Decision, RoutingError> {
        let mut book = self.cases.lock(req.case);
        let record = book.get(&req.case).cloned().unwrap_or_default();
        if let Some(holder) = record.worker() {
            return Err(RoutingError::AlreadyAssigned {
                case: req.case,
                worker: holder,
            });
        }
        if override_reason.is_some() {
            self.board.claim_forced(worker, true);
        } else {
            self.board
                .claim(worker)
                .map_err(|f| RoutingError::Unavailable {
                    worker,
                    why: match f {
                        ClaimFailure::NotOnDuty => "off duty or busy",
                        ClaimFailure::Full => "at capacity",
                    },
                })?;
        }
        book.entry(req.case).or_default().set_worker(Some(worker));
        let mut trace = self.trace(admission, &record);
        trace.found = Found::Manual;
        Ok(self.decision(req, Outcome::Assigned { worker }, trace))
    }

    /// Whether `worker` is one of the holder's own people for a case of `category` in
    /// `cell` and has a role the category needs: the rule every decision searches by (a
    /// community's own people, or the street office's force for the category's platform).
    /// False for ids outside the city and for referred cases.
    pub fn may_take(&self, worker: WorkerId, cell: CellId, category: CategoryId) -> bool {
        self.city
            .admit(cell, category)
            .is_ok_and(|admission| self.may_take_admitted(worker, admission))
    }

    /// [`Router::may_take`] for a case whose admission the caller has found with
    /// [`City::admit`].
    pub(crate) fn may_take_admitted(&self, worker: WorkerId, admission: Admission) -> bool {
        let (Some(&force), Some(info)) = (
            self.force_of.get(worker.index()),
            self.categories.get(admission.category.index()),
        ) else {
            return false;
        };
        holder_force(admission.holder, info.platform) == Some(force)
            && self.roles[worker.index()].intersects(info.roles)
    }

    /// The worker holding `case` now, if any.
    pub fn holder(&self, case: CaseId) -> Option<WorkerId> {
        self.cases.lock(case).get(&case).and_then(|r| r.worker())
    }

    /// How many distinct workers have returned `case`.
    pub fn returns(&self, case: CaseId) -> u8 {
        self.cases
            .lock(case)
            .get(&case)
            .map_or(0, |r| r.returners().len() as u8)
    }

    /// The cases a worker holds now, by id. Reads every shard: for inspection, not for
    /// the hot path.
    pub fn held_by(&self, worker: WorkerId) -> Vec<CaseId> {
        self.cases
            .all()
            .into_iter()
            .filter(|(_, r)| r.worker() == Some(worker))
            .map(|(c, _)| c)
            .collect()
    }

    fn admit(&self, req: &CaseRequest) -> Result<Admission, RoutingError> {
        if self.city.category(req.category).is_none() {
            return Err(RoutingError::UnknownCategory(req.category));
        }
        self.city
            .admit(req.cell, req.category)
            .map_err(|_| RoutingError::UnknownCell(req.cell))
    }

    fn trace(&self, admission: Admission, record: &CaseRecord) -> Trace {
        Trace {
            admission,
            found: Found::Nowhere,
            policy: self.policy.name(),
            candidates: 0,
            runner_up: None,
            skipped: Skipped::default(),
            returns: record.returners().len() as u8,
            lost_claims: 0,
        }
    }

    fn decision(&self, req: &CaseRequest, outcome: Outcome, trace: Trace) -> Decision {
        Decision {
            case: req.case,
            cell: req.cell,
            outcome,
            trace,
            deadline: self
                .categories
                .get(req.category.index())
                .and_then(|c| c.deadlines[req.priority.index()]),
        }
    }

    /// Where a case of `admission` and `category` waits: its holder's queue organ (the
    /// holding organ, or the community's street organ for the category's platform) and the
    /// street's governance organ for a ruling; or the department it is referred to.
    fn waiting_organs(
        &self,
        admission: Admission,
        category: CategoryInfo,
    ) -> Result<Waiting, RoutingError> {
        let (unit, queue) = match admission.holder {
            Holder::Department(department) => return Ok(Waiting::Department(department)),
            Holder::Community(community) => (community, None),
            Holder::Street { street, organ } => (street, Some(organ)),
        };
        let &(street, organs) =
            self.street_organs
                .get(unit.index())
                .ok_or(RoutingError::NoOrgan {
                    street: unit,
                    platform: category.platform,
                })?;
        Ok(Waiting::Organs {
            street,
            queue: queue.unwrap_or(organs[category.platform.index()]),
            ruling: organs[Platform::Governance.index()],
        })
    }

    /// The organ whose queue a case of `category` in `cell` waits in, and the organ that
    /// rules on it after too many returns: what [`Router::route`] answers as
    /// [`Outcome::Queued`] and [`Outcome::Ruling`]. `None` for a referral or unknown ids.
    pub(crate) fn queue_and_ruling(
        &self,
        cell: CellId,
        category: CategoryId,
    ) -> Option<(OrganId, OrganId)> {
        let info = *self.categories.get(category.index())?;
        let admission = self.city.admit(cell, category).ok()?;
        match self.waiting_organs(admission, info).ok()? {
            Waiting::Organs { queue, ruling, .. } => Some((queue, ruling)),
            Waiting::Department(_) => None,
        }
    }

    /// Puts back what the router knew of an open case, read from the case's own history
    /// (recovery from a journal): the worker holding it, counted in their load whatever
    /// their capacity now and without a new fair-rotation ticket, and its returners.
    /// Replaces what the router kept on the case.
    pub(crate) fn reinstate(
        &self,
        case: CaseId,
        worker: Option<WorkerId>,
        returners: impl IntoIterator<Item = WorkerId>,
    ) {
        let mut record = CaseRecord::default();
        for r in returners {
            if r.index() < self.board.len() {
                record.add_returner(r);
            }
        }
        if let Some(w) = worker.filter(|w| w.index() < self.board.len()) {
            self.board.claim_forced(w, false);
            record.set_worker(Some(w));
        }
        let mut book = self.cases.lock(case);
        if let Some(old) = book.remove(&case)
            && let Some(w) = old.worker()
        {
            self.board.release(w);
        }
        if !record.is_empty() {
            book.insert(case, record);
        }
    }

    /// The fair-rotation ticket and every worker's place in it, for an engine snapshot.
    pub(crate) fn tickets(&self) -> (u64, Vec<u64>) {
        let last = (0..self.board.len())
            .map(|w| self.board.state(WorkerId(w as u32)).last_assigned)
            .collect();
        (self.board.ticket(), last)
    }

    /// Puts back what [`Router::tickets`] gave.
    pub(crate) fn set_tickets(&self, ticket: u64, last: &[u64]) {
        for (w, &t) in last.iter().enumerate().take(self.board.len()) {
            self.board.set_last_assigned(WorkerId(w as u32), t);
        }
        self.board.raise_ticket(ticket);
    }

    fn decide(
        &self,
        req: &CaseRequest,
        admission: Admission,
        record: &CaseRecord,
    ) -> Result<Decision, RoutingError> {
        self.decide_after(req, admission, record, || {})
    }

    /// The decision for a case nobody holds; `before_claim` runs once everything that can
    /// fail has been checked.
    fn decide_after(
        &self,
        req: &CaseRequest,
        admission: Admission,
        record: &CaseRecord,
        before_claim: impl FnOnce(),
    ) -> Result<Decision, RoutingError> {
        let category = *self
            .categories
            .get(req.category.index())
            .ok_or(RoutingError::UnknownCategory(req.category))?;
        let mut trace = self.trace(admission, record);
        let (street, queue, ruling) = match self.waiting_organs(admission, category)? {
            Waiting::Department(department) => {
                before_claim();
                return Ok(self.decision(req, Outcome::Referred { department }, trace));
            }
            Waiting::Organs {
                street,
                queue,
                ruling,
            } => (street, queue, ruling),
        };
        if record.returners().len() >= usize::from(self.config.max_returns) {
            let organ = ruling;
            before_claim();
            return Ok(self.decision(req, Outcome::Ruling { organ }, trace));
        }
        before_claim();
        let mut excluded = Excluded::new(record.returners());
        let cos_lat = req.location.lat().to_radians().cos();
        // Referrals returned above; `street` is the holder's (or the community's) street.
        let holder_force = holder_force(admission.holder, category.platform)
            .unwrap_or_else(|| force_key(street.index(), category.platform));
        loop {
            let (found, best, skipped) =
                self.search(req, category.roles, cos_lat, holder_force, &excluded);
            trace.found = found;
            trace.skipped = skipped;
            trace.candidates = best.count;
            trace.runner_up = best.second.map(|(_, w)| WorkerId(w));
            let Some((_, w)) = best.first else {
                trace.found = Found::Nowhere;
                return Ok(self.decision(req, Outcome::Queued { organ: queue }, trace));
            };
            match self.board.claim(WorkerId(w)) {
                Ok(()) => {
                    let worker = WorkerId(w);
                    return Ok(self.decision(req, Outcome::Assigned { worker }, trace));
                }
                Err(ClaimFailure::Full | ClaimFailure::NotOnDuty) => {
                    trace.lost_claims += 1;
                    if usize::from(trace.lost_claims) > MAX_LOST_CLAIMS {
                        trace.found = Found::Nowhere;
                        return Ok(self.decision(req, Outcome::Queued { organ: queue }, trace));
                    }
                    excluded.push(w);
                }
            }
        }
    }

    /// The candidate search: the first level with any available candidate among the
    /// holder's own people (then, with support, beyond them), and the best two there.
    #[inline]
    fn search(
        &self,
        req: &CaseRequest,
        needed: RoleSet,
        cos_lat: f64,
        holder_force: u32,
        excluded: &Excluded,
    ) -> (Found, Best, Skipped) {
        let mut skipped = Skipped::default();
        let mut best = Best::default();
        let consider = |w: u32, best: &mut Best, skipped: &mut Skipped| {
            self.consider(w, req, needed, cos_lat, excluded, best, skipped)
        };
        if holder_force & 0x8000_0000 == 0 {
            // Community-held: the community's own people, ring by ring inside it.
            let list = self.near.row(req.cell.index());
            let mut i = 0;
            while i < list.len() {
                let ring = list[i].ring;
                while i < list.len() && list[i].ring == ring {
                    consider(list[i].worker, &mut best, &mut skipped);
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
            let ringed = list.len();
            let members = self.community.row(holder_force as usize);
            if members.len() > ringed {
                for &w in members {
                    if !list.iter().any(|n| n.worker == w) {
                        consider(w, &mut best, &mut skipped);
                    }
                }
            }
            if best.first.is_some() {
                return (Found::Community, best, skipped);
            }
        } else {
            for &w in self.force.row((holder_force & 0x7fff_ffff) as usize) {
                consider(w, &mut best, &mut skipped);
            }
            if best.first.is_some() {
                return (Found::Force, best, skipped);
            }
        }
        if self.config.support {
            let list = self.support.row(req.cell.index());
            let mut i = 0;
            while i < list.len() {
                let ring = list[i].ring;
                while i < list.len() && list[i].ring == ring {
                    let w = list[i].worker;
                    if self.force_of[w as usize] != holder_force {
                        consider(w, &mut best, &mut skipped);
                    }
                    i += 1;
                }
                if best.first.is_some() {
                    return (Found::Support(ring), best, skipped);
                }
            }
        }
        (Found::Nowhere, best, skipped)
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn consider(
        &self,
        w: u32,
        req: &CaseRequest,
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
            case: req.location,
            cos_lat,
        };
        best.offer((self.policy.rank(&candidate), w));
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

    /// Records a worker's position and when it was reported (ms since the Unix epoch), so
    /// that a snapshot keeps both.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`].
    pub fn set_position_at(
        &self,
        worker: WorkerId,
        position: Location,
        at_ms: u64,
    ) -> Result<(), RoutingError> {
        self.check_worker(worker)?;
        self.board.set_position_at(worker, position, at_ms);
        Ok(())
    }

    /// Changes how many cases a worker may hold at once. Lowering it below their load
    /// takes nothing from them; they get no new case until under it again.
    ///
    /// # Errors
    /// [`RoutingError::UnknownWorker`], [`RoutingError::Capacity`] for 0 or more than
    /// [`MAX_CAPACITY`](crate::config::MAX_CAPACITY).
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

    /// Everything the router keeps, with string ids: every worker's state and every case
    /// it knows (held, or returned). Each case shard and each worker is read under its
    /// lock; taken while decisions run, it is a consistent view of each case and each
    /// worker, not of the whole at one instant.
    pub fn snapshot(&self) -> RouterSnapshot {
        let workers = self
            .city
            .workers()
            .iter()
            .enumerate()
            .map(|(w, worker)| {
                let s = self.board.state(WorkerId(w as u32));
                WorkerSnapshot {
                    id: worker.id.clone(),
                    status: s.status,
                    capacity: s.capacity,
                    position: s.position.map(|p| [p.lon(), p.lat()]),
                    position_at_ms: s.position_at_ms,
                    last_assigned: s.last_assigned,
                }
            })
            .collect();
        let name = |w: u32| self.worker_name(WorkerId(w));
        let cases = self
            .cases
            .all()
            .into_iter()
            .map(|(case, r)| CaseSnapshot {
                case,
                worker: r.worker().map(|w| name(w.0)),
                returned_by: r.returners().iter().map(|&w| name(w)).collect(),
            })
            .collect();
        RouterSnapshot {
            version: SNAPSHOT_VERSION,
            ticket: self.board.ticket(),
            workers,
            cases,
        }
    }

    /// Loads a snapshot into this router, which must hold no case yet (a new router, over
    /// the same city or a new roster). Workers are matched by string id; each gets the
    /// snapshot's status, capacity, position and ticket, and every case they held (whatever
    /// their capacity now). Workers the city no longer has are listed, and the cases they
    /// held come back orphaned: held by nobody, their returners kept, to be routed again.
    ///
    /// # Errors
    /// [`RoutingError::SnapshotVersion`], [`RoutingError::NotEmpty`]; nothing changes on
    /// an error.
    pub fn restore(&self, snapshot: &RouterSnapshot) -> Result<RestoreReport, RoutingError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(RoutingError::SnapshotVersion {
                found: snapshot.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        if !self.cases.is_empty() {
            return Err(RoutingError::NotEmpty {
                cases: self.cases.all().len(),
            });
        }
        let mut report = RestoreReport::default();
        for w in &snapshot.workers {
            let Some(id) = self.city.worker_id(&w.id) else {
                report.unknown_workers.push(w.id.clone());
                continue;
            };
            self.board.set_status(id, w.status);
            if (1..=crate::city::MAX_CAPACITY).contains(&w.capacity) {
                self.board.set_capacity(id, w.capacity);
            }
            if let Some(p) = w
                .position
                .and_then(|[lon, lat]| Location::new(lon, lat).ok())
            {
                self.board
                    .set_position_at(id, p, w.position_at_ms.unwrap_or(0));
            }
            self.board.set_last_assigned(id, w.last_assigned);
            report.workers += 1;
        }
        for c in &snapshot.cases {
            let mut record = CaseRecord::default();
            for r in &c.returned_by {
                if let Some(id) = self.city.worker_id(r) {
                    record.add_returner(id);
                }
            }
            match c.worker.as_deref().map(|w| (w, self.city.worker_id(w))) {
                Some((_, Some(w))) => {
                    self.board.claim_forced(w, false);
                    record.set_worker(Some(w));
                }
                Some((_, None)) => report.orphaned_cases.push(c.case),
                None => {}
            }
            if !record.is_empty() {
                self.cases.lock(c.case).insert(c.case, record);
                report.cases += 1;
            }
        }
        self.board.raise_ticket(snapshot.ticket);
        Ok(report)
    }

    /// A decision with every id as the config's string id, for a journal or a log.
    pub fn record(&self, d: &Decision) -> DecisionRecord {
        let city = &self.city;
        let organ = |o: OrganId| {
            city.organ(o)
                .map_or_else(|| o.to_string(), |x| x.id.clone())
        };
        let department = |d: crate::city::DepartmentId| {
            city.department(d)
                .map_or_else(|| d.to_string(), |x| x.id.clone())
        };
        let unit = |u: UnitId| city.unit(u).map_or_else(|| u.to_string(), |x| x.id.clone());
        let t = &d.trace;
        let (mut worker, mut org, mut dept) = (None, None, None);
        match d.outcome {
            Outcome::Assigned { worker: w } => worker = Some(self.worker_name(w)),
            Outcome::Queued { organ: o } | Outcome::Ruling { organ: o } => org = Some(organ(o)),
            Outcome::Referred { department: x } => dept = Some(department(x)),
        }
        DecisionRecord {
            case: d.case,
            cell: city
                .grid()
                .cell(d.cell)
                .map_or_else(|| d.cell.to_string(), |c| c.name.clone()),
            category: city
                .category(t.admission.category)
                .map_or_else(|| t.admission.category.to_string(), |c| c.code.clone()),
            holder: match t.admission.holder {
                Holder::Community(u) | Holder::Street { street: u, .. } => unit(u),
                Holder::Department(x) => department(x),
            },
            outcome: d.outcome.kind(),
            worker,
            organ: org,
            department: dept,
            found: t.found,
            policy: t.policy.to_string(),
            candidates: t.candidates,
            runner_up: t.runner_up.map(|w| self.worker_name(w)),
            skipped: t.skipped,
            returns: t.returns,
            lost_claims: t.lost_claims,
            deadline_s: d.deadline.map(|x| x.as_secs()),
        }
    }

    /// A decision back from its record, on this router's city (the admission is worked
    /// out again from the cell and category). Changes no state: replaying what the
    /// decision did (the worker's load) is [`Router::restore`]'s or the caller's business.
    ///
    /// # Errors
    /// [`RoutingError::UnknownName`] for an id the city does not know,
    /// [`RoutingError::BadRecord`] for an outcome without its worker, organ or department.
    pub fn decision_from_record(&self, r: &DecisionRecord) -> Result<Decision, RoutingError> {
        let city = &self.city;
        let unknown = |what: &'static str, id: &str| RoutingError::UnknownName {
            what,
            id: id.to_string(),
        };
        let cell = city.grid().id_of(&r.cell).ok_or(unknown("cell", &r.cell))?;
        let category = city
            .category_id(&r.category)
            .ok_or(unknown("category", &r.category))?;
        let worker = |w: &Option<String>| -> Result<WorkerId, RoutingError> {
            let w = w.as_deref().ok_or(RoutingError::BadRecord("no worker"))?;
            city.worker_id(w).ok_or(unknown("worker", w))
        };
        let organ = || -> Result<OrganId, RoutingError> {
            let o = r
                .organ
                .as_deref()
                .ok_or(RoutingError::BadRecord("no organ"))?;
            city.organ_id(o).ok_or(unknown("organ", o))
        };
        let outcome = match r.outcome {
            OutcomeKind::Assigned => Outcome::Assigned {
                worker: worker(&r.worker)?,
            },
            OutcomeKind::Queued => Outcome::Queued { organ: organ()? },
            OutcomeKind::Ruling => Outcome::Ruling { organ: organ()? },
            OutcomeKind::Referred => {
                let d = r
                    .department
                    .as_deref()
                    .ok_or(RoutingError::BadRecord("no department"))?;
                Outcome::Referred {
                    department: city.department_id(d).ok_or(unknown("department", d))?,
                }
            }
        };
        let admission = city
            .admit(cell, category)
            .map_err(|_| RoutingError::UnknownCell(cell))?;
        let runner_up = match &r.runner_up {
            Some(_) => Some(worker(&r.runner_up)?),
            None => None,
        };
        Ok(Decision {
            case: r.case,
            cell,
            outcome,
            trace: Trace {
                admission,
                found: r.found,
                policy: match r.policy.as_str() {
                    "nearest" => "nearest",
                    "least loaded" => "least loaded",
                    "fair rotation" => "fair rotation",
                    _ => "custom",
                },
                candidates: r.candidates,
                runner_up,
                skipped: r.skipped,
                returns: r.returns,
                lost_claims: r.lost_claims,
            },
            deadline: r.deadline_s.map(Duration::from_secs),
        })
    }

    fn worker_name(&self, w: WorkerId) -> String {
        self.city
            .worker(w)
            .map_or_else(|| w.to_string(), |x| x.id.clone())
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
        let city = &self.city;
        let name = |n: Name| match n {
            Name::Worker(w) => city
                .worker(w)
                .map_or_else(|| w.to_string(), |x| format!("{} ({})", x.name, x.id)),
            Name::Organ(o) => city
                .organ(o)
                .map_or_else(|| o.to_string(), |x| x.name.clone()),
            Name::Department(d) => city
                .department(d)
                .map_or_else(|| d.to_string(), |x| x.name.clone()),
        };
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write_decision(&mut s, decision, &name);
        s.push_str("; ");
        s.push_str(&city.explain(&decision.trace.admission).to_string());
        s
    }
}

/// Per cell: the workers of the cell's community whose home cells lie within `max_ring`
/// steps of it, the steps taken inside the community; each worker once, at their nearest
/// ring; nearest ring first, then by id.
fn community_rings(city: &City, force_of: &[u32], max_ring: u8) -> Result<Csr<Near>, RoutingError> {
    let grid = city.grid();
    let mut pairs: Vec<(usize, Near)> = Vec::new();
    let mut seen = vec![u32::MAX; force_of.len()];
    let mut stamp = vec![u32::MAX; grid.len()];
    let mut frontier: Vec<CellId> = Vec::new();
    let mut next: Vec<CellId> = Vec::new();
    let mut row: Vec<Near> = Vec::new();
    for cell in grid.ids() {
        let Some(community) = city.community_of(cell) else {
            continue;
        };
        let mark = cell.index() as u32;
        row.clear();
        frontier.clear();
        frontier.push(cell);
        stamp[cell.index()] = mark;
        for ring in 0..=max_ring {
            for &c in &frontier {
                for &w in city.workers_in(c) {
                    if force_of[w.index()] == community.0 && seen[w.index()] != mark {
                        seen[w.index()] = mark;
                        row.push(Near { ring, worker: w.0 });
                    }
                }
            }
            if ring == max_ring {
                break;
            }
            next.clear();
            for &c in &frontier {
                for &n in grid.neighbours(c) {
                    if stamp[n.index()] != mark && city.community_of(n) == Some(community) {
                        stamp[n.index()] = mark;
                        next.push(n);
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
            if frontier.is_empty() {
                break;
            }
        }
        push_row(&mut pairs, cell, &mut row)?;
    }
    Ok(Csr::from_pairs(grid.len(), &pairs))
}

/// Sorts a cell's candidate row (nearest ring first, then by id) and appends it to the
/// pairs, refusing lists that would not fit in memory.
fn push_row(
    pairs: &mut Vec<(usize, Near)>,
    cell: CellId,
    row: &mut [Near],
) -> Result<(), RoutingError> {
    row.sort_unstable();
    pairs.extend(row.iter().map(|&n| (cell.index(), n)));
    if pairs.len() > MAX_CANDIDATE_ENTRIES {
        return Err(RoutingError::TooLarge {
            entries: pairs.len(),
        });
    }
    Ok(())
}

/// Per cell: every worker with a home cell within `max_ring` steps, across any border;
/// each once at their nearest ring; nearest ring first, then by id. Only for support.
fn all_rings(city: &City, max_ring: u8) -> Result<Csr<Near>, RoutingError> {
    let grid = city.grid();
    let mut pairs: Vec<(usize, Near)> = Vec::new();
    let mut seen = vec![u32::MAX; city.workers().len()];
    let mut buf = RingBuf::new();
    let mut row: Vec<Near> = Vec::new();
    for cell in grid.ids() {
        grid.rings_into(cell, usize::from(max_ring), &mut buf);
        row.clear();
        for (ring, cells) in buf.rings().enumerate() {
            for &c in cells {
                for &w in city.workers_in(c) {
                    if seen[w.index()] != cell.index() as u32 {
                        seen[w.index()] = cell.index() as u32;
                        row.push(Near {
                            ring: ring as u8,
                            worker: w.0,
                        });
                    }
                }
            }
        }
        push_row(&mut pairs, cell, &mut row)?;
    }
    Ok(Csr::from_pairs(grid.len(), &pairs))
}
