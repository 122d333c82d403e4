//! Tree heads and their Ed25519 signatures: what the hub signs, serves and what outsiders keep.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SubsecRound as _, Utc};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The domain separator that starts every signed tree head's signing input, so a signature
/// over a head can never be replayed as a signature over anything else the key might sign.
pub const SIGNING_DOMAIN: &[u8] = b"agora-audit-tree-head-v1\n";

/// A tree head: the log's size and root at a moment. What the hub signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeHead {
    pub tree_size: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(with = "hex_hash")]
    pub root_hash: Hash,
}

impl TreeHead {
    /// The bytes signed, fixed and unambiguous (each field is decimal or hex and ends in a
    /// newline):
    ///
    /// ```text
    /// agora-audit-tree-head-v1\n
    /// <tree_size, decimal>\n
    /// <timestamp, decimal milliseconds since the Unix epoch (may be negative)>\n
    /// <root_hash, 64 lower-case hex digits>\n
    /// ```
    ///
    /// Timestamps are signed at millisecond precision; [`SigningKey::sign`] truncates to it and
    /// [`PublicKey::verify`] refuses a head with a finer timestamp, so that no two different
    /// heads share a signing input.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIGNING_DOMAIN.len() + 100);
        out.extend_from_slice(SIGNING_DOMAIN);
        out.extend_from_slice(
            format!(
                "{}\n{}\n{}\n",
                self.tree_size,
                self.timestamp.timestamp_millis(),
                hex::encode(self.root_hash)
            )
            .as_bytes(),
        );
        out
    }
}

/// A signed tree head, as stored, served on the public endpoint, and kept by outsiders as a
/// checkpoint. Its JSON is flat: `tree_size`, `timestamp` (RFC 3339), `root_hash` (hex),
/// `key_id`, `signature`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedTreeHead {
    #[serde(flatten)]
    pub head: TreeHead,
    /// Hex SHA-256 of the signer's 32-byte Ed25519 public key ([`PublicKey::key_id`]).
    pub key_id: String,
    /// Standard base64 of the 64-byte Ed25519 signature over [`TreeHead::signing_input`].
    pub signature: String,
}

/// Why a key could not be made or read. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("could not generate a signing key")]
    Generate,
    #[error("not an Ed25519 PKCS#8 key: {0}")]
    Rejected(String),
    #[error("an Ed25519 public key has 32 bytes, not {0}")]
    WrongLength(usize),
    #[error("the public key is not valid base64")]
    Base64,
}

/// Why a signed tree head did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the head names another signing key")]
    WrongKey,
    #[error("the signature is not base64 of 64 bytes")]
    Malformed,
    #[error("the timestamp is finer than milliseconds, so it cannot have been signed")]
    NotCanonical,
    #[error("the signature does not match the head")]
    Invalid,
}

/// The hub's Ed25519 signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    // The private key must never reach a log; the key id says which key it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key and its PKCS#8 v2 document, which the caller stores (mode 0600).
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
        let key = Self::from_pkcs8(document.as_ref())?;
        Ok((key, document.as_ref().to_vec()))
    }

    /// Reads a PKCS#8 Ed25519 key: v2 (as [`SigningKey::generate`] writes; its public key is
    /// checked against the private one) or v1 (as `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pkcs8(document: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(document)
            .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(Self { pair })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// Signs a head. Its timestamp is first truncated to whole milliseconds, the precision
    /// signed (see [`TreeHead::signing_input`]), so the returned head is exactly what was signed.
    pub fn sign(&self, mut head: TreeHead) -> SignedTreeHead {
        head.timestamp = head.timestamp.trunc_subsecs(3);
        let signature = self.pair.sign(&head.signing_input());
        SignedTreeHead {
            head,
            key_id: self.public_key().key_id(),
            signature: STANDARD.encode(signature.as_ref()),
        }
    }
}

/// An Ed25519 public key (32 bytes), as published for outsiders to check signed heads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Standard base64 of the 32 bytes.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::Base64)?;
        Self::from_bytes(&bytes)
    }

    /// Hex SHA-256 of the 32 bytes: names the key in signed heads.
    pub fn key_id(&self) -> String {
        hex::encode(Sha256::digest(self.0))
    }

    /// The key as the hub publishes it (`GET /api/v1/audit/key`, `agora audit key --json`):
    /// `algorithm`, `public_key` (base64) and `key_id`.
    pub fn published(&self) -> serde_json::Value {
        serde_json::json!({
            "algorithm": "Ed25519",
            "public_key": self.to_base64(),
            "key_id": self.key_id(),
        })
    }

    /// Checks that `sth` names this key and carries its valid signature over the head.
    pub fn verify(&self, sth: &SignedTreeHead) -> Result<(), SignatureError> {
        if sth.key_id != self.key_id() {
            return Err(SignatureError::WrongKey);
        }
        if sth.head.timestamp.trunc_subsecs(3) != sth.head.timestamp {
            return Err(SignatureError::NotCanonical);
        }
        let signature = STANDARD
            .decode(&sth.signature)
            .map_err(|_| SignatureError::Malformed)?;
        if signature.len() != 64 {
            return Err(SignatureError::Malformed);
        }
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&sth.head.signing_input(), &signature)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// A hash as 64 lower-case hex digits in JSON.
mod hex_hash {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    use crate::merkle::Hash;

