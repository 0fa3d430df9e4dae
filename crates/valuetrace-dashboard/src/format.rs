//! Numbers as a product manager reads them, and safe access to answer fields.

use serde_json::Value;

/// `v[field]` as a number (`None` when missing or null).
pub fn num(v: &Value, field: &str) -> Option<f64> {
    v.get(field).and_then(Value::as_f64)
}

pub fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

pub fn list<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// 1234567 → "1.23M", 12345 → "12.3k", 12.5 → "12.5".
pub fn count(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

pub fn money(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("${:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("${:.1}k", x / 1e3)
    } else if a >= 1e3 {
        let whole = x.round() as i64;
        format!("${},{:03}", whole / 1000, (whole % 1000).abs())
    } else {
        format!("${x:.2}")
    }
}

/// A share in [0, 1] as a percentage.
pub fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

pub fn ms(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1} s", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0} ms")
    } else {
        format!("{x:.1} ms")
    }
}

/// A duration in ms as "3 d 4 h", "12 min", "40 s".
pub fn duration(x: f64) -> String {
    let s = x / 1000.0;
    if s >= 86_400.0 {
        format!(
            "{:.0} d {:.0} h",
            (s / 86_400.0).floor(),
            (s % 86_400.0) / 3600.0
        )
    } else if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

/// An optional number through `f`, or an en dash.
pub fn or_dash(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "–".to_owned(), f)
}

/// Epoch ms as `2026-12-06 17:40` (UTC).
pub fn time(ms: i64) -> String {
    let text = valuetrace_model::time::format_rfc3339(ms);
    text.get(..16).unwrap_or(&text).replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_report() {
        assert_eq!(count(1_234_567.0), "1.23M");
        assert_eq!(count(12_345.0), "12.3k");
        assert_eq!(count(42.0), "42");
        assert_eq!(count(2.25), "2.2");
        assert_eq!(money(15_300.0), "$15.3k");
        assert_eq!(money(1_137.43), "$1,137");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(0.0004), "0.04%");
        assert_eq!(ms(1234.0), "1234 ms");
        assert_eq!(duration(90_000.0), "2 min");
        assert_eq!(time(0), "1970-01-01 00:00");
    }
}
