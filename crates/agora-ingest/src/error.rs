use agora_core::{ErrorKind, HasKind};

/// Why an ingest failed as a whole. Row-level problems are not errors: they go to the
/// quarantine. Messages name files, lines and columns, never values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no CSV, TSV or Parquet file of a known table found")]
    NoInput { path: String },
    #[error("{file}: line {line}: {reason}")]
    Csv {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: required column {column} of table {table} is missing")]
    MissingColumn {
        file: String,
        table: String,
        column: String,
    },
    #[error(
        "{file}: line {line}: record longer than {} MiB, refused without reading it whole (a missing quote or newline?)",
        max >> 20
    )]
    RecordTooLong { file: String, line: u64, max: u64 },
    #[error(
        "{file}: larger than {} MiB, the limit for one JSON document; split it or use Bulk Data NDJSON",
        max >> 20
    )]
    DocumentTooLarge { file: String, max: u64 },
    #[error("{file}: column {column} appears more than once")]
    DuplicateColumn { file: String, column: String },
    #[error("{file}: cannot read Parquet: {reason}")]
    Parquet { file: String, reason: String },
    #[error("table {table} is given twice ({first} and {second}); keep one")]
    DuplicateTable {
        table: String,
        first: String,
        second: String,
    },
    #[error(
        "table {table} refers to persons but the extract has no person table: persons cannot be pseudonymized"
    )]
    MissingPersonTable { table: String },
    #[error("{file}: column {column} of table {table}: {reason}")]
    Conversion {
        file: String,
        table: String,
        column: String,
        reason: String,
    },
    #[error("{file}: not a JSON FHIR Bundle or resource ({reason}); fix or remove the file")]
    FhirFile { file: String, reason: String },
    #[error("{path}: no FHIR NDJSON (.ndjson) or Bundle (.json) file found")]
    NoFhirInput { path: String },
    #[error("ViewDefinition {file}: {source}")]
    View {
        file: String,
        #[source]
        source: agora_fhir::Error,
    },
    #[error("ViewDefinition {file}: {reason}")]
    ViewRules { file: String, reason: String },
    #[error(
        "these files are already release {release} of dataset {dataset}; nothing was ingested (use --allow-duplicate to add them again as a new release)"
    )]
    AlreadyIngested { dataset: String, release: i64 },
    #[error("{file}: {reason}")]
    Schema { file: String, reason: String },
    #[error("{path}: no Table Schema (.json) with a data file (.csv, .tsv) of the same name found")]
    NoTableSchemaInput { path: String },
    #[error("resource {resource} is given twice ({first} and {second}); keep one")]
    DuplicateResource {
        resource: String,
        first: String,
        second: String,
    },
    #[error("--person-id {field}: no resource has a field of that name")]
    UnknownPersonField { field: String },
    #[error("vocabulary dataset {dataset} has no release")]
    NoVocabulary { dataset: String },
    #[error("vocabulary dataset {dataset}: {reason}")]
    Vocabulary { dataset: String, reason: String },
    #[error(transparent)]
    Lake(#[from] agora_lake::Error),
    #[error(transparent)]
    Meta(#[from] agora_govern::Error),
    #[error("ingest worker failed: {0}")]
    Internal(String),
}

impl HasKind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Lake(e) => e.kind(),
            Error::Meta(e) => e.kind(),
            Error::Internal(_) => ErrorKind::Internal,
            Error::AlreadyIngested { .. } => ErrorKind::Conflict,
            Error::NoVocabulary { .. } => ErrorKind::NotFound,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            // Everything else is about the producer's extract (or the operator's views):
            // sending it again unchanged fails again.
            Error::Io { .. }
            | Error::NoInput { .. }
            | Error::Csv { .. }
            | Error::MissingColumn { .. }
            | Error::RecordTooLong { .. }
            | Error::DocumentTooLarge { .. }
            | Error::DuplicateColumn { .. }
            | Error::Parquet { .. }
            | Error::DuplicateTable { .. }
            | Error::MissingPersonTable { .. }
            | Error::Conversion { .. }
            | Error::FhirFile { .. }
            | Error::NoFhirInput { .. }
            | Error::View { .. }
            | Error::ViewRules { .. }
            | Error::Schema { .. }
            | Error::NoTableSchemaInput { .. }
            | Error::DuplicateResource { .. }
            | Error::UnknownPersonField { .. }
            | Error::Vocabulary { .. } => ErrorKind::InvalidInput,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.display().to_string();
    move |source| Error::Io { path, source }
}
