use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The logical column types a release may hold. Kept small on purpose: every type here has one
/// Arrow type, one Parquet encoding and one textual form in manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Signed 64-bit integer (OMOP ids and concept ids, counts).
    Int64,
    /// IEEE 754 double (measurement values).
    Float64,
    /// UTF-8 text.
    Utf8,
    /// A calendar date without time or zone (Arrow `Date32`: days since 1970-01-01).
    Date,
    /// Microseconds, no time zone (OMOP datetimes are local wall-clock times).
    Timestamp,
    /// True or false.
    Boolean,
    /// Microseconds since the epoch, UTC (FHIR `dateTime`/`instant` carry an offset, so the
    /// instant is known exactly).
    TimestampUtc,
}

impl ColumnType {
    /// The one Arrow type this column type is stored and queried as.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::TimestampUtc => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
        }
    }
}

/// One column of a table as stored in the lake.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    /// Column name as written in Parquet and queried in SQL; unique within its table.
    pub name: String,
    /// Logical type; serialized as `"type"` in manifests.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether the column may hold nulls (the nullability of its Arrow field).
    pub nullable: bool,
}

/// A table's stored schema, serializable into a release manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TableSchema {
    /// The columns in storage order, which is also the Arrow schema's field order.
    pub columns: Vec<ColumnDef>,
}

impl TableSchema {
    /// The Arrow schema of this table: one field per column, same order, names and nullability.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.arrow_type(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Position of the column called `name` (exact, case-sensitive match), if any.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}
