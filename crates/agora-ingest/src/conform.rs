//! Turning raw source columns into the CDM types, row by row deciding *keep* or *quarantine*.
//!
//! Casting is vectorized (arrow kernels); a cell that was present in the source but did not
//! survive the cast is a bad value. Only the reason is recorded, never the value.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Builder, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::filter;
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Date32Type, SchemaRef, TimeUnit};
use chrono::NaiveDate;

use crate::source::RawBatch;
use crate::{Error, Result};
use agora_cdm::{CdmColumn, CdmType};

/// Why a row was quarantined. Displayed to producers; never carries a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A value present in the source does not parse as the column's type.
    InvalidValue {
        /// The type expected (`integer`, `date (YYYY-MM-DD)`...).
        expected: String,
    },
    /// A required column is empty, or absent from the file.
    MissingRequired,
    /// A string exceeds the column's maximum length.
    TooLong {
        /// The maximum, in characters.
        max: usize,
    },
    /// A CSV record does not have as many fields as the header.
    FieldCount {
        /// Fields in the header.
        expected: usize,
        /// Fields in the record.
        found: usize,
    },
    /// A field (or an NDJSON line) is not valid UTF-8.
    InvalidUtf8,
    /// An OMOP row names a person without an accepted row in the `person` table: it could
    /// not be given a hub person key.
    UnknownPerson,
    /// An OMOP `person` row repeats the `person_id` of an earlier row.
    DuplicatePersonId,
    /// A person (OMOP) or Patient (FHIR) has the same identity as an earlier one, so the
    /// same hub person key: the earlier one is kept and rows referring to this one link to it.
    DuplicateIdentity,
    /// The identity a person key is derived from is empty or absent.
    MissingIdentity,
    // FHIR: a line or entry that is not a usable resource, or that cannot be pseudonymized.
    /// An NDJSON line is not valid JSON.
    InvalidJson,
    /// An NDJSON line or a Bundle entry without a resource (no string `resourceType`).
    NotAResource,
    /// The `resourceType` is not a FHIR R4 resource type.
    UnknownResourceType,
    /// A resource refers to a Patient that is not in the extract or was quarantined: its
    /// person key is unknown, and keeping it would keep an unpseudonymized reference.
    UnknownPatient,
    /// A Patient repeats the `id` of an earlier Patient.
    DuplicatePatient,
    /// A ViewDefinition failed on the resource (the resource itself is kept in its raw
    /// table; only its view rows are quarantined).
    ViewFailed,
    // Table Schema: a constraint, a primary/unique key, a foreign key.
    /// A value breaks a field constraint of the schema.
    Constraint {
        /// The constraint, as the schema names it (`minLength 2`, `pattern`, `enum`...).
        constraint: String,
    },
    /// A row repeats the key of an earlier row.
    Duplicate {
        /// Which key (`primary key`, `unique key (a, b)`, `value of unique field x`).
        key: String,
    },
    /// A row's foreign key matches no row of the referenced resource.
    ForeignKey {
        /// The referenced resource.
        resource: String,
    },
    /// FHIR → OMOP: a second resource with the id of an earlier one of its type.
    DuplicateResource,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InvalidValue { expected } => write!(f, "not a valid {expected}"),
            Reason::MissingRequired => f.write_str("required field is empty"),
            Reason::TooLong { max } => write!(f, "longer than {max} characters"),
            Reason::FieldCount { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            Reason::InvalidUtf8 => f.write_str("not valid UTF-8"),
            Reason::UnknownPerson => f.write_str("person has no accepted row in the person table"),
            Reason::DuplicatePersonId => f.write_str("person_id already used by an earlier row"),
            Reason::DuplicateIdentity => {
                f.write_str("same person identity as an earlier row (linked to it)")
            }
            Reason::MissingIdentity => f.write_str("person identity is empty"),
            Reason::InvalidJson => f.write_str("not valid JSON"),
            Reason::NotAResource => f.write_str("not a FHIR resource (no resourceType)"),
            Reason::UnknownResourceType => f.write_str("resourceType is not a FHIR R4 resource"),
            Reason::UnknownPatient => {
                f.write_str("refers to a patient that is not in the extract (or was quarantined)")
            }
            Reason::DuplicatePatient => {
                f.write_str("Patient id already used by an earlier resource")
            }
            Reason::ViewFailed => f.write_str("the ViewDefinition cannot flatten this resource"),
            Reason::Constraint { constraint } => write!(f, "breaks the constraint {constraint}"),
            Reason::Duplicate { key } => write!(f, "same {key} as an earlier row"),
            Reason::ForeignKey { resource } => {
                write!(f, "refers to no row of {resource} (foreign key)")
            }
            Reason::DuplicateResource => {
                f.write_str("resource id already used by an earlier resource of its type")
            }
        }
    }
}

