//! Talking to the OpenID provider: discovery, its JWK Set, the token endpoint.
//!
//! Blocking `ureq` calls on tokio's blocking pool: a sign-in makes three or four requests, not
//! worth an async HTTP client stack. Every request has timeouts, follows no redirects and reads
//! at most [`MAX_BODY`] bytes. Errors are for the server log (they name URLs of the provider,
//! which is configuration, never a person).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use crate::jwt::JwkSet;

const MAX_BODY: u64 = 1 << 20;

/// Why the provider could not be used. Messages name the provider's URLs (configuration),
/// never a person.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached or answered something unusable.
    #[error("{0}")]
    Unusable(String),
    /// The token endpoint refused the code (RFC 6749 §5.2 error code).
    #[error("the token endpoint refused the code: {0}")]
    Refused(String),
}

impl agora_core::HasKind for ProviderError {
    fn kind(&self) -> agora_core::ErrorKind {
        match self {
            Self::Unusable(_) => agora_core::ErrorKind::Unavailable,
            // The code was already used or has expired: starting again works.
            Self::Refused(_) => agora_core::ErrorKind::InvalidInput,
        }
    }
}

fn unusable(message: impl Into<String>) -> ProviderError {
    ProviderError::Unusable(message.into())
}

/// The parts of the discovery document we use.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// `client_secret_basic` unless the provider supports only `client_secret_post`.
    pub secret_in_body: bool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Whether `url` may be used: https, or http on a loopback host (tests, local providers).
pub(crate) fn acceptable(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// The provider as this hub knows it: metadata fetched once, keys fetched on demand.
#[derive(Debug)]
pub(crate) struct Provider {
    issuer: String,
    agent: ureq::Agent,
    metadata: OnceCell<Arc<Metadata>>,
    keys: Mutex<KeyCache>,
}

#[derive(Debug, Default)]
struct KeyCache {
    /// Bumped at every fetch, so concurrent sign-ins that all miss a key fetch it once.
    generation: u64,
    keys: Option<Arc<JwkSet>>,
}

/// A token endpoint's answer (RFC 6749 §5.1; OpenID Connect Core §3.1.3.3).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
}

/// A userinfo answer: JSON claims, or a JWT to verify like an ID token.
#[derive(Debug)]
pub(crate) enum Userinfo {
    Claims(Vec<u8>),
    Jwt(String),
}

/// The client's credentials at the token endpoint.
pub(crate) struct Client<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub redirect_uri: &'a str,
}

