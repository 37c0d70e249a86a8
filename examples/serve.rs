//! The demo city served over HTTP, alive: Open311 GeoReport v2 for citizen apps, the
//! workers' and the center's APIs, the event stream and the live page at `/`.
//!
//! ```text
//!  arrivals thread ── hotline reports (--rate per second) ──► Engine ◄── HTTP (axum, tokio)
//!  workers thread ◄── subscribe(): dispatched ─► accept (some return) ─► resolve ─┘ │
//!                     the center verifies and closes                               │
//!  browser ◄── /  /center/view  /center/events (SSE) ◄───────────────────────────────┘
//! ```
//!
//! `cargo run --release --features http --example serve -- [--addr A] [--api-key K]
//!  [--center-key K] [--tokens FILE] [--rate R] [--no-sim] [--journal DIR]`
//!
//! Without `--api-key` (or `--center-key`) a random key is made and printed. `--tokens`
//! writes every worker's token (CSV: worker,token). `--addr 127.0.0.1:0` picks a free port;
//! the first line printed says which.
//!
//! `--journal DIR` writes ahead to a file journal, and recovers what DIR holds first: a
//! restarted service goes on with every case it had (the tail a crash tore is cut off and
//! reported on stderr).
//!
//! `--bench-requests N [--concurrency C]` measures instead: it files N reports over HTTP
//! from C concurrent clients on loopback, reads every one back, checks that none is lost,
//! prints requests per second as JSON and exits.

use clap::Parser;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wangge::http::{Access, random_key, router};
use wangge::pipeline::{Notice, Satisfaction, Verifier};
use wangge::rng::SplitMix64 as Rng;
use wangge::{
    CaseId, CaseState, CellId, City, Command, Engine, Location, Report, Source, WorkerId,
};

#[derive(Parser, Debug)]
#[command(about = "Serve the demo city over HTTP with simulated workers")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8311")]
    addr: SocketAddr,
    /// The Open311 api_key clients file with (made at random if not given).
    #[arg(long)]
    api_key: Option<String>,
    /// The center operators' key (made at random if not given).
    #[arg(long)]
    center_key: Option<String>,
    /// Write every worker's token here (CSV: worker,token).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Simulated hotline reports per second.
    #[arg(long, default_value_t = 3.0)]
    rate: f64,
    /// No simulated reports or workers: only what comes over HTTP happens.
    #[arg(long)]
    no_sim: bool,
    /// Write ahead to a file journal in this directory, recovering what it holds first.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// Measure: file this many reports over HTTP, read them back, print the rate, exit.
    #[arg(long)]
    bench_requests: Option<usize>,
    /// Concurrent clients of the measurement.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// A point inside `cell` (rejection sampling in its bounds).
fn point_in(city: &City, cell: CellId, rng: &mut Rng) -> Option<Location> {
    let [x0, y0, x1, y1] = city.grid().cell_bounds(cell)?;
    (0..32).find_map(|_| {
        let p = Location::new(x0 + (x1 - x0) * rng.unit(), y0 + (y1 - y0) * rng.unit()).ok()?;
        (city.grid().locate(p) == Some(cell)).then_some(p)
    })
}

/// Hotline reports at `rate` per second, a third of them around a few hot spots.
fn arrivals(engine: Arc<Engine>, rate: f64, stop: Arc<AtomicBool>) {
    let city = engine.city();
    let mut rng = Rng(7);
    let cells = city.grid().len();
    let hot: Vec<CellId> = (0..12)
        .filter_map(|_| CellId::from_index(rng.below(cells)))
        .collect();
    let categories = city.categories().len();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.01));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(gap.mul_f64(0.5 + rng.unit()));
        let cell = if rng.below(3) == 0 {
            hot[rng.below(hot.len())]
        } else {
            let Some(c) = CellId::from_index(rng.below(cells)) else {
                continue;
            };
            c
        };
        let Some(at) = point_in(city, cell, &mut rng) else {
            continue;
        };
        let Some(category) = wangge::CategoryId::from_index(rng.below(categories)) else {
            continue;
        };
        let report = Report::new(Source::Hotline, category, at, engine.now())
            .with_description("reported on the hotline (simulated)");
        if engine.submit(report).is_err() {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Accept(CaseId, WorkerId),
    Return(CaseId, WorkerId),
    Resolve(CaseId, WorkerId),
    Verify(CaseId),
    Close(CaseId),
}

