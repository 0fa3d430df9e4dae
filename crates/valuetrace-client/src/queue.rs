//! The hand-off from the host's request path to the sender: a bounded queue. `push` never
//! blocks and never allocates beyond the queue's fixed capacity; when the queue is full the event
//! is dropped and counted, so a slow or dead collector costs the host nothing but the drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// Counters the host can read.
#[derive(Debug, Default)]
pub struct Counters {
    pub enqueued: AtomicU64,
    pub dropped: AtomicU64,
}

pub struct Producer<T> {
    sender: SyncSender<T>,
    counters: std::sync::Arc<Counters>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            sender: self.sender.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// A bounded queue of `capacity` items: the producer side for the request path, the consumer
/// side for the sender task, and the shared counters.
pub fn bounded<T>(capacity: usize) -> (Producer<T>, Receiver<T>, std::sync::Arc<Counters>) {
    let (sender, receiver) = sync_channel(capacity.max(1));
    let counters = std::sync::Arc::new(Counters::default());
    (
        Producer {
            sender,
            counters: counters.clone(),
        },
        receiver,
        counters,
    )
}

impl<T> Producer<T> {
    /// Counts an item dropped before it was built (the collector is known to be unreachable).
    pub fn count_drop(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Enqueues `item` without waiting; returns false (and counts a drop) when the queue is full
    /// or the sender is gone.
    pub fn push(&self, item: T) -> bool {
        match self.sender.try_send(item) {
            Ok(()) => {
                self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let (producer, receiver, counters) = bounded::<u32>(3);
        let pushed: Vec<bool> = (0..5).map(|i| producer.push(i)).collect();
        assert_eq!(pushed, vec![true, true, true, false, false]);
        assert_eq!(counters.enqueued.load(Ordering::Relaxed), 3);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(receiver.try_recv().ok(), Some(0));
        assert!(producer.push(9));
        drop(receiver);
        assert!(!producer.push(10), "a dead sender side counts as a drop");
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn many_threads_push_concurrently_and_every_item_is_accounted_for() {
        let (producer, receiver, counters) = bounded::<u64>(1_000);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let producer = producer.clone();
                scope.spawn(move || {
                    for i in 0..10_000 {
                        producer.push(t * 100_000 + i);
                    }
                });
            }
            let mut received = 0u64;
            while received < 1_000 {
                if receiver.recv().is_ok() {
                    received += 1;
                }
            }
        });
        let enqueued = counters.enqueued.load(Ordering::Relaxed);
        let dropped = counters.dropped.load(Ordering::Relaxed);
        assert_eq!(enqueued + dropped, 40_000);
    }
}
