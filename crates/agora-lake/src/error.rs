use agora_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("lake storage error at {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("lake I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode Parquet for table {table}: {source}")]
    Parquet {
        table: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("release manifest {path} is invalid: {reason}")]
    BadManifest { path: String, reason: String },
    #[error("another ingest of dataset {dataset} is running; wait for it to finish")]
    Busy { dataset: String },
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
