//! `agora generate`: the synthetic generator, in CSV or typed Parquet.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

use agora_cdm::CdmVersion;
use agora_synth::{GenerateReport, OmopConfig, TableSink};
use anyhow::{Context, Result};
use arrow::csv::reader::Decoder;
use arrow::datatypes::{Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::cli::{GenerateFormat, GenerateOmopArgs};

pub(crate) fn omop(args: &GenerateOmopArgs) -> Result<GenerateReport> {
    let config = OmopConfig {
        persons: args.persons,
        seed: args.seed,
        defects: args.defects,
        progress: std::io::stderr().is_terminal(),
    };
    if args.format == GenerateFormat::Csv {
        return Ok(agora_synth::generate_omop(&config, &args.out)?);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let spec = agora_cdm::spec(CdmVersion::V5_4);
    let open = |table: &str| -> agora_synth::Result<Box<dyn TableSink>> {
        let path = args.out.join(format!("{table}.parquet"));
        let cdm = spec.table(table).ok_or_else(|| {
            let not_cdm = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a CDM table");
            agora_synth::Error::io(&path, not_cdm)
        })?;
        let schema = Arc::new(Schema::new(
            cdm.columns
                .iter()
                .map(|c| Field::new(&c.name, c.datatype.column_type().arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        let sink = ParquetSink::create(path.clone(), schema, 65_536)
            .map_err(|e| agora_synth::Error::io(&path, e))?;
        Ok(Box::new(sink))
    };
    Ok(agora_synth::generate_omop_with(&config, &open)?)
}

/// Typed Parquet written from the generator's CSV text as it comes, a batch at a time: no
/// CSV copy of the data set is stored (at 6M persons that copy would be about 100 GB). Each
/// table converts on its own thread: decoding and compressing cost several times what
/// generating does, and one writer thread for every table would leave the other cores idle.
struct ParquetSink {
    path: PathBuf,
    chunks: Option<SyncSender<Vec<u8>>>,
    converter: Option<JoinHandle<std::io::Result<u64>>>,
}

impl ParquetSink {
    fn create(path: PathBuf, schema: SchemaRef, batch_rows: usize) -> std::io::Result<Self> {
        let mut converter = Converter::create(&path, schema, batch_rows)?;
        // A few chunks in flight: the generator runs ahead only that far (bounded memory).
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let converter = std::thread::Builder::new()
            .name("parquet-convert".into())
            .spawn(move || {
                for chunk in received {
                    converter.feed(&chunk)?;
                }
                converter.finish()
            })?;
        Ok(Self {
            path,
            chunks: Some(chunks),
            converter: Some(converter),
        })
    }

    /// The converter's result, once it has stopped (normally, or on an error).
    fn join(&mut self) -> std::io::Result<u64> {
        self.chunks = None;
        match self.converter.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the Parquet converter panicked")),
            None => Err(std::io::Error::other("the Parquet converter has stopped")),
        }
    }
}

impl Write for ParquetSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(buf.to_vec()).is_ok(),
            None => false,
        };
        if sent {
            return Ok(buf.len());
        }
        // The converter stopped early: its error is the one to report.
        Err(match self.join() {
            Err(e) => e,
            Ok(_) => std::io::Error::other("the Parquet converter stopped early"),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TableSink for ParquetSink {
    fn path(&self) -> &Path {
        &self.path
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<u64> {
        self.join()
    }
}

/// CSV text in, typed Parquet out.
struct Converter {
    decoder: Decoder,
    writer: ArrowWriter<File>,
}

impl Converter {
    fn create(path: &Path, schema: SchemaRef, batch_rows: usize) -> std::io::Result<Self> {
        let decoder = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .with_batch_size(batch_rows)
            .build_decoder();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(io_err)?))
            .build();
        let writer =
            ArrowWriter::try_new(File::create(path)?, schema, Some(props)).map_err(io_err)?;
        Ok(Self { decoder, writer })
    }

    fn feed(&mut self, mut text: &[u8]) -> std::io::Result<()> {
        while !text.is_empty() {
            // The decoder keeps a partial last row for the next call; it stops early when
            // its batch is full.
            let read = self.decoder.decode(text).map_err(|_| not_cdm())?;
            text = &text[read..];
            if self.decoder.capacity() == 0 {
                self.write_batch()?;
            } else if read == 0 {
                return Err(std::io::Error::other("the CSV decoder made no progress"));
            }
        }
        Ok(())
    }

    fn write_batch(&mut self) -> std::io::Result<()> {
        if let Some(batch) = self.decoder.flush().map_err(|_| not_cdm())? {
            self.writer.write(&batch).map_err(io_err)?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<u64> {
        self.decoder.decode(&[]).map_err(io_err)?;
        self.write_batch()?;
        let file = self.writer.into_inner().map_err(io_err)?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    }
}

/// A generated row that does not parse as its table's CDM types: a generator bug. The
/// decoder's own message would quote the value.
fn not_cdm() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a generated row does not match its table's CDM types",
    )
}

fn io_err(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    /// Rows split anywhere between writes (even inside a field or a quoted newline) and
    /// batches filling up mid-write all come out as the same rows, in order.
    #[test]
    fn parquet_sink_rebuilds_rows_across_arbitrary_writes() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        let mut csv = String::from("id,note\n");
        for i in 0..1000 {
            match i % 3 {
                0 => csv.push_str(&format!("{i},plain {i}\n")),
                1 => csv.push_str(&format!("{i},\"two\nlines, {i}\"\n")),
                _ => csv.push_str(&format!("{i},\n")),
            }
        }
        for fragment in [1, 7, 64, 4096] {
            let path = dir.path().join(format!("t{fragment}.parquet"));
            let mut sink: Box<dyn TableSink> =
                Box::new(ParquetSink::create(path.clone(), schema.clone(), 13).unwrap());
            for part in csv.as_bytes().chunks(fragment) {
                sink.write_all(part).unwrap();
            }
            assert!(sink.finish().unwrap() > 0);

            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            let mut next = 0i64;
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                let notes = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                for row in 0..batch.num_rows() {
                    assert_eq!(ids.value(row), next, "fragment {fragment}");
                    match next % 3 {
                        0 => assert_eq!(notes.value(row), format!("plain {next}")),
                        1 => assert_eq!(notes.value(row), format!("two\nlines, {next}")),
                        _ => assert!(notes.is_null(row) || notes.value(row).is_empty()),
                    }
                    next += 1;
                }
            }
            assert_eq!(next, 1000, "fragment {fragment}");
        }
    }

    /// A row the schema cannot hold fails the table, without quoting the value.
    #[test]
    fn parquet_sink_reports_an_untyped_row_without_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let path = dir.path().join("t.parquet");
        let mut sink: Box<dyn TableSink> = Box::new(ParquetSink::create(path, schema, 2).unwrap());
        // The converter may stop on the first write or later; the error surfaces by `finish`.
        let written = sink.write_all(b"id\n1\nsecret-value\n3\n4\n");
        let err = match written {
            Err(e) => e,
            Ok(()) => sink.finish().unwrap_err(),
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
