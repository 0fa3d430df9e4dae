//! Model-based test: random appends, rotations, crashes, bit flips, torn tails, zero fill,
//! future-version headers, and injected write/fsync failures followed by `recover()`.
//!
//! Invariants checked at every open: every acknowledged frame that no corruption touched is
//! replayed exactly once, in order, with its payload; nothing else is replayed except frames
//! that were acknowledged or whose append failed after the frame was written (and only if no
//! `recover()` cut them off since); open never fails or panics; and the replay stats count what
//! was damaged (`unreadable_segments` exactly, `corrupt_frames` at most one per damage event,
//! both zero on an undamaged log).
//!
//! Invariants checked while running: appends get the predicted seq (failed appends consume
//! theirs), a poisoned WAL refuses appends and rotations, `recover()` fails while the fault
//! persists and, once it succeeds, has cut the current segment back to its last acknowledged
//! frame; the failure and recovery counters match.

mod common;

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Frames, fast, file_len, flip_bit, open, segment, truncate};
use proptest::prelude::*;
use proptest::sample::Index;
use valuetrace_wal::format::{
    FORMAT_VERSION, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, encode_frame, encode_segment_header,
    is_torn_segment_creation, parse_segment_file_name, raw_frame_header_at,
};
use valuetrace_wal::{Error, Wal, WalOptions};

const SEGMENT_MAX_BYTES: u64 = 400;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Rotate,
    Crash,
    FlipBit {
        segment: Index,
        byte: Index,
        bit: u8,
    },
    TruncateTail(u64),
    /// Zero the last `bytes` bytes of a segment.
    ZeroTail {
        segment: Index,
        bytes: u64,
    },
    /// Overwrite a segment header's version with a future one.
    FutureHeader {
        segment: Index,
    },
    /// The disk is full: the next write fails (and the WAL may leave a prefix of the frame).
    FailWrite {
        torn: Option<Index>,
    },
    /// fsyncs fail from now on (a write failure when the WAL does not fsync).
    FailSync,
    /// `recover()`; with `heal` the fault is cleared first, otherwise it must fail if one is on.
    Recover {
        heal: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        16 => prop::collection::vec(any::<u8>(), 0..120).prop_map(Op::Append),
        2 => Just(Op::Rotate),
        4 => Just(Op::Crash),
        4 => (any::<Index>(), any::<Index>(), 0u8..8)
            .prop_map(|(segment, byte, bit)| Op::FlipBit { segment, byte, bit }),
        2 => (1u64..80).prop_map(Op::TruncateTail),
        2 => (any::<Index>(), 1u64..200).prop_map(|(segment, bytes)| Op::ZeroTail { segment, bytes }),
        1 => any::<Index>().prop_map(|segment| Op::FutureHeader { segment }),
        2 => prop::option::of(any::<Index>()).prop_map(|torn| Op::FailWrite { torn }),
        2 => Just(Op::FailSync),
        3 => any::<bool>().prop_map(|heal| Op::Recover { heal }),
    ]
}

/// One frame written to disk and where it lives.
#[derive(Debug)]
struct Entry {
    seq: u64,
    payload: Vec<u8>,
    segment: u64,
    start: u64,
    end: u64,
    damaged: bool,
    /// The append returned `Ok`. An unacknowledged frame (fsync failed) may be replayed until a
    /// `recover()` cuts it off; once a replay showed it, it is on disk like any other.
    acked: bool,
}

#[derive(Default)]
struct Faults {
    disk_full: AtomicBool,
    sync_fails: AtomicBool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counters {
    write_failures: u64,
    sync_failures: u64,
    recoveries: u64,
}

struct Harness {
    dir: tempfile::TempDir,
    sync: bool,
    faults: Arc<Faults>,
    wal: Option<Wal>,
    model: Vec<Entry>,
    flipped: HashSet<(u64, u64, u8)>,
    /// Segments whose header was overwritten with a future version: flips there are skipped, as
    /// they could make the header valid again after its seqs were reused.
    future: HashSet<u64>,
    unique: u32,
    /// The seq the next successful append must get.
    next_seq: u64,
    poisoned: bool,
    /// Counters the open WAL must report.
    counters: Counters,
    /// Flips, zero fills, truncations and header overwrites so far.
    damage_events: u64,
}

impl Harness {
    fn new(sync: bool) -> Self {
        Harness {
            dir: tempfile::tempdir().expect("tempdir"),
            sync,
            faults: Arc::new(Faults::default()),
            wal: None,
            model: Vec::new(),
            flipped: HashSet::new(),
            future: HashSet::new(),
            unique: 0,
            next_seq: 1,
            poisoned: false,
            counters: Counters::default(),
            damage_events: 0,
        }
    }

