//! The SQL-on-FHIR v2 ViewDefinitions applied at FHIR ingest: the defaults shipped in the
//! binary (`views/*.json`) and those an operator added to the data directory
//! (`agora views add`), and how a view's columns are typed.
//!
//! A view's `name` is its table name. Every view table also gets a `person_id` column (the
//! hub person key of the resource's patient, null if it has none), which is why a view may
//! not declare `person_id` itself.
//!
//! Not here: evaluating views (`agora-fhir`) or writing rows (`tables`).

use std::path::{Path, PathBuf};

use agora_core::ColumnType;
use agora_fhir::{Column, ViewDefinition};
use serde_json::Value;

use crate::error::io_err;
use crate::{Error, Result};

/// The views shipped with Agora, by table name.
const DEFAULT_VIEWS: &[(&str, &str)] = &[
    ("patient", include_str!("views/patient.json")),
    ("encounter", include_str!("views/encounter.json")),
    ("condition", include_str!("views/condition.json")),
    // Not `observation`: that is the OMOP table of every FHIR release.
    (
        "observation_fhir",
        include_str!("views/observation_fhir.json"),
    ),
    (
        "observation_component",
        include_str!("views/observation_component.json"),
    ),
    (
        "medication_request",
        include_str!("views/medication_request.json"),
    ),
    ("procedure", include_str!("views/procedure.json")),
    ("immunization", include_str!("views/immunization.json")),
];

/// The column every view table gets, holding the hub person key.
pub const PERSON_COLUMN: &str = "person_id";

/// A validated view and where it came from.
#[derive(Debug, Clone)]
pub struct NamedView {
    /// The table name (the view's `name`).
    pub name: String,
    /// The parsed view, as evaluated on each resource of its type.
    pub view: ViewDefinition,
    /// `default` or the file it was read from.
    pub origin: String,
    /// The view's JSON, stored with each release so a flattening can be reproduced.
    pub json: String,
}

impl NamedView {
    /// The view's columns and their stored types, `person_id` first.
    pub fn stored_columns(&self) -> Vec<(String, ColumnType)> {
        std::iter::once((PERSON_COLUMN.to_owned(), ColumnType::Int64))
            .chain(
                self.view
                    .columns()
                    .iter()
                    .map(|c| (c.name.clone(), column_type(c))),
            )
            .collect()
    }
}

