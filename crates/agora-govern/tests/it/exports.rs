use std::sync::Arc;

use agora_core::{ErrorKind, HasKind};
use agora_govern::exports::{POLICY_ACTOR, new_export_id};
use agora_govern::{
    ApplicationState as S, DisclosureProfile, Error, ExportDecision as D, ExportEventKind,
    ExportFormat, ExportStatus, NewExport, OutputPolicy, PermitAmendment,
};
use chrono::TimeDelta;
use tokio::sync::Barrier;

use crate::support::{Hub, hubs};

fn new_export(permit_id: &str) -> NewExport {
    NewExport {
        id: new_export_id(),
        permit_id: permit_id.into(),
        statement: "SELECT gender_concept_id, COUNT(*) AS n FROM omop.person GROUP BY 1".into(),
        format: ExportFormat::Csv,
        rows: 2,
        bytes: 40,
        sha256: "ab".repeat(32),
    }
}

/// An active project of alice's (team: bob) and its permit id.
async fn active_permit(h: &Hub) -> String {
    let app = h.app_in(S::Active, None).await;
    h.permit_id(&app).await
}

async fn set_output(h: &Hub, permit_id: &str, output: OutputPolicy) {
    h.amend_permit(
        &h.rev1,
        permit_id,
        PermitAmendment {
            output: Some(output),
            ..Default::default()
        },
        "output policy",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_request_waits_for_a_reviewer_who_is_not_of_the_project() {
    for h in hubs().await {
        let b = h.env.backend;
        let permit = active_permit(&h).await;
        let new = new_export(&permit);
        let export = h.create_export(&h.alice, new.clone()).await.unwrap();
        assert_eq!(export.id, new.id);
        assert_eq!(export.status, ExportStatus::PendingReview, "{b}");
        assert_eq!(export.requested_by, "alice");
        assert_eq!(export.requested_at, h.env.now());
        assert_eq!(export.permit_id, permit);
        // Activation pinned no "latest" release: still version 1.
        assert_eq!(export.permit_version, 1);
        assert_eq!(export.sha256, new.sha256);
        assert_eq!((export.rows, export.bytes), (2, 40));
        assert_eq!(export.decided_by, None);
        assert_eq!(export.history.len(), 1);
        assert_eq!(export.history[0].kind, ExportEventKind::Requested);
        let json = serde_json::to_value(&export).unwrap();
        assert_eq!(json["status"], "pending_review");
        assert_eq!(json["format"], "csv");

        // Applicants, members, reviewers and operators see it; anyone else as if missing.
        for who in [&h.alice, &h.bob, &h.rev1, &h.op, &h.rita] {
            assert_eq!(h.export(who, &export.id).await.unwrap(), export, "{b}");
            assert_eq!(h.list_exports(who, None).await.unwrap().len(), 1);
        }
        let hidden = h.export(&h.carol, &export.id).await.unwrap_err();
        let missing = h.export(&h.carol, &new_export_id()).await.unwrap_err();
        assert!(matches!(hidden, Error::NotFound("export")), "{b}");
        assert_eq!(hidden.to_string(), missing.to_string());
        assert!(h.list_exports(&h.carol, None).await.unwrap().is_empty());
        assert_eq!(
            h.list_exports(&h.rev1, Some(ExportStatus::Approved))
                .await
                .unwrap()
                .len(),
            0
        );

        // Not the researchers, not an operator without the reviewer role.
        for who in [&h.alice, &h.bob, &h.op] {
            let e = h
                .decide_export(who, &export.id, D::Approve, "fine")
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{b}: {}", who.name);
        }
        // Nor a reviewer who is a member of the permit.
        h.amend_permit(
            &h.rev1,
            &permit,
            PermitAmendment {
                members: Some(vec!["alice".into(), "bob".into(), "rita".into()]),
                ..Default::default()
            },
            "rita joins",
        )
        .await
        .unwrap();
        let e = h
            .decide_export(&h.rita, &export.id, D::Approve, "fine")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{b}");
        // Someone who may not see it learns nothing more than NotFound.
        let e = h
            .decide_export(&h.carol, &export.id, D::Approve, "fine")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound("export")));
        // A reason is required.
        let e = h
            .decide_export(&h.rev2, &export.id, D::Approve, " ")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);

        h.env.advance(TimeDelta::hours(1));
        let approved = h
            .decide_export(
                &h.rev2,
                &export.id,
                D::Approve,
                "aggregates only, k respected",
            )
            .await
            .unwrap();
        assert_eq!(approved.status, ExportStatus::Approved, "{b}");
        assert_eq!(approved.decided_by.as_deref(), Some("rev2"));
        assert_eq!(approved.decided_at, Some(h.env.now()));
        assert_eq!(
            approved.reason.as_deref(),
            Some("aggregates only, k respected")
        );
        assert_eq!(approved.history.len(), 2);
        assert_eq!(approved.history[1].kind, ExportEventKind::Approved);
        assert_eq!(approved.history[1].actor, "rev2");
        // Decided once: a second decision conflicts, the first is kept.
        let e = h
            .decide_export(&h.rev1, &export.id, D::Reject, "changed my mind")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{b}");
        assert_eq!(
            h.export(&h.alice, &export.id).await.unwrap().status,
            ExportStatus::Approved
        );
        assert_eq!(
            h.list_exports(&h.alice, Some(ExportStatus::Approved))
                .await
                .unwrap()
                .len(),
            1
        );

        // Downloads are recorded.
        let downloaded = h
            .record_export_download(&h.alice, &export.id)
            .await
            .unwrap();
        assert_eq!(downloaded.history.len(), 3);
        assert_eq!(downloaded.history[2].kind, ExportEventKind::Downloaded);
        assert_eq!(downloaded.history[2].actor, "alice");
    }
}

