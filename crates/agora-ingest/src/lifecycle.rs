//! One release lifecycle for every ingest, whatever the data model:
//!
//! ```text
//! Lifecycle::start (the clock) ─► model: discover, plan, check every file (nothing written)
//!   ─► lock   the dataset's ingest lock (a second ingest of it is refused at once)
//!   ─► clean  files of earlier ingests of the dataset that never committed
//!   ─► admit  fingerprint the source; refuse a re-ingest unless --allow-duplicate
//!   ─► write  model: the pipeline, into a fresh release directory ─► Staged
//!   ─► commit quarantine report, manifest, release row (commit.rs), or abort: remove every
//!             file written (on any error, and after reporting for a dry run)
//! ```
//!
//! The steps are types ([`Lifecycle`] → [`Locked`] → [`Admitted`]), so a model cannot admit
//! without the lock or write without admission, and [`Admitted::write`] is the only way to a
//! release: what a model writes is committed whole or removed.

use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

use agora_core::DatasetName;
use agora_lake::{DatasetLock, ReleaseWriter};

use crate::commit::{Admission, Staged, admit, commit};
use crate::fingerprint::SourcePath;
use crate::{Hub, IngestReport, Result};

/// What every ingest takes, whatever the data model; each model's request embeds it.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The dataset the new release belongs to.
    pub dataset: DatasetName,
    /// The extract: a directory, laid out as the data model says.
    pub source: PathBuf,
    /// Who runs the ingest, recorded with the release.
    pub actor: String,
    /// Show progress bars on stderr.
    pub progress: bool,
    /// Validate, pseudonymize and report, but commit nothing.
    pub dry_run: bool,
    /// Commit even if a release of the dataset was ingested from the very same files.
    pub allow_duplicate: bool,
}

/// An ingest that has started: the clock of its report runs.
pub(crate) struct Lifecycle<'a> {
    hub: &'a Hub,
    options: &'a IngestOptions,
    started: Instant,
}

impl<'a> Lifecycle<'a> {
    /// Starts the clock. Models discover and check their files before [`Lifecycle::lock`],
    /// so that a broken extract is refused without waiting for the lock.
    pub(crate) fn start(hub: &'a Hub, options: &'a IngestOptions) -> Self {
        Self {
            hub,
            options,
            started: Instant::now(),
        }
    }

    /// Takes the dataset's ingest lock (refused if another ingest holds it), then removes the
    /// files of earlier ingests of the dataset that never committed (a killed process).
    pub(crate) async fn lock(self) -> Result<Locked<'a>> {
        let (hub, dataset) = (self.hub, &self.options.dataset);
        let lock = DatasetLock::try_acquire(&hub.locks_dir, dataset)?;
        let committed = hub.meta.committed_release_ids(dataset).await?;
        let swept = hub.lake.collect_garbage(dataset, &committed).await?;
        if swept > 0 {
            tracing::info!(files = swept, "removed files of earlier failed ingests");
        }
        Ok(Locked {
            lifecycle: self,
            _lock: lock,
        })
    }
}

/// An ingest holding its dataset's lock.
pub(crate) struct Locked<'a> {
    lifecycle: Lifecycle<'a>,
    _lock: DatasetLock,
}

impl<'a> Locked<'a> {
    /// Fingerprints the source files and refuses them if a release of the dataset was
    /// already made of them, unless `allow_duplicate` (a dry run is never refused: its report
    /// says it would be). Before any row is read, so a mistaken re-ingest is refused at once.
    pub(crate) async fn admit(self, sources: Vec<SourcePath>) -> Result<Admitted<'a>> {
        let options = self.lifecycle.options;
        let admission = admit(
            self.lifecycle.hub,
            &options.dataset,
            sources,
            options.allow_duplicate,
            options.dry_run,
        )
        .await?;
        Ok(Admitted {
            locked: self,
            admission,
        })
    }
}

/// An ingest admitted to write a release.
pub(crate) struct Admitted<'a> {
    locked: Locked<'a>,
    admission: Admission,
}

impl Admitted<'_> {
    /// Runs the model's pipeline, `write`, into a new release and commits what it staged
    /// (a dry run reports it and removes it instead). If `write` or the commit fails, every
    /// file written is removed; if the process dies, the next ingest's clean-up removes them.
    pub(crate) async fn write<F, Fut>(self, write: F) -> Result<IngestReport>
    where
        F: FnOnce(ReleaseWriter) -> Fut,
        Fut: Future<Output = Result<Staged>>,
    {
        let Lifecycle {
            hub,
            options,
            started,
        } = self.locked.lifecycle;
        let writer = hub.lake.begin_release(&options.dataset);
        let result = match write(writer.clone()).await {
            Ok(staged) => commit(hub, &writer, options, self.admission, staged).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(mut report) => {
                report.elapsed_ms = started.elapsed().as_millis() as u64;
                Ok(report)
            }
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        }
    }
}
