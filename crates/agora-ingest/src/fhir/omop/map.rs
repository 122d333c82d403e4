//! FHIR R4 resource → OMOP CDM 5.4 rows. Pure: a (pseudonymized) resource in, rows out;
//! storing, numbering, quarantine and coverage counts are the caller's (`super`).
//!
//! The element-by-element mapping is the table in the README ("FHIR → OMOP"). Conventions:
//! - dates are the calendar date as written (FHIR's local date); datetimes the wall-clock
//!   time as written, without offset (OMOP datetimes are local); a date without time is
//!   midnight. A date with less than day precision is not a date OMOP can hold: a required
//!   one makes the row unusable (quarantined), an optional one is left null;
//! - a CodeableConcept maps through its first coding whose code has a standard concept;
//!   otherwise its first coding of a known system (else its first coding) gives the
//!   `*_source_value` and `*_source_concept_id`, and `*_concept_id` is 0;
//! - resources recorded in error, cancelled, not done or refuted are not mapped (counted);
//! - type concepts say the record comes from an EHR: 32817 "EHR", 32838 "EHR prescription"
//!   (MedicationRequest), 32818 "EHR administration record" (Immunization).

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::table::{Cell, Cells};
use super::visits::Visits;
use super::vocab::{Domain, Mapped, Vocabulary, vocabulary_of};

pub(crate) const EHR: i64 = 32817;
const EHR_PRESCRIPTION: i64 = 32838;
const EHR_ADMINISTRATION: i64 = 32818;

/// The OMOP table a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Target {
    Person,
    Death,
    VisitOccurrence,
    ConditionOccurrence,
    DrugExposure,
    ProcedureOccurrence,
    Measurement,
    Observation,
}

impl Target {
    pub(crate) const ALL: [Target; 8] = [
        Target::Person,
        Target::Death,
        Target::VisitOccurrence,
        Target::ConditionOccurrence,
        Target::DrugExposure,
        Target::ProcedureOccurrence,
        Target::Measurement,
        Target::Observation,
    ];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Target::Person => "person",
            Target::Death => "death",
            Target::VisitOccurrence => "visit_occurrence",
            Target::ConditionOccurrence => "condition_occurrence",
            Target::DrugExposure => "drug_exposure",
            Target::ProcedureOccurrence => "procedure_occurrence",
            Target::Measurement => "measurement",
            Target::Observation => "observation",
        }
    }

    /// Whether the table numbers its own rows (its first column is its id).
    pub(crate) fn numbered(self) -> bool {
        !matches!(
            self,
            Target::Person | Target::Death | Target::VisitOccurrence
        )
    }

    /// The concept column whose mapping the report counts.
    pub(crate) fn concept_column(self) -> Option<&'static str> {
        match self {
            Target::Person | Target::Death => None,
            Target::VisitOccurrence => Some("visit_concept_id"),
            Target::ConditionOccurrence => Some("condition_concept_id"),
            Target::DrugExposure => Some("drug_concept_id"),
            Target::ProcedureOccurrence => Some("procedure_concept_id"),
            Target::Measurement => Some("measurement_concept_id"),
            Target::Observation => Some("observation_concept_id"),
        }
    }

    /// Whether the table's dates are events that observation periods must cover.
    pub(crate) fn is_event(self) -> bool {
        !matches!(self, Target::Person | Target::Death)
    }
}

/// Whether a row's main concept was mapped to a standard concept, and from which vocabulary
/// (a label for the report, never a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub(crate) mapped: bool,
    pub(crate) source: &'static str,
}

/// One row to store.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) target: Target,
    pub(crate) cells: Cells,
    pub(crate) coverage: Option<Coverage>,
    /// A required column whose FHIR value is present but not a usable date.
    pub(crate) unusable: Option<&'static str>,
}

impl Out {
    fn new(target: Target) -> Self {
        Self {
            target,
            cells: Vec::new(),
            coverage: None,
            unusable: None,
        }
    }

