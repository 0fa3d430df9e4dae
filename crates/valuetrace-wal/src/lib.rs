//! The valuetrace write-ahead log: durable, ordered storage of opaque byte payloads.
//!
//! The server appends one ingest batch per frame and acknowledges the batch to the client only
//! after [`Wal::append`] returned, i.e. after the frame was fsynced. On start the server replays
//! the log ([`Wal::open`]) into the store, and once the store has persisted everything up to a
//! segment it drops that prefix with [`Wal::remove_segments_through`].
//!
//! # On-disk format
//!
//! A WAL is a directory of segment files named `{id:020}.wal` (`00000000000000000001.wal`, ...);
//! ids start at 1 and only grow. Each segment is a 16-byte header followed by frames:
//!
//! ```text
//!  segment file
//!  +------------------------+---------------+---------------+
//!  | magic "VTWAL\0\0\0"    | version u32LE | reserved u32  |   16-byte segment header
//!  | 8 bytes                | = 1           | = 0           |
//!  +------------------------+---------------+---------------+
//!  | frame | frame | frame | ...                            |
//!  +--------------------------------------------------------+
//!
//!  frame (16-byte header, then the payload)
//!  +------------+------------+------------+------------------------+
//!  | len u32LE  | crc u32LE  | seq u64LE  | payload (len bytes)    |
//!  +------------+------------+------------+------------------------+
//!  crc = crc32c(seq.to_le_bytes() ++ payload); len <= 64 MiB
//! ```
//!
//! `seq` is a global frame sequence number: it grows by one per appended frame, across segments
//! and across restarts (it continues after the highest replayed seq). Frames whose append failed
//! keep their seq, so [`Wal::recover`] leaves a gap where it cut them off.
//!
//! # How it works
//!
//! - `wal.rs`: the [`Wal`] handle. Appends write under a mutex and then group-commit: one thread
//!   fsyncs while the others queue their frames and wait on a condvar; the next fsync covers all
//!   of them. Any failed write or fsync poisons the log, so nothing is ever acknowledged after a
//!   failed sync, until [`Wal::recover`] repairs it (see below).
//! - `replay.rs` (run by [`Wal::open`]): recovery reads every segment in id order, truncates a torn
//!   tail in the last segment, skips (and counts) corrupt frames by their length or by scanning
//!   forward for the next frame that validates, and skips segments whose header it cannot read.
//! - [`format`](mod@format): the byte layout above, shared by the writer, the reader and tests.
//!
//! # Failures and recovery
//!
//! A failed frame write (e.g. `ENOSPC`), fsync or segment creation poisons the WAL: that append
//! gets the I/O error; appends waiting for the failed group, and every later append, get
//! [`Error::Poisoned`] (an append still covered by an fsync in flight waits for that fsync's
//! verdict). The server answers 503 meanwhile and calls [`Wal::recover`] periodically:
//!
//! 1. it waits until no fsync is in flight and no appender still waits for one, so every
//!    appender has its final answer;
//! 2. it truncates the current segment to the length covered by the last *successful* fsync and
//!    fsyncs it. Everything after that offset belongs to appends that returned an error;
//! 3. it starts a new segment (header written, file and directory fsynced);
//! 4. only then it clears the poison. Any failure leaves the WAL poisoned and returns the error;
//!    the next call retries (e.g. when the disk has space again).
//!
//! Why truncate and move on rather than retry the fsync: after a failed fsync, Linux may have
//! dropped the dirty pages (or marked them clean) and a later fsync of the same file can report
//! success without them ever reaching the disk ("fsyncgate"). So data written after the last
//! successful fsync is never trusted, and no new frame is written next to pages in that unknown
//! state. Acknowledged frames are safe: a successful fsync covered them before their append
//! returned.
//!
//! Guarantees: with `sync` on, an append returns `Ok` only after an fsync that began after its
//! frame was written succeeded; after a successful `recover()` the log holds no frame whose append failed; seqs
//! keep growing, the seqs of cut-off frames are skipped (never reused by the running WAL), so
//! even a frame resurrected by a crash before the truncation was durable cannot shadow a later
//! acknowledged frame at replay. A panic inside the WAL's critical sections (only possible from
//! an injected hook) poisons it for good; reopen it then.
//!
//! Failure injection for tests: [`WalOptions::write_hook`] (fail frame and segment-header
//! writes, e.g. with `ENOSPC`) and [`WalOptions::sync_hook`] (fail fsyncs).
//!
//! # Metrics
//!
//! [`Wal::stats`] returns [`WalStats`]: frame, byte and fsync counters, the fsync latency and
//! group-commit batch-size [`Histogram`]s (ready for Prometheus via [`Histogram::cumulative`]),
//! write and sync failures, successful recoveries, and what the replay at open found (corrupt
//! frames, unreadable segments).
//!
//! # Goals
//!
//! - An acknowledged frame survives a process or machine crash (given honest fsync).
//! - Recovery never panics, never loops, and never refuses to open because of damaged data; it
//!   reports what it skipped in [`ReplayStats`].
//! - Concurrent appenders share fsyncs, so throughput scales with the number of writers.
//!
//! # Non-goals
//!
//! - Repairing corrupt frames: their payloads are lost (counted and logged).
//! - Random access or iteration while open; the log is only read once, at open.
//! - Compression, encryption or interpretation of payloads.
//! - Multi-process access: one [`Wal`] per directory.
//! - Exactly-once delivery of unacknowledged frames: a frame whose append failed may still be
//!   replayed if it reached the disk and the process died before a successful [`Wal::recover`].
//! - Retrying a failed append inside the WAL: the caller gets the error (and retries, if at all,
//!   after `recover()`).

mod error;
mod fsio;
mod options;
mod replay;
mod wal;

pub mod format;

pub use error::{Error, Result};
pub use options::{
    DEFAULT_SEGMENT_MAX_BYTES, FRAMES_PER_FSYNC_BOUNDS, FSYNC_SECONDS_BOUNDS, Histogram,
    ReplayStats, SyncHook, WalOptions, WalStats, WriteHook,
};
pub use wal::Wal;