/// A rejected row: batch row index, offending target column (if one), reason.
pub(crate) type Reject = (usize, Option<usize>, Reason);

/// The rows of a batch that fit the table, typed; and the ones that did not.
pub(crate) struct Conformed {
    pub columns: Vec<ArrayRef>,
    pub rejects: Vec<Reject>,
    /// Per target column, how many integers were written as integral decimals (`12.0`).
    pub decimal_integers: Vec<u64>,
}

/// Casts every column of `raw` to its CDM type. `columns[i]` describes target column `i`.
pub(crate) fn conform(
    raw: RawBatch,
    columns: &[&CdmColumn],
    file: &str,
    table: &str,
) -> Result<Conformed> {
    let rows = raw.len();
    // A row with the wrong number of fields is reported for that alone: its cells are
    // not where the header says, so cell-level reasons would be noise.
    let mut broken = vec![false; rows];
    for (row, column, _) in &raw.row_errors {
        if column.is_none() {
            broken[*row] = true;
        }
    }
    let mut rejects: Vec<Reject> = raw.row_errors;
    let mut out = Vec::with_capacity(columns.len());
    let mut decimal_integers = vec![0; columns.len()];
    for (i, (spec, source)) in columns.iter().zip(raw.columns).enumerate() {
        let target_type = spec.datatype.column_type().arrow_type();
        let Some(source) = source else {
            if spec.required {
                rejects.extend(
                    (0..rows)
                        .filter(|&r| !broken[r])
                        .map(|r| (r, Some(i), Reason::MissingRequired)),
                );
            }
            out.push(arrow::array::new_null_array(&target_type, rows));
            continue;
        };
        let (typed, decimals) =
            cast_column(&source, spec.datatype).map_err(|e| Error::Conversion {
                file: file.to_owned(),
                table: table.to_owned(),
                column: spec.name.clone(),
                reason: e.to_string(),
            })?;
        decimal_integers[i] = decimals;
        for r in (0..rows).filter(|&r| !broken[r]) {
            if source.is_null(r) {
                if spec.required {
                    rejects.push((r, Some(i), Reason::MissingRequired));
                }
            } else if typed.is_null(r) {
                rejects.push((
                    r,
                    Some(i),
                    Reason::InvalidValue {
                        expected: spec.datatype.to_string(),
                    },
                ));
            }
        }
        if let CdmType::Varchar(Some(max)) = spec.datatype {
            let strings = typed.as_string::<i32>();
            for r in 0..rows {
                // Byte length bounds char length from above: only count chars when needed.
                if strings.is_valid(r)
                    && strings.value(r).len() > max
                    && strings.value(r).chars().count() > max
                {
                    rejects.push((r, Some(i), Reason::TooLong { max }));
                }
            }
        }
        out.push(typed);
    }
    Ok(Conformed {
        columns: out,
        rejects,
        decimal_integers,
    })
}

/// The column cast to `ty`, and how many of its values were integers written as decimals.
fn cast_column(source: &ArrayRef, ty: CdmType) -> arrow::error::Result<(ArrayRef, u64)> {
    match (ty, source.data_type()) {
        (CdmType::Integer, DataType::Utf8) => Ok(parse_integers(source.as_string::<i32>())),
        // A float column of integers (Parquet from pandas): every value kept was integral.
        (CdmType::Integer, DataType::Float16 | DataType::Float32 | DataType::Float64) => {
            let typed = cast_other(source, ty)?;
            let kept = typed.len() - typed.null_count();
            Ok((typed, kept as u64))
        }
        _ => cast_other(source, ty).map(|typed| (typed, 0)),
    }
}

fn cast_other(source: &ArrayRef, ty: CdmType) -> arrow::error::Result<ArrayRef> {
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let target = ty.column_type().arrow_type();
    match (ty, source.data_type()) {
        (CdmType::Date, DataType::Utf8) => Ok(parse_dates(source.as_string::<i32>())),
        // A timestamp is an acceptable date only at midnight: nothing is lost then.
        (CdmType::Date, DataType::Timestamp(..)) => {
            let micros = cast_with_options(
                source,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
                &safe,
            )?;
            let dates = cast_with_options(&micros, &DataType::Date32, &safe)?;
            let back = cast_with_options(
                &dates,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
                &safe,
            )?;
            let same = arrow::compute::kernels::cmp::eq(&micros, &back)?;
            null_where_false(&dates, &same)
        }
        // Integers must not silently lose a fractional part.
        (CdmType::Integer, DataType::Float16 | DataType::Float32 | DataType::Float64) => {
            let ints = cast_with_options(source, &DataType::Int64, &safe)?;
            let back = cast_with_options(&ints, source.data_type(), &safe)?;
            let same = arrow::compute::kernels::cmp::eq(source, &back)?;
            null_where_false(&ints, &same)
        }
        _ => cast_with_options(source, &target, &safe),
    }
}

