//! The distinct-user sketch a client ships with each `api_aggregate`: HyperLogLog registers of
//! precision [`PRECISION`] (the store's distinct-users sketch uses the same, so the server merges a
//! client's registers into its rollup cells as they are).
//!
//! A 64-bit hash picks register `hash >> (64 − 12)` and ranks `1 + leading zeros` of the other 52
//! bits (at most [`MAX_RANK`]); a register keeps the highest rank it saw. The client hashes the
//! raw user id itself (`user_hash` in the Rust client, `user_hash` in the Python package); only
//! the registers leave the process: a register is a small number, not an id (docs/events.md,
//! "Distinct users from the client").

/// Register index bits: 2^12 = 4,096 registers, relative standard error 1.04 / √4096 = 1.6%.
pub const PRECISION: u32 = 12;
/// The number of registers.
pub const REGISTERS: usize = 1 << PRECISION;
/// The highest rank a register can hold: 64 − 12 bits, plus one.
pub const MAX_RANK: u8 = (64 - PRECISION + 1) as u8;

/// The register a hash falls in and its rank there.
#[inline]
pub fn register_of(hash: u64) -> (u16, u8) {
    let index = (hash >> (64 - PRECISION)) as u16;
    let rest = (hash << PRECISION) | (1 << (PRECISION - 1));
    (index, rest.leading_zeros() as u8 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_count_leading_zeros_after_the_index_bits() {
        assert_eq!(register_of(u64::MAX), (4095, 1));
        assert_eq!(register_of(0), (0, MAX_RANK));
        assert_eq!(register_of(1 << 51), (0, 1));
        assert_eq!(register_of(1 << 50), (0, 2));
        assert_eq!(register_of(0xABC0_0000_0000_0001), (0xABC, 52));
    }
}
