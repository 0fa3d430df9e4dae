//! `valuetrace query ...`: asks a running server's JSON API and prints a table (or `--json`).
//!
//! The server address, read key and project come from `--url`/`--key`/`--project`, else the
//! `demo.json` in `--data-dir`, else `VALUETRACE_URL` / `VALUETRACE_READ_KEY` /
//! `VALUETRACE_PROJECT`, else the `demo.json` of the default demo directory. `--csv` writes one
//! of the answer's tables as CSV instead (see `output.rs`).

use super::output::Output;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum QueryCommand {
    /// Per route and method: requests, users, error rates, latency quantiles, value.
    Endpoints {
        #[command(flatten)]
        common: CommonArgs,
        /// requests, users, error_rate, p95, value or route.
        #[arg(long, default_value = "requests")]
        sort: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One metric over time: requests, error_rate, p95, users or value.
    Timeseries {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, default_value = "requests")]
        metric: String,
        /// 1m, 1h or 1d.
        #[arg(long, default_value = "1h")]
        interval: String,
    },
    /// Which endpoint creates value: attribution, adoption, cost, Business Impact Score.
    Impact {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        /// Attribution model: linear, first_touch or last_touch (default: the project's).
        #[arg(long)]
        model: Option<String>,
        /// Attribution window, e.g. 24h or 7d (default: the project's).
        #[arg(long)]
        window: Option<String>,
        #[arg(long, default_value_t = 25)]
        limit: usize,
    },
    /// Errors in business terms: classes, unknown share, value at risk, lost conversions.
    Errors {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
    },
    /// Third-party providers: success rate, latency, errors, conversion impact.
    Integrations {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
    },
    /// Silent failures: configured start → end pairs that never completed.
    Gaps {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
    },
    /// Conversion by latency bucket of a route (`--route` names the route, e.g. "POST /api/checkout").
    LatencyConversion {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        /// Conversion outcome (default: the project's conversion_outcome).
        #[arg(long)]
        outcome: Option<String>,
        /// Bucket upper edges in ms, e.g. 100,250,500,1000,2500.
        #[arg(long)]
        buckets: Option<String>,
        /// Latency above which value is at risk, ms.
        #[arg(long)]
        threshold: Option<String>,
    },
    /// BRIDGE scorecard per endpoint.
    Scorecard {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[arg(long, default_value_t = 25)]
        limit: usize,
    },
    /// Feature priority from the project's feature definitions.
    Priority {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
    },
    /// Funnel: where actors drop between steps, and where they went instead.
    Funnel {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        /// A step, in order (2–10): "GET /api/products", "POST /api/checkout status=2xx",
        /// "outcome:purchase".
        #[arg(long = "step", required = true)]
        steps: Vec<String>,
        /// sequential (default) or strict (each step is the next distinct event).
        #[arg(long)]
        order: Option<String>,
    },
    /// Paths after a start step (--start) or leading to an end step (--end).
    Paths {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        /// Events per path, the anchor included (2–10).
        #[arg(long)]
        depth: Option<usize>,
        /// Paths listed and children per tree node.
        #[arg(long)]
        top: Option<usize>,
    },
    /// Retention by cohort of first occurrence.
    Retention {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        /// Cohort step (default any event).
        #[arg(long)]
        cohort: Option<String>,
        /// Return step (default any event).
        #[arg(long = "return")]
        returning: Option<String>,
        /// day, week (default) or month.
        #[arg(long)]
        period: Option<String>,
        #[arg(long)]
        periods: Option<usize>,
    },
    /// Time to first value of new actors.
    Ttv {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        /// Start step (default the first API call).
        #[arg(long)]
        start: Option<String>,
        /// Value step (default the project's value_event).
        #[arg(long)]
        value: Option<String>,
        /// Trend by day (default) or week.
        #[arg(long)]
        cohort: Option<String>,
        #[arg(long)]
        within: Option<String>,
    },
    /// Actors whose activity fell against their own baseline, with a back-test.
    ChurnRisk {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        /// Recent period (default 7d).
        #[arg(long)]
        recent: Option<String>,
        /// Baseline period before it (default 28d).
        #[arg(long)]
        baseline: Option<String>,
        #[arg(long)]
        threshold: Option<f64>,
        #[arg(long)]
        min_calls: Option<f64>,
        #[arg(long)]
        top: Option<usize>,
    },
    /// An A/B experiment per variant and endpoint; without --experiment, the experiments seen.
    Experiment {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        answer: AnswerArgs,
        #[command(flatten)]
        journey: JourneyArgs,
        #[arg(long)]
        experiment: Option<String>,
        #[arg(long)]
        control: Option<String>,
        /// Conversion outcome (default the project's conversion_outcome).
        #[arg(long)]
        outcome: Option<String>,
        /// Endpoints compared.
        #[arg(long)]
        top: Option<usize>,
        /// Compare only endpoints matching this route pattern, e.g. "/api/recommendations*".
        #[arg(long)]
        endpoints: Option<String>,
    },
}

