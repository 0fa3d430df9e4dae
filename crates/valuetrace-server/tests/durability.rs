//! Never an acknowledgement after a failed sync; a full disk answers 503 and the server
//! recovers when space returns; dedup state survives restarts.

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use valuetrace_server::Server;

fn batch(prefix: &str, count: usize) -> Vec<u8> {
    let now = valuetrace_store::wall_clock_ms();
    let events: Vec<_> = (0..count)
        .map(|i| api_call(&format!("{prefix}-{i}"), now - 1000))
        .collect();
    serde_json::to_vec(&events).expect("serialize")
}

/// POSTs on a blocking thread.
async fn post(
    address: std::net::SocketAddr,
    body: Vec<u8>,
) -> (u16, Option<u64>, serde_json::Value) {
    let (status, retry_after, text) = tokio::task::spawn_blocking(move || {
        http(address, "POST", "/v1/batch", Some(SHOP_INGEST), &body)
    })
    .await
    .expect("join")
    .expect("request");
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, retry_after, value)
}

async fn get(address: std::net::SocketAddr, path: &'static str) -> (u16, String) {
    let (status, _, text) =
        tokio::task::spawn_blocking(move || http(address, "GET", path, Some(SHOP_READ), b""))
            .await
            .expect("join")
            .expect("request");
    (status, text)
}

