//! What the middleware adds per request, in one criterion run: the same axum handler (a static
//! string) driven through `tower::ServiceExt::oneshot` inside a current-thread runtime, without and
//! with the layer (default sampling policy, identity from a header, the queue drained by a
//! thread, no network): added with `Router::route_layer` (axum boxes the layered route: the
//! no-op case measures that alone) and with `Handler::layer` on the handler (the zero-sized
//! global layer: not boxed, and axum's per-request box of the handler stays empty). Two
//! caller mixes: a known user (most calls sampled away: the common case) and every call kept.
//! Routers are finalized with `with_state(())`, as `axum::serve` does.
//!
//! A second group times the sampling hash of a UUID, against the byte-wise hash it replaced.
//!
//! `cargo bench -p valuetrace-client --bench overhead`

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
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

async fn item() -> &'static str {
    "item"
}

/// A recorder, and a thread doing what the client's sender does: build the events of the kept
/// calls handed over (at once while there are many, else every 5 ms) and take the queue away.
fn recorder(policy: SamplingPolicy) -> &'static Recorder {
    let (producer, receiver, _) = bounded(100_000);
    let recorder = Recorder::new("bench", policy, producer, |headers, _| Identity {
        user_id: header(headers, &USER_HEADER),
        ..Identity::default()
    })
    .leak();
    std::thread::spawn(move || {
        loop {
            let built = recorder.process_handoff();
            while receiver.try_recv().is_ok() {}
            if built < 500 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    });
    recorder
}

fn routes() -> Router {
    Router::new().route("/api/items/{id}", get(item))
}

fn request(i: u64) -> Request<Body> {
    Request::builder()
        .uri(if i.is_multiple_of(2) {
            "/api/items/1"
        } else {
            "/api/items/2"
        })
        .header("x-user-id", USER)
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
    let sampled = recorder(SamplingPolicy::default());
    // The handler-level layer is the zero-sized one of the global recorder.
    sampled.set_global();
    let apps: [(&str, Router); 5] = [
        ("without the layer", routes().with_state(())),
        (
            "a no-op route layer",
            routes()
                .route_layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
                .with_state(()),
        ),
        (
            "with the route layer (default sampling)",
            routes()
                .route_layer(ValuetraceLayer::new(sampled))
                .with_state(()),
        ),
        (
            "with the handler layer (default sampling)",
            Router::new()
                .route(
                    "/api/items/{id}",
                    get(item.layer(ValuetraceLayer::global())),
                )
                .with_state(()),
        ),
        (
            "with the route layer (every call kept)",
            routes()
                .route_layer(ValuetraceLayer::new(recorder(keep_all)))
                .with_state(()),
        ),
    ];
    let mut group = c.benchmark_group("request");
    for (name, app) in &apps {
        group.bench_function(*name, |b| {
            // The requests of a sample run inside one `block_on`, as a server's run inside its
            // runtime (entering the runtime per request would add its own cost to every case).
            b.iter_custom(|iterations| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for i in 0..iterations {
                        let response = app.clone().oneshot(request(i)).await;
                        black_box(response.expect("response"));
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

/// The sampling decision hashes the session (else user) id of every call: the hash of a UUID,
/// against the byte-wise FNV-1a it replaced (a chain of one dependent multiply per byte).
fn sampling_hash(c: &mut Criterion) {
    fn fnv1a(text: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.as_bytes() {
            h = (h ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        valuetrace_client::sampling::mix(h)
    }
    let mut group = c.benchmark_group("sampling hash of a UUID");
    group.bench_function("stable_hash (8 bytes per step)", |b| {
        b.iter(|| valuetrace_client::sampling::stable_hash(black_box(USER)))
    });
    group.bench_function("byte-wise FNV-1a (before)", |b| {
        b.iter(|| fnv1a(black_box(USER)))
    });
    group.finish();
}

criterion_group!(benches, overhead, sampling_hash);
criterion_main!(benches);
