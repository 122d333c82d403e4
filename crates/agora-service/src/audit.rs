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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use agora_audit::{
    AuditEntry, Category, Hash, Inconsistency, PublicKey, SignedTreeHead, TreeHead, VerifyReport,
};
use agora_audit::{MerkleTree, SigningKey, Verifier};
pub use agora_govern::AuditFilter;
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
    pub(crate) fn new(meta: MetaStore, key: SigningKey) -> Self {
        Self {
            meta,
            key: Arc::new(key),
            tree: Arc::default(),
        }
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
    /// permits: the citizens' view (no login, no personal data: counts only).
    pub async fn project_activity(&self) -> Result<Vec<ProjectActivity>> {
        let filter = AuditFilter {
            category: Some(Category::Access),
            outcome: Some("answered".into()),
            ..AuditFilter::default()
        };
        let mut counts = std::collections::BTreeMap::<(String, String, String), u64>::new();
        let mut before = None;
        loop {
            let page = self
                .meta
                .audit_entries(
                    &AuditFilter {
                        before,
                        ..filter.clone()
                    },
                    MAX_PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            for e in &page {
                let Some(project) = &e.project else { continue };
                let month = e.at.format("%Y-%m").to_string();
                let tables = e.detail.get("tables").and_then(|t| t.as_array());
                let mut datasets: Vec<&str> = tables
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str()?.split('.').next())
                    .collect();
                datasets.sort_unstable();
                datasets.dedup();
                for d in datasets {
                    *counts
                        .entry((month.clone(), project.clone(), d.to_owned()))
                        .or_default() += 1;
                }
            }
        }
        Ok(counts
            .into_iter()
            .map(|((month, project, dataset), queries)| ProjectActivity {
                month,
                project,
                dataset,
                queries,
            })
            .collect())
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
        let mut from = 0;
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
        let heads = self.meta.tree_heads().await?;
        Ok(verifier.finish(&heads, checkpoint))
    }
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
