//! The audit log's storage: its entries (the leaves of `agora-audit`'s Merkle tree) and the
//! signed tree heads, in the metadata store.
//!
//! Appends happen in the caller's transaction ([`MetaStore::append_audit_in`]), so a
//! governance change and its entry commit together or not at all, and the query service's
//! access entries are durable when [`MetaStore::append_audit`] returns (one transaction for a
//! whole batch: group commit). Positions are dense and in commit order because every append
//! first updates the one `audit_state` row, which serializes appenders on both SQLite and
//! PostgreSQL. Rows are only inserted; whoever edits them anyway is caught by
//! `agora audit verify` against the signed heads.

use agora_audit::{AuditEntry, Category, Hash, SignedTreeHead, StoredEntry, leaf_hash};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::clock::format_ts;
use crate::{Error, MetaStore, Result};

/// An entry to append: everything but its position and time, which the store assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// Access, governance or operations.
    pub category: Category,
    /// What happened, as `noun.verb` (`query.answered`, `permit.approved`...).
    pub event: String,
    /// Who did it (a user id, `system` for the hub's own work).
    pub actor: String,
    /// The project (application id), where there is one.
    pub project: Option<String>,
    /// The data permit, where there is one.
    pub permit: Option<String>,
    /// The permit's version the action was taken under.
    pub permit_version: Option<i64>,
    /// How it ended (`ok`, `answered`, `refused`, `failed`, `denied`).
    pub outcome: String,
    /// Everything else worth keeping, never a data value (SQL text is kept: researchers'
    /// queries are part of the record; their results are not).
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl NewAuditEntry {
    /// A governance entry by `actor`, with outcome `ok` and no detail.
    pub fn governance(event: &str, actor: &str) -> Self {
        Self::new(Category::Governance, event, actor)
    }

    /// An operations entry (releases, ingests, the server, archiving) by `actor`, with
    /// outcome `ok` and no detail.
    pub fn operations(event: &str, actor: &str) -> Self {
        Self::new(Category::Operations, event, actor)
    }

    fn new(category: Category, event: &str, actor: &str) -> Self {
        Self {
            category,
            event: event.to_owned(),
            actor: actor.to_owned(),
            project: None,
            permit: None,
            permit_version: None,
            outcome: "ok".to_owned(),
            detail: serde_json::Map::new(),
        }
    }

    /// The same entry about `project`.
    pub fn project(mut self, project: &str) -> Self {
        self.project = Some(project.to_owned());
        self
    }

    /// The same entry about `permit` at `version`.
    pub fn permit(mut self, permit: &str, version: Option<i64>) -> Self {
        self.permit = Some(permit.to_owned());
        self.permit_version = version;
        self
    }

    /// The same entry with another outcome (`refused`, `failed`...).
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = outcome.to_owned();
        self
    }

    /// The same entry with one more detail field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// An archived segment of the log, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSegment {
    /// The first entry in it.
    pub first: u64,
    /// The entry after its last.
    pub end: u64,
    /// Its file, relative to the data directory's audit folder.
    pub file: String,
    /// The file's SHA-256 (hex).
    pub sha256: String,
    /// The size of the signed head its range proof leads to.
    pub head_size: u64,
    /// When it was archived.
    pub archived_at: DateTime<Utc>,
}

/// Which entries a view wants. Every field narrows; paging goes backwards from `before`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this category.
    pub category: Option<Category>,
    /// Only entries whose event starts with this (`query.` or `permit.approved`).
    pub event: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this project.
    pub project: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// Only entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only entries before this position (the previous page's last `seq`).
    pub before: Option<u64>,
}

