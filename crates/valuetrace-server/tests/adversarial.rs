//! Adversarial input against a real running server (`Server::spawn` on a loopback socket, raw
//! HTTP/1.1 written by hand so that requests can lie): invalid UTF-8, deep nesting, huge numbers,
//! `NaN`/`Infinity`, repeated keys, a lying `Content-Length`, gzip and zstd bombs, millions of
//! tiny NDJSON lines, a 100 MB declared body. Each case asserts the exact status and that the
//! message names what was wrong; afterwards the same server must still answer a mixed batch with
//! 200, keeping the valid events next to a rejected one. Cases that could cost memory measure the
//! peak RSS of this process around the request. See docs/reliability.md (## Adversarial input).

mod common;

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use valuetrace_model::time::HOUR_MS;

/// 2026-11-21T10:15:30.123Z, the server's (fixed) clock.
const NOW: i64 = 1_795_256_130_123;
const INGEST: &str = "vt_ingest_adversarial_key";
const READ: &str = "vt_read_adversarial_key";
const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// Default limits (`IngestLimits::default()`), which these tests run with.
const MAX_BODY: usize = 5 * MIB;
const MAX_DECOMPRESSED: usize = 20 * MIB;

/// The cases run one at a time: peak-RSS measurements must not see each other's allocations.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------------
// A live server and a raw HTTP client

struct Live {
    address: SocketAddr,
    running: valuetrace_server::RunningServer,
    /// Events this test expects the server to hold (checked through the query API).
    stored: u64,
    next_id: usize,
    _dir: tempfile::TempDir,
}

async fn start() -> Live {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = common::open_shop(dir.path(), NOW, INGEST, READ);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    Live {
        address,
        running: server.spawn(listener),
        stored: 0,
        next_id: 0,
        _dir: dir,
    }
}

impl Live {
    /// The server still works: a batch of two valid events around a bad one is answered 200,
    /// the valid ones are stored, the bad one is reported at its index; nothing else was stored.
    async fn assert_still_serves(&mut self, after: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let events = [
            event(&format!("check-{id}-a")),
            with(event(&format!("check-{id}-bad")), "status", json!(700)),
            event(&format!("check-{id}-b")),
        ];
        let body = serde_json::to_vec(&events).expect("json");
        let (status, answer) = post(self.address, "application/json", None, body).await;
        assert_eq!(status, 200, "after {after}: {answer}");
        assert_eq!(
            answer,
            json!({"accepted": 2, "duplicates": 0, "rejected": [{"index": 1, "event_id": format!("check-{id}-bad"), "error": "status: must be an HTTP status between 100 and 599, got 700"}]}),
            "after {after}"
        );
        self.stored += 2;
        assert_eq!(
            self.stored_requests().await,
            self.stored,
            "after {after}: stored events"
        );
    }

    /// Requests counted by the query API in the hour around NOW.
    async fn stored_requests(&self) -> u64 {
        let path = format!(
            "/api/v1/projects/shop/endpoints?from={}&to={}",
            NOW - HOUR_MS,
            NOW + HOUR_MS
        );
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {READ}\r\nConnection: close\r\n\r\n"
        );
        let answer = exchange(self.address, head.into_bytes(), After::KeepOpen).await;
        let (status, body) = first_response(&answer);
        assert_eq!(status, 200, "{body}");
        body["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|row| row["requests"].as_u64().expect("requests"))
            .sum()
    }

    async fn stop(self) {
        self.running.stop().await.expect("clean stop");
    }
}

fn event(id: &str) -> Value {
    json!({
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": NOW - 60_000,
        "service": "shop-api", "method": "GET", "route": "/api/orders/{id}", "status": 200,
        "latency_ms": 12.5,
    })
}

fn with(mut event: Value, field: &str, value: Value) -> Value {
    event[field] = value;
    event
}

fn text(event: &Value) -> String {
    event.to_string()
}

/// `event` as text with `field`'s value replaced by `raw` (which JSON values cannot hold).
fn with_raw(event: &Value, field: &str, raw: &str) -> String {
    text(&with(event.clone(), field, json!("__RAW__"))).replace("\"__RAW__\"", raw)
}

