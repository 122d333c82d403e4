//! Who is calling: the [`Caller`] extractor every authenticated endpoint takes, and the
//! login, logout and `me` endpoints.
//!
//! A credential is `Authorization: Bearer <token>` or the `agora_session` cookie; the token
//! is an API token (`agora_...`) or a session token (`agoras_...`, from a password login or
//! an OpenID Connect login). Both resolve to the same [`Principal`]. Missing, unknown,
//! revoked or expired credentials, and deactivated users, all get the same 401.
//!
//! Cookies are sent by browsers on their own, so a cookie-authenticated request that
//! changes state must come from the hub's own origin, and so must a password login (else
//! another site could log a visitor in to an account of its choosing): see [`cross_site`].
//! Together with `SameSite=Lax` and JSON-only bodies (`api::Body`) this stops cross-site
//! request forgery.

use agora_service::governance::{Principal, Role};
use agora_service::{Authenticated, CredentialKind};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{Doc, Who};
use super::{Api, Body};
use crate::api::limit::Throttle;
use crate::http::{ApiError, ApiResult, AppState};

/// The browser session cookie (set by password and OpenID Connect logins).
pub(crate) const SESSION_COOKIE: &str = "agora_session";

const UNAUTHENTICATED: &str = "authentication required: send `Authorization: Bearer <API token \
     or session token>` or log in (POST /api/v1/auth/login); unknown, revoked and expired \
     credentials are refused alike";

/// An authenticated caller.
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) kind: CredentialKind,
    /// What the query service authenticated (to open query sessions).
    pub(crate) authenticated: Authenticated,
    /// The credential itself (to end the session at logout). Never logged.
    token: String,
    from_cookie: bool,
}

impl Caller {
    /// The session token this request was authenticated with; `None` for an API token.
    pub(crate) fn session_token(&self) -> Option<&str> {
        (self.kind == CredentialKind::Session).then_some(self.token.as_str())
    }

    /// The principal, if it holds `role`; else 403 with `why` (which names no object).
    pub(crate) fn require(&self, role: Role, why: &str) -> ApiResult<&Principal> {
        if self.principal.has(role) {
            Ok(&self.principal)
        } else {
            Err(ApiError::forbidden(why))
        }
    }
}

/// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 7235 §2.1) and
/// may be followed by several spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The credential a request carries: `(token, from_cookie)`. A malformed `Authorization`
/// header is an error, not "no credential".
fn credential(headers: &HeaderMap) -> ApiResult<Option<(String, bool)>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(bearer_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated(UNAUTHENTICATED))?;
        return Ok(Some((token.to_owned(), false)));
    }
    Ok(cookie(headers, SESSION_COOKIE).map(|t| (t, true)))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a browser says this request comes from another site: its `Origin` header (or,
/// when it sent none, the origin of its `Referer`) names neither the host the request was
/// sent to (`Host`, or `X-Forwarded-Host` behind a proxy) nor the hub's public URL. An
/// opaque origin (`null`) is another site. A request with neither header (curl, the CLI,
/// scripts) is no browser's cross-site request.
pub(crate) fn cross_site(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(claimed) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return false;
    };
    let Some(from) = claimed.to_str().ok().and_then(authority_of) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok());
    let own = [host, authority_of(public_url)];
    !own.into_iter()
        .flatten()
        .any(|o| o.eq_ignore_ascii_case(from))
}

/// The `host[:port]` of an absolute URL or origin (`scheme://host:port/path...`).
fn authority_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    (!authority.is_empty()).then_some(authority)
}

/// A state-changing request authenticated by cookie must come from the hub's own pages.
fn check_same_origin(parts: &Parts, public_url: &str) -> ApiResult<()> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if cross_site(&parts.headers, public_url) {
        return Err(ApiError::forbidden(
            "cross-site request refused: a request authenticated by the session cookie must come \
             from the hub's own origin",
        ));
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let (token, from_cookie) = credential(&parts.headers)?
            .ok_or_else(|| ApiError::unauthenticated(UNAUTHENTICATED))?;
        let authenticated = agora_auth::resolve_token(&state.home, &token)
            .await
            .map_err(ApiError::from_error)?
            .ok_or_else(|| ApiError::unauthenticated(UNAUTHENTICATED))?;
        if from_cookie {
            check_same_origin(parts, &state.public_url)?;
        }
        Ok(Caller {
            principal: authenticated.principal().clone(),
            kind: authenticated.kind(),
            authenticated,
            token,
            from_cookie,
        })
    }
}