    fn set(&mut self, column: &'static str, cell: Cell) {
        self.cells.push((column, cell));
    }

    fn int(&mut self, column: &'static str, v: Option<i64>) {
        if let Some(v) = v {
            self.set(column, Cell::Int(v));
        }
    }

    fn float(&mut self, column: &'static str, v: Option<f64>) {
        if let Some(v) = v {
            self.set(column, Cell::Float(v));
        }
    }

    fn text(&mut self, column: &'static str, v: Option<&str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.set(column, Cell::Text(v.to_owned()));
        }
    }

    /// Sets a date column (and its datetime twin). `required`: an unusable value makes the
    /// row unusable; otherwise it is left null.
    fn when(
        &mut self,
        date: &'static str,
        datetime: Option<&'static str>,
        when: When,
        required: bool,
    ) {
        match when {
            When::At(t) => {
                self.set(date, Cell::Date(days(t.date())));
                if let Some(dt) = datetime {
                    self.set(dt, Cell::DateTime(t.and_utc().timestamp_micros()));
                }
            }
            When::Unusable if required => {
                self.unusable.get_or_insert(date);
            }
            When::Unusable | When::Absent => {}
        }
    }

    /// Sets `concept`, `source_value` and `source_concept_id` columns from a code.
    fn code(
        &mut self,
        code: &Code,
        concept: &'static str,
        source_value: &'static str,
        source_concept: &'static str,
    ) {
        self.set(concept, Cell::Int(code.concept_id));
        self.text(source_value, code.source_value.as_deref());
        self.set(source_concept, Cell::Int(code.source_concept_id));
        self.coverage = Some(Coverage {
            mapped: code.concept_id != 0,
            source: code.source,
        });
    }

    fn visit(&mut self, visit: Option<i64>) {
        self.int("visit_occurrence_id", visit);
    }
}

/// What mapping a resource gave.
#[derive(Debug)]
pub(crate) enum Mapping {
    /// Rows to store (none for resource types OMOP does not take).
    Rows(Vec<Out>),
    /// The resource says it did not happen (status); not mapped, counted.
    NotApplicable,
}

/// A FHIR date-like value as OMOP can hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Absent,
    /// Present but not a date with at least a day (partial, malformed, not a string).
    Unusable,
    /// The wall-clock time as written (midnight for a date).
    At(NaiveDateTime),
}

pub(crate) fn when(v: Option<&Value>) -> When {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return When::Absent;
    };
    let Some(s) = v.as_str() else {
        return When::Unusable;
    };
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return When::At(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return When::At(t.naive_local());
    }
    // FHIR requires an offset with a time; a producer that omits one gave a local time.
    match NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        Ok(t) => When::At(t),
        Err(_) => When::Unusable,
    }
}

fn first(options: [When; 3]) -> When {
    options
        .into_iter()
        .find(|w| *w != When::Absent)
        .unwrap_or(When::Absent)
}

pub(crate) fn days(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (d - epoch).num_days() as i32
}

/// A code as mapped: see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Code {
    pub(crate) concept_id: i64,
    pub(crate) source_concept_id: i64,
    pub(crate) source_value: Option<String>,
    pub(crate) domain: Option<Domain>,
    /// The vocabulary for the report: an OMOP vocabulary id, `other code system`, `no code`.
    pub(crate) source: &'static str,
}

/// Maps resources with one vocabulary and the extract's visits.
pub(crate) struct Mapper<'a> {
    pub(crate) vocabulary: &'a Vocabulary,
    pub(crate) visits: &'a Visits,
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path)?.as_str()
}

fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Statuses that say a resource did not happen or was recorded by mistake.
const NOT_HAPPENED: &[&str] = &["entered-in-error", "cancelled", "not-done", "refuted"];

