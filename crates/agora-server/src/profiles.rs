//! Quality profiles of releases, computed once and kept: a release is immutable, so its
//! profile never changes. Kept in memory and as JSON files under the data directory's
//! `profiles/` (derived data: deleting it only costs recomputation).
//!
//! Profiles feed `agora quality`, the operators' quality endpoint and the public catalogue
//! (person counts, time coverage, check summary). The catalogue never computes one on an
//! anonymous request: the server computes missing profiles in the background
//! ([`Profiles::warm`]) and the catalogue says "pending" until then.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use agora_govern::ReleaseInfo;
use agora_quality::QualityProfile;
use agora_query::QueryLimits;
use anyhow::{Context, Result};
use serde_json::Value;

use crate::home::Home;

/// Profiles by (dataset, release number).
type ProfileMap = HashMap<(String, i64), Arc<Value>>;

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
    pub(crate) fn cached(&self, release: &ReleaseInfo) -> Option<Arc<Value>> {
        let key = (release.dataset.clone(), release.number);
        if let Some(v) = self.memory.lock().expect("profile cache").get(&key) {
            return Some(v.clone());
        }
        let bytes = std::fs::read(self.path(&release.dataset, release.number)).ok()?;
        // A damaged file is recomputed, not trusted.
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        let value = Arc::new(value);
        self.memory
            .lock()
            .expect("profile cache")
            .insert(key, value.clone());
        Some(value)
    }

    /// The profile, computing and keeping it if needed.
    pub(crate) async fn get(
        &self,
        home: &Home,
        release: &ReleaseInfo,
        limits: QueryLimits,
    ) -> Result<Arc<Value>> {
        if let Some(v) = self.cached(release) {
            return Ok(v);
        }
        let _one_at_a_time = self.computing.lock().await;
        if let Some(v) = self.cached(release) {
            return Ok(v);
        }
        let ws = home.release_workspace("system", release, limits).await?;
        let profile: QualityProfile = agora_quality::profile(&ws).await?;
        let value = serde_json::to_value(&profile)?;
        self.store(release, &value)?;
        let value = Arc::new(value);
        self.memory
            .lock()
            .expect("profile cache")
            .insert((release.dataset.clone(), release.number), value.clone());
        Ok(value)
    }

    /// Writes atomically (temporary file, then rename), so a crash never leaves half a file.
    fn store(&self, release: &ReleaseInfo, value: &Value) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.path(&release.dataset, release.number);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(value)?)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Computes the profile of every dataset's latest release that has none yet.
    pub(crate) async fn warm(&self, home: &Home, limits: &QueryLimits) -> Result<usize> {
        let mut computed = 0;
        for dataset in home.meta.list_datasets().await? {
            let Ok(name) = dataset.name.parse() else {
                continue;
            };
            let Some(info) = home.meta.release(&name, None).await? else {
                continue;
            };
            if self.cached(&info).is_none() {
                // One release that cannot be profiled must not starve the others.
                match self.get(home, &info, limits.clone()).await {
                    Ok(_) => computed += 1,
                    Err(e) => tracing::warn!(
                        dataset = %info.dataset,
                        release = info.number,
                        error = %format!("{e:#}"),
                        "quality profile failed"
                    ),
                }
            }
        }
        Ok(computed)
    }
}
