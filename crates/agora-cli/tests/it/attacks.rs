//! Issue 14, item 5: the same attacks through every front — HTTP, Flight SQL (the real ADBC
//! driver) and the PostgreSQL protocol (psycopg) — each refused with the right class or
//! answered with permitted data only, and recorded in the access log.
//!
//! One hub and one `agora serve` answer every stateless attempt: each front runs the whole
//! list once (one Python process per front), and each attempt is its own `#[test]` reading
//! the shared outcomes, so a failure names the attempt and the front. Attacks that change
//! the hub (a permit revoked or expiring, a token revoked while connections are open) and
//! the per-user limits have tests of their own, each with its own hub.
//!
//! Flight SQL and PostgreSQL need `AGORA_TEST_PYTHON` (`ci/clients.sh` prints it); without
//! it only HTTP is attacked, and the tests say so.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::support::{Hub, Permit, Server, researcher_permit};

/// The snds profile's threshold: a released count rests on at least this many persons.
const K: i64 = 10;
const PERSONS: usize = 300;
/// The persons with the smallest hub keys opt out before the server starts.
const OPTED_OUT: usize = 30;
/// A permit id of the right shape that no permit has.
const UNKNOWN_PERMIT: &str = "pmt_0123456789abcdef0123456789abcdef";

/// Ray's permit: two tables, three columns each. Everything else of the release is outside.
fn rays_grant() -> Value {
    json!({"datasets": [{"dataset": "demo", "release": "latest_at_activation", "tables": [
        {"table": "person", "columns": ["person_id", "gender_concept_id", "year_of_birth"]},
        {"table": "condition_occurrence",
         "columns": ["person_id", "condition_concept_id", "condition_start_date"]}]}]})
}

/// Another project's permit, with a column and a table Ray's lacks.
fn sams_grant() -> Value {
    json!({"datasets": [{"dataset": "demo", "release": "latest_at_activation", "tables": [
        {"table": "person", "columns": ["person_id", "year_of_birth", "race_concept_id"]},
        {"table": "visit_occurrence", "columns": ["person_id", "visit_concept_id"]}]}]})
}

/// Names outside Ray's permit: no answer to him may hold them (a message may only echo
/// what his statement said).
const UNPERMITTED: &[&str] = &[
    "observation",
    "visit_occurrence",
    "visit_concept_id",
    "drug_exposure",
    "death",
    "measurement",
    "procedure_occurrence",
    "race_concept_id",
    "ethnicity_concept_id",
    "month_of_birth",
    "day_of_birth",
    "birth_datetime",
    "condition_end_date",
    "condition_type_concept_id",
];

// ---------------------------------------------------------------------------------------
// Attempts

/// Whose credential and which permit an attempt uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Ray, on his own permit.
    Researcher,
    /// Ray's token on the other project's permit.
    OtherProjectsPermit,
    /// The other project's researcher's token on Ray's permit.
    OtherProjectsToken,
    /// Ray's token on a permit id nobody has.
    UnknownPermit,
    /// A token the hub never issued, on Ray's permit.
    ForgedToken,
}

/// How a refusal is classed; each front has its own codes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The statement is not accepted (syntax, unknown object, read-only workspace).
    Invalid,
    /// The permit or its output policy refuses it.
    Denied,
    /// A limit of the query (rows, time, memory, value size).
    Limit,
    /// No permit usable by the caller (at connection, for PostgreSQL).
    NoPermit,
    /// The credential is not accepted.
    Unauthenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Front {
    Http,
    Flight,
    Pg,
}

impl Front {
    /// The front's name in the access log.
    fn logged_as(self) -> &'static str {
        match self {
            Front::Http => "http",
            Front::Flight => "flight_sql",
            Front::Pg => "postgres",
        }
    }

    /// Whether `code` is one this front gives for `class`.
    fn codes(self, class: Class, code: &str) -> bool {
        let accepted: &[&str] = match (self, class) {
            (Front::Http, Class::Invalid) => &["400"],
            (Front::Http, Class::Denied | Class::NoPermit) => &["403"],
            (Front::Http, Class::Limit) => &["422"],
            (Front::Http, Class::Unauthenticated) => &["401"],
            (Front::Flight, Class::Invalid) => &["InvalidArgument"],
            (Front::Flight, Class::Denied | Class::NoPermit) => &["PermissionDenied"],
            (Front::Flight, Class::Limit) => &["ResourceExhausted"],
            (Front::Flight, Class::Unauthenticated) => &["Unauthenticated"],
            // The service's SQLSTATEs; 42704 is the front's own answer to SHOW of an
            // unknown setting.
            (Front::Pg, Class::Invalid) => &[
                "42601", "22023", "42704", "0A000", "25006", "42P01", "42703",
            ],
            (Front::Pg, Class::Denied) => &["42501"],
            (Front::Pg, Class::Limit) => &["54000", "54001", "53200", "57014"],
            // Refused when connecting: libpq gives the message, not the SQLSTATE.
            (Front::Pg, Class::NoPermit | Class::Unauthenticated) => &["connection"],
        };
        accepted.contains(&code)
    }
}

/// A refusal, or an answer as columns and rows of JSON values.
#[derive(Debug, Clone)]
enum Outcome {
    Answered {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    },
    Refused {
        code: String,
        message: String,
    },
}

impl Outcome {
    /// From a client's JSON line: `{"columns", "rows"}` or `{"code", "message"}`.
    fn from_json(v: &Value) -> Self {
        match v.get("code") {
            Some(code) => Outcome::Refused {
                code: code.as_str().unwrap_or_default().to_owned(),
                message: v["message"].as_str().unwrap_or_default().to_owned(),
            },
            None => Outcome::Answered {
                columns: serde_json::from_value(v["columns"].clone()).unwrap(),
                rows: serde_json::from_value(v["rows"].clone()).unwrap(),
            },
        }
    }

    /// The one value of a one-cell answer (`None` when NULL or withheld).
    fn single_int(&self) -> Result<Option<i64>, String> {
        match self {
            Outcome::Answered { rows, .. } if rows.is_empty() => Ok(None),
            Outcome::Answered { rows, .. } if rows.len() == 1 && rows[0].len() == 1 => {
                Ok(rows[0][0].as_i64())
            }
            other => Err(format!("expected one cell, got {other:?}")),
        }
    }
}

/// What a front must do with an attempt.
enum Expect {
    /// Refused with this class.
    Refused(Class),
    /// Refused with this class and the very message of attempt `.1` (a missing object) once
    /// the names `.2` are swapped: nothing tells the object exists.
    RefusedLike(Class, &'static str, [&'static str; 2]),
    /// Answered, and the check holds on the answer.
    Answered(fn(&Facts, &Outcome) -> Result<(), String>),
    /// Answered or refused (fronts differ, e.g. catalogues); the check holds either way.
    Either(fn(&Facts, &Outcome) -> Result<(), String>),
}

