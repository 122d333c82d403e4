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
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::auth::Caller;
use crate::api::limit::RateLimiter;
use crate::api::openapi::{Doc, Who};
use crate::api::{Api, Body};
use crate::format::OutputFormat;
use agora_service::Hub;

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) home: Arc<Hub>,
    limits: QueryLimits,
    /// How clients reach the hub: the base of catalogue IRIs.
    public_url: Arc<str>,
    /// Per-client-address limit of the endpoints anyone may call (login, opt-out).
    pub(crate) public_limiter: Arc<RateLimiter>,
}

/// How the API runs besides its query limits.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Requests per minute per client address on the public endpoints (0: unlimited).
    pub public_rate_limit: u32,
    /// How often expired permits are recorded and ended sessions purged.
    pub maintenance_every: Duration,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<agora_auth::OidcConfig>,
    /// The hub's public URL; `None`: `http://` + the bound address.
    pub public_url: Option<String>,
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
        }
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
    let app = routes(state).merge(oidc.unwrap_or_default());
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    maintenance.abort();
    profiles.abort();
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
        .with_state(state)
}

/// An error as the API shows it: `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    kind: ErrorKind,
    message: String,
    unauthenticated: bool,
    /// Set when the caller is throttled: seconds until it may try again.
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            unauthenticated: false,
            retry_after_secs: None,
        }
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
        let (status, kind) = if self.unauthenticated {
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
        response
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

/// Operators' SQL. Researchers will query through permits instead.
async fn run_sql(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<SqlRequest>,
) -> ApiResult<Response> {
    caller.require(Role::Operator, OPERATORS_ONLY)?;
    let format = match request.format.as_deref() {
        None | Some("json") => OutputFormat::Json,
        Some("csv") => OutputFormat::Csv,
        Some("tsv") => OutputFormat::Tsv,
        Some(other) => {
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                format!("unknown format {other:?}: use json, csv or tsv"),
            ));
        }
    };
    let dataset = parse_dataset(&request.dataset)?;
    let target = Target::Release {
        dataset: dataset.clone(),
        release: request.release,
    };
    let session = state
        .home
        .query()
        .open(
            &caller.authenticated,
            target,
            Front::Http,
            state.limits.clone(),
        )
        .await
        .map_err(ApiError::from_error)?;
    let release = session.release().map_or(0, |(_, n)| n);
    let out = session
        .plan(&request.sql)
        .await
        .map_err(ApiError::from_error)?
        .execute()
        .await
        .map_err(ApiError::from_error)?
        .collect()
        .await
        .map_err(ApiError::from_error)?;
    let bytes = crate::format::render(&out, format)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    Ok(match format {
        OutputFormat::Json => {
            let rows: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
            let columns: Vec<Value> = out
                .schema
                .fields()
                .iter()
                .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                .collect();
            Json(json!({
                "dataset": dataset,
                "release": release,
                "columns": columns,
                "rows": rows,
                "row_count": out.num_rows(),
            }))
            .into_response()
        }
        _ => {
            let ct = if format == OutputFormat::Csv {
                "text/csv"
            } else {
                "text/tab-separated-values"
            };
            ([(header::CONTENT_TYPE, ct)], bytes).into_response()
        }
    })
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
