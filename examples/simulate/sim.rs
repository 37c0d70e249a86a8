//! The simulated day: arrivals, shifts, workers acting on what the engine gives them,
//! the clock moving a minute at a time, deadlines ticking.

use crate::input::Event;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::error::Error;
use std::time::Duration;
use wangge::pipeline::{Notice, Reporter};
use wangge::{
    CaseId, CaseState, CategoryId, CellId, City, Command, Engine, Location, Priority, Report,
    Satisfaction, SimClock, Source, Timestamp, Verifier, WorkerId, WorkerStatus,
};

pub const MINUTE: u64 = 60_000;
pub const DAY_MIN: u64 = 24 * 60;
/// 2026-12-01 00:00 UTC: the simulated day starts at midnight.
pub const START: u64 = 1_796_083_200_000;

/// SplitMix64 with the few distributions the simulation needs.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    /// Poisson by inversion (means of a few per minute).
    fn poisson(&mut self, mean: f64) -> usize {
        let (mut k, mut p, l) = (0, 1.0, (-mean).exp());
        loop {
            p *= self.unit();
            if p <= l || k > 10_000 {
                return k;
            }
            k += 1;
        }
    }
    fn minutes(&mut self, lo: u64, hi: u64) -> u64 {
        (lo + self.below((hi - lo + 1) as usize) as u64) * MINUTE
    }
    fn pick(&mut self, weights: &[f64], total: f64) -> usize {
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            x -= w;
            if x <= 0.0 {
                return i;
            }
        }
        weights.len() - 1
    }
}

/// Relative arrivals by hour of day (mean 1): quiet nights, a morning and an afternoon peak.
const HOURLY: [f64; 24] = [
    0.25, 0.18, 0.14, 0.14, 0.2, 0.35, 0.7, 1.2, 1.6, 1.85, 1.9, 1.7, 1.25, 1.35, 1.65, 1.75, 1.65,
    1.45, 1.2, 1.0, 0.85, 0.65, 0.5, 0.37,
];

/// Shifts: (start minute, length minutes, share of workers).
const SHIFTS: [(u64, u64, f64); 3] = [
    (7 * 60, 12 * 60, 0.6),
    (12 * 60, 12 * 60, 0.25),
    (19 * 60, 12 * 60, 0.15),
];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    AcceptOrReturn(WorkerId),
    Resolve(WorkerId),
    Verify,
    Close,
    Manual,
}

/// The state of one worker as the simulation sees it.
pub struct Person {
    pub pos: [f64; 2],
    pub shift: (u64, u64),
    pub on: bool,
    pub free_at: u64,
    pub resolved: u32,
    pub returned: u32,
}

impl Person {
    fn on_duty_at(&self, minute_of_day: u64) -> bool {
        let (s, len) = self.shift;
        (minute_of_day + DAY_MIN - s) % DAY_MIN < len
    }
    /// The first time at or after `t` (ms since START) when the worker is on duty.
    fn next_on(&self, t: u64) -> u64 {
        let m = t / MINUTE;
        if self.on_duty_at(m % DAY_MIN) {
            return t;
        }
        let (s, _) = self.shift;
        let wait = (s + DAY_MIN - m % DAY_MIN) % DAY_MIN;
        (m + wait) * MINUTE
    }
    /// When `work` done from `t` ends, counting only on-duty time (roughly: work going
    /// past the shift's end goes on at the next shift's start).
    fn finish(&self, t: u64, work: u64) -> u64 {
        let t = self.next_on(t);
        let m = t / MINUTE;
        let (s, len) = self.shift;
        let end_of_shift = (m - (m + DAY_MIN - s) % DAY_MIN + len) * MINUTE;
        if t + work <= end_of_shift {
            t + work
        } else {
            let left = t + work - end_of_shift;
            self.next_on(end_of_shift + MINUTE) + left
        }
    }
}

