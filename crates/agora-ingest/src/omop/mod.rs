//! OMOP CDM ingest: a directory of CSV/TSV or Parquet files, one per table, of CDM 5.3 or 5.4,
//! always stored in the 5.4 shape (how: [`agora_cdm::upgrade`]).
//!
//! ```text
//! discover files ─► CDM version (--cdm-version, else cdm_source.cdm_version, else columns)
//!   ─► check headers (all files, before writing anything)
//!   ─► person table: conform ─► identity ─► hub person key ─► write
//!   ─► other tables, in parallel: conform ─► person_id → hub key ─► write
//!   ─► quarantine report ─► manifest ─► commit (metadata store)
//! ```

pub mod policy;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agora_cdm::upgrade::{self, ColumnSource, Derived, TableUpgrade};
use agora_cdm::{CdmColumn, CdmTable, CdmVersion, PersonRows};
use agora_core::{ColumnDef, DatasetName, TableSchema};
use agora_lake::{PseudonymizationInfo, ReleaseWriter, SourceInfo, TableEntry, WriterOptions};
use agora_privacy::{IdentityKind, PersonKeyer, source_identity};
use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use crate::commit::Staged;
use crate::conform::{Reason, Reject, conform, keep_rows};
use crate::extract::ExtractDir;
use crate::fingerprint::SourcePath;
use crate::keys::KeyResolver;
use crate::lifecycle::Lifecycle;
use crate::quarantine::Quarantine;
use crate::source::{self, Form, SourceFile, SourceReader, discover, read_ahead};
use crate::{Error, Hub, IngestOptions, IngestReport, Result, TableReport};
pub use policy::IdentitySource;

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct OmopIngest {
    /// Dataset, actor, dry run...; the source is a directory of `<table>.csv|.tsv|.parquet`
    /// files.
    pub options: IngestOptions,
    /// Where each person's identity comes from: decides which persons link across datasets.
    pub identity: IdentitySource,
    /// The extract's CDM version; `None` detects it: `cdm_source.cdm_version` when the
    /// extract has one, else the columns of its tables (5.4 when nothing tells).
    pub cdm_version: Option<CdmVersion>,
}

/// One table's plan: which source file, which columns are read, stored and re-keyed.
struct TablePlan {
    file: SourceFile,
    /// The stored table, its columns as the extract's version declares them (type, length,
    /// required) under their stored names: what each cell is validated against.
    table: CdmTable,
    /// Read columns (all stored columns, lower-case, as the file spells them), in the stored
    /// table's order.
    read_names: Vec<String>,
    /// Columns the extract's version lacks whose value is derived (index into `read_names`).
    derived: Vec<(usize, Derived)>,
    /// Indices into `read_names` of the stored columns.
    stored: Vec<usize>,
    /// Indices into `read_names` of the person-id columns to re-key.
    person_columns: Vec<usize>,
    schema: TableSchema,
}

