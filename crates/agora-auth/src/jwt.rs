//! ID token verification: the compact JWS, the provider's keys (a JWK Set), and the claim
//! checks of OpenID Connect Core §3.1.3.7. Pure: no I/O, and the clock is a parameter.
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES256, ES384): `none` and the HMAC
//! family are refused before any key is looked at, so a token "signed" with the provider's
//! public key as an HMAC secret goes nowhere. A key is used only for the algorithm family it
//! belongs to (and for its declared `alg`/`use`, when it declares them).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why an ID token was refused. Messages name the check, never a claim value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a compact JWS.
    #[error("the ID token is not a compact JWS")]
    Malformed,
    /// A signing algorithm that is not accepted (`none`, HS*, unknown).
    #[error("the ID token's signing algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// No key of the provider's JWK Set fits (by `kid`, type and algorithm).
    #[error("no key of the provider's JWK Set fits the ID token (kid {0:?})")]
    UnknownKey(Option<String>),
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// A required claim is missing or malformed.
    #[error("the ID token's claim {0} is missing or malformed")]
    Claim(&'static str),
    /// Issued by another issuer.
    #[error("the ID token was issued by another issuer")]
    Issuer,
    /// This client is not an audience.
    #[error("the ID token's audience does not include this client")]
    Audience,
    /// Several audiences and no authorized party, or another one.
    #[error("the ID token has several audiences but no authorized party, or another one")]
    AuthorizedParty,
    /// Expired.
    #[error("the ID token has expired")]
    Expired,
    /// Issued in the future.
    #[error("the ID token was issued in the future")]
    IssuedInFuture,
    /// Not this sign-in's nonce.
    #[error("the ID token's nonce is not this sign-in's")]
    Nonce,
    /// A userinfo answer about another subject, issuer or audience.
    #[error("the userinfo answer names another subject, issuer or audience")]
    UserinfoMismatch,
}

impl agora_core::HasKind for TokenError {
    fn kind(&self) -> agora_core::ErrorKind {
        // The provider's answer does not prove who the person is.
        agora_core::ErrorKind::PermissionDenied
    }
}

/// The signing algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
}

impl Alg {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    /// The JWK key type and, for elliptic curves, the curve this algorithm needs.
    fn key_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            Self::Es256 => ("EC", Some("P-256")),
            Self::Es384 => ("EC", Some("P-384")),
            _ => ("RSA", None),
        }
    }
}

/// One key of a JWK Set (RFC 7517). Members other than these are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Jwk {
    #[serde(default)]
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        let (kty, crv) = alg.key_type();
        self.kty == kty
            && crv.is_none_or(|c| self.crv.as_deref() == Some(c))
            && self.alg.as_deref().is_none_or(|a| a == alg.name())
            && self.use_.as_deref().is_none_or(|u| u == "sig")
    }

    fn verifies(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        let part = |p: &Option<String>| p.as_deref().and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        match alg {
            Alg::Es256 | Alg::Es384 => {
                let (Some(x), Some(y)) = (part(&self.x), part(&self.y)) else {
                    return false;
                };
                let (len, params) = if alg == Alg::Es256 {
                    (32, &signature::ECDSA_P256_SHA256_FIXED)
                } else {
                    (48, &signature::ECDSA_P384_SHA384_FIXED)
                };
                if x.len() != len || y.len() != len {
                    return false;
                }
                let point = [&[0x04][..], &x, &y].concat();
                UnparsedPublicKey::new(params, point)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => {
                let (Some(n), Some(e)) = (part(&self.n), part(&self.e)) else {
                    return false;
                };
                let params = match alg {
                    Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                // A JWK modulus is unsigned big-endian; ring wants no leading zero bytes.
                let start = n.iter().position(|&b| b != 0).unwrap_or(n.len());
                RsaPublicKeyComponents {
                    n: &n[start..],
                    e: &e,
                }
                .verify(params, message, sig)
                .is_ok()
            }
        }
    }
}

/// A parsed (not yet verified) compact JWS.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    alg: Alg,
    kid: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

impl<'a> Jws<'a> {
    pub(crate) fn parse(token: &'a str) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        let header: Map<String, Value> =
            serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(TokenError::Malformed)?;
        let alg = Alg::parse(alg_name)
            .ok_or_else(|| TokenError::Algorithm(alg_name.chars().take(16).collect::<String>()))?;
        // Critical extensions we do not understand make the token unusable (RFC 7515 §4.1.11).
        if header.contains_key("crit") {
            return Err(TokenError::Malformed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.chars().take(128).collect()),
            Some(_) => return Err(TokenError::Malformed),
        };
        Ok(Self {
            alg,
            kid,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature: decode(s)?,
            payload: decode(p)?,
        })
    }

    /// Checks the signature against the key the header names (or, without a `kid`, any key
    /// that fits the algorithm). [`TokenError::UnknownKey`] means the set may be stale.
    pub(crate) fn verify(&self, keys: &JwkSet) -> Result<(), TokenError> {
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| self.kid.is_none() || k.kid == self.kid)
            .filter(|k| k.fits(self.alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey(self.kid.clone()));
        }
        if candidates.any(|k| k.verifies(self.alg, self.signing_input.as_bytes(), &self.signature))
        {
            Ok(())
        } else {
            Err(TokenError::Signature)
        }
    }

    /// The claims, to be read only after [`Jws::verify`] succeeded.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// What a valid ID token must say.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Tolerated clock difference with the provider, in seconds.
    pub leeway: i64,
}

