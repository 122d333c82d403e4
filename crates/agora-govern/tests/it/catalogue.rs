use agora_govern::{AccessRights, DatasetMetadata, Error};

use crate::support::hubs;

fn metadata() -> DatasetMetadata {
    DatasetMetadata {
        title: "Hospital stays (OMOP)".into(),
        description: "Pseudonymized hospital stays of six university hospitals".into(),
        publisher: "Agora hub".into(),
        contact_point: Some("mailto:data@hub.example".into()),
        legal_basis: "Public health code L.1461-1".into(),
        purpose: "Research in the public interest".into(),
        coding_systems: vec!["SNOMED CT".into(), "ICD-10".into()],
        access_rights: AccessRights::NonPublic,
        keywords: vec!["hospital".into(), "diabetes".into()],
    }
}

#[tokio::test]
async fn operators_describe_datasets_and_anyone_reads_them() {
    for h in hubs().await {
        let b = h.env.backend;
        let omop = "omop".parse().unwrap();
        assert!(h.dataset_metadata(&omop).await.unwrap().is_none());
        assert!(matches!(
            h.set_dataset_metadata(&h.alice, &omop, metadata())
                .await
                .unwrap_err(),
            Error::PermissionDenied(_)
        ));
        let d = h
            .set_dataset_metadata(&h.op, &omop, metadata())
            .await
            .unwrap();
        assert_eq!(d.metadata, metadata(), "{b}");
        assert_eq!(d.updated_by, "op");
        // Replaced as a whole.
        let mut m = metadata();
        m.keywords = vec!["stays".into()];
        m.access_rights = AccessRights::Restricted;
        m.contact_point = None;
        let d = h
            .set_dataset_metadata(&h.op, &omop, m.clone())
            .await
            .unwrap();
        assert_eq!(d.metadata, m);
        // A dataset may be described before its first release.
        let future = "registry_2030".parse().unwrap();
        h.set_dataset_metadata(&h.op, &future, metadata())
            .await
            .unwrap();
        let all = h.list_dataset_metadata().await.unwrap();
        let names: Vec<_> = all.iter().map(|d| d.dataset.as_str()).collect();
        assert_eq!(names, ["omop", "registry_2030"], "{b}");
        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(json["access_rights"], "restricted");
        assert_eq!(json["keywords"][0], "stays");
        let mut bad = metadata();
        bad.title = " ".into();
        assert!(matches!(
            h.set_dataset_metadata(&h.op, &omop, bad).await.unwrap_err(),
            Error::InvalidInput(_)
        ));
    }
}
