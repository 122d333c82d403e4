//! Disclosure attacks on a permit's `aggregates` policy (snds profile, k = 10), a property
//! test over random GROUP BY queries, and the 21-question suite through a permit session;
//! every released answer is checked against an operator's answer on the same data.
//!
//! Every attack asserts the safe outcome (a refusal, a withheld or blanked cell, a value
//! that is not small). One that gets through is listed in `LEAKS` with why, and skipped:
//! of the 20 found when the suite was written, 19 are fixed; one is a documented limit.

use agora_core::{ErrorKind, HasKind};
use agora_service::QueryOutput;
use agora_service::governance::OutputPolicy;
use arrow::util::display::array_value_to_string;

use crate::support::{Study, study};

/// The snds profile's threshold.
const K: i64 = 10;

const TABLES: &[(&str, &[&str])] = &[
    (
        "person",
        &[
            "person_id",
            "gender_concept_id",
            "year_of_birth",
            "month_of_birth",
            "day_of_birth",
            "race_concept_id",
            "ethnicity_concept_id",
        ],
    ),
    (
        "observation_period",
        &[
            "observation_period_id",
            "person_id",
            "observation_period_start_date",
            "observation_period_end_date",
        ],
    ),
    (
        "visit_occurrence",
        &[
            "visit_occurrence_id",
            "person_id",
            "visit_concept_id",
            "visit_start_date",
            "visit_end_date",
        ],
    ),
    (
        "condition_occurrence",
        &[
            "condition_occurrence_id",
            "person_id",
            "condition_concept_id",
            "condition_start_date",
            "condition_end_date",
            "visit_occurrence_id",
        ],
    ),
    (
        "drug_exposure",
        &[
            "drug_exposure_id",
            "person_id",
            "drug_concept_id",
            "drug_exposure_start_date",
            "drug_exposure_end_date",
            "quantity",
            "days_supply",
        ],
    ),
    (
        "procedure_occurrence",
        &[
            "procedure_occurrence_id",
            "person_id",
            "procedure_concept_id",
            "procedure_date",
        ],
    ),
    (
        "measurement",
        &[
            "measurement_id",
            "person_id",
            "measurement_concept_id",
            "measurement_date",
            "value_as_number",
            "unit_concept_id",
        ],
    ),
    ("death", &["person_id", "death_date"]),
    (
        "concept",
        &["concept_id", "concept_name", "domain_id", "vocabulary_id"],
    ),
    (
        "concept_ancestor",
        &["ancestor_concept_id", "descendant_concept_id"],
    ),
];

async fn attack_study() -> Study {
    study(1500, TABLES, OutputPolicy::default()).await
}

// ---------------------------------------------------------------------------------------
// Answers as text

/// An answer as text cells (`None` for NULL), in its own row order.
#[derive(Debug, Clone, PartialEq)]
struct Table {
    cols: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

fn table(out: &QueryOutput) -> Table {
    let cols = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for b in &out.batches {
        for r in 0..b.num_rows() {
            rows.push(
                (0..b.num_columns())
                    .map(|c| {
                        (!b.column(c).is_null(r))
                            .then(|| array_value_to_string(b.column(c), r).unwrap())
                    })
                    .collect(),
            );
        }
    }
    Table { cols, rows }
}

impl Table {
    /// The cell at `(row, col)` as an integer (`None` for NULL or a missing row).
    fn int(&self, row: usize, col: usize) -> Option<i64> {
        let cell = self.rows.get(row)?.get(col)?.as_ref()?;
        cell.parse::<i64>()
            .ok()
            .or_else(|| cell.parse::<f64>().ok().map(|f| f.round() as i64))
    }

    fn float(&self, row: usize, col: usize) -> Option<f64> {
        self.rows.get(row)?.get(col)?.as_ref()?.parse().ok()
    }

    /// The first row whose first column is `key`.
    fn find(&self, key: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|r| r.first().and_then(|c| c.as_deref()) == Some(key))
    }
}

/// Cells are equal as text, or as numbers within a relative 1e-9.
fn same_cell(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => false,
    }
}

async fn truth(s: &Study, sql: &str) -> Table {
    table(&s.truth(sql).await)
}

async fn truth_int(s: &Study, sql: &str) -> i64 {
    truth(s, sql)
        .await
        .int(0, 0)
        .unwrap_or_else(|| panic!("{sql}: no value"))
}

// ---------------------------------------------------------------------------------------
// What the attacker wants to learn, read from the data by an operator

#[derive(Debug)]
struct Secrets {
    total: i64,
    /// A year of birth shared by fewer than k persons, and how many.
    rare_year: i64,
    rare_year_n: i64,
    /// The most frequent year of birth.
    big_year: i64,
    /// The target: a person born in `rare_year`, unique by date of birth, as the project
    /// knows them (the pseudonym of their hub key: the attacker may have seen it in an
    /// earlier result).
    target: i64,
    month: i64,
    day: i64,
    gender: i64,
    race: i64,
    /// Persons of the target's gender born in `rare_year`.
    gender_rare_n: i64,
    /// The condition most persons have, and how many born on the target's birthday have it.
    cond: i64,
    cond_birthday_n: i64,
    /// A condition behind fewer than k persons (the most records among those).
    rare_cond: i64,
    /// The most frequent measurement, its largest value and how many persons have it.
    meas: i64,
    meas_max: f64,
    meas_max_persons: i64,
    /// The 20th smallest person key as the project sees them (a pseudonym).
    id20: i64,
}

async fn secrets(s: &Study) -> Secrets {
    let total = truth_int(s, "SELECT COUNT(*) FROM person").await;
    let t = truth(
        s,
        "SELECT p.person_id, p.year_of_birth, p.month_of_birth, p.day_of_birth, \
                p.gender_concept_id, p.race_concept_id, r.n \
         FROM person p JOIN (SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY 1 \
                             HAVING COUNT(*) < 10) r ON r.year_of_birth = p.year_of_birth \
         WHERE (SELECT COUNT(*) FROM person q WHERE q.year_of_birth = p.year_of_birth \
                AND q.month_of_birth = p.month_of_birth AND q.day_of_birth = p.day_of_birth) = 1 \
         ORDER BY r.n DESC, p.year_of_birth, p.person_id LIMIT 1",
    )
    .await;
    let int = |c| t.int(0, c).expect("a target person");
    let (target, rare_year, month, day, gender, race, rare_year_n) =
        (int(0), int(1), int(2), int(3), int(4), int(5), int(6));
    let big_year = truth_int(
        s,
        "SELECT year_of_birth FROM person GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1",
    )
    .await;
    let gender_rare_n = truth_int(
        s,
        &format!(
            "SELECT COUNT(*) FROM person WHERE gender_concept_id = {gender} \
             AND year_of_birth = {rare_year}"
        ),
    )
    .await;
    let cond = truth_int(
        s,
        "SELECT condition_concept_id FROM condition_occurrence GROUP BY 1 \
         ORDER BY COUNT(DISTINCT person_id) DESC, 1 LIMIT 1",
    )
    .await;
    let cond_birthday_n = truth_int(
        s,
        &format!(
            "SELECT COUNT(DISTINCT c.person_id) FROM condition_occurrence c \
             JOIN person p ON p.person_id = c.person_id WHERE c.condition_concept_id = {cond} \
             AND p.year_of_birth = {rare_year} AND p.month_of_birth = {month} \
             AND p.day_of_birth = {day}"
        ),
    )
    .await;
    let rc = truth(
        s,
        "SELECT condition_concept_id, COUNT(*), COUNT(DISTINCT person_id) \
         FROM condition_occurrence GROUP BY 1 HAVING COUNT(DISTINCT person_id) < 10 \
         ORDER BY 2 DESC, 1 LIMIT 1",
    )
    .await;
    let meas = truth_int(
        s,
        "SELECT measurement_concept_id FROM measurement WHERE value_as_number IS NOT NULL \
         GROUP BY 1 ORDER BY COUNT(DISTINCT person_id) DESC, 1 LIMIT 1",
    )
    .await;
    let mx = truth(
        s,
        &format!(
            "SELECT MAX(value_as_number) FROM measurement WHERE measurement_concept_id = {meas}"
        ),
    )
    .await;
    let meas_max = mx.float(0, 0).unwrap();
    let meas_max_persons = truth_int(
        s,
        &format!(
            "SELECT COUNT(DISTINCT person_id) FROM measurement \
             WHERE measurement_concept_id = {meas} AND value_as_number = {meas_max}"
        ),
    )
    .await;
    // The researcher sees person keys through the project's pseudonyms: the attacks use
    // those (a raw hub key would find nobody, making them vacuous).
    let pseudonyms = s.pseudonyms();
    let target = pseudonyms.pseudonym(target).expect("a hub key");
    let mut seen: Vec<i64> = truth(s, "SELECT person_id FROM person")
        .await
        .rows
        .iter()
        .map(|r| {
            let key = r[0].as_deref().unwrap().parse().unwrap();
            pseudonyms.pseudonym(key).expect("a hub key")
        })
        .collect();
    seen.sort_unstable();
    let id20 = seen[19];
    Secrets {
        total,
        rare_year,
        rare_year_n,
        big_year,
        target,
        month,
        day,
        gender,
        race,
        gender_rare_n,
        cond,
        cond_birthday_n,
        rare_cond: rc.int(0, 0).expect("a condition of fewer than k persons"),
        meas,
        meas_max,
        meas_max_persons,
        id20,
    }
}

