//! Parsing and validation of ViewDefinitions. Every FHIRPath expression is parsed here, once,
//! so that a view that is accepted can only fail later on data (e.g. a column without
//! `collection: true` meeting several values), never on its own text.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fhirpath::{BUILTIN_VARIABLES, Expression, Variable, known_type};

/// A parsed, validated ViewDefinition, ready to flatten resources with
/// [`evaluate`](crate::evaluate).
#[derive(Debug, Clone)]
pub struct ViewDefinition {
    name: Option<String>,
    resource: String,
    pub(crate) constants: Vec<Variable>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) selects: Vec<Select>,
    columns: Vec<Column>,
}

/// One output column of a view, in table order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The column name, unique in the view (`^[A-Za-z][A-Za-z0-9_]*$`).
    pub name: String,
    /// The FHIR type declared by the view (`type`: `string`, `dateTime`, `integer`...), if any.
    pub fhir_type: Option<String>,
    /// Whether each value is a JSON array of all the path's results (`collection: true`).
    pub collection: bool,
}

/// A `where` clause: rows of a resource are produced only if every path is true.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) path: Expression,
    pub(crate) element: String,
}

/// A `select` element; its rows have `width` values: its own columns, then those of its
/// nested selects, then those of its `unionAll` branches.
#[derive(Debug, Clone)]
pub(crate) struct Select {
    pub(crate) iteration: Iteration,
    pub(crate) columns: Vec<ColumnPath>,
    pub(crate) selects: Vec<Select>,
    pub(crate) union_all: Vec<Select>,
    pub(crate) width: usize,
    /// Where the iteration is defined (`select[0].forEach`), for error messages.
    pub(crate) iteration_element: String,
}

/// How a select chooses its focus.
#[derive(Debug, Clone)]
pub(crate) enum Iteration {
    /// The parent's focus, once.
    Parent,
    /// Each item of the collection; no row when it is empty.
    ForEach(Expression),
    /// Each item of the collection; one row of nulls when it is empty.
    ForEachOrNull(Expression),
    /// Every item reachable by applying the paths recursively, depth first.
    Repeat(Vec<Expression>),
}

#[derive(Debug, Clone)]
pub(crate) struct ColumnPath {
    pub(crate) path: Expression,
    pub(crate) collection: bool,
    /// Where the column is defined, and its name: `select[0].column[1] (family)`.
    pub(crate) element: String,
}

/// Elements of a ViewDefinition (and of any FHIR resource) accepted at the top level.
const VIEW_KEYS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "copyright",
    "resource",
    "resourceVersion",
    "profile",
    "fhirVersion",
    "constant",
    "select",
    "where",
];
const SELECT_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "column",
    "select",
    "forEach",
    "forEachOrNull",
    "repeat",
    "unionAll",
];
const COLUMN_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "name",
    "path",
    "description",
    "collection",
    "type",
    "tag",
];
const WHERE_KEYS: &[&str] = &[
    "id",
    "extension",
    "modifierExtension",
    "path",
    "description",
];
const CONSTANT_KEYS: &[&str] = &["id", "extension", "modifierExtension", "name"];

