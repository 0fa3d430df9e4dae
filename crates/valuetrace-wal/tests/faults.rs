//! Injected write and fsync failures: poisoning, `recover()`, and what is (not) acknowledged.
//!
//! The invariant every test checks at the end: reopening replays every frame whose append
//! returned `Ok` exactly once, with its payload, and (as no real crash happens here) none of the
//! frames whose append returned an error, because a successful `recover()` cut them off.

mod common;

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{Frames, file_len, open, replay, segment};
use valuetrace_wal::format::{
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, encode_frame, parse_segment_file_name,
};
use valuetrace_wal::{Error, WalOptions};

const ENOSPC: i32 = 28;

/// Switchable faults behind a WAL's write and sync hooks.
#[derive(Default)]
struct Faults {
    /// Every write fails with ENOSPC.
    disk_full: AtomicBool,
    /// Every fsync fails with an I/O error.
    sync_fails: AtomicBool,
    /// Every fsync announces itself on `entered` and waits for a verdict on `verdicts`.
    gated: AtomicBool,
    entered: Mutex<Option<Sender<()>>>,
    verdicts: Mutex<Option<Receiver<io::Result<()>>>>,
}

impl Faults {
    fn options(self: &Arc<Self>, dir: &Path) -> WalOptions {
        let mut options = WalOptions::new(dir);
        let faults = Arc::clone(self);
        options.write_hook = Some(Arc::new(move |_bytes| {
            if faults.disk_full.load(Ordering::SeqCst) {
                Err(io::Error::from_raw_os_error(ENOSPC))
            } else {
                Ok(())
            }
        }));
        let faults = Arc::clone(self);
        options.sync_hook = Some(Arc::new(move || {
            if faults.gated.load(Ordering::SeqCst) {
                if let Some(entered) = &*faults.entered.lock().expect("lock") {
                    entered.send(()).expect("test is listening");
                }
                // a verdict that never comes (a broken test or wal) fails the fsync, not hangs
                let verdicts = faults.verdicts.lock().expect("lock");
                return verdicts
                    .as_ref()
                    .expect("gate installed")
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|_| Err(io::Error::other("no verdict")));
            }
            if faults.sync_fails.load(Ordering::SeqCst) {
                Err(io::Error::other("injected EIO"))
            } else {
                Ok(())
            }
        }));
        options
    }

    /// Makes every fsync wait for a verdict; returns (entered, verdicts).
    fn gate(&self) -> (Receiver<()>, Sender<io::Result<()>>) {
        let (entered_tx, entered_rx) = channel();
        let (verdict_tx, verdict_rx) = channel();
        *self.entered.lock().expect("lock") = Some(entered_tx);
        *self.verdicts.lock().expect("lock") = Some(verdict_rx);
        self.gated.store(true, Ordering::SeqCst);
        (entered_rx, verdict_tx)
    }
}

fn is_enospc(error: &Error) -> bool {
    matches!(error, Error::Io { source, .. } if source.raw_os_error() == Some(ENOSPC))
}

fn segment_ids(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .expect("list dir")
        .filter_map(|e| parse_segment_file_name(e.ok()?.file_name().to_str()?))
        .collect();
    ids.sort_unstable();
    ids
}

fn frame_len(payload: &[u8]) -> u64 {
    (FRAME_HEADER_LEN + payload.len()) as u64
}

