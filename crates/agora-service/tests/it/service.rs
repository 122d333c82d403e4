use std::time::Duration;

use agora_core::{ErrorKind, HasKind};
use agora_service::governance::{AccessOutcome, AccessTarget, NewUser, Role};
use agora_service::{Credential, Error, Front, Hub, QueryLimits, Target};
use futures::StreamExt;

use crate::support::{hub, operator, release};

/// A researcher with an API token, authenticated through the service.
async fn researcher(hub: &Hub) -> agora_service::Authenticated {
    let op = operator(hub).await;
    hub.governance()
        .create_user(
            op.principal(),
            NewUser {
                id: "rita".into(),
                display_name: "Rita".into(),
                email: None,
                roles: vec![Role::Researcher],
            },
        )
        .await
        .unwrap();
    let token = hub
        .governance()
        .issue_token(op.principal(), "rita", None)
        .await
        .unwrap();
    hub.query()
        .authenticate(Credential::Token(&token))
        .await
        .unwrap()
}

#[tokio::test]
async fn plan_knows_the_schema_then_the_answer_streams_and_is_recorded() {
    let env = hub().await;
    let who = operator(&env.hub).await;
    let session = env
        .hub
        .query()
        .open(&who, release(None), Front::Cli, QueryLimits::default())
        .await
        .unwrap();
    let sql = "SELECT gender_concept_id, COUNT(*) AS persons FROM person GROUP BY 1 ORDER BY 1";
    let planned = session.plan(sql).await.unwrap();
    let fields: Vec<_> = planned
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(fields, ["gender_concept_id", "persons"]);
    // Planning alone leaves no access event: nothing was read.
    assert!(
        env.hub
            .governance()
            .recent_access_events(10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut answer = planned.execute().await.unwrap();
    let events = env.hub.governance().recent_access_events(10).await.unwrap();
    assert_eq!(events.len(), 1, "recorded before the first batch is read");
    let e = &events[0];
    assert_eq!(e.outcome, AccessOutcome::Answered);
    assert_eq!(e.actor, "local:tester");
    assert_eq!(e.front, "cli");
    assert_eq!(e.statement, sql);
    assert_eq!(
        e.target,
        AccessTarget::Release {
            dataset: "omop".into(),
            release: 1
        }
    );
    let mut persons = 0i64;
    while let Some(batch) = answer.next().await {
        let batch = batch.unwrap();
        let counts = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap();
        persons += counts.iter().flatten().sum::<i64>();
    }
    assert_eq!(persons, 28);
}

#[tokio::test]
async fn refusals_are_recorded_with_their_kind_and_nothing_runs() {
    let env = hub().await;
    let who = operator(&env.hub).await;
    let session = env
        .hub
        .query()
        .open(&who, release(Some(1)), Front::Http, QueryLimits::default())
        .await
        .unwrap();
    for sql in [
        "DROP TABLE person",
        "CREATE TABLE x AS SELECT 1",
        "SELECT * FROM no_such_table",
        "COPY person TO '/tmp/x.csv'",
    ] {
        let err = session.plan(sql).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{sql}: {err}");
    }
    let events = env.hub.governance().recent_access_events(10).await.unwrap();
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e.outcome, AccessOutcome::Refused);
        assert_eq!(e.error_kind.as_deref(), Some("invalid_input"));
        assert_eq!(e.front, "http");
    }
}