impl TablePlan {
    fn new(file: SourceFile, upgrade: &TableUpgrade) -> Result<Self> {
        // A column with several accepted spellings is read under the one the file uses.
        let mut read_names = Vec::with_capacity(upgrade.columns.len());
        let mut columns = Vec::with_capacity(upgrade.columns.len());
        let mut derived = Vec::new();
        for (i, map) in upgrade.columns.iter().enumerate() {
            let target = &map.target;
            match &map.source {
                ColumnSource::Read { column, spellings } => {
                    let name = if spellings.len() > 1 {
                        let names: Vec<String> =
                            spellings.iter().map(|s| (*s).to_owned()).collect();
                        let (reader, _) = SourceReader::open(&file, &names)?;
                        let present = reader.present();
                        spellings
                            .iter()
                            .zip(present)
                            .find(|(_, p)| *p)
                            .map_or(spellings[0], |(s, _)| *s)
                    } else {
                        spellings[0]
                    };
                    read_names.push(name.to_owned());
                    columns.push(CdmColumn {
                        name: target.name.clone(),
                        ..column.clone()
                    });
                }
                ColumnSource::Null | ColumnSource::Derived(_) => {
                    if let ColumnSource::Derived(d) = &map.source {
                        derived.push((i, *d));
                    }
                    read_names.push(target.name.clone());
                    columns.push(CdmColumn {
                        required: false,
                        ..target.clone()
                    });
                }
            }
        }
        let mut table = upgrade.stored.clone();
        let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        table.columns = columns;
        let stored: Vec<usize> = (0..names.len())
            .filter(|&i| !policy::is_dropped(&table.name, &names[i]))
            .collect();
        let person_columns = (0..names.len())
            .filter(|&i| matches!(table.person_rows(), PersonRows::Keyed(c) if c == names[i]))
            .collect();
        let schema = TableSchema {
            columns: stored
                .iter()
                .map(|&i| {
                    let map = &upgrade.columns[i];
                    ColumnDef {
                        name: map.target.name.clone(),
                        ty: map.target.datatype.column_type(),
                        nullable: map.nullable(),
                    }
                })
                .collect(),
        };
        Ok(Self {
            file,
            table,
            read_names,
            derived,
            stored,
            person_columns,
            schema,
        })
    }

    fn open(&self) -> Result<(SourceReader, Vec<String>)> {
        let (reader, extra) = SourceReader::open(&self.file, &self.read_names)?;
        Ok((reader, extra))
    }
}

