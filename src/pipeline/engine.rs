//! The engine: its builder, its shared state, the stage threads and the commands.

use super::CaseId;
use super::case::{
    MAX_CASES, MAX_DESCRIPTION, NONE32, Rec, Report, Reporter, Satisfaction, Source, Store,
};
use super::center::{Bus, CaseEvent, Snapshot, Subscription};
use super::collect::Dedupe;
use super::lifecycle::{CaseState, LifecycleError, Transition};
use super::port::{Port, Req};
use super::{assign, center, collect, feedback, handle};
use crate::city::{City, OrganId, WorkerId};
use crate::clock::{Clock, SystemClock, Timestamp, duration_ms};
use crate::routing::{Router, RouterConfig, RoutingError, WorkerStatus};
use crossbeam_channel::{Sender, TrySendError, bounded};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the engine batches, waits and merges.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The most cases a stage takes from its queue at once.
    pub batch: usize,
    /// Batches a stage's input channel holds before its senders wait (or `try_submit`
    /// answers `Full`).
    pub channel_batches: usize,
    /// How new reports reach the router. 0: one collect thread feeds the assign thread
    /// (two stages in a pipeline), so cases are routed in the order of their ids and a
    /// run on a simulated clock is repeatable decision for decision. N ≥ 1: N
    /// dispatcher threads each take a whole batch, collect it and route it, in parallel
    /// (the router is safe to share); decisions on batches that run at the same time may
    /// then come in either order, so which of two equally good workers gets which case
    /// may change from run to run. Follow-ups (queues, returns, reroutes) stay with the
    /// assign thread in both. The default, 0, is repeatable; use about as many
    /// dispatchers as cores for throughput.
    pub dispatchers: usize,
    /// Two reports of one category closer than this (metres) ...
    pub dedupe_distance_m: f64,
    /// ... and closer in time than this are one case: the later is merged into the earlier
    /// while that one is open.
    pub dedupe_window: Duration,
    /// A dispatched case not accepted within this is taken back and routed again.
    pub accept_within: Duration,
    /// A reminder (催办) goes out when this fraction of the deadline has passed.
    pub remind_at: f64,
    /// The most levels a case is escalated (督办), one per deadline period overdue.
    pub max_escalation: u8,
    /// Reports dated further in the future than this are refused.
    pub max_clock_skew: Duration,
    /// How often the timer thread looks at deadlines (real-time clocks only).
    pub tick_every: Duration,
    /// Events a subscriber's buffer holds before it starts missing them.
    pub subscriber_buffer: usize,
    /// With a journal: the engine writes a snapshot by itself (see
    /// [`Engine::checkpoint`]) once this many records have been appended since the last
    /// one, or eight per case the last one held if that is more (a snapshot costs in
    /// proportion to its cases), so that recovery stays bounded as the journal grows.
    /// 0: only when asked.
    pub checkpoint_every: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch: 1024,
            channel_batches: 64,
            dispatchers: 0,
            dedupe_distance_m: 30.0,
            dedupe_window: Duration::from_secs(3600),
            accept_within: Duration::from_secs(30 * 60),
            remind_at: 0.8,
            max_escalation: 3,
            max_clock_skew: Duration::from_secs(300),
            tick_every: Duration::from_secs(1),
            subscriber_buffer: 4096,
            checkpoint_every: 1 << 22,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The router refused its config.
    #[error(transparent)]
    Routing(#[from] RoutingError),
    /// An engine setting out of range.
    #[error("engine config: {field} {why}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The operating system would not start a stage thread.
    #[error("could not start the {0} thread")]
    Thread(&'static str),
    /// The journal holds what this engine cannot replay: a record that does not decode,
    /// a case of a category the city does not have, a transition that does not follow
    /// from where its case stands. Nothing was started.
    #[error("journal replay at position {position}: {why}")]
    Replay {
        /// The record's position (`u64::MAX` when the problem is not one record's).
        position: u64,
        /// What is wrong.
        why: String,
    },
    /// The archive could not be written or read.
    #[error("{0}")]
    Archive(String),
    /// The journal could not be read.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// Why a report was not taken. A refused report changes nothing; where the report is handed
/// back, it is in the error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The category is not in the city's catalogue.
    #[error("unknown category {0}")]
    UnknownCategory(crate::city::CategoryId),
    /// The reporting worker is not in the city.
    #[error("unknown worker {0}")]
    UnknownWorker(WorkerId),
    /// The reporting department is not in the city.
    #[error("unknown department {0}")]
    UnknownDepartment(crate::city::DepartmentId),
    /// Dated too far in the future.
    #[error("report dated {at}, more than the allowed skew after now ({now})")]
    InTheFuture {
        /// The report's time.
        at: Timestamp,
        /// The engine's time.
        now: Timestamp,
    },
    /// The description is too long.
    #[error("description of {0} bytes (at most {MAX_DESCRIPTION})")]
    DescriptionTooLong(usize),
    /// The reporter does not fit the source (a patrol report by someone who is not a grid
    /// worker, a referral not by a department).
    #[error("a {from:?} report cannot come from {reporter:?}")]
    ReporterMismatch {
        /// The report's source.
        from: Source,
        /// The reporter.
        reporter: Reporter,
    },
    /// On-the-spot handling asked for a report that is not a worker's patrol report.
    #[error("on-the-spot handling is only for a grid worker's patrol report")]
    NotOnPatrol,
    /// The store is full.
    #[error("the case store is full")]
    StoreFull,
    /// The intake is full (backpressure); the report is handed back.
    #[error("the intake is full")]
    Full(Box<Report>),
    /// The engine has shut down; the report is handed back.
    #[error("the engine has shut down")]
    ShutDown(Box<Report>),
    /// The journal refused the write (now or earlier): the report was not taken, and the
    /// engine takes nothing more until it is rebuilt on a working journal.
    #[error("journal: {0}")]
    Journal(crate::journal::JournalError),
}

/// Who verifies a resolved case (核查).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verifier {
    /// The person who reported it.
    Reporter,
    /// An inspector, by the application's own numbering.
    Inspector(u32),
    /// Another grid worker (never the one who resolved it).
    Worker(WorkerId),
    /// The command center.
    Center,
}

/// Something done to a case by a person: a worker, an inspector, the center.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// The dispatched worker accepts the case.
    Accept {
        /// The case.
        case: CaseId,
        /// The worker.
        worker: WorkerId,
    },
    /// The worker hands the case back (退单); it is routed again without them.
    Return {
        /// The case.
        case: CaseId,
        /// The worker.
        worker: WorkerId,
        /// Why, if the worker said (kept in the case's notes).
        reason: Option<String>,
    },
    /// The worker reports the case handled.
    Resolve {
        /// The case.
        case: CaseId,
        /// The worker.
        worker: WorkerId,
    },
    /// Verification (核查): passed, or failed and reopened (返工) to the same unit.
    Verify {
        /// The case.
        case: CaseId,
        /// Who verifies.
        by: Verifier,
        /// Whether it passed.
        passed: bool,
    },
    /// Closes a verified case (结案), with the reporter's verdict if they gave one.
    Close {
        /// The case.
        case: CaseId,
        /// 满意 / 基本满意 / 不满意.
        satisfaction: Option<Satisfaction>,
    },
    /// The center reopens a verified case.
    Reopen {
        /// The case.
        case: CaseId,
        /// Why.
        reason: String,
    },
    /// The center gives the case to a worker by hand (after a ruling, or any time it waits).
    Dispatch {
        /// The case.
        case: CaseId,
        /// The worker.
        worker: WorkerId,
        /// Give it even above the worker's capacity, for this reason.
        over_capacity: Option<String>,
    },
    /// Moves the deadline (延期).
    Extend {
        /// The case.
        case: CaseId,
        /// By how much.
        by: Duration,
        /// Why.
        reason: String,
    },
    /// Stops the case's clock (缓办).
    Suspend {
        /// The case.
        case: CaseId,
        /// Why.
        reason: String,
    },
    /// Starts the case's clock again.
    Resume {
        /// The case.
        case: CaseId,
    },
}

impl Command {
    /// The case it acts on.
    pub fn case(&self) -> CaseId {
        match self {
            Command::Accept { case, .. }
            | Command::Return { case, .. }
            | Command::Resolve { case, .. }
            | Command::Verify { case, .. }
            | Command::Close { case, .. }
            | Command::Reopen { case, .. }
            | Command::Dispatch { case, .. }
            | Command::Extend { case, .. }
            | Command::Suspend { case, .. }
            | Command::Resume { case } => *case,
        }
    }
}

/// Where a case is, in brief: what a driver needs to act on many cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CaseBrief {
    /// The case.
    pub id: CaseId,
    /// Its state.
    pub state: CaseState,
    /// Its worker now.
    pub worker: Option<WorkerId>,
    /// Who resolved it last.
    pub resolver: Option<WorkerId>,
    /// Its cell, once located.
    pub cell: Option<crate::grid::CellId>,
}

