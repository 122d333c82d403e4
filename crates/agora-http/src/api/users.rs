//! Users, roles, passwords and API tokens. Administration is for operators; a user may read
//! and edit its own profile, change its own password (giving the current one) and manage
//! its own API tokens. Anyone else's account does not exist for a non-operator (404).

use agora_service::governance::{NewUser, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::openapi::{Doc, Who};
use super::{Api, Body, Path};
use crate::http::{ApiError, ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    let op = Who::Role(Role::Operator);
    let self_or_op = Who::SelfOrOperator;
    api.route(
        Method::GET,
        "/api/v1/users",
        Doc::new("listUsers", "Every user, ordered by id")
            .tag("users")
            .who(op)
            .ok(200, "UserList"),
        list,
    )
    .route(
        Method::POST,
        "/api/v1/users",
        Doc::new(
            "createUser",
            "Create a local user with roles and, optionally, a password",
        )
        .tag("users")
        .who(op)
        .body("NewUser")
        .ok(201, "User")
        .errors(&[409]),
        create,
    )
    .route(
        Method::GET,
        "/api/v1/users/{id}",
        Doc::new("getUser", "A user")
            .tag("users")
            .who(self_or_op)
            .ok(200, "User"),
        get,
    )
    .route(
        Method::PUT,
        "/api/v1/users/{id}",
        Doc::new("updateUser", "Replace a user's display name and email")
            .tag("users")
            .who(self_or_op)
            .body("UserProfile")
            .ok(200, "User"),
        update,
    )
    .route(
        Method::PUT,
        "/api/v1/users/{id}/roles",
        Doc::new("setUserRoles", "Replace a user's roles")
            .tag("users")
            .who(op)
            .describe("Refused (409) if the hub would be left without an active operator.")
            .body("RolesRequest")
            .ok(200, "User")
            .errors(&[409]),
        set_roles,
    )
    .route(
        Method::POST,
        "/api/v1/users/{id}/deactivate",
        Doc::new("deactivateUser", "Deactivate a user")
            .tag("users")
            .who(op)
            .describe(
                "Revokes the user's sessions and API tokens at once and for good: \
                 reactivation restores none of them. Refused (409) for the last active \
                 operator.",
            )
            .ok(200, "User")
            .errors(&[409]),
        deactivate,
    )
    .route(
        Method::POST,
        "/api/v1/users/{id}/reactivate",
        Doc::new("reactivateUser", "Reactivate a user")
            .tag("users")
            .who(op)
            .ok(200, "User"),
        reactivate,
    )
    .route(
        Method::PUT,
        "/api/v1/users/{id}/password",
        Doc::new("setPassword", "Set a user's local password")
            .tag("users")
            .who(self_or_op)
            .describe(
                "Users changing their own password give the current one \
                 (`current_password`). Every session of the user ends except the one making \
                 the request (`other_sessions_ended` says how many); an operator resetting \
                 someone else's password ends all of that user's sessions. API tokens stay \
                 valid. Only an argon2id hash is stored.",
            )
            .body("PasswordRequest")
            .ok(200, "PasswordSet")
            .errors(&[429]),
        set_password,
    )
    .route(
        Method::GET,
        "/api/v1/users/{id}/tokens",
        Doc::new(
            "listTokens",
            "A user's API tokens (ids and roles, never the tokens)",
        )
        .tag("users")
        .who(self_or_op)
        .ok(200, "ApiTokenList"),
        list_tokens,
    )
    .route(
        Method::POST,
        "/api/v1/users/{id}/tokens",
        Doc::new("issueToken", "Issue an API token")
            .tag("users")
            .who(self_or_op)
            .describe(
                "The token is in this response only; the hub keeps its SHA-256. It carries \
                 the given roles (all the user's roles by default), never one the user does \
                 not hold.",
            )
            .body("NewTokenRequest")
            .ok(201, "IssuedToken"),
        issue_token,
    )
    .route(
        Method::DELETE,
        "/api/v1/users/{id}/tokens/{token_id}",
        Doc::new("revokeToken", "Revoke an API token")
            .tag("users")
            .who(self_or_op)
            .describe("Takes effect for the next request. Idempotent.")
            .ok(200, "ApiToken"),
        revoke_token,
    )
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let users = state
        .home
        .governance()
        .list_users(&caller.principal)
        .await?;
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserRequest {
    id: String,
    display_name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    password: Option<String>,
}

/// Checks a new password against the hub's policy before anything is written, so a refused
/// password leaves no half-made account behind.
fn check_password(state: &AppState, password: &str) -> ApiResult<()> {
    let min = state.home.governance().config().passwords.min_length;
    if password.chars().count() < min {
        return Err(ApiError::invalid(format!(
            "password must have at least {min} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(ApiError::invalid("password must have at most 1024 bytes"));
    }
    Ok(())
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<NewUserRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = caller.require(Role::Operator, "creating users needs the operator role")?;
    if let Some(password) = &request.password {
        check_password(&state, password)?;
    }
    let meta = &state.home.governance();
    let user = meta
        .create_user(
            p,
            NewUser {
                id: request.id,
                display_name: request.display_name,
                email: request.email,
                roles: request.roles,
            },
        )
        .await?;
    if let Some(password) = &request.password {
        meta.set_password(p, &user.id, password, None).await?;
    }
    let user = meta.user(p, &user.id).await?;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        state.home.governance().user(&caller.principal, &id).await?
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    display_name: String,
    #[serde(default)]
    email: Option<String>,
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<ProfileRequest>,
) -> ApiResult<Json<Value>> {
    let user = state
        .home
        .governance()
        .update_user(
            &caller.principal,
            &id,
            &request.display_name,
            request.email.as_deref(),
        )
        .await?;
    Ok(Json(json!(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesRequest {
    roles: Vec<Role>,
}

async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<RolesRequest>,
) -> ApiResult<Json<Value>> {
    let user = state
        .home
        .governance()
        .set_user_roles(&caller.principal, &id, &request.roles)
        .await?;
    Ok(Json(json!(user)))
}

async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state
        .home
        .governance()
        .set_user_active(&caller.principal, &id, false)
        .await?;
    Ok(Json(json!(user)))
}

async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = state
        .home
        .governance()
        .set_user_active(&caller.principal, &id, true)
        .await?;
    Ok(Json(json!(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    password: String,
    #[serde(default)]
    current_password: Option<String>,
}

async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<PasswordRequest>,
) -> ApiResult<Json<Value>> {
    let p = &caller.principal;
    let meta = &state.home.governance();
    let own = p.name == id;
    if !own && !p.has(Role::Operator) {
        return Err(agora_service::governance::Error::NotFound("user").into());
    }
    check_password(&state, &request.password)?;
    if own {
        // A stolen session must not be enough to take the account over.
        let current = request.current_password.as_deref().ok_or_else(|| {
            ApiError::invalid("changing your own password needs `current_password`")
        })?;
        if meta.authenticate_password(&id, current).await?.is_none() {
            return Err(ApiError::forbidden("the current password is wrong"));
        }
    }
    // The session making the change stays open (it just proved the current password);
    // every other session of the user ends.
    let keep = if own { caller.session_token() } else { None };
    let ended = meta.set_password(p, &id, &request.password, keep).await?;
    Ok(Json(
        json!({"user_id": id, "password_set": true, "other_sessions_ended": ended}),
    ))
}

async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let tokens = state
        .home
        .governance()
        .list_tokens(&caller.principal, &id)
        .await?;
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    #[serde(default)]
    roles: Option<Vec<Role>>,
}

async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<NewTokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let meta = &state.home.governance();
    let token = meta
        .issue_token(&caller.principal, &id, request.roles.as_deref())
        .await?;
    // The roles the token carries, as the service will see them.
    let roles = agora_auth::resolve_token(&state.home, &token)
        .await
        .map_err(ApiError::from_error)?
        .map(|who| who.principal().roles.clone())
        .unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "id": agora_service::governance::token_id(&token),
            "user_id": id,
            "roles": roles,
            "note": "the token is shown once: only its hash is stored",
        })),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let token = state
        .home
        .governance()
        .revoke_token_by_id(&caller.principal, &id, &token_id)
        .await?;
    Ok(Json(json!(token)))
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;
    use crate::testing::{Answer, app, json, login, request, researcher, send};

    const PASSWORD: &str = "a long enough passphrase";

    async fn me(app: &axum::Router, token: &str) -> StatusCode {
        send(
            app,
            request(Method::GET, "/api/v1/me", Some(token))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .status
    }

    async fn post(app: &axum::Router, path: &str, token: &str) -> Answer {
        send(
            app,
            request(Method::POST, path, Some(token))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Issue 11, item 7: changing one's own password ends every other session of the
    /// user, keeps the one making the change, and says how many ended.
    #[tokio::test]
    async fn a_password_change_ends_the_other_sessions() {
        let (_dir, app, op) = app().await;
        researcher(&app, &op, "alice", PASSWORD).await;
        let current = login(&app, "alice", PASSWORD).await;
        let other = login(&app, "alice", PASSWORD).await;
        let change = json!({"password": "another long passphrase", "current_password": PASSWORD});
        // Made with the session cookie, as the hub's own pages would.
        let req = request(Method::PUT, "/api/v1/users/alice/password", None)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, format!("agora_session={current}"))
            .body(axum::body::Body::from(change.to_string()))
            .unwrap();
        let answer = send(&app, req).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["other_sessions_ended"], 1);
        assert_eq!(me(&app, &current).await, StatusCode::OK);
        assert_eq!(me(&app, &other).await, StatusCode::UNAUTHORIZED);
        // An operator's reset ends them all.
        let reset = json!({"password": "reset by the operator"});
        let answer = send(
            &app,
            json(
                Method::PUT,
                "/api/v1/users/alice/password",
                Some(&op),
                &reset,
            ),
        )
        .await;
        assert_eq!(answer.body["other_sessions_ended"], 1, "{}", answer.text);
        assert_eq!(me(&app, &current).await, StatusCode::UNAUTHORIZED);
    }

    /// Issue 11, item 8: deactivation revokes API tokens and sessions for good; after
    /// reactivation, only new credentials work.
    #[tokio::test]
    async fn reactivation_does_not_revive_old_credentials() {
        let (_dir, app, op) = app().await;
        researcher(&app, &op, "alice", PASSWORD).await;
        let session = login(&app, "alice", PASSWORD).await;
        let issued = post(&app, "/api/v1/users/alice/tokens", &session).await;
        let token = issued.body["token"].as_str().unwrap().to_owned();
        assert_eq!(me(&app, &token).await, StatusCode::OK);
        assert_eq!(
            post(&app, "/api/v1/users/alice/deactivate", &op)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            post(&app, "/api/v1/users/alice/reactivate", &op)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(me(&app, &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(&app, &session).await, StatusCode::UNAUTHORIZED);
        let listed = send(
            &app,
            request(Method::GET, "/api/v1/users/alice/tokens", Some(&op))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
        assert!(
            listed.body["tokens"][0]["revoked_at"].is_string(),
            "{}",
            listed.text
        );
        // A new login works as before.
        let fresh = login(&app, "alice", PASSWORD).await;
        assert_eq!(me(&app, &fresh).await, StatusCode::OK);
    }
}
