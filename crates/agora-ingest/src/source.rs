//! Finding the files of an extract and opening them as batches of raw columns.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::io_err;
use crate::{Error, Result};

/// Rows per batch: large enough to amortize per-batch work, small enough to bound memory.
pub(crate) const BATCH_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Csv { delimiter: u8 },
    Parquet,
}

impl Form {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Form::Csv { delimiter: b'\t' } => "tsv",
            Form::Csv { .. } => "csv",
            Form::Parquet => "parquet",
        }
    }
}

/// One input file, matched to the table its name designates.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    /// File name only: what reports show (full paths can name hosts or people).
    pub name: String,
    pub table: String,
    pub form: Form,
    pub bytes: u64,
}

/// Lists `dir` and matches files to tables by name (`PERSON.csv`, `person.parquet`...),
/// case-insensitively. Files that name no known table are returned separately so they are
/// reported, never silently ignored.
pub(crate) fn discover(
    dir: &Path,
    is_table: impl Fn(&str) -> bool,
) -> Result<(Vec<SourceFile>, Vec<String>)> {
    let mut found: BTreeMap<String, SourceFile> = BTreeMap::new();
    let mut unknown = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        let (stem, form) = if let Some(s) = lower.strip_suffix(".csv") {
            (s, Form::Csv { delimiter: b',' })
        } else if let Some(s) = lower.strip_suffix(".tsv") {
            (s, Form::Csv { delimiter: b'\t' })
        } else if let Some(s) = lower.strip_suffix(".parquet") {
            (s, Form::Parquet)
        } else {
            if !lower.starts_with('.') && !lower.ends_with(".txt") && !lower.ends_with(".md") {
                unknown.push(name);
            }
            continue;
        };
        if !is_table(stem) {
            unknown.push(name);
            continue;
        }
        let bytes = entry.metadata().map_err(io_err(&path))?.len();
        let file = SourceFile {
            table: stem.to_owned(),
            name,
            path,
            form,
            bytes,
        };
        if let Some(first) = found.get(stem) {
            return Err(Error::DuplicateTable {
                table: stem.to_owned(),
                first: first.name.clone(),
                second: file.name,
            });
        }
        found.insert(stem.to_owned(), file);
    }
    unknown.sort();
    Ok((found.into_values().collect(), unknown))
}

/// A batch of source rows projected onto the target table's columns.
pub(crate) struct RawBatch {
    /// One entry per target column; `None` when the source lacks that column.
    pub columns: Vec<Option<ArrayRef>>,
    /// Source line (CSV, 1-based, counting the header) or row number (Parquet, 1-based).
    pub lines: Vec<u64>,
    /// Rows already known bad while reading (wrong field count, invalid UTF-8).
    pub row_errors: Vec<(usize, Option<usize>, crate::Reason)>,
}

impl RawBatch {
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }
}

/// Reads one source file as [`RawBatch`]es.
pub(crate) enum SourceReader {
    Csv(CsvSource),
    Parquet(ParquetSource),
}

impl SourceReader {
    /// Opens `file` and maps its columns onto `target` (lower-case CDM column names).
    /// Returns the reader and the source columns that are not in `target`.
    pub(crate) fn open(file: &SourceFile, target: &[String]) -> Result<(Self, Vec<String>)> {
        match file.form {
            Form::Csv { delimiter } => {
                let (r, extra) = CsvSource::open(file, delimiter, target)?;
                Ok((SourceReader::Csv(r), extra))
            }
            Form::Parquet => {
                let (r, extra) = ParquetSource::open(file, target)?;
                Ok((SourceReader::Parquet(r), extra))
            }
        }
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        match self {
            SourceReader::Csv(r) => r.next_batch(),
            SourceReader::Parquet(r) => r.next_batch(),
        }
    }

    /// For each target column, whether the source has it.
    pub(crate) fn present(&self) -> Vec<bool> {
        let mapping = match self {
            SourceReader::Csv(r) => &r.mapping,
            SourceReader::Parquet(r) => &r.mapping,
        };
        mapping.iter().map(Option::is_some).collect()
    }