    fn options(&self) -> WalOptions {
        let mut options = fast(self.dir.path());
        options.sync = self.sync;
        options.segment_max_bytes = SEGMENT_MAX_BYTES;
        let faults = Arc::clone(&self.faults);
        options.write_hook = Some(Arc::new(move |_| {
            if faults.disk_full.load(Ordering::SeqCst) {
                Err(io::Error::from_raw_os_error(28))
            } else {
                Ok(())
            }
        }));
        let faults = Arc::clone(&self.faults);
        options.sync_hook = Some(Arc::new(move || {
            if faults.sync_fails.load(Ordering::SeqCst) {
                Err(io::Error::other("injected EIO"))
            } else {
                Ok(())
            }
        }));
        options
    }

    fn wal(&mut self) -> Result<&Wal, TestCaseError> {
        if self.wal.is_none() {
            self.reopen()?;
        }
        Ok(self.wal.as_ref().expect("opened above"))
    }

    /// Drops the WAL handle without any shutdown, as a crash would. A restarted process has a
    /// working disk again and fresh counters.
    fn crash(&mut self) {
        self.wal = None;
        self.faults.disk_full.store(false, Ordering::SeqCst);
        self.faults.sync_fails.store(false, Ordering::SeqCst);
        self.poisoned = false;
        self.counters = Counters::default();
    }

    /// Opens the WAL (after a crash if a handle is open) and checks the invariants.
    fn reopen(&mut self) -> Result<(), TestCaseError> {
        self.crash();
        let unreadable = expected_unreadable(self.dir.path());
        let (wal, replayed, stats) = open(self.options());
        prop_assert_eq!(stats.frames, replayed.len() as u64);
        let seen = check(&self.model, &replayed)?;
        // unacknowledged frames that were replayed are now part of the log; the others are gone
        let mut index = 0;
        self.model.retain_mut(|entry| {
            let keep = entry.acked || seen.contains(&index);
            entry.acked = true;
            index += 1;
            keep
        });
        prop_assert_eq!(stats.unreadable_segments, unreadable);
        prop_assert!(
            stats.corrupt_frames <= self.damage_events,
            "{} corrupt frames from {} damage events",
            stats.corrupt_frames,
            self.damage_events
        );
        if self.damage_events == 0 {
            prop_assert_eq!(stats.corrupt_frames, 0);
        }
        let wal_stats = wal.stats();
        prop_assert_eq!(wal_stats.corrupt_frames_at_open, stats.corrupt_frames);
        prop_assert_eq!(wal_stats.unreadable_segments_at_open, unreadable);
        self.next_seq = replayed.last().map_or(1, |(seq, _)| seq + 1);
        self.wal = Some(wal);
        Ok(())
    }

    fn next_payload(&mut self, body: &[u8]) -> Vec<u8> {
        // a unique prefix makes every payload distinct, even when a seq is reused after loss
        self.unique += 1;
        let mut payload = self.unique.to_le_bytes().to_vec();
        payload.extend_from_slice(body);
        payload
    }

    fn current_segment(&mut self) -> Result<(u64, u64), TestCaseError> {
        let id = self.wal()?.current_segment_id();
        Ok((id, file_len(&segment(self.dir.path(), id))))
    }

    /// Whether an append of `payload` rotates first.
    fn rotates(&mut self, payload: &[u8]) -> Result<bool, TestCaseError> {
        let (_, len) = self.current_segment()?;
        let frame = (FRAME_HEADER_LEN + payload.len()) as u64;
        Ok(len > SEGMENT_HEADER_LEN as u64 && len + frame > SEGMENT_MAX_BYTES)
    }

