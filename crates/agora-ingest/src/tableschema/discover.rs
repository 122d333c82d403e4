//! Finding the resources of a Table Schema dataset: the resources of the Frictionless Data
//! Package descriptor `datapackage.json` at the top of the extract when there is one (each
//! with its `path` and its `schema`, inline or by path), else each `NAME.json` Table Schema
//! paired with its data file `NAME.csv` or `NAME.tsv`, anywhere under the directories given.
//!
//! A descriptor's paths are looked up in the extract's listing ([`ExtractDir`]): a path that
//! is absolute, climbs out (`..`), is a URL or names no regular file of the extract is
//! refused, naming the resource.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::error::io_err;
use crate::extract::{ExtractDir, UnsafeReason, open_file, read_file};
use crate::source::{Form, MAX_DOCUMENT_BYTES, SourceFile};
use crate::{Error, Result};

/// The Data Package descriptor's file name.
pub(crate) const DATAPACKAGE: &str = "datapackage.json";

/// A schema file and the data file it describes.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The resource name: the schema file's name without `.json`.
    pub name: String,
    /// The schema file, relative to its directory (`/`-separated): what reports show.
    pub schema_name: String,
    pub schema_path: PathBuf,
    /// The schema itself when it is inline in `datapackage.json` (`schema_path` is then the
    /// descriptor).
    pub schema_text: Option<Vec<u8>>,
    /// `name` is the data file's path relative to the data directory.
    pub data: SourceFile,
}

/// Lists `data_dir` (and `schema_dir`, when the schemas live elsewhere) recursively and
/// pairs schemas with data files by name, case-insensitively. Returns the pairs (sorted by
/// name) and warnings for everything left unpaired. Hidden files and directories are
/// skipped; a link or a file out of bounds fails the ingest (see [`ExtractDir`]).
pub(crate) fn discover(
    data_dir: &ExtractDir,
    schema_dir: Option<&ExtractDir>,
) -> Result<(Vec<Found>, Vec<String>)> {
    if schema_dir.is_none()
        && let Some(entry) = data_dir
            .list("")?
            .into_iter()
            .find(|e| e.name == DATAPACKAGE)
        && !entry.is_dir
    {
        return from_package(data_dir, &entry.path);
    }
    let mut data_files = Vec::new();
    let mut schema_files = Vec::new();
    let mut warnings = Vec::new();
    walk(data_dir, "", &mut |relative, path| {
        let lower = relative.to_ascii_lowercase();
        if lower.ends_with(".csv") || lower.ends_with(".tsv") {
            data_files.push((relative.to_owned(), path.to_path_buf()));
        } else if lower.ends_with(".json") && schema_dir.is_none() {
            schema_files.push((relative.to_owned(), path.to_path_buf()));
        }
    })?;
    if let Some(dir) = schema_dir {
        walk(dir, "", &mut |relative, path| {
            if relative.to_ascii_lowercase().ends_with(".json") {
                schema_files.push((relative.to_owned(), path.to_path_buf()));
            }
        })?;
    }

    let stem = |relative: &str| -> String {
        let file = relative.rsplit('/').next().unwrap_or(relative);
        file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned()
    };
    let mut schemas: BTreeMap<String, (String, String, PathBuf)> = BTreeMap::new();
    for (relative, path) in schema_files {
        if !is_table_schema(&path, &relative)? {
            warnings.push(format!(
                "{relative}: not a Table Schema (no `fields`), not used"
            ));
            continue;
        }
        let name = stem(&relative);
        let key = name.to_lowercase();
        if let Some((_, first, _)) = schemas.get(&key) {
            return Err(Error::DuplicateResource {
                resource: name,
                first: first.clone(),
                second: relative,
            });
        }
        schemas.insert(key, (name, relative, path));
    }
    let mut data: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    for (relative, path) in data_files {
        let key = stem(&relative).to_lowercase();
        if !schemas.contains_key(&key) {
            warnings.push(format!(
                "{relative}: no Table Schema {}.json, not ingested",
                stem(&relative)
            ));
            continue;
        }
        if let Some((first, _)) = data.get(&key) {
            return Err(Error::DuplicateResource {
                resource: stem(&relative),
                first: first.clone(),
                second: relative,
            });
        }
        data.insert(key, (relative, path));
    }
    let mut found = Vec::new();
    for (key, (name, schema_name, schema_path)) in schemas {
        let Some((relative, path)) = data.remove(&key) else {
            warnings.push(format!(
                "{schema_name}: no data file {name}.csv or {name}.tsv, not ingested"
            ));
            continue;
        };
        let bytes = std::fs::metadata(&path).map_err(io_err(&path))?.len();
        let form = if relative.to_ascii_lowercase().ends_with(".tsv") {
            Form::Csv { delimiter: b'\t' }
        } else {
            Form::Csv {
                delimiter: sniff_delimiter(&path, &relative)?,
            }
        };
        found.push(Found {
            name: name.clone(),
            schema_name,
            schema_path,
            schema_text: None,
            data: SourceFile {
                path,
                name: relative,
                table: name,
                form,
                bytes,
            },
        });
    }
    Ok((found, warnings))
}