fn head(content_type: &str, encoding: Option<&str>, length: Option<usize>) -> String {
    let mut head = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {INGEST}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
    );
    if let Some(encoding) = encoding {
        head.push_str(&format!("Content-Encoding: {encoding}\r\n"));
    }
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// POSTs an honest request; the status and the JSON answer.
async fn post(
    address: SocketAddr,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = head(content_type, encoding, Some(body.len())).into_bytes();
    request.extend(body);
    let answer = exchange(address, request, After::KeepOpen).await;
    first_response(&answer)
}

#[derive(Clone, Copy)]
enum After {
    /// Keep the connection open until the server closes it.
    KeepOpen,
    /// Half-close (FIN): the server sees the end of the request stream.
    HalfClose,
}

/// Writes `request` on a new connection and reads until the server closes it (or 15 s pass).
/// Write errors are ignored: a server may answer and close before reading everything.
async fn exchange(address: SocketAddr, request: Vec<u8>, after: After) -> Vec<u8> {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let _ = stream.write_all(&request);
        if let After::HalfClose = after {
            let _ = stream.shutdown(Shutdown::Write);
        }
        read_all(&mut stream)
    })
    .await
    .expect("client thread")
}

fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    // A timeout or reset ends the answer; what arrived before it is kept.
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// The responses in `bytes` (HTTP/1.1 with Content-Length), as status and JSON body (a
/// non-JSON body becomes a JSON string).
fn responses(mut bytes: &[u8]) -> Vec<(u16, Value)> {
    let mut parsed = Vec::new();
    while let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(bytes.len() - end - 4);
        let body_end = (end + 4 + length).min(bytes.len());
        let body = &bytes[end + 4..body_end];
        let value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        parsed.push((status, value));
        bytes = &bytes[body_end..];
    }
    parsed
}