/// What [`Engine::checkpoint`] wrote and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The snapshot reflects every journal record before this position.
    pub covers: u64,
    /// The snapshot's size.
    pub bytes: u64,
    /// Cases moved to the archive.
    pub archived: u64,
    /// What the journal dropped.
    pub compaction: crate::journal::Compaction,
}

/// Messages into the collect stage.
pub(crate) enum CollectMsg {
    Cases(Range<u64>),
    /// Answered (to the sender, if any, after assign has passed it too) once every batch
    /// sent before it is done; with parallel dispatchers one message per dispatcher,
    /// which meet at the gate.
    Barrier(Option<Sender<()>>, Option<Arc<Gate>>),
}

/// Where parallel dispatchers meet for a barrier: each waits until as many have arrived
/// as are alive. A dispatcher that died (a bug, never an input) is no longer counted, so
/// the others do not wait for it forever.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    arrived: Mutex<usize>,
    all_here: parking_lot::Condvar,
}

impl Gate {
    pub(crate) fn wait(&self, live: &std::sync::atomic::AtomicUsize) {
        let mut arrived = self.arrived.lock();
        *arrived += 1;
        self.all_here.notify_all();
        while *arrived < live.load(Ordering::Acquire) {
            // Woken by each arrival; the timeout notices a dispatcher gone meanwhile.
            self.all_here
                .wait_for(&mut arrived, Duration::from_millis(20));
        }
    }
}

/// Messages into the assign stage.
pub(crate) enum AssignMsg {
    New(Vec<u64>),
    Reroute(Vec<u64>),
    Freed(Vec<WorkerId>),
    Enqueue(Vec<(OrganId, QueueKey)>),
    Barrier(Sender<()>),
    Stop,
}

/// An organ queue's order: priority, then age (report time), then id.
pub(crate) type QueueKey = (u8, u64, u64);

/// What a batch of work set in motion, sent on when the batch is done: events to the
/// bus, freed workers and cases to route again to the assign stage, deadlines to the
/// timers. This is the seam where a journal writes the batch's transitions ahead of
/// anything else seeing them.
#[derive(Default)]
pub(crate) struct Out {
    /// Collected when someone subscribes or a journal writes them.
    pub(crate) events: Option<Vec<CaseEvent>>,
    /// Whether `events` go to the bus too.
    pub(crate) publish: bool,
    pub(crate) freed: Vec<WorkerId>,
    pub(crate) reroute: Vec<u64>,
    pub(crate) enqueue: Vec<(OrganId, QueueKey)>,
    pub(crate) arm: Vec<(u64, u64)>,
    pub(crate) finished: Vec<u64>,
    pub(crate) forget: Vec<u64>,
    pub(crate) dedupe_remove: Vec<(u64, u32, crate::grid::Location)>,
    pub(crate) close_children: Vec<CaseId>,
    /// Merged cases and the case each duplicates, and whether it was listed there (for
    /// the journal).
    pub(crate) links: Vec<(u64, u64, bool)>,
}

impl Out {
    pub(crate) fn new(shared: &Shared) -> Out {
        let publish = shared.bus.active();
        Out {
            events: (publish || shared.journal.is_some()).then(Vec::new),
            publish,
            ..Out::default()
        }
    }

    #[inline]
    pub(crate) fn event(&mut self, id: u64, seq: usize, t: Transition) {
        if let Some(e) = self.events.as_mut() {
            e.push(CaseEvent {
                case: CaseId(id),
                seq: seq as u32,
                transition: t,
            });
        }
    }
}

/// A batch's timers by slot, each slot's cases in the order they came. Most of a batch
/// shares one slot or a few (its cases were routed at one moment), so the slots are found
/// by a short scan; past [`MAX_SCANNED_SLOTS`] the pairs are sorted instead.
fn group_by_slot(mut arm: Vec<(u64, u64)>) -> Vec<(u64, Box<[u64]>)> {
    let mut groups: Vec<(u64, Vec<u64>)> = Vec::new();
    for &(slot, id) in &arm {
        let n = groups.len();
        match groups.iter_mut().rev().find(|g| g.0 == slot) {
            Some(g) => g.1.push(id),
            None if n < MAX_SCANNED_SLOTS => groups.push((slot, vec![id])),
            None => {
                arm.sort_unstable();
                return arm
                    .chunk_by(|a, b| a.0 == b.0)
                    .map(|run| (run[0].0, run.iter().map(|&(_, id)| id).collect()))
                    .collect();
            }
        }
    }
    groups
        .into_iter()
        .map(|(slot, ids)| (slot, ids.into_boxed_slice()))
        .collect()
}

/// Distinct timer slots a batch's scan looks through before it sorts instead.
const MAX_SCANNED_SLOTS: usize = 8;

