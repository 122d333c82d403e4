//! Finding the files of an extract and opening them as batches of raw columns.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::error::io_err;
use crate::extract::{ExtractDir, describe_column, open_file};
use crate::{Error, Result};

/// Progress of reading a source, in bytes (text files).
pub(crate) const BYTES_PROGRESS: &str =
    "{prefix:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
/// Progress of reading a source, in rows (Parquet files).
pub(crate) const ROWS_PROGRESS: &str =
    "{prefix:>28} [{bar:30}] {human_pos}/{human_len} rows {per_sec} eta {eta}";

/// A progress bar in the one style every ingest uses; `template` is one of the above.
pub(crate) fn progress_bar(prefix: String, total: u64, template: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total).with_prefix(prefix);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Rows per batch: large enough to amortize per-batch work, small enough to bound memory.
pub(crate) const BATCH_ROWS: usize = 65_536;

/// Source bytes per batch: a batch also closes at this size, so that many long (but
/// acceptable) records cannot add up to an unbounded batch.
const BATCH_BYTES: u64 = 128 << 20;

/// The longest record accepted: a CSV record (with any quoted newlines) or an NDJSON line.
/// A longer one fails the ingest with its file and line; it is never buffered whole, so a
/// corrupt file (a missing quote, a file with no newline) cannot exhaust memory.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// The largest JSON document (a FHIR Bundle) accepted: it is parsed whole, and its parsed
/// form takes several times its size in memory.
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;

/// The CSV parser's read buffer. A record always ends inside the last buffer read, which
/// bounds how far behind the read position line bookkeeping must look (see [`LineIndex`]).
const CSV_BUFFER: usize = 64 << 10;

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