/// Workers and the center acting on what the event stream says: accept (one in ten
/// returns instead), go there, resolve; the center verifies (one in twelve fails) and closes.
fn workers(engine: Arc<Engine>, stop: Arc<AtomicBool>) {
    let sub = engine.subscribe();
    let mut rng = Rng(11);
    let mut due: BinaryHeap<Reverse<(Instant, Act)>> = BinaryHeap::new();
    while !stop.load(Ordering::Relaxed) {
        let wait = due
            .peek()
            .map_or(Duration::from_millis(200), |Reverse((t, _))| {
                t.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200))
            });
        if let Some(Notice::Event(e)) = sub.recv_timeout(wait) {
            let t = e.transition;
            let now = Instant::now();
            let next = match (t.to(), t.worker()) {
                (CaseState::Dispatched, Some(w)) if rng.below(10) == 0 => {
                    Some((secs(&mut rng, 2.0, 10.0), Act::Return(e.case, w)))
                }
                (CaseState::Dispatched, Some(w)) => {
                    Some((secs(&mut rng, 2.0, 20.0), Act::Accept(e.case, w)))
                }
                (CaseState::Accepted, Some(w)) => {
                    if let Some(c) = engine.case(e.case) {
                        let _ = engine.router().set_position(w, c.location);
                    }
                    Some((secs(&mut rng, 20.0, 120.0), Act::Resolve(e.case, w)))
                }
                (CaseState::Resolved, _) => Some((secs(&mut rng, 3.0, 15.0), Act::Verify(e.case))),
                (CaseState::Verified, _) => Some((secs(&mut rng, 1.0, 5.0), Act::Close(e.case))),
                _ => None,
            };
            if let Some((after, act)) = next {
                due.push(Reverse((now + after, act)));
            }
        }
        while due
            .peek()
            .is_some_and(|Reverse((t, _))| *t <= Instant::now())
        {
            let Some(Reverse((_, act))) = due.pop() else {
                break;
            };
            let command = match act {
                Act::Accept(case, worker) => Command::Accept { case, worker },
                Act::Return(case, worker) => Command::Return {
                    case,
                    worker,
                    reason: Some("不属于本人职责".into()),
                },
                Act::Resolve(case, worker) => Command::Resolve { case, worker },
                Act::Verify(case) => Command::Verify {
                    case,
                    by: Verifier::Center,
                    passed: rng.below(12) != 0,
                },
                Act::Close(case) => Command::Close {
                    case,
                    satisfaction: Some(match rng.below(10) {
                        0 => Satisfaction::Dissatisfied,
                        1 | 2 => Satisfaction::Basic,
                        _ => Satisfaction::Satisfied,
                    }),
                },
            };
            // A case may have moved on meanwhile (an accept deadline passed): a refusal
            // is the engine saying so, and nothing changed.
            let _ = engine.execute(&command);
        }
    }
}

/// Files `n` reports from `clients` concurrent clients, then reads each back.
async fn bench(
    base: String,
    api_key: String,
    city: Arc<City>,
    n: usize,
    clients: usize,
) -> Result<serde_json::Value, Box<dyn Error>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let codes: Vec<String> = city.categories().iter().map(|c| c.code.clone()).collect();
    let mut rng = Rng(3);
    let mut points = Vec::with_capacity(n);
    while points.len() < n {
        if let Some(cell) = CellId::from_index(rng.below(city.grid().len()))
            && let Some(p) = point_in(&city, cell, &mut rng)
        {
            points.push(p);
        }
    }
    let points = Arc::new(points);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, key, points, codes) = (
            client.clone(),
            base.clone(),
            api_key.clone(),
            points.clone(),
            codes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (c..points.len()).step_by(clients) {
                let p = points[i];
                let form = [
                    ("api_key", key.clone()),
                    ("service_code", codes[i % codes.len()].clone()),
                    ("lat", p.lat().to_string()),
                    ("long", p.lon().to_string()),
                    ("description", format!("load report {i}")),
                ];
                let r = client
                    .post(format!("{base}/requests.json"))
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status() != reqwest::StatusCode::CREATED {
                    return Err(format!("report {i}: status {}", r.status()));
                }
                let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
                let id = v[0]["service_request_id"]
                    .as_str()
                    .ok_or("no id")?
                    .to_string();
                ids.push(id);
            }
            Ok::<_, String>(ids)
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await??);
    }
    let filing = started.elapsed();
    let ids = Arc::new(ids);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut found = 0usize;
            for i in (c..ids.len()).step_by(clients) {
                let r = client
                    .get(format!("{base}/requests/{}.json", ids[i]))
                    .send()
                    .await?;
                let v: serde_json::Value = r.json().await?;
                found += usize::from(v[0]["service_request_id"].as_str() == Some(ids[i].as_str()));
            }
            Ok::<_, reqwest::Error>(found)
        }));
    }
    let mut found = 0;
    for t in tasks {
        found += t.await??;
    }
    let reading = started.elapsed();
    // The heaviest read: a filtered list, which looks at every case in its window.
    let started = Instant::now();
    let listed: serde_json::Value = client
        .get(format!(
            "{base}/requests.json?service_code={}&status=open,closed",
            codes[0]
        ))
        .send()
        .await?
        .json()
        .await?;
    let list_seconds = started.elapsed().as_secs_f64();
    let listed = listed.as_array().map_or(0, Vec::len);
    let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
    Ok(json!({
        "requests": n,
        "concurrency": clients,
        "filed": ids.len(),
        "distinct_ids": distinct,
        "found": found,
        "file_seconds": filing.as_secs_f64(),
        "file_requests_per_second": n as f64 / filing.as_secs_f64(),
        "read_seconds": reading.as_secs_f64(),
        "read_requests_per_second": n as f64 / reading.as_secs_f64(),
        "filtered_list_seconds": list_seconds,
        "filtered_list_len": listed,
    }))
}

