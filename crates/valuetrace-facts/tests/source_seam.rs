//! The fact engine reads through `FactSource`, not through the embedded store: a second backend
//! (here an in-memory one, as a ClickHouse backend will be) gives the same facts, and every
//! segment is keyed by the id its backend handed out, so a source is read once and a new id is
//! read anew.

use arrow_array::RecordBatch;
use std::cell::Cell;
use valuetrace_facts::source::{FactSource, FactTable};
use valuetrace_facts::{AnalysisConfig, FactsCache, Result};
use valuetrace_model::{ApiCall, Event, Outcome};
use valuetrace_store::schema::to_batch;
use valuetrace_store::{SourceId, StoredEvent, Table};

const T0: i64 = 1_790_000_000_000;

/// Batches in memory, each with its id; counts the reads.
struct MemorySource {
    calls: Vec<(SourceId, RecordBatch)>,
    outcomes: Vec<(SourceId, RecordBatch)>,
    reads: Cell<usize>,
}

impl FactSource for MemorySource {
    type Source = RecordBatch;

    fn sources(
        &self,
        _: &str,
        table: FactTable,
        _: i64,
        _: i64,
    ) -> Result<Vec<(SourceId, RecordBatch)>> {
        Ok(match table {
            FactTable::Calls => self.calls.clone(),
            FactTable::Outcomes => self.outcomes.clone(),
        })
    }

    fn read(
        &self,
        source: &RecordBatch,
        _: &[&str],
        each: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.reads.set(self.reads.get() + 1);
        each(source)
    }

    fn first_call(&self, _: &str) -> Option<i64> {
        Some(T0)
    }
}

fn stored(event: Event) -> StoredEvent {
    StoredEvent {
        received_at: event.timestamp(),
        event,
        skew_ms: 0,
    }
}

fn calls(n: usize, user: &str) -> RecordBatch {
    let events: Vec<StoredEvent> = (0..n)
        .map(|i| {
            stored(Event::ApiCall(ApiCall {
                schema_version: 1,
                event_id: format!("{user}-{i}"),
                timestamp: T0 + i as i64,
                service: "shop".into(),
                method: "GET".into(),
                route: "/api/items".into(),
                status: 200,
                latency_ms: 10.0,
                user_id: Some(user.into()),
                ..Default::default()
            }))
        })
        .collect();
    to_batch(Table::ApiCalls, &events.iter().collect::<Vec<_>>()).expect("batch")
}

#[test]
fn the_cache_reads_any_backend_once_per_source_id() {
    let purchase = stored(Event::Outcome(Outcome {
        schema_version: 1,
        event_id: "o1".into(),
        timestamp: T0 + 5,
        name: "purchase".into(),
        user_id: Some("alice".into()),
        value: Some(30.0),
        ..Default::default()
    }));
    let (a, b) = (SourceId::fresh(), SourceId::fresh());
    let mut source = MemorySource {
        calls: vec![(a, calls(3, "alice")), (b, calls(2, "bob"))],
        outcomes: vec![(
            SourceId::fresh(),
            to_batch(Table::Outcomes, &[&purchase]).unwrap(),
        )],
        reads: Cell::new(0),
    };
    let cache = FactsCache::new(1 << 26);
    let config = AnalysisConfig::default();
    let facts = cache
        .load(&source, "p", T0, T0 + 10, &config)
        .expect("facts");
    let rows: usize = facts.calls.iter().map(|s| s.len()).sum();
    assert_eq!((rows, facts.outcomes[0].len(), facts.built), (5, 1, 3));
    assert_eq!(facts.names.users, 2, "alice and bob got dense ids");
    assert_eq!(source.reads.get(), 3);

    // The same ids: nothing read again.
    let again = cache
        .load(&source, "p", T0, T0 + 10, &config)
        .expect("facts");
    assert_eq!((again.built, source.reads.get()), (0, 3));

    // A source under a new id (a compaction's file, a new batch) is read; the old one ages out.
    source.calls[1] = (SourceId::fresh(), calls(4, "carol"));
    let changed = cache
        .load(&source, "p", T0, T0 + 10, &config)
        .expect("facts");
    let rows: usize = changed.calls.iter().map(|s| s.len()).sum();
    assert_eq!((rows, changed.built, source.reads.get()), (7, 1, 4));
}