fn first_response(bytes: &[u8]) -> (u16, Value) {
    responses(bytes).into_iter().next().unwrap_or_else(|| {
        panic!(
            "no HTTP response in {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        )
    })
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// Peak resident set size of this process in KiB, reset first to the current RSS where the kernel
/// allows it (`/proc/self/clear_refs`), so that a later reading measures only what came after.
fn reset_peak_rss_kib() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak_rss_kib()
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM")
}

/// Runs `request`, asserting that this process's peak RSS grew by less than `limit_mib` and that
/// it took less than `limit_time`.
async fn bounded<T>(
    what: &str,
    limit_mib: u64,
    limit_time: Duration,
    request: impl std::future::Future<Output = T>,
) -> T {
    let before = reset_peak_rss_kib();
    let started = Instant::now();
    let result = request.await;
    let elapsed = started.elapsed();
    let growth_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!("{what}: {elapsed:?}, peak RSS +{growth_mib} MiB");
    assert!(
        growth_mib < limit_mib,
        "{what}: peak RSS grew by {growth_mib} MiB"
    );
    assert!(elapsed < limit_time, "{what}: took {elapsed:?}");
    result
}

/// `total` zero bytes through `writer` in 1 MiB chunks, never held at once.
fn stream_zeros(writer: &mut impl Write, total: usize) {
    let chunk = vec![0u8; MIB];
    for _ in 0..total / MIB {
        writer.write_all(&chunk).expect("compress");
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid UTF-8

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_refuses_a_json_body_and_only_the_bad_ndjson_line() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;

    // JSON: the body as a whole is not JSON text; the message says where.
    let good = text(&event("utf8-ok"));
    let bad = text(&event("utf8-bad")).replace("shop-api", "shop\u{FFFD}api");
    let mut body = format!("[{good},{bad}]").into_bytes();
    let at = body
        .windows(3)
        .position(|window| window == "\u{FFFD}".as_bytes())
        .expect("marker");
    body.splice(at..at + 3, [0xff]);
    let (status, answer) = post(live.address, "application/json", None, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        error(
            "invalid_utf8",
            &format!("body is not UTF-8: invalid utf-8 sequence of 1 bytes from index {at}")
        )
    );
    live.assert_still_serves("a JSON body with invalid UTF-8")
        .await;

    // NDJSON: lines are independent events, so only the bad line is refused. Invalid bytes inside
    // a string, an overlong encoding, a UTF-16 surrogate encoded as UTF-8, and a multi-byte
    // sequence cut off by the end of the line.
    let mut body = Vec::new();
    body.extend(text(&event("nd-ok-1")).as_bytes());
    let mut expected_rejections = Vec::new();
    for (n, bytes) in [&b"\xff"[..], b"\xc0\xaf", b"\xed\xa0\x80"]
        .iter()
        .enumerate()
    {
        body.push(b'\n');
        let line = text(&event(&format!("nd-bad-{n}")));
        let at = line.find("shop-api").expect("service") + 4;
        body.extend(&line.as_bytes()[..at]);
        body.extend(*bytes);
        body.extend(&line.as_bytes()[at..]);
        expected_rejections.push(json!({"index": n + 1, "error": format!("event is not UTF-8: invalid utf-8 sequence of 1 bytes from index {at}")}));
    }
    body.push(b'\n');
    let line = text(&event("nd-bad-end"));
    body.extend(line.as_bytes());
    body.extend(b"\xc3");
    expected_rejections.push(json!({"index": 4, "error": format!("event is not UTF-8: incomplete utf-8 byte sequence from index {}", line.len())}));
    body.push(b'\n');
    body.extend(text(&event("nd-ok-2")).as_bytes());
    let (status, answer) = post(live.address, "application/x-ndjson", None, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": expected_rejections})
    );
    live.stored += 2;

    // A lone surrogate escape is valid UTF-8 but not a character: refused alone.
    let lone = with_raw(&event("lone-surrogate"), "service", "\"shop\\ud800\"");
    let body = format!(
        "{}\n{lone}\n{}",
        text(&event("ls-ok-1")),
        text(&event("ls-ok-2"))
    );
    let (status, answer) = post(
        live.address,
        "application/x-ndjson",
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], json!(2), "{answer}");
    let rejected = &answer["rejected"][0];
    assert_eq!(rejected["index"], json!(1), "{answer}");
    // serde_json expects a trailing surrogate escape right after the leading one.
    let column = lone.find("\\ud800").expect("escape") + 7;
    assert_eq!(
        rejected["error"],
        json!(format!(
            "invalid JSON: unexpected end of hex escape at line 1 column {column}"
        )),
        "{answer}"
    );
    live.stored += 2;
    live.assert_still_serves("NDJSON lines with invalid UTF-8")
        .await;
    live.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Deep nesting

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_is_refused_without_recursion() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    const DEPTH: usize = 100_000;

    // An unclosed body of 100k `[`.
    let (status, answer) = bounded(
        "100k `[` body",
        64,
        Duration::from_secs(5),
        post(
            live.address,
            "application/json",
            None,
            "[".repeat(DEPTH).into_bytes(),
        ),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        error(
            "invalid_json",
            &format!(
                "body is not a JSON array of events: EOF while parsing a list at line 1 column {DEPTH}"
            )
        )
    );
    live.assert_still_serves("100k `[`").await;

    // Closed, as elements next to valid events: beyond max_event_bytes (32 KiB) an element is
    // refused by its size alone; an array within it is not an event; an object nested deeper than
    // serde_json's recursion limit (128) inside `properties` is refused as invalid JSON.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_object = |id: String, depth: usize| {
        with_raw(
            &event(&id),
            "properties",
            &format!("{}\"x\"{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
        )
    };
    for format in ["application/json", "application/x-ndjson"] {
        let elements = [
            text(&event(&format!("{format}-deep-ok-1"))),
            nested(DEPTH),
            nested(10_000),
            nested_object(format!("{format}-deep-object"), DEPTH),
            nested_object(format!("{format}-deep-properties"), 1_000),
            text(&event(&format!("{format}-deep-ok-2"))),
        ];
        let too_big = |n: usize| {
            format!(
                "event is {} bytes; the limit is 32768 (max_event_bytes)",
                elements[n].len()
            )
        };
        let body = if format == "application/json" {
            format!("[{}]", elements.join(","))
        } else {
            elements.join("\n")
        };
        let (status, answer) = bounded(
            &format!("nested elements as {format}"),
            64,
            Duration::from_secs(5),
            post(live.address, format, None, body.into_bytes()),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], json!(2), "{answer}");
        let rejected = answer["rejected"].as_array().expect("rejected");
        assert_eq!(rejected.len(), 4, "{answer}");
        assert_eq!(rejected[0], json!({"index": 1, "error": too_big(1)}));
        assert_eq!(
            rejected[1],
            json!({"index": 2, "error": "an event must be a JSON object, got an array"})
        );
        assert_eq!(rejected[2], json!({"index": 3, "error": too_big(3)}));
        assert_eq!(rejected[3]["index"], json!(4), "{answer}");
        assert_eq!(
            rejected[3]["event_id"],
            json!(format!("{format}-deep-properties")),
            "{answer}"
        );
        let reason = rejected[3]["error"].as_str().expect("error");
        assert!(
            reason.starts_with("invalid JSON: recursion limit exceeded at line 1 column "),
            "{reason}"
        );
        live.stored += 2;
        live.assert_still_serves(&format!("deeply nested {format}"))
            .await;
    }

    // An unclosed NDJSON line of 10k `[` is refused alone.
    let body = format!(
        "{}\n{}\n{}",
        text(&event("deep-nd-1")),
        "[".repeat(10_000),
        text(&event("deep-nd-2"))
    );
    let (status, answer) = post(
        live.address,
        "application/x-ndjson",
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": [{"index": 1, "error": "invalid JSON: EOF while parsing a list at line 1 column 10000"}]})
    );
    live.stored += 2;
    live.assert_still_serves("deeply nested events").await;
    live.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Huge numbers, NaN and Infinity

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_are_refused_naming_the_field_or_the_number() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let two_pow_64_plus_1 = "18446744073709551617";
    for format in ["application/json", "application/x-ndjson"] {
        let base = event("huge");
        let id = |name: &str| json!(format!("{format}-{name}"));
        let cases = [
            // Out of f64 range: serde_json refuses the number itself.
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-latency")),
                    "latency_ms",
                    "1e400",
                ),
                Some("invalid JSON: number out of range at line 1 column "),
                None,
            ),
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-value")),
                    "value",
                    "-1e400",
                ),
                Some("invalid JSON: number out of range at line 1 column "),
                None,
            ),
            // Integers beyond u64 become floats, which integer fields refuse by name.
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-status")),
                    "status",
                    two_pow_64_plus_1,
                ),
                None,
                Some("status: must be a non-negative integer, got 1.8446744073709552e+19"),
            ),
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-bytes")),
                    "request_bytes",
                    two_pow_64_plus_1,
                ),
                None,
                Some("request_bytes: must be a non-negative integer, got 1.8446744073709552e+19"),
            ),
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-time")),
                    "timestamp",
                    two_pow_64_plus_1,
                ),
                None,
                Some(
                    "timestamp: must be epoch milliseconds as an integer, got 1.8446744073709552e+19",
                ),
            ),
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-i64")),
                    "timestamp",
                    "9223372036854775807",
                ),
                None,
                Some(
                    "timestamp: 9223372036854775807 is after 9999-12-31; timestamps are epoch milliseconds",
                ),
            ),
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-neg")),
                    "latency_ms",
                    "-1e308",
                ),
                None,
                Some("latency_ms: must be ≥ 0, got -1000"),
            ),
            // A thousand-digit integer does not fit an f64 either.
            (
                with_raw(
                    &with(base.clone(), "event_id", id("h-digits")),
                    "status",
                    &"9".repeat(1000),
                ),
                Some("invalid JSON: number out of range at line 1 column "),
                None,
            ),
        ];
        let mut lines = vec![text(&event(&format!("{format}-ok-1")))];
        lines.extend(cases.iter().map(|(line, _, _)| line.clone()));
        lines.push(text(&event(&format!("{format}-ok-2"))));
        let body = if format == "application/json" {
            format!("[{}]", lines.join(","))
        } else {
            lines.join("\n")
        };
        let (status, answer) = post(live.address, format, None, body.into_bytes()).await;
        assert_eq!(status, 200, "{format}: {answer}");
        assert_eq!(answer["accepted"], json!(2), "{format}: {answer}");
        let rejected = answer["rejected"].as_array().expect("rejected");
        assert_eq!(rejected.len(), cases.len(), "{format}: {answer}");
        for (n, ((_, invalid_json, named), rejection)) in cases.iter().zip(rejected).enumerate() {
            assert_eq!(rejection["index"], json!(n + 1), "{format}: {answer}");
            let reason = rejection["error"].as_str().expect("error");
            match (invalid_json, named) {
                (Some(prefix), _) => assert!(reason.starts_with(prefix), "{format}: {reason}"),
                (_, Some(prefix)) => assert!(reason.starts_with(prefix), "{format}: {reason}"),
                _ => unreachable!(),
            }
        }
        live.stored += 2;
        live.assert_still_serves(&format!("huge numbers as {format}"))
            .await;
    }
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nan_and_infinity_literals_are_not_json() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    // Each literal, serde_json's complaint, and how far into the literal it is raised.
    let literals = [
        ("NaN", "expected value", 0),
        ("Infinity", "expected value", 0),
        ("-Infinity", "invalid number", 1),
        ("+1", "expected value", 0),
        (".5", "expected value", 0),
        ("0x10", "expected `,` or `}`", 1),
    ];
    let lines: Vec<String> = literals
        .iter()
        .enumerate()
        .map(|(n, (literal, _, _))| with_raw(&event(&format!("nan-{n}")), "latency_ms", literal))
        .collect();

    // In a JSON array the body is not JSON: refused whole, naming the position.
    let body = format!("[{},{}]", text(&event("nan-ok")), lines[0]);
    let column = body.find("NaN").expect("NaN") + 1;
    let (status, answer) = post(live.address, "application/json", None, body.into_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        error(
            "invalid_json",
            &format!(
                "body is not a JSON array of events: expected value at line 1 column {column}"
            )
        )
    );
    live.assert_still_serves("NaN in a JSON array").await;

    // As NDJSON lines each is refused alone, at the literal's column.
    let body = format!(
        "{}\n{}\n{}",
        text(&event("nan-nd-1")),
        lines.join("\n"),
        text(&event("nan-nd-2"))
    );
    let (status, answer) = post(
        live.address,
        "application/x-ndjson",
        None,
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], json!(2), "{answer}");
    let rejected = answer["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), literals.len(), "{answer}");
    for (n, (line, rejection)) in lines.iter().zip(rejected).enumerate() {
        let (literal, complaint, offset) = literals[n];
        let column = line.find(&format!(":{literal}")).expect("literal") + 2 + offset;
        assert_eq!(
            rejection,
            &json!({"index": n + 1, "error": format!("invalid JSON: {complaint} at line 1 column {column}")}),
            "{literal}"
        );
    }
    live.stored += 2;
    live.assert_still_serves("NaN and Infinity lines").await;
    live.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Repeated keys

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_are_refused_naming_the_key() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let appended = |id: &str, extra: &str| {
        let text = text(&event(id));
        format!("{},{extra}}}", text.strip_suffix('}').expect("object"))
    };
    let events = [
        text(&event("dup-ok-1")),
        // Last-wins would have stored a 500 (an error) for a call sent as a 200.
        appended("dup-status", "\"status\":500"),
        appended("dup-escaped", "\"st\\u0061tus\":500"),
        appended(
            "dup-props",
            "\"properties\":{\"plan\":\"free\",\"plan\":\"pro\"}",
        ),
        appended("dup-exp", "\"experiments\":{\"reco\":\"a\",\"reco\":\"b\"}"),
        appended("dup-id", "\"event_id\":\"other\""),
        text(&event("dup-ok-2")),
    ];
    let body = format!("[{}]", events.join(","));
    let (status, answer) = post(live.address, "application/json", None, body.into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": [
            {"index": 1, "event_id": "dup-status", "error": "status: appears more than once in the event; send each field once"},
            {"index": 2, "event_id": "dup-escaped", "error": "status: appears more than once in the event; send each field once"},
            {"index": 3, "event_id": "dup-props", "error": "properties.plan: key appears more than once; send each key once"},
            {"index": 4, "event_id": "dup-exp", "error": "experiments.reco: key appears more than once; send each key once"},
            {"index": 5, "error": "event_id: appears more than once in the event; send each field once"},
        ]})
    );
    live.stored += 2;
    live.assert_still_serves("repeated keys").await;
    live.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Lying Content-Length, 100 MB bodies

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_larger_than_the_body_then_close_stores_nothing() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let body = serde_json::to_vec(&[event("short-1"), event("short-2")]).expect("json");

    // Declared 1000 bytes more than sent, then the client half-closes: the body ends early.
    let mut request = head("application/json", None, Some(body.len() + 1000)).into_bytes();
    request.extend(&body);
    let answer = bounded(
        "Content-Length larger than the body",
        64,
        Duration::from_secs(5),
        exchange(live.address, request.clone(), After::HalfClose),
    )
    .await;
    // The body ends early: hyper reports the read error to the handler, which answers before
    // the connection closes.
    assert_eq!(
        responses(&answer),
        vec![(
            400,
            error(
                "body_unreadable",
                "could not read the request body: error reading a body from connection"
            )
        )]
    );
    assert_eq!(
        live.stored_requests().await,
        0,
        "a truncated body stores nothing"
    );

    // The same, with the connection dropped entirely (no answer can arrive).
    let address = live.address;
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).expect("connect");
        let _ = stream.write_all(&request);
    })
    .await
    .expect("client");
    assert_eq!(
        live.stored_requests().await,
        0,
        "a dropped body stores nothing"
    );
    live.assert_still_serves("a Content-Length larger than the body")
        .await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_smaller_than_the_body_cuts_the_json() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let body = serde_json::to_vec(&[event("long-1"), event("long-2")]).expect("json");
    let declared = body.len() / 2;
    let mut request = head("application/json", None, Some(declared)).into_bytes();
    request.extend(&body);
    let answer = exchange(live.address, request, After::HalfClose).await;
    // The server reads exactly the declared bytes: half a JSON array. The rest is never read
    // as a request (the request said `Connection: close`).
    assert_eq!(
        responses(&answer),
        vec![(
            400,
            error(
                "invalid_json",
                &format!(
                    "body is not a JSON array of events: EOF while parsing a list at line 1 column {declared}"
                )
            )
        )]
    );
    assert_eq!(live.stored_requests().await, 0);
    live.assert_still_serves("a Content-Length smaller than the body")
        .await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_body_is_refused_before_and_while_reading() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let expected = error(
        "body_too_large",
        &format!(
            "body is more than {MAX_BODY} bytes; the limit is {MAX_BODY} bytes (max_body_bytes): send smaller batches"
        ),
    );

    // Declared: refused from the headers, before a byte of the body is read.
    let request = head("application/json", None, Some(100_000_000)).into_bytes();
    let answer = bounded(
        "100 MB declared",
        32,
        Duration::from_secs(2),
        exchange(live.address, request, After::KeepOpen),
    )
    .await;
    assert_eq!(first_response(&answer), (413, expected.clone()));
    live.assert_still_serves("a 100 MB Content-Length").await;

    // Chunked, no length: the client streams 100 MB; reading stops at max_body_bytes.
    let address = live.address;
    let answer = bounded(
        "100 MB chunked",
        64,
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(address).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .expect("timeout");
            let mut writer = stream.try_clone().expect("clone");
            let head = format!(
                "POST /v1/batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {INGEST}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            );
            let sender = std::thread::spawn(move || {
                writer.write_all(head.as_bytes())?;
                let chunk = [b' '; 64 << 10];
                let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                writer.write_all(b"1\r\n[\r\n")?;
                for _ in 0..(100 * MIB / chunk.len()) {
                    writer.write_all(&framed)?;
                }
                writer.write_all(b"1\r\n]\r\n0\r\n\r\n")
            });
            let answer = read_all(&mut stream);
            let _ = stream.shutdown(Shutdown::Both);
            let _ = sender.join();
            answer
        }),
    )
    .await
    .expect("client");
    assert_eq!(first_response(&answer), (413, expected));
    assert_eq!(live.stored_requests().await, live.stored);
    live.assert_still_serves("a 100 MB chunked body").await;
    live.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Compression bombs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_bombs_of_1_gib_are_413_quickly_with_bounded_memory() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let (gzip_bomb, zstd_bomb, zstd_wide_bomb) = tokio::task::spawn_blocking(|| {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        stream_zeros(&mut gzip, GIB);
        let gzip = gzip.finish().expect("gzip");
        let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
        stream_zeros(&mut zstd, GIB);
        let zstd = zstd.finish().expect("zstd");
        // A frame that declares a 128 MiB window and no content size: the decoder may size its
        // buffers from the header.
        let mut wide = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd");
        wide.window_log(27).expect("window log");
        wide.include_contentsize(false).expect("no content size");
        stream_zeros(&mut wide, GIB);
        (gzip, zstd, wide.finish().expect("zstd"))
    })
    .await
    .expect("compress");
    for (name, bomb) in [
        ("gzip", &gzip_bomb),
        ("zstd", &zstd_bomb),
        ("zstd", &zstd_wide_bomb),
    ] {
        assert!(bomb.len() < 2 * MIB, "{name} bomb is {} bytes", bomb.len());
    }
    let expected = error(
        "decompressed_body_too_large",
        &format!(
            "decompressed body is more than {MAX_DECOMPRESSED} bytes; the limit is {MAX_DECOMPRESSED} bytes (max_decompressed_bytes): send smaller batches"
        ),
    );
    for (what, encoding, bomb, format) in [
        ("gzip bomb", "gzip", &gzip_bomb, "application/json"),
        ("zstd bomb", "zstd", &zstd_bomb, "application/json"),
        (
            "zstd bomb, 128 MiB window",
            "zstd",
            &zstd_wide_bomb,
            "application/json",
        ),
        (
            "gzip bomb as NDJSON",
            "gzip",
            &gzip_bomb,
            "application/x-ndjson",
        ),
    ] {
        let (status, answer) = bounded(
            what,
            300,
            Duration::from_secs(5),
            post(live.address, format, Some(encoding), bomb.clone()),
        )
        .await;
        assert_eq!(status, 413, "{what}: {answer}");
        assert_eq!(answer, expected, "{what}");
        live.assert_still_serves(what).await;
    }

    // Several at once.
    let requests: Vec<_> = (0..4)
        .map(|n| {
            let (encoding, bomb) = if n % 2 == 0 {
                ("gzip", gzip_bomb.clone())
            } else {
                ("zstd", zstd_wide_bomb.clone())
            };
            post(live.address, "application/json", Some(encoding), bomb)
        })
        .collect();
    let answers = bounded(
        "4 concurrent bombs",
        300,
        Duration::from_secs(10),
        futures_join_all(requests),
    )
    .await;
    for (status, answer) in answers {
        assert_eq!((status, answer), (413, expected.clone()));
    }
    live.assert_still_serves("concurrent bombs").await;
    live.stop().await;
}

