//! Recovery from damaged segments: torn tails, zero fill, bit flips, bad headers.

mod common;

use std::time::{Duration, Instant};

use common::{
    Frames, fast, file_len, flip_bit, frame_offsets, open, payload, replay, segment, truncate,
    write,
};
use valuetrace_wal::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, encode_frame, encode_segment_header,
};

const LENS: [usize; 3] = [10, 20, 30];

fn payloads(lens: &[usize]) -> Vec<Vec<u8>> {
    lens.iter()
        .enumerate()
        .map(|(i, len)| payload(i, *len))
        .collect()
}

fn expected(seqs: &[u64], payloads: &[Vec<u8>]) -> Frames {
    seqs.iter().copied().zip(payloads.iter().cloned()).collect()
}

#[test]
fn torn_tail_is_truncated_at_every_cut_point() {
    let last = frame_offsets(&LENS)[2];
    let cuts = [
        last + 1,
        last + 8,
        last + 15,
        last + 16,
        last + 17,
        last + FRAME_HEADER_LEN + 29,
    ];
    for cut in cuts {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = payloads(&LENS);
        let seqs = write(dir.path(), &written);
        let path = segment(dir.path(), 1);
        truncate(&path, cut as u64);

        let (wal, frames, stats) = open(fast(dir.path()));
        assert_eq!(frames, expected(&seqs[..2], &written[..2]), "cut {cut}");
        assert_eq!(stats.truncated_bytes, (cut - last) as u64, "cut {cut}");
        assert_eq!(stats.corrupt_frames, 0, "cut {cut}");
        assert_eq!(file_len(&path), last as u64, "cut {cut}");
        assert_eq!(
            wal.append(b"next").expect("append"),
            3,
            "seq continues after the replayed frames"
        );
        drop(wal);

        let (frames, stats) = replay(dir.path());
        assert_eq!(frames.len(), 3, "cut {cut}");
        assert_eq!(frames[2], (3, b"next".to_vec()));
        assert_eq!(stats.truncated_bytes, 0, "second open is clean");
    }
}

#[test]
fn zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = payloads(&LENS);
    let seqs = write(dir.path(), &written);
    let path = segment(dir.path(), 1);
    let len = file_len(&path);
    truncate(&path, len + 4096);

    let (frames, stats) = replay(dir.path());
    assert_eq!(frames, expected(&seqs, &written));
    assert_eq!(stats.truncated_bytes, 4096);
    assert_eq!(file_len(&path), len);
}

#[test]
fn zero_fill_in_an_older_segment_ends_that_segment_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = payloads(&LENS);
    let seqs = write(dir.path(), &written);
    let path = segment(dir.path(), 1);
    let len = file_len(&path);
    truncate(&path, len + 512);
    // a later session writes segment 2, so segment 1 is no longer the last one
    std::fs::write(segment(dir.path(), 2), {
        let mut data = encode_segment_header().to_vec();
        data.extend_from_slice(&encode_frame(4, b"later"));
        data
    })
    .expect("write segment 2");

    let (frames, stats) = replay(dir.path());
    let mut want = expected(&seqs, &written);
    want.push((4, b"later".to_vec()));
    assert_eq!(frames, want);
    assert_eq!((stats.corrupt_frames, stats.truncated_bytes), (0, 0));
    assert_eq!(file_len(&path), len + 512, "older segments are left alone");
}

/// Writes five frames into segment 1 and two into segment 2.
fn two_segments(dir: &std::path::Path) -> (Frames, Vec<usize>) {
    let lens = [12, 40, 25, 8, 33];
    let written = payloads(&lens);
    let (wal, _, _) = open(fast(dir));
    let mut frames = Frames::new();
    for p in &written {
        frames.push((wal.append(p).expect("append"), p.clone()));
    }
    wal.rotate().expect("rotate");
    for p in [b"six".to_vec(), b"seven".to_vec()] {
        frames.push((wal.append(&p).expect("append"), p));
    }
    (frames, frame_offsets(&lens))
}

#[test]
fn bit_flip_in_a_middle_frame_skips_only_that_frame() {
    // (byte within frame 3, bit): in the payload, the crc, the seq, and the len
    let spots = [
        (FRAME_HEADER_LEN + 3, 2),
        (5, 7),
        (9, 0),
        (0, 4),
        (3, 7),
        (2, 1),
    ];
    for (byte, bit) in spots {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut frames, offsets) = two_segments(dir.path());
        flip_bit(&segment(dir.path(), 1), offsets[2] + byte, bit);

        let (replayed, stats) = replay(dir.path());
        frames.remove(2);
        assert_eq!(replayed, frames, "byte {byte} bit {bit}");
        assert_eq!(stats.corrupt_frames, 1, "byte {byte} bit {bit}");
        assert_eq!(stats.truncated_bytes, 0);
    }
}

