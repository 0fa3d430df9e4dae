//! `valuetrace-bench insights`: every business answer over a month of demo-shop traffic scaled to
//! `--events` (default 50M) through the embedded store (Parquet on disk), after the fact cache
//! is warm. Prints the load time, the cache warm-up, and per answer the median and worst of
//! `--runs` runs. `--data DIR` keeps the loaded store in DIR and reuses it on the next run (for
//! profiling one answer without reloading); `--only A,B` runs the answers whose name starts with
//! A or B.

use crate::demo::analysis::demo_analysis;
use crate::demo::traffic::{Generator, TrafficConfig};
use std::time::Instant;
use valuetrace_facts::{Dim, Question, Slice};
use valuetrace_insights::Insights;
use valuetrace_insights::latency::LatencySpec;
use valuetrace_journeys::churn::ChurnSpec;
use valuetrace_journeys::experiment::ExperimentSpec;
use valuetrace_journeys::funnel::{FunnelSpec, Order};
use valuetrace_journeys::paths::PathSpec;
use valuetrace_journeys::retention::{Period, RetentionSpec};
use valuetrace_journeys::ttv::TtvSpec;
use valuetrace_journeys::{Actor, Journeys};
use valuetrace_store::{EmbeddedStore, Store, StoreOptions, StoredEvent};

/// Events per session of the demo generator over a month, health checks included (measured:
/// 2,470,000 events from 30 days × 4,761 sessions a day).
const EVENTS_PER_SESSION: f64 = 17.3;

pub struct Options {
    pub events: u64,
    pub days: u64,
    pub runs: usize,
    pub data: Option<std::path::PathBuf>,
    pub only: Option<String>,
}

pub fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        events,
        days,
        runs,
        data,
        only,
    } = options;
    let temp = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let marker = dir.join("bench-now");
    let loaded_before: Option<i64> = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    let now = loaded_before.unwrap_or_else(valuetrace_store::wall_clock_ms);
    let span = days as i64 * 86_400_000;
    let mut store_options = StoreOptions::new(&dir);
    store_options.dedup_window_ms = 24 * 3_600_000;
    let store = EmbeddedStore::open(store_options, now)?;
    if loaded_before.is_none() {
        load(&store, events, days, now)?;
        std::fs::write(&marker, now.to_string())?;
    } else {
        println!("reusing the store in {} (loaded at {now})", dir.display());
    }
    let insights = Insights::default();
    let warm = Instant::now();
    let facts = insights
        .cache
        .load(&store, "bench", now - span, now, &Default::default())?;
    println!(
        "fact cache warm-up: {} segments in {:.1} s, {:.0} MiB of facts; RSS {:.0} MiB",
        facts.built,
        warm.elapsed().as_secs_f64(),
        insights.cache.bytes() as f64 / (1 << 20) as f64,
        crate::rss_mib()
    );
    drop(facts);
    answers(&store, &insights, now, span, runs, only.as_deref())
}