// ---------------------------------------------------------------------------------------
// Attacks

/// What one question of an attack got: the released answer, or the refusal.
type Answer = Result<Table, (ErrorKind, String)>;

struct Ctx<'a> {
    s: &'a Secrets,
    asked: &'a [Answer],
    truth: Option<&'a Table>,
}

impl Ctx<'_> {
    /// Every question released (else the check fails with the refusal).
    fn released(&self) -> Result<Vec<&Table>, String> {
        self.asked
            .iter()
            .map(|a| a.as_ref().map_err(|(k, e)| format!("refused ({k:?}): {e}")))
            .collect()
    }

    /// The answers, or `None` when the policy refused a statement (a safe outcome).
    fn released_unless_refused(&self) -> Result<Option<Vec<&Table>>, String> {
        if self
            .asked
            .iter()
            .any(|a| matches!(a, Err((ErrorKind::PermissionDenied, _))))
        {
            return Ok(None);
        }
        self.released().map(Some)
    }

    fn truth(&self) -> &Table {
        self.truth.expect("the attack's truth query")
    }
}

type Check = Box<dyn Fn(&Ctx) -> Result<(), String> + Send + Sync>;

struct Attack {
    name: &'static str,
    /// What the attacker tries.
    what: &'static str,
    /// The safe outcome.
    expect: &'static str,
    /// The researcher's questions.
    asks: Vec<String>,
    /// An operator's question the check compares with.
    truth: Option<String>,
    check: Check,
}

fn attack(
    name: &'static str,
    what: &'static str,
    expect: &'static str,
    asks: Vec<String>,
    truth: Option<String>,
    check: impl Fn(&Ctx) -> Result<(), String> + Send + Sync + 'static,
) -> Attack {
    Attack {
        name,
        what,
        expect,
        asks,
        truth,
        check: Box::new(check),
    }
}

/// Every question refused by the output policy.
fn refused(c: &Ctx) -> Result<(), String> {
    for a in c.asked {
        match a {
            Err((ErrorKind::PermissionDenied, e)) if e.contains("output policy") => {}
            Err((k, e)) => return Err(format!("refused, but not by the output policy: {k:?} {e}")),
            Ok(t) => return Err(format!("released: {t:?}")),
        }
    }
    Ok(())
}

/// Every question refused (for any reason).
fn rejected(c: &Ctx) -> Result<(), String> {
    match c.asked.iter().find(|a| a.is_ok()) {
        Some(Ok(t)) => Err(format!("released: {t:?}")),
        _ => Ok(()),
    }
}

/// The two questions (a true and a false hypothesis about the target) cannot be told apart.
fn indistinguishable(c: &Ctx) -> Result<(), String> {
    let same = match (&c.asked[0], &c.asked[1]) {
        (Ok(a), Ok(b)) => a.rows == b.rows,
        (Err((ka, ea)), Err((kb, eb))) => ka == kb && ea == eb,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "the true hypothesis gives {:?}, the false one {:?}",
            c.asked[0], c.asked[1]
        ))
    }
}

/// Every row of `released` is a group of the truth (matched on its first `keys` columns;
/// the truth's last column is the group's distinct persons) backed by at least k persons,
/// and with `compare` its non-NULL cells equal the truth's (same columns after the keys).
fn backed(released: &Table, truth: &Table, keys: usize, compare: bool) -> Result<(), String> {
    for row in &released.rows {
        let Some(t) = truth.rows.iter().find(|t| t[..keys] == row[..keys]) else {
            return Err(format!("released group {row:?} is not in the truth"));
        };
        let persons: i64 = t.last().unwrap().as_deref().unwrap_or("0").parse().unwrap();
        if persons < K {
            return Err(format!("released group {row:?} rests on {persons} persons"));
        }
        if compare {
            for c in keys..row.len() {
                if let (Some(a), Some(b)) = (&row[c], &t[c])
                    && !same_cell(a, b)
                {
                    return Err(format!("released {row:?}, truth {t:?}"));
                }
                if row[c].is_some() && t[c].is_none() {
                    return Err(format!("released {row:?}, truth {t:?}"));
                }
            }
        }
    }
    Ok(())
}

/// A number the attacker derives must not be a small count (1..k-1) equal to the truth.
fn not_small(derived: Option<i64>, secret: i64, how: &str) -> Result<(), String> {
    match derived {
        Some(d) if d == secret && secret > 0 && secret < K => Err(format!(
            "{how} gives {d}, the true count of {secret} < {K} persons"
        )),
        _ => Ok(()),
    }
}

/// The value of a global aggregate, NULL when blanked.
fn only(t: &Table) -> Option<i64> {
    t.int(0, 0)
}

