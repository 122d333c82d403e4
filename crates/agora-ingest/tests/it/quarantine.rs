use agora_ingest::Error;

use crate::support::{TestHub, extract, files_under};

const PERSON_HEADER: &str = "person_id,gender_concept_id,year_of_birth,race_concept_id,ethnicity_concept_id,person_source_value\n";
const CONDITION_HEADER: &str = "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_type_concept_id,condition_source_value\n";

/// Secret-looking values used in the fixture: none may appear in the quarantine report,
/// the ingest report or an error message.
const SECRETS: &[&str] = &["NIR-111", "NIR-222", "NIR-333", "19x0", "2021-13-45"];

fn messy_extract() -> tempfile::TempDir {
    let person = format!(
        "{PERSON_HEADER}\
         1,8507,1980,0,0,NIR-111\n\
         2,8532,19x0,0,0,NIR-222\n\
         3,,1990,0,0,NIR-333\n\
         4,8532,1970,0,0,NIR-111\n\
         5,8532,1970,0,0,\n\
         6,8532,1971,0,0,NIR-444\n\
         6,8507,1972,0,0,NIR-555\n"
    );
    // CRLF line ends, a UTF-8 BOM and a quoted field spanning two lines.
    let condition = format!(
        "\u{feff}{}\
         10,1,28060,2020-01-01,32020,ok\r\n\
         11,1,28060,2021-13-45,32020,bad date\r\n\
         12,999,28060,2020-01-01,32020,unknown person\r\n\
         13,2,28060,2020-01-01,32020,person was quarantined\r\n\
         14,4,28060,2020-01-02,32020,\"two\r\nlines\"\r\n\
         15,1,28060\r\n\
         16,6,28060,2020-01-03,32020,first person 6\r\n",
        CONDITION_HEADER.replace('\n', "\r\n")
    );
    extract(&[
        ("person.csv", &person),
        ("condition_occurrence.csv", &condition),
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_are_quarantined_with_file_line_column_and_reason() {
    let t = TestHub::new().await;
    let src = messy_extract();
    let report = t.ingest("messy", src.path()).await.unwrap();

    let person = report.tables.iter().find(|r| r.table == "person").unwrap();
    assert_eq!(
        (
            person.rows_read,
            person.rows_stored,
            person.rows_quarantined
        ),
        (7, 2, 5)
    );
    let cond = report
        .tables
        .iter()
        .find(|r| r.table == "condition_occurrence")
        .unwrap();
    // 10 and 16 are fine; 14 belongs to person 4 = same identity as person 1, so it links.
    assert_eq!(
        (cond.rows_read, cond.rows_stored, cond.rows_quarantined),
        (7, 3, 4)
    );
    assert_eq!(report.rows_quarantined, 9);

    let info = t
        .hub
        .meta
        .release(&"messy".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    let file = manifest.quarantine.file.clone().unwrap();
    let csv = std::fs::read_to_string(t.lake_dir().join(file)).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.remove(0), "table,file,line,column,reason");
    lines.sort();
    let expected = [
        "condition_occurrence,condition_occurrence.csv,3,condition_start_date,not a valid date (YYYY-MM-DD)",
        "condition_occurrence,condition_occurrence.csv,4,person_id,person has no accepted row in the person table",
        "condition_occurrence,condition_occurrence.csv,5,person_id,person has no accepted row in the person table",
        "condition_occurrence,condition_occurrence.csv,8,,\"expected 6 fields, found 3\"",
        "person,person.csv,3,year_of_birth,not a valid integer",
        "person,person.csv,4,gender_concept_id,required field is empty",
        "person,person.csv,5,person_source_value,same person identity as an earlier row (linked to it)",
        "person,person.csv,6,person_source_value,person identity is empty",
        "person,person.csv,8,person_id,person_id already used by an earlier row",
    ];
    assert_eq!(lines, expected);

    let everything = format!("{csv}{}", serde_json::to_string(&report).unwrap());
    for secret in SECRETS {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_required_column_fails_the_ingest_and_leaves_nothing() {
    let t = TestHub::new().await;
    let src = extract(&[(
        "person.csv",
        "person_id,gender_concept_id,race_concept_id,ethnicity_concept_id\n1,8507,0,0\n",
    )]);
    let err = t.ingest("broken", src.path()).await.unwrap_err();
    assert!(matches!(err, Error::MissingColumn { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "person.csv: required column year_of_birth of table person is missing"
    );
    assert!(files_under(&t.lake_dir()).is_empty());
    assert!(t.hub.meta.list_datasets().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn structural_errors_name_the_file() {
    let t = TestHub::new().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("person.csv", "")],
            "person.csv: line 1: the header row is missing or empty",
        ),
        (
            &[("person.csv", "person_id,PERSON_ID\n")],
            "person.csv: column person_id appears more than once",
        ),
        (
            &[("condition_occurrence.csv", CONDITION_HEADER)],
            "table condition_occurrence refers to persons but the extract has no person table: persons cannot be pseudonymized",
        ),
        (
            &[("notes.csv", "a\n")],
            "no CSV, TSV or Parquet file of a known table found",
        ),
        (
            &[("person.parquet", "not parquet")],
            "person.parquet: cannot read Parquet",
        ),
    ];
    for (files, message) in cases {
        let src = extract(files);
        let err = t
            .ingest("broken", src.path())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{err}\n  expected: {message}");
    }
    assert!(files_under(&t.lake_dir()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_files_and_columns_are_reported_not_dropped_silently() {
    let t = TestHub::new().await;
    let src = extract(&[
        (
            "person.csv",
            &(PERSON_HEADER.replace('\n', ",shoe_size\n") + "1,8507,1980,0,0,NIR-1,42\n"),
        ),
        ("my_notes.csv", "x\n1\n"),
    ]);
    let report = t.ingest("extra", src.path()).await.unwrap();
    assert_eq!(
        report.warnings,
        vec![
            "my_notes.csv: not a CDM 5.4 table, not ingested",
            "person.csv: column shoe_size is not in CDM 5.4 table person, not ingested",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn integers_written_as_decimals_are_read_and_counted_fractions_are_quarantined() {
    // pandas writes an integer column holding nulls as floats: `8507.0`, empty for null.
    let person = format!(
        "{PERSON_HEADER}\
         1,8507.0,1980.0,0,0,NIR-111\n\
         2,8532,1.99e3,0,0,NIR-222\n\
         3,8532.5,1990,0,0,NIR-333\n\
         4,8532,1e30,0,0,NIR-444\n"
    );
    let condition = format!(
        "{CONDITION_HEADER}\
         10.0,1,28060.0,2020-01-01,32020,a\n\
         11,2,28060,2020-01-01,32020.0,b\n"
    );
    let src = extract(&[
        ("person.csv", &person),
        ("condition_occurrence.csv", &condition),
    ]);
    let t = TestHub::new().await;
    let report = t.ingest("decimals", src.path()).await.unwrap();
    let person = report.tables.iter().find(|r| r.table == "person").unwrap();
    assert_eq!((person.rows_stored, person.rows_quarantined), (2, 2));
    let cond = report
        .tables
        .iter()
        .find(|r| r.table == "condition_occurrence")
        .unwrap();
    assert_eq!((cond.rows_stored, cond.rows_quarantined), (2, 0));
    // Counted per column, in the report's warnings.
    let warnings = report.warnings.join("\n");
    for (column, n) in [
        ("person.gender_concept_id", 1),
        ("person.year_of_birth", 2),
        ("condition_occurrence.condition_occurrence_id", 1),
        ("condition_occurrence.condition_concept_id", 1),
        ("condition_occurrence.condition_type_concept_id", 1),
    ] {
        let line = format!("{n} value(s) of integer column {column} written as integral decimals");
        assert!(warnings.contains(&line), "{line} not in:\n{warnings}");
    }
    // Read as the integers they are.
    let tables = t.read_release("decimals").await;
    let years: Vec<i64> = tables["person"]
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name("year_of_birth").unwrap();
            c.as_any()
                .downcast_ref::<arrow::array::Int32Array>()
                .map(|a| a.iter().flatten().map(i64::from).collect::<Vec<_>>())
                .or_else(|| {
                    c.as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .map(|a| a.iter().flatten().collect())
                })
                .unwrap()
        })
        .collect();
    assert_eq!(years, [1980, 1990]);
    // A fraction or a value past 64 bits stays a bad value, with its reason.
    let info = t
        .hub
        .meta
        .release(&"decimals".parse().unwrap(), None)
        .await
        .unwrap()
        .unwrap();
    let manifest = t.hub.lake.read_manifest(&info.manifest_path).await.unwrap();
    let csv = std::fs::read_to_string(
        t.lake_dir()
            .join(manifest.quarantine.file.as_deref().unwrap()),
    )
    .unwrap();
    assert!(
        csv.contains("person,person.csv,4,gender_concept_id,not a valid integer"),
        "{csv}"
    );
    assert!(
        csv.contains("person,person.csv,5,year_of_birth,not a valid integer"),
        "{csv}"
    );
}