/// What the journey answers share.
#[derive(Args)]
pub struct JourneyArgs {
    /// Count per user, session or account.
    #[arg(long)]
    pub per: Option<String>,
    /// Conversion window (funnel) or path reach, e.g. 30m, 24h, 7d.
    #[arg(long)]
    pub window: Option<String>,
}

impl JourneyArgs {
    fn push(&self, params: &mut Vec<(&'static str, String)>) {
        params.extend(self.per.clone().map(|p| ("per", p)));
        params.extend(self.window.clone().map(|w| ("window", w)));
    }
}

/// Filters and breakdown of the business answers.
#[derive(Args)]
pub struct AnswerArgs {
    /// Break down by plan, segment, variant, service, app_version or provider.
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long)]
    pub app_version: Option<String>,
    #[arg(long)]
    pub provider: Option<String>,
    /// inbound or outbound.
    #[arg(long)]
    pub direction: Option<String>,
}

impl AnswerArgs {
    fn push(&self, params: &mut Vec<(&'static str, String)>) {
        let optional = [
            ("by", &self.by),
            ("app_version", &self.app_version),
            ("provider", &self.provider),
            ("direction", &self.direction),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                params.push((name, value.clone()));
            }
        }
    }
}

#[derive(Args)]
pub struct CommonArgs {
    /// Project id to ask, e.g. `demo` (default: VALUETRACE_PROJECT, else the demo's).
    #[arg(long)]
    pub project: Option<String>,
    /// Window length back from now (15m, 24h, 7d); ignored when --from is given.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Window start, RFC 3339 or epoch ms.
    #[arg(long)]
    pub from: Option<String>,
    /// Window end (exclusive), RFC 3339 or epoch ms; default now.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub segment: Option<String>,
    /// `ml_v2` or `experiment=variant`.
    #[arg(long)]
    pub variant: Option<String>,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub route: Option<String>,
    /// Print the JSON answer instead of a table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print a table of the answer as CSV (header row first): the answer's first table, or the
    /// one named (an unknown name lists the answer's tables).
    #[arg(long, value_name = "TABLE", num_args = 0..=1, default_missing_value = "")]
    pub csv: Option<String>,
    /// Server address, e.g. http://127.0.0.1:7070 (default: VALUETRACE_URL, else the demo's).
    #[arg(long)]
    pub url: Option<String>,
    /// Read key of the project (default: VALUETRACE_READ_KEY, else the demo's).
    #[arg(long)]
    pub key: Option<String>,
    /// Data directory of a running `valuetrace demo --data-dir DIR`: ask the demo whose address
    /// and key are in its demo.json (default: the default demo directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The server, read key and project a command asks.
pub struct Target {
    pub url: String,
    pub key: String,
    pub project: String,
}

fn target(common: &CommonArgs) -> anyhow::Result<Target> {
    resolve_target_in(
        &common.url,
        &common.key,
        &common.project,
        common.data_dir.as_deref(),
    )
}

/// The flags, else `VALUETRACE_URL` / `VALUETRACE_READ_KEY` / `VALUETRACE_PROJECT`, else the
/// demo's `demo.json` in the default demo directory.
pub fn resolve_target(
    url: &Option<String>,
    key: &Option<String>,
    project: &Option<String>,
) -> anyhow::Result<Target> {
    resolve_target_in(url, key, project, None)
}

/// Each of address, key and project from the first that has it: the flags, the `demo.json` of
/// `data_dir` (an explicit choice, so it outranks the environment), the environment, the
/// `demo.json` of the default demo directory (only when no address was given otherwise).
pub fn resolve_target_in(
    url: &Option<String>,
    key: &Option<String>,
    project: &Option<String>,
    data_dir: Option<&Path>,
) -> anyhow::Result<Target> {
    let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let flags = [url, key, project];
    resolve(
        flags,
        data_dir,
        &env,
        &crate::commands::demo::default_data_dir(),
    )
}

/// [`resolve_target_in`] with the environment and the default demo directory passed in.
fn resolve(
    [url, key, project]: [&Option<String>; 3],
    data_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    default_dir: &Path,
) -> anyhow::Result<Target> {
    let chosen = match data_dir {
        Some(dir) => Some(crate::commands::demo::read_demo_file(dir).ok_or_else(|| {
            anyhow::anyhow!(
                "no demo.json in {}: is `valuetrace demo --data-dir {}` running (it writes the file once its backfill is done)?",
                dir.display(),
                dir.display()
            )
        })?),
        None => None,
    };
    // The default demo is one whole connection: it fills in nothing for another server (its
    // key or project sent to an address given elsewhere would only earn a 401 or a 404).
    let given_url = url
        .clone()
        .or_else(|| chosen.as_ref().map(|demo| demo.url.clone()))
        .or_else(|| env("VALUETRACE_URL"));
    let same_server = |demo: &crate::commands::demo::DemoFile| {
        given_url
            .as_deref()
            .is_none_or(|given| given.trim_end_matches('/') == demo.url.trim_end_matches('/'))
    };
    let fallback = crate::commands::demo::read_demo_file(default_dir).filter(same_server);
    let pick = |flag: &Option<String>,
                env_name: &str,
                field: fn(&crate::commands::demo::DemoFile) -> &String| {
        flag.clone()
            .or_else(|| chosen.as_ref().map(|demo| field(demo).clone()))
            .or_else(|| env(env_name))
            .or_else(|| fallback.as_ref().map(|demo| field(demo).clone()))
    };
    let url = pick(url, "VALUETRACE_URL", |demo| &demo.url);
    let key = pick(key, "VALUETRACE_READ_KEY", |demo| &demo.read_key);
    let project = pick(project, "VALUETRACE_PROJECT", |demo| &demo.project);
    match (url, key, project) {
        (Some(url), Some(key), Some(project)) => Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            key,
            project,
        }),
        (url, key, project) => {
            let missing: Vec<&str> = [
                (
                    url.is_none(),
                    "the server address (--url or VALUETRACE_URL)",
                ),
                (key.is_none(), "the read key (--key or VALUETRACE_READ_KEY)"),
                (
                    project.is_none(),
                    "the project (--project or VALUETRACE_PROJECT)",
                ),
            ]
            .into_iter()
            .filter_map(|(missing, what)| missing.then_some(what))
            .collect();
            bail!(
                "no server to ask: missing {}; pass --url, --key and --project, or set VALUETRACE_URL, VALUETRACE_READ_KEY and VALUETRACE_PROJECT, or pass --data-dir of a running `valuetrace demo` (default {}), or run `valuetrace demo` first",
                missing.join(", "),
                default_dir.display()
            )
        }
    }
}

