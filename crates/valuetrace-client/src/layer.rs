//! The tower `Layer` for axum (and any tower stack): records every request's route template,
//! method, status, latency and the caller's identity through its [`Recorder`] (exact
//! aggregates, the sampling decision; a kept call's event is built off the request path) — no
//! I/O, no await and no allocation on the request path.
//!
//! The route is axum's `MatchedPath` (add the layer with `Router::route_layer` so it is set);
//! requests that matched no route are recorded as `/(unmatched)`, never as their raw path. The
//! caller's identity comes from a user-supplied function over the request's headers and
//! extensions; a handler can name the error class of a failure by inserting [`ErrorType`] into
//! the response extensions.
//!

pub use crate::recorder::{Global, Recorder, RecorderSource};
use crate::recorder::{Kept, Observed};
pub use crate::small_string::SmallString;
use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, Response};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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

/// A header's value as an identity string, for identity extractors:
/// `user_id: header(headers, &USER_HEADER)`. It checks the bytes as UTF-8 (eight at a time;
/// `HeaderValue::to_str` checks them one by one) and keeps up to 38 inline, so it allocates
/// nothing. Pass a `static` [`HeaderName`](axum::http::HeaderName): a `&str` name is parsed and
/// lowercased on every call.
pub fn header<K: axum::http::header::AsHeaderName>(
    headers: &HeaderMap,
    name: K,
) -> Option<SmallString> {
    let value = headers.get(name)?;
    std::str::from_utf8(value.as_bytes())
        .ok()
        .map(SmallString::new)
}

/// Set on a response (`response.extensions_mut().insert(ErrorType("validation".into()))`) to
/// name the error class of a failed call.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorType(pub String);

/// The tower layer. Add it with `Router::route_layer` (every route, one line; axum boxes each
/// layered route) or on a handler with `Handler::layer` (not boxed: cheaper per request).
#[derive(Clone)]
pub struct ValuetraceLayer<R = &'static Recorder> {
    recorder: R,
}

impl ValuetraceLayer {
    /// The layer of `recorder`. Kept calls' events are built when something calls
    /// [`Recorder::process_handoff`]: the [`Client`](crate::Client)'s sender does; with a
    /// recorder of your own, call it every few milliseconds.
    pub fn new(recorder: &'static Recorder) -> ValuetraceLayer {
        ValuetraceLayer { recorder }
    }
}

impl ValuetraceLayer<Global> {
    /// The zero-sized layer of the process's global recorder.
    pub fn global() -> ValuetraceLayer<Global> {
        ValuetraceLayer { recorder: Global }
    }
}

