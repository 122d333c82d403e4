//! Test helpers: a hub in a temporary directory, the router over it, and requests through
//! it (in process) as a browser or a script would send them.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::http::{ApiOptions, router};

/// A fresh hub; the directory lives as long as the returned guard. Also returns the
/// bootstrap operator's API token.
pub(crate) async fn hub() -> (tempfile::TempDir, agora_service::Hub, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = agora_core::DataDir::new(dir.path().join("hub"));
    agora_service::Hub::init(&data).await.unwrap();
    let token = std::fs::read_to_string(data.operator_token()).unwrap();
    let home = agora_service::Hub::open(&data).await.unwrap();
    (dir, home, token.trim().to_owned())
}

/// The API over a fresh hub, without the per-address rate limit; and the operator's token.
pub(crate) async fn app() -> (tempfile::TempDir, Router, String) {
    let (dir, home, token) = hub().await;
    let options = ApiOptions {
        public_rate_limit: 0,
        ..ApiOptions::default()
    };
    let app = router(home, agora_service::QueryLimits::default(), &options);
    (dir, app, token)
}

/// An answer: status, headers, the body as JSON (`Null` if it is not) and as text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

/// A request to `path` on host `127.0.0.1:8080`, with a bearer token if given.
pub(crate) fn request(
    method: Method,
    path: &str,
    bearer: Option<&str>,
) -> axum::http::request::Builder {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:8080");
    if let Some(token) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    b
}

/// A request with a JSON body, declared as such.
pub(crate) fn json(
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Request<Body> {
    request(method, path, bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub(crate) async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Asserts `answer` is the error envelope with `status`; returns its kind.
pub(crate) fn assert_envelope(answer: &Answer, status: StatusCode, what: &str) -> String {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_eq!(
        answer.headers.get(header::CONTENT_TYPE).unwrap(),
        "application/json",
        "{what}"
    );
    let error = &answer.body["error"];
    assert!(error["message"].is_string(), "{what}: {}", answer.text);
    error["kind"].as_str().unwrap().to_owned()
}

/// Creates user `id` with `password` and the researcher role (as the operator).
pub(crate) async fn researcher(app: &Router, operator: &str, id: &str, password: &str) {
    let created = send(
        app,
        json(
            Method::POST,
            "/api/v1/users",
            Some(operator),
            &json!({"id": id, "display_name": id, "roles": ["researcher"], "password": password}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

/// Logs `id` in; returns the session token.
pub(crate) async fn login(app: &Router, id: &str, password: &str) -> String {
    let answer = send(
        app,
        json(
            Method::POST,
            "/api/v1/auth/login",
            None,
            &json!({"login": id, "password": password}),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.body["token"].as_str().unwrap().to_owned()
}
