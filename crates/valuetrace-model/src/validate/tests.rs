//! One test per rule: the message a client sees for each mistake.

use super::*;
use crate::time::HOUR_MS;
use serde_json::json;

const NOW: i64 = 1_795_256_130_000; // 2026-11-21T10:15:30Z

fn call() -> Value {
    json!({
        "type": "api_call", "schema_version": 1, "event_id": "e-1", "timestamp": NOW - 1000,
        "service": "checkout", "method": "post", "route": "/api/orders/{id}", "status": 201, "latency_ms": 12.5
    })
}

fn outcome() -> Value {
    json!({"type": "outcome", "schema_version": 1, "event_id": "o-1", "timestamp": "2026-11-21T10:15:00Z", "name": "purchase", "value": 49.9, "currency": "EUR"})
}

fn with(mut base: Value, field: &str, value: Value) -> Value {
    base[field] = value;
    base
}

fn without(mut base: Value, field: &str) -> Value {
    base.as_object_mut()
        .expect("test events are objects")
        .remove(field);
    base
}

fn error_of(value: Value) -> String {
    match validate_event(&value, NOW, &Limits::default()) {
        Ok(valid) => panic!("expected an error, got {valid:?}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn accepts_minimal_and_full_events() {
    let valid = validate_event(&call(), NOW, &Limits::default()).expect("valid call");
    let Event::ApiCall(api_call) = valid.event else {
        panic!("api call expected")
    };
    assert_eq!(api_call.method, "POST");
    assert_eq!(api_call.direction, Direction::Inbound);
    let full = json!({
        "type": "api_call", "schema_version": 1, "event_id": "e-2", "timestamp": "2026-11-21T10:15:00.250Z",
        "sent_at": "2026-11-21T10:15:01Z", "service": "payments", "method": "POST", "route": "/v1/charges",
        "status": 504, "latency_ms": 10000.0, "request_bytes": 512, "response_bytes": 0, "user_id": "u1",
        "account_id": "a1", "session_id": "s1", "plan": "enterprise", "segment": "power",
        "experiments": {"reco": "ml_v2"}, "app_version": "web-4.2.0", "sdk": "valuetrace-rust/0.1.0",
        "error_type": "upstream_timeout", "direction": "outbound", "provider": "stripe", "value": 120.0,
        "currency": "EUR", "properties": {"card": "visa"}
    });
    let valid = validate_event(&full, NOW, &Limits::default()).expect("valid full call");
    assert_eq!(valid.skew_ms, NOW - 1_795_256_101_000);
    assert!(validate_event(&outcome(), NOW, &Limits::default()).is_ok());
}

#[test]
fn serialized_events_validate_back_to_themselves() {
    let valid = validate_event(&call(), NOW, &Limits::default()).expect("valid");
    let round = serde_json::to_value(&valid.event).expect("serializes");
    let again = validate_event(&round, NOW, &Limits::default()).expect("valid again");
    assert_eq!(again.event, valid.event);
}

#[test]
fn envelope_rules() {
    assert_eq!(
        error_of(json!([1])),
        "an event must be a JSON object, got an array"
    );
    assert_eq!(error_of(without(call(), "type")), "type: is required");
    assert_eq!(
        error_of(with(call(), "type", json!("click"))),
        "type: unknown event type `click`; expected `api_call`, `outcome` or `api_aggregate`"
    );
    assert_eq!(
        error_of(without(call(), "schema_version")),
        "schema_version: is required"
    );
    assert_eq!(
        error_of(with(call(), "schema_version", json!(2))),
        "schema_version: unsupported schema_version 2; this server understands 1"
    );
    assert_eq!(
        error_of(with(call(), "stauts", json!(200))),
        "stauts: unknown field `stauts` for a api_call event; custom data belongs in `properties`"
    );
}

#[test]
fn required_fields_of_api_calls() {
    for field in [
        "event_id",
        "timestamp",
        "service",
        "method",
        "route",
        "status",
        "latency_ms",
    ] {
        assert_eq!(
            error_of(without(call(), field)),
            format!("{field}: is required")
        );
    }
    assert_eq!(error_of(without(outcome(), "name")), "name: is required");
}

#[test]
fn types_are_checked() {
    assert_eq!(
        error_of(with(call(), "status", json!("200"))),
        "status: must be a non-negative integer, got a string"
    );
    assert_eq!(
        error_of(with(call(), "latency_ms", json!("fast"))),
        "latency_ms: must be a number, got a string"
    );
    assert_eq!(
        error_of(with(call(), "service", json!(7))),
        "service: must be a string, got a number"
    );
    assert_eq!(
        error_of(with(call(), "properties", json!([]))),
        "properties: must be an object of strings, got an array"
    );
    assert_eq!(
        error_of(with(call(), "properties", json!({"n": 1}))),
        "properties.n: must be a string, got a number"
    );
    assert_eq!(
        error_of(with(call(), "request_bytes", json!(-1))),
        "request_bytes: must be a non-negative integer, got -1"
    );
    assert_eq!(
        error_of(with(call(), "event_id", json!(""))),
        "event_id: must not be empty"
    );
}

#[test]
fn lengths_are_checked() {
    let long_route = format!("/{}", "a".repeat(256));
    assert_eq!(
        error_of(with(call(), "route", json!(long_route))),
        "route: is 257 bytes long; at most 256 are allowed"
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        error_of(with(call(), "properties", Value::Object(many))),
        "properties: has 65 entries; at most 64 are allowed"
    );
    assert_eq!(
        error_of(with(call(), "event_id", json!("x".repeat(129)))),
        "event_id: is 129 bytes long; at most 128 are allowed"
    );
    let big_value = json!({"note": "v".repeat(1025)});
    assert_eq!(
        error_of(with(call(), "properties", big_value)),
        "properties.note: is 1025 bytes long; at most 1024 are allowed"
    );
}

#[test]
fn ranges_are_checked() {
    assert_eq!(
        error_of(with(call(), "status", json!(700))),
        "status: must be an HTTP status between 100 and 599, got 700"
    );
    assert_eq!(
        error_of(with(call(), "status", json!(99))),
        "status: must be an HTTP status between 100 and 599, got 99"
    );
    assert_eq!(
        error_of(with(call(), "latency_ms", json!(-0.5))),
        "latency_ms: must be ≥ 0, got -0.5"
    );
    assert_eq!(
        error_of(with(call(), "method", json!("FETCH"))),
        "method: `FETCH` is not an HTTP method; expected one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, CONNECT, TRACE"
    );
    assert_eq!(
        error_of(with(call(), "currency", json!("euro"))),
        "currency: is 4 bytes long; at most 3 are allowed"
    );
    assert_eq!(
        error_of(with(call(), "currency", json!("eur"))),
        "currency: must be an ISO 4217 code such as `EUR`, got `eur`"
    );
    assert_eq!(
        error_of(with(call(), "direction", json!("sideways"))),
        "direction: must be `inbound` or `outbound`, got `sideways`"
    );
    assert_eq!(
        error_of(with(call(), "direction", json!("outbound"))),
        "provider: is required when direction is `outbound` (e.g. `stripe`)"
    );
}

#[test]
fn routes_must_be_templates() {
    assert_eq!(
        error_of(with(call(), "route", json!("api/orders"))),
        "route: must start with `/`, got `api/orders`"
    );
    assert_eq!(
        error_of(with(call(), "route", json!("/api/orders?id=1"))),
        "route: must be a route template without query string or fragment (e.g. `/api/orders/{id}`)"
    );
    assert!(
        error_of(with(call(), "route", json!("/api/orders/12345")))
            .starts_with("route: segment `12345` looks like a raw id")
    );
    assert!(
        error_of(with(
            call(),
            "route",
            json!("/api/u/3f2a1c9e-1b2c-4d5e-8f90-123456789abc")
        ))
        .contains("looks like a raw id")
    );
    assert!(
        validate_event(
            &with(call(), "route", json!("/api/v1/2fa")),
            NOW,
            &Limits::default()
        )
        .is_ok()
    );
}

#[test]
fn timestamps_are_checked() {
    assert_eq!(
        error_of(with(call(), "timestamp", json!("yesterday"))),
        "timestamp: `yesterday` is not an RFC 3339 timestamp (e.g. `2026-11-21T10:15:30.123Z`)"
    );
    assert_eq!(
        error_of(with(call(), "timestamp", json!(1_795_256_130))),
        "timestamp: 1795256130 is before 2000-01-01; timestamps are epoch milliseconds, not seconds"
    );
    assert_eq!(
        error_of(with(call(), "timestamp", json!(1.5e12))),
        "timestamp: must be epoch milliseconds as an integer, got 1500000000000.0"
    );
    let ancient = with(call(), "timestamp", json!(NOW - 401 * DAY_MS));
    assert_eq!(
        error_of(ancient),
        "timestamp: is 401.0 days old after clock-skew correction; events older than 400 days are not kept (limits.max_event_age)"
    );
}

#[test]
fn far_future_timestamps_are_clamped_to_the_receive_time() {
    let limits = Limits::default();
    let near = validate_event(
        &with(call(), "timestamp", json!(NOW + 60_000)),
        NOW,
        &limits,
    )
    .expect("valid");
    assert!(!near.clamped);
    assert_eq!(near.event.timestamp(), NOW + 60_000);
    for ahead in [11 * 60_000, 25 * HOUR_MS, 4_000_000_000_000] {
        let far = validate_event(&with(call(), "timestamp", json!(NOW + ahead)), NOW, &limits)
            .expect("valid");
        assert!(far.clamped, "{ahead}");
        assert_eq!(far.event.timestamp(), NOW);
    }
}

#[test]
fn skew_correction_moves_timestamps_by_the_client_clock_error() {
    // The client's clock runs 30 h ahead: without sent_at the event is clamped, with it it is corrected.
    let ahead = 30 * HOUR_MS;
    let skewed = with(
        with(call(), "timestamp", json!(NOW + ahead - 5000)),
        "sent_at",
        json!(NOW + ahead),
    );
    let valid = validate_event(&skewed, NOW, &Limits::default()).expect("corrected");
    assert_eq!(valid.event.timestamp(), NOW - 5000);
    assert_eq!(valid.skew_ms, -ahead);
}

#[test]
fn extreme_timestamps_are_refused_not_overflowed() {
    assert_eq!(
        error_of(with(call(), "timestamp", json!(i64::MAX - 10))),
        "timestamp: 9223372036854775797 is after 9999-12-31; timestamps are epoch milliseconds"
    );
    let skewed = with(
        with(call(), "timestamp", json!(253_402_300_000_000i64)),
        "sent_at",
        json!(946_684_800_000i64),
    );
    let clamped = validate_event(&skewed, NOW, &Limits::default()).expect("clamped");
    assert!(clamped.clamped);
    assert_eq!(clamped.event.timestamp(), NOW);
}

#[test]
fn experiment_names_and_variants_cannot_break_variant_keys() {
    assert_eq!(
        error_of(with(call(), "experiments", json!({"reco": "a=b"}))),
        "experiments.reco: experiment names and variants may not contain `=`, got `a=b`"
    );
    assert_eq!(
        error_of(with(call(), "experiments", json!({"re;co": "v2"}))),
        "experiments.re;co: experiment names and variants may not contain `;`, got `re;co`"
    );
}

#[test]
fn repeated_keys_are_refused_naming_the_key() {
    let json_error = |text: &str| match validate_json(text, NOW, &Limits::default()) {
        Ok(valid) => panic!("expected an error, got {valid:?}"),
        Err(error) => error.to_string(),
    };
    let base = call().to_string();
    let body = base.strip_suffix('}').expect("object");
    assert_eq!(
        json_error(&format!("{body},\"status\":500}}")),
        "status: appears more than once in the event; send each field once"
    );
    assert_eq!(
        json_error(&format!(
            "{body},\"properties\":{{\"color\":\"red\",\"color\":\"blue\"}}}}"
        )),
        "properties.color: key appears more than once; send each key once"
    );
    assert_eq!(
        json_error(&format!(
            "{body},\"experiments\":{{\"reco\":\"a\",\"reco\":\"b\"}}}}"
        )),
        "experiments.reco: key appears more than once; send each key once"
    );
    // Many fields (the hashed path): the duplicate is still named.
    let many: String = (0..40).map(|i| format!(",\"k{i}\":1")).collect();
    assert_eq!(
        json_error(&format!("{body}{many},\"k7\":2}}")),
        "k7: appears more than once in the event; send each field once"
    );
    // Keys equal after unescaping are the same key.
    assert_eq!(
        json_error(&format!("{body},\"st\\u0061tus\":500}}")),
        "status: appears more than once in the event; send each field once"
    );
    assert!(validate_json(&base, NOW, &Limits::default()).is_ok());
}

#[test]
fn huge_latencies_and_values_are_refused_so_that_sums_stay_finite() {
    assert_eq!(
        error_of(with(call(), "latency_ms", json!(1.7e308))),
        "latency_ms: must be at most 604800000 (7 days), got 1.7e+308"
    );
    assert_eq!(
        error_of(with(call(), "latency_ms", json!(604_800_001))),
        "latency_ms: must be at most 604800000 (7 days), got 604800001.0"
    );
    assert!(
        validate_event(
            &with(call(), "latency_ms", json!(604_800_000)),
            NOW,
            &Limits::default()
        )
        .is_ok()
    );
    assert_eq!(
        error_of(with(outcome(), "value", json!(-1.7e308))),
        "value: must be between -1e15 and 1e15, got -1.7e+308"
    );
    assert_eq!(
        error_of(with(call(), "value", json!(2e15))),
        "value: must be between -1e15 and 1e15, got 2000000000000000.0"
    );
    assert!(
        validate_event(
            &with(outcome(), "value", json!(-1e15)),
            NOW,
            &Limits::default()
        )
        .is_ok()
    );
}

fn aggregate() -> Value {
    json!({
        "type": "api_aggregate", "schema_version": 1, "event_id": "agg-1",
        "timestamp": NOW - 1000, "window_start": NOW - 11_000,
        "service": "shop", "method": "get", "route": "/api/items/{id}", "status_class": 2,
        "plan": "pro", "experiments": {"reco": "ml_v2"},
        "count": 5, "latency_sum_ms": 60.5, "latency_buckets": [[460, 2], [470, 3]]
    })
}

#[test]
fn accepts_an_aggregate_and_shifts_its_window_with_the_skew() {
    let valid = validate_event(&aggregate(), NOW, &Limits::default()).expect("valid aggregate");
    let Event::ApiAggregate(a) = valid.event else {
        panic!("aggregate expected")
    };
    assert_eq!((a.method.as_str(), a.status_class, a.count), ("GET", 2, 5));
    assert_eq!(a.latency_buckets, vec![(460, 2), (470, 3)]);
    assert_eq!(a.timestamp - a.window_start, 10_000);
    // The client's clock is 5 s behind: both ends of the window move.
    let skewed = with(aggregate(), "sent_at", json!(NOW - 5_000));
    let valid = validate_event(&skewed, NOW, &Limits::default()).expect("valid");
    let Event::ApiAggregate(a) = valid.event else {
        panic!("aggregate expected")
    };
    assert_eq!((a.timestamp, a.window_start), (NOW + 4_000, NOW - 6_000));
}

#[test]
fn aggregate_mistakes_name_their_field() {
    let cases = [
        (
            with(aggregate(), "count", json!(6)),
            "latency_buckets: the buckets count 5 calls but `count` is 6",
        ),
        (
            with(aggregate(), "latency_buckets", json!([[470, 3], [460, 2]])),
            "latency_buckets[1]: buckets must be strictly ascending (each bucket once)",
        ),
        (
            with(aggregate(), "latency_buckets", json!([[460, 2], [470]])),
            "latency_buckets[1]: must be a [bucket, calls] pair of non-negative integers",
        ),
        (
            with(aggregate(), "latency_buckets", json!([[4600, 5]])),
            "latency_buckets[0]: bucket 4600 is above the highest bucket 2048",
        ),
        (
            with(aggregate(), "latency_buckets", json!({"460": 5})),
            "latency_buckets: must be an array of [bucket, calls] pairs, got an object",
        ),
        (
            with(aggregate(), "status_class", json!(6)),
            "status_class: must be 1 to 5 (the first digit of the status), got 6",
        ),
        (
            with(aggregate(), "count", json!(0)),
            "count: must be between 1 and 3600000000, got 0",
        ),
        (
            with(aggregate(), "window_start", json!(NOW)),
            "window_start: is after `timestamp` (the window's end)",
        ),
        (
            with(aggregate(), "window_start", json!(NOW - 2 * HOUR_MS)),
            "window_start: the window is 7199 s long; an aggregate covers at most one hour (flush more often)",
        ),
        (
            with(aggregate(), "direction", json!("outbound")),
            "provider: is required when direction is `outbound` (e.g. `stripe`)",
        ),
        (
            with(aggregate(), "user_id", json!("u1")),
            "user_id: unknown field `user_id` for a api_aggregate event; custom data belongs in `properties`",
        ),
        (
            with(aggregate(), "route", json!("/api/items/12345")),
            "route: segment `12345` looks like a raw id; send the route template (e.g. `/api/orders/{id}`) so that endpoints stay countable",
        ),
    ];
    for (event, expected) in cases {
        assert_eq!(error_of(event), expected);
    }
}

#[test]
fn an_aggregate_may_carry_a_user_sketch_and_malformed_ones_are_named() {
    let valid = validate_event(
        &with(
            aggregate(),
            "user_sketch",
            json!([[0, 1], [17, 3], [4095, 53]]),
        ),
        NOW,
        &Limits::default(),
    )
    .expect("valid sketch");
    let Event::ApiAggregate(a) = valid.event else {
        panic!("aggregate expected")
    };
    assert_eq!(a.user_sketch, Some(vec![(0, 1), (17, 3), (4095, 53)]));
    // Without one (older clients) the aggregate is still accepted, with no sketch.
    let valid = validate_event(&aggregate(), NOW, &Limits::default()).expect("valid");
    let Event::ApiAggregate(a) = valid.event else {
        panic!("aggregate expected")
    };
    assert_eq!(a.user_sketch, None);
    let cases = [
        (
            json!({"3": 1}),
            "user_sketch: must be an array of [register, rank] pairs (HyperLogLog registers, precision 12), got an object",
        ),
        (
            json!([[4096, 1]]),
            "user_sketch[0]: register 4096 is out of range: precision 12 has registers 0 to 4095",
        ),
        (
            json!([[1, 0]]),
            "user_sketch[0]: rank 0 is out of range: ranks are 1 to 53 (leave empty registers out)",
        ),
        (
            json!([[1, 54]]),
            "user_sketch[0]: rank 54 is out of range: ranks are 1 to 53 (leave empty registers out)",
        ),
        (
            json!([[5, 1], [5, 2]]),
            "user_sketch[1]: registers must be strictly ascending (each register once)",
        ),
        (
            json!([[5, 1], ["u1", 2]]),
            "user_sketch[1]: must be a [register, rank] pair of non-negative integers",
        ),
        (
            json!([[5]]),
            "user_sketch[0]: must be a [register, rank] pair of non-negative integers",
        ),
    ];
    for (sketch, expected) in cases {
        assert_eq!(error_of(with(aggregate(), "user_sketch", sketch)), expected);
    }
}

#[test]
fn the_aggregated_flag_is_a_boolean() {
    let valid = validate_event(
        &with(call(), "aggregated", json!(true)),
        NOW,
        &Limits::default(),
    )
    .expect("valid");
    let Event::ApiCall(c) = valid.event else {
        panic!("call expected")
    };
    assert!(c.aggregated);
    assert_eq!(
        error_of(with(call(), "aggregated", json!("yes"))),
        "aggregated: must be true or false, got a string"
    );
}

#[test]
fn latency_buckets_match_their_documented_bounds() {
    use crate::event::{latency_bucket, latency_bucket_value};
    assert_eq!(latency_bucket(0.01), 0);
    assert_eq!(latency_bucket(0.0100001), 1);
    for ms in [0.5, 1.0, 12.5, 250.0, 9_999.0] {
        let b = latency_bucket(ms);
        let (low, high) = (
            0.01 * 1.02f64.powi(b as i32 - 1),
            0.01 * 1.02f64.powi(b as i32),
        );
        assert!(low < ms && ms <= high * (1.0 + 1e-12), "{ms} in bucket {b}");
        assert!((latency_bucket_value(b) - ms).abs() / ms < 0.011);
    }
}
