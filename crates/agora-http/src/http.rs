//! The server, the router and the API's errors. The only module that chooses HTTP status
//! codes: library errors carry an [`ErrorKind`] and [`status_for`] turns it into a status, in
//! one place (the sign-in pages refine it once, in `oidc`).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_core::{DatasetName, ErrorKind, HasKind};
use agora_service::governance::Role;
use agora_service::{Front, QueryLimits, Target};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::auth::Caller;
use crate::api::limit::RateLimiter;
use crate::api::openapi::{Doc, Who};
use crate::api::{Api, Body, Path};
use crate::format::OutputFormat;
use agora_service::Hub;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) home: Arc<Hub>,
    limits: QueryLimits,
    /// How clients reach the hub: the base of catalogue IRIs, and an origin of its own pages.
    pub(crate) public_url: Arc<str>,
    /// Per-client-address limit of the endpoints anyone may call (login, opt-out).
    pub(crate) public_limiter: Arc<RateLimiter>,
    /// How long a request body may take to arrive ([`ApiOptions::body_timeout`]).
    pub(crate) body_timeout: Duration,
}

/// How the API runs besides its query limits.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Requests per minute per client address on the public endpoints (0: unlimited).
    pub public_rate_limit: u32,
    /// How often expired permits are recorded and ended sessions purged.
    pub maintenance_every: Duration,
    /// How often a tree head of the audit log is signed when it has new entries (and once
    /// more when the server stops). Default 60 s.
    pub audit_head_every: Duration,
    /// How long audit entries stay in the metadata store before they move into archived
    /// segments (checked hourly). Default 365 days.
    pub audit_retention: Duration,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<agora_auth::OidcConfig>,
    /// The hub's public URL; `None`: `http://` + the bound address.
    pub public_url: Option<String>,
    /// How long a client may take to send a request's headers, counted from the connection
    /// (or the previous answer on a kept-alive one); the connection is closed after it.
    /// Default 10 s.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body once its headers are in; 408
    /// after it (the body is at most 1 MiB). Default 30 s.
    pub body_timeout: Duration,
    /// Connections open at once from one client address (IPv6: per /64); a connection
    /// beyond it is answered 503 and closed at once. 0: no limit. Default 64. Behind a
    /// reverse proxy every client shares the proxy's address: raise it, limit at the proxy.
    pub max_connections_per_address: usize,
}

