//! Researcher workspaces built from data permits: only the permit's tables, columns and
//! rows, opted-out persons removed, nothing once the permit stops being usable.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use agora_govern::{
    ApplicationForm, ApplicationState as S, DatasetScope, DateRange, ManualClock, MetaStore,
    NewUser, OptOutChannel, OutputPolicy, PermitGrant, Precision, Principal, ReleasePolicy,
    ReleaseSelector, RequestedDataset, RequestedTable, Role, RowFilter, TableScope,
};
use agora_ingest::omop::{IdentitySource, OmopIngest, ingest_omop};
use agora_ingest::{Hub, IngestOptions};
use agora_lake::Lake;
use agora_privacy::{HubSecret, ProjectPseudonyms, PseudonymKeys};
use agora_query::{Error, Grant, PermitScope, QueryEngine, QueryLimits, QueryOutput};
use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::util::pretty::pretty_format_batches;

struct Env {
    _dir: tempfile::TempDir,
    meta: MetaStore,
    lake: Lake,
    engine: QueryEngine,
    clock: Arc<ManualClock>,
    /// The hub's per-project pseudonym keys (the query service's, in production).
    keys: PseudonymKeys,
    op: Principal,
    rev: Principal,
    alice: Principal,
}

fn p(name: &str, role: Role) -> Principal {
    Principal {
        name: name.into(),
        roles: vec![role],
    }
}

/// A hub holding the Synthea27Nj extract as dataset `omop`, release 1, and four users.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let meta = MetaStore::open_sqlite(&dir.path().join("meta.db"))
        .await
        .unwrap()
        .with_clock(clock.clone());
    let lake = Lake::open_local(dir.path().join("lake")).unwrap();
    let hub = Hub {
        lake: lake.clone(),
        meta: meta.clone(),
        secret: HubSecret::from_bytes([7; 32]),
        locks_dir: dir.path().join("locks"),
        data_dir: dir.path().to_path_buf(),
    };
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/omop/synthea27nj_csv");
    ingest_omop(
        &hub,
        OmopIngest {
            options: IngestOptions {
                dataset: "omop".parse().unwrap(),
                source: fixture,
                actor: "test".into(),
                progress: false,
                dry_run: false,
                allow_duplicate: false,
            },
            identity: IdentitySource::SourceValue,
            cdm_version: None,
        },
    )
    .await
    .unwrap();
    let token = meta.create_token("root", &[Role::Operator]).await.unwrap();
    let root = meta.authenticate(&token).await.unwrap().unwrap();
    for (id, role) in [
        ("op", Role::Operator),
        ("rev", Role::Reviewer),
        ("alice", Role::Researcher),
        ("carol", Role::Researcher),
    ] {
        meta.create_user(
            &root,
            NewUser {
                id: id.into(),
                display_name: format!("User {id}"),
                email: None,
                roles: vec![role],
            },
        )
        .await
        .unwrap();
    }
    Env {
        _dir: dir,
        engine: QueryEngine::new(lake.clone()),
        meta,
        lake,
        clock,
        keys: PseudonymKeys::new(&HubSecret::from_bytes([7; 32])),
        op: p("op", Role::Operator),
        rev: p("rev", Role::Reviewer),
        alice: p("alice", Role::Researcher),
    }
}

/// Adults (18+ in 2026) in `person`; conditions starting in 2015–2020.
fn scope() -> Vec<TableScope> {
    vec![
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
                to: NaiveDate::from_ymd_opt(2020, 12, 31),
            }],
            precision: Default::default(),
        },
    ]
}

impl Env {
    /// An active project of alice's with a permit on `tables` of `omop` release 1; returns
    /// the permit id.
    async fn active_permit(&self, tables: Vec<TableScope>) -> String {
        self.active_permit_on("omop", tables, OutputPolicy::default())
            .await
    }

