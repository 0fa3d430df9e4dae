//! A borrowed JSON value for validation: strings point into the request body where they can, and
//! objects are short vectors of pairs, so validating an event allocates only what the event
//! keeps. (Parsing into `serde_json::Value` allocated every key and built a B-tree per object.)

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// An object: pairs in document order, repeated keys included (validation refuses them; [`get`]
/// would see the last one).
pub type WireMap<'a> = Vec<(Cow<'a, str>, WireValue<'a>)>;

#[derive(Debug, Clone, PartialEq)]
pub enum WireValue<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    /// Only `api_aggregate`'s `latency_buckets` is an array; elsewhere arrays are refused.
    Array(Vec<WireValue<'a>>),
    Object(WireMap<'a>),
}

impl WireValue<'_> {
    /// "a string", "an object", ... for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WireValue::Null => "null",
            WireValue::Bool(_) => "a boolean",
            WireValue::U64(_) | WireValue::I64(_) | WireValue::F64(_) => "a number",
            WireValue::Str(_) => "a string",
            WireValue::Array(_) => "an array",
            WireValue::Object(_) => "an object",
        }
    }

    /// A number as serde_json prints it (`1500000000000.0` for a float).
    pub fn number_text(&self) -> String {
        match self {
            WireValue::U64(number) => number.to_string(),
            WireValue::I64(number) => number.to_string(),
            WireValue::F64(number) => serde_json::Number::from_f64(*number)
                .map_or_else(|| number.to_string(), |n| n.to_string()),
            other => other.kind().to_owned(),
        }
    }
}

/// The last value of `key` in an object.
pub fn get<'m, 'a>(object: &'m WireMap<'a>, key: &str) -> Option<&'m WireValue<'a>> {
    object
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

pub fn get_mut<'m, 'a>(object: &'m mut WireMap<'a>, key: &str) -> Option<&'m mut WireValue<'a>> {
    object
        .iter_mut()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

impl<'de> Deserialize<'de> for WireValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireVisitor)
    }
}

struct WireVisitor;

impl<'de> Visitor<'de> for WireVisitor {
    type Value = WireValue<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(WireValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        WireValue::deserialize(deserializer)
    }
    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(WireValue::Bool(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(WireValue::U64(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(if value >= 0 {
            WireValue::U64(value as u64)
        } else {
            WireValue::I64(value)
        })
    }
    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(WireValue::F64(value))
    }
    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(WireValue::Str(Cow::Borrowed(value)))
    }
    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(WireValue::Str(Cow::Owned(value.to_owned())))
    }
    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(WireValue::Str(Cow::Owned(value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(item) = seq.next_element::<WireValue<'de>>()? {
            items.push(item);
        }
        Ok(WireValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<WireValue<'de>>()?;
            pairs.push((key, value));
        }
        Ok(WireValue::Object(pairs))
    }
}

/// An object key, borrowed from the input when it has no escapes (`Cow<str>`'s own
/// `Deserialize` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = r#"{"route": "/api/x", "n": -3, "f": 1.5, "esc": "a\"b", "list": [1, {"a": 2}], "none": null}"#;
        let WireValue::Object(pairs) = serde_json::from_str::<WireValue<'_>>(text).expect("valid")
        else {
            panic!("object")
        };
        assert!(matches!(
            get(&pairs, "route"),
            Some(WireValue::Str(Cow::Borrowed("/api/x")))
        ));
        assert!(matches!(&pairs[0].0, Cow::Borrowed("route")));
        assert_eq!(get(&pairs, "n"), Some(&WireValue::I64(-3)));
        assert_eq!(
            get(&pairs, "f").map(WireValue::number_text),
            Some("1.5".to_owned())
        );
        assert!(
            matches!(get(&pairs, "esc"), Some(WireValue::Str(Cow::Owned(text))) if text == "a\"b")
        );
        assert!(matches!(get(&pairs, "list"), Some(WireValue::Array(_))));
        assert_eq!(get(&pairs, "none"), Some(&WireValue::Null));
    }
}
