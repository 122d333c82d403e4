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
//!
//! Two measurements of the audit log's cost (issue 15; `benchmarks/README.md`, "Audit log
//! cost"):
//!
//! - **Load, audit log on against off** (`--clients N --seconds S --rounds R`): N concurrent
//!   clients loop over the suite for S seconds per round, through two hubs opened on the same
//!   data directory in this process: one as every front opens it (`Hub::open`: each query's
//!   access event committed to the audit log before its answer leaves), one whose access log
//!   does nothing (`Hub::open_with_access_log`, which only this benchmark enables, through
//!   agora-service's `bench-access-log` feature). Rounds alternate between them in pairs.
//! - **Appends** (`--audit-append N`): the audit log writer's latency and throughput on a
//!   current-thread runtime, one writer then `--writers` concurrent ones (group commit), on
//!   a throw-away data directory (SQLite, or the PostgreSQL store given by `--meta-url`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_core::{DataDir, DatasetName};
use agora_service::access::{AccessEvent, AccessLog, AccessOutcome, AccessTarget};
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

/// Which hubs a load runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AccessLogMode {
    /// Rounds alternate between the audit log on and off, in pairs (the starting side
    /// alternating from pair to pair: on off off on on off ...).
    Compare,
    /// Every round with the audit log, as the product runs.
    On,
    /// Every round without it.
    Off,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, required_unless_present = "audit_append")]
    data_dir: Option<PathBuf>,
    #[arg(long, required_unless_present = "audit_append")]
    dataset: Option<DatasetName>,
    #[arg(long, value_enum, required_unless_present = "audit_append")]
    engine: Option<Engine>,
    /// A JSON file: [{"id": "Q01", "sql": "..."}, ...].
    #[arg(
        long,
        required_unless_present_any = ["stdin", "audit_append"],
        conflicts_with = "stdin"
    )]
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

    /// Load mode: this many concurrent clients loop over the `--queries` suite (each in its
    /// own shuffled order) for `--seconds` per round; one JSON line per round, then a summary.
    #[arg(long, requires = "queries", conflicts_with_all = ["stdin", "results"])]
    clients: Option<usize>,
    /// Load mode: the length of one round, seconds. Queries still running at its end are
    /// dropped (aborted) and not counted.
    #[arg(long, default_value_t = 60, requires = "clients")]
    seconds: u64,
    /// Load mode: how many rounds.
    #[arg(long, default_value_t = 4, requires = "clients")]
    rounds: usize,
    /// Load mode: an unmeasured round of this many seconds first (audit log on).
    #[arg(long, default_value_t = 0, requires = "clients")]
    warmup_seconds: u64,
    /// Load mode: with the audit log, without it, or alternating (the comparison).
    #[arg(long, value_enum, default_value_t = AccessLogMode::Compare, requires = "clients")]
    access_log: AccessLogMode,
    /// Load mode: the seed of the clients' query orders (the two rounds of a pair use the
    /// same orders).
    #[arg(long, default_value_t = 1, requires = "clients")]
    seed: u64,

    /// Append micro-benchmark: records N access events through the audit log's writer on a
    /// current-thread runtime, first one at a time, then from `--writers` concurrent tasks;
    /// on a throw-away data directory created in the temporary directory and removed after.
    #[arg(
        long,
        value_name = "N",
        conflicts_with_all = ["data_dir", "dataset", "engine", "queries", "stdin", "clients"]
    )]
    audit_append: Option<usize>,
    /// Append micro-benchmark: concurrent writers of the second part.
    #[arg(long, default_value_t = 16, requires = "audit_append")]
    writers: usize,
    /// Append micro-benchmark: the metadata store (`postgres://...`) instead of the throw-away
    /// directory's SQLite `meta.db`. It gets a hub's tables and the appended entries.
    #[arg(long, requires = "audit_append", hide_env_values = true)]
    meta_url: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(n) = args.audit_append {
        // One core: the writer task and every caller on one thread.
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(audit_append(n, args.writers, args.meta_url));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let (Some(data_dir), Some(dataset), Some(engine)) =
        (args.data_dir.clone(), args.dataset.clone(), args.engine)
    else {
        bail!("--data-dir, --dataset and --engine are required");
    };
    if args.clients.is_some() && engine == Engine::Datafusion {
        bail!("the load mode measures Agora's query service: --engine agora or permit");
    }
    let dir = DataDir::new(&data_dir);
    let hub = Hub::open(&dir).await?;
    let Some(release) = hub.governance().release(&dataset, None).await? else {
        bail!("dataset {dataset} has no release");
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
    let (who, target) = match engine {
        Engine::Permit => {
            let permit = study(&hub, &who, &dataset, release.number, &manifest).await?;
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
                dataset: dataset.clone(),
                release: Some(release.number),
            },
        ),
    };
    let runner = Runner {
        engine,
        plain: plain_datafusion(&dir, &manifest, args.threads, &args.settings)?,
        target,
        hub,
        who,
        limits,
    };
    let ran = match (&args.queries, args.clients) {
        (Some(file), Some(clients)) => {
            let load = Load {
                clients,
                round: Duration::from_secs(args.seconds),
                rounds: args.rounds,
                warmup: Duration::from_secs(args.warmup_seconds),
                mode: args.access_log,
                seed: args.seed,
            };
            run_load(&runner, token.as_deref(), file, &load).await
        }
        (Some(file), None) => run_suite(&runner, file, args.reps, args.results.as_deref()).await,
        (None, _) => serve_stdin(&runner).await,
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

/// An access log that records nothing: the "audit log off" side of the load comparison.
#[derive(Debug)]
struct NoAccessLog;

impl AccessLog for NoAccessLog {
    fn record<'a>(
        &'a self,
        _event: &'a AccessEvent,
    ) -> Pin<Box<dyn Future<Output = agora_service::Result<()>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
}

/// The load mode's settings.
struct Load {
    clients: usize,
    round: Duration,
    rounds: usize,
    warmup: Duration,
    mode: AccessLogMode,
    seed: u64,
}

/// What one round's clients did.
#[derive(Default)]
struct Tally {
    answered: u64,
    refused: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.answered += other.answered;
        self.refused += other.refused;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// SplitMix64: a small deterministic generator for the clients' query orders.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.next() % (i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// One client of a round: loops over the suite in its own order until `deadline`; a query
/// still running then is dropped and not counted.
async fn client(
    runner: Arc<Runner>,
    queries: Arc<Vec<(String, String)>>,
    seed: u64,
    deadline: tokio::time::Instant,
) -> Tally {
    let mut order: Vec<usize> = (0..queries.len()).collect();
    SplitMix(seed).shuffle(&mut order);
    let mut tally = Tally::default();
    for &i in order.iter().cycle() {
        let (id, sql) = &queries[i];
        match tokio::time::timeout_at(deadline, runner.run(id, sql)).await {
            Err(_) => break,
            Ok(Ok(_)) => tally.answered += 1,
            Ok(Err(Failure::Refused(_))) if runner.engine == Engine::Permit => tally.refused += 1,
            Ok(Err(failure)) => {
                tally.errors += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!("{:#}", anyhow::Error::from(failure)));
                }
            }
        }
    }
    tally
}

