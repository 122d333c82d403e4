//! Arrow answers as PostgreSQL rows: each Arrow type's PostgreSQL type (its OID in the row
//! description) and the rows, text or binary as the client asked per column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use rust_decimal::Decimal;

/// The PostgreSQL type a column of `data_type` is sent as.
pub(crate) fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 => Type::INT8,
        DataType::UInt64 | DataType::Decimal32(..) | DataType::Decimal64(..) => Type::NUMERIC,
        DataType::Decimal128(..) | DataType::Decimal256(..) => Type::NUMERIC,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Type::BYTEA,
        _ => Type::TEXT,
    }
}

/// The SQL name of a PostgreSQL type, as `format_type` and `information_schema` show it.
pub(crate) fn type_name(ty: &Type) -> &'static str {
    match *ty {
        Type::BOOL => "boolean",
        Type::INT2 => "smallint",
        Type::INT4 => "integer",
        Type::INT8 => "bigint",
        Type::NUMERIC => "numeric",
        Type::FLOAT4 => "real",
        Type::FLOAT8 => "double precision",
        Type::DATE => "date",
        Type::TIMESTAMP => "timestamp without time zone",
        Type::TIMESTAMPTZ => "timestamp with time zone",
        Type::BYTEA => "bytea",
        _ => "text",
    }
}

/// The row description of `schema`, each column in the format the client asked for.
pub(crate) fn fields(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| field(f, format.format_for(i)))
        .collect()
}

fn field(f: &Field, format: FieldFormat) -> FieldInfo {
    let ty = pg_type(f.data_type());
    let size = match ty {
        Type::BOOL => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        _ => -1,
    };
    FieldInfo::new(f.name().clone(), None, None, ty, format).with_type_size(size)
}

/// One column of a batch, converted once to what its PostgreSQL type encodes from.
enum Column {
    Bool(BooleanArray),
    I16(Int16Array),
    I32(Int32Array),
    I64(Int64Array),
    F32(Float32Array),
    F64(Float64Array),
    Date(Date32Array),
    Timestamp(TimestampMicrosecondArray),
    TimestampTz(TimestampMicrosecondArray),
    /// Exact numbers as their text (converted to a decimal when sent binary).
    Numeric(Vec<Option<String>>),
    Text(StringArray),
    Bytes(Vec<Option<Vec<u8>>>),
}

fn convert(array: &ArrayRef, ty: &Type) -> PgWireResult<Column> {
    let cast = |to: &DataType| -> PgWireResult<ArrayRef> {
        arrow::compute::cast(array, to)
            .map_err(|_| crate::error::user_error("XX000", "a result column could not be encoded"))
    };
    Ok(match *ty {
        Type::BOOL => Column::Bool(cast(&DataType::Boolean)?.as_boolean().clone()),
        Type::INT2 => Column::I16(
            cast(&DataType::Int16)?
                .as_primitive::<arrow::datatypes::Int16Type>()
                .clone(),
        ),
        Type::INT4 => Column::I32(
            cast(&DataType::Int32)?
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone(),
        ),
        Type::INT8 => Column::I64(
            cast(&DataType::Int64)?
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone(),
        ),
        Type::FLOAT4 => Column::F32(
            cast(&DataType::Float32)?
                .as_primitive::<arrow::datatypes::Float32Type>()
                .clone(),
        ),
        Type::FLOAT8 => Column::F64(
            cast(&DataType::Float64)?
                .as_primitive::<arrow::datatypes::Float64Type>()
                .clone(),
        ),
        Type::DATE => Column::Date(
            cast(&DataType::Date32)?
                .as_primitive::<arrow::datatypes::Date32Type>()
                .clone(),
        ),
        Type::TIMESTAMP => Column::Timestamp(
            cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .clone(),
        ),
        Type::TIMESTAMPTZ => Column::TimestampTz(
            // The instants, whatever the zone they are shown in: sent in UTC.
            cast(&DataType::Timestamp(TimeUnit::Microsecond, None))?
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .clone(),
        ),
        Type::NUMERIC => Column::Numeric(strings(array)?),
        Type::BYTEA => {
            let bin = cast(&DataType::Binary)?;
            let bin = bin.as_binary::<i32>();
            Column::Bytes(
                (0..bin.len())
                    .map(|i| (!bin.is_null(i)).then(|| bin.value(i).to_vec()))
                    .collect(),
            )
        }
        _ => match array.data_type() {
            DataType::Utf8 => Column::Text(array.as_string::<i32>().clone()),
            DataType::LargeUtf8 | DataType::Utf8View => {
                Column::Text(cast(&DataType::Utf8)?.as_string::<i32>().clone())
            }
            _ => Column::Text(StringArray::from(strings(array)?)),
        },
    })
}

