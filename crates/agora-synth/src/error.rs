//! Errors of the generator. Messages name the file involved, never generated data values.

use std::path::PathBuf;

/// Everything that can go wrong while generating a synthetic data set.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is unusable (e.g. a defect rate outside `0.0..=1.0`).
    #[error("invalid generator configuration: {0}")]
    InvalidConfig(&'static str),
    /// Creating, writing or flushing an output file (or the output directory) failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The CSV writer failed on an output file.
    #[error("cannot write CSV {}: {source}", path.display())]
    Csv {
        /// The output file being written.
        path: PathBuf,
        /// What the CSV writer reported.
        #[source]
        source: csv::Error,
    },
    /// A generator thread panicked; this is a bug.
    #[error("a generator thread panicked")]
    WorkerPanicked,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An output at `path` could not be created or written (for [`crate::TableSink`] makers).
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
