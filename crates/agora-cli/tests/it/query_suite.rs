//! The 21 research questions of `../shared/queries/omop_query_suite.sql` must give the
//! expected answers on Synthea27Nj through `agora sql`, for both forms of the extract.

use crate::support::{Hub, shared};

/// `:name` parameters of the suite for this dataset (`../shared/queries/params.md`).
const PARAMS: &[(&str, &str)] = &[
    (":cond", "28060"),
    (":drug", "19133905"),
    (":meas", "3004249"),
    (":threshold", "140"),
];

pub(crate) fn queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(shared("queries/omop_query_suite.sql")).unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("-- Q") {
            out.push((format!("Q{}", &rest[..2]), String::new()));
        }
        if let Some((_, sql)) = out.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    for (_, sql) in &mut out {
        for (name, value) in PARAMS {
            *sql = sql.replace(name, value);
        }
    }
    out
}

fn parse_tsv(text: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    (
        header,
        lines
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect(),
    )
}

/// Cells are equal if equal as text, or as numbers within a relative 1e-9 (floating-point
/// sums may differ in the last digits between engines).
fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

fn same_rows(a: &[Vec<String>], b: &[Vec<String>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_cell(p, q)))
}

fn run_suite(dataset_source: &str) {
    let hub = Hub::init();
    hub.ingest("synthea", &shared(dataset_source));
    let suite = queries();
    assert_eq!(suite.len(), 21);
    let mut failures = Vec::new();
    for (id, sql) in &suite {
        let stdout = match hub.sql_stdin("synthea", sql) {
            Ok(tsv) => tsv,
            Err(stderr) => {
                failures.push(format!("{id}: {stderr}"));
                continue;
            }
        };
        let expected =
            std::fs::read_to_string(shared(&format!("queries/expected_synthea27nj/{id}.tsv")))
                .unwrap();
        let (got_header, mut got) = parse_tsv(&stdout);
        let (want_header, mut want) = parse_tsv(&expected);
        // Row order matters only where the query orders.
        if !sql.to_uppercase().contains("ORDER BY") {
            got.sort();
            want.sort();
        }
        if got_header != want_header || !same_rows(&got, &want) {
            failures.push(format!(
                "{id}: got {got_header} {got:?}\n   expected {want_header} {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 21 queries differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn suite_gives_expected_answers_on_csv_extract() {
    run_suite("data/omop/synthea27nj_csv");
}

#[test]
fn suite_gives_expected_answers_on_parquet_extract() {
    run_suite("data/omop/synthea27nj_parquet");
}

#[test]
fn cell_comparison_is_numeric_with_tolerance_only() {
    assert!(same_cell("0.3333333333333333", "0.33333333333333331"));
    assert!(same_cell("NULL", "NULL"));
    assert!(!same_cell("1", "2"));
    assert!(!same_cell("NULL", "0"));
}
