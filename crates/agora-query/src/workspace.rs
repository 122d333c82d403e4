use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_core::DatasetName;
use agora_lake::{LAKE_URL, Lake, ReleaseManifest, TableEntry};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::TableScopedPath;
use datafusion::execution::cache::cache_manager::{
    CacheManagerConfig, CachedFileMetadata, CachedFileMetadataEntry, FileMetadataCache,
    FileStatisticsCache,
};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use futures::StreamExt as _;
use object_store::path::Path;

use crate::disclosure::{Disclosure, LedgerCheck, Protection, one_batch, release};
use crate::registry::LakeOnly;
use crate::{Error, Result};

/// Bounds on one query.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Memory pool shared by the query's operators; beyond it, sorts, joins and aggregates
    /// spill to `spill_dir` or fail cleanly.
    pub memory_bytes: usize,
    /// Longest a query may take, planning included; past it the query is stopped.
    pub timeout: Duration,
    /// Most rows a result may have; past it the query is stopped.
    pub max_rows: usize,
    /// Most bytes a result may have (Arrow buffers of its batches); past it the query is
    /// stopped. Also bounds what one function call may allocate (see `guard`).
    pub max_bytes: usize,
    /// Partitions each operator is split into; `None` = [`default_target_partitions`].
    pub target_partitions: Option<usize>,
    /// Where spill files go; `None` = the OS temporary directory.
    pub spill_dir: Option<PathBuf>,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 4 << 30,
            timeout: Duration::from_secs(600),
            max_rows: 1_000_000,
            max_bytes: 256 << 20,
            target_partitions: None,
            spill_dir: None,
        }
    }
}

impl QueryLimits {
    /// Most bytes one function call may build for one batch: the result's byte limit, or
    /// an eighth of the memory limit if smaller (several such values can be alive at once).
    pub fn value_bytes(&self) -> usize {
        self.max_bytes.min(self.memory_bytes / 8).max(1 << 20)
    }
}

/// The number of cores, but at least 8. DataFusion's default is the number of cores; on a
/// small machine, more and smaller partitions (likely: smaller hash tables per join and
/// aggregate) ran the OMOP suite 10-15% faster: 8 partitions against 2 on a 2-core machine
/// at 1M persons (benchmarks/README.md, "Settings"). Read once: every session asks.
pub fn default_target_partitions() -> usize {
    static PARTITIONS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PARTITIONS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .max(8)
    })
}

/// The right to query one release. Constructing one is an authorization decision: only the
/// query service (`agora-service`) depends on this crate, and it builds grants for
/// operators and the hub's own profiler after checking the principal.
#[derive(Debug, Clone)]
pub struct Grant {
    principal: String,
    dataset: DatasetName,
    release: i64,
    manifest: Arc<ReleaseManifest>,
}

impl Grant {
    /// A grant of `release` of `dataset` (described by `manifest`) to `principal`.
    pub fn new(
        principal: impl Into<String>,
        dataset: DatasetName,
        release: i64,
        manifest: Arc<ReleaseManifest>,
    ) -> Self {
        Self {
            principal: principal.into(),
            dataset,
            release,
            manifest,
        }
    }

    /// Who the grant is for.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The granted dataset.
    pub fn dataset(&self) -> &DatasetName {
        &self.dataset
    }

    /// The granted release number.
    pub fn release(&self) -> i64 {
        self.release
    }

    /// The granted release's manifest (tables, schemas, files).
    pub fn manifest(&self) -> &Arc<ReleaseManifest> {
        &self.manifest
    }
}

/// Process-wide query state: the lake, and caches of Parquet footers and file statistics
/// shared by every workspace. Sharing is safe because release files are immutable: a lake
/// path always holds the same bytes. Cheap to clone.
#[derive(Clone)]
pub struct QueryEngine {
    lake: Lake,
    metadata: Arc<FileMetadataCache>,
    statistics: Arc<FileStatisticsCache>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("lake", &self.lake)
            .finish_non_exhaustive()
    }
}

