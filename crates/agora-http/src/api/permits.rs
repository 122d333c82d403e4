//! Data permits: read (members, applicants, reviewers, operators; anyone else gets 404),
//! amended into a new version (a reviewer who is not an applicant), revoked (such a
//! reviewer, or an operator). Expiry and revocation take effect for the next query. A
//! permit's schema (what its holder may query) is read through the query service.

use agora_service::Target;
use agora_service::governance::PermitAmendment;
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::openapi::{Doc, Who};
use super::{Api, Body, Path};
use crate::http::{ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::GET,
        "/api/v1/permits",
        Doc::new("listPermits", "The data permits the caller may see")
            .tag("permits")
            .who(Who::Authenticated)
            .describe(
                "Reviewers and operators see every permit; anyone else, the permits of the \
                 projects they apply for or are a member of.",
            )
            .ok(200, "PermitList"),
        list,
    )
    .route(
        Method::GET,
        "/api/v1/permits/{id}",
        Doc::new(
            "getPermit",
            "A permit's current version (the machine-readable permit)",
        )
        .tag("permits")
        .who(Who::Visible)
        .ok(200, "Permit"),
        get,
    )
    .route(
        Method::GET,
        "/api/v1/permits/{id}/versions",
        Doc::new("permitVersions", "Every version of a permit, oldest first")
            .tag("permits")
            .who(Who::Visible)
            .ok(200, "PermitVersionList"),
        versions,
    )
    .route(
        Method::GET,
        "/api/v1/permits/{id}/schema",
        Doc::new(
            "permitSchema",
            "Exactly the tables and columns a permit lets its holder query",
        )
        .tag("permits")
        .who(Who::PermitHolder)
        .describe(
            "Each permitted table (`dataset.table`, as SQL names it) with its permitted \
             columns and their types, as queries through the permit see them: for SQL \
             clients, schema browsers and the console.",
        )
        .ok(200, "PermitSchema"),
        schema,
    )
    .route(
        Method::POST,
        "/api/v1/permits/{id}/sql",
        Doc::new("permitSql", "Read-only SQL through a data permit")
            .tag("permits")
            .who(Who::PermitHolder)
            .describe(
                "The statement sees only the permit's tables, columns and rows (opted-out \
                 persons removed), runs under the hub's limits, and its answer leaves only \
                 through the permit's output policy; every statement, answered or refused, \
                 is recorded as an access event first.",
            )
            .body("PermitSqlRequest")
            .ok(200, "PermitSqlResult")
            .errors(&[422]),
        sql,
    )
    .route(
        Method::POST,
        "/api/v1/permits/{id}/amendments",
        Doc::new("amendPermit", "Amend a permit: writes a new version")
            .tag("permits")
            .who(Who::Reviewer)
            .describe(
                "Fields left out keep their value. Refused (409) once the project is expired \
                 or closed, or if the permit changed meanwhile.",
            )
            .body("AmendRequest")
            .ok(200, "Permit")
            .errors(&[409]),
        amend,
    )
    .route(
        Method::POST,
        "/api/v1/permits/{id}/revoke",
        Doc::new(
            "revokePermit",
            "Revoke a permit at once and close its project",
        )
        .tag("permits")
        .who(Who::ReviewerOrOperator)
        .body("RevokeRequest")
        .ok(200, "Permit")
        .errors(&[409]),
        revoke,
    )
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let permits = state
        .home
        .governance()
        .list_permits(&caller.principal)
        .await?;
    Ok(Json(json!({ "permits": permits })))
}

async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        state
            .home
            .governance()
            .permit(&caller.principal, &id)
            .await?
    )))
}

async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let versions = state
        .home
        .governance()
        .permit_versions(&caller.principal, &id)
        .await?;
    Ok(Json(json!({ "permit_id": id, "versions": versions })))
}

async fn schema(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let session = state
        .open_session(&caller, Target::Permit { id: id.clone() })
        .await?;
    let tables: Vec<Value> = session
        .table_schemas()
        .iter()
        .map(|(name, schema)| {
            let columns: Vec<Value> = schema
                .fields()
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name(),
                        "type": f.data_type().to_string(),
                        "nullable": f.is_nullable(),
                    })
                })
                .collect();
            json!({ "name": name, "columns": columns })
        })
        .collect();
    Ok(Json(json!({ "permit_id": id, "tables": tables })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
    #[serde(default)]
    format: Option<String>,
}

async fn sql(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<SqlRequest>,
) -> ApiResult<axum::response::Response> {
    let format = crate::http::answer_format(request.format.as_deref())?;
    let session = state
        .open_session(&caller, Target::Permit { id: id.clone() })
        .await?;
    crate::http::answer(&session, &request.sql, format, json!({ "permit_id": id })).await
}

#[derive(Deserialize)]
struct AmendRequest {
    reason: String,
    #[serde(flatten)]
    amendment: PermitAmendment,
}

async fn amend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<AmendRequest>,
) -> ApiResult<Json<Value>> {
    let permit = state
        .home
        .governance()
        .amend_permit(&caller.principal, &id, request.amendment, &request.reason)
        .await?;
    Ok(Json(json!(permit)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    reason: String,
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<RevokeRequest>,
) -> ApiResult<Json<Value>> {
    let permit = state
        .home
        .governance()
        .revoke_permit(&caller.principal, &id, &request.reason)
        .await?;
    Ok(Json(json!(permit)))
}
