//! The authorization-code flow with PKCE (S256) for a confidential client, without HTTP
//! types: a front turns its requests into [`SignIns::start`] and [`SignIns::finish`] calls and
//! their results (or [`SignInError`]s) into answers.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use agora_core::{ErrorKind, HasKind};
use agora_service::governance::{Governance, SessionToken};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::OidcConfig;
use crate::jwt::{self, Expected, Jws, Profile, TokenError};
use crate::pending::{Pending, PendingLogins};
use crate::provider::{self, Client, Provider, ProviderError, Userinfo};

/// Tolerated clock difference with the provider.
const LEEWAY_SECS: i64 = 60;

/// The sign-ins of one hub: its configuration, the provider (discovery and keys cached) and
/// the sign-ins in flight.
#[derive(Debug)]
pub struct SignIns {
    config: OidcConfig,
    meta: Governance,
    provider: Provider,
    pending: PendingLogins,
}

/// A sign-in just started: where to send the browser, and the browser binding to set.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization endpoint with this sign-in's parameters.
    pub authorization_url: Url,
    /// The value of the browser-binding cookie (the one the browser sent, or a new one).
    pub binding: String,
}

/// What the provider sent the browser back with (the callback's query parameters).
#[derive(Debug, Default)]
pub struct AuthorizationResponse {
    /// The authorization code.
    pub code: Option<String>,
    /// The state of the sign-in.
    pub state: Option<String>,
    /// An OAuth error code, when the provider ended the sign-in.
    pub error: Option<String>,
    /// RFC 9207: the issuer of the authorization response, when the provider sends it.
    pub iss: Option<String>,
}

/// A finished sign-in: the new session and where to send the browser.
#[derive(Debug)]
pub struct SignedIn {
    /// The session opened for the local user.
    pub session: SessionToken,
    /// The local path the sign-in was started for.
    pub return_to: String,
}

/// Why a sign-in was refused or failed. The front chooses what the browser sees; every
/// variant has a kind, and [`SignInError::is_upstream`] tells failures of the provider apart.
#[derive(Debug)]
pub enum SignInError {
    /// `return_to` is not a path on this hub.
    ReturnTo,
    /// The provider cannot be used (discovery failed).
    Unavailable(ProviderError),
    /// Too many sign-ins are in flight.
    Busy,
    /// The person (or the provider) did not grant access (`access_denied`).
    Denied,
    /// The provider ended the sign-in with this OAuth error code.
    Refused(String),
    /// The state is unknown, was already used or has expired.
    UnknownState,
    /// The callback comes from a browser that did not start the sign-in.
    OtherBrowser,
    /// The authorization response names another issuer.
    OtherIssuer,
    /// The authorization response has no code.
    NoCode,
    /// The provider could not be reached or answered something unusable, or refused the code.
    Provider(ProviderError),
    /// The ID token (or a signed userinfo answer) was refused.
    Token(TokenError),
    /// The local user is deactivated.
    Deactivated,
    /// The metadata store failed.
    Store(agora_service::governance::Error),
}

impl SignInError {
    /// Whether the identity provider is at fault: it answered something unusable or
    /// unverifiable (HTTP shows this as a bad gateway).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::Provider(ProviderError::Unusable(_)) | Self::Token(_)
        )
    }

    /// The details for the server log, at the level the failure deserves (never a person's
    /// identity).
    fn log(&self) {
        match self {
            Self::Unavailable(e) => {
                tracing::warn!(error = %e, "OpenID Connect sign-in unavailable");
            }
            Self::Busy => tracing::warn!("too many OpenID Connect sign-ins in progress"),
            Self::Denied => tracing::info!(
                error = "access_denied",
                "OpenID Connect sign-in ended at the provider"
            ),
            Self::Refused(code) => {
                tracing::info!(error = code, "OpenID Connect sign-in ended at the provider");
            }
            Self::OtherBrowser => tracing::warn!(
                "OpenID Connect callback from a browser that did not start the sign-in"
            ),
            Self::OtherIssuer => tracing::warn!("OpenID Connect callback names another issuer"),
            Self::Provider(ProviderError::Refused(code)) => {
                tracing::info!(error = code, "OpenID Connect code refused by the provider");
            }
            Self::Provider(e @ ProviderError::Unusable(_)) => {
                tracing::warn!(error = %e, "OpenID Connect sign-in failed at the provider");
            }
            Self::Token(e) => tracing::warn!(error = %e, "OpenID Connect ID token refused"),
            Self::Store(e) => {
                tracing::error!(error = %e, "OpenID Connect sign-in failed in the metadata store");
            }
            Self::ReturnTo | Self::UnknownState | Self::NoCode | Self::Deactivated => {}
        }
    }
}

