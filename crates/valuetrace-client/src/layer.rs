//! The tower `Layer` for axum (and any tower stack): records every request's route template,
//! method, status, latency and the caller's identity into the [`Aggregator`], samples the raw
//! event with the [`SamplingPolicy`] and pushes it onto the bounded [`queue`](crate::queue) — no
//! I/O and no await on the request path; a full queue drops and counts.
//!
//! The route is axum's `MatchedPath` (add the layer with `Router::route_layer` so it is set);
//! requests that matched no route are recorded as `/(unmatched)`, never as their raw path. The
//! caller's identity comes from a user-supplied function over the request's headers and
//! extensions; a handler can name the error class of a failure by inserting [`ErrorType`] into
//! the response extensions.
//!

use crate::aggregate::{Aggregator, CallKey};
use crate::queue::Producer;
use crate::sampling::{CallFacts, SamplingPolicy};
pub use crate::small_string::SmallString;
use axum::extract::MatchedPath;
use axum::http::{Extensions, HeaderMap, Request, Response};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use valuetrace_model::ApiCall;

/// Who made the request, as the host knows it. Its strings are [`SmallString`]s: an extractor
/// that copies ids of up to 38 bytes out of the headers (`.map(Into::into)` of a `&str`)
/// allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub user_id: Option<SmallString>,
    pub account_id: Option<SmallString>,
    pub session_id: Option<SmallString>,
    pub plan: Option<SmallString>,
    pub segment: Option<SmallString>,
    pub experiments: BTreeMap<String, String>,
    /// The user is in its first days (sampled twice as often).
    pub new_user: bool,
}

/// Set on a response (`response.extensions_mut().insert(ErrorType("validation".into()))`) to
/// name the error class of a failed call.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorType(pub String);

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
    identity: Box<IdentityFn>,
    sequence: AtomicU64,
    prefix: String,
    /// The sender's state, once a sender runs: while its breaker is open raw events are not
    /// even built (they could not be delivered); the aggregates keep counting.
    gate: std::sync::OnceLock<Arc<crate::sender::SenderStats>>,
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

    /// Records one finished call: into the aggregates always, onto the queue when sampled.
    pub(crate) fn record(&self, call: Observed<'_>, who: &Identity) {
        let Observed {
            method,
            route,
            status,
            latency_ms,
            error_type,
            provider,
        } = call;
        let route_weight = self.aggregator.record_with_memo(
            &CallKey {
                route,
                method,
                status,
                plan: who.plan.as_deref(),
                experiments: &who.experiments,
                provider,
            },
            latency_ms,
            || self.policy.route_weight(method, route),
        );
        if self
            .gate
            .get()
            .is_some_and(|sender| sender.breaker_open.load(Ordering::Relaxed))
        {
            self.producer.count_drop();
            return;
        }
        // Decide before building the event: a dropped call allocates nothing here.
        let facts = CallFacts {
            method,
            route,
            status,
            latency_ms,
            has_value: false,
            plan: who.plan.as_deref(),
            session_id: who.session_id.as_deref(),
            user_id: who.user_id.as_deref(),
            event_id: "",
        };
        let rate = self
            .policy
            .rate_with_weight(&facts, who.new_user, route_weight);
        let keep = if rate >= 1.0 {
            true
        } else if facts.session_id.is_none() && facts.user_id.is_none() {
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
            crate::sampling::mix(n) <= (rate * u64::MAX as f64) as u64
        } else {
            self.policy.keep_of(&facts, rate)
        };
        if !keep {
            return;
        }
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let call = ApiCall {
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
        };
        self.producer.push(call);
    }
}

#[derive(Clone)]
pub struct ValuetraceLayer {
    recorder: &'static Recorder,
}

impl ValuetraceLayer {
    pub fn new(recorder: &'static Recorder) -> ValuetraceLayer {
        ValuetraceLayer { recorder }
    }
}

impl<S> tower::Layer<S> for ValuetraceLayer {
    type Service = ValuetraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ValuetraceService {
            inner,
            recorder: self.recorder,
        }
    }
}

#[derive(Clone)]
pub struct ValuetraceService<S> {
    inner: S,
    recorder: &'static Recorder,
}

