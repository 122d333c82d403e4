//! The OpenAPI 3.1 document, written by hand: each route's [`Doc`] is given where the route
//! is registered ([`super::Api::route`]), and the schemas are below. Served at
//! [`PATH`]. A test checks that the router and the document list the same routes and
//! methods.

use agora_service::governance::Role;
use axum::http::Method;
use serde_json::{Map, Value, json};

/// Where the document is served.
pub(crate) const PATH: &str = "/api/v1/openapi.json";

/// Who may call an endpoint (shown in the document, and decides its security and errors).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who {
    /// Anyone, without login.
    Public,
    /// Any authenticated user.
    Authenticated,
    /// Users holding this role.
    Role(Role),
    /// The user named in the path, or an operator.
    SelfOrOperator,
    /// Whoever may see the object (else 404, as for a missing id).
    Visible,
    /// An applicant (owner or team member) with the researcher role.
    Applicant,
    /// Depends on the move (see the description).
    Transition,
    /// A reviewer who is not an applicant of the project.
    Reviewer,
    /// A reviewer who is not an applicant, or an operator.
    ReviewerOrOperator,
    /// An applicant of the project, or an operator.
    ApplicantOrOperator,
    /// A member of the permit's project, while the permit is usable.
    PermitHolder,
    /// A reviewer who is neither an applicant nor a member of the export's project.
    ExportReviewer,
}

impl Who {
    fn describe(self) -> String {
        match self {
            Who::Public => "Anyone, without login.".into(),
            Who::Authenticated => "Any authenticated user.".into(),
            Who::Role(r) => format!("Users with the {r} role; others get 403."),
            Who::SelfOrOperator => {
                "The user named in the path, or an operator; for anyone else the user does \
                 not exist (404)."
                    .into()
            }
            Who::Visible => {
                "Whoever may see the object: its applicants and members, reviewers and \
                 operators (applications: once submitted). For anyone else it does not exist: \
                 404 with the same body as a missing id."
                    .into()
            }
            Who::Applicant => {
                "An applicant (owner or team member) with the researcher role; others who may \
                 see the application get 403, the rest 404."
                    .into()
            }
            Who::Transition => {
                "Depends on the move (below); callers who may see the application but not make \
                 the move get 403, the rest 404."
                    .into()
            }
            Who::Reviewer => {
                "A reviewer who is not an applicant of the project; others who may see it get \
                 403, the rest 404."
                    .into()
            }
            Who::ReviewerOrOperator => {
                "A reviewer who is not an applicant of the project, or an operator; others who \
                 may see it get 403, the rest 404."
                    .into()
            }
            Who::ApplicantOrOperator => {
                "An applicant of the project, or an operator; others who may see it get 403, \
                 the rest 404."
                    .into()
            }
            Who::PermitHolder => {
                "A member of the permit's project while the permit is usable (issued, not \
                 expired, not revoked); anyone else gets the same 403, whatever the reason, \
                 so the answer does not say which permits exist."
                    .into()
            }
            Who::ExportReviewer => {
                "A reviewer who is neither an applicant nor a permit member of the export's \
                 project; others who may see the export get 403, the rest 404."
                    .into()
            }
        }
    }
}

/// The description of one operation.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    id: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    tag: &'static str,
    who: Who,
    body: Option<&'static str>,
    ok: (u16, &'static str),
    errors: Vec<u16>,
    query: Vec<(&'static str, &'static str)>,
    media: &'static str,
}

impl Doc {
    pub(crate) fn new(id: &'static str, summary: &'static str) -> Self {
        Self {
            id,
            summary,
            description: None,
            tag: "meta",
            who: Who::Authenticated,
            body: None,
            ok: (200, "Error"),
            errors: Vec::new(),
            query: Vec::new(),
            media: "application/json",
        }
    }

    /// The success answer's media type, when not JSON.
    pub(crate) fn media(mut self, media: &'static str) -> Self {
        self.media = media;
        self
    }

    pub(crate) fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    pub(crate) fn who(mut self, who: Who) -> Self {
        self.who = who;
        self
    }

