//! Pseudonymization of FHIR resources: what of a resource may reach the lake.
//!
//! - **Patient**: kept by allow-list. `id` becomes the hub person key (as a string);
//!   `identifier`, `name`, `telecom`, `photo`, `contact`, `link`, narrative and every element
//!   not listed in [`PATIENT_KEEP`] are dropped. `address` keeps only `use`, `city`, `state`,
//!   `postalCode` and `country` (potential identifiers that permits minimise later; street
//!   lines, free text and geolocation extensions are dropped). Only the US Core race,
//!   ethnicity, birth-sex and gender-identity extensions are kept (others, such as the
//!   mother's maiden name or birth place, identify).
//! - **Every resource about a patient** (all but [`NOT_ABOUT_A_PERSON`]): business
//!   `identifier`s (visit, order, specimen, device numbers) are dropped: they are the
//!   producer's keys back to the person.
//! - **Every resource but Patient**: its `id` becomes a keyed pseudonym ([`ResourceIds`],
//!   `agora_privacy::ResourceKeyer`: HMAC under the hub secret of the resource type and id),
//!   and every reference to it, wherever it sits (contained resources included), becomes
//!   `Type/<keyed id>`: resource ids are the producer's record numbers. An identifier whose
//!   value is the resource's own id is dropped with it (Synthea repeats Organization ids so).
//!   A reference that cannot be keyed (a conditional `Type?identifier=...`, a `urn:` of no
//!   entry of the extract, text that names no resource type) loses its `reference` string;
//!   local references to contained resources (`#id`) are kept as they are. A logical
//!   reference's `identifier` (a single Identifier in a Reference) is dropped too.
//! - **Every resource**: narratives (`text.div`), attachment contents (`Attachment.data`:
//!   base64 documents and notes) and annotations (`note`) are removed, since free text
//!   names people. Every reference to a patient (`Patient/<id>`, an absolute URL ending so,
//!   or the `fullUrl` of a Patient entry) becomes `{"reference": "Patient/<hub key>"}`
//!   (its `display` and `identifier` are dropped); a reference to a patient the extract does
//!   not hold makes the resource unstorable (quarantine). References between entries of a
//!   Bundle (`urn:uuid:`) become `Type/<keyed id>`.
//!
//! - **RelatedPerson and Person** (relatives, other people): `identifier`, `name`,
//!   `telecom`, `address` and `photo` are dropped. Patients *contained* in another resource
//!   are dropped from `contained` (they cannot be keyed).
//!
//! Not here: deciding identities and keys (the ingest, through `KeyResolver`), or typing.
//! Practitioner and Organization resources keep their names and identifiers: they are not
//! patients.

use std::collections::HashMap;

use agora_privacy::ResourceKeyer;
use serde_json::{Map, Value};

use super::read::FullUrls;
use super::resource_types::is_r4_resource_type;

/// Resource types that describe no patient: they keep their business identifiers.
const NOT_ABOUT_A_PERSON: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "Substance",
    "HealthcareService",
    "Endpoint",
];

/// Top-level Patient elements that may be stored (after the filters below).
const PATIENT_KEEP: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "extension",
    "active",
    "gender",
    "birthDate",
    "deceasedBoolean",
    "deceasedDateTime",
    "address",
    "maritalStatus",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "communication",
    "generalPractitioner",
    "managingOrganization",
];

const ADDRESS_KEEP: &[&str] = &["use", "city", "state", "postalCode", "country"];

/// Patient extensions that describe, not identify.
const EXTENSIONS_KEEP: &[&str] = &[
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity",
];

/// Elements of RelatedPerson and Person that identify the (other) person.
const OTHER_PERSON_DROP: &[&str] = &["identifier", "name", "telecom", "address", "photo"];

/// Top-level elements whose references say whose record a resource is, in order of
/// preference; other patient references (e.g. in `contained`) are used only without these.
const OWNER_ELEMENTS: &[&str] = &["subject", "patient", "beneficiary"];

/// The patients of the extract: source id and Patient entry `fullUrl`s -> hub person key.
#[derive(Debug, Default)]
pub(crate) struct Patients {
    pub(crate) by_id: HashMap<String, i64>,
    pub(crate) by_url: HashMap<String, i64>,
}

/// Keyed resource ids: the keyer, and the Encounters of the extract (keyed id → check bits),
/// registered in pass 1 so that a `urn:uuid:` reference to another Bundle's Encounter can be
/// keyed, and so that OMOP visit ids are known before any event refers to one.
#[derive(Debug)]
pub(crate) struct ResourceIds {
    keyer: ResourceKeyer,
    encounters: HashMap<i64, i64>,
}

/// Two different Encounter ids of one extract have the same 63-bit keyed id.
#[derive(Debug)]
pub(crate) struct KeyCollision;

