//! `POST /v1/batch`, the JSON front-end of the one ingest path ([`crate::ingestor`]): admit the
//! request, read and decode its body, cut it into events, and hand them over.
//!
//! Limits are checked in order of cost: key, content type, body size (while reading),
//! decompressed size (while decompressing, so a gzip bomb stops at the limit), event count, and
//! (in the ingest path) event size.

use crate::AppState;
use crate::admission::Reservation;
use crate::error::{ApiError, ErrorKind};
use crate::ingestor::{BatchResponse, Incoming, Ingestor, record};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;

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
) -> Result<(StatusCode, Json<BatchResponse>), ApiError> {
    let project =
        crate::bearer(&headers).and_then(|key| state.project_of(key, crate::auth::KeyRole::Ingest));
    let label = project.as_deref().unwrap_or("unknown").to_owned();
    let result = match project {
        Some(project) => admit_and_process(&state, project, &headers, body).await,
        None => Err(ApiError::unauthorized()),
    };
    record(&state, &label, &result);
    result.map(|response| (response.status(), Json(response)))
}

/// The cheap refusals first (nothing read yet), then the body within its limits and timeout,
/// then the work on a blocking thread.
async fn admit_and_process(
    state: &Arc<AppState>,
    project: String,
    headers: &HeaderMap,
    body: Body,
) -> Result<BatchResponse, ApiError> {
    if !state.pipeline.is_ready() {
        return Err(wal_unavailable());
    }
    let store = state.pipeline.store();
    let (held, project_held) = store.rows_in_memory(&project);
    if held >= state.max_buffered_rows || project_held >= state.project_max_buffered_rows {
        return Err(ApiError::overloaded(
            "writer_behind",
            format!(
                "{held} rows ({project_held} of project `{project}`) are waiting to be written (storage.max_buffered_rows = {}, a project may hold {}); retry later",
                state.max_buffered_rows, state.project_max_buffered_rows
            ),
        )
        .retry_after(2));
    }
    let bucket = state
        .live()
        .projects
        .get(&project)
        .and_then(|runtime| runtime.bucket.clone());
    if let Some(bucket) = &bucket {
        bucket
            .check(std::time::Instant::now())
            .map_err(|wait| rate_limited(&project, wait))?;
    }
    let format = body_format(headers)?;
    let encoding = body_encoding(headers)?;
    let limits = &state.limits;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared
        && length > limits.max_body_bytes
    {
        return Err(too_large(
            "body",
            length,
            limits.max_body_bytes,
            "max_body_bytes",
        ));
    }
    let mut reservation = state
        .in_flight
        .reserve(&project, declared.unwrap_or(limits.max_body_bytes))
        .ok_or_else(in_flight_full)?;
    let _in_flight = InFlightGauge::new(state);
    let raw = read_body(body, limits.max_body_bytes, state.body_read_timeout).await?;
    state.metrics.add(
        "valuetrace_ingest_bytes_total",
        &[("project", &project), ("stage", "received")],
        raw.len() as f64,
    );
    let worker = state.clone();
    tokio::task::spawn_blocking(move || {
        process(&worker, &project, format, encoding, &raw, &mut reservation)
    })
    .await
    .map_err(|error| ApiError::internal(&error))?
}

/// Reads the whole body within `limit` bytes and `timeout`.
async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, ApiError> {
    let collect = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(ApiError::new(
            ErrorKind::RequestTimeout,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s (http.body_read_timeout); send it at once",
                timeout.as_secs_f64()
            ),
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error))
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large("body", limit + 1, limit, "max_body_bytes"))
        }
        Ok(Err(error)) => Err(ApiError::bad_request(
            "body_unreadable",
            format!("could not read the request body: {error}"),
        )),
    }
}

/// 503: writes cannot be made durable now.
pub(crate) fn wal_unavailable() -> ApiError {
    ApiError::overloaded(
        "wal_unavailable",
        "the server cannot make writes durable right now (write-ahead log failed, e.g. disk full); retry later",
    )
    .retry_after(5)
}

pub(crate) fn rate_limited(project: &str, wait: std::time::Duration) -> ApiError {
    ApiError::new(
        ErrorKind::TooManyRequests,
        "rate_limited",
        format!(
            "project `{project}` is over its event rate limit (events_per_second); retry after {:.1} s",
            wait.as_secs_f64()
        ),
    )
    .retry_after(wait.as_secs_f64().ceil() as u64)
}

