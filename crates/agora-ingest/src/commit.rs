//! The ends of every ingest, whatever the data model: re-ingest admission before the data is
//! read; quarantine report, manifest, and the metadata-store transaction that makes the
//! release visible after it is written. The lifecycle (`lifecycle.rs`) runs them in order.

use agora_core::DatasetName;
use agora_govern::{NewRelease, SourceFingerprint};
use agora_lake::{
    MANIFEST_FORMAT, PseudonymizationInfo, ReleaseManifest, ReleaseWriter, SourceInfo, TableEntry,
};

use crate::fingerprint::{SourcePath, fingerprint};
use crate::quarantine::Quarantine;
use crate::{Error, Hub, IngestOptions, IngestReport, Result, TableReport};

/// The source files of an ingest, fingerprinted, and whether the dataset already has a
/// release made of exactly these files.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    fingerprint: String,
    allow_duplicate: bool,
    duplicate_of: Option<i64>,
}

/// Fingerprints `files` and refuses them if a release of `dataset` was already ingested from
/// the same files, unless `allow_duplicate`. Run before the data is read, so that a mistaken
/// re-ingest is refused at once. A dry run is not refused: its report says it would be.
pub(crate) async fn admit(
    hub: &Hub,
    dataset: &DatasetName,
    files: Vec<SourcePath>,
    allow_duplicate: bool,
    dry_run: bool,
) -> Result<Admission> {
    let fingerprint = tokio::task::spawn_blocking(move || fingerprint(&files))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let duplicate_of = hub.meta.release_from_source(dataset, &fingerprint).await?;
    if let Some(release) = duplicate_of
        && !allow_duplicate
        && !dry_run
    {
        return Err(Error::AlreadyIngested {
            dataset: dataset.to_string(),
            release,
        });
    }
    Ok(Admission {
        fingerprint,
        allow_duplicate,
        duplicate_of,
    })
}

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
    options: &IngestOptions,
    admission: Admission,
    mut staged: Staged,
) -> Result<IngestReport> {
    let dataset = &options.dataset;
    let converted = staged.source.converted_from.as_ref().map(|from| {
        format!(
            "{} extract, stored as {}",
            model_title(from),
            model_title(&staged.source.model)
        )
    });
    if options.dry_run {
        if let Some(release) = admission.duplicate_of
            && !admission.allow_duplicate
        {
            staged.warnings.push(format!(
                "these files are already release {release} of dataset {dataset}: an ingest would be refused without --allow-duplicate"
            ));
        }
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
            converted,
            quarantine: staged.quarantine.summary(None),
            warnings: staged.warnings,
            source_fingerprint: admission.fingerprint,
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
    let source = SourceFingerprint {
        fingerprint: admission.fingerprint.clone(),
        allow_duplicate: admission.allow_duplicate,
    };
    let release = hub
        .meta
        .commit_release_from(
            NewRelease {
                dataset: dataset.clone(),
                model: manifest.source.model.clone(),
                release_id: manifest.release_id.clone(),
                manifest_path,
                created_by: options.actor.clone(),
                rows: rows as i64,
                quarantined: quarantined as i64,
                new_persons: staged.new_persons,
            },
            Some(source),
        )
        .await
        .map_err(|e| match e {
            // Another ingest of the same files committed while this one ran.
            agora_govern::Error::DuplicateSource { dataset, release } => {
                Error::AlreadyIngested { dataset, release }
            }
            other => other.into(),
        })?;
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
        converted,
        quarantine: manifest.quarantine,
        warnings: manifest.warnings,
        source_fingerprint: admission.fingerprint,
        elapsed_ms: 0,
    })
}

/// A model id as people write it: `omop-cdm-5.3` → `CDM 5.3`.
fn model_title(model: &str) -> String {
    match model.strip_prefix("omop-cdm-") {
        Some(version) => format!("CDM {version}"),
        None => model.to_owned(),
    }
}
