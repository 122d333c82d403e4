use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use agora_core::{DataDir, DatasetName};
use agora_ingest::fhir::{FhirIngest, views};
use agora_ingest::omop::{IdentitySource, OmopIngest};
use agora_ingest::tableschema::TableSchemaIngest;
use agora_ingest::{IngestOptions, IngestReport};
use agora_service::{Credential, Front, QueryLimits, Target};
use anyhow::{Context, Result, bail};

use crate::cli::{
    CdmVersionArg, Cli, Command, DatasetsArgs, DemoArgs, GenerateCommand, GenerateFormat, Identity,
    IngestCommand, LimitArgs, QualityArgs, ServeArgs, SqlArgs, ViewsCommand,
};
use agora_service::{Hub, Initialized};

pub(crate) async fn run(cli: Cli) -> Result<()> {
    let dir = DataDir::new(&cli.data_dir).with_meta_url(cli.meta_url.clone());
    match cli.command {
        Command::Init => {
            match Hub::init(&dir).await? {
                Initialized::Created => out!(
                    "Initialized an Agora hub in {}\n  hub secret: {} (owner-only; back it up, never share it)\n  operator API token: {}",
                    dir.root().display(),
                    dir.hub_key().display(),
                    dir.operator_token().display()
                ),
                Initialized::AlreadyThere => out!(
                    "{} is already an Agora data directory; nothing changed",
                    dir.root().display()
                ),
            }
            Ok(())
        }
        Command::Ingest(IngestCommand::Omop(args)) => {
            let home = Hub::open(&dir).await?;
            let report = home
                .ingest_omop(OmopIngest {
                    options: ingest_options(
                        args.dataset,
                        &args.path,
                        args.dry_run,
                        args.allow_duplicate,
                    ),
                    identity: match args.identity {
                        Identity::SourceValue => IdentitySource::SourceValue,
                        Identity::PersonId => IdentitySource::PersonId,
                    },
                    cdm_version: args.cdm_version.map(CdmVersionArg::version),
                })
                .await;
            finish_ingest(report, &args.path, args.json, &dir)
        }
        Command::Ingest(IngestCommand::Fhir(args)) => {
            let home = Hub::open(&dir).await?;
            let report = home
                .ingest_fhir(FhirIngest {
                    options: ingest_options(
                        args.dataset,
                        &args.path,
                        args.dry_run,
                        args.allow_duplicate,
                    ),
                    identity: args.identity,
                    views_dir: Some(dir.views()),
                    omop: !args.no_omop,
                    vocabulary: args.vocabulary,
                })
                .await;
            finish_ingest(report, &args.path, args.json, &dir)
        }
        Command::Ingest(IngestCommand::Tableschema(args)) => {
            let home = Hub::open(&dir).await?;
            let report = home
                .ingest_tableschema(TableSchemaIngest {
                    options: ingest_options(
                        args.dataset,
                        &args.path,
                        args.dry_run,
                        args.allow_duplicate,
                    ),
                    schemas: args.schemas,
                    person_ids: args.person_ids,
                })
                .await;
            finish_ingest(report, &args.path, args.json, &dir)
        }
        Command::Views(ViewsCommand::Add(args)) => {
            Hub::open(&dir).await?;
            let view = views::add_view(&dir.views(), &args.file)
                .with_context(|| format!("view {} was not added", args.file.display()))?;
            out!(
                "Added view {} on {} ({} columns + person_id), stored as {}; it applies to the next FHIR ingests",
                view.name,
                view.view.resource(),
                view.view.columns().len(),
                view.origin
            );
            Ok(())
        }
        Command::Views(ViewsCommand::List) => {
            Hub::open(&dir).await?;
            for view in views::load_views(Some(&dir.views()))? {
                let columns: Vec<String> = view
                    .stored_columns()
                    .into_iter()
                    .map(|(name, ty)| {
                        format!(
                            "{name} {}",
                            serde_json::to_value(ty)
                                .unwrap_or_default()
                                .as_str()
                                .unwrap_or("?")
                        )
                    })
                    .collect();
                out!(
                    "{:<24} {:<20} {}",
                    view.name,
                    view.view.resource(),
                    view.origin
                );
                out!("    {}", columns.join(", "));
            }
            Ok(())
        }
        Command::Sql(args) => sql(&dir, args).await,
        Command::Query(args) => query(&dir, args).await,
        Command::Datasets(args) => datasets(&dir, args).await,
        Command::Quality(args) => quality(&dir, args).await,
        Command::Catalogue(args) => crate::catalogue_cmd::run(&dir, args).await,
        Command::Serve(args) => {
            // Configuration errors first, before touching the data directory.
            let options = api_options(&args)?;
            let home = Hub::open(&dir).await?;
            home.query()
                .set_max_running_per_principal(args.max_queries_per_user);
            serve(home, &args, args.listen, options).await
        }
        Command::User(args) => crate::gov::users::run(&dir, args).await,
        Command::Project(args) => crate::gov::projects::run(&dir, args).await,
        Command::Permit(args) => crate::gov::permits::run(&dir, args).await,
        Command::Exports(args) => crate::gov::exports::run(&dir, args).await,
        Command::Optout(args) => crate::gov::optout::run(&dir, args).await,
        Command::Audit(args) => crate::gov::audit::run(&dir, args).await,
        Command::Generate(GenerateCommand::Omop(args)) => {
            if !(0.0..=1.0).contains(&args.defects) {
                bail!("--defects must be between 0 and 1");
            }
            if args.format == GenerateFormat::Parquet && args.defects > 0.0 {
                bail!(
                    "--defects needs --format csv: typed Parquet columns cannot hold type defects"
                );
            }
            let report =
                tokio::task::spawn_blocking(move || crate::generate::omop(&args)).await??;
            for (table, rows) in &report.tables {
                out!("{table:<24} {rows:>12} rows");
            }
            out!("{:<24} {:>12} bytes", "total", report.bytes);
            Ok(())
        }
        Command::Demo(args) => demo(&dir, args).await,
        Command::SofConformance(args) => {
            let report = agora_fhir::conformance::run_suite(&args.dir)?;
            for f in &report.failures {
                if args.reasons {
                    out!("FAIL {} / {}: {}", f.file, f.test, f.reason);
                } else {
                    out!("FAIL {} / {}", f.file, f.test);
                }
            }
            out!("{} passed, {} failed", report.passed, report.failed);
            if report.failed > 0 {
                bail!("{} SQL-on-FHIR conformance test(s) failed", report.failed);
            }
            Ok(())
        }
    }
}