fn in_flight_full() -> ApiError {
    ApiError::overloaded(
        "in_flight_full",
        "the server is at its in-flight request budget (limits.max_in_flight_bytes); retry later",
    )
}

/// `valuetrace_ingest_in_flight_requests` up while a request is admitted.
struct InFlightGauge<'a>(&'a AppState);

impl<'a> InFlightGauge<'a> {
    fn new(state: &'a AppState) -> Self {
        state
            .metrics
            .add("valuetrace_ingest_in_flight_requests", &[], 1.0);
        InFlightGauge(state)
    }
}

impl Drop for InFlightGauge<'_> {
    fn drop(&mut self) {
        self.0
            .metrics
            .add("valuetrace_ingest_in_flight_requests", &[], -1.0);
    }
}

/// The JSON front-end's share: decompress within the budget, cut the body into events, then
/// the one ingest path.
fn process(
    state: &AppState,
    project: &str,
    format: BodyFormat,
    encoding: Encoding,
    raw: &[u8],
    reservation: &mut Reservation,
) -> Result<BatchResponse, ApiError> {
    let limits = &state.limits;
    // The reservation holds the body; a decoded copy is reserved while it grows, then the
    // parsed events, roughly the decoded size again.
    reservation.shrink_to(raw.len());
    let decoded = decompress(raw, encoding, limits.max_decompressed_bytes, &mut |more| {
        reservation.grow(more)
    })?;
    if !reservation.grow(decoded.len()) {
        return Err(in_flight_full());
    }
    if encoding != Encoding::Identity {
        state.metrics.add(
            "valuetrace_ingest_bytes_total",
            &[("project", project), ("stage", "decoded")],
            decoded.len() as f64,
        );
    }
    let items = split_events(&decoded, format, limits.max_batch_events)?
        .into_iter()
        .map(|item| match item {
            Ok(text) => Incoming::Json(text),
            Err(error) => Incoming::Refused {
                error,
                reason: "json",
            },
        })
        .collect();
    Ingestor::new(state).accept(project, items, (state.clock)())
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
    let decoded = decompress(raw, encoding, limits.max_decompressed_bytes, &mut |_| true)?;
    let items = split_events(&decoded, format, limits.max_batch_events)?;
    Ok(items
        .into_iter()
        .map(|item| item.map(str::to_owned))
        .collect())
}

/// Decompresses at most `limit` bytes: the output grows in steps, each first granted by
/// `reserve` (the request's in-flight budget; `false` answers 503), and reading stops one byte
/// past the limit, so memory stays bounded whatever the compression ratio.
fn decompress<'a>(
    raw: &'a [u8],
    encoding: Encoding,
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Cow<'a, [u8]>, ApiError> {
    const FIRST_STEP: usize = 256 << 10;
    let mut reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => return Ok(Cow::Borrowed(raw)),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(raw).map_err(|error| {
            ApiError::bad_request("bad_compression", format!("invalid zstd body: {error}"))
        })?),
    };
    let cap = limit.saturating_add(1);
    let mut decoded: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == decoded.len() {
            if decoded.len() >= cap {
                break;
            }
            let grow = decoded.len().max(FIRST_STEP).min(cap - decoded.len());
            if !reserve(grow) {
                return Err(in_flight_full());
            }
            decoded.resize(decoded.len() + grow, 0);
        }
        match reader.read(&mut decoded[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(ApiError::bad_request(
                    "bad_compression",
                    format!("could not decompress the body: {error}"),
                ));
            }
        }
    }
    decoded.truncate(filled);
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
    match format {
        BodyFormat::Ndjson => {
            // Lines are independent events: a line that is not UTF-8 is rejected alone.
            let mut items = Vec::new();
            let mut total = 0;
            for line in body.split(|&byte| byte == b'\n') {
                let item = std::str::from_utf8(line)
                    .map(str::trim)
                    .map_err(|error| format!("event is not UTF-8: {error}"));
                if item == Ok("") {
                    continue;
                }
                total += 1;
                if total <= max_events {
                    items.push(item);
                }
            }
            check_event_count(total, max_events)?;
            Ok(items)
        }
        BodyFormat::Json => {
            let text = std::str::from_utf8(body).map_err(|error| {
                ApiError::bad_request("invalid_utf8", format!("body is not UTF-8: {error}"))
            })?;
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
