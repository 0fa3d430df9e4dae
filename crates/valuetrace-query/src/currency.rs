//! Money in rollups: a cell's `value_sum` is tagged with the one currency its values were in, or
//! marked mixed ([`valuetrace_store::rollup::MIXED_CURRENCIES`]). Answers report it in one
//! reporting currency: the project's `reporting_currency`, else the currency with the most
//! valued calls in the window; other currencies by their rate; a sum in a currency without a
//! rate, or over mixed currencies, is `null` — never added to money in another currency.

use crate::summary::Accum;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use valuetrace_store::rollup::{Counts, MIXED_CURRENCIES, currency_code};

/// The reporting currency and the rates to it (`[projects.analysis]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CurrencyRule {
    pub reporting: Option<String>,
    /// One unit of each currency in the reporting currency.
    pub rates: BTreeMap<String, f64>,
}

impl CurrencyRule {
    /// The reporting currency of an answer over `accums`: configured, else the currency with
    /// the most valued calls (ties: alphabetically first).
    pub fn resolve<'a>(&self, accums: impl Iterator<Item = &'a Accum>) -> Option<String> {
        if self.reporting.is_some() {
            return self.reporting.clone();
        }
        let codes: Vec<(String, u64)> = accums
            .filter_map(|accum| {
                currency_code(accum.counts.value_currency)
                    .map(|code| (code, accum.counts.value_calls))
            })
            .collect();
        most_frequent(codes.iter().map(|(code, n)| (code.as_str(), *n)))
    }

    /// `counts.value_sum` in `reporting`; `None` when it cannot be converted.
    pub fn value_in(&self, reporting: Option<&str>, counts: &Counts) -> Option<f64> {
        if counts.value_calls == 0 {
            return Some(0.0);
        }
        if counts.value_currency == MIXED_CURRENCIES {
            return None;
        }
        match currency_code(counts.value_currency) {
            None => Some(counts.value_sum),
            Some(code) if Some(code.as_str()) == reporting => Some(counts.value_sum),
            Some(code) => self.rates.get(&code).map(|rate| rate * counts.value_sum),
        }
    }
}

/// The code with the most valued events among `(code, events)` pairs (a code may repeat); ties go
/// to the alphabetically first, so the choice never depends on the order sources were read in.
pub fn most_frequent<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> Option<String> {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for (code, events) in counts {
        *totals.entry(code).or_default() += events;
    }
    totals
        .into_iter()
        .fold(
            None,
            |best: Option<(&str, u64)>, (code, events)| match best {
                Some((_, most)) if most >= events => best,
                _ => Some((code, events)),
            },
        )
        .map(|(code, _)| code.to_owned())
}

/// The currency of a sum as answers show it: its code, `mixed`, or `None`.
pub fn label(counts: &Counts) -> Option<String> {
    if counts.value_calls > 0 && counts.value_currency == MIXED_CURRENCIES {
        Some("mixed".into())
    } else {
        currency_code(counts.value_currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valuetrace_store::rollup::{CallFacts, Cell, currency_tag};

    fn cell(values: &[(f64, Option<&str>)]) -> Cell {
        let mut cell = Cell::default();
        for (value, currency) in values {
            cell.add(&CallFacts {
                timestamp: 0,
                status: 200,
                latency_ms: 1.0,
                has_error_type: false,
                value: Some(*value),
                currency: currency_tag(*currency),
                user_hash: None,
            });
        }
        cell
    }

    #[test]
    fn sums_are_converted_or_left_out_never_added_across_currencies() {
        let rule = CurrencyRule {
            reporting: Some("EUR".into()),
            rates: [("USD".to_owned(), 0.5)].into(),
        };
        let eur = cell(&[(10.0, Some("EUR")), (5.0, None)]);
        assert_eq!(rule.value_in(Some("EUR"), &eur.counts), Some(15.0));
        let usd = cell(&[(10.0, Some("USD"))]);
        assert_eq!(rule.value_in(Some("EUR"), &usd.counts), Some(5.0));
        let jpy = cell(&[(10.0, Some("JPY"))]);
        assert_eq!(rule.value_in(Some("EUR"), &jpy.counts), None);
        let mut mixed = eur.clone();
        mixed.merge(&usd);
        assert_eq!(label(&mixed.counts).as_deref(), Some("mixed"));
        assert_eq!(rule.value_in(Some("EUR"), &mixed.counts), None);
        // A cell without values takes the other's currency when merged.
        let mut empty = Cell::default();
        empty.merge(&usd);
        assert_eq!(label(&empty.counts).as_deref(), Some("USD"));
    }
}