async fn wait_ready(address: std::net::SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while get(address, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stored_requests(address: std::net::SocketAddr) -> u64 {
    let (status, body) = get(address, "/api/v1/projects/shop/endpoints?since=1h").await;
    assert_eq!(status, 200, "{body}");
    total_requests(&body)
}

/// Injected failures: `fail_sync` makes every fsync fail, `disk_full` every WAL write.
async fn server_with_faults(
    dir: &std::path::Path,
    fail_sync: Arc<AtomicBool>,
    disk_full: Arc<AtomicBool>,
) -> LiveServer {
    let server = Server::open_with_wal_options(
        two_projects(dir),
        Arc::new(valuetrace_store::wall_clock_ms),
        move |options| {
            options.sync_hook = Some(Arc::new(move || {
                if fail_sync.load(Ordering::SeqCst) {
                    Err(std::io::Error::other("injected fsync failure"))
                } else {
                    Ok(())
                }
            }));
            options.write_hook = Some(Arc::new(move |_bytes| {
                if disk_full.load(Ordering::SeqCst) {
                    Err(std::io::Error::from_raw_os_error(28))
                } else {
                    Ok(())
                }
            }));
        },
    )
    .expect("server");
    LiveServer::start_opened(server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_is_never_acknowledged_and_the_server_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fail_sync, disk_full) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let server = server_with_faults(dir.path(), fail_sync.clone(), disk_full.clone()).await;
    let address = server.address;
    assert_eq!(post(address, batch("ok", 10)).await.0, 200);

    fail_sync.store(true, Ordering::SeqCst);
    let (status, retry_after, answer) = post(address, batch("failed", 10)).await;
    assert_eq!(status, 503, "{answer}");
    assert!(retry_after.is_some());
    assert_eq!(answer["error"]["code"], "wal_unavailable", "{answer}");
    assert_eq!(get(address, "/readyz").await.0, 503);
    // Still failing: nothing is acknowledged.
    let (status, _, _) = post(address, batch("while-failing", 10)).await;
    assert_eq!(status, 503);

    fail_sync.store(false, Ordering::SeqCst);
    wait_ready(address, Duration::from_secs(5)).await;
    // The client retries the batch that was refused: it was never stored, so it counts now.
    let (status, _, answer) = post(address, batch("failed", 10)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 10, "{answer}");
    assert_eq!(stored_requests(address).await, 20);
    let metrics = server.state.render_metrics();
    assert!(
        metrics.contains("valuetrace_wal_recoveries_total 1\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("valuetrace_wal_failures_total{kind=\"sync\"} 0\n"),
        "{metrics}"
    );
    server.stop().await;

    // After a restart, exactly the acknowledged events are there.
    let server = LiveServer::start(two_projects(dir.path())).await;
    assert_eq!(stored_requests(server.address).await, 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_recovers_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (fail_sync, disk_full) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let server = server_with_faults(dir.path(), fail_sync.clone(), disk_full.clone()).await;
    let address = server.address;
    assert_eq!(post(address, batch("before", 10)).await.0, 200);
    disk_full.store(true, Ordering::SeqCst);
    for round in 0..3 {
        let (status, retry_after, answer) =
            post(address, batch(&format!("full-{round}"), 10)).await;
        assert_eq!(status, 503, "{answer}");
        assert!(retry_after.is_some());
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("disk full"),
            "{answer}"
        );
    }
    // Recovery is attempted every second and keeps failing while the disk is full.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(address, "/readyz").await.0, 503);
    disk_full.store(false, Ordering::SeqCst);
    wait_ready(address, Duration::from_secs(5)).await;
    for round in 0..3 {
        let (status, _, answer) = post(address, batch(&format!("full-{round}"), 10)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"], 10, "{answer}");
    }
    assert_eq!(stored_requests(address).await, 40);
    server.stop().await;
    let server = LiveServer::start(two_projects(dir.path())).await;
    assert_eq!(stored_requests(server.address).await, 40);
    server.stop().await;
}

/// Whether this process may mount file systems (root on Linux).
fn can_mount() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A real full disk: the data directory on a 16 MiB tmpfs filled with ballast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_disk_answers_503_and_recovers_when_space_returns() {
    if !can_mount() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mount = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("run mount");
    assert!(status.success(), "mount failed although running as root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount.path().to_owned());
    let data = mount.path().join("data");
    let server = LiveServer::start(two_projects(&data)).await;
    let address = server.address;
    assert_eq!(post(address, batch("before", 10)).await.0, 200);

    // Fill the disk.
    let ballast = mount.path().join("ballast");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
    }
    let mut refused = 0;
    for round in 0..5 {
        let (status, retry_after, answer) =
            post(address, batch(&format!("full-{round}"), 50)).await;
        if status == 503 {
            refused += 1;
            assert!(retry_after.is_some());
        } else {
            assert_eq!(status, 200, "{answer}");
        }
    }
    assert!(refused > 0, "a full disk must refuse writes");
    std::fs::remove_file(&ballast).expect("free space");
    wait_ready(address, Duration::from_secs(5)).await;
    for round in 0..5 {
        let (status, _, answer) = post(address, batch(&format!("full-{round}"), 50)).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(stored_requests(address).await, 10 + 5 * 50);
    server.stop().await;
    let server = LiveServer::start(two_projects(&data)).await;
    assert_eq!(stored_requests(server.address).await, 10 + 5 * 50);
    server.stop().await;
}

#[tokio::test]
async fn dedup_survives_restarts_when_the_same_batches_are_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = valuetrace_store::wall_clock_ms();
    let batches: Vec<Vec<serde_json::Value>> = (0..5)
        .map(|b| {
            (0..100)
                .map(|i| api_call(&format!("replay-{b}-{i}"), now - 1000))
                .collect()
        })
        .collect();
    let key = format!("Bearer {SHOP_INGEST}");
    let open = || Server::open(two_projects(dir.path())).expect("server");
    let server = open();
    for (index, events) in batches.iter().enumerate() {
        let (status, body) = call_text(&server, batch_request(Some(&key), events)).await;
        assert_eq!(status, 200, "{body}");
        // The first three reach Parquet (and leave the WAL); the last two stay in the WAL only,
        // because the server is dropped without its shutdown persist.
        if index == 2 {
            server.state.pipeline.persist(now).expect("persist");
        }
    }
    drop(server);
    for _restart in 0..2 {
        let server = open();
        for events in &batches {
            let (status, body) = call_text(&server, batch_request(Some(&key), events)).await;
            assert_eq!(status, 200, "{body}");
            let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(answer["accepted"], 0, "{answer}");
            assert_eq!(answer["duplicates"], 100, "{answer}");
        }
        let (status, body) = call_text(
            &server,
            get_request(
                Some(&format!("Bearer {SHOP_READ}")),
                "/api/v1/projects/shop/endpoints?since=1h",
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"requests\":500"), "{body}");
    }
}
