//! The OMOP Common Data Model, defined once: which tables a CDM version has, their columns in
//! CDM order, each column's declared type and whether it is required, and which tables hold
//! rows about persons (with or without a person column).
//!
//! Ingest validates extracts against it, the synthetic generator writes its columns, and the
//! query policy asks it which tables the opt-out anti-join cannot reach. Nothing else in the
//! workspace keeps a copy of the specification.
//!
//! What it is not: a reader or a validator (ingest's job), nor a vocabulary (concepts are data
//! in the lake). It does no I/O: every version's specification is embedded in the binary,
//! parsed on first use and kept for the life of the process.
//!
//! ```
//! use agora_cdm::{CdmType, CdmVersion, PersonRows};
//!
//! let cdm = agora_cdm::spec(CdmVersion::V5_4);
//! let measurement = cdm.table("measurement").unwrap();
//! assert_eq!(measurement.column("value_as_number").unwrap().datatype, CdmType::Float);
//! assert_eq!(measurement.person_rows(), PersonRows::Keyed("person_id"));
//! assert_eq!(cdm.table("note_nlp").unwrap().person_rows(), PersonRows::WithoutKey);
//! assert_eq!(cdm.table("concept").unwrap().person_rows(), PersonRows::Absent);
//! ```
//!
//! CDM 5.3 and 5.4 are embedded; [`upgrade`] says how a 5.3 extract is stored in the 5.4
//! shape. Adding a version is one embedded file, one [`CdmVersion`]
//! variant and one arm in [`CdmVersion`]'s source lookup.

#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use agora_core::ColumnType;

pub mod upgrade;

/// A version of the OMOP CDM that Agora knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CdmVersion {
    /// OMOP CDM v5.3.
    V5_3,
    /// OMOP CDM v5.4.
    V5_4,
}

impl CdmVersion {
    /// Every known version, oldest first.
    pub const ALL: &'static [CdmVersion] = &[CdmVersion::V5_3, CdmVersion::V5_4];

    /// The version as OHDSI writes it: `5.4`.
    pub fn as_str(self) -> &'static str {
        self.source().version
    }

    /// Where this version's specification comes from.
    fn source(self) -> &'static Source {
        match self {
            CdmVersion::V5_3 => &V5_3,
            CdmVersion::V5_4 => &V5_4,
        }
    }
}

impl fmt::Display for CdmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version's embedded specification.
struct Source {
    version: &'static str,
    /// `table,field,datatype,required,primary_key` lines (`y`/`n`), `#` comments, in CDM
    /// order: a reduction of OHDSI's `OMOP_CDMvX.Y_Field_Level.csv`.
    fields: &'static str,
    /// Tables whose rows concern a person but carry no person column (they reach their
    /// person through another table's row). Not in the OHDSI files: read from the CDM
    /// documentation of each table.
    person_rows_without_key: &'static [&'static str],
    /// Tables that name their person in a column other than `person_id`.
    other_person_columns: &'static [(&'static str, &'static str)],
}

const V5_3: Source = Source {
    version: "5.3",
    fields: include_str!("cdm53_fields.csv"),
    // note_nlp → note; cost → its event (cost_event_id, cost_domain_id); fact_relationship
    // → the two facts it relates. (5.3 has no episode tables; cohort is not in its
    // field-level file.)
    person_rows_without_key: &["note_nlp", "cost", "fact_relationship"],
    other_person_columns: &[],
};

const V5_4: Source = Source {
    version: "5.4",
    fields: include_str!("cdm54_fields.csv"),
    // note_nlp → note; cost → its event (cost_event_id, cost_domain_id); fact_relationship
    // → the two facts it relates; episode_event → the episode and the event.
    person_rows_without_key: &["note_nlp", "cost", "fact_relationship", "episode_event"],
    // By OHDSI convention a cohort's subject is a person.
    other_person_columns: &[("cohort", "subject_id")],
};

