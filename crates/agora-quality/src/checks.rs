//! Pass/fail checks (DQD-style: a check passes when the fraction of violating rows is within
//! its threshold). Table-level checks are computed while profiling each table; the ones here
//! need the whole release.

use crate::ReleaseSource;

use crate::Result;
use crate::profile::{Check, ColumnProfile, DEATH_GRACE_DAYS, DatePlausibility, TableProfile};
use crate::sql::{count, one_row};

/// DQD's default tolerance for plausibility checks.
const PLAUSIBILITY_THRESHOLD: f64 = 0.01;

/// Checks of one date column against the person's life.
pub(crate) fn date_checks(
    table: &str,
    col: &ColumnProfile,
    rows: u64,
    p: DatePlausibility,
) -> Vec<Check> {
    let non_null = rows - col.nulls.min(rows);
    let check = |id: &str, what: String, n: u64, threshold: f64| {
        Check::new(
            id,
            format!("{table}.{} {what}", col.column),
            table,
            Some(&col.column),
            n,
            non_null,
            threshold,
        )
    };
    vec![
        check(
            "plausible_after_birth",
            "is not before the year of birth".into(),
            p.before_birth,
            PLAUSIBILITY_THRESHOLD,
        ),
        check(
            "plausible_before_death",
            format!("is not more than {DEATH_GRACE_DAYS} days after death"),
            p.after_death,
            PLAUSIBILITY_THRESHOLD,
        ),
        check(
            "not_in_future",
            "is not in the future".into(),
            p.in_future,
            0.0,
        ),
    ]
}

/// Checks about persons as a whole.
pub(crate) async fn release_checks(
    ws: &impl ReleaseSource,
    tables: &[TableProfile],
    with_birth: bool,
) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    if !with_birth {
        return Ok(checks);
    }
    let persons = tables
        .iter()
        .find(|t| t.table == "person")
        .map_or(0, |t| t.rows);
    let sql = "SELECT COUNT(*) FROM person WHERE year_of_birth < 1850 \
               OR year_of_birth > EXTRACT(YEAR FROM CURRENT_DATE)";
    checks.push(Check::new(
        "plausible_year_of_birth",
        "person.year_of_birth is between 1850 and this year".into(),
        "person",
        Some("year_of_birth"),
        count(&one_row(ws, "person", sql).await?[0]),
        persons,
        0.0,
    ));
    if ws.manifest().table("observation_period").is_some() {
        let sql = "SELECT COUNT(*) FROM person p WHERE NOT EXISTS \
                   (SELECT 1 FROM observation_period op WHERE op.person_id = p.person_id)";
        checks.push(Check::new(
            "person_has_observation_period",
            "every person has at least one observation period".into(),
            "person",
            None,
            count(&one_row(ws, "person", sql).await?[0]),
            persons,
            0.0,
        ));
    }
    Ok(checks)
}
