//! Frictionless Table Schema documents: parsed and checked before any data is read.
//!
//! Supported: every field type of Table Schema v1 (and v2's `groupChar` on integers, field
//! `missingValues`, `uniqueKeys`, `exclusiveMinimum`/`exclusiveMaximum`), the `required`,
//! `unique`, `enum`, `minLength`/`maxLength`, `minimum`/`maximum` and `pattern`
//! constraints, `missingValues`, `primaryKey` and `foreignKeys`. One extension: a field with
//! `"agora:identifier": "person"` holds a person identifier, and a schema-level
//! `"agora:personIdentity": ["A", "B"]` says that fields `A` and `B` *together* identify a
//! person (SNDS: number and rank); see the module docs.
//! Properties the spec does not define (SNDS adds `length`, `nomenclature`, a `decimals`
//! constraint...) are ignored; unknown constraints are reported as warnings.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value as Json};

use super::value::Cell;
use crate::{Error, Reason, Result};

/// The custom field property declaring a person identifier.
pub const IDENTIFIER_PROPERTY: &str = "agora:identifier";

/// The custom schema property declaring fields that identify a person together (an array
/// of at least two field names, the person's number first).
pub const PERSON_IDENTITY_PROPERTY: &str = "agora:personIdentity";

#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub fields: Vec<Field>,
    /// Field indices of the primary key (empty: none).
    pub primary_key: Vec<usize>,
    pub unique_keys: Vec<Vec<usize>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Composite person identities: field indices, the person's number first, then what
    /// qualifies it (a rank). Every member is also `person`.
    pub identities: Vec<Vec<usize>>,
    /// Warnings about the person identities of this schema (field names only).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// As declared; what the producer sees in reports.
    pub name: String,
    /// The stored column's name: lower-case, so that unquoted SQL names it.
    pub column: String,
    pub ty: FieldType,
    pub required: bool,
    pub unique: bool,
    pub constraints: Constraints,
    /// Cells equal to one of these are missing (null).
    pub missing_values: Vec<String>,
    /// Holds a person identifier: stored as the hub person key.
    pub person: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum FieldType {
    String(StringFormat),
    Integer {
        bare_number: bool,
        group_char: Option<char>,
    },
    Number {
        bare_number: bool,
        group_char: Option<char>,
        decimal_char: char,
    },
    Boolean {
        true_values: Vec<String>,
        false_values: Vec<String>,
    },
    Date(DateFormat),
    Datetime(DatetimeFormat),
    Time(TimeFormat),
    Year,
    YearMonth,
    Object,
    Array,
    Geojson,
    Geopoint(GeopointFormat),
    Duration,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringFormat {
    Default,
    Email,
    Uri,
    Uuid,
    Binary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateFormat {
    Default,
    Any,
    /// A strftime pattern; `full` when it fixes a calendar day (year, month and day).
    Pattern {
        pattern: String,
        full: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatetimeFormat {
    Default,
    Any,
    /// A strftime pattern; `zoned` when it carries a UTC offset (`%z`).
    Pattern {
        pattern: String,
        zoned: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimeFormat {
    Default,
    Any,
    Pattern(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeopointFormat {
    Default,
    Array,
    Object,
}

/// Value constraints beyond `required` and `unique`. Bounds and enum members are typed
/// with the field's own type.
#[derive(Debug, Clone, Default)]
pub(crate) struct Constraints {
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub pattern: Option<regex::Regex>,
    /// Encoded members (see [`Cell::encode`]).
    pub allowed: Option<HashSet<Vec<u8>>>,
}

/// A minimum or maximum: the typed bound, whether it is exclusive, and how the schema wrote
/// it (for reasons: a schema value, never a data value).
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    pub cell: Cell<'static>,
    pub exclusive: bool,
    pub label: String,
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub fields: Vec<usize>,
    /// `None`: this resource itself.
    pub resource: Option<String>,
    pub reference_fields: Vec<String>,
}

/// Parses a Table Schema document. `file` names it in errors; `person_ids` are field names
/// declared person identifiers from outside (case-insensitive). Unknown constraint names
/// are added to `unknown_constraints` (name → fields using it).
pub(crate) fn parse(
    file: &str,
    text: &[u8],
    person_ids: &[String],
    unknown_constraints: &mut BTreeMap<String, usize>,
) -> Result<Schema> {
    let err = |reason: String| Error::Schema {
        file: file.to_owned(),
        reason,
    };
    let doc: Json = serde_json::from_slice(text).map_err(|e| {
        err(format!(
            "not valid JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Json::Object(doc) = doc else {
        return Err(err("not a JSON object".into()));
    };
    let Some(Json::Array(raw_fields)) = doc.get("fields") else {
        return Err(err("no `fields` array".into()));
    };
    let missing_values = match doc.get("missingValues") {
        None => vec![String::new()],
        Some(v) => missing_values(v).ok_or_else(|| {
            err("`missingValues` must be an array of strings (or of {\"value\": ...})".into())
        })?,
    };
    let mut fields = Vec::with_capacity(raw_fields.len());
    let mut columns = HashSet::new();
    for (i, raw) in raw_fields.iter().enumerate() {
        let field = parse_field(raw, &missing_values, person_ids, unknown_constraints)
            .map_err(|reason| err(format!("field {}: {reason}", i + 1)))?;
        if !columns.insert(field.column.clone()) {
            return Err(err(format!(
                "field {} is declared twice (names are compared case-insensitively)",
                field.name
            )));
        }
        fields.push(field);
    }
    let index = |name: &str, what: &str| -> Result<usize> {
        fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| err(format!("{what} names field {name}, which is not declared")))
    };
    let primary_key = match doc.get("primaryKey") {
        None => Vec::new(),
        Some(v) => names(v)
            .ok_or_else(|| err("`primaryKey` must be a field name or an array of them".into()))?
            .iter()
            .map(|n| index(n, "primaryKey"))
            .collect::<Result<_>>()?,
    };
    let unique_keys = match doc.get("uniqueKeys") {
        None => Vec::new(),
        Some(Json::Array(keys)) => keys
            .iter()
            .map(|k| {
                names(k)
                    .ok_or_else(|| err("`uniqueKeys` must be an array of arrays of names".into()))?
                    .iter()
                    .map(|n| index(n, "uniqueKeys"))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(err("`uniqueKeys` must be an array".into())),
    };
    let foreign_keys = match doc.get("foreignKeys") {
        None => Vec::new(),
        Some(Json::Array(keys)) => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                foreign_key(k)
                    .map_err(|reason| err(format!("foreign key {}: {reason}", i + 1)))
                    .and_then(|(fields, resource, reference_fields)| {
                        Ok(ForeignKey {
                            fields: fields
                                .iter()
                                .map(|n| index(n, "a foreign key"))
                                .collect::<Result<_>>()?,
                            resource,
                            reference_fields,
                        })
                    })
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(err("`foreignKeys` must be an array".into())),
    };
    let mut identities: Vec<Vec<usize>> = Vec::new();
    let mut notes = Vec::new();
    if let Some(v) = doc.get(PERSON_IDENTITY_PROPERTY) {
        let list = names(v).filter(|l| l.len() >= 2).ok_or_else(|| {
            err(format!(
                "`{PERSON_IDENTITY_PROPERTY}` must be an array of at least two field names"
            ))
        })?;
        let members = list
            .iter()
            .map(|n| index(n, &format!("`{PERSON_IDENTITY_PROPERTY}`")))
            .collect::<Result<Vec<_>>>()?;
        identities.push(members);
    }
    for spec in person_ids.iter().filter(|p| p.contains('+')) {
        let found: Vec<Option<usize>> = spec
            .split('+')
            .map(|part| {
                fields
                    .iter()
                    .position(|f| f.name.eq_ignore_ascii_case(part.trim()))
            })
            .collect();
        if let Some(members) = found.iter().copied().collect::<Option<Vec<usize>>>() {
            identities.push(members);
        } else if let Some(first) = found[0] {
            // The number without what qualifies it: still a direct identifier.
            fields[first].person = true;
            notes.push(format!(
                "{file}: --person-id {spec}: only {} is in this resource; it is keyed alone",
                fields[first].name
            ));
        }
    }
    let mut seen = HashSet::new();
    for members in &identities {
        for &i in members {
            if !seen.insert(i) {
                return Err(err(format!(
                    "field {} is part of two person identities (or named twice in one)",
                    fields[i].name
                )));
            }
            fields[i].person = true;
        }
    }
    let mut schema = Schema {
        fields,
        primary_key,
        unique_keys,
        foreign_keys,
        identities,
        notes,
    };
    // Primary-key fields are required (Table Schema).
    for &i in &schema.primary_key.clone() {
        schema.fields[i].required = true;
    }
    Ok(schema)
}

fn missing_values(v: &Json) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|m| match m {
            Json::String(s) => Some(s.clone()),
            Json::Object(o) => o.get("value")?.as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// A field name or an array of them.
fn names(v: &Json) -> Option<Vec<String>> {
    match v {
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(a) if !a.is_empty() => {
            a.iter().map(|n| n.as_str().map(str::to_owned)).collect()
        }
        _ => None,
    }
}

type RawForeignKey = (Vec<String>, Option<String>, Vec<String>);

fn foreign_key(k: &Json) -> std::result::Result<RawForeignKey, String> {
    let fields = k
        .get("fields")
        .and_then(names)
        .ok_or("`fields` must be a field name or an array of them")?;
    let reference = k
        .get("reference")
        .and_then(Json::as_object)
        .ok_or("`reference` must be an object")?;
    let resource = match reference.get("resource") {
        None => None,
        Some(Json::String(s)) if s.is_empty() => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err("`reference.resource` must be a string".into()),
    };
    let reference_fields = reference
        .get("fields")
        .and_then(names)
        .ok_or("`reference.fields` must be a field name or an array of them")?;
    if reference_fields.len() != fields.len() {
        return Err(format!(
            "{} fields refer to {} fields",
            fields.len(),
            reference_fields.len()
        ));
    }
    Ok((fields, resource, reference_fields))
}

fn parse_field(
    raw: &Json,
    schema_missing: &[String],
    person_ids: &[String],
    unknown_constraints: &mut BTreeMap<String, usize>,
) -> std::result::Result<Field, String> {
    let Json::Object(raw) = raw else {
        return Err("not a JSON object".into());
    };
    let name = match raw.get("name") {
        Some(Json::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("no `name`".into()),
    };
    let in_field = |reason: String| format!("{name}: {reason}");
    let ty = field_type(raw).map_err(in_field)?;
    let missing_values = match raw.get("missingValues") {
        None => schema_missing.to_vec(),
        Some(v) => missing_values(v)
            .ok_or_else(|| in_field("`missingValues` must be an array of strings".into()))?,
    };
    let person = match raw.get(IDENTIFIER_PROPERTY) {
        None => false,
        Some(Json::String(s)) if s == "person" => true,
        Some(_) => {
            return Err(in_field(format!(
                "`{IDENTIFIER_PROPERTY}` must be \"person\""
            )));
        }
    } || person_ids.iter().any(|p| p.eq_ignore_ascii_case(&name));
    let empty = Map::new();
    let raw_constraints = match raw.get("constraints") {
        None => &empty,
        Some(Json::Object(c)) => c,
        Some(_) => return Err(in_field("`constraints` must be an object".into())),
    };
    let flag = |key: &str| -> std::result::Result<bool, String> {
        match raw_constraints.get(key) {
            None => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(in_field(format!("constraint {key} must be true or false"))),
        }
    };
    let required = flag("required")?;
    let unique = flag("unique")?;
    let mut constraints = Constraints::default();
    for (key, value) in raw_constraints {
        let bad = |what: &str| in_field(format!("constraint {key}: {what}"));
        match key.as_str() {
            "required" | "unique" | "description" => {}
            "minLength" | "maxLength" => {
                let n = value
                    .as_u64()
                    .ok_or_else(|| bad("must be a non-negative integer"))?
                    as usize;
                if key == "minLength" {
                    constraints.min_length = Some(n);
                } else {
                    constraints.max_length = Some(n);
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = bound(&ty, value)
                    .ok_or_else(|| bad(&format!("is not a valid {} value", ty.describe())))?;
                let bound = Bound {
                    cell: bound,
                    exclusive: key.starts_with("exclusive"),
                    label: format!(
                        "{key} {}",
                        value.as_str().map_or(value.to_string(), str::to_owned)
                    ),
                };
                if key.ends_with("inimum") {
                    constraints.minimum = Some(bound);
                } else {
                    constraints.maximum = Some(bound);
                }
            }
            "pattern" => {
                let pattern = value.as_str().ok_or_else(|| bad("must be a string"))?;
                // XML Schema patterns match the whole value.
                let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|_| bad("is not a valid regular expression"))?;
                constraints.pattern = Some(regex);
            }
            "enum" => {
                let members = value.as_array().ok_or_else(|| bad("must be an array"))?;
                let mut allowed = HashSet::new();
                for m in members {
                    let cell = bound(&ty, m).ok_or_else(|| {
                        bad(&format!(
                            "holds a value that is not a valid {}",
                            ty.describe()
                        ))
                    })?;
                    let mut key = Vec::new();
                    cell.encode(&mut key);
                    allowed.insert(key);
                }
                constraints.allowed = Some(allowed);
            }
            other => *unknown_constraints.entry(other.to_owned()).or_default() += 1,
        }
    }
    Ok(Field {
        column: name.to_lowercase(),
        name,
        ty,
        required,
        unique,
        constraints,
        missing_values,
        person,
    })
}

/// A constraint value (bound or enum member), typed like the field: JSON strings are read
/// as the field reads cells; JSON numbers and booleans by their JSON text.
fn bound(ty: &FieldType, value: &Json) -> Option<Cell<'static>> {
    let text = match value {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return None,
    };
    let cell = match ty {
        // Boolean bounds in JSON are true/false whatever the field's trueValues.
        FieldType::Boolean { .. } => match value {
            Json::Bool(b) => Some(Cell::Bool(*b)),
            _ => ty.parse(&text).map(owned),
        },
        _ => ty.parse(&text).map(owned),
    };
    cell.or_else(|| match (ty, value) {
        // Dates in constraints may be ISO whatever the field's pattern.
        (FieldType::Date(_), Json::String(s)) => {
            FieldType::Date(DateFormat::Default).parse(s).map(owned)
        }
        _ => None,
    })
}

fn owned(cell: Cell<'_>) -> Cell<'static> {
    match cell {
        Cell::Int(v) => Cell::Int(v),
        Cell::Float(v) => Cell::Float(v),
        Cell::Bool(v) => Cell::Bool(v),
        Cell::Text(v) => Cell::Text(std::borrow::Cow::Owned(v.into_owned())),
        Cell::Date(v) => Cell::Date(v),
        Cell::Micros(v) => Cell::Micros(v),
    }
}

fn field_type(raw: &Map<String, Json>) -> std::result::Result<FieldType, String> {
    let ty = match raw.get("type") {
        None => "string",
        Some(Json::String(s)) => s.as_str(),
        Some(_) => return Err("`type` must be a string".into()),
    };
    let format = match raw.get("format") {
        None => "default",
        Some(Json::String(s)) => s.strip_prefix("fmt:").unwrap_or(s),
        Some(_) => return Err("`format` must be a string".into()),
    };
    let char_prop =
        |key: &str, default: Option<char>| -> std::result::Result<Option<char>, String> {
            match raw.get(key) {
                None => Ok(default),
                Some(Json::String(s)) if s.chars().count() == 1 => Ok(s.chars().next()),
                Some(_) => Err(format!("`{key}` must be a single character")),
            }
        };
    let bare_number = match raw.get("bareNumber") {
        None => true,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err("`bareNumber` must be true or false".into()),
    };
    let strings = |key: &str, default: &[&str]| -> std::result::Result<Vec<String>, String> {
        match raw.get(key) {
            None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
                .ok_or_else(|| format!("`{key}` must be an array of strings")),
        }
    };
    Ok(match ty {
        "string" => FieldType::String(match format {
            "email" => StringFormat::Email,
            "uri" => StringFormat::Uri,
            "uuid" => StringFormat::Uuid,
            "binary" => StringFormat::Binary,
            // `default` and formats without a rule of their own.
            _ => StringFormat::Default,
        }),
        "integer" => FieldType::Integer {
            bare_number,
            group_char: char_prop("groupChar", None)?,
        },
        "number" => FieldType::Number {
            bare_number,
            group_char: char_prop("groupChar", None)?,
            decimal_char: char_prop("decimalChar", Some('.'))?.unwrap_or('.'),
        },
        "boolean" => FieldType::Boolean {
            true_values: strings("trueValues", &["true", "True", "TRUE", "1"])?,
            false_values: strings("falseValues", &["false", "False", "FALSE", "0"])?,
        },
        "date" => FieldType::Date(match format {
            "default" => DateFormat::Default,
            "any" => DateFormat::Any,
            pattern => {
                let full = classify(pattern)?.full_date;
                DateFormat::Pattern {
                    pattern: pattern.to_owned(),
                    full,
                }
            }
        }),
        "datetime" => FieldType::Datetime(match format {
            "default" => DatetimeFormat::Default,
            "any" => DatetimeFormat::Any,
            pattern => {
                let c = classify(pattern)?;
                if !c.zoned && !c.datetime {
                    return Err(format!(
                        "datetime format {pattern} does not name a full date and time"
                    ));
                }
                DatetimeFormat::Pattern {
                    pattern: pattern.to_owned(),
                    zoned: c.zoned,
                }
            }
        }),
        "time" => FieldType::Time(match format {
            "default" => TimeFormat::Default,
            "any" => TimeFormat::Any,
            pattern => {
                if !classify(pattern)?.time {
                    return Err(format!("time format {pattern} does not name a time of day"));
                }
                TimeFormat::Pattern(pattern.to_owned())
            }
        }),
        "year" => FieldType::Year,
        "yearmonth" => FieldType::YearMonth,
        "object" => FieldType::Object,
        "array" => FieldType::Array,
        "geojson" | "topojson" => FieldType::Geojson,
        "geopoint" => FieldType::Geopoint(match format {
            "array" => GeopointFormat::Array,
            "object" => GeopointFormat::Object,
            _ => GeopointFormat::Default,
        }),
        "duration" => FieldType::Duration,
        "any" => FieldType::Any,
        other => return Err(format!("unknown type {other:?}")),
    })
}

/// What a strftime pattern can read, found by formatting a known instant with it and
/// reading it back.
struct PatternKind {
    full_date: bool,
    datetime: bool,
    zoned: bool,
    time: bool,
}

fn classify(pattern: &str) -> std::result::Result<PatternKind, String> {
    let invalid = || format!("format {pattern:?} is not a valid strftime pattern");
    if pattern.is_empty() || StrftimeItems::new(pattern).any(|i| matches!(i, Item::Error)) {
        return Err(invalid());
    }
    let instant = NaiveDate::from_ymd_opt(2001, 2, 3)
        .and_then(|d| d.and_hms_opt(4, 5, 6))
        .expect("valid date")
        .and_utc();
    let mut probe = String::new();
    write!(probe, "{}", instant.format(pattern)).map_err(|_| invalid())?;
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, &probe, StrftimeItems::new(pattern)).map_err(|_| {
        format!("format {pattern:?} cannot be read back (chrono strftime patterns are supported)")
    })?;
    Ok(PatternKind {
        full_date: NaiveDate::parse_from_str(&probe, pattern).ok() == Some(instant.date_naive()),
        datetime: NaiveDateTime::parse_from_str(&probe, pattern).ok() == Some(instant.naive_utc()),
        zoned: DateTime::parse_from_str(&probe, pattern).is_ok(),
        time: NaiveTime::parse_from_str(&probe, pattern).is_ok(),
    })
}

impl Field {
    /// The first constraint `cell` (read from `text`) breaks, if any.
    pub(crate) fn violation(&self, cell: &Cell<'_>, text: &str) -> Option<Reason> {
        let c = &self.constraints;
        let broken = |constraint: String| Some(Reason::Constraint { constraint });
        if c.min_length.is_some() || c.max_length.is_some() {
            // Byte length bounds char length from above: count chars only when needed.
            let chars = text.chars().count();
            if let Some(min) = c.min_length
                && chars < min
            {
                return broken(format!("minLength {min}"));
            }
            if let Some(max) = c.max_length
                && text.len() > max
                && chars > max
            {
                return broken(format!("maxLength {max}"));
            }
        }
        if let Some(min) = &c.minimum {
            let ok = match cell.compare(&min.cell) {
                Some(std::cmp::Ordering::Greater) => true,
                Some(std::cmp::Ordering::Equal) => !min.exclusive,
                _ => false,
            };
            if !ok {
                return broken(min.label.clone());
            }
        }
        if let Some(max) = &c.maximum {
            let ok = match cell.compare(&max.cell) {
                Some(std::cmp::Ordering::Less) => true,
                Some(std::cmp::Ordering::Equal) => !max.exclusive,
                _ => false,
            };
            if !ok {
                return broken(max.label.clone());
            }
        }
        if let Some(pattern) = &c.pattern
            && !pattern.is_match(text)
        {
            return broken("pattern".into());
        }
        if let Some(allowed) = &c.allowed {
            let mut key = Vec::new();
            cell.encode(&mut key);
            if !allowed.contains(&key) {
                return broken("enum".into());
            }
        }
        None
    }
}

impl Schema {
    /// Names used by a field list, for messages.
    pub(crate) fn field_names(&self, fields: &[usize]) -> String {
        fields
            .iter()
            .map(|&i| self.fields[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(json: &str) -> Result<Schema> {
        parse("s.json", json.as_bytes(), &[], &mut BTreeMap::new())
    }

    fn reason(json: &str) -> String {
        schema(json).unwrap_err().to_string()
    }

    #[test]
    fn reads_types_keys_and_constraints() {
        let s = schema(
            r#"{
            "fields": [
                {"name": "ID", "type": "integer", "constraints": {"minimum": 1}},
                {"name": "code", "constraints": {"enum": ["A", "B"], "maxLength": 1}},
                {"name": "born", "type": "date", "format": "%d/%m/%Y",
                 "constraints": {"minimum": "1900-01-01"}},
                {"name": "month", "type": "date", "format": "%m"},
                {"name": "at", "type": "datetime", "format": "%d%b%Y:%H:%M:%S"},
                {"name": "nir", "agora:identifier": "person"}
            ],
            "missingValues": ["", "NA"],
            "primaryKey": "ID",
            "foreignKeys": [{"fields": "code", "reference": {"resource": "codes", "fields": "c"}}]
        }"#,
        )
        .unwrap();
        assert_eq!(s.primary_key, vec![0]);
        assert!(s.fields[0].required, "primary key fields are required");
        assert_eq!(s.fields[0].column, "id");
        assert_eq!(s.fields[1].missing_values, vec!["", "NA"]);
        assert!(matches!(
            &s.fields[2].ty,
            FieldType::Date(DateFormat::Pattern { full: true, .. })
        ));
        let min = s.fields[2].constraints.minimum.as_ref().unwrap();
        assert_eq!((&min.cell, min.exclusive), (&Cell::Date(-25567), false));
        assert_eq!(min.label, "minimum 1900-01-01");
        assert!(matches!(
            &s.fields[3].ty,
            FieldType::Date(DateFormat::Pattern { full: false, .. })
        ));
        assert!(matches!(
            &s.fields[4].ty,
            FieldType::Datetime(DatetimeFormat::Pattern { zoned: false, .. })
        ));
        assert!(s.fields[5].person && !s.fields[1].person);
        assert_eq!(s.foreign_keys[0].resource.as_deref(), Some("codes"));
    }

    #[test]
    fn person_ids_may_come_from_outside() {
        let s = parse(
            "s.json",
            br#"{"fields": [{"name": "BEN_NIR_PSA"}, {"name": "other"}]}"#,
            &["ben_nir_psa".to_owned()],
            &mut BTreeMap::new(),
        )
        .unwrap();
        assert!(s.fields[0].person && !s.fields[1].person);
    }

    #[test]
    fn composite_identities_are_declared_or_named() {
        let fields = r#""fields": [{"name": "NIR"}, {"name": "RNG"}, {"name": "X"}]"#;
        let parse_with = |extra: &str, ids: &[&str]| {
            let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
            let doc = format!("{{{fields}{extra}}}");
            parse("s.json", doc.as_bytes(), &ids, &mut BTreeMap::new())
        };
        let s = parse_with(r#", "agora:personIdentity": ["NIR", "RNG"]"#, &[]).unwrap();
        assert_eq!(s.identities, vec![vec![0, 1]]);
        assert!(s.fields[0].person && s.fields[1].person && !s.fields[2].person);
        let s = parse_with("", &["nir+rng"]).unwrap();
        assert_eq!(s.identities, vec![vec![0, 1]]);
        // Only the number here: keyed alone, with a note naming fields only.
        let s = parse_with("", &["NIR+OTHER"]).unwrap();
        assert!(s.identities.is_empty() && s.fields[0].person);
        assert_eq!(s.notes.len(), 1);
        for (extra, message) in [
            (
                r#", "agora:personIdentity": ["NIR"]"#,
                "at least two field names",
            ),
            (
                r#", "agora:personIdentity": ["NIR", "NOPE"]"#,
                "names field NOPE",
            ),
            (
                r#", "agora:personIdentity": ["NIR", "NIR"]"#,
                "part of two person identities",
            ),
        ] {
            let err = parse_with(extra, &[]).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn unknown_constraints_are_counted_not_fatal() {
        let mut unknown = BTreeMap::new();
        parse(
            "s.json",
            br#"{"fields": [{"name": "a", "type": "number", "constraints": {"decimals": 2}}]}"#,
            &[],
            &mut unknown,
        )
        .unwrap();
        assert_eq!(unknown.get("decimals"), Some(&1));
    }

    #[test]
    fn bad_schemas_say_what_and_where() {
        let cases = [
            ("[]", "s.json: not a JSON object"),
            ("{", "s.json: not valid JSON (line 1 column 1)"),
            ("{}", "s.json: no `fields` array"),
            (
                r#"{"fields": [{"type": "string"}]}"#,
                "s.json: field 1: no `name`",
            ),
            (
                r#"{"fields": [{"name": "a", "type": "colour"}]}"#,
                "s.json: field 1: a: unknown type \"colour\"",
            ),
            (
                r#"{"fields": [{"name": "a"}, {"name": "A"}]}"#,
                "s.json: field A is declared twice (names are compared case-insensitively)",
            ),
            (
                r#"{"fields": [{"name": "a"}], "primaryKey": ["b"]}"#,
                "s.json: primaryKey names field b, which is not declared",
            ),
            (
                r#"{"fields": [{"name": "a", "constraints": {"pattern": "("}}]}"#,
                "s.json: field 1: a: constraint pattern: is not a valid regular expression",
            ),
            (
                r#"{"fields": [{"name": "a", "type": "integer", "constraints": {"enum": ["x"]}}]}"#,
                "s.json: field 1: a: constraint enum: holds a value that is not a valid integer",
            ),
            (
                r#"{"fields": [{"name": "a", "type": "datetime", "format": "%Y-%m-%d"}]}"#,
                "s.json: field 1: a: datetime format %Y-%m-%d does not name a full date and time",
            ),
            (
                r#"{"fields": [{"name": "a", "type": "date", "format": "%Q"}]}"#,
                "s.json: field 1: a: format \"%Q\" is not a valid strftime pattern",
            ),
            (
                r#"{"fields": [{"name": "a"}], "foreignKeys": [{"fields": ["a"], "reference": {"resource": "r", "fields": ["x", "y"]}}]}"#,
                "s.json: foreign key 1: 1 fields refer to 2 fields",
            ),
            (
                r#"{"fields": [{"name": "a", "agora:identifier": "yes"}]}"#,
                "s.json: field 1: a: `agora:identifier` must be \"person\"",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(reason(json), expected, "{json}");
        }
    }

    use proptest::prelude::*;

    const TYPES: &[&str] = &[
        "string",
        "integer",
        "number",
        "boolean",
        "date",
        "datetime",
        "time",
        "year",
        "yearmonth",
        "object",
        "array",
        "geojson",
        "geopoint",
        "duration",
        "any",
        "bogus",
    ];
    const FORMATS: &[&str] = &[
        "default",
        "any",
        "%Y-%m-%d",
        "%m",
        "%d%b%Y:%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%z",
        "%H:%M",
        "%",
        "%Q",
        "fmt:%d/%m/%Y",
        "email",
        "uri",
        "uuid",
        "binary",
        "array",
        "object",
        "",
    ];

    fn scalar() -> impl Strategy<Value = Json> {
        prop_oneof![
            any::<i64>().prop_map(Json::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
            any::<bool>().prop_map(Json::Bool),
            prop::sample::select(vec![
                "1",
                "2020-01-01",
                "(",
                "[a-z]+",
                "",
                "12:00:00",
                "P1D"
            ])
            .prop_map(Json::from),
            "\\PC{0,6}".prop_map(Json::from),
        ]
    }

    fn constraint() -> impl Strategy<Value = (String, Json)> {
        let key = prop::sample::select(vec![
            "required",
            "unique",
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "pattern",
            "enum",
            "decimals",
        ]);
        (
            key,
            prop_oneof![
                scalar(),
                prop::collection::vec(scalar(), 0..4).prop_map(Json::from)
            ],
        )
            .prop_map(|(k, v)| (k.to_owned(), v))
    }

    fn field() -> impl Strategy<Value = Json> {
        (
            "[a-c]{1,2}",
            prop::sample::select(TYPES.to_vec()),
            prop::sample::select(FORMATS.to_vec()),
            prop::collection::vec(constraint(), 0..4),
            any::<bool>(),
        )
            .prop_map(|(name, ty, format, constraints, person)| {
                let mut f = serde_json::json!({"name": name, "type": ty, "format": format});
                f["constraints"] = Json::Object(constraints.into_iter().collect());
                if person {
                    f[IDENTIFIER_PROPERTY] = Json::from("person");
                }
                f
            })
    }

    fn schema_like() -> impl Strategy<Value = Json> {
        (
            prop::collection::vec(field(), 0..5),
            prop::option::of(prop_oneof![scalar(), prop::collection::vec("[a-c]{1,2}", 0..3).prop_map(Json::from)]),
            prop::option::of(prop::collection::vec(scalar(), 0..3)),
            prop::collection::vec(("[a-c]{1,2}", "[a-c]{0,2}", "[a-c]{1,2}"), 0..3),
        )
            .prop_map(|(fields, pk, missing, fks)| {
                let mut s = serde_json::json!({"fields": fields});
                if let Some(pk) = pk {
                    s["primaryKey"] = pk;
                }
                if let Some(missing) = missing {
                    s["missingValues"] = Json::from(missing);
                }
                s["foreignKeys"] = Json::from(
                    fks.into_iter()
                        .map(|(f, r, rf)| serde_json::json!({"fields": f, "reference": {"resource": r, "fields": rf}}))
                        .collect::<Vec<_>>(),
                );
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any bytes: a schema or an error, never a panic.
        #[test]
        fn parsing_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse("s.json", &bytes, &[], &mut BTreeMap::new());
        }

        /// Schema-shaped documents with random types, formats and constraints: parsing never
        /// panics, and neither does reading or checking any cell with what was parsed.
        #[test]
        fn schema_like_documents_and_their_cells_never_panic(
            doc in schema_like(),
            cells in prop::collection::vec(
                prop_oneof![
                    "\\PC{0,12}",
                    prop::sample::select(vec![
                        "2020-02-29", "29/02/2020", "05", "13", "01JAN2020:00:00:00",
                        "2020-01-01T00:00:00+25:00", "NaN", "-INF", "1e400", "[1,2]",
                        "{\"type\":\"Point\"}", "P1Y2M", "24:00:00", "202013", "-0",
                    ]).prop_map(str::to_owned),
                ],
                0..8,
            ),
        ) {
            let text = doc.to_string();
            if let Ok(schema) = parse("s.json", text.as_bytes(), &["b".to_owned()], &mut BTreeMap::new()) {
                for field in &schema.fields {
                    for cell in &cells {
                        if let Some(value) = field.ty.parse(cell) {
                            let _ = field.violation(&value, cell);
                            let mut key = Vec::new();
                            value.encode(&mut key);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_snds_schema_parses() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/snds");
        let mut stack = vec![root];
        let mut parsed = 0;
        let mut unknown = BTreeMap::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read(&path).unwrap();
                    parse(&path.display().to_string(), &text, &[], &mut unknown).unwrap();
                    parsed += 1;
                }
            }
        }
        assert_eq!(parsed, 191 + 175);
        assert_eq!(unknown.keys().collect::<Vec<_>>(), vec!["decimals"]);
    }
}
