//! [`EmbeddedStore`]: the single-machine backend.

use crate::call_columns::CALL_COLUMNS;
use crate::parquet_io::{self, FileInfo};
use crate::project::{BufferedBatch, ProjectData};
use crate::schema::{self, Table};
use crate::snapshot;
use crate::source_id::SourceId;
use crate::{AppendOutcome, Error, Result, Store, StoredEvent};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use valuetrace_model::time::{DAY_MS, HOUR_MS, format_day};

/// The columns start-up reads to rebuild rollups and the dedup index.
const REBUILD_COLUMNS: [&str; CALL_COLUMNS.len() + 2] = {
    let mut columns = ["event_id"; CALL_COLUMNS.len() + 2];
    columns[1] = "received_at";
    let mut index = 0;
    while index < CALL_COLUMNS.len() {
        columns[index + 2] = CALL_COLUMNS[index];
        index += 1;
    }
    columns
};

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    /// How long minute rollups are kept (older windows use hour cells plus raw edges).
    pub minute_retention_ms: i64,
    /// How long an event id is remembered for deduplication (≥ 24 h).
    pub dedup_window_ms: i64,
    pub row_group_rows: usize,
    /// Compact a day partition once it has this many files below `compact_target_rows`.
    pub compact_min_files: usize,
    /// Files with at least this many rows are left alone by compaction.
    pub compact_target_rows: u64,
    /// Load ids received at or after this instant into the dedup index at start-up, when that
    /// is earlier than `now - dedup_window`: the WAL about to be replayed may hold events that
    /// old whose persisted copies must still be recognised.
    pub dedup_load_from_ms: Option<i64>,
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            minute_retention_ms: 48 * HOUR_MS,
            dedup_window_ms: 48 * HOUR_MS,
            row_group_rows: 16_384,
            compact_min_files: 4,
            compact_target_rows: 4_000_000,
            dedup_load_from_ms: None,
        }
    }
}

/// Statistics of one persist.
#[derive(Debug, Default, Clone, Copy)]
pub struct PersistStats {
    pub files_written: usize,
    pub rows_written: usize,
    pub files_compacted: usize,
    pub snapshots_written: usize,
}

/// Proof that buffers were moved aside for persisting; pass it to `finish_persist`.
#[must_use]
pub struct PersistTicket(());

type SharedProject = Arc<RwLock<ProjectData>>;

pub struct EmbeddedStore {
    options: StoreOptions,
    projects: RwLock<HashMap<String, SharedProject>>,
    persist_lock: Mutex<()>,
    /// Files replaced by compaction, deleted one persist later so that running scans finish.
    doomed_files: Mutex<Vec<PathBuf>>,
    file_seq: AtomicU64,
    /// Project → rows held in memory (buffered or being persisted). Kept apart from the project
    /// locks so that ingest admission can read it without waiting for an append.
    memory_rows: Mutex<HashMap<String, usize>>,
}

fn poisoned() -> Error {
    Error::Internal("a store lock was poisoned by a panic".into())
}

