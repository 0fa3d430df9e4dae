//! The fact cache: compact columns per Parquet file and per buffered batch, built on first use and
//! kept within a memory budget (least recently used first out).
//!
//! Parquet files never change once written and buffered batches are immutable (new rows arrive
//! as new batches), so a segment is valid for as long as its source exists. Every source is keyed
//! by the [`SourceId`] the store handed out for it, which is never reused: a compaction's new file
//! or a batch buffered after a persist gets a new key, and the old keys age out. (Keying by a heap
//! address or a path is not enough: both come back after the source is dropped.) A query
//! therefore pays the Parquet decode once per file, then reads only compact columns.

use crate::facts::{
    CALL_FACT_COLUMNS, CallSeg, Ids, Names, OUTCOME_FACT_COLUMNS, OutcomeSeg, add_calls,
    add_outcomes,
};
use crate::money::{Conversion, Mixed};
use crate::source::{FactSource, FactTable};
use crate::{AnalysisConfig, Error, Result};
use arrow_array::RecordBatch;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use valuetrace_store::SourceId;

/// The facts of one query: every segment that may hold rows of its range, and the names of ids.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub calls: Vec<Arc<CallSeg>>,
    pub outcomes: Vec<Arc<OutcomeSeg>>,
    pub names: Arc<Names>,
    /// Segments built for this query (the rest came from the cache).
    pub built: usize,
    /// The reporting currency of the `value` columns above and how they got there.
    pub conversion: Conversion,
    /// The raw segments that held values in other currencies (for the answer's money note).
    pub mixed: Mixed,
}

/// A segment's cache key: the id the store handed out for its source, and 0 for the source's own
/// rows or the [`Conversion::fingerprint`] of a copy converted to a reporting currency.
type SourceKey = (SourceId, u64);

#[derive(Debug, Clone)]
enum Seg {
    Calls(Arc<CallSeg>),
    Outcomes(Arc<OutcomeSeg>),
}

impl Seg {
    fn bytes(&self) -> usize {
        match self {
            Seg::Calls(seg) => seg.bytes(),
            Seg::Outcomes(seg) => seg.bytes(),
        }
    }
}

#[derive(Debug, Default)]
struct ProjectFacts {
    ids: Mutex<Ids>,
    segments: Mutex<HashMap<SourceKey, (Seg, u64)>>,
}

/// Fact segments of every project, within `budget_bytes` of memory.
#[derive(Debug)]
pub struct FactsCache {
    projects: RwLock<HashMap<String, Arc<ProjectFacts>>>,
    budget_bytes: usize,
    tick: std::sync::atomic::AtomicU64,
    /// Run on every call segment built (and every converted copy): the answers' summaries.
    on_build: Vec<fn(&CallSeg)>,
}

impl Default for FactsCache {
    fn default() -> Self {
        FactsCache::new(6 << 30)
    }
}

fn poisoned() -> Error {
    Error::Store(valuetrace_store::Error::Internal(
        "fact cache lock poisoned".into(),
    ))
}

impl FactsCache {
    pub fn new(budget_bytes: usize) -> Self {
        FactsCache {
            projects: RwLock::new(HashMap::new()),
            budget_bytes,
            tick: Default::default(),
            on_build: Vec::new(),
        }
    }

    /// Runs `hook` on every call segment this cache builds, before it is shared: an answer's
    /// summary of the segment ([`crate::extensions`]) made with the segment costs a few % of its
    /// build and saves a scan of every row on the first question after a restart.
    pub fn on_build(mut self, hook: fn(&CallSeg)) -> Self {
        self.on_build.push(hook);
        self
    }

    fn summarize(&self, seg: &CallSeg) {
        for hook in &self.on_build {
            hook(seg);
        }
    }

    fn project(&self, name: &str) -> Result<Arc<ProjectFacts>> {
        if let Some(project) = self.projects.read().map_err(|_| poisoned())?.get(name) {
            return Ok(project.clone());
        }
        let mut projects = self.projects.write().map_err(|_| poisoned())?;
        Ok(projects.entry(name.to_owned()).or_default().clone())
    }

