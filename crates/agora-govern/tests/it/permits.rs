use agora_core::{ErrorKind, HasKind};
use agora_govern::{
    ApplicationState as S, DatasetScope, DisclosureProfile, Error, GovernConfig, NewRelease,
    OutputPolicy, PERMIT_SCHEMA, PermitAmendment, PermitPolicy, PermitStatus, ReleaseSelector,
    RowFilter, TableScope,
};
use chrono::{TimeDelta, TimeZone, Utc};

use crate::support::{grant, hub, hubs, stores_with, test_config};

fn claims_scope(release: ReleaseSelector) -> DatasetScope {
    DatasetScope {
        dataset: "claims".into(),
        release,
        tables: vec![TableScope {
            table: "drug_exposure".into(),
            columns: vec!["person_id".into(), "drug_concept_id".into()],
            row_filters: vec![RowFilter::ValueIn {
                column: "drug_concept_id".into(),
                values: vec![1_503_297, 1_502_826],
            }],
            precision: Default::default(),
        }],
    }
}

#[tokio::test]
async fn approval_issues_a_machine_readable_permit_that_takes_effect_at_activation() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::UnderReview, None).await;
        let mut g = grant();
        g.datasets
            .push(claims_scope(ReleaseSelector::LatestAtActivation));
        g.output = OutputPolicy {
            profile: DisclosureProfile::Opensafely,
            k: Some(10),
            dp: Some(agora_govern::DpPolicy {
                epsilon_budget: 1.5,
                epsilon_per_query: None,
                delta: 0.0,
                max_rows_per_person: None,
                sum_bound: None,
            }),
            ..Default::default()
        };
        let permit = h.approve_application(&h.rev1, &id, g, None).await.unwrap();
        assert_eq!(permit.schema, PERMIT_SCHEMA);
        assert_eq!(permit.version, 1);
        assert_eq!(permit.status, PermitStatus::Approved);
        assert_eq!(permit.terms.members, vec!["alice", "bob"], "{b}");
        assert_eq!(permit.project_title, "Diabetes care pathways");
        assert_eq!(permit.issued_by, "rev1");
        // Default expiry: the requested duration (24 months) from approval.
        assert_eq!(
            permit.terms.expires_at,
            Utc.with_ymd_and_hms(2028, 3, 2, 9, 0, 0).unwrap()
        );
        let person = permit.table("omop", "person").unwrap();
        assert!(person.columns.contains(&"year_of_birth".to_owned()));
        assert!(permit.table("omop", "death").is_none());

        let json = serde_json::to_value(&permit).unwrap();
        assert_eq!(json["schema"], PERMIT_SCHEMA);
        assert_eq!(json["status"], "approved");
        assert_eq!(json["members"][1], "bob");
        assert_eq!(json["datasets"][1]["release"], "latest_at_activation");
        assert_eq!(json["output"]["profile"], "opensafely");
        assert_eq!(json["output"]["dp"]["epsilon_budget"], 1.5);
        let back: agora_govern::Permit = serde_json::from_value(json).unwrap();
        assert_eq!(back, permit);

        // Not usable before activation.
        let now = h.env.now();
        assert!(h.active_permits_for("alice", now).await.unwrap().is_empty());
        assert!(
            h.permit_for_query("alice", &permit.id, now)
                .await
                .unwrap()
                .is_none()
        );

        // A newer claims release lands before activation: "latest" pins it.
        h.commit_release(NewRelease {
            dataset: "claims".parse().unwrap(),
            model: "omop-cdm-5.4".into(),
            release_id: "claims-r2".into(),
            manifest_path: "datasets/claims/manifests/claims-r2.json".into(),
            created_by: "test".into(),
            rows: 1,
            quarantined: 0,
            new_persons: vec![],
        })
        .await
        .unwrap();
        h.env.advance(TimeDelta::days(1));
        h.transition_application(&h.op, &id, S::Active, None)
            .await
            .unwrap();
        let now = h.env.now();
        let active = h.permit(&h.alice, &permit.id).await.unwrap();
        assert_eq!(active.status, PermitStatus::Active, "{b}");
        assert_eq!(active.version, 2);
        assert_eq!(active.version_reason, "activation: latest releases pinned");
        assert_eq!(active.terms.datasets[1].release, ReleaseSelector::Number(2));
        assert_eq!(active.activated_by.as_deref(), Some("op"));
        let versions = h.permit_versions(&h.bob, &permit.id).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(
            versions[0].terms.datasets[1].release,
            ReleaseSelector::LatestAtActivation
        );

        for member in ["alice", "bob"] {
            let usable = h.active_permits_for(member, now).await.unwrap();
            assert_eq!(usable.len(), 1, "{b}: {member}");
            assert_eq!(usable[0].id, permit.id);
            assert!(
                h.permit_for_query(member, &permit.id, now)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        for outsider in ["carol", "rev1", "op", "ghost"] {
            assert!(
                h.active_permits_for(outsider, now)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                h.permit_for_query(outsider, &permit.id, now)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
}

#[tokio::test]
async fn expiry_takes_effect_at_once_without_any_sweep() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::Active, Some(TimeDelta::days(10))).await;
        let permit = h.permit_id(&id).await;
        let expires = h.permit(&h.alice, &permit).await.unwrap().terms.expires_at;
        let just_before = expires - TimeDelta::microseconds(1);
        assert!(
            h.permit_for_query("alice", &permit, just_before)
                .await
                .unwrap()
                .is_some(),
            "{b}"
        );
        assert!(
            h.permit_for_query("alice", &permit, expires)
                .await
                .unwrap()
                .is_none(),
            "{b}"
        );
        assert!(
            h.active_permits_for("alice", expires)
                .await
                .unwrap()
                .is_empty()
        );
        // Without a sweep the state is still 'active', but the permit reads as expired.
        h.env.advance(TimeDelta::days(10));
        assert_eq!(
            h.permit(&h.alice, &permit).await.unwrap().status,
            PermitStatus::Expired
        );
        assert_eq!(h.application(&h.alice, &id).await.unwrap().state, S::Active);
        // Expired permits are not amended back to life.
        h.expire_permits().await.unwrap();
        let later = PermitAmendment {
            expires_at: Some(h.env.now() + TimeDelta::days(100)),
            ..Default::default()
        };
        assert!(matches!(
            h.amend_permit(&h.rev1, &permit, later, "extend")
                .await
                .unwrap_err(),
            Error::Conflict(_)
        ));
    }
}