/// Loads a month of demo traffic scaled to `events` into `store`, persisting every 2M events.
fn load(store: &EmbeddedStore, events: u64, days: u64, now: i64) -> anyhow::Result<()> {
    let span = days as i64 * 86_400_000;
    let sessions_per_day = (events as f64 / days as f64 / EVENTS_PER_SESSION).max(1.0) as u32;
    let mut config = TrafficConfig::new(42, now - span, now);
    config.sessions_per_day = sessions_per_day;
    config.users = sessions_per_day.saturating_mul(6) / 5;
    let mut generator = Generator::new(config);
    let began = Instant::now();
    let (mut loaded, mut since_persist) = (0u64, 0usize);
    let mut cursor = now - span;
    while cursor < now {
        cursor = (cursor + 3_600_000).min(now);
        let batch: Vec<StoredEvent> = generator
            .next_until(cursor)
            .into_iter()
            .map(|value| {
                let event: valuetrace_model::Event = serde_json::from_value(value)?;
                let ts = event.timestamp();
                Ok(StoredEvent {
                    event,
                    received_at: ts,
                    skew_ms: 0,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        loaded += batch.len() as u64;
        since_persist += batch.len();
        store.append("bench", batch)?;
        if since_persist >= 2_000_000 {
            let ticket = store.begin_persist()?;
            store.finish_persist(ticket, now)?;
            since_persist = 0;
            eprintln!(
                "  loaded {loaded} events ({:.0} s, {:.0} MiB RSS)",
                began.elapsed().as_secs_f64(),
                crate::rss_mib()
            );
        }
    }
    let ticket = store.begin_persist()?;
    store.finish_persist(ticket, now)?;
    println!(
        "loaded {loaded} events ({sessions_per_day} sessions/day) over {days} days in {:.1} s; RSS {:.0} MiB",
        began.elapsed().as_secs_f64(),
        crate::rss_mib()
    );
    Ok(())
}

fn answers(
    store: &EmbeddedStore,
    insights: &Insights,
    now: i64,
    span: i64,
    runs: usize,
    only: Option<&str>,
) -> anyhow::Result<()> {
    let analysis = demo_analysis();
    let question = |slice: Slice, by: Option<Dim>| Question {
        project: "bench".into(),
        from: now - span,
        to: now,
        now,
        slice,
        by,
    };
    let all = question(Slice::default(), None);
    let pro = question(
        Slice {
            plan: Some("pro".into()),
            ..Slice::default()
        },
        None,
    );
    let by_plan = question(Slice::default(), Some(Dim::Plan));
    let checkout = LatencySpec {
        route: "POST /api/checkout".into(),
        ..LatencySpec::default()
    };
    let journeys = Journeys {
        facts: &insights.cache,
        store,
    };
    let day = 86_400_000;
    let funnel = FunnelSpec::parse(
        &[
            "GET /api/products".into(),
            "POST /api/cart/items".into(),
            "POST /api/checkout".into(),
        ],
        day,
        Order::Sequential,
    )?;
    let eight_weeks = Question {
        from: now - 56 * day,
        ..all.clone()
    };
    let retention = RetentionSpec::new("any", "any", Period::Week, 8)?;
    let paths = PathSpec::new("GET /api/products", false, 5, 10, day)?;
    let experiment = ExperimentSpec {
        experiment: "reco_algo".into(),
        control: None,
        conversion: "purchase".into(),
        top_endpoints: 10,
        endpoints: None,
    };
    let ttv = TtvSpec::new("/*", "outcome:purchase", Period::Day, None)?;
    let churn = ChurnSpec {
        recent_ms: 7 * day,
        baseline_ms: 14 * day,
        threshold: 0.5,
        min_baseline_calls: 10.0,
        churn_outcome: "churn".into(),
        top: 50,
    };
    type Case<'a> = (&'a str, Box<dyn Fn() -> anyhow::Result<usize> + 'a>);
    let cases: Vec<Case> = vec![
        (
            "impact",
            Box::new(|| Ok(insights.impact(store, &all, &analysis)?.rows.len())),
        ),
        (
            "impact plan=pro",
            Box::new(|| Ok(insights.impact(store, &pro, &analysis)?.rows.len())),
        ),
        (
            "impact by plan",
            Box::new(|| Ok(insights.impact(store, &by_plan, &analysis)?.rows.len())),
        ),
        (
            "errors",
            Box::new(|| Ok(insights.errors(store, &all, &analysis)?.classes.len())),
        ),
        (
            "errors by plan",
            Box::new(|| Ok(insights.errors(store, &by_plan, &analysis)?.classes.len())),
        ),
        (
            "integrations",
            Box::new(|| {
                Ok(insights
                    .integrations(store, &all, &analysis)?
                    .providers
                    .len())
            }),
        ),
        (
            "integrations by plan",
            Box::new(|| {
                Ok(insights
                    .integrations(store, &by_plan, &analysis)?
                    .providers
                    .len())
            }),
        ),
        (
            "gaps",
            Box::new(|| Ok(insights.gaps(store, &all, &analysis)?.gaps.len())),
        ),
        (
            "latency-conversion",
            Box::new(|| {
                Ok(insights
                    .latency_conversion(store, &all, &analysis, &checkout)?
                    .buckets
                    .len())
            }),
        ),
        (
            "scorecard",
            Box::new(|| Ok(insights.scorecard(store, &all, &analysis)?.rows.len())),
        ),
        (
            "priority",
            Box::new(|| Ok(insights.priority(store, &all, &analysis)?.features.len())),
        ),
        (
            "funnel 3 steps",
            Box::new(|| {
                let answer = journeys.funnel(&all, &analysis, Actor::User, &funnel)?;
                Ok(answer.steps.last().map_or(0, |s| s.entered as usize))
            }),
        ),
        (
            "funnel 3 steps strict",
            Box::new(|| {
                let strict = FunnelSpec {
                    order: Order::Strict,
                    ..funnel.clone()
                };
                let answer = journeys.funnel(&all, &analysis, Actor::User, &strict)?;
                Ok(answer.steps.last().map_or(0, |s| s.entered as usize))
            }),
        ),
        (
            "paths depth 5",
            Box::new(|| {
                let answer = journeys.paths(&all, &analysis, Actor::User, &paths)?;
                Ok(answer.top_paths.len())
            }),
        ),
        (
            "retention 8 weeks",
            Box::new(|| {
                let answer =
                    journeys.retention(&eight_weeks, &analysis, Actor::User, &retention)?;
                Ok(answer.cohorts.len())
            }),
        ),
        (
            "ttv",
            Box::new(|| {
                Ok(journeys
                    .ttv(&all, &analysis, Actor::User, &ttv)?
                    .trend
                    .len())
            }),
        ),
        (
            "churn-risk",
            Box::new(|| {
                let answer = journeys.churn_risk(&all, &analysis, Actor::Account, &churn)?;
                Ok(answer.actors.len())
            }),
        ),
        (
            "experiment",
            Box::new(|| {
                let answer = journeys.experiment(&all, &analysis, Actor::User, &experiment)?;
                Ok(answer.comparisons.len())
            }),
        ),
    ];
    println!(
        "{:<24} {:>10} {:>10} {:>6}",
        "answer", "median ms", "worst ms", "rows"
    );
    for (name, case) in &cases {
        if only.is_some_and(|only| !only.split(',').any(|prefix| name.starts_with(prefix))) {
            continue;
        }
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            rows = case()?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{name:<24} {:>10.0} {:>10.0} {rows:>6}",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    println!("RSS after the answers: {:.0} MiB", crate::rss_mib());
    Ok(())
}
