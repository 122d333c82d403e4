//! The OMOP vocabulary that FHIR codes are mapped with: the `concept` (and, when present,
//! `concept_relationship` and `concept_ancestor`) tables of the latest release of a dataset
//! already in the hub — typically an OMOP release that ships its vocabulary, or an Athena
//! download ingested as an OMOP dataset of its own.
//!
//! Only what mapping needs is kept in memory: for the vocabularies FHIR systems name
//! ([`SYSTEMS`]), `(vocabulary, code) → concept_id`, whether each concept is standard, its
//! domain, and its `Maps to` target when it is not standard. Memory is proportional to those
//! vocabularies' size (not the extract's): about 100 bytes a concept. The tables are read
//! from the lake's Parquet files one file and one batch at a time.
//!
//! After mapping, [`Vocabulary::subset`] gives the `concept` rows the release uses (and the
//! `concept_ancestor` rows whose descendant it uses, with their ancestors' concepts), so the
//! FHIR release carries the vocabulary its OMOP tables need for the usual joins.

use std::collections::{HashMap, HashSet};

use agora_core::{DatasetName, TableSchema};
use agora_lake::{Lake, TableEntry};
use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::Int64Type;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::table::cdm_schema;
use crate::{Error, Hub, Result};
use agora_cdm::CdmVersion;

/// FHIR code system URIs and the OMOP `vocabulary_id` of their codes.
pub(crate) const SYSTEMS: &[(&str, &str)] = &[
    ("http://snomed.info/sct", "SNOMED"),
    ("http://loinc.org", "LOINC"),
    ("http://www.nlm.nih.gov/research/umls/rxnorm", "RxNorm"),
    ("http://hl7.org/fhir/sid/cvx", "CVX"),
    ("http://hl7.org/fhir/sid/ndc", "NDC"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM"),
    ("http://hl7.org/fhir/sid/icd-10", "ICD10"),
    ("http://hl7.org/fhir/sid/icd-9-cm", "ICD9CM"),
    ("http://www.ama-assn.org/go/cpt", "CPT4"),
    ("http://unitsofmeasure.org", "UCUM"),
    ("http://www.whocc.no/atc", "ATC"),
];

/// The OMOP vocabulary of a FHIR code system, if Agora knows it.
pub(crate) fn vocabulary_of(system: &str) -> Option<&'static str> {
    SYSTEMS.iter().find(|(s, _)| *s == system).map(|(_, v)| *v)
}

fn vocabulary_index(vocabulary: &str) -> Option<u8> {
    SYSTEMS
        .iter()
        .position(|(_, v)| *v == vocabulary)
        .map(|i| i as u8)
}

/// The domain of a standard concept, as far as routing FHIR Observations needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    Measurement,
    Observation,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Info {
    standard: bool,
    domain: Domain,
    /// The standard concept a non-standard one `Maps to` (0: none).
    maps_to: i64,
}

/// What a code maps to: `concept_id` is the standard concept (0 when none), and
/// `source_concept_id` the code's own concept (0 when the vocabulary does not have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapped {
    pub(crate) concept_id: i64,
    pub(crate) source_concept_id: i64,
    /// The standard concept's domain, when the vocabulary says.
    pub(crate) domain: Option<Domain>,
}

impl Mapped {
    pub(crate) const NONE: Mapped = Mapped {
        concept_id: 0,
        source_concept_id: 0,
        domain: None,
    };
}

/// Where a vocabulary came from, recorded with the release that used it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct VocabularySource {
    pub(crate) dataset: String,
    pub(crate) release: i64,
    pub(crate) release_id: String,
    pub(crate) concepts_indexed: u64,
    pub(crate) maps_to_indexed: u64,
    #[serde(skip)]
    concept: TableEntry,
    #[serde(skip)]
    ancestor: Option<TableEntry>,
    #[serde(skip)]
    lake: Lake,
}

#[derive(Debug)]
pub(crate) struct Vocabulary {
    /// Per vocabulary of [`SYSTEMS`] (same index): code -> concept_id.
    codes: Vec<HashMap<Box<str>, i64>>,
    concepts: HashMap<i64, Info>,
    source: Option<VocabularySource>,
}

