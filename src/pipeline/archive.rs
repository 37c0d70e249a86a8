//! The archive: closed cases moved out of the live state, their histories still readable.
//!
//! With [`EngineBuilder::archive`](super::EngineBuilder::archive), each checkpoint moves
//! the cases that reached a terminal state (closed, rejected, referred) longer ago than
//! the archive's horizon out of the case store into a new archive file, and keeps the
//! command center's counts of them as totals. [`Engine::case`](super::Engine::case) reads
//! an archived case back from its file. Nothing else needs them: a terminal case is in no
//! queue, no timer, no worker's load, the router and the duplicate index know nothing of
//! it, and it never changes again.
//!
//! # File format, version 1
//!
//! `NNNNNNNN.arc` in the archive's directory, the eight digits the file's number: magic
//! `WGARCHIV`, version `u32`; then frames, each a length `u32`, the CRC-32 `u32` of the
//! payload, and the payload: one case as a snapshot writes it (see `checkpoint.rs`). A
//! file is written whole (to a `.tmp`, synced, renamed) before its cases leave the store,
//! and it belongs to the engine's state once a snapshot lists it: recovery deletes the
//! files no snapshot lists (left by a checkpoint that died before its snapshot), whose
//! cases are still in the older snapshot or the journal.

use super::center::{Tally, Totals, chain_of};
use super::checkpoint::{put_case, read_case};
use super::engine::Shared;
use super::wal::{DecodeError, Reader};
use super::{Case, CaseId};
use crate::clock::Timestamp;
use parking_lot::{Mutex, RwLock};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"WGARCHIV";
const VERSION: u32 = 1;
const HEADER: u64 = 12;

/// One archive file and where each of its cases starts.
struct File {
    number: u32,
    file: std::fs::File,
    /// (case id, offset of its frame), by id.
    index: Vec<(u64, u64)>,
}

/// The archive as the engine holds it.
pub(crate) struct Archive {
    dir: Option<PathBuf>,
    /// Terminal for longer than this (ms): archived at the next checkpoint.
    keep_ms: u64,
    files: RwLock<Vec<File>>,
    /// The command center's counts of every archived case. Held while the center reads
    /// the store and while cases move here, so that each case counts once.
    pub(crate) totals: Mutex<Totals>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Why the archive failed.
pub(crate) fn io_error(action: &'static str, path: &Path, e: std::io::Error) -> String {
    format!("archive: {action} {}: {e}", path.display())
}

impl Archive {
    pub(crate) fn new(dir: Option<PathBuf>, keep_ms: u64, units: usize) -> Archive {
        Archive {
            dir,
            keep_ms,
            files: RwLock::new(Vec::new()),
            totals: Mutex::new(Totals::new(units)),
        }
    }

    /// How many cases the archive holds.
    pub(crate) fn len(&self) -> u64 {
        self.files.read().iter().map(|f| f.index.len() as u64).sum()
    }

    /// Whether the archive holds `id`.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.locate(id).is_some()
    }

    fn locate(&self, id: u64) -> Option<(usize, u64)> {
        let files = self.files.read();
        files.iter().enumerate().find_map(|(k, f)| {
            f.index
                .binary_search_by_key(&id, |&(i, _)| i)
                .ok()
                .map(|at| (k, f.index[at].1))
        })
    }

    /// An archived case as [`Engine::case`](super::Engine::case) shows it. `None` if it
    /// is not here, or its frame cannot be read back whole.
    pub(crate) fn case(&self, s: &Shared, id: u64) -> Option<Case> {
        let (k, offset) = self.locate(id)?;
        let files = self.files.read();
        let file = &files.get(k)?.file;
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, offset).ok()?;
        let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
        let mut payload = vec![0u8; len];
        file.read_exact_at(&mut payload, offset + 8).ok()?;
        if crc32fast::hash(&payload) != crc {
            return None;
        }
        let mut r = Reader(&payload);
        let (got, rec) = read_case(s, &mut r, s.city.categories().len() as u32).ok()?;
        (got == id).then(|| rec.view(CaseId(id), &s.texts))
    }
}

