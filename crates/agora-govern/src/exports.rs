//! Export requests: a researcher asks to take a result file out of the hub.
//!
//! The file is produced through the query service (so it passed the permit's output
//! policy) and kept in the data directory by `agora-service`; this module records the
//! request — permit and version, project, who, when, the statement, the file's format, size
//! and SHA-256 — and every decision on it, in order ([`ExportRequest::history`]).
//!
//! * **Request** ([`MetaStore::create_export`]): only under a permit the requester may use
//!   now ([`MetaStore::permit_for_query`]). When the permit's output policy asks for export
//!   review ([`crate::DisclosureRules::export_review`]) the request waits
//!   (`pending_review`); otherwise it is approved at once, `decided_by` = `policy`.
//! * **Decision** ([`MetaStore::decide_export`]): a reviewer who is not an applicant or a
//!   member of the project (nor the requester), once, on a pending request: a conditional
//!   `UPDATE ... WHERE status = 'pending_review'`, so of two concurrent decisions exactly one
//!   wins.
//! * **Who sees an export**: the project's applicants and the permit's members, reviewers
//!   and operators. Anyone else gets [`Error::NotFound`], exactly as for a missing id.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::NewAuditEntry;
use crate::clock::{format_ts, parse_ts, parse_ts_opt};
use crate::error::{denied, invalid};
use crate::{Error, MetaStore, Principal, Result, Role, random_id};

/// The prefix of export request ids.
const ID_PREFIX: &str = "exp_";

/// Who decides an export the permit's policy does not send to review.
pub const POLICY_ACTOR: &str = "policy";

/// A fresh export request id (`exp_` and 128 random bits in hex). The file is written under
/// this id before the request is recorded with it.
pub fn new_export_id() -> String {
    random_id(ID_PREFIX)
}

/// Whether `id` has the form of an export id ([`new_export_id`]): safe as a file name.
pub fn is_export_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The format of an exported file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// Comma-separated values, UTF-8, with a header row.
    Csv,
}

impl ExportFormat {
    /// The stored and serialized form (`csv`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            _ => Err(Error::Corrupt("unknown export format".into())),
        }
    }
}

/// Where an export request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Waiting for a reviewer.
    PendingReview,
    /// May be downloaded.
    Approved,
    /// Refused by a reviewer; never downloadable.
    Rejected,
}

impl ExportStatus {
    /// The stored and serialized form (`pending_review`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::PendingReview => "pending_review",
            ExportStatus::Approved => "approved",
            ExportStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pending_review" => Ok(ExportStatus::PendingReview),
            "approved" => Ok(ExportStatus::Approved),
            "rejected" => Ok(ExportStatus::Rejected),
            _ => Err(invalid(
                "unknown export status: use pending_review, approved or rejected",
            )),
        }
    }
}

/// A reviewer's decision on a pending export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportDecision {
    /// The file may leave.
    Approve,
    /// The file may not leave.
    Reject,
}

impl FromStr for ExportDecision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "approve" => Ok(ExportDecision::Approve),
            "reject" => Ok(ExportDecision::Reject),
            _ => Err(invalid("unknown decision: use approve or reject")),
        }
    }
}

/// What happened to an export request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportEventKind {
    /// The researcher asked for it (the file was written).
    Requested,
    /// A reviewer, or the permit's policy, approved it.
    Approved,
    /// A reviewer rejected it.
    Rejected,
    /// Someone who may see it downloaded the approved file.
    Downloaded,
}

impl ExportEventKind {
    fn as_str(self) -> &'static str {
        match self {
            ExportEventKind::Requested => "requested",
            ExportEventKind::Approved => "approved",
            ExportEventKind::Rejected => "rejected",
            ExportEventKind::Downloaded => "downloaded",
        }
    }
}

impl FromStr for ExportEventKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "requested" => Ok(ExportEventKind::Requested),
            "approved" => Ok(ExportEventKind::Approved),
            "rejected" => Ok(ExportEventKind::Rejected),
            "downloaded" => Ok(ExportEventKind::Downloaded),
            _ => Err(Error::Corrupt("unknown export event".into())),
        }
    }
}

/// One step in an export request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportEvent {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (a user id, or [`POLICY_ACTOR`]).
    pub actor: String,
    /// What.
    pub kind: ExportEventKind,
    /// The request's status after it.
    pub status: ExportStatus,
    /// Why, as written by the decider.
    pub reason: Option<String>,
}