impl QueryEngine {
    /// The engine over `lake`, with empty caches.
    pub fn new(lake: Lake) -> Self {
        Self {
            lake,
            metadata: Arc::new(DefaultCache::<Path, CachedFileMetadataEntry>::new(
                256 << 20,
            )),
            statistics: Arc::new(DefaultCache::<TableScopedPath, CachedFileMetadata>::new(
                64 << 20,
            )),
        }
    }

    /// The lake sessions read.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A policy-bounded session for `grant`.
    pub async fn workspace(&self, grant: Grant, limits: QueryLimits) -> Result<Workspace> {
        Workspace::open(self, grant, limits).await
    }
}

/// An operator's query session over one release: every table of the release.
pub struct Workspace {
    session: Session,
    grant: Grant,
}

/// The result of a query, fully materialized (bounded by `QueryLimits::max_rows`).
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// The result's schema (also when there are no batches).
    pub schema: SchemaRef,
    /// The result's rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    /// Rows in all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl Workspace {
    async fn open(engine: &QueryEngine, grant: Grant, limits: QueryLimits) -> Result<Self> {
        let session = Session::new(engine, grant.dataset.as_str(), limits)?;
        for table in &grant.manifest.tables {
            let provider = session.listing_table(table)?;
            session
                .ctx
                .register_table(table.name.as_str(), provider)
                .map_err(|e| session.error(e))?;
        }
        Ok(Self { session, grant })
    }

    /// The grant the workspace was opened with.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Plans one read-only SQL statement (see [`Planned`]).
    pub async fn plan(&self, sql: &str) -> Result<Planned> {
        self.session.plan(sql).await
    }

    /// Plans, runs and collects one read-only SQL statement under the workspace's limits.
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        self.session
            .plan(sql)
            .await?
            .execute()
            .await?
            .collect()
            .await
    }

    /// Names of the tables this workspace can see, sorted.
    pub fn tables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .grant
            .manifest
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        names
    }
}

/// A DataFusion session confined to the lake, with the limits of one workspace and no
/// tables yet: what every kind of workspace is built on.
pub(crate) struct Session {
    ctx: SessionContext,
    limits: QueryLimits,
    /// Whether `EXPLAIN ANALYZE` / `EXPLAIN VERBOSE` may show row counts of every operator.
    plan_metrics: bool,
}

