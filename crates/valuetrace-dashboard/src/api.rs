//! The dashboard reads the same JSON API that clients use, in process: each request goes through
//! the server's router (`tower::ServiceExt::oneshot`) with the session's read key, so the pages
//! get exactly the API's answers, key checks and error messages.
//!
//! Answers are cached per key and URL: fresh for [`FRESH`]; after that, for up to [`STALE_MAX`],
//! the cached answer is served at once while one background request refreshes it
//! (stale-while-revalidate), so a page someone is looking at renders from memory even when its
//! answers take a second to compute over a month of data. Signing in warms the default view of
//! every page the same way.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// How long an answer is served without asking again.
pub const FRESH: Duration = Duration::from_secs(30);
/// How long a stale answer is still served (while it is refreshed in the background).
pub const STALE_MAX: Duration = Duration::from_secs(15 * 60);
const CACHE_ENTRIES: usize = 1024;

/// Why an answer could not be shown: the API's status and message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

pub type Answer = Result<Arc<Value>, Failure>;

type CacheKey = (String, String);

/// Answers by (key, URL) with the time they were computed, and the refreshes under way.
#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<CacheKey, (Instant, Arc<Value>)>>,
    refreshing: Mutex<HashSet<CacheKey>>,
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

    /// `GET path_and_query` with `key`, through the cache (see the module documentation).
    pub async fn get(&self, key: &str, path_and_query: &str) -> Answer {
        let cache_key = (key.to_owned(), path_and_query.to_owned());
        let cached = lock(&self.memory.cache.entries).get(&cache_key).cloned();
        if let Some((at, value)) = cached {
            let age = at.elapsed();
            if age < FRESH {
                return Ok(value);
            }
            if age < STALE_MAX {
                self.refresh_in_background(cache_key);
                return Ok(value);
            }
        }
        self.fetch_and_keep(cache_key).await
    }

    async fn fetch_and_keep(&self, cache_key: CacheKey) -> Answer {
        let value = Arc::new(self.fetch(&cache_key.0, &cache_key.1).await?);
        let mut entries = lock(&self.memory.cache.entries);
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < FRESH);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(cache_key, (Instant::now(), value.clone()));
        Ok(value)
    }

    fn refresh_in_background(&self, cache_key: CacheKey) {
        if !lock(&self.memory.cache.refreshing).insert(cache_key.clone()) {
            return; // already under way
        }
        let api = self.clone();
        tokio::spawn(async move {
            let _ = api.fetch_and_keep(cache_key.clone()).await;
            lock(&api.memory.cache.refreshing).remove(&cache_key);
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

    async fn fetch(&self, key: &str, path_and_query: &str) -> Result<Value, Failure> {
        let request = Request::get(path_and_query)
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
