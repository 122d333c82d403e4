//! The citizen opt-out: anyone may opt out by giving their identifier (only its keyed
//! pseudonym, the hub person key, is stored), check and withdraw it with the receipt id;
//! an operator may record one on a citizen's behalf.
//!
//! The receipt id is the capability to withdraw, so it is handed out only to whoever
//! recorded the opt-out: submitting the identifier of a person already opted out says so
//! but gives no receipt (otherwise anyone knowing a person's identifier could withdraw
//! their opt-out). That answer does tell a caller who knows the identifier that an opt-out
//! is in force; without identity verification (e.g. FranceConnect) in front of this
//! endpoint that cannot be avoided. The anonymous endpoints are rate-limited per address.

use agora_service::governance::{IdentityKind, OptOutChannel, RecordedOptOut, Role};
use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, MaybeCaller};
use super::limit::Throttle;
use super::openapi::{Doc, Who};
use super::{Api, Body, Path};
use crate::http::{ApiError, ApiResult, AppState};

/// Longest identifier accepted, in bytes (national identifiers are ~15 characters).
const MAX_IDENTIFIER_BYTES: usize = 256;

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::POST,
        "/api/v1/optout",
        Doc::new("optOut", "Opt out of every project's data (no login)")
            .tag("optout")
            .who(Who::Public)
            .describe(
                "Give the identifier the hub's sources use (e.g. the national health \
                 identifier); only its keyed pseudonym is stored. Case, surrounding space \
                 and a NIR's separators do not matter: every typing reaches the same \
                 person. With `kind` (`nir`, `uuid`), an identifier not of that kind is \
                 refused (400). 201 with a receipt when \
                 recorded; 200 without a receipt when an opt-out was already in force (its \
                 receipt went to whoever recorded it). Rate-limited per client address.",
            )
            .body("OptOutRequest")
            .ok(201, "OptOutSubmission")
            .errors(&[429]),
        submit,
    )
    .route(
        Method::POST,
        "/api/v1/optout/on-behalf",
        Doc::new(
            "optOutOnBehalf",
            "Record a citizen's opt-out received by mail or in person",
        )
        .tag("optout")
        .who(Who::Role(Role::Operator))
        .describe("Returns the receipt in force, new or not, for the operator to send on.")
        .body("OptOutOnBehalfRequest")
        .ok(201, "OptOutSubmission"),
        on_behalf,
    )
    .route(
        Method::GET,
        "/api/v1/optout/{receipt_id}",
        Doc::new(
            "optOutStatus",
            "The status of an opt-out, by receipt id (no login)",
        )
        .tag("optout")
        .who(Who::Public)
        .ok(200, "OptOutReceipt")
        .errors(&[404, 429]),
        status,
    )
    .route(
        Method::POST,
        "/api/v1/optout/{receipt_id}/withdraw",
        Doc::new(
            "withdrawOptOut",
            "Withdraw an opt-out, by receipt id (no login)",
        )
        .tag("optout")
        .who(Who::Public)
        .describe("Idempotent. The record is kept; opting out again gives a new receipt.")
        .ok(200, "OptOutReceipt")
        .errors(&[404, 429]),
        withdraw,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutRequest {
    identifier: String,
    /// `nir`, `uuid` or `any` (default): a kind refuses identifiers not of that kind.
    #[serde(default)]
    kind: Option<String>,
}

/// Checks the identifier's size and parses the kind; the store brings the identifier to its
/// canonical form (the one ingest keys) and refuses it, without echoing it, if invalid.
fn check_identifier(identifier: &str, kind: Option<&str>) -> ApiResult<IdentityKind> {
    if identifier.len() > MAX_IDENTIFIER_BYTES {
        return Err(ApiError::invalid(format!(
            "identifier: at most {MAX_IDENTIFIER_BYTES} bytes"
        )));
    }
    kind.map_or(Ok(IdentityKind::Any), |k| {
        k.parse()
            .map_err(|_| ApiError::invalid("kind: use `nir`, `uuid` or `any`"))
    })
}

fn submission(recorded: &RecordedOptOut, show_existing: bool) -> (StatusCode, Json<Value>) {
    if recorded.created {
        (
            StatusCode::CREATED,
            Json(json!({
                "recorded": true,
                "receipt": recorded.receipt,
                "message": "Your opt-out is recorded. Keep the receipt id: it is how you check or withdraw it.",
            })),
        )
    } else if show_existing {
        (
            StatusCode::OK,
            Json(json!({
                "recorded": false,
                "receipt": recorded.receipt,
                "message": "An opt-out was already in force for this person.",
            })),
        )
    } else {
        (
            StatusCode::OK,
            Json(json!({
                "recorded": false,
                "receipt": null,
                "message": "An opt-out is already in force for this person. Its receipt was given when it was recorded; the hub's operator can help if it is lost.",
            })),
        )
    }
}

async fn submit(
    State(state): State<AppState>,
    _throttle: Throttle,
    Body(request): Body<OptOutRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let kind = check_identifier(&request.identifier, request.kind.as_deref())?;
    let recorded = state
        .home
        .governance()
        .record_opt_out(&request.identifier, kind, OptOutChannel::Portal, "citizen")
        .await?;
    Ok(submission(&recorded, false))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBehalfRequest {
    identifier: String,
    /// `nir`, `uuid` or `any` (default).
    #[serde(default)]
    kind: Option<String>,
    /// `mail` or `operator` (default).
    #[serde(default)]
    channel: Option<OptOutChannel>,
}

async fn on_behalf(
    State(state): State<AppState>,
    caller: Caller,
    Body(request): Body<OnBehalfRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = caller.require(
        Role::Operator,
        "recording an opt-out on someone's behalf needs the operator role",
    )?;
    let kind = check_identifier(&request.identifier, request.kind.as_deref())?;
    let channel = request.channel.unwrap_or(OptOutChannel::Operator);
    if !matches!(channel, OptOutChannel::Operator | OptOutChannel::Mail) {
        return Err(ApiError::invalid("channel: use `operator` or `mail`"));
    }
    let recorded = state
        .home
        .governance()
        .record_opt_out(&request.identifier, kind, channel, &p.name)
        .await?;
    Ok(submission(&recorded, true))
}

async fn status(
    State(state): State<AppState>,
    _throttle: Throttle,
    Path(receipt_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(
        state.home.governance().opt_out_receipt(&receipt_id).await?
    )))
}

async fn withdraw(
    State(state): State<AppState>,
    _throttle: Throttle,
    MaybeCaller(caller): MaybeCaller,
    Path(receipt_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let actor = caller
        .as_ref()
        .filter(|c| c.principal.has(Role::Operator))
        .map_or("citizen", |c| c.principal.name.as_str());
    let receipt = state
        .home
        .governance()
        .withdraw_opt_out(&receipt_id, actor)
        .await?;
    Ok(Json(json!(receipt)))
}