/// Runs `load.clients` clients against `runner` for `length`.
async fn round(
    runner: &Arc<Runner>,
    queries: &Arc<Vec<(String, String)>>,
    load: &Load,
    seed: u64,
    length: Duration,
) -> Result<(Tally, f64)> {
    let start = tokio::time::Instant::now();
    let deadline = start + length;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..load.clients as u64 {
        clients.spawn(client(
            runner.clone(),
            queries.clone(),
            seed.wrapping_mul(1_000_003).wrapping_add(c),
            deadline,
        ));
    }
    let mut tally = Tally::default();
    while let Some(done) = clients.join_next().await {
        tally.add(done?);
    }
    // Completions are counted up to the deadline only.
    let seconds = length.as_secs_f64();
    // Let the aborted queries' work wind down before the next round.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((tally, seconds))
}

/// The load comparison: the same suite through a hub with the audit log and one without.
async fn run_load(runner: &Runner, token: Option<&str>, file: &Path, load: &Load) -> Result<()> {
    let queries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(file).context("reading queries")?)?;
    let queries = Arc::new(
        queries
            .iter()
            .map(|q| {
                Ok((
                    q["id"].as_str().context("query id")?.to_owned(),
                    q["sql"].as_str().context("query sql")?.to_owned(),
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    );
    if queries.is_empty() || load.clients == 0 || load.rounds == 0 {
        bail!("the load needs queries, clients and rounds");
    }
    // The same principal runs every client's statements: let it run them all at once, as
    // `agora serve --max-queries-per-user` would.
    let side = |hub: Hub, who: Authenticated| {
        hub.query().set_max_running_per_principal(load.clients);
        Arc::new(Runner {
            engine: runner.engine,
            plain: runner.plain.clone(),
            hub,
            who,
            target: runner.target.clone(),
            limits: runner.limits.clone(),
        })
    };
    let on = side(runner.hub.clone(), runner.who.clone());
    let off_hub = Hub::open_with_access_log(runner.hub.dir(), Arc::new(NoAccessLog)).await?;
    let off_who = match token {
        Some(token) => {
            off_hub
                .query()
                .authenticate(Credential::Token(token))
                .await?
        }
        None => {
            off_hub
                .query()
                .authenticate(Credential::DataDirectory { user: "bench" })
                .await?
        }
    };
    let off = side(off_hub, off_who);
    if !load.warmup.is_zero() {
        round(&on, &queries, load, load.seed ^ 0xffff, load.warmup).await?;
    }
    // Per side: answered queries and seconds; per pair: the on/off ratio.
    let mut totals = [(0u64, 0f64, 0u64); 2];
    let mut pair_qps = Vec::new();
    for r in 0..load.rounds {
        let pair = r / 2;
        let audit_on = match load.mode {
            AccessLogMode::On => true,
            AccessLogMode::Off => false,
            // on off | off on | on off ...
            AccessLogMode::Compare => (r % 2 == 0) == (pair % 2 == 0),
        };
        let runner = if audit_on { &on } else { &off };
        // Both rounds of a pair give the clients the same orders.
        let (tally, seconds) =
            round(runner, &queries, load, load.seed + pair as u64, load.round).await?;
        let qps = tally.answered as f64 / seconds;
        let total = &mut totals[usize::from(!audit_on)];
        total.0 += tally.answered;
        total.1 += seconds;
        total.2 += tally.errors;
        if pair_qps.len() <= pair {
            pair_qps.push([None, None]);
        }
        pair_qps[pair][usize::from(!audit_on)] = Some(qps);
        let mut line = serde_json::json!({
            "round": r + 1,
            "access_log": if audit_on { "on" } else { "off" },
            "clients": load.clients,
            "queries": tally.answered,
            "errors": tally.errors,
            "seconds": seconds,
            "qps": qps,
        });
        if runner.engine == Engine::Permit {
            line["refused"] = tally.refused.into();
        }
        if let Some(e) = &tally.first_error {
            line["first_error"] = e.clone().into();
        }
        println!("{line}");
    }
    let qps = |t: (u64, f64, u64)| (t.1 > 0.0).then(|| t.0 as f64 / t.1);
    let (on_qps, off_qps) = (qps(totals[0]), qps(totals[1]));
    let ratio = on_qps.zip(off_qps).map(|(a, b)| a / b);
    let pair_ratios: Vec<f64> = pair_qps
        .iter()
        .filter_map(|[a, b]| Some((*a)? / (*b)?))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "summary": true,
            "clients": load.clients,
            "rounds": load.rounds,
            "round_seconds": load.round.as_secs_f64(),
            "on": {"queries": totals[0].0, "seconds": totals[0].1, "errors": totals[0].2, "qps": on_qps},
            "off": {"queries": totals[1].0, "seconds": totals[1].1, "errors": totals[1].2, "qps": off_qps},
            "ratio_on_off": ratio,
            "pair_ratios": pair_ratios,
        })
    );
    Ok(())
}

