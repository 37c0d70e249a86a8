//! Drives generated reports through the whole engine on a generated city, with simulated
//! handling, and prints one JSON line.
//!
//! ```text
//!   generated city ─► Engine (SimClock)
//!   in waves of 65,536 reports:
//!     the wave's reports are generated (not timed: generate_seconds)
//!     dispatch, timed: submit_batch × 16 ─► collect ─► assign ─► flush
//!                     (--dispatchers N: N threads that each collect and route a batch)
//!                     (dispatch_per_sec = N / the dispatch parts; their CPU by thread
//!                      in dispatch_cpu_by_thread: submit, wangge-collect, wangge-assign)
//!     handling, timed: passes over the wave's cases until all are final:
//!        dispatched ─► return (--return-rate) or accept + resolve
//!        resolved   ─► verify: fail (--rework-rate, reopened and routed again) or pass + close
//!        ruling / long-queued ─► the center dispatches by hand
//!     (cases_per_sec = N / the whole run less generate_seconds)
//!   checks: by_state adds up to N and every case is final; the history of every case is
//!   legal by the published table; bytes_per_case from a counting allocator
//! ```
//!
//! `cargo run --release --example throughput -- [--cases N] [--cells C] [--workers W]
//!  [--dispatchers D] [--dedupe-m M] [--return-rate R] [--rework-rate F]
//!  [--transitions FILE] [--journal DIR] [--sync-records N] [--sync-millis M] [--checkpoint]
//!  [--checkpoint-every R] [--segment-bytes B] [--archive-after SECS]`
//!
//! `--journal DIR` writes every report and transition ahead to a file journal in DIR
//! (group commit, the default). What DIR holds already is recovered first (the latest
//! snapshot, then the records after it): `recovered_cases` and `recovery_seconds` say
//! how many cases and how long; the recovered cases that are still open are handled to
//! the end like the new ones, and `by_state` counts every case, recovered and new.
//! `--cases 0` only recovers and reports. `--checkpoint` writes a snapshot at the end
//! (and compacts the journal), so that the next recovery loads it instead of replaying
//! every record. A damaged tail found on opening is reported on stderr and cut off;
//! damage before the tail is an error (exit status 1).

use clap::Parser;
use serde::Serialize;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use wangge::Clock;
use wangge::config::MAX_CAPACITY;
use wangge::demo::demo_config_with_workers;
use wangge::generate::{self, CityParams};
use wangge::journal::{FileJournal, JournalOptions, SyncPolicy};
use wangge::pipeline::{CaseBrief, Reporter, is_legal_move, is_legal_start};
use wangge::rng::SplitMix64 as Rng;
use wangge::{
    CaseId, CaseState, City, Command, Engine, EngineConfig, Grid, LifecycleError, Location,
    Priority, Report, Satisfaction, SimClock, Source, Timestamp, Verifier, WorkerId,
};

/// Counts allocations: bytes held per case with its history.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Parser, Debug)]
#[command(about = "Drive generated reports through the whole engine")]
struct Args {
    /// How many reports.
    #[arg(long, default_value_t = 2_000_000)]
    cases: usize,
    /// About how many grid cells the city has.
    #[arg(long, default_value_t = 50_000)]
    cells: usize,
    /// About how many workers.
    #[arg(long, default_value_t = 10_000)]
    workers: usize,
    /// Threads that collect and route new reports in parallel; 0, the engine's default:
    /// the two-stage pipeline, repeatable decision for decision.
    #[arg(long, default_value_t = 0)]
    dispatchers: usize,
    /// Duplicates: reports of one category within this many metres of an open case are
    /// merged under it (the engine's `dedupe_distance_m`; 0 turns the index off).
    #[arg(long, default_value_t = EngineConfig::default().dedupe_distance_m)]
    dedupe_m: f64,
    /// Share of dispatches the worker hands back (退单).
    #[arg(long, default_value_t = 0.03)]
    return_rate: f64,
    /// Share of verifications that fail (返工).
    #[arg(long, default_value_t = 0.03)]
    rework_rate: f64,
    /// Write every transition as CSV: case,at,from,to,actor,worker.
    #[arg(long)]
    transitions: Option<std::path::PathBuf>,
    /// Write ahead to a file journal in this directory, recovering what it holds first.
    #[arg(long)]
    journal: Option<std::path::PathBuf>,
    /// With --journal: write a snapshot at the end and compact the journal.
    #[arg(long)]
    checkpoint: bool,
    /// With --journal: a snapshot by itself every this many records (0: never).
    #[arg(long, default_value_t = 1 << 22)]
    checkpoint_every: u64,
    /// With --journal: at each checkpoint, move cases final for longer than this many
    /// seconds out of memory into archive files in DIR/archive.
    #[arg(long)]
    archive_after: Option<u64>,
    /// With --journal: segment files of at most this many bytes.
    #[arg(long, default_value_t = 64 << 20)]
    segment_bytes: u64,
    /// Group commit: sync once this many records are unsynced (the journal's default).
    #[arg(long, default_value_t = 16_384)]
    sync_records: u64,
    /// Group commit: sync at the latest this many ms after an append.
    #[arg(long, default_value_t = 10)]
    sync_millis: u64,
}