    pub(super) fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        let mut hash = [0; 32];
        hex::decode_to_slice(text.as_bytes(), &mut hash)
            .map_err(|_| D::Error::custom("a hash is 64 hex digits"))?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(size: u64) -> TreeHead {
        TreeHead {
            tree_size: size,
            timestamp: DateTime::from_timestamp_millis(1_800_000_000_123).unwrap(),
            root_hash: [7; 32],
        }
    }

    #[test]
    fn signing_input_is_the_documented_form() {
        let input = head(42).signing_input();
        let expected = format!(
            "agora-audit-tree-head-v1\n42\n1800000000123\n{}\n",
            "07".repeat(32)
        );
        assert_eq!(input, expected.as_bytes());
    }

    #[test]
    fn sign_verify_and_json_round_trip() {
        let (key, document) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(&document).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = PublicKey::from_base64(&key.public_key().to_base64()).unwrap();
        let sth = key.sign(head(42));
        public.verify(&sth).unwrap();

        let json = serde_json::to_string(&sth).unwrap();
        assert!(
            json.starts_with(r#"{"tree_size":42,"timestamp":"#),
            "{json}"
        );
        assert!(
            json.contains(&format!(r#""root_hash":"{}""#, "07".repeat(32))),
            "{json}"
        );
        let back: SignedTreeHead = serde_json::from_str(&json).unwrap();
        assert_eq!(back, sth);
        public.verify(&back).unwrap();
    }

    #[test]
    fn sign_truncates_to_milliseconds() {
        let (key, _) = SigningKey::generate().unwrap();
        let mut h = head(1);
        h.timestamp += chrono::Duration::nanoseconds(456_789);
        let sth = key.sign(h);
        assert_eq!(sth.head.timestamp.timestamp_subsec_nanos() % 1_000_000, 0);
        key.public_key().verify(&sth).unwrap();
        let mut finer = sth.clone();
        finer.head.timestamp += chrono::Duration::nanoseconds(1);
        assert_eq!(
            key.public_key().verify(&finer),
            Err(SignatureError::NotCanonical)
        );
    }

    #[test]
    fn tampered_heads_fail() {
        let (key, _) = SigningKey::generate().unwrap();
        let public = key.public_key();
        let sth = key.sign(head(42));

        let mut bigger = sth.clone();
        bigger.head.tree_size = 43;
        assert_eq!(public.verify(&bigger), Err(SignatureError::Invalid));

        let mut rooted = sth.clone();
        rooted.head.root_hash[0] ^= 1;
        assert_eq!(public.verify(&rooted), Err(SignatureError::Invalid));

        let mut later = sth.clone();
        later.head.timestamp += chrono::Duration::milliseconds(1);
        assert_eq!(public.verify(&later), Err(SignatureError::Invalid));

        let mut garbled = sth.clone();
        garbled.signature = "not base64!".into();
        assert_eq!(public.verify(&garbled), Err(SignatureError::Malformed));

        let (other, _) = SigningKey::generate().unwrap();
        assert_eq!(
            other.public_key().verify(&sth),
            Err(SignatureError::WrongKey)
        );
        // Another key that claims this key's id still fails on the signature.
        let mut forged = other.sign(head(42));
        forged.key_id = public.key_id();
        assert_eq!(public.verify(&forged), Err(SignatureError::Invalid));
    }

    #[test]
    fn debug_prints_no_key_material() {
        let (key, document) = SigningKey::generate().unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains(&key.public_key().key_id()));
        // Neither the PKCS#8 document nor the seed inside it, in any common encoding.
        let seed = &document[16..48];
        for secret in [&document[..], seed] {
            assert!(!shown.contains(&hex::encode(secret)));
            assert!(!shown.contains(&STANDARD.encode(secret)));
            assert!(!shown.contains(&format!("{secret:?}")));
        }
    }

    #[test]
    fn pkcs8_v1_keys_are_read() {
        // What `openssl genpkey -algorithm ed25519` writes: the v1 prefix and the 32-byte seed.
        let (key, v2) = SigningKey::generate().unwrap();
        let mut v1 = hex::decode("302e020100300506032b657004220420").unwrap();
        v1.extend_from_slice(&v2[16..48]);
        let read = SigningKey::from_pkcs8(&v1).unwrap();
        assert_eq!(read.public_key(), key.public_key());
        key.public_key().verify(&read.sign(head(3))).unwrap();
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(
            SigningKey::from_pkcs8(b"nonsense"),
            Err(KeyError::Rejected(_))
        ));
        assert_eq!(
            PublicKey::from_bytes(&[0; 31]),
            Err(KeyError::WrongLength(31))
        );
        assert_eq!(PublicKey::from_base64("%%"), Err(KeyError::Base64));
    }
}