impl Default for ApiOptions {
    /// What `agora serve` uses unless told otherwise.
    fn default() -> Self {
        Self {
            public_rate_limit: 30,
            maintenance_every: Duration::from_secs(60),
            audit_head_every: Duration::from_secs(60),
            audit_retention: Duration::from_secs(
                86_400 * u64::from(agora_service::audit::DEFAULT_RETENTION_DAYS),
            ),
            oidc: None,
            public_url: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections_per_address: 64,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it could not be bound.
        error: std::io::Error,
    },
    /// Serving failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl AppState {
    pub(crate) fn new(home: Hub, limits: QueryLimits, options: &ApiOptions) -> Self {
        Self {
            home: Arc::new(home),
            limits,
            public_url: options
                .public_url
                .as_deref()
                .unwrap_or("http://127.0.0.1")
                .trim_end_matches('/')
                .into(),
            public_limiter: Arc::new(RateLimiter::per_minute(options.public_rate_limit)),
            body_timeout: options.body_timeout,
        }
    }

    /// The server's query limits (for statements the service runs on a caller's behalf).
    pub(crate) fn query_limits(&self) -> QueryLimits {
        self.limits.clone()
    }

    /// A query session for the caller on `target`, under the server's query limits.
    pub(crate) async fn open_session(
        &self,
        caller: &Caller,
        target: Target,
    ) -> ApiResult<agora_service::QuerySession> {
        self.home
            .query()
            .open(
                &caller.authenticated,
                target,
                Front::Http,
                self.limits.clone(),
            )
            .await
            .map_err(ApiError::from_error)
    }
}

/// Binds `addr`, calls `on_ready` with the bound address, and serves until Ctrl-C / SIGTERM,
/// letting requests in flight finish. A maintenance task runs beside the server.
pub async fn serve(
    home: Hub,
    addr: SocketAddr,
    limits: QueryLimits,
    options: ApiOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    serve_until(home, addr, limits, options, on_ready, shutdown_signal()).await
}

/// [`serve`], stopping when `shutdown` completes instead of at a signal.
pub(crate) async fn serve_until(
    home: Hub,
    addr: SocketAddr,
    limits: QueryLimits,
    options: ApiOptions,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Listen { addr, error })?;
    let bound = listener.local_addr()?;
    on_ready(bound);
    let mut options = options;
    options
        .public_url
        .get_or_insert_with(|| format!("http://{bound}"));
    let oidc = options
        .oidc
        .clone()
        .map(|config| crate::oidc::router(config, home.governance().clone()));
    let state = AppState::new(home, limits, &options);
    let maintenance = crate::maintenance::spawn(
        state.home.governance().clone(),
        state.public_limiter.clone(),
        options.maintenance_every,
    );
    let profiles = tokio::spawn(warm_profiles(state.home.clone(), state.limits.clone()));
    let heads = tokio::spawn(sign_heads(
        state.home.clone(),
        options.audit_head_every,
        options.audit_retention,
    ));
    let home = state.home.clone();
    let app = routes(state).merge(oidc.unwrap_or_default());
    let connections = crate::listen::Limits {
        header_timeout: options.header_timeout,
        max_per_address: options.max_connections_per_address,
    };
    let served = crate::listen::run(listener, app, connections, shutdown).await;
    maintenance.abort();
    profiles.abort();
    heads.abort();
    // A last head over what this server recorded, so the published log is complete.
    if let Err(e) = home.audit().sign_head().await {
        tracing::error!(error = %e, "no tree head could be signed at shutdown");
    }
    served?;
    // Whoever started us may have closed stderr by now; that is no reason to fail.
    let _ = writeln!(std::io::stderr(), "Agora stopped");
    Ok(())
}

/// Keeps the quality profile of every dataset's latest release computed, so the public
/// catalogue can show counts and coverage without ever scanning data on a request.
async fn warm_profiles(home: Arc<Hub>, limits: QueryLimits) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match home.warm_profiles(&limits).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(profiles = n, "quality profiles computed"),
            Err(e) => tracing::warn!(error = %e, "quality profiles could not be computed"),
        }
    }
}

