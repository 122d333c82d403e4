//! Disclosure control under a permit's `aggregates` policy, on generated data.

use agora_core::{ErrorKind, HasKind};
use agora_service::QueryOutput;
use agora_service::governance::{DisclosureProfile, OutputPolicy};
use arrow::util::display::array_value_to_string;

use crate::support::{Study, study};

const PERSON: (&str, &[&str]) = (
    "person",
    &[
        "person_id",
        "year_of_birth",
        "gender_concept_id",
        "race_concept_id",
    ],
);
const CONDITIONS: (&str, &[&str]) = (
    "condition_occurrence",
    &[
        "person_id",
        "condition_concept_id",
        "condition_start_date",
        "visit_occurrence_id",
    ],
);

async fn snds() -> Study {
    study(1500, &[PERSON, CONDITIONS], OutputPolicy::default()).await
}

/// Rows as strings, sorted.
fn rows(out: &QueryOutput) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for b in &out.batches {
        for r in 0..b.num_rows() {
            rows.push(
                (0..b.num_columns())
                    .map(|c| {
                        if b.column(c).is_null(r) {
                            "NULL".into()
                        } else {
                            array_value_to_string(b.column(c), r).unwrap()
                        }
                    })
                    .collect(),
            );
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn small_groups_are_withheld_and_the_others_equal_the_truth() {
    let s = snds().await;
    let sql = "SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY year_of_birth";
    let (out, report) = s.ask(sql).await.unwrap();
    let truth = rows(&s.truth(sql).await);
    let released = rows(&out);
    let expected: Vec<Vec<String>> = truth
        .into_iter()
        .filter(|r| r[1].parse::<i64>().unwrap() >= 10)
        .collect();
    assert_eq!(released, expected);
    assert!(report.groups_withheld > 0, "{report:?}");
    assert!(report.notes[0].contains("fewer than 10"), "{report:?}");
}

#[tokio::test]
async fn per_person_rows_and_person_keys_are_refused_with_a_way_out() {
    let s = snds().await;
    for sql in [
        "SELECT person_id FROM person",
        "SELECT * FROM condition_occurrence",
        "SELECT person_id, COUNT(*) FROM condition_occurrence GROUP BY person_id",
        "SELECT person_id % 7 AS bucket, COUNT(*) FROM person GROUP BY 1",
        "SELECT MAX(year_of_birth) FROM person",
        "SELECT gender_concept_id, MIN(condition_start_date) FROM person JOIN condition_occurrence USING (person_id) GROUP BY 1",
        "SELECT year_of_birth, ROW_NUMBER() OVER (ORDER BY year_of_birth) FROM person",
    ] {
        let e = s.ask(sql).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{sql}: {e}");
        assert!(e.to_string().contains("output policy"), "{sql}: {e}");
    }
}

#[tokio::test]
async fn a_rollup_total_cannot_give_back_a_withheld_group() {
    let s = snds().await;
    let sql = "SELECT gender_concept_id, race_concept_id, COUNT(*) AS n FROM person \
               GROUP BY ROLLUP (gender_concept_id, race_concept_id)";
    let (out, _) = s.ask(sql).await.unwrap();
    let released = rows(&out);
    assert!(!released.is_empty());
    for r in &released {
        assert!(
            r[2] == "NULL" || r[2].parse::<i64>().unwrap() >= 10,
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn counts_are_rounded_and_small_ones_redacted_under_opensafely() {
    let s = study(
        1500,
        &[PERSON],
        OutputPolicy {
            profile: DisclosureProfile::Opensafely,
            ..Default::default()
        },
    )
    .await;
    let sql = "SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY year_of_birth";
    let (out, report) = s.ask(sql).await.unwrap();
    for r in rows(&out) {
        let n: i64 = r[1].parse().unwrap();
        assert_eq!(n % 5, 0, "{r:?}");
    }
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("rounded to the nearest 5"))
    );
}
