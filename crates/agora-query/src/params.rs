//! Statement parameters: `$1`, `$2`… (PostgreSQL, Flight SQL) or `?` (JDBC/ADBC style),
//! bound by value into the statement's syntax tree before it is planned.
//!
//! Protocol fronts receive prepared statements and their values separately. Binding them
//! into the statement text — each value as a properly quoted literal of the parsed tree, never
//! by string splicing — means the bound statement takes exactly the path of any other: the
//! read-only guard, the permit's policy, disclosure control, and an access record whose SQL
//! text says what was actually asked.

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::sql::sqlparser::ast::{Expr, Value, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::{Error, Result};

/// A value bound to a statement parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Parameter {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// An exact decimal number, as text (`"12.50"`).
    Decimal(String),
    /// A character string.
    Text(String),
    /// A calendar date.
    Date(NaiveDate),
    /// A date and time without time zone.
    Timestamp(NaiveDateTime),
}

impl Parameter {
    /// The literal expression of this value.
    fn to_expr(&self) -> Result<Expr> {
        let snippet = match self {
            Parameter::Null => "NULL".to_owned(),
            Parameter::Bool(b) => b.to_string(),
            Parameter::Int(i) => i.to_string(),
            Parameter::Float(f) if f.is_finite() => format!("CAST({f:?} AS DOUBLE PRECISION)"),
            Parameter::Float(f) => format!("CAST('{f}' AS DOUBLE PRECISION)"),
            Parameter::Decimal(d) => {
                let valid = !d.is_empty()
                    && d.trim_start_matches(['-', '+'])
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.')
                    && d.chars().filter(|c| *c == '.').count() <= 1;
                if !valid {
                    return Err(Error::Sql(
                        "a decimal parameter is not a decimal number".into(),
                    ));
                }
                d.clone()
            }
            // Built as a tree node: its display quotes the value, whatever it holds.
            Parameter::Text(s) => return Ok(Expr::value(Value::SingleQuotedString(s.clone()))),
            Parameter::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Parameter::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.f")),
        };
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&snippet)
            .and_then(|mut p| p.parse_expr())
            .map_err(|_| Error::Engine("a bound parameter did not form a literal".into()))
    }
}

/// Where a placeholder points: `$n` is the n-th value, each `?` the next one.
fn position(placeholder: &str, next_question_mark: &mut usize) -> Result<usize> {
    if placeholder == "?" {
        *next_question_mark += 1;
        return Ok(*next_question_mark - 1);
    }
    placeholder
        .strip_prefix('$')
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .map(|n| n - 1)
        .ok_or_else(|| {
            Error::Sql(format!(
                "unsupported parameter placeholder {placeholder:?}: use $1, $2… or ?"
            ))
        })
}

fn parse_one(sql: &str) -> Result<datafusion::sql::sqlparser::ast::Statement> {
    crate::limits::check_statement(sql)?;
    let mut statements =
        Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| Error::Sql(e.to_string()))?;
    match statements.len() {
        1 => Ok(statements.remove(0)),
        0 => Err(Error::Sql("the statement is empty".into())),
        _ => Err(Error::Sql(
            "a prepared statement holds exactly one statement".into(),
        )),
    }
}

