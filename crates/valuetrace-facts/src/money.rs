//! Money in one currency: every figure an answer sums is in the project's reporting currency.
//!
//! Events carry `value` and `currency`. A fact segment keeps each valued row's currency
//! ([`SegCurrencies`]); a query resolves its [`Conversion`] (the configured
//! `reporting_currency`, else the most frequent currency among the valued rows it loads, plus
//! `currency_rates`), and the fact cache hands the kernels segments whose `value` column is in
//! that currency. A segment whose rows are all in the reporting currency (the usual case) is used
//! as it is; a mixed one gets a converted copy, cached beside it. A value in a currency with no
//! rate becomes "no value" (NaN) in the converted copy — never summed with the rest — and is
//! reported apart per currency in the answer's [`MoneyNote`].

use crate::config::AnalysisConfig;
use crate::facts::{CallSeg, OutcomeSeg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Whether `code` looks like an ISO 4217 code (`EUR`).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Configuration problems of `reporting_currency` and `currency_rates`.
pub fn config_problems(config: &AnalysisConfig, at: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(code) = &config.reporting_currency
        && !is_currency_code(code)
    {
        problems.push(format!(
            "{at}.reporting_currency: `{code}` must be an ISO 4217 code such as EUR"
        ));
    }
    for (code, rate) in &config.currency_rates {
        if !is_currency_code(code) {
            problems.push(format!(
                "{at}.currency_rates: `{code}` must be an ISO 4217 code such as USD"
            ));
        }
        if !(rate.is_finite() && *rate > 0.0) {
            problems.push(format!(
                "{at}.currency_rates.{code}: `{rate}` must be a positive number (one {code} in the reporting currency)"
            ));
        }
    }
    problems
}

/// The currency of each row of a segment: index + 1 into `codes` (0: no currency), and how many
/// valued rows each code has.
#[derive(Debug, Default, Clone)]
pub struct SegCurrencies {
    pub codes: Vec<Box<str>>,
    pub valued: Vec<u64>,
    pub rows: Vec<u8>,
}

impl SegCurrencies {
    /// Adds a row; `code` only counts when the row has a value.
    pub fn push(&mut self, code: Option<&str>, has_value: bool) {
        let index = match code {
            Some(code) if has_value => match self.codes.iter().position(|c| &**c == code) {
                Some(i) => i + 1,
                // More than 255 currencies in one source cannot be told apart: the rest share
                // the last slot's code, which a query then converts with that code's rate.
                None if self.codes.len() >= usize::from(u8::MAX) => usize::from(u8::MAX),
                None => {
                    self.codes.push(code.into());
                    self.valued.push(0);
                    self.codes.len()
                }
            },
            _ => 0,
        };
        if index > 0 {
            self.valued[index - 1] += 1;
        }
        self.rows.push(index as u8);
    }

    pub fn code(&self, row: usize) -> Option<&str> {
        match self.rows[row] {
            0 => None,
            index => Some(&self.codes[usize::from(index) - 1]),
        }
    }

    pub fn bytes(&self) -> usize {
        self.rows.len() + self.codes.len() * 24
    }

    /// Reorders the rows as `order` says (see [`CallSeg::sort_by_session`]).
    pub fn permute(&mut self, order: &[u32]) {
        self.rows = order.iter().map(|&i| self.rows[i as usize]).collect();
    }
}

/// How one query's values become its reporting currency.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversion {
    /// The reporting currency; `None` when no loaded row carries a currency and none is set.
    pub currency: Option<String>,
    rates: BTreeMap<String, f64>,
}

impl Conversion {
    /// The configured reporting currency, else the code with the most valued rows among
    /// `counts` (ties: the alphabetically first, so the choice never depends on load order).
    pub fn resolve<'a>(
        config: &AnalysisConfig,
        counts: impl Iterator<Item = (&'a str, u64)>,
    ) -> Conversion {
        let currency = config
            .reporting_currency
            .clone()
            .or_else(|| valuetrace_query::currency::most_frequent(counts));
        Conversion {
            currency,
            rates: config.currency_rates.clone(),
        }
    }

    /// The factor turning one unit of `code` into the reporting currency; `None`: no rate.
    /// Values without a currency are taken to be in the reporting currency.
    pub fn factor(&self, code: Option<&str>) -> Option<f64> {
        match code {
            None => Some(1.0),
            Some(code) if Some(code) == self.currency.as_deref() => Some(1.0),
            Some(code) => self.rates.get(code).copied(),
        }
    }

    /// Whether a segment with these currencies needs a converted copy.
    pub fn converts(&self, currencies: &SegCurrencies) -> bool {
        currencies
            .codes
            .iter()
            .any(|code| Some(&**code) != self.currency.as_deref())
    }

    /// A key for converted copies: equal conversions give equal keys; never 0 (the raw key).
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.currency.hash(&mut hasher);
        for (code, rate) in &self.rates {
            code.hash(&mut hasher);
            rate.to_bits().hash(&mut hasher);
        }
        hasher.finish().max(1)
    }

    /// `values` in the reporting currency (NaN where the row's currency has no rate).
    pub fn convert(&self, values: &[f64], currencies: &SegCurrencies) -> Vec<f64> {
        let factors: Vec<f64> = std::iter::once(Some(1.0))
            .chain(currencies.codes.iter().map(|code| self.factor(Some(code))))
            .map(|factor| factor.unwrap_or(f64::NAN))
            .collect();
        values
            .iter()
            .zip(&currencies.rows)
            .map(|(value, index)| value * factors[usize::from(*index)])
            .collect()
    }
}

