//! Export requests: a researcher takes a result file out of the hub.
//!
//! ```text
//! request_export: open(permit) ─► plan ─► execute (output step) ─► collect ─► CSV
//!   ─► exports/<id>.csv written, fsynced ─► SHA-256 ─► export request recorded
//!      (pending review, or approved by the permit's policy); the file is removed if the
//!      record fails
//! download_export: visible? approved? ─► file read, hash checked ─► download recorded
//! ```
//!
//! The statement goes through the query service like any other (a session opened on the
//! permit, its output policy applied, its access event recorded): an export can hold nothing
//! a query could not return. Decisions, visibility and history are the metadata store's
//! (`agora_govern::exports`). No error or log line carries a data value.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use agora_govern::exports::{check_downloadable, is_export_id, new_export_id};
pub use agora_govern::{
    ExportDecision, ExportEvent, ExportEventKind, ExportFormat, ExportRequest, ExportStatus,
    NewExport,
};
use agora_govern::{MetaStore, Principal};
use agora_query::QueryOutput;
use sha2::{Digest, Sha256};

use crate::query::{Authenticated, Front, QueryService, Target};
use crate::{Error, QueryLimits, Result};

/// The export workflows of one hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Exports {
    query: QueryService,
    store: MetaStore,
    dir: PathBuf,
}

/// An approved export's file, its hash checked.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// The request (its history now ends with this download).
    pub export: ExportRequest,
    /// A file name for the download (`<id>.csv`).
    pub file_name: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

impl Exports {
    pub(crate) fn new(query: QueryService, store: MetaStore, dir: PathBuf) -> Self {
        Self { query, store, dir }
    }

    /// Runs `sql` under permit `permit_id` for `who` (through the query service: the
    /// permit's scope and output policy apply, the access is recorded), writes the answer as
    /// CSV with a header row under the data directory, and records the export request with
    /// the file's SHA-256. Pending review when the permit's policy asks for it, else
    /// approved at once. A refused statement writes no file and records no request.
    pub async fn request_export(
        &self,
        who: &Authenticated,
        permit_id: &str,
        sql: &str,
        front: Front,
        limits: QueryLimits,
    ) -> Result<ExportRequest> {
        let session = self
            .query
            .open(
                who,
                Target::Permit {
                    id: permit_id.to_owned(),
                },
                front,
                limits,
            )
            .await?;
        let answer = session.plan(sql).await?.execute().await?.collect().await?;
        let id = new_export_id();
        let path = self.path(&id);
        let dir = self.dir.clone();
        let written = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || write_export(&dir, &path, &answer))
                .await
                .map_err(|_| Error::Internal("writing an export file panicked".into()))?
        };
        let (rows, bytes, sha256) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        let new = NewExport {
            id: id.clone(),
            permit_id: permit_id.to_owned(),
            statement: sql.to_owned(),
            format: ExportFormat::Csv,
            rows,
            bytes,
            sha256,
        };
        match self.store.create_export(who.principal(), new).await {
            Ok(export) => Ok(export),
            Err(e) => {
                if let Err(io) = std::fs::remove_file(&path) {
                    tracing::error!(export = %id, error = %io.kind(), "an unrecorded export file could not be removed");
                }
                Err(e.into())
            }
        }
    }

    /// One export request, if `actor` may see it (else `NotFound`, as for a missing id).
    pub async fn export(&self, actor: &Principal, id: &str) -> Result<ExportRequest> {
        Ok(self.store.export(actor, id).await?)
    }

    /// The export requests `actor` may see, oldest first, only those in `status` if given.
    pub async fn list_exports(
        &self,
        actor: &Principal,
        status: Option<ExportStatus>,
    ) -> Result<Vec<ExportRequest>> {
        Ok(self.store.list_exports(actor, status).await?)
    }

    /// Decides a pending export (a reviewer who is not an applicant or member of the
    /// project), with a reason; a decided export cannot be decided again (`Conflict`).
    pub async fn decide_export(
        &self,
        actor: &Principal,
        id: &str,
        decision: ExportDecision,
        reason: &str,
    ) -> Result<ExportRequest> {
        Ok(self
            .store
            .decide_export(actor, id, decision, reason)
            .await?)
    }

    /// The file of an approved export `actor` may see, after checking its bytes against the
    /// recorded SHA-256; the download is recorded. `NotFound` for an export `actor` may not
    /// see, `PermissionDenied` while pending or once rejected, `Internal` if the file was
    /// changed or lost.
    pub async fn download_export(&self, actor: &Principal, id: &str) -> Result<ExportFile> {
        let export = self.store.export(actor, id).await?;
        check_downloadable(&export)?;
        if !is_export_id(&export.id) {
            return Err(Error::Internal("a stored export id is malformed".into()));
        }
        let path = self.path(&export.id);
        let bytes = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || std::fs::read(&path))
                .await
                .map_err(|_| Error::Internal("reading an export file panicked".into()))?
        };
        let bytes = bytes.map_err(|e| {
            tracing::error!(export = %export.id, error = %e.kind(), "an approved export's file cannot be read");
            Error::Internal("the export's file cannot be read; ask an operator".into())
        })?;
        if hex::encode(Sha256::digest(&bytes)) != export.sha256 {
            tracing::error!(export = %export.id, "an export's file does not match its recorded SHA-256");
            return Err(Error::Internal(
                "the export's file does not match its recorded hash; ask an operator".into(),
            ));
        }
        let export = self.store.record_export_download(actor, id).await?;
        Ok(ExportFile {
            file_name: format!("{}.csv", export.id),
            export,
            bytes,
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.csv"))
    }
}

