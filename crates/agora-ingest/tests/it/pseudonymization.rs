use std::collections::HashSet;

use agora_ingest::omop::IdentitySource;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};

use crate::support::{TestHub, files_under, read_parquet, shared};

/// The source's identifiers of the fixture's persons: `person_source_value` and `person_id`.
fn fixture_identities() -> (Vec<String>, HashSet<i64>) {
    let mut reader =
        csv::Reader::from_path(shared("data/omop/synthea27nj_csv/PERSON.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let psv = headers
        .iter()
        .position(|h| h == "person_source_value")
        .unwrap();
    let mut values = Vec::new();
    let mut ids = HashSet::new();
    for rec in reader.records() {
        let rec = rec.unwrap();
        values.push(rec[psv].to_owned());
        ids.insert(rec[0].parse().unwrap());
    }
    (values, ids)
}

/// No raw identifier appears in any Parquet file the ingest wrote: no string cell contains a
/// source identifier, and no person column holds a source person id.
#[tokio::test(flavor = "multi_thread")]
async fn no_raw_identifier_reaches_any_parquet_file() {
    let t = TestHub::new().await;
    t.ingest("synthea", &shared("data/omop/synthea27nj_csv"))
        .await
        .unwrap();
    let (identities, source_ids) = fixture_identities();
    assert_eq!(identities.len(), 28);

    let parquet_files: Vec<_> = files_under(&t.lake_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(parquet_files.len() >= 39, "one file per table at least");
    let mut person_cells = 0;
    for path in &parquet_files {
        for batch in read_parquet(path) {
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                assert_ne!(field.name(), "person_source_value", "{}", path.display());
                if field.data_type() == &DataType::Utf8 {
                    for cell in column.as_string::<i32>().iter().flatten() {
                        for id in &identities {
                            assert!(
                                !cell.contains(id.as_str()),
                                "identifier in {}",
                                path.display()
                            );
                        }
                    }
                }
                if field.name() == "person_id" {
                    for key in column.as_primitive::<Int64Type>().iter().flatten() {
                        assert!(
                            !source_ids.contains(&key),
                            "source person_id in {}",
                            path.display()
                        );
                        person_cells += 1;
                    }
                }
            }
        }
    }
    assert!(
        person_cells > 20_000,
        "person columns were checked ({person_cells})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_person_column_holds_keys_of_stored_persons() {
    let t = TestHub::new().await;
    let report = t
        .ingest("synthea", &shared("data/omop/synthea27nj_csv"))
        .await
        .unwrap();
    assert_eq!(report.rows_quarantined, 0);
    assert_eq!(report.new_persons, 28);
    let tables = t.read_release("synthea").await;
    let persons: HashSet<i64> = tables["person"]
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name("person_id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .clone();
            c.iter().flatten().collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(persons.len(), 28);
    for (name, batches) in &tables {
        for b in batches {
            if let Some(c) = b.column_by_name("person_id") {
                let c = c.as_primitive::<Int64Type>();
                assert_eq!(c.null_count(), 0, "{name}");
                assert!(c.iter().flatten().all(|k| persons.contains(&k)), "{name}");
            }
        }
    }
}

async fn person_keys(t: &TestHub, dataset: &str) -> HashSet<i64> {
    t.read_release(dataset).await["person"]
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The same identities give the same keys across datasets and forms (CSV vs Parquet): this is
/// what links sources. Scoped person-id identities do not link.
#[tokio::test(flavor = "multi_thread")]
async fn same_identity_links_across_datasets_and_forms() {
    let t = TestHub::new().await;
    t.ingest("from_csv", &shared("data/omop/synthea27nj_csv"))
        .await
        .unwrap();
    let second = t
        .ingest("from_parquet", &shared("data/omop/synthea27nj_parquet"))
        .await
        .unwrap();
    assert_eq!(
        second.new_persons, 0,
        "all 28 persons already known to the hub"
    );
    assert_eq!(
        person_keys(&t, "from_csv").await,
        person_keys(&t, "from_parquet").await
    );

    let scoped = t
        .ingest_with(
            "scoped",
            &shared("data/omop/synthea27nj_csv"),
            IdentitySource::PersonId,
        )
        .await
        .unwrap();
    assert_eq!(scoped.new_persons, 28);
    assert!(
        person_keys(&t, "scoped")
            .await
            .is_disjoint(&person_keys(&t, "from_csv").await)
    );
}

/// A hub with another secret gives unrelated keys: keys cannot be recomputed without it.
#[tokio::test(flavor = "multi_thread")]
async fn keys_depend_on_the_hub_secret() {
    let a = TestHub::new().await;
    let b = TestHub::with_secret(agora_privacy::HubSecret::from_bytes([7; 32])).await;
    a.ingest("s", &shared("data/omop/synthea27nj_csv"))
        .await
        .unwrap();
    b.ingest("s", &shared("data/omop/synthea27nj_csv"))
        .await
        .unwrap();
    assert!(
        person_keys(&a, "s")
            .await
            .is_disjoint(&person_keys(&b, "s").await)
    );
}
