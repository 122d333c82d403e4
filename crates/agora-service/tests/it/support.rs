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