/// Moves the cases terminal since before `now` minus the horizon out of the store into a
/// new archive file. Answers how many moved. Nothing moves on an error.
pub(crate) fn archive(s: &Shared, now: Timestamp) -> Result<u64, String> {
    let a = &s.archive;
    let Some(dir) = a.dir.as_ref() else {
        return Ok(0);
    };
    let horizon = now.0.saturating_sub(a.keep_ms);
    let end = s.next_id.load(std::sync::atomic::Ordering::Relaxed);
    let mut buf = Vec::new();
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_le_bytes());
    let mut index = Vec::new();
    let mut frame = Vec::new();
    s.store.scan(end, |id, rec| {
        let done =
            rec.state.is_terminal() && rec.history.last().is_some_and(|t| t.at().0 <= horizon);
        if !done {
            return;
        }
        frame.clear();
        put_case(&mut frame, id, rec, &s.texts);
        index.push((id, buf.len() as u64));
        buf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&frame).to_le_bytes());
        buf.extend_from_slice(&frame);
    });
    if index.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let number = {
        let files = a.files.read();
        let listed = files.iter().map(|f| f.number + 1).max().unwrap_or(0);
        // Past any file on disk too: one a dead checkpoint left is deleted at recovery,
        // but never overwritten before then.
        listed.max(
            on_disk(dir)?
                .into_iter()
                .map(|(n, _)| n + 1)
                .max()
                .unwrap_or(0),
        )
    };
    let path = dir.join(format!("{number:08}.arc"));
    let tmp = dir.join(format!("{number:08}.arc.tmp"));
    std::fs::write(&tmp, &buf).map_err(|e| io_error("write", &tmp, e))?;
    let file = std::fs::File::open(&tmp).map_err(|e| io_error("open", &tmp, e))?;
    file.sync_all().map_err(|e| io_error("sync", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_error("rename", &tmp, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().map_err(|e| io_error("sync", dir, e))?;
    }
    let ids: Vec<u64> = index.iter().map(|&(id, _)| id).collect();
    let mut totals = a.totals.lock();
    let mut chains = vec![None; s.city.grid().len()];
    for &id in &ids {
        if let Some(rec) = s.store.take(id) {
            let chain = chain_of(&s.city, &mut chains, rec.cell());
            totals.add(&s.city, &rec, chain);
        }
    }
    a.files.write().push(File {
        number,
        file,
        index,
    });
    drop(totals);
    Ok(ids.len() as u64)
}

/// The archive files in `dir`, by number.
fn on_disk(dir: &Path) -> Result<Vec<(u32, PathBuf)>, String> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error("read", dir, e)),
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(n) = name.strip_suffix(".arc").and_then(|n| n.parse().ok()) {
            out.push((n, p));
        } else if name.ends_with(".arc.tmp") {
            let _ = std::fs::remove_file(&p);
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the archive's part of a snapshot: the files and the totals.
pub(crate) fn encode(s: &Shared, buf: &mut Vec<u8>) {
    let a = &s.archive;
    // Totals first, then the files: a checkpoint running now adds its file after its
    // cases to the totals, both under the totals' lock.
    let totals = a.totals.lock();
    let files = a.files.read();
    buf.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for f in files.iter() {
        buf.extend_from_slice(&f.number.to_le_bytes());
    }
    let t = &*totals;
    let mut put = |v: u64| buf.extend_from_slice(&v.to_le_bytes());
    put(t.cases);
    t.states.iter().for_each(|&v| put(v));
    for tally in t.platform.iter().chain(&t.district).chain(&t.street) {
        put(tally.total);
        put(tally.open);
    }
    let i = &t.ind;
    for v in [
        i.closed,
        i.open,
        i.closed_on_time,
        i.closed_reworked,
        i.dispatches,
        i.undone_dispatches,
        i.rated,
        i.satisfied,
    ] {
        put(v);
    }
}

/// Reads the archive's part of a snapshot: opens the files it lists (and reads where each
/// case starts), deletes those it does not list, and takes its totals.
pub(crate) fn load(s: &Shared, r: &mut Reader<'_>, end: u64) -> Result<(), DecodeError> {
    let a = &s.archive;
    let n = r.u32()? as usize;
    if n > r.0.len() / 4 {
        return Err(DecodeError("an archive file count"));
    }
    let mut listed = Vec::with_capacity(n);
    for _ in 0..n {
        listed.push(r.u32()?);
    }
    let mut t = Totals::new(s.city.units().len());
    t.cases = r.u64()?;
    for v in t.states.iter_mut() {
        *v = r.u64()?;
    }
    let tally = |r: &mut Reader<'_>| -> Result<Tally, DecodeError> {
        Ok(Tally {
            total: r.u64()?,
            open: r.u64()?,
        })
    };
    for v in t
        .platform
        .iter_mut()
        .chain(t.district.iter_mut())
        .chain(t.street.iter_mut())
    {
        *v = tally(r)?;
    }
    let i = &mut t.ind;
    for v in [
        &mut i.closed,
        &mut i.open,
        &mut i.closed_on_time,
        &mut i.closed_reworked,
        &mut i.dispatches,
        &mut i.undone_dispatches,
        &mut i.rated,
        &mut i.satisfied,
    ] {
        *v = r.u64()?;
    }
    let Some(dir) = a.dir.as_ref() else {
        if listed.is_empty() {
            *a.totals.lock() = t;
            return Ok(());
        }
        return Err(DecodeError(
            "the snapshot lists archive files: build the engine with its archive",
        ));
    };
    let disk = on_disk(dir).map_err(|_| DecodeError("the archive directory cannot be read"))?;
    let mut files = Vec::with_capacity(listed.len());
    for (number, path) in disk {
        if !listed.contains(&number) {
            // A checkpoint died between writing it and its snapshot.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        files.push(open(&path, number, end)?);
    }
    if files.len() != listed.len() {
        return Err(DecodeError("an archive file the snapshot lists is missing"));
    }
    *a.files.write() = files;
    *a.totals.lock() = t;
    Ok(())
}

/// Opens an archive file and reads where each of its cases starts.
fn open(path: &Path, number: u32, end: u64) -> Result<File, DecodeError> {
    let bytes = std::fs::read(path).map_err(|_| DecodeError("an archive file cannot be read"))?;
    let mut r = Reader(&bytes);
    if &r.take::<8>()? != MAGIC || r.u32()? != VERSION {
        return Err(DecodeError("not an archive file of this version"));
    }
    let mut index = Vec::new();
    let mut offset = HEADER;
    while !r.0.is_empty() {
        let len = r.u32()? as usize;
        let _crc = r.u32()?;
        if len < 8 || len > r.0.len() {
            return Err(DecodeError("an archive frame past the end"));
        }
        let id = u64::from_le_bytes(r.take::<8>()?);
        r.0 = &r.0[len - 8..];
        if id >= end || index.last().is_some_and(|&(last, _)| last >= id) {
            return Err(DecodeError("an archived case id out of order"));
        }
        index.push((id, offset));
        offset += 8 + len as u64;
    }
    let file =
        std::fs::File::open(path).map_err(|_| DecodeError("an archive file cannot be opened"))?;
    Ok(File {
        number,
        file,
        index,
    })
}
