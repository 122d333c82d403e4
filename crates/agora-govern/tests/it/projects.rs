use agora_govern::{
    ApplicationState as S, Deadlines, Error, EventKind, GovernConfig, Party, Period, Principal,
    Step, TRANSITIONS, transition_rule,
};
use chrono::{TimeDelta, TimeZone, Utc};

use crate::support::{Hub, form, grant, hub, hubs, stores_with, test_config};

#[tokio::test]
async fn an_application_goes_from_draft_to_closed_with_its_history() {
    for h in hubs().await {
        let b = h.env.backend;
        let mut f = form();
        f.title = String::new();
        let app = h.create_application(&h.alice, f).await.unwrap();
        assert_eq!(app.state, S::Draft);
        assert_eq!(app.owner, "alice");
        assert_eq!(app.form.team, vec!["bob".to_owned()]);
        assert!(app.submitted_at.is_none() && app.permit_id.is_none());
        assert_eq!(app.transitions_for(&h.alice), vec![S::Submitted, S::Closed]);
        assert_eq!(app.transitions_for(&h.bob), vec![S::Submitted]);
        assert!(app.transitions_for(&h.rev1).is_empty());

        // Incomplete: submission refused, naming the field.
        let err = h
            .transition_application(&h.bob, &app.id, S::Submitted, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput(m) if m.contains("title")),
            "{b}: {err}"
        );
        // Team members edit too.
        let app = h.update_application(&h.bob, &app.id, form()).await.unwrap();
        assert_eq!(app.form.title, form().title);
        let app = h
            .transition_application(&h.bob, &app.id, S::Submitted, Some("ready"))
            .await
            .unwrap();
        assert_eq!(app.state, S::Submitted);
        assert_eq!(app.submitted_at, Some(h.env.now()));
        // No edits outside draft / changes_requested.
        assert!(matches!(
            h.update_application(&h.alice, &app.id, form())
                .await
                .unwrap_err(),
            Error::Conflict(_)
        ));

        h.env.advance(TimeDelta::hours(1));
        h.transition_application(&h.rev1, &app.id, S::UnderReview, None)
            .await
            .unwrap();
        h.transition_application(&h.rev2, &app.id, S::ChangesRequested, Some("add a DPIA"))
            .await
            .unwrap();
        let mut f = form();
        f.purpose.push_str(" (DPIA attached)");
        h.update_application(&h.alice, &app.id, f).await.unwrap();
        h.transition_application(&h.alice, &app.id, S::Submitted, None)
            .await
            .unwrap();
        h.transition_application(&h.rev1, &app.id, S::UnderReview, None)
            .await
            .unwrap();
        h.record_scientific_opinion(&h.rev2, &app.id, true, "sound protocol")
            .await
            .unwrap();
        let permit = h
            .approve_application(&h.rev1, &app.id, grant(), Some("approved"))
            .await
            .unwrap();
        h.transition_application(&h.op, &app.id, S::Active, None)
            .await
            .unwrap();
        h.transition_application(&h.alice, &app.id, S::Closed, Some("study finished"))
            .await
            .unwrap();
        let app = h.application(&h.bob, &app.id).await.unwrap();
        assert_eq!(app.state, S::Closed);
        assert_eq!(app.permit_id.as_deref(), Some(permit.id.as_str()));
        assert!(app.transitions_for(&h.alice).is_empty());

        let history = h.application_history(&h.alice, &app.id).await.unwrap();
        let summary: Vec<(EventKind, Option<S>, S, &str)> = history
            .iter()
            .map(|e| (e.kind, e.from, e.to, e.actor.as_str()))
            .collect();
        use EventKind::*;
        assert_eq!(
            summary,
            vec![
                (Created, None, S::Draft, "alice"),
                (Edited, Some(S::Draft), S::Draft, "bob"),
                (Transition, Some(S::Draft), S::Submitted, "bob"),
                (Transition, Some(S::Submitted), S::UnderReview, "rev1"),
                (
                    Transition,
                    Some(S::UnderReview),
                    S::ChangesRequested,
                    "rev2"
                ),
                (
                    Edited,
                    Some(S::ChangesRequested),
                    S::ChangesRequested,
                    "alice"
                ),
                (Transition, Some(S::ChangesRequested), S::Submitted, "alice"),
                (Transition, Some(S::Submitted), S::UnderReview, "rev1"),
                (
                    FavourableOpinion,
                    Some(S::UnderReview),
                    S::UnderReview,
                    "rev2"
                ),
                (Transition, Some(S::UnderReview), S::Approved, "rev1"),
                (Transition, Some(S::Approved), S::Active, "op"),
                (Transition, Some(S::Active), S::Closed, "alice"),
            ],
            "{b}"
        );
        assert_eq!(history[4].comment.as_deref(), Some("add a DPIA"));
        assert_eq!(history[3].at, history[2].at + TimeDelta::hours(1));
        assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Member,
    Reviewer,
    Operator,
    Outsider,
}

