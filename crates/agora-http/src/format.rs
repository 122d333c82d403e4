//! Rendering query results for people and for programs: the HTTP API's CSV, TSV and JSON
//! answers, and the command line's output.

use agora_service::QueryOutput;
use arrow::csv::WriterBuilder;
use arrow::error::ArrowError;

/// How a query result is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A text table for people, with a row count.
    Table,
    /// CSV with a header; nulls as `NULL`.
    Csv,
    /// Tab-separated values with a header; nulls as `NULL`.
    Tsv,
    /// A JSON array of objects, one per row.
    Json,
    /// An Arrow IPC stream (schema, then batches), for programs that read Arrow.
    ArrowIpc,
}

/// Writes `out` in `format`. An empty result still shows its columns (table, CSV, TSV) or is
/// `[]` (JSON).
pub fn render(out: &QueryOutput, format: OutputFormat) -> Result<Vec<u8>, ArrowError> {
    Ok(match format {
        OutputFormat::Table => {
            let mut text = arrow::util::pretty::pretty_format_batches(&out.batches)?.to_string();
            if out.batches.is_empty() {
                // pretty-printing zero batches shows nothing; show the header at least.
                let empty = arrow::array::RecordBatch::new_empty(out.schema.clone());
                text = arrow::util::pretty::pretty_format_batches(&[empty])?.to_string();
            }
            let n = out.num_rows();
            text.push_str(&format!("\n({n} row{})\n", if n == 1 { "" } else { "s" }));
            text.into_bytes()
        }
        OutputFormat::Csv | OutputFormat::Tsv => {
            let delimiter = if format == OutputFormat::Tsv {
                b'\t'
            } else {
                b','
            };
            let mut buf = Vec::new();
            let mut writer = WriterBuilder::new()
                .with_header(true)
                .with_delimiter(delimiter)
                .with_null("NULL".into())
                .build(&mut buf);
            if out.batches.is_empty() {
                writer.write(&arrow::array::RecordBatch::new_empty(out.schema.clone()))?;
            }
            for batch in &out.batches {
                writer.write(batch)?;
            }
            drop(writer);
            buf
        }
        OutputFormat::Json => {
            let mut buf = Vec::new();
            let mut writer = arrow::json::ArrayWriter::new(&mut buf);
            for batch in &out.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            buf.push(b'\n');
            buf
        }
        OutputFormat::ArrowIpc => {
            let mut buf = Vec::new();
            let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &out.schema)?;
            for batch in &out.batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            buf
        }
    })
}