struct Attempt {
    name: &'static str,
    sql: String,
    who: Who,
    expect: Expect,
    /// The PostgreSQL front answers it itself (catalogue queries, `SHOW`): it never
    /// reaches the service, so it is not in the access log.
    pg_local: bool,
}

fn attempt(name: &'static str, sql: impl Into<String>, expect: Expect) -> Attempt {
    Attempt {
        name,
        sql: sql.into(),
        who: Who::Researcher,
        expect,
        pg_local: false,
    }
}

/// A catalogue query: the PostgreSQL front answers it from the permit, the service from
/// its own catalogue; either way only permitted names.
fn catalogue(
    name: &'static str,
    sql: &str,
    check: fn(&Facts, &Outcome) -> Result<(), String>,
) -> Attempt {
    Attempt {
        pg_local: true,
        ..attempt(name, sql, Expect::Either(check))
    }
}

fn as_who(who: Who, a: Attempt) -> Attempt {
    Attempt { who, ..a }
}

/// What the checks compare answers with.
struct Facts {
    data_dir: String,
    /// Every person's hub key (the lake's `person_id`).
    hub_keys: Vec<i64>,
    /// The hub keys of the persons who opted out.
    opted_out: Vec<i64>,
    /// Persons who did not opt out.
    persons: i64,
    /// Persons with a condition who did not opt out.
    persons_with_conditions: i64,
    /// Each year of birth of the release, opted-out persons' years first.
    years: Vec<i64>,
    permits: Permits,
}

/// Ray's permit and the other project's (Sam's), with their researchers' tokens.
struct Permits {
    ray: Permit,
    sam: Permit,
}

/// Nothing beyond the checks of every outcome (no unpermitted name, no hub key, no path).
fn nothing_more(_: &Facts, _: &Outcome) -> Result<(), String> {
    Ok(())
}

fn count_is_persons(f: &Facts, out: &Outcome) -> Result<(), String> {
    match out.single_int()? {
        Some(n) if n == f.persons => Ok(()),
        n => Err(format!("{n:?} persons, the permit sees {}", f.persons)),
    }
}

/// Zero or withheld: the statement selects no person of the permit.
fn nobody(_: &Facts, out: &Outcome) -> Result<(), String> {
    match out.single_int()? {
        None | Some(0) => Ok(()),
        Some(n) => Err(format!("{n} persons selected")),
    }
}

/// A `CASE` over a count is computed on the released count: the `ELSE 1` (or nothing) for a
/// withheld one, never the `THEN` branch's error, which would say the true count.
fn else_branch_only(_: &Facts, out: &Outcome) -> Result<(), String> {
    match out {
        Outcome::Refused { .. } => Ok(()),
        _ => match out.single_int()? {
            None | Some(1) => Ok(()),
            Some(n) => Err(format!("answered {n}")),
        },
    }
}

fn every_count_backed_by_k(_: &Facts, out: &Outcome) -> Result<(), String> {
    let Outcome::Answered { rows, .. } = out else {
        return Err(format!("refused: {out:?}"));
    };
    for row in rows {
        if let Some(n) = row.last().and_then(Value::as_i64)
            && n < K
        {
            return Err(format!("a count of {n} released: {row:?}"));
        }
    }
    Ok(())
}

