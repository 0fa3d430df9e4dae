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

/// Failure-injection hook, called before every frame write and every segment-header write with
/// the number of bytes about to be written (a whole frame: header and payload). If it returns an
/// error, nothing is written and the write counts as failed with that error; tests return
/// `io::Error::from_raw_os_error(28)` (`ENOSPC`) to simulate a full disk. Meant for tests.
pub type WriteHook = Arc<dyn Fn(usize) -> io::Result<()> + Send + Sync>;

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
    /// Failure injection: called before every frame and segment-header write. Default `None`.
    pub write_hook: Option<WriteHook>,
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
            write_hook: None,
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
            .field("write_hook", &self.write_hook.as_ref().map(|_| "<hook>"))
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

/// Bucket upper bounds of [`WalStats::fsync_seconds`], in seconds (`+Inf` is implied).
pub const FSYNC_SECONDS_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Bucket upper bounds of [`WalStats::frames_per_fsync`] (`+Inf` is implied).
pub const FRAMES_PER_FSYNC_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A fixed-bucket histogram, shaped for rendering as a Prometheus histogram.
///
/// A value lands in the first bucket whose upper bound is `>=` it (Prometheus' `le`), or in the
/// implied `+Inf` bucket after the last bound. `counts` are per bucket, *not* cumulative; use
/// [`Histogram::cumulative`] for the `_bucket` series.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Bucket upper bounds, ascending; the `+Inf` bucket is not listed.
    pub bounds: &'static [f64],
    /// Observations per bucket (non-cumulative); `bounds.len() + 1` entries, the last is `+Inf`.
    pub counts: Vec<u64>,
    /// The sum of all observed values.
    pub sum: f64,
    /// The number of observations (the sum of `counts`).
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with the given ascending bucket upper bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one value. NaN lands in the `+Inf` bucket.
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if self.counts.len() != self.bounds.len() + 1 {
            self.counts.resize(self.bounds.len() + 1, 0);
        }
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `(f64::INFINITY, count)`:
    /// exactly the `le` labels and values of a Prometheus `_bucket` series.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().scan(0u64, |total, count| {
                *total += count;
                Some(*total)
            }))
    }
}

/// Counters of a running [`crate::Wal`], since open.
#[derive(Debug, Clone, PartialEq)]
pub struct WalStats {
    /// Frames appended (written) since open, whether or not they were acknowledged.
    pub frames_appended: u64,
    /// Bytes appended since open, frame headers included.
    pub bytes_appended: u64,
    /// Successful fsyncs that made appended frames durable (group commits and rotations).
    pub fsyncs: u64,
    /// Latency of each of those fsyncs, in seconds ([`FSYNC_SECONDS_BOUNDS`]).
    pub fsync_seconds: Histogram,
    /// Frames made durable by each of those fsyncs: the group-commit batch size
    /// ([`FRAMES_PER_FSYNC_BOUNDS`]).
    pub frames_per_fsync: Histogram,
    /// Failed writes: frames and segment headers (including those of [`crate::Wal::recover`]
    /// attempts and rotations).
    pub write_failures: u64,
    /// Failed fsyncs of segments or of the directory (including those of recovery attempts).
    pub sync_failures: u64,
    /// Successful [`crate::Wal::recover`] calls that cleared a poisoned state.
    pub recoveries: u64,
    /// `corrupt_frames` of the replay at open.
    pub corrupt_frames_at_open: u64,
    /// `unreadable_segments` of the replay at open.
    pub unreadable_segments_at_open: u64,
}

impl Default for WalStats {
    fn default() -> Self {
        WalStats {
            frames_appended: 0,
            bytes_appended: 0,
            fsyncs: 0,
            fsync_seconds: Histogram::new(FSYNC_SECONDS_BOUNDS),
            frames_per_fsync: Histogram::new(FRAMES_PER_FSYNC_BOUNDS),
            write_failures: 0,
            sync_failures: 0,
            recoveries: 0,
            corrupt_frames_at_open: 0,
            unreadable_segments_at_open: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_follow_le_semantics() {
        let mut h = Histogram::new(&[1.0, 2.0, 4.0]);
        for value in [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 4.5, f64::NAN] {
            h.observe(value);
        }
        assert_eq!(h.counts, vec![2, 2, 2, 2]);
        assert_eq!(h.count, 8);
        let cumulative: Vec<(f64, u64)> = h.cumulative().collect();
        assert_eq!(
            cumulative,
            vec![(1.0, 2), (2.0, 4), (4.0, 6), (f64::INFINITY, 8)]
        );
    }

    #[test]
    fn histogram_sum_and_empty_cumulative() {
        let mut h = Histogram::new(FRAMES_PER_FSYNC_BOUNDS);
        assert_eq!(h.counts.len(), FRAMES_PER_FSYNC_BOUNDS.len() + 1);
        assert!(h.cumulative().all(|(_, c)| c == 0));
        h.observe(3.0);
        h.observe(200.0);
        assert_eq!(h.sum, 203.0);
        assert_eq!(h.counts[2], 1, "3 <= 4");
        assert_eq!(h.counts[FRAMES_PER_FSYNC_BOUNDS.len()], 1, "+Inf");
        assert_eq!(h.cumulative().last(), Some((f64::INFINITY, 2)));
    }

    #[test]
    fn default_stats_use_the_documented_bounds() {
        let stats = WalStats::default();
        assert_eq!(stats.fsync_seconds.bounds.len(), 12);
        assert_eq!(stats.fsync_seconds.bounds[0], 0.0005);
        assert_eq!(stats.fsync_seconds.bounds[11], 2.5);
        assert_eq!(stats.frames_per_fsync.bounds, FRAMES_PER_FSYNC_BOUNDS);
        assert!(
            FSYNC_SECONDS_BOUNDS.windows(2).all(|w| w[0] < w[1])
                && FRAMES_PER_FSYNC_BOUNDS.windows(2).all(|w| w[0] < w[1])
        );
    }
}
