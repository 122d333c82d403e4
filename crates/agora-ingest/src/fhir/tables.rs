//! Buffered, typed writers for the tables of a FHIR release: one raw table per resource type
//! (`fhir_<type>`: `id`, `person_id`, `resource`) and one table per ViewDefinition.
//!
//! Typing rules for view columns (see `views::column_type`): a value that does not fit the
//! declared type is stored as null and counted; a `date` or `dateTime` with less than day
//! precision (`2019`, `2019-05`) is stored as null and counted too — the exact value stays in
//! the raw resource, so nothing is lost. A `dateTime` with a day but no time is midnight UTC.
//!
//! Not here: what goes into a row (the ingest and `pseudo`).

use std::sync::Arc;

use agora_core::{ColumnDef, ColumnType, TableSchema};
use agora_lake::{ReleaseWriter, TableEntry, TableWriter, WriterOptions};
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::views::NamedView;
use crate::Result;

const BATCH_ROWS: usize = 4096;

/// The raw table of one resource type.
pub(crate) struct RawTable {
    writer: TableWriter,
    ids: Vec<Option<String>>,
    persons: Vec<Option<i64>>,
    resources: Vec<String>,
    pub(crate) rows_read: u64,
    pub(crate) rows_quarantined: u64,
}

pub(crate) fn raw_schema() -> TableSchema {
    let col = |name: &str, ty, nullable| ColumnDef {
        name: name.into(),
        ty,
        nullable,
    };
    TableSchema {
        columns: vec![
            col("id", ColumnType::Utf8, true),
            col("person_id", ColumnType::Int64, true),
            col("resource", ColumnType::Utf8, false),
        ],
    }
}

impl RawTable {
    pub(crate) fn new(writer: &ReleaseWriter, name: &str, options: &WriterOptions) -> Self {
        Self {
            writer: writer.table(name, &raw_schema(), options),
            ids: Vec::new(),
            persons: Vec::new(),
            resources: Vec::new(),
            rows_read: 0,
            rows_quarantined: 0,
        }
    }

    pub(crate) fn push(&mut self, resource: &Value, person: Option<i64>) -> Result<()> {
        self.ids.push(
            resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        self.persons.push(person);
        self.resources.push(resource.to_string());
        if self.ids.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(std::mem::take(&mut self.ids))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.persons))),
            Arc::new(StringArray::from(std::mem::take(&mut self.resources))),
        ];
        let batch = RecordBatch::try_new(self.writer.schema().clone(), columns)
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.writer.write(&batch)?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<TableEntry> {
        self.flush()?;
        let mut entry = self.writer.finish()?;
        // A Patient's id is its hub key; other resources' ids are hub-wide keyed ids.
        entry.key_text_columns = Some(vec!["id".to_owned()]);
        Ok(entry)
    }
}

/// The table of one ViewDefinition.
pub(crate) struct ViewTable {
    pub(crate) view: NamedView,
    writer: TableWriter,
    types: Vec<ColumnType>,
    rows: Vec<(Option<i64>, Vec<Value>)>,
    pub(crate) rows_read: u64,
    pub(crate) rows_quarantined: u64,
    /// Per view column: values stored as null because they did not fit the declared type.
    pub(crate) mismatched: Vec<u64>,
    /// Per view column: partial dates stored as null.
    pub(crate) partial: Vec<u64>,
}

impl ViewTable {
    pub(crate) fn new(writer: &ReleaseWriter, view: NamedView, options: &WriterOptions) -> Self {
        let stored = view.stored_columns();
        let schema = TableSchema {
            columns: stored
                .iter()
                .map(|(name, ty)| ColumnDef {
                    name: name.clone(),
                    ty: *ty,
                    nullable: true,
                })
                .collect(),
        };
        let width = stored.len() - 1;
        Self {
            writer: writer.table(&view.name, &schema, options),
            types: stored.into_iter().skip(1).map(|(_, t)| t).collect(),
            view,
            rows: Vec::new(),
            rows_read: 0,
            rows_quarantined: 0,
            mismatched: vec![0; width],
            partial: vec![0; width],
        }
    }

    pub(crate) fn push(&mut self, person: Option<i64>, values: Vec<Value>) -> Result<()> {
        self.rows.push((person, values));
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.types.len() + 1);
        columns.push(Arc::new(Int64Array::from(
            rows.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        )));
        for (i, ty) in self.types.iter().enumerate() {
            let mut converted = Converted::default();
            let cells = rows.iter().map(|(_, v)| &v[i]);
            columns.push(convert(*ty, cells, &mut converted));
            self.mismatched[i] += converted.mismatched;
            self.partial[i] += converted.partial;
        }
        let batch = RecordBatch::try_new(self.writer.schema().clone(), columns)
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        self.writer.write(&batch)?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<(TableEntry, ViewStats)> {
        self.flush()?;
        let stats = ViewStats {
            name: self.view.name.clone(),
            columns: self
                .view
                .view
                .columns()
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            mismatched: self.mismatched,
            partial: self.partial,
            rows_read: self.rows_read,
            rows_quarantined: self.rows_quarantined,
        };
        let mut entry = self.writer.finish()?;
        entry.key_text_columns = Some(self.view.key_columns());
        Ok((entry, stats))
    }
}

