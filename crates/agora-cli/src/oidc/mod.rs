//! Signing in with OpenID Connect: the authorization-code flow with PKCE (S256), for a
//! confidential client.
//!
//! ```text
//! browser ── GET /auth/oidc/login ──► hub: new state, nonce, PKCE verifier (kept in memory,
//!    │                                      10 minutes, single use) + browser-binding cookie
//!    ◄── 302 provider /authorize?state&nonce&code_challenge ──┘
//!    │   (the person signs in at the provider)
//!    └── GET /auth/oidc/callback?code&state ──► hub: state known, unexpired, same browser
//!                                                 ├─ POST token endpoint (code + verifier + secret)
//!                                                 ├─ ID token: signature (JWKS), iss, aud/azp,
//!                                                 │  exp/iat, nonce
//!                                                 ├─ (issuer, subject) → local user (agora-govern)
//!    ◄── 303 return_to + Set-Cookie agora_session ┘─ new session
//! ```
//!
//! The `agora_session` cookie carries the session token, which the API accepts like a
//! bearer token. The browser-binding cookie stops login CSRF: a callback URL carrying someone
//! else's code and state fails in any browser but the one that started that sign-in.
//! Error pages say what went wrong in plain words; details (never a person's identity) go to
//! the server log.

mod jwt;
mod pending;
mod provider;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use agora_core::{ErrorKind, HasKind};
use agora_service::governance::{Governance, SessionToken};
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use self::jwt::{Expected, Jws, Profile, TokenError};
use self::pending::{Pending, PendingLogins};
use self::provider::{Client, Provider, ProviderError, Userinfo};
use crate::cli::OidcArgs;

const LOGIN_PATH: &str = "/auth/oidc/login";
const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// The session cookie the API reads.
pub(crate) const SESSION_COOKIE: &str = "agora_session";
/// Ties a sign-in to the browser that started it.
const BINDING_COOKIE: &str = "agora_oidc_login";
/// Tolerated clock difference with the provider.
const LEEWAY_SECS: i64 = 60;
/// Environment variable holding the client secret (there is deliberately no flag for it).
const SECRET_ENV: &str = "AGORA_OIDC_CLIENT_SECRET";

/// A validated OpenID Connect configuration.
#[derive(Debug, Clone)]
pub(crate) struct OidcConfig {
    issuer: String,
    client_id: String,
    client_secret: ClientSecret,
    redirect_url: Url,
    scopes: String,
}

