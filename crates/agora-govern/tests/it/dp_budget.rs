use std::sync::Arc;

use agora_core::{ErrorKind, HasKind};
use agora_govern::{ApplicationState as S, DpPolicy, Error, OutputPolicy, PermitAmendment};
use tokio::sync::Barrier;

use crate::support::{Hub, empty_databases, hubs};

fn policy(budget: f64, per_query: f64, delta: f64) -> DpPolicy {
    DpPolicy {
        epsilon_budget: budget,
        epsilon_per_query: Some(per_query),
        delta,
        max_rows_per_person: None,
        sum_bound: None,
    }
}

/// An active project whose permit says `dp`; returns the permit id.
async fn dp_permit(h: &Hub, dp: DpPolicy) -> String {
    let app = h.app_in(S::Active, None).await;
    let permit = h.permit_id(&app).await;
    set_policy(h, &permit, dp).await;
    permit
}

async fn set_policy(h: &Hub, permit: &str, dp: DpPolicy) {
    h.amend_permit(
        &h.rev1,
        permit,
        PermitAmendment {
            output: Some(OutputPolicy {
                dp: Some(dp),
                ..Default::default()
            }),
            ..Default::default()
        },
        "differential privacy",
    )
    .await
    .unwrap();
}

async fn spend_rows(h: &Hub, permit: &str) -> i64 {
    let raw = h.env.raw().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dp_spends WHERE permit_id = $1")
        .bind(permit)
        .fetch_one(&raw)
        .await
        .unwrap();
    raw.close().await;
    n
}

#[tokio::test]
async fn queries_spend_the_budget_until_it_is_refused() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(1.0, 0.1, 0.0);
        let permit = dp_permit(&h, dp).await;
        let fresh = h.privacy_budget(&permit).await.unwrap();
        assert_eq!(
            (fresh.budget, fresh.spent, fresh.remaining, fresh.queries),
            (1.0, 0.0, 1.0, 0),
            "{b}"
        );
        for i in 0..10 {
            let s = h
                .spend_privacy_budget(&permit, "alice", &dp, &format!("q{i}"))
                .await
                .unwrap_or_else(|e| panic!("{b} query {i}: {e}"));
            assert!(s.charged, "{b}");
            assert_eq!((s.epsilon, s.delta), (0.1, 0.0));
            assert_eq!(s.status.queries, i + 1);
        }
        // Ten tenths spend exactly the budget: no floating-point drift refuses the tenth.
        let spent = h.privacy_budget(&permit).await.unwrap();
        assert_eq!(
            (spent.spent, spent.remaining, spent.queries),
            (1.0, 0.0, 10),
            "{b}"
        );
        let err = h
            .spend_privacy_budget(&permit, "alice", &dp, "q10")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PrivacyBudgetSpent { .. }),
            "{b}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
        assert_eq!(
            err.to_string(),
            "the project's privacy budget is spent: this query needs epsilon 0.1 and 0 of 1 \
             remains; a reviewer can amend the permit to raise the budget"
        );
        // The refused query left nothing behind.
        assert_eq!(spend_rows(&h, &permit).await, 10, "{b}");
        assert_eq!(h.privacy_budget(&permit).await.unwrap(), spent, "{b}");
        // A larger budget (an amendment) makes the difference available, to the same
        // project.
        let more = policy(1.5, 0.1, 0.0);
        set_policy(&h, &permit, more).await;
        let s = h
            .spend_privacy_budget(&permit, "bob", &more, "q10")
            .await
            .unwrap();
        assert!(s.charged);
        assert_eq!(
            (s.status.spent, s.status.budget, s.status.queries),
            (1.1, 1.5, 11)
        );
        assert!((s.status.remaining - 0.4).abs() < 1e-12, "{b}");
        // Other projects have budgets of their own.
        let other = dp_permit(&h, dp).await;
        assert_eq!(h.privacy_budget(&other).await.unwrap().spent, 0.0, "{b}");
    }
}