fn category_name(category: Category) -> String {
    serde_json::to_value(category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn hash_from_hex(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

impl MetaStore {
    /// Appends `entries` in the caller's transaction `conn` (see [`append`]), at the store's
    /// time; the first one's position.
    pub async fn append_audit_in(
        &self,
        conn: &mut AnyConnection,
        entries: Vec<NewAuditEntry>,
    ) -> Result<u64> {
        append(conn, self.now(), entries).await
    }

    /// Appends `entries` in one transaction of their own (group commit), durable when this
    /// returns; the first one's position.
    pub async fn append_audit(&self, entries: Vec<NewAuditEntry>) -> Result<u64> {
        let mut tx = self.pool().begin().await?;
        let first = self.append_audit_in(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(first)
    }

    /// The log's size: entries appended and committed.
    pub async fn audit_size(&self) -> Result<u64> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM audit_state WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        Ok(size as u64)
    }

    /// The stored leaf hashes of entries `from..`, archived or not, at most `limit`, in log
    /// order (what the service's tree is built from; `agora audit verify` recomputes them).
    pub async fn audit_leaf_hashes(&self, from: u64, limit: u64) -> Result<Vec<(u64, Hash)>> {
        // Archived entries keep their hashes (only): the tree and its proofs go on.
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, leaf_hash FROM audit_archived WHERE seq >= $1 \
             UNION ALL SELECT seq, leaf_hash FROM audit_entries WHERE seq >= $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(from as i64)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(seq, hash)| {
                let hash = hash_from_hex(&hash).ok_or_else(|| {
                    Error::Corrupt(format!("audit entry {seq} has a malformed stored hash"))
                })?;
                Ok((seq as u64, hash))
            })
            .collect()
    }

    /// Stored entries from position `from` (by the stored position), at most `limit`, as the
    /// verifier reads them: nothing is interpreted, a malformed stored hash is all zeros.
    pub async fn audit_stored_entries(&self, from: u64, limit: u64) -> Result<Vec<StoredEntry>> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, leaf, leaf_hash FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(from as i64)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, leaf, hash)| StoredEntry {
                seq: seq as u64,
                leaf: leaf.into_bytes(),
                leaf_hash: hash_from_hex(&hash).unwrap_or([0; 32]),
            })
            .collect())
    }

    /// Entries matching `filter`, newest first, at most `limit`. A stored leaf that no longer
    /// parses is an error naming its position (`agora audit verify` says more).
    pub async fn audit_entries(&self, filter: &AuditFilter, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT seq, leaf FROM audit_entries WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(c) = filter.category {
            bind(&mut sql, " AND category = ?", category_name(c));
        }
        if let Some(e) = &filter.event {
            // A prefix match without LIKE's wildcards: escaping differs between the stores.
            bind(&mut sql, " AND substr(event, 1, length(?)) = ", e.clone());
            bind(&mut sql, "?", e.clone());
        }
        if let Some(a) = &filter.actor {
            bind(&mut sql, " AND actor = ?", a.clone());
        }
        if let Some(p) = &filter.project {
            bind(&mut sql, " AND project = ?", p.clone());
        }
        if let Some(o) = &filter.outcome {
            bind(&mut sql, " AND outcome = ?", o.clone());
        }
        if let Some(t) = filter.from {
            bind(&mut sql, " AND at >= ?", format_ts(t));
        }
        if let Some(t) = filter.to {
            bind(&mut sql, " AND at < ?", format_ts(t));
        }
        let mut query_sql = sql;
        if let Some(b) = filter.before {
            query_sql.push_str(&format!(" AND seq < {}", b as i64));
        }
        query_sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}"));
        let mut query = sqlx::query_as::<_, (i64, String)>(AssertSqlSafe(query_sql));
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.into_iter()
            .map(|(seq, leaf)| {
                AuditEntry::from_leaf(leaf.as_bytes()).map_err(|_| {
                    Error::Corrupt(format!(
                        "audit entry {seq} does not parse; run `agora audit verify`"
                    ))
                })
            })
            .collect()
    }

    /// Per month, project and dataset, the queries answered under the project's permits
    /// (the citizens' view), by month, project and dataset.
    pub async fn audit_activity(&self) -> Result<Vec<(String, String, String, u64)>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT month, project, dataset, queries FROM audit_activity \
             ORDER BY month, project, dataset",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(m, p, d, q)| (m, p, d, q.max(0) as u64))
            .collect())
    }

    /// Where the entries still in the store begin: the end of the last archived segment.
    pub async fn audit_live_from(&self) -> Result<u64> {
        let end: Option<i64> = sqlx::query_scalar("SELECT MAX(end_seq) FROM audit_segments")
            .fetch_one(self.pool())
            .await?;
        Ok(end.unwrap_or(0).max(0) as u64)
    }

    /// The position of the first stored entry dated at or after `cutoff` (the log's size if
    /// none is): entries before it are older than the cutoff.
    pub async fn audit_first_since(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM audit_entries WHERE at >= $1")
                .bind(format_ts(cutoff))
                .fetch_one(self.pool())
                .await?;
        match seq {
            Some(seq) => Ok(seq.max(0) as u64),
            None => self.audit_size().await,
        }
    }

    /// Records that entries `segment.first..segment.end` are archived in `segment.file`: in
    /// one transaction their hashes move to `audit_archived` and their rows leave
    /// `audit_entries`, and an `audit.archived` entry by `actor` records it. The file must be
    /// durable before this is called. Fails (changing nothing) unless the segment starts
    /// where the stored entries do.
    pub async fn archive_audit_segment(
        &self,
        segment: &ArchivedSegment,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        // Writes first (SQLite: a transaction that reads first cannot wait for a writer).
        sqlx::query(
            "INSERT INTO audit_segments (first_seq, end_seq, file, sha256, head_size, archived_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(segment.first as i64)
        .bind(segment.end as i64)
        .bind(&segment.file)
        .bind(&segment.sha256)
        .bind(segment.head_size as i64)
        .bind(format_ts(segment.archived_at))
        .execute(&mut *tx)
        .await?;
        let (first, end) = (segment.first as i64, segment.end as i64);
        let moved = sqlx::query(
            "INSERT INTO audit_archived (seq, leaf_hash) \
             SELECT seq, leaf_hash FROM audit_entries WHERE seq >= $1 AND seq < $2",
        )
        .bind(first)
        .bind(end)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let previous: Option<i64> =
            sqlx::query_scalar("SELECT MAX(end_seq) FROM audit_segments WHERE first_seq < $1")
                .bind(first)
                .fetch_one(&mut *tx)
                .await?;
        if moved != (end - first) as u64 || previous.unwrap_or(0) != first {
            tx.rollback().await?;
            return Err(Error::Conflict(format!(
                "audit entries {first} to {end} are not all in the store, or do not follow the \
                 last archived segment: nothing was archived"
            )));
        }
        sqlx::query("DELETE FROM audit_entries WHERE seq >= $1 AND seq < $2")
            .bind(first)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        let entry = NewAuditEntry::operations("audit.archived", actor)
            .with("first", segment.first)
            .with("end", segment.end)
            .with("file", segment.file.clone())
            .with("sha256", segment.sha256.clone())
            .with("head_size", segment.head_size);
        self.append_audit_in(&mut tx, vec![entry]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every archived segment, oldest first.
    pub async fn audit_segments(&self) -> Result<Vec<ArchivedSegment>> {
        let rows: Vec<(i64, i64, String, String, i64, String)> = sqlx::query_as(
            "SELECT first_seq, end_seq, file, sha256, head_size, archived_at \
             FROM audit_segments ORDER BY first_seq",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(first, end, file, sha256, head_size, at)| {
                Ok(ArchivedSegment {
                    first: first as u64,
                    end: end as u64,
                    file,
                    sha256,
                    head_size: head_size as u64,
                    archived_at: crate::clock::parse_ts(&at)?,
                })
            })
            .collect()
    }

    /// The stored hashes of archived entries `first..end`, in order (a malformed one is all
    /// zeros, for the verifier to report).
    pub async fn audit_archived_hashes(&self, first: u64, end: u64) -> Result<Vec<(u64, Hash)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, leaf_hash FROM audit_archived WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(first as i64)
        .bind(end as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, h)| (seq as u64, hash_from_hex(&h).unwrap_or([0; 32])))
            .collect())
    }

    /// Stores a signed tree head (a head of a size already stored is left as it is).
    pub async fn insert_tree_head(&self, head: &SignedTreeHead) -> Result<()> {
        let signed = serde_json::to_string(head)
            .map_err(|e| Error::Corrupt(format!("a tree head does not encode: {e}")))?;
        sqlx::query(
            "INSERT INTO audit_heads (tree_size, signed) VALUES ($1, $2) \
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(head.head.tree_size as i64)
        .bind(signed)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every signed tree head, smallest first.
    pub async fn tree_heads(&self) -> Result<Vec<SignedTreeHead>> {
        self.heads(
            "SELECT tree_size, signed FROM audit_heads ORDER BY tree_size",
            None,
        )
        .await
    }

    /// The signed tree head of the largest size, if any.
    pub async fn latest_tree_head(&self) -> Result<Option<SignedTreeHead>> {
        let sql = "SELECT tree_size, signed FROM audit_heads \
                   WHERE tree_size = (SELECT MAX(tree_size) FROM audit_heads)";
        Ok(self.heads(sql, None).await?.pop())
    }

    /// The signed head of exactly `size` entries, if one was published.
    pub async fn tree_head(&self, size: u64) -> Result<Option<SignedTreeHead>> {
        let sql = "SELECT tree_size, signed FROM audit_heads WHERE tree_size = $1";
        Ok(self.heads(sql, Some(size)).await?.pop())
    }

    /// The heads `sql` selects (`tree_size, signed`), with `size` bound to `$1` if given.
    async fn heads(&self, sql: &'static str, size: Option<u64>) -> Result<Vec<SignedTreeHead>> {
        let mut query = sqlx::query_as::<_, (i64, String)>(sql);
        if let Some(size) = size {
            query = query.bind(size as i64);
        }
        query
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|(size, signed)| {
                serde_json::from_str(&signed).map_err(|_| {
                    Error::Corrupt(format!("the audit tree head of size {size} does not parse"))
                })
            })
            .collect()
    }
}