/// The caller if it presented a valid credential; `None` otherwise (public endpoints ignore
/// stale credentials instead of refusing).
pub(crate) struct MaybeCaller(pub(crate) Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => Ok(MaybeCaller(Some(caller))),
            Err(_) => Ok(MaybeCaller(None)),
        }
    }
}

/// `Set-Cookie` value for a session token, or to clear the cookie (`max_age_secs` 0).
/// `Secure` when the request reached a TLS proxy (`X-Forwarded-Proto: https`).
pub(crate) fn session_cookie(token: &str, max_age_secs: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let value = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age_secs.max(0),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).expect("tokens are ASCII")
}

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::POST,
        "/api/v1/auth/login",
        Doc::new("login", "Log in with a local password")
            .tag("auth")
            .who(Who::Public)
            .describe(
                "Opens a session: returns its token and sets the `agora_session` cookie \
                 (HttpOnly, SameSite=Lax). Unknown logins, wrong passwords and deactivated \
                 accounts get the same 401. After repeated failures a login name is locked \
                 for a while (429 with Retry-After), whether the account exists or not; \
                 requests are also limited per client address. A login a browser sends from \
                 another site (its Origin, or else its Referer, is not the hub) is refused \
                 (403).",
            )
            .body("LoginRequest")
            .ok(200, "Session")
            .errors(&[401, 403, 429]),
        login,
    )
    .route(
        Method::POST,
        "/api/v1/auth/logout",
        Doc::new("logout", "End the session used for this request")
            .tag("auth")
            .who(Who::Authenticated)
            .describe(
                "Ends the session (cookie or bearer session token) and clears the cookie. \
                 API tokens are revoked with DELETE /api/v1/users/{id}/tokens/{token_id}.",
            )
            .ok(200, "LoggedOut"),
        logout,
    )
    .route(
        Method::GET,
        "/api/v1/me",
        Doc::new(
            "me",
            "The caller: user profile and the roles this credential carries",
        )
        .tag("auth")
        .who(Who::Authenticated)
        .ok(200, "Me"),
        me,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    login: String,
    password: String,
}

const LOGIN_FAILED: &str = "login failed: unknown login or wrong password";

async fn login(
    State(state): State<AppState>,
    _throttle: Throttle,
    headers: HeaderMap,
    Body(request): Body<LoginRequest>,
) -> ApiResult<Response> {
    // Login CSRF: another site must not log a visitor in (to an account it controls, whose
    // activity it could then read).
    if cross_site(&headers, &state.public_url) {
        return Err(ApiError::forbidden(
            "cross-site login refused: log in from the hub's own pages, or without an Origin \
             header (scripts, the command line)",
        ));
    }
    let meta = &state.home.governance();
    let principal = meta
        .authenticate_password(&request.login, &request.password)
        .await?
        .ok_or_else(|| ApiError::unauthenticated(LOGIN_FAILED))?;
    let session = meta.create_session(&principal.name).await?;
    let max_age = meta.config().sessions.absolute.num_seconds();
    let cookie = session_cookie(&session.token, max_age, &headers);
    let body = Json(json!({
        "token": session.token,
        "user_id": session.user_id,
        "roles": principal.roles,
        "expires_at": session.expires_at,
        "idle_timeout_secs": session.idle_timeout_secs,
    }));
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Caller,
) -> ApiResult<Response> {
    if caller.kind != CredentialKind::Session {
        return Err(ApiError::invalid(
            "logout ends a session; revoke an API token with DELETE /api/v1/users/{id}/tokens/{token_id}",
        ));
    }
    state
        .home
        .governance()
        .revoke_session(&caller.token)
        .await?;
    let mut response = Json(json!({"logged_out": true})).into_response();
    if caller.from_cookie || cookie(&headers, SESSION_COOKIE).is_some() {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, session_cookie("", 0, &headers));
    }
    Ok(response)
}

