//! The outbound layer: wraps the host's HTTP client service (any tower `Service` over
//! `http::Request`, e.g. a hyper client or a tower stack around one) and records every call it
//! makes to a third party as `direction = outbound` with the `provider` name — into the same
//! aggregates and sampling as inbound calls, so integration health (success rate, p95, error
//! classes per provider) is exact.
//!
//! The route is the provider's endpoint template: an [`OutboundRoute`] request extension when the
//! caller sets one (`/v1/charges/{id}`), else the URI path with id-like segments (digits, UUIDs,
//! long hex or mixed tokens) replaced by `{id}` — never a raw path with ids in it. The call is
//! attributed to the user on whose behalf it is made when the request carries an [`Identity`]
//! extension. A transport error (no response) is recorded as status 599 with error type
//! `upstream_error`, a timeout as 504 `upstream_timeout` when the error says so.

use crate::layer::{Identity, Recorder};
use crate::recorder::Observed;
use axum::http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The provider's endpoint template for one outbound request (a request extension).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRoute(pub String);

#[derive(Clone)]
pub struct OutboundLayer {
    recorder: &'static Recorder,
    provider: Arc<str>,
}

impl OutboundLayer {
    /// Records calls made through the wrapped client as calls to `provider` (`stripe`).
    pub fn new(recorder: &'static Recorder, provider: &str) -> OutboundLayer {
        OutboundLayer {
            recorder,
            provider: provider.into(),
        }
    }
}

impl<S> tower::Layer<S> for OutboundLayer {
    type Service = OutboundService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutboundService {
            inner,
            recorder: self.recorder,
            provider: self.provider.clone(),
        }
    }
}

#[derive(Clone)]
pub struct OutboundService<S> {
    inner: S,
    recorder: &'static Recorder,
    provider: Arc<str>,
}

/// `/v1/charges/ch_3Nx9...` → `/v1/charges/{id}`: segments that look like ids become `{id}`.
pub fn template_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/').skip(1) {
        out.push('/');
        if looks_like_id(segment) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn looks_like_id(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    let hex = segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    !segment.is_empty()
        && (digits == segment.len()
            || (hex && segment.len() >= 16)
            || (digits > 0 && segment.len() >= 8 && segment.contains(['_', '-']))
            || digits * 3 >= segment.len().max(1) && segment.len() >= 6)
}

impl<S, B, R> tower::Service<Request<B>> for OutboundService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = OutboundFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = match request.extensions().get::<OutboundRoute>() {
            Some(route) => route.0.clone(),
            None => template_of(request.uri().path()),
        };
        let pending = Pending {
            started: crate::clock::now(),
            method: request.method().clone(),
            route,
            who: request
                .extensions()
                .get::<Identity>()
                .cloned()
                .unwrap_or_default(),
            recorder: self.recorder,
            provider: self.provider.clone(),
        };
        OutboundFuture {
            inner: self.inner.call(request),
            pending: Some(pending),
        }
    }
}

struct Pending {
    started: crate::clock::Stamp,
    method: axum::http::Method,
    route: String,
    who: Identity,
    recorder: &'static Recorder,
    provider: Arc<str>,
}

pin_project_lite::pin_project! {
    /// The client's response future, recording the call when it completes.
    pub struct OutboundFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, R, E> Future for OutboundFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => return Poll::Pending,
        };
        if let Some(p) = this.pending.take() {
            let latency_ms = p.started.elapsed_ms();
            let (status, error_type) = match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let class = match status {
                        429 => Some("rate_limited"),
                        504 => Some("upstream_timeout"),
                        500..=599 => Some("upstream_error"),
                        _ => None,
                    };
                    (status, class.map(str::to_owned))
                }
                Err(error) => {
                    let text = error.to_string().to_ascii_lowercase();
                    if text.contains("timed out") || text.contains("timeout") {
                        (504, Some("upstream_timeout".to_owned()))
                    } else {
                        (599, Some("upstream_error".to_owned()))
                    }
                }
            };
            p.recorder.record(
                Observed {
                    method: p.method.as_str(),
                    route: &p.route,
                    status,
                    latency_ms,
                    error_type,
                    provider: Some(&p.provider),
                },
                &p.who,
            );
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::bounded;
    use crate::sampling::SamplingPolicy;
    use axum::body::Body;
    use tower::{Layer, ServiceExt};
    use valuetrace_model::Direction;

    #[test]
    fn id_like_segments_become_templates() {
        assert_eq!(template_of("/v1/charges"), "/v1/charges");
        assert_eq!(template_of("/v1/charges/12345"), "/v1/charges/{id}");
        assert_eq!(
            template_of("/v1/payment_intents/pi_3NxK9a2eZvKYlo2C1/confirm"),
            "/v1/payment_intents/{id}/confirm"
        );
        assert_eq!(
            template_of("/orders/5f0c6a6e-8d3b-4c4e-9a0e-0e1f2a3b4c5d"),
            "/orders/{id}"
        );
        assert_eq!(template_of("/"), "/");
    }

    #[tokio::test]
    async fn records_outbound_calls_with_provider_status_and_transport_errors() {
        let (producer, receiver, _) = bounded(100);
        let policy = SamplingPolicy {
            default_weight: 1.0,
            ..SamplingPolicy::default()
        };
        let recorder =
            Recorder::new("billing", policy, producer, |_, _| Identity::default()).leak();
        // A fake HTTP client: 402 for /v1/charges/{id}, an error for /v1/refunds.
        let client = tower::service_fn(|request: Request<Body>| async move {
            if request.uri().path().starts_with("/v1/refunds") {
                return Err("connection reset by peer".to_owned());
            }
            let mut response = Response::new(Body::empty());
            *response.status_mut() = axum::http::StatusCode::PAYMENT_REQUIRED;
            Ok(response)
        });
        let client = OutboundLayer::new(recorder, "stripe").layer(client);
        let mut charge = Request::builder()
            .method("POST")
            .uri("https://api.stripe.com/v1/charges/987654")
            .body(Body::empty())
            .unwrap();
        charge.extensions_mut().insert(Identity {
            user_id: Some("u-1".into()),
            ..Identity::default()
        });
        let response = client.clone().oneshot(charge).await.unwrap();
        assert_eq!(response.status(), 402);
        let refund = Request::builder()
            .method("POST")
            .uri("https://api.stripe.com/v1/refunds")
            .body(Body::empty())
            .unwrap();
        assert!(client.oneshot(refund).await.is_err());
        let events: Vec<_> = receiver.try_iter().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].route, "/v1/charges/{id}");
        assert_eq!(events[0].status, 402);
        assert_eq!(events[0].direction, Direction::Outbound);
        assert_eq!(events[0].provider.as_deref(), Some("stripe"));
        assert_eq!(events[0].user_id.as_deref(), Some("u-1"));
        assert_eq!(
            (events[1].status, events[1].error_type.as_deref()),
            (599, Some("upstream_error"))
        );
        let aggregates = recorder.aggregator.drain();
        assert!(
            aggregates
                .iter()
                .all(|(key, _)| key.provider.as_deref() == Some("stripe"))
        );
        assert_eq!(aggregates.iter().map(|(_, a)| a.count).sum::<u64>(), 2);
    }
}
