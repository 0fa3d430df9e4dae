//! Multi-window, multi-burn-rate SLO alerts (Google SRE workbook, "Alerting on SLOs", §6).
//!
//! The burn rate is how fast the error budget goes: the bad share of calls over a window divided
//! by the budget (1 − objective). A pair fires when both its long window (is the burn real and
//! lasting?) and its short window (is it still happening, so the alert resets quickly?) burn at
//! least `factor`. The workbook's pairs for a 30-day SLO:
//!
//! | long | short | factor | budget spent when it fires | severity |
//! |------|-------|--------|----------------------------|----------|
//! | 1h   | 5m    | 14.4   | 2%                         | page     |
//! | 6h   | 30m   | 6      | 5%                         | page     |
//! | 1d   | 2h    | 3      | 10%                        | ticket   |
//! | 3d   | 6h    | 1      | 10%                        | ticket   |

use crate::rules::Severity;
use serde::{Deserialize, Serialize};
use valuetrace_model::time::{DAY_MS, parse_duration};

/// The SLO period the workbook's factors assume.
pub const SLO_PERIOD_MS: i64 = 30 * DAY_MS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    pub long: String,
    pub short: String,
    pub factor: f64,
    #[serde(default)]
    pub severity: Severity,
}

impl BurnWindow {
    pub fn new(long: &str, short: &str, factor: f64, severity: Severity) -> Self {
        BurnWindow {
            long: long.into(),
            short: short.into(),
            factor,
            severity,
        }
    }

    pub fn long_ms(&self) -> i64 {
        parse_duration(&self.long).unwrap_or(0)
    }

    pub fn short_ms(&self) -> i64 {
        parse_duration(&self.short).unwrap_or(0)
    }

    /// `1h/5m`: the label that tells the pairs of one rule apart.
    pub fn label(&self) -> String {
        format!("{}/{}", self.long, self.short)
    }

    pub fn check(&self) -> Result<(), String> {
        let (long, short) = (self.long_ms(), self.short_ms());
        if long <= 0 || short <= 0 {
            return Err(format!(
                "`{}` and `{}` must be durations such as 1h and 5m",
                self.long, self.short
            ));
        }
        if short >= long {
            return Err("the short window must be shorter than the long one".into());
        }
        if !(self.factor.is_finite() && self.factor > 0.0) {
            return Err("factor must be a positive number".into());
        }
        Ok(())
    }

    /// The bad share of calls at which this pair fires for `objective_percent`.
    pub fn error_ratio_threshold(&self, objective_percent: f64) -> f64 {
        self.factor * budget(objective_percent)
    }

    /// The share of a 30-day budget spent when the long window alone reaches the factor.
    pub fn budget_consumed(&self) -> f64 {
        self.factor * self.long_ms() as f64 / SLO_PERIOD_MS as f64
    }

    /// How long a constant bad share `error_ratio` takes to trip the long window (from a clean
    /// history), in ms; `None` if it never does.
    pub fn detection_ms(&self, objective_percent: f64, error_ratio: f64) -> Option<f64> {
        let needed = self.error_ratio_threshold(objective_percent);
        (error_ratio >= needed).then(|| self.long_ms() as f64 * needed / error_ratio)
    }
}

/// The error budget: the share of calls that may be bad.
pub fn budget(objective_percent: f64) -> f64 {
    1.0 - objective_percent / 100.0
}

/// The burn rate of `bad` out of `total` calls (`None` without calls).
pub fn burn_rate(bad: u64, total: u64, objective_percent: f64) -> Option<f64> {
    (total > 0).then(|| bad as f64 / total as f64 / budget(objective_percent))
}

/// The workbook's recommended pairs (table above).
pub fn workbook_windows() -> Vec<BurnWindow> {
    vec![
        BurnWindow::new("1h", "5m", 14.4, Severity::Critical),
        BurnWindow::new("6h", "30m", 6.0, Severity::Critical),
        BurnWindow::new("1d", "2h", 3.0, Severity::Warning),
        BurnWindow::new("3d", "6h", 1.0, Severity::Warning),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// The workbook's worked numbers for a 99.9% SLO over 30 days.
    #[test]
    fn workbook_numbers() {
        let [fast, slow, day, three_days] = &workbook_windows()[..] else {
            panic!("four pairs")
        };
        // 14.4 × 0.1% = 1.44% errors over 1 h spends 2% of the monthly budget.
        assert!(close(fast.error_ratio_threshold(99.9), 0.0144));
        assert!(close(fast.budget_consumed(), 0.02));
        assert!(close(slow.error_ratio_threshold(99.9), 0.006));
        assert!(close(slow.budget_consumed(), 0.05));
        assert!(close(day.budget_consumed(), 0.10));
        assert!(close(three_days.budget_consumed(), 0.10));
        // A full outage trips the 1 h / 14.4 pair after 0.864 min (≈ 52 s), the 6 h pair after
        // 2.16 min; a 1.44% error rate takes the whole hour.
        let outage = fast.detection_ms(99.9, 1.0).expect("fires");
        assert!(close(outage, 0.864 * 60_000.0), "{outage}");
        assert!(close(
            slow.detection_ms(99.9, 1.0).expect("fires"),
            2.16 * 60_000.0
        ));
        assert!(close(
            fast.detection_ms(99.9, 0.0144).expect("fires"),
            3_600_000.0
        ));
        assert_eq!(fast.detection_ms(99.9, 0.01), None);
    }

    #[test]
    fn burn_rate_is_bad_share_over_budget() {
        assert!(close(burn_rate(144, 10_000, 99.9).expect("calls"), 14.4));
        assert!(close(burn_rate(1, 1000, 99.0).expect("calls"), 0.1));
        assert_eq!(burn_rate(0, 0, 99.9), None);
    }

    #[test]
    fn bad_pairs_are_refused() {
        assert!(
            BurnWindow::new("5m", "1h", 2.0, Severity::Warning)
                .check()
                .is_err()
        );
        assert!(
            BurnWindow::new("1h", "5m", 0.0, Severity::Warning)
                .check()
                .is_err()
        );
        assert!(
            BurnWindow::new("1x", "5m", 1.0, Severity::Warning)
                .check()
                .is_err()
        );
    }
}
