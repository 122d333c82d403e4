//! What the query service's tests share: a hub in a temporary directory holding the
//! Synthea27Nj OMOP fixture (read from `../shared`), and its operator.

use agora_core::DataDir;
use agora_ingest::IngestOptions;
use agora_ingest::omop::{IdentitySource, OmopIngest};
use agora_service::{Credential, Hub, Target};

pub(crate) const FIXTURE: &str = "../../../shared/data/omop/synthea27nj_csv";

pub(crate) struct Env {
    _dir: tempfile::TempDir,
    pub(crate) hub: Hub,
}

pub(crate) async fn hub() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("hub"));
    Hub::init(&data).await.unwrap();
    let hub = Hub::open(&data).await.unwrap();
    hub.ingest_omop(OmopIngest {
        options: IngestOptions {
            dataset: "omop".parse().unwrap(),
            source: FIXTURE.into(),
            actor: "test".into(),
            progress: false,
            dry_run: false,
            allow_duplicate: false,
        },
        identity: IdentitySource::SourceValue,
        cdm_version: None,
    })
    .await
    .unwrap();
    Env { _dir: dir, hub }
}

pub(crate) fn release(n: Option<i64>) -> Target {
    Target::Release {
        dataset: "omop".parse().unwrap(),
        release: n,
    }
}

pub(crate) async fn operator(hub: &Hub) -> agora_service::Authenticated {
    hub.query()
        .authenticate(Credential::DataDirectory { user: "tester" })
        .await
        .unwrap()
}

/// A hub holding `persons` synthetic persons (the project's own generator, seed 7) as
/// dataset `omop`, with a researcher holding an active permit on `tables` under `output`.
pub(crate) struct Study {
    pub(crate) env: Env,
    pub(crate) researcher: agora_service::Authenticated,
    pub(crate) permit: String,
    /// The project (application) the permit belongs to.
    pub(crate) project: String,
}

pub(crate) async fn study(
    persons: u64,
    tables: &[(&str, &[&str])],
    output: agora_service::governance::OutputPolicy,
) -> Study {
    use agora_service::governance::{
        ApplicationForm, ApplicationState as S, DatasetScope, NewUser, PermitGrant,
        ReleaseSelector, RequestedDataset, RequestedTable, Role, TableScope,
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("extract");
    agora_synth::generate_omop(
        &agora_synth::OmopConfig {
            persons,
            seed: 7,
            ..Default::default()
        },
        &source,
    )
    .unwrap();
    let data = DataDir::new(dir.path().join("hub"));
    Hub::init(&data).await.unwrap();
    let hub = Hub::open(&data).await.unwrap();
    hub.ingest_omop(OmopIngest {
        options: IngestOptions {
            dataset: "omop".parse().unwrap(),
            source,
            actor: "test".into(),
            progress: false,
            dry_run: false,
            allow_duplicate: false,
        },
        identity: IdentitySource::SourceValue,
        cdm_version: None,
    })
    .await
    .unwrap();
    let op = operator(&hub).await;
    let gov = hub.governance();
    for (id, role) in [("rita", Role::Researcher), ("rev", Role::Reviewer)] {
        gov.create_user(
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
    }
    let scopes: Vec<TableScope> = tables
        .iter()
        .map(|(table, columns)| TableScope {
            table: (*table).into(),
            columns: columns.iter().map(|c| (*c).into()).collect(),
            row_filters: vec![],
            precision: Default::default(),
        })
        .collect();
    let rita = agora_service::governance::Principal {
        name: "rita".into(),
        roles: vec![Role::Researcher],
    };
    let rev = agora_service::governance::Principal {
        name: "rev".into(),
        roles: vec![Role::Reviewer],
    };
    let form = ApplicationForm {
        title: "Disclosure study".into(),
        purpose: "Test disclosure control".into(),
        public_interest: "Trust".into(),
        legal_basis: "GDPR 6(1)(e) and 9(2)(j)".into(),
        organisation: "Agora tests".into(),
        requested: vec![RequestedDataset {
            dataset: "omop".into(),
            tables: scopes
                .iter()
                .map(|t| RequestedTable {
                    table: t.table.clone(),
                    columns: t.columns.clone(),
                })
                .collect(),
        }],
        period: Some(agora_service::governance::DateRange {
            from: chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        }),
        identifiers: vec![],
        duration_months: 12,
        team: vec![],
    };
    let app = gov.create_application(&rita, form).await.unwrap().id;
    gov.transition_application(&rita, &app, S::Submitted, None)
        .await
        .unwrap();
    gov.transition_application(&rev, &app, S::UnderReview, None)
        .await
        .unwrap();
    let permit = gov
        .approve_application(
            &rev,
            &app,
            PermitGrant {
                members: None,
                datasets: vec![DatasetScope {
                    dataset: "omop".into(),
                    release: ReleaseSelector::Number(1),
                    tables: scopes,
                }],
                expires_at: None,
                output,
                expiry_beyond_request_reason: None,
            },
            None,
        )
        .await
        .unwrap();
    gov.transition_application(op.principal(), &app, S::Active, None)
        .await
        .unwrap();
    let token = gov.issue_token(op.principal(), "rita", None).await.unwrap();
    let researcher = hub
        .query()
        .authenticate(Credential::Token(&token))
        .await
        .unwrap();
    Study {
        env: Env { _dir: dir, hub },
        researcher,
        permit: permit.id,
        project: app,
    }
}

impl Study {
    /// The researcher's answer through the permit, with its disclosure report.
    pub(crate) async fn ask(
        &self,
        sql: &str,
    ) -> agora_service::Result<(agora_service::QueryOutput, agora_service::Disclosure)> {
        let session = self
            .env
            .hub
            .query()
            .open(
                &self.researcher,
                Target::Permit {
                    id: self.permit.clone(),
                },
                agora_service::Front::Cli,
                agora_service::QueryLimits::default(),
            )
            .await?;
        let answer = session.plan(sql).await?.execute().await?;
        let disclosure = answer.disclosure().cloned().expect("a permit answer");
        Ok((answer.collect().await?, disclosure))
    }

    /// The permutation through which the project sees person keys, recomputed from the
    /// hub's key file (what only the hub can do: tests translate hub keys with it).
    pub(crate) fn pseudonyms(&self) -> agora_privacy::ProjectPseudonyms {
        pseudonyms(&self.env.hub, &self.project)
    }

    /// The operator's answer on the same release (the truth the tests compare with).
    pub(crate) async fn truth(&self, sql: &str) -> agora_service::QueryOutput {
        let op = operator(&self.env.hub).await;
        let session = self
            .env
            .hub
            .query()
            .open(
                &op,
                release(Some(1)),
                agora_service::Front::Cli,
                agora_service::QueryLimits::default(),
            )
            .await
            .unwrap();
        session.sql(sql).await.unwrap()
    }
}

/// Project `project`'s pseudonyms under `hub`'s secret, read from its key file.
pub(crate) fn pseudonyms(hub: &Hub, project: &str) -> agora_privacy::ProjectPseudonyms {
    let bytes = std::fs::read(hub.dir().hub_key()).unwrap();
    let secret = agora_privacy::HubSecret::from_slice(&bytes).unwrap();
    agora_privacy::ProjectPseudonyms::new(&secret, project)
}