#[tokio::test]
async fn revocation_takes_effect_at_once_and_closes_the_project() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::Active, None).await;
        let permit = h.permit_id(&id).await;
        let now = h.env.now();
        assert!(
            h.permit_for_query("bob", &permit, now)
                .await
                .unwrap()
                .is_some()
        );
        // Applicants cannot revoke (they close their project instead); outsiders see nothing.
        assert!(matches!(
            h.revoke_permit(&h.alice, &permit, "x").await.unwrap_err(),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            h.revoke_permit(&h.carol, &permit, "x").await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(matches!(
            h.revoke_permit(&h.rev1, &permit, " ").await.unwrap_err(),
            Error::InvalidInput(_)
        ));
        let revoked = h
            .revoke_permit(&h.rev2, &permit, "breach of the output rules")
            .await
            .unwrap();
        assert_eq!(revoked.status, PermitStatus::Revoked, "{b}");
        assert_eq!(revoked.revoked_by.as_deref(), Some("rev2"));
        assert_eq!(
            revoked.revoke_reason.as_deref(),
            Some("breach of the output rules")
        );
        assert!(
            h.permit_for_query("bob", &permit, now)
                .await
                .unwrap()
                .is_none()
        );
        assert!(h.active_permits_for("alice", now).await.unwrap().is_empty());
        assert_eq!(h.application(&h.alice, &id).await.unwrap().state, S::Closed);
        assert!(matches!(
            h.revoke_permit(&h.op, &permit, "again").await.unwrap_err(),
            Error::InvalidTransition { .. }
        ));

        // Closing by the owner revokes too.
        let id = h.app_in(S::Active, None).await;
        let permit = h.permit_id(&id).await;
        h.transition_application(&h.alice, &id, S::Closed, Some("done"))
            .await
            .unwrap();
        let p = h.permit(&h.alice, &permit).await.unwrap();
        assert_eq!(p.status, PermitStatus::Revoked);
        assert_eq!(p.revoke_reason.as_deref(), Some("done"));
    }
}