fn not_happened(r: &Value) -> bool {
    if r["status"]
        .as_str()
        .is_some_and(|s| NOT_HAPPENED.contains(&s))
    {
        return true;
    }
    // Condition: verificationStatus is a CodeableConcept.
    r["verificationStatus"]["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["code"]
                .as_str()
                .is_some_and(|s| NOT_HAPPENED.contains(&s))
        })
}

impl Mapper<'_> {
    /// Maps one pseudonymized resource of `person` (the hub key, if it refers to one).
    pub(crate) fn map(&self, resource: &Value, person: Option<i64>) -> Mapping {
        let ty = resource["resourceType"].as_str().unwrap_or("");
        let mapped = matches!(
            ty,
            "Patient"
                | "Encounter"
                | "Condition"
                | "MedicationRequest"
                | "Immunization"
                | "Procedure"
                | "Observation"
        );
        if !mapped {
            return Mapping::Rows(Vec::new());
        }
        if not_happened(resource) {
            return Mapping::NotApplicable;
        }
        let mut rows = match ty {
            "Patient" => self.person(resource),
            "Encounter" => vec![self.visit(resource)],
            "Condition" => vec![self.condition(resource)],
            "MedicationRequest" => vec![self.medication_request(resource)],
            "Immunization" => vec![self.immunization(resource)],
            "Procedure" => vec![self.procedure(resource)],
            _ => self.observation(resource),
        };
        for row in &mut rows {
            // A resource without a patient keeps its row: `person_id` is required, so the
            // row is quarantined with that column named.
            if let Some(person) = person {
                row.cells.insert(0, ("person_id", Cell::Int(person)));
            }
        }
        Mapping::Rows(rows)
    }

    /// Maps a CodeableConcept (see the module doc).
    pub(crate) fn code(&self, cc: Option<&Value>) -> Code {
        let mut fallback: Option<Code> = None;
        let codings = cc
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for coding in codings {
            let Some(code) = coding["code"].as_str().filter(|c| !c.is_empty()) else {
                continue;
            };
            let vocabulary = coding["system"].as_str().and_then(vocabulary_of);
            let candidate = match vocabulary {
                Some(v) => {
                    let m = self.vocabulary.lookup(v, code);
                    Code {
                        concept_id: m.concept_id,
                        source_concept_id: m.source_concept_id,
                        source_value: Some(code.to_owned()),
                        domain: m.domain,
                        source: v,
                    }
                }
                None => Code {
                    concept_id: 0,
                    source_concept_id: 0,
                    source_value: Some(code.to_owned()),
                    domain: None,
                    source: "other code system",
                },
            };
            if candidate.concept_id != 0 {
                return candidate;
            }
            let better = match &fallback {
                None => true,
                Some(f) => f.source == "other code system" && vocabulary.is_some(),
            };
            if better {
                fallback = Some(candidate);
            }
        }
        fallback.unwrap_or(Code {
            concept_id: 0,
            source_concept_id: 0,
            source_value: None,
            domain: None,
            source: "no code",
        })
    }

    fn visit_of(&self, r: &Value) -> Option<i64> {
        self.visits.resolve(str_at(r, &["encounter", "reference"])?)
    }

    fn person(&self, r: &Value) -> Vec<Out> {
        let mut p = Out::new(Target::Person);
        let gender = r["gender"].as_str();
        p.set(
            "gender_concept_id",
            Cell::Int(match gender {
                Some("male") => 8507,
                Some("female") => 8532,
                _ => 0,
            }),
        );
        p.text("gender_source_value", gender);
        match r.get("birthDate").map(|b| b.as_str().map(birth_parts)) {
            None => {}
            Some(Some(Some((y, m, d)))) => {
                p.set("year_of_birth", Cell::Int(y));
                p.int("month_of_birth", m);
                p.int("day_of_birth", d);
                if let (Some(m), Some(d)) = (m, d)
                    && let Some(date) = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)
                {
                    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
                    p.set(
                        "birth_datetime",
                        Cell::DateTime(midnight.and_utc().timestamp_micros()),
                    );
                }
            }
            Some(_) => p.unusable = Some("year_of_birth"),
        }
        let (race, race_source) = omb_category(r, "us-core-race", RACES);
        p.set("race_concept_id", Cell::Int(race));
        p.text("race_source_value", race_source.as_deref());
        let (ethnicity, ethnicity_source) = omb_category(r, "us-core-ethnicity", ETHNICITIES);
        p.set("ethnicity_concept_id", Cell::Int(ethnicity));
        p.text("ethnicity_source_value", ethnicity_source.as_deref());
        let mut rows = vec![p];
        let deceased =
            r.get("deceasedDateTime").is_some() || r["deceasedBoolean"].as_bool().unwrap_or(false);
        if deceased {
            // Without a date the row is quarantined (death_date is required): counted, and
            // the raw Patient keeps the flag.
            let mut d = Out::new(Target::Death);
            d.when(
                "death_date",
                Some("death_datetime"),
                when(r.get("deceasedDateTime")),
                true,
            );
            d.set("death_type_concept_id", Cell::Int(EHR));
            rows.push(d);
        }
        rows
    }

    fn visit(&self, r: &Value) -> Out {
        let mut v = Out::new(Target::VisitOccurrence);
        v.int(
            "visit_occurrence_id",
            r["id"].as_str().and_then(|id| self.visits.id_of(id)),
        );
        // R4: a Coding; R5: a list of CodeableConcepts.
        let class = r["class"]["code"]
            .as_str()
            .or_else(|| r["class"][0]["coding"][0]["code"].as_str());
        let concept = class.map_or(0, visit_concept);
        v.set("visit_concept_id", Cell::Int(concept));
        v.coverage = Some(Coverage {
            mapped: concept != 0,
            source: "Encounter.class",
        });
        let start = when(at(r, &["period", "start"]));
        let end = match when(at(r, &["period", "end"])) {
            // An encounter still open (or without an end) ends, for OMOP, the day it starts.
            When::At(t) => When::At(t),
            _ => start,
        };
        v.when(
            "visit_start_date",
            Some("visit_start_datetime"),
            start,
            true,
        );
        v.when("visit_end_date", Some("visit_end_datetime"), end, true);
        v.set("visit_type_concept_id", Cell::Int(EHR));
        v.text("visit_source_value", class);
        v.set("visit_source_concept_id", Cell::Int(0));
        v
    }

    fn condition(&self, r: &Value) -> Out {
        let mut c = Out::new(Target::ConditionOccurrence);
        let code = self.code(r.get("code"));
        c.code(
            &code,
            "condition_concept_id",
            "condition_source_value",
            "condition_source_concept_id",
        );
        let start = first([
            when(r.get("onsetDateTime")),
            when(at(r, &["onsetPeriod", "start"])),
            when(r.get("recordedDate")),
        ]);
        c.when(
            "condition_start_date",
            Some("condition_start_datetime"),
            start,
            true,
        );
        let end = first([
            when(r.get("abatementDateTime")),
            when(at(r, &["abatementPeriod", "end"])),
            When::Absent,
        ]);
        c.when(
            "condition_end_date",
            Some("condition_end_datetime"),
            end,
            false,
        );
        c.set("condition_type_concept_id", Cell::Int(EHR));
        c.visit(self.visit_of(r));
        c
    }

    fn medication_request(&self, r: &Value) -> Out {
        let mut d = Out::new(Target::DrugExposure);
        let medication = r.get("medicationCodeableConcept").or_else(|| {
            // A reference to a contained Medication (`#id`) is resolved; others are not.
            let local = str_at(r, &["medicationReference", "reference"])?.strip_prefix('#')?;
            r["contained"]
                .as_array()?
                .iter()
                .find(|c| c["resourceType"] == "Medication" && c["id"] == local)?
                .get("code")
        });
        let code = self.code(medication);
        d.code(
            &code,
            "drug_concept_id",
            "drug_source_value",
            "drug_source_concept_id",
        );
        let dosage = &r["dosageInstruction"][0];
        let bounds = at(dosage, &["timing", "repeat", "boundsPeriod"]);
        let validity = at(r, &["dispenseRequest", "validityPeriod"]);
        let start = first([
            when(r.get("authoredOn")),
            when(bounds.and_then(|b| b.get("start"))),
            when(validity.and_then(|v| v.get("start"))),
        ]);
        let stated_end = first([
            when(bounds.and_then(|b| b.get("end"))),
            when(validity.and_then(|v| v.get("end"))),
            When::Absent,
        ]);
        let supply = supply_days(r);
        // drug_exposure_end_date is required: the stated end, else start + days supply - 1,
        // else the start (the OHDSI conventions for missing ends).
        let end = match (stated_end, start, supply) {
            (When::At(t), _, _) => When::At(t),
            (_, When::At(s), Some(n)) if n > 0 => When::At(s + chrono::Duration::days(n - 1)),
            _ => start,
        };
        d.when(
            "drug_exposure_start_date",
            Some("drug_exposure_start_datetime"),
            start,
            true,
        );
        d.when(
            "drug_exposure_end_date",
            Some("drug_exposure_end_datetime"),
            end,
            true,
        );
        d.when("verbatim_end_date", None, stated_end, false);
        d.set("drug_type_concept_id", Cell::Int(EHR_PRESCRIPTION));
        d.int(
            "refills",
            at(r, &["dispenseRequest", "numberOfRepeatsAllowed"]).and_then(Value::as_i64),
        );
        d.float(
            "quantity",
            at(r, &["dispenseRequest", "quantity", "value"]).and_then(Value::as_f64),
        );
        d.int("days_supply", supply);
        let route = self.code(dosage.get("route"));
        if route.source_value.is_some() {
            d.set("route_concept_id", Cell::Int(route.concept_id));
            d.text("route_source_value", route.source_value.as_deref());
        }
        d.text(
            "dose_unit_source_value",
            dosage["doseAndRate"][0]["doseQuantity"]["unit"].as_str(),
        );
        d.visit(self.visit_of(r));
        d
    }

    fn immunization(&self, r: &Value) -> Out {
        let mut d = Out::new(Target::DrugExposure);
        let code = self.code(r.get("vaccineCode"));
        d.code(
            &code,
            "drug_concept_id",
            "drug_source_value",
            "drug_source_concept_id",
        );
        let at_time = when(r.get("occurrenceDateTime"));
        d.when(
            "drug_exposure_start_date",
            Some("drug_exposure_start_datetime"),
            at_time,
            true,
        );
        d.when(
            "drug_exposure_end_date",
            Some("drug_exposure_end_datetime"),
            at_time,
            true,
        );
        d.set("drug_type_concept_id", Cell::Int(EHR_ADMINISTRATION));
        d.float(
            "quantity",
            at(r, &["doseQuantity", "value"]).and_then(Value::as_f64),
        );
        d.text("lot_number", r["lotNumber"].as_str());
        let route = self.code(r.get("route"));
        if route.source_value.is_some() {
            d.set("route_concept_id", Cell::Int(route.concept_id));
            d.text("route_source_value", route.source_value.as_deref());
        }
        d.visit(self.visit_of(r));
        d
    }

    fn procedure(&self, r: &Value) -> Out {
        let mut p = Out::new(Target::ProcedureOccurrence);
        let code = self.code(r.get("code"));
        p.code(
            &code,
            "procedure_concept_id",
            "procedure_source_value",
            "procedure_source_concept_id",
        );
        let start = first([
            when(r.get("performedDateTime")),
            when(at(r, &["performedPeriod", "start"])),
            When::Absent,
        ]);
        p.when("procedure_date", Some("procedure_datetime"), start, true);
        p.when(
            "procedure_end_date",
            Some("procedure_end_datetime"),
            when(at(r, &["performedPeriod", "end"])),
            false,
        );
        p.set("procedure_type_concept_id", Cell::Int(EHR));
        p.visit(self.visit_of(r));
        p
    }

    /// One row for the Observation's own value (or for the Observation when it has neither
    /// value nor components), and one per component — a blood-pressure panel becomes its
    /// systolic and diastolic measurements.
    fn observation(&self, r: &Value) -> Vec<Out> {
        let date = first([
            when(r.get("effectiveDateTime")),
            when(at(r, &["effectivePeriod", "start"])),
            first([
                when(r.get("effectiveInstant")),
                when(r.get("issued")),
                When::Absent,
            ]),
        ]);
        let lab = r["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["coding"].as_array().into_iter().flatten())
            .any(|c| matches!(c["code"].as_str(), Some("laboratory" | "vital-signs")));
        let visit = self.visit_of(r);
        let components: Vec<&Value> = r["component"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c.get("code").is_some())
            .collect();
        let mut rows = Vec::new();
        if has_value(r) || components.is_empty() {
            rows.push(self.observed(r, date, lab, visit));
        }
        for c in components {
            rows.push(self.observed(c, date, lab, visit));
        }
        rows
    }

    /// The row of an Observation or of one of its components (`v` holds `code` and
    /// `value[x]`). It is a measurement if its concept is in the Measurement domain, or —
    /// when the vocabulary does not say — if it is a lab or vital sign or has a quantity.
    fn observed(&self, v: &Value, date: When, lab: bool, visit: Option<i64>) -> Out {
        let code = self.code(v.get("code"));
        let quantity = v.get("valueQuantity");
        let measurement = match code.domain {
            Some(Domain::Measurement) => true,
            Some(Domain::Observation) => false,
            _ => lab || quantity.is_some(),
        };
        let number = quantity
            .and_then(|q| q.get("value"))
            .or_else(|| v.get("valueInteger"))
            .and_then(Value::as_f64);
        let value_code = v.get("valueCodeableConcept").map(|c| self.code(Some(c)));
        let unit = quantity.map(|q| {
            let ucum = q["system"].as_str() == Some("http://unitsofmeasure.org");
            let mapped = match q["code"].as_str() {
                Some(c) if ucum => self.vocabulary.lookup("UCUM", c),
                _ => Mapped::NONE,
            };
            let shown = q["unit"].as_str().or_else(|| q["code"].as_str());
            (mapped, shown)
        });
        let value_source = number
            .map(|n| n.to_string())
            .or_else(|| value_code.as_ref().and_then(|c| c.source_value.clone()))
            .or_else(|| v["valueString"].as_str().map(str::to_owned))
            .or_else(|| v["valueBoolean"].as_bool().map(|b| b.to_string()));
        let mut o;
        if measurement {
            o = Out::new(Target::Measurement);
            o.code(
                &code,
                "measurement_concept_id",
                "measurement_source_value",
                "measurement_source_concept_id",
            );
            o.when("measurement_date", Some("measurement_datetime"), date, true);
            o.set("measurement_type_concept_id", Cell::Int(EHR));
            let range = &v["referenceRange"][0];
            o.float("range_low", range["low"]["value"].as_f64());
            o.float("range_high", range["high"]["value"].as_f64());
            if let Some((mapped, _)) = unit {
                o.set(
                    "unit_source_concept_id",
                    Cell::Int(mapped.source_concept_id),
                );
            }
        } else {
            o = Out::new(Target::Observation);
            o.code(
                &code,
                "observation_concept_id",
                "observation_source_value",
                "observation_source_concept_id",
            );
            o.when("observation_date", Some("observation_datetime"), date, true);
            o.set("observation_type_concept_id", Cell::Int(EHR));
            let text = v["valueString"].as_str().or_else(|| {
                let c = v.get("valueCodeableConcept")?;
                c["text"]
                    .as_str()
                    .or_else(|| c["coding"][0]["display"].as_str())
            });
            o.text("value_as_string", text);
        }
        o.float("value_as_number", number);
        if let Some(c) = &value_code {
            o.set("value_as_concept_id", Cell::Int(c.concept_id));
        }
        if let Some((mapped, shown)) = unit {
            o.set("unit_concept_id", Cell::Int(mapped.concept_id));
            o.text("unit_source_value", shown);
        }
        o.text("value_source_value", value_source.as_deref());
        o.visit(visit);
        o
    }
}