impl Provider {
    pub(crate) fn new(issuer: String) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .redirects(0)
            .user_agent(concat!("agora/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            issuer,
            agent,
            metadata: OnceCell::new(),
            keys: Mutex::default(),
        }
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document, fetched on first use; a failure is retried at the next call.
    pub(crate) async fn metadata(&self) -> Result<Arc<Metadata>, ProviderError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.issuer.trim_end_matches('/')
                );
                let doc = self.get_json(url).await?;
                let doc: Discovery = serde_json::from_value(doc).map_err(|e| {
                    unusable(format!(
                        "the provider's discovery document is unusable: {e}"
                    ))
                })?;
                self.check(doc).map(Arc::new)
            })
            .await
            .cloned()
    }

    fn check(&self, doc: Discovery) -> Result<Metadata, ProviderError> {
        // OpenID Connect Discovery §4.3: exactly the issuer we were configured with.
        if doc.issuer != self.issuer {
            return Err(unusable(format!(
                "the provider's discovery document names issuer {:?}, not the configured {:?}",
                doc.issuer, self.issuer
            )));
        }
        let endpoint = |name: &str, value: &str| {
            let url = Url::parse(value)
                .map_err(|e| unusable(format!("the provider's {name} is not a URL: {e}")))?;
            if !acceptable(&url) {
                return Err(unusable(format!(
                    "the provider's {name} {url} is not https"
                )));
            }
            Ok(url)
        };
        let methods = doc
            .token_endpoint_auth_methods_supported
            .unwrap_or_default();
        let has = |m: &str| methods.iter().any(|x| x == m);
        Ok(Metadata {
            authorization_endpoint: endpoint(
                "authorization_endpoint",
                &doc.authorization_endpoint,
            )?,
            token_endpoint: endpoint("token_endpoint", &doc.token_endpoint)?,
            jwks_uri: endpoint("jwks_uri", &doc.jwks_uri)?,
            userinfo_endpoint: doc
                .userinfo_endpoint
                .map(|u| endpoint("userinfo_endpoint", &u))
                .transpose()?,
            secret_in_body: !methods.is_empty()
                && !has("client_secret_basic")
                && has("client_secret_post"),
        })
    }

    /// The provider's keys with their generation. Pass the generation of a set that lacked
    /// a key to have it fetched again (once, however many callers ask).
    pub(crate) async fn keys(
        &self,
        stale: Option<u64>,
    ) -> Result<(u64, Arc<JwkSet>), ProviderError> {
        let mut cache = self.keys.lock().await;
        let fetch = match (&cache.keys, stale) {
            (None, _) => true,
            (Some(_), Some(generation)) => generation == cache.generation,
            (Some(_), None) => false,
        };
        if fetch {
            let metadata = self.metadata().await?;
            let doc = self.get_json(metadata.jwks_uri.to_string()).await?;
            let set: JwkSet = serde_json::from_value(doc)
                .map_err(|e| unusable(format!("the provider's JWK Set is unusable: {e}")))?;
            cache.generation += 1;
            cache.keys = Some(Arc::new(set));
        }
        let keys = cache.keys.clone().unwrap_or_default();
        Ok((cache.generation, keys))
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub(crate) async fn exchange(
        &self,
        client: &Client<'_>,
        code: &str,
        verifier: &str,
    ) -> Result<TokenResponse, ProviderError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri),
            ("code_verifier", verifier),
        ];
        let mut request = self.agent.post(metadata.token_endpoint.as_str());
        if metadata.secret_in_body {
            form.extend([("client_id", client.id), ("client_secret", client.secret)]);
        } else {
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic = STANDARD.encode(format!("{}:{}", enc(client.id), enc(client.secret)));
            request = request.set("Authorization", &format!("Basic {basic}"));
        }
        let form: Vec<(String, String)> = form
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let url = metadata.token_endpoint.to_string();
        tokio::task::spawn_blocking(move || {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            token_answer(request.send_form(&pairs), &url)
        })
        .await
        .map_err(|e| unusable(format!("token request task failed: {e}")))?
    }

    /// The userinfo answer for an access token; `None` if the provider has no endpoint.
    pub(crate) async fn userinfo(
        &self,
        access_token: &str,
    ) -> Result<Option<Userinfo>, ProviderError> {
        let metadata = self.metadata().await?;
        let Some(url) = metadata.userinfo_endpoint.as_ref().map(Url::to_string) else {
            return Ok(None);
        };
        let request = self
            .agent
            .get(&url)
            .set("Authorization", &format!("Bearer {access_token}"));
        tokio::task::spawn_blocking(move || {
            let response = request
                .call()
                .map_err(|e| unusable(format!("GET {url} failed: {e}")))?;
            let jwt = response.content_type() == "application/jwt";
            let body = read_body(response, &url)?;
            Ok(Some(if jwt {
                let text = String::from_utf8(body)
                    .map_err(|_| unusable(format!("the answer of {url} is not a JWT")))?;
                Userinfo::Jwt(text.trim().to_owned())
            } else {
                Userinfo::Claims(body)
            }))
        })
        .await
        .map_err(|e| unusable(format!("userinfo request task failed: {e}")))?
    }

    async fn get_json(&self, url: String) -> Result<Value, ProviderError> {
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || match agent.get(&url).call() {
            Ok(response) => read_json(response, &url),
            Err(e) => Err(unusable(format!("GET {url} failed: {e}"))),
        })
        .await
        .map_err(|e| unusable(format!("provider request task failed: {e}")))?
    }
}

fn token_answer(
    answer: Result<ureq::Response, ureq::Error>,
    url: &str,
) -> Result<TokenResponse, ProviderError> {
    match answer {
        Ok(response) => {
            let body = read_json(response, url)?;
            serde_json::from_value(body)
                .map_err(|e| unusable(format!("the token endpoint's answer is unusable: {e}")))
        }
        // RFC 6749 §5.2: a refusal is a 400 (401 for client authentication) with an error code.
        Err(ureq::Error::Status(status @ (400 | 401), response)) => {
            let code = read_json(response, url)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(oauth_code))
                .unwrap_or_else(|| "unknown".into());
            if status == 401 || code == "invalid_client" || code == "unauthorized_client" {
                Err(unusable(format!(
                    "the token endpoint {url} refused this client ({code}): check the client id and secret"
                )))
            } else {
                Err(ProviderError::Refused(code))
            }
        }
        Err(e) => Err(unusable(format!("token request to {url} failed: {e}"))),
    }
}

fn read_body(response: ureq::Response, url: &str) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| unusable(format!("reading the answer of {url} failed: {e}")))?;
    if body.len() as u64 > MAX_BODY {
        return Err(unusable(format!(
            "the answer of {url} is larger than 1 MiB"
        )));
    }
    Ok(body)
}

fn read_json(response: ureq::Response, url: &str) -> Result<Value, ProviderError> {
    serde_json::from_slice(&read_body(response, url)?)
        .map_err(|e| unusable(format!("the answer of {url} is not JSON: {e}")))
}

/// An OAuth error code as received, restricted to its grammar (RFC 6749 §5.2), so that it can
/// be logged and shown safely.
pub(crate) fn oauth_code(raw: &str) -> String {
    if !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        raw.to_owned()
    } else {
        "unknown".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://idp.example/realms/x",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(acceptable(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://idp.example/",
            "http://127.0.0.1.nip.io/",
            "ftp://idp.example/",
            "file:///etc/passwd",
        ] {
            assert!(!acceptable(&Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn oauth_codes_are_kept_to_their_grammar() {
        assert_eq!(oauth_code("access_denied"), "access_denied");
        assert_eq!(oauth_code("<script>"), "unknown");
        assert_eq!(oauth_code(""), "unknown");
        assert_eq!(oauth_code(&"a".repeat(65)), "unknown");
    }
}