#[tokio::test]
async fn a_repeated_question_costs_nothing() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(0.3, 0.1, 0.0);
        let permit = dp_permit(&h, dp).await;
        let first = h
            .spend_privacy_budget(&permit, "alice", &dp, "same")
            .await
            .unwrap();
        assert!(first.charged, "{b}");
        for who in ["alice", "bob"] {
            let again = h
                .spend_privacy_budget(&permit, who, &dp, "same")
                .await
                .unwrap();
            assert!(!again.charged, "{b}");
            assert_eq!((again.epsilon, again.delta), (0.0, 0.0));
            assert_eq!(again.permit_version, first.permit_version);
            assert_eq!(again.status, first.status, "{b}");
        }
        // Spend the rest: the question already asked is still answered (same noise),
        // a new one is refused.
        for q in ["a", "b"] {
            h.spend_privacy_budget(&permit, "alice", &dp, q)
                .await
                .unwrap();
        }
        let status = h.privacy_budget(&permit).await.unwrap();
        assert_eq!((status.remaining, status.queries), (0.0, 3), "{b}");
        let repeat = h
            .spend_privacy_budget(&permit, "alice", &dp, "same")
            .await
            .unwrap();
        assert!(!repeat.charged);
        assert!(matches!(
            h.spend_privacy_budget(&permit, "alice", &dp, "new").await,
            Err(Error::PrivacyBudgetSpent { .. })
        ));
        assert_eq!(spend_rows(&h, &permit).await, 3, "{b}");
    }
}

/// The noise of a question is derived from the permit version too, so a new version
/// charges the same question again; all versions draw on one budget.
#[tokio::test]
async fn permit_versions_share_one_budget() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(1.0, 0.25, 0.0);
        let permit = dp_permit(&h, dp).await;
        let v1 = h
            .spend_privacy_budget(&permit, "alice", &dp, "q")
            .await
            .unwrap();
        set_policy(&h, &permit, dp).await;
        let v2 = h
            .spend_privacy_budget(&permit, "alice", &dp, "q")
            .await
            .unwrap();
        assert!(v2.charged, "{b}");
        assert_eq!(v2.permit_version, v1.permit_version + 1);
        assert_eq!((v2.status.spent, v2.status.queries), (0.5, 2), "{b}");
        let again = h
            .spend_privacy_budget(&permit, "alice", &dp, "q")
            .await
            .unwrap();
        assert!(!again.charged, "{b}");
    }
}

#[tokio::test]
async fn delta_is_accounted_too() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(1.0, 0.1, 1e-4);
        let permit = dp_permit(&h, dp).await;
        let status = h.privacy_budget(&permit).await.unwrap();
        // δ × ⌊1 / 0.1⌋.
        assert!((status.delta_budget - 1e-3).abs() < 1e-15, "{b}");
        for i in 0..5 {
            let s = h
                .spend_privacy_budget(&permit, "alice", &dp, &format!("q{i}"))
                .await
                .unwrap();
            assert_eq!(s.delta, 1e-4);
        }
        let status = h.privacy_budget(&permit).await.unwrap();
        assert!((status.delta_spent - 5e-4).abs() < 1e-15, "{b}");
        // A policy allowing fewer, larger queries allows less δ in total (4e-4): the δ
        // budget refuses although ε remains.
        let fewer = policy(1.0, 0.25, 1e-4);
        let err = h
            .spend_privacy_budget(&permit, "alice", &fewer, "q5")
            .await
            .unwrap_err();
        match &err {
            Error::PrivacyBudgetSpent { which, .. } => assert_eq!(*which, "delta", "{b}"),
            other => panic!("{b}: {other}"),
        }
        assert!(err.to_string().contains("needs delta 0.0001"), "{err}");
    }
}