#[test]
fn corrupt_frame_in_the_last_segment_is_skipped_not_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = payloads(&[16, 16, 16, 16]);
    let seqs = write(dir.path(), &written);
    let path = segment(dir.path(), 1);
    let len = file_len(&path);
    flip_bit(&path, frame_offsets(&[16, 16, 16, 16])[1] + 1, 0);

    let (frames, stats) = replay(dir.path());
    assert_eq!(
        frames,
        vec![
            (seqs[0], written[0].clone()),
            (seqs[2], written[2].clone()),
            (seqs[3], written[3].clone())
        ]
    );
    assert_eq!((stats.corrupt_frames, stats.truncated_bytes), (1, 0));
    assert_eq!(file_len(&path), len);
}

#[test]
fn future_version_segment_is_skipped_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let written = payloads(&LENS);
    let seqs = write(dir.path(), &written);
    let mut future = encode_segment_header().to_vec();
    future[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    future.extend_from_slice(b"a frame format from the future, with a torn tail");
    let future_path = segment(dir.path(), 2);
    std::fs::write(&future_path, &future).expect("write future segment");

    for _ in 0..2 {
        let (wal, frames, stats) = open(fast(dir.path()));
        assert_eq!(frames, expected(&seqs, &written));
        assert_eq!(stats.unreadable_segments, 1);
        assert_eq!(stats.truncated_bytes, 0);
        assert!(
            wal.current_segment_id() > 2,
            "new ids never reuse the skipped one"
        );
        assert_eq!(
            std::fs::read(&future_path).expect("read"),
            future,
            "left untouched"
        );
    }
    let (wal, _, _) = open(fast(dir.path()));
    wal.remove_segments_through(u64::MAX).expect("remove");
    assert!(!segment(dir.path(), 1).exists());
    assert_eq!(
        std::fs::read(&future_path).expect("read"),
        future,
        "never removed"
    );
}

#[test]
fn wrong_magic_segment_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(fast(dir.path()));
    wal.append(b"one").expect("append");
    wal.rotate().expect("rotate");
    wal.append(b"two").expect("append");
    wal.rotate().expect("rotate");
    wal.append(b"three").expect("append");
    drop(wal);
    let path = segment(dir.path(), 2);
    let mut data = std::fs::read(&path).expect("read");
    data[..8].copy_from_slice(b"GARBAGE!");
    std::fs::write(&path, &data).expect("write");

    for _ in 0..2 {
        let (frames, stats) = replay(dir.path());
        assert_eq!(frames, vec![(1, b"one".to_vec()), (3, b"three".to_vec())]);
        assert_eq!(stats.unreadable_segments, 1);
        assert_eq!(std::fs::read(&path).expect("read"), data);
    }
}

#[test]
fn reopening_after_corruption_is_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut frames, offsets) = two_segments(dir.path());
    flip_bit(&segment(dir.path(), 1), offsets[1] + 20, 3);
    let last = segment(dir.path(), 2);
    truncate(&last, file_len(&last) - 2);
    frames.remove(6);
    frames.remove(1);

    let (first, stats) = replay(dir.path());
    assert_eq!(first, frames);
    assert_eq!((stats.corrupt_frames, stats.truncated_bytes > 0), (1, true));
    for _ in 0..2 {
        let (again, stats) = replay(dir.path());
        assert_eq!(again, first);
        assert_eq!((stats.corrupt_frames, stats.truncated_bytes), (1, 0));
    }
}

#[test]
fn torn_segment_creation_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seqs = write(dir.path(), &[b"kept".to_vec()]);
    let torn = segment(dir.path(), 2);
    std::fs::write(&torn, &encode_segment_header()[..7]).expect("write torn");

    let (wal, frames, stats) = open(fast(dir.path()));
    assert_eq!(frames, vec![(seqs[0], b"kept".to_vec())]);
    assert_eq!((stats.unreadable_segments, stats.truncated_bytes), (0, 7));
    assert!(!torn.exists());
    assert_eq!(wal.current_segment_id(), 3);
}

#[test]
fn garbage_segment_is_scanned_in_linear_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &[b"before".to_vec()]);
    // 4 MiB of pseudo-random junk between two valid frames
    let mut data = encode_segment_header().to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..(4 << 20) / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.extend_from_slice(&encode_frame(2, b"after"));
    std::fs::write(segment(dir.path(), 2), &data).expect("write");

    let started = Instant::now();
    let (frames, stats) = replay(dir.path());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        frames,
        vec![(1, b"before".to_vec()), (2, b"after".to_vec())]
    );
    assert_eq!(stats.corrupt_frames, 1);
}