/// The attempts every front makes, in order.
fn attempts(f: &Facts) -> Vec<Attempt> {
    use Class::*;
    use Expect::*;
    let keys = |keys: &[i64]| {
        keys.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let opted_out = keys(&f.opted_out);
    let visible = keys(&f.hub_keys[OPTED_OUT..OPTED_OUT + 2 * K as usize]);
    let lake = format!("{}/lake", f.data_dir);
    let copied = format!("{}/copied.csv", f.data_dir);
    vec![
        // A column outside the permit, every way of naming it.
        attempt(
            "column_outside_permit",
            "SELECT COUNT(*) FROM person WHERE race_concept_id = 8527",
            RefusedLike(
                Invalid,
                "column_that_does_not_exist",
                ["race_concept_id", "rice_concept_id"],
            ),
        ),
        attempt(
            "column_that_does_not_exist",
            "SELECT COUNT(*) FROM person WHERE rice_concept_id = 8527",
            Refused(Invalid),
        ),
        attempt("select_star_rows", "SELECT * FROM person", Refused(Denied)),
        attempt(
            "select_star_in_subquery_counts_permitted_persons",
            "SELECT COUNT(*) AS n FROM (SELECT * FROM person) p",
            Answered(count_is_persons),
        ),
        attempt(
            "select_star_in_cte_groups_permitted_columns",
            "WITH p AS (SELECT * FROM person) SELECT gender_concept_id, COUNT(*) AS n FROM p GROUP BY 1",
            Answered(every_count_backed_by_k),
        ),
        attempt(
            "column_outside_permit_in_cte",
            "WITH p AS (SELECT race_concept_id FROM person) SELECT COUNT(*) FROM p",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_in_subquery",
            "SELECT COUNT(*) FROM person WHERE person_id IN (SELECT person_id FROM person WHERE month_of_birth = 1)",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_in_union",
            "SELECT COUNT(*) FROM (SELECT year_of_birth AS v FROM person UNION ALL SELECT race_concept_id FROM person) u",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_in_join_condition",
            "SELECT COUNT(*) FROM person p JOIN condition_occurrence c ON p.person_id = c.person_id AND c.condition_end_date IS NULL",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_fully_qualified",
            "SELECT COUNT(DISTINCT demo.person.race_concept_id) FROM demo.person",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_quoted",
            "SELECT COUNT(*) FROM person WHERE \"month_of_birth\" = 1",
            Refused(Invalid),
        ),
        attempt(
            "column_outside_permit_through_a_view",
            "CREATE VIEW v AS SELECT race_concept_id FROM person",
            Refused(Invalid),
        ),
        // A table outside the permit.
        attempt(
            "table_outside_permit",
            "SELECT COUNT(*) FROM observation",
            RefusedLike(
                Invalid,
                "table_that_does_not_exist",
                ["observation", "observatory"],
            ),
        ),
        attempt(
            "table_that_does_not_exist",
            "SELECT COUNT(*) FROM observatory",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_qualified",
            "SELECT COUNT(*) FROM demo.visit_occurrence",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_full_path",
            "SELECT COUNT(*) FROM agora.demo.drug_exposure",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_in_join",
            "SELECT COUNT(*) FROM person p JOIN drug_exposure d ON p.person_id = d.person_id",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_in_subquery",
            "SELECT COUNT(*) FROM person WHERE person_id IN (SELECT person_id FROM death)",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_in_union",
            "SELECT COUNT(*) FROM (SELECT person_id FROM person UNION ALL SELECT person_id FROM visit_occurrence) u",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_in_cte",
            "WITH d AS (SELECT * FROM death) SELECT COUNT(*) FROM d",
            Refused(Invalid),
        ),
        attempt(
            "table_outside_permit_through_a_view",
            "CREATE VIEW v AS SELECT * FROM measurement",
            Refused(Invalid),
        ),
        // Catalogues.
        catalogue(
            "information_schema_tables",
            "SELECT table_schema, table_name FROM information_schema.tables",
            nothing_more,
        ),
        catalogue(
            "information_schema_columns",
            "SELECT table_name, column_name FROM information_schema.columns",
            |_, out| {
                let permitted = [
                    "person_id",
                    "gender_concept_id",
                    "year_of_birth",
                    "condition_concept_id",
                    "condition_start_date",
                ];
                match out {
                    Outcome::Answered { rows, .. } => rows
                        .iter()
                        .filter(|r| r[0] == "person" || r[0] == "condition_occurrence")
                        .find(|r| !permitted.iter().any(|c| r[1] == *c))
                        .map_or(Ok(()), |r| {
                            Err(format!("a column outside the permit: {r:?}"))
                        }),
                    Outcome::Refused { .. } => Ok(()),
                }
            },
        ),
        catalogue(
            "information_schema_columns_of_unpermitted_table",
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'observation'",
            |_, out| match out {
                Outcome::Answered { rows, .. } if !rows.is_empty() => {
                    Err(format!("columns listed: {rows:?}"))
                }
                _ => Ok(()),
            },
        ),
        catalogue(
            "information_schema_view_definitions",
            "SELECT table_name, definition FROM information_schema.views",
            |_, out| match out {
                Outcome::Answered { rows, .. } if rows.iter().any(|r| !r[1].is_null()) => {
                    Err(format!("a policy table's definition: {rows:?}"))
                }
                _ => Ok(()),
            },
        ),
        catalogue(
            "pg_catalog_classes",
            "SELECT relname FROM pg_catalog.pg_class",
            nothing_more,
        ),
        catalogue(
            "pg_catalog_attributes",
            "SELECT attname FROM pg_catalog.pg_attribute",
            nothing_more,
        ),
        catalogue("show_tables", "SHOW TABLES", nothing_more),
        catalogue(
            "show_columns_of_unpermitted_table",
            "SHOW COLUMNS FROM observation",
            |_, out| match out {
                Outcome::Answered { rows, .. } if !rows.is_empty() => {
                    Err(format!("columns listed: {rows:?}"))
                }
                _ => Ok(()),
            },
        ),
        catalogue(
            "engine_settings_with_paths",
            "SELECT name, value FROM information_schema.df_settings \
             WHERE name LIKE '%dir%' OR name LIKE '%path%' OR name LIKE '%location%'",
            nothing_more,
        ),
        // Plans and errors as side channels.
        attempt(
            "explain_plan",
            "EXPLAIN SELECT COUNT(*) FROM person",
            Either(|f, out| {
                // A count the planner took from the files' statistics would be the
                // release's, opted-out persons included.
                let total = format!("{} as count", f.hub_keys.len());
                match out {
                    Outcome::Answered { rows, .. } if format!("{rows:?}").contains(&total) => {
                        Err("the plan shows the release's row count".into())
                    }
                    _ => Ok(()),
                }
            }),
        ),
        attempt(
            "explain_analyze_counts_hidden_rows",
            "EXPLAIN ANALYZE SELECT COUNT(*) FROM person",
            Refused(Invalid),
        ),
        attempt(
            "explain_verbose",
            "EXPLAIN VERBOSE SELECT COUNT(*) FROM person",
            Refused(Invalid),
        ),
        attempt(
            "cast_error_carrying_a_value",
            "SELECT COUNT(*) AS n FROM person WHERE CAST(CAST(year_of_birth AS VARCHAR) || 'x' AS INT) > 0",
            Either(|f, out| match out {
                Outcome::Refused { message, .. } => f
                    .years
                    .iter()
                    .find(|y| message.contains(&y.to_string()))
                    .map_or(Ok(()), |y| Err(format!("the error shows the value {y}"))),
                answered => nobody(f, answered),
            }),
        ),
        attempt(
            "division_by_zero_on_an_opted_out_persons_year",
            format!(
                "SELECT COUNT(*) AS n FROM person WHERE 100000 / (year_of_birth - {}) > -1000000",
                f.years[0]
            ),
            Either(|_, out| match out {
                Outcome::Refused { message, .. }
                    if message.to_lowercase().contains("divide")
                        || message.to_lowercase().contains("division") =>
                {
                    Err(format!("a data error tells the value exists: {message}"))
                }
                _ => Ok(()),
            }),
        ),
        attempt(
            "cast_error_on_a_withheld_count",
            "SELECT CASE WHEN COUNT(*) = 4 THEN CAST(CAST(COUNT(*) AS VARCHAR) || 'x' AS INT) ELSE 1 END AS x \
             FROM person WHERE year_of_birth = 1976",
            Either(else_branch_only),
        ),
        attempt(
            "small_groups",
            "SELECT year_of_birth / 10 AS decade, gender_concept_id, COUNT(*) AS n FROM person GROUP BY 1, 2",
            Answered(every_count_backed_by_k),
        ),
        attempt(
            "per_person_rows",
            "SELECT person_id, year_of_birth FROM person",
            Refused(Denied),
        ),
        // Opted-out persons.
        attempt(
            "opted_out_persons_not_counted",
            "SELECT COUNT(*) AS n FROM person",
            Answered(count_is_persons),
        ),
        attempt(
            "opted_out_persons_by_hub_key",
            format!("SELECT COUNT(*) AS n FROM person WHERE person_id IN ({opted_out})"),
            Answered(nobody),
        ),
        attempt(
            "opted_out_persons_in_joined_events",
            "SELECT COUNT(DISTINCT c.person_id) AS n FROM condition_occurrence c JOIN person p ON c.person_id = p.person_id",
            Answered(|f, out| match out.single_int()? {
                // Withheld is safe (the differencing defence may hold it back).
                None => Ok(()),
                Some(n) if n == f.persons_with_conditions => Ok(()),
                Some(n) => Err(format!(
                    "{n} persons with conditions; {} did not opt out",
                    f.persons_with_conditions
                )),
            }),
        ),
        // Raw hub keys.
        attempt(
            "hub_key_minimum",
            "SELECT MIN(person_id) AS k FROM person",
            Refused(Denied),
        ),
        attempt(
            "hub_key_sum",
            "SELECT SUM(person_id) AS s FROM person",
            Refused(Denied),
        ),
        attempt(
            "hub_key_per_person_groups",
            "SELECT person_id, COUNT(*) AS n FROM condition_occurrence GROUP BY person_id",
            Refused(Denied),
        ),
        attempt(
            "hub_keys_address_nobody",
            format!("SELECT COUNT(*) AS n FROM person WHERE person_id IN ({visible})"),
            Answered(nobody),
        ),
        // Another project's data and credentials.
        as_who(
            Who::OtherProjectsPermit,
            attempt(
                "another_projects_permit",
                "SELECT COUNT(*) FROM visit_occurrence",
                RefusedLike(NoPermit, "permit_that_does_not_exist", ["", ""]),
            ),
        ),
        as_who(
            Who::OtherProjectsToken,
            attempt(
                "another_projects_token",
                "SELECT COUNT(*) FROM person",
                RefusedLike(NoPermit, "permit_that_does_not_exist", ["", ""]),
            ),
        ),
        as_who(
            Who::UnknownPermit,
            attempt(
                "permit_that_does_not_exist",
                "SELECT COUNT(*) FROM person",
                Refused(NoPermit),
            ),
        ),
        as_who(
            Who::ForgedToken,
            attempt(
                "forged_token",
                "SELECT COUNT(*) FROM person",
                Refused(Unauthenticated),
            ),
        ),
        // Files and URLs.
        attempt(
            "file_path_as_table",
            "SELECT COUNT(*) FROM '/etc/passwd'",
            Refused(Invalid),
        ),
        attempt(
            "lake_directory_as_table",
            format!("SELECT COUNT(*) FROM '{lake}'"),
            Refused(Invalid),
        ),
        attempt(
            "url_as_table",
            "SELECT COUNT(*) FROM 'https://example.com/person.parquet'",
            Refused(Invalid),
        ),
        attempt(
            "file_reading_function",
            "SELECT * FROM read_csv('/etc/passwd')",
            Refused(Invalid),
        ),
        attempt(
            "external_table",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            Refused(Invalid),
        ),
        attempt(
            "copy_to_a_file",
            format!("COPY (SELECT COUNT(*) FROM person) TO '{copied}'"),
            Refused(Invalid),
        ),
        // DDL, DML, COPY, SET.
        attempt(
            "create_table_as",
            "CREATE TABLE t AS SELECT * FROM person",
            Refused(Invalid),
        ),
        attempt("drop_table", "DROP TABLE person", Refused(Invalid)),
        attempt(
            "insert",
            "INSERT INTO person (person_id) VALUES (1)",
            Refused(Invalid),
        ),
        attempt(
            "update",
            "UPDATE person SET year_of_birth = 1900",
            Refused(Invalid),
        ),
        attempt("delete", "DELETE FROM person", Refused(Invalid)),
        attempt("copy_to_stdout", "COPY person TO STDOUT", Refused(Invalid)),
        attempt(
            "set_engine_option",
            "SET datafusion.execution.batch_size = 1",
            Refused(Invalid),
        ),
        attempt(
            "set_session_setting",
            "SET work_mem = '1GB'",
            Refused(Invalid),
        ),
        // Limits of the shared server: 50 rows, 5 s, 16 MiB, values of 2 MiB.
        attempt(
            "value_size_limit",
            "SELECT COUNT(*) FROM person WHERE length(repeat('x', 2000000000)) > year_of_birth",
            Refused(Limit),
        ),
        attempt(
            "row_limit",
            "SELECT * FROM generate_series(1, 1000)",
            Refused(Limit),
        ),
        attempt(
            "time_limit",
            "SELECT COUNT(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
            Refused(Limit),
        ),
        attempt(
            "memory_limit",
            "SELECT array_length(array_agg(a.value * 10000 + b.value), 1) AS n \
             FROM generate_series(1, 3000) a, generate_series(1, 3000) b",
            Refused(Limit),
        ),
    ]
}

/// One `#[test]` per attempt, by name.
macro_rules! attack_tests {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        const TESTED: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                check(stringify!($name));
            }
        )*
    };
}

