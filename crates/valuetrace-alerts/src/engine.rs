//! The alert engine of one project: evaluates every rule at `now` (an injected clock), steps the
//! state of every series, keeps the history, applies silences, groups the notices of one
//! evaluation by (group, channel), renders them and puts them in the outbox — then the caller
//! saves, which commits the state changes and their notifications in one atomic file replace.
//!
//! File: `<data_dir>/alerts/<project>.json` (JSON with a `version`; written to a temporary
//! file, fsynced, renamed, directory fsynced).

use crate::config::ProjectAlerts;
use crate::evaluate::{Observation, evaluate};
use crate::notify::{Notice, Rendered, render};
use crate::outbox::{Outbox, OutboxEntry};
use crate::source::MetricSource;
use crate::state::{AlertState, Change, Phase, Silence, fingerprint};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

/// Transitions kept in the history.
pub const HISTORY_LIMIT: usize = 5_000;
/// Inactive series not seen for this long are forgotten.
const FORGET_MS: i64 = 86_400_000;
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: i64,
    pub rule: String,
    pub labels: crate::evaluate::SeriesLabels,
    pub from: Phase,
    pub to: Phase,
    pub value: Option<f64>,
    pub threshold: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub version: u32,
    /// Fingerprint → state.
    pub states: BTreeMap<String, AlertState>,
    pub history: VecDeque<Transition>,
    pub silences: Vec<Silence>,
    pub outbox: Outbox,
}

/// What one evaluation did.
#[derive(Debug, Default, Serialize)]
pub struct Evaluation {
    pub notices: Vec<Notice>,
    /// (channel, payload) — put in the outbox, or only rendered in dry-run mode.
    pub payloads: Vec<(String, Rendered)>,
    /// Rules that could not be evaluated, with the reason (their states are left as they were).
    pub errors: Vec<(String, String)>,
}

pub struct Engine {
    path: Option<PathBuf>,
    pub state: EngineState,
    /// When firing alerts were last posted again to Alertmanager channels (not saved: after a
    /// restart they are posted at once).
    pub alertmanager_refreshed_at: Option<i64>,
}

/// Why an alert state file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not an alert state file: {source}", path.display())]
    Corrupt {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
}

impl Engine {
    pub fn in_memory() -> Engine {
        Engine {
            path: None,
            state: EngineState {
                version: FORMAT_VERSION,
                ..EngineState::default()
            },
            alertmanager_refreshed_at: None,
        }
    }

