//! Durability: a write-ahead journal of opaque records, snapshots and compaction.
//!
//! ```text
//!   engine ─► Batch (serialized records) ─► Journal::append ─► segment files ─► sync
//!                                                                   │
//!   recovery: latest snapshot ─► Journal::read_from(snapshot.covers) ┘
//! ```
//!
//! The [`Journal`] trait is the seam: records are opaque bytes (the engine serializes its
//! own record type), so a replicated log can take the place of the embedded
//! [`FileJournal`] without the engine changing. Every record gets a *position*, its
//! sequence number: 0 for the first record ever appended, then one more for each record,
//! never reused, not even after compaction. A [`Snapshot`] *covers* a position `p` when it
//! reflects every record before `p`; recovery loads it and replays from `p`.
//!
//! # Durability and sync policy
//!
//! [`FileJournal::append`](Journal::append) hands every batch to the operating system
//! before it returns, so an acknowledged append survives the death of the *process*
//! (SIGKILL, panic, abort). Surviving the death of the *machine* (power loss, kernel
//! crash) needs the segment synced to the disk, which [`SyncPolicy`] decides:
//!
//! - [`SyncPolicy::EveryBatch`]: `append` syncs before it returns. An acknowledgement
//!   means durable. Costs one `fdatasync` per batch.
//! - [`SyncPolicy::Group`] `{ records: N, millis: M }` (the default, N = 16,384, M = 10):
//!   group commit. A background thread syncs once N records have accumulated since the
//!   last sync, and at the latest M ms after the first unsynced append; it syncs outside
//!   the journal, so appends go on meanwhile, and `append` itself waits for a sync only
//!   when the thread has fallen 2N records behind (a disk slower than the appends).
//!   **Under group commit an acknowledgement does not mean durable** until the next sync:
//!   a machine crash can lose at most the last 2N acknowledged records, and only records
//!   acknowledged less than M ms (plus the time one sync takes) before the crash. A
//!   caller that needs one record durable now calls [`Journal::sync`]. (Should the
//!   system refuse the thread, `append` syncs itself every N records and M ms.)
//!
//! Measured by `benches/journal.rs` on a 2-vCPU VM whose disk takes 1-3 ms per sync
//! (figures vary by 10-50 % between runs on a shared disk), 64-byte records:
//!
//! | policy | batch of 1 | batch of 64 | batch of 1024 |
//! | --- | --- | --- | --- |
//! | `EveryBatch` | ~300 records/s | ~86 k/s | ~320 k/s |
//! | `Group`, 1,024 records / 10 ms | ~190 k/s | ~250 k/s | ~260 k/s |
//! | `Group`, default | ~310 k/s | ~2.1 M/s | ~2.7 M/s |
//! | never synced (page cache only) | ~300 k/s | ~3.1 M/s | ~6.5 M/s |
//!
//! A batch of one costs a `write` system call (~3 us): append in batches. Recovery of
//! 1M 64-byte records: opening (every checksum checked) ~0.21 s, replaying ~0.10 s.
//!
//! Records of one batch get consecutive positions but a batch is not atomic: after a
//! crash, recovery keeps a prefix of the records appended (whole records only).
//!
//! # Concurrency
//!
//! Every method that changes the journal takes `&mut self`; the journal is `Send`, not
//! shared. Threads that append put it behind a `Mutex` (or one thread owns it and the
//! others send it batches, which batches better). One process per directory: a second
//! process opening the same directory is not detected and would corrupt it.
//!
//! # On-disk format, version 1
//!
//! A journal is a directory. All integers are little-endian; every checksum is CRC-32
//! (IEEE, as computed by `crc32fast`).
//!
//! - **Segments** `NNNNNNNNNNNNNNNNNNNN.seg`, the twenty digits being the position of the
//!   segment's first record. A 24-byte header: magic `WGJOURNL` (8 bytes), version `u32`
//!   (= 1), first position `u64`, CRC-32 of those 20 bytes (`u32`). Then records, each a
//!   frame and a payload: length `u32` (at most [`MAX_RECORD_BYTES`]), CRC-32 `u32` of the
//!   4 length bytes followed by the payload, then the payload. A segment's records run to
//!   the end of its file; the next segment starts at the position after its last record.
//!   A new segment is begun once the current one would exceed
//!   [`JournalOptions::segment_bytes`] (default 64 MiB); a record larger than that gets a
//!   segment of its own.
//! - **Snapshots** `NNNNNNNNNNNNNNNNNNNN.snap`, the twenty digits being the position the
//!   snapshot covers. A 32-byte header: magic `WGSNAPSH`, version `u32` (= 1), covered
//!   position `u64`, payload length `u64`, CRC-32 (`u32`) of the 28 bytes before it and
//!   the payload; then the payload.
//! - Files ending in `.tmp` are files being created; recovery deletes them. Other files
//!   are ignored.
//!
//! New files are created whole and then renamed into place (write to a `.tmp`, sync it,
//! rename, sync the directory), so a crash never leaves a half-written header or
//! snapshot, and before a new segment is begun the previous one is synced. Hence, after
//! a crash, only the end of the last segment can be torn.
//!
//! # Recovery: what is a tail
//!
//! [`FileJournal::open`] checks every segment in order: header, name, continuity of
//! positions, and every record's checksum. The *tail* is the damage a crash can leave:
//! in the **last** segment, a damaged record (short frame, length past the end of the
//! file or over the limit, checksum mismatch) **after which no valid record starts at
//! any byte offset up to the end of the file**. The tail is cut off (the file truncated
//! to its last whole record) and reported in [`Recovery::tail_cut`], with the segment,
//! the offset and the number of bytes dropped. Anything else is an error naming the file
//! and byte offset and the journal is not opened: a damaged record in an earlier
//! segment, a damaged record in the last segment followed by a valid one (some
//! acknowledged data would be lost), a bad header, a segment whose name and header
//! disagree, a missing segment (a gap in the positions not covered by a snapshot), a
//! snapshot beyond the journal's end. Nothing is skipped silently.
//!
//! Looking for a valid record after a damaged one costs a checksum per byte offset whose
//! length field fits in what remains; only damaged files pay it.