fn null_where_false(values: &ArrayRef, keep: &BooleanArray) -> arrow::error::Result<ArrayRef> {
    let keep = arrow::compute::kernels::boolean::is_not_null(keep)
        .and_then(|valid| arrow::compute::kernels::boolean::and(&valid, keep))?;
    arrow::compute::nullif(values, &arrow::compute::kernels::boolean::not(&keep)?)
}

/// Strict integers: decimal digits with an optional leading '-', unlike a general cast that
/// would accept forms a producer did not mean. An exactly integral decimal (`4180628.0`,
/// `1.5e3`), as pandas, R and several databases write integer columns holding nulls, is
/// accepted too and counted; a fraction (`3.5`) or a value past 64 bits (`1e30`) is not.
fn parse_integers(strings: &StringArray) -> (ArrayRef, u64) {
    let mut decimals = 0;
    let values: Int64Array = strings
        .iter()
        .map(|s| {
            let s = s?;
            let digits = s.strip_prefix('-').unwrap_or(s);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return s.parse::<i64>().ok();
            }
            let value = integral_decimal(s)?;
            decimals += 1;
            Some(value)
        })
        .collect();
    (Arc::new(values), decimals)
}

/// `[-]digits[.digits][(e|E)[+|-]digits]` whose value is an integer that fits in 64 bits,
/// computed on the digits (no floating point, so nothing is rounded).
fn integral_decimal(s: &str) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let exp = &rest[at + 1..];
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (&rest[..at], exp.parse::<i32>().ok()?)
        }
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The value is digits × 10^shift.
    let mut digits: String = format!("{whole}{fraction}");
    let shift = exponent - i32::try_from(fraction.len()).ok()?;
    if shift < 0 {
        let cut = digits.len().checked_sub(shift.unsigned_abs() as usize)?;
        if !digits[cut..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits.truncate(cut);
    } else {
        digits.extend(std::iter::repeat_n('0', shift as usize).take(20));
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 19 {
        return None;
    }
    let magnitude = digits.parse::<i128>().ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// `YYYY-MM-DD`, optionally followed by a midnight time (`00:00:00`, `T00:00:00.000`...):
/// extracts often write dates that way, and no information is lost.
fn parse_dates(strings: &StringArray) -> ArrayRef {
    let mut builder = Date32Builder::with_capacity(strings.len());
    for s in strings.iter() {
        builder.append_option(s.and_then(parse_date));
    }
    Arc::new(builder.finish())
}

fn parse_date(s: &str) -> Option<i32> {
    let (date, time) = match s.len() {
        10 => (s, ""),
        n if n > 11 => (s.get(..10)?, s.get(10..)?),
        _ => return None,
    };
    if !time.is_empty() {
        let rest = time.strip_prefix(' ').or_else(|| time.strip_prefix('T'))?;
        let rest = rest.strip_suffix('Z').unwrap_or(rest);
        let midnight =
            rest.bytes().all(|b| b == b'0' || b == b':' || b == b'.') && rest.starts_with("00:00");
        if !midnight {
            return None;
        }
    }
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = date.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let d = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    Some(Date32Type::from_naive_date(d))
}

/// Keeps the rows not in `rejected` and builds the output batch. Rejected rows are dropped
/// before the batch is assembled: they may hold nulls in columns the schema says never are.
pub(crate) fn keep_rows(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rejected: &[bool],
) -> Result<RecordBatch> {
    let arrow_err = |e: arrow::error::ArrowError| Error::Internal(e.to_string());
    let columns = if rejected.iter().any(|r| *r) {
        let keep: BooleanArray = rejected.iter().map(|r| Some(!r)).collect();
        columns
            .iter()
            .map(|c| filter(c, &keep))
            .collect::<arrow::error::Result<Vec<_>>>()
            .map_err(arrow_err)?
    } else {
        columns
    };
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, datatype: CdmType, required: bool) -> CdmColumn {
        CdmColumn {
            name: name.into(),
            datatype,
            required,
            primary_key: false,
        }
    }

    fn strings(values: &[Option<&str>]) -> Option<ArrayRef> {
        Some(Arc::new(StringArray::from(values.to_vec())) as ArrayRef)
    }

    #[test]
    fn dates_accept_midnight_times_only() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1970-01-02 00:00:00"), Some(1));
        assert_eq!(parse_date("1970-01-02T00:00:00.000Z"), Some(1));
        for bad in [
            "1970-01-02 13:00:00",
            "2021-13-45",
            "2021-02-30",
            "20210101",
            "2021-1-01",
            "",
            "x",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_are_strict() {
        let parsed = parse_integers(&StringArray::from(vec![
            "12",
            "-3",
            "1.0",
            "abc",
            " 4",
            "+5",
            "99999999999999999999",
        ]));
        let parsed = parsed.0.as_primitive::<arrow::datatypes::Int64Type>();
        let got: Vec<_> = parsed.iter().collect();
        // `1.0` is an integer written as a decimal (issue 12): accepted, and counted.
        assert_eq!(
            got,
            vec![Some(12), Some(-3), Some(1), None, None, None, None]
        );
    }

    #[test]
    fn bad_cells_are_rejected_with_column_and_reason() {
        let id = col("person_id", CdmType::Integer, true);
        let born = col("birth_date", CdmType::Date, false);
        let code = col("code", CdmType::Varchar(Some(3)), false);
        let raw = RawBatch {
            columns: vec![
                strings(&[Some("1"), Some("x"), None, Some("4")]),
                strings(&[
                    Some("2000-01-01"),
                    Some("2000-01-01"),
                    None,
                    Some("2000-02-31"),
                ]),
                strings(&[Some("abc"), None, None, Some("abcd")]),
            ],
            lines: vec![2, 3, 4, 5],
            row_errors: vec![],
        };
        let out = conform(raw, &[&id, &born, &code], "f", "t").unwrap();
        let mut rejects = out.rejects.clone();
        rejects.sort();
        assert_eq!(
            rejects,
            vec![
                (
                    1,
                    Some(0),
                    Reason::InvalidValue {
                        expected: "integer".into()
                    }
                ),
                (2, Some(0), Reason::MissingRequired),
                (
                    3,
                    Some(1),
                    Reason::InvalidValue {
                        expected: "date (YYYY-MM-DD)".into()
                    }
                ),
                (3, Some(2), Reason::TooLong { max: 3 }),
            ]
        );
    }

    #[test]
    fn floats_that_are_not_integers_are_rejected_for_integer_columns() {
        let id = col("n", CdmType::Integer, false);
        let source: ArrayRef = Arc::new(arrow::array::Float64Array::from(vec![
            Some(3.0),
            Some(3.5),
            None,
        ]));
        let out = conform(
            RawBatch {
                columns: vec![Some(source)],
                lines: vec![1, 2, 3],
                row_errors: vec![],
            },
            &[&id],
            "f",
            "t",
        )
        .unwrap();
        assert_eq!(
            out.rejects,
            vec![(
                1,
                Some(0),
                Reason::InvalidValue {
                    expected: "integer".into()
                }
            )]
        );
    }

    #[test]
    fn missing_optional_column_is_null_and_missing_required_is_rejected() {
        let a = col("a", CdmType::Float, false);
        let b = col("b", CdmType::Float, true);
        let out = conform(
            RawBatch {
                columns: vec![None, None],
                lines: vec![2],
                row_errors: vec![],
            },
            &[&a, &b],
            "f",
            "t",
        )
        .unwrap();
        assert_eq!(out.columns[0].null_count(), 1);
        assert_eq!(out.rejects, vec![(0, Some(1), Reason::MissingRequired)]);
    }
}

#[cfg(test)]
mod decimal_integer_tests {
    use super::*;

    #[test]
    fn integral_decimals_are_integers_and_fractions_are_not() {
        for (text, value) in [
            ("4180628.0", 4180628),
            ("4180628.000", 4180628),
            ("-12.0", -12),
            ("7.", 7),
            ("1.5e3", 1500),
            ("1e+05", 100_000),
            ("2500E-2", 25),
            ("0.0", 0),
            ("9223372036854775807.0", i64::MAX),
            ("-9223372036854775808.0", i64::MIN),
        ] {
            assert_eq!(integral_decimal(text), Some(value), "{text}");
        }
        for text in [
            "3.5",
            "1e30",
            "0.5e1x",
            "1e-1",
            "9223372036854775808.0",
            ".",
            "",
            "e5",
            "1e",
            "1.0.0",
            "+1.0",
            " 1.0",
            "0x10",
            "NaN",
            "inf",
            "1e99999",
        ] {
            assert_eq!(integral_decimal(text), None, "{text}");
        }
    }

    #[test]
    fn a_column_counts_its_decimal_integers_and_rejects_fractions() {
        let strings = StringArray::from(vec![Some("12"), Some("4180628.0"), None, Some("3.5")]);
        let (values, decimals) = parse_integers(&strings);
        let values = values.as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(decimals, 1);
        assert_eq!(values.value(0), 12);
        assert_eq!(values.value(1), 4180628);
        assert!(values.is_null(2) && values.is_null(3));
    }
}
