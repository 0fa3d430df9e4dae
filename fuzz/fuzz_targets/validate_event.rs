//! `valuetrace_model::validate_json` on arbitrary text (the ingest path's per-event validation).
//!
//! Accepted outcomes only: no panic; an error always has a message; a valid event serializes to
//! JSON that validates again (same id and timestamp); and the borrowed-JSON path agrees with the
//! `serde_json::Value` path (`validate_event`) wherever both can see the same object (a
//! `Value` silently keeps the last of repeated keys, which `validate_json` refuses).

#![no_main]

use libfuzzer_sys::fuzz_target;
use valuetrace_model::{Limits, validate_event, validate_json};

const NOW: i64 = 1_795_256_130_123;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = Limits::default();
    let borrowed = validate_json(text, NOW, &limits);
    match &borrowed {
        Ok(valid) => {
            assert!(!valid.event.event_id().is_empty());
            assert!(valid.event.timestamp() - NOW <= limits.max_future_ms);
            if valid.skew_ms == 0 {
                let again = serde_json::to_string(&valid.event).expect("events serialize");
                let revalidated = validate_json(&again, NOW, &limits)
                    .unwrap_or_else(|error| panic!("{again} no longer validates: {error}"));
                // Floats may come back 1 ulp off (serde_json without `float_roundtrip`).
                assert_eq!(revalidated.event.event_id(), valid.event.event_id());
                assert_eq!(revalidated.event.timestamp(), valid.event.timestamp());
            }
        }
        Err(error) => assert!(!error.message.is_empty(), "{error:?}"),
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let owned = validate_event(&value, NOW, &limits);
        match (&borrowed, &owned) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Ok(a), Err(b)) => panic!("validate_json accepted {a:?}, validate_event said {b}"),
            // Only repeated keys, which a Value collapses, may make the borrowed path stricter:
            // refused as repeated, or as too many entries in a map counted with its repeats.
            (Err(a), Ok(_)) => assert!(
                a.message.contains("more than once") || a.message.contains(" entries; at most "),
                "{text}: {a}"
            ),
            // Both refuse; which rule they name first may differ (a Value's keys are sorted).
            (Err(_), Err(_)) => {}
        }
    }
});
