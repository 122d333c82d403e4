use agora_govern::{
    Error, GovernConfig, LoginPolicy, NewUser, PasswordPolicy, Role, SessionPolicy,
};
use chrono::TimeDelta;

use crate::support::{hub, hubs, p, stores_with, test_config};

fn new_user(id: &str, roles: &[Role]) -> NewUser {
    NewUser {
        id: id.into(),
        display_name: format!("User {id}"),
        email: None,
        roles: roles.to_vec(),
    }
}

#[tokio::test]
async fn user_administration_is_for_operators_and_keeps_an_operator() {
    for h in hubs().await {
        let b = h.env.backend;
        // Only operators create users; the refusal says nothing about the id.
        let err = h
            .create_user(&h.alice, new_user("dave", &[Role::Researcher]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied(_)), "{b}: {err}");
        let dave = h
            .create_user(&h.op, new_user("dave", &[Role::Researcher, Role::Producer]))
            .await
            .unwrap();
        assert_eq!(dave.roles, vec![Role::Producer, Role::Researcher], "{b}");
        assert!(dave.active && !dave.has_password);
        let err = h
            .create_user(&h.op, new_user("dave", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{b}: {err}");
        for bad in ["Dave", "", "oidc-x", "a b"] {
            assert!(
                h.create_user(&h.op, new_user(bad, &[])).await.is_err(),
                "{b}: {bad}"
            );
        }

        // Users read themselves; others' accounts do not exist for them.
        assert_eq!(h.user(&h.alice, "alice").await.unwrap().id, "alice");
        let hidden = h.user(&h.alice, "bob").await.unwrap_err();
        let missing = h.user(&h.alice, "nobody").await.unwrap_err();
        assert_eq!(hidden.to_string(), missing.to_string(), "{b}");
        assert!(matches!(hidden, Error::NotFound(_)));
        assert!(matches!(
            h.list_users(&h.alice).await.unwrap_err(),
            Error::PermissionDenied(_)
        ));
        let ids: Vec<String> = h
            .list_users(&h.op)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(
            ids,
            [
                "alice", "bob", "carol", "dave", "op", "rev1", "rev2", "rita", "root"
            ],
            "{b}"
        );

        // Profile edits: self or operator.
        let u = h
            .update_user(&h.alice, "alice", "Alice A.", Some("a@x.example"))
            .await
            .unwrap();
        assert_eq!(u.display_name, "Alice A.");
        assert!(matches!(
            h.update_user(&h.alice, "bob", "B", None).await.unwrap_err(),
            Error::NotFound(_)
        ));

        // Roles are replaced as a set.
        let d = h
            .set_user_roles(&h.op, "dave", &[Role::Reviewer])
            .await
            .unwrap();
        assert_eq!(d.roles, vec![Role::Reviewer]);
        assert!(matches!(
            h.set_user_roles(&h.op, "ghost", &[]).await.unwrap_err(),
            Error::NotFound(_)
        ));

        // The last active operators cannot all be removed or deactivated.
        h.set_user_roles(&h.op, "root", &[]).await.unwrap();
        let err = h.set_user_roles(&h.op, "op", &[]).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{b}: {err}");
        let err = h.set_user_active(&h.op, "op", false).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{b}: {err}");
        assert!(
            h.user(&h.op, "op").await.unwrap().active,
            "{b}: rolled back"
        );
        let d = h.set_user_active(&h.op, "dave", false).await.unwrap();
        assert!(!d.active);
    }
}

#[tokio::test]
async fn passwords_are_argon2id_and_failures_are_indistinguishable() {
    for h in hubs().await {
        let b = h.env.backend;
        let err = h
            .set_password(&h.alice, "alice", "short", None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{b}");
        assert!(!err.to_string().contains("short"));
        h.set_password(&h.alice, "alice", "correct horse battery", None)
            .await
            .unwrap();
        // Someone else's password: only operators.
        assert!(matches!(
            h.set_password(&h.bob, "alice", "another long password", None)
                .await
                .unwrap_err(),
            Error::NotFound(_)
        ));
        h.set_password(&h.op, "bob", "bob's long password", None)
            .await
            .unwrap();
        assert!(h.user(&h.op, "alice").await.unwrap().has_password);

        let ok = h
            .authenticate_password("alice", "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ok, p("alice", &[Role::Researcher]), "{b}");
        // Case and surrounding spaces of the login do not matter.
        assert!(
            h.authenticate_password(" Alice ", "correct horse battery")
                .await
                .unwrap()
                .is_some()
        );
        // Wrong password, unknown login, account without password, inactive account: all None.
        assert!(
            h.authenticate_password("alice", "wrong")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.authenticate_password("nobody", "correct horse battery")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.authenticate_password("carol", "anything at all")
                .await
                .unwrap()
                .is_none()
        );
        h.set_user_active(&h.op, "bob", false).await.unwrap();
        assert!(
            h.authenticate_password("bob", "bob's long password")
                .await
                .unwrap()
                .is_none()
        );

        // Only PHC strings are stored.
        let raw = h.env.raw().await;
        let stored: Vec<String> = sqlx::query_scalar("SELECT phc FROM password_credentials")
            .fetch_all(&raw)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        for phc in stored {
            assert!(phc.starts_with("$argon2id$v=19$"), "{b}: {phc}");
            assert!(!phc.contains("horse") && !phc.contains("bob's"));
        }
        raw.close().await;
    }
}

#[tokio::test]
async fn failed_logins_are_rate_limited_without_revealing_accounts() {
    for h in hubs().await {
        let b = h.env.backend;
        h.set_password(&h.op, "alice", "correct horse battery", None)
            .await
            .unwrap();
        for _ in 0..5 {
            assert!(
                h.authenticate_password("alice", "guess")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                h.authenticate_password("nobody", "guess")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        // Locked: even the right password is refused, and an unknown login gets the very
        // same answer.
        let known = h
            .authenticate_password("alice", "correct horse battery")
            .await
            .unwrap_err();
        let unknown = h
            .authenticate_password("nobody", "correct horse battery")
            .await
            .unwrap_err();
        assert!(
            matches!(known, Error::RateLimited { retry_after_secs } if retry_after_secs == 900),
            "{b}: {known}"
        );
        assert_eq!(known.to_string(), unknown.to_string(), "{b}");
        assert!(!known.to_string().contains("alice"));
        // Other logins are not affected.
        h.set_password(&h.op, "bob", "bob's long password", None)
            .await
            .unwrap();
        assert!(
            h.authenticate_password("bob", "bob's long password")
                .await
                .unwrap()
                .is_some()
        );

        h.env.advance(TimeDelta::minutes(14));
        assert!(matches!(
            h.authenticate_password("alice", "correct horse battery")
                .await
                .unwrap_err(),
            Error::RateLimited {
                retry_after_secs: 60
            }
        ));
        h.env.advance(TimeDelta::minutes(1));
        assert!(
            h.authenticate_password("alice", "correct horse battery")
                .await
                .unwrap()
                .is_some(),
            "{b}: lock over"
        );

        // A success resets the count: 4 failures, success, 4 failures: not locked.
        for _ in 0..4 {
            h.authenticate_password("alice", "guess").await.unwrap();
        }
        h.authenticate_password("alice", "correct horse battery")
            .await
            .unwrap()
            .unwrap();
        for _ in 0..4 {
            h.authenticate_password("alice", "guess").await.unwrap();
        }
        assert!(
            h.authenticate_password("alice", "correct horse battery")
                .await
                .unwrap()
                .is_some()
        );

        // Failures spread beyond the window do not add up.
        for _ in 0..4 {
            h.authenticate_password("carol", "guess").await.unwrap();
        }
        h.env.advance(TimeDelta::minutes(16));
        for _ in 0..4 {
            h.authenticate_password("carol", "guess").await.unwrap();
        }
        h.set_password(&h.op, "carol", "carol's long password", None)
            .await
            .unwrap();
        assert!(
            h.authenticate_password("carol", "carol's long password")
                .await
                .unwrap()
                .is_some()
        );

        // The throttle stores no login name.
        let raw = h.env.raw().await;
        let keys: Vec<String> = sqlx::query_scalar("SELECT login_hash FROM login_throttle")
            .fetch_all(&raw)
            .await
            .unwrap();
        assert!(keys.iter().all(|k| k.len() == 64 && !k.contains("nobody")));
        raw.close().await;
        h.purge_expired_auth_state().await.unwrap();
    }
}

#[tokio::test]
async fn login_policy_is_configurable() {
    let config = GovernConfig {
        logins: LoginPolicy {
            max_failures: 2,
            window: TimeDelta::minutes(1),
            lockout: TimeDelta::hours(1),
        },
        passwords: PasswordPolicy {
            min_length: 20,
            ..PasswordPolicy::insecure_fast_for_tests()
        },
        ..test_config()
    };
    for env in stores_with(config).await {
        let h = hub(env).await;
        assert!(
            h.set_password(&h.op, "alice", "nineteen characters", None)
                .await
                .is_err()
        );
        h.authenticate_password("alice", "x").await.unwrap();
        h.authenticate_password("alice", "x").await.unwrap();
        assert!(matches!(
            h.authenticate_password("alice", "x").await.unwrap_err(),
            Error::RateLimited {
                retry_after_secs: 3600
            }
        ));
    }
}

#[tokio::test]
async fn sessions_expire_when_idle_or_old_and_can_be_revoked() {
    for h in hubs().await {
        let b = h.env.backend;
        let s = h.create_session("alice").await.unwrap();
        assert!(s.token.starts_with("agoras_") && s.token.len() > 64);
        assert_eq!(s.expires_at, h.env.now() + TimeDelta::hours(12));
        assert!(!format!("{s:?}").contains(&s.token));
        let who = h.session_principal(&s.token).await.unwrap().unwrap();
        assert_eq!(who, p("alice", &[Role::Researcher]), "{b}");
        // Use within the idle period keeps it alive...
        h.env.advance(TimeDelta::hours(7));
        assert!(h.session_principal(&s.token).await.unwrap().is_some());
        h.env.advance(TimeDelta::minutes(299)); // 11h59
        assert!(h.session_principal(&s.token).await.unwrap().is_some());
        // ...but never past the absolute limit.
        h.env.advance(TimeDelta::minutes(2)); // 12h01
        assert!(
            h.session_principal(&s.token).await.unwrap().is_none(),
            "{b}"
        );

        // Idle: 8 hours without use.
        let s = h.create_session("alice").await.unwrap();
        h.env.advance(TimeDelta::hours(8));
        assert!(
            h.session_principal(&s.token).await.unwrap().is_none(),
            "{b}"
        );

        // Logout.
        let s = h.create_session("alice").await.unwrap();
        assert!(h.revoke_session(&s.token).await.unwrap());
        assert!(!h.revoke_session(&s.token).await.unwrap());
        assert!(h.session_principal(&s.token).await.unwrap().is_none());

        // Deactivation ends sessions; roles are read live.
        let s = h.create_session("bob").await.unwrap();
        h.set_user_roles(&h.op, "bob", &[Role::Researcher, Role::Producer])
            .await
            .unwrap();
        assert_eq!(
            h.session_principal(&s.token).await.unwrap().unwrap().roles,
            vec![Role::Producer, Role::Researcher]
        );
        h.set_user_active(&h.op, "bob", false).await.unwrap();
        assert!(h.session_principal(&s.token).await.unwrap().is_none());
        h.set_user_active(&h.op, "bob", true).await.unwrap();
        assert!(
            h.session_principal(&s.token).await.unwrap().is_none(),
            "{b}: revoked, not suspended"
        );
        assert!(matches!(
            h.create_session("ghost").await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(
            h.session_principal("agoras_forged")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(h.revoke_user_sessions("bob").await.unwrap(), 0);

        // Only hashes are stored.
        let raw = h.env.raw().await;
        let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions")
            .fetch_all(&raw)
            .await
            .unwrap();
        assert!(hashes.iter().all(|x| !x.starts_with("agoras_")));
        raw.close().await;
        assert!(h.purge_expired_auth_state().await.unwrap() >= 3);
    }
}

#[tokio::test]
async fn session_policy_is_configurable() {
    let config = GovernConfig {
        sessions: SessionPolicy {
            idle: TimeDelta::minutes(30),
            absolute: TimeDelta::hours(1),
        },
        ..test_config()
    };
    for env in stores_with(config).await {
        let h = hub(env).await;
        let s = h.create_session("alice").await.unwrap();
        assert_eq!(s.idle_timeout_secs, 1800);
        h.env.advance(TimeDelta::minutes(29));
        assert!(h.session_principal(&s.token).await.unwrap().is_some());
        h.env.advance(TimeDelta::minutes(30));
        assert!(h.session_principal(&s.token).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn api_tokens_belong_to_users() {
    for h in hubs().await {
        let b = h.env.backend;
        // Bootstrap tokens still work as before.
        let t = h.create_token("ops-bot", &[Role::Operator]).await.unwrap();
        let who = h.authenticate(&t).await.unwrap().unwrap();
        assert_eq!(who, p("ops-bot", &[Role::Operator]), "{b}");
        assert!(h.user(&h.op, "ops-bot").await.unwrap().active);

        // Users get tokens for themselves, with a subset of their roles.
        let t = h
            .issue_token(&h.rita, "rita", Some(&[Role::Researcher]))
            .await
            .unwrap();
        assert_eq!(
            h.authenticate(&t).await.unwrap().unwrap().roles,
            vec![Role::Researcher]
        );
        let all = h.issue_token(&h.op, "rita", None).await.unwrap();
        assert_eq!(
            h.authenticate(&all).await.unwrap().unwrap().roles,
            vec![Role::Reviewer, Role::Researcher]
        );
        assert!(matches!(
            h.issue_token(&h.alice, "alice", Some(&[Role::Operator]))
                .await
                .unwrap_err(),
            Error::PermissionDenied(_)
        ));
        assert!(matches!(
            h.issue_token(&h.alice, "bob", None).await.unwrap_err(),
            Error::NotFound(_)
        ));

        // A role taken from the user is taken from its tokens.
        h.set_user_roles(&h.op, "rita", &[Role::Researcher])
            .await
            .unwrap();
        assert_eq!(
            h.authenticate(&all).await.unwrap().unwrap().roles,
            vec![Role::Researcher]
        );
        assert!(h.revoke_token(&t).await.unwrap());
        assert!(h.authenticate(&t).await.unwrap().is_none());
        assert!(h.authenticate(&all).await.unwrap().is_some());
        assert_eq!(h.revoke_tokens("rita").await.unwrap(), 1);
        assert!(h.authenticate(&all).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn oidc_identities_map_to_one_local_user_without_roles() {
    for h in hubs().await {
        let b = h.env.backend;
        let issuer = "https://idp.example/realms/hub";
        let u = h
            .upsert_oidc_user(issuer, "sub-123", Some("jo@lab.example"), Some("Jo"))
            .await
            .unwrap();
        assert!(u.id.starts_with("oidc-"), "{b}: {}", u.id);
        assert!(u.roles.is_empty() && u.active && !u.has_password);
        assert_eq!(u.display_name, "Jo");
        // Next login: same user, profile refreshed from the provider.
        let again = h
            .upsert_oidc_user(issuer, "sub-123", Some("jo@new.example"), Some("Jo B."))
            .await
            .unwrap();
        assert_eq!(again.id, u.id);
        assert_eq!(again.email.as_deref(), Some("jo@new.example"));
        assert_eq!(again.display_name, "Jo B.");
        // Same subject at another issuer: another person.
        let other = h
            .upsert_oidc_user("https://other.example", "sub-123", None, None)
            .await
            .unwrap();
        assert_ne!(other.id, u.id);
        // Roles are granted by an operator, then sessions carry them.
        h.set_user_roles(&h.op, &u.id, &[Role::Researcher])
            .await
            .unwrap();
        let s = h.create_session(&u.id).await.unwrap();
        assert_eq!(
            h.session_principal(&s.token).await.unwrap().unwrap().roles,
            vec![Role::Researcher]
        );
        // Concurrent first logins converge on one user.
        let (a, c) = tokio::join!(
            h.upsert_oidc_user(issuer, "sub-new", None, Some("N")),
            h.upsert_oidc_user(issuer, "sub-new", None, Some("N")),
        );
        assert_eq!(a.unwrap().id, c.unwrap().id);
        assert!(h.upsert_oidc_user("", "x", None, None).await.is_err());
    }
}

#[tokio::test]
async fn api_tokens_are_listed_and_revoked_by_id_never_shown_again() {
    for h in hubs().await {
        let b = h.env.backend;
        let t1 = h.issue_token(&h.alice, "alice", None).await.unwrap();
        h.env.advance(TimeDelta::seconds(1)); // listed oldest first
        let t2 = h.issue_token(&h.op, "alice", None).await.unwrap();
        let listed = h.list_tokens(&h.alice, "alice").await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            vec![agora_govern::token_id(&t1), agora_govern::token_id(&t2)],
            "{b}"
        );
        assert!(listed.iter().all(|t| t.roles == vec![Role::Researcher]));
        let json = serde_json::to_string(&listed).unwrap();
        assert!(!json.contains(&t1) && !json.contains(&t2[6..20]), "{json}");
        assert_eq!(h.list_tokens(&h.op, "alice").await.unwrap(), listed);
        // Someone else's tokens do not exist for a non-operator.
        assert!(matches!(
            h.list_tokens(&h.bob, "alice").await.unwrap_err(),
            Error::NotFound(_)
        ));
        let id1 = agora_govern::token_id(&t1);
        assert!(matches!(
            h.revoke_token_by_id(&h.bob, "alice", &id1)
                .await
                .unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(h.authenticate(&t1).await.unwrap().is_some());

        let revoked = h.revoke_token_by_id(&h.alice, "alice", &id1).await.unwrap();
        assert!(revoked.revoked_at.is_some(), "{b}");
        assert!(h.authenticate(&t1).await.unwrap().is_none());
        assert!(h.authenticate(&t2).await.unwrap().is_some());
        // Idempotent; unknown and malformed ids are not found; another user's id neither.
        assert_eq!(
            h.revoke_token_by_id(&h.op, "alice", &id1).await.unwrap(),
            revoked
        );
        for bad in ["tok_0000000000000000", "tok_'; --", "", "tok_"] {
            assert!(matches!(
                h.revoke_token_by_id(&h.op, "alice", bad).await.unwrap_err(),
                Error::NotFound(_)
            ));
        }
        let id2 = agora_govern::token_id(&t2);
        assert!(matches!(
            h.revoke_token_by_id(&h.op, "bob", &id2).await.unwrap_err(),
            Error::NotFound(_)
        ));
        assert!(h.authenticate(&t2).await.unwrap().is_some());
    }
}

/// Issue 11, item 8: deactivation revokes a user's API tokens and sessions for good, and
/// records it; reactivation brings none of them back.
#[tokio::test]
async fn reactivation_does_not_revive_tokens_or_sessions() {
    for h in hubs().await {
        let b = h.env.backend;
        let token = h.issue_token(&h.alice, "alice", None).await.unwrap();
        let session = h.create_session("alice").await.unwrap();
        assert!(h.authenticate(&token).await.unwrap().is_some());
        h.set_user_active(&h.op, "alice", false).await.unwrap();
        let listed = h.list_tokens(&h.op, "alice").await.unwrap();
        assert_eq!(listed.len(), 1, "{b}");
        assert_eq!(listed[0].revoked_at, Some(h.env.now()), "{b}: recorded");
        h.set_user_active(&h.op, "alice", true).await.unwrap();
        assert!(h.authenticate(&token).await.unwrap().is_none(), "{b}");
        assert!(h.session_principal(&session.token).await.unwrap().is_none());
        // Revoked tokens stay revoked: nothing left to revoke.
        assert_eq!(h.revoke_tokens("alice").await.unwrap(), 0, "{b}");
        // The reactivated user gets new credentials as usual.
        let fresh = h.issue_token(&h.alice, "alice", None).await.unwrap();
        assert!(h.authenticate(&fresh).await.unwrap().is_some());
    }
}

/// Issue 11, item 7: a password change ends every session of the user but the one named
/// (the session the change was made with); an operator's reset ends them all. API tokens
/// are not sessions and stay valid.
#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    for h in hubs().await {
        let b = h.env.backend;
        let current = h.create_session("alice").await.unwrap();
        let other = h.create_session("alice").await.unwrap();
        let stolen = h.create_session("alice").await.unwrap();
        let bobs = h.create_session("bob").await.unwrap();
        let token = h.issue_token(&h.alice, "alice", None).await.unwrap();
        let ended = h
            .set_password(
                &h.alice,
                "alice",
                "correct horse battery",
                Some(&current.token),
            )
            .await
            .unwrap();
        assert_eq!(ended, 2, "{b}");
        assert!(h.session_principal(&current.token).await.unwrap().is_some());
        assert!(h.session_principal(&other.token).await.unwrap().is_none());
        assert!(h.session_principal(&stolen.token).await.unwrap().is_none());
        assert!(
            h.session_principal(&bobs.token).await.unwrap().is_some(),
            "{b}"
        );
        assert!(h.authenticate(&token).await.unwrap().is_some());
        // Without a session to keep (the CLI, an API token, an operator's reset): all end.
        let ended = h
            .set_password(&h.op, "alice", "reset by the operator", None)
            .await
            .unwrap();
        assert_eq!(ended, 1, "{b}");
        assert!(h.session_principal(&current.token).await.unwrap().is_none());
        // A session of someone else named as the one to keep protects nothing.
        let again = h.create_session("alice").await.unwrap();
        let ended = h
            .set_password(&h.op, "alice", "reset once again!!", Some(&bobs.token))
            .await
            .unwrap();
        assert_eq!(ended, 1, "{b}");
        assert!(h.session_principal(&again.token).await.unwrap().is_none());
    }
}

/// A password set now has a SCRAM verifier (not the password); an inactive account has
/// none; SCRAM failures lock the login name like password failures, and a success clears
/// them.
#[tokio::test]
async fn scram_verifiers_follow_passwords_and_failures_lock() {
    for h in hubs().await {
        let b = h.env.backend;
        assert!(h.scram_verifier("alice").await.unwrap().is_none(), "{b}");
        h.set_password(&h.op, "alice", "a long enough password", None)
            .await
            .unwrap();
        let verifier = h.scram_verifier("alice").await.unwrap().unwrap();
        let stored = verifier.to_string();
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{b}");
        assert!(!stored.contains("long enough"), "{b}");
        assert!(h.scram_verifier("nobody").await.unwrap().is_none(), "{b}");
        let principal = h.scram_result("alice", true).await.unwrap().unwrap();
        assert_eq!(principal.name, "alice");
        for _ in 0..test_config().logins.max_failures {
            assert!(h.scram_result("alice", false).await.unwrap().is_none());
        }
        assert!(
            matches!(
                h.scram_verifier("alice").await.unwrap_err(),
                Error::RateLimited { .. }
            ),
            "{b}"
        );
        h.set_user_active(&h.op, "bob", false).await.unwrap();
        h.set_password(&h.op, "bob", "another long password", None)
            .await
            .unwrap();
        assert!(h.scram_verifier("bob").await.unwrap().is_none(), "{b}");
    }
}
