//! `agora-bench`: times SQL queries in-process, either through Agora's policy-bounded
//! workspace or through a plain DataFusion session reading the *same* Parquet files of a
//! release. Used by `benchmarks/run.py`; prints one JSON object per query on stdout.
//!
//! Not a product binary: it reads the data directory directly and bypasses authorization.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use agora_core::{DataDir, DatasetName};
use agora_govern::MetaStore;
use agora_lake::Lake;
use agora_query::{Grant, QueryEngine, QueryLimits};
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
    #[arg(long)]
    queries: PathBuf,
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Worker threads (DataFusion target partitions and Tokio workers).
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
    let meta = MetaStore::open_sqlite(&dir.meta_db()).await?;
    let lake = Lake::open_local(dir.lake())?;
    let Some(release) = meta.release(&args.dataset, None).await? else {
        bail!("dataset {} has no release", args.dataset);
    };
    let manifest = lake.read_manifest(&release.manifest_path).await?;
    let queries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&args.queries).context("reading queries")?)?;
    let limits = QueryLimits {
        memory_bytes: args.memory_mb << 20,
        target_partitions: Some(args.threads),
        spill_dir: Some(dir.spill()),
        ..QueryLimits::default()
    };
    let grant = Grant {
        principal: "bench".into(),
        dataset: args.dataset.clone(),
        release: release.number,
        manifest: manifest.clone(),
    };
    let plain = plain_datafusion(&dir, &manifest, args.threads, &args.settings)?;
    let engine = QueryEngine::new(lake.clone());

    for q in &queries {
        let id = q["id"].as_str().context("query id")?;
        let sql = q["sql"].as_str().context("query sql")?;
        let mut times = Vec::new();
        let mut first: Option<Vec<RecordBatch>> = None;
        // One warm-up run (page cache, statistics), then the timed repetitions.
        for rep in 0..=args.reps {
            let start = Instant::now();
            let batches = match args.engine {
                Engine::Agora => {
                    let ws = engine.workspace(grant.clone(), limits.clone()).await?;
                    ws.sql(sql).await.with_context(|| id.to_string())?.batches
                }
                Engine::Datafusion => plain.sql(sql).await?.collect().await?,
            };
            let elapsed = start.elapsed().as_secs_f64();
            if rep > 0 {
                times.push(elapsed);
            }
            first.get_or_insert(batches);
        }
        let batches = first.unwrap_or_default();
        if let Some(out) = &args.results {
            std::fs::create_dir_all(out)?;
            let mut buf = Vec::new();
            {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_delimiter(b'\t')
                    .with_null("NULL".into())
                    .build(&mut buf);
                for b in &batches {
                    w.write(b)?;
                }
            }
            std::fs::write(out.join(format!("{id}.tsv")), buf)?;
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        println!(
            "{}",
            serde_json::json!({"id": id, "engine": format!("{:?}", args.engine).to_lowercase(), "times_s": times, "rows": rows})
        );
    }
    Ok(())
}

/// A default DataFusion session over the release's files, registered the plain way: one
/// listing table per table directory, schema inferred from Parquet.
fn plain_datafusion(
    dir: &DataDir,
    manifest: &agora_lake::ReleaseManifest,
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
