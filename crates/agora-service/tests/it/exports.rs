//! Export requests end to end on the fixture hub: a researcher's statement runs through the
//! query service under a permit, the CSV file is written and hashed, a reviewer decides, the
//! download checks the hash.

use agora_core::{ErrorKind, HasKind};
use agora_govern::{
    ApplicationForm, ApplicationState as S, DatasetScope, DateRange, DisclosureProfile, NewUser,
    OutputPolicy, PermitGrant, ReleaseSelector, RequestedDataset, RequestedTable, Role, TableScope,
};
use agora_service::exports::{ExportDecision, ExportStatus};
use agora_service::{Authenticated, Credential, Front, Hub, QueryLimits};
use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::support::{hub, operator};

/// The people of these tests and the permits they hold.
struct People {
    op: Authenticated,
    alice: Authenticated,
    carol: Authenticated,
    rev: Authenticated,
}

async fn people(hub: &Hub) -> People {
    let op = operator(hub).await;
    let g = hub.governance();
    let mut out = Vec::new();
    for (id, role) in [
        ("alice", Role::Researcher),
        ("carol", Role::Researcher),
        ("rev", Role::Reviewer),
    ] {
        g.create_user(
            op.principal(),
            NewUser {
                id: id.into(),
                display_name: id.into(),
                email: None,
                roles: vec![role],
            },
        )
        .await
        .unwrap();
        let token = g.issue_token(op.principal(), id, None).await.unwrap();
        out.push(
            hub.query()
                .authenticate(Credential::Token(&token))
                .await
                .unwrap(),
        );
    }
    let rev = out.pop().unwrap();
    let carol = out.pop().unwrap();
    let alice = out.pop().unwrap();
    People {
        op,
        alice,
        carol,
        rev,
    }
}

/// An active project of alice's whose permit grants `person` of `omop` release 1 under
/// `output`; its permit id.
async fn permit(hub: &Hub, p: &People, output: OutputPolicy) -> String {
    let g = hub.governance();
    let columns = vec![
        "person_id".to_owned(),
        "gender_concept_id".to_owned(),
        "year_of_birth".to_owned(),
    ];
    let form = ApplicationForm {
        title: "Exports".into(),
        purpose: "Describe the population".into(),
        public_interest: "Better follow-up".into(),
        legal_basis: "GDPR 6(1)(e) and 9(2)(j)".into(),
        organisation: "University Hospital".into(),
        requested: vec![RequestedDataset {
            dataset: "omop".into(),
            tables: vec![RequestedTable {
                table: "person".into(),
                columns: columns.clone(),
            }],
        }],
        period: Some(DateRange {
            from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        }),
        identifiers: vec![],
        duration_months: 12,
        team: vec![],
    };
    let id = g
        .create_application(p.alice.principal(), form)
        .await
        .unwrap()
        .id;
    g.transition_application(p.alice.principal(), &id, S::Submitted, None)
        .await
        .unwrap();
    g.transition_application(p.rev.principal(), &id, S::UnderReview, None)
        .await
        .unwrap();
    let grant = PermitGrant {
        members: None,
        datasets: vec![DatasetScope {
            dataset: "omop".into(),
            release: ReleaseSelector::Number(1),
            tables: vec![TableScope {
                table: "person".into(),
                columns,
                row_filters: vec![],
                precision: Default::default(),
            }],
        }],
        expires_at: None,
        output,
        expiry_beyond_request_reason: None,
    };
    let permit = g
        .approve_application(p.rev.principal(), &id, grant, None)
        .await
        .unwrap();
    g.transition_application(p.op.principal(), &id, S::Active, None)
        .await
        .unwrap();
    permit.id
}

const AGGREGATE: &str =
    "SELECT gender_concept_id, COUNT(*) AS persons FROM omop.person GROUP BY gender_concept_id";

