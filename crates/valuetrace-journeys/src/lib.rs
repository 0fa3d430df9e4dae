//! Journeys and experiments: where users drop (funnels, paths), whether they come back
//! (retention, time to first value, churn risk) and whether an experiment helped (per-endpoint A/B
//! statistics).
//!
//! Layout: the fact engine (`valuetrace_facts::FactsCache`, shared with the business answers):
//! compact per-segment columns with dense per-project ids for users, sessions and accounts. Every
//! journey answer is a few parallel scans ([`pass`]) into dense per-actor arrays — the earliest
//! matching event after a per-actor position, or the next distinct event — so a funnel is one scan
//! per step and a path of depth k is k scans, with no join, no hash map keyed by actor and no sort
//! of raw events. See docs/ARCHITECTURE.md for why this beats re-sorting events by user.
//!
//! Read path: `Journeys::<answer>(store, question, config, spec)` → the fact cache loads the
//! window (plus what the answer needs after or before it) → the answer's passes → a serde answer
//! type shared by the JSON API and the CLI.

pub mod abstats;
pub mod churn;
pub mod experiment;
pub mod funnel;
pub mod pass;
pub mod paths;
pub mod retention;
pub mod step;
pub mod ttv;

pub use step::Actor;

use valuetrace_facts::FactSource;
use valuetrace_facts::{AnalysisConfig, FactsCache, Question};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The question itself is wrong: the message says what to change.
    #[error("{0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Facts(#[from] valuetrace_facts::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Journey answers over the business answers' fact cache.
pub struct Journeys<'a, S: FactSource> {
    pub facts: &'a FactsCache,
    /// Where the facts come from (the embedded store, or any other backend).
    pub store: &'a S,
}

impl<S: FactSource> Journeys<'_, S> {
    /// The facts of the question's window plus `back` before and `ahead` after, followed `per`.
    fn with<T>(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        (back, ahead): (i64, i64),
        answer: impl FnOnce(&pass::Cx, &[bool]) -> T,
    ) -> Result<T> {
        let ctx = self
            .facts
            .context(self.store, question, config, back, ahead)?;
        let cx = pass::Cx {
            facts: &ctx.facts,
            scope: &ctx.scope,
            actor: per,
        };
        let noise = config.noise(&ctx.scope.names);
        Ok(answer(&cx, &noise))
    }

    pub fn retention(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &retention::RetentionSpec,
    ) -> Result<retention::RetentionAnswer> {
        self.with(
            question,
            config,
            per,
            (retention::LOOKBACK_MS, 0),
            |cx, _| retention::answer(cx, question, spec),
        )
    }

    pub fn funnel(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &funnel::FunnelSpec,
    ) -> Result<funnel::FunnelAnswer> {
        let ctx = self
            .facts
            .context(self.store, question, config, 0, spec.window_ms)?;
        let cx = pass::Cx {
            facts: &ctx.facts,
            scope: &ctx.scope,
            actor: per,
        };
        let noise = config.noise(&ctx.scope.names);
        Ok(funnel::answer(&cx, question, spec, &noise))
    }

    pub fn paths(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &paths::PathSpec,
    ) -> Result<paths::PathsAnswer> {
        let (back, ahead) = if spec.towards {
            (spec.window_ms, 0)
        } else {
            (0, spec.window_ms)
        };
        let ctx = self
            .facts
            .context(self.store, question, config, back, ahead)?;
        let cx = pass::Cx {
            facts: &ctx.facts,
            scope: &ctx.scope,
            actor: per,
        };
        let noise = config.noise(&ctx.scope.names);
        Ok(paths::answer(&cx, question, spec, &noise))
    }

    pub fn ttv(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &ttv::TtvSpec,
    ) -> Result<ttv::TtvAnswer> {
        self.with(
            question,
            config,
            per,
            (retention::LOOKBACK_MS, 0),
            |cx, _| ttv::answer(cx, question, spec),
        )
    }

    pub fn experiment(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &experiment::ExperimentSpec,
    ) -> Result<experiment::ExperimentAnswer> {
        self.with(question, config, per, (0, 0), |cx, _| {
            experiment::answer(cx, question, spec)
        })?
    }

    pub fn experiments(
        &self,
        question: &Question,
        config: &AnalysisConfig,
    ) -> Result<experiment::ExperimentList> {
        self.with(question, config, Actor::User, (0, 0), |cx, _| {
            experiment::list(cx)
        })
    }

    pub fn churn_risk(
        &self,
        question: &Question,
        config: &AnalysisConfig,
        per: Actor,
        spec: &churn::ChurnSpec,
    ) -> Result<churn::ChurnAnswer> {
        spec.check()?;
        // The window is the look-back of the two scorings ending at the question's `to`.
        let mut window = question.clone();
        window.from = question.to - spec.lookback();
        let kind = match per {
            Actor::User => "user",
            Actor::Session => "session",
            Actor::Account => "account",
        };
        let resolve = |id: usize| {
            self.facts
                .resolve_ids(&question.project, kind, &[id as u32])
                .pop()
                .unwrap_or_default()
        };
        self.with(&window, config, per, (0, 0), |cx, _| {
            churn::answer(cx, question, spec, &resolve)
        })?
    }
}