#[derive(Clone)]
struct ClientSecret(String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl OidcConfig {
    /// The configuration `agora serve` was given, `None` when OpenID Connect is off.
    pub(crate) fn from_args(args: &OidcArgs) -> Result<Option<Self>> {
        let Some(issuer) = &args.oidc_issuer else {
            if args.oidc_client_id.is_some()
                || args.oidc_redirect_url.is_some()
                || args.oidc_client_secret_file.is_some()
            {
                bail!("OpenID Connect options need --oidc-issuer (or AGORA_OIDC_ISSUER)");
            }
            return Ok(None);
        };
        let url =
            Url::parse(issuer).with_context(|| format!("--oidc-issuer {issuer:?} is not a URL"))?;
        if !provider::acceptable(&url) || url.query().is_some() || url.fragment().is_some() {
            bail!(
                "--oidc-issuer {issuer:?} must be an https URL without query or fragment (http only on loopback)"
            );
        }
        let client_id = args
            .oidc_client_id
            .clone()
            .filter(|c| !c.is_empty())
            .context("OpenID Connect needs --oidc-client-id (or AGORA_OIDC_CLIENT_ID)")?;
        let redirect = args.oidc_redirect_url.as_deref().context(
            "OpenID Connect needs --oidc-redirect-url (or AGORA_OIDC_REDIRECT_URL), e.g. https://hub.example/auth/oidc/callback",
        )?;
        let redirect_url = Url::parse(redirect)
            .with_context(|| format!("--oidc-redirect-url {redirect:?} is not a URL"))?;
        if !provider::acceptable(&redirect_url)
            || !redirect_url.path().ends_with(CALLBACK_PATH)
            || redirect_url.query().is_some()
            || redirect_url.fragment().is_some()
        {
            bail!(
                "--oidc-redirect-url {redirect:?} must be an https URL (http only on loopback) whose path ends with {CALLBACK_PATH}"
            );
        }
        let scopes: Vec<&str> = args.oidc_scopes.split_whitespace().collect();
        if !scopes.contains(&"openid") {
            bail!("--oidc-scopes {:?} must include openid", args.oidc_scopes);
        }
        Ok(Some(Self {
            issuer: issuer.clone(),
            client_id,
            client_secret: ClientSecret(client_secret(args.oidc_client_secret_file.as_deref())?),
            redirect_url,
            scopes: scopes.join(" "),
        }))
    }

    fn secure(&self) -> bool {
        self.redirect_url.scheme() == "https"
    }

    /// Where the browser-binding cookie is sent: the directory of the callback, which is
    /// also that of the login endpoint, as the browser sees them (behind any path prefix).
    fn binding_path(&self) -> &str {
        let path = self.redirect_url.path();
        &path[..path.len() - "callback".len()]
    }
}

/// The client secret from its file (owner-only, like the hub's other secrets) or from the
/// environment; never from a flag, which any local user could read in `ps`.
fn client_secret(file: Option<&Path>) -> Result<String> {
    let from_env = std::env::var(SECRET_ENV).ok();
    let secret = match (file, from_env) {
        (Some(_), Some(_)) => bail!(
            "give the OpenID Connect client secret once: --oidc-client-secret-file or {SECRET_ENV}, not both"
        ),
        (Some(path), None) => {
            let mode = std::fs::metadata(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            text.trim_end_matches(['\r', '\n']).to_owned()
        }
        (None, Some(secret)) => secret,
        (None, None) => bail!(
            "OpenID Connect needs the client secret: --oidc-client-secret-file <file> or the {SECRET_ENV} environment variable"
        ),
    };
    if secret.is_empty() {
        bail!("the OpenID Connect client secret is empty");
    }
    Ok(secret)
}

struct Oidc {
    config: OidcConfig,
    meta: Governance,
    provider: Provider,
    pending: PendingLogins,
}

/// The sign-in endpoints: `GET /auth/oidc/login` and `GET /auth/oidc/callback`.
pub(crate) fn router(config: OidcConfig, meta: Governance) -> Router {
    let oidc = Arc::new(Oidc {
        provider: Provider::new(config.issuer.clone()),
        config,
        meta,
        pending: PendingLogins::default(),
    });
    // Discover now so that a misconfiguration shows in the log at startup; a failure is
    // retried at the first sign-in, so the hub also starts while the provider is down.
    let early = oidc.clone();
    tokio::spawn(async move {
        match early.provider.metadata().await {
            Ok(_) => tracing::info!(
                issuer = early.provider.issuer(),
                "OpenID Connect provider discovered"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "OpenID Connect discovery failed; retried at the next sign-in")
            }
        }
    });
    Router::new()
        .route(LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .with_state(oidc)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    /// A path on this hub to land on after signing in (default `/`).
    return_to: Option<String>,
}

async fn login(
    State(oidc): State<Arc<Oidc>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let return_to = match query.return_to {
        None => "/".to_owned(),
        Some(path) if is_local_path(&path) => path,
        Some(_) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in refused",
                "return_to must be a path on this hub, such as /portal.",
            );
        }
    };
    let metadata = match oidc.provider.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in unavailable");
            return unavailable();
        }
    };
    // Reuse the browser's binding so sign-ins started in two tabs both work.
    let browser = cookie(&headers, BINDING_COOKIE)
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
    if oidc.pending.insert(state.clone(), pending, now).is_err() {
        tracing::warn!("too many OpenID Connect sign-ins in progress");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Too many sign-ins are in progress. Try again in a few minutes.",
        );
    }
    let config = &oidc.config;
    let mut url = metadata.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", config.redirect_url.as_str())
        .append_pair("scope", &config.scopes)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let binding = format!(
        "{BINDING_COOKIE}={browser}; HttpOnly; SameSite=Lax; Path={}; Max-Age={}{}",
        config.binding_path(),
        pending::TTL.as_secs(),
        if config.secure() { "; Secure" } else { "" }
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    set(headers, header::LOCATION, url.as_str());
    set(headers, header::SET_COOKIE, &binding);
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// RFC 9207: the issuer of the authorization response, when the provider sends it.
    iss: Option<String>,
}

