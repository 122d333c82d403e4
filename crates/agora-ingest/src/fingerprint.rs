//! Content fingerprints of an extract's files, to recognize a re-ingest of the same files.
//!
//! The fingerprint is SHA-256 over the files sorted by relative path, each contributing its
//! path, its length and its digest: the SHA-256 of the SHA-256s of its 32 MiB chunks.
//! Chunks are hashed on every core (one big file does not leave the others idle); each byte
//! is read once, at disk or page-cache speed, before the ingest reads the files again
//! (usually from the page cache this pass warmed).

use std::io::{Read, Seek, SeekFrom};
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

const CHUNK: u64 = 32 << 20;

/// A chunk's length as read and its SHA-256.
type ChunkDigest = (u64, [u8; 32]);

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
    // Work units: (file, chunk). An empty file is one empty chunk.
    let mut units = Vec::new();
    for (i, file) in order.iter().enumerate() {
        let len = std::fs::metadata(&file.path)
            .map_err(io_err(&file.path))?
            .len();
        units.extend((0..len.div_ceil(CHUNK).max(1)).map(|c| (i, c)));
    }
    let digests: Vec<Mutex<Option<Result<ChunkDigest>>>> =
        units.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(units.len());
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
                    let Some(&(file, chunk)) = units.get(i) else {
                        break;
                    };
                    let digest = hash_chunk(order[file], chunk);
                    let failed = digest.is_err();
                    *digests[i].lock().expect("digest poisoned") = Some(digest);
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut per_file: Vec<(u64, Sha256)> = order.iter().map(|_| (0, Sha256::new())).collect();
    for (&(file, _), digest) in units.iter().zip(digests) {
        match digest.into_inner().expect("digest poisoned") {
            Some(Ok((len, digest))) => {
                per_file[file].0 += len;
                per_file[file].1.update(digest);
            }
            Some(Err(e)) => return Err(e),
            // Left by a worker that stopped at a failure, which is in another slot.
            None => continue,
        }
    }
    let mut outer = Sha256::new();
    outer.update(TAG);
    let mut bytes = 0u64;
    for (file, (len, digest)) in order.iter().zip(per_file) {
        bytes += len;
        outer.update((file.relative.len() as u64).to_le_bytes());
        outer.update(file.relative.as_bytes());
        outer.update(len.to_le_bytes());
        outer.update(digest.finalize());
    }
    tracing::info!(
        files = order.len(),
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "source files fingerprinted"
    );
    Ok(hex::encode(outer.finalize()))
}

fn hash_chunk(file: &SourcePath, chunk: u64) -> Result<ChunkDigest> {
    let err = io_err(&file.path);
    let mut handle = crate::extract::open_file(&file.path, &file.relative)?;
    handle
        .seek(SeekFrom::Start(chunk * CHUNK))
        .map_err(io_err(&file.path))?;
    let mut handle = handle.take(CHUNK);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = match handle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
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
    fn big_files_are_hashed_in_chunks_that_all_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let mut bytes = vec![b'x'; (2 * CHUNK + 5) as usize];
        std::fs::write(&path, &bytes).unwrap();
        let file = || SourcePath {
            relative: "big.csv".into(),
            path: path.clone(),
        };
        let a = fingerprint(&[file()]).unwrap();
        bytes[(CHUNK + 1) as usize] = b'y';
        std::fs::write(&path, &bytes).unwrap();
        let b = fingerprint(&[file()]).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let c = fingerprint(&[file()]).unwrap();
        assert!(a != b && b != c && a != c);
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
