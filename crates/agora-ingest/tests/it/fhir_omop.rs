//! FHIR → OMOP (issue #4, item 3): both FHIR fixtures mapped with the vocabulary of the
//! Synthea27Nj OMOP fixture ingested as a dataset of the same hub. Row counts per table follow
//! from the resources, concepts map, visits link, events lie inside observation periods,
//! tables are typed as an OMOP ingest types them, and persons link with OMOP extracts.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use agora_ingest::fhir::{FhirIdentity, FhirIngest, ingest_fhir};
use agora_ingest::{Error, IngestOptions, IngestReport};
use agora_lake::ReleaseManifest;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Int64Type};
use serde_json::Value;

use crate::support::{TestHub, extract, files_under, shared};

const BULK: &str = "data/fhir/bulk_ndjson_10patients";
const BUNDLES: &str = "data/fhir/bundles_5patients";
const VOCABULARY: &str = "data/omop/synthea27nj_csv";

/// Share of coded rows (conditions, drugs, procedures, measurements, observations) that map to
/// a standard concept with the Synthea27Nj vocabulary subset: 89.6 % (bulk) and 86.6 %
/// (Bundles) today; what is missing is absent from that subset (CVX vaccines, some
/// procedures), not a mapping fault.
const MIN_COVERAGE: f64 = 0.85;

impl TestHub {
    async fn read_manifest(&self, dataset: &str) -> Arc<ReleaseManifest> {
        let info = self
            .hub
            .meta
            .release(&dataset.parse().unwrap(), None)
            .await
            .unwrap()
            .unwrap();
        self.hub
            .lake
            .read_manifest(&info.manifest_path)
            .await
            .unwrap()
    }
}

async fn ingest(
    t: &TestHub,
    dataset: &str,
    source: &Path,
    identity: FhirIdentity,
    omop: bool,
    vocabulary: Option<&str>,
) -> agora_ingest::Result<IngestReport> {
    ingest_fhir(
        &t.hub,
        FhirIngest {
            options: IngestOptions {
                dataset: dataset.parse().unwrap(),
                source: source.to_path_buf(),
                actor: "test".into(),
                progress: false,
                dry_run: false,
                allow_duplicate: false,
            },
            identity,
            views_dir: None,
            omop,
            vocabulary: vocabulary.map(|v| v.parse().unwrap()),
        },
    )
    .await
}

/// The resources of one fixture.
fn resources(form: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for f in files_under(&shared(form)) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".ndjson") && name != "log.ndjson" {
            let text = std::fs::read_to_string(&f).unwrap();
            out.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()),
            );
        } else if name.ends_with(".json") {
            let b: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            out.extend(
                b["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["resource"].clone()),
            );
        }
    }
    out
}

/// OMOP rows each table should get from `resources`, computed from the FHIR data alone.
fn expected_rows(resources: &[Value]) -> HashMap<&'static str, usize> {
    let not_happened = |r: &Value| {
        let bad = ["entered-in-error", "cancelled", "not-done", "refuted"];
        r["status"].as_str().is_some_and(|s| bad.contains(&s))
            || r["verificationStatus"]["coding"][0]["code"]
                .as_str()
                .is_some_and(|s| bad.contains(&s))
    };
    let count = |ty: &str| {
        resources
            .iter()
            .filter(|r| r["resourceType"] == ty && !not_happened(r))
            .count()
    };
    // An Observation gives a row for its own value (or for itself, without components) and
    // one per component.
    let observation_rows: usize = resources
        .iter()
        .filter(|r| r["resourceType"] == "Observation" && !not_happened(r))
        .map(|r| {
            let components = r["component"].as_array().map_or(0, Vec::len);
            let own = r
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with("value"));
            components + usize::from(own || components == 0)
        })
        .sum();
    HashMap::from([
        ("person", count("Patient")),
        (
            "death",
            resources
                .iter()
                .filter(|r| r["resourceType"] == "Patient" && r.get("deceasedDateTime").is_some())
                .count(),
        ),
        ("visit_occurrence", count("Encounter")),
        ("condition_occurrence", count("Condition")),
        (
            "drug_exposure",
            count("MedicationRequest") + count("Immunization"),
        ),
        ("procedure_occurrence", count("Procedure")),
        ("measurement+observation", observation_rows),
    ])
}

