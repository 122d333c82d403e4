use agora_core::{ErrorKind, HasKind};
use datafusion::error::DataFusionError;

/// Why a query or a session failed. Messages never carry a data value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQL is invalid or not allowed (DDL, DML...). DataFusion's message names the
    /// offending construct, never a data value.
    #[error("{0}")]
    Sql(String),
    /// The statement would change something (DDL, DML, `COPY`, `SET`...): workspaces are
    /// read-only.
    #[error("{0}")]
    ReadOnly(String),
    /// The statement names a table that does not exist, or that the permit does not
    /// grant (the same answer: what is not permitted does not exist).
    #[error("{0}")]
    UndefinedTable(String),
    /// The statement names a column that does not exist, or that the permit does not
    /// grant.
    #[error("{0}")]
    UndefinedColumn(String),
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
    /// The result grew past the byte limit; the query was stopped.
    #[error("result is larger than {max_mib} MiB; aggregate, select fewer columns, or add a LIMIT")]
    TooManyBytes {
        /// The limit, in MiB.
        max_mib: usize,
    },
    /// The statement is too long or too deeply nested to plan safely.
    #[error("the query is too complex: {0}")]
    TooComplex(String),
    /// A function would have built a value or an array larger than a query may allocate.
    #[error("{0}")]
    TooLargeValue(String),
    /// Evaluating the query failed on a data value (an invalid pattern, cast, date,
    /// argument...). The engine's message is withheld: it may quote the value.
    #[error(
        "the query failed on a data value (an invalid pattern, cast, date or argument; \
         the engine's message is withheld because it may quote data): check the arguments, \
         or use TRY_CAST, NULLIF or a filter"
    )]
    Evaluation,
    /// The engine panicked on this query; only this query was stopped.
    #[error(
        "the query engine failed on this query (an internal fault; only this query was stopped)"
    )]
    Panic,
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
    /// The permit's output policy cannot let this answer leave (per-person rows, a person
    /// key, a function returning one row's value...). Says what to change; never a value.
    #[error("the permit's output policy refuses this query: {0}")]
    Disclosure(String),
    /// Anything else the engine reported (details withheld).
    #[error("query engine error: {0}")]
    Engine(String),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Sql(_)
            | Error::ReadOnly(_)
            | Error::UndefinedTable(_)
            | Error::UndefinedColumn(_) => ErrorKind::InvalidInput,
            Error::Memory { .. }
            | Error::Timeout { .. }
            | Error::TooManyRows { .. }
            | Error::TooManyBytes { .. }
            | Error::TooLargeValue(_) => ErrorKind::ResourceExhausted,
            Error::TooComplex(_) | Error::Evaluation => ErrorKind::InvalidInput,
            Error::Panic => ErrorKind::Internal,
            Error::Lake(e) => e.kind(),
            Error::Store(e) => e.kind(),
            Error::NoPermit | Error::Disclosure(_) => ErrorKind::PermissionDenied,
            Error::Permit(_) => ErrorKind::Conflict,
            Error::Engine(_) => ErrorKind::Internal,
        }
    }
}

impl Error {
    pub(crate) fn from_datafusion(e: DataFusionError, limit_mb: usize) -> Self {
        let root = e.find_root();
        if let DataFusionError::External(inner) = root
            && let Some(guard) = inner.downcast_ref::<crate::guard::ValueTooLarge>()
        {
            return Error::TooLargeValue(guard.0.clone());
        }
        match root {
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
                Error::ReadOnly(format!(
                    "this workspace is read-only: only queries (SELECT, WITH, EXPLAIN...) are allowed, not {what}"
                ))
            }
            DataFusionError::Plan(msg)
                if msg.starts_with("table '") && msg.ends_with("' not found") =>
            {
                Error::UndefinedTable(e.strip_backtrace())
            }
            DataFusionError::SchemaError(schema, _)
                if matches!(
                    **schema,
                    datafusion::common::SchemaError::FieldNotFound { .. }
                ) =>
            {
                Error::UndefinedColumn(e.strip_backtrace())
            }
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::Configuration(_)
            | DataFusionError::NotImplemented(_) => Error::Sql(e.strip_backtrace()),
            // Everything below may be raised while evaluating data, and engine messages
            // quote the value they failed on (a pattern built from a column, a cast, a date):
            // never let one out, in an answer or a log. Statement errors above are raised
            // before any data is read.
            DataFusionError::ArrowError(arrow, _) => arrow_error(arrow),
            DataFusionError::Execution(_) | DataFusionError::External(_) => Error::Evaluation,
            DataFusionError::ExecutionJoin(join) if join.is_panic() => Error::Panic,
            DataFusionError::ParquetError(_)
            | DataFusionError::ObjectStore(_)
            | DataFusionError::IoError(_) => {
                Error::Engine("reading the lake failed (details withheld)".into())
            }
            _ => Error::Engine("internal error (details withheld)".into()),
        }
    }
}

/// A fixed description of an Arrow compute error: Arrow's own messages quote the offending
/// value (`Cannot cast string '<a diagnosis>' ...`).
fn arrow_error(e: &datafusion::arrow::error::ArrowError) -> Error {
    use datafusion::arrow::error::ArrowError as A;
    let fixed = |m: &str| Error::Sql(m.into());
    match e {
        A::CastError(_) => {
            fixed("a value could not be converted to the requested type; filter or use TRY_CAST")
        }
        A::ParseError(_) => fixed("a value could not be parsed; filter or use TRY_CAST"),
        A::DivideByZero => fixed("division by zero; guard the divisor with NULLIF(x, 0)"),
        A::ArithmeticOverflow(_) => fixed("arithmetic overflow; cast to a wider type"),
        A::OffsetOverflowError(_) => Error::TooLargeValue(
            "a result column grew past what one array can hold; aggregate less text".into(),
        ),
        A::MemoryError(_) => {
            Error::TooLargeValue("a function needed more memory than a query may allocate".into())
        }
        _ => Error::Evaluation,
    }
}

/// The result of query-layer calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_errors_never_show_the_value() {
        let e = DataFusionError::Execution("regex parse error: 12345 born 1970-01-01 (".into());
        let shown = Error::from_datafusion(e, 1);
        assert_eq!(shown.kind(), ErrorKind::InvalidInput);
        assert!(!shown.to_string().contains("12345"), "{shown}");
        let e = DataFusionError::External("Invalid date 2024-13-01 for 9876".into());
        let shown = Error::from_datafusion(e, 1).to_string();
        assert!(!shown.contains("9876"), "{shown}");
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
