//! `POST /v1/batch`: decode, validate each event, keep the valid ones, answer per event.
//!
//! Limits are checked in order of cost: key, content type, body size (while reading),
//! decompressed size (while decompressing, so a gzip bomb stops at the limit), event count, and
//! event size. A bad event is reported by index and never takes its neighbours down.

use crate::AppState;
use crate::error::{ApiError, ErrorKind};
use crate::pipeline::PipelineError;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use valuetrace_model::validate_json;
use valuetrace_store::{Store, StoredEvent};

#[derive(Debug, Serialize, PartialEq)]
pub struct BatchResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Rejected {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

pub async fn batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BatchResponse>, ApiError> {
    let project = crate::bearer(&headers)
        .and_then(|key| state.keys.project_of(key, crate::auth::KeyRole::Ingest))
        .ok_or_else(ApiError::unauthorized)?;
    let format = body_format(&headers)?;
    let encoding = body_encoding(&headers)?;
    let limits = state.limits.clone();
    if let Some(length) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > limits.max_body_bytes
    {
        return Err(too_large(
            "body",
            length,
            limits.max_body_bytes,
            "max_body_bytes",
        ));
    }
    let raw = match http_body_util::Limited::new(body, limits.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large(
                "body",
                limits.max_body_bytes + 1,
                limits.max_body_bytes,
                "max_body_bytes",
            ));
        }
        Err(error) => {
            return Err(ApiError::bad_request(
                "body_unreadable",
                format!("could not read the request body: {error}"),
            ));
        }
    };
    let state_for_work = state.clone();
    tokio::task::spawn_blocking(move || process(&state_for_work, &project, format, encoding, &raw))
        .await
        .map_err(|error| ApiError::internal(&error))?
        .map(Json)
}

fn process(
    state: &AppState,
    project: &str,
    format: BodyFormat,
    encoding: Encoding,
    raw: &[u8],
) -> Result<BatchResponse, ApiError> {
    let limits = &state.limits;
    let decoded = decompress(raw, encoding, limits.max_decompressed_bytes)?;
    let items = split_events(&decoded, format, limits.max_batch_events)?;
    let runtime = state
        .projects
        .get(project)
        .ok_or_else(|| ApiError::not_found("project"))?;
    let received_at = (state.clock)();
    let mut response = BatchResponse {
        accepted: 0,
        duplicates: 0,
        rejected: Vec::new(),
    };
    let mut fresh = Vec::with_capacity(items.len());
    let mut seen_in_batch = HashSet::new();
    let mut candidates = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let text = match item {
            Ok(text) => text,
            Err(error) => {
                response.rejected.push(Rejected {
                    index,
                    event_id: None,
                    error,
                });
                continue;
            }
        };
        if text.len() > limits.max_event_bytes {
            let error = format!(
                "event is {} bytes; the limit is {} (max_event_bytes)",
                text.len(),
                limits.max_event_bytes
            );
            response.rejected.push(Rejected {
                index,
                event_id: None,
                error,
            });
            continue;
        }
        match validate_json(text, received_at, &state.validation) {
            Ok(valid) => {
                if seen_in_batch.insert(valid.event.event_id().to_owned()) {
                    candidates.push(valid);
                } else {
                    response.duplicates += 1;
                }
            }
            Err(error) => response.rejected.push(Rejected {
                index,
                event_id: event_id_of(text),
                error: error.to_string(),
            }),
        }
    }
    let known = state.pipeline.store().contains_any(
        project,
        candidates.iter().map(|valid| valid.event.event_id()),
    );
    for (valid, known) in candidates.into_iter().zip(known) {
        if known {
            response.duplicates += 1;
            continue;
        }
        let mut event = valid.event;
        runtime.pseudonymizer.apply(&mut event);
        fresh.push(StoredEvent {
            event,
            received_at,
            skew_ms: valid.skew_ms,
        });
    }
    if !fresh.is_empty() {
        let outcome = state.pipeline.commit(project, fresh).map_err(|error| match error {
            PipelineError::Wal(detail) => {
                tracing::error!(error = %detail, project, "write-ahead log failed; refusing writes");
                ApiError::unavailable("the server cannot make writes durable right now; retry later")
            }
            PipelineError::Store(detail) => ApiError::internal(&detail),
        })?;
        response.accepted = outcome.stored;
        response.duplicates += outcome.duplicates;
    }
    if !response.rejected.is_empty() {
        tracing::debug!(
            project,
            rejected = response.rejected.len(),
            "events rejected"
        );
    }
    Ok(response)
}

fn too_large(what: &str, size: usize, limit: usize, setting: &str) -> ApiError {
    let code = if what == "body" {
        "body_too_large"
    } else {
        "decompressed_body_too_large"
    };
    let size_text = if size > limit {
        format!("more than {limit}")
    } else {
        size.to_string()
    };
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        code,
        format!(
            "{what} is {size_text} bytes; the limit is {limit} bytes ({setting}): send smaller batches"
        ),
    )
}

fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let Some(content_type) = headers.get("content-type") else {
        return Ok(BodyFormat::Json);
    };
    let content_type = content_type
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" | "text/json" => Ok(BodyFormat::Json),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyFormat::Ndjson),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_content_type",
            format!(
                "content type `{other}` is not supported; send application/json or application/x-ndjson"
            ),
        )),
    }
}

