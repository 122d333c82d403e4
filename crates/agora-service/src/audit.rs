//! The audit log as the hub keeps it: access events from the query service (group commit),
//! governance events (written by the metadata store in the transaction of each change),
//! signed tree heads, proofs, verification and the views.
//!
//! ```text
//!   query service ─► AuditAccessLog ─► batch ─► one transaction ─┐
//!   governance ───────── (in the change's own transaction) ──────┤─► audit_entries (leaves)
//!   operations (release commits) ── (in the commit's transaction) ┘
//!   every minute: Audit::sign_head ─► tree head signed (Ed25519, keys/audit.key) ─► audit_heads
//! ```
//!
//! **Invariant:** no answer leaves before its entry is committed: [`AuditAccessLog::record`]
//! returns only after the batch holding the event is. **Invariant:** the hub never signs a
//! head that does not extend the previous one ([`Audit::sign_head`] checks it first), so a
//! rewritten store cannot be laundered by the hub's own signature.

use std::fs::OpenOptions;
use std::future::Future;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

pub use agora_audit::{
    AuditEntry, Category, Hash, Inconsistency, PublicKey, Segment, SignedTreeHead, TreeHead,
    VerifyReport, check_segment,
};
use agora_audit::{MerkleTree, SigningKey, StoredEntry, Verifier, leaf_hash, write_segment};
pub use agora_govern::{ArchivedSegment, AuditFilter};
use agora_govern::{MetaStore, Principal, Role};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::access::{AccessEvent, AccessLog};
use crate::{Error, Result};

/// Entries one group commit writes at most.
const MAX_BATCH: usize = 512;
/// Stored entries read per round trip when building the tree or verifying.
const PAGE: u64 = 10_000;
/// Entries one view returns at most.
pub const MAX_PAGE: u32 = 1_000;
/// Entries one archived segment holds at most.
const SEGMENT_MAX: u64 = 100_000;
/// How long entries stay in the metadata store before they are archived, by default: the
/// year health data law asks access logs to be kept at least (EHDS Art. 73). Archived
/// segments are kept, and stay verifiable, after that.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

struct Pending {
    event: AccessEvent,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The query service's access log: events are appended to the audit log by one writer task
/// in batches (group commit: while one transaction commits, the next batch gathers), each
/// caller answered once the transaction holding its event has committed.
#[derive(Debug, Clone)]
pub struct AuditAccessLog {
    queue: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

impl AuditAccessLog {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(meta: MetaStore) -> Self {
        let (queue, mut inbox) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = inbox.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match inbox.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let events: Vec<AccessEvent> = batch.iter().map(|p| p.event.clone()).collect();
                let result = meta
                    .record_access_batch(&events)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        tracing::error!(error = %e, "the audit log could not record access events");
                        e.to_string()
                    });
                for pending in batch {
                    // The caller may have gone (its request dropped): nothing to tell it.
                    let _ = pending.done.send(result.clone());
                }
            }
        });
        Self { queue }
    }
}

impl AccessLog for AuditAccessLog {
    fn record<'a>(
        &'a self,
        event: &'a AccessEvent,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let (done, committed) = oneshot::channel();
            let unavailable =
                || Error::Internal("the audit log's writer has stopped; nothing may leave".into());
            self.queue
                .send(Pending {
                    event: event.clone(),
                    done,
                })
                .map_err(|_| unavailable())?;
            committed
                .await
                .map_err(|_| unavailable())?
                .map_err(|e| Error::Internal(format!("the audit log could not record: {e}")))
        })
    }
}

/// An inclusion proof: the audit path of entry `index` in the tree of `tree_size` entries
/// (RFC 9162 §2.1.3), to check against the signed head of that size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InclusionProof {
    /// The entry's position.
    pub index: u64,
    /// The size of the tree the proof is for (a published head's).
    pub tree_size: u64,
    /// The entry's leaf hash (hex).
    pub leaf_hash: String,
    /// The audit path, leaf side first (hex).
    pub path: Vec<String>,
}

