//! The lake: immutable Parquet *releases* of datasets on any `object_store`.
//!
//! ```text
//!  ingest ──► ReleaseWriter ──► datasets/<ds>/data/<release-uuid>/<table>/part-N.parquet
//!                     │
//!                     └─► datasets/<ds>/manifests/<release-uuid>.json   (lists every file)
//!                                   │
//!  metadata store: INSERT release (ds, number, manifest)   ◄── the commit point
//! ```
//!
//! A release is many tables, and it must become visible all at once or not at all. Files are
//! written under a fresh UUID directory nobody references yet; the manifest lists them; the
//! release becomes visible only when the metadata store commits a row pointing at that
//! manifest. A crash before that commit leaves unreferenced files that [`Lake::collect_garbage`]
//! removes; a crash after it loses nothing because, on a local lake, every file and directory
//! is fsynced before the commit.
//!
//! Not here: deciding release numbers or who may read what (`agora-govern`), query sessions
//! (`agora-query`).
//!
//! ```no_run
//! # async fn f() -> agora_lake::Result<()> {
//! let lake = agora_lake::Lake::open_local("./agora-data/lake")?;
//! let ds: agora_core::DatasetName = "demo".parse().unwrap();
//! let writer = lake.begin_release(&ds);
//! // ... writer.table(...) for each table, then writer.commit_manifest(...)
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod lake;
mod lock;
mod manifest;
mod writer;

pub use error::{Error, Result};
pub use lake::{LAKE_URL, Lake};
pub use lock::DatasetLock;
pub use manifest::{
    DataFile, MANIFEST_FORMAT, PseudonymizationInfo, QuarantineCount, QuarantineSummary,
    ReleaseManifest, SourceInfo, TableEntry,
};
pub use writer::{ReleaseWriter, TableWriter, WriterOptions};