fn body_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(encoding) = headers.get("content-encoding") else {
        return Ok(Encoding::Identity);
    };
    match encoding
        .to_str()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        other => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_content_encoding",
            format!("content encoding `{other}` is not supported; use gzip, zstd or none"),
        )),
    }
}

/// The batch decoder without HTTP around it (fuzz targets and property tests call this):
/// decompresses `raw` within `limits` and cuts it into events, each its JSON text or the reason it
/// could not be cut out. Never panics; any error is an [`ApiError`] for the whole body.
pub fn decode_batch(
    raw: &[u8],
    format: BodyFormat,
    encoding: Encoding,
    limits: &crate::config::IngestLimits,
) -> Result<Vec<Result<String, String>>, ApiError> {
    let decoded = decompress(raw, encoding, limits.max_decompressed_bytes)?;
    let items = split_events(&decoded, format, limits.max_batch_events)?;
    Ok(items
        .into_iter()
        .map(|item| item.map(str::to_owned))
        .collect())
}

/// Decompresses at most `limit` bytes: reading stops one byte past the limit, so memory stays
/// bounded whatever the compression ratio.
fn decompress(raw: &[u8], encoding: Encoding, limit: usize) -> Result<Cow<'_, [u8]>, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(Cow::Borrowed(raw)),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(|error| {
            ApiError::bad_request("bad_compression", format!("invalid zstd body: {error}"))
        })?),
    };
    let mut decoded = Vec::with_capacity(raw.len().saturating_mul(4).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|error| {
            ApiError::bad_request(
                "bad_compression",
                format!("could not decompress the body: {error}"),
            )
        })?;
    if decoded.len() > limit {
        return Err(too_large(
            "decompressed body",
            limit + 1,
            limit,
            "max_decompressed_bytes",
        ));
    }
    Ok(Cow::Owned(decoded))
}

/// One entry per event: its JSON text, or why it could not be cut out of the body.
type Item<'a> = Result<&'a str, String>;

/// Cuts the body into events. Events are counted before per-event storage is allocated, so a
/// small compressed body of millions of tiny events is refused at `max_events` instead of costing
/// many times `max_decompressed_bytes` of memory.
fn split_events(
    body: &[u8],
    format: BodyFormat,
    max_events: usize,
) -> Result<Vec<Item<'_>>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        ApiError::bad_request("invalid_utf8", format!("body is not UTF-8: {error}"))
    })?;
    match format {
        BodyFormat::Ndjson => {
            let mut items = Vec::new();
            let mut total = 0;
            for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
                total += 1;
                if total <= max_events {
                    items.push(Ok(line));
                }
            }
            check_event_count(total, max_events)?;
            Ok(items)
        }
        BodyFormat::Json => {
            let trimmed = text.trim_start();
            let capped = if trimmed.starts_with('[') {
                parse_whole(trimmed, CappedEvents { max: max_events }).map_err(|error| {
                    ApiError::bad_request(
                        "invalid_json",
                        format!("body is not a JSON array of events: {error}"),
                    )
                })?
            } else if trimmed.starts_with('{') {
                parse_whole(trimmed, Envelope { max: max_events }).map_err(|error| {
                    ApiError::bad_request(
                        "invalid_json",
                        format!("body must be `{{\"batch\": [...]}}`: {error}"),
                    )
                })?
            } else {
                return Err(ApiError::bad_request(
                    "invalid_json",
                    "body must be a JSON array of events, an object `{\"batch\": [...]}`, or NDJSON with content type application/x-ndjson",
                ));
            };
            check_event_count(capped.total, max_events)?;
            Ok(capped.events.into_iter().map(|raw| Ok(raw.get())).collect())
        }
    }
}

/// Deserializes all of `text` with `seed`, refusing trailing characters.
fn parse_whole<'a, S: DeserializeSeed<'a>>(text: &'a str, seed: S) -> serde_json::Result<S::Value> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The events of a body in one pass: the first `max` are kept (borrowed), the rest only
/// counted, so an oversized batch costs no memory before it is refused.
struct Capped<'a> {
    events: Vec<&'a RawValue>,
    total: usize,
}

struct CappedEvents {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for CappedEvents {
    type Value = Capped<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CappedEvents {
    type Value = Capped<'de>;
    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an array of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut capped = Capped {
            events: Vec::new(),
            total: 0,
        };
        loop {
            let more = if capped.events.len() < self.max {
                seq.next_element::<&RawValue>()?
                    .map(|raw| capped.events.push(raw))
                    .is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(capped);
            }
            capped.total += 1;
        }
    }
}

/// `{"batch": [...]}`; other members are ignored.
struct Envelope {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for Envelope {
    type Value = Capped<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope {
    type Value = Capped<'de>;
    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an object with a `batch` array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut batch = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "batch" {
                batch = Some(map.next_value_seed(CappedEvents { max: self.max })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        batch.ok_or_else(|| serde::de::Error::missing_field("batch"))
    }
}

fn check_event_count(count: usize, max_events: usize) -> Result<(), ApiError> {
    if count > max_events {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            "too_many_events",
            format!(
                "batch holds {count} events; the limit is {max_events} (max_batch_events): split it"
            ),
        ));
    }
    Ok(())
}

/// The number of elements of a JSON array, counted without keeping them.
/// The `event_id` of a rejected event, when it has a readable one (at most 128 characters).
fn event_id_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        event_id: Option<serde_json::Value>,
    }
    let id = serde_json::from_str::<IdOnly>(text).ok()?.event_id?;
    id.as_str().map(|id| id.chars().take(128).collect())
}