    /// As [`Env::active_permit`], on release 1 of `dataset`, under `output`.
    async fn active_permit_on(
        &self,
        dataset: &str,
        tables: Vec<TableScope>,
        output: OutputPolicy,
    ) -> String {
        let form = ApplicationForm {
            title: "Care pathways".into(),
            purpose: "Describe care pathways".into(),
            public_interest: "Better follow-up".into(),
            legal_basis: "GDPR 6(1)(e) and 9(2)(j)".into(),
            organisation: "University Hospital".into(),
            requested: vec![RequestedDataset {
                dataset: dataset.into(),
                tables: tables
                    .iter()
                    .map(|t| RequestedTable {
                        table: t.table.clone(),
                        columns: t.columns.clone(),
                    })
                    .collect(),
            }],
            period: Some(DateRange {
                from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2020, 12, 31).unwrap(),
            }),
            identifiers: vec![],
            duration_months: 12,
            team: vec![],
        };
        let m = &self.meta;
        let id = m.create_application(&self.alice, form).await.unwrap().id;
        m.transition_application(&self.alice, &id, S::Submitted, None)
            .await
            .unwrap();
        m.transition_application(&self.rev, &id, S::UnderReview, None)
            .await
            .unwrap();
        let grant = PermitGrant {
            members: None,
            datasets: vec![DatasetScope {
                dataset: dataset.into(),
                release: ReleaseSelector::Number(1),
                tables,
            }],
            expires_at: None,
            output,
            expiry_beyond_request_reason: None,
        };
        let permit = m
            .approve_application(&self.rev, &id, grant, None)
            .await
            .unwrap();
        m.transition_application(&self.op, &id, S::Active, None)
            .await
            .unwrap();
        permit.id
    }

    /// The hub as the ingest sees it (the same store, lake and secret).
    fn ingest_hub(&self) -> Hub {
        Hub {
            lake: self.lake.clone(),
            meta: self.meta.clone(),
            secret: HubSecret::from_bytes([7; 32]),
            locks_dir: self._dir.path().join("locks"),
            data_dir: self._dir.path().to_path_buf(),
        }
    }

    async fn scope(&self, permit: &str) -> agora_query::Result<PermitScope> {
        PermitScope::resolve(&self.meta, &self.lake, "alice", permit, &self.keys).await
    }

    /// The permutation the permit's project shows person keys through (what only the hub
    /// can compute: the test checks answers against it).
    async fn pseudonyms(&self, permit: &str) -> ProjectPseudonyms {
        self.keys
            .project(self.scope(permit).await.unwrap().project_id())
    }

    async fn researcher_sql(&self, permit: &str, sql: &str) -> agora_query::Result<QueryOutput> {
        let scope = self.scope(permit).await?;
        let ws = self
            .engine
            .permit_workspace(scope, QueryLimits::default())
            .await?;
        ws.sql(sql).await
    }

    /// The same SQL with an operator's full view of release 1.
    async fn operator_sql(&self, sql: &str) -> QueryOutput {
        let info = self
            .meta
            .release(&"omop".parse().unwrap(), Some(1))
            .await
            .unwrap()
            .unwrap();
        let grant = Grant::new(
            "op",
            "omop".parse().unwrap(),
            1,
            self.lake.read_manifest(&info.manifest_path).await.unwrap(),
        );
        let ws = self
            .engine
            .workspace(grant, QueryLimits::default())
            .await
            .unwrap();
        ws.sql(sql).await.unwrap()
    }
}

fn int(out: &QueryOutput) -> i64 {
    let col = out.batches[0].column(0);
    col.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// Every column of the first row, as integers.
fn row(out: &QueryOutput) -> Vec<i64> {
    out.batches[0]
        .columns()
        .iter()
        .map(|c| c.as_any().downcast_ref::<Int64Array>().unwrap().value(0))
        .collect()
}

fn ints(out: &QueryOutput) -> Vec<i64> {
    out.batches
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_permit_session_sees_only_its_tables_columns_and_rows() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;

    let scope = env.scope(&permit).await.unwrap();
    assert_eq!(scope.releases().count(), 1);
    let ws = env
        .engine
        .permit_workspace(scope, QueryLimits::default())
        .await
        .unwrap();
    assert_eq!(ws.tables(), ["omop.condition_occurrence", "omop.person"]);

    // Only the permitted columns, in permit order.
    let out = ws.sql("SELECT * FROM person LIMIT 1").await.unwrap();
    let names: Vec<_> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["person_id", "year_of_birth", "gender_concept_id"]);

    // Only the permitted rows: the same counts as the operator's filtered queries.
    let adults = env
        .operator_sql("SELECT count(*) FROM person WHERE year_of_birth <= 2008")
        .await;
    let all = env.operator_sql("SELECT count(*) FROM person").await;
    assert!(
        int(&adults) > 0 && int(&adults) < int(&all),
        "fixture has minors and adults"
    );
    assert_eq!(
        int(&ws.sql("SELECT count(*) FROM person").await.unwrap()),
        int(&adults)
    );
    let in_period = env
        .operator_sql(
            "SELECT count(*) FROM condition_occurrence \
             WHERE condition_start_date BETWEEN DATE '2015-01-01' AND DATE '2020-12-31'",
        )
        .await;
    assert!(int(&in_period) > 0);
    assert_eq!(
        int(&ws
            .sql("SELECT count(*) FROM omop.condition_occurrence")
            .await
            .unwrap()),
        int(&in_period)
    );

    // Whatever is not permitted does not exist.
    for sql in [
        "SELECT race_concept_id FROM person",
        "SELECT * FROM drug_exposure",
        "SELECT * FROM omop.death",
        "SELECT * FROM agora.omop.visit_occurrence",
    ] {
        let err = ws.sql(sql).await.unwrap_err();
        assert!(
            matches!(err, Error::UndefinedTable(_) | Error::UndefinedColumn(_)),
            "{sql}: {err:?}"
        );
    }
    let listed = ws
        .sql(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema <> 'information_schema' ORDER BY table_name",
        )
        .await
        .unwrap();
    let listed = pretty_format_batches(&listed.batches).unwrap().to_string();
    assert!(listed.contains("person") && listed.contains("condition_occurrence"));
    assert!(
        !listed.contains("drug_exposure") && !listed.contains("agora_opted_out"),
        "{listed}"
    );
}