/// Signs a tree head of the audit log whenever it has grown, every `every`.
/// Signs a tree head every `every` when the log grew, and once an hour archives the entries
/// older than `retention`.
async fn sign_heads(home: Arc<Hub>, every: Duration, retention: Duration) {
    const ARCHIVE_EVERY: Duration = Duration::from_secs(3600);
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut tick = tokio::time::interval(every);
    let mut last_archive: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        match home.audit().sign_head().await {
            Ok(Some(head)) => {
                tracing::debug!(tree_size = head.head.tree_size, "audit tree head signed");
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "the audit tree head could not be signed"),
        }
        if last_archive.is_some_and(|at| at.elapsed() < ARCHIVE_EVERY) {
            continue;
        }
        last_archive = Some(tokio::time::Instant::now());
        match home.audit().archive_expired(retention).await {
            Ok(segments) => {
                for s in segments {
                    tracing::info!(first = s.first, end = s.end, "audit entries archived");
                }
            }
            Err(e) => tracing::error!(error = %e, "the audit log could not be archived"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The API's router over `home` (without OpenID Connect sign-in and without the maintenance
/// task, which [`serve`] adds): for tests and for embedding the API in another server.
pub fn router(home: Hub, limits: QueryLimits, options: &ApiOptions) -> Router {
    routes(AppState::new(home, limits, options))
}

/// Every endpoint, each registered with its OpenAPI description (see [`Api`]).
pub(crate) fn routes(state: AppState) -> Router {
    let api = Api::new()
        .route(
            Method::GET,
            "/health",
            Doc::new("health", "Liveness of the server")
                .tag("meta")
                .who(Who::Public)
                .ok(200, "Health"),
            health,
        )
        .route(
            Method::GET,
            "/api/v1/datasets",
            Doc::new("listDatasets", "Datasets and their latest release")
                .tag("datasets")
                .who(Who::Public)
                .ok(200, "DatasetList"),
            list_datasets,
        )
        .route(
            Method::GET,
            "/api/v1/datasets/{name}/releases",
            Doc::new("listReleases", "Releases of a dataset")
                .tag("datasets")
                .who(Who::Public)
                .ok(200, "ReleaseList"),
            list_releases,
        )
        .route(
            Method::GET,
            "/api/v1/datasets/{name}/releases/{number}",
            Doc::new(
                "showRelease",
                "A release: tables, columns, pseudonymization, quarantine",
            )
            .tag("datasets")
            .who(Who::Public)
            .ok(200, "Release"),
            show_release,
        )
        .route(
            Method::GET,
            "/api/v1/datasets/{name}/releases/{number}/quality",
            Doc::new("showQuality", "Data-quality profile of a release")
                .tag("datasets")
                .who(Who::Role(Role::Operator))
                .ok(200, "QualityProfile"),
            show_quality,
        )
        .route(
            Method::POST,
            "/api/v1/sql",
            Doc::new("operatorSql", "Read-only SQL on a release (operators)")
                .tag("datasets")
                .who(Who::Role(Role::Operator))
                .body("SqlRequest")
                .ok(200, "SqlResult")
                .errors(&[422]),
            run_sql,
        )
        .route(
            Method::GET,
            "/api/v1/catalogue",
            Doc::new(
                "catalogue",
                "The public catalogue: every dataset with counts, time coverage and quality",
            )
            .tag("catalogue")
            .who(Who::Public)
            .ok(200, "Catalogue"),
            catalogue_json,
        )
        .route(
            Method::GET,
            "/api/v1/catalogue.jsonld",
            Doc::new(
                "catalogueHealthDcatAp",
                "The catalogue as HealthDCAT-AP JSON-LD (application/ld+json)",
            )
            .tag("catalogue")
            .who(Who::Public)
            .ok(200, "JsonLd"),
            catalogue_jsonld,
        )
        .route(
            Method::GET,
            "/api/v1/catalogue/{name}",
            Doc::new("catalogueDataset", "One dataset of the catalogue")
                .tag("catalogue")
                .who(Who::Public)
                .ok(200, "CatalogueEntry")
                .errors(&[400, 404]),
            catalogue_dataset,
        )
        .route(
            Method::PUT,
            "/api/v1/catalogue/{name}/metadata",
            Doc::new(
                "describeDataset",
                "Describe a dataset in the catalogue (operators)",
            )
            .tag("catalogue")
            .who(Who::Role(Role::Operator))
            .body("DatasetMetadata")
            .ok(200, "DatasetDescription")
            .errors(&[400]),
            describe_dataset,
        );
    crate::api::governance(api)
        .finish()
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such endpoint") })
        .layer(axum::middleware::map_response(envelope))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::MAX_BODY_BYTES,
        ))
        .with_state(state)
}

/// Puts every error answer that is not already in the error envelope into it: what axum
/// answers by itself (405 for a method a route lacks, a rejection of an extractor used
/// without our mapping) is plain text, or empty, and may quote what the client sent. The
/// text is dropped; the status is kept, and so are its headers (`Allow`).
async fn envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this endpoint does not answer this method; the Allow header lists those it does"
        }
        _ => status.canonical_reason().unwrap_or("refused"),
    };
    let fresh = ApiError::http(status, message).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(fresh.headers().clone());
    Response::from_parts(parts, fresh.into_body())
}

