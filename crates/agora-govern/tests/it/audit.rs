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

/// Archiving a segment moves its rows out and keeps their hashes, on every backend; a
/// segment that does not follow the last one, or covers entries no longer stored, changes
/// nothing.
#[tokio::test]
async fn archived_entries_keep_their_hashes() {
    use agora_govern::ArchivedSegment;
    for env in stores().await {
        let batch = (0..10)
            .map(|j| NewAuditEntry::governance("test.appended", "t").with("j", j))
            .collect();
        env.store.append_audit(batch).await.unwrap();
        let before = env.store.audit_leaf_hashes(0, 100).await.unwrap();
        let segment = |first, end| ArchivedSegment {
            first,
            end,
            file: format!("segments/{first}-{end}.jsonl"),
            sha256: "00".into(),
            head_size: 10,
            archived_at: env.now(),
        };
        env.store
            .archive_audit_segment(&segment(0, 6), "op")
            .await
            .unwrap();
        assert_eq!(env.store.audit_live_from().await.unwrap(), 6);
        let stored = env.store.audit_stored_entries(0, 100).await.unwrap();
        assert_eq!(stored.first().unwrap().seq, 6, "{}", env.backend);
        // 10 entries and the archive's own.
        assert_eq!(stored.len(), 5, "{}", env.backend);
        let after = env.store.audit_leaf_hashes(0, 100).await.unwrap();
        assert_eq!(after[..10], before[..], "{}", env.backend);
        assert_eq!(after.len(), 11);
        let archived = env.store.audit_archived_hashes(0, 6).await.unwrap();
        assert_eq!(archived[..], before[..6]);
        let last = env
            .store
            .audit_entries(&AuditFilter::default(), 1)
            .await
            .unwrap();
        assert_eq!(last[0].event, "audit.archived");
        assert_eq!(last[0].detail["end"], 6);

        // A gap, an overlap, entries already gone: refused, nothing changed.
        for (first, end) in [(7, 9), (0, 3), (4, 8)] {
            assert!(
                env.store
                    .archive_audit_segment(&segment(first, end), "op")
                    .await
                    .is_err(),
                "{first}..{end} on {}",
                env.backend
            );
        }
        assert_eq!(env.store.audit_segments().await.unwrap().len(), 1);
        assert_eq!(
            env.store.audit_stored_entries(0, 100).await.unwrap().len(),
            5
        );
        env.store
            .archive_audit_segment(&segment(6, 9), "op")
            .await
            .unwrap();
        assert_eq!(env.store.audit_live_from().await.unwrap(), 9);
    }
}
