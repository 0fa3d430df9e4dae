//! [`Recorder`]: what the layers record into. It counts each call in the exact aggregates,
//! decides whether its raw event is kept (business-weighted, deterministic per session), and
//! builds the kept events: for inbound calls off the request path, from the hand-off buffers
//! the sender drains ([`Recorder::process_handoff`]). A recorder lives for the process; the
//! layers find it through a [`RecorderSource`] (a `&'static Recorder`, or the zero-sized
//! [`Global`]).

use crate::aggregate::{Aggregator, CallKey};
use crate::handoff::Handoff;
use crate::layer::Identity;
use crate::queue::Producer;
use crate::sampling::{CallFacts, SamplingPolicy, stable_hash_bytes, threshold};
use axum::extract::MatchedPath;
use axum::http::{Extensions, HeaderMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use valuetrace_model::ApiCall;

type IdentityFn = dyn Fn(&HeaderMap, &Extensions) -> Identity + Send + Sync;

/// One finished call as the layers observed it.
pub(crate) struct Observed<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    pub error_type: Option<String>,
    /// The third party of an outbound call.
    pub provider: Option<&'a str>,
}

/// What the layers record into. A recorder lives as long as the process, like a global metrics
/// recorder or logger: the layers hold it as `&'static Recorder` (see [`Recorder::leak`]), so a
/// request copies a pointer instead of counting references (two atomic increments and two
/// decrements per request with an `Arc`).
pub struct Recorder {
    pub service: String,
    pub aggregator: Arc<Aggregator>,
    /// Immutable once the recorder exists (the aggregates memoize its route weights).
    policy: SamplingPolicy,
    producer: Producer<ApiCall>,
    pub(crate) identity: Box<IdentityFn>,
    sequence: AtomicU64,
    prefix: String,
    /// The sender's state, once a sender runs: while its breaker is open raw events are not
    /// even built (they could not be delivered); the aggregates keep counting.
    gate: std::sync::OnceLock<Arc<crate::sender::SenderStats>>,
    /// Kept calls the request threads handed over, for [`Recorder::process_handoff`].
    handoff: Handoff<Kept>,
}

/// A kept inbound call as the request thread hands it over, its event to be built off the
/// request path.
pub(crate) struct Kept {
    pub ended: crate::clock::Stamp,
    pub latency_ms: f64,
    pub rate: f64,
    pub status: u16,
    pub method: axum::http::Method,
    pub route: Option<MatchedPath>,
    pub error_type: Option<String>,
    pub who: Identity,
}

impl Recorder {
    pub fn new(
        service: &str,
        policy: SamplingPolicy,
        producer: Producer<ApiCall>,
        identity: impl Fn(&HeaderMap, &Extensions) -> Identity + Send + Sync + 'static,
    ) -> Recorder {
        crate::clock::warm_up();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Recorder {
            service: service.into(),
            aggregator: Arc::new(Aggregator::default()),
            policy,
            producer,
            identity: Box::new(identity),
            sequence: AtomicU64::new(0),
            gate: std::sync::OnceLock::new(),
            handoff: Handoff::default(),
            prefix: format!("{:x}-{:x}", std::process::id(), nanos as u64),
        }
    }

