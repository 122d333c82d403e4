//! Finding and reading FHIR input files: Bulk Data NDJSON (one resource per line) and Bundles
//! (a JSON document whose `entry[].resource` are the resources).
//!
//! This module only turns bytes into JSON values with a position (file, line or entry
//! index). It does not look inside resources beyond `resourceType`, and does not decide what
//! is stored: that is `pseudo` and the ingest's job.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::extract::{ExtractDir, open_file, read_file};
use crate::source::{MAX_DOCUMENT_BYTES, MAX_RECORD_BYTES, read_line};
use crate::{Error, Reason, Result};

/// How a file holds resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Ndjson,
    Bundle,
}

/// One input file.
#[derive(Debug, Clone)]
pub(crate) struct FhirFile {
    pub(crate) path: PathBuf,
    /// The name shown in reports and the quarantine (see `labels` in the ingest: a name that
    /// contains a patient identifier is replaced before it is shown).
    pub(crate) name: String,
    pub(crate) bytes: u64,
    pub(crate) kind: FileKind,
}

impl FhirFile {
    /// What the re-ingest fingerprint covers of this file: its name and bytes.
    pub(crate) fn source_path(&self) -> crate::fingerprint::SourcePath {
        crate::fingerprint::SourcePath {
            relative: self.name.clone(),
            path: self.path.clone(),
        }
    }
}

/// Where a resource sits in its file: a 1-based line (NDJSON) or a 0-based entry index
/// (Bundle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Position {
    pub(crate) file: usize,
    pub(crate) index: u64,
}

/// The `fullUrl`s of a Bundle's entries, mapped to `Type/id`, so that `urn:uuid:` references
/// between entries can be made plain relative references.
pub(crate) type FullUrls = HashMap<String, (String, String)>;

/// Lists the FHIR files of the extract (sorted by name) and warnings about the others. A
/// link or a file out of bounds fails the ingest (see [`ExtractDir`]); subdirectories are
/// not read.
pub(crate) fn discover(extract: &ExtractDir) -> Result<(Vec<FhirFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for entry in extract.list("")? {
        if entry.is_dir {
            continue;
        }
        let (name, path) = (entry.name, entry.path);
        let lower = name.to_ascii_lowercase();
        let kind = if lower.ends_with(".ndjson") {
            FileKind::Ndjson
        } else if lower.ends_with(".json") {
            FileKind::Bundle
        } else {
            warnings.push(format!("{name}: not a .ndjson or .json file, not ingested"));
            continue;
        };
        let bytes = entry.bytes;
        if kind == FileKind::Ndjson && !holds_resources(&path, &name)? {
            warnings.push(format!(
                "{name}: its first line is not a FHIR resource (an export log?), not ingested"
            ));
            continue;
        }
        files.push(FhirFile {
            path,
            name,
            bytes,
            kind,
        });
    }
    Ok((files, warnings))
}

/// Bulk Data exports put non-resource files (e.g. `log.ndjson`) beside the resources: a file
/// whose first non-empty line is a JSON object without `resourceType` is one of those. A file
/// whose first line is broken JSON is kept: its lines go to the quarantine.
fn holds_resources(path: &Path, name: &str) -> Result<bool> {
    let mut reader = BufReader::new(open_file(path, name)?);
    let mut buf = Vec::new();
    for line_no in 1.. {
        buf.clear();
        if read_line(&mut reader, &mut buf, MAX_RECORD_BYTES, name, line_no, path)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        return Ok(match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(o)) => o.contains_key("resourceType"),
            _ => true,
        });
    }
    Ok(true)
}

/// Reads every resource of `file`, calling `f` with its position and the resource or the
/// reason it is not one. For a Bundle, `f` also gets the Bundle's `fullUrl` map.
/// `want` filters lines cheaply before parsing (used to find Patients first); it may look at
/// a line on its own account (pass 1 reads Encounter ids without building a JSON tree).
pub(crate) fn for_each_resource(
    file_index: usize,
    file: &FhirFile,
    mut want: impl FnMut(&str) -> bool,
    mut f: impl FnMut(Position, std::result::Result<Value, Reason>, &FullUrls) -> Result<()>,
) -> Result<()> {
    let empty = FullUrls::new();
    match file.kind {
        FileKind::Ndjson => {
            let mut reader = BufReader::new(open_file(&file.path, &file.name)?);
            let mut buf = Vec::new();
            let mut line_no = 0u64;
            loop {
                buf.clear();
                let n = read_line(
                    &mut reader,
                    &mut buf,
                    MAX_RECORD_BYTES,
                    &file.name,
                    line_no + 1,
                    &file.path,
                )?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                let position = Position {
                    file: file_index,
                    index: line_no,
                };
                let Ok(text) = std::str::from_utf8(&buf) else {
                    f(position, Err(Reason::InvalidUtf8), &empty)?;
                    continue;
                };
                let text = text.trim_start_matches('\u{feff}').trim();
                if text.is_empty() || !want(text) {
                    continue;
                }
                let parsed = match serde_json::from_str::<Value>(text) {
                    Ok(v) => as_resource(v),
                    Err(_) => Err(Reason::InvalidJson),
                };
                f(position, parsed, &empty)?;
            }
        }
        FileKind::Bundle => {
            if file.bytes > MAX_DOCUMENT_BYTES {
                return Err(Error::DocumentTooLarge {
                    file: file.name.clone(),
                    max: MAX_DOCUMENT_BYTES,
                });
            }
            let text = read_file(&file.path, &file.name)?;
            let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&text);
            let doc: Value = serde_json::from_slice(text).map_err(|e| Error::FhirFile {
                file: file.name.clone(),
                reason: format!("invalid JSON at line {} column {}", e.line(), e.column()),
            })?;
            match doc.get("resourceType").and_then(Value::as_str) {
                Some("Bundle") => {}
                Some(_) => {
                    // A single resource in a .json file: accept it as a one-entry input.
                    let position = Position {
                        file: file_index,
                        index: 0,
                    };
                    return f(position, Ok(doc), &empty);
                }
                None => {
                    return Err(Error::FhirFile {
                        file: file.name.clone(),
                        reason: "no resourceType".into(),
                    });
                }
            }
            let Some(Value::Array(entries)) = doc.get("entry") else {
                return Ok(());
            };
            let full_urls: FullUrls = entries
                .iter()
                .filter_map(|e| {
                    let url = e.get("fullUrl")?.as_str()?;
                    let r = e.get("resource")?;
                    let ty = r.get("resourceType")?.as_str()?;
                    let id = r.get("id")?.as_str()?;
                    Some((url.to_owned(), (ty.to_owned(), id.to_owned())))
                })
                .collect();
            for (i, entry) in entries.iter().enumerate() {
                let position = Position {
                    file: file_index,
                    index: i as u64,
                };
                let resource = match entry.get("resource") {
                    Some(r) => as_resource(r.clone()),
                    None => Err(Reason::NotAResource),
                };
                f(position, resource, &full_urls)?;
            }
        }
    }
    Ok(())
}

fn as_resource(v: Value) -> std::result::Result<Value, Reason> {
    match v.get("resourceType") {
        Some(Value::String(_)) => Ok(v),
        _ => Err(Reason::NotAResource),
    }
}