/// What every stage and command shares.
pub(crate) struct Shared {
    pub(crate) city: Arc<City>,
    pub(crate) port: Port,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) store: Store,
    pub(crate) next_id: AtomicU64,
    pub(crate) queues: Vec<Mutex<BTreeSet<QueueKey>>>,
    /// Cases to look at, by timer slot: each batch adds its ids as one chunk, so that a
    /// busy second does not grow (and copy) one huge vector.
    pub(crate) timers: Mutex<BTreeMap<u64, Vec<Box<[u64]>>>>,
    pub(crate) dedupe: Mutex<Dedupe>,
    /// The pipeline's collect stage: held while a batch is collected, by the collect
    /// thread or by a submitting thread that found the stage idle.
    pub(crate) collecting: Mutex<collect::Scratch>,
    pub(crate) texts: super::case::Texts,
    pub(crate) bus: Bus,
    pub(crate) assign_tx: Sender<AssignMsg>,
    /// The street office of each worker, for queue draining.
    pub(crate) worker_street: Vec<u32>,
    /// Cases that left the assign stage for the first time (dispatched, queued, ...).
    pub(crate) assigned: AtomicU64,
    /// Cases that reached a terminal state.
    pub(crate) finished: AtomicU64,
    /// Where every accepted report and every transition is written ahead.
    pub(crate) journal: Option<Mutex<super::wal::Sink>>,
    /// The journal position the latest snapshot covers.
    pub(crate) last_checkpoint: AtomicU64,
    /// The cases the latest snapshot held (archived ones not counted).
    pub(crate) last_checkpoint_cases: AtomicU64,
    /// Closed cases moved out of the store.
    pub(crate) archive: super::archive::Archive,
    /// Held by a test to stop the collect stage where it stands.
    #[cfg(test)]
    pub(crate) pause: Mutex<()>,
    /// Store segments collected on a submitting thread, for tests.
    #[cfg(test)]
    pub(crate) collected_here: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    #[inline]
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn req(&self, id: u64, rec: &Rec) -> Option<Req> {
        Some(Req {
            case: CaseId(id),
            cell: rec.cell()?,
            category: rec.category(),
            location: rec.location,
            priority: rec.priority,
        })
    }

    /// The case's deadline period in ms (0: none).
    pub(crate) fn limit_ms(&self, rec: &Rec) -> u64 {
        self.city
            .category(rec.category())
            .and_then(|c| c.deadline(rec.priority))
            .map_or(0, duration_ms)
    }

    /// Sends on what a batch set in motion, after writing its transitions to the journal.
    /// A journal error is answered (and kept, so that the engine takes no more writes);
    /// what the batch set in motion is sent on all the same, so that the stages stay
    /// consistent with the store.
    pub(crate) fn flush(&self, mut out: Out) -> Result<(), crate::journal::JournalError> {
        if !out.close_children.is_empty() {
            let now = self.now();
            let mut children: Vec<u64> = out.close_children.drain(..).map(|c| c.0).collect();
            children.sort_unstable();
            let mut more = Out::new(self);
            self.store.each(&children, |id, rec| {
                super::collect::close_merged(id, rec, now, &mut more);
            });
            out.finished.append(&mut more.finished);
            if let (Some(a), Some(b)) = (out.events.as_mut(), more.events) {
                a.extend(b);
            }
        }
        let journaled = self.journal_events(out.events.as_deref().unwrap_or_default(), &out.links);
        if !out.arm.is_empty() {
            let runs = group_by_slot(out.arm);
            let mut t = self.timers.lock();
            for (slot, ids) in runs {
                t.entry(slot).or_default().push(ids);
            }
        }
        if !out.dedupe_remove.is_empty() {
            self.dedupe.lock().remove(&out.dedupe_remove);
        }
        self.port.forget(&out.forget);
        if !out.finished.is_empty() {
            self.finished
                .fetch_add(out.finished.len() as u64, Ordering::Relaxed);
        }
        // The assign thread may be the one flushing: it handles its own follow-ups
        // itself (see assign.rs) and never sends to its own full channel.
        if !out.enqueue.is_empty() {
            let _ = self.assign_tx.send(AssignMsg::Enqueue(out.enqueue));
        }
        if !out.reroute.is_empty() {
            let _ = self.assign_tx.send(AssignMsg::Reroute(out.reroute));
        }
        if !out.freed.is_empty() {
            let _ = self.assign_tx.send(AssignMsg::Freed(out.freed));
        }
        if let Some(events) = out.events
            && out.publish
            && !events.is_empty()
        {
            self.bus.publish(events);
        }
        journaled
    }

    /// Appends a batch's transitions to the journal. The first transition of a case
    /// (`reported`) is not written: the case's report record holds it.
    fn journal_events(
        &self,
        events: &[CaseEvent],
        links: &[(u64, u64, bool)],
    ) -> Result<(), crate::journal::JournalError> {
        let Some(sink) = self.journal.as_ref() else {
            return Ok(());
        };
        if links.is_empty() && events.iter().all(|e| e.seq == 0) {
            return Ok(());
        }
        super::wal::with_batch(
            |push| {
                for &(case, parent, listed) in links {
                    push(&|buf| super::wal::encode_link(buf, case, parent, listed));
                }
                for e in events.iter().filter(|e| e.seq > 0) {
                    push(&|buf| super::wal::encode_transition(buf, e.case.0, e.seq, &e.transition));
                }
            },
            |batch| sink.lock().append(batch),
        )
    }

    /// Appends records made by `fill` to the journal, if there is one.
    pub(crate) fn journal_append(
        &self,
        fill: impl FnOnce(&mut dyn FnMut(&dyn Fn(&mut Vec<u8>))),
    ) -> Result<(), crate::journal::JournalError> {
        match self.journal.as_ref() {
            None => Ok(()),
            Some(sink) => super::wal::with_batch(fill, |batch| sink.lock().append(batch)),
        }
    }

    /// The journal's sticky error, if a write failed.
    pub(crate) fn journal_failed(&self) -> Option<crate::journal::JournalError> {
        self.journal.as_ref().and_then(|s| s.lock().failed.clone())
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    city: Arc<City>,
    router: RouterConfig,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    journal: Option<Box<dyn crate::journal::Journal>>,
    archive: Option<(std::path::PathBuf, Duration)>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("router", &self.router)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .field("journal", &self.journal.is_some())
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// Routes with this config (default: [`RouterConfig::default`]).
    pub fn router_config(mut self, config: RouterConfig) -> EngineBuilder {
        self.router = config;
        self
    }

    /// Reads time from this clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> EngineBuilder {
        self.clock = Arc::new(clock);
        self
    }

    /// Batching, deadlines and merging (default: [`EngineConfig::default`]).
    pub fn config(mut self, config: EngineConfig) -> EngineBuilder {
        self.config = config;
        self
    }

    /// With a journal: at each checkpoint, cases closed (or rejected, or referred) for
    /// longer than `keep` move out of the live state into archive files in `dir`, their
    /// histories still readable by [`Engine::case`] and their counts still in
    /// [`Engine::snapshot`]. See the `archive` module's docs for the format. Default: no
    /// archive, every case stays in memory.
    pub fn archive(mut self, dir: impl Into<std::path::PathBuf>, keep: Duration) -> EngineBuilder {
        self.archive = Some((dir.into(), keep));
        self
    }

    /// Writes every accepted report and every transition to `journal` before it is
    /// acknowledged (default: no journal), after recovering what the journal holds. See
    /// [`Engine`]'s sections on durability and recovery.
    pub fn journal(mut self, journal: Box<dyn crate::journal::Journal>) -> EngineBuilder {
        self.journal = Some(journal);
        self
    }

    /// Builds the router and starts the stage threads.
    ///
    /// # Errors
    /// [`EngineError::Routing`] if the router refuses its config, [`EngineError::Config`]
    /// for an engine setting out of range, [`EngineError::Thread`] if a thread would not
    /// start.
    pub fn build(self) -> Result<Engine, EngineError> {
        let c = self.config;
        let bad = |field, why| Err(EngineError::Config { field, why });
        if c.batch == 0 || c.batch > 1 << 20 {
            return bad("batch", "must be 1 to 2^20");
        }
        if c.channel_batches == 0 {
            return bad("channel_batches", "must be at least 1");
        }
        if c.dispatchers > 64 {
            return bad("dispatchers", "must be at most 64");
        }
        if !(c.dedupe_distance_m.is_finite() && c.dedupe_distance_m >= 0.0) {
            return bad("dedupe_distance_m", "must be finite and not negative");
        }
        if !(c.remind_at > 0.0 && c.remind_at < 1.0) {
            return bad("remind_at", "must lie strictly between 0 and 1");
        }
        if c.tick_every.is_zero() {
            return bad("tick_every", "must not be zero");
        }
        if c.subscriber_buffer == 0 {
            return bad("subscriber_buffer", "must be at least 1");
        }
        let router = Router::new(self.city.clone(), self.router)?;
        let city = self.city;
        let worker_street = (0..city.workers().len())
            .map(|w| {
                city.worker_street(WorkerId(w as u32))
                    .map_or(NONE32, |street| street.index() as u32)
            })
            .collect();
        let (collect_tx, collect_rx) = bounded(c.channel_batches);
        // The assign stage also takes follow-ups from every command; a deeper channel keeps
        // them from waiting behind new cases.
        let (assign_tx, assign_rx) = bounded(c.channel_batches * 4);
        let (bus, bus_rx) = Bus::new(c.channel_batches * 4, c.subscriber_buffer);
        let mut shared = Shared {
            dedupe: Mutex::new(Dedupe::new(&city, c.dedupe_distance_m, c.dedupe_window)),
            collecting: Mutex::new(collect::Scratch::default()),
            queues: (0..city.organs().len())
                .map(|_| Mutex::new(BTreeSet::new()))
                .collect(),
            port: Port::new(router),
            clock: self.clock,
            config: c,
            store: Store::new(),
            texts: Default::default(),
            next_id: AtomicU64::new(0),
            timers: Mutex::new(BTreeMap::new()),
            bus,
            assign_tx,
            worker_street,
            assigned: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            journal: None,
            last_checkpoint: AtomicU64::new(0),
            last_checkpoint_cases: AtomicU64::new(0),
            archive: super::archive::Archive::new(
                self.archive.as_ref().map(|(d, _)| d.clone()),
                self.archive
                    .as_ref()
                    .map_or(0, |&(_, keep)| duration_ms(keep)),
                city.units().len(),
            ),
            #[cfg(test)]
            pause: Mutex::new(()),
            #[cfg(test)]
            collected_here: AtomicU64::new(0),
            city,
        };
        let (recovery, resume) = match self.journal {
            None => (None, super::recover::Resume::default()),
            Some(mut j) => {
                let mut report = super::recover::Recovery::default();
                let from = super::checkpoint::load(&shared, &mut *j, &mut report)?;
                let resume = super::recover::replay(&shared, &mut *j, from, &mut report)?;
                shared
                    .last_checkpoint
                    .store(report.snapshot.unwrap_or(0), Ordering::Relaxed);
                shared
                    .last_checkpoint_cases
                    .store(report.snapshot_cases, Ordering::Relaxed);
                shared.journal = Some(Mutex::new(super::wal::Sink::new(j)));
                (Some(report), resume)
            }
        };
        let shared = Arc::new(shared);
        let mut threads = Vec::new();
        let spawn_named = |stage: &'static str, name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("wangge-{name}"))
                .spawn(f)
                .map_err(|_| EngineError::Thread(stage))
        };
        let spawn = |stage: &'static str, f: Box<dyn FnOnce() + Send>| {
            spawn_named(stage, stage.to_string(), f)
        };
        let collectors = c.dispatchers.max(1);
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(collectors));
        for k in 0..collectors {
            let (s, rx, live) = (shared.clone(), collect_rx.clone(), live.clone());
            let (stage, name) = if c.dispatchers == 0 {
                ("collect", "collect".to_string())
            } else {
                ("dispatch", format!("dispatch{k}"))
            };
            threads.push(spawn_named(
                stage,
                name,
                Box::new(move || collect::run(&s, &rx, &live)),
            )?);
        }
        drop(collect_rx);
        let s = shared.clone();
        threads.push(spawn(
            "assign",
            Box::new(move || assign::run(&s, &assign_rx)),
        )?);
        threads.push(spawn("bus", Box::new(move || center::run_bus(&bus_rx)))?);
        let (ticker_stop, ticker_rx) = bounded::<()>(1);
        if shared.clock.is_real_time() {
            let (s, stop) = (shared.clone(), ticker_rx.clone());
            let every = c.tick_every;
            threads.push(spawn(
                "timer",
                Box::new(move || handle::run_ticker(&s, &stop, every)),
            )?);
        }
        let intake = Arc::new(RwLock::new(Some(collect_tx)));
        if shared.journal.is_some() && c.checkpoint_every > 0 {
            let (s, gate, stop) = (shared.clone(), intake.clone(), ticker_rx.clone());
            threads.push(spawn(
                "checkpoint",
                Box::new(move || run_checkpointer(&s, &gate, &stop)),
            )?);
        }
        let engine = Engine {
            shared,
            intake,
            barriers: Mutex::new(()),
            threads: Mutex::new(threads),
            ticker_stop: Mutex::new(Some(ticker_stop)),
            last: Mutex::new(None),
            recovery,
        };
        engine.resume_stages(resume);
        Ok(engine)
    }
}