/// An error as the API shows it: `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
    unauthenticated: bool,
    /// Set when the caller is throttled: seconds until it may try again.
    retry_after_secs: Option<u64>,
    /// Set for a refusal of the HTTP layer itself (405, 408, 413, 415...), which has no
    /// error kind of its own: the status to answer.
    http_status: Option<StatusCode>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            unauthenticated: false,
            retry_after_secs: None,
            http_status: None,
        }
    }

    /// A refusal of the HTTP layer (method, size, media type, timeout), answered with
    /// `status`; its kind in the envelope is named after the status ([`http_kind_name`]).
    pub(crate) fn http(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            ErrorKind::Internal
        } else {
            ErrorKind::InvalidInput
        };
        Self {
            http_status: Some(status),
            ..Self::new(kind, message)
        }
    }

    /// The request body did not arrive in time: 408, and the connection is closed.
    pub(crate) fn body_timeout() -> Self {
        Self::http(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )
    }

    /// The one mapping of axum's extractor rejections (body, query string, JSON...) into
    /// the envelope: the status axum chose (400, 413, 415...), with a message of ours, since
    /// axum's may quote the value sent.
    pub(crate) fn from_rejection(rejection: impl IntoResponse) -> Self {
        let status = rejection.into_response().status();
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => format!(
                "the request body is larger than {} bytes",
                crate::api::MAX_BODY_BYTES
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "the request body must be JSON, sent with `Content-Type: application/json`".into()
            }
            s if s.is_server_error() => {
                tracing::error!(status = s.as_u16(), "request extraction failed");
                "internal error; the operator can find details in the server log".into()
            }
            StatusCode::BAD_REQUEST => {
                "the request is malformed (its query string or body could not be read)".into()
            }
            s => s.canonical_reason().unwrap_or("refused").into(),
        };
        if status == StatusCode::BAD_REQUEST {
            Self::invalid(message)
        } else {
            Self::http(status, message)
        }
    }

    /// A malformed path parameter: which one and what it must be, never its value.
    pub(crate) fn from_path_rejection(rejection: axum::extract::rejection::PathRejection) -> Self {
        use axum::extract::path::ErrorKind as K;
        use axum::extract::rejection::PathRejection;
        let PathRejection::FailedToDeserializePathParams(e) = &rejection else {
            return Self::from_rejection(rejection);
        };
        let expected = |ty: &str| {
            if [
                "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize",
            ]
            .contains(&ty)
            {
                "an integer".to_owned()
            } else {
                format!("of type {ty}")
            }
        };
        let message = match e.kind() {
            K::ParseErrorAtKey {
                key, expected_type, ..
            } => format!("path parameter `{key}` must be {}", expected(expected_type)),
            K::ParseErrorAtIndex {
                index,
                expected_type,
                ..
            } => format!(
                "path parameter {} must be {}",
                index + 1,
                expected(expected_type)
            ),
            K::ParseError { expected_type, .. } => {
                format!("the path parameter must be {}", expected(expected_type))
            }
            K::InvalidUtf8InPathParam { key } => {
                format!("path parameter `{key}` is not valid UTF-8")
            }
            _ => "a path parameter is malformed".into(),
        };
        Self::invalid(message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    /// No valid credential (or a failed login): 401, the same for every cause.
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self {
            unauthenticated: true,
            ..Self::new(ErrorKind::PermissionDenied, message)
        }
    }

    /// Too many requests: 429 with a `Retry-After` header.
    pub(crate) fn throttled(message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(ErrorKind::ResourceExhausted, message)
        }
    }

    pub(crate) fn from_error<E: HasKind + std::fmt::Display>(e: E) -> Self {
        let kind = e.kind();
        let message = match kind {
            // Internal details (paths, store messages) are for the operator's logs, not for
            // the caller, who may be anonymous.
            ErrorKind::Internal => {
                tracing::error!(error = %e, "internal error");
                "internal error; the operator can find details in the server log".into()
            }
            ErrorKind::Unavailable => {
                tracing::error!(error = %e, "dependency unavailable");
                "a service the hub depends on is unavailable; try again later (details are \
                 in the server log)"
                    .into()
            }
            _ => e.to_string(),
        };
        Self::new(kind, message)
    }
}

