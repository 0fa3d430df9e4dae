//! String interning for rollup keys: each distinct route, plan, ... is stored once per project.

use std::collections::HashMap;

/// Id 0 is reserved for "absent" (no plan, inbound call, ...).
pub const NONE: u32 = 0;

#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<String, u32>,
    strings: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        self.strings.push(text.to_owned());
        let id = self.strings.len() as u32; // ids start at 1
        self.ids.insert(text.to_owned(), id);
        id
    }

    pub fn intern_optional(&mut self, text: Option<&str>) -> u32 {
        text.map_or(NONE, |text| self.intern(text))
    }

    pub fn get(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The string of an id; empty for [`NONE`].
    pub fn resolve(&self, id: u32) -> &str {
        if id == NONE {
            ""
        } else {
            self.strings.get(id as usize - 1).map_or("", String::as_str)
        }
    }

    /// Number of interned strings; ids run from 1 to `len()`.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// All `(id, string)` pairs, for filters that match by predicate.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.strings
            .iter()
            .enumerate()
            .map(|(index, text)| (index as u32 + 1, text.as_str()))
    }
}
