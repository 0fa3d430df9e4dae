//! `valuetrace alerts test RULE --send` against the real server binary: the test notification
//! reaches the channel's receiver, and the command prints each receiver's answer (status and
//! body) and fails when one did not accept it.

mod common;

use common::{READ_KEY, ServerProcess, free_address, write_config};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// (path, body) of every request a receiver got.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A receiver on a free port: `/refuse` answers 400 `invalid_token`, the rest 202 `accepted-ok`.
/// Returns its address and the (path, body) of every request.
fn receiver() -> (std::net::SocketAddr, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            // Headers, then the body by Content-Length.
            let (head, body) = loop {
                let Ok(read) = stream.read(&mut buffer) else {
                    break (String::new(), String::new());
                };
                if read == 0 {
                    break (String::new(), String::new());
                }
                data.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&data).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
            let (status, answer) = if path.starts_with("/refuse") {
                ("400 Bad Request", "invalid_token")
            } else {
                ("202 Accepted", "accepted-ok")
            };
            record.lock().expect("lock").push((path, body));
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    (address, seen)
}

const ALERTS: &str = r#"
[[projects.metrics]]
name = "checkout_requests_total"
kind = "count"
select = { route = "/api/checkout", method = "POST" }
unit = "requests"
owner = "payments"

[projects.alerts]
dashboard_url = "http://dashboard.example"

[[projects.alerts.channels]]
name = "hook"
kind = "webhook"
url = "http://RECEIVER/hook"
secret = "s3cret"
allow_private_targets = true

[[projects.alerts.channels]]
name = "broken"
kind = "slack"
url = "http://RECEIVER/refuse"
allow_private_targets = true

[[projects.alerts.rules]]
name = "CheckoutTrafficHigh"
kind = "threshold"
metric = "checkout_requests_total"
op = ">"
threshold = 1000
window = "5m"
channels = ["hook", "broken"]

[[projects.alerts.rules]]
name = "CheckoutTrafficHuge"
kind = "threshold"
metric = "checkout_requests_total"
op = ">"
threshold = 100000
window = "5m"
channels = ["hook", "broken"]
"#;

fn alerts_test(address: std::net::SocketAddr, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .args(["alerts", "test"])
        .args(args)
        .args(["--url", &format!("http://{address}"), "--key", READ_KEY])
        .args(["--project", "shop"])
        .output()
        .expect("valuetrace alerts test runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn alerts_test_send_reports_each_receivers_answer() {
    let (receiver, seen) = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let address = free_address();
    let config = write_config(dir.path(), address);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&ALERTS.replace("RECEIVER", &receiver.to_string()));
    std::fs::write(&config, text).expect("config written");
    let server = ServerProcess::start(&config, address);

    // One channel, which accepts it.
    let (ok, stdout, stderr) = alerts_test(
        address,
        &["CheckoutTrafficHigh", "--send", "--channel", "hook"],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("hook (webhook, notify): HTTP 202, accepted"),
        "{stdout}"
    );
    assert!(stdout.contains("receiver said: accepted-ok"), "{stdout}");
    let requests = std::mem::take(&mut *seen.lock().expect("lock"));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0, "/hook");
    let body: serde_json::Value = serde_json::from_str(&requests[0].1).expect("JSON");
    assert_eq!(body["test"], true, "marked as a test: {body}");
    assert_eq!(body["alerts"][0]["rule"], "CheckoutTrafficHigh");

    // Every channel; one refuses: its answer is shown and the command fails.
    let (ok, stdout, stderr) = alerts_test(address, &["CheckoutTrafficHuge", "--send"]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("broken (slack, notify): HTTP 400, NOT accepted"),
        "{stdout}"
    );
    assert!(stdout.contains("receiver said: invalid_token"), "{stdout}");
    assert!(
        stdout.contains("hook (webhook, notify): HTTP 202"),
        "{stdout}"
    );
    assert!(stderr.contains("not every channel accepted"), "{stderr}");
    assert_eq!(seen.lock().expect("lock").len(), 2);

    // Without --send: the dry run, nothing sent.
    let (ok, stdout, _) = alerts_test(address, &["CheckoutTrafficHigh"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("nothing would fire now"), "{stdout}");
    assert_eq!(seen.lock().expect("lock").len(), 2);
    server.stop();
}