/// The person an ID token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub subject: String,
    pub profile: Profile,
}

/// What the provider tells about the person, to show operators who is who.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    /// Only when the provider did not say it is unverified.
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Profile {
    pub(crate) fn is_empty(&self) -> bool {
        self.email.is_none() && self.name.is_none()
    }

    /// `name`, or the given name with the family (or, at ProConnect, usual) name.
    fn from_claims(claims: &Map<String, Value>) -> Self {
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let email_unverified = claims.get("email_verified") == Some(&Value::Bool(false));
        let parts: Vec<&str> = [
            text("given_name"),
            text("family_name").or_else(|| text("usual_name")),
        ]
        .into_iter()
        .flatten()
        .collect();
        Self {
            email: text("email")
                .filter(|_| !email_unverified)
                .map(str::to_owned),
            name: text("name")
                .map(str::to_owned)
                .or_else(|| (!parts.is_empty()).then(|| parts.join(" "))),
        }
    }
}

/// Checks the claims of a verified ID token.
pub(crate) fn check_claims(
    payload: &[u8],
    expected: &Expected<'_>,
) -> Result<Identity, TokenError> {
    let claims: Map<String, Value> =
        serde_json::from_slice(payload).map_err(|_| TokenError::Malformed)?;
    let string = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::Claim(name))
    };
    let time = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_f64)
            .map(|t| t.floor() as i64)
            .ok_or(TokenError::Claim(name))
    };
    if string("iss")? != expected.issuer {
        return Err(TokenError::Issuer);
    }
    let subject = string("sub")?.to_owned();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().ok_or(TokenError::Claim("aud")))
            .collect::<Result<_, _>>()?,
        _ => return Err(TokenError::Claim("aud")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(TokenError::Audience);
    }
    match claims.get("azp") {
        None if audiences.len() > 1 => return Err(TokenError::AuthorizedParty),
        None => {}
        Some(azp) if azp.as_str() == Some(expected.client_id) => {}
        Some(_) => return Err(TokenError::AuthorizedParty),
    }
    if expected.now >= time("exp")? + expected.leeway {
        return Err(TokenError::Expired);
    }
    if time("iat")? > expected.now + expected.leeway {
        return Err(TokenError::IssuedInFuture);
    }
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if n == expected.nonce => {}
        _ => return Err(TokenError::Nonce),
    }
    Ok(Identity {
        subject,
        profile: Profile::from_claims(&claims),
    })
}

