//! Reading one cell as its Table Schema type: the logical value, or `None` when the text is
//! not a valid value of the type. Pure functions of (field type, text): no panics, no I/O.

use std::borrow::Cow;
use std::sync::Arc;

use agora_core::ColumnType;
use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::Date32Type;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::Value as Json;

use super::schema::{
    DateFormat, DatetimeFormat, FieldType, GeopointFormat, StringFormat, TimeFormat,
};

/// A typed cell. Text borrows from the source where it is stored as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Cow<'a, str>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01T00:00:00 (UTC, or wall-clock for zone-less columns).
    Micros(i64),
}

impl Cell<'_> {
    /// Orders two cells of the same column (for minimum/maximum constraints).
    pub(crate) fn compare(&self, other: &Cell<'_>) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => Some(a.cmp(b)),
            (Cell::Float(a), Cell::Float(b)) => a.partial_cmp(b),
            (Cell::Text(a), Cell::Text(b)) => Some(a.cmp(b)),
            (Cell::Date(a), Cell::Date(b)) => Some(a.cmp(b)),
            (Cell::Micros(a), Cell::Micros(b)) => Some(a.cmp(b)),
            (Cell::Bool(a), Cell::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Appends an unambiguous encoding of the value (for enum, unique and key sets).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Cell::Int(v) => {
                out.push(b'i');
                out.extend_from_slice(&v.to_le_bytes());
            }
            Cell::Float(v) => {
                out.push(b'f');
                // -0.0 == 0.0, and every NaN is one value.
                let v = if *v == 0.0 { 0.0 } else { *v };
                let bits = if v.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    v.to_bits()
                };
                out.extend_from_slice(&bits.to_le_bytes());
            }
            Cell::Bool(v) => out.extend_from_slice(&[b'b', u8::from(*v)]),
            Cell::Text(v) => encode_text(v, out),
            Cell::Date(v) => {
                out.push(b'd');
                out.extend_from_slice(&v.to_le_bytes());
            }
            Cell::Micros(v) => {
                out.push(b'm');
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Text as written, for comparing fields of different types (see foreign keys).
pub(crate) fn encode_text(text: &str, out: &mut Vec<u8>) {
    out.push(b't');
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl FieldType {
    /// The lake type a field of this type is stored as.
    pub(crate) fn column_type(&self) -> ColumnType {
        match self {
            FieldType::Integer { .. } | FieldType::Year => ColumnType::Int64,
            FieldType::Number { .. } => ColumnType::Float64,
            FieldType::Boolean { .. } => ColumnType::Boolean,
            FieldType::Date(DateFormat::Pattern { full: false, .. }) => ColumnType::Utf8,
            FieldType::Date(_) => ColumnType::Date,
            FieldType::Datetime(DatetimeFormat::Pattern { zoned: false, .. }) => {
                ColumnType::Timestamp
            }
            FieldType::Datetime(_) => ColumnType::TimestampUtc,
            FieldType::String(_)
            | FieldType::Time(_)
            | FieldType::YearMonth
            | FieldType::Object
            | FieldType::Array
            | FieldType::Geojson
            | FieldType::Geopoint(_)
            | FieldType::Duration
            | FieldType::Any => ColumnType::Utf8,
        }
    }

    /// What a valid value looks like, for quarantine reasons.
    pub(crate) fn describe(&self) -> String {
        match self {
            FieldType::String(StringFormat::Default) => "string".into(),
            FieldType::String(f) => format!("string ({})", f.name()),
            FieldType::Integer { .. } => "integer".into(),
            FieldType::Number { .. } => "number".into(),
            FieldType::Boolean { .. } => "boolean (one of the true/false values)".into(),
            FieldType::Date(DateFormat::Default) => "date (YYYY-MM-DD)".into(),
            FieldType::Date(DateFormat::Any) => "date".into(),
            FieldType::Date(DateFormat::Pattern { pattern, .. }) => format!("date ({pattern})"),
            FieldType::Datetime(DatetimeFormat::Default) => {
                "datetime (YYYY-MM-DDThh:mm:ss[Z|±hh:mm])".into()
            }
            FieldType::Datetime(DatetimeFormat::Any) => "datetime".into(),
            FieldType::Datetime(DatetimeFormat::Pattern { pattern, .. }) => {
                format!("datetime ({pattern})")
            }
            FieldType::Time(TimeFormat::Default) => "time (hh:mm:ss)".into(),
            FieldType::Time(TimeFormat::Any) => "time".into(),
            FieldType::Time(TimeFormat::Pattern(p)) => format!("time ({p})"),
            FieldType::Year => "year (YYYY)".into(),
            FieldType::YearMonth => "yearmonth (YYYY-MM)".into(),
            FieldType::Object => "JSON object".into(),
            FieldType::Array => "JSON array".into(),
            FieldType::Geojson => "GeoJSON object".into(),
            FieldType::Geopoint(_) => "geopoint".into(),
            FieldType::Duration => "ISO 8601 duration".into(),
            FieldType::Any => "value".into(),
        }
    }

    /// The value `text` denotes, or `None` if it is not a valid value of this type.
    pub(crate) fn parse<'a>(&self, text: &'a str) -> Option<Cell<'a>> {
        match self {
            FieldType::String(format) => format
                .accepts(text)
                .then_some(Cell::Text(Cow::Borrowed(text))),
            FieldType::Integer {
                bare_number,
                group_char,
            } => parse_integer(text, *bare_number, *group_char).map(Cell::Int),
            FieldType::Number {
                bare_number,
                group_char,
                decimal_char,
            } => parse_number(text, *bare_number, *group_char, *decimal_char).map(Cell::Float),
            FieldType::Boolean {
                true_values,
                false_values,
            } => {
                if true_values.iter().any(|v| v == text) {
                    Some(Cell::Bool(true))
                } else if false_values.iter().any(|v| v == text) {
                    Some(Cell::Bool(false))
                } else {
                    None
                }
            }
            FieldType::Date(format) => parse_date(format, text),
            FieldType::Datetime(format) => parse_datetime(format, text).map(Cell::Micros),
            FieldType::Time(format) => {
                parse_time(format, text).map(|t| Cell::Text(Cow::Owned(t.to_string())))
            }
            FieldType::Year => parse_year(text).map(Cell::Int),
            FieldType::YearMonth => parse_year_month(text)
                .map(|(y, m)| Cell::Text(Cow::Owned(format!("{y:04}-{m:02}")))),
            FieldType::Object => {
                matches!(json(text)?, Json::Object(_)).then_some(Cell::Text(Cow::Borrowed(text)))
            }
            FieldType::Array => {
                matches!(json(text)?, Json::Array(_)).then_some(Cell::Text(Cow::Borrowed(text)))
            }
            FieldType::Geojson => json(text)?
                .get("type")
                .is_some_and(Json::is_string)
                .then_some(Cell::Text(Cow::Borrowed(text))),
            FieldType::Geopoint(format) => {
                parse_geopoint(*format, text).then_some(Cell::Text(Cow::Borrowed(text)))
            }
            FieldType::Duration => is_duration(text).then_some(Cell::Text(Cow::Borrowed(text))),
            FieldType::Any => Some(Cell::Text(Cow::Borrowed(text))),
        }
    }
}

/// JSON text, bounded: cells are at most one CSV record long, and serde_json limits depth.
fn json(text: &str) -> Option<Json> {
    serde_json::from_str(text).ok()
}

impl StringFormat {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            StringFormat::Default => "default",
            StringFormat::Email => "email",
            StringFormat::Uri => "uri",
            StringFormat::Uuid => "uuid",
            StringFormat::Binary => "binary",
        }
    }

    fn accepts(&self, s: &str) -> bool {
        match self {
            StringFormat::Default => true,
            StringFormat::Email => s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !s.chars().any(char::is_whitespace)
            }),
            StringFormat::Uri => s.split_once(':').is_some_and(|(scheme, rest)| {
                scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                    && !rest.is_empty()
                    && !s.chars().any(char::is_whitespace)
            }),
            StringFormat::Uuid => {
                let b = s.as_bytes();
                b.len() == 36
                    && b.iter().enumerate().all(|(i, c)| match i {
                        8 | 13 | 18 | 23 => *c == b'-',
                        _ => c.is_ascii_hexdigit(),
                    })
            }
            StringFormat::Binary => {
                let b = s.as_bytes();
                let body = b
                    .strip_suffix(b"==")
                    .or_else(|| b.strip_suffix(b"="))
                    .unwrap_or(b);
                b.len().is_multiple_of(4)
                    && body
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
            }
        }
    }
}

