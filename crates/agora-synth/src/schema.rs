//! The tables the generator writes, in output order. Their columns, types and required flags
//! are the CDM 5.4 specification's ([`agora_cdm`]): the generator writes every column of a
//! table, in CDM order, and the model fills them by position.

use agora_cdm::{CdmTable, CdmVersion};

/// The version of the CDM the generator writes.
pub(crate) const VERSION: CdmVersion = CdmVersion::V5_4;

// Indexes into `TABLE_NAMES`; also the order of the output files and of the report.
pub(crate) const PERSON: usize = 0;
pub(crate) const OBSERVATION_PERIOD: usize = 1;
pub(crate) const VISIT_OCCURRENCE: usize = 2;
pub(crate) const CONDITION_OCCURRENCE: usize = 3;
pub(crate) const DRUG_EXPOSURE: usize = 4;
pub(crate) const PROCEDURE_OCCURRENCE: usize = 5;
pub(crate) const MEASUREMENT: usize = 6;
pub(crate) const OBSERVATION: usize = 7;
pub(crate) const DEATH: usize = 8;
pub(crate) const CONCEPT: usize = 9;
pub(crate) const CONCEPT_ANCESTOR: usize = 10;
/// Tables filled person by person (everything but the vocabulary).
pub(crate) const N_CLINICAL: usize = 9;

/// The tables written, indexed by the constants above.
pub(crate) const TABLE_NAMES: [&str; 11] = [
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "death",
    "concept",
    "concept_ancestor",
];

/// The CDM definition of table `index` of [`TABLE_NAMES`].
pub(crate) fn table(index: usize) -> &'static CdmTable {
    agora_cdm::spec(VERSION)
        .table(TABLE_NAMES[index])
        .expect("the generator writes CDM tables")
}

/// Every table written, in output order.
pub(crate) fn tables() -> impl Iterator<Item = &'static CdmTable> {
    (0..TABLE_NAMES.len()).map(table)
}

/// A table's CSV header line, with its trailing newline.
pub(crate) fn header(table: &CdmTable) -> String {
    let mut h = String::new();
    for (i, c) in table.columns.iter().enumerate() {
        if i > 0 {
            h.push(',');
        }
        h.push_str(&c.name);
    }
    h.push('\n');
    h
}

/// The CSV file of a table.
pub(crate) fn csv_file_name(table: &str) -> String {
    format!("{table}.csv")
}
