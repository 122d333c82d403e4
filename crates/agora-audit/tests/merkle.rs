//! The tree against RFC 6962 §2.1 as written: naive recursive MTH, PATH and PROOF over the
//! leaves, fixed vectors computed here from SHA-256 directly, and the RFC 9162 verifiers
//! accepting every honest proof and rejecting altered ones.

use agora_audit::{
    Hash, MerkleTree, ProofError, empty_root, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// ---- The reference: RFC 6962 §2.1, recursion as the RFC writes it, over leaf data. ----

fn k_of(n: usize) -> usize {
    // The largest power of two smaller than n, by counting up.
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => Sha256::digest([]).into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(&d[0]);
            h.finalize().into()
        }
        n => {
            let k = k_of(n);
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(mth(&d[..k]));
            h.update(mth(&d[k..]));
            h.finalize().into()
        }
    }
}

fn path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    if n == 1 {
        return Vec::new();
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
}

fn tree_of(d: &[Vec<u8>]) -> MerkleTree {
    d.iter().map(|l| leaf_hash(l)).collect()
}

// ---- Fixed vectors. ----

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(hex::encode(empty_root()), expected);
    assert_eq!(hex::encode(MerkleTree::new().root()), expected);
    assert_eq!(hex::encode(MerkleTree::new().root_at(0).unwrap()), expected);
    assert_eq!(MerkleTree::new().size(), 0);
}

#[test]
fn small_roots_by_hand() {
    let sha = |bytes: &[u8]| -> Hash { Sha256::digest(bytes).into() };
    let (a, b, c) = (b"a".as_slice(), b"b".as_slice(), b"c".as_slice());
    let ha = sha(&[&[0u8][..], a].concat());
    let hb = sha(&[&[0u8][..], b].concat());
    let hc = sha(&[&[0u8][..], c].concat());
    assert_eq!(leaf_hash(a), ha);
    assert_eq!(node_hash(&ha, &hb), sha(&[&[1u8][..], &ha, &hb].concat()));

    let mut tree = MerkleTree::new();
    tree.push(ha);
    assert_eq!(tree.root(), ha, "a one-leaf tree's root is its leaf hash");
    tree.push(hb);
    let hab = sha(&[&[1u8][..], &ha, &hb].concat());
    assert_eq!(tree.root(), hab);
    tree.push(hc);
    // Three leaves split 2 + 1: the lone third leaf is not paired with itself.
    assert_eq!(tree.root(), sha(&[&[1u8][..], &hab, &hc].concat()));
    assert_eq!(tree.root_at(2).unwrap(), hab);
    assert_eq!(tree.root_at(1).unwrap(), ha);
    assert_eq!(tree.leaf(2), Some(hc));
    assert_eq!(tree.leaf(3), None);

    // A well-known value: SHA-256 of the single byte 0x00 is the hash of an empty leaf.
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    // Proofs of the 3-leaf tree, by hand.
    assert_eq!(tree.inclusion_proof(0, 3).unwrap(), vec![hb, hc]);
    assert_eq!(tree.inclusion_proof(2, 3).unwrap(), vec![hab]);
    assert_eq!(tree.consistency_proof(1, 3).unwrap(), vec![hb, hc]);
    assert_eq!(tree.consistency_proof(2, 3).unwrap(), vec![hc]);
}