    /// Bytes held by the segments of every project.
    pub fn bytes(&self) -> usize {
        let Ok(projects) = self.projects.read() else {
            return 0;
        };
        projects
            .values()
            .filter_map(|p| {
                p.segments
                    .lock()
                    .ok()
                    .map(|s| s.values().map(|(seg, _)| seg.bytes()).sum::<usize>())
            })
            .sum()
    }

    /// The stored (pseudonymous) ids behind dense ids of `project`: `which` is `user`, `session`
    /// or `account`. Unknown ids resolve to an empty string.
    pub fn resolve_ids(&self, project: &str, which: &str, ids: &[u32]) -> Vec<String> {
        let projects = self.projects.read().ok();
        let facts = projects.as_ref().and_then(|p| p.get(project).cloned());
        let Some(ids_lock) = facts.as_ref().and_then(|f| f.ids.lock().ok()) else {
            return vec![String::new(); ids.len()];
        };
        let interner = match which {
            "session" => &ids_lock.sessions,
            "account" => &ids_lock.accounts,
            _ => &ids_lock.users,
        };
        ids.iter()
            .map(|id| interner.resolve(*id).to_owned())
            .collect()
    }

    /// The facts of `project` that may hold rows in `[from, to)`, with values in the reporting
    /// currency that `config` gives (see [`crate::money`]).
    pub fn load<S: FactSource>(
        &self,
        store: &S,
        project: &str,
        from: i64,
        to: i64,
        config: &AnalysisConfig,
    ) -> Result<Facts> {
        let mut facts = Facts::default();
        let calls = store.sources(project, FactTable::Calls, from, to)?;
        let outcomes = store.sources(project, FactTable::Outcomes, from, to)?;
        if calls.is_empty() && outcomes.is_empty() {
            return Ok(facts);
        }
        let state = self.project(project)?;
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut used = Vec::new();
        for (table, sources) in [(FactTable::Calls, &calls), (FactTable::Outcomes, &outcomes)] {
            for (id, source) in sources {
                let key = (*id, 0);
                used.push(key);
                let cached = state
                    .segments
                    .lock()
                    .map_err(|_| poisoned())?
                    .get_mut(&key)
                    .map(|entry| {
                        entry.1 = tick;
                        entry.0.clone()
                    });
                let seg = match cached {
                    Some(seg) => seg,
                    None => {
                        let seg = build(store, &state.ids, table, source)?;
                        if let Seg::Calls(seg) = &seg {
                            self.summarize(seg);
                        }
                        facts.built += 1;
                        state
                            .segments
                            .lock()
                            .map_err(|_| poisoned())?
                            .insert(key, (seg.clone(), tick));
                        seg
                    }
                };
                match seg {
                    Seg::Calls(seg) => facts.calls.push(seg),
                    Seg::Outcomes(seg) => facts.outcomes.push(seg),
                }
            }
        }
        self.convert(&state, &mut facts, config, tick, &mut used)?;
        self.evict(&state, &used)?;
        facts.names = Arc::new(state.ids.lock().map_err(|_| poisoned())?.names());
        Ok(facts)
    }

