//! Rollup snapshots: start-up loads them for quiet old days and gets the same rollups as a
//! rebuild from Parquet; a stale or corrupt snapshot is ignored.

use std::collections::BTreeMap;
use valuetrace_model::time::{DAY_MS, HOUR_MS};
use valuetrace_model::{ApiCall, Event};
use valuetrace_store::rollup::{Level, PlacedCell};
use valuetrace_store::{EmbeddedStore, ProjectData, Store, StoreOptions, StoredEvent, snapshot};

const PROJECT: &str = "p";

fn call(id: u64, timestamp: i64) -> StoredEvent {
    let mut experiments = BTreeMap::new();
    experiments.insert(
        "reco".to_owned(),
        if id.is_multiple_of(2) { "a" } else { "b" }.to_owned(),
    );
    let event = ApiCall {
        schema_version: 1,
        event_id: format!("e-{id}"),
        timestamp,
        service: "shop".into(),
        method: "GET".into(),
        route: format!("/r{}", id % 5),
        status: if id.is_multiple_of(17) { 503 } else { 200 },
        latency_ms: 1.0 + (id % 97) as f64 * 3.7,
        user_id: Some(format!("{:032x}", id % 700)),
        plan: Some(["free", "pro"][(id % 2) as usize].into()),
        experiments,
        value: id.is_multiple_of(11).then_some(9.5),
        ..ApiCall::default()
    };
    StoredEvent {
        event: Event::ApiCall(event),
        received_at: timestamp,
        skew_ms: 0,
    }
}

fn options(dir: &std::path::Path) -> StoreOptions {
    let mut options = StoreOptions::new(dir);
    options.minute_retention_ms = 6 * HOUR_MS;
    options
}

fn persist(store: &EmbeddedStore, now: i64) -> usize {
    let ticket = store.begin_persist().expect("begin");
    store
        .finish_persist(ticket, now)
        .expect("finish")
        .snapshots_written
}

/// A comparable summary of every day/hour cell of `day`.
fn day_summary(data: &ProjectData, day: i64) -> Vec<String> {
    let interner = &data.rollups.interner;
    let mut lines: Vec<String> = data
        .rollups
        .day_cells(day)
        .into_iter()
        .filter(|placed: &PlacedCell| placed.level != Level::Minute)
        .map(|placed| {
            let cell = &placed.cell;
            let detail = placed.detail.map(|(plan, segment, variant)| {
                format!("{}|{}|{}", interner.resolve(plan), interner.resolve(segment), interner.resolve(variant))
            });
            format!(
                "{:?} {} {} {:?} count={} classes={:?} errors={} value={} p50={:?} p99={:?} users={}",
                placed.level,
                placed.bucket,
                interner.resolve(placed.route.route),
                detail,
                cell.counts.count,
                cell.counts.status_classes,
                cell.counts.errors,
                cell.counts.value_sum,
                cell.latency.quantile(0.5),
                cell.latency.quantile(0.99),
                cell.users.estimate()
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn reopen_from_snapshots_gives_the_rollups_of_a_full_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = valuetrace_store::wall_clock_ms();
    let old_day = (now - 3 * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
    let store = EmbeddedStore::open(options(dir.path()), now).expect("open");
    let events: Vec<StoredEvent> = (0..3000)
        .map(|id| call(id, old_day + (id as i64 * 28_800) % DAY_MS))
        .collect();
    store.append(PROJECT, events).expect("append");
    let written = persist(&store, now);
    assert_eq!(written, 1, "the quiet old day gets a snapshot");
    let expected = day_summary(
        &store
            .existing_project(PROJECT)
            .expect("project")
            .read()
            .expect("lock"),
        old_day,
    );
    assert!(expected.len() > 20);
    drop(store);

    let day_dir = dir.path().join("projects/p/api_calls").join(format!(
        "day={}",
        valuetrace_model::time::format_day(old_day)
    ));
    let first_snapshot =
        std::fs::read(day_dir.join(snapshot::FILE_NAME)).expect("snapshot written");
    let reopened = EmbeddedStore::open(options(dir.path()), now).expect("reopen");
    let data = reopened.existing_project(PROJECT).expect("project");
    assert_eq!(
        day_summary(&data.read().expect("lock"), old_day),
        expected,
        "snapshot load equals the live rollups"
    );
    assert!(
        !reopened.contains(PROJECT, "e-1"),
        "ids received before the dedup window are not reloaded"
    );

    // A late event for the day: the next persist rewrites the snapshot to cover the new row.
    reopened
        .append(PROJECT, vec![call(99_999, old_day + 5)])
        .expect("late event");
    let ticket = reopened.begin_persist().expect("begin");
    let _ = reopened.finish_persist(ticket, now).expect("finish");
    let expected_late = day_summary(&data.read().expect("lock"), old_day);
    assert_ne!(expected_late, expected);
    drop(reopened);
    let reopened = EmbeddedStore::open(options(dir.path()), now).expect("reopen after late event");
    let data = reopened.existing_project(PROJECT).expect("project");
    assert_eq!(
        day_summary(&data.read().expect("lock"), old_day),
        expected_late
    );
    drop(reopened);

    // A stale snapshot (it covers 3000 rows, the files hold 3001) is ignored: the day is rebuilt.
    let current_snapshot = std::fs::read(day_dir.join(snapshot::FILE_NAME)).expect("snapshot");
    assert_ne!(current_snapshot, first_snapshot);
    std::fs::write(day_dir.join(snapshot::FILE_NAME), &first_snapshot).expect("stale snapshot");
    let reopened =
        EmbeddedStore::open(options(dir.path()), now).expect("reopen with stale snapshot");
    let data = reopened.existing_project(PROJECT).expect("project");
    assert_eq!(
        day_summary(&data.read().expect("lock"), old_day),
        expected_late
    );
    drop(reopened);

    // A corrupt snapshot is ignored and the day is rebuilt from its files.
    let path = day_dir.join(snapshot::FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).expect("corrupt snapshot");
    let reopened =
        EmbeddedStore::open(options(dir.path()), now).expect("reopen with corrupt snapshot");
    let data = reopened.existing_project(PROJECT).expect("project");
    assert_eq!(
        day_summary(&data.read().expect("lock"), old_day),
        expected_late
    );
}
