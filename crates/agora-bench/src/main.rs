//! `agora-bench`: times SQL queries in-process, either through Agora's policy-bounded
//! workspace or through a plain DataFusion session reading the *same* Parquet files of a
//! release. Prints one JSON object per query on stdout. With `--queries FILE` it runs a
//! whole suite (`benchmarks/datafusion.py`); with `--stdin` it answers one query per input
//! line, so `benchmarks/run.py` can alternate it with the other engines query by query.
//!
//! Not a product binary. Agora's engine is reached exactly as the server reaches it: through
//! the query service (a session per query, the access record included); the plain engine
//! reads the release's files directly, which is the point of the comparison.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use agora_core::{DataDir, DatasetName};
use agora_service::{Authenticated, Credential, Front, Hub, QueryLimits, ReleaseManifest, Target};
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
    let runner = Runner {
        engine: args.engine,
        plain: plain_datafusion(&dir, &manifest, args.threads, &args.settings)?,
        target: Target::Release {
            dataset: args.dataset.clone(),
            release: Some(release.number),
        },
        hub,
        who,
        limits,
    };
    match &args.queries {
        Some(file) => run_suite(&runner, file, args.reps, args.results.as_deref()).await,
        None => serve_stdin(&runner).await,
    }
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

impl Runner {
    /// Runs `sql` to its last row and returns the rows with the wall time.
    async fn run(&self, id: &str, sql: &str) -> Result<(Vec<RecordBatch>, f64)> {
        let start = Instant::now();
        let batches = match self.engine {
            Engine::Agora => {
                let session = self
                    .hub
                    .query()
                    .open(
                        &self.who,
                        self.target.clone(),
                        Front::Bench,
                        self.limits.clone(),
                    )
                    .await?;
                session
                    .sql(sql)
                    .await
                    .with_context(|| id.to_string())?
                    .batches
            }
            Engine::Datafusion => self
                .plain
                .sql(sql)
                .await
                .with_context(|| id.to_string())?
                .collect()
                .await
                .with_context(|| id.to_string())?,
        };
        Ok((batches, start.elapsed().as_secs_f64()))
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
        // One warm-up run (page cache, statistics), then the timed repetitions.
        let (batches, _) = runner.run(id, sql).await?;
        let mut times = Vec::new();
        for _ in 0..reps {
            times.push(runner.run(id, sql).await?.1);
        }
        if let Some(out) = results {
            std::fs::create_dir_all(out)?;
            std::fs::write(out.join(format!("{id}.tsv")), tsv(&batches)?)?;
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        println!(
            "{}",
            serde_json::json!({"id": id, "engine": format!("{:?}", runner.engine).to_lowercase(), "times_s": times, "rows": rows})
        );
    }
    Ok(())
}

/// Answers queries read from stdin until it closes. A failing query is reported in its
/// answer (`"error"`) and the next one is read: one engine bug must not end the benchmark.
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
            Ok((batches, seconds)) => serde_json::json!({
                "id": id,
                "seconds": seconds,
                "rows": batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                "tsv": String::from_utf8(tsv(&batches)?)?,
            }),
            Err(e) => serde_json::json!({"id": id, "error": format!("{e:#}")}),
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
