use agora_core::{ErrorKind, HasKind};
use datafusion::error::DataFusionError;

/// Why a query or a session failed. Messages never carry a data value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL is invalid or not allowed (DDL, DML...). DataFusion's message names the
    /// offending construct, never a data value.
    #[error("{0}")]
    Sql(String),
    /// The query's operators needed more memory than its pool, even spilling.
    #[error("query exceeded its memory limit of {limit_mb} MiB; aggregate more or add filters")]
    Memory {
        /// The limit, in MiB.
        limit_mb: usize,
    },
    /// Planning and execution took longer than the time limit; the query was stopped.
    #[error("query exceeded its time limit of {seconds} s")]
    Timeout {
        /// The limit, in seconds.
        seconds: u64,
    },
    /// The result grew past the row limit; the query was stopped.
    #[error("result has more than {max_rows} rows; aggregate, or add a LIMIT")]
    TooManyRows {
        /// The limit.
        max_rows: usize,
    },
    /// A manifest or file of the lake could not be read.
    #[error(transparent)]
    Lake(#[from] agora_lake::Error),
    /// The metadata store failed (resolving a permit, reading opt-outs).
    #[error(transparent)]
    Store(#[from] agora_govern::Error),
    /// One message for every reason (unknown id, not a member, expired, revoked...): the
    /// answer must not reveal which permits exist.
    #[error("no data permit with this id is usable by you now")]
    NoPermit,
    /// The permit and the release it names disagree (a governance error to fix by amending
    /// the permit). Names tables and columns, never data.
    #[error("the data permit cannot be applied: {0}")]
    Permit(String),
    /// Anything else the engine reported (values redacted).
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
            Error::Store(e) => e.kind(),
            Error::NoPermit => ErrorKind::PermissionDenied,
            Error::Permit(_) => ErrorKind::Conflict,
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
            // Execution errors are about the data: never let them carry a value out.
            DataFusionError::ArrowError(arrow, _) => Error::Sql(arrow_message(arrow)),
            _ => Error::Engine(redact_values(&e.strip_backtrace())),
        }
    }
}

/// A fixed description of an Arrow compute error: Arrow's own messages quote the offending
/// value (`Cannot cast string '<a diagnosis>' ...`).
fn arrow_message(e: &datafusion::arrow::error::ArrowError) -> String {
    use datafusion::arrow::error::ArrowError as A;
    match e {
        A::CastError(_) => "a value could not be converted to the requested type; \
                            filter or use TRY_CAST"
            .into(),
        A::ParseError(_) => "a value could not be parsed; filter or use TRY_CAST".into(),
        A::DivideByZero => "division by zero; guard the divisor with NULLIF(x, 0)".into(),
        A::ArithmeticOverflow(_) => "arithmetic overflow; cast to a wider type".into(),
        other => redact_values(&other.to_string()),
    }
}

/// Replaces every single-quoted literal in an engine message by `'<value>'`.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('\'');
    out.push_str(parts.next().unwrap_or_default());
    let mut quoted = true;
    for part in parts {
        out.push('\'');
        out.push_str(if quoted { "<value>" } else { part });
        quoted = !quoted;
    }
    out
}

/// The result of query-layer calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_quoted_values_only() {
        assert_eq!(
            redact_values("Cannot cast string 'Prediabetes' to value of Int32 type"),
            "Cannot cast string '<value>' to value of Int32 type"
        );
        assert_eq!(redact_values("no quotes"), "no quotes");
        assert_eq!(redact_values("a 'x' b 'y' c"), "a '<value>' b '<value>' c");
    }

    #[test]
    fn cast_errors_never_show_the_value() {
        let e = DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::CastError(
                "Cannot cast string 'Jane Doe' to value of Int32 type".into(),
            )),
            None,
        );
        let shown = Error::from_datafusion(e, 1).to_string();
        assert!(!shown.contains("Jane"), "{shown}");
        assert!(shown.contains("TRY_CAST"), "{shown}");
    }
}
