//! The tamper-evident audit log's pure core, after Certificate Transparency.
//!
//! Every audit entry ([`AuditEntry`]) is a leaf of a Merkle tree built exactly as RFC 6962
//! §2.1 defines it ([`MerkleTree`]: leaf and node hashes with 0x00/0x01 prefixes, the split at
//! the largest power of two below the size, audit paths PATH and consistency proofs PROOF).
//! The hub signs tree heads (size, time, root) with Ed25519 ([`SigningKey`],
//! [`SignedTreeHead`]); anyone with the public key checks inclusion and consistency proofs with
//! the verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 ([`verify_inclusion`],
//! [`verify_consistency`]), and keeps a signed head as a checkpoint. The [`Verifier`] recomputes
//! the whole tree from the stored entries, checks every signed head and a checkpoint against
//! it, and names the first inconsistency ([`Inconsistency`]) by position, never by content.
//!
//! What it is not: there is no I/O here, no database and no clock. Storing entries, heads and
//! the key file, serving the public endpoint and running `agora audit verify` happen in the
//! crates that call this one.
//!
//! ```
//! use agora_audit::{AuditEntry, Category, MerkleTree, SigningKey, TreeHead, leaf_hash, verify_inclusion};
//!
//! let mut tree = MerkleTree::new();
//! for seq in 0..5 {
//!     let entry = AuditEntry {
//!         seq,
//!         at: chrono::Utc::now(),
//!         category: Category::Access,
//!         event: "query.answered".into(),
//!         actor: "alice".into(),
//!         project: Some("p1".into()),
//!         permit: None,
//!         permit_version: None,
//!         outcome: "answered".into(),
//!         detail: Default::default(),
//!     };
//!     tree.push(leaf_hash(&entry.to_leaf()));
//! }
//!
//! let (key, _pkcs8) = SigningKey::generate()?;
//! let sth = key.sign(TreeHead { tree_size: tree.size(), timestamp: chrono::Utc::now(), root_hash: tree.root() });
//! key.public_key().verify(&sth)?;
//!
//! // Entry 3 is in the signed tree.
//! let proof = tree.inclusion_proof(3, sth.head.tree_size)?;
//! verify_inclusion(&tree.leaf(3).unwrap(), 3, sth.head.tree_size, &proof, &sth.head.root_hash)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod entry;
mod head;
mod merkle;
mod segment;
mod verify;

pub use entry::{AuditEntry, Category};
pub use head::{
    KeyError, PublicKey, SIGNING_DOMAIN, SignatureError, SignedTreeHead, SigningKey, TreeHead,
};
pub use merkle::{
    Hash, MerkleTree, ProofError, empty_root, leaf_hash, node_hash, verify_consistency,
    verify_inclusion, verify_range,
};
pub use segment::{SEGMENT_FORMAT, Segment, SegmentHeader, check_segment, write_segment};
pub use verify::{Inconsistency, StoredEntry, Verifier, VerifyReport};
