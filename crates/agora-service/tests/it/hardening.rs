//! Issue 11's attacks on the query service, each a class: statements too deep to plan,
//! functions and results that allocate past the limits, and errors that would quote data.

use agora_core::{ErrorKind, HasKind};
use agora_service::{Error, Front, QueryLimits};

use crate::support::{Env, hub, operator, release};

async fn run(env: &Env, limits: QueryLimits, sql: &str) -> Result<usize, Error> {
    let who = operator(&env.hub).await;
    let session = env
        .hub
        .query()
        .open(&who, release(None), Front::Cli, limits)
        .await
        .unwrap();
    Ok(session.sql(sql).await?.num_rows())
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

fn small() -> QueryLimits {
    QueryLimits {
        memory_bytes: 512 << 20,
        ..QueryLimits::default()
    }
}

fn assert_too_complex(r: Result<usize, Error>) {
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("too complex"), "{e}");
}

#[tokio::test]
async fn deep_statements_are_too_complex_and_the_deepest_allowed_ones_run() {
    let env = hub().await;
    let max = agora_service::MAX_EXPRESSION_DEPTH;
    // What aborted the server before: 250 `+` (within the bounds), 300 `||` and 300
    // chained CTEs (past them).
    assert_eq!(
        run(&env, small(), &format!("SELECT {}", chain("1", "+", 250)))
            .await
            .unwrap(),
        1
    );
    let concat = format!("SELECT {}", chain("'a'", " || ", 300));
    assert_too_complex(run(&env, small(), &concat).await);
    let ctes = (2..=300)
        .map(|i| format!("c{i} AS (SELECT x + 1 AS x FROM c{})", i - 1))
        .collect::<Vec<_>>()
        .join(", ");
    let ctes = format!("WITH c1 AS (SELECT 1 AS x), {ctes} SELECT x FROM c300");
    assert_too_complex(run(&env, small(), &ctes).await);

    // Just within the bounds, on the hub's data: plans, optimizes and runs.
    let deepest = [
        format!(
            "SELECT {} FROM person",
            chain("year_of_birth", "+", max - 10)
        ),
        format!(
            "SELECT {} FROM person",
            chain("gender_source_value", " || ", max - 10)
        ),
        format!(
            "SELECT count(*) FROM person WHERE {}",
            chain("year_of_birth > 1900", " AND ", max / 3)
        ),
    ];
    for sql in &deepest {
        run(&env, small(), sql).await.unwrap();
    }
    let ctes = (2..=100)
        .map(|i| format!("c{i} AS (SELECT x + 1 AS x FROM c{})", i - 1))
        .collect::<Vec<_>>()
        .join(", ");
    let ctes =
        format!("WITH c1 AS (SELECT year_of_birth AS x FROM person), {ctes} SELECT x FROM c100");
    run(&env, small(), &ctes).await.unwrap();

    // Past them: one clear error, whatever the construct.
    for sql in [
        format!("SELECT {}", chain("1", "+", max + 1)),
        format!(
            "SELECT {} FROM person",
            chain("gender_source_value", " || ", max + 1)
        ),
        format!("SELECT 1 WHERE {}", chain("1 = 1", " OR ", max)),
        format!("SELECT {}", chain("1", " UNION ALL SELECT ", max + 1)),
        format!("SELECT '{}'", "x".repeat(agora_service::MAX_SQL_BYTES)),
    ] {
        assert_too_complex(run(&env, small(), &sql).await);
    }
}

fn assert_too_large(r: Result<usize, Error>, sql: &str) {
    let e = r.expect_err(sql);
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted, "{sql}: {e}");
}