/// One point of the day's time series.
#[derive(serde::Serialize, Clone, Copy)]
pub struct Sample {
    pub hour: f64,
    pub submitted: u64,
    pub backlog: u64,
    pub queued: u64,
    pub overdue: u64,
    pub on_time_rate: Option<f64>,
    pub closure_rate: Option<f64>,
}

/// What the run produced besides the engine's own state.
pub struct Run {
    pub people: Vec<Person>,
    pub samples: Vec<Sample>,
    /// Hourly queue lengths by organ id.
    pub queue_samples: Vec<BTreeMap<String, u64>>,
    /// Last state per case seen on the event stream (by the highest sequence number).
    pub streamed: Vec<Option<(u32, CaseState)>>,
    pub missed_events: u64,
    pub refused: BTreeMap<String, u64>,
    pub generated: u64,
    pub stale_actions: u64,
    pub commands: u64,
    pub by_source: BTreeMap<&'static str, u64>,
}

pub struct Params<'a> {
    pub days: u64,
    pub per_day: f64,
    pub seed: u64,
    pub replay: Option<&'a [Event]>,
    pub progress: Option<&'a indicatif::ProgressBar>,
}

fn center_of(city: &City, cell: CellId) -> [f64; 2] {
    city.grid()
        .cell_bounds(cell)
        .map_or([0.0, 0.0], |[a, b, c, d]| [(a + c) / 2.0, (b + d) / 2.0])
}

fn point_in(city: &City, cell: CellId, rng: &mut Rng) -> Option<Location> {
    let [x0, y0, x1, y1] = city.grid().cell_bounds(cell)?;
    for _ in 0..8 {
        let p = Location::new(x0 + (x1 - x0) * rng.unit(), y0 + (y1 - y0) * rng.unit()).ok()?;
        if city.grid().covers(cell, p) {
            return Some(p);
        }
    }
    let c = center_of(city, cell);
    Location::new(c[0], c[1]).ok()
}

/// Metres between two lon/lat points (equirectangular: cells are small).
fn metres(a: [f64; 2], b: [f64; 2]) -> f64 {
    let k = (a[1].to_radians()).cos();
    let dx = (a[0] - b[0]) * k * 111_320.0;
    let dy = (a[1] - b[1]) * 110_540.0;
    (dx * dx + dy * dy).sqrt()
}

