//! The embedded journal: a directory of segment and snapshot files.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::error::{Damage, JournalError, io};
use super::format::{self, FRAME_LEN, MAX_RECORD_BYTES, SEGMENT_HEADER_LEN};
use super::{Batch, Compaction, Journal, Snapshot};

/// When appended records are synced to the disk. See the [module docs](super) for what
/// a crash can lose under each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Sync before every `append` returns: an acknowledgement means durable.
    EveryBatch,
    /// Group commit: sync once `records` records are unsynced, and at the latest
    /// `millis` ms after the first unsynced append, from a background thread; `append`
    /// waits for a sync only once `2 × records` are unsynced.
    Group {
        /// Unsynced records that trigger a sync (0 counts as 1).
        records: u64,
        /// The longest an appended record stays unsynced, in milliseconds.
        millis: u64,
    },
}

/// Group commit of at most 16,384 records or 10 ms. A sync costs about 1-2 ms on the disk
/// measured here, so a sync every 1,024 records would cost 1-2 us per record, more than
/// the whole in-memory dispatch path; 16,384 brings it to ~0.1 us.
impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Group {
            records: 16_384,
            millis: 10,
        }
    }
}

/// How a [`FileJournal`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalOptions {
    /// A new segment is begun once the current one would grow past this many bytes.
    pub segment_bytes: u64,
    /// When appends are synced.
    pub sync: SyncPolicy,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            segment_bytes: 64 << 20,
            sync: SyncPolicy::default(),
        }
    }
}

impl JournalOptions {
    /// The segment size limit.
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The sync policy.
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }
}

/// What [`FileJournal::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Segment files read.
    pub segments: usize,
    /// Records held (from the first position to the next).
    pub records: u64,
    /// The torn or damaged tail cut off the last segment, if there was one.
    pub tail_cut: Option<TailCut>,
    /// Unfinished `.tmp` files (never part of the journal) deleted.
    pub temp_files_removed: usize,
    /// The latest snapshot's position, if there is one.
    pub snapshot: Option<u64>,
}

/// A tail cut off the last segment on open: what a crash mid-write (or bytes appended
/// by something else) leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the file now ends: the end of its last whole record.
    pub offset: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
    /// What was wrong with the first dropped byte's record.
    pub damage: Damage,
}

impl std::fmt::Display for TailCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cut a damaged tail of {} bytes off segment {} at byte {} ({})",
            self.dropped_bytes,
            self.segment.display(),
            self.offset,
            self.damage
        )
    }
}

#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    len: u64,
}

/// The embedded [`Journal`]: segment files in a directory, synced by a [`SyncPolicy`].
/// The format, what a crash can lose and how recovery treats damage are in the
/// [module docs](super).
#[derive(Debug)]
pub struct FileJournal {
    dir: PathBuf,
    options: JournalOptions,
    /// Oldest first; the last one is being written.
    segments: Vec<Segment>,
    active: Arc<File>,
    next: u64,
    unsynced_records: u64,
    first_unsynced: Option<Instant>,
    snapshot: Option<u64>,
    recovery: Recovery,
    syncer: Option<Syncer>,
    failed: Option<JournalError>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn snapshot_name(covers: u64) -> String {
    format!("{covers:020}.snap")
}

/// The number a journal file is named by, if `name` ends in `ext`.
fn numbered(dir: &Path, name: &str, ext: &str) -> Result<Option<u64>, JournalError> {
    let Some(stem) = name.strip_suffix(ext) else {
        return Ok(None);
    };
    if stem.len() == 20
        && stem.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = stem.parse()
    {
        return Ok(Some(n));
    }
    Err(JournalError::BadFileName {
        file: dir.join(name),
    })
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    let d = io("open directory", dir, File::open(dir))?;
    io("sync directory", dir, d.sync_all())
}

/// Creates `dir/name` holding `bytes`, atomically: whole or not at all.
fn create_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = io("create", &tmp, File::create(&tmp))?;
    io("write", &tmp, f.write_all(bytes))?;
    io("sync", &tmp, f.sync_all())?;
    drop(f);
    io("rename", &tmp, fs::rename(&tmp, &path))?;
    sync_dir(dir)
}

