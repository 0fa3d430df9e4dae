//! Configuration and statistics types.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Default size at which the current segment is closed and a new one started: 64 MiB.
pub const DEFAULT_SEGMENT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Failure-injection hook, called before every fsync (file or directory). If it returns an error
/// the fsync counts as failed. Meant for tests.
pub type SyncHook = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// How to open a [`crate::Wal`].
#[derive(Clone)]
pub struct WalOptions {
    /// The directory holding the segment files; created if missing.
    pub dir: PathBuf,
    /// A segment is rotated before an append would grow it past this size (a segment always
    /// takes at least one frame, so a single huge frame can exceed it). Default 64 MiB.
    pub segment_max_bytes: u64,
    /// Whether to fsync. Default `true`; `false` acknowledges frames as soon as they are written
    /// to the OS, which is only acceptable for benchmarks and tests.
    pub sync: bool,
    /// Failure injection: called before every fsync. Default `None`.
    pub sync_hook: Option<SyncHook>,
    /// New frames get a seq of at least this. The log alone cannot remember seqs once every
    /// segment holding frames was removed; a caller that checkpoints by seq should pass its
    /// checkpoint + 1 here so that seqs never go backwards. Default 0 (no floor).
    pub min_next_seq: u64,
}

impl WalOptions {
    /// Default options for a WAL in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalOptions {
            dir: dir.into(),
            segment_max_bytes: DEFAULT_SEGMENT_MAX_BYTES,
            sync: true,
            sync_hook: None,
            min_next_seq: 0,
        }
    }
}

impl fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalOptions")
            .field("dir", &self.dir)
            .field("segment_max_bytes", &self.segment_max_bytes)
            .field("sync", &self.sync)
            .field("sync_hook", &self.sync_hook.as_ref().map(|_| "<hook>"))
            .field("min_next_seq", &self.min_next_seq)
            .finish()
    }
}

/// What [`crate::Wal::open`] found while replaying.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Segments whose header was readable and whose frames were replayed.
    pub segments: u64,
    /// Intact frames handed to the replay callback.
    pub frames: u64,
    /// Corrupt regions skipped (usually one damaged frame each), including unparseable junk at
    /// the end of a segment other than the last one.
    pub corrupt_frames: u64,
    /// Bytes cut off the end of the last segment (torn tail) or removed with an empty, torn
    /// segment file.
    pub truncated_bytes: u64,
    /// Segments skipped because they could not be read or their header was wrong (bad magic,
    /// unsupported version). They are left on disk untouched.
    pub unreadable_segments: u64,
}

/// Counters of a running [`crate::Wal`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Frames appended (written) since open.
    pub frames_appended: u64,
    /// Bytes appended since open, frame headers included.
    pub bytes_appended: u64,
    /// fsyncs that made appended frames durable (group commits and rotations).
    pub fsyncs: u64,
    /// `corrupt_frames` of the replay at open.
    pub corrupt_frames_at_open: u64,
}