fn attacks(s: &Secrets) -> Vec<Attack> {
    let Secrets {
        rare_year: ry,
        big_year: by,
        target: tid,
        month: tm,
        day: td,
        gender: g,
        race,
        cond,
        rare_cond: rc,
        meas,
        id20,
        ..
    } = *s;
    let rare_or_other = format!("CASE WHEN year_of_birth = {ry} THEN 'rare' ELSE 'other' END");
    let birthday =
        format!("year_of_birth = {ry} AND month_of_birth = {tm} AND day_of_birth = {td}");
    vec![
        attack(
            "small_cells",
            "cross year of birth with gender to get cells of a few persons",
            "released; every group backed by >= k persons, counts exact",
            vec!["SELECT year_of_birth, gender_concept_id, COUNT(*) AS n FROM person GROUP BY 1, 2".into()],
            Some("SELECT year_of_birth, gender_concept_id, COUNT(*), COUNT(DISTINCT person_id) FROM person GROUP BY 1, 2".into()),
            |c| {
                let r = c.released()?;
                if r[0].rows.len() >= c.truth().rows.len() {
                    return Err("nothing withheld".into());
                }
                backed(r[0], c.truth(), 2, true)
            },
        ),
        attack(
            "total_minus_visible_separate_queries",
            "ask the total, then the groups: the total minus the visible groups is the withheld group",
            "the withheld group cannot be derived (needs the query ledger)",
            vec![
                "SELECT COUNT(*) FROM person".into(),
                format!("SELECT {rare_or_other} AS g, COUNT(*) AS n FROM person GROUP BY 1"),
            ],
            None,
            |c| {
                let r = c.released()?;
                let other = r[1].find("other").and_then(|i| r[1].int(i, 1));
                let derived = only(r[0]).zip(other).map(|(t, o)| t - o);
                not_small(derived, c.s.rare_year_n, "total - other")
            },
        ),
        attack(
            "total_minus_visible_union_all",
            "one answer holding the groups and, by UNION ALL, the total",
            "released, but not both the total and the visible group (within one result)",
            vec![format!(
                "SELECT {rare_or_other} AS g, COUNT(*) AS n FROM person GROUP BY 1 \
                 UNION ALL SELECT 'total', COUNT(*) FROM person"
            )],
            None,
            |c| {
                let r = c.released()?;
                let at = |k| r[0].find(k).and_then(|i| r[0].int(i, 1));
                let derived = at("total").zip(at("other")).map(|(t, o)| t - o);
                not_small(derived, c.s.rare_year_n, "total - other")
            },
        ),
        attack(
            "total_minus_visible_rollup",
            "ROLLUP's total row minus the visible group",
            "secondary suppression: the total or the other group withheld",
            vec![format!(
                "SELECT {rare_or_other} AS g, COUNT(*) AS n FROM person GROUP BY ROLLUP ({rare_or_other})"
            )],
            None,
            |c| {
                let r = c.released()?;
                let total = r[0].rows.iter().position(|row| row[0].is_none()).and_then(|i| r[0].int(i, 1));
                let other = r[0].find("other").and_then(|i| r[0].int(i, 1));
                not_small(total.zip(other).map(|(t, o)| t - o), c.s.rare_year_n, "total - other")
            },
        ),
        attack(
            "grouping_sets_without_total",
            "GROUPING SETS of two partitions of everyone: the sum of one partition is the total of the other",
            "no withheld group derivable from the two partitions",
            vec![format!(
                "SELECT {rare_or_other} AS g, gender_concept_id AS sex, COUNT(*) AS n FROM person \
                 GROUP BY GROUPING SETS (({rare_or_other}), (gender_concept_id))"
            )],
            None,
            |c| {
                let r = c.released()?;
                let t = r[0];
                let sexes: Vec<Option<i64>> = t.rows.iter().enumerate()
                    .filter(|(_, row)| row[0].is_none() && row[1].is_some())
                    .map(|(i, _)| t.int(i, 2)).collect();
                let sum: Option<i64> = sexes.iter().copied().sum();
                let other = t.find("other").and_then(|i| t.int(i, 2));
                not_small(sum.zip(other).map(|(s, o)| s - o), c.s.rare_year_n, "sum over sexes - other")
            },
        ),
        attack(
            "differencing_birthday",
            "persons with the commonest condition, then the same except those born on the target's birthday",
            "the difference (does the target have it?) is not disclosed (needs the query ledger)",
            vec![
                format!("SELECT COUNT(DISTINCT c.person_id) FROM condition_occurrence c WHERE c.condition_concept_id = {cond}"),
                format!(
                    "SELECT COUNT(DISTINCT c.person_id) FROM condition_occurrence c JOIN person p ON p.person_id = c.person_id \
                     WHERE c.condition_concept_id = {cond} AND NOT ({birthday})"
                ),
            ],
            None,
            |c| {
                let r = c.released()?;
                let d = only(r[0]).zip(only(r[1])).map(|(a, b)| a - b);
                if d == Some(c.s.cond_birthday_n) {
                    return Err(format!("the difference {d:?} tells whether the target has the condition"));
                }
                Ok(())
            },
        ),
        attack(
            "tracker_separate_queries",
            "tracker: count(gender) - count(gender and not the rare year) = count(gender and rare year)",
            "the small cell is not derivable (needs the query ledger)",
            vec![
                format!("SELECT COUNT(*) FROM person WHERE gender_concept_id = {g}"),
                format!("SELECT COUNT(*) FROM person WHERE gender_concept_id = {g} AND year_of_birth <> {ry}"),
            ],
            None,
            |c| {
                let r = c.released()?;
                not_small(only(r[0]).zip(only(r[1])).map(|(a, b)| a - b), c.s.gender_rare_n, "tracker")
            },
        ),
        attack(
            "tracker_one_result",
            "the same tracker as two FILTER cells of one answer",
            "one of the two cells blanked",
            vec![format!(
                "SELECT COUNT(*) FILTER (WHERE gender_concept_id = {g}) AS a, \
                        COUNT(*) FILTER (WHERE gender_concept_id = {g} AND year_of_birth <> {ry}) AS b FROM person"
            )],
            None,
            |c| {
                let r = c.released()?;
                not_small(r[0].int(0, 0).zip(r[0].int(0, 1)).map(|(a, b)| a - b), c.s.gender_rare_n, "a - b")
            },
        ),
        attack(
            "min_max_singleton",
            "MIN/MAX of one person's values, and MAX over everyone",
            "refused",
            vec![
                format!("SELECT MAX(value_as_number) FROM measurement WHERE person_id = {tid}"),
                "SELECT MIN(year_of_birth) FROM person".into(),
                "SELECT gender_concept_id, MAX(value_as_number) FROM measurement JOIN person USING (person_id) GROUP BY 1".into(),
            ],
            None,
            refused,
        ),
        attack(
            "rare_code",
            "list conditions with their persons: a rare code names its one patient's attributes",
            "released; codes of fewer than k persons withheld",
            vec![
                "SELECT condition_concept_id, COUNT(DISTINCT person_id) AS n FROM condition_occurrence GROUP BY 1".into(),
                format!(
                    "SELECT p.year_of_birth, p.gender_concept_id, COUNT(*) FROM person p \
                     JOIN condition_occurrence c ON c.person_id = p.person_id \
                     WHERE c.condition_concept_id = {rc} GROUP BY 1, 2"
                ),
            ],
            Some("SELECT condition_concept_id, COUNT(DISTINCT person_id) AS n, COUNT(DISTINCT person_id) AS persons FROM condition_occurrence GROUP BY 1".into()),
            |c| {
                let r = c.released()?;
                backed(r[0], c.truth(), 1, true)?;
                if !r[1].rows.is_empty() {
                    return Err(format!("the rare code's persons: {:?}", r[1].rows));
                }
                Ok(())
            },
        ),
        attack(
            "join_multiplies_rows",
            "COUNT(*) over a join of one person's rows (or a rare code's many records)",
            "NULL: rows are many, persons few",
            vec![
                format!("SELECT COUNT(*) FROM condition_occurrence WHERE condition_concept_id = {rc}"),
                format!(
                    "SELECT COUNT(*) FROM person p JOIN condition_occurrence c ON c.person_id = p.person_id \
                     JOIN drug_exposure d ON d.person_id = p.person_id WHERE p.person_id = {tid}"
                ),
            ],
            None,
            |c| {
                let r = c.released()?;
                for t in r {
                    if only(t).is_some() {
                        return Err(format!("released {:?}", t.rows));
                    }
                }
                Ok(())
            },
        ),
        attack(
            "case_smuggles_person_key",
            "a CASE on person_id as a group label",
            "refused",
            vec![
                format!("SELECT CASE WHEN person_id = {tid} THEN 'target' ELSE 'others' END AS who, AVG(race_concept_id) FROM person GROUP BY 1"),
                format!("SELECT CASE WHEN person_id < {id20} THEN 1 ELSE 0 END AS low, COUNT(*) FROM person GROUP BY 1"),
            ],
            None,
            refused,
        ),
        attack(
            "case_smuggles_quasi_identifier",
            "a CASE on the target's date of birth as a group label",
            "released; the target's group withheld",
            vec![format!(
                "SELECT CASE WHEN {birthday} THEN 'target' ELSE 'others' END AS who, COUNT(*), AVG(race_concept_id) FROM person GROUP BY 1"
            )],
            None,
            |c| {
                let r = c.released()?;
                if r[0].find("target").is_some() {
                    return Err(format!("released {:?}", r[0].rows));
                }
                Ok(())
            },
        ),
        attack(
            "rows_vs_persons",
            "COUNT(*) of records per condition: a group of many records and few persons",
            "released; groups judged on distinct persons, not rows",
            vec!["SELECT condition_concept_id, COUNT(*) AS n FROM condition_occurrence GROUP BY 1".into()],
            Some("SELECT condition_concept_id, COUNT(*), COUNT(DISTINCT person_id) FROM condition_occurrence GROUP BY 1".into()),
            |c| backed(c.released()?[0], c.truth(), 1, true),
        ),
        attack(
            "sum_case_rare_in_large_group",
            "SUM(CASE WHEN rare THEN 1 ELSE 0 END) in each gender",
            "released; the rare sum blanked where fewer than k persons",
            vec![format!(
                "SELECT gender_concept_id, COUNT(*) AS n, SUM(CASE WHEN year_of_birth = {ry} THEN 1 ELSE 0 END) AS r \
                 FROM person GROUP BY 1"
            )],
            Some(format!(
                "SELECT gender_concept_id, COUNT(*) AS n, SUM(CASE WHEN year_of_birth = {ry} THEN 1 ELSE 0 END) AS r, COUNT(*) AS persons FROM person GROUP BY 1"
            )),
            |c| {
                let r = c.released()?;
                backed(r[0], c.truth(), 1, true)?;
                for (i, row) in r[0].rows.iter().enumerate() {
                    let n = r[0].int(i, 2);
                    if matches!(n, Some(1..K)) {
                        return Err(format!("released {row:?}"));
                    }
                }
                Ok(())
            },
        ),
        attack(
            "sum_case_offset",
            "SUM(CASE WHEN rare THEN 2 ELSE 1 END) - COUNT(*): every row contributes, the difference is the rare count",
            "the rare count is not derivable",
            vec![format!(
                "SELECT gender_concept_id, SUM(CASE WHEN year_of_birth = {ry} THEN 2 ELSE 1 END) - COUNT(*) AS r \
                 FROM person GROUP BY 1"
            )],
            None,
            |c| {
                let Some(r) = c.released_unless_refused()? else { return Ok(()) };
                let i = r[0].find(&c.s.gender.to_string());
                not_small(i.and_then(|i| r[0].int(i, 1)), c.s.gender_rare_n, "sum - count")
            },
        ),
        attack(
            "count_complement",
            "COUNT(*) - COUNT(CASE WHEN NOT rare THEN 1 END): two large cells, a small difference",
            "the rare count is not derivable",
            vec![format!(
                "SELECT gender_concept_id, COUNT(*) - COUNT(CASE WHEN year_of_birth <> {ry} THEN 1 END) AS r \
                 FROM person GROUP BY 1"
            )],
            None,
            |c| {
                let r = c.released()?;
                let i = r[0].find(&c.s.gender.to_string());
                not_small(i.and_then(|i| r[0].int(i, 1)), c.s.gender_rare_n, "count - count")
            },
        ),
        attack(
            "avg_of_one_persons_value",
            "AVG of the target's values (by key, and by date of birth)",
            "NULL",
            vec![
                format!("SELECT AVG(value_as_number) FROM measurement WHERE person_id = {tid}"),
                format!(
                    "SELECT AVG(m.value_as_number) FROM measurement m JOIN person p ON p.person_id = m.person_id WHERE {}",
                    birthday.replace("year_of", "p.year_of").replace("month_of", "p.month_of").replace("day_of", "p.day_of")
                ),
                format!("SELECT gender_concept_id, AVG(CASE WHEN {birthday} THEN race_concept_id END) AS v FROM person GROUP BY 1"),
            ],
            None,
            |c| {
                let r = c.released()?;
                for t in &r[..2] {
                    if only(t).is_some() {
                        return Err(format!("released {:?}", t.rows));
                    }
                }
                if r[2].rows.iter().any(|row| row[1].is_some()) {
                    return Err(format!("released {:?}", r[2].rows));
                }
                Ok(())
            },
        ),
        attack(
            "avg_padded_with_constant",
            "SUM(CASE WHEN target THEN race ELSE 0 END + 1) - COUNT(*): every row contributes, the result is the target's race",
            "the target's value is not released",
            vec![format!(
                "SELECT SUM(CASE WHEN {birthday} THEN race_concept_id ELSE 0 END + 1) - COUNT(*) AS v FROM person"
            )],
            None,
            |c| {
                let Some(r) = c.released_unless_refused()? else { return Ok(()) };
                if only(r[0]) == Some(c.s.race) {
                    return Err(format!("the target's race {} released", c.s.race));
                }
                Ok(())
            },
        ),
        attack(
            "regr_second_argument",
            "regr_avgx(1, CASE WHEN target THEN race END): the contributors are judged on the first argument only",
            "the target's value is not released",
            vec![format!(
                "SELECT regr_avgx(1, CASE WHEN {birthday} THEN race_concept_id END) AS v FROM person"
            )],
            None,
            |c| {
                let r = c.released()?;
                if only(r[0]) == Some(c.s.race) {
                    return Err(format!("the target's race {} released", c.s.race));
                }
                Ok(())
            },
        ),
        attack(
            "count_filter_rare",
            "COUNT(*) FILTER (WHERE rare) beside a large count",
            "released; the FILTER cell blanked",
            vec![format!(
                "SELECT gender_concept_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE year_of_birth = {ry}) AS r FROM person GROUP BY 1"
            )],
            None,
            |c| {
                let r = c.released()?;
                for (i, row) in r[0].rows.iter().enumerate() {
                    if matches!(r[0].int(i, 2), Some(1..K)) {
                        return Err(format!("released {row:?}"));
                    }
                }
                Ok(())
            },
        ),
        attack(
            "having_lists_small_groups",
            "HAVING COUNT(*) < 10 to list the small groups",
            "released empty: HAVING runs on released groups only",
            vec!["SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY 1 HAVING COUNT(*) < 10".into()],
            None,
            |c| {
                let r = c.released()?;
                if r[0].rows.is_empty() { Ok(()) } else { Err(format!("released {:?}", r[0].rows)) }
            },
        ),
        attack(
            "order_by_limit_smallest",
            "ORDER BY the count ascending LIMIT 3 to reach the smallest groups",
            "released; only groups of >= k persons",
            vec!["SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY 1 ORDER BY 2, 1 LIMIT 3".into()],
            Some("SELECT year_of_birth, COUNT(*) AS n, COUNT(*) AS persons FROM person GROUP BY 1".into()),
            |c| backed(c.released()?[0], c.truth(), 1, true),
        ),
        attack(
            "limit_tracker_max",
            "per-person maxima, ORDER BY DESC: the sum of the 11 largest minus the sum of the 10 after the first is the largest",
            "the largest measurement (one person's) is not released",
            vec![format!(
                "WITH pp AS (SELECT person_id, MAX(value_as_number) AS v FROM measurement \
                 WHERE measurement_concept_id = {meas} GROUP BY person_id) \
                 SELECT (SELECT SUM(v) FROM (SELECT v FROM pp ORDER BY v DESC LIMIT 11) a) \
                      - (SELECT SUM(v) FROM (SELECT v FROM pp ORDER BY v DESC LIMIT 10 OFFSET 1) b) AS largest"
            )],
            None,
            |c| {
                let Some(r) = c.released_unless_refused()? else { return Ok(()) };
                let v = r[0].float(0, 0);
                if c.s.meas_max_persons < K && v.is_some_and(|v| (v - c.s.meas_max).abs() < 1e-6) {
                    return Err(format!("the largest value {} ({} persons) released", c.s.meas_max, c.s.meas_max_persons));
                }
                Ok(())
            },
        ),
        attack(
            "window_over_groups",
            "SUM(COUNT(*)) OVER () beside the groups, to get the true total",
            "released; the window sums the released groups only",
            vec!["SELECT year_of_birth, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS total FROM person GROUP BY 1".into()],
            Some("SELECT year_of_birth, COUNT(*) AS n, COUNT(*) AS persons FROM person GROUP BY 1".into()),
            |c| {
                let r = c.released()?;
                let t = r[0];
                let sum: i64 = (0..t.rows.len()).map(|i| t.int(i, 1).unwrap()).sum();
                if (0..t.rows.len()).any(|i| t.int(i, 2) != Some(sum)) {
                    return Err(format!("window total is not the released sum {sum}: {:?}", t.rows.first()));
                }
                let strip = Table { cols: vec![], rows: t.rows.iter().map(|r| r[..2].to_vec()).collect() };
                backed(&strip, c.truth(), 1, true)
            },
        ),
        attack(
            "self_join_on_attributes",
            "a self-join on year of birth and gender: rows are squares of group sizes",
            "released; groups of >= k persons only",
            vec!["SELECT a.year_of_birth, COUNT(*) AS pairs FROM person a JOIN person b \
                  ON a.year_of_birth = b.year_of_birth AND a.gender_concept_id = b.gender_concept_id GROUP BY 1".into()],
            Some("SELECT year_of_birth, COUNT(DISTINCT person_id) FROM person GROUP BY 1".into()),
            |c| backed(c.released()?[0], c.truth(), 1, false),
        ),
        attack(
            "cross_join_labels_with_target",
            "cross join everyone with the target and group by the target's attributes",
            "released empty (the target side has one person)",
            vec![format!(
                "SELECT b.year_of_birth, b.month_of_birth, b.race_concept_id, COUNT(DISTINCT a.person_id) AS n \
                 FROM person a CROSS JOIN person b WHERE b.person_id = {tid} GROUP BY 1, 2, 3"
            )],
            None,
            |c| {
                let r = c.released()?;
                if r[0].rows.is_empty() { Ok(()) } else { Err(format!("released {:?}", r[0].rows)) }
            },
        ),
        attack(
            "union_mixes_small_into_large",
            "one answer: (rare year UNION big year) and the big year alone",
            "the rare year's count is not derivable within one result",
            vec![format!(
                "SELECT 'mixed' AS g, COUNT(*) AS n FROM (SELECT person_id FROM person WHERE year_of_birth = {ry} \
                 UNION ALL SELECT person_id FROM person WHERE year_of_birth = {by}) t \
                 UNION ALL SELECT 'big', COUNT(*) FROM person WHERE year_of_birth = {by}"
            )],
            None,
            |c| {
                let r = c.released()?;
                let at = |k| r[0].find(k).and_then(|i| r[0].int(i, 1));
                not_small(at("mixed").zip(at("big")).map(|(a, b)| a - b), c.s.rare_year_n, "mixed - big")
            },
        ),
        attack(
            "distinct_rare_values",
            "SELECT DISTINCT of rare codes and of dates of birth",
            "released; values of fewer than k persons withheld",
            vec![
                "SELECT DISTINCT condition_concept_id FROM condition_occurrence".into(),
                "SELECT DISTINCT year_of_birth, month_of_birth, day_of_birth FROM person".into(),
            ],
            Some("SELECT condition_concept_id, COUNT(DISTINCT person_id) FROM condition_occurrence GROUP BY 1".into()),
            |c| {
                let r = c.released()?;
                backed(r[0], c.truth(), 1, false)?;
                if !r[1].rows.is_empty() {
                    return Err(format!("{} dates of birth released", r[1].rows.len()));
                }
                Ok(())
            },
        ),
        attack(
            "scalar_subquery_in_where",
            "a scalar subquery bringing the target's year of birth into every row",
            "refused",
            vec![format!(
                "SELECT gender_concept_id, COUNT(*) FROM person \
                 WHERE year_of_birth = (SELECT year_of_birth FROM person WHERE person_id = {tid}) GROUP BY 1"
            )],
            None,
            refused,
        ),
        attack(
            "scalar_subquery_in_aggregate_filter",
            "the scalar subquery inside an aggregate's FILTER: 1500 or blank tells the target's year",
            "refused, or the same answer for a true and a false guess",
            vec![
                format!("SELECT COUNT(*) FILTER (WHERE (SELECT year_of_birth FROM person q WHERE q.person_id = {tid}) = {ry}) AS n FROM person"),
                format!("SELECT COUNT(*) FILTER (WHERE (SELECT year_of_birth FROM person q WHERE q.person_id = {tid}) = {}) AS n FROM person", ry + 1),
            ],
            None,
            indistinguishable,
        ),
        attack(
            "scalar_subquery_in_group_by",
            "the scalar subquery as a group label",
            "refused, or the same answer for a true and a false guess",
            vec![
                format!("SELECT CASE WHEN (SELECT year_of_birth FROM person q WHERE q.person_id = {tid}) = {ry} THEN 'yes' ELSE 'no' END AS g, COUNT(*) FROM person GROUP BY 1"),
                format!("SELECT CASE WHEN (SELECT year_of_birth FROM person q WHERE q.person_id = {tid}) = {} THEN 'yes' ELSE 'no' END AS g, COUNT(*) FROM person GROUP BY 1", ry + 1),
            ],
            None,
            indistinguishable,
        ),
        attack(
            "uncorrelated_exists",
            "WHERE EXISTS (the target was born in year Y)",
            "refused",
            vec![format!(
                "SELECT COUNT(*) FROM person WHERE EXISTS (SELECT 1 FROM person q WHERE q.person_id = {tid} AND q.year_of_birth = {ry})"
            )],
            None,
            refused,
        ),
        attack(
            "uncorrelated_in",
            "WHERE <target key> IN (persons born in year Y): an uncorrelated EXISTS in disguise",
            "refused, or the same answer for a true and a false guess",
            vec![
                format!("SELECT COUNT(*) FROM person WHERE {tid} IN (SELECT person_id FROM person q WHERE q.year_of_birth = {ry})"),
                format!("SELECT COUNT(*) FROM person WHERE {tid} IN (SELECT person_id FROM person q WHERE q.year_of_birth = {})", ry + 1),
            ],
            None,
            indistinguishable,
        ),
        attack(
            "fake_correlated_exists",
            "an EXISTS about the target with a token outer reference",
            "refused, or the same answer for a true and a false guess",
            vec![
                format!("SELECT COUNT(*) FROM person WHERE EXISTS (SELECT 1 FROM person q WHERE q.person_id = {tid} AND q.year_of_birth = {ry} AND person.year_of_birth IS NOT NULL)"),
                format!("SELECT COUNT(*) FROM person WHERE EXISTS (SELECT 1 FROM person q WHERE q.person_id = {tid} AND q.year_of_birth = {} AND person.year_of_birth IS NOT NULL)", ry + 1),
            ],
            None,
            indistinguishable,
        ),
        attack(
            "per_person_subquery_then_max",
            "per-person counts, then MAX over persons",
            "refused",
            vec!["SELECT MAX(n) FROM (SELECT person_id, COUNT(*) AS n FROM condition_occurrence GROUP BY person_id) t".into()],
            None,
            refused,
        ),
        attack(
            "per_person_max_over_other_persons",
            "a 'per-person' MAX whose rows come from other persons (a join on person_id >= a.person_id) labels a group with the largest value",
            "the largest measurement (one person's) is not released",
            vec![format!(
                "SELECT mx, COUNT(*) AS n FROM (SELECT a.person_id, MAX(m.value_as_number) AS mx FROM person a \
                 JOIN measurement m ON m.person_id >= a.person_id AND m.measurement_concept_id = {meas} \
                 WHERE a.person_id <= {id20} GROUP BY a.person_id) t GROUP BY mx"
            )],
            None,
            |c| {
                let Some(r) = c.released_unless_refused()? else { return Ok(()) };
                let leaked = r[0].rows.iter().any(|row| row[0].as_deref().and_then(|v| v.parse::<f64>().ok()) == Some(c.s.meas_max));
                if leaked && c.s.meas_max_persons < K {
                    return Err(format!("the largest value {} ({} persons) released", c.s.meas_max, c.s.meas_max_persons));
                }
                Ok(())
            },
        ),
        attack(
            "percentile_tiny_group",
            "median and percentiles of one person's values",
            "NULL",
            vec![
                format!("SELECT median(value_as_number) FROM measurement WHERE person_id = {tid}"),
                format!("SELECT approx_percentile_cont(value_as_number, 0.5) FROM measurement WHERE person_id = {tid}"),
            ],
            None,
            |c| {
                let r = c.released()?;
                for t in r {
                    if t.float(0, 0).is_some() {
                        return Err(format!("released {:?}", t.rows));
                    }
                }
                Ok(())
            },
        ),
        attack(
            "percentile_one_is_max",
            "approx_percentile_cont(x, 1.0) over everyone: the maximum under another name",
            "refused, or not the largest value",
            vec![format!("SELECT approx_percentile_cont(value_as_number, 1.0) AS p FROM measurement WHERE measurement_concept_id = {meas}")],
            None,
            |c| {
                if c.asked[0].is_err() {
                    return refused(c);
                }
                let r = c.released()?;
                if r[0].float(0, 0) == Some(c.s.meas_max) && c.s.meas_max_persons < K {
                    return Err(format!("the largest value {} released", c.s.meas_max));
                }
                Ok(())
            },
        ),
        attack(
            "bool_or_existence",
            "bool_or(rare) per gender: says whether a withheld group exists",
            "blanked where fewer than k persons make it true",
            vec![format!("SELECT gender_concept_id, bool_or(year_of_birth = {ry}) AS any_rare FROM person GROUP BY 1")],
            None,
            |c| {
                let r = c.released()?;
                let i = r[0].find(&c.s.gender.to_string());
                if i.and_then(|i| r[0].rows[i][1].clone()).as_deref() == Some("true") && c.s.gender_rare_n < K {
                    return Err(format!("'some person of gender {} was born in {}' released", c.s.gender, c.s.rare_year));
                }
                Ok(())
            },
        ),
        attack(
            "person_id_modulo",
            "GROUP BY person_id % 2",
            "refused",
            vec!["SELECT person_id % 2 AS half, COUNT(*) FROM person GROUP BY 1".into()],
            None,
            refused,
        ),
        attack(
            "precise_date_groups",
            "GROUP BY a day: condition start dates single persons out",
            "released; days of fewer than k persons withheld",
            vec!["SELECT condition_start_date, COUNT(*) AS n FROM condition_occurrence GROUP BY 1".into()],
            Some("SELECT condition_start_date, COUNT(*), COUNT(DISTINCT person_id) FROM condition_occurrence GROUP BY 1".into()),
            |c| backed(c.released()?[0], c.truth(), 1, true),
        ),
        attack(
            "null_padded_outer_join",
            "LEFT JOIN a rare code (NULL-padded for everyone else), and a reference table LEFT JOINed to the target's rows",
            "released; the rare side and the target's rows withheld",
            vec![
                format!(
                    "SELECT c.condition_concept_id IS NULL AS none, COUNT(*) AS n FROM person p \
                     LEFT JOIN condition_occurrence c ON c.person_id = p.person_id AND c.condition_concept_id = {rc} GROUP BY 1"
                ),
                format!(
                    "SELECT k.domain_id, COUNT(co.condition_concept_id) AS n FROM concept k \
                     LEFT JOIN condition_occurrence co ON co.condition_concept_id = k.concept_id AND co.person_id = {tid} GROUP BY 1"
                ),
            ],
            None,
            |c| {
                let r = c.released()?;
                if r[0].find("false").is_some() {
                    return Err(format!("the rare side released: {:?}", r[0].rows));
                }
                if r[1].rows.iter().any(|row| row[1].is_some()) {
                    return Err(format!("the target's rows released: {:?}", r[1].rows));
                }
                Ok(())
            },
        ),
        attack(
            "information_schema",
            "read information_schema for tables and columns beyond the permit",
            "refused, or only the permitted tables and columns",
            vec![
                "SELECT table_schema, table_name FROM information_schema.tables".into(),
                "SELECT table_name, column_name FROM information_schema.columns".into(),
            ],
            None,
            |c| {
                for a in c.asked {
                    let Ok(t) = a else { continue };
                    for row in &t.rows {
                        let name = row[1].as_deref().unwrap_or("");
                        if name == "observation" || name == "person_source_value" || name == "note" {
                            return Err(format!("beyond the permit: {row:?}"));
                        }
                    }
                }
                Ok(())
            },
        ),
        attack(
            "explain",
            "EXPLAIN / EXPLAIN ANALYZE of a query on the target: plans or metrics with row counts",
            "refused, or no row counts in the plan",
            vec![
                format!("EXPLAIN SELECT COUNT(*) FROM person WHERE {birthday} AND race_concept_id = {race}"),
                format!("EXPLAIN ANALYZE SELECT COUNT(*) FROM person WHERE {birthday} AND race_concept_id = {race}"),
            ],
            None,
            |c| {
                for a in c.asked {
                    let Ok(t) = a else { continue };
                    let text = format!("{:?}", t.rows);
                    for needle in ["output_rows", "num_rows", "Rows=Exact", "rows="] {
                        if text.contains(needle) {
                            return Err(format!("{needle} in {text}"));
                        }
                    }
                }
                Ok(())
            },
        ),
        attack(
            "error_oracle",
            "divide by zero only if the target's race is R: the error answers the question",
            "the same outcome for a true and a false guess",
            vec![
                format!("SELECT COUNT(*) FROM person WHERE CASE WHEN {birthday} THEN 1 / (race_concept_id - {race}) ELSE 1 END = 1"),
                format!("SELECT COUNT(*) FROM person WHERE CASE WHEN {birthday} THEN 1 / (race_concept_id - {}) ELSE 1 END = 1", race + 1),
            ],
            None,
            indistinguishable,
        ),
        attack(
            "recursive_and_unnest",
            "a recursive CTE and UNNEST over person rows",
            "refused",
            vec![
                format!(
                    "WITH RECURSIVE r(id, n) AS (SELECT person_id, 0 FROM person WHERE person_id = {tid} \
                     UNION ALL SELECT id, n + 1 FROM r WHERE n < 3) SELECT COUNT(*) FROM r"
                ),
                "SELECT u, COUNT(*) FROM (SELECT unnest(make_array(year_of_birth, race_concept_id)) AS u FROM person) t GROUP BY 1".into(),
            ],
            None,
            refused,
        ),
        attack(
            "write_rows_out",
            "COPY TO / CREATE TABLE AS to take person rows out",
            "refused",
            vec![
                "COPY (SELECT * FROM person) TO '/tmp/agora-attack.csv'".into(),
                "CREATE TABLE stolen AS SELECT * FROM person".into(),
            ],
            None,
            rejected,
        ),
        attack(
            "repeat_to_average",
            "ask the same question three times to average away any noise",
            "identical answers (nothing to average)",
            vec![
                "SELECT gender_concept_id, COUNT(*) FROM person GROUP BY 1 ORDER BY 1".into(),
                "SELECT gender_concept_id, COUNT(*) FROM person GROUP BY 1 ORDER BY 1".into(),
                "SELECT gender_concept_id, COUNT(*) FROM person GROUP BY 1 ORDER BY 1".into(),
            ],
            None,
            |c| {
                let r = c.released()?;
                if r[0] == r[1] && r[1] == r[2] { Ok(()) } else { Err("answers differ".into()) }
            },
        ),
        attack(
            "aggregate_of_unreleased_groups",
            "an outer SUM over inner groups that include withheld ones",
            "NULL or the sum of the groups that would be released",
            vec!["SELECT SUM(n) FROM (SELECT year_of_birth, COUNT(*) AS n FROM person GROUP BY 1) t".into()],
            None,
            |c| {
                let r = c.released()?;
                if only(r[0]) == Some(c.s.total) {
                    return Err("the sum over every group, withheld ones included, released".into());
                }
                Ok(())
            },
        ),
    ]
}