/// A session of the local operator (whoever can read the data directory) on `target`.
async fn local_session(
    home: &Hub,
    target: Target,
    limits: QueryLimits,
) -> Result<agora_service::QuerySession> {
    let who = home
        .query()
        .authenticate(Credential::DataDirectory { user: &os_user() })
        .await?;
    Ok(home.query().open(&who, target, Front::Cli, limits).await?)
}

/// The options every local ingest shares: run by the local operator, with progress bars
/// when a person watches.
fn ingest_options(
    dataset: DatasetName,
    source: &std::path::Path,
    dry_run: bool,
    allow_duplicate: bool,
) -> IngestOptions {
    IngestOptions {
        dataset,
        source: source.to_path_buf(),
        actor: local_actor(),
        progress: std::io::stderr().is_terminal(),
        dry_run,
        allow_duplicate,
    }
}

/// Who runs a local command: the local operator (whoever can read the data directory can
/// read everything in it anyway).
pub(crate) fn local_actor() -> String {
    format!("local:{}", os_user())
}

/// The operating-system user running the command.
fn os_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

fn api_options(args: &ServeArgs) -> Result<agora_http::ApiOptions> {
    Ok(agora_http::ApiOptions {
        public_rate_limit: args.public_rate_limit,
        maintenance_every: Duration::from_secs(args.maintenance_interval_s),
        audit_head_every: Duration::from_secs(args.audit_head_interval_s),
        audit_retention: Duration::from_secs(86_400 * u64::from(args.audit_retention_days)),
        oidc: args.oidc.config()?,
        public_url: args.public_url.clone(),
        header_timeout: Duration::from_secs(args.header_timeout_s),
        body_timeout: Duration::from_secs(args.body_timeout_s),
        max_connections_per_address: args.max_connections_per_address,
    })
}

pub(crate) fn limits(args: &LimitArgs) -> QueryLimits {
    QueryLimits {
        memory_bytes: args.memory_mb << 20,
        timeout: Duration::from_secs(args.timeout_s),
        max_rows: args.max_rows,
        max_bytes: args.max_result_mb << 20,
        ..QueryLimits::default()
    }
}

impl crate::cli::Statement {
    /// The statement's text, from the argument, standard input or the file.
    pub(crate) fn read(&self) -> Result<String> {
        match (&self.sql, &self.file) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the statement from {}", path.display())),
            (Some(sql), None) if sql == "-" => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read SQL from stdin")?;
                Ok(s)
            }
            (Some(sql), None) => Ok(sql.clone()),
            (None, None) => bail!("give a statement, `-` for standard input, or --file PATH"),
        }
    }
}