/// A file to record as an export request (written already, under `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExport {
    /// From [`new_export_id`].
    pub id: String,
    /// The permit the statement ran under.
    pub permit_id: String,
    /// The SQL statement that produced the file.
    pub statement: String,
    /// The file's format.
    pub format: ExportFormat,
    /// Data rows in the file (the header not counted).
    pub rows: i64,
    /// The file's size.
    pub bytes: i64,
    /// The file's SHA-256, lower-case hex.
    pub sha256: String,
}

/// An export request as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// Its id (`exp_...`).
    pub id: String,
    /// The permit the statement ran under.
    pub permit_id: String,
    /// The permit's version when the request was recorded.
    pub permit_version: i64,
    /// The project (application id) of the permit.
    pub project_id: String,
    /// The researcher who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// The SQL statement that produced the file.
    pub statement: String,
    /// The file's format.
    pub format: ExportFormat,
    /// Data rows in the file.
    pub rows: i64,
    /// The file's size in bytes.
    pub bytes: i64,
    /// The file's SHA-256 (hex), checked again at each download.
    pub sha256: String,
    /// Where it stands.
    pub status: ExportStatus,
    /// Who decided (a reviewer's user id, or [`POLICY_ACTOR`]); `None` while pending.
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// The decision's reason.
    pub reason: Option<String>,
    /// Every step, oldest first.
    pub history: Vec<ExportEvent>,
}

type ExportTuple = (
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

const EXPORT_COLUMNS: &str = "SELECT id, permit_id, permit_version, project_id, requested_by, \
     requested_at, statement, format, row_count, byte_count, sha256, status, decided_by, \
     decided_at, reason FROM export_requests";

/// The visibility rule, on `export_requests e` joined to `applications a`: staff (`$2`) or
/// the caller (`$3`, `$4`, `$5`) an applicant of the project or a member of the permit.
const VISIBLE: &str = "($2 = 1 OR a.owner_id = $3 \
     OR EXISTS (SELECT 1 FROM application_members m \
                WHERE m.application_id = a.id AND m.user_id = $4) \
     OR EXISTS (SELECT 1 FROM permit_members pm \
                WHERE pm.permit_id = e.permit_id AND pm.user_id = $5))";

fn check_new(new: &NewExport) -> Result<()> {
    if !is_export_id(&new.id) {
        return Err(invalid("an export id is exp_ and 32 lower-case hex digits"));
    }
    if new.statement.trim().is_empty() {
        return Err(invalid("the export's statement is empty"));
    }
    if new.rows < 0 || new.bytes < 0 {
        return Err(invalid("an export's rows and bytes cannot be negative"));
    }
    if new.sha256.len() != 64
        || !new
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid("sha256 is 64 lower-case hex digits"));
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(invalid("a reason is required"));
    }
    crate::accounts::check_text("reason", reason, 5000)
}

