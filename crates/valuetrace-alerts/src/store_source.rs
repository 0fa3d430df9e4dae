//! [`MetricSource`] over the embedded store: calls from the rollups (`valuetrace_query`'s
//! summary kernel: minute, hour and day cells, raw rows only at unaligned edges), outcomes by a
//! pruned scan of the `outcomes` table (timestamp and name columns), funnels from
//! `valuetrace_journeys` over the business answers' fact cache.

use crate::selector::Selector;
use crate::source::{
    EndpointLabels, EndpointStats, FunnelStats, LatencyView, MetricSource, OutcomeStats,
    SourceError,
};
use arrow_array::{Array, Float64Array, StringArray, TimestampMillisecondArray};
use std::collections::HashMap;
use std::sync::Arc;
use valuetrace_facts::money::Conversion;
use valuetrace_facts::{AnalysisConfig, Question, Slice};
use valuetrace_insights::Insights;
use valuetrace_query::Filter;
use valuetrace_query::summary::summarize;
use valuetrace_store::sketch::LatencyAccumulator;
use valuetrace_store::{EmbeddedStore, Table};

pub struct StoreSource {
    pub store: Arc<EmbeddedStore>,
    pub insights: Arc<Insights>,
    /// Per project, its `[projects.analysis]` (funnels use its noise rules).
    pub analysis: HashMap<String, Arc<AnalysisConfig>>,
    /// The clock funnels use to tell pending from missing.
    pub now: i64,
}

#[derive(Debug)]
struct SketchLatency(LatencyAccumulator);

