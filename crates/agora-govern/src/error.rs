use agora_core::{ErrorKind, HasKind};

use crate::ApplicationState;

/// Errors of the metadata store and of governance decisions.
///
/// Messages never contain a data value, a password, a token or a citizen identifier. A
/// caller who may not see an object gets [`Error::NotFound`], exactly as if it did not exist;
/// [`Error::PermissionDenied`] is only returned about objects the caller may see (or about
/// actions that involve no particular object).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed (connection, I/O, constraint, query). Unavailable when the pool
    /// timed out or the connection broke, otherwise internal.
    #[error("metadata store error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("metadata store schema migration {version} failed: {source}")]
    /// An embedded schema migration failed; the store is left at the previous version.
    Migration {
        /// The number of the migration that failed.
        version: i64,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// The metadata store URL has a scheme other than `sqlite:` or `postgres:` (the scheme
    /// only is echoed: the URL may hold credentials).
    #[error("unsupported metadata store URL scheme {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// The request conflicts with the stored state (e.g. a name already taken, a concurrent
    /// change won); the message says which, without values.
    #[error("{0}")]
    Conflict(String),
    /// The same source files were already committed as a release of this dataset.
    #[error("these files are already release {release} of dataset {dataset}")]
    DuplicateSource {
        /// The dataset already holding these files.
        dataset: String,
        /// The number of the release that holds them.
        release: i64,
    },
    /// A stored value cannot be read back (unknown enum text, malformed timestamp or JSON):
    /// the database was changed outside Agora or by a newer version.
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    /// The object does not exist, or the caller may not see it (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may see the object but not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The application's state does not allow this move (or a concurrent decision won).
    #[error("an application in state {from} cannot move to {to}")]
    InvalidTransition {
        /// The application's current state.
        from: ApplicationState,
        /// The state asked for.
        to: ApplicationState,
    },
    /// Too many failed logins for this login name; says nothing about whether it exists.
    #[error("too many failed login attempts: try again in {retry_after_secs} seconds")]
    RateLimited {
        /// Seconds until the lockout ends.
        retry_after_secs: u64,
    },
    /// The caller's input breaks a rule (too short a password, an empty title...); the
    /// message names the rule, not the value.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The project's differential-privacy budget cannot pay for this query. Carries amounts
    /// of ε or δ only.
    #[error(
        "the project's privacy budget is spent: this query needs {which} {needed} and \
         {remaining} of {budget} remains; a reviewer can amend the permit to raise the budget"
    )]
    PrivacyBudgetSpent {
        /// `epsilon` or `delta`: which budget ran out.
        which: &'static str,
        /// What the query would spend.
        needed: f64,
        /// What is left of the budget.
        remaining: f64,
        /// The budget.
        budget: f64,
    },
    /// argon2 failed to hash or parse a password hash (never says which password).
    #[error("password hashing failed")]
    PasswordHash,
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Database(e) => database_kind(e),
            Error::Conflict(_)
            | Error::InvalidTransition { .. }
            | Error::DuplicateSource { .. } => ErrorKind::Conflict,
            Error::UnsupportedUrl(_) | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Error::RateLimited { .. } | Error::PrivacyBudgetSpent { .. } => {
                ErrorKind::ResourceExhausted
            }
            Error::Migration { .. } | Error::Corrupt(_) | Error::PasswordHash => {
                ErrorKind::Internal
            }
        }
    }
}

/// A store that cannot be reached (pool exhausted, connection lost or refused, closed
/// pool) is `Unavailable`, so fronts answer 503 and clients retry; anything else the
/// database says is a bug or a broken invariant.
fn database_kind(e: &sqlx::Error) -> ErrorKind {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

/// The result type of the metadata store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

pub(crate) fn denied(msg: impl Into<String>) -> Error {
    Error::PermissionDenied(msg.into())
}
