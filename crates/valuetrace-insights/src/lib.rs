//! Business answers: the join of the API request stream with business outcomes.
//!
//! Each answer ([`impact`], [`errors`], [`integrations`], [`gaps`], [`latency`], [`scorecard`],
//! [`priority`]) is one or two passes over compact fact columns ([`facts`]) that the
//! [`FactsCache`] builds once per Parquet file and keeps in memory. A [`Question`] names the
//! project, the window, a [`Slice`] of first-class dimensions and an optional breakdown ([`Dim`]);
//! the project's [`AnalysisConfig`] supplies the attribution window, the cost model, error rules,
//! silent-failure pairs and features.
//!
//! Read path: `Insights::<answer>(store, question, config)` → the cache loads the segments of the
//! window (plus the look-back the answer needs: attribution window, previous period) → the answer's
//! kernel → a serde answer type shared by the JSON API and the CLI.

pub mod attribution;
pub mod cost;
pub mod errors;
pub mod exact;
pub mod gaps;
pub mod impact;
pub mod integrations;
pub mod latency;
pub mod priority;
pub mod scorecard;
pub mod usage;
pub mod usage_summary;
pub mod users;

// The fact engine's modules, under the names the answers have always used.
pub use valuetrace_facts::{
    AnalysisConfig, Ctx, Dim, Error, Facts, FactsCache, Question, Result, Scope, Slice,
};
pub use valuetrace_facts::{cache, config, facts, money, scope, stats};

/// What the business answers read: the fact engine's rows ([`valuetrace_facts::FactSource`])
/// and the health counts ([`valuetrace_query::QueryBackend`]); the embedded store is one.
pub trait Backend: valuetrace_facts::FactSource + valuetrace_query::QueryBackend {}

impl<S: valuetrace_facts::FactSource + valuetrace_query::QueryBackend> Backend for S {}

/// The business answers over one store, with the fact cache they share.
#[derive(Debug)]
pub struct Insights {
    pub cache: FactsCache,
}

impl Default for Insights {
    fn default() -> Self {
        Insights::new(6 << 30)
    }
}

const DAY_MS: i64 = 86_400_000;

impl Insights {
    /// A fact cache that keeps the business answers' summaries with each segment it builds.
    pub fn cache(cache_budget_bytes: usize) -> FactsCache {
        FactsCache::new(cache_budget_bytes)
            .on_build(scorecard::summarize)
            .on_build(usage_summary::SegUsage::keep_usual)
    }

    pub fn new(cache_budget_bytes: usize) -> Self {
        Insights {
            cache: Self::cache(cache_budget_bytes),
        }
    }

    /// Loads the facts of `[from - lookback, to + lookahead)` and resolves the scope.
    pub fn context<'a>(
        &self,
        store: &impl Backend,
        question: &'a Question,
        config: &'a AnalysisConfig,
        lookback: i64,
        lookahead: i64,
    ) -> Result<Ctx<'a>> {
        self.cache
            .context(store, question, config, lookback, lookahead)
    }

    /// The currency of the answers to `question` and the values of its window that no rate in
    /// `config` converts (reported apart, never summed).
    pub fn money(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<money::MoneyNote> {
        let ctx = self.context(store, question, config, 0, 0)?;
        Ok(ctx
            .facts
            .mixed
            .note(&ctx.facts.conversion, question.from, question.to))
    }

    /// Look-back of answers that compare with the previous period and attribute outcomes.
    fn impact_lookback(question: &Question, config: &AnalysisConfig) -> i64 {
        question.span().max(config.attribution_window_ms())
    }

    pub fn impact(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<impact::ImpactAnswer> {
        let ctx = self.context(
            store,
            question,
            config,
            Self::impact_lookback(question, config),
            0,
        )?;
        let exact = exact::requests(store, &ctx)?;
        Ok(impact::answer_with(&ctx, exact.as_ref()))
    }

    pub fn errors(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<errors::ErrorsAnswer> {
        let ctx = self.context(store, question, config, 0, 0)?;
        let (mut answer, health_exact) = errors::answer_and_coverage(&ctx);
        if health_exact && let Some(exact) = exact::error_counts(store, question)? {
            answer.use_exact(exact);
        }
        Ok(answer)
    }

    pub fn integrations(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<integrations::IntegrationsAnswer> {
        let ctx = self.context(store, question, config, 0, 0)?;
        Ok(integrations::answer(&ctx))
    }

    pub fn gaps(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<gaps::GapsAnswer> {
        let lookahead = gaps::lookahead(config);
        let ctx = self.context(store, question, config, 0, lookahead)?;
        Ok(gaps::answer(&ctx))
    }

    pub fn latency_conversion(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
        spec: &latency::LatencySpec,
    ) -> Result<latency::LatencyAnswer> {
        let ctx = self.context(store, question, config, 0, 0)?;
        latency::answer(&ctx, spec)
    }

    pub fn scorecard(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<scorecard::ScorecardAnswer> {
        let lookback = Self::impact_lookback(question, config).max(scorecard::NEW_USER_LOOKBACK_MS);
        let ctx = self.context(store, question, config, lookback, 0)?;
        Ok(scorecard::answer(&ctx))
    }

    pub fn priority(
        &self,
        store: &impl Backend,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<priority::PriorityAnswer> {
        let ctx = self.context(
            store,
            question,
            config,
            Self::impact_lookback(question, config),
            0,
        )?;
        let exact = exact::requests(store, &ctx)?;
        Ok(priority::answer_with(&ctx, exact.as_ref()))
    }
}

/// Interval of trend buckets for a window: hours up to two days, else days.
pub fn trend_interval(span: i64) -> i64 {
    if span <= 2 * DAY_MS {
        DAY_MS / 24
    } else {
        DAY_MS
    }
}
