//! API keys: stored as SHA-256 hashes, compared in constant time, each bound to one project.

use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    Ingest,
    Read,
}

/// One configured key hash.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub hash: [u8; 32],
    pub role: KeyRole,
    pub project: String,
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256:<hex>` of a key, the form kept in the configuration.
pub fn key_hash_string(key: &str) -> String {
    format!("sha256:{}", hex::encode(hash_key(key)))
}

pub fn parse_key_hash(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_prefix("sha256:")?;
    if digits.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    hex::decode_to_slice(digits, &mut hash).ok()?;
    Some(hash)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// All keys of all projects.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    entries: Vec<KeyEntry>,
}

impl KeyRing {
    pub fn new(entries: Vec<KeyEntry>) -> Self {
        KeyRing { entries }
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The project a key belongs to in `role`. Every entry is compared (no early exit) so that
    /// timing does not reveal which key matched.
    pub fn project_of(&self, key: &str, role: KeyRole) -> Option<String> {
        let hash = hash_key(key);
        let mut found = None;
        for entry in &self.entries {
            if constant_time_eq(&entry.hash, &hash) && entry.role == role {
                found = Some(entry.project.clone());
            }
        }
        found
    }
}

/// A new random key such as `vt_ingest_<32 hex>`.
pub fn generate_key(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    format!("{prefix}_{}", hex::encode(bytes))
}
