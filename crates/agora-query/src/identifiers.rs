//! What a permit shows of each permitted column: keys re-keyed, and under the
//! `pseudonymized-rows` output policy the potential identifiers minimised.
//!
//! | column | `aggregates` | `pseudonymized-rows` (no `precision` granted) |
//! |---|---|---|
//! | hub person key (`person_id`, the CDM's `subject_id`, a Table Schema person identifier) | project pseudonym | project pseudonym |
//! | key held as text (FHIR resource ids and references) | re-keyed for the project | re-keyed for the project |
//! | OMOP record number (`visit_occurrence_id`...) | as stored | the project's permutation of its domain |
//! | OMOP polymorphic event id (`*_event_id`, `fact_id_1/2`) | as stored | absent |
//! | a FHIR table's raw `resource` JSON | as stored | absent, whatever the precision |
//! | birth date or time | as stored | first day of the year |
//! | other date or time (care, death) | as stored | first day of the month |
//! | day or month of birth (`day_of_birth`, SNDS `BEN_NAI_MOI`) | as stored | absent |
//! | free text (`note_text`, `note_title`, `snippet`, `*_text`, `comment`) | as stored | absent |
//! | place (postal code, commune, address, city, coordinates, `location_id`) | as stored | absent |
//!
//! A permit's `precision` (per column: `exact`, `day`, `month`, `year`) overrides the
//! default of a date or a potential identifier under either policy; keys are re-keyed
//! whatever it says (a hub key never leaves). Classification is by type and name, so it
//! holds for any producer's columns (OMOP, SNDS, FHIR views), and errs towards minimising:
//! a date column is a potential identifier whatever its name.
//!
//! Everything here is a projection of the policy table, below the barrier: a researcher's
//! expression (a date difference, a join on a record number) only ever sees the minimised
//! values, so no computation gets the exact ones back.

use std::collections::BTreeMap;

use agora_core::{ColumnDef, ColumnType};
use agora_govern::{Precision, ReleasePolicy};
use agora_lake::TableEntry;

use crate::{Error, Result};

/// How one permitted column is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    /// As stored.
    AsIs,
    /// The project's pseudonym of a hub person key.
    Person,
    /// A record number under the project's permutation of this domain.
    Record(String),
    /// A key held as text, re-keyed for the project.
    TextKey,
    /// A date or time truncated to this precision (never `Exact`).
    Truncated(Precision),
    /// Not shown: the column does not exist in the session.
    Absent,
}

/// What the rules need to know about one table of a release.
pub(crate) struct TableRules<'a> {
    /// The release's data model (`omop-cdm-5.4`, `fhir-r4`, `tableschema`).
    pub model: &'a str,
    pub entry: &'a TableEntry,
    /// Columns holding hub person keys.
    pub person_keys: &'a [String],
    pub policy: ReleasePolicy,
    pub precision: &'a BTreeMap<String, Precision>,
}