impl Session {
    pub(crate) fn new(
        engine: &QueryEngine,
        default_schema: &str,
        limits: QueryLimits,
    ) -> Result<Self> {
        let df_err = |e| Error::from_datafusion(e, limits.memory_bytes >> 20);
        let lake_url = url::Url::parse(LAKE_URL).expect("valid lake URL");
        let mut disk = DiskManagerBuilder::default();
        if let Some(dir) = &limits.spill_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Engine(format!("spill directory: {e}")))?;
            disk = disk.with_mode(DiskManagerMode::Directories(vec![dir.clone()]));
        }
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .with_disk_manager_builder(disk)
            .with_object_store_registry(Arc::new(LakeOnly::new(
                lake_url,
                engine.lake.store().clone(),
            )))
            .with_cache_manager(
                CacheManagerConfig::default()
                    .with_file_metadata_cache(Some(engine.metadata.clone()))
                    .with_file_statistics_cache(Some(engine.statistics.clone())),
            )
            .build_arc()
            .map_err(df_err)?;

        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema("agora", default_schema)
            .with_create_default_catalog_and_schema(true)
            .with_information_schema(true)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
        config = config.with_target_partitions(
            limits
                .target_partitions
                .unwrap_or_else(default_target_partitions),
        );
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(crate::runtime::YieldingOperators))
            // No CREATE EXTERNAL TABLE factories, even though DDL is refused anyway.
            .with_table_factories(Default::default())
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::guard::install(&ctx, limits.value_bytes());
        Ok(Self {
            ctx,
            limits,
            plan_metrics: true,
        })
    }

    /// Refuses `EXPLAIN ANALYZE` and `EXPLAIN VERBOSE`: their per-operator row counts
    /// include rows a policy removes further up the plan.
    pub(crate) fn without_plan_metrics(mut self) -> Self {
        self.plan_metrics = false;
        self
    }

    pub(crate) fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    pub(crate) fn error(&self, e: DataFusionError) -> Error {
        Error::from_datafusion(e, self.limits.memory_bytes >> 20)
    }

    /// A table provider over one table's files in the lake, typed by the manifest.
    pub(crate) fn listing_table(&self, table: &TableEntry) -> Result<Arc<ListingTable>> {
        let urls = table
            .files
            .iter()
            .map(|f| ListingTableUrl::parse(format!("{LAKE_URL}/{}", f.path)))
            .collect::<datafusion::error::Result<Vec<_>>>()
            .map_err(|e| self.error(e))?;
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(table.schema.arrow_schema());
        Ok(Arc::new(
            ListingTable::try_new(config).map_err(|e| self.error(e))?,
        ))
    }

    /// Parses and plans one read-only SQL statement: refuses DDL, DML and other statements
    /// (and, in permit sessions, plan metrics), resolves names against the session's tables
    /// and policies. Planning counts against the query's time limit.
    pub(crate) async fn plan(&self, sql: &str) -> Result<Planned> {
        let started = tokio::time::Instant::now();
        crate::limits::check_statement(sql)?;
        let limit_mb = self.limits.memory_bytes >> 20;
        let ctx = self.ctx.clone();
        let statement = sql.to_owned();
        // On the query runtime: parsing and planning recurse over the statement.
        let planning = crate::runtime::on_query_runtime(async move {
            let df_err = |e| Error::from_datafusion(e, limit_mb);
            let state = ctx.state();
            let parsed = state
                .sql_to_statement(&statement, &state.config().options().sql_parser.dialect)
                .map_err(df_err)?;
            let plan = state.statement_to_plan(parsed).await.map_err(df_err)?;
            SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false)
                .verify_plan(&plan)
                .map_err(df_err)?;
            crate::limits::check_plan(&plan)?;
            ctx.execute_logical_plan(plan).await.map_err(df_err)
        });
        let df = tokio::time::timeout(self.limits.timeout, planning)
            .await
            .map_err(|_| Error::Timeout {
                seconds: self.limits.timeout.as_secs(),
            })??;
        if !self.plan_metrics {
            let profiled = match df.logical_plan() {
                LogicalPlan::Analyze(_) => true,
                LogicalPlan::Explain(e) => e.verbose,
                _ => false,
            };
            if profiled {
                return Err(Error::Sql(
                    "EXPLAIN ANALYZE and EXPLAIN VERBOSE are not available in a permit \
                     workspace (their row counts would show rows the permit hides); \
                     plain EXPLAIN is"
                        .into(),
                ));
            }
        }
        Ok(Planned {
            schema: Arc::new(df.schema().as_arrow().clone()),
            df,
            limits: self.limits.clone(),
            deadline: started + self.limits.timeout,
            protection: None,
        })
    }
}