/// A researcher's statement through their permit, on the local data directory.
async fn query(dir: &DataDir, args: crate::cli::QueryArgs) -> Result<()> {
    let text = args.statement.read()?;
    if let Some(api) = &args.api {
        return remote_query(api, &args, &text);
    }
    let home = Hub::open(dir).await?;
    let Some(who) = agora_auth::resolve_token(&home, args.token.trim()).await? else {
        bail!(crate::gov::BAD_TOKEN);
    };
    let target = Target::Permit { id: args.permit };
    let session = home
        .query()
        .open(&who, target, Front::Cli, limits(&args.limits))
        .await?;
    print_answer(&session, &text, args.format).await
}

/// A researcher's statement through a running hub's HTTP API (`agora query --api URL`):
/// the answer on standard output, the disclosure notes on standard error.
fn remote_query(api: &str, args: &crate::cli::QueryArgs, text: &str) -> Result<()> {
    use crate::cli::OutputFormat;
    if !args
        .permit
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("a permit id is letters, digits, '_' and '-' (pmt_...)");
    }
    let format = match args.format {
        OutputFormat::Csv => "csv",
        OutputFormat::Json => "json",
        OutputFormat::Tsv | OutputFormat::Table => "tsv",
    };
    let url = format!(
        "{}/api/v1/permits/{}/sql",
        api.trim_end_matches('/'),
        args.permit
    );
    let response = ureq::post(&url)
        .set("Authorization", &format!("Bearer {}", args.token.trim()))
        .send_json(serde_json::json!({"sql": text, "format": format}));
    let response = match response {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("refused");
            bail!("{message} (HTTP {code})");
        }
        Err(e) => bail!("cannot reach the hub at {api}: {e}"),
    };
    let notes: Vec<String> = response
        .all("agora-disclosure-note")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut body = response.into_reader();
    if let Err(e) = std::io::copy(&mut body, &mut std::io::stdout()) {
        crate::stdout_failed(e);
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

async fn sql(dir: &DataDir, args: SqlArgs) -> Result<()> {
    let home = Hub::open(dir).await?;
    let text = args.statement.read()?;
    let session = local_session(
        &home,
        Target::Release {
            dataset: args.dataset,
            release: args.release,
        },
        limits(&args.limits),
    )
    .await?;
    print_answer(&session, &text, args.format).await
}

/// Runs one statement of `session` and writes its answer to standard output.
async fn print_answer(
    session: &agora_service::QuerySession,
    text: &str,
    format: crate::cli::OutputFormat,
) -> Result<()> {
    let answer = session.plan(text).await?.execute().await?;
    let disclosure = answer.disclosure().cloned();
    let out = answer.collect().await?;
    let bytes = agora_http::format::render(&out, format.into())?;
    if let Err(e) = std::io::stdout().write_all(&bytes) {
        crate::stdout_failed(e);
    }
    // The rules the answer passed, on standard error so the answer stays machine-readable.
    if let Some(d) = disclosure {
        for note in &d.notes {
            eprintln!("note: {note}");
        }
    }
    Ok(())
}

async fn quality(dir: &DataDir, args: QualityArgs) -> Result<()> {
    let home = Hub::open(dir).await?;
    let Some(release) = home
        .governance()
        .release(&args.dataset, args.release)
        .await?
    else {
        match args.release {
            Some(n) => bail!("dataset {} has no release {n}", args.dataset),
            None => bail!("dataset {} has no release; ingest one first", args.dataset),
        }
    };
    let profile = home
        .quality_profile(&release, QueryLimits::default())
        .await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&*profile)?);
        return Ok(());
    }
    out!(
        "Quality of dataset {} release {}\n",
        profile.dataset,
        profile.release
    );
    out!(
        "{:<24} {:>12} {:>10}  most empty column",
        "table",
        "rows",
        "persons"
    );
    for t in &profile.tables {
        let emptiest = t
            .columns
            .iter()
            .filter(|c| c.nulls > 0)
            .max_by(|a, b| a.null_rate.total_cmp(&b.null_rate))
            .map(|c| format!("{} ({:.0}% empty)", c.column, c.null_rate * 100.0))
            .unwrap_or_default();
        let persons = t.persons.map(|p| p.to_string()).unwrap_or_default();
        out!("{:<24} {:>12} {:>10}  {emptiest}", t.table, t.rows, persons);
    }
    let failed: Vec<_> = profile.failed().collect();
    out!(
        "\nChecks: {} passed, {} failed",
        profile.checks.len() - failed.len(),
        failed.len()
    );
    for c in failed {
        let pct = if c.rows == 0 {
            0.0
        } else {
            100.0 * c.violations as f64 / c.rows as f64
        };
        out!(
            "  FAIL {:<30} {}: {} of {} rows ({pct:.2}%, tolerated {:.0}%)",
            c.id,
            c.description,
            c.violations,
            c.rows,
            c.threshold * 100.0
        );
    }
    out!("\nThe full profile (distributions, ranges, every check): --json");
    Ok(())
}