/// Ctrl-C or SIGTERM: either ends the service cleanly (the engine drains and the journal
/// is synced).
async fn stopped() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let city = Arc::new(wangge::demo::demo_city());
    let mut builder = Engine::builder(city.clone());
    if let Some(dir) = &args.journal {
        let journal = wangge::journal::FileJournal::open(dir)?;
        if let Some(cut) = &journal.recovery().tail_cut {
            eprintln!("journal: {cut}");
        }
        builder = builder.journal(Box::new(journal));
    }
    let engine = Arc::new(builder.build()?);
    if let Some(r) = engine.recovery() {
        eprintln!(
            "journal: recovered {} cases ({} open) from {}",
            r.cases,
            r.open,
            args.journal
                .as_ref()
                .map_or(String::new(), |d| d.display().to_string())
        );
    }
    let api_key = match args.api_key.clone() {
        Some(k) if !k.is_empty() => k,
        _ => random_key()?,
    };
    let center_key = match args.center_key.clone() {
        Some(k) if !k.is_empty() => k,
        _ => random_key()?,
    };
    let mut access = Access::new()
        .api_key(api_key.clone())
        .center_key(center_key.clone());
    let mut tokens = String::from("worker,token\n");
    for (i, w) in city.workers().iter().enumerate() {
        let Some(id) = WorkerId::from_index(i) else {
            continue;
        };
        let token = random_key()?;
        tokens.push_str(&format!("{},{token}\n", w.id));
        access = access.worker_token(id, token);
    }
    if let Some(path) = &args.tokens {
        std::fs::write(path, &tokens)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr).await?;
        let addr = listener.local_addr()?;
        let app = router(engine.clone(), access);
        if let Some(n) = args.bench_requests {
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let result = bench(
                format!("http://{addr}"),
                api_key,
                city.clone(),
                n,
                args.concurrency.max(1),
            )
            .await?;
            server.abort();
            println!("{}", serde_json::to_string_pretty(&result)?);
            let whole = result["filed"] == n && result["distinct_ids"] == n && result["found"] == n;
            let snap = engine.shutdown();
            if !whole || snap.cases != n as u64 {
                return Err(format!("reports lost: {result} (engine holds {})", snap.cases).into());
            }
            return Ok(());
        }
        println!("listening on http://{addr}");
        println!("api_key: {api_key}");
        println!("center key: {center_key}");
        println!("page: http://{addr}/#key={center_key}");
        let stop = Arc::new(AtomicBool::new(false));
        let mut sims = Vec::new();
        if !args.no_sim {
            let (e, s) = (engine.clone(), stop.clone());
            sims.push(std::thread::spawn(move || workers(e, s)));
            let (e, s, rate) = (engine.clone(), stop.clone(), args.rate);
            sims.push(std::thread::spawn(move || arrivals(e, rate, s)));
        }
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .await?;
        stop.store(true, Ordering::Relaxed);
        for t in sims {
            let _ = t.join();
        }
        let snap = engine.shutdown();
        println!("shut down with {} cases: {:?}", snap.cases, snap.by_state);
        Ok::<(), Box<dyn Error>>(())
    })
}

/// A delay uniform between `lo` and `hi` seconds.
fn secs(rng: &mut Rng, lo: f64, hi: f64) -> Duration {
    Duration::from_secs_f64(rng.range(lo, hi))
}
