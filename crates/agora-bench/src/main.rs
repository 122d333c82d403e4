//! `agora-bench`: times SQL queries in-process, either through Agora's policy-bounded
//! workspace or through a plain DataFusion session reading the *same* Parquet files of a
//! release. Prints one JSON object per query on stdout. With `--queries FILE` it runs a
//! whole suite (`benchmarks/datafusion.py`); with `--stdin` it answers one query per input
//! line, so `benchmarks/run.py` can alternate it with the other engines query by query.
//!
//! Not a product binary. Agora's engine is reached exactly as the server reaches it: through
//! the query service (a session per query, the access record included); the plain engine
//! reads the release's files directly, which is the point of the comparison.
//!
//! `--engine permit` asks as a researcher through a data permit, so each answer passes
//! disclosure control. On first use in a data directory it sets the study up through the
//! hub's governance, as people would (never the store directly): a researcher and a reviewer,
//! an application, its approval with a permit on every table of the release and all their
//! columns under the default output policy (snds, k = 10), and its activation. Later runs
//! find that permit again; each run issues its own API token and revokes it at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agora_core::{DataDir, DatasetName};
use agora_service::governance::{
    ApplicationForm, ApplicationState, DatasetScope, DateRange, NewUser, OutputPolicy, Permit,
    PermitGrant, Principal, ReleaseSelector, RequestedDataset, RequestedTable, Role, TableScope,
};
use agora_service::{
    Authenticated, Credential, Disclosure, Front, Hub, QueryLimits, ReleaseManifest, Target,
};
use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use clap::{Parser, ValueEnum};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    /// Agora's workspace: a new session per query, as the server does.
    Agora,
    /// A researcher's session per query through a data permit on the whole release under
    /// the default output policy: every answer passes disclosure control.
    Permit,
    /// Plain DataFusion 55 with default settings, one session for all queries.
    Datafusion,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    dataset: DatasetName,
    #[arg(long, value_enum)]
    engine: Engine,
    /// A JSON file: [{"id": "Q01", "sql": "..."}, ...].
    #[arg(long, required_unless_present = "stdin", conflicts_with = "stdin")]
    queries: Option<PathBuf>,
    /// Read one query per line on stdin ({"id": "Q01", "sql": "..."}) and run each once (no
    /// warm-up: the caller repeats), answering {"id", "seconds", "rows", "tsv"} on stdout.
    #[arg(long)]
    stdin: bool,
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Tokio worker threads, and the plain engine's target partitions (DataFusion's default:
    /// one per core). Agora's workspace keeps its own default, as the server does.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Memory limit in MiB for Agora's workspace.
    #[arg(long, default_value_t = 4096)]
    memory_mb: usize,
    /// Directory where each query's first result is written as TSV, for answer checks.
    #[arg(long)]
    results: Option<PathBuf>,
    /// A DataFusion setting for the plain engine, e.g. `datafusion.execution.batch_size=16384`
    /// (repeatable): to try a session setting before adopting it in Agora's workspace.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let dir = DataDir::new(&args.data_dir);
    let hub = Hub::open(&dir).await?;
    let Some(release) = hub.governance().release(&args.dataset, None).await? else {
        bail!("dataset {} has no release", args.dataset);
    };
    let manifest = hub.manifest(&release).await?;
    let who = hub
        .query()
        .authenticate(Credential::DataDirectory { user: "bench" })
        .await?;
    let limits = QueryLimits {
        memory_bytes: args.memory_mb << 20,
        // Agora's own default, which is what the server runs with.
        target_partitions: None,
        spill_dir: Some(dir.spill()),
        ..QueryLimits::default()
    };
    let mut token = None;
    let (who, target) = match args.engine {
        Engine::Permit => {
            let permit = study(&hub, &who, &args.dataset, release.number, &manifest).await?;
            let issued = hub
                .governance()
                .issue_token(who.principal(), RESEARCHER, None)
                .await?;
            let researcher = hub.query().authenticate(Credential::Token(&issued)).await?;
            token = Some(issued);
            (researcher, Target::Permit { id: permit.id })
        }
        Engine::Agora | Engine::Datafusion => (
            who,
            Target::Release {
                dataset: args.dataset.clone(),
                release: Some(release.number),
            },
        ),
    };
    let runner = Runner {
        engine: args.engine,
        plain: plain_datafusion(&dir, &manifest, args.threads, &args.settings)?,
        target,
        hub,
        who,
        limits,
    };
    let ran = match &args.queries {
        Some(file) => run_suite(&runner, file, args.reps, args.results.as_deref()).await,
        None => serve_stdin(&runner).await,
    };
    if let Some(token) = token {
        let operator = runner
            .hub
            .query()
            .authenticate(Credential::DataDirectory { user: "bench" })
            .await?;
        runner
            .hub
            .governance()
            .revoke_token_by_id(
                operator.principal(),
                RESEARCHER,
                &agora_service::governance::token_id(&token),
            )
            .await?;
    }
    ran
}