/// Ingests an OMOP CDM 5.3 or 5.4 extract as a new release of `req.options.dataset`, in the
/// CDM 5.4 shape.
///
/// Either the whole release is committed or nothing is: on any error, files already written
/// are removed, and if the process dies they are collected by the next ingest of the dataset.
pub async fn ingest_omop(hub: &Hub, req: OmopIngest) -> Result<IngestReport> {
    let lifecycle = Lifecycle::start(hub, &req.options);
    let source = req.options.source.clone();
    let hub_dir = hub.data_dir.clone();
    let forced = req.cdm_version;
    let (files, unknown, version) = tokio::task::spawn_blocking(move || {
        let extract = ExtractDir::open(&source, &hub_dir)?;
        let (files, unknown) = discover(&extract, |t| {
            CdmVersion::ALL
                .iter()
                .any(|&v| upgrade::table(v, t).is_some())
        })?;
        let version = detect_version(&files, forced)?;
        Ok::<_, Error>((files, unknown, version))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    if files.is_empty() {
        return Err(Error::NoInput {
            path: req.options.source.display().to_string(),
        });
    }
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("{f}: not a CDM {version} table, not ingested"))
        .collect();
    let mut plans: Vec<TablePlan> = Vec::with_capacity(files.len());
    for f in files {
        let Some(upgrade) = upgrade::table(version, &f.table) else {
            warnings.push(format!(
                "{}: not a CDM {version} table, not ingested",
                f.name
            ));
            continue;
        };
        if upgrade.source_only {
            warnings.push(format!(
                "{}: CDM {version} table {} has no CDM {} counterpart, stored as it is",
                f.name,
                f.table,
                upgrade::STORED
            ));
        }
        plans.push(TablePlan::new(f, &upgrade)?);
    }
    if plans.is_empty() {
        return Err(Error::NoInput {
            path: req.options.source.display().to_string(),
        });
    }

    // Structural checks on every file before anything is written.
    let has_person = plans.iter().any(|p| p.table.name == "person");
    for plan in &plans {
        if !has_person && !plan.person_columns.is_empty() {
            return Err(Error::MissingPersonTable {
                table: plan.table.name.clone(),
            });
        }
        let (reader, extra) = plan.open()?;
        check_required_columns(plan, &reader)?;
        warnings.extend(extra.iter().map(|c| {
            format!(
                "{}: {c} is not in CDM {version} table {}, not ingested",
                plan.file.name, plan.table.name
            )
        }));
    }

    let sources = plans
        .iter()
        .map(|p| SourcePath {
            relative: p.file.name.clone(),
            path: p.file.path.clone(),
        })
        .collect();
    let admitted = lifecycle.lock().await?.admit(sources).await?;
    let req = &req;
    admitted
        .write(|writer| async move {
            write_release(hub, req, &writer, plans, warnings, version).await
        })
        .await
}

fn check_required_columns(plan: &TablePlan, reader: &SourceReader) -> Result<()> {
    let present = reader.present();
    for (column, present) in plan.table.columns.iter().zip(present) {
        if column.required && !present {
            return Err(Error::MissingColumn {
                file: plan.file.name.clone(),
                table: plan.table.name.clone(),
                column: column.name.clone(),
            });
        }
    }
    Ok(())
}

async fn write_release(
    hub: &Hub,
    req: &OmopIngest,
    writer: &ReleaseWriter,
    plans: Vec<TablePlan>,
    warnings: Vec<String>,
    version: CdmVersion,
) -> Result<Staged> {
    let runtime = tokio::runtime::Handle::current();
    let keyer = PersonKeyer::new(&hub.secret);
    let resolver = KeyResolver::new(keyer, hub.meta.clone(), runtime);
    let progress = if req.options.progress {
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    let job = Job {
        writer: writer.clone(),
        options: WriterOptions::default(),
        identity: req.identity,
        dataset: req.options.dataset.clone(),
        progress,
        notes: Mutex::new(Vec::new()),
    };
    let source_files: Vec<(String, u64)> = plans
        .iter()
        .map(|p| (p.file.name.clone(), p.file.bytes))
        .collect();
    let forms: HashSet<&'static str> = plans.iter().map(|p| p.file.form.name()).collect();

    let (entries, reports, quarantine, new_persons, notes) =
        tokio::task::spawn_blocking(move || job.run(plans, resolver))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
    let mut warnings = warnings;
    warnings.extend(notes);

    let mut forms: Vec<_> = forms.into_iter().collect();
    forms.sort();
    let pseudonymization = PseudonymizationInfo {
        key_id: hub.secret.key_id(),
        identity: req.identity.describe().into(),
        dropped_columns: entries
            .iter()
            .flat_map(|e| {
                policy::DROPPED_COLUMNS
                    .iter()
                    .filter(move |(t, _)| *t == e.name)
                    .map(|(t, c)| format!("{t}.{c}"))
            })
            .collect(),
    };
    Ok(Staged {
        source: SourceInfo {
            model: format!("omop-cdm-{}", upgrade::STORED),
            converted_from: (version != upgrade::STORED).then(|| format!("omop-cdm-{version}")),
            form: forms.join("+"),
            files: source_files,
        },
        pseudonymization,
        tables: entries,
        rows_read: reports.iter().map(|r| r.rows_read).sum(),
        reports,
        quarantine,
        new_persons,
        warnings,
    })
}

/// The blocking part of an ingest, run on worker threads.
struct Job {
    writer: ReleaseWriter,
    options: WriterOptions,
    identity: IdentitySource,
    dataset: DatasetName,
    progress: MultiProgress,
    /// Warnings found while writing tables (integers written as decimals).
    notes: Mutex<Vec<String>>,
}

type JobOutput = (
    Vec<TableEntry>,
    Vec<TableReport>,
    Quarantine,
    Vec<(i64, i64)>,
    Vec<String>,
);

impl Job {
    fn run(self, plans: Vec<TablePlan>, mut resolver: KeyResolver) -> Result<JobOutput> {
        let (person, others): (Vec<_>, Vec<_>) =
            plans.into_iter().partition(|p| p.table.name == "person");
        let mut quarantine = Quarantine::default();
        let mut entries = Vec::new();
        let mut reports = Vec::new();
        let mut persons = PersonMap::default();
        if let Some(plan) = person.into_iter().next() {
            let (entry, report, q) = self.write_table(&plan, |raw_lines, columns, rejects| {
                self.key_persons(
                    &plan,
                    raw_lines,
                    columns,
                    rejects,
                    &mut resolver,
                    &mut persons,
                )
            })?;
            entries.push(entry);
            reports.push(report);
            quarantine.merge(q);
        }

        // Other tables in parallel; the first error stops the others.
        let queue = Mutex::new(others.into_iter().collect::<Vec<_>>());
        let failed = AtomicBool::new(false);
        let results = Mutex::new(Vec::new());
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some(plan) = queue.lock().expect("queue poisoned").pop() else {
                            break;
                        };
                        let result = self.write_table(&plan, |_, columns, rejects| {
                            rekey_persons(&plan, columns, rejects, &persons)
                        });
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().expect("results poisoned").push(result);
                    }
                });
            }
        });
        for result in results.into_inner().expect("results poisoned") {
            let (entry, report, q) = result?;
            entries.push(entry);
            reports.push(report);
            quarantine.merge(q);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        reports.sort_by(|a, b| a.table.cmp(&b.table));
        let mut notes = self.notes.into_inner().expect("notes poisoned");
        notes.sort();
        Ok((entries, reports, quarantine, resolver.new_persons, notes))
    }

    /// Streams one table: read, conform, apply `rekey` (which may reject more rows and
    /// rewrite person columns), quarantine, write.
    fn write_table(
        &self,
        plan: &TablePlan,
        mut rekey: impl FnMut(&[u64], &mut [ArrayRef], &mut Vec<Reject>) -> Result<()>,
    ) -> Result<(TableEntry, TableReport, Quarantine)> {
        let (reader, _) = plan.open()?;
        let bar = self.progress.add(progress_bar(&plan.file, reader.total()));
        let mut table = self
            .writer
            .table(&plan.table.name, &plan.schema, &self.options);
        let schema = table.schema().clone();
        let columns: Vec<_> = plan.table.columns.iter().collect();
        let mut quarantine = Quarantine::default();
        let mut rows_read = 0u64;
        let mut decimal_integers = vec![0u64; columns.len()];
        std::thread::scope(|scope| -> Result<()> {
            // Parsing and encoding overlap: a reader thread parses the next batches while this
            // one conforms, pseudonymizes and encodes, so one big table keeps two cores busy.
            let batches = read_ahead(scope, reader);
            for batch in batches {
                let (raw, position) = batch?;
                let first_row = rows_read + 1;
                rows_read += raw.len() as u64;
                let lines = raw.lines.clone();
                let conformed = conform(raw, &columns, &plan.file.name, &plan.table.name)?;
                for (total, n) in decimal_integers.iter_mut().zip(&conformed.decimal_integers) {
                    *total += n;
                }
                let mut typed = conformed.columns;
                let mut rejects = conformed.rejects;
                for &(i, derived) in &plan.derived {
                    typed[i] = derive(derived, first_row, lines.len());
                }
                rekey(&lines, &mut typed, &mut rejects)?;
                let rejected = quarantine.record(
                    &plan.table.name,
                    &plan.file.name,
                    &lines,
                    &rejects,
                    &plan.read_names,
                );
                let stored: Vec<ArrayRef> = plan.stored.iter().map(|&i| typed[i].clone()).collect();
                table.write(&keep_rows(&schema, stored, &rejected)?)?;
                bar.set_position(position);
            }
            Ok(())
        })?;
        bar.finish_and_clear();
        let mut notes = self.notes.lock().expect("notes poisoned");
        for (column, n) in columns.iter().zip(decimal_integers).filter(|(_, n)| *n > 0) {
            notes.push(format!(
                "{}: {n} value(s) of integer column {}.{} written as integral decimals \
                 (like 12.0) were read as integers",
                plan.file.name, plan.table.name, column.name
            ));
        }
        drop(notes);
        let entry = table.finish()?;
        let report = TableReport {
            table: plan.table.name.clone(),
            file: plan.file.name.clone(),
            rows_read,
            rows_stored: entry.rows,
            rows_quarantined: quarantine.rows(),
        };
        Ok((entry, report, quarantine))
    }

    /// Person table: derive each row's identity, key it, and record source id -> hub key.
    fn key_persons(
        &self,
        plan: &TablePlan,
        _lines: &[u64],
        columns: &mut [ArrayRef],
        rejects: &mut Vec<Reject>,
        resolver: &mut KeyResolver,
        persons: &mut PersonMap,
    ) -> Result<()> {
        let id_col = plan
            .read_names
            .iter()
            .position(|n| n == "person_id")
            .expect("person_id");
        let source_ids = columns[id_col].as_primitive::<Int64Type>().clone();
        let rejected: HashSet<usize> = rejects.iter().map(|r| r.0).collect();
        let value_col = plan
            .read_names
            .iter()
            .position(|n| n == "person_source_value")
            .expect("person_source_value");
        let values = columns[value_col].as_string::<i32>().clone();

        let mut rows = Vec::new();
        let mut identities: Vec<Vec<u8>> = Vec::new();
        for row in 0..source_ids.len() {
            if rejected.contains(&row) {
                continue;
            }
            let identity = match self.identity {
                IdentitySource::SourceValue => {
                    // The canonical form the opt-out registry keys too (agora-privacy).
                    let identity = values
                        .is_valid(row)
                        .then(|| source_identity(IdentityKind::Any, values.value(row)).ok())
                        .flatten();
                    let Some(identity) = identity else {
                        rejects.push((row, Some(value_col), Reason::MissingIdentity));
                        continue;
                    };
                    identity
                }
                IdentitySource::PersonId => {
                    format!("ds\0{}\0{}", self.dataset, source_ids.value(row)).into_bytes()
                }
            };
            rows.push(row);
            identities.push(identity);
        }
        let refs: Vec<&[u8]> = identities.iter().map(Vec::as_slice).collect();
        let keys = resolver.resolve(&refs)?;
        let mut out: Vec<Option<i64>> = vec![None; source_ids.len()];
        for (&row, &key) in rows.iter().zip(&keys) {
            let source_id = source_ids.value(row);
            if persons.by_source.contains_key(&source_id) {
                rejects.push((row, Some(id_col), Reason::DuplicatePersonId));
                continue;
            }
            persons.by_source.insert(source_id, key);
            if !persons.stored.insert(key) {
                // Same person twice: link the events, keep one person row.
                rejects.push((row, Some(value_col), Reason::DuplicateIdentity));
                continue;
            }
            out[row] = Some(key);
        }
        columns[id_col] = Arc::new(Int64Array::from(out));
        Ok(())
    }
}

