//! `https://` targets go through TLS: a webhook to a local server that speaks plain HTTP fails in
//! the TLS handshake (not with "scheme not supported"), and the plain-HTTP delivery works.

use std::io::{Read, Write};
use valuetrace_alerts::deliver::send;
use valuetrace_alerts::notify::ChannelDef;
use valuetrace_alerts::outbox::OutboxEntry;

fn channel(url: &str) -> ChannelDef {
    serde_json::from_value(serde_json::json!({
        "name": "hook", "kind": "webhook", "url": url, "allow_private_targets": true
    }))
    .expect("channel")
}

fn entry() -> OutboxEntry {
    OutboxEntry {
        id: "n-1".into(),
        channel: "hook".into(),
        body: "{}".into(),
        headers: Vec::new(),
        created_at: 0,
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
    }
}

/// A server that answers every connection with a plain HTTP 200.
fn plain_http_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    address
}

#[tokio::test]
async fn https_targets_speak_tls() {
    let address = plain_http_server();
    let error = send(&channel(&format!("https://{address}/hook")), &entry())
        .await
        .expect_err("a plain HTTP server cannot complete a TLS handshake");
    eprintln!("https to a plain server: {error}");
    assert!(
        matches!(error, valuetrace_alerts::deliver::SendError::Transport(_)),
        "a transport failure, not a refused target: {error:?}"
    );
    let lower = error.to_string().to_ascii_lowercase();
    assert!(
        !lower.contains("scheme")
            && (lower.contains("tls")
                || lower.contains("corrupt")
                || lower.contains("handshake")
                || lower.contains("connect")),
        "{error}"
    );
    send(&channel(&format!("http://{address}/hook")), &entry())
        .await
        .expect("plain HTTP delivery");
}
