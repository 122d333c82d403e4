//! The Merkle tree of RFC 6962 §2.1, its audit paths and consistency proofs, and the
//! verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node's hash or a tree's root.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 || leaf) (RFC 6962 §2.1). The prefix keeps a leaf from
/// ever passing for an interior node (second-preimage resistance).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right) (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a proof could not be produced or did not verify. Names sizes and indices only.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not inside the tree of that size.
    #[error("leaf {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    /// The requested tree size is larger than the tree.
    #[error("tree size {size} is beyond the {tree_size} leaves held")]
    SizeOutOfRange { size: u64, tree_size: u64 },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("the old tree size {old_size} is larger than the new tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    /// The proof has the wrong number of hashes for the sizes (and index) given.
    #[error("the proof has {got} hashes where {expected} are needed")]
    WrongLength { expected: usize, got: usize },
    /// The proof does not lead to the given root(s).
    #[error("the proof does not lead to the given root")]
    RootMismatch,
}

/// The largest power of two strictly smaller than `n` (n ≥ 2): RFC 6962's split point `k`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The tree over leaf hashes. Every complete, aligned subtree's hash is kept
/// (`levels[l][i]` = MTH of leaves `[i·2^l, (i+1)·2^l)`), so that the root at any earlier size,
/// audit paths and consistency proofs take O(log n) hashes instead of a pass over the leaves.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf (its hash, see [`leaf_hash`]), completing the subtrees it closes.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut level = 0;
        let mut hash = leaf_hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            // An even count means the last two form a complete subtree one level up.
            if !row.len().is_multiple_of(2) {
                break;
            }
            hash = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// The Merkle Tree Hash of all leaves.
    pub fn root(&self) -> Hash {
        match self.size() {
            0 => empty_root(),
            n => self.subtree(0, n),
        }
    }

    /// The Merkle Tree Hash of the first `size` leaves: the root the tree had at that size.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(match size {
            0 => empty_root(),
            n => self.subtree(0, n),
        })
    }

    /// The hash of leaf `index`, if the tree holds it.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let index = usize::try_from(index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves: RFC 6962's
    /// `PATH(index, D[0:size])`, leaf-side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        // Walk down from the root; the RFC appends each sibling after the deeper part of the
        // path, so the siblings collected top-down are reversed at the end.
        let (mut m, mut start, mut end) = (index, 0, size);
        let mut path = Vec::new();
        while end - start > 1 {
            let k = split(end - start);
            if m < k {
                path.push(self.subtree(start + k, end));
                end = start + k;
            } else {
                path.push(self.subtree(start, start + k));
                m -= k;
                start += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The consistency proof between the trees of the first `old_size` and `new_size` leaves:
    /// RFC 6962's `PROOF(old_size, D[0:new_size])`. Empty when `old_size` is 0 or equals
    /// `new_size` (there is nothing to prove).
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(ProofError::SizesOutOfOrder { old_size, new_size });
        }
        if old_size == 0 || old_size == new_size {
            return Ok(Vec::new());
        }
        // SUBPROOF(m, D[start:end], b), unrolled top-down, reversed at the end as for PATH.
        let (mut m, mut start, mut end, mut whole) = (old_size, 0, new_size, true);
        let mut proof = Vec::new();
        loop {
            let n = end - start;
            if m == n {
                // The old tree's root itself is left out only when it is the whole old tree,
                // which the verifier already has.
                if !whole {
                    proof.push(self.subtree(start, end));
                }
                break;
            }
            let k = split(n);
            if m <= k {
                proof.push(self.subtree(start + k, end));
                end = start + k;
            } else {
                proof.push(self.subtree(start, start + k));
                m -= k;
                start += k;
                whole = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// The range proof of leaves `[start, end)` in the tree of the first `size` leaves: the
    /// roots of the subtrees RFC 6962's recursion meets that lie wholly outside the range,
    /// left to right. With the range's own leaves it rebuilds the root at `size`
    /// ([`verify_range`]): how an archived segment of the log is checked against a signed head
    /// without the rest of the log. O(log n) hashes (the two paths bounding the range).
    pub fn range_proof(&self, start: u64, end: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        check_range(start, end, size)?;
        let mut proof = Vec::new();
        self.range_siblings(0, size, start, end, &mut proof);
        Ok(proof)
    }

    fn range_siblings(&self, lo: u64, hi: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        if hi <= start || end <= lo {
            out.push(self.subtree(lo, hi));
        } else if !(start <= lo && hi <= end) {
            let k = split(hi - lo);
            self.range_siblings(lo, lo + k, start, end, out);
            self.range_siblings(lo + k, hi, start, end, out);
        }
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let tree_size = self.size();
        if size > tree_size {
            return Err(ProofError::SizeOutOfRange { size, tree_size });
        }
        Ok(())
    }

    /// MTH(D[start:end]) for a range that RFC 6962's recursion produces (non-empty, within the
    /// tree). Complete aligned ranges are looked up; the rest split along the right edge, so
    /// this costs O(log n).
    fn subtree(&self, start: u64, end: u64) -> Hash {
        #[cfg(test)]
        tests::SUBTREE_CALLS.with(|c| c.set(c.get() + 1));
        let n = end - start;
        debug_assert!(n > 0 && end <= self.size());
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(start >> level) as usize];
        }
        let k = split(n);
        node_hash(
            &self.subtree(start, start + k),
            &self.subtree(start + k, end),
        )
    }
}