attack_tests!(
    column_outside_permit,
    column_that_does_not_exist,
    select_star_rows,
    select_star_in_subquery_counts_permitted_persons,
    select_star_in_cte_groups_permitted_columns,
    column_outside_permit_in_cte,
    column_outside_permit_in_subquery,
    column_outside_permit_in_union,
    column_outside_permit_in_join_condition,
    column_outside_permit_fully_qualified,
    column_outside_permit_quoted,
    column_outside_permit_through_a_view,
    table_outside_permit,
    table_that_does_not_exist,
    table_outside_permit_qualified,
    table_outside_permit_full_path,
    table_outside_permit_in_join,
    table_outside_permit_in_subquery,
    table_outside_permit_in_union,
    table_outside_permit_in_cte,
    table_outside_permit_through_a_view,
    information_schema_tables,
    information_schema_columns,
    information_schema_columns_of_unpermitted_table,
    information_schema_view_definitions,
    pg_catalog_classes,
    pg_catalog_attributes,
    show_tables,
    show_columns_of_unpermitted_table,
    engine_settings_with_paths,
    explain_plan,
    explain_analyze_counts_hidden_rows,
    explain_verbose,
    cast_error_carrying_a_value,
    division_by_zero_on_an_opted_out_persons_year,
    cast_error_on_a_withheld_count,
    small_groups,
    per_person_rows,
    opted_out_persons_not_counted,
    opted_out_persons_by_hub_key,
    opted_out_persons_in_joined_events,
    hub_key_minimum,
    hub_key_sum,
    hub_key_per_person_groups,
    hub_keys_address_nobody,
    another_projects_permit,
    another_projects_token,
    permit_that_does_not_exist,
    forged_token,
    file_path_as_table,
    lake_directory_as_table,
    url_as_table,
    file_reading_function,
    external_table,
    copy_to_a_file,
    create_table_as,
    drop_table,
    insert,
    update,
    delete,
    copy_to_stdout,
    set_engine_option,
    set_session_setting,
    value_size_limit,
    row_limit,
    time_limit,
    memory_limit,
);

#[test]
fn every_attempt_has_its_test() {
    let world = world();
    let names: Vec<&str> = attempts(&world.facts).iter().map(|a| a.name).collect();
    assert_eq!(names, TESTED);
    assert!(names.len() >= 40);
}

// ---------------------------------------------------------------------------------------
// The shared hub and its outcomes

