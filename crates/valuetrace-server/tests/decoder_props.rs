//! Property tests of the batch decoder (`ingest::decode_batch`) and per-event validation: the CI
//! versions of the cargo-fuzz targets in `fuzz/` (see docs/reliability.md). Inputs are arbitrary
//! bytes, JSON-ish token soup, generated JSON values and events, gzip and zstd of generated
//! bodies, and truncated or damaged compressed streams. Every outcome must be an expected one: no
//! panic, an error code from the known set with the matching kind, results within the limits,
//! compression transparent, and a valid event among garbage still cut out as its own item where
//! the format allows it (NDJSON lines, array elements).

use proptest::prelude::*;
use serde_json::{Value, json};
use std::io::Write;
use valuetrace_model::{Limits, validate_json};
use valuetrace_server::config::IngestLimits;
use valuetrace_server::error::{ApiError, ErrorKind};
use valuetrace_server::ingest::{BodyFormat, Encoding, decode_batch};

/// Small limits, as in the fuzz target, so that bombs and oversized batches are cheap.
static LIMITS: std::sync::LazyLock<IngestLimits> = std::sync::LazyLock::new(|| IngestLimits {
    max_body_bytes: 8 << 10,
    max_decompressed_bytes: 32 << 10,
    max_event_bytes: 4 << 10,
    max_batch_events: 32,
    ..IngestLimits::default()
});

/// 2026-11-21T10:15:30.123Z, as in the other server tests.
const NOW: i64 = 1_795_256_130_123;

type Decoded = Result<Vec<Result<String, String>>, ApiError>;

// ---------------------------------------------------------------------------------------------
// Checks shared by the properties

/// Decodes `raw` and asserts that the outcome is an expected one; validates every event.
fn decode_checked(raw: &[u8], format: BodyFormat, encoding: Encoding) -> Decoded {
    let decoded = decode_batch(raw, format, encoding, &LIMITS);
    match &decoded {
        Ok(items) => {
            assert!(
                items.len() <= LIMITS.max_batch_events,
                "{} items",
                items.len()
            );
            let text_bytes: usize = items
                .iter()
                .map(|item| item.as_ref().map_or(0, String::len))
                .sum();
            let ceiling = match encoding {
                Encoding::Identity => raw.len(),
                Encoding::Gzip | Encoding::Zstd => LIMITS.max_decompressed_bytes,
            };
            assert!(text_bytes <= ceiling, "{text_bytes} > {ceiling}");
            for item in items {
                match item {
                    Ok(text) => {
                        assert!(!text.is_empty());
                        assert_eq!(text.trim(), text);
                        if format == BodyFormat::Ndjson {
                            assert!(!text.contains('\n'));
                        }
                        check_validation(text);
                    }
                    Err(reason) => {
                        assert_eq!(format, BodyFormat::Ndjson, "only lines fail alone");
                        assert!(reason.starts_with("event is not UTF-8: "), "{reason}");
                    }
                }
            }
        }
        Err(error) => check_error(error, format, encoding),
    }
    decoded
}

fn check_error(error: &ApiError, format: BodyFormat, encoding: Encoding) {
    let kind = match error.code {
        "invalid_utf8" | "invalid_json" => {
            assert_eq!(format, BodyFormat::Json, "{error:?}");
            ErrorKind::BadRequest
        }
        "bad_compression" => {
            assert_ne!(encoding, Encoding::Identity, "{error:?}");
            ErrorKind::BadRequest
        }
        "decompressed_body_too_large" => {
            assert_ne!(encoding, Encoding::Identity, "{error:?}");
            assert!(
                error.message.contains("(max_decompressed_bytes)"),
                "{error:?}"
            );
            ErrorKind::PayloadTooLarge
        }
        "too_many_events" => {
            assert!(error.message.contains("(max_batch_events)"), "{error:?}");
            ErrorKind::PayloadTooLarge
        }
        other => panic!("unexpected error code {other}: {error:?}"),
    };
    assert_eq!(error.kind, kind, "{error:?}");
    assert!(!error.message.is_empty());
}

/// Validation never panics, explains every refusal, and a valid event round-trips.
fn check_validation(text: &str) {
    match validate_json(text, NOW, &Limits::default()) {
        Ok(valid) => {
            assert!(!valid.event.event_id().is_empty());
            // A validated event serializes to an event that validates again (floats may come
            // back 1 ulp off: serde_json parses them without `float_roundtrip`).
            if valid.skew_ms == 0 {
                let again = serde_json::to_string(&valid.event).expect("serialize");
                let revalidated = validate_json(&again, NOW, &Limits::default())
                    .unwrap_or_else(|error| panic!("{again}: {error}"));
                assert_eq!(revalidated.event.event_id(), valid.event.event_id());
                assert_eq!(revalidated.event.timestamp(), valid.event.timestamp());
            }
        }
        Err(error) => assert!(!error.message.is_empty(), "{error:?}"),
    }
}

