//! The PostgreSQL wire protocol front (`agora serve --pg-listen`), driven by the real
//! clients researchers use: `psql`, Python's psycopg 3 and the pgjdbc JDBC driver. psql
//! tests need `psql` on the PATH; psycopg tests need `AGORA_TEST_PYTHON` (`ci/clients.sh`
//! prints it); the JDBC test needs `java` and pgjdbc's jar (`AGORA_TEST_JDBC_JAR`, else
//! Debian's, which `ci/clients.sh` installs). Each skips, saying so, when its client is
//! missing.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::{Hub, Permit, Server, researcher_permit};

/// A hub with a sample release, a researcher (`ray`) holding an active permit on
/// `person` (three columns) and `condition_occurrence`, and a server with the PostgreSQL
/// listener on.
struct World {
    hub: Hub,
    server: Server,
    /// The permit id: the database to connect to.
    permit: String,
    /// Ray's API token: the password.
    token: String,
}

fn cli_as(hub: &Hub, token: Option<&str>, args: &[&str]) -> String {
    let mut cmd = hub.command(args);
    cmd.env_remove("AGORA_TOKEN");
    if let Some(t) = token {
        cmd.env("AGORA_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "agora {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_as(hub: &Hub, token: Option<&str>, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&cli_as(hub, token, &args)).unwrap()
}

const RAY_PASSWORD: &str = "a long enough password\n";

fn world() -> World {
    world_granting(|_| {
        json!([
            {"table": "person", "columns": ["person_id", "gender_concept_id", "year_of_birth"]},
            {"table": "condition_occurrence", "columns": ["person_id", "condition_concept_id", "condition_start_date"]}
        ])
    })
}

/// A world whose permit grants the tables `tables` lists (given the hub, after ingest).
fn world_granting(tables: impl FnOnce(&Hub) -> Value) -> World {
    world_with(tables, json!({"profile": "snds"}))
}

/// As [`world_granting`], under the output policy `output`.
fn world_with(tables: impl FnOnce(&Hub) -> Value, output: Value) -> World {
    world_serving(tables, output, &[])
}

/// As [`world_with`], the server started with `extra` arguments too.
fn world_serving(tables: impl FnOnce(&Hub) -> Value, output: Value, extra: &[&str]) -> World {
    let hub = Hub::init();
    let extract = hub.data_dir().join("samples/extract");
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        "300",
        "--out",
        extract.to_str().unwrap(),
    ]);
    hub.ingest("demo", &extract);
    let grant = json!({"datasets": [{"dataset": "demo", "release": "latest_at_activation",
        "tables": tables(&hub)}], "output": output});
    let Permit { id: permit, token } = researcher_permit(&hub, "ray", &grant);
    // Ray has a local password too (a PostgreSQL password may be it).
    hub.set_password("ray", RAY_PASSWORD.trim_end());
    let mut args = vec![
        "--pg-listen",
        "127.0.0.1:0",
        "--pg-max-connections-per-user",
        "3",
    ];
    args.extend_from_slice(extra);
    let server = Server::start_with(&hub, &args);
    World {
        hub,
        server,
        permit,
        token,
    }
}

fn have_psql() -> bool {
    let found = Command::new("psql").arg("--version").output().is_ok();
    if !found {
        eprintln!("skipped: psql is not on the PATH (ci/postgres.sh installs it)");
    }
    found
}

/// Runs `psql` on `database` with `password`, unaligned, verbose errors (SQLSTATE shown).
fn psql(w: &World, database: &str, password: &str, args: &[&str]) -> Output {
    Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} dbname={database} user=ray sslmode=disable connect_timeout=10",
            w.server.pg_port()
        ))
        .args(["-X", "-A", "-v", "VERBOSITY=verbose"])
        .args(args)
        .env("PGPASSWORD", password)
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .output()
        .unwrap()
}

