//! Partial dates, times and decimals: recognising their shapes, and the FHIRPath functions
//! `lowBoundary()` / `highBoundary()`, which widen a value of limited precision to the
//! smallest / largest value it may stand for (`1970-06` → `1970-06-01` / `1970-06-30`).

use serde_json::{Number, Value};

/// The temporal types a string may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    Date,
    DateTime,
    Time,
}

impl Temporal {
    /// The FHIR type name.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Temporal::Date => "date",
            Temporal::DateTime => "dateTime",
            Temporal::Time => "time",
        }
    }

    /// The temporal type of a string: from its FHIR type when known, else from its shape.
    pub(crate) fn of(text: &str, hint: Option<&str>) -> Option<Temporal> {
        match hint {
            Some("date") => return Some(Temporal::Date),
            Some("dateTime" | "instant") => return Some(Temporal::DateTime),
            Some("time") => return Some(Temporal::Time),
            Some(_) => return None,
            None => {}
        }
        if parse_date(text).is_some() {
            Some(Temporal::Date)
        } else if parse_date_time(text).is_some() {
            Some(Temporal::DateTime)
        } else if parse_time(text).is_some() {
            Some(Temporal::Time)
        } else {
            None
        }
    }
}

/// Whether `text` (a literal without its `@`) is a date, a date-time or (after `T`) a time.
pub(crate) fn is_date_time_literal(text: &str) -> bool {
    literal_type(text).is_some()
}

/// The type of a date/time literal (without its `@`) and its value as FHIR JSON writes it.
pub(crate) fn literal_type(text: &str) -> Option<(Temporal, &str)> {
    if let Some(time) = text.strip_prefix('T') {
        return parse_time(time).map(|_| (Temporal::Time, time));
    }
    if parse_date(text).is_some() {
        return Some((Temporal::Date, text));
    }
    // FHIRPath allows a trailing `T` on a partial date-time (`@2015T`).
    let trimmed = text.strip_suffix('T').unwrap_or(text);
    if parse_date(trimmed).is_some() {
        return Some((Temporal::DateTime, trimmed));
    }
    parse_date_time(text).map(|_| (Temporal::DateTime, text))
}

struct DateParts {
    year: u32,
    month: Option<u32>,
    day: Option<u32>,
}

struct TimeParts<'a> {
    hour: u32,
    minute: Option<u32>,
    second: Option<u32>,
    fraction: Option<&'a str>,
}

fn digits(text: &str, len: usize, max: u32) -> Option<u32> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v <= max)
}

