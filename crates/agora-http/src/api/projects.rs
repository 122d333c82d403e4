//! Project applications and their review. Who may see and move what is the library's
//! transition table (`agora_service::governance::TRANSITIONS`); an application the caller may not see is
//! 404, exactly as a missing id.

use agora_service::governance::{
    Application, ApplicationForm, ApplicationState, NewProjectResult, PermitGrant, Principal, Role,
    application_view,
};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::openapi::{Doc, Who};
use super::{Api, Body, Path, Query};
use crate::http::{ApiError, ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::GET,
        "/api/v1/projects",
        Doc::new(
            "listProjects",
            "The project applications the caller may see",
        )
        .tag("projects")
        .who(Who::Authenticated)
        .describe(
            "Applicants see their own (as owner or team member); reviewers and operators \
                 see every application submitted at least once. Optional filter `state`.",
        )
        .query("state", "ApplicationState")
        .ok(200, "ApplicationList"),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/projects",
        Doc::new(
            "createProject",
            "Start a draft application (the caller becomes its owner)",
        )
        .tag("projects")
        .who(Who::Role(Role::Researcher))
        .body("ApplicationForm")
        .ok(201, "Application"),
        create,
    )
    .route(
        Method::GET,
        "/api/v1/projects/{id}",
        Doc::new(
            "getProject",
            "An application with its review deadlines and the moves open to the caller",
        )
        .tag("projects")
        .who(Who::Visible)
        .ok(200, "Application"),
        get,
    )
    .route(
        Method::PUT,
        "/api/v1/projects/{id}",
        Doc::new(
            "updateProject",
            "Replace the form of a draft or of an application sent back for changes",
        )
        .tag("projects")
        .who(Who::Applicant)
        .body("ApplicationForm")
        .ok(200, "Application")
        .errors(&[409]),
        update,
    )
    .route(
        Method::GET,
        "/api/v1/projects/{id}/history",
        Doc::new("projectHistory", "Who did what, when")
            .tag("projects")
            .who(Who::Visible)
            .ok(200, "ApplicationHistory"),
        history,
    )
    .route(
        Method::POST,
        "/api/v1/projects/{id}/transitions",
        Doc::new("moveProject", "Move an application to another state")
            .tag("projects")
            .who(Who::Transition)
            .describe(
                "submitted (applicant), draft (applicant: withdraw or reopen), under_review, \
                 changes_requested and rejected (a reviewer who is not an applicant), active \
                 (operator; the permit takes effect), expired (operator, once the permit \
                 has expired), closed (owner before approval; owner, reviewer or operator \
                 after: revokes the permit). Approval has its own endpoint. Of concurrent \
                 moves exactly one succeeds; the others get 409.",
            )
            .body("TransitionRequest")
            .ok(200, "Application")
            .errors(&[409]),
        transition,
    )
    .route(
        Method::POST,
        "/api/v1/projects/{id}/opinion",
        Doc::new(
            "recordOpinion",
            "Record the scientific opinion on an application under review",
        )
        .tag("projects")
        .who(Who::Reviewer)
        .body("OpinionRequest")
        .ok(200, "Application")
        .errors(&[409]),
        opinion,
    )
    .route(
        Method::POST,
        "/api/v1/projects/{id}/approve",
        Doc::new(
            "approveProject",
            "Approve an application under review and issue its data permit",
        )
        .tag("projects")
        .who(Who::Reviewer)
        .describe(
            "One transaction: the application becomes approved and its permit (version 1) \
                 is issued. Of concurrent approvals exactly one succeeds; the others get 409.",
        )
        .body("ApproveRequest")
        .ok(201, "Permit")
        .errors(&[409]),
        approve,
    )
    .route(
        Method::POST,
        "/api/v1/projects/{id}/results",
        Doc::new(
            "attachResult",
            "Attach a result or publication to a registered project",
        )
        .tag("registry")
        .who(Who::ApplicantOrOperator)
        .body("NewProjectResult")
        .ok(201, "ProjectResult")
        .errors(&[409]),
        attach_result,
    )
    .route(
        Method::GET,
        "/api/v1/review-queue",
        Doc::new(
            "reviewQueue",
            "Applications awaiting review, most urgent deadline first",
        )
        .tag("projects")
        .who(Who::ReviewerOrOperator)
        .ok(200, "ApplicationList"),
        queue,
    )
}

fn views(apps: &[Application], caller: &Principal) -> Value {
    Value::Array(apps.iter().map(|a| application_view(a, caller)).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    state: Option<ApplicationState>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, ApiError>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query.map_err(|_| {
        ApiError::invalid(
            "query: the only parameter is `state` (draft, submitted, under_review, \
             changes_requested, approved, rejected, active, expired or closed)",
        )
    })?;
    let p = &caller.principal;
    let apps = state
        .home
        .governance()
        .list_applications(p, query.state)
        .await?;
    Ok(Json(json!({ "projects": views(&apps, p) })))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(form): Body<ApplicationForm>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = &caller.principal;
    let app = state.home.governance().create_application(p, form).await?;
    Ok((StatusCode::CREATED, Json(application_view(&app, p))))
}

async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let app = state.home.governance().application(p, &id).await?;
    Ok(Json(application_view(&app, p)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(form): Body<ApplicationForm>,
) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let app = state
        .home
        .governance()
        .update_application(p, &id, form)
        .await?;
    Ok(Json(application_view(&app, p)))
}

async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let events = state
        .home
        .governance()
        .application_history(&caller.principal, &id)
        .await?;
    Ok(Json(json!({ "project_id": id, "events": events })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionRequest {
    to: ApplicationState,
    #[serde(default)]
    comment: Option<String>,
}

async fn transition(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<TransitionRequest>,
) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let meta = &state.home.governance();
    if request.to == ApplicationState::Approved {
        meta.application(p, &id).await?; // 404 first for those who may not see it
        return Err(ApiError::invalid(
            "approval issues the data permit: POST /api/v1/projects/{id}/approve with its terms",
        ));
    }
    let app = meta
        .transition_application(p, &id, request.to, request.comment.as_deref())
        .await?;
    Ok(Json(application_view(&app, p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpinionRequest {
    favourable: bool,
    summary: String,
}

async fn opinion(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<OpinionRequest>,
) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let app = state
        .home
        .governance()
        .record_scientific_opinion(p, &id, request.favourable, &request.summary)
        .await?;
    Ok(Json(application_view(&app, p)))
}

#[derive(Deserialize)]
struct ApproveRequest {
    #[serde(flatten)]
    grant: PermitGrant,
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<ApproveRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let permit = state
        .home
        .governance()
        .approve_application(
            &caller.principal,
            &id,
            request.grant,
            request.comment.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(permit))))
}

async fn attach_result(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<NewProjectResult>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let result = state
        .home
        .governance()
        .attach_result(&caller.principal, &id, request)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(result))))
}

async fn queue(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let apps = state.home.governance().review_queue(p).await?;
    Ok(Json(json!({ "projects": views(&apps, p) })))
}
