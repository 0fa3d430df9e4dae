//! Shared harness of the smaller server test files: a one-project server on an injected clock,
//! driven through the router.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;
use valuetrace_server::Server;
use valuetrace_server::config::{Config, ProjectConfig};

/// Opens a server with project `shop` whose keys are `ingest` and `read`, at clock `now`.
pub fn open_shop(dir: &Path, now: i64, ingest: &str, read: &str) -> Server {
    let config = Config {
        data_dir: dir.to_owned(),
        projects: vec![ProjectConfig {
            id: "shop".into(),
            name: String::new(),
            ingest_key_hashes: vec![valuetrace_server::auth::key_hash_string(ingest)],
            read_key_hashes: vec![valuetrace_server::auth::key_hash_string(read)],
            secret_env: None,
        }],
        ..Config::default()
    };
    Server::open_with_clock(config, Arc::new(move || now)).expect("server")
}

/// Sends one request through a fresh router; the answer must be JSON.
pub async fn call(server: &Server, request: Request<Body>) -> (StatusCode, Value) {
    let response = server.router().oneshot(request).await.expect("router");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&bytes).expect("json answer"))
}