impl ViewDefinition {
    /// Parses and validates a ViewDefinition given as FHIR JSON.
    ///
    /// Errors name the offending element, e.g. `select[1].column[0]: missing name`.
    pub fn from_json(json: &Value) -> Result<ViewDefinition> {
        let map = object(json, "ViewDefinition")?;
        check_keys(map, "", VIEW_KEYS)?;
        if let Some(resource_type) = map.get("resourceType")
            && resource_type.as_str() != Some("ViewDefinition")
        {
            return Err(Error::invalid_view(
                "resourceType",
                "must be \"ViewDefinition\"",
            ));
        }
        let resource = string(map, "resource", "")?.ok_or_else(|| {
            Error::invalid_view("resource", "missing (the resource type to flatten)")
        })?;
        if !is_type_name(resource) {
            return Err(Error::invalid_view(
                "resource",
                "not a FHIR resource type name",
            ));
        }
        let name = string(map, "name", "")?;
        if let Some(name) = name {
            check_sql_name(name, "name")?;
        }
        let constants = constants(map.get("constant"))?;
        let parser = ViewParser {
            constants: &constants,
        };

        let select_json = array(map, "select", "")?;
        if select_json.is_empty() {
            return Err(Error::invalid_view(
                "select",
                "missing (a view needs at least one select)",
            ));
        }
        let mut selects = Vec::with_capacity(select_json.len());
        let mut columns: Vec<(Column, String)> = Vec::new();
        for (i, json) in select_json.iter().enumerate() {
            let (select, select_columns) = parser.select(json, &format!("select[{i}]"))?;
            selects.push(select);
            columns.extend(select_columns);
        }
        for (i, (column, element)) in columns.iter().enumerate() {
            if let Some((_, first)) = columns[..i].iter().find(|(c, _)| c.name == column.name) {
                return Err(Error::invalid_view(
                    element.clone(),
                    format!(
                        "duplicate column name '{}' (already defined at {first})",
                        column.name
                    ),
                ));
            }
        }

        let mut filters = Vec::new();
        for (i, json) in array(map, "where", "")?.iter().enumerate() {
            let element = format!("where[{i}]");
            let clause = object(json, &element)?;
            check_keys(clause, &element, WHERE_KEYS)?;
            let path = string(clause, "path", &element)?
                .ok_or_else(|| Error::invalid_view(element.clone(), "missing path"))?;
            filters.push(Filter {
                path: parser.expression(path, &format!("{element}.path"))?,
                element,
            });
        }

        Ok(ViewDefinition {
            name: name.map(str::to_owned),
            resource: resource.to_owned(),
            constants,
            filters,
            selects,
            columns: columns.into_iter().map(|(c, _)| c).collect(),
        })
    }

    /// The resource type the view flattens (`Patient`); other resources produce no rows.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The view's `name`, usable as a table name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The output columns, in order; every [`Row`](crate::Row) has one value per column.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// Parses the parts of a view that contain FHIRPath, checking constant references.
struct ViewParser<'c> {
    constants: &'c [Variable],
}