const CONCEPT_COLUMNS: &[&str] = &[
    "concept_id",
    "domain_id",
    "vocabulary_id",
    "standard_concept",
    "concept_code",
];
const RELATIONSHIP_COLUMNS: &[&str] = &[
    "concept_id_1",
    "concept_id_2",
    "relationship_id",
    "invalid_reason",
];

impl Default for Vocabulary {
    /// No vocabulary: every code is unmapped.
    fn default() -> Self {
        Self {
            codes: vec![HashMap::new(); SYSTEMS.len()],
            concepts: HashMap::new(),
            source: None,
        }
    }
}

impl Vocabulary {
    /// Reads the vocabulary of the latest release of `dataset`.
    pub(crate) async fn load(hub: &Hub, dataset: &DatasetName) -> Result<Self> {
        let err = |reason: String| Error::Vocabulary {
            dataset: dataset.to_string(),
            reason,
        };
        let release =
            hub.meta
                .release(dataset, None)
                .await?
                .ok_or_else(|| Error::NoVocabulary {
                    dataset: dataset.to_string(),
                })?;
        let manifest = hub.lake.read_manifest(&release.manifest_path).await?;
        let concept = manifest
            .table("concept")
            .ok_or_else(|| err("its latest release has no concept table".into()))?
            .clone();
        let spec = agora_cdm::spec(CdmVersion::V5_4);
        for name in ["concept", "concept_relationship", "concept_ancestor"] {
            if let Some(entry) = manifest.table(name) {
                check_schema(entry, &cdm_schema(spec.table(name).expect("CDM table")))
                    .map_err(err)?;
            }
        }
        let mut vocab = Vocabulary::default();
        scan(&hub.lake, &concept, CONCEPT_COLUMNS, |b| {
            vocab.add_concepts(b);
            Ok(())
        })
        .await
        .map_err(err)?;
        let mut maps_to = 0u64;
        if let Some(rel) = manifest.table("concept_relationship") {
            scan(&hub.lake, rel, RELATIONSHIP_COLUMNS, |b| {
                maps_to += vocab.add_maps_to(b);
                Ok(())
            })
            .await
            .map_err(err)?;
        }
        vocab.source = Some(VocabularySource {
            dataset: dataset.to_string(),
            release: release.number,
            release_id: release.release_id.clone(),
            concepts_indexed: vocab.concepts.len() as u64,
            maps_to_indexed: maps_to,
            concept,
            ancestor: manifest.table("concept_ancestor").cloned(),
            lake: hub.lake.clone(),
        });
        Ok(vocab)
    }

    fn add_concepts(&mut self, batch: &RecordBatch) {
        let ids = int_column(batch, "concept_id");
        let domains = batch.column_by_name("domain_id").expect("projected");
        let domains = domains.as_string::<i32>();
        let vocabularies = batch.column_by_name("vocabulary_id").expect("projected");
        let vocabularies = vocabularies.as_string::<i32>();
        let standard = batch.column_by_name("standard_concept").expect("projected");
        let standard = standard.as_string::<i32>();
        let codes = batch.column_by_name("concept_code").expect("projected");
        let codes = codes.as_string::<i32>();
        for row in 0..batch.num_rows() {
            let Some(vocabulary) = vocabulary_index(vocabularies.value(row)) else {
                continue;
            };
            let id = ids.value(row);
            let is_standard = standard.is_valid(row) && standard.value(row) == "S";
            let code = codes.value(row);
            let by_code = &mut self.codes[vocabulary as usize];
            // A code present twice (rare: re-used codes) maps to its standard concept.
            if is_standard || !by_code.contains_key(code) {
                by_code.insert(code.into(), id);
            }
            let domain = match domains.value(row) {
                "Measurement" => Domain::Measurement,
                "Observation" => Domain::Observation,
                _ => Domain::Other,
            };
            self.concepts.insert(
                id,
                Info {
                    standard: is_standard,
                    domain,
                    maps_to: 0,
                },
            );
        }
    }

