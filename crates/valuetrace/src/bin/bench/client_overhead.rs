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
//! A fifth router keeps every call (a policy of weight 1): its events are built off the request
//! path by a thread that does what the client's sender does every 5 ms, whose CPU time per
//! event is reported.
//!
//! `--only without|with|handler|noop|kept` drives one router for `--rounds` rounds and reports nothing: a
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

/// A recorder, and a thread doing what the client's sender does every 5 ms (at once while its
/// batch of 500 fills): build the events of the calls handed over (timed: events built, ns of
/// CPU) and take the queue (here, away).
struct Processed {
    recorder: &'static Recorder,
    stop: Arc<AtomicBool>,
    built: Arc<(AtomicU64, AtomicU64)>,
    thread: std::thread::JoinHandle<()>,
    queued: Arc<valuetrace_client::queue::Counters>,
}

impl Processed {
    fn start(policy: SamplingPolicy) -> Processed {
        let (producer, receiver, queued) = bounded(100_000);
        let recorder = Recorder::new("bench", policy, producer, |headers, _| Identity {
            user_id: header(headers, &USER_HEADER),
            ..Identity::default()
        })
        .leak();
        let stop = Arc::new(AtomicBool::new(false));
        let built = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let thread = {
            let (stop, built) = (stop.clone(), built.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let n = recorder.process_handoff();
                    while receiver.try_recv().is_ok() {}
                    if n > 0 {
                        built.0.fetch_add(n as u64, Ordering::Relaxed);
                        built
                            .1
                            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                    // Like the sender, which sleeps only while its batch is not full.
                    if n < 500 {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
            })
        };
        Processed {
            recorder,
            stop,
            built,
            thread,
            queued,
        }
    }

    fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let (events, busy_ns) = (
            self.built.0.load(Ordering::Relaxed),
            self.built.1.load(Ordering::Relaxed),
        );
        format!(
            "{events} events built off the request path ({:.0} ns of CPU each), {} queued, {} dropped",
            busy_ns as f64 / events.max(1) as f64,
            self.queued.enqueued.load(Ordering::Relaxed),
            self.queued.dropped.load(Ordering::Relaxed)
        )
    }
}

pub fn run(requests: u32, rounds: usize, only: Option<&str>) -> anyhow::Result<()> {
    let sampled = Processed::start(SamplingPolicy::default());
    let all = Processed::start(SamplingPolicy {
        default_weight: 1.0,
        ..SamplingPolicy::default()
    });
    let routes = Router::new().route("/api/items/{id}", get(item));
    let bare: Router = routes.clone().with_state(());
    let instrumented: Router = routes
        .clone()
        .route_layer(ValuetraceLayer::new(sampled.recorder))
        .with_state(());
    // The handler-level layer is the zero-sized one of the global recorder.
    sampled.recorder.set_global();
    let per_handler: Router = Router::new()
        .route(
            "/api/items/{id}",
            get(item.layer(ValuetraceLayer::global())),
        )
        .with_state(());
    let noop: Router = routes
        .clone()
        .route_layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
        .with_state(());
    let kept: Router = routes
        .route_layer(ValuetraceLayer::new(all.recorder))
        .with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    if let Some(only) = only {
        let app = match only {
            "without" => &bare,
            "with" => &instrumented,
            "handler" => &per_handler,
            "noop" => &noop,
            "kept" => &kept,
            other => {
                anyhow::bail!("--only {other}: expected without, with, handler, noop or kept")
            }
        };
        runtime.block_on(async {
            for _ in 0..rounds {
                drive(app, requests).await;
            }
        });
        return Ok(());
    }
    let mut rows: Vec<[f64; 5]> = Vec::new();
    let apps = [&bare, &instrumented, &noop, &per_handler, &kept];
    runtime.block_on(async {
        for app in apps {
            drive(app, requests / 10).await;
        }
        for _ in 0..rounds {
            let mut row = [0.0; 5];
            for (time, app) in row.iter_mut().zip(apps) {
                *time = drive(app, requests).await;
            }
            rows.push(row);
        }
    });
    let column = |f: &dyn Fn(&[f64; 5]) -> f64| median(rows.iter().map(f).collect());
    let fastest = |i: usize| rows.iter().map(|r| r[i]).fold(f64::INFINITY, f64::min);
    println!(
        "{requests} requests × {rounds} rounds, median ns per request (fastest round in brackets); added = median of the per-round differences"
    );
    println!(
        "without the layer:                    {:.0} ({:.0})",
        column(&|r| r[0]),
        fastest(0)
    );
    for (i, name) in [
        (1, "route_layer, call sampled away:"),
        (3, "on the handler, call sampled away:"),
        (2, "a no-op route_layer (axum alone):"),
        (4, "route_layer, every call kept:"),
    ] {
        println!(
            "{name:37} {:.0} ({:.0}), added {:.0} ns ({:.2}×)",
            column(&|r| r[i]),
            fastest(i),
            column(&|r| r[i] - r[0]),
            column(&|r| r[i] / r[0])
        );
    }
    println!(
        "ours beyond axum's route_layer: {:.0} ns",
        column(&|r| r[1] - r[2])
    );
    println!("sampled: {}", sampled.stop());
    println!("every call kept: {}", all.stop());
    Ok(())
}
