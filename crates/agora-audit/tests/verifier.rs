//! The verifier over a log of 50 entries with heads signed at 5, 20, 35 and 50: an honest log
//! verifies, and each kind of tampering is caught and named by position.

use agora_audit::{
    AuditEntry, Category, Inconsistency, MerkleTree, PublicKey, SignedTreeHead, SigningKey,
    StoredEntry, TreeHead, Verifier, VerifyReport, leaf_hash, verify_consistency, verify_inclusion,
};
use chrono::{DateTime, Duration, Utc};

const HEAD_SIZES: [u64; 4] = [5, 20, 35, 50];
/// Words that occur in entries' contents; no error message may contain them.
const CONTENT: [&str; 6] = ["alice", "bob", "query", "SELECT", "person", "p-7"];

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000).unwrap()
}

fn entry(seq: u64) -> AuditEntry {
    let mut detail = serde_json::Map::new();
    detail.insert("front".into(), "pg".into());
    detail.insert("statement".into(), "SELECT count(*) FROM person".into());
    detail.insert("rows".into(), 1.into());
    let refused = seq % 7 == 3;
    AuditEntry {
        seq,
        at: start() + Duration::seconds(seq as i64),
        category: if seq % 10 == 9 {
            Category::Governance
        } else {
            Category::Access
        },
        event: if refused {
            "query.refused"
        } else {
            "query.answered"
        }
        .into(),
        actor: if seq.is_multiple_of(2) {
            "alice"
        } else {
            "bob"
        }
        .into(),
        project: Some("p-7".into()),
        permit: Some("permit-1".into()),
        permit_version: Some(1),
        outcome: if refused { "refused" } else { "answered" }.into(),
        detail,
    }
}

fn stored(e: &AuditEntry) -> StoredEntry {
    let leaf = e.to_leaf();
    StoredEntry {
        seq: e.seq,
        leaf_hash: leaf_hash(&leaf),
        leaf,
    }
}

/// The heads a hub would have signed over `log` at HEAD_SIZES (those within the log), a
/// second apart after the entries they cover.
fn sign_heads(key: &SigningKey, log: &[StoredEntry]) -> Vec<SignedTreeHead> {
    let tree: MerkleTree = log.iter().map(|e| e.leaf_hash).collect();
    HEAD_SIZES
        .iter()
        .filter(|&&size| size <= tree.size())
        .map(|&size| {
            key.sign(TreeHead {
                tree_size: size,
                timestamp: start() + Duration::seconds(size as i64) + Duration::milliseconds(500),
                root_hash: tree.root_at(size).unwrap(),
            })
        })
        .collect()
}

struct Log {
    key: SigningKey,
    entries: Vec<StoredEntry>,
    heads: Vec<SignedTreeHead>,
}

fn honest(n: u64) -> Log {
    let (key, _) = SigningKey::generate().unwrap();
    let entries: Vec<StoredEntry> = (0..n).map(|seq| stored(&entry(seq))).collect();
    let heads = sign_heads(&key, &entries);
    Log {
        key,
        entries,
        heads,
    }
}

fn verify(
    key: PublicKey,
    entries: &[StoredEntry],
    heads: &[SignedTreeHead],
    checkpoint: Option<&SignedTreeHead>,
) -> Result<VerifyReport, Inconsistency> {
    let mut v = Verifier::new(key);
    for e in entries {
        v.entry(e.clone())?;
    }
    v.finish(heads, checkpoint)
}

fn check(log: &Log, checkpoint: Option<&SignedTreeHead>) -> Result<VerifyReport, Inconsistency> {
    let result = verify(log.key.public_key(), &log.entries, &log.heads, checkpoint);
    if let Err(e) = &result {
        let shown = format!("{e} {e:?}");
        for word in CONTENT {
            assert!(!shown.contains(word), "{shown:?} shows entry contents");
        }
    }
    result
}

fn head(log: &Log, size: u64) -> SignedTreeHead {
    log.heads
        .iter()
        .find(|h| h.head.tree_size == size)
        .unwrap()
        .clone()
}

#[test]
fn an_honest_log_verifies() {
    let log = honest(50);
    let report = check(&log, Some(&head(&log, 20))).unwrap();
    let tree: MerkleTree = log.entries.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(report.entries, 50);
    assert_eq!(report.heads, 4);
    assert_eq!(report.latest, Some(head(&log, 50)));
    assert_eq!(report.root, tree.root());
    assert_eq!(report.unsigned_entries, 0);

    // The heads' order does not matter.
    let mut shuffled = log.heads.clone();
    shuffled.reverse();
    shuffled.swap(0, 2);
    let again = verify(log.key.public_key(), &log.entries, &shuffled, None).unwrap();
    assert_eq!(again, report);

    // An empty log with no heads verifies too.
    let empty = verify(log.key.public_key(), &[], &[], None).unwrap();
    assert_eq!(
        (
            empty.entries,
            empty.heads,
            empty.latest,
            empty.unsigned_entries
        ),
        (0, 0, None, 0)
    );
}

