//! An axum app instrumented with valuetrace in a few lines.
//!
//! ```sh
//! cargo run --release -p valuetrace -- demo --no-live &   # or any valuetrace server
//! cargo run -p valuetrace-client --example axum_app -- http://127.0.0.1:7070 <ingest key>
//! curl -H 'x-user-id: alice' -H 'x-plan: pro' http://127.0.0.1:3000/api/items/42
//! ```

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;
use valuetrace_client::layer::{Identity, Recorder, ValuetraceLayer};
use valuetrace_client::queue::bounded;
use valuetrace_client::sampling::SamplingPolicy;
use valuetrace_client::sender::{SenderConfig, spawn};

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let key = args.next().unwrap_or_default();

    // 1. A bounded queue and the background sender.
    let (producer, receiver, counters) = bounded(10_000);
    let sender = spawn(receiver, SenderConfig::new(&url, &key));
    // 2. A recorder: who the caller is comes from your own auth (headers here).
    let recorder = Arc::new(Recorder::new(
        "shop",
        SamplingPolicy::default(),
        producer,
        |headers, _extensions| Identity {
            user_id: header(headers, "x-user-id"),
            plan: header(headers, "x-plan"),
            ..Identity::default()
        },
    ));
    // 3. The layer, on the routes (so the route template is known).
    let app = Router::new()
        .route("/api/items/{id}", get(|| async { "an item" }))
        .route("/api/checkout", get(|| async { "checked out" }))
        .route_layer(ValuetraceLayer::new(recorder));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000, sending to {url}; Ctrl-C stops");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let stats = sender.stats.clone();
    sender.shutdown(Duration::from_secs(5));
    println!(
        "sent {} events, dropped {} (queue full) + {} (collector)",
        stats.sent_events.load(std::sync::atomic::Ordering::Relaxed),
        counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
        stats
            .dropped_events
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}