impl EmbeddedStore {
    /// Opens the store, rebuilding rollups and the dedup index from the persisted files.
    pub fn open(options: StoreOptions, now_ms: i64) -> Result<Self> {
        let store = EmbeddedStore {
            options,
            projects: RwLock::new(HashMap::new()),
            persist_lock: Mutex::new(()),
            doomed_files: Mutex::new(Vec::new()),
            file_seq: AtomicU64::new(now_ms as u64),
            memory_rows: Mutex::new(HashMap::new()),
        };
        let root = store.projects_dir();
        std::fs::create_dir_all(&root).map_err(|source| Error::io(&root, source))?;
        for project in list_dirs(&root)? {
            let name = file_name(&project);
            let data = store.load_project(&project, now_ms)?;
            store
                .projects
                .write()
                .map_err(|_| poisoned())?
                .insert(name, Arc::new(RwLock::new(data)));
        }
        Ok(store)
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    fn projects_dir(&self) -> PathBuf {
        self.options.data_dir.join("projects")
    }

    fn load_project(&self, dir: &Path, now_ms: i64) -> Result<ProjectData> {
        let mut data = ProjectData::new(
            self.options.minute_retention_ms,
            self.options.dedup_window_ms,
            now_ms,
        );
        let window_start = now_ms - self.options.dedup_window_ms;
        let dedup_horizon = self
            .options
            .dedup_load_from_ms
            .map_or(window_start, |from| from.min(window_start));
        // Days whose rollups came from a snapshot (it covers their calls and aggregates).
        let mut snapshot_days = std::collections::HashSet::new();
        for table in Table::ALL {
            let table_dir = dir.join(table.dir_name());
            if !table_dir.exists() {
                continue;
            }
            for day_dir in list_dirs(&table_dir)? {
                let Some(day) = parse_day_dir(&day_dir) else {
                    continue;
                };
                let infos = load_day_files(&day_dir)?;
                if table == Table::ApiCalls {
                    let aggregates_dir = self.day_dir_in(dir, Table::ApiAggregates, day);
                    let aggregate_rows: u64 = if aggregates_dir.exists() {
                        load_day_files(&aggregates_dir)?
                            .iter()
                            .map(|info| info.rows)
                            .sum()
                    } else {
                        0
                    };
                    if self.load_snapshot(&mut data, &day_dir, day, &infos, aggregate_rows) {
                        snapshot_days.insert(day);
                    }
                }
                let from_snapshot = snapshot_days.contains(&day);
                for info in infos {
                    let ids_only: &[&str] = &["event_id", "received_at"];
                    let columns: &[&str] = match table {
                        Table::ApiCalls if !from_snapshot => &REBUILD_COLUMNS,
                        Table::ApiAggregates if !from_snapshot => &[],
                        _ => ids_only,
                    };
                    // Files received before the dedup window hold no id to remember.
                    let needs_ids = info.max_received_at >= dedup_horizon;
                    let rebuild = columns.len() != 2;
                    if rebuild || needs_ids {
                        let rollups_table = if rebuild { table } else { Table::Outcomes };
                        parquet_io::read_range(&info, i64::MIN, i64::MAX, columns, |batch| {
                            data.rebuild_from_batch(rollups_table, batch, dedup_horizon)
                        })?;
                    } else {
                        data.counters.stored += info.rows;
                    }
                    // New files must not reuse a name already used (live, or listed as replaced).
                    if let Some(seq) = info
                        .path
                        .file_stem()
                        .and_then(|stem| stem.to_str()?.parse::<u64>().ok())
                    {
                        self.file_seq.fetch_max(seq + 1, Ordering::Relaxed);
                    }
                    data.table_mut(table)
                        .files
                        .entry(day)
                        .or_default()
                        .push(info);
                }
            }
        }
        Ok(data)
    }

    /// Loads the day's rollup snapshot when it covers exactly the rows of `infos`; false when
    /// the day must be rebuilt from its files instead.
    fn load_snapshot(
        &self,
        data: &mut ProjectData,
        day_dir: &Path,
        day: i64,
        infos: &[FileInfo],
        aggregate_rows: u64,
    ) -> bool {
        let rows: u64 = infos.iter().map(|info| info.rows).sum::<u64>() + aggregate_rows;
        if day + DAY_MS > data.rollups.minute_floor() {
            return false;
        }
        let Ok(bytes) = std::fs::read(day_dir.join(snapshot::FILE_NAME)) else {
            return false;
        };
        let Some(snapshot) = snapshot::decode(&bytes, &mut data.rollups.interner) else {
            tracing::warn!(dir = %day_dir.display(), "unreadable rollup snapshot; rebuilding the day from parquet");
            return false;
        };
        if snapshot.day != day || snapshot.rows != rows {
            return false;
        }
        for cell in snapshot.cells {
            data.rollups.load_cell(cell);
        }
        data.table_mut(Table::ApiCalls)
            .snapshot_rows
            .insert(day, rows);
        true
    }

    fn day_dir_in(&self, project_dir: &Path, table: Table, day: i64) -> PathBuf {
        project_dir
            .join(table.dir_name())
            .join(format!("day={}", format_day(day)))
    }

    /// The project's data, created on first use.
    pub fn project(&self, project: &str) -> Result<SharedProject> {
        if let Some(data) = self.projects.read().map_err(|_| poisoned())?.get(project) {
            return Ok(data.clone());
        }
        let mut projects = self.projects.write().map_err(|_| poisoned())?;
        let now = wall_clock_ms();
        let data = projects.entry(project.to_owned()).or_insert_with(|| {
            Arc::new(RwLock::new(ProjectData::new(
                self.options.minute_retention_ms,
                self.options.dedup_window_ms,
                now,
            )))
        });
        Ok(data.clone())
    }

    /// The project's data if it has any.
    pub fn existing_project(&self, project: &str) -> Option<SharedProject> {
        self.projects.read().ok()?.get(project).cloned()
    }

    /// Moves every buffer aside (still visible to queries). Only one persist (`begin_persist`
    /// then `finish_persist`) may run at a time; the server's pipeline serializes them. Call while no append is in flight
    /// between a WAL append and `append` (the server holds its ingest gate), right after rotating
    /// the WAL, so that the rotated segments hold exactly what is being persisted.
    pub fn begin_persist(&self) -> Result<PersistTicket> {
        let projects: Vec<SharedProject> = self
            .projects
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect();
        for project in projects {
            let mut data = project.write().map_err(|_| poisoned())?;
            for table in Table::ALL {
                let table_data = data.table_mut(table);
                let buffer = std::mem::take(&mut table_data.buffer);
                for (day, batches) in buffer {
                    table_data
                        .persisting
                        .entry(day)
                        .or_default()
                        .extend(batches);
                }
                table_data.buffered_rows = 0;
            }
        }
        Ok(PersistTicket(()))
    }

    /// Writes what `begin_persist` moved aside to Parquet. When this returns Ok, those rows are
    /// durable in Parquet and the WAL segments rotated before `begin_persist` may be deleted.
    /// Deletes the files that compactions replaced. `finish_persist` does it one persist after
    /// the compaction (scans that captured the old files have finished by then); a server that
    /// stops calls it after its last persist, when no scan can be running, so that external
    /// readers of the Parquet directory never see a row twice after a clean stop.
    pub fn delete_replaced_files(&self) -> Result<()> {
        for path in std::mem::take(&mut *self.doomed_files.lock().map_err(|_| poisoned())?) {
            if let Err(source) = std::fs::remove_file(&path)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::io(&path, source));
            }
        }
        Ok(())
    }

    pub fn finish_persist(&self, _ticket: PersistTicket, now_ms: i64) -> Result<PersistStats> {
        let _guard = self.persist_lock.lock().map_err(|_| poisoned())?;
        self.delete_replaced_files()?;
        let mut stats = PersistStats::default();
        let projects: Vec<(String, SharedProject)> = self
            .projects
            .read()
            .map_err(|_| poisoned())?
            .iter()
            .map(|(name, data)| (name.clone(), data.clone()))
            .collect();
        for (name, project) in projects {
            for table in Table::ALL {
                let pending: BTreeMap<i64, Vec<BufferedBatch>> = project
                    .read()
                    .map_err(|_| poisoned())?
                    .table(table)
                    .persisting
                    .clone();
                for (day, batches) in pending {
                    let dir = self.day_dir(&name, table, day);
                    std::fs::create_dir_all(&dir).map_err(|source| Error::io(&dir, source))?;
                    let all: Vec<_> = batches.iter().map(|b| b.batch.clone()).collect();
                    let path = dir.join(format!("{:020}.parquet", self.next_seq()));
                    let info =
                        parquet_io::write_sorted(&path, &all, self.options.row_group_rows, &[])?;
                    stats.files_written += 1;
                    stats.rows_written += info.rows as usize;
                    let mut data = project.write().map_err(|_| poisoned())?;
                    let table_data = data.table_mut(table);
                    table_data.persisting.remove(&day);
                    table_data.files.entry(day).or_default().push(info);
                    drop(data);
                    let written: usize = batches.iter().map(|b| b.batch.num_rows()).sum();
                    self.count_memory_rows(&name, -(written as isize));
                }
                stats.files_compacted += self.compact(&name, &project, table)?;
            }
            stats.snapshots_written += self.snapshot_quiet_days(&name, &project)?;
            let mut data = project.write().map_err(|_| poisoned())?;
            data.dedup.prune(now_ms);
            data.rollups.prune_minutes(now_ms);
        }
        Ok(stats)
    }

    /// Writes rollup snapshots for `api_calls` days that lie wholly before the minute floor (no
    /// minute cells to keep), have nothing buffered or being persisted, and whose files hold rows
    /// the current snapshot does not cover. At most a few days per persist to bound the work.
    fn snapshot_quiet_days(&self, name: &str, project: &SharedProject) -> Result<usize> {
        const DAYS_PER_PERSIST: usize = 4;
        let mut work = Vec::new();
        {
            let data = project.read().map_err(|_| poisoned())?;
            let floor = data.rollups.minute_floor();
            let table = data.table(Table::ApiCalls);
            let aggregates = data.table(Table::ApiAggregates);
            for (&day, files) in &table.files {
                // A snapshot covers the day's calls and client aggregates (both feed rollups).
                let rows: u64 = files
                    .iter()
                    .chain(aggregates.files.get(&day).into_iter().flatten())
                    .map(|file| file.rows)
                    .sum();
                let quiet = [table, aggregates]
                    .iter()
                    .all(|t| !t.buffer.contains_key(&day) && !t.persisting.contains_key(&day));
                let stale = table.snapshot_rows.get(&day) != Some(&rows);
                if day + DAY_MS <= floor && quiet && stale {
                    let cells = data.rollups.day_cells(day);
                    work.push((
                        day,
                        rows,
                        snapshot::encode(day, rows, &cells, &data.rollups.interner),
                    ));
                    if work.len() == DAYS_PER_PERSIST {
                        break;
                    }
                }
            }
        }
        let written = work.len();
        for (day, rows, bytes) in work {
            snapshot::write(&self.day_dir(name, Table::ApiCalls, day), &bytes)?;
            project
                .write()
                .map_err(|_| poisoned())?
                .table_mut(Table::ApiCalls)
                .snapshot_rows
                .insert(day, rows);
        }
        Ok(written)
    }

    fn compact(&self, name: &str, project: &SharedProject, table: Table) -> Result<usize> {
        let candidates: Vec<(i64, Vec<FileInfo>)> = project
            .read()
            .map_err(|_| poisoned())?
            .table(table)
            .files
            .iter()
            .map(|(day, files)| {
                // Size-tiered: only files below the target size are merged, so a busy day's big
                // files are not rewritten again and again (bounded write amplification).
                let small: Vec<FileInfo> = files
                    .iter()
                    .filter(|file| file.rows < self.options.compact_target_rows)
                    .cloned()
                    .collect();
                (*day, small)
            })
            .filter(|(_, small)| small.len() >= self.options.compact_min_files)
            .collect();
        let mut compacted = 0;
        for (day, files) in candidates {
            let mut batches = Vec::new();
            for file in &files {
                parquet_io::read_range(file, i64::MIN, i64::MAX, &[], |batch| {
                    batches.push(crate::schema::conform(table, batch)?);
                    Ok(())
                })?;
            }
            let replaces: Vec<String> = files.iter().map(|file| file_name(&file.path)).collect();
            let path = self
                .day_dir(name, table, day)
                .join(format!("{:020}.parquet", self.next_seq()));
            let info =
                parquet_io::write_sorted(&path, &batches, self.options.row_group_rows, &replaces)?;
            {
                let mut data = project.write().map_err(|_| poisoned())?;
                let day_files = data.table_mut(table).files.entry(day).or_default();
                day_files.retain(|file| !replaces.contains(&file_name(&file.path)));
                day_files.push(info);
            }
            // Queries that captured the old files keep reading them: delete at the next persist.
            self.doomed_files
                .lock()
                .map_err(|_| poisoned())?
                .extend(files.iter().map(|file| file.path.clone()));
            compacted += files.len();
        }
        Ok(compacted)
    }

    fn next_seq(&self) -> u64 {
        self.file_seq.fetch_add(1, Ordering::Relaxed)
    }

    fn day_dir(&self, project: &str, table: Table, day: i64) -> PathBuf {
        self.projects_dir()
            .join(project)
            .join(table.dir_name())
            .join(format!("day={}", format_day(day)))
    }

    /// Rows buffered in memory across projects (a persist trigger).
    pub fn buffered_rows(&self) -> usize {
        let Ok(projects) = self.projects.read() else {
            return 0;
        };
        projects
            .values()
            .filter_map(|project| {
                project.read().ok().map(|data| {
                    Table::ALL
                        .iter()
                        .map(|&t| data.table(t).buffered_rows)
                        .sum::<usize>()
                })
            })
            .sum()
    }

    /// Rows held in memory (buffered, or being persisted): by all projects, and by `project`.
    /// What ingest backpressure bounds; one short lock, never waits for an append.
    pub fn rows_in_memory(&self, project: &str) -> (usize, usize) {
        let rows = self.memory_rows.lock().unwrap_or_else(|p| p.into_inner());
        (rows.values().sum(), rows.get(project).copied().unwrap_or(0))
    }

    /// The most rows one project holds in memory.
    pub fn largest_rows_in_memory(&self) -> usize {
        let rows = self.memory_rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.values().copied().max().unwrap_or(0)
    }

    fn count_memory_rows(&self, project: &str, delta: isize) {
        let mut rows = self.memory_rows.lock().unwrap_or_else(|p| p.into_inner());
        match rows.get_mut(project) {
            Some(count) => *count = count.saturating_add_signed(delta),
            None => {
                rows.insert(project.to_owned(), delta.max(0) as usize);
            }
        }
    }

    pub fn project_names(&self) -> Vec<String> {
        self.projects
            .read()
            .map(|projects| projects.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Store for EmbeddedStore {
    fn append(&self, project: &str, events: Vec<StoredEvent>) -> Result<AppendOutcome> {
        let shared = self.project(project)?;
        let mut data = shared.write().map_err(|_| poisoned())?;
        let mut fresh = Vec::with_capacity(events.len());
        let mut outcome = AppendOutcome::default();
        for event in events {
            if data.dedup.insert(event.event.event_id(), event.received_at) {
                fresh.push(event);
            } else {
                outcome.duplicates += 1;
            }
        }
        outcome.stored = fresh.len();
        data.counters.stored += fresh.len() as u64;
        data.counters.duplicates += outcome.duplicates as u64;
        data.roll_up(&fresh);
        let mut by_partition: BTreeMap<(i64, u8), Vec<&StoredEvent>> = BTreeMap::new();
        for event in &fresh {
            let day = event.event.timestamp().div_euclid(DAY_MS) * DAY_MS;
            let table = Table::of(&event.event);
            by_partition
                .entry((day, table as u8))
                .or_default()
                .push(event);
        }
        for ((day, table), rows) in by_partition {
            let table = Table::ALL[usize::from(table)];
            let batch = schema::to_batch(table, &rows)?;
            let (min_ts, max_ts) = parquet_io::timestamp_range(&batch)?.unwrap_or((day, day));
            self.count_memory_rows(project, batch.num_rows() as isize);
            let table_data = data.table_mut(table);
            table_data.buffered_rows += batch.num_rows();
            table_data
                .buffer
                .entry(day)
                .or_default()
                .push(BufferedBatch {
                    source: SourceId::fresh(),
                    batch,
                    min_ts,
                    max_ts,
                });
        }
        Ok(outcome)
    }

    fn contains_any<'a>(
        &self,
        project: &str,
        event_ids: impl Iterator<Item = &'a str>,
    ) -> Vec<bool> {
        let Some(shared) = self.existing_project(project) else {
            return event_ids.map(|_| false).collect();
        };
        let Ok(data) = shared.read() else {
            return event_ids.map(|_| false).collect();
        };
        event_ids.map(|id| data.dedup.contains(id)).collect()
    }

    fn contains(&self, project: &str, event_id: &str) -> bool {
        self.existing_project(project)
            .and_then(|shared| shared.read().ok().map(|data| data.dedup.contains(event_id)))
            .unwrap_or(false)
    }
}

/// Lists `*.parquet` files of a day directory, deleting temp files and finishing compactions.
fn load_day_files(dir: &Path) -> Result<Vec<FileInfo>> {
    let mut infos = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::io(dir, source))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = file_name(&path);
        if name.ends_with(".tmp") {
            let _ = std::fs::remove_file(&path);
        } else if name.ends_with(".parquet") {
            match parquet_io::read_info(&path) {
                Ok(info) => infos.push(info),
                Err(error) => {
                    tracing::error!(%error, path = %path.display(), "unreadable parquet file skipped")
                }
            }
        }
    }
    let replaced: Vec<String> = infos
        .iter()
        .flat_map(|info| info.replaces.clone())
        .collect();
    for info in &infos {
        if replaced.contains(&file_name(&info.path)) {
            std::fs::remove_file(&info.path).map_err(|source| Error::io(&info.path, source))?;
        }
    }
    infos.retain(|info| !replaced.contains(&file_name(&info.path)));
    Ok(infos)
}

fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::io(dir, source))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse_day_dir(dir: &Path) -> Option<i64> {
    let name = file_name(dir);
    let day = name.strip_prefix("day=")?;
    valuetrace_model::time::parse_rfc3339(&format!("{day}T00:00:00Z"))
}

/// Milliseconds since the epoch by the system clock.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
