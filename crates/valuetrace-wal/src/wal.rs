//! The [`Wal`] handle: appends with group commit, rotation, removal of old segments, and
//! recovery from write and fsync failures.
//!
//! All mutable state lives in one [`Mutex`]. An append writes its frame under the lock and then
//! waits until `synced_seq` covers it; the first waiter that finds no sync in flight becomes the
//! syncer: it fsyncs (outside the lock) everything written so far and wakes the others. Rotation
//! waits for an in-flight sync to finish, so the old segment is never synced twice concurrently
//! (a concurrent second fsync could report success for data whose writeback failed).
//!
//! # Poisoning and recovery
//!
//! A failed frame write, fsync or segment creation poisons the WAL: the failing append gets the
//! I/O error, every waiting append whose frame is not yet durable (and not covered by an fsync
//! still in flight) and every later append get [`Error::Poisoned`]. So (with `sync` on) an append
//! returns `Ok` only if an fsync that started after its frame was written succeeded.
//!
//! [`Wal::recover`] makes a poisoned WAL usable again. The kernel may drop dirty pages after a
//! failed fsync and still report success for the next fsync of the same file ("fsyncgate"), so
//! recovery never fsyncs again and trusts the unacknowledged data to be durable. It relies only on
//! what earlier *successful* fsyncs covered: `durable_bytes`, the length of the current segment
//! covered by the last successful fsync (with `sync` off: by the last acknowledged write). Every
//! byte after it belongs to frames whose appenders got an error. Recovery
//!
//! 1. waits until no fsync is in flight and every appender waiting for durability has returned
//!    (each of them has its final answer then; no one can be told `Ok` for a frame that is about
//!    to be cut off, and no sync result can arrive after the cut);
//! 2. truncates the current segment to `durable_bytes` and fsyncs it, so the unacknowledged
//!    frames (or the partial frame of a failed write) are gone, also after a crash (this fsync
//!    only has to make the cut durable; no acknowledged byte depends on it);
//! 3. starts a fresh segment (header written, file and directory fsynced), so no later frame is
//!    written next to pages whose state after a failed fsync is unknown;
//! 4. only then clears the poison. If any step fails, the WAL stays poisoned and the error is
//!    returned; calling [`Wal::recover`] again retries (steps are idempotent).
//!
//! Seqs of frames that were written but cut off (or whose write failed) are skipped, never
//! reused by this handle: the next frame gets a seq above all of them. Had the truncation not
//! reached the disk after all, a resurrected unacknowledged frame then still has a lower seq than
//! every later frame, so replay (which skips non-increasing seqs) could not drop an acknowledged
//! frame because of it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tracing::{debug, error, info, warn};

use crate::error::{Error, Result};
use crate::format::{FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN, encode_frame_header};
use crate::fsio::{
    OP_SYNC, OP_WRITE_HEADER, create_segment, list_segments, segment_path, sync_all, sync_data,
    sync_dir, write_frame,
};
use crate::options::{ReplayStats, WalOptions, WalStats};
use crate::replay::recover as replay_dir;

/// A write-ahead log. `Send + Sync`; share it behind an `Arc`.
pub struct Wal {
    options: WalOptions,
    inner: Mutex<Inner>,
    /// Signalled whenever `synced_seq`, `syncing`, `poisoned`, `recovering` change, or `waiters`
    /// drops to zero.
    changed: Condvar,
    /// Segments skipped at open; never deleted by [`Wal::remove_segments_through`].
    unreadable_segments: Vec<u64>,
}

struct Inner {
    /// The current segment; shared with a syncing or recovering thread while the lock is released.
    file: Arc<File>,
    segment_id: u64,
    /// The length of the current segment as far as frames were written completely.
    segment_bytes: u64,
    /// The length of the current segment covered by the last successful fsync (with `sync` off:
    /// by the last acknowledged write). Everything after it is unacknowledged.
    durable_bytes: u64,
    segment_frames: u64,
    /// The seq of the next frame; a failed write consumes its seq too.
    next_seq: u64,
    /// The highest seq written to the current or an earlier segment.
    written_seq: u64,
    /// The highest seq known to be durable.
    synced_seq: u64,
    /// A thread is fsyncing with the lock released.
    syncing: bool,
    /// While `syncing`: the highest seq that fsync makes durable if it succeeds.
    sync_target: u64,
    /// Appenders inside [`Wal::wait_durable`].
    waiters: usize,
    /// A write or fsync failed and no [`Wal::recover`] has succeeded since.
    poisoned: bool,
    /// A thread runs [`Wal::recover`]'s I/O with the lock released.
    recovering: bool,
    /// A panic happened while the state was being changed: poisoned for good.
    broken: bool,
    stats: WalStats,
}