impl TableRules<'_> {
    /// How `column` is shown.
    pub(crate) fn shown(&self, column: &ColumnDef) -> Result<Shown> {
        let name = column.name.as_str();
        if self.person_keys.iter().any(|k| k == name) {
            return Ok(Shown::Person);
        }
        if column.ty == ColumnType::Utf8 && self.is_text_key(name)? {
            return Ok(Shown::TextKey);
        }
        let temporal = matches!(
            column.ty,
            ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampUtc
        );
        let rows = self.policy == ReleasePolicy::PseudonymizedRows;
        if rows && name == "resource" && self.model.starts_with("fhir") && is_raw_fhir(self.entry) {
            // The whole resource: hub keys in its references, every date, the address.
            return Ok(Shown::Absent);
        }
        let record = if rows {
            self.record_domain(column)
        } else {
            None
        };
        match self.precision.get(name) {
            Some(Precision::Exact) => {
                return Ok(match record {
                    Some(Some(domain)) => Shown::Record(domain),
                    _ => Shown::AsIs,
                });
            }
            Some(&p) if temporal => {
                return Ok(match (p, column.ty) {
                    (Precision::Day, ColumnType::Date) => Shown::AsIs,
                    _ => Shown::Truncated(p),
                });
            }
            Some(p) => {
                return Err(Error::Permit(format!(
                    "the permit shows column {name} of table {} to the {}, but it is not a \
                     date or a time",
                    self.entry.name,
                    match p {
                        Precision::Day => "day",
                        Precision::Month => "month",
                        _ => "year",
                    }
                )));
            }
            None => {}
        }
        if !rows {
            return Ok(Shown::AsIs);
        }
        let tokens: Vec<String> = name
            .to_ascii_lowercase()
            .split('_')
            .map(str::to_owned)
            .collect();
        let has = |t: &str| tokens.iter().any(|x| x == t);
        let lower = name.to_ascii_lowercase();
        Ok(if temporal {
            if has("birth") || has("birthdate") || has("nai") || lower.contains("birthdate") {
                Shown::Truncated(Precision::Year)
            } else {
                Shown::Truncated(Precision::Month)
            }
        } else if matches!(
            lower.as_str(),
            "month_of_birth" | "day_of_birth" | "ben_nai_moi" | "birth_month" | "birth_day"
        ) || is_place(&tokens, &lower)
            || (column.ty == ColumnType::Utf8 && is_free_text(&tokens, &lower))
        {
            Shown::Absent
        } else {
            match record {
                Some(Some(domain)) => Shown::Record(domain),
                Some(None) => Shown::Absent,
                None => Shown::AsIs,
            }
        })
    }

    /// Whether a text column holds keys: a FHIR table's `id`, and a FHIR view's columns
    /// computed by `getResourceKey()` / `getReferenceKey()` (recorded by the ingest).
    fn is_text_key(&self, name: &str) -> Result<bool> {
        if !self.model.starts_with("fhir") {
            return Ok(false);
        }
        match &self.entry.key_text_columns {
            Some(keys) => Ok(keys.iter().any(|k| k == name)),
            // A release written before the ingest recorded them: the raw tables' `id` is
            // known; a view's key columns are not, so its text cannot leave as rows.
            None if name == "id" => Ok(true),
            None if self.policy == ReleasePolicy::PseudonymizedRows && !is_raw_fhir(self.entry) => {
                Err(Error::Permit(format!(
                    "table {} was ingested before Agora recorded which view columns hold \
                     resource keys, so its text columns cannot be released as rows; \
                     re-ingest the dataset to grant it under pseudonymized-rows",
                    self.entry.name
                )))
            }
            None => Ok(false),
        }
    }

    /// For an integer column of a CDM table: `Some(Some(domain))` for a record number (the table's
    /// primary key or a column naming a person-level table's record), `Some(None)` for a
    /// polymorphic event id (its domain depends on another column), `None` otherwise.
    fn record_domain(&self, column: &ColumnDef) -> Option<Option<String>> {
        // CDM tables wherever they are stored: an OMOP release, or the OMOP tables a FHIR
        // release derives (whose record numbers are keyed resource ids).
        let spec = agora_cdm::spec(agora_cdm::CdmVersion::V5_4);
        if column.ty != ColumnType::Int64 || spec.table(&self.entry.name).is_none() {
            return None;
        }
        let name = column.name.to_ascii_lowercase();
        if name.ends_with("_event_id") || name == "fact_id_1" || name == "fact_id_2" {
            return Some(None);
        }
        spec.tables()
            .filter(|t| matches!(t.person_rows(), agora_cdm::PersonRows::Keyed(_)))
            .filter_map(|t| {
                let mut keys = t.columns.iter().filter(|c| c.primary_key);
                match (keys.next(), keys.next()) {
                    (Some(key), None) if key.name != "person_id" => Some(key.name.as_str()),
                    _ => None,
                }
            })
            .find(|key| {
                // `preceding_visit_occurrence_id`; `episode_parent_id` names an episode.
                let parent = key.strip_suffix("_id").map(|k| format!("{k}_parent_id"));
                name == *key
                    || name.ends_with(&format!("_{key}"))
                    || parent.is_some_and(|p| name == p)
            })
            .map(|key| Some(key.to_owned()))
    }
}