#[tokio::test]
async fn row_filters_reach_the_parquet_scan() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    let plan = env
        .researcher_sql(&permit, "EXPLAIN SELECT count(*) FROM condition_occurrence")
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan.batches).unwrap().to_string();
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_else(|| panic!("{plan}"));
    assert!(
        scan.contains("predicate=") && scan.contains("condition_start_date"),
        "the permit's period filter is not pushed into the Parquet scan:\n{plan}"
    );
}

#[tokio::test]
async fn opted_out_persons_vanish_from_every_table_until_withdrawn() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    // An adult with conditions in the period.
    let who = int(&env
        .operator_sql(
            "SELECT min(c.person_id) FROM condition_occurrence c JOIN person p USING (person_id) \
             WHERE p.year_of_birth <= 2008 \
             AND c.condition_start_date BETWEEN DATE '2015-01-01' AND DATE '2020-12-31'",
        )
        .await);
    // The researcher knows the person by the project's pseudonym only.
    let seen_as = env.pseudonyms(&permit).await.pseudonym(who).unwrap();
    let count = |table: &'static str| {
        let env = &env;
        let permit = permit.clone();
        async move {
            let sql = format!("SELECT count(*) FROM {table} WHERE person_id = {seen_as}");
            int(&env.researcher_sql(&permit, &sql).await.unwrap())
        }
    };
    let persons = env
        .researcher_sql(&permit, "SELECT count(*) FROM person")
        .await
        .unwrap();
    assert_eq!(count("person").await, 1);
    assert!(count("condition_occurrence").await > 0);

    let receipt = env
        .meta
        .opt_out(who, OptOutChannel::Operator, "op")
        .await
        .unwrap();
    assert_eq!(count("person").await, 0);
    assert_eq!(count("condition_occurrence").await, 0);
    let after = env
        .researcher_sql(&permit, "SELECT count(*) FROM person")
        .await
        .unwrap();
    assert_eq!(
        int(&after),
        int(&persons) - 1,
        "only that person is excluded"
    );
    // Not through a join or a subquery either.
    let ids = env
        .researcher_sql(
            &permit,
            "SELECT DISTINCT c.person_id FROM condition_occurrence c \
             JOIN person p ON p.person_id = c.person_id ORDER BY 1",
        )
        .await
        .unwrap();
    assert!(!ints(&ids).contains(&seen_as) && !ints(&ids).contains(&who));

    env.meta
        .withdraw_opt_out(&receipt.receipt_id, "op")
        .await
        .unwrap();
    assert_eq!(count("person").await, 1);
}

#[tokio::test]
async fn no_usable_permit_means_no_session_and_one_answer() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    let refuse = |user: &'static str, id: String| {
        let env = &env;
        async move {
            PermitScope::resolve(&env.meta, &env.lake, user, &id, &env.keys)
                .await
                .unwrap_err()
        }
    };
    let not_member = refuse("carol", permit.clone()).await;
    let unknown = refuse("alice", "permit-0000".into()).await;
    assert!(matches!(not_member, Error::NoPermit));
    assert_eq!(not_member.to_string(), unknown.to_string());

    // Expiry takes effect at once, with no sweep.
    env.clock.advance(TimeDelta::days(400));
    assert!(matches!(
        refuse("alice", permit.clone()).await,
        Error::NoPermit
    ));
}

#[tokio::test]
async fn revocation_takes_effect_for_the_next_session() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    env.researcher_sql(&permit, "SELECT 1").await.unwrap();
    env.meta
        .revoke_permit(&env.op, &permit, "misuse reported")
        .await
        .unwrap();
    let err = env.researcher_sql(&permit, "SELECT 1").await.unwrap_err();
    assert!(matches!(err, Error::NoPermit), "{err}");
}

#[tokio::test]
async fn a_permit_that_names_what_the_release_lacks_is_refused_clearly() {
    let env = env().await;
    let mut tables = scope();
    tables[0].columns.push("shoe_size".into());
    let permit = env.active_permit(tables).await;
    let err = env.researcher_sql(&permit, "SELECT 1").await.unwrap_err();
    assert!(matches!(err, Error::Permit(_)), "{err}");
    assert!(err.to_string().contains("shoe_size"), "{err}");
}

