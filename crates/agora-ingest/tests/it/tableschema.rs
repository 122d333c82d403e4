//! Table Schema ingest: types, constraints, keys and foreign keys with exact quarantine
//! records; person identifiers declared in the schema or by name become hub person keys that
//! link with OMOP; the 191 SNDS tables of the shared fixture; structural errors.

use std::collections::HashMap;
use std::path::Path;

use agora_ingest::tableschema::{TableSchemaIngest, ingest_tableschema};
use agora_ingest::{Error, IngestOptions, IngestReport};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};

use crate::support::{TestHub, extract, files_under, read_parquet, shared};

impl TestHub {
    pub(crate) async fn ingest_ts(
        &self,
        dataset: &str,
        source: &Path,
        person_ids: &[&str],
    ) -> agora_ingest::Result<IngestReport> {
        self.ingest_ts_with(dataset, source, None, person_ids, false, false)
            .await
    }

    pub(crate) async fn ingest_ts_with(
        &self,
        dataset: &str,
        source: &Path,
        schemas: Option<&Path>,
        person_ids: &[&str],
        dry_run: bool,
        allow_duplicate: bool,
    ) -> agora_ingest::Result<IngestReport> {
        ingest_tableschema(
            &self.hub,
            TableSchemaIngest {
                options: IngestOptions {
                    dataset: dataset.parse().unwrap(),
                    source: source.to_path_buf(),
                    actor: "test".into(),
                    progress: false,
                    dry_run,
                    allow_duplicate,
                },
                schemas: schemas.map(Path::to_path_buf),
                person_ids: person_ids.iter().map(|s| (*s).to_owned()).collect(),
            },
        )
        .await
    }

    /// The quarantine report of the latest release of `dataset`, without its header.
    async fn quarantine_lines(&self, dataset: &str) -> Vec<String> {
        let info = self
            .hub
            .meta
            .release(&dataset.parse().unwrap(), None)
            .await
            .unwrap()
            .unwrap();
        let manifest = self
            .hub
            .lake
            .read_manifest(&info.manifest_path)
            .await
            .unwrap();
        let path = manifest.quarantine.file.clone().unwrap();
        let text = std::fs::read_to_string(self.lake_dir().join(path)).unwrap();
        text.lines().skip(1).map(str::to_owned).collect()
    }
}

const PATIENTS_SCHEMA: &str = r#"{
  "fields": [
    {"name": "NIR", "agora:identifier": "person"},
    {"name": "BIRTH_YEAR", "type": "year", "constraints": {"minimum": 1900}},
    {"name": "SEX", "constraints": {"enum": ["1", "2"]}},
    {"name": "DEAD", "type": "boolean", "trueValues": ["O"], "falseValues": ["N"]},
    {"name": "WEIGHT", "type": "number", "decimalChar": ","}
  ],
  "missingValues": ["", "NA"],
  "primaryKey": "NIR"
}"#;

// Semicolons (sniffed), a missing value, and one broken rule per bad line.
const PATIENTS: &str = "NIR;BIRTH_YEAR;SEX;DEAD;WEIGHT\n\
NIR-111;1980;1;N;70,5\n\
NIR-222;1870;2;O;NA\n\
NIR-333;1990;3;N;60\n\
NIR-111;1985;1;N;80\n\
;1990;1;N;1\n\
NIR-444;19x0;1;X;2\n\
NIR-555;2000;2;O;55,25\n";

const STAYS_SCHEMA: &str = r#"{
  "fields": [
    {"name": "STAY_ID", "type": "integer"},
    {"name": "NIR"},
    {"name": "ADMIT", "type": "date", "format": "%d/%m/%Y", "constraints": {"required": true}},
    {"name": "DISCHARGE", "type": "datetime"},
    {"name": "ROOM", "constraints": {"pattern": "[A-Z][0-9]{3}"}},
    {"name": "MONTH", "type": "yearmonth"},
    {"name": "COMMENT"}
  ],
  "primaryKey": ["STAY_ID"],
  "foreignKeys": [{"fields": "NIR", "reference": {"resource": "patients", "fields": "NIR"}}]
}"#;