/// An optional component: absent is `Some(None)`, present but invalid is `None`.
fn optional_part(part: Option<&str>, len: usize, max: u32) -> Option<Option<u32>> {
    match part {
        None => Some(None),
        Some(text) => digits(text, len, max).map(Some),
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<DateParts> {
    let mut parts = text.split('-');
    let year = digits(parts.next()?, 4, 9999)?;
    let month = optional_part(parts.next(), 2, 12)?;
    let day = optional_part(parts.next(), 2, 31)?;
    if parts.next().is_some() || month == Some(0) || day == Some(0) {
        return None;
    }
    if let (Some(m), Some(d)) = (month, day)
        && d > days_in_month(year, m)
    {
        return None;
    }
    Some(DateParts { year, month, day })
}

/// `hh`, `hh:mm`, `hh:mm:ss` or `hh:mm:ss.fff` (any number of fraction digits).
fn parse_time(text: &str) -> Option<TimeParts<'_>> {
    let (main, fraction) = match text.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (text, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut parts = main.split(':');
    let hour = digits(parts.next()?, 2, 23)?;
    let minute = optional_part(parts.next(), 2, 59)?;
    let second = optional_part(parts.next(), 2, 59)?;
    if parts.next().is_some() || (fraction.is_some() && second.is_none()) {
        return None;
    }
    Some(TimeParts {
        hour,
        minute,
        second,
        fraction,
    })
}

/// A date, then `T`, a time and an optional time zone (`Z` or `±hh:mm`).
fn parse_date_time(text: &str) -> Option<(DateParts, Option<TimeParts<'_>>, Option<&str>)> {
    let (date, rest) = text.split_once('T')?;
    let date = parse_date(date)?;
    let (time, zone) = split_zone(rest)?;
    let time = if time.is_empty() {
        None
    } else {
        Some(parse_time(time)?)
    };
    Some((date, time, zone))
}

fn split_zone(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(time) = text.strip_suffix('Z') {
        return Some((time, Some("Z")));
    }
    match text.rfind(['+', '-']) {
        Some(at) => {
            let zone = &text[at..];
            let (hours, minutes) = zone[1..].split_once(':')?;
            digits(hours, 2, 14)?;
            digits(minutes, 2, 59)?;
            Some((&text[..at], Some(zone)))
        }
        None => Some((text, None)),
    }
}

/// Which end of the range a boundary function asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Low,
    High,
}

/// The boundary of a partial date, date-time or time, or `None` if `text` is not one.
pub(crate) fn temporal_boundary(text: &str, kind: Temporal, end: End) -> Option<String> {
    match kind {
        Temporal::Date => parse_date(text).map(|d| date_boundary(&d, end)),
        Temporal::Time => parse_time(text).map(|t| time_boundary(&t, end)),
        Temporal::DateTime => {
            let (date, time, zone) = match parse_date_time(text) {
                Some(parts) => parts,
                // A date-time of date precision is written without `T` in FHIR JSON.
                None => (parse_date(text)?, None, None),
            };
            let time = match time {
                Some(t) => time_boundary(&t, end),
                None => time_boundary(
                    &TimeParts {
                        hour: if end == End::Low { 0 } else { 23 },
                        minute: None,
                        second: None,
                        fraction: None,
                    },
                    end,
                ),
            };
            // Without a zone, the instant could be in any zone from +14:00 to -12:00.
            let zone = zone.unwrap_or(if end == End::Low { "+14:00" } else { "-12:00" });
            Some(format!("{}T{time}{zone}", date_boundary(&date, end)))
        }
    }
}

fn date_boundary(date: &DateParts, end: End) -> String {
    let month = date.month.unwrap_or(if end == End::Low { 1 } else { 12 });
    let day = date.day.unwrap_or(if end == End::Low {
        1
    } else {
        days_in_month(date.year, month)
    });
    format!("{:04}-{month:02}-{day:02}", date.year)
}

fn time_boundary(time: &TimeParts<'_>, end: End) -> String {
    let fill = if end == End::Low { 0 } else { 59 };
    let pad = if end == End::Low { '0' } else { '9' };
    let mut fraction = time.fraction.unwrap_or("").to_owned();
    while fraction.len() < 3 {
        fraction.push(pad);
    }
    format!(
        "{:02}:{:02}:{:02}.{fraction}",
        time.hour,
        time.minute.unwrap_or(fill),
        time.second.unwrap_or(fill)
    )
}

/// The boundary of a decimal given its precision: `1.0` stands for [0.95, 1.05).
///
/// JSON numbers arrive as `f64` or integers, so the precision is that of the shortest
/// representation of the number (`1.0` has one decimal place, `2` none); trailing zeros
/// beyond the first are not preserved by the JSON parser.
pub(crate) fn decimal_boundary(number: &Number, end: End) -> Option<Number> {
    let (mantissa, scale) = if let Some(i) = number.as_i64() {
        (i128::from(i), 0)
    } else if let Some(u) = number.as_u64() {
        (i128::from(u), 0)
    } else {
        parse_decimal(&format!("{:?}", number.as_f64()?))?
    };
    // Half a unit of the last place, i.e. 5 at one more decimal place.
    let widened = mantissa.checked_mul(10)?;
    let bound = match end {
        End::Low => widened.checked_sub(5)?,
        End::High => widened.checked_add(5)?,
    };
    let text = format_decimal(bound, scale + 1);
    Number::from_f64(text.parse().ok()?)
}

/// The number of decimal places in the shortest representation of `value` (`1.25` → 2),
/// `None` for magnitudes too large or small to count them.
pub(crate) fn decimal_places(value: f64) -> Option<u32> {
    parse_decimal(&format!("{value:?}")).map(|(_, scale)| scale)
}

/// `-12.50e-3` → (-1250, 5): the value is `mantissa × 10^-scale`.
fn parse_decimal(text: &str) -> Option<(i128, u32)> {
    let (body, exponent) = match text.split_once(['e', 'E']) {
        Some((body, exp)) => (body, exp.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let all: String = [int, frac].concat();
    if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut mantissa: i128 = all.parse().ok()?;
    let mut scale = i32::try_from(frac.len()).ok()? - exponent;
    while scale < 0 {
        mantissa = mantissa.checked_mul(10)?;
        scale += 1;
    }
    Some((if negative { -mantissa } else { mantissa }, scale as u32))
}

fn format_decimal(mantissa: i128, scale: u32) -> String {
    let digits = mantissa.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if mantissa < 0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// The value of a boundary function applied to one item, or `None` when the item has no
/// boundary (not a decimal, date, date-time or time).
pub(crate) fn boundary(
    value: &Value,
    hint: Option<&str>,
    end: End,
) -> Option<(Value, &'static str)> {
    match value {
        Value::Number(n) => decimal_boundary(n, end).map(|n| (Value::Number(n), "decimal")),
        Value::String(s) => {
            let kind = Temporal::of(s, hint)?;
            temporal_boundary(s, kind, end).map(|b| (Value::String(b), kind.type_name()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn low(v: Value, hint: Option<&str>) -> Option<Value> {
        boundary(&v, hint, End::Low).map(|(v, _)| v)
    }

    fn high(v: Value, hint: Option<&str>) -> Option<Value> {
        boundary(&v, hint, End::High).map(|(v, _)| v)
    }

    #[test]
    fn decimal_boundaries_use_the_precision() {
        assert_eq!(low(json!(1.0), None), Some(json!(0.95)));
        assert_eq!(high(json!(1.0), None), Some(json!(1.05)));
        assert_eq!(low(json!(1.587), None), Some(json!(1.5865)));
        assert_eq!(low(json!(-1.5), None), Some(json!(-1.55)));
        assert_eq!(high(json!(2), None), Some(json!(2.5)));
    }

    #[test]
    fn date_boundaries_fill_missing_parts() {
        assert_eq!(low(json!("1970-06"), None), Some(json!("1970-06-01")));
        assert_eq!(high(json!("1970-06"), None), Some(json!("1970-06-30")));
        assert_eq!(high(json!("2024-02"), None), Some(json!("2024-02-29")));
        assert_eq!(high(json!("1900"), None), Some(json!("1900-12-31")));
    }

    #[test]
    fn date_time_boundaries_span_all_time_zones() {
        assert_eq!(
            low(json!("2010-10-10"), Some("dateTime")),
            Some(json!("2010-10-10T00:00:00.000+14:00"))
        );
        assert_eq!(
            high(json!("2010-10-10"), Some("dateTime")),
            Some(json!("2010-10-10T23:59:59.999-12:00"))
        );
        assert_eq!(
            high(json!("2010-10-10T10:30Z"), None),
            Some(json!("2010-10-10T10:30:59.999Z"))
        );
    }

    #[test]
    fn time_boundaries_pad_fractions() {
        assert_eq!(low(json!("12:34:00"), None), Some(json!("12:34:00.000")));
        assert_eq!(
            high(json!("12:34"), Some("time")),
            Some(json!("12:34:59.999"))
        );
        assert_eq!(high(json!("12:34:00.5"), None), Some(json!("12:34:00.599")));
    }

    #[test]
    fn non_temporal_values_have_no_boundary() {
        assert_eq!(low(json!("hello"), None), None);
        assert_eq!(low(json!(true), None), None);
        assert_eq!(low(json!("2010-13"), None), None);
        assert_eq!(low(json!("2023-02-29"), None), None);
    }

    #[test]
    fn literals_are_classified() {
        assert_eq!(
            literal_type("2020-01-01").map(|t| t.0),
            Some(Temporal::Date)
        );
        assert_eq!(literal_type("2020T").map(|t| t.0), Some(Temporal::DateTime));
        assert_eq!(
            literal_type("2020-01-01T10:00:00.123+02:00").map(|t| t.0),
            Some(Temporal::DateTime)
        );
        assert_eq!(literal_type("T12:30"), Some((Temporal::Time, "12:30")));
        assert!(!is_date_time_literal(""));
        assert!(!is_date_time_literal("20-01"));
    }
}
