use agora_core::{DatasetName, TableSchema};
use serde::{Deserialize, Serialize};

/// Bumped when the manifest layout changes incompatibly.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything needed to read one release without listing the store: the tables, their
/// schemas and the exact files. Plain JSON so any tool can read a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    /// The layout version this manifest was written with ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The dataset this is a release of.
    pub dataset: DatasetName,
    /// The release's UUID: names its `data/<release_id>/` directory and manifest file. Not
    /// the release number, which the metadata store assigns at commit.
    pub release_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// What was ingested.
    pub source: SourceInfo,
    /// How person identities were replaced by hub person keys.
    pub pseudonymization: PseudonymizationInfo,
    /// Every table of the release, with its schema and files.
    pub tables: Vec<TableEntry>,
    /// The rows rejected by the ingest and why.
    pub quarantine: QuarantineSummary,
    /// Things the producer should know that did not stop the ingest (unknown columns...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl ReleaseManifest {
    /// The table called `name`, if the release has it.
    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Rows stored in the release, all tables together (quarantined rows excluded).
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Where a release's data came from. Holds no path or host, which could name people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// e.g. `omop-cdm-5.4`: the model the release is stored as.
    pub model: String,
    /// The model of the extract when it was converted to `model`, e.g. `omop-cdm-5.3` for a
    /// CDM 5.3 extract stored as CDM 5.4; absent when the extract was `model` already (and in
    /// manifests older than the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<String>,
    /// `csv` or `parquet`.
    pub form: String,
    /// File names (not paths: paths can name people or hosts) and sizes of what was read.
    pub files: Vec<(String, u64)>,
}

/// How a release was pseudonymized: which secret, from which identity, what was dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudonymizationInfo {
    /// Public id of the hub secret used (see `HubSecret::key_id`).
    pub key_id: String,
    /// Where person identities came from, e.g. `person.person_source_value`.
    pub identity: String,
    /// Columns that held direct identifiers and were not stored, as `table.column`.
    pub dropped_columns: Vec<String>,
}

/// One table of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Table name, as queried in SQL.
    pub name: String,
    /// The schema every file of the table was written with.
    pub schema: TableSchema,
    /// Rows in the table: the sum of its files' rows.
    pub rows: u64,
    /// The table's Parquet files; at least one, even for an empty table, so readers see the
    /// schema.
    pub files: Vec<DataFile>,
    /// Columns holding hub person keys (`BIGINT`) under names of the producer's model
    /// (Table Schema person identifiers such as `BEN_NIR_PSA`), the one opt-outs apply
    /// through first. Empty when the model's own convention says it (`person_id`, the
    /// CDM's `subject_id`) and in manifests written before the field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub person_columns: Vec<String>,
    /// Text columns holding resource keys or references (a FHIR table's `id`, view columns
    /// computed by `getResourceKey()`/`getReferenceKey()`): re-keyed for each project.
    /// `None` where the model has none, and in FHIR manifests written before the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_text_columns: Option<Vec<String>>,
}

/// One Parquet file of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path inside the lake, e.g. `datasets/demo/data/<uuid>/person/part-00000.parquet`.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes, as written.
    pub bytes: u64,
}

/// The rows an ingest rejected, counted; the details (never values) are in [`Self::file`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuarantineSummary {
    /// Rejected rows, each counted once whatever the number of reasons.
    pub rows: u64,
    /// Path inside the lake of the quarantine report (CSV: table, file, line, column, reason).
    pub file: Option<String>,
    /// Rejections per table, column and reason.
    pub counts: Vec<QuarantineCount>,
}

/// How many rows of a table were rejected for one reason on one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineCount {
    /// The table the rows were meant for.
    pub table: String,
    /// The offending column or element; `None` when the reason concerns the whole row.
    pub column: Option<String>,
    /// Why the rows were rejected, in words (never a value).
    pub reason: String,
    /// Rows rejected for this reason on this column; a row rejected for several reasons is
    /// counted under each, so these may add up to more than [`QuarantineSummary::rows`].
    pub rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Manifests written before `converted_from` existed still read.
    #[test]
    fn source_info_without_converted_from_reads() {
        let old: SourceInfo = serde_json::from_str(
            r#"{"model":"omop-cdm-5.4","form":"csv","files":[["person.csv",10]]}"#,
        )
        .unwrap();
        assert_eq!(old.converted_from, None);
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("converted_from"), "{json}");
    }
}
