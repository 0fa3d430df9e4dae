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
//! and across restarts (it continues after the highest replayed seq).
//!
//! # How it works
//!
//! - `wal.rs`: the [`Wal`] handle. Appends write under a mutex and then group-commit: one thread
//!   fsyncs while the others queue their frames and wait on a condvar; the next fsync covers all
//!   of them. Any failed write or fsync poisons the log for good, so nothing is ever acknowledged
//!   after a failed sync.
//! - `replay.rs` (run by [`Wal::open`]): recovery reads every segment in id order, truncates a torn
//!   tail in the last segment, skips (and counts) corrupt frames by their length or by scanning
//!   forward for the next frame that validates, and skips segments whose header it cannot read.
//! - [`format`](mod@format): the byte layout above, shared by the writer, the reader and tests.
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
//!   replayed if it reached the disk.

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