#[tokio::test]
async fn rows_the_permit_hides_never_reach_the_researchers_expressions() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    let adult = int(&env
        .operator_sql(
            "SELECT min(c.person_id) FROM condition_occurrence c JOIN person p USING (person_id) \
             WHERE p.year_of_birth <= 2008",
        )
        .await);
    let minor = int(&env
        .operator_sql("SELECT min(person_id) FROM person WHERE year_of_birth > 2008")
        .await);
    env.meta
        .opt_out(adult, OptOutChannel::Operator, "op")
        .await
        .unwrap();
    // Division by zero exactly on the hidden person: an error would tell they exist.
    let pseudonyms = env.pseudonyms(&permit).await;
    for (table, who) in [
        ("person", adult),
        ("person", minor),
        ("condition_occurrence", adult),
    ] {
        // The researcher's probe names the person as the project knows them.
        let seen_as = pseudonyms.pseudonym(who).unwrap();
        let researcher_probe =
            format!("SELECT count(*) FROM {table} WHERE 1 / (person_id - {seen_as}) > -2");
        let probe = format!("SELECT count(*) FROM {table} WHERE 1 / (person_id - {who}) > -2");
        let visible = int(&env
            .researcher_sql(&permit, &format!("SELECT count(*) FROM {table}"))
            .await
            .unwrap());
        let out = env.researcher_sql(&permit, &researcher_probe).await;
        assert_eq!(int(&out.unwrap()), visible, "{researcher_probe}");
        // The same probe fails where the row is visible: the test can see a leak.
        let grant = env
            .meta
            .release(&"omop".parse().unwrap(), Some(1))
            .await
            .unwrap()
            .unwrap();
        let ws = env
            .engine
            .workspace(
                Grant::new(
                    "op",
                    "omop".parse().unwrap(),
                    1,
                    env.lake.read_manifest(&grant.manifest_path).await.unwrap(),
                ),
                QueryLimits::default(),
            )
            .await
            .unwrap();
        assert!(
            ws.sql(&probe).await.is_err(),
            "{probe} should fail on the full table"
        );
    }
    // Filters that cannot fail still prune at the Parquet scan.
    let plan = env
        .researcher_sql(
            &permit,
            "EXPLAIN SELECT count(*) FROM condition_occurrence WHERE condition_concept_id = 4112343",
        )
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan.batches).unwrap().to_string();
    let scan = plan.lines().find(|l| l.contains("DataSourceExec")).unwrap();
    assert!(scan.contains("condition_concept_id"), "{plan}");
}

#[tokio::test]
async fn plan_metrics_are_refused_in_a_permit_workspace() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    for sql in [
        "EXPLAIN ANALYZE SELECT count(*) FROM person",
        "EXPLAIN VERBOSE SELECT count(*) FROM person",
    ] {
        let err = env.researcher_sql(&permit, sql).await.unwrap_err();
        assert!(matches!(err, Error::Sql(_)), "{sql}: {err}");
        assert!(err.to_string().contains("EXPLAIN ANALYZE"), "{err}");
    }
    env.researcher_sql(&permit, "EXPLAIN SELECT count(*) FROM person")
        .await
        .unwrap();
}

/// `cohort` names its person in `subject_id` (re-keyed at ingest): the opt-out anti-join
/// must use that column, or opted-out persons would stay in a granted cohort table.
#[tokio::test]
async fn opt_outs_reach_cohort_rows_through_subject_id() {
    let env = env().await;
    let mut tables = scope();
    tables.push(TableScope {
        table: "cohort".into(),
        columns: vec!["cohort_definition_id".into(), "subject_id".into()],
        row_filters: vec![],
        precision: Default::default(),
    });
    let permit = env.active_permit(tables).await;
    let who = int(&env.operator_sql("SELECT min(person_id) FROM person").await);
    env.meta
        .opt_out(who, OptOutChannel::Operator, "op")
        .await
        .unwrap();
    let plan = env
        .researcher_sql(&permit, "EXPLAIN SELECT subject_id FROM cohort")
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan.batches).unwrap().to_string();
    assert!(
        plan.lines()
            .any(|l| l.contains("Anti") && l.contains("subject_id")),
        "no anti-join on cohort.subject_id:\n{plan}"
    );
    // `subject_id` is a person key: shown as the project's pseudonym, like `person_id`.
    assert!(
        plan.lines()
            .any(|l| l.contains("agora_pseudonym") && l.contains("subject_id")),
        "cohort.subject_id is not pseudonymized:\n{plan}"
    );
}

/// Issue 11, item 13: a citizen who opts out typing their identifier differently from the
/// source (case, braces, spaces) is still the person ingest keyed, and leaves the permit's
/// person set.
#[tokio::test]
async fn regression_issue_11_13_an_opt_out_typed_as_a_variant_excludes_the_person() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    let persons = |env: &'static Env, permit: String| async move {
        ints(
            &env.researcher_sql(&permit, "SELECT person_id FROM person ORDER BY 1")
                .await
                .unwrap(),
        )
    };
    let env: &'static Env = Box::leak(Box::new(env));
    let before = persons(env, permit.clone()).await;
    // Person 1 of the fixture (born 1998, an adult in scope): person_source_value
    // 1007c05b-8d20-8fe6-6790-44622f8316df, typed in upper case, in braces, with spaces.
    let keyer = agora_privacy::PersonKeyer::new(&HubSecret::from_bytes([7; 32]));
    let recorded = env
        .meta
        .record_opt_out(
            &keyer,
            "  {1007C05B-8D20-8FE6-6790-44622F8316DF} ",
            agora_privacy::IdentityKind::Any,
            OptOutChannel::Portal,
            "citizen",
        )
        .await
        .unwrap();
    assert!(recorded.created);
    let keys = env.meta.opted_out_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    // The key is the one ingest gave the person (not a reservation for a stranger)...
    let everyone = ints(&env.operator_sql("SELECT person_id FROM person").await);
    assert!(everyone.contains(&keys[0]));
    let seen_as = env.pseudonyms(&permit).await.pseudonym(keys[0]).unwrap();
    assert!(before.contains(&seen_as));
    // ...and the person is gone from the researcher's person set, nobody else.
    let after = persons(env, permit.clone()).await;
    assert!(!after.contains(&seen_as));
    assert_eq!(after.len(), before.len() - 1);
    // The lower-case source form finds the same opt-out.
    let again = env
        .meta
        .record_opt_out(
            &keyer,
            "1007c05b-8d20-8fe6-6790-44622f8316df",
            agora_privacy::IdentityKind::Uuid,
            OptOutChannel::Portal,
            "citizen",
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.receipt, recorded.receipt);
}