#[tokio::test]
async fn what_one_function_call_or_one_answer_may_build_is_bounded() {
    let env = hub().await;
    for sql in [
        // Issue 11's reproductions: 7.9 GB of RSS, a 500 MB answer, a panic in Arrow.
        "SELECT length(repeat('x', 2000000000))",
        "SELECT repeat('x', 500000000)",
        "SELECT length(string_agg(repeat('x', 1000000), ',')) FROM measurement",
        // The same class through other functions.
        "SELECT length(lpad('x', 2000000000))",
        "SELECT length(rpad('x', 2000000000, 'ab'))",
        "SELECT cardinality(array_repeat(1, 1000000000))",
        "SELECT cardinality(range(0, 1000000000000))",
        "SELECT cardinality(generate_series(TIMESTAMP '1900-01-01', TIMESTAMP '2100-01-01', INTERVAL '1 second'))",
        "SELECT length(replace(repeat('x', 100000), '', repeat('y', 1000)))",
        "SELECT length(regexp_replace(repeat('x', 100000), '', repeat('y', 1000), 'g'))",
        // Growth by concatenation, each step within bounds: doubling through CTEs.
        "WITH a AS (SELECT repeat('x', 1000000) AS s), b AS (SELECT s || s AS s FROM a), \
         c AS (SELECT s || s AS s FROM b), d AS (SELECT s || s AS s FROM c), \
         e AS (SELECT s || s AS s FROM d), f AS (SELECT s || s AS s FROM e), \
         g AS (SELECT s || s AS s FROM f), h AS (SELECT s || s AS s FROM g) \
         SELECT length(s) FROM h",
        // A constant is copied to every row it meets.
        "SELECT max(length(x)) FROM (SELECT repeat('x', 100000) AS x FROM measurement)",
    ] {
        assert_too_large(run(&env, small(), sql).await, sql);
    }
    // The answer's bytes count, not only its rows.
    let limits = QueryLimits {
        max_bytes: 1 << 20,
        ..small()
    };
    let e = run(&env, limits, "SELECT * FROM measurement")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted, "{e}");
    assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
    // Ordinary text work stays possible.
    let ok = "SELECT person_id, concat(gender_source_value, '-', race_source_value) || repeat('.', 10), \
              lpad(CAST(year_of_birth AS VARCHAR), 6, '0') FROM person";
    assert_eq!(run(&env, small(), ok).await.unwrap(), 28);
}

#[tokio::test]
async fn errors_raised_on_data_are_input_errors_that_never_quote_it() {
    let env = hub().await;
    let who = operator(&env.hub).await;
    let session = env
        .hub
        .query()
        .open(&who, release(None), Front::Cli, small())
        .await
        .unwrap();
    // Values an error could leak: person keys, birth times, source values.
    let values = session
        .sql(
            "SELECT CAST(person_id AS VARCHAR), CAST(birth_datetime AS VARCHAR), \
             race_source_value FROM person",
        )
        .await
        .unwrap();
    let mut secrets = Vec::new();
    for batch in &values.batches {
        for column in batch.columns() {
            let strings = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).unwrap();
            let strings = strings
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            secrets.extend(strings.iter().flatten().map(str::to_owned));
        }
    }
    assert!(secrets.len() > 50);
    for sql in [
        // Issue 11's reproductions: a pattern built from the data.
        "SELECT regexp_like('x', CAST(person_id AS VARCHAR) || ' born ' || CAST(birth_datetime AS VARCHAR) || ' (') FROM person",
        "SELECT regexp_replace('x', race_source_value || '(', 'y') FROM person",
        "SELECT regexp_match('x', '[' || CAST(person_id AS VARCHAR)) FROM person",
        // Casts, dates, arithmetic, strings on data.
        "SELECT CAST(race_source_value AS INT) FROM person",
        "SELECT to_timestamp(race_source_value) FROM person",
        "SELECT make_date(year_of_birth, 13, 1) FROM person",
        "SELECT make_date(2020, CAST(person_id % 100 AS INT) + 13, 1) FROM person",
        "SELECT person_id / (person_id - person_id) FROM person",
        "SELECT CAST(person_id AS VARCHAR)::DATE FROM person",
        "SELECT arrow_cast(race_source_value, 'Int64') FROM person",
        "SELECT to_date(race_source_value) FROM person",
        "SELECT date_trunc(race_source_value, birth_datetime) FROM person",
    ] {
        let e = session.sql(sql).await.expect_err(sql);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{sql}: {e}");
        let shown = e.to_string();
        for secret in &secrets {
            assert!(
                !shown.contains(secret.as_str()),
                "{sql} leaked a value: {shown}"
            );
        }
    }
}

#[tokio::test]
async fn one_user_may_run_only_so_many_queries_at_once() {
    let env = hub().await;
    env.hub.query().set_max_running_per_principal(2);
    let who = operator(&env.hub).await;
    let session = env
        .hub
        .query()
        .open(&who, release(None), Front::Http, small())
        .await
        .unwrap();
    let first = session.plan("SELECT 1").await.unwrap();
    let second = session
        .plan("SELECT 2")
        .await
        .unwrap()
        .execute()
        .await
        .unwrap();
    let e = session.plan("SELECT 3").await.unwrap_err();
    assert!(matches!(e, Error::Busy { running: 2 }), "{e}");
    assert_eq!(e.kind(), ErrorKind::ResourceExhausted);
    // Another user is not held up.
    let other = env
        .hub
        .query()
        .authenticate(agora_service::Credential::DataDirectory { user: "other" })
        .await
        .unwrap();
    let theirs = env
        .hub
        .query()
        .open(&other, release(None), Front::Http, small())
        .await
        .unwrap();
    theirs.sql("SELECT 4").await.unwrap();
    // A finished (dropped) answer gives its place back.
    drop(second);
    drop(first);
    assert_eq!(session.sql("SELECT 5").await.unwrap().num_rows(), 1);
}