impl std::fmt::Display for SignInError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReturnTo => f.write_str("return_to must be a path on this hub"),
            Self::Unavailable(e) | Self::Provider(e) => e.fmt(f),
            Self::Busy => f.write_str("too many sign-ins are in progress"),
            Self::Denied => f.write_str("the identity provider did not grant access"),
            Self::Refused(code) => write!(f, "the identity provider refused the sign-in ({code})"),
            Self::UnknownState => {
                f.write_str("the sign-in is unknown, was already used or has expired")
            }
            Self::OtherBrowser => f.write_str("the sign-in was not started in this browser"),
            Self::OtherIssuer => f.write_str("the sign-in response comes from another issuer"),
            Self::NoCode => f.write_str("the sign-in response has no authorization code"),
            Self::Token(e) => e.fmt(f),
            Self::Deactivated => f.write_str("the user is deactivated"),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SignInError {}

impl HasKind for SignInError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ReturnTo
            | Self::Refused(_)
            | Self::UnknownState
            | Self::OtherBrowser
            | Self::OtherIssuer
            | Self::NoCode => ErrorKind::InvalidInput,
            Self::Provider(e) => e.kind(),
            Self::Unavailable(_) | Self::Busy => ErrorKind::Unavailable,
            Self::Denied | Self::Deactivated | Self::Token(_) => ErrorKind::PermissionDenied,
            // Whatever the store says, the person can do nothing about it.
            Self::Store(_) => ErrorKind::Internal,
        }
    }
}

impl SignIns {
    /// The sign-ins of a hub whose governance is `meta`. Nothing is fetched yet.
    pub fn new(config: OidcConfig, meta: Governance) -> Self {
        Self {
            provider: Provider::new(config.issuer().to_owned()),
            config,
            meta,
            pending: PendingLogins::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Discovers the provider now, so that a misconfiguration shows in the log; a failure is
    /// retried at the next sign-in.
    pub async fn discover(&self) {
        match self.provider.metadata().await {
            Ok(_) => tracing::info!(
                issuer = self.provider.issuer(),
                "OpenID Connect provider discovered"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "OpenID Connect discovery failed; retried at the next sign-in")
            }
        }
    }

    /// Starts a sign-in that will land on `return_to` (default `/`), in the browser that holds
    /// `binding` (reused when it is one of ours, so sign-ins started in two tabs both work).
    pub async fn start(
        &self,
        return_to: Option<String>,
        binding: Option<&str>,
    ) -> Result<Started, SignInError> {
        self.start_inner(return_to, binding)
            .await
            .inspect_err(SignInError::log)
    }

    async fn start_inner(
        &self,
        return_to: Option<String>,
        binding: Option<&str>,
    ) -> Result<Started, SignInError> {
        let return_to = match return_to {
            None => "/".to_owned(),
            Some(path) if is_local_path(&path) => path,
            Some(_) => return Err(SignInError::ReturnTo),
        };
        let metadata = self
            .provider
            .metadata()
            .await
            .map_err(SignInError::Unavailable)?;
        let browser = binding
            .filter(|v| is_random_token(v))
            .map_or_else(random_token, str::to_owned);
        let state = random_token();
        let nonce = random_token();
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let now = Instant::now();
        let pending = Pending {
            verifier,
            nonce: nonce.clone(),
            browser: Sha256::digest(browser.as_bytes()).into(),
            return_to,
            started: now,
        };
        if self.pending.insert(state.clone(), pending, now).is_err() {
            return Err(SignInError::Busy);
        }
        let config = &self.config;
        let mut url = metadata.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", config.client_id())
            .append_pair("redirect_uri", config.redirect_url().as_str())
            .append_pair("scope", config.scopes())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(Started {
            authorization_url: url,
            binding: browser,
        })
    }

    /// Finishes a sign-in from the provider's answer, in the browser that holds `binding`:
    /// state known, unexpired and unused, same browser, same issuer, then code → tokens →
    /// verified identity → local user → session. The state is used up whatever happens.
    pub async fn finish(
        &self,
        response: AuthorizationResponse,
        binding: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        self.finish_inner(response, binding)
            .await
            .inspect_err(SignInError::log)
    }

    async fn finish_inner(
        &self,
        response: AuthorizationResponse,
        binding: Option<&str>,
    ) -> Result<SignedIn, SignInError> {
        // Whatever happens next, this state has been used.
        let pending = response
            .state
            .as_deref()
            .and_then(|s| self.pending.take(s, Instant::now()));
        if let Some(error) = &response.error {
            let code = provider::oauth_code(error);
            return Err(if code == "access_denied" {
                SignInError::Denied
            } else {
                SignInError::Refused(code)
            });
        }
        let Some(pending) = pending else {
            return Err(SignInError::UnknownState);
        };
        let browser: Option<[u8; 32]> = binding.map(|v| Sha256::digest(v.as_bytes()).into());
        if browser != Some(pending.browser) {
            return Err(SignInError::OtherBrowser);
        }
        if response
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.config.issuer())
        {
            return Err(SignInError::OtherIssuer);
        }
        let Some(code) = response.code.filter(|c| !c.is_empty()) else {
            return Err(SignInError::NoCode);
        };
        let session = self.session(&code, &pending).await?;
        tracing::info!("OpenID Connect sign-in");
        Ok(SignedIn {
            session,
            return_to: pending.return_to,
        })
    }

