//! The WAL's normal operation: appends, reopen, rotation, removal, group commit, poisoning.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::{fast, file_len, open, payload, replay, segment};
use valuetrace_wal::format::MAX_PAYLOAD_LEN;
use valuetrace_wal::{Error, Wal, WalOptions};

#[test]
fn append_reopen_round_trip_and_seq_continues() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, frames, stats) = open(WalOptions::new(dir.path()));
    assert!(frames.is_empty());
    assert_eq!(stats.segments, 0);
    let payloads = [b"first".to_vec(), Vec::new(), payload(3, 1000)];
    let seqs: Vec<u64> = payloads
        .iter()
        .map(|p| wal.append(p).expect("append"))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    drop(wal);

    let (wal, frames, stats) = open(WalOptions::new(dir.path()));
    let expected: Vec<(u64, Vec<u8>)> = seqs.iter().copied().zip(payloads.clone()).collect();
    assert_eq!(frames, expected);
    assert_eq!(
        (stats.segments, stats.frames, stats.corrupt_frames),
        (1, 3, 0)
    );
    assert_eq!(wal.current_segment_id(), 2, "a new segment per open");
    assert_eq!(wal.append(b"fourth").expect("append"), 4);
    drop(wal);

    let (frames, stats) = replay(dir.path());
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3], (4, b"fourth".to_vec()));
    assert_eq!(stats.segments, 2);
    assert_eq!(stats.truncated_bytes, 0);
}

#[test]
fn reopen_never_appends_to_an_old_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(fast(dir.path()));
    wal.append(b"a").expect("append");
    drop(wal);
    let first_len = file_len(&segment(dir.path(), 1));
    let (wal, _, _) = open(fast(dir.path()));
    wal.append(b"b").expect("append");
    drop(wal);
    assert_eq!(file_len(&segment(dir.path(), 1)), first_len);
    assert!(file_len(&segment(dir.path(), 2)) > 16);
}

#[test]
fn rotate_and_remove_segments_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(WalOptions::new(dir.path()));
    wal.append(b"a").expect("append");
    wal.append(b"b").expect("append");
    assert_eq!(wal.rotate().expect("rotate"), 1);
    wal.append(b"c").expect("append");
    assert_eq!(wal.rotate().expect("rotate"), 2);
    wal.append(b"d").expect("append");
    assert_eq!(wal.current_segment_id(), 3);

    wal.remove_segments_through(1).expect("remove");
    assert!(!segment(dir.path(), 1).exists());
    assert!(segment(dir.path(), 2).exists());

    // never removes the current segment, whatever the id
    wal.remove_segments_through(u64::MAX).expect("remove");
    assert!(!segment(dir.path(), 2).exists());
    assert!(segment(dir.path(), 3).exists());
    // removing again is a no-op
    wal.remove_segments_through(2).expect("remove again");
    drop(wal);

    let (wal, frames, _) = open(WalOptions::new(dir.path()));
    assert_eq!(frames, vec![(4, b"d".to_vec())]);
    assert_eq!(wal.append(b"e").expect("append"), 5);
}

#[test]
fn rotate_returns_id_covering_every_acknowledged_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(fast(dir.path()));
    let acked: Vec<u64> = (0..5)
        .map(|i| wal.append(&payload(i, 10)).expect("append"))
        .collect();
    let closed = wal.rotate().expect("rotate");
    wal.append(b"after").expect("append");
    drop(wal);
    // replaying only segments <= closed yields every frame acknowledged before the rotation
    for id in closed + 1..=10 {
        let path = segment(dir.path(), id);
        if path.exists() {
            std::fs::remove_file(path).expect("remove");
        }
    }
    let (frames, _) = replay(dir.path());
    let seqs: Vec<u64> = frames.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, acked);
}

#[test]
fn rotates_automatically_at_segment_max_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = fast(dir.path());
    options.segment_max_bytes = 100;
    let (wal, _, _) = open(options.clone());
    // 16-byte header + 46-byte frames: one frame per segment
    for i in 0..10 {
        wal.append(&payload(i, 30)).expect("append");
    }
    // a frame larger than the limit still fits (alone) in a segment
    wal.append(&payload(10, 500)).expect("append big");
    wal.append(&payload(11, 1)).expect("append small");
    assert_eq!(wal.current_segment_id(), 12);
    drop(wal);
    for id in 1..=10 {
        assert_eq!(file_len(&segment(dir.path(), id)), 16 + 46);
    }
    let (_, frames, stats) = open(options);
    assert_eq!(frames.len(), 12);
    assert!(
        frames
            .iter()
            .enumerate()
            .all(|(i, (seq, _))| *seq == i as u64 + 1)
    );
    assert_eq!(frames[10].1, payload(10, 500));
    assert_eq!(stats.segments, 12);
}