#[test]
fn entries_after_the_latest_head_are_reported_unsigned() {
    let log = honest(57);
    let report = check(&log, None).unwrap();
    assert_eq!(report.entries, 57);
    assert_eq!(report.latest.unwrap().head.tree_size, 50);
    assert_eq!(report.unsigned_entries, 7);

    let no_heads = verify(log.key.public_key(), &log.entries, &[], None).unwrap();
    assert_eq!(no_heads.unsigned_entries, 57);
}

#[test]
fn the_signed_heads_prove_each_other_and_every_entry() {
    // What an outsider does with the public endpoint: consistency between successive heads,
    // inclusion of an entry under the latest head.
    let log = honest(50);
    let tree: MerkleTree = log.entries.iter().map(|e| e.leaf_hash).collect();
    let public = log.key.public_key();
    for pair in log.heads.windows(2) {
        let (old, new) = (&pair[0].head, &pair[1].head);
        public.verify(&pair[1]).unwrap();
        let proof = tree
            .consistency_proof(old.tree_size, new.tree_size)
            .unwrap();
        verify_consistency(
            old.tree_size,
            new.tree_size,
            &old.root_hash,
            &new.root_hash,
            &proof,
        )
        .unwrap();
    }
    let latest = &head(&log, 50).head;
    for e in &log.entries {
        let proof = tree.inclusion_proof(e.seq, latest.tree_size).unwrap();
        verify_inclusion(
            &e.leaf_hash,
            e.seq,
            latest.tree_size,
            &proof,
            &latest.root_hash,
        )
        .unwrap();
    }
}

#[test]
fn a_flipped_byte_is_named() {
    let mut log = honest(50);
    // A byte inside the statement text, and one inside the seq digits.
    let at = log.entries[17].leaf.len() / 2;
    log.entries[17].leaf[at] ^= 0x01;
    assert_eq!(check(&log, None), Err(Inconsistency::Altered { seq: 17 }));

    let mut log = honest(50);
    log.entries[23].leaf[7] ^= 0x01;
    assert_eq!(check(&log, None), Err(Inconsistency::Altered { seq: 23 }));
}

#[test]
fn an_altered_entry_with_its_hash_updated_is_caught_by_the_heads() {
    let mut log = honest(50);
    // The attacker turns a refusal into an answer and stores the matching leaf hash.
    let mut forged = entry(10);
    assert_eq!(forged.outcome, "refused");
    forged.outcome = "answered".into();
    log.entries[10] = stored(&forged);
    // Heads at 5 still match; the head at 20 is the first to cover entry 10.
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::HeadMismatch {
            tree_size: 20,
            after: 5
        })
    );

    // Before the first head, no matched head bounds the range below.
    let mut log = honest(50);
    let mut forged = entry(2);
    forged.actor = "mallory".into();
    log.entries[2] = stored(&forged);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::HeadMismatch {
            tree_size: 5,
            after: 0
        })
    );
}

#[test]
fn a_deleted_entry_is_named() {
    let mut log = honest(50);
    log.entries.remove(12);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::Missing {
            expected: 12,
            found: 13
        })
    );

    // The very first entry too.
    let mut log = honest(50);
    log.entries.remove(0);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::Missing {
            expected: 0,
            found: 1
        })
    );
}

#[test]
fn reordered_entries_are_named() {
    // Rows keep their seq; their leaves (and hashes) trade places.
    let mut log = honest(50);
    let (a, b) = (log.entries[30].clone(), log.entries[31].clone());
    log.entries[30].leaf = b.leaf;
    log.entries[30].leaf_hash = b.leaf_hash;
    log.entries[31].leaf = a.leaf;
    log.entries[31].leaf_hash = a.leaf_hash;
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::OutOfPlace {
            position: 30,
            seq: 31
        })
    );

    // A row repeated (a copy of an earlier row under its seq).
    let mut log = honest(50);
    let copy = log.entries[8].clone();
    log.entries.insert(9, copy);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::OutOfPlace {
            position: 9,
            seq: 8
        })
    );
}

#[test]
fn a_truncated_log_is_named() {
    let mut log = honest(50);
    log.entries.truncate(40);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::Truncated {
            entries: 40,
            signed: 50
        })
    );

    // The heads over the removed part are gone too, but the outsider's checkpoint is not.
    let checkpoint = head(&log, 50);
    log.heads.retain(|h| h.head.tree_size <= 40);
    assert_eq!(
        check(&log, Some(&checkpoint)),
        Err(Inconsistency::Truncated {
            entries: 40,
            signed: 50
        })
    );
}