// A BOM, CRLF line ends and a quoted field spanning two lines.
const STAYS: &str = "\u{feff}STAY_ID,NIR,ADMIT,DISCHARGE,ROOM,MONTH,COMMENT\r\n\
1,NIR-111,01/02/2020,2020-02-03T10:00:00Z,A123,202002,\"two\r\nlines\"\r\n\
2,NIR-222,01/02/2020,2020-02-03T10:00:00+01:00,B001,2020-02,patient quarantined\r\n\
3,NIR-999,01/02/2020,,B002,,unknown patient\r\n\
4,NIR-555,31/02/2020,,B003,,bad date\r\n\
5,NIR-555,01/03/2020,,a12,,bad room\r\n\
1,NIR-555,01/03/2020,,B004,,same stay id\r\n\
6,,01/03/2020,,,,no patient\r\n\
7,NIR-555\r\n";

fn dataset() -> tempfile::TempDir {
    extract(&[
        ("patients.json", PATIENTS_SCHEMA),
        ("patients.csv", PATIENTS),
        ("stays.json", STAYS_SCHEMA),
        ("stays.csv", STAYS),
    ])
}

fn tables(batches: &HashMap<String, Vec<RecordBatch>>, name: &str) -> RecordBatch {
    let b = &batches[name];
    arrow::compute::concat_batches(&b[0].schema(), b).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn types_constraints_and_keys_are_checked_with_file_line_field_and_reason() {
    let t = TestHub::new().await;
    let src = dataset();
    let report = t.ingest_ts("ts", src.path(), &[]).await.unwrap();
    let counts: Vec<_> = report
        .tables
        .iter()
        .map(|r| {
            (
                r.table.as_str(),
                r.rows_read,
                r.rows_stored,
                r.rows_quarantined,
            )
        })
        .collect();
    assert_eq!(counts, vec![("patients", 7, 2, 5), ("stays", 8, 2, 6)]);
    assert_eq!(report.new_persons, 2);
    assert_eq!(
        t.quarantine_lines("ts").await,
        vec![
            "patients,patients.csv,3,BIRTH_YEAR,breaks the constraint minimum 1900",
            "patients,patients.csv,4,SEX,breaks the constraint enum",
            "patients,patients.csv,5,NIR,same primary key as an earlier row",
            "patients,patients.csv,6,NIR,required field is empty",
            "patients,patients.csv,7,BIRTH_YEAR,not a valid year (YYYY)",
            "patients,patients.csv,7,DEAD,not a valid boolean (one of the true/false values)",
            "stays,stays.csv,4,NIR,refers to no row of patients (foreign key)",
            "stays,stays.csv,5,NIR,refers to no row of patients (foreign key)",
            "stays,stays.csv,6,ADMIT,not a valid date (%d/%m/%Y)",
            "stays,stays.csv,7,ROOM,breaks the constraint pattern",
            "stays,stays.csv,8,STAY_ID,same primary key as an earlier row",
            "stays,stays.csv,10,,\"expected 7 fields, found 2\"",
        ]
    );

    let batches = t.read_release("ts").await;
    let patients = tables(&batches, "patients");
    let schema = patients.schema();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("nir", DataType::Int64, false),
            ("birth_year", DataType::Int64, true),
            ("sex", DataType::Utf8, true),
            ("dead", DataType::Boolean, true),
            ("weight", DataType::Float64, true),
        ]
    );
    let weights: Vec<_> = patients
        .column(4)
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(weights, vec![Some(70.5), Some(55.25)]);
    let dead: Vec<_> = patients.column(3).as_boolean().iter().collect();
    assert_eq!(dead, vec![Some(false), Some(true)]);

    let stays = tables(&batches, "stays");
    assert_eq!(
        stays.schema().field(3).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let ids: Vec<_> = stays.column(0).as_primitive::<Int64Type>().iter().collect();
    assert_eq!(ids, vec![Some(1), Some(6)]);
    let admit = stays.column(2).as_primitive::<Date32Type>().value(0);
    assert_eq!(admit, 18293, "2020-02-01");
    let month: Vec<_> = stays.column(5).as_string::<i32>().iter().collect();
    assert_eq!(month, vec![Some("2020-02"), None]);
    let comment = stays.column(6).as_string::<i32>().value(0);
    assert_eq!(comment, "two\r\nlines");
    // The stay's NIR, a foreign key to an identifier, is the patient's hub key.
    let patient_key = patients.column(0).as_primitive::<Int64Type>().value(0);
    let stay_nir = stays.column(1).as_primitive::<Int64Type>();
    assert_eq!(stay_nir.value(0), patient_key);
    assert!(stay_nir.is_null(1));
    let manifest_identity = report.tables.len();
    assert_eq!(manifest_identity, 2);
}

