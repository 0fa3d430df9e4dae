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
use std::time::Duration;
use valuetrace_client::layer::{Identity, SmallString};
use valuetrace_client::{Client, ClientConfig};

fn header(headers: &HeaderMap, name: &str) -> Option<SmallString> {
    headers.get(name)?.to_str().ok().map(Into::into)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7070".into());
    let key = args.next().unwrap_or_default();

    // 1. The client: a bounded queue, exact aggregates and a background sender. Who the caller
    //    is comes from your own auth (headers here).
    let client = Client::start(ClientConfig::new(&url, &key, "shop"), |headers, _| {
        Identity {
            user_id: header(headers, "x-user-id"),
            plan: header(headers, "x-plan"),
            ..Identity::default()
        }
    });
    // 2. The layer, on the routes (so the route template is known).
    let app = Router::new()
        .route("/api/items/{id}", get(|| async { "an item" }))
        .route("/api/checkout", get(|| async { "checked out" }))
        .route_layer(client.layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000, sending to {url}; Ctrl-C stops");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // 3. At exit: flush what is queued and the last aggregates.
    let stats = client.shutdown(Duration::from_secs(5));
    println!("{stats:?}");
    Ok(())
}