/// Lists the extract and matches files to tables by name (`PERSON.csv`, `person.parquet`...),
/// case-insensitively. Files that name no known table are returned separately so they are
/// reported, never silently ignored. Links and files out of bounds fail the ingest (see
/// [`ExtractDir`]); subdirectories are not read.
pub(crate) fn discover(
    extract: &ExtractDir,
    is_table: impl Fn(&str) -> bool,
) -> Result<(Vec<SourceFile>, Vec<String>)> {
    let mut found: BTreeMap<String, SourceFile> = BTreeMap::new();
    let mut unknown = Vec::new();
    for entry in extract.list("")? {
        if entry.is_dir {
            continue;
        }
        let name = entry.name;
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
        let file = SourceFile {
            table: stem.to_owned(),
            name,
            path: entry.path,
            form,
            bytes: entry.bytes,
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
        Self::open_with(file, target, CsvOptions::default())
    }

    /// [`SourceReader::open`], reading CSV as `options` say.
    pub(crate) fn open_with(
        file: &SourceFile,
        target: &[String],
        options: CsvOptions,
    ) -> Result<(Self, Vec<String>)> {
        match file.form {
            Form::Csv { delimiter } => {
                let (r, extra) = CsvSource::open(file, delimiter, target, options)?;
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

/// Reads `reader` on a thread of `scope`, a couple of batches ahead of the consumer, each with
/// the reader's position after it. Dropping the receiver (the consumer failed) stops the
/// reader at its next batch.
pub(crate) fn read_ahead<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    mut reader: SourceReader,
) -> std::sync::mpsc::Receiver<Result<(RawBatch, u64)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    scope.spawn(move || {
        loop {
            let next = match reader.next_batch() {
                Ok(Some(batch)) => Ok((batch, reader.position())),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            let failed = next.is_err();
            if tx.send(next).is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// Maps source column names onto target positions, case-insensitively. A column named twice
/// is a structural error: which one would be meant? The columns no target takes are
/// returned described for warnings (`column NAME`, or by position when the name is not a
/// plausible identifier).
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
            // Described, not echoed: a header is the producer's text (see describe_column).
            None => extra.push(describe_column(&name, i)),
        }
    }
    Ok((mapping, extra))
}

/// Line numbers of CSV records, counted from the raw bytes the parser reads: the csv crate's
/// own count is off by one in CRLF files, and the start offset it reports for a record
/// precedes any blank lines skipped before it. A record starts at its first byte that is
/// not a line end after the end of the previous record; its line is `1 + (newlines before
/// that byte)`. The parser reads ahead, so the bytes after a record's end may already be
/// read when it is returned: the last two parser buffers are kept to look there.
///
/// Memory stays bounded on records full of quoted newlines: newline offsets more than two
/// parser buffers behind the read position are folded into the count, since every record
/// ends inside the last buffer read and no later query can fall below them.
#[derive(Debug)]
struct LineIndex {
    /// Offsets of newlines read but not yet passed.
    pending: std::collections::VecDeque<u64>,
    passed: u64,
    /// The last bytes read (at most two parser buffers), starting at offset `tail_start`.
    tail: Vec<u8>,
    tail_start: u64,
    /// Where the record being parsed may start (the end of the previous one), and the line
    /// of its first byte once that byte has been read.
    record_start: u64,
    record_line: Option<u64>,
    /// The longest record accepted, in bytes.
    max_record: u64,
}

impl LineIndex {
    fn new(max_record: u64) -> Self {
        Self {
            pending: std::collections::VecDeque::new(),
            passed: 0,
            tail: Vec::new(),
            tail_start: 0,
            record_start: 0,
            record_line: None,
            max_record,
        }
    }

    /// Newlines at offsets strictly below `byte` (calls must not decrease `byte`).
    fn newlines_before(&mut self, byte: u64) -> u64 {
        while self.pending.front().is_some_and(|&nl| nl < byte) {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed
    }

    /// Marks the end of a record at `end`: the next one starts after any line ends there.
    fn record_ended(&mut self, end: u64) {
        self.record_start = end;
        self.record_line = None;
        self.find_record_start(end);
    }

    /// Looks for the first byte at or after `from` that is not a line end, among the bytes
    /// read; notes its line if found.
    fn find_record_start(&mut self, from: u64) {
        let skip = from.saturating_sub(self.tail_start) as usize;
        let found = self
            .tail
            .get(skip..)
            .and_then(|t| t.iter().position(|b| *b != b'\n' && *b != b'\r'));
        if let Some(i) = found {
            let at = self.tail_start + (skip + i) as u64;
            self.record_line = Some(self.newlines_before(at) + 1);
        }
    }

    /// The line of the record being parsed (or about to be).
    fn record_line(&mut self) -> u64 {
        match self.record_line {
            Some(line) => line,
            None => {
                let start = self.record_start;
                self.newlines_before(start) + 1
            }
        }
    }

    /// Notes the bytes read at `offset`, and folds the newlines no query can reach any more.
    fn note(&mut self, offset: u64, bytes: &[u8]) {
        // `contains` is the standard library's optimized memchr: chunks without a newline
        // (long fields, a corrupt file) cost almost nothing.
        if bytes.contains(&b'\n') {
            for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                self.pending.push_back(offset + i as u64);
            }
        }
        self.tail.extend_from_slice(bytes);
        let keep = 2 * CSV_BUFFER;
        if self.tail.len() > keep {
            let drop = self.tail.len() - keep;
            self.tail.drain(..drop);
            self.tail_start += drop as u64;
        }
        if self.record_line.is_none() {
            self.find_record_start(self.record_start.max(offset));
        }
        let horizon = (offset + bytes.len() as u64).saturating_sub(2 * CSV_BUFFER as u64);
        self.newlines_before(horizon);
    }
}

/// The I/O error a [`CountingReader`] returns for a record over the limit.
#[derive(Debug)]
struct RecordTooLong;

impl std::fmt::Display for RecordTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too long")
    }
}

impl std::error::Error for RecordTooLong {}

/// Passes bytes through to the CSV parser, noting where the newlines are, and refuses to
/// read further into a record that is already longer than the limit.
struct CountingReader<R> {
    inner: R,
    offset: u64,
    index: std::sync::Arc<std::sync::Mutex<LineIndex>>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut index = self.index.lock().expect("line index poisoned");
        if self.offset.saturating_sub(index.record_start) > index.max_record {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                RecordTooLong,
            ));
        }
        let n = self.inner.read(buf)?;
        index.note(self.offset, &buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

/// How a CSV file is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CsvOptions {
    /// Empty fields are nulls (OMOP); otherwise they are empty strings, left to the data
    /// model's missing-value rules (Table Schema).
    pub empty_is_null: bool,
    pub max_record: u64,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            empty_is_null: true,
            max_record: MAX_RECORD_BYTES,
        }
    }
}

