//! The product managers' dashboard: six server-rendered pages (API Business Health, User Journey,
//! Growth Engineering, Errors & Integrations, Alerts, Data Quality) and an endpoint drill-down,
//! served at `/` next to the JSON API.
//!
//! - [`api`]: answers come from the JSON API itself, called in process with the session's read
//!   key (same checks, same numbers), cached for a few seconds.
//! - [`session`]: the login form checks a read key and sets an HttpOnly cookie holding a random
//!   session id; every page needs one for its project.
//! - [`filters`]: time range and slice, kept in the URL.
//! - [`layout`], [`chart`], [`format`](mod@format): the page shell, inline SVG charts with hover titles, and
//!   numbers as people read them. Markup is maud (compile-checked); no JavaScript build step and
//!   pages work without JavaScript.
//! - [`pages`]: one module per page.
//! - [`export`]: every table's CSV download (`?…&format=csv&table=<id>`), cut from the page
//!   itself so it holds exactly the rows the table shows.

pub mod api;
pub mod chart;
pub mod export;
pub mod filters;
pub mod format;
pub mod layout;
pub mod pages;
pub mod session;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use filters::{Filters, encode};
use maud::html;
use serde::Deserialize;
use session::{COOKIE, Session, Sessions};

use std::sync::Arc;

/// What the dashboard remembers across requests (and across routers: the server builds one
/// router per connection in tests): sessions and the answer cache.
#[derive(Default)]
pub struct Memory {
    pub sessions: Sessions,
    pub cache: api::Cache,
    /// How long a page waits for answers that are not cached (µs; 0: [`RENDER_BUDGET`]).
    budget_us: std::sync::atomic::AtomicU64,
}

/// How long a page waits for uncached answers before it renders what it has (the rest shows as
/// being computed, and the page reloads itself).
pub const RENDER_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

impl Memory {
    pub fn render_budget(&self) -> std::time::Duration {
        match self.budget_us.load(std::sync::atomic::Ordering::Relaxed) {
            0 => RENDER_BUDGET,
            us => std::time::Duration::from_micros(us),
        }
    }

