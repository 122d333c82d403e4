//! OMOP tables written from FHIR: typed exactly as an OMOP ingest types them (CDM 5.4 spec,
//! minus the columns the OMOP policy never stores), so the same SQL runs on both.
//!
//! A row is a list of named cells. Pushing a row checks that every required CDM column has a
//! value (a row that lacks one is not stored: the caller quarantines it with that column),
//! shortens text to the column's `varchar(n)` as OMOP ETLs do, assigns the table's
//! sequential id when the mapping did not set one, and buffers rows until a batch is full.

use std::collections::HashMap;
use std::sync::Arc;

use agora_core::{ColumnDef, ColumnType, TableSchema};
use agora_lake::{ReleaseWriter, TableEntry, TableWriter, WriterOptions};
use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};

use crate::omop::policy;
use crate::{Error, Result};
use agora_cdm::{CdmSpec, CdmTable, CdmType};

const BATCH_ROWS: usize = 4096;

/// One value of an OMOP row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Int(i64),
    Float(f64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Local wall-clock time, microseconds since 1970-01-01T00:00.
    DateTime(i64),
    Text(String),
}

/// A row as the mapping builds it: `(column, value)`; absent columns are null.
pub(crate) type Cells = Vec<(&'static str, Cell)>;

/// The stored schema of a CDM table in an OMOP ingest: every spec column but those the
/// policy drops (`person.person_source_value`), `nullable` unless required.
pub(crate) fn cdm_schema(table: &CdmTable) -> TableSchema {
    TableSchema {
        columns: table
            .columns
            .iter()
            .filter(|c| !policy::is_dropped(&table.name, &c.name))
            .map(|c| ColumnDef {
                name: c.name.clone(),
                ty: c.datatype.column_type(),
                nullable: !c.required,
            })
            .collect(),
    }
}

pub(crate) struct OmopTable {
    pub(crate) name: &'static str,
    writer: TableWriter,
    types: Vec<CdmType>,
    required: Vec<bool>,
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// The primary key column this table numbers itself, if any.
    id_column: Option<usize>,
    next_id: i64,
    rows: Vec<Vec<Option<Cell>>>,
}

impl OmopTable {
    pub(crate) fn new(
        spec: &CdmSpec,
        writer: &ReleaseWriter,
        options: &WriterOptions,
        name: &'static str,
        numbered: bool,
    ) -> Self {
        let table = spec.table(name).expect("mapped tables are CDM tables");
        let schema = cdm_schema(table);
        let kept: Vec<_> = table
            .columns
            .iter()
            .filter(|c| !policy::is_dropped(name, &c.name))
            .collect();
        let index: HashMap<String, usize> = kept
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Self {
            name,
            writer: writer.table(name, &schema, options),
            types: kept.iter().map(|c| c.datatype).collect(),
            required: kept.iter().map(|c| c.required).collect(),
            id_column: numbered.then_some(0),
            names: kept.iter().map(|c| c.name.clone()).collect(),
            index,
            next_id: 1,
            rows: Vec::new(),
        }
    }

    /// Stores `cells` as one row. `Ok(Some(column))` when a required column has no value: the
    /// row is not stored and the caller reports it.
    pub(crate) fn push(&mut self, cells: Cells) -> Result<Option<String>> {
        let mut row: Vec<Option<Cell>> = vec![None; self.types.len()];
        for (name, cell) in cells {
            let i = *self.index.get(name).ok_or_else(|| {
                Error::Internal(format!("OMOP mapping: no column {name} in {}", self.name))
            })?;
            row[i] = Some(fit(self.types[i], cell).ok_or_else(|| {
                Error::Internal(format!("OMOP mapping: wrong type for {}.{name}", self.name))
            })?);
        }
        for (i, cell) in row.iter().enumerate() {
            if cell.is_none() && self.required[i] && self.id_column != Some(i) {
                return Ok(Some(self.names[i].clone()));
            }
        }
        if let Some(i) = self.id_column
            && row[i].is_none()
        {
            row[i] = Some(Cell::Int(self.next_id));
            self.next_id += 1;
        }
        self.rows.push(row);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(None)
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let columns: Vec<ArrayRef> = self
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| column(*ty, rows.iter().map(|r| r[i].as_ref())))
            .collect();
        let batch = RecordBatch::try_new(self.writer.schema().clone(), columns)
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.writer.write(&batch)?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<TableEntry> {
        self.flush()?;
        Ok(self.writer.finish()?)
    }
}

/// `cell` as the column's type wants it: text shortened to `varchar(n)` characters, an
/// integer accepted where a float is declared. `None` for a mapping bug (wrong type).
fn fit(ty: CdmType, cell: Cell) -> Option<Cell> {
    match (ty, cell) {
        (CdmType::Varchar(Some(n)), Cell::Text(s)) => {
            Some(Cell::Text(match s.char_indices().nth(n) {
                Some((end, _)) => s[..end].to_owned(),
                None => s,
            }))
        }
        (CdmType::Varchar(None), c @ Cell::Text(_)) => Some(c),
        (CdmType::Integer, c @ Cell::Int(_)) => Some(c),
        (CdmType::Float, c @ Cell::Float(_)) => Some(c),
        (CdmType::Float, Cell::Int(i)) => Some(Cell::Float(i as f64)),
        (CdmType::Date, c @ Cell::Date(_)) => Some(c),
        (CdmType::Datetime, c @ Cell::DateTime(_)) => Some(c),
        _ => None,
    }
}

fn column<'a>(ty: CdmType, cells: impl Iterator<Item = Option<&'a Cell>>) -> ArrayRef {
    match ty.column_type() {
        ColumnType::Int64 => Arc::new(Int64Array::from_iter(cells.map(|c| match c {
            Some(Cell::Int(v)) => Some(*v),
            _ => None,
        }))),
        ColumnType::Float64 => Arc::new(Float64Array::from_iter(cells.map(|c| match c {
            Some(Cell::Float(v)) => Some(*v),
            _ => None,
        }))),
        ColumnType::Date => Arc::new(Date32Array::from_iter(cells.map(|c| match c {
            Some(Cell::Date(v)) => Some(*v),
            _ => None,
        }))),
        ColumnType::Timestamp => Arc::new(TimestampMicrosecondArray::from_iter(cells.map(
            |c| match c {
                Some(Cell::DateTime(v)) => Some(*v),
                _ => None,
            },
        ))),
        _ => Arc::new(StringArray::from_iter(cells.map(|c| match c {
            Some(Cell::Text(v)) => Some(v.as_str()),
            _ => None,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_cdm::CdmVersion;

    #[test]
    fn text_is_cut_at_the_declared_length_on_a_character_boundary() {
        let cut = fit(CdmType::Varchar(Some(3)), Cell::Text("héllo".into()));
        assert_eq!(cut, Some(Cell::Text("hél".into())));
        assert_eq!(
            fit(CdmType::Float, Cell::Int(2)),
            Some(Cell::Float(2.0)),
            "integers fit float columns"
        );
        assert_eq!(fit(CdmType::Integer, Cell::Text("1".into())), None);
    }

    #[test]
    fn person_schema_is_the_omop_ingest_schema() {
        let spec = agora_cdm::spec(CdmVersion::V5_4);
        let schema = cdm_schema(spec.table("person").unwrap());
        assert!(
            schema
                .columns
                .iter()
                .all(|c| c.name != "person_source_value")
        );
        assert_eq!(schema.columns[0].name, "person_id");
        assert!(!schema.columns[0].nullable);
    }
}
