//! Test harness: every test runs against SQLite (always) and PostgreSQL (when
//! `AGORA_TEST_POSTGRES_URL` is set, e.g. by `ci/postgres.sh`). Each
//! PostgreSQL store lives in a schema of its own, so tests run in parallel.

use std::sync::Arc;

use agora_govern::{
    ApplicationForm, ApplicationState, DatasetScope, DateRange, GovernConfig, ManualClock,
    MetaStore, NewRelease, NewUser, PasswordPolicy, PermitGrant, PotentialIdentifier, Principal,
    ReleaseSelector, RequestedDataset, RequestedTable, Role, RowFilter, TableScope,
};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use sqlx::Connection;

pub(crate) const PG_ENV: &str = "AGORA_TEST_POSTGRES_URL";

/// Monday 2 March 2026, 09:00 UTC: where every test clock starts.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

pub(crate) fn test_config() -> GovernConfig {
    GovernConfig {
        passwords: PasswordPolicy::insecure_fast_for_tests(),
        ..GovernConfig::default()
    }
}

/// One store under test, with its clock.
pub(crate) struct Env {
    pub(crate) store: MetaStore,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) backend: &'static str,
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.store.now()
    }

    pub(crate) fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    /// A separate connection pool on the same database, to inspect stored rows.
    pub(crate) async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

/// An empty database (no migration applied) on each backend: `(backend, url, guard)`.
pub(crate) async fn empty_databases() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("meta.db").display());
    let mut out = vec![("sqlite", url, Some(dir))];
    if let Some(base) = pg_base_url() {
        out.push(("postgres", fresh_pg_schema(&base).await, None));
    }
    out
}

/// Fresh stores on every configured backend, with the test configuration.
pub(crate) async fn stores() -> Vec<Env> {
    stores_with(test_config()).await
}

pub(crate) async fn stores_with(config: GovernConfig) -> Vec<Env> {
    let mut out = Vec::new();
    for (backend, url, dir) in empty_databases().await {
        let clock = Arc::new(ManualClock::new(t0()));
        let store = MetaStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"))
            .with_clock(clock.clone())
            .with_config(config.clone());
        assert_eq!(store.is_postgres(), backend == "postgres");
        eprintln!("-- backend: {backend}");
        out.push(Env {
            store,
            clock,
            backend,
            url,
            _dir: dir,
        });
    }
    out
}

fn pg_base_url() -> Option<String> {
    std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty())
}