/// Issue 14, item 3: inside a project every person key is the project's pseudonym of the hub
/// key — the same in every table, a bijection, applied after the policy's filters.
#[tokio::test]
async fn person_keys_are_the_projects_pseudonyms_in_every_table() {
    let env = env().await;
    let permit = env.active_permit(scope()).await;
    let pseudonyms = env.pseudonyms(&permit).await;

    // Exactly the pseudonyms of the permitted persons: one each, nobody else.
    let hub = ints(
        &env.operator_sql("SELECT person_id FROM person WHERE year_of_birth <= 2008")
            .await,
    );
    let mut expected: Vec<i64> = hub
        .iter()
        .map(|&k| pseudonyms.pseudonym(k).unwrap())
        .collect();
    expected.sort();
    let seen = ints(
        &env.researcher_sql(&permit, "SELECT person_id FROM person ORDER BY 1")
            .await
            .unwrap(),
    );
    assert_eq!(seen, expected);

    // The same pseudonyms in another table: the distinct persons with conditions in the
    // period are the pseudonyms of the operator's.
    let in_period = "condition_start_date BETWEEN DATE '2015-01-01' AND DATE '2020-12-31'";
    let mut expected: Vec<i64> = ints(
        &env.operator_sql(&format!(
            "SELECT DISTINCT person_id FROM condition_occurrence WHERE {in_period}"
        ))
        .await,
    )
    .iter()
    .map(|&k| pseudonyms.pseudonym(k).unwrap())
    .collect();
    expected.sort();
    let seen_conditions = ints(
        &env.researcher_sql(
            &permit,
            "SELECT DISTINCT person_id FROM condition_occurrence ORDER BY 1",
        )
        .await
        .unwrap(),
    );
    assert_eq!(seen_conditions, expected);

    // A join on person_id between two tables gives the operator's answer on hub keys.
    let operator_join = row(&env
        .operator_sql(&format!(
            "SELECT count(*), count(DISTINCT c.person_id) FROM condition_occurrence c \
             JOIN person p ON p.person_id = c.person_id \
             WHERE p.year_of_birth <= 2008 AND c.{in_period}"
        ))
        .await);
    let researcher_join = row(&env
        .researcher_sql(
            &permit,
            "SELECT count(*), count(DISTINCT c.person_id) FROM condition_occurrence c \
             JOIN person p ON p.person_id = c.person_id",
        )
        .await
        .unwrap());
    assert!(operator_join[0] > 0);
    assert_eq!(researcher_join, operator_join);

    // No raw hub key in any answer.
    let all_hub: HashSet<i64> = ints(&env.operator_sql("SELECT person_id FROM person").await)
        .into_iter()
        .collect();
    for answer in [&seen, &seen_conditions] {
        assert!(
            answer.iter().all(|k| !all_hub.contains(k)),
            "a hub key leaked"
        );
    }

    // The researcher's filters compare pseudonyms: the pseudonym finds the person (pushed
    // through the barrier or not), the hub key finds nobody.
    let who = hub[0];
    let seen_as = pseudonyms.pseudonym(who).unwrap();
    for (sql, want) in [
        (
            format!("SELECT count(*) FROM person WHERE person_id = {seen_as}"),
            1,
        ),
        (
            format!("SELECT count(*) FROM person WHERE person_id IN ({seen_as}, 1)"),
            1,
        ),
        (
            format!("SELECT count(*) FROM person WHERE person_id + 0 = {seen_as}"),
            1,
        ),
        (
            format!("SELECT count(*) FROM person WHERE person_id = {who}"),
            0,
        ),
    ] {
        let got = int(&env.researcher_sql(&permit, &sql).await.unwrap());
        assert_eq!(got, want, "{sql}");
    }

    // The pseudonym function is in the plan, not in the session: SQL cannot call it (to
    // pseudonymize chosen values), and the plan shows its name, never its key.
    for sql in [
        "SELECT agora_pseudonym(year_of_birth) FROM person",
        "SELECT agora_pseudonym(1)",
    ] {
        assert!(env.researcher_sql(&permit, sql).await.is_err(), "{sql}");
    }
    let plan = env
        .researcher_sql(&permit, "EXPLAIN SELECT person_id FROM person")
        .await
        .unwrap();
    let plan = pretty_format_batches(&plan.batches).unwrap().to_string();
    assert!(plan.contains("agora_pseudonym"), "{plan}");
}

