//! The CDM 5.4 column lists of the tables we write, copied from
//! `OMOP_CDMv5.4_Field_Level.csv` so the generator never reads the spec at runtime.

/// CDM data type of a column (`Text(0)` is `varchar(MAX)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Float,
    Date,
    DateTime,
    Text(u16),
}

// `required` and `ty` document the spec; only the tests read them.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) required: bool,
    pub(crate) ty: Ty,
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) columns: &'static [Column],
}

const fn col(name: &'static str, required: bool, ty: Ty) -> Column {
    Column { name, required, ty }
}

// Indexes into `TABLES`; also the order of the output files and of the report.
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

impl Table {
    /// The CSV header line, with its trailing newline.
    pub(crate) fn header(&self) -> String {
        let mut h = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                h.push(',');
            }
            h.push_str(c.name);
        }
        h.push('\n');
        h
    }
}

/// The CSV file of a table.
pub(crate) fn csv_file_name(table: &str) -> String {
    format!("{table}.csv")
}

pub(crate) const TABLES: [Table; 11] = [
    Table {
        name: "person",
        columns: &[
            col("person_id", true, Ty::Int),
            col("gender_concept_id", true, Ty::Int),
            col("year_of_birth", true, Ty::Int),
            col("month_of_birth", false, Ty::Int),
            col("day_of_birth", false, Ty::Int),
            col("birth_datetime", false, Ty::DateTime),
            col("race_concept_id", true, Ty::Int),
            col("ethnicity_concept_id", true, Ty::Int),
            col("location_id", false, Ty::Int),
            col("provider_id", false, Ty::Int),
            col("care_site_id", false, Ty::Int),
            col("person_source_value", false, Ty::Text(50)),
            col("gender_source_value", false, Ty::Text(50)),
            col("gender_source_concept_id", false, Ty::Int),
            col("race_source_value", false, Ty::Text(50)),
            col("race_source_concept_id", false, Ty::Int),
            col("ethnicity_source_value", false, Ty::Text(50)),
            col("ethnicity_source_concept_id", false, Ty::Int),
        ],
    },
    Table {
        name: "observation_period",
        columns: &[
            col("observation_period_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("observation_period_start_date", true, Ty::Date),
            col("observation_period_end_date", true, Ty::Date),
            col("period_type_concept_id", true, Ty::Int),
        ],
    },
    Table {
        name: "visit_occurrence",
        columns: &[
            col("visit_occurrence_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("visit_concept_id", true, Ty::Int),
            col("visit_start_date", true, Ty::Date),
            col("visit_start_datetime", false, Ty::DateTime),
            col("visit_end_date", true, Ty::Date),
            col("visit_end_datetime", false, Ty::DateTime),
            col("visit_type_concept_id", true, Ty::Int),
            col("provider_id", false, Ty::Int),
            col("care_site_id", false, Ty::Int),
            col("visit_source_value", false, Ty::Text(50)),
            col("visit_source_concept_id", false, Ty::Int),
            col("admitted_from_concept_id", false, Ty::Int),
            col("admitted_from_source_value", false, Ty::Text(50)),
            col("discharged_to_concept_id", false, Ty::Int),
            col("discharged_to_source_value", false, Ty::Text(50)),
            col("preceding_visit_occurrence_id", false, Ty::Int),
        ],
    },
    Table {
        name: "condition_occurrence",
        columns: &[
            col("condition_occurrence_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("condition_concept_id", true, Ty::Int),
            col("condition_start_date", true, Ty::Date),
            col("condition_start_datetime", false, Ty::DateTime),
            col("condition_end_date", false, Ty::Date),
            col("condition_end_datetime", false, Ty::DateTime),
            col("condition_type_concept_id", true, Ty::Int),
            col("condition_status_concept_id", false, Ty::Int),
            col("stop_reason", false, Ty::Text(20)),
            col("provider_id", false, Ty::Int),
            col("visit_occurrence_id", false, Ty::Int),
            col("visit_detail_id", false, Ty::Int),
            col("condition_source_value", false, Ty::Text(50)),
            col("condition_source_concept_id", false, Ty::Int),
            col("condition_status_source_value", false, Ty::Text(50)),
        ],
    },
    Table {
        name: "drug_exposure",
        columns: &[
            col("drug_exposure_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("drug_concept_id", true, Ty::Int),
            col("drug_exposure_start_date", true, Ty::Date),
            col("drug_exposure_start_datetime", false, Ty::DateTime),
            col("drug_exposure_end_date", true, Ty::Date),
            col("drug_exposure_end_datetime", false, Ty::DateTime),
            col("verbatim_end_date", false, Ty::Date),
            col("drug_type_concept_id", true, Ty::Int),
            col("stop_reason", false, Ty::Text(20)),
            col("refills", false, Ty::Int),
            col("quantity", false, Ty::Float),
            col("days_supply", false, Ty::Int),
            col("sig", false, Ty::Text(0)),
            col("route_concept_id", false, Ty::Int),
            col("lot_number", false, Ty::Text(50)),
            col("provider_id", false, Ty::Int),
            col("visit_occurrence_id", false, Ty::Int),
            col("visit_detail_id", false, Ty::Int),
            col("drug_source_value", false, Ty::Text(50)),
            col("drug_source_concept_id", false, Ty::Int),
            col("route_source_value", false, Ty::Text(50)),
            col("dose_unit_source_value", false, Ty::Text(50)),
        ],
    },
    Table {
        name: "procedure_occurrence",
        columns: &[
            col("procedure_occurrence_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("procedure_concept_id", true, Ty::Int),
            col("procedure_date", true, Ty::Date),
            col("procedure_datetime", false, Ty::DateTime),
            col("procedure_end_date", false, Ty::Date),
            col("procedure_end_datetime", false, Ty::DateTime),
            col("procedure_type_concept_id", true, Ty::Int),
            col("modifier_concept_id", false, Ty::Int),
            col("quantity", false, Ty::Int),
            col("provider_id", false, Ty::Int),
            col("visit_occurrence_id", false, Ty::Int),
            col("visit_detail_id", false, Ty::Int),
            col("procedure_source_value", false, Ty::Text(50)),
            col("procedure_source_concept_id", false, Ty::Int),
            col("modifier_source_value", false, Ty::Text(50)),
        ],
    },
    Table {
        name: "measurement",
        columns: &[
            col("measurement_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("measurement_concept_id", true, Ty::Int),
            col("measurement_date", true, Ty::Date),
            col("measurement_datetime", false, Ty::DateTime),
            col("measurement_time", false, Ty::Text(10)),
            col("measurement_type_concept_id", true, Ty::Int),
            col("operator_concept_id", false, Ty::Int),
            col("value_as_number", false, Ty::Float),
            col("value_as_concept_id", false, Ty::Int),
            col("unit_concept_id", false, Ty::Int),
            col("range_low", false, Ty::Float),
            col("range_high", false, Ty::Float),
            col("provider_id", false, Ty::Int),
            col("visit_occurrence_id", false, Ty::Int),
            col("visit_detail_id", false, Ty::Int),
            col("measurement_source_value", false, Ty::Text(50)),
            col("measurement_source_concept_id", false, Ty::Int),
            col("unit_source_value", false, Ty::Text(50)),
            col("unit_source_concept_id", false, Ty::Int),
            col("value_source_value", false, Ty::Text(50)),
            col("measurement_event_id", false, Ty::Int),
            col("meas_event_field_concept_id", false, Ty::Int),
        ],
    },
    Table {
        name: "observation",
        columns: &[
            col("observation_id", true, Ty::Int),
            col("person_id", true, Ty::Int),
            col("observation_concept_id", true, Ty::Int),
            col("observation_date", true, Ty::Date),
            col("observation_datetime", false, Ty::DateTime),
            col("observation_type_concept_id", true, Ty::Int),
            col("value_as_number", false, Ty::Float),
            col("value_as_string", false, Ty::Text(60)),
            col("value_as_concept_id", false, Ty::Int),
            col("qualifier_concept_id", false, Ty::Int),
            col("unit_concept_id", false, Ty::Int),
            col("provider_id", false, Ty::Int),
            col("visit_occurrence_id", false, Ty::Int),
            col("visit_detail_id", false, Ty::Int),
            col("observation_source_value", false, Ty::Text(50)),
            col("observation_source_concept_id", false, Ty::Int),
            col("unit_source_value", false, Ty::Text(50)),
            col("qualifier_source_value", false, Ty::Text(50)),
            col("value_source_value", false, Ty::Text(50)),
            col("observation_event_id", false, Ty::Int),
            col("obs_event_field_concept_id", false, Ty::Int),
        ],
    },
    Table {
        name: "death",
        columns: &[
            col("person_id", true, Ty::Int),
            col("death_date", true, Ty::Date),
            col("death_datetime", false, Ty::DateTime),
            col("death_type_concept_id", false, Ty::Int),
            col("cause_concept_id", false, Ty::Int),
            col("cause_source_value", false, Ty::Text(50)),
            col("cause_source_concept_id", false, Ty::Int),
        ],
    },
    Table {
        name: "concept",
        columns: &[
            col("concept_id", true, Ty::Int),
            col("concept_name", true, Ty::Text(255)),
            col("domain_id", true, Ty::Text(20)),
            col("vocabulary_id", true, Ty::Text(20)),
            col("concept_class_id", true, Ty::Text(20)),
            col("standard_concept", false, Ty::Text(1)),
            col("concept_code", true, Ty::Text(50)),
            col("valid_start_date", true, Ty::Date),
            col("valid_end_date", true, Ty::Date),
            col("invalid_reason", false, Ty::Text(1)),
        ],
    },
    Table {
        name: "concept_ancestor",
        columns: &[
            col("ancestor_concept_id", true, Ty::Int),
            col("descendant_concept_id", true, Ty::Int),
            col("min_levels_of_separation", true, Ty::Int),
            col("max_levels_of_separation", true, Ty::Int),
        ],
    },
];