#[tokio::test]
async fn amendments_create_versions_and_change_access_at_once() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::Active, None).await;
        let permit = h.permit_id(&id).await;
        let now = h.env.now();
        assert!(
            h.permit_for_query("carol", &permit, now)
                .await
                .unwrap()
                .is_none()
        );

        // Who may amend: reviewers who are not applicants.
        for who in [&h.alice, &h.op] {
            assert!(matches!(
                h.amend_permit(who, &permit, PermitAmendment::default(), "x")
                    .await
                    .unwrap_err(),
                Error::PermissionDenied(_)
            ));
        }
        assert!(matches!(
            h.amend_permit(&h.carol, &permit, PermitAmendment::default(), "x")
                .await
                .unwrap_err(),
            Error::NotFound(_)
        ));

        // Add carol, drop bob, narrow a table and add a dataset (latest: pinned at once).
        let mut datasets = h.permit(&h.op, &permit).await.unwrap().terms.datasets;
        datasets[0].tables[0]
            .columns
            .retain(|c| c != "gender_concept_id");
        datasets.push(claims_scope(ReleaseSelector::LatestAtActivation));
        let amended = h
            .amend_permit(
                &h.rev2,
                &permit,
                PermitAmendment {
                    members: Some(vec!["alice".into(), "carol".into()]),
                    datasets: Some(datasets),
                    ..Default::default()
                },
                "team change",
            )
            .await
            .unwrap();
        assert_eq!(amended.version, 2, "{b}");
        assert_eq!(amended.version_created_by, "rev2");
        assert_eq!(amended.version_reason, "team change");
        assert_eq!(
            amended.terms.datasets[1].release,
            ReleaseSelector::Number(1)
        );
        assert_eq!(
            amended.table("omop", "person").unwrap().columns,
            vec!["person_id", "year_of_birth"]
        );
        assert!(
            h.permit_for_query("carol", &permit, now)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            h.permit_for_query("bob", &permit, now)
                .await
                .unwrap()
                .is_none()
        );
        // Bob, no longer a member, still sees the permit as a team member of the application.
        assert_eq!(h.permit(&h.bob, &permit).await.unwrap().version, 2);
        let versions = h.permit_versions(&h.op, &permit).await.unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0].terms.members, vec!["alice", "bob"]);
        assert_eq!(versions[0].reason, "approval");
        assert_eq!(versions[1].terms.members, vec!["alice", "carol"]);

        // Deactivating a member ends their access at once.
        h.set_user_active(&h.op, "carol", false).await.unwrap();
        assert!(
            h.permit_for_query("carol", &permit, now)
                .await
                .unwrap()
                .is_none()
        );
        // An inactive user cannot be added.
        assert!(matches!(
            h.amend_permit(
                &h.rev1,
                &permit,
                PermitAmendment {
                    members: Some(vec!["carol".into()]),
                    ..Default::default()
                },
                "x"
            )
            .await
            .unwrap_err(),
            Error::InvalidInput(_)
        ));
    }
}

#[tokio::test]
async fn permit_terms_are_validated() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::UnderReview, None).await;
        let mut bad = Vec::new();
        let mut g = grant();
        g.datasets[0].release = ReleaseSelector::Number(7);
        bad.push(g);
        let mut g = grant();
        g.datasets[0].tables[0].columns.clear();
        bad.push(g);
        let mut g = grant();
        g.datasets[0].tables[0]
            .columns
            .push("x\"; DROP TABLE permits; --".into());
        bad.push(g);
        let mut g = grant();
        g.expires_at = Some(h.env.now() - TimeDelta::days(1));
        bad.push(g);
        let mut g = grant();
        g.output.k = Some(0);
        bad.push(g);
        let mut g = grant();
        g.output.k = Some(9);
        bad.push(g);
        let mut g = grant();
        g.output.rounding = Some(5);
        bad.push(g);
        let mut g = grant();
        g.output.profile = DisclosureProfile::Custom;
        bad.push(g);
        let mut g = grant();
        g.output.dp = Some(agora_govern::DpPolicy {
            epsilon_budget: f64::NAN,
            epsilon_per_query: None,
            delta: 0.0,
            max_rows_per_person: None,
            sum_bound: None,
        });
        bad.push(g);
        let mut g = grant();
        g.datasets.clear();
        bad.push(g);
        let mut g = grant();
        g.datasets[0].tables[1].row_filters = vec![RowFilter::Period {
            column: "condition_start_date".into(),
            from: None,
            to: None,
        }];
        bad.push(g);
        let mut g = grant();
        g.datasets[0].dataset = "No Such".into();
        bad.push(g);
        let mut g = grant();
        g.members = Some(vec!["alice".into(), "ghost".into()]);
        bad.push(g);
        let mut g = grant();
        g.members = Some(vec![]);
        bad.push(g);
        for (i, g) in bad.into_iter().enumerate() {
            let err = h
                .approve_application(&h.rev1, &id, g, None)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{b} #{i}: {err}");
            assert!(!err.to_string().contains("DROP"), "{err}");
        }
        // Nothing was approved by the refusals.
        assert_eq!(
            h.application(&h.op, &id).await.unwrap().state,
            S::UnderReview
        );
        // Reviewers may grant access to fewer people than the team.
        let mut g = grant();
        g.members = Some(vec!["alice".into()]);
        let permit = h.approve_application(&h.rev1, &id, g, None).await.unwrap();
        assert_eq!(permit.terms.members, vec!["alice"], "{b}");
        // Bob, still an applicant, sees the permit but is not a member.
        assert!(!h.permit(&h.bob, &permit.id).await.unwrap().is_member("bob"));
    }
}

