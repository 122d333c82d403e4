//! Statement parameters as Arrow: the parameter schema a prepared statement announces, and
//! the values a client binds (one row of a record batch per execution).

use std::sync::Arc;

use agora_service::{Error, Parameter, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Field, Float16Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};

/// The parameters of a statement taking `count`: `$1`… of any type (the planner infers
/// them once values are bound).
pub(crate) fn parameter_schema(count: usize) -> Schema {
    Schema::new(
        (1..=count)
            .map(|i| Field::new(format!("${i}"), DataType::Null, true))
            .collect::<Vec<_>>(),
    )
}

/// Each row of `batch` as parameter values, in column order.
pub(crate) fn parameter_rows(batch: &RecordBatch) -> Result<Vec<Vec<Parameter>>> {
    let columns: Vec<_> = batch.columns().iter().map(Arc::clone).collect();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| value(c.as_ref(), row, i + 1))
                .collect()
        })
        .collect()
}

fn value(array: &dyn Array, row: usize, position: usize) -> Result<Parameter> {
    if array.is_null(row) {
        return Ok(Parameter::Null);
    }
    let int = |v: i64| Ok(Parameter::Int(v));
    match array.data_type() {
        DataType::Null => Ok(Parameter::Null),
        DataType::Boolean => Ok(Parameter::Bool(array.as_boolean().value(row))),
        DataType::Int8 => int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => int(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            Ok(i64::try_from(v)
                .map(Parameter::Int)
                .unwrap_or_else(|_| Parameter::Decimal(v.to_string())))
        }
        DataType::Float16 => Ok(Parameter::Float(
            array.as_primitive::<Float16Type>().value(row).to_f64(),
        )),
        DataType::Float32 => Ok(Parameter::Float(
            array.as_primitive::<Float32Type>().value(row).into(),
        )),
        DataType::Float64 => Ok(Parameter::Float(
            array.as_primitive::<Float64Type>().value(row),
        )),
        DataType::Utf8 => Ok(Parameter::Text(array.as_string::<i32>().value(row).into())),
        DataType::LargeUtf8 => Ok(Parameter::Text(array.as_string::<i64>().value(row).into())),
        DataType::Utf8View => Ok(Parameter::Text(array.as_string_view().value(row).into())),
        DataType::Date32 => array
            .as_primitive::<Date32Type>()
            .value_as_date(row)
            .map(Parameter::Date)
            .ok_or_else(|| out_of_range(position)),
        DataType::Date64 => array
            .as_primitive::<Date64Type>()
            .value_as_date(row)
            .map(Parameter::Date)
            .ok_or_else(|| out_of_range(position)),
        DataType::Timestamp(unit, _) => {
            // A zoned timestamp is an instant; bound as its UTC date and time.
            let t = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value_as_datetime(row),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value_as_datetime(row),
                TimeUnit::Microsecond => array
                    .as_primitive::<TimestampMicrosecondType>()
                    .value_as_datetime(row),
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .value_as_datetime(row),
            };
            t.map(Parameter::Timestamp)
                .ok_or_else(|| out_of_range(position))
        }
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => {
            let text = arrow::util::display::array_value_to_string(array, row)
                .map_err(|_| out_of_range(position))?;
            Ok(Parameter::Decimal(text))
        }
        other => Err(Error::InvalidInput(format!(
            "parameter ${position} has type {other}, which cannot be bound: \
             bind a number, text, boolean, date or timestamp"
        ))),
    }
}

fn out_of_range(position: usize) -> Error {
    Error::InvalidInput(format!("parameter ${position} is out of range"))
}
