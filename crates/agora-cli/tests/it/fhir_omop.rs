//! The OMOP query suite on FHIR-sourced releases, through the real binary: both FHIR
//! fixtures are ingested with `--vocabulary` naming the Synthea27Nj OMOP extract ingested in
//! the same hub; all 21 questions must run, and those whose answer follows from the FHIR
//! statistics (`../shared/queries/expected_fhir_*.txt`) must agree with them.

use std::collections::HashMap;

use crate::query_suite::queries;
use crate::support::{Hub, shared};

/// Runs one suite query on `dataset`; the answer rows, or the error.
fn run(hub: &Hub, dataset: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    Ok(hub
        .sql_stdin(dataset, sql)?
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect())
}

struct Expected {
    persons: &'static str,
    deaths: &'static str,
    /// F3 (encounters by class) as visit concepts: class → 9201/9202/9203/581476/5083.
    visits: &'static [(&'static str, &'static str)],
    /// F4: persons with ≥ 2 systolic pressures ≥ 140 (Q14 with 3004249, 140).
    high_bp_persons: &'static str,
}

#[test]
fn omop_suite_runs_on_fhir_sourced_releases() {
    let hub = Hub::init();
    hub.ingest("synthea", &shared("data/omop/synthea27nj_csv"));
    let cases = [
        (
            "bulk",
            "data/fhir/bulk_ndjson_10patients",
            Expected {
                persons: "13",
                deaths: "3",
                visits: &[
                    ("9202", "1133"),
                    ("9201", "49"),
                    ("9203", "23"),
                    ("581476", "9"),
                    ("5083", "1"),
                ],
                high_bp_persons: "0",
            },
        ),
        (
            "bundles",
            "data/fhir/bundles_5patients",
            Expected {
                persons: "5",
                deaths: "1",
                visits: &[("9202", "82"), ("9203", "7"), ("9201", "1")],
                high_bp_persons: "2",
            },
        ),
    ];
    let suite = queries();
    for (dataset, source, expected) in cases {
        let out = hub.ok(&[
            "ingest",
            "fhir",
            "--dataset",
            dataset,
            "--vocabulary",
            "synthea",
            shared(source).to_str().unwrap(),
        ]);
        assert!(out.contains("Committed release 1"), "{out}");
        for table in [
            "person",
            "visit_occurrence",
            "condition_occurrence",
            "concept",
        ] {
            assert!(out.contains(table), "{table} in the report:\n{out}");
        }
        let mut answers = HashMap::new();
        let mut failures = Vec::new();
        for (id, sql) in &suite {
            match run(&hub, dataset, sql) {
                Ok(rows) => {
                    answers.insert(id.as_str(), rows);
                }
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{dataset}: {} of 21 queries fail:\n{}",
            failures.len(),
            failures.join("\n")
        );
        let e = &expected;
        assert_eq!(answers["Q01"], [[e.persons, e.persons]], "{dataset} Q01");
        assert_eq!(answers["Q15"][0][0], e.deaths, "{dataset} Q15");
        let visits: Vec<(String, String)> = answers["Q08"]
            .iter()
            .map(|r| (r[0].clone(), r[2].clone()))
            .collect();
        let want: Vec<(String, String)> = e
            .visits
            .iter()
            .map(|(c, n)| ((*c).to_owned(), (*n).to_owned()))
            .collect();
        assert_eq!(visits, want, "{dataset} Q08");
        assert_eq!(answers["Q14"], [[e.high_bp_persons]], "{dataset} Q14");
        // Data-quality checks: no orphan, no end before start, no drug outside observation.
        for row in &answers["Q19"] {
            assert_eq!(row[1], "0", "{dataset} Q19 {}", row[0]);
        }
        // Conditions per year sum to the condition rows, all with a visit and a year.
        assert!(!answers["Q05"].is_empty() && !answers["Q09"].is_empty());
    }
}

#[test]
fn vocabulary_flag_errors_name_the_problem() {
    let hub = Hub::init();
    let bundles = shared("data/fhir/bundles_5patients");
    let err = hub.fails(&[
        "ingest",
        "fhir",
        "--dataset",
        "f",
        "--vocabulary",
        "nothing",
        bundles.to_str().unwrap(),
    ]);
    assert!(
        err.contains("nothing was committed")
            && err.contains("vocabulary dataset nothing has no release"),
        "{err}"
    );
    let err = hub.fails(&[
        "ingest",
        "fhir",
        "--dataset",
        "f",
        "--vocabulary",
        "x",
        "--no-omop",
        bundles.to_str().unwrap(),
    ]);
    assert!(err.contains("cannot be used with"), "{err}");
    let out = hub.ok(&[
        "ingest",
        "fhir",
        "--dataset",
        "f",
        "--no-omop",
        bundles.to_str().unwrap(),
    ]);
    assert!(!out.contains("visit_occurrence"), "{out}");
}