impl From<agora_service::governance::Error> for ApiError {
    fn from(e: agora_service::governance::Error) -> Self {
        match e {
            agora_service::governance::Error::RateLimited { retry_after_secs } => {
                Self::throttled(e.to_string(), retry_after_secs)
            }
            e => Self::from_error(e),
        }
    }
}

/// The one mapping from error kinds to HTTP statuses.
pub(crate) fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::ResourceExhausted => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Two refinements of `status_for`: a missing credential is 401 (not 403), and a
        // throttled caller is 429 (a query over its limits stays 422).
        let (status, kind) = if let Some(status) = self.http_status {
            (status, http_kind_name(status))
        } else if self.unauthenticated {
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        } else if self.retry_after_secs.is_some() {
            (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
        } else {
            (status_for(self.kind), agora_service::kind_name(self.kind))
        };
        let body = Json(json!({"error": {"kind": kind, "message": self.message}}));
        let mut response = (status, body).into_response();
        if self.unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The envelope's `kind` for a refusal of the HTTP layer.
fn http_kind_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_input",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "refused",
    }
}

pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;

async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

fn parse_dataset(name: &str) -> ApiResult<DatasetName> {
    name.parse()
        .map_err(|e: agora_core::InvalidName| ApiError::new(ErrorKind::InvalidInput, e.to_string()))
}

/// Datasets and releases are catalogue information, public by design.
async fn list_datasets(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let datasets = state
        .home
        .governance()
        .list_datasets()
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({ "datasets": datasets })))
}

async fn list_releases(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let dataset = parse_dataset(&name)?;
    let meta = &state.home.governance();
    if meta
        .dataset(&dataset)
        .await
        .map_err(ApiError::from_error)?
        .is_none()
    {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("no dataset {dataset}"),
        ));
    }
    let releases = meta
        .releases(&dataset)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({ "dataset": dataset, "releases": releases })))
}

async fn show_release(
    State(state): State<AppState>,
    Path((name, number)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let dataset = parse_dataset(&name)?;
    let info = state
        .home
        .governance()
        .release(&dataset, Some(number))
        .await
        .map_err(ApiError::from_error)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("dataset {dataset} has no release {number}"),
            )
        })?;
    let manifest = state
        .home
        .manifest(&info)
        .await
        .map_err(ApiError::from_error)?;
    let tables: Vec<Value> = manifest
        .tables
        .iter()
        .map(|t| json!({"name": t.name, "rows": t.rows, "columns": t.schema}))
        .collect();
    Ok(Json(json!({
        "release": info,
        "source": manifest.source,
        "pseudonymization": manifest.pseudonymization,
        "tables": tables,
        "quarantine": {"rows": manifest.quarantine.rows, "counts": manifest.quarantine.counts},
        "warnings": manifest.warnings,
    })))
}

/// The quality profile of a release (operators). Computed once per release and kept:
/// releases are immutable.
async fn show_quality(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, number)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Operator, OPERATORS_ONLY)?;
    let dataset = parse_dataset(&name)?;
    let Some(info) = state
        .home
        .governance()
        .release(&dataset, Some(number))
        .await
        .map_err(ApiError::from_error)?
    else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("dataset {dataset} has no release {number}"),
        ));
    };
    let profile = state
        .home
        .quality_profile(&info, state.limits.clone())
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(*profile)))
}

/// The public catalogue as JSON (no login: it holds only dataset-level aggregates).
async fn catalogue_json(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let entries = state.home.catalogue().await.map_err(ApiError::from_error)?;
    Ok(Json(json!({ "datasets": entries })))
}