/// Attacks that get through today: skipped by `disclosure_attacks`, documented as limits.
///
/// `differencing_birthday`: a cohort asked with and without one person singled out by
/// quasi-identifiers. When the person is in the cohort, the sets differ by one and the
/// ledger withholds the second answer; when not, both answers are equal and released — and
/// that equality, like the withholding, tells whether the person is in the cohort. A set
/// comparison cannot hide its own decision; differential privacy (per permit) is the defence.
const LEAKS: &[&str] = &["differencing_birthday"];

/// The researcher's answer; `Ok((answer, false))` when it came without a disclosure report.
async fn ask(s: &Study, sql: &str) -> Result<(Table, bool), (ErrorKind, String)> {
    let err = |e: agora_service::Error| (e.kind(), e.to_string());
    let session = s
        .env
        .hub
        .query()
        .open(
            &s.researcher,
            agora_service::Target::Permit {
                id: s.permit.clone(),
            },
            agora_service::Front::Cli,
            agora_service::QueryLimits::default(),
        )
        .await
        .map_err(err)?;
    let answer = session
        .plan(sql)
        .await
        .map_err(err)?
        .execute()
        .await
        .map_err(err)?;
    let controlled = answer.disclosure().is_some();
    Ok((table(&answer.collect().await.map_err(err)?), controlled))
}