/// Source person id -> hub person key, for the persons accepted from the person table.
#[derive(Default)]
struct PersonMap {
    by_source: HashMap<i64, i64>,
    stored: HashSet<i64>,
}

/// Other tables: replace every person column by the hub key; rows whose person was not
/// accepted are quarantined (nothing unlinkable or un-pseudonymizable reaches the lake).
fn rekey_persons(
    plan: &TablePlan,
    columns: &mut [ArrayRef],
    rejects: &mut Vec<Reject>,
    persons: &PersonMap,
) -> Result<()> {
    for &col in &plan.person_columns {
        let source = columns[col].as_primitive::<Int64Type>();
        let mut keyed = Vec::with_capacity(source.len());
        for (row, id) in source.iter().enumerate() {
            keyed.push(match id {
                None => None,
                Some(id) => match persons.by_source.get(&id) {
                    Some(&key) => Some(key),
                    None => {
                        rejects.push((row, Some(col), Reason::UnknownPerson));
                        None
                    }
                },
            });
        }
        columns[col] = Arc::new(Int64Array::from(keyed));
    }
    Ok(())
}

/// The values of a derived column for `rows` rows, the first being the file's `first_row`.
fn derive(derived: Derived, first_row: u64, rows: usize) -> ArrayRef {
    Arc::new(match derived {
        Derived::Constant(value) => Int64Array::from(vec![value; rows]),
        Derived::RowNumber => (first_row..first_row + rows as u64)
            .map(|n| Some(n as i64))
            .collect(),
    })
}