/// `[+-]digits`, after removing group characters; with `bare_number` false, leading and
/// trailing non-numeric text (a currency sign, a unit) is removed first.
fn parse_integer(text: &str, bare_number: bool, group_char: Option<char>) -> Option<i64> {
    let text = if bare_number {
        text
    } else {
        strip_non_numeric(text)
    };
    let cleaned: Cow<'_, str> = match group_char {
        Some(g) if text.contains(g) => Cow::Owned(text.chars().filter(|c| *c != g).collect()),
        _ => Cow::Borrowed(text),
    };
    let digits = cleaned
        .strip_prefix('-')
        .or_else(|| cleaned.strip_prefix('+'))
        .unwrap_or(&cleaned);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cleaned.parse().ok()
}

fn strip_non_numeric(text: &str) -> &str {
    let numeric = |c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | ',');
    let start = text.find(numeric).unwrap_or(text.len());
    let end = text
        .rfind(|c: char| c.is_ascii_digit())
        .map_or(start, |i| i + 1);
    text.get(start..end.max(start)).unwrap_or("")
}

/// A decimal number (`1`, `-2.5`, `6.07e+16`, `NaN`, `INF`, `-INF`), with the field's
/// decimal and group characters.
fn parse_number(
    text: &str,
    bare_number: bool,
    group_char: Option<char>,
    decimal_char: char,
) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let text = if bare_number {
        text
    } else {
        strip_non_numeric(text)
    };
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if Some(c) == group_char {
            continue;
        }
        let c = if c == decimal_char { '.' } else { c };
        if !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E')) {
            return None;
        }
        cleaned.push(c);
    }
    if !cleaned.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    cleaned.parse().ok()
}

