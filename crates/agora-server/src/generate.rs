//! `agora generate`: the synthetic generator, in CSV or typed Parquet.

use std::fs::File;
use std::io::IsTerminal;
use std::sync::Arc;

use agora_ingest::omop::spec::CdmSpec;
use agora_synth::{GenerateReport, OmopConfig};
use anyhow::{Context, Result};
use arrow::datatypes::{Field, Schema};
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
    // The generator streams CSV; each table is then converted batch by batch, so memory
    // stays bounded at any scale.
    let staging = args.out.join(".csv-staging");
    let mut report = agora_synth::generate_omop(&config, &staging)?;
    let spec = CdmSpec::v54();
    let mut bytes = 0;
    for (table, _) in &report.tables {
        let cdm = spec
            .table(table)
            .with_context(|| format!("{table} is not a CDM table"))?;
        let schema = Arc::new(Schema::new(
            cdm.columns
                .iter()
                .map(|c| Field::new(&c.name, c.datatype.column_type().arrow_type(), true))
                .collect::<Vec<_>>(),
        ));
        let csv_path = staging.join(format!("{table}.csv"));
        let reader = arrow::csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .with_batch_size(65_536)
            .build(
                File::open(&csv_path)
                    .with_context(|| format!("cannot read {}", csv_path.display()))?,
            )?;
        let out_path = args.out.join(format!("{table}.parquet"));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .build();
        let file = File::create(&out_path)
            .with_context(|| format!("cannot create {}", out_path.display()))?;
        let mut writer = ArrowWriter::try_new(file, schema, Some(props))?;
        for batch in reader {
            writer.write(&batch.with_context(|| format!("converting {}", csv_path.display()))?)?;
        }
        writer.close()?;
        bytes += std::fs::metadata(&out_path)?.len();
        std::fs::remove_file(&csv_path)?;
    }
    std::fs::remove_dir(&staging).ok();
    report.bytes = bytes;
    Ok(report)
}