/// Marks the WAL as broken if the thread panics during an fsync it runs with the lock released
/// (only a sync hook can panic there), instead of leaving `syncing` set forever.
struct SyncInFlight<'a>(&'a Wal);

impl Drop for SyncInFlight<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut inner = self.0.lock();
            inner.syncing = false;
            inner.poisoned = true;
            inner.broken = true;
            self.0.changed.notify_all();
        }
    }
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
        let recovery = replay_dir(&options, &mut replay)?;
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
                durable_bytes: SEGMENT_HEADER_LEN as u64,
                segment_frames: 0,
                next_seq,
                written_seq: next_seq - 1,
                synced_seq: next_seq - 1,
                syncing: false,
                sync_target: 0,
                waiters: 0,
                poisoned: false,
                recovering: false,
                broken: false,
                stats: WalStats {
                    corrupt_frames_at_open: stats.corrupt_frames,
                    unreadable_segments_at_open: stats.unreadable_segments,
                    ..WalStats::default()
                },
            }),
            changed: Condvar::new(),
            unreadable_segments: recovery.unreadable,
        };
        Ok((wal, stats))
    }

    /// Appends one frame and returns its seq once the frame is durable (fsynced). Blocks.
    ///
    /// Concurrent appends share fsyncs (group commit). After any write or fsync failure the WAL
    /// is poisoned: the failing call returns the I/O error, every waiting append whose frame is
    /// not durable and every later append returns [`Error::Poisoned`], until [`Wal::recover`]
    /// succeeds. Nothing is acknowledged after a failed sync, and a frame whose append returned
    /// an error is removed by the next successful [`Wal::recover`].
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
        // consumed even if the write fails: seqs of failed frames are never reused
        inner.next_seq += 1;
        let header = encode_frame_header(seq, payload);
        if let Err(source) = write_frame(&self.options, &inner.file, &header, payload) {
            let path = self.segment_path(inner.segment_id);
            error!(segment = %path.display(), seq, error = %source, "wal write failed, poisoning the wal");
            inner.stats.write_failures += 1;
            self.poison(&mut inner);
            return Err(Error::io("append to", path, source));
        }
        inner.written_seq = seq;
        inner.segment_bytes += frame_len;
        inner.segment_frames += 1;
        inner.stats.frames_appended += 1;
        inner.stats.bytes_appended += frame_len;
        if !self.options.sync {
            inner.synced_seq = seq;
            inner.durable_bytes = inner.segment_bytes;
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

    /// Makes a poisoned WAL usable again; a no-op returning `Ok` if it is not poisoned.
    ///
    /// Waits for in-flight fsyncs and for appenders still waiting on the failed group, then
    /// truncates the current segment to the length covered by the last successful fsync (every
    /// frame after it was not acknowledged: its append returned an error), fsyncs it, and starts
    /// a new segment. Only if all of that succeeds is the poison cleared; otherwise the WAL stays
    /// poisoned and the error is returned, and calling this again later retries (e.g. once a
    /// full disk has space again). Appends fail fast with [`Error::Poisoned`] meanwhile.
    ///
    /// Guarantees: acknowledged frames are never touched; after a successful call the log holds
    /// no frame whose append returned an error (in-process; see the crate docs for crashes);
    /// seqs keep growing and the seqs of removed frames are skipped, not reused.
    ///
    /// Returns [`Error::Poisoned`] for good if a panic happened while the WAL's state was being
    /// changed (only possible from an injected hook); reopen the WAL then.
    pub fn recover(&self) -> Result<()> {
        let mut inner = self.lock();
        loop {
            if inner.broken {
                return Err(Error::Poisoned);
            }
            if !inner.poisoned {
                return Ok(());
            }
            if inner.recovering || inner.syncing || inner.waiters > 0 {
                inner = self.wait(inner);
                continue;
            }
            break;
        }
        inner.recovering = true;
        let file = Arc::clone(&inner.file);
        let old_id = inner.segment_id;
        let durable_bytes = inner.durable_bytes;
        drop(inner);
        let outcome = self.recover_io(&file, old_id, durable_bytes);
        drop(file);
        let mut inner = self.lock();
        inner.recovering = false;
        self.changed.notify_all();
        match outcome {
            Ok(_) if inner.broken => Err(Error::Poisoned),
            Ok((new_id, new_file, cut_bytes)) => {
                let lost_seqs = inner.next_seq - 1 - inner.synced_seq;
                inner.file = Arc::new(new_file);
                inner.segment_id = new_id;
                inner.segment_bytes = SEGMENT_HEADER_LEN as u64;
                inner.durable_bytes = SEGMENT_HEADER_LEN as u64;
                inner.segment_frames = 0;
                inner.written_seq = inner.next_seq - 1;
                inner.synced_seq = inner.written_seq;
                inner.poisoned = false;
                inner.stats.recoveries += 1;
                info!(
                    truncated_segment = old_id,
                    durable_bytes,
                    cut_bytes,
                    skipped_seqs = lost_seqs,
                    segment = new_id,
                    next_seq = inner.next_seq,
                    "wal recovered from a write or sync failure"
                );
                Ok(())
            }
            Err(e) => {
                self.count_failure(&mut inner, &e);
                warn!(error = %e, "wal recovery failed, the wal stays poisoned");
                Err(e)
            }
        }
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

    /// Counters and histograms since open.
    pub fn stats(&self) -> WalStats {
        self.lock().stats.clone()
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// The id of the segment appends currently go to.
    pub fn current_segment_id(&self) -> u64 {
        self.lock().segment_id
    }

    /// `true` while a write or fsync failure has not been recovered from ([`Wal::recover`]);
    /// every append fails meanwhile.
    pub fn is_poisoned(&self) -> bool {
        self.lock().poisoned
    }

    /// Group commit: returns once `seq` is durable, syncing on behalf of everyone if no other
    /// thread is.
    fn wait_durable<'a>(&'a self, mut inner: MutexGuard<'a, Inner>, seq: u64) -> Result<u64> {
        inner.waiters += 1;
        let (mut inner, result) = self.wait_durable_locked(inner, seq);
        inner.waiters -= 1;
        if inner.waiters == 0 && inner.poisoned {
            // a recovery may be waiting for the last appender of the failed group
            self.changed.notify_all();
        }
        result
    }

    fn wait_durable_locked<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        seq: u64,
    ) -> (MutexGuard<'a, Inner>, Result<u64>) {
        loop {
            if inner.synced_seq >= seq {
                return (inner, Ok(seq));
            }
            // an fsync in flight that covers `seq` decides, even once poisoned: if it succeeds
            // the frame is durable and must be acknowledged (recovery keeps it)
            let covered = inner.syncing && inner.sync_target >= seq;
            if inner.poisoned && !covered {
                return (inner, Err(Error::Poisoned));
            }
            if inner.syncing {
                inner = self.wait(inner);
                continue;
            }
            inner.syncing = true;
            let target = inner.written_seq;
            let target_bytes = inner.segment_bytes;
            inner.sync_target = target;
            let file = Arc::clone(&inner.file);
            let segment_id = inner.segment_id;
            drop(inner);
            let in_flight = SyncInFlight(self);
            let started = Instant::now();
            let synced = sync_data(&self.options, &file);
            let elapsed = started.elapsed();
            drop(in_flight);
            drop(file);
            inner = self.lock();
            inner.syncing = false;
            match synced {
                Ok(()) => {
                    // rotation and recovery wait for `syncing`, so the segment did not change
                    debug_assert_eq!(inner.segment_id, segment_id);
                    let frames = target.saturating_sub(inner.synced_seq);
                    inner.stats.fsyncs += 1;
                    inner.stats.fsync_seconds.observe(elapsed.as_secs_f64());
                    inner.stats.frames_per_fsync.observe(frames as f64);
                    inner.synced_seq = inner.synced_seq.max(target);
                    if inner.segment_id == segment_id {
                        inner.durable_bytes = inner.durable_bytes.max(target_bytes);
                    }
                    self.changed.notify_all();
                }
                Err(source) => {
                    let path = self.segment_path(segment_id);
                    error!(segment = %path.display(), error = %source, "wal sync failed, poisoning the wal");
                    inner.stats.sync_failures += 1;
                    self.poison(&mut inner);
                    return (inner, Err(Error::io(OP_SYNC, path, source)));
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
            let started = Instant::now();
            if let Err(source) = sync_data(&self.options, &inner.file) {
                let path = self.segment_path(old_id);
                error!(segment = %path.display(), error = %source, "wal sync before rotation failed, poisoning the wal");
                inner.stats.sync_failures += 1;
                self.poison(&mut inner);
                return (inner, Err(Error::io(OP_SYNC, path, source)));
            }
            if self.options.sync {
                let frames = inner.written_seq - inner.synced_seq;
                inner.stats.fsyncs += 1;
                inner
                    .stats
                    .fsync_seconds
                    .observe(started.elapsed().as_secs_f64());
                inner.stats.frames_per_fsync.observe(frames as f64);
            }
            inner.synced_seq = inner.written_seq;
            inner.durable_bytes = inner.segment_bytes;
            self.changed.notify_all();
        }
        let new_id = old_id.saturating_add(1);
        match create_segment(&self.options, new_id) {
            Ok(file) => {
                inner.file = Arc::new(file);
                inner.segment_id = new_id;
                inner.segment_bytes = SEGMENT_HEADER_LEN as u64;
                inner.durable_bytes = SEGMENT_HEADER_LEN as u64;
                inner.segment_frames = 0;
                debug!(closed = old_id, opened = new_id, "rotated wal segment");
                (inner, Ok(old_id))
            }
            Err(e) => {
                error!(segment = new_id, error = %e, "wal segment creation failed, poisoning the wal");
                self.count_failure(&mut inner, &e);
                self.poison(&mut inner);
                (inner, Err(e))
            }
        }
    }

    /// The I/O of [`Wal::recover`], run without the lock: cut the current segment back to its
    /// durable length, fsync it, and create the next segment. Returns the new segment's id and
    /// file and the number of bytes cut off.
    fn recover_io(&self, file: &File, old_id: u64, durable_bytes: u64) -> Result<(u64, File, u64)> {
        let path = self.segment_path(old_id);
        let len = file
            .metadata()
            .map_err(|e| Error::io("inspect segment", &path, e))?
            .len();
        if len > durable_bytes {
            file.set_len(durable_bytes)
                .map_err(|e| Error::io("truncate segment", &path, e))?;
        }
        // makes the cut durable; no acknowledged data depends on this fsync's honesty
        sync_all(&self.options, file, &path)?;
        // skip ids of segments whose failed creation could not be removed
        let mut new_id = old_id.saturating_add(1);
        while std::fs::symlink_metadata(self.segment_path(new_id)).is_ok() && new_id < u64::MAX {
            new_id += 1;
        }
        let new_file = create_segment(&self.options, new_id)?;
        Ok((new_id, new_file, len.saturating_sub(durable_bytes)))
    }

    /// Counts a failed segment-header write or fsync reported as an [`Error`].
    fn count_failure(&self, inner: &mut Inner, e: &Error) {
        if let Error::Io { op, .. } = e {
            match *op {
                OP_WRITE_HEADER => inner.stats.write_failures += 1,
                OP_SYNC => inner.stats.sync_failures += 1,
                _ => {}
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

    /// Locks the state. A panic while holding the lock cannot leave a trustworthy state, so a
    /// poisoned mutex poisons the WAL for good.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.poisoned = true;
            inner.broken = true;
            inner
        })
    }

    fn wait<'a>(&self, inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.changed.wait(inner).unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.poisoned = true;
            inner.broken = true;
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
    use std::sync::atomic::{AtomicBool, Ordering};

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
    fn failed_sync_poisons_until_recovered() {
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
        // even when syncs work again, the wal stays poisoned until recovered
        fail.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(matches!(wal.append(b"later"), Err(Error::Poisoned)));
        }
        assert!(matches!(wal.rotate(), Err(Error::Poisoned)));
        assert!(wal.is_poisoned());
        let stats = wal.stats();
        assert_eq!((stats.sync_failures, stats.recoveries), (1, 0));

        wal.recover().expect("recover");
        assert!(!wal.is_poisoned());
        assert_eq!(wal.current_segment_id(), 2, "recovery starts a new segment");
        // seq 2 went to the lost frame and is skipped
        assert_eq!(wal.append(b"again").expect("append"), 3);
        wal.recover().expect("recover is a no-op when not poisoned");
        assert_eq!(wal.stats().recoveries, 1);
    }

    #[test]
    fn panicking_sync_hook_breaks_the_wal_for_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = options(dir.path());
        let armed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&armed);
        opts.sync_hook = Some(Arc::new(move || {
            assert!(!flag.load(Ordering::SeqCst), "injected panic");
            Ok(())
        }));
        let (wal, _) = Wal::open(opts, |_, _| {}).expect("open");
        let wal = Arc::new(wal);
        armed.store(true, Ordering::SeqCst);
        let appender = Arc::clone(&wal);
        let joined = std::thread::spawn(move || appender.append(b"x")).join();
        assert!(joined.is_err(), "the sync hook panicked");
        armed.store(false, Ordering::SeqCst);
        // no hang: syncing was reset, the wal is poisoned and cannot be recovered in-process
        assert!(wal.is_poisoned());
        assert!(matches!(wal.append(b"y"), Err(Error::Poisoned)));
        assert!(matches!(wal.recover(), Err(Error::Poisoned)));
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
