//! The request path's hand-off of kept calls: when sampling keeps a call, the request thread
//! appends it to a buffer of its own, and the sender thread builds the raw events from the
//! buffers every few milliseconds. Building an event (its id, a dozen owned strings) is the
//! request path's only expensive step, ~1.5 µs; handed off, a kept call costs the request an
//! uncontended lock and a copy, and allocates nothing. (Counting in the aggregates and deciding
//! the sample stay on the request path: they touch a small, hot working set, while a hand-off
//! of every call would write a few hundred bytes per call into memory the other core just
//! read, which measured slower.)
//!
//! Each thread has its own buffer per recorder (a `Mutex<Vec>` that only its thread and the
//! drainer touch; the request thread only ever `try_lock`s it, so it never waits: while the
//! drainer swaps the two vectors, it builds the event itself). A thread's first kept call
//! allocates its buffer (two vectors of 64 calls); they grow to the thread's peak kept calls per
//! drain interval and keep that size (at most [`CAPACITY`] calls each, ~340 KB), so a steady
//! load allocates nothing. When a buffer is full (the sender is stuck in a send, or the load is
//! extreme) the request thread builds the event itself and the bounded queue drops and counts
//! as before.
//!
//! Something must drain the buffers: the [`Client`](crate::Client)'s sender does. A recorder
//! used without one keeps up to [`CAPACITY`] kept calls per thread until
//! [`Recorder::process_handoff`](crate::recorder::Recorder::process_handoff) is called.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Calls one thread's buffer holds at most between two drains: the sender drains every 5 ms, so
/// this covers ~200k kept calls per second and thread (2M requests at the default ~10% kept);
/// beyond, or while the sender is stuck in a send, the request thread does the work itself.
pub const CAPACITY: usize = 1_024;

/// A new buffer's room: it grows with the thread's load (and keeps its peak size, so a steady
/// load allocates nothing).
const INITIAL: usize = 64;

/// One thread's buffer: the calls since the last drain, and the drainer's spare vector (so a
/// drain swaps two vectors of full capacity and neither side allocates).
struct Buffer<T> {
    calls: Mutex<Vec<T>>,
    spare: Mutex<Vec<T>>,
}

/// The buffers of every thread that has handed calls to one recorder.
pub struct Handoff<T> {
    id: usize,
    buffers: Mutex<Vec<Arc<Buffer<T>>>>,
}

/// Tells handoffs apart in the per-thread table (recorders are never freed, so ids are never
/// reused).
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

impl<T: Send + 'static> Default for Handoff<T> {
    fn default() -> Self {
        Handoff {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            buffers: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Send + 'static> Handoff<T> {
    /// Appends `call` to this thread's buffer; gives it back when the buffer is full.
    pub fn push(&self, call: T) -> Result<(), T> {
        thread_local! {
            // (handoff id, this thread's buffer for it), type-erased: a thread usually serves
            // one recorder, so this is a one-element scan.
            static MINE: RefCell<Vec<(usize, Arc<dyn std::any::Any + Send + Sync>)>> =
                const { RefCell::new(Vec::new()) };
        }
        // The call stays out here until it is pushed: whatever fails (this thread's table
        // already destroyed at its exit, a poisoned lock, a full buffer) gives it back.
        let mut call = Some(call);
        let _ = MINE.try_with(|mine| {
            let Ok(mut mine) = mine.try_borrow_mut() else {
                return;
            };
            let buffer = match mine.iter().position(|(id, _)| *id == self.id) {
                Some(index) => &mine[index].1,
                None => {
                    let buffer = Arc::new(Buffer {
                        calls: Mutex::new(Vec::with_capacity(INITIAL)),
                        spare: Mutex::new(Vec::with_capacity(INITIAL)),
                    });
                    match self.buffers.lock() {
                        Ok(mut buffers) => buffers.push(buffer.clone()),
                        Err(_) => return,
                    }
                    mine.push((self.id, buffer));
                    &mine.last().expect("just pushed").1
                }
            };
            let Some(buffer) = buffer.downcast_ref::<Buffer<T>>() else {
                return;
            };
            // Never waits: while the drainer swaps this buffer, the caller builds the event.
            let Ok(mut calls) = buffer.calls.try_lock() else {
                return;
            };
            if calls.len() < CAPACITY {
                calls.extend(call.take());
            }
        });
        match call {
            None => Ok(()),
            Some(call) => Err(call),
        }
    }

    /// Takes every handed-off call, thread by thread, and gives each to `process`. Buffers of
    /// threads that have exited are dropped once empty.
    pub fn drain(&self, mut process: impl FnMut(T)) {
        let buffers: Vec<Arc<Buffer<T>>> = match self.buffers.lock() {
            Ok(mut buffers) => {
                // Only the registry holds the buffer of an exited thread; its calls were
                // taken by an earlier drain if it is empty.
                buffers.retain(|buffer| {
                    Arc::strong_count(buffer) > 1
                        || buffer
                            .calls
                            .try_lock()
                            .map_or(true, |calls| !calls.is_empty())
                });
                buffers.clone()
            }
            Err(_) => return,
        };
        for buffer in buffers {
            let Ok(mut spare) = buffer.spare.lock() else {
                continue;
            };
            if let Ok(mut calls) = buffer.calls.lock() {
                std::mem::swap(&mut *calls, &mut *spare);
            }
            for call in spare.drain(..) {
                process(call);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_hands_its_calls_over_and_a_full_buffer_gives_the_call_back() {
        let handoff: &'static Handoff<u32> = Box::leak(Box::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..100 {
                        handoff.push(t * 1_000 + i).expect("room");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        let mut seen = Vec::new();
        handoff.drain(|call| seen.push(call));
        seen.sort_unstable();
        let expected: Vec<u32> = (0..4)
            .flat_map(|t| (0..100).map(move |i| t * 1_000 + i))
            .collect();
        assert_eq!(seen, expected);
        // The exited threads' buffers are gone once drained empty.
        handoff.drain(|_| panic!("nothing left"));
        assert_eq!(handoff.buffers.lock().expect("lock").len(), 0);

        let full: Handoff<usize> = Handoff::default();
        for i in 0..CAPACITY {
            full.push(i).expect("room");
        }
        assert_eq!(full.push(CAPACITY), Err(CAPACITY));
        let mut n = 0;
        full.drain(|_| n += 1);
        assert_eq!(n, CAPACITY);
        full.push(0).expect("room again after a drain");
    }
}
