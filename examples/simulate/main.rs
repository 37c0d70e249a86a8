//! A city's day as its command center sees it: reports arrive, workers on shift take and
//! handle them, deadlines pass, and the run ends with a summary, `summary.json` and a
//! visual report (`index.html` with SVG charts and a map).
//!
//! ```text
//!  arrivals ─────────────┐  (Poisson by hour and source, hot spots; or --events replay)
//!  shifts: on/off duty ──┤
//!                        ▼
//!   SimClock ─► Engine: submit_batch ─► collect ─► assign ─► dispatched / queued / ruling
//!   +1 min      flush: the minute's reports are routed before its people act, so that
//!               a day is repeatable (the same seed, the same figures)
//!               tick(): accept deadlines, 催办, 督办
//!                        │ subscribe(): every transition
//!                        ▼
//!   people: accept (some return), travel, work, resolve; inspectors verify (some fail);
//!           the center closes, and dispatches rulings by hand
//!                        ▼
//!   checks: every event submitted, unmapped, malformed or refused; every case in one
//!           state, by the snapshot, by the event stream and by the case records
//! ```
//!
//! `cargo run --release --example simulate -- [--city CITY.json|toml] [--grid GRID.geojson]
//!  [--workers N] [--events EVENTS.csv [--category-map MAP.csv]] [--days D] [--seed S]
//!  [--per-day R] [--out DIR] [--quiet] [--journal DIR]`
//!
//! `--journal DIR` writes the day ahead to a file journal; after the run a second engine
//! recovers DIR and its snapshot must equal the run's final one (a check like the
//! others). A simulated day starts from nothing: DIR must hold no journal yet.

mod input;
mod report;
mod sim;

use clap::Parser;
use report::{Table, pct};
use serde_json::json;
use sim::{DAY_MIN, Params, START};
use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use wangge::journal::{FileJournal, Journal};
use wangge::{
    CaseId, CaseState, City, Engine, EngineConfig, Grid, SimClock, Timestamp, UnitKind, WorkerId,
};

#[derive(Parser, Debug)]
#[command(about = "Simulate a city's day through the engine and report on it")]
struct Args {
    /// City config (JSON, or TOML if it ends in .toml); with --grid, else over the demo grid.
    #[arg(long)]
    city: Option<PathBuf>,
    /// Grid (GeoJSON). Alone, a demo city is built for it, cells without a community or
    /// street office grouped automatically.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// About how many workers (built cities only).
    #[arg(long)]
    workers: Option<usize>,
    /// Replay this event stream (CSV: event_id, ts (RFC 3339), category, lon, lat).
    #[arg(long)]
    events: Option<PathBuf>,
    /// Map the stream's categories to catalogue codes (CSV: from,to).
    #[arg(long, requires = "events")]
    category_map: Option<PathBuf>,
    /// Simulated days (a replay lasts at least until its last event).
    #[arg(long, default_value_t = 1)]
    days: u64,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generated reports per day (default: two per cell, at least 2,000).
    #[arg(long)]
    per_day: Option<f64>,
    /// Where the report goes.
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Write the day ahead to a file journal in this (new or empty) directory; at the end
    /// a second engine recovers it and must show the same command-center view.
    #[arg(long)]
    journal: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build_city(args: &Args) -> Result<(City, String), Box<dyn Error>> {
    let read_grid = |p: &PathBuf| -> Result<Grid, Box<dyn Error>> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Grid::from_geojson(&text).map_err(|e| format!("{}: {e}", p.display()))?)
    };
    Ok(match (&args.city, &args.grid) {
        (Some(c), g) => {
            let grid = match g {
                Some(g) => read_grid(g)?,
                None => wangge::demo::demo_city_grid(),
            };
            let text = std::fs::read_to_string(c).map_err(|e| format!("{}: {e}", c.display()))?;
            let city = if c.extension().is_some_and(|e| e == "toml") {
                City::from_toml(&text, grid)
            } else {
                City::from_json(&text, grid)
            }
            .map_err(|e| format!("{}: {e}", c.display()))?;
            (city, c.display().to_string())
        }
        (None, Some(g)) => {
            let grid = read_grid(g)?;
            let (grid, config) = wangge::demo::demo_config_grouped(&grid, args.workers)?;
            (
                City::new(&config, grid)?,
                format!("demo city over {}", g.display()),
            )
        }
        (None, None) => match args.workers {
            Some(n) => {
                let grid = wangge::demo::demo_city_grid();
                let config = wangge::demo::demo_config_with_workers(&grid, n)?;
                (City::new(&config, grid)?, "the demo city".into())
            }
            None => (wangge::demo::demo_city(), "the demo city".into()),
        },
    })
}

