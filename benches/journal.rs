//! The file journal's append throughput: records/s and MB/s of payload for 64- and
//! 256-byte records, in batches of 1, 64 and 1024, synced every batch or by group commit
//! (every 1,024 records or 10 ms, and the default: every 16,384 records or 10 ms), against
//! a floor that never syncs (the page cache alone).
//!
//! ```text
//!   pre-built Batch (B records of S bytes) ─► FileJournal::append ─► segment files
//!                                              (EveryBatch: fdatasync per append;
//!                                               Group: per 1024 records / 10 ms)
//! ```
//!
//! Recovery: opening a journal of about 70 MB (every checksum checked) and replaying it.
//!
//! The journal lives in the target directory (on the real disk: a tmpfs would make every
//! sync free) and grows across iterations, rolling segments as it would in service.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::ops::ControlFlow;
use std::time::Duration;
use wangge::journal::{Batch, FileJournal, Journal, JournalOptions, SyncPolicy};

/// Payload sizes, bytes.
const RECORD_SIZES: [usize; 2] = [64, 256];
/// Records per append.
const BATCH_SIZES: [usize; 3] = [1, 64, 1024];
const SEED: u64 = 0x5EED_10A1;

fn payloads(size: usize, n: usize) -> Batch {
    let mut x = SEED;
    let mut b = Batch::new();
    let mut rec = vec![0u8; size];
    for _ in 0..n {
        for byte in rec.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
        b.push(&rec).expect("a small record");
    }
    b
}

fn append(c: &mut Criterion) {
    let policies = [
        ("every_batch", SyncPolicy::EveryBatch),
        (
            "group_1k",
            SyncPolicy::Group {
                records: 1024,
                millis: 10,
            },
        ),
        ("group_default", SyncPolicy::default()),
        // Never synced within a run: the cost of writing to the page cache alone.
        (
            "unsynced",
            SyncPolicy::Group {
                records: u64::MAX,
                millis: 3_600_000,
            },
        ),
    ];
    for size in RECORD_SIZES {
        let mut group = c.benchmark_group(format!("journal_append_{size}B"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, policy) in policies {
            for batch_size in BATCH_SIZES {
                let batch = payloads(size, batch_size);
                group.throughput(Throughput::ElementsAndBytes {
                    elements: batch_size as u64,
                    bytes: (batch_size * size) as u64,
                });
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch dir");
                let mut journal =
                    FileJournal::open_with(dir.path(), JournalOptions::default().sync(policy))
                        .expect("a new journal");
                group.bench_function(BenchmarkId::new(name, batch_size), |b| {
                    b.iter(|| journal.append(&batch).expect("append"));
                });
                drop(journal);
                drop(dir);
            }
        }
        group.finish();
    }
}

/// Records in the journal that recovery reads back, per payload size: about 70 MB each.
const REPLAY_RECORDS: [(usize, usize); 2] = [(64, 1 << 20), (256, 1 << 18)];

/// What recovery costs: opening a journal (every segment read and every checksum
/// checked) and replaying it from position 0 through `read_from`.
fn recover(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_recover");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (size, records) in REPLAY_RECORDS {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch dir");
        {
            let mut journal = FileJournal::open(dir.path()).expect("a new journal");
            let batch = payloads(size, 1024);
            for _ in 0..records / 1024 {
                journal.append(&batch).expect("append");
            }
            journal.sync().expect("sync");
        }
        group.throughput(Throughput::ElementsAndBytes {
            elements: records as u64,
            bytes: (records * size) as u64,
        });
        group.bench_function(BenchmarkId::new("open", size), |b| {
            b.iter(|| FileJournal::open(dir.path()).expect("open"));
        });
        let mut journal = FileJournal::open(dir.path()).expect("open");
        group.bench_function(BenchmarkId::new("replay", size), |b| {
            b.iter(|| {
                let mut bytes = 0usize;
                journal
                    .read_from(0, &mut |_, rec| {
                        bytes += rec.len();
                        ControlFlow::Continue(())
                    })
                    .expect("replay");
                assert_eq!(bytes, records * size);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append, recover);
criterion_main!(benches);