/// A CDM column name that only one version has, found in a file's header.
struct Telltale {
    file: String,
    column: &'static str,
    version: CdmVersion,
}

impl Telltale {
    fn describe(&self) -> String {
        format!("{} has {} (CDM {})", self.file, self.column, self.version)
    }
}

/// The extract's CDM version: `forced` (`--cdm-version`), else `cdm_source.cdm_version`,
/// else what the columns betray, else 5.4. Columns of the other version than the one
/// chosen fail the ingest (they would otherwise be dropped), as does a file with columns
/// of both.
fn detect_version(files: &[SourceFile], forced: Option<CdmVersion>) -> Result<CdmVersion> {
    let mut telltales: Vec<Telltale> = Vec::new();
    for file in files {
        let candidates = upgrade::telltales(&file.table);
        if candidates.is_empty() {
            continue;
        }
        let names: Vec<String> = candidates.iter().map(|(n, _)| (*n).to_owned()).collect();
        let (reader, _) = SourceReader::open(file, &names)?;
        let found: Vec<Telltale> = candidates
            .iter()
            .zip(reader.present())
            .filter(|(_, present)| *present)
            .map(|(&(column, version), _)| Telltale {
                file: file.name.clone(),
                column,
                version,
            })
            .collect();
        let of = |v: CdmVersion| found.iter().find(|t| t.version == v);
        if let (Some(old), Some(new)) = (of(CdmVersion::V5_3), of(CdmVersion::V5_4)) {
            return Err(Error::CdmVersion {
                detail: format!(
                    "{} has {} (CDM 5.3) and {} (CDM 5.4): its columns fit neither version",
                    file.name, old.column, new.column
                ),
            });
        }
        telltales.extend(found);
    }
    let (chosen, basis) = match forced {
        Some(v) => (Some(v), "--cdm-version"),
        None => (declared_version(files)?, "cdm_source.cdm_version"),
    };
    let Some(chosen) = chosen else {
        let of = |v: CdmVersion| telltales.iter().find(|t| t.version == v);
        return match (of(CdmVersion::V5_3), of(CdmVersion::V5_4)) {
            (Some(old), Some(new)) => Err(Error::CdmVersion {
                detail: format!(
                    "the extract mixes CDM versions: {}, {}",
                    old.describe(),
                    new.describe()
                ),
            }),
            (Some(_), None) => Ok(CdmVersion::V5_3),
            _ => Ok(upgrade::STORED),
        };
    };
    if let Some(other) = telltales.iter().find(|t| t.version != chosen) {
        return Err(Error::CdmVersion {
            detail: format!(
                "{}, but the extract is read as CDM {chosen} ({basis})",
                other.describe()
            ),
        });
    }
    Ok(chosen)
}

