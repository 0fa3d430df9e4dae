//! Tenant isolation matrix (OWASP API1/API2/API5): every read and write endpoint with every kind
//! of key. An ingest key cannot read, a read key cannot ingest, another project's key gets the
//! same 404 as a project that does not exist, a revoked, malformed or missing key gets 401; and
//! events written with one project's key never show up in another's answers.

mod common;

use axum::http::StatusCode;
use common::*;
use std::sync::Arc;
use valuetrace_server::Server;

const NOW: i64 = 1_795_256_130_123;
const REVOKED_READ: &str = "vt_read_shop_revoked";
const REVOKED_INGEST: &str = "vt_ingest_shop_revoked";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Unauthorized,
    /// 404 whose body is the same as for a project that does not exist.
    Hidden,
}

/// Every kind of `Authorization` header value, with what it is.
fn key_kinds() -> Vec<(&'static str, Option<String>)> {
    let bearer = |key: &str| Some(format!("Bearer {key}"));
    vec![
        ("own ingest", bearer(SHOP_INGEST)),
        ("own read", bearer(SHOP_READ)),
        ("other ingest", bearer(OTHER_INGEST)),
        ("other read", bearer(OTHER_READ)),
        ("revoked ingest", bearer(REVOKED_INGEST)),
        ("revoked read", bearer(REVOKED_READ)),
        ("malformed: no scheme", Some(SHOP_READ.to_owned())),
        ("malformed: basic", Some(format!("Basic {SHOP_READ}"))),
        ("malformed: empty bearer", Some("Bearer ".to_owned())),
        (
            "malformed: key prefix",
            bearer(&SHOP_READ[..SHOP_READ.len() - 1]),
        ),
        ("malformed: long", bearer(&"x".repeat(8192))),
        ("none", None),
    ]
}

fn expected_read(kind: &str) -> Expect {
    match kind {
        "own read" => Expect::Ok,
        "other read" => Expect::Hidden,
        _ => Expect::Unauthorized,
    }
}

fn expected_write(kind: &str) -> Expect {
    match kind {
        "own ingest" | "other ingest" => Expect::Ok,
        _ => Expect::Unauthorized,
    }
}

/// A server whose shop project had the revoked keys, then lost them through a reload.
async fn server_with_revoked_keys(dir: &std::path::Path) -> Server {
    let mut config = two_projects(dir);
    config.projects[0] = project(
        "shop",
        &[SHOP_INGEST, REVOKED_INGEST],
        &[SHOP_READ, REVOKED_READ],
    );
    let server = Server::open_with_clock(config, Arc::new(|| NOW)).expect("server");
    // Before the reload the keys work...
    let (status, _) = call_text(
        &server,
        get_request(
            Some(&format!("Bearer {REVOKED_READ}")),
            "/api/v1/projects/shop/endpoints",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // ...and the reload revokes them without a restart.
    let summary = server.state.reload(&two_projects(dir)).expect("reload");
    assert_eq!(summary.keys, 4);
    server
}

#[tokio::test]
async fn every_endpoint_with_every_kind_of_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server_with_revoked_keys(dir.path()).await;
    let mut failures = Vec::new();

    for endpoint in [
        "endpoints",
        "timeseries",
        "impact",
        "errors",
        "integrations",
        "gaps",
        "latency-conversion?route=%2Fapi%2Fcheckout",
        "scorecard",
        "priority",
        "funnel?steps=%2Fapi%2Fproducts,%2Fapi%2Fcheckout",
        "paths?start=%2Fapi%2Fproducts",
        "retention",
        "ttv",
        "churn-risk",
        "experiments",
    ] {
        let missing_uri = format!("/api/v1/projects/no-such-project/{endpoint}");
        let (_, missing_body) = call_text(
            &server,
            get_request(Some(&format!("Bearer {SHOP_READ}")), &missing_uri),
        )
        .await;
        for (kind, authorization) in key_kinds() {
            let uri = format!("/api/v1/projects/shop/{endpoint}");
            let (status, body) =
                call_text(&server, get_request(authorization.as_deref(), &uri)).await;
            // From `other`'s side, shop must look exactly like a project that does not exist.
            let (hidden_status, hidden_body) = call_text(
                &server,
                get_request(Some(&format!("Bearer {OTHER_READ}")), &missing_uri),
            )
            .await;
            let got = match status {
                StatusCode::OK => Expect::Ok,
                StatusCode::UNAUTHORIZED => Expect::Unauthorized,
                StatusCode::NOT_FOUND
                    if body.replace("shop", "no-such-project") == missing_body
                        && hidden_status == StatusCode::NOT_FOUND
                        && hidden_body == missing_body =>
                {
                    Expect::Hidden
                }
                other => {
                    failures.push(format!("GET {uri} with {kind}: {other} {body}"));
                    continue;
                }
            };
            if got != expected_read(kind) {
                failures.push(format!(
                    "GET {uri} with {kind}: got {got:?} ({status} {body}), expected {:?}",
                    expected_read(kind)
                ));
            }
            if status == StatusCode::UNAUTHORIZED && body.contains("shop") {
                failures.push(format!(
                    "GET {uri} with {kind}: 401 names the project: {body}"
                ));
            }
        }
    }

    for (index, (kind, authorization)) in key_kinds().into_iter().enumerate() {
        let event = api_call(&format!("isolation-{index}"), NOW - 1000);
        let (status, body) =
            call_text(&server, batch_request(authorization.as_deref(), &[event])).await;
        let got = match status {
            StatusCode::OK => Expect::Ok,
            StatusCode::UNAUTHORIZED => Expect::Unauthorized,
            other => {
                failures.push(format!("POST /v1/batch with {kind}: {other} {body}"));
                continue;
            }
        };
        if got != expected_write(kind) {
            failures.push(format!(
                "POST /v1/batch with {kind}: got {got:?} ({status} {body}), expected {:?}",
                expected_write(kind)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Each project sees exactly the one event written with its own ingest key.
    for (project, key) in [("shop", SHOP_READ), ("other", OTHER_READ)] {
        let (status, body) = call_text(
            &server,
            get_request(
                Some(&format!("Bearer {key}")),
                &format!("/api/v1/projects/{project}/endpoints?since=2h"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(total_requests(&body), 1, "{project}: {body}");
    }
}

#[tokio::test]
async fn path_tricks_do_not_reach_another_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::open_with_clock(two_projects(dir.path()), Arc::new(|| NOW)).expect("server");
    let key = format!("Bearer {SHOP_READ}");
    for uri in [
        "/api/v1/projects/other/endpoints",
        "/api/v1/projects/OTHER/endpoints",
        "/api/v1/projects/other%00/endpoints",
        "/api/v1/projects/shop%2F..%2Fother/endpoints",
        "/api/v1/projects/../projects/other/endpoints",
        "/api/v1/projects/other/endpoints?project=shop",
    ] {
        let (status, body) = call_text(&server, get_request(Some(&key), uri)).await;
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{uri}: {status} {body}"
        );
        assert!(!body.contains("\"endpoints\""), "{uri}: {body}");
    }
}
