use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use agora_core::DatasetName;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use crate::clock::{Clock, SystemClock, truncate};
use crate::{Error, GovernConfig, Result, migrate, now_utc};

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const CHUNK: usize = 500;

/// The metadata store. Cheap to clone (a connection pool, the clock and the policy).
#[derive(Debug, Clone)]
pub struct MetaStore {
    pool: AnyPool,
    sqlite: bool,
    clock: Arc<dyn Clock>,
    config: Arc<GovernConfig>,
    /// A password hash verified when a login names no account, so that a failed login takes
    /// about as long whether the account exists or not.
    pub(crate) dummy_hash: Arc<tokio::sync::OnceCell<String>>,
}

/// A registered dataset, as listed to operators and researchers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetInfo {
    /// The dataset's name (a valid [`DatasetName`]).
    pub name: String,
    /// The data model of its first release, e.g. `omop-cdm-5.4`.
    pub model: String,
    /// When its first release was committed (RFC 3339, UTC).
    pub created_at: String,
    /// Number of its newest release; `None` if it has none.
    pub latest_release: Option<i64>,
}

/// A committed release: the store's row that makes a lake release visible.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseInfo {
    /// The dataset it is a release of.
    pub dataset: String,
    /// Its number within the dataset: 1, 2, ... in commit order.
    pub number: i64,
    /// The lake's UUID for the release (its data directory and manifest name).
    pub release_id: String,
    /// Lake path of its manifest, which lists every file.
    pub manifest_path: String,
    /// When it was committed (RFC 3339, UTC).
    pub created_at: String,
    /// Login name of whoever ran the ingest.
    pub created_by: String,
    /// Rows stored, all tables together.
    pub rows: i64,
    /// Rows rejected into the quarantine.
    pub quarantined: i64,
}

/// What an ingest asks the store to commit, atomically.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// The dataset, registered by this commit if new.
    pub dataset: DatasetName,
    /// The source data model; recorded for the dataset only on its first release.
    pub model: String,
    /// The lake's UUID for the release, as in its manifest.
    pub release_id: String,
    /// Lake path of the manifest, already durable (see `agora_lake::ReleaseWriter`).
    pub manifest_path: String,
    /// Login name of whoever ran the ingest.
    pub created_by: String,
    /// Rows stored, all tables together.
    pub rows: i64,
    /// Rows rejected into the quarantine.
    pub quarantined: i64,
    /// `(person_key, check_value)` pairs first seen in this release.
    pub new_persons: Vec<(i64, i64)>,
}

/// The content fingerprint of the files a release is ingested from (see
/// [`MetaStore::commit_release_from`]).
#[derive(Debug, Clone)]
pub struct SourceFingerprint {
    /// Digest of the source files' contents, computed by the ingest; compared as text.
    pub fingerprint: String,
    /// Commit even if a release of the dataset was ingested from the same files.
    pub allow_duplicate: bool,
}

impl MetaStore {
    /// Opens (creating if needed) the SQLite store at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        Self::open(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Opens the store named by `url` (`sqlite://...` or `postgres://...`) and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let scheme = url.split(':').next().unwrap_or_default();
        let sqlite = match scheme {
            "sqlite" => true,
            "postgres" | "postgresql" => false,
            other => return Err(Error::UnsupportedUrl(other.to_owned())),
        };
        let pool = AnyPoolOptions::new()
            // SQLite serializes writers anyway; a small pool avoids lock contention.
            .max_connections(if sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL: readers never block the writer. synchronous stays FULL (the
                        // default) so a committed release survives a power cut.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        migrate::run(&pool).await?;
        Ok(Self {
            pool,
            sqlite,
            clock: Arc::new(SystemClock),
            config: Arc::new(GovernConfig::default()),
            dummy_hash: Arc::default(),
        })
    }

    /// The same store reading time from `clock` (tests use a [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same store applying `config` (sessions, logins, passwords, deadlines).
    pub fn with_config(mut self, config: GovernConfig) -> Self {
        self.config = Arc::new(config);
        self.dummy_hash = Arc::default();
        self
    }

    /// The governance policy this store applies.
    pub fn config(&self) -> &GovernConfig {
        &self.config
    }

    /// The store clock's current time, at the store's precision (microseconds).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        truncate(self.clock.now())
    }