/// A realistic access event: a suite-like statement of about 300 bytes reading 3 tables.
fn append_event(i: usize) -> AccessEvent {
    AccessEvent {
        at: chrono::Utc::now(),
        actor: "bench".into(),
        front: "bench".into(),
        target: AccessTarget::Release {
            dataset: "bench".into(),
            release: 1,
        },
        statement: format!(
            "-- {i:08}\nSELECT c.condition_concept_id, COUNT(DISTINCT p.person_id) AS persons \
             FROM person p JOIN condition_occurrence c ON c.person_id = p.person_id \
             JOIN drug_exposure d ON d.person_id = p.person_id \
             WHERE d.drug_concept_id = 19133905 AND d.drug_exposure_start_date >= \
             c.condition_start_date GROUP BY 1 ORDER BY 2 DESC LIMIT 20"
        ),
        outcome: AccessOutcome::Answered,
        error_kind: None,
        tables: vec![
            "person".into(),
            "condition_occurrence".into(),
            "drug_exposure".into(),
        ],
        rows: Some(20),
        cells_suppressed: None,
    }
}

/// Milliseconds at quantile `q` of sorted durations (nearest rank).
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn append_line(store: &str, writers: usize, mut latencies: Vec<Duration>, wall: Duration) {
    latencies.sort_unstable();
    let n = latencies.len();
    println!(
        "{}",
        serde_json::json!({
            "audit_append": true,
            "store": store,
            "writers": writers,
            "entries": n,
            "seconds": wall.as_secs_f64(),
            "entries_per_s": n as f64 / wall.as_secs_f64(),
            "p50_ms": quantile_ms(&latencies, 0.50),
            "p99_ms": quantile_ms(&latencies, 0.99),
            "max_ms": quantile_ms(&latencies, 1.0),
        })
    );
}

