//! The one ingest path: events from any wire format in, one answer per event out.
//!
//! Front-ends (the batch API's JSON and NDJSON, and the OpenTelemetry and Segment decoders to
//! come) admit a request and cut it into [`Incoming`] items; [`Ingestor::accept`] does the rest,
//! in an order that matters:
//!
//! 1. rate limit: the project's token bucket pays for the batch's events;
//! 2. per item: size, validation (the model's rules, clock-skew correction), duplicates within
//!    the batch (the first copy of an id wins);
//! 3. the store's dedup index: ids it already holds are duplicates, not errors;
//! 4. pseudonymization of user and account ids (raw ids never go further);
//! 5. the data-quality ledger's share of the batch;
//! 6. the commit: WAL append and fsync, then the store's buffers (`Pipeline::commit`);
//! 7. the answer: accepted, duplicates, rejected by index with the reason.
//!
//! A bad event is reported by index and never takes its neighbours down.

use crate::AppState;
use crate::error::ApiError;
use crate::pipeline::PipelineError;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::HashSet;
use valuetrace_model::{validate_event, validate_json};
use valuetrace_store::{Store, StoredEvent};

/// One event as a front-end hands it over.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// The event's JSON text (the batch API's wire form).
    Json(&'a str),
    /// An event a decoder built from another wire format, in the batch API's JSON shape.
    Value(serde_json::Value),
    /// Refused before it was an event (not UTF-8, not JSON, not translatable), with the
    /// bounded reason label metrics count it by.
    Refused { error: String, reason: &'static str },
}

#[derive(Debug, Serialize, PartialEq)]
pub struct BatchResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
    /// Accepted events whose timestamp lay too far in the future and was set to the receive time.
    #[serde(skip_serializing_if = "is_zero")]
    pub clamped: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl BatchResponse {
    /// Whether the batch held events and none of them is stored: none accepted now and none
    /// already stored (a duplicate). Answered 400 with this same body, so a client that only
    /// checks the status never takes a wholly rejected batch for stored data. An empty batch
    /// stores nothing but loses nothing either: it stays 200.
    pub fn nothing_stored(&self) -> bool {
        self.accepted == 0 && self.duplicates == 0 && !self.rejected.is_empty()
    }

    /// 200, or 400 when [`Self::nothing_stored`].
    pub fn status(&self) -> StatusCode {
        if self.nothing_stored() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Rejected {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub error: String,
    /// Bounded label for metrics (see `ValidationError::reason`).
    #[serde(skip)]
    pub reason: &'static str,
}

/// The transport-neutral ingest path over the server's state.
pub struct Ingestor<'a> {
    state: &'a AppState,
}

impl<'a> Ingestor<'a> {
    pub fn new(state: &'a AppState) -> Self {
        Ingestor { state }
    }

    /// Validates, deduplicates, pseudonymizes and durably stores `events` of `project`, received
    /// at `received_at` (server clock): the answer per event. `Err` only when nothing could be
    /// judged or stored (unknown project, over the rate limit, the WAL unavailable).
    pub fn accept(
        &self,
        project: &str,
        events: Vec<Incoming<'_>>,
        received_at: i64,
    ) -> Result<BatchResponse, ApiError> {
        let state = self.state;
        let limits = &state.limits;
        let live = state.live();
        let runtime = live
            .projects
            .get(project)
            .ok_or_else(|| ApiError::not_found("project"))?;
        if let Some(bucket) = &runtime.bucket {
            bucket
                .take(events.len() as f64, std::time::Instant::now())
                .map_err(|wait| crate::ingest::rate_limited(project, wait))?;
        }
        let mut response = BatchResponse {
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
            clamped: 0,
        };
        // The data-quality ledger's share of this request, merged with one lock at the end.
        let mut quality = crate::quality::QualityDelta::new(received_at);
        let mut seen_in_batch = HashSet::new();
        let mut candidates = Vec::with_capacity(events.len());
        for (index, item) in events.into_iter().enumerate() {
            let (validated, id_of_rejected) = match item {
                Incoming::Refused { error, reason } => {
                    response.rejected.push(Rejected {
                        index,
                        event_id: None,
                        error,
                        reason,
                    });
                    continue;
                }
                Incoming::Json(text) if text.len() > limits.max_event_bytes => {
                    let error = format!(
                        "event is {} bytes; the limit is {} (max_event_bytes)",
                        text.len(),
                        limits.max_event_bytes
                    );
                    response.rejected.push(Rejected {
                        index,
                        event_id: None,
                        error,
                        reason: "size",
                    });
                    continue;
                }
                Incoming::Json(text) => (
                    validate_json(text, received_at, &state.validation),
                    IdOf::Text(text),
                ),
                Incoming::Value(value) => (
                    validate_event(&value, received_at, &state.validation),
                    IdOf::Value(value),
                ),
            };
            match validated {
                Ok(valid) => {
                    if seen_in_batch.insert(valid.event.event_id().to_owned()) {
                        candidates.push(valid);
                    } else {
                        response.duplicates += 1;
                    }
                }
                Err(error) => response.rejected.push(Rejected {
                    index,
                    event_id: id_of_rejected.event_id(),
                    error: error.to_string(),
                    reason: error.reason(),
                }),
            }
        }
        let known = state.pipeline.store().contains_any(
            project,
            candidates.iter().map(|valid| valid.event.event_id()),
        );
        let mut fresh = Vec::with_capacity(candidates.len());
        for (valid, known) in candidates.into_iter().zip(known) {
            if known {
                response.duplicates += 1;
                continue;
            }
            let mut event = valid.event;
            runtime.pseudonymizer.apply(&mut event);
            response.clamped += usize::from(valid.clamped);
            quality.event(&event, valid.skew_ms, valid.clamped);
            fresh.push(StoredEvent {
                event,
                received_at,
                skew_ms: valid.skew_ms,
            });
        }
        if !fresh.is_empty() {
            let outcome = state.pipeline.commit(project, fresh).map_err(|error| match error {
                PipelineError::Wal(detail) => {
                    tracing::error!(error = %detail, project, "write-ahead log failed; refusing writes until it recovers");
                    crate::ingest::wal_unavailable()
                }
                PipelineError::Store(detail) => ApiError::internal(&detail),
            })?;
            response.accepted = outcome.stored;
            response.duplicates += outcome.duplicates;
        }
        quality.finish(
            response.accepted,
            response.duplicates,
            response.rejected.iter().map(|rejected| rejected.reason),
        );
        state.quality.record(project, quality);
        if !response.rejected.is_empty() {
            tracing::debug!(
                project,
                rejected = response.rejected.len(),
                "events rejected"
            );
        }
        Ok(response)
    }
}

/// Counts the request, its events and its rejections by reason.
pub fn record(state: &AppState, project: &str, result: &Result<BatchResponse, ApiError>) {
    let metrics = &state.metrics;
    match result {
        Ok(response) => {
            let code = if response.nothing_stored() {
                "all_rejected"
            } else {
                "ok"
            };
            metrics.inc(
                "valuetrace_ingest_requests_total",
                &[("project", project), ("code", code)],
            );
            for (outcome, count) in [
                ("accepted", response.accepted),
                ("duplicate", response.duplicates),
                ("rejected", response.rejected.len()),
            ] {
                if count > 0 {
                    metrics.add(
                        "valuetrace_ingest_events_total",
                        &[("project", project), ("outcome", outcome)],
                        count as f64,
                    );
                }
            }
            for rejected in &response.rejected {
                metrics.inc(
                    "valuetrace_ingest_rejected_events_total",
                    &[("project", project), ("reason", rejected.reason)],
                );
            }
            if response.clamped > 0 {
                metrics.add(
                    "valuetrace_ingest_clamped_events_total",
                    &[("project", project)],
                    response.clamped as f64,
                );
            }
        }
        Err(error) => {
            metrics.inc(
                "valuetrace_ingest_requests_total",
                &[("project", project), ("code", error.code)],
            );
            match error.code {
                "rate_limited" => metrics.inc(
                    "valuetrace_ingest_rate_limited_requests_total",
                    &[("project", project)],
                ),
                "in_flight_full" | "writer_behind" | "wal_unavailable" => metrics.inc(
                    "valuetrace_ingest_overloaded_requests_total",
                    &[("reason", error.code)],
                ),
                "body_timeout" => metrics.inc("valuetrace_http_body_timeouts_total", &[]),
                _ => {}
            }
        }
    }
}

/// Where a rejected event's id is read from.
enum IdOf<'a> {
    Text(&'a str),
    Value(serde_json::Value),
}

impl IdOf<'_> {
    /// The `event_id` of a rejected event, when it has a readable one (at most 128 characters).
    fn event_id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            event_id: Option<serde_json::Value>,
        }
        let id = match self {
            IdOf::Text(text) => serde_json::from_str::<IdOnly>(text).ok()?.event_id?,
            IdOf::Value(value) => value.get("event_id")?.clone(),
        };
        id.as_str().map(|id| id.chars().take(128).collect())
    }
}