struct World {
    facts: Facts,
    outcomes: HashMap<(Front, String), Outcome>,
    /// The access log once every front is done.
    events: Vec<agora_govern::AccessEvent>,
    /// Whether `COPY ... TO` left a file.
    copied: bool,
}

impl World {
    fn outcome(&self, front: Front, name: &str) -> Option<&Outcome> {
        self.outcomes.get(&(front, name.to_owned()))
    }
}

fn python() -> Option<String> {
    std::env::var("AGORA_TEST_PYTHON")
        .ok()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
}

/// A hub with a generated release of `persons` persons, Ray's and Sam's permits.
fn hub_with_permits(persons: usize) -> (Hub, Permit, Permit) {
    let hub = Hub::init();
    let extract = hub.data_dir().join("samples/extract");
    hub.ok(&[
        "generate",
        "omop",
        "--persons",
        &persons.to_string(),
        "--out",
        extract.to_str().unwrap(),
    ]);
    hub.ingest("demo", &extract);
    let ray = researcher_permit(&hub, "ray", &rays_grant());
    let sam = researcher_permit(&hub, "sam", &sams_grant());
    (hub, ray, sam)
}

fn ints(tsv: &str) -> Vec<i64> {
    tsv.lines()
        .skip(1)
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// The shared hub's outcomes, computed by the first test that asks (once, even if it fails).
fn world() -> &'static World {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    let world = WORLD.get_or_init(|| {
        std::panic::catch_unwind(build_world).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
    });
    match world {
        Ok(world) => world,
        Err(e) => panic!("the shared hub failed: {e}"),
    }
}

fn build_world() -> World {
    {
        let (hub, ray, sam) = hub_with_permits(PERSONS);
        let hub_keys = ints(&hub.sql_tsv("demo", "SELECT person_id FROM person ORDER BY 1"));
        let opted_out = hub_keys[..OPTED_OUT].to_vec();
        hub.opt_out(&opted_out);
        let list = opted_out
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let persons_with_conditions = ints(&hub.sql_tsv(
            "demo",
            &format!(
                "SELECT COUNT(DISTINCT person_id) FROM condition_occurrence WHERE person_id NOT IN ({list})"
            ),
        ))[0];
        // The opted-out persons' years of birth first.
        let years = ints(&hub.sql_tsv(
            "demo",
            &format!(
                "SELECT year_of_birth FROM person GROUP BY 1 ORDER BY MAX(CASE WHEN person_id IN ({list}) THEN 1 ELSE 0 END) DESC, 1"
            ),
        ));
        let facts = Facts {
            data_dir: hub.data_dir().display().to_string(),
            persons: (hub_keys.len() - OPTED_OUT) as i64,
            hub_keys,
            opted_out,
            persons_with_conditions,
            years,
            permits: Permits { ray, sam },
        };
        let server = Server::start_with(
            &hub,
            &[
                "--flight-listen",
                "127.0.0.1:0",
                "--pg-listen",
                "127.0.0.1:0",
                "--max-rows",
                "50",
                "--timeout-s",
                "5",
                "--memory-mb",
                "16",
            ],
        );
        let sent: Vec<Value> = attempts(&facts)
            .iter()
            .map(|a| sent(&facts.permits, a.name, &a.sql, a.who))
            .collect();
        let mut outcomes = HashMap::new();
        let python = python();
        std::thread::scope(|scope| {
            let clients: Vec<_> = match &python {
                Some(python) => [Front::Flight, Front::Pg]
                    .into_iter()
                    .map(|front| {
                        let (server, sent) = (&server, &sent);
                        (
                            front,
                            scope.spawn(move || Client::start(python, front, server).run(sent)),
                        )
                    })
                    .collect(),
                None => Vec::new(),
            };
            for a in &sent {
                outcomes.insert((Front::Http, name_of(a)), http(&server, a));
            }
            for (front, client) in clients {
                for (a, out) in sent.iter().zip(client.join().unwrap()) {
                    outcomes.insert((front, name_of(a)), out);
                }
            }
        });
        let (_, log) = server.stop();
        for secret in [&facts.permits.ray.token, &facts.permits.sam.token] {
            assert!(
                !log.contains(secret.as_str()),
                "a token in the server's log"
            );
        }
        World {
            copied: hub.data_dir().join("copied.csv").exists(),
            events: hub.access_log(),
            facts,
            outcomes,
        }
    }
}

fn name_of(sent: &Value) -> String {
    sent["name"].as_str().unwrap().to_owned()
}

/// An attempt as the clients take it: name, statement, user, token, permit.
fn sent(f: &Permits, name: &str, sql: &str, who: Who) -> Value {
    let (user, token, permit) = match who {
        Who::Researcher => ("ray", f.ray.token.as_str(), f.ray.id.as_str()),
        Who::OtherProjectsPermit => ("ray", f.ray.token.as_str(), f.sam.id.as_str()),
        Who::OtherProjectsToken => ("sam", f.sam.token.as_str(), f.ray.id.as_str()),
        Who::UnknownPermit => ("ray", f.ray.token.as_str(), UNKNOWN_PERMIT),
        Who::ForgedToken => (
            "ray",
            "agora_0000000000000000000000000000000000000000000000000000000000000000",
            f.ray.id.as_str(),
        ),
    };
    json!({"name": name, "sql": sql, "user": user, "token": token, "permit": permit})
}

