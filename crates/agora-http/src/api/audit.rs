//! The audit log over HTTP: the published signed tree heads, the signing key and the proofs
//! (public: anyone may keep copies and later prove a rewrite), the citizens' per-project
//! activity (public, counts only), and the entries (operators and auditors; a researcher,
//! their own project's).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use agora_service::audit::{AuditFilter, Category};

use super::openapi::{Doc, Who};
use super::{Api, Query};
use crate::api::auth::Caller;
use crate::http::{ApiError, ApiResult, AppState};

pub(super) fn routes(api: Api) -> Api {
    api.route(
        Method::GET,
        "/api/v1/audit/heads/latest",
        Doc::new(
            "auditLatestHead",
            "The latest signed tree head of the audit log",
        )
        .tag("audit")
        .who(Who::Public)
        .describe(
            "Keep it: it is a checkpoint. `agora audit verify --from-checkpoint FILE` (or \
                 anyone with the proofs below) shows whether a later log extends it. 404 \
                 while no head has been signed.",
        )
        .ok(200, "SignedTreeHead")
        .errors(&[404]),
        latest_head,
    )
    .route(
        Method::GET,
        "/api/v1/audit/heads",
        Doc::new("auditHeads", "Every signed tree head, oldest first")
            .tag("audit")
            .who(Who::Public)
            .ok(200, "SignedTreeHeadList"),
        heads,
    )
    .route(
        Method::GET,
        "/api/v1/audit/key",
        Doc::new(
            "auditKey",
            "The Ed25519 public key tree heads are signed with",
        )
        .tag("audit")
        .who(Who::Public)
        .ok(200, "AuditKey"),
        key,
    )
    .route(
        Method::GET,
        "/api/v1/audit/proofs/inclusion",
        Doc::new(
            "auditInclusionProof",
            "The audit path of one entry in a published tree (RFC 9162 §2.1.3)",
        )
        .tag("audit")
        .who(Who::Public)
        .query("index", "AuditPosition")
        .query("tree_size", "AuditPosition")
        .ok(200, "InclusionProof"),
        inclusion,
    )
    .route(
        Method::GET,
        "/api/v1/audit/proofs/consistency",
        Doc::new(
            "auditConsistencyProof",
            "The proof that one published tree extends another (RFC 9162 §2.1.4)",
        )
        .tag("audit")
        .who(Who::Public)
        .query("first", "AuditPosition")
        .query("second", "AuditPosition")
        .ok(200, "ConsistencyProof"),
        consistency,
    )
    .route(
        Method::GET,
        "/api/v1/audit/activity",
        Doc::new(
            "auditActivity",
            "Per month, project and dataset: how many queries were answered",
        )
        .tag("audit")
        .who(Who::Public)
        .describe("Counts only: no user, no query text, no data.")
        .ok(200, "ProjectActivityList"),
        activity,
    )
    .route(
        Method::GET,
        "/api/v1/audit/entries",
        Doc::new("auditEntries", "Audit log entries, newest first")
            .tag("audit")
            .who(Who::Authenticated)
            .describe(
                "Operators and auditors read every entry; anyone else only the entries of a \
                 project whose permit names them, with `project` given (403 otherwise). Page \
                 with `before` (the last `seq` of the previous page). `format=csv` answers \
                 `text/csv`.",
            )
            .query("category", "AuditCategory")
            .query("event", "AuditText")
            .query("actor", "AuditText")
            .query("project", "AuditText")
            .query("outcome", "AuditText")
            .query("from", "AuditTime")
            .query("to", "AuditTime")
            .query("before", "AuditPosition")
            .query("limit", "AuditPosition")
            .query("format", "AuditFormat")
            .ok(200, "AuditEntryList")
            .errors(&[403]),
        entries,
    )
}

async fn latest_head(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    match state
        .home
        .audit()
        .latest_head()
        .await
        .map_err(ApiError::from_error)?
    {
        Some(head) => Ok(Json(json!(head))),
        None => Err(ApiError::from_error(agora_service::Error::NotFound(
            "no tree head has been signed yet".into(),
        ))),
    }
}

async fn heads(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let heads = state
        .home
        .audit()
        .heads()
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({ "heads": heads })))
}

async fn key(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(state.home.audit().public_key().published()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    index: u64,
    tree_size: u64,
}

async fn inclusion(
    State(state): State<AppState>,
    query: Result<Query<InclusionQuery>, ApiError>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query.map_err(|_| {
        ApiError::invalid("query: give `index` and `tree_size` (a published head's size)")
    })?;
    let proof = state
        .home
        .audit()
        .inclusion_proof(q.index, q.tree_size)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(proof)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

async fn consistency(
    State(state): State<AppState>,
    query: Result<Query<ConsistencyQuery>, ApiError>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query.map_err(|_| {
        ApiError::invalid("query: give `first` and `second`, two published heads' sizes")
    })?;
    let proof = state
        .home
        .audit()
        .consistency_proof(q.first, q.second)
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!(proof)))
}

