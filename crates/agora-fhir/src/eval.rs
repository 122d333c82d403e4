//! Flattening resources into rows, following the specification's functional model: a select
//! produces, for each focus, the cross product of its own columns, of each nested select and
//! of the concatenation of its `unionAll` branches; the view is the cross product of its
//! top-level selects.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fhirpath::{Env, Expression, Item};
use crate::view::{Column, ColumnPath, Iteration, Select, ViewDefinition};

/// `repeat` deeper than this is taken for a cycle (e.g. `repeat: ["$this"]`) and refused.
const MAX_REPEAT_DEPTH: usize = 1000;

/// One output row: one value per column of the view, in the order of
/// [`ViewDefinition::columns`]. A value is JSON `null` when the path found nothing, a JSON
/// array for a `collection: true` column, else the element's JSON value (string, number,
/// boolean, or object for a complex element).
#[derive(Debug, Clone, PartialEq)]
pub struct Row(Vec<Value>);

impl Row {
    /// The values, aligned with the view's columns.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The values, aligned with the view's columns.
    pub fn into_values(self) -> Vec<Value> {
        self.0
    }

    /// The row as a JSON object keyed by column name.
    pub fn to_object(&self, columns: &[Column]) -> Map<String, Value> {
        columns
            .iter()
            .zip(&self.0)
            .map(|(column, value)| (column.name.clone(), value.clone()))
            .collect()
    }
}

/// Flattens `resources` with `view`. Resources of another type than
/// [`ViewDefinition::resource`] are skipped. Rows come in input order, and for each resource
/// in the order of its elements.
///
/// An error names the resource by its position in `resources` (never by its id).
pub fn evaluate(view: &ViewDefinition, resources: &[Value]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (index, resource) in resources.iter().enumerate() {
        rows.extend(
            evaluate_resource(view, resource).map_err(|error| Error::InResource {
                index,
                error: Box::new(error),
            })?,
        );
    }
    Ok(rows)
}

/// Flattens one resource (for streaming callers: an NDJSON reader calls this per line).
/// Returns no rows for a resource of another type than the view's.
pub fn evaluate_resource(view: &ViewDefinition, resource: &Value) -> Result<Vec<Row>> {
    if resource.get("resourceType").and_then(Value::as_str) != Some(view.resource()) {
        return Ok(Vec::new());
    }
    let env = Env {
        resource,
        variables: &view.constants,
        row_index: 0,
    };
    let focus = Item::borrowed(resource);
    for filter in &view.filters {
        let result = eval_at(&filter.path, &focus, &env, &filter.element)?;
        let keep = match result.as_slice() {
            [] => false,
            [one] => one.value().as_bool().ok_or_else(|| {
                Error::evaluation(&filter.element, "the path must return a boolean")
            })?,
            many => {
                return Err(Error::evaluation(
                    &filter.element,
                    format!(
                        "the path must return a single boolean, not a collection of {} items",
                        many.len()
                    ),
                ));
            }
        };
        if !keep {
            return Ok(Vec::new());
        }
    }
    let mut rows = vec![Vec::with_capacity(view.columns().len())];
    for select in &view.selects {
        rows = cross(rows, select_rows(select, &focus, &env)?);
    }
    Ok(rows.into_iter().map(Row).collect())
}

/// The partial rows (`select.width` values each) a select produces for one focus.
fn select_rows<'a>(select: &'a Select, focus: &Item<'a>, env: &Env<'a>) -> Result<Vec<Vec<Value>>> {
    // Each focus with its %rowIndex; `None` is forEachOrNull's row of nulls.
    let foci: Vec<(Option<Item<'a>>, usize)> = match &select.iteration {
        Iteration::Parent => vec![(Some(focus.clone()), env.row_index)],
        Iteration::ForEach(path) => indexed(eval_at(path, focus, env, &select.iteration_element)?),
        Iteration::ForEachOrNull(path) => {
            let items = eval_at(path, focus, env, &select.iteration_element)?;
            if items.is_empty() {
                vec![(None, 0)]
            } else {
                indexed(items)
            }
        }
        Iteration::Repeat(paths) => indexed(repeat(paths, focus, env, &select.iteration_element)?),
    };

    let mut rows = Vec::new();
    for (item, row_index) in foci {
        let Some(item) = item else {
            rows.push(null_row(select, env)?);
            continue;
        };
        let env = Env { row_index, ..*env };
        let mut own = Vec::with_capacity(select.width);
        for column in &select.columns {
            own.push(column_value(column, &item, &env)?);
        }
        let mut partial = vec![own];
        for nested in &select.selects {
            partial = cross(partial, select_rows(nested, &item, &env)?);
        }
        if !select.union_all.is_empty() {
            let mut union = Vec::new();
            for branch in &select.union_all {
                union.extend(select_rows(branch, &item, &env)?);
            }
            partial = cross(partial, union);
        }
        rows.extend(partial);
    }
    Ok(rows)
}