fn params(common: &CommonArgs) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    match &common.from {
        Some(from) => params.push(("from", from.clone())),
        None => params.push(("since", common.since.clone())),
    }
    let optional = [
        ("to", &common.to),
        ("plan", &common.plan),
        ("segment", &common.segment),
        ("variant", &common.variant),
        ("service", &common.service),
        ("route", &common.route),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            params.push((name, value.clone()));
        }
    }
    params
}

fn encode(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", valuetrace_alerts::notify::encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn get(target: &Target, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
    let url = format!(
        "{}/api/v1/projects/{}/{path}?{}",
        target.url,
        target.project,
        encode(params)
    );
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&target.key)
        .send()
        .await
        .with_context(|| {
            format!(
                "cannot reach {}; is `valuetrace demo` or `valuetrace serve` running there?",
                target.url
            )
        })?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    let value: Value = serde_json::from_slice(&body)
        .with_context(|| format!("the server answered {status} with non-JSON"))?;
    if !status.is_success() {
        let message = value["error"]["message"]
            .as_str()
            .unwrap_or("unknown error");
        bail!("the server answered {status}: {message}");
    }
    Ok(value)
}

pub fn run(command: QueryCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            QueryCommand::Endpoints { common, sort, limit } => {
                let target = target(&common)?;
                let mut query = params(&common);
                query.push(("sort", sort));
                query.push(("limit", limit.to_string()));
                let answer = get(&target, "endpoints", &query).await?;
                if common.json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                } else {
                    let mut out = Output::new(common.csv.clone());
                    out.table("endpoints", endpoints_table(&answer));
                    out.line(format!("{} of {} endpoints · latency quantiles within ±1% · users exact up to 512 per cell", answer["endpoints"].as_array().map_or(0, Vec::len), super::answers::text(&answer["total_endpoints"])));
                    out.finish()?;
                }
            }
            QueryCommand::Impact { common, answer, model, window, limit } => {
                let mut query = params(&common);
                answer.push(&mut query);
                query.extend(model.map(|m| ("model", m)));
                query.extend(window.map(|w| ("window", w)));
                show(&common, "impact", &query, |a, out| super::answers::print_impact(a, limit, out)).await?;
            }
            QueryCommand::Errors { common, answer } => {
                let mut query = params(&common);
                answer.push(&mut query);
                show(&common, "errors", &query, super::answers::print_errors).await?;
            }
            QueryCommand::Integrations { common, answer } => {
                let mut query = params(&common);
                answer.push(&mut query);
                show(&common, "integrations", &query, super::answers::print_integrations).await?;
            }
            QueryCommand::Gaps { common, answer } => {
                let mut query = params(&common);
                answer.push(&mut query);
                show(&common, "gaps", &query, super::answers::print_gaps).await?;
            }
            QueryCommand::LatencyConversion { common, answer, outcome, buckets, threshold } => {
                if common.route.is_none() {
                    bail!("--route is required, e.g. --route \"POST /api/checkout\"");
                }
                let mut query = params(&common);
                answer.push(&mut query);
                query.extend(outcome.map(|o| ("outcome", o)));
                query.extend(buckets.map(|b| ("buckets", b)));
                query.extend(threshold.map(|t| ("threshold", t)));
                show(&common, "latency-conversion", &query, super::answers::print_latency).await?;
            }
            QueryCommand::Scorecard { common, answer, limit } => {
                let mut query = params(&common);
                answer.push(&mut query);
                show(&common, "scorecard", &query, |a, out| super::answers::print_scorecard(a, limit, out)).await?;
            }
            QueryCommand::Priority { common, answer } => {
                let mut query = params(&common);
                answer.push(&mut query);
                show(&common, "priority", &query, super::answers::print_priority).await?;
            }
            QueryCommand::Funnel { common, answer, journey, steps, order } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                query.push(("steps", steps.join(",")));
                query.extend(order.map(|o| ("order", o)));
                show(&common, "funnel", &query, super::journeys::print_funnel).await?;
            }
            QueryCommand::Paths { common, answer, journey, start, end, depth, top } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                query.extend(start.map(|s| ("start", s)));
                query.extend(end.map(|e| ("end", e)));
                query.extend(depth.map(|d| ("depth", d.to_string())));
                query.extend(top.map(|t| ("top", t.to_string())));
                show(&common, "paths", &query, super::journeys::print_paths).await?;
            }
            QueryCommand::Retention { common, answer, journey, cohort, returning, period, periods } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                query.extend(cohort.map(|c| ("cohort", c)));
                query.extend(returning.map(|r| ("return", r)));
                query.extend(period.map(|p| ("period", p)));
                query.extend(periods.map(|p| ("periods", p.to_string())));
                show(&common, "retention", &query, super::journeys::print_retention).await?;
            }
            QueryCommand::Ttv { common, answer, journey, start, value, cohort, within } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                query.extend(start.map(|s| ("start", s)));
                query.extend(value.map(|v| ("value", v)));
                query.extend(cohort.map(|c| ("cohort", c)));
                query.extend(within.map(|w| ("within", w)));
                show(&common, "ttv", &query, super::journeys::print_ttv).await?;
            }
            QueryCommand::ChurnRisk { common, answer, journey, recent, baseline, threshold, min_calls, top } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                query.extend(recent.map(|r| ("recent", r)));
                query.extend(baseline.map(|b| ("baseline", b)));
                query.extend(threshold.map(|t| ("threshold", t.to_string())));
                query.extend(min_calls.map(|m| ("min_calls", m.to_string())));
                query.extend(top.map(|t| ("top", t.to_string())));
                show(&common, "churn-risk", &query, super::journeys::print_churn).await?;
            }
            QueryCommand::Experiment { common, answer, journey, experiment, control, outcome, top, endpoints } => {
                let mut query = params(&common);
                answer.push(&mut query);
                journey.push(&mut query);
                let Some(experiment) = experiment else {
                    show(&common, "experiments", &query, |list, out| {
                        out.line("Experiments seen (ask one with --experiment NAME):");
                        let mut table = super::answers::table(&["experiment", "variants"]);
                        if let Some(map) = list["experiments"].as_object() {
                            for (name, variants) in map {
                                let variants: Vec<String> = variants
                                    .as_array()
                                    .map_or_else(|| vec![super::answers::text(variants)], |list| list.iter().map(super::answers::text).collect());
                                table.add_row(vec![name.clone(), variants.join(", ")]);
                            }
                        }
                        out.table("experiments", table);
                    })
                    .await?;
                    return Ok(());
                };
                query.push(("experiment", experiment));
                query.extend(control.map(|c| ("control", c)));
                query.extend(outcome.map(|o| ("outcome", o)));
                query.extend(top.map(|t| ("top", t.to_string())));
                query.extend(endpoints.map(|e| ("endpoints", e)));
                show(&common, "experiment", &query, super::journeys::print_experiment).await?;
            }
            QueryCommand::Timeseries { common, metric, interval } => {
                let target = target(&common)?;
                let mut query = params(&common);
                query.push(("metric", metric.clone()));
                query.push(("interval", interval));
                let answer = get(&target, "timeseries", &query).await?;
                if common.json {
                    println!("{}", serde_json::to_string_pretty(&answer)?);
                } else {
                    let mut out = Output::new(common.csv.clone());
                    out.table("points", timeseries_table(&answer, &metric));
                    out.finish()?;
                }
            }
        }
        Ok(())
    })
}