fn rows(tables: &HashMap<String, Vec<RecordBatch>>, table: &str) -> usize {
    tables[table].iter().map(RecordBatch::num_rows).sum()
}

fn ints(tables: &HashMap<String, Vec<RecordBatch>>, table: &str, column: &str) -> Vec<Option<i64>> {
    tables[table]
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap_or_else(|| panic!("{table}.{column}"))
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn dates(
    tables: &HashMap<String, Vec<RecordBatch>>,
    table: &str,
    column: &str,
) -> Vec<Option<i32>> {
    tables[table]
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_primitive::<Date32Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The event tables with their main concept and start-date columns.
const EVENTS: &[(&str, &str, &str)] = &[
    ("visit_occurrence", "visit_concept_id", "visit_start_date"),
    (
        "condition_occurrence",
        "condition_concept_id",
        "condition_start_date",
    ),
    (
        "drug_exposure",
        "drug_concept_id",
        "drug_exposure_start_date",
    ),
    (
        "procedure_occurrence",
        "procedure_concept_id",
        "procedure_date",
    ),
    ("measurement", "measurement_concept_id", "measurement_date"),
    ("observation", "observation_concept_id", "observation_date"),
];

#[tokio::test(flavor = "multi_thread")]
async fn fhir_fixtures_map_to_omop_tables_with_a_hub_vocabulary() {
    let t = TestHub::new().await;
    t.ingest("synthea", &shared(VOCABULARY)).await.unwrap();
    let omop_release = t.read_manifest("synthea").await;
    let vocabulary: HashSet<i64> = ints(&t.read_release("synthea").await, "concept", "concept_id")
        .into_iter()
        .flatten()
        .collect();
    for (dataset, form) in [("bulk", BULK), ("bundles", BUNDLES)] {
        let report = ingest(
            &t,
            dataset,
            &shared(form),
            FhirIdentity::PatientId,
            true,
            Some("synthea"),
        )
        .await
        .unwrap();
        assert_eq!(report.rows_quarantined, 0, "{dataset}: {report:?}");
        let tables = t.read_release(dataset).await;

        // Row counts follow from the resources.
        let expected = expected_rows(&resources(form));
        for (table, n) in &expected {
            let got = match *table {
                "measurement+observation" => {
                    rows(&tables, "measurement") + rows(&tables, "observation")
                }
                t => rows(&tables, t),
            };
            assert_eq!(got, *n, "{dataset} {table}");
        }

        // Typed exactly as the OMOP ingest types the same tables.
        let fhir_release = t.read_manifest(dataset).await;
        for table in [
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
        ] {
            assert_eq!(
                fhir_release.table(table).unwrap().schema,
                omop_release.table(table).unwrap().schema,
                "{dataset} {table}"
            );
        }

        // person_id is the hub person key of the raw and view tables.
        let persons: HashSet<i64> = ints(&tables, "person", "person_id")
            .into_iter()
            .flatten()
            .collect();
        let raw: HashSet<i64> = ints(&tables, "fhir_patient", "person_id")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(persons, raw, "{dataset}");

        // Concept coverage, and every concept used that the vocabulary has is in the
        // release's concept table (a `Maps to` target may be missing from a vocabulary
        // subset such as Synthea27Nj's).
        let concepts: HashSet<i64> = ints(&tables, "concept", "concept_id")
            .into_iter()
            .flatten()
            .collect();
        let (mut mapped, mut coded) = (0, 0);
        for (table, concept, _) in &EVENTS[1..] {
            for c in ints(&tables, table, concept) {
                let c = c.unwrap();
                coded += 1;
                if c != 0 {
                    mapped += 1;
                    assert_eq!(
                        concepts.contains(&c),
                        vocabulary.contains(&c),
                        "{dataset} {table}: {c}"
                    );
                }
            }
        }
        let coverage = mapped as f64 / coded as f64;
        assert!(
            coverage >= MIN_COVERAGE,
            "{dataset}: coverage {coverage:.3}"
        );
        let condition = report
            .tables
            .iter()
            .find(|r| r.table == "condition_occurrence")
            .unwrap();
        assert!(
            condition.file.contains("rows with a standard concept"),
            "{condition:?}"
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.starts_with("omop drug_exposure:") && w.contains("CVX")),
            "unmapped rows are counted by vocabulary: {:?}",
            report.warnings
        );
        // Blood pressure (LOINC 8480-6 → 3004249) is a measurement when the fixture has it.
        if dataset == "bundles" {
            let m = ints(&tables, "measurement", "measurement_concept_id");
            assert!(
                m.contains(&Some(3004249)),
                "{dataset}: systolic blood pressure"
            );
        }

        // Visits: every Synthea event names its Encounter, and links to its visit row.
        let visits: HashSet<i64> = ints(&tables, "visit_occurrence", "visit_occurrence_id")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            visits.len(),
            rows(&tables, "visit_occurrence"),
            "visit ids are unique"
        );
        for (table, _, _) in &EVENTS[1..] {
            for v in ints(&tables, table, "visit_occurrence_id") {
                let v = v.unwrap_or_else(|| panic!("{dataset} {table}: event without visit"));
                assert!(visits.contains(&v), "{dataset} {table}: unknown visit");
            }
        }

        // Every event lies inside its person's observation period (one per person).
        let op_person = ints(&tables, "observation_period", "person_id");
        let op_start = dates(
            &tables,
            "observation_period",
            "observation_period_start_date",
        );
        let op_end = dates(&tables, "observation_period", "observation_period_end_date");
        let periods: HashMap<i64, (i32, i32)> = op_person
            .iter()
            .zip(op_start.iter().zip(&op_end))
            .map(|(p, (s, e))| (p.unwrap(), (s.unwrap(), e.unwrap())))
            .collect();
        assert_eq!(periods.len(), op_person.len(), "one period per person");
        for (table, _, start) in EVENTS {
            let persons = ints(&tables, table, "person_id");
            for (p, d) in persons.iter().zip(dates(&tables, table, start)) {
                let (lo, hi) = periods[&p.unwrap()];
                let d = d.unwrap();
                assert!(
                    lo <= d && d <= hi,
                    "{dataset} {table}: event outside observation"
                );
            }
        }

        // The mapping's summary is stored with the release.
        let summary = files_under(&t.lake_dir())
            .into_iter()
            .find(|f| {
                f.ends_with("_omop_mapping.json")
                    && f.to_string_lossy().contains(&fhir_release.release_id)
            })
            .expect("omop_mapping.json");
        let summary: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
        assert_eq!(summary["vocabulary"]["dataset"], "synthea");
        assert_eq!(summary["rows_linked_to_a_missing_visit"], 0);
    }
}