/// A consistency proof between two published heads (RFC 9162 §2.1.4).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsistencyProof {
    /// The older head's size.
    pub first: u64,
    /// The newer head's size.
    pub second: u64,
    /// The proof's hashes (hex).
    pub path: Vec<String>,
}

/// One project's query count for one month and dataset: what citizens see.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectActivity {
    /// Month, `YYYY-MM`.
    pub month: String,
    /// The project (application id).
    pub project: String,
    /// A dataset its queries read.
    pub dataset: String,
    /// Queries answered.
    pub queries: u64,
}

/// The audit log of one hub. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    meta: MetaStore,
    key: Arc<SigningKey>,
    /// The data directory's audit folder: archived segments live under it.
    dir: PathBuf,
    /// One archiver at a time in this process (the store refuses a second one elsewhere).
    archiving: Arc<Mutex<()>>,
    /// The tree over the stored leaf hashes, caught up from the store before each use (other
    /// processes, e.g. the command line, append too).
    tree: Arc<Mutex<MerkleTree>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("key_id", &self.key.public_key().key_id())
            .finish_non_exhaustive()
    }
}

fn hex_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn may_audit(who: &Principal) -> bool {
    who.roles
        .iter()
        .any(|r| matches!(r, Role::Operator | Role::Auditor))
}

impl Audit {
    pub(crate) fn new(meta: MetaStore, key: SigningKey, dir: PathBuf) -> Self {
        Self {
            meta,
            key: Arc::new(key),
            dir,
            archiving: Arc::default(),
            tree: Arc::default(),
        }
    }

    /// Appends an operations entry by `actor` (`server.started`, `server.stopped`...),
    /// durable when this returns. `detail` holds no data value.
    pub async fn record_operation(
        &self,
        actor: &str,
        event: &str,
        detail: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let mut entry = agora_govern::NewAuditEntry::operations(event, actor);
        entry.detail = detail;
        self.meta.append_audit(vec![entry]).await?;
        Ok(())
    }