async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let user = state.home.governance().user(p, &p.name).await?;
    Ok(Json(json!({
        "user": user,
        "roles": p.roles,
        "authenticated_by": caller.kind.as_str(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for header in ["Bearer agora_t", "bearer agora_t", "BEARER  agora_t"] {
            assert_eq!(bearer_token(header), Some("agora_t"), "{header}");
        }
        for header in ["Basic agora_t", "Beareragora_t", "agora_t"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; agora_session=agoras_x ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("agoras_x"));
        assert_eq!(credential(&h).unwrap(), Some(("agoras_x".into(), true)));
        // A bearer header wins over the cookie; a malformed one is refused.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer agora_t"),
        );
        assert_eq!(credential(&h).unwrap(), Some(("agora_t".into(), false)));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eA=="),
        );
        assert!(credential(&h).is_err());
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        let mut h = HeaderMap::new();
        let c = session_cookie("agoras_t", 60, &h);
        assert_eq!(
            c.to_str().unwrap(),
            "agora_session=agoras_t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            session_cookie("", 0, &h)
                .to_str()
                .unwrap()
                .ends_with("Max-Age=0; Secure")
        );
    }

    #[test]
    fn cookie_requests_that_change_state_must_be_same_origin() {
        let parts = |method: Method, origin: Option<&'static str>| {
            let mut b = axum::http::Request::builder()
                .method(method)
                .uri("/api/v1/auth/logout")
                .header(header::HOST, "hub.example:8080");
            if let Some(o) = origin {
                b = b.header(header::ORIGIN, o);
            }
            b.body(()).unwrap().into_parts().0
        };
        let public = "https://hub.example";
        let check = |p: &Parts| check_same_origin(p, public);
        assert!(check(&parts(Method::POST, None)).is_ok());
        assert!(check(&parts(Method::POST, Some("https://hub.example:8080"))).is_ok());
        assert!(check(&parts(Method::POST, Some("https://evil.example"))).is_err());
        assert!(check(&parts(Method::POST, Some("null"))).is_err());
        assert!(check(&parts(Method::GET, Some("https://evil.example"))).is_ok());
    }

    /// Issue 11, item 9: a login a browser sends from another site opens no session and
    /// sets no cookie; from the hub's own pages, or from a script (no Origin), it does.
    #[tokio::test]
    async fn a_cross_site_login_is_refused() {
        use crate::testing::{app, assert_envelope, request, researcher, send};
        let (_dir, app, op) = app().await;
        let password = "a long enough passphrase";
        researcher(&app, &op, "alice", password).await;
        let body = json!({"login": "alice", "password": password}).to_string();
        let login = |headers: &[(header::HeaderName, &'static str)]| {
            let mut req = request(Method::POST, "/api/v1/auth/login", None)
                .header(header::CONTENT_TYPE, "application/json");
            for (k, v) in headers {
                req = req.header(k, *v);
            }
            req.body(axum::body::Body::from(body.clone())).unwrap()
        };
        for headers in [
            vec![(header::ORIGIN, "http://evil.example")],
            vec![(header::ORIGIN, "null")],
            vec![(header::REFERER, "http://evil.example/a/page")],
            vec![
                (header::ORIGIN, "http://evil.example"),
                (header::REFERER, "http://127.0.0.1:8080/"),
            ],
        ] {
            let answer = send(&app, login(&headers)).await;
            let kind = assert_envelope(&answer, StatusCode::FORBIDDEN, &format!("{headers:?}"));
            assert_eq!(kind, "permission_denied");
            assert!(
                !answer.headers.contains_key(header::SET_COOKIE),
                "{headers:?}"
            );
            assert!(answer.body.get("token").is_none());
        }
        for headers in [
            vec![],
            vec![(header::ORIGIN, "http://127.0.0.1:8080")],
            vec![(header::REFERER, "http://127.0.0.1:8080/login")],
        ] {
            let answer = send(&app, login(&headers)).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{headers:?}: {}",
                answer.text
            );
            assert!(
                answer.headers.contains_key(header::SET_COOKIE),
                "{headers:?}"
            );
        }
    }

    /// Issue 11, item 9: the Referer speaks when the Origin is missing; the public URL is
    /// the hub's own origin too (behind a proxy that rewrites Host).
    #[test]
    fn the_referer_counts_when_there_is_no_origin() {
        let headers = |pairs: &[(header::HeaderName, &'static str)]| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            for (k, v) in pairs {
                h.insert(k.clone(), HeaderValue::from_static(v));
            }
            h
        };
        let public = "https://hub.example/";
        assert!(!cross_site(&headers(&[]), public));
        assert!(cross_site(
            &headers(&[(header::REFERER, "http://evil.example/page?x=1")]),
            public
        ));
        assert!(!cross_site(
            &headers(&[(header::REFERER, "http://127.0.0.1:8080/login")]),
            public
        ));
        assert!(!cross_site(
            &headers(&[(header::ORIGIN, "https://hub.example")]),
            public
        ));
        assert!(cross_site(
            &headers(&[(header::ORIGIN, "https://hub.example.evil.example")]),
            public
        ));
        // The Origin wins over a same-site Referer.
        assert!(cross_site(
            &headers(&[
                (header::ORIGIN, "http://evil.example"),
                (header::REFERER, "http://127.0.0.1:8080/")
            ]),
            public
        ));
        assert!(cross_site(
            &headers(&[(header::REFERER, "not a url")]),
            public
        ));
    }
}