/// Issue 14, item 3: two projects see the same person under unrelated ids, so their
/// results cannot be joined; the same project sees the same ids in every session.
#[tokio::test]
async fn two_projects_see_unrelated_pseudonyms_for_the_same_persons() {
    let env = env().await;
    let first = env.active_permit(scope()).await;
    let second = env.active_permit(scope()).await;
    let ids = |permit: String| {
        let env = &env;
        async move {
            ints(
                &env.researcher_sql(&permit, "SELECT person_id FROM person ORDER BY 1")
                    .await
                    .unwrap(),
            )
        }
    };
    let a = ids(first.clone()).await;
    let b = ids(second.clone()).await;
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    let b_set: HashSet<i64> = b.iter().copied().collect();
    assert!(
        a.iter().all(|x| !b_set.contains(x)),
        "two projects share ids"
    );
    // The same persons nonetheless: the hub maps each project's ids back to one hub key.
    let (pa, pb) = (env.pseudonyms(&first).await, env.pseudonyms(&second).await);
    assert_ne!(pa, pb);
    for &x in &a {
        let key = pa.hub_key(x).unwrap();
        assert!(b_set.contains(&pb.pseudonym(key).unwrap()));
    }
    // Stable across sessions of one project.
    assert_eq!(ids(first).await, a);
}

fn rows_policy() -> OutputPolicy {
    OutputPolicy {
        policy: ReleasePolicy::PseudonymizedRows,
        ..OutputPolicy::default()
    }
}

fn table(name: &str, columns: &[&str]) -> TableScope {
    TableScope {
        table: name.into(),
        columns: columns.iter().map(|c| (*c).into()).collect(),
        ..TableScope::default()
    }
}