    fn append(&mut self, body: &[u8]) -> Result<(), TestCaseError> {
        // open first: a reopen updates the model
        self.wal()?;
        let payload = self.next_payload(body);
        if self.poisoned {
            let result = self.wal()?.append(&payload);
            prop_assert!(matches!(result, Err(Error::Poisoned)), "{:?}", result);
            return self.check_counters();
        }
        let replayable_max = self
            .model
            .iter()
            .filter(|e| !e.damaged)
            .map(|e| e.seq)
            .max()
            .unwrap_or(0);
        let wal = self.wal()?;
        let seq = wal.append(&payload).expect("append");
        let id = wal.current_segment_id();
        let end = file_len(&segment(self.dir.path(), id));
        let start = end - (FRAME_HEADER_LEN + payload.len()) as u64;
        prop_assert!(
            seq > replayable_max,
            "seq {} reuses an intact frame's seq",
            seq
        );
        prop_assert_eq!(seq, self.next_seq);
        self.next_seq += 1;
        self.model.push(Entry {
            seq,
            payload,
            segment: id,
            start,
            end,
            damaged: false,
            acked: true,
        });
        self.check_counters()
    }

    fn fail_write(&mut self, torn: Option<&Index>) -> Result<(), TestCaseError> {
        if self.poisoned {
            return self.append(b"while poisoned");
        }
        let payload = self.next_payload(b"disk full");
        let rotates = self.rotates(&payload)?;
        let (id, len) = self.current_segment()?;
        self.faults.disk_full.store(true, Ordering::SeqCst);
        let err = self.wal()?.append(&payload).expect_err("disk full");
        prop_assert!(
            matches!(&err, Error::Io { source, .. } if source.raw_os_error() == Some(28)),
            "{:?}",
            err
        );
        self.poisoned = true;
        self.counters.write_failures += 1;
        if rotates {
            // the new segment's header could not be written; no seq was taken
            prop_assert!(
                matches!(
                    err,
                    Error::Io {
                        op: "write segment header",
                        ..
                    }
                ),
                "{:?}",
                err
            );
            prop_assert_eq!(self.current_segment()?, (id, len));
        } else {
            prop_assert!(
                matches!(
                    err,
                    Error::Io {
                        op: "append to",
                        ..
                    }
                ),
                "{:?}",
                err
            );
            prop_assert_eq!(file_len(&segment(self.dir.path(), id)), len);
            if let Some(torn) = torn {
                // what a real ENOSPC in the middle of the frame leaves behind
                let frame = encode_frame(self.next_seq, &payload);
                let cut = torn.index(frame.len() - 1) + 1;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(segment(self.dir.path(), id))
                    .expect("open segment");
                file.write_all(&frame[..cut]).expect("write torn frame");
            }
            self.next_seq += 1;
        }
        prop_assert!(self.wal()?.is_poisoned());
        self.check_counters()
    }

    fn fail_sync(&mut self) -> Result<(), TestCaseError> {
        if !self.sync {
            return self.fail_write(None);
        }
        if self.poisoned {
            return self.append(b"while poisoned");
        }
        let payload = self.next_payload(b"sync fails");
        let rotates = self.rotates(&payload)?;
        let (id, len) = self.current_segment()?;
        self.faults.sync_fails.store(true, Ordering::SeqCst);
        let err = self.wal()?.append(&payload).expect_err("sync fails");
        prop_assert!(matches!(err, Error::Io { op: "sync", .. }), "{:?}", err);
        self.poisoned = true;
        self.counters.sync_failures += 1;
        if rotates {
            // the new segment could not be made durable (and was removed); no seq was taken
            prop_assert_eq!(self.current_segment()?, (id, len));
        } else {
            // the frame was written but is not acknowledged
            let end = file_len(&segment(self.dir.path(), id));
            prop_assert_eq!(end, len + (FRAME_HEADER_LEN + payload.len()) as u64);
            let data = std::fs::read(segment(self.dir.path(), id)).expect("read segment");
            let header = raw_frame_header_at(&data, len as usize).expect("frame header");
            prop_assert_eq!(header.seq, self.next_seq);
            self.model.push(Entry {
                seq: self.next_seq,
                payload,
                segment: id,
                start: len,
                end,
                damaged: false,
                acked: false,
            });
            self.next_seq += 1;
        }
        self.check_counters()
    }

