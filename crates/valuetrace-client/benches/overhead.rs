//! What the middleware adds per request, in one criterion run: the same axum router (one route,
//! a static-string handler) driven through `tower::ServiceExt::oneshot` on a current-thread
//! runtime, without and with the layer (default sampling policy, identity from a header, the
//! queue drained by a thread, no network). Two caller mixes: a known user (most calls sampled
//! away: the common case) and every call kept.
//!
//! `cargo bench -p valuetrace-client --bench overhead`

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use tower::ServiceExt;
use valuetrace_client::layer::{Identity, Recorder, ValuetraceLayer};
use valuetrace_client::queue::bounded;
use valuetrace_client::sampling::SamplingPolicy;

/// The host's identity header, parsed once (`headers.get("x-user-id")` would parse and
/// lowercase the name on every request).
static USER_HEADER: axum::http::HeaderName = axum::http::HeaderName::from_static("x-user-id");

fn instrumented(policy: SamplingPolicy) -> Router {
    let (producer, receiver, _) = bounded(100_000);
    std::thread::spawn(move || while receiver.recv().is_ok() {});
    let recorder = Arc::new(Recorder::new("bench", policy, producer, |headers, _| {
        Identity {
            user_id: headers
                .get(&USER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ..Identity::default()
        }
    }));
    bare().route_layer(ValuetraceLayer::new(recorder))
}

fn bare() -> Router {
    Router::new().route("/api/items/{id}", get(|| async { "item" }))
}

fn request(i: u64) -> Request<Body> {
    Request::builder()
        .uri(if i.is_multiple_of(2) {
            "/api/items/1"
        } else {
            "/api/items/2"
        })
        .header("x-user-id", "alice")
        .body(Body::empty())
        .expect("request")
}

fn overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let keep_all = SamplingPolicy {
        default_weight: 1.0,
        ..SamplingPolicy::default()
    };
    let apps = [
        ("without the layer", bare()),
        (
            "with the layer (default sampling)",
            instrumented(SamplingPolicy::default()),
        ),
        ("with the layer (every call kept)", instrumented(keep_all)),
    ];
    let mut group = c.benchmark_group("request");
    for (name, app) in &apps {
        let mut i = 0u64;
        group.bench_function(*name, |b| {
            b.iter(|| {
                i += 1;
                let response = runtime.block_on(app.clone().oneshot(request(i)));
                black_box(response.expect("response"));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