/// Awaits all futures concurrently (spawned on the runtime).
async fn futures_join_all<T: Send + 'static>(
    futures: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("request task"));
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Millions of tiny NDJSON lines

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millions_of_empty_or_one_char_ndjson_lines() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let ok = text(&event("lines-ok"));

    // 5 MiB of line breaks (empty, CRLF and blank lines) around one event: blank lines are not
    // events, so the event is accepted.
    let mut body = Vec::with_capacity(MAX_BODY);
    body.extend_from_slice(ok.as_bytes());
    let filler = b"\n\r\n \n\t\n";
    while body.len() + filler.len() <= MAX_BODY {
        body.extend_from_slice(filler);
    }
    let (status, answer) = bounded(
        "5 MiB of blank lines",
        150,
        Duration::from_secs(10),
        post(live.address, "application/x-ndjson", None, body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 1, "duplicates": 0, "rejected": []})
    );
    live.stored += 1;
    live.assert_still_serves("blank lines").await;

    // 20 MiB of line breaks (gzip) with the event last.
    let gzip_body = {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let newlines = vec![b'\n'; MIB];
        for _ in 0..19 {
            gzip.write_all(&newlines).expect("gzip");
        }
        gzip.write_all(text(&event("lines-gz")).as_bytes())
            .expect("gzip");
        gzip.finish().expect("gzip")
    };
    let (status, answer) = bounded(
        "19 MiB of gzip newlines",
        200,
        Duration::from_secs(10),
        post(
            live.address,
            "application/x-ndjson",
            Some("gzip"),
            gzip_body,
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 1, "duplicates": 0, "rejected": []})
    );
    live.stored += 1;

    // 2.6 million one-character lines: counted, then refused without storing items for them.
    let lines = MAX_BODY / 2;
    let body = b"x\n".repeat(lines);
    let (status, answer) = bounded(
        "2.6M one-char lines",
        150,
        Duration::from_secs(10),
        post(live.address, "application/x-ndjson", None, body),
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        answer,
        error(
            "too_many_events",
            &format!("batch holds {lines} events; the limit is 10000 (max_batch_events): split it")
        )
    );

    // 10000 one-character lines (exactly the limit) are each refused alone, by index; none is
    // stored, so the answer is 400 with the per-event body (issue 18).
    let body = b"x\n".repeat(10_000);
    let (status, answer) = post(live.address, "application/x-ndjson", None, body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["accepted"], json!(0));
    let rejected = answer["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 10_000);
    assert_eq!(
        rejected[9_999],
        json!({"index": 9_999, "error": "invalid JSON: expected value at line 1 column 1"})
    );
    live.assert_still_serves("millions of tiny lines").await;
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_finite_latencies_and_values_cannot_overflow_endpoint_sums() {
    let _alone = ALONE.lock().await;
    let mut live = start().await;
    let on_big = |id: &str, field: &str, value: Value| {
        let event = with(with(event(id), "route", json!("/big")), field, value);
        with(event, "currency", json!("EUR"))
    };
    // Before the bounds, two latencies of 1.7e308 summed to infinity and the endpoint's mean_ms
    // (and value_sum) became `null` for as long as the rollup was kept.
    let events = [
        on_big("big-ok-1", "latency_ms", json!(604_800_000)),
        on_big("big-latency", "latency_ms", json!(1.7e308)),
        on_big("big-ok-2", "value", json!(1e15)),
        on_big("big-value", "value", json!(-1.7e308)),
        on_big("big-ok-3", "value", json!(1e15)),
        on_big("big-latency-2", "latency_ms", json!(1.7e308)),
    ];
    let body = serde_json::to_vec(&events).expect("json");
    let (status, answer) = post(live.address, "application/json", None, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 3, "duplicates": 0, "rejected": [
            {"index": 1, "event_id": "big-latency", "error": "latency_ms: must be at most 604800000 (7 days), got 1.7e+308"},
            {"index": 3, "event_id": "big-value", "error": "value: must be between -1e15 and 1e15, got -1.7e+308"},
            {"index": 5, "event_id": "big-latency-2", "error": "latency_ms: must be at most 604800000 (7 days), got 1.7e+308"},
        ]})
    );
    live.stored += 3;
    let path = format!(
        "/api/v1/projects/shop/endpoints?from={}&to={}",
        NOW - HOUR_MS,
        NOW + HOUR_MS
    );
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {READ}\r\nConnection: close\r\n\r\n"
    );
    let (status, answer) =
        first_response(&exchange(live.address, head.into_bytes(), After::KeepOpen).await);
    assert_eq!(status, 200, "{answer}");
    let row = &answer["endpoints"][0];
    assert_eq!(row["route"], json!("/big"), "{answer}");
    let mean = row["mean_ms"].as_f64().expect("mean_ms is a number");
    assert!(
        (mean - (604_800_000.0 + 12.5 * 2.0) / 3.0).abs() < 1e-6,
        "{answer}"
    );
    assert_eq!(row["value_sum"], json!(2e15), "{answer}");
    live.assert_still_serves("huge finite numbers").await;
    live.stop().await;
}
