//! Ingestion: producer extracts in, validated and pseudonymized releases out.
//!
//! Every ingest either commits one whole new release of a dataset or nothing. Rows that do
//! not fit the data model go to a quarantine with file, line, column and reason (never the
//! value); direct identifiers never reach the lake.
//!
//! ```no_run
//! # async fn f(hub: agora_ingest::Hub) -> agora_ingest::Result<()> {
//! use agora_ingest::IngestOptions;
//! use agora_ingest::omop::{ingest_omop, IdentitySource, OmopIngest};
//! let report = ingest_omop(&hub, OmopIngest {
//!     options: IngestOptions {
//!         dataset: "synthea".parse().unwrap(),
//!         source: "extract/".into(),
//!         actor: "operator".into(),
//!         progress: true,
//!         dry_run: false,
//!         allow_duplicate: false,
//!     },
//!     identity: IdentitySource::SourceValue,
//!     cdm_version: None, // detected: CDM 5.3 or 5.4
//! }).await?;
//! println!("release {} stored {} rows", report.release, report.rows_stored);
//! # Ok(()) }
//! ```
//!
//! FHIR R4 (Bulk NDJSON and Bundles) goes through [`fhir::ingest_fhir`] with the same
//! release, quarantine and person-key machinery.
//!
//! Any dataset described by Frictionless Table Schema (the SNDS tables, for instance) goes
//! through [`tableschema::ingest_tableschema`], with the same machinery again.
//!
//! Every model goes through one release lifecycle: lock the dataset, clean the debris of
//! aborted ingests, admit the source (re-ingest fingerprint), write, then commit the release
//! atomically or abort; the options every ingest takes are [`IngestOptions`]. The CDM
//! specification the OMOP ingests validate against is `agora-cdm`'s.
//!
//! Not here: querying (`agora-query`).

#![warn(missing_docs)]

mod commit;
mod conform;
mod error;
mod extract;
pub mod fhir;
mod fingerprint;
mod keys;
mod lifecycle;
pub mod omop;
mod quarantine;
mod source;
pub mod tableschema;

use std::path::PathBuf;

use agora_govern::MetaStore;
use agora_lake::{Lake, QuarantineSummary};
use agora_privacy::HubSecret;

pub use conform::Reason;
pub use error::{Error, Result};
pub use extract::UnsafeReason;
pub use lifecycle::IngestOptions;
pub use source::{MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES};

/// What an ingest writes to: the hub's lake, metadata store and secret.
#[derive(Debug, Clone)]
pub struct Hub {
    /// Where release files and manifests are written.
    pub lake: Lake,
    /// Where releases are committed and person keys recorded.
    pub meta: MetaStore,
    /// The key person pseudonyms are derived from; only its id is recorded in a release.
    pub secret: HubSecret,
    /// Where per-dataset ingest locks live.
    pub locks_dir: PathBuf,
    /// The hub's data directory: no file of an extract may be in it (nor link to its
    /// secret or metadata store).
    pub data_dir: PathBuf,
}

/// What an ingest did, for the producer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestReport {
    /// The dataset ingested.
    pub dataset: String,
    /// The committed release's number; 0 for a dry run.
    pub release: i64,
    /// The committed release's UUID (its directory in the lake); empty for a dry run.
    pub release_id: String,
    /// Nothing was committed: the ingest only validated and reported.
    pub dry_run: bool,
    /// One report per table written.
    pub tables: Vec<TableReport>,
    /// For an extract converted to the stored model, what it was and how it is stored
    /// (`CDM 5.3 extract, stored as CDM 5.4`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted: Option<String>,
    /// Source records read (rows, or resources for FHIR).
    pub rows_read: u64,
    /// Rows in the release, over all tables (for a dry run, the rows it would have).
    pub rows_stored: u64,
    /// Rows sent to the quarantine, over all tables.
    pub rows_quarantined: u64,
    /// Persons this release introduced to the hub (not seen in any earlier release).
    pub new_persons: u64,
    /// Quarantined rows per table, column and reason, and where the full report is.
    pub quarantine: QuarantineSummary,
    /// What was skipped or not checked (unknown files and columns, unsupported constraints,
    /// a duplicate source in a dry run...); recorded in the manifest too.
    pub warnings: Vec<String>,
    /// SHA-256 content fingerprint of the source files (see `agora ingest --allow-duplicate`).
    pub source_fingerprint: String,
    /// Wall-clock time of the whole ingest, in milliseconds.
    pub elapsed_ms: u64,
}

/// What an ingest did with one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    /// The table written.
    pub table: String,
    /// The source file the table was read from (`N files` when several); for a derived
    /// table (a FHIR view, an OMOP table mapped from FHIR...), what it was derived from.
    pub file: String,
    /// Source rows (or resources) read for the table.
    pub rows_read: u64,
    /// Rows written to the table.
    pub rows_stored: u64,
    /// Rows of the table sent to the quarantine.
    pub rows_quarantined: u64,
}