    /// Progress in the unit of [`SourceReader::total`].
    pub(crate) fn position(&self) -> u64 {
        match self {
            SourceReader::Csv(r) => r.reader.position().byte(),
            SourceReader::Parquet(r) => r.rows_read,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        match self {
            SourceReader::Csv(r) => r.bytes,
            SourceReader::Parquet(r) => r.total_rows,
        }
    }
}

/// Maps source column names onto target positions, case-insensitively. A column named twice
/// is a structural error: which one would be meant?
fn map_columns(
    file: &str,
    source: &[String],
    target: &[String],
) -> Result<(Vec<Option<usize>>, Vec<String>)> {
    let mut mapping = vec![None; target.len()];
    let mut extra = Vec::new();
    for (i, raw) in source.iter().enumerate() {
        let name = raw.trim().trim_matches('"').to_ascii_lowercase();
        match target.iter().position(|t| *t == name) {
            Some(t) if mapping[t].is_some() => {
                return Err(Error::DuplicateColumn {
                    file: file.to_owned(),
                    column: name,
                });
            }
            Some(t) => mapping[t] = Some(i),
            None => extra.push(name),
        }
    }
    Ok((mapping, extra))
}

/// Line numbers of CSV records, counted from the raw bytes the parser reads: the csv crate's
/// own count is off by one in CRLF files, and the start offset it reports for a record
/// precedes any blank lines skipped before it. The record's *end* is reliable: the record
/// ends on line `1 + (newlines before its terminator)`, and starts that many lines earlier
/// as it holds newlines inside quoted fields.
#[derive(Debug, Default)]
struct LineIndex {
    /// Offsets of newlines read but not yet passed.
    pending: std::collections::VecDeque<u64>,
    passed: u64,
}

impl LineIndex {
    /// Newlines at offsets strictly below `byte` (calls must not decrease `byte`).
    fn newlines_before(&mut self, byte: u64) -> u64 {
        while self.pending.front().is_some_and(|&nl| nl < byte) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed
    }
}

/// Passes bytes through to the CSV parser, noting where the newlines are.
struct CountingReader {
    inner: File,
    offset: u64,
    index: std::sync::Arc<std::sync::Mutex<LineIndex>>,
}

impl std::io::Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut index = self.index.lock().expect("line index poisoned");
        for (i, _) in buf[..n].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            index.pending.push_back(self.offset + i as u64);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

pub(crate) struct CsvSource {
    name: String,
    reader: csv::Reader<CountingReader>,
    lines: std::sync::Arc<std::sync::Mutex<LineIndex>>,
    /// target column -> source field index
    mapping: Vec<Option<usize>>,
    fields: usize,
    record: csv::ByteRecord,
    bytes: u64,
}

impl CsvSource {
    fn open(file: &SourceFile, delimiter: u8, target: &[String]) -> Result<(Self, Vec<String>)> {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(LineIndex::default()));
        let handle = CountingReader {
            inner: File::open(&file.path).map_err(io_err(&file.path))?,
            offset: 0,
            index: lines.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(handle);
        let headers = reader
            .byte_headers()
            .map_err(|e| csv_err(&file.name, &e))?
            .clone();
        if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
            return Err(Error::Csv {
                file: file.name.clone(),
                line: 1,
                reason: "the header row is missing or empty".into(),
            });
        }
        let names = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // The csv crate strips a UTF-8 BOM; anything else undecodable is structural.
                String::from_utf8(h.to_vec()).map_err(|_| Error::Csv {
                    file: file.name.clone(),
                    line: 1,
                    reason: format!("header field {} is not valid UTF-8", i + 1),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (mapping, extra) = map_columns(&file.name, &names, target)?;
        Ok((
            Self {
                name: file.name.clone(),
                reader,
                lines,
                mapping,
                fields: headers.len(),
                record: csv::ByteRecord::new(),
                bytes: file.bytes,
            },
            extra,
        ))
    }

    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let mut builders: Vec<Option<StringBuilder>> = self
            .mapping
            .iter()
            .map(|m| m.map(|_| StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8)))
            .collect();
        let mut lines = Vec::with_capacity(BATCH_ROWS);
        let mut row_errors = Vec::new();
        while lines.len() < BATCH_ROWS {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_err(&self.name, &e))?;
            if !more {
                break;
            }
            // The parser stops just after the record's terminator ('\n', or the '\r' of
            // "\r\n"): newlines below `end - 1` are those before the terminator.
            let end = self.reader.position().byte();
            let inside = self
                .record
                .as_slice()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            let before = self
                .lines
                .lock()
                .expect("line index poisoned")
                .newlines_before(end.saturating_sub(1));
            let line = before + 1 - inside.min(before);
            // A blank line at the end of a file is not a row.
            if self.record.len() == 1 && self.record[0].is_empty() {
                continue;
            }
            let row = lines.len();
            lines.push(line);
            let bad_count = self.record.len() != self.fields;
            if bad_count {
                row_errors.push((
                    row,
                    None,
                    crate::Reason::FieldCount {
                        expected: self.fields,
                        found: self.record.len(),
                    },
                ));
            }
            for (target, builder) in builders.iter_mut().enumerate() {
                let Some(builder) = builder else { continue };
                let field = self.mapping[target].and_then(|i| self.record.get(i));
                match field {
                    Some(bytes) if !bytes.is_empty() && !bad_count => {
                        match std::str::from_utf8(bytes) {
                            Ok(s) => builder.append_value(s),
                            Err(_) => {
                                row_errors.push((row, Some(target), crate::Reason::InvalidUtf8));
                                builder.append_null();
                            }
                        }
                    }
                    _ => builder.append_null(),
                }
            }
        }
        if lines.is_empty() {
            return Ok(None);
        }
        Ok(Some(RawBatch {
            columns: builders
                .into_iter()
                .map(|b| b.map(|mut b| std::sync::Arc::new(b.finish()) as ArrayRef))
                .collect(),
            lines,
            row_errors,
        }))
    }
}

