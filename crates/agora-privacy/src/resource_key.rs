//! Keyed pseudonyms of FHIR resource ids (`Encounter.id`, `Condition.id`...).
//!
//! A resource id is the producer's record number: whoever holds the source system can link
//! it back to a person. Stored ids are therefore HMAC-SHA256 pseudonyms under the hub
//! secret, like person keys but with their own domain-separation label, and with the
//! resource type in the input (length-prefixed), so `Encounter/1` and `Condition/1` get
//! unrelated pseudonyms. The same type and id always give the same pseudonym (references
//! stay consistent, re-ingests give the same ids); nobody without the secret can reverse it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::HubSecret;

/// Domain separation: a resource pseudonym never equals a person key or any other HMAC of
/// the hub secret.
const DOMAIN: &[u8] = b"agora/resource-id/v1\0";

/// The result of keying one resource id: `key` is a 63-bit positive integer (its decimal
/// form is the stored id; OMOP `visit_occurrence_id` is the same integer), `check` 64
/// further bits of the same HMAC, to tell two ids with the same `key` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResourceDigest {
    /// First 64 bits of the HMAC with the sign bit cleared, never 0.
    pub key: i64,
    /// The next 64 bits of the HMAC.
    pub check: i64,
}

/// Derives keyed resource ids under one hub secret. Cheap to clone.
#[derive(Clone)]
pub struct ResourceKeyer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ResourceKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResourceKeyer(<redacted>)")
    }
}

impl ResourceKeyer {
    /// A keyer for `secret`.
    pub fn new(secret: &HubSecret) -> Self {
        Self { mac: secret.mac() }
    }

    /// Keys the id `id` of a resource of type `resource_type`:
    /// `HMAC(secret, "agora/resource-id/v1\0" || u32_be(len(type)) || type || id)`.
    pub fn derive(&self, resource_type: &str, id: &str) -> ResourceDigest {
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        let len = u32::try_from(resource_type.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(resource_type.as_bytes());
        mac.update(id.as_bytes());
        let out = mac.finalize().into_bytes();
        let word = |i: usize| u64::from_be_bytes(out[i..i + 8].try_into().expect("8 bytes"));
        ResourceDigest {
            key: (word(0) >> 1).max(1) as i64,
            check: word(8) as i64,
        }
    }

    /// The stored id of the resource `resource_type`/`id`: [`ResourceDigest::key`] in decimal.
    pub fn pseudonym(&self, resource_type: &str, id: &str) -> String {
        self.derive(resource_type, id).key.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyer(byte: u8) -> ResourceKeyer {
        ResourceKeyer::new(&HubSecret::from_bytes([byte; 32]))
    }

    #[test]
    fn type_id_and_secret_all_matter() {
        let k = keyer(1);
        assert_eq!(k.derive("Encounter", "1"), k.derive("Encounter", "1"));
        assert_ne!(k.derive("Encounter", "1"), k.derive("Condition", "1"));
        assert_ne!(k.derive("Encounter", "1"), k.derive("Encounter", "2"));
        assert_ne!(
            k.derive("Encounter", "1"),
            keyer(2).derive("Encounter", "1")
        );
        // The type is length-prefixed: moving characters between type and id changes it.
        assert_ne!(k.derive("Encounter", "1"), k.derive("Encounter1", ""));
    }

    #[test]
    fn differs_from_the_person_key_of_the_same_bytes() {
        let secret = HubSecret::from_bytes([1; 32]);
        let person = crate::PersonKeyer::new(&secret).derive(b"1", 0).key;
        assert_ne!(ResourceKeyer::new(&secret).derive("", "1").key, person);
    }

    /// Pins the derivation (cross-checked with Python's `hmac`): changing it re-keys every
    /// stored resource id.
    #[test]
    fn known_answer() {
        let k = keyer(0);
        let d = k.derive("Encounter", "1");
        assert_eq!(
            (d.key, d.check),
            (9028706639884321119, -2666876239233973280)
        );
        assert_eq!(k.pseudonym("Condition", "1"), "144760628215534935");
    }
}
