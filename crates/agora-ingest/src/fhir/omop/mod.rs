//! FHIR → OMOP CDM 5.4, done during FHIR ingest: every stored (pseudonymized) resource is
//! also mapped to OMOP rows, written as the release's `person`, `observation_period`,
//! `visit_occurrence`, `condition_occurrence`, `drug_exposure`, `procedure_occurrence`,
//! `measurement`, `observation` and `death` tables, typed exactly as an OMOP ingest types
//! them, plus the `concept` and `concept_ancestor` rows those tables use. The OMOP query
//! suite runs unchanged on a FHIR release.
//!
//! ```text
//! pass 1: Encounter ids ─► visit ids (visits)
//! pass 2: stored resource ─► map (rows) ─► table (typed, required columns checked) ─► Parquet
//!                                     └─► unusable rows ─► quarantine (table, file, line, column)
//! end: observation_period (first..last event per person), concept subset (vocab), report
//! ```
//!
//! `person_id` is the hub person key, as in the raw and view tables and in an OMOP ingest of
//! the same people (same identity → same key). Codes map to standard concepts through a
//! vocabulary dataset of the hub ([`vocab`]); an unmapped code gives concept 0 with its
//! source value kept, and the report counts mapped and unmapped rows per table.
//!
//! Memory: the vocabulary index, 24 bytes per Encounter (visit ids), 8 per person
//! (observation-period bounds), the distinct concepts used, and one batch per table. Rows
//! stream to Parquet like every other table.

mod map;
mod table;
mod visits;
pub(crate) mod vocab;

use std::collections::{BTreeMap, HashMap, HashSet};

use agora_lake::{ReleaseWriter, TableEntry, WriterOptions};
use arrow::array::RecordBatch;
use serde_json::Value;

use crate::quarantine::Quarantine;
use crate::{Error, Reason, Result, TableReport};
use agora_cdm::{CdmSpec, CdmVersion};
use map::{Mapper, Mapping, Target};
use table::{Cell, OmopTable, cdm_schema};
pub(crate) use visits::Visits;
pub(crate) use vocab::Vocabulary;

/// Every table an OMOP mapping writes: a ViewDefinition may not take these names.
pub const TABLES: &[&str] = &[
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "concept",
    "concept_ancestor",
];

/// Rows per table, for the report and `omop_mapping.json`.
#[derive(Debug, Default, serde::Serialize)]
struct Tally {
    table: &'static str,
    rows_stored: u64,
    rows_quarantined: u64,
    /// Stored rows whose main concept is a standard concept.
    mapped: u64,
    /// Stored rows whose main concept is 0, by source vocabulary (`no code`, `other code
    /// system` or an OMOP vocabulary id).
    unmapped: BTreeMap<&'static str, u64>,
}

impl Tally {
    fn coded(&self) -> u64 {
        self.mapped + self.unmapped.values().sum::<u64>()
    }
}

/// Writes the OMOP tables of one FHIR release.
pub(crate) struct OmopWriter {
    spec: &'static CdmSpec,
    writer: ReleaseWriter,
    options: WriterOptions,
    tables: BTreeMap<Target, OmopTable>,
    tallies: BTreeMap<Target, Tally>,
    vocabulary: Vocabulary,
    visits: Visits,
    /// Per person: first and last event date (days since the epoch).
    periods: HashMap<i64, (i32, i32)>,
    /// Every concept id the tables hold, for the release's `concept` subset.
    used: HashSet<i64>,
    /// Resources not mapped because they did not happen, by resource type.
    not_applicable: BTreeMap<String, u64>,
}

/// What the OMOP tables add to a release.
pub(crate) struct OmopOutput {
    pub(crate) entries: Vec<TableEntry>,
    pub(crate) reports: Vec<TableReport>,
    pub(crate) warnings: Vec<String>,
    /// `omop_mapping.json`: vocabulary used and per-table coverage.
    pub(crate) summary: Vec<u8>,
}

impl OmopWriter {
    pub(crate) fn new(writer: &ReleaseWriter, vocabulary: Vocabulary, visits: Visits) -> Self {
        let spec = agora_cdm::spec(CdmVersion::V5_4);
        let options = WriterOptions::default();
        let tables = Target::ALL
            .iter()
            .map(|&t| {
                let table = OmopTable::new(spec, writer, &options, t.table(), t.numbered());
                (t, table)
            })
            .collect();
        let tallies = Target::ALL
            .iter()
            .map(|&t| {
                let tally = Tally {
                    table: t.table(),
                    ..Tally::default()
                };
                (t, tally)
            })
            .collect();
        Self {
            spec,
            writer: writer.clone(),
            options,
            tables,
            tallies,
            vocabulary,
            visits,
            periods: HashMap::new(),
            used: HashSet::new(),
            not_applicable: BTreeMap::new(),
        }
    }

