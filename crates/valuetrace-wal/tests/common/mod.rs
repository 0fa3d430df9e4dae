//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use valuetrace_wal::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, segment_file_name};
use valuetrace_wal::{ReplayStats, Wal, WalOptions};

pub type Frames = Vec<(u64, Vec<u8>)>;

/// Options without fsync, for tests that do not exercise durability.
pub fn fast(dir: &Path) -> WalOptions {
    let mut options = WalOptions::new(dir);
    options.sync = false;
    options
}

/// Opens the WAL, collecting every replayed frame.
pub fn open(options: WalOptions) -> (Wal, Frames, ReplayStats) {
    let mut frames = Vec::new();
    let (wal, stats) =
        Wal::open(options, |seq, payload| frames.push((seq, payload.to_vec()))).expect("open wal");
    (wal, frames, stats)
}

/// Opens, replays and closes the WAL.
pub fn replay(dir: &Path) -> (Frames, ReplayStats) {
    let (_wal, frames, stats) = open(fast(dir));
    (frames, stats)
}

/// The path of segment `id`.
pub fn segment(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

/// Offsets of frames with the given payload lengths in a freshly written segment.
pub fn frame_offsets(lens: &[usize]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    for len in lens {
        offsets.push(at);
        at += FRAME_HEADER_LEN + len;
    }
    offsets
}

/// Distinct payload number `i` of length `len`.
pub fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

/// Writes one WAL session appending `payloads` (all into segment 1 of a fresh dir).
pub fn write(dir: &Path, payloads: &[Vec<u8>]) -> Vec<u64> {
    let (wal, _, _) = open(fast(dir));
    payloads
        .iter()
        .map(|p| wal.append(p).expect("append"))
        .collect()
}

pub fn flip_bit(path: &Path, byte: usize, bit: u8) {
    let mut data = std::fs::read(path).expect("read segment");
    data[byte] ^= 1 << bit;
    std::fs::write(path, data).expect("write segment");
}

pub fn truncate(path: &Path, len: u64) {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    file.set_len(len).expect("truncate segment");
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat segment").len()
}