#[tokio::test]
async fn activation_needs_a_release_for_latest_scopes() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::UnderReview, None).await;
        let mut g = grant();
        g.datasets.push(DatasetScope {
            dataset: "registry_2030".into(),
            release: ReleaseSelector::LatestAtActivation,
            tables: vec![TableScope {
                table: "t".into(),
                columns: vec!["c".into()],
                row_filters: vec![],
                precision: Default::default(),
            }],
        });
        h.approve_application(&h.rev1, &id, g, None).await.unwrap();
        let err = h
            .transition_application(&h.op, &id, S::Active, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{b}: {err}");
        assert_eq!(h.application(&h.op, &id).await.unwrap().state, S::Approved);
        let permit = h.permit_id(&id).await;
        assert!(
            h.permit(&h.op, &permit)
                .await
                .unwrap()
                .activated_at
                .is_none()
        );
    }
}

#[tokio::test]
async fn permit_lists_show_researchers_their_own_projects_only() {
    for h in hubs().await {
        let b = h.env.backend;
        let alices = h.permit_id(&h.app_in(S::Approved, None).await).await;
        h.env.advance(TimeDelta::minutes(1)); // listed oldest first
        let mut form = crate::support::form();
        form.team = vec![];
        let carols = h.create_application(&h.carol, form).await.unwrap().id;
        h.transition_application(&h.carol, &carols, S::Submitted, None)
            .await
            .unwrap();
        h.transition_application(&h.rev2, &carols, S::UnderReview, None)
            .await
            .unwrap();
        let carols = h
            .approve_application(&h.rev2, &carols, grant(), None)
            .await
            .unwrap()
            .id;
        assert_eq!(permit_ids(&h, &h.alice).await, vec![alices.clone()], "{b}");
        assert_eq!(
            permit_ids(&h, &h.bob).await,
            vec![alices.clone()],
            "{b}: team member"
        );
        assert_eq!(permit_ids(&h, &h.carol).await, vec![carols.clone()], "{b}");
        assert_eq!(
            permit_ids(&h, &h.rev1).await,
            vec![alices.clone(), carols.clone()]
        );
        assert_eq!(permit_ids(&h, &h.op).await, vec![alices, carols]);
        let nobody = crate::support::p("nobody", &[]);
        assert!(permit_ids(&h, &nobody).await.is_empty());
    }
}

async fn permit_ids(h: &crate::support::Hub, who: &agora_govern::Principal) -> Vec<String> {
    h.list_permits(who)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect()
}