    /// Maps one stored resource (`file`, `index`: where it came from, for the quarantine).
    pub(crate) fn map(
        &mut self,
        resource: &Value,
        person: Option<i64>,
        file: &str,
        index: u64,
        quarantine: &mut Quarantine,
    ) -> Result<()> {
        let mapper = Mapper {
            vocabulary: &self.vocabulary,
            visits: &self.visits,
        };
        let rows = match mapper.map(resource, person) {
            Mapping::Rows(rows) => rows,
            Mapping::NotApplicable => {
                let ty = resource["resourceType"].as_str().unwrap_or_default();
                *self.not_applicable.entry(ty.to_owned()).or_default() += 1;
                return Ok(());
            }
        };
        for row in rows {
            let target = row.target;
            let name = target.table();
            let reject = |quarantine: &mut Quarantine, column: &str, reason: Reason| {
                quarantine.record_one(name, file, index, Some(column), &reason);
            };
            if let Some(column) = row.unusable {
                let reason = Reason::InvalidValue {
                    expected: "date with at least a day".into(),
                };
                reject(quarantine, column, reason);
                self.tally(target).rows_quarantined += 1;
                continue;
            }
            let int = |column: &str| {
                row.cells.iter().find_map(|(c, v)| match v {
                    Cell::Int(i) if *c == column => Some(*i),
                    _ => None,
                })
            };
            let visit = int("visit_occurrence_id");
            if target == Target::VisitOccurrence
                && let Some(key) = visit
                && self.visits.is_stored(key)
            {
                reject(quarantine, "visit_occurrence_id", Reason::DuplicateResource);
                self.tally(target).rows_quarantined += 1;
                continue;
            }
            let person = int("person_id");
            let dates: Vec<i32> = row
                .cells
                .iter()
                .filter_map(|(_, v)| match v {
                    Cell::Date(d) => Some(*d),
                    _ => None,
                })
                .collect();
            let concepts: Vec<i64> = row
                .cells
                .iter()
                .filter_map(|(c, v)| match v {
                    Cell::Int(i) if c.ends_with("_concept_id") && *i != 0 => Some(*i),
                    _ => None,
                })
                .collect();
            let coverage = row.coverage;
            let table = self
                .tables
                .get_mut(&target)
                .expect("every target has a table");
            if let Some(column) = table.push(row.cells)? {
                reject(quarantine, &column, Reason::MissingRequired);
                self.tally(target).rows_quarantined += 1;
                continue;
            }
            let tally = self.tally(target);
            tally.rows_stored += 1;
            if let Some(c) = coverage {
                if c.mapped {
                    tally.mapped += 1;
                } else {
                    *tally.unmapped.entry(c.source).or_default() += 1;
                }
            }
            self.used.extend(concepts);
            if let Some(key) = visit {
                if target == Target::VisitOccurrence {
                    self.visits.mark_stored(key);
                } else {
                    self.visits.referenced(key);
                }
            }
            if target.is_event()
                && let (Some(person), Some(&lo), Some(&hi)) =
                    (person, dates.iter().min(), dates.iter().max())
            {
                let period = self.periods.entry(person).or_insert((lo, hi));
                period.0 = period.0.min(lo);
                period.1 = period.1.max(hi);
            }
        }
        Ok(())
    }

    fn tally(&mut self, target: Target) -> &mut Tally {
        self.tallies
            .get_mut(&target)
            .expect("every target has a tally")
    }

