//! Key and secret lifecycle: several keys per project (rotation without downtime), revocation
//! and new keys by reloading the configuration (no restart), a reload that fails changes
//! nothing, and the pseudonymization secret is versioned.

mod common;

use axum::http::StatusCode;
use common::*;
use std::sync::Arc;
use valuetrace_server::Server;

const NOW: i64 = 1_795_256_130_123;
const NEW_INGEST: &str = "vt_ingest_shop_rotated";

fn bearer(key: &str) -> Option<String> {
    Some(format!("Bearer {key}"))
}

async fn ingest_status(server: &Server, key: &str, id: &str) -> StatusCode {
    call_text(
        server,
        batch_request(bearer(key).as_deref(), &[api_call(id, NOW - 1000)]),
    )
    .await
    .0
}

#[tokio::test]
async fn keys_rotate_without_downtime_and_revocation_needs_no_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server =
        Server::open_with_clock(two_projects(dir.path()), Arc::new(|| NOW)).expect("server");
    assert_eq!(
        ingest_status(&server, NEW_INGEST, "a").await,
        StatusCode::UNAUTHORIZED
    );

    // Step 1: add the new key next to the old one; both work.
    let mut config = two_projects(dir.path());
    config.projects[0] = project("shop", &[SHOP_INGEST, NEW_INGEST], &[SHOP_READ]);
    let summary = server.state.reload(&config).expect("reload");
    assert_eq!(summary.keys, 5);
    assert!(summary.needs_restart.is_empty(), "{summary:?}");
    assert_eq!(
        ingest_status(&server, SHOP_INGEST, "b").await,
        StatusCode::OK
    );
    assert_eq!(
        ingest_status(&server, NEW_INGEST, "c").await,
        StatusCode::OK
    );

    // Step 2: clients moved; revoke the old key.
    config.projects[0] = project("shop", &[NEW_INGEST], &[SHOP_READ]);
    server.state.reload(&config).expect("reload");
    assert_eq!(
        ingest_status(&server, SHOP_INGEST, "d").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        ingest_status(&server, NEW_INGEST, "e").await,
        StatusCode::OK
    );

    // A broken configuration changes nothing and is counted.
    let mut broken = config.clone();
    broken.projects[0]
        .ingest_key_hashes
        .push("sha256:nothex".into());
    let error = server.state.reload(&broken).expect_err("invalid hash");
    assert!(error.contains("key hash `sha256:nothex`"), "{error}");
    assert_eq!(
        ingest_status(&server, NEW_INGEST, "f").await,
        StatusCode::OK
    );

    // A project added by a reload works at once; a removed one is gone.
    let mut grown = config.clone();
    grown
        .projects
        .push(project("new-app", &["vt_ingest_new_app"], &[]));
    grown.projects.retain(|project| project.id != "other");
    let summary = server.state.reload(&grown).expect("reload");
    assert_eq!(summary.added_projects, vec!["new-app".to_owned()]);
    assert_eq!(summary.removed_projects, vec!["other".to_owned()]);
    assert_eq!(
        ingest_status(&server, "vt_ingest_new_app", "g").await,
        StatusCode::OK
    );
    assert_eq!(
        ingest_status(&server, OTHER_INGEST, "h").await,
        StatusCode::UNAUTHORIZED
    );

    // Settings that need a restart are reported, not silently ignored.
    let mut limits_changed = grown.clone();
    limits_changed.limits.max_batch_events = 5;
    let summary = server.state.reload(&limits_changed).expect("reload");
    assert_eq!(summary.needs_restart, vec!["limits".to_owned()]);

    let metrics = server.state.render_metrics();
    assert!(
        metrics.contains("valuetrace_config_reloads_total{result=\"ok\"} 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("valuetrace_config_reloads_total{result=\"failed\"} 1\n"),
        "{metrics}"
    );
}

/// Everything the write-ahead log holds, as text (its frames are JSON).
fn wal_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir.join("wal")).expect("wal dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

#[tokio::test]
async fn the_pseudonymization_secret_is_versioned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = two_projects(dir.path());
    let server = Server::open_with_clock(config.clone(), Arc::new(|| NOW)).expect("server");
    assert_eq!(
        ingest_status(&server, SHOP_INGEST, "v1-a").await,
        StatusCode::OK
    );
    let v1 = server.state.live().projects["shop"]
        .pseudonymizer
        .pseudonym("user_id", "u-1");
    assert_eq!(v1.len(), 32, "{v1}");

    config.projects[0].secret_version = 2;
    server.state.reload(&config).expect("rotate");
    assert!(dir.path().join("secrets").join("shop.v2.key").exists());
    assert!(
        dir.path().join("secrets").join("shop.key").exists(),
        "the old secret stays"
    );
    assert_eq!(
        ingest_status(&server, SHOP_INGEST, "v2-a").await,
        StatusCode::OK
    );
    let v2 = server.state.live().projects["shop"]
        .pseudonymizer
        .pseudonym("user_id", "u-1");
    assert!(v2.starts_with("v2.") && v2 != v1, "{v2}");
    // Consistent within a version, across a restart.
    drop(server);
    let server = Server::open_with_clock(config.clone(), Arc::new(|| NOW)).expect("reopen");
    assert_eq!(
        server.state.live().projects["shop"]
            .pseudonymizer
            .pseudonym("user_id", "u-1"),
        v2
    );
    // On disk: both versions' pseudonyms, never the raw id.
    let wal = wal_text(dir.path());
    assert!(wal.contains(&format!("\"{v1}\"")), "v1 pseudonym missing");
    assert!(wal.contains(&format!("\"{v2}\"")), "v2 pseudonym missing");
    assert!(!wal.contains("\"u-1\""), "a raw user id reached the disk");
}