    /// Records the `Maps to` of indexed non-standard concepts; with several targets the
    /// lowest concept id is kept, so the result does not depend on file order.
    fn add_maps_to(&mut self, batch: &RecordBatch) -> u64 {
        let from = int_column(batch, "concept_id_1");
        let to = int_column(batch, "concept_id_2");
        let rel = batch.column_by_name("relationship_id").expect("projected");
        let rel = rel.as_string::<i32>();
        let invalid = batch.column_by_name("invalid_reason").expect("projected");
        let invalid = invalid.as_string::<i32>();
        let mut added = 0;
        for row in 0..batch.num_rows() {
            if rel.value(row) != "Maps to"
                || (invalid.is_valid(row) && !invalid.value(row).is_empty())
            {
                continue;
            }
            if let Some(info) = self.concepts.get_mut(&from.value(row))
                && !info.standard
            {
                let target = to.value(row);
                if info.maps_to == 0 || target < info.maps_to {
                    info.maps_to = target;
                }
                added += 1;
            }
        }
        added
    }

    /// Maps one code of a known vocabulary.
    pub(crate) fn lookup(&self, vocabulary: &str, code: &str) -> Mapped {
        let Some(v) = vocabulary_index(vocabulary) else {
            return Mapped::NONE;
        };
        let Some(&id) = self.codes[v as usize].get(code) else {
            return Mapped::NONE;
        };
        let info = self.concepts[&id];
        let target = if info.standard { id } else { info.maps_to };
        Mapped {
            concept_id: target,
            source_concept_id: id,
            domain: (target != 0)
                .then(|| self.concepts.get(&target).map(|i| i.domain))
                .flatten(),
        }
    }

    pub(crate) fn source(&self) -> Option<&VocabularySource> {
        self.source.as_ref()
    }

    /// The `concept` rows of `used` concepts and of the ancestors of `used` concepts, and the
    /// `concept_ancestor` rows whose descendant is used; `None` without a vocabulary.
    pub(crate) async fn subset(&self, used: &HashSet<i64>) -> Result<Option<Subset>> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        let err = |reason: String| Error::Vocabulary {
            dataset: source.dataset.clone(),
            reason,
        };
        let spec = agora_cdm::spec(CdmVersion::V5_4);
        let ancestor_schema = cdm_schema(spec.table("concept_ancestor").expect("CDM"));
        let mut wanted = used.clone();
        let mut ancestors = Vec::new();
        if let Some(entry) = &source.ancestor {
            let names = column_names(&ancestor_schema);
            scan(&source.lake, entry, &names, |b| {
                let keep = member_mask(int_column(b, "descendant_concept_id"), used);
                let kept =
                    arrow::compute::filter_record_batch(b, &keep).map_err(|e| e.to_string())?;
                wanted.extend(int_column(&kept, "ancestor_concept_id").values().iter());
                if kept.num_rows() > 0 {
                    ancestors.push(in_order(&kept, &names)?);
                }
                Ok(())
            })
            .await
            .map_err(err)?;
        }
        let concept_schema = cdm_schema(spec.table("concept").expect("CDM"));
        let names = column_names(&concept_schema);
        let mut concepts = Vec::new();
        scan(&source.lake, &source.concept, &names, |b| {
            let keep = member_mask(int_column(b, "concept_id"), &wanted);
            let kept = arrow::compute::filter_record_batch(b, &keep).map_err(|e| e.to_string())?;
            if kept.num_rows() > 0 {
                concepts.push(in_order(&kept, &names)?);
            }
            Ok(())
        })
        .await
        .map_err(err)?;
        Ok(Some(Subset {
            concepts,
            ancestors,
        }))
    }
}

/// Vocabulary rows for one release: batches with the CDM columns in CDM order.
pub(crate) struct Subset {
    pub(crate) concepts: Vec<RecordBatch>,
    pub(crate) ancestors: Vec<RecordBatch>,
}

fn column_names(schema: &TableSchema) -> Vec<&str> {
    schema.columns.iter().map(|c| c.name.as_str()).collect()
}

fn int_column<'a>(batch: &'a RecordBatch, name: &str) -> &'a arrow::array::Int64Array {
    batch
        .column_by_name(name)
        .expect("projected")
        .as_primitive::<Int64Type>()
}

fn member_mask(ids: &arrow::array::Int64Array, set: &HashSet<i64>) -> BooleanArray {
    ids.iter()
        .map(|id| Some(id.is_some_and(|id| set.contains(&id))))
        .collect()
}

