//! The dashboard reads the same JSON API that clients use, in process: each request goes through
//! the server's router (`tower::ServiceExt::oneshot`) with the session's read key, so the pages
//! get exactly the API's answers, key checks and error messages. Answers are cached briefly per
//! key and URL so that moving between pages and filters does not recompute them.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// How long an answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
const CACHE_ENTRIES: usize = 512;

/// Why an answer could not be shown: the API's status and message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

pub type Answer = Result<Arc<Value>, Failure>;

type Entries = HashMap<(String, String), (Instant, Arc<Value>)>;

/// Answers by (key, URL), reused for [`CACHE_TTL`].
#[derive(Default)]
pub struct Cache(Mutex<Entries>);

pub struct Api {
    router: Router,
    memory: Arc<crate::Memory>,
}

impl Api {
    pub fn new(router: Router, memory: Arc<crate::Memory>) -> Api {
        Api { router, memory }
    }

    /// `GET path_and_query` with `key`; cached for [`CACHE_TTL`].
    pub async fn get(&self, key: &str, path_and_query: &str) -> Answer {
        let cache_key = (key.to_owned(), path_and_query.to_owned());
        if let Some((at, value)) = self.lock().get(&cache_key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(value.clone());
        }
        let value = Arc::new(self.fetch(key, path_and_query).await?);
        let mut cache = self.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(cache_key, (Instant::now(), value.clone()));
        Ok(value)
    }

    /// Whether `key` is a read key of `project` (asks the API a tiny question).
    pub async fn opens(&self, key: &str, project: &str) -> Result<(), Failure> {
        let path = format!(
            "/api/v1/projects/{}/endpoints?since=1m&limit=1",
            crate::filters::encode(project)
        );
        self.fetch(key, &path).await.map(|_| ())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.memory
            .cache
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
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