const EVERYONE: [Who; 5] = [
    Who::Owner,
    Who::Member,
    Who::Reviewer,
    Who::Operator,
    Who::Outsider,
];

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Denied,
    Invalid,
}

fn who(h: &Hub, w: Who) -> &Principal {
    match w {
        Who::Owner => &h.alice,
        Who::Member => &h.bob,
        Who::Reviewer => &h.rev1,
        Who::Operator => &h.op,
        Who::Outsider => &h.carol,
    }
}

/// What the documented matrix says should happen.
fn expected(from: S, to: S, w: Who) -> Outcome {
    let visible = match w {
        Who::Owner | Who::Member => true,
        Who::Outsider => false,
        // The drafts of this test were never submitted: private to their applicants.
        Who::Reviewer | Who::Operator => from != S::Draft,
    };
    if !visible {
        return Outcome::NotFound;
    }
    let Some(rule) = transition_rule(from, to) else {
        return Outcome::Invalid;
    };
    let allowed = rule.parties.iter().any(|p| match p {
        Party::Applicant => matches!(w, Who::Owner | Who::Member),
        Party::Owner => w == Who::Owner,
        Party::Reviewer => w == Who::Reviewer,
        Party::Operator => w == Who::Operator,
        Party::System => false,
    });
    if allowed {
        Outcome::Ok
    } else {
        Outcome::Denied
    }
}

