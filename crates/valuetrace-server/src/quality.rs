//! The data-quality ledger and `GET /api/v1/projects/{project}/data-quality`.
//!
//! Per project and hour of *receive* time (epoch ms floored to the hour): events accepted (by
//! type), duplicates, rejections by reason (the codes of `valuetrace_ingest_rejected_events_total`),
//! clamped timestamps, skew corrections (count, exact max, a log histogram of the absolute
//! correction for the median), late events, and what accepted events carried: `sample_rate` of
//! `api_call`s (to hundredths), `schema_version`, `sdk`.
//!
//! Ingest fills a [`QualityDelta`] per request without a lock (all events of a request share one
//! receive time, hence one hour) and merges it with one lock ([`QualityLedger::record`]). Answers
//! and saves hold that lock only to copy pointers to the hours they read.
//!
//! Bounded: at most [`RETENTION_HOURS`] hours per project (older hours are dropped when a new one
//! starts and at load), at most [`MAX_SDKS`] SDK names per hour (the rest count as `(other)`),
//! at most 100 sample-rate buckets, and reject reasons, event types and schema versions come from
//! small fixed sets.
//!
//! Written as JSON to `<data_dir>/quality.json` (temporary file, fsync, rename, directory fsync)
//! with every persist and at shutdown ([`crate::AppState::persist`]), read at start. An unreadable
//! file is logged, moved aside to `quality.json.corrupt`, and the ledger starts empty. Counts
//! recorded since the last persist are lost on a crash (the events themselves are in the WAL).

use crate::AppState;
use crate::error::ApiError;
use crate::query_api;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use valuetrace_model::Event;

pub const HOUR_MS: i64 = 3_600_000;
/// Hours kept per project: 90 days.
pub const RETENTION_HOURS: i64 = 90 * 24;
/// An event received more than this after its (corrected) timestamp is late.
pub const LATE_AFTER_MS: i64 = 5 * 60_000;
/// Distinct SDK names kept per hour (and shown in an answer); further ones count as [`OTHER_SDK`].
pub const MAX_SDKS: usize = 32;
pub const OTHER_SDK: &str = "(other)";
const FORMAT_VERSION: u32 = 1;
/// Growth factor of the skew histogram: bucket `b ≥ 1` holds `[γ^(b-1), γ^b)` ms, so a median
/// read from it is within 2% of the exact one (and clamped to the exact min and max).
const SKEW_GAMMA: f64 = 1.04;

/// The hour bucket of `ms`: floored to the hour (also before 1970).
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

fn skew_bucket(abs_ms: u64) -> u32 {
    if abs_ms == 0 {
        return 0;
    }
    ((abs_ms as f64).ln() / SKEW_GAMMA.ln()).floor() as u32 + 1
}

/// The representative value of a skew bucket (the geometric middle of its bounds).
fn skew_bucket_value(bucket: u32) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    SKEW_GAMMA.powf(f64::from(bucket) - 0.5)
}

/// A sample rate as hundredths (`0.5` → 50); absent (not sampled) is 100, a rate below 0.015
/// counts as 0.01.
fn rate_bucket(rate: Option<f64>) -> u32 {
    rate.map_or(100, |rate| ((rate * 100.0).round() as u32).clamp(1, 100))
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Adds `count` to `key` (allocates the key only the first time).
fn bump(map: &mut BTreeMap<String, u64>, key: &str, count: u64) {
    match map.get_mut(key) {
        Some(value) => *value += count,
        None => {
            map.insert(key.to_owned(), count);
        }
    }
}

/// [`bump`], but a new key beyond `cap` keys counts as [`OTHER_SDK`].
fn bump_capped(map: &mut BTreeMap<String, u64>, key: &str, count: u64, cap: usize) {
    if map.contains_key(key) || map.len() < cap {
        bump(map, key, count);
    } else {
        bump(map, OTHER_SDK, count);
    }
}

fn add_all<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, count) in from {
        match into.get_mut(key) {
            Some(value) => *value += count,
            None => {
                into.insert(key.clone(), *count);
            }
        }
    }
}

