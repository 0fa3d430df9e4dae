//! The filters every page takes, kept in the URL so a view can be shared: a time range (a preset
//! such as `7d`, or `from`/`to`) and the slice (plan, segment, variant, service).

use serde::Deserialize;

/// Time-range presets offered in the filter bar.
pub const PRESETS: &[(&str, &str)] = &[
    ("1h", "last hour"),
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("14d", "last 14 days"),
    ("30d", "last 30 days"),
];

pub const SLICE: &[&str] = &["plan", "segment", "variant", "service"];
pub const RANGE: &[&str] = &["since", "from", "to"];

/// Whether a query parameter is one of the filter bar's own.
pub fn is_filter(name: &str) -> bool {
    RANGE.contains(&name) || SLICE.contains(&name)
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub plan: String,
    #[serde(default)]
    pub segment: String,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub service: String,
}

impl Filters {
    /// The range as given, else the last 7 days.
    pub fn since(&self) -> &str {
        if self.since.is_empty() {
            "7d"
        } else {
            &self.since
        }
    }

    pub fn custom_range(&self) -> bool {
        !self.from.is_empty()
    }

    pub fn slice_value(&self, name: &str) -> &str {
        match name {
            "plan" => &self.plan,
            "segment" => &self.segment,
            "variant" => &self.variant,
            "service" => &self.service,
            _ => "",
        }
    }

    /// `(name, value)` of every filter that is set (the range always).
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if self.custom_range() {
            pairs.push(("from", self.from.clone()));
            if !self.to.is_empty() {
                pairs.push(("to", self.to.clone()));
            }
        } else {
            pairs.push(("since", self.since().to_owned()));
        }
        for name in SLICE {
            let value = self.slice_value(name);
            if !value.is_empty() {
                pairs.push((name, value.to_owned()));
            }
        }
        pairs
    }

    /// The API query string for these filters plus `extra` (`a=1&b=2`).
    pub fn api_query(&self, extra: &[(&str, &str)]) -> String {
        query(
            self.pairs()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .chain(extra.iter().copied()),
        )
    }

    /// The same range without the slice (for answers that take no slice).
    pub fn range_query(&self, extra: &[(&str, &str)]) -> String {
        let range = Filters {
            plan: String::new(),
            segment: String::new(),
            variant: String::new(),
            service: String::new(),
            ..self.clone()
        };
        range.api_query(extra)
    }

    /// A dashboard link to `path` keeping these filters, with `extra` added.
    pub fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        format!("{path}?{}", self.api_query(extra))
    }

    /// The range in milliseconds: the `since` duration, or `to − from` of a custom range (`to`
    /// empty: now); `None` when a time does not parse (the API reports it).
    pub fn span_ms(&self) -> Option<i64> {
        use valuetrace_model::time::{parse_duration, parse_time};
        if !self.custom_range() {
            return parse_duration(self.since());
        }
        let from = parse_time(&self.from)?;
        let to = if self.to.is_empty() {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as i64)?
        } else {
            parse_time(&self.to)?
        };
        Some(to - from)
    }
}

/// `a=1&b=2`, percent-encoded.
pub fn query<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_an_encoded_query_with_the_range_first() {
        let filters = Filters {
            since: "24h".into(),
            plan: "pro".into(),
            variant: "reco=ml v2".into(),
            ..Filters::default()
        };
        assert_eq!(
            filters.api_query(&[("limit", "5")]),
            "since=24h&plan=pro&variant=reco%3Dml%20v2&limit=5"
        );
        assert_eq!(filters.range_query(&[]), "since=24h");
        assert_eq!(Filters::default().api_query(&[]), "since=7d");
        let custom = Filters {
            from: "2026-12-01T00:00:00Z".into(),
            since: "24h".into(),
            ..Filters::default()
        };
        assert_eq!(custom.api_query(&[]), "from=2026-12-01T00%3A00%3A00Z");
        let day = Filters {
            from: "2026-12-01T00:00:00Z".into(),
            to: "2026-12-02T00:00:00Z".into(),
            ..Filters::default()
        };
        assert_eq!(
            day.span_ms(),
            Some(86_400_000),
            "a custom range has its span"
        );
        assert_eq!(filters.span_ms(), Some(86_400_000));
    }
}