fn days(d: NaiveDate) -> i32 {
    Date32Type::from_naive_date(d)
}

/// `YYYY-MM-DD` exactly (chrono alone would accept `2020-1-5`).
fn iso_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// Day-first forms tried for `format: any` (the hub's producers are European).
const ANY_DATES: &[&str] = &[
    "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y%m%d",
];

fn parse_date<'a>(format: &DateFormat, text: &'a str) -> Option<Cell<'a>> {
    match format {
        DateFormat::Default => iso_date(text).map(|d| Cell::Date(days(d))),
        DateFormat::Any => ANY_DATES
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
            .map(|d| Cell::Date(days(d))),
        DateFormat::Pattern {
            pattern,
            full: true,
        } => NaiveDate::parse_from_str(text, pattern)
            .ok()
            .map(|d| Cell::Date(days(d))),
        // A pattern that does not fix a calendar day (SNDS `%m`, a month number): checked
        // against the pattern, kept as written rather than inventing a year or a day.
        DateFormat::Pattern {
            pattern,
            full: false,
        } => {
            let mut parsed = chrono::format::Parsed::new();
            chrono::format::parse(
                &mut parsed,
                text,
                chrono::format::StrftimeItems::new(pattern),
            )
            .ok()
            .map(|()| Cell::Text(Cow::Borrowed(text)))
        }
    }
}

fn micros(dt: NaiveDateTime) -> Option<i64> {
    Some(dt.and_utc().timestamp_micros())
}

/// `YYYY-MM-DDThh:mm:ss[.fff]` with an optional `Z` or offset; without one the time is UTC,
/// the spec's default.
fn iso_datetime(text: &str, space_too: bool) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        if text.as_bytes().get(10) == Some(&b'T') || space_too {
            return Some(dt.timestamp_micros());
        }
        return None;
    }
    let formats: &[&str] = if space_too {
        &[
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ]
    } else {
        &["%Y-%m-%dT%H:%M:%S%.f"]
    };
    if text.len() < 16 || text.as_bytes()[4] != b'-' {
        return None;
    }
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .and_then(micros)
}

fn parse_datetime(format: &DatetimeFormat, text: &str) -> Option<i64> {
    match format {
        DatetimeFormat::Default => iso_datetime(text, false),
        DatetimeFormat::Any => iso_datetime(text, true),
        DatetimeFormat::Pattern {
            pattern,
            zoned: true,
        } => DateTime::parse_from_str(text, pattern)
            .ok()
            .map(|dt| dt.timestamp_micros()),
        DatetimeFormat::Pattern {
            pattern,
            zoned: false,
        } => NaiveDateTime::parse_from_str(text, pattern)
            .ok()
            .and_then(micros),
    }
}

