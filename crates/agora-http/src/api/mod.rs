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
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ApiError::invalid(format!(
                "request body {}",
                agora_core::describe_json_error(&e)
            ))
        })
    }
}
