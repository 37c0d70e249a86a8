//! The command center (指挥中心): snapshots with the indicators, and the event bus that
//! feeds subscribers without ever waiting for them.

use super::CaseId;
use super::case::{F_ON_TIME, NONE32, Rec, Satisfaction};
use super::engine::Shared;
use super::lifecycle::{Action, CaseState, Transition};
use crate::city::{OrganId, UnitId};
use crate::clock::Timestamp;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// One transition of one case, as subscribers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseEvent {
    /// The case.
    pub case: CaseId,
    /// Its index in the case's history. Events of one case made by different stages may
    /// arrive out of order; this orders them.
    pub seq: u32,
    /// What happened.
    pub transition: Transition,
}

/// What a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// An event.
    Event(CaseEvent),
    /// The subscriber's buffer was full and this many events went past it.
    Missed(u64),
}

struct Sub {
    tx: Sender<CaseEvent>,
    missed: Arc<AtomicU64>,
}

pub(crate) enum BusMsg {
    Events(Vec<CaseEvent>),
    Barrier(Sender<()>),
    Stop,
}

/// The event bus: stages send it batches of events, it hands them to every subscriber
/// with a non-blocking send.
pub(crate) struct Bus {
    tx: Sender<BusMsg>,
    subs: Arc<Mutex<Vec<Sub>>>,
    count: Arc<AtomicUsize>,
    buffer: usize,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").finish_non_exhaustive()
    }
}

pub(crate) struct BusRx {
    rx: Receiver<BusMsg>,
    subs: Arc<Mutex<Vec<Sub>>>,
    count: Arc<AtomicUsize>,
}

impl Bus {
    pub(crate) fn new(capacity: usize, buffer: usize) -> (Bus, BusRx) {
        let (tx, rx) = bounded(capacity);
        let subs = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        (
            Bus {
                tx,
                subs: subs.clone(),
                count: count.clone(),
                buffer,
            },
            BusRx { rx, subs, count },
        )
    }

    /// Whether anyone listens: events are only gathered when someone does.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn publish(&self, events: Vec<CaseEvent>) {
        let _ = self.tx.send(BusMsg::Events(events));
    }

    pub(crate) fn barrier(&self, tx: Sender<()>) {
        if let Err(e) = self.tx.send(BusMsg::Barrier(tx))
            && let BusMsg::Barrier(tx) = e.0
        {
            let _ = tx.send(());
        }
    }

    pub(crate) fn stop(&self) {
        let _ = self.tx.send(BusMsg::Stop);
    }

    pub(crate) fn subscribe(&self) -> Subscription {
        let (tx, rx) = bounded(self.buffer);
        let missed = Arc::new(AtomicU64::new(0));
        let mut subs = self.subs.lock();
        subs.push(Sub {
            tx,
            missed: missed.clone(),
        });
        self.count.store(subs.len(), Ordering::Relaxed);
        Subscription { rx, missed }
    }
}

/// The bus thread.
pub(crate) fn run_bus(b: &BusRx) {
    for msg in b.rx.iter() {
        match msg {
            BusMsg::Events(events) => {
                let mut subs = b.subs.lock();
                subs.retain(|sub| {
                    for e in &events {
                        match sub.tx.try_send(*e) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                sub.missed.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(TrySendError::Disconnected(_)) => return false,
                        }
                    }
                    true
                });
                b.count.store(subs.len(), Ordering::Relaxed);
            }
            BusMsg::Barrier(tx) => {
                let _ = tx.send(());
            }
            BusMsg::Stop => break,
        }
    }
    // Subscribers see the end of the stream once the engine has shut down.
    b.subs.lock().clear();
    b.count.store(0, Ordering::Relaxed);
}

/// A stream of case events (see [`Engine::subscribe`](crate::Engine::subscribe)). Its
/// buffer is bounded: a subscriber that falls behind misses events instead of slowing the
/// engine, and its next receive says how many it missed.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<CaseEvent>,
    missed: Arc<AtomicU64>,
}

impl Subscription {
    fn missed(&self) -> Option<Notice> {
        let n = self.missed.swap(0, Ordering::Relaxed);
        (n > 0).then_some(Notice::Missed(n))
    }

    /// The next notice, waiting for it; `None` once the engine has shut down and every
    /// event has been read.
    pub fn recv(&self) -> Option<Notice> {
        if let Some(m) = self.missed() {
            return Some(m);
        }
        let e = self.rx.recv().ok().map(Notice::Event);
        e.or_else(|| self.missed())
    }

    /// The next notice if one is waiting.
    pub fn try_recv(&self) -> Option<Notice> {
        self.missed()
            .or_else(|| self.rx.try_recv().ok().map(Notice::Event))
    }

    /// The next notice, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Notice> {
        if let Some(m) = self.missed() {
            return Some(m);
        }
        match self.rx.recv_timeout(timeout) {
            Ok(e) => Some(Notice::Event(e)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => self.missed(),
        }
    }
}

/// All cases and open cases of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Every case.
    pub total: u64,
    /// Cases still open (not closed, rejected, referred or merged).
    pub open: u64,
}

