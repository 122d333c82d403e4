//! The service's error: one enum, every variant with a kind (no wildcard), so a front maps
//! any failure to its protocol's code in one place (`ErrorKind` → HTTP status, SQLSTATE,
//! Flight status) and the redaction of internal details is never skipped.

use std::path::PathBuf;

use agora_core::{ErrorKind, HasKind};

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is not an initialized hub.
    #[error(
        "{} is not an Agora data directory; run `agora init --data-dir {}` first",
        .0.display(),
        .0.display()
    )]
    NotInitialized(PathBuf),
    /// A file of the data directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The hub secret is readable by others or damaged.
    #[error("{0}")]
    Secret(String),
    /// No valid credential: the same answer for unknown, revoked and expired ones.
    #[error("authentication required: the credential is unknown, revoked or expired")]
    Unauthenticated,
    /// The principal may not do this. Never says whether the object exists.
    #[error("{0}")]
    PermissionDenied(String),
    /// The object does not exist and the caller may know that.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request (not a query error: those are [`Error::Query`]).
    #[error("{0}")]
    InvalidInput(String),
    /// The query was refused or failed (SQL, limits, permit).
    #[error(transparent)]
    Query(#[from] agora_query::Error),
    /// The metadata store failed or refused.
    #[error(transparent)]
    Store(#[from] agora_govern::Error),
    /// The lake failed (a manifest or file could not be read).
    #[error(transparent)]
    Lake(#[from] agora_lake::Error),
    /// An ingest failed; nothing was committed.
    #[error(transparent)]
    Ingest(#[from] agora_ingest::Error),
    /// A quality profile could not be computed.
    #[error(transparent)]
    Quality(#[from] agora_quality::Error),
    /// The principal already has as many queries running as the hub allows.
    #[error(
        "you already have {running} queries running, the most one user may run at once; \
         wait for one to finish"
    )]
    Busy {
        /// The limit reached.
        running: usize,
    },
    /// A broken invariant (details for the operator's log).
    #[error("{0}")]
    Internal(String),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::NotInitialized(_) => ErrorKind::NotFound,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Unavailable,
            },
            Error::Secret(_) => ErrorKind::PermissionDenied,
            Error::Unauthenticated | Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Query(e) => e.kind(),
            Error::Store(e) => e.kind(),
            Error::Lake(e) => e.kind(),
            Error::Ingest(e) => e.kind(),
            Error::Quality(e) => e.kind(),
            Error::Busy { .. } => ErrorKind::ResourceExhausted,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl Error {
    /// The PostgreSQL error code (SQLSTATE) of this error, for the PostgreSQL protocol and
    /// for clients that classify errors by it (JDBC, psycopg). Finer than [`ErrorKind`]:
    /// a client can tell a syntax error from a refusal from a limit.
    pub fn sqlstate(&self) -> &'static str {
        use agora_query::Error as Q;
        match self {
            Error::Unauthenticated => "28P01", // invalid_password
            Error::PermissionDenied(_) | Error::Secret(_) => "42501", // insufficient_privilege
            Error::Busy { .. } => "53300",     // too_many_connections
            Error::InvalidInput(_) => "22023", // invalid_parameter_value
            Error::NotFound(_) | Error::NotInitialized(_) => "42704", // undefined_object
            Error::Query(q) => match q {
                Q::Sql(_) => "42601",      // syntax_error
                Q::ReadOnly(_) => "25006", // read_only_sql_transaction
                Q::UndefinedTable(_) => "42P01",
                Q::UndefinedColumn(_) => "42703",
                Q::Memory { .. } => "53200",  // out_of_memory
                Q::Timeout { .. } => "57014", // query_canceled
                Q::TooManyRows { .. } | Q::TooManyBytes { .. } => "54000", // program_limit_exceeded
                Q::TooComplex(_) => "54001",  // statement_too_complex
                Q::TooLargeValue(_) => "54000",
                Q::Evaluation => "22000", // data_exception
                Q::NoPermit => "42501",
                Q::Disclosure(_) => "42501",
                Q::Permit(_) => "55000", // object_not_in_prerequisite_state
                Q::Panic | Q::Engine(_) | Q::Lake(_) | Q::Store(_) => "XX000", // internal_error
            },
            Error::Store(_) | Error::Lake(_) | Error::Io { .. } => "58000", // system_error
            Error::Ingest(_) | Error::Quality(_) | Error::Internal(_) => "XX000",
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// The result of service calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
