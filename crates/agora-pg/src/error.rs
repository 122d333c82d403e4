//! The one place that turns failures into PostgreSQL `ErrorResponse`s: the service's
//! SQLSTATE ([`agora_service::Error::sqlstate`]) and message, internal details redacted to
//! the server log, as the HTTP front does.

use agora_core::{ErrorKind, HasKind};
use pgwire::error::{ErrorInfo, PgWireError};

/// An error the client sees as `ERROR` with `code` and `message`.
pub(crate) fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A `FATAL` error (the connection ends), for authentication.
pub(crate) fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// The message a client may see for `e`: its own words, except internal and availability
/// failures, whose details (paths, store messages) go to the server log only.
pub(crate) fn message(e: &agora_service::Error) -> String {
    match e.kind() {
        ErrorKind::Internal => {
            tracing::error!(error = %e, "internal error");
            "internal error; the operator can find details in the server log".into()
        }
        ErrorKind::Unavailable => {
            tracing::error!(error = %e, "dependency unavailable");
            "a service the hub depends on is unavailable; try again later (details are in the \
             server log)"
                .into()
        }
        _ => e.to_string(),
    }
}

/// A service error as the client sees it.
pub(crate) fn service(e: agora_service::Error) -> PgWireError {
    user_error(e.sqlstate(), message(&e))
}

/// The answer to a wrong or unusable token, user or password: one answer for all, which
/// never says which part was wrong.
pub(crate) fn bad_credentials() -> PgWireError {
    fatal(
        "28P01",
        "password authentication failed: the password must be a valid API token (agora_...) \
         or, for a local account, its password",
    )
}
