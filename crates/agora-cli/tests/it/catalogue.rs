//! `agora catalogue`: counts, coverage and quality from the releases, descriptions from
//! operators, and the HealthDCAT-AP export.

use serde_json::Value;

use crate::support::{Hub, shared};

#[test]
fn catalogue_describes_datasets_with_counts_coverage_and_healthdcat_ap() {
    let hub = Hub::init();
    // Described before the first ingest: catalogued already.
    let description = hub.data_dir().join("omop.json");
    std::fs::write(
        &description,
        r#"{"title": "Synthea NJ", "publisher": "Agora test hub",
            "contact_point": "data@hub.example", "legal_basis": "Open synthetic data",
            "purpose": "Testing", "coding_systems": ["SNOMED CT", "RxNorm", "LOINC"],
            "keywords": ["synthetic"]}"#,
    )
    .unwrap();
    hub.ok(&[
        "catalogue",
        "describe",
        "--dataset",
        "omop",
        description.to_str().unwrap(),
    ]);
    let early: Value = serde_json::from_str(&hub.ok(&["catalogue", "--format", "json"])).unwrap();
    assert_eq!(early[0]["dataset"], "omop");
    assert_eq!(early[0]["releases"], 0);

    hub.ingest("omop", &shared("data/omop/synthea27nj_csv"));
    let entries: Value = serde_json::from_str(&hub.ok(&["catalogue", "--format", "json"])).unwrap();
    let release = &entries[0]["latest_release"];
    let persons = hub.sql_tsv("omop", "SELECT COUNT(DISTINCT person_id) FROM person");
    assert_eq!(
        release["persons"].to_string(),
        persons.lines().nth(1).unwrap()
    );
    let first_visit = hub.sql_tsv(
        "omop",
        "SELECT CAST(MIN(visit_start_date) AS VARCHAR) FROM visit_occurrence",
    );
    let start = release["temporal"]["start"].as_str().unwrap();
    assert!(start <= first_visit.lines().nth(1).unwrap(), "{start}");
    assert_eq!(release["quality"]["status"], "profiled");
    let person = release["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "person")
        .unwrap();
    assert_eq!(person["rows"], 28);
    assert!(person["columns"][0]["null_rate"].is_number());

    let text = hub.ok(&["catalogue"]);
    assert!(
        text.contains("Synthea NJ") && text.contains("28 persons"),
        "{text}"
    );

    let doc: Value = serde_json::from_str(&hub.ok(&[
        "catalogue",
        "--format",
        "jsonld",
        "--public-url",
        "https://hub.example",
    ]))
    .unwrap();
    let d = &doc["dcat:dataset"][0];
    assert_eq!(d["@id"], "https://hub.example/api/v1/catalogue/omop");
    assert_eq!(d["healthdcatap:numberOfUniqueIndividuals"]["@value"], "28");
    assert_eq!(d["dct:temporal"]["dcat:startDate"]["@value"], start);
    assert_eq!(
        d["dct:conformsTo"]["dct:title"],
        "OMOP Common Data Model 5.4"
    );
    assert_eq!(
        d["dpv:hasLegalBasis"]["dct:description"],
        "Open synthetic data"
    );

    let unknown = hub.fails(&["catalogue", "--dataset", "nope"]);
    assert!(unknown.contains("no dataset nope"), "{unknown}");
    std::fs::write(&description, r#"{"title": ""}"#).unwrap();
    let invalid = hub.fails(&[
        "catalogue",
        "describe",
        "--dataset",
        "omop",
        description.to_str().unwrap(),
    ]);
    assert!(invalid.contains("title"), "{invalid}");
}