impl MetaStore {
    /// Records an export request by `actor` for a file already written under `new.id`.
    /// Only under a permit `actor` may use now (else `NotFound`, whatever the reason, as for
    /// a query). Pending review when the permit's output policy asks for it, else approved
    /// at once by [`POLICY_ACTOR`].
    pub async fn create_export(&self, actor: &Principal, new: NewExport) -> Result<ExportRequest> {
        check_new(&new)?;
        let now = self.now();
        let permit = self
            .permit_for_query(&actor.name, &new.permit_id, now)
            .await?
            .ok_or(Error::NotFound("permit"))?;
        let rules = permit.terms.output.rules();
        let now_s = format_ts(now);
        let mut tx = self.pool().begin().await?;
        let (status, decided_by, decided_at, reason) = if rules.export_review {
            (ExportStatus::PendingReview, None, None, None)
        } else {
            (
                ExportStatus::Approved,
                Some(POLICY_ACTOR),
                Some(now_s.clone()),
                Some(format!(
                    "the permit's output policy ({}) does not send exports to review",
                    rules.profile.as_str()
                )),
            )
        };
        sqlx::query(
            "INSERT INTO export_requests (id, permit_id, permit_version, project_id, \
             requested_by, requested_at, statement, format, row_count, byte_count, sha256, \
             status, decided_by, decided_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&new.id)
        .bind(&permit.id)
        .bind(permit.version)
        .bind(&permit.application_id)
        .bind(&actor.name)
        .bind(&now_s)
        .bind(&new.statement)
        .bind(new.format.as_str())
        .bind(new.rows)
        .bind(new.bytes)
        .bind(&new.sha256)
        .bind(status.as_str())
        .bind(decided_by)
        .bind(decided_at.clone())
        .bind(reason.clone())
        .execute(&mut *tx)
        .await?;
        insert_event(
            &mut tx,
            &new.id,
            1,
            &now_s,
            &actor.name,
            ExportEventKind::Requested,
            ExportStatus::PendingReview,
            None,
        )
        .await?;
        if status == ExportStatus::Approved {
            insert_event(
                &mut tx,
                &new.id,
                2,
                &now_s,
                POLICY_ACTOR,
                ExportEventKind::Approved,
                status,
                reason.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(export = %new.id, permit = %permit.id, by = %actor.name, status = %status, "export requested");
        self.export(actor, &new.id).await
    }

    /// One export request, if `actor` may see it (else `NotFound`, as for a missing id).
    pub async fn export(&self, actor: &Principal, id: &str) -> Result<ExportRequest> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let visible: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT e.id FROM export_requests e JOIN applications a ON a.id = e.project_id \
             WHERE e.id = $1 AND {VISIBLE}"
        )))
        .bind(id)
        .bind(staff)
        .bind(&actor.name)
        .bind(&actor.name)
        .bind(&actor.name)
        .fetch_optional(self.pool())
        .await?;
        let Some(id) = visible else {
            return Err(Error::NotFound("export"));
        };
        self.load_export(&id)
            .await?
            .ok_or(Error::NotFound("export"))
    }

    /// The export requests `actor` may see, oldest first, those in `status` only if given:
    /// all of them for reviewers and operators, else those of the projects `actor` applies
    /// for or is a permit member of.
    pub async fn list_exports(
        &self,
        actor: &Principal,
        status: Option<ExportStatus>,
    ) -> Result<Vec<ExportRequest>> {
        let staff = i64::from(actor.has(Role::Reviewer) || actor.has(Role::Operator));
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT e.id FROM export_requests e JOIN applications a ON a.id = e.project_id \
             WHERE ($1 = '' OR e.status = $1) AND {VISIBLE} \
             ORDER BY e.requested_at, e.id"
        )))
        .bind(status.map_or("", ExportStatus::as_str))
        .bind(staff)
        .bind(&actor.name)
        .bind(&actor.name)
        .bind(&actor.name)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(export) = self.load_export(&id).await? {
                out.push(export);
            }
        }
        Ok(out)
    }

    /// Decides a pending export (a reviewer who is not an applicant or member of the
    /// project, nor the requester), with a reason. Of concurrent decisions exactly one
    /// wins; the others, and any decision on a decided export, get `Conflict`.
    pub async fn decide_export(
        &self,
        actor: &Principal,
        id: &str,
        decision: ExportDecision,
        reason: &str,
    ) -> Result<ExportRequest> {
        let export = self.export(actor, id).await?;
        let app = self
            .load_app(&export.project_id)
            .await?
            .ok_or_else(|| Error::Corrupt("export without application".into()))?;
        let member: Option<String> = sqlx::query_scalar(
            "SELECT user_id FROM permit_members WHERE permit_id = $1 AND user_id = $2",
        )
        .bind(&export.permit_id)
        .bind(&actor.name)
        .fetch_optional(self.pool())
        .await?;
        if !actor.has(Role::Reviewer)
            || app.is_applicant(&actor.name)
            || member.is_some()
            || export.requested_by == actor.name
        {
            return Err(denied(
                "deciding on an export needs a reviewer who is not an applicant or member \
                 of the project",
            ));
        }
        check_reason(reason)?;
        if export.status != ExportStatus::PendingReview {
            return Err(Error::Conflict(format!(
                "this export was already decided ({})",
                export.status
            )));
        }
        let (status, kind) = match decision {
            ExportDecision::Approve => (ExportStatus::Approved, ExportEventKind::Approved),
            ExportDecision::Reject => (ExportStatus::Rejected, ExportEventKind::Rejected),
        };
        let now_s = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE export_requests SET status = $1, decided_by = $2, decided_at = $3, \
             reason = $4 WHERE id = $5 AND status = 'pending_review'",
        )
        .bind(status.as_str())
        .bind(&actor.name)
        .bind(&now_s)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict(
                "this export was decided meanwhile: reload it".into(),
            ));
        }
        let seq = next_seq(&mut tx, id).await?;
        insert_event(
            &mut tx,
            id,
            seq,
            &now_s,
            &actor.name,
            kind,
            status,
            Some(reason),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(export = %id, by = %actor.name, status = %status, "export decided");
        self.export(actor, id).await
    }

    /// Records that `actor` downloaded an approved export (the file's bytes matched its
    /// hash). `NotFound` if `actor` may not see it; `PermissionDenied` unless approved.
    pub async fn record_export_download(
        &self,
        actor: &Principal,
        id: &str,
    ) -> Result<ExportRequest> {
        let export = self.export(actor, id).await?;
        check_downloadable(&export)?;
        let now_s = format_ts(self.now());
        let mut tx = self.pool().begin().await?;
        let seq = next_seq(&mut tx, id).await?;
        insert_event(
            &mut tx,
            id,
            seq,
            &now_s,
            &actor.name,
            ExportEventKind::Downloaded,
            export.status,
            None,
        )
        .await?;
        tx.commit().await?;
        self.export(actor, id).await
    }

    async fn load_export(&self, id: &str) -> Result<Option<ExportRequest>> {
        let row: Option<ExportTuple> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{EXPORT_COLUMNS} WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let events: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT at, actor, kind, status, reason FROM export_events \
             WHERE export_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let history = events
            .into_iter()
            .map(|(at, actor, kind, status, reason)| {
                Ok(ExportEvent {
                    at: parse_ts(&at)?,
                    actor,
                    kind: kind.parse()?,
                    status: stored_status(&status)?,
                    reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (
            id,
            permit_id,
            permit_version,
            project_id,
            requested_by,
            requested_at,
            statement,
            format,
            rows,
            bytes,
            sha256,
            status,
            decided_by,
            decided_at,
            reason,
        ) = row;
        Ok(Some(ExportRequest {
            id,
            permit_id,
            permit_version,
            project_id,
            requested_by,
            requested_at: parse_ts(&requested_at)?,
            statement,
            format: format.parse()?,
            rows,
            bytes,
            sha256,
            status: stored_status(&status)?,
            decided_by,
            decided_at: parse_ts_opt(decided_at)?,
            reason,
            history,
        }))
    }
}

/// `PermissionDenied` unless the export is approved (the caller may see it: say why).
pub fn check_downloadable(export: &ExportRequest) -> Result<()> {
    match export.status {
        ExportStatus::Approved => Ok(()),
        ExportStatus::PendingReview => Err(denied(
            "this export is waiting for a reviewer's decision; it can be downloaded once approved",
        )),
        ExportStatus::Rejected => Err(denied("this export was rejected; it cannot be downloaded")),
    }
}

fn stored_status(s: &str) -> Result<ExportStatus> {
    s.parse()
        .map_err(|_| Error::Corrupt("unknown export status".into()))
}

async fn next_seq(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str) -> Result<i64> {
    let max: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM export_events WHERE export_id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(max.unwrap_or(0) + 1)
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    seq: i64,
    at: &str,
    actor: &str,
    kind: ExportEventKind,
    status: ExportStatus,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO export_events (export_id, seq, at, actor, kind, status, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(seq)
    .bind(at)
    .bind(actor)
    .bind(kind.as_str())
    .bind(status.as_str())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    let (permit, project): (String, String) =
        sqlx::query_as("SELECT permit_id, project_id FROM export_requests WHERE id = $1")
            .bind(id)
            .fetch_one(&mut **tx)
            .await?;
    let entry = NewAuditEntry::governance(&format!("export.{}", kind.as_str()), actor)
        .project(&project)
        .permit(&permit, None)
        .with("export", id)
        .with("status", status.as_str());
    crate::audit::append(tx, parse_ts(at)?, vec![entry]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_ids_are_safe_file_names() {
        let id = new_export_id();
        assert!(is_export_id(&id), "{id}");
        for bad in [
            "",
            "exp_",
            "exp_../../etc",
            "app_0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_export_id(bad), "{bad}");
        }
        assert!(!is_export_id(&format!("{id}0")));
        assert!(!is_export_id(&id.to_uppercase()));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            ExportStatus::PendingReview,
            ExportStatus::Approved,
            ExportStatus::Rejected,
        ] {
            assert_eq!(s.as_str().parse::<ExportStatus>().unwrap(), s);
            assert_eq!(serde_json::json!(s), s.as_str());
        }
        assert!("maybe".parse::<ExportStatus>().is_err());
    }
}