/// Appends `entries` at time `at` in the caller's transaction `conn`, numbered after the
/// log's current end, and returns the first one's position. They are durable when `conn`'s
/// transaction commits, and gone if it rolls back, with the change they record.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    at: DateTime<Utc>,
    entries: Vec<NewAuditEntry>,
) -> Result<u64> {
    let count = entries.len() as i64;
    // First, so this transaction holds the log's write lock before it writes an entry.
    let (size,): (i64,) =
        sqlx::query_as("UPDATE audit_state SET size = size + $1 WHERE id = 1 RETURNING size")
            .bind(count)
            .fetch_one(&mut *conn)
            .await?;
    let first = (size - count) as u64;
    for (i, e) in entries.into_iter().enumerate() {
        let entry = AuditEntry {
            seq: first + i as u64,
            at,
            category: e.category,
            event: e.event,
            actor: e.actor,
            project: e.project,
            permit: e.permit,
            permit_version: e.permit_version,
            outcome: e.outcome,
            detail: e.detail,
        };
        let leaf = entry.to_leaf();
        let hash = hex::encode(leaf_hash(&leaf));
        let leaf = String::from_utf8(leaf)
            .map_err(|_| Error::Corrupt("an audit entry did not encode as UTF-8".into()))?;
        sqlx::query(
            "INSERT INTO audit_entries (seq, at, category, event, actor, project, \
             permit_id, outcome, leaf, leaf_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.seq as i64)
        .bind(format_ts(at))
        .bind(category_name(entry.category))
        .bind(&entry.event)
        .bind(&entry.actor)
        .bind(entry.project.as_deref())
        .bind(entry.permit.as_deref())
        .bind(&entry.outcome)
        .bind(leaf)
        .bind(hash)
        .execute(&mut *conn)
        .await?;
        count_activity(conn, &entry).await?;
    }
    Ok(first)
}

/// The datasets an answered query under a project read, once each: what the citizens' view
/// counts it under. Nothing for any other entry.
fn activity_of(entry: &AuditEntry) -> Vec<String> {
    if entry.category != Category::Access || entry.outcome != "answered" || entry.project.is_none()
    {
        return Vec::new();
    }
    let tables = entry.detail.get("tables").and_then(|t| t.as_array());
    let mut datasets: Vec<String> = tables
        .into_iter()
        .flatten()
        .filter_map(|t| Some(t.as_str()?.split('.').next()?.to_owned()))
        .collect();
    datasets.sort_unstable();
    datasets.dedup();
    datasets
}

/// Adds `entry` to the per-month counts of the citizens' view, in the caller's transaction.
async fn count_activity(conn: &mut AnyConnection, entry: &AuditEntry) -> Result<()> {
    let (Some(project), datasets) = (&entry.project, activity_of(entry)) else {
        return Ok(());
    };
    let month = entry.at.format("%Y-%m").to_string();
    for dataset in datasets {
        sqlx::query(
            "INSERT INTO audit_activity (month, project, dataset, queries) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (month, project, dataset) \
             DO UPDATE SET queries = audit_activity.queries + 1",
        )
        .bind(&month)
        .bind(project)
        .bind(dataset)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Migration 9's data step: counts the entries already in the log into the citizens' view,
/// then moves the access events kept before the audit log (`access_events`) into it, at
/// their original times, marked as imported (each counted as it is appended).
pub(crate) async fn import_legacy_and_count(conn: &mut AnyConnection) -> Result<()> {
    let leaves: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, leaf FROM audit_entries WHERE category = 'access' ORDER BY seq",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (seq, leaf) in leaves {
        let entry = AuditEntry::from_leaf(leaf.as_bytes()).map_err(|_| {
            Error::Corrupt(format!(
                "audit entry {seq} does not parse; run `agora audit verify`"
            ))
        })?;
        count_activity(conn, &entry).await?;
    }
    for (at, entry) in crate::access::legacy_access_events(conn).await? {
        append(conn, at, vec![entry.with("imported_from", "access_events")]).await?;
    }
    sqlx::query("DELETE FROM access_events")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store;

    /// Filters narrow, pages go backwards from `before`.
    #[tokio::test]
    async fn filters_and_pages() {
        let (_dir, store) = store().await;
        for i in 0..10 {
            let mut e =
                NewAuditEntry::governance("permit.amended", if i % 2 == 0 { "ann" } else { "bob" });
            if i < 4 {
                e = e.project("app_1");
            }
            store.append_audit(vec![e]).await.unwrap();
        }
        store
            .append_audit(vec![NewAuditEntry::governance("user.created", "ann")])
            .await
            .unwrap();
        let get = |f: AuditFilter, limit| {
            let store = store.clone();
            async move {
                store
                    .audit_entries(&f, limit)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect::<Vec<_>>()
            }
        };
        let ann = AuditFilter {
            actor: Some("ann".into()),
            ..AuditFilter::default()
        };
        assert_eq!(get(ann.clone(), 100).await, [10, 8, 6, 4, 2, 0]);
        assert_eq!(get(ann.clone(), 2).await, [10, 8]);
        let page2 = AuditFilter {
            before: Some(8),
            ..ann
        };
        assert_eq!(get(page2, 2).await, [6, 4]);
        let project = AuditFilter {
            project: Some("app_1".into()),
            event: Some("permit.".into()),
            ..AuditFilter::default()
        };
        assert_eq!(get(project, 100).await, [3, 2, 1, 0]);
        let users = AuditFilter {
            event: Some("user.".into()),
            ..AuditFilter::default()
        };
        assert_eq!(get(users, 100).await, [10]);
    }
}