#[tokio::test]
async fn a_rejected_export_is_kept_and_never_downloadable() {
    for h in hubs().await {
        let b = h.env.backend;
        let permit = active_permit(&h).await;
        let export = h.create_export(&h.bob, new_export(&permit)).await.unwrap();
        let e = h
            .record_export_download(&h.bob, &export.id)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{b}");
        let rejected = h
            .decide_export(&h.rev1, &export.id, D::Reject, "a cell below k")
            .await
            .unwrap();
        assert_eq!(rejected.status, ExportStatus::Rejected, "{b}");
        assert_eq!(rejected.history[1].kind, ExportEventKind::Rejected);
        assert_eq!(
            rejected.history[1].reason.as_deref(),
            Some("a cell below k")
        );
        let e = h
            .record_export_download(&h.bob, &export.id)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = h
            .decide_export(&h.rev2, &export.id, D::Approve, "overrule")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            h.list_exports(&h.op, Some(ExportStatus::Rejected))
                .await
                .unwrap()[0]
                .id,
            export.id
        );
    }
}

#[tokio::test]
async fn an_ohdsi_permit_approves_exports_by_policy() {
    for h in hubs().await {
        let b = h.env.backend;
        let permit = active_permit(&h).await;
        set_output(
            &h,
            &permit,
            OutputPolicy {
                profile: DisclosureProfile::Ohdsi,
                ..Default::default()
            },
        )
        .await;
        let export = h
            .create_export(&h.alice, new_export(&permit))
            .await
            .unwrap();
        assert_eq!(export.status, ExportStatus::Approved, "{b}");
        assert_eq!(export.decided_by.as_deref(), Some(POLICY_ACTOR));
        assert_eq!(export.permit_version, 2);
        assert!(export.reason.as_deref().unwrap().contains("ohdsi"));
        assert_eq!(export.history.len(), 2);
        assert_eq!(export.history[1].actor, POLICY_ACTOR);
        // Nothing left to decide.
        let e = h
            .decide_export(&h.rev1, &export.id, D::Reject, "no")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);

        // A profile that reviews by default can opt out, and ohdsi can opt in.
        set_output(
            &h,
            &permit,
            OutputPolicy {
                profile: DisclosureProfile::Ohdsi,
                export_review: Some(true),
                ..Default::default()
            },
        )
        .await;
        let export = h
            .create_export(&h.alice, new_export(&permit))
            .await
            .unwrap();
        assert_eq!(export.status, ExportStatus::PendingReview, "{b}");
        set_output(
            &h,
            &permit,
            OutputPolicy {
                export_review: Some(false),
                ..Default::default()
            },
        )
        .await;
        let export = h
            .create_export(&h.alice, new_export(&permit))
            .await
            .unwrap();
        assert_eq!(export.status, ExportStatus::Approved, "{b}");
    }
}

#[tokio::test]
async fn only_a_usable_permit_takes_requests() {
    for h in hubs().await {
        let b = h.env.backend;
        // Approved but not activated.
        let app = h.app_in(S::Approved, None).await;
        let approved = h.permit_id(&app).await;
        let active = active_permit(&h).await;
        let mut cases = vec![
            (&h.alice, approved.clone()),
            (&h.carol, active.clone()),
            (&h.rev1, active.clone()),
            (&h.op, active.clone()),
            (&h.alice, "pmt_missing".to_owned()),
        ];
        for (who, permit) in cases.drain(..) {
            let e = h.create_export(who, new_export(&permit)).await.unwrap_err();
            assert!(
                matches!(e, Error::NotFound("permit")),
                "{b}: {} {e}",
                who.name
            );
        }
        // Malformed records are refused before anything is looked up.
        let mut bad = new_export(&active);
        bad.id = "exp_../../keys/hub.key".into();
        assert_eq!(
            h.create_export(&h.alice, bad).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let mut bad = new_export(&active);
        bad.sha256 = "XYZ".into();
        assert_eq!(
            h.create_export(&h.alice, bad).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        // Past the permit's expiry, no more requests.
        h.env.advance(TimeDelta::days(3650));
        let e = h
            .create_export(&h.alice, new_export(&active))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound("permit")), "{b}");
        assert!(h.list_exports(&h.op, None).await.unwrap().is_empty());
    }
}

/// Two reviewers decide the same export at the same instant: exactly one decision stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_have_exactly_one_winner() {
    for h in hubs().await {
        let b = h.env.backend;
        let permit = active_permit(&h).await;
        for round in 0..4 {
            let export = h
                .create_export(&h.alice, new_export(&permit))
                .await
                .unwrap();
            let barrier = Arc::new(Barrier::new(2));
            let mut tasks = Vec::new();
            for (reviewer, decision) in [(h.rev1.clone(), D::Approve), (h.rev2.clone(), D::Reject)]
            {
                let store = h.env.store.clone();
                let barrier = barrier.clone();
                let id = export.id.clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .decide_export(&reviewer, &id, decision, "decided")
                        .await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(_) => wins += 1,
                    Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{b} round {round}: {e}"),
                }
            }
            assert_eq!(wins, 1, "{b} round {round}");
            let stored = h.export(&h.op, &export.id).await.unwrap();
            assert_eq!(stored.history.len(), 2, "{b} round {round}");
        }
    }
}
