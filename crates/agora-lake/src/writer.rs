use std::sync::{Arc, Mutex};

use agora_core::{DatasetName, TableSchema};
use arrow::array::RecordBatch;
use arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::store_err;
use crate::lake::dataset_prefix;
use crate::{DataFile, Error, Lake, ReleaseManifest, Result, TableEntry};

/// How table files are cut and encoded.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A file is closed once its encoded size reaches this; bounds the memory of one writer.
    pub target_file_bytes: usize,
    pub row_group_rows: usize,
    pub zstd_level: i32,
    /// Columns each row group is sorted by (ascending, nulls first); names absent from the
    /// table are ignored. Sorting on the column queries filter by makes the page index
    /// selective: a reader skips the pages whose value range excludes the filter. Only
    /// rows within one row group are reordered, so memory stays bounded by a row group.
    pub cluster_by: Vec<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 << 20,
            row_group_rows: 512 * 1024,
            zstd_level: 1,
            cluster_by: Vec::new(),
        }
    }
}

/// Writes the files of one release. Nothing it writes is visible to readers until the
/// metadata store commits the manifest returned by [`ReleaseWriter::commit_manifest`].
#[derive(Debug, Clone)]
pub struct ReleaseWriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    lake: Lake,
    dataset: DatasetName,
    release_id: String,
    runtime: tokio::runtime::Handle,
    written: Mutex<Vec<Path>>,
}

