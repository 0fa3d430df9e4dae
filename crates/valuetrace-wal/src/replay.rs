//! Recovery: reading every segment at open, replaying intact frames and repairing torn tails.
//!
//! Rules, per segment in id order:
//! - unreadable file, bad magic or unsupported version: skip it, count it, leave it untouched;
//! - the last segment (highest id in the directory) may end in a torn tail (partial frame, zero
//!   fill, or junk that no later frame follows): the file is truncated after the last intact frame;
//!   a last segment whose very creation was torn (shorter than its header) is removed;
//! - a damaged frame in the middle is skipped: by its declared `len` when the frame found there
//!   continues the sequence, otherwise by scanning forward byte by byte for the next offset where
//!   a frame validates (crc and a plausible seq). If none does, the rest of the segment is lost.

use std::fs::{self, OpenOptions};
use std::path::Path;

use tracing::{error, warn};

use crate::error::{Error, Result};
use crate::format::{
    FRAME_HEADER_LEN, HeaderError, SEGMENT_HEADER_LEN, check_segment_header,
    is_torn_segment_creation, raw_frame_header_at, valid_frame_at,
};
use crate::fsio::{list_segments, sync_all, sync_dir};
use crate::options::{ReplayStats, WalOptions};

/// While resynchronising, a candidate frame's seq must lie in `(last_seq, last_seq + WINDOW]`.
/// Together with the crc this makes false positives in random junk practically impossible and
/// keeps the scan linear (random lengths rarely pass, so the crc is rarely computed).
const RESYNC_SEQ_WINDOW: u64 = 1 << 40;

/// The outcome of [`recover`].
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    pub stats: ReplayStats,
    /// The highest replayed seq, 0 if none.
    pub last_seq: u64,
    /// The highest segment id present in the directory (readable or not), 0 if none.
    pub max_segment_id: u64,
    /// Ids of segments that were skipped as unreadable; they must never be deleted.
    pub unreadable: Vec<u64>,
}

/// Replays every segment in `options.dir`, repairing the last one's tail.
pub(crate) fn recover(
    options: &WalOptions,
    replay: &mut dyn FnMut(u64, &[u8]),
) -> Result<Recovery> {
    let segments = list_segments(&options.dir)?;
    let mut recovery = Recovery {
        max_segment_id: segments.last().map_or(0, |(id, _)| *id),
        ..Recovery::default()
    };
    let count = segments.len();
    for (index, (id, path)) in segments.into_iter().enumerate() {
        let is_last = index + 1 == count;
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(e) => {
                error!(segment = %path.display(), error = %e, "skipping unreadable wal segment");
                recovery.stats.unreadable_segments += 1;
                recovery.unreadable.push(id);
                continue;
            }
        };
        if let Err(problem) = check_segment_header(&data) {
            if is_last && is_torn_segment_creation(&data) {
                warn!(segment = %path.display(), bytes = data.len(), "removing wal segment whose creation was torn");
                fs::remove_file(&path).map_err(|e| Error::io("remove segment", &path, e))?;
                sync_dir(options, &options.dir)?;
                recovery.stats.truncated_bytes += data.len() as u64;
                continue;
            }
            match problem {
                HeaderError::Short => {
                    error!(segment = %path.display(), bytes = data.len(), "skipping wal segment with a short header")
                }
                HeaderError::BadMagic => {
                    error!(segment = %path.display(), "skipping wal segment with a bad magic")
                }
                HeaderError::UnsupportedVersion(version) => {
                    error!(segment = %path.display(), version, "skipping wal segment with an unsupported format version")
                }
            }
            recovery.stats.unreadable_segments += 1;
            recovery.unreadable.push(id);
            continue;
        }
        recovery.stats.segments += 1;
        let name = path.display().to_string();
        let scan = scan_segment(&data, &name, &mut recovery.last_seq, replay);
        recovery.stats.frames += scan.frames;
        recovery.stats.corrupt_frames += scan.corrupt;
        if let Some(tail) = scan.tail_start {
            let zeros = data[tail..].iter().all(|&b| b == 0);
            if is_last {
                let removed = data.len() - scan.good_end;
                warn!(segment = %name, offset = scan.good_end, bytes = removed, zeros, "truncating torn tail of the last wal segment");
                truncate(options, &path, scan.good_end as u64)?;
                recovery.stats.truncated_bytes += removed as u64;
            } else if zeros {
                warn!(segment = %name, offset = tail, "wal segment ends in zero fill");
            } else {
                error!(segment = %name, offset = tail, bytes = data.len() - tail, "wal segment ends in data that does not parse as frames");
                recovery.stats.corrupt_frames += 1;
            }
        }
    }
    Ok(recovery)
}

fn truncate(options: &WalOptions, path: &Path, len: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open segment for truncation", path, e))?;
    file.set_len(len)
        .map_err(|e| Error::io("truncate segment", path, e))?;
    sync_all(options, &file, path)
}

/// What [`scan_segment`] found in one segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentScan {
    /// Frames handed to the callback.
    pub frames: u64,
    /// Corrupt regions skipped (a tail is not counted here).
    pub corrupt: u64,
    /// The offset just past the last intact frame (or the header).
    pub good_end: usize,
    /// Where trailing data that no intact frame follows begins, if any.
    pub tail_start: Option<usize>,
}

