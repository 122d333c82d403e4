use crate::ReleaseSource;
use agora_core::{ColumnType, TableSchema};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::sql::{count, ident, one_row};

/// Grace period after death before an event counts as implausible, as in the DQD
/// (`plausibleBeforeDeath` allows 60 days for administrative records).
pub(crate) const DEATH_GRACE_DAYS: i64 = 60;
/// Most frequent codes shown per coded column.
const TOP_VALUES: usize = 10;

/// The quality profile of one release: per-table statistics and pass/fail checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QualityProfile {
    /// The dataset profiled.
    pub dataset: String,
    /// Its release number.
    pub release: i64,
    /// One profile per table of the release, in manifest order.
    pub tables: Vec<TableProfile>,
    /// Every check, passed or not.
    pub checks: Vec<Check>,
}

impl QualityProfile {
    /// The checks over their tolerance.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// Statistics of one table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableProfile {
    /// Table name.
    pub table: String,
    /// Rows stored.
    pub rows: u64,
    /// Distinct persons, for tables with a `person_id` column.
    pub persons: Option<u64>,
    /// One profile per column, in schema order.
    pub columns: Vec<ColumnProfile>,
}

/// Statistics of one column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Column name.
    pub column: String,
    /// Null cells.
    pub nulls: u64,
    /// `nulls / rows` (0 for an empty table).
    pub null_rate: f64,
    /// Range of dates, timestamps and measures (not of identifiers).
    pub min: Option<String>,
    /// Largest value, as text (same columns as `min`).
    pub max: Option<String>,
    /// Most frequent values of `*_concept_id` columns.
    pub top_values: Vec<ValueCount>,
    /// Date columns of person-linked tables.
    pub implausible: Option<DatePlausibility>,
}

/// One code and how often it occurs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueCount {
    /// The code, as text.
    pub value: String,
    /// Rows holding it.
    pub rows: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
/// Implausible dates of one date column of a person-linked table.
pub struct DatePlausibility {
    /// In a year before the person's year of birth.
    pub before_birth: u64,
    /// More than 60 days after the person's death.
    pub after_death: u64,
    /// After today.
    pub in_future: u64,
}

/// One pass/fail check: `passed` when `violations / rows <= threshold`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier (`person_has_observation_period`...).
    pub id: String,
    /// What is checked, in words.
    pub description: String,
    /// The table checked.
    pub table: String,
    /// The column checked, if one.
    pub column: Option<String>,
    /// Rows breaking the rule.
    pub violations: u64,
    /// Rows checked.
    pub rows: u64,
    /// Largest tolerated fraction of violating rows.
    pub threshold: f64,
    /// Whether the violations are within the threshold.
    pub passed: bool,
}

impl Check {
    pub(crate) fn new(
        id: &str,
        description: String,
        table: &str,
        column: Option<&str>,
        violations: u64,
        rows: u64,
        threshold: f64,
    ) -> Self {
        let fraction = if rows == 0 {
            0.0
        } else {
            violations as f64 / rows as f64
        };
        Self {
            id: id.to_owned(),
            description,
            table: table.to_owned(),
            column: column.map(str::to_owned),
            violations,
            rows,
            threshold,
            passed: fraction <= threshold,
        }
    }
}

fn is_date(ty: ColumnType) -> bool {
    matches!(ty, ColumnType::Date | ColumnType::Timestamp)
}

/// Columns whose range is meaningful (not identifiers or codes).
fn has_range(name: &str, ty: ColumnType) -> bool {
    match ty {
        ColumnType::Date | ColumnType::Timestamp | ColumnType::Float64 => true,
        ColumnType::Int64 => !name.ends_with("_id"),
        _ => false,
    }
}

/// Profiles every table of the workspace's release and runs the checks.
pub async fn profile(ws: &impl ReleaseSource) -> Result<QualityProfile> {
    let manifest = ws.manifest();
    let has = |t: &str, c: &str| {
        manifest
            .table(t)
            .is_some_and(|t| t.schema.index_of(c).is_some())
    };
    let life = Life {
        birth: has("person", "year_of_birth"),
        death: has("death", "death_date"),
    };
    let mut tables = Vec::new();
    let mut checks = Vec::new();
    for entry in &manifest.tables {
        let (table, table_checks) = profile_table(ws, &entry.name, &entry.schema, life).await?;
        tables.push(table);
        checks.extend(table_checks);
    }
    checks.extend(crate::checks::release_checks(ws, &tables, life.birth).await?);
    Ok(QualityProfile {
        dataset: ws.manifest().dataset.to_string(),
        release: ws.release(),
        tables,
        checks,
    })
}

/// What the release knows about persons' lives.
#[derive(Debug, Clone, Copy)]
struct Life {
    birth: bool,
    death: bool,
}

/// `<x>_start_date` / `<x>_end_date` pairs of a table.
fn start_end_pairs(schema: &TableSchema) -> Vec<(String, String)> {
    schema
        .columns
        .iter()
        .filter_map(|c| {
            let prefix = c.name.strip_suffix("_start_date")?;
            let end = format!("{prefix}_end_date");
            schema.index_of(&end).map(|_| (c.name.clone(), end))
        })
        .collect()
}

