//! Data-quality profiles of releases, in the spirit of OHDSI Achilles (characterization) and
//! the Data Quality Dashboard (checks with thresholds).
//!
//! A profile is computed with SQL through a [`ReleaseSource`] — in the hub, an operator
//! session of the query service — so it sees exactly what a query would see, needs no access
//! of its own, and each of its queries is an access like any other. It reports, per table, row and person
//! counts, null rates, ranges, the most frequent codes of `*_concept_id` columns and
//! implausible dates (before birth, long after death, in the future); and a list of
//! pass/fail checks (persons known, start before end, plausible birth years...).
//!
//! Profiles contain aggregates and codes, no row-level values; they are for producers and
//! operators. Public display (the catalogue) must still apply disclosure control to small
//! counts.
//!
//! ```no_run
//! # async fn f(ws: impl agora_quality::ReleaseSource) -> agora_quality::Result<()> {
//! let profile = agora_quality::profile(&ws).await?;
//! for check in profile.checks.iter().filter(|c| !c.passed) {
//!     println!("FAIL {}: {} of {} rows", check.id, check.violations, check.rows);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod checks;
mod profile;
mod sql;

pub use profile::{
    Check, ColumnProfile, DatePlausibility, QualityProfile, TableProfile, ValueCount, profile,
};

use agora_core::{ErrorKind, HasKind};
use agora_lake::ReleaseManifest;
use arrow::array::RecordBatch;

/// One release to profile: its manifest and a way to run read-only SQL on its tables.
pub trait ReleaseSource: Sync {
    /// The error of a failed query; its kind is kept in [`Error::Query`].
    type Error: std::error::Error + HasKind + Send + Sync + 'static;

    /// The release's manifest (tables and schemas).
    fn manifest(&self) -> &ReleaseManifest;

    /// The release's number.
    fn release(&self) -> i64;

    /// Runs one statement and returns its whole (small) result.
    fn query(
        &self,
        sql: &str,
    ) -> impl Future<Output = std::result::Result<Vec<RecordBatch>, Self::Error>> + Send;
}

/// Why a profile could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A profile query failed; `kind` is the kind of the underlying error.
    #[error("quality query on table {table} failed: {source}")]
    Query {
        /// The table the query profiled.
        table: String,
        /// The kind of `source`.
        kind: ErrorKind,
        /// What the query source said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Query { kind, .. } => *kind,
        }
    }
}

/// The result of profile operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
