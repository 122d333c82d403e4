//! The OMOP CDM specification as data: which tables exist, their columns, types and which
//! fields are required. Ingest takes types from here, never from guessing.

use std::collections::BTreeMap;
use std::fmt;

use agora_core::ColumnType;

const CDM54_FIELDS: &str = include_str!("cdm54_fields.csv");

/// A CDM field's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdmType {
    Integer,
    Float,
    Date,
    Datetime,
    /// `varchar(n)`; `None` for `varchar(MAX)`.
    Varchar(Option<usize>),
}

impl CdmType {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "integer" | "bigint" => CdmType::Integer,
            "float" => CdmType::Float,
            "date" => CdmType::Date,
            "datetime" => CdmType::Datetime,
            _ => {
                let n = s.strip_prefix("varchar(")?.strip_suffix(')')?;
                CdmType::Varchar(if n == "max" {
                    None
                } else {
                    Some(n.parse().ok()?)
                })
            }
        })
    }

    pub fn column_type(self) -> ColumnType {
        match self {
            CdmType::Integer => ColumnType::Int64,
            CdmType::Float => ColumnType::Float64,
            CdmType::Date => ColumnType::Date,
            CdmType::Datetime => ColumnType::Timestamp,
            CdmType::Varchar(_) => ColumnType::Utf8,
        }
    }
}

impl fmt::Display for CdmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CdmType::Integer => f.write_str("integer"),
            CdmType::Float => f.write_str("float"),
            CdmType::Date => f.write_str("date (YYYY-MM-DD)"),
            CdmType::Datetime => f.write_str("datetime (YYYY-MM-DD HH:MM:SS)"),
            CdmType::Varchar(Some(n)) => write!(f, "varchar({n})"),
            CdmType::Varchar(None) => f.write_str("varchar"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmColumn {
    pub name: String,
    pub datatype: CdmType,
    pub required: bool,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmTable {
    pub name: String,
    pub columns: Vec<CdmColumn>,
}

impl CdmTable {
    pub fn column(&self, name: &str) -> Option<&CdmColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// One version of the CDM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmSpec {
    pub version: &'static str,
    pub tables: BTreeMap<String, CdmTable>,
}

impl CdmSpec {
    /// CDM 5.4, embedded in the binary.
    pub fn v54() -> Self {
        let mut tables: BTreeMap<String, CdmTable> = BTreeMap::new();
        let lines = CDM54_FIELDS.lines().filter(|l| !l.starts_with('#')).skip(1);
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            let [table, field, datatype, required, pk] = f[..] else {
                panic!("embedded CDM spec line is malformed: {line}");
            };
            let datatype = CdmType::parse(datatype)
                .unwrap_or_else(|| panic!("embedded CDM spec has unknown type {datatype}"));
            tables
                .entry(table.to_owned())
                .or_insert_with(|| CdmTable {
                    name: table.to_owned(),
                    columns: Vec::new(),
                })
                .columns
                .push(CdmColumn {
                    name: field.to_owned(),
                    datatype,
                    required: required == "y",
                    primary_key: pk == "y",
                });
        }
        Self {
            version: "5.4",
            tables,
        }
    }

    pub fn table(&self, name: &str) -> Option<&CdmTable> {
        self.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        assert_eq!(CdmType::parse("Integer"), Some(CdmType::Integer));
        assert_eq!(
            CdmType::parse("varchar(50)"),
            Some(CdmType::Varchar(Some(50)))
        );
        assert_eq!(CdmType::parse("varchar(MAX)"), Some(CdmType::Varchar(None)));
        assert_eq!(CdmType::parse("blob"), None);
    }

    #[test]
    fn v54_has_the_clinical_tables() {
        let spec = CdmSpec::v54();
        assert_eq!(spec.tables.len(), 39);
        let person = spec.table("person").unwrap();
        assert_eq!(person.columns[0].name, "person_id");
        assert!(person.columns[0].required && person.columns[0].primary_key);
        assert_eq!(
            spec.table("measurement")
                .unwrap()
                .column("value_as_number")
                .unwrap()
                .datatype,
            CdmType::Float
        );
        assert!(spec.table("note_nlp").unwrap().column("offset").is_some());
    }

    /// The embedded copy must say exactly what the official specification says.
    #[test]
    fn embedded_spec_matches_official() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/omop/reference/cdm_specs/OMOP_CDMv5.4_Field_Level.csv"
        );
        let mut reader = csv::Reader::from_path(path).expect("official CDM spec in ../shared");
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == name)
                .unwrap()
        };
        let (t, f, d, r) = (
            col("cdmTableName"),
            col("cdmFieldName"),
            col("cdmDatatype"),
            col("isRequired"),
        );
        let spec = CdmSpec::v54();
        let mut count = 0;
        for rec in reader.records() {
            let rec = rec.unwrap();
            let table = spec.table(&rec[t].to_lowercase()).unwrap();
            let field = table
                .column(&rec[f].trim_matches('"').to_lowercase())
                .unwrap();
            assert_eq!(Some(field.datatype), CdmType::parse(&rec[d]), "{}", &rec[f]);
            assert_eq!(field.required, &rec[r] == "Yes", "{}", &rec[f]);
            count += 1;
        }
        assert_eq!(
            count,
            spec.tables.values().map(|t| t.columns.len()).sum::<usize>()
        );
    }
}
