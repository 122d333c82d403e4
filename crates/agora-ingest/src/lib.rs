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

mod commit;
mod conform;
mod error;
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
pub use lifecycle::IngestOptions;
pub use source::{MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES};

/// What an ingest writes to: the hub's lake, metadata store and secret.
#[derive(Debug, Clone)]
pub struct Hub {
    pub lake: Lake,
    pub meta: MetaStore,
    pub secret: HubSecret,
    /// Where per-dataset ingest locks live.
    pub locks_dir: PathBuf,
}

/// What an ingest did, for the producer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestReport {
    pub dataset: String,
    /// The committed release's number; 0 for a dry run.
    pub release: i64,
    pub release_id: String,
    /// Nothing was committed: the ingest only validated and reported.
    pub dry_run: bool,
    pub tables: Vec<TableReport>,
    pub rows_read: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
    /// Persons this release introduced to the hub (not seen in any earlier release).
    pub new_persons: u64,
    pub quarantine: QuarantineSummary,
    pub warnings: Vec<String>,
    /// SHA-256 content fingerprint of the source files (see `agora ingest --allow-duplicate`).
    pub source_fingerprint: String,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub table: String,
    pub file: String,
    pub rows_read: u64,
    pub rows_stored: u64,
    pub rows_quarantined: u64,
}