/// A FHIR release's raw table of one resource type (`id`, `person_id`, `resource`).
fn is_raw_fhir(entry: &TableEntry) -> bool {
    let names: Vec<&str> = entry
        .schema
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    entry.name.starts_with("fhir_") && names == ["id", "person_id", "resource"]
}

/// Free text, which names people: OMOP notes (`note_text`, `note_title`), NLP snippets
/// (`snippet`, `lexical_variant`), and any `*_text` or `comment` column.
fn is_free_text(tokens: &[String], lower: &str) -> bool {
    tokens
        .last()
        .is_some_and(|t| t == "text" || t == "comment" || t == "comments")
        || matches!(lower, "note_title" | "snippet" | "lexical_variant")
}

/// Places: postal codes, communes, addresses, cities, counties, coordinates, and OMOP's
/// `location_id` (a row of the location table is an address).
fn is_place(tokens: &[String], lower: &str) -> bool {
    const TOKENS: &[&str] = &[
        "zip",
        "zipcode",
        "postal",
        "postalcode",
        "commune",
        "address",
        "city",
        "county",
        "latitude",
        "longitude",
        "location",
        "iris",
    ];
    tokens.iter().any(|t| TOKENS.contains(&t.as_str()))
        || lower.contains("postalcode")
        || lower == "ben_res_com"
}

#[cfg(test)]
mod tests {
    use agora_core::TableSchema;

    use super::*;

    fn entry(name: &str, columns: &[(&str, ColumnType)]) -> TableEntry {
        TableEntry {
            name: name.into(),
            schema: TableSchema {
                columns: columns
                    .iter()
                    .map(|(n, ty)| ColumnDef {
                        name: (*n).into(),
                        ty: *ty,
                        nullable: true,
                    })
                    .collect(),
            },
            rows: 0,
            files: vec![],
            person_columns: vec![],
            key_text_columns: Some(vec![]),
        }
    }

    fn shown(
        model: &str,
        entry: &TableEntry,
        policy: ReleasePolicy,
        precision: &[(&str, Precision)],
    ) -> Vec<Shown> {
        let precision: BTreeMap<String, Precision> = precision
            .iter()
            .map(|(c, p)| ((*c).to_owned(), *p))
            .collect();
        let rules = TableRules {
            model,
            entry,
            person_keys: &["person_id".to_owned()],
            policy,
            precision: &precision,
        };
        entry
            .schema
            .columns
            .iter()
            .map(|c| rules.shown(c).unwrap())
            .collect()
    }

    #[test]
    fn omop_rows_minimise_birth_dates_places_and_record_numbers() {
        use ColumnType::*;
        let person = entry(
            "person",
            &[
                ("person_id", Int64),
                ("year_of_birth", Int64),
                ("month_of_birth", Int64),
                ("birth_datetime", Timestamp),
                ("location_id", Int64),
                ("gender_concept_id", Int64),
            ],
        );
        let rows = ReleasePolicy::PseudonymizedRows;
        assert_eq!(
            shown("omop-cdm-5.4", &person, rows, &[]),
            [
                Shown::Person,
                Shown::AsIs,
                Shown::Absent,
                Shown::Truncated(Precision::Year),
                Shown::Absent,
                Shown::AsIs,
            ]
        );
        let visit = entry(
            "visit_occurrence",
            &[
                ("visit_occurrence_id", Int64),
                ("visit_start_date", Date),
                ("preceding_visit_occurrence_id", Int64),
                ("care_site_id", Int64),
            ],
        );
        let record = Shown::Record("visit_occurrence_id".into());
        assert_eq!(
            shown("omop-cdm-5.4", &visit, rows, &[]),
            [
                record.clone(),
                Shown::Truncated(Precision::Month),
                record.clone(),
                Shown::AsIs
            ]
        );
        // Granted: exact care dates; a record number stays re-keyed even when "exact".
        assert_eq!(
            shown(
                "omop-cdm-5.4",
                &visit,
                rows,
                &[
                    ("visit_start_date", Precision::Exact),
                    ("visit_occurrence_id", Precision::Exact)
                ]
            )[..2],
            [record, Shown::AsIs]
        );
        // Aggregates: as stored, but for person keys and a precision the permit sets.
        assert_eq!(
            shown(
                "omop-cdm-5.4",
                &visit,
                ReleasePolicy::Aggregates,
                &[("visit_start_date", Precision::Year)]
            ),
            [
                Shown::AsIs,
                Shown::Truncated(Precision::Year),
                Shown::AsIs,
                Shown::AsIs
            ]
        );
    }