impl ReleaseWriter {
    pub(crate) fn new(lake: Lake, dataset: DatasetName) -> Self {
        Self {
            inner: Arc::new(Inner {
                lake,
                dataset,
                release_id: uuid::Uuid::new_v4().to_string(),
                runtime: tokio::runtime::Handle::current(),
                written: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn release_id(&self) -> &str {
        &self.inner.release_id
    }

    fn data_dir(&self) -> String {
        format!(
            "{}/data/{}",
            dataset_prefix(&self.inner.dataset),
            self.inner.release_id
        )
    }

    /// A writer for one table. Blocking: use it from a worker thread, not an async task.
    pub fn table(&self, name: &str, schema: &TableSchema, options: &WriterOptions) -> TableWriter {
        let arrow_schema = schema.arrow_schema();
        let cluster_by = options
            .cluster_by
            .iter()
            .filter_map(|c| arrow_schema.index_of(c).ok())
            .collect();
        TableWriter {
            release: self.clone(),
            name: name.to_owned(),
            schema: schema.clone(),
            arrow_schema,
            options: options.clone(),
            cluster_by,
            pending: Vec::new(),
            pending_rows: 0,
            current: None,
            current_rows: 0,
            files: Vec::new(),
        }
    }

    /// Stores an auxiliary file of the release (e.g. the quarantine report) and returns its
    /// lake path.
    pub async fn put_file(&self, name: &str, bytes: Vec<u8>) -> Result<String> {
        let location = Path::from(format!("{}/_{name}", self.data_dir()));
        self.put(&location, bytes).await?;
        Ok(location.to_string())
    }

    async fn put(&self, location: &Path, bytes: Vec<u8>) -> Result<()> {
        // Record first: if the put fails half-way, `abort` still knows what to remove.
        self.inner
            .written
            .lock()
            .expect("writer list poisoned")
            .push(location.clone());
        self.inner
            .lake
            .store()
            .put(location, PutPayload::from(bytes))
            .await
            .map_err(store_err(location))?;
        Ok(())
    }

    /// Makes every file durable, then writes the manifest (never overwriting one) and makes
    /// it durable too. Returns the manifest's lake path, which the caller commits.
    pub async fn commit_manifest(&self, manifest: &ReleaseManifest) -> Result<String> {
        let written = self
            .inner
            .written
            .lock()
            .expect("writer list poisoned")
            .clone();
        self.inner.lake.sync(written).await?;
        let location = Path::from(format!(
            "{}/manifests/{}.json",
            dataset_prefix(&self.inner.dataset),
            self.inner.release_id
        ));
        let body = serde_json::to_vec_pretty(manifest).map_err(|e| Error::BadManifest {
            path: location.to_string(),
            reason: e.to_string(),
        })?;
        self.inner
            .written
            .lock()
            .expect("writer list poisoned")
            .push(location.clone());
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.inner
            .lake
            .store()
            .put_opts(&location, PutPayload::from(body), opts)
            .await
            .map_err(store_err(&location))?;
        self.inner.lake.sync(vec![location.clone()]).await?;
        Ok(location.to_string())
    }

    /// Best-effort removal of everything this writer stored. Whatever a crash prevents us from
    /// removing here is collected later by [`Lake::collect_garbage`].
    pub async fn abort(&self) {
        let written =
            std::mem::take(&mut *self.inner.written.lock().expect("writer list poisoned"));
        for location in written {
            if let Err(e) = self.inner.lake.store().delete(&location).await {
                tracing::warn!(path = %location, error = %e, "could not remove file of aborted release");
            }
        }
    }
}

/// Encodes one table into Parquet files of bounded size.
pub struct TableWriter {
    release: ReleaseWriter,
    name: String,
    schema: TableSchema,
    arrow_schema: SchemaRef,
    options: WriterOptions,
    /// Indices of `options.cluster_by` in the schema; empty: rows are written as they come.
    cluster_by: Vec<usize>,
    /// Rows of the next row group, held back to be sorted (only when clustering).
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    current: Option<ArrowWriter<Vec<u8>>>,
    current_rows: u64,
    files: Vec<DataFile>,
}

impl TableWriter {
    pub fn schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.cluster_by.is_empty() {
            return self.encode(batch);
        }
        self.pending.push(batch.clone());
        self.pending_rows += batch.num_rows();
        while self.pending_rows >= self.options.row_group_rows {
            self.flush_row_group(self.options.row_group_rows)?;
        }
        Ok(())
    }

    /// Sorts the first `rows` pending rows by the cluster columns and writes them as one
    /// row group; the rest stays pending.
    fn flush_row_group(&mut self, rows: usize) -> Result<()> {
        let on_err = |source: arrow::error::ArrowError| Error::Parquet {
            table: self.name.clone(),
            source: source.into(),
        };
        let all = concat_batches(&self.arrow_schema, &self.pending).map_err(on_err)?;
        let rows = rows.min(all.num_rows());
        let head = all.slice(0, rows);
        let rest = all.slice(rows, all.num_rows() - rows);
        let keys: Vec<SortColumn> = self
            .cluster_by
            .iter()
            .map(|&i| SortColumn {
                values: head.column(i).clone(),
                options: None,
            })
            .collect();
        let order = lexsort_to_indices(&keys, None).map_err(on_err)?;
        let sorted = take_record_batch(&head, &order).map_err(on_err)?;
        self.pending_rows = rest.num_rows();
        self.pending = if rest.num_rows() > 0 {
            vec![rest]
        } else {
            Vec::new()
        };
        self.encode(&sorted)?;
        let on_err = self.parquet_err();
        if let Some(writer) = self.current.as_mut() {
            // Close the row group here so it holds exactly one sorted run.
            writer.flush().map_err(on_err)?;
        }
        Ok(())
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.current = Some(self.new_file()?);
        }
        let on_err = self.parquet_err();
        let writer = self.current.as_mut().expect("file opened above");
        writer.write(batch).map_err(on_err)?;
        self.current_rows += batch.num_rows() as u64;
        if writer.bytes_written() + writer.in_progress_size() >= self.options.target_file_bytes {
            self.close_file()?;
        }
        Ok(())
    }

    /// Closes the last file and describes the table for the manifest. A table with no rows
    /// still gets one (empty) file so every reader sees its schema.
    pub fn finish(mut self) -> Result<TableEntry> {
        if self.pending_rows > 0 {
            self.flush_row_group(self.pending_rows)?;
        }
        if self.current.is_none() && self.files.is_empty() {
            self.current = Some(self.new_file()?);
        }
        self.close_file()?;
        Ok(TableEntry {
            rows: self.files.iter().map(|f| f.rows).sum(),
            name: self.name,
            schema: self.schema,
            files: self.files,
        })
    }

    fn new_file(&self) -> Result<ArrowWriter<Vec<u8>>> {
        let level = ZstdLevel::try_new(self.options.zstd_level).map_err(self.parquet_err())?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.options.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(format!("agora {}", env!("CARGO_PKG_VERSION")))
            .build();
        ArrowWriter::try_new(Vec::new(), self.arrow_schema.clone(), Some(props))
            .map_err(self.parquet_err())
    }

    fn close_file(&mut self) -> Result<()> {
        let Some(writer) = self.current.take() else {
            return Ok(());
        };
        let bytes = writer.into_inner().map_err(self.parquet_err())?;
        let location = Path::from(format!(
            "{}/{}/part-{:05}.parquet",
            self.release.data_dir(),
            self.name,
            self.files.len()
        ));
        let len = bytes.len() as u64;
        let release = self.release.clone();
        let put_at = location.clone();
        self.release
            .inner
            .runtime
            .block_on(async move { release.put(&put_at, bytes).await })?;
        self.files.push(DataFile {
            path: location.to_string(),
            rows: std::mem::take(&mut self.current_rows),
            bytes: len,
        });
        Ok(())
    }

    fn parquet_err(&self) -> impl FnOnce(parquet::errors::ParquetError) -> Error + use<> {
        let table = self.name.clone();
        move |source| Error::Parquet { table, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::{ColumnDef, ColumnType};
    use arrow::array::{Array, AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    use object_store::memory::InMemory;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn schema() -> TableSchema {
        let col = |name: &str| ColumnDef {
            name: name.into(),
            ty: ColumnType::Int64,
            nullable: true,
        };
        TableSchema {
            columns: vec![col("person_id"), col("concept_id")],
        }
    }

    /// Writes `rows` rows in uneven batches (concept ids in a scrambled order, some null) and
    /// returns, per row group of every file written, the (person_id, concept_id) pairs.
    fn write_and_read(options: WriterOptions, rows: i64) -> Vec<Vec<(i64, Option<i64>)>> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let lake = Lake::from_store(Arc::new(InMemory::new()));
        let dataset: DatasetName = "demo".parse().unwrap();
        let writer = runtime.block_on(async { lake.begin_release(&dataset) });
        let entry = runtime
            .block_on(runtime.spawn_blocking(move || {
                let mut table = writer.table("events", &schema(), &options);
                let arrow_schema = table.schema().clone();
                let mut next = 0;
                for size in [37, 1, 90, 63].iter().cycle() {
                    if next >= rows {
                        break;
                    }
                    let end = (next + size).min(rows);
                    let persons = Int64Array::from_iter_values(next..end);
                    let concepts: Int64Array = (next..end)
                        .map(|i| (i % 11 != 0).then_some((i * 7919) % 101))
                        .collect();
                    let batch = RecordBatch::try_new(
                        arrow_schema.clone(),
                        vec![Arc::new(persons), Arc::new(concepts)],
                    )
                    .unwrap();
                    table.write(&batch).unwrap();
                    next = end;
                }
                table.finish().unwrap()
            }))
            .unwrap();
        assert_eq!(entry.rows, rows as u64);
        let mut groups = Vec::new();
        for file in &entry.files {
            let bytes = runtime
                .block_on(lake.store().get(&Path::from(file.path.as_str())))
                .unwrap();
            let bytes = runtime.block_on(bytes.bytes()).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
            let row_groups = builder.metadata().num_row_groups();
            for rg in 0..row_groups {
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                    .unwrap()
                    .with_row_groups(vec![rg])
                    .build()
                    .unwrap();
                let mut pairs = Vec::new();
                for batch in reader {
                    let batch = batch.unwrap();
                    let p = batch.column(0).as_primitive::<Int64Type>();
                    let c = batch.column(1).as_primitive::<Int64Type>();
                    for i in 0..batch.num_rows() {
                        pairs.push((p.value(i), (!c.is_null(i)).then(|| c.value(i))));
                    }
                }
                groups.push(pairs);
            }
        }
        groups
    }

    #[test]
    fn clustered_row_groups_are_sorted_and_keep_every_row() {
        let options = WriterOptions {
            row_group_rows: 100,
            cluster_by: vec!["concept_id".into(), "not_a_column".into()],
            ..WriterOptions::default()
        };
        let groups = write_and_read(options, 1234);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, [vec![100; 12], vec![34]].concat());
        for (i, group) in groups.iter().enumerate() {
            let concepts: Vec<Option<i64>> = group.iter().map(|r| r.1).collect();
            assert!(
                concepts.is_sorted(),
                "row group {i} is not sorted by concept_id"
            );
            // Each row group holds exactly the rows that arrived in its slice of the input.
            let mut persons: Vec<i64> = group.iter().map(|r| r.0).collect();
            persons.sort_unstable();
            let start = i as i64 * 100;
            assert_eq!(
                persons,
                (start..start + persons.len() as i64).collect::<Vec<_>>()
            );
            for &(p, c) in group {
                assert_eq!(c, (p % 11 != 0).then_some((p * 7919) % 101));
            }
        }
    }

    #[test]
    fn unclustered_tables_keep_arrival_order() {
        let options = WriterOptions {
            row_group_rows: 100,
            ..WriterOptions::default()
        };
        let persons: Vec<i64> = write_and_read(options, 250)
            .concat()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(persons, (0..250).collect::<Vec<_>>());
    }
}
