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
    seen: HashMap<u128, i64, BuildHasherDefault<IdentityHasher>>,
    window_ms: i64,
}

pub fn id_key(event_id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(event_id.as_bytes())
}

impl DedupIndex {
    pub fn new(window_ms: i64) -> Self {
        DedupIndex {
            seen: HashMap::default(),
            window_ms,
        }
    }

    pub fn contains(&self, event_id: &str) -> bool {
        self.seen.contains_key(&id_key(event_id))
    }

    /// Records the id; false when it was already present (a duplicate).
    pub fn insert(&mut self, event_id: &str, received_at: i64) -> bool {
        match self.seen.entry(id_key(event_id)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(received_at);
                true
            }
        }
    }

    /// Forgets ids received before `now - window`.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.window_ms;
        self.seen.retain(|_, received_at| *received_at >= horizon);
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