    /// Code → tokens → verified identity → local user → session.
    async fn session(&self, code: &str, pending: &Pending) -> Result<SessionToken, SignInError> {
        let config = &self.config;
        let client = Client {
            id: config.client_id(),
            secret: config.client_secret(),
            redirect_uri: config.redirect_url().as_str(),
        };
        let tokens = self
            .provider
            .exchange(&client, code, &pending.verifier)
            .await
            .map_err(SignInError::Provider)?;
        let id_token = tokens.id_token.ok_or_else(|| {
            SignInError::Provider(ProviderError::Unusable(
                "the token endpoint returned no ID token (is `openid` among the scopes?)".into(),
            ))
        })?;
        let jws = Jws::parse(&id_token).map_err(SignInError::Token)?;
        self.verify(&jws).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let identity = jwt::check_claims(
            jws.payload(),
            &Expected {
                issuer: config.issuer(),
                client_id: config.client_id(),
                nonce: &pending.nonce,
                now,
                leeway: LEEWAY_SECS,
            },
        )
        .map_err(SignInError::Token)?;
        let mut profile = identity.profile;
        // Some providers (ProConnect) tell who the person is only at the userinfo endpoint.
        if let (true, Some(access_token)) = (profile.is_empty(), &tokens.access_token) {
            match self.userinfo(access_token, &identity.subject).await {
                Ok(Some(found)) => profile = found,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "OpenID Connect userinfo not used"),
            }
        }
        let issuer = config.issuer();
        let subject = &identity.subject;
        let user = match self
            .meta
            .upsert_oidc_user(
                issuer,
                subject,
                profile.email.as_deref(),
                profile.name.as_deref(),
            )
            .await
        {
            // A profile the store refuses (say, an odd email) must not block signing in.
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                tracing::info!(error = %e, "OpenID Connect profile not stored");
                self.meta
                    .upsert_oidc_user(issuer, subject, None, None)
                    .await
            }
            other => other,
        }
        .map_err(SignInError::Store)?;
        if !user.active {
            return Err(SignInError::Deactivated);
        }
        self.meta
            .create_session(&user.id)
            .await
            .map_err(SignInError::Store)
    }

    /// Checks a JWS from the provider against its keys, fetching them again once if the
    /// token names a key we do not have (the provider may have rotated its keys).
    async fn verify(&self, jws: &Jws<'_>) -> Result<(), SignInError> {
        let (generation, keys) = self
            .provider
            .keys(None)
            .await
            .map_err(SignInError::Provider)?;
        match jws.verify(&keys) {
            Err(TokenError::UnknownKey(_)) => {
                let (_, keys) = self
                    .provider
                    .keys(Some(generation))
                    .await
                    .map_err(SignInError::Provider)?;
                jws.verify(&keys)
            }
            other => other,
        }
        .map_err(SignInError::Token)
    }

    /// The person's profile from the userinfo endpoint, plain JSON or a signed JWT.
    async fn userinfo(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<Option<Profile>, SignInError> {
        let answer = self
            .provider
            .userinfo(access_token)
            .await
            .map_err(SignInError::Provider)?;
        let config = &self.config;
        let check = |claims: &[u8]| {
            jwt::check_userinfo(claims, subject, config.issuer(), config.client_id())
                .map_err(SignInError::Token)
        };
        match answer {
            None => Ok(None),
            Some(Userinfo::Claims(body)) => check(&body).map(Some),
            Some(Userinfo::Jwt(token)) => {
                let jws = Jws::parse(&token).map_err(SignInError::Token)?;
                self.verify(&jws).await?;
                check(jws.payload()).map(Some)
            }
        }
    }
}

/// 256 random bits, base64url: states, nonces, PKCE verifiers (43 characters, RFC 7636 §4.1)
/// and browser bindings.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn is_random_token(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A path on this hub: no scheme, no host (`//evil.example`), no backslash tricks.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 512
        && !path
            .bytes()
            .any(|b| b == b'\\' || b.is_ascii_control() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_the_hub() {
        for ok in ["/", "/portal", "/a/b?c=d"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "",
            "portal",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/a\r\nSet-Cookie: x",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn random_tokens_are_pkce_verifiers() {
        let t = random_token();
        assert!(is_random_token(&t), "{t}");
        assert_ne!(t, random_token());
    }

    #[test]
    fn provider_failures_are_upstream_and_keep_their_kind() {
        let unusable = SignInError::Provider(ProviderError::Unusable("down".into()));
        assert!(unusable.is_upstream());
        assert_eq!(unusable.kind(), ErrorKind::Unavailable);
        let refused = SignInError::Provider(ProviderError::Refused("invalid_grant".into()));
        assert!(!refused.is_upstream());
        assert_eq!(refused.kind(), ErrorKind::InvalidInput);
        assert!(SignInError::Token(TokenError::Signature).is_upstream());
        assert_eq!(SignInError::Deactivated.kind(), ErrorKind::PermissionDenied);
        assert_eq!(SignInError::Busy.kind(), ErrorKind::Unavailable);
    }
}
