//! The per-project set of event ids seen within the deduplication window.
//!
//! Keys are 128-bit xxh3 hashes of the event id (a collision among 10^10 ids has probability
//! ~10^-19), so memory does not depend on id length: ~40 bytes per id in the window. The index is
//! rebuilt at start-up from the `event_id` and `received_at` columns of recently persisted files
//! plus the WAL, so duplicates are recognised across restarts.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The keys are already uniform hashes: hashing them again would only cost time.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64 ^ (value >> 64) as u64;
    }
}

#[derive(Debug)]
pub struct DedupIndex {
    /// Sharded by the key's top bits: growing one shard rehashes 1/64 of the ids, so a resize
    /// never stalls ingest for long (a single 10M-entry map stalled it for about a second).
    shards: Vec<HashMap<u128, i64, BuildHasherDefault<IdentityHasher>>>,
    next_prune: usize,
    window_ms: i64,
}

const SHARDS: usize = 64;

pub fn id_key(event_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
}

impl DedupIndex {
    fn shard(&self, key: u128) -> &HashMap<u128, i64, BuildHasherDefault<IdentityHasher>> {
        &self.shards[(key >> 122) as usize]
    }

    fn shard_mut(
        &mut self,
        key: u128,
    ) -> &mut HashMap<u128, i64, BuildHasherDefault<IdentityHasher>> {
        &mut self.shards[(key >> 122) as usize]
    }

    pub fn new(window_ms: i64) -> Self {
        DedupIndex {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
            next_prune: 0,
            window_ms,
        }
    }

    pub fn contains(&self, event_id: &str) -> bool {
        let key = id_key(event_id);
        self.shard(key).contains_key(&key)
    }

    /// Records the id; false when it was already present (a duplicate).
    pub fn insert(&mut self, event_id: &str, received_at: i64) -> bool {
        let key = id_key(event_id);
        match self.shard_mut(key).entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(received_at);
                true
            }
        }
    }

    /// Forgets ids received before `now - window` in the next few shards (a sixteenth of the
    /// index per call, so that the caller's lock is held briefly); every id is forgotten at most
    /// 16 calls after it left the window.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms;
        for _ in 0..SHARDS / 16 {
            let shard = &mut self.shards[self.next_prune % SHARDS];
            shard.retain(|_, received_at| *received_at >= horizon);
            self.next_prune = (self.next_prune + 1) % SHARDS;
        }
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(HashMap::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_remembered_within_the_window_and_forgotten_after_a_full_prune_cycle() {
        let hour = 3_600_000;
        let mut index = DedupIndex::new(24 * hour);
        let ids: Vec<String> = (0..10_000).map(|i| format!("event-{i}")).collect();
        for id in &ids {
            assert!(index.insert(id, 0));
        }
        assert!(!index.insert(&ids[0], 5), "a second insert is a duplicate");
        assert_eq!(index.len(), ids.len());
        index.prune(23 * hour);
        assert_eq!(
            index.len(),
            ids.len(),
            "inside the window nothing is forgotten"
        );
        for _ in 0..16 {
            index.prune(25 * hour);
        }
        assert!(index.is_empty(), "16 prunes cover every shard");
        assert!(
            index.insert(&ids[0], 25 * hour),
            "an id older than the window is new again"
        );
    }
}