fn open_append(path: &Path) -> Result<Arc<File>, JournalError> {
    let f = io(
        "open",
        path,
        OpenOptions::new().append(true).read(true).open(path),
    )?;
    Ok(Arc::new(f))
}

impl FileJournal {
    /// Opens the journal in `dir` (created if missing) with the default options, after
    /// recovering it; see [`FileJournal::open_with`].
    ///
    /// # Errors
    ///
    /// As [`FileJournal::open_with`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(dir, JournalOptions::default())
    }

    /// Opens the journal in `dir` (created if missing), checking every record and
    /// cutting off a torn tail; [`FileJournal::recovery`] says what was found.
    ///
    /// # Errors
    ///
    /// Damage before the tail (see the [module docs](super)): [`JournalError::Corrupt`],
    /// [`JournalError::BadHeader`], [`JournalError::NameMismatch`],
    /// [`JournalError::Gap`], [`JournalError::NoSegments`],
    /// [`JournalError::BadSnapshot`], [`JournalError::SnapshotBeyondEnd`],
    /// [`JournalError::BadFileName`]; or a failed file operation. Nothing is changed
    /// on an error except deleting `.tmp` files.
    pub fn open_with(dir: impl AsRef<Path>, options: JournalOptions) -> Result<Self, JournalError> {
        let dir = dir.as_ref().to_path_buf();
        io("create directory", &dir, fs::create_dir_all(&dir))?;
        let mut recovery = Recovery::default();
        let mut seg_firsts = Vec::new();
        let mut snapshots = Vec::new();
        for entry in io("list", &dir, fs::read_dir(&dir))? {
            let entry = io("list", &dir, entry)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.ends_with(".tmp") {
                let path = entry.path();
                io("remove", &path, fs::remove_file(&path))?;
                recovery.temp_files_removed += 1;
            } else if let Some(first) = numbered(&dir, &name, ".seg")? {
                seg_firsts.push(first);
            } else if let Some(covers) = numbered(&dir, &name, ".snap")? {
                snapshots.push(covers);
            }
        }
        seg_firsts.sort_unstable();
        let snapshot = snapshots.iter().copied().max();
        if let Some(covers) = snapshot {
            let path = dir.join(snapshot_name(covers));
            let mut header = [0; format::SNAPSHOT_HEADER_LEN];
            let mut f = io("open", &path, File::open(&path))?;
            let read = read_up_to(&mut f, &mut header).map_err(|e| JournalError::Io {
                action: "read",
                path: path.clone(),
                source: e.into(),
            })?;
            let in_header = format::read_snapshot_covers(&header[..read]).map_err(|problem| {
                JournalError::BadSnapshot {
                    snapshot: path.clone(),
                    problem,
                }
            })?;
            if in_header != covers {
                return Err(JournalError::BadSnapshot {
                    snapshot: path,
                    problem: super::HeaderProblem::Name {
                        header: in_header,
                        name: covers,
                    },
                });
            }
        }

        if seg_firsts.is_empty() {
            if snapshot.is_some() {
                return Err(JournalError::NoSegments { dir });
            }
            create_atomically(&dir, &segment_name(0), &format::segment_header(0))?;
            seg_firsts.push(0);
        }

        let mut segments = Vec::with_capacity(seg_firsts.len());
        let mut expected = snapshot.unwrap_or(0);
        let count = seg_firsts.len();
        for (i, &name_first) in seg_firsts.iter().enumerate() {
            let path = dir.join(segment_name(name_first));
            let bytes = io("read", &path, fs::read(&path))?;
            let first =
                format::read_segment_header(&bytes).map_err(|problem| JournalError::BadHeader {
                    segment: path.clone(),
                    problem,
                })?;
            if first != name_first {
                return Err(JournalError::NameMismatch {
                    segment: path,
                    header: first,
                    name: name_first,
                });
            }
            // Before the first segment, a snapshot may stand for compacted records; after
            // it, each segment starts where the one before ends.
            let continues = if i == 0 {
                first <= expected
            } else {
                first == expected
            };
            if !continues {
                return Err(JournalError::Gap {
                    segment: path,
                    expected,
                    found: first,
                });
            }
            let scan = format::scan(&bytes, SEGMENT_HEADER_LEN);
            let mut len = bytes.len() as u64;
            if let Some(damage) = scan.damage {
                let offset = scan.valid_len;
                let last = i + 1 == count;
                let follows = if last {
                    format::valid_record_after(&bytes, offset)
                } else {
                    None
                };
                if !last || follows.is_some() {
                    return Err(JournalError::Corrupt {
                        segment: path,
                        offset: offset as u64,
                        damage,
                        valid_record_at: follows.map(|at| at as u64),
                    });
                }
                recovery.tail_cut = Some(TailCut {
                    segment: path.clone(),
                    offset: offset as u64,
                    dropped_bytes: len - offset as u64,
                    damage,
                });
                len = offset as u64;
            }
            expected = first + scan.records;
            segments.push(Segment { first, path, len });
        }
        let next = expected;
        if let Some(covers) = snapshot
            && covers > next
        {
            return Err(JournalError::SnapshotBeyondEnd {
                snapshot: dir.join(snapshot_name(covers)),
                covers,
                next,
            });
        }
        // Cut only once everything else has been checked, so that a refused open changes
        // nothing.
        if let Some(tail) = &recovery.tail_cut {
            let f = io(
                "open",
                &tail.segment,
                OpenOptions::new().write(true).open(&tail.segment),
            )?;
            io("truncate", &tail.segment, f.set_len(tail.offset))?;
            io("sync", &tail.segment, f.sync_all())?;
        }
        let first = segments.first().map_or(0, |s| s.first);
        recovery.segments = segments.len();
        recovery.records = next - first;
        recovery.snapshot = snapshot;

        let Some(active_path) = segments.last().map(|s| s.path.clone()) else {
            return Err(JournalError::NoSegments { dir });
        };
        let active = open_append(&active_path)?;
        let syncer = match options.sync {
            SyncPolicy::EveryBatch => None,
            SyncPolicy::Group { millis, .. } => Some(Syncer::start(
                active.clone(),
                Duration::from_millis(millis),
                next,
            )),
        };
        Ok(FileJournal {
            dir,
            options,
            segments,
            active,
            next,
            unsynced_records: 0,
            first_unsynced: None,
            snapshot,
            recovery,
            syncer,
            failed: None,
        })
    }

    /// What opening found: segments, records, a cut tail, the latest snapshot.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it writes with.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The segment files, oldest first, with the position of each one's first record.
    pub fn segments(&self) -> impl Iterator<Item = (u64, &Path)> + '_ {
        self.segments.iter().map(|s| (s.first, s.path.as_path()))
    }

    fn check_failed(&mut self) -> Result<(), JournalError> {
        if self.failed.is_none()
            && let Some(e) = self.syncer.as_ref().and_then(Syncer::take_error)
        {
            self.failed = Some(JournalError::Io {
                action: "sync (background)",
                path: self.active_path().to_path_buf(),
                source: e.into(),
            });
        }
        match &self.failed {
            Some(cause) => Err(JournalError::Failed {
                cause: Box::new(cause.clone()),
            }),
            None => Ok(()),
        }
    }

    /// Records `e` as the failure that stops further writes, and answers it.
    fn fail(&mut self, e: JournalError) -> JournalError {
        self.failed.get_or_insert_with(|| e.clone());
        e
    }

    fn active_path(&self) -> &Path {
        self.segments.last().map_or(&self.dir, |s| &s.path)
    }

    fn active_len(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.len)
    }

    fn write_chunk(&mut self, bytes: &[u8], records: u64) -> Result<(), JournalError> {
        let path = self.active_path().to_path_buf();
        let r = io("write", &path, (&*self.active).write_all(bytes));
        if let Err(e) = r {
            return Err(self.fail(e));
        }
        if let Some(s) = self.segments.last_mut() {
            s.len += bytes.len() as u64;
        }
        self.next += records;
        self.unsynced_records += records;
        if self.first_unsynced.is_none() {
            self.first_unsynced = Some(Instant::now());
        }
        if let Some(s) = &self.syncer {
            s.mark_dirty(self.next);
        }
        Ok(())
    }

    fn sync_now(&mut self) -> Result<(), JournalError> {
        if self.first_unsynced.is_none() {
            return Ok(());
        }
        if let Some(s) = &self.syncer {
            s.mark_clean();
        }
        let path = self.active_path().to_path_buf();
        if let Err(e) = io("sync", &path, self.active.sync_data()) {
            return Err(self.fail(e));
        }
        if let Some(s) = &self.syncer {
            s.synced_to(self.next);
        }
        self.unsynced_records = 0;
        self.first_unsynced = None;
        Ok(())
    }

    /// Begins a new segment at the next position, the current one synced first so that
    /// only the last segment can ever be torn.
    fn roll(&mut self) -> Result<(), JournalError> {
        self.sync_now()?;
        let name = segment_name(self.next);
        if let Err(e) = create_atomically(&self.dir, &name, &format::segment_header(self.next)) {
            return Err(self.fail(e));
        }
        let path = self.dir.join(name);
        let active = match open_append(&path) {
            Ok(f) => f,
            Err(e) => return Err(self.fail(e)),
        };
        self.active = active.clone();
        if let Some(s) = &self.syncer {
            s.set_file(active);
        }
        self.segments.push(Segment {
            first: self.next,
            path,
            len: SEGMENT_HEADER_LEN as u64,
        });
        Ok(())
    }
}