/// Asks `path` and prints the JSON (`--json`), or the tables `print` makes of it (one as CSV
/// with `--csv`).
async fn show(
    common: &CommonArgs,
    path: &str,
    query: &[(&str, String)],
    print: impl FnOnce(&Value, &mut Output),
) -> anyhow::Result<()> {
    let target = target(common)?;
    let answer = get(&target, path, query).await?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        let mut out = Output::new(common.csv.clone());
        print(&answer, &mut out);
        if let Some(line) = money_line(&answer) {
            out.line(line);
        }
        out.finish()?;
    }
    Ok(())
}

/// The currency every amount of the answer is in, and the values left out for want of a rate.
pub fn money_line(answer: &Value) -> Option<String> {
    let money = answer.get("money")?;
    let mut line = match money["currency"].as_str() {
        Some(code) => format!("amounts in {code}"),
        None => "amounts in the events' currency (none named)".to_owned(),
    };
    for apart in money["unconverted"].as_array().into_iter().flatten() {
        let code = apart["currency"].as_str().unwrap_or("?");
        line.push_str(&format!(
            " · left out, no rate in currency_rates: {} {code} events ({} {code})",
            apart["events"].as_u64().unwrap_or(0),
            super::answers::group_thousands(apart["value"].as_f64().unwrap_or(0.0), 2),
        ));
    }
    Some(line)
}

