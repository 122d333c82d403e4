//! The query service: the one path from a principal's SQL to data.
//!
//! ```text
//!  credential ─► authenticate ─► Authenticated
//!                                   │ open(target: release | permit)
//!                                   ▼
//!                             QuerySession ── plan(sql) ─► PlannedQuery ── execute() ─► Answer
//!                   (operator grant, or permit scope:   (read-only guard,    (output step,
//!                    policy tables, opt-outs removed)    policy rewriting,    access record,
//!                                                        schema known)        batches stream)
//! ```
//!
//! Every front (the CLI, HTTP, the quality profiler, and later Flight SQL, the PostgreSQL
//! protocol, the portal's console, federation) goes through these calls; none builds a
//! DataFusion session, and results leave only as an [`Answer`], which only this module
//! builds — after the output step and after the access event is durable. A refused
//! statement is recorded too.

use std::path::PathBuf;
use std::sync::Arc;

use agora_core::{DatasetName, ErrorKind, HasKind};
use agora_govern::{MetaStore, Principal, ReleasePolicy, Role};
use agora_lake::Lake;
use agora_query::{
    Disclosure, Grant, Parameter, PermitScope, PermitWorkspace, Planned, QueryEngine, QueryLimits,
    QueryOutput, QueryStream, Workspace,
};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};

use crate::access::{AccessEvent, AccessLog, AccessOutcome, AccessTarget};
use crate::output::OutputStep;
use crate::{Error, Result};

/// A credential as a front received it.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// An API token (`agora_...`) or a session token (`agoras_...`), from an HTTP header or
    /// cookie, or a protocol's password field.
    Token(&'a str),
    /// Whoever can read the data directory (the CLI on the hub's machine): the local
    /// operator, named after the operating-system user. Reading the directory already gives
    /// every file of the hub, so this grants nothing more.
    DataDirectory {
        /// The operating-system user, for the record.
        user: &'a str,
    },
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        match self {
            Credential::Token(_) => f.write_str("Token(<redacted>)"),
            Credential::DataDirectory { user } => {
                f.debug_struct("DataDirectory").field("user", user).finish()
            }
        }
    }
}

/// How a principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A long-lived API token.
    ApiToken,
    /// A session token from a password or OpenID Connect login.
    Session,
    /// Access to the data directory.
    DataDirectory,
    /// The hub's own background work (quality profiles).
    System,
}

impl CredentialKind {
    /// The name used in API answers (`api_token`, `session`...).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ApiToken => "api_token",
            CredentialKind::Session => "session",
            CredentialKind::DataDirectory => "data_directory",
            CredentialKind::System => "system",
        }
    }
}

/// A principal the service authenticated. Only [`QueryService::authenticate`] builds one,
/// so a front cannot open a session for a principal it made up.
#[derive(Debug, Clone)]
pub struct Authenticated {
    principal: Principal,
    kind: CredentialKind,
}

impl Authenticated {
    /// Who.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// How they authenticated.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }
}

/// What a session is opened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every table of one release (operators): the latest when `release` is `None`.
    Release {
        /// The dataset.
        dataset: DatasetName,
        /// The release number, or the latest.
        release: Option<i64>,
    },
    /// A researcher's data permit: only its tables, columns and rows.
    Permit {
        /// The permit id.
        id: String,
    },
}

/// The interface a query came through, for the access record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The `agora` command line on the hub's machine.
    Cli,
    /// The HTTP API.
    Http,
    /// The hub's quality profiler.
    Profiler,
    /// The benchmark harness.
    Bench,
    /// Arrow Flight SQL (ADBC, JDBC/ODBC Flight SQL drivers).
    FlightSql,
    /// The PostgreSQL wire protocol (psql, psycopg, JDBC, BI tools).
    Postgres,
}

impl Front {
    fn as_str(self) -> &'static str {
        match self {
            Front::Cli => "cli",
            Front::Http => "http",
            Front::Profiler => "profiler",
            Front::Bench => "bench",
            Front::FlightSql => "flight_sql",
            Front::Postgres => "postgres",
        }
    }
}

/// The query service. Cheap to clone; one per process.
#[derive(Clone)]
pub struct QueryService {
    engine: QueryEngine,
    meta: MetaStore,
    lake: Lake,
    access: Arc<dyn AccessLog>,
    spill_dir: PathBuf,
    running: Arc<Running>,
    /// Differential privacy's noise, keyed by the hub secret.
    noise: agora_privacy::NoiseSource,
    /// Per-project pseudonym keys (derived one-way from the hub secret; not the secret).
    pseudonyms: agora_privacy::PseudonymKeys,
}

/// Most statements one principal may have planning or running at once, by default.
pub const DEFAULT_MAX_RUNNING_PER_PRINCIPAL: usize = 4;