/// `POST /api/v1/permits/{id}/sql`.
fn http(server: &Server, a: &Value) -> Outcome {
    let url = server.url(&format!(
        "/api/v1/permits/{}/sql",
        a["permit"].as_str().unwrap()
    ));
    let response = ureq::post(&url)
        .set(
            "Authorization",
            &format!("Bearer {}", a["token"].as_str().unwrap()),
        )
        .send_json(json!({"sql": a["sql"]}));
    match response {
        Ok(r) => {
            let body: Value = r.into_json().unwrap();
            let columns: Vec<String> = body["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect();
            // JSON rows leave NULL cells out.
            let rows = body["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| columns.iter().map(|c| r[c].clone()).collect())
                .collect();
            Outcome::Answered { columns, rows }
        }
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r.into_json().unwrap();
            Outcome::Refused {
                code: code.to_string(),
                message: body["error"]["message"].as_str().unwrap().to_owned(),
            }
        }
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------------------
// The Python clients

/// ADBC: each line of stdin a JSON array of attempts; one JSON line per attempt. `op`
/// `plan` asks for a statement's ticket only (`GetFlightInfo`, through pyarrow's Flight
/// client), `redeem` fetches it (`DoGet`) later.
const FLIGHT_CLIENT: &str = r#"
import json, os, re, sys
import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as fl

connections, tickets = {}, {}

def connection(a):
    key = (a["token"], a["permit"])
    if key not in connections:
        connections[key] = flight_sql.connect(os.environ["URI"], db_kwargs={
            "adbc.flight.sql.authorization_header": "Bearer " + a["token"],
            "adbc.flight.sql.rpc.call_header.x-agora-permit": a["permit"],
        })
    return connections[key]

def table(t):
    columns = [c.to_pylist() for c in t.columns]
    return {"columns": t.column_names, "rows": [list(r) for r in zip(*columns)]}

def field(number, data):  # a length-delimited protobuf field
    n, size = len(data), b""
    while n >= 0x80:
        size, n = size + bytes([n & 0x7F | 0x80]), n >> 7
    return bytes([number << 3 | 2]) + size + bytes([n]) + data

def options(a):
    return fl.FlightCallOptions(headers=[
        (b"authorization", ("Bearer " + a["token"]).encode()),
        (b"x-agora-permit", a["permit"].encode())])

def run(a):
    op = a.get("op", "query")
    if op == "plan":
        client = fl.FlightClient(os.environ["URI"])
        command = field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") \
            + field(2, field(1, a["sql"].encode()))
        info = client.get_flight_info(fl.FlightDescriptor.for_command(command), options(a))
        tickets[a["name"]] = (client, info.endpoints[0].ticket, a)
        return {"columns": [], "rows": []}
    if op == "redeem":
        client, ticket, planned = tickets.pop(a["name"])
        return table(client.do_get(ticket, options(planned)).read_all())
    with connection(a).cursor() as cur:
        cur.execute(a["sql"])
        return table(cur.fetch_arrow_table())

def outcome(a):
    try:
        return run(a)
    except Exception as e:  # the driver's error, as a researcher's program sees it
        message = str(e)
        # ADBC ends its messages with "(Code; call)"; pyarrow says "gRPC returned ... error".
        adbc = re.search(r"\((\w+); [^()]*\)\s*$", message)
        grpc = re.search(r"gRPC returned ([a-z ]+) error", message)
        code = adbc.group(1) if adbc else \
            "".join(w.capitalize() for w in grpc.group(1).split()) if grpc else type(e).__name__
        return {"code": code, "message": message}

for line in sys.stdin:
    for a in json.loads(line):
        print(json.dumps({"name": a["name"], **outcome(a)}, default=str), flush=True)
"#;

/// psycopg 3, autocommit: as `FLIGHT_CLIENT`; one connection per token, permit and
/// `connection` (a number, to open more).
const PG_CLIENT: &str = r#"
import json, os, sys
import psycopg

connections = {}

def outcome(a):
    key = (a["token"], a["permit"], a.get("connection"))
    try:
        if key not in connections:
            connections[key] = psycopg.connect(
                host="127.0.0.1", port=os.environ["PORT"], dbname=a["permit"], user=a["user"],
                password=a["token"], sslmode="disable", autocommit=True, connect_timeout=30)
    except psycopg.OperationalError as e:  # libpq's text holds the server's message
        return {"code": "connection", "message": str(e).split("FATAL:", 1)[-1].strip()}
    try:
        with connections[key].cursor() as cur:
            cur.execute(a["sql"])
            names = [d.name for d in cur.description or []]
            return {"columns": names, "rows": [list(r) for r in cur.fetchall()] if names else []}
    except psycopg.OperationalError as e:
        del connections[key]
        return {"code": e.sqlstate or "connection", "message": e.diag.message_primary or str(e)}
    except psycopg.Error as e:
        return {"code": e.sqlstate or type(e).__name__, "message": e.diag.message_primary or str(e)}

for line in sys.stdin:
    for a in json.loads(line):
        print(json.dumps({"name": a["name"], **outcome(a)}, default=str), flush=True)
"#;

/// A Python client process of one front, kept open between batches (its connections too).
struct Client {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn start(python: &str, front: Front, server: &Server) -> Self {
        let mut cmd = Command::new(python);
        match front {
            Front::Flight => cmd
                .args(["-W", "ignore", "-c", FLIGHT_CLIENT])
                .env("URI", format!("grpc://{}", server.flight_addr())),
            Front::Pg => cmd
                .args(["-c", PG_CLIENT])
                .env("PORT", server.pg_port().to_string()),
            Front::Http => unreachable!("HTTP is driven from Rust"),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    /// Runs `batch` (attempts as [`sent`] makes them), in order.
    fn run(&mut self, batch: &[Value]) -> Vec<Outcome> {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{}", Value::from(batch.to_vec())).unwrap();
        stdin.flush().unwrap();
        batch
            .iter()
            .map(|a| {
                let mut line = String::new();
                self.stdout.read_line(&mut line).unwrap();
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("client output {line:?}: {e}"));
                assert_eq!(v["name"], a["name"]);
                Outcome::from_json(&v)
            })
            .collect()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Checks

/// Checks attempt `name` on every front that ran it.
fn check(name: &str) {
    let world = world();
    let attempts = attempts(&world.facts);
    let a = attempts.iter().find(|a| a.name == name).unwrap();
    if python().is_none() {
        eprintln!(
            "Flight SQL and PostgreSQL skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh)"
        );
    }
    let mut failures = Vec::new();
    for front in [Front::Http, Front::Flight, Front::Pg] {
        let Some(out) = world.outcome(front, name) else {
            continue;
        };
        if let Err(e) = check_on(world, a, front, out) {
            failures.push(format!(
                "{front:?}: {e}\n  statement: {}\n  outcome: {out:?}",
                a.sql
            ));
        }
    }
    if name == "copy_to_a_file" {
        assert!(!world.copied, "COPY wrote a file");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn check_on(world: &World, a: &Attempt, front: Front, out: &Outcome) -> Result<(), String> {
    nothing_leaks(&world.facts, a, out)?;
    match &a.expect {
        Expect::Refused(class) => refused_as(front, *class, out)?,
        Expect::RefusedLike(class, twin, [name, twin_name]) => {
            refused_as(front, *class, out)?;
            let twin = world
                .outcome(front, twin)
                .ok_or_else(|| format!("no outcome of {twin}"))?;
            let (Outcome::Refused { message, .. }, Outcome::Refused { message: other, .. }) =
                (out, twin)
            else {
                return Err(format!("the control attempt was not refused: {twin:?}"));
            };
            let f = &world.facts;
            let plain = |m: &str, from: &str| {
                let m = [
                    f.permits.ray.id.as_str(),
                    f.permits.sam.id.as_str(),
                    UNKNOWN_PERMIT,
                ]
                .iter()
                .fold(m.to_owned(), |m, id| m.replace(id, "<permit>"));
                if from.is_empty() {
                    m
                } else {
                    m.replace(from, "<name>")
                }
            };
            if plain(message, name) != plain(other, twin_name) {
                return Err(format!(
                    "refused unlike a missing object:\n  {message}\n  {other}"
                ));
            }
        }
        Expect::Answered(check) => match out {
            Outcome::Answered { .. } => check(&world.facts, out)?,
            Outcome::Refused { .. } => return Err("refused; expected an answer".into()),
        },
        Expect::Either(check) => check(&world.facts, out)?,
    }
    recorded(world, a, front, out)
}

fn refused_as(front: Front, class: Class, out: &Outcome) -> Result<(), String> {
    match out {
        Outcome::Refused { code, .. } if front.codes(class, code) => Ok(()),
        Outcome::Refused { code, .. } => Err(format!("refused with {code}, not as {class:?}")),
        Outcome::Answered { .. } => Err(format!("answered; expected a refusal ({class:?})")),
    }
}

/// What no outcome may hold: a hub key, an unpermitted name the statement did not say
/// itself, the data directory; and no refusal is an internal error.
fn nothing_leaks(f: &Facts, a: &Attempt, out: &Outcome) -> Result<(), String> {
    let text = match out {
        Outcome::Answered { columns, rows } => format!("{columns:?} {rows:?}"),
        Outcome::Refused { code, message } => {
            if ["500", "Internal", "InternalError", "XX000"].contains(&code.as_str())
                || message.contains("internal error")
            {
                return Err(format!("an internal error: {code} {message}"));
            }
            message.clone()
        }
    };
    // A refusal may repeat what the statement said; an answer holds none of it.
    let echoed = |s: &str| matches!(out, Outcome::Refused { .. }) && a.sql.contains(s);
    if let Some(key) = f
        .hub_keys
        .iter()
        .map(i64::to_string)
        .find(|k| text.contains(k.as_str()) && !echoed(k))
    {
        return Err(format!("a hub key ({key}) in the outcome"));
    }
    if let Some(name) = UNPERMITTED.iter().find(|n| text.contains(*n) && !echoed(n)) {
        return Err(format!("an unpermitted name ({name}) in the outcome"));
    }
    if text.contains(&f.data_dir) && !echoed(&f.data_dir) {
        return Err("the data directory in the outcome".into());
    }
    Ok(())
}

/// Every statement that reached the service is in the access log, by Ray, through its
/// front, with its outcome.
fn recorded(world: &World, a: &Attempt, front: Front, out: &Outcome) -> Result<(), String> {
    if a.who != Who::Researcher || (front == Front::Pg && a.pg_local) {
        // Refused before a session (no permit, no credential) or answered by the front.
        return Ok(());
    }
    let events: Vec<&agora_govern::AccessEvent> = world
        .events
        .iter()
        .filter(|e| e.front == front.logged_as() && e.statement.trim() == a.sql)
        .collect();
    if events.is_empty() {
        return Err("not in the access log".into());
    }
    if let Some(e) = events.iter().find(|e| e.actor != "ray") {
        return Err(format!("recorded as {}'s", e.actor));
    }
    let outcomes: Vec<String> = events
        .iter()
        .map(|e| format!("{:?}", e.outcome).to_lowercase())
        .collect();
    let expected: &[&str] = match out {
        Outcome::Answered { .. } => &["answered"],
        Outcome::Refused { .. } => &["refused", "failed"],
    };
    if outcomes.iter().any(|o| expected.contains(&o.as_str())) {
        Ok(())
    } else {
        Err(format!("recorded as {outcomes:?}"))
    }
}

// ---------------------------------------------------------------------------------------
// Attacks on open connections: the hub changes between two statements

/// Persons of the hubs of attacks on open connections.
const LIVE_PERSONS: i64 = 100;

/// A hub with Ray's and Sam's permits, a server with every front, and Ray's clients.
struct Live {
    hub: Hub,
    permits: Permits,
    server: Server,
    flight: Option<Client>,
    pg: Option<Client>,
}

impl Live {
    fn start(extra: &[&str]) -> Self {
        let (hub, ray, sam) = hub_with_permits(LIVE_PERSONS as usize);
        let mut args = vec![
            "--flight-listen",
            "127.0.0.1:0",
            "--pg-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let server = Server::start_with(&hub, &args);
        let (flight, pg) = match python() {
            Some(python) => (
                Some(Client::start(&python, Front::Flight, &server)),
                Some(Client::start(&python, Front::Pg, &server)),
            ),
            None => {
                eprintln!(
                    "Flight SQL and PostgreSQL skipped: AGORA_TEST_PYTHON is not set (ci/clients.sh)"
                );
                (None, None)
            }
        };
        Self {
            hub,
            permits: Permits { ray, sam },
            server,
            flight,
            pg,
        }
    }

    /// `sql` as Ray on his permit through every front, on the connections already open.
    fn ask(&mut self, name: &str, sql: &str) -> Vec<(Front, Outcome)> {
        let a = sent(&self.permits, name, sql, Who::Researcher);
        let mut outcomes = vec![(Front::Http, http(&self.server, &a))];
        for (front, client) in [(Front::Flight, &mut self.flight), (Front::Pg, &mut self.pg)] {
            if let Some(client) = client {
                outcomes.push((front, client.run(std::slice::from_ref(&a)).remove(0)));
            }
        }
        outcomes
    }

    /// A Flight SQL ticket for `sql` (`GetFlightInfo` only), kept under `name`.
    fn plan_ticket(&mut self, name: &str, sql: &str) -> Option<Outcome> {
        let mut a = sent(&self.permits, name, sql, Who::Researcher);
        a["op"] = json!("plan");
        Some(self.flight.as_mut()?.run(&[a]).remove(0))
    }

    /// The answer to the ticket `name` (`DoGet`).
    fn redeem_ticket(&mut self, name: &str) -> Option<Outcome> {
        let mut a = sent(&self.permits, name, "", Who::Researcher);
        a["op"] = json!("redeem");
        Some(self.flight.as_mut()?.run(&[a]).remove(0))
    }
}

const COUNT: &str = "SELECT COUNT(*) AS n FROM person";

fn all_answered(outcomes: &[(Front, Outcome)]) {
    for (front, out) in outcomes {
        assert!(
            matches!(out, Outcome::Answered { .. }),
            "{front:?}: {out:?}"
        );
    }
}

fn all_refused(outcomes: &[(Front, Outcome)], class: Class) {
    for (front, out) in outcomes {
        if let Err(e) = refused_as(*front, class, out) {
            panic!("{front:?}: {e}: {out:?}");
        }
    }
}

/// The PostgreSQL front refuses the next statement of an open connection with a
/// SQLSTATE; a new connection would be refused at connect (`Class::NoPermit`).
fn refused_on_open_connections(outcomes: &[(Front, Outcome)], class: Class, pg_code: &str) {
    for (front, out) in outcomes {
        match front {
            Front::Pg => assert!(
                matches!(out, Outcome::Refused { code, .. } if code == pg_code),
                "Pg: {out:?}"
            ),
            _ => all_refused(&[(*front, out.clone())], class),
        }
    }
}

#[test]
fn a_revoked_permit_stops_open_connections_and_planned_tickets() {
    let mut live = Live::start(&[]);
    all_answered(&live.ask("before", COUNT));
    // A ticket planned before the revocation, fetched after it.
    if let Some(planned) = live.plan_ticket("planned", COUNT) {
        assert!(matches!(planned, Outcome::Answered { .. }), "{planned:?}");
    }
    let permit = live.permits.ray.id.clone();
    live.hub
        .ok(&["permit", "revoke", &permit, "--reason", "end of study"]);
    refused_on_open_connections(&live.ask("after", COUNT), Class::NoPermit, "42501");
    if let Some(redeemed) = live.redeem_ticket("planned") {
        assert!(
            matches!(redeemed, Outcome::Refused { .. }),
            "a ticket planned before the revocation was answered after it: {redeemed:?}"
        );
    }
}

/// With no opt-out in the hub, nothing sits between a permit's table and its files, and
/// DataFusion answers COUNT, MIN and MAX from the Parquet statistics at planning: a plain
/// EXPLAIN would show them as constants, past disclosure control.
#[test]
fn explain_shows_no_value_from_file_statistics() {
    let mut live = Live::start(&[]);
    let truth = live.hub.sql_tsv(
        "demo",
        "SELECT MIN(year_of_birth), MAX(year_of_birth), COUNT(*) FROM person",
    );
    let values: Vec<String> = truth
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .map(|v| format!("{v} as "))
        .collect();
    let sql = "EXPLAIN SELECT MIN(year_of_birth) AS lo, MAX(year_of_birth) AS hi, COUNT(*) AS n FROM person";
    for (front, out) in live.ask("explain", sql) {
        if let Outcome::Answered { rows, .. } = &out {
            let plan = format!("{rows:?}");
            for value in &values {
                assert!(
                    !plan.contains(value.as_str()),
                    "{front:?} shows `{value}`: {plan}"
                );
            }
        }
    }
}

#[test]
fn an_opt_out_applies_to_a_ticket_planned_before_it() {
    let mut live = Live::start(&[]);
    let Some(planned) = live.plan_ticket("planned", COUNT) else {
        return;
    };
    assert!(matches!(planned, Outcome::Answered { .. }), "{planned:?}");
    let keys = ints(&live.hub.sql_tsv(
        "demo",
        &format!("SELECT person_id FROM person ORDER BY 1 LIMIT {OPTED_OUT}"),
    ));
    live.hub.opt_out(&keys);
    let redeemed = live.redeem_ticket("planned").unwrap();
    let after = redeemed.single_int().unwrap();
    assert_eq!(
        after,
        Some(LIVE_PERSONS - OPTED_OUT as i64),
        "a ticket planned before {OPTED_OUT} opt-outs: {redeemed:?}"
    );
}

#[test]
fn an_expiring_permit_stops_open_connections() {
    let mut live = Live::start(&[]);
    all_answered(&live.ask("before", COUNT));
    // A reviewer shortens the permit to a few seconds from now.
    let rita = live
        .hub
        .ok(&["user", "token", "issue", "rita"])
        .trim()
        .to_owned();
    let expiry = chrono::Utc::now() + chrono::Duration::seconds(4);
    let amendment = json!({"expires_at": expiry.to_rfc3339()}).to_string();
    let permit = live.permits.ray.id.clone();
    live.hub.ok_as(
        &rita,
        &[
            "permit",
            "amend",
            &permit,
            "--file",
            "-",
            "--reason",
            "study ends",
        ],
        &amendment,
    );
    all_answered(&live.ask("amended", COUNT));
    while chrono::Utc::now() < expiry + chrono::Duration::seconds(1) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    refused_on_open_connections(&live.ask("expired", COUNT), Class::NoPermit, "42501");
}

#[test]
fn a_revoked_token_stops_open_connections() {
    let mut live = Live::start(&[]);
    all_answered(&live.ask("before", COUNT));
    let tokens: Value =
        serde_json::from_str(&live.hub.ok(&["user", "token", "list", "ray", "--json"])).unwrap();
    for token in tokens.as_array().unwrap() {
        let id = token["id"].as_str().unwrap();
        live.hub.ok(&["user", "token", "revoke", "ray", id]);
    }
    refused_on_open_connections(&live.ask("after", COUNT), Class::Unauthenticated, "28P01");
}

#[test]
fn per_user_limits_hold_across_fronts() {
    let mut live = Live::start(&[
        "--max-queries-per-user",
        "2",
        "--pg-max-connections-per-user",
        "2",
    ]);
    if live.flight.is_none() {
        return;
    }
    all_answered(&live.ask("before", COUNT));
    // Two planned tickets hold Ray's two running-statement slots...
    for name in ["first", "second"] {
        let planned = live.plan_ticket(name, COUNT).unwrap();
        assert!(matches!(planned, Outcome::Answered { .. }), "{planned:?}");
    }
    // ...so a third statement is refused on every front until one is fetched.
    let third = live.plan_ticket("third", COUNT).unwrap();
    all_refused(&[(Front::Flight, third)], Class::Limit);
    let busy = live.ask("busy", COUNT);
    for (front, out) in &busy {
        let expected = match front {
            Front::Http => "422",
            Front::Flight => "ResourceExhausted",
            Front::Pg => "53300",
        };
        assert!(
            matches!(out, Outcome::Refused { code, .. } if code == expected),
            "{front:?}: {out:?}"
        );
    }
    let fetched = live.redeem_ticket("first").unwrap();
    assert!(matches!(fetched, Outcome::Answered { .. }), "{fetched:?}");
    all_answered(&live.ask("after", COUNT));

    // Two PostgreSQL connections per user: the psycopg client has one open; a second
    // opens, a third is refused.
    let mut connect = |n: usize| {
        let mut a = sent(&live.permits, "connect", "SELECT 1", Who::Researcher);
        a["connection"] = json!(n);
        live.pg.as_mut().unwrap().run(&[a]).remove(0)
    };
    assert!(matches!(connect(1), Outcome::Answered { .. }));
    match connect(2) {
        Outcome::Refused { code, message } => {
            assert_eq!(code, "connection");
            assert!(message.contains("too many connections"), "{message}");
        }
        out => panic!("a third connection: {out:?}"),
    }
}
