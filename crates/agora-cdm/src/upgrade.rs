//! How an extract of an older CDM version is stored in the shape of the newest one, so one
//! SQL text serves every release: for each table of the source version, where each stored
//! column comes from.
//!
//! Every difference between CDM 5.3 and 5.4 is decided here and nowhere else:
//!
//! * **renamed columns** ([`RENAMES_5_3`]) are carried over under their 5.4 names;
//! * **misspellings** of real 5.3 extracts ([`SPELLINGS_5_3`]: the 5.3.1 DDL's
//!   `cost.reveue_code_source_value`) are read as the column the specification names;
//! * **columns 5.4 added** are null;
//! * **5.4-required columns 5.3 lacks** get a derived value ([`Derived`]):
//!   `cdm_source.cdm_version_concept_id` = [`CDM_VERSION_CONCEPT_5_3`],
//!   `metadata.metadata_id` = the row's position in its file (1-based);
//! * **5.3-only tables** (`attribute_definition`) are stored as they are, under their own name;
//! * `cohort`, which the 5.3.1 DDL has but its field-level specification lacks, is read as
//!   5.4's (the columns are the same).
//!
//! Values are validated against the source version's declaration (type, length, required).
//!
//! ```
//! use agora_cdm::CdmVersion;
//! use agora_cdm::upgrade::{self, ColumnSource};
//!
//! let visit = upgrade::table(CdmVersion::V5_3, "visit_occurrence").unwrap();
//! let admitted = visit.column("admitted_from_concept_id").unwrap();
//! assert!(matches!(&admitted.source,
//!     ColumnSource::Read { column, .. } if column.name == "admitting_source_concept_id"));
//! ```

use crate::{CdmColumn, CdmTable, CdmVersion, spec};

/// The version every release is stored as.
pub const STORED: CdmVersion = CdmVersion::V5_4;

/// Columns CDM 5.4 renamed: `(table, 5.3 name, 5.4 name)`. Found by diffing OHDSI's two
/// field-level specifications (the test `renames_cover_every_difference` re-does the diff).
pub const RENAMES_5_3: &[(&str, &str, &str)] = &[
    (
        "visit_occurrence",
        "admitting_source_concept_id",
        "admitted_from_concept_id",
    ),
    (
        "visit_occurrence",
        "admitting_source_value",
        "admitted_from_source_value",
    ),
    (
        "visit_occurrence",
        "discharge_to_concept_id",
        "discharged_to_concept_id",
    ),
    (
        "visit_occurrence",
        "discharge_to_source_value",
        "discharged_to_source_value",
    ),
    (
        "visit_detail",
        "admitting_source_concept_id",
        "admitted_from_concept_id",
    ),
    (
        "visit_detail",
        "admitting_source_value",
        "admitted_from_source_value",
    ),
    (
        "visit_detail",
        "discharge_to_concept_id",
        "discharged_to_concept_id",
    ),
    (
        "visit_detail",
        "discharge_to_source_value",
        "discharged_to_source_value",
    ),
    (
        "visit_detail",
        "visit_detail_parent_id",
        "parent_visit_detail_id",
    ),
];

/// Header spellings found in 5.3 extracts that the specification does not use:
/// `(table, spelling, 5.3 column)`. OHDSI's 5.3.1 DDL (and extracts made with it, such as
/// Eunomia's) misspells `cost.revenue_code_source_value`.
pub const SPELLINGS_5_3: &[(&str, &str, &str)] = &[(
    "cost",
    "reveue_code_source_value",
    "revenue_code_source_value",
)];

/// `cdm_source.cdm_version_concept_id` of a 5.3 extract: 0, OMOP's "No matching concept".
/// OHDSI's vocabulary names CDM versions in its `CDM` vocabulary (756265 is "OMOP CDM
/// Version 5.4"), but the vocabulary shipped with our fixtures holds none of them, so the id of
/// the 5.3.1 concept could not be checked; 0 says "unknown" honestly, and the source version is
/// recorded in the release's manifest (`source.converted_from`) and in `cdm_source.cdm_version`,
/// which is kept as the extract gives it.
pub const CDM_VERSION_CONCEPT_5_3: i64 = 0;

