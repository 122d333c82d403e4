//! The hub context: one opened data directory and everything fronts may do with it.
//!
//! A front opens a [`Hub`] and from then on asks it: queries go through its
//! [`QueryService`], ingests through [`Hub::ingest_omop`] and its siblings, the catalogue
//! and quality profiles through their methods. The lake, the query engine and the hub secret
//! stay inside; the metadata store is reachable for governance workflows
//! ([`Hub::governance`]), whose functions take the authenticated principal and decide
//! themselves.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use agora_core::{DataDir, DatasetName};
use agora_govern::{MetaStore, ReleaseInfo, Role};
use agora_ingest::IngestReport;
use agora_ingest::fhir::FhirIngest;
use agora_ingest::omop::OmopIngest;
use agora_ingest::tableschema::TableSchemaIngest;
use agora_lake::{Lake, ReleaseManifest};
use agora_privacy::{HubSecret, PersonKeyer};
use agora_quality::QualityProfile;

use crate::access::AccessLog;
use crate::audit::{Audit, AuditAccessLog};
use crate::catalogue::CatalogueEntry;
use crate::exports::Exports;
use crate::governance::Governance;
use crate::profiles::Profiles;
use crate::query::{Front, QueryService, Target};
use crate::{Error, QueryLimits, Result};

/// An opened hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    dir: DataDir,
    pub(crate) lake: Lake,
    pub(crate) meta: MetaStore,
    secret: HubSecret,
    query: QueryService,
    governance: Governance,
    exports: Exports,
    pub(crate) profiles: Profiles,
    audit: Audit,
}

/// What [`Hub::init`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initialized {
    /// A new hub was created.
    Created,
    /// The directory already held a hub; nothing changed.
    AlreadyThere,
}