/// The engine. `Send + Sync`: submit reports and act on cases from any thread.
///
/// ```
/// use std::sync::Arc;
/// use wangge::{CaseState, Engine, Location, Report, SimClock, Source, Timestamp, Verifier};
///
/// let city = Arc::new(wangge::City::demo());
/// let clock = SimClock::new(Timestamp(1_764_000_000_000));
/// let engine = Engine::builder(city.clone()).clock(clock.clone()).build()?;
/// let category = city.category_id("ZF-02").expect("illegal parking is in the catalogue");
/// let at = Location::new(120.33, 36.12)?;
/// let id = engine.submit(Report::new(Source::Hotline, category, at, clock.now()))?;
/// engine.flush();
/// let case = engine.case(id).expect("stored");
/// assert_eq!(case.state, CaseState::Dispatched, "{:?}", case.history);
/// let worker = case.worker.expect("dispatched to someone");
/// engine.accept(id, worker)?;
/// engine.resolve(id, worker)?;
/// engine.verify(id, Verifier::Reporter, true)?;
/// engine.close(id, None)?;
/// let snapshot = engine.shutdown();
/// assert_eq!(snapshot.by_state["closed"], 1);
/// # use wangge::Clock;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Durability
///
/// Built with [`EngineBuilder::journal`], the engine writes ahead: a submission's reports
/// are appended (one batch per call) before they are stored and before the call answers;
/// a batch's transitions (a stage's batch, a command batch, a tick) are appended at the
/// end of the batch, before its follow-ups go to the other stages and its events to the
/// subscribers, and before [`Engine::execute_batch`] answers, which also journals the
/// commands it took (just before their transitions) and [`Engine::set_worker_status`]
/// its changes. The record format is in the `wal` module's docs (tag byte, fixed-width
/// fields).
///
/// What an acknowledgement is worth is the journal's sync policy: with
/// [`FileJournal`](crate::journal::FileJournal)'s default group commit, it survives the
/// death of the process at once and the death of the machine once the next group sync
/// has run (the last 32,768 records and 10 ms at most; see [`crate::journal`]).
/// [`Engine::shutdown`] syncs.
///
/// A transition is in the case store, readable by [`Engine::case`], a moment before it
/// is in the journal (the batch appends after it has moved its cases); nothing is
/// *acknowledged* or sent on before the append. If an append fails the error is kept and
/// every later submission and command is refused ([`SubmitError::Journal`],
/// [`LifecycleError::Journal`]), the command batch that hit it included: its cases may
/// have moved in memory, not in the journal.
///
/// # Recovery
///
/// An engine built on a journal that holds records recovers them before it starts: the
/// latest snapshot, then every record after it. It resumes where the journal stood: the
/// same cases with the same histories, notes, deadlines, escalations and verdicts; the
/// organ queues, the timers and the duplicate index; each worker's held cases, load,
/// returned cases and status (set through the engine); the case ids going on after the
/// last. What the stages had not finished is handed to them again (cases still to
/// collect or to route). [`Engine::recovery`] says what was found. Not recovered:
/// positions and capacities set on the [`Router`] directly (a snapshot keeps them), and
/// the fair-rotation places (a snapshot keeps them; after a replay without one, rotation
/// starts afresh).
///
/// A record that does not decode or does not fit the city (an unknown category or
/// worker, a transition that does not follow from where its case stands) stops the
/// build with [`EngineError::Replay`] and its position: never a silent skip. A torn tail
/// is the journal's to cut ([`FileJournal::open`](crate::journal::FileJournal::open)
/// reports it); a transition whose predecessor was lost with it (two threads' batches
/// journaled out of order just before a crash) is dropped and counted.
///
/// [`Engine::checkpoint`] writes a snapshot and lets the journal drop what it covers, so
/// that recovery time stays bounded; the engine does so by itself every
/// [`EngineConfig::checkpoint_every`] records. A million cases recover from a snapshot in
/// about a second on a 2-core machine (`throughput --cases 0 --journal DIR`). With
/// [`EngineBuilder::archive`], a checkpoint also moves long-closed cases out of memory
/// into archive files, still readable by [`Engine::case`] and still counted by
/// [`Engine::snapshot`].
#[derive(Debug)]
pub struct Engine {
    shared: Arc<Shared>,
    intake: Arc<Intake>,
    /// Held while a barrier's messages go out to parallel dispatchers.
    barriers: Mutex<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    ticker_stop: Mutex<Option<Sender<()>>>,
    last: Mutex<Option<Snapshot>>,
    recovery: Option<super::recover::Recovery>,
}

impl Engine {
    /// A builder over `city`.
    pub fn builder(city: Arc<City>) -> EngineBuilder {
        EngineBuilder {
            city,
            router: RouterConfig::default(),
            clock: Arc::new(SystemClock),
            config: EngineConfig::default(),
            journal: None,
            archive: None,
        }
    }

    /// What recovery found, for an engine built on a journal (`None` without one). An
    /// empty journal gives an empty report.
    pub fn recovery(&self) -> Option<&super::recover::Recovery> {
        self.recovery.as_ref()
    }

    /// Every organ queue's live entries, in order (for the tests of recovery). An entry
    /// whose case left the queue since (given by hand) is stale: drained, it is dropped.
    #[cfg(test)]
    pub(crate) fn queue_contents(&self) -> Vec<Vec<QueueKey>> {
        let s = &*self.shared;
        s.queues
            .iter()
            .enumerate()
            .map(|(organ, q)| {
                let keys: Vec<QueueKey> = q.lock().iter().copied().collect();
                keys.into_iter()
                    .filter(|k| {
                        s.store.with(k.2, |rec| {
                            rec.state == CaseState::Queued && rec.organ as usize == organ
                        }) == Some(true)
                    })
                    .collect()
            })
            .collect()
    }

    /// Hands the stages what recovery found unfinished.
    fn resume_stages(&self, resume: super::recover::Resume) {
        let gate = self.intake.read();
        let Some(intake) = gate.as_ref() else { return };
        for run in resume.collect.chunk_by(|a, b| a + 1 == *b) {
            let _ = intake.send(CollectMsg::Cases(run[0]..run[run.len() - 1] + 1));
        }
        let s = &*self.shared;
        if !resume.route.is_empty() {
            let _ = s.assign_tx.send(AssignMsg::New(resume.route));
        }
        if !resume.reroute.is_empty() {
            let _ = s.assign_tx.send(AssignMsg::Reroute(resume.reroute));
        }
        if !resume.close_children.is_empty() {
            let mut out = Out::new(s);
            out.close_children = resume.close_children;
            let _ = s.flush(out);
        }
        // Queues that waited while someone was free (a crash between a release and the
        // drain it set off): every street's queues are looked at once.
        let everyone: Vec<WorkerId> = (0..s.city.workers().len())
            .map(|w| WorkerId(w as u32))
            .collect();
        if !everyone.is_empty() && s.queues.iter().any(|q| !q.lock().is_empty()) {
            let _ = s.assign_tx.send(AssignMsg::Freed(everyone));
        }
    }

    /// The city it serves.
    pub fn city(&self) -> &City {
        &self.shared.city
    }

    /// The router it routes with (worker state, explanations).
    pub fn router(&self) -> &Router {
        &self.shared.port.router
    }

    /// The engine's clock's time now.
    pub fn now(&self) -> Timestamp {
        self.shared.now()
    }

