//! An engine killed with SIGKILL in the middle of its work, restarted on the same journal,
//! several times: every acknowledged report is there, in at least its last acknowledged
//! state, and the count of cases never shrinks.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wangge::journal::{FileJournal, Journal};
use wangge::{
    CaseId, CaseState, City, Clock, Command, Engine, Report, SimClock, Source, Timestamp, Verifier,
};

const DIR: &str = "WANGGE_ENGINE_CRASH_DIR";
const T0: u64 = 1_764_460_800_000;

fn city() -> Arc<City> {
    Arc::new(City::demo())
}

/// An engine on the journal in `dir`, its clock where the journal left off.
fn engine_on(dir: &std::path::Path) -> (Engine, SimClock) {
    let clock = SimClock::new(Timestamp(T0));
    let engine = Engine::builder(city())
        .clock(clock.clone())
        .journal(Box::new(FileJournal::open(dir).expect("the journal opens")))
        .build()
        .expect("the engine recovers");
    let last = engine.recovery().expect("a journal's report").last_time;
    if last > clock.now() {
        clock.set(last);
    }
    (engine, clock)
}

/// The engine the crash test kills: submits reports and handles its cases forever,
/// printing each acknowledgement (`R id` for a report taken, `C id state` for a command
/// answered). Runs only as the crash test's child.
#[test]
#[ignore = "run by recovery::an_engine_killed_mid_load_recovers_every_acknowledged_case"]
fn crash_child_engine() {
    let Some(dir) = std::env::var_os(DIR) else {
        return;
    };
    let (engine, clock) = engine_on(std::path::Path::new(&dir));
    let city = engine.city();
    let [x0, y0, x1, y1] = city.grid().bounds();
    let codes: Vec<wangge::CategoryId> = (0..city.categories().len())
        .filter_map(wangge::CategoryId::from_index)
        .collect();
    let mut out = std::io::stdout().lock();
    let mut seed = engine.submitted() + 1;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut open: Vec<CaseId> = (0..engine.submitted())
        .map(CaseId)
        .filter(|&id| engine.case(id).is_some_and(|c| c.state.is_open()))
        .collect();
    loop {
        let batch: Vec<Report> = (0..32)
            .map(|_| {
                let at = wangge::Location::new(x0 + (x1 - x0) * next(), y0 + (y1 - y0) * next())
                    .expect("in bounds");
                let category = codes[(next() * codes.len() as f64) as usize % codes.len()];
                Report::new(Source::Hotline, category, at, clock.now())
            })
            .collect();
        for r in engine.submit_batch(batch) {
            let id = r.expect("taken");
            writeln!(out, "R {}", id.0).expect("stdout");
            open.push(id);
        }
        out.flush().expect("stdout");
        engine.flush();
        let mut commands = Vec::new();
        for &id in &open {
            let Some(case) = engine.case(id) else {
                continue;
            };
            commands.push(match (case.state, case.worker) {
                (CaseState::Dispatched, Some(worker)) => Command::Accept { case: id, worker },
                (CaseState::Accepted, Some(worker)) => Command::Resolve { case: id, worker },
                (CaseState::Resolved, _) => Command::Verify {
                    case: id,
                    by: Verifier::Center,
                    passed: next() > 0.1,
                },
                (CaseState::Verified, _) => Command::Close {
                    case: id,
                    satisfaction: None,
                },
                _ => continue,
            });
        }
        let mut results = vec![Ok(CaseState::Reported); commands.len()];
        engine.execute_batch(&commands, &mut results);
        for (c, r) in commands.iter().zip(&results) {
            if let Ok(state) = r {
                writeln!(out, "C {} {}", c.case().0, state).expect("stdout");
            }
        }
        out.flush().expect("stdout");
        open.retain(|&id| engine.case(id).is_some_and(|c| c.state.is_open()));
        clock.advance(Duration::from_secs(90));
        engine.tick();
    }
}

/// What the parent saw acknowledged.
#[derive(Default)]
struct Acks {
    reports: u64,
    /// Per case: every state a command was acknowledged in, in order.
    states: HashMap<u64, Vec<String>>,
}