fn parse_time(format: &TimeFormat, text: &str) -> Option<NaiveTime> {
    let time = match format {
        TimeFormat::Default => {
            if text.len() < 8 || text.as_bytes()[2] != b':' {
                return None;
            }
            NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()
        }
        TimeFormat::Any => ["%H:%M:%S%.f", "%H:%M"]
            .iter()
            .find_map(|f| NaiveTime::parse_from_str(text, f).ok()),
        TimeFormat::Pattern(p) => NaiveTime::parse_from_str(text, p).ok(),
    }?;
    // Leap seconds have no place in a stored time of day.
    (time.nanosecond() < 1_000_000_000).then_some(time)
}

/// A year: four digits, or more, optionally negative (XML Schema gYear).
fn parse_year(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.len() < 4 || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `YYYY-MM`, or `YYYYMM` (as SNDS extracts write it; unambiguous at six digits).
fn parse_year_month(text: &str) -> Option<(i64, u32)> {
    let (year, month) = match text.len() {
        7 if text.as_bytes()[4] == b'-' => (text.get(..4)?, text.get(5..)?),
        6 => (text.get(..4)?, text.get(4..)?),
        _ => return None,
    };
    if !(year.bytes().all(|b| b.is_ascii_digit()) && month.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let month: u32 = month.parse().ok()?;
    (1..=12)
        .contains(&month)
        .then(|| Some((year.parse().ok()?, month)))?
}

fn parse_geopoint(format: GeopointFormat, text: &str) -> bool {
    let (lon, lat) = match format {
        GeopointFormat::Default => {
            let Some((lon, lat)) = text.split_once(',') else {
                return false;
            };
            match (lon.trim().parse::<f64>(), lat.trim().parse::<f64>()) {
                (Ok(lon), Ok(lat)) => (lon, lat),
                _ => return false,
            }
        }
        GeopointFormat::Array => match json(text) {
            Some(Json::Array(a)) if a.len() == 2 => match (a[0].as_f64(), a[1].as_f64()) {
                (Some(lon), Some(lat)) => (lon, lat),
                _ => return false,
            },
            _ => return false,
        },
        GeopointFormat::Object => match json(text) {
            Some(o) => match (
                o.get("lon").and_then(Json::as_f64),
                o.get("lat").and_then(Json::as_f64),
            ) {
                (Some(lon), Some(lat)) => (lon, lat),
                _ => return false,
            },
            None => return false,
        },
    };
    (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)
}

/// ISO 8601 duration: `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]`, at least one part.
fn is_duration(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return false,
        None => (rest, None),
    };
    let parts = |s: &str, units: &str, fraction_last: bool| -> Option<usize> {
        let mut count = 0;
        let mut number = String::new();
        let mut allowed = units;
        for c in s.chars() {
            if c.is_ascii_digit() || (fraction_last && c == '.' && !number.contains('.')) {
                number.push(c);
                continue;
            }
            let at = allowed.find(c)?;
            if number.is_empty() || number.ends_with('.') || (number.contains('.') && c != 'S') {
                return None;
            }
            allowed = &allowed[at + 1..];
            number.clear();
            count += 1;
        }
        number.is_empty().then_some(count)
    };
    let Some(d) = parts(date, "YMWD", false) else {
        return false;
    };
    let t = match time {
        Some(t) => match parts(t, "HMS", true) {
            Some(0) | None => return false,
            Some(n) => n,
        },
        None => 0,
    };
    d + t > 0
}

/// Builds one stored column from cells.
pub(crate) enum ColumnBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Date(Date32Builder),
    Micros(TimestampMicrosecondBuilder, bool),
}