impl NamedView {
    /// The view's columns whose path computes a resource key or a reference's key
    /// (`getResourceKey()`, `getReferenceKey()`): text keys that the permit workspace
    /// re-keys for each project, wherever they sit in the view's nested selects.
    pub fn key_columns(&self) -> Vec<String> {
        fn walk(node: &serde_json::Value, out: &mut Vec<String>) {
            match node {
                serde_json::Value::Object(map) => {
                    if let (Some(name), Some(path)) = (
                        map.get("name").and_then(|v| v.as_str()),
                        map.get("path").and_then(|v| v.as_str()),
                    ) && (path.contains("getResourceKey") || path.contains("getReferenceKey"))
                        && !out.iter().any(|n| n == name)
                    {
                        out.push(name.to_owned());
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&self.json) {
            // Only columns: a `where` path or a constant is not a stored column.
            if let Some(select) = json.get("select") {
                walk(select, &mut out);
            }
        }
        out
    }
}

/// The stored type of a view column. `collection: true` columns hold the JSON array as
/// text; so do columns without a declared type whose values are not strings.
pub fn column_type(column: &Column) -> ColumnType {
    if column.collection {
        return ColumnType::Utf8;
    }
    match column.fhir_type.as_deref() {
        Some("boolean") => ColumnType::Boolean,
        Some("integer" | "positiveInt" | "unsignedInt" | "integer64") => ColumnType::Int64,
        Some("decimal") => ColumnType::Float64,
        Some("date") => ColumnType::Date,
        Some("dateTime" | "instant") => ColumnType::TimestampUtc,
        _ => ColumnType::Utf8,
    }
}

fn default_views() -> Vec<NamedView> {
    DEFAULT_VIEWS
        .iter()
        .map(|(name, json)| {
            let view =
                parse_view(&format!("{name}.json"), json, false).expect("shipped views are valid");
            debug_assert_eq!(&view.name, name);
            view
        })
        .collect()
}

/// The views applied at ingest: the defaults, then the operator's (sorted by name).
pub fn load_views(operator_dir: Option<&Path>) -> Result<Vec<NamedView>> {
    let mut views = default_views();
    if let Some(dir) = operator_dir {
        views.extend(operator_views(dir)?);
    }
    Ok(views)
}

fn operator_views(dir: &Path) -> Result<Vec<NamedView>> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    paths.sort();
    let mut views = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let mut view = parse_view(&path.display().to_string(), &text, true)?;
        view.origin = path.display().to_string();
        views.push(view);
    }
    Ok(views)
}

/// Validates `file` as a ViewDefinition and stores it as `<dir>/<name>.json`. Refuses a
/// name already used by a default view or by an earlier operator view.
pub fn add_view(dir: &Path, file: &Path) -> Result<NamedView> {
    let text = std::fs::read_to_string(file).map_err(io_err(file))?;
    let label = file.display().to_string();
    let view = parse_view(&label, &text, true)?;
    let target = dir.join(format!("{}.json", view.name));
    if target.exists() {
        return Err(Error::ViewRules {
            file: label,
            reason: format!(
                "a view named {} already exists ({}); remove that file first to replace it",
                view.name,
                target.display()
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    std::fs::write(&target, &text).map_err(io_err(&target))?;
    Ok(NamedView {
        origin: target.display().to_string(),
        ..view
    })
}

fn parse_view(label: &str, text: &str, operator: bool) -> Result<NamedView> {
    let rules = |reason: String| Error::ViewRules {
        file: label.to_owned(),
        reason,
    };
    let json: Value =
        serde_json::from_str(text).map_err(|e| rules(format!("not valid JSON ({e})")))?;
    let view = ViewDefinition::from_json(&json).map_err(|source| Error::View {
        file: label.to_owned(),
        source,
    })?;
    let name = view
        .name()
        .ok_or_else(|| rules("a `name` is required: it is the table's name".into()))?
        .to_owned();
    let valid = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(rules(format!(
            "name {name:?} is not a table name: use lower-case letters, digits and _, starting with a letter"
        )));
    }
    if operator {
        if name.starts_with("fhir_") {
            return Err(rules(format!(
                "name {name} is reserved: fhir_* tables hold the resources themselves"
            )));
        }
        if super::omop::TABLES.contains(&name.as_str()) {
            return Err(rules(format!(
                "name {name} is reserved: it is an OMOP table of every FHIR release"
            )));
        }
        if DEFAULT_VIEWS.iter().any(|(n, _)| *n == name) {
            return Err(rules(format!(
                "name {name} is a default view's; choose another name"
            )));
        }
    }
    if view.columns().iter().any(|c| c.name == PERSON_COLUMN) {
        return Err(rules(format!(
            "column {PERSON_COLUMN} is reserved: every view table gets the hub person key under that name"
        )));
    }
    if !super::resource_types::is_r4_resource_type(view.resource()) {
        return Err(rules(format!(
            "resource {} is not a FHIR R4 resource type",
            view.resource()
        )));
    }
    Ok(NamedView {
        name,
        view,
        origin: "default".into(),
        json: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_views_are_valid_and_typed() {
        let views = default_views();
        assert_eq!(views.len(), DEFAULT_VIEWS.len());
        let patient = views.iter().find(|v| v.name == "patient").unwrap();
        let cols = patient.stored_columns();
        assert_eq!(cols[0], ("person_id".into(), ColumnType::Int64));
        assert!(cols.contains(&("birth_date".into(), ColumnType::Date)));
        assert!(cols.contains(&("deceased".into(), ColumnType::Boolean)));
    }

    #[test]
    fn operator_views_cannot_take_reserved_names() {
        let view = |name: &str| {
            format!(
                r#"{{"resourceType":"ViewDefinition","name":"{name}","resource":"Patient","status":"active",
                    "select":[{{"column":[{{"name":"g","path":"gender"}}]}}]}}"#
            )
        };
        assert!(parse_view("x", &view("patient"), true).is_err());
        assert!(parse_view("x", &view("fhir_x"), true).is_err());
        assert!(parse_view("x", &view("condition_occurrence"), true).is_err());
        assert!(
            default_views()
                .iter()
                .all(|v| !super::super::omop::TABLES.contains(&v.name.as_str())),
            "no default view takes an OMOP table's name"
        );
        assert!(parse_view("x", &view("Bad-Name"), true).is_err());
        assert!(parse_view("x", &view("my_patients"), true).is_ok());
    }
}