#[test]
fn an_engine_killed_mid_load_recovers_every_acknowledged_case() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("j");
    let acks = Arc::new(Mutex::new(Acks::default()));
    let mut recovered_before = 0;
    for round in 0..4u64 {
        let mut child = Process::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "recovery::crash_child_engine",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child starts");
        let stdout = child.stdout.take().expect("piped");
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let line = line.expect("utf-8");
                    let mut acks = acks.lock().expect("lock");
                    let mut words = line.split(' ');
                    match (words.next(), words.next(), words.next()) {
                        (Some("R"), Some(id), None) => {
                            acks.reports += 1;
                            acks.states.entry(id.parse().expect("an id")).or_default();
                        }
                        (Some("C"), Some(id), Some(state)) => acks
                            .states
                            .entry(id.parse().expect("an id"))
                            .or_default()
                            .push(state.to_string()),
                        _ => {}
                    }
                }
            })
        };
        // A different while each round, in the middle of the load.
        let until = recovered_before + 300 + round * 400;
        while acks.lock().expect("lock").reports < until {
            assert!(
                child.try_wait().expect("status").is_none(),
                "round {round}: the engine died"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        // Acknowledgements printed before the kill landed count too.
        reader.join().expect("reader");

        let (engine, _) = engine_on(&dir);
        let recovery = engine.recovery().cloned().expect("a report");
        let acks = acks.lock().expect("lock");
        assert!(
            recovery.cases >= acks.reports && recovery.cases >= recovered_before,
            "round {round}: {} acknowledged, {} recovered before, {recovery:?}",
            acks.reports,
            recovered_before
        );
        for (&id, states) in &acks.states {
            let case = engine
                .case(CaseId(id))
                .unwrap_or_else(|| panic!("round {round}: acknowledged case {id} lost"));
            let reached: Vec<String> = case.history.iter().map(|t| t.to().to_string()).collect();
            // Each acknowledged state, in order, somewhere in the recovered history.
            let mut rest = reached.iter().skip(1);
            for s in states {
                assert!(
                    rest.any(|r| r == s),
                    "round {round}: case {id} acknowledged {states:?}, recovered {reached:?}"
                );
            }
        }
        let snapshot = engine.shutdown();
        assert_eq!(
            snapshot.by_state.values().sum::<u64>(),
            snapshot.cases,
            "round {round}"
        );
        assert_eq!(snapshot.cases, recovery.cases, "round {round}");
        recovered_before = recovery.cases;
    }
    assert!(recovered_before >= 300 + 700 + 1100 + 1500);
}

/// A journal of a short run: reports, every kind of handling, closures.
fn short_run(dir: &std::path::Path, options: wangge::journal::JournalOptions) -> u64 {
    let clock = SimClock::new(Timestamp(T0));
    let engine = Engine::builder(city())
        .clock(clock.clone())
        .journal(Box::new(
            FileJournal::open_with(dir, options).expect("opens"),
        ))
        .build()
        .expect("engine");
    let city = engine.city();
    let [x0, y0, x1, y1] = city.grid().bounds();
    for round in 0..6u32 {
        let reports: Vec<Report> = (0..40u32)
            .map(|i| {
                let f = f64::from((i * 37 + round * 11) % 97) / 97.0;
                let g = f64::from((i * 53 + round * 7) % 89) / 89.0;
                let at = wangge::Location::new(x0 + (x1 - x0) * f, y0 + (y1 - y0) * g)
                    .expect("in bounds");
                let category =
                    wangge::CategoryId::from_index((i as usize) % 4).expect("a category");
                Report::new(Source::Hotline, category, at, clock.now()).with_description("井盖缺失")
            })
            .collect();
        for r in engine.submit_batch(reports) {
            r.expect("taken");
        }
        engine.flush();
        for id in 0..engine.submitted() {
            let Some(case) = engine.case(CaseId(id)) else {
                continue;
            };
            let _ = match (case.state, case.worker) {
                (CaseState::Dispatched, Some(w)) if id % 7 == 0 => engine.return_case(case.id, w),
                (CaseState::Dispatched, Some(w)) => engine.accept(case.id, w),
                (CaseState::Accepted, Some(_)) if id % 5 == 0 => {
                    engine.extend(case.id, Duration::from_secs(3600), "雨天")
                }
                (CaseState::Accepted, Some(w)) => engine.resolve(case.id, w),
                (CaseState::Resolved, _) => engine.verify(case.id, Verifier::Center, id % 3 != 0),
                (CaseState::Verified, _) => {
                    engine.close(case.id, Some(wangge::Satisfaction::Basic))
                }
                (s, _) => Ok(s),
            };
        }
        engine.flush();
        clock.advance(Duration::from_secs(3600));
        engine.tick();
    }
    engine.shutdown().cases
}

fn records_of(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut j = FileJournal::open(dir).expect("opens");
    let mut out = Vec::new();
    j.read_from(0, &mut |_, r| {
        out.push(r.to_vec());
        std::ops::ControlFlow::Continue(())
    })
    .expect("reads");
    out
}

/// Records damaged in every way (bytes flipped, cut short, lengthened, shuffled, made
/// up) make recovery answer an error or recover something, never panic.
#[test]
fn damaged_records_never_panic_recovery() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use wangge::journal::Batch;
    let tmp = tempfile::tempdir().expect("temp dir");
    short_run(&tmp.path().join("src"), Default::default());
    let good = records_of(&tmp.path().join("src"));
    assert!(good.len() > 500, "{} records", good.len());
    let n = good.len();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let damage = (
        proptest::collection::vec((0..n, 0usize..64, any::<u8>(), 0u8..5), 1..12),
        proptest::collection::vec(any::<u8>(), 0..40),
    );
    let k = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&damage, |(edits, junk)| {
            let mut records = good.clone();
            for (i, at, byte, how) in edits {
                let r = &mut records[i];
                match how {
                    0 if !r.is_empty() => {
                        let at = at % r.len();
                        r[at] ^= byte | 1;
                    }
                    1 => r.truncate(at % (r.len() + 1)),
                    2 => r.push(byte),
                    3 => records.swap(i, at % n),
                    _ => records.insert(i, junk.clone()),
                }
            }
            let dir = tmp.path().join(format!(
                "d{}",
                k.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let mut j = FileJournal::open(&dir).expect("opens");
            let mut batch = Batch::new();
            for r in &records {
                batch.push(r).expect("small");
            }
            j.append(&batch).expect("appends");
            drop(j);
            let built = Engine::builder(city())
                .journal(Box::new(FileJournal::open(&dir).expect("reopens")))
                .build();
            if let Ok(engine) = built {
                let s = engine.shutdown();
                prop_assert_eq!(s.by_state.values().sum::<u64>(), s.cases);
            }
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        })
        .expect("no damage panics recovery");
}

