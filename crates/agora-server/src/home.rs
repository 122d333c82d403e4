//! The hub's data directory: creating it and opening what it holds.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use agora_core::{DataDir, DatasetName};
use agora_govern::{MetaStore, ReleaseInfo, Role};
use agora_ingest::Hub;
use agora_lake::Lake;
use agora_privacy::HubSecret;
use agora_query::{Grant, QueryEngine, QueryLimits, Workspace};
use anyhow::{Context, Result, bail};

use crate::profiles::Profiles;

/// An opened hub: everything commands need.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    pub dir: DataDir,
    pub lake: Lake,
    pub engine: QueryEngine,
    pub meta: MetaStore,
    pub secret: HubSecret,
    /// Quality profiles of releases, computed once (shared by the CLI, the API and the
    /// catalogue).
    pub profiles: Profiles,
}

/// What `init` did.
pub(crate) enum Initialized {
    Created,
    AlreadyThere,
}

/// Creates the data directory. Never touches an existing hub secret: replacing it would
/// silently unlink every person from their earlier releases.
pub(crate) async fn init(dir: &DataDir) -> Result<Initialized> {
    if dir.is_initialized() {
        return Ok(Initialized::AlreadyThere);
    }
    for d in [
        dir.root().to_path_buf(),
        dir.lake(),
        dir.audit(),
        dir.locks(),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // The directory holds health data and keys: owner only.
    std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.root().display()))?;
    std::fs::create_dir_all(dir.keys())
        .and_then(|()| std::fs::set_permissions(dir.keys(), std::fs::Permissions::from_mode(0o700)))
        .with_context(|| format!("cannot create {}", dir.keys().display()))?;
    let meta = MetaStore::open(&dir.meta_url())
        .await
        .context("cannot create the metadata store")?;
    let token = meta
        .create_token("local-operator", &[Role::Operator])
        .await?;
    write_private(&dir.operator_token(), token.as_bytes())?;
    // Written last: its presence marks the directory as initialized.
    write_private(&dir.hub_key(), HubSecret::generate().expose_bytes())?;
    Ok(Initialized::Created)
}

/// Writes a new file readable by its owner only, durably. Refuses to overwrite.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

impl Home {
    pub(crate) async fn open(dir: &DataDir) -> Result<Self> {
        if !dir.is_initialized() {
            bail!(
                "{} is not an Agora data directory; run `agora init --data-dir {}` first",
                dir.root().display(),
                dir.root().display()
            );
        }
        let secret = read_secret(&dir.hub_key())?;
        let meta = MetaStore::open(&dir.meta_url())
            .await
            .context("cannot open the metadata store")?;
        let lake = Lake::open_local(dir.lake())?;
        Ok(Self {
            dir: dir.clone(),
            engine: QueryEngine::new(lake.clone()),
            lake,
            meta,
            secret,
            profiles: Profiles::new(dir.profiles()),
        })
    }

    pub(crate) fn ingest_hub(&self) -> Hub {
        Hub {
            lake: self.lake.clone(),
            meta: self.meta.clone(),
            secret: self.secret.clone(),
            locks_dir: self.dir.locks(),
        }
    }

    /// An operator's workspace on a release (the latest when `release` is `None`).
    /// The caller has established that `principal` is an operator.
    pub(crate) async fn operator_workspace(
        &self,
        principal: &str,
        dataset: &DatasetName,
        release: Option<i64>,
        limits: QueryLimits,
    ) -> Result<Workspace> {
        let Some(info) = self.meta.release(dataset, release).await? else {
            match release {
                Some(n) => bail!("dataset {dataset} has no release {n}"),
                None => bail!("dataset {dataset} has no release; ingest one first"),
            }
        };
        self.release_workspace(principal, &info, limits).await
    }

    /// An operator's workspace on a release the caller has already looked up.
    pub(crate) async fn release_workspace(
        &self,
        principal: &str,
        release: &ReleaseInfo,
        mut limits: QueryLimits,
    ) -> Result<Workspace> {
        let manifest = self.lake.read_manifest(&release.manifest_path).await?;
        limits.spill_dir = Some(self.dir.spill());
        let grant = Grant {
            principal: principal.to_owned(),
            dataset: release.dataset.parse()?,
            release: release.number,
            manifest,
        };
        Ok(self.engine.workspace(grant, limits).await?)
    }
}

fn read_secret(path: &Path) -> Result<HubSecret> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    HubSecret::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))
}