/// Renders `answer` as CSV with a header row (an empty answer still has its header).
pub(crate) fn render_csv(answer: &QueryOutput) -> Result<Vec<u8>> {
    let failed = |_| Error::Internal("an answer could not be written as CSV".into());
    let mut buf = Vec::new();
    let mut writer = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(&mut buf);
    if answer.batches.is_empty() {
        writer
            .write(&arrow::array::RecordBatch::new_empty(answer.schema.clone()))
            .map_err(failed)?;
    }
    for batch in &answer.batches {
        writer.write(batch).map_err(failed)?;
    }
    drop(writer);
    Ok(buf)
}

/// Writes the CSV file durably (new file, owner only; the file and its directory fsynced):
/// `(rows, bytes, sha256)`.
fn write_export(dir: &Path, path: &Path, answer: &QueryOutput) -> Result<(i64, i64, String)> {
    let csv = render_csv(answer)?;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(Error::io("create", dir))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io("create", path))?;
    file.write_all(&csv)
        .and_then(|()| file.sync_all())
        .map_err(Error::io("write", path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))?;
    let rows = i64::try_from(answer.num_rows()).unwrap_or(i64::MAX);
    let bytes = i64::try_from(csv.len()).unwrap_or(i64::MAX);
    Ok((rows, bytes, hex::encode(Sha256::digest(&csv))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn answer(batches: bool) -> QueryOutput {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sex", DataType::Utf8, true),
            Field::new("persons", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("F"), None])),
                Arc::new(Int64Array::from(vec![20, 10])),
            ],
        )
        .unwrap();
        QueryOutput {
            schema,
            batches: if batches { vec![batch] } else { vec![] },
        }
    }

    #[test]
    fn the_file_is_csv_with_a_header_written_owner_only_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let exports = dir.path().join("exports");
        let path = exports.join("exp_x.csv");
        let (rows, bytes, sha) = write_export(&exports, &path, &answer(true)).unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written, b"sex,persons\nF,20\n,10\n");
        assert_eq!((rows, bytes), (2, written.len() as i64));
        assert_eq!(sha, hex::encode(Sha256::digest(&written)));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&exports), 0o700);
        // Never overwrites.
        assert!(write_export(&exports, &path, &answer(true)).is_err());
        // An empty answer keeps its header.
        let empty = exports.join("exp_y.csv");
        let (rows, _, _) = write_export(&exports, &empty, &answer(false)).unwrap();
        assert_eq!(rows, 0);
        assert_eq!(std::fs::read(&empty).unwrap(), b"sex,persons\n");
    }
}