#[derive(Serialize)]
struct Out {
    cases: usize,
    cells: usize,
    workers: usize,
    dispatchers: usize,
    seconds: f64,
    generate_seconds: f64,
    dispatch_seconds: f64,
    dispatch_per_sec: f64,
    cpu_seconds: f64,
    dispatch_cpu_seconds: f64,
    /// The dispatch parts' CPU by thread (the submitting thread as `submit`, the engine's
    /// by their names), from the kernel's per-thread run times; empty where there are none.
    dispatch_cpu_by_thread: BTreeMap<String, f64>,
    cases_per_sec: f64,
    bytes_per_case: f64,
    by_state: BTreeMap<&'static str, u64>,
    commands: u64,
    passes: u32,
    queued_after_dispatch: u64,
    returns: u64,
    reworks: u64,
    manual_dispatches: u64,
    illegal_histories: u64,
    indicators: wangge::pipeline::Indicators,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered_cases: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered_open: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered_from_snapshot: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_records_replayed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkpoint_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    archived_cases: Option<u64>,
}

const BATCH: usize = 4096;
/// Reports per wave.
const WAVE: usize = 1 << 16;
const START: u64 = 1_764_460_800_000;

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let side = ((args.cells as f64 / 0.86).sqrt().ceil() as usize).max(8);
    let params = CityParams {
        seed: 7,
        cols: side,
        rows: side,
        ..CityParams::large()
    };
    let grid = Grid::new(generate::city(&params))?;
    let config = demo_config_with_workers(&grid, args.workers)?;
    let city = Arc::new(City::new(&config, grid)?);
    let clock = SimClock::new(Timestamp(START));
    let dispatchers = args.dispatchers;
    let mut builder = Engine::builder(city.clone())
        .clock(clock.clone())
        .config(EngineConfig {
            checkpoint_every: args.checkpoint_every,
            dispatchers,
            dedupe_distance_m: args.dedupe_m,
            ..EngineConfig::default()
        });
    if let Some(dir) = &args.journal {
        let policy = SyncPolicy::Group {
            records: args.sync_records,
            millis: args.sync_millis,
        };
        let options = JournalOptions::default()
            .sync(policy)
            .segment_bytes(args.segment_bytes);
        let journal = FileJournal::open_with(dir, options)?;
        if let Some(cut) = &journal.recovery().tail_cut {
            eprintln!("journal: {cut}");
        }
        builder = builder.journal(Box::new(journal));
        if let Some(secs) = args.archive_after {
            builder = builder.archive(dir.join("archive"), std::time::Duration::from_secs(secs));
        }
    }
    let recovery_started = Instant::now();
    let engine = builder.build()?;
    let recovery_seconds = args
        .journal
        .as_ref()
        .map(|_| recovery_started.elapsed().as_secs_f64());
    let recovery = engine.recovery().cloned();
    if let Some(r) = &recovery {
        // Time goes on from the latest the journal knows.
        if r.last_time > clock.now() {
            clock.set(r.last_time);
        }
    }
    let recovered = recovery.as_ref().map_or(0, |r| r.cases);
    // Capacity is not what this measures: every worker may hold as many cases as allowed,
    // so that cases are dispatched rather than parked in queues for the whole run.
    let n_workers = city.workers().len();
    for w in 0..n_workers {
        engine
            .router()
            .set_capacity(WorkerId::from_index(w).ok_or("worker id")?, MAX_CAPACITY)?;
    }
    let categories = city.categories().len();
    let b = city.grid().bounds();
    let mut rng = Rng(11 ^ recovered);
    let n = args.cases;

    let region = Region::new(GLOBAL);
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut briefs: Vec<CaseBrief> = Vec::with_capacity(BATCH);
    let mut commands: Vec<Command> = Vec::with_capacity(BATCH * 4);
    let mut results: Vec<Result<CaseState, LifecycleError>> = Vec::new();
    let (mut n_commands, mut returns, mut reworks, mut manual) = (0u64, 0u64, 0u64, 0u64);
    let mut passes = 0;
    let mut dispatch_seconds = 0.0;
    let mut generate_seconds = 0.0;
    let mut dispatch_cpu_seconds = 0.0;
    let mut dispatch_cpu_by_thread: BTreeMap<String, f64> = BTreeMap::new();
    let mut queued_after_dispatch = 0u64;
    let mut done = 0usize;
    // Recovered cases still open are handled first, as a wave of their own with nothing
    // submitted (not with --cases 0, which only recovers).
    let mut recovered_wave = n > 0 && recovery.as_ref().is_some_and(|r| r.open > 0);
    // Waves: each wave is submitted (timed as dispatch), then handled until every case of
    // it is final, so that workers' loads stay what a working city sees instead of all N
    // cases waiting at once.
    while done < n || recovered_wave {
        let wave = if recovered_wave {
            0
        } else {
            (n - done).min(WAVE)
        };
        done += wave;
        // The wave's reports are made first: what is timed is the engine taking them, not
        // the simulated city writing them.
        let generating = Instant::now();
        let mut batches: Vec<Vec<Report>> = Vec::with_capacity(wave.div_ceil(BATCH));
        let mut left = wave;
        while left > 0 {
            let k = left.min(BATCH);
            left -= k;
            let mut batch = Vec::with_capacity(k);
            for _ in 0..k {
                batch.push(report(&mut rng, b, categories, n_workers)?);
            }
            batches.push(batch);
        }
        generate_seconds += generating.elapsed().as_secs_f64();
        let wave_threads = thread_cpu_seconds();
        let wave_started = Instant::now();
        let wave_cpu = cpu_seconds();
        let first_id = if recovered_wave {
            0
        } else {
            engine.submitted()
        };
        recovered_wave = false;
        for batch in batches {
            for a in engine.submit_batch(batch) {
                a?;
            }
        }
        engine.flush();
        dispatch_seconds += wave_started.elapsed().as_secs_f64();
        dispatch_cpu_seconds += cpu_seconds() - wave_cpu;
        for (name, t) in thread_cpu_seconds() {
            let before = wave_threads.get(&name).copied().unwrap_or(0.0);
            *dispatch_cpu_by_thread.entry(name).or_insert(0.0) += t - before;
        }
        let total = engine.submitted();
        let mut wave_passes = 0;
        loop {
            passes += 1;
            wave_passes += 1;
            let mut open = 0u64;
            let mut stuck = 0u64;
            let mut first = first_id;
            while first < total {
                let end = (first + BATCH as u64).min(total);
                briefs.clear();
                engine.briefs(first..end, &mut briefs);
                if wave_passes == 1 {
                    queued_after_dispatch += briefs
                        .iter()
                        .filter(|c| c.state == CaseState::Queued)
                        .count() as u64;
                }
                commands.clear();
                for c in &briefs {
                    let case = c.id;
                    match c.state {
                        CaseState::Dispatched => {
                            let Some(worker) = c.worker else { continue };
                            if rng.unit() < args.return_rate {
                                commands.push(Command::Return {
                                    case,
                                    worker,
                                    reason: None,
                                });
                                returns += 1;
                            } else {
                                commands.push(Command::Accept { case, worker });
                                commands.push(Command::Resolve { case, worker });
                                verify(
                                    &mut commands,
                                    &mut rng,
                                    case,
                                    args.rework_rate,
                                    &mut reworks,
                                );
                            }
                        }
                        CaseState::Accepted => {
                            let Some(worker) = c.worker else { continue };
                            commands.push(Command::Resolve { case, worker });
                            verify(
                                &mut commands,
                                &mut rng,
                                case,
                                args.rework_rate,
                                &mut reworks,
                            );
                        }
                        CaseState::Resolved => {
                            verify(
                                &mut commands,
                                &mut rng,
                                case,
                                args.rework_rate,
                                &mut reworks,
                            );
                        }
                        CaseState::Verified => commands.push(Command::Close {
                            case,
                            satisfaction: Some(Satisfaction::Satisfied),
                        }),
                        CaseState::Ruling | CaseState::Queued if wave_passes > 2 => {
                            // The center steps in: a worker of the case's cell, else anyone.
                            let worker = c
                                .cell
                                .and_then(|cell| city.workers_in(cell).first().copied())
                                .or_else(|| WorkerId::from_index(rng.below(n_workers)))
                                .ok_or("worker")?;
                            commands.push(Command::Dispatch {
                                case,
                                worker,
                                over_capacity: Some("ruling by the center".into()),
                            });
                            manual += 1;
                        }
                        s if s.is_open() => stuck += 1,
                        _ => {}
                    }
                    if c.state.is_open() {
                        open += 1;
                    }
                }
                results.clear();
                results.resize(commands.len(), Ok(CaseState::Reported));
                engine.execute_batch(&commands, &mut results);
                n_commands += commands.len() as u64;
                first = end;
            }
            engine.flush();
            if open == 0 {
                break;
            }
            if wave_passes > 200 {
                return Err(
                    format!("{open} cases still open after 200 passes ({stuck} waiting)").into(),
                );
            }
        }
    }
    // The engine's time: the run less the reports' making.
    let seconds = started.elapsed().as_secs_f64() - generate_seconds;
    let cpu = cpu_seconds() - cpu0;
    let change = region.change();
    // A reallocation is counted in `bytes_allocated` (growth) or `bytes_deallocated`
    // (shrinking) already; `bytes_reallocated` repeats it, so it is not added.
    let held = change.bytes_allocated as f64 - change.bytes_deallocated as f64;

    let snapshot = engine.snapshot();
    let sum: u64 = snapshot.by_state.values().sum();
    let expected = n as u64 + recovered;
    if sum != expected || snapshot.cases != expected {
        return Err(format!(
            "by_state adds up to {sum}, {} stored, {n} submitted and {recovered} recovered",
            snapshot.cases
        )
        .into());
    }
    let open: u64 = snapshot
        .by_state
        .iter()
        .filter(|(k, _)| !matches!(**k, "closed" | "rejected" | "referred"))
        .map(|(_, v)| v)
        .sum();
    // With --cases 0 nothing is handled: recovered cases stay where they stood.
    if open != 0 && n > 0 {
        return Err(format!("{open} cases not final").into());
    }

    // Every history checked against the published table of moves, and written out.
    let mut writer = match &args.transitions {
        Some(p) => {
            let mut w = std::io::BufWriter::new(std::fs::File::create(p)?);
            writeln!(w, "case,at,from,to,actor,worker")?;
            Some(w)
        }
        None => None,
    };
    let mut illegal = 0u64;
    for id in 0..engine.submitted() {
        let case = engine
            .case(CaseId(id))
            .ok_or("a submitted case is missing")?;
        let mut prev: Option<CaseState> = None;
        let mut ok = true;
        for t in &case.history {
            ok &= match (prev, t.from()) {
                (None, None) => is_legal_start(t.to()),
                (Some(p), Some(f)) => p == f && is_legal_move(f, t.to()),
                _ => false,
            };
            prev = Some(t.to());
            if let Some(w) = writer.as_mut() {
                writeln!(
                    w,
                    "{},{},{},{},{},{}",
                    id,
                    t.at().ms(),
                    t.from().map_or("", |s| s.as_str()),
                    t.to(),
                    t.actor(),
                    t.worker()
                        .map(|w| w.index().to_string())
                        .unwrap_or_default()
                )?;
            }
        }
        ok &= prev == Some(case.state);
        illegal += u64::from(!ok);
    }
    if let Some(mut w) = writer {
        w.flush()?;
    }
    let (mut checkpoint_seconds, mut checkpoint_bytes, mut archived_cases) = (None, None, None);
    if args.checkpoint && args.journal.is_some() {
        let started = Instant::now();
        let c = engine.checkpoint()?;
        checkpoint_seconds = Some(started.elapsed().as_secs_f64());
        checkpoint_bytes = Some(c.bytes);
        archived_cases = Some(c.archived);
    }
    // Shutting down syncs the journal.
    engine.shutdown();
    let out = Out {
        cases: n + recovered as usize,
        cells: city.grid().len(),
        workers: n_workers,
        dispatchers,
        seconds,
        generate_seconds,
        dispatch_seconds,
        dispatch_per_sec: rate(n, dispatch_seconds),
        cpu_seconds: cpu,
        dispatch_cpu_seconds,
        dispatch_cpu_by_thread,
        cases_per_sec: rate(n, seconds),
        bytes_per_case: held / n.max(1) as f64,
        by_state: snapshot.by_state.clone(),
        commands: n_commands,
        passes,
        queued_after_dispatch,
        returns,
        reworks,
        manual_dispatches: manual,
        illegal_histories: illegal,
        indicators: snapshot.indicators,
        recovered_cases: recovery.as_ref().map(|r| r.cases),
        recovered_open: recovery.as_ref().map(|r| r.open),
        recovery_seconds,
        recovered_from_snapshot: recovery.as_ref().map(|r| r.snapshot.is_some()),
        journal_records_replayed: recovery.as_ref().map(|r| r.records),
        checkpoint_seconds,
        checkpoint_bytes,
        archived_cases: archived_cases.or(recovery.as_ref().map(|r| r.archived)),
    };
    println!("{}", serde_json::to_string(&out)?);
    if illegal > 0 {
        return Err(format!("{illegal} illegal histories").into());
    }
    Ok(())
}

