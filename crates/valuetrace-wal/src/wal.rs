//! The [`Wal`] handle: appends with group commit, rotation and removal of old segments.
//!
//! All mutable state lives in one [`Mutex`]. An append writes its frame under the lock and then
//! waits until `synced_seq` covers it; the first waiter that finds no sync in flight becomes the
//! syncer: it fsyncs (outside the lock) everything written so far and wakes the others. Rotation
//! waits for an in-flight sync to finish, so the old segment is never synced twice concurrently
//! (a concurrent second fsync could report success for data whose writeback failed).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tracing::{debug, error, info, warn};

use crate::error::{Error, Result};
use crate::format::{FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN, encode_frame_header};
use crate::fsio::{create_segment, list_segments, segment_path, sync_data, sync_dir};
use crate::options::{ReplayStats, WalOptions, WalStats};
use crate::replay::recover;

/// A write-ahead log. `Send + Sync`; share it behind an `Arc`.
pub struct Wal {
    options: WalOptions,
    inner: Mutex<Inner>,
    /// Signalled whenever `synced_seq`, `syncing` or `poisoned` change.
    changed: Condvar,
    /// Segments skipped at open; never deleted by [`Wal::remove_segments_through`].
    unreadable_segments: Vec<u64>,
    frames_appended: AtomicU64,
    bytes_appended: AtomicU64,
    fsyncs: AtomicU64,
    corrupt_frames_at_open: u64,
}

struct Inner {
    /// The current segment; shared with a syncing thread while the lock is released.
    file: Arc<File>,
    segment_id: u64,
    segment_bytes: u64,
    segment_frames: u64,
    next_seq: u64,
    /// The highest seq written to the current or an earlier segment.
    written_seq: u64,
    /// The highest seq known to be durable.
    synced_seq: u64,
    /// A thread is fsyncing with the lock released.
    syncing: bool,
    poisoned: bool,
}

impl Wal {
    /// Opens the WAL in `options.dir` (creating the directory if needed), replays every segment
    /// in id order calling `replay(seq, payload)` for each intact frame, then starts a new
    /// segment for appends; old segments are never appended to.
    ///
    /// Damaged data never makes this fail (see [`ReplayStats`]); only I/O errors do.
    pub fn open(
        options: WalOptions,
        mut replay: impl FnMut(u64, &[u8]),
    ) -> Result<(Wal, ReplayStats)> {
        std::fs::create_dir_all(&options.dir)
            .map_err(|e| Error::io("create directory", &options.dir, e))?;
        let recovery = recover(&options, &mut replay)?;
        let segment_id = recovery.max_segment_id.saturating_add(1);
        let file = create_segment(&options, segment_id)?;
        let next_seq = recovery
            .last_seq
            .saturating_add(1)
            .max(options.min_next_seq)
            .max(1);
        let stats = recovery.stats;
        info!(
            dir = %options.dir.display(),
            segments = stats.segments,
            frames = stats.frames,
            corrupt_frames = stats.corrupt_frames,
            truncated_bytes = stats.truncated_bytes,
            unreadable_segments = stats.unreadable_segments,
            next_seq,
            segment_id,
            "wal opened"
        );
        let wal = Wal {
            options,
            inner: Mutex::new(Inner {
                file: Arc::new(file),
                segment_id,
                segment_bytes: SEGMENT_HEADER_LEN as u64,
                segment_frames: 0,
                next_seq,
                written_seq: next_seq - 1,
                synced_seq: next_seq - 1,
                syncing: false,
                poisoned: false,
            }),
            changed: Condvar::new(),
            unreadable_segments: recovery.unreadable,
            frames_appended: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            corrupt_frames_at_open: stats.corrupt_frames,
        };
        Ok((wal, stats))
    }

