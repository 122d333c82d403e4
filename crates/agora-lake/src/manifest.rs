use agora_core::{DatasetName, TableSchema};
use serde::{Deserialize, Serialize};

/// Bumped when the manifest layout changes incompatibly.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything needed to read one release without listing the store: the tables, their
/// schemas and the exact files. Plain JSON so any tool can read a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    pub format: u32,
    pub dataset: DatasetName,
    pub release_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub source: SourceInfo,
    pub pseudonymization: PseudonymizationInfo,
    pub tables: Vec<TableEntry>,
    pub quarantine: QuarantineSummary,
    /// Things the producer should know that did not stop the ingest (unknown columns...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl ReleaseManifest {
    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// e.g. `omop-cdm-5.4`.
    pub model: String,
    /// `csv` or `parquet`.
    pub form: String,
    /// File names (not paths: paths can name people or hosts) and sizes of what was read.
    pub files: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudonymizationInfo {
    /// Public id of the hub secret used (see `HubSecret::key_id`).
    pub key_id: String,
    /// Where person identities came from, e.g. `person.person_source_value`.
    pub identity: String,
    /// Columns that held direct identifiers and were not stored, as `table.column`.
    pub dropped_columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub schema: TableSchema,
    pub rows: u64,
    pub files: Vec<DataFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path inside the lake, e.g. `datasets/demo/data/<uuid>/person/part-00000.parquet`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuarantineSummary {
    pub rows: u64,
    /// Path inside the lake of the quarantine report (CSV: table, file, line, column, reason).
    pub file: Option<String>,
    pub counts: Vec<QuarantineCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineCount {
    pub table: String,
    pub column: Option<String>,
    pub reason: String,
    pub rows: u64,
}
