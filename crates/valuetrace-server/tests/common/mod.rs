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
        projects: vec![ProjectConfig::new(
            "shop",
            vec![valuetrace_server::auth::key_hash_string(ingest)],
            vec![valuetrace_server::auth::key_hash_string(read)],
        )],
        ..Config::default()
    };
    Server::open_with_clock(config, Arc::new(move || now)).expect("server")
}

/// Sends one request through a fresh router; the answer must be JSON.
pub async fn call(server: &Server, request: Request<Body>) -> (StatusCode, Value) {
    let (status, text) = call_text(server, request).await;
    (status, serde_json::from_str(&text).expect("json answer"))
}

pub const SHOP_INGEST: &str = "vt_ingest_shop_key";
pub const SHOP_READ: &str = "vt_read_shop_key";
pub const OTHER_INGEST: &str = "vt_ingest_other_key";
pub const OTHER_READ: &str = "vt_read_other_key";

/// A project whose keys are the given plain keys.
pub fn project(id: &str, ingest: &[&str], read: &[&str]) -> ProjectConfig {
    let hashes = |keys: &[&str]| {
        keys.iter()
            .map(|key| valuetrace_server::auth::key_hash_string(key))
            .collect()
    };
    ProjectConfig::new(id, hashes(ingest), hashes(read))
}

/// Projects `shop` and `other` with one ingest and one read key each.
pub fn two_projects(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        projects: vec![
            project("shop", &[SHOP_INGEST], &[SHOP_READ]),
            project("other", &[OTHER_INGEST], &[OTHER_READ]),
        ],
        ..Config::default()
    }
}

/// An `api_call` event at `timestamp`.
pub fn api_call(id: &str, timestamp: i64) -> Value {
    serde_json::json!({
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": timestamp,
        "service": "shop", "method": "GET", "route": "/api/products/{id}", "status": 200,
        "latency_ms": 12.0, "user_id": "u-1"
    })
}

/// A POST /v1/batch request with an optional `Authorization` header value.
pub fn batch_request(authorization: Option<&str>, events: &[Value]) -> Request<Body> {
    let mut builder = Request::post("/v1/batch").header("content-type", "application/json");
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder
        .body(Body::from(serde_json::to_vec(events).expect("serialize")))
        .expect("request")
}

/// A GET request with an optional `Authorization` header value.
pub fn get_request(authorization: Option<&str>, uri: &str) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(value) = authorization {
        builder = builder.header("authorization", value);
    }
    builder.body(Body::empty()).expect("request")
}

/// Sends one request through a fresh router; the answer as status and text.
pub async fn call_text(server: &Server, request: Request<Body>) -> (StatusCode, String) {
    let (status, _, text) = call_full(server, request).await;
    (status, text)
}

/// A server serving on a real socket (the connection loop included), on the wall clock.
pub struct LiveServer {
    pub address: std::net::SocketAddr,
    pub state: Arc<valuetrace_server::AppState>,
    running: valuetrace_server::RunningServer,
}

impl LiveServer {
    pub async fn start(config: Config) -> LiveServer {
        let server = Server::open(config).expect("server opens");
        Self::start_opened(server).await
    }

    pub async fn start_opened(server: Server) -> LiveServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let state = server.state.clone();
        let running = server.spawn(listener);
        LiveServer {
            address,
            state,
            running,
        }
    }

    pub async fn stop(self) {
        self.running.stop().await.expect("clean stop");
    }
}

/// One HTTP/1.1 request over a new connection (blocking; call from a blocking thread):
/// status, `Retry-After` if any, body.
pub fn http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Option<u64>, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let auth = key
        .map(|key| format!("Authorization: Bearer {key}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())
            .flatten()
    });
    Ok((status, retry_after, body.to_owned()))
}

/// Sends one request through a fresh router; status, headers and text.
pub async fn call_full(
    server: &Server,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = server.router().oneshot(request).await.expect("router");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A header's value as text.
pub fn header(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The sum of `requests` over the rows of an `/endpoints` answer.
pub fn total_requests(endpoints_answer: &str) -> u64 {
    let answer: Value = serde_json::from_str(endpoints_answer).expect("json answer");
    answer["endpoints"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["requests"].as_u64().unwrap_or(0))
        .sum()
}
