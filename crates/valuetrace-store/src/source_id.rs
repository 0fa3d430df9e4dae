//! Ids of the sources a scan reads (buffered batches and Parquet files), handed out by the store
//! and never reused within a process.
//!
//! Readers that cache something derived from a source (the fact cache) key it by this id. An id
//! outlives nothing it names: when a batch is persisted and dropped, or a file is compacted away,
//! its id is simply never seen again, so a new source can never be answered with an old one's
//! rows (a heap address or a file path can come back; this counter cannot).

use std::sync::atomic::{AtomicU64, Ordering};

/// The id of one immutable source of rows: a buffered Arrow batch or an opened Parquet file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(u64);

static NEXT: AtomicU64 = AtomicU64::new(1);

impl SourceId {
    /// A fresh id, distinct from every id handed out before in this process.
    pub fn fresh() -> SourceId {
        SourceId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::SourceId;

    #[test]
    fn ids_are_never_handed_out_twice() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| SourceId::fresh()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