/// The counters of one project and hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HourCounters {
    #[serde(skip_serializing_if = "is_zero")]
    pub accepted: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub duplicates: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// Accepted events whose timestamp lay too far ahead and was set to the receive time.
    #[serde(skip_serializing_if = "is_zero")]
    pub clamped: u64,
    /// Accepted events received more than [`LATE_AFTER_MS`] after their corrected timestamp.
    #[serde(skip_serializing_if = "is_zero")]
    pub late: u64,
    /// Accepted events whose timestamp was moved by `received_at - sent_at` (≠ 0).
    #[serde(skip_serializing_if = "is_zero")]
    pub skew_corrected: u64,
    /// Smallest and largest absolute correction, ms (meaningful when `skew_corrected > 0`).
    #[serde(skip_serializing_if = "is_zero")]
    pub skew_min_abs_ms: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub skew_max_abs_ms: u64,
    /// Absolute corrections by `skew_bucket` (log-spaced).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub skew_buckets: BTreeMap<u32, u64>,
    /// Accepted `api_call`s with a `sample_rate` below 1.
    #[serde(skip_serializing_if = "is_zero")]
    pub sampled: u64,
    /// Accepted events by `type`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_type: BTreeMap<String, u64>,
    /// Rejected events by reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rejects: BTreeMap<String, u64>,
    /// Accepted `api_call`s by sample rate in hundredths (absent counts as 100).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sample_rates: BTreeMap<u32, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub schema_versions: BTreeMap<u32, u64>,
    /// Accepted events by `sdk` (events without one are not counted here).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sdks: BTreeMap<String, u64>,
}

impl HourCounters {
    /// Adds `other`; SDK names beyond `sdk_cap` count as [`OTHER_SDK`].
    fn add_counts(&mut self, other: &HourCounters, sdk_cap: usize) {
        if other.skew_corrected > 0 {
            self.skew_min_abs_ms = if self.skew_corrected == 0 {
                other.skew_min_abs_ms
            } else {
                self.skew_min_abs_ms.min(other.skew_min_abs_ms)
            };
            self.skew_max_abs_ms = self.skew_max_abs_ms.max(other.skew_max_abs_ms);
        }
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.clamped += other.clamped;
        self.late += other.late;
        self.skew_corrected += other.skew_corrected;
        self.sampled += other.sampled;
        add_all(&mut self.skew_buckets, &other.skew_buckets);
        add_all(&mut self.by_type, &other.by_type);
        add_all(&mut self.rejects, &other.rejects);
        add_all(&mut self.sample_rates, &other.sample_rates);
        add_all(&mut self.schema_versions, &other.schema_versions);
        for (sdk, count) in &other.sdks {
            bump_capped(&mut self.sdks, sdk, *count, sdk_cap);
        }
    }

    fn record_skew(&mut self, abs_ms: u64) {
        self.skew_min_abs_ms = if self.skew_corrected == 0 {
            abs_ms
        } else {
            self.skew_min_abs_ms.min(abs_ms)
        };
        self.skew_max_abs_ms = self.skew_max_abs_ms.max(abs_ms);
        self.skew_corrected += 1;
        *self.skew_buckets.entry(skew_bucket(abs_ms)).or_default() += 1;
    }

    /// The lower median of the absolute corrections (within 2%, clamped to the exact min and max).
    fn skew_median_abs_ms(&self) -> u64 {
        let total: u64 = self.skew_buckets.values().sum();
        if total == 0 {
            return 0;
        }
        let rank = (total - 1) / 2;
        let mut seen = 0;
        for (&bucket, &count) in &self.skew_buckets {
            seen += count;
            if seen > rank {
                let value = skew_bucket_value(bucket).round() as u64;
                return value.clamp(self.skew_min_abs_ms, self.skew_max_abs_ms);
            }
        }
        self.skew_max_abs_ms
    }
}

/// What one ingest request adds to the ledger; built without a lock, merged with one.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityDelta {
    received_at: i64,
    counters: HourCounters,
}

impl QualityDelta {
    pub fn new(received_at: i64) -> Self {
        QualityDelta {
            received_at,
            counters: HourCounters::default(),
        }
    }

