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

/// A count as people read it, always whole: 1234567 → "1.23M", 12345 → "12.3k", 14.0 → "14"
/// (a sampled estimate of 13.6 calls reads "14", never "13.6" or "14.0").
pub fn count(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{:.0}", x.round() + 0.0)
    }
}

/// A user count `v[field]` marked by `v[field_kind]`: `≈1,234` for an estimate (the SDKs'
/// sketches), `≥25` for a lower bound (sampled calls no aggregate counted), bare when exact.
pub fn users(v: &Value, field: &str) -> String {
    let n = count(num(v, field).unwrap_or(0.0));
    match text(v, &format!("{field}_kind")) {
        "estimate" => format!("≈{n}"),
        "lower_bound" => format!("≥{n}"),
        _ => n,
    }
}

/// A row's `adoption` as a percentage, `≈` when its users are an estimate; `–` when unknown.
pub fn adoption(v: &Value) -> String {
    let approx = if v.get("adoption_ci95").is_some_and(Value::is_array) {
        "≈"
    } else {
        ""
    };
    or_dash(num(v, "adoption"), |a| format!("{approx}{}", pct(a)))
}

/// The 95% interval of a row's adoption (`95% interval 40.1%–50.2%`), empty when exact.
pub fn adoption_interval(v: &Value) -> String {
    match list(v, "adoption_ci95") {
        [low, high] => match (low.as_f64(), high.as_f64()) {
            (Some(low), Some(high)) => format!("95% interval {}–{}", pct(low), pct(high)),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// An axis tick of a count chart: whole like [`count`], but a fractional tick of a small range
/// keeps its decimal (ticks 0.5 apart must not print the same).
pub fn tick(x: f64) -> String {
    if x.fract() == 0.0 || x.abs() >= 100.0 {
        count(x)
    } else {
        format!("{x:.1}")
    }
}

///
/// In the page's currency: the `money.currency` (or `currency`) of the answers the page read
/// (see [`page_currency`]); a page whose answers name no currency prints bare numbers.
pub fn money(x: f64) -> String {
    let unit = PAGE_CURRENCY
        .try_with(|currency| currency.borrow().clone())
        .ok()
        .flatten();
    money_in(x, unit.as_deref())
}

/// `x` in currency `code` (`EUR` → `€1,137`; codes without a symbol: `CHF 1,137`).
pub fn money_in(x: f64, code: Option<&str>) -> String {
    let unit = match code {
        Some("EUR") => "€".to_owned(),
        Some("USD") => "$".to_owned(),
        Some("GBP") => "£".to_owned(),
        Some("JPY") => "¥".to_owned(),
        Some(code) => format!("{code} "),
        None => String::new(),
    };
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if a >= 1e6 {
        format!("{sign}{unit}{:.2}M", a / 1e6)
    } else if a >= 1e4 {
        format!("{sign}{unit}{:.1}k", a / 1e3)
    } else if a >= 1e3 {
        let whole = a.round() as i64;
        format!("{sign}{unit}{},{:03}", whole / 1000, whole % 1000)
    } else {
        format!("{sign}{unit}{a:.2}")
    }
}

tokio::task_local! {
    /// The currency of the answers the page being rendered has read so far.
    static PAGE_CURRENCY: std::cell::RefCell<Option<String>>;
}

/// Renders `page` with a page currency that [`note_currency`] sets from its answers.
pub async fn page_currency<F: std::future::Future>(page: F) -> F::Output {
    PAGE_CURRENCY.scope(Default::default(), page).await
}

/// Remembers the currency an answer names (`money.currency`, or `currency` of endpoint health).
pub fn note_currency(answer: &Value) {
    let code = answer
        .get("money")
        .and_then(|money| money.get("currency"))
        .or_else(|| answer.get("currency"))
        .and_then(Value::as_str);
    if let Some(code) = code {
        let _ = PAGE_CURRENCY.try_with(|currency| *currency.borrow_mut() = Some(code.to_owned()));
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

/// A duration in ms as people read it: "1 d 3 h", "2 h 5 min", "27 min", "40 s" (rounded to
/// the smaller unit shown, carried into the larger: never "1 d 24 h").
pub fn duration(x: f64) -> String {
    let s = (x / 1000.0).max(0.0);
    if s < 60.0 {
        return format!("{s:.0} s");
    }
    let minutes = (s / 60.0).round() as i64;
    if minutes < 60 {
        return format!("{minutes} min");
    }
    if minutes < 24 * 60 {
        let (h, m) = (minutes / 60, minutes % 60);
        return if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        };
    }
    let hours = (s / 3600.0).round() as i64;
    let (d, h) = (hours / 24, hours % 24);
    if h == 0 {
        format!("{d} d")
    } else {
        format!("{d} d {h} h")
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
        assert_eq!(count(2.25), "2");
        assert_eq!(money_in(15_300.0, Some("USD")), "$15.3k");
        assert_eq!(money_in(1_137.43, Some("EUR")), "€1,137");
        assert_eq!(money_in(-2_500.0, Some("CHF")), "-CHF 2,500");
        assert_eq!(money_in(12.5, None), "12.50");
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(0.0004), "0.04%");
        assert_eq!(ms(1234.0), "1234 ms");
        assert_eq!(duration(90_000.0), "2 min");
        assert_eq!(time(0), "1970-01-01 00:00");
    }

    #[test]
    fn issue_18_durations_read_as_days_hours_minutes_and_counts_are_whole() {
        assert_eq!(duration(98_956_000.0), "1 d 3 h", "the CLI's `98956 s`");
        assert_eq!(duration(27.0 * 60_000.0), "27 min");
        assert_eq!(duration(2.0 * 3_600_000.0 + 5.0 * 60_000.0), "2 h 5 min");
        assert_eq!(duration(3_600_000.0), "1 h");
        assert_eq!(
            duration(2.0 * 86_400_000.0 - 60_000.0),
            "2 d",
            "carried, not `1 d 24 h`"
        );
        assert_eq!(duration(40_000.0), "40 s");
        assert_eq!(count(14.0), "14");
        assert_eq!(count(13.6), "14");
        assert_eq!(count(-0.2), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(2.0), "2");
    }
}