async fn datasets(dir: &DataDir, args: DatasetsArgs) -> Result<()> {
    let home = Hub::open(dir).await?;
    let datasets = home.governance().list_datasets().await?;
    let mut all = Vec::new();
    for ds in &datasets {
        let name: DatasetName = ds.name.parse()?;
        all.push((ds, home.governance().releases(&name).await?));
    }
    if args.json {
        let value: Vec<_> = all
            .iter()
            .map(|(d, r)| serde_json::json!({"dataset": d, "releases": r}))
            .collect();
        out!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if all.is_empty() {
        out!("No datasets yet. Ingest one with `agora ingest omop --dataset NAME DIR`.");
    }
    for (ds, releases) in all {
        out!("{} ({})", ds.name, ds.model);
        for r in releases {
            out!(
                "  release {:>3}  {}  {:>12} rows  {:>8} quarantined  by {}",
                r.number,
                r.created_at,
                r.rows,
                r.quarantined,
                r.created_by
            );
        }
    }
    Ok(())
}

/// Reports an ingest's outcome (as JSON or a table), or says that nothing was committed.
fn finish_ingest(
    result: agora_ingest::Result<IngestReport>,
    path: &std::path::Path,
    json: bool,
    dir: &DataDir,
) -> Result<()> {
    let report = result
        .with_context(|| format!("ingest of {} failed; nothing was committed", path.display()))?;
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, dir);
    }
    Ok(())
}

fn print_report(report: &IngestReport, dir: &DataDir) {
    if report.dry_run {
        out!(
            "Dry run of dataset {}: validated in {:.1} s; nothing was committed",
            report.dataset,
            report.elapsed_ms as f64 / 1000.0
        );
    } else {
        out!(
            "Committed release {} of dataset {} in {:.1} s",
            report.release,
            report.dataset,
            report.elapsed_ms as f64 / 1000.0
        );
    }
    if let Some(converted) = &report.converted {
        out!("{converted}");
    }
    out!(
        "{:<24} {:>12} {:>12} {:>12}",
        "table",
        "read",
        "stored",
        "quarantined"
    );
    for t in &report.tables {
        out!(
            "{:<24} {:>12} {:>12} {:>12}",
            t.table,
            t.rows_read,
            t.rows_stored,
            t.rows_quarantined
        );
    }
    out!(
        "{:<24} {:>12} {:>12} {:>12}",
        "total",
        report.rows_read,
        report.rows_stored,
        report.rows_quarantined
    );
    out!("persons new to the hub: {}", report.new_persons);
    if report.rows_quarantined > 0 {
        out!("\nQuarantined rows by reason:");
        let mut counts: Vec<_> = report.quarantine.counts.iter().collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.rows));
        const SHOWN: usize = 12;
        if counts.len() > SHOWN {
            out!("  (the {SHOWN} most frequent of {} reasons)", counts.len());
        }
        for c in counts.into_iter().take(SHOWN) {
            let column = c
                .column
                .as_deref()
                .map(|c| format!(".{c}"))
                .unwrap_or_default();
            out!("  {:>8}  {}{}: {}", c.rows, c.table, column, c.reason);
        }
        if let Some(file) = &report.quarantine.file {
            out!(
                "Details (file, line, column, reason): {}",
                dir.lake().join(file).display()
            );
        }
    }
    for w in &report.warnings {
        out!("warning: {w}");
    }
}

const DEMO_DATASET: &str = "demo";