/// The resources a `datapackage.json` lists (Data Package v1: `resources[]` with `name`,
/// `path` — one file —, `schema` inline or a path, optional `format`, `dialect.delimiter`).
fn from_package(dir: &ExtractDir, descriptor: &Path) -> Result<(Vec<Found>, Vec<String>)> {
    let refuse = |reason: String| Error::Schema {
        file: DATAPACKAGE.into(),
        reason,
    };
    let bytes = std::fs::metadata(descriptor)
        .map_err(io_err(descriptor))?
        .len();
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(Error::DocumentTooLarge {
            file: DATAPACKAGE.into(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    let text = read_file(descriptor, DATAPACKAGE)?;
    let doc: Json = serde_json::from_slice(&text).map_err(|e| {
        refuse(format!(
            "not valid JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(Json::Array(resources)) = doc.get("resources") else {
        return Err(refuse("no `resources` array".into()));
    };
    // Every regular file of the extract, by relative path: descriptor paths must be one.
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    walk(dir, "", &mut |relative, path| {
        files.insert(relative.to_owned(), path.to_path_buf());
    })?;
    let lookup = |what: &str, path: &str| -> Result<PathBuf> {
        if path.contains("://") {
            return Err(refuse(format!(
                "{what}: remote paths are not supported; put the file in the extract"
            )));
        }
        let outside = path.starts_with('/')
            || path.starts_with('\\')
            || path.split(['/', '\\']).any(|part| part == "..");
        if outside {
            return Err(Error::UnsafeSource {
                file: format!("{DATAPACKAGE}: {what}"),
                reason: UnsafeReason::Outside,
            });
        }
        let relative = path.trim_start_matches("./");
        files.get(relative).cloned().ok_or_else(|| {
            refuse(format!(
                "{what}: its path names no file of the extract (paths are relative to the descriptor)"
            ))
        })
    };
    let mut found = Vec::new();
    let mut used: Vec<String> = vec![DATAPACKAGE.into()];
    for (i, resource) in resources.iter().enumerate() {
        let Json::Object(resource) = resource else {
            return Err(refuse(format!("resource {}: not a JSON object", i + 1)));
        };
        let path = match resource.get("path") {
            Some(Json::String(p)) if !p.is_empty() => p.clone(),
            Some(Json::Array(_)) => {
                return Err(refuse(format!(
                    "resource {}: a resource split over several files is not supported",
                    i + 1
                )));
            }
            _ => {
                return Err(refuse(format!(
                    "resource {}: no `path` (inline `data` is not supported)",
                    i + 1
                )));
            }
        };
        let name = match resource.get("name") {
            Some(Json::String(n)) if !n.is_empty() => n.clone(),
            None => {
                let file = path.rsplit('/').next().unwrap_or(&path);
                file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned()
            }
            Some(_) => {
                return Err(refuse(format!(
                    "resource {}: `name` must be a string",
                    i + 1
                )));
            }
        };
        let what = format!("resource {}", i + 1);
        let data_path = lookup(&what, &path)?;
        let relative = path.trim_start_matches("./").to_owned();
        let (schema_name, schema_path, schema_text) = match resource.get("schema") {
            Some(Json::Object(inline)) => (
                format!("{DATAPACKAGE}#{name}"),
                descriptor.to_path_buf(),
                Some(serde_json::to_vec(inline).map_err(|e| Error::Internal(e.to_string()))?),
            ),
            Some(Json::String(p)) => {
                let schema_path = lookup(&format!("{what} schema"), p)?;
                let schema_name = p.trim_start_matches("./").to_owned();
                used.push(schema_name.clone());
                (schema_name, schema_path, None)
            }
            _ => {
                return Err(refuse(format!(
                    "{what}: no `schema` (a Table Schema object or the path of one)"
                )));
            }
        };
        used.push(relative.clone());
        let delimiter = resource
            .get("dialect")
            .and_then(|d| d.get("delimiter"))
            .and_then(Json::as_str);
        let format = resource.get("format").and_then(Json::as_str);
        let delimiter = match (delimiter, format) {
            (Some(d), _) if d.len() == 1 => d.as_bytes()[0],
            (Some(_), _) => {
                return Err(refuse(format!(
                    "{what}: `dialect.delimiter` must be one character"
                )));
            }
            (None, Some("tsv")) => b'\t',
            (None, _) if relative.to_ascii_lowercase().ends_with(".tsv") => b'\t',
            (None, _) => sniff_delimiter(&data_path, &relative)?,
        };
        let bytes = std::fs::metadata(&data_path)
            .map_err(io_err(&data_path))?
            .len();
        if let Some(first) = found
            .iter()
            .find(|f: &&Found| f.name.eq_ignore_ascii_case(&name))
        {
            return Err(Error::DuplicateResource {
                resource: name.clone(),
                first: first.data.name.clone(),
                second: relative,
            });
        }
        found.push(Found {
            name: name.clone(),
            schema_name,
            schema_path,
            schema_text,
            data: SourceFile {
                path: data_path,
                name: relative,
                table: name,
                form: Form::Csv { delimiter },
                bytes,
            },
        });
    }
    let warnings = files
        .keys()
        .filter(|f| !used.contains(f))
        .map(|f| format!("{f}: not a resource of {DATAPACKAGE}, not ingested"))
        .collect();
    Ok((found, warnings))
}

/// Calls `f` with the relative path (`/`-separated) and path of every regular file under
/// the extract's directory `prefix`, in name order.
fn walk(dir: &ExtractDir, prefix: &str, f: &mut dyn FnMut(&str, &Path)) -> Result<()> {
    for entry in dir.list(prefix)? {
        if entry.name.starts_with('.') {
            continue;
        }
        if entry.is_dir {
            walk(dir, &format!("{}/", entry.relative), f)?;
        } else {
            f(&entry.relative, &entry.path);
        }
    }
    Ok(())
}

/// A JSON file is a Table Schema when it is an object with a `fields` member. Data
/// Package descriptors and other JSON files are not (and are reported).
fn is_table_schema(path: &Path, name: &str) -> Result<bool> {
    let bytes = std::fs::metadata(path).map_err(io_err(path))?.len();
    if bytes > MAX_DOCUMENT_BYTES {
        return Ok(false);
    }
    let text = read_file(path, name)?;
    Ok(match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(o)) => o.contains_key("fields"),
        Ok(_) => false,
        // Broken JSON is taken for a broken schema: parsing it says where it is broken.
        Err(_) => true,
    })
}

/// The delimiter of a `.csv` file, from its header line: the most frequent of `,` `;` `\t`
/// `|` outside quotes (`,` when none occurs). Table Schema does not say; SNDS
/// nomenclatures use `;`.
pub(crate) fn sniff_delimiter(path: &Path, name: &str) -> Result<u8> {
    let mut head = Vec::with_capacity(64 << 10);
    open_file(path, name)?
        .take(64 << 10)
        .read_to_end(&mut head)
        .map_err(io_err(path))?;
    Ok(delimiter_of(&head))
}

fn delimiter_of(head: &[u8]) -> u8 {
    let candidates = [b',', b';', b'\t', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in head {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = candidates.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..4)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_are_sniffed_from_the_header_outside_quotes() {
        assert_eq!(delimiter_of(b"a,b,c\n1;2;3;4;5\n"), b',');
        assert_eq!(delimiter_of(b"a;b;\"c,d,e\"\n"), b';');
        assert_eq!(delimiter_of(b"a\tb\n"), b'\t');
        assert_eq!(delimiter_of(b"single\n"), b',');
        assert_eq!(delimiter_of(b""), b',');
        assert_eq!(delimiter_of(b"a;b,c\n"), b',', "ties go to the comma");
    }
}
