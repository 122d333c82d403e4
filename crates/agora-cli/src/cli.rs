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

    /// The metadata store: by default `meta.db` (SQLite) in the data directory; a
    /// `postgres://user@host/db` URL shares one store between several Agora nodes (which
    /// must then also share the lake and the hub secret). Holds credentials: prefer the
    /// environment variable to the flag.
    #[arg(long, global = true, env = "AGORA_META_URL", hide_env_values = true)]
    pub meta_url: Option<String>,

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
    /// Run a read-only SQL query through a data permit (researchers): only the permit's
    /// tables, columns and rows, and only what its output policy lets leave.
    Query(QueryArgs),
    /// List datasets and their releases.
    Datasets(DatasetsArgs),
    /// Data-quality profile of a release: counts, null rates, code distributions,
    /// implausible dates, and pass/fail checks.
    Quality(QualityArgs),
    /// The public catalogue (datasets, releases, tables, counts, time coverage, quality), as
    /// text, JSON or HealthDCAT-AP JSON-LD; and operators' dataset descriptions.
    Catalogue(CatalogueArgs),
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
    /// Manage accounts: users, roles, passwords, API tokens.
    User(crate::gov::users::UserArgs),
    /// Project applications: create, edit, submit, review, approve.
    Project(crate::gov::projects::ProjectArgs),
    /// Data permits: list, show, amend, revoke.
    Permit(crate::gov::permits::PermitArgs),
    /// Export requests: take a result file out under a permit, review, download.
    Exports(crate::gov::exports::ExportsArgs),
    /// The citizen opt-out registry (on a citizen's behalf).
    Optout(crate::gov::optout::OptoutArgs),
    /// The tamper-evident audit log: verify it, sign a tree head, read entries.
    Audit(crate::gov::audit::AuditArgs),
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
    /// A field holding a person identifier (e.g. NIR_ANO_17), in every table that has it;
    /// repeatable. Stored as the hub person key, never as written. `A+B` names fields that
    /// identify a person together (SNDS: BEN_NIR_PSA+BEN_RNG_GEM, number then rank): the
    /// pair gets one key. Schemas may also declare them (`"agora:identifier": "person"`,
    /// `"agora:personIdentity": [...]`).
    #[arg(long = "person-id", value_name = "FIELD[+FIELD...]")]
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
    /// Map codes to standard OMOP concepts with the vocabulary of this dataset's latest
    /// release (its concept, concept_relationship and concept_ancestor tables, e.g. an OMOP
    /// extract ingested with its vocabulary tables). Without it
    /// the OMOP tables keep source codes and concept ids are 0 (but gender, race, visit...).
    #[arg(long, value_name = "DATASET", conflicts_with = "no_omop")]
    pub vocabulary: Option<DatasetName>,
    /// Do not write the OMOP CDM tables (person, visit_occurrence, condition_occurrence...)
    /// that every FHIR release otherwise gets.
    #[arg(long)]
    pub no_omop: bool,
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
    /// The extract's OMOP CDM version; by default `cdm_source.cdm_version`, else the tables'
    /// columns, tell. Either is stored as CDM 5.4.
    #[arg(long, value_enum)]
    pub cdm_version: Option<CdmVersionArg>,
    /// Print the ingest report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Directory holding the extract.
    pub path: PathBuf,
}

/// An OMOP CDM version `agora ingest omop` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CdmVersionArg {
    /// CDM 5.3 (5.3.1).
    #[value(name = "5.3")]
    V5_3,
    /// CDM 5.4.
    #[value(name = "5.4")]
    V5_4,
}

impl CdmVersionArg {
    pub(crate) fn version(self) -> agora_cdm::CdmVersion {
        match self {
            CdmVersionArg::V5_3 => agora_cdm::CdmVersion::V5_3,
            CdmVersionArg::V5_4 => agora_cdm::CdmVersion::V5_4,
        }
    }
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
    #[command(flatten)]
    pub statement: Statement,
}

#[derive(Args)]
pub(crate) struct QueryArgs {
    /// The data permit to query through (`pmt_...`).
    #[arg(long)]
    pub permit: String,
    /// The researcher's API or session token.
    #[arg(long, env = "AGORA_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Ask a running hub over its HTTP API (`http://host:port`) instead of opening the data
    /// directory; the hub's own limits then apply, and `table` prints TSV.
    #[arg(long, env = "AGORA_API")]
    pub api: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub statement: Statement,
}

impl std::fmt::Debug for QueryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("QueryArgs")
            .field("permit", &self.permit)
            .field("format", &self.format)
            .field("statement", &self.statement)
            .finish_non_exhaustive()
    }
}

