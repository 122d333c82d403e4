//! The governance API over HTTP, on the real binary: every endpoint as every role (the
//! allow/deny matrix), concurrent approvals, throttling, and the maintenance task.

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};

use crate::support::{Hub, Server};

const PASSWORD: &str = "correct horse battery staple";

/// A credential as a client presents it.
#[derive(Clone, Debug)]
pub(crate) enum Cred {
    Anonymous,
    Bearer(String),
    Cookie(String),
}

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) body: Value,
    pub(crate) text: String,
    pub(crate) retry_after: Option<String>,
    pub(crate) set_cookie: Option<String>,
}

pub(crate) fn call(
    server: &Server,
    method: &str,
    path: &str,
    cred: &Cred,
    body: Option<&Value>,
) -> Resp {
    let mut req = ureq::request(method, &server.url(path));
    match cred {
        Cred::Anonymous => {}
        Cred::Bearer(t) => req = req.set("Authorization", &format!("Bearer {t}")),
        Cred::Cookie(t) => req = req.set("Cookie", &format!("agora_session={t}")),
    }
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let retry_after = resp.header("Retry-After").map(str::to_owned);
    let set_cookie = resp.header("Set-Cookie").map(str::to_owned);
    let text = resp.into_string().unwrap();
    Resp {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        retry_after,
        set_cookie,
    }
}

/// Calls and asserts the status; returns the body.
fn ok(server: &Server, method: &str, path: &str, cred: &Cred, body: Option<Value>) -> Value {
    let r = call(server, method, path, cred, body.as_ref());
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}",
        r.status,
        r.text
    );
    r.body
}

fn form(title: &str) -> Value {
    json!({
        "title": title,
        "purpose": "Describe care pathways",
        "public_interest": "Better follow-up",
        "legal_basis": "GDPR 6(1)(e) and 9(2)(j)",
        "organisation": "University Hospital",
        "requested": [{"dataset": "demo", "tables": [{"table": "person", "columns": ["person_id", "year_of_birth"]}]}],
        "period": {"from": "2015-01-01", "to": "2024-12-31"},
        "identifiers": ["birth_year_month"],
        "duration_months": 12,
        "team": [],
    })
}

fn grant() -> Value {
    json!({
        "datasets": [{"dataset": "demo", "release": {"number": 1}, "tables": [
            {"table": "person", "columns": ["person_id", "year_of_birth"],
             "row_filters": [{"kind": "age_range", "year_of_birth_column": "year_of_birth", "min_age": 18, "at_year": 2026}]}
        ]}],
        "comment": "granted",
    })
}

/// A hub with a dataset, users of every role, and two active projects.
pub(crate) struct World {
    pub(crate) hub: Hub,
    pub(crate) server: Server,
    pub(crate) op: Cred,
    pub(crate) prod: Cred,
    pub(crate) rev: Cred,
    pub(crate) rex: Cred,
    pub(crate) alice: Cred,
    pub(crate) bob: Cred,
    pub(crate) dave: Cred,
    pub(crate) dave_session: Cred,
    pub(crate) erin: Cred,
    /// alice's active project and its permit.
    pub(crate) a: String,
    pub(crate) pa: String,
    /// bob's active project and its permit.
    pub(crate) b: String,
    pub(crate) pb: String,
}

