//! The audit log's storage on both backends: concurrent appenders (governance changes and
//! access batches at once) get dense positions, each entry commits with its change, and a
//! refused change leaves no entry.

use agora_govern::{AuditFilter, NewAuditEntry, NewUser, Role};

use crate::support::{p, stores};

fn user(id: &str) -> NewUser {
    NewUser {
        id: id.into(),
        display_name: id.into(),
        email: None,
        roles: vec![Role::Researcher],
    }
}

#[tokio::test]
async fn concurrent_appends_are_dense_on_every_backend() {
    for env in stores().await {
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let store = env.store.clone();
                tokio::spawn(async move {
                    if i % 3 == 0 {
                        // A governance change, its entry in its own transaction.
                        store
                            .create_user(&p("op", &[Role::Operator]), user(&format!("u{i}")))
                            .await
                            .map(|_| ())
                    } else {
                        let batch = (0..i % 4 + 1)
                            .map(|j| NewAuditEntry::governance("test.appended", "t").with("j", j))
                            .collect();
                        store.append_audit(batch).await.map(|_| ())
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let size = env.store.audit_size().await.unwrap();
        let stored = env.store.audit_stored_entries(0, 10_000).await.unwrap();
        assert_eq!(stored.len() as u64, size, "{}", env.backend);
        for (i, e) in stored.iter().enumerate() {
            assert_eq!(e.seq, i as u64, "{}", env.backend);
            assert_eq!(
                agora_audit::leaf_hash(&e.leaf),
                e.leaf_hash,
                "{}",
                env.backend
            );
            let entry = agora_audit::AuditEntry::from_leaf(&e.leaf).unwrap();
            assert_eq!(entry.seq, e.seq, "{}", env.backend);
        }
        let hashes = env.store.audit_leaf_hashes(5, 3).await.unwrap();
        assert_eq!(hashes.iter().map(|h| h.0).collect::<Vec<_>>(), [5, 6, 7]);
        // A refused change (the user exists) leaves no entry.
        assert!(
            env.store
                .create_user(&p("op", &[Role::Operator]), user("u0"))
                .await
                .is_err()
        );
        assert_eq!(
            env.store.audit_size().await.unwrap(),
            size,
            "{}",
            env.backend
        );
        let created = AuditFilter {
            event: Some("user.created".into()),
            ..AuditFilter::default()
        };
        let entries = env.store.audit_entries(&created, 100).await.unwrap();
        assert_eq!(entries.len(), 4, "{}", env.backend);
        for e in &entries {
            assert_eq!(e.actor, "op", "{}", env.backend);
            let id = e.detail["user"].as_str().unwrap();
            assert!(["u0", "u3", "u6", "u9"].contains(&id), "{}", env.backend);
        }
    }
}