/// Polls until `done` holds (or panics after 10 s).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn full_disk_poisons_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let (wal, _, _) = open(faults.options(dir.path()));
    let mut acked: Frames = Vec::new();
    for p in [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()] {
        acked.push((wal.append(&p).expect("append"), p));
    }

    faults.disk_full.store(true, Ordering::SeqCst);
    let err = wal.append(b"rejected").expect_err("disk full");
    assert!(is_enospc(&err), "{err:?}");
    assert!(
        matches!(
            err,
            Error::Io {
                op: "append to",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(wal.is_poisoned());
    assert!(matches!(wal.append(b"also rejected"), Err(Error::Poisoned)));
    assert!(matches!(wal.rotate(), Err(Error::Poisoned)));

    // recovery needs a new segment, whose header cannot be written while the disk is full
    for _ in 0..2 {
        let err = wal.recover().expect_err("disk still full");
        assert!(is_enospc(&err), "{err:?}");
        assert!(wal.is_poisoned());
        assert!(matches!(
            wal.append(b"still rejected"),
            Err(Error::Poisoned)
        ));
    }
    assert_eq!(
        segment_ids(dir.path()),
        vec![1],
        "failed segment creations leave no files behind"
    );

    faults.disk_full.store(false, Ordering::SeqCst);
    wal.recover().expect("space is back");
    assert!(!wal.is_poisoned());
    assert_eq!(wal.current_segment_id(), 2);
    // seq 4 went to the rejected frame and is skipped
    for (p, want) in [(b"four".to_vec(), 5), (b"five".to_vec(), 6)] {
        let seq = wal.append(&p).expect("append after recovery");
        assert_eq!(seq, want);
        acked.push((seq, p));
    }
    let stats = wal.stats();
    assert_eq!(stats.write_failures, 3, "one frame and two segment headers");
    assert_eq!((stats.sync_failures, stats.recoveries), (0, 1));
    assert_eq!(stats.frames_appended, 5);
    drop(wal);

    let (frames, stats) = replay(dir.path());
    assert_eq!(frames, acked);
    assert_eq!(
        (
            stats.corrupt_frames,
            stats.truncated_bytes,
            stats.unreadable_segments
        ),
        (0, 0, 0)
    );
}

#[test]
fn partial_write_is_cut_off_by_recover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let (wal, _, _) = open(faults.options(dir.path()));
    let first = wal.append(b"durable").expect("append");
    let durable_len = SEGMENT_HEADER_LEN as u64 + frame_len(b"durable");
    assert_eq!(file_len(&segment(dir.path(), 1)), durable_len);

    faults.disk_full.store(true, Ordering::SeqCst);
    wal.append(b"torn frame").expect_err("disk full");
    // what a real ENOSPC in the middle of the frame leaves behind: a prefix of it
    let torn = &encode_frame(first + 1, b"torn frame")[..20];
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(segment(dir.path(), 1))
            .expect("open segment");
        file.write_all(torn).expect("write torn prefix");
    }
    faults.disk_full.store(false, Ordering::SeqCst);
    wal.recover().expect("recover");
    assert_eq!(file_len(&segment(dir.path(), 1)), durable_len, "cut back");
    let next = wal.append(b"next").expect("append");
    assert!(next > first + 1);
    drop(wal);

    let (frames, stats) = replay(dir.path());
    assert_eq!(
        frames,
        vec![(first, b"durable".to_vec()), (next, b"next".to_vec())]
    );
    assert_eq!((stats.corrupt_frames, stats.truncated_bytes), (0, 0));
}

#[test]
fn failed_fsync_group_is_not_acknowledged_and_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let (wal, _, _) = open(faults.options(dir.path()));
    let wal = Arc::new(wal);
    let mut acked: Frames = Vec::new();
    for p in [b"a".to_vec(), b"b".to_vec()] {
        acked.push((wal.append(&p).expect("append"), p));
    }
    let durable_len = file_len(&segment(dir.path(), 1));

    // one appender fsyncs (held in the hook), two more queue up behind it
    let (entered, verdicts) = faults.gate();
    let spawn = |payload: &'static [u8]| {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(payload))
    };
    let syncer = spawn(b"c");
    entered.recv().expect("fsync started");
    let queued = [spawn(b"d"), spawn(b"e")];
    wait_until("all three frames are written", || {
        wal.stats().frames_appended == 5
    });
    assert!(file_len(&segment(dir.path(), 1)) > durable_len);

    faults.gated.store(false, Ordering::SeqCst);
    verdicts
        .send(Err(io::Error::other("injected EIO")))
        .expect("send");
    let err = syncer.join().expect("thread").expect_err("fsync failed");
    assert!(matches!(err, Error::Io { op: "sync", .. }), "{err:?}");
    for handle in queued {
        let result = handle.join().expect("thread");
        assert!(matches!(result, Err(Error::Poisoned)), "{result:?}");
    }
    assert!(wal.is_poisoned());

    // fsyncs still fail: recovery cannot make its cut durable
    faults.sync_fails.store(true, Ordering::SeqCst);
    assert!(matches!(wal.recover(), Err(Error::Io { op: "sync", .. })));
    assert!(wal.is_poisoned());
    faults.sync_fails.store(false, Ordering::SeqCst);
    wal.recover().expect("recover");
    assert_eq!(
        file_len(&segment(dir.path(), 1)),
        durable_len,
        "c, d, e cut off"
    );
    // c, d and e took seqs 3 to 5
    let seq = wal.append(b"f").expect("append");
    assert_eq!(seq, 6);
    acked.push((seq, b"f".to_vec()));
    let stats = wal.stats();
    assert_eq!(
        (stats.sync_failures, stats.write_failures, stats.recoveries),
        (2, 0, 1)
    );
    drop(wal);

    let (frames, stats) = replay(dir.path());
    assert_eq!(frames, acked);
    assert_eq!((stats.corrupt_frames, stats.truncated_bytes), (0, 0));
}