#[tokio::test]
async fn bad_requests_are_refused() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(1.0, 0.1, 0.0);
        let permit = dp_permit(&h, dp).await;
        assert!(
            matches!(
                h.spend_privacy_budget("prm_missing", "alice", &dp, "q")
                    .await,
                Err(Error::NotFound("permit"))
            ),
            "{b}"
        );
        assert!(matches!(
            h.privacy_budget("prm_missing").await,
            Err(Error::NotFound("permit"))
        ));
        for hash in [String::new(), "x".repeat(257)] {
            assert!(matches!(
                h.spend_privacy_budget(&permit, "alice", &dp, &hash).await,
                Err(Error::InvalidInput(_))
            ));
        }
        for bad in [
            policy(f64::NAN, 0.1, 0.0),
            policy(1.0, -0.1, 0.0),
            policy(1e300, 0.1, 0.0),
            policy(1.0, 0.1, f64::INFINITY),
            policy(1.0, 1e-13, 0.0),
        ] {
            let err = h
                .spend_privacy_budget(&permit, "alice", &bad, "q")
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{b}: {err}");
        }
        assert_eq!(spend_rows(&h, &permit).await, 0, "{b}");
        // A permit without differential privacy has no budget.
        let app = h.app_in(S::Active, None).await;
        let plain = h.permit_id(&app).await;
        let status = h.privacy_budget(&plain).await.unwrap();
        assert_eq!((status.budget, status.remaining), (0.0, 0.0), "{b}");
    }
}

/// Spends racing on real threads never exceed the budget: of 24 distinct questions
/// against room for 10, exactly 10 are charged; of 8 copies of one question, one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spends_never_exceed_the_budget() {
    for h in hubs().await {
        let b = h.env.backend;
        let dp = policy(1.0, 0.1, 1e-6);
        let permit = dp_permit(&h, dp).await;
        let barrier = Arc::new(Barrier::new(24));
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = h.env.store.clone();
            let barrier = barrier.clone();
            let permit = permit.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .spend_privacy_budget(&permit, "alice", &dp, &format!("q{i}"))
                    .await
            }));
        }
        let (mut charged, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(s) => {
                    assert!(s.charged, "{b}");
                    assert!(s.status.spent <= 1.0, "{b}");
                    charged += 1;
                }
                Err(Error::PrivacyBudgetSpent { .. }) => refused += 1,
                Err(e) => panic!("{b}: {e}"),
            }
        }
        assert_eq!((charged, refused), (10, 14), "{b}");
        let status = h.privacy_budget(&permit).await.unwrap();
        assert_eq!((status.spent, status.queries), (1.0, 10), "{b}");
        assert_eq!(spend_rows(&h, &permit).await, 10, "{b}");

        let permit = dp_permit(&h, dp).await;
        let barrier = Arc::new(Barrier::new(8));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = h.env.store.clone();
            let barrier = barrier.clone();
            let permit = permit.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .spend_privacy_budget(&permit, "bob", &dp, "the same question")
                    .await
            }));
        }
        let mut charged = 0;
        for t in tasks {
            let s = t.await.unwrap().unwrap_or_else(|e| panic!("{b}: {e}"));
            charged += usize::from(s.charged);
        }
        assert_eq!(charged, 1, "{b}");
        let status = h.privacy_budget(&permit).await.unwrap();
        assert_eq!((status.spent, status.queries), (0.1, 1), "{b}");
    }
}

/// Migration 7 applies on a store that lacks 5 and 6 (they live on other branches), and
/// again on one that has them but not 7.
#[tokio::test]
async fn migration_7_applies_whatever_versions_surround_it() {
    for (backend, url, _guard) in empty_databases().await {
        let store = agora_govern::MetaStore::open(&url).await.unwrap();
        store.close().await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(versions.contains(&7), "{backend}: {versions:?}");
        for sql in [
            "DROP TABLE dp_spends",
            "DROP TABLE dp_budgets",
            "DELETE FROM schema_migrations WHERE version = 7",
            "INSERT INTO schema_migrations VALUES (5, '2026-01-01T00:00:00.000000Z') \
             ON CONFLICT (version) DO NOTHING",
            "INSERT INTO schema_migrations VALUES (6, '2026-01-01T00:00:00.000000Z') \
             ON CONFLICT (version) DO NOTHING",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = agora_govern::MetaStore::open(&url).await.unwrap();
        store.close().await;
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let tables: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dp_budgets")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(tables, 0, "{backend}");
        let seven: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations WHERE version = 7")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(seven, 1, "{backend}");
        pool.close().await;
    }
}
