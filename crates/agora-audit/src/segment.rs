//! Archived segments: a contiguous run of the log's entries in one self-contained file that
//! anyone holding the public key can check against a signed head, without the rest of the log.
//!
//! The file is JSON Lines. The first line is the [`SegmentHeader`]: the range, the signed
//! head and the range proof ([`crate::MerkleTree::range_proof`]) from the range's leaves to
//! that head's root. Each further line is one entry's leaf exactly as it was hashed (compact
//! JSON holds no raw newline). [`check_segment`] proves the leaves against the head and the
//! head against the key.

use crate::entry::AuditEntry;
use crate::head::{PublicKey, SignedTreeHead};
use crate::merkle::{Hash, leaf_hash, verify_range};
use crate::verify::Inconsistency;

/// The format name in every segment's header.
pub const SEGMENT_FORMAT: &str = "agora-audit-segment-v1";

/// A segment's first line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SegmentHeader {
    /// Always [`SEGMENT_FORMAT`].
    pub format: String,
    /// The first entry's position.
    pub first: u64,
    /// The position after the last entry.
    pub end: u64,
    /// The signed head the proof leads to (its size is at least `end`).
    pub head: SignedTreeHead,
    /// The range proof, hex.
    pub proof: Vec<String>,
}

/// A segment that checked out: its range, its head and its entries' leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub header: SegmentHeader,
    /// The leaves, in order (entry `header.first + i` at `i`).
    pub leaves: Vec<Vec<u8>>,
}

/// The bytes of a segment holding `leaves` from position `first`, proved by `proof` against
/// `head`.
pub fn write_segment(
    first: u64,
    leaves: &[Vec<u8>],
    head: SignedTreeHead,
    proof: &[Hash],
) -> Vec<u8> {
    let header = SegmentHeader {
        format: SEGMENT_FORMAT.to_owned(),
        first,
        end: first + leaves.len() as u64,
        head,
        proof: proof.iter().map(hex::encode).collect(),
    };
    let mut out = serde_json::to_vec(&header).expect("a segment header always encodes");
    out.push(b'\n');
    for leaf in leaves {
        out.extend_from_slice(leaf);
        out.push(b'\n');
    }
    out
}

/// Checks a segment file's bytes: a well-formed header and one leaf per entry of its range,
/// each an audit entry naming its own position, proved by the range proof against the
/// header's head, which `key` signed. The error names positions only.
pub fn check_segment(bytes: &[u8], key: &PublicKey) -> Result<Segment, Inconsistency> {
    let mut lines = bytes.split(|b| *b == b'\n');
    let malformed = |first| Inconsistency::SegmentMalformed { first };
    let header: SegmentHeader = lines
        .next()
        .and_then(|l| serde_json::from_slice(l).ok())
        .ok_or(malformed(None))?;
    let first = header.first;
    let tree_size = header.head.head.tree_size;
    if header.format != SEGMENT_FORMAT || header.end <= first || header.end > tree_size {
        return Err(malformed(Some(first)));
    }
    let proof: Vec<Hash> = header
        .proof
        .iter()
        .map(|h| hex::decode(h).ok()?.try_into().ok())
        .collect::<Option<_>>()
        .ok_or(malformed(Some(first)))?;
    let count = usize::try_from(header.end - first).map_err(|_| malformed(Some(first)))?;
    let mut leaves: Vec<Vec<u8>> = lines.map(<[u8]>::to_vec).collect();
    // The final newline leaves an empty remainder.
    if leaves.last().is_some_and(Vec::is_empty) {
        leaves.pop();
    }
    if leaves.len() != count {
        return Err(malformed(Some(first)));
    }
    let mut hashes = Vec::with_capacity(count);
    for (i, leaf) in leaves.iter().enumerate() {
        let position = first + i as u64;
        let entry =
            AuditEntry::from_leaf(leaf).map_err(|_| Inconsistency::Altered { seq: position })?;
        if entry.seq != position {
            return Err(Inconsistency::OutOfPlace {
                position,
                seq: entry.seq,
            });
        }
        hashes.push(leaf_hash(leaf));
    }
    if key.verify(&header.head).is_err() {
        return Err(Inconsistency::BadSignature { tree_size });
    }
    verify_range(
        first,
        &hashes,
        tree_size,
        &proof,
        &header.head.head.root_hash,
    )
    .map_err(|_| Inconsistency::SegmentMismatch {
        first,
        end: header.end,
        tree_size,
    })?;
    Ok(Segment { header, leaves })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::entry::Category;
    use crate::head::{SigningKey, TreeHead};
    use crate::merkle::MerkleTree;

    fn leaf(seq: u64) -> Vec<u8> {
        AuditEntry {
            seq,
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            category: Category::Access,
            event: "query.answered".into(),
            actor: "u1".into(),
            project: Some("app_1".into()),
            permit: None,
            permit_version: None,
            outcome: "answered".into(),
            detail: serde_json::Map::from_iter([("statement".to_owned(), "SELECT 'a\nb'".into())]),
        }
        .to_leaf()
    }

    fn fixture() -> (SigningKey, Vec<u8>) {
        let (key, _) = SigningKey::generate().unwrap();
        let leaves: Vec<Vec<u8>> = (0..20).map(leaf).collect();
        let tree: MerkleTree = leaves.iter().map(|l| leaf_hash(l)).collect();
        let head = key.sign(TreeHead {
            tree_size: 20,
            timestamp: Utc::now(),
            root_hash: tree.root(),
        });
        let proof = tree.range_proof(5, 12, 20).unwrap();
        (key, write_segment(5, &leaves[5..12], head, &proof))
    }

    #[test]
    fn a_segment_checks_against_its_head() {
        let (key, bytes) = fixture();
        let segment = check_segment(&bytes, &key.public_key()).unwrap();
        assert_eq!((segment.header.first, segment.header.end), (5, 12));
        assert_eq!(segment.leaves[0], leaf(5));
    }

    /// Each way of tampering with a file is caught and named by position.
    #[test]
    fn tampering_is_named() {
        let (key, bytes) = fixture();
        let public = key.public_key();
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: &[&str]| format!("{}\n", ls.join("\n")).into_bytes();

        // A changed statement: the entry still parses, the proof no longer holds.
        let changed = join(
            &[
                &lines[..3],
                &[lines[3].replace("SELECT", "SELECt").as_str()],
                &lines[4..],
            ]
            .concat(),
        );
        assert_eq!(
            check_segment(&changed, &public),
            Err(Inconsistency::SegmentMismatch {
                first: 5,
                end: 12,
                tree_size: 20
            })
        );
        // Two entries swapped.
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        assert_eq!(
            check_segment(&join(&swapped), &public),
            Err(Inconsistency::OutOfPlace {
                position: 6,
                seq: 7
            })
        );
        // One dropped.
        let dropped = join(&[&lines[..4], &lines[5..]].concat());
        assert_eq!(
            check_segment(&dropped, &public),
            Err(Inconsistency::SegmentMalformed { first: Some(5) })
        );
        // Not an entry.
        let garbage = join(&[&lines[..2], &["{}"], &lines[3..]].concat());
        assert_eq!(
            check_segment(&garbage, &public),
            Err(Inconsistency::Altered { seq: 6 })
        );
        // Another key.
        let (other, _) = SigningKey::generate().unwrap();
        assert_eq!(
            check_segment(&bytes, &other.public_key()),
            Err(Inconsistency::BadSignature { tree_size: 20 })
        );
        assert_eq!(
            check_segment(b"not a segment", &public),
            Err(Inconsistency::SegmentMalformed { first: None })
        );
    }
}