impl Hub {
    /// Creates the data directory. Never touches an existing hub secret: replacing it would
    /// silently unlink every person from their earlier releases.
    pub async fn init(dir: &DataDir) -> Result<Initialized> {
        if dir.is_initialized() {
            return Ok(Initialized::AlreadyThere);
        }
        for d in [
            dir.root().to_path_buf(),
            dir.lake(),
            dir.audit(),
            dir.locks(),
        ] {
            std::fs::create_dir_all(&d).map_err(Error::io("create", &d))?;
        }
        // The directory holds health data and keys: owner only.
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(0o700))
            .map_err(Error::io("restrict", dir.root()))?;
        std::fs::create_dir_all(dir.keys())
            .and_then(|()| {
                std::fs::set_permissions(dir.keys(), std::fs::Permissions::from_mode(0o700))
            })
            .map_err(Error::io("create", dir.keys()))?;
        let meta = MetaStore::open(&dir.meta_url()).await?;
        let token = meta
            .create_token("local-operator", &[Role::Operator])
            .await?;
        write_private(&dir.operator_token(), token.as_bytes())?;
        audit_key(&dir.audit_key())?;
        // Written last: its presence marks the directory as initialized.
        write_private(&dir.hub_key(), HubSecret::generate().expose_bytes())?;
        Ok(Initialized::Created)
    }

    /// Opens an initialized data directory (and its metadata store).
    pub async fn open(dir: &DataDir) -> Result<Self> {
        Self::open_with(dir, |meta| Arc::new(AuditAccessLog::start(meta.clone()))).await
    }

    /// Opens the hub as [`Hub::open`] does, except that its query service records access
    /// events in `access` instead of the audit log.
    ///
    /// **It exists only for measuring the audit log's cost** (`agora-bench`, the only crate
    /// that enables the `bench-access-log` feature, compares a hub with the audit log against
    /// one without it in the same process). No front may call it: a hub whose queries are
    /// not in the audit log breaks the hub's first promise.
    #[cfg(feature = "bench-access-log")]
    pub async fn open_with_access_log(dir: &DataDir, access: Arc<dyn AccessLog>) -> Result<Self> {
        Self::open_with(dir, |_| access).await
    }

    /// A new audit log writer on this hub's metadata store, as [`Hub::open`] starts one for
    /// its query service: every event recorded through it is an audit log entry of this hub.
    ///
    /// **It exists only for measuring appends to the audit log** (`agora-bench
    /// --audit-append`, on a throw-away data directory). No front may call it.
    #[cfg(feature = "bench-access-log")]
    pub fn start_audit_access_log(&self) -> AuditAccessLog {
        AuditAccessLog::start(self.meta.clone())
    }

    async fn open_with(
        dir: &DataDir,
        access: impl FnOnce(&MetaStore) -> Arc<dyn AccessLog>,
    ) -> Result<Self> {
        if !dir.is_initialized() {
            return Err(Error::NotInitialized(dir.root().to_path_buf()));
        }
        let secret = read_secret(&dir.hub_key())?;
        let meta = MetaStore::open(&dir.meta_url()).await?;
        let lake = Lake::open_local(dir.lake())?;
        let audit = Audit::new(meta.clone(), audit_key(&dir.audit_key())?, dir.audit());
        let access = access(&meta);
        let query = QueryService::new(
            meta.clone(),
            lake.clone(),
            access,
            dir.spill(),
            agora_privacy::NoiseSource::new(&secret),
            agora_privacy::PseudonymKeys::new(&secret),
        );
        Ok(Self {
            dir: dir.clone(),
            exports: Exports::new(query.clone(), meta.clone(), dir.exports()),
            query,
            governance: Governance::new(meta.clone(), PersonKeyer::new(&secret)),
            lake,
            meta,
            secret,
            profiles: Profiles::new(dir.profiles()),
            audit,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &DataDir {
        &self.dir
    }

    /// The query service: the only way to data.
    pub fn query(&self) -> &QueryService {
        &self.query
    }

    /// The governance workflows (accounts, applications, permits, registry, opt-outs,
    /// catalogue descriptions). Each takes the caller's principal and decides itself.
    pub fn governance(&self) -> &Governance {
        &self.governance
    }

    /// The tamper-evident audit log: signed heads, proofs, verification, views.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Export requests: result files researchers take out through a permit (the statement
    /// runs through the query service), their review and download.
    pub fn exports(&self) -> &Exports {
        &self.exports
    }

    fn ingest_target(&self) -> agora_ingest::Hub {
        agora_ingest::Hub {
            lake: self.lake.clone(),
            meta: self.meta.clone(),
            secret: self.secret.clone(),
            locks_dir: self.dir.locks(),
            data_dir: self.dir.root().to_path_buf(),
        }
    }

    /// Ingests an OMOP CDM extract as a new release (see `agora_ingest::omop`).
    pub async fn ingest_omop(&self, request: OmopIngest) -> agora_ingest::Result<IngestReport> {
        let options = request.options.clone();
        let result = agora_ingest::omop::ingest_omop(&self.ingest_target(), request).await;
        self.note_failed_ingest("omop", &options, result).await
    }

    /// Ingests a FHIR R4 extract as a new release (see `agora_ingest::fhir`).
    pub async fn ingest_fhir(&self, request: FhirIngest) -> agora_ingest::Result<IngestReport> {
        let options = request.options.clone();
        let result = agora_ingest::fhir::ingest_fhir(&self.ingest_target(), request).await;
        self.note_failed_ingest("fhir", &options, result).await
    }

    /// Ingests Table Schema resources as a new release (see `agora_ingest::tableschema`).
    pub async fn ingest_tableschema(
        &self,
        request: TableSchemaIngest,
    ) -> agora_ingest::Result<IngestReport> {
        let options = request.options.clone();
        let result =
            agora_ingest::tableschema::ingest_tableschema(&self.ingest_target(), request).await;
        self.note_failed_ingest("tableschema", &options, result)
            .await
    }

    /// A failed ingest is an `ingest.failed` operations entry (a committed one is its
    /// `release.committed`): who, which dataset and source, and the error, whose messages
    /// name files, lines and fields but never a value. Dry runs commit nothing and are not
    /// logged.
    async fn note_failed_ingest(
        &self,
        format: &str,
        options: &agora_ingest::IngestOptions,
        result: agora_ingest::Result<IngestReport>,
    ) -> agora_ingest::Result<IngestReport> {
        if let Err(e) = &result
            && !options.dry_run
        {
            let entry = agora_govern::NewAuditEntry::operations("ingest.failed", &options.actor)
                .outcome("failed")
                .with("format", format)
                .with("dataset", options.dataset.to_string())
                .with("source", options.source.display().to_string())
                .with("error_kind", crate::kind_name(agora_core::HasKind::kind(e)))
                .with("error", e.to_string());
            if let Err(logged) = self.meta.append_audit(vec![entry]).await {
                tracing::error!(error = %logged, "the audit log could not record a failed ingest");
            }
        }
        result
    }

    /// A release's manifest (what it holds: tables, columns, counts; never data).
    pub async fn manifest(&self, release: &ReleaseInfo) -> Result<Arc<ReleaseManifest>> {
        Ok(self.lake.read_manifest(&release.manifest_path).await?)
    }

    /// The quality profile of `release`, computed through the query service if not yet
    /// kept.
    pub async fn quality_profile(
        &self,
        release: &ReleaseInfo,
        limits: QueryLimits,
    ) -> Result<Arc<QualityProfile>> {
        self.profiles
            .get_or_compute(release, async || {
                let dataset: DatasetName = release.dataset.parse().map_err(|_| {
                    Error::Internal("a stored release names an invalid dataset".into())
                })?;
                let system = self.query.system();
                let session = self
                    .query
                    .open(
                        &system,
                        Target::Release {
                            dataset,
                            release: Some(release.number),
                        },
                        Front::Profiler,
                        limits,
                    )
                    .await?;
                Ok((session, self.manifest(release).await?))
            })
            .await
    }

    /// Computes the profile of every dataset's latest release that has none yet; returns
    /// how many were computed. One release that cannot be profiled does not starve the
    /// others (its failure is logged).
    pub async fn warm_profiles(&self, limits: &QueryLimits) -> Result<usize> {
        let mut computed = 0;
        for dataset in self.meta.list_datasets().await? {
            let Ok(name) = dataset.name.parse() else {
                continue;
            };
            let Some(info) = self.meta.release(&name, None).await? else {
                continue;
            };
            if self.profiles.cached(&info).is_none() {
                match self.quality_profile(&info, limits.clone()).await {
                    Ok(_) => computed += 1,
                    Err(e) => tracing::warn!(
                        dataset = %info.dataset,
                        release = info.number,
                        error = %e,
                        "quality profile failed"
                    ),
                }
            }
        }
        Ok(computed)
    }

    /// The public catalogue: every dataset held or described, sorted by name.
    pub async fn catalogue(&self) -> Result<Vec<CatalogueEntry>> {
        crate::catalogue::entries(self).await
    }

    /// One dataset's catalogue entry, or `None` when the hub neither holds nor describes it.
    pub async fn catalogue_entry(&self, name: &DatasetName) -> Result<Option<CatalogueEntry>> {
        crate::catalogue::entry_for(self, name).await
    }
}

/// Writes a new file readable by its owner only, durably. Refuses to overwrite.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("create", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", path))
}

/// The audit log's signing key at `path`, created on first use (a hub initialized before
/// the audit log had none). Two processes creating it at once: one writes, the other reads.
fn audit_key(path: &Path) -> Result<agora_audit::SigningKey> {
    let parse = |bytes: &[u8]| {
        agora_audit::SigningKey::from_pkcs8(bytes)
            .map_err(|_| Error::Secret(format!("{} is damaged", path.display())))
    };
    if !path.exists() {
        let (key, document) = agora_audit::SigningKey::generate()
            .map_err(|e| Error::Internal(format!("cannot generate the audit key: {e}")))?;
        match write_private(path, &document) {
            Ok(()) => return Ok(key),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
            }
            Err(e) => return Err(e),
        }
    }
    check_private(path)?;
    parse(&std::fs::read(path).map_err(Error::io("read", path))?)
}

fn check_private(path: &Path) -> Result<()> {
    let mode = std::fs::metadata(path)
        .map_err(Error::io("read", path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::Secret(format!(
            "{} is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

fn read_secret(path: &Path) -> Result<HubSecret> {
    check_private(path)?;
    let bytes = std::fs::read(path).map_err(Error::io("read", path))?;
    HubSecret::from_slice(&bytes)
        .map_err(|_| Error::Secret(format!("{} is damaged", path.display())))
}