fn has_value(r: &Value) -> bool {
    r.as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with("value")))
}

/// `dispenseRequest.expectedSupplyDuration` in days, when given in days.
fn supply_days(r: &Value) -> Option<i64> {
    let d = at(r, &["dispenseRequest", "expectedSupplyDuration"])?;
    let unit = d["code"].as_str().or_else(|| d["unit"].as_str())?;
    let value = d["value"].as_f64()?;
    matches!(unit, "d" | "day" | "days").then(|| value.round() as i64)
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` → year, month, day; `None` if malformed.
fn birth_parts(s: &str) -> Option<(i64, Option<i64>, Option<i64>)> {
    let mut parts = s.split('-');
    let num = |p: Option<&str>, len: usize| -> Option<Option<i64>> {
        match p {
            None => Some(None),
            Some(p) if p.len() == len && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Some(p.parse().ok()?))
            }
            Some(_) => None,
        }
    };
    let year = num(parts.next(), 4)??;
    let month = num(parts.next(), 2)?;
    let day = num(parts.next(), 2)?;
    if parts.next().is_some() || (day.is_some() && month.is_none()) {
        return None;
    }
    if let (Some(m), Some(d)) = (month, day) {
        NaiveDate::from_ymd_opt(year as i32, m as u32, d as u32)?;
    }
    Some((year, month, day))
}

/// US Core OMB race categories (CDC Race & Ethnicity codes) → OMOP Race concepts.
const RACES: &[(&str, i64)] = &[
    ("1002-5", 8657), // American Indian or Alaska Native
    ("2028-9", 8515), // Asian
    ("2054-5", 8516), // Black or African American
    ("2076-8", 8557), // Native Hawaiian or Other Pacific Islander
    ("2106-3", 8527), // White
];

/// US Core OMB ethnicity categories → OMOP Ethnicity concepts.
const ETHNICITIES: &[(&str, i64)] = &[
    ("2135-2", 38003563), // Hispanic or Latino
    ("2186-5", 38003564), // Not Hispanic or Latino
];

/// The concept of a US Core race or ethnicity extension (its `ombCategory` codes; several
/// categories map to 0, as an unknown race) and its source value (the codes).
fn omb_category(r: &Value, extension: &str, table: &[(&str, i64)]) -> (i64, Option<String>) {
    let url = format!("http://hl7.org/fhir/us/core/StructureDefinition/{extension}");
    let codes: Vec<&str> = r["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"].as_str() == Some(url.as_str()))
        .flat_map(|e| e["extension"].as_array().into_iter().flatten())
        .filter(|e| e["url"] == "ombCategory")
        .filter_map(|e| e["valueCoding"]["code"].as_str())
        .collect();
    let concept = match codes.as_slice() {
        [one] => table
            .iter()
            .find(|(c, _)| c == one)
            .map_or(0, |(_, id)| *id),
        _ => 0,
    };
    let source = (!codes.is_empty()).then(|| codes.join(","));
    (concept, source)
}

/// Encounter.class (HL7 v3 ActCode) → OMOP visit concept.
fn visit_concept(class: &str) -> i64 {
    match class {
        "IMP" | "ACUTE" | "NONAC" => 9201,         // Inpatient Visit
        "AMB" | "OBSENC" | "SS" | "PRENC" => 9202, // Outpatient Visit
        "EMER" => 9203,                            // Emergency Room Visit
        "HH" => 581476,                            // Home Visit
        "VR" => 5083,                              // Telehealth Visit
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapper_parts() -> (Vocabulary, Visits) {
        (Vocabulary::default(), Visits::new([42]))
    }

    fn cell<'a>(out: &'a Out, column: &str) -> Option<&'a Cell> {
        out.cells.iter().find(|(c, _)| *c == column).map(|(_, v)| v)
    }

    #[test]
    fn dates_are_local_calendar_dates() {
        let When::At(t) = when(Some(&json!("1989-10-04T23:25:16-04:00"))) else {
            panic!("a date");
        };
        assert_eq!(t.to_string(), "1989-10-04 23:25:16");
        assert_eq!(when(Some(&json!("2019-05"))), When::Unusable);
        assert_eq!(when(Some(&json!(12))), When::Unusable);
        assert_eq!(when(None), When::Absent);
        assert_eq!(birth_parts("1980"), Some((1980, None, None)));
        assert_eq!(birth_parts("1980-02-30"), None);
        assert_eq!(birth_parts("1980-2"), None);
    }

    #[test]
    fn blood_pressure_panel_becomes_two_measurements_linked_to_the_visit() {
        let (vocab, visits) = mapper_parts();
        let m = Mapper {
            vocabulary: &vocab,
            visits: &visits,
        };
        let obs = json!({"resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "encounter": {"reference": "Encounter/42"},
            "effectiveDateTime": "2011-12-03T17:49:34+00:00",
            "component": [
              {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
               "valueQuantity": {"value": 141, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
              {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
               "valueQuantity": {"value": 90.5, "unit": "mm[Hg]"}}]});
        let Mapping::Rows(rows) = m.map(&obs, Some(7)) else {
            panic!("rows");
        };
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r.target, Target::Measurement);
            assert_eq!(cell(r, "person_id"), Some(&Cell::Int(7)));
            assert_eq!(cell(r, "visit_occurrence_id"), Some(&Cell::Int(42)));
            assert_eq!(
                r.coverage,
                Some(Coverage {
                    mapped: false,
                    source: "LOINC"
                })
            );
        }
        assert_eq!(cell(&rows[0], "value_as_number"), Some(&Cell::Float(141.0)));
        assert_eq!(
            cell(&rows[0], "measurement_source_value"),
            Some(&Cell::Text("8480-6".into()))
        );
    }

    #[test]
    fn entered_in_error_and_refuted_are_not_mapped_and_patients_give_person_and_death() {
        let (vocab, visits) = mapper_parts();
        let m = Mapper {
            vocabulary: &vocab,
            visits: &visits,
        };
        let refuted = json!({"resourceType": "Condition",
            "verificationStatus": {"coding": [{"code": "refuted"}]}});
        assert!(matches!(m.map(&refuted, Some(1)), Mapping::NotApplicable));
        let claim = json!({"resourceType": "Claim", "status": "active"});
        assert!(matches!(m.map(&claim, Some(1)), Mapping::Rows(r) if r.is_empty()));
        let patient = json!({"resourceType": "Patient", "gender": "female",
            "birthDate": "1927-05-21", "deceasedDateTime": "1989-05-09T20:35:22-04:00",
            "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
              "extension": [{"url": "ombCategory", "valueCoding": {"code": "2106-3"}}]}]});
        let Mapping::Rows(rows) = m.map(&patient, Some(5)) else {
            panic!("rows");
        };
        assert_eq!(rows[0].target, Target::Person);
        assert_eq!(cell(&rows[0], "gender_concept_id"), Some(&Cell::Int(8532)));
        assert_eq!(cell(&rows[0], "race_concept_id"), Some(&Cell::Int(8527)));
        assert_eq!(cell(&rows[0], "ethnicity_concept_id"), Some(&Cell::Int(0)));
        assert_eq!(cell(&rows[0], "year_of_birth"), Some(&Cell::Int(1927)));
        assert_eq!(rows[1].target, Target::Death);
        let death = NaiveDate::from_ymd_opt(1989, 5, 9).unwrap();
        assert_eq!(cell(&rows[1], "death_date"), Some(&Cell::Date(days(death))));
    }
}
