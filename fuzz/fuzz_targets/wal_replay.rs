//! WAL recovery (`Wal::open`) on arbitrary segment files, through the crate's public API only.
//!
//! Input layout: `[control, split, bytes...]`.
//! - `control % 4`: 0 one segment of exactly `bytes` (header usually invalid); 1 one segment of a
//!   valid header then `bytes`; 2 two segments, each a valid header then one part of `bytes`
//!   (cut at `split`/256); 3 like 1, but `bytes` is first turned into a mix of valid frames and
//!   junk (see [`frames_and_junk`]) so that resynchronisation is exercised.
//!
//! Accepted outcomes only: `open` returns `Ok` (and returns at all: libFuzzer's `-timeout`
//! catches loops); replayed seqs strictly increase across segments; every replayed
//! `(seq, payload)` is an intact frame present in the input, byte for byte, with its crc; the
//! stats count what was replayed; a second open replays exactly the same frames; a frame
//! appended after recovery replays after them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use valuetrace_wal::format::{encode_frame, encode_segment_header, segment_file_name};
use valuetrace_wal::{Wal, WalOptions};

fuzz_target!(|data: &[u8]| {
    let [control, split, bytes @ ..] = data else {
        return;
    };
    let header = encode_segment_header();
    let with_header = |part: &[u8]| [&header[..], part].concat();
    let segments: Vec<Vec<u8>> = match control % 4 {
        0 => vec![bytes.to_vec()],
        1 => vec![with_header(bytes)],
        2 => {
            let at = bytes.len() * usize::from(*split) / 256;
            vec![with_header(&bytes[..at]), with_header(&bytes[at..])]
        }
        _ => vec![with_header(&frames_and_junk(bytes))],
    };
    let dir = scratch_dir();
    for (index, segment) in segments.iter().enumerate() {
        let name = segment_file_name(index as u64 + 1);
        std::fs::write(dir.path().join(name), segment).expect("write segment");
    }

    let first = replay(dir.path());
    let mut last = 0;
    for (seq, payload) in &first.frames {
        assert!(*seq > last, "seq {seq} replayed after {last}");
        last = *seq;
        let frame = encode_frame(*seq, payload);
        assert!(
            segments.iter().any(|segment| contains(segment, &frame)),
            "replayed frame {seq} ({} bytes) is not an intact frame of the input",
            payload.len()
        );
    }
    assert_eq!(first.stats.frames, first.frames.len() as u64);

    // Recovery is idempotent (a torn tail was cut, nothing else changes), and appends continue
    // after the highest replayed seq.
    let appended = {
        let (wal, _) = open(dir.path(), &mut |_, _| {});
        wal.append(b"after recovery")
            .expect("append after recovery")
    };
    assert!(appended > last, "appended seq {appended} not after {last}");
    let second = replay(dir.path());
    let mut expected = first.frames.clone();
    expected.push((appended, b"after recovery".to_vec()));
    assert_eq!(second.frames, expected);
    assert_eq!(second.stats.truncated_bytes, 0, "{:?}", second.stats);
});

struct Replayed {
    frames: Vec<(u64, Vec<u8>)>,
    stats: valuetrace_wal::ReplayStats,
}

fn replay(dir: &Path) -> Replayed {
    let mut frames = Vec::new();
    let (_, stats) = open(dir, &mut |seq, payload| {
        frames.push((seq, payload.to_vec()))
    });
    Replayed { frames, stats }
}

fn open(dir: &Path, replay: &mut dyn FnMut(u64, &[u8])) -> (Wal, valuetrace_wal::ReplayStats) {
    let options = WalOptions {
        sync: false,
        ..WalOptions::new(dir)
    };
    Wal::open(options, replay).unwrap_or_else(|error| panic!("open failed: {error}"))
}

/// Interprets `bytes` as a program: `0x00..=0x7f n` writes a valid frame with the next seq (or,
/// for `0x40..`, a seq that jumps back or far ahead) and an `n % 64`-byte payload taken from the
/// input; `0x80..` copies up to 16 bytes of junk.
fn frames_and_junk(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut rest = bytes;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        let take = |n: usize, rest: &mut &[u8]| {
            let (head, tail) = rest.split_at(n.min(rest.len()));
            *rest = tail;
            head.to_vec()
        };
        if *op < 0x80 {
            seq = match op {
                0x40..=0x5f => seq.saturating_sub(u64::from(*arg)),
                0x60..=0x7f => seq.saturating_add(u64::from(*arg) << 36),
                _ => seq.saturating_add(1),
            };
            let payload = take(usize::from(*arg) % 64, &mut rest);
            out.extend_from_slice(&encode_frame(seq, &payload));
        } else {
            out.extend(take(usize::from(*arg) % 17, &mut rest));
        }
    }
    out.extend_from_slice(rest);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A fresh directory, in memory when /dev/shm exists (one per input: thousands per second).
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vt-fuzz-wal")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir")
}