/// Every value of `array` as Arrow displays it (`None` for nulls).
fn strings(array: &ArrayRef) -> PgWireResult<Vec<Option<String>>> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(array.as_ref(), &options)
        .map_err(|_| crate::error::user_error("XX000", "a result column could not be encoded"))?;
    Ok((0..array.len())
        .map(|i| (!array.is_null(i)).then(|| formatter.value(i).to_string()))
        .collect())
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

fn timestamp(micros: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// A timestamp as PostgreSQL prints it (DateStyle ISO): the fraction only when there is
/// one, without trailing zeros (`2024-05-01 10:00:00`, `2024-05-01 10:00:00.25`).
fn timestamp_text(t: &NaiveDateTime) -> String {
    let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.and_utc().timestamp_subsec_micros();
    if micros != 0 {
        let fraction = format!(".{micros:06}");
        text.push_str(fraction.trim_end_matches('0'));
    }
    text
}

/// The rows of `batch`, encoded for `fields`.
pub(crate) fn rows(
    batch: &RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
) -> PgWireResult<Vec<DataRow>> {
    let columns = batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(array, f)| convert(array, f.datatype()))
        .collect::<PgWireResult<Vec<_>>>()?;
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (column, f) in columns.iter().zip(fields.iter()) {
            encode(&mut encoder, column, row, f.format())?;
        }
        out.push(encoder.take_row());
    }
    Ok(out)
}

fn opt<A: Array, T>(a: &A, row: usize, value: impl FnOnce() -> T) -> Option<T> {
    (!a.is_null(row)).then(value)
}

fn encode(
    encoder: &mut DataRowEncoder,
    column: &Column,
    row: usize,
    format: FieldFormat,
) -> PgWireResult<()> {
    match column {
        Column::Bool(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::I16(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::I32(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::I64(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::F32(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::F64(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::Date(a) => encoder.encode_field(&opt(a, row, || a.value(row)).and_then(date)),
        Column::Timestamp(a) if format == FieldFormat::Text => encoder
            .encode_field_with_type_and_format(
                &opt(a, row, || a.value(row))
                    .and_then(timestamp)
                    .map(|t| timestamp_text(&t)),
                &Type::TIMESTAMP,
                FieldFormat::Text,
                &Default::default(),
            ),
        Column::TimestampTz(a) if format == FieldFormat::Text => encoder
            .encode_field_with_type_and_format(
                &opt(a, row, || a.value(row))
                    .and_then(timestamp)
                    .map(|t| timestamp_text(&t) + "+00"),
                &Type::TIMESTAMPTZ,
                FieldFormat::Text,
                &Default::default(),
            ),
        Column::Timestamp(a) => {
            encoder.encode_field(&opt(a, row, || a.value(row)).and_then(timestamp))
        }
        Column::TimestampTz(a) => encoder.encode_field(
            &opt(a, row, || a.value(row))
                .and_then(timestamp)
                .map(|t| t.and_utc()),
        ),
        Column::Numeric(values) => match (&values[row], format) {
            (None, _) => encoder.encode_field(&None::<Decimal>),
            (Some(text), FieldFormat::Text) => encoder.encode_field_with_type_and_format(
                &Some(text.as_str()),
                &Type::NUMERIC,
                FieldFormat::Text,
                &Default::default(),
            ),
            (Some(text), FieldFormat::Binary) => {
                let d: Decimal = text.parse().map_err(|_| {
                    crate::error::user_error(
                        "22003",
                        "a numeric result is too wide for the binary format; ask for text",
                    )
                })?;
                encoder.encode_field(&Some(d))
            }
        },
        Column::Text(a) => encoder.encode_field(&opt(a, row, || a.value(row))),
        Column::Bytes(values) => encoder.encode_field(&values[row].as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_postgresql_does() {
        let t = |micros| timestamp_text(&timestamp(micros).unwrap());
        assert_eq!(t(1_714_557_600_000_000), "2024-05-01 10:00:00");
        assert_eq!(t(1_714_557_600_250_000), "2024-05-01 10:00:00.25");
        assert_eq!(t(1_714_557_600_000_001), "2024-05-01 10:00:00.000001");
    }

    #[test]
    fn types_and_dates() {
        assert_eq!(pg_type(&DataType::Int64), Type::INT8);
        assert_eq!(
            pg_type(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            )),
            Type::TIMESTAMPTZ
        );
        assert_eq!(date(0), NaiveDate::from_ymd_opt(1970, 1, 1));
        assert_eq!(type_name(&Type::FLOAT8), "double precision");
    }
}