/// The version `cdm_source.cdm_version` names (its first non-empty value), if the extract
/// has one.
fn declared_version(files: &[SourceFile]) -> Result<Option<CdmVersion>> {
    let Some(file) = files.iter().find(|f| f.table == "cdm_source") else {
        return Ok(None);
    };
    let (mut reader, _) = SourceReader::open(file, &["cdm_version".to_owned()])?;
    while let Some(batch) = reader.next_batch()? {
        let Some(Some(column)) = batch.columns.first() else {
            return Ok(None);
        };
        let Some(texts) = column.as_string_opt::<i32>() else {
            return Ok(None);
        };
        for (row, text) in texts.iter().enumerate() {
            let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                continue;
            };
            return match CdmVersion::parse(text) {
                Some(v) => Ok(Some(v)),
                None => Err(Error::CdmVersion {
                    detail: format!(
                        "{}: line {}: cdm_version names no CDM version Agora reads (5.3, 5.4)",
                        file.name, batch.lines[row]
                    ),
                }),
            };
        }
    }
    Ok(None)
}

fn progress_bar(file: &SourceFile, total: u64) -> ProgressBar {
    let template = match file.form {
        Form::Parquet => source::ROWS_PROGRESS,
        Form::Csv { .. } => source::BYTES_PROGRESS,
    };
    source::progress_bar(file.name.clone(), total, template)
}
