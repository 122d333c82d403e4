//! FHIR R4 ingest: a directory of Bulk Data NDJSON files and/or Bundle JSON files.
//!
//! ```text
//! discover files (skip export logs, warn) ─► pass 1, all files: Patients ─► identity
//!   ─► hub person key (KeyResolver, as for OMOP)
//!   (and Encounter ids ─► keyed ids = OMOP visit ids)
//!   ─► pass 2, all files: parse ─► quarantine structural errors
//!        ─► pseudonymize (pseudo) ─► fhir_<type> raw table
//!        ─► each ViewDefinition of that type ─► typed view table (+ person_id)
//!        ─► OMOP CDM 5.4 rows (omop) ─► person, visit_occurrence, condition_occurrence...
//!   ─► observation periods, vocabulary subset
//!   ─► quarantine report, views used, OMOP coverage ─► manifest ─► commit (metadata store)
//! ```
//!
//! Patients are read first from every file so that a resource may refer to a patient of any
//! file. Resources are then processed one file after the other (a FHIR extract's size is in
//! its resources, not its files, and every table writer is shared by all files).
//!
//! What is stored of each resource, and the identity rules, are in [`pseudo`] and
//! [`FhirIdentity`]; the FHIR → OMOP mapping is in [`omop`].

pub mod omop;
mod pseudo;
mod read;
mod resource_types;
mod tables;
pub mod views;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;

use agora_core::DatasetName;
use agora_lake::{PseudonymizationInfo, ReleaseWriter, SourceInfo, TableEntry, WriterOptions};
use agora_privacy::{PersonKeyer, ResourceKeyer};
use indicatif::{ProgressBar, ProgressDrawTarget};
use serde_json::Value;

use crate::commit::Staged;
use crate::keys::KeyResolver;
use crate::lifecycle::Lifecycle;
use crate::quarantine::Quarantine;
use crate::{Error, Hub, IngestOptions, IngestReport, Reason, Result, TableReport};
use pseudo::{Outcome, Patients, ResourceIds};
use read::{FhirFile, FileKind, Position};
use tables::{RawTable, ViewTable};
use views::NamedView;

/// Where a Patient's identity — the bytes its hub person key is derived from — comes from.
/// Both use the `src\0` namespace of OMOP's `person_source_value`, so a patient links with
/// an OMOP person whose source value is the same identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FhirIdentity {
    /// `Patient.id` (Synthea's OMOP `person_source_value` is the FHIR Patient.id).
    PatientId,
    /// The value of the `Patient.identifier` with this `system` (e.g. a national id).
    Identifier(String),
}

impl FhirIdentity {
    /// The element the identity is read from, as recorded in the release's
    /// pseudonymization info (`Patient.id`, `Patient.identifier[system=...]`).
    pub fn describe(&self) -> String {
        match self {
            FhirIdentity::PatientId => "Patient.id".into(),
            FhirIdentity::Identifier(system) => format!("Patient.identifier[system={system}]"),
        }
    }

    fn identity(&self, patient: &Value) -> Option<Vec<u8>> {
        let value = match self {
            FhirIdentity::PatientId => patient.get("id")?.as_str()?,
            FhirIdentity::Identifier(system) => patient
                .get("identifier")?
                .as_array()?
                .iter()
                .find(|i| i.get("system").and_then(Value::as_str) == Some(system))?
                .get("value")?
                .as_str()?,
        };
        // The canonical form the opt-out registry keys too (agora-privacy).
        agora_privacy::source_identity(agora_privacy::IdentityKind::Any, value).ok()
    }
}

impl FromStr for FhirIdentity {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once(':') {
            _ if s == "patient-id" => Ok(FhirIdentity::PatientId),
            Some(("identifier", system)) if !system.is_empty() => {
                Ok(FhirIdentity::Identifier(system.to_owned()))
            }
            _ => Err("expected `patient-id` or `identifier:<system-uri>`".into()),
        }
    }
}

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct FhirIngest {
    /// Dataset, actor, dry run...; the source is a directory of `*.ndjson` (Bulk Data)
    /// and/or `*.json` (Bundle) files.
    pub options: IngestOptions,
    /// Where each Patient's identity comes from: decides which persons link across datasets.
    pub identity: FhirIdentity,
    /// The operator's ViewDefinitions (applied after the default ones), if any.
    pub views_dir: Option<PathBuf>,
    /// Also write the OMOP CDM 5.4 tables ([`omop`]).
    pub omop: bool,
    /// The dataset whose latest release's `concept` (and `concept_relationship`,
    /// `concept_ancestor`) tables map codes to standard concepts. Without it, concept ids
    /// are 0 but for the fixed ones (gender, race, ethnicity, visit, type).
    pub vocabulary: Option<DatasetName>,
}

