//! The life of one alert series: inactive → pending → firing → resolved, and silences.
//!
//! ```text
//!            condition                 held for `for`              condition gone
//! inactive ───────────► pending ─────────────────────► firing ─────────────────► resolved
//!    ▲  condition gone     │                              │ every renotify_interval   │
//!    └─────────────────────┘                              └──► firing (again)         │
//!    ▲                                    condition again: pending (a new incident)   │
//!    └────────────────────────────────────────────────────────────────────────────────┘
//! ```
//! An incident is identified by the series' fingerprint and the time it became pending, so the
//! trigger and the resolve of one incident share a PagerDuty `dedup_key`.

use crate::evaluate::{Observation, SeriesLabels};
use crate::rules::Severity;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// What a step of the state machine asks to notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Fired,
    /// Still firing after `renotify_interval`.
    Reminder,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub rule: String,
    pub labels: SeriesLabels,
    pub phase: Phase,
    /// When the condition started to hold (the incident's start).
    pub active_since: Option<i64>,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub evaluated_at: i64,
    pub value: Option<f64>,
    /// The currency of `value` when it is money.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub threshold: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub last_notified: Option<i64>,
    /// Notifications sent for the current incident (reminders count up).
    pub notifications: u32,
    #[serde(default)]
    pub silenced: bool,
}

/// A stable short hash of a rule and its series labels.
pub fn fingerprint(rule: &str, labels: &SeriesLabels) -> String {
    let mut hash = Sha256::new();
    hash.update(rule.as_bytes());
    for (name, value) in labels {
        hash.update([0]);
        hash.update(name.as_bytes());
        hash.update([1]);
        hash.update(value.as_bytes());
    }
    hex::encode(&hash.finalize()[..8])
}

impl AlertState {
    pub fn new(rule: &str, observation: &Observation, now: i64) -> Self {
        AlertState {
            rule: rule.to_owned(),
            labels: observation.labels.clone(),
            phase: Phase::Inactive,
            active_since: None,
            fired_at: None,
            resolved_at: None,
            evaluated_at: now,
            value: observation.value,
            currency: observation.currency.clone(),
            threshold: observation.threshold.clone(),
            severity: observation.severity,
            skipped: None,
            last_notified: None,
            notifications: 0,
            silenced: false,
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.rule, &self.labels)
    }

    /// The incident key: the same for the trigger, reminders and the resolve of one incident.
    pub fn incident(&self) -> String {
        format!("{}-{}", self.fingerprint(), self.active_since.unwrap_or(0))
    }

    /// One evaluation: `active` is whether the condition holds (false when not observed).
    pub fn step(
        &mut self,
        observation: Option<&Observation>,
        now: i64,
        for_ms: i64,
        renotify_ms: i64,
    ) -> Option<Change> {
        let active = observation.is_some_and(|o| o.active);
        if let Some(observation) = observation {
            self.value = observation.value;
            self.currency = observation.currency.clone();
            self.threshold = observation.threshold.clone();
            self.severity = observation.severity;
            self.skipped = observation.skipped.clone();
        }
        self.evaluated_at = now;
        match (self.phase, active) {
            (Phase::Inactive | Phase::Resolved, true) => {
                self.phase = Phase::Pending;
                self.active_since = Some(now);
                self.fired_at = None;
                self.resolved_at = None;
                self.notifications = 0;
                self.last_notified = None;
                self.fire_if_due(now, for_ms)
            }
            (Phase::Pending, true) => self.fire_if_due(now, for_ms),
            (Phase::Pending, false) => {
                self.phase = Phase::Inactive;
                self.active_since = None;
                None
            }
            (Phase::Firing, true) => {
                let due = self.last_notified.is_none_or(|at| now - at >= renotify_ms);
                (renotify_ms > 0 && due).then_some(Change::Reminder)
            }
            (Phase::Firing, false) => {
                self.phase = Phase::Resolved;
                self.resolved_at = Some(now);
                Some(Change::Resolved)
            }
            (Phase::Inactive | Phase::Resolved, false) => None,
        }
    }

    fn fire_if_due(&mut self, now: i64, for_ms: i64) -> Option<Change> {
        let since = self.active_since.unwrap_or(now);
        if now - since < for_ms {
            return None;
        }
        self.phase = Phase::Firing;
        self.fired_at = Some(now);
        Some(Change::Fired)
    }
}

/// Notifications of matching alerts are held back (states still change) until `ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    #[serde(default)]
    pub id: String,
    /// The rule silenced; any rule when absent.
    #[serde(default)]
    pub rule: Option<String>,
    /// Labels the series must carry (equality).
    #[serde(default)]
    pub matchers: SeriesLabels,
    #[serde(default)]
    pub starts_at: i64,
    pub ends_at: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

impl Silence {
    pub fn matches(&self, rule: &str, labels: &SeriesLabels, now: i64) -> bool {
        now >= self.starts_at
            && now < self.ends_at
            && self.rule.as_deref().is_none_or(|r| r == rule)
            && self
                .matchers
                .iter()
                .all(|(name, value)| labels.get(name) == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(active: bool) -> Observation {
        Observation {
            labels: SeriesLabels::new(),
            active,
            value: Some(1.0),
            currency: None,
            threshold: "< 2".into(),
            severity: Severity::Critical,
            skipped: None,
        }
    }

    #[test]
    fn fires_only_after_for_and_resolves() {
        let mut state = AlertState::new("r", &seen(false), 0);
        let minute = 60_000;
        assert_eq!(state.step(Some(&seen(true)), 0, 15 * minute, 0), None);
        assert_eq!(state.phase, Phase::Pending);
        assert_eq!(
            state.step(Some(&seen(true)), 14 * minute, 15 * minute, 0),
            None
        );
        assert_eq!(
            state.step(Some(&seen(true)), 15 * minute, 15 * minute, 0),
            Some(Change::Fired)
        );
        assert_eq!(state.phase, Phase::Firing);
        assert_eq!(
            state.step(None, 16 * minute, 15 * minute, 0),
            Some(Change::Resolved)
        );
        assert_eq!(state.phase, Phase::Resolved);
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let mut state = AlertState::new("r", &seen(false), 0);
        state.step(Some(&seen(true)), 0, 600_000, 0);
        assert_eq!(state.step(Some(&seen(false)), 300_000, 600_000, 0), None);
        assert_eq!(state.phase, Phase::Inactive);
        assert_eq!(state.step(Some(&seen(true)), 360_000, 600_000, 0), None);
        assert_eq!(
            state.active_since,
            Some(360_000),
            "the pending clock restarts"
        );
    }

    #[test]
    fn silences_match_rule_labels_and_time() {
        let mut labels = SeriesLabels::new();
        labels.insert("route".into(), "/api/checkout".into());
        let silence = Silence {
            id: "s".into(),
            rule: Some("r".into()),
            matchers: labels.clone(),
            starts_at: 10,
            ends_at: 20,
            created_by: String::new(),
            comment: String::new(),
        };
        assert!(silence.matches("r", &labels, 10));
        assert!(!silence.matches("r", &labels, 20));
        assert!(!silence.matches("other", &labels, 15));
        assert!(!silence.matches("r", &SeriesLabels::new(), 15));
    }
}
