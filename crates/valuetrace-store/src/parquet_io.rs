//! Parquet files: atomic writes (temp file, fsync, rename, fsync dir) and pruned reads.
//!
//! Files are sorted by `timestamp` and cut into row groups of `row_group_rows` rows with
//! statistics, so a time-range scan reads only the row groups that overlap it. A compacted file
//! names the files it replaces in its key-value metadata (`valuetrace.replaces`); start-up finishes
//! an interrupted compaction by deleting those that are still there.

use crate::source_id::SourceId;
use crate::{Error, Result};
use arrow_array::{Array, RecordBatch, TimestampMillisecondArray};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use std::fs::File;
use std::path::{Path, PathBuf};

pub const REPLACES_KEY: &str = "valuetrace.replaces";

/// What we know of a persisted file without reading its rows.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// This opening of the file (clones share it; a file opened again gets a new one).
    pub source: SourceId,
    pub path: PathBuf,
    pub rows: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    /// `(min, max)` timestamp of each row group.
    pub row_groups: Vec<(i64, i64)>,
    /// Names of files this one replaced (compaction).
    pub replaces: Vec<String>,
    /// Latest `received_at` in the file (`i64::MAX` when unknown): files received before the
    /// dedup window need not be read for event ids.
    pub max_received_at: i64,
    /// The parsed footer, kept so that scans do not parse it again.
    pub metadata: ArrowReaderMetadata,
}

/// Sorts `batch` by timestamp and writes it atomically to `path`.
pub fn write_sorted(
    path: &Path,
    batches: &[RecordBatch],
    row_group_rows: usize,
    replaces: &[String],
) -> Result<FileInfo> {
    let sorted = sort_by_timestamp(batches)?;
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(|source| Error::io(&tmp, source))?;
    let mut properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).map_err(Error::Parquet)?,
        ))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)));

    if !replaces.is_empty() {
        properties = properties.set_key_value_metadata(Some(vec![KeyValue::new(
            REPLACES_KEY.to_owned(),
            replaces.join(","),
        )]));
    }
    let mut writer = ArrowWriter::try_new(file, sorted.schema(), Some(properties.build()))?;
    writer.write(&sorted)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(|source| Error::io(&tmp, source))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|source| Error::io(path, source))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    read_info(path)
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| Error::io(dir, source))
}

/// Merges `batches` into one batch ordered by timestamp, copying each value once.
fn sort_by_timestamp(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let mut order: Vec<(i64, usize, usize)> =
        Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (batch_index, batch) in batches.iter().enumerate() {
        let timestamps = timestamp_column(batch)?;
        order.extend(
            timestamps
                .values()
                .iter()
                .enumerate()
                .map(|(row, &ts)| (ts, batch_index, row)),
        );
    }
    order.sort_unstable();
    let indices: Vec<(usize, usize)> = order
        .into_iter()
        .map(|(_, batch, row)| (batch, row))
        .collect();
    let references: Vec<&RecordBatch> = batches.iter().collect();
    if references.is_empty() {
        return Err(Error::Internal("nothing to write".into()));
    }
    Ok(arrow_select::interleave::interleave_record_batch(
        &references,
        &indices,
    )?)
}

fn timestamp_column(batch: &RecordBatch) -> Result<&TimestampMillisecondArray> {
    batch
        .column_by_name("timestamp")
        .and_then(|column| column.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or_else(|| Error::Corrupt("batch has no timestamp[ms] column".into()))
}

/// Reads the footer: row counts, timestamp ranges per row group, replaced files.
pub fn read_info(path: &Path) -> Result<FileInfo> {
    let file = File::open(path).map_err(|source| Error::io(path, source))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let reader_metadata =
        ArrowReaderMetadata::try_new(builder.metadata().clone(), Default::default())?;
    let metadata = builder.metadata();
    let timestamp_index = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|column| column.name() == "timestamp")
        .ok_or_else(|| Error::Corrupt(format!("{} has no timestamp column", path.display())))?;
    let received_index = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|column| column.name() == "received_at");
    let mut max_received_at = i64::MIN;
    let mut row_groups = Vec::new();
    for group in metadata.row_groups() {
        max_received_at = match received_index.map(|index| group.column(index).statistics()) {
            Some(Some(Statistics::Int64(stats))) => {
                max_received_at.max(stats.max_opt().copied().unwrap_or(i64::MAX))
            }
            _ => i64::MAX,
        };
        let range = match group.column(timestamp_index).statistics() {
            Some(Statistics::Int64(stats)) => (stats.min_opt().copied(), stats.max_opt().copied()),
            _ => (None, None),
        };
        row_groups.push((range.0.unwrap_or(i64::MIN), range.1.unwrap_or(i64::MAX)));
    }
    let replaces = metadata
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|pair| pair.key == REPLACES_KEY))
        .and_then(|pair| pair.value.clone())
        .map(|list| list.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(FileInfo {
        source: SourceId::fresh(),
        path: path.to_owned(),
        rows: metadata.file_metadata().num_rows() as u64,
        min_ts: row_groups
            .iter()
            .map(|range| range.0)
            .min()
            .unwrap_or(i64::MAX),
        max_ts: row_groups
            .iter()
            .map(|range| range.1)
            .max()
            .unwrap_or(i64::MIN),
        row_groups,
        replaces,
        max_received_at,
        metadata: reader_metadata,
    })
}

/// Reads the row groups of `info` overlapping `[from, to)`, only the named columns (all if empty).
pub fn read_range(
    info: &FileInfo,
    from: i64,
    to: i64,
    columns: &[&str],
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let groups: Vec<usize> = info
        .row_groups
        .iter()
        .enumerate()
        .filter(|(_, (min, max))| *max >= from && *min < to)
        .map(|(index, _)| index)
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let file = File::open(&info.path).map_err(|source| Error::io(&info.path, source))?;
    let mut builder =
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, info.metadata.clone())
            .with_row_groups(groups)
            .with_batch_size(16_384);
    if !columns.is_empty() {
        let schema = builder.parquet_schema();
        let indices: Vec<usize> = schema
            .columns()
            .iter()
            .enumerate()
            .filter(|(_, column)| columns.contains(&column.name()))
            .map(|(index, _)| index)
            .collect();
        let mask = ProjectionMask::leaves(schema, indices);
        builder = builder.with_projection(mask);
    }
    for batch in builder.build()? {
        each(&batch?)?;
    }
    Ok(())
}

/// Timestamp range of a batch, `None` when empty.
pub fn timestamp_range(batch: &RecordBatch) -> Result<Option<(i64, i64)>> {
    let timestamps = timestamp_column(batch)?;
    if timestamps.is_empty() {
        return Ok(None);
    }
    let values = timestamps.values();
    let min = values.iter().copied().min().unwrap_or(i64::MAX);
    let max = values.iter().copied().max().unwrap_or(i64::MIN);
    Ok(Some((min, max)))
}