impl FromIterator<Hash> for MerkleTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(iter: I) -> Self {
        let mut tree = Self::new();
        tree.extend(iter);
        tree
    }
}

impl Extend<Hash> for MerkleTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, iter: I) {
        for hash in iter {
            self.push(hash);
        }
    }
}

/// The number of hashes in the audit path of `index` in a tree of `size` (index < size):
/// the levels below the point where the paths to `index` and to the last leaf part, plus one
/// per left sibling above it.
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Checks that `proof` is the audit path of the leaf with hash `leaf_hash` at `index` in the
/// tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The length is fixed by index and size; checking it first gives a clear error for
    // truncated or padded proofs (the RFC's loop would also fail on them).
    let expected = inclusion_len(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

fn check_range(start: u64, end: u64, size: u64) -> Result<(), ProofError> {
    if start >= end {
        return Err(ProofError::SizesOutOfOrder {
            old_size: start,
            new_size: end,
        });
    }
    if end > size {
        return Err(ProofError::IndexOutOfRange {
            index: end - 1,
            size,
        });
    }
    Ok(())
}

/// Checks that `leaves` (hashes, in order) are the leaves `[start, start + leaves.len())` of
/// the tree of `size` leaves whose root is `root`, given their [`MerkleTree::range_proof`].
pub fn verify_range(
    start: u64,
    leaves: &[Hash],
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let end = start + leaves.len() as u64;
    check_range(start, end, size)?;
    let expected = range_len(0, size, start, end);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    let rebuilt = range_root(0, size, start, leaves, &mut proof.iter());
    if rebuilt != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The number of hashes in the range proof of `[start, end)` in D[lo:hi].
fn range_len(lo: u64, hi: u64, start: u64, end: u64) -> usize {
    if hi <= start || end <= lo {
        1
    } else if start <= lo && hi <= end {
        0
    } else {
        let k = split(hi - lo);
        range_len(lo, lo + k, start, end) + range_len(lo + k, hi, start, end)
    }
}

/// MTH(D[lo:hi]) from the range's leaves and, for subtrees outside it, the proof's next hash
/// (the caller checked the proof's length).
fn range_root<'a>(
    lo: u64,
    hi: u64,
    start: u64,
    leaves: &[Hash],
    proof: &mut impl Iterator<Item = &'a Hash>,
) -> Hash {
    let end = start + leaves.len() as u64;
    if hi <= start || end <= lo {
        return proof.next().copied().unwrap_or_default();
    }
    if hi - lo == 1 {
        return leaves[(lo - start) as usize];
    }
    let k = split(hi - lo);
    let left = range_root(lo, lo + k, start, leaves, proof);
    let right = range_root(lo + k, hi, start, leaves, proof);
    node_hash(&left, &right)
}

/// The number of hashes in the consistency proof from `old_size` to `new_size`
/// (0 < old_size < new_size): the audit path of the old tree's last leaf in the new tree, less
/// the levels inside the old tree's last complete subtree, plus that subtree's root unless it
/// is the whole old tree.
fn consistency_len(old_size: u64, new_size: u64) -> usize {
    let shift = old_size.trailing_zeros() as usize;
    let last = old_size - 1;
    let inner = (64 - (last ^ (new_size - 1)).leading_zeros()) as usize;
    let border = last.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    let seed = usize::from(!old_size.is_power_of_two());
    seed + inner - shift + border
}

/// Checks that `proof` shows the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2). Equal sizes need an
/// empty proof and equal roots; every tree extends the empty one (old_root must then be
/// [`empty_root`]).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        let same = if old_size == 0 {
            *old_root == empty_root()
        } else {
            old_root == new_root
        };
        return if same {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let expected = consistency_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    // When the old tree is itself a complete subtree its root starts the path (RFC step 2).
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        *old_root
    } else {
        *path
            .next()
            .expect("the length check leaves at least one hash")
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in path {
        if s == 0 {
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        pub(super) static SUBTREE_CALLS: Cell<u64> = const { Cell::new(0) };
    }

    fn calls<T>(f: impl FnOnce() -> T) -> (T, u64) {
        SUBTREE_CALLS.with(|c| c.set(0));
        let out = f();
        (out, SUBTREE_CALLS.with(Cell::get))
    }

    /// Roots at earlier sizes and proofs read the kept subtree hashes: the work grows with the
    /// tree's height, not its size.
    #[test]
    fn roots_and_proofs_take_logarithmic_work() {
        let n: u64 = 100_003;
        let tree: MerkleTree = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for size in (1..=n)
            .step_by(997)
            .chain([n, n - 1, 1 << 16, (1 << 16) + 1])
        {
            let bound = 4 * u64::from(64 - size.leading_zeros()) + 4;
            let (_, c) = calls(|| tree.root_at(size).unwrap());
            assert!(c <= bound, "root_at({size}): {c} subtree hashes");
            for index in [0, size / 3, size - 1] {
                let (_, c) = calls(|| tree.inclusion_proof(index, size).unwrap());
                assert!(c <= bound, "inclusion_proof({index}, {size}): {c}");
            }
            for old in [1, size / 2 + 1, size] {
                let (_, c) = calls(|| tree.consistency_proof(old.min(size), size).unwrap());
                assert!(c <= bound, "consistency_proof({old}, {size}): {c}");
            }
        }
    }

    /// Every range of every small tree proves against the root, and a changed leaf, a
    /// shifted start or a short proof does not.
    #[test]
    fn range_proofs_rebuild_the_root() {
        let all: Vec<Hash> = (0..37u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        for size in 1..=all.len() as u64 {
            let tree: MerkleTree = all[..size as usize].iter().copied().collect();
            let root = tree.root();
            for start in 0..size {
                for end in start + 1..=size {
                    let leaves = &all[start as usize..end as usize];
                    let proof = tree.range_proof(start, end, size).unwrap();
                    assert_eq!(verify_range(start, leaves, size, &proof, &root), Ok(()));
                    assert!(proof.len() <= 2 * (64 - size.leading_zeros()) as usize);
                    let mut changed = leaves.to_vec();
                    changed[0][0] ^= 1;
                    assert!(verify_range(start, &changed, size, &proof, &root).is_err());
                    if end < size {
                        assert!(verify_range(start + 1, leaves, size, &proof, &root).is_err());
                    }
                    if let Some((_, short)) = proof.split_last() {
                        assert!(verify_range(start, leaves, size, short, &root).is_err());
                    }
                }
            }
        }
        let tree: MerkleTree = all.iter().copied().collect();
        assert!(tree.range_proof(3, 3, 10).is_err());
        assert!(tree.range_proof(3, 11, 10).is_err());
        assert!(tree.range_proof(0, 1, 38).is_err());
    }

    #[test]
    fn kept_levels_are_the_complete_subtrees() {
        let tree: MerkleTree = (0..11u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let lens: Vec<usize> = tree.levels.iter().map(Vec::len).collect();
        assert_eq!(lens, [11, 5, 2, 1]);
        assert_eq!(tree.levels[3][0], tree.root_at(8).unwrap());
        assert_eq!(
            tree.levels[1][4],
            node_hash(&tree.levels[0][8], &tree.levels[0][9])
        );
    }
}
