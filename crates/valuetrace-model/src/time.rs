//! Timestamps as epoch milliseconds (UTC), parsed from and formatted to RFC 3339.
//!
//! Hand-written (civil-from-days, Howard Hinnant's algorithm) to keep this crate dependency-free.

/// Milliseconds in one minute, hour and day.
pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 timestamp (`2026-11-21T10:15:30.123Z`, `...+01:00`) into epoch ms.
///
/// Fractions beyond milliseconds are truncated. A space instead of `T` is accepted, as RFC 3339
/// allows.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let slice = bytes.get(range)?;
        if slice.is_empty() || !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            slice
                .iter()
                .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
        )
    };
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month as u32) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut index = 19;
    let mut millis = 0i64;
    if bytes[index] == b'.' {
        index += 1;
        let start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            if index - start < 3 {
                millis = millis * 10 + i64::from(bytes[index] - b'0');
            }
            index += 1;
        }
        let digits = index - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match bytes.get(index)? {
        b'Z' | b'z' if index + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if index + 6 == bytes.len() && bytes[index + 3] == b':' => {
            let hours = number(index + 1..index + 3)?;
            let minutes = number(index + 4..index + 6)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Formats epoch ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / HOUR_MS, (in_day % HOUR_MS) / MINUTE_MS);
    let (second, millis) = ((in_day % MINUTE_MS) / 1000, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// `YYYY-MM-DD` of the UTC day containing `ms`.
pub fn format_day(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Parses a time given as RFC 3339 or as epoch milliseconds (digits only).
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    parse_rfc3339(text)
}

/// Parses a duration such as `90s`, `15m`, `24h`, `7d`, `500ms` or `1h30m` into milliseconds
/// (`humantime`'s grammar: numbers each with a unit, `ms` `s` `m` `h` `d` `w` and their long
/// names, optionally separated by spaces, `1.5h` too; a number without a unit, and months and
/// years, are refused).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    // humantime takes a leading `+`; a sign has no place in a duration here.
    if text.starts_with(['+', '-']) {
        return None;
    }
    // Months and years have no fixed length, and `1M` (a month) is too close to `1m`.
    const UNITS: [&str; 24] = [
        "ms", "msec", "millis", "s", "sec", "secs", "second", "seconds", "m", "min", "mins",
        "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w", "week",
        "weeks",
    ];
    if text
        .split(|c: char| !c.is_ascii_alphabetic())
        .any(|unit| !unit.is_empty() && !UNITS.contains(&unit))
    {
        return None;
    }
    let duration = humantime::parse_duration(text).ok()?;
    i64::try_from(duration.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_combinations() {
        for (text, ms) in [
            ("500ms", 500),
            ("90s", 90_000),
            ("15m", 15 * MINUTE_MS),
            ("24h", DAY_MS),
            ("7d", 7 * DAY_MS),
            ("2w", 14 * DAY_MS),
            ("1h30m", 90 * MINUTE_MS),
            ("1h 30m", 90 * MINUTE_MS),
            ("0s", 0),
            ("1.5h", 90 * MINUTE_MS),
        ] {
            assert_eq!(parse_duration(text), Some(ms), "{text}");
        }
        for bad in ["", "10", "-1h", "+1h", "1x", "h", "1M", "2y", "1month"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-21T10:15:30.123Z"),
            Some(1_795_256_130_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T11:15:30.123+01:00"),
            Some(1_795_256_130_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21 10:15:30.123456Z"),
            Some(1_795_256_130_123)
        );
        assert_eq!(
            format_rfc3339(1_795_256_130_123),
            "2026-11-21T10:15:30.123Z"
        );
        for ms in [0, 951_782_400_000, 1_795_256_130_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-21T10:15:30",
            "2026-11-21T25:00:00Z",
            "yesterday",
            "2026-11-21T10:15:30.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Some(DAY_MS));
        assert_eq!(parse_duration("15m"), Some(15 * MINUTE_MS));
        assert_eq!(parse_duration("7d"), Some(7 * DAY_MS));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("3y"), None);
    }
}