    fn recover(&mut self, heal: bool) -> Result<(), TestCaseError> {
        let faulty = self.faults.disk_full.load(Ordering::SeqCst)
            || self.faults.sync_fails.load(Ordering::SeqCst);
        if self.poisoned && faulty && !heal {
            let full = self.faults.disk_full.load(Ordering::SeqCst);
            let wal = self.wal()?;
            let id = wal.current_segment_id();
            let err = wal.recover().expect_err("the fault persists");
            prop_assert!(wal.is_poisoned());
            prop_assert_eq!(wal.current_segment_id(), id);
            if full {
                prop_assert!(
                    matches!(
                        err,
                        Error::Io {
                            op: "write segment header",
                            ..
                        }
                    ),
                    "{:?}",
                    err
                );
                self.counters.write_failures += 1;
            } else {
                prop_assert!(matches!(err, Error::Io { op: "sync", .. }), "{:?}", err);
                self.counters.sync_failures += 1;
            }
            return self.check_counters();
        }
        self.faults.disk_full.store(false, Ordering::SeqCst);
        self.faults.sync_fails.store(false, Ordering::SeqCst);
        let wal = self.wal()?;
        let id = wal.current_segment_id();
        wal.recover().expect("recover");
        prop_assert!(!wal.is_poisoned());
        let new_id = wal.current_segment_id();
        if self.poisoned {
            self.poisoned = false;
            self.counters.recoveries += 1;
            prop_assert_eq!(new_id, id + 1, "a fresh segment");
            // cut back to the last acknowledged frame: unacknowledged frames are gone for good
            self.model.retain(|e| e.acked);
            let durable = self
                .model
                .iter()
                .filter(|e| e.segment == id)
                .map(|e| e.end)
                .max()
                .unwrap_or(SEGMENT_HEADER_LEN as u64);
            prop_assert_eq!(file_len(&segment(self.dir.path(), id)), durable);
        } else {
            prop_assert_eq!(new_id, id, "no-op");
        }
        self.check_counters()
    }

    fn rotate(&mut self) -> Result<(), TestCaseError> {
        let poisoned = self.poisoned;
        let result = self.wal()?.rotate();
        if poisoned {
            prop_assert!(matches!(result, Err(Error::Poisoned)), "{:?}", result);
        } else {
            result.expect("rotate");
        }
        Ok(())
    }

    fn check_counters(&self) -> Result<(), TestCaseError> {
        let stats = self.wal.as_ref().expect("open").stats();
        let actual = Counters {
            write_failures: stats.write_failures,
            sync_failures: stats.sync_failures,
            recoveries: stats.recoveries,
        };
        prop_assert_eq!(actual, self.counters);
        prop_assert_eq!(stats.fsync_seconds.count, stats.fsyncs);
        prop_assert_eq!(stats.frames_per_fsync.count, stats.fsyncs);
        Ok(())
    }

    fn segments(&self) -> Vec<u64> {
        segment_ids(self.dir.path())
    }

    /// The id of the segment picked by `index`, after a crash.
    fn pick_segment(&mut self, index: &Index) -> Option<u64> {
        self.crash();
        let ids = self.segments();
        (!ids.is_empty()).then(|| ids[index.index(ids.len())])
    }

    fn damage(&mut self, id: u64, from: u64) {
        self.damage_events += 1;
        for entry in self.model.iter_mut().filter(|e| e.segment == id) {
            if from < SEGMENT_HEADER_LEN as u64 || entry.end > from {
                entry.damaged = true;
            }
        }
    }

    fn flip(&mut self, segment_index: &Index, byte: &Index, bit: u8) {
        let Some(id) = self.pick_segment(segment_index) else {
            return;
        };
        let path = segment(self.dir.path(), id);
        let len = file_len(&path);
        if len == 0 {
            return;
        }
        let at = byte.index(len as usize) as u64;
        if at < SEGMENT_HEADER_LEN as u64 && self.future.contains(&id) {
            return;
        }
        // flipping the same bit twice would restore a frame whose seq may have been reused
        if !self.flipped.insert((id, at, bit)) {
            return;
        }
        flip_bit(&path, at as usize, bit);
        self.damage_events += 1;
        for entry in self.model.iter_mut().filter(|e| e.segment == id) {
            if at < SEGMENT_HEADER_LEN as u64 || (entry.start..entry.end).contains(&at) {
                entry.damaged = true;
            }
        }
    }

    fn truncate_tail(&mut self, bytes: u64) {
        self.crash();
        let Some(&id) = self.segments().last() else {
            return;
        };
        let path = segment(self.dir.path(), id);
        let new_len = file_len(&path).saturating_sub(bytes);
        truncate(&path, new_len);
        self.damage(id, new_len);
    }

    fn zero_tail(&mut self, segment_index: &Index, bytes: u64) {
        let Some(id) = self.pick_segment(segment_index) else {
            return;
        };
        let path = segment(self.dir.path(), id);
        let mut data = std::fs::read(&path).expect("read segment");
        let from = data.len().saturating_sub(bytes as usize);
        data[from..].fill(0);
        std::fs::write(&path, &data).expect("write segment");
        self.damage(id, from as u64);
    }

