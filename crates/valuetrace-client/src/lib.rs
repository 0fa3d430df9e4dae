//! The valuetrace client middleware and its building blocks: what the host application links.
//! Of the workspace it depends on `valuetrace-model` only, never on the server or the store.
//!
//! - [`aggregate`]: exact per-(route, method, status class, plan, variant) counts and latency
//!   histograms of every request, sampled or not.
//! - [`sampling`]: which raw `api_call` events to keep, by business weight, deterministically per
//!   user or session (so journeys stay whole), never dropping errors, slow calls or value-carrying
//!   calls; each kept event carries its `sample_rate`.
//! - [`queue`]: the hand-off from the request path: a bounded queue where a full queue drops and
//!   counts instead of waiting.
//! - [`breaker`]: the sender's circuit breaker (closed → open after N failures → half-open probe
//!   after a cool-down), with an injected clock.
//! - [`backoff`]: bounded exponential backoff with full jitter for retries.
//! - [`layer`]: the tower `Layer` for axum: route template (never a raw path), status, latency,
//!   identity and error class, recorded through a [`recorder`].
//! - [`recorder`]: counts each call in the aggregates and decides its sample on the request
//!   path; builds the kept calls' events (off the request path for inbound calls).
//! - [`handoff`]: how the layer leaves building the kept calls' events to the sender thread:
//!   each request thread appends its kept calls to its own buffer (an uncontended lock and a
//!   copy), the sender builds and queues their events every few milliseconds.
//!
//! - [`sender`]: the background thread that batches, gzips and POSTs to `/v1/batch` with retries,
//!   the breaker, and a flush on shutdown (tested against the real server in
//!   `crates/valuetrace-server/tests/client.rs`).
//!
//! - [`client`]: [`Client`], all of the above wired together (the usual entry point).
//!
//! Every flush interval the sender ships the drained aggregates as `api_aggregate` events; the
//! raw events it sends are marked `aggregated`, so the server's health answers count them once
//! (from the aggregates) while business answers re-weight the sampled raw events.
//!
//! - [`small_string`]: the identity's strings, inline up to 38 bytes (no allocation per request).
//!
//! - [`outbound`]: the same for the host's own calls to third parties (a layer around its HTTP
//!   client): `direction = outbound` with the provider's name and endpoint template.
//!
//! Not built: TLS in the sender (it speaks plain `http://`; a local collector or a
//! TLS-terminating sidecar is the expected deployment).

pub mod aggregate;
pub mod backoff;
pub mod breaker;
pub mod client;
pub mod clock;
pub mod handoff;
pub mod layer;
pub mod outbound;
pub mod queue;
pub mod recorder;
pub mod sampling;
pub mod sender;
pub mod small_string;
pub mod users;

pub use client::{Client, ClientConfig, ClientStats};
