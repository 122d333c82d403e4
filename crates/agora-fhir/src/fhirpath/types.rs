//! The little of the FHIR type system the evaluator needs without a full structure model:
//! the suffixes of choice elements (`value[x]` → `valueQuantity`), the primitive types, and
//! the subtype relations `ofType()` must honour (a `code` is a `string`, an `Age` a `Quantity`).

use serde_json::Value;

/// FHIR data types that may appear as the suffix of a choice element, as (JSON suffix, type
/// name). Primitive type names start with a lower-case letter, complex ones do not.
const CHOICE_TYPES: &[(&str, &str)] = &[
    ("Base64Binary", "base64Binary"),
    ("Boolean", "boolean"),
    ("Canonical", "canonical"),
    ("Code", "code"),
    ("Date", "date"),
    ("DateTime", "dateTime"),
    ("Decimal", "decimal"),
    ("Id", "id"),
    ("Instant", "instant"),
    ("Integer", "integer"),
    ("Integer64", "integer64"),
    ("Markdown", "markdown"),
    ("Oid", "oid"),
    ("PositiveInt", "positiveInt"),
    ("String", "string"),
    ("Time", "time"),
    ("UnsignedInt", "unsignedInt"),
    ("Uri", "uri"),
    ("Url", "url"),
    ("Uuid", "uuid"),
    ("Address", "Address"),
    ("Age", "Age"),
    ("Annotation", "Annotation"),
    ("Attachment", "Attachment"),
    ("Availability", "Availability"),
    ("CodeableConcept", "CodeableConcept"),
    ("CodeableReference", "CodeableReference"),
    ("Coding", "Coding"),
    ("ContactDetail", "ContactDetail"),
    ("ContactPoint", "ContactPoint"),
    ("Contributor", "Contributor"),
    ("Count", "Count"),
    ("DataRequirement", "DataRequirement"),
    ("Distance", "Distance"),
    ("Dosage", "Dosage"),
    ("Duration", "Duration"),
    ("Expression", "Expression"),
    ("ExtendedContactDetail", "ExtendedContactDetail"),
    ("HumanName", "HumanName"),
    ("Identifier", "Identifier"),
    ("Meta", "Meta"),
    ("Money", "Money"),
    ("ParameterDefinition", "ParameterDefinition"),
    ("Period", "Period"),
    ("Quantity", "Quantity"),
    ("Range", "Range"),
    ("Ratio", "Ratio"),
    ("RatioRange", "RatioRange"),
    ("Reference", "Reference"),
    ("RelatedArtifact", "RelatedArtifact"),
    ("SampledData", "SampledData"),
    ("Signature", "Signature"),
    ("Timing", "Timing"),
    ("TriggerDefinition", "TriggerDefinition"),
    ("UsageContext", "UsageContext"),
];

/// Complex types that are not choice suffixes but may still be asked for in `ofType()`.
const OTHER_COMPLEX_TYPES: &[&str] = &[
    "BackboneElement",
    "Element",
    "Extension",
    "Narrative",
    "SimpleQuantity",
    "MoneyQuantity",
];

/// Direct supertypes among the types above (FHIR's `baseDefinition`), as (type, supertype).
const SUPERTYPES: &[(&str, &str)] = &[
    ("code", "string"),
    ("id", "string"),
    ("markdown", "string"),
    ("url", "uri"),
    ("canonical", "uri"),
    ("oid", "uri"),
    ("uuid", "uri"),
    ("positiveInt", "integer"),
    ("unsignedInt", "integer"),
    ("Age", "Quantity"),
    ("Count", "Quantity"),
    ("Distance", "Quantity"),
    ("Duration", "Quantity"),
    ("SimpleQuantity", "Quantity"),
    ("MoneyQuantity", "Quantity"),
];

/// Primitive types whose JSON representation is a string.
const STRING_PRIMITIVES: &[&str] = &[
    "string",
    "code",
    "id",
    "markdown",
    "uri",
    "url",
    "canonical",
    "oid",
    "uuid",
    "base64Binary",
    "date",
    "dateTime",
    "instant",
    "time",
    "integer64",
];

