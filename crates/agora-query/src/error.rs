use agora_core::{ErrorKind, HasKind};
use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL is invalid or not allowed (DDL, DML...). DataFusion's message names the
    /// offending construct, never a data value.
    #[error("{0}")]
    Sql(String),
    #[error("query exceeded its memory limit of {limit_mb} MiB; aggregate more or add filters")]
    Memory { limit_mb: usize },
    #[error("query exceeded its time limit of {seconds} s")]
    Timeout { seconds: u64 },
    #[error("result has more than {max_rows} rows; aggregate, or add a LIMIT")]
    TooManyRows { max_rows: usize },
    #[error(transparent)]
    Lake(#[from] agora_lake::Error),
    #[error("query engine error: {0}")]
    Engine(String),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Sql(_) => ErrorKind::InvalidInput,
            Error::Memory { .. } | Error::Timeout { .. } | Error::TooManyRows { .. } => {
                ErrorKind::ResourceExhausted
            }
            Error::Lake(e) => e.kind(),
            Error::Engine(_) => ErrorKind::Internal,
        }
    }
}

impl Error {
    pub(crate) fn from_datafusion(e: DataFusionError, limit_mb: usize) -> Self {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(_) => Error::Memory { limit_mb },
            DataFusionError::Plan(msg)
                if [
                    "DDL not supported",
                    "DML not supported",
                    "Statement not supported",
                ]
                .iter()
                .any(|p| msg.starts_with(p)) =>
            {
                let what = msg.split_once(": ").map_or(msg.as_str(), |(_, w)| w);
                Error::Sql(format!(
                    "this workspace is read-only: only queries (SELECT, WITH, EXPLAIN...) are allowed, not {what}"
                ))
            }
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => Error::Sql(e.strip_backtrace()),
            _ => Error::Engine(e.strip_backtrace()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