#[test]
fn fsync_in_flight_decides_for_its_frames_even_after_poisoning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let (wal, _, _) = open(faults.options(dir.path()));
    let wal = Arc::new(wal);
    let (entered, verdicts) = faults.gate();
    let spawn = |payload: &'static [u8]| {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.append(payload))
    };

    // fsync #1 covers seq 1; seqs 2 and 3 queue behind it
    let first = spawn(b"one");
    entered.recv().expect("fsync #1 started");
    let second = spawn(b"two");
    let third = spawn(b"three");
    wait_until("three frames are written", || {
        wal.stats().frames_appended == 3
    });
    verdicts.send(Ok(())).expect("send");
    assert_eq!(first.join().expect("thread").expect("acked"), 1);
    // fsync #2 (run by one of the queued appenders) covers seqs 2 and 3
    entered.recv().expect("fsync #2 started");

    // meanwhile the disk fills up: a write fails and poisons the wal
    faults.disk_full.store(true, Ordering::SeqCst);
    let err = wal.append(b"four").expect_err("disk full");
    assert!(is_enospc(&err));
    assert!(wal.is_poisoned());
    faults.disk_full.store(false, Ordering::SeqCst);

    // recovery must wait for fsync #2: cutting before its result would lose acked frames
    let recovering = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.recover())
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!recovering.is_finished(), "recover waits for the fsync");
    assert!(!second.is_finished() && !third.is_finished());

    faults.gated.store(false, Ordering::SeqCst);
    verdicts.send(Ok(())).expect("send");
    // both frames were covered by the successful fsync: acknowledged, not Poisoned
    let mut seqs = [
        second.join().expect("thread").expect("acked"),
        third.join().expect("thread").expect("acked"),
    ];
    seqs.sort_unstable();
    assert_eq!(seqs, [2, 3]);
    recovering.join().expect("thread").expect("recover");
    assert!(!wal.is_poisoned());
    assert_eq!(wal.append(b"five").expect("append"), 5);
    let stats = wal.stats();
    assert_eq!(stats.fsyncs, 3);
    assert_eq!(stats.frames_per_fsync.count, 3);
    assert_eq!(stats.frames_per_fsync.sum, 4.0, "1 + 2 + 1 frames");
    assert_eq!(stats.frames_per_fsync.counts[1], 1, "one batch of 2");
    drop(wal);

    let (frames, _) = replay(dir.path());
    let seqs: Vec<u64> = frames.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 5]);
    assert_eq!(frames[0].1, b"one");
    assert_eq!(frames[3].1, b"five");
}

#[test]
fn recovery_after_failed_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let mut options = faults.options(dir.path());
    options.segment_max_bytes = 100;
    let (wal, _, _) = open(options);
    let a = wal.append(&[1u8; 40]).expect("append");
    // the next append must rotate; the new segment's header cannot be written
    faults.disk_full.store(true, Ordering::SeqCst);
    let err = wal.append(&[2u8; 40]).expect_err("rotation fails");
    assert!(is_enospc(&err), "{err:?}");
    assert!(wal.is_poisoned());
    assert_eq!(segment_ids(dir.path()), vec![1]);
    faults.disk_full.store(false, Ordering::SeqCst);
    wal.recover().expect("recover");
    let b = wal.append(&[3u8; 40]).expect("append");
    drop(wal);
    let (frames, _) = replay(dir.path());
    assert_eq!(frames, vec![(a, vec![1u8; 40]), (b, vec![3u8; 40])]);
}

