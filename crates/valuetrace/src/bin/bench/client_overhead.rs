//! `valuetrace-bench client-overhead`: what the client middleware adds per request. The same
//! axum router (one route, a handler returning a static string) is driven through
//! `tower::ServiceExt::oneshot` on a current-thread runtime, with and without `ValuetraceLayer`
//! (default sampling policy, a 100k queue drained by a thread, no network), and with a layer
//! that does nothing (what axum's `route_layer` costs any layer: it boxes the layered route), in
//! alternating rounds; reports the median ns per request of each, the differences and the ratio.

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;
use valuetrace_client::layer::{Identity, Recorder, ValuetraceLayer};
use valuetrace_client::queue::bounded;
use valuetrace_client::sampling::SamplingPolicy;

/// The host's identity header, parsed once (`headers.get("x-user-id")` would parse and
/// lowercase the name on every request).
static USER_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-user-id");

async fn drive(app: &Router, requests: u32) -> f64 {
    let started = Instant::now();
    for i in 0..requests {
        let request = Request::builder()
            .uri(if i % 2 == 0 {
                "/api/items/1"
            } else {
                "/api/items/2"
            })
            .header("x-user-id", "alice")
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        std::hint::black_box(response);
    }
    started.elapsed().as_nanos() as f64 / f64::from(requests)
}

pub fn run(requests: u32, rounds: usize) -> anyhow::Result<()> {
    let (producer, receiver, counters) = bounded(100_000);
    let drain = std::thread::spawn(move || while receiver.recv().is_ok() {});
    let recorder = Arc::new(Recorder::new(
        "bench",
        SamplingPolicy::default(),
        producer,
        |headers, _| Identity {
            user_id: headers
                .get(&USER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..Identity::default()
        },
    ));
    let bare = Router::new().route("/api/items/{id}", get(|| async { "item" }));
    let instrumented = bare
        .clone()
        .route_layer(ValuetraceLayer::new(recorder.clone()));
    let noop = bare
        .clone()
        .route_layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let (mut without, mut with, mut with_noop) = (Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        drive(&bare, requests / 10).await;
        drive(&instrumented, requests / 10).await;
        drive(&noop, requests / 10).await;
        for _ in 0..rounds {
            without.push(drive(&bare, requests).await);
            with.push(drive(&instrumented, requests).await);
            with_noop.push(drive(&noop, requests).await);
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (without, with, noop) = (
        median(&mut without),
        median(&mut with),
        median(&mut with_noop),
    );
    println!(
        "{requests} requests × {rounds} rounds: without {without:.0} ns/request, with {with:.0} ns/request, added {:.0} ns ({:.2}×)",
        with - without,
        with / without
    );
    println!(
        "a no-op layer (axum route_layer alone): {noop:.0} ns/request, adds {:.0} ns; ours beyond it: {:.0} ns",
        noop - without,
        with - noop
    );
    println!(
        "events queued {}, dropped {}",
        counters.enqueued.load(std::sync::atomic::Ordering::Relaxed),
        counters.dropped.load(std::sync::atomic::Ordering::Relaxed)
    );
    drop(recorder);
    drop(instrumented);
    let _ = drain.join();
    Ok(())
}
