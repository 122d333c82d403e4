//! Signing in with OpenID Connect over HTTP: `GET /auth/oidc/login` and
//! `GET /auth/oidc/callback`, the cookies and the pages the browser sees. The flow itself
//! (states, PKCE, tokens, ID-token checks, the local user and session) is `agora_auth`'s.
//!
//! The `agora_session` cookie carries the session token, which the API accepts like a
//! bearer token. The browser-binding cookie stops login CSRF: a callback URL carrying someone
//! else's code and state fails in any browser but the one that started that sign-in.
//! Error pages say what went wrong in plain words; details (never a person's identity) go to
//! the server log.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agora_auth::{
    AuthorizationResponse, CALLBACK_PATH, LOGIN_PATH, OidcConfig, ProviderError, SignInError,
    SignIns,
};
use agora_core::HasKind;
use agora_service::governance::Governance;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::api::auth::SESSION_COOKIE;
use crate::http::status_for;

/// Ties a sign-in to the browser that started it.
const BINDING_COOKIE: &str = "agora_oidc_login";

/// The sign-in endpoints: `GET /auth/oidc/login` and `GET /auth/oidc/callback`.
pub(crate) fn router(config: OidcConfig, meta: Governance) -> Router {
    let sign_ins = Arc::new(SignIns::new(config, meta));
    // Discover now so that a misconfiguration shows in the log at startup; a failure is
    // retried at the first sign-in, so the hub also starts while the provider is down.
    let early = sign_ins.clone();
    tokio::spawn(async move { early.discover().await });
    Router::new()
        .route(LOGIN_PATH, get(login))
        .route(CALLBACK_PATH, get(callback))
        .with_state(sign_ins)
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    /// A path on this hub to land on after signing in (default `/`).
    return_to: Option<String>,
}

async fn login(
    State(sign_ins): State<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let started = match sign_ins
        .start(query.return_to, cookie(&headers, BINDING_COOKIE))
        .await
    {
        Ok(started) => started,
        Err(e) => return failure_page(&e),
    };
    let config = sign_ins.config();
    let binding = format!(
        "{BINDING_COOKIE}={}; HttpOnly; SameSite=Lax; Path={}; Max-Age={}{}",
        started.binding,
        config.binding_path(),
        agora_auth::SIGN_IN_TTL.as_secs(),
        if config.secure() { "; Secure" } else { "" }
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    set(
        headers,
        header::LOCATION,
        started.authorization_url.as_str(),
    );
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
    State(sign_ins): State<Arc<SignIns>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let answer = AuthorizationResponse {
        code: query.code,
        state: query.state,
        error: query.error,
        iss: query.iss,
    };
    let signed_in = match sign_ins
        .finish(answer, cookie(&headers, BINDING_COOKIE))
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) => return failure_page(&e),
    };
    let session = &signed_in.session;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let max_age = (session.expires_at.timestamp() - now).max(0);
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{}",
        session.token,
        if sign_ins.config().secure() {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    set(headers, header::LOCATION, &signed_in.return_to);
    set(headers, header::SET_COOKIE, &cookie);
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// The one place a failed sign-in becomes a status and a page. The status follows the
/// error's kind ([`status_for`]), refined once: a provider that answered something unusable
/// or unverifiable is a bad gateway.
fn failure_page(e: &SignInError) -> Response {
    let status = if e.is_upstream() {
        StatusCode::BAD_GATEWAY
    } else {
        status_for(e.kind())
    };
    let (title, message) = match e {
        SignInError::ReturnTo => (
            "Sign-in refused",
            "return_to must be a path on this hub, such as /portal.".to_owned(),
        ),
        SignInError::Unavailable(_) => (
            "Sign-in unavailable",
            "The identity provider cannot be used right now. Try again later; the operator can find details in the server log.".to_owned(),
        ),
        SignInError::Busy => (
            "Sign-in unavailable",
            "Too many sign-ins are in progress. Try again in a few minutes.".to_owned(),
        ),
        SignInError::Denied => (
            "Sign-in cancelled",
            "The identity provider did not grant access (access_denied). You are not signed in.".to_owned(),
        ),
        SignInError::Refused(code) => (
            "Sign-in failed",
            format!("The identity provider refused the sign-in ({code}). You are not signed in."),
        ),
        SignInError::UnknownState => (
            "Sign-in failed",
            "This sign-in is unknown, was already used or has expired. Start again.".to_owned(),
        ),
        SignInError::OtherBrowser => (
            "Sign-in failed",
            "This sign-in was not started in this browser. Start again.".to_owned(),
        ),
        SignInError::OtherIssuer => (
            "Sign-in failed",
            "The sign-in response comes from another identity provider. Start again.".to_owned(),
        ),
        SignInError::NoCode => (
            "Sign-in failed",
            "The sign-in response has no authorization code. Start again.".to_owned(),
        ),
        SignInError::Provider(ProviderError::Refused(code)) => (
            "Sign-in failed",
            format!(
                "The identity provider did not accept this sign-in ({code}): it was already used or has expired. Start again."
            ),
        ),
        SignInError::Provider(ProviderError::Unusable(_)) => (
            "Sign-in failed",
            "The sign-in could not be completed with the identity provider. Try again later; the operator can find details in the server log.".to_owned(),
        ),
        SignInError::Token(_) => (
            "Sign-in failed",
            "The identity provider's answer could not be verified, so you are not signed in. The operator can find details in the server log.".to_owned(),
        ),
        SignInError::Deactivated => (
            "Account deactivated",
            "Your Agora account is deactivated. Ask the hub's operators.".to_owned(),
        ),
        SignInError::Store(_) => (
            "Sign-in failed",
            "Internal error; the operator can find details in the server log.".to_owned(),
        ),
    };
    page(status, title, &message)
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
    fn sign_in_failures_keep_their_statuses() {
        let cases = [
            (SignInError::ReturnTo, StatusCode::BAD_REQUEST),
            (SignInError::Busy, StatusCode::SERVICE_UNAVAILABLE),
            (
                SignInError::Unavailable(ProviderError::Unusable("down".into())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (SignInError::Denied, StatusCode::FORBIDDEN),
            (SignInError::Refused("x".into()), StatusCode::BAD_REQUEST),
            (SignInError::UnknownState, StatusCode::BAD_REQUEST),
            (SignInError::OtherBrowser, StatusCode::BAD_REQUEST),
            (SignInError::OtherIssuer, StatusCode::BAD_REQUEST),
            (SignInError::NoCode, StatusCode::BAD_REQUEST),
            (
                SignInError::Provider(ProviderError::Refused("invalid_grant".into())),
                StatusCode::BAD_REQUEST,
            ),
            (
                SignInError::Provider(ProviderError::Unusable("x".into())),
                StatusCode::BAD_GATEWAY,
            ),
            (
                SignInError::Token(agora_auth::TokenError::Signature),
                StatusCode::BAD_GATEWAY,
            ),
            (SignInError::Deactivated, StatusCode::FORBIDDEN),
        ];
        for (e, status) in cases {
            assert_eq!(failure_page(&e).status(), status, "{e:?}");
        }
    }
}
