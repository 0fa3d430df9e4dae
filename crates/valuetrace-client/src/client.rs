//! [`Client`]: the queue, the recorder and the sender wired together — what a host app needs in
//! three lines:
//!
//! ```no_run
//! # use valuetrace_client::{Client, ClientConfig, layer::Identity};
//! let client = Client::start(ClientConfig::new("http://127.0.0.1:7070", "ingest-key", "shop"),
//!     |_headers, _extensions| Identity::default());
//! let app: axum::Router = axum::Router::new()
//!     .route("/api/items/{id}", axum::routing::get(|| async { "item" }))
//!     .route_layer(client.layer());
//! // ... serve `app`; at exit:
//! client.shutdown(std::time::Duration::from_secs(5));
//! ```

use crate::layer::{Global, Identity, Recorder, ValuetraceLayer};
use crate::queue::{Counters, bounded};
use crate::sampling::SamplingPolicy;
use crate::sender::{
    AggregateSource, SenderConfig, SenderHandle, SenderStats, spawn_with_aggregates,
};
use axum::http::{Extensions, HeaderMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The service name every event carries.
    pub service: String,
    pub sender: SenderConfig,
    pub sampling: SamplingPolicy,
    /// Raw events the queue holds before it drops (and counts) new ones.
    pub queue_capacity: usize,
}

impl ClientConfig {
    pub fn new(url: &str, ingest_key: &str, service: &str) -> ClientConfig {
        ClientConfig {
            service: service.into(),
            sender: SenderConfig::new(url, ingest_key),
            sampling: SamplingPolicy::default(),
            queue_capacity: 10_000,
        }
    }
}

/// A snapshot of the client's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Raw events handed to the queue.
    pub enqueued: u64,
    /// Raw events dropped because the queue was full, or not built while the collector was
    /// unreachable (the breaker open).
    pub dropped_queue_full: u64,
    /// Events (raw or aggregate) the collector acknowledged.
    pub sent_events: u64,
    pub sent_batches: u64,
    pub retries: u64,
    /// Events dropped after their batch failed for good or while the breaker was open.
    pub dropped_undeliverable: u64,
    pub breaker_open: bool,
}

pub struct Client {
    recorder: &'static Recorder,
    sender: SenderHandle,
    queue: Arc<Counters>,
    sender_stats: Arc<SenderStats>,
}

impl Client {
    /// Starts the background sender; `identity` tells who made a request (from your auth). The
    /// recorder the layers share lives for the rest of the process ([`Recorder::leak`]): start
    /// one client per process.
    pub fn start(
        config: ClientConfig,
        identity: impl Fn(&HeaderMap, &Extensions) -> Identity + Send + Sync + 'static,
    ) -> Client {
        let (producer, receiver, queue) = bounded(config.queue_capacity);
        let recorder = Recorder::new(&config.service, config.sampling, producer, identity).leak();
        let source = AggregateSource {
            aggregator: recorder.aggregator.clone(),
            recorder: Some(recorder),
            service: config.service.clone(),
            id_prefix: recorder.id_prefix().to_owned(),
        };
        let sender = spawn_with_aggregates(receiver, config.sender, Some(source));
        let sender_stats = sender.stats.clone();
        recorder.set_gate(sender_stats.clone());
        Client {
            recorder,
            sender,
            queue,
            sender_stats,
        }
    }

    /// The tower layer; add it with `Router::route_layer` so the route template is known.
    pub fn layer(&self) -> ValuetraceLayer {
        ValuetraceLayer::new(self.recorder)
    }

    /// The zero-sized layer of the process's global recorder, making this client's recorder the
    /// global one unless another client's already is (one client per process is the usual
    /// case). On a handler (`get(handler.layer(client.global_layer()))`) it adds no allocation
    /// at all: axum boxes a clone of each layered handler per request, and a zero-sized one
    /// allocates nothing.
    pub fn global_layer(&self) -> ValuetraceLayer<Global> {
        self.recorder.set_global();
        ValuetraceLayer::global()
    }

    pub fn recorder(&self) -> &'static Recorder {
        self.recorder
    }

    pub fn stats(&self) -> ClientStats {
        stats_of(&self.queue, &self.sender_stats)
    }

    /// Sends what is queued and the last aggregates, returning within about `deadline`; the
    /// final counters.
    pub fn shutdown(self, deadline: Duration) -> ClientStats {
        let Client {
            sender,
            queue,
            sender_stats,
            ..
        } = self;
        sender.shutdown(deadline);
        stats_of(&queue, &sender_stats)
    }
}

fn stats_of(queue: &Counters, s: &SenderStats) -> ClientStats {
    ClientStats {
        enqueued: queue.enqueued.load(Ordering::Relaxed),
        dropped_queue_full: queue.dropped.load(Ordering::Relaxed),
        sent_events: s.sent_events.load(Ordering::Relaxed),
        sent_batches: s.sent_batches.load(Ordering::Relaxed),
        retries: s.retries.load(Ordering::Relaxed),
        dropped_undeliverable: s.dropped_events.load(Ordering::Relaxed),
        breaker_open: s.breaker_open.load(Ordering::Relaxed),
    }
}