/// Issue 11, item 14: a permit cannot outlive the requested duration (24 months in the test
/// form) without a recorded reason, nor the hub maximum at all, whether set at approval or
/// by an amendment.
#[tokio::test]
async fn regression_issue_11_14_permit_expiry_is_bounded() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::UnderReview, None).await;
        let now = h.env.now();
        let year_2099 = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
        let refused = |e: Error, needle: &str| {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{b}: {e}");
            let message = e.to_string();
            assert!(message.contains(needle), "{b}: {message}");
        };

        // 2099 on a 24-month project: refused, saying the limit no reason lifts.
        let mut g = grant();
        g.expires_at = Some(year_2099);
        let e = h
            .approve_application(&h.rev1, &id, g, None)
            .await
            .unwrap_err();
        refused(e, "hub maximum of 60 months");
        // Even with a reason: past the hub maximum (60 months by default).
        let mut g = grant();
        g.expires_at = Some(year_2099);
        g.expiry_beyond_request_reason = Some("long follow-up".into());
        let e = h
            .approve_application(&h.rev1, &id, g, None)
            .await
            .unwrap_err();
        refused(e, "hub maximum of 60 months");
        // 30 months without a reason: refused; the message says the limit and the override.
        for needle in [
            "the 24 months the application asked for",
            "expiry_beyond_request_reason",
        ] {
            let mut g = grant();
            g.expires_at = Some(now + chrono::Months::new(30));
            let e = h
                .approve_application(&h.rev1, &id, g, None)
                .await
                .unwrap_err();
            refused(e, needle);
        }
        // A reason without an explicit expiry, or a blank one: refused.
        let mut g = grant();
        g.expiry_beyond_request_reason = Some("why not".into());
        let e = h
            .approve_application(&h.rev1, &id, g, None)
            .await
            .unwrap_err();
        refused(e, "explicit expires_at");
        let mut g = grant();
        g.expires_at = Some(now + chrono::Months::new(30));
        g.expiry_beyond_request_reason = Some("  ".into());
        let e = h
            .approve_application(&h.rev1, &id, g, None)
            .await
            .unwrap_err();
        refused(e, "empty");
        assert_eq!(
            h.application(&h.alice, &id).await.unwrap().state,
            S::UnderReview,
            "{b}: nothing was issued"
        );
        // With a reason, 30 months is granted and the reason kept with the version.
        let mut g = grant();
        g.expires_at = Some(now + chrono::Months::new(30));
        g.expiry_beyond_request_reason = Some("cohort follow-up ends later".into());
        let permit = h.approve_application(&h.rev1, &id, g, None).await.unwrap();
        assert_eq!(
            permit.terms.expiry_beyond_request_reason.as_deref(),
            Some("cohort follow-up ends later")
        );

        // Amendments: the same bounds, from the permit's issue.
        let amend = |expires_at, reason: Option<&str>| PermitAmendment {
            expires_at: Some(expires_at),
            expiry_beyond_request_reason: reason.map(str::to_owned),
            ..Default::default()
        };
        let e = h
            .amend_permit(&h.rev1, &permit.id, amend(year_2099, None), "extend")
            .await
            .unwrap_err();
        refused(e, "hub maximum of 60 months");
        let e = h
            .amend_permit(
                &h.rev1,
                &permit.id,
                amend(now + chrono::Months::new(61), Some("more time")),
                "extend",
            )
            .await
            .unwrap_err();
        refused(e, "hub maximum of 60 months");
        // A new expiry needs its own reason: the approval's does not carry over.
        let e = h
            .amend_permit(
                &h.rev1,
                &permit.id,
                amend(now + chrono::Months::new(36), None),
                "extend",
            )
            .await
            .unwrap_err();
        refused(e, "expiry_beyond_request_reason");
        let amended = h
            .amend_permit(
                &h.rev1,
                &permit.id,
                amend(
                    now + chrono::Months::new(36),
                    Some("recruitment was delayed"),
                ),
                "extend",
            )
            .await
            .unwrap();
        assert_eq!(amended.version, 2);
        // Back within the request: no reason needed, and none is kept.
        let shortened = h
            .amend_permit(
                &h.rev1,
                &permit.id,
                amend(now + chrono::Months::new(12), None),
                "shorten",
            )
            .await
            .unwrap();
        assert_eq!(shortened.terms.expiry_beyond_request_reason, None);
        let versions = h.permit_versions(&h.rev1, &permit.id).await.unwrap();
        let reasons: Vec<Option<&str>> = versions
            .iter()
            .map(|v| v.terms.expiry_beyond_request_reason.as_deref())
            .collect();
        assert_eq!(
            reasons,
            vec![
                Some("cohort follow-up ends later"),
                Some("recruitment was delayed"),
                None
            ],
            "{b}: the history keeps each reason"
        );
    }

    // The hub maximum is configurable, and bounds the default expiry too.
    let config = GovernConfig {
        permits: PermitPolicy { max_months: 12 },
        ..test_config()
    };
    for env in stores_with(config).await {
        let h = hub(env).await;
        let id = h.app_in(S::UnderReview, None).await;
        let e = h
            .approve_application(&h.rev1, &id, grant(), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("hub maximum of 12 months"), "{e}");
        let mut g = grant();
        g.expires_at = Some(h.env.now() + chrono::Months::new(12));
        h.approve_application(&h.rev1, &id, g, None).await.unwrap();
    }
}