impl ColumnBuilder {
    pub(crate) fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::Int64 => ColumnBuilder::Int(Int64Builder::with_capacity(rows)),
            ColumnType::Float64 => ColumnBuilder::Float(Float64Builder::with_capacity(rows)),
            ColumnType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            ColumnType::Utf8 => ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 8)),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            ColumnType::Timestamp => {
                ColumnBuilder::Micros(TimestampMicrosecondBuilder::with_capacity(rows), false)
            }
            ColumnType::TimestampUtc => {
                ColumnBuilder::Micros(TimestampMicrosecondBuilder::with_capacity(rows), true)
            }
        }
    }

    /// Appends `cell`, or a null. A cell of another type than the column's is a bug in the
    /// caller; it is stored as null rather than panicking.
    pub(crate) fn push(&mut self, cell: Option<&Cell<'_>>) {
        match (self, cell) {
            (ColumnBuilder::Int(b), Some(Cell::Int(v))) => b.append_value(*v),
            (ColumnBuilder::Float(b), Some(Cell::Float(v))) => b.append_value(*v),
            (ColumnBuilder::Bool(b), Some(Cell::Bool(v))) => b.append_value(*v),
            (ColumnBuilder::Text(b), Some(Cell::Text(v))) => b.append_value(v),
            (ColumnBuilder::Date(b), Some(Cell::Date(v))) => b.append_value(*v),
            (ColumnBuilder::Micros(b, _), Some(Cell::Micros(v))) => b.append_value(*v),
            (ColumnBuilder::Int(b), _) => b.append_null(),
            (ColumnBuilder::Float(b), _) => b.append_null(),
            (ColumnBuilder::Bool(b), _) => b.append_null(),
            (ColumnBuilder::Text(b), _) => b.append_null(),
            (ColumnBuilder::Date(b), _) => b.append_null(),
            (ColumnBuilder::Micros(b, _), _) => b.append_null(),
        }
    }

    pub(crate) fn finish(self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Micros(mut b, zoned) => {
                let a = b.finish();
                Arc::new(if zoned { a.with_timezone("UTC") } else { a })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(text: &str) -> Option<i64> {
        parse_integer(text, true, None)
    }

    #[test]
    fn integers() {
        assert_eq!(int("42"), Some(42));
        assert_eq!(int("+7"), Some(7));
        assert_eq!(int("-0012"), Some(-12));
        for bad in ["", "-", "1.0", "1e3", " 4", "99999999999999999999", "١٢"] {
            assert_eq!(int(bad), None, "{bad}");
        }
        assert_eq!(parse_integer("1 234 567", true, Some(' ')), Some(1_234_567));
        assert_eq!(parse_integer("€95", false, None), Some(95));
        assert_eq!(parse_integer("95 %", false, None), Some(95));
        assert_eq!(parse_integer("€", false, None), None);
    }

    #[test]
    fn numbers() {
        let n = |t| parse_number(t, true, None, '.');
        assert_eq!(n("6.072211756219894e+16"), Some(6.072211756219894e16));
        assert_eq!(n("-2.5"), Some(-2.5));
        assert!(n("NaN").unwrap().is_nan());
        assert_eq!(n("-INF"), Some(f64::NEG_INFINITY));
        for bad in ["", "inf", "nan", "infinity", "1,5", "0x10", "e", "."] {
            assert_eq!(n(bad), None, "{bad}");
        }
        assert_eq!(parse_number("1.234,5", true, Some('.'), ','), Some(1234.5));
        assert_eq!(parse_number("12,5 €", false, None, ','), Some(12.5));
    }

    #[test]
    fn dates_and_times() {
        let d = |f: &DateFormat, t| parse_date(f, t);
        assert_eq!(d(&DateFormat::Default, "1970-01-02"), Some(Cell::Date(1)));
        assert_eq!(d(&DateFormat::Default, "1970-1-2"), None);
        assert_eq!(d(&DateFormat::Default, "2021-02-29"), None);
        assert_eq!(d(&DateFormat::Any, "02/01/1970"), Some(Cell::Date(1)));
        let dmy = DateFormat::Pattern {
            pattern: "%d%m%Y".into(),
            full: true,
        };
        assert_eq!(d(&dmy, "02011970"), Some(Cell::Date(1)));
        assert_eq!(d(&dmy, "32011970"), None);
        let month = DateFormat::Pattern {
            pattern: "%m".into(),
            full: false,
        };
        assert_eq!(d(&month, "05"), Some(Cell::Text("05".into())));
        assert_eq!(d(&month, "13"), None);

        let sas = DatetimeFormat::Pattern {
            pattern: "%d%b%Y:%H:%M:%S".into(),
            zoned: false,
        };
        assert_eq!(parse_datetime(&sas, "01JAN1970:00:00:01"), Some(1_000_000));
        assert!(parse_datetime(&sas, "02Jan2007:22:12:17").is_some());
        let iso = DatetimeFormat::Default;
        assert_eq!(
            parse_datetime(&iso, "1970-01-01T00:00:01Z"),
            Some(1_000_000)
        );
        assert_eq!(
            parse_datetime(&iso, "1970-01-01T01:00:01+01:00"),
            Some(1_000_000)
        );
        assert_eq!(parse_datetime(&iso, "1970-01-01T00:00:01"), Some(1_000_000));
        assert_eq!(parse_datetime(&iso, "1970-01-01 00:00:01Z"), None);
        assert_eq!(
            parse_datetime(&DatetimeFormat::Any, "1970-01-01 00:00:01"),
            Some(1_000_000)
        );

        assert_eq!(
            parse_time(&TimeFormat::Default, "07:05:00.5").map(|t| t.to_string()),
            Some("07:05:00.500".into())
        );
        assert_eq!(parse_time(&TimeFormat::Default, "7:05:00"), None);
        assert_eq!(parse_time(&TimeFormat::Default, "24:00:00"), None);
        assert_eq!(parse_time(&TimeFormat::Default, "23:59:60"), None);
    }

    #[test]
    fn years_and_months() {
        assert_eq!(parse_year("2028"), Some(2028));
        assert_eq!(parse_year("-0500"), Some(-500));
        assert_eq!(parse_year("28"), None);
        assert_eq!(parse_year_month("2020-03"), Some((2020, 3)));
        assert_eq!(parse_year_month("202003"), Some((2020, 3)));
        assert_eq!(parse_year_month("2020-13"), None);
        assert_eq!(parse_year_month("2020-3"), None);
        assert_eq!(parse_year_month("20200"), None);
    }

    #[test]
    fn strings_json_geo_and_durations() {
        assert!(StringFormat::Email.accepts("a.b@example.org"));
        assert!(!StringFormat::Email.accepts("a b@example.org"));
        assert!(!StringFormat::Email.accepts("@example.org"));
        assert!(StringFormat::Uri.accepts("urn:oid:1.2.3"));
        assert!(!StringFormat::Uri.accepts("not a uri"));
        assert!(StringFormat::Uuid.accepts("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!StringFormat::Uuid.accepts("123e4567e89b12d3a456426614174000"));
        assert!(StringFormat::Binary.accepts("aGVsbG8="));
        assert!(!StringFormat::Binary.accepts("aGVsbG8"));
        assert!(FieldType::Object.parse(r#"{"a":1}"#).is_some());
        assert!(FieldType::Object.parse("[1]").is_none());
        assert!(FieldType::Array.parse("[1]").is_some());
        assert!(parse_geopoint(GeopointFormat::Default, "2.35, 48.85"));
        assert!(!parse_geopoint(GeopointFormat::Default, "200, 48.85"));
        assert!(parse_geopoint(GeopointFormat::Array, "[2.35, 48.85]"));
        assert!(parse_geopoint(
            GeopointFormat::Object,
            r#"{"lon":2.35,"lat":48.85}"#
        ));
        for good in ["P1Y", "P1Y2M10DT2H30M", "PT0.5S", "P3W", "PT36H"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in [
            "", "P", "PT", "1Y", "P1H", "PT1D", "P1M1Y", "PT1.5M", "P1.Y",
        ] {
            assert!(!is_duration(bad), "{bad}");
        }
    }

    #[test]
    fn encodings_tell_values_and_types_apart() {
        let enc = |c: Cell<'_>| {
            let mut v = Vec::new();
            c.encode(&mut v);
            v
        };
        assert_ne!(enc(Cell::Int(1)), enc(Cell::Text("1".into())));
        assert_eq!(enc(Cell::Float(0.0)), enc(Cell::Float(-0.0)));
        assert_eq!(enc(Cell::Float(f64::NAN)), enc(Cell::Float(-f64::NAN)));
        let mut ab = Vec::new();
        encode_text("a", &mut ab);
        encode_text("bc", &mut ab);
        let mut abc = Vec::new();
        encode_text("ab", &mut abc);
        encode_text("c", &mut abc);
        assert_ne!(ab, abc);
    }
}