/// forEachOrNull's row for an empty collection. Its columns, and those of nested selects,
/// are evaluated with no focus and `%rowIndex` 0: paths give null, while `%rowIndex`,
/// constants and literals keep their value. `unionAll` branches, being alternative sources
/// of rows, give nulls.
fn null_row(select: &Select, env: &Env<'_>) -> Result<Vec<Value>> {
    static NO_FOCUS: Value = Value::Null;
    let env = Env {
        row_index: 0,
        ..*env
    };
    let mut row = Vec::with_capacity(select.width);
    for column in &select.columns {
        row.push(column_value(column, &Item::borrowed(&NO_FOCUS), &env)?);
    }
    for nested in &select.selects {
        row.extend(null_row(nested, &env)?);
    }
    row.resize(select.width, Value::Null);
    Ok(row)
}

fn indexed(items: Vec<Item<'_>>) -> Vec<(Option<Item<'_>>, usize)> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| (Some(item), i))
        .collect()
}

/// Every item reachable from `focus` through the paths, in depth-first pre-order (an item,
/// then its descendants, then its next sibling), excluding `focus` itself.
fn repeat<'a>(
    paths: &'a [Expression],
    focus: &Item<'a>,
    env: &Env<'a>,
    element: &str,
) -> Result<Vec<Item<'a>>> {
    let children = |item: &Item<'a>| -> Result<Vec<Item<'a>>> {
        let mut children = Vec::new();
        for path in paths {
            children.extend(eval_at(path, item, env, element)?);
        }
        Ok(children)
    };
    let mut found = Vec::new();
    let mut stack: Vec<(Item<'a>, usize)> =
        children(focus)?.into_iter().rev().map(|c| (c, 1)).collect();
    while let Some((item, depth)) = stack.pop() {
        if depth > MAX_REPEAT_DEPTH {
            return Err(Error::evaluation(
                element,
                format!("nested deeper than {MAX_REPEAT_DEPTH} levels (do the paths loop?)"),
            ));
        }
        stack.extend(children(&item)?.into_iter().rev().map(|c| (c, depth + 1)));
        found.push(item);
    }
    Ok(found)
}

fn column_value<'a>(column: &'a ColumnPath, focus: &Item<'a>, env: &Env<'a>) -> Result<Value> {
    let mut items = eval_at(&column.path, focus, env, &column.element)?;
    if column.collection {
        return Ok(Value::Array(
            items.into_iter().map(Item::into_value).collect(),
        ));
    }
    match items.len() {
        0 => Ok(Value::Null),
        1 => Ok(items.swap_remove(0).into_value()),
        n => Err(Error::evaluation(
            &column.element,
            format!(
                "the path returned {n} values but the column is not a collection (set \"collection\": true)"
            ),
        )),
    }
}

/// Evaluates `path`, attributing a FHIRPath error to `element` of the view.
fn eval_at<'a>(
    path: &'a Expression,
    focus: &Item<'a>,
    env: &Env<'a>,
    element: &str,
) -> Result<Vec<Item<'a>>> {
    path.eval(focus, env)
        .map_err(|e| Error::evaluation(element, e.to_string()))
}