/// What typing did to a view's values, for the report's warnings.
pub(crate) struct ViewStats {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    pub(crate) mismatched: Vec<u64>,
    pub(crate) partial: Vec<u64>,
    pub(crate) rows_read: u64,
    pub(crate) rows_quarantined: u64,
}

impl ViewStats {
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, column) in self.columns.iter().enumerate() {
            if self.mismatched[i] > 0 {
                out.push(format!(
                    "view {}: column {column}: {} value(s) not of the declared type, stored as null",
                    self.name, self.mismatched[i]
                ));
            }
            if self.partial[i] > 0 {
                out.push(format!(
                    "view {}: column {column}: {} partial date(s) (year or month only) stored as null; the raw resource keeps them",
                    self.name, self.partial[i]
                ));
            }
        }
        out
    }
}

#[derive(Default)]
struct Converted {
    mismatched: u64,
    partial: u64,
}

fn convert<'a>(
    ty: ColumnType,
    cells: impl Iterator<Item = &'a Value>,
    stats: &mut Converted,
) -> ArrayRef {
    match ty {
        ColumnType::Utf8 => Arc::new(StringArray::from(
            cells
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect::<Vec<_>>(),
        )),
        ColumnType::Int64 => Arc::new(Int64Array::from(
            cells
                .map(|v| typed(v, |v| Typed::from(v.as_i64()), stats))
                .collect::<Vec<_>>(),
        )),
        ColumnType::Float64 => Arc::new(Float64Array::from(
            cells
                .map(|v| typed(v, |v| Typed::from(v.as_f64()), stats))
                .collect::<Vec<_>>(),
        )),
        ColumnType::Boolean => Arc::new(BooleanArray::from(
            cells
                .map(|v| typed(v, |v| Typed::from(v.as_bool()), stats))
                .collect::<Vec<_>>(),
        )),
        ColumnType::Date => Arc::new(Date32Array::from(
            cells
                .map(|v| typed(v, parse_date, stats))
                .collect::<Vec<_>>(),
        )),
        ColumnType::Timestamp | ColumnType::TimestampUtc => {
            let values: Vec<Option<i64>> =
                cells.map(|v| typed(v, parse_date_time, stats)).collect();
            let array = TimestampMicrosecondArray::from(values);
            if ty == ColumnType::TimestampUtc {
                Arc::new(array.with_timezone("UTC"))
            } else {
                Arc::new(array)
            }
        }
    }
}

fn typed<T>(v: &Value, f: impl Fn(&Value) -> Typed<T>, stats: &mut Converted) -> Option<T> {
    if v.is_null() {
        return None;
    }
    match f(v) {
        Typed::Null => None,
        Typed::Value(x) => Some(x),
        Typed::Partial => {
            stats.partial += 1;
            None
        }
        Typed::Mismatch => {
            stats.mismatched += 1;
            None
        }
    }
}

enum Typed<T> {
    Null,
    Value(T),
    Partial,
    Mismatch,
}

impl<T> From<Option<T>> for Typed<T> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Typed::Mismatch, Typed::Value)
    }
}

/// Whether a FHIR date string has less than day precision (`YYYY` or `YYYY-MM`).
fn is_partial(s: &str) -> bool {
    matches!(s.len(), 4 | 7) && s.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// The text of a date-like cell, or what the cell is when it cannot be parsed as a full date:
/// null, a partial date, or not a string at all.
fn date_text<T>(v: &Value) -> Result<&str, Typed<T>> {
    match v.as_str() {
        None if v.is_null() => Err(Typed::Null),
        None => Err(Typed::Mismatch),
        Some(s) if is_partial(s) => Err(Typed::Partial),
        Some(s) => Ok(s),
    }
}

fn parse_date(v: &Value) -> Typed<i32> {
    let s = match date_text(v) {
        Ok(s) => s,
        Err(t) => return t,
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Typed::Value((d - epoch).num_days() as i32),
        Err(_) => Typed::Mismatch,
    }
}

fn parse_date_time(v: &Value) -> Typed<i64> {
    let s = match date_text(v) {
        Ok(s) => s,
        Err(t) => return t,
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Typed::Value(t.timestamp_micros());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = d.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Typed::Value(t.and_utc().timestamp_micros());
    }
    // FHIR requires an offset with a time; a producer that omits it is read as UTC.
    match NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        Ok(t) => Typed::Value(t.and_utc().timestamp_micros()),
        Err(_) => Typed::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use serde_json::json;

    #[test]
    fn dates_full_partial_and_wrong() {
        let cells = [
            json!("1970-01-02"),
            json!("1970-05"),
            json!(12),
            Value::Null,
        ];
        let mut c = Converted::default();
        let a = convert(ColumnType::Date, cells.iter(), &mut c);
        let a = a.as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!(a.value(0), 1);
        assert_eq!(a.null_count(), 3);
        assert_eq!((c.partial, c.mismatched), (1, 1));
    }

    #[test]
    fn date_times_are_utc_instants() {
        let cells = [json!("1970-01-01T01:00:00+01:00"), json!("1970-01-02")];
        let mut c = Converted::default();
        let a = convert(ColumnType::TimestampUtc, cells.iter(), &mut c);
        let a = a.as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(a.value(0), 0);
        assert_eq!(a.value(1), 86_400_000_000);
    }
}
