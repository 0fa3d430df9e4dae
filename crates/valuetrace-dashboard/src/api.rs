//! The dashboard reads the same JSON API that clients use, in process: each request goes through
//! the server's router (`tower::ServiceExt::oneshot`) with the session's read key, so the pages
//! get exactly the API's answers, key checks and error messages.
//!
//! Answers (and failures) are cached per key and URL: fresh for [`FRESH`]; after that, for up to
//! [`STALE_MAX`], the cached answer is served at once while one background request refreshes it
//! (stale-while-revalidate). An answer not in the cache is computed in the background and waited
//! for until the page's render budget runs out; past it the page shows the section as being
//! computed and reloads itself a moment later. So a page always renders within its budget, even
//! when an answer over a month of data takes seconds; signing in warms every page's default view.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tower::ServiceExt;

/// How long an answer is served without asking again.
pub const FRESH: Duration = Duration::from_secs(30);
/// How long a stale answer is still served (while it is refreshed in the background).
pub const STALE_MAX: Duration = Duration::from_secs(15 * 60);
const CACHE_ENTRIES: usize = 1024;
/// The status of a [`Failure`] that only means "not computed yet".
pub const PENDING: u16 = 0;

/// Why an answer could not be shown: the API's status and message ([`PENDING`]: still computing).
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }
}

pub type Answer = Result<Arc<Value>, Failure>;

type CacheKey = (String, String);

/// Answers by (key, URL) with the time they were computed, and the computations under way.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<CacheKey, (Instant, Answer)>>,
    computing: Mutex<HashSet<CacheKey>>,
    /// Woken whenever an answer lands.
    landed: Notify,
}

impl Cache {
    /// Forgets every answer (benchmarks measure cold renders with it).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

#[derive(Clone)]
pub struct Api {
    router: Router,
    memory: Arc<crate::Memory>,
}

impl Api {
    pub fn new(router: Router, memory: Arc<crate::Memory>) -> Api {
        Api { router, memory }
    }

    /// `GET path_and_query` with `key`, through the cache, waiting at most until `deadline` for
    /// an answer that is not cached (then a [`PENDING`] failure; the answer keeps computing).
    pub async fn get(&self, key: &str, path_and_query: &str, deadline: Instant) -> Answer {
        let cache_key = (key.to_owned(), path_and_query.to_owned());
        let asked = Instant::now();
        loop {
            let landed = self.memory.cache.landed.notified();
            tokio::pin!(landed);
            // Registered before looking, so an answer landing in between is not missed.
            landed.as_mut().enable();
            let cached = lock(&self.memory.cache.entries).get(&cache_key).cloned();
            match cached {
                Some((at, answer)) if at.elapsed() < FRESH || at >= asked => return answer,
                Some((at, answer)) if at.elapsed() < STALE_MAX && answer.is_ok() => {
                    self.compute_in_background(cache_key);
                    return answer;
                }
                _ => self.compute_in_background(cache_key.clone()),
            }
            let now = Instant::now();
            if now >= deadline || tokio::time::timeout(deadline - now, landed).await.is_err() {
                return Err(Failure {
                    status: PENDING,
                    message: "still being computed".into(),
                });
            }
        }
    }

    /// Starts computing `cache_key` unless that is already under way.
    fn compute_in_background(&self, cache_key: CacheKey) {
        if !lock(&self.memory.cache.computing).insert(cache_key.clone()) {
            return;
        }
        let api = self.clone();
        tokio::spawn(async move {
            let answer = api.fetch(&cache_key.0, &cache_key.1).await.map(Arc::new);
            {
                let mut entries = lock(&api.memory.cache.entries);
                if entries.len() >= CACHE_ENTRIES {
                    entries.retain(|_, (at, _)| at.elapsed() < FRESH);
                    if entries.len() >= CACHE_ENTRIES {
                        entries.clear();
                    }
                }
                entries.insert(cache_key.clone(), (Instant::now(), answer));
            }
            lock(&api.memory.cache.computing).remove(&cache_key);
            api.memory.cache.landed.notify_waiters();
        });
    }

    /// Whether `key` is a read key of `project` (asks the API a tiny question).
    pub async fn opens(&self, key: &str, project: &str) -> Result<(), Failure> {
        let path = format!(
            "/api/v1/projects/{}/endpoints?since=1m&limit=1",
            crate::filters::encode(project)
        );
        self.fetch(key, &path).await.map(|_| ())
    }

    /// `POST path_and_query` with `key`, never cached (an action, such as sending a test
    /// notification); the answer, or the API's status and message.
    pub async fn post(&self, key: &str, path_and_query: &str) -> Result<Value, Failure> {
        self.request(Method::POST, key, path_and_query).await
    }

    async fn fetch(&self, key: &str, path_and_query: &str) -> Result<Value, Failure> {
        self.request(Method::GET, key, path_and_query).await
    }

    async fn request(
        &self,
        method: Method,
        key: &str,
        path_and_query: &str,
    ) -> Result<Value, Failure> {
        let request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .map_err(|error| Failure {
                status: 400,
                message: format!("bad request URL `{path_and_query}`: {error}"),
            })?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|body| body.to_bytes())
            .unwrap_or_default();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == StatusCode::OK {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .or_else(|| value["message"].as_str())
            .map_or_else(|| format!("the API answered {status}"), str::to_owned);
        Err(Failure {
            status: status.as_u16(),
            message,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