/// A planned statement: its result schema is known, nothing has run yet.
pub struct Planned {
    schema: SchemaRef,
    df: DataFrame,
    limits: QueryLimits,
    /// The time limit runs from the start of planning.
    deadline: tokio::time::Instant,
    /// Disclosure control, under a permit's `aggregates` policy.
    protection: Option<Arc<Protection>>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Planned {
    /// The schema of the result.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The tables the statement reads, `schema.table`, sorted (for the access record).
    pub fn tables(&self) -> Vec<String> {
        let default_schema = self
            .df
            .task_ctx()
            .session_config()
            .options()
            .catalog
            .default_schema
            .clone();
        let mut tables = std::collections::BTreeSet::new();
        let _ = self.df.logical_plan().apply_with_subqueries(|p| {
            if let LogicalPlan::TableScan(scan) = p {
                let r = scan.table_name.clone().resolve("agora", &default_schema);
                tables.insert(format!("{}.{}", r.schema, r.table));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        tables.into_iter().collect()
    }

    /// The optimized-to-be logical plan (what output policies inspect and rewrite).
    pub fn logical_plan(&self) -> &LogicalPlan {
        self.df.logical_plan()
    }

    /// Puts the statement under disclosure control: `cut` (run on the query runtime, as it
    /// recurses over the plan) finds its release points or refuses it. A plain `EXPLAIN`
    /// shows no data and is left as it is. Every column of the answer becomes nullable: any
    /// cell may be withheld.
    pub(crate) async fn protect<F>(self, cut: F) -> Result<Planned>
    where
        F: FnOnce(LogicalPlan) -> Result<Protection> + Send + 'static,
    {
        if matches!(self.df.logical_plan(), LogicalPlan::Explain(_)) {
            return Ok(self);
        }
        let plan = self.df.logical_plan().clone();
        let protection = crate::runtime::on_query_runtime(async move { cut(plan) }).await?;
        let fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        Ok(Planned {
            schema: Arc::new(Schema::new(fields)),
            protection: Some(Arc::new(protection)),
            ..self
        })
    }

    /// Starts execution: a stream of batches under the query's limits. Dropping the stream
    /// cancels the query.
    ///
    /// The query runs on the query runtime (optimization and physical planning included),
    /// feeding a small channel: the caller's runtime only receives batches, a slow reader
    /// pauses the query, and a deadline or a dropped stream aborts it where it is.
    ///
    /// Under disclosure control, each release point runs first and is released (withheld
    /// groups, blanked cells, rounded counts); the rest of the statement then runs over the
    /// released rows only, and the stream reports what was withheld
    /// ([`QueryStream::disclosure`]).
    pub async fn execute(mut self) -> Result<QueryStream> {
        match self.protection.take() {
            Some(protection) => self.execute_protected(&protection).await,
            None => self.execute_plain().await,
        }
    }

    async fn execute_plain(self) -> Result<QueryStream> {
        let limit_mb = self.limits.memory_bytes >> 20;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let df = self.df;
        let task = crate::runtime::spawn_on_query_runtime(async move {
            let run = std::panic::AssertUnwindSafe(pump(df, tx.clone(), started_tx, limit_mb));
            if futures::FutureExt::catch_unwind(run).await.is_err() {
                let _ = tx.send(Err(Error::Panic)).await;
            }
        });
        let timeout = || Error::Timeout {
            seconds: self.limits.timeout.as_secs(),
        };
        match tokio::time::timeout_at(self.deadline, started_rx).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Ok(Ok(()))) => {}
            // The task ended before starting: it panicked (and said so on the channel).
            Ok(Err(_)) => return Err(Error::Panic),
        }
        Ok(QueryStream {
            schema: self.schema,
            rx,
            _task: Some(task),
            sleep: Box::pin(tokio::time::sleep_until(self.deadline)),
            limits: self.limits,
            rows: 0,
            bytes: 0,
            done: false,
            disclosure: None,
        })
    }

    async fn execute_protected(self, protection: &Protection) -> Result<QueryStream> {
        let (state, _) = self.df.into_parts();
        let rules = &protection.rules;
        let mut report = Disclosure {
            profile: rules.profile.as_str(),
            ..Disclosure::default()
        };
        let mut dp_note = None;
        if let (Some(run), Some(policy)) = (&protection.dp, &rules.dp) {
            // Charged before anything runs: a refusal spends nothing and shows nothing.
            dp_note = Some(run.spend(policy).await?);
        }
        let mut released = Vec::with_capacity(protection.points.len());
        let mut check = LedgerCheck::default();
        for (index, point) in protection.points.iter().enumerate() {
            let df = DataFrame::new(state.clone(), point.plan.clone());
            let phase = Planned {
                schema: Arc::new(df.schema().as_arrow().clone()),
                df,
                limits: self.limits.clone(),
                deadline: self.deadline,
                protection: None,
            };
            let rows = phase.execute_plain().await?.collect().await?;
            let batch = one_batch(rows.schema, &rows.batches)?;
            let sketches = point.sketch.map(|c| batch.column(c).clone());
            let differencing = match (&protection.ledger, &sketches) {
                (Some(ledger), Some(column)) => check.differencing(ledger, column, rules.k).await?,
                _ => vec![false; batch.num_rows()],
            };
            let blank = match &protection.ledger {
                Some(ledger) => {
                    check
                        .cell_differencing(ledger, &batch, point, rules.k)
                        .await?
                }
                None => Vec::new(),
            };
            let dp = protection.dp.as_ref().map(|run| (run, index));
            let (released_rows, tally, kept) =
                release(point, rules, &batch, &differencing, &blank, dp)?;
            if let Some(column) = &sketches {
                check.released(column, &kept);
            }
            if !blank.is_empty() {
                check.released_cells(&batch, point, &kept, &blank);
            }
            let batch = released_rows;
            report.groups_withheld += tally.groups_withheld;
            report.cells_suppressed += tally.cells_suppressed;
            released.push(batch);
        }
        if let Some(ledger) = &protection.ledger {
            // Remembered before anything leaves.
            check.record(ledger).await?;
        }
        report.notes = crate::disclosure::notes(protection);
        report.notes.extend(dp_note);
        let plan = protection.substitute(released)?;
        let answer = Planned {
            schema: self.schema.clone(),
            df: DataFrame::new(state, plan),
            limits: self.limits.clone(),
            deadline: self.deadline,
            protection: None,
        };
        // Released answers are small (aggregates): read whole, so the access record can say
        // how many rows left before the first one does.
        let out = answer.execute_plain().await?.collect().await?;
        report.rows = out.num_rows() as u64;
        let (tx, rx) = tokio::sync::mpsc::channel(out.batches.len().max(1));
        for batch in out.batches {
            let _ = tx.try_send(conform(&self.schema, &batch));
        }
        drop(tx);
        Ok(QueryStream {
            schema: self.schema,
            rx,
            _task: None,
            sleep: Box::pin(tokio::time::sleep_until(self.deadline)),
            limits: self.limits,
            rows: 0,
            bytes: 0,
            done: false,
            disclosure: Some(report),
        })
    }
}

/// `batch` under the statement's declared `schema`: released answers declare every column
/// nullable, and a released cell substituted into an expression can widen its type (an
/// `INT` branch of a `CASE` over a released `COUNT` comes back as `BIGINT`), so columns are
/// cast back to the declared types (a value that does not fit becomes NULL).
fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                datafusion::arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Engine(format!("answer schema: {e}")))?;
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Engine(format!("answer schema: {e}")))
}