async fn attempt(h: &Hub, id: &str, to: S, w: Who) -> Outcome {
    let actor = who(h, w);
    let result = if to == S::Approved {
        h.approve_application(actor, id, grant(), None)
            .await
            .map(|_| ())
    } else {
        h.transition_application(actor, id, to, None)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => Outcome::Ok,
        Err(Error::NotFound(_)) => Outcome::NotFound,
        Err(Error::PermissionDenied(_)) => Outcome::Denied,
        Err(Error::InvalidTransition { .. }) => Outcome::Invalid,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Every (from, to, who) triple against the documented matrix.
#[tokio::test]
async fn the_transition_matrix_is_enforced_for_every_state_target_and_party() {
    for h in hubs().await {
        let b = h.env.backend;
        let mut successes = 0;
        for from in S::ALL {
            let shared = h.app_in(from, None).await;
            for to in S::ALL {
                for w in EVERYONE {
                    let want = expected(from, to, w);
                    let id = if want == Outcome::Ok {
                        // A success changes the state: use a fresh application.
                        let expires =
                            (from == S::Active && to == S::Expired).then(|| TimeDelta::minutes(30));
                        let id = h.app_in(from, expires).await;
                        if expires.is_some() {
                            h.env.advance(TimeDelta::hours(1));
                        }
                        id
                    } else {
                        shared.clone()
                    };
                    let got = attempt(&h, &id, to, w).await;
                    assert_eq!(got, want, "{b}: {from} -> {to} by {w:?}");
                    if got == Outcome::Ok {
                        successes += 1;
                        let app = h.application(&h.op, &id).await;
                        if let Ok(app) = app {
                            assert_eq!(app.state, to, "{b}: {from} -> {to}");
                        }
                    }
                }
                let app = h.application(&h.alice, &shared).await.unwrap();
                assert_eq!(app.state, from, "{b}: refusals change nothing");
            }
        }
        let allowed_pairs: usize = TRANSITIONS
            .iter()
            .map(|r| {
                EVERYONE
                    .iter()
                    .filter(|w| expected(r.from, r.to, **w) == Outcome::Ok)
                    .count()
            })
            .sum();
        assert_eq!(successes, allowed_pairs, "{b}");
        assert!(successes >= 20, "{b}: {successes}");
    }
}

#[tokio::test]
async fn reviewers_never_review_their_own_projects() {
    for h in hubs().await {
        let b = h.env.backend;
        let mut f = form();
        f.team = vec!["rita".into()];
        let app = h.create_application(&h.alice, f).await.unwrap();
        h.transition_application(&h.rita, &app.id, S::Submitted, None)
            .await
            .unwrap();
        let err = h
            .transition_application(&h.rita, &app.id, S::UnderReview, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(_)), "{b}: {err}");
        h.transition_application(&h.rev1, &app.id, S::UnderReview, None)
            .await
            .unwrap();
        assert!(matches!(
            h.record_scientific_opinion(&h.rita, &app.id, true, "mine is great")
                .await
                .unwrap_err(),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            h.approve_application(&h.rita, &app.id, grant(), None)
                .await
                .unwrap_err(),
            Error::PermissionDenied(_)
        ));
        // Rita reviews other people's projects.
        let other = h.app_in(S::Submitted, None).await;
        h.transition_application(&h.rita, &other, S::UnderReview, None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn researchers_cannot_see_other_projects_applications_or_permits() {
    for h in hubs().await {
        let b = h.env.backend;
        let draft = h.draft().await;
        let active = h.app_in(S::Active, None).await;
        let permit = h.permit_id(&active).await;

        for id in [&draft, &active] {
            let hidden = h.application(&h.carol, id).await.unwrap_err();
            let missing = h.application(&h.carol, "app_missing").await.unwrap_err();
            assert!(matches!(hidden, Error::NotFound(_)), "{b}");
            assert_eq!(hidden.to_string(), missing.to_string(), "{b}");
            assert!(matches!(
                h.application_history(&h.carol, id).await.unwrap_err(),
                Error::NotFound(_)
            ));
            assert!(matches!(
                h.transition_application(&h.carol, id, S::Closed, None)
                    .await
                    .unwrap_err(),
                Error::NotFound(_)
            ));
            assert!(matches!(
                h.update_application(&h.carol, id, form())
                    .await
                    .unwrap_err(),
                Error::NotFound(_)
            ));
        }
        let hidden = h.permit(&h.carol, &permit).await.unwrap_err();
        let missing = h.permit(&h.carol, "pmt_missing").await.unwrap_err();
        assert!(matches!(hidden, Error::NotFound(_)), "{b}");
        assert_eq!(hidden.to_string(), missing.to_string());
        assert!(matches!(
            h.permit_versions(&h.carol, &permit).await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(
            h.permit_for_query("carol", &permit, h.env.now())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.list_applications(&h.carol, None)
                .await
                .unwrap()
                .is_empty()
        );

        // The team sees everything of its own project.
        assert_eq!(h.permit(&h.bob, &permit).await.unwrap().id, permit);
        assert_eq!(h.list_applications(&h.bob, None).await.unwrap().len(), 2);

        // Staff do not see drafts that were never submitted.
        assert!(matches!(
            h.application(&h.rev1, &draft).await.unwrap_err(),
            Error::NotFound(_)
        ));
        let staff: Vec<String> = h
            .list_applications(&h.op, None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(staff, vec![active.clone()], "{b}");
        // A withdrawn submission stays visible to reviewers.
        let withdrawn = h.app_in(S::Submitted, None).await;
        h.transition_application(&h.alice, &withdrawn, S::Draft, None)
            .await
            .unwrap();
        assert_eq!(
            h.application(&h.rev1, &withdrawn).await.unwrap().state,
            S::Draft
        );
        let queue = h.list_applications(&h.rev1, Some(S::Draft)).await.unwrap();
        assert_eq!(queue.len(), 1);
    }
}

#[tokio::test]
async fn applications_are_validated_without_echoing_values() {
    for h in hubs().await {
        let mut f = form();
        f.team = vec!["ghost".into()];
        let err = h.create_application(&h.alice, f).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)));
        assert!(!err.to_string().contains("ghost"), "{err}");
        let mut f = form();
        f.requested[0].tables[0].columns = vec!["x; DROP TABLE users".into()];
        let err = h.create_application(&h.alice, f).await.unwrap_err();
        assert!(!err.to_string().contains("DROP"), "{err}");
        let mut f = form();
        f.duration_months = 1000;
        assert!(h.create_application(&h.alice, f).await.is_err());
        // Only researchers apply.
        assert!(matches!(
            h.create_application(&h.rev1, form()).await.unwrap_err(),
            Error::PermissionDenied(_)
        ));
        // The owner is not listed twice.
        let mut f = form();
        f.team = vec!["alice".into(), "bob".into(), "bob".into()];
        let app = h.create_application(&h.alice, f).await.unwrap();
        assert_eq!(app.form.team, vec!["bob".to_owned()]);
        // Approval is only through approve_application.
        assert!(matches!(
            h.transition_application(&h.alice, &app.id, S::Approved, None)
                .await
                .unwrap_err(),
            Error::InvalidInput(_)
        ));
    }
}

#[tokio::test]
async fn review_steps_carry_due_dates_in_working_days_and_months() {
    for h in hubs().await {
        let b = h.env.backend;
        let t0 = h.env.now(); // Monday 2026-03-02 09:00
        let id = h.app_in(S::Submitted, None).await;
        let app = h.application(&h.alice, &id).await.unwrap();
        assert_eq!(app.deadlines.len(), 1);
        let cc = &app.deadlines[0];
        assert_eq!(cc.step, Step::CompletenessCheck);
        assert_eq!(cc.started_at, t0);
        // 7 working days: Wednesday 11 March, same time.
        assert_eq!(
            cc.due_at,
            Utc.with_ymd_and_hms(2026, 3, 11, 9, 0, 0).unwrap(),
            "{b}"
        );
        assert!(!cc.overdue && cc.completed_at.is_none());
        assert_eq!(app.next_deadline().unwrap().step, Step::CompletenessCheck);

        // Late: 10 days later the check is overdue, and stays flagged once done.
        h.env.advance(TimeDelta::days(10));
        assert!(h.application(&h.alice, &id).await.unwrap().deadlines[0].overdue);
        let t1 = h.env.now();
        h.transition_application(&h.rev1, &id, S::UnderReview, None)
            .await
            .unwrap();
        let app = h.application(&h.alice, &id).await.unwrap();
        assert_eq!(app.deadlines[0].completed_at, Some(t1));
        assert!(app.deadlines[0].overdue);
        let so = &app.deadlines[1];
        assert_eq!(so.step, Step::ScientificOpinion);
        assert_eq!(
            so.due_at,
            Utc.with_ymd_and_hms(2026, 4, 12, 9, 0, 0).unwrap()
        );

        h.env.advance(TimeDelta::days(9));
        let t2 = h.env.now(); // Saturday 2026-03-21
        h.record_scientific_opinion(&h.rev2, &id, true, "fine")
            .await
            .unwrap();
        // Only one opinion per review round.
        assert!(matches!(
            h.record_scientific_opinion(&h.rev2, &id, false, "again")
                .await
                .unwrap_err(),
            Error::Conflict(_)
        ));
        let app = h.application(&h.alice, &id).await.unwrap();
        assert_eq!(app.deadlines[1].completed_at, Some(t2));
        assert!(!app.deadlines[1].overdue);
        let auth = &app.deadlines[2];
        assert_eq!(auth.step, Step::Authorization);
        assert_eq!(
            auth.due_at,
            Utc.with_ymd_and_hms(2026, 5, 21, 9, 0, 0).unwrap()
        );

        // A change request stops the clock; resubmission starts a new completeness check.
        h.transition_application(&h.rev1, &id, S::ChangesRequested, None)
            .await
            .unwrap();
        let app = h.application(&h.alice, &id).await.unwrap();
        assert!(app.deadlines.iter().all(|d| d.completed_at.is_some()));
        assert!(app.next_deadline().is_none());
        h.env.advance(TimeDelta::days(1)); // Sunday 22 March
        h.transition_application(&h.alice, &id, S::Submitted, None)
            .await
            .unwrap();
        let app = h.application(&h.alice, &id).await.unwrap();
        let last = app.deadlines.last().unwrap();
        assert_eq!(last.step, Step::CompletenessCheck);
        // From a Sunday, 7 working days end on Tuesday 31 March.
        assert_eq!(
            last.due_at,
            Utc.with_ymd_and_hms(2026, 3, 31, 9, 0, 0).unwrap()
        );
        assert_eq!(app.deadlines.len(), 4, "{b}");
    }
}

#[tokio::test]
async fn deadlines_are_configurable_and_fixed_when_a_step_starts() {
    let config = GovernConfig {
        deadlines: Deadlines {
            completeness_check: Period::WorkingDays(2),
            scientific_opinion: Period::Days(10),
            authorization: Period::Months(1),
            holidays: vec![chrono::NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()],
        },
        ..test_config()
    };
    for env in stores_with(config).await {
        let h = hub(env).await;
        let id = h.app_in(S::UnderReview, None).await;
        let app = h.application(&h.alice, &id).await.unwrap();
        // Monday + 2 working days, Tuesday being a holiday: Thursday.
        assert_eq!(
            app.deadlines[0].due_at,
            Utc.with_ymd_and_hms(2026, 3, 5, 9, 0, 0).unwrap()
        );
        assert_eq!(
            app.deadlines[1].due_at,
            Utc.with_ymd_and_hms(2026, 3, 12, 9, 0, 0).unwrap()
        );
        // A store reopened with another policy keeps the announced dates.
        let reopened = agora_govern::MetaStore::open(&h.env.url)
            .await
            .unwrap()
            .with_clock(h.env.clock.clone());
        let same = reopened.application(&h.alice, &id).await.unwrap();
        assert_eq!(same.deadlines, app.deadlines);
        reopened.close().await;
    }
}

#[tokio::test]
async fn expiry_needs_the_permit_to_have_expired_and_the_sweep_records_it() {
    for h in hubs().await {
        let b = h.env.backend;
        let id = h.app_in(S::Active, Some(TimeDelta::days(30))).await;
        let err = h
            .transition_application(&h.op, &id, S::Expired, None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{b}: {err}");
        assert!(h.expire_permits().await.unwrap().is_empty());
        h.env.advance(TimeDelta::days(30));
        assert_eq!(h.expire_permits().await.unwrap(), vec![id.clone()], "{b}");
        assert!(h.expire_permits().await.unwrap().is_empty());
        let history = h.application_history(&h.alice, &id).await.unwrap();
        let last = history.last().unwrap();
        assert_eq!((last.to, last.actor.as_str()), (S::Expired, "system"));
    }
}

#[tokio::test]
async fn the_review_queue_puts_the_most_urgent_first_and_hides_own_projects() {
    for h in hubs().await {
        let b = h.env.backend;
        let under_review = h.app_in(S::UnderReview, None).await; // opinion due in 1 month
        h.env.advance(TimeDelta::days(1));
        let submitted = h.app_in(S::Submitted, None).await; // check due in 7 working days
        h.env.advance(TimeDelta::minutes(1));
        let mut f = form();
        f.team = vec!["rita".into()];
        let own = h.create_application(&h.alice, f).await.unwrap().id;
        h.transition_application(&h.alice, &own, S::Submitted, None)
            .await
            .unwrap();
        h.draft().await;
        let ids = |q: Vec<agora_govern::Application>| -> Vec<String> {
            q.into_iter().map(|a| a.id).collect()
        };
        let q = ids(h.review_queue(&h.rev1).await.unwrap());
        assert_eq!(
            q,
            vec![submitted.clone(), own.clone(), under_review.clone()],
            "{b}"
        );
        let q = ids(h.review_queue(&h.rita).await.unwrap());
        assert_eq!(q, vec![submitted, under_review], "{b}");
        assert!(matches!(
            h.review_queue(&h.alice).await.unwrap_err(),
            Error::PermissionDenied(_)
        ));
    }
}
