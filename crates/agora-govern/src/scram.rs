//! SCRAM-SHA-256 (RFC 5802, RFC 7677) for the PostgreSQL protocol's local-account logins:
//! the password never crosses the network, and the store keeps only a verifier from which it
//! cannot be recovered nor a login replayed (PostgreSQL's own scheme and text format).
//!
//! ```text
//!  client-first  n,,n=,r=<client nonce>
//!  server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//!  client-final  c=biws,r=<nonce>,p=<proof>      proof = ClientKey ⊕ HMAC(StoredKey, AuthMessage)
//!  server-final  v=<HMAC(ServerKey, AuthMessage)>  after H(proof ⊕ HMAC(StoredKey, AuthMessage)) = StoredKey
//! ```
//!
//! Channel binding (`SCRAM-SHA-256-PLUS`) is not offered: a client asking for it is refused.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// The mechanism's name in the SASL exchange.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// What the store keeps for a password: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
/// (base64), as PostgreSQL's `pg_authid.rolpassword`.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("HMAC-SHA-256 is 32 bytes")
}

fn sha256(data: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

impl Verifier {
    /// The verifier of `password` with a new random salt.
    pub fn new(password: &str, iterations: u32) -> Self {
        let mut salt = vec![0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .expect("the system's random source works");
        let iterations = iterations.max(1);
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations,
            salt,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// Parses the stored form; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Self {
            iterations: iterations.parse().ok()?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?.try_into().ok()?,
            server_key: B64.decode(server).ok()?.try_into().ok()?,
        })
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }
}

/// Why an exchange failed. Says nothing about the account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message does not follow RFC 5802.
    #[error("malformed SCRAM message")]
    Malformed,
    /// The client asked for channel binding, which is not offered.
    #[error("channel binding is not supported: use SCRAM-SHA-256 without -PLUS")]
    ChannelBinding,
    /// The proof does not match: a wrong password.
    #[error("password authentication failed")]
    WrongProof,
}

/// A server's exchange after its first message.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Answers the client's first message with the server's: the exchange to finish with
/// [`Exchange::finish`], and the server-first message.
pub fn start(verifier: Verifier, client_first: &str) -> Result<(Exchange, String), ScramError> {
    // gs2-header: "n,," or "y,," (no binding; "p=" asks for it), then the bare message.
    let (cbind, rest) = client_first.split_once(',').ok_or(ScramError::Malformed)?;
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
    let client_nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or(ScramError::Malformed)?;
    let mut server_nonce = [0u8; 18];
    ring::rand::SystemRandom::new()
        .fill(&mut server_nonce)
        .map_err(|_| ScramError::Malformed)?;
    let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
    let server_first = format!(
        "r={nonce},s={},i={}",
        B64.encode(&verifier.salt),
        verifier.iterations
    );
    Ok((
        Exchange {
            verifier,
            gs2_header: format!("{cbind},{authzid},"),
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        },
        server_first,
    ))
}

impl Exchange {
    /// Checks the client's final message; the server-final message on success.
    pub fn finish(self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed)?;
        let mut channel = None;
        let mut nonce = None;
        for attribute in without_proof.split(',') {
            if let Some(c) = attribute.strip_prefix("c=") {
                channel = Some(c);
            } else if let Some(r) = attribute.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        if channel != Some(B64.encode(&self.gs2_header).as_str()) || nonce != Some(&self.nonce) {
            return Err(ScramError::Malformed);
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed)?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key.iter_mut().zip(proof.iter().zip(signature)) {
            *k = p ^ s;
        }
        // Compared without an early exit: the time taken says nothing about the key.
        let difference = sha256(&client_key)
            .iter()
            .zip(self.verifier.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's side, as RFC 5802 §3 computes it.
    fn client_final(password: &str, server_first: &str, client_first_bare: &str) -> String {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = &attrs[0][2..];
        let salt = B64.decode(&attrs[1][2..]).unwrap();
        let iterations: u32 = attrs[2][2..].parse().unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).unwrap(),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(&sha256(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    #[test]
    fn the_right_password_passes_and_a_wrong_one_does_not() {
        let verifier = Verifier::new("correct horse battery", 4096);
        let stored = verifier.to_string();
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!stored.contains("correct"));
        assert_eq!(Verifier::parse(&stored), Some(verifier.clone()));

        let (exchange, server_first) = start(verifier.clone(), "n,,n=,r=abcDEF123").unwrap();
        assert!(server_first.starts_with("r=abcDEF123"));
        let reply = client_final("correct horse battery", &server_first, "n=,r=abcDEF123");
        assert!(exchange.finish(&reply).unwrap().starts_with("v="));

        let (exchange, server_first) = start(verifier.clone(), "n,,n=,r=xyz").unwrap();
        let reply = client_final("wrong horse battery", &server_first, "n=,r=xyz");
        assert_eq!(exchange.finish(&reply), Err(ScramError::WrongProof));

        // A replayed final message does not match a new exchange's nonce.
        let (exchange, _) = start(verifier.clone(), "n,,n=,r=xyz").unwrap();
        assert_eq!(exchange.finish(&reply), Err(ScramError::Malformed));

        assert_eq!(
            start(verifier.clone(), "p=tls-server-end-point,,n=,r=x").unwrap_err(),
            ScramError::ChannelBinding
        );
        assert_eq!(
            start(verifier, "garbage").unwrap_err(),
            ScramError::Malformed
        );
        assert_eq!(Verifier::parse("md5abc"), None);
    }
}