pub(crate) struct CsvSource {
    name: String,
    reader: csv::Reader<CountingReader<File>>,
    lines: std::sync::Arc<std::sync::Mutex<LineIndex>>,
    /// target column -> source field index
    mapping: Vec<Option<usize>>,
    fields: usize,
    record: csv::ByteRecord,
    bytes: u64,
    options: CsvOptions,
}

impl CsvSource {
    fn open(
        file: &SourceFile,
        delimiter: u8,
        target: &[String],
        options: CsvOptions,
    ) -> Result<(Self, Vec<String>)> {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(LineIndex::new(options.max_record)));
        let handle = CountingReader {
            inner: open_file(&file.path, &file.name)?,
            offset: 0,
            index: lines.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(CSV_BUFFER)
            .from_reader(handle);
        let headers = reader
            .byte_headers()
            .map_err(|e| csv_err(&file.name, &e, &lines))?
            .clone();
        lines
            .lock()
            .expect("line index poisoned")
            .record_ended(reader.position().byte());
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
                options,
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
        let batch_start = self.reader.position().byte();
        while lines.len() < BATCH_ROWS && self.reader.position().byte() - batch_start < BATCH_BYTES
        {
            let more = self
                .reader
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_err(&self.name, &e, &self.lines))?;
            if !more {
                break;
            }
            // The parser stops just after the record's terminator ('\n', or the '\r' of
            // "\r\n").
            let end = self.reader.position().byte();
            let line = {
                let mut index = self.lines.lock().expect("line index poisoned");
                let line = index.record_line();
                index.record_ended(end);
                line
            };
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
                    Some(bytes)
                        if !(bad_count || bytes.is_empty() && self.options.empty_is_null) =>
                    {
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

/// Reads one line (through its `\n`, if any) into `buf`, which the caller clears. Returns
/// the bytes read, 0 at the end of input. A line longer than `max` bytes is refused with
/// [`Error::RecordTooLong`] once `max` bytes are read: it is never buffered whole.
pub(crate) fn read_line(
    reader: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: u64,
    file: &str,
    line: u64,
    path: &Path,
) -> Result<usize> {
    let start = buf.len();
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        if available.is_empty() {
            return Ok(buf.len() - start);
        }
        let newline = if available.contains(&b'\n') {
            available.iter().position(|&b| b == b'\n')
        } else {
            None
        };
        let used = newline.map_or(available.len(), |i| i + 1);
        let content = (buf.len() - start + used - usize::from(newline.is_some())) as u64;
        if content > max {
            return Err(Error::RecordTooLong {
                file: file.to_owned(),
                line,
                max,
            });
        }
        buf.extend_from_slice(&available[..used]);
        reader.consume(used);
        if newline.is_some() {
            return Ok(buf.len() - start);
        }
    }
}

/// Structural CSV errors (I/O, a record over the length limit...) fail the ingest.
fn csv_err(file: &str, e: &csv::Error, lines: &std::sync::Mutex<LineIndex>) -> Error {
    if let csv::ErrorKind::Io(io) = e.kind()
        && io
            .get_ref()
            .is_some_and(|inner| inner.is::<RecordTooLong>())
    {
        let mut index = lines.lock().expect("line index poisoned");
        return Error::RecordTooLong {
            file: file.to_owned(),
            line: index.record_line(),
            max: index.max_record,
        };
    }
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
        let handle = open_file(&file.path, &file.name)?;
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
        assert_eq!(extra, vec!["column shoe_size"]);
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

    use proptest::prelude::*;

    /// Bytes drawn mostly from what CSV parsing turns on: delimiters, quotes, line ends, a
    /// BOM, a Latin-1 byte.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => prop::sample::select(b"a1,\"\n\r \xef\xbb\xbf\xe9".to_vec()),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..600)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes: the reader opens or refuses, reads or refuses, never panics; line
        /// numbers never decrease and never pass the file's line count.
        #[test]
        fn csv_reader_never_panics(
            content in csv_bytes(),
            max_record in 1u64..64,
            empty_is_null in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            std::fs::write(&path, &content).unwrap();
            let file = SourceFile {
                path,
                name: "t.csv".into(),
                table: "t".into(),
                form: Form::Csv { delimiter: b',' },
                bytes: content.len() as u64,
            };
            let options = CsvOptions { empty_is_null, max_record };
            let target = ["a".to_owned(), "a1".to_owned()];
            let Ok((mut reader, _)) = SourceReader::open_with(&file, &target, options) else {
                return Ok(());
            };
            let total_lines = content.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let mut last = 1;
            while let Ok(Some(batch)) = reader.next_batch() {
                for &line in &batch.lines {
                    prop_assert!(line >= last && line <= total_lines, "{line} after {last}");
                    last = line;
                }
                prop_assert_eq!(batch.columns.len(), 2);
            }
        }

        /// Lines come back exactly as written, unless one is longer than the limit.
        #[test]
        fn read_line_splits_exactly_or_refuses(
            content in prop::collection::vec(prop_oneof![1 => Just(b'\n'), 3 => any::<u8>()], 0..300),
            max in 0u64..40,
        ) {
            let mut reader = std::io::BufReader::with_capacity(7, content.as_slice());
            let mut joined = Vec::new();
            let mut buf = Vec::new();
            for line in 1.. {
                buf.clear();
                match read_line(&mut reader, &mut buf, max, "t", line, Path::new("t")) {
                    Ok(0) => break,
                    Ok(_) => {
                        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
                        prop_assert!(body.len() as u64 <= max);
                        joined.extend_from_slice(&buf);
                    }
                    Err(Error::RecordTooLong { line: at, .. }) => {
                        let longest = content
                            .split(|b| *b == b'\n')
                            .nth(at as usize - 1)
                            .map_or(0, <[u8]>::len);
                        prop_assert!(longest as u64 > max);
                        return Ok(());
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
            prop_assert_eq!(joined, content);
        }
    }

    #[test]
    fn a_record_over_the_limit_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let content = format!("a\r\n1\r\n\r\n\"{}\"\r\n2\r\n", "x\n".repeat(200_000));
        std::fs::write(&path, &content).unwrap();
        let file = SourceFile {
            path,
            name: "t.csv".into(),
            table: "t".into(),
            form: Form::Csv { delimiter: b',' },
            bytes: content.len() as u64,
        };
        let read = |max_record| -> Result<Vec<u64>> {
            let options = CsvOptions {
                empty_is_null: true,
                max_record,
            };
            let (mut reader, _) = SourceReader::open_with(&file, &["a".to_owned()], options)?;
            let mut lines = Vec::new();
            while let Some(batch) = reader.next_batch()? {
                lines.extend(batch.lines);
            }
            Ok(lines)
        };
        // Within the limit, line numbers hold across a record of 200 000 quoted newlines
        // (whose bookkeeping is folded as it goes).
        assert_eq!(read(1 << 20).unwrap(), vec![2, 4, 200_005]);
        assert!(matches!(
            read(100_000),
            Err(Error::RecordTooLong {
                line: 4,
                max: 100_000,
                ..
            })
        ));
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