    fn future_header(&mut self, segment_index: &Index) {
        let Some(id) = self.pick_segment(segment_index) else {
            return;
        };
        let path = segment(self.dir.path(), id);
        let mut data = std::fs::read(&path).expect("read segment");
        if data.len() < 12 || !self.future.insert(id) {
            return;
        }
        data[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, &data).expect("write segment");
        self.damage(id, 0);
    }
}

fn segment_ids(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .expect("list dir")
        .filter_map(|e| parse_segment_file_name(e.ok()?.file_name().to_str()?))
        .collect();
    ids.sort_unstable();
    ids
}

/// Segments open must skip as unreadable: a header that is not magic + version 1, except a
/// last segment that looks like a torn creation (it is removed instead).
fn expected_unreadable(dir: &Path) -> u64 {
    let ids = segment_ids(dir);
    let good = encode_segment_header();
    let mut unreadable = 0;
    for (i, id) in ids.iter().enumerate() {
        let data = std::fs::read(segment(dir, *id)).expect("read segment");
        let readable = data.len() >= SEGMENT_HEADER_LEN && data[..12] == good[..12];
        let torn_last = i + 1 == ids.len() && is_torn_segment_creation(&data);
        if !readable && !torn_last {
            unreadable += 1;
        }
    }
    unreadable
}

/// Greedy match of the replay against the model: every intact acknowledged entry must be
/// matched, in order; damaged or unacknowledged entries may or may not be; nothing else may
/// appear. Returns the indices of the matched unacknowledged entries.
fn check(model: &[Entry], replayed: &Frames) -> Result<HashSet<usize>, TestCaseError> {
    let mut seen = HashSet::new();
    let mut next = replayed.iter().peekable();
    for (index, entry) in model.iter().enumerate() {
        match next.peek() {
            Some((seq, payload)) if *seq == entry.seq && *payload == entry.payload => {
                next.next();
                seen.insert(index);
            }
            _ => prop_assert!(
                entry.damaged || !entry.acked,
                "intact frame {} missing from replay {:?}",
                entry.seq,
                replayed.iter().map(|(s, _)| *s).collect::<Vec<_>>()
            ),
        }
    }
    let rest: Vec<u64> = next.map(|(seq, _)| *seq).collect();
    prop_assert!(
        rest.is_empty(),
        "replayed frames not in the model: {:?}",
        rest
    );
    Ok(seen)
}

fn run(sync: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(sync);
    for op in &ops {
        match op {
            Op::Append(body) => harness.append(body)?,
            Op::Rotate => harness.rotate()?,
            Op::Crash => harness.reopen()?,
            Op::FlipBit { segment, byte, bit } => harness.flip(segment, byte, *bit),
            Op::TruncateTail(bytes) => harness.truncate_tail(*bytes),
            Op::ZeroTail { segment, bytes } => harness.zero_tail(segment, *bytes),
            Op::FutureHeader { segment } => harness.future_header(segment),
            Op::FailWrite { torn } => harness.fail_write(torn.as_ref())?,
            Op::FailSync => harness.fail_sync()?,
            Op::Recover { heal } => harness.recover(*heal)?,
        }
    }
    harness.reopen()?;
    // a second open after recovery replays exactly the same frames
    harness.reopen()?;
    check_dir_is_stable(harness.dir.path())
}

fn check_dir_is_stable(dir: &Path) -> Result<(), TestCaseError> {
    let (_, first, _) = open(fast(dir));
    let (_, second, stats) = open(fast(dir));
    prop_assert_eq!(first, second);
    prop_assert_eq!(stats.truncated_bytes, 0);
    Ok(())
}

/// CI's case count, or `VALUETRACE_MODEL_CASES` for a long run (docs/reliability.md).
fn cases(ci: u32) -> u32 {
    std::env::var("VALUETRACE_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(ci)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// Without fsync (cheap): an append is acknowledged once written.
    #[test]
    fn acknowledged_intact_frames_survive(ops in prop::collection::vec(op(), 1..60)) {
        run(false, ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

    /// With real fsyncs, so that failed fsyncs leave written but unacknowledged frames.
    #[test]
    fn acknowledged_intact_frames_survive_with_fsync(ops in prop::collection::vec(op(), 1..40)) {
        run(true, ops)?;
    }
}