impl<S, R: RecorderSource> tower::Layer<S> for ValuetraceLayer<R> {
    type Service = ValuetraceService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ValuetraceService {
            inner,
            recorder: self.recorder.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ValuetraceService<S, R = &'static Recorder> {
    inner: S,
    recorder: R,
}

impl<S, B, R, Src> tower::Service<Request<B>> for ValuetraceService<S, Src>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    Src: RecorderSource,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(recorder) = self.recorder.recorder() else {
            return RecordedFuture {
                inner: self.inner.call(request),
                pending: None,
            };
        };
        let started = crate::clock::now();
        // A `Method` clone and a `MatchedPath` clone (an `Arc<str>`) allocate nothing.
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let who = (recorder.identity)(request.headers(), request.extensions());
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

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => return Poll::Pending,
        };
        if let Some(p) = this.pending.take() {
            let ended = crate::clock::now();
            let latency_ms = p.started.ms_until(ended);
            let status = match &result {
                Ok(response) => response.status().as_u16(),
                Err(_) => 500,
            };
            let route = p.route.as_ref().map_or("/(unmatched)", MatchedPath::as_str);
            let observed = Observed {
                method: p.method.as_str(),
                route,
                status,
                latency_ms,
                error_type: None,
                provider: None,
            };
            if let Some(rate) = p.recorder.decide(&observed, &p.who) {
                // The event is built off the request path; when this thread's hand-off buffer
                // is full, here.
                let error_type = match &result {
                    Ok(response) => response
                        .extensions()
                        .get::<ErrorType>()
                        .map(|e| e.0.clone()),
                    Err(_) => Some("internal".to_owned()),
                };
                p.recorder.hand_off(Kept {
                    ended,
                    latency_ms,
                    rate,
                    status,
                    method: p.method,
                    route: p.route,
                    error_type,
                    who: p.who,
                });
            } else if p.who.experiments.is_empty() {
                // An empty `BTreeMap` owns no memory, yet dropping one walks an empty iterator
                // (~50 instructions): skip it on the common path.
                std::mem::forget(p.who.experiments);
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::bounded;
    use crate::sampling::SamplingPolicy;
    use axum::Router;
    use axum::body::Body;
    use axum::http::Extensions;
    use axum::routing::get;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use tower::ServiceExt;
    use valuetrace_model::ApiCall;

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

    /// A recorder keeping every call, over a queue of `capacity`.
    fn keeping_all(
        capacity: usize,
    ) -> (
        &'static Recorder,
        std::sync::mpsc::Receiver<ApiCall>,
        Arc<crate::queue::Counters>,
    ) {
        let (producer, receiver, counters) = bounded(capacity);
        let policy = SamplingPolicy {
            default_weight: 1.0,
            ..SamplingPolicy::default()
        };
        (
            Recorder::new("shop", policy, producer, identity).leak(),
            receiver,
            counters,
        )
    }

    #[tokio::test]
    async fn records_route_templates_statuses_and_identity_never_raw_paths() {
        let (recorder, receiver, counters) = keeping_all(100);
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
        // Handed over by the request path: nothing is recorded until they are processed.
        assert!(receiver.try_iter().next().is_none());
        recorder.process_handoff();
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
    async fn a_layer_on_the_handler_records_the_route_template_too() {
        use axum::handler::Handler;
        let (recorder, receiver, _) = keeping_all(100);
        let item = || async { "ok" };
        let app: Router = Router::new()
            .route(
                "/items/{id}",
                get(item.layer(ValuetraceLayer::new(recorder))),
            )
            .with_state(());
        let request = Request::builder()
            .uri("/items/42")
            .header("x-user", "bob")
            .body(Body::empty())
            .expect("request");
        app.oneshot(request).await.expect("response");
        recorder.process_handoff();
        let calls: Vec<ApiCall> = receiver.try_iter().collect();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].route, "/items/{id}");
        assert_eq!(calls[0].user_id.as_deref(), Some("bob"));
    }

    /// The only test of this binary that sets the global recorder.
    #[tokio::test]
    async fn the_global_layer_records_into_the_global_recorder_once_there_is_one() {
        use axum::handler::Handler;
        let (recorder, receiver, _) = keeping_all(100);
        let item = || async { "ok" };
        let app: Router = Router::new()
            .route("/items/{id}", get(item.layer(ValuetraceLayer::global())))
            .with_state(());
        let request = || {
            Request::builder()
                .uri("/items/42")
                .body(Body::empty())
                .expect("request")
        };
        app.clone().oneshot(request()).await.expect("response");
        assert_eq!(
            recorder.aggregator.drain().len(),
            0,
            "no global recorder yet"
        );
        assert!(recorder.set_global());
        let (other, _, _) = bounded(1);
        let second = Recorder::new("other", SamplingPolicy::default(), other, identity).leak();
        assert!(!second.set_global(), "the first global recorder stays");
        app.oneshot(request()).await.expect("response");
        recorder.process_handoff();
        assert_eq!(recorder.aggregator.drain()[0].1.count, 1);
        assert_eq!(receiver.try_iter().count(), 1);
        assert_eq!(std::mem::size_of::<ValuetraceLayer<Global>>(), 0);
    }

    #[test]
    fn header_copies_utf8_values_and_refuses_the_rest() {
        let mut headers = HeaderMap::new();
        let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
        headers.insert("x-user", uuid.parse().expect("value"));
        headers.insert(
            "x-bad",
            axum::http::HeaderValue::from_bytes(&[0xff, 0xfe]).expect("opaque bytes"),
        );
        let user = header(&headers, "x-user").expect("present");
        assert_eq!(user, uuid);
        assert!(user.is_inline());
        assert_eq!(header(&headers, "x-bad"), None);
        assert_eq!(header(&headers, "x-missing"), None);
    }

    #[tokio::test]
    async fn a_full_queue_drops_events_but_aggregates_stay_exact() {
        let (recorder, _receiver, counters) = keeping_all(2);
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
        recorder.process_handoff();
        assert_eq!(counters.enqueued.load(Ordering::Relaxed), 2);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 8);
        assert_eq!(recorder.aggregator.drain()[0].1.count, 10);
    }
}