fn files(hub: &Hub) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(hub.dir().exports()) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => vec![],
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn an_export_is_reviewed_downloaded_and_its_hash_checked() {
    let env = hub().await;
    let hub = &env.hub;
    let p = people(hub).await;
    let snds = permit(hub, &p, OutputPolicy::default()).await;
    let ex = hub.exports();
    let export = ex
        .request_export(
            &p.alice,
            &snds,
            AGGREGATE,
            Front::Cli,
            QueryLimits::default(),
        )
        .await
        .unwrap();
    assert_eq!(export.status, ExportStatus::PendingReview);
    assert_eq!(export.statement, AGGREGATE);
    assert_eq!(export.requested_by, "alice");
    let path = hub.dir().exports().join(format!("{}.csv", export.id));
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(sha256(&on_disk), export.sha256);
    assert_eq!(export.bytes, on_disk.len() as i64);
    assert!(on_disk.starts_with(b"gender_concept_id,persons\n"));
    assert_eq!(
        export.rows as usize,
        String::from_utf8_lossy(&on_disk).lines().count() - 1
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Not before a reviewer approves; not at all for someone outside the project.
    let e = ex
        .download_export(p.alice.principal(), &export.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let e = ex
        .decide_export(
            p.alice.principal(),
            &export.id,
            ExportDecision::Approve,
            "mine",
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let approved = ex
        .decide_export(
            p.rev.principal(),
            &export.id,
            ExportDecision::Approve,
            "aggregates, cells checked",
        )
        .await
        .unwrap();
    assert_eq!(approved.status, ExportStatus::Approved);
    let e = ex
        .download_export(p.carol.principal(), &export.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let file = ex
        .download_export(p.alice.principal(), &export.id)
        .await
        .unwrap();
    assert_eq!(sha256(&file.bytes), export.sha256);
    assert_eq!(file.bytes, on_disk);
    assert_eq!(file.file_name, format!("{}.csv", export.id));
    assert_eq!(file.export.history.last().unwrap().actor, "alice");

    // A file changed on disk is never served.
    std::fs::write(&path, b"gender_concept_id,persons\n8507,1\n").unwrap();
    let e = ex
        .download_export(p.alice.principal(), &export.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert!(!e.to_string().contains("8507"));

    // The reject path.
    let export = ex
        .request_export(
            &p.alice,
            &snds,
            AGGREGATE,
            Front::Cli,
            QueryLimits::default(),
        )
        .await
        .unwrap();
    let rejected = ex
        .decide_export(
            p.rev.principal(),
            &export.id,
            ExportDecision::Reject,
            "not needed for the stated purpose",
        )
        .await
        .unwrap();
    assert_eq!(rejected.status, ExportStatus::Rejected);
    let e = ex
        .download_export(p.alice.principal(), &export.id)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let listed = ex
        .list_exports(p.alice.principal(), Some(ExportStatus::Rejected))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        ex.list_exports(p.carol.principal(), None)
            .await
            .unwrap()
            .is_empty()
    );

    // An ohdsi permit's export is approved by its policy and downloadable at once.
    let ohdsi = permit(
        hub,
        &p,
        OutputPolicy {
            profile: DisclosureProfile::Ohdsi,
            ..Default::default()
        },
    )
    .await;
    let export = ex
        .request_export(
            &p.alice,
            &ohdsi,
            AGGREGATE,
            Front::Cli,
            QueryLimits::default(),
        )
        .await
        .unwrap();
    assert_eq!(export.status, ExportStatus::Approved);
    assert_eq!(export.decided_by.as_deref(), Some("policy"));
    let file = ex
        .download_export(p.alice.principal(), &export.id)
        .await
        .unwrap();
    assert_eq!(sha256(&file.bytes), export.sha256);
}

/// A statement the permit's output policy refuses (per-person rows) leaves no file and no
/// request behind; so does one under a permit the caller does not hold.
#[tokio::test]
async fn a_refused_statement_creates_no_export() {
    let env = hub().await;
    let hub = &env.hub;
    let p = people(hub).await;
    let snds = permit(hub, &p, OutputPolicy::default()).await;
    let ex = hub.exports();
    for (who, permit, sql) in [
        (
            &p.alice,
            snds.as_str(),
            "SELECT person_id, year_of_birth FROM omop.person",
        ),
        (&p.alice, snds.as_str(), "SELECT * FROM omop.person"),
        (&p.alice, snds.as_str(), "DROP TABLE omop.person"),
        (&p.carol, snds.as_str(), AGGREGATE),
        (&p.alice, "pmt_00000000000000000000000000000000", AGGREGATE),
    ] {
        let e = ex
            .request_export(who, permit, sql, Front::Cli, QueryLimits::default())
            .await
            .unwrap_err();
        assert_ne!(e.kind(), ErrorKind::Internal, "{sql}: {e}");
        assert!(files(hub).is_empty(), "{sql}");
    }
    for who in [&p.op, &p.alice, &p.rev] {
        assert!(
            ex.list_exports(who.principal(), None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