    /// The key tree heads are signed with: outsiders keep it to check heads.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The tree, caught up with every committed entry.
    async fn synced(&self) -> Result<tokio::sync::MutexGuard<'_, MerkleTree>> {
        let mut tree = self.tree.lock().await;
        loop {
            let page = self.meta.audit_leaf_hashes(tree.size(), PAGE).await?;
            let n = page.len() as u64;
            for (seq, hash) in page {
                if seq != tree.size() {
                    return Err(Error::Internal(format!(
                        "the audit log has no entry {}; run `agora audit verify`",
                        tree.size()
                    )));
                }
                tree.push(hash);
            }
            if n < PAGE {
                return Ok(tree);
            }
        }
    }

    /// Signs a head over every committed entry if the log grew since the latest head, and
    /// returns it. Refuses (and logs) when the stored log no longer extends the latest
    /// head: the hub does not sign a rewrite.
    pub async fn sign_head(&self) -> Result<Option<SignedTreeHead>> {
        let tree = self.synced().await?;
        let latest = self.meta.latest_tree_head().await?;
        if let Some(latest) = &latest {
            let size = latest.head.tree_size;
            if size >= tree.size() {
                if size > tree.size() {
                    tracing::error!(
                        "the audit log holds fewer entries than its latest signed head; run `agora audit verify`"
                    );
                    return Err(Error::Internal(
                        "the audit log is shorter than its latest signed head".into(),
                    ));
                }
                return Ok(None);
            }
            if tree.root_at(size).ok() != Some(latest.head.root_hash) {
                tracing::error!(
                    tree_size = size,
                    "the audit log does not extend its latest signed head; run `agora audit verify`"
                );
                return Err(Error::Internal(
                    "the audit log does not extend its latest signed head".into(),
                ));
            }
        } else if tree.size() == 0 {
            return Ok(None);
        }
        let head = TreeHead {
            tree_size: tree.size(),
            timestamp: self.meta.now(),
            root_hash: tree.root(),
        };
        let signed = self.key.sign(head);
        self.meta.insert_tree_head(&signed).await?;
        Ok(Some(signed))
    }

    /// The latest signed tree head (public).
    pub async fn latest_head(&self) -> Result<Option<SignedTreeHead>> {
        Ok(self.meta.latest_tree_head().await?)
    }

    /// Every signed tree head, smallest first (public: anyone may keep copies).
    pub async fn heads(&self) -> Result<Vec<SignedTreeHead>> {
        Ok(self.meta.tree_heads().await?)
    }

    /// The proof that entry `index` is in the published tree of `tree_size` entries.
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<InclusionProof> {
        self.published(tree_size).await?;
        let tree = self.synced().await?;
        let path = tree
            .inclusion_proof(index, tree_size)
            .map_err(|e| Error::InvalidInput(format!("no inclusion proof: {e}")))?;
        let leaf = tree
            .leaf(index)
            .ok_or_else(|| Error::InvalidInput(format!("no entry {index}")))?;
        Ok(InclusionProof {
            index,
            tree_size,
            leaf_hash: hex::encode(leaf),
            path: hex_all(&path),
        })
    }

    /// The proof that the published tree of `second` entries extends that of `first`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof> {
        self.published(first).await?;
        self.published(second).await?;
        let tree = self.synced().await?;
        let path = tree
            .consistency_proof(first, second)
            .map_err(|e| Error::InvalidInput(format!("no consistency proof: {e}")))?;
        Ok(ConsistencyProof {
            first,
            second,
            path: hex_all(&path),
        })
    }

    async fn published(&self, size: u64) -> Result<()> {
        match self.meta.tree_head(size).await? {
            Some(_) => Ok(()),
            None => Err(Error::InvalidInput(format!(
                "no signed tree head of size {size}: proofs are given between published heads \
                 (GET /api/v1/audit/heads lists them)"
            ))),
        }
    }

    /// Entries matching `filter`, newest first, at most `limit` (capped at [`MAX_PAGE`]).
    /// Operators and auditors see every entry; anyone else only the entries of projects
    /// whose permit names them, and must name the project.
    pub async fn entries(
        &self,
        who: &Principal,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        if !may_audit(who) {
            let Some(project) = &filter.project else {
                return Err(Error::PermissionDenied(
                    "the audit log is open to operators and auditors; researchers read their \
                     own project's entries by naming it (project=...)"
                        .into(),
                ));
            };
            let mine = self
                .meta
                .list_permits(who)
                .await?
                .iter()
                .any(|p| &p.application_id == project);
            if !mine {
                return Err(Error::PermissionDenied(
                    "you may read the audit entries of your own projects only".into(),
                ));
            }
        }
        Ok(self
            .meta
            .audit_entries(filter, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// Per month, project and dataset, how many queries were answered under the project's
    /// permits: the citizens' view (no login, no personal data: counts only). Counted as
    /// entries are appended, so archived months keep their counts.
    pub async fn project_activity(&self) -> Result<Vec<ProjectActivity>> {
        Ok(self
            .meta
            .audit_activity()
            .await?
            .into_iter()
            .map(|(month, project, dataset, queries)| ProjectActivity {
                month,
                project,
                dataset,
                queries,
            })
            .collect())
    }

    /// Moves the entries older than `retention` (and covered by a signed head, which this
    /// signs first) out of the metadata store into archived segment files under the audit
    /// folder, at most [`SEGMENT_MAX`] entries each. Each file holds its entries and a range
    /// proof against the head, is written and fsynced before the store lets the rows go
    /// (their hashes stay, so proofs and heads go on), and is recorded by an `audit.archived`
    /// entry. Operators only; refuses to archive a log that does not check out.
    pub async fn archive(
        &self,
        who: &Principal,
        retention: chrono::Duration,
    ) -> Result<Vec<ArchivedSegment>> {
        if !who.roles.contains(&Role::Operator) {
            return Err(Error::PermissionDenied(
                "archiving the audit log is for operators".into(),
            ));
        }
        self.archive_as(&who.name, retention).await
    }

    /// [`Self::archive`] as the hub's own scheduled work (`agora serve`, hourly), recorded
    /// with actor `system`.
    pub async fn archive_expired(
        &self,
        retention: chrono::Duration,
    ) -> Result<Vec<ArchivedSegment>> {
        self.archive_as("system", retention).await
    }

    async fn archive_as(
        &self,
        actor: &str,
        retention: chrono::Duration,
    ) -> Result<Vec<ArchivedSegment>> {
        let _one = self.archiving.lock().await;
        self.sign_head().await?;
        let Some(head) = self.meta.latest_tree_head().await? else {
            return Ok(Vec::new());
        };
        let cutoff = self.meta.now() - retention;
        let until = self
            .meta
            .audit_first_since(cutoff)
            .await?
            .min(head.head.tree_size);
        let mut first = self.meta.audit_live_from().await?;
        let mut done = Vec::new();
        while first < until {
            let end = until.min(first + SEGMENT_MAX);
            let bytes = self.segment_bytes(first, end, &head).await?;
            let name = format!("segments/{first:012}-{end:012}.jsonl");
            write_durably(&self.dir, &name, &bytes)?;
            let segment = ArchivedSegment {
                first,
                end,
                file: name,
                sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                head_size: head.head.tree_size,
                archived_at: self.meta.now(),
            };
            self.meta.archive_audit_segment(&segment, actor).await?;
            done.push(segment);
            first = end;
        }
        Ok(done)
    }

    /// The segment file of entries `first..end`, proved against `head`, after checking the
    /// stored entries against the tree the hub signed.
    async fn segment_bytes(&self, first: u64, end: u64, head: &SignedTreeHead) -> Result<Vec<u8>> {
        let damaged = |seq: u64| {
            Error::Internal(format!(
                "audit entry {seq} does not match the signed log; nothing was archived (run \
                 `agora audit verify`)"
            ))
        };
        let mut leaves = Vec::with_capacity((end - first) as usize);
        let mut hashes = Vec::with_capacity(leaves.capacity());
        while (first + leaves.len() as u64) < end {
            let from = first + leaves.len() as u64;
            let page = self
                .meta
                .audit_stored_entries(from, PAGE.min(end - from))
                .await?;
            if page.is_empty() {
                return Err(damaged(from));
            }
            for entry in page {
                let seq = first + leaves.len() as u64;
                if entry.seq != seq || leaf_hash(&entry.leaf) != entry.leaf_hash {
                    return Err(damaged(seq));
                }
                leaves.push(entry.leaf);
                hashes.push(entry.leaf_hash);
            }
        }
        let tree = self.synced().await?;
        let size = head.head.tree_size;
        if tree.root_at(size).ok() != Some(head.head.root_hash) {
            return Err(damaged(first));
        }
        for (seq, hash) in (first..).zip(hashes) {
            if tree.leaf(seq) != Some(hash) {
                return Err(damaged(seq));
            }
        }
        let proof = tree
            .range_proof(first, end, size)
            .map_err(|e| Error::Internal(format!("no range proof: {e}")))?;
        drop(tree);
        let bytes = write_segment(first, &leaves, head.clone(), &proof);
        check_segment(&bytes, &self.public_key())
            .map_err(|e| Error::Internal(format!("a new segment does not check: {e}")))?;
        Ok(bytes)
    }

    /// Every archived segment, oldest first.
    pub async fn segments(&self) -> Result<Vec<ArchivedSegment>> {
        Ok(self.meta.audit_segments().await?)
    }

    /// Recomputes the tree from every stored entry, checks every signed head's signature
    /// and root, and `checkpoint` (a head an outsider kept) if given: the first
    /// inconsistency, named, or a report. Operators and auditors.
    pub async fn verify(
        &self,
        who: &Principal,
        checkpoint: Option<&SignedTreeHead>,
    ) -> Result<std::result::Result<VerifyReport, Inconsistency>> {
        if !may_audit(who) {
            return Err(Error::PermissionDenied(
                "verifying the audit log is for operators and auditors (anyone may check the \
                 published heads and proofs)"
                    .into(),
            ));
        }
        let mut verifier = Verifier::new(self.public_key());
        // Archived segments first: each must prove against its own signed head, and its
        // entries are recomputed into the tree with the hashes the store kept for them.
        let mut heads = Vec::new();
        for segment in self.meta.audit_segments().await? {
            let first = segment.first;
            let malformed = Inconsistency::SegmentMalformed { first: Some(first) };
            let Ok(bytes) = std::fs::read(self.dir.join(&segment.file)) else {
                return Ok(Err(malformed));
            };
            let checked = match check_segment(&bytes, &self.public_key()) {
                Ok(checked) => checked,
                Err(found) => return Ok(Err(found)),
            };
            if (checked.header.first, checked.header.end) != (first, segment.end) {
                return Ok(Err(malformed));
            }
            let kept: std::collections::HashMap<u64, Hash> = self
                .meta
                .audit_archived_hashes(first, segment.end)
                .await?
                .into_iter()
                .collect();
            for (i, leaf) in checked.leaves.into_iter().enumerate() {
                let seq = first + i as u64;
                let stored = StoredEntry {
                    seq,
                    leaf,
                    leaf_hash: kept.get(&seq).copied().unwrap_or([0; 32]),
                };
                if let Err(found) = verifier.entry(stored) {
                    return Ok(Err(found));
                }
            }
            heads.push(checked.header.head);
        }
        let mut from = verifier.entries();
        loop {
            let page = self.meta.audit_stored_entries(from, PAGE).await?;
            let n = page.len() as u64;
            for entry in page {
                from = entry.seq + 1;
                if let Err(found) = verifier.entry(entry) {
                    return Ok(Err(found));
                }
            }
            if n < PAGE {
                break;
            }
        }
        heads.extend(self.meta.tree_heads().await?);
        Ok(verifier.finish(&heads, checkpoint))
    }

    /// Checks an archived segment's bytes against this hub's key, standing alone (what an
    /// outsider does with the published key): the range and its head, or the inconsistency.
    pub fn check_segment(
        &self,
        bytes: &[u8],
    ) -> std::result::Result<agora_audit::Segment, Inconsistency> {
        check_segment(bytes, &self.public_key())
    }
}

/// Writes `name` under `dir` so that it is whole and durable when this returns: a temporary
/// file, fsynced, renamed into place, the directory fsynced. Owner only.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)))
        .map_err(Error::io("create", parent))?;
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::io("create", &tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", parent))
}

/// One line per entry, the detail as JSON in its column. A cell that a spreadsheet would
/// read as a formula is prefixed with `'` (SQL text is kept as sent).
pub fn entries_csv(entries: &[AuditEntry]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let safe = |s: String| {
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s
        }
    };
    let _ = w.write_record([
        "seq",
        "at",
        "category",
        "event",
        "actor",
        "project",
        "permit",
        "permit_version",
        "outcome",
        "detail",
    ]);
    for e in entries {
        let category = serde_json::to_value(e.category).unwrap_or_default();
        let _ = w.write_record([
            e.seq.to_string(),
            e.at.to_rfc3339(),
            category.as_str().unwrap_or_default().to_owned(),
            safe(e.event.clone()),
            safe(e.actor.clone()),
            safe(e.project.clone().unwrap_or_default()),
            safe(e.permit.clone().unwrap_or_default()),
            e.permit_version.map(|v| v.to_string()).unwrap_or_default(),
            safe(e.outcome.clone()),
            safe(serde_json::to_string(&e.detail).unwrap_or_default()),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