impl ViewParser<'_> {
    fn expression(&self, source: &str, element: &str) -> Result<Expression> {
        let expression =
            Expression::parse(source).map_err(|e| Error::invalid_view(element, e.to_string()))?;
        for (name, position) in expression.constants_used() {
            let declared =
                BUILTIN_VARIABLES.contains(&name) || self.constants.iter().any(|c| c.name == name);
            if !declared {
                return Err(Error::invalid_view(
                    element,
                    format!(
                        "`{source}` refers to %{name} at position {position}, which is not a constant of the view"
                    ),
                ));
            }
        }
        Ok(expression)
    }

    /// A select and its output columns (with the element defining each).
    fn select(&self, json: &Value, element: &str) -> Result<(Select, Vec<(Column, String)>)> {
        let map = object(json, element)?;
        check_keys(map, element, SELECT_KEYS)?;

        let iterations: Vec<&str> = ["forEach", "forEachOrNull", "repeat"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        if iterations.len() > 1 {
            return Err(Error::invalid_view(
                element,
                format!("{} cannot be combined", iterations.join(" and ")),
            ));
        }
        let path_of = |key: &str| -> Result<Expression> {
            let child = format!("{element}.{key}");
            let source = string(map, key, element)?.unwrap_or_default();
            self.expression(source, &child)
        };
        let iteration = match iterations.first() {
            None => Iteration::Parent,
            Some(&"forEach") => Iteration::ForEach(path_of("forEach")?),
            Some(&"forEachOrNull") => Iteration::ForEachOrNull(path_of("forEachOrNull")?),
            Some(_) => {
                let paths = array(map, "repeat", element)?;
                if paths.is_empty() {
                    return Err(Error::invalid_view(
                        format!("{element}.repeat"),
                        "must list at least one path",
                    ));
                }
                let mut expressions = Vec::with_capacity(paths.len());
                for (i, path) in paths.iter().enumerate() {
                    let child = format!("{element}.repeat[{i}]");
                    let source = path.as_str().ok_or_else(|| {
                        Error::invalid_view(
                            child.clone(),
                            "must be a string (a FHIRPath expression)",
                        )
                    })?;
                    expressions.push(self.expression(source, &child)?);
                }
                Iteration::Repeat(expressions)
            }
        };

        let mut output: Vec<(Column, String)> = Vec::new();
        let mut columns = Vec::new();
        for (i, json) in array(map, "column", element)?.iter().enumerate() {
            let child = format!("{element}.column[{i}]");
            let (path, column) = self.column(json, &child)?;
            columns.push(path);
            output.push((column, child));
        }

        let mut selects = Vec::new();
        for (i, json) in array(map, "select", element)?.iter().enumerate() {
            let (select, nested) = self.select(json, &format!("{element}.select[{i}]"))?;
            selects.push(select);
            output.extend(nested);
        }

        let mut union_all = Vec::new();
        let branches = array(map, "unionAll", element)?;
        if map.contains_key("unionAll") && branches.is_empty() {
            return Err(Error::invalid_view(
                format!("{element}.unionAll"),
                "must list at least one select",
            ));
        }
        let mut first_branch: Option<Vec<(Column, String)>> = None;
        for (i, json) in branches.iter().enumerate() {
            let child = format!("{element}.unionAll[{i}]");
            let (branch, branch_columns) = self.select(json, &child)?;
            match &first_branch {
                None => first_branch = Some(branch_columns),
                Some(first) => check_union_branch(first, &branch_columns, &child, element)?,
            }
            union_all.push(branch);
        }
        output.extend(first_branch.unwrap_or_default());

        let select = Select {
            iteration,
            columns,
            selects,
            union_all,
            width: output.len(),
            iteration_element: match iterations.first() {
                Some(key) => format!("{element}.{key}"),
                None => element.to_owned(),
            },
        };
        Ok((select, output))
    }

    fn column(&self, json: &Value, element: &str) -> Result<(ColumnPath, Column)> {
        let map = object(json, element)?;
        check_keys(map, element, COLUMN_KEYS)?;
        let name = string(map, "name", element)?
            .ok_or_else(|| Error::invalid_view(element, "missing name"))?;
        check_sql_name(name, &format!("{element}.name"))?;
        let path = string(map, "path", element)?
            .ok_or_else(|| Error::invalid_view(element, "missing path"))?;
        let collection = match map.get("collection") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::invalid_view(
                    format!("{element}.collection"),
                    "must be a boolean",
                ));
            }
        };
        let fhir_type = string(map, "type", element)?;
        if map.get("tag").is_some_and(|t| !t.is_array()) {
            return Err(Error::invalid_view(
                format!("{element}.tag"),
                "must be an array",
            ));
        }
        let column_path = ColumnPath {
            path: self.expression(path, &format!("{element}.path"))?,
            collection,
            element: format!("{element} ({name})"),
        };
        let column = Column {
            name: name.to_owned(),
            fhir_type: fhir_type.map(str::to_owned),
            collection,
        };
        Ok((column_path, column))
    }
}