impl ResourceIds {
    pub(crate) fn new(keyer: ResourceKeyer) -> Self {
        Self {
            keyer,
            encounters: HashMap::new(),
        }
    }

    /// Pass 1: an Encounter with this (source) id is in the extract.
    pub(crate) fn register_encounter(&mut self, id: &str) -> Result<(), KeyCollision> {
        let d = self.keyer.derive("Encounter", id);
        match *self.encounters.entry(d.key).or_insert(d.check) {
            check if check == d.check => Ok(()),
            _ => Err(KeyCollision),
        }
    }

    /// The keyed ids of the extract's Encounters (OMOP visit ids).
    pub(crate) fn encounter_keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.encounters.keys().copied()
    }

    /// The stored id of the resource `ty`/`id`.
    pub(crate) fn key(&self, ty: &str, id: &str) -> String {
        self.keyer.pseudonym(ty, id)
    }

    fn knows_encounter(&self, id: &str) -> bool {
        let d = self.keyer.derive("Encounter", id);
        self.encounters.get(&d.key) == Some(&d.check)
    }

    /// A reference that is neither to a patient nor to an entry of its Bundle, keyed; `None`
    /// when it cannot be keyed (and must not be stored).
    fn rewrite(&self, reference: &str) -> Option<String> {
        if reference.starts_with('#') {
            return Some(reference.to_owned());
        }
        if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
            // Another Bundle's entry: Synthea and most exports use the id as its uuid.
            return self
                .knows_encounter(uuid)
                .then(|| format!("Encounter/{}", self.key("Encounter", uuid)));
        }
        if reference.starts_with("urn:") || reference.contains('?') {
            return None;
        }
        let path = reference.split("/_history/").next().unwrap_or(reference);
        let (prefix, id) = path.rsplit_once('/')?;
        let ty = prefix.rsplit('/').next().unwrap_or(prefix);
        (is_r4_resource_type(ty) && !id.is_empty()).then(|| format!("{ty}/{}", self.key(ty, id)))
    }
}

/// What pseudonymizing a non-Patient resource found.
pub(crate) enum Outcome {
    /// The resource may be stored; its person, if it refers to one.
    Stored { person: Option<i64> },
    /// It refers to a patient the extract does not hold; `element` is the top-level element.
    UnknownPatient { element: String },
}

impl Patients {
    fn resolve(&self, reference: &str, urls: &FullUrls) -> Resolution {
        if let Some(&key) = self.by_url.get(reference) {
            return Resolution::Patient(key);
        }
        if let Some((ty, id)) = urls.get(reference) {
            return if ty == "Patient" {
                self.by_id
                    .get(id)
                    .map_or(Resolution::UnknownPatient, |&k| Resolution::Patient(k))
            } else {
                Resolution::Entry(ty.clone(), id.clone())
            };
        }
        if reference.starts_with("Patient?") {
            // A conditional reference (search by identifier): it carries an identifier and
            // cannot be resolved here.
            return Resolution::UnknownPatient;
        }
        let path = reference.split("/_history/").next().unwrap_or(reference);
        let mut segments = path.rsplit('/');
        let (id, ty) = (segments.next(), segments.next());
        if ty == Some("Patient") {
            return id
                .and_then(|id| self.by_id.get(id))
                .map_or(Resolution::UnknownPatient, |&k| Resolution::Patient(k));
        }
        if let Some(uuid) = reference.strip_prefix("urn:uuid:")
            && let Some(&key) = self.by_id.get(uuid)
        {
            // Another Bundle's Patient entry (Synthea uses the Patient.id as its uuid).
            return Resolution::Patient(key);
        }
        Resolution::Other
    }
}

enum Resolution {
    Patient(i64),
    UnknownPatient,
    Entry(String, String),
    Other,
}

/// Reduces a Patient to what may be stored, with `key` as its id.
pub(crate) fn scrub_patient(patient: &mut Value, key: i64) {
    let Some(obj) = patient.as_object_mut() else {
        return;
    };
    obj.retain(|k, _| PATIENT_KEEP.contains(&k.as_str()));
    obj.insert("id".into(), Value::String(key.to_string()));
    if let Some(Value::Array(exts)) = obj.get_mut("extension") {
        exts.retain(|e| {
            e.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| EXTENSIONS_KEEP.contains(&u))
        });
    }
    if let Some(Value::Array(addresses)) = obj.get_mut("address") {
        for a in addresses.iter_mut() {
            if let Some(a) = a.as_object_mut() {
                a.retain(|k, _| ADDRESS_KEEP.contains(&k.as_str()));
            }
        }
    }
}

