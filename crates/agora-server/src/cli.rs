use std::net::SocketAddr;
use std::path::PathBuf;

use agora_core::DatasetName;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Agora: an open, sovereign health data hub.
///
/// Ingests pseudonymized health data (OMOP CDM, FHIR R4, Table Schema) into immutable, versioned releases on open
/// formats, and serves them through SQL.
#[derive(Debug, Parser)]
#[command(
    name = "agora",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// The hub's data directory.
    #[arg(
        long,
        global = true,
        env = "AGORA_DATA_DIR",
        default_value = "./agora-data"
    )]
    pub data_dir: PathBuf,

    /// More log output on stderr (-v info, -vv debug). Logs never contain data values.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a data directory: metadata store, lake, audit folder and a fresh hub secret.
    Init,
    /// Ingest an extract as a new release of a dataset.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Run a read-only SQL query on a release (operators).
    Sql(SqlArgs),
    /// List datasets and their releases.
    Datasets(DatasetsArgs),
    /// Data-quality profile of a release: counts, null rates, code distributions,
    /// implausible dates, and pass/fail checks.
    Quality(QualityArgs),
    /// Start the HTTP server.
    Serve(ServeArgs),
    /// Generate synthetic data with the project's own generator.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Set up a hub with synthetic sample data and serve it: the quickest way to try Agora.
    Demo(DemoArgs),
    /// Manage the SQL-on-FHIR ViewDefinitions applied at every FHIR ingest.
    #[command(subcommand)]
    Views(ViewsCommand),
    /// Run the SQL-on-FHIR v2 conformance suite (a directory of its test JSON files) against
    /// Agora's ViewDefinition engine. The last line reads `N passed, M failed`.
    SofConformance(SofConformanceArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SofConformanceArgs {
    /// Show why each failing test failed.
    #[arg(long)]
    pub reasons: bool,
    /// The suite's `tests` directory.
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum IngestCommand {
    /// An OMOP CDM 5.4 extract: a directory with one CSV, TSV or Parquet file per table.
    Omop(IngestOmopArgs),
    /// A FHIR R4 extract: a directory of Bulk Data NDJSON files and/or Bundle JSON files.
    Fhir(IngestFhirArgs),
    /// Any dataset described by Frictionless Table Schema: `NAME.json` schemas with their
    /// `NAME.csv` (or `.tsv`) data files, anywhere below the directory (e.g. SNDS tables).
    Tableschema(IngestTableSchemaArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IngestTableSchemaArgs {
    /// Dataset to add a release to (created on first ingest).
    #[arg(long)]
    pub dataset: DatasetName,
    /// Directory holding the schemas, when they are not beside the data files.
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// A field holding a person identifier (e.g. BEN_NIR_PSA), in every table that has it;
    /// repeatable. Stored as the hub person key, never as written. Schemas may also declare
    /// such fields with `"agora:identifier": "person"`.
    #[arg(long = "person-id", value_name = "FIELD")]
    pub person_ids: Vec<String>,
    /// Validate, pseudonymize and report as a real ingest would, but commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add the files as a new release even if they are byte for byte those of an earlier
    /// release of the dataset.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Print the ingest report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Directory holding the data files.
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IngestFhirArgs {
    /// Dataset to add a release to (created on first ingest).
    #[arg(long)]
    pub dataset: DatasetName,
    /// Validate, pseudonymize and report as a real ingest would, but commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add the files as a new release even if they are byte for byte those of an earlier
    /// release of the dataset.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Where patient identities come from: `patient-id` (Patient.id) or
    /// `identifier:<system-uri>` (the Patient.identifier value with that system, e.g. a
    /// national id). Either links with OMOP persons whose person_source_value is the same.
    #[arg(long, default_value = "patient-id")]
    pub identity: agora_ingest::fhir::FhirIdentity,
    /// Print the ingest report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Directory holding the extract.
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ViewsCommand {
    /// Validate a ViewDefinition (JSON) and add it: its `name` becomes a table of every later
    /// FHIR ingest.
    Add(ViewsAddArgs),
    /// List the default and added ViewDefinitions.
    List,
}

#[derive(Debug, Args)]
pub(crate) struct ViewsAddArgs {
    /// The ViewDefinition JSON file.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IngestOmopArgs {
    /// Dataset to add a release to (created on first ingest).
    #[arg(long)]
    pub dataset: DatasetName,
    /// Validate, pseudonymize and report as a real ingest would, but commit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Add the files as a new release even if they are byte for byte those of an earlier
    /// release of the dataset.
    #[arg(long)]
    pub allow_duplicate: bool,
    /// Where person identities come from.
    #[arg(long, value_enum, default_value_t = Identity::SourceValue)]
    pub identity: Identity,
    /// Print the ingest report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Directory holding the extract.
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Identity {
    /// person.person_source_value: links the same person across datasets.
    SourceValue,
    /// person.person_id scoped to the dataset: no linkage across datasets.
    PersonId,
}

#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    #[arg(long)]
    pub dataset: DatasetName,
    /// Release number (default: the latest).
    #[arg(long)]
    pub release: Option<i64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The SQL statement; `-` reads it from standard input.
    pub sql: String,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Memory limit of a query, in MiB; beyond it operators spill to disk.
    #[arg(long, env = "AGORA_QUERY_MEMORY_MB", default_value_t = 4096)]
    pub memory_mb: usize,
    /// Time limit of a query, in seconds.
    #[arg(long, env = "AGORA_QUERY_TIMEOUT_S", default_value_t = 600)]
    pub timeout_s: u64,
    /// Maximum rows a query may return.
    #[arg(long, env = "AGORA_QUERY_MAX_ROWS", default_value_t = 1_000_000)]
    pub max_rows: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Csv,
    Tsv,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct QualityArgs {
    #[arg(long)]
    pub dataset: DatasetName,
    /// Release number (default: the latest).
    #[arg(long)]
    pub release: Option<i64>,
    /// Print the whole profile as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DatasetsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Keep it on loopback unless a TLS proxy fronts the hub.
    #[arg(long, env = "AGORA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GenerateCommand {
    /// A deterministic synthetic OMOP CDM 5.4 extract, one file per table.
    Omop(GenerateOmopArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GenerateOmopArgs {
    #[arg(long, default_value_t = 1000)]
    pub persons: u64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of clinical rows given a deliberate data-quality defect (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub defects: f64,
    /// File format. Parquet files are typed with the CDM 5.4 schema, so they cannot carry
    /// type defects: `--defects` needs CSV.
    #[arg(long, value_enum, default_value_t = GenerateFormat::Csv)]
    pub format: GenerateFormat,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GenerateFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Persons in the synthetic sample.
    #[arg(long, default_value_t = 2000)]
    pub persons: u64,
    /// Set everything up, print what to try, but do not start the server.
    #[arg(long)]
    pub no_serve: bool,
    #[command(flatten)]
    pub serve: ServeArgs,
}