fn number(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |number| format!("{number:.decimals$}"))
}

fn percent(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| "–".to_owned(), |share| format!("{:.2}%", share * 100.0))
}

pub fn endpoints_table(answer: &Value) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header([
        "method".to_owned(),
        "route".to_owned(),
        "service".to_owned(),
        "requests".to_owned(),
        "req/min".to_owned(),
        "users".to_owned(),
        "5xx".to_owned(),
        "4xx".to_owned(),
        "p50 ms".to_owned(),
        "p95 ms".to_owned(),
        "p99 ms".to_owned(),
        match answer["currency"].as_str() {
            Some(code) => format!("value {code}"),
            None => "value".to_owned(),
        },
    ]);
    for row in answer["endpoints"].as_array().into_iter().flatten() {
        let outbound = row["direction"].as_str() == Some("outbound");
        let route = match row["provider"].as_str().filter(|_| outbound) {
            Some(provider) => format!("{} → {provider}", row["route"].as_str().unwrap_or("")),
            None => row["route"].as_str().unwrap_or("").to_owned(),
        };
        table.add_row(vec![
            Cell::new(row["method"].as_str().unwrap_or("")),
            Cell::new(route),
            Cell::new(row["service"].as_str().unwrap_or("")),
            Cell::new(super::answers::text(&row["requests"])).set_alignment(CellAlignment::Right),
            Cell::new(number(&row["requests_per_minute"], 2)).set_alignment(CellAlignment::Right),
            Cell::new(super::answers::text(&row["unique_users"]))
                .set_alignment(CellAlignment::Right),
            Cell::new(percent(&row["server_error_rate"])).set_alignment(CellAlignment::Right),
            Cell::new(percent(&row["client_error_rate"])).set_alignment(CellAlignment::Right),
            Cell::new(number(&row["p50_ms"], 1)).set_alignment(CellAlignment::Right),
            Cell::new(number(&row["p95_ms"], 1)).set_alignment(CellAlignment::Right),
            Cell::new(number(&row["p99_ms"], 1)).set_alignment(CellAlignment::Right),
            Cell::new(number(&row["value_sum"], 2)).set_alignment(CellAlignment::Right),
        ]);
    }
    table
}