async fn activity(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let activity = state
        .home
        .audit()
        .project_activity()
        .await
        .map_err(ApiError::from_error)?;
    Ok(Json(json!({ "activity": activity })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    category: Option<Category>,
    event: Option<String>,
    actor: Option<String>,
    project: Option<String>,
    outcome: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    before: Option<u64>,
    limit: Option<u32>,
    format: Option<String>,
}

async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EntriesQuery>, ApiError>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|_| {
        ApiError::invalid(
            "query: the parameters are category (access, governance, operations), event, \
             actor, project, outcome, from and to (RFC 3339), before, limit, format (json, csv)",
        )
    })?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format: json or csv")),
    };
    let filter = AuditFilter {
        category: q.category,
        event: q.event,
        actor: q.actor,
        project: q.project,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
        before: q.before,
    };
    let entries = state
        .home
        .audit()
        .entries(&caller.principal, &filter, q.limit.unwrap_or(100))
        .await
        .map_err(ApiError::from_error)?;
    if csv {
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            agora_service::audit::entries_csv(&entries),
        )
            .into_response());
    }
    let next = entries.last().map(|e| e.seq);
    Ok(Json(json!({ "entries": entries, "next_before": next })).into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    use crate::http::{ApiOptions, router};
    use crate::testing::{hub, json as json_request, request, send};

    fn hash(v: &serde_json::Value) -> [u8; 32] {
        hex::decode(v.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap()
    }

    /// Anyone can fetch the heads, the key and proofs, and check them with the RFC 9162
    /// algorithms; entries need an operator or auditor.
    #[tokio::test]
    async fn heads_and_proofs_are_public_and_check_out() {
        let (_dir, home, op) = hub().await;
        let app = router(
            home.clone(),
            agora_service::QueryLimits::default(),
            &ApiOptions {
                public_rate_limit: 0,
                ..ApiOptions::default()
            },
        );
        let get = |path: &str| {
            request(Method::GET, path, None)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(
            send(&app, get("/api/v1/audit/heads/latest")).await.status,
            StatusCode::NOT_FOUND
        );
        // Governance events: users created through the API.
        for id in ["ann", "bob", "cy"] {
            let body = json!({"id": id, "display_name": id, "roles": ["researcher"]});
            let created = send(
                &app,
                json_request(Method::POST, "/api/v1/users", Some(&op), &body),
            )
            .await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        }
        let first = home.audit().sign_head().await.unwrap().unwrap();
        for id in ["eve", "dee"] {
            let body = json!({"id": id, "display_name": id, "roles": ["auditor"]});
            send(
                &app,
                json_request(Method::POST, "/api/v1/users", Some(&op), &body),
            )
            .await;
        }
        let second = home.audit().sign_head().await.unwrap().unwrap();
        assert!(second.head.tree_size > first.head.tree_size);

        let key = send(&app, get("/api/v1/audit/key")).await.body;
        let key = agora_audit::PublicKey::from_base64(key["public_key"].as_str().unwrap()).unwrap();
        let latest = send(&app, get("/api/v1/audit/heads/latest")).await;
        assert_eq!(latest.status, StatusCode::OK);
        let latest: agora_audit::SignedTreeHead = serde_json::from_value(latest.body).unwrap();
        assert_eq!(latest, second);
        key.verify(&latest).unwrap();
        let heads = send(&app, get("/api/v1/audit/heads")).await.body;
        assert_eq!(heads["heads"].as_array().unwrap().len(), 2);

        let n = latest.head.tree_size;
        for index in 0..n {
            let proof = send(
                &app,
                get(&format!(
                    "/api/v1/audit/proofs/inclusion?index={index}&tree_size={n}"
                )),
            )
            .await;
            assert_eq!(proof.status, StatusCode::OK, "{}", proof.text);
            let path: Vec<[u8; 32]> = proof.body["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(hash)
                .collect();
            agora_audit::verify_inclusion(
                &hash(&proof.body["leaf_hash"]),
                index,
                n,
                &path,
                &latest.head.root_hash,
            )
            .unwrap();
        }
        let m = first.head.tree_size;
        let proof = send(
            &app,
            get(&format!(
                "/api/v1/audit/proofs/consistency?first={m}&second={n}"
            )),
        )
        .await;
        assert_eq!(proof.status, StatusCode::OK, "{}", proof.text);
        let path: Vec<[u8; 32]> = proof.body["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        agora_audit::verify_consistency(m, n, &first.head.root_hash, &latest.head.root_hash, &path)
            .unwrap();
        // Proofs are given between published heads only.
        let unpublished = send(
            &app,
            get(&format!(
                "/api/v1/audit/proofs/inclusion?index=0&tree_size={}",
                n - 1
            )),
        )
        .await;
        assert_eq!(unpublished.status, StatusCode::BAD_REQUEST);

        // Entries: not public; the operator reads them, as JSON and CSV.
        assert_eq!(
            send(&app, get("/api/v1/audit/entries")).await.status,
            StatusCode::UNAUTHORIZED
        );
        let entries = send(
            &app,
            request(
                Method::GET,
                "/api/v1/audit/entries?event=user.&limit=2",
                Some(&op),
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(entries.status, StatusCode::OK, "{}", entries.text);
        let list = entries.body["entries"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["event"], "user.created");
        assert_eq!(list[0]["detail"]["user"], "dee");
        let before = entries.body["next_before"].as_u64().unwrap();
        let page = send(
            &app,
            request(
                Method::GET,
                &format!("/api/v1/audit/entries?event=user.&before={before}&format=csv"),
                Some(&op),
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains(",user.created,"), "{}", page.text);
        assert!(page.text.lines().count() >= 2);
    }
}