/// Reads as many bytes as `buf` holds or the file has, whichever is less.
fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl Journal for FileJournal {
    fn append(&mut self, batch: &Batch) -> Result<Range<u64>, JournalError> {
        self.check_failed()?;
        let start = self.next;
        let limit = self.options.segment_bytes;
        // Records go to the current segment in chunks; a record that would take the
        // segment past its limit begins a new one, unless the segment holds none yet.
        let mut chunk_start = 0;
        let mut chunk_records = 0u64;
        let mut prev_end = 0;
        for &end in &batch.ends {
            let pending = (prev_end - chunk_start) as u64;
            let holds_records = self.active_len() + pending > SEGMENT_HEADER_LEN as u64;
            if holds_records && self.active_len() + pending + (end - prev_end) as u64 > limit {
                self.write_chunk(&batch.framed[chunk_start..prev_end], chunk_records)?;
                self.roll()?;
                chunk_start = prev_end;
                chunk_records = 0;
            }
            chunk_records += 1;
            prev_end = end;
        }
        if chunk_records > 0 {
            self.write_chunk(&batch.framed[chunk_start..prev_end], chunk_records)?;
        }
        match self.options.sync {
            SyncPolicy::EveryBatch => self.sync_now()?,
            SyncPolicy::Group { records, millis } => match &self.syncer {
                // The sync thread syncs once `records` are unsynced, outside every lock
                // of the caller's; an append waits for a sync only when the thread has
                // fallen twice that far behind.
                Some(syncer) => {
                    let unsynced = self.next.saturating_sub(syncer.synced());
                    if unsynced >= records.max(1).saturating_mul(2) {
                        self.sync_now()?;
                    } else if unsynced >= records.max(1) {
                        syncer.request(self.next);
                    }
                }
                None => {
                    let late = self
                        .first_unsynced
                        .is_some_and(|t| t.elapsed() >= Duration::from_millis(millis));
                    if self.unsynced_records >= records.max(1) || late {
                        self.sync_now()?;
                    }
                }
            },
        }
        Ok(start..self.next)
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.check_failed()?;
        self.sync_now()
    }

    fn first_position(&self) -> u64 {
        self.segments.first().map_or(self.next, |s| s.first)
    }

    fn next_position(&self) -> u64 {
        self.next
    }

    fn read_from(
        &mut self,
        from: u64,
        visit: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<u64, JournalError> {
        let first_available = self.first_position();
        if from < first_available {
            return Err(JournalError::Compacted {
                requested: from,
                first_available,
            });
        }
        if from > self.next {
            return Err(JournalError::BeyondEnd {
                requested: from,
                next: self.next,
            });
        }
        let start = self
            .segments
            .partition_point(|s| s.first <= from)
            .saturating_sub(1);
        let mut payload = Vec::new();
        for (i, seg) in self.segments.iter().enumerate().skip(start) {
            let end_pos = self.segments.get(i + 1).map_or(self.next, |s| s.first);
            if seg.first >= end_pos {
                continue;
            }
            let mut f = io("open", &seg.path, File::open(&seg.path))?;
            io(
                "seek",
                &seg.path,
                f.seek(SeekFrom::Start(SEGMENT_HEADER_LEN as u64)),
            )?;
            let mut r = BufReader::with_capacity(1 << 18, f);
            let mut offset = SEGMENT_HEADER_LEN as u64;
            let mut frame = [0u8; FRAME_LEN];
            for pos in seg.first..end_pos {
                let corrupt = |damage| JournalError::Corrupt {
                    segment: seg.path.clone(),
                    offset,
                    damage,
                    valid_record_at: None,
                };
                let got = io("read", &seg.path, read_up_to(&mut r, &mut frame))?;
                if got < FRAME_LEN {
                    return Err(corrupt(Damage::ShortFrame {
                        available: got as u64,
                    }));
                }
                let lenb = [frame[0], frame[1], frame[2], frame[3]];
                let len = u32::from_le_bytes(lenb) as usize;
                if len > MAX_RECORD_BYTES {
                    return Err(corrupt(Damage::TooLong { len: len as u64 }));
                }
                payload.resize(len, 0);
                let got = io("read", &seg.path, read_up_to(&mut r, &mut payload))?;
                if got < len {
                    return Err(corrupt(Damage::Truncated {
                        len: len as u64,
                        available: got as u64,
                    }));
                }
                let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
                let computed = format::record_crc(lenb, &payload);
                if stored != computed {
                    return Err(corrupt(Damage::Checksum { stored, computed }));
                }
                offset += (FRAME_LEN + len) as u64;
                if pos >= from && visit(pos, &payload).is_break() {
                    return Ok(pos + 1);
                }
            }
        }
        Ok(self.next)
    }

    fn write_snapshot(&mut self, covers: u64, state: &[u8]) -> Result<(), JournalError> {
        self.check_failed()?;
        if covers > self.next {
            return Err(JournalError::SnapshotAhead {
                covers,
                next: self.next,
            });
        }
        if let Some(latest) = self.snapshot
            && covers < latest
        {
            return Err(JournalError::SnapshotBehind { covers, latest });
        }
        self.sync_now()?;
        create_atomically(
            &self.dir,
            &snapshot_name(covers),
            &format::snapshot_file(covers, state),
        )?;
        self.snapshot = Some(covers);
        Ok(())
    }

    fn snapshot_stager(&self) -> Box<super::SnapshotStager> {
        let dir = self.dir.clone();
        Box::new(move |covers, state| {
            // Written and synced under a name recovery deletes, renamed into place by
            // `install_snapshot` once the records it covers are synced.
            let tmp = dir.join(format!("{}.staged.tmp", snapshot_name(covers)));
            let mut f = io("create", &tmp, File::create(&tmp))?;
            io(
                "write",
                &tmp,
                f.write_all(&format::snapshot_file(covers, state)),
            )?;
            io("sync", &tmp, f.sync_all())?;
            Ok(super::StagedSnapshot::file(covers, tmp))
        })
    }

    fn install_snapshot(&mut self, staged: super::StagedSnapshot) -> Result<(), JournalError> {
        let Some(tmp) = staged.path().map(Path::to_path_buf) else {
            return Err(JournalError::Io {
                action: "install",
                path: self.dir.clone(),
                source: std::io::Error::other("a snapshot staged in memory").into(),
            });
        };
        let covers = staged.covers;
        let refuse = |e: JournalError| {
            let _ = fs::remove_file(&tmp);
            e
        };
        self.check_failed().map_err(refuse)?;
        if tmp.parent() != Some(self.dir.as_path()) {
            return Err(refuse(JournalError::Io {
                action: "install",
                path: tmp.clone(),
                source: std::io::Error::other("staged for another journal").into(),
            }));
        }
        if covers > self.next {
            return Err(refuse(JournalError::SnapshotAhead {
                covers,
                next: self.next,
            }));
        }
        if let Some(latest) = self.snapshot
            && covers < latest
        {
            return Err(refuse(JournalError::SnapshotBehind { covers, latest }));
        }
        self.sync_now().map_err(refuse)?;
        let path = self.dir.join(snapshot_name(covers));
        io("rename", &tmp, fs::rename(&tmp, &path))?;
        sync_dir(&self.dir)?;
        self.snapshot = Some(covers);
        Ok(())
    }

    fn latest_snapshot(&mut self) -> Result<Option<Snapshot>, JournalError> {
        let Some(covers) = self.snapshot else {
            return Ok(None);
        };
        let path = self.dir.join(snapshot_name(covers));
        let bytes = io("read", &path, fs::read(&path))?;
        let bad = |problem| JournalError::BadSnapshot {
            snapshot: path.clone(),
            problem,
        };
        let (in_file, state) = format::read_snapshot(&bytes).map_err(bad)?;
        if in_file != covers {
            return Err(bad(super::HeaderProblem::Name {
                header: in_file,
                name: covers,
            }));
        }
        Ok(Some(Snapshot {
            covers,
            state: state.to_vec(),
        }))
    }

    fn compact(&mut self) -> Result<Compaction, JournalError> {
        let mut done = Compaction {
            first_position: self.first_position(),
            ..Compaction::default()
        };
        let Some(covers) = self.snapshot else {
            return Ok(done);
        };
        // Oldest first, so that a crash half-way leaves a journal that still continues.
        while self.segments.len() > 1 && self.segments[1].first <= covers {
            let path = &self.segments[0].path;
            io("remove", path, fs::remove_file(path))?;
            let seg = self.segments.remove(0);
            done.segments_removed += 1;
            done.bytes_removed += seg.len;
        }
        for entry in io("list", &self.dir, fs::read_dir(&self.dir))? {
            let entry = io("list", &self.dir, entry)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if let Ok(Some(older)) = numbered(&self.dir, &name, ".snap")
                && older < covers
            {
                let path = entry.path();
                io("remove", &path, fs::remove_file(&path))?;
                done.snapshots_removed += 1;
            }
        }
        sync_dir(&self.dir)?;
        done.first_position = self.first_position();
        Ok(done)
    }
}

impl Drop for FileJournal {
    fn drop(&mut self) {
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        // Best effort: a caller who must know that the last records are durable calls
        // `sync` and looks at its answer.
        if self.failed.is_none() && self.first_unsynced.is_some() {
            let _ = self.active.sync_data();
        }
    }
}

/// The group-commit timer: a thread that syncs the active segment at the latest `delay`
/// after the first unsynced append.
#[derive(Debug)]
struct Syncer {
    shared: Arc<SyncShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct SyncShared {
    state: Mutex<SyncState>,
    wake: Condvar,
}

#[derive(Debug)]
struct SyncState {
    file: Arc<File>,
    dirty_since: Option<Instant>,
    /// Sync now, without waiting for the timer.
    urgent: bool,
    /// The journal's next position when it was last marked dirty: what the next sync
    /// makes durable.
    target: u64,
    /// Every record before this position is synced.
    synced: u64,
    stop: bool,
    error: Option<std::io::Error>,
}

impl Syncer {
    fn start(file: Arc<File>, delay: Duration, next: u64) -> Self {
        let shared = Arc::new(SyncShared {
            state: Mutex::new(SyncState {
                file,
                dirty_since: None,
                urgent: false,
                target: next,
                synced: next,
                stop: false,
                error: None,
            }),
            wake: Condvar::new(),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wangge-journal-sync".into())
            .spawn(move || Self::run(&worker, delay))
            .ok();
        // Without the thread (the system refused one), appends still sync every
        // `records`, and at the first append after `delay`.
        Syncer { shared, thread }
    }

    fn run(shared: &SyncShared, delay: Duration) {
        let mut state = shared.state.lock();
        loop {
            if state.stop {
                return;
            }
            match state.dirty_since {
                None => shared.wake.wait(&mut state),
                Some(since) => {
                    let due = since + delay;
                    if !state.urgent && Instant::now() < due {
                        shared.wake.wait_until(&mut state, due);
                        continue;
                    }
                    state.dirty_since = None;
                    state.urgent = false;
                    let (file, target) = (state.file.clone(), state.target);
                    drop(state);
                    let r = file.sync_data();
                    state = shared.state.lock();
                    match r {
                        Ok(()) => state.synced = state.synced.max(target),
                        Err(e) => {
                            state.error.get_or_insert(e);
                        }
                    }
                }
            }
        }
    }

    fn mark_dirty(&self, next: u64) {
        let mut s = self.shared.state.lock();
        s.target = next;
        if s.dirty_since.is_none() {
            s.dirty_since = Some(Instant::now());
            self.shared.wake.notify_one();
        }
    }

    /// Asks for a sync now, up to `next`.
    fn request(&self, next: u64) {
        let mut s = self.shared.state.lock();
        s.target = next;
        if !s.urgent {
            s.urgent = true;
            s.dirty_since.get_or_insert_with(Instant::now);
            self.shared.wake.notify_one();
        }
    }

    /// Every record before this position is synced.
    fn synced(&self) -> u64 {
        self.shared.state.lock().synced
    }

    /// The journal synced itself up to `next`.
    fn synced_to(&self, next: u64) {
        let mut s = self.shared.state.lock();
        s.synced = s.synced.max(next);
    }

    fn mark_clean(&self) {
        let mut s = self.shared.state.lock();
        s.dirty_since = None;
        s.urgent = false;
    }

    fn set_file(&self, file: Arc<File>) {
        self.shared.state.lock().file = file;
    }

    fn take_error(&self) -> Option<std::io::Error> {
        self.shared.state.lock().error.take()
    }

    fn stop(mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_commit_timer_syncs_when_appends_stop() {
        let tmp = tempfile::tempdir().unwrap();
        let policy = SyncPolicy::Group {
            records: u64::MAX,
            millis: 5,
        };
        let mut j =
            FileJournal::open_with(tmp.path(), JournalOptions::default().sync(policy)).unwrap();
        let mut b = Batch::new();
        b.push(b"one").unwrap();
        j.append(&b).unwrap();
        let shared = j
            .syncer
            .as_ref()
            .expect("group commit runs a timer")
            .shared
            .clone();
        assert!(
            shared.state.lock().dirty_since.is_some(),
            "the append is not yet synced"
        );
        let start = Instant::now();
        while shared.state.lock().dirty_since.is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the timer never synced"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(shared.state.lock().error.is_none());
    }

    /// Past `records` unsynced records the sync thread syncs at once (the timer here would
    /// wait ten seconds), and `append` did not wait for it.
    #[test]
    fn enough_records_wake_the_sync_thread() {
        let tmp = tempfile::tempdir().unwrap();
        let policy = SyncPolicy::Group {
            records: 8,
            millis: 10_000,
        };
        let mut j =
            FileJournal::open_with(tmp.path(), JournalOptions::default().sync(policy)).unwrap();
        let mut b = Batch::new();
        for k in 0..10u8 {
            b.push(&[k; 20]).unwrap();
        }
        j.append(&b).unwrap();
        let syncer = j.syncer.as_ref().expect("group commit runs a thread");
        assert_eq!(j.unsynced_records, 10, "append left the sync to the thread");
        let start = Instant::now();
        while syncer.synced() < 10 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the thread never synced"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(syncer.shared.state.lock().error.is_none());
    }

    #[test]
    fn only_twenty_digit_names_are_journal_files() {
        let d = Path::new("d");
        assert_eq!(
            numbered(d, "00000000000000000042.seg", ".seg"),
            Ok(Some(42))
        );
        assert_eq!(numbered(d, "00000000000000000042.snap", ".seg"), Ok(None));
        assert_eq!(numbered(d, "notes.txt", ".seg"), Ok(None));
        for bad in [
            "42.seg",
            "0000000000000000004x.seg",
            "99999999999999999999.seg",
        ] {
            assert!(matches!(
                numbered(d, bad, ".seg"),
                Err(JournalError::BadFileName { .. })
            ));
        }
    }
}
