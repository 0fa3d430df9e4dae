//! The embedded store: Arrow buffers in memory, Parquet files on disk, rollups kept at write time.
//!
//! Write path: the server makes events durable in the WAL, then calls [`Store::append`], which
//! drops duplicates (per-project event-id index), updates the rollups (minute/hour/day cells, see
//! [`rollup`]) and appends the rows as an Arrow batch to the buffer of their (project, table, day)
//! partition. [`EmbeddedStore::begin_persist`] / [`EmbeddedStore::finish_persist`] write buffers
//! to Parquet (sorted by timestamp, atomically renamed); after that the WAL segments that held
//! them may be deleted. Small files of a day are compacted into one.
//!
//! Read path: the query crate reads rollup cells for whole buckets and scans raw rows (buffer and
//! Parquet row groups pruned by timestamp statistics) only for the partial buckets at the edges of
//! a window.
//!
//! Disk layout: `<data_dir>/projects/<project>/<table>/day=YYYY-MM-DD/<seq>.parquet`, plus a
//! `rollups.snapshot` ([`snapshot`]) in quiet `api_calls` days older than the minute retention.
//! Start-up ([`EmbeddedStore::open`]) lists the files, finishes interrupted compactions, loads
//! snapshots that still cover their day's rows, and rebuilds the rest of the rollups and the
//! dedup index from projected Parquet columns; the WAL is replayed after that by the caller.

pub mod aggregate_table;
pub mod call_columns;
pub mod codec;
pub mod dedup;
mod embedded;
pub mod fast_hash;
pub mod interner;
pub mod parquet_io;
pub mod project;
pub mod rollup;
pub mod schema;
pub mod sketch;
pub mod snapshot;
pub mod source_id;

pub use embedded::{EmbeddedStore, PersistStats, PersistTicket, StoreOptions, wall_clock_ms};
pub use project::ProjectData;
pub use schema::Table;
pub use source_id::SourceId;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use valuetrace_model::Event;

/// A validated, pseudonymized event as it is stored, with the server's receive time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event: Event,
    pub received_at: i64,
    /// Correction applied to the client's timestamp, ms.
    pub skew_ms: i64,
}

/// How many events of an append were stored and how many were already known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    pub stored: usize,
    pub duplicates: usize,
}

/// The write side every backend implements (embedded now, ClickHouse later).
pub trait Store: Send + Sync {
    /// Adds events that the caller has already made durable (WAL). Events whose `event_id` the
    /// project already holds within the dedup window are skipped and counted as duplicates.
    fn append(&self, project: &str, events: Vec<StoredEvent>) -> Result<AppendOutcome>;

    /// Whether the project holds this event id (within the dedup window).
    fn contains(&self, project: &str, event_id: &str) -> bool;

    /// [`contains`](Store::contains) for many ids at once (one lock instead of one per id).
    fn contains_any<'a>(&self, project: &str, event_ids: impl Iterator<Item = &'a str>) -> Vec<bool>
    where
        Self: Sized,
    {
        event_ids.map(|id| self.contains(project, id)).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow error")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