    /// The recorder for the rest of the process (it is never freed: a process has one per
    /// [`Client`](crate::Client), made once at start-up).
    pub fn leak(self) -> &'static Recorder {
        Box::leak(Box::new(self))
    }

    /// Ties the recorder to its sender: while the sender's breaker is open, raw events are
    /// dropped (and counted) before they are built.
    pub fn set_gate(&self, sender: Arc<crate::sender::SenderStats>) {
        let _ = self.gate.set(sender);
    }

    /// Unique to this recorder's process and start: the prefix of its event ids.
    pub fn id_prefix(&self) -> &str {
        &self.prefix
    }

    pub fn policy(&self) -> &SamplingPolicy {
        &self.policy
    }

    /// Builds and queues the events of the kept calls the request threads handed over since the
    /// last time (the sender calls this every few milliseconds; call it yourself before reading
    /// the queue of a recorder without a sender). Returns how many it built.
    pub fn process_handoff(&self) -> usize {
        let mut calls = 0;
        self.handoff.drain(|call| {
            calls += 1;
            self.queue_kept(call);
        });
        calls
    }

    /// Hands a kept inbound call to the sender thread; builds its event here when this thread's
    /// buffer is full. Out of line: the common path (a call sampled away) stays short.
    #[inline(never)]
    pub(crate) fn hand_off(&self, call: Kept) {
        if let Err(call) = self.handoff.push(call) {
            self.queue_kept(call);
        }
    }

    /// The event of a kept inbound call, built and queued.
    fn queue_kept(&self, call: Kept) {
        let age_ms = call.ended.elapsed_ms();
        let event = self.build_event(
            Observed {
                method: call.method.as_str(),
                route: call
                    .route
                    .as_ref()
                    .map_or("/(unmatched)", MatchedPath::as_str),
                status: call.status,
                latency_ms: call.latency_ms,
                error_type: call.error_type,
                provider: None,
            },
            &call.who,
            call.rate,
            age_ms,
        );
        self.producer.push(event);
    }

    /// Counts one call in the aggregates and decides whether its raw event is kept: `Some`
    /// (the sample rate) to keep it. Allocates nothing.
    pub(crate) fn decide(&self, call: &Observed<'_>, who: &Identity) -> Option<f64> {
        let route_weight = self.aggregator.record_with_memo(
            &CallKey {
                route: call.route,
                method: call.method,
                status: call.status,
                plan: who.plan.as_deref(),
                experiments: &who.experiments,
                provider: call.provider,
                user_id: who.user_id.as_deref(),
            },
            call.latency_ms,
            || self.policy.route_weight(call.method, call.route),
        );
        if self
            .gate
            .get()
            .is_some_and(|sender| sender.breaker_open.load(Ordering::Relaxed))
        {
            self.producer.count_drop();
            return None;
        }
        let facts = CallFacts {
            method: call.method,
            route: call.route,
            status: call.status,
            latency_ms: call.latency_ms,
            has_value: false,
            plan: who.plan.as_deref(),
            session_id: None,
            user_id: None,
            event_id: "",
        };
        let rate = self
            .policy
            .rate_with_weight(&facts, who.new_user, route_weight);
        // `SamplingPolicy::keep_of` on the session (else the user), from its bytes.
        let keep = if rate >= 1.0 {
            true
        } else if let Some(key) = who.session_id.as_ref().or(who.user_id.as_ref()) {
            stable_hash_bytes(key.as_bytes()) <= threshold(rate)
        } else {
            // Anonymous: sample per call by a per-thread sequence (no shared counter on the
            // request path).
            thread_local! {
                static ANONYMOUS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
            }
            // The cell's address tells threads apart.
            let n = ANONYMOUS.with(|n| {
                n.set(n.get().wrapping_add(1));
                n.get() ^ (std::ptr::from_ref(n) as u64).rotate_left(32)
            });
            crate::sampling::mix(n) <= threshold(rate)
        };
        keep.then_some(rate)
    }

    /// The raw event of a kept call that ended `age_ms` ago.
    pub(crate) fn build_event(
        &self,
        call: Observed<'_>,
        who: &Identity,
        rate: f64,
        age_ms: f64,
    ) -> ApiCall {
        let Observed {
            method,
            route,
            status,
            latency_ms,
            error_type,
            provider,
        } = call;
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
            - age_ms as i64;
        ApiCall {
            schema_version: 1,
            event_id: format!("{}-{sequence}", self.prefix),
            timestamp,
            service: self.service.clone(),
            method: method.into(),
            route: route.into(),
            status,
            latency_ms,
            user_id: who.user_id.clone().map(String::from),
            account_id: who.account_id.clone().map(String::from),
            session_id: who.session_id.clone().map(String::from),
            plan: who.plan.clone().map(String::from),
            segment: who.segment.clone().map(String::from),
            experiments: who.experiments.clone(),
            error_type,
            sample_rate: (rate < 1.0).then_some(rate),
            // Counted in the aggregates: health answers take counts from there.
            aggregated: true,
            sdk: Some(concat!("valuetrace-rust/", env!("CARGO_PKG_VERSION")).into()),
            direction: if provider.is_some() {
                valuetrace_model::Direction::Outbound
            } else {
                valuetrace_model::Direction::Inbound
            },
            provider: provider.map(str::to_owned),
            ..Default::default()
        }
    }

    /// Records one call inline: into the aggregates always, its event onto the queue when kept.
    pub(crate) fn record(&self, call: Observed<'_>, who: &Identity) {
        if let Some(rate) = self.decide(&call, who) {
            let event = self.build_event(call, who, rate, 0.0);
            self.producer.push(event);
        }
    }
}

/// Where a layer finds the recorder it records into: a recorder (`&'static Recorder`, 8 bytes)
/// or the process's global one ([`Global`], zero-sized).
pub trait RecorderSource: Clone + Send + Sync + 'static {
    fn recorder(&self) -> Option<&'static Recorder>;
}

impl RecorderSource for &'static Recorder {
    #[inline]
    fn recorder(&self) -> Option<&'static Recorder> {
        Some(self)
    }
}

/// The process's global recorder (set by [`Recorder::set_global`] or
/// [`Client::global_layer`](crate::Client::global_layer)). A layer that finds it through this
/// zero-sized source is zero-sized too: axum clones a layered handler into a box on every
/// request, and a box of a zero-sized value allocates nothing. Until a global recorder is set
/// the layer records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Global;

static GLOBAL: std::sync::OnceLock<&'static Recorder> = std::sync::OnceLock::new();

impl RecorderSource for Global {
    #[inline]
    fn recorder(&self) -> Option<&'static Recorder> {
        GLOBAL.get().copied()
    }
}

impl Recorder {
    /// Makes this the process's global recorder, unless one already is; whether it now is.
    pub fn set_global(&'static self) -> bool {
        std::ptr::eq(*GLOBAL.get_or_init(|| self), self)
    }
}