/// Where a statement comes from: the argument (which may start with a `--` comment, as
/// statements pasted from files do), standard input (`-`), or a file.
#[derive(Debug, Args)]
pub(crate) struct Statement {
    /// The SQL statement (it may begin with a `--` comment); `-` reads it from standard
    /// input.
    #[arg(
        allow_hyphen_values = true,
        required_unless_present = "file",
        conflicts_with = "file",
        value_name = "SQL"
    )]
    pub sql: Option<String>,
    /// Read the statement from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
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
    /// Maximum size of a query's result, in MiB (Arrow bytes); also bounds what one
    /// function call may build.
    #[arg(long, env = "AGORA_QUERY_MAX_RESULT_MB", default_value_t = 256)]
    pub max_result_mb: usize,
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
pub(crate) struct CatalogueArgs {
    #[command(subcommand)]
    pub command: Option<CatalogueCommand>,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    #[arg(long, value_enum, default_value_t = CatalogueFormat::Text)]
    pub format: CatalogueFormat,
    /// The hub's public URL, used to mint the IRIs of the JSON-LD export.
    #[arg(
        long,
        env = "AGORA_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogueCommand {
    /// Describe a dataset (operators): title, description, publisher, contact point, legal
    /// basis, purpose, coding systems, access rights, keywords, from a JSON file.
    Describe {
        #[arg(long)]
        dataset: DatasetName,
        /// JSON object with the fields above (`title` required).
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CatalogueFormat {
    Text,
    Json,
    /// HealthDCAT-AP JSON-LD.
    Jsonld,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Keep it on loopback unless a TLS proxy fronts the hub.
    #[arg(long, env = "AGORA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The hub's public URL (as clients reach it, e.g. behind a TLS proxy), used in links
    /// and catalogue IRIs. Default: `http://` + the listen address.
    #[arg(long, env = "AGORA_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Requests per minute per client address on the endpoints open without login
    /// (password login, citizen opt-out); 0 disables. Behind a reverse proxy every client
    /// shares the proxy's address: raise it and limit at the proxy.
    #[arg(long, env = "AGORA_PUBLIC_RATE_LIMIT", default_value_t = 30)]
    pub public_rate_limit: u32,
    /// Seconds between maintenance rounds (record expired projects, purge ended sessions).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub maintenance_interval_s: u64,
    /// Seconds between signed tree heads of the audit log (signed only when it has new
    /// entries, and once more at shutdown).
    #[arg(long, env = "AGORA_AUDIT_HEAD_INTERVAL_S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_head_interval_s: u64,
    /// Days audit entries stay in the metadata store (its views) before they move into
    /// archived segment files under the data directory's audit folder, which stay
    /// verifiable against the published heads (`agora audit verify`). Checked hourly.
    #[arg(long, env = "AGORA_AUDIT_RETENTION_DAYS", default_value_t = agora_service::audit::DEFAULT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retention_days: u32,
    /// Seconds a client may take to send a request's headers (or to start its next request
    /// on a kept-alive connection) before the connection is closed.
    #[arg(long, env = "AGORA_HEADER_TIMEOUT_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_s: u64,
    /// Seconds a client may take to send a request's body once its headers are in (408
    /// after it).
    #[arg(long, env = "AGORA_BODY_TIMEOUT_S", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_s: u64,
    /// Connections open at once from one client address (IPv6: per /64); more are refused
    /// (503). 0 disables. Behind a reverse proxy every client shares the proxy's address:
    /// raise it and limit at the proxy.
    #[arg(long, env = "AGORA_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: usize,
    /// Queries one user may have planning or running at once; more are refused until one
    /// finishes.
    #[arg(long, env = "AGORA_MAX_QUERIES_PER_USER", default_value_t = agora_service::DEFAULT_MAX_RUNNING_PER_PRINCIPAL, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_queries_per_user: usize,
    /// Also serve Arrow Flight SQL (ADBC, Flight SQL JDBC/ODBC drivers) on this address,
    /// e.g. 127.0.0.1:50051. Clients send `authorization: Bearer <API token>` and name
    /// their data permit in the `x-agora-permit` header. Off unless given.
    #[arg(long, env = "AGORA_FLIGHT_LISTEN")]
    pub flight_listen: Option<SocketAddr>,
    #[command(flatten)]
    pub oidc: OidcArgs,
    /// Also serve the PostgreSQL wire protocol on this address (psql, psycopg, JDBC, BI
    /// tools: the permit id as database, an API token as password). Off unless given.
    /// Without --pg-tls-cert/--pg-tls-key, passwords are accepted from this machine only.
    #[arg(long, env = "AGORA_PG_LISTEN")]
    pub pg_listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM) of the PostgreSQL listener.
    #[arg(long, env = "AGORA_PG_TLS_CERT", requires = "pg_tls_key")]
    pub pg_tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the PostgreSQL listener.
    #[arg(long, env = "AGORA_PG_TLS_KEY", requires = "pg_tls_cert")]
    pub pg_tls_key: Option<PathBuf>,
    /// PostgreSQL connections one user may have open at once; more are refused. 0 disables.
    #[arg(long, env = "AGORA_PG_MAX_CONNECTIONS_PER_USER", default_value_t = 8)]
    pub pg_max_connections_per_user: usize,
    /// Local accounts with a password log in by SCRAM-SHA-256 (the password never crosses
    /// the network, so no TLS is needed for it); API tokens then go with any user name that
    /// is not such an account (e.g. `user=token`). Off: every password is sent in clear,
    /// over TLS or from loopback only.
    #[arg(long, env = "AGORA_PG_SCRAM")]
    pub pg_scram: bool,
}

/// Sign-in with an OpenID Connect provider (authorization-code flow with PKCE). Off unless
/// `--oidc-issuer` is given.
#[derive(Debug, Clone, Args)]
pub(crate) struct OidcArgs {
    /// OpenID Connect: the provider's issuer URL (its discovery document is
    /// `<issuer>/.well-known/openid-configuration`). Enables sign-in at /auth/oidc/login.
    #[arg(long, env = "AGORA_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// OpenID Connect: the client id the provider registered for this hub.
    #[arg(long, env = "AGORA_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// OpenID Connect: a file holding the client secret (owner-only). Or set the
    /// AGORA_OIDC_CLIENT_SECRET environment variable; the secret is never a flag value.
    #[arg(long, env = "AGORA_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// OpenID Connect: this hub's callback URL as registered at the provider, ending in
    /// /auth/oidc/callback (https, except on loopback).
    #[arg(long, env = "AGORA_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// OpenID Connect: the scopes to request, space-separated; must include `openid`.
    #[arg(
        long,
        env = "AGORA_OIDC_SCOPES",
        default_value = "openid email profile"
    )]
    pub oidc_scopes: String,
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