fn psql_ok(w: &World, args: &[&str]) -> String {
    let out = psql(w, &w.permit, &w.token, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

fn psql_err(w: &World, database: &str, password: &str, args: &[&str]) -> String {
    let out = psql(w, database, password, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() || stderr.contains("ERROR"),
        "psql {args:?} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

#[test]
fn pg_psql_queries_a_permit_and_sees_only_its_tables() {
    if !have_psql() {
        return;
    }
    let w = world();

    // An aggregate, answered with disclosure control applied (counts of at least k = 10).
    let out = psql_ok(
        &w,
        &[
            "-c",
            "SELECT gender_concept_id, COUNT(*) AS persons FROM person GROUP BY 1 ORDER BY 1",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("gender_concept_id|persons"), "{out}");
    let rows: Vec<&str> = lines.take_while(|l| !l.starts_with('(')).collect();
    assert!(!rows.is_empty(), "{out}");
    for row in &rows {
        let n: i64 = row.split('|').nth(1).unwrap().parse().unwrap();
        assert!(n >= 10, "a released count below k: {out}");
    }

    // \dt and \d: the permitted tables and columns only.
    let dt = psql_ok(&w, &["-c", "\\dt"]);
    assert!(dt.contains("demo|condition_occurrence|table"), "{dt}");
    assert!(dt.contains("demo|person|table"), "{dt}");
    assert!(
        !dt.contains("visit_occurrence") && !dt.contains("concept|"),
        "{dt}"
    );
    let d = psql_ok(&w, &["-c", "\\d person"]);
    for column in ["person_id|bigint", "gender_concept_id|", "year_of_birth|"] {
        assert!(d.contains(column), "{column} missing: {d}");
    }
    assert!(
        !d.contains("month_of_birth") && !d.contains("race_concept_id"),
        "a column outside the permit: {d}"
    );
    // A table outside the permit does not exist for psql.
    let out = psql(&w, &w.permit, &w.token, &["-c", "\\d visit_occurrence"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Did not find any relation named"),
        "{stderr}"
    );
    let l = psql_ok(&w, &["-c", "\\l"]);
    assert!(l.contains(&w.permit), "{l}");
    let dn = psql_ok(&w, &["-c", "\\dn"]);
    assert!(dn.contains("demo|"), "{dn}");

    // What clients send around queries is answered harmlessly.
    let out = psql_ok(
        &w,
        &[
            "-c",
            "SET extra_float_digits = 3; SET application_name = 'x'; BEGIN; SHOW transaction_isolation; \
             SELECT current_database(); COMMIT; ROLLBACK",
        ],
    );
    assert!(
        out.contains("read committed") && out.contains(&w.permit),
        "{out}"
    );
    let version = psql_ok(&w, &["-t", "-c", "SELECT version()"]);
    assert!(version.starts_with("PostgreSQL 16"), "{version}");

    // A per-person query: refused with 42501 and why.
    let err = psql_err(
        &w,
        &w.permit,
        &w.token,
        &["-c", "SELECT person_id, year_of_birth FROM person"],
    );
    assert!(err.contains("ERROR:  42501"), "{err}");
    // A syntax error.
    let err = psql_err(&w, &w.permit, &w.token, &["-c", "SELEC 1"]);
    assert!(err.contains("ERROR:  42601"), "{err}");
    // PostgreSQL's own codes for a missing table or column, and for a write in a
    // read-only session (what drivers and BI tools branch on).
    for (statement, code) in [
        ("SELECT COUNT(*) FROM nowhere", "42P01"),
        ("SELECT COUNT(*) FROM drug_exposure", "42P01"),
        ("SELECT COUNT(nope) FROM person", "42703"),
        ("SELECT COUNT(month_of_birth) FROM person", "42703"),
        ("DROP TABLE person", "25006"),
        ("CREATE TABLE t (x INT)", "25006"),
    ] {
        let err = psql_err(&w, &w.permit, &w.token, &["-c", statement]);
        assert!(
            err.contains(&format!("ERROR:  {code}")),
            "{statement}: {err}"
        );
    }
    // DDL, DML, COPY and SET of anything else: refused by the service.
    for statement in [
        "CREATE TABLE t (x INT)",
        "DROP TABLE person",
        "INSERT INTO person (person_id) VALUES (1)",
        "COPY person TO STDOUT",
        "SET work_mem = '1GB'",
    ] {
        let err = psql_err(&w, &w.permit, &w.token, &["-c", statement]);
        assert!(err.contains("ERROR:  "), "{statement}: {err}");
        assert!(
            !err.contains("ERROR:  XX000") && !err.contains("ERROR:  08P01"),
            "{statement}: {err}"
        );
    }
    let err = psql_err(
        &w,
        &w.permit,
        &w.token,
        &["-c", "SET TIME ZONE 'Europe/Paris'"],
    );
    assert!(err.contains("ERROR:  22023"), "{err}");

    // A local account's password works as well as a token.
    let out = psql(
        &w,
        &w.permit,
        RAY_PASSWORD.trim(),
        &["-t", "-c", "SELECT COUNT(*) FROM person"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong token or password (28P01; psql shows no SQLSTATE for a refused connection).
    // An unknown permit: the service's one answer for any permit the user cannot use.
    let err = psql_err(&w, &w.permit, "agora_wrong", &["-c", "SELECT 1"]);
    assert!(
        err.contains("FATAL:  password authentication failed"),
        "{err}"
    );
    let err = psql_err(&w, &w.permit, "not the password", &["-c", "SELECT 1"]);
    assert!(
        err.contains("FATAL:  password authentication failed"),
        "{err}"
    );
    let unknown = psql_err(&w, "pmt_does_not_exist", &w.token, &["-c", "SELECT 1"]);
    assert!(
        unknown.contains("FATAL:  no data permit with this id is usable by you now"),
        "{unknown}"
    );
    assert!(!unknown.contains("pmt_does_not_exist"), "{unknown}");

    // Every statement that reached the service is an access event of the postgres front.
    let (clean, _) = w.server.stop();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events = runtime.block_on(async {
        let store = agora_govern::MetaStore::open_sqlite(&w.hub.data_dir().join("meta.db"))
            .await
            .unwrap();
        store.recent_access_events(200).await.unwrap()
    });
    let postgres = events.iter().filter(|e| e.front == "postgres").count();
    assert!(
        postgres >= 5,
        "{postgres} access events from the PostgreSQL front"
    );
    assert!(
        events
            .iter()
            .filter(|e| e.front == "postgres")
            .all(|e| !e.statement.contains("pg_catalog")),
        "catalogue queries are answered by the front, never run"
    );
    assert!(
        clean,
        "the server stops on SIGTERM with the PostgreSQL listener"
    );
}

/// Runs a psycopg script with `AGORA_PG_DSN` set; `None` when no interpreter is configured.
fn python(w: &World, dsn: &str, script: &str) -> Option<Output> {
    let Some(python) = std::env::var("AGORA_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
    else {
        eprintln!("skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh prints it)");
        return None;
    };
    let _ = w;
    Some(
        Command::new(python.trim())
            .arg("-c")
            .arg(script)
            .env("AGORA_PG_DSN", dsn)
            .output()
            .unwrap(),
    )
}

fn dsn(w: &World, password: &str) -> String {
    format!(
        "host=127.0.0.1 port={} dbname={} user=ray password={password} sslmode=disable",
        w.server.pg_port(),
        w.permit
    )
}

fn python_ok(w: &World, dsn: &str, script: &str) -> Option<String> {
    let out = python(w, dsn, script)?;
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

const PSYCOPG_SESSION: &str = r#"
import os, psycopg
conn = psycopg.connect(os.environ["AGORA_PG_DSN"])
def sqlstate(sql, params=None):
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            cur.fetchall()
        return "ok"
    except psycopg.Error as e:
        conn.rollback()
        return f"{e.sqlstate} {e.diag.message_primary}"
with conn.cursor() as cur:
    # Server-side binding: the extended protocol, the values sent apart from the text.
    cur.execute(
        "SELECT gender_concept_id, COUNT(*) AS n FROM person WHERE year_of_birth >= %s GROUP BY 1 ORDER BY 1",
        (1900,),
    )
    rows = cur.fetchall()
    assert rows and all(isinstance(g, int) and n >= 10 for g, n in rows), rows
    print("types", [d.type_code for d in cur.description])
    cur.execute("SELECT COUNT(*) AS n FROM person WHERE gender_concept_id = %s AND year_of_birth > %s", (8507, 1800))
    print("count", cur.fetchone()[0] >= 0)
    cur.execute("SELECT current_schema(), version()")
    print("schema", cur.fetchone()[0])
    cur.execute("SELECT table_name FROM information_schema.tables ORDER BY 1")
    print("tables", [r[0] for r in cur.fetchall()])
conn.commit()
print("per_person", sqlstate("SELECT person_id FROM person WHERE year_of_birth = %s", (1950,)))
print("syntax", sqlstate("SELEC %s", (1,)))
print("ddl", sqlstate("CREATE TABLE x (a int)"))
with psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True) as c2:
    with c2.cursor(binary=True) as cur:
        cur.execute(
            "SELECT gender_concept_id, COUNT(*) AS n, AVG(year_of_birth) AS a FROM person WHERE year_of_birth > %s GROUP BY 1 ORDER BY 1",
            (1800,),
        )
        rows = cur.fetchall()
        print("binary", all(n >= 10 and 1800 < a < 2100 for _, n, a in rows) and len(rows) > 0)
# Each result type in text and binary: date, timestamp, text, int8, numeric, float8, bool.
import datetime, decimal
typed = """SELECT CAST(date_trunc('year', condition_start_date) AS DATE) AS d,
  date_trunc('month', condition_start_date) AS ts, CAST(gender_concept_id AS VARCHAR) AS g,
  COUNT(*) AS n, CAST(COUNT(*) AS DECIMAL(10,2)) AS dec, AVG(year_of_birth) AS a, COUNT(*) > 5 AS b
  FROM condition_occurrence JOIN person USING (person_id) WHERE condition_start_date > %s
  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
answers = []
for binary in (False, True):
    with psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True) as c3:
        cur = c3.cursor(binary=binary)
        cur.execute(typed, (datetime.date(2000, 1, 1),))
        rows = cur.fetchall()
        assert [d.type_code for d in cur.description] == [1082, 1114, 25, 20, 1700, 701, 16], cur.description
        assert rows and all(
            isinstance(r[0], datetime.date) and isinstance(r[1], datetime.datetime) and isinstance(r[2], str)
            and isinstance(r[4], decimal.Decimal) and isinstance(r[5], float) and r[6] is True
            for r in rows
        ), rows[:3]
        answers.append(rows)
print("typed", answers[0] == answers[1])
print("done")
"#;

#[test]
fn pg_psycopg_binds_parameters_server_side_and_reports_sqlstates() {
    let w = world();
    let Some(out) = python_ok(&w, &dsn(&w, &w.token), PSYCOPG_SESSION) else {
        return;
    };
    assert!(
        out.contains("types [23, 20]") || out.contains("types [20, 20]"),
        "{out}"
    );
    assert!(out.contains("count True"), "{out}");
    assert!(out.contains("schema demo"), "{out}");
    assert!(
        out.contains("tables ['condition_occurrence', 'person']"),
        "{out}"
    );
    assert!(out.contains("per_person 42501 "), "{out}");
    assert!(out.contains("syntax 42601"), "{out}");
    assert!(out.contains("ddl 25006"), "{out}");
    assert!(out.contains("binary True"), "{out}");
    assert!(out.contains("typed True"), "{out}");
    assert!(out.contains("done"), "{out}");
    // Wrong token.
    let out = python_ok(
        &w,
        &dsn(&w, "agora_not_a_token"),
        r#"
import os, psycopg
try:
    psycopg.connect(os.environ["AGORA_PG_DSN"])
    print("connected")
except psycopg.OperationalError as e:
    print("refused", "28P01" in str(e) or "password authentication failed" in str(e))
"#,
    )
    .unwrap();
    assert!(out.contains("refused True"), "{out}");
}

const PSYCOPG_CANCEL: &str = r#"
import os, threading, time, psycopg
conn = psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True)
slow = """SELECT COUNT(*) AS n FROM condition_occurrence a, condition_occurrence b, condition_occurrence c
  WHERE a.condition_concept_id + b.condition_concept_id > c.condition_concept_id"""
result = {}
def run():
    started = time.time()
    try:
        with conn.cursor() as cur:
            cur.execute(slow)
            cur.fetchall()
        result["r"] = "finished"
    except psycopg.Error as e:
        result["r"] = f"{e.sqlstate} {e.diag.message_primary}"
    result["s"] = time.time() - started
t = threading.Thread(target=run)
t.start()
time.sleep(1.5)
getattr(conn, "cancel_safe", conn.cancel)()
t.join(60)
print("cancel", result.get("r"), "within", result.get("s", 99) < 15)
with conn.cursor() as cur:
    cur.execute("SELECT COUNT(*) AS n FROM person")
    print("after", cur.fetchone()[0] >= 10)
"#;

/// psycopg's `cancel()` (what psql's Ctrl-C sends): the running statement stops with
/// PostgreSQL's 57014 and message, and the connection goes on.
#[test]
fn pg_a_cancel_request_stops_the_running_statement() {
    let w = world();
    let Some(out) = python_ok(&w, &dsn(&w, &w.token), PSYCOPG_CANCEL) else {
        return;
    };
    assert!(
        out.contains("cancel 57014 canceling statement due to user request within True"),
        "{out}"
    );
    assert!(out.contains("after True"), "{out}");
}

/// With `--pg-scram`, a local account logs in by SCRAM-SHA-256 (the client can insist on
/// it: libpq's `require_auth`), a wrong password is refused, and tokens go with another
/// user name.
#[test]
fn pg_scram_logs_local_accounts_in_without_sending_the_password() {
    let w = world_serving(
        |_| json!([{"table": "person", "columns": ["person_id", "year_of_birth"]}]),
        json!({"profile": "snds"}),
        &["--pg-scram"],
    );
    let base = format!(
        "host=127.0.0.1 port={} dbname={} sslmode=disable",
        w.server.pg_port(),
        w.permit
    );
    let script = format!(
        r#"
import os, psycopg
base = os.environ["AGORA_PG_DSN"]
def attempt(extra):
    try:
        with psycopg.connect(base + " " + extra) as c:
            n = c.execute("SELECT COUNT(*) AS n FROM person").fetchone()[0]
            return "ok " + str(n >= 10)
    except psycopg.Error as e:
        return "refused " + str(e).strip().splitlines()[-1]
print("scram", attempt("user=ray password='{password}' require_auth=scram-sha-256"))
print("wrong", attempt("user=ray password='not the password at all'"))
print("token_other_user", attempt("user=token password={token}"))
print("token_as_account", attempt("user=ray password={token}"))
"#,
        password = RAY_PASSWORD.trim_end(),
        token = w.token,
    );
    let Some(out) = python_ok(&w, &base, &script) else {
        return;
    };
    assert!(out.contains("scram ok True"), "{out}");
    assert!(out.contains("wrong refused"), "{out}");
    assert!(out.contains("password authentication failed"), "{out}");
    assert!(out.contains("token_other_user ok True"), "{out}");
    assert!(out.contains("token_as_account refused"), "{out}");
    // psql (libpq) does SCRAM transparently.
    if have_psql() {
        let out = Command::new("psql")
            .arg(format!("{base} user=ray"))
            .args(["-XAt", "-c", "SELECT COUNT(*) AS n FROM person"])
            .env("PGPASSWORD", RAY_PASSWORD.trim_end())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Server-side cursors: psql's `FETCH_COUNT` pages a result through `DECLARE`/`FETCH`, with
/// the same rows as without; a script's own cursor fetches in steps; PostgreSQL's errors for
/// a cursor outside a transaction block or an unknown one.
#[test]
fn pg_cursors_page_results() {
    if !have_psql() {
        return;
    }
    let w = world();
    let sql =
        "SELECT year_of_birth / 10 * 10 AS decade, COUNT(*) AS n FROM person GROUP BY 1 ORDER BY 1";
    let whole = psql_ok(&w, &["-t", "-c", sql]);
    let paged = psql_ok(&w, &["-t", "-v", "FETCH_COUNT=2", "-c", sql]);
    assert!(whole.lines().count() > 3, "{whole}");
    assert_eq!(paged, whole);

    let script = format!(
        "BEGIN; DECLARE c NO SCROLL CURSOR FOR {sql}; FETCH 2 FROM c; FETCH FORWARD ALL IN c; \
         FETCH NEXT FROM c; CLOSE c; COMMIT;"
    );
    let out = psql_ok(&w, &["-t", "-c", &script]);
    let rows: Vec<&str> = out.lines().filter(|l| l.contains('|')).collect();
    let expected: Vec<&str> = whole.lines().filter(|l| l.contains('|')).collect();
    assert_eq!(rows, expected, "{out}");
    // COMMIT closed it; none is open outside a block; a backward fetch is not supported.
    for (statement, code) in [
        ("FETCH 1 FROM c", "34000"),
        (
            "DECLARE d CURSOR FOR SELECT COUNT(*) AS n FROM person",
            "25P01",
        ),
        (
            "BEGIN; DECLARE d CURSOR FOR SELECT COUNT(*) AS n FROM person; FETCH BACKWARD 1 FROM d",
            "0A000",
        ),
    ] {
        let err = psql_err(&w, &w.permit, &w.token, &["-c", statement]);
        assert!(
            err.contains(&format!("ERROR:  {code}")),
            "{statement}: {err}"
        );
    }
}

const PSYCOPG_NAMED_CURSOR: &str = r#"
import os, psycopg
conn = psycopg.connect(os.environ["AGORA_PG_DSN"])
sql = "SELECT year_of_birth / 10 * 10 AS decade, COUNT(*) AS n FROM person WHERE year_of_birth > %s GROUP BY 1 ORDER BY 1"
with conn.cursor() as cur:
    cur.execute(sql, (1800,))
    whole = cur.fetchall()
with conn.cursor(name="pages") as cur:
    cur.itersize = 2
    cur.execute(sql, (1800,))
    print("columns", [d.name for d in cur.description])
    first = cur.fetchmany(2)
    rest = list(cur)
conn.commit()
print("same", first + rest == whole and len(whole) > 2)
"#;

/// psycopg's named (server-side) cursors: declared with a bound parameter, described as a
/// portal of their name, fetched in pages; the rows are the plain query's.
#[test]
fn pg_psycopg_named_cursors_fetch_in_pages() {
    let w = world();
    let Some(out) = python_ok(&w, &dsn(&w, &w.token), PSYCOPG_NAMED_CURSOR) else {
        return;
    };
    assert!(out.contains("columns ['decade', 'n']"), "{out}");
    assert!(out.contains("same True"), "{out}");
}

const PSYCOPG_REVOKED: &str = r#"
import os, sys, time, psycopg
conn = psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True)
cur = conn.cursor()
cur.execute("SELECT COUNT(*) FROM person")
print("before", cur.fetchone()[0] >= 10, flush=True)
sys.stdin.readline()  # the test revokes, then writes a line
try:
    cur.execute("SELECT COUNT(*) FROM person")
    print("after ok", cur.fetchall())
except psycopg.Error as e:
    print("after", e.sqlstate)
"#;

/// Starts the script, waits for its first line, runs `revoke` (any change recorded while
/// the connection is open), then lets it go on.
fn revoked_mid_connection(w: &World, revoke: impl FnOnce()) -> Option<String> {
    use std::io::{BufRead, BufReader, Write};
    let python = std::env::var("AGORA_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())?;
    let mut child = Command::new(python.trim())
        .arg("-c")
        .arg(PSYCOPG_REVOKED)
        .env("AGORA_PG_DSN", dsn(w, &w.token))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "before True", "{first}");
    revoke();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(rest)
}

#[test]
fn pg_revocation_takes_effect_on_an_open_connections_next_query() {
    let w = world();
    if std::env::var("AGORA_TEST_PYTHON").map_or(true, |p| p.trim().is_empty()) {
        eprintln!("skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh prints it)");
        return;
    }
    // The permit revoked while the connection is open.
    let permit = w.permit.clone();
    let out = revoked_mid_connection(&w, || {
        cli_as(
            &w.hub,
            None,
            &["permit", "revoke", &permit, "--reason", "end of study"],
        );
    })
    .unwrap();
    assert_eq!(out.trim(), "after 42501", "{out}");
    // A new connection on the revoked permit: the same answer as an unknown permit.
    let script = r#"
import os, psycopg
try:
    psycopg.connect(os.environ["AGORA_PG_DSN"])
except psycopg.Error as e:
    # A refused connection has no SQLSTATE in psycopg: libpq's message holds the server's.
    print(str(e).split("FATAL:", 1)[-1].strip())
"#;
    let revoked = python_ok(&w, &dsn(&w, &w.token), script).unwrap();
    let unknown_dsn = dsn(&w, &w.token).replace(&w.permit, "pmt_unknown");
    let unknown = python_ok(&w, &unknown_dsn, script).unwrap();
    assert!(revoked.contains("no data permit"), "{revoked}");
    assert_eq!(
        revoked, unknown,
        "a revoked permit looks like an unknown one"
    );
}

#[test]
fn pg_token_revocation_and_connection_limit() {
    let w = world();
    if std::env::var("AGORA_TEST_PYTHON").map_or(true, |p| p.trim().is_empty()) {
        eprintln!("skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh prints it)");
        return;
    }
    // At most 3 connections per user (the server's --pg-max-connections-per-user).
    let out = python_ok(
        &w,
        &dsn(&w, &w.token),
        r#"
import os, psycopg
conns = [psycopg.connect(os.environ["AGORA_PG_DSN"]) for _ in range(3)]
try:
    psycopg.connect(os.environ["AGORA_PG_DSN"])
    print("fourth connected")
except psycopg.Error as e:
    print("fourth", "too many connections for this user" in str(e))
for c in conns:
    c.close()
import time; time.sleep(0.5)
psycopg.connect(os.environ["AGORA_PG_DSN"]).close()
print("again ok")
"#,
    )
    .unwrap();
    assert!(
        out.contains("fourth True") && out.contains("again ok"),
        "{out}"
    );
    // The token revoked while the connection is open.
    let hub = &w.hub;
    let out = revoked_mid_connection(&w, || {
        let tokens = json_as(hub, None, &["user", "token", "list", "ray"]);
        let id = tokens[0]["id"].as_str().unwrap().to_owned();
        cli_as(hub, None, &["user", "token", "revoke", "ray", &id]);
    })
    .unwrap();
    assert_eq!(out.trim(), "after 28P01", "{out}");
}

/// The OMOP suite's statements, and a world whose permit grants every table they read that
/// the release has, with the columns `keep` accepts; also the grant's tables (JSON).
fn suite_world(keep: fn(&str) -> bool) -> (World, Vec<String>, Value) {
    let suite: Vec<String> = crate::query_suite::queries()
        .into_iter()
        .map(|(_, sql)| sql)
        .collect();
    let names = regex_lite_tables(&suite.join("\n"));
    let mut granted = Value::Null;
    let w = world_granting(|hub| {
        // Each table the suite names that the release has, with its kept columns.
        let grants: Vec<Value> = names
            .iter()
            .filter_map(|table| {
                let header = hub
                    .sql_stdin("demo", &format!("SELECT * FROM {table} LIMIT 0"))
                    .ok()?;
                let columns: Vec<&str> = header
                    .lines()
                    .next()?
                    .split('\t')
                    .filter(|c| keep(c))
                    .collect();
                Some(json!({"table": table, "columns": columns}))
            })
            .collect();
        assert!(grants.len() >= 8, "{grants:?}");
        granted = Value::Array(grants);
        granted.clone()
    });
    (w, suite, granted)
}

/// The OMOP query suite through psycopg on a permit granting every table it reads, whole:
/// every question is answered (under disclosure control) or refused with a SQLSTATE, and
/// the connection survives each.
#[test]
fn pg_omop_suite_runs_through_psycopg() {
    let (w, suite, _) = suite_world(|_| true);
    let script = format!(
        r#"
import os, json, psycopg
suite = json.loads({suite:?})
conn = psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True)
answered = refused = 0
for sql in suite:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
        answered += 1
    except psycopg.Error as e:
        assert e.sqlstate and e.sqlstate[:2] in ("42", "54", "55", "22", "0A"), (e.sqlstate, str(e))
        refused += 1
print("suite", answered, refused)
"#,
        suite = serde_json::to_string(&suite).unwrap()
    );
    let Some(out) = python_ok(&w, &dsn(&w, &w.token), &script) else {
        return;
    };
    let counts: Vec<usize> = out
        .trim()
        .strip_prefix("suite ")
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts[0] + counts[1], 21, "{out}");
    eprintln!(
        "OMOP suite through psycopg: {} answered, {} refused",
        counts[0], counts[1]
    );
    assert!(counts[0] >= 18, "most questions are answered: {out}");
}

/// The pgjdbc driver's jar: `AGORA_TEST_JDBC_JAR` (ci/check.sh exports it), else Debian's
/// (`libpostgresql-jdbc-java`, which `ci/clients.sh` installs); `None`, saying so, when it
/// or `java` is missing.
fn jdbc_jar() -> Option<std::path::PathBuf> {
    let jar = std::env::var_os("AGORA_TEST_JDBC_JAR")
        .filter(|j| !j.is_empty())
        .map_or_else(
            || std::path::PathBuf::from("/usr/share/java/postgresql.jar"),
            Into::into,
        );
    if !jar.is_file() {
        eprintln!(
            "skipped: the pgjdbc driver is not at {} (ci/clients.sh installs it)",
            jar.display()
        );
        return None;
    }
    if Command::new("java").arg("-version").output().is_err() {
        eprintln!("skipped: java is not on the PATH");
        return None;
    }
    Some(jar)
}

/// A JDBC program and DBeaver's schema browser, with the real pgjdbc driver
/// (`tests/clients/JdbcProbe.java`): plain and prepared statements with typed getters,
/// SQLSTATEs, `DatabaseMetaData` listing exactly the permitted tables and columns, and the
/// OMOP suite. The permit grants the suite's tables without their `*_source_value` columns.
#[test]
fn pg_jdbc_client_and_database_metadata() {
    let Some(jar) = jdbc_jar() else {
        return;
    };
    let (w, suite, granted) = suite_world(|column| !column.ends_with("_source_value"));
    let suite_file = w.hub.data_dir().join("jdbc-suite.sql");
    std::fs::write(&suite_file, suite.join("\0")).unwrap();
    let probe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/JdbcProbe.java");
    let out = Command::new("java")
        .arg("-cp")
        .arg(&jar)
        .arg(&probe)
        .arg(format!(
            "jdbc:postgresql://127.0.0.1:{}/{}",
            w.server.pg_port(),
            w.permit
        ))
        .args(["ray", &w.token])
        .arg(&suite_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "JdbcProbe: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |key: &str| -> &str {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
    };
    assert_eq!(get("connected"), w.permit);
    assert!(get("product").starts_with("PostgreSQL 16"), "{stdout}");

    // Rows and types.
    assert_eq!(get("plain.types"), "int8,int8", "{stdout}");
    assert!(get("plain.rows").parse::<u32>().unwrap() >= 2, "{stdout}");
    assert!(
        get("plain.min_count").parse::<u32>().unwrap() >= 10,
        "{stdout}"
    );
    let count: u64 = get("prepared.counts")
        .parse()
        .unwrap_or_else(|_| panic!("{stdout}"));
    assert!(count >= 10, "{stdout}");
    assert_eq!(get("prepared.future"), "row", "{stdout}");
    assert_eq!(
        get("typed.types"),
        "date,timestamp,text,int8,float8",
        "{stdout}"
    );
    assert!(get("typed.rows").parse::<u32>().unwrap() >= 1, "{stdout}");
    assert_eq!(get("typed.ok"), "true", "{stdout}");
    assert_eq!(get("fetch_size.rows"), get("typed.rows"), "{stdout}");

    // SQLSTATEs; an ungranted table is refused like one that does not exist.
    assert_eq!(get("error.per_person"), "42501", "{stdout}");
    assert_eq!(get("error.syntax"), "42601", "{stdout}");
    assert_eq!(get("error.unpermitted"), get("error.unknown"), "{stdout}");
    assert_eq!(get("error.unpermitted"), "42P01", "{stdout}");
    assert_eq!(get("error.ddl"), "25006", "{stdout}");

    // DatabaseMetaData: exactly the permitted tables and columns.
    let mut tables: Vec<String> = granted
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap().to_owned())
        .collect();
    tables.sort();
    assert_eq!(get("meta.schemas"), "demo", "{stdout}");
    assert_eq!(get("meta.catalogs"), w.permit, "{stdout}");
    let listed = |prefix: &str, suffix: &str| -> String {
        tables
            .iter()
            .map(|t| format!("{prefix}{t}{suffix}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        get("meta.tables.demo"),
        listed("demo.", ":TABLE"),
        "{stdout}"
    );
    assert_eq!(get("meta.tables.all"), listed("demo.", ""), "{stdout}");
    assert_eq!(get("meta.tables.views"), "0", "{stdout}");
    let columns: Vec<&str> = get("meta.columns").split(',').collect();
    let mut expected = Vec::new();
    let mut grants: Vec<&Value> = granted.as_array().unwrap().iter().collect();
    grants.sort_by_key(|t| t["table"].as_str().unwrap().to_owned());
    for grant in grants {
        for (i, column) in grant["columns"].as_array().unwrap().iter().enumerate() {
            expected.push((
                format!(
                    "demo.{}.{}",
                    grant["table"].as_str().unwrap(),
                    column.as_str().unwrap()
                ),
                i + 1,
            ));
        }
    }
    assert_eq!(columns.len(), expected.len(), "{stdout}");
    for (column, (name, position)) in columns.iter().zip(&expected) {
        let parts: Vec<&str> = column.split(':').collect();
        assert_eq!(parts[0], name, "{stdout}");
        assert_eq!(parts[3], position.to_string(), "{column}");
        assert!(matches!(parts[4], "YES" | "NO"), "{column}");
    }
    assert!(!stdout.contains("_source_value"), "{stdout}");
    // Types as java.sql.Types: person_id int8 (BIGINT = -5), a date column DATE (91).
    assert!(
        columns
            .iter()
            .any(|c| c.starts_with("demo.person.person_id:int8:-5:1:")),
        "{stdout}"
    );
    assert!(
        columns
            .iter()
            .any(|c| c.starts_with("demo.condition_occurrence.condition_start_date:date:91:")),
        "{stdout}"
    );
    assert_eq!(
        get("meta.columns.filtered"),
        "year_of_birth,month_of_birth,day_of_birth,birth_datetime",
        "{stdout}"
    );
    assert_eq!(get("meta.primary_keys"), "0:6", "{stdout}");
    assert_eq!(get("meta.imported_keys"), "0", "{stdout}");
    assert_eq!(get("meta.indexes"), "0", "{stdout}");
    assert_eq!(get("meta.type_lookup"), "0", "{stdout}");
    assert_eq!(get("meta.type_lookup.parameters"), "1", "{stdout}");

    // The suite: answered or refused with a SQLSTATE of the service's classes.
    let suite_line: Vec<&str> = get("suite").split(' ').collect();
    let (answered, refused): (usize, usize) = (
        suite_line[0].parse().unwrap(),
        suite_line[1].parse().unwrap(),
    );
    assert_eq!(answered + refused, 21, "{stdout}");
    assert!(answered >= 18, "most questions are answered: {stdout}");
    for state in suite_line
        .get(2)
        .map_or(Vec::new(), |s| s.split(',').collect())
    {
        assert!(
            ["42", "54", "55", "22", "0A"].contains(&&state[..2]),
            "{stdout}"
        );
    }
    assert_eq!(get("done"), "true");

    // Statements reached the service (access events of the postgres front); the catalogue
    // queries did not.
    w.server.stop();
    let events = w.hub.access_events();
    let postgres = events
        .iter()
        .filter(|(front, _)| front == "postgres")
        .count();
    assert!(
        postgres >= 21 + 10,
        "{postgres} access events from the PostgreSQL front"
    );
}

/// The table names after FROM and JOIN in `sql`, deduplicated.
fn regex_lite_tables(sql: &str) -> Vec<String> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut names: Vec<String> = Vec::new();
    for pair in words.windows(2) {
        let keyword = pair[0].to_ascii_uppercase();
        let name = pair[1].to_ascii_lowercase();
        if (keyword == "FROM" || keyword == "JOIN")
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    names
}

/// With a certificate, the listener speaks TLS: `sslmode=require` connects and queries.
#[test]
fn pg_tls_when_a_certificate_is_given() {
    if !have_psql() {
        return;
    }
    let hub = Hub::init();
    let dir = hub.data_dir().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: openssl cannot make a test certificate");
        return;
    }
    let server = Server::start_with(
        &hub,
        &[
            "--pg-listen",
            "127.0.0.1:0",
            "--pg-tls-cert",
            cert.to_str().unwrap(),
            "--pg-tls-key",
            key.to_str().unwrap(),
        ],
    );
    // The operator's token, on no permit: TLS is negotiated, then the permit is refused.
    let out = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} dbname=pmt_none user=op sslmode=require connect_timeout=10",
            server.pg_port()
        ))
        .args(["-X", "-c", "SELECT 1"])
        .env("PGPASSWORD", hub.token().trim())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("SSL") && !stderr.contains("ssl"),
        "TLS failed: {stderr}"
    );
    assert!(stderr.contains("permit"), "{stderr}");
}

/// Issue 14, item 6: opt-outs recorded while a connection is open apply to its next query.
#[test]
fn pg_an_opt_out_applies_to_an_open_connections_next_query() {
    let w = world();
    if std::env::var("AGORA_TEST_PYTHON").map_or(true, |p| p.trim().is_empty()) {
        eprintln!("skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh prints it)");
        return;
    }
    let count = |out: &str| -> i64 {
        let inner = out
            .trim()
            .trim_start_matches("after ok [(")
            .trim_end_matches(",)]");
        inner.parse().unwrap_or_else(|_| panic!("{out}"))
    };
    let before = python_ok(
        &w,
        &dsn(&w, &w.token),
        r#"
import os, psycopg
with psycopg.connect(os.environ["AGORA_PG_DSN"], autocommit=True) as c:
    print("after ok", c.execute("SELECT COUNT(*) FROM person").fetchall())
"#,
    )
    .unwrap();
    let before = count(&before);
    // Thirty persons opt out (the operator records it in the registry).
    let keys: Vec<i64> = w
        .hub
        .sql_tsv(
            "demo",
            "SELECT person_id FROM person ORDER BY person_id LIMIT 30",
        )
        .lines()
        .skip(1)
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(keys.len(), 30);
    let data_dir = w.hub.data_dir().to_path_buf();
    let out = revoked_mid_connection(&w, move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = agora_govern::MetaStore::open_sqlite(&data_dir.join("meta.db"))
                .await
                .unwrap();
            for key in keys {
                store
                    .opt_out(key, agora_govern::OptOutChannel::Operator, "op")
                    .await
                    .unwrap();
            }
        });
    })
    .unwrap();
    let after = count(&out);
    assert!(
        after <= before - 20,
        "{before} persons before 30 opted out, {after} after"
    );
}

/// Issue 14, item 4: a `pseudonymized-rows` permit releases rows through psql — person keys
/// as the project's pseudonyms, birth dates to the year, care dates to the month, the
/// address absent — and each statement is still recorded.
#[test]
fn a_pseudonymized_rows_permit_releases_minimised_rows() {
    if !have_psql() {
        return;
    }
    let w = world_with(
        |_| {
            json!([
                {"table": "person", "columns": ["person_id", "year_of_birth", "birth_datetime", "location_id"]},
                {"table": "visit_occurrence", "columns": ["person_id", "visit_start_date"]}
            ])
        },
        json!({"policy": "pseudonymized-rows"}),
    );
    let rows = psql_ok(
        &w,
        &[
            "-t",
            "-c",
            "SELECT person_id, year_of_birth, birth_datetime FROM person",
        ],
    );
    let rows: Vec<&str> = rows.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 300);
    let stored = w.hub.ok(&[
        "sql",
        "--dataset",
        "demo",
        "--format",
        "csv",
        "SELECT person_id FROM person",
    ]);
    let stored: std::collections::HashSet<&str> = stored.lines().skip(1).collect();
    for row in &rows {
        let fields: Vec<&str> = row.split('|').collect();
        assert!(
            !stored.contains(fields[0]),
            "a stored person key left the hub"
        );
        if !fields[2].is_empty() {
            // As PostgreSQL prints it: no fraction when there is none.
            assert_eq!(fields[2], format!("{}-01-01 00:00:00", fields[1]), "{row}");
        }
    }
    let days = psql_ok(
        &w,
        &[
            "-t",
            "-c",
            "SELECT count(*) FROM visit_occurrence WHERE extract(day FROM visit_start_date) <> 1",
        ],
    );
    assert_eq!(days.trim(), "0");
    psql_err(
        &w,
        &w.permit,
        &w.token,
        &["-c", "SELECT location_id FROM person"],
    );
    let answered = w
        .hub
        .access_events()
        .into_iter()
        .filter(|(front, outcome)| front == "postgres" && outcome == "answered")
        .count();
    assert!(answered >= 2, "{answered} answers recorded");
}
