//! File-system helpers: listing, creating and syncing segments.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

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
    synced.map_err(|e| Error::io("sync", path, e))
}

/// fsyncs a directory so that created, renamed or removed entries are durable.
pub(crate) fn sync_dir(options: &WalOptions, dir: &Path) -> Result<()> {
    if !options.sync {
        return Ok(());
    }
    let dir_file = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    sync_all(options, &dir_file, dir)
}

/// Creates segment `id` with its header, durably (file and directory fsynced).
pub(crate) fn create_segment(options: &WalOptions, id: u64) -> Result<File> {
    let path = segment_path(&options.dir, id);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("create segment", &path, e))?;
    file.write_all(&encode_segment_header())
        .map_err(|e| Error::io("write segment header", &path, e))?;
    sync_all(options, &file, &path)?;
    sync_dir(options, &options.dir)?;
    Ok(file)
}
