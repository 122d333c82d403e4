//! A hub whose metadata store is PostgreSQL, selected by URL (`AGORA_META_URL`), as
//! several Agora nodes would share it. Runs when `AGORA_TEST_POSTGRES_URL` names a server
//! (`ci/postgres.sh` starts one and CI sets it).

use std::process::Command;

use serde_json::Value;

use crate::support::shared;

/// A fresh schema on the test server, and a URL whose connections use it.
fn fresh_schema(base: &str) -> (String, String) {
    use sqlx::Connection;
    let schema = format!("agora_srv_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let sep = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{sep}options[search_path]={schema}"), schema)
}

fn count_releases(base: &str, schema: &str) -> i64 {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.releases"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut conn)
            .await
            .unwrap();
        n
    })
}

#[test]
fn a_hub_runs_on_a_postgresql_metadata_store_chosen_by_url() {
    let Some(base) = std::env::var("AGORA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("skipped: AGORA_TEST_POSTGRES_URL is not set (ci/postgres.sh sets it in CI)");
        return;
    };
    let (url, schema) = fresh_schema(&base);
    let dir = tempfile::tempdir().unwrap();
    let agora = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agora"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("AGORA_META_URL", &url)
            .env_remove("AGORA_DATA_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "agora {args:?}: {stderr}");
        assert!(!stderr.contains("postgres://"), "the URL leaked: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    agora(&["init"]);
    let fixture = shared("data/omop/synthea27nj_csv");
    agora(&[
        "ingest",
        "omop",
        "--dataset",
        "synthea",
        fixture.to_str().unwrap(),
    ]);
    let count = agora(&[
        "sql",
        "--dataset",
        "synthea",
        "--format",
        "tsv",
        "SELECT COUNT(*) AS n FROM person",
    ]);
    assert_eq!(count, "n\n28\n");
    agora(&[
        "user", "create", "rita", "--name", "Rita", "--role", "reviewer",
    ]);
    let users = agora(&["user", "list", "--json"]);
    assert!(users.contains("\"rita\""), "{users}");
    let catalogue: Value =
        serde_json::from_str(&agora(&["catalogue", "--format", "json"])).unwrap();
    assert_eq!(catalogue[0]["latest_release"]["persons"], 28);

    // Nothing went to a local SQLite file: the release is committed in PostgreSQL.
    assert!(!dir.path().join("meta.db").exists());
    assert_eq!(count_releases(&base, &schema), 1);
}
