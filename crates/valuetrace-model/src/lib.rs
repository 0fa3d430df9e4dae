//! The valuetrace wire and domain model: the events clients send and the rules they must satisfy.
//!
//! This crate is a leaf (serde, and humantime for durations) so that client middleware can depend on it without pulling in
//! the server or the store.
//!
//! - [`event`]: the typed events ([`ApiCall`], [`Outcome`], [`ApiAggregate`]) in wire format v1; `Serialize` produces
//!   exactly what `POST /v1/batch` accepts.
//! - [`validate`]: turns one untrusted JSON value into a typed [`Event`], or a [`ValidationError`]
//!   naming the field and the rule that failed. The server calls it once per event.
//! - [`time`]: RFC 3339 / epoch-millisecond timestamps without a date crate.
//!
//! When you add a field: add it to the struct in `event.rs`, to the reader in `validate.rs` (with
//! its limit), to `docs/events.md`, and to the store's Arrow schema.

pub mod event;
pub mod mix;
pub mod pattern;
pub mod quantile;
pub mod time;
pub mod users;
pub mod validate;
pub mod wire;

pub use event::{
    ApiAggregate, ApiCall, Direction, Event, MAX_AGGREGATE_WINDOW_MS, Outcome, SCHEMA_VERSION,
};
pub use validate::{Limits, ValidationError, validate_event, validate_json};