/// The append micro-benchmark, on a throw-away data directory.
async fn audit_append(n: usize, writers: usize, meta_url: Option<String>) -> Result<()> {
    if n == 0 || writers == 0 {
        bail!("--audit-append and --writers must be at least 1");
    }
    let root = std::env::temp_dir().join(format!("agora-bench-audit-{}", std::process::id()));
    if root.exists() {
        bail!("{} exists already", root.display());
    }
    let store = match &meta_url {
        Some(url) if url.starts_with("postgres") => "postgresql",
        Some(_) => "other",
        None => "sqlite",
    };
    let dir = DataDir::new(&root).with_meta_url(meta_url);
    let measured = async {
        Hub::init(&dir).await?;
        let hub = Hub::open(&dir).await?;
        let log = hub.start_audit_access_log();
        // Warm-up: the store's connections and statements.
        for i in 0..n.min(100) {
            log.record(&append_event(i)).await?;
        }
        // One writer: each call waits for its own commit.
        let mut latencies = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let event = append_event(i);
            let t = Instant::now();
            log.record(&event).await?;
            latencies.push(t.elapsed());
        }
        append_line(store, 1, latencies, start.elapsed());
        // Concurrent writers: their events share commits.
        let per = n.div_ceil(writers);
        let mut tasks = tokio::task::JoinSet::new();
        let start = Instant::now();
        for w in 0..writers {
            let log = log.clone();
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(per);
                for i in 0..per {
                    let event = append_event(w * per + i);
                    let t = Instant::now();
                    log.record(&event).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            });
        }
        let mut latencies = Vec::with_capacity(per * writers);
        while let Some(done) = tasks.join_next().await {
            latencies.extend(done??);
        }
        append_line(store, writers, latencies, start.elapsed());
        anyhow::Ok(())
    }
    .await;
    let removed = std::fs::remove_dir_all(&root);
    measured?;
    removed.with_context(|| format!("removing {}", root.display()))
}
