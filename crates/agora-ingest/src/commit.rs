//! The end of every ingest, whatever the data model: quarantine report, manifest, and the
//! metadata-store transaction that makes the release visible.

use agora_core::DatasetName;
use agora_govern::NewRelease;
use agora_lake::{
    MANIFEST_FORMAT, PseudonymizationInfo, ReleaseManifest, ReleaseWriter, SourceInfo, TableEntry,
};

use crate::quarantine::Quarantine;
use crate::{Hub, IngestReport, Result, TableReport};

/// What a model-specific pipeline wrote, ready to become one release.
pub(crate) struct Staged {
    pub source: SourceInfo,
    pub pseudonymization: PseudonymizationInfo,
    pub tables: Vec<TableEntry>,
    pub reports: Vec<TableReport>,
    /// Source records read (rows, or resources for FHIR).
    pub rows_read: u64,
    pub quarantine: Quarantine,
    /// `(person_key, check)` pairs first seen in this release.
    pub new_persons: Vec<(i64, i64)>,
    pub warnings: Vec<String>,
}

/// Stores the quarantine report and the manifest, then commits the release with its new
/// person keys in one metadata-store transaction. Until that transaction, nothing is visible.
/// A dry run reports what the commit would hold, then removes everything written instead.
pub(crate) async fn commit(
    hub: &Hub,
    writer: &ReleaseWriter,
    dataset: &DatasetName,
    actor: &str,
    dry_run: bool,
    staged: Staged,
) -> Result<IngestReport> {
    if dry_run {
        writer.abort().await;
        return Ok(IngestReport {
            dataset: dataset.to_string(),
            release: 0,
            release_id: String::new(),
            dry_run: true,
            rows_read: staged.rows_read,
            rows_stored: staged.tables.iter().map(|t| t.rows).sum(),
            rows_quarantined: staged.quarantine.rows(),
            new_persons: staged.new_persons.len() as u64,
            tables: staged.reports,
            quarantine: staged.quarantine.summary(None),
            warnings: staged.warnings,
            elapsed_ms: 0,
        });
    }
    let quarantine_file = if staged.quarantine.rows() > 0 {
        Some(
            writer
                .put_file("quarantine.csv", staged.quarantine.csv())
                .await?,
        )
    } else {
        None
    };
    let manifest = ReleaseManifest {
        format: MANIFEST_FORMAT,
        dataset: dataset.clone(),
        release_id: writer.release_id().to_owned(),
        created_at: agora_govern::now_utc(),
        source: staged.source,
        pseudonymization: staged.pseudonymization,
        tables: staged.tables,
        quarantine: staged.quarantine.summary(quarantine_file),
        warnings: staged.warnings,
    };
    let manifest_path = writer.commit_manifest(&manifest).await?;
    let rows = manifest.rows();
    let quarantined = staged.quarantine.rows();
    let new_persons = staged.new_persons.len() as u64;
    let release = hub
        .meta
        .commit_release(NewRelease {
            dataset: dataset.clone(),
            model: manifest.source.model.clone(),
            release_id: manifest.release_id.clone(),
            manifest_path,
            created_by: actor.to_owned(),
            rows: rows as i64,
            quarantined: quarantined as i64,
            new_persons: staged.new_persons,
        })
        .await?;
    Ok(IngestReport {
        dataset: dataset.to_string(),
        release: release.number,
        release_id: release.release_id,
        dry_run: false,
        rows_read: staged.rows_read,
        rows_stored: rows,
        rows_quarantined: quarantined,
        new_persons,
        tables: staged.reports,
        quarantine: manifest.quarantine,
        warnings: manifest.warnings,
        elapsed_ms: 0,
    })
}
