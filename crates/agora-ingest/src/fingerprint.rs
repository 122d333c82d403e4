//! Content fingerprints of an extract's files, to recognize a re-ingest of the same files.
//!
//! The fingerprint is SHA-256 over the files sorted by relative path, each contributing its
//! path, its length and the SHA-256 of its bytes. Hashing files separately lets the pass use
//! every core; it reads each byte once, at disk or page-cache speed, before the ingest reads
//! the files again (usually from the page cache it just warmed).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::error::io_err;
use crate::{Error, Result};

/// One file of an extract: its path relative to the extract (`/`-separated), and where it is.
#[derive(Debug, Clone)]
pub(crate) struct SourcePath {
    pub relative: String,
    pub path: PathBuf,
}

/// Domain separation: a fingerprint of this scheme never equals one of another.
const TAG: &[u8] = b"agora/source-fingerprint/v1\0";

/// The fingerprint of `files`, as lower-case hex.
pub(crate) fn fingerprint(files: &[SourcePath]) -> Result<String> {
    let started = Instant::now();
    let mut order: Vec<&SourcePath> = files.iter().collect();
    order.sort_by(|a, b| a.relative.cmp(&b.relative));
    if let Some(w) = order.windows(2).find(|w| w[0].relative == w[1].relative) {
        return Err(Error::Internal(format!(
            "file {} listed twice for fingerprinting",
            w[0].relative
        )));
    }
    let digests: Vec<Mutex<Option<Result<FileDigest>>>> =
        order.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(order.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().expect("queue poisoned");
                        let i = *next;
                        *next += 1;
                        i
                    };
                    let Some(file) = order.get(i) else { break };
                    let digest = hash_file(file);
                    let failed = digest.is_err();
                    *digests[i].lock().expect("digest poisoned") = Some(digest);
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut outer = Sha256::new();
    outer.update(TAG);
    let mut bytes = 0u64;
    for (file, digest) in order.iter().zip(digests) {
        let Some(digest) = digest.into_inner().expect("digest poisoned") else {
            // A worker stopped at an earlier failure; that failure is reported below.
            continue;
        };
        let (len, digest) = digest?;
        bytes += len;
        outer.update((file.relative.len() as u64).to_le_bytes());
        outer.update(file.relative.as_bytes());
        outer.update(len.to_le_bytes());
        outer.update(digest);
    }
    tracing::info!(
        files = order.len(),
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "source files fingerprinted"
    );
    Ok(hex::encode(outer.finalize()))
}

/// A file's length and SHA-256.
type FileDigest = (u64, [u8; 32]);

fn hash_file(file: &SourcePath) -> Result<FileDigest> {
    let mut handle = std::fs::File::open(&file.path).map_err(io_err(&file.path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match handle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(&file.path)(e)),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, content: &[(&str, &str)]) -> Vec<SourcePath> {
        content
            .iter()
            .map(|(name, bytes)| {
                let path = dir.join(name);
                std::fs::write(&path, bytes).unwrap();
                SourcePath {
                    relative: (*name).to_owned(),
                    path,
                }
            })
            .collect()
    }

    #[test]
    fn depends_on_names_and_bytes_not_on_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = fingerprint(&files(d, &[("a.csv", "x\n1\n"), ("b.csv", "y\n")])).unwrap();
        let mut reversed = files(d, &[("a.csv", "x\n1\n"), ("b.csv", "y\n")]);
        reversed.reverse();
        assert_eq!(fingerprint(&reversed).unwrap(), a);
        assert_eq!(a.len(), 64);
        let other_bytes = fingerprint(&files(d, &[("a.csv", "x\n2\n"), ("b.csv", "y\n")]));
        assert_ne!(other_bytes.unwrap(), a);
        let renamed = fingerprint(&files(d, &[("c.csv", "x\n1\n"), ("b.csv", "y\n")]));
        assert_ne!(renamed.unwrap(), a);
        // Moving bytes from one file to the next changes it: lengths are hashed.
        let shifted = fingerprint(&files(d, &[("a.csv", "x\n1\ny"), ("b.csv", "\n")]));
        assert_ne!(shifted.unwrap(), a);
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let missing = SourcePath {
            relative: "gone.csv".into(),
            path: "/nonexistent/gone.csv".into(),
        };
        assert!(matches!(fingerprint(&[missing]), Err(Error::Io { .. })));
    }
}