#[test]
fn concurrent_appends_share_fsyncs() {
    const THREADS: usize = 8;
    const FRAMES: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = WalOptions::new(dir.path());
    // make each fsync take a little while so that appenders pile up behind it
    options.sync_hook = Some(Arc::new(|| {
        thread::sleep(Duration::from_micros(200));
        Ok(())
    }));
    options.segment_max_bytes = 64 * 1024;
    let (wal, _, _) = open(options);
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                (0..FRAMES)
                    .map(|i| {
                        let body = format!("thread {t} frame {i}").into_bytes();
                        let seq = wal.append(&body).expect("append");
                        (seq, body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked: Vec<(u64, Vec<u8>)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("appender thread"))
        .collect();
    let stats = wal.stats();
    let total = (THREADS * FRAMES) as u64;
    assert_eq!(stats.frames_appended, total);
    assert!(stats.fsyncs < total, "no group commit: {stats:?}");
    // the histograms see every fsync that made frames durable, and every frame exactly once
    assert_eq!(stats.fsync_seconds.count, stats.fsyncs);
    assert_eq!(stats.frames_per_fsync.count, stats.fsyncs);
    assert_eq!(stats.frames_per_fsync.sum, total as f64);
    assert!(stats.fsync_seconds.sum > 0.0);
    assert!(
        stats.frames_per_fsync.counts[1..].iter().any(|c| *c > 0),
        "some fsync covered more than one frame: {:?}",
        stats.frames_per_fsync
    );
    assert_eq!(
        stats.fsync_seconds.cumulative().last(),
        Some((f64::INFINITY, stats.fsyncs))
    );
    assert_eq!(
        (stats.write_failures, stats.sync_failures, stats.recoveries),
        (0, 0, 0)
    );
    assert!(wal.current_segment_id() > 1, "rotated under load");
    drop(wal);

    acked.sort();
    let unique: HashSet<u64> = acked.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(unique.len(), acked.len());
    let (frames, stats) = replay(dir.path());
    assert_eq!(frames, acked);
    assert_eq!(stats.corrupt_frames, 0);
    // each thread's frames come back in the order that thread appended them
    for t in 0..THREADS {
        let prefix = format!("thread {t} frame ");
        let order: Vec<usize> = frames
            .iter()
            .filter_map(|(_, p)| {
                std::str::from_utf8(p)
                    .ok()?
                    .strip_prefix(&prefix)?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(order, (0..FRAMES).collect::<Vec<_>>());
    }
}

#[test]
fn failed_sync_poisons_and_reopen_recovers_acknowledged_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fail = Arc::new(AtomicBool::new(false));
    let mut options = WalOptions::new(dir.path());
    let flag = Arc::clone(&fail);
    options.sync_hook = Some(Arc::new(move || {
        if flag.load(Ordering::SeqCst) {
            Err(std::io::Error::other("injected"))
        } else {
            Ok(())
        }
    }));
    let (wal, _, _) = open(options);
    let wal = Arc::new(wal);
    assert_eq!(wal.append(b"acked").expect("append"), 1);
    fail.store(true, Ordering::SeqCst);
    assert!(wal.append(b"not acked").is_err());
    fail.store(false, Ordering::SeqCst);

    let handles: Vec<_> = (0..4)
        .map(|_| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || (0..10).all(|_| matches!(wal.append(b"x"), Err(Error::Poisoned))))
        })
        .collect();
    for handle in handles {
        assert!(handle.join().expect("thread"));
    }
    assert!(matches!(wal.rotate(), Err(Error::Poisoned)));
    assert_eq!(wal.stats().frames_appended, 2);
    drop(wal);

    let (frames, _) = replay(dir.path());
    assert_eq!(frames[0], (1, b"acked".to_vec()));
    // the unacknowledged frame reached the page cache, so it may be replayed; nothing else is
    assert!(frames.len() <= 2);
}

#[test]
fn payload_limit_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wal, _, _) = open(fast(dir.path()));
    let err = wal
        .append(&vec![1u8; MAX_PAYLOAD_LEN + 1])
        .expect_err("too large");
    assert!(matches!(err, Error::PayloadTooLarge { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "payload of {} bytes exceeds the maximum of {MAX_PAYLOAD_LEN} bytes",
            MAX_PAYLOAD_LEN + 1
        )
    );
    let max = vec![9u8; MAX_PAYLOAD_LEN];
    assert_eq!(wal.append(&max).expect("max payload fits"), 1);
    drop(wal);
    let (frames, _) = replay(dir.path());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1.len(), MAX_PAYLOAD_LEN);
}

#[test]
fn open_creates_missing_directory_and_ignores_foreign_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a").join("wal");
    let (wal, _, _) = open(fast(&nested));
    wal.append(b"x").expect("append");
    drop(wal);
    std::fs::write(nested.join("notes.txt"), b"hello").expect("write");
    std::fs::write(nested.join("1.wal"), b"not a segment name").expect("write");
    let (frames, stats) = replay(&nested);
    assert_eq!(frames, vec![(1, b"x".to_vec())]);
    assert_eq!(stats.unreadable_segments, 0);
}

#[test]
fn open_is_usable_from_many_threads_behind_arc() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Wal>();
    assert_send_sync::<Error>();
}