/// A journal cut in the middle of its last record (a crash mid-write) loses that record
/// only: the journal reports the bytes it dropped, and the engine recovers the rest and
/// goes on.
#[test]
fn a_torn_tail_is_cut_and_the_rest_recovered() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("j");
    let cases = short_run(&dir, Default::default());
    let seg = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max()
        .expect("a segment");
    let len = std::fs::metadata(&seg).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .expect("opens");
    f.set_len(len - 5).expect("cut");
    drop(f);
    let journal = FileJournal::open(&dir).expect("a torn tail is no error");
    let cut = journal
        .recovery()
        .tail_cut
        .clone()
        .expect("the cut is reported");
    assert!(cut.dropped_bytes > 0 && cut.dropped_bytes < 64, "{cut}");
    let engine = Engine::builder(city())
        .clock(SimClock::new(Timestamp(T0 + 10 * 3_600_000)))
        .journal(Box::new(journal))
        .build()
        .expect("recovers");
    let r = engine.recovery().cloned().expect("report");
    assert_eq!(
        r.cases, cases,
        "the last record was a transition: every case is there"
    );
    let category = wangge::CategoryId::from_index(0).expect("a category");
    let at = wangge::Location::new(120.33, 36.12).expect("valid");
    let id = engine
        .submit(Report::new(
            Source::Hotline,
            category,
            at,
            Timestamp(T0 + 10 * 3_600_000),
        ))
        .expect("the engine goes on");
    assert_eq!(id.0, cases, "ids go on after the recovered ones");
    engine.shutdown();
}

/// A byte flipped before the tail is corruption, not a crash: opening the journal names
/// the segment and the offset, and nothing is recovered from it.
#[test]
fn a_flipped_byte_before_the_tail_is_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("j");
    short_run(
        &dir,
        wangge::journal::JournalOptions::default().segment_bytes(8 << 10),
    );
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() > 2, "{segs:?}");
    let victim = &segs[1];
    let mut bytes = std::fs::read(victim).expect("reads");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(victim, &bytes).expect("writes");
    let err = FileJournal::open(&dir).expect_err("corruption before the tail");
    let text = err.to_string();
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert!(text.contains(&name), "{text}");
}

/// A snapshot damaged in every way makes recovery answer an error or recover something,
/// never panic; the undamaged one recovers every case.
#[test]
fn damaged_snapshots_never_panic_recovery() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = tmp.path().join("src");
    let cases = short_run(&src, Default::default());
    {
        let engine = Engine::builder(city())
            .clock(SimClock::new(Timestamp(T0 + 10 * 3_600_000)))
            .journal(Box::new(FileJournal::open(&src).expect("opens")))
            .build()
            .expect("recovers");
        engine.checkpoint().expect("a snapshot");
        engine.shutdown();
    }
    let snapshot = FileJournal::open(&src)
        .expect("opens")
        .latest_snapshot()
        .expect("reads")
        .expect("written")
        .state;
    let load = |dir: &std::path::Path, state: &[u8]| {
        let mut j = FileJournal::open(dir).expect("opens");
        j.write_snapshot(0, state).expect("writes");
        drop(j);
        Engine::builder(city())
            .journal(Box::new(FileJournal::open(dir).expect("reopens")))
            .build()
    };
    let whole = load(&tmp.path().join("whole"), &snapshot).expect("the snapshot loads");
    assert_eq!(whole.recovery().expect("report").snapshot_cases, cases);
    assert_eq!(whole.shutdown().cases, cases);
    let n = snapshot.len();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let k = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(
            &(
                proptest::collection::vec((0..n, any::<u8>()), 1..8),
                0..n + 1,
            ),
            |(flips, cut)| {
                let mut state = snapshot.clone();
                for (at, byte) in flips {
                    state[at] ^= byte | 1;
                }
                state.truncate(cut.max(n / 2));
                let dir = tmp.path().join(format!(
                    "d{}",
                    k.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ));
                if let Ok(engine) = load(&dir, &state) {
                    let s = engine.shutdown();
                    prop_assert_eq!(s.by_state.values().sum::<u64>(), s.cases);
                }
                let _ = std::fs::remove_dir_all(&dir);
                Ok(())
            },
        )
        .expect("no damage panics recovery");
}
