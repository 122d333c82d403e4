//! Runner of the official SQL-on-FHIR v2 conformance suite (one JSON file per feature, each
//! with `resources` and `tests`; see `tests.schema.json` of the suite).
//!
//! Comparison follows the official runners: rows are compared as a multiset (order does not
//! matter), values as JSON with numbers compared numerically (`5` equals `5.0`) and arrays in
//! order; `expectColumns` compares column names in order; `expectError` passes if either
//! validation or evaluation fails. Failure reasons quote the suite's own synthetic fixtures.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::eval::evaluate;
use crate::view::ViewDefinition;

/// The outcome of a suite run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SuiteReport {
    /// Tests whose outcome matched the expectation.
    pub passed: usize,
    /// Tests whose outcome did not; one [`Failure`] each.
    pub failed: usize,
    /// Why each failed test failed, in run order.
    pub failures: Vec<Failure>,
}

/// One failed test.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The test file name, e.g. `foreach.json`.
    pub file: String,
    /// The test's `title`.
    pub test: String,
    /// What differed from the expectation (missing or extra rows, wrong columns, an error
    /// expected or not); may quote the suite's synthetic fixtures.
    pub reason: String,
}

impl SuiteReport {
    /// The number of tests run.
    pub fn total(&self) -> usize {
        self.passed + self.failed
    }
}

/// Runs every test of every `*.json` file of `dir` (in file-name order).
pub fn run_suite(dir: &Path) -> Result<SuiteReport> {
    let suite_error = |message: String| Error::Suite {
        path: dir.to_owned(),
        message,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| suite_error(e.to_string()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| suite_error(e.to_string()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json") && !name.ends_with(".schema.json") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(suite_error("no test files (*.json)".to_owned()));
    }
    let mut report = SuiteReport::default();
    for file in &files {
        run_file(file, &mut report)?;
    }
    Ok(report)
}

/// Runs the tests of one file, adding their outcomes to `report`.
pub fn run_file(path: &Path, report: &mut SuiteReport) -> Result<()> {
    let suite_error = |message: String| Error::Suite {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| suite_error(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| suite_error(e.to_string()))?;
    let resources = doc
        .get("resources")
        .and_then(Value::as_array)
        .ok_or_else(|| suite_error("no \"resources\" array".to_owned()))?;
    let tests = doc
        .get("tests")
        .and_then(Value::as_array)
        .ok_or_else(|| suite_error("no \"tests\" array".to_owned()))?;
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (i, test) in tests.iter().enumerate() {
        let title = test
            .get("title")
            .and_then(Value::as_str)
            .map_or_else(|| format!("tests[{i}]"), str::to_owned);
        match run_test(test, resources) {
            Ok(()) => report.passed += 1,
            Err(reason) => {
                report.failed += 1;
                report.failures.push(Failure {
                    file: file.clone(),
                    test: title,
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Runs one test; `Err` carries why it failed.
fn run_test(test: &Value, resources: &[Value]) -> std::result::Result<(), String> {
    let view_json = test.get("view").ok_or("the test has no view")?;
    let expect_error = test.get("expectError").and_then(Value::as_bool) == Some(true);
    let outcome = ViewDefinition::from_json(view_json).and_then(|view| {
        let rows = evaluate(&view, resources)?;
        Ok((view, rows))
    });
    let (view, rows) = match (outcome, expect_error) {
        (Err(_), true) => return Ok(()),
        (Err(e), false) => return Err(format!("unexpected error: {e}")),
        (Ok((_, rows)), true) => {
            return Err(format!("expected an error, got {} row(s)", rows.len()));
        }
        (Ok(result), false) => result,
    };
    let actual: Vec<Map<String, Value>> =
        rows.iter().map(|r| r.to_object(view.columns())).collect();
    let mut checked = false;

    if let Some(expected) = test.get("expectColumns") {
        checked = true;
        let names: Vec<Value> = view
            .columns()
            .iter()
            .map(|c| Value::String(c.name.clone()))
            .collect();
        if expected != &Value::Array(names.clone()) {
            return Err(format!(
                "expected columns {expected}, got {}",
                Value::Array(names)
            ));
        }
    }
    if let Some(expected) = test.get("expectCount") {
        checked = true;
        if expected.as_u64() != Some(actual.len() as u64) {
            return Err(format!("expected {expected} row(s), got {}", actual.len()));
        }
    }
    if let Some(expected) = test.get("expect") {
        checked = true;
        let expected = expected.as_array().ok_or("\"expect\" is not an array")?;
        compare_rows(expected, &actual)?;
    }
    if checked {
        Ok(())
    } else {
        Err(
            "the test has no expectation (expect, expectColumns, expectCount or expectError)"
                .to_owned(),
        )
    }
}

/// Compares rows as multisets.
fn compare_rows(
    expected: &[Value],
    actual: &[Map<String, Value>],
) -> std::result::Result<(), String> {
    let show = |rows: &[Map<String, Value>]| {
        rows.iter()
            .map(|r| Value::Object(r.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if expected.len() != actual.len() {
        return Err(format!(
            "expected {} row(s), got {}: [{}]",
            expected.len(),
            actual.len(),
            show(actual)
        ));
    }
    let mut used = vec![false; actual.len()];
    for row in expected {
        let Value::Object(row) = row else {
            return Err(format!("expected row {row} is not an object"));
        };
        let found = (0..actual.len()).find(|&i| !used[i] && objects_equal(row, &actual[i]));
        match found {
            Some(i) => used[i] = true,
            None => {
                return Err(format!(
                    "expected row {} not produced; got [{}]",
                    Value::Object(row.clone()),
                    show(actual)
                ));
            }
        }
    }
    Ok(())
}

fn objects_equal(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| json_equal(v, w)))
}

/// JSON equality with numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn rows_compare_as_multisets_with_numeric_numbers() {
        let actual = [
            obj(json!({"a": 1.0, "b": [1, 2]})),
            obj(json!({"a": 2, "b": []})),
        ];
        assert!(
            compare_rows(
                &[json!({"a": 2, "b": []}), json!({"a": 1, "b": [1, 2]})],
                &actual
            )
            .is_ok()
        );
        assert!(
            compare_rows(
                &[json!({"a": 2, "b": []}), json!({"a": 1, "b": [2, 1]})],
                &actual
            )
            .is_err()
        );
        assert!(
            compare_rows(
                &[json!({"a": 2, "b": []}), json!({"a": 2, "b": []})],
                &actual
            )
            .is_err()
        );
        assert!(compare_rows(&[json!({"a": 2, "b": [], "c": null})], &actual[1..]).is_err());
    }

    #[test]
    fn a_test_passes_or_fails_on_its_expectations() {
        let resources = [json!({"resourceType": "Patient", "id": "p"})];
        let view =
            json!({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]});
        assert!(run_test(&json!({"view": view, "expect": [{"id": "p"}]}), &resources).is_ok());
        assert!(run_test(&json!({"view": view, "expectColumns": ["id"]}), &resources).is_ok());
        assert!(run_test(&json!({"view": view, "expectCount": 1}), &resources).is_ok());
        let e = run_test(&json!({"view": view, "expect": [{"id": "q"}]}), &resources).unwrap_err();
        assert!(e.contains("not produced"), "{e}");
        let e = run_test(&json!({"view": view, "expectError": true}), &resources).unwrap_err();
        assert!(e.contains("expected an error"), "{e}");
        let e = run_test(&json!({"view": view}), &resources).unwrap_err();
        assert!(e.contains("no expectation"), "{e}");
        assert!(run_test(&json!({"view": {}, "expectError": true}), &resources).is_ok());
    }
}