/// A 5.4-required column that an older version lacks, and how its value is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// A constant integer (`cdm_source.cdm_version_concept_id`).
    Constant(i64),
    /// The row's position in its source file, 1-based, header not counted
    /// (`metadata.metadata_id`).
    RowNumber,
}

/// Derived 5.4 columns of 5.3 extracts: `(table, 5.4 column, value)`.
pub const DERIVED_5_3: &[(&str, &str, Derived)] = &[
    (
        "cdm_source",
        "cdm_version_concept_id",
        Derived::Constant(CDM_VERSION_CONCEPT_5_3),
    ),
    ("metadata", "metadata_id", Derived::RowNumber),
];

/// Where a stored column's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// A column of the extract, validated against `column` (the source version's
    /// declaration: type, length, required).
    Read {
        /// The source version's column.
        column: CdmColumn,
        /// Header names accepted for it, the specification's first.
        spellings: Vec<&'static str>,
    },
    /// A column the source version does not have: null.
    Null,
    /// A column the source version does not have but the stored version requires.
    Derived(Derived),
}

/// One stored column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    /// The stored column (name, type) as the stored version declares it.
    pub target: CdmColumn,
    /// Where its values come from.
    pub source: ColumnSource,
}

impl ColumnMap {
    /// Whether the stored column may hold nulls: a read column whose source version does not
    /// require it, a column the source lacks; never a derived one.
    pub fn nullable(&self) -> bool {
        match &self.source {
            ColumnSource::Read { column, .. } => !column.required,
            ColumnSource::Null => true,
            ColumnSource::Derived(_) => false,
        }
    }
}

/// How one table of a source version is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUpgrade {
    /// The source version.
    pub from: CdmVersion,
    /// The stored table: the stored version's, or the source version's for a table the
    /// stored version does not have.
    pub stored: &'static CdmTable,
    /// The stored table's columns, in its order, each with its source.
    pub columns: Vec<ColumnMap>,
    /// The table exists in the source version only and is stored as it is.
    pub source_only: bool,
}

impl TableUpgrade {
    /// The stored column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnMap> {
        self.columns.iter().find(|c| c.target.name == name)
    }
}

/// How table `name` (lower case) of a `from` extract is stored, or `None` when `from` has no
/// such table. For [`STORED`] itself every column is read as it is.
pub fn table(from: CdmVersion, name: &str) -> Option<TableUpgrade> {
    let source_spec = spec(from);
    let stored_spec = spec(STORED);
    let source = match source_spec.table(name) {
        Some(t) => t,
        // In the 5.3.1 DDL though not in its field-level specification; same columns.
        None if from == CdmVersion::V5_3 && name == "cohort" => {
            return table(STORED, name);
        }
        None => return None,
    };
    let Some(stored) = stored_spec.table(name) else {
        return Some(TableUpgrade {
            from,
            stored: source,
            columns: source.columns.iter().map(|c| read(from, name, c)).collect(),
            source_only: true,
        });
    };
    let columns = stored
        .columns
        .iter()
        .map(|target| {
            let source_name = renamed_from(from, name, &target.name).unwrap_or(&target.name);
            let source_column = source.column(source_name);
            let source = match source_column {
                Some(c) => read(from, name, c).source,
                None => match derived(from, name, &target.name) {
                    Some(d) => ColumnSource::Derived(d),
                    None => ColumnSource::Null,
                },
            };
            ColumnMap {
                target: target.clone(),
                source,
            }
        })
        .collect();
    Some(TableUpgrade {
        from,
        stored,
        columns,
        source_only: false,
    })
}

fn read(from: CdmVersion, table: &str, column: &'static CdmColumn) -> ColumnMap {
    let spelling = |t: &&(&str, &str, &str)| t.0 == table && t.2 == column.name;
    let mut spellings: Vec<&'static str> = vec![column.name.as_str()];
    if from == CdmVersion::V5_3 {
        spellings.extend(SPELLINGS_5_3.iter().filter(spelling).map(|t| t.1));
    }
    ColumnMap {
        target: column.clone(),
        source: ColumnSource::Read {
            column: column.clone(),
            spellings,
        },
    }
}