/// Structural CSV errors (I/O, unterminated quotes at end of file...) fail the ingest.
fn csv_err(file: &str, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let reason = match e.kind() {
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields, found {len}")
        }
        _ => "malformed CSV".to_owned(),
    };
    Error::Csv {
        file: file.to_owned(),
        line,
        reason,
    }
}

pub(crate) struct ParquetSource {
    reader: ParquetRecordBatchReader,
    name: String,
    mapping: Vec<Option<usize>>,
    rows_read: u64,
    total_rows: u64,
}

impl ParquetSource {
    fn open(file: &SourceFile, target: &[String]) -> Result<(Self, Vec<String>)> {
        let handle = File::open(&file.path).map_err(io_err(&file.path))?;
        let parquet_err = |e: parquet::errors::ParquetError| Error::Parquet {
            file: file.name.clone(),
            reason: e.to_string(),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(handle).map_err(parquet_err)?;
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let (mapping, extra) = map_columns(&file.name, &names, target)?;
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(parquet_err)?;
        Ok((
            Self {
                reader,
                name: file.name.clone(),
                mapping,
                rows_read: 0,
                total_rows,
            },
            extra,
        ))
    }

    fn next_batch(&mut self) -> Result<Option<RawBatch>> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch: RecordBatch = batch.map_err(|e| Error::Parquet {
            file: self.name.clone(),
            reason: e.to_string(),
        })?;
        let first = self.rows_read + 1;
        self.rows_read += batch.num_rows() as u64;
        let columns = self
            .mapping
            .iter()
            .map(|m| m.map(|i| normalize_strings(batch.column(i))).transpose())
            .collect::<Result<_>>()?;
        Ok(Some(RawBatch {
            columns,
            lines: (first..=self.rows_read).collect(),
            row_errors: Vec::new(),
        }))
    }
}

/// Large/view/dictionary strings become plain `Utf8` so later steps handle one string type.
fn normalize_strings(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            cast(array, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))
        }
        _ => Ok(array.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_columns_is_case_insensitive_and_reports_extras() {
        let target = vec!["person_id".to_owned(), "year_of_birth".to_owned()];
        let source = vec![
            "YEAR_OF_BIRTH".to_owned(),
            "Person_ID".to_owned(),
            "shoe_size".to_owned(),
        ];
        let (mapping, extra) = map_columns("f.csv", &source, &target).unwrap();
        assert_eq!(mapping, vec![Some(1), Some(0)]);
        assert_eq!(extra, vec!["shoe_size"]);
    }

    fn csv_lines(content: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, content).unwrap();
        let file = SourceFile {
            path,
            name: "t.csv".into(),
            table: "t".into(),
            form: Form::Csv { delimiter: b',' },
            bytes: content.len() as u64,
        };
        let (mut reader, _) = SourceReader::open(&file, &["a".to_owned()]).unwrap();
        let mut lines = Vec::new();
        while let Some(batch) = reader.next_batch().unwrap() {
            lines.extend(batch.lines);
        }
        lines
    }

    #[test]
    fn line_numbers_hold_for_lf_crlf_bom_quoted_newlines_and_blank_lines() {
        assert_eq!(csv_lines("a,b\n1,2\n3,4\n"), vec![2, 3]);
        assert_eq!(csv_lines("a,b\r\n1,2\r\n3,4\r\n"), vec![2, 3]);
        assert_eq!(csv_lines("\u{feff}a,b\r\n1,2\r\n3,4"), vec![2, 3]);
        assert_eq!(csv_lines("a,b\n\"x\ny\",2\n3,4\n"), vec![2, 4]);
        assert_eq!(csv_lines("a,b\r\n\"x\r\ny\",2\r\n\r\n3,4\r\n"), vec![2, 5]);
        assert_eq!(csv_lines("a,b\n1,2\n\n3,4\n"), vec![2, 4]);
    }

    #[test]
    fn map_columns_refuses_duplicates() {
        let target = vec!["person_id".to_owned()];
        let source = vec!["person_id".to_owned(), "PERSON_ID".to_owned()];
        assert!(matches!(
            map_columns("f.csv", &source, &target),
            Err(Error::DuplicateColumn { .. })
        ));
    }
}