fn timeseries_table(answer: &Value, metric: &str) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["start (UTC)", metric, "requests"]);
    for point in answer["points"].as_array().into_iter().flatten() {
        let start = point["start"]
            .as_i64()
            .map(valuetrace_model::time::format_rfc3339)
            .unwrap_or_default();
        let value = if metric == "error_rate" {
            percent(&point["value"])
        } else {
            number(&point["value"], 2)
        };
        table.add_row(vec![
            Cell::new(start),
            Cell::new(value).set_alignment(CellAlignment::Right),
            Cell::new(super::answers::text(&point["requests"])).set_alignment(CellAlignment::Right),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_answer_says_its_currency_and_what_it_left_out() {
        let answer = serde_json::json!({"money": {"currency": "EUR",
            "unconverted": [{"currency": "JPY", "events": 2, "value": 2000.0}]}});
        assert_eq!(
            super::money_line(&answer).as_deref(),
            Some(
                "amounts in EUR · left out, no rate in currency_rates: 2 JPY events (2,000.00 JPY)"
            )
        );
        assert_eq!(super::money_line(&serde_json::json!({})), None);
    }

    use super::*;

    fn demo_dir(url: &str, key: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let demo = crate::commands::demo::DemoFile {
            url: url.into(),
            project: "demo".into(),
            ingest_key: "vt_ingest_x".into(),
            read_key: key.into(),
        };
        std::fs::write(
            dir.path().join("demo.json"),
            serde_json::to_vec(&demo).expect("json"),
        )
        .expect("write demo.json");
        dir
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    /// Issue 18 point 12: the environment the message names is a whole connection.
    #[test]
    fn the_environment_names_url_key_and_project() {
        let nowhere = tempfile::tempdir().expect("tempdir");
        let env = |name: &str| match name {
            "VALUETRACE_URL" => some("http://10.0.0.1:7070/"),
            "VALUETRACE_READ_KEY" => some("vt_read_env"),
            "VALUETRACE_PROJECT" => some("shop"),
            _ => None,
        };
        let target = resolve([&None, &None, &None], None, &env, nowhere.path()).expect("target");
        assert_eq!(
            (
                target.url.as_str(),
                target.key.as_str(),
                target.project.as_str()
            ),
            ("http://10.0.0.1:7070", "vt_read_env", "shop")
        );
        // Flags outrank the environment.
        let target =
            resolve([&None, &None, &some("other")], None, &env, nowhere.path()).expect("target");
        assert_eq!(target.project, "other");
    }

    /// `--data-dir` outranks the environment; a missing demo.json there is named.
    #[test]
    fn a_data_dir_is_an_explicit_choice() {
        let nowhere = tempfile::tempdir().expect("tempdir");
        let chosen = demo_dir("http://127.0.0.1:4000", "vt_read_chosen");
        let env = |name: &str| (name == "VALUETRACE_URL").then(|| "http://10.0.0.1:7070".into());
        let target = resolve(
            [&None, &None, &None],
            Some(chosen.path()),
            &env,
            nowhere.path(),
        )
        .expect("ok");
        assert_eq!(
            (
                target.url.as_str(),
                target.key.as_str(),
                target.project.as_str()
            ),
            ("http://127.0.0.1:4000", "vt_read_chosen", "demo")
        );
        let error = resolve(
            [&None, &None, &None],
            Some(nowhere.path()),
            &|_| None,
            nowhere.path(),
        )
        .err()
        .expect("no demo.json");
        assert!(error.to_string().starts_with("no demo.json in "), "{error}");
    }

    /// The default demo fills in what is missing for itself only, never for another server.
    #[test]
    fn the_default_demo_is_not_mixed_with_another_server() {
        let default = demo_dir("http://127.0.0.1:7070", "vt_read_default");
        let target = resolve([&None, &None, &None], None, &|_| None, default.path()).expect("ok");
        assert_eq!(target.key, "vt_read_default");
        let same = resolve(
            [&some("http://127.0.0.1:7070/"), &None, &None],
            None,
            &|_| None,
            default.path(),
        )
        .expect("the demo's own address");
        assert_eq!(same.key, "vt_read_default");
        let env = |name: &str| match name {
            "VALUETRACE_URL" => some("http://10.0.0.1:7070"),
            "VALUETRACE_READ_KEY" => some("vt_read_env"),
            _ => None,
        };
        let error = resolve([&None, &None, &None], None, &env, default.path())
            .err()
            .expect("no project");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "no server to ask: missing the project (--project or VALUETRACE_PROJECT); "
            ),
            "{message}"
        );
    }
}
