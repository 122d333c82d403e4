//! Source fingerprints of releases: the same files committed twice to one dataset are
//! refused unless allowed, inside the commit transaction.

use agora_govern::{Error, NewRelease, SourceFingerprint};

use crate::support::stores;

fn release(ds: &str, id: &str) -> NewRelease {
    NewRelease {
        dataset: ds.parse().unwrap(),
        model: "tableschema".into(),
        release_id: id.into(),
        manifest_path: format!("datasets/{ds}/manifests/{id}.json"),
        created_by: "test".into(),
        rows: 1,
        quarantined: 0,
        new_persons: vec![(7, 70)],
    }
}

fn source(fingerprint: &str, allow_duplicate: bool) -> Option<SourceFingerprint> {
    Some(SourceFingerprint {
        fingerprint: fingerprint.into(),
        allow_duplicate,
    })
}

#[tokio::test]
async fn the_same_source_twice_in_one_dataset_is_refused_unless_allowed() {
    for env in stores().await {
        let s = &env.store;
        let a = "a".parse().unwrap();
        assert_eq!(s.release_from_source(&a, "f1").await.unwrap(), None);
        let r1 = s
            .commit_release_from(release("a", "r1"), source("f1", false))
            .await;
        assert_eq!(r1.unwrap().number, 1, "{}", env.backend);
        // Releases committed without a fingerprint match nothing.
        s.commit_release(release("a", "r2")).await.unwrap();
        assert_eq!(s.release_from_source(&a, "f1").await.unwrap(), Some(1));

        let again = s
            .commit_release_from(release("a", "r3"), source("f1", false))
            .await
            .unwrap_err();
        assert!(
            matches!(&again, Error::DuplicateSource { dataset, release: 1 } if dataset == "a"),
            "{}: {again}",
            env.backend
        );
        assert_eq!(
            again.to_string(),
            "these files are already release 1 of dataset a"
        );
        // Nothing of the refused commit is kept.
        assert_eq!(s.releases(&a).await.unwrap().len(), 2);

        let allowed = s
            .commit_release_from(release("a", "r4"), source("f1", true))
            .await
            .unwrap();
        assert_eq!(allowed.number, 3);
        assert_eq!(s.release_from_source(&a, "f1").await.unwrap(), Some(1));
        // Other files, or another dataset, are new releases.
        let other = s.commit_release_from(release("a", "r5"), source("f2", false));
        assert_eq!(other.await.unwrap().number, 4);
        let b = s.commit_release_from(release("b", "r6"), source("f1", false));
        assert_eq!(b.await.unwrap().number, 1);
    }
}