/// Statements planning or running, per principal: one user cannot take every query thread
/// and every query's memory of the hub.
#[derive(Debug)]
struct Running {
    max: std::sync::atomic::AtomicUsize,
    by_principal: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Running {
    fn acquire(self: &Arc<Self>, principal: &str) -> Result<RunningSlot> {
        let max = self.max.load(std::sync::atomic::Ordering::Relaxed);
        let mut by = self.by_principal.lock().expect("running queries poisoned");
        let count = by.entry(principal.to_owned()).or_default();
        if *count >= max {
            return Err(Error::Busy { running: max });
        }
        *count += 1;
        Ok(RunningSlot {
            running: self.clone(),
            principal: principal.to_owned(),
        })
    }
}

/// One statement's place among its principal's; given back when dropped.
#[derive(Debug)]
struct RunningSlot {
    running: Arc<Running>,
    principal: String,
}

impl Drop for RunningSlot {
    fn drop(&mut self) {
        let mut by = self
            .running
            .by_principal
            .lock()
            .expect("running queries poisoned");
        if let Some(count) = by.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                by.remove(&self.principal);
            }
        }
    }
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService")
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

const OPERATORS_ONLY: &str =
    "querying a whole release is for operators; researchers query through a data permit";

impl QueryService {
    pub(crate) fn new(
        meta: MetaStore,
        lake: Lake,
        access: Arc<dyn AccessLog>,
        spill_dir: PathBuf,
        noise: agora_privacy::NoiseSource,
        pseudonyms: agora_privacy::PseudonymKeys,
    ) -> Self {
        Self {
            engine: QueryEngine::new(lake.clone()),
            meta,
            lake,
            access,
            spill_dir,
            running: Arc::new(Running {
                max: DEFAULT_MAX_RUNNING_PER_PRINCIPAL.into(),
                by_principal: Default::default(),
            }),
            noise,
            pseudonyms,
        }
    }

