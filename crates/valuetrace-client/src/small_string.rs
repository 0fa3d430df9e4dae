//! [`SmallString`]: the strings of a caller's [`Identity`](crate::layer::Identity) (user,
//! account and session ids, plan, segment), kept inline up to 38 bytes, so an identity extractor
//! that copies them out of the request's headers allocates nothing on the request path (a UUID
//! is 36 bytes). Longer strings are boxed.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest string kept inline.
pub const INLINE: usize = 38;

/// An immutable string, inline up to [`INLINE`] bytes (40 bytes in all, like a `String` plus
/// two words), boxed beyond.
#[derive(Clone)]
pub struct SmallString(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl SmallString {
    pub fn new(text: &str) -> SmallString {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            SmallString(Repr::Inline {
                len: text.len() as u8,
                bytes,
            })
        } else {
            SmallString(Repr::Heap(text.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // The bytes were copied from a `str` whole, so they are UTF-8 (the check is a few
            // ns on short ASCII, and keeps this crate free of `unsafe` outside its clock).
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(text) => text,
        }
    }

    /// The UTF-8 bytes (no validation: cheaper than [`SmallString::as_str`] for hashing).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    /// Whether the string is kept inline (no heap allocation).
    pub fn is_inline(&self) -> bool {
        matches!(self.0, Repr::Inline { .. })
    }
}

impl Default for SmallString {
    fn default() -> Self {
        SmallString::new("")
    }
}

impl Deref for SmallString {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SmallString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SmallString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for SmallString {
    fn from(text: &str) -> Self {
        SmallString::new(text)
    }
}

impl From<&String> for SmallString {
    fn from(text: &String) -> Self {
        SmallString::new(text)
    }
}

impl From<String> for SmallString {
    fn from(text: String) -> Self {
        if text.len() <= INLINE {
            SmallString::new(&text)
        } else {
            SmallString(Repr::Heap(text.into_boxed_str()))
        }
    }
}

impl From<SmallString> for String {
    fn from(text: SmallString) -> Self {
        match text.0 {
            Repr::Heap(text) => text.into_string(),
            Repr::Inline { .. } => text.as_str().to_owned(),
        }
    }
}

impl PartialEq for SmallString {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallString {}

impl PartialEq<str> for SmallString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SmallString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for SmallString {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallString {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SmallString {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_stay_inline_and_long_ones_are_boxed_both_read_back_whole() {
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let exactly = "x".repeat(INLINE);
        let longer = "é".repeat(INLINE); // multi-byte, 76 bytes
        for (text, inline) in [
            ("", true),
            ("alice", true),
            (uuid, true),
            (exactly.as_str(), true),
            (longer.as_str(), false),
        ] {
            for small in [SmallString::from(text), SmallString::from(text.to_owned())] {
                assert_eq!(small.as_str(), text);
                assert_eq!(small.is_inline(), inline, "{text}");
                assert_eq!(String::from(small.clone()), text);
                assert_eq!(small, SmallString::new(text));
            }
        }
        assert_eq!(std::mem::size_of::<SmallString>(), 40);
        assert_eq!(std::mem::size_of::<Option<SmallString>>(), 40);
        let (a, b) = (SmallString::from("a"), SmallString::from("b"));
        assert!(a < b);
        assert_eq!(format!("{:?}", SmallString::from("pro")), "\"pro\"");
    }
}