/// Runs `df` on the query runtime and sends its batches to `tx` until the result ends, an
/// error occurs or the receiver goes away.
async fn pump(
    df: DataFrame,
    tx: tokio::sync::mpsc::Sender<Result<RecordBatch>>,
    started: tokio::sync::oneshot::Sender<Result<()>>,
    limit_mb: usize,
) {
    let mut stream = match df.execute_stream().await {
        Ok(stream) => {
            let _ = started.send(Ok(()));
            stream
        }
        Err(e) => {
            let _ = started.send(Err(Error::from_datafusion(e, limit_mb)));
            return;
        }
    };
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            // The reader left while a batch was being computed: stop now.
            () = tx.closed() => return,
        };
        let Some(next) = next else { return };
        let failed = next.is_err();
        let next = next.map_err(|e| Error::from_datafusion(e, limit_mb));
        if tx.send(next).await.is_err() || failed {
            return;
        }
    }
}

/// The bytes a batch's rows occupy (of a slice: only the slice's part of its buffers).
fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| crate::guard::array_bytes(c.as_ref()))
        .fold(0usize, usize::saturating_add)
}

/// The batches of a running query. Ends with an error (and stops the query) when the time
/// limit passes or the result grows past its row or byte limit.
pub struct QueryStream {
    schema: SchemaRef,
    rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>,
    /// The query's task on the query runtime, aborted when the stream is dropped (none
    /// when the answer is already in memory).
    _task: Option<crate::runtime::AbortOnDrop>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    limits: QueryLimits,
    rows: usize,
    bytes: usize,
    done: bool,
    /// What disclosure control withheld, under a permit's `aggregates` policy.
    disclosure: Option<Disclosure>,
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl QueryStream {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// What disclosure control withheld from this answer (`None`: no output policy).
    pub fn disclosure(&self) -> Option<&Disclosure> {
        self.disclosure.as_ref()
    }

    /// Reads the whole result into memory (bounded by the row and byte limits).
    pub async fn collect(mut self) -> Result<QueryOutput> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch?);
        }
        Ok(QueryOutput {
            schema: self.schema,
            batches,
        })
    }

    /// Ends the stream with `e` and stops the query.
    fn fail(&mut self, e: Error) -> std::task::Poll<Option<Result<RecordBatch>>> {
        self.done = true;
        self.rx.close();
        std::task::Poll::Ready(Some(Err(e)))
    }
}