    fn validate(&self, r: &Report, now: Timestamp) -> Result<(), SubmitError> {
        let city = &self.shared.city;
        if city.category(r.category).is_none() {
            return Err(SubmitError::UnknownCategory(r.category));
        }
        if r.at > now.plus(self.shared.config.max_clock_skew) {
            return Err(SubmitError::InTheFuture { at: r.at, now });
        }
        if r.description.len() > MAX_DESCRIPTION {
            return Err(SubmitError::DescriptionTooLong(r.description.len()));
        }
        match r.reporter {
            Reporter::Worker(w) if city.worker(w).is_none() => {
                return Err(SubmitError::UnknownWorker(w));
            }
            Reporter::Department(d) if city.department(d).is_none() => {
                return Err(SubmitError::UnknownDepartment(d));
            }
            _ => {}
        }
        let fits = match r.source {
            Source::Patrol => matches!(r.reporter, Reporter::Worker(_)),
            Source::Referral => matches!(r.reporter, Reporter::Department(_)),
            Source::Sensor => matches!(r.reporter, Reporter::Sensor(_) | Reporter::Anonymous),
            Source::Hotline => matches!(r.reporter, Reporter::Citizen(_) | Reporter::Anonymous),
        };
        if !fits {
            return Err(SubmitError::ReporterMismatch {
                from: r.source,
                reporter: r.reporter,
            });
        }
        if r.on_the_spot && r.source != Source::Patrol {
            return Err(SubmitError::NotOnPatrol);
        }
        Ok(())
    }

    /// Takes a report: checks it, stores it as a `reported` case and hands it to the
    /// collect stage. Waits while the intake is full.
    ///
    /// # Errors
    /// A [`SubmitError`] saying what is wrong with the report; [`SubmitError::ShutDown`]
    /// after [`Engine::shutdown`]. Nothing is stored on an error.
    pub fn submit(&self, report: Report) -> Result<CaseId, SubmitError> {
        self.submit_one(report, true)
    }

    /// As [`Engine::submit`], but answers [`SubmitError::Full`] (with the report) instead
    /// of waiting when the intake is full.
    ///
    /// # Errors
    /// As [`Engine::submit`], and [`SubmitError::Full`].
    pub fn try_submit(&self, report: Report) -> Result<CaseId, SubmitError> {
        self.submit_one(report, false)
    }

    fn submit_one(&self, report: Report, wait: bool) -> Result<CaseId, SubmitError> {
        let now = self.now();
        self.validate(&report, now)?;
        let intake = self.intake.read();
        let Some(tx) = intake.as_ref() else {
            return Err(SubmitError::ShutDown(Box::new(report)));
        };
        let id = self.allocate(1)?;
        let journaled = self.shared.journal_append(|push| {
            push(&|buf| super::wal::encode_report(buf, id, now, &report));
        });
        if let Err(e) = journaled {
            return Err(SubmitError::Journal(e));
        }
        self.shared
            .store
            .insert(id, std::iter::once(Rec::from_report(report, now)));
        let msg = CollectMsg::Cases(id..id + 1);
        let sent = if wait {
            tx.send(msg).map_err(|_| ())
        } else {
            match tx.try_send(msg) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => {
                    let report = self.shared.store.take(id).map(Rec::into_report);
                    self.withdraw(id..id + 1);
                    return Err(match report {
                        Some(r) => SubmitError::Full(Box::new(r)),
                        None => SubmitError::StoreFull,
                    });
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            }
        };
        match sent {
            Ok(()) => Ok(CaseId(id)),
            Err(()) => {
                let report = self.shared.store.take(id).map(Rec::into_report);
                self.withdraw(id..id + 1);
                Err(report.map_or(SubmitError::StoreFull, |r| {
                    SubmitError::ShutDown(Box::new(r))
                }))
            }
        }
    }

    /// Journals that reports journaled as taken were handed back after all. A failure
    /// here stays in the journal's sink and refuses every later write.
    fn withdraw(&self, ids: Range<u64>) {
        let _ = self.shared.journal_append(|push| {
            for id in ids {
                push(&|buf| super::wal::encode_withdrawn(buf, id));
            }
        });
    }

    fn allocate(&self, n: u64) -> Result<u64, SubmitError> {
        let id = self.shared.next_id.fetch_add(n, Ordering::Relaxed);
        if id.saturating_add(n) > MAX_CASES {
            self.shared.next_id.fetch_sub(n, Ordering::Relaxed);
            return Err(SubmitError::StoreFull);
        }
        Ok(id)
    }

    /// Takes many reports at once (the fast way in: one lock and one message per batch).
    /// Each report is answered on its own; bad ones are refused and the rest taken.
    /// Waits while the intake is full. With the pipeline (no parallel dispatchers), a part
    /// of the batch that finds the collect stage idle and nothing waiting for it is
    /// collected on the calling thread before the call returns (the same work, in the same
    /// order, as the collect thread would do); the rest goes to the collect thread.
    pub fn submit_batch(&self, reports: Vec<Report>) -> Vec<Result<CaseId, SubmitError>> {
        let now = self.now();
        let mut answers: Vec<Result<CaseId, SubmitError>> = reports
            .iter()
            .map(|r| self.validate(r, now).map(|()| CaseId(0)))
            .collect();
        // Usually every report is good and the batch is taken as it came, without a copy.
        let good: Vec<Report> = if answers.iter().all(Result::is_ok) {
            reports
        } else {
            reports
                .into_iter()
                .zip(&answers)
                .filter_map(|(r, a)| a.is_ok().then_some(r))
                .collect()
        };
        let intake = self.intake.read();
        let Some(tx) = intake.as_ref() else {
            let mut good = good.into_iter();
            for a in &mut answers {
                if a.is_ok()
                    && let Some(r) = good.next()
                {
                    *a = Err(SubmitError::ShutDown(Box::new(r)));
                }
            }
            return answers;
        };
        let n = good.len() as u64;
        let first = match self.allocate(n) {
            Ok(first) => first,
            Err(_) => {
                for a in answers.iter_mut().filter(|a| a.is_ok()) {
                    *a = Err(SubmitError::StoreFull);
                }
                return answers;
            }
        };
        let journaled = self.shared.journal_append(|push| {
            for (id, r) in (first..).zip(&good) {
                push(&|buf| super::wal::encode_report(buf, id, now, r));
            }
        });
        if let Err(e) = journaled {
            for a in answers.iter_mut().filter(|a| a.is_ok()) {
                *a = Err(SubmitError::Journal(e.clone()));
            }
            return answers;
        }
        // Stored and sent a store segment at a time (the intake lock is held, so the
        // collect thread is running and takes them): collect starts on a large submission's
        // first segment while this thread stores the next, and parallel dispatchers share
        // it without two of them ever working under one segment's lock.
        let mut recs = good.into_iter().map(|r| Rec::from_report(r, now));
        let mut from = first;
        while from < first + n {
            let to =
                ((Store::split(from).0 as u64 + 1) * super::case::SEGMENT as u64).min(first + n);
            self.shared
                .store
                .insert(from, recs.by_ref().take((to - from) as usize));
            if !self.collect_here(from..to, tx) {
                let _ = tx.send(CollectMsg::Cases(from..to));
            }
            from = to;
        }
        for (id, a) in (first..).zip(answers.iter_mut().filter(|a| a.is_ok())) {
            *a = Ok(CaseId(id));
        }
        answers
    }