/// The profile in a userinfo answer (OpenID Connect Core §5.3.2): it must be about the ID
/// token's subject and, when it says so (signed answers do), from this issuer for this client.
pub(crate) fn check_userinfo(
    claims: &[u8],
    subject: &str,
    issuer: &str,
    client_id: &str,
) -> Result<Profile, TokenError> {
    let claims: Map<String, Value> =
        serde_json::from_slice(claims).map_err(|_| TokenError::Malformed)?;
    let same_subject = claims.get("sub").and_then(Value::as_str) == Some(subject);
    let same_issuer = claims
        .get("iss")
        .is_none_or(|iss| iss.as_str() == Some(issuer));
    let for_us = match claims.get("aud") {
        None => true,
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
        Some(_) => false,
    };
    if !(same_subject && same_issuer && for_us) {
        return Err(TokenError::UserinfoMismatch);
    }
    Ok(Profile::from_claims(&claims))
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    use super::*;

    struct Signer {
        pair: EcdsaKeyPair,
        kid: &'static str,
    }

    impl Signer {
        fn new(kid: &'static str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self { pair, kid }
        }

        fn jwk(&self) -> Jwk {
            let point = self.pair.public_key().as_ref();
            Jwk {
                kty: "EC".into(),
                kid: Some(self.kid.into()),
                crv: Some("P-256".into()),
                x: Some(URL_SAFE_NO_PAD.encode(&point[1..33])),
                y: Some(URL_SAFE_NO_PAD.encode(&point[33..])),
                ..Jwk::default()
            }
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn token(&self, claims: &Value) -> String {
            self.sign(&json!({"alg": "ES256", "kid": self.kid}), claims)
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn claims() -> Value {
        json!({
            "iss": "https://idp.example", "sub": "s-1", "aud": "agora", "nonce": "n-1",
            "iat": NOW - 5, "exp": NOW + 300, "email": "jo@lab.example", "name": "Jo",
        })
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "agora",
            nonce: "n-1",
            now: NOW,
            leeway: 60,
        }
    }

    fn verify(token: &str, keys: &JwkSet) -> Result<Identity, TokenError> {
        let jws = Jws::parse(token)?;
        jws.verify(keys)?;
        check_claims(jws.payload(), &expected())
    }

    fn set(keys: &[&Signer]) -> JwkSet {
        JwkSet {
            keys: keys.iter().map(|s| s.jwk()).collect(),
        }
    }

    #[test]
    fn a_valid_token_yields_the_identity() {
        let signer = Signer::new("k1");
        let other = Signer::new("k2");
        let id = verify(&signer.token(&claims()), &set(&[&other, &signer])).unwrap();
        assert_eq!(
            id,
            Identity {
                subject: "s-1".into(),
                profile: Profile {
                    email: Some("jo@lab.example".into()),
                    name: Some("Jo".into())
                }
            }
        );
        // Without a kid, any key that fits is tried.
        let no_kid = signer.sign(&json!({"alg": "ES256"}), &claims());
        verify(&no_kid, &set(&[&other, &signer])).unwrap();
    }

    #[test]
    fn signatures_and_algorithms_are_enforced() {
        let signer = Signer::new("k1");
        let keys = set(&[&signer]);
        let token = signer.token(&claims());
        // Another payload under the same signature.
        let (head, rest) = token.split_once('.').unwrap();
        let sig = rest.split_once('.').unwrap().1;
        let mut forged = claims();
        forged["sub"] = json!("s-2");
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(forged.to_string())
        );
        assert_eq!(verify(&forged, &keys), Err(TokenError::Signature));
        // A key of the set under the wrong kid does not verify another key's token.
        let impostor = Signer::new("k1");
        assert_eq!(
            verify(&impostor.token(&claims()), &keys),
            Err(TokenError::Signature)
        );
        assert_eq!(
            verify(&Signer::new("k9").token(&claims()), &keys),
            Err(TokenError::UnknownKey(Some("k9".into())))
        );
        for alg in ["none", "HS256", "HS512", "EdDSA", ""] {
            let t = signer.sign(&json!({"alg": alg, "kid": "k1"}), &claims());
            assert!(
                matches!(verify(&t, &keys), Err(TokenError::Algorithm(_))),
                "{alg}"
            );
        }
        // An RSA algorithm never uses an EC key, and declared alg/use are honoured.
        let rs = signer.sign(&json!({"alg": "RS256", "kid": "k1"}), &claims());
        assert_eq!(
            verify(&rs, &keys),
            Err(TokenError::UnknownKey(Some("k1".into())))
        );
        let mut enc = signer.jwk();
        enc.use_ = Some("enc".into());
        assert!(matches!(
            verify(&token, &JwkSet { keys: vec![enc] }),
            Err(TokenError::UnknownKey(_))
        ));
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.", &format!("{token}x")] {
            assert!(verify(bad, &keys).is_err(), "{bad}");
        }
        let crit = signer.sign(
            &json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}),
            &claims(),
        );
        assert_eq!(verify(&crit, &keys), Err(TokenError::Malformed));
    }

    #[test]
    fn claims_are_checked() {
        let signer = Signer::new("k1");
        let keys = set(&[&signer]);
        let with = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            verify(&signer.token(&c), &keys)
        };
        assert_eq!(
            with(&|c| c["iss"] = json!("https://other.example")),
            Err(TokenError::Issuer)
        );
        assert_eq!(
            with(&|c| c["aud"] = json!("someone-else")),
            Err(TokenError::Audience)
        );
        assert_eq!(
            with(&|c| c["aud"] = json!(["agora", "api"])),
            Err(TokenError::AuthorizedParty)
        );
        assert!(
            with(&|c| {
                c["aud"] = json!(["agora", "api"]);
                c["azp"] = json!("agora");
            })
            .is_ok()
        );
        assert_eq!(
            with(&|c| c["azp"] = json!("api")),
            Err(TokenError::AuthorizedParty)
        );
        assert_eq!(
            with(&|c| c["exp"] = json!(NOW - 61)),
            Err(TokenError::Expired)
        );
        assert!(
            with(&|c| c["exp"] = json!(NOW - 30)).is_ok(),
            "within leeway"
        );
        assert_eq!(
            with(&|c| c["iat"] = json!(NOW + 120)),
            Err(TokenError::IssuedInFuture)
        );
        assert_eq!(with(&|c| c["nonce"] = json!("n-2")), Err(TokenError::Nonce));
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("nonce");
            }),
            Err(TokenError::Nonce)
        );
        for claim in ["iss", "sub", "aud", "exp", "iat"] {
            assert_eq!(
                with(&|c| {
                    c.as_object_mut().unwrap().remove(claim);
                }),
                Err(TokenError::Claim(claim)),
                "{claim}"
            );
        }
        let id = with(&|c| c["email_verified"] = json!(false)).unwrap();
        assert_eq!(id.profile.email, None, "an unverified email is not used");
    }

    #[test]
    fn userinfo_must_be_about_the_same_person() {
        let check = |claims: Value| {
            check_userinfo(
                claims.to_string().as_bytes(),
                "s-1",
                "https://idp.example",
                "agora",
            )
        };
        let profile = check(json!({
            "sub": "s-1", "iss": "https://idp.example", "aud": "agora",
            "email": "jo@lab.example", "given_name": "Jo", "usual_name": "Martin",
        }))
        .unwrap();
        assert_eq!(profile.email.as_deref(), Some("jo@lab.example"));
        assert_eq!(profile.name.as_deref(), Some("Jo Martin"));
        assert_eq!(
            check(json!({"sub": "s-1", "name": "Jo M."}))
                .unwrap()
                .name
                .as_deref(),
            Some("Jo M.")
        );
        for bad in [
            json!({"sub": "s-2", "name": "Eve"}),
            json!({"name": "Eve"}),
            json!({"sub": "s-1", "iss": "https://other.example"}),
            json!({"sub": "s-1", "aud": ["api"]}),
        ] {
            assert_eq!(check(bad), Err(TokenError::UserinfoMismatch));
        }
    }

    #[test]
    fn errors_name_no_claim_value() {
        let signer = Signer::new("k1");
        let mut c = claims();
        c["iss"] = json!("https://secret-issuer.example");
        let e = verify(&signer.token(&c), &set(&[&signer])).unwrap_err();
        assert!(!e.to_string().contains("secret-issuer"), "{e}");
    }
}
