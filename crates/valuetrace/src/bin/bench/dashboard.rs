//! `valuetrace-bench dashboard --data DIR`: renders every dashboard page over the store that
//! `valuetrace-bench insights --data DIR` loaded (a month of demo traffic, 50M events by default),
//! through the server's router as a browser would (session cookie, filters in the URL).
//!
//! Per page, each the median and worst of `--runs`:
//! - **first**: the render with the answer cache emptied (a view nobody has looked at): it waits
//!   up to the render budget (250 ms) for the answers and shows the rest as being computed;
//! - **complete**: from that first request until a reload (every 100 ms; the page's own refresh
//!   comes after 2 s) shows every answer — the time the answers take to compute;
//! - **warm**: a render with the answers cached (after signing in, which warms every page's
//!   default view, or while someone looks at the page: stale answers are refreshed behind it).

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
    state.insights.cache.load(
        state.pipeline.store().as_ref(),
        "bench",
        now - 30 * 86_400_000,
        now,
        &Default::default(),
    )?;
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
    let render = |page: &str| -> anyhow::Result<(Duration, String)> {
        let request = Request::get(format!("/p/bench/{page}"))
            .header("cookie", &cookie)
            .body(Body::empty())?;
        let started = Instant::now();
        let (status, body) = runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        anyhow::ensure!(status.is_success(), "{page}: {status}");
        Ok((started.elapsed(), body))
    };
    println!(
        "{:<10} {:>9} {:>7} {:>12} {:>7} {:>9} {:>7} {:>6}",
        "page", "first ms", "worst", "complete ms", "worst", "warm ms", "worst", "KB"
    );
    let pending = |body: &str| body.contains(r#"http-equiv="refresh""#);
    for page in PAGES {
        let (mut first, mut complete, mut warm, mut size) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..runs.max(1) {
            state.dashboard.cache.clear();
            let started = Instant::now();
            let (elapsed, mut body) = render(page)?;
            first.push(elapsed);
            while pending(&body) {
                std::thread::sleep(Duration::from_millis(100));
                body = render(page)?.1;
            }
            complete.push(started.elapsed());
            let (elapsed, body) = render(page)?;
            warm.push(elapsed);
            size = body.len();
        }
        let stats = |times: &mut Vec<Duration>| {
            times.sort();
            (
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
            )
        };
        let (a, b, c) = (stats(&mut first), stats(&mut complete), stats(&mut warm));
        let name = page.split('?').next().unwrap_or(page);
        println!(
            "{name:<10} {:>9.0} {:>7.0} {:>12.0} {:>7.0} {:>9.1} {:>7.1} {:>6.0}",
            a.0,
            a.1,
            b.0,
            b.1,
            c.0,
            c.1,
            size as f64 / 1024.0
        );
    }
    Ok(())
}
