//! Quality profiles of releases, computed once and kept: a release is immutable, so its
//! profile never changes. Kept in memory and as JSON files under the data directory's
//! `profiles/` (derived data: deleting it only costs recomputation), read back typed — a
//! file that does not parse as a [`QualityProfile`] (damaged, or from a version whose fields
//! differ) is recomputed, never read as nulls.
//!
//! Profiles feed `agora quality`, the operators' quality endpoint and the public catalogue
//! (person counts, time coverage, check summary). They are computed with SQL through an
//! operator session of the query service (principal `system`, front `profiler`), so each
//! of their queries is recorded like any other access. The catalogue never computes one on
//! an anonymous request: the server computes missing profiles in the background
//! ([`Hub::warm_profiles`](crate::Hub::warm_profiles)) and the catalogue says "pending"
//! until then.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use agora_govern::ReleaseInfo;
use agora_lake::ReleaseManifest;
use agora_quality::{QualityProfile, ReleaseSource};
use arrow::array::RecordBatch;

use crate::query::QuerySession;
use crate::{Error, Result};

/// Profiles by (dataset, release number).
type ProfileMap = HashMap<(String, i64), Arc<QualityProfile>>;

#[derive(Debug, Clone)]
pub(crate) struct Profiles {
    dir: PathBuf,
    memory: Arc<std::sync::Mutex<ProfileMap>>,
    /// One computation at a time: profiles are full scans, and two requests for the same
    /// release must not both compute it.
    computing: Arc<tokio::sync::Mutex<()>>,
}

impl Profiles {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            memory: Default::default(),
            computing: Default::default(),
        }
    }

    fn path(&self, dataset: &str, release: i64) -> PathBuf {
        self.dir.join(format!("{dataset}.{release}.json"))
    }

    /// The profile if already computed (in memory or on disk).
    pub(crate) fn cached(&self, release: &ReleaseInfo) -> Option<Arc<QualityProfile>> {
        let key = (release.dataset.clone(), release.number);
        if let Some(v) = self.memory.lock().expect("profile cache").get(&key) {
            return Some(v.clone());
        }
        let bytes = std::fs::read(self.path(&release.dataset, release.number)).ok()?;
        // A damaged or outdated file is recomputed, not trusted.
        let profile: QualityProfile = serde_json::from_slice(&bytes).ok()?;
        let profile = Arc::new(profile);
        self.memory
            .lock()
            .expect("profile cache")
            .insert(key, profile.clone());
        Some(profile)
    }

    /// The profile, computed in `session` (on `release`) and kept if needed.
    pub(crate) async fn get_or_compute(
        &self,
        release: &ReleaseInfo,
        session: impl AsyncFnOnce() -> Result<(QuerySession, Arc<ReleaseManifest>)>,
    ) -> Result<Arc<QualityProfile>> {
        if let Some(v) = self.cached(release) {
            return Ok(v);
        }
        let _one_at_a_time = self.computing.lock().await;
        if let Some(v) = self.cached(release) {
            return Ok(v);
        }
        let (session, manifest) = session().await?;
        let source = Profiled {
            session: &session,
            manifest: &manifest,
            release: release.number,
        };
        let profile = Arc::new(agora_quality::profile(&source).await?);
        self.store(release, &profile)?;
        self.memory
            .lock()
            .expect("profile cache")
            .insert((release.dataset.clone(), release.number), profile.clone());
        Ok(profile)
    }

    /// Writes atomically (temporary file, then rename), so a crash never leaves half a file.
    fn store(&self, release: &ReleaseInfo, profile: &QualityProfile) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io("create", &self.dir))?;
        let path = self.path(&release.dataset, release.number);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(profile)
            .map_err(|e| Error::Internal(format!("quality profile not serializable: {e}")))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(Error::io("write", path))
    }
}

/// One release as the profiler sees it: the service session's SQL and the release's
/// manifest.
struct Profiled<'a> {
    session: &'a QuerySession,
    manifest: &'a ReleaseManifest,
    release: i64,
}

impl ReleaseSource for Profiled<'_> {
    type Error = Error;

    fn manifest(&self) -> &ReleaseManifest {
        self.manifest
    }

    fn release(&self) -> i64 {
        self.release
    }

    async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.session.sql(sql).await?.batches)
    }
}
