use std::sync::Arc;

use agora_govern::{ApplicationState as S, Error, PermitAmendment};
use tokio::sync::Barrier;

use crate::support::{grant, hubs};

/// Two reviewers approve the same application at the same instant, from real concurrent
/// tasks on a multi-threaded runtime: exactly one wins, exactly one permit exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_have_exactly_one_winner() {
    for h in hubs().await {
        let b = h.env.backend;
        for round in 0..8 {
            let id = h.app_in(S::UnderReview, None).await;
            let barrier = Arc::new(Barrier::new(2));
            let mut tasks = Vec::new();
            for reviewer in [h.rev1.clone(), h.rev2.clone()] {
                let store = h.env.store.clone();
                let barrier = barrier.clone();
                let id = id.clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .approve_application(&reviewer, &id, grant(), Some("approve"))
                        .await
                }));
            }
            let mut wins = Vec::new();
            let mut losses = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(permit) => wins.push(permit),
                    Err(e) => losses.push(e),
                }
            }
            assert_eq!(wins.len(), 1, "{b} round {round}: {losses:?}");
            assert!(
                matches!(
                    losses[0],
                    Error::InvalidTransition {
                        from: S::Approved,
                        to: S::Approved
                    }
                ),
                "{b} round {round}: {}",
                losses[0]
            );
            let app = h.application(&h.op, &id).await.unwrap();
            assert_eq!(app.state, S::Approved);
            assert_eq!(app.permit_id.as_deref(), Some(wins[0].id.as_str()));
            let approvals = h
                .application_history(&h.op, &id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.to == S::Approved)
                .count();
            assert_eq!(approvals, 1, "{b}");
        }
        let raw = h.env.raw().await;
        let permits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM permits")
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(permits, 8, "{b}");
        raw.close().await;
    }
}

/// An approval racing a rejection: one decision only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_racing_rejection_has_one_outcome() {
    for h in hubs().await {
        let b = h.env.backend;
        for _ in 0..6 {
            let id = h.app_in(S::UnderReview, None).await;
            let barrier = Arc::new(Barrier::new(2));
            let (s1, s2) = (h.env.store.clone(), h.env.store.clone());
            let (r1, r2) = (h.rev1.clone(), h.rev2.clone());
            let (b1, b2) = (barrier.clone(), barrier.clone());
            let (i1, i2) = (id.clone(), id.clone());
            let approve = tokio::spawn(async move {
                b1.wait().await;
                s1.approve_application(&r1, &i1, grant(), None)
                    .await
                    .map(|_| ())
            });
            let reject = tokio::spawn(async move {
                b2.wait().await;
                s2.transition_application(&r2, &i2, S::Rejected, Some("no"))
                    .await
                    .map(|_| ())
            });
            let (a, r) = (approve.await.unwrap(), reject.await.unwrap());
            assert!(a.is_ok() != r.is_ok(), "{b}: {a:?} {r:?}");
            let state = h.application(&h.op, &id).await.unwrap().state;
            let has_permit = h.application(&h.op, &id).await.unwrap().permit_id.is_some();
            if a.is_ok() {
                assert_eq!((state, has_permit), (S::Approved, true), "{b}");
            } else {
                assert_eq!((state, has_permit), (S::Rejected, false), "{b}");
            }
        }
    }
}

/// Two reviewers amend the same permit version at once: one version n+1, one conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_amendments_do_not_overwrite_each_other() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::Active, None).await;
        let permit = h.permit_id(&id).await;
        let before = h.permit(&h.op, &permit).await.unwrap().version;
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for (reviewer, k) in [(h.rev1.clone(), 11), (h.rev2.clone(), 12)] {
            let store = h.env.store.clone();
            let barrier = barrier.clone();
            let permit = permit.clone();
            tasks.push(tokio::spawn(async move {
                let output = agora_govern::OutputPolicy {
                    k: Some(k),
                    ..Default::default()
                };
                barrier.wait().await;
                store
                    .amend_permit(
                        &reviewer,
                        &permit,
                        PermitAmendment {
                            output: Some(output),
                            ..Default::default()
                        },
                        "raise k",
                    )
                    .await
            }));
        }
        // Truly concurrent, one wins and the other gets a conflict; if the machine runs
        // them one after the other, both apply in turn. Never do two writers get the same
        // version (a lost update).
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(p) => won.push(p.version),
                Err(e) => assert!(matches!(e, Error::Conflict(_)), "{b}: {e}"),
            }
        }
        won.sort_unstable();
        let expected: Vec<i64> = (1..=won.len() as i64).map(|i| before + i).collect();
        assert!(!won.is_empty(), "{b}");
        assert_eq!(won, expected, "{b}");
        let versions = h.permit_versions(&h.op, &permit).await.unwrap();
        assert_eq!(versions.len() as i64, before + won.len() as i64, "{b}");
    }
}