#[test]
fn out_of_range_requests_are_errors() {
    let tree = tree_of(&leaves(5));
    assert_eq!(
        tree.root_at(6),
        Err(ProofError::SizeOutOfRange {
            size: 6,
            tree_size: 5
        })
    );
    assert_eq!(
        tree.inclusion_proof(5, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        tree.inclusion_proof(0, 6),
        Err(ProofError::SizeOutOfRange {
            size: 6,
            tree_size: 5
        })
    );
    assert_eq!(
        tree.inclusion_proof(0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        tree.consistency_proof(4, 3),
        Err(ProofError::SizesOutOfOrder {
            old_size: 4,
            new_size: 3
        })
    );
    assert_eq!(
        tree.consistency_proof(1, 6),
        Err(ProofError::SizeOutOfRange {
            size: 6,
            tree_size: 5
        })
    );
    assert_eq!(tree.consistency_proof(0, 5).unwrap(), Vec::<Hash>::new());
    assert_eq!(tree.consistency_proof(5, 5).unwrap(), Vec::<Hash>::new());
}

#[test]
fn trivial_consistency() {
    let tree = tree_of(&leaves(5));
    let (r3, r5) = (tree.root_at(3).unwrap(), tree.root());
    // Every tree extends the empty one; a tree extends itself.
    verify_consistency(0, 5, &empty_root(), &r5, &[]).unwrap();
    verify_consistency(5, 5, &r5, &r5, &[]).unwrap();
    assert_eq!(
        verify_consistency(3, 3, &r3, &r5, &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(0, 5, &r3, &r5, &[]),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(5, 5, &r5, &r5, &[r3]),
        Err(ProofError::WrongLength {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        verify_consistency(5, 3, &r5, &r3, &[]),
        Err(ProofError::SizesOutOfOrder {
            old_size: 5,
            new_size: 3
        })
    );
    assert_eq!(
        verify_inclusion(&r3, 0, 0, &[], &r3),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
}

// ---- Every size, index and old size up to 64 against the reference. ----

#[test]
fn exhaustive_small_trees_equal_the_reference() {
    let d = leaves(64);
    let tree = tree_of(&d);
    for n in 1..=64usize {
        let root = mth(&d[..n]);
        assert_eq!(tree.root_at(n as u64).unwrap(), root, "root at {n}");
        assert_eq!(tree_of(&d[..n]).root(), root, "root of a tree of {n}");
        for m in 0..n {
            let p = tree.inclusion_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, path(m, &d[..n]), "PATH({m}, D[{n}])");
            verify_inclusion(&leaf_hash(&d[m]), m as u64, n as u64, &p, &root).unwrap();
        }
        for m in 1..n {
            let p = tree.consistency_proof(m as u64, n as u64).unwrap();
            assert_eq!(p, proof(m, &d[..n]), "PROOF({m}, D[{n}])");
            verify_consistency(m as u64, n as u64, &mth(&d[..m]), &root, &p).unwrap();
        }
    }
}

// ---- Random sizes up to 300. ----

fn wrong_length(r: Result<(), ProofError>) -> bool {
    matches!(r, Err(ProofError::WrongLength { .. }))
}

fn flip(proof: &[Hash], at: usize, byte: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[at][byte % 32] ^= 1;
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn tree_equals_reference(n in 1usize..300, picks in any::<(u64, u64, u64)>()) {
        let d = leaves(n);
        let tree = tree_of(&d);
        prop_assert_eq!(tree.size(), n as u64);
        prop_assert_eq!(tree.root(), mth(&d));
        let s = 1 + (picks.0 as usize) % n;
        prop_assert_eq!(tree.root_at(s as u64).unwrap(), mth(&d[..s]));
        let m = (picks.1 as usize) % s;
        prop_assert_eq!(tree.inclusion_proof(m as u64, s as u64).unwrap(), path(m, &d[..s]));
        let old = 1 + (picks.2 as usize) % s;
        prop_assert_eq!(tree.consistency_proof(old as u64, s as u64).unwrap(), proof(old, &d[..s]));
    }

    #[test]
    fn inclusion_accepts_honest_and_rejects_altered(
        n in 1usize..300, i in any::<u64>(), which in any::<usize>(), byte in any::<usize>(),
    ) {
        let d = leaves(n);
        let tree = tree_of(&d);
        let size = n as u64;
        let index = i % size;
        let leaf = tree.leaf(index).unwrap();
        let root = tree.root();
        let p = tree.inclusion_proof(index, size).unwrap();
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &p, &root), Ok(()));

        // Any one hash changed: each position of the path, the leaf, the root.
        for at in 0..p.len() {
            prop_assert!(verify_inclusion(&leaf, index, size, &flip(&p, at, byte), &root).is_err());
        }
        let mut other_leaf = leaf;
        other_leaf[byte % 32] ^= 1;
        prop_assert!(verify_inclusion(&other_leaf, index, size, &p, &root).is_err());
        let mut other_root = root;
        other_root[byte % 32] ^= 1;
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &p, &other_root), Err(ProofError::RootMismatch));

        // Truncated, or padded.
        if !p.is_empty() {
            let short = &p[..p.len() - 1 - which % p.len()];
            prop_assert!(wrong_length(verify_inclusion(&leaf, index, size, short, &root)));
        }
        let mut long = p.clone();
        long.push(root);
        prop_assert!(wrong_length(verify_inclusion(&leaf, index, size, &long, &root)));

        // The wrong size, against that size's own root (what a head for it would sign).
        for other in [size - 1, size + 1] {
            if other > index && other != size {
                let d2 = leaves(other as usize);
                let root2 = mth(&d2);
                prop_assert!(verify_inclusion(&leaf, index, other, &p, &root2).is_err(), "size {}", other);
            }
        }
        // The wrong index.
        if size > 1 {
            let wrong = (index + 1 + which as u64 % (size - 1)) % size;
            prop_assert!(verify_inclusion(&leaf, wrong, size, &p, &root).is_err());
        }
    }

    #[test]
    fn consistency_accepts_honest_and_rejects_altered(
        n in 2usize..300, o in any::<u64>(), which in any::<usize>(), byte in any::<usize>(),
    ) {
        let d = leaves(n);
        let tree = tree_of(&d);
        let new = n as u64;
        let old = 1 + o % (new - 1);
        let (old_root, new_root) = (tree.root_at(old).unwrap(), tree.root());
        let p = tree.consistency_proof(old, new).unwrap();
        prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &p), Ok(()));

        for at in 0..p.len() {
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &flip(&p, at, byte)).is_err());
        }
        let mut bad_old = old_root;
        bad_old[byte % 32] ^= 1;
        prop_assert!(verify_consistency(old, new, &bad_old, &new_root, &p).is_err());
        let mut bad_new = new_root;
        bad_new[byte % 32] ^= 1;
        prop_assert!(verify_consistency(old, new, &old_root, &bad_new, &p).is_err());

        // A proof is never empty between different non-zero sizes, so truncation is visible.
        prop_assert!(!p.is_empty());
        let short = &p[..p.len() - 1 - which % p.len()];
        prop_assert!(wrong_length(verify_consistency(old, new, &old_root, &new_root, short)));
        let mut long = p.clone();
        long.push(new_root);
        prop_assert!(wrong_length(verify_consistency(old, new, &old_root, &new_root, &long)));

        // Wrong sizes, against those sizes' own roots.
        for other in [old - 1, old + 1] {
            if other >= 1 && other < new && other != old {
                let r = tree.root_at(other).unwrap();
                prop_assert!(verify_consistency(other, new, &r, &new_root, &p).is_err(), "old {}", other);
            }
        }
        for other in [new - 1, new + 1] {
            if other > old && other != new {
                let r = mth(&leaves(other as usize));
                prop_assert!(verify_consistency(old, other, &old_root, &r, &p).is_err(), "new {}", other);
            }
        }
        // A different, unrelated old tree of the same size does not pass.
        let forged: Vec<Vec<u8>> = (0..old).map(|i| format!("forged {i}").into_bytes()).collect();
        prop_assert!(verify_consistency(old, new, &mth(&forged), &new_root, &p).is_err());
    }
}

/// Roots at earlier sizes and proofs come from the kept subtree hashes: pushing leaves one by
/// one gives the same tree as collecting them, and every earlier root agrees with a tree cut
/// at that size.
#[test]
fn incremental_equals_batch() {
    let d = leaves(300);
    let mut grown = MerkleTree::new();
    for (i, l) in d.iter().enumerate() {
        grown.push(leaf_hash(l));
        let cut = tree_of(&d[..=i]);
        assert_eq!(grown.root(), cut.root());
    }
    for s in 0..=300u64 {
        assert_eq!(grown.root_at(s).unwrap(), tree_of(&d[..s as usize]).root());
    }
}