    /// Sets how many statements one principal may have planning or running at once
    /// (default [`DEFAULT_MAX_RUNNING_PER_PRINCIPAL`]); past it, `plan` answers
    /// [`Error::Busy`]. Applies to every clone of this service.
    pub fn set_max_running_per_principal(&self, max: usize) {
        self.running
            .max
            .store(max.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Resolves a credential to its principal. Unknown, revoked and expired credentials and
    /// deactivated users all get [`Error::Unauthenticated`].
    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Authenticated> {
        match credential {
            Credential::Token(token) => {
                // Each lookup first checks the token's prefix, so only one reaches the store.
                if let Some(principal) = self.meta.session_principal(token).await? {
                    return Ok(Authenticated {
                        principal,
                        kind: CredentialKind::Session,
                    });
                }
                match self.meta.authenticate(token).await? {
                    Some(principal) => Ok(Authenticated {
                        principal,
                        kind: CredentialKind::ApiToken,
                    }),
                    None => Err(Error::Unauthenticated),
                }
            }
            Credential::DataDirectory { user } => Ok(Authenticated {
                principal: Principal {
                    name: format!("local:{user}"),
                    roles: vec![Role::Operator],
                },
                kind: CredentialKind::DataDirectory,
            }),
        }
    }

    /// The hub's own principal, for background work that reads data (quality profiles).
    pub(crate) fn system(&self) -> Authenticated {
        Authenticated {
            principal: Principal {
                name: "system".into(),
                roles: vec![Role::Operator],
            },
            kind: CredentialKind::System,
        }
    }

    /// Opens a session for `who` on `target`, bounded by `limits`.
    ///
    /// A release needs the operator role, checked before the release is looked up. A
    /// permit must be usable by `who` now; any failure to find one is the same
    /// `NoPermit` error, whatever the reason.
    pub async fn open(
        &self,
        who: &Authenticated,
        target: Target,
        front: Front,
        mut limits: QueryLimits,
    ) -> Result<QuerySession> {
        limits.spill_dir = Some(self.spill_dir.clone());
        let principal = &who.principal;
        let (workspace, record_target, output) = match target {
            Target::Release { dataset, release } => {
                if !principal.has(Role::Operator) {
                    return Err(Error::PermissionDenied(OPERATORS_ONLY.into()));
                }
                let info = self.meta.release(&dataset, release).await?.ok_or_else(|| {
                    Error::NotFound(match release {
                        Some(n) => format!("dataset {dataset} has no release {n}"),
                        None => format!("dataset {dataset} has no release; ingest one first"),
                    })
                })?;
                let manifest = self.lake.read_manifest(&info.manifest_path).await?;
                let record_target = AccessTarget::Release {
                    dataset: dataset.to_string(),
                    release: info.number,
                };
                let grant = Grant::new(principal.name.clone(), dataset, info.number, manifest);
                let ws = self.engine.workspace(grant, limits).await?;
                (
                    SessionKind::Release(ws),
                    record_target,
                    OutputStep::Operator,
                )
            }
            Target::Permit { id } => {
                let scope = PermitScope::resolve(
                    &self.meta,
                    &self.lake,
                    &principal.name,
                    &id,
                    &self.pseudonyms,
                )
                .await?;
                let record_target = AccessTarget::Permit {
                    permit_id: scope.permit_id().to_owned(),
                    version: scope.permit_version(),
                };
                let policy = scope.output_policy();
                let output = match policy.policy {
                    ReleasePolicy::Aggregates => OutputStep::Aggregates(policy.rules()),
                    ReleasePolicy::PseudonymizedRows => OutputStep::Rows,
                };
                let ws = self
                    .engine
                    .permit_workspace(scope, limits)
                    .await?
                    .with_noise(self.noise.clone());
                (SessionKind::Permit(Box::new(ws)), record_target, output)
            }
        };
        Ok(QuerySession {
            workspace,
            output,
            running: self.running.clone(),
            record: Record {
                access: self.access.clone(),
                actor: principal.name.clone(),
                front,
                target: record_target,
            },
        })
    }
}

enum SessionKind {
    Release(Workspace),
    Permit(Box<PermitWorkspace>),
}

/// What every access event of a session shares.
#[derive(Clone)]
struct Record {
    access: Arc<dyn AccessLog>,
    actor: String,
    front: Front,
    target: AccessTarget,
}

impl Record {
    async fn write(
        &self,
        statement: &str,
        outcome: AccessOutcome,
        error: Option<ErrorKind>,
        detail: Detail,
    ) -> Result<()> {
        let event = AccessEvent {
            at: chrono::Utc::now(),
            actor: self.actor.clone(),
            front: self.front.as_str().into(),
            target: self.target.clone(),
            statement: statement.to_owned(),
            outcome,
            error_kind: error.map(|kind| crate::kind_name(kind).to_owned()),
            tables: detail.tables,
            rows: detail.rows,
            cells_suppressed: detail.cells_suppressed,
        };
        self.access.record(&event).await
    }
}

/// What an access event says beyond its outcome, when known.
#[derive(Debug, Clone, Default)]
struct Detail {
    tables: Vec<String>,
    rows: Option<i64>,
    cells_suppressed: Option<i64>,
}

impl Detail {
    fn tables(tables: Vec<String>) -> Self {
        Self {
            tables,
            ..Self::default()
        }
    }
}

/// A principal's session on one target. Built only by [`QueryService::open`].
pub struct QuerySession {
    workspace: SessionKind,
    output: OutputStep,
    running: Arc<Running>,
    record: Record,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("actor", &self.record.actor)
            .field("target", &self.record.target)
            .finish_non_exhaustive()
    }
}

impl QuerySession {
    /// The tables the session can see, sorted (`table`, or `dataset.table` under a permit).
    pub fn tables(&self) -> Vec<String> {
        match &self.workspace {
            SessionKind::Release(ws) => ws.tables(),
            SessionKind::Permit(ws) => ws.tables().to_vec(),
        }
    }

    /// Every table the session can see with its schema, sorted by name: under a permit,
    /// exactly the permitted tables (`dataset.table`) and columns; on a release, its tables.
    pub fn table_schemas(&self) -> Vec<(String, SchemaRef)> {
        match &self.workspace {
            SessionKind::Release(ws) => {
                let mut tables: Vec<(String, SchemaRef)> = ws
                    .grant()
                    .manifest()
                    .tables
                    .iter()
                    .map(|t| (t.name.clone(), t.schema.arrow_schema()))
                    .collect();
                tables.sort_by(|a, b| a.0.cmp(&b.0));
                tables
            }
            SessionKind::Permit(ws) => ws.table_schemas().to_vec(),
        }
    }

    /// The release a release session reads (`None` under a permit).
    pub fn release(&self) -> Option<(&DatasetName, i64)> {
        match &self.workspace {
            SessionKind::Release(ws) => Some((ws.grant().dataset(), ws.grant().release())),
            SessionKind::Permit(_) => None,
        }
    }

    /// Plans one statement: read-only guard, policy rewriting, then the output step's check
    /// of the plan. The result's schema is known before anything runs. A refusal is
    /// recorded before it is returned.
    pub async fn plan(&self, sql: &str) -> Result<PlannedQuery> {
        let planned = match self.running.acquire(&self.record.actor) {
            Ok(slot) => match &self.workspace {
                SessionKind::Release(ws) => self.output.plan_release(ws, sql).await,
                SessionKind::Permit(ws) => self.output.plan_permit(ws, sql).await,
            }
            .map(|p| (p, slot)),
            Err(busy) => Err(busy),
        };
        match planned {
            Ok((planned, slot)) => Ok(PlannedQuery {
                planned,
                statement: sql.to_owned(),
                record: self.record.clone(),
                slot,
            }),
            Err(e) => {
                self.record
                    .write(
                        sql,
                        AccessOutcome::Refused,
                        Some(e.kind()),
                        Detail::default(),
                    )
                    .await?;
                Err(e)
            }
        }
    }