fn column_names(out: &QueryOutput) -> Vec<String> {
    out.schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// Issue 14, item 4: under `pseudonymized-rows` the policy tables themselves minimise
/// potential identifiers, so nothing a researcher computes gets the exact values back; record
/// numbers are re-keyed for the project and still join.
#[tokio::test]
async fn pseudonymized_rows_minimise_identifiers_below_the_researchers_expressions() {
    let env = env().await;
    let scope = vec![
        table(
            "person",
            &[
                "person_id",
                "year_of_birth",
                "month_of_birth",
                "birth_datetime",
                "location_id",
                "gender_concept_id",
            ],
        ),
        table(
            "visit_occurrence",
            &["visit_occurrence_id", "person_id", "visit_start_date"],
        ),
        table(
            "condition_occurrence",
            &["person_id", "visit_occurrence_id", "condition_start_date"],
        ),
    ];
    let permit = env.active_permit_on("omop", scope, rows_policy()).await;
    let sql = |q: &'static str| env.researcher_sql(&permit, q);

    // Birth day and month and the address are not in the session at all.
    let person = sql("SELECT * FROM person").await.unwrap();
    assert_eq!(
        column_names(&person),
        [
            "person_id",
            "year_of_birth",
            "birth_datetime",
            "gender_concept_id"
        ]
    );
    for q in [
        "SELECT month_of_birth FROM person",
        "SELECT location_id FROM person",
    ] {
        assert!(sql(q).await.is_err(), "{q}");
    }
    // Birth dates to the year, care dates to the month, whatever the researcher computes.
    let exact_births = "SELECT count(*) FROM person WHERE birth_datetime IS NOT NULL AND \
                        (date_part('month', birth_datetime) <> 1 OR date_part('day', birth_datetime) <> 1)";
    assert!(int(&env.operator_sql(exact_births).await) > 0);
    assert_eq!(int(&sql(exact_births).await.unwrap()), 0);
    let exact_days =
        "SELECT count(*) FROM visit_occurrence WHERE date_part('day', visit_start_date) <> 1";
    assert!(int(&env.operator_sql(exact_days).await) > 0);
    assert_eq!(int(&sql(exact_days).await.unwrap()), 0);
    // Date arithmetic still works, on the minimised values.
    let ages = "SELECT count(*) FROM visit_occurrence v JOIN person p \
                ON v.person_id = p.person_id \
                WHERE v.visit_start_date - CAST(p.birth_datetime AS DATE) > 0";
    assert!(int(&sql(ages).await.unwrap()) > 0);

    // Visit numbers: none as stored, one each, and every join the stored ones make.
    let stored: HashSet<i64> = ints(
        &env.operator_sql("SELECT visit_occurrence_id FROM visit_occurrence")
            .await,
    )
    .into_iter()
    .collect();
    let shown = ints(
        &sql("SELECT DISTINCT visit_occurrence_id FROM visit_occurrence")
            .await
            .unwrap(),
    );
    assert_eq!(shown.len(), stored.len());
    assert!(shown.iter().all(|v| !stored.contains(v)));
    let joined = "SELECT count(*) FROM condition_occurrence c JOIN visit_occurrence v \
                  ON c.visit_occurrence_id = v.visit_occurrence_id AND c.person_id = v.person_id";
    let truth = int(&env.operator_sql(joined).await);
    assert!(truth > 0);
    assert_eq!(int(&sql(joined).await.unwrap()), truth);

    // The rows are released as such only under this policy.
    let aggregates = env
        .active_permit(vec![table("person", &["person_id"])])
        .await;
    let ws = env
        .engine
        .permit_workspace(
            env.scope(&aggregates).await.unwrap(),
            QueryLimits::default(),
        )
        .await
        .unwrap();
    assert!(matches!(
        ws.plan_rows("SELECT person_id FROM person").await,
        Err(Error::Permit(_))
    ));
}

/// A precision the permit grants replaces the default, and `exact` shows the value stored.
#[tokio::test]
async fn a_granted_precision_shows_the_identifier_as_granted() {
    let env = env().await;
    let mut person = table("person", &["person_id", "birth_datetime"]);
    person
        .precision
        .insert("birth_datetime".into(), Precision::Month);
    let mut visits = table("visit_occurrence", &["person_id", "visit_start_date"]);
    visits
        .precision
        .insert("visit_start_date".into(), Precision::Exact);
    let permit = env
        .active_permit_on("omop", vec![person, visits], rows_policy())
        .await;
    let dates = "SELECT CAST(visit_start_date AS VARCHAR) FROM visit_occurrence ORDER BY 1";
    let text = |out: &QueryOutput| pretty_format_batches(&out.batches).unwrap().to_string();
    assert_eq!(
        text(&env.researcher_sql(&permit, dates).await.unwrap()),
        text(&env.operator_sql(dates).await)
    );
    let months = "SELECT count(DISTINCT date_part('month', birth_datetime)) FROM person \
                  WHERE date_part('day', birth_datetime) <> 1";
    assert_eq!(int(&env.researcher_sql(&permit, months).await.unwrap()), 0);
    let months = "SELECT count(DISTINCT date_part('month', birth_datetime)) FROM person";
    assert!(int(&env.researcher_sql(&permit, months).await.unwrap()) > 1);
}

/// Table Schema person identifiers (SNDS `BEN_NIR_PSA`, stored `ben_nir_psa`) are hub keys
/// under the producer's names: the workspace re-keys them and applies opt-outs through them, and
/// under rows their dates and communes are minimised like OMOP's.
#[tokio::test]
async fn table_schema_person_identifiers_are_re_keyed_and_opted_out() {
    let env = env().await;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("beneficiaries.json"),
        r#"{"fields": [
            {"name": "BEN_NIR_PSA", "agora:identifier": "person"},
            {"name": "BEN_NAI_ANN", "type": "integer"},
            {"name": "BEN_NAI_MOI", "type": "integer"},
            {"name": "BEN_RES_COM"},
            {"name": "BEN_DCD_DTE", "type": "date"}
        ], "primaryKey": "BEN_NIR_PSA"}"#,
    )
    .unwrap();
    let mut csv = String::from("BEN_NIR_PSA,BEN_NAI_ANN,BEN_NAI_MOI,BEN_RES_COM,BEN_DCD_DTE\n");
    for i in 0..20 {
        csv.push_str(&format!(
            "NIR-{i:03},19{:02},{},750{:02},2020-03-{:02}\n",
            40 + i,
            1 + i % 12,
            i,
            1 + i
        ));
    }
    std::fs::write(src.path().join("beneficiaries.csv"), csv).unwrap();
    agora_ingest::tableschema::ingest_tableschema(
        &env.ingest_hub(),
        agora_ingest::tableschema::TableSchemaIngest {
            options: IngestOptions {
                dataset: "snds".parse().unwrap(),
                source: src.path().to_path_buf(),
                actor: "test".into(),
                progress: false,
                dry_run: false,
                allow_duplicate: false,
            },
            schemas: None,
            person_ids: vec![],
        },
    )
    .await
    .unwrap();
    let all = [
        "ben_nir_psa",
        "ben_nai_ann",
        "ben_nai_moi",
        "ben_res_com",
        "ben_dcd_dte",
    ];
    let aggregates = env
        .active_permit_on(
            "snds",
            vec![table("beneficiaries", &all)],
            OutputPolicy::default(),
        )
        .await;
    let rows = env
        .active_permit_on("snds", vec![table("beneficiaries", &all)], rows_policy())
        .await;
    let keys_sql = "SELECT ben_nir_psa FROM beneficiaries ORDER BY 1";
    let scope = env.scope(&aggregates).await.unwrap();
    let pseudonyms = env.keys.project(scope.project_id());
    let ws = env
        .engine
        .permit_workspace(scope, QueryLimits::default())
        .await
        .unwrap();
    let shown: HashSet<i64> = ints(&ws.sql(keys_sql).await.unwrap()).into_iter().collect();
    assert_eq!(shown.len(), 20);

    // The researcher's keys are the project's pseudonyms of the stored ones, none stored.
    let info = env
        .meta
        .release(&"snds".parse().unwrap(), Some(1))
        .await
        .unwrap()
        .unwrap();
    let grant = Grant::new(
        "op",
        "snds".parse().unwrap(),
        1,
        env.lake.read_manifest(&info.manifest_path).await.unwrap(),
    );
    let op = env
        .engine
        .workspace(grant, QueryLimits::default())
        .await
        .unwrap();
    let stored = ints(&op.sql(keys_sql).await.unwrap());
    let expected: HashSet<i64> = stored
        .iter()
        .map(|&k| pseudonyms.pseudonym(k).unwrap())
        .collect();
    assert_eq!(shown, expected);

    // An opt-out reaches the table through its identifier column.
    let keyer = agora_privacy::PersonKeyer::new(&HubSecret::from_bytes([7; 32]));
    env.meta
        .record_opt_out(
            &keyer,
            "NIR-007",
            agora_privacy::IdentityKind::Any,
            OptOutChannel::Portal,
            "citizen",
        )
        .await
        .unwrap();
    let opted = env.meta.opted_out_keys().await.unwrap();
    assert!(
        stored.contains(&opted[0]),
        "the opt-out names a stored person"
    );
    let after = ints(&env.researcher_sql(&aggregates, keys_sql).await.unwrap());
    assert_eq!(after.len(), 19);
    assert!(!after.contains(&pseudonyms.pseudonym(opted[0]).unwrap()));

    // Rows: month of birth and commune absent, the death date to the month.
    let out = env
        .researcher_sql(&rows, "SELECT * FROM beneficiaries")
        .await
        .unwrap();
    assert_eq!(
        column_names(&out),
        ["ben_nir_psa", "ben_nai_ann", "ben_dcd_dte"]
    );
    let days = "SELECT count(*) FROM beneficiaries WHERE date_part('day', ben_dcd_dte) <> 1";
    assert_eq!(int(&env.researcher_sql(&rows, days).await.unwrap()), 0);
}