    /// Tests that must see every answer set a long budget.
    pub fn set_render_budget(&self, budget: std::time::Duration) {
        self.budget_us.store(
            (budget.as_micros() as u64).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

pub struct Dashboard {
    pub api: api::Api,
    pub memory: Arc<Memory>,
}

/// The dashboard's routes; `api` is the server's JSON API router (called in process).
pub fn router(api: Router, memory: Arc<Memory>) -> Router {
    let state = Arc::new(Dashboard {
        api: api::Api::new(api, memory.clone()),
        memory,
    });
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/p/{project}/{page}", get(page))
        .route("/p/{project}/alerts/test", post(pages::alerts::send_test))
        .with_state(state)
}

fn session(state: &Dashboard, headers: &HeaderMap) -> Option<(String, Session)> {
    let header = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = session::cookie(header, COOKIE)?;
    state.memory.sessions.get(id).map(|s| (id.to_owned(), s))
}

async fn home(State(state): State<Arc<Dashboard>>, headers: HeaderMap) -> Redirect {
    match session(&state, &headers) {
        Some((_, s)) => Redirect::to(&format!("/p/{}/health", encode(&s.project))),
        None => Redirect::to("/login"),
    }
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    project: String,
    /// Prefills the key (the demo prints such a link; the key is still posted by the form).
    #[serde(default)]
    key: String,
}

async fn login_form(Query(query): Query<LoginQuery>) -> Html<String> {
    Html(login_page(&query.project, &query.key, &query.next, None).into_string())
}

fn login_page(project: &str, key: &str, next: &str, problem: Option<&str>) -> maud::Markup {
    layout::bare(
        "Sign in to valuetrace",
        html! {
            p { "Enter your project and one of its " strong { "read keys" } " (from the server's configuration, or printed by " code { "valuetrace demo" } ")." }
            @if let Some(problem) = problem {
                div.error role="alert" { (problem) }
            }
            form.stack method="post" action="/login" {
                label { "Project" input type="text" name="project" value=(project) required autocomplete="username"; }
                label { "Read key" input type="password" name="key" value=(key) required autocomplete="current-password"; }
                input type="hidden" name="next" value=(next);
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    project: String,
    key: String,
    #[serde(default)]
    next: String,
}

async fn login(State(state): State<Arc<Dashboard>>, Form(form): Form<LoginForm>) -> Response {
    let project = form.project.trim();
    let key = form.key.trim();
    if let Err(failure) = state.api.opens(key, project).await {
        let problem = match failure.status {
            401 => "That is not a read key of this server.".to_owned(),
            404 => format!("That key does not open project `{project}`."),
            _ => format!("Cannot sign in: {}", failure.message),
        };
        let page = login_page(project, "", &form.next, Some(&problem)).into_string();
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let id = state.memory.sessions.create(project, key);
    warm(state.api.clone(), project.to_owned(), key.to_owned());
    let prefix = format!("/p/{}/", encode(project));
    // Only a page of this project (never another site) is a valid `next`.
    let target = if form.next.starts_with(&prefix) {
        form.next.clone()
    } else {
        format!("{prefix}health")
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        session::LIFETIME.as_secs()
    );
    let mut response = Redirect::to(&target).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Computes the default view of every page in the background, so the first visits render from
/// the cache.
fn warm(api: api::Api, project: String, key: String) {
    tokio::spawn(async move {
        let (filters, params) = (Filters::default(), std::collections::HashMap::new());
        let ctx = pages::Ctx {
            api: &api,
            key: &key,
            project: &project,
            filters: &filters,
            params: &params,
            pairs: &[],
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(600),
            pending: Default::default(),
        };
        for (page, _, _) in layout::PAGES {
            let _ = pages::render(&ctx, page).await;
        }
    });
}

async fn logout(State(state): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Some((id, _)) = session(&state, &headers) {
        state.memory.sessions.remove(&id);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("vt_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

async fn page(
    State(state): State<Arc<Dashboard>>,
    Path((project, page)): Path<(String, String)>,
    Query(filters): Query<Filters>,
    Query(extra): Query<std::collections::HashMap<String, String>>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some((_, session)) = session(&state, &headers).filter(|(_, s)| s.project == project) else {
        let next = uri.path_and_query().map_or("", |p| p.as_str());
        let login = format!("/login?project={}&next={}", encode(&project), encode(next));
        return Redirect::to(&login).into_response();
    };
    let csv_table = (extra.get("format").map(String::as_str) == Some("csv"))
        .then(|| extra.get("table").cloned().unwrap_or_default());
    // The page's own parameters, without the export's: the base of its download links.
    let kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| name != "format" && name != "table")
        .cloned()
        .collect();
    // A download waits for every answer (a page renders within its budget instead).
    let budget = if csv_table.is_some() {
        CSV_BUDGET.max(state.memory.render_budget())
    } else {
        state.memory.render_budget()
    };
    let ctx = pages::Ctx {
        api: &state.api,
        key: &session.key,
        project: &project,
        filters: &filters,
        params: &extra,
        pairs: &kept,
        deadline: std::time::Instant::now() + budget,
        pending: Default::default(),
    };
    let Some(body) = pages::render(&ctx, &page).await else {
        let body = html! { div.error { "There is no page `" (page) "`." } };
        let markup = layout::page(&project, "", &filters, &ctx.choices().await, body, false);
        return (StatusCode::NOT_FOUND, Html(markup.into_string())).into_response();
    };
    let refresh = ctx.pending.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(table) = csv_table {
        return csv_download(&project, &page, &table, &body.into_string(), refresh);
    }
    let base = format!(
        "{}?{}",
        uri.path(),
        filters::query(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    );
    let base = if base.ends_with('?') {
        base
    } else {
        format!("{base}&")
    };
    let body = maud::PreEscaped(export::annotate(&body.into_string(), &base));
    let choices = ctx.choices().await;
    let heading = (page == "endpoint").then(|| pages::endpoint::heading(&ctx));
    let markup = layout::page_titled(
        &project,
        &page,
        heading.as_deref(),
        &filters,
        &choices,
        body,
        refresh,
    );
    let mut response = Html(markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// How long a CSV download waits for the answers of its page.
pub const CSV_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// Table `table` of a rendered page body as a CSV attachment; a clear error when there is no
/// such table or its answers are still being computed.
fn csv_download(project: &str, page: &str, table: &str, body: &str, pending: bool) -> Response {
    let plain = |status: StatusCode, message: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    };
    if pending {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the answers of this table are still being computed; try again in a few seconds\n"
                .to_owned(),
        );
    }
    let Some(rows) = export::rows(body, table) else {
        let ids = export::ids(body).join(", ");
        return plain(
            StatusCode::NOT_FOUND,
            format!("page `{page}` has no table `{table}` with these filters; its tables: {ids}\n"),
        );
    };
    match export::csv(&rows) {
        Ok(text) => {
            let name: String = format!("{project}-{page}-{table}.csv")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let disposition = format!("attachment; filename=\"{name}\"");
            let mut response =
                ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response();
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            response
        }
        Err(error) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the csv: {error}\n"),
        ),
    }
}
