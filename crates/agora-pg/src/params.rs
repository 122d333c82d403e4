//! Bind parameters as the query service's [`Parameter`]s: decoded by the type the client
//! declared (or as text when it declared none), in text or binary format.

use std::sync::LazyLock;

use agora_service::Parameter;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::error::PgWireResult;
use postgres_types::FromSql;
use regex::Regex;
use rust_decimal::Decimal;

use crate::error::user_error;

fn invalid() -> pgwire::error::PgWireError {
    user_error(
        "22P02",
        "a parameter value does not match its declared type",
    )
}

fn binary<'a, T: FromSql<'a>>(ty: &Type, raw: &'a [u8]) -> PgWireResult<T> {
    T::from_sql(ty, raw).map_err(|_| invalid())
}

/// One parameter.
fn decode(raw: Option<&Bytes>, ty: Option<&Type>, is_binary: bool) -> PgWireResult<Parameter> {
    let Some(raw) = raw else {
        return Ok(Parameter::Null);
    };
    let ty = ty.cloned().unwrap_or(Type::UNKNOWN);
    if is_binary {
        return Ok(match ty {
            Type::BOOL => Parameter::Bool(binary(&ty, raw)?),
            Type::INT2 => Parameter::Int(binary::<i16>(&ty, raw)?.into()),
            Type::INT4 => Parameter::Int(binary::<i32>(&ty, raw)?.into()),
            Type::INT8 => Parameter::Int(binary(&ty, raw)?),
            Type::OID => Parameter::Int(binary::<u32>(&ty, raw)?.into()),
            Type::FLOAT4 => Parameter::Float(binary::<f32>(&ty, raw)?.into()),
            Type::FLOAT8 => Parameter::Float(binary(&ty, raw)?),
            Type::NUMERIC => Parameter::Decimal(binary::<Decimal>(&ty, raw)?.to_string()),
            Type::DATE => Parameter::Date(binary(&ty, raw)?),
            Type::TIMESTAMP => Parameter::Timestamp(binary(&ty, raw)?),
            Type::TIMESTAMPTZ => {
                Parameter::Timestamp(binary::<DateTime<Utc>>(&ty, raw)?.naive_utc())
            }
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Parameter::Text(std::str::from_utf8(raw).map_err(|_| invalid())?.to_owned())
            }
            _ => {
                return Err(user_error(
                    "0A000",
                    "a parameter of this type cannot be sent in binary; send it as text",
                ));
            }
        });
    }
    let text = std::str::from_utf8(raw).map_err(|_| invalid())?;
    let t = text.trim();
    Ok(match ty {
        Type::BOOL => Parameter::Bool(match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" | "y" => true,
            "f" | "false" | "no" | "off" | "0" | "n" => false,
            _ => return Err(invalid()),
        }),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            Parameter::Int(t.parse().map_err(|_| invalid())?)
        }
        Type::FLOAT4 | Type::FLOAT8 => Parameter::Float(t.parse().map_err(|_| invalid())?),
        Type::NUMERIC => Parameter::Decimal(t.to_owned()),
        Type::DATE => {
            Parameter::Date(NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| invalid())?)
        }
        Type::TIMESTAMP => Parameter::Timestamp(parse_timestamp(t).ok_or_else(invalid)?),
        Type::TIMESTAMPTZ => Parameter::Timestamp(
            DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%#z")
                .or_else(|_| DateTime::parse_from_rfc3339(t))
                .map(|d| d.naive_utc())
                .ok()
                .or_else(|| parse_timestamp(t))
                .ok_or_else(invalid)?,
        ),
        Type::UNKNOWN => zoned_date_or_time(t).unwrap_or_else(|| Parameter::Text(text.to_owned())),
        _ => Parameter::Text(text.to_owned()),
    })
}

/// pgjdbc's `setDate` and `setTimestamp` send an untyped `1990-01-01 +02` or
/// `1990-01-01 10:00:00.5+02`, which PostgreSQL coerces to the column's type, dropping
/// the offset of a date and applying that of a timestamp (the session is in UTC). The
/// engine takes no offsets, so the front does that coercion here.
fn zoned_date_or_time(t: &str) -> Option<Parameter> {
    static ZONED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\d{4}-\d{2}-\d{2})(?: (\d{2}:\d{2}:\d{2}(?:\.\d+)?))? ?([+-]\d{2}(?::?\d{2}){0,2})$")
            .unwrap()
    });
    let caps = ZONED.captures(t)?;
    let date = NaiveDate::parse_from_str(&caps[1], "%Y-%m-%d").ok()?;
    let Some(time) = caps.get(2) else {
        return Some(Parameter::Date(date));
    };
    let offset = caps[3].replace(':', "");
    let offset = match offset.len() {
        3 => format!("{offset}00"),
        5 => offset,
        _ => return None, // seconds in the offset: left as text
    };
    let stamp = format!("{} {}{offset}", &caps[1], time.as_str());
    DateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.f%z")
        .ok()
        .map(|d| Parameter::Timestamp(d.naive_utc()))
}

fn parse_timestamp(t: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

/// Every parameter of a portal.
pub(crate) fn decode_all(
    values: &[Option<Bytes>],
    types: &[Option<Type>],
    format: &Format,
) -> PgWireResult<Vec<Parameter>> {
    values
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            decode(
                raw.as_ref(),
                types.get(i).and_then(Option::as_ref),
                format.is_binary(i),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary() {
        let p = decode(Some(&Bytes::from_static(b"1950")), Some(&Type::INT8), false).unwrap();
        assert!(matches!(p, Parameter::Int(1950)));
        let p = decode(
            Some(&Bytes::from(7i32.to_be_bytes().to_vec())),
            Some(&Type::INT4),
            true,
        )
        .unwrap();
        assert!(matches!(p, Parameter::Int(7)));
        let p = decode(Some(&Bytes::from_static(b"abc")), None, false).unwrap();
        assert!(matches!(p, Parameter::Text(ref s) if s == "abc"));
        assert!(decode(Some(&Bytes::from_static(b"x")), Some(&Type::INT4), false).is_err());
        assert!(matches!(
            decode(None, None, false).unwrap(),
            Parameter::Null
        ));
        // pgjdbc's setDate / setTimestamp: untyped, with an offset.
        let untyped =
            |v: &'static str| decode(Some(&Bytes::from_static(v.as_bytes())), None, false).unwrap();
        assert!(
            matches!(untyped("1990-01-01 +02"), Parameter::Date(d) if d.to_string() == "1990-01-01")
        );
        assert!(matches!(
            untyped("1990-01-01 10:00:00.5+02"),
            Parameter::Timestamp(t) if t.to_string() == "1990-01-01 08:00:00.500"
        ));
        assert!(matches!(untyped("1990-01-01"), Parameter::Text(_)));
        // Declared text stays text.
        let p = decode(
            Some(&Bytes::from_static(b"1990-01-01 +02")),
            Some(&Type::TEXT),
            false,
        )
        .unwrap();
        assert!(matches!(p, Parameter::Text(_)));
    }
}
