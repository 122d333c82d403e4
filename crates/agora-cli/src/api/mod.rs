//! The governance API: accounts, project applications, permits, the public registry and
//! the citizen opt-out, over HTTP. Every endpoint is registered through [`Api`], which
//! records its OpenAPI description beside the route, so the served document
//! (`GET /api/v1/openapi.json`) lists exactly the routes the server answers.
//!
//! Authorization decisions are the library's (`agora_govern` takes the caller's
//! [`agora_service::governance::Principal`]); these modules authenticate, parse, and shape JSON.

use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, on};
use serde::de::DeserializeOwned;

use crate::http::{ApiError, AppState};

pub(crate) mod auth;
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
    let api = registry::routes(api);
    optout::routes(api)
}

/// Largest request body accepted (a full application form fits comfortably).
const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON request body. Parse errors say where and what, never echo the value sent (a body
/// may carry a citizen identifier).
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::invalid("the request body could not be read"))?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(ApiError::invalid(format!(
                "the request body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            // An empty body is an empty object: endpoints whose fields are all optional
            // accept it.
            axum::body::Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::invalid(describe_json_error(&e)))
    }
}

/// A JSON error as the caller may see it: position and category, with any value quoted
/// in serde's message removed (field and variant names the API defines are kept).
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    // serde_json appends " at line L column C"; keep our own rendering of the position.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    let what = if message.starts_with("invalid type:")
        || message.starts_with("invalid value:")
        || message.starts_with("invalid length")
        || message.starts_with("unknown variant")
        || message.starts_with("unknown field")
    {
        redact_first_quoted(message)
    } else {
        // Syntax errors describe the character found; "missing field `x`" and "duplicate
        // field `x`" name fields the API defines.
        message.to_owned()
    };
    format!(
        "request body (JSON) at line {} column {}: {what}",
        e.line(),
        e.column()
    )
}

/// Removes the value serde quotes before ", expected": "invalid type: string \"abc\",
/// expected u32" becomes "invalid type: string, expected u32".
fn redact_first_quoted(message: &str) -> String {
    let (head, tail) = match message.find(", expected") {
        Some(i) => message.split_at(i),
        None => (message, ""),
    };
    let cut = [head.find('`'), head.find('"')].into_iter().flatten().min();
    let head = match cut {
        Some(i) => head[..i].trim_end(),
        None => {
            // "invalid value: integer 5": drop what follows the value's type.
            let mut words = head.splitn(3, ' ');
            let first = words.next().unwrap_or_default();
            let second = words.next().unwrap_or_default();
            if first.ends_with(':') {
                &head[..first.len() + 1 + second.len()]
            } else {
                head
            }
        }
    };
    format!("{head}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        describe_json_error(&serde_json::from_str::<T>(json).unwrap_err())
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Form {
        identifier: String,
        count: u32,
        role: agora_service::governance::Role,
    }

    #[test]
    fn json_errors_never_echo_values() {
        for (json, secret) in [
            (
                r#"{"identifier": 1840512345678, "count": 1, "role": "operator"}"#,
                "1840512345678",
            ),
            (
                r#"{"identifier": "x", "count": "1 84 05", "role": "operator"}"#,
                "1 84 05",
            ),
            (
                r#"{"identifier": "x", "count": 1, "role": "184051234"}"#,
                "184051234",
            ),
            (
                r#"{"identifier": "x", "count": -184051234, "role": "operator"}"#,
                "184051234",
            ),
            (
                r#"{"identifier": ["1840512"], "count": 1, "role": "operator"}"#,
                "1840512",
            ),
        ] {
            let e = error_of::<Form>(json);
            assert!(!e.contains(secret), "{e}");
            assert!(
                e.starts_with("request body (JSON) at line 1 column "),
                "{e}"
            );
        }
        let e = error_of::<Form>(r#"{"identifier": 18405, "count": 1, "role": "operator"}"#);
        assert!(
            e.contains("invalid type: integer, expected a string"),
            "{e}"
        );
        let e = error_of::<Form>(r#"{"count": 1, "role": "operator"}"#);
        assert!(e.contains("missing field `identifier`"), "{e}");
        let e = error_of::<Form>(r#"{"identifier": "x", "count": 1, "role": "root"}"#);
        assert!(e.contains("unknown variant, expected one of"), "{e}");
        let e = error_of::<Form>(r#"{"identifier": "#);
        assert!(e.contains("EOF"), "{e}");
    }
}