    /// Writes observation periods and the vocabulary subset, closes every table, and says
    /// what the mapping did. Blocking: reads the vocabulary through `runtime`.
    pub(crate) fn finish(mut self, runtime: &tokio::runtime::Handle) -> Result<OmopOutput> {
        let periods = self.observation_periods()?;
        let subset = runtime.block_on(self.vocabulary.subset(&self.used))?;
        let mut entries = vec![periods];
        let mut reports = vec![TableReport {
            table: "observation_period".into(),
            file: "derived: first to last event date of each person".into(),
            rows_read: entries[0].rows,
            rows_stored: entries[0].rows,
            rows_quarantined: 0,
        }];
        for (target, table) in std::mem::take(&mut self.tables) {
            let entry = table.finish()?;
            let tally = &self.tallies[&target];
            reports.push(TableReport {
                table: entry.name.clone(),
                file: describe(target, tally),
                rows_read: tally.rows_stored + tally.rows_quarantined,
                rows_stored: entry.rows,
                rows_quarantined: tally.rows_quarantined,
            });
            entries.push(entry);
        }
        let (concepts, ancestors) = match subset {
            Some(s) => (s.concepts, s.ancestors),
            None => (Vec::new(), Vec::new()),
        };
        let source = self.vocabulary.source().map(|s| {
            format!(
                "vocabulary {} release {}: the concepts this release uses",
                s.dataset, s.release
            )
        });
        for (name, batches) in [("concept", concepts), ("concept_ancestor", ancestors)] {
            let entry = self.copy_table(name, &batches)?;
            reports.push(TableReport {
                table: name.into(),
                file: source
                    .clone()
                    .unwrap_or_else(|| "no vocabulary: empty".into()),
                rows_read: entry.rows,
                rows_stored: entry.rows,
                rows_quarantined: 0,
            });
            entries.push(entry);
        }
        let warnings = self.warnings();
        let summary = serde_json::to_vec_pretty(&serde_json::json!({
            "vocabulary": self.vocabulary.source(),
            "tables": self.tallies.values().collect::<Vec<_>>(),
            "not_mapped_by_status": self.not_applicable,
            "rows_linked_to_a_missing_visit": self.visits.dangling(),
        }))
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(OmopOutput {
            entries,
            reports,
            warnings,
            summary,
        })
    }

    fn observation_periods(&mut self) -> Result<TableEntry> {
        let mut table = OmopTable::new(
            self.spec,
            &self.writer,
            &self.options,
            "observation_period",
            true,
        );
        let mut persons: Vec<_> = self.periods.iter().collect();
        persons.sort();
        for (&person, &(start, end)) in persons {
            let missing = table.push(vec![
                ("person_id", Cell::Int(person)),
                ("observation_period_start_date", Cell::Date(start)),
                ("observation_period_end_date", Cell::Date(end)),
                ("period_type_concept_id", Cell::Int(map::EHR)),
            ])?;
            debug_assert!(missing.is_none(), "every required column is set");
        }
        self.used.insert(map::EHR);
        table.finish()
    }

    /// Writes vocabulary rows (CDM columns in CDM order) as table `name`.
    fn copy_table(&self, name: &str, batches: &[RecordBatch]) -> Result<TableEntry> {
        let schema = cdm_schema(self.spec.table(name).expect("CDM table"));
        let mut table = self.writer.table(name, &schema, &self.options);
        for batch in batches {
            let batch = RecordBatch::try_new(table.schema().clone(), batch.columns().to_vec())
                .map_err(|e| Error::Internal(e.to_string()))?;
            table.write(&batch)?;
        }
        Ok(table.finish()?)
    }

    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.vocabulary.source().is_none() {
            out.push(
                "omop: no vocabulary dataset given: concept ids are 0 except gender, race, ethnicity, visit and type concepts; source codes are kept in *_source_value".into(),
            );
        }
        for (target, tally) in &self.tallies {
            let unmapped: u64 = tally.unmapped.values().sum();
            if unmapped == 0 {
                continue;
            }
            let column = target.concept_column().unwrap_or("concept_id");
            let by: Vec<String> = tally
                .unmapped
                .iter()
                .map(|(source, n)| format!("{source} {n}"))
                .collect();
            out.push(format!(
                "omop {}: {unmapped} of {} rows have no standard concept ({column} 0, source code kept): {}",
                tally.table,
                tally.coded(),
                by.join(", ")
            ));
        }
        for (ty, n) in &self.not_applicable {
            out.push(format!(
                "omop: {n} {ty} resource(s) not mapped: status entered-in-error, cancelled, not-done or refuted"
            ));
        }
        let dangling = self.visits.dangling();
        if dangling > 0 {
            out.push(format!(
                "omop: {dangling} row(s) refer to an Encounter that has no visit_occurrence row (quarantined or not mapped): their visit_occurrence_id names no visit"
            ));
        }
        out
    }
}

/// The report's description of an OMOP table: its FHIR source and its concept coverage.
fn describe(target: Target, tally: &Tally) -> String {
    let source = match target {
        Target::Person => "FHIR Patient",
        Target::Death => "FHIR Patient.deceased[x]",
        Target::VisitOccurrence => "FHIR Encounter",
        Target::ConditionOccurrence => "FHIR Condition",
        Target::DrugExposure => "FHIR MedicationRequest, Immunization",
        Target::ProcedureOccurrence => "FHIR Procedure",
        Target::Measurement | Target::Observation => "FHIR Observation (and components)",
    };
    let coded = tally.coded();
    if target.concept_column().is_none() || coded == 0 {
        return source.into();
    }
    format!(
        "{source}: {} of {coded} rows with a standard concept ({:.1}%)",
        tally.mapped,
        100.0 * tally.mapped as f64 / coded as f64
    )
}