/// The 5.3 name of 5.4 column `table.column`, when 5.4 renamed it.
fn renamed_from(from: CdmVersion, table: &str, column: &str) -> Option<&'static str> {
    (from == CdmVersion::V5_3)
        .then(|| {
            RENAMES_5_3
                .iter()
                .find(|(t, _, new)| *t == table && *new == column)
                .map(|(_, old, _)| *old)
        })
        .flatten()
}

fn derived(from: CdmVersion, table: &str, column: &str) -> Option<Derived> {
    (from == CdmVersion::V5_3)
        .then(|| {
            DERIVED_5_3
                .iter()
                .find(|(t, c, _)| *t == table && *c == column)
                .map(|(_, _, d)| *d)
        })
        .flatten()
}

/// Column names that only one version's `table` has, as header names betraying that
/// version: `(name, version)`, 5.3's first (renamed and misspelt names included).
pub fn telltales(table: &str) -> Vec<(&'static str, CdmVersion)> {
    let (Some(old), Some(new)) = (
        spec(CdmVersion::V5_3).table(table),
        spec(CdmVersion::V5_4).table(table),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<(&'static str, CdmVersion)> = old
        .columns
        .iter()
        .filter(|c| new.column(&c.name).is_none())
        .map(|c| (c.name.as_str(), CdmVersion::V5_3))
        .collect();
    out.extend(
        SPELLINGS_5_3
            .iter()
            .filter(|(t, _, _)| *t == table)
            .map(|(_, s, _)| (*s, CdmVersion::V5_3)),
    );
    out.extend(
        new.columns
            .iter()
            .filter(|c| old.column(&c.name).is_none())
            .map(|c| (c.name.as_str(), CdmVersion::V5_4)),
    );
    out
}

impl CdmVersion {
    /// Reads a version as extracts write it (`cdm_source.cdm_version`, `--cdm-version`):
    /// `5.4`, `v5.3.1`, `CDM v5.3.1`, `5.4.0`... — the first `major.minor` in the text.
    /// `None` for a version Agora does not know.
    pub fn parse(text: &str) -> Option<CdmVersion> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let mut parts = text[start..]
            .split(|c: char| !c.is_ascii_digit())
            .map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        // The separator must be a dot: `5.3`, not `5 3` or `5-3`.
        let rest = &text[start + major.to_string().len()..];
        if !rest.starts_with('.') {
            return None;
        }
        let minor = parts.next()?.ok()?;
        match (major, minor) {
            (5, 3) => Some(CdmVersion::V5_3),
            (5, 4) => Some(CdmVersion::V5_4),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_as_extracts_write_them() {
        for (text, version) in [
            ("5.3", Some(CdmVersion::V5_3)),
            ("v5.3.1", Some(CdmVersion::V5_3)),
            ("CDM v5.3.1", Some(CdmVersion::V5_3)),
            ("5.4", Some(CdmVersion::V5_4)),
            ("v5.4.0", Some(CdmVersion::V5_4)),
            (" OMOP CDM 5.4 ", Some(CdmVersion::V5_4)),
            ("6.0", None),
            ("5.2", None),
            ("5", None),
            ("", None),
            ("v5", None),
        ] {
            assert_eq!(CdmVersion::parse(text), version, "{text:?}");
        }
    }

    /// The rename table is exactly the diff of the two specifications: every 5.3 column
    /// 5.4 lacks is renamed (into a column of the same type), and every 5.4 column 5.3 lacks
    /// is a rename target, null or derived — and derived only when 5.4 requires it.
    #[test]
    fn renames_cover_every_difference() {
        let (old, new) = (spec(CdmVersion::V5_3), spec(CdmVersion::V5_4));
        let mut renamed = Vec::new();
        let mut derived_found = Vec::new();
        for t in old.tables() {
            let Some(n) = new.table(&t.name) else {
                assert_eq!(t.name, "attribute_definition", "5.3-only table");
                let up = table(CdmVersion::V5_3, &t.name).unwrap();
                assert!(up.source_only);
                continue;
            };
            for c in &t.columns {
                if n.column(&c.name).is_none() {
                    let (_, _, to) = RENAMES_5_3
                        .iter()
                        .find(|(tt, from, _)| *tt == t.name && *from == c.name)
                        .unwrap_or_else(|| panic!("{}.{} dropped by 5.4", t.name, c.name));
                    assert_eq!(n.column(to).unwrap().datatype, c.datatype);
                    renamed.push((t.name.clone(), c.name.clone()));
                }
            }
            let up = table(CdmVersion::V5_3, &t.name).unwrap();
            assert_eq!(up.columns.len(), n.columns.len());
            for m in &up.columns {
                match &m.source {
                    ColumnSource::Read { .. } => {}
                    ColumnSource::Null => assert!(!m.target.required, "{}", m.target.name),
                    ColumnSource::Derived(_) => {
                        assert!(m.target.required);
                        derived_found.push((t.name.clone(), m.target.name.clone()));
                    }
                }
            }
        }
        assert_eq!(renamed.len(), RENAMES_5_3.len());
        let derived_found: Vec<(&str, &str)> = derived_found
            .iter()
            .map(|(t, c)| (t.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            derived_found,
            [
                ("cdm_source", "cdm_version_concept_id"),
                ("metadata", "metadata_id")
            ]
        );
    }

    #[test]
    fn misspelt_cost_column_is_read_as_revenue_code_source_value() {
        let cost = table(CdmVersion::V5_3, "cost").unwrap();
        let ColumnSource::Read { spellings, .. } =
            &cost.column("revenue_code_source_value").unwrap().source
        else {
            panic!("read");
        };
        assert_eq!(
            spellings,
            &["revenue_code_source_value", "reveue_code_source_value"]
        );
        // 5.4 extracts are read as they are.
        let cost = table(CdmVersion::V5_4, "cost").unwrap();
        let ColumnSource::Read { spellings, .. } =
            &cost.column("revenue_code_source_value").unwrap().source
        else {
            panic!("read");
        };
        assert_eq!(spellings, &["revenue_code_source_value"]);
        assert!(telltales("cost").contains(&("reveue_code_source_value", CdmVersion::V5_3)));
    }

    #[test]
    fn stored_shapes() {
        let visit = table(CdmVersion::V5_3, "visit_detail").unwrap();
        let names: Vec<&str> = visit
            .columns
            .iter()
            .map(|c| c.target.name.as_str())
            .collect();
        let v54: Vec<&str> = spec(CdmVersion::V5_4)
            .table("visit_detail")
            .unwrap()
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, v54);
        let parent = visit.column("parent_visit_detail_id").unwrap();
        assert!(
            matches!(&parent.source, ColumnSource::Read { column, .. } if column.name == "visit_detail_parent_id")
        );
        let cdm = table(CdmVersion::V5_3, "cdm_source").unwrap();
        let concept = cdm.column("cdm_version_concept_id").unwrap();
        assert_eq!(concept.source, ColumnSource::Derived(Derived::Constant(0)));
        assert!(!concept.nullable());
        // 5.4 requires cdm_holder, 5.3 does not: stored nullable.
        assert!(cdm.column("cdm_holder").unwrap().nullable());
        let note = table(CdmVersion::V5_3, "note").unwrap();
        assert_eq!(
            note.column("note_event_id").unwrap().source,
            ColumnSource::Null
        );
        let cohort = table(CdmVersion::V5_3, "cohort").unwrap();
        assert_eq!(cohort.stored.name, "cohort");
        assert!(table(CdmVersion::V5_3, "episode").is_none());
        assert!(table(CdmVersion::V5_4, "attribute_definition").is_none());
        let t = telltales("visit_occurrence");
        assert!(t.contains(&("admitting_source_concept_id", CdmVersion::V5_3)));
        assert!(t.contains(&("admitted_from_concept_id", CdmVersion::V5_4)));
        assert_eq!(telltales("person"), []);
    }
}