/// The specification of `version`, parsed from the embedded files on first use.
pub fn spec(version: CdmVersion) -> &'static CdmSpec {
    static SPECS: OnceLock<BTreeMap<CdmVersion, CdmSpec>> = OnceLock::new();
    SPECS
        .get_or_init(|| {
            CdmVersion::ALL
                .iter()
                .map(|&v| (v, CdmSpec::parse(v)))
                .collect()
        })
        .get(&version)
        .expect("every version is parsed")
}

/// A CDM field's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdmType {
    /// `integer` (and `bigint`): a 64-bit integer in the lake.
    Integer,
    /// `float`.
    Float,
    /// `date`.
    Date,
    /// `datetime`: a local wall-clock time.
    Datetime,
    /// `varchar(n)`; `None` for `varchar(MAX)`.
    Varchar(Option<usize>),
}

impl CdmType {
    /// Parses a type as the OHDSI specification writes it (`integer`, `varchar(50)`,
    /// `varchar(MAX)`...), case-insensitively.
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

    /// The lake column type a value of this type is stored as.
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

/// One column of a CDM table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmColumn {
    /// Lower-case name, as in the specification.
    pub name: String,
    /// Declared type.
    pub datatype: CdmType,
    /// The specification says the field is required (`isRequired = Yes`): never null.
    pub required: bool,
    /// Part of the table's primary key.
    pub primary_key: bool,
}

/// How a table's rows relate to persons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonRows {
    /// Every row concerns the person this column names (`person_id`; `subject_id` in
    /// `cohort`).
    Keyed(&'static str),
    /// Rows concern a person but carry no person column: they reach their person through
    /// another table's row (`note_nlp` through its note, `cost` through its event...).
    WithoutKey,
    /// Rows are not about persons (vocabulary, health system, metadata).
    Absent,
}

/// One table of a CDM version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmTable {
    /// Lower-case name, as in the specification.
    pub name: String,
    /// The columns, in CDM order.
    pub columns: Vec<CdmColumn>,
    person_rows: PersonRows,
}

impl CdmTable {
    /// The column called `name`, if the table has one.
    pub fn column(&self, name: &str) -> Option<&CdmColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether, and through which column, the table's rows concern persons.
    pub fn person_rows(&self) -> PersonRows {
        self.person_rows
    }
}

/// One version of the CDM: its tables by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdmSpec {
    version: CdmVersion,
    tables: BTreeMap<String, CdmTable>,
}

impl CdmSpec {
    /// Which version this is.
    pub fn version(&self) -> CdmVersion {
        self.version
    }

    /// The table called `name` (lower case), if the version has one.
    pub fn table(&self, name: &str) -> Option<&CdmTable> {
        self.tables.get(name)
    }

    /// Every table, by name.
    pub fn tables(&self) -> impl ExactSizeIterator<Item = &CdmTable> {
        self.tables.values()
    }

