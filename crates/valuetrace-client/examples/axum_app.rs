//! An axum app instrumented with valuetrace in a few lines.
//!
//! ```sh
//! cargo run --release -p valuetrace -- demo --no-live &   # or any valuetrace server
//! cargo run -p valuetrace-client --example axum_app -- http://127.0.0.1:7070 <ingest key>
//! curl -H 'x-user-id: alice' -H 'x-plan: pro' http://127.0.0.1:3000/api/items/42
//! ```

use axum::Router;
use axum::handler::Handler;
use axum::http::HeaderName;
use axum::routing::get;
use std::time::Duration;
use valuetrace_client::layer::{Identity, header};
use valuetrace_client::{Client, ClientConfig};

// Header names parsed once (a `&str` name is parsed and lowercased on every lookup).
static USER_ID: HeaderName = HeaderName::from_static("x-user-id");
static PLAN: HeaderName = HeaderName::from_static("x-plan");

async fn checkout() -> &'static str {
    "checked out"
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
            user_id: header(headers, &USER_ID),
            plan: header(headers, &PLAN),
            ..Identity::default()
        }
    });
    // 2. The layer, on the routes (so the route template is known): `route_layer` covers every
    //    route above it in one line, and axum boxes each layered route (~80 ns a request on our
    //    bench machine). On a hot handler, `handler.layer(client.global_layer())` instruments it
    //    without that box (the global layer is zero-sized: it allocates nothing at all).
    let app = Router::new()
        .route("/api/items/{id}", get(|| async { "an item" }))
        .route_layer(client.layer())
        .route("/api/checkout", get(checkout.layer(client.global_layer())));

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
