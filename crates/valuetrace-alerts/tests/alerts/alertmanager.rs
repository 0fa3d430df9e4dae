//! The Alertmanager channel against a real Alertmanager (Debian's `prometheus-alertmanager`,
//! started here on a free loopback port with its own storage and clustering off): the firing
//! alert appears in its API, re-posts keep it there, the resolve ends it.
//!
//! Without the binary the test is skipped, unless `VALUETRACE_REQUIRE_ALERTMANAGER` is set
//! (`scripts/test` sets it after installing the package): then it fails.

use crate::{MINUTE, project};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use valuetrace_alerts::Engine;
use valuetrace_alerts::deliver::{deliver_due, refresh_alertmanager};
use valuetrace_alerts::fake_source::FakeSource;
use valuetrace_alerts::notify::alertmanager::RESEND_MS;

const CONFIG: &str =
    "route:\n  receiver: blackhole\n  group_wait: 1h\nreceivers:\n  - name: blackhole\n";

/// The Alertmanager binary, if installed.
fn binary() -> Option<String> {
    if let Ok(path) = std::env::var("VALUETRACE_ALERTMANAGER_BIN") {
        return Some(path);
    }
    ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .map(str::to_owned)
}

/// A running Alertmanager, killed when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn start(binary: &str) -> Alertmanager {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, CONFIG).expect("config written");
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("alertmanager starts");
    let manager = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let started = Instant::now();
    loop {
        let ready = reqwest::get(format!("{}/-/ready", manager.url))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return manager;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "alertmanager not ready after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The alerts Alertmanager lists for `alertname`.
async fn listed(manager: &Alertmanager, alertname: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/v2/alerts?filter=alertname%3D%22{alertname}%22",
        manager.url
    );
    let text = reqwest::get(url)
        .await
        .expect("alertmanager answers")
        .text()
        .await
        .expect("body");
    let answer: Value = serde_json::from_str(&text).expect("json");
    answer.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn alerts_reach_a_real_alertmanager_and_resolve() {
    let Some(binary) = binary() else {
        assert!(
            std::env::var_os("VALUETRACE_REQUIRE_ALERTMANAGER").is_none(),
            "alertmanager is required (apt-get install prometheus-alertmanager)"
        );
        eprintln!("skipped: alertmanager not installed");
        return;
    };
    valuetrace_alerts::deliver::install_tls_provider();
    let manager = start(&binary).await;
    // The wall clock: Alertmanager ends alerts by its own clock. The hour before now: 80%
    // conversion for 30 minutes, then 97%.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let t0 = now - now.rem_euclid(MINUTE) - 60 * MINUTE;
    let checkout = FakeSource::endpoint("POST", "/api/checkout");
    let mut source = FakeSource::default();
    for minute in 0..60 {
        let at = t0 + minute * MINUTE;
        source.add_calls(at, &checkout, 200, 100);
        source.add_outcomes(at, "purchase", if minute < 30 { 80 } else { 97 });
    }
    let alerts = project(&format!(
        r#"
[[metrics]]
name = "payment_conversion_rate_percent"
kind = "ratio"
numerator = {{ outcome = "purchase" }}
denominator = {{ route = "/api/checkout", method = "POST" }}
scale = 100
unit = "percent"
owner = "payments"
channels = ["am"]

[alerts]
dashboard_url = "https://valuetrace.example.com"

[[alerts.channels]]
name = "am"
kind = "alertmanager"
url = "{}"
allow_private_targets = true

[[alerts.rules]]
name = "ConversionRateDegradeReal"
kind = "threshold"
metric = "payment_conversion_rate_percent"
op = "<"
threshold = 94
window = "5m"
for = "10m"
severity = "critical"
"#,
        manager.url
    ));
    let engine = Mutex::new(Engine::in_memory());
    let evaluate = |minute: i64| {
        engine
            .lock()
            .expect("lock")
            .evaluate(&source, &alerts, "shop", t0 + minute * MINUTE)
    };
    for minute in 5..=15 {
        evaluate(minute);
    }
    let fired_at = t0 + 15 * MINUTE;
    let report = deliver_due(&engine, &alerts, "shop", fired_at).await;
    assert_eq!(
        (report.delivered, report.rejected, report.failed),
        (1, 0, 0),
        "{:?}",
        engine.lock().expect("lock").state.outbox
    );
    let found = listed(&manager, "ConversionRateDegradeReal").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let alert = &found[0];
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["project"], "shop");
    assert_eq!(alert["status"]["state"], "active", "{alert}");
    assert!(
        alert["generatorURL"]
            .as_str()
            .is_some_and(|url| url.starts_with("https://valuetrace.example.com/p/shop/alerts?")),
        "{alert}"
    );
    let ends_at = alert["endsAt"].as_str().map(str::to_owned);

    // While it fires it is posted again every minute, and only then.
    assert_eq!(
        refresh_alertmanager(&engine, &alerts, "shop", now)
            .await
            .delivered,
        1
    );
    assert_eq!(
        refresh_alertmanager(&engine, &alerts, "shop", now + RESEND_MS - 1)
            .await
            .delivered,
        0
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        refresh_alertmanager(&engine, &alerts, "shop", now + RESEND_MS)
            .await
            .delivered,
        1
    );
    let found = listed(&manager, "ConversionRateDegradeReal").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_ne!(
        found[0]["endsAt"].as_str().map(str::to_owned),
        ends_at,
        "a re-post moves the end out"
    );

    // Conversion recovers at minute 30: the resolve carries endsAt and ends the alert.
    let resolved_minute = (16..60)
        .find(|minute| !evaluate(*minute).notices.is_empty())
        .expect("resolved");
    let report = deliver_due(&engine, &alerts, "shop", t0 + resolved_minute * MINUTE).await;
    assert_eq!(report.delivered, 1);
    assert!(
        listed(&manager, "ConversionRateDegradeReal")
            .await
            .is_empty(),
        "resolved alerts are no longer listed"
    );
    assert_eq!(
        refresh_alertmanager(&engine, &alerts, "shop", now + 2 * RESEND_MS)
            .await
            .delivered,
        0,
        "nothing fires: nothing is re-posted"
    );
}
