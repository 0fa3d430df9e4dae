//! `valuetrace-bench client-overhead`: what the client middleware adds per request. The same
//! axum handler (returning a static string) is driven through `tower::ServiceExt::oneshot` on a
//! current-thread runtime, without `ValuetraceLayer`, with it added by `Router::route_layer`,
//! with it on the handler (`Handler::layer` of the zero-sized global layer: axum does not box
//! it, and its per-request box of the handler stays empty), and with a route layer that
//! does nothing (what axum's `route_layer` costs any layer: the layered route is boxed), in
//! alternating rounds (default sampling policy, a 100k queue drained by a thread, no network). Each router is finalized with `with_state(())`, as `axum::serve` does
//! (an unfinalized router turns its handlers into routes, and re-applies route layers, on every
//! request). Reports the median ns per request of each and the median of the per-round
//! differences (paired within a round, so the VM's drift between rounds cancels).
//!
//! `--only without|with|handler|noop` drives one router for `--rounds` rounds and reports nothing: a
//! target for `perf record`.

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::Request;
use axum::routing::get;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tower::ServiceExt;
use valuetrace_client::layer::{Identity, Recorder, ValuetraceLayer, header};
use valuetrace_client::queue::bounded;
use valuetrace_client::sampling::SamplingPolicy;

/// The host's identity header, parsed once (`headers.get("x-user-id")` would parse and
/// lowercase the name on every request).
static USER_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-user-id");

/// The caller: a UUID, as most user ids are (the default policy samples this one's calls away:
/// the common case).
const USER: &str = "7c1f3a52-9d4e-4b8a-a6f0-2e5d8c9b1a47";

async fn drive(app: &Router, requests: u32) -> f64 {
    let started = Instant::now();
    for i in 0..requests {
        let request = Request::builder()
            .uri(if i % 2 == 0 {
                "/api/items/1"
            } else {
                "/api/items/2"
            })
            .header("x-user-id", USER)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        std::hint::black_box(response);
    }
    started.elapsed().as_nanos() as f64 / f64::from(requests)
}

async fn item() -> &'static str {
    "item"
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(requests: u32, rounds: usize, only: Option<&str>) -> anyhow::Result<()> {
    let (producer, receiver, counters) = bounded(100_000);
    let recorder = Recorder::new(
        "bench",
        SamplingPolicy::default(),
        producer,
        |headers, _| Identity {
            user_id: header(headers, &USER_HEADER),
            ..Identity::default()
        },
    )
    .leak();
    // What the client's sender thread does every 5 ms: record the calls the request threads
    // handed over, and take the queued events (here, away). Its CPU time per call is reported.
    let processor = Arc::new((AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0)));
    let processing = {
        let processor = processor.clone();
        std::thread::spawn(move || {
            let (stop, calls, busy_ns) = &*processor;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let n = recorder.process_handoff();
                while receiver.try_recv().is_ok() {}
                if n > 0 {
                    calls.fetch_add(n as u64, Ordering::Relaxed);
                    busy_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let routes = Router::new().route("/api/items/{id}", get(item));
    let bare: Router = routes.clone().with_state(());
    let instrumented: Router = routes
        .clone()
        .route_layer(ValuetraceLayer::new(recorder))
        .with_state(());
    // The handler-level layer is the zero-sized one of the global recorder.
    recorder.set_global();
    let per_handler: Router = Router::new()
        .route(
            "/api/items/{id}",
            get(item.layer(ValuetraceLayer::global())),
        )
        .with_state(());
    let noop: Router = routes
        .route_layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
        .with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    if let Some(only) = only {
        let app = match only {
            "without" => &bare,
            "with" => &instrumented,
            "handler" => &per_handler,
            "noop" => &noop,
            other => anyhow::bail!("--only {other}: expected without, with, handler or noop"),
        };
        runtime.block_on(async {
            for _ in 0..rounds {
                drive(app, requests).await;
            }
        });
        processor.0.store(true, Ordering::Relaxed);
        let _ = processing.join();
        return Ok(());
    }
    let mut rows: Vec<[f64; 4]> = Vec::new();
    let apps = [&bare, &instrumented, &noop, &per_handler];
    runtime.block_on(async {
        for app in apps {
            drive(app, requests / 10).await;
        }
        for _ in 0..rounds {
            let mut row = [0.0; 4];
            for (time, app) in row.iter_mut().zip(apps) {
                *time = drive(app, requests).await;
            }
            rows.push(row);
        }
    });
    let column = |f: &dyn Fn(&[f64; 4]) -> f64| median(rows.iter().map(f).collect());
    let (without, with, noop) = (column(&|r| r[0]), column(&|r| r[1]), column(&|r| r[2]));
    let added = column(&|r| r[1] - r[0]);
    let noop_added = column(&|r| r[2] - r[0]);
    let beyond_noop = column(&|r| r[1] - r[2]);
    println!(
        "{requests} requests × {rounds} rounds: without {without:.0} ns/request, with {with:.0} ns/request, added {added:.0} ns ({:.2}×)",
        column(&|r| r[1] / r[0])
    );
    println!(
        "a no-op layer (axum route_layer alone): {noop:.0} ns/request, adds {noop_added:.0} ns; ours beyond it: {beyond_noop:.0} ns"
    );
    println!(
        "ours on the handler (Handler::layer, not boxed by axum): {:.0} ns/request, added {:.0} ns ({:.2}×)",
        column(&|r| r[3]),
        column(&|r| r[3] - r[0]),
        column(&|r| r[3] / r[0])
    );
    let fastest = |i: usize| rows.iter().map(|r| r[i]).fold(f64::INFINITY, f64::min);
    println!(
        "fastest rounds: without {:.0}, with {:.0} (+{:.0}), no-op layer {:.0} (+{:.0}), on the handler {:.0} (+{:.0})",
        fastest(0),
        fastest(1),
        fastest(1) - fastest(0),
        fastest(2),
        fastest(2) - fastest(0),
        fastest(3),
        fastest(3) - fastest(0)
    );
    processor.0.store(true, Ordering::Relaxed);
    let _ = processing.join();
    let (processed, busy_ns) = (
        processor.1.load(Ordering::Relaxed),
        processor.2.load(Ordering::Relaxed),
    );
    println!(
        "off the request path (the sender thread): {processed} calls recorded, {:.0} ns of CPU each; events queued {}, dropped {}",
        busy_ns as f64 / processed.max(1) as f64,
        counters.enqueued.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed)
    );
    Ok(())
}
