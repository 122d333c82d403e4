use std::collections::HashMap;
use std::path::{Path, PathBuf};

use agora_govern::MetaStore;
use agora_ingest::omop::{IdentitySource, OmopIngest, ingest_omop};
use agora_ingest::{Hub, IngestOptions, IngestReport};
use agora_lake::Lake;
use agora_privacy::HubSecret;
use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub(crate) fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

pub(crate) struct TestHub {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) hub: Hub,
}

impl TestHub {
    pub(crate) async fn new() -> Self {
        Self::with_secret(HubSecret::from_bytes([42; 32])).await
    }

    pub(crate) async fn with_secret(secret: HubSecret) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub {
            lake: Lake::open_local(dir.path().join("lake")).unwrap(),
            meta: MetaStore::open_sqlite(&dir.path().join("meta.db"))
                .await
                .unwrap(),
            secret,
            locks_dir: dir.path().join("locks"),
            data_dir: dir.path().to_path_buf(),
        };
        Self { dir, hub }
    }

    pub(crate) fn lake_dir(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    pub(crate) async fn ingest(
        &self,
        dataset: &str,
        source: &Path,
    ) -> agora_ingest::Result<IngestReport> {
        self.ingest_with(dataset, source, IdentitySource::SourceValue)
            .await
    }

    pub(crate) async fn ingest_with(
        &self,
        dataset: &str,
        source: &Path,
        identity: IdentitySource,
    ) -> agora_ingest::Result<IngestReport> {
        self.ingest_opts(dataset, source, identity, false).await
    }

    pub(crate) async fn ingest_opts(
        &self,
        dataset: &str,
        source: &Path,
        identity: IdentitySource,
        dry_run: bool,
    ) -> agora_ingest::Result<IngestReport> {
        self.ingest_version(dataset, source, identity, dry_run, None)
            .await
    }

    pub(crate) async fn ingest_version(
        &self,
        dataset: &str,
        source: &Path,
        identity: IdentitySource,
        dry_run: bool,
        cdm_version: Option<agora_cdm::CdmVersion>,
    ) -> agora_ingest::Result<IngestReport> {
        ingest_omop(
            &self.hub,
            OmopIngest {
                options: IngestOptions {
                    dataset: dataset.parse().unwrap(),
                    source: source.to_path_buf(),
                    actor: "test".into(),
                    progress: false,
                    dry_run,
                    allow_duplicate: false,
                },
                identity,
                cdm_version,
            },
        )
        .await
    }

    /// Every table of the latest release of `dataset`, read back from its Parquet files.
    pub(crate) async fn read_release(&self, dataset: &str) -> HashMap<String, Vec<RecordBatch>> {
        let info = self
            .hub
            .meta
            .release(&dataset.parse().unwrap(), None)
            .await
            .unwrap()
            .unwrap();
        let manifest = self
            .hub
            .lake
            .read_manifest(&info.manifest_path)
            .await
            .unwrap();
        manifest
            .tables
            .iter()
            .map(|t| {
                let batches = t
                    .files
                    .iter()
                    .flat_map(|f| read_parquet(&self.lake_dir().join(&f.path)))
                    .collect();
                (t.name.clone(), batches)
            })
            .collect()
    }
}

pub(crate) fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// All regular files under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Writes `files` (name, content) into a fresh directory.
pub(crate) fn extract(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}