/// Every branch of a `unionAll` must produce the same columns, in the same order, with
/// compatible declarations: they become the same columns of the table.
fn check_union_branch(
    first: &[(Column, String)],
    branch: &[(Column, String)],
    branch_element: &str,
    select_element: &str,
) -> Result<()> {
    let names = |columns: &[(Column, String)]| {
        columns
            .iter()
            .map(|(c, _)| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same_names = first.len() == branch.len()
        && first
            .iter()
            .zip(branch)
            .all(|((a, _), (b, _))| a.name == b.name);
    if !same_names {
        return Err(Error::invalid_view(
            branch_element,
            format!(
                "columns ({}) differ from those of {select_element}.unionAll[0] ({}); every branch must produce the same columns in the same order",
                names(branch),
                names(first)
            ),
        ));
    }
    for ((a, _), (b, element)) in first.iter().zip(branch) {
        let types_clash = matches!((&a.fhir_type, &b.fhir_type), (Some(x), Some(y)) if x != y);
        if types_clash || a.collection != b.collection {
            return Err(Error::invalid_view(
                element.clone(),
                format!(
                    "column '{}' is declared differently (type or collection) than in {select_element}.unionAll[0]",
                    b.name
                ),
            ));
        }
    }
    Ok(())
}

/// The view's constants, each with the FHIR type of its `value[x]`.
fn constants(json: Option<&Value>) -> Result<Vec<Variable>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let list = json
        .as_array()
        .ok_or_else(|| Error::invalid_view("constant", "must be an array"))?;
    let mut constants: Vec<Variable> = Vec::with_capacity(list.len());
    for (i, json) in list.iter().enumerate() {
        let element = format!("constant[{i}]");
        let map = object(json, &element)?;
        for key in map.keys() {
            if !CONSTANT_KEYS.contains(&key.as_str()) && !key.starts_with("value") {
                return Err(unknown_element(&element, key));
            }
        }
        let name = string(map, "name", &element)?
            .ok_or_else(|| Error::invalid_view(element.clone(), "missing name"))?;
        check_sql_name(name, &format!("{element}.name"))?;
        if BUILTIN_VARIABLES.contains(&name) {
            return Err(Error::invalid_view(
                format!("{element}.name"),
                format!("'{name}' is reserved"),
            ));
        }
        if constants.iter().any(|c| c.name == name) {
            return Err(Error::invalid_view(
                format!("{element}.name"),
                format!("duplicate constant name '{name}'"),
            ));
        }
        let values: Vec<(&String, &Value)> =
            map.iter().filter(|(k, _)| k.starts_with("value")).collect();
        let [(key, value)] = values.as_slice() else {
            return Err(Error::invalid_view(
                element,
                format!(
                    "constant '{name}' needs exactly one value[x] (valueString, valueInteger...)"
                ),
            ));
        };
        let fhir_type = constant_type(key, value)
            .map_err(|message| Error::invalid_view(format!("{element}.{key}"), message))?;
        constants.push(Variable {
            name: name.to_owned(),
            value: (*value).clone(),
            fhir_type: Some(fhir_type),
        });
    }
    Ok(constants)
}

/// The primitive type named by a constant's `value[x]` key, checked against its JSON value.
fn constant_type(key: &str, value: &Value) -> std::result::Result<&'static str, String> {
    let suffix = &key["value".len()..];
    let mut chars = suffix.chars();
    let type_name: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    let fhir_type = known_type(&type_name)
        .filter(|t| t.starts_with(char::is_lowercase))
        .ok_or_else(|| format!("'{key}' is not a primitive value[x]"))?;
    let fits = match fhir_type {
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64(),
        "unsignedInt" => value.as_i64().is_some_and(|i| i >= 0),
        "positiveInt" => value.as_i64().is_some_and(|i| i > 0),
        "decimal" => value.is_number(),
        "integer64" => value.is_i64() || value.is_string(),
        _ => value.is_string(),
    };
    if fits {
        Ok(fhir_type)
    } else {
        Err(format!("not a valid {fhir_type} value"))
    }
}

fn path_of(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn object<'v>(json: &'v Value, element: &str) -> Result<&'v Map<String, Value>> {
    json.as_object()
        .ok_or_else(|| Error::invalid_view(element, "must be a JSON object"))
}

