//! The distinct users of one aggregate key in one flush window, as HyperLogLog registers
//! (precision 12, the store's own: [`valuetrace_model::users`]), shipped in the aggregate's
//! `user_sketch`. Only registers leave the process, never an id or a per-user hash.
//!
//! Record path: [`user_hash`] (the sampling hash of the id's bytes, re-mixed with a seed so that
//! register and sampling decision are independent), then a register max. Up to [`INLINE`]
//! non-empty registers live inline in the aggregate (no allocation); the next distinct register
//! moves them into a dense array of 4,096 bytes, allocated once per key and flush window (as a
//! key's first call copies its strings). Memory per key is thus at most 4 KiB + 128 bytes.

use crate::sampling::{mix, stable_hash_bytes};
use valuetrace_model::users::{REGISTERS, register_of};

/// Non-empty registers kept inline before the dense array.
pub const INLINE: usize = 32;
/// Separates the user hash from the sampling hash of the same id ("users_v1").
const SEED: u64 = 0x7573_6572_735f_7631;

/// The hash a user id enters the sketch with; the Python package computes the same.
#[inline]
pub fn user_hash(user_id: &[u8]) -> u64 {
    mix(stable_hash_bytes(user_id) ^ SEED)
}

/// HyperLogLog registers: sparse inline while few are set, then dense.
#[derive(Debug, Clone, PartialEq)]
pub enum UserSketch {
    /// `(register << 8) | rank` of the set registers, unordered, first `len` entries.
    Inline {
        entries: [u32; INLINE],
        len: u8,
    },
    Dense(Box<[u8; REGISTERS]>),
}

impl Default for UserSketch {
    fn default() -> Self {
        UserSketch::Inline {
            entries: [0; INLINE],
            len: 0,
        }
    }
}

impl UserSketch {
    /// Counts one user by the hash of its id ([`user_hash`]).
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        let (index, rank) = register_of(hash);
        self.observe(index, rank);
    }

    fn observe(&mut self, index: u16, rank: u8) {
        match self {
            UserSketch::Dense(registers) => {
                let register = &mut registers[usize::from(index)];
                *register = (*register).max(rank);
            }
            UserSketch::Inline { entries, len } => {
                let used = &mut entries[..usize::from(*len)];
                if let Some(entry) = used.iter_mut().find(|e| (**e >> 8) as u16 == index) {
                    *entry = (*entry).max(u32::from(index) << 8 | u32::from(rank));
                    return;
                }
                if usize::from(*len) < INLINE {
                    entries[usize::from(*len)] = u32::from(index) << 8 | u32::from(rank);
                    *len += 1;
                    return;
                }
                let mut registers = Box::new([0u8; REGISTERS]);
                for entry in entries.iter() {
                    registers[(entry >> 8) as usize] = *entry as u8;
                }
                registers[usize::from(index)] = registers[usize::from(index)].max(rank);
                *self = UserSketch::Dense(registers);
            }
        }
    }

    /// Adds another sketch's registers (another shard's calls of the same key).
    pub fn merge(&mut self, other: &UserSketch) {
        for (index, rank) in other.registers() {
            self.observe(index, rank);
        }
    }

    /// The set registers as `(register, rank)`, registers ascending: the wire's `user_sketch`.
    pub fn registers(&self) -> Vec<(u16, u8)> {
        let mut out: Vec<(u16, u8)> = match self {
            UserSketch::Inline { entries, len } => entries[..usize::from(*len)]
                .iter()
                .map(|e| ((e >> 8) as u16, *e as u8))
                .collect(),
            UserSketch::Dense(registers) => registers
                .iter()
                .enumerate()
                .filter(|(_, rank)| **rank > 0)
                .map(|(index, rank)| (index as u16, *rank))
                .collect(),
        };
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(ids: impl IntoIterator<Item = String>) -> UserSketch {
        let mut sketch = UserSketch::default();
        for id in ids {
            sketch.insert(user_hash(id.as_bytes()));
        }
        sketch
    }

    /// The same values are pinned in the Python package (`sdk/python/tests/test_users.py`):
    /// both clients must put the same user in the same register.
    #[test]
    fn user_hash_and_registers_are_pinned_across_languages() {
        let hashes: Vec<u64> = ["", "u1", "user-42", "alice@example.com", "日本"]
            .iter()
            .map(|id| user_hash(id.as_bytes()))
            .collect();
        assert_eq!(
            hashes,
            [
                4_050_258_365_532_094_138,
                17_823_158_690_666_160_282,
                17_667_317_780_497_923_817,
                7_219_092_594_553_260_037,
                3_859_317_665_778_449_600,
            ]
        );
        let small = sketch_of((0..5).map(|i| format!("user-{i}")));
        assert_eq!(
            small.registers(),
            vec![(692, 2), (697, 2), (1231, 1), (1408, 2), (2949, 2)]
        );
        let large = sketch_of((0..1000).map(|i| format!("user-{i}")));
        let registers = large.registers();
        let digest = registers.iter().fold(0u64, |h, (index, rank)| {
            mix(h ^ (u64::from(*index) << 8 | u64::from(*rank)))
        });
        assert_eq!((registers.len(), digest), (882, 16_217_573_977_041_251_095));
    }

    #[test]
    fn inline_then_dense_keeps_the_same_registers_and_merges() {
        let ids: Vec<String> = (0..300).map(|i| format!("u{i}")).collect();
        let whole = sketch_of(ids.iter().cloned());
        assert!(matches!(whole, UserSketch::Dense(_)));
        let mut halves = sketch_of(ids[..10].iter().cloned());
        assert!(matches!(halves, UserSketch::Inline { .. }));
        halves.merge(&sketch_of(ids[10..].iter().cloned()));
        assert_eq!(halves.registers(), whole.registers());
        // A repeated user changes nothing.
        let again = sketch_of(ids.iter().chain(&ids).cloned());
        assert_eq!(again.registers(), whole.registers());
    }
}
