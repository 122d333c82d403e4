//! Error messages name view elements, expressions and input positions, never values read from
//! a resource nor its id (they may identify a person).

use agora_fhir::{ViewDefinition, evaluate};
use serde_json::{Value, json};

const SECRETS: &[&str] = &["Dupont-Secret", "1-84-12-75-123-456", "pat-7f3a", "Marie"];

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "pat-7f3a",
        "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1-84-12-75-123-456"}],
        "name": [{"family": "Dupont-Secret", "given": ["Marie", "Claire"]}],
        "birthDate": "1984-12-03"
    })
}

fn error_of(view: Value) -> String {
    let view = ViewDefinition::from_json(&view).expect("the view is valid");
    let resources = [json!({"resourceType": "Patient", "id": "other"}), patient()];
    let error = evaluate(&view, &resources)
        .expect_err("evaluation fails")
        .to_string();
    for secret in SECRETS {
        assert!(
            !error.contains(secret),
            "error leaks a resource value: {error}"
        );
    }
    assert!(error.starts_with("resource #1: "), "{error}");
    error
}

#[test]
fn errors_do_not_leak_resource_values() {
    let select = |column: Value| json!({"resource": "Patient", "select": [{"column": [column]}]});

    let e = error_of(select(json!({"name": "given", "path": "name.given"})));
    assert!(e.contains("select[0].column[0] (given)"), "{e}");

    let e = error_of(select(json!({"name": "x", "path": "name.family + 1"})));
    assert!(
        e.contains("cannot be applied to a string and a number"),
        "{e}"
    );

    let e = error_of(select(
        json!({"name": "x", "path": "identifier.value < name.given"}),
    ));
    assert!(e.contains("collection of 2 items"), "{e}");

    let e = error_of(select(
        json!({"name": "x", "path": "name.given.join(name.given)"}),
    ));
    assert!(
        e.contains("the separator of join() expects a single item"),
        "{e}"
    );

    let e = error_of(json!({
        "resource": "Patient",
        "select": [{"column": [{"name": "id", "path": "id"}]}],
        "where": [{"path": "identifier.value"}]
    }));
    assert!(
        e.contains("where[0]: the path must return a boolean"),
        "{e}"
    );
}