impl LatencyView for SketchLatency {
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.0.quantile(q)
    }

    /// The largest rank whose value is at or below `ms`, by bisection over the sketch's ranks.
    fn count_at_most_ms(&self, ms: f64) -> u64 {
        let total = self.0.count();
        if total == 0 {
            return 0;
        }
        if total == 1 {
            return u64::from(self.0.quantile(0.0).is_some_and(|v| v <= ms));
        }
        let value_at = |rank: u64| {
            let q = ((rank as f64 + 0.5) / (total - 1) as f64).min(1.0);
            self.0.quantile(q).unwrap_or(f64::INFINITY)
        };
        if value_at(0) > ms {
            return 0;
        }
        let (mut low, mut high) = (0, total - 1); // value_at(low) <= ms
        while low < high {
            let middle = (low + high).div_ceil(2);
            if value_at(middle) <= ms {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        low + 1
    }

    fn count(&self) -> u64 {
        self.0.count()
    }
}

fn store_error(error: impl std::fmt::Display) -> SourceError {
    SourceError::Store(error.to_string())
}

fn filter_of(selector: &Selector) -> Filter {
    let exact_route = selector.route.clone().filter(|route| !route.contains('*'));
    Filter {
        plan: selector.plan.clone(),
        segment: selector.segment.clone(),
        variant: selector.variant.clone(),
        service: selector.service.clone(),
        route: exact_route,
        method: selector.method.clone(),
        direction: selector.direction.clone(),
    }
}

impl MetricSource for StoreSource {
    fn calls(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Vec<EndpointStats>, SourceError> {
        let summary =
            summarize(&self.store, project, from, to, &filter_of(selector)).map_err(store_error)?;
        // Values in the reporting currency; a sum in a currency without a rate, or over mixed
        // currencies, is left out (never added to money in another currency).
        let config = self.analysis.get(project).cloned().unwrap_or_default();
        let rule = valuetrace_query::currency::CurrencyRule {
            reporting: config.reporting_currency.clone(),
            rates: config.currency_rates.clone(),
        };
        let currency = rule.resolve(summary.endpoints.values());
        let mut rows = Vec::new();
        for (key, accum) in summary.endpoints {
            let provider = key.provider.clone().unwrap_or_default();
            if !selector.route_matches(&key.route)
                || selector.provider.as_deref().is_some_and(|p| p != provider)
            {
                continue;
            }
            rows.push(EndpointStats {
                labels: EndpointLabels {
                    route: key.route,
                    method: key.method,
                    service: key.service,
                    provider,
                    direction: if key.outbound { "outbound" } else { "inbound" }.into(),
                },
                count: accum.counts.count,
                status_classes: accum.counts.status_classes,
                errors: accum.counts.errors,
                value_sum: rule
                    .value_in(currency.as_deref(), &accum.counts)
                    .unwrap_or(0.0),
                currency: currency.clone(),
                latency_sum_ms: accum.counts.latency_sum_ms,
                latency: Arc::new(SketchLatency(accum.latency)),
            });
        }
        rows.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(rows)
    }

    fn outcomes(
        &self,
        project: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<OutcomeStats, SourceError> {
        let mut stats = OutcomeStats::default();
        let Some(shared) = self.store.existing_project(project) else {
            return Ok(stats);
        };
        let set = {
            let data = shared
                .read()
                .map_err(|_| store_error("project lock poisoned"))?;
            data.table(Table::Outcomes).scan_set(from, to)
        };
        // Value per currency (`None`: no currency), converted once the scan is done.
        let mut by_currency: HashMap<Option<String>, (u64, f64)> = HashMap::new();
        set.scan(
            from,
            to,
            &["timestamp", "name", "value", "currency"],
            |batch| {
                let column = |field: &str| {
                    batch.column_by_name(field).ok_or_else(|| {
                        valuetrace_store::Error::Corrupt(format!("outcomes: no column `{field}`"))
                    })
                };
                let corrupt = |field: &str| {
                    valuetrace_store::Error::Corrupt(format!(
                        "outcomes: column `{field}` has a wrong type"
                    ))
                };
                let times = column("timestamp")?
                    .as_any()
                    .downcast_ref::<TimestampMillisecondArray>()
                    .ok_or_else(|| corrupt("timestamp"))?;
                let names = column("name")?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| corrupt("name"))?;
                let values = column("value")?
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .ok_or_else(|| corrupt("value"))?;
                let currencies = column("currency")?
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| corrupt("currency"))?;
                for row in 0..batch.num_rows() {
                    let at = times.value(row);
                    if at >= from && at < to && names.value(row) == name {
                        stats.count += 1;
                        if values.is_valid(row) {
                            let currency = currencies
                                .is_valid(row)
                                .then(|| currencies.value(row).to_owned());
                            let entry = by_currency.entry(currency).or_default();
                            entry.0 += 1;
                            entry.1 += values.value(row);
                        }
                    }
                }
                Ok(())
            },
        )
        .map_err(store_error)?;
        // Never a sum over currencies: values in the reporting currency, others by their rate,
        // those without a rate left out (the business answers report them apart).
        let config = self.analysis.get(project).cloned().unwrap_or_default();
        let counts = by_currency
            .iter()
            .filter_map(|(code, (rows, _))| code.as_deref().map(|code| (code, *rows)));
        let conversion = Conversion::resolve(&config, counts);
        stats.value_sum = by_currency
            .iter()
            .filter_map(|(code, (_, sum))| conversion.factor(code.as_deref()).map(|f| f * sum))
            .sum();
        stats.currency = conversion.currency;
        Ok(stats)
    }

    fn latency(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<Arc<dyn LatencyView>, SourceError> {
        let summary =
            summarize(&self.store, project, from, to, &filter_of(selector)).map_err(store_error)?;
        let mut merged = LatencyAccumulator::default();
        for (key, accum) in &summary.endpoints {
            let provider = key.provider.as_deref().unwrap_or_default();
            if selector.route_matches(&key.route)
                && selector.provider.as_deref().is_none_or(|p| p == provider)
            {
                merged.merge(&accum.latency);
            }
        }
        Ok(Arc::new(SketchLatency(merged)))
    }

    fn distinct_users(
        &self,
        project: &str,
        selector: &Selector,
        from: i64,
        to: i64,
    ) -> Result<u64, SourceError> {
        if selector.route.as_deref().is_some_and(|r| r.contains('*'))
            || selector.provider.is_some()
            || selector.status.is_some()
        {
            return Err(SourceError::Invalid(
                "distinct users take exact routes and no provider or status".into(),
            ));
        }
        let summary =
            summarize(&self.store, project, from, to, &filter_of(selector)).map_err(store_error)?;
        Ok(summary.total().users.estimate())
    }

    fn funnel(
        &self,
        project: &str,
        steps: &[String],
        window_ms: i64,
        from: i64,
        to: i64,
    ) -> Result<FunnelStats, SourceError> {
        use valuetrace_journeys::funnel::{FunnelSpec, Order};
        let spec = FunnelSpec::parse(steps, window_ms, Order::Sequential)
            .map_err(|error| SourceError::Invalid(error.to_string()))?;
        let config = self
            .analysis
            .get(project)
            .map(|config| (**config).clone())
            .unwrap_or_default();
        let question = Question {
            project: project.to_owned(),
            from,
            to,
            now: self.now,
            slice: Slice::default(),
            by: None,
        };
        let journeys = valuetrace_journeys::Journeys {
            facts: &self.insights.cache,
            store: self.store.as_ref(),
        };
        let answer = journeys
            .funnel(&question, &config, valuetrace_journeys::Actor::User, &spec)
            .map_err(store_error)?;
        let entered = answer.steps.first().map_or(0, |step| step.entered);
        let converted = answer.steps.last().map_or(0, |step| step.entered);
        Ok(FunnelStats { entered, converted })
    }
}