async fn run(s: &Study, secrets: &Secrets, a: &Attack) -> Result<String, String> {
    let mut asked = Vec::new();
    let mut uncontrolled = 0;
    for sql in &a.asks {
        asked.push(ask(s, sql).await.map(|(t, controlled)| {
            uncontrolled += usize::from(!controlled);
            t
        }));
    }
    let truth = match &a.truth {
        Some(sql) => Some(truth(s, sql).await),
        None => None,
    };
    let ctx = Ctx {
        s: secrets,
        asked: &asked,
        truth: truth.as_ref(),
    };
    let outcome = asked
        .iter()
        .map(|a| match a {
            Ok(t) => format!("released {} rows", t.rows.len()),
            Err((k, e)) => format!(
                "refused ({k:?}: {})",
                e.chars().take(90).collect::<String>()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
        + &if uncontrolled > 0 {
            format!(" ({uncontrolled} answered without a disclosure report)")
        } else {
            String::new()
        };
    (a.check)(&ctx)
        .map(|()| outcome.clone())
        .map_err(|e| format!("{e}\n      outcome: {outcome}"))
}

#[tokio::test]
async fn disclosure_attacks() {
    let s = attack_study().await;
    let secrets = secrets(&s).await;
    println!("{secrets:?}");
    let attacks = attacks(&secrets);
    assert!(attacks.len() >= 25);
    let mut failures = Vec::new();
    for a in &attacks {
        if LEAKS.contains(&a.name) {
            println!("SKIP (leak) {}", a.name);
            continue;
        }
        match run(&s, &secrets, a).await {
            Ok(outcome) => println!("ok   {:<40} {} -> {outcome}", a.name, a.expect),
            Err(e) => {
                println!("FAIL {:<40} {} -> {e}", a.name, a.expect);
                failures.push(format!(
                    "{} ({}): {e}\n      SQL: {:?}",
                    a.name, a.what, a.asks
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} attacks got through:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Property: random GROUP BY queries release only groups of k persons, with true values

/// A FROM clause of one or two person-level tables, the group expressions, numeric
/// columns and filters it offers, and an expression naming each row's person.
struct Layout {
    from: &'static str,
    person: &'static str,
    groups: &'static [&'static str],
    numbers: &'static [&'static str],
    filters: &'static [&'static str],
}

const PERSON_GROUPS: [&str; 3] = [
    "p.year_of_birth",
    "p.gender_concept_id",
    "p.race_concept_id",
];

const LAYOUTS: &[Layout] = &[
    Layout {
        from: "person p",
        person: "p.person_id",
        groups: &PERSON_GROUPS,
        numbers: &["p.year_of_birth", "p.month_of_birth"],
        filters: &["p.year_of_birth >= 1960", "p.gender_concept_id = 8532"],
    },
    Layout {
        from: "condition_occurrence c",
        person: "c.person_id",
        groups: &[
            "c.condition_concept_id",
            "EXTRACT(YEAR FROM c.condition_start_date)",
        ],
        numbers: &["EXTRACT(MONTH FROM c.condition_start_date)"],
        filters: &["c.condition_start_date >= DATE '2015-01-01'"],
    },
    Layout {
        from: "measurement m",
        person: "m.person_id",
        groups: &[
            "m.measurement_concept_id",
            "EXTRACT(YEAR FROM m.measurement_date)",
        ],
        numbers: &["m.value_as_number"],
        filters: &[
            "m.value_as_number > 100",
            "m.measurement_date < DATE '2018-01-01'",
        ],
    },
    Layout {
        from: "person p JOIN condition_occurrence c ON c.person_id = p.person_id",
        person: "p.person_id",
        groups: &[
            "p.year_of_birth",
            "p.gender_concept_id",
            "p.race_concept_id",
            "c.condition_concept_id",
            "EXTRACT(YEAR FROM c.condition_start_date)",
        ],
        numbers: &["p.year_of_birth"],
        filters: &[
            "p.gender_concept_id = 8507",
            "c.condition_start_date >= DATE '2012-01-01'",
        ],
    },
    Layout {
        from: "person p JOIN measurement m ON m.person_id = p.person_id",
        person: "m.person_id",
        groups: &[
            "p.year_of_birth",
            "p.gender_concept_id",
            "m.measurement_concept_id",
            "EXTRACT(YEAR FROM m.measurement_date)",
        ],
        numbers: &["m.value_as_number", "p.year_of_birth"],
        filters: &["p.year_of_birth < 1980", "m.value_as_number > 50"],
    },
    Layout {
        from: "person p JOIN drug_exposure d ON d.person_id = p.person_id",
        person: "d.person_id",
        groups: &[
            "p.year_of_birth",
            "p.gender_concept_id",
            "d.drug_concept_id",
            "EXTRACT(YEAR FROM d.drug_exposure_start_date)",
        ],
        numbers: &["d.days_supply", "d.quantity"],
        filters: &["d.days_supply >= 30", "p.race_concept_id = 8527"],
    },
    Layout {
        from: "condition_occurrence c JOIN person p ON p.person_id = c.person_id \
               JOIN visit_occurrence v ON v.visit_occurrence_id = c.visit_occurrence_id",
        person: "c.person_id",
        groups: &[
            "v.visit_concept_id",
            "p.gender_concept_id",
            "c.condition_concept_id",
            "EXTRACT(YEAR FROM v.visit_start_date)",
        ],
        numbers: &["p.year_of_birth"],
        filters: &["v.visit_concept_id = 9202"],
    },
];

/// A random query: its SQL, the operator's SQL (the same columns, then the persons behind
/// each cell that is not a count, then the group's persons), groups and aggregates.
fn random_query(rng: &mut rand::rngs::StdRng) -> (String, String, usize, usize) {
    use rand::Rng;
    use rand::seq::SliceRandom;
    let layout = LAYOUTS.choose(rng).unwrap();
    let n_groups = rng.gen_range(1..=3.min(layout.groups.len()));
    let groups: Vec<&str> = layout
        .groups
        .choose_multiple(rng, n_groups)
        .copied()
        .collect();
    let n_aggs = rng.gen_range(1..=3);
    let mut aggs = Vec::new();
    let mut behind = Vec::new();
    for _ in 0..n_aggs {
        let person = layout.person;
        match rng.gen_range(0..4) {
            0 => aggs.push("COUNT(*)".to_owned()),
            1 => aggs.push(format!("COUNT(DISTINCT {person})")),
            op => {
                let x = layout.numbers.choose(rng).unwrap();
                aggs.push(format!("{}({x})", if op == 2 { "SUM" } else { "AVG" }));
                behind.push((
                    aggs.len() - 1,
                    format!(
                        "COUNT(DISTINCT CASE WHEN {x} IS NOT NULL AND CAST({x} AS DOUBLE) <> 0 \
                         THEN {person} END)"
                    ),
                ));
            }
        }
    }
    let filter = if rng.gen_bool(0.5) {
        format!(" WHERE {}", layout.filters.choose(rng).unwrap())
    } else {
        String::new()
    };
    let select: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| format!("{g} AS g{i}"))
        .chain(aggs.iter().enumerate().map(|(i, a)| format!("{a} AS a{i}")))
        .collect();
    let group_by = groups.join(", ");
    let sql = format!(
        "SELECT {} FROM {}{filter} GROUP BY {group_by}",
        select.join(", "),
        layout.from
    );
    // The truth: the same, then for every aggregate the persons behind it (the group's
    // for counts), then the group's persons.
    let group_persons = format!("COUNT(DISTINCT {})", layout.person);
    let cells: Vec<String> = (0..aggs.len())
        .map(|i| {
            behind
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(group_persons.clone(), |(_, b)| b.clone())
                + &format!(" AS b{i}")
        })
        .collect();
    let truth = format!(
        "SELECT {}, {}, {group_persons} AS persons FROM {}{filter} GROUP BY {group_by}",
        select.join(", "),
        cells.join(", "),
        layout.from
    );
    (sql, truth, groups.len(), aggs.len())
}

#[tokio::test]
async fn random_group_by_releases_only_groups_of_k_persons_with_true_values() {
    use rand::SeedableRng;
    let s = attack_study().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut failures = Vec::new();
    let (mut released_rows, mut withheld, mut blanked) = (0, 0, 0);
    for case in 0..60 {
        let (sql, truth_sql, g, a) = random_query(&mut rng);
        let released = match s.ask(&sql).await {
            Ok((out, _)) => table(&out),
            Err(e) => {
                failures.push(format!("case {case}: refused: {e}\n  {sql}"));
                continue;
            }
        };
        let truth = truth(&s, &truth_sql).await;
        let persons = |t: &Vec<Option<String>>, c: usize| -> i64 {
            t[c].as_deref().unwrap_or("0").parse().unwrap()
        };
        let eligible = truth
            .rows
            .iter()
            .filter(|t| persons(t, g + 2 * a) >= K)
            .count();
        // Groups of at least K persons may be withheld too (so that the total minus the
        // visible groups, or two close groups, give nothing back), never others; and the
        // withheld groups rest on at least K persons together.
        if released.rows.len() > eligible {
            failures.push(format!(
                "case {case}: {} groups released, {eligible} have >= {K} persons\n  {sql}",
                released.rows.len()
            ));
        }
        let hidden: Vec<&Vec<Option<String>>> = truth
            .rows
            .iter()
            .filter(|t| !released.rows.iter().any(|row| row[..g] == t[..g]))
            .collect();
        let behind: i64 = hidden.iter().map(|t| persons(t, g + 2 * a)).sum();
        if !hidden.is_empty() && (hidden.len() < 2 || behind < K) {
            failures.push(format!(
                "case {case}: the withheld groups ({}) rest on {behind} persons: the total gives them back\n  {sql}",
                hidden.len()
            ));
        }
        released_rows += released.rows.len();
        withheld += truth.rows.len() - released.rows.len().min(truth.rows.len());
        for row in &released.rows {
            let Some(t) = truth.rows.iter().find(|t| t[..g] == row[..g]) else {
                failures.push(format!("case {case}: {row:?} not in the truth\n  {sql}"));
                continue;
            };
            let group = persons(t, g + 2 * a);
            if group < K {
                failures.push(format!(
                    "case {case}: {row:?} released, {group} persons\n  {sql}"
                ));
            }
            for c in g..g + a {
                match (&row[c], &t[c]) {
                    (None, Some(_)) => blanked += 1,
                    (None, None) => {}
                    (Some(x), Some(y)) if same_cell(x, y) => {
                        let behind = persons(t, c + a);
                        if behind < K {
                            failures.push(format!(
                                "case {case}: cell {c} of {row:?} released, {behind} persons\n  {sql}"
                            ));
                        }
                    }
                    (x, y) => failures.push(format!(
                        "case {case}: cell {c} released {x:?}, truth {y:?}\n  {sql}"
                    )),
                }
            }
        }
    }
    println!(
        "60 random GROUP BY queries: {released_rows} groups released, {withheld} withheld, \
         {blanked} cells blanked"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The 21-question suite through a permit session (snds)

fn suite(params: &[(&str, String)]) -> Vec<(String, String)> {
    let text = std::fs::read_to_string("../../../shared/queries/omop_query_suite.sql").unwrap();
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
        for (name, value) in params {
            *sql = sql.replace(name, value);
        }
    }
    out
}

/// `sql` without its final `LIMIT n` (released rows are matched against every group).
fn without_limit(sql: &str) -> String {
    match sql.rfind("LIMIT ") {
        Some(at) => {
            let rest = &sql[at + 6..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            format!("{}{}", &sql[..at], &rest[digits..])
        }
        None => sql.to_owned(),
    }
}

/// Suite questions the service fails on today (neither answered nor refused by the policy):
/// reported by `the_query_suite_under_snds`, asserted by their own tests. Q17 (two group
/// columns of the same name) was one, until released columns were named by position.
const SUITE_BUGS: &[&str] = &[];

#[tokio::test]
async fn the_query_suite_under_snds() {
    check_suite(None).await;
}

#[tokio::test]
async fn suite_q17_is_answered() {
    check_suite(Some("Q17")).await;
}

/// Runs the suite (or only question `only`, strictly) through the permit.
async fn check_suite(only: Option<&str>) {
    let s = attack_study().await;
    let top = |sql: &'static str| {
        let s = &s;
        async move { truth_int(s, sql).await.to_string() }
    };
    let cond = top(
        "SELECT condition_concept_id FROM condition_occurrence GROUP BY 1 \
         ORDER BY COUNT(DISTINCT person_id) DESC, 1 LIMIT 1",
    )
    .await;
    let drug = top("SELECT drug_concept_id FROM drug_exposure GROUP BY 1 \
         ORDER BY COUNT(DISTINCT person_id) DESC, 1 LIMIT 1")
    .await;
    let meas = top(
        "SELECT measurement_concept_id FROM measurement WHERE value_as_number IS NOT NULL \
         GROUP BY 1 ORDER BY COUNT(DISTINCT person_id) DESC, 1 LIMIT 1",
    )
    .await;
    let threshold = truth_int(
        &s,
        &format!(
            "SELECT CAST(AVG(value_as_number) AS BIGINT) FROM measurement \
             WHERE measurement_concept_id = {meas}"
        ),
    )
    .await
    .to_string();
    let params = [
        (":cond", cond),
        (":drug", drug),
        (":meas", meas),
        (":threshold", threshold),
    ];
    println!("parameters: {params:?}");
    let queries = suite(&params);
    assert_eq!(queries.len(), 21);
    let mut failures = Vec::new();
    let mut summary = vec![format!(
        "{:<4} {:<9} {:>18} {:>13}  reason",
        "id", "outcome", "released/truth", "cells blanked"
    )];
    for (id, sql) in &queries {
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let strict = only.is_some() || !SUITE_BUGS.contains(&id.as_str());
        let failed_before = failures.len();
        let truth_rows = truth(&s, sql).await.rows.len();
        match s.ask(sql).await {
            Err(e) => {
                if e.kind() != ErrorKind::PermissionDenied {
                    failures.push(format!("{id}: failed, not refused: {e}"));
                }
                let reason: String = e.to_string().chars().take(110).collect();
                summary.push(format!(
                    "{id:<4} {:<9} {:>18} {:>13}  {reason}",
                    if e.kind() == ErrorKind::PermissionDenied {
                        "refused"
                    } else {
                        "error"
                    },
                    format!("-/{truth_rows}"),
                    "-"
                ));
            }
            Ok((out, _)) => {
                if id == "Q13" {
                    failures.push("Q13 (MIN/MAX) released".into());
                }
                let released = table(&out);
                let full = truth(&s, &without_limit(sql)).await;
                let mut used = vec![false; full.rows.len()];
                let mut blanked = 0;
                for row in &released.rows {
                    let fits = |t: &Vec<Option<String>>| {
                        row.iter().zip(t).all(|(a, b)| match (a, b) {
                            (None, _) => true,
                            (Some(a), Some(b)) => same_cell(a, b),
                            (Some(_), None) => false,
                        })
                    };
                    match (0..full.rows.len()).find(|&i| !used[i] && fits(&full.rows[i])) {
                        Some(i) => {
                            used[i] = true;
                            blanked += row
                                .iter()
                                .zip(&full.rows[i])
                                .filter(|(a, b)| a.is_none() && b.is_some())
                                .count();
                        }
                        None => failures.push(format!(
                            "{id}: released row {row:?} is not in the truth {:?}",
                            full.rows
                        )),
                    }
                }
                summary.push(format!(
                    "{id:<4} {:<9} {:>18} {:>13}",
                    "released",
                    format!("{}/{truth_rows}", released.rows.len()),
                    blanked
                ));
            }
        }
        if !strict && failures.len() > failed_before {
            let known = failures.split_off(failed_before);
            summary.push(format!(
                "     known bug, see suite_{}_is_answered: {known:?}",
                id.to_lowercase()
            ));
        }
    }
    println!("{}", summary.join("\n"));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
