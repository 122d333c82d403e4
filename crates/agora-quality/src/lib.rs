//! Data-quality profiles of releases, in the spirit of OHDSI Achilles (characterization) and
//! the Data Quality Dashboard (checks with thresholds).
//!
//! A profile is computed with SQL through an ordinary [`Workspace`], so it sees exactly what a
//! query would see and needs no access of its own. It reports, per table, row and person
//! counts, null rates, ranges, the most frequent codes of `*_concept_id` columns and
//! implausible dates (before birth, long after death, in the future); and a list of
//! pass/fail checks (persons known, start before end, plausible birth years...).
//!
//! Profiles contain aggregates and codes, no row-level values; they are for producers and
//! operators. Public display (the catalogue) must still apply disclosure control to small
//! counts.
//!
//! ```no_run
//! # async fn f(ws: agora_query::Workspace) -> agora_quality::Result<()> {
//! let profile = agora_quality::profile(&ws).await?;
//! for check in profile.checks.iter().filter(|c| !c.passed) {
//!     println!("FAIL {}: {} of {} rows", check.id, check.violations, check.rows);
//! }
//! # Ok(()) }
//! ```

mod checks;
mod profile;
mod sql;

pub use profile::{
    Check, ColumnProfile, DatePlausibility, QualityProfile, TableProfile, ValueCount, profile,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("quality query on table {table} failed: {source}")]
    Query {
        table: String,
        #[source]
        source: agora_query::Error,
    },
}

impl agora_core::HasKind for Error {
    fn kind(&self) -> agora_core::ErrorKind {
        match self {
            Error::Query { source, .. } => source.kind(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