/// Elements never stored, for the manifest.
const DROPPED: &[&str] = &[
    "Patient.id (replaced by the hub person key)",
    "Patient.identifier",
    "Patient.name",
    "Patient.telecom",
    "Patient.photo",
    "Patient.contact",
    "Patient.link",
    "Patient.address.line",
    "Patient.address.text",
    "Patient.extension (except US Core race, ethnicity, birth sex, gender identity)",
    "*.text (narrative)",
    "*.note",
    "Attachment.data",
    "Reference.display and Reference.identifier of patient references",
    "*.id except Patient.id (replaced by a keyed pseudonym, as in every reference)",
    "Reference.reference that cannot be keyed (conditional, unresolved urn:)",
    "Reference.identifier",
];

/// Ingests a FHIR R4 extract as a new release of `req.options.dataset`: all of it or nothing.
pub async fn ingest_fhir(hub: &Hub, req: FhirIngest) -> Result<IngestReport> {
    let lifecycle = Lifecycle::start(hub, &req.options);
    let views = views::load_views(req.views_dir.as_deref())?;
    let source = req.options.source.clone();
    let hub_dir = hub.data_dir.clone();
    let (files, warnings) = tokio::task::spawn_blocking(move || {
        read::discover(&crate::extract::ExtractDir::open(&source, &hub_dir)?)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    if files.is_empty() {
        return Err(Error::NoFhirInput {
            path: req.options.source.display().to_string(),
        });
    }
    let vocabulary = match (&req.vocabulary, req.omop) {
        (Some(dataset), true) => Some(omop::Vocabulary::load(hub, dataset).await?),
        (None, true) => Some(omop::Vocabulary::default()),
        (_, false) => None,
    };
    let locked = lifecycle.lock().await?;
    let sources = files.iter().map(FhirFile::source_path).collect();
    let admitted = locked.admit(sources).await?;
    let req = &req;
    admitted
        .write(|writer| async move {
            write_release(hub, req, &writer, files, views, vocabulary, warnings).await
        })
        .await
}

async fn write_release(
    hub: &Hub,
    req: &FhirIngest,
    writer: &ReleaseWriter,
    files: Vec<FhirFile>,
    views: Vec<NamedView>,
    vocabulary: Option<omop::Vocabulary>,
    warnings: Vec<String>,
) -> Result<Staged> {
    let runtime = tokio::runtime::Handle::current();
    let resolver = KeyResolver::new(
        PersonKeyer::new(&hub.secret),
        hub.meta.clone(),
        runtime.clone(),
    );
    let job = Job {
        writer: writer.clone(),
        identity: req.identity.clone(),
        progress: req.options.progress,
        files,
        views: views.clone(),
        omop: vocabulary,
        ids: ResourceIds::new(ResourceKeyer::new(&hub.secret)),
        runtime,
    };
    let out = tokio::task::spawn_blocking(move || job.run(resolver))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;

    // The views used are kept with the release: the flattening can be re-done exactly.
    for view in &views {
        writer
            .put_file(
                &format!("views/{}.json", view.name),
                view.json.clone().into_bytes(),
            )
            .await?;
    }
    if let Some(summary) = out.omop_summary {
        writer.put_file("omop_mapping.json", summary).await?;
    }
    let mut all_warnings = warnings;
    all_warnings.extend(out.warnings);
    Ok(Staged {
        source: SourceInfo {
            model: "fhir-r4".into(),
            converted_from: None,
            form: out.forms.join("+"),
            files: out.source_files,
        },
        pseudonymization: PseudonymizationInfo {
            key_id: hub.secret.key_id(),
            identity: req.identity.describe(),
            dropped_columns: DROPPED.iter().map(|s| (*s).to_owned()).collect(),
        },
        tables: out.entries,
        reports: out.reports,
        rows_read: out.resources_read,
        quarantine: out.quarantine,
        new_persons: out.new_persons,
        warnings: all_warnings,
    })
}

/// The blocking part of an ingest, run on a worker thread.
struct Job {
    writer: ReleaseWriter,
    identity: FhirIdentity,
    progress: bool,
    files: Vec<FhirFile>,
    views: Vec<NamedView>,
    /// The vocabulary of the OMOP mapping, when it is on.
    omop: Option<omop::Vocabulary>,
    /// Keyed resource ids (and, after pass 1, the extract's Encounters).
    ids: ResourceIds,
    runtime: tokio::runtime::Handle,
}

struct JobOutput {
    entries: Vec<TableEntry>,
    reports: Vec<TableReport>,
    quarantine: Quarantine,
    new_persons: Vec<(i64, i64)>,
    warnings: Vec<String>,
    forms: Vec<&'static str>,
    source_files: Vec<(String, u64)>,
    resources_read: u64,
    omop_summary: Option<Vec<u8>>,
}

/// The start of a resource, for reading an id without building a JSON tree.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// Pass 1's verdict on each Patient, by position.
type PatientStatus = HashMap<Position, std::result::Result<i64, Reason>>;

impl Job {
    fn run(mut self, mut resolver: KeyResolver) -> Result<JobOutput> {
        let (patients, status, identifiers) = self.key_patients(&mut resolver)?;
        let mut warnings = self.relabel_files(&identifiers);
        let mut omop = self.omop.take().map(|vocabulary| {
            let visits = omop::Visits::new(self.ids.encounter_keys());
            omop::OmopWriter::new(&self.writer, vocabulary, visits)
        });
        let ids = &self.ids;
        let bar = self.progress_bar();
        let options = WriterOptions::default();
        let mut raw: BTreeMap<String, (RawTable, HashSet<usize>)> = BTreeMap::new();
        let mut view_tables: Vec<ViewTable> = self
            .views
            .iter()
            .map(|v| ViewTable::new(&self.writer, v.clone(), &options))
            .collect();
        let mut quarantine = Quarantine::default();
        let mut resources_read = 0u64;
        for (i, file) in self.files.iter().enumerate() {
            read::for_each_resource(
                i,
                file,
                |_| true,
                |pos, parsed, urls| {
                    resources_read += 1;
                    let mut resource = match parsed {
                        Ok(r) => r,
                        Err(reason) => {
                            quarantine.record_one("fhir", &file.name, pos.index, None, &reason);
                            return Ok(());
                        }
                    };
                    let ty = resource["resourceType"].as_str().unwrap_or("").to_owned();
                    if !resource_types::is_r4_resource_type(&ty) {
                        let reason = Reason::UnknownResourceType;
                        quarantine.record_one("fhir", &file.name, pos.index, None, &reason);
                        return Ok(());
                    }
                    let name = format!("fhir_{}", resource_types::snake_case(&ty));
                    let (table, from) = raw.entry(ty.clone()).or_insert_with(|| {
                        (RawTable::new(&self.writer, &name, &options), HashSet::new())
                    });
                    from.insert(i);
                    table.rows_read += 1;
                    let outcome = if ty == "Patient" {
                        match status.get(&pos) {
                            Some(Ok(key)) => {
                                pseudo::scrub_patient(&mut resource, *key);
                                pseudo::scrub(&mut resource, &patients, urls, ids);
                                Ok(Some(*key))
                            }
                            Some(Err(reason)) => Err((None, reason.clone())),
                            None => Err((None, Reason::MissingIdentity)),
                        }
                    } else {
                        match pseudo::scrub(&mut resource, &patients, urls, ids) {
                            Outcome::Stored { person } => Ok(person),
                            Outcome::UnknownPatient { element } => {
                                Err((Some(element), Reason::UnknownPatient))
                            }
                        }
                    };
                    let person = match outcome {
                        Ok(person) => person,
                        Err((element, reason)) => {
                            table.rows_quarantined += 1;
                            let column = element.as_deref();
                            quarantine.record_one(&name, &file.name, pos.index, column, &reason);
                            return Ok(());
                        }
                    };
                    table.push(&resource, person)?;
                    if let Some(omop) = omop.as_mut() {
                        omop.map(&resource, person, &file.name, pos.index, &mut quarantine)?;
                    }
                    for vt in view_tables
                        .iter_mut()
                        .filter(|v| v.view.view.resource() == ty)
                    {
                        vt.rows_read += 1;
                        match agora_fhir::evaluate_resource(&vt.view.view, &resource) {
                            Ok(rows) => {
                                for row in rows {
                                    vt.push(person, row.into_values())?;
                                }
                            }
                            Err(_) => {
                                // The error names view elements only; the position is enough
                                // for the producer, and the raw resource is stored anyway.
                                vt.rows_quarantined += 1;
                                quarantine.record_one(
                                    &vt.view.name,
                                    &file.name,
                                    pos.index,
                                    None,
                                    &Reason::ViewFailed,
                                );
                            }
                        }
                    }
                    Ok(())
                },
            )?;
            bar.inc(file.bytes);
        }
        bar.finish_and_clear();

        let mut entries = Vec::new();
        let mut reports = Vec::new();
        for (_, (table, from)) in raw {
            let (read, quarantined) = (table.rows_read, table.rows_quarantined);
            let entry = table.finish()?;
            reports.push(TableReport {
                table: entry.name.clone(),
                file: self.describe_files(&from),
                rows_read: read,
                rows_stored: entry.rows,
                rows_quarantined: quarantined,
            });
            entries.push(entry);
        }
        for vt in view_tables {
            let (entry, stats) = vt.finish()?;
            warnings.extend(stats.warnings());
            reports.push(TableReport {
                table: entry.name.clone(),
                file: format!("view on {} resources", stats.rows_read),
                rows_read: stats.rows_read,
                rows_stored: entry.rows,
                rows_quarantined: stats.rows_quarantined,
            });
            entries.push(entry);
        }
        let mut omop_summary = None;
        if let Some(omop) = omop {
            let out = omop.finish(&self.runtime)?;
            entries.extend(out.entries);
            reports.extend(out.reports);
            warnings.extend(out.warnings);
            omop_summary = Some(out.summary);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        reports.sort_by(|a, b| a.table.cmp(&b.table));
        let mut forms: Vec<&'static str> = self
            .files
            .iter()
            .map(|f| match f.kind {
                FileKind::Ndjson => "ndjson",
                FileKind::Bundle => "bundle",
            })
            .collect();
        forms.sort();
        forms.dedup();
        Ok(JobOutput {
            entries,
            reports,
            quarantine,
            new_persons: resolver.new_persons,
            warnings,
            forms,
            source_files: self
                .files
                .iter()
                .map(|f| (f.name.clone(), f.bytes))
                .collect(),
            resources_read,
            omop_summary,
        })
    }

    /// Pass 1: every Patient of every file gets its hub person key, and every Encounter id
    /// is registered in `self.ids`. Returns the patients, each Patient position's verdict,
    /// and the identifying strings seen (ids and identifier values), used only to keep them
    /// out of file names shown in reports.
    fn key_patients(
        &mut self,
        resolver: &mut KeyResolver,
    ) -> Result<(Patients, PatientStatus, Vec<String>)> {
        struct Candidate {
            position: Position,
            id: Option<String>,
            full_url: Option<String>,
            identity: Option<Vec<u8>>,
        }
        let mut candidates = Vec::new();
        let mut identifiers = Vec::new();
        let ids = std::cell::RefCell::new(&mut self.ids);
        let mut collision = false;
        let collided = std::cell::Cell::new(false);
        for (i, file) in self.files.iter().enumerate() {
            read::for_each_resource(
                i,
                file,
                |line| {
                    if line.contains("\"Patient\"") {
                        return true;
                    }
                    // An NDJSON Encounter line: only its id is needed, read without a tree.
                    if line.contains("\"Encounter\"")
                        && let Ok(head) = serde_json::from_str::<Head>(line)
                        && head.resource_type.as_deref() == Some("Encounter")
                        && let Some(id) = head.id.as_deref()
                        && ids.borrow_mut().register_encounter(id).is_err()
                    {
                        collided.set(true);
                    }
                    false
                },
                |position, parsed, urls| {
                    let Ok(patient) = parsed else { return Ok(()) };
                    // Bundles are parsed whole: their Encounters arrive here.
                    if patient["resourceType"] == "Encounter"
                        && let Some(id) = patient["id"].as_str()
                        && ids.borrow_mut().register_encounter(id).is_err()
                    {
                        collided.set(true);
                    }
                    if patient["resourceType"] != "Patient" {
                        return Ok(());
                    }
                    let id = patient["id"].as_str().map(str::to_owned);
                    identifiers.extend(id.clone());
                    if let Some(list) = patient["identifier"].as_array() {
                        identifiers.extend(
                            list.iter()
                                .filter_map(|i| i["value"].as_str().map(str::to_owned)),
                        );
                    }
                    let full_url = id.as_ref().and_then(|id| {
                        urls.iter()
                            .find(|(_, (ty, eid))| ty == "Patient" && eid == id)
                            .map(|(url, _)| url.clone())
                    });
                    candidates.push(Candidate {
                        position,
                        id,
                        full_url,
                        identity: self.identity.identity(&patient),
                    });
                    Ok(())
                },
            )?;
            collision |= collided.get();
        }
        if collision {
            // Two source ids, one 63-bit pseudonym (about n²/2⁶⁴ for n Encounters): the
            // references could not tell them apart. Never silent; no id is named.
            return Err(Error::Internal(
                "two Encounter ids of the extract have the same keyed pseudonym; the ingest cannot keep them apart".into(),
            ));
        }
        let keyed: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.identity.is_some() && c.id.is_some())
            .collect();
        let identities: Vec<&[u8]> = keyed
            .iter()
            .map(|c| c.identity.as_deref().expect("filtered"))
            .collect();
        let keys = resolver.resolve(&identities)?;
        let mut key_of: HashMap<Position, i64> = keyed
            .iter()
            .zip(keys)
            .map(|(c, k)| (c.position, k))
            .collect();

        let mut patients = Patients::default();
        let mut status = PatientStatus::new();
        let mut stored = HashSet::new();
        for c in &candidates {
            let (Some(id), Some(key)) = (&c.id, key_of.remove(&c.position)) else {
                status.insert(c.position, Err(Reason::MissingIdentity));
                continue;
            };
            if patients.by_id.contains_key(id) {
                status.insert(c.position, Err(Reason::DuplicatePatient));
                continue;
            }
            patients.by_id.insert(id.clone(), key);
            if let Some(url) = &c.full_url {
                patients.by_url.insert(url.clone(), key);
            }
            if !stored.insert(key) {
                // Same person under two ids: their resources link, one Patient is kept.
                status.insert(c.position, Err(Reason::DuplicateIdentity));
                continue;
            }
            status.insert(c.position, Ok(key));
        }
        Ok((patients, status, identifiers))
    }

    /// Producers name files after patients (`patient_<id>.json`, `Jane_Doe_<id>.json`):
    /// a file name holding a patient identifier is shown as `file-<n>` (its rank in name
    /// order) in the report, quarantine and manifest.
    fn relabel_files(&mut self, identifiers: &[String]) -> Vec<String> {
        let mut relabelled = 0;
        for (i, file) in self.files.iter_mut().enumerate() {
            let leaks = identifiers
                .iter()
                .any(|id| id.len() >= 4 && file.name.contains(id.as_str()));
            if leaks {
                let ext = match file.kind {
                    FileKind::Ndjson => "ndjson",
                    FileKind::Bundle => "json",
                };
                file.name = format!("file-{:03}.{ext}", i + 1);
                relabelled += 1;
            }
        }
        if relabelled == 0 {
            return Vec::new();
        }
        vec![format!(
            "{relabelled} file name(s) contain a patient identifier: they are reported as file-NNN (NNN = rank of the file in name order)"
        )]
    }

    fn describe_files(&self, from: &HashSet<usize>) -> String {
        match from.len() {
            1 => self.files[*from.iter().next().expect("one")].name.clone(),
            n => format!("{n} files"),
        }
    }

    fn progress_bar(&self) -> ProgressBar {
        let total = self.files.iter().map(|f| f.bytes).sum();
        let target = if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = crate::source::progress_bar(
            "FHIR resources".into(),
            total,
            crate::source::BYTES_PROGRESS,
        );
        bar.set_draw_target(target);
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_share_the_omop_source_namespace() {
        let p = json!({"resourceType": "Patient", "id": "abc",
            "identifier": [{"system": "urn:nir", "value": " 123 "}]});
        assert_eq!(
            FhirIdentity::PatientId.identity(&p).unwrap(),
            b"src\0abc".to_vec()
        );
        let nir: FhirIdentity = "identifier:urn:nir".parse().unwrap();
        assert_eq!(nir.identity(&p).unwrap(), b"src\x00123".to_vec());
        let other: FhirIdentity = "identifier:urn:x".parse().unwrap();
        assert!(other.identity(&p).is_none());
        assert!("nope".parse::<FhirIdentity>().is_err());
    }
}