impl<S, B, R> tower::Service<Request<B>> for ValuetraceService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = crate::clock::now();
        // A `Method` clone and a `MatchedPath` clone (an `Arc<str>`) allocate nothing.
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let who = (self.recorder.identity)(request.headers(), request.extensions());
        let recorder = self.recorder;
        let future = self.inner.call(request);
        RecordedFuture {
            inner: future,
            pending: Some(Pending {
                started,
                method,
                route,
                who,
                recorder,
            }),
        }
    }
}

/// What the response future needs to record the call once the inner service answers.
struct Pending {
    started: crate::clock::Stamp,
    method: axum::http::Method,
    route: Option<MatchedPath>,
    who: Identity,
    recorder: &'static Recorder,
}

pin_project_lite::pin_project! {
    /// The inner service's future, recording the call when it completes (no boxing: the request
    /// path allocates no future of its own).
    pub struct RecordedFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, R, E> Future for RecordedFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => return Poll::Pending,
        };
        // Read in place and dropped after: moving the pending record out would copy it.
        if let Some(p) = this.pending.as_ref() {
            let latency_ms = p.started.elapsed_ms();
            let (status, error_type) = match &result {
                Ok(response) => (
                    response.status().as_u16(),
                    response
                        .extensions()
                        .get::<ErrorType>()
                        .map(|e| e.0.clone()),
                ),
                Err(_) => (500, Some("internal".to_owned())),
            };
            let route = p.route.as_ref().map_or("/(unmatched)", MatchedPath::as_str);
            p.recorder.record(
                Observed {
                    method: p.method.as_str(),
                    route,
                    status,
                    latency_ms,
                    error_type,
                    provider: None,
                },
                &p.who,
            );
        }
        *this.pending = None;
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::bounded;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn identity(headers: &HeaderMap, _: &Extensions) -> Identity {
        Identity {
            user_id: headers
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .map(Into::into),
            plan: Some("pro".into()),
            ..Identity::default()
        }
    }

    #[tokio::test]
    async fn records_route_templates_statuses_and_identity_never_raw_paths() {
        let (producer, receiver, counters) = bounded(100);
        let policy = SamplingPolicy {
            default_weight: 1.0,
            ..SamplingPolicy::default()
        };
        let recorder = Recorder::new("shop", policy, producer, identity).leak();
        let app = Router::new()
            .route("/items/{id}", get(|| async { "ok" }))
            .route(
                "/fail",
                get(|| async {
                    let mut response = Response::new(Body::from("no"));
                    *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
                    response
                        .extensions_mut()
                        .insert(ErrorType("validation".into()));
                    response
                }),
            )
            .route_layer(ValuetraceLayer::new(recorder));
        for uri in ["/items/1", "/items/2", "/fail"] {
            let request = Request::builder()
                .uri(uri)
                .header("x-user", "alice")
                .body(Body::empty())
                .expect("request");
            app.clone().oneshot(request).await.expect("response");
        }
        let calls: Vec<ApiCall> = receiver.try_iter().collect();
        let routes: Vec<(&str, u16)> = calls.iter().map(|c| (c.route.as_str(), c.status)).collect();
        assert_eq!(
            routes,
            vec![("/items/{id}", 200), ("/items/{id}", 200), ("/fail", 400)]
        );
        assert_eq!(calls[2].error_type.as_deref(), Some("validation"));
        assert_eq!(calls[0].user_id.as_deref(), Some("alice"));
        assert_ne!(calls[0].event_id, calls[1].event_id);
        let aggregates = recorder.aggregator.drain();
        assert_eq!(aggregates.iter().map(|(_, a)| a.count).sum::<u64>(), 3);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_events_but_aggregates_stay_exact() {
        let (producer, _receiver, counters) = bounded(2);
        let policy = SamplingPolicy {
            default_weight: 1.0,
            ..SamplingPolicy::default()
        };
        let recorder = Recorder::new("shop", policy, producer, identity).leak();
        let app = Router::new()
            .route("/a", get(|| async { "ok" }))
            .route_layer(ValuetraceLayer::new(recorder));
        for _ in 0..10 {
            let request = Request::builder()
                .uri("/a")
                .body(Body::empty())
                .expect("request");
            app.clone().oneshot(request).await.expect("response");
        }
        assert_eq!(counters.enqueued.load(Ordering::Relaxed), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 8);
        assert_eq!(recorder.aggregator.drain()[0].1.count, 10);
    }
}