async fn demo(dir: &DataDir, args: DemoArgs) -> Result<()> {
    let options = api_options(&args.serve)?;
    if let Initialized::Created = Hub::init(dir).await? {
        eprintln!("Initialized a new hub in {}", dir.root().display());
    }
    let home = Hub::open(dir).await?;
    home.query()
        .set_max_running_per_principal(args.serve.max_queries_per_user);
    let dataset: DatasetName = DEMO_DATASET.parse().expect("valid name");
    if home.governance().release(&dataset, None).await?.is_none() {
        let source = dir.root().join("samples").join("omop-demo");
        eprintln!(
            "Generating a synthetic OMOP sample of {} persons...",
            args.persons
        );
        let (persons, out) = (args.persons, source.clone());
        tokio::task::spawn_blocking(move || {
            agora_synth::generate_omop(
                &agora_synth::OmopConfig {
                    persons,
                    seed: 42,
                    defects: 0.001,
                    progress: std::io::stderr().is_terminal(),
                },
                &out,
            )
        })
        .await??;
        eprintln!("Ingesting it as dataset `{DEMO_DATASET}`...");
        let report = home
            .ingest_omop(OmopIngest {
                options: ingest_options(dataset.clone(), &source, false, false),
                identity: IdentitySource::SourceValue,
                cdm_version: None,
            })
            .await?;
        print_report(&report, dir);
    }
    let data_dir = dir.root().display();
    let listen = args.serve.listen;
    out!(
        r#"
Agora is ready. Things to try (in another terminal):

  cargo run -- --data-dir {data_dir} sql --dataset demo \
      "SELECT gender_concept_id, COUNT(*) AS persons FROM person GROUP BY 1 ORDER BY 1"
  cargo run -- --data-dir {data_dir} sql --dataset demo \
      "SELECT c.concept_name, COUNT(DISTINCT co.person_id) AS persons
         FROM condition_occurrence co JOIN concept c ON c.concept_id = co.condition_concept_id
        GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
  cargo run -- --data-dir {data_dir} datasets

  curl http://{listen}/api/v1/datasets
  curl -H "Authorization: Bearer $(cat {data_dir}/keys/operator.token)" \
       -H 'Content-Type: application/json' \
       -d '{{"dataset":"demo","sql":"SELECT COUNT(*) AS n FROM person"}}' http://{listen}/api/v1/sql
"#
    );
    if args.no_serve {
        return Ok(());
    }
    serve(home, &args.serve, listen, options).await
}

/// Runs the HTTP API on `listen` and, when asked, Arrow Flight SQL and the PostgreSQL
/// protocol beside it, in one process, until Ctrl-C / SIGTERM stops them all (or one fails,
/// which stops the others).
async fn serve(
    home: Hub,
    args: &ServeArgs,
    listen: std::net::SocketAddr,
    options: agora_http::ApiOptions,
) -> Result<()> {
    let limits = limits(&args.limits);
    let http = async {
        agora_http::serve(home.clone(), listen, limits.clone(), options, |addr| {
            eprintln!("Agora listening on http://{addr} (Ctrl-C to stop)");
        })
        .await
        .map_err(anyhow::Error::from)
    };
    let flight = async {
        let Some(addr) = args.flight_listen else {
            return Ok(());
        };
        agora_flight::serve(
            home.clone(),
            addr,
            limits.clone(),
            |addr| eprintln!("Agora Flight SQL listening on grpc://{addr}"),
            shutdown_signal(),
        )
        .await
        .map_err(anyhow::Error::from)
    };
    let pg = async {
        let Some(pg_listen) = args.pg_listen else {
            return Ok(());
        };
        let pg_options = agora_pg::PgOptions {
            tls: match (&args.pg_tls_cert, &args.pg_tls_key) {
                (Some(cert), Some(key)) => Some(agora_pg::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            max_connections_per_user: args.pg_max_connections_per_user,
            scram: args.pg_scram,
        };
        agora_pg::serve(
            home.clone(),
            pg_listen,
            limits.clone(),
            pg_options,
            |addr, tls| {
                let mode = if tls {
                    "TLS"
                } else {
                    "no TLS: passwords from this machine only"
                };
                eprintln!("Agora PostgreSQL protocol on {addr} ({mode})");
            },
        )
        .await
        .map_err(anyhow::Error::from)
    };
    let fronts = |event: &str| {
        let mut detail = serde_json::Map::new();
        detail.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        detail.insert("http".into(), listen.to_string().into());
        if let Some(addr) = args.flight_listen {
            detail.insert("flight_sql".into(), addr.to_string().into());
        }
        if let Some(addr) = args.pg_listen {
            detail.insert("postgresql".into(), addr.to_string().into());
        }
        let audit = home.audit().clone();
        let event = event.to_owned();
        async move { audit.record_operation(&local_actor(), &event, detail).await }
    };
    // The log says when the hub was open to requests (a server that cannot log does not
    // start).
    fronts("server.started").await?;
    let served = tokio::try_join!(http, flight, pg);
    if let Err(e) = fronts("server.stopped").await {
        eprintln!("agora: the audit log could not record the stop: {e}");
    }
    served?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