/// The public catalogue as HealthDCAT-AP JSON-LD.
async fn catalogue_jsonld(State(state): State<AppState>) -> ApiResult<Response> {
    let entries = state.home.catalogue().await.map_err(ApiError::from_error)?;
    let doc = agora_service::catalogue::healthdcat_ap(&entries, &state.public_url);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/ld+json"),
        )],
        doc.to_string(),
    )
        .into_response())
}

async fn catalogue_dataset(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let dataset = parse_dataset(&name)?;
    match state
        .home
        .catalogue_entry(&dataset)
        .await
        .map_err(ApiError::from_error)?
    {
        Some(entry) => Ok(Json(json!(entry))),
        None => Err(ApiError::new(
            ErrorKind::NotFound,
            "the catalogue has no such dataset",
        )),
    }
}

/// Describes a dataset in the catalogue (operators).
async fn describe_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    crate::api::Body(metadata): crate::api::Body<agora_service::governance::DatasetMetadata>,
) -> ApiResult<Json<Value>> {
    let principal = caller.require(Role::Operator, OPERATORS_ONLY)?;
    let dataset = parse_dataset(&name)?;
    let described = state
        .home
        .governance()
        .set_dataset_metadata(principal, &dataset, metadata)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(described)))
}

const OPERATORS_ONLY: &str =
    "this endpoint is for operators; researchers query through a data permit";

