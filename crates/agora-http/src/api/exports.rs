//! Export requests: a researcher asks to take a result file out under a permit (the
//! statement runs through the query service, so the permit's scope and output policy apply
//! and the access is recorded); a reviewer outside the project decides when the permit's
//! policy asks for review; the file is downloaded once approved, its SHA-256 checked again.
//! Who sees an export: the project's applicants and the permit's members, reviewers and
//! operators; anyone else gets 404, as for a missing id.

use agora_service::Front;
use agora_service::exports::{ExportDecision, ExportStatus};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::openapi::{Doc, Who};
use super::{Api, Body, Path, Query};
use crate::http::{ApiError, ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::POST,
        "/api/v1/permits/{id}/exports",
        Doc::new(
            "requestExport",
            "Ask to take a statement's answer out of the hub as a CSV file",
        )
        .tag("exports")
        .who(Who::PermitHolder)
        .describe(
            "The statement runs through the permit like `POST /api/v1/permits/{id}/sql` \
             (its tables, columns and rows; its output policy; an access event recorded); \
             a refused statement leaves no file and no request. The answer is written as \
             CSV with a header row and its SHA-256 recorded with the request, which waits \
             for a reviewer (status `pending_review`) when the permit's output policy asks \
             for export review, else is approved at once by `policy`.",
        )
        .body("ExportRequestBody")
        .ok(201, "ExportRequest")
        .errors(&[422]),
        request,
    )
    .route(
        Method::GET,
        "/api/v1/exports",
        Doc::new("listExports", "The export requests the caller may see")
            .tag("exports")
            .who(Who::Authenticated)
            .describe(
                "Reviewers and operators see every export request; anyone else, those of the \
                 projects they apply for or are a permit member of. Optional filter `status`.",
            )
            .query("status", "ExportStatus")
            .ok(200, "ExportList"),
        list,
    )
    .route(
        Method::GET,
        "/api/v1/exports/{id}",
        Doc::new(
            "getExport",
            "An export request with its hash, decision and history",
        )
        .tag("exports")
        .who(Who::Visible)
        .ok(200, "ExportRequest"),
        get,
    )
    .route(
        Method::POST,
        "/api/v1/exports/{id}/decision",
        Doc::new("decideExport", "Approve or reject a pending export")
            .tag("exports")
            .who(Who::ExportReviewer)
            .describe("Once: a decided export cannot be decided again (409).")
            .body("ExportDecisionRequest")
            .ok(200, "ExportRequest")
            .errors(&[409]),
        decide,
    )
    .route(
        Method::GET,
        "/api/v1/exports/{id}/file",
        Doc::new("downloadExport", "The file of an approved export")
            .tag("exports")
            .who(Who::Visible)
            .describe(
                "`text/csv` as an attachment, served only once approved (403 while pending \
                 or once rejected) and only when its bytes still match the recorded SHA-256 \
                 (sent, in hex, as the `X-Content-SHA256` header). Each download is recorded \
                 in the export's history.",
            )
            .media("text/csv")
            .ok(200, "ExportFile")
            .errors(&[403]),
        file,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    sql: String,
}

async fn request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<RequestBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let export = state
        .home
        .exports()
        .request_export(
            &caller.authenticated,
            &id,
            &body.sql,
            Front::Http,
            state.query_limits(),
        )
        .await
        .map_err(ApiError::from_error)?;
    Ok((StatusCode::CREATED, Json(json!(export))))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    status: Option<ExportStatus>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, ApiError>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|_| {
        ApiError::invalid(
            "query: the only parameter is `status` (pending_review, approved or rejected)",
        )
    })?;
    let exports = state
        .home
        .exports()
        .list_exports(&caller.principal, query.status)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({ "exports": exports })))
}

async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let export = state
        .home
        .exports()
        .export(&caller.principal, &id)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(export)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: ExportDecision,
    reason: String,
}

async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DecisionBody>,
) -> ApiResult<Json<Value>> {
    let export = state
        .home
        .exports()
        .decide_export(&caller.principal, &id, body.decision, &body.reason)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(export)))
}

async fn file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let file = state
        .home
        .exports()
        .download_export(&caller.principal, &id)
        .await
        .map_err(ApiError::from_error)?;
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.file_name)).map_err(
            |_| ApiError::from_error(agora_service::Error::Internal("bad file name".into())),
        )?;
    let digest = HeaderValue::from_str(&file.export.sha256)
        .map_err(|_| ApiError::from_error(agora_service::Error::Internal("bad hash".into())))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-content-sha256"), digest),
        ],
        file.bytes,
    )
        .into_response())
}
