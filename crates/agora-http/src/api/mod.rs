//! The governance API: accounts, project applications, permits, export requests, the public
//! registry and the citizen opt-out, over HTTP. Every endpoint is registered through [`Api`], which
//! records its OpenAPI description beside the route, so the served document
//! (`GET /api/v1/openapi.json`) lists exactly the routes the server answers.
//!
//! Authorization decisions are the library's (`agora_govern` takes the caller's
//! [`agora_service::governance::Principal`]); these modules authenticate, parse, and shape JSON.

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodFilter, on};
use serde::de::DeserializeOwned;

use crate::http::{ApiError, AppState};

mod audit;
pub(crate) mod auth;
mod exports;
pub(crate) mod limit;
pub(crate) mod openapi;
mod optout;
mod permits;
pub(crate) mod projects;
mod registry;
mod schemas;
mod users;

use openapi::Doc;

/// The router under construction and the OpenAPI description of each route in it.
pub(crate) struct Api {
    router: Router<AppState>,
    ops: Vec<(Method, &'static str, Doc)>,
}

impl Api {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    /// Registers `handler` for `method` on `path`, described by `doc`.
    pub(crate) fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        doc: Doc,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard HTTP method");
        self.router = self.router.route(path, on(filter, handler));
        self.ops.push((method, path, doc));
        self
    }

    /// The router, with `GET /api/v1/openapi.json` serving the description of every route.
    pub(crate) fn finish(self) -> Router<AppState> {
        let mut ops = self.ops;
        ops.push((
            Method::GET,
            openapi::PATH,
            Doc::new("openapi", "This OpenAPI 3.1 document")
                .tag("meta")
                .who(openapi::Who::Public)
                .ok(200, "OpenApiDocument"),
        ));
        let document = axum::body::Bytes::from(openapi::document(&ops).to_string());
        self.router.route(
            openapi::PATH,
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document,
                    )
                }
            }),
        )
    }
}

/// Registers every governance endpoint.
pub(crate) fn governance(api: Api) -> Api {
    let api = auth::routes(api);
    let api = users::routes(api);
    let api = projects::routes(api);
    let api = permits::routes(api);
    let api = exports::routes(api);
    let api = registry::routes(api);
    let api = audit::routes(api);
    optout::routes(api)
}

/// Largest request body accepted (a full application form fits comfortably). Larger bodies
/// get 413 (the router's `DefaultBodyLimit` is set to it).
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON request body: the one extractor of every endpoint that takes a body. Parse errors
/// say where and what, never echo the value sent (a body may carry a citizen identifier).
///
/// The body must be declared `application/json` (415 otherwise): a browser sends
/// `text/plain`, form and multipart bodies cross-site without asking, so parsing them as
/// JSON would let another site post to the API. An empty body needs no content type and
/// means `{}` (endpoints whose fields are all optional accept it). The body must arrive
/// within `ApiOptions::body_timeout` (408 otherwise) and fit in [`MAX_BODY_BYTES`] (413).
pub(crate) struct Body<T>(pub(crate) T);

/// Whether a `Content-Type` value is JSON: `application/json`, with parameters or not.
fn is_json(value: &axum::http::HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

const NOT_JSON: &str = "the request body must be JSON, sent with `Content-Type: application/json`";

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let declared = req.headers().get(axum::http::header::CONTENT_TYPE);
        let declared_json = match declared {
            Some(value) if !is_json(value) => {
                return Err(ApiError::http(StatusCode::UNSUPPORTED_MEDIA_TYPE, NOT_JSON));
            }
            Some(_) => true,
            None => false,
        };
        let bytes = match tokio::time::timeout(
            state.body_timeout,
            axum::body::Bytes::from_request(req, state),
        )
        .await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(rejection)) => return Err(ApiError::from_rejection(rejection)),
            Err(_) => return Err(ApiError::body_timeout()),
        };
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            // An empty body is an empty object: endpoints whose fields are all optional
            // accept it.
            axum::body::Bytes::from_static(b"{}")
        } else if !declared_json {
            return Err(ApiError::http(StatusCode::UNSUPPORTED_MEDIA_TYPE, NOT_JSON));
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ApiError::invalid(format!(
                "request body {}",
                agora_core::describe_json_error(&e)
            ))
        })
    }
}

/// Path parameters; a malformed one is a 400 in the error envelope (axum's own rejection is
/// plain text and quotes the value).
pub(crate) struct Path<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(ApiError::from_path_rejection)
    }
}

/// The query string; a malformed one is a 400 in the error envelope.
pub(crate) struct Query<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(ApiError::from_rejection)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;
    use serde_json::json;

    use super::*;
    use crate::testing::{app, assert_envelope, request, send};

    /// Issue 11, item 9: a body is JSON only when declared so. Browsers send `text/plain`,
    /// forms and multipart cross-site without a preflight; none of them is parsed.
    #[tokio::test]
    async fn bodies_must_be_declared_json() {
        let (_dir, app, op) = app().await;
        let login = json!({"login": "nobody", "password": "not the password"}).to_string();
        for (path, token) in [
            ("/api/v1/auth/login", None),
            ("/api/v1/sql", Some(op.as_str())),
        ] {
            for content_type in [
                Some("text/plain"),
                Some("text/plain; charset=utf-8"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data; boundary=x"),
                Some("application/xml"),
                Some("application/jsonp"),
                None,
            ] {
                let mut req = request(Method::POST, path, token);
                if let Some(ct) = content_type {
                    req = req.header(header::CONTENT_TYPE, ct);
                }
                let answer = send(&app, req.body(login.clone().into()).unwrap()).await;
                let what = format!("{path} as {content_type:?}");
                let kind = assert_envelope(&answer, StatusCode::UNSUPPORTED_MEDIA_TYPE, &what);
                assert_eq!(kind, "unsupported_media_type", "{what}");
                assert!(!answer.headers.contains_key(header::SET_COOKIE), "{what}");
            }
        }
        // Declared JSON, with or without a charset, is read (and this login fails as such).
        for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
            let req = request(Method::POST, "/api/v1/auth/login", None)
                .header(header::CONTENT_TYPE, content_type)
                .body(login.clone().into())
                .unwrap();
            let answer = send(&app, req).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{content_type}");
        }
        // An empty body needs no content type: it carries nothing to misread.
        let me = send(
            &app,
            request(Method::GET, "/api/v1/me", Some(&op))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        let id = me.body["user"]["id"].as_str().unwrap().to_owned();
        let issued = send(
            &app,
            request(
                Method::POST,
                &format!("/api/v1/users/{id}/tokens"),
                Some(&op),
            )
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    }
}