/// Profiles one table in at most three queries: one scan (counts, nulls, ranges, end before
/// start), one for code distributions, one join with the person's life (implausible dates,
/// unknown persons).
async fn profile_table(
    ws: &impl ReleaseSource,
    table: &str,
    schema: &TableSchema,
    life: Life,
) -> Result<(TableProfile, Vec<Check>)> {
    let t = ident(table);
    let person_linked = schema.index_of("person_id").is_some();
    let pairs = start_end_pairs(schema);

    let mut select = vec!["COUNT(*)".to_owned()];
    if person_linked {
        select.push("COUNT(DISTINCT person_id)".to_owned());
    }
    for c in &schema.columns {
        select.push(format!("COUNT({})", ident(&c.name)));
        if has_range(&c.name, c.ty) {
            select.push(format!("MIN({0}), MAX({0})", ident(&c.name)));
        }
    }
    for (start, end) in &pairs {
        select.push(format!(
            "SUM(CASE WHEN {} < {} THEN 1 ELSE 0 END)",
            ident(end),
            ident(start)
        ));
    }
    let row = one_row(ws, table, &format!("SELECT {} FROM {t}", select.join(", "))).await?;
    let mut cells = row.iter();
    let mut next = || cells.next().cloned().flatten();
    let rows = count(&next());
    let persons = person_linked.then(|| count(&next()));
    let mut columns = Vec::new();
    for c in &schema.columns {
        let non_null = count(&next());
        let (min, max) = if has_range(&c.name, c.ty) {
            (next(), next())
        } else {
            (None, None)
        };
        let nulls = rows - non_null.min(rows);
        columns.push(ColumnProfile {
            column: c.name.clone(),
            nulls,
            null_rate: if rows == 0 {
                0.0
            } else {
                nulls as f64 / rows as f64
            },
            min,
            max,
            top_values: Vec::new(),
            implausible: None,
        });
    }
    let mut checks = Vec::new();
    for (start, end) in &pairs {
        checks.push(Check::new(
            "start_before_end",
            format!("{table}.{end} is not before {start}"),
            table,
            Some(end),
            count(&next()),
            rows,
            0.0,
        ));
    }
    for (col, def) in columns.iter().zip(&schema.columns) {
        if !def.nullable {
            checks.push(Check::new(
                "is_required",
                format!("{table}.{} is never empty", col.column),
                table,
                Some(&col.column),
                col.nulls,
                rows,
                0.0,
            ));
        }
    }
    if rows == 0 {
        return Ok((
            TableProfile {
                table: table.to_owned(),
                rows,
                persons,
                columns,
            },
            checks,
        ));
    }

    // Code distributions, all coded columns in one query.
    let coded: Vec<String> = columns
        .iter()
        .map(|c| c.column.clone())
        .filter(|c| c.ends_with("_concept_id"))
        .collect();
    if !coded.is_empty() {
        let parts: Vec<String> = coded
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let c = ident(c);
                format!(
                    "SELECT * FROM (SELECT {i} AS k, CAST({c} AS VARCHAR) AS v, COUNT(*) AS n FROM {t} \
                     WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY n DESC, {c} LIMIT {TOP_VALUES})"
                )
            })
            .collect();
        let sql = format!(
            "SELECT k, v, n FROM ({}) ORDER BY k, n DESC",
            parts.join(" UNION ALL ")
        );
        for r in crate::sql::rows(ws, table, &sql).await? {
            let i: usize = r[0]
                .as_deref()
                .and_then(|k| k.parse().ok())
                .unwrap_or(usize::MAX);
            if let Some(col) = coded
                .get(i)
                .and_then(|name| columns.iter_mut().find(|c| &c.column == name))
            {
                col.top_values.push(ValueCount {
                    value: r[1].clone().unwrap_or_default(),
                    rows: count(&r[2]),
                });
            }
        }
    }

    // Dates against the person's life, and unknown persons, in one join.
    let dates: Vec<&str> = schema
        .columns
        .iter()
        .filter(|c| is_date(c.ty))
        .map(|c| c.name.as_str())
        .collect();
    if person_linked && life.birth && table != "person" {
        let mut select = vec![
            "SUM(CASE WHEN t.person_id IS NOT NULL AND p.person_id IS NULL THEN 1 ELSE 0 END)"
                .to_owned(),
        ];
        for d in &dates {
            let d = format!("CAST(t.{} AS DATE)", ident(d));
            select.push(format!(
                "SUM(CASE WHEN EXTRACT(YEAR FROM {d}) < p.year_of_birth THEN 1 ELSE 0 END)"
            ));
            select.push(if life.death {
                format!("SUM(CASE WHEN {d} > dt.death_date + {DEATH_GRACE_DAYS} THEN 1 ELSE 0 END)")
            } else {
                "0".to_owned()
            });
            select.push(format!(
                "SUM(CASE WHEN {d} > CURRENT_DATE THEN 1 ELSE 0 END)"
            ));
        }
        let death_join = if life.death {
            "LEFT JOIN (SELECT person_id, MIN(death_date) AS death_date FROM death GROUP BY person_id) dt \
             ON dt.person_id = t.person_id"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {} FROM {t} t LEFT JOIN person p ON p.person_id = t.person_id {death_join}",
            select.join(", ")
        );
        let row = one_row(ws, table, &sql).await?;
        checks.push(Check::new(
            "person_exists",
            format!("every {table} row refers to a known person"),
            table,
            Some("person_id"),
            count(&row[0]),
            rows,
            0.0,
        ));
        for (i, d) in dates.iter().enumerate() {
            let col = columns
                .iter_mut()
                .find(|c| c.column == *d)
                .expect("date column profiled");
            let p = DatePlausibility {
                before_birth: count(&row[1 + 3 * i]),
                after_death: count(&row[2 + 3 * i]),
                in_future: count(&row[3 + 3 * i]),
            };
            col.implausible = Some(p);
            checks.extend(crate::checks::date_checks(table, col, rows, p));
        }
    }
    Ok((
        TableProfile {
            table: table.to_owned(),
            rows,
            persons,
            columns,
        },
        checks,
    ))
}
