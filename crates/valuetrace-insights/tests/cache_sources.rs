//! Issue 18, point 0: the fact cache keyed buffered batches by the heap address of their first
//! buffer plus their row count. After a persist dropped a batch, a new batch of the same size that
//! got the same address back from the allocator was answered with the dropped batch's rows.
//! Every cached source is now keyed by an id the store hands out and never reuses.

mod common;

use common::*;
use valuetrace_insights::FactsCache;
use valuetrace_model::Event;
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

const ROWS: usize = 64;

/// `ROWS` calls and `ROWS` valued outcomes of cycle `cycle`, with ids unique over the test.
fn cycle_events(cycle: usize, ts: i64) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for i in 0..ROWS {
        let user = format!("u{cycle}-{i}");
        let value = (cycle * 1000 + i) as f64;
        events.push(Event::ApiCall(
            call(ts + i as i64, "POST /api/payments", 200, 12.0)
                .user(&user)
                .value(value),
        ));
        events.push(Event::Outcome(
            outcome(ts + i as i64, "purchase").user(&user).value(value),
        ));
    }
    let mut stored = stored(&events);
    for (n, event) in stored.iter_mut().enumerate() {
        let id = format!("c{cycle}-{n}");
        match &mut event.event {
            Event::ApiCall(call) => call.event_id = id,
            Event::Outcome(outcome) => outcome.event_id = id,
            Event::ApiAggregate(aggregate) => aggregate.event_id = id,
        }
    }
    stored
}

fn sums(cache: &FactsCache, store: &EmbeddedStore, to: i64) -> (usize, f64, usize, f64) {
    let facts = cache
        .load(store, "p", T0, to, &Default::default())
        .expect("load facts");
    let calls = facts.calls.iter().map(|seg| seg.len()).sum();
    let call_value = facts.calls.iter().flat_map(|seg| seg.value.iter()).sum();
    let outcomes = facts.outcomes.iter().map(|seg| seg.len()).sum();
    let outcome_value = facts.outcomes.iter().flat_map(|seg| seg.value.iter()).sum();
    (calls, call_value, outcomes, outcome_value)
}

#[test]
fn a_persisted_batch_is_never_answered_in_place_of_a_new_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(StoreOptions::new(dir.path()), T0 + DAY).expect("open store");
    let cache = FactsCache::default();
    let (mut calls, mut value) = (0usize, 0f64);
    let mut wrong = Vec::new();
    for cycle in 0..40 {
        let ts = T0 + cycle as i64 * MIN;
        let outcome = store.append("p", cycle_events(cycle, ts)).expect("append");
        assert_eq!(outcome.stored, 2 * ROWS);
        calls += ROWS;
        value += (0..ROWS).map(|i| (cycle * 1000 + i) as f64).sum::<f64>();
        let answer = sums(&cache, &store, T0 + DAY);
        if answer != (calls, value, calls, value) {
            wrong.push((cycle, answer, (calls, value)));
        }
        // The batch is written to Parquet and dropped: its address may come back next cycle.
        persist(&store, T0 + DAY);
        let answer = sums(&cache, &store, T0 + DAY);
        if answer != (calls, value, calls, value) {
            wrong.push((cycle, answer, (calls, value)));
        }
    }
    assert!(wrong.is_empty(), "wrong answers after a persist: {wrong:?}");
}
