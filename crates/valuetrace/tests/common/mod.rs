//! Helpers for end-to-end tests: start the real binary on a free port, a tiny blocking HTTP client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const INGEST_KEY: &str = "vt_ingest_e2e_test_key";
pub const READ_KEY: &str = "vt_read_e2e_test_key";

pub fn free_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address")
}

/// Writes a config for project `shop` and returns its path.
pub fn write_config(dir: &Path, address: SocketAddr) -> PathBuf {
    let config = format!(
        "listen = \"{address}\"\ndata_dir = \"{}\"\n[storage]\npersist_interval = \"2s\"\n[[projects]]\nid = \"shop\"\ningest_key_hashes = [\"{}\"]\nread_key_hashes = [\"{}\"]\n",
        dir.join("data").display(),
        valuetrace_server::auth::key_hash_string(INGEST_KEY),
        valuetrace_server::auth::key_hash_string(READ_KEY),
    );
    let path = dir.join("valuetrace.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

pub struct ServerProcess {
    pub child: Child,
    pub address: SocketAddr,
}

impl ServerProcess {
    pub fn start(config: &Path, address: SocketAddr) -> ServerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_valuetrace"))
            .args(["serve", "--config"])
            .arg(config)
            .env("VALUETRACE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start valuetrace serve");
        let server = ServerProcess { child, address };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = request(self.address, "GET", "/readyz", None, &[]) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server on {} did not become ready", self.address);
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// SIGTERM and wait: the server persists and exits cleanly.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let exit = self.child.wait().expect("reap the server");
        assert!(exit.success(), "server exited with {exit}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = key
        .map(|key| format!("Authorization: Bearer {key}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Every `event_id` in the live Parquet files of a data dir (duplicates kept). Files that a
/// compacted file replaces are skipped, as start-up does (it deletes them): after a graceful stop
/// the last persist's compaction leaves them on disk, and counting them would count rows twice.
pub fn stored_event_ids(data_dir: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let mut stack = vec![data_dir.join("store")];
    while let Some(dir) = stack.pop() {
        let mut infos = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                infos.push(valuetrace_store::parquet_io::read_info(&path).expect("parquet footer"));
            }
        }
        let replaced: Vec<String> = infos
            .iter()
            .flat_map(|info| info.replaces.iter().cloned())
            .collect();
        for info in infos {
            let name = info.path.file_name().map(|name| name.to_string_lossy());
            if name.is_some_and(|name| replaced.iter().any(|r| *r == *name)) {
                continue;
            }
            valuetrace_store::parquet_io::read_range(
                &info,
                i64::MIN,
                i64::MAX,
                &["event_id"],
                |batch| {
                    let column = valuetrace_store::schema::Columns::new(batch).text("event_id")?;
                    ids.extend(column.iter().flatten().map(str::to_owned));
                    Ok(())
                },
            )
            .expect("read parquet");
        }
    }
    ids
}