mod error;
mod file;
mod format;

pub use error::{Damage, HeaderProblem, IoError, JournalError};
pub use file::{FileJournal, JournalOptions, Recovery, SyncPolicy, TailCut};
pub use format::MAX_RECORD_BYTES;

use std::ops::{ControlFlow, Range};

/// A write-ahead journal of opaque records with snapshots: the seam between the engine
/// and where its records are kept. Object-safe: the engine holds a `Box<dyn Journal>`.
pub trait Journal: Send {
    /// Appends the batch's records, in order, and answers their positions (consecutive).
    /// An empty batch appends nothing and answers an empty range at
    /// [`next_position`](Journal::next_position).
    ///
    /// # Errors
    ///
    /// A failed write; the journal then refuses further writes until reopened
    /// ([`JournalError::Failed`]).
    fn append(&mut self, batch: &Batch) -> Result<Range<u64>, JournalError>;

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    ///
    /// A failed sync; the journal then refuses further writes until reopened.
    fn sync(&mut self) -> Result<(), JournalError>;

    /// The first position still held (0 until compaction drops records).
    fn first_position(&self) -> u64;

    /// The position the next appended record will get.
    fn next_position(&self) -> u64;

    /// Calls `visit` with every record from position `from` on, in order, until the end
    /// or until `visit` answers [`ControlFlow::Break`]; answers the position after the
    /// last record visited. Every record's checksum is checked again as it is read.
    ///
    /// # Errors
    ///
    /// [`JournalError::Compacted`] for a position before
    /// [`first_position`](Journal::first_position) (read the snapshot instead),
    /// [`JournalError::BeyondEnd`] for one after
    /// [`next_position`](Journal::next_position), [`JournalError::Corrupt`] for a record
    /// damaged since the journal was opened, or a failed read.
    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<u64, JournalError>;

    /// Stores a snapshot of the state after every record before `covers`, replacing the
    /// latest one. The records it covers are synced first, so that a snapshot never
    /// outlives the records it reflects.
    ///
    /// # Errors
    ///
    /// [`JournalError::SnapshotAhead`] if `covers` is past
    /// [`next_position`](Journal::next_position), [`JournalError::SnapshotBehind`] if it
    /// is before the latest snapshot's, or a failed write.
    fn write_snapshot(&mut self, covers: u64, state: &[u8]) -> Result<(), JournalError>;

    /// A function that writes a snapshot's bulk where recovery does not see it yet, and
    /// needs nothing of the journal to do so: a caller that shares the journal behind a
    /// lock takes it under the lock, runs it outside, and hands what it made to
    /// [`Journal::install_snapshot`] under the lock again, so that appends go on while a
    /// large snapshot is written. The default keeps the bytes in memory for
    /// `install_snapshot` to write.
    fn snapshot_stager(&self) -> Box<SnapshotStager> {
        Box::new(|covers, state| {
            Ok(StagedSnapshot {
                covers,
                staged: Staged::Bytes(state.to_vec()),
            })
        })
    }

    /// Makes a staged snapshot the latest, as [`Journal::write_snapshot`] would have.
    ///
    /// # Errors
    ///
    /// As [`Journal::write_snapshot`]; a snapshot staged by another journal is refused
    /// ([`JournalError::SnapshotAhead`] or a failed rename).
    fn install_snapshot(&mut self, staged: StagedSnapshot) -> Result<(), JournalError> {
        match staged.staged {
            Staged::Bytes(bytes) => self.write_snapshot(staged.covers, &bytes),
            Staged::File(path) => Err(JournalError::Io {
                action: "install",
                path,
                source: std::io::Error::other("a snapshot staged as a file by another journal")
                    .into(),
            }),
        }
    }

