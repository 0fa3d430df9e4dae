//! Where facts come from: a project's raw calls and outcomes, as sources (a Parquet file or a
//! buffered batch of the embedded store; a part of a ClickHouse table next), each with a
//! [`SourceId`] its backend hands out and never reuses. The cache keys every segment by it, so a
//! segment can never answer for rows it was not built from.
//!
//! A segment covers its source whole: [`FactSource::read`] returns every row of the source, and
//! [`FactSource::sources`] only decides which sources a window needs.

use crate::Result;
use arrow_array::RecordBatch;
use valuetrace_store::parquet_io::{self, FileInfo};
use valuetrace_store::{EmbeddedStore, SourceId, Table};

/// The tables facts are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactTable {
    Calls,
    Outcomes,
}

/// A backend the fact engine reads rows from.
pub trait FactSource {
    /// How the backend finds one source's rows again.
    type Source;

    /// The sources of `table` that may hold rows of `project` in `[from, to)`, each with its id.
    fn sources(
        &self,
        project: &str,
        table: FactTable,
        from: i64,
        to: i64,
    ) -> Result<Vec<(SourceId, Self::Source)>>;

    /// Every row of `source`, the named columns (others may come too), batch by batch.
    fn read(
        &self,
        source: &Self::Source,
        columns: &[&str],
        each: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()>;

    /// The project's earliest call (any time): a previous period that starts before it is not
    /// covered by data.
    fn first_call(&self, project: &str) -> Option<i64>;
}

/// A shared backend reads as the backend itself.
impl<T: FactSource + ?Sized> FactSource for std::sync::Arc<T> {
    type Source = T::Source;

    fn sources(
        &self,
        project: &str,
        table: FactTable,
        from: i64,
        to: i64,
    ) -> Result<Vec<(SourceId, Self::Source)>> {
        (**self).sources(project, table, from, to)
    }

    fn read(
        &self,
        source: &Self::Source,
        columns: &[&str],
        each: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        (**self).read(source, columns, each)
    }

    fn first_call(&self, project: &str) -> Option<i64> {
        (**self).first_call(project)
    }
}

/// A source of the embedded store: a Parquet file, or a batch still in memory.
pub enum EmbeddedSource {
    File(FileInfo),
    Batch(RecordBatch),
}

fn poisoned() -> crate::Error {
    crate::Error::Store(valuetrace_store::Error::Internal(
        "project lock poisoned".into(),
    ))
}

impl FactSource for EmbeddedStore {
    type Source = EmbeddedSource;

    fn sources(
        &self,
        project: &str,
        table: FactTable,
        from: i64,
        to: i64,
    ) -> Result<Vec<(SourceId, EmbeddedSource)>> {
        let Some(shared) = self.existing_project(project) else {
            return Ok(Vec::new());
        };
        let table = match table {
            FactTable::Calls => Table::ApiCalls,
            FactTable::Outcomes => Table::Outcomes,
        };
        let set = shared
            .read()
            .map_err(|_| poisoned())?
            .table(table)
            .scan_set(from, to);
        Ok(set
            .files
            .into_iter()
            .map(|file| (file.source, EmbeddedSource::File(file)))
            .chain(
                set.batches
                    .into_iter()
                    .map(|scanned| (scanned.source, EmbeddedSource::Batch(scanned.batch))),
            )
            .collect())
    }

    fn read(
        &self,
        source: &EmbeddedSource,
        columns: &[&str],
        each: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        match source {
            EmbeddedSource::Batch(batch) => each(batch),
            EmbeddedSource::File(file) => {
                let mut failed = None;
                parquet_io::read_range(file, i64::MIN, i64::MAX, columns, |batch| {
                    if failed.is_none()
                        && let Err(error) = each(batch)
                    {
                        failed = Some(error);
                    }
                    Ok(())
                })?;
                failed.map_or(Ok(()), Err)
            }
        }
    }

    fn first_call(&self, project: &str) -> Option<i64> {
        let shared = self.existing_project(project)?;
        let data = shared.read().ok()?;
        data.table(Table::ApiCalls).first_ts()
    }
}