    pub(crate) fn describe(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    /// The JSON request body's schema.
    pub(crate) fn body(mut self, schema: &'static str) -> Self {
        self.body = Some(schema);
        self
    }

    /// The success status and its schema.
    pub(crate) fn ok(mut self, status: u16, schema: &'static str) -> Self {
        self.ok = (status, schema);
        self
    }

    /// Error statuses besides those implied by the access rule, body and path.
    pub(crate) fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    /// An optional query parameter and its schema.
    pub(crate) fn query(mut self, name: &'static str, schema: &'static str) -> Self {
        self.query.push((name, schema));
        self
    }

    fn operation(&self, path: &str) -> Value {
        let mut description = self.who.describe();
        if let Some(d) = self.description {
            description.push_str("\n\n");
            description.push_str(d);
        }
        let mut params: Vec<Value> = path_params(path)
            .into_iter()
            .map(|name| {
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "description": param_description(name),
                    "schema": if name == "number" { json!({"type": "integer"}) } else { json!({"type": "string"}) },
                })
            })
            .collect();
        params.extend(self.query.iter().map(|(name, schema)| {
            json!({"name": name, "in": "query", "required": false, "schema": schema_ref(schema)})
        }));

        let mut errors = self.errors.clone();
        if self.body.is_some() || !self.query.is_empty() {
            errors.push(400);
        }
        if self.body.is_some() {
            // Body too slow, too large, or not declared JSON (see `api::Body`).
            errors.extend([408, 413, 415]);
        }
        if !matches!(self.who, Who::Public) {
            errors.push(401);
        }
        if !matches!(self.who, Who::Public | Who::Authenticated | Who::Visible) {
            errors.push(403);
        }
        if path.contains('{') {
            errors.push(404);
        }
        if path.contains("{number}") {
            errors.push(400); // not an integer
        }
        errors.sort_unstable();
        errors.dedup();

        let mut responses = Map::new();
        let (status, schema) = self.ok;
        responses.insert(
            status.to_string(),
            json!({
                "description": if status == 201 { "Created" } else { "OK" },
                "content": {(self.media): {"schema": schema_ref(schema)}},
            }),
        );
        for e in errors {
            responses.insert(
                e.to_string(),
                json!({"$ref": format!("#/components/responses/{}", error_response(e))}),
            );
        }

        let mut op = json!({
            "operationId": self.id,
            "summary": self.summary,
            "description": description,
            "tags": [self.tag],
            "responses": responses,
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(body) = self.body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema_ref(body)}},
            });
        }
        op["security"] = if matches!(self.who, Who::Public) {
            json!([])
        } else {
            json!([{"bearer": []}, {"session": []}])
        };
        op
    }
}

pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn param_description(name: &str) -> &'static str {
    match name {
        "id" => {
            "The object's id (user id, project id `app_...`, permit id `pmt_...`, export id \
             `exp_...`)."
        }
        "name" => "A dataset name.",
        "number" => "A release number.",
        "token_id" => "An API token's id (`tok_...`).",
        "receipt_id" => "An opt-out receipt id (`optout_...`).",
        _ => "",
    }
}

fn error_response(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthenticated",
        403 => "Forbidden",
        404 => "NotFound",
        408 => "RequestTimeout",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        422 => "LimitReached",
        429 => "TooManyRequests",
        _ => "Internal",
    }
}

/// The document for `ops` (method, path, description).
pub(crate) fn document(ops: &[(Method, &'static str, Doc)]) -> Value {
    let mut paths = Map::new();
    for (method, path, doc) in ops {
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[method.as_str().to_lowercase()] = doc.operation(path);
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Agora",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "An open, sovereign health data hub: catalogue, governance, opt-out and SQL.",
            "description": "Authenticate with `Authorization: Bearer <token>` (an API token `agora_...` or a session token `agoras_...`) or with the `agora_session` cookie set by a login. Errors are `{\"error\": {\"kind\", \"message\"}}`, for every status (unknown paths and methods, malformed path parameters, query strings and bodies included); a refusal never reveals whether an object the caller may not see exists. Request bodies are JSON, sent with `Content-Type: application/json`. A client must send a request's headers within 10 seconds and its body within 30 (by default); a client address with too many connections open (64 by default) gets 503 and its connection closed.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "auth", "description": "Login, logout, the caller"},
            {"name": "users", "description": "Accounts, roles, passwords, API tokens"},
            {"name": "projects", "description": "Project applications and their review"},
            {"name": "permits", "description": "Data permits: the single source of truth for access"},
            {"name": "exports", "description": "Export requests: result files taken out under a permit, reviewed, hashed"},
            {"name": "registry", "description": "The public project registry"},
            {"name": "audit", "description": "The tamper-evident audit log: signed tree heads, proofs, entries"},
            {"name": "optout", "description": "The citizen opt-out registry"},
            {"name": "datasets", "description": "Datasets, releases, quality, operator SQL"},
            {"name": "catalogue", "description": "The public catalogue, also as HealthDCAT-AP JSON-LD"},
            {"name": "meta", "description": "Health and this document"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token or a session token."},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::api::auth::SESSION_COOKIE},
            },
            "responses": responses(),
            "schemas": super::schemas::all(),
        },
    })
}