/// Reports per second (0 for none).
/// One generated report: anywhere in the city's bounds, any category and priority; a fifth
/// by grid workers on patrol (half of those handled on the spot), a tenth by sensors, the
/// rest through the hotline.
fn report(
    rng: &mut Rng,
    b: [f64; 4],
    categories: usize,
    n_workers: usize,
) -> Result<Report, Box<dyn Error>> {
    let at = Location::new(
        b[0] + (b[2] - b[0]) * rng.unit(),
        b[1] + (b[3] - b[1]) * rng.unit(),
    )?;
    let category = wangge::CategoryId::from_index(rng.below(categories)).ok_or("category")?;
    let when = Timestamp(START - rng.below(600_000) as u64);
    let mut r =
        Report::new(Source::Hotline, category, at, when).with_priority(Priority::ALL[rng.below(4)]);
    match rng.below(10) {
        0..=1 => {
            let w = WorkerId::from_index(rng.below(n_workers)).ok_or("worker")?;
            r.source = Source::Patrol;
            r = r.with_reporter(Reporter::Worker(w));
            if rng.below(2) == 0 {
                r = r.on_the_spot();
            }
        }
        2 => {
            r.source = Source::Sensor;
            r = r.with_reporter(Reporter::Sensor(rng.below(1000) as u32));
        }
        _ => r = r.with_reporter(Reporter::Citizen(rng.below(1 << 20) as u32)),
    }
    Ok(r)
}

