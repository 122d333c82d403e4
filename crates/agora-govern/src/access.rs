//! Access events: one durable audit log entry per query a session answered, refused or
//! failed.
//!
//! The query service writes an event before an answer leaves (and when a query is refused
//! or fails), so the store knows who read what, through which front, under which permit
//! version. An event holds the SQL text (researchers' queries are part of the record) and
//! never a result or a data value. Events are entries of the tamper-evident audit log
//! ([`crate::audit`]), category `access`, event `query.<outcome>`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use agora_audit::{AuditEntry, Category};

use crate::audit::{AuditFilter, NewAuditEntry};
use crate::clock::format_ts;
use crate::{MetaStore, Result, random_id};

/// What a query was run on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessTarget {
    /// One release of one dataset, every table (operators, the quality profiler).
    Release {
        /// Dataset name.
        dataset: String,
        /// Release number.
        release: i64,
    },
    /// A researcher's data permit, at the version the session was built from.
    Permit {
        /// Permit id.
        permit_id: String,
        /// Permit version.
        version: i64,
    },
}

/// How a query ended, as far as the record is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessOutcome {
    /// The answer was released to the caller (recorded before its first row left).
    Answered,
    /// The statement was refused before execution (invalid, not read-only, not permitted).
    Refused,
    /// Execution failed after the answer had started (limit reached, engine error).
    Failed,
}

impl AccessOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccessOutcome::Answered => "answered",
            AccessOutcome::Refused => "refused",
            AccessOutcome::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "answered" => AccessOutcome::Answered,
            "refused" => AccessOutcome::Refused,
            _ => AccessOutcome::Failed,
        }
    }
}

/// One access event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEvent {
    /// When the event was recorded (store clock).
    pub at: DateTime<Utc>,
    /// The principal's name (user, token owner, `system` for the hub's own work).
    pub actor: String,
    /// The front the query came through (`cli`, `http`, `profiler`...).
    pub front: String,
    /// What the session was opened on.
    pub target: AccessTarget,
    /// The SQL text as sent.
    pub statement: String,
    /// How it ended.
    pub outcome: AccessOutcome,
    /// The error kind of a refusal or failure (`invalid_input`, `resource_exhausted`...).
    pub error_kind: Option<String>,
    /// The tables the statement read (`dataset.table` under a permit), when it was planned.
    pub tables: Vec<String>,
    /// Rows returned, when known before the answer left (released aggregates).
    pub rows: Option<i64>,
    /// Cells disclosure control suppressed (withheld groups' cells and blanked cells).
    pub cells_suppressed: Option<i64>,
}

impl AccessEvent {
    /// This event as an audit log entry about `project` (the permit's application).
    pub(crate) fn to_audit(&self, project: Option<String>) -> NewAuditEntry {
        let mut detail = serde_json::Map::new();
        detail.insert("front".into(), self.front.clone().into());
        let (permit, version) = match &self.target {
            AccessTarget::Release { dataset, release } => {
                detail.insert("dataset".into(), dataset.clone().into());
                detail.insert("release".into(), (*release).into());
                (None, None)
            }
            AccessTarget::Permit { permit_id, version } => {
                (Some(permit_id.clone()), Some(*version))
            }
        };
        detail.insert("statement".into(), self.statement.clone().into());
        detail.insert("tables".into(), self.tables.clone().into());
        if let Some(kind) = &self.error_kind {
            detail.insert("error_kind".into(), kind.clone().into());
        }
        if let Some(rows) = self.rows {
            detail.insert("rows".into(), rows.into());
        }
        if let Some(cells) = self.cells_suppressed {
            detail.insert("cells_suppressed".into(), cells.into());
        }
        NewAuditEntry {
            category: Category::Access,
            event: format!("query.{}", self.outcome.as_str()),
            actor: self.actor.clone(),
            project,
            permit,
            permit_version: version,
            outcome: self.outcome.as_str().to_owned(),
            detail,
        }
    }

    /// The access event an audit entry records, if it is one.
    pub fn from_audit(entry: &AuditEntry) -> Option<Self> {
        if entry.category != Category::Access {
            return None;
        }
        let d = &entry.detail;
        let text = |k: &str| d.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let int = |k: &str| d.get(k).and_then(|v| v.as_i64());
        let target = match &entry.permit {
            Some(permit_id) => AccessTarget::Permit {
                permit_id: permit_id.clone(),
                version: entry.permit_version.unwrap_or_default(),
            },
            None => AccessTarget::Release {
                dataset: text("dataset").unwrap_or_default(),
                release: int("release").unwrap_or_default(),
            },
        };
        Some(AccessEvent {
            at: entry.at,
            actor: entry.actor.clone(),
            front: text("front").unwrap_or_default(),
            target,
            statement: text("statement").unwrap_or_default(),
            outcome: AccessOutcome::parse(&entry.outcome),
            error_kind: text("error_kind"),
            tables: d
                .get("tables")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            rows: int("rows"),
            cells_suppressed: int("cells_suppressed"),
        })
    }
}

