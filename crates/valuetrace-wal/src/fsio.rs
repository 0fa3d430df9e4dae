//! File-system helpers: listing, creating, writing and syncing segments.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::error::{Error, Result};
use crate::format::{encode_segment_header, parse_segment_file_name, segment_file_name};
use crate::options::WalOptions;

/// The path of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(segment_file_name(id))
}

/// Every segment file in `dir` as `(id, path)`, sorted by id. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        let name = entry.file_name();
        if let Some(id) = name.to_str().and_then(parse_segment_file_name) {
            segments.push((id, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(id, _)| *id);
    Ok(segments)
}

/// fsyncs a file's data (and the metadata needed to read it back), honouring `sync` and the hook.
pub(crate) fn sync_data(options: &WalOptions, file: &File) -> std::io::Result<()> {
    if !options.sync {
        return Ok(());
    }
    if let Some(hook) = &options.sync_hook {
        hook()?;
    }
    file.sync_data()
}

/// fsyncs a file including all metadata.
pub(crate) fn sync_all(options: &WalOptions, file: &File, path: &Path) -> Result<()> {
    if !options.sync {
        return Ok(());
    }
    let synced = match &options.sync_hook {
        Some(hook) => hook().and_then(|()| file.sync_all()),
        None => file.sync_all(),
    };
    synced.map_err(|e| Error::io(OP_SYNC, path, e))
}

/// fsyncs a directory so that created, renamed or removed entries are durable.
pub(crate) fn sync_dir(options: &WalOptions, dir: &Path) -> Result<()> {
    if !options.sync {
        return Ok(());
    }
    let dir_file = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    sync_all(options, &dir_file, dir)
}

/// The `op` of an [`Error::Io`] from a failed fsync (file or directory).
pub(crate) const OP_SYNC: &str = "sync";
/// The `op` of an [`Error::Io`] from a failed segment-header write.
pub(crate) const OP_WRITE_HEADER: &str = "write segment header";

/// Writes `buf`, after asking the write hook (which may fail the write before anything is
/// written).
pub(crate) fn write_all(options: &WalOptions, mut file: &File, buf: &[u8]) -> io::Result<()> {
    if let Some(hook) = &options.write_hook {
        hook(buf.len())?;
    }
    file.write_all(buf)
}

/// Writes one frame (`header` then `payload`), asking the write hook once for the whole frame.
pub(crate) fn write_frame(
    options: &WalOptions,
    mut file: &File,
    header: &[u8],
    payload: &[u8],
) -> io::Result<()> {
    if let Some(hook) = &options.write_hook {
        hook(header.len() + payload.len())?;
    }
    file.write_all(header)?;
    file.write_all(payload)
}

/// Creates segment `id` with its header, durably (file and directory fsynced).
///
/// If writing or syncing the new file fails, the file is removed again (best effort) so that a
/// retry can use the same id and no half-made segment is left behind.
pub(crate) fn create_segment(options: &WalOptions, id: u64) -> Result<File> {
    let path = segment_path(&options.dir, id);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("create segment", &path, e))?;
    let initialised = write_all(options, &file, &encode_segment_header())
        .map_err(|e| Error::io(OP_WRITE_HEADER, &path, e))
        .and_then(|()| sync_all(options, &file, &path))
        .and_then(|()| sync_dir(options, &options.dir));
    match initialised {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file);
            if let Err(remove) = fs::remove_file(&path) {
                warn!(segment = %path.display(), error = %remove, "cannot remove a wal segment whose creation failed");
            }
            Err(e)
        }
    }
}