/// The indicators of the command center. Each is `None` while its denominator is zero.
///
/// - 结案率 `closure_rate` = closed / (closed + open), open counting cases admitted and
///   not yet closed (merged, rejected and referred cases in neither);
/// - 按期结案率 `on_time_rate` = closed cases resolved by their deadline / closed, where
///   the deadline moves with every extension and with the time the case stood suspended
///   (suspended time is not counted); a case without a deadline is on time;
/// - 返工率 `rework_rate` = closed cases reopened at least once / closed;
/// - `dispatch_accuracy` = dispatches without a return / dispatches, a dispatch being any
///   move into `dispatched` and a return any 退单 or accept timeout that undid one;
/// - 满意率 `satisfaction_rate` = (满意 + 基本满意) / closed cases with a verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Indicators {
    /// 结案率.
    pub closure_rate: Option<f64>,
    /// 按期结案率.
    pub on_time_rate: Option<f64>,
    /// 返工率.
    pub rework_rate: Option<f64>,
    /// Dispatch accuracy.
    pub dispatch_accuracy: Option<f64>,
    /// 满意率.
    pub satisfaction_rate: Option<f64>,
    /// Closed cases.
    pub closed: u64,
    /// Open admitted cases.
    pub open: u64,
    /// Closed cases resolved on time.
    pub closed_on_time: u64,
    /// Closed cases reopened at least once.
    pub closed_reworked: u64,
    /// Moves into `dispatched`.
    pub dispatches: u64,
    /// Returns and accept timeouts.
    pub undone_dispatches: u64,
    /// Closed cases with a verdict.
    pub rated: u64,
    /// Of which 满意 or 基本满意.
    pub satisfied: u64,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// What the command center sees: a consistent count of every case (each store segment is
/// read under its lock), by state, by platform, district and street, overdue cases by
/// escalation level, queues, loads and the indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// When it was taken (engine clock).
    pub at: Timestamp,
    /// Cases stored.
    pub cases: u64,
    /// Cases by state name (every state present, zeros included).
    pub by_state: BTreeMap<&'static str, u64>,
    /// By the platform of the category (its name).
    pub by_platform: BTreeMap<String, Tally>,
    /// By district (config id) of the case's cell.
    pub by_district: BTreeMap<String, Tally>,
    /// By street office (config id) of the case's cell.
    pub by_street: BTreeMap<String, Tally>,
    /// Pending cases past their deadline, by escalation level: `[0]` overdue and not yet
    /// escalated (the next tick does it), `[k]` escalated `k` levels (督办).
    pub overdue_by_level: Vec<u64>,
    /// Cases waiting in each organ's queue, by organ config id (organs with none left out).
    pub queues: BTreeMap<String, u64>,
    /// Cases each worker holds now (dispatched or accepted), by worker index.
    pub load: Vec<u32>,
    /// Open cases in each cell, by cell index.
    pub open_by_cell: Vec<u32>,
    /// The indicators.
    pub indicators: Indicators,
}

/// What every case adds to the command center's counts, whether it is in the store or
/// archived: by state, by platform, district and street, and the indicators' counts. The
/// counts of archived cases are kept in one of these.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) cases: u64,
    pub(crate) states: [u64; CaseState::ALL.len()],
    pub(crate) platform: [Tally; 4],
    /// By unit id (districts and streets share the numbering).
    pub(crate) district: Vec<Tally>,
    pub(crate) street: Vec<Tally>,
    pub(crate) ind: Indicators,
}

impl Totals {
    pub(crate) fn new(units: usize) -> Totals {
        Totals {
            district: vec![Tally::default(); units],
            street: vec![Tally::default(); units],
            ..Totals::default()
        }
    }

    /// Counts one case. `chain` is the district and street of its cell.
    pub(crate) fn add(&mut self, city: &crate::City, rec: &Rec, chain: Option<(UnitId, UnitId)>) {
        self.cases += 1;
        let st = rec.state;
        self.states[st.index()] += 1;
        let bump = |t: &mut Tally| {
            t.total += 1;
            t.open += u64::from(st.is_open());
        };
        if let Some(c) = city.category(rec.category()) {
            let p = crate::city::Platform::ALL
                .iter()
                .position(|&p| p == c.platform)
                .unwrap_or(0);
            bump(&mut self.platform[p]);
        }
        if let Some((d, street)) = chain {
            if let Some(t) = self.district.get_mut(d.index()) {
                bump(t);
            }
            if let Some(t) = self.street.get_mut(street.index()) {
                bump(t);
            }
        }
        let ind = &mut self.ind;
        if st.is_open() && st != CaseState::Reported {
            ind.open += 1;
        }
        if st == CaseState::Closed && rec.parent == super::case::NONE64 {
            ind.closed += 1;
            ind.closed_on_time += u64::from(rec.flags & F_ON_TIME != 0);
            ind.closed_reworked += u64::from(rec.reopens > 0);
            if let Some(v) = rec.satisfaction() {
                ind.rated += 1;
                ind.satisfied += u64::from(v != Satisfaction::Dissatisfied);
            }
        }
        for t in &rec.history {
            // A return that goes straight to another worker is one dispatch undone and
            // one made: both are counted.
            if t.to() == CaseState::Dispatched {
                ind.dispatches += 1;
            }
            if matches!(t.action(), Action::Return | Action::AcceptTimeout) {
                ind.undone_dispatches += 1;
            }
        }
    }