impl futures::Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let seconds = self.limits.timeout.as_secs();
            return self.fail(Error::Timeout { seconds });
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => self.fail(e),
            Poll::Ready(Some(Ok(mut batch))) => {
                if batch.schema() != self.schema {
                    batch = match conform(&self.schema, &batch) {
                        Ok(batch) => batch,
                        Err(e) => return self.fail(e),
                    };
                }
                self.rows += batch.num_rows();
                self.bytes = self.bytes.saturating_add(batch_bytes(&batch));
                if self.rows > self.limits.max_rows {
                    let max_rows = self.limits.max_rows;
                    return self.fail(Error::TooManyRows { max_rows });
                }
                if self.bytes > self.limits.max_bytes {
                    let max_mib = self.limits.max_bytes >> 20;
                    return self.fail(Error::TooManyBytes { max_mib });
                }
                Poll::Ready(Some(Ok(batch)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::Volatility;
    use datafusion::logical_expr::{ColumnarValue, create_udf};

    use super::*;

    fn session(limits: QueryLimits) -> (tempfile::TempDir, Session) {
        let dir = tempfile::tempdir().unwrap();
        let engine = QueryEngine::new(Lake::open_local(dir.path()).unwrap());
        let session = Session::new(&engine, "test", limits).unwrap();
        // A kernel that panics with a message quoting its "value", as Arrow's do.
        let boom = create_udf(
            "boom",
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Volatile,
            Arc::new(|_: &[ColumnarValue]| panic!("value 4242 is bad")),
        );
        session.ctx.register_udf(boom);
        (dir, session)
    }

    async fn run(session: &Session, sql: &str) -> Result<QueryOutput> {
        session.plan(sql).await?.execute().await?.collect().await
    }

    #[tokio::test]
    async fn a_panic_while_executing_is_this_querys_error_and_the_engine_goes_on() {
        let (_dir, session) = session(QueryLimits::default());
        let e = run(
            &session,
            "SELECT boom(x) FROM generate_series(1, 3) AS t(x)",
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Panic), "{e}");
        assert!(!e.to_string().contains("4242"), "{e}");
        let out = run(&session, "SELECT 1 AS one").await.unwrap();
        assert_eq!(out.num_rows(), 1);
    }

    #[tokio::test]
    async fn the_result_is_bounded_in_bytes_as_well_as_rows() {
        let limits = QueryLimits {
            max_bytes: 2 << 20,
            ..QueryLimits::default()
        };
        let (_dir, session) = session(limits);
        // 100,000 rows of 64 bytes: far under the row limit, over 2 MiB.
        let e = run(
            &session,
            "SELECT repeat('x', 64) AS s FROM generate_series(1, 100000)",
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::TooManyBytes { max_mib: 2 }), "{e}");
        let out = run(
            &session,
            "SELECT repeat('x', 64) FROM generate_series(1, 1000)",
        )
        .await
        .unwrap();
        assert_eq!(out.num_rows(), 1000);
    }

    #[tokio::test]
    async fn a_deadline_stops_the_work_not_only_the_answer() {
        let limits = QueryLimits {
            timeout: Duration::from_millis(300),
            ..QueryLimits::default()
        };
        let (_dir, session) = session(limits);
        let started = std::time::Instant::now();
        let e = run(
            &session,
            "SELECT a.value FROM generate_series(1, 100000) a, generate_series(1, 100000) b \
             ORDER BY a.value * b.value % 7, b.value DESC LIMIT 5 OFFSET 1000",
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The query's operators are dropped, so what they reserved returns to the pool.
        let pool = session.ctx.runtime_env().memory_pool.clone();
        let mut waited = Duration::ZERO;
        while pool.reserved() > 0 {
            assert!(
                waited < Duration::from_secs(10),
                "{} bytes still reserved",
                pool.reserved()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
    }
}
