//! Rollup snapshots: the rollup cells of one quiet day partition, so that start-up does not
//! rebuild them from the day's Parquet files.
//!
//! A snapshot is written after a persist for each `api_calls` day that has no buffered rows, so
//! its cells are exactly the rollups of the rows in that day's files. It records that row count;
//! start-up trusts it only when the day's files still hold exactly that many rows (files are
//! append-only and compaction keeps rows), and otherwise rebuilds the day from Parquet.
//!
//! ```text
//! magic "VTSNAP\0\0" | version u32 = 2 | day i64 | rows u64   (v2: a cell's counts end with
//!                                                             its value currency, u32, and its
//!                                                             users are three sketches; a v1
//!                                                             snapshot is rebuilt from Parquet)
//! strings: count u32, then (len u32, UTF-8 bytes)*        -- ids below index this table (0 = none)
//! cells:   count u32, then (level u8, bucket i64, route u32, method u32, service u32,
//!                           provider u32, outbound u8, is_detail u8, [plan u32, segment u32,
//!                           variant u32], Cell)*
//! crc32c of everything above, u32
//! ```

use crate::codec::{Input, put_i64, put_u8, put_u32, put_u64};
use crate::interner::{Interner, NONE};
use crate::parquet_io::sync_dir;
use crate::rollup::{Cell, Level, PlacedCell, RouteKey};
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

const MAGIC: &[u8; 8] = b"VTSNAP\0\0";
/// 2: a cell's counts end with its value currency; cells keep raw, client-sketched and sampled
/// users apart (older snapshots are rebuilt from Parquet).
const VERSION: u32 = 2;
pub const FILE_NAME: &str = "rollups.snapshot";

/// A decoded snapshot: its day, the rows it covers, and its cells with ids interned into the
/// caller's interner.
pub struct Snapshot {
    pub day: i64,
    pub rows: u64,
    pub cells: Vec<PlacedCell>,
}

fn level_code(level: Level) -> u8 {
    match level {
        Level::Minute => 0,
        Level::Hour => 1,
        Level::Day => 2,
    }
}

fn level_of(code: u8) -> Option<Level> {
    match code {
        0 => Some(Level::Minute),
        1 => Some(Level::Hour),
        2 => Some(Level::Day),
        _ => None,
    }
}

/// Encodes `cells` (ids of `interner`) for `day`, covering `rows` rows.
pub fn encode(day: i64, rows: u64, cells: &[PlacedCell], interner: &Interner) -> Vec<u8> {
    let mut table: HashMap<u32, u32> = HashMap::new();
    let mut strings: Vec<&str> = Vec::new();
    let mut local = |id: u32| -> u32 {
        if id == NONE {
            return 0;
        }
        *table.entry(id).or_insert_with(|| {
            strings.push(interner.resolve(id));
            strings.len() as u32
        })
    };
    let mut body = Vec::new();
    put_u32(&mut body, cells.len() as u32);
    for placed in cells {
        put_u8(&mut body, level_code(placed.level));
        put_i64(&mut body, placed.bucket);
        let route = placed.route;
        for id in [route.route, route.method, route.service, route.provider] {
            put_u32(&mut body, local(id));
        }
        put_u8(&mut body, u8::from(route.outbound));
        match placed.detail {
            None => put_u8(&mut body, 0),
            Some((plan, segment, variant)) => {
                put_u8(&mut body, 1);
                for id in [plan, segment, variant] {
                    put_u32(&mut body, local(id));
                }
            }
        }
        placed.cell.encode(&mut body);
    }
    let mut out = Vec::with_capacity(body.len() + 1024);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    put_i64(&mut out, day);
    put_u64(&mut out, rows);
    put_u32(&mut out, strings.len() as u32);
    for text in &strings {
        put_u32(&mut out, text.len() as u32);
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out);
    put_u32(&mut out, crc);
    out
}

/// Decodes a snapshot, interning its strings; `None` when it is corrupt or of another version.
pub fn decode(bytes: &[u8], interner: &mut Interner) -> Option<Snapshot> {
    let (content, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
    if crc32c::crc32c(content).to_le_bytes() != crc {
        return None;
    }
    let mut input = Input::new(content);
    if input.take(MAGIC.len())? != MAGIC || input.u32()? != VERSION {
        return None;
    }
    let (day, rows) = (input.i64()?, input.u64()?);
    let string_count = input.len(4)?;
    let mut ids = vec![NONE];
    for _ in 0..string_count {
        let length = input.u32()? as usize;
        let text = std::str::from_utf8(input.take(length)?).ok()?;
        ids.push(interner.intern(text));
    }
    let id = |local: u32| ids.get(local as usize).copied();
    let cell_count = input.len(40)?;
    let mut cells = Vec::with_capacity(cell_count);
    for _ in 0..cell_count {
        let level = level_of(input.u8()?)?;
        let bucket = input.i64()?;
        let route = RouteKey {
            route: id(input.u32()?)?,
            method: id(input.u32()?)?,
            service: id(input.u32()?)?,
            provider: id(input.u32()?)?,
            outbound: input.u8()? == 1,
        };
        let detail = match input.u8()? {
            0 => None,
            _ => Some((id(input.u32()?)?, id(input.u32()?)?, id(input.u32()?)?)),
        };
        let cell = Cell::decode(&mut input)?;
        cells.push(PlacedCell {
            level,
            bucket,
            route,
            detail,
            cell,
        });
    }
    input.is_empty().then_some(Snapshot { day, rows, cells })
}

/// Writes `bytes` as the snapshot of `day_dir`, atomically.
pub fn write(day_dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = day_dir.join(FILE_NAME);
    let tmp = day_dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|source| Error::io(&tmp, source))?;
    std::fs::File::open(&tmp)
        .and_then(|file| file.sync_all())
        .map_err(|source| Error::io(&tmp, source))?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::io(&path, source))?;
    sync_dir(day_dir)
}
