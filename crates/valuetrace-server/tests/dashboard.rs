//! The dashboard over HTTP: sign-in with a read key (HttpOnly session cookie), no page without
//! it, every page renders with the hand-built dataset's key numbers, and the filters in the URL
//! reach the answers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{
    OTHER_READ, SHOP_INGEST, SHOP_READ, batch_request, call, call_full, header, two_projects,
};
use serde_json::{Value, json};
use std::sync::Arc;
use valuetrace_server::Server;

const NOW: i64 = 1_790_000_000_000;
const MIN: i64 = 60_000;

fn server(dir: &std::path::Path) -> Server {
    let server = Server::open_with_clock(two_projects(dir), Arc::new(|| NOW)).expect("server");
    // Every answer, however loaded the test machine: no "being computed" sections.
    server
        .state
        .dashboard
        .set_render_budget(std::time::Duration::from_secs(60));
    server
}

#[allow(clippy::too_many_arguments)]
fn call_event(
    id: &str,
    t: i64,
    method: &str,
    route: &str,
    status: u16,
    user: &str,
    plan: &str,
    extra: Value,
) -> Value {
    let mut event = json!({
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": t,
        "service": "shop", "method": method, "route": route, "status": status,
        "latency_ms": 80.0, "user_id": user, "session_id": format!("s-{user}"), "plan": plan
    });
    for (k, v) in extra.as_object().expect("object") {
        event[k] = v.clone();
    }
    event
}

/// Alice (pro) browses and pays 120 (once failing with a 503 first); Bob (free) browses only and
/// hits one unknown 500. 7 calls, 2 failed, one purchase outcome of 120.
async fn load(server: &Server) {
    let t = NOW - 30 * MIN;
    let events = vec![
        call_event(
            "a1",
            t,
            "GET",
            "/api/products",
            200,
            "alice",
            "pro",
            json!({}),
        ),
        call_event(
            "a2",
            t + MIN,
            "POST",
            "/api/payments",
            503,
            "alice",
            "pro",
            json!({"error_type": "upstream_error"}),
        ),
        call_event(
            "a3",
            t + 2 * MIN,
            "POST",
            "/api/payments",
            201,
            "alice",
            "pro",
            json!({"value": 120.0, "currency": "EUR"}),
        ),
        json!({"type": "outcome", "schema_version": 1, "event_id": "o1", "timestamp": t + 3 * MIN,
               "name": "purchase", "user_id": "alice", "session_id": "s-alice", "value": 120.0, "currency": "EUR"}),
        call_event(
            "b1",
            t,
            "GET",
            "/api/products",
            200,
            "bob",
            "free",
            json!({}),
        ),
        call_event(
            "b2",
            t + MIN,
            "GET",
            "/api/products/{id}",
            200,
            "bob",
            "free",
            json!({}),
        ),
        call_event(
            "b3",
            t + 2 * MIN,
            "GET",
            "/api/products/{id}",
            500,
            "bob",
            "free",
            json!({}),
        ),
        call_event(
            "b4",
            t + 3 * MIN,
            "GET",
            "/api/products",
            200,
            "bob",
            "free",
            json!({}),
        ),
    ];
    let (status, answer) = call(
        server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 8, "{answer}");
}

async fn sign_in(
    server: &Server,
    project: &str,
    key: &str,
) -> (StatusCode, Option<String>, String) {
    let body = format!("project={project}&key={key}&next=");
    let request = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    let (status, headers, text) = call_full(server, request).await;
    let cookie = header(&headers, "set-cookie");
    (status, cookie, text)
}

/// Signs in to `shop` with its read key; the `vt_session=<id>` pair to send back.
async fn session_of_shop(server: &Server) -> String {
    let (_, cookie, _) = sign_in(server, "shop", SHOP_READ).await;
    let cookie = cookie.expect("a session cookie");
    cookie.split(';').next().expect("name=value").to_owned()
}

async fn page(
    server: &Server,
    cookie: Option<&str>,
    uri: &str,
) -> (StatusCode, Option<String>, String) {
    let mut builder = Request::get(uri);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let (status, headers, text) =
        call_full(server, builder.body(Body::empty()).expect("request")).await;
    (status, header(&headers, "location"), text)
}

