use serde_json::{Value, json};

use crate::support::{Hub, Server, shared};

fn get(url: &str) -> (u16, Value) {
    match ureq::get(url).call() {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

fn post_sql(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = ureq::post(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.send_json(body) {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn http_api_lists_datasets_and_serves_operator_sql() {
    let hub = Hub::init();
    hub.ingest("synthea", &shared("data/omop/synthea27nj_csv"));
    let server = Server::start(&hub);
    let token = hub.token();

    let (status, health) = get(&server.url("/health"));
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let (status, body) = get(&server.url("/api/v1/datasets"));
    assert_eq!(status, 200);
    assert_eq!(body["datasets"][0]["name"], "synthea");
    assert_eq!(body["datasets"][0]["latest_release"], 1);

    let (status, body) = get(&server.url("/api/v1/datasets/synthea/releases"));
    assert_eq!(status, 200);
    assert_eq!(body["releases"][0]["rows"], 294203);

    let (status, body) = get(&server.url("/api/v1/datasets/synthea/releases/1"));
    assert_eq!(status, 200);
    let person = body["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "person")
        .unwrap();
    assert_eq!(person["rows"], 28);
    let dropped = body["pseudonymization"]["dropped_columns"]
        .as_array()
        .unwrap();
    assert!(
        dropped.contains(&json!("person.person_source_value")),
        "{dropped:?}"
    );

    assert_eq!(get(&server.url("/api/v1/datasets/nope/releases")).0, 404);
    assert_eq!(
        get(&server.url("/api/v1/datasets/synthea/releases/9")).0,
        404
    );
    assert_eq!(
        get(&server.url("/api/v1/datasets/Bad-Name/releases")).0,
        400
    );

    let sql = server.url("/api/v1/sql");
    let query = json!({"dataset": "synthea", "sql": "SELECT COUNT(*) AS n FROM person"});
    let (status, body) = post_sql(&sql, None, query.clone());
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = post_sql(&sql, Some("agora_not-a-token"), query.clone());
    assert_eq!(status, 401);

    let (status, body) = post_sql(&sql, Some(&token), query);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"], json!([{"n": 28}]));
    assert_eq!(body["columns"][0]["name"], "n");

    // An Arrow IPC stream, for programs: the schema, then the batches.
    let arrow = ureq::post(&sql)
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(
            json!({"dataset": "synthea", "sql": "SELECT person_id FROM person", "format": "arrow"}),
        )
        .unwrap();
    assert_eq!(arrow.content_type(), "application/vnd.apache.arrow.stream");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut arrow.into_reader(), &mut bytes).unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    assert_eq!(reader.schema().field(0).name(), "person_id");
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 28);

    let (status, body) = post_sql(
        &sql,
        Some(&token),
        json!({"dataset": "synthea", "sql": "DROP TABLE person"}),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{body}"
    );

    let (status, body) = post_sql(
        &sql,
        Some(&token),
        json!({"dataset": "synthea", "sql": "SELECT * FROM person_x"}),
    );
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (400, Some("invalid_input"))
    );

    let (status, _) = post_sql(
        &sql,
        Some(&token),
        json!({"dataset": "absent", "sql": "SELECT 1"}),
    );
    assert_eq!(status, 404);
    let (status, _) = post_sql(&sql, Some(&token), json!({"sql": "SELECT 1"}));
    assert_eq!(status, 400);

    // Result-size bound: more rows than allowed is refused, not truncated silently.
    let huge = json!({"dataset": "synthea", "sql": "SELECT * FROM concept_relationship a, concept_relationship b LIMIT 2000000"});
    let (status, body) = post_sql(&sql, Some(&token), huge);
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (422, Some("resource_exhausted")),
        "{body}"
    );

    // The quality profile is for operators.
    let quality = server.url("/api/v1/datasets/synthea/releases/1/quality");
    assert_eq!(
        ureq::get(&quality)
            .call()
            .unwrap_err()
            .into_response()
            .unwrap()
            .status(),
        401
    );
    let body: Value = ureq::get(&quality)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(body["release"], 1);
    assert!(
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true)
    );

    // The public catalogue: no login; counts from the profile computed above.
    let (status, body) = get(&server.url("/api/v1/catalogue"));
    assert_eq!(status, 200, "{body}");
    let entry = &body["datasets"][0];
    assert_eq!(entry["dataset"], "synthea");
    assert_eq!(entry["latest_release"]["persons"], 28);
    assert_eq!(entry["latest_release"]["records"], 294203);
    assert_eq!(entry["latest_release"]["quality"]["status"], "profiled");
    assert_eq!(
        get(&server.url("/api/v1/catalogue/synthea")).1["dataset"],
        "synthea"
    );
    assert_eq!(get(&server.url("/api/v1/catalogue/unknown")).0, 404);

    let describe = server.url("/api/v1/catalogue/synthea/metadata");
    let metadata = json!({"title": "Synthea New Jersey", "legal_basis": "Open data",
                          "coding_systems": ["SNOMED CT", "LOINC"]});
    let refused = ureq::put(&describe)
        .send_json(metadata.clone())
        .unwrap_err();
    assert_eq!(refused.into_response().unwrap().status(), 401);
    ureq::put(&describe)
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(metadata)
        .unwrap();
    let jsonld = ureq::get(&server.url("/api/v1/catalogue.jsonld"))
        .call()
        .unwrap();
    assert_eq!(jsonld.content_type(), "application/ld+json");
    let doc: Value = jsonld.into_json().unwrap();
    let d = &doc["dcat:dataset"][0];
    assert_eq!(d["dct:title"], "Synthea New Jersey");
    assert_eq!(d["healthdcatap:numberOfUniqueIndividuals"]["@value"], "28");
    assert!(d["@id"].as_str().unwrap().starts_with(&server.url("/")));

    let (clean, log) = server.stop();
    assert!(clean, "graceful shutdown on SIGTERM exits 0:\n{log}");
    assert!(log.contains("Agora stopped"), "{log}");
}

/// The CLI and the HTTP API reach data through the query service, which records every
/// answer and refusal in the metadata store before answering.
#[test]
fn every_front_records_its_queries_as_access_events() {
    let hub = Hub::init();
    hub.ingest("synthea", &shared("data/omop/synthea27nj_csv"));
    hub.ok(&[
        "sql",
        "--dataset",
        "synthea",
        "SELECT COUNT(*) AS n FROM person",
    ]);

    let server = Server::start(&hub);
    let token = hub.token();
    let sql = server.url("/api/v1/sql");
    let (status, _) = post_sql(
        &sql,
        Some(&token),
        json!({"dataset": "synthea", "sql": "SELECT COUNT(*) AS n FROM death"}),
    );
    assert_eq!(status, 200);
    let (status, _) = post_sql(
        &sql,
        Some(&token),
        json!({"dataset": "synthea", "sql": "DROP TABLE person"}),
    );
    assert_eq!(status, 400);
    server.stop();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events = runtime.block_on(async {
        let store = agora_govern::MetaStore::open_sqlite(&hub.data_dir().join("meta.db"))
            .await
            .unwrap();
        store.recent_access_events(100).await.unwrap()
    });
    // The server also profiles the release in the background (front `profiler`).
    let mut fronts: Vec<_> = events
        .iter()
        .filter(|e| e.front != "profiler")
        .map(|e| {
            (
                e.front.as_str(),
                e.statement.as_str(),
                format!("{:?}", e.outcome),
                e.error_kind.clone(),
            )
        })
        .collect();
    fronts.sort();
    assert_eq!(
        fronts,
        [
            (
                "cli",
                "SELECT COUNT(*) AS n FROM person",
                "Answered".into(),
                None
            ),
            (
                "http",
                "DROP TABLE person",
                "Refused".into(),
                Some("invalid_input".into())
            ),
            (
                "http",
                "SELECT COUNT(*) AS n FROM death",
                "Answered".into(),
                None
            ),
        ]
    );
    let cli = events.iter().find(|e| e.front == "cli").unwrap();
    assert!(cli.actor.starts_with("local:"), "{}", cli.actor);
    let http = events.iter().find(|e| e.front == "http").unwrap();
    assert_eq!(http.actor, "local-operator");
    // The server's start and stop are in the log too.
    let ops = hub.ok(&["audit", "log", "--category", "operations", "--json"]);
    let ops: Vec<String> = serde_json::from_str::<Value>(&ops)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops[..2], ["server.stopped", "server.started"], "{ops:?}");
    assert!(
        events
            .iter()
            .filter(|e| e.front == "profiler")
            .all(|e| e.actor == "system")
    );
}