    /// The pipeline's collect stage done on this thread for the stored cases `ids`, if it
    /// is idle and nothing waits in its channel (so that nothing sent before is
    /// overtaken): the submitting thread then does the work it would otherwise hand to
    /// the collect thread and wait for, and the two cores are left to it and the assign
    /// thread instead of three threads taking turns. False, with nothing done, otherwise.
    fn collect_here(&self, ids: Range<u64>, tx: &Sender<CollectMsg>) -> bool {
        if self.shared.config.dispatchers != 0 {
            return false;
        }
        let Some(mut scratch) = self.shared.collecting.try_lock() else {
            return false;
        };
        if !tx.is_empty() {
            return false;
        }
        collect::collect_here(&self.shared, ids, &mut scratch);
        #[cfg(test)]
        self.shared.collected_here.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Waits until every stage has handled everything sent to it before the call.
    pub fn flush(&self) {
        let (tx, rx) = bounded(1);
        {
            let intake = self.intake.read();
            let Some(intake) = intake.as_ref() else {
                return;
            };
            let dispatchers = self.shared.config.dispatchers;
            if dispatchers == 0 {
                if intake.send(CollectMsg::Barrier(Some(tx), None)).is_err() {
                    return;
                }
            } else {
                // One message per dispatcher, none of another barrier's between them:
                // each dispatcher takes one and waits at the gate for the others.
                let _one_at_a_time = self.barriers.lock();
                let gate = Arc::new(Gate::default());
                let mut tx = Some(tx);
                for _ in 0..dispatchers {
                    if intake
                        .send(CollectMsg::Barrier(tx.take(), Some(gate.clone())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = rx.recv();
    }

    /// A case with its whole history.
    pub fn case(&self, id: CaseId) -> Option<super::Case> {
        let s = &*self.shared;
        s.store
            .with(id.0, |rec| rec.view(id, &s.texts))
            .or_else(|| s.archive.case(s, id.0))
    }

    /// Where each case of `ids` is, appended to `out` (one lock per store segment).
    pub fn briefs(&self, ids: Range<u64>, out: &mut Vec<CaseBrief>) {
        self.shared.store.range(ids, |id, rec| {
            out.push(CaseBrief {
                id: CaseId(id),
                state: rec.state,
                worker: rec.worker(),
                resolver: (rec.resolver != NONE32).then_some(WorkerId(rec.resolver)),
                cell: rec.cell(),
            })
        });
    }

    /// Cases submitted so far.
    pub fn submitted(&self) -> u64 {
        self.shared.next_id.load(Ordering::Relaxed)
    }

    /// Cases that have been through the assign stage (dispatched, queued, sent to a ruling,
    /// rejected, referred or merged at least once).
    pub fn assigned(&self) -> u64 {
        self.shared.assigned.load(Ordering::Relaxed)
    }

    /// Applies one command.
    ///
    /// # Errors
    /// A [`LifecycleError`]; nothing changes when one is returned.
    pub fn execute(&self, command: &Command) -> Result<CaseState, LifecycleError> {
        let mut out = [Ok(CaseState::Reported)];
        self.execute_batch(std::slice::from_ref(command), &mut out);
        let [r] = out;
        r
    }

    /// Applies many commands in order, answering each in `results` (which must be as long
    /// as `commands`; extra answers are not written). One lock per run of commands on
    /// cases of the same store segment.
    pub fn execute_batch(
        &self,
        commands: &[Command],
        results: &mut [Result<CaseState, LifecycleError>],
    ) {
        let gate = self.intake.read();
        if gate.is_none() {
            for r in results.iter_mut() {
                *r = Err(LifecycleError::ShutDown);
            }
            return;
        }
        let s = &*self.shared;
        if let Some(e) = s.journal_failed() {
            for r in results.iter_mut() {
                *r = Err(LifecycleError::Journal(e.to_string()));
            }
            return;
        }
        let mut out = Out::new(s);
        let now = s.now();
        // Where each command's first transition lands in its case's history: the journal's
        // command record names it, so that replay attaches the command's texts exactly.
        let mut seqs = Vec::new();
        if s.journal.is_some() {
            seqs.resize(commands.len().min(results.len()), 0u32);
        }
        let mut i = 0;
        while i < commands.len().min(results.len()) {
            let id = commands[i].case().0;
            let Some(seg) = s.store.existing(id) else {
                results[i] = Err(LifecycleError::UnknownCase(CaseId(id)));
                i += 1;
                continue;
            };
            let seg_no = Store::split(id).0;
            let mut g = seg.lock();
            while i < commands.len().min(results.len())
                && Store::split(commands[i].case().0).0 == seg_no
            {
                let id = commands[i].case().0;
                results[i] = match g[Store::split(id).1].as_mut() {
                    None => Err(LifecycleError::UnknownCase(CaseId(id))),
                    Some(rec) => {
                        if let Some(seq) = seqs.get_mut(i) {
                            *seq = rec.history.len() as u32;
                        }
                        command(s, id, rec, &commands[i], now, &mut out)
                    }
                };
                i += 1;
            }
        }
        // Only what the transitions do not say: reasons, extensions, verdicts.
        let detailed = |((c, r), _): &((&Command, &Result<CaseState, LifecycleError>), &u32)| {
            r.is_ok() && super::wal::has_detail(c)
        };
        let taken = || commands.iter().zip(results.iter()).zip(seqs.iter());
        let journaled = if taken().any(|x| detailed(&x)) {
            s.journal_append(|push| {
                for ((c, _), &seq) in taken().filter(|x| detailed(x)) {
                    push(&|buf| super::wal::encode_command(buf, now, seq, c));
                }
            })
        } else {
            Ok(())
        };
        if let Err(e) = journaled.and(s.flush(out)) {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(LifecycleError::Journal(e.to_string()));
            }
        }
    }

    /// The dispatched worker accepts the case.
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless dispatched, [`LifecycleError::WrongWorker`]
    /// unless `worker` holds it.
    pub fn accept(&self, case: CaseId, worker: WorkerId) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Accept { case, worker })
    }

    /// The worker hands the case back (退单): routed again without them, queued, or sent
    /// to a ruling after too many returns.
    ///
    /// # Errors
    /// As [`Engine::accept`] (dispatched or accepted cases only).
    pub fn return_case(&self, case: CaseId, worker: WorkerId) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Return {
            case,
            worker,
            reason: None,
        })
    }

    /// The worker reports the case handled.
    ///
    /// # Errors
    /// As [`Engine::accept`] (accepted cases only).
    pub fn resolve(&self, case: CaseId, worker: WorkerId) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Resolve { case, worker })
    }

    /// Verification (核查) of a resolved case: passed, or failed and reopened (返工).
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless resolved, [`LifecycleError::VerifierIsResolver`]
    /// when the verifier is the worker who resolved it.
    pub fn verify(
        &self,
        case: CaseId,
        by: Verifier,
        passed: bool,
    ) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Verify { case, by, passed })
    }

    /// Closes a verified case; merged duplicates close with it.
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless verified.
    pub fn close(
        &self,
        case: CaseId,
        satisfaction: Option<Satisfaction>,
    ) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Close { case, satisfaction })
    }

    /// The center reopens a verified case.
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless verified, [`LifecycleError::EmptyReason`].
    pub fn reopen(&self, case: CaseId, reason: &str) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Reopen {
            case,
            reason: reason.into(),
        })
    }

    /// The center gives a waiting case (registered, queued, in a ruling or reopened) to a
    /// worker by hand.
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`], [`LifecycleError::UnknownWorker`],
    /// [`LifecycleError::EmptyReason`] for an empty over-capacity reason,
    /// [`LifecycleError::Routing`] if the router refuses.
    pub fn dispatch_to(
        &self,
        case: CaseId,
        worker: WorkerId,
        over_capacity: Option<&str>,
    ) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Dispatch {
            case,
            worker,
            over_capacity: over_capacity.map(str::to_string),
        })
    }

    /// Moves a pending case's deadline (延期).
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless pending, [`LifecycleError::Extension`] for a zero
    /// extension or a case without deadline, [`LifecycleError::EmptyReason`].
    pub fn extend(
        &self,
        case: CaseId,
        by: Duration,
        reason: &str,
    ) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Extend {
            case,
            by,
            reason: reason.into(),
        })
    }

    /// Stops a pending case's clock (缓办).
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless pending, [`LifecycleError::Suspension`] if
    /// suspended already, [`LifecycleError::EmptyReason`].
    pub fn suspend(&self, case: CaseId, reason: &str) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Suspend {
            case,
            reason: reason.into(),
        })
    }

    /// Starts a suspended case's clock again; its deadlines move by the time it stood.
    ///
    /// # Errors
    /// [`LifecycleError::Illegal`] unless pending, [`LifecycleError::Suspension`] if not
    /// suspended.
    pub fn resume(&self, case: CaseId) -> Result<CaseState, LifecycleError> {
        self.execute(&Command::Resume { case })
    }

    /// Puts a worker on duty, busy or off duty. A worker coming on duty takes waiting cases
    /// of their street's queues.
    ///
    /// Journaled (write-ahead) when the engine has a journal. To change many workers at
    /// once (a shift change), use [`Engine::set_worker_statuses`].
    ///
    /// # Errors
    /// [`LifecycleError::UnknownWorker`], [`LifecycleError::Journal`],
    /// [`LifecycleError::ShutDown`]; nothing changes on an error.
    pub fn set_worker_status(
        &self,
        worker: WorkerId,
        status: WorkerStatus,
    ) -> Result<(), LifecycleError> {
        self.set_worker_statuses(&[(worker, status)])
    }

    /// Changes many workers' statuses at once, in order (a worker named twice ends with
    /// the later status), then lets the queues of the streets of those who came on duty
    /// give out their waiting cases. Every change is made before any queue is looked at,
    /// so that which worker takes a waiting case depends only on the statuses, never on
    /// how far the assign thread got in between. A simulation on a
    /// [`SimClock`](crate::SimClock), driven from one thread that calls [`Engine::flush`]
    /// before each step, is repeatable with one call per shift change; with one
    /// [`Engine::set_worker_status`] call per worker it is not, since each on-duty change
    /// starts its street's queues while the next change is being made.
    ///
    /// Journaled (write-ahead, one batch) when the engine has a journal.
    ///
    /// # Errors
    /// [`LifecycleError::UnknownWorker`] for the first unknown worker,
    /// [`LifecycleError::Journal`], [`LifecycleError::ShutDown`]; nothing changes on an
    /// error.
    pub fn set_worker_statuses(
        &self,
        changes: &[(WorkerId, WorkerStatus)],
    ) -> Result<(), LifecycleError> {
        let gate = self.intake.read();
        if gate.is_none() {
            return Err(LifecycleError::ShutDown);
        }
        let s = &*self.shared;
        if let Some(&(worker, _)) = changes
            .iter()
            .find(|(w, _)| s.port.router.worker_state(*w).is_err())
        {
            return Err(LifecycleError::UnknownWorker(worker));
        }
        if changes.is_empty() {
            return Ok(());
        }
        // Under the journal's lock, so that a snapshot reads every status its records
        // before it gave.
        let mut sink = s.journal.as_ref().map(|j| j.lock());
        if let Some(sink) = sink.as_mut() {
            let mut appended = Ok(());
            super::wal::with_batch(
                |push| {
                    for &(worker, status) in changes {
                        push(&|buf| super::wal::encode_status(buf, worker, status));
                    }
                },
                |batch| {
                    appended = sink.append(batch);
                    Ok(())
                },
            )
            .and(appended)
            .map_err(|e| LifecycleError::Journal(e.to_string()))?;
        }
        let mut freed = Vec::new();
        for &(worker, status) in changes {
            s.port
                .router
                .set_status(worker, status)
                .map_err(|_| LifecycleError::UnknownWorker(worker))?;
            if status == WorkerStatus::OnDuty {
                freed.push(worker);
            }
        }
        drop(sink);
        if !freed.is_empty() {
            let _ = self.shared.assign_tx.send(AssignMsg::Freed(freed));
        }
        Ok(())
    }

    /// Looks at every deadline that has passed on the clock: cases not accepted in time
    /// are routed again, reminders (催办) go out, overdue cases are escalated (督办).
    /// Runs by itself on a real-time clock; on a [`SimClock`](crate::SimClock) call it
    /// after moving the clock (and [`Engine::flush`] before, so that every case is where
    /// its stages put it). Returns how many cases it looked at.
    pub fn tick(&self) -> usize {
        let gate = self.intake.read();
        if gate.is_none() {
            return 0;
        }
        handle::tick(&self.shared)
    }

    /// Writes a snapshot of the whole engine (every case with its history, the reason
    /// texts, the workers' status, capacity and fair-rotation place) to the journal and
    /// lets the journal drop the records it covers, so that recovery loads the snapshot
    /// and replays only what came after.
    ///
    /// Submissions, commands and status changes wait while it runs (it holds the
    /// engine's intake), after the stages have handled what they were sent; on a city
    /// of a million cases that is about a second. A timer tick may run meanwhile: what it
    /// changes is either in the snapshot or replayed after it.
    ///
    /// # Errors
    /// [`EngineError::Config`] without a journal, [`EngineError::Journal`] if the journal
    /// cannot write the snapshot or compact (the journal stays whole and the engine
    /// keeps running), and after shutdown.
    pub fn checkpoint(&self) -> Result<Checkpoint, EngineError> {
        checkpoint(&self.shared, &self.intake)
    }

    /// The command center's view now. See [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        center::snapshot(&self.shared)
    }

    /// A stream of case events. It never slows the engine: when its buffer is full it
    /// misses events, and is told how many.
    pub fn subscribe(&self) -> Subscription {
        self.shared.bus.subscribe()
    }

    /// Stops intake, lets every stage drain, joins the threads and returns the final
    /// snapshot. Later submissions and commands are refused; calling it again returns the
    /// same snapshot.
    pub fn shutdown(&self) -> Snapshot {
        let mut last = self.last.lock();
        if let Some(s) = last.as_ref() {
            return s.clone();
        }
        // Waits for every submission and command in progress (they hold the read side).
        let intake = self.intake.write().take();
        drop(intake);
        self.ticker_stop.lock().take();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        // Every stage has flushed: what remains unsynced under group commit goes to disk.
        if let Some(sink) = self.shared.journal.as_ref() {
            let _ = sink.lock().sync();
        }
        let snapshot = center::snapshot(&self.shared);
        *last = Some(snapshot.clone());
        snapshot
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The intake: the sender into the collect stage, `None` once shut down. Submissions and
/// commands hold it for reading while they act; shutdown and a checkpoint's start take
/// it for writing.
type Intake = RwLock<Option<Sender<CollectMsg>>>;

/// Writes a snapshot without stopping the engine for its length. Under the intake's write
/// lock (every submission and command in progress done, none starting) the journal's next
/// position is read: every record before it has its effect in the store (reports are
/// stored before their submission answers; everything else is changed in the store
/// before it is journaled). Then the store is read segment by segment while the engine
/// runs on: what changes meanwhile is journaled after the position, and replay skips
/// what the snapshot holds already (see `recover.rs`). Worker statuses change under the
/// journal's lock, so the snapshot has each status its records before the position gave.
fn checkpoint(s: &Shared, intake: &Intake) -> Result<Checkpoint, EngineError> {
    let Some(sink) = s.journal.as_ref() else {
        return Err(EngineError::Config {
            field: "journal",
            why: "is needed for a checkpoint",
        });
    };
    let (covers, stager) = {
        let gate = intake.write();
        if gate.is_none() {
            return Err(EngineError::Config {
                field: "engine",
                why: "is shut down",
            });
        }
        let mut sink = sink.lock();
        if let Some(e) = sink.failed.clone() {
            return Err(EngineError::Journal(e));
        }
        let journal = sink.journal();
        (journal.next_position(), journal.snapshot_stager())
    };
    let archived = super::archive::archive(s, s.now()).map_err(EngineError::Archive)?;
    let state = super::checkpoint::encode(s);
    // The bulk is written while the engine appends on; only the install (sync what the
    // snapshot covers, rename) holds the journal.
    let staged = stager(covers, &state)?;
    let mut sink = sink.lock();
    let journal = sink.journal();
    journal.install_snapshot(staged)?;
    let compaction = journal.compact()?;
    s.last_checkpoint.store(covers, Ordering::Relaxed);
    s.last_checkpoint_cases.store(
        s.next_id
            .load(Ordering::Relaxed)
            .saturating_sub(s.archive.len()),
        Ordering::Relaxed,
    );
    Ok(Checkpoint {
        covers,
        bytes: state.len() as u64,
        archived,
        compaction,
    })
}

/// The checkpoint thread: looks once a second whether enough has been journaled since the
/// last snapshot.
/// Journal records per case held at the latest snapshot before the next automatic one.
const PER_CASE: u64 = 8;

fn run_checkpointer(s: &Shared, intake: &Intake, stop: &crossbeam_channel::Receiver<()>) {
    let every = s.config.checkpoint_every;
    loop {
        match stop.recv_timeout(std::time::Duration::from_secs(1)) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(sink) = s.journal.as_ref() else {
            return;
        };
        let next = sink.lock().journal().next_position();
        // A snapshot costs in proportion to the cases it holds: waiting for eight records
        // per case keeps that cost a fixed share of the work, and replay after it no
        // longer than loading it.
        let due = every.max(
            s.last_checkpoint_cases
                .load(Ordering::Relaxed)
                .saturating_mul(PER_CASE),
        );
        if next.saturating_sub(s.last_checkpoint.load(Ordering::Relaxed)) < due {
            continue;
        }
        // A failure leaves the journal whole: the next look tries again.
        if let Err(EngineError::Config { .. }) = checkpoint(s, intake) {
            return;
        }
    }
}

/// One command on one case, under its segment's lock.
fn command(
    s: &Shared,
    id: u64,
    rec: &mut Rec,
    c: &Command,
    now: Timestamp,
    out: &mut Out,
) -> Result<CaseState, LifecycleError> {
    match c {
        Command::Accept { worker, .. } => handle::accept(s, id, rec, *worker, now, out),
        Command::Return { worker, reason, .. } => {
            handle::return_case(s, id, rec, *worker, reason.as_deref(), now, out)
        }
        Command::Resolve { worker, .. } => handle::resolve(s, id, rec, *worker, now, out),
        Command::Dispatch {
            worker,
            over_capacity,
            ..
        } => handle::dispatch_to(s, id, rec, *worker, over_capacity.as_deref(), now, out),
        Command::Extend { by, reason, .. } => handle::extend(s, id, rec, *by, reason, now, out),
        Command::Suspend { reason, .. } => handle::suspend(s, id, rec, reason, now, out),
        Command::Resume { .. } => handle::resume(s, id, rec, now, out),
        Command::Verify { by, passed, .. } => feedback::verify(id, rec, *by, *passed, now, out),
        Command::Close { satisfaction, .. } => feedback::close(s, id, rec, *satisfaction, now, out),
        Command::Reopen { reason, .. } => feedback::reopen(s, id, rec, reason, now, out),
    }
}

/// Moves a case, records it, and tells the subscribers.
#[inline]
pub(crate) fn step(
    rec: &mut Rec,
    id: u64,
    now: Timestamp,
    to: CaseState,
    action: super::lifecycle::Action,
    actor: super::lifecycle::Actor,
    out: &mut Out,
) {
    let t = rec.go(now, to, action, actor);
    out.event(id, rec.history.len() - 1, t);
}

/// A case reached a terminal state: the router forgets it, it takes no more duplicates,
/// and its own duplicates close with it.
pub(crate) fn finish(id: u64, rec: &mut Rec, out: &mut Out) {
    out.finished.push(id);
    // The router keeps a record only of a case someone holds or returned: the holder was
    // released already when it was resolved.
    if rec.returns > 0 || rec.worker != NONE32 {
        out.forget.push(id);
    }
    if rec.parent == super::case::NONE64 && rec.cell != NONE32 {
        out.dedupe_remove.push((id, rec.category, rec.location));
    }
    if let Some(extra) = rec.extra.as_mut() {
        out.close_children.extend_from_slice(&extra.duplicates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Every (slot, case) pair lands under its slot once, each slot once, whether the
        /// slots are few (scanned) or many (sorted).
        #[test]
        fn timers_are_grouped_by_slot(
            arm in proptest::collection::vec((0u64..20, 0u64..1_000_000), 0..200),
        ) {
            let mut expected: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
            for &(slot, id) in &arm {
                expected.entry(slot).or_default().push(id);
            }
            let mut got: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
            for (slot, ids) in group_by_slot(arm) {
                proptest::prop_assert!(got.insert(slot, ids.to_vec()).is_none(), "slot {} twice", slot);
            }
            for ids in expected.values_mut().chain(got.values_mut()) {
                ids.sort_unstable();
            }
            proptest::prop_assert_eq!(got, expected);
        }
    }

    /// The gate opens when every live dispatcher has arrived, and does not wait for one
    /// that died meanwhile.
    #[test]
    fn a_gate_waits_for_the_live_only() {
        use std::sync::atomic::AtomicUsize;
        let live = Arc::new(AtomicUsize::new(3));
        let gate = Arc::new(Gate::default());
        let passed = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (live, gate, passed) = (live.clone(), gate.clone(), passed.clone());
                std::thread::spawn(move || {
                    gate.wait(&live);
                    passed.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            passed.load(Ordering::SeqCst),
            0,
            "two of three live arrived"
        );
        // The third dies instead of arriving.
        live.fetch_sub(1, Ordering::AcqRel);
        for w in waiters {
            w.join().expect("no panic");
        }
        assert_eq!(passed.load(Ordering::SeqCst), 2);
    }
    use crate::clock::SimClock;
    use crate::grid::Location;

    #[test]
    fn a_batch_is_collected_on_its_own_thread_only_when_the_stage_is_idle() {
        let city = Arc::new(crate::city::demo::demo_city());
        let engine = Engine::builder(city.clone())
            .clock(SimClock::new(Timestamp(1_764_460_800_000)))
            .build()
            .expect("engine");
        let category = city.category_id("ZF-01").expect("in the catalogue");
        let [x0, y0, x1, y1] = city.grid().bounds();
        let batch = |n: u32| -> Vec<Report> {
            (0..n)
                .map(|i| {
                    let f = f64::from(i) / f64::from(n);
                    let at = Location::new(x0 + (x1 - x0) * f, y0 + (y1 - y0) * (1.0 - f))
                        .expect("valid");
                    Report::new(Source::Hotline, category, at, Timestamp(1_764_460_800_000))
                        .with_reporter(Reporter::Citizen(i))
                })
                .collect()
        };
        let ids = |answers: Vec<Result<CaseId, SubmitError>>| -> Vec<CaseId> {
            answers.into_iter().map(|a| a.expect("valid")).collect()
        };
        let reported = |ids: &[CaseId]| {
            ids.iter()
                .filter(|&&id| engine.case(id).expect("stored").state == CaseState::Reported)
                .count()
        };
        // Idle stage, empty channel: collected before the call returns, no flush needed.
        let here = || engine.shared.collected_here.load(Ordering::Relaxed);
        let first = ids(engine.submit_batch(batch(300)));
        assert_eq!(reported(&first), 0, "collected on the submitting thread");
        assert_eq!(here(), 1);
        // The stage busy: the batch goes to the channel and waits its turn.
        let busy = engine.shared.collecting.lock();
        let second = ids(engine.submit_batch(batch(300)));
        assert_eq!(reported(&second), second.len(), "left to the collect stage");
        assert_eq!(here(), 1);
        // The second batch waiting in the channel, or taken by the collect thread and
        // held at the start of its collection: the next one is not collected ahead of it.
        let stalled = engine.shared.pause.lock();
        drop(busy);
        let third = ids(engine.submit_batch(batch(10)));
        assert_eq!(reported(&third), third.len(), "queued behind the second");
        assert_eq!(here(), 1);
        drop(stalled);
        engine.flush();
        assert_eq!(reported(&second) + reported(&third), 0);
        let s = engine.shutdown();
        assert_eq!(s.cases, 610);
    }

    #[test]
    fn try_submit_answers_full_with_the_report_under_backpressure() {
        let city = Arc::new(crate::city::demo::demo_city());
        let engine = Engine::builder(city.clone())
            .clock(SimClock::new(Timestamp(1_764_460_800_000)))
            .config(EngineConfig {
                batch: 1,
                channel_batches: 1,
                ..EngineConfig::default()
            })
            .build()
            .expect("engine");
        let category = city.category_id("ZF-01").expect("in the catalogue");
        let at = Location::new(120.33, 36.12).expect("valid");
        let report = |i: u32| {
            Report::new(Source::Hotline, category, at, Timestamp(1_764_460_800_000))
                .with_reporter(Reporter::Citizen(i))
        };
        let stalled = engine.shared.pause.lock();
        let mut taken = Vec::new();
        let mut full = None;
        // The collect stage takes at most one message and stops; the channel holds one more.
        for i in 0..4 {
            match engine.try_submit(report(i)) {
                Ok(id) => taken.push(id),
                Err(SubmitError::Full(r)) => {
                    full = Some((i, r));
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let (i, handed_back) = full.expect("the intake filled up");
        assert!(i <= 2, "full after {i}");
        assert_eq!(
            *handed_back,
            report(i),
            "the refused report comes back whole"
        );
        drop(stalled);
        let s = engine.shutdown();
        assert_eq!(
            s.cases,
            taken.len() as u64,
            "the refused report left no case behind"
        );
        assert_eq!(s.by_state["reported"], 0);
    }

    #[test]
    fn a_report_handed_back_full_is_withdrawn_in_the_journal() {
        use crate::journal::Journal;
        use crate::pipeline::wal::{Record, decode};
        let dir = tempfile::tempdir().expect("temp dir");
        let city = Arc::new(crate::city::demo::demo_city());
        let engine = Engine::builder(city.clone())
            .clock(SimClock::new(Timestamp(1_764_460_800_000)))
            .config(EngineConfig {
                batch: 1,
                channel_batches: 1,
                ..EngineConfig::default()
            })
            .journal(Box::new(
                crate::journal::FileJournal::open(dir.path()).expect("opens"),
            ))
            .build()
            .expect("engine");
        let category = city.category_id("ZF-01").expect("in the catalogue");
        let at = Location::new(120.33, 36.12).expect("valid");
        let stalled = engine.shared.pause.lock();
        let mut full = 0;
        for i in 0..4 {
            let r = Report::new(Source::Hotline, category, at, Timestamp(1_764_460_800_000))
                .with_reporter(Reporter::Citizen(i));
            if let Err(SubmitError::Full(_)) = engine.try_submit(r) {
                full += 1;
                break;
            }
        }
        assert_eq!(full, 1, "the intake filled up");
        drop(stalled);
        engine.shutdown();
        let mut j = crate::journal::FileJournal::open(dir.path()).expect("reopens");
        let mut reports = Vec::new();
        let mut withdrawn = Vec::new();
        let mut bad = Vec::new();
        j.read_from(0, &mut |pos, bytes| {
            match decode(bytes) {
                Ok(Record::Report { case, .. }) => reports.push(case),
                Ok(Record::Withdrawn { case }) => withdrawn.push(case),
                Ok(_) => {}
                Err(e) => bad.push((pos, e)),
            }
            std::ops::ControlFlow::Continue(())
        })
        .expect("reads");
        assert_eq!(bad, vec![]);
        assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
        assert!(
            reports.contains(&withdrawn[0]),
            "withdrawn after its report"
        );
        assert!(engine.case(CaseId(withdrawn[0])).is_none());
        for &id in reports.iter().filter(|&&id| id != withdrawn[0]) {
            assert!(engine.case(CaseId(id)).is_some(), "case {id} kept");
        }
    }
}
