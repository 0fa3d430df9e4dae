//! `valuetrace alerts ...`: rules, states, history, dry runs, silences, the catalog and its
//! orphans of a running server; `lint` checks a configuration file's catalog and rules offline.
//!
//! The server address and read key come from `--url`/`--key`, else `VALUETRACE_URL` /
//! `VALUETRACE_READ_KEY`, else the `demo.json` that `valuetrace demo` wrote.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};
use std::path::PathBuf;
use valuetrace_alerts::notify::encode;

use super::query::{Target, resolve_target};

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// The rules with their metric, condition, `for` and channels.
    Rules(Connection),
    /// Every alert series: phase, value, threshold, since when.
    States(Connection),
    /// State transitions, newest first.
    History {
        #[command(flatten)]
        connection: Connection,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Evaluate a rule now and show what would fire and the payloads each channel would get
    /// (nothing is sent, no state changes); with --send, send a test notification (marked as a
    /// test) through the rule's real channels and show each receiver's answer.
    Test {
        rule: String,
        /// Send a test notification through the rule's channels and report the receivers'
        /// answers (status and the start of the body); fails if one did not accept it.
        #[arg(long)]
        send: bool,
        /// With --send: only this channel.
        #[arg(long, requires = "send")]
        channel: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Hold back notifications of a rule (or of every rule) for a while.
    Silence {
        /// The rule; every rule when absent.
        #[arg(long)]
        rule: Option<String>,
        /// How long, e.g. 2h.
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// End a silence now.
    Unsilence {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// The metric catalog: owner, criticality, unit, channels.
    Catalog(Connection),
    /// Catalog metrics without data for `alerts.orphan_after` (default 7 days).
    Orphans(Connection),
    /// Check the catalog, channels and rules of a configuration file without a server.
    Lint {
        #[arg(long, default_value = "valuetrace.toml")]
        config: PathBuf,
    },
}

#[derive(Args)]
pub struct Connection {
    /// Project id (default: the demo's).
    #[arg(long)]
    pub project: Option<String>,
    /// Server URL (default: VALUETRACE_URL, else the demo's).
    #[arg(long)]
    pub url: Option<String>,
    /// Read key (default: VALUETRACE_READ_KEY, else the demo's).
    #[arg(long)]
    pub key: Option<String>,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn target(connection: &Connection) -> anyhow::Result<Target> {
    resolve_target(&connection.url, &connection.key, &connection.project)
}

async fn call(
    target: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/projects/{}/{path}", target.url, target.project);
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(&target.key);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.with_context(|| {
        format!(
            "cannot reach {}; is `valuetrace demo` or `valuetrace serve` running there?",
            target.url
        )
    })?;
    let status = response.status();
    let bytes = response.bytes().await.context("reading the answer")?;
    let value: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("the server answered {status} with non-JSON"))?;
    if !status.is_success() {
        bail!(
            "the server answered {status}: {}",
            value["error"]["message"]
                .as_str()
                .unwrap_or("unknown error")
        );
    }
    Ok(value)
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), |f| {
            if f.fract() == 0.0 {
                format!("{f:.0}")
            } else {
                format!("{f:.4}")
            }
        }),
        other => other.to_string(),
    }
}

fn time(value: &Value) -> String {
    value
        .as_i64()
        .map_or("-".into(), valuetrace_model::time::format_rfc3339)
}