/// FHIR ids are keys held as text: a Patient's id is its hub key, other resources' ids and
/// references are hub-wide keyed ids. In a project they are re-keyed — a Patient's id to the
/// same pseudonym as its `person_id`, references so they still join — and under rows the raw
/// resource (which holds every key and date) and the address are absent.
#[tokio::test]
async fn fhir_ids_and_references_are_re_keyed_for_the_project() {
    let env = env().await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/fhir/bulk_ndjson_10patients");
    agora_ingest::fhir::ingest_fhir(
        &env.ingest_hub(),
        agora_ingest::fhir::FhirIngest {
            options: IngestOptions {
                dataset: "fhir".parse().unwrap(),
                source: fixture,
                actor: "test".into(),
                progress: false,
                dry_run: false,
                allow_duplicate: false,
            },
            identity: agora_ingest::fhir::FhirIdentity::PatientId,
            views_dir: None,
            omop: false,
            vocabulary: None,
        },
    )
    .await
    .unwrap();
    let scope = vec![
        table("fhir_patient", &["id", "person_id", "resource"]),
        table(
            "patient",
            &[
                "id",
                "person_id",
                "gender",
                "birth_date",
                "city",
                "postal_code",
            ],
        ),
        table("encounter", &["id", "person_id", "period_start"]),
        table("condition", &["person_id", "encounter_id"]),
    ];
    let permit = env.active_permit_on("fhir", scope, rows_policy()).await;
    let sql = |q: &'static str| env.researcher_sql(&permit, q);
    assert_eq!(
        column_names(&sql("SELECT * FROM fhir_patient").await.unwrap()),
        ["id", "person_id"]
    );
    assert_eq!(
        column_names(&sql("SELECT * FROM patient").await.unwrap()),
        ["id", "person_id", "gender", "birth_date"]
    );
    for q in [
        "SELECT count(*) FROM fhir_patient WHERE id <> CAST(person_id AS VARCHAR)",
        "SELECT count(*) FROM patient WHERE id <> CAST(person_id AS VARCHAR)",
    ] {
        assert_eq!(int(&sql(q).await.unwrap()), 0, "{q}");
    }

    // References still join; no shown id is a stored one.
    let info = env
        .meta
        .release(&"fhir".parse().unwrap(), Some(1))
        .await
        .unwrap()
        .unwrap();
    let grant = Grant::new(
        "op",
        "fhir".parse().unwrap(),
        1,
        env.lake.read_manifest(&info.manifest_path).await.unwrap(),
    );
    let op = env
        .engine
        .workspace(grant, QueryLimits::default())
        .await
        .unwrap();
    let joined = "SELECT count(*) FROM condition c JOIN encounter e ON c.encounter_id = e.id";
    let truth = int(&op.sql(joined).await.unwrap());
    assert!(truth > 0);
    assert_eq!(int(&sql(joined).await.unwrap()), truth);
    let text = |out: &QueryOutput| pretty_format_batches(&out.batches).unwrap().to_string();
    let stored = text(&op.sql("SELECT id FROM encounter ORDER BY 1").await.unwrap());
    let shown = text(&sql("SELECT id FROM encounter ORDER BY 1").await.unwrap());
    let stored: HashSet<&str> = stored.lines().skip(3).collect();
    assert!(
        shown
            .lines()
            .skip(3)
            .all(|l| l.starts_with('+') || !stored.contains(l))
    );
}
