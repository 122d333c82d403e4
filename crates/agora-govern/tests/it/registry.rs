use agora_govern::{ApplicationState as S, Error, NewProjectResult, RegistryStatus};
use chrono::{NaiveDate, TimeDelta};

use crate::support::hubs;

#[tokio::test]
async fn the_registry_lists_permitted_projects_only_and_follows_their_state() {
    for h in hubs().await {
        let b = h.env.backend;
        // Not in the registry: no permit.
        for s in [
            S::Draft,
            S::Submitted,
            S::UnderReview,
            S::ChangesRequested,
            S::Rejected,
        ] {
            h.app_in(s, None).await;
        }
        assert!(h.public_registry().await.unwrap().is_empty(), "{b}");

        let approved = h.app_in(S::Approved, None).await;
        let active = h.app_in(S::Active, None).await;
        let expired = h.app_in(S::Expired, None).await;
        let closed = h.app_in(S::Active, None).await;
        h.transition_application(&h.op, &closed, S::Closed, Some("ended"))
            .await
            .unwrap();
        let expiring = h.app_in(S::Active, Some(TimeDelta::days(1))).await;

        let registry = h.public_registry().await.unwrap();
        let status = |id: &str| {
            registry
                .iter()
                .find(|e| e.project_id == id)
                .map(|e| e.status)
        };
        assert_eq!(registry.len(), 5, "{b}");
        assert_eq!(status(&approved), Some(RegistryStatus::Approved));
        assert_eq!(status(&active), Some(RegistryStatus::Active));
        assert_eq!(status(&expired), Some(RegistryStatus::Expired));
        assert_eq!(status(&closed), Some(RegistryStatus::Closed));
        assert_eq!(status(&expiring), Some(RegistryStatus::Active));

        let e = registry.iter().find(|e| e.project_id == active).unwrap();
        assert_eq!(e.title, "Diabetes care pathways");
        assert_eq!(e.organisation, "University Hospital of Somewhere");
        assert_eq!(e.datasets.len(), 1);
        assert_eq!(e.datasets[0].dataset, "omop");
        assert_eq!(e.datasets[0].release, Some(1));
        assert_eq!(e.datasets[0].tables, vec!["person", "condition_occurrence"]);
        assert!(e.activated_at.is_some() && e.ended_at.is_none());
        let c = registry.iter().find(|e| e.project_id == closed).unwrap();
        assert!(c.ended_at.is_some());
        // Team members are not published.
        let json = serde_json::to_string(&registry).unwrap();
        assert!(!json.contains("alice") && !json.contains("bob"), "{b}");

        // Expiry shows at once, before any sweep.
        h.env.advance(TimeDelta::days(1));
        let e = h.registry_entry(&expiring).await.unwrap();
        assert_eq!(e.status, RegistryStatus::Expired, "{b}");
        assert_eq!(e.ended_at, Some(e.expires_at));

        // Unregistered projects do not exist for the public.
        let draft = h.draft().await;
        let err = h.registry_entry(&draft).await.unwrap_err();
        let missing = h.registry_entry("app_missing").await.unwrap_err();
        assert!(matches!(err, Error::NotFound(_)));
        assert_eq!(err.to_string(), missing.to_string());
    }
}

#[tokio::test]
async fn results_are_the_only_thing_added_by_hand() {
    for h in hubs().await {
        let b = h.env.backend;
        let active = h.app_in(S::Active, None).await;
        let paper = NewProjectResult {
            title: "Care pathways of adults with diabetes, 2015-2024".into(),
            url: Some("https://doi.org/10.1000/xyz123".into()),
            published_on: NaiveDate::from_ymd_opt(2026, 9, 1),
        };
        let r = h
            .attach_result(&h.bob, &active, paper.clone())
            .await
            .unwrap();
        assert!(r.id.starts_with("res_"));
        h.env.advance(TimeDelta::minutes(1));
        h.attach_result(
            &h.op,
            &active,
            NewProjectResult {
                title: "Dashboard".into(),
                url: None,
                published_on: None,
            },
        )
        .await
        .unwrap();
        // Reviewers may see the project but not add to it; outsiders do not see it.
        assert!(matches!(
            h.attach_result(&h.rev1, &active, paper.clone())
                .await
                .unwrap_err(),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            h.attach_result(&h.carol, &active, paper.clone())
                .await
                .unwrap_err(),
            Error::NotFound(_)
        ));
        let mut bad = paper.clone();
        bad.url = Some("javascript:alert(1)".into());
        assert!(matches!(
            h.attach_result(&h.alice, &active, bad).await.unwrap_err(),
            Error::InvalidInput(_)
        ));
        // Not registered: nothing to attach to.
        let draft = h.draft().await;
        assert!(matches!(
            h.attach_result(&h.alice, &draft, paper.clone())
                .await
                .unwrap_err(),
            Error::Conflict(_)
        ));

        let entry = h.registry_entry(&active).await.unwrap();
        assert_eq!(entry.results.len(), 2, "{b}");
        assert_eq!(entry.results[0], r);
        let all = h.public_registry().await.unwrap();
        assert_eq!(all[0].results.len(), 2);
    }
}
