//! The batch decoder (`valuetrace_server::ingest::decode_batch`) on arbitrary bodies, then
//! `validate_json` on every event it cuts out.
//!
//! Input layout: `[control, cut, body...]`.
//! - `control` bit 0: format (0 JSON, 1 NDJSON); bits 1-2: encoding (0/3 identity, 1 gzip,
//!   2 zstd); bits 3-4: what the body is for gzip/zstd: 0 the bytes as given (arbitrary,
//!   usually invalid compressed data, bombs), 1 the bytes compressed by this harness (so the
//!   decoder sees valid streams of arbitrary text), 2 that stream truncated at `cut`/256 of its
//!   length, 3 that stream with the byte at `cut` flipped.
//!
//! Accepted outcomes only: no panic; an `Err` for the whole body has one of the expected codes,
//! the matching kind and a message naming the setting for size errors; an `Ok` holds at most
//! `max_batch_events` items whose text fits within `max_decompressed_bytes`; a valid compressed
//! stream decodes exactly like the plain body; every event validates or is refused with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use valuetrace_server::config::IngestLimits;
use valuetrace_server::error::{ApiError, ErrorKind};
use valuetrace_server::ingest::{BodyFormat, Encoding, decode_batch};

/// Small limits so that bombs and oversized batches are cheap to hit.
static LIMITS: std::sync::LazyLock<IngestLimits> = std::sync::LazyLock::new(|| IngestLimits {
    max_body_bytes: 8 << 10,
    max_decompressed_bytes: 32 << 10,
    max_event_bytes: 4 << 10,
    max_batch_events: 32,
    ..IngestLimits::default()
});

/// 2026-11-21T10:15:30.123Z, as in the server tests.
const NOW: i64 = 1_795_256_130_123;

fuzz_target!(|data: &[u8]| {
    let [control, cut, body @ ..] = data else {
        return;
    };
    let format = if control & 1 == 0 {
        BodyFormat::Json
    } else {
        BodyFormat::Ndjson
    };
    let encoding = match (control >> 1) & 3 {
        1 => Encoding::Gzip,
        2 => Encoding::Zstd,
        _ => Encoding::Identity,
    };
    let mode = (control >> 3) & 3;
    if encoding == Encoding::Identity || mode == 0 {
        let _ = check(body, format, encoding);
        return;
    }
    let mut stream = compress(encoding, body);
    match mode {
        1 => {
            let decoded = check(&stream, format, encoding);
            let plain = check(body, format, Encoding::Identity);
            if body.len() <= LIMITS.max_decompressed_bytes {
                assert_eq!(
                    summary(&decoded),
                    summary(&plain),
                    "a valid {encoding:?} stream must decode like the plain body"
                );
            }
        }
        2 => {
            stream.truncate(stream.len() * usize::from(*cut) / 256);
            let _ = check(&stream, format, encoding);
        }
        _ => {
            let at = usize::from(*cut) % stream.len();
            stream[at] ^= 0x5a;
            let _ = check(&stream, format, encoding);
        }
    }
});

fn compress(encoding: Encoding, body: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(body).expect("gzip into memory");
            encoder.finish().expect("gzip into memory")
        }
        Encoding::Zstd => zstd::bulk::compress(body, 1).expect("zstd into memory"),
        Encoding::Identity => body.to_vec(),
    }
}

type Decoded = Result<Vec<Result<String, String>>, ApiError>;

fn summary(decoded: &Decoded) -> Result<&Vec<Result<String, String>>, (&'static str, &str)> {
    decoded
        .as_ref()
        .map_err(|error| (error.code, error.message.as_str()))
}

/// Decodes `raw`, asserts the outcome is an expected one, validates each event.
fn check(raw: &[u8], format: BodyFormat, encoding: Encoding) -> Decoded {
    let decoded = decode_batch(raw, format, encoding, &LIMITS);
    match &decoded {
        Ok(items) => {
            assert!(
                items.len() <= LIMITS.max_batch_events,
                "{} items exceed max_batch_events",
                items.len()
            );
            let text_bytes: usize = items
                .iter()
                .map(|item| item.as_ref().map_or(0, String::len))
                .sum();
            let ceiling = match encoding {
                Encoding::Identity => raw.len(),
                _ => LIMITS.max_decompressed_bytes,
            };
            assert!(
                text_bytes <= ceiling,
                "{text_bytes} bytes of events from a body limited to {ceiling}"
            );
            for item in items {
                match item {
                    Ok(text) => check_event(text, format),
                    Err(reason) => assert!(!reason.is_empty(), "an item error must say why"),
                }
            }
        }
        Err(error) => check_error(error, format, encoding),
    }
    decoded
}

fn check_error(error: &ApiError, format: BodyFormat, encoding: Encoding) {
    let expected_kind = match error.code {
        "invalid_utf8" => {
            assert_eq!(format, BodyFormat::Json, "NDJSON refuses a bad line alone");
            ErrorKind::BadRequest
        }
        "invalid_json" => {
            assert_eq!(format, BodyFormat::Json, "NDJSON bodies are cut per line");
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
    assert_eq!(error.kind, expected_kind, "{error:?}");
    assert!(!error.message.is_empty(), "{error:?}");
}

fn check_event(text: &str, format: BodyFormat) {
    assert!(!text.is_empty(), "an event is never empty text");
    assert_eq!(
        text.trim(),
        text,
        "events are cut without surrounding space"
    );
    if format == BodyFormat::Ndjson {
        assert!(!text.contains('\n'), "an NDJSON event is one line");
    }
    match valuetrace_model::validate_json(text, NOW, &Default::default()) {
        Ok(valid) => {
            assert!(!valid.event.event_id().is_empty());
            // A validated event serializes to JSON that validates again (when no clock-skew
            // correction was applied, which a second validation would apply again). Floats may
            // come back 1 ulp off: serde_json parses them without `float_roundtrip`.
            if valid.skew_ms == 0 {
                let again = serde_json::to_string(&valid.event).expect("events serialize");
                let revalidated = valuetrace_model::validate_json(&again, NOW, &Default::default())
                    .unwrap_or_else(|error| panic!("{again} no longer validates: {error}"));
                assert_eq!(revalidated.event.event_id(), valid.event.event_id());
                assert_eq!(revalidated.event.timestamp(), valid.event.timestamp());
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}