/// The researcher and reviewer `agora-bench --engine permit` creates.
const RESEARCHER: &str = "bench-researcher";
const REVIEWER: &str = "bench-reviewer";
/// The title of the bench's application, by which a later run finds its permit.
const STUDY_TITLE: &str = "agora-bench: the query suite under disclosure control";

/// The bench's active permit on every table and column of `release` under the default
/// output policy, set up through governance on first use (idempotent: an existing usable
/// permit with exactly these terms is reused).
async fn study(
    hub: &Hub,
    operator: &Authenticated,
    dataset: &DatasetName,
    release: i64,
    manifest: &ReleaseManifest,
) -> Result<Permit> {
    let gov = hub.governance();
    let op = operator.principal();
    let researcher = Principal {
        name: RESEARCHER.into(),
        roles: vec![Role::Researcher],
    };
    let reviewer = Principal {
        name: REVIEWER.into(),
        roles: vec![Role::Reviewer],
    };
    let users = gov.list_users(op).await?;
    for who in [&researcher, &reviewer] {
        if !users.iter().any(|u| u.id == who.name) {
            gov.create_user(
                op,
                NewUser {
                    id: who.name.clone(),
                    display_name: who.name.clone(),
                    email: None,
                    roles: who.roles.clone(),
                },
            )
            .await?;
        }
    }
    let tables: Vec<TableScope> = manifest
        .tables
        .iter()
        .map(|t| TableScope {
            table: t.name.to_string(),
            columns: t
                .schema
                .arrow_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            row_filters: vec![],
            precision: Default::default(),
        })
        .collect();
    let datasets = vec![DatasetScope {
        dataset: dataset.to_string(),
        release: ReleaseSelector::Number(release),
        tables: tables.clone(),
    }];
    let output = OutputPolicy::default();
    let usable = |p: &Permit| {
        serde_json::to_value(p.status).ok() == Some(serde_json::json!("active"))
            && p.terms.datasets == datasets
            && p.terms.output == output
            && p.terms.members.iter().any(|m| m == RESEARCHER)
    };
    if let Some(permit) = gov
        .list_permits(&researcher)
        .await?
        .into_iter()
        .rev()
        .find(usable)
    {
        return Ok(permit);
    }
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).context("a date");
    let form = ApplicationForm {
        title: STUDY_TITLE.into(),
        purpose: "Measure the cost of disclosure control on the OMOP query suite".into(),
        public_interest: "A hub whose protection is affordable".into(),
        legal_basis: "Benchmark on synthetic data".into(),
        organisation: "Agora".into(),
        requested: vec![RequestedDataset {
            dataset: dataset.to_string(),
            tables: tables
                .iter()
                .map(|t| RequestedTable {
                    table: t.table.clone(),
                    columns: t.columns.clone(),
                })
                .collect(),
        }],
        period: Some(DateRange {
            from: day(1900, 1, 1)?,
            to: day(2100, 12, 31)?,
        }),
        identifiers: vec![],
        duration_months: 12,
        team: vec![],
    };
    let app = gov.create_application(&researcher, form).await?.id;
    gov.transition_application(&researcher, &app, ApplicationState::Submitted, None)
        .await?;
    gov.transition_application(&reviewer, &app, ApplicationState::UnderReview, None)
        .await?;
    let permit = gov
        .approve_application(
            &reviewer,
            &app,
            PermitGrant {
                members: None,
                datasets,
                expires_at: None,
                output,
                expiry_beyond_request_reason: None,
            },
            None,
        )
        .await?;
    gov.transition_application(op, &app, ApplicationState::Active, None)
        .await?;
    Ok(gov.permit(op, &permit.id).await?)
}

/// One engine, ready to run queries.
struct Runner {
    engine: Engine,
    plain: SessionContext,
    hub: Hub,
    who: Authenticated,
    target: Target,
    limits: QueryLimits,
}

/// One answer, read to its last row.
struct Ran {
    batches: Vec<RecordBatch>,
    seconds: f64,
    /// What disclosure control did (permit answers).
    disclosure: Option<Disclosure>,
}

/// Why a query has no answer: refused when planned (a permit session refuses what its
/// output policy cannot release, e.g. MIN/MAX), or failed while running.
enum Failure {
    Refused(anyhow::Error),
    Failed(anyhow::Error),
}

impl Failure {
    fn json(&self, id: &str) -> serde_json::Value {
        match self {
            Failure::Refused(e) => {
                serde_json::json!({"id": id, "error": format!("{e:#}"), "refused": true})
            }
            Failure::Failed(e) => serde_json::json!({"id": id, "error": format!("{e:#}")}),
        }
    }
}

impl From<Failure> for anyhow::Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(e) => e.context("refused"),
            Failure::Failed(e) => e,
        }
    }
}