impl From<OutputFormat> for agora_http::format::OutputFormat {
    fn from(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Self::Table,
            OutputFormat::Csv => Self::Csv,
            OutputFormat::Tsv => Self::Tsv,
            OutputFormat::Json => Self::Json,
        }
    }
}

/// Environment variable holding the OpenID Connect client secret (there is deliberately no
/// flag for it).
const OIDC_SECRET_ENV: &str = "AGORA_OIDC_CLIENT_SECRET";

impl OidcArgs {
    /// The configuration `agora serve` was given, `None` when OpenID Connect is off. Errors
    /// name the flags (and environment variables) to fix.
    pub(crate) fn config(&self) -> anyhow::Result<Option<agora_auth::OidcConfig>> {
        use agora_auth::ConfigError;
        use anyhow::bail;

        let Some(issuer) = &self.oidc_issuer else {
            if self.oidc_client_id.is_some()
                || self.oidc_redirect_url.is_some()
                || self.oidc_client_secret_file.is_some()
            {
                bail!("OpenID Connect options need --oidc-issuer (or AGORA_OIDC_ISSUER)");
            }
            return Ok(None);
        };
        let settings = agora_auth::OidcSettings {
            issuer: issuer.clone(),
            client_id: self.oidc_client_id.clone().unwrap_or_default(),
            redirect_url: self.oidc_redirect_url.clone(),
            scopes: self.oidc_scopes.clone(),
        };
        let flags = |e: ConfigError| -> anyhow::Error {
            match e {
                ConfigError::IssuerNotUrl(issuer, cause) => anyhow::Error::new(cause)
                    .context(format!("--oidc-issuer {issuer:?} is not a URL")),
                ConfigError::IssuerNotAcceptable(issuer) => anyhow::anyhow!(
                    "--oidc-issuer {issuer:?} must be an https URL without query or fragment (http only on loopback)"
                ),
                ConfigError::MissingClientId => anyhow::anyhow!(
                    "OpenID Connect needs --oidc-client-id (or AGORA_OIDC_CLIENT_ID)"
                ),
                ConfigError::MissingRedirectUrl => anyhow::anyhow!(
                    "OpenID Connect needs --oidc-redirect-url (or AGORA_OIDC_REDIRECT_URL), e.g. https://hub.example/auth/oidc/callback"
                ),
                ConfigError::RedirectNotUrl(redirect, cause) => anyhow::Error::new(cause)
                    .context(format!("--oidc-redirect-url {redirect:?} is not a URL")),
                ConfigError::RedirectNotAcceptable(redirect) => anyhow::anyhow!(
                    "--oidc-redirect-url {redirect:?} must be an https URL (http only on loopback) whose path ends with {}",
                    agora_auth::CALLBACK_PATH
                ),
                ConfigError::NoOpenidScope(scopes) => {
                    anyhow::anyhow!("--oidc-scopes {scopes:?} must include openid")
                }
                e @ ConfigError::EmptySecret => e.into(),
            }
        };
        let checked = settings.check().map_err(flags)?;
        let secret = oidc_client_secret(self.oidc_client_secret_file.as_deref())?;
        Ok(Some(checked.with_client_secret(secret).map_err(flags)?))
    }
}

/// The client secret from its file (owner-only, like the hub's other secrets) or from the
/// environment; never from a flag, which any local user could read in `ps`.
fn oidc_client_secret(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;

    use anyhow::{Context, bail};

    let from_env = std::env::var(OIDC_SECRET_ENV).ok();
    Ok(match (file, from_env) {
        (Some(_), Some(_)) => bail!(
            "give the OpenID Connect client secret once: --oidc-client-secret-file or {OIDC_SECRET_ENV}, not both"
        ),
        (Some(path), None) => {
            let mode = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, Some(secret)) => secret,
        (None, None) => bail!(
            "OpenID Connect needs the client secret: --oidc-client-secret-file <file> or the {OIDC_SECRET_ENV} environment variable"
        ),
    })
}