    /// Appends one frame and returns its seq once the frame is durable (fsynced). Blocks.
    ///
    /// Concurrent appends share fsyncs (group commit). After any write or fsync failure the WAL
    /// is poisoned: the failing call returns the I/O error, every waiting and later append
    /// returns [`Error::Poisoned`]. Nothing is acknowledged after a failed sync.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_LEN,
            });
        }
        let frame_len = (FRAME_HEADER_LEN + payload.len()) as u64;
        let mut inner = self.lock();
        if inner.poisoned {
            return Err(Error::Poisoned);
        }
        if inner.segment_frames > 0
            && inner.segment_bytes.saturating_add(frame_len) > self.options.segment_max_bytes
        {
            let (guard, rotated) = self.rotate_locked(inner);
            inner = guard;
            rotated?;
        }
        let seq = inner.next_seq;
        let header = encode_frame_header(seq, payload);
        let mut file: &File = &inner.file;
        let written = file
            .write_all(&header)
            .and_then(|()| file.write_all(payload));
        if let Err(source) = written {
            let path = self.segment_path(inner.segment_id);
            error!(segment = %path.display(), seq, error = %source, "wal write failed, poisoning the wal");
            self.poison(&mut inner);
            return Err(Error::io("append to", path, source));
        }
        inner.next_seq += 1;
        inner.written_seq = seq;
        inner.segment_bytes += frame_len;
        inner.segment_frames += 1;
        self.frames_appended.fetch_add(1, Ordering::Relaxed);
        self.bytes_appended.fetch_add(frame_len, Ordering::Relaxed);
        if !self.options.sync {
            inner.synced_seq = seq;
            return Ok(seq);
        }
        self.wait_durable(inner, seq)
    }

    /// Closes the current segment (fsyncing it) and starts a new one; returns the id of the
    /// closed segment. Every frame whose append returned before this call lives in a segment
    /// with an id `<=` the returned id.
    pub fn rotate(&self) -> Result<u64> {
        let inner = self.lock();
        let (_inner, rotated) = self.rotate_locked(inner);
        rotated
    }

    /// Deletes every segment with an id `<= id`, except the current one and segments that were
    /// unreadable at open, then fsyncs the directory.
    pub fn remove_segments_through(&self, id: u64) -> Result<()> {
        let current = self.lock().segment_id;
        let mut removed = 0u64;
        for (segment_id, path) in list_segments(&self.options.dir)? {
            if segment_id > id || segment_id >= current {
                continue;
            }
            if self.unreadable_segments.contains(&segment_id) {
                warn!(segment = %path.display(), "keeping wal segment that was unreadable at open");
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove segment", path, e)),
            }
        }
        if removed > 0 {
            sync_dir(&self.options, &self.options.dir)?;
            debug!(through = id, removed, "removed wal segments");
        }
        Ok(())
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        WalStats {
            frames_appended: self.frames_appended.load(Ordering::Relaxed),
            bytes_appended: self.bytes_appended.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            corrupt_frames_at_open: self.corrupt_frames_at_open,
        }
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// The id of the segment appends currently go to.
    pub fn current_segment_id(&self) -> u64 {
        self.lock().segment_id
    }

    /// `true` once a write or fsync failed; every append then fails.
    pub fn is_poisoned(&self) -> bool {
        self.lock().poisoned
    }

    /// Group commit: returns once `seq` is durable, syncing on behalf of everyone if no other
    /// thread is.
    fn wait_durable<'a>(&'a self, mut inner: MutexGuard<'a, Inner>, seq: u64) -> Result<u64> {
        loop {
            if inner.synced_seq >= seq {
                return Ok(seq);
            }
            if inner.poisoned {
                return Err(Error::Poisoned);
            }
            if inner.syncing {
                inner = self.wait(inner);
                continue;
            }
            inner.syncing = true;
            let target = inner.written_seq;
            let file = Arc::clone(&inner.file);
            let segment_id = inner.segment_id;
            drop(inner);
            let synced = sync_data(&self.options, &file);
            drop(file);
            inner = self.lock();
            inner.syncing = false;
            match synced {
                Ok(()) => {
                    self.fsyncs.fetch_add(1, Ordering::Relaxed);
                    inner.synced_seq = inner.synced_seq.max(target);
                    self.changed.notify_all();
                }
                Err(source) => {
                    let path = self.segment_path(segment_id);
                    error!(segment = %path.display(), error = %source, "wal sync failed, poisoning the wal");
                    self.poison(&mut inner);
                    return Err(Error::io("sync", path, source));
                }
            }
        }
    }

    fn rotate_locked<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
    ) -> (MutexGuard<'a, Inner>, Result<u64>) {
        while inner.syncing {
            inner = self.wait(inner);
        }
        if inner.poisoned {
            return (inner, Err(Error::Poisoned));
        }
        let old_id = inner.segment_id;
        if inner.synced_seq < inner.written_seq {
            if let Err(source) = sync_data(&self.options, &inner.file) {
                let path = self.segment_path(old_id);
                error!(segment = %path.display(), error = %source, "wal sync before rotation failed, poisoning the wal");
                self.poison(&mut inner);
                return (inner, Err(Error::io("sync", path, source)));
            }
            if self.options.sync {
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            inner.synced_seq = inner.written_seq;
            self.changed.notify_all();
        }
        let new_id = old_id.saturating_add(1);
        match create_segment(&self.options, new_id) {
            Ok(file) => {
                inner.file = Arc::new(file);
                inner.segment_id = new_id;
                inner.segment_bytes = SEGMENT_HEADER_LEN as u64;
                inner.segment_frames = 0;
                debug!(closed = old_id, opened = new_id, "rotated wal segment");
                (inner, Ok(old_id))
            }
            Err(e) => {
                error!(segment = new_id, error = %e, "wal segment creation failed, poisoning the wal");
                self.poison(&mut inner);
                (inner, Err(e))
            }
        }
    }

    fn poison(&self, inner: &mut Inner) {
        inner.poisoned = true;
        self.changed.notify_all();
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        segment_path(&self.options.dir, id)
    }

    /// Locks the state. A panic while holding the lock cannot leave a trustworthy log, so a
    /// poisoned mutex poisons the WAL.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.poisoned = true;
            inner
        })
    }

    fn wait<'a>(&self, inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.changed.wait(inner).unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.poisoned = true;
            inner
        })
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.options.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn options(dir: &Path) -> WalOptions {
        WalOptions::new(dir)
    }

    #[test]
    fn wal_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Wal>();
    }

    #[test]
    fn append_assigns_increasing_seqs_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, stats) = Wal::open(options(dir.path()), |_, _| {}).expect("open");
        assert_eq!(stats, ReplayStats::default());
        assert_eq!(wal.append(b"a").expect("append"), 1);
        assert_eq!(wal.append(b"bc").expect("append"), 2);
        let stats = wal.stats();
        assert_eq!(stats.frames_appended, 2);
        assert_eq!(stats.bytes_appended, 2 * FRAME_HEADER_LEN as u64 + 3);
        assert_eq!(stats.fsyncs, 2);
        assert_eq!(wal.dir(), dir.path());
    }

    #[test]
    fn min_next_seq_is_a_floor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = options(dir.path());
        opts.min_next_seq = 100;
        let (wal, _) = Wal::open(opts, |_, _| {}).expect("open");
        assert_eq!(wal.append(b"x").expect("append"), 100);
    }

    #[test]
    fn failed_sync_poisons_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fail = Arc::new(AtomicBool::new(false));
        let mut opts = options(dir.path());
        let flag = Arc::clone(&fail);
        opts.sync_hook = Some(Arc::new(move || {
            if flag.load(Ordering::SeqCst) {
                Err(std::io::Error::other("injected sync failure"))
            } else {
                Ok(())
            }
        }));
        let (wal, _) = Wal::open(opts, |_, _| {}).expect("open");
        assert_eq!(wal.append(b"ok").expect("append"), 1);
        fail.store(true, Ordering::SeqCst);
        let err = wal.append(b"lost").expect_err("sync fails");
        assert!(matches!(err, Error::Io { op: "sync", .. }), "{err}");
        // even when syncs work again, the wal stays poisoned
        fail.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(matches!(wal.append(b"later"), Err(Error::Poisoned)));
        }
        assert!(matches!(wal.rotate(), Err(Error::Poisoned)));
        assert!(wal.is_poisoned());
    }

    #[test]
    fn payload_too_large_is_rejected_without_poisoning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(options(dir.path()), |_, _| {}).expect("open");
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        assert!(matches!(
            wal.append(&big),
            Err(Error::PayloadTooLarge { .. })
        ));
        assert!(!wal.is_poisoned());
        assert_eq!(wal.append(b"fine").expect("append"), 1);
    }
}