    /// Puts every value in the reporting currency: segments with values in another currency are
    /// replaced by converted copies (cached under the conversion's fingerprint). `used` names the
    /// source of each segment: the calls' first, then the outcomes', as `load` pushed them.
    fn convert(
        &self,
        state: &ProjectFacts,
        facts: &mut Facts,
        config: &AnalysisConfig,
        tick: u64,
        used: &mut Vec<SourceKey>,
    ) -> Result<()> {
        let counts = facts
            .calls
            .iter()
            .map(|seg| &seg.currency)
            .chain(facts.outcomes.iter().map(|seg| &seg.currency))
            .flat_map(|c| {
                c.codes
                    .iter()
                    .map(|code| &**code)
                    .zip(c.valued.iter().copied())
            });
        let conversion = Conversion::resolve(config, counts);
        let fingerprint = conversion.fingerprint();
        debug_assert_eq!(used.len(), facts.calls.len() + facts.outcomes.len());
        let (call_sources, outcome_sources) = used.split_at(facts.calls.len());
        let mut converted = Vec::new();
        for (seg, (source, _)) in facts.calls.iter_mut().zip(call_sources) {
            if !conversion.converts(&seg.currency) {
                continue;
            }
            let key = (*source, fingerprint);
            let raw = Arc::clone(seg);
            let copy = self.cached_or(state, key, tick, || {
                let copy = raw.with_values(conversion.convert(&raw.value, &raw.currency));
                self.summarize(&copy);
                Seg::Calls(Arc::new(copy))
            })?;
            if let Seg::Calls(copy) = copy {
                *seg = copy;
            }
            facts.mixed.calls.push(raw);
            converted.push(key);
        }
        for (seg, (source, _)) in facts.outcomes.iter_mut().zip(outcome_sources) {
            if !conversion.converts(&seg.currency) {
                continue;
            }
            let key = (*source, fingerprint);
            let raw = Arc::clone(seg);
            let copy = self.cached_or(state, key, tick, || {
                Seg::Outcomes(Arc::new(
                    raw.with_values(conversion.convert(&raw.value, &raw.currency)),
                ))
            })?;
            if let Seg::Outcomes(copy) = copy {
                *seg = copy;
            }
            facts.mixed.outcomes.push(raw);
            converted.push(key);
        }
        used.extend(converted);
        facts.conversion = conversion;
        Ok(())
    }

    fn cached_or(
        &self,
        state: &ProjectFacts,
        key: SourceKey,
        tick: u64,
        make: impl FnOnce() -> Seg,
    ) -> Result<Seg> {
        let mut segments = state.segments.lock().map_err(|_| poisoned())?;
        let entry = segments.entry(key).or_insert_with(|| (make(), tick));
        entry.1 = tick;
        Ok(entry.0.clone())
    }

    /// Drops least recently used segments (never the ones this query uses) while over budget.
    fn evict(&self, state: &ProjectFacts, used: &[SourceKey]) -> Result<()> {
        let mut segments = state.segments.lock().map_err(|_| poisoned())?;
        let mut total: usize = segments.values().map(|(seg, _)| seg.bytes()).sum();
        if total <= self.budget_bytes {
            return Ok(());
        }
        let mut by_age: Vec<(u64, SourceKey, usize)> = segments
            .iter()
            .filter(|(key, _)| !used.contains(key))
            .map(|(key, (seg, tick))| (*tick, *key, seg.bytes()))
            .collect();
        by_age.sort_by_key(|(tick, _, _)| *tick);
        for (_, key, bytes) in by_age {
            if total <= self.budget_bytes {
                break;
            }
            segments.remove(&key);
            total -= bytes;
        }
        Ok(())
    }
}

fn build<S: FactSource>(
    store: &S,
    ids: &Mutex<Ids>,
    table: FactTable,
    source: &S::Source,
) -> Result<Seg> {
    let columns: &[&str] = match table {
        FactTable::Calls => &CALL_FACT_COLUMNS,
        FactTable::Outcomes => &OUTCOME_FACT_COLUMNS,
    };
    let mut batches: Vec<RecordBatch> = Vec::new();
    store.read(source, columns, &mut |batch| {
        batches.push(batch.clone());
        Ok(())
    })?;
    let mut ids = ids.lock().map_err(|_| poisoned())?;
    Ok(match table {
        FactTable::Calls => {
            let mut seg = CallSeg::default();
            for batch in &batches {
                add_calls(&mut seg, &mut ids, batch)?;
            }
            drop(ids);
            seg.sort_by_session();
            Seg::Calls(Arc::new(seg))
        }
        FactTable::Outcomes => {
            let mut seg = OutcomeSeg::default();
            for batch in &batches {
                add_outcomes(&mut seg, &mut ids, batch)?;
            }
            Seg::Outcomes(Arc::new(seg))
        }
    })
}
