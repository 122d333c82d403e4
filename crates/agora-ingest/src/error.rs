use agora_core::{ErrorKind, HasKind};

/// Why an ingest failed as a whole. Row-level problems are not errors: they go to the
/// quarantine. Messages name files, lines and columns, never values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the extract or of the operator's views could not be read (or,
    /// when a view is added, written).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the operating system reported; `NotFound` makes the error's kind NotFound.
        #[source]
        source: std::io::Error,
    },
    /// A file of the extract is a link, a special file, outside the extract or inside the
    /// hub's data directory: refused before anything is read from it.
    #[error("{file}: refused: it {reason}")]
    UnsafeSource {
        /// The file's path relative to the extract (`.`: the extract directory itself).
        file: String,
        /// Why.
        reason: crate::extract::UnsafeReason,
    },
    /// The OMOP source directory holds no file named after a CDM table.
    #[error("{path}: no CSV, TSV or Parquet file of a known table found")]
    NoInput {
        /// The source directory.
        path: String,
    },
    /// A CSV or TSV file is structurally broken (no header, an undecodable header, a read
    /// error, malformed CSV): where its rows start and end cannot be trusted.
    #[error("{file}: line {line}: {reason}")]
    Csv {
        /// The file's name.
        file: String,
        /// 1-based line of the problem (the header is line 1); 0 when the reader could not
        /// tell.
        line: u64,
        /// What is wrong, without the line's content.
        reason: String,
    },
    /// A column the table requires is absent from the file's header (or Parquet schema).
    #[error("{file}: required column {column} of table {table} is missing")]
    MissingColumn {
        /// The file's name.
        file: String,
        /// The table the file is read into.
        table: String,
        /// The missing column.
        column: String,
    },
    /// The OMOP extract's CDM version cannot be settled: a file has columns of both 5.3 and
    /// 5.4, files disagree, the columns contradict `cdm_source.cdm_version` or
    /// `--cdm-version`, or `cdm_version` names a version Agora does not read. The detail
    /// names files, lines and CDM column names, never a value.
    #[error("{detail}")]
    CdmVersion {
        /// What betrays which version, and where.
        detail: String,
    },
    /// A CSV record exceeds [`MAX_RECORD_BYTES`](crate::MAX_RECORD_BYTES); usually a
    /// missing closing quote or newline that runs the rest of the file into one record.
    #[error(
        "{file}: line {line}: record longer than {} MiB, refused without reading it whole (a missing quote or newline?)",
        max >> 20
    )]
    RecordTooLong {
        /// The file's name.
        file: String,
        /// 1-based line where the record starts.
        line: u64,
        /// The limit, in bytes.
        max: u64,
    },
    /// A JSON document (a FHIR Bundle, a Table Schema) exceeds
    /// [`MAX_DOCUMENT_BYTES`](crate::MAX_DOCUMENT_BYTES); it would be parsed whole.
    #[error(
        "{file}: larger than {} MiB, the limit for one JSON document; split it or use Bulk Data NDJSON",
        max >> 20
    )]
    DocumentTooLarge {
        /// The file's name.
        file: String,
        /// The limit, in bytes.
        max: u64,
    },
    /// Two source columns map to the same target column (names compare case-insensitively).
    #[error("{file}: column {column} appears more than once")]
    DuplicateColumn {
        /// The file's name.
        file: String,
        /// The target column, lower-case.
        column: String,
    },
    /// A Parquet file cannot be opened or decoded.
    #[error("{file}: cannot read Parquet: {reason}")]
    Parquet {
        /// The file's name.
        file: String,
        /// The Parquet reader's message.
        reason: String,
    },
    /// Two source files hold the same table (`person.csv` and `person.parquet`, say).
    #[error("table {table} is given twice ({first} and {second}); keep one")]
    DuplicateTable {
        /// The table.
        table: String,
        /// The file found first.
        first: String,
        /// The other file.
        second: String,
    },
    /// A table with person columns was given without the `person` table: its persons
    /// could not be resolved to hub person keys.
    #[error(
        "table {table} refers to persons but the extract has no person table: persons cannot be pseudonymized"
    )]
    MissingPersonTable {
        /// The first such table.
        table: String,
    },
    /// A source column's type cannot be converted to the table's type at all (a bad value
    /// in a convertible column is quarantined instead).
    #[error("{file}: column {column} of table {table}: {reason}")]
    Conversion {
        /// The file's name.
        file: String,
        /// The table the file is read into.
        table: String,
        /// The column.
        column: String,
        /// The conversion kernel's message.
        reason: String,
    },
    /// A FHIR `.json` file is not valid JSON, or holds no `resourceType`.
    #[error("{file}: not a JSON FHIR Bundle or resource ({reason}); fix or remove the file")]
    FhirFile {
        /// The file's name.
        file: String,
        /// Where the JSON breaks (line and column), or what is missing.
        reason: String,
    },
    /// The FHIR source directory holds no `.ndjson` or `.json` file.
    #[error("{path}: no FHIR NDJSON (.ndjson) or Bundle (.json) file found")]
    NoFhirInput {
        /// The source directory.
        path: String,
    },
    /// A ViewDefinition is not a valid SQL-on-FHIR view.
    #[error("ViewDefinition {file}: {source}")]
    View {
        /// The view's file.
        file: String,
        /// Why `agora-fhir` refused it.
        #[source]
        source: agora_fhir::Error,
    },
    /// A view Agora cannot use: not JSON, no `name` or one that is not a table name, a name
    /// taken or reserved, a `person_id` column of its own, a resource type outside FHIR R4.
    #[error("ViewDefinition {file}: {reason}")]
    ViewRules {
        /// The view's file.
        file: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The source files have the same fingerprint as an existing release of the dataset,
    /// and `allow_duplicate` is off; also when a concurrent ingest of the same files
    /// committed first.
    #[error(
        "these files are already release {release} of dataset {dataset}; nothing was ingested (use --allow-duplicate to add them again as a new release)"
    )]
    AlreadyIngested {
        /// The dataset.
        dataset: String,
        /// The release ingested from the same files.
        release: i64,
    },
    /// A Table Schema is invalid or inconsistent (unknown type, a key naming no field...).
    #[error("{file}: {reason}")]
    Schema {
        /// The schema file, relative to its directory.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Table Schema source holds no schema with a data file of the same name.
    #[error("{path}: no Table Schema (.json) with a data file (.csv, .tsv) of the same name found")]
    NoTableSchemaInput {
        /// The source directory.
        path: String,
    },
    /// Two schemas, or two data files, describe the same Table Schema resource (names
    /// compare case-insensitively).
    #[error("resource {resource} is given twice ({first} and {second}); keep one")]
    DuplicateResource {
        /// The resource (or table) name.
        resource: String,
        /// The file found first.
        first: String,
        /// The other file.
        second: String,
    },
    /// A field named as a person identifier (`--person-id`) is in no schema: probably a
    /// typo, which would leave identifiers unpseudonymized.
    #[error("--person-id {field}: no resource has a field of that name")]
    UnknownPersonField {
        /// The field, as given.
        field: String,
    },
    /// The vocabulary dataset named for a FHIR → OMOP mapping has no release.
    #[error("vocabulary dataset {dataset} has no release")]
    NoVocabulary {
        /// The vocabulary dataset.
        dataset: String,
    },
    /// The vocabulary dataset's latest release is unusable (no `concept` table, unreadable
    /// files...).
    #[error("vocabulary dataset {dataset}: {reason}")]
    Vocabulary {
        /// The vocabulary dataset.
        dataset: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lake failed: the dataset's ingest lock (held by another ingest), release files,
    /// manifests.
    #[error(transparent)]
    Lake(#[from] agora_lake::Error),
    /// The metadata store failed (releases, person keys, source fingerprints).
    #[error(transparent)]
    Meta(#[from] agora_govern::Error),
    /// A background task failed or panicked, or an internal conversion broke: a bug, not
    /// a problem of the extract.
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
            | Error::UnsafeSource { .. }
            | Error::NoInput { .. }
            | Error::Csv { .. }
            | Error::MissingColumn { .. }
            | Error::CdmVersion { .. }
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

/// The result of ingest calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
    let path = path.display().to_string();
    move |source| Error::Io { path, source }
}
