//! Access events: one durable row per query a session answered, refused or failed.
//!
//! The query service writes an event before an answer leaves (and when a query is refused
//! or fails), so the store knows who read what, through which front, under which permit
//! version. An event holds the SQL text (researchers' queries are part of the record) and
//! never a result or a data value. Rows are only inserted; the tamper-evident audit log
//! will take this role over.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::{format_ts, parse_ts};
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
    fn as_str(self) -> &'static str {
        match self {
            AccessOutcome::Answered => "answered",
            AccessOutcome::Refused => "refused",
            AccessOutcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
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

impl MetaStore {
    /// Records `event` durably (the insert is committed when this returns; SQLite runs with
    /// `synchronous = FULL`). `event.at` is replaced by the store's clock.
    pub async fn record_access(&self, event: &AccessEvent) -> Result<DateTime<Utc>> {
        let at = self.now();
        let (kind, dataset, release, permit_id, version) = match &event.target {
            AccessTarget::Release { dataset, release } => (
                "release",
                Some(dataset.as_str()),
                Some(*release),
                None,
                None,
            ),
            AccessTarget::Permit { permit_id, version } => (
                "permit",
                None,
                None,
                Some(permit_id.as_str()),
                Some(*version),
            ),
        };
        sqlx::query(
            "INSERT INTO access_events (id, at, actor, front, target_kind, dataset, \
             release_number, permit_id, permit_version, statement, outcome, error_kind, \
             tables_read, rows_returned, cells_suppressed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(random_id("acc_"))
        .bind(format_ts(at))
        .bind(&event.actor)
        .bind(&event.front)
        .bind(kind)
        .bind(dataset)
        .bind(release)
        .bind(permit_id)
        .bind(version)
        .bind(&event.statement)
        .bind(event.outcome.as_str())
        .bind(event.error_kind.as_deref())
        .bind(serde_json::to_string(&event.tables).unwrap_or_else(|_| "[]".into()))
        .bind(event.rows)
        .bind(event.cells_suppressed)
        .execute(self.pool())
        .await?;
        Ok(at)
    }

    /// The most recent `limit` access events, newest first (operators and tests; the audit
    /// issue brings filtered, paged views).
    pub async fn recent_access_events(&self, limit: i64) -> Result<Vec<AccessEvent>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT at, actor, front, target_kind, dataset, release_number, permit_id, \
             permit_version, statement, outcome, error_kind, tables_read, rows_returned, \
             cells_suppressed FROM access_events \
             ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(
                    at,
                    actor,
                    front,
                    kind,
                    dataset,
                    release,
                    permit_id,
                    version,
                    statement,
                    outcome,
                    error_kind,
                    tables,
                    rows,
                    cells_suppressed,
                )| {
                    let target = if kind == "permit" {
                        AccessTarget::Permit {
                            permit_id: permit_id.unwrap_or_default(),
                            version: version.unwrap_or_default(),
                        }
                    } else {
                        AccessTarget::Release {
                            dataset: dataset.unwrap_or_default(),
                            release: release.unwrap_or_default(),
                        }
                    };
                    Ok(AccessEvent {
                        at: parse_ts(&at)?,
                        actor,
                        front,
                        target,
                        statement,
                        outcome: AccessOutcome::parse(&outcome),
                        error_kind,
                        tables: tables
                            .and_then(|t| serde_json::from_str(&t).ok())
                            .unwrap_or_default(),
                        rows,
                        cells_suppressed,
                    })
                },
            )
            .collect()
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
