//! Finding the resources of a Table Schema dataset: each `NAME.json` Table Schema paired with
//! its data file `NAME.csv` or `NAME.tsv`, anywhere under the directories given.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::io_err;
use crate::extract::{ExtractDir, open_file, read_file};
use crate::source::{Form, MAX_DOCUMENT_BYTES, SourceFile};
use crate::{Error, Result};

/// A schema file and the data file it describes.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The resource name: the schema file's name without `.json`.
    pub name: String,
    /// The schema file, relative to its directory (`/`-separated): what reports show.
    pub schema_name: String,
    pub schema_path: PathBuf,
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