pub fn run(
    engine: &Engine,
    clock: &SimClock,
    sub: &wangge::pipeline::Subscription,
    p: &Params,
) -> Result<Run, Box<dyn Error>> {
    let city = engine.city();
    let mut rng = Rng(p.seed ^ 0x5eed);
    // People's choices draw from their own stream, so that arrivals do not depend on the
    // order in which the engine's stages report what they did.
    let mut act_rng = Rng(p.seed ^ 0xac75);
    let n_workers = city.workers().len();
    let n_cells = city.grid().len();
    // Workers: a shift each, a position in their home cells or their street's first cell.
    let share_total: f64 = SHIFTS.iter().map(|s| s.2).sum();
    let shares: Vec<f64> = SHIFTS.iter().map(|s| s.2).collect();
    let mut people: Vec<Person> = (0..n_workers)
        .map(|w| {
            let id = WorkerId::from_index(w).expect("worker index");
            let home = city.home_cells(id);
            let cell = home.first().copied().or_else(|| {
                let street = city.worker_street(id)?;
                let community = city.children(street).first().copied()?;
                city.community_cells(community).first().copied()
            });
            let k = rng.pick(&shares, share_total);
            Person {
                pos: cell.map_or([0.0, 0.0], |c| center_of(city, c)),
                shift: (SHIFTS[k].0, SHIFTS[k].1),
                on: false,
                free_at: 0,
                resolved: 0,
                returned: 0,
            }
        })
        .collect();
    // Arrival mix: categories weighted per source, hot spots, sensor sites.
    let n_cat = city.categories().len();
    let cat_weights: Vec<f64> = (0..n_cat).map(|_| (rng.normal() * 0.9).exp()).collect();
    let cat_total: f64 = cat_weights.iter().sum();
    let sensor_cats: Vec<usize> = (0..4.min(n_cat)).map(|_| rng.below(n_cat)).collect();
    let hot: Vec<CellId> = (0..12)
        .filter_map(|_| CellId::from_index(rng.below(n_cells)))
        .collect();
    let sensors: Vec<CellId> = (0..200)
        .filter_map(|_| CellId::from_index(rng.below(n_cells)))
        .collect();
    let (patrol_share, hotline_share, sensor_share) = (0.45, 0.4, 0.15);

    let mut heap: BinaryHeap<Reverse<(u64, u64, Act)>> = BinaryHeap::new();
    let mut out = Run {
        people: Vec::new(),
        samples: Vec::new(),
        queue_samples: Vec::new(),
        streamed: Vec::new(),
        missed_events: 0,
        refused: BTreeMap::new(),
        generated: 0,
        stale_actions: 0,
        commands: 0,
        by_source: BTreeMap::new(),
    };
    let mut next_event = 0usize;
    let minutes = p.days * DAY_MIN;
    let mut batch: Vec<Report> = Vec::new();
    let mut commands: Vec<Command> = Vec::new();
    let mut results = Vec::new();
    let mut shifts = Vec::new();
    for m in 0..=minutes {
        let now = m * MINUTE;
        clock.set(Timestamp(START + now));
        // Shifts, changed in one call: a worker coming on duty starts their street's
        // queues on the assign thread, which must not run while later changes are made
        // (the day would then depend on how the threads happen to run).
        shifts.clear();
        for (w, person) in people.iter_mut().enumerate() {
            let on = person.on_duty_at(m % DAY_MIN);
            if on != person.on || m == 0 {
                person.on = on;
                let status = if on {
                    WorkerStatus::OnDuty
                } else {
                    WorkerStatus::OffDuty
                };
                shifts.push((WorkerId::from_index(w).ok_or("worker")?, status));
            }
        }
        engine.set_worker_statuses(&shifts)?;
        // Arrivals of this minute.
        batch.clear();
        if let Some(events) = p.replay {
            while next_event < events.len() && events[next_event].offset_ms <= now {
                let e = &events[next_event];
                next_event += 1;
                let at = Timestamp(START + e.offset_ms);
                batch.push(
                    Report::new(Source::Hotline, e.category, e.location, at)
                        .with_reporter(Reporter::Citizen(e.caller)),
                );
                *out.by_source.entry("replay").or_insert(0) += 1;
            }
        } else if m < minutes {
            let h = ((m % DAY_MIN) / 60) as usize;
            let per_min = p.per_day / DAY_MIN as f64;
            let daytime = if (7..19).contains(&h) { 2.0 } else { 0.0 };
            let counts = [
                (
                    Source::Patrol,
                    rng.poisson(per_min * patrol_share * daytime),
                ),
                (
                    Source::Hotline,
                    rng.poisson(per_min * hotline_share * HOURLY[h]),
                ),
                (Source::Sensor, rng.poisson(per_min * sensor_share)),
            ];
            for (source, k) in counts {
                for _ in 0..k {
                    let at = Timestamp(START + now - rng.below(60) as u64 * 1000);
                    let priority = match rng.below(100) {
                        0..=2 => Priority::Urgent,
                        3..=14 => Priority::High,
                        15..=84 => Priority::Normal,
                        _ => Priority::Low,
                    };
                    let (cell, reporter, spot) = match source {
                        Source::Patrol => {
                            let w = rng.below(n_workers);
                            let id = WorkerId::from_index(w).ok_or("worker")?;
                            let home = city.home_cells(id);
                            if !people[w].on || home.is_empty() {
                                continue;
                            }
                            let cell = home[rng.below(home.len())];
                            (cell, Reporter::Worker(id), rng.below(4) == 0)
                        }
                        Source::Sensor => {
                            let cell = sensors[rng.below(sensors.len())];
                            (cell, Reporter::Sensor(cell.index() as u32), false)
                        }
                        _ => {
                            let cell = if rng.below(100) < 35 && !hot.is_empty() {
                                hot[rng.below(hot.len())]
                            } else {
                                CellId::from_index(rng.below(n_cells)).ok_or("cell")?
                            };
                            (cell, Reporter::Citizen(rng.below(1 << 24) as u32), false)
                        }
                    };
                    let Some(mut loc) = point_in(city, cell, &mut rng) else {
                        continue;
                    };
                    if source == Source::Hotline && hot.contains(&cell) {
                        // Hot spots spill over a few hundred metres around them.
                        if let Ok(l) = Location::new(
                            loc.lon() + rng.normal() * 0.004,
                            loc.lat() + rng.normal() * 0.003,
                        ) {
                            loc = l;
                        }
                    }
                    let category = if source == Source::Sensor && !sensor_cats.is_empty() {
                        sensor_cats[rng.below(sensor_cats.len())]
                    } else {
                        rng.pick(&cat_weights, cat_total)
                    };
                    let category = CategoryId::from_index(category).ok_or("category")?;
                    let mut r = Report::new(source, category, loc, at)
                        .with_priority(priority)
                        .with_reporter(reporter);
                    if spot {
                        r = r.on_the_spot();
                    }
                    *out.by_source.entry(source_name(source)).or_insert(0) += 1;
                    batch.push(r);
                }
            }
        }
        out.generated += batch.len() as u64;
        if !batch.is_empty() {
            for r in engine.submit_batch(std::mem::take(&mut batch)) {
                if let Err(e) = r {
                    let why = format!("{e}");
                    let key = why.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                    *out.refused.entry(key).or_insert(0) += 1;
                }
            }
            // The minute's reports are routed before its people act: otherwise a worker
            // freed by this minute's actions may or may not take one of them, as the
            // threads happen to run, and the day would not be repeatable.
            engine.flush();
        }
        // What people do this minute.
        commands.clear();
        let mut acts = Vec::new();
        while let Some(Reverse((t, case, act))) = heap.peek().copied() {
            if t > now {
                break;
            }
            heap.pop();
            acts.push((case, act));
        }
        for (case, act) in acts {
            let case = CaseId(case);
            let cmd = match act {
                Act::AcceptOrReturn(worker) => {
                    if act_rng.below(100) < 4 {
                        people[worker.index()].returned += 1;
                        Command::Return {
                            case,
                            worker,
                            reason: Some("不属于本人职责".into()),
                        }
                    } else {
                        Command::Accept { case, worker }
                    }
                }
                Act::Resolve(worker) => {
                    people[worker.index()].resolved += 1;
                    Command::Resolve { case, worker }
                }
                Act::Verify => Command::Verify {
                    case,
                    by: if act_rng.below(3) == 0 {
                        Verifier::Center
                    } else {
                        Verifier::Inspector(act_rng.below(40) as u32)
                    },
                    passed: act_rng.below(100) >= 6,
                },
                Act::Close => Command::Close {
                    case,
                    satisfaction: Some(match act_rng.below(100) {
                        0..=79 => Satisfaction::Satisfied,
                        80..=93 => Satisfaction::Basic,
                        _ => Satisfaction::Dissatisfied,
                    }),
                },
                Act::Manual => {
                    // The center gives the case to someone on duty where it lies.
                    let Some(cell) = engine.case(case).and_then(|c| c.cell) else {
                        continue;
                    };
                    let on_duty = city
                        .workers_in(cell)
                        .iter()
                        .copied()
                        .find(|w| people[w.index()].on);
                    let Some(worker) = on_duty.or_else(|| city.workers_in(cell).first().copied())
                    else {
                        continue;
                    };
                    Command::Dispatch {
                        case,
                        worker,
                        over_capacity: Some("manual dispatch by the center".into()),
                    }
                }
            };
            commands.push(cmd);
        }
        results.clear();
        results.resize(commands.len(), Ok(CaseState::Reported));
        engine.execute_batch(&commands, &mut results);
        out.commands += commands.len() as u64;
        out.stale_actions += results.iter().filter(|r| r.is_err()).count() as u64;
        engine.flush();
        engine.tick();
        engine.flush();
        // React to what happened.
        let mut seen = Vec::new();
        while let Some(notice) = sub.try_recv() {
            match notice {
                Notice::Event(e) => seen.push(e),
                Notice::Missed(k) => out.missed_events += k,
            }
        }
        seen.sort_by_key(|e| (e.case, e.seq));
        for e in seen {
            let id = e.case.0 as usize;
            if out.streamed.len() <= id {
                out.streamed.resize(id + 1, None);
            }
            if out.streamed[id].is_none_or(|(s, _)| e.seq >= s) {
                out.streamed[id] = Some((e.seq, e.transition.to()));
            }
            let t = e.transition;
            let at = t.at().ms().saturating_sub(START).max(now);
            match t.to() {
                CaseState::Dispatched => {
                    if let Some(w) = t.worker() {
                        let when = people[w.index()].next_on(at) + act_rng.minutes(2, 20);
                        heap.push(Reverse((when, id as u64, Act::AcceptOrReturn(w))));
                    }
                }
                CaseState::Accepted => {
                    let Some(w) = t.worker() else { continue };
                    let Some(case) = engine.case(e.case) else {
                        continue;
                    };
                    let person = &mut people[w.index()];
                    let target = [case.location.lon(), case.location.lat()];
                    // Travel at ~15 km/h, then work for a time that depends on how big a
                    // job the category is (its deadline) with a long tail.
                    let travel = (metres(person.pos, target) / 250.0 * MINUTE as f64) as u64;
                    let deadline = city
                        .category(case.category)
                        .and_then(|c| c.deadline(case.priority))
                        .unwrap_or(Duration::from_secs(24 * 3600));
                    let median = (deadline.as_millis() as f64 * 0.03)
                        .clamp(15.0 * MINUTE as f64, 2.0 * 3_600_000.0);
                    let work = (median * (act_rng.normal() * 0.7).exp()) as u64;
                    let start = at.max(person.free_at);
                    let done = person.finish(start, travel + work);
                    person.free_at = done;
                    person.pos = target;
                    heap.push(Reverse((done, id as u64, Act::Resolve(w))));
                }
                CaseState::Resolved => {
                    heap.push(Reverse((
                        at + act_rng.minutes(15, 120),
                        id as u64,
                        Act::Verify,
                    )));
                }
                CaseState::Verified => {
                    heap.push(Reverse((
                        at + act_rng.minutes(5, 40),
                        id as u64,
                        Act::Close,
                    )));
                }
                CaseState::Ruling => {
                    heap.push(Reverse((
                        at + act_rng.minutes(10, 60),
                        id as u64,
                        Act::Manual,
                    )));
                }
                _ => {}
            }
        }
        if m % 15 == 0 {
            let s = engine.snapshot();
            let open: u64 = s
                .by_state
                .iter()
                .filter(|(k, _)| !matches!(**k, "closed" | "rejected" | "referred" | "merged"))
                .map(|(_, v)| v)
                .sum();
            out.samples.push(Sample {
                hour: m as f64 / 60.0,
                submitted: s.cases,
                backlog: open,
                queued: s.by_state["queued"],
                overdue: s.overdue_by_level.iter().sum(),
                on_time_rate: s.indicators.on_time_rate,
                closure_rate: s.indicators.closure_rate,
            });
            if m % 60 == 0 {
                out.queue_samples.push(s.queues.clone());
            }
        }
        if let Some(pb) = p.progress {
            pb.inc(1);
        }
    }
    out.people = people;
    Ok(out)
}

pub fn source_name(s: Source) -> &'static str {
    match s {
        Source::Patrol => "patrol",
        Source::Hotline => "hotline",
        Source::Sensor => "sensor",
        _ => "referral",
    }
}