fn responses() -> Value {
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}});
    let mut throttled = error("Too many requests: wait as long as `Retry-After` says.");
    throttled["headers"] =
        json!({"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}});
    let mut unauthenticated =
        error("No valid credential (missing, unknown, revoked, expired, or its user deactivated).");
    unauthenticated["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
    json!({
        "BadRequest": error("The request is malformed; the message says what and where."),
        "Unauthenticated": unauthenticated,
        "Forbidden": error("The caller may not do this."),
        "NotFound": error("No such object, or one the caller may not see (indistinguishable)."),
        "Conflict": error("The object's state does not allow this now (or a concurrent change won)."),
        "RequestTimeout": error("The request body did not arrive in time; the connection is closed."),
        "PayloadTooLarge": error("The request body is larger than 1 MiB."),
        "UnsupportedMediaType": error("The request body is not declared `Content-Type: application/json`."),
        "LimitReached": error("A query limit (memory, time, result size) was reached."),
        "TooManyRequests": throttled,
        "Internal": error("Internal error; details are in the server log."),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::http::{ApiOptions, router};

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(s)) => out.push(s.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    async fn app() -> (tempfile::TempDir, axum::Router) {
        let dir = tempfile::tempdir().unwrap();
        let data = agora_core::DataDir::new(dir.path().join("hub"));
        agora_service::Hub::init(&data).await.unwrap();
        let home = agora_service::Hub::open(&data).await.unwrap();
        let options = ApiOptions {
            public_rate_limit: 0,
            ..ApiOptions::default()
        };
        let app = router(home, agora_service::QueryLimits::default(), &options);
        (dir, app)
    }

    async fn call(app: &axum::Router, method: &Method, path: &str) -> (StatusCode, Value) {
        let response = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    const METHODS: [Method; 5] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];

    /// Every route the router answers is in the document and vice versa, methods included.
    #[tokio::test]
    async fn the_document_lists_exactly_the_routes_of_the_router() {
        let (_dir, app) = app().await;
        let (status, doc) = call(&app, &Method::GET, PATH).await;
        assert_eq!(status, StatusCode::OK);
        let paths = doc["paths"].as_object().unwrap();
        let mut ids = HashSet::new();
        for (path, ops) in paths {
            let concrete = path
                .split('/')
                .map(|s| match s {
                    "{number}" => "1",
                    s if s.starts_with('{') => "x",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let ops = ops.as_object().unwrap();
            for method in METHODS {
                let documented = ops.get(&method.as_str().to_lowercase());
                let (status, body) = call(&app, &method, &concrete).await;
                match documented {
                    Some(op) => {
                        assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()));
                        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                        assert_ne!(
                            body["error"]["message"], "no such endpoint",
                            "{method} {path} is documented but not routed"
                        );
                    }
                    None => assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path} is routed but not documented"
                    ),
                }
            }
        }
        // Routes registered outside `Api::route` (e.g. merged routers) are found by their
        // path literals in the source.
        let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for literal in route_literals(&src) {
            assert!(
                documented.contains(literal.as_str()),
                "route {literal} appears in the source but not in the OpenAPI document"
            );
        }
    }

    /// String literals that look like route paths (`/health`, `/api/v1/...`) in `dir`.
    fn route_literals(dir: &std::path::Path) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(route_literals(&path));
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("testing.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Tests call concrete paths (`/api/v1/users/alice`), not routes.
                let code = text.split("\nmod tests {").next().unwrap();
                for piece in code.split('"').skip(1).step_by(2) {
                    if (piece.starts_with("/api/") || piece == "/health")
                        && !piece.contains(' ')
                        && !piece.ends_with('/')
                    {
                        out.insert(piece.to_owned());
                    }
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn every_reference_resolves_and_every_path_parameter_is_declared() {
        let (_dir, app) = app().await;
        let (_, doc) = call(&app, &Method::GET, PATH).await;
        assert_eq!(doc["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100);
        for r in found {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let declared: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, path_params(path), "{method} {path}");
                if op["security"] != json!([]) {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
            }
        }
    }
}
