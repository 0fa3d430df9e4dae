//! Notifications waiting for a 2xx, kept in the engine's state file with their stable ids.
//!
//! Contract: a notification is written (with the state change that caused it, in one atomic
//! file replace) before it is sent; it leaves the outbox only after a 2xx, and its id is then
//! remembered for `DELIVERED_MEMORY_MS`, so enqueuing the same id again (a re-evaluation after a
//! crash) is a no-op. A crash after a 2xx but before the state is saved sends it once more with
//! the same id: at least once, and receivers de-duplicate by id.
//!
//! A receiver that refuses a notification for good (a 4xx other than 408 and 429: a bad
//! payload, a revoked webhook) will refuse every retry too: it is dropped at once, counted in
//! `rejected`, and kept in `rejections` (the last [`REJECTIONS_KEPT`]) with the receiver's answer.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How long delivered ids are remembered.
pub const DELIVERED_MEMORY_MS: i64 = 7 * 86_400_000;
/// Longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 5 * 60_000;
/// Rejected notifications kept with the receiver's answer.
pub const REJECTIONS_KEPT: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: String,
    pub channel: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub created_at: i64,
    pub attempts: u32,
    pub next_attempt_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outbox {
    pub pending: Vec<OutboxEntry>,
    /// (id, delivered at), oldest first.
    pub delivered: VecDeque<(String, i64)>,
    /// Notifications dropped after `max_age` without a 2xx.
    #[serde(default)]
    pub abandoned: u64,
    /// Notifications a receiver refused for good (a 4xx other than 408/429), not retried.
    #[serde(default)]
    pub rejected: u64,
    /// The last rejections, oldest first.
    #[serde(default)]
    pub rejections: VecDeque<Rejection>,
}

/// A notification a receiver refused for good, with its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    pub id: String,
    pub channel: String,
    pub at: i64,
    pub created_at: i64,
    pub attempts: u32,
    /// The receiver's status and the start of its body.
    pub error: String,
}

/// Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 5 min.
pub fn backoff_ms(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(20);
    (1000_i64 << exponent).min(MAX_BACKOFF_MS)
}

impl Outbox {
    pub fn knows(&self, id: &str) -> bool {
        self.pending.iter().any(|entry| entry.id == id)
            || self.delivered.iter().any(|(known, _)| known == id)
    }

    /// Adds a notification unless its id is pending or was delivered; returns whether it did.
    pub fn enqueue(&mut self, entry: OutboxEntry) -> bool {
        if self.knows(&entry.id) {
            return false;
        }
        self.pending.push(entry);
        true
    }

    /// Entries whose next attempt is due.
    pub fn due(&self, now: i64) -> Vec<OutboxEntry> {
        self.pending
            .iter()
            .filter(|entry| entry.next_attempt_at <= now)
            .cloned()
            .collect()
    }

    pub fn delivered(&mut self, id: &str, now: i64) {
        self.pending.retain(|entry| entry.id != id);
        if !self.delivered.iter().any(|(known, _)| known == id) {
            self.delivered.push_back((id.to_owned(), now));
        }
        while self
            .delivered
            .front()
            .is_some_and(|(_, at)| now - at > DELIVERED_MEMORY_MS)
        {
            self.delivered.pop_front();
        }
    }

    /// Records a failed attempt; drops the entry when it is older than `max_age_ms` (returns it).
    pub fn failed(
        &mut self,
        id: &str,
        error: String,
        now: i64,
        max_age_ms: i64,
    ) -> Option<OutboxEntry> {
        let index = self.pending.iter().position(|entry| entry.id == id)?;
        let entry = &mut self.pending[index];
        entry.attempts += 1;
        entry.next_attempt_at = now + backoff_ms(entry.attempts);
        entry.last_error = Some(error);
        if now - entry.created_at > max_age_ms {
            self.abandoned += 1;
            return Some(self.pending.remove(index));
        }
        None
    }

    /// Drops an entry the receiver refused for good and records why; returns it.
    pub fn rejected(&mut self, id: &str, error: String, now: i64) -> Option<OutboxEntry> {
        let index = self.pending.iter().position(|entry| entry.id == id)?;
        let mut entry = self.pending.remove(index);
        entry.attempts += 1;
        entry.last_error = Some(error.clone());
        self.rejected += 1;
        self.rejections.push_back(Rejection {
            id: entry.id.clone(),
            channel: entry.channel.clone(),
            at: now,
            created_at: entry.created_at,
            attempts: entry.attempts,
            error,
        });
        while self.rejections.len() > REJECTIONS_KEPT {
            self.rejections.pop_front();
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            id: id.into(),
            channel: "c".into(),
            body: "{}".into(),
            headers: Vec::new(),
            created_at: 0,
            attempts: 0,
            next_attempt_at: 0,
            last_error: None,
        }
    }

    #[test]
    fn an_id_is_enqueued_once_even_after_delivery() {
        let mut outbox = Outbox::default();
        assert!(outbox.enqueue(entry("a")));
        assert!(!outbox.enqueue(entry("a")));
        outbox.delivered("a", 10);
        assert!(!outbox.enqueue(entry("a")), "delivered ids are remembered");
        assert!(outbox.pending.is_empty());
        outbox.delivered("b", DELIVERED_MEMORY_MS + 20);
        assert!(outbox.enqueue(entry("a")), "forgotten after a week");
    }

    #[test]
    fn failures_back_off_then_give_up() {
        let mut outbox = Outbox::default();
        outbox.enqueue(entry("a"));
        assert_eq!(outbox.failed("a", "503".into(), 100, 10_000), None);
        assert_eq!(outbox.pending[0].next_attempt_at, 1100);
        assert!(outbox.due(1099).is_empty());
        assert_eq!(outbox.due(1100).len(), 1);
        outbox.failed("a", "503".into(), 1100, 10_000);
        assert_eq!(outbox.pending[0].next_attempt_at, 3100);
        assert!(outbox.failed("a", "503".into(), 20_000, 10_000).is_some());
        assert_eq!(outbox.abandoned, 1);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
    }
}