    /// Adds another's counts.
    pub(crate) fn merge(&mut self, o: &Totals) {
        self.cases += o.cases;
        for (a, b) in self.states.iter_mut().zip(&o.states) {
            *a += b;
        }
        let tallies = |a: &mut [Tally], b: &[Tally]| {
            for (a, b) in a.iter_mut().zip(b) {
                a.total += b.total;
                a.open += b.open;
            }
        };
        tallies(&mut self.platform, &o.platform);
        tallies(&mut self.district, &o.district);
        tallies(&mut self.street, &o.street);
        let (a, b) = (&mut self.ind, &o.ind);
        a.closed += b.closed;
        a.open += b.open;
        a.closed_on_time += b.closed_on_time;
        a.closed_reworked += b.closed_reworked;
        a.dispatches += b.dispatches;
        a.undone_dispatches += b.undone_dispatches;
        a.rated += b.rated;
        a.satisfied += b.satisfied;
    }
}

/// The district and street of a cell, looked up once per cell for a scan.
pub(crate) fn chain_of(
    city: &crate::City,
    chains: &mut [Option<(UnitId, UnitId)>],
    cell: Option<crate::grid::CellId>,
) -> Option<(UnitId, UnitId)> {
    let cell = cell?;
    let slot = chains.get_mut(cell.index())?;
    if slot.is_none() {
        *slot = city.chain(cell).map(|c| (c.district, c.street));
    }
    *slot
}

pub(crate) fn snapshot(s: &Shared) -> Snapshot {
    let now = s.now();
    let city = &s.city;
    let mut overdue = vec![0u64; usize::from(s.config.max_escalation) + 1];
    let mut queues = vec![0u64; city.organs().len()];
    let mut load = vec![0u32; city.workers().len()];
    let mut open_by_cell = vec![0u32; city.grid().len()];
    let mut chains: Vec<Option<(UnitId, UnitId)>> = vec![None; city.grid().len()];
    let end = s.next_id.load(Ordering::Relaxed);
    // Held while the store is read: cases moving to the archive wait, so that each is
    // counted once, in the store or in the archive's totals.
    let archived = s.archive.totals.lock();
    let mut totals = Totals::new(city.units().len());
    s.store.scan(end, |_, rec| {
        let chain = chain_of(city, &mut chains, rec.cell());
        totals.add(city, rec, chain);
        let st = rec.state;
        if let Some(cell) = rec.cell()
            && st.is_open()
            && let Some(n) = open_by_cell.get_mut(cell.index())
        {
            *n += 1;
        }
        if st == CaseState::Queued && rec.organ != NONE32 {
            queues[rec.organ as usize] += 1;
        }
        if matches!(st, CaseState::Dispatched | CaseState::Accepted)
            && let Some(w) = rec.worker()
        {
            load[w.index()] += 1;
        }
        if st.is_pending() && rec.due != 0 && rec.suspended_at == 0 && now.0 > rec.due {
            let level = usize::from(rec.escalation).min(overdue.len() - 1);
            overdue[level] += 1;
        }
    });
    totals.merge(&archived);
    drop(archived);
    let Totals {
        cases,
        states,
        platform,
        district,
        street,
        mut ind,
    } = totals;
    ind.closure_rate = ratio(ind.closed, ind.closed + ind.open);
    ind.on_time_rate = ratio(ind.closed_on_time, ind.closed);
    ind.rework_rate = ratio(ind.closed_reworked, ind.closed);
    ind.dispatch_accuracy = ratio(
        ind.dispatches.saturating_sub(ind.undone_dispatches),
        ind.dispatches,
    );
    ind.satisfaction_rate = ratio(ind.satisfied, ind.rated);
    let named = |v: Vec<Tally>| -> BTreeMap<String, Tally> {
        v.into_iter()
            .enumerate()
            .filter(|(_, t)| t.total > 0)
            .filter_map(|(u, t)| Some((city.unit(UnitId(u as u32))?.id.clone(), t)))
            .collect()
    };
    Snapshot {
        at: now,
        cases,
        by_state: CaseState::ALL
            .iter()
            .map(|s| (s.as_str(), states[s.index()]))
            .collect(),
        by_platform: crate::city::Platform::ALL
            .iter()
            .zip(platform)
            .filter(|(_, t)| t.total > 0)
            .map(|(p, t)| (p.to_string(), t))
            .collect(),
        by_district: named(district),
        by_street: named(street),
        overdue_by_level: overdue,
        queues: queues
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .filter_map(|(o, n)| Some((city.organ(OrganId(o as u32))?.id.clone(), n)))
            .collect(),
        load,
        open_by_cell,
        indicators: ind,
    }
}
