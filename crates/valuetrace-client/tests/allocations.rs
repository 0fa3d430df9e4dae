//! Allocations of the record path, for a call that sampling drops and one it keeps: a counting
//! global allocator
//! compares the same request through the router without a layer, with a layer that does nothing
//! (axum's `route_layer` boxes the layered route, which allocates on its own), with ours added by
//! `route_layer`, and with ours added to the handler (`Handler::layer`, which axum does not box).
//! The identity extractor copies its id into a `SmallString` (inline, no allocation), so the
//! record path must allocate nothing at all: ours equals the no-op layer, and the handler-level
//! (zero-sized, global) layer equals no layer. The request thread hands every call over (see `handoff`), so a kept
//! call allocates nothing on the request path either: its event is built when the sender
//! processes the hand-off (counted and printed).
//!
//! The routers are finalized with `with_state(())` as `axum::serve` does (an unfinalized router
//! turns its handlers into routes, and re-applies route layers, on every request).

use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{Extensions, HeaderMap, Request};
use axum::routing::get;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use tower::ServiceExt;
use valuetrace_client::layer::{Identity, Recorder, ValuetraceLayer};
use valuetrace_client::queue::bounded;
use valuetrace_client::sampling::{CallFacts, SamplingPolicy};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations so far, process-wide (this test binary runs one test and no other thread
/// allocates while it counts).
fn allocations() -> u64 {
    GLOBAL.stats().allocations as u64 + GLOBAL.stats().reallocations as u64
}

fn identity(headers: &HeaderMap, _: &Extensions) -> Identity {
    Identity {
        user_id: headers
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .map(Into::into),
        ..Identity::default()
    }
}

async fn item() -> &'static str {
    "item"
}

fn request(user: &str) -> Request<Body> {
    Request::builder()
        .uri("/api/items/7")
        .header("x-user-id", user)
        .body(Body::empty())
        .expect("request")
}

/// Allocations of one request through `app` (after a warm-up request, so that keys and
/// memoized weights exist).
fn allocations_of(runtime: &tokio::runtime::Runtime, app: &Router, user: &str) -> u64 {
    runtime.block_on(async {
        app.clone().oneshot(request(user)).await.expect("warm-up");
        let (request, app) = (request(user), app.clone());
        let before = allocations();
        let response = app.oneshot(request).await.expect("response");
        let after = allocations();
        drop(response);
        after - before
    })
}

#[test]
fn the_request_path_allocates_nothing_in_the_layer() {
    let policy = SamplingPolicy::default();
    // Users whose calls to this route the default policy (rate 0.1) drops, and one it keeps.
    let decision = |user: &str| {
        let facts = CallFacts {
            method: "GET",
            route: "/api/items/{id}",
            status: 200,
            latency_ms: 0.0,
            has_value: false,
            plan: None,
            session_id: None,
            user_id: Some(user),
            event_id: "",
        };
        policy.keep_of(&facts, policy.rate_of(&facts, false))
    };
    let users: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let dropped = users.iter().find(|u| !decision(u)).expect("a dropped user");
    let kept = users.iter().find(|u| decision(u)).expect("a kept user");

    let (producer, receiver, _) = bounded(1_000);
    let recorder = Recorder::new("shop", policy.clone(), producer, identity).leak();
    let routes = Router::new().route("/api/items/{id}", get(item));
    let bare: Router = routes.clone().with_state(());
    let instrumented: Router = routes
        .clone()
        .route_layer(ValuetraceLayer::new(recorder))
        .with_state(());
    assert!(recorder.set_global());
    let per_handler: Router = Router::new()
        .route(
            "/api/items/{id}",
            get(item.layer(ValuetraceLayer::global())),
        )
        .with_state(());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let extractor = {
        let request = request(dropped);
        let before = allocations();
        let who = identity(request.headers(), request.extensions());
        let n = allocations() - before;
        drop(who);
        n
    };
    let without = allocations_of(&runtime, &bare, dropped);
    // Any layer added with `route_layer` costs axum some allocations of its own (boxing the
    // layered route): measured with a layer that does nothing.
    let noop: Router = routes
        .route_layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
        .with_state(());
    let with_noop = allocations_of(&runtime, &noop, dropped);
    let with_dropped = allocations_of(&runtime, &instrumented, dropped);
    let per_handler_dropped = allocations_of(&runtime, &per_handler, dropped);
    let with_kept = allocations_of(&runtime, &instrumented, kept);
    eprintln!(
        "allocations per request: without a layer {without}, with a no-op route layer {with_noop}, with ours as a route layer {with_dropped} and on the handler {per_handler_dropped} (call dropped; the identity extractor makes {extractor}), {with_kept} (call kept: its event is built later, off the request path)"
    );
    assert_eq!(extractor, 0, "a short id is kept inline");
    assert_eq!(
        with_dropped, with_noop,
        "the layer's record path allocated for a dropped call"
    );
    // axum clones a layered handler into a box on every request: with the zero-sized global
    // layer the box stays empty, so not even that allocates. (`ValuetraceLayer::new` holds the
    // recorder's address, 8 bytes: one allocation more on a stateless handler.)
    assert_eq!(
        per_handler_dropped, without,
        "the handler-level layer allocated for a dropped call"
    );
    // A kept call is handed over like any other: its event is built off the request path.
    assert_eq!(
        with_kept, with_dropped,
        "the layer's record path allocated for a kept call"
    );
    let before = allocations();
    recorder.process_handoff();
    let processing = allocations() - before;
    let queued = receiver.try_iter().count();
    eprintln!(
        "processing the handed-over calls on the sender's side: {processing} allocations, {queued} events queued"
    );
    assert!(
        queued >= 1,
        "the kept call's event is queued once processed"
    );
}