/// Every left row followed by every right row.
fn cross(left: Vec<Vec<Value>>, right: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    if right.len() == 1 {
        // The common case (no iteration below): extend in place.
        let right = &right[0];
        return left
            .into_iter()
            .map(|mut row| {
                row.extend_from_slice(right);
                row
            })
            .collect();
    }
    let mut out = Vec::with_capacity(left.len() * right.len());
    for l in &left {
        for r in &right {
            let mut row = Vec::with_capacity(l.len() + r.len());
            row.extend_from_slice(l);
            row.extend_from_slice(r);
            out.push(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(json: Value) -> ViewDefinition {
        ViewDefinition::from_json(&json).unwrap()
    }

    fn rows(view: &ViewDefinition, resources: &[Value]) -> Vec<Vec<Value>> {
        evaluate(view, resources)
            .unwrap()
            .into_iter()
            .map(Row::into_values)
            .collect()
    }

    #[test]
    fn skips_other_resource_types_and_keeps_column_order() {
        let v = view(json!({
            "resource": "Patient",
            "select": [
                {"column": [{"name": "id", "path": "id"}]},
                {"forEach": "name", "column": [{"name": "i", "path": "%rowIndex"}, {"name": "f", "path": "family"}]}
            ]
        }));
        let resources = [
            json!({"resourceType": "Observation", "id": "o"}),
            json!({"resourceType": "Patient", "id": "a", "name": [{"family": "x"}, {"family": "y"}]}),
        ];
        assert_eq!(
            rows(&v, &resources),
            vec![
                vec![json!("a"), json!(0), json!("x")],
                vec![json!("a"), json!(1), json!("y")],
            ]
        );
        let object = evaluate(&v, &resources).unwrap()[0].to_object(v.columns());
        assert_eq!(Value::Object(object), json!({"id": "a", "i": 0, "f": "x"}));
    }

    #[test]
    fn repeat_is_depth_first_and_cycles_are_refused() {
        let v = view(json!({
            "resource": "Questionnaire",
            "select": [{"repeat": ["item"], "column": [{"name": "l", "path": "linkId"}]}]
        }));
        let q = json!({"resourceType": "Questionnaire", "item": [
            {"linkId": "1", "item": [{"linkId": "1.1"}, {"linkId": "1.2", "item": [{"linkId": "1.2.1"}]}]},
            {"linkId": "2"}
        ]});
        let got: Vec<Value> = rows(&v, std::slice::from_ref(&q))
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect();
        assert_eq!(
            got,
            [
                json!("1"),
                json!("1.1"),
                json!("1.2"),
                json!("1.2.1"),
                json!("2")
            ]
        );

        let looping = view(json!({
            "resource": "Questionnaire",
            "select": [{"repeat": ["$this"], "column": [{"name": "l", "path": "linkId"}]}]
        }));
        let e = evaluate(&looping, &[q]).unwrap_err().to_string();
        assert!(
            e.contains("resource #0: select[0].repeat: nested deeper than"),
            "{e}"
        );
    }

    #[test]
    fn where_must_be_boolean() {
        let v = view(json!({
            "resource": "Patient",
            "select": [{"column": [{"name": "id", "path": "id"}]}],
            "where": [{"path": "name.family"}]
        }));
        let resources = [
            json!({"resourceType": "Patient", "id": "a"}),
            json!({"resourceType": "Patient", "id": "b", "name": [{"family": "Secret"}]}),
        ];
        let e = evaluate(&v, &resources).unwrap_err().to_string();
        assert_eq!(e, "resource #1: where[0]: the path must return a boolean");
    }

    #[test]
    fn for_each_or_null_row_evaluates_columns_without_focus() {
        let v = view(json!({
            "resource": "Patient",
            "constant": [{"name": "k", "valueString": "K"}],
            "select": [{
                "forEachOrNull": "contact",
                "column": [
                    {"name": "i", "path": "%rowIndex"},
                    {"name": "k", "path": "%k"},
                    {"name": "this", "path": "$this"},
                    {"name": "family", "path": "name.family"},
                    {"name": "all", "path": "name.given", "collection": true}
                ],
                "select": [{"forEach": "telecom", "column": [{"name": "j", "path": "%rowIndex"}]}],
                "unionAll": [{"column": [{"name": "u", "path": "'a'"}]}]
            }]
        }));
        let p = json!({"resourceType": "Patient"});
        assert_eq!(
            rows(&v, &[p]),
            vec![vec![
                json!(0),
                json!("K"),
                json!(null),
                json!(null),
                json!([]),
                json!(0),
                json!(null)
            ]]
        );
    }

    #[test]
    fn collection_columns() {
        let v = view(json!({
            "resource": "Patient",
            "select": [{"column": [
                {"name": "all", "path": "name.given", "collection": true},
                {"name": "one", "path": "name.given"}
            ]}]
        }));
        let p = json!({"resourceType": "Patient", "name": [{"given": ["Ann"]}]});
        assert_eq!(rows(&v, &[p]), vec![vec![json!(["Ann"]), json!("Ann")]]);
        let p = json!({"resourceType": "Patient", "name": [{"given": ["Ann", "Bea"]}]});
        let e = evaluate_resource(&v, &p).unwrap_err().to_string();
        assert_eq!(
            e,
            "select[0].column[1] (one): the path returned 2 values but the column is not a collection (set \"collection\": true)"
        );
    }
}
