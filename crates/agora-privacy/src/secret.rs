use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Length of a hub secret in bytes (256 bits, the output size of SHA-256).
pub const SECRET_LEN: usize = 32;

/// The hub's secret pseudonymization key. Its bytes are never formatted.
#[derive(Clone)]
pub struct HubSecret([u8; SECRET_LEN]);

/// Why bytes were refused as a [`HubSecret`]. Never carries the bytes themselves.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key material had this many bytes instead of [`SECRET_LEN`] (e.g. a truncated
    /// or foreign `keys/hub.key`).
    #[error("hub secret must be exactly {SECRET_LEN} bytes, found {0}")]
    WrongLength(usize),
}

impl HubSecret {
    /// A fresh secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The secret with exactly these bytes (tests, known-answer checks).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The secret read back from storage; fails unless `bytes` is exactly [`SECRET_LEN`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SecretError> {
        let arr: [u8; SECRET_LEN] = bytes
            .try_into()
            .map_err(|_| SecretError::WrongLength(bytes.len()))?;
        Ok(Self(arr))
    }

    /// The raw key material, for writing the hub key file only. Whoever holds these bytes can
    /// recompute every person key: never log, print or send them.
    pub fn expose_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// A public identifier of this secret, recorded in release manifests so a later key
    /// rotation knows which key produced which release. Derived one-way: it reveals nothing
    /// about the secret.
    pub fn key_id(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"agora/key-id/v1");
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

impl fmt::Debug for HubSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HubSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let s = HubSecret::from_bytes([0xAB; 32]);
        let shown = format!("{s:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
    }

    #[test]
    fn generated_secrets_differ_and_key_ids_are_stable() {
        let a = HubSecret::generate();
        let b = HubSecret::generate();
        assert_ne!(a.expose_bytes(), b.expose_bytes());
        assert_eq!(a.key_id(), a.key_id());
        assert_ne!(a.key_id(), b.key_id());
        assert_eq!(a.key_id().len(), 16);
    }

    #[test]
    fn wrong_length_is_rejected_without_echoing_bytes() {
        let err = HubSecret::from_slice(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hub secret must be exactly 32 bytes, found 3"
        );
    }
}