static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Creates a schema of its own for one test and returns a URL whose connections use it.
/// Schemas of earlier runs older than two hours are dropped (once per test process).
async fn fresh_pg_schema(base: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("{PG_ENV}: cannot connect: {e}"));
    let now = Utc::now().timestamp();
    SWEPT
        .get_or_init(|| async {
            let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
            let schemas: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'agora_it_%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            for schema in schemas {
                let created: i64 = schema
                    .split('_')
                    .nth(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if now - created > 2 * 3600 {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {schema} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
            conn.close().await.ok();
        })
        .await;
    let schema = format!("agora_it_{now}_{}", hex::encode(rand::random::<[u8; 6]>()));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}

pub(crate) fn p(name: &str, roles: &[Role]) -> Principal {
    Principal {
        name: name.into(),
        roles: roles.to_vec(),
    }
}

/// A hub with users and two datasets:
///
/// | user | roles |
/// |---|---|
/// | root | operator (bootstrap token) |
/// | op | operator |
/// | rev1, rev2 | reviewer |
/// | alice, bob, carol | researcher |
/// | rita | researcher + reviewer |
///
/// Datasets: `omop` (release 1) and `claims` (release 1).
pub(crate) struct Hub {
    pub(crate) env: Env,
    pub(crate) op: Principal,
    pub(crate) rev1: Principal,
    pub(crate) rev2: Principal,
    pub(crate) alice: Principal,
    pub(crate) bob: Principal,
    pub(crate) carol: Principal,
    pub(crate) rita: Principal,
}

impl std::ops::Deref for Hub {
    type Target = MetaStore;
    fn deref(&self) -> &MetaStore {
        &self.env.store
    }
}

pub(crate) async fn hubs() -> Vec<Hub> {
    let mut out = Vec::new();
    for env in stores().await {
        out.push(hub(env).await);
    }
    out
}

pub(crate) async fn hub(env: Env) -> Hub {
    let store = &env.store;
    let token = store.create_token("root", &[Role::Operator]).await.unwrap();
    let root = store.authenticate(&token).await.unwrap().unwrap();
    let users: &[(&str, &[Role])] = &[
        ("op", &[Role::Operator]),
        ("rev1", &[Role::Reviewer]),
        ("rev2", &[Role::Reviewer]),
        ("alice", &[Role::Researcher]),
        ("bob", &[Role::Researcher]),
        ("carol", &[Role::Researcher]),
        ("rita", &[Role::Researcher, Role::Reviewer]),
    ];
    for (id, roles) in users {
        store
            .create_user(
                &root,
                NewUser {
                    id: (*id).into(),
                    display_name: format!("User {id}"),
                    email: Some(format!("{id}@hub.example")),
                    roles: roles.to_vec(),
                },
            )
            .await
            .unwrap();
    }
    for ds in ["omop", "claims"] {
        store
            .commit_release(NewRelease {
                dataset: ds.parse().unwrap(),
                model: "omop-cdm-5.4".into(),
                release_id: format!("{ds}-r1"),
                manifest_path: format!("datasets/{ds}/manifests/{ds}-r1.json"),
                created_by: "test".into(),
                rows: 100,
                quarantined: 0,
                new_persons: vec![],
            })
            .await
            .unwrap();
    }
    Hub {
        env,
        op: p("op", &[Role::Operator]),
        rev1: p("rev1", &[Role::Reviewer]),
        rev2: p("rev2", &[Role::Reviewer]),
        alice: p("alice", &[Role::Researcher]),
        bob: p("bob", &[Role::Researcher]),
        carol: p("carol", &[Role::Researcher]),
        rita: p("rita", &[Role::Researcher, Role::Reviewer]),
    }
}

/// A complete application form: alice's project with bob on the team.
pub(crate) fn form() -> ApplicationForm {
    ApplicationForm {
        title: "Diabetes care pathways".into(),
        purpose: "Describe care pathways of adults with type 2 diabetes".into(),
        public_interest: "Improve follow-up of chronic disease".into(),
        legal_basis: "GDPR 6(1)(e) and 9(2)(j)".into(),
        organisation: "University Hospital of Somewhere".into(),
        requested: vec![RequestedDataset {
            dataset: "omop".into(),
            tables: vec![
                RequestedTable {
                    table: "person".into(),
                    columns: vec!["person_id".into(), "year_of_birth".into()],
                },
                RequestedTable {
                    table: "condition_occurrence".into(),
                    columns: vec![],
                },
            ],
        }],
        period: Some(DateRange {
            from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        }),
        identifiers: vec![PotentialIdentifier::BirthYearMonth],
        duration_months: 24,
        team: vec!["bob".into()],
    }
}

/// What the reviewers grant: two tables of `omop` release 1, with filters.
pub(crate) fn grant() -> PermitGrant {
    PermitGrant {
        members: None,
        datasets: vec![DatasetScope {
            dataset: "omop".into(),
            release: ReleaseSelector::Number(1),
            tables: vec![
                TableScope {
                    table: "person".into(),
                    columns: vec![
                        "person_id".into(),
                        "year_of_birth".into(),
                        "gender_concept_id".into(),
                    ],
                    row_filters: vec![RowFilter::AgeRange {
                        year_of_birth_column: "year_of_birth".into(),
                        min_age: Some(18),
                        max_age: None,
                        at_year: 2026,
                    }],
                    precision: Default::default(),
                },
                TableScope {
                    table: "condition_occurrence".into(),
                    columns: vec![
                        "person_id".into(),
                        "condition_concept_id".into(),
                        "condition_start_date".into(),
                    ],
                    row_filters: vec![RowFilter::Period {
                        column: "condition_start_date".into(),
                        from: NaiveDate::from_ymd_opt(2015, 1, 1),
                        to: NaiveDate::from_ymd_opt(2024, 12, 31),
                    }],
                    precision: Default::default(),
                },
            ],
        }],
        expires_at: None,
        output: Default::default(),
        expiry_beyond_request_reason: None,
    }
}

impl Hub {
    pub(crate) async fn draft(&self) -> String {
        self.create_application(&self.alice, form())
            .await
            .unwrap()
            .id
    }

    /// A new application of alice's (team: bob) moved to `state` by the right people.
    /// `expires_in` sets the permit's expiry for states that have one.
    pub(crate) async fn app_in(
        &self,
        state: ApplicationState,
        expires_in: Option<TimeDelta>,
    ) -> String {
        use ApplicationState as S;
        let id = self.draft().await;
        let path: &[S] = match state {
            S::Draft => &[],
            S::Submitted => &[S::Submitted],
            S::UnderReview => &[S::Submitted, S::UnderReview],
            S::ChangesRequested => &[S::Submitted, S::ChangesRequested],
            S::Rejected => &[S::Submitted, S::UnderReview, S::Rejected],
            S::Approved => &[S::Submitted, S::UnderReview, S::Approved],
            S::Active => &[S::Submitted, S::UnderReview, S::Approved, S::Active],
            S::Expired => &[
                S::Submitted,
                S::UnderReview,
                S::Approved,
                S::Active,
                S::Expired,
            ],
            S::Closed => &[S::Submitted, S::Closed],
        };
        for &to in path {
            match to {
                S::Submitted | S::Closed => {
                    self.transition_application(&self.alice, &id, to, None)
                        .await
                        .unwrap();
                }
                S::UnderReview | S::ChangesRequested | S::Rejected => {
                    self.transition_application(&self.rev1, &id, to, Some("ok"))
                        .await
                        .unwrap();
                }
                S::Approved => {
                    let mut g = grant();
                    if let Some(d) = expires_in.or(if state == S::Expired {
                        Some(TimeDelta::hours(1))
                    } else {
                        None
                    }) {
                        g.expires_at = Some(self.env.now() + d);
                    }
                    self.approve_application(&self.rev1, &id, g, Some("granted"))
                        .await
                        .unwrap();
                }
                S::Active => {
                    self.transition_application(&self.op, &id, to, None)
                        .await
                        .unwrap();
                }
                S::Expired => {
                    self.env.advance(TimeDelta::hours(2));
                    self.transition_application(&self.op, &id, to, None)
                        .await
                        .unwrap();
                }
                S::Draft => unreachable!(),
            }
        }
        id
    }

    pub(crate) async fn permit_id(&self, app: &str) -> String {
        self.application(&self.op, app)
            .await
            .unwrap()
            .permit_id
            .unwrap()
    }
}