    /// Plans one statement with its parameters (`$1`… or `?`) bound as literals of its
    /// syntax tree, then as [`QuerySession::plan`]: protocol fronts' prepared statements.
    /// The access record holds the bound statement. A binding error is recorded as a
    /// refusal of the statement as sent.
    pub async fn plan_bound(&self, sql: &str, params: &[Parameter]) -> Result<PlannedQuery> {
        match agora_query::bind_parameters(sql, params) {
            Ok(bound) => self.plan(&bound).await,
            Err(e) => {
                let e = Error::from(e);
                self.record
                    .write(
                        sql,
                        AccessOutcome::Refused,
                        Some(e.kind()),
                        Detail::default(),
                    )
                    .await?;
                Err(e)
            }
        }
    }

    /// Plans, executes and collects one statement (small results: the profiler, tests).
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput> {
        self.plan(sql).await?.execute().await?.collect().await
    }
}

/// A statement the session accepted; nothing has run yet.
pub struct PlannedQuery {
    planned: Planned,
    statement: String,
    record: Record,
    /// Held until the answer is dropped.
    slot: RunningSlot,
}

impl std::fmt::Debug for PlannedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedQuery")
            .field("schema", self.planned.schema())
            .finish_non_exhaustive()
    }
}

impl PlannedQuery {
    /// The schema of the answer.
    pub fn schema(&self) -> &SchemaRef {
        self.planned.schema()
    }

    /// Starts execution under the session's limits and records the access; the answer is
    /// returned only once the record is durable. An error starting execution is recorded
    /// as a failure.
    pub async fn execute(self) -> Result<Answer> {
        let tables = self.planned.tables();
        let stream = match self.planned.execute().await {
            Ok(stream) => stream,
            Err(e) => {
                let e = Error::from(e);
                self.record
                    .write(
                        &self.statement,
                        AccessOutcome::Failed,
                        Some(e.kind()),
                        Detail::tables(tables),
                    )
                    .await?;
                return Err(e);
            }
        };
        let disclosure = stream.disclosure().cloned();
        let detail = Detail {
            tables,
            rows: disclosure.as_ref().map(|d| d.rows as i64),
            cells_suppressed: disclosure.as_ref().map(|d| d.cells_suppressed as i64),
        };
        self.record
            .write(&self.statement, AccessOutcome::Answered, None, detail)
            .await?;
        Ok(Answer {
            stream,
            disclosure,
            failure: Some((self.record, self.statement)),
            _slot: self.slot,
        })
    }
}

/// The answer to a query: a stream of Arrow batches, released after the output step and
/// the access record. Only the service builds one. An error mid-stream (a limit reached)
/// ends the stream and is recorded as a failure; dropping the answer cancels the query.
pub struct Answer {
    stream: QueryStream,
    /// What the output policy withheld (permit answers).
    disclosure: Option<Disclosure>,
    /// Taken when a failure has been recorded.
    failure: Option<(Record, String)>,
    /// The statement counts against its principal's running queries until dropped.
    _slot: RunningSlot,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("schema", self.stream.schema())
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// The schema of every batch.
    pub fn schema(&self) -> &SchemaRef {
        self.stream.schema()
    }

    /// What the permit's output policy did to this answer: the rules that applied and how
    /// to get more out of the data (`None` for operators' answers). It never says whether
    /// a group was withheld.
    pub fn disclosure(&self) -> Option<&Disclosure> {
        self.disclosure.as_ref()
    }

    /// Reads the whole answer (bounded by the session's row limit).
    pub async fn collect(mut self) -> Result<QueryOutput> {
        let schema = self.schema().clone();
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await {
            batches.push(batch?);
        }
        Ok(QueryOutput { schema, batches })
    }
}

impl Stream for Answer {
    type Item = Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.stream.poll_next_unpin(cx);
        match polled {
            std::task::Poll::Ready(Some(Err(e))) => {
                let e = Error::from(e);
                if let Some((record, statement)) = self.failure.take() {
                    // The answer has started: the failure is recorded beside its
                    // `answered` event, without holding the caller up.
                    let kind = e.kind();
                    tokio::spawn(async move {
                        if let Err(err) = record
                            .write(
                                &statement,
                                AccessOutcome::Failed,
                                Some(kind),
                                Detail::default(),
                            )
                            .await
                        {
                            tracing::error!(error = %err, "access event of a failed query not recorded");
                        }
                    });
                }
                std::task::Poll::Ready(Some(Err(e)))
            }
            other => other.map(|o| o.map(|r| r.map_err(Error::from))),
        }
    }
}
