//! Typed getters of [`Reader`]: each checks one JSON type and names the field when it is wrong.

use super::{Reader, Result, ValidationError};
use crate::time::parse_rfc3339;
use crate::wire::{self, WireMap, WireValue};
use std::collections::BTreeMap;

impl Reader<'_, '_> {
    pub(super) fn required_time(&mut self, field: &str) -> Result<i64> {
        match self.optional_time(field)? {
            Some(time) => Ok(time),
            None => Err(missing(field)),
        }
    }

    pub(super) fn optional_time(&mut self, field: &str) -> Result<Option<i64>> {
        const EARLIEST_MS: i64 = 946_684_800_000; // 2000-01-01: anything earlier is a unit mistake
        const LATEST_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let time = match self.get(field) {
            None | Some(WireValue::Null) => return Ok(None),
            Some(WireValue::Str(text)) => parse_rfc3339(text).ok_or_else(|| {
                ValidationError::new(
                    field,
                    format!(
                        "`{text}` is not an RFC 3339 timestamp (e.g. `2026-11-21T10:15:30.123Z`)"
                    ),
                )
            })?,
            Some(WireValue::U64(number)) if i64::try_from(*number).is_ok() => *number as i64,
            Some(WireValue::I64(number)) => *number,
            Some(number @ (WireValue::U64(_) | WireValue::F64(_))) => {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "must be epoch milliseconds as an integer, got {}",
                        number.number_text()
                    ),
                ));
            }
            Some(other) => {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "must be an RFC 3339 string or epoch milliseconds, got {}",
                        other.kind()
                    ),
                ));
            }
        };
        if time > LATEST_MS {
            return Err(ValidationError::new(
                field,
                format!("{time} is after 9999-12-31; timestamps are epoch milliseconds"),
            ));
        }
        if time < EARLIEST_MS {
            return Err(ValidationError::new(
                field,
                format!(
                    "{time} is before 2000-01-01; timestamps are epoch milliseconds, not seconds"
                ),
            ));
        }
        Ok(Some(time))
    }

    pub(super) fn required_str(&mut self, field: &str, max_bytes: usize) -> Result<String> {
        self.optional_str(field, max_bytes)?
            .ok_or_else(|| missing(field))
    }

    pub(super) fn optional_str(&mut self, field: &str, max_bytes: usize) -> Result<Option<String>> {
        match wire::get_mut(self.object, field) {
            None | Some(WireValue::Null) => Ok(None),
            Some(WireValue::Str(text)) => {
                check_text(field, text, max_bytes)?;
                Ok(Some(std::mem::take(text).into_owned()))
            }
            Some(other) => Err(ValidationError::new(
                field,
                format!("must be a string, got {}", other.kind()),
            )),
        }
    }

    pub(super) fn optional_bool(&mut self, field: &str) -> Result<Option<bool>> {
        match self.get(field) {
            None | Some(WireValue::Null) => Ok(None),
            Some(WireValue::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(ValidationError::new(
                field,
                format!("must be true or false, got {}", other.kind()),
            )),
        }
    }

    pub(super) fn required_u64(&mut self, field: &str) -> Result<u64> {
        self.optional_u64(field)?.ok_or_else(|| missing(field))
    }

    pub(super) fn optional_u64(&mut self, field: &str) -> Result<Option<u64>> {
        match self.get(field) {
            None | Some(WireValue::Null) => Ok(None),
            Some(WireValue::U64(number)) => Ok(Some(*number)),
            Some(number @ (WireValue::I64(_) | WireValue::F64(_))) => Err(ValidationError::new(
                field,
                format!(
                    "must be a non-negative integer, got {}",
                    number.number_text()
                ),
            )),
            Some(other) => Err(ValidationError::new(
                field,
                format!("must be a non-negative integer, got {}", other.kind()),
            )),
        }
    }

    pub(super) fn required_f64(&mut self, field: &str) -> Result<f64> {
        let value = match self.get(field) {
            None | Some(WireValue::Null) => return Err(missing(field)),
            Some(WireValue::U64(number)) => *number as f64,
            Some(WireValue::I64(number)) => *number as f64,
            Some(WireValue::F64(number)) => *number,
            Some(other) => {
                return Err(ValidationError::new(
                    field,
                    format!("must be a number, got {}", other.kind()),
                ));
            }
        };
        if !value.is_finite() {
            return Err(ValidationError::new(
                field,
                format!("must be a finite number, got {value}"),
            ));
        }
        Ok(value)
    }

    pub(super) fn string_map(
        &mut self,
        field: &str,
        max_entries: usize,
        max_key: usize,
        max_value: usize,
    ) -> Result<BTreeMap<String, String>> {
        let object = match wire::get_mut(self.object, field) {
            None | Some(WireValue::Null) => return Ok(BTreeMap::new()),
            Some(WireValue::Object(object)) => std::mem::take(object),
            Some(other) => {
                return Err(ValidationError::new(
                    field,
                    format!("must be an object of strings, got {}", other.kind()),
                ));
            }
        };
        if object.len() > max_entries {
            return Err(ValidationError::new(
                field,
                format!(
                    "has {} entries; at most {max_entries} are allowed",
                    object.len()
                ),
            ));
        }
        if let Some(key) = first_duplicate_key(&object) {
            return Err(ValidationError::new(
                format!("{field}.{key}"),
                "key appears more than once; send each key once",
            ));
        }
        let mut map = BTreeMap::new();
        for (key, value) in object {
            let path = || format!("{field}.{key}");
            check_text("", &key, max_key)
                .map_err(|error| ValidationError::new(path(), format!("key {}", error.message)))?;
            let WireValue::Str(text) = value else {
                return Err(ValidationError::new(
                    path(),
                    format!("must be a string, got {}", value.kind()),
                ));
            };
            check_text("", &text, max_value)
                .map_err(|error| ValidationError::new(path(), error.message))?;
            map.insert(key.into_owned(), text.into_owned());
        }
        Ok(map)
    }
}

pub(super) fn check_text(field: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if text.len() > max_bytes {
        return Err(ValidationError::new(
            field,
            format!(
                "is {} bytes long; at most {max_bytes} are allowed",
                text.len()
            ),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The first key of `object` that an earlier pair already used. JSON leaves repeated keys
/// undefined and parsers disagree on which one wins, so an event carrying one is refused rather
/// than silently keeping the last value.
pub(super) fn first_duplicate_key<'m>(object: &'m WireMap<'_>) -> Option<&'m str> {
    if object.len() <= 32 {
        return object
            .iter()
            .enumerate()
            .find(|(index, (key, _))| object[..*index].iter().any(|(seen, _)| seen == key))
            .map(|(_, (key, _))| key.as_ref());
    }
    let mut seen = std::collections::HashSet::with_capacity(object.len());
    object
        .iter()
        .map(|(key, _)| key.as_ref())
        .find(|key| !seen.insert(*key))
}

pub(super) fn missing(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

/// Numbers of two or more digits, UUIDs and long hex strings are ids, not route segments.
pub(super) fn looks_like_raw_id(segment: &str) -> bool {
    let all_digits = segment.len() >= 2 && segment.bytes().all(|b| b.is_ascii_digit());
    let uuid = segment.len() == 36 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let long_hex = segment.len() >= 16 && segment.bytes().all(|b| b.is_ascii_hexdigit());
    all_digits || uuid || long_hex
}