    /// An event about to be stored: its type, its corrections and what it carried.
    pub fn event(&mut self, event: &Event, skew_ms: i64, clamped: bool) {
        let counters = &mut self.counters;
        let (kind, version, sdk) = match event {
            Event::ApiCall(call) => {
                *counters
                    .sample_rates
                    .entry(rate_bucket(call.sample_rate))
                    .or_default() += 1;
                if call.sample_rate.is_some_and(|rate| rate < 1.0) {
                    counters.sampled += 1;
                }
                ("api_call", call.schema_version, call.sdk.as_deref())
            }
            Event::Outcome(outcome) => ("outcome", outcome.schema_version, None),
            Event::ApiAggregate(aggregate) => (
                "api_aggregate",
                aggregate.schema_version,
                aggregate.sdk.as_deref(),
            ),
        };
        bump(&mut counters.by_type, kind, 1);
        *counters.schema_versions.entry(version).or_default() += 1;
        if let Some(sdk) = sdk {
            bump_capped(&mut counters.sdks, sdk, 1, MAX_SDKS);
        }
        if clamped {
            counters.clamped += 1;
        }
        if skew_ms != 0 {
            counters.record_skew(skew_ms.unsigned_abs());
        }
        if self.received_at.saturating_sub(event.timestamp()) > LATE_AFTER_MS {
            counters.late += 1;
        }
    }

    /// The request's answer: events stored, duplicates, and the reasons of the rejected ones.
    pub fn finish<'a>(
        &mut self,
        accepted: usize,
        duplicates: usize,
        rejected: impl IntoIterator<Item = &'a str>,
    ) {
        self.counters.accepted = accepted as u64;
        self.counters.duplicates = duplicates as u64;
        for reason in rejected {
            self.counters.rejected += 1;
            bump(&mut self.counters.rejects, reason, 1);
        }
    }

    fn is_empty(&self) -> bool {
        let counters = &self.counters;
        counters.accepted == 0
            && counters.duplicates == 0
            && counters.rejected == 0
            && counters.by_type.is_empty()
    }
}

/// A project's hours. Shared counters: an answer or a save takes the hours it needs under the
/// lock as pointer copies and reads them after releasing it; ingest then copies only the one hour
/// it changes while a reader still holds it (`Arc::make_mut`).
type ProjectHours = BTreeMap<i64, Arc<HourCounters>>;

/// The persisted form: `{"version": 1, "projects": {project: {hour_ms: counters}}}`.
#[derive(Deserialize)]
struct LedgerFile {
    version: u32,
    projects: BTreeMap<String, BTreeMap<i64, HourCounters>>,
}

/// [`LedgerFile`] for writing, borrowing a snapshot.
#[derive(Serialize)]
struct LedgerFileRef<'a> {
    version: u32,
    projects: BTreeMap<&'a str, BTreeMap<i64, &'a HourCounters>>,
}

#[derive(Default)]
struct Ledger {
    projects: BTreeMap<String, ProjectHours>,
    /// Changes recorded, and how many of them the file holds.
    changes: u64,
    saved: u64,
}

/// Per-project, per-hour ingest quality counters (module docs).
pub struct QualityLedger {
    path: Option<PathBuf>,
    ledger: Mutex<Ledger>,
    /// One save at a time (a persist still running when shutdown saves).
    saving: Mutex<()>,
}

/// Drops the hours more than [`RETENTION_HOURS`] before the newest of `now` and the newest hour.
fn prune(hours: &mut ProjectHours, now: i64) {
    let newest = hours
        .last_key_value()
        .map_or(hour_of(now), |(&hour, _)| hour.max(hour_of(now)));
    let cutoff = newest - (RETENTION_HOURS - 1) * HOUR_MS;
    if hours
        .first_key_value()
        .is_some_and(|(&oldest, _)| oldest < cutoff)
    {
        *hours = hours.split_off(&cutoff);
    }
}

impl QualityLedger {
    /// A ledger that is never written to disk.
    pub fn in_memory() -> Self {
        QualityLedger {
            path: None,
            ledger: Mutex::new(Ledger::default()),
            saving: Mutex::new(()),
        }
    }