#[test]
fn appends_racing_with_faults_and_recovery_ack_exactly_what_survives() {
    const THREADS: usize = 4;
    const FRAMES: usize = 120;
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    let mut options = faults.options(dir.path());
    options.segment_max_bytes = 2048;
    let (wal, _, _) = open(options);
    let wal = Arc::new(wal);
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicU64::new(0));

    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let finished = Arc::clone(&finished);
            thread::spawn(move || {
                let mut acked = Vec::new();
                let mut failed = Vec::new();
                for i in 0..FRAMES {
                    let body = format!("thread {t} frame {i}").into_bytes();
                    match wal.append(&body) {
                        Ok(seq) => acked.push((seq, body)),
                        Err(Error::PayloadTooLarge { .. }) => unreachable!(),
                        Err(_) => {
                            failed.push(body);
                            // like a client retrying later: wait for the recovery (or 1 s)
                            let deadline = Instant::now() + Duration::from_secs(1);
                            while wal.is_poisoned() && Instant::now() < deadline {
                                thread::sleep(Duration::from_micros(200));
                            }
                        }
                    }
                }
                finished.fetch_add(1, Ordering::SeqCst);
                (acked, failed)
            })
        })
        .collect();

    // turns a fault on until it bit (or 200 ms passed), then off again, over and over
    let flipper = {
        let wal = Arc::clone(&wal);
        let faults = Arc::clone(&faults);
        let finished = Arc::clone(&finished);
        thread::spawn(move || {
            let mut round = 0u64;
            while finished.load(Ordering::SeqCst) < THREADS as u64 {
                let flag = if round.is_multiple_of(2) {
                    &faults.disk_full
                } else {
                    &faults.sync_fails
                };
                let before = wal.stats();
                let failures = before.write_failures + before.sync_failures;
                flag.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_millis(200);
                while Instant::now() < deadline {
                    let now = wal.stats();
                    if now.write_failures + now.sync_failures > failures {
                        break;
                    }
                    thread::sleep(Duration::from_micros(200));
                }
                thread::sleep(Duration::from_micros(500 * (round % 4)));
                flag.store(false, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5 + round % 7));
                round += 1;
            }
        })
    };
    let recoverer = {
        let wal = Arc::clone(&wal);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut failed = 0u64;
            while !done.load(Ordering::SeqCst) {
                if wal.recover().is_err() {
                    failed += 1;
                }
                thread::sleep(Duration::from_micros(700));
            }
            failed
        })
    };

    let mut acked: Frames = Vec::new();
    let mut failed: Vec<Vec<u8>> = Vec::new();
    for handle in appenders {
        let (a, f) = handle.join().expect("appender");
        acked.extend(a);
        failed.extend(f);
    }
    flipper.join().expect("flipper");
    done.store(true, Ordering::SeqCst);
    recoverer.join().expect("recoverer");
    faults.disk_full.store(false, Ordering::SeqCst);
    faults.sync_fails.store(false, Ordering::SeqCst);
    wal.recover().expect("final recover");
    let last = b"after the storm".to_vec();
    acked.push((wal.append(&last).expect("append"), last));

    let stats = wal.stats();
    assert!(
        stats.write_failures > 0 && stats.sync_failures > 0,
        "faults were exercised: {stats:?}"
    );
    assert!(stats.recoveries > 0, "{stats:?}");
    assert!(!failed.is_empty());
    // every acknowledged frame was made durable by exactly one successful fsync
    assert_eq!(stats.frames_per_fsync.sum, acked.len() as f64);
    assert_eq!(stats.frames_per_fsync.count, stats.fsyncs);
    assert_eq!(stats.fsync_seconds.count, stats.fsyncs);
    drop(wal);

    acked.sort();
    let unique: HashSet<u64> = acked.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(unique.len(), acked.len(), "seqs are unique");
    let (frames, replay_stats) = replay(dir.path());
    let failed: HashSet<Vec<u8>> = failed.into_iter().collect();
    let resurrected: Vec<&Vec<u8>> = frames
        .iter()
        .map(|(_, p)| p)
        .filter(|p| failed.contains(*p))
        .collect();
    assert!(
        resurrected.is_empty(),
        "frames whose append failed were replayed: {resurrected:?}"
    );
    assert_eq!(frames, acked, "exactly the acknowledged frames, once each");
    assert_eq!(replay_stats.corrupt_frames, 0);
    assert_eq!(replay_stats.truncated_bytes, 0);
}
