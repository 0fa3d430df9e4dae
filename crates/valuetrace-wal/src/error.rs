//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the WAL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on a WAL file or directory failed.
    #[error("failed to {op} {}", path.display())]
    Io {
        /// What was being done, e.g. `"sync"`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An earlier write or fsync failed and [`crate::Wal::recover`] has not succeeded since; the
    /// WAL refuses appends and rotations meanwhile. Also returned to an append whose frame was
    /// written but not made durable before the failure.
    #[error("wal is poisoned by an earlier write or sync failure")]
    Poisoned,
    /// The payload is longer than [`crate::format::MAX_PAYLOAD_LEN`].
    #[error("payload of {len} bytes exceeds the maximum of {max} bytes")]
    PayloadTooLarge {
        /// The rejected payload's length.
        len: usize,
        /// The maximum payload length.
        max: usize,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
