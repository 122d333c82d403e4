use std::sync::{Arc, Mutex};

use agora_core::{DatasetName, TableSchema};
use arrow::array::RecordBatch;
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
    /// Rows per Parquet row group, the unit a reader can skip using statistics.
    pub row_group_rows: usize,
    /// Zstandard compression level (1 is fast; higher is smaller and slower to write).
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 128 << 20,
            row_group_rows: 512 * 1024,
            zstd_level: 1,
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

    /// The UUID naming this release's directory and manifest ([`ReleaseManifest::release_id`]).
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
        TableWriter {
            release: self.clone(),
            name: name.to_owned(),
            schema: schema.clone(),
            arrow_schema: schema.arrow_schema(),
            options: options.clone(),
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
    current: Option<ArrowWriter<Vec<u8>>>,
    current_rows: u64,
    files: Vec<DataFile>,
}

impl TableWriter {
    /// The Arrow schema every batch given to [`Self::write`] must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    /// Appends `batch` to the current file, storing the file once it reaches
    /// [`WriterOptions::target_file_bytes`]. Blocking, like the writer itself.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
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
        if self.current.is_none() && self.files.is_empty() {
            self.current = Some(self.new_file()?);
        }
        self.close_file()?;
        Ok(TableEntry {
            rows: self.files.iter().map(|f| f.rows).sum(),
            name: self.name,
            schema: self.schema,
            files: self.files,
            person_columns: Vec::new(),
            key_text_columns: None,
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
