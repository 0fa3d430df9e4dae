//! `[projects.alerts]`: evaluation and delivery settings, channels and rules of a project, and
//! [`ProjectAlerts`], everything checked together with the project's catalog.

use crate::catalog::{Catalog, MetricDef};
use crate::notify::ChannelDef;
use crate::rules::{Rule, RuleDef, build_rules};
use serde::{Deserialize, Serialize};
use valuetrace_model::time::parse_duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often rules are evaluated.
    pub evaluation_interval: String,
    /// A firing alert is notified again after this (`0s`: never).
    pub renotify_interval: String,
    /// Base URL of the valuetrace dashboard (as users reach it, behind a proxy too);
    /// notifications link its Alerts page, `<dashboard_url>/p/<project>/alerts?rule=<rule>&...`.
    pub dashboard_url: String,
    /// Render notifications and log them instead of sending them.
    pub dry_run: bool,
    /// A notification without a 2xx after this long is dropped (logged, counted).
    pub max_delivery_age: String,
    /// A catalog metric with no data for this long is an orphan.
    pub orphan_after: String,
    /// SHA-256 hashes (`sha256:<hex>`) of the tokens that may scrape
    /// `/api/v1/projects/<project>/metrics` (read keys may too).
    pub scrape_token_hashes: Vec<String>,
    /// Exposition: values kept per label (top by volume; the rest become `other`).
    pub max_label_values: usize,
    /// Exposition: series kept per metric (the rest fold into `other`).
    pub max_series: usize,
    pub channels: Vec<ChannelDef>,
    pub rules: Vec<RuleDef>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluation_interval: "1m".into(),
            renotify_interval: "4h".into(),
            dashboard_url: String::new(),
            dry_run: false,
            max_delivery_age: "24h".into(),
            orphan_after: "7d".into(),
            scrape_token_hashes: Vec::new(),
            max_label_values: 10,
            max_series: 1000,
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// A project's catalog, rules and settings, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectAlerts {
    pub catalog: Catalog,
    pub rules: Vec<Rule>,
    pub config: AlertsConfig,
    pub evaluation_interval_ms: i64,
    pub renotify_ms: i64,
    pub max_delivery_age_ms: i64,
    pub orphan_after_ms: i64,
}

impl ProjectAlerts {
    /// Checks the catalog (`<at>.metrics`), channels and rules (`<at>.alerts`); every problem
    /// names its field.
    pub fn build(
        metrics: &[MetricDef],
        config: &AlertsConfig,
        at: &str,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let catalog = Catalog::build(metrics, &format!("{at}.metrics")).unwrap_or_else(|found| {
            problems.extend(found);
            Catalog::default()
        });
        let here = format!("{at}.alerts");
        let mut duration = |field: &str, text: &str, allow_zero: bool| match parse_duration(text)
            .filter(|ms| *ms > 0 || (allow_zero && *ms == 0))
        {
            Some(ms) => ms,
            None => {
                problems.push(format!(
                    "{here}.{field}: `{text}` is not a duration such as `30s`, `1m`, `4h`"
                ));
                0
            }
        };
        let evaluation_interval_ms =
            duration("evaluation_interval", &config.evaluation_interval, false);
        let renotify_ms = duration("renotify_interval", &config.renotify_interval, true);
        let max_delivery_age_ms = duration("max_delivery_age", &config.max_delivery_age, false);
        let orphan_after_ms = duration("orphan_after", &config.orphan_after, false);
        if config.max_label_values == 0 || config.max_series == 0 {
            problems.push(format!(
                "{here}: max_label_values and max_series must be positive"
            ));
        }
        let mut names = Vec::new();
        for (index, channel) in config.channels.iter().enumerate() {
            let place = format!("{here}.channels[{index}] ({})", channel.name);
            problems.extend(channel.problems(&place));
            if names.contains(&channel.name) {
                problems.push(format!("{place}.name: defined twice"));
            }
            names.push(channel.name.clone());
        }
        for metric in &catalog.metrics {
            for channel in &metric.def.channels {
                if !names.contains(channel) {
                    problems.push(format!(
                        "{at}.metrics ({}).channels: `{channel}` is not a [[projects.alerts.channels]] name",
                        metric.def.name
                    ));
                }
            }
        }
        let rules = build_rules(&config.rules, &catalog, &names, &format!("{here}.rules"))
            .unwrap_or_else(|found| {
                problems.extend(found);
                Vec::new()
            });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ProjectAlerts {
            catalog,
            rules,
            config: config.clone(),
            evaluation_interval_ms,
            renotify_ms,
            max_delivery_age_ms,
            orphan_after_ms,
        })
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.def.name == name)
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelDef> {
        self.config
            .channels
            .iter()
            .find(|channel| channel.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.catalog.metrics.is_empty() && self.rules.is_empty()
    }
}
