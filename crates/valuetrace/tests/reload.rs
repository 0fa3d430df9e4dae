//! Keys change without a restart: `valuetrace reload` and a plain SIGHUP make the running server
//! re-read its configuration; a broken file is refused and the running keys stay.

mod common;

use common::{INGEST_KEY, READ_KEY, ServerProcess, free_address, request, write_config};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const NEW_KEY: &str = "vt_ingest_e2e_rotated_key";

fn batch(id: &str) -> Vec<u8> {
    let now = valuetrace_store::wall_clock_ms();
    serde_json::to_vec(&serde_json::json!([{
        "type": "api_call", "schema_version": 1, "event_id": id, "timestamp": now - 1000,
        "service": "shop", "method": "GET", "route": "/api/items", "status": 200, "latency_ms": 3.0
    }]))
    .expect("serialize")
}

fn ingest_status(address: std::net::SocketAddr, key: &str, id: &str) -> u16 {
    request(address, "POST", "/v1/batch", Some(key), &batch(id))
        .expect("request")
        .0
}

/// Rewrites the config with these ingest keys (and the usual read key).
fn set_ingest_keys(config: &Path, keys: &[&str]) {
    let text = std::fs::read_to_string(config).expect("read config");
    let hashes: Vec<String> = keys
        .iter()
        .map(|key| format!("\"{}\"", valuetrace_server::auth::key_hash_string(key)))
        .collect();
    let line = format!("ingest_key_hashes = [{}]", hashes.join(", "));
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("ingest_key_hashes") {
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(config, text.join("\n") + "\n").expect("write config");
}

fn reload(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_valuetrace"))
        .args(["reload", "--config"])
        .arg(config)
        .output()
        .expect("run valuetrace reload")
}

#[test]
fn keys_are_added_and_revoked_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let address = free_address();
    let config = write_config(dir.path(), address);
    let server = ServerProcess::start(&config, address);
    let pid = server.child.id();
    assert_eq!(ingest_status(address, NEW_KEY, "a"), 401);

    // Add the new key next to the old one with `valuetrace reload`.
    set_ingest_keys(&config, &[INGEST_KEY, NEW_KEY]);
    let output = reload(&config);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("reloaded"));
    assert_eq!(ingest_status(address, NEW_KEY, "b"), 200);
    assert_eq!(ingest_status(address, INGEST_KEY, "c"), 200);

    // Revoke the old key with a plain SIGHUP.
    set_ingest_keys(&config, &[NEW_KEY]);
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while ingest_status(address, INGEST_KEY, "d") != 401 {
        assert!(Instant::now() < deadline, "old key still accepted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ingest_status(address, NEW_KEY, "e"), 200);

    // A broken file is refused before the server sees it, and nothing changes.
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(&config, text.replace("sha256:", "sha265:")).expect("write");
    let output = reload(&config);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be `sha256:`"), "{stderr}");
    assert_eq!(ingest_status(address, NEW_KEY, "f"), 200);
    let (status, _) = request(
        address,
        "GET",
        "/api/v1/projects/shop/endpoints?since=1h",
        Some(READ_KEY),
        b"",
    )
    .expect("query");
    assert_eq!(status, 200);
    server.stop();
}
