//! Pseudonymization primitives. Pure functions over bytes and text: no I/O, no logging, and no value
//! ever ends up in an error message or a `Debug` output.
//!
//! A *hub person key* replaces every direct person identifier before data reaches the lake.
//! It is derived with HMAC-SHA256 under the hub secret from the person's source identity, so
//! the same identity always gets the same key (linkage across ingests and datasets) while
//! nobody without the secret can recompute or reverse it.
//!
//! ```
//! use agora_privacy::{HubSecret, PersonKeyer};
//! let secret = HubSecret::from_bytes([7u8; 32]);
//! let keyer = PersonKeyer::new(&secret);
//! let a = keyer.derive(b"1 84 12 75 108 123 45", 0);
//! let b = keyer.derive(b"1 84 12 75 108 123 45", 0);
//! assert_eq!(a, b);
//! assert!(a.key > 0);
//! ```
//!
//! Identifiers are first brought to one canonical form ([`source_identity`]): ingest and
//! the opt-out registry call the same function, so every typing of an identifier reaches
//! the same key. A person identified by several values together (SNDS: number and rank)
//! keys their canonical forms, length-prefixed ([`composite_source_identity`]).
//!
//! FHIR resource ids get keyed pseudonyms of their own ([`ResourceKeyer`]).
//!
//! Differential privacy ([`dp`]): exact integer noise (discrete Laplace, discrete
//! Gaussian) for released counts and sums, calibrated from (sensitivity, ε, δ), drawn from a
//! keyed stream that gives the same question the same noise.
//!
//! Per-project pseudonyms ([`ProjectPseudonyms`]): inside a project, every hub person key is
//! shown re-keyed by a keyed permutation of the key domain (an AES-based Feistel network
//! under a key derived from the hub secret and the project id), so two projects' results
//! cannot be joined.
//!
//! Not here: the person registry that makes keys collision-free and the privacy budget
//! ledger (they need storage, see `agora-govern`) and the rest of disclosure control (the
//! query service's output step).

#![warn(missing_docs)]

pub mod dp;
mod identity;
mod person_key;
mod pseudonym;
mod resource_key;
mod secret;

pub use dp::{
    CountMechanism, DpError, IntegerNoise, NoiseKind, NoiseSource, NoiseStream, SumMechanism,
    question_hash,
};
pub use identity::{
    IdentifierError, IdentityKind, composite_source_identity, normalize_identifier, source_identity,
};
pub use person_key::{PersonDigest, PersonKeyer};
pub use pseudonym::{PSEUDONYM_ROUNDS, ProjectPseudonyms, PseudonymKeys};
pub use resource_key::{ResourceDigest, ResourceKeyer};
pub use secret::{HubSecret, SECRET_LEN, SecretError};
