use std::collections::{HashMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use agora_core::DatasetName;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{io_err, store_err};
use crate::{Error, ReleaseManifest, ReleaseWriter, Result};

/// The URL under which query sessions see the lake. Sessions get *only* this store, so a
/// query can never name a file outside the lake.
pub const LAKE_URL: &str = "agora://lake";

/// A handle on the lake: an object store plus, for a local lake, its root directory (used to
/// fsync what was written before a release is committed).
#[derive(Debug, Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
    /// Manifests already read. A manifest never changes once written, so no invalidation.
    manifests: Arc<Mutex<HashMap<String, Arc<ReleaseManifest>>>>,
}

impl Lake {
    /// A lake in a local directory, created if missing.
    pub fn open_local(root: impl AsRef<FsPath>) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let root = root.canonicalize().map_err(io_err(root))?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(store_err(&Path::from("")))?;
        Ok(Self {
            store: Arc::new(store),
            local_root: Some(root),
            manifests: Default::default(),
        })
    }

    /// A lake on any object store (S3-compatible stores, in memory for tests). Durability of
    /// a successful `put` is the store's.
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            local_root: None,
            manifests: Default::default(),
        }
    }

    /// The object store under the lake, rooted at the lake itself (paths such as
    /// `datasets/<ds>/...`). Query sessions register it under [`LAKE_URL`].
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Starts writing a new, not yet visible release. Must be called inside a Tokio runtime.
    pub fn begin_release(&self, dataset: &DatasetName) -> ReleaseWriter {
        ReleaseWriter::new(self.clone(), dataset.clone())
    }

    /// Reads the release manifest at `path` (a lake path, as committed in the metadata store).
    /// Cached for the life of the handle and its clones: manifests are immutable.
    pub async fn read_manifest(&self, path: &str) -> Result<Arc<ReleaseManifest>> {
        if let Some(m) = self
            .manifests
            .lock()
            .expect("manifest cache poisoned")
            .get(path)
        {
            return Ok(m.clone());
        }
        let location = Path::from(path);
        let bytes = self
            .store
            .get(&location)
            .await
            .map_err(store_err(&location))?
            .bytes()
            .await
            .map_err(store_err(&location))?;
        let manifest: Arc<ReleaseManifest> = Arc::new(serde_json::from_slice(&bytes).map_err(
            |e| Error::BadManifest {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        )?);
        self.manifests
            .lock()
            .expect("manifest cache poisoned")
            .insert(path.to_owned(), manifest.clone());
        Ok(manifest)
    }

    /// Deletes the files of releases of `dataset` that were never committed (an ingest that
    /// failed or was killed). `committed` holds the release ids the metadata store knows.
    /// The caller must hold the dataset's ingest lock so no running ingest is swept away.
    /// Returns how many objects, files and directories were removed.
    pub async fn collect_garbage(
        &self,
        dataset: &DatasetName,
        committed: &HashSet<String>,
    ) -> Result<usize> {
        let prefix = dataset_prefix(dataset);
        let mut removed = 0;
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(store_err(&prefix))?;
        for object in objects {
            let release = release_of(&object.location, &prefix);
            if release.is_some_and(|r| !committed.contains(r)) {
                self.store
                    .delete(&object.location)
                    .await
                    .map_err(store_err(&object.location))?;
                removed += 1;
            }
        }
        // On a local lake, `put` writes through a temporary file (`name#n`) that `list` never
        // shows: an ingest killed mid-write leaves one behind. Remove uncommitted releases'
        // directories whole, then the directories emptied above.
        if let Some(root) = &self.local_root {
            let dir = root.join(prefix.as_ref());
            let committed = committed.clone();
            removed += tokio::task::spawn_blocking(move || {
                let swept = remove_uncommitted(&dir, &committed);
                prune_empty_dirs(&dir);
                swept
            })
            .await
            .map_err(|e| Error::Io {
                path: "lake".into(),
                source: std::io::Error::other(e),
            })?;
        }
        Ok(removed)
    }

    /// Makes `paths` (and the directories holding them) durable on a local lake.
    pub(crate) async fn sync(&self, paths: Vec<Path>) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || {
            let mut dirs = HashSet::new();
            for p in &paths {
                let fs_path = root.join(p.as_ref());
                std::fs::File::open(&fs_path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&fs_path))?;
                let mut dir = fs_path.parent();
                while let Some(d) = dir {
                    if !dirs.insert(d.to_path_buf()) || !d.starts_with(&root) {
                        break;
                    }
                    dir = d.parent();
                }
            }
            for d in dirs {
                std::fs::File::open(&d)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(&d))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Io {
            path: "lake".into(),
            source: std::io::Error::other(e),
        })?
    }
}

/// Removes, under a dataset's directory, the release directories (`data/<id>/`) and manifest
/// files (`manifests/<id>.json*`) of releases not in `committed`. Returns how many entries
/// went. Best effort, like the object deletions before it.
fn remove_uncommitted(dataset_dir: &FsPath, committed: &HashSet<String>) -> usize {
    let mut removed = 0;
    if let Ok(entries) = std::fs::read_dir(dataset_dir.join("data")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !committed.contains(&name) && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dataset_dir.join("manifests")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = name.split(".json").next().unwrap_or_default();
            if !committed.contains(id) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Removes the empty directories below `dir` (not `dir` itself). Best effort: a directory
/// that cannot be removed is simply left.
fn prune_empty_dirs(dir: &FsPath) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            prune_empty_dirs(&path);
            let _ = std::fs::remove_dir(&path); // fails, harmlessly, when not empty
        }
    }
}

pub(crate) fn dataset_prefix(dataset: &DatasetName) -> Path {
    Path::from(format!("datasets/{dataset}"))
}

/// The release id a lake object belongs to: `data/<id>/...` or `manifests/<id>.json`.
fn release_of<'a>(location: &'a Path, prefix: &Path) -> Option<&'a str> {
    let rest = location.as_ref().strip_prefix(prefix.as_ref())?;
    let rest = rest.strip_prefix('/')?;
    if let Some(data) = rest.strip_prefix("data/") {
        data.split('/').next()
    } else {
        rest.strip_prefix("manifests/")?.strip_suffix(".json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_of_recognizes_data_and_manifests() {
        let prefix = Path::from("datasets/demo");
        let data = Path::from("datasets/demo/data/abc/person/part-00000.parquet");
        let manifest = Path::from("datasets/demo/manifests/abc.json");
        let other = Path::from("datasets/demo/README");
        assert_eq!(release_of(&data, &prefix), Some("abc"));
        assert_eq!(release_of(&manifest, &prefix), Some("abc"));
        assert_eq!(release_of(&other, &prefix), None);
    }
}
