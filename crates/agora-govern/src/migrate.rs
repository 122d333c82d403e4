use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, AnyPool};
use sqlx::{AssertSqlSafe, Executor};

use crate::{Error, Result};

/// A migration's data step, run after its SQL in the same transaction: for changes SQL
/// cannot make portably (hashing, JSON).
type Step =
    for<'c> fn(&'c mut AnyConnection) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'c>>;

/// Ordered schema migrations; each runs once, in a transaction, recorded in
/// `schema_migrations`. Never edit a released migration: add a new one.
///
/// Each version is applied if it is not recorded, whatever else is: versions may be
/// numbered ahead of others still being written (7 before 5 and 6), and a store that has
/// 7 gets 5 and 6 when they arrive. A migration must therefore depend only on versions
/// below it that are already listed here.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_governance.sql")),
    (3, include_str!("migrations/0003_release_source.sql")),
    (4, include_str!("migrations/0004_access_events.sql")),
    (5, include_str!("migrations/0005_access_detail.sql")),
    (6, include_str!("migrations/0006_exports.sql")),
    (7, include_str!("migrations/0007_dp_budget.sql")),
    (8, include_str!("migrations/0008_audit_log.sql")),
    (9, include_str!("migrations/0009_audit_retention.sql")),
    (10, include_str!("migrations/0010_scram.sql")),
];

/// Data steps, by version.
fn step(version: i64) -> Option<Step> {
    match version {
        9 => Some(|conn| Box::pin(crate::audit::import_legacy_and_count(conn))),
        _ => None,
    }
}

pub(crate) async fn run(pool: &AnyPool) -> Result<()> {
    // PostgreSQL's `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent one (both
    // may try to create the table's type): the loser retries, and then finds the table.
    let create = "CREATE TABLE IF NOT EXISTS schema_migrations \
                  (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)";
    let mut attempts = 0;
    while let Err(e) = pool.execute(create).await {
        attempts += 1;
        if attempts == 5 {
            return Err(e.into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * attempts)).await;
    }
    for &(version, sql) in MIGRATIONS {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(pool)
                .await?;
        if applied.is_some() {
            continue;
        }
        let wrap = |source| Error::Migration { version, source };
        let mut tx = pool.begin().await.map_err(wrap)?;
        // Claim the version first, in the migration's own transaction: two processes opening
        // a new store at once both get here, and the second waits on the first's row, then
        // finds it and leaves the migration alone (it is only applied by whoever claims it).
        let claimed = sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(crate::now_utc())
        .execute(&mut *tx)
        .await
        .map_err(wrap)?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await.map_err(wrap)?;
            continue;
        }
        for statement in split_statements(sql) {
            tx.execute(AssertSqlSafe(statement)).await.map_err(wrap)?;
        }
        if let Some(step) = step(version) {
            step(&mut tx).await.map_err(|e| match e {
                Error::Database(source) => wrap(source),
                other => other,
            })?;
        }
        tx.commit().await.map_err(wrap)?;
    }
    Ok(())
}

/// Splits a migration on `;` at line ends, dropping `--` comments. Migrations contain no
/// string literals with semicolons, which keeps this honest.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or_default().trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(
                std::mem::take(&mut current)
                    .trim()
                    .trim_end_matches(';')
                    .to_owned(),
            );
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_are_increasing_and_unique() {
        let versions: Vec<i64> = super::MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let parts = super::split_statements(
            "-- c\nCREATE TABLE a (x INT); -- t\nCREATE TABLE b (\n y INT\n);\n",
        );
        assert_eq!(
            parts,
            vec!["CREATE TABLE a (x INT)", "CREATE TABLE b (\n y INT\n)"]
        );
    }
}