    /// Loads the state file, or starts empty if there is none. An unreadable file is an error
    /// (the caller decides; starting empty would re-send what was delivered).
    pub fn open(path: &Path) -> Result<Engine, StateFileError> {
        let mut engine = Engine::in_memory();
        engine.path = Some(path.to_owned());
        match std::fs::read(path) {
            Ok(bytes) => {
                engine.state =
                    serde_json::from_slice(&bytes).map_err(|source| StateFileError::Corrupt {
                        path: path.to_owned(),
                        source,
                    })?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateFileError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        Ok(engine)
    }

    /// Atomically replaces the state file (no-op in memory).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    }

    /// Evaluates every rule at `now` (floored to the minute so windows use minute rollups).
    pub fn evaluate(
        &mut self,
        source: &dyn MetricSource,
        alerts: &ProjectAlerts,
        project: &str,
        now: i64,
    ) -> Evaluation {
        let now = now - now.rem_euclid(60_000);
        let mut report = Evaluation::default();
        let mut by_group: BTreeMap<(String, String), Vec<Notice>> = BTreeMap::new();
        for rule in &alerts.rules {
            let observations = match evaluate(source, &alerts.catalog, project, rule, now) {
                Ok(observations) => observations,
                Err(error) => {
                    tracing::warn!(project, rule = %rule.def.name, %error, "rule not evaluated");
                    report
                        .errors
                        .push((rule.def.name.clone(), error.to_string()));
                    continue;
                }
            };
            for (state, change) in self.step_rule(rule, &observations, alerts.renotify_ms, now) {
                let notice = self.notice(alerts, project, rule, &state, change, now);
                for channel in &rule.channels {
                    by_group
                        .entry((rule.group.clone(), channel.clone()))
                        .or_default()
                        .push(notice.clone());
                }
                report.notices.push(notice);
            }
        }
        for ((group, channel_name), notices) in by_group {
            let Some(channel) = alerts.channel(&channel_name) else {
                continue;
            };
            for rendered in render(channel, &group, &notices, now) {
                if !alerts.config.dry_run {
                    self.state.outbox.enqueue(OutboxEntry {
                        id: rendered.id.clone(),
                        channel: channel_name.clone(),
                        body: rendered.body.clone(),
                        headers: rendered.headers.clone(),
                        created_at: now,
                        attempts: 0,
                        next_attempt_at: now,
                        last_error: None,
                    });
                }
                report.payloads.push((channel_name.clone(), rendered));
            }
        }
        self.forget_quiet_series(now);
        // Series of rules that were removed from the configuration.
        self.state
            .states
            .retain(|_, state| alerts.rule(&state.rule).is_some());
        report
    }

    /// Steps every series of `rule`; returns the states that asked to notify (not silenced).
    fn step_rule(
        &mut self,
        rule: &crate::rules::Rule,
        observations: &[Observation],
        renotify_ms: i64,
        now: i64,
    ) -> Vec<(AlertState, Change)> {
        let name = &rule.def.name;
        let mut seen: BTreeMap<String, &Observation> = BTreeMap::new();
        for observation in observations {
            seen.insert(fingerprint(name, &observation.labels), observation);
        }
        for (key, observation) in &seen {
            self.state
                .states
                .entry(key.clone())
                .or_insert_with(|| AlertState::new(name, observation, now));
        }
        let mut changes = Vec::new();
        let keys: Vec<String> = self
            .state
            .states
            .iter()
            .filter(|(_, s)| &s.rule == name)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let state = self.state.states.get_mut(&key).expect("key listed above");
            let before = state.phase;
            let change = state.step(seen.get(&key).copied(), now, rule.for_ms, renotify_ms);
            if state.phase != before {
                self.state.history.push_back(Transition {
                    at: now,
                    rule: name.clone(),
                    labels: state.labels.clone(),
                    from: before,
                    to: state.phase,
                    value: state.value,
                    threshold: state.threshold.clone(),
                });
            }
            let Some(change) = change else { continue };
            let silenced = self
                .state
                .silences
                .iter()
                .any(|s| s.matches(name, &state.labels, now));
            state.silenced = silenced;
            // A resolve is sent only for an incident whose firing was.
            let quiet = silenced || (change == Change::Resolved && state.notifications == 0);
            if quiet {
                continue;
            }
            state.notifications += 1;
            state.last_notified = Some(now);
            changes.push((state.clone(), change));
        }
        while self.state.history.len() > HISTORY_LIMIT {
            self.state.history.pop_front();
        }
        changes
    }

    pub(crate) fn notice(
        &self,
        alerts: &ProjectAlerts,
        project: &str,
        rule: &crate::rules::Rule,
        state: &AlertState,
        change: Change,
        now: i64,
    ) -> Notice {
        let def = &rule.def;
        let metric = def
            .metric
            .as_deref()
            .and_then(|name| alerts.catalog.get(name));
        let mut labels = state.labels.clone();
        labels.extend(def.labels.clone());
        labels.insert("alertname".into(), def.name.clone());
        labels.insert(
            "severity".into(),
            format!("{:?}", state.severity).to_lowercase(),
        );
        let mut hash = Sha256::new();
        hash.update(state.incident().as_bytes());
        hash.update(format!("{change:?}/{}", state.notifications).as_bytes());
        let starts_at = state.active_since.unwrap_or(now);
        let dashboard_url = crate::notify::dashboard_link(
            &alerts.config.dashboard_url,
            project,
            &def.name,
            starts_at - rule.window_ms.max(3_600_000),
            now,
        );
        Notice {
            id: hex::encode(&hash.finalize()[..16]),
            project: project.to_owned(),
            rule: def.name.clone(),
            change,
            labels,
            value: state.value,
            currency: state.currency.clone(),
            threshold: state.threshold.clone(),
            summary: def.summary.clone(),
            description: def.description.clone(),
            severity: state.severity,
            metric: def.metric.clone(),
            owner: metric
                .map(|m| m.def.owner.clone())
                .unwrap_or_else(|| rule.group.clone()),
            starts_at,
            ends_at: state.resolved_at,
            fingerprint: state.fingerprint(),
            incident: state.incident(),
            dashboard_url,
            runbook: def.runbook.clone(),
            docs: metric.map(|m| m.def.docs.clone()).unwrap_or_default(),
            test: false,
        }
    }

    /// The payloads that tell each Alertmanager channel what fires now: every firing, not
    /// silenced series of the rules routed to it, grouped as evaluations group them.
    pub fn firing_for_alertmanager(
        &self,
        alerts: &ProjectAlerts,
        project: &str,
        now: i64,
    ) -> Vec<(String, Rendered)> {
        let mut by_group: BTreeMap<(String, String), Vec<Notice>> = BTreeMap::new();
        for state in self.state.states.values() {
            let silenced = self
                .state
                .silences
                .iter()
                .any(|s| s.matches(&state.rule, &state.labels, now));
            if state.phase != Phase::Firing || silenced {
                continue;
            }
            let Some(rule) = alerts.rule(&state.rule) else {
                continue;
            };
            for channel in &rule.channels {
                if alerts
                    .channel(channel)
                    .is_none_or(|c| c.kind != crate::notify::ChannelKind::Alertmanager)
                {
                    continue;
                }
                let notice = self.notice(alerts, project, rule, state, Change::Reminder, now);
                by_group
                    .entry((rule.group.clone(), channel.clone()))
                    .or_default()
                    .push(notice);
            }
        }
        let mut payloads = Vec::new();
        for ((group, channel_name), notices) in by_group {
            if let Some(channel) = alerts.channel(&channel_name) {
                for mut rendered in render(channel, &group, &notices, now) {
                    // Not an outbox entry: an id of its own, so receivers never take a re-post
                    // for a repeat of the notification it repeats.
                    rendered.id = format!("{}-{now}", rendered.id);
                    payloads.push((channel_name.clone(), rendered));
                }
            }
        }
        payloads
    }

    fn forget_quiet_series(&mut self, now: i64) {
        self.state.states.retain(|_, state| {
            let quiet = matches!(state.phase, Phase::Inactive | Phase::Resolved);
            !(quiet && now - state.evaluated_at > FORGET_MS)
        });
    }

    /// Adds a silence (an id is made when it has none); returns the id.
    pub fn silence(&mut self, mut silence: Silence, now: i64) -> String {
        if silence.id.is_empty() {
            let mut hash = Sha256::new();
            hash.update(format!("{silence:?}/{now}/{}", self.state.silences.len()).as_bytes());
            silence.id = hex::encode(&hash.finalize()[..8]);
        }
        if silence.starts_at == 0 {
            silence.starts_at = now;
        }
        let id = silence.id.clone();
        self.state
            .silences
            .retain(|s| s.id != id && s.ends_at > now);
        self.state.silences.push(silence);
        id
    }

    pub fn unsilence(&mut self, id: &str) -> bool {
        let before = self.state.silences.len();
        self.state.silences.retain(|s| s.id != id);
        before != self.state.silences.len()
    }
}