fn run() -> Result<bool, Box<dyn Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let (city, label) = build_city(&args)?;
    let city = Arc::new(city);
    let build_seconds = started.elapsed().as_secs_f64();

    let map = match &args.category_map {
        Some(p) => Some(input::read_category_map(p)?),
        None => None,
    };
    let stream = match &args.events {
        Some(p) => Some(input::read_events(p, &city, map.as_ref())?),
        None => None,
    };
    let days = match &stream {
        Some(s) => {
            let span = s.events.last().map_or(0, |e| e.offset_ms);
            args.days.max(span.div_ceil(DAY_MIN * sim::MINUTE).max(1))
        }
        None => args.days,
    };

    let clock = SimClock::new(Timestamp(START));
    let config = EngineConfig {
        // The driver reads every event each simulated minute; a day's worth fits.
        subscriber_buffer: 1 << 22,
        ..EngineConfig::default()
    };
    let mut builder = Engine::builder(city.clone())
        .clock(clock.clone())
        .config(config);
    if let Some(dir) = &args.journal {
        let journal = FileJournal::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if journal.next_position() > 0 || journal.first_position() > 0 {
            return Err(format!(
                "{}: holds a journal already; a simulated day starts from nothing",
                dir.display()
            )
            .into());
        }
        builder = builder.journal(Box::new(journal));
    }
    let engine = builder.build()?;
    let sub = engine.subscribe();
    let progress = (!args.quiet).then(|| {
        let pb = indicatif::ProgressBar::new(days * DAY_MIN + 1);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} simulated {msg} [{bar:40}] {pos}/{len} min, {elapsed} ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_message(format!("{days} day(s)"));
        pb
    });
    let per_day = args
        .per_day
        .unwrap_or_else(|| (2.0 * city.grid().len() as f64).max(2000.0));
    let sim_started = Instant::now();
    let run = sim::run(
        &engine,
        &clock,
        &sub,
        &Params {
            days,
            per_day,
            seed: args.seed,
            replay: stream.as_ref().map(|s| s.events.as_slice()),
            progress: progress.as_ref(),
        },
    )?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    let snapshot = engine.shutdown();
    let sim_seconds = sim_started.elapsed().as_secs_f64();
    // Events after the last minute's drain, up to the shutdown.
    let mut streamed = run.streamed.clone();
    let mut missed = run.missed_events;
    while let Some(n) = sub.recv() {
        match n {
            wangge::pipeline::Notice::Event(e) => {
                let id = e.case.0 as usize;
                if streamed.len() <= id {
                    streamed.resize(id + 1, None);
                }
                if streamed[id].is_none_or(|(s, _)| e.seq >= s) {
                    streamed[id] = Some((e.seq, e.transition.to()));
                }
            }
            wangge::pipeline::Notice::Missed(k) => missed += k,
        }
    }

    // Case records: one pass over every case.
    let submitted = engine.submitted();
    let now_ms = snapshot.at.ms();
    let n_cells = city.grid().len();
    let units = city.units().len();
    let mut record_states: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut cell_cases = vec![0u64; n_cells];
    let mut street_closed = vec![0u64; units];
    let mut street_on_time = vec![0u64; units];
    let mut street_overdue = vec![0u64; units];
    let mut street_cases = vec![0u64; units];
    let mut missing = 0u64;
    for id in 0..submitted {
        let Some(case) = engine.case(CaseId(id)) else {
            missing += 1;
            continue;
        };
        *record_states.entry(case.state.as_str()).or_insert(0) += 1;
        let Some(cell) = case.cell else { continue };
        cell_cases[cell.index()] += 1;
        let Some(chain) = city.chain(cell) else {
            continue;
        };
        let s = chain.street.index();
        street_cases[s] += 1;
        if case.state == CaseState::Closed {
            street_closed[s] += 1;
            street_on_time[s] += u64::from(case.on_time == Some(true));
        }
        if case.state.is_pending() && case.due.is_some_and(|d| d.ms() < now_ms) {
            street_overdue[s] += 1;
        }
    }
    let mut stream_states: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut unseen = 0u64;
    for id in 0..submitted as usize {
        match streamed.get(id).copied().flatten() {
            Some((_, s)) => *stream_states.entry(s.as_str()).or_insert(0) += 1,
            None => unseen += 1,
        }
    }

    // Checks.
    let mut problems: Vec<String> = Vec::new();
    let by_state_sum: u64 = snapshot.by_state.values().sum();
    if by_state_sum != submitted || snapshot.cases != submitted {
        problems.push(format!(
            "snapshot: by_state adds up to {by_state_sum}, {} stored, {submitted} submitted",
            snapshot.cases
        ));
    }
    let nonzero = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<&'static str, u64> {
        m.iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (*k, *v))
            .collect()
    };
    if missing > 0 || nonzero(&record_states) != nonzero(&snapshot.by_state) {
        problems.push(format!(
            "case records ({missing} missing) disagree with the snapshot: {:?} vs {:?}",
            nonzero(&record_states),
            nonzero(&snapshot.by_state)
        ));
    }
    if missed == 0 && (unseen > 0 || nonzero(&stream_states) != nonzero(&snapshot.by_state)) {
        problems.push(format!(
            "event stream ({unseen} cases never seen) disagrees with the snapshot: {:?} vs {:?}",
            nonzero(&stream_states),
            nonzero(&snapshot.by_state)
        ));
    }
    // The journal, recovered by a second engine at the same time, shows the same view.
    let mut recovery_seconds = None;
    if let Some(dir) = &args.journal {
        let again = Instant::now();
        let recovered = Engine::builder(city.clone())
            .clock(SimClock::new(snapshot.at))
            .config(config)
            .journal(Box::new(FileJournal::open(dir)?))
            .build()?;
        recovered.flush();
        recovery_seconds = Some(again.elapsed().as_secs_f64());
        let view = recovered.shutdown();
        if view != snapshot {
            problems.push(format!(
                "the journal recovered to another view: by_state {:?} against {:?}",
                view.by_state, snapshot.by_state
            ));
        }
    }
    let refused: u64 = run.refused.values().sum();
    let (unmapped, malformed, rows): (u64, u64, u64) = match &stream {
        Some(s) => (
            s.unmapped.values().sum(),
            s.malformed.values().sum(),
            s.rows,
        ),
        None => (0, 0, run.generated),
    };
    if rows != submitted + unmapped + malformed + refused {
        problems.push(format!(
            "{rows} events but {submitted} submitted + {unmapped} unmapped + {malformed} malformed + {refused} refused"
        ));
    }

    // Tables.
    let name_of = |id: &str| {
        city.unit_id(id)
            .and_then(|u| city.unit(u))
            .map_or(id.to_string(), |u| u.name.clone())
    };
    let mut tables = Vec::new();
    let mut t = Table::new("Cases by state", &["state", "cases"]);
    for (k, v) in &snapshot.by_state {
        t.rows.push(vec![k.to_string(), v.to_string()]);
    }
    t.rows.push(vec!["submitted".into(), submitted.to_string()]);
    tables.push(t);
    let ind = &snapshot.indicators;
    let mut t = Table::new("Indicators", &["indicator", "value", "formula"]);
    let rows_ind = [
        (
            "结案率 closure",
            ind.closure_rate,
            format!(
                "closed / (closed + open admitted) = {} / {}",
                ind.closed,
                ind.closed + ind.open
            ),
        ),
        (
            "按期结案率 on time",
            ind.on_time_rate,
            format!(
                "closed on time / closed = {} / {}",
                ind.closed_on_time, ind.closed
            ),
        ),
        (
            "返工率 rework",
            ind.rework_rate,
            format!(
                "closed reopened at least once / closed = {} / {}",
                ind.closed_reworked, ind.closed
            ),
        ),
        (
            "dispatch accuracy",
            ind.dispatch_accuracy,
            format!(
                "(dispatches − returns and accept timeouts) / dispatches = {} / {}",
                ind.dispatches - ind.undone_dispatches.min(ind.dispatches),
                ind.dispatches
            ),
        ),
        (
            "满意率 satisfaction",
            ind.satisfaction_rate,
            format!(
                "(满意 + 基本满意) / closed with a verdict = {} / {}",
                ind.satisfied, ind.rated
            ),
        ),
    ];
    for (n, v, f) in rows_ind {
        t.rows.push(vec![n.into(), pct(v), f]);
    }
    tables.push(t);
    let mut t = Table::new(
        "Open cases past their deadline",
        &["escalation (督办)", "cases"],
    );
    t.note = "level 0: overdue, escalated at the next tick; level k: escalated k units up".into();
    for (level, n) in snapshot.overdue_by_level.iter().enumerate() {
        t.rows.push(vec![format!("level {level}"), n.to_string()]);
    }
    tables.push(t);
    let mut t = Table::new("By platform", &["platform", "cases", "open"]);
    for (k, v) in &snapshot.by_platform {
        t.rows
            .push(vec![k.clone(), v.total.to_string(), v.open.to_string()]);
    }
    tables.push(t);
    let mut t = Table::new("By district", &["district", "cases", "open"]);
    for (k, v) in &snapshot.by_district {
        t.rows
            .push(vec![name_of(k), v.total.to_string(), v.open.to_string()]);
    }
    tables.push(t);
    let mut t = Table::new("Arrivals by source", &["source", "events"]);
    for (k, v) in &run.by_source {
        t.rows.push(vec![k.to_string(), v.to_string()]);
    }
    for (k, v) in &run.refused {
        t.rows.push(vec![format!("refused: {k}"), v.to_string()]);
    }
    if let Some(s) = &stream {
        for (k, v) in &s.unmapped {
            t.rows.push(vec![format!("unmapped: {k}"), v.to_string()]);
        }
        for (k, v) in &s.malformed {
            t.rows.push(vec![format!("malformed: {k}"), v.to_string()]);
        }
    }
    tables.push(t);

    let mut cells: Vec<usize> = (0..n_cells).filter(|&i| cell_cases[i] > 0).collect();
    cells.sort_by_key(|&i| (std::cmp::Reverse(cell_cases[i]), i));
    // The workers at hand for a cell: those whose home cells are the cell or touch it
    // (the router looks there first).
    let cell_workers = |i: usize| {
        let Some(c) = wangge::CellId::from_index(i) else {
            return 0;
        };
        let mut w: Vec<WorkerId> = std::iter::once(c)
            .chain(city.grid().neighbours(c).iter().copied())
            .flat_map(|n| city.workers_in(n).iter().copied())
            .collect();
        w.sort_unstable();
        w.dedup();
        w.len()
    };
    let mut t = Table::new(
        "Busiest cells",
        &["cell", "community", "cases", "open now", "workers at hand"],
    );
    for &i in cells.iter().take(10) {
        let c = &city.grid().cells()[i];
        t.rows.push(vec![
            c.name.clone(),
            c.community.clone().unwrap_or_default(),
            cell_cases[i].to_string(),
            snapshot
                .open_by_cell
                .get(i)
                .copied()
                .unwrap_or(0)
                .to_string(),
            cell_workers(i).to_string(),
        ]);
    }
    tables.push(t);
    let mut ws: Vec<usize> = (0..run.people.len()).collect();
    ws.sort_by_key(|&w| (std::cmp::Reverse(run.people[w].resolved), w));
    let mut t = Table::new(
        "Busiest workers",
        &[
            "worker",
            "name",
            "kind",
            "resolved",
            "returned",
            "holds now",
        ],
    );
    for &w in ws.iter().take(10) {
        let Some(worker) = WorkerId::from_index(w).and_then(|id| city.worker(id)) else {
            continue;
        };
        t.rows.push(vec![
            worker.id.clone(),
            worker.name.clone(),
            format!("{:?}", worker.kind),
            run.people[w].resolved.to_string(),
            run.people[w].returned.to_string(),
            snapshot.load.get(w).copied().unwrap_or(0).to_string(),
        ]);
    }
    tables.push(t);
    let mut streets: Vec<usize> = (0..units).filter(|&s| street_cases[s] > 0).collect();
    let rate = |s: usize| street_on_time[s] as f64 / street_closed[s].max(1) as f64;
    streets.sort_by(|&a, &b| {
        (street_closed[a] == 0)
            .cmp(&(street_closed[b] == 0))
            .then(rate(a).total_cmp(&rate(b)))
            .then(street_overdue[b].cmp(&street_overdue[a]))
    });
    let mut t = Table::new(
        "Worst-served street offices",
        &[
            "street office",
            "cases",
            "closed",
            "on time",
            "overdue open",
        ],
    );
    t.note = "lowest 按期结案率 first, then most open cases past their deadline".into();
    for &s in streets.iter().take(10) {
        t.rows.push(vec![
            city.units()[s].name.clone(),
            street_cases[s].to_string(),
            street_closed[s].to_string(),
            if street_closed[s] > 0 {
                format!("{:.1} %", rate(s) * 100.0)
            } else {
                "–".into()
            },
            street_overdue[s].to_string(),
        ]);
    }
    tables.push(t);

    // The grid advisor.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let per_worker = |cases: u64, workers: usize| cases as f64 / workers.max(1) as f64;
    let cell_ratio: Vec<f64> = cells
        .iter()
        .map(|&i| per_worker(cell_cases[i], cell_workers(i)))
        .collect();
    let cell_median = median(cell_ratio.clone());
    let mut t = Table::new(
        "Advisor: cells to split or staff",
        &[
            "cell",
            "cases",
            "workers at hand",
            "cases / worker",
            "× median",
        ],
    );
    t.note = format!(
        "cells whose cases per worker at hand (home in the cell or a neighbour) are at least 3 × the median ({cell_median:.2}), with at least 5 cases"
    );
    let mut hot: Vec<(usize, f64)> = cells
        .iter()
        .zip(&cell_ratio)
        .filter(|(i, r)| **r >= 3.0 * cell_median && cell_cases[**i] >= 5)
        .map(|(i, r)| (*i, *r))
        .collect();
    hot.sort_by(|a, b| b.1.total_cmp(&a.1));
    let advisor_cells = hot.len();
    for (i, r) in hot.iter().take(10) {
        t.rows.push(vec![
            city.grid().cells()[*i].name.clone(),
            cell_cases[*i].to_string(),
            cell_workers(*i).to_string(),
            format!("{r:.1}"),
            format!("{:.1}", r / cell_median.max(1e-9)),
        ]);
    }
    tables.push(t);
    let mut com: Vec<(String, u64, usize)> = Vec::new();
    for m in city.units_of(UnitKind::Community) {
        let cs = city.community_cells(m);
        let cases: u64 = cs.iter().map(|c| cell_cases[c.index()]).sum();
        let mut people: Vec<WorkerId> = cs
            .iter()
            .flat_map(|&c| city.workers_in(c).iter().copied())
            .collect();
        people.sort_unstable();
        people.dedup();
        if let Some(u) = city.unit(m) {
            com.push((u.name.clone(), cases, people.len()));
        }
    }
    let com_median = median(
        com.iter()
            .filter(|c| c.1 > 0)
            .map(|c| per_worker(c.1, c.2))
            .collect(),
    );
    let mut t = Table::new(
        "Advisor: communities to split or staff",
        &[
            "community",
            "cases",
            "workers",
            "cases / worker",
            "× median",
        ],
    );
    t.note =
        format!("communities whose cases per worker are at least 2 × the median ({com_median:.2})");
    let mut hot: Vec<&(String, u64, usize)> = com
        .iter()
        .filter(|c| per_worker(c.1, c.2) >= 2.0 * com_median && c.1 >= 5)
        .collect();
    hot.sort_by(|a, b| per_worker(b.1, b.2).total_cmp(&per_worker(a.1, a.2)));
    let advisor_communities = hot.len();
    for c in hot.iter().take(10) {
        let r = per_worker(c.1, c.2);
        t.rows.push(vec![
            c.0.clone(),
            c.1.to_string(),
            c.2.to_string(),
            format!("{r:.1}"),
            format!("{:.1}", r / com_median.max(1e-9)),
        ]);
    }
    tables.push(t);
    let mut t = Table::new(
        "Advisor: forces whose queues never drain",
        &["organ", "street office", "min", "max", "at the end"],
    );
    t.note = "organ queues that were never empty at any hourly look after the first hour".into();
    let looks = run.queue_samples.iter().skip(1).collect::<Vec<_>>();
    let mut never: Vec<(String, u64, u64, u64)> = Vec::new();
    if !looks.is_empty() {
        let mut ids: Vec<&String> = looks.iter().flat_map(|q| q.keys()).collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let lens: Vec<u64> = looks
                .iter()
                .map(|q| q.get(id).copied().unwrap_or(0))
                .collect();
            if lens.iter().all(|&l| l > 0) {
                let end = snapshot.queues.get(id).copied().unwrap_or(0);
                never.push((
                    id.clone(),
                    *lens.iter().min().unwrap_or(&0),
                    *lens.iter().max().unwrap_or(&0),
                    end,
                ));
            }
        }
    }
    never.sort_by_key(|n| std::cmp::Reverse(n.3));
    for (id, lo, hi, end) in never.iter().take(15) {
        let organ = city.organ_id(id).and_then(|o| city.organ(o));
        t.rows.push(vec![
            organ.map_or(id.clone(), |o| o.name.clone()),
            organ
                .and_then(|o| city.unit(o.street))
                .map_or(String::new(), |u| u.name.clone()),
            lo.to_string(),
            hi.to_string(),
            end.to_string(),
        ]);
    }
    tables.push(t);

    // Output.
    std::fs::create_dir_all(&args.out)?;
    let workers: Vec<([f64; 2], bool)> = run.people.iter().map(|p| (p.pos, p.on)).collect();
    report::draw_map(
        &args.out.join("map.svg"),
        city.grid(),
        &cell_cases,
        &workers,
    )?;
    report::draw_lines(
        &args.out.join("backlog.svg"),
        "Backlog over the day",
        "cases",
        &run.samples,
        &[
            (
                "open (backlog)",
                plotters::style::RGBColor(200, 60, 40),
                |s| Some(s.backlog as f64),
            ),
            ("queued", plotters::style::RGBColor(40, 110, 200), |s| {
                Some(s.queued as f64)
            }),
            ("overdue", plotters::style::RGBColor(120, 40, 160), |s| {
                Some(s.overdue as f64)
            }),
        ],
        None,
    )?;
    report::draw_lines(
        &args.out.join("on_time.svg"),
        "按期结案率 and 结案率 over the day",
        "rate",
        &run.samples,
        &[
            (
                "on-time rate",
                plotters::style::RGBColor(30, 140, 60),
                |s| s.on_time_rate,
            ),
            (
                "closure rate",
                plotters::style::RGBColor(200, 130, 20),
                |s| s.closure_rate,
            ),
        ],
        Some(1.05),
    )?;
    let intro = format!(
        "{label}: {} cells, {} workers, {days} simulated day(s), seed {}; {} events, {submitted} cases submitted; run in {sim_seconds:.1} s. Checks: {}.",
        n_cells,
        city.workers().len(),
        args.seed,
        rows,
        if problems.is_empty() {
            "all counts add up".to_string()
        } else {
            problems.join("; ")
        }
    );
    std::fs::write(
        args.out.join("index.html"),
        report::html("Grid command center: simulated day", &intro, &tables),
    )?;
    let table_json: Vec<serde_json::Value> = tables
        .iter()
        .map(|t| json!({"title": t.title, "columns": t.head, "rows": t.rows}))
        .collect();
    let summary = json!({
        "city": label,
        "cells": n_cells,
        "workers": city.workers().len(),
        "communities": city.units_of(UnitKind::Community).len(),
        "street_offices": city.units_of(UnitKind::Street).len(),
        "days": days,
        "seed": args.seed,
        "events": rows,
        "submitted": submitted,
        "by_state": snapshot.by_state,
        "unmapped": unmapped,
        "unmapped_by_category": stream.as_ref().map(|s| s.unmapped.clone()),
        "malformed_rows": malformed,
        "malformed_by_reason": stream.as_ref().map(|s| s.malformed.clone()),
        "refused": refused,
        "refused_by_reason": run.refused,
        "indicators": snapshot.indicators,
        "by_platform": snapshot.by_platform,
        "by_district": snapshot.by_district,
        "overdue_by_level": snapshot.overdue_by_level,
        "advisor": {"cells": advisor_cells, "communities": advisor_communities, "queues_never_drained": never.len()},
        "timeline": run.samples,
        "tables": table_json,
        "checks": {"ok": problems.is_empty(), "problems": problems, "missed_events": missed, "stale_actions": run.stale_actions},
        "seconds": {"build": build_seconds, "simulate": sim_seconds, "recovery": recovery_seconds, "total": started.elapsed().as_secs_f64()},
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;

    for t in &tables {
        print!("{}", t.text());
    }
    println!(
        "\n{label}: {n_cells} cells, {} workers, {days} day(s): {rows} events, {submitted} submitted, {unmapped} unmapped, {malformed} malformed, {refused} refused; {} commands ({} stale); built in {build_seconds:.1} s, simulated in {sim_seconds:.1} s",
        city.workers().len(),
        run.commands,
        run.stale_actions
    );
    println!("report: {}", args.out.join("index.html").display());
    if missed > 0 {
        println!("note: the event stream missed {missed} events; its count was not compared");
    }
    for p in &problems {
        eprintln!("CHECK FAILED: {p}");
    }
    Ok(problems.is_empty())
}