/// The FHIR type named by the suffix of a choice element (`DateTime` → `dateTime`).
pub(crate) fn choice_type(suffix: &str) -> Option<&'static str> {
    CHOICE_TYPES
        .iter()
        .find(|(s, _)| *s == suffix)
        .map(|(_, t)| *t)
}

/// The FHIR type named `name`, as a `&'static str`, if it is one of the known primitive or
/// complex types (used for constants `value[x]` and for type arguments).
pub(crate) fn known_type(name: &str) -> Option<&'static str> {
    CHOICE_TYPES
        .iter()
        .map(|(_, t)| *t)
        .chain(OTHER_COMPLEX_TYPES.iter().copied())
        .find(|t| *t == name)
}

/// Whether `actual` is `wanted` or one of its subtypes.
pub(crate) fn is_a(actual: &str, wanted: &str) -> bool {
    let mut current = actual;
    loop {
        if current == wanted {
            return true;
        }
        match SUPERTYPES.iter().find(|(t, _)| *t == current) {
            Some((_, parent)) => current = parent,
            None => return false,
        }
    }
}

/// Strips a `FHIR.` or `System.` namespace from a type specifier; System types are named in
/// upper camel case (`System.String`), their FHIR counterparts in lower camel case.
pub(crate) fn normalize_type_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("FHIR.") {
        return rest.to_owned();
    }
    if let Some(rest) = name.strip_prefix("System.") {
        let mut chars = rest.chars();
        return match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        };
    }
    name.to_owned()
}

/// Whether a value of known type `hint`, or else of JSON shape `value`, is of type `wanted`.
///
/// Without a structure model, the type of an ordinary element is unknown; it is then inferred
/// leniently from the JSON shape: a string is any string-based primitive, a number an
/// `integer` (when integral) or a `decimal`, an object carrying `resourceType` that resource,
/// and any other object any complex data type.
pub(crate) fn matches_type(value: &Value, hint: Option<&str>, wanted: &str) -> bool {
    if let Some(actual) = hint {
        return is_a(actual, wanted);
    }
    match value {
        Value::Bool(_) => wanted == "boolean",
        Value::Number(n) => match wanted {
            "decimal" => true,
            "integer" => n.is_i64() || n.is_u64(),
            "positiveInt" => n.as_i64().is_some_and(|i| i > 0),
            "unsignedInt" => n.as_i64().is_some_and(|i| i >= 0),
            _ => false,
        },
        Value::String(_) => STRING_PRIMITIVES.contains(&wanted),
        Value::Object(map) => match map.get("resourceType").and_then(Value::as_str) {
            Some(resource_type) => resource_type == wanted,
            None => known_type(wanted).is_some_and(|t| t.starts_with(char::is_uppercase)),
        },
        Value::Null | Value::Array(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subtypes_follow_base_definitions() {
        assert!(is_a("code", "string"));
        assert!(is_a("Age", "Quantity"));
        assert!(is_a("positiveInt", "integer"));
        assert!(!is_a("string", "code"));
        assert!(!is_a("url", "id"));
    }

    #[test]
    fn choice_suffixes_map_to_type_names() {
        assert_eq!(choice_type("DateTime"), Some("dateTime"));
        assert_eq!(choice_type("Quantity"), Some("Quantity"));
        assert_eq!(choice_type("Set"), None);
    }

    #[test]
    fn unhinted_values_match_by_json_shape() {
        assert!(matches_type(&json!("x"), None, "code"));
        assert!(matches_type(&json!(3), None, "integer"));
        assert!(!matches_type(&json!(3.5), None, "integer"));
        assert!(matches_type(
            &json!({"resourceType": "Patient"}),
            None,
            "Patient"
        ));
        assert!(!matches_type(
            &json!({"resourceType": "Patient"}),
            None,
            "Observation"
        ));
        assert!(matches_type(&json!({"family": "x"}), None, "HumanName"));
        assert!(!matches_type(&json!({"family": "x"}), None, "string"));
    }

    #[test]
    fn namespaces_are_stripped() {
        assert_eq!(normalize_type_name("FHIR.Quantity"), "Quantity");
        assert_eq!(normalize_type_name("System.String"), "string");
        assert_eq!(normalize_type_name("dateTime"), "dateTime");
    }
}
