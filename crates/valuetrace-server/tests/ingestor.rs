//! The one ingest path (`Ingestor::accept`), called the way a non-JSON front-end (an OTLP or
//! Segment decoder) will: events as values a decoder built, items it could not translate, and
//! JSON text side by side. Each gets its answer by index, the valid ones are stored once
//! (pseudonymized), and the batch API sees them as the same data.

mod common;

use common::{SHOP_INGEST, SHOP_READ, api_call, batch_request, call, get_request, two_projects};
use std::sync::Arc;
use valuetrace_server::Server;
use valuetrace_server::ingestor::{Incoming, Ingestor};

const NOW: i64 = 1_790_000_000_000;

#[tokio::test]
async fn every_front_end_shares_one_path_with_answers_by_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::open_with_clock(two_projects(dir.path()), Arc::new(|| NOW)).expect("server");
    let text = api_call("json-1", NOW - 60_000).to_string();
    let mut bad = api_call("bad-1", NOW - 60_000);
    bad["status"] = serde_json::json!(999);
    let events = vec![
        Incoming::Value(api_call("value-1", NOW - 60_000)),
        Incoming::Refused {
            error: "span 3: no http.route attribute".into(),
            reason: "untranslatable",
        },
        Incoming::Json(&text),
        Incoming::Value(bad),
        // The same id twice in one batch: the second is a duplicate.
        Incoming::Value(api_call("value-1", NOW - 60_000)),
    ];
    let ingestor = Ingestor::new(&server.state);
    let answer = ingestor.accept("shop", events, NOW).expect("accepted");
    assert_eq!((answer.accepted, answer.duplicates), (2, 1), "{answer:?}");
    let rejected: Vec<(usize, Option<&str>, &str)> = answer
        .rejected
        .iter()
        .map(|r| (r.index, r.event_id.as_deref(), r.reason))
        .collect();
    assert_eq!(rejected[0], (1, None, "untranslatable"));
    assert_eq!(rejected[1].0, 3);
    assert_eq!(rejected[1].1, Some("bad-1"));
    assert!(
        answer.rejected[1].error.contains("status"),
        "{:?}",
        answer.rejected[1]
    );

    // A retry through the batch API: the same ids are duplicates, never counted twice.
    let (status, retried) = call(
        &server,
        batch_request(
            Some(&format!("Bearer {SHOP_INGEST}")),
            &[
                api_call("value-1", NOW - 60_000),
                api_call("json-1", NOW - 60_000),
            ],
        ),
    )
    .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    assert_eq!(
        (retried["accepted"].as_u64(), retried["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    let (_, health) = call(
        &server,
        get_request(
            Some(&format!("Bearer {SHOP_READ}")),
            "/api/v1/projects/shop/endpoints?since=1h",
        ),
    )
    .await;
    assert_eq!(health["endpoints"][0]["requests"], 2, "{health}");
    assert_eq!(health["endpoints"][0]["unique_users"], 1, "{health}");

    // An unknown project is refused as a whole.
    let unknown = ingestor.accept("nope", vec![Incoming::Json(&text)], NOW);
    assert!(unknown.is_err());
}