/// Removes free text and rewrites references of any resource (Patients included, after
/// [`scrub_patient`]).
pub(crate) fn scrub(
    resource: &mut Value,
    patients: &Patients,
    urls: &FullUrls,
    ids: &ResourceIds,
) -> Outcome {
    let mut found: Vec<(String, i64)> = Vec::new();
    let mut unknown: Option<String> = None;
    if let Some(obj) = resource.as_object_mut() {
        obj.remove("note");
        let ty = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        // An id that is not a string (invalid FHIR) is keyed from its JSON text.
        let raw_id = match obj.get("id") {
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        if ty != "Patient"
            && let Some(raw) = raw_id
        {
            let keyed = ids.key(&ty, &raw);
            obj.insert("id".into(), Value::String(keyed));
            if let Some(Value::Array(list)) = obj.get_mut("identifier") {
                list.retain(|i| i.get("value").and_then(Value::as_str) != Some(raw.as_str()));
            }
        }
        let keeps_identifiers = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .is_some_and(|t| NOT_ABOUT_A_PERSON.contains(&t));
        if !keeps_identifiers {
            // Visit, order, specimen or device numbers are the producer's keys to a person.
            obj.remove("identifier");
        }
        if matches!(
            obj.get("resourceType").and_then(Value::as_str),
            Some("RelatedPerson" | "Person")
        ) {
            for element in OTHER_PERSON_DROP {
                obj.remove(*element);
            }
        }
        if let Some(Value::Array(contained)) = obj.get_mut("contained") {
            contained.retain(|c| c.get("resourceType").and_then(Value::as_str) != Some("Patient"));
        }
        for (element, value) in obj.iter_mut() {
            walk(value, patients, urls, ids, &mut |r| match r {
                Some(key) => found.push((element.clone(), key)),
                None => {
                    unknown.get_or_insert_with(|| element.clone());
                }
            });
        }
        remove_narrative(obj);
    }
    if let Some(element) = unknown {
        return Outcome::UnknownPatient { element };
    }
    let person = OWNER_ELEMENTS
        .iter()
        .find_map(|owner| found.iter().find(|(e, _)| e == owner).map(|(_, k)| *k))
        .or_else(|| found.first().map(|(_, k)| *k));
    Outcome::Stored { person }
}

fn remove_narrative(obj: &mut Map<String, Value>) {
    if obj.get("text").is_some_and(|t| t.get("div").is_some()) {
        obj.remove("text");
    }
}

/// Visits every object under `value`: drops narratives and attachment data, rewrites
/// references (patients to hub keys, other resources to keyed ids); `on_patient` gets each
/// patient key (or `None` for an unknown patient).
fn walk(
    value: &mut Value,
    patients: &Patients,
    urls: &FullUrls,
    ids: &ResourceIds,
    on_patient: &mut dyn FnMut(Option<i64>),
) {
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, patients, urls, ids, on_patient);
            }
        }
        Value::Object(obj) => {
            remove_narrative(obj);
            if obj.contains_key("contentType") {
                obj.remove("data");
            }
            if obj.get("identifier").is_some_and(Value::is_object) {
                // A Reference.identifier (logical reference): the producer's number for the
                // target (Synthea puts Organization ids there). References are by keyed id.
                obj.remove("identifier");
            }
            if let Some(Value::String(reference)) = obj.get("reference") {
                match patients.resolve(reference, urls) {
                    Resolution::Patient(key) => {
                        obj.clear();
                        obj.insert("reference".into(), Value::String(format!("Patient/{key}")));
                        on_patient(Some(key));
                        return;
                    }
                    Resolution::UnknownPatient => {
                        on_patient(None);
                        return;
                    }
                    Resolution::Entry(ty, id) => {
                        let keyed = format!("{ty}/{}", ids.key(&ty, &id));
                        obj.insert("reference".into(), Value::String(keyed));
                    }
                    Resolution::Other => match ids.rewrite(reference) {
                        Some(keyed) => {
                            obj.insert("reference".into(), Value::String(keyed));
                        }
                        None => {
                            obj.remove("reference");
                        }
                    },
                }
            }
            for (_, child) in obj.iter_mut() {
                walk(child, patients, urls, ids, on_patient);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_privacy::HubSecret;
    use serde_json::json;

    fn ids() -> ResourceIds {
        ResourceIds::new(ResourceKeyer::new(&HubSecret::from_bytes([5; 32])))
    }

    fn patients() -> Patients {
        let mut p = Patients::default();
        p.by_id.insert("p1".into(), 7);
        p.by_url.insert("urn:uuid:u1".into(), 7);
        p
    }

    #[test]
    fn rewrites_patient_references_and_drops_their_display() {
        let mut r = json!({"resourceType": "Condition", "text": {"div": "<div>Jo</div>"},
            "subject": {"reference": "urn:uuid:u1", "display": "Jo Doe"},
            "encounter": {"reference": "urn:uuid:e1"},
            "evidence": [{"detail": [{"reference": "http://x/fhir/Patient/p1/_history/2"}]}]});
        let mut urls = FullUrls::new();
        urls.insert("urn:uuid:e1".into(), ("Encounter".into(), "e1".into()));
        let ids = ids();
        let Outcome::Stored { person } = scrub(&mut r, &patients(), &urls, &ids) else {
            panic!("stored");
        };
        assert_eq!(person, Some(7));
        assert_eq!(r["subject"], json!({"reference": "Patient/7"}));
        let e1 = format!("Encounter/{}", ids.key("Encounter", "e1"));
        assert_eq!(r["encounter"], json!({"reference": e1}));
        assert_eq!(
            r["evidence"][0]["detail"][0],
            json!({"reference": "Patient/7"})
        );
        assert!(r.get("text").is_none());
    }

    #[test]
    fn other_people_and_contained_patients_lose_their_identifiers() {
        let mut r = json!({"resourceType": "RelatedPerson", "name": [{"family": "Doe"}],
            "telecom": [{"value": "555"}], "patient": {"reference": "Patient/p1"},
            "contained": [{"resourceType": "Patient", "name": [{"family": "Roe"}]}]});
        assert!(matches!(
            scrub(&mut r, &patients(), &FullUrls::new(), &ids()),
            Outcome::Stored { person: Some(7) }
        ));
        assert_eq!(
            r,
            json!({"resourceType": "RelatedPerson", "patient": {"reference": "Patient/7"},
                   "contained": []})
        );
    }

    #[test]
    fn unknown_patient_is_reported_with_its_element() {
        let mut r = json!({"resourceType": "Encounter", "subject": {"reference": "Patient/zz"}});
        match scrub(&mut r, &patients(), &FullUrls::new(), &ids()) {
            Outcome::UnknownPatient { element } => assert_eq!(element, "subject"),
            Outcome::Stored { .. } => panic!("must not be stored"),
        }
    }

    #[test]
    fn patient_keeps_only_allowed_elements() {
        let mut p = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}],
            "identifier": [{"value": "123"}], "telecom": [{"value": "555"}], "gender": "female",
            "address": [{"line": ["1 Main St"], "city": "Lyon", "postalCode": "69001",
                         "extension": [{"url": "geo"}]}],
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "X"}]});
        scrub_patient(&mut p, 7);
        assert_eq!(
            p,
            json!({"resourceType": "Patient", "id": "7", "gender": "female", "extension": [],
                   "address": [{"city": "Lyon", "postalCode": "69001"}]})
        );
    }

    #[test]
    fn resource_ids_and_references_are_keyed_per_type() {
        let mut ids = ids();
        ids.register_encounter("e2").unwrap();
        let mut r = json!({"resourceType": "Condition", "id": "1",
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "http://x/fhir/Encounter/1/_history/2"},
            "evidence": [{"detail": [{"reference": "urn:uuid:e2"}, {"reference": "urn:uuid:zz"},
                                     {"reference": "Organization?identifier=s|1", "display": "O"},
                                     {"reference": "#med1"}]}],
            "contained": [{"resourceType": "Medication", "id": "med1",
                           "manufacturer": {"reference": "Organization/1"}}]});
        assert!(matches!(
            scrub(&mut r, &patients(), &FullUrls::new(), &ids),
            Outcome::Stored { person: Some(7) }
        ));
        let (c1, e1) = (ids.key("Condition", "1"), ids.key("Encounter", "1"));
        assert_ne!(c1, e1);
        assert_eq!(r["id"], json!(c1));
        assert_eq!(
            r["encounter"]["reference"],
            json!(format!("Encounter/{e1}"))
        );
        let detail = &r["evidence"][0]["detail"];
        let e2 = format!("Encounter/{}", ids.key("Encounter", "e2"));
        assert_eq!(detail[0], json!({"reference": e2}));
        assert_eq!(detail[1], json!({}));
        assert_eq!(detail[2], json!({"display": "O"}));
        assert_eq!(detail[3], json!({"reference": "#med1"}));
        let org = format!("Organization/{}", ids.key("Organization", "1"));
        assert_eq!(r["contained"][0]["manufacturer"]["reference"], json!(org));
        assert_eq!(r["contained"][0]["id"], json!("med1"));
    }

    #[test]
    fn an_identifier_repeating_the_id_goes_with_it() {
        let mut r = json!({"resourceType": "Organization", "id": "o1",
            "identifier": [{"value": "o1"}, {"value": "npi-1"}]});
        scrub(&mut r, &patients(), &FullUrls::new(), &ids());
        assert_eq!(r["identifier"], json!([{"value": "npi-1"}]));
        let mut r = json!({"resourceType": "Encounter", "id": 12});
        scrub(&mut r, &patients(), &FullUrls::new(), &ids());
        assert_eq!(r["id"], json!(ids().key("Encounter", "12")));
    }
}
