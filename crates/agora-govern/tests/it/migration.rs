use agora_govern::{MetaStore, Role};
use sha2::{Digest, Sha256};

use crate::support::empty_databases;

/// A store created before accounts existed: its API tokens keep working, tied to users
/// named like their principal, with the roles the tokens carried.
#[tokio::test]
async fn tokens_issued_before_accounts_keep_working() {
    for (backend, url, _guard) in empty_databases().await {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let v1 = include_str!("../../src/migrations/0001_init.sql");
        for statement in v1.split(';') {
            let sql: String = statement
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if !sql.trim().is_empty() {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        sqlx::query("INSERT INTO schema_migrations VALUES (1, '2026-01-01T00:00:00.000000Z')")
            .execute(&pool)
            .await
            .unwrap();
        let tokens = [
            ("agora_legacy_op", "local-operator", "operator"),
            ("agora_legacy_mix", "ingest-bot", "producer,researcher"),
        ];
        for (token, principal, roles) in tokens {
            sqlx::query(
                "INSERT INTO api_tokens (token_hash, principal, roles, created_at) \
                 VALUES ($1, $2, $3, '2026-01-01T00:00:00.000000Z')",
            )
            .bind(hex::encode(Sha256::digest(token.as_bytes())))
            .bind(principal)
            .bind(roles)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;

        let store = MetaStore::open(&url).await.unwrap();
        let op = store
            .authenticate("agora_legacy_op")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(op.name, "local-operator", "{backend}");
        assert_eq!(op.roles, vec![Role::Operator]);
        let bot = store
            .authenticate("agora_legacy_mix")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            bot.roles,
            vec![Role::Producer, Role::Researcher],
            "{backend}"
        );
        let users = store.list_users(&op).await.unwrap();
        assert_eq!(users.len(), 2);
        assert!(users.iter().all(|u| u.active));
        // Reopening applies nothing twice.
        store.close().await;
        let again = MetaStore::open(&url).await.unwrap();
        assert_eq!(again.list_users(&op).await.unwrap().len(), 2);
        again.close().await;
    }
}

/// Several processes opening a new store at the same moment (the server and a CLI command,
/// or benchmark runners): each migration is applied once, and every open succeeds.
#[tokio::test]
async fn stores_opened_at_once_migrate_once() {
    for (backend, url, _guard) in empty_databases().await {
        let opens = (0..6).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { MetaStore::open(&url).await.map(|_| ()) })
        });
        for open in opens.collect::<Vec<_>>() {
            open.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{backend}: {e}"));
        }
        let store = MetaStore::open(&url).await.unwrap();
        assert!(store.list_datasets().await.unwrap().is_empty(), "{backend}");
    }
}