    /// Parses the embedded specification; a malformed one is a bug of this crate, which the
    /// tests catch.
    fn parse(version: CdmVersion) -> Self {
        let source = version.source();
        let mut tables: BTreeMap<String, CdmTable> = BTreeMap::new();
        let lines = source
            .fields
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1);
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
                    person_rows: PersonRows::Absent,
                })
                .columns
                .push(CdmColumn {
                    name: field.to_owned(),
                    datatype,
                    required: required == "y",
                    primary_key: pk == "y",
                });
        }
        for table in tables.values_mut() {
            table.person_rows = if table.column("person_id").is_some() {
                PersonRows::Keyed("person_id")
            } else if let Some(&(_, column)) = source
                .other_person_columns
                .iter()
                .find(|(t, _)| *t == table.name)
            {
                PersonRows::Keyed(column)
            } else if source
                .person_rows_without_key
                .contains(&table.name.as_str())
            {
                PersonRows::WithoutKey
            } else {
                PersonRows::Absent
            };
        }
        Self { version, tables }
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
        let spec = spec(CdmVersion::V5_4);
        assert_eq!(spec.version().to_string(), "5.4");
        assert_eq!(spec.tables().len(), 39);
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

    /// Every table named in a version's person lists exists in that version, and the lists
    /// agree with the columns (a table "without key" really has no person column).
    #[test]
    fn person_lists_name_tables_of_their_version() {
        for &version in CdmVersion::ALL {
            let source = version.source();
            let spec = spec(version);
            for name in source.person_rows_without_key {
                let table = spec
                    .table(name)
                    .unwrap_or_else(|| panic!("{version} {name}"));
                assert_eq!(table.person_rows(), PersonRows::WithoutKey, "{name}");
                assert!(table.column("person_id").is_none(), "{name}");
            }
            for (name, column) in source.other_person_columns {
                let table = spec
                    .table(name)
                    .unwrap_or_else(|| panic!("{version} {name}"));
                assert!(table.column(column).is_some(), "{name}.{column}");
            }
        }
    }

    #[test]
    fn v53_differs_from_v54_where_ohdsi_says() {
        let v53 = spec(CdmVersion::V5_3);
        assert_eq!(v53.version().to_string(), "5.3");
        assert_eq!(v53.tables().len(), 37);
        assert!(v53.table("episode").is_none());
        assert!(v53.table("attribute_definition").is_some());
        // 5.3 visits say admitting_source / discharge_to; 5.4 renamed them.
        let visit = v53.table("visit_occurrence").unwrap();
        assert!(visit.column("admitting_source_concept_id").is_some());
        assert!(visit.column("admitted_from_concept_id").is_none());
        let without: Vec<&str> = v53
            .tables()
            .filter(|t| t.person_rows() == PersonRows::WithoutKey)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(without, ["cost", "fact_relationship", "note_nlp"]);
    }

    #[test]
    fn v54_person_rows() {
        let spec = spec(CdmVersion::V5_4);
        let of = |t: &str| spec.table(t).unwrap().person_rows();
        let without: Vec<&str> = spec
            .tables()
            .filter(|t| t.person_rows() == PersonRows::WithoutKey)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(
            without,
            ["cost", "episode_event", "fact_relationship", "note_nlp"]
        );
        assert_eq!(of("person"), PersonRows::Keyed("person_id"));
        assert_eq!(of("drug_exposure"), PersonRows::Keyed("person_id"));
        assert_eq!(of("cohort"), PersonRows::Keyed("subject_id"));
        assert_eq!(of("concept"), PersonRows::Absent);
        assert_eq!(of("provider"), PersonRows::Absent);
    }

    /// The embedded copy must say exactly what the official specification says.
    #[test]
    fn embedded_spec_matches_official() {
        for &version in CdmVersion::ALL {
            let path = format!(
                "{}/../../../shared/data/omop/reference/cdm_specs/OMOP_CDMv{version}_Field_Level.csv",
                env!("CARGO_MANIFEST_DIR"),
            );
            let mut reader = csv::Reader::from_path(&path).expect("official CDM spec in ../shared");
            let headers = reader.headers().unwrap().clone();
            let col = |name: &str| {
                headers
                    .iter()
                    .position(|h| h.trim_start_matches('\u{feff}') == name)
                    .unwrap()
            };
            let (t, f, d, r, p) = (
                col("cdmTableName"),
                col("cdmFieldName"),
                col("cdmDatatype"),
                col("isRequired"),
                col("isPrimaryKey"),
            );
            let spec = spec(version);
            let mut count = 0;
            // Columns seen so far per table: the embedded order is the official order.
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for rec in reader.records() {
                let rec = rec.unwrap();
                let table = spec.table(&rec[t].to_lowercase()).unwrap();
                let name = rec[f].trim_matches('"').to_lowercase();
                let position = seen.entry(table.name.clone()).or_default();
                let field = &table.columns[*position];
                *position += 1;
                assert_eq!(field.name, name, "{} column order", table.name);
                assert_eq!(Some(field.datatype), CdmType::parse(&rec[d]), "{}", &rec[f]);
                assert_eq!(field.required, &rec[r] == "Yes", "{}", &rec[f]);
                assert_eq!(field.primary_key, &rec[p] == "Yes", "{}", &rec[f]);
                count += 1;
            }
            assert_eq!(count, spec.tables().map(|t| t.columns.len()).sum::<usize>());
        }
    }
}
