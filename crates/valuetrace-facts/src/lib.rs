//! The fact engine every analysis answer is built from.
//!
//! The store's rows become compact per-segment columns ([`facts`]: dense per-project ids for
//! users, sessions, accounts, endpoints and dimension values) that the [`FactsCache`] builds once
//! per Parquet file or buffered batch, keyed by the store's never-reused
//! [`SourceId`](valuetrace_store::SourceId), and keeps within a byte budget. A [`Question`] names
//! the project, the window, a [`Slice`] of first-class dimensions and an optional breakdown
//! ([`Dim`]); [`FactsCache::context`] loads the window (plus the look-back or look-ahead an answer
//! needs) and resolves its [`Scope`]; answers then run passes over the segments ([`par`]).
//!
//! This crate knows no particular answer: the business answers (`valuetrace-insights`) and the
//! journeys (`valuetrace-journeys`) sit on it side by side. An answer that wants a summary of a
//! segment kept with it attaches one through the segment's [`extensions::SegExtensions`], and a
//! cache can summarize every segment it builds ([`FactsCache::on_build`]).

pub mod cache;
pub mod config;
pub mod extensions;
pub mod facts;
pub mod money;
pub mod par;
pub mod scope;
pub mod source;
pub mod stats;

pub use cache::{Facts, FactsCache};
pub use config::AnalysisConfig;

pub use scope::{Dim, Question, Scope, Slice};
pub use source::{FactSource, FactTable};

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The question itself is wrong: the message says what to change.
    #[error("{0}")]
    InvalidQuery(String),
    #[error("store error")]
    Store(#[from] valuetrace_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a pass reads: the facts of the window (and its look-back), the resolved scope, the
/// question and the project's analysis settings.
pub struct Ctx<'a> {
    pub facts: Facts,
    pub scope: Scope,
    pub question: &'a Question,
    pub config: &'a AnalysisConfig,
    /// The project's earliest call (any time, not only in the loaded range): a previous period
    /// that starts before it is not covered by data and is not compared with.
    pub data_start: Option<i64>,
}

impl FactsCache {
    /// Loads the facts of `[from - lookback, to + lookahead)` and resolves the scope.
    pub fn context<'a, S: FactSource>(
        &self,
        store: &S,
        question: &'a Question,
        config: &'a AnalysisConfig,
        lookback: i64,
        lookahead: i64,
    ) -> Result<Ctx<'a>> {
        question.check()?;
        let facts = self.load(
            store,
            &question.project,
            question.from - lookback,
            question.to.saturating_add(lookahead),
            config,
        )?;
        let scope = Scope::new(Arc::clone(&facts.names), &question.slice, question.by);
        let data_start = store.first_call(&question.project);
        Ok(Ctx {
            facts,
            scope,
            question,
            config,
            data_start,
        })
    }
}
