//! Generic JSON webhook, signed with HMAC-SHA256 so the receiver knows it came from us:
//! `X-Valuetrace-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>` with the
//! timestamp (ms since the epoch, when the notification was made) in `X-Valuetrace-Timestamp`.
//! A receiver recomputes the HMAC over the raw body, compares in constant time, and may refuse
//! old timestamps (a retry keeps its timestamp, so allow for the retry window).

use super::{ChannelDef, Notice, Rendered};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-valuetrace-signature";
pub const TIMESTAMP_HEADER: &str = "x-valuetrace-timestamp";

pub fn render(
    channel: &ChannelDef,
    id: String,
    group: &str,
    notices: &[Notice],
    created_at: i64,
) -> Rendered {
    let firing = notices.iter().any(|n| !n.is_resolved());
    let mut body = json!({
        "id": id,
        "version": 1,
        "project": notices.first().map(|n| n.project.clone()).unwrap_or_default(),
        "group": group,
        "status": if firing { "firing" } else { "resolved" },
        "created_at": created_at,
        "alerts": notices,
    });
    if notices.iter().any(|n| n.test) {
        body["test"] = json!(true);
    }
    let body = body.to_string();
    let secret = channel.hmac_secret().unwrap_or_default();
    let signature = sign(secret.as_bytes(), created_at, &body);
    Rendered {
        id,
        body,
        headers: vec![
            (SIGNATURE_HEADER.into(), format!("sha256={signature}")),
            (TIMESTAMP_HEADER.into(), created_at.to_string()),
        ],
    }
}

/// Hex HMAC-SHA256 of `"<timestamp>.<body>"`.
pub fn sign(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a signature header value (`sha256=<hex>`) in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &str, header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    let expected = sign(secret, timestamp, body);
    expected.len() == hex.len()
        && expected
            .bytes()
            .zip(hex.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
