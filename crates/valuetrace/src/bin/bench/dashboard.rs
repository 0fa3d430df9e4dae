//! `valuetrace-bench dashboard --data DIR`: renders every dashboard page over the store that
//! `valuetrace-bench insights --data DIR` loaded (a month of demo traffic, 50M events by default),
//! through the server's router as a browser would (session cookie, filters in the URL).
//!
//! Per page: **cold** (answer cache emptied first: every answer computed) and **warm** (the
//! answers are in the dashboard's cache, as after signing in — which warms every page's default
//! view — or while someone looks at the page: stale answers are served and refreshed in the
//! background), each the median and worst of `--runs` renders.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use valuetrace_server::Server;
use valuetrace_server::auth::key_hash_string;
use valuetrace_server::config::{Config, ProjectConfig};

const PAGES: &[&str] = &[
    "health?since=30d",
    "journeys?since=30d",
    "growth?since=30d",
    "errors?since=30d",
    "alerts?since=30d",
    "quality?since=30d",
    "endpoint?since=30d&method=POST&route=%2Fapi%2Fcheckout",
];

pub fn run(data: std::path::PathBuf, runs: usize) -> anyhow::Result<()> {
    let now: i64 = std::fs::read_to_string(data.join("bench-now"))
        .map_err(|_| {
            anyhow::anyhow!(
                "{} holds no benchmark store: load one with `valuetrace-bench insights --data {}` first",
                data.display(),
                data.display()
            )
        })?
        .trim()
        .parse()?;
    let root = tempfile::tempdir()?;
    std::os::unix::fs::symlink(std::fs::canonicalize(&data)?, root.path().join("store"))?;
    let key = "vt_read_bench";
    let config = Config {
        data_dir: root.path().to_owned(),
        projects: vec![ProjectConfig {
            analysis: crate::demo::analysis::demo_analysis(),
            metrics: crate::demo::alerts::demo_alerts().0,
            alerts: crate::demo::alerts::demo_alerts().1,
            ..ProjectConfig::new(
                "bench",
                vec![key_hash_string("vt_ingest_bench")],
                vec![key_hash_string(key)],
            )
        }],
        ..Config::default()
    };
    let server =
        Server::open_with_clock(config, Arc::new(move || now)).map_err(anyhow::Error::msg)?;
    let state = server.state.clone();
    let warm = Instant::now();
    state
        .insights
        .cache
        .load(state.pipeline.store(), "bench", now - 30 * 86_400_000, now)?;
    println!(
        "fact cache warm-up: {:.1} s; RSS {:.0} MiB",
        warm.elapsed().as_secs_f64(),
        crate::rss_mib()
    );
    // A session without the sign-in warm-up, so that cold renders are really cold.
    let cookie = format!(
        "vt_session={}",
        state.dashboard.sessions.create("bench", key)
    );
    let router = server.router();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let render = |page: &str| -> anyhow::Result<(Duration, usize)> {
        let request = Request::get(format!("/p/bench/{page}"))
            .header("cookie", &cookie)
            .body(Body::empty())?;
        let started = Instant::now();
        let (status, bytes) = runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            (status, bytes)
        });
        anyhow::ensure!(status.is_success(), "{page}: {status}");
        Ok((started.elapsed(), bytes))
    };
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "page", "cold ms", "worst", "warm ms", "worst", "KB"
    );
    for page in PAGES {
        let (mut cold, mut hot, mut size) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs.max(1) {
            state.dashboard.cache.clear();
            cold.push(render(page)?.0);
            let (elapsed, bytes) = render(page)?;
            hot.push(elapsed);
            size = bytes;
        }
        let stats = |times: &mut Vec<Duration>| {
            times.sort();
            (
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
            )
        };
        let ((cold_median, cold_worst), (warm_median, warm_worst)) =
            (stats(&mut cold), stats(&mut hot));
        let name = page.split('?').next().unwrap_or(page);
        println!(
            "{name:<24} {cold_median:>10.0} {cold_worst:>10.0} {warm_median:>10.1} {warm_worst:>10.1} {:>8.0}",
            size as f64 / 1024.0
        );
    }
    Ok(())
}