    #[test]
    fn snds_and_fhir_columns_are_classified_by_type_and_name() {
        use ColumnType::*;
        let rows = ReleasePolicy::PseudonymizedRows;
        let snds = entry(
            "ir_ben_r",
            &[
                ("BEN_NAI_ANN", Int64),
                ("BEN_NAI_MOI", Int64),
                ("BEN_RES_COM", Utf8),
                ("BEN_DCD_DTE", Date),
            ],
        );
        assert_eq!(
            shown("tableschema", &snds, rows, &[]),
            [
                Shown::AsIs,
                Shown::Absent,
                Shown::Absent,
                Shown::Truncated(Precision::Month)
            ]
        );
        let mut view = entry(
            "patient_view",
            &[
                ("id", Utf8),
                ("birthDate", Date),
                ("postal_code", Utf8),
                ("gender", Utf8),
            ],
        );
        view.key_text_columns = Some(vec!["id".into()]);
        assert_eq!(
            shown("fhir-r4", &view, ReleasePolicy::Aggregates, &[]),
            [Shown::TextKey, Shown::AsIs, Shown::AsIs, Shown::AsIs]
        );
        assert_eq!(
            shown("fhir-r4", &view, rows, &[]),
            [
                Shown::TextKey,
                Shown::Truncated(Precision::Year),
                Shown::Absent,
                Shown::AsIs
            ]
        );
        // A view of a release that did not record its key columns cannot leave as rows.
        view.key_text_columns = None;
        let rules = TableRules {
            model: "fhir-r4",
            entry: &view,
            person_keys: &[],
            policy: rows,
            precision: &BTreeMap::new(),
        };
        assert!(rules.shown(&view.schema.columns[3]).is_err());
    }

    #[test]
    fn free_text_leaves_only_when_granted() {
        use ColumnType::*;
        let note = entry(
            "note",
            &[
                ("note_text", Utf8),
                ("note_title", Utf8),
                ("note_source_value", Utf8),
            ],
        );
        let rows = ReleasePolicy::PseudonymizedRows;
        assert_eq!(
            shown("omop-cdm-5.4", &note, rows, &[]),
            [Shown::Absent, Shown::Absent, Shown::AsIs]
        );
        assert_eq!(
            shown(
                "omop-cdm-5.4",
                &note,
                rows,
                &[("note_text", Precision::Exact)]
            )[0],
            Shown::AsIs
        );
    }

    #[test]
    fn a_date_precision_on_a_non_date_is_refused() {
        let t = entry("t", &[("code", ColumnType::Utf8)]);
        let precision = BTreeMap::from([("code".to_owned(), Precision::Month)]);
        let rules = TableRules {
            model: "tableschema",
            entry: &t,
            person_keys: &[],
            policy: ReleasePolicy::Aggregates,
            precision: &precision,
        };
        let e = rules.shown(&t.schema.columns[0]).unwrap_err();
        assert!(e.to_string().contains("not a date"), "{e}");
    }
}
