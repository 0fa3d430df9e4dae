//! The durable write path: WAL append (group commit) then store append, and periodic persists.
//!
//! ```text
//!   request ─▶ validate + pseudonymize ─▶ dedup pre-check ─▶ WAL.append (fsync, shared) ─▶ store.append ─▶ 200
//!                                                                  ▲ gate (read)          ▲ final dedup
//!   persist: gate (write) { WAL.rotate ; store.begin_persist } ─▶ Parquet files ─▶ WAL.remove_segments_through
//! ```
//!
//! The gate makes "WAL append + store append" atomic with respect to a persist, so the segments a
//! persist deletes hold only rows that are already in its Parquet files.

use crate::error::display_chain;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use valuetrace_store::{AppendOutcome, EmbeddedStore, PersistStats, Store, StoredEvent};
use valuetrace_wal::{Wal, WalOptions};

/// One WAL frame: one project's accepted events of one request.
#[derive(Debug, Serialize, Deserialize)]
struct Frame {
    project: String,
    events: Vec<StoredEvent>,
}

/// The earliest `received_at` in the first readable frame of the oldest WAL segment, minus an
/// hour of margin: every event the WAL will replay was received after it (frames are appended
/// in receive order, give or take concurrent requests). `None` when the WAL is empty.
pub fn oldest_wal_receipt(dir: &std::path::Path) -> Option<i64> {
    use valuetrace_wal::format::{
        SEGMENT_HEADER_LEN, check_segment_header, parse_segment_file_name, valid_frame_at,
    };
    let mut segments: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            Some((
                parse_segment_file_name(entry.file_name().to_str()?)?,
                entry.path(),
            ))
        })
        .collect();
    segments.sort();
    for (_, path) in segments {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if check_segment_header(&data).is_err() {
            continue;
        }
        let Some(frame) = valid_frame_at(&data, SEGMENT_HEADER_LEN) else {
            continue;
        };
        let Ok(frame) = serde_json::from_slice::<Frame>(&data[frame.payload]) else {
            continue;
        };
        if let Some(earliest) = frame.events.iter().map(|event| event.received_at).min() {
            return Some(earliest - 3_600_000);
        }
    }
    None
}

/// Serializes a frame into a buffer sized for it up front (no regrowth copies).
fn frame_bytes(frame: &Frame) -> Result<Vec<u8>, PipelineError> {
    let mut payload = Vec::with_capacity(64 + frame.events.len() * 640);
    serde_json::to_writer(&mut payload, frame)
        .map_err(|error| PipelineError::Store(error.to_string()))?;
    Ok(payload)
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("write-ahead log unavailable: {0}")]
    Wal(String),
    #[error("store error: {0}")]
    Store(String),
}

/// Counters of the write path.
#[derive(Debug, Default)]
pub struct PipelineCounters {
    pub replayed_frames: AtomicU64,
    pub unreadable_frames: AtomicU64,
    pub persists: AtomicU64,
    pub persist_failures: AtomicU64,
}

pub struct Pipeline {
    wal: Wal,
    store: Arc<EmbeddedStore>,
    gate: RwLock<()>,
    /// One persist at a time: a second one could take batches the first is writing.
    persisting: std::sync::Mutex<()>,
    pub counters: PipelineCounters,
    pub replay: valuetrace_wal::ReplayStats,
}

impl Pipeline {
    /// Opens the WAL and replays it into the store (duplicates of persisted rows are dropped by
    /// the store's dedup index).
    pub fn open(store: Arc<EmbeddedStore>, options: WalOptions) -> Result<Pipeline, PipelineError> {
        let counters = PipelineCounters::default();
        let mut replay_error = None;
        let (wal, replay) = Wal::open(options, |_seq, payload| {
            match serde_json::from_slice::<Frame>(payload) {
                Ok(frame) => {
                    counters.replayed_frames.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = store.append(&frame.project, frame.events) {
                        replay_error = Some(display_chain(&error));
                    }
                }
                Err(error) => {
                    counters.unreadable_frames.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "unreadable wal frame skipped");
                }
            }
        })
        .map_err(|error| PipelineError::Wal(display_chain(&error)))?;
        if let Some(error) = replay_error {
            return Err(PipelineError::Store(error));
        }
        Ok(Pipeline {
            wal,
            store,
            gate: RwLock::new(()),
            persisting: std::sync::Mutex::new(()),
            counters,
            replay,
        })
    }

    pub fn store(&self) -> &Arc<EmbeddedStore> {
        &self.store
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Makes `events` durable and visible. Blocking: call from a blocking thread.
    /// When this returns Ok, the events survive a crash.
    pub fn commit(
        &self,
        project: &str,
        events: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, PipelineError> {
        let frame = Frame {
            project: project.to_owned(),
            events,
        };
        let payload = frame_bytes(&frame)?;
        let _gate = self
            .gate
            .read()
            .map_err(|_| PipelineError::Store("ingest gate poisoned".into()))?;
        self.wal
            .append(&payload)
            .map_err(|error| PipelineError::Wal(display_chain(&error)))?;
        self.store
            .append(project, frame.events)
            .map_err(|error| PipelineError::Store(display_chain(&error)))
    }

    /// Writes buffered rows to Parquet and deletes the WAL segments they came from. Blocking.
    pub fn persist(&self, now_ms: i64) -> Result<PersistStats, PipelineError> {
        let _one_at_a_time = self
            .persisting
            .lock()
            .map_err(|_| PipelineError::Store("persist lock poisoned".into()))?;
        let (closed_segment, ticket) = {
            let _gate = self
                .gate
                .write()
                .map_err(|_| PipelineError::Store("ingest gate poisoned".into()))?;
            let closed = self
                .wal
                .rotate()
                .map_err(|error| PipelineError::Wal(display_chain(&error)))?;
            let ticket = self
                .store
                .begin_persist()
                .map_err(|error| PipelineError::Store(display_chain(&error)))?;
            (closed, ticket)
        };
        let result = self
            .store
            .finish_persist(ticket, now_ms)
            .map_err(|error| PipelineError::Store(display_chain(&error)));
        match result {
            Ok(stats) => {
                self.wal
                    .remove_segments_through(closed_segment)
                    .map_err(|error| PipelineError::Wal(display_chain(&error)))?;
                self.counters.persists.fetch_add(1, Ordering::Relaxed);
                Ok(stats)
            }
            Err(error) => {
                self.counters
                    .persist_failures
                    .fetch_add(1, Ordering::Relaxed);
                Err(error)
            }
        }
    }

    /// Whether the pipeline can acknowledge writes.
    pub fn is_ready(&self) -> bool {
        !self.wal.is_poisoned()
    }
}

#[cfg(test)]
mod tests {
    /// Frames are JSON: an event replayed from the WAL must carry the very same numbers as the
    /// live one (serde_json's `float_roundtrip`; its default parser may miss by one ulp).
    #[test]
    fn floats_survive_the_wal_encoding_bit_for_bit() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let value = f64::from_bits(state >> 2) % 1e9;
            if !value.is_finite() {
                continue;
            }
            let text = serde_json::to_string(&value).expect("serialize");
            let back: f64 = serde_json::from_str(&text).expect("parse");
            assert_eq!(
                back.to_bits(),
                value.to_bits(),
                "{value:e} came back as {back:e}"
            );
        }
    }
}
