//! Model-based test: random appends, rotations, crashes, bit flips and torn tails.
//!
//! Invariant checked at every open: every acknowledged frame that no corruption touched is
//! replayed exactly once, in order, with its payload; nothing else is replayed except frames
//! that were acknowledged; and open never fails or panics.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{Frames, fast, file_len, flip_bit, open, segment, truncate};
use proptest::prelude::*;
use proptest::sample::Index;
use valuetrace_wal::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, parse_segment_file_name};
use valuetrace_wal::{Wal, WalOptions};

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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..120).prop_map(Op::Append),
        1 => Just(Op::Rotate),
        2 => Just(Op::Crash),
        2 => (any::<Index>(), any::<Index>(), 0u8..8)
            .prop_map(|(segment, byte, bit)| Op::FlipBit { segment, byte, bit }),
        1 => (1u64..80).prop_map(Op::TruncateTail),
    ]
}

/// One acknowledged frame and where it lives on disk.
#[derive(Debug)]
struct Entry {
    seq: u64,
    payload: Vec<u8>,
    segment: u64,
    start: u64,
    end: u64,
    damaged: bool,
}

struct Harness {
    dir: tempfile::TempDir,
    wal: Option<Wal>,
    model: Vec<Entry>,
    flipped: HashSet<(u64, u64, u8)>,
    unique: u32,
}

impl Harness {
    fn options(&self) -> WalOptions {
        let mut options = fast(self.dir.path());
        options.segment_max_bytes = 400;
        options
    }

    fn wal(&mut self) -> Result<&Wal, TestCaseError> {
        if self.wal.is_none() {
            self.reopen()?;
        }
        Ok(self.wal.as_ref().expect("opened above"))
    }

    /// Opens the WAL (after dropping any open handle) and checks the invariant.
    fn reopen(&mut self) -> Result<(), TestCaseError> {
        self.wal = None;
        let (wal, replayed, stats) = open(self.options());
        prop_assert_eq!(stats.frames, replayed.len() as u64);
        check(&self.model, &replayed)?;
        self.wal = Some(wal);
        Ok(())
    }

    fn append(&mut self, body: &[u8]) -> Result<(), TestCaseError> {
        // a unique prefix makes every payload distinct, even when a seq is reused after loss
        self.unique += 1;
        let mut payload = self.unique.to_le_bytes().to_vec();
        payload.extend_from_slice(body);
        let highest_before = self.model.iter().map(|e| e.seq).max().unwrap_or(0);
        let wal = self.wal()?;
        let seq = wal.append(&payload).expect("append");
        let id = wal.current_segment_id();
        let end = file_len(&segment(self.dir.path(), id));
        let start = end - (FRAME_HEADER_LEN + payload.len()) as u64;
        let replayable_max = self
            .model
            .iter()
            .filter(|e| !e.damaged)
            .map(|e| e.seq)
            .max()
            .unwrap_or(0);
        prop_assert!(
            seq > replayable_max,
            "seq {} reuses an intact frame's seq",
            seq
        );
        prop_assert!(seq <= highest_before + 1);
        self.model.push(Entry {
            seq,
            payload,
            segment: id,
            start,
            end,
            damaged: false,
        });
        Ok(())
    }

    fn segments(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = std::fs::read_dir(self.dir.path())
            .expect("list dir")
            .filter_map(|e| parse_segment_file_name(e.ok()?.file_name().to_str()?))
            .collect();
        ids.sort_unstable();
        ids
    }

    fn flip(&mut self, segment_index: &Index, byte: &Index, bit: u8) {
        self.wal = None;
        let ids = self.segments();
        if ids.is_empty() {
            return;
        }
        let id = ids[segment_index.index(ids.len())];
        let path = segment(self.dir.path(), id);
        let len = file_len(&path);
        if len == 0 {
            return;
        }
        let at = byte.index(len as usize) as u64;
        // flipping the same bit twice would restore a frame whose seq may have been reused
        if !self.flipped.insert((id, at, bit)) {
            return;
        }
        flip_bit(&path, at as usize, bit);
        for entry in self.model.iter_mut().filter(|e| e.segment == id) {
            if at < SEGMENT_HEADER_LEN as u64 || (entry.start..entry.end).contains(&at) {
                entry.damaged = true;
            }
        }
    }

    fn truncate_tail(&mut self, bytes: u64) {
        self.wal = None;
        let Some(&id) = self.segments().last() else {
            return;
        };
        let path = segment(self.dir.path(), id);
        let new_len = file_len(&path).saturating_sub(bytes);
        truncate(&path, new_len);
        for entry in self
            .model
            .iter_mut()
            .filter(|e| e.segment == id && e.end > new_len)
        {
            entry.damaged = true;
        }
    }
}

/// Greedy match of the replay against the model: every intact entry must be matched, in order;
/// damaged entries may or may not be; nothing else may appear.
fn check(model: &[Entry], replayed: &Frames) -> Result<(), TestCaseError> {
    let mut next = replayed.iter().peekable();
    for entry in model {
        match next.peek() {
            Some((seq, payload)) if *seq == entry.seq && *payload == entry.payload => {
                next.next();
            }
            _ => prop_assert!(
                entry.damaged,
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
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut harness = Harness {
        dir: tempfile::tempdir().expect("tempdir"),
        wal: None,
        model: Vec::new(),
        flipped: HashSet::new(),
        unique: 0,
    };
    for op in &ops {
        match op {
            Op::Append(body) => harness.append(body)?,
            Op::Rotate => {
                harness.wal()?.rotate().expect("rotate");
            }
            Op::Crash => harness.reopen()?,
            Op::FlipBit { segment, byte, bit } => harness.flip(segment, byte, *bit),
            Op::TruncateTail(bytes) => harness.truncate_tail(*bytes),
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_intact_frames_survive(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