/// No raw identifier reaches the lake, the identifier column of a table that only refers to
/// the declared one is keyed too, and the keys are those OMOP gives the same identities.
#[tokio::test(flavor = "multi_thread")]
async fn person_identifiers_become_hub_keys_that_link_with_omop() {
    let t = TestHub::new().await;
    let src = dataset();
    t.ingest_ts("ts", src.path(), &[]).await.unwrap();
    let omop = extract(&[(
        "person.csv",
        "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n\
         1,8507,1980,0,0,NIR-111\n2,8532,2000,0,0,NIR-555\n",
    )]);
    let omop_report = t.ingest("omop", omop.path()).await.unwrap();
    assert_eq!(omop_report.new_persons, 0, "both persons already known");

    let ts = tables(&t.read_release("ts").await, "patients");
    let person = tables(&t.read_release("omop").await, "person");
    let mut ts_keys: Vec<i64> = ts
        .column(0)
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .collect();
    let mut omop_keys: Vec<i64> = person
        .column(0)
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .collect();
    ts_keys.sort();
    omop_keys.sort();
    assert_eq!(ts_keys, omop_keys);

    // The manifest names the key columns, declared or reached through a foreign key: the
    // permit workspace re-keys them and applies opt-outs through them.
    let info = t
        .hub
        .meta
        .release(&"ts".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    for table in ["patients", "stays"] {
        assert_eq!(
            manifest.table(table).unwrap().person_columns,
            ["nir"],
            "{table}"
        );
    }

    // Nothing of the lake holds a source identifier: not a Parquet cell, not the quarantine
    // report, not the manifest nor the stored schemas.
    for path in files_under(&t.lake_dir()) {
        let text = if path.extension().is_some_and(|e| e == "parquet") {
            read_parquet(&path)
                .iter()
                .flat_map(|b| b.columns().to_vec())
                .map(|c| {
                    let s = arrow::compute::cast(&c, &DataType::Utf8).unwrap();
                    s.as_string::<i32>()
                        .iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
        };
        for id in [
            "NIR-111", "NIR-222", "NIR-333", "NIR-444", "NIR-555", "NIR-999",
        ] {
            assert!(!text.contains(id), "{id} in {}", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_may_live_apart_and_person_ids_may_be_named() {
    let t = TestHub::new().await;
    let schemas = extract(&[(
        "codes.json",
        r#"{"fields": [{"name": "CODE"}, {"name": "PATIENT"}]}"#,
    )]);
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::fs::write(
        data.path().join("sub/CODES.tsv"),
        "code\tpatient\nA\tP-1\nB\tP-2\n",
    )
    .unwrap();
    std::fs::write(data.path().join("orphan.csv"), "x\n1\n").unwrap();
    let report = t
        .ingest_ts_with(
            "apart",
            data.path(),
            Some(schemas.path()),
            &["patient"],
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!(report.rows_stored, 2);
    assert_eq!(report.new_persons, 2);
    assert_eq!(report.tables[0].file, "sub/CODES.tsv");
    assert_eq!(
        report.warnings,
        vec!["orphan.csv: no Table Schema orphan.json, not ingested"]
    );
    let codes = tables(&t.read_release("apart").await, "codes");
    assert_eq!(codes.schema().field(1).data_type(), &DataType::Int64);
}

#[tokio::test(flavor = "multi_thread")]
async fn structural_errors_fail_the_ingest_and_leave_nothing() {
    let t = TestHub::new().await;
    let ok_schema =
        r#"{"fields": [{"name": "a", "constraints": {"required": true}}, {"name": "b"}]}"#;
    /// Files, `--person-id` fields, expected message.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("t.json", "{"), ("t.csv", "a\n")],
            &[],
            "t.json: not valid JSON",
        ),
        (
            &[
                ("t.json", r#"{"fields": [{"name": "a", "type": "money"}]}"#),
                ("t.csv", "a\n"),
            ],
            &[],
            "t.json: field 1: a: unknown type \"money\"",
        ),
        (
            &[("t.json", ok_schema), ("t.csv", "b\n1\n")],
            &[],
            "t.csv: required column a of table t is missing",
        ),
        (
            &[("t.json", ok_schema), ("t.csv", "a,b\n1,2\n")],
            &["NIR"],
            "--person-id NIR: no resource has a field of that name",
        ),
        (
            &[
                (
                    "t.json",
                    r#"{"fields": [{"name": "a"}], "foreignKeys": [{"fields": "a", "reference": {"resource": "u", "fields": "z"}}]}"#,
                ),
                ("t.csv", "a\n1\n"),
                ("u.json", r#"{"fields": [{"name": "y"}]}"#),
                ("u.csv", "y\n1\n"),
            ],
            &[],
            "t.json: foreign key 1: resource u has no field z",
        ),
        (
            &[
                ("t.json", ok_schema),
                ("t.csv", "a,b\n1,2\n"),
                ("T.tsv", "a\tb\n"),
            ],
            &[],
            "resource t is given twice",
        ),
        (
            &[("t.csv", "a\n1\n")],
            &[],
            "no Table Schema (.json) with a data file",
        ),
        (
            &[("t.json", ok_schema), ("t.csv", "")],
            &[],
            "t.csv: line 1: the header row is missing or empty",
        ),
    ];
    for (files, person_ids, message) in cases {
        let src = extract(files);
        let err = t
            .ingest_ts("broken", src.path(), person_ids)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(message),
            "{err}\n  expected: {message}"
        );
    }
    assert!(files_under(&t.lake_dir()).is_empty());
    assert!(t.hub.meta.list_datasets().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_keys_that_cannot_be_checked_are_reported() {
    let t = TestHub::new().await;
    let src = extract(&[
        (
            "t.json",
            r#"{"fields": [{"name": "id", "type": "integer"}, {"name": "parent", "type": "integer"}, {"name": "code"}],
                "foreignKeys": [
                    {"fields": "parent", "reference": {"resource": "", "fields": "id"}},
                    {"fields": "code", "reference": {"resource": "nomenclature", "fields": "code"}}
                ]}"#,
        ),
        ("t.csv", "id,parent,code\n1,,X\n2,1,Y\n"),
    ]);
    let report = t.ingest_ts("fk", src.path(), &[]).await.unwrap();
    assert_eq!(report.rows_stored, 2);
    assert_eq!(
        report.warnings,
        vec![
            "foreign keys to resources not in this ingest were not checked (1 key, 1 resource): nomenclature",
            "t.json: foreign key 1 (parent) refers to its own resource: not checked",
        ]
    );
}

/// Foreign keys between fields of different types compare values as written: `05` (a
/// string) matches `05` (an integer field's text), not `5`.
#[tokio::test(flavor = "multi_thread")]
async fn foreign_keys_across_types_compare_the_written_values() {
    let t = TestHub::new().await;
    let src = extract(&[
        (
            "dept.json",
            r#"{"fields": [{"name": "code", "type": "integer"}]}"#,
        ),
        ("dept.csv", "code\n05\n7\n"),
        (
            "people.json",
            r#"{"fields": [{"name": "dept"}], "foreignKeys": [{"fields": "dept", "reference": {"resource": "dept", "fields": "code"}}]}"#,
        ),
        ("people.csv", "dept\n05\n5\n7\n"),
    ]);
    let report = t.ingest_ts("fk", src.path(), &[]).await.unwrap();
    let people = report.tables.iter().find(|r| r.table == "people").unwrap();
    assert_eq!((people.rows_stored, people.rows_quarantined), (2, 1));
}

/// The shared SNDS fixture: 191 tables, every one stored (rows that break their own schema
/// quarantined), and the beneficiary identifiers (BEN_NIR_PSA in the claims, NIR_ANO_17 in
/// the hospital stays) nowhere in the lake.
#[tokio::test(flavor = "multi_thread")]
async fn snds_tables_ingest_with_beneficiaries_pseudonymized() {
    let t = TestHub::new().await;
    let root = shared("data/snds/schemas");
    let report = t
        .ingest_ts("snds", &root, &["BEN_NIR_PSA", "NIR_ANO_17"])
        .await
        .unwrap();
    assert_eq!(report.tables.len(), 191);
    assert_eq!(report.rows_read, 1910);
    assert_eq!(report.rows_stored + report.rows_quarantined, 1910);
    assert!(report.rows_stored > 900, "{}", report.rows_stored);

    // Every BEN_NIR_PSA (and every field it is a foreign key of) holds hub keys.
    let mut raw = std::collections::HashSet::new();
    let mut reader = csv::Reader::from_path(root.join("BENEFICIAIRE/IR_BEN_R.csv")).unwrap();
    for rec in reader.records() {
        raw.insert(rec.unwrap()[0].to_owned());
    }
    assert_eq!(raw.len(), 10);
    let info = t
        .hub
        .meta
        .release(&"snds".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    let mut keyed_columns = 0;
    for table in &manifest.tables {
        for column in &table.schema.columns {
            if ["ben_nir_psa", "nir_ano_17"].contains(&column.name.as_str()) {
                assert_eq!(
                    column.ty,
                    agora_core::ColumnType::Int64,
                    "{}.{}",
                    table.name,
                    column.name
                );
                keyed_columns += 1;
            }
        }
    }
    assert_eq!(keyed_columns, 18);
    let batches = t.read_release("snds").await;
    for (table, parts) in &batches {
        for batch in parts {
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                if field.data_type() == &DataType::Utf8 {
                    for cell in column.as_string::<i32>().iter().flatten() {
                        assert!(
                            !raw.contains(cell),
                            "identifier in {table}.{}",
                            field.name()
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_commits_nothing() {
    let t = TestHub::new().await;
    let src = dataset();
    let dry = t
        .ingest_ts_with("ts", src.path(), None, &[], true, false)
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.rows_stored, dry.rows_quarantined), (4, 11));
    assert!(files_under(&t.lake_dir()).is_empty());
    assert!(t.hub.meta.list_datasets().await.unwrap().is_empty());
    assert!(matches!(
        t.ingest_ts("ts", Path::new("/nonexistent"), &[]).await,
        Err(Error::Io { .. })
    ));
}

/// Every lake file as text (Parquet cells cast to text), for "no identifier anywhere" checks.
fn lake_texts(t: &TestHub) -> Vec<(String, String)> {
    files_under(&t.lake_dir())
        .into_iter()
        .map(|path| {
            let text = if path.extension().is_some_and(|e| e == "parquet") {
                read_parquet(&path)
                    .iter()
                    .flat_map(|b| b.columns().to_vec())
                    .map(|c| {
                        let s = arrow::compute::cast(&c, &DataType::Utf8).unwrap();
                        s.as_string::<i32>()
                            .iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
            };
            (path.display().to_string(), text)
        })
        .collect()
}

fn int_column(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>()
        .iter()
        .collect()
}

// SNDS-like: a beneficiary is (number, rank); twins share the number (one parent's).
const BEN_SCHEMA: &str = r#"{
  "fields": [{"name": "BEN_NIR_PSA"}, {"name": "BEN_RNG_GEM", "type": "integer"},
             {"name": "SEX"}],
  "primaryKey": ["BEN_NIR_PSA", "BEN_RNG_GEM"],
  "foreignKeys": [{"fields": "BEN_RNG_GEM", "reference": {"resource": "ranks", "fields": "BEN_RNG_GEM"}}]
  AGORA
}"#;
const BEN: &str =
    "BEN_NIR_PSA,BEN_RNG_GEM,SEX\nNIRAAAA0001,1,1\nNIRAAAA0001,2,2\nNIRBBBB0002,1,2\n";
const RANKS_SCHEMA: &str =
    r#"{"fields": [{"name": "BEN_RNG_GEM", "type": "integer"}, {"name": "LABEL"}]}"#;
const RANKS: &str = "BEN_RNG_GEM,LABEL\n1,first\n2,second\n";
const CARE_SCHEMA: &str = r#"{
  "fields": [{"name": "ID", "type": "integer"}, {"name": "BEN_NIR_PSA"},
             {"name": "BEN_RNG_GEM", "type": "integer"}],
  "foreignKeys": [{"fields": ["BEN_NIR_PSA", "BEN_RNG_GEM"],
                   "reference": {"resource": "ben", "fields": ["BEN_NIR_PSA", "BEN_RNG_GEM"]}}]
}"#;
// Line 5: a number without its rank cannot be keyed as a person.
// Line 4: the rank written `01` is rank 1.
const CARE: &str = "ID,BEN_NIR_PSA,BEN_RNG_GEM\n1,NIRAAAA0001,1\n2,NIRAAAA0001,2\n3,NIRAAAA0001,01\n4,NIRAAAA0001,\n";

/// Issue 12, item 5: twins (one number, two ranks) are two persons, the same pair in two
/// tables one person, whether the composite is declared in the schema or by
/// `--person-id A+B`; the rank nomenclature is not keyed; no number reaches the lake.
#[tokio::test(flavor = "multi_thread")]
async fn a_composite_identity_keys_the_pair() {
    let declared = BEN_SCHEMA.replace(
        "AGORA",
        r#", "agora:personIdentity": ["BEN_NIR_PSA", "BEN_RNG_GEM"]"#,
    );
    let plain = BEN_SCHEMA.replace("AGORA", "");
    let t = TestHub::new().await;
    for (dataset, schema, person_ids) in [
        ("declared", declared.as_str(), &[][..]),
        ("named", plain.as_str(), &["BEN_NIR_PSA+BEN_RNG_GEM"][..]),
    ] {
        let src = extract(&[
            ("ben.json", schema),
            ("ben.csv", BEN),
            ("ranks.json", RANKS_SCHEMA),
            ("ranks.csv", RANKS),
            ("care.json", CARE_SCHEMA),
            ("care.csv", CARE),
        ]);
        let report = t.ingest_ts(dataset, src.path(), person_ids).await.unwrap();
        let batches = t.read_release(dataset).await;
        let ben = tables(&batches, "ben");
        let (nir, rank) = (
            int_column(&ben, "ben_nir_psa"),
            int_column(&ben, "ben_rng_gem"),
        );
        assert_eq!(nir, rank, "{dataset}: both fields hold the pair's key");
        let keys: std::collections::HashSet<i64> = nir.iter().flatten().copied().collect();
        assert_eq!(keys.len(), 3, "{dataset}: twins are two persons");
        let care = tables(&batches, "care");
        let care_keys = int_column(&care, "ben_nir_psa");
        assert_eq!(care_keys.len(), 3, "{dataset}");
        assert_eq!(care_keys[0], nir[0], "{dataset}: same pair, same person");
        assert_eq!(care_keys[1], nir[1], "{dataset}");
        assert_eq!(care_keys[2], nir[0], "{dataset}");
        assert_ne!(care_keys[0], care_keys[1], "{dataset}");
        let care_report = report.tables.iter().find(|r| r.table == "care").unwrap();
        assert_eq!(care_report.rows_quarantined, 1, "{dataset}");
        // The rank nomenclature is not an identifier: its codes are stored as written.
        let ranks = tables(&batches, "ranks");
        assert_eq!(int_column(&ranks, "ben_rng_gem"), vec![Some(1), Some(2)]);
    }
    // Both forms give the same keys; a new release met no new person.
    let (a, b) = (
        tables(&t.read_release("declared").await, "ben"),
        tables(&t.read_release("named").await, "ben"),
    );
    assert_eq!(int_column(&a, "ben_nir_psa"), int_column(&b, "ben_nir_psa"));
    let lines = t.quarantine_lines("named").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("care.csv") && l.contains(",5,")),
        "{lines:?}"
    );
    for (path, text) in lake_texts(&t) {
        for nir in ["NIRAAAA0001", "NIRBBBB0002"] {
            assert!(!text.contains(nir), "a number in {path}");
        }
    }
}

/// The shared SNDS fixture keyed on the (BEN_NIR_PSA, BEN_RNG_GEM) pair: every table
/// stored, every claims table keyed on the pair and linked to its beneficiary, no NIR
/// anywhere in the lake.
#[tokio::test(flavor = "multi_thread")]
async fn snds_beneficiaries_are_number_and_rank() {
    let t = TestHub::new().await;
    let root = shared("data/snds/schemas");
    let report = t
        .ingest_ts("snds", &root, &["BEN_NIR_PSA+BEN_RNG_GEM", "NIR_ANO_17"])
        .await
        .unwrap();
    assert_eq!(report.tables.len(), 191);
    assert_eq!(report.rows_read, 1910);
    let mut raw = std::collections::HashSet::new();
    for file in files_under(&root) {
        if file.extension().is_some_and(|e| e == "csv") {
            let mut reader = csv::Reader::from_path(&file).unwrap();
            let headers = reader.headers().unwrap().clone();
            for (i, h) in headers.iter().enumerate() {
                if h == "BEN_NIR_PSA" || h == "NIR_ANO_17" {
                    for rec in csv::Reader::from_path(&file).unwrap().records() {
                        raw.insert(rec.unwrap()[i].to_owned());
                    }
                }
            }
        }
    }
    // Pseudonymized NIRs are 17 characters; shorter strings of these columns are random
    // text that the generator also drew for unrelated columns.
    raw.retain(|v| v.len() == 17);
    assert!(raw.len() >= 10, "{}", raw.len());
    let batches = t.read_release("snds").await;
    let ben = tables(&batches, "ir_ben_r");
    assert_eq!(
        int_column(&ben, "ben_nir_psa"),
        int_column(&ben, "ben_rng_gem")
    );
    let persons: std::collections::HashSet<i64> = int_column(&ben, "ben_nir_psa")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(persons.len(), 10);
    let imb = tables(&batches, "ir_imb_r");
    let linked = int_column(&imb, "ben_nir_psa");
    assert!(!linked.is_empty());
    assert!(linked.iter().flatten().all(|k| persons.contains(k)));
    let info = t
        .hub
        .meta
        .release(&"snds".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    assert!(
        manifest
            .pseudonymization
            .identity
            .contains("ir_ben_r.(ben_nir_psa+ben_rng_gem)"),
        "{}",
        manifest.pseudonymization.identity
    );
    for (path, text) in lake_texts(&t) {
        for nir in &raw {
            assert!(!text.contains(nir.as_str()), "a NIR in {path}");
        }
    }
}

const PACKAGE: &str = r#"{
  "name": "mini",
  "resources": [
    {"name": "ben", "path": "data/ben.csv",
     "schema": {"fields": [{"name": "NIR"}, {"name": "RANK", "type": "integer"}],
                "primaryKey": ["NIR", "RANK"],
                "agora:personIdentity": ["NIR", "RANK"]}},
    {"name": "care", "path": "data/care.tsv", "schema": "schemas/care.json"}
  ]
}"#;
const PACKAGE_CARE_SCHEMA: &str = r#"{
  "fields": [{"name": "ID", "type": "integer"}, {"name": "NIR"}, {"name": "RANK", "type": "integer"}],
  "foreignKeys": [{"fields": ["NIR", "RANK"], "reference": {"resource": "ben", "fields": ["NIR", "RANK"]}}]
}"#;

/// Issue 12, item 5: a Frictionless `datapackage.json` describes the extract: inline and
/// referenced schemas, foreign keys between its resources; a path out of the extract is
/// refused and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_data_package_is_read_with_its_foreign_keys() {
    let t = TestHub::new().await;
    let src = extract(&[("datapackage.json", PACKAGE)]);
    std::fs::create_dir_all(src.path().join("data")).unwrap();
    std::fs::create_dir_all(src.path().join("schemas")).unwrap();
    for (name, content) in [
        ("data/ben.csv", "NIR;RANK\nNIR-PKG-1;1\nNIR-PKG-1;2\n"),
        (
            "data/care.tsv",
            "ID\tNIR\tRANK\n1\tNIR-PKG-1\t2\n2\tNIR-PKG-9\t1\n",
        ),
        ("schemas/care.json", PACKAGE_CARE_SCHEMA),
        ("notes.csv", "a\n1\n"),
    ] {
        std::fs::write(src.path().join(name), content).unwrap();
    }
    let report = t.ingest_ts("pkg", src.path(), &[]).await.unwrap();
    assert_eq!(report.tables.len(), 2);
    let care = report.tables.iter().find(|r| r.table == "care").unwrap();
    assert_eq!((care.rows_stored, care.rows_quarantined), (1, 1));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("notes.csv: not a resource of datapackage.json")),
        "{:?}",
        report.warnings
    );
    let batches = t.read_release("pkg").await;
    let ben = int_column(&tables(&batches, "ben"), "nir");
    assert_eq!(int_column(&tables(&batches, "care"), "nir"), vec![ben[1]]);
    let lines = t.quarantine_lines("pkg").await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("data/care.tsv") && l.contains(",3,")),
        "{lines:?}"
    );
    for (path, text) in lake_texts(&t) {
        assert!(!text.contains("NIR-PKG"), "a number in {path}");
    }

    // A resource whose path leaves the extract is refused, whatever it points at.
    for path in ["../outside.csv", "/etc/passwd", "data/../../x.csv"] {
        let bad = PACKAGE.replace("data/care.tsv", path);
        std::fs::write(src.path().join("datapackage.json"), bad).unwrap();
        let err = t.ingest_ts("bad", src.path(), &[]).await.unwrap_err();
        assert!(matches!(err, Error::UnsafeSource { .. }), "{path}: {err}");
        assert!(err.to_string().contains("resource 2"), "{err}");
    }
    let bad = PACKAGE.replace("data/care.tsv", "data/missing.csv");
    std::fs::write(src.path().join("datapackage.json"), bad).unwrap();
    let err = t.ingest_ts("bad", src.path(), &[]).await.unwrap_err();
    assert!(
        err.to_string().contains("names no file of the extract"),
        "{err}"
    );
    assert!(
        t.hub
            .meta
            .release(&"bad".parse().unwrap(), None)
            .await
            .unwrap()
            .is_none()
    );
}