async fn callback(
    State(oidc): State<Arc<Oidc>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    // Whatever happens next, this state has been used.
    let pending = query
        .state
        .as_deref()
        .and_then(|s| oidc.pending.take(s, Instant::now()));
    if let Some(error) = &query.error {
        let code = provider::oauth_code(error);
        tracing::info!(error = code, "OpenID Connect sign-in ended at the provider");
        return if code == "access_denied" {
            page(
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                "The identity provider did not grant access (access_denied). You are not signed in.",
            )
        } else {
            page(
                StatusCode::BAD_REQUEST,
                "Sign-in failed",
                &format!(
                    "The identity provider refused the sign-in ({code}). You are not signed in."
                ),
            )
        };
    }
    let Some(pending) = pending else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "This sign-in is unknown, was already used or has expired. Start again.",
        );
    };
    let browser: Option<[u8; 32]> =
        cookie(&headers, BINDING_COOKIE).map(|v| Sha256::digest(v.as_bytes()).into());
    if browser != Some(pending.browser) {
        tracing::warn!("OpenID Connect callback from a browser that did not start the sign-in");
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "This sign-in was not started in this browser. Start again.",
        );
    }
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != oidc.config.issuer)
    {
        tracing::warn!("OpenID Connect callback names another issuer");
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in response comes from another identity provider. Start again.",
        );
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in response has no authorization code. Start again.",
        );
    };
    match oidc.finish(&code, &pending).await {
        Ok(session) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let max_age = (session.expires_at.timestamp() - now).max(0);
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{}",
                session.token,
                if oidc.config.secure() { "; Secure" } else { "" }
            );
            tracing::info!("OpenID Connect sign-in");
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            set(headers, header::LOCATION, &pending.return_to);
            set(headers, header::SET_COOKIE, &cookie);
            set(headers, header::CACHE_CONTROL, "no-store");
            response
        }
        Err(failure) => failure.into_response(),
    }
}

/// Why a callback with a good state still failed.
#[derive(Debug)]
enum Failure {
    Provider(ProviderError),
    Token(TokenError),
    Deactivated,
    Store(agora_service::governance::Error),
}

impl Oidc {
    /// Code → tokens → verified identity → local user → session.
    async fn finish(&self, code: &str, pending: &Pending) -> Result<SessionToken, Failure> {
        let config = &self.config;
        let client = Client {
            id: &config.client_id,
            secret: &config.client_secret.0,
            redirect_uri: config.redirect_url.as_str(),
        };
        let tokens = self
            .provider
            .exchange(&client, code, &pending.verifier)
            .await
            .map_err(Failure::Provider)?;
        let id_token = tokens.id_token.ok_or_else(|| {
            Failure::Provider(ProviderError::Unusable(
                "the token endpoint returned no ID token (is `openid` among the scopes?)".into(),
            ))
        })?;
        let jws = Jws::parse(&id_token).map_err(Failure::Token)?;
        self.verify(&jws).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let identity = jwt::check_claims(
            jws.payload(),
            &Expected {
                issuer: &config.issuer,
                client_id: &config.client_id,
                nonce: &pending.nonce,
                now,
                leeway: LEEWAY_SECS,
            },
        )
        .map_err(Failure::Token)?;
        let mut profile = identity.profile;
        // Some providers (ProConnect) tell who the person is only at the userinfo endpoint.
        if let (true, Some(access_token)) = (profile.is_empty(), &tokens.access_token) {
            match self.userinfo(access_token, &identity.subject).await {
                Ok(Some(found)) => profile = found,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "OpenID Connect userinfo not used"),
            }
        }
        let issuer = &config.issuer;
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
        .map_err(Failure::Store)?;
        if !user.active {
            return Err(Failure::Deactivated);
        }
        self.meta
            .create_session(&user.id)
            .await
            .map_err(Failure::Store)
    }
}

