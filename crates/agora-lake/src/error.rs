use agora_core::{ErrorKind, HasKind};

/// What can go wrong in the lake. Messages name lake paths, tables and datasets, never a
/// data value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store failed on an object (read, write, list or delete).
    #[error("lake storage error at {path}: {source}")]
    Store {
        /// The object's path inside the lake.
        path: String,
        /// The object store's own error.
        #[source]
        source: object_store::Error,
    },
    /// A local file-system operation failed (creating the lake root, fsync, lock files).
    #[error("lake I/O error at {path}: {source}")]
    Io {
        /// The local path operated on.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding a table's rows into Parquet failed (e.g. a batch that does not match the
    /// table's schema).
    #[error("cannot encode Parquet for table {table}: {source}")]
    Parquet {
        /// The table being written.
        table: String,
        /// The Parquet writer's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A release manifest could not be read as JSON of the expected shape, or written.
    #[error("release manifest {path} is invalid: {reason}")]
    BadManifest {
        /// The manifest's path inside the lake.
        path: String,
        /// The JSON (de)serializer's explanation.
        reason: String,
    },
    /// The dataset's ingest lock is held by another process ([`crate::DatasetLock`]).
    #[error("another ingest of dataset {dataset} is running; wait for it to finish")]
    Busy {
        /// The locked dataset.
        dataset: String,
    },
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Busy { .. } => ErrorKind::Conflict,
            Error::BadManifest { .. } | Error::Parquet { .. } => ErrorKind::Internal,
            Error::Store { .. } | Error::Io { .. } => ErrorKind::Unavailable,
        }
    }
}

/// The lake's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn store_err(
    path: &object_store::path::Path,
) -> impl FnOnce(object_store::Error) -> Error {
    let path = path.to_string();
    move |source| Error::Store { path, source }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.display().to_string();
    move |source| Error::Io { path, source }
}