    /// Whether this store runs on PostgreSQL (otherwise SQLite).
    pub fn is_postgres(&self) -> bool {
        !self.sqlite
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the connection pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every registered dataset, by name.
    pub async fn list_datasets(&self) -> Result<Vec<DatasetInfo>> {
        let rows = sqlx::query(
            "SELECT d.name, d.model, d.created_at, MAX(r.number) AS latest \
             FROM datasets d LEFT JOIN releases r ON r.dataset = d.name \
             GROUP BY d.name, d.model, d.created_at ORDER BY d.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// The dataset called `name`, if registered.
    pub async fn dataset(&self, name: &DatasetName) -> Result<Option<DatasetInfo>> {
        let row = sqlx::query(
            "SELECT d.name, d.model, d.created_at, MAX(r.number) AS latest \
             FROM datasets d LEFT JOIN releases r ON r.dataset = d.name \
             WHERE d.name = $1 GROUP BY d.name, d.model, d.created_at",
        )
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    /// Every release of `dataset`, oldest first; empty if the dataset is unknown.
    pub async fn releases(&self, dataset: &DatasetName) -> Result<Vec<ReleaseInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{RELEASE_COLUMNS} WHERE dataset = $1 ORDER BY number"
        )))
        .bind(dataset.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// Release `number` of `dataset`, or its latest release when `number` is `None`.
    pub async fn release(
        &self,
        dataset: &DatasetName,
        number: Option<i64>,
    ) -> Result<Option<ReleaseInfo>> {
        let query = match number {
            Some(n) => sqlx::query(AssertSqlSafe(format!(
                "{RELEASE_COLUMNS} WHERE dataset = $1 AND number = $2"
            )))
            .bind(dataset.as_str())
            .bind(n),
            None => sqlx::query(AssertSqlSafe(format!(
                "{RELEASE_COLUMNS} WHERE dataset = $1 ORDER BY number DESC LIMIT 1"
            )))
            .bind(dataset.as_str()),
        };
        let row = query.fetch_optional(&self.pool).await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Release ids the store has committed for `dataset`: everything else in the lake under
    /// that dataset is garbage from failed ingests.
    pub async fn committed_release_ids(&self, dataset: &DatasetName) -> Result<HashSet<String>> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT release_id FROM releases WHERE dataset = $1")
                .bind(dataset.as_str())
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().collect())
    }

    /// For each of `keys` already registered, its check value.
    pub async fn lookup_person_keys(&self, keys: &[i64]) -> Result<HashMap<i64, i64>> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let sql = format!(
                "SELECT person_key, check_value FROM person_keys WHERE person_key IN ({})",
                placeholders(chunk.len(), 1, 0)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(found)
    }

    /// The first release of `dataset` ingested from files with this content fingerprint.
    pub async fn release_from_source(
        &self,
        dataset: &DatasetName,
        fingerprint: &str,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(number) FROM releases WHERE dataset = $1 AND source_fingerprint = $2",
        )
        .bind(dataset.as_str())
        .bind(fingerprint)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Commits a release: registers the dataset on first use, registers the release's new
    /// person keys and inserts the release row with the next number, all in one transaction.
    /// Until this returns, readers cannot see the release; after it returns, it is durable.
    pub async fn commit_release(&self, new: NewRelease) -> Result<ReleaseInfo> {
        self.commit_release_from(new, None).await
    }

    /// [`MetaStore::commit_release`], recording the fingerprint of the source files. Unless
    /// duplicates are allowed, a release of the dataset with the same fingerprint makes the
    /// commit fail with [`Error::DuplicateSource`] (checked in the transaction, so two
    /// ingests of the same files racing on two nodes cannot both commit).
    pub async fn commit_release_from(
        &self,
        new: NewRelease,
        source: Option<SourceFingerprint>,
    ) -> Result<ReleaseInfo> {
        let now = now_utc();
        let mut tx = self.pool.begin().await?;
        // Taking the write lock first (SQLite) / inserting first (PostgreSQL) serializes
        // concurrent commits of one dataset on the release-number primary key.
        sqlx::query(
            "INSERT INTO datasets (name, model, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(new.dataset.as_str())
        .bind(&new.model)
        .bind(&now)
        .execute(&mut *tx)
        .await?;

        for chunk in new.new_persons.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO person_keys (person_key, check_value, first_release) VALUES {} \
                 ON CONFLICT (person_key) DO NOTHING",
                (0..chunk.len())
                    .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (key, check) in chunk {
                query = query.bind(*key).bind(*check).bind(&new.release_id);
            }
            query.execute(&mut *tx).await?;
            // A concurrent ingest may have registered the same key for a *different*
            // identity since we looked: refuse rather than merge two people.
            let sql = format!(
                "SELECT person_key, check_value FROM person_keys WHERE person_key IN ({})",
                placeholders(chunk.len(), 1, 0)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (key, _) in chunk {
                query = query.bind(*key);
            }
            let stored: HashMap<i64, i64> = query
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?;
            if chunk.iter().any(|(k, c)| stored.get(k) != Some(c)) {
                return Err(Error::Conflict(
                    "a concurrent ingest registered a conflicting person key; retry the ingest"
                        .into(),
                ));
            }
        }

        if let Some(source) = source.as_ref().filter(|s| !s.allow_duplicate) {
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(number) FROM releases WHERE dataset = $1 AND source_fingerprint = $2",
            )
            .bind(new.dataset.as_str())
            .bind(&source.fingerprint)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(release) = first {
                return Err(Error::DuplicateSource {
                    dataset: new.dataset.to_string(),
                    release,
                });
            }
        }

        let number: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE dataset = $1",
        )
        .bind(new.dataset.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO releases (dataset, number, release_id, manifest_path, created_at, \
             created_by, row_count, quarantined, source_fingerprint) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new.dataset.as_str())
        .bind(number)
        .bind(&new.release_id)
        .bind(&new.manifest_path)
        .bind(&now)
        .bind(&new.created_by)
        .bind(new.rows)
        .bind(new.quarantined)
        .bind(source.map(|s| s.fingerprint))
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(match e {
                sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(format!(
                    "another release of dataset {} was committed concurrently; retry the ingest",
                    new.dataset
                )),
                other => other.into(),
            });
        }
        let entry = crate::NewAuditEntry::operations("release.committed", &new.created_by)
            .with("dataset", new.dataset.as_str())
            .with("release", number)
            .with("release_id", new.release_id.as_str())
            .with("rows", new.rows)
            .with("quarantined", new.quarantined);
        crate::audit::append(&mut tx, crate::clock::parse_ts(&now)?, vec![entry]).await?;
        tx.commit().await?;
        Ok(ReleaseInfo {
            dataset: new.dataset.to_string(),
            number,
            release_id: new.release_id,
            manifest_path: new.manifest_path,
            created_at: now,
            created_by: new.created_by,
            rows: new.rows,
            quarantined: new.quarantined,
        })
    }
}