fn unknown_element(parent: &str, key: &str) -> Error {
    Error::invalid_view(path_of(parent, key), "unknown element")
}

fn check_keys(map: &Map<String, Value>, element: &str, allowed: &[&str]) -> Result<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(unknown_element(element, key)),
        None => Ok(()),
    }
}

/// An optional string element; present but not a string is an error.
fn string<'v>(map: &'v Map<String, Value>, key: &str, element: &str) -> Result<Option<&'v str>> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::invalid_view(
            path_of(element, key),
            "must be a string",
        )),
    }
}

/// An optional array element (absent is empty); present but not an array is an error.
fn array<'v>(map: &'v Map<String, Value>, key: &str, element: &str) -> Result<&'v [Value]> {
    match map.get(key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::invalid_view(
            path_of(element, key),
            "must be an array",
        )),
    }
}

/// Names become SQL identifiers: `^[A-Za-z][A-Za-z0-9_]*$`.
fn check_sql_name(name: &str, element: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_view(
            element,
            format!(
                "'{name}' is not a valid name (letters, digits and '_', starting with a letter)"
            ),
        ))
    }
}

fn is_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(view: Value) -> String {
        match ViewDefinition::from_json(&view) {
            Ok(_) => panic!("view accepted: {view}"),
            Err(e) => e.to_string(),
        }
    }

    fn simple(select: Value) -> Value {
        json!({"resource": "Patient", "select": select})
    }

    #[test]
    fn columns_are_listed_in_table_order() {
        let view = ViewDefinition::from_json(&json!({
            "resourceType": "ViewDefinition",
            "name": "patient_names",
            "resource": "Patient",
            "select": [
                {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}],
                 "select": [{"forEach": "name", "column": [{"name": "family", "path": "family"}]}],
                 "unionAll": [
                     {"column": [{"name": "u", "path": "'a'", "collection": true}]},
                     {"column": [{"name": "u", "path": "'b'", "collection": true}]}
                 ]},
                {"column": [{"name": "z", "path": "1"}]}
            ]
        }))
        .unwrap();
        let names: Vec<&str> = view.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "family", "u", "z"]);
        assert_eq!(view.columns()[0].fhir_type.as_deref(), Some("id"));
        assert!(view.columns()[2].collection);
        assert_eq!(view.name(), Some("patient_names"));
        assert_eq!(view.resource(), "Patient");
    }

    #[test]
    fn views_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ViewDefinition>();
    }

    #[test]
    fn errors_name_the_offending_element() {
        let e = error(simple(json!([
            {"column": [{"name": "a", "path": "id"}]},
            {"column": [{"path": "id"}]}
        ])));
        assert_eq!(
            e,
            "invalid ViewDefinition: select[1].column[0]: missing name"
        );

        let e = error(simple(
            json!([{"column": [{"name": "a", "path": "id", "colection": true}]}]),
        ));
        assert_eq!(
            e,
            "invalid ViewDefinition: select[0].column[0].colection: unknown element"
        );

        let e = error(simple(json!([{"forEach": 1}])));
        assert_eq!(
            e,
            "invalid ViewDefinition: select[0].forEach: must be a string"
        );

        let e = error(simple(json!([{"forEach": "name.", "column": []}])));
        assert!(
            e.starts_with(
                "invalid ViewDefinition: select[0].forEach: FHIRPath syntax error at position 5"
            ),
            "{e}"
        );

        let e = error(json!({"select": []}));
        assert!(e.contains("resource: missing"), "{e}");

        let e = error(json!({"resource": "Patient"}));
        assert!(e.contains("select: missing"), "{e}");

        let e = error(json!({"resource": "Patient", "selects": []}));
        assert!(e.contains("selects: unknown element"), "{e}");

        let e = error(json!([]));
        assert!(e.contains("ViewDefinition: must be a JSON object"), "{e}");
    }

    #[test]
    fn duplicate_and_invalid_names_are_refused() {
        let e = error(simple(json!([
            {"column": [{"name": "id", "path": "id"}]},
            {"forEach": "name", "column": [{"name": "id", "path": "family"}]}
        ])));
        assert!(e.contains("select[1].column[0]: duplicate column name 'id' (already defined at select[0].column[0])"), "{e}");

        let e = error(simple(json!([{"column": [{"name": "1st", "path": "id"}]}])));
        assert!(
            e.contains("select[0].column[0].name: '1st' is not a valid name"),
            "{e}"
        );
    }

    #[test]
    fn union_branches_must_match() {
        let e = error(simple(json!([{"unionAll": [
            {"column": [{"name": "a", "path": "id"}, {"name": "b", "path": "id"}]},
            {"column": [{"name": "b", "path": "id"}, {"name": "a", "path": "id"}]}
        ]}])));
        assert!(e.contains("select[0].unionAll[1]: columns (b, a) differ from those of select[0].unionAll[0] (a, b)"), "{e}");

        let e = error(simple(json!([{"unionAll": [
            {"column": [{"name": "a", "path": "id", "type": "id"}]},
            {"column": [{"name": "a", "path": "id", "type": "string"}]}
        ]}])));
        assert!(
            e.contains("select[0].unionAll[1].column[0]: column 'a' is declared differently"),
            "{e}"
        );
    }

    #[test]
    fn iterations_are_exclusive() {
        let e = error(simple(
            json!([{"forEach": "name", "forEachOrNull": "name"}]),
        ));
        assert!(
            e.contains("select[0]: forEach and forEachOrNull cannot be combined"),
            "{e}"
        );
        let e = error(simple(json!([{"repeat": []}])));
        assert!(
            e.contains("select[0].repeat: must list at least one path"),
            "{e}"
        );
    }

    #[test]
    fn constants_are_typed_and_checked() {
        let view = ViewDefinition::from_json(&json!({
            "resource": "Patient",
            "constant": [{"name": "n", "valueInteger": 1}, {"name": "d", "valueDate": "2020-01-01"}],
            "select": [{"column": [{"name": "a", "path": "name[%n].family"}]}],
            "where": [{"path": "birthDate > %d"}]
        }))
        .unwrap();
        assert_eq!(view.constants[0].fhir_type, Some("integer"));
        assert_eq!(view.constants[1].fhir_type, Some("date"));

        let e = error(json!({
            "resource": "Patient",
            "constant": [{"name": "n"}],
            "select": [{"column": [{"name": "a", "path": "%n"}]}]
        }));
        assert!(
            e.contains("constant[0]: constant 'n' needs exactly one value[x]"),
            "{e}"
        );

        let e = error(json!({
            "resource": "Patient",
            "constant": [{"name": "n", "valueInteger": "1"}],
            "select": [{"column": [{"name": "a", "path": "%n"}]}]
        }));
        assert!(
            e.contains("constant[0].valueInteger: not a valid integer value"),
            "{e}"
        );

        let e = error(json!({
            "resource": "Patient",
            "constant": [{"name": "n", "valueQuantity": {"value": 1}}],
            "select": [{"column": [{"name": "a", "path": "%n"}]}]
        }));
        assert!(
            e.contains("'valueQuantity' is not a primitive value[x]"),
            "{e}"
        );

        let e = error(json!({
            "resource": "Patient",
            "select": [{"column": [{"name": "a", "path": "name.where(use = %missing)"}]}]
        }));
        assert!(e.contains("select[0].column[0].path: `name.where(use = %missing)` refers to %missing at position 17"), "{e}");

        let e = error(json!({
            "resource": "Patient",
            "constant": [{"name": "rowIndex", "valueInteger": 1}],
            "select": [{"column": [{"name": "a", "path": "id"}]}]
        }));
        assert!(e.contains("'rowIndex' is reserved"), "{e}");
    }
}
