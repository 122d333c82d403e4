//! The one way into an extract's files. Every model lists its extract through
//! [`ExtractDir::list`] and opens its files through [`open_file`], so what an ingest reads is
//! a regular file that really is in the extract:
//!
//! * no symbolic link, wherever it points (even inside the extract: the simplest rule to
//!   check and to explain), and no special file (a FIFO would block the ingest);
//! * nothing that resolves outside the extract directory;
//! * nothing inside the hub's data directory (an extract placed there, or a hard link to the
//!   hub's secret or metadata store), except its `samples/` directory, where the hub itself
//!   writes the synthetic extract `agora demo` ingests.
//!
//! The extract directory itself may be reached through a link (`--source latest/`): it is
//! resolved once, and every file is listed and opened under its resolved path. A file is
//! checked when listed (`symlink_metadata`, then `canonicalize` and a prefix check) and
//! opened with `O_NOFOLLOW`, then checked again on the open handle: a file swapped for a
//! link in between is refused, not followed.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::io_err;
use crate::{Error, Result};

/// Why a file of an extract is refused (the message names the file, never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// The entry is a symbolic link.
    SymbolicLink,
    /// Neither a regular file nor a directory (a FIFO, a socket, a device).
    NotRegular,
    /// Its resolved path is outside the extract directory.
    Outside,
    /// It is inside the hub's data directory.
    InsideHub,
    /// It is a hard link to a file of the hub's data directory (its secret, its store).
    HubFile,
}

impl std::fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UnsafeReason::SymbolicLink => {
                "is a symbolic link; extracts may not contain links: copy the file in"
            }
            UnsafeReason::NotRegular => "is neither a regular file nor a directory",
            UnsafeReason::Outside => "resolves outside the extract directory",
            UnsafeReason::InsideHub => "is inside the hub's data directory",
            UnsafeReason::HubFile => "is a link to a file of the hub's data directory",
        })
    }
}

/// One entry of an extract directory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The file name.
    pub name: String,
    /// Its path relative to the extract directory, `/`-separated: what reports show.
    pub relative: String,
    /// Where it is (under the extract's resolved path).
    pub path: PathBuf,
    pub is_dir: bool,
    /// Its length in bytes (files).
    pub bytes: u64,
}

/// An extract directory, resolved, with what of the hub it must not reach.
#[derive(Debug, Clone)]
pub(crate) struct ExtractDir {
    root: PathBuf,
    hub: Option<PathBuf>,
    /// (device, inode) of the hub's secrets and metadata store.
    hub_files: HashSet<(u64, u64)>,
}

impl ExtractDir {
    /// The extract at `dir`, for a hub whose data directory is `hub_dir`.
    pub(crate) fn open(dir: &Path, hub_dir: &Path) -> Result<Self> {
        let root = std::fs::canonicalize(dir).map_err(io_err(dir))?;
        let hub = std::fs::canonicalize(hub_dir).ok();
        let mut hub_files = HashSet::new();
        if let Some(hub) = &hub {
            let keys = std::fs::read_dir(hub.join("keys"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path());
            for path in keys.chain([hub.join("meta.db")]) {
                if let Ok(m) = std::fs::symlink_metadata(&path) {
                    hub_files.insert((m.dev(), m.ino()));
                }
            }
        }
        let extract = Self {
            root,
            hub,
            hub_files,
        };
        if extract.in_hub(&extract.root) {
            return Err(Error::UnsafeSource {
                file: ".".into(),
                reason: UnsafeReason::InsideHub,
            });
        }
        Ok(extract)
    }

    /// Whether `path` (resolved) is in the hub's data directory, outside `samples/`.
    fn in_hub(&self, path: &Path) -> bool {
        self.hub
            .as_ref()
            .is_some_and(|h| path.starts_with(h) && !path.starts_with(h.join("samples")))
    }

    /// The entries of the extract's directory `relative` (`""`: the extract itself; else
    /// a directory [`Self::list`] returned, with a trailing `/`), sorted by name. Any link,
    /// special file or file out of bounds fails the whole listing, naming the entry.
    pub(crate) fn list(&self, relative: &str) -> Result<Vec<Entry>> {
        let dir = self.root.join(relative);
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{relative}{name}");
            let path = entry.path();
            let refuse = |reason| Error::UnsafeSource {
                file: relative.clone(),
                reason,
            };
            // `symlink_metadata`: the entry itself, never what a link points to.
            let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                return Err(refuse(UnsafeReason::SymbolicLink));
            }
            if !kind.is_dir() && !kind.is_file() {
                return Err(refuse(UnsafeReason::NotRegular));
            }
            let resolved = std::fs::canonicalize(&path).map_err(io_err(&path))?;
            if !resolved.starts_with(&self.root) {
                return Err(refuse(UnsafeReason::Outside));
            }
            if self.in_hub(&resolved) {
                return Err(refuse(UnsafeReason::InsideHub));
            }
            if kind.is_file()
                && meta.nlink() > 1
                && self.hub_files.contains(&(meta.dev(), meta.ino()))
            {
                return Err(refuse(UnsafeReason::HubFile));
            }
            entries.push(Entry {
                name,
                relative,
                path,
                is_dir: kind.is_dir(),
                bytes: meta.len(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}

/// Opens a file [`ExtractDir::list`] returned, refusing it if it became a link or anything
/// but a regular file since (`name`: its path relative to the extract, for the error).
pub(crate) fn open_file(path: &Path, name: &str) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO swapped in is not waited on (no effect on regular files).
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::UnsafeSource {
                    file: name.to_owned(),
                    reason: UnsafeReason::SymbolicLink,
                }
            } else {
                io_err(path)(e)
            }
        })?;
    if !file.metadata().map_err(io_err(path))?.is_file() {
        return Err(Error::UnsafeSource {
            file: name.to_owned(),
            reason: UnsafeReason::NotRegular,
        });
    }
    Ok(file)
}

/// The whole content of a file [`ExtractDir::list`] returned, opened as [`open_file`] does.
pub(crate) fn read_file(path: &Path, name: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut open_file(path, name)?, &mut bytes).map_err(io_err(path))?;
    Ok(bytes)
}

/// How a warning may name a source column: by its name when it is a plausible identifier,
/// else by its (1-based) position. A header is data the producer controls: a planted value
/// must not travel into a report everyone with the release can read.
pub(crate) fn describe_column(name: &str, index: usize) -> String {
    let plausible = name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plausible {
        format!("column {name}")
    } else {
        format!("an unrecognised column at position {}", index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_column_names_are_shown() {
        assert_eq!(describe_column("person_id", 0), "column person_id");
        assert_eq!(describe_column("_x1", 2), "column _x1");
        for bad in [
            "sk-live-0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
            "1abc",
            "a b",
            "p@ss",
            "",
            "é",
        ] {
            assert_eq!(
                describe_column(bad, 4),
                "an unrecognised column at position 5"
            );
        }
    }
}
