//! The on-disk byte layout: segment file names, the segment header and frames.
//!
//! See the crate docs for the diagram. Everything here is pure (no I/O) so that tools and tests
//! can build or inspect segments byte by byte.

use std::ops::Range;

/// The first 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"VTWAL\0\0\0";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the segment header: magic, version, reserved.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Length of a frame header: len, crc, seq.
pub const FRAME_HEADER_LEN: usize = 16;
/// The largest payload a frame may carry; a longer `len` marks the frame as corrupt.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024 * 1024;

/// The file name of segment `id`: 20 zero-padded digits and `.wal`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:020}.wal")
}

/// The id of a segment file name, or `None` if the name is not a segment's.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header every segment starts with.
pub fn encode_segment_header() -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`SEGMENT_HEADER_LEN`] bytes.
    Short,
    /// The magic is not [`SEGMENT_MAGIC`].
    BadMagic,
    /// A version this crate cannot read (newer, or 0).
    UnsupportedVersion(u32),
}

/// Checks the segment header at the start of `data`. The reserved field is ignored.
pub fn check_segment_header(data: &[u8]) -> Result<(), HeaderError> {
    let header = data.get(..SEGMENT_HEADER_LEN).ok_or(HeaderError::Short)?;
    if header[..8] != SEGMENT_MAGIC {
        return Err(HeaderError::BadMagic);
    }
    let version = read_u32(header, 8);
    if version != FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    Ok(())
}

/// `true` if `data` looks like a segment whose creation was torn by a crash: a prefix of the
/// expected header followed by nothing but zero bytes (an empty file qualifies).
pub fn is_torn_segment_creation(data: &[u8]) -> bool {
    let header = encode_segment_header();
    let prefix = data
        .iter()
        .zip(header.iter())
        .take_while(|(a, b)| a == b)
        .count();
    data[prefix..].iter().all(|&b| b == 0)
}

/// The frame checksum: crc32c over the seq's little-endian bytes followed by the payload.
pub fn frame_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// The 16-byte header of a frame carrying `payload` with sequence number `seq`.
///
/// The caller must have checked `payload.len() <= MAX_PAYLOAD_LEN`.
pub fn encode_frame_header(seq: u64, payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&frame_crc(seq, payload).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header
}

/// A whole frame (header and payload) as bytes.
pub fn encode_frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    frame.extend_from_slice(&encode_frame_header(seq, payload));
    frame.extend_from_slice(payload);
    frame
}

/// A frame header as read, not yet validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrameHeader {
    /// Declared payload length.
    pub len: u32,
    /// Declared checksum.
    pub crc: u32,
    /// Declared sequence number.
    pub seq: u64,
}

/// The frame header at `pos`, if 16 bytes are available there.
pub fn raw_frame_header_at(data: &[u8], pos: usize) -> Option<RawFrameHeader> {
    let bytes = data.get(pos..pos.checked_add(FRAME_HEADER_LEN)?)?;
    Some(RawFrameHeader {
        len: read_u32(bytes, 0),
        crc: read_u32(bytes, 4),
        seq: u64::from_le_bytes(bytes[8..16].try_into().expect("slice of 8 bytes")),
    })
}

/// A frame that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFrame {
    /// The frame's sequence number.
    pub seq: u64,
    /// Where the payload lies in the buffer.
    pub payload: Range<usize>,
    /// The offset just past the frame.
    pub end: usize,
}

/// The frame at `pos` if it is intact: plausible length, payload within `data`, crc matches.
pub fn valid_frame_at(data: &[u8], pos: usize) -> Option<ValidFrame> {
    let header = raw_frame_header_at(data, pos)?;
    let len = usize::try_from(header.len).ok()?;
    if len > MAX_PAYLOAD_LEN {
        return None;
    }
    let start = pos + FRAME_HEADER_LEN;
    let end = start.checked_add(len)?;
    let payload = data.get(start..end)?;
    if frame_crc(header.seq, payload) != header.crc {
        return None;
    }
    Some(ValidFrame {
        seq: header.seq,
        payload: start..end,
        end,
    })
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("slice of 4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(7), "00000000000000000007.wal");
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("7.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.wal"), None);
        assert_eq!(parse_segment_file_name("00000000000000000007.tmp"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
    }

    #[test]
    fn header_checks() {
        let header = encode_segment_header();
        assert_eq!(&header[..8], b"VTWAL\0\0\0");
        assert_eq!(check_segment_header(&header), Ok(()));
        assert_eq!(check_segment_header(&header[..15]), Err(HeaderError::Short));
        let mut bad = header;
        bad[0] = b'X';
        assert_eq!(check_segment_header(&bad), Err(HeaderError::BadMagic));
        let mut future = header;
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(
            check_segment_header(&future),
            Err(HeaderError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn torn_creation_detection() {
        let header = encode_segment_header();
        assert!(is_torn_segment_creation(&[]));
        assert!(is_torn_segment_creation(&header[..5]));
        assert!(is_torn_segment_creation(&[0u8; 16]));
        assert!(is_torn_segment_creation(&[b'V', b'T', 0, 0]));
        assert!(!is_torn_segment_creation(b"GARBAGE"));
    }

    #[test]
    fn frames_validate_and_detect_damage() {
        let frame = encode_frame(42, b"hello");
        let valid = valid_frame_at(&frame, 0).expect("intact frame");
        assert_eq!(valid.seq, 42);
        assert_eq!(&frame[valid.payload.clone()], b"hello");
        assert_eq!(valid.end, frame.len());
        // every single-bit flip is detected
        for bit in 0..frame.len() * 8 {
            let mut damaged = frame.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(valid_frame_at(&damaged, 0), None, "bit {bit}");
        }
        assert_eq!(valid_frame_at(&frame[..frame.len() - 1], 0), None);
        assert_eq!(valid_frame_at(&[0u8; 32], 0), None);
    }
}