#[derive(Debug, Deserialize)]
struct SqlRequest {
    dataset: String,
    release: Option<i64>,
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

/// Operators' SQL on a release. Researchers query through their permit
/// (`POST /api/v1/permits/{id}/sql`).
async fn run_sql(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<SqlRequest>,
) -> ApiResult<Response> {
    caller.require(Role::Operator, OPERATORS_ONLY)?;
    let format = answer_format(request.format.as_deref())?;
    let dataset = parse_dataset(&request.dataset)?;
    let target = Target::Release {
        dataset: dataset.clone(),
        release: request.release,
    };
    let session = state.open_session(&caller, target).await?;
    let release = session.release().map_or(0, |(_, n)| n);
    answer(
        &session,
        &request.sql,
        format,
        json!({"dataset": dataset, "release": release}),
    )
    .await
}

/// The `format` of a SQL request: `json` (the default), `csv`, `tsv` or `arrow` (an Arrow
/// IPC stream).
pub(crate) fn answer_format(format: Option<&str>) -> ApiResult<OutputFormat> {
    match format {
        None | Some("json") => Ok(OutputFormat::Json),
        Some("csv") => Ok(OutputFormat::Csv),
        Some("tsv") => Ok(OutputFormat::Tsv),
        Some("arrow") => Ok(OutputFormat::ArrowIpc),
        Some(_) => Err(ApiError::new(
            ErrorKind::InvalidInput,
            "unknown format: use json, csv, tsv or arrow",
        )),
    }
}

/// Plans, runs and renders one statement of `session`: the one way an HTTP answer is made
/// from a query. JSON answers carry `about` (what was queried) beside the columns and rows.
pub(crate) async fn answer(
    session: &agora_service::QuerySession,
    sql: &str,
    format: OutputFormat,
    about: Value,
) -> ApiResult<Response> {
    let answer = session
        .plan(sql)
        .await
        .map_err(ApiError::from_error)?
        .execute()
        .await
        .map_err(ApiError::from_error)?;
    let disclosure = answer.disclosure().cloned();
    let out = answer.collect().await.map_err(ApiError::from_error)?;
    let bytes = crate::format::render(&out, format)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let content_type = match format {
        OutputFormat::Json => {
            let rows: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
            let columns: Vec<Value> = out
                .schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            let mut body = about;
            body["columns"] = json!(columns);
            body["rows"] = rows;
            body["row_count"] = json!(out.num_rows());
            if let Some(d) = &disclosure {
                body["disclosure"] = json!({"profile": d.profile, "notes": d.notes});
            }
            return Ok(Json(body).into_response());
        }
        OutputFormat::Csv => "text/csv",
        OutputFormat::Tsv => "text/tab-separated-values",
        OutputFormat::ArrowIpc => "application/vnd.apache.arrow.stream",
        OutputFormat::Table => "text/plain",
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    if let Some(d) = &disclosure {
        // The JSON answer's `disclosure` member, as headers for the other formats.
        let headers = response.headers_mut();
        if let Ok(v) = header::HeaderValue::from_str(d.profile) {
            headers.insert("agora-disclosure-profile", v);
        }
        for note in &d.notes {
            if let Ok(v) = header::HeaderValue::from_str(note) {
                headers.append("agora-disclosure-note", v);
            }
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_body(e: ApiError) -> (StatusCode, Value) {
        let response = e.into_response();
        let status = response.status();
        let body = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// A store outage behind a query keeps its kind through the service: 503, and the
    /// store's own message (paths, hosts) stays in the log.
    #[test]
    fn a_store_outage_is_503_and_its_details_are_not_shown() {
        let outage =
            agora_service::Error::Store(agora_govern::Error::Database(sqlx::Error::PoolTimedOut));
        let (status, body) = status_and_body(ApiError::from_error(outage));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["kind"], "unavailable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("pool"), "{message}");
    }

    /// Issue 11, item 10: every refusal, whoever makes it (the router, an extractor, the
    /// body limit, a handler), is the JSON error envelope with its own status, and quotes
    /// nothing the client sent.
    #[tokio::test]
    async fn every_refusal_uses_the_error_envelope() {
        use crate::testing::{app, assert_envelope, json, request, send};
        let (_dir, app, op) = app().await;
        let get = |path: &str| {
            request(Method::GET, path, Some(&op))
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let huge = json!({"dataset": "omop", "sql": "x".repeat(crate::api::MAX_BODY_BYTES)});
        let cases: Vec<(
            &str,
            axum::http::Request<axum::body::Body>,
            StatusCode,
            &str,
        )> = vec![
            (
                "unknown route",
                get("/api/v1/nothing-here"),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                "wrong method",
                request(Method::DELETE, "/health", None)
                    .body(axum::body::Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                "wrong method on a governance route",
                request(Method::PATCH, "/api/v1/users", Some(&op))
                    .body(axum::body::Body::empty())
                    .unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                "a release number that is no integer",
                get("/api/v1/datasets/omop/releases/1.5"),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                "a path parameter that is no UTF-8",
                get("/api/v1/permits/%FF%FE"),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                "a query string with an unknown state",
                get("/api/v1/projects?state=9q7z"),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                "a query string with an unknown parameter",
                get("/api/v1/projects?9q7z=1"),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                "a body over 1 MiB",
                json(Method::POST, "/api/v1/sql", Some(&op), &huge),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                "malformed JSON",
                request(Method::POST, "/api/v1/sql", Some(&op))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(axum::body::Body::from("{\"dataset\": 9q7z"))
                    .unwrap(),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                "a body that is not declared JSON",
                request(Method::POST, "/api/v1/sql", Some(&op))
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(axum::body::Body::from("{}"))
                    .unwrap(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
        ];
        for (what, req, status, kind) in cases {
            let answer = send(&app, req).await;
            assert_eq!(assert_envelope(&answer, status, what), kind, "{what}");
            assert!(
                !answer.text.contains("9q7z") && !answer.text.contains("1.5"),
                "{what}: {}",
                answer.text
            );
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert!(answer.headers.contains_key(header::ALLOW), "{what}");
            }
        }
    }

    #[test]
    fn query_refusals_and_limits_keep_their_statuses() {
        let refused = agora_service::Error::InvalidInput("read-only".into());
        assert_eq!(
            status_and_body(ApiError::from_error(refused)).0,
            StatusCode::BAD_REQUEST
        );
        let not_found = agora_service::Error::NotFound("dataset d has no release 2".into());
        assert_eq!(
            status_and_body(ApiError::from_error(not_found)).0,
            StatusCode::NOT_FOUND
        );
    }
}