impl Runner {
    /// Runs `sql` to its last row and returns the rows with the wall time.
    async fn run(&self, id: &str, sql: &str) -> Result<Ran, Failure> {
        let failed = |e: anyhow::Error| Failure::Failed(e.context(id.to_string()));
        let start = Instant::now();
        let (batches, disclosure) = match self.engine {
            Engine::Agora | Engine::Permit => {
                let session = self
                    .hub
                    .query()
                    .open(
                        &self.who,
                        self.target.clone(),
                        Front::Bench,
                        self.limits.clone(),
                    )
                    .await
                    .map_err(|e| failed(e.into()))?;
                let planned = session.plan(sql).await.map_err(|e| {
                    Failure::Refused(anyhow::Error::from(e).context(id.to_string()))
                })?;
                let answer = planned.execute().await.map_err(|e| failed(e.into()))?;
                let disclosure = answer.disclosure().cloned();
                let output = answer.collect().await.map_err(|e| failed(e.into()))?;
                (output.batches, disclosure)
            }
            Engine::Datafusion => {
                let frame = self.plain.sql(sql).await.map_err(|e| failed(e.into()))?;
                (frame.collect().await.map_err(|e| failed(e.into()))?, None)
            }
        };
        Ok(Ran {
            batches,
            seconds: start.elapsed().as_secs_f64(),
            disclosure,
        })
    }
}

/// What disclosure control did to an answer, as JSON (`null` for operators' answers).
fn disclosure_json(d: Option<&Disclosure>) -> serde_json::Value {
    match d {
        Some(d) => serde_json::json!({
            "profile": d.profile,
            "rows": d.rows,
            "groups_withheld": d.groups_withheld,
            "cells_suppressed": d.cells_suppressed,
        }),
        None => serde_json::Value::Null,
    }
}

async fn run_suite(
    runner: &Runner,
    file: &Path,
    reps: usize,
    results: Option<&Path>,
) -> Result<()> {
    let queries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(file).context("reading queries")?)?;
    for q in &queries {
        let id = q["id"].as_str().context("query id")?;
        let sql = q["sql"].as_str().context("query sql")?;
        let engine = format!("{:?}", runner.engine).to_lowercase();
        // One warm-up run (page cache, statistics), then the timed repetitions. A query a
        // permit refuses is reported as such and the suite goes on.
        let first = match runner.run(id, sql).await {
            Ok(ran) => ran,
            Err(refused @ Failure::Refused(_)) if runner.engine == Engine::Permit => {
                let mut line = refused.json(id);
                line["engine"] = engine.into();
                println!("{line}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut times = Vec::new();
        for _ in 0..reps {
            times.push(runner.run(id, sql).await?.seconds);
        }
        if let Some(out) = results {
            std::fs::create_dir_all(out)?;
            std::fs::write(out.join(format!("{id}.tsv")), tsv(&first.batches)?)?;
        }
        let rows: usize = first.batches.iter().map(RecordBatch::num_rows).sum();
        println!(
            "{}",
            serde_json::json!({"id": id, "engine": engine, "times_s": times, "rows": rows,
                "disclosure": disclosure_json(first.disclosure.as_ref())})
        );
    }
    Ok(())
}

/// Answers queries read from stdin until it closes. A failing query is reported in its
/// answer (`"error"`, with `"refused": true` when the session refused it) and the next one is read: one engine bug must not end the benchmark.
async fn serve_stdin(runner: &Runner) -> Result<()> {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let q: serde_json::Value = serde_json::from_str(&line).context("a query line")?;
        let id = q["id"].as_str().context("query id")?;
        let sql = q["sql"].as_str().context("query sql")?;
        let answer = match runner.run(id, sql).await {
            Ok(ran) => serde_json::json!({
                "id": id,
                "seconds": ran.seconds,
                "rows": ran.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                "tsv": String::from_utf8(tsv(&ran.batches)?)?,
                "disclosure": disclosure_json(ran.disclosure.as_ref()),
            }),
            Err(failure) => failure.json(id),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

/// Rows as TSV with a header and `NULL` for nulls, as the server's TSV answers.
fn tsv(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = arrow::csv::WriterBuilder::new()
        .with_delimiter(b'\t')
        .with_null("NULL".into())
        .build(&mut buf);
    for b in batches {
        w.write(b)?;
    }
    drop(w);
    Ok(buf)
}

/// A default DataFusion session over the release's files, registered the plain way: one
/// listing table per table directory, schema inferred from Parquet.
fn plain_datafusion(
    dir: &DataDir,
    manifest: &ReleaseManifest,
    threads: usize,
    settings: &[String],
) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(threads)
        .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
    for setting in settings {
        let Some((key, value)) = setting.split_once('=') else {
            bail!("--set expects KEY=VALUE, got {setting}");
        };
        config.options_mut().set(key, value)?;
    }
    let ctx = SessionContext::new_with_config(config);
    let lake = dir.lake().canonicalize()?;
    for table in &manifest.tables {
        let urls = table
            .files
            .iter()
            .map(|f| ListingTableUrl::parse(lake.join(&f.path).to_string_lossy()))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(table.schema.arrow_schema());
        ctx.register_table(
            table.name.as_str(),
            Arc::new(ListingTable::try_new(config)?),
        )?;
    }
    Ok(ctx)
}