/// The currency of an answer's money and the values it could not convert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MoneyNote {
    /// The code every money figure of the answer is in (`null`: no value carried a currency).
    pub currency: Option<String>,
    /// Values in currencies without a rate in `currency_rates`, per currency: left out of every
    /// sum of the answer.
    pub unconverted: Vec<UnconvertedValue>,
}

/// An answer with the money note of its window, as the JSON API serves it: the answer's own
/// fields and `money`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WithMoney<T> {
    #[serde(flatten)]
    pub answer: T,
    pub money: MoneyNote,
}

/// Valued events of one currency that no rate converts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnconvertedValue {
    pub currency: String,
    /// Stored events with a value in this currency in the window.
    pub events: u64,
    /// Their value in this currency (re-weighted by sample rate, as every sum).
    pub value: f64,
}

/// The raw (unconverted) segments of a query that hold values in other currencies.
#[derive(Debug, Clone, Default)]
pub struct Mixed {
    pub calls: Vec<Arc<CallSeg>>,
    pub outcomes: Vec<Arc<OutcomeSeg>>,
}

impl Mixed {
    /// What `conversion` could not convert among the rows of `[from, to)`.
    pub fn note(&self, conversion: &Conversion, from: i64, to: i64) -> MoneyNote {
        let mut apart: BTreeMap<String, (u64, f64)> = BTreeMap::new();
        let mut add = |ts: &[i64], value: &[f64], weight: &[f32], currencies: &SegCurrencies| {
            for row in 0..ts.len() {
                if ts[row] < from || ts[row] >= to || value[row].is_nan() {
                    continue;
                }
                if let Some(code) = currencies.code(row)
                    && conversion.factor(Some(code)).is_none()
                {
                    let entry = apart.entry(code.to_owned()).or_default();
                    entry.0 += 1;
                    entry.1 += value[row] * f64::from(weight[row]);
                }
            }
        };
        for seg in &self.calls {
            add(&seg.ts, &seg.value, &seg.weight, &seg.currency);
        }
        for seg in &self.outcomes {
            add(&seg.ts, &seg.value, &seg.weight, &seg.currency);
        }
        MoneyNote {
            currency: conversion.currency.clone(),
            unconverted: apart
                .into_iter()
                .map(|(currency, (events, value))| UnconvertedValue {
                    currency,
                    events,
                    value,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currencies(rows: &[Option<&str>]) -> SegCurrencies {
        let mut c = SegCurrencies::default();
        for code in rows {
            c.push(*code, true);
        }
        c
    }

    #[test]
    fn the_most_frequent_currency_is_the_default_and_ties_do_not_depend_on_order() {
        let config = AnalysisConfig::default();
        let pick =
            |counts: &[(&str, u64)]| Conversion::resolve(&config, counts.iter().copied()).currency;
        assert_eq!(
            pick(&[("USD", 3), ("EUR", 5), ("USD", 3)]).as_deref(),
            Some("USD")
        );
        assert_eq!(pick(&[("USD", 2), ("EUR", 2)]).as_deref(), Some("EUR"));
        assert_eq!(pick(&[("EUR", 2), ("USD", 2)]).as_deref(), Some("EUR"));
        assert_eq!(pick(&[]), None);
        let set = AnalysisConfig {
            reporting_currency: Some("GBP".into()),
            ..AnalysisConfig::default()
        };
        assert_eq!(
            Conversion::resolve(&set, [("EUR", 9)].into_iter())
                .currency
                .as_deref(),
            Some("GBP")
        );
    }

    #[test]
    fn values_are_converted_by_rate_and_unknown_currencies_left_out() {
        let config = AnalysisConfig {
            reporting_currency: Some("EUR".into()),
            currency_rates: [("USD".to_owned(), 0.5)].into(),
            ..AnalysisConfig::default()
        };
        let conversion = Conversion::resolve(&config, std::iter::empty());
        let c = currencies(&[Some("EUR"), Some("USD"), None, Some("JPY")]);
        assert!(conversion.converts(&c));
        let out = conversion.convert(&[10.0, 10.0, 7.0, 1000.0], &c);
        assert_eq!(&out[..3], &[10.0, 5.0, 7.0]);
        assert!(out[3].is_nan(), "JPY has no rate: never summed");
        assert!(!conversion.converts(&currencies(&[Some("EUR"), None])));
    }

    #[test]
    fn bad_codes_and_rates_are_reported_where_they_are() {
        let config = AnalysisConfig {
            reporting_currency: Some("euro".into()),
            currency_rates: [("USD".to_owned(), -1.0), ("usd".to_owned(), 1.0)].into(),
            ..AnalysisConfig::default()
        };
        let problems = config_problems(&config, "projects[0].analysis");
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("projects[0].analysis.reporting_currency"));
    }
}