fn summary(decoded: &Decoded) -> Result<&Vec<Result<String, String>>, (&'static str, &str)> {
    decoded
        .as_ref()
        .map_err(|error| (error.code, error.message.as_str()))
}

fn compress(encoding: Encoding, body: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(body).expect("gzip");
            encoder.finish().expect("gzip")
        }
        Encoding::Zstd => zstd::bulk::compress(body, 1).expect("zstd"),
        Encoding::Identity => body.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

fn format() -> impl Strategy<Value = BodyFormat> {
    prop_oneof![Just(BodyFormat::Json), Just(BodyFormat::Ndjson)]
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Identity),
        Just(Encoding::Gzip),
        Just(Encoding::Zstd)
    ]
}

fn compressed_encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![Just(Encoding::Gzip), Just(Encoding::Zstd)]
}

/// A valid api_call or outcome event (validated in the properties that use it).
fn event() -> impl Strategy<Value = Value> {
    let call = (
        "[a-zA-Z0-9_-]{1,40}",
        prop::sample::select(vec!["GET", "post", "PUT", "DELETE"]),
        prop::sample::select(vec!["/", "/api/orders", "/api/orders/{id}", "/v1/charges"]),
        100u16..600,
        0.0f64..1e7,
        0i64..(7 * 86_400_000),
        prop::option::of("[a-z]{1,12}"),
    )
        .prop_map(|(id, method, route, status, latency, age, plan)| {
            let mut event = json!({
                "type": "api_call", "schema_version": 1, "event_id": id,
                "timestamp": NOW - age, "service": "shop-api", "method": method,
                "route": route, "status": status, "latency_ms": latency,
            });
            if let Some(plan) = plan {
                event["plan"] = json!(plan);
                event["properties"] = json!({"plan": plan, "note": "é \" \\ ✓"});
            }
            event
        });
    let outcome = (
        "[a-zA-Z0-9_-]{1,40}",
        "[a-z_]{1,20}",
        prop::option::of(0.0f64..1e6),
    )
        .prop_map(|(id, name, value)| {
            let mut event = json!({
                "type": "outcome", "schema_version": 1, "event_id": id,
                "timestamp": "2026-11-21T10:15:00Z", "name": name,
            });
            if let Some(value) = value {
                event["value"] = json!(value);
                event["currency"] = json!("EUR");
            }
            event
        });
    prop_oneof![call, outcome]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Token soup that is JSON-like but mostly broken: brackets, separators, literals JSON does not
/// have, huge numbers, escapes, newlines, fragments of events.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "\n",
            "\r\n",
            " ",
            "null",
            "true",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "18446744073709551617",
            "-0",
            "0.5e-400",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "\"\\\"",
            "\"batch\"",
            "\"type\"",
            "\"api_call\"",
            "\"schema_version\":1",
            "\"event_id\":\"x\"",
            "\"status\":",
            "\"latency_ms\":",
            "\"properties\":{",
            "{\"batch\":[",
        ])
        .prop_map(|token| token.as_bytes().to_vec()),
        event().prop_map(|event| event.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(token, 0..48).prop_map(|tokens| tokens.concat())
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_give_only_expected_outcomes(
        raw in prop::collection::vec(any::<u8>(), 0..2048),
        format in format(),
        encoding in encoding(),
    ) {
        let _ = decode_checked(&raw, format, encoding);
    }

    #[test]
    fn jsonish_bodies_give_only_expected_outcomes(raw in jsonish(), format in format()) {
        let _ = decode_checked(&raw, format, Encoding::Identity);
    }

    #[test]
    fn compression_is_transparent(
        plain in prop_oneof![jsonish(), prop::collection::vec(any::<u8>(), 0..512)],
        format in format(),
        encoding in compressed_encoding(),
    ) {
        let decoded = decode_checked(&compress(encoding, &plain), format, encoding);
        let expected = decode_checked(&plain, format, Encoding::Identity);
        prop_assert_eq!(summary(&decoded), summary(&expected));
    }

    #[test]
    fn truncated_or_damaged_streams_are_refused_or_decoded_within_limits(
        plain in jsonish(),
        format in format(),
        encoding in compressed_encoding(),
        cut in 1usize..10_000,
        flip in any::<(usize, u8)>(),
    ) {
        let stream = compress(encoding, &plain);
        // Cut strictly inside the stream: the end of the frame or member is missing.
        let truncated = &stream[..cut % stream.len().max(1)];
        if !truncated.is_empty() {
            let decoded = decode_checked(truncated, format, encoding);
            prop_assert!(
                matches!(&decoded, Err(error) if error.code == "bad_compression"),
                "a truncated {:?} stream must be refused: {:?}", encoding, summary(&decoded)
            );
        }
        let mut damaged = stream.clone();
        let (at, mask) = flip;
        let at = at % damaged.len();
        damaged[at] ^= mask.max(1);
        let _ = decode_checked(&damaged, format, encoding);
    }

    #[test]
    fn decompression_stops_at_the_limit(
        unit in prop::collection::vec(any::<u8>(), 1..8),
        format in format(),
        encoding in compressed_encoding(),
    ) {
        // A small stream of far more than max_decompressed_bytes.
        let plain = unit.repeat((LIMITS.max_decompressed_bytes * 4) / unit.len() + 1);
        let stream = compress(encoding, &plain);
        prop_assert!(stream.len() < plain.len() / 8);
        let decoded = decode_checked(&stream, format, encoding);
        prop_assert_eq!(decoded.err().map(|error| error.code), Some("decompressed_body_too_large"));
    }

    #[test]
    fn event_counts_respect_max_batch_events(events in prop::collection::vec(event(), 0..48)) {
        let array = serde_json::to_vec(&events).expect("json");
        let envelope = serde_json::to_vec(&json!({"batch": events, "sdk": "x"})).expect("json");
        let ndjson: Vec<u8> = events
            .iter()
            .flat_map(|event| format!("{event}\r\n\n").into_bytes())
            .collect();
        for (raw, format) in [
            (&array, BodyFormat::Json),
            (&envelope, BodyFormat::Json),
            (&ndjson, BodyFormat::Ndjson),
        ] {
            let decoded = decode_checked(raw, format, Encoding::Identity);
            if events.len() > LIMITS.max_batch_events {
                let error = decoded.expect_err("over max_batch_events");
                prop_assert_eq!(error.code, "too_many_events");
                prop_assert_eq!(
                    error.message,
                    format!(
                        "batch holds {} events; the limit is {} (max_batch_events): split it",
                        events.len(),
                        LIMITS.max_batch_events
                    )
                );
            } else {
                let items = decoded.expect("within limits");
                prop_assert_eq!(items.len(), events.len());
                for (item, event) in items.iter().zip(&events) {
                    let text = item.as_ref().expect("cut out");
                    prop_assert_eq!(text, &event.to_string());
                    prop_assert!(validate_json(text, NOW, &Limits::default()).is_ok(), "{}", text);
                }
            }
        }
    }

    #[test]
    fn a_valid_event_among_garbage_lines_is_its_own_item(
        before in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
        after in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..8),
        event in event(),
        encoding in encoding(),
    ) {
        let text = event.to_string();
        let line = |bytes: &Vec<u8>| -> Vec<u8> {
            bytes.iter().copied().filter(|&byte| byte != b'\n').collect()
        };
        let mut body = Vec::new();
        for garbage in &before {
            body.extend(line(garbage));
            body.push(b'\n');
        }
        body.extend_from_slice(text.as_bytes());
        for garbage in &after {
            body.push(b'\n');
            body.extend(line(garbage));
        }
        // Its index: the non-blank lines before it.
        let index = before
            .iter()
            .filter(|garbage| {
                std::str::from_utf8(&line(garbage)).map_or(true, |text| !text.trim().is_empty())
            })
            .count();
        let items = decode_checked(&compress(encoding, &body), BodyFormat::Ndjson, encoding)
            .expect("NDJSON is cut per line");
        prop_assert_eq!(items[index].as_deref(), Ok(text.as_str()));
        prop_assert!(validate_json(&text, NOW, &Limits::default()).is_ok());
    }

    #[test]
    fn a_valid_event_among_garbage_elements_is_its_own_item(
        before in prop::collection::vec(json_value(), 0..6),
        after in prop::collection::vec(json_value(), 0..6),
        event in event(),
        envelope in any::<bool>(),
        encoding in encoding(),
    ) {
        let text = event.to_string();
        let elements: Vec<String> = before
            .iter()
            .map(Value::to_string)
            .chain([text.clone()])
            .chain(after.iter().map(Value::to_string))
            .collect();
        let array = format!("[ {} ]", elements.join(" ,\n"));
        let body = if envelope {
            format!("{{\"meta\": [1, {{\"x\": null}}], \"batch\": {array}, \"sdk\": \"x\"}}")
        } else {
            array
        };
        let items = decode_checked(&compress(encoding, body.as_bytes()), BodyFormat::Json, encoding)
            .expect("an array of JSON values is cut");
        prop_assert_eq!(items.len(), elements.len());
        prop_assert_eq!(items[before.len()].as_deref(), Ok(text.as_str()));
        for (item, element) in items.iter().zip(&elements) {
            prop_assert_eq!(item.as_deref(), Ok(element.as_str()));
        }
    }
}