    /// Reads the ledger at `path` (none: empty). An unreadable file is logged and set aside as
    /// `<path>.corrupt`; the ledger then starts empty. Hours beyond the retention are dropped.
    pub fn open(path: PathBuf, now: i64) -> Self {
        let mut projects = match std::fs::read(&path) {
            Ok(bytes) => match parse(&bytes) {
                Ok(projects) => projects,
                Err(error) => {
                    let aside = path.with_extension("json.corrupt");
                    let moved = std::fs::rename(&path, &aside);
                    tracing::error!(
                        path = %path.display(),
                        %error,
                        moved_to = %aside.display(),
                        moved = moved.is_ok(),
                        "data-quality ledger unreadable; starting empty"
                    );
                    BTreeMap::new()
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "cannot read the data-quality ledger; starting empty");
                BTreeMap::new()
            }
        };
        for hours in projects.values_mut() {
            prune(hours, now);
        }
        projects.retain(|_, hours| !hours.is_empty());
        QualityLedger {
            path: Some(path),
            ledger: Mutex::new(Ledger {
                projects,
                ..Ledger::default()
            }),
            saving: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Merges one request's counts (one lock).
    pub fn record(&self, project: &str, delta: QualityDelta) {
        if delta.is_empty() {
            return;
        }
        let hour = hour_of(delta.received_at);
        let mut ledger = self.lock();
        if !ledger.projects.contains_key(project) {
            ledger
                .projects
                .insert(project.to_owned(), ProjectHours::new());
        }
        let hours = ledger.projects.get_mut(project).expect("inserted just now");
        match hours.get_mut(&hour) {
            Some(counters) => Arc::make_mut(counters).add_counts(&delta.counters, MAX_SDKS),
            None => {
                hours.insert(hour, Arc::new(delta.counters));
                prune(hours, delta.received_at);
            }
        }
        ledger.changes += 1;
    }

    /// Hours kept for `project` (tests and diagnostics).
    pub fn hours(&self, project: &str) -> Vec<i64> {
        self.lock()
            .projects
            .get(project)
            .map(|hours| hours.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Writes the ledger atomically if it changed since the last save; `Ok(false)`: unchanged
    /// (or in memory only).
    pub fn save(&self) -> std::io::Result<bool> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let _one_at_a_time = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let (snapshot, changes) = {
            let ledger = self.lock();
            if ledger.changes == ledger.saved {
                return Ok(false);
            }
            (ledger.projects.clone(), ledger.changes)
        };
        let file = LedgerFileRef {
            version: FORMAT_VERSION,
            projects: snapshot
                .iter()
                .map(|(project, hours)| {
                    let hours = hours
                        .iter()
                        .map(|(&hour, counters)| (hour, counters.as_ref()))
                        .collect();
                    (project.as_str(), hours)
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temporary = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut handle = std::fs::File::create(&temporary)?;
            handle.write_all(&bytes)?;
            handle.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()?;
        let mut ledger = self.lock();
        ledger.saved = ledger.saved.max(changes);
        Ok(true)
    }

    /// [`QualityLedger::save`], logging a failure (the next persist tries again).
    pub fn save_logged(&self) {
        if let Err(error) = self.save() {
            tracing::error!(%error, "cannot write the data-quality ledger; will retry at the next persist");
        }
    }

    /// The answer for `project` over the hours that overlap `[from, to)`.
    pub fn answer(&self, project: &str, from: i64, to: i64) -> DataQualityAnswer {
        let snapshot: Vec<(i64, Arc<HourCounters>)> = {
            let ledger = self.lock();
            match ledger.projects.get(project) {
                Some(project_hours) if hour_of(from) < to => project_hours
                    .range(hour_of(from)..to)
                    .map(|(&hour, counters)| (hour, counters.clone()))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut total = HourCounters::default();
        let mut hours = Vec::with_capacity(snapshot.len());
        for (hour, counters) in snapshot {
            total.add_counts(&counters, usize::MAX);
            hours.push(HourRow {
                hour,
                accepted: counters.accepted,
                duplicates: counters.duplicates,
                rejected: counters.rejected,
                late: counters.late,
                skew_corrected: counters.skew_corrected,
                clamped: counters.clamped,
                accepted_by_type: counters.by_type.clone(),
            });
        }
        let by_count_desc = |rows: &mut Vec<(String, u64)>| {
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        };
        let mut reasons: Vec<(String, u64)> = total.rejects.clone().into_iter().collect();
        by_count_desc(&mut reasons);
        let mut types: Vec<(String, u64)> = total.by_type.clone().into_iter().collect();
        by_count_desc(&mut types);
        // The most frequent names, then `(other)` (names capped per hour, and the rest here).
        let mut other = total.sdks.remove(OTHER_SDK).unwrap_or(0);
        let mut sdks: Vec<(String, u64)> = std::mem::take(&mut total.sdks).into_iter().collect();
        by_count_desc(&mut sdks);
        if sdks.len() > MAX_SDKS {
            other += sdks.drain(MAX_SDKS..).map(|(_, count)| count).sum::<u64>();
        }
        if other > 0 {
            sdks.push((OTHER_SDK.to_owned(), other));
        }
        let api_calls: u64 = total.sample_rates.values().sum();
        DataQualityAnswer {
            project: project.to_owned(),
            from,
            to,
            totals: Totals {
                received: total.accepted + total.duplicates + total.rejected,
                accepted: total.accepted,
                duplicates: total.duplicates,
                rejected: total.rejected,
                clamped: total.clamped,
                skew_corrected: total.skew_corrected,
                late: total.late,
                sampled: total.sampled,
            },
            rejects_by_reason: reasons
                .into_iter()
                .map(|(reason, events)| ReasonCount { reason, events })
                .collect(),
            hours,
            events_by_type: types
                .into_iter()
                .map(|(kind, events)| TypeCount { kind, events })
                .collect(),
            skew: SkewSummary {
                corrected: total.skew_corrected,
                median_abs_ms: total.skew_median_abs_ms(),
                max_abs_ms: total.skew_max_abs_ms,
            },
            sample_rates: total
                .sample_rates
                .iter()
                .rev()
                .map(|(&hundredths, &events)| RateCount {
                    rate: f64::from(hundredths) / 100.0,
                    events,
                })
                .collect(),
            sampled_share: if api_calls == 0 {
                0.0
            } else {
                total.sampled as f64 / api_calls as f64
            },
            schema_versions: total
                .schema_versions
                .iter()
                .map(|(&version, &events)| VersionCount { version, events })
                .collect(),
            sdks: sdks
                .into_iter()
                .map(|(sdk, events)| SdkCount { sdk, events })
                .collect(),
        }
    }
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, ProjectHours>, String> {
    let file: LedgerFile = serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
    if file.version != FORMAT_VERSION {
        return Err(format!(
            "unknown version {} (this build reads {FORMAT_VERSION})",
            file.version
        ));
    }
    Ok(file
        .projects
        .into_iter()
        .map(|(project, hours)| {
            let hours = hours
                .into_iter()
                .map(|(hour, counters)| (hour, Arc::new(counters)))
                .collect();
            (project, hours)
        })
        .collect())
}

/// `GET /api/v1/projects/{project}/data-quality`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataQualityAnswer {
    pub project: String,
    /// The window asked for, epoch ms; the counts cover the whole receive hours overlapping it.
    pub from: i64,
    pub to: i64,
    pub totals: Totals,
    /// Most frequent first.
    pub rejects_by_reason: Vec<ReasonCount>,
    /// Hours with any event, oldest first.
    pub hours: Vec<HourRow>,
    /// Accepted events by type, most frequent first.
    pub events_by_type: Vec<TypeCount>,
    pub skew: SkewSummary,
    /// Accepted `api_call`s by sample rate (hundredths; absent = 1.0), highest rate first.
    pub sample_rates: Vec<RateCount>,
    /// Share of accepted `api_call`s with a `sample_rate` below 1 (0 without api_calls).
    pub sampled_share: f64,
    /// Accepted events by `schema_version`, ascending.
    pub schema_versions: Vec<VersionCount>,
    /// Accepted events by `sdk` (only those that carry one), most frequent first; at most
    /// [`MAX_SDKS`] names, then `(other)` for the rest.
    pub sdks: Vec<SdkCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// accepted + duplicates + rejected.
    pub received: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub clamped: u64,
    pub skew_corrected: u64,
    pub late: u64,
    pub sampled: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    /// Start of the receive hour, epoch ms.
    pub hour: i64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub late: u64,
    pub skew_corrected: u64,
    pub clamped: u64,
    pub accepted_by_type: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeCount {
    #[serde(rename = "type")]
    pub kind: String,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkewSummary {
    pub corrected: u64,
    /// Median absolute correction, ms (within 2%); 0 when none.
    pub median_abs_ms: u64,
    /// Largest absolute correction, ms (exact); 0 when none.
    pub max_abs_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateCount {
    pub rate: f64,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionCount {
    pub version: u32,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdkCount {
    pub sdk: String,
    pub events: u64,
}

/// `GET /api/v1/projects/{project}/data-quality?since=24h` (or `from`/`to`): read key rules,
/// window and parameter errors as the other query endpoints.
pub async fn data_quality(
    State(state): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<valuetrace_facts::money::WithMoney<DataQualityAnswer>>, ApiError> {
    query_api::authorize(&state, &headers, &project)?;
    query_api::check_known(&params, &["from", "to", "since"])?;
    let now = (state.clock)();
    let (from, to) = query_api::window(&params, now)?;
    let answer = state.quality.answer(&project, from, to);
    // Values in a currency without a rate: counted here, left out of every money figure.
    let question = valuetrace_facts::Question {
        project: project.clone(),
        from,
        to,
        now,
        slice: Default::default(),
        by: None,
    };
    let config = crate::analysis(&state, &project);
    let (insights, store) = (state.insights.clone(), state.pipeline.store().clone());
    let money = tokio::task::spawn_blocking(move || insights.money(&store, &question, &config))
        .await
        .map_err(|error| ApiError::internal(&error))??;
    Ok(Json(valuetrace_facts::money::WithMoney { answer, money }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valuetrace_model::{ApiCall, Outcome};

    const T: i64 = 1_795_256_130_123; // 2026-11-21T10:15:30.123Z

    fn call(timestamp: i64, sample_rate: Option<f64>, sdk: Option<&str>) -> Event {
        Event::ApiCall(ApiCall {
            schema_version: 1,
            event_id: "e".into(),
            timestamp,
            sample_rate,
            sdk: sdk.map(str::to_owned),
            ..ApiCall::default()
        })
    }

    fn delta_at(received_at: i64, accepted: usize) -> QualityDelta {
        let mut delta = QualityDelta::new(received_at);
        for _ in 0..accepted {
            delta.event(&call(received_at, None, None), 0, false);
        }
        delta.finish(accepted, 0, []);
        delta
    }

    #[test]
    fn hours_are_floored_receive_times() {
        assert_eq!(hour_of(T), 1_795_255_200_000);
        assert_eq!(hour_of(1_795_255_200_000), 1_795_255_200_000);
        assert_eq!(hour_of(1_795_255_200_000 - 1), 1_795_255_200_000 - HOUR_MS);
        assert_eq!(hour_of(-1), -HOUR_MS);
        assert_eq!(hour_of(0), 0);

        let ledger = QualityLedger::in_memory();
        let hour = hour_of(T);
        ledger.record("shop", delta_at(hour, 1));
        ledger.record("shop", delta_at(hour + HOUR_MS - 1, 2));
        ledger.record("shop", delta_at(hour + HOUR_MS, 4));
        ledger.record("other", delta_at(hour, 8));
        assert_eq!(ledger.hours("shop"), [hour, hour + HOUR_MS]);
        let answer = ledger.answer("shop", hour, hour + 2 * HOUR_MS);
        let accepted: Vec<(i64, u64)> = answer.hours.iter().map(|h| (h.hour, h.accepted)).collect();
        assert_eq!(accepted, [(hour, 3), (hour + HOUR_MS, 4)]);
        assert_eq!(answer.totals.accepted, 7);
        // A window inside an hour covers that whole hour; `to` is exclusive.
        let inside = ledger.answer("shop", hour + 10, hour + 20);
        assert_eq!(inside.totals.accepted, 3);
        assert_eq!(
            ledger.answer("shop", hour - HOUR_MS, hour).totals.accepted,
            0
        );
        assert_eq!(ledger.answer("nobody", 0, i64::MAX).totals.received, 0);
    }

    #[test]
    fn at_most_ninety_days_of_hours_are_kept() {
        let ledger = QualityLedger::in_memory();
        let start = hour_of(T);
        for hour in 0..RETENTION_HOURS + 50 {
            ledger.record("shop", delta_at(start + hour * HOUR_MS + 5, 1));
        }
        let hours = ledger.hours("shop");
        assert_eq!(hours.len() as i64, RETENTION_HOURS);
        let newest = start + (RETENTION_HOURS + 49) * HOUR_MS;
        assert_eq!(*hours.last().unwrap(), newest);
        assert_eq!(hours[0], newest - (RETENTION_HOURS - 1) * HOUR_MS);
        // A late request for a dropped hour is kept only until the next new hour prunes it;
        // never more than the bound after it.
        ledger.record("shop", delta_at(start, 1));
        ledger.record("shop", delta_at(newest + HOUR_MS, 1));
        assert_eq!(ledger.hours("shop").len() as i64, RETENTION_HOURS);
        assert!(!ledger.hours("shop").contains(&start));

        // Loading drops hours older than 90 days before now.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quality.json");
        let saved = QualityLedger::open(path.clone(), T);
        saved.record("shop", delta_at(start, 1));
        saved.record("shop", delta_at(start + 10 * HOUR_MS, 1));
        assert!(saved.save().unwrap());
        assert!(!saved.save().unwrap(), "unchanged: not written again");
        let reopened = QualityLedger::open(path.clone(), start + 10 * HOUR_MS);
        assert_eq!(reopened.hours("shop"), [start, start + 10 * HOUR_MS]);
        let later = start + (RETENTION_HOURS + 5) * HOUR_MS;
        let reopened = QualityLedger::open(path, later);
        assert_eq!(reopened.hours("shop"), [start + 10 * HOUR_MS]);
    }

    #[test]
    fn sdks_are_capped_per_hour() {
        let ledger = QualityLedger::in_memory();
        for i in 0..MAX_SDKS + 10 {
            let mut delta = QualityDelta::new(T);
            delta.event(&call(T, None, Some(&format!("sdk-{i:02}"))), 0, false);
            delta.finish(1, 0, []);
            ledger.record("shop", delta);
        }
        let answer = ledger.answer("shop", T - 1, T + 1);
        assert_eq!(answer.sdks.len(), MAX_SDKS + 1);
        let other = answer.sdks.last().unwrap();
        assert_eq!((other.sdk.as_str(), other.events), (OTHER_SDK, 10));
        assert_eq!(answer.sdks[0].sdk, "sdk-00");
    }

    #[test]
    fn rates_skew_and_lateness() {
        let mut delta = QualityDelta::new(T);
        delta.event(&call(T - 1000, Some(0.5), Some("py/1")), 0, false);
        delta.event(&call(T - 1000, Some(0.1), None), 0, false);
        delta.event(&call(T - 1000, Some(0.004), None), 0, false);
        delta.event(&call(T - 1000, None, None), 0, false);
        delta.event(&call(T - 6 * 60_000, Some(1.0), None), 120_000, false);
        delta.event(&call(T, None, None), -4_000, true);
        let outcome = Event::Outcome(Outcome {
            schema_version: 1,
            timestamp: T,
            ..Outcome::default()
        });
        delta.event(&outcome, 1_000, false);
        delta.finish(7, 1, ["latency_ms", "json", "latency_ms"]);
        let ledger = QualityLedger::in_memory();
        ledger.record("shop", delta);
        let answer = ledger.answer("shop", T - HOUR_MS, T + 1);
        let rates: Vec<(f64, u64)> = answer
            .sample_rates
            .iter()
            .map(|r| (r.rate, r.events))
            .collect();
        assert_eq!(rates, [(1.0, 3), (0.5, 1), (0.1, 1), (0.01, 1)]);
        assert_eq!(answer.totals.sampled, 3);
        assert!((answer.sampled_share - 0.5).abs() < 1e-12);
        assert_eq!(answer.totals.late, 1);
        assert_eq!(answer.totals.clamped, 1);
        assert_eq!(answer.skew.corrected, 3);
        assert_eq!(answer.skew.max_abs_ms, 120_000);
        let median = answer.skew.median_abs_ms as f64;
        assert!((median - 4_000.0).abs() <= 0.02 * 4_000.0, "{median}");
        assert_eq!(answer.totals.received, 11);
        assert_eq!(answer.rejects_by_reason[0].reason, "latency_ms");
        assert_eq!(answer.rejects_by_reason[0].events, 2);
        assert_eq!(answer.events_by_type[0].kind, "api_call");
        assert_eq!(answer.events_by_type[0].events, 6);
        assert_eq!(answer.schema_versions[0].events, 7);
    }

    #[test]
    fn skew_median_is_within_two_percent() {
        let mut counters = HourCounters::default();
        for ms in [
            1_u64,
            2,
            3,
            17,
            999,
            1_000,
            1_001,
            86_400_000,
            3_000_000_000,
        ] {
            counters.record_skew(ms);
        }
        let median = counters.skew_median_abs_ms() as f64;
        assert!((median - 999.0).abs() <= 0.02 * 999.0, "{median}");
        for ms in [1_u64, 7, 1_234, 99_999, 86_400_000, 34_560_000_000] {
            let mut single = HourCounters::default();
            single.record_skew(ms);
            assert_eq!(single.skew_median_abs_ms(), ms, "a single value is exact");
            let mut two = single.clone();
            two.record_skew(ms + ms / 100);
            let median = two.skew_median_abs_ms() as f64;
            assert!(
                (median - ms as f64).abs() <= 0.02 * ms as f64 + 1.0,
                "{ms}: {median}"
            );
        }
    }

    /// Measures the hot path and the persist cost of a full ledger; run with
    /// `cargo test -p valuetrace-server --lib quality::tests::measure -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure() {
        use std::time::Instant;
        let events: Vec<Event> = (0..500)
            .map(|i| {
                call(
                    T - i * 1000,
                    [None, Some(0.5), Some(0.1)]
                        .get(i as usize % 3)
                        .copied()
                        .flatten(),
                    Some("valuetrace-python/0.3"),
                )
            })
            .collect();
        let ledger = QualityLedger::in_memory();
        let started = Instant::now();
        let rounds = 2_000;
        for _ in 0..rounds {
            let mut delta = QualityDelta::new(T);
            for (i, event) in events.iter().enumerate() {
                delta.event(event, (i as i64 % 7) * 13, false);
            }
            delta.finish(events.len(), 0, ["latency_ms"]);
            ledger.record("shop", delta);
        }
        let per_event = started.elapsed().as_nanos() as f64 / (rounds * events.len()) as f64;
        println!("delta + merge: {per_event:.0} ns per event (batches of 500)");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quality.json");
        let full = QualityLedger::open(path.clone(), T);
        for hour in 0..RETENTION_HOURS {
            let at = hour_of(T) + hour * HOUR_MS;
            let mut delta = QualityDelta::new(at);
            for (i, event) in events.iter().take(50).enumerate() {
                delta.event(event, 100 + i as i64 * 37, i % 10 == 0);
            }
            delta.finish(50, 3, ["latency_ms", "json", "status"]);
            full.record("shop", delta);
        }
        let started = Instant::now();
        full.record(
            "shop",
            delta_at(hour_of(T) + (RETENTION_HOURS - 1) * HOUR_MS, 1),
        );
        let merge = started.elapsed();
        let started = Instant::now();
        let snapshot = full.lock().projects.clone();
        let lock_held = started.elapsed();
        drop(snapshot);
        let started = Instant::now();
        full.save().unwrap();
        let save = started.elapsed();
        let size = std::fs::metadata(&path).unwrap().len();
        let started = Instant::now();
        let reopened = QualityLedger::open(path, T);
        let load = started.elapsed();
        let started = Instant::now();
        let answer = reopened.answer("shop", 0, i64::MAX);
        let query = started.elapsed();
        println!(
            "90 days × 1 project: file {size} B, save {save:?} (lock held {lock_held:?}), load {load:?}, 90-day answer {query:?} ({} hours), merge into a full ledger {merge:?}",
            answer.hours.len()
        );
    }
}
