//! The public project registry: every project that received a data permit, without login.
//! Generated from applications and permits on each read; results are attached through
//! `POST /api/v1/projects/{id}/results`.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde_json::{Value, json};

use super::openapi::{Doc, Who};
use super::{Api, Path};
use crate::http::{ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::GET,
        "/api/v1/registry",
        Doc::new(
            "registry",
            "The public project registry, oldest approval first",
        )
        .tag("registry")
        .who(Who::Public)
        .ok(200, "RegistryList"),
        list,
    )
    .route(
        Method::GET,
        "/api/v1/registry/{id}",
        Doc::new("registryEntry", "One project of the public registry")
            .tag("registry")
            .who(Who::Public)
            .ok(200, "RegistryEntry")
            .errors(&[404]),
        get,
    )
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let projects = state.home.governance().public_registry().await?;
    Ok(Json(json!({ "projects": projects })))
}

async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        state.home.governance().registry_entry(&id).await?
    )))
}
