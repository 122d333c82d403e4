//! Arrow Flight SQL through the real Python ADBC driver (`adbc_driver_flightsql`): a
//! researcher's permit queried from pandas/pyarrow, with the output policy, the metadata
//! calls, prepared statements, refusals, and a revocation taking effect on an open
//! connection. Needs `AGORA_TEST_PYTHON` (set by `ci/clients.sh`); skipped otherwise.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Hub, Server, researcher_permit};

/// The client: runs each step on stdin's instructions and prints one JSON line per step.
const CLIENT: &str = r#"
import json, os, sys
import adbc_driver_flightsql.dbapi as flight_sql

URI, PERMIT = os.environ["URI"], os.environ["PERMIT"]

def connect(token=None, permit=PERMIT, login=None):
    kwargs = {"adbc.flight.sql.rpc.call_header.x-agora-permit": permit}
    if token is not None:
        kwargs["adbc.flight.sql.authorization_header"] = "Bearer " + token
    if login is not None:
        kwargs["username"], kwargs["password"] = login
    return flight_sql.connect(URI, db_kwargs=kwargs)

def attempt(fn):
    try:
        return {"ok": fn()}
    except Exception as e:  # the driver's error, as a researcher sees it
        return {"error": type(e).__name__, "message": str(e)}

def rows(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        table = cur.fetch_arrow_table()
        return {"types": [str(f.type) for f in table.schema], "rows": table.to_pylist()}

conn = connect(os.environ["TOKEN"])
out = {}
out["genders"] = attempt(lambda: rows(conn,
    "SELECT gender_concept_id, COUNT(*) AS persons FROM person GROUP BY 1 ORDER BY 1"))
def pandas_frame():
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM demo.person")
        return cur.fetch_df().to_dict("records")
out["pandas"] = attempt(pandas_frame)
out["param"] = attempt(lambda: rows(conn,
    "SELECT COUNT(*) AS n FROM person WHERE year_of_birth >= $1", (1900,)))
out["param_text"] = attempt(lambda: rows(conn,
    "SELECT COUNT(*) AS n FROM person WHERE CAST(gender_concept_id AS VARCHAR) <> ?", ("x'; DROP TABLE person; --",)))
def objects():
    return conn.adbc_get_objects(depth="all").read_all().to_pylist()
out["objects"] = attempt(objects)
out["person_schema"] = attempt(lambda: [f.name for f in conn.adbc_get_table_schema("person", db_schema_filter="demo")])
out["hidden_schema"] = attempt(lambda: [f.name for f in conn.adbc_get_table_schema("observation", db_schema_filter="demo")])
out["per_person"] = attempt(lambda: rows(conn, "SELECT person_id, year_of_birth FROM person"))
out["hidden_column"] = attempt(lambda: rows(conn, "SELECT COUNT(*) FROM person WHERE race_concept_id = 0"))
out["ddl"] = attempt(lambda: rows(conn, "CREATE TABLE copy AS SELECT * FROM person"))
out["file"] = attempt(lambda: rows(conn, "SELECT COUNT(*) FROM '/etc/passwd'"))
out["bad_token"] = attempt(lambda: rows(connect("agora_not-a-token"), "SELECT 1"))
out["no_token"] = attempt(lambda: rows(connect(None), "SELECT 1"))
out["other_user"] = attempt(lambda: rows(connect(os.environ["OTHER"]), "SELECT COUNT(*) FROM person"))
out["unknown_permit"] = attempt(lambda: rows(connect(os.environ["TOKEN"], permit="pmt_doesnotexist"), "SELECT COUNT(*) FROM person"))
out["login"] = attempt(lambda: rows(connect(login=(os.environ["LOGIN"], os.environ["PASSWORD"])),
    "SELECT COUNT(*) AS n FROM person"))
out["bad_login"] = attempt(lambda: rows(connect(login=(os.environ["LOGIN"], "wrong password!")), "SELECT 1"))
print(json.dumps(out, default=str), flush=True)
sys.stdin.readline()  # the test revokes the permit meanwhile
out = {"after_revocation": attempt(lambda: rows(conn, "SELECT COUNT(*) AS n FROM person"))}
print(json.dumps(out, default=str), flush=True)
"#;

fn python() -> Option<String> {
    let python = std::env::var("AGORA_TEST_PYTHON").ok();
    if python.is_none() {
        eprintln!(
            "skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh installs ADBC and sets it)"
        );
    }
    python
}

fn error_of(v: &Value) -> String {
    assert!(v.get("ok").is_none(), "expected a refusal, got {v}");
    v["message"].as_str().unwrap().to_owned()
}

#[test]
fn a_researcher_queries_the_permit_with_adbc() {
    let Some(python) = python() else { return };
    let hub = Hub::init();
    let extract = hub.data_dir().join("samples/extract");
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "120",
        "--out",
        extract.to_str().unwrap(),
    ]);
    hub.ingest("demo", &extract);
    let grant = json!({"datasets": [{"dataset": "demo", "release": {"number": 1}, "tables": [
        {"table": "person", "columns": ["person_id", "gender_concept_id", "year_of_birth"]},
        {"table": "condition_occurrence", "columns": ["person_id", "condition_concept_id"]}]}]});
    let permit = researcher_permit(&hub, "ray", &grant);
    let other = hub.ok(&[
        "user",
        "create",
        "ann",
        "--name",
        "Ann",
        "--role",
        "researcher",
    ]);
    drop(other);
    let other_token = hub.ok(&["user", "token", "issue", "ann"]).trim().to_owned();
    let password = "correct horse battery staple";
    hub.set_password("ray", password);

    let server = Server::start_with(&hub, &["--flight-listen", "127.0.0.1:0"]);
    let mut client = Command::new(python)
        .args(["-c", CLIENT])
        .env("URI", format!("grpc://{}", server.flight_addr()))
        .env("TOKEN", &permit.token)
        .env("PERMIT", &permit.id)
        .env("OTHER", &other_token)
        .env("LOGIN", "ray")
        .env("PASSWORD", password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let out: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));

    // Aggregates come back as Arrow, typed, exactly as the operator counts them (every
    // group of 120 persons by gender is far above the snds threshold of 10).
    let operator = hub.sql_tsv(
        "demo",
        "SELECT gender_concept_id, COUNT(*) FROM person GROUP BY 1 ORDER BY 1",
    );
    let genders = &out["genders"]["ok"];
    assert_eq!(genders["types"], json!(["int64", "int64"]), "{out}");
    let got: Vec<String> = genders["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}\t{}", r["gender_concept_id"], r["persons"]))
        .collect();
    let want: Vec<&str> = operator.lines().skip(1).collect();
    assert_eq!(got, want);
    assert_eq!(out["pandas"]["ok"], json!([{"n": 120}]), "{out}");
    assert_eq!(out["param"]["ok"]["rows"], json!([{"n": 120}]), "{out}");
    assert_eq!(
        out["param_text"]["ok"]["rows"],
        json!([{"n": 120}]),
        "{out}"
    );

    // The metadata calls describe exactly the permit: two tables, their permitted columns.
    let objects = out["objects"]["ok"].to_string();
    assert!(objects.contains("\"condition_occurrence\""), "{objects}");
    assert!(objects.contains("\"year_of_birth\""), "{objects}");
    for hidden in [
        "observation",
        "race_concept_id",
        "drug_exposure",
        "birth_datetime",
    ] {
        assert!(!objects.contains(hidden), "{hidden} listed: {objects}");
    }
    assert_eq!(
        out["person_schema"]["ok"],
        json!(["person_id", "gender_concept_id", "year_of_birth"])
    );
    assert!(out["hidden_schema"].get("ok").is_none(), "{out}");

    // Refusals say why, and what to do.
    let refused = error_of(&out["per_person"]);
    assert!(refused.contains("output policy"), "{refused}");
    assert!(error_of(&out["hidden_column"]).contains("race_concept_id"));
    error_of(&out["ddl"]);
    error_of(&out["file"]);
    assert!(error_of(&out["bad_token"]).contains("authentication required"));
    assert!(error_of(&out["no_token"]).contains("authorization"));
    // A permit held by someone else and one that does not exist: the same answer.
    let other = error_of(&out["other_user"]);
    let unknown = error_of(&out["unknown_permit"]);
    assert!(
        other.contains("no data permit with this id is usable by you now"),
        "{other}"
    );
    assert_eq!(
        other.replace(&permit.id, "ID"),
        unknown.replace("pmt_doesnotexist", "ID")
    );
    // Handshake with a local account's password.
    assert_eq!(out["login"]["ok"]["rows"], json!([{"n": 120}]), "{out}");
    error_of(&out["bad_login"]);

    // A revocation recorded while the connection is open applies to its next statement.
    hub.ok(&["permit", "revoke", &permit.id, "--reason", "end of study"]);
    writeln!(client.stdin.as_mut().unwrap()).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let after: Value = serde_json::from_str(&line).unwrap();
    assert!(
        error_of(&after["after_revocation"]).contains("no data permit"),
        "{after}"
    );
    assert!(client.wait().unwrap().success());

    // Every statement was recorded, with the front it came through; nothing leaked in logs.
    let (clean, log) = server.stop();
    assert!(clean, "{log}");
    for secret in [permit.token.as_str(), other_token.as_str(), password] {
        assert!(!log.contains(secret), "a credential in the log");
    }
    let events = hub.access_events();
    let flight: Vec<&(String, String)> = events
        .iter()
        .filter(|(front, _)| front == "flight_sql")
        .collect();
    assert!(flight.iter().any(|(_, outcome)| outcome == "answered"));
    assert!(flight.iter().any(|(_, outcome)| outcome == "refused"));
}