/// The access events kept before the audit log (`access_events`, migrations 4 and 5), oldest
/// first, each with its time and as the entry it becomes, read in the migration's transaction.
pub(crate) async fn legacy_access_events(
    conn: &mut sqlx::AnyConnection,
) -> Result<Vec<(DateTime<Utc>, NewAuditEntry)>> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT e.at, e.actor, e.front, e.target_kind, e.dataset, e.release_number, e.permit_id, \
         e.permit_version, e.statement, e.outcome, e.error_kind, e.tables_read, \
         e.rows_returned, e.cells_suppressed \
         FROM access_events e ORDER BY e.at, e.id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (at, actor, front, kind, dataset, release, permit_id, version, statement) = (
            row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
        );
        let (outcome, error_kind, tables, rows_returned, cells) =
            (row.9, row.10, row.11, row.12, row.13);
        let target = match (kind.as_str(), permit_id) {
            ("permit", Some(permit_id)) => AccessTarget::Permit {
                permit_id,
                version: version.unwrap_or_default(),
            },
            _ => AccessTarget::Release {
                dataset: dataset.unwrap_or_default(),
                release: release.unwrap_or_default(),
            },
        };
        let project = match &target {
            AccessTarget::Permit { permit_id, .. } => {
                sqlx::query_scalar::<_, String>("SELECT application_id FROM permits WHERE id = $1")
                    .bind(permit_id)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            AccessTarget::Release { .. } => None,
        };
        let at = crate::clock::parse_ts(&at)?;
        let event = AccessEvent {
            at,
            actor,
            front,
            target,
            statement,
            outcome: AccessOutcome::parse(&outcome),
            error_kind,
            tables: tables
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default(),
            rows: rows_returned,
            cells_suppressed: cells,
        };
        out.push((at, event.to_audit(project)));
    }
    Ok(out)
}

impl MetaStore {
    /// Records `events` in the audit log, in one transaction (group commit: durable when
    /// this returns). Each event's `at` is replaced by the store's clock; returns the first
    /// one's position in the log.
    pub async fn record_access_batch(&self, events: &[AccessEvent]) -> Result<u64> {
        // The project a permit belongs to (it never changes), so citizens' per-project
        // counts need no join. Read before the transaction: a SQLite transaction that reads
        // before it writes cannot wait for a concurrent writer, it fails.
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let project = match &event.target {
                AccessTarget::Permit { permit_id, .. } => {
                    sqlx::query_scalar::<_, String>(
                        "SELECT application_id FROM permits WHERE id = $1",
                    )
                    .bind(permit_id)
                    .fetch_optional(self.pool())
                    .await?
                }
                AccessTarget::Release { .. } => None,
            };
            entries.push(event.to_audit(project));
        }
        let mut tx = self.pool().begin().await?;
        let first = self.append_audit_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(first)
    }

    /// Records `event` durably in the audit log (committed when this returns; SQLite runs
    /// with `synchronous = FULL`).
    pub async fn record_access(&self, event: &AccessEvent) -> Result<()> {
        self.record_access_batch(std::slice::from_ref(event))
            .await?;
        Ok(())
    }

    /// The most recent `limit` access events, newest first.
    pub async fn recent_access_events(&self, limit: i64) -> Result<Vec<AccessEvent>> {
        let filter = AuditFilter {
            category: Some(Category::Access),
            ..AuditFilter::default()
        };
        let limit = u32::try_from(limit.max(0)).unwrap_or(u32::MAX);
        Ok(self
            .audit_entries(&filter, limit)
            .await?
            .iter()
            .filter_map(AccessEvent::from_audit)
            .collect())
    }
}

impl MetaStore {
    /// The sketches of groups released under `permit_id` resting on `lo..=hi` persons
    /// (the disclosure ledger; see `agora-query`'s disclosure control).
    pub async fn ledger_sketches(&self, permit_id: &str, lo: i64, hi: i64) -> Result<Vec<Vec<u8>>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT sketch FROM disclosure_ledger WHERE permit_id = $1 AND persons >= $2 \
             AND persons <= $3",
        )
        .bind(permit_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().filter_map(|(s,)| from_hex(&s)).collect())
    }

    /// Adds released groups (`(persons, sketch)`) to `permit_id`'s ledger, in one
    /// transaction, durable when this returns.
    pub async fn record_ledger(&self, permit_id: &str, entries: &[(i64, Vec<u8>)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let at = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        for (persons, sketch) in entries {
            sqlx::query(
                "INSERT INTO disclosure_ledger (id, permit_id, at, persons, sketch) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(random_id("led_"))
            .bind(permit_id)
            .bind(&at)
            .bind(*persons)
            .bind(to_hex(sketch))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
