use std::fs::{File, OpenOptions};
use std::path::Path;

use agora_core::DatasetName;

use crate::{Error, Result, error::io_err};

/// An exclusive, advisory lock on ingesting one dataset, held for the life of the value.
///
/// It is an OS file lock, so a killed process releases it: a `kill -9` mid-ingest never
/// leaves a dataset locked. Only local deployments use it; multi-node deployments will take
/// the equivalent lock in the metadata store.
#[derive(Debug)]
pub struct DatasetLock {
    _file: File,
}

impl DatasetLock {
    /// Takes the lock file `ingest-<dataset>.lock` in `locks_dir` (created if missing) without
    /// waiting: [`Error::Busy`] if another holder has it.
    pub fn try_acquire(locks_dir: &Path, dataset: &DatasetName) -> Result<Self> {
        std::fs::create_dir_all(locks_dir).map_err(io_err(locks_dir))?;
        let path = locks_dir.join(format!("ingest-{dataset}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Busy {
                dataset: dataset.to_string(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_dataset_is_refused_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let ds: DatasetName = "a".parse().unwrap();
        let first = DatasetLock::try_acquire(dir.path(), &ds).unwrap();
        assert!(matches!(
            DatasetLock::try_acquire(dir.path(), &ds),
            Err(Error::Busy { .. })
        ));
        let other: DatasetName = "b".parse().unwrap();
        DatasetLock::try_acquire(dir.path(), &other).unwrap();
        drop(first);
        DatasetLock::try_acquire(dir.path(), &ds).unwrap();
    }
}