impl World {
    pub(crate) fn new(server_args: &[&str]) -> Self {
        let hub = Hub::init();
        // The hub's samples directory: the one place in a data directory an extract may be.
        let extract = hub.data_dir().join("samples/extract");
        hub.ok(&[
            "generate",
            "omop",
            "--persons",
            "40",
            "--out",
            extract.to_str().unwrap(),
        ]);
        hub.ingest("demo", &extract);
        let server = Server::start_with(&hub, server_args);
        let op = Cred::Bearer(hub.token().trim().to_owned());
        let s = &server;
        for (id, roles, password) in [
            ("pat", json!(["producer"]), false),
            ("rev", json!(["reviewer"]), true),
            ("rex", json!(["reviewer"]), false),
            ("alice", json!(["researcher"]), true),
            ("bob", json!(["researcher"]), false),
            ("dave", json!(["researcher"]), true),
            ("erin", json!(["researcher"]), false),
        ] {
            let mut body = json!({"id": id, "display_name": format!("User {id}"), "roles": roles});
            if password {
                body["password"] = json!(PASSWORD);
            }
            ok(s, "POST", "/api/v1/users", &op, Some(body));
        }
        let token = |user: &str| {
            let t = ok(
                s,
                "POST",
                &format!("/api/v1/users/{user}/tokens"),
                &op,
                None,
            );
            Cred::Bearer(t["token"].as_str().unwrap().to_owned())
        };
        let login = |user: &str| {
            let body = json!({"login": user, "password": PASSWORD});
            ok(
                s,
                "POST",
                "/api/v1/auth/login",
                &Cred::Anonymous,
                Some(body),
            )["token"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let prod = token("pat");
        let rex = token("rex");
        let bob = token("bob");
        let dave = token("dave");
        let rev = Cred::Bearer(login("rev"));
        let alice = Cred::Cookie(login("alice"));
        let dave_session = Cred::Bearer(login("dave"));
        ok(s, "POST", "/api/v1/users/dave/deactivate", &op, None);
        let erin = Cred::Bearer(expired_session(&hub, "erin"));

        let mut w = World {
            hub,
            server,
            op,
            prod,
            rev,
            rex,
            alice,
            bob,
            dave,
            dave_session,
            erin,
            a: String::new(),
            pa: String::new(),
            b: String::new(),
            pb: String::new(),
        };
        w.a = w.project_in("active", &w.alice);
        w.pa = w.permit_of(&w.a);
        w.b = w.project_in("active", &w.bob);
        w.pb = w.permit_of(&w.b);
        w
    }

    fn ok(&self, method: &str, path: &str, cred: &Cred, body: Option<Value>) -> Value {
        ok(&self.server, method, path, cred, body)
    }

    fn permit_of(&self, app: &str) -> String {
        self.ok("GET", &format!("/api/v1/projects/{app}"), &self.op, None)["permit_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn project_in(&self, state: &str, owner: &Cred) -> String {
        let id = self.ok("POST", "/api/v1/projects", owner, Some(form("A study")))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/api/v1/projects/{id}");
        let steps: &[&str] = match state {
            "draft" => &[],
            "submitted" => &["submitted"],
            "under_review" => &["submitted", "under_review"],
            "approved" => &["submitted", "under_review", "approved"],
            "active" => &["submitted", "under_review", "approved", "active"],
            other => panic!("{other}"),
        };
        for step in steps {
            match *step {
                "submitted" => self.move_to(&path, owner, "submitted"),
                "under_review" => self.move_to(&path, &self.rev, "under_review"),
                "approved" => {
                    self.ok("POST", &format!("{path}/approve"), &self.rev, Some(grant()));
                }
                "active" => self.move_to(&path, &self.op, "active"),
                _ => unreachable!(),
            }
        }
        id
    }

    fn move_to(&self, path: &str, who: &Cred, to: &str) {
        self.ok(
            "POST",
            &format!("{path}/transitions"),
            who,
            Some(json!({"to": to})),
        );
    }

    /// The eight callers of the matrix, in column order.
    fn roles(&self) -> [(&'static str, Cred); 8] {
        [
            ("anonymous", Cred::Anonymous),
            ("operator", self.op.clone()),
            ("producer", self.prod.clone()),
            ("reviewer", self.rev.clone()),
            ("researcher A", self.alice.clone()),
            ("researcher B", self.bob.clone()),
            ("deactivated", self.dave.clone()),
            ("expired session", self.erin.clone()),
        ]
    }
}

/// A real session of `user` that has expired: opened through the library with a clock 13
/// hours in the past (sessions last at most 12 hours).
fn expired_session(hub: &Hub, user: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let db = hub.data_dir().join("meta.db");
        let past = chrono::Utc::now() - chrono::TimeDelta::hours(13);
        let store = agora_govern::MetaStore::open_sqlite(&db)
            .await
            .unwrap()
            .with_clock(Arc::new(agora_govern::ManualClock::new(past)));
        let session = store.create_session(user).await.unwrap();
        // It was a live session at the time it was opened; it is not one now.
        assert!(
            store
                .session_principal(&session.token)
                .await
                .unwrap()
                .is_some()
        );
        let now = agora_govern::MetaStore::open_sqlite(&db).await.unwrap();
        assert!(
            now.session_principal(&session.token)
                .await
                .unwrap()
                .is_none()
        );
        session.token
    })
}

const U: u16 = 401;

/// One row of the matrix: a request per role (fresh objects where the request changes
/// state) and the expected status per role.
struct Case {
    name: &'static str,
    method: &'static str,
    requests: Vec<(String, Option<Value>)>,
    expect: [u16; 8],
}

fn same(path: impl Into<String>, body: Option<Value>) -> Vec<(String, Option<Value>)> {
    let path = path.into();
    (0..8).map(|_| (path.clone(), body.clone())).collect()
}

fn per_role(mut f: impl FnMut(usize) -> (String, Option<Value>)) -> Vec<(String, Option<Value>)> {
    (0..8).map(&mut f).collect()
}

/// Ids a refusal must not echo: path segments that name objects.
fn named_ids(path: &str) -> Vec<String> {
    let words = [
        "api",
        "v1",
        "users",
        "projects",
        "permits",
        "exports",
        "decision",
        "file",
        "registry",
        "optout",
        "tokens",
        "roles",
        "password",
        "deactivate",
        "reactivate",
        "transitions",
        "opinion",
        "approve",
        "results",
        "history",
        "versions",
        "amendments",
        "revoke",
        "withdraw",
        "on-behalf",
        "datasets",
        "releases",
        "quality",
        "auth",
        "login",
        "logout",
        "me",
        "sql",
        "review-queue",
        "audit",
        "heads",
        "latest",
        "key",
        "proofs",
        "inclusion",
        "consistency",
        "activity",
        "entries",
        "openapi.json",
        "health",
        "demo",
        "1",
    ];
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .filter(|s| !s.is_empty() && !words.contains(s))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_endpoint_as_every_role() {
    let w = World::new(&["--public-rate-limit", "0"]);
    let s = &w.server;
    let (a, pa) = (w.a.clone(), w.pa.clone());
    let op = w.op.clone();

    // Objects for the requests that change state: one per role, so each role meets the
    // state the request needs.
    let fresh =
        |state: &str| -> Vec<String> { (0..8).map(|_| w.project_in(state, &w.alice)).collect() };
    let drafts = fresh("draft");
    let drafts2 = fresh("draft");
    let submitted = fresh("submitted");
    let reviewing = fresh("under_review");
    let reviewing2 = fresh("under_review");
    let approved = fresh("approved");
    let active = fresh("active");
    let active_permits: Vec<String> = fresh("active").iter().map(|id| w.permit_of(id)).collect();
    let revocable: Vec<String> = fresh("active").iter().map(|id| w.permit_of(id)).collect();
    for prefix in ["role", "act", "pw"] {
        for i in 0..8 {
            let mut body = json!({"id": format!("{prefix}-{i}"), "display_name": "Someone", "roles": ["researcher"]});
            if prefix == "pw" {
                body["password"] = json!(PASSWORD);
            }
            w.ok("POST", "/api/v1/users", &op, Some(body));
        }
    }
    let bob_tokens: Vec<String> = (0..8)
        .map(|_| {
            w.ok("POST", "/api/v1/users/bob/tokens", &op, None)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let citizen = w.ok(
        "POST",
        "/api/v1/optout",
        &Cred::Anonymous,
        Some(json!({"identifier": "2 90 01 13 055 123 99"})),
    );
    let receipt = citizen["receipt"]["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let receipts: Vec<String> = (0..8)
        .map(|i| {
            w.ok(
                "POST",
                "/api/v1/optout",
                &Cred::Anonymous,
                Some(json!({"identifier": format!("2 90 01 13 055 200 {i:02}")})),
            )["receipt"]["receipt_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    // Export requests of alice's (snds: they wait for review): one to read, one approved,
    // one pending per role to decide.
    let export = || -> String {
        w.ok(
            "POST",
            &format!("/api/v1/permits/{pa}/exports"),
            &w.alice,
            Some(json!({"sql": "SELECT COUNT(*) AS persons FROM demo.person"})),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ex = export();
    let ex_approved = export();
    w.ok(
        "POST",
        &format!("/api/v1/exports/{ex_approved}/decision"),
        &w.rev,
        Some(json!({"decision": "approve", "reason": "one count, k respected"})),
    );
    let ex_pending: Vec<String> = (0..8).map(|_| export()).collect();

    // A signed head, so the audit cases have one to prove against.
    let head: Value = serde_json::from_str(&w.hub.ok(&["audit", "head", "--json"])).unwrap();
    let signed = head["tree_size"].as_u64().unwrap();
    let all_ok = [200; 8];
    let authenticated = [U, 200, 200, 200, 200, 200, U, U];
    let operator_only = [U, 200, 403, 403, 403, 403, U, U];
    let app = |id: &str| format!("/api/v1/projects/{id}");
    let permit = |id: &str| format!("/api/v1/permits/{id}");
    let cases = vec![
        Case {
            name: "health",
            method: "GET",
            requests: same("/health", None),
            expect: all_ok,
        },
        Case {
            name: "openapi",
            method: "GET",
            requests: same("/api/v1/openapi.json", None),
            expect: all_ok,
        },
        Case {
            name: "datasets",
            method: "GET",
            requests: same("/api/v1/datasets", None),
            expect: all_ok,
        },
        Case {
            name: "releases",
            method: "GET",
            requests: same("/api/v1/datasets/demo/releases", None),
            expect: all_ok,
        },
        Case {
            name: "release",
            method: "GET",
            requests: same("/api/v1/datasets/demo/releases/1", None),
            expect: all_ok,
        },
        Case {
            name: "quality",
            method: "GET",
            requests: same("/api/v1/datasets/demo/releases/1/quality", None),
            expect: operator_only,
        },
        Case {
            name: "catalogue",
            method: "GET",
            requests: same("/api/v1/catalogue", None),
            expect: all_ok,
        },
        Case {
            name: "catalogue json-ld",
            method: "GET",
            requests: same("/api/v1/catalogue.jsonld", None),
            expect: all_ok,
        },
        Case {
            name: "catalogue dataset",
            method: "GET",
            requests: same("/api/v1/catalogue/demo", None),
            expect: all_ok,
        },
        Case {
            name: "describe dataset",
            method: "PUT",
            requests: same(
                "/api/v1/catalogue/demo/metadata",
                Some(json!({"title": "Demo", "legal_basis": "Synthetic data"})),
            ),
            expect: operator_only,
        },
        Case {
            name: "operator sql",
            method: "POST",
            requests: same(
                "/api/v1/sql",
                Some(json!({"dataset": "demo", "sql": "SELECT COUNT(*) AS n FROM person"})),
            ),
            expect: operator_only,
        },
        Case {
            name: "login (wrong)",
            method: "POST",
            requests: per_role(|i| {
                (
                    "/api/v1/auth/login".into(),
                    Some(json!({"login": format!("ghost{i}"), "password": PASSWORD})),
                )
            }),
            expect: [U; 8],
        },
        Case {
            name: "me",
            method: "GET",
            requests: same("/api/v1/me", None),
            expect: authenticated,
        },
        // Users and tokens.
        Case {
            name: "list users",
            method: "GET",
            requests: same("/api/v1/users", None),
            expect: operator_only,
        },
        Case {
            name: "create user",
            method: "POST",
            requests: per_role(|i| {
                (
                    "/api/v1/users".into(),
                    Some(
                        json!({"id": format!("new-{i}"), "display_name": "New", "roles": ["researcher"]}),
                    ),
                )
            }),
            expect: [U, 201, 403, 403, 403, 403, U, U],
        },
        Case {
            name: "get user",
            method: "GET",
            requests: same("/api/v1/users/alice", None),
            expect: [U, 200, 404, 404, 200, 404, U, U],
        },
        Case {
            name: "update user",
            method: "PUT",
            requests: same(
                "/api/v1/users/alice",
                Some(json!({"display_name": "Alice A."})),
            ),
            expect: [U, 200, 404, 404, 200, 404, U, U],
        },
        Case {
            name: "set roles",
            method: "PUT",
            requests: per_role(|i| {
                (
                    format!("/api/v1/users/role-{i}/roles"),
                    Some(json!({"roles": ["reviewer"]})),
                )
            }),
            expect: operator_only,
        },
        Case {
            name: "deactivate",
            method: "POST",
            requests: per_role(|i| (format!("/api/v1/users/act-{i}/deactivate"), None)),
            expect: operator_only,
        },
        Case {
            name: "reactivate",
            method: "POST",
            requests: per_role(|i| (format!("/api/v1/users/act-{i}/reactivate"), None)),
            expect: operator_only,
        },
        Case {
            name: "set password",
            method: "PUT",
            requests: per_role(|i| {
                (
                    format!("/api/v1/users/pw-{i}/password"),
                    Some(json!({"password": "another long passphrase"})),
                )
            }),
            expect: [U, 200, 404, 404, 404, 404, U, U],
        },
        Case {
            name: "list tokens",
            method: "GET",
            requests: same("/api/v1/users/bob/tokens", None),
            expect: [U, 200, 404, 404, 404, 200, U, U],
        },
        Case {
            name: "issue token",
            method: "POST",
            requests: same("/api/v1/users/bob/tokens", None),
            expect: [U, 201, 404, 404, 404, 201, U, U],
        },
        Case {
            name: "revoke token",
            method: "DELETE",
            requests: per_role(|i| (format!("/api/v1/users/bob/tokens/{}", bob_tokens[i]), None)),
            expect: [U, 200, 404, 404, 404, 200, U, U],
        },
        // Projects.
        Case {
            name: "list projects",
            method: "GET",
            requests: same("/api/v1/projects", None),
            expect: authenticated,
        },
        Case {
            name: "create project",
            method: "POST",
            requests: same("/api/v1/projects", Some(form("New"))),
            expect: [U, 403, 403, 403, 201, 201, U, U],
        },
        Case {
            name: "get project",
            method: "GET",
            requests: same(app(&a), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "edit draft",
            method: "PUT",
            requests: per_role(|i| (app(&drafts[i]), Some(form("Edited")))),
            expect: [U, 404, 404, 404, 200, 404, U, U],
        },
        Case {
            name: "history",
            method: "GET",
            requests: same(format!("{}/history", app(&a)), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "submit",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/transitions", app(&drafts2[i])),
                    Some(json!({"to": "submitted"})),
                )
            }),
            expect: [U, 404, 404, 404, 200, 404, U, U],
        },
        Case {
            name: "start review",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/transitions", app(&submitted[i])),
                    Some(json!({"to": "under_review"})),
                )
            }),
            expect: [U, 403, 404, 200, 403, 404, U, U],
        },
        Case {
            name: "opinion",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/opinion", app(&reviewing[i])),
                    Some(json!({"favourable": true, "summary": "sound"})),
                )
            }),
            expect: [U, 403, 404, 200, 403, 404, U, U],
        },
        Case {
            name: "approve",
            method: "POST",
            requests: per_role(|i| (format!("{}/approve", app(&reviewing2[i])), Some(grant()))),
            expect: [U, 403, 404, 201, 403, 404, U, U],
        },
        Case {
            name: "activate",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/transitions", app(&approved[i])),
                    Some(json!({"to": "active"})),
                )
            }),
            expect: [U, 200, 404, 403, 403, 404, U, U],
        },
        Case {
            name: "close",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/transitions", app(&active[i])),
                    Some(json!({"to": "closed", "comment": "done"})),
                )
            }),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "attach result",
            method: "POST",
            requests: same(
                format!("{}/results", app(&a)),
                Some(json!({"title": "Paper", "url": "https://doi.org/10.1000/x"})),
            ),
            expect: [U, 201, 404, 403, 201, 404, U, U],
        },
        Case {
            name: "review queue",
            method: "GET",
            requests: same("/api/v1/review-queue", None),
            expect: [U, 200, 403, 200, 403, 403, U, U],
        },
        // Permits.
        Case {
            name: "list permits",
            method: "GET",
            requests: same("/api/v1/permits", None),
            expect: authenticated,
        },
        Case {
            name: "get permit",
            method: "GET",
            requests: same(permit(&pa), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "permit versions",
            method: "GET",
            requests: same(format!("{}/versions", permit(&pa)), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "permit schema",
            method: "GET",
            requests: same(format!("{}/schema", permit(&pa)), None),
            expect: [U, 403, 403, 403, 200, 403, U, U],
        },
        Case {
            // Answered for its holder, through the output policy.
            name: "permit sql",
            method: "POST",
            requests: same(
                format!("{}/sql", permit(&pa)),
                Some(json!({"sql": "SELECT COUNT(*) FROM demo.person"})),
            ),
            expect: [U, 403, 403, 403, 200, 403, U, U],
        },
        Case {
            name: "amend permit",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/amendments", permit(&active_permits[i])),
                    Some(
                        json!({"reason": "fewer members", "output": {"profile": "snds", "k": 11}}),
                    ),
                )
            }),
            expect: [U, 403, 404, 200, 403, 404, U, U],
        },
        Case {
            name: "revoke permit",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("{}/revoke", permit(&revocable[i])),
                    Some(json!({"reason": "breach"})),
                )
            }),
            expect: [U, 200, 404, 200, 403, 404, U, U],
        },
        // Export requests.
        Case {
            name: "request export",
            method: "POST",
            requests: same(
                format!("{}/exports", permit(&pa)),
                Some(json!({"sql": "SELECT COUNT(*) AS persons FROM demo.person"})),
            ),
            expect: [U, 403, 403, 403, 201, 403, U, U],
        },
        Case {
            name: "list exports",
            method: "GET",
            requests: same("/api/v1/exports?status=pending_review", None),
            expect: authenticated,
        },
        Case {
            name: "get export",
            method: "GET",
            requests: same(format!("/api/v1/exports/{ex}"), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        Case {
            name: "decide export",
            method: "POST",
            requests: per_role(|i| {
                (
                    format!("/api/v1/exports/{}/decision", ex_pending[i]),
                    Some(json!({"decision": "reject", "reason": "not needed"})),
                )
            }),
            expect: [U, 403, 404, 200, 403, 404, U, U],
        },
        Case {
            name: "download export",
            method: "GET",
            requests: same(format!("/api/v1/exports/{ex_approved}/file"), None),
            expect: [U, 200, 404, 200, 200, 404, U, U],
        },
        // Public registry.
        Case {
            name: "registry",
            method: "GET",
            requests: same("/api/v1/registry", None),
            expect: all_ok,
        },
        Case {
            name: "registry entry",
            method: "GET",
            requests: same(format!("/api/v1/registry/{a}"), None),
            expect: all_ok,
        },
        // The audit log: heads, key, proofs and activity public; entries for operators.
        Case {
            name: "audit key",
            method: "GET",
            requests: same("/api/v1/audit/key", None),
            expect: all_ok,
        },
        Case {
            name: "audit heads",
            method: "GET",
            requests: same("/api/v1/audit/heads", None),
            expect: all_ok,
        },
        Case {
            name: "audit latest head",
            method: "GET",
            requests: same("/api/v1/audit/heads/latest", None),
            expect: all_ok,
        },
        Case {
            name: "audit inclusion proof",
            method: "GET",
            requests: same(
                format!("/api/v1/audit/proofs/inclusion?index=0&tree_size={signed}"),
                None,
            ),
            expect: all_ok,
        },
        Case {
            name: "audit consistency proof",
            method: "GET",
            requests: same(
                format!("/api/v1/audit/proofs/consistency?first={signed}&second={signed}"),
                None,
            ),
            expect: all_ok,
        },
        Case {
            name: "audit activity",
            method: "GET",
            requests: same("/api/v1/audit/activity", None),
            expect: all_ok,
        },
        Case {
            name: "audit entries",
            method: "GET",
            requests: same("/api/v1/audit/entries?limit=5", None),
            expect: operator_only,
        },
        // Opt-out.
        Case {
            name: "opt out",
            method: "POST",
            requests: per_role(|i| {
                (
                    "/api/v1/optout".into(),
                    Some(json!({"identifier": format!("1 84 05 75 108 300 {i:02}")})),
                )
            }),
            expect: [201; 8],
        },
        Case {
            name: "opt out on behalf",
            method: "POST",
            requests: per_role(|i| {
                (
                    "/api/v1/optout/on-behalf".into(),
                    Some(
                        json!({"identifier": format!("1 84 05 75 108 400 {i:02}"), "channel": "mail"}),
                    ),
                )
            }),
            expect: operator_only.map(|c| if c == 200 { 201 } else { c }),
        },
        Case {
            name: "opt-out status",
            method: "GET",
            requests: same(format!("/api/v1/optout/{receipt}"), None),
            expect: all_ok,
        },
        Case {
            name: "withdraw opt-out",
            method: "POST",
            requests: per_role(|i| (format!("/api/v1/optout/{}/withdraw", receipts[i]), None)),
            expect: all_ok,
        },
        // Last: it ends the sessions the other rows use.
        Case {
            name: "logout",
            method: "POST",
            requests: same("/api/v1/auth/logout", None),
            expect: [U, 400, 400, 200, 200, 400, U, U],
        },
    ];

    let roles = w.roles();
    let mut mismatches = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for case in &cases {
        seen.insert((case.method, route_of(&case.requests[0].0)));
        for (i, (role, cred)) in roles.iter().enumerate() {
            let (path, body) = &case.requests[i];
            let r = call(s, case.method, path, cred, body.as_ref());
            if r.status != case.expect[i] {
                mismatches.push(format!(
                    "{:<18} as {:<16} expected {} got {}: {}",
                    case.name, role, case.expect[i], r.status, r.text
                ));
            }
            if r.status >= 400 {
                assert!(
                    r.body["error"]["message"].is_string(),
                    "{} as {role}: {}",
                    case.name,
                    r.text
                );
                let mut secrets = named_ids(path);
                if let Some(id) = body.as_ref().and_then(|b| b["identifier"].as_str()) {
                    secrets.push(id.to_owned());
                }
                for secret in secrets {
                    assert!(
                        !r.text.contains(&secret),
                        "{} as {role}: the refusal echoes {secret}: {}",
                        case.name,
                        r.text
                    );
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "allow/deny matrix:\n{}",
        mismatches.join("\n")
    );

    // An approved export's file: CSV, an attachment, its recorded SHA-256.
    {
        use sha2::{Digest, Sha256};
        let Cred::Bearer(token) = &op else {
            unreachable!()
        };
        let record = w.ok("GET", &format!("/api/v1/exports/{ex_approved}"), &op, None);
        let resp = ureq::get(&s.url(&format!("/api/v1/exports/{ex_approved}/file")))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert!(resp.content_type().starts_with("text/csv"));
        assert_eq!(
            resp.header("Content-Disposition"),
            Some(format!("attachment; filename=\"{ex_approved}.csv\"").as_str())
        );
        let sha = record["sha256"].as_str().unwrap().to_owned();
        assert_eq!(resp.header("X-Content-SHA256"), Some(sha.as_str()));
        let text = resp.into_string().unwrap();
        assert_eq!(hex::encode(Sha256::digest(text.as_bytes())), sha);
        assert!(text.starts_with("persons\n"), "{text}");
        let kinds: Vec<&str> = record["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(&kinds[..2], ["requested", "approved"]);
    }

    // Every route of the OpenAPI document is walked above.
    let doc = call(s, "GET", "/api/v1/openapi.json", &Cred::Anonymous, None).body;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            assert!(
                seen.contains(&(method.as_str(), path.clone())),
                "the matrix does not walk {method} {path}"
            );
        }
    }

    // Logged-out sessions are over; so are a deactivated user's session and token.
    for cred in [&w.rev, &w.alice, &w.dave, &w.dave_session, &w.erin] {
        let r = call(s, "GET", "/api/v1/me", cred, None);
        assert_eq!(r.status, 401, "{cred:?}: {}", r.text);
    }
    isolation_between_projects(&w);
    deadlines_and_history(&w);

    // Opted-out identifiers are nowhere in the metadata store (file and write-ahead log).
    for file in ["meta.db", "meta.db-wal"] {
        let bytes = std::fs::read(w.hub.data_dir().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for identifier in ["2 90 01 13 055", "1 84 05 75 108"] {
            assert!(!text.contains(identifier), "{file} holds an identifier");
        }
    }
}

/// The route template a concrete path was made from, e.g. `/api/v1/projects/{id}`.
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        let prev = if i > 0 { segments[i - 1] } else { "" };
        let templated = match prev {
            "users" | "projects" | "permits" | "exports" | "registry" => Some("{id}"),
            "tokens" => Some("{token_id}"),
            "datasets" | "catalogue" => Some("{name}"),
            "releases" => Some("{number}"),
            "optout" if *seg != "on-behalf" => Some("{receipt_id}"),
            _ => None,
        };
        out.push(templated.unwrap_or(seg).to_owned());
    }
    out.join("/")
}

/// A researcher never reads another project's application or permit, and the refusal is
/// the same as for an id that does not exist.
fn isolation_between_projects(w: &World) {
    let s = &w.server;
    let bob = w.bob.clone();
    let alice = Cred::Bearer(
        w.ok("POST", "/api/v1/users/alice/tokens", &w.op, None)["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    for (who, mine, theirs, their_permit) in
        [(&bob, &w.b, &w.a, &w.pa), (&alice, &w.a, &w.b, &w.pb)]
    {
        for (path, missing) in [
            (
                format!("/api/v1/projects/{theirs}"),
                "/api/v1/projects/app_00000000000000000000000000000000".to_owned(),
            ),
            (
                format!("/api/v1/projects/{theirs}/history"),
                "/api/v1/projects/app_00000000000000000000000000000000/history".to_owned(),
            ),
            (
                format!("/api/v1/permits/{their_permit}"),
                "/api/v1/permits/pmt_00000000000000000000000000000000".to_owned(),
            ),
            (
                format!("/api/v1/permits/{their_permit}/versions"),
                "/api/v1/permits/pmt_00000000000000000000000000000000/versions".to_owned(),
            ),
        ] {
            let real = call(s, "GET", &path, who, None);
            let fake = call(s, "GET", &missing, who, None);
            assert_eq!(real.status, 404, "{path}");
            assert_eq!(
                real.text, fake.text,
                "{path}: a refusal must look like a missing id"
            );
        }
        let projects = w.ok("GET", "/api/v1/projects", who, None);
        let ids: Vec<&str> = projects["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&mine.as_str()) && !ids.contains(&theirs.as_str()));
        let permits = w.ok("GET", "/api/v1/permits", who, None);
        assert!(
            permits["permits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["application_id"] != json!(theirs))
        );
        // A permit's schema: exactly the permitted tables and columns for its holder; for
        // anyone else the same refusal as for an id that does not exist.
        let schema = w.ok(
            "GET",
            &format!("/api/v1/permits/{}/schema", mine_permit(w, mine)),
            who,
            None,
        );
        assert_eq!(schema["tables"][0]["name"], "demo.person", "{schema}");
        let columns: Vec<&str> = schema["tables"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["person_id", "year_of_birth"], "{schema}");
        assert_eq!(schema["tables"].as_array().unwrap().len(), 1, "{schema}");
        let real = call(
            s,
            "GET",
            &format!("/api/v1/permits/{their_permit}/schema"),
            who,
            None,
        );
        let fake = call(
            s,
            "GET",
            "/api/v1/permits/pmt_00000000000000000000000000000000/schema",
            who,
            None,
        );
        assert_eq!(real.status, 403, "{}", real.text);
        assert_eq!(
            real.text, fake.text,
            "a refusal must not say which permits exist"
        );
        // SQL through one's own permit is answered under its output policy; through
        // another's, the refusal of a missing id.
        let own = call(
            s,
            "POST",
            &format!("/api/v1/permits/{}/sql", mine_permit(w, mine)),
            who,
            Some(&json!({"sql": "SELECT COUNT(*) AS n FROM demo.person"})),
        );
        assert_eq!(own.status, 200, "{}", own.text);
        assert!(own.text.contains("\"disclosure\""), "{}", own.text);
        let body = json!({"sql": "SELECT 1"});
        let real = call(
            s,
            "POST",
            &format!("/api/v1/permits/{their_permit}/sql"),
            who,
            Some(&body),
        );
        let fake = call(
            s,
            "POST",
            "/api/v1/permits/pmt_00000000000000000000000000000000/sql",
            who,
            Some(&body),
        );
        assert_eq!(real.status, 403, "{}", real.text);
        assert_eq!(
            real.text, fake.text,
            "a refusal must not say which permits exist"
        );
        // The same through the command line, on the data directory with the token.
        if let Cred::Bearer(token) = who {
            let mine_p = mine_permit(w, mine);
            let sql = "SELECT COUNT(*) FROM demo.person";
            let own = w
                .hub
                .run(&["query", "--permit", mine_p, "--token", token, sql]);
            assert!(own.status.success(), "{own:?}");
            let notes = String::from_utf8_lossy(&own.stderr);
            assert!(notes.contains("note: "), "{notes}");
            // The same through a running hub's API.
            let api = s.url("");
            let remote = w.hub.run(&[
                "query", "--api", &api, "--permit", mine_p, "--token", token, "--format", "csv",
                sql,
            ]);
            assert!(remote.status.success(), "{remote:?}");
            assert!(String::from_utf8_lossy(&remote.stdout).starts_with("count("));
            assert!(String::from_utf8_lossy(&remote.stderr).contains("note: "));
            let theirs_remote = w.hub.fails(&[
                "query",
                "--api",
                &api,
                "--permit",
                their_permit,
                "--token",
                token,
                sql,
            ]);
            assert!(
                theirs_remote.contains("no data permit with this id is usable by you now"),
                "{theirs_remote}"
            );
            let theirs_e = w
                .hub
                .fails(&["query", "--permit", their_permit, "--token", token, sql]);
            assert!(
                theirs_e.contains("no data permit with this id is usable by you now"),
                "{theirs_e}"
            );
            assert!(!theirs_e.contains(their_permit.as_str()), "{theirs_e}");
            let bad = w
                .hub
                .fails(&["query", "--permit", mine_p, "--token", "agora_nope", sql]);
            assert!(bad.contains("does not authenticate"), "{bad}");
        }
        // Moves on someone else's project are refused as if it did not exist.
        let r = call(
            s,
            "POST",
            &format!("/api/v1/projects/{theirs}/transitions"),
            who,
            Some(&json!({"to": "closed"})),
        );
        assert_eq!(r.status, 404);
    }
}

/// The permit of one of `w`'s two active projects.
fn mine_permit<'w>(w: &'w World, project: &str) -> &'w str {
    if project == w.a { &w.pa } else { &w.pb }
}

/// Two reviewers approving the same application at once: exactly one wins, one permit.
#[test]
fn concurrent_approvals_over_http_have_one_winner() {
    let w = World::new(&["--public-rate-limit", "0"]);
    for round in 0..4 {
        let id = w.project_in("under_review", &w.alice);
        let path = format!("/api/v1/projects/{id}/approve");
        let barrier = Arc::new(Barrier::new(2));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = [&w.rev, &w.rex]
                .into_iter()
                .map(|cred| {
                    let barrier = barrier.clone();
                    let path = path.clone();
                    let server = &w.server;
                    scope.spawn(move || {
                        barrier.wait();
                        let r = call(server, "POST", &path, cred, Some(&grant()));
                        assert!(
                            r.status == 201 || r.status == 409,
                            "round {round}: {} {}",
                            r.status,
                            r.text
                        );
                        r.status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![201, 409], "round {round}");
        let app = w.ok("GET", &format!("/api/v1/projects/{id}"), &w.op, None);
        assert_eq!(app["state"], "approved");
        let permits = w.ok("GET", "/api/v1/permits", &w.op, None);
        let for_app = permits["permits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["application_id"] == json!(id))
            .count();
        assert_eq!(for_app, 1, "round {round}: exactly one permit");
        let history = w.ok(
            "GET",
            &format!("/api/v1/projects/{id}/history"),
            &w.op,
            None,
        );
        let approvals = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["to"] == "approved")
            .count();
        assert_eq!(approvals, 1);
    }
}

/// Logins: a session token and an HttpOnly cookie; the same refusal for an unknown user
/// and a wrong password; throttling with Retry-After and nothing about the account.
#[test]
fn logins_sessions_and_throttling() {
    let w = World::new(&["--public-rate-limit", "0"]);
    let s = &w.server;
    let anon = Cred::Anonymous;
    let login = |user: &str, password: &str| {
        call(
            s,
            "POST",
            "/api/v1/auth/login",
            &anon,
            Some(&json!({"login": user, "password": password})),
        )
    };
    let good = login("alice", PASSWORD);
    assert_eq!(good.status, 200);
    let cookie = good.set_cookie.unwrap();
    assert!(cookie.starts_with("agora_session=agoras_"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let token = good.body["token"].as_str().unwrap().to_owned();
    // The session authenticates as a cookie and as a bearer token.
    for cred in [Cred::Cookie(token.clone()), Cred::Bearer(token.clone())] {
        let me = call(s, "GET", "/api/v1/me", &cred, None);
        assert_eq!(me.status, 200);
        assert_eq!(me.body["user"]["id"], "alice");
        assert_eq!(me.body["authenticated_by"], "session");
    }
    // A cookie request from another site is refused; from the hub's own origin it works.
    let r = ureq::post(&s.url("/api/v1/auth/logout"))
        .set("Cookie", &format!("agora_session={token}"))
        .set("Origin", "https://evil.example")
        .call()
        .unwrap_err()
        .into_response()
        .unwrap();
    assert_eq!(r.status(), 403);

    let wrong = login("alice", "not the password at all");
    let unknown = login("nobody", "not the password at all");
    let inactive = login("dave", PASSWORD);
    assert_eq!(
        (wrong.status, unknown.status, inactive.status),
        (401, 401, 401)
    );
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, inactive.text);

    // Five failures lock the name: even the right password gets 429, and an unknown name
    // is locked exactly the same way.
    for _ in 0..4 {
        assert_eq!(login("alice", "wrong wrong wrong").status, 401);
    }
    for _ in 0..4 {
        assert_eq!(login("nobody", "wrong wrong wrong").status, 401);
    }
    let locked = login("alice", PASSWORD);
    let locked_unknown = login("nobody", PASSWORD);
    for r in [&locked, &locked_unknown] {
        assert_eq!(r.status, 429, "{}", r.text);
        let secs: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=900).contains(&secs), "{secs}");
        assert_eq!(r.body["error"]["kind"], "too_many_requests");
        assert!(
            !r.text.contains("alice") && !r.text.contains("nobody"),
            "{}",
            r.text
        );
    }
    // The existing session is not affected by the lock.
    assert_eq!(
        call(s, "GET", "/api/v1/me", &Cred::Cookie(token.clone()), None).status,
        200
    );
    // Logout ends it and clears the cookie.
    let out = call(
        s,
        "POST",
        "/api/v1/auth/logout",
        &Cred::Cookie(token.clone()),
        None,
    );
    assert_eq!(out.status, 200);
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    assert_eq!(
        call(s, "GET", "/api/v1/me", &Cred::Cookie(token), None).status,
        401
    );

    // Changing your own password needs the current one.
    let rev_session = Cred::Bearer(
        login("rev", PASSWORD).body["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    let r = call(
        s,
        "PUT",
        "/api/v1/users/rev/password",
        &rev_session,
        Some(&json!({"password": "a brand new passphrase"})),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = call(
        s,
        "PUT",
        "/api/v1/users/rev/password",
        &rev_session,
        Some(&json!({"password": "a brand new passphrase", "current_password": "wrong"})),
    );
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(
        s,
        "PUT",
        "/api/v1/users/rev/password",
        &rev_session,
        Some(&json!({"password": "a brand new passphrase", "current_password": PASSWORD})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(login("rev", "a brand new passphrase").status, 200);
    // An operator's reset ends the user's sessions.
    w.ok(
        "PUT",
        "/api/v1/users/rev/password",
        &w.op,
        Some(json!({"password": "reset by the operator"})),
    );
    assert_eq!(call(s, "GET", "/api/v1/me", &rev_session, None).status, 401);

    // API tokens: shown once, listed by id, revoked at once.
    let issued = w.ok(
        "POST",
        "/api/v1/users/bob/tokens",
        &w.op,
        Some(json!({"roles": ["researcher"]})),
    );
    let t = Cred::Bearer(issued["token"].as_str().unwrap().to_owned());
    assert_eq!(
        call(s, "GET", "/api/v1/me", &t, None).body["authenticated_by"],
        "api_token"
    );
    let listed = w.ok("GET", "/api/v1/users/bob/tokens", &w.bob, None);
    assert!(
        !listed
            .to_string()
            .contains(issued["token"].as_str().unwrap())
    );
    assert!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == issued["id"])
    );
    let r = call(
        s,
        "POST",
        "/api/v1/users/bob/tokens",
        &w.bob,
        Some(&json!({"roles": ["operator"]})),
    );
    assert_eq!(r.status, 403, "a token never carries a role its user lacks");
    w.ok(
        "DELETE",
        &format!(
            "/api/v1/users/bob/tokens/{}",
            issued["id"].as_str().unwrap()
        ),
        &w.bob,
        None,
    );
    assert_eq!(call(s, "GET", "/api/v1/me", &t, None).status, 401);
}

/// The anonymous endpoints are limited per address; the opt-out gives its receipt only to
/// whoever recorded it.
#[test]
fn public_endpoints_are_rate_limited_and_opt_out_receipts_are_capabilities() {
    let hub = Hub::init();
    let server = Server::start_with(&hub, &["--public-rate-limit", "3"]);
    let anon = Cred::Anonymous;
    let nir = "1 84 05 75 108 123 45";
    let first = call(
        &server,
        "POST",
        "/api/v1/optout",
        &anon,
        Some(&json!({"identifier": nir})),
    );
    assert_eq!(first.status, 201, "{}", first.text);
    let receipt = first.body["receipt"]["receipt_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.body["receipt"]["status"], "in_force");
    assert!(!first.text.contains(nir) && !first.text.contains("84 05"));
    // Again: in force, but the receipt (the withdrawal capability) is not handed out.
    let again = call(
        &server,
        "POST",
        "/api/v1/optout",
        &anon,
        Some(&json!({"identifier": nir})),
    );
    assert_eq!(again.status, 200);
    assert_eq!(again.body["receipt"], Value::Null);
    assert!(!again.text.contains(&receipt));
    let status = call(
        &server,
        "GET",
        &format!("/api/v1/optout/{receipt}"),
        &anon,
        None,
    );
    assert_eq!(status.body["status"], "in_force");
    // The fourth request of the minute from this address is refused.
    let limited = call(
        &server,
        "POST",
        &format!("/api/v1/optout/{receipt}/withdraw"),
        &anon,
        None,
    );
    assert_eq!(limited.status, 429, "{}", limited.text);
    let secs: u64 = limited.retry_after.unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs));
    let login = call(
        &server,
        "POST",
        "/api/v1/auth/login",
        &anon,
        Some(&json!({"login": "x", "password": "y"})),
    );
    assert_eq!(login.status, 429);
    // Authenticated endpoints are not counted.
    let op = Cred::Bearer(hub.token().trim().to_owned());
    let on_behalf = call(
        &server,
        "POST",
        "/api/v1/optout/on-behalf",
        &op,
        Some(&json!({"identifier": nir})),
    );
    assert_eq!(on_behalf.status, 200, "{}", on_behalf.text);
    assert_eq!(on_behalf.body["receipt"]["receipt_id"], receipt.as_str());
    // Issue 11, item 13: typed differently, the same person and the same receipt.
    let variant = call(
        &server,
        "POST",
        "/api/v1/optout/on-behalf",
        &op,
        Some(&json!({"identifier": " 1 84 05  75 108 123 45\t", "channel": "mail"})),
    );
    assert_eq!(variant.status, 200, "{}", variant.text);
    assert_eq!(variant.body["recorded"], false);
    assert_eq!(variant.body["receipt"]["receipt_id"], receipt.as_str());
    // Said to be a NIR, its wrong key is refused, without echoing it.
    let wrong_key = call(
        &server,
        "POST",
        "/api/v1/optout/on-behalf",
        &op,
        Some(&json!({"identifier": nir, "kind": "nir"})),
    );
    assert_eq!(wrong_key.status, 400, "{}", wrong_key.text);
    assert!(
        wrong_key.text.contains("not a valid NIR"),
        "{}",
        wrong_key.text
    );
    assert!(!wrong_key.text.contains("108 123") && !wrong_key.text.contains("45\""));
    // Bad input: a clear message that does not echo the value.
    let bad = call(
        &server,
        "POST",
        "/api/v1/optout/on-behalf",
        &op,
        Some(&json!({"identifier": 184057510812345_u64})),
    );
    assert_eq!(bad.status, 400);
    assert!(!bad.text.contains("184057510812345"), "{}", bad.text);
    assert!(
        bad.text
            .contains("invalid type: integer, expected a string"),
        "{}",
        bad.text
    );
}

/// `agora serve` records expired projects by itself (access ended at the expiry already).
#[test]
fn the_server_records_expired_projects() {
    let w = World::new(&["--public-rate-limit", "0", "--maintenance-interval-s", "1"]);
    let id = w.project_in("under_review", &w.alice);
    let soon = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
    let mut terms = grant();
    terms["expires_at"] = json!(soon.to_rfc3339());
    w.ok(
        "POST",
        &format!("/api/v1/projects/{id}/approve"),
        &w.rev,
        Some(terms),
    );
    w.move_to(&format!("/api/v1/projects/{id}"), &w.op, "active");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let app = w.ok("GET", &format!("/api/v1/projects/{id}"), &w.alice, None);
        if app["state"] == "expired" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            app["state"]
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let history = w.ok(
        "GET",
        &format!("/api/v1/projects/{id}/history"),
        &w.op,
        None,
    );
    let last = history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["to"].as_str(), last["actor"].as_str()),
        (Some("expired"), Some("system"))
    );
    let entry = w.ok(
        "GET",
        &format!("/api/v1/registry/{id}"),
        &Cred::Anonymous,
        None,
    );
    assert_eq!(entry["status"], "expired");
    let permit = w.ok("GET", &format!("/api/v1/projects/{id}"), &w.op, None)["permit_id"].clone();
    let permit = w.ok(
        "GET",
        &format!("/api/v1/permits/{}", permit.as_str().unwrap()),
        &w.alice,
        None,
    );
    assert_eq!(permit["status"], "expired");
}

/// Applicants and reviewers see each review step with its due date, and who did what when.
fn deadlines_and_history(w: &World) {
    let id = w.project_in("submitted", &w.bob);
    let app = w.ok("GET", &format!("/api/v1/projects/{id}"), &w.bob, None);
    assert_eq!(app["deadlines"][0]["step"], "completeness_check");
    assert_eq!(app["next_deadline"]["step"], "completeness_check");
    assert_eq!(app["next_deadline"]["overdue"], false);
    assert!(
        app["next_deadline"]["due_at"].as_str().unwrap() > app["submitted_at"].as_str().unwrap()
    );
    assert_eq!(app["allowed_transitions"], json!(["draft", "closed"]));
    let for_reviewer = w.ok("GET", &format!("/api/v1/projects/{id}"), &w.rex, None);
    assert_eq!(
        for_reviewer["allowed_transitions"],
        json!(["under_review", "changes_requested"])
    );
    let queue = w.ok("GET", "/api/v1/review-queue", &w.rex, None);
    assert!(
        queue["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == json!(id))
    );
    w.move_to(
        &format!("/api/v1/projects/{id}"),
        &w.rex,
        "changes_requested",
    );

    let history = w.ok(
        "GET",
        &format!("/api/v1/projects/{}/history", w.b),
        &w.bob,
        None,
    );
    let steps: Vec<(String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected = [
        ("bob", "draft"),
        ("bob", "submitted"),
        ("rev", "under_review"),
        ("rev", "approved"),
        ("local-operator", "active"),
    ];
    assert_eq!(
        steps,
        expected.map(|(a, t)| (a.to_owned(), t.to_owned())).to_vec()
    );
    let bad = call(
        &w.server,
        "GET",
        "/api/v1/projects?state=finished",
        &w.bob,
        None,
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("the only parameter is `state`"),
        "{}",
        bad.text
    );
}

/// Issue 11, item 14: over HTTP, an expiry beyond the hub maximum or (without a reason) the
/// requested duration is a 400 that says the limit and how to go beyond it.
#[test]
fn regression_issue_11_14_permit_expiry_is_bounded_over_http() {
    let w = World::new(&["--public-rate-limit", "0"]);
    let id = w.project_in("under_review", &w.alice);
    let approve = |terms: Value| {
        call(
            &w.server,
            "POST",
            &format!("/api/v1/projects/{id}/approve"),
            &w.rev,
            Some(&terms),
        )
    };
    let mut terms = grant();
    terms["expires_at"] = json!("2099-01-01T00:00:00Z");
    let refused = approve(terms);
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.body["error"]["kind"], "invalid_input",
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("hub maximum of 60 months"),
        "{}",
        refused.text
    );
    let beyond = (chrono::Utc::now() + chrono::Months::new(18)).to_rfc3339();
    let mut terms = grant();
    terms["expires_at"] = json!(beyond);
    let refused = approve(terms.clone());
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("expiry_beyond_request_reason"),
        "{}",
        refused.text
    );
    terms["expiry_beyond_request_reason"] = json!("follow-up until the cohort's last visit");
    let permit = approve(terms);
    assert_eq!(permit.status, 201, "{}", permit.text);
    assert_eq!(
        permit.body["expiry_beyond_request_reason"],
        "follow-up until the cohort's last visit"
    );
}
