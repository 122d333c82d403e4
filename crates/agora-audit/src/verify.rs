//! The verifier behind `agora audit verify`: recomputes the tree from the stored entries and
//! checks every signed head, and an outsider's checkpoint, against it.

use chrono::{DateTime, Utc};

use crate::entry::AuditEntry;
use crate::head::{PublicKey, SignedTreeHead};
use crate::merkle::{Hash, MerkleTree, leaf_hash};

/// An entry as the store holds it: its sequence number, its leaf bytes and the leaf hash
/// stored beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries in the log, all recomputed into the tree.
    pub entries: u64,
    /// Signed heads checked.
    pub heads: usize,
    /// The head over the most entries (the latest of those, if several).
    pub latest: Option<SignedTreeHead>,
    /// The recomputed root over all entries.
    pub root: Hash,
    /// Entries after the latest head: in the log, but not yet covered by a signature.
    pub unsigned_entries: u64,
}

/// The first inconsistency found. Each names positions or sizes only, never entry contents,
/// so the message can be shown and kept by anyone auditing the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Inconsistency {
    /// A gap: entry `expected` is not stored where it should be, `found` is.
    #[error("entry {expected} is missing: the next stored entry is {found} (entries were deleted)")]
    Missing { expected: u64, found: u64 },
    /// The leaf (or row) at `position` is entry `seq`: moved, swapped or duplicated.
    #[error("the leaf at position {position} holds entry {seq} (entries were reordered or copied)")]
    OutOfPlace { position: u64, seq: u64 },
    /// The stored leaf of entry `seq` does not hash to its stored hash, or is no entry.
    #[error(
        "entry {seq} was altered: its stored leaf does not match its stored hash or is not an audit entry"
    )]
    Altered { seq: u64 },
    /// A signed head (or the checkpoint) covers more entries than the log holds.
    #[error(
        "the log holds {entries} entries but a signed head covers {signed}: entries were removed from its end"
    )]
    Truncated { entries: u64, signed: u64 },
    /// A head's signature does not verify under the key, or it names another key.
    #[error("the signed head for {tree_size} entries has a wrong signature or key id")]
    BadSignature { tree_size: u64 },
    /// The recomputed root at `tree_size` differs from the signed one, while the head at
    /// `after` (0 if none) still matched: an entry with seq in `after..tree_size` was changed
    /// together with its stored hash.
    #[error(
        "the signed head for {tree_size} entries does not match the log: an entry with seq from {after} to below {tree_size} was changed"
    )]
    HeadMismatch { tree_size: u64, after: u64 },
    /// The key signed two different roots for one size: the signer itself forked the log.
    #[error("two signed heads for {tree_size} entries have different roots: the log was forked")]
    ConflictingHeads { tree_size: u64 },
    /// A head over `tree_size` entries is dated after one over `larger` entries: the log
    /// was cut back and grown again (or the signer's clock went back; worth a look either way).
    #[error(
        "the head for {tree_size} entries is dated after the head for {larger} entries: the log was rolled back"
    )]
    Rollback { tree_size: u64, larger: u64 },
    /// An archived segment's file is missing, unreadable or not a segment of its range
    /// (`first` is its first entry, when known).
    #[error("{}", match first {
        Some(first) => format!("the archived segment from entry {first} is missing, unreadable or not a segment"),
        None => "the file is not an archived segment of the audit log".to_owned(),
    })]
    SegmentMalformed { first: Option<u64> },
    /// An archived segment's entries do not prove against its signed head: one was changed.
    #[error(
        "the archived segment of entries {first} to below {end} does not match its signed head for {tree_size} entries: an entry in it was changed"
    )]
    SegmentMismatch {
        first: u64,
        end: u64,
        tree_size: u64,
    },
    /// The outsider's checkpoint does not verify under the key.
    #[error("the checkpoint for {tree_size} entries has a wrong signature or key id")]
    BadCheckpointSignature { tree_size: u64 },
    /// The log's root at the checkpoint's size differs from the checkpoint's: the log (and
    /// any re-signed heads) was rewritten after the outsider saw it.
    #[error(
        "the log does not extend the checkpoint for {tree_size} entries: it was rewritten or forked since"
    )]
    CheckpointMismatch { tree_size: u64 },
}