    /// The latest snapshot, if any, checked.
    ///
    /// # Errors
    ///
    /// [`JournalError::BadSnapshot`] if it is damaged, or a failed read.
    fn latest_snapshot(&mut self) -> Result<Option<Snapshot>, JournalError>;

    /// Drops the records wholly covered by the latest snapshot (whole segments, never
    /// the one being written) and the older snapshots.
    ///
    /// # Errors
    ///
    /// A failed removal; what was removed before it stays removed, and the journal stays
    /// consistent (the oldest files go first).
    fn compact(&mut self) -> Result<Compaction, JournalError>;
}

/// A state saved at a position: recovery loads it and replays the records from
/// `covers` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshot reflects every record before this position.
    pub covers: u64,
    /// The state, as the engine serialized it.
    pub state: Vec<u8>,
}

/// What [`Journal::snapshot_stager`] gives: writes a snapshot covering a position, with
/// this state, where recovery does not see it yet.
pub type SnapshotStager = dyn FnOnce(u64, &[u8]) -> Result<StagedSnapshot, JournalError> + Send;

/// A snapshot written by a [`SnapshotStager`], not yet the latest: see
/// [`Journal::install_snapshot`].
#[derive(Debug)]
pub struct StagedSnapshot {
    /// The position it covers.
    pub covers: u64,
    staged: Staged,
}

impl StagedSnapshot {
    /// A snapshot staged in a file (by a journal that writes files).
    pub(crate) fn file(covers: u64, path: std::path::PathBuf) -> StagedSnapshot {
        StagedSnapshot {
            covers,
            staged: Staged::File(path),
        }
    }

    /// The staged file, if it is one.
    pub(crate) fn path(&self) -> Option<&std::path::Path> {
        match &self.staged {
            Staged::File(p) => Some(p),
            Staged::Bytes(_) => None,
        }
    }
}

#[derive(Debug)]
enum Staged {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

/// What [`Journal::compact`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Segment files removed.
    pub segments_removed: usize,
    /// Their bytes.
    pub bytes_removed: u64,
    /// Older snapshot files removed.
    pub snapshots_removed: usize,
    /// The first position still held afterwards.
    pub first_position: u64,
}

/// Records to append together, framed and checksummed as they are pushed. Reuse one
/// batch ([`Batch::clear`]) to keep its buffers.
///
/// ```
/// use wangge::journal::{Batch, FileJournal, Journal};
///
/// let dir = std::env::temp_dir().join(format!("wangge-doc-batch-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut journal = FileJournal::open(&dir)?;
/// let mut batch = Batch::new();
/// batch.push(b"first")?;
/// batch.push_with(|buf| {
///     buf.extend_from_slice(b"second");
///     Ok::<_, wangge::journal::JournalError>(())
/// })?;
/// assert_eq!(journal.append(&batch)?, 0..2);
/// journal.sync()?;
///
/// let mut seen = Vec::new();
/// journal.read_from(1, &mut |pos, rec| {
///     seen.push((pos, rec.to_vec()));
///     std::ops::ControlFlow::Continue(())
/// })?;
/// assert_eq!(seen, vec![(1, b"second".to_vec())]);
/// # drop(journal);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Frames and payloads, exactly as a segment holds them.
    framed: Vec<u8>,
    /// Where each record ends in `framed`.
    ends: Vec<usize>,
    scratch: Vec<u8>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record.
    ///
    /// # Errors
    ///
    /// [`JournalError::RecordTooLarge`] over [`MAX_RECORD_BYTES`]; the batch is unchanged.
    pub fn push(&mut self, record: &[u8]) -> Result<(), JournalError> {
        if record.len() > MAX_RECORD_BYTES {
            return Err(JournalError::RecordTooLarge {
                len: record.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        format::push_record(&mut self.framed, record);
        self.ends.push(self.framed.len());
        Ok(())
    }

    /// Adds one record that `write` serializes into the (empty) buffer it is given,
    /// whose allocation the batch keeps for the next record.
    ///
    /// # Errors
    ///
    /// `write`'s error, or [`JournalError::RecordTooLarge`]; the batch is unchanged.
    pub fn push_with<E: From<JournalError>>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let written = write(&mut scratch);
        let pushed = written.and_then(|()| self.push(&scratch).map_err(E::from));
        self.scratch = scratch;
        pushed
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes the batch takes in a segment: payloads and frames.
    pub fn framed_len(&self) -> usize {
        self.framed.len()
    }

    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.framed.clear();
        self.ends.clear();
    }

    /// The records' payloads, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let payload = &self.framed[start + format::FRAME_LEN..end];
            start = end;
            payload
        })
    }
}
