//! The audit log's retention and its citizens' counts through the service: entries older
//! than the retention period leave the metadata store for archived segment files that still
//! verify against the signed heads (and alone, with the public key), proofs and heads go on,
//! the per-month counts stay, and a changed or lost segment is named.

use agora_service::audit::{AuditFilter, Inconsistency};
use agora_service::governance::OutputPolicy;

use crate::support::{operator, study};

#[tokio::test]
async fn archived_segments_stay_verifiable_and_counts_stay() {
    let s = study(
        120,
        &[("person", &["person_id", "year_of_birth"])],
        OutputPolicy::default(),
    )
    .await;
    let hub = &s.env.hub;
    let audit = hub.audit();
    let op = operator(hub).await;
    for _ in 0..3 {
        s.ask("SELECT COUNT(*) AS n FROM person").await.unwrap();
    }
    assert!(s.ask("SELECT * FROM nowhere").await.is_err());
    let counts = |activity: Vec<agora_service::audit::ProjectActivity>| -> Vec<(String, u64)> {
        activity
            .into_iter()
            .map(|a| {
                assert_eq!(a.project, s.project);
                (a.dataset, a.queries)
            })
            .collect()
    };
    assert_eq!(
        counts(audit.project_activity().await.unwrap()),
        [("omop".to_owned(), 3)]
    );

    // Nothing is older than a year yet.
    assert!(
        audit
            .archive(op.principal(), chrono::Duration::days(365))
            .await
            .unwrap()
            .is_empty()
    );
    // A retention of zero archives everything a head covers (archive signs one first).
    let size = audit.latest_head().await.unwrap().unwrap().head.tree_size;
    let segments = audit
        .archive(op.principal(), chrono::Duration::zero())
        .await
        .unwrap();
    assert_eq!(segments.len(), 1);
    assert_eq!((segments[0].first, segments[0].end), (0, size));
    // Only the archive's own entry is left in the store's views.
    let left = audit
        .entries(op.principal(), &AuditFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event, "audit.archived");
    assert_eq!(left[0].seq, size);
    assert_eq!(
        counts(audit.project_activity().await.unwrap()),
        [("omop".to_owned(), 3)]
    );

    // The log goes on: more entries, a new head, proofs reaching into the archived part.
    s.ask("SELECT COUNT(*) AS n FROM person").await.unwrap();
    let head = audit.sign_head().await.unwrap().unwrap();
    let n = head.head.tree_size;
    let proof = audit.inclusion_proof(1, n).await.unwrap();
    let path: Vec<[u8; 32]> = proof
        .path
        .iter()
        .map(|h| hex::decode(h).unwrap().try_into().unwrap())
        .collect();
    let leaf: [u8; 32] = hex::decode(&proof.leaf_hash).unwrap().try_into().unwrap();
    agora_audit::verify_inclusion(&leaf, 1, n, &path, &head.head.root_hash).unwrap();
    let report = audit
        .verify(op.principal(), Some(&head))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.entries, n);
    assert_eq!(
        counts(audit.project_activity().await.unwrap()),
        [("omop".to_owned(), 4)]
    );

    // The segment stands alone with the public key.
    let file = hub.dir().audit().join(&segments[0].file);
    let bytes = std::fs::read(&file).unwrap();
    let alone = agora_service::audit::check_segment(&bytes, &audit.public_key()).unwrap();
    assert_eq!(alone.leaves.len() as u64, size);

    // One changed entry in the file, then the file lost: each named.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let changed = text.replacen("SELECT COUNT(*)", "SELECT COUNT(1)", 1);
    assert_ne!(changed, text);
    std::fs::write(&file, changed).unwrap();
    let found = audit
        .verify(op.principal(), None)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(found, Inconsistency::SegmentMismatch { first: 0, .. }),
        "{found}"
    );
    std::fs::remove_file(&file).unwrap();
    let found = audit
        .verify(op.principal(), None)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(found, Inconsistency::SegmentMalformed { first: Some(0) });
    std::fs::write(&file, &bytes).unwrap();
    assert!(audit.verify(op.principal(), None).await.unwrap().is_ok());

    // Archiving is for operators.
    assert!(
        audit
            .archive(s.researcher.principal(), chrono::Duration::zero())
            .await
            .is_err()
    );
}