/// Recomputes the tree from stored entries fed in stored order, then checks the signed heads
/// and a checkpoint against it. Only the tree's hashes are kept, not the leaves. One key: heads
/// signed by any other key fail as [`Inconsistency::BadSignature`].
#[derive(Debug)]
pub struct Verifier {
    key: PublicKey,
    tree: MerkleTree,
}

impl Verifier {
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            tree: MerkleTree::new(),
        }
    }

    /// Entries accepted so far.
    pub fn entries(&self) -> u64 {
        self.tree.size()
    }

    /// Checks and adds the next stored entry: its sequence number is the next position, its
    /// leaf hashes to the stored hash, and the leaf is an audit entry for that position. On an
    /// error the entry is not added.
    pub fn entry(&mut self, e: StoredEntry) -> Result<(), Inconsistency> {
        let position = self.tree.size();
        if e.seq > position {
            return Err(Inconsistency::Missing {
                expected: position,
                found: e.seq,
            });
        }
        if e.seq < position {
            return Err(Inconsistency::OutOfPlace {
                position,
                seq: e.seq,
            });
        }
        // The hash first: a changed leaf is "altered" wherever the change landed.
        let hash = leaf_hash(&e.leaf);
        if hash != e.leaf_hash {
            return Err(Inconsistency::Altered { seq: position });
        }
        // The leaf's own seq binds it to its position: a leaf moved, with its hash, to
        // another row is caught here rather than only by the heads.
        let entry =
            AuditEntry::from_leaf(&e.leaf).map_err(|_| Inconsistency::Altered { seq: position })?;
        if entry.seq != position {
            return Err(Inconsistency::OutOfPlace {
                position,
                seq: entry.seq,
            });
        }
        self.tree.push(hash);
        Ok(())
    }

    /// After all entries: checks every signed head (any order; sorted by size inside) against
    /// the recomputed tree, then the outsider's checkpoint, if any.
    pub fn finish(
        self,
        heads: &[SignedTreeHead],
        checkpoint: Option<&SignedTreeHead>,
    ) -> Result<VerifyReport, Inconsistency> {
        let entries = self.tree.size();
        let mut sorted: Vec<&SignedTreeHead> = heads.iter().collect();
        sorted.sort_by_key(|h| (h.head.tree_size, h.head.timestamp));

        // The largest size whose head matched: where a later mismatch's range starts.
        let mut matched = 0;
        // The latest-dated head so far (all of size ≤ the current one, by the sort).
        let mut latest_dated: Option<(DateTime<Utc>, u64)> = None;
        for sth in &sorted {
            let tree_size = sth.head.tree_size;
            if self.key.verify(sth).is_err() {
                return Err(Inconsistency::BadSignature { tree_size });
            }
            let root = self.root_at(tree_size)?;
            if root != sth.head.root_hash {
                // Another validly signed head of this size that does match means the key
                // signed two different logs of one size: a fork, not an edit after signing.
                let twin = sorted.iter().any(|h| {
                    h.head.tree_size == tree_size
                        && h.head.root_hash == root
                        && self.key.verify(h).is_ok()
                });
                if twin {
                    return Err(Inconsistency::ConflictingHeads { tree_size });
                }
                return Err(Inconsistency::HeadMismatch {
                    tree_size,
                    after: matched,
                });
            }
            matched = tree_size;
            // Heads of equal size come sorted by time, so a later-dated one is always smaller.
            if let Some((at, size)) = latest_dated
                && sth.head.timestamp < at
            {
                return Err(Inconsistency::Rollback {
                    tree_size: size,
                    larger: tree_size,
                });
            }
            latest_dated = Some((sth.head.timestamp, tree_size));
        }

        if let Some(cp) = checkpoint {
            let tree_size = cp.head.tree_size;
            if self.key.verify(cp).is_err() {
                return Err(Inconsistency::BadCheckpointSignature { tree_size });
            }
            if self.root_at(tree_size)? != cp.head.root_hash {
                return Err(Inconsistency::CheckpointMismatch { tree_size });
            }
        }

        let latest = sorted.last().map(|h| (*h).clone());
        let signed = latest.as_ref().map_or(0, |h| h.head.tree_size);
        Ok(VerifyReport {
            entries,
            heads: heads.len(),
            latest,
            root: self.tree.root(),
            unsigned_entries: entries - signed,
        })
    }

    fn root_at(&self, signed: u64) -> Result<Hash, Inconsistency> {
        let entries = self.tree.size();
        self.tree
            .root_at(signed)
            .map_err(|_| Inconsistency::Truncated { entries, signed })
    }
}
