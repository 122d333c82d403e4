//! The HTTP API. The only module that knows HTTP status codes: library errors carry an
//! [`ErrorKind`] and [`status_for`] turns it into a status, in one place.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use agora_core::{DatasetName, ErrorKind, HasKind};
use agora_govern::{Principal, Role};
use agora_query::QueryLimits;
use anyhow::Result;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::home::Home;

#[derive(Clone)]
struct AppState {
    home: Arc<Home>,
    limits: QueryLimits,
    /// Quality profiles already computed, by (dataset, release).
    quality: Arc<tokio::sync::Mutex<HashMap<(String, i64), Value>>>,
}

/// Binds `addr`, calls `on_ready` with the bound address, and serves until Ctrl-C / SIGTERM,
/// letting requests in flight finish.
pub(crate) async fn serve(
    home: Home,
    addr: SocketAddr,
    limits: QueryLimits,
    oidc: Option<crate::oidc::OidcConfig>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    on_ready(listener.local_addr()?);
    let oidc = oidc.map(|config| crate::oidc::router(config, home.meta.clone()));
    let app = router(AppState {
        home: Arc::new(home),
        limits,
        quality: Default::default(),
    })
    .merge(oidc.unwrap_or_default());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Whoever started us may have closed stderr by now; that is no reason to fail.
    let _ = writeln!(std::io::stderr(), "Agora stopped");
    Ok(())
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

fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/datasets", get(list_datasets))
        .route("/api/v1/datasets/{name}/releases", get(list_releases))
        .route(
            "/api/v1/datasets/{name}/releases/{number}",
            get(show_release),
        )
        .route(
            "/api/v1/datasets/{name}/releases/{number}/quality",
            get(show_quality),
        )
        .route("/api/v1/sql", post(run_sql))
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "no such endpoint") })
        .with_state(state)
}

/// An error as the API shows it: `{"error": {"kind": ..., "message": ...}}`.
#[derive(Debug)]
struct ApiError {
    kind: ErrorKind,
    message: String,
    unauthenticated: bool,
}

impl ApiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            unauthenticated: false,
        }
    }

    fn unauthenticated() -> Self {
        Self {
            kind: ErrorKind::PermissionDenied,
            message: "a valid API token is required (Authorization: Bearer <token>)".into(),
            unauthenticated: true,
        }
    }

    fn from_error<E: HasKind + std::fmt::Display>(e: E) -> Self {
        let kind = e.kind();
        let message = match kind {
            // Internal details are for the operator's logs, not for the caller.
            ErrorKind::Internal => {
                tracing::error!(error = %e, "internal error");
                "internal error; the operator can find details in the server log".into()
            }
            _ => e.to_string(),
        };
        Self::new(kind, message)
    }
}

/// The one mapping from error kinds to HTTP statuses.
fn status_for(kind: ErrorKind) -> StatusCode {
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

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::Conflict => "conflict",
        ErrorKind::ResourceExhausted => "resource_exhausted",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = if self.unauthenticated {
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        } else {
            (status_for(self.kind), kind_name(self.kind))
        };
        let body = Json(json!({"error": {"kind": kind, "message": self.message}}));
        let mut response = (status, body).into_response();
        if self.unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

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
        .meta
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
    let meta = &state.home.meta;
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
        .meta
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
        .lake
        .read_manifest(&info.manifest_path)
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

async fn authenticate(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthenticated)?;
    state
        .home
        .meta
        .authenticate(token.trim())
        .await
        .map_err(ApiError::from_error)?
        .ok_or_else(ApiError::unauthenticated)
}

/// The quality profile of a release (operators). Computed once per release and kept:
/// releases are immutable.
async fn show_quality(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, number)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let principal = require_operator(&state, &headers).await?;
    let dataset = parse_dataset(&name)?;
    let key = (dataset.to_string(), number);
    if let Some(profile) = state.quality.lock().await.get(&key) {
        return Ok(Json(profile.clone()));
    }
    let Some(info) = state
        .home
        .meta
        .release(&dataset, Some(number))
        .await
        .map_err(ApiError::from_error)?
    else {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("dataset {dataset} has no release {number}"),
        ));
    };
    let ws = state
        .home
        .release_workspace(&principal.name, &info, state.limits.clone())
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let profile = agora_quality::profile(&ws)
        .await
        .map_err(ApiError::from_error)?;
    let value = serde_json::to_value(&profile)
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    state.quality.lock().await.insert(key, value.clone());
    Ok(Json(value))
}

async fn require_operator(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    let principal = authenticate(state, headers).await?;
    if !principal.has(Role::Operator) {
        return Err(ApiError::new(
            ErrorKind::PermissionDenied,
            "this endpoint is for operators; researchers query through a data permit",
        ));
    }
    Ok(principal)
}

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
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let principal = require_operator(&state, &headers).await?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!(
                "request body must be JSON {{\"dataset\", \"sql\", \"release\"?, \"format\"?}}: {e}"
            ),
        )
    })?;
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
    let info = state
        .home
        .meta
        .release(&dataset, request.release)
        .await
        .map_err(ApiError::from_error)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NotFound,
                format!("dataset {dataset} has no such release"),
            )
        })?;
    let ws = state
        .home
        .release_workspace(&principal.name, &info, state.limits.clone())
        .await
        .map_err(|e| ApiError::new(ErrorKind::Internal, e.to_string()))?;
    let out = ws.sql(&request.sql).await.map_err(ApiError::from_error)?;
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
                "release": info.number,
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