impl Oidc {
    /// Checks a JWS from the provider against its keys, fetching them again once if the
    /// token names a key we do not have (the provider may have rotated its keys).
    async fn verify(&self, jws: &Jws<'_>) -> Result<(), Failure> {
        let (generation, keys) = self.provider.keys(None).await.map_err(Failure::Provider)?;
        match jws.verify(&keys) {
            Err(TokenError::UnknownKey(_)) => {
                let (_, keys) = self
                    .provider
                    .keys(Some(generation))
                    .await
                    .map_err(Failure::Provider)?;
                jws.verify(&keys)
            }
            other => other,
        }
        .map_err(Failure::Token)
    }

    /// The person's profile from the userinfo endpoint, plain JSON or a signed JWT.
    async fn userinfo(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<Option<Profile>, Failure> {
        let answer = self
            .provider
            .userinfo(access_token)
            .await
            .map_err(Failure::Provider)?;
        let config = &self.config;
        let check = |claims: &[u8]| {
            jwt::check_userinfo(claims, subject, &config.issuer, &config.client_id)
                .map_err(Failure::Token)
        };
        match answer {
            None => Ok(None),
            Some(Userinfo::Claims(body)) => check(&body).map(Some),
            Some(Userinfo::Jwt(token)) => {
                let jws = Jws::parse(&token).map_err(Failure::Token)?;
                self.verify(&jws).await?;
                check(jws.payload()).map(Some)
            }
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider(e) => e.fmt(f),
            Self::Token(e) => e.fmt(f),
            Self::Deactivated => f.write_str("the user is deactivated"),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Provider(ProviderError::Refused(code)) => {
                tracing::info!(error = code, "OpenID Connect code refused by the provider");
                page(
                    StatusCode::BAD_REQUEST,
                    "Sign-in failed",
                    &format!(
                        "The identity provider did not accept this sign-in ({code}): it was already used or has expired. Start again."
                    ),
                )
            }
            Self::Provider(ProviderError::Unusable(e)) => {
                tracing::warn!(error = %e, "OpenID Connect sign-in failed at the provider");
                page(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in failed",
                    "The sign-in could not be completed with the identity provider. Try again later; the operator can find details in the server log.",
                )
            }
            Self::Token(e) => {
                tracing::warn!(error = %e, "OpenID Connect ID token refused");
                page(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in failed",
                    "The identity provider's answer could not be verified, so you are not signed in. The operator can find details in the server log.",
                )
            }
            Self::Deactivated => page(
                StatusCode::FORBIDDEN,
                "Account deactivated",
                "Your Agora account is deactivated. Ask the hub's operators.",
            ),
            Self::Store(e) => {
                tracing::error!(error = %e, "OpenID Connect sign-in failed in the metadata store");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "Internal error; the operator can find details in the server log.",
                )
            }
        }
    }
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "The identity provider cannot be used right now. Try again later; the operator can find details in the server log.",
    )
}

/// A small HTML page for the browser: what happened, and a way to start again.
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Agora</title></head>\n\
         <body><h1>{t}</h1><p>{m}</p><p><a href=\"login\">Sign in</a></p></body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    set(headers, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    response
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    // Every value here is ASCII we built or validated.
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// The value of cookie `name` in the request, if any.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("x_agora_oidc_login=a; agora_oidc_login=b"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("agora_session=c"));
        assert_eq!(cookie(&headers, "agora_oidc_login"), Some("b"));
        assert_eq!(cookie(&headers, "agora_session"), Some("c"));
        assert_eq!(cookie(&headers, "nope"), None);
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = escape("<b>\"x\" & y</b>");
        assert_eq!(html, "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;");
    }

    #[test]
    fn random_tokens_are_pkce_verifiers() {
        let t = random_token();
        assert!(is_random_token(&t), "{t}");
        assert_ne!(t, random_token());
    }
}