#[tokio::test]
async fn pages_need_a_session_of_their_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    // No cookie: to the login form, remembering where the user was going; no data.
    let (status, location, text) = page(&server, None, "/p/shop/health?since=24h").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("/login?project=shop&next=%2Fp%2Fshop%2Fhealth%3Fsince%3D24h")
    );
    assert!(!text.contains("/api/payments"));
    let (status, _, _) = page(&server, Some("vt_session=forged"), "/p/shop/errors").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A wrong key, or another project's key: refused with a message, no cookie.
    let (status, cookie, text) = sign_in(&server, "shop", "vt_read_nope").await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    assert!(text.contains("not a read key"), "{text}");
    let (status, cookie, text) = sign_in(&server, "shop", OTHER_READ).await;
    assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    assert!(text.contains("does not open project `shop`"), "{text}");
    // The ingest key is not a read key.
    let (status, _, _) = sign_in(&server, "shop", SHOP_INGEST).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The right key: an HttpOnly, SameSite cookie and a redirect to the project's first page.
    let (status, cookie, _) = sign_in(&server, "shop", SHOP_READ).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(SHOP_READ),
        "the cookie holds a session id, not the key"
    );
    let session = cookie.split(';').next().expect("name=value").to_owned();
    let (status, _, _) = page(&server, Some(&session), "/p/shop/health").await;
    assert_eq!(status, StatusCode::OK);
    // That session does not open the other project.
    let (status, _, _) = page(&server, Some(&session), "/p/other/health").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Signing out ends it.
    let request = Request::post("/logout")
        .header("cookie", &session)
        .body(Body::empty())
        .expect("request");
    let (status, _, _) = call_full(&server, request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = page(&server, Some(&session), "/p/shop/health").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_dimensions_answer_lists_the_values_seen_with_their_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let uri = "/api/v1/projects/shop/dimensions?since=24h";
    let (status, answer) = call(
        &server,
        common::get_request(Some(&format!("Bearer {SHOP_READ}")), uri),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Bob's 4 calls (free) before Alice's 3 (pro); one service; no segments, variants, providers.
    assert_eq!(
        answer["plans"],
        json!([{"value": "free", "calls": 4}, {"value": "pro", "calls": 3}])
    );
    assert_eq!(answer["services"], json!([{"value": "shop", "calls": 7}]));
    assert_eq!(answer["segments"], json!([]));
    assert_eq!(
        answer["from"].as_i64().map(|t| t % 86_400_000),
        Some(0),
        "whole days"
    );
    let (status, _) = call(
        &server,
        common::get_request(Some(&format!("Bearer {OTHER_READ}")), uri),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another project's key");
    let (status, answer) = call(
        &server,
        common::get_request(
            Some(&format!("Bearer {SHOP_READ}")),
            "/api/v1/projects/shop/dimensions?plan=pro",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn every_page_shows_the_datasets_numbers_and_applies_the_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    let cookie = Some(cookie.as_str());

    let (status, _, health) = page(&server, cookie, "/p/shop/health?since=24h").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(health.contains("<h1>API Business Health</h1>"));
    for endpoint in [
        "GET /api/products",
        "POST /api/payments",
        "GET /api/products/{id}",
    ] {
        assert!(health.contains(endpoint), "{endpoint} missing");
    }
    // 7 calls; 2 of them 5xx (28.6%); 2 active users; the payment's 120 is attributed.
    assert!(health.contains(">7<"), "request total");
    assert!(health.contains("28.6%"), "server error rate");
    // Issue 18, point 3: the events are in EUR, and the page says so (it printed `$120.00`).
    assert!(
        health.contains("€120.00"),
        "attributed value in the events' currency"
    );
    assert!(!health.contains("$120"), "no dollar sign on euros");
    assert!(health.contains("<title>"), "charts have hover titles");
    // The plan filter reaches the answers: free users never called payments.
    let (_, _, free) = page(&server, cookie, "/p/shop/health?since=24h&plan=free").await;
    assert!(
        !free.contains("POST /api/payments"),
        "plan=free must drop Alice's calls"
    );
    assert!(free.contains("GET /api/products/{id}"));
    assert!(
        free.contains(r#"value="free""#),
        "the filter bar keeps the filter"
    );

    let (status, _, errors) = page(&server, cookie, "/p/shop/errors?since=24h").await;
    assert_eq!(status, StatusCode::OK, "{errors}");
    assert!(
        errors.contains("upstream_error") && errors.contains("unknown"),
        "error classes"
    );
    // One of the two failures is unknown: 50%.
    assert!(errors.contains("50.0%"), "unknown share");

    let (status, _, detail) = page(
        &server,
        cookie,
        "/p/shop/endpoint?since=24h&method=POST&route=%2Fapi%2Fpayments",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert!(
        detail.contains("POST /api/payments") && detail.contains("50.0%"),
        "its 5xx share"
    );

    for (path, title) in [
        ("journeys", "User Journey"),
        ("growth", "Growth Engineering"),
        ("alerts", "Alerts"),
        ("quality", "Data Quality"),
    ] {
        let (status, _, text) = page(&server, cookie, &format!("/p/shop/{path}?since=24h")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        assert!(text.contains(&format!("<h1>{title}</h1>")), "{path}");
        assert!(!text.contains("Internal Server Error"), "{path}");
    }
    let (_, _, alerts) = page(&server, cookie, "/p/shop/alerts").await;
    assert!(
        alerts.contains("Nothing is firing"),
        "no rules, nothing firing"
    );

    let (status, _, _) = page(&server, cookie, "/p/shop/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_page_renders_within_its_budget_and_reloads_until_its_answers_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    // Wait for the sign-in warm-up to finish, then forget its answers: a cold page.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    server.state.dashboard.cache.clear();
    server
        .state
        .dashboard
        .set_render_budget(std::time::Duration::from_micros(1));
    let uri = "/p/shop/errors?since=24h&plan=pro";
    let (status, _, first) = page(&server, Some(&cookie), uri).await;
    assert_eq!(status, StatusCode::OK);
    assert!(first.contains("is being computed"), "{first}");
    assert!(first.contains(r#"http-equiv="refresh""#), "reloads itself");
    // The answers keep computing in the background; a reload a moment later has them.
    let mut last = String::new();
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        last = page(&server, Some(&cookie), uri).await.2;
        if !last.contains("is being computed") {
            break;
        }
    }
    assert!(!last.contains("is being computed"), "{last}");
    assert!(!last.contains(r#"http-equiv="refresh""#));
    assert!(last.contains("upstream_error"), "the answer landed");
}

#[tokio::test]
async fn journeys_growth_and_quality_show_the_datasets_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    // One more batch: a valid call and one with a negative latency (rejected, the other kept).
    let bad = vec![
        call_event(
            "c1",
            NOW - 5 * MIN,
            "GET",
            "/api/products",
            200,
            "carol",
            "free",
            json!({}),
        ),
        call_event(
            "c2",
            NOW - 5 * MIN,
            "GET",
            "/api/products",
            200,
            "carol",
            "free",
            json!({"latency_ms": -3.0}),
        ),
    ];
    let (status, answer) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &bad),
    )
    .await;
    assert_eq!(
        (status, answer["accepted"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{answer}"
    );
    let cookie = session_of_shop(&server).await;
    let tile = |label: &str, value: &str| {
        format!(r#"<div class="tile-label">{label}</div><div class="tile-value">{value}</div>"#)
    };

    // Funnel GET /api/products → purchase: Alice, Bob and Carol entered; Alice bought (1 of 3).
    let (status, _, journeys) = page(
        &server,
        Some(&cookie),
        "/p/shop/journeys?since=24h&step=GET%20%2Fapi%2Fproducts&step=outcome%3Apurchase",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(journeys.contains(&tile("Entered (users)", "3")), "entered");
    assert!(journeys.contains(&tile("Completed", "1")), "completed");
    assert!(
        journeys.contains(&tile("Conversion", "33.3%")),
        "conversion"
    );
    assert!(
        journeys.contains("GET /api/products → POST /api/payments → outcome:purchase"),
        "Alice's path"
    );
    // The plan filter reaches the funnel: among free users nobody bought.
    let (_, _, free) = page(
        &server,
        Some(&cookie),
        "/p/shop/journeys?since=24h&plan=free&step=GET%20%2Fapi%2Fproducts&step=outcome%3Apurchase",
    )
    .await;
    assert!(
        free.contains(&tile("Entered (users)", "2")),
        "Bob and Carol"
    );
    assert!(
        free.contains(&tile("Conversion", "0.0%")),
        "no free purchase"
    );

    let (status, _, growth) = page(&server, Some(&cookie), "/p/shop/growth?since=24h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        growth.contains("No experiments in this range"),
        "no variants in the data"
    );
    // Latency vs conversion on the payments route: one session, it converted, order value 120.
    // One session: too few for a value-at-risk headline (issue 18, point 7), the average is shown.
    assert!(
        growth.contains("too few to say (€120.00 average order)"),
        "average order value"
    );
    assert!(
        growth.contains("No features configured"),
        "empty state names the config"
    );

    let (status, _, quality) = page(&server, Some(&cookie), "/p/shop/quality?since=24h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(quality.contains(&tile("Accepted", "9")), "8 + 1 accepted");
    assert!(
        quality.contains(&tile("Rejected", "1")),
        "the negative latency"
    );
    assert!(quality.contains("latency_ms"), "the reject's reason");
    assert!(
        quality.contains("<td>api_call</td><td class=\"num\">8</td>"),
        "calls by type"
    );
}

// Issue 18: the numbers a product manager reads are checked where they read them, against values
// computed independently from the API's answers.

/// The value printed in the tile labelled `label`.
fn tile_value(html: &str, label: &str) -> Option<String> {
    let marker = format!(r#"<div class="tile-label">{label}</div><div class="tile-value">"#);
    let at = html.find(&marker)? + marker.len();
    let end = html[at..].find("</div>")?;
    Some(html[at..at + end].to_owned())
}

/// `€17.1k`, `$1,137`, `€120.00`, `€1.20M` → the amount.
fn parse_money(text: &str) -> f64 {
    let digits = text.trim_start_matches(['$', '€']).replace(',', "");
    let (number, scale) = match digits.chars().last() {
        Some('k') => (&digits[..digits.len() - 1], 1e3),
        Some('M') => (&digits[..digits.len() - 1], 1e6),
        _ => (digits.as_str(), 1.0),
    };
    number.parse::<f64>().expect("a printed amount") * scale
}

/// Whether a printed amount is `expected` to its printed precision (3 significant digits).
fn shows(printed: &str, expected: f64) -> bool {
    (parse_money(printed) - expected).abs() <= expected.abs() * 0.005 + 0.005
}

/// Text of an HTML fragment without tags (the entities maud writes decoded).
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
}

/// The cells of the first table row containing `marker`, as text.
fn row_cells(html: &str, marker: &str) -> Vec<String> {
    let at = html.find(marker).expect("the row's marker");
    let start = html[..at].rfind("<tr").expect("a row");
    let end = at + html[at..].find("</tr>").expect("the row's end");
    html[start..end]
        .split("<td")
        .skip(1)
        .map(|cell| strip_tags(&format!("<td{cell}")).trim().to_owned())
        .collect()
}

async fn api(server: &Server, uri: &str) -> Value {
    let (status, answer) = call(
        server,
        common::get_request(Some(&format!("Bearer {SHOP_READ}")), uri),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
    answer
}

#[tokio::test]
async fn issue_18_health_counts_each_unit_of_revenue_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    let impact = api(&server, "/api/v1/projects/shop/impact?since=24h").await;
    let rows = impact["rows"].as_array().expect("rows");
    let direct: f64 = rows.iter().filter_map(|r| r["direct_value"].as_f64()).sum();
    let requests: f64 = rows.iter().filter_map(|r| r["requests"].as_f64()).sum();
    let outcomes = impact["attributed_outcome_value"]
        .as_f64()
        .expect("outcomes");
    // The dataset's one order of 120, seen by the payment call and by the purchase.
    assert_eq!((direct, outcomes, requests), (120.0, 120.0, 7.0));

    let (_, _, health) = page(&server, Some(&cookie), "/p/shop/health?since=24h").await;
    let north = tile_value(&health, "North Star · value per 1,000 requests").expect("north star");
    assert!(
        shows(&north, outcomes / requests * 1000.0),
        "North Star {north}: the outcome value once per 1,000 requests"
    );
    let direct_tile = tile_value(&health, "Direct value").expect("direct value tile");
    let outcome_tile = tile_value(&health, "Attributed outcome value").expect("outcome tile");
    assert!(
        shows(&direct_tile, direct),
        "{direct_tile} vs Σ direct {direct}"
    );
    assert!(
        shows(&outcome_tile, outcomes),
        "{outcome_tile} vs {outcomes}"
    );
    // No figure on the page adds the two views of the same order.
    assert!(!health.contains("€240.00"), "direct + assisted summed");
    // The table shows the two views as separate, labelled columns.
    let payments = row_cells(&health, ">POST /api/payments</a>");
    let header = row_cells(
        &health.replace("<th", "<td").replace("</th>", "</td>"),
        ">Endpoint</td>",
    );
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    assert_eq!(payments[column("Direct value")], "€120.00");
    let assisted: f64 = rows
        .iter()
        .find(|r| r["endpoint"] == "POST /api/payments")
        .map(|r| r["attributed_value"].as_f64().unwrap() - r["direct_value"].as_f64().unwrap())
        .expect("payments row");
    assert!(shows(&payments[column("Assisted value")], assisted));
}

#[tokio::test]
async fn issue_18_endpoint_drill_down_shows_the_endpoints_figures_within_the_project() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    let impact = api(&server, "/api/v1/projects/shop/impact?since=24h").await;
    let row = impact["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["endpoint"] == "POST /api/payments")
        .expect("payments row")
        .clone();
    // Alice of the two active users called it.
    assert_eq!(row["adoption"].as_f64(), Some(0.5));

    let (_, _, health) = page(&server, Some(&cookie), "/p/shop/health?since=24h").await;
    let header = row_cells(
        &health.replace("<th", "<td").replace("</th>", "</td>"),
        ">Endpoint</td>",
    );
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let in_table = row_cells(&health, ">POST /api/payments</a>");

    let (status, _, detail) = page(
        &server,
        Some(&cookie),
        "/p/shop/endpoint?since=24h&method=POST&route=%2Fapi%2Fpayments",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (tile, name) in [
        ("Adoption", "Adoption"),
        ("Impact score", "Impact score"),
        ("Direct value", "Direct value"),
        ("Assisted value", "Assisted value"),
    ] {
        assert_eq!(
            tile_value(&detail, tile).as_deref(),
            Some(in_table[column(name)].as_str()),
            "{tile}: the drill-down and the health table"
        );
    }
    assert_eq!(tile_value(&detail, "Adoption").as_deref(), Some("50.0%"));
    let score = row["score"].as_f64().expect("score");
    assert_eq!(
        tile_value(&detail, "Impact score"),
        Some(format!("{score:.2}"))
    );
    assert!(
        detail.contains("<h1>POST /api/payments</h1>"),
        "h1 names it"
    );
    assert!(
        detail.contains("<title>POST /api/payments · shop · valuetrace</title>"),
        "title names it"
    );
}

#[tokio::test]
async fn issue_18_charts_mark_partial_periods_use_round_ticks_and_hourly_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    // NOW is not on the hour: the last 24 h start and end inside an hour.
    assert_ne!(NOW % 3_600_000, 0);
    let (_, _, health) = page(&server, Some(&cookie), "/p/shop/health?since=24h").await;
    assert!(
        health.contains("(incomplete period)</title>") && health.contains("an incomplete period"),
        "partial first/last hours marked, with a legend note"
    );
    // X ticks: round hours (`12:00`) or a date at midnight, never the range's odd start.
    let ticks: Vec<&str> = health
        .split(r##"font-size="13" fill="#666666">"##)
        .skip(1)
        .filter_map(|t| t.split('<').next())
        .collect();
    assert!(!ticks.is_empty(), "x ticks drawn");
    for tick in &ticks {
        assert!(
            tick.ends_with(":00") || (tick.len() == 5 && tick.contains('-')),
            "{tick}: not a round time"
        );
    }
    // A custom range of one day uses hourly points (24 or 25 of them), not one per day.
    let uri = format!("/p/shop/health?from={}&to={NOW}", NOW - 24 * 3_600_000);
    let (_, _, custom) = page(&server, Some(&cookie), &uri).await;
    let points = custom.matches("<title>requests at").count();
    assert!((24..=25).contains(&points), "{points} points");
    // The Errors page has an error-rate trend whose axis fits the data: 2 of 7 calls 5xx in
    // one hour, no axis label at 0%.
    let (_, _, errors) = page(&server, Some(&cookie), "/p/shop/errors?since=24h").await;
    assert!(errors.contains("Error rate over time"));
    let at = errors
        .find(r#"aria-label="server error rate""#)
        .expect("the chart");
    let chart = &errors[at..at + errors[at..].find("</svg>").expect("end")];
    assert!(chart.contains(": 28.6%"), "the hour's rate");
    assert!(!chart.contains(">0.0%<"), "fitted axis, not 0–100%");
}

/// A CSV document's records (RFC 4180 quoting).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

/// The cells of table `id` on a page, each as its text with white space collapsed.
fn html_table(html: &str, id: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!(r#"<table id="table-{id}""#))
        .expect("the table");
    let end = start + html[start..].find("</table>").expect("its end");
    html[start..end]
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap_or(row);
            let row = row.replace("<th", "<td").replace("</th>", "</td>");
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = strip_tags(&format!("<td{}", cell.replace('>', "> ")));
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn issue_18_every_table_downloads_as_csv_with_the_rows_it_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let cookie = session_of_shop(&server).await;
    let mut checked = 0;
    for uri in [
        "/p/shop/health?since=24h",
        "/p/shop/health?since=24h&plan=free",
        "/p/shop/errors?since=24h",
        "/p/shop/journeys?since=24h&step=GET%20%2Fapi%2Fproducts&step=outcome%3Apurchase",
        "/p/shop/growth?since=24h",
        "/p/shop/quality?since=24h",
        "/p/shop/endpoint?since=24h&method=POST&route=%2Fapi%2Fpayments",
    ] {
        let (_, _, html) = page(&server, Some(&cookie), uri).await;
        let tables = html.matches("<table").count();
        let links: Vec<String> = html
            .split(r#"<p class="export"><a href=""#)
            .skip(1)
            .map(|rest| rest.split('"').next().expect("href").replace("&amp;", "&"))
            .collect();
        assert_eq!(links.len(), tables, "{uri}: a download per table");
        for link in links {
            assert!(
                link.starts_with(uri.split('?').next().expect("path")),
                "{link}"
            );
            let id = link.rsplit("table=").next().expect("id").to_owned();
            let request = Request::get(&link)
                .header("cookie", &cookie)
                .body(Body::empty())
                .expect("request");
            let (status, headers, text) = call_full(&server, request).await;
            assert_eq!(status, StatusCode::OK, "{link}: {text}");
            assert_eq!(
                header(&headers, "content-type").as_deref(),
                Some("text/csv; charset=utf-8")
            );
            assert!(header(&headers, "content-disposition").is_some_and(|d| d.contains(".csv")));
            assert_eq!(parse_csv(&text), html_table(&html, &id), "{link}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} tables checked");
    // The filters reach the download: among free users nobody called payments.
    let request = Request::get("/p/shop/health?since=24h&plan=free&format=csv&table=endpoints")
        .header("cookie", &cookie)
        .body(Body::empty())
        .expect("request");
    let (status, _, free) = call_full(&server, request).await;
    assert_eq!(status, StatusCode::OK, "{free}");
    assert!(free.starts_with("Endpoint,Requests,"), "{free}");
    assert!(!free.contains("POST /api/payments") && free.contains("GET /api/products"));
    // No such table: a clear 404 naming the page's tables; no session: no data.
    let request = Request::get("/p/shop/health?since=24h&format=csv&table=nope")
        .header("cookie", &cookie)
        .body(Body::empty())
        .expect("request");
    let (status, _, text) = call_full(&server, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        text.contains("no table `nope`") && text.contains("endpoints"),
        "{text}"
    );
    let (status, _, _) = page(&server, None, "/p/shop/health?format=csv&table=endpoints").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn issue_18_counts_print_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    // POST /api/cart: Carol and Dave convert, Frank does not, Erin's call fails and she does not:
    // 2/3 − 0/1 of one session = 0.67 lost conversions.
    let t = NOW - 20 * MIN;
    let mut events = Vec::new();
    for (user, status, buys) in [
        ("carol", 200, true),
        ("dave", 200, true),
        ("frank", 200, false),
        ("erin", 500, false),
    ] {
        events.push(call_event(
            &format!("cart-{user}"),
            t,
            "POST",
            "/api/cart",
            status,
            user,
            "free",
            json!({}),
        ));
        if buys {
            events.push(
                json!({"type": "outcome", "schema_version": 1, "event_id": format!("buy-{user}"),
                "timestamp": t + MIN, "name": "purchase", "user_id": user,
                "session_id": format!("s-{user}"), "value": 10.0, "currency": "EUR"}),
            );
        }
    }
    let (status, answer) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let cookie = session_of_shop(&server).await;
    let errors = api(&server, "/api/v1/projects/shop/errors?since=24h").await;
    let by_endpoint = errors["sessions"]["by_endpoint"].as_array().expect("rows");
    assert!(!by_endpoint.is_empty());
    let (_, _, html) = page(&server, Some(&cookie), "/p/shop/errors?since=24h").await;
    let table = html_table(&html, "where-failures-cost-conversions");
    let column = table[0]
        .iter()
        .position(|h| h == "Lost conversions")
        .expect("column");
    for row in by_endpoint {
        let endpoint = row["endpoint"].as_str().expect("endpoint");
        let lost = row["lost_conversions"].as_f64().expect("lost");
        let printed = &table
            .iter()
            .find(|cells| cells[0] == endpoint)
            .expect("the endpoint's row")[column];
        assert_eq!(printed, &format!("{:.0}", lost.round() + 0.0), "{endpoint}");
    }
    assert!(
        by_endpoint.iter().any(|r| r["lost_conversions"]
            .as_f64()
            .is_some_and(|v| v.fract() != 0.0)),
        "a fractional estimate is printed whole"
    );
}

/// Issue 18, point 3: a second currency with no rate is never added to the euros. The business
/// answers and endpoint health leave it out, the Data Quality page lists it, and every money
/// figure on the pages is in euros.
#[tokio::test]
async fn issue_18_a_currency_without_a_rate_is_reported_apart_never_summed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    load(&server).await;
    let t = NOW - 20 * MIN;
    let yen = vec![
        call_event(
            "y1",
            t,
            "POST",
            "/api/gift-cards",
            201,
            "carol",
            "pro",
            json!({"value": 5000.0, "currency": "JPY"}),
        ),
        json!({"type": "outcome", "schema_version": 1, "event_id": "y2", "timestamp": t + MIN,
               "name": "purchase", "user_id": "carol", "session_id": "s-carol", "value": 5000.0, "currency": "JPY"}),
    ];
    let (status, answer) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &yen),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let impact = api(&server, "/api/v1/projects/shop/impact?since=24h").await;
    assert_eq!(impact["money"]["currency"], "EUR", "{impact}");
    assert_eq!(
        impact["attributed_outcome_value"],
        json!(120.0),
        "yen never join euros"
    );
    assert_eq!(
        impact["money"]["unconverted"],
        json!([{"currency": "JPY", "events": 2, "value": 10000.0}])
    );
    let health = api(&server, "/api/v1/projects/shop/endpoints?since=24h").await;
    assert_eq!(health["currency"], "EUR");
    let gift = health["endpoints"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["route"] == "/api/gift-cards"))
        .expect("gift cards row");
    assert_eq!(gift["value_sum"], Value::Null, "no rate: no sum");
    assert_eq!(gift["value_currency"], "JPY");

    let cookie = session_of_shop(&server).await;
    let (status, _, quality) = page(&server, Some(&cookie), "/p/shop/quality?since=24h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        quality.contains("Values in currencies without a rate"),
        "{quality}"
    );
    assert!(quality.contains("JPY"));
    let (_, _, health_page) = page(&server, Some(&cookie), "/p/shop/health?since=24h").await;
    assert!(health_page.contains("€120.00"), "euros stay euros");
    assert!(
        !health_page.contains("5,120") && !health_page.contains("10.1k"),
        "no sum across currencies"
    );
}

/// SDK traffic: 300 users of `GET /api/products` counted in one window's aggregates (with their
/// user sketch), and the raw calls of the users sampling keeps (rate 0.08, `aggregated`).
fn sdk_events(users: usize) -> (Vec<Value>, usize) {
    use valuetrace_client::aggregate::{Aggregator, CallKey, Window, to_events};
    use valuetrace_client::sampling::{stable_hash, threshold};
    let aggregator = Aggregator::default();
    let experiments = std::collections::BTreeMap::new();
    let t = NOW - 30 * MIN;
    let mut events = Vec::new();
    for u in 0..users {
        let user = format!("sdk-user-{u}");
        aggregator.record(
            &CallKey {
                route: "/api/products",
                method: "GET",
                status: 200,
                plan: None,
                experiments: &experiments,
                provider: None,
                user_id: Some(&user),
            },
            30.0,
        );
        if stable_hash(&user) <= threshold(0.08) {
            events.push(call_event(
                &format!("raw-{u}"),
                t,
                "GET",
                "/api/products",
                200,
                &user,
                "free",
                json!({"aggregated": true, "sample_rate": 0.08}),
            ));
        }
    }
    let sampled = events.len();
    let window = Window {
        service: "shop",
        start_ms: t - 10_000,
        end_ms: t,
        id_prefix: "host-1",
        flush: 0,
    };
    for aggregate in to_events(aggregator.drain(), window) {
        events
            .push(serde_json::to_value(valuetrace_model::Event::ApiAggregate(aggregate)).unwrap());
    }
    (events, sampled)
}

#[tokio::test]
async fn issue_18_users_of_sdk_traffic_print_as_estimates_that_cover_the_truth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path());
    let truth = 300;
    let (events, sampled) = sdk_events(truth);
    assert!(sampled < truth / 5, "a sample of the users sent raw calls");
    let (status, answer) = call(
        &server,
        batch_request(Some(&format!("Bearer {SHOP_INGEST}")), &events),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let impact = api(&server, "/api/v1/projects/shop/impact?since=24h").await;
    let row = &impact["rows"][0];
    assert_eq!(row["users_kind"], "estimate", "{row}");
    let ci = row["users_ci95"].as_array().expect("an interval");
    let (low, high) = (ci[0].as_u64().unwrap(), ci[1].as_u64().unwrap());
    assert!(
        low as usize <= truth && truth <= high as usize,
        "{truth} users reported as {} [{low}, {high}] ({sampled} sampled)",
        row["users"]
    );
    let users = row["users"].as_f64().expect("users");

    let cookie = session_of_shop(&server).await;
    let (_, _, health) = page(&server, Some(&cookie), "/p/shop/health?since=24h").await;
    let header = row_cells(
        &health.replace("<th", "<td").replace("</th>", "</td>"),
        ">Endpoint</td>",
    );
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let cells = row_cells(&health, ">GET /api/products</a>");
    assert_eq!(cells[column("Users")], format!("≈{users:.0}"));
    assert_eq!(cells[column("Adoption")], "≈100.0%");
    let active = tile_value(&health, "Active users").expect("active users tile");
    assert_eq!(
        active,
        format!("≈{:.0}", impact["active_users"].as_f64().unwrap())
    );
}