fn labels(value: &Value) -> String {
    value.as_object().map_or(String::new(), |labels| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

pub fn run(command: AlertsCommand) -> anyhow::Result<()> {
    if let AlertsCommand::Lint { config } = &command {
        return lint(config);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ask(command))
}

fn lint(path: &std::path::Path) -> anyhow::Result<()> {
    let config = valuetrace_server::config::Config::from_file(path).map_err(anyhow::Error::msg)?;
    if let Err(problems) = config.validate() {
        bail!("{} is not valid:\n{problems}", path.display());
    }
    for project in &config.projects {
        println!(
            "{}: {} metrics, {} rules, {} channels: ok",
            project.id,
            project.metrics.len(),
            project.alerts.rules.len(),
            project.alerts.channels.len()
        );
    }
    Ok(())
}

async fn ask(command: AlertsCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    let (connection, method, path, body) = match &command {
        AlertsCommand::Rules(c) => (c, Method::GET, "alerts/rules".to_owned(), None),
        AlertsCommand::States(c) => (c, Method::GET, "alerts/states".to_owned(), None),
        AlertsCommand::History {
            connection,
            rule,
            limit,
        } => {
            let rule = rule.as_ref().map_or(String::new(), |r| {
                format!("&rule={}", r.replace('&', "%26"))
            });
            (
                connection,
                Method::GET,
                format!("alerts/history?limit={limit}{rule}"),
                None,
            )
        }
        AlertsCommand::Test {
            rule,
            send: false,
            connection,
            ..
        } => (
            connection,
            Method::POST,
            format!("alerts/test/{}", encode(rule)),
            None,
        ),
        AlertsCommand::Test {
            rule,
            send: true,
            channel,
            connection,
        } => {
            let only = channel
                .as_ref()
                .map_or(String::new(), |c| format!("?channel={}", encode(c)));
            (
                connection,
                Method::POST,
                format!("alerts/test/{}/send{only}", encode(rule)),
                None,
            )
        }
        AlertsCommand::Silence {
            rule,
            duration,
            comment,
            connection,
        } => {
            let ms = valuetrace_model::time::parse_duration(duration)
                .filter(|ms| *ms > 0)
                .with_context(|| format!("--for {duration}: not a duration such as 30m or 2h"))?;
            let ends_at = valuetrace_store::wall_clock_ms() + ms;
            let body = json!({"rule": rule, "ends_at": ends_at, "comment": comment, "created_by": std::env::var("USER").unwrap_or_default()});
            (
                connection,
                Method::POST,
                "alerts/silences".to_owned(),
                Some(body),
            )
        }
        AlertsCommand::Unsilence { id, connection } => (
            connection,
            Method::DELETE,
            format!("alerts/silences/{id}"),
            None,
        ),
        AlertsCommand::Catalog(c) => (c, Method::GET, "metrics/catalog".to_owned(), None),
        AlertsCommand::Orphans(c) => (c, Method::GET, "metrics/orphans".to_owned(), None),
        AlertsCommand::Lint { .. } => unreachable!("handled offline"),
    };
    let target = target(connection)?;
    let answer = call(&target, method, &path, body).await?;
    if connection.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print(&command, &answer);
    }
    if matches!(command, AlertsCommand::Test { send: true, .. }) && answer["ok"] != true {
        if answer["dry_run"] == true {
            bail!(
                "nothing was sent: the project's alerts are in dry-run mode (alerts.dry_run = true)"
            );
        }
        bail!("not every channel accepted the test notification");
    }
    Ok(())
}

/// `slack (notify): 200 ok` and the start of the receiver's body, one line per payload sent.
fn print_sent(answer: &Value) {
    let rule = text(&answer["rule"]);
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    println!("test notification of {rule} (marked [TEST]):");
    for result in &results {
        let answer = match (&result["status"], result["error"].as_str()) {
            (Value::Number(status), _) => {
                let verdict = if result["ok"] == true {
                    "accepted"
                } else {
                    "NOT accepted"
                };
                format!("HTTP {status}, {verdict}")
            }
            (_, Some(error)) if error.starts_with("dry run") => error.to_owned(),
            (_, Some(error)) => format!("not sent: {error}"),
            _ => "no answer".to_owned(),
        };
        println!(
            "  {} ({}, {}): {answer}",
            text(&result["channel"]),
            text(&result["kind"]),
            text(&result["action"])
        );
        if let Some(body) = result["body"].as_str().filter(|b| !b.is_empty()) {
            println!("    receiver said: {body}");
        }
    }
}

fn print(command: &AlertsCommand, answer: &Value) {
    let list = |key: &str| answer[key].as_array().cloned().unwrap_or_default();
    match command {
        AlertsCommand::Rules(_) => {
            let rows = list("rules")
                .iter()
                .map(|r| {
                    let rule = &r["rule"];
                    let condition = match rule["kind"].as_str() {
                        Some("threshold") => {
                            format!("{} {}", text(&rule["op"]), text(&rule["threshold"]))
                        }
                        Some("ratio_to_yesterday") => format!(
                            "÷ yesterday outside [{}, {}]",
                            text(&rule["below"]),
                            text(&rule["above"])
                        ),
                        Some("seasonal") => format!(
                            "÷ {} days outside {}{}",
                            text(&rule["days"]),
                            rule["band"],
                            if rule["robust"] == true {
                                " (median, MAD)"
                            } else {
                                ""
                            }
                        ),
                        Some("burn_rate") => {
                            format!("{} SLO {}%", text(&rule["sli"]), text(&rule["objective"]))
                        }
                        _ => String::new(),
                    };
                    vec![
                        text(&rule["name"]),
                        text(&rule["kind"]),
                        text(&rule["metric"]),
                        condition,
                        text(&rule["window"]),
                        text(&rule["for"]),
                        text(&rule["severity"]),
                        r["channels"].as_array().map_or(String::new(), |c| {
                            c.iter().map(text).collect::<Vec<_>>().join(", ")
                        }),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "rule",
                        "kind",
                        "metric",
                        "condition",
                        "window",
                        "for",
                        "severity",
                        "channels"
                    ],
                    rows
                )
            );
        }
        AlertsCommand::States(_) => {
            let rows = list("states")
                .iter()
                .map(|s| {
                    vec![
                        text(&s["rule"]),
                        labels(&s["labels"]),
                        text(&s["phase"]),
                        text(&s["value"]),
                        text(&s["threshold"]),
                        time(&s["active_since"]),
                        if s["silenced"] == true {
                            "silenced".into()
                        } else {
                            s["skipped"].as_str().unwrap_or("").to_owned()
                        },
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "rule",
                        "series",
                        "phase",
                        "value",
                        "threshold",
                        "since",
                        "note"
                    ],
                    rows
                )
            );
            println!(
                "{} notifications waiting for delivery",
                text(&answer["outbox"]["pending"])
            );
        }
        AlertsCommand::History { .. } => {
            let rows = list("transitions")
                .iter()
                .map(|t| {
                    vec![
                        time(&t["at"]),
                        text(&t["rule"]),
                        labels(&t["labels"]),
                        format!("{} → {}", text(&t["from"]), text(&t["to"])),
                        text(&t["value"]),
                        text(&t["threshold"]),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["at", "rule", "series", "change", "value", "threshold"],
                    rows
                )
            );
        }
        AlertsCommand::Test { send: true, .. } => print_sent(answer),
        AlertsCommand::Test { rule, .. } => {
            let rows = list("observations")
                .iter()
                .map(|o| {
                    vec![
                        labels(&o["labels"]),
                        text(&o["value"]),
                        text(&o["threshold"]),
                        if o["active"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        o["skipped"].as_str().unwrap_or("").to_owned(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["series", "value", "threshold", "condition holds", "note"],
                    rows
                )
            );
            let for_ms = answer["for_ms"].as_i64().unwrap_or(0);
            let payloads = list("payloads");
            if payloads.is_empty() {
                println!("{rule}: nothing would fire now");
                return;
            }
            println!(
                "{rule} would fire (after its condition holds for {} s); dry run, nothing sent:",
                for_ms / 1000
            );
            for payload in payloads {
                println!("\n── {} ──", text(&payload[0]));
                for header in payload[1]["headers"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    println!("{}: {}", text(&header[0]), text(&header[1]));
                }
                let body: Value =
                    serde_json::from_str(payload[1]["body"].as_str().unwrap_or("null"))
                        .unwrap_or(Value::Null);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&body).unwrap_or_default()
                );
            }
        }
        AlertsCommand::Silence { .. } => println!("silence {} added", text(&answer["id"])),
        AlertsCommand::Unsilence { id, .. } => println!("silence {id} removed"),
        AlertsCommand::Catalog(_) => {
            let rows = list("metrics")
                .iter()
                .map(|m| {
                    vec![
                        text(&m["name"]),
                        text(&m["kind"]),
                        text(&m["unit"]),
                        text(&m["owner"]),
                        text(&m["criticality"]),
                        text(&m["retention"]),
                        m["channels"].as_array().map_or(String::new(), |c| {
                            c.iter().map(text).collect::<Vec<_>>().join(", ")
                        }),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &[
                        "metric",
                        "kind",
                        "unit",
                        "owner",
                        "criticality",
                        "retention",
                        "channels"
                    ],
                    rows
                )
            );
        }
        AlertsCommand::Orphans(_) => {
            let orphans = list("orphans");
            if orphans.is_empty() {
                println!(
                    "no orphans: every one of the {} catalog metrics has data",
                    text(&answer["checked"])
                );
            }
            for orphan in orphans {
                println!(
                    "{} (owner {}): no data since {}",
                    text(&orphan["metric"]),
                    text(&orphan["owner"]),
                    time(&orphan["since"])
                );
            }
        }
        AlertsCommand::Lint { .. } => {}
    }
}