#[tokio::test]
async fn a_limit_reached_mid_stream_ends_the_answer_and_is_recorded_as_a_failure() {
    let env = hub().await;
    let who = operator(&env.hub).await;
    let limits = QueryLimits {
        max_rows: 5,
        ..QueryLimits::default()
    };
    let session = env
        .hub
        .query()
        .open(&who, release(None), Front::Cli, limits)
        .await
        .unwrap();
    let err = session.sql("SELECT * FROM measurement").await.unwrap_err();
    assert!(matches!(err, Error::Query(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted, "{err}");
    // The failure is recorded beside the `answered` event, without holding the caller.
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        let events = env.hub.governance().recent_access_events(10).await.unwrap();
        outcomes = events.iter().map(|e| e.outcome).collect();
        if outcomes.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [AccessOutcome::Answered, AccessOutcome::Failed]);
}

#[tokio::test]
async fn a_release_is_for_operators_and_the_refusal_does_not_reveal_what_exists() {
    let env = hub().await;
    let rita = researcher(&env.hub).await;
    let mut messages = Vec::new();
    for target in [
        release(None),
        Target::Release {
            dataset: "nothing_here".parse().unwrap(),
            release: Some(7),
        },
    ] {
        let err = env
            .hub
            .query()
            .open(&rita, target, Front::Http, QueryLimits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        messages.push(err.to_string());
    }
    assert_eq!(messages[0], messages[1]);
}

#[tokio::test]
async fn a_permit_the_user_does_not_hold_is_one_error_whatever_the_reason() {
    let env = hub().await;
    let rita = researcher(&env.hub).await;
    let err = env
        .hub
        .query()
        .open(
            &rita,
            Target::Permit {
                id: "per_does_not_exist".into(),
            },
            Front::Http,
            QueryLimits::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.to_string(),
        "no data permit with this id is usable by you now"
    );
}

#[tokio::test]
async fn unknown_tokens_do_not_authenticate() {
    let env = hub().await;
    for token in ["agora_0000", "agoras_0000", "", "nonsense"] {
        let err = env
            .hub
            .query()
            .authenticate(Credential::Token(token))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated), "{token}: {err}");
    }
}

#[tokio::test]
async fn the_profiler_reads_through_the_service_and_each_query_is_recorded() {
    let env = hub().await;
    let info = env
        .hub
        .governance()
        .release(&"omop".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let profile = env
        .hub
        .quality_profile(&info, QueryLimits::default())
        .await
        .unwrap();
    let person = profile.tables.iter().find(|t| t.table == "person").unwrap();
    assert_eq!(person.rows, 28);
    let events = env
        .hub
        .governance()
        .recent_access_events(1000)
        .await
        .unwrap();
    assert!(
        events.len() > profile.tables.len(),
        "{} events",
        events.len()
    );
    assert!(
        events
            .iter()
            .all(|e| e.actor == "system" && e.front == "profiler")
    );
    // Kept: a second request computes nothing.
    env.hub
        .quality_profile(&info, QueryLimits::default())
        .await
        .unwrap();
    let again = env
        .hub
        .governance()
        .recent_access_events(1000)
        .await
        .unwrap();
    assert_eq!(again.len(), events.len());
}

/// The public catalogue applies the small-cell rule (0 or at least 10) to every count it
/// shows, not only to persons: Synthea27Nj's three deaths are withheld, and so are the null
/// rates that would describe them.
#[tokio::test]
async fn the_public_catalogue_withholds_small_counts_and_the_rates_that_imply_them() {
    let env = hub().await;
    env.hub
        .warm_profiles(&QueryLimits::default())
        .await
        .unwrap();
    let entry = env
        .hub
        .catalogue_entry(&"omop".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let release = entry.latest_release.unwrap();
    let table = |name: &str| release.tables.iter().find(|t| t.name == name).unwrap();
    let person = table("person");
    assert_eq!(person.rows, Some(28));
    assert_eq!(person.persons, Some(28));
    assert!(person.columns.iter().any(|c| c.null_rate == Some(0.0)));
    let death = table("death");
    assert_eq!(death.rows, None, "3 deaths must not be published");
    assert_eq!(death.persons, None);
    assert!(death.columns.iter().all(|c| c.null_rate.is_none()));
    // Empty tables stay visibly empty.
    let cohort = table("cohort");
    assert_eq!(cohort.rows, Some(0));
    // No column anywhere shows a rate implying 1 to 9 nulls or values.
    for t in &release.tables {
        for c in &t.columns {
            if let (Some(rate), Some(rows)) = (c.null_rate, t.rows) {
                let nulls = (rate * rows as f64).round() as u64;
                let values = rows - nulls.min(rows);
                assert!(
                    (nulls == 0 || nulls >= 9) && (values == 0 || values >= 9),
                    "{}.{}: rate {rate} of {rows} rows",
                    t.name,
                    c.name
                );
            }
        }
    }
}