#[test]
fn a_bad_signature_is_named() {
    let log = honest(50);
    let public = log.key.public_key();

    let mut heads = log.heads.clone();
    let mut sig = heads[2].signature.clone().into_bytes();
    sig[4] = if sig[4] == b'A' { b'B' } else { b'A' };
    heads[2].signature = String::from_utf8(sig).unwrap();
    assert_eq!(
        verify(public.clone(), &log.entries, &heads, None),
        Err(Inconsistency::BadSignature { tree_size: 35 })
    );

    // A head whose root was changed after signing (to match a rewritten log).
    let mut heads = log.heads.clone();
    heads[1].head.root_hash[0] ^= 1;
    assert_eq!(
        verify(public.clone(), &log.entries, &heads, None),
        Err(Inconsistency::BadSignature { tree_size: 20 })
    );

    // A head signed by another key.
    let (other, _) = SigningKey::generate().unwrap();
    let mut heads = log.heads.clone();
    heads[3] = other.sign(heads[3].head.clone());
    assert_eq!(
        verify(public.clone(), &log.entries, &heads, None),
        Err(Inconsistency::BadSignature { tree_size: 50 })
    );

    // The checkpoint, likewise.
    let foreign = other.sign(log.heads[1].head.clone());
    assert_eq!(
        verify(public, &log.entries, &log.heads, Some(&foreign)),
        Err(Inconsistency::BadCheckpointSignature { tree_size: 20 })
    );
}

#[test]
fn a_re_signed_fork_is_caught_by_an_outsiders_checkpoint() {
    let mut log = honest(50);
    let checkpoint = head(&log, 35);

    // The attacker holds the key: rewrites entry 10 with its hash and re-signs every head.
    let mut forged = entry(10);
    forged.outcome = "answered".into();
    forged.event = "query.answered".into();
    log.entries[10] = stored(&forged);
    log.heads = sign_heads(&log.key, &log.entries);

    // On its own the rewritten log is self-consistent: only an outside record can tell.
    assert!(check(&log, None).is_ok());
    assert_eq!(
        check(&log, Some(&checkpoint)),
        Err(Inconsistency::CheckpointMismatch { tree_size: 35 })
    );
}

#[test]
fn a_head_dated_before_a_smaller_one_is_a_rollback() {
    let mut log = honest(50);
    // The head over 35 entries claims a time before the head over 20.
    let mut early = log.heads[2].head.clone();
    early.timestamp = log.heads[1].head.timestamp - Duration::seconds(1);
    log.heads[2] = log.key.sign(early);
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::Rollback {
            tree_size: 20,
            larger: 35
        })
    );
}

#[test]
fn a_leaf_moved_with_its_hash_or_unreadable_is_named() {
    // A leaf claiming another seq, with a matching hash, in the next row.
    let mut log = honest(50);
    let mut moved = entry(7);
    moved.at += Duration::seconds(1);
    let mut row = stored(&moved);
    row.seq = 8;
    log.entries[8] = row;
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::OutOfPlace {
            position: 8,
            seq: 7
        })
    );

    // Bytes that are not an entry, with a matching hash.
    let mut log = honest(50);
    let junk = b"{\"not\":\"an entry\"}".to_vec();
    log.entries[44] = StoredEntry {
        seq: 44,
        leaf_hash: leaf_hash(&junk),
        leaf: junk,
    };
    assert_eq!(check(&log, None), Err(Inconsistency::Altered { seq: 44 }));
}

#[test]
fn signed_heads_round_trip_as_json_checkpoints() {
    let log = honest(50);
    let json = serde_json::to_string(&head(&log, 35)).unwrap();
    let checkpoint: SignedTreeHead = serde_json::from_str(&json).unwrap();
    assert!(check(&log, Some(&checkpoint)).is_ok());
}

#[test]
fn two_signed_heads_of_one_size_with_different_roots_are_a_fork() {
    let mut log = honest(50);
    // The key also signed another log's head over 20 entries, later than the honest one.
    let mut other = log.heads[1].head.clone();
    other.root_hash[5] ^= 1;
    other.timestamp += Duration::seconds(1);
    log.heads.push(log.key.sign(other.clone()));
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::ConflictingHeads { tree_size: 20 })
    );
    // Earlier than the honest one, the same.
    other.timestamp -= Duration::seconds(2);
    log.heads.pop();
    log.heads.push(log.key.sign(other));
    assert_eq!(
        check(&log, None),
        Err(Inconsistency::ConflictingHeads { tree_size: 20 })
    );
}