fn rate(n: usize, seconds: f64) -> f64 {
    if n == 0 || seconds <= 0.0 {
        0.0
    } else {
        n as f64 / seconds
    }
}

fn verify(
    commands: &mut Vec<Command>,
    rng: &mut Rng,
    case: CaseId,
    rework: f64,
    reworks: &mut u64,
) {
    let passed = rng.unit() >= rework;
    commands.push(Command::Verify {
        case,
        by: Verifier::Inspector(1),
        passed,
    });
    if passed {
        commands.push(Command::Close {
            case,
            satisfaction: Some(Satisfaction::Satisfied),
        });
    } else {
        *reworks += 1;
    }
}

/// CPU time of the whole process (every thread, user + system) from /proc: on a shared
/// machine it says what the run cost when the wall clock says how busy the machine was.
/// Zero where /proc is not there.
/// Run time so far of each of this process's threads, in seconds, by name (the main
/// thread as `submit`; threads of one name summed), from `/proc/self/task/*/schedstat`
/// (nanoseconds). Empty where the kernel does not give it.
fn thread_cpu_seconds() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    let main = std::process::id().to_string();
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let name = if task.file_name().to_str() == Some(main.as_str()) {
            "submit".to_string()
        } else {
            std::fs::read_to_string(path.join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default()
        };
        *by_name.entry(name).or_insert(0.0) += ns as f64 / 1e9;
    }
    by_name
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}