/// How many values `sql` expects: the highest `$n`, or the number of `?`.
pub fn count_parameters(sql: &str) -> Result<usize> {
    // Text without placeholders needs no parse (and keeps the planner's own error messages).
    if !sql.contains('$') && !sql.contains('?') {
        return Ok(0);
    }
    let mut statement = parse_one(sql)?;
    let mut count = 0;
    let mut question_marks = 0;
    let mut failure = None;
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &v.value
        {
            match position(p, &mut question_marks) {
                Ok(i) => count = count.max(i + 1),
                Err(e) => failure = Some(e),
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

/// Binds `params` into `sql`: every placeholder becomes its value's literal. The number of
/// values must match what the statement expects.
pub fn bind_parameters(sql: &str, params: &[Parameter]) -> Result<String> {
    if params.is_empty() && count_parameters(sql)? == 0 {
        return Ok(sql.to_owned());
    }
    let mut statement = parse_one(sql)?;
    let mut question_marks = 0;
    let mut highest = 0;
    let mut failure = None;
    // Expressions are visited after their children, so a bound literal is not revisited.
    let _ = visit_expressions_mut(&mut statement, |expr| {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &v.value
        {
            let bound = position(p, &mut question_marks).and_then(|i| {
                highest = highest.max(i + 1);
                params
                    .get(i)
                    .ok_or_else(|| {
                        Error::Sql(format!(
                            "parameter {p} has no value: {} value(s) were bound",
                            params.len()
                        ))
                    })
                    .and_then(Parameter::to_expr)
            });
            match bound {
                Ok(literal) => *expr = literal,
                Err(e) => failure = Some(e),
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if highest != params.len() {
        return Err(Error::Sql(format!(
            "the statement takes {highest} parameter(s) but {} value(s) were bound",
            params.len()
        )));
    }
    Ok(statement.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_dollar_and_question_mark_placeholders() {
        let sql = "SELECT COUNT(*) FROM person WHERE year_of_birth > $1 AND gender = $2";
        assert_eq!(count_parameters(sql).unwrap(), 2);
        let bound =
            bind_parameters(sql, &[Parameter::Int(1950), Parameter::Text("F".into())]).unwrap();
        assert_eq!(
            bound,
            "SELECT COUNT(*) FROM person WHERE year_of_birth > 1950 AND gender = 'F'"
        );
        let bound = bind_parameters(
            "SELECT ? + ?, ?",
            &[Parameter::Int(1), Parameter::Int(2), Parameter::Null],
        )
        .unwrap();
        assert_eq!(bound, "SELECT 1 + 2, NULL");
    }

    #[test]
    fn text_values_cannot_escape_their_literal() {
        let evil = "x'; DROP TABLE person; --";
        let bound = bind_parameters("SELECT $1", &[Parameter::Text(evil.into())]).unwrap();
        // One statement, one string literal holding the value.
        let mut parsed = Parser::parse_sql(&PostgreSqlDialect {}, &bound).unwrap();
        assert_eq!(parsed.len(), 1);
        let mut seen = None;
        let _ = visit_expressions_mut(&mut parsed[0], |e| {
            if let Expr::Value(v) = e
                && let Value::SingleQuotedString(s) = &v.value
            {
                seen = Some(s.clone());
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        assert_eq!(seen.as_deref(), Some(evil));
        let backslash = bind_parameters("SELECT $1", &[Parameter::Text("a\\'b".into())]).unwrap();
        assert_eq!(
            Parser::parse_sql(&PostgreSqlDialect {}, &backslash)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn typed_values() {
        let date = NaiveDate::from_ymd_opt(2020, 2, 29).unwrap();
        let bound = bind_parameters(
            "SELECT $1, $2, $3, $4, $5",
            &[
                Parameter::Date(date),
                Parameter::Timestamp(date.and_hms_opt(12, 30, 0).unwrap()),
                Parameter::Float(0.5),
                Parameter::Decimal("-12.50".into()),
                Parameter::Bool(true),
            ],
        )
        .unwrap();
        assert_eq!(
            bound,
            "SELECT DATE '2020-02-29', TIMESTAMP '2020-02-29 12:30:00', \
             CAST(0.5 AS DOUBLE PRECISION), -12.50, true"
        );
        assert!(bind_parameters("SELECT $1", &[Parameter::Decimal("1;2".into())]).is_err());
    }

    #[test]
    fn counts_must_match() {
        let err = bind_parameters("SELECT $2", &[Parameter::Int(1)]).unwrap_err();
        assert!(err.to_string().contains("$2 has no value"), "{err}");
        let err =
            bind_parameters("SELECT $1", &[Parameter::Int(1), Parameter::Int(2)]).unwrap_err();
        assert!(err.to_string().contains("takes 1 parameter"), "{err}");
        assert!(bind_parameters("SELECT 1; SELECT 2", &[]).is_ok());
        assert!(bind_parameters("SELECT $1; SELECT 2", &[Parameter::Int(1)]).is_err());
        assert_eq!(bind_parameters("SELECT 1", &[]).unwrap(), "SELECT 1");
    }
}
