use agora_core::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata store error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("metadata store schema migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported metadata store URL scheme {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ErrorKind::Unavailable
            }
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::UnsupportedUrl(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