/// The same person in an OMOP extract and in FHIR, with the same source identity (here the
/// Patient.id as person_source_value, as Synthea's own OMOP export does), has one person_id.
#[tokio::test(flavor = "multi_thread")]
async fn same_identity_gives_the_same_person_id_in_omop_and_fhir_sourced_tables() {
    let patient = resources(BULK)
        .into_iter()
        .find(|r| r["resourceType"] == "Patient")
        .unwrap();
    let id = patient["id"].as_str().unwrap();
    let person = format!(
        "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n\
         1,8532,1970,0,0,{id}\n2,8507,1980,0,0,someone-else\n"
    );
    let omop = extract(&[("person.csv", &person)]);
    let t = TestHub::new().await;
    t.ingest("omop", omop.path()).await.unwrap();
    let report = ingest(
        &t,
        "fhir",
        &shared(BULK),
        FhirIdentity::PatientId,
        true,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        report.new_persons, 12,
        "one of the 13 patients is already known"
    );
    let omop_key = ints(&t.read_release("omop").await, "person", "person_id")[0].unwrap();
    let fhir_persons = ints(&t.read_release("fhir").await, "person", "person_id");
    assert!(fhir_persons.contains(&Some(omop_key)));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("omop: no vocabulary dataset given")),
        "{:?}",
        report.warnings
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_unusable_vocabulary_fails_the_ingest_and_omop_can_be_turned_off() {
    let t = TestHub::new().await;
    let err = ingest(
        &t,
        "f",
        &shared(BUNDLES),
        FhirIdentity::PatientId,
        true,
        Some("nothing"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NoVocabulary { .. }), "{err}");
    assert_eq!(err.to_string(), "vocabulary dataset nothing has no release");

    let person = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n1,8532,1970,0,0,x\n";
    let no_concepts = extract(&[("person.csv", person)]);
    t.ingest("persons", no_concepts.path()).await.unwrap();
    let err = ingest(
        &t,
        "f",
        &shared(BUNDLES),
        FhirIdentity::PatientId,
        true,
        Some("persons"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vocabulary dataset persons: its latest release has no concept table"
    );
    assert!(
        t.hub
            .meta
            .releases(&"f".parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    ingest(
        &t,
        "f",
        &shared(BUNDLES),
        FhirIdentity::PatientId,
        false,
        None,
    )
    .await
    .unwrap();
    let tables = t.read_release("f").await;
    assert!(tables.contains_key("fhir_patient") && tables.contains_key("observation_fhir"));
    assert!(!tables.contains_key("person") && !tables.contains_key("observation"));
}

/// Every resource the mapping cannot express is quarantined with its OMOP table and column,
/// or counted in a warning: none disappears silently.
#[tokio::test(flavor = "multi_thread")]
async fn unmappable_resources_are_quarantined_or_counted() {
    let lines = [
        r#"{"resourceType":"Patient","id":"p1","gender":"male","birthDate":"1980","deceasedBoolean":true}"#,
        r#"{"resourceType":"Encounter","id":"e1","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2020-01-02T10:00:00+01:00"}}"#,
        r#"{"resourceType":"Encounter","id":"e1","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2020-01-03"}}"#,
        r#"{"resourceType":"Encounter","id":"e2","class":{"code":"XYZ"},"subject":{"reference":"Patient/p1"}}"#,
        r#"{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e2"},"onsetDateTime":"2020-01-05"}"#,
        r#"{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p1"},"onsetDateTime":"2020-01"}"#,
        r#"{"resourceType":"Condition","id":"c3","subject":{"reference":"Patient/p1"},"onsetDateTime":"2020-01-05","verificationStatus":{"coding":[{"code":"entered-in-error"}]}}"#,
        r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"status":"final","code":{"text":"free text only"},"valueQuantity":{"value":3}}"#,
    ];
    let src = extract(&[("all.ndjson", &lines.join("\n"))]);
    let t = TestHub::new().await;
    let report = ingest(&t, "m", src.path(), FhirIdentity::PatientId, true, None)
        .await
        .unwrap();
    let q = std::fs::read_to_string(t.lake_dir().join(report.quarantine.file.as_ref().unwrap()))
        .unwrap();
    let mut q: Vec<&str> = q.lines().skip(1).collect();
    q.sort();
    assert_eq!(
        q,
        [
            "condition_occurrence,all.ndjson,6,condition_start_date,not a valid date with at least a day",
            "death,all.ndjson,1,death_date,required field is empty",
            "measurement,all.ndjson,8,measurement_date,required field is empty",
            "visit_occurrence,all.ndjson,3,visit_occurrence_id,resource id already used by an earlier resource of its type",
            "visit_occurrence,all.ndjson,4,visit_start_date,required field is empty",
        ]
    );
    let warned = |text: &str| report.warnings.iter().any(|w| w.contains(text));
    assert!(
        warned("1 Condition resource(s) not mapped: status"),
        "{:?}",
        report.warnings
    );
    assert!(warned(
        "1 row(s) refer to an Encounter that has no visit_occurrence row"
    ));
    let tables = t.read_release("m").await;
    assert_eq!(ints(&tables, "person", "person_id").len(), 1);
    assert_eq!(
        ints(&tables, "person", "month_of_birth"),
        [None],
        "a year is enough"
    );
    assert_eq!(rows(&tables, "visit_occurrence"), 1);
    assert_eq!(rows(&tables, "condition_occurrence"), 1);
    // The raw resources are all kept.
    assert_eq!(rows(&tables, "fhir_encounter"), 3);
    assert_eq!(rows(&tables, "fhir_condition"), 3);
}
