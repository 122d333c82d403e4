//! FHIR ingest end to end through the real binary: the expected statistics F1–F5 of
//! `../shared/queries/expected_fhir_*.txt` through `agora sql` on the flattened tables, and
//! `agora views`.

use crate::support::{Hub, shared};

fn rows(tsv: &str) -> Vec<Vec<String>> {
    tsv.lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// F1–F5, computed with SQL and formatted as the expected files write them.
fn statistics(hub: &Hub, dataset: &str) -> Vec<String> {
    let sql = |q: &str| rows(&hub.sql_tsv(dataset, q));
    let f1 = sql("SELECT COUNT(*), SUM(CASE WHEN deceased THEN 1 ELSE 0 END) FROM patient");
    let genders = sql("SELECT gender, COUNT(*) FROM patient GROUP BY 1 ORDER BY 1");
    let dict = |rows: &[Vec<String>]| {
        let items: Vec<String> = rows
            .iter()
            .map(|r| format!("'{}': {}", r[0], r[1]))
            .collect();
        format!("{{{}}}", items.join(", "))
    };
    let f2 = sql(
        "SELECT code, code_display, COUNT(DISTINCT person_id) AS n FROM condition
          WHERE code_system = 'http://snomed.info/sct'
          GROUP BY code, code_display ORDER BY n DESC, code LIMIT 10",
    );
    let f3 = sql("SELECT class_code, COUNT(*) FROM encounter GROUP BY 1 ORDER BY 1");
    // Systolic pressure is a component of the blood-pressure panel in Synthea, or an
    // observation of its own elsewhere: both count.
    let f4 = sql("SELECT COUNT(*) FROM (
           SELECT person_id FROM (
             SELECT person_id, value_quantity FROM observation_fhir
              WHERE code_system = 'http://loinc.org' AND code = '8480-6'
             UNION ALL
             SELECT person_id, value_quantity FROM observation_component
              WHERE code_system = 'http://loinc.org' AND code = '8480-6')
           WHERE value_quantity >= 140 GROUP BY person_id HAVING COUNT(*) >= 2)");
    let f5 = sql(
        "SELECT medication_code, COUNT(DISTINCT person_id) AS n FROM medication_request
          WHERE medication_system = 'http://www.nlm.nih.gov/research/umls/rxnorm'
          GROUP BY 1 ORDER BY n DESC, medication_code LIMIT 5",
    );
    let join = |rows: &[Vec<String>], f: &dyn Fn(&Vec<String>) -> String| {
        rows.iter().map(f).collect::<Vec<_>>().join("; ")
    };
    vec![
        format!(
            "F1 patients: {}; by gender: {}; deceased: {}",
            f1[0][0],
            dict(&genders),
            f1[0][1]
        ),
        format!(
            "F2 top 10 Condition codes (SNOMED) by distinct patients: {}",
            join(&f2, &|r| format!("{} {} = {}", r[0], r[1], r[2]))
        ),
        format!("F3 encounters by class: {}", dict(&f3)),
        format!(
            "F4 patients with >=2 systolic BP (LOINC 8480-6) >= 140: {}",
            f4[0][0]
        ),
        format!(
            "F5 top 5 MedicationRequest RxNorm codes by distinct patients: {}",
            join(&f5, &|r| format!("{} = {}", r[0], r[1]))
        ),
    ]
}

fn expected(file: &str) -> Vec<String> {
    std::fs::read_to_string(shared(&format!("queries/{file}")))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('F'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn fhir_statistics_match_the_expected_answers_for_both_forms() {
    let hub = Hub::init();
    for (dataset, source, answers) in [
        (
            "bulk",
            "data/fhir/bulk_ndjson_10patients",
            "expected_fhir_bulk_10patients.txt",
        ),
        (
            "bundles",
            "data/fhir/bundles_5patients",
            "expected_fhir_r4_bundles_dev5.txt",
        ),
    ] {
        let out = hub.ok(&[
            "ingest",
            "fhir",
            "--dataset",
            dataset,
            shared(source).to_str().unwrap(),
        ]);
        assert!(out.contains("Committed release 1"), "{out}");
        assert_eq!(statistics(&hub, dataset), expected(answers), "{dataset}");
    }
}

#[test]
fn views_add_validates_and_applies_to_later_ingests() {
    let hub = Hub::init();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"resourceType":"ViewDefinition","name":"bad_view","resource":"Patient","status":"active",
            "select":[{"column":[{"name":"g","path":"gender.where("}]}]}"#,
    )
    .unwrap();
    let err = hub.fails(&["views", "add", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.json") && err.contains("FHIRPath syntax error"),
        "{err}"
    );
    let reserved = dir.path().join("reserved.json");
    std::fs::write(
        &reserved,
        r#"{"resourceType":"ViewDefinition","name":"patient","resource":"Patient","status":"active",
            "select":[{"column":[{"name":"g","path":"gender"}]}]}"#,
    )
    .unwrap();
    let err = hub.fails(&["views", "add", reserved.to_str().unwrap()]);
    assert!(err.contains("default view"), "{err}");

    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"resourceType":"ViewDefinition","name":"patient_birth_year","resource":"Patient","status":"active",
            "select":[{"column":[{"name":"birth_date","path":"birthDate","type":"date"}]}]}"#,
    )
    .unwrap();
    hub.ok(&["views", "add", good.to_str().unwrap()]);
    assert!(hub.ok(&["views", "list"]).contains("patient_birth_year"));
    hub.ok(&[
        "ingest",
        "fhir",
        "--dataset",
        "b",
        shared("data/fhir/bundles_5patients").to_str().unwrap(),
    ]);
    let out = hub.sql_tsv(
        "b",
        "SELECT COUNT(*) FROM patient_birth_year v JOIN patient p ON p.person_id = v.person_id",
    );
    assert_eq!(out, "count(*)\n5\n");
}

#[test]
fn a_broken_bundle_fails_the_ingest_naming_the_file() {
    let hub = Hub::init();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"resourceType\": \"Bundle\", ",
    )
    .unwrap();
    let err = hub.fails(&[
        "ingest",
        "fhir",
        "--dataset",
        "x",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        err.contains("broken.json") && err.contains("nothing was committed"),
        "{err}"
    );
}