/// `batch`'s columns in the order of `names` (Parquet projection keeps file order).
fn in_order(batch: &RecordBatch, names: &[&str]) -> std::result::Result<RecordBatch, String> {
    let schema = batch.schema();
    let indices: Vec<usize> = names
        .iter()
        .map(|n| schema.index_of(n).map_err(|e| e.to_string()))
        .collect::<std::result::Result<_, _>>()?;
    batch.project(&indices).map_err(|e| e.to_string())
}

/// The vocabulary table must have the CDM columns with the CDM types (as an OMOP ingest
/// stores them); extra columns are ignored.
fn check_schema(entry: &TableEntry, cdm: &TableSchema) -> std::result::Result<(), String> {
    for column in &cdm.columns {
        match entry.schema.columns.iter().find(|c| c.name == column.name) {
            Some(c) if c.ty == column.ty => {}
            Some(_) => {
                return Err(format!(
                    "table {}: column {} is not of the CDM type",
                    entry.name, column.name
                ));
            }
            None => {
                return Err(format!(
                    "table {}: CDM column {} is missing",
                    entry.name, column.name
                ));
            }
        }
    }
    Ok(())
}

/// Reads the `columns` of every file of `entry`, one batch at a time. A file is fetched
/// whole (lake files are at most `WriterOptions::target_file_bytes`, 128 MiB by default),
/// then decoded a batch at a time.
async fn scan(
    lake: &Lake,
    entry: &TableEntry,
    columns: &[&str],
    mut f: impl FnMut(&RecordBatch) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let failed = |e: parquet::errors::ParquetError| format!("table {}: {e}", entry.name);
    for file in &entry.files {
        let location = Path::from(file.path.as_str());
        let fetch_failed = |e: object_store::Error| format!("table {}: {e}", entry.name);
        let bytes = lake
            .store()
            .get(&location)
            .await
            .map_err(fetch_failed)?
            .bytes()
            .await
            .map_err(fetch_failed)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(failed)?;
        let schema = builder.schema().clone();
        let roots = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| format!("table {}: a CDM column is missing", entry.name))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(failed)?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("table {}: {e}", entry.name))?;
            f(&batch)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    fn concepts(rows: &[(i64, &str, &str, Option<&str>, &str)]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "concept_id",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "domain_id",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))) as _,
            ),
            (
                "vocabulary_id",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))) as _,
            ),
            (
                "standard_concept",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3))) as _,
            ),
            (
                "concept_code",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.4))) as _,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn standard_codes_map_to_themselves_and_others_through_maps_to() {
        let mut v = Vocabulary::default();
        v.add_concepts(&concepts(&[
            (1, "Condition", "SNOMED", Some("S"), "111"),
            (2, "Condition", "SNOMED", None, "222"),
            (3, "Measurement", "LOINC", Some("S"), "8480-6"),
            (4, "Condition", "Nope", Some("S"), "111"),
        ]));
        let rel = RecordBatch::try_from_iter([
            (
                "concept_id_1",
                Arc::new(Int64Array::from(vec![2, 2, 1])) as _,
            ),
            (
                "concept_id_2",
                Arc::new(Int64Array::from(vec![9, 1, 1])) as _,
            ),
            (
                "relationship_id",
                Arc::new(StringArray::from(vec!["Maps to", "Maps to", "Maps to"])) as _,
            ),
            (
                "invalid_reason",
                Arc::new(StringArray::from(vec![None::<&str>, None, None])) as _,
            ),
        ])
        .unwrap();
        assert_eq!(v.add_maps_to(&rel), 2, "only non-standard sources count");
        assert_eq!(
            v.lookup("SNOMED", "222"),
            Mapped {
                concept_id: 1,
                source_concept_id: 2,
                domain: Some(Domain::Other)
            },
            "the lowest target wins"
        );
        assert_eq!(v.lookup("SNOMED", "111").concept_id, 1);
        assert_eq!(
            v.lookup("LOINC", "8480-6").domain,
            Some(Domain::Measurement)
        );
        assert_eq!(v.lookup("SNOMED", "999").concept_id, 0);
        assert_eq!(v.lookup("ICD10", "111").concept_id, 0);
    }
}