/// Replays the frames of one segment whose header was checked. `last_seq` is the highest seq
/// replayed so far (across segments) and is advanced; frames with a seq not above it are skipped
/// as corrupt so that replay is strictly increasing.
pub(crate) fn scan_segment(
    data: &[u8],
    name: &str,
    last_seq: &mut u64,
    replay: &mut dyn FnMut(u64, &[u8]),
) -> SegmentScan {
    let mut scan = SegmentScan {
        good_end: SEGMENT_HEADER_LEN,
        ..SegmentScan::default()
    };
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        if let Some(frame) = valid_frame_at(data, pos) {
            pos = frame.end;
            scan.good_end = frame.end;
            if frame.seq <= *last_seq {
                error!(
                    segment = name,
                    seq = frame.seq,
                    last_seq = *last_seq,
                    "skipping wal frame whose seq does not increase"
                );
                scan.corrupt += 1;
                continue;
            }
            replay(frame.seq, &data[frame.payload]);
            *last_seq = frame.seq;
            scan.frames += 1;
            continue;
        }
        match next_frame_after_damage(data, pos, *last_seq) {
            Some(next) => {
                error!(
                    segment = name,
                    offset = pos,
                    skipped_bytes = next - pos,
                    "skipping corrupt wal frame"
                );
                scan.corrupt += 1;
                pos = next;
            }
            None => {
                scan.tail_start = Some(pos);
                break;
            }
        }
    }
    scan
}

/// Where replay should resume after the damaged frame at `bad`, or `None` if no intact frame
/// follows in this segment.
fn next_frame_after_damage(data: &[u8], bad: usize, last_seq: u64) -> Option<usize> {
    // trust the declared length only if it leads to the frame that should come next: a bit flip
    // in `len` could otherwise land on a later frame and silently drop the ones in between
    if let Some(header) = raw_frame_header_at(data, bad) {
        let skip_to = usize::try_from(header.len)
            .ok()
            .and_then(|len| (bad + FRAME_HEADER_LEN).checked_add(len));
        if let Some(next) = skip_to
            && valid_frame_at(data, next).is_some_and(|f| f.seq == last_seq.saturating_add(2))
        {
            return Some(next);
        }
    }
    let last_start = data.len().checked_sub(FRAME_HEADER_LEN)?;
    (bad + 1..=last_start).find(|&at| is_resync_candidate(data, at, last_seq))
}

fn is_resync_candidate(data: &[u8], at: usize, last_seq: u64) -> bool {
    let Some(header) = raw_frame_header_at(data, at) else {
        return false;
    };
    let plausible_seq = header.seq > last_seq && header.seq - last_seq <= RESYNC_SEQ_WINDOW;
    plausible_seq && valid_frame_at(data, at).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_frame, encode_segment_header};

    fn segment(frames: &[(u64, &[u8])]) -> (Vec<u8>, Vec<usize>) {
        let mut data = encode_segment_header().to_vec();
        let mut offsets = Vec::new();
        for (seq, payload) in frames {
            offsets.push(data.len());
            data.extend_from_slice(&encode_frame(*seq, payload));
        }
        (data, offsets)
    }

    fn scan(data: &[u8], last_seq: u64) -> (SegmentScan, Vec<u64>) {
        let mut seen = Vec::new();
        let mut last = last_seq;
        let result = scan_segment(data, "test", &mut last, &mut |seq, _| seen.push(seq));
        (result, seen)
    }

    #[test]
    fn clean_segment_replays_everything() {
        let (data, _) = segment(&[(1, b"a"), (2, b"bb"), (3, b"")]);
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(result.good_end, data.len());
        assert_eq!(result.tail_start, None);
        assert_eq!(result.corrupt, 0);
    }

    #[test]
    fn payload_flip_is_skipped_by_len() {
        let (mut data, offsets) = segment(&[(1, b"aaaa"), (2, b"bbbb"), (3, b"cccc")]);
        data[offsets[1] + FRAME_HEADER_LEN + 1] ^= 0x10;
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![1, 3]);
        assert_eq!(result.corrupt, 1);
        assert_eq!(result.tail_start, None);
    }

    #[test]
    fn len_flip_landing_on_a_later_frame_does_not_drop_frames() {
        // frames of 32 bytes each: adding 32 to len lands exactly on the frame after next
        let p = [7u8; 16];
        let (mut data, offsets) = segment(&[(1, &p), (2, &p), (3, &p), (4, &p)]);
        data[offsets[1]] ^= 32;
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![1, 3, 4]);
        assert_eq!(result.corrupt, 1);
    }

    #[test]
    fn implausible_len_resynchronises() {
        let (mut data, offsets) = segment(&[(5, b"xx"), (6, b"yy"), (7, b"zz")]);
        data[offsets[1] + 3] = 0xff;
        let (result, seen) = scan(&data, 4);
        assert_eq!(seen, vec![5, 7]);
        assert_eq!(result.corrupt, 1);
    }

    #[test]
    fn junk_without_following_frame_is_a_tail() {
        let (mut data, offsets) = segment(&[(1, b"one"), (2, b"two")]);
        data.extend_from_slice(&[0xAB; 40]);
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(result.tail_start, Some(result.good_end));
        assert_eq!(result.good_end, offsets[1] + FRAME_HEADER_LEN + 3);
    }

    #[test]
    fn zero_fill_is_a_tail_but_frames_after_a_zero_hole_are_recovered() {
        let (mut data, _) = segment(&[(1, b"one")]);
        let good = data.len();
        data.extend_from_slice(&[0u8; 100]);
        let (result, _) = scan(&data, 0);
        assert_eq!(result.tail_start, Some(good));

        data.extend_from_slice(&encode_frame(2, b"two"));
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![1, 2]);
        assert_eq!(result.tail_start, None);
        assert_eq!(result.corrupt, 1);
    }

    #[test]
    fn non_increasing_seq_is_skipped() {
        let (data, _) = segment(&[(3, b"a"), (2, b"b"), (4, b"c")]);
        let (result, seen) = scan(&data, 0);
        assert_eq!(seen, vec![3, 4]);
        assert_eq!(result.corrupt, 1);
    }
}
