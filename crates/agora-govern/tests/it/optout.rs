use agora_govern::{Error, NewRelease, OPT_OUT_RESERVATION, OptOutChannel, OptOutStatus};
use agora_privacy::{HubSecret, IdentityKind, PersonKeyer};
use chrono::TimeDelta;

use crate::support::stores;

const NIR: &str = "1 84 12 75 108 123 45";

/// The identity bytes of an identifier of any kind, as ingest derives them.
fn source_identity(identifier: &str) -> Vec<u8> {
    agora_privacy::source_identity(IdentityKind::Any, identifier).unwrap()
}

fn keyer() -> PersonKeyer {
    PersonKeyer::new(&HubSecret::from_bytes([42u8; 32]))
}

async fn commit(store: &agora_govern::MetaStore, id: &str, persons: Vec<(i64, i64)>) {
    store
        .commit_release(NewRelease {
            dataset: "omop".parse().unwrap(),
            model: "omop-cdm-5.4".into(),
            release_id: id.into(),
            manifest_path: format!("datasets/omop/manifests/{id}.json"),
            created_by: "test".into(),
            rows: 1,
            quarantined: 0,
            new_persons: persons,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn opting_out_is_idempotent_timestamped_and_withdrawable() {
    for env in stores().await {
        let s = &env.store;
        let b = env.backend;
        let t0 = env.now();
        let first = s
            .opt_out(123_456, OptOutChannel::Portal, "citizen")
            .await
            .unwrap();
        assert_eq!(first.status, OptOutStatus::InForce);
        assert_eq!(first.opted_out_at, t0);
        assert!(first.receipt_id.starts_with("optout_") && first.receipt_id.len() == 39);
        // Again, later, through another channel: the same receipt, the first timestamp.
        env.advance(TimeDelta::days(3));
        let again = s.opt_out(123_456, OptOutChannel::Mail, "op").await.unwrap();
        assert_eq!(again, first, "{b}");
        s.opt_out(7, OptOutChannel::Operator, "op").await.unwrap();
        assert_eq!(s.opted_out_keys().await.unwrap(), vec![7, 123_456]);
        assert_eq!(s.opted_out_count().await.unwrap(), 2);

        // The receipt is the handle: readable and withdrawable, history kept.
        assert_eq!(s.opt_out_receipt(&first.receipt_id).await.unwrap(), first);
        env.advance(TimeDelta::days(1));
        let t1 = env.now();
        let withdrawn = s
            .withdraw_opt_out(&first.receipt_id, "citizen")
            .await
            .unwrap();
        assert_eq!(withdrawn.status, OptOutStatus::Withdrawn);
        assert_eq!(withdrawn.withdrawn_at, Some(t1));
        assert_eq!(withdrawn.opted_out_at, t0);
        env.advance(TimeDelta::days(1));
        assert_eq!(
            s.withdraw_opt_out(&first.receipt_id, "citizen")
                .await
                .unwrap(),
            withdrawn,
            "{b}: idempotent"
        );
        assert_eq!(s.opted_out_keys().await.unwrap(), vec![7]);

        // Opting out again after a withdrawal: a new receipt, the old one stays withdrawn.
        let renewed = s
            .opt_out(123_456, OptOutChannel::Portal, "citizen")
            .await
            .unwrap();
        assert_ne!(renewed.receipt_id, first.receipt_id);
        assert_eq!(renewed.opted_out_at, env.now());
        assert_eq!(
            s.opt_out_receipt(&first.receipt_id).await.unwrap().status,
            OptOutStatus::Withdrawn
        );
        assert_eq!(s.opted_out_keys().await.unwrap(), vec![7, 123_456]);

        for bad in ["optout_missing", "x' OR '1'='1", ""] {
            assert!(matches!(
                s.opt_out_receipt(bad).await.unwrap_err(),
                Error::NotFound(_)
            ));
            assert!(matches!(
                s.withdraw_opt_out(bad, "citizen").await.unwrap_err(),
                Error::NotFound(_)
            ));
        }
        assert!(s.opt_out(0, OptOutChannel::Api, "x").await.is_err());
        // The receipt carries neither the key nor anything derived from the person.
        let json = serde_json::to_string(&renewed).unwrap();
        assert!(!json.contains("123456"), "{json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opt_outs_of_one_person_share_one_receipt() {
    for env in stores().await {
        let mut tasks = Vec::new();
        for i in 0..6 {
            let s = env.store.clone();
            tasks.push(tokio::spawn(async move {
                s.opt_out(99, OptOutChannel::Portal, &format!("c{i}")).await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap().receipt_id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{}", env.backend);
    }
}

#[tokio::test]
async fn identities_are_keyed_exactly_as_ingest_keys_them() {
    for env in stores().await {
        let s = &env.store;
        let b = env.backend;
        let k = keyer();
        // A person already in a release: ingest registered the attempt-0 key.
        let known = k.derive(&source_identity(NIR), 0);
        commit(s, "r1", vec![(known.key, known.check)]).await;
        let receipt = s
            .opt_out_identity(
                &k,
                &format!("  {NIR}\n"),
                IdentityKind::Any,
                OptOutChannel::Portal,
                "citizen",
            )
            .await
            .unwrap();
        assert_eq!(s.opted_out_keys().await.unwrap(), vec![known.key], "{b}");
        // Idempotent through the identity too.
        assert_eq!(
            s.opt_out_identity(&k, NIR, IdentityKind::Any, OptOutChannel::Portal, "citizen")
                .await
                .unwrap(),
            receipt
        );

        // A person whose attempt-0 key belongs to someone else: ingest moved them to
        // attempt 1, and so does the opt-out.
        let other = "2 90 01 13 055 999 12";
        let taken = k.derive(&source_identity(other), 0);
        let moved = k.derive(&source_identity(other), 1);
        commit(
            s,
            "r2",
            vec![(taken.key, taken.check ^ 1), (moved.key, moved.check)],
        )
        .await;
        s.opt_out_identity(&k, other, IdentityKind::Any, OptOutChannel::Mail, "op")
            .await
            .unwrap();
        assert!(
            s.opted_out_keys().await.unwrap().contains(&moved.key),
            "{b}"
        );
        assert!(!s.opted_out_keys().await.unwrap().contains(&taken.key));

        // A person in no release yet: the attempt-0 key is reserved, so a later ingest of
        // that identity finds it registered with the same check and uses exactly that key.
        let newcomer = "1 01 01 99 999 001 01";
        let future = k.derive(&source_identity(newcomer), 0);
        s.opt_out_identity(
            &k,
            newcomer,
            IdentityKind::Any,
            OptOutChannel::Portal,
            "citizen",
        )
        .await
        .unwrap();
        assert!(s.opted_out_keys().await.unwrap().contains(&future.key));
        let registry = s.lookup_person_keys(&[future.key]).await.unwrap();
        assert_eq!(registry.get(&future.key), Some(&future.check), "{b}");

        // Nothing stored anywhere contains the identifiers.
        let raw = env.raw().await;
        let rows: Vec<(String, i64, String, String)> =
            sqlx::query_as("SELECT receipt_id, person_key, channel, recorded_by FROM optouts")
                .fetch_all(&raw)
                .await
                .unwrap();
        assert_eq!(rows.len(), 3);
        let dump = format!("{rows:?}");
        for id in [NIR, other, newcomer] {
            assert!(!dump.contains(id), "{b}");
            assert!(!dump.contains(&id.replace(' ', "")));
        }
        let first: Vec<String> =
            sqlx::query_scalar("SELECT first_release FROM person_keys WHERE person_key = $1")
                .bind(future.key)
                .fetch_all(&raw)
                .await
                .unwrap();
        assert_eq!(first, vec![OPT_OUT_RESERVATION.to_owned()]);
        raw.close().await;

        // Another identity form an ingest may use (dataset-scoped source ids).
        let scoped = format!("ds\0{}\0{}", "omop", 42).into_bytes();
        let d = k.derive(&scoped, 0);
        s.opt_out_identity_bytes(&k, &scoped, OptOutChannel::Operator, "op")
            .await
            .unwrap();
        assert!(s.opted_out_keys().await.unwrap().contains(&d.key));

        let err = s
            .opt_out_identity(
                &k,
                "   ",
                IdentityKind::Any,
                OptOutChannel::Portal,
                "citizen",
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)));
    }
}

#[tokio::test]
async fn opted_out_keys_can_be_paged() {
    for env in stores().await {
        let s = &env.store;
        for key in [50, 10, 40, 30, 20] {
            s.opt_out(key, OptOutChannel::Api, "partner").await.unwrap();
        }
        let r = s.opted_out_keys().await.unwrap();
        s.withdraw_opt_out(
            &s.opt_out(30, OptOutChannel::Api, "partner")
                .await
                .unwrap()
                .receipt_id,
            "partner",
        )
        .await
        .unwrap();
        assert_eq!(r, vec![10, 20, 30, 40, 50]);
        let mut all: Vec<i64> = Vec::new();
        let mut after = None;
        loop {
            let page = s.opted_out_keys_page(after, 2).await.unwrap();
            all.extend(&page);
            if page.len() < 2 {
                break;
            }
            after = page.last().copied();
        }
        assert_eq!(all, vec![10, 20, 40, 50], "{}", env.backend);
    }
}

#[tokio::test]
async fn recording_tells_whether_the_opt_out_is_new() {
    for env in stores().await {
        let s = &env.store;
        let first = s
            .record_opt_out(
                &keyer(),
                NIR,
                IdentityKind::Any,
                OptOutChannel::Portal,
                "citizen",
            )
            .await
            .unwrap();
        assert!(first.created, "{}", env.backend);
        let again = s
            .record_opt_out(
                &keyer(),
                NIR,
                IdentityKind::Any,
                OptOutChannel::Portal,
                "citizen",
            )
            .await
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.receipt, first.receipt);
        s.withdraw_opt_out(&first.receipt.receipt_id, "citizen")
            .await
            .unwrap();
        let renewed = s
            .record_opt_out(
                &keyer(),
                NIR,
                IdentityKind::Any,
                OptOutChannel::Operator,
                "op",
            )
            .await
            .unwrap();
        assert!(renewed.created);
        assert_ne!(renewed.receipt.receipt_id, first.receipt.receipt_id);
    }
}

/// Issue 11, item 13: every typing of an identifier reaches the key ingest gave the person,
/// so a variant gets the receipt already in force instead of a second, useless opt-out.
#[tokio::test]
async fn regression_issue_11_13_variants_of_an_identifier_are_one_opt_out() {
    let k = keyer();
    let cases: [(&str, IdentityKind, &[&str]); 2] = [
        (
            "7bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b",
            IdentityKind::Uuid,
            &[
                " 7BB1E4DC-94A6-4C3B-9E43-0C1D2E3F4A5B ",
                "{7bb1e4dc-94a6-4c3b-9e43-0c1d2e3f4a5b}",
                "7BB1E4DC94A64C3B9E430C1D2E3F4A5B\n",
            ],
        ),
        (
            "184127510812347",
            IdentityKind::Nir,
            &[
                "1 84 12 75 108 123 47",
                "\t1.84.12.75.108.123.47 ",
                "1-84-12-75-108-123-47",
                "1 84 12  75 108 123 47",
            ],
        ),
    ];
    for env in stores().await {
        let s = &env.store;
        let b = env.backend;
        for (canonical, kind, variants) in cases {
            // Ingest registered the person from the canonical form.
            let known = k.derive(&source_identity(canonical), 0);
            commit(s, &format!("r-{kind}"), vec![(known.key, known.check)]).await;
            let first = s
                .record_opt_out(&k, canonical, kind, OptOutChannel::Portal, "citizen")
                .await
                .unwrap();
            assert!(first.created, "{b}");
            for v in variants {
                for kind in [kind, IdentityKind::Any] {
                    let again = s
                        .record_opt_out(&k, v, kind, OptOutChannel::Portal, "citizen")
                        .await
                        .unwrap();
                    assert!(!again.created, "{b}: {v:?} made a second opt-out");
                    assert_eq!(again.receipt, first.receipt, "{b}: {v:?}");
                }
            }
            assert!(s.opted_out_keys().await.unwrap().contains(&known.key));
        }
        assert_eq!(s.opted_out_count().await.unwrap(), 2, "{b}");

        // An invalid NIR is refused, saying why, without echoing it; nothing is recorded.
        for bad in ["1 84 12 75 108 123 45", "1 84 12 75 108", "not-a-nir-X9"] {
            let err = s
                .record_opt_out(&k, bad, IdentityKind::Nir, OptOutChannel::Portal, "citizen")
                .await
                .unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{b}");
            let message = err.to_string();
            assert!(message.contains("NIR"), "{message}");
            assert!(!message.contains(bad) && !message.contains("108") && !message.contains("X9"));
        }
        let err = s
            .record_opt_out(
                &k,
                "{7bb1e4dc}",
                IdentityKind::Uuid,
                OptOutChannel::Portal,
                "c",
            )
            .await
            .unwrap_err();
        assert!(!err.to_string().contains("7bb1e4dc"), "{err}");
        assert_eq!(s.opted_out_count().await.unwrap(), 2, "{b}");
    }
}