const RELEASE_COLUMNS: &str = "SELECT dataset, number, release_id, manifest_path, created_at, \
     created_by, row_count, quarantined FROM releases";

fn placeholders(n: usize, per_row: usize, offset: usize) -> String {
    (0..n)
        .map(|i| format!("${}", offset + i * per_row + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dataset_from_row(row: &AnyRow) -> Result<DatasetInfo> {
    Ok(DatasetInfo {
        name: row.try_get(0)?,
        model: row.try_get(1)?,
        created_at: row.try_get(2)?,
        latest_release: row.try_get(3)?,
    })
}

fn release_from_row(row: &AnyRow) -> Result<ReleaseInfo> {
    Ok(ReleaseInfo {
        dataset: row.try_get(0)?,
        number: row.try_get(1)?,
        release_id: row.try_get(2)?,
        manifest_path: row.try_get(3)?,
        created_at: row.try_get(4)?,
        created_by: row.try_get(5)?,
        rows: row.try_get(6)?,
        quarantined: row.try_get(7)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh SQLite store in a temporary directory (kept alive by the guard).
    pub(crate) async fn store() -> (tempfile::TempDir, MetaStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open_sqlite(&dir.path().join("meta.db"))
            .await
            .unwrap();
        (dir, store)
    }

    fn release(ds: &str, id: &str, persons: Vec<(i64, i64)>) -> NewRelease {
        NewRelease {
            dataset: ds.parse().unwrap(),
            model: "omop-cdm-5.4".into(),
            release_id: id.into(),
            manifest_path: format!("datasets/{ds}/manifests/{id}.json"),
            created_by: "test".into(),
            rows: 10,
            quarantined: 1,
            new_persons: persons,
        }
    }

    #[tokio::test]
    async fn releases_are_numbered_per_dataset() {
        let (_dir, store) = store().await;
        assert_eq!(
            store
                .commit_release(release("a", "r1", vec![]))
                .await
                .unwrap()
                .number,
            1
        );
        assert_eq!(
            store
                .commit_release(release("a", "r2", vec![]))
                .await
                .unwrap()
                .number,
            2
        );
        assert_eq!(
            store
                .commit_release(release("b", "r3", vec![]))
                .await
                .unwrap()
                .number,
            1
        );
        let a: DatasetName = "a".parse().unwrap();
        assert_eq!(
            store.release(&a, None).await.unwrap().unwrap().release_id,
            "r2"
        );
        assert_eq!(
            store
                .release(&a, Some(1))
                .await
                .unwrap()
                .unwrap()
                .release_id,
            "r1"
        );
        assert!(store.release(&a, Some(3)).await.unwrap().is_none());
        let names: Vec<_> = store
            .list_datasets()
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.name, d.latest_release))
            .collect();
        assert_eq!(names, vec![("a".into(), Some(2)), ("b".into(), Some(1))]);
        assert_eq!(store.committed_release_ids(&a).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn person_registry_detects_conflicting_checks() {
        let (_dir, store) = store().await;
        store
            .commit_release(release("a", "r1", vec![(1, 10), (2, 20)]))
            .await
            .unwrap();
        let found = store.lookup_person_keys(&[1, 2, 3]).await.unwrap();
        assert_eq!(found, HashMap::from([(1, 10), (2, 20)]));
        // Same identity again: fine (idempotent).
        store
            .commit_release(release("a", "r2", vec![(1, 10)]))
            .await
            .unwrap();
        // Same key, different identity: refused, and nothing of that release is committed.
        let err = store
            .commit_release(release("a", "r3", vec![(3, 30), (2, 99)]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        let a: DatasetName = "a".parse().unwrap();
        assert_eq!(store.releases(&a).await.unwrap().len(), 2);
        assert!(store.lookup_person_keys(&[3]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn many_persons_commit_in_chunks() {
        let (_dir, store) = store().await;
        let persons: Vec<_> = (1..=2_000).map(|k| (k, -k)).collect();
        store
            .commit_release(release("a", "r1", persons))
            .await
            .unwrap();
        let keys: Vec<i64> = (1..=2_500).collect();
        assert_eq!(store.lookup_person_keys(&keys).await.unwrap().len(), 2_000);
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_skips_applied_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        MetaStore::open_sqlite(&path)
            .await
            .unwrap()
            .commit_release(release("a", "r1", vec![]))
            .await
            .unwrap();
        let store = MetaStore::open_sqlite(&path).await.unwrap();
        assert_eq!(store.list_datasets().await.unwrap().len(), 1);
    }
}
