//! The journal's errors: what went wrong, in which file, at which byte.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a journal operation failed. Damage is always named by file and byte offset; a
/// refused request changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The operating system refused a file operation.
    #[error("journal I/O failed: {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "write", "sync", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: IoError,
    },
    /// A file in the journal directory ends in `.seg` or `.snap` but is not named by
    /// twenty decimal digits.
    #[error("{}: not a journal file name (twenty digits, then .seg or .snap)", file.display())]
    BadFileName {
        /// The file.
        file: PathBuf,
    },
    /// A segment's header is not a valid header of a supported version.
    #[error("segment {}: bad header at byte 0: {problem}", segment.display())]
    BadHeader {
        /// The segment file.
        segment: PathBuf,
        /// What is wrong with it.
        problem: HeaderProblem,
    },
    /// A segment's header and its file name disagree on its first position.
    #[error("segment {}: its header says it starts at position {header}, its name says {name}", segment.display())]
    NameMismatch {
        /// The segment file.
        segment: PathBuf,
        /// The first position in the header.
        header: u64,
        /// The first position in the name.
        name: u64,
    },
    /// A damaged record before the tail (see the module docs for what the tail is):
    /// recovery stops here rather than skip it.
    #[error(
        "segment {} at byte {offset}: {damage}{}",
        segment.display(),
        match valid_record_at {
            Some(at) => format!(" (and a valid record follows at byte {at}: not a torn tail)"),
            None => String::new(),
        }
    )]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the damaged record's frame in the file.
        offset: u64,
        /// What is wrong with it.
        damage: Damage,
        /// In the last segment, the offset of a valid record found after the damage,
        /// which is why the damage was not cut off as a torn tail.
        valid_record_at: Option<u64>,
    },
    /// Records are missing between two segments, or before the first one, with no
    /// snapshot covering them; or two segments overlap.
    #[error("segment {} starts at position {found}, but the journal before it ends at position {expected}", segment.display())]
    Gap {
        /// The segment that does not follow on.
        segment: PathBuf,
        /// Where it should start.
        expected: u64,
        /// Where it starts.
        found: u64,
    },
    /// The directory holds snapshots but no segment: the segments were removed.
    #[error("{}: snapshots but no segment file; the journal's records are gone", dir.display())]
    NoSegments {
        /// The journal directory.
        dir: PathBuf,
    },
    /// A snapshot file is damaged or of an unsupported version.
    #[error("snapshot {}: {problem}", snapshot.display())]
    BadSnapshot {
        /// The snapshot file.
        snapshot: PathBuf,
        /// What is wrong with it.
        problem: HeaderProblem,
    },
    /// A snapshot on disk claims records the journal does not hold.
    #[error("snapshot {} covers positions up to {covers}, but the journal ends at {next}", snapshot.display())]
    SnapshotBeyondEnd {
        /// The snapshot file.
        snapshot: PathBuf,
        /// The position the snapshot covers up to (exclusive).
        covers: u64,
        /// The journal's next position.
        next: u64,
    },
    /// A snapshot was offered for records not yet appended.
    #[error("a snapshot cannot cover positions up to {covers}: the journal ends at {next}")]
    SnapshotAhead {
        /// The position offered.
        covers: u64,
        /// The journal's next position.
        next: u64,
    },
    /// A snapshot was offered that covers less than the latest one.
    #[error(
        "a snapshot covering positions up to {covers} is older than the latest, which covers up to {latest}"
    )]
    SnapshotBehind {
        /// The position offered.
        covers: u64,
        /// The latest snapshot's position.
        latest: u64,
    },
    /// A read from a position whose records were compacted away: read the latest
    /// snapshot instead.
    #[error("position {requested} was compacted away; the journal starts at {first_available}")]
    Compacted {
        /// The position asked for.
        requested: u64,
        /// The first position still held.
        first_available: u64,
    },
    /// A read from a position not yet written.
    #[error("position {requested} is beyond the journal's end at {next}")]
    BeyondEnd {
        /// The position asked for.
        requested: u64,
        /// The journal's next position.
        next: u64,
    },
    /// A record longer than [`MAX_RECORD_BYTES`](super::MAX_RECORD_BYTES).
    #[error("a record of {len} bytes is longer than the limit of {max} bytes")]
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An earlier write or sync failed, so what the file holds is unknown: the journal
    /// refuses further writes. Reopen it to recover.
    #[error("the journal refuses writes after an earlier failure: {cause}")]
    Failed {
        /// The first failure.
        cause: Box<JournalError>,
    },
}

/// What is wrong with one record frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// Fewer bytes remain than a record frame's 8.
    #[error("a record frame needs 8 bytes, only {available} remain")]
    ShortFrame {
        /// Bytes left in the file.
        available: u64,
    },
    /// The length field is over the record limit.
    #[error("record length {len} is over the limit")]
    TooLong {
        /// The length read.
        len: u64,
    },
    /// The record runs past the end of the file.
    #[error("a record of {len} bytes runs past the end of the file ({available} bytes remain)")]
    Truncated {
        /// The length read.
        len: u64,
        /// Payload bytes left in the file.
        available: u64,
    },
    /// The checksum does not match the length and payload.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum in the frame.
        stored: u32,
        /// The checksum of what is there.
        computed: u32,
    },
}

/// What is wrong with a segment or snapshot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The file is shorter than its header.
    #[error("{len} bytes, shorter than the {need}-byte header")]
    TooShort {
        /// The file's length.
        len: u64,
        /// The header's length.
        need: u64,
    },
    /// The magic bytes are wrong: not a file of this journal.
    #[error("wrong magic bytes {found:02x?}")]
    Magic {
        /// The bytes found.
        found: [u8; 8],
    },
    /// A format version this build does not read.
    #[error("format version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version found.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The header's (or, for a snapshot, the whole file's) checksum does not match.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The checksum stored.
        stored: u32,
        /// The checksum of what is there.
        computed: u32,
    },
    /// A snapshot's payload length disagrees with the file's length.
    #[error("the header declares {declared} payload bytes, the file holds {actual}")]
    Length {
        /// The length in the header.
        declared: u64,
        /// The bytes present.
        actual: u64,
    },
    /// A snapshot's header and file name disagree on the position it covers.
    #[error("the header says it covers up to position {header}, the name says {name}")]
    Name {
        /// The position in the header.
        header: u64,
        /// The position in the name.
        name: u64,
    },
}

/// An operating-system error, shared so that [`JournalError`] can be cloned and compared
/// (by kind and message).
#[derive(Debug, Clone)]
pub struct IoError(Arc<io::Error>);

impl IoError {
    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    /// The underlying error.
    pub fn get_ref(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        IoError(Arc::new(e))
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

/// Wraps an I/O result with what was being done and to which file.
pub(crate) fn io<T>(
    action: &'static str,
    path: &std::path::Path,
    r: io::Result<T>,
) -> Result<T, JournalError> {
    r.map_err(|e| JournalError::Io {
        action,
        path: path.to_path_buf(),
        source: e.into(),
    })
}
