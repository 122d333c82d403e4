//! Evaluation of the AST. A collection is a `Vec<Item>`; items borrow from the resource (or
//! the view, for literals and constants) so navigating a large resource copies nothing.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::Variable;
use super::boundary::{self, End};
use super::parser::{BinaryOp, Function, Node, NodeKind};
use super::types::{choice_type, matches_type};

/// One item of a collection, with its FHIR type when known (choice elements, literals,
/// constants and computed values), used by `ofType()` and the boundary functions.
#[derive(Debug, Clone)]
pub(crate) struct Item<'a> {
    value: Cow<'a, Value>,
    fhir_type: Option<&'static str>,
}

impl<'a> Item<'a> {
    pub(crate) fn borrowed(value: &'a Value) -> Self {
        Item::typed(value, None)
    }

    fn typed(value: &'a Value, fhir_type: Option<&'static str>) -> Self {
        Item {
            value: Cow::Borrowed(value),
            fhir_type,
        }
    }

    fn owned(value: Value, fhir_type: Option<&'static str>) -> Self {
        Item {
            value: Cow::Owned(value),
            fhir_type,
        }
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }

    pub(crate) fn into_value(self) -> Value {
        self.value.into_owned()
    }
}

/// What an expression can see besides its focus.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The resource being flattened (`%resource`).
    pub(crate) resource: &'a Value,
    /// The view's constants.
    pub(crate) variables: &'a [Variable],
    /// `%rowIndex`: the position of the focus in the collection being iterated.
    pub(crate) row_index: usize,
}

#[derive(Debug)]
pub(crate) struct EvalError {
    pub(crate) position: usize,
    pub(crate) message: String,
}

type Collection<'a> = Vec<Item<'a>>;
type EvalResult<'a> = Result<Collection<'a>, EvalError>;

fn fail(node: &Node, message: impl Into<String>) -> EvalError {
    EvalError {
        position: node.pos,
        message: message.into(),
    }
}

fn boolean<'a>(b: bool) -> Item<'a> {
    Item::owned(Value::Bool(b), Some("boolean"))
}

/// The focus as a collection. A JSON `null` focus is the empty collection: `null` is never a
/// FHIR value (navigation skips it), and it stands for "no focus" in forEachOrNull's null row.
fn focus<'a>(this: &Item<'a>) -> Collection<'a> {
    if this.value().is_null() {
        Vec::new()
    } else {
        vec![this.clone()]
    }
}

/// Evaluates `node` with `this` as the focus (`$this`, and the input of a leading name or
/// function).
pub(crate) fn eval<'a>(node: &'a Node, this: &Item<'a>, env: &Env<'a>) -> EvalResult<'a> {
    match &node.kind {
        NodeKind::Literal { value, fhir_type } => Ok(vec![Item::typed(value, Some(fhir_type))]),
        NodeKind::Empty => Ok(Vec::new()),
        NodeKind::This => Ok(focus(this)),
        NodeKind::Env(name) => match variable(name, env) {
            Some(item) => Ok(vec![item]),
            None => Err(fail(node, format!("unknown constant %{name}"))),
        },
        NodeKind::Member { base: None, name } => {
            // A leading resource type selects the focus itself (`Patient.name.family`).
            let value = this.value();
            if value.get("resourceType").and_then(Value::as_str) == Some(name)
                && value.get(name).is_none()
            {
                return Ok(vec![this.clone()]);
            }
            Ok(children(&focus(this), name))
        }
        NodeKind::Member {
            base: Some(base),
            name,
        } => Ok(children(&eval(base, this, env)?, name)),
        NodeKind::Call {
            base,
            function,
            args,
        } => {
            let input = match base {
                Some(base) => eval(base, this, env)?,
                None => focus(this),
            };
            call(node, function, args, input, this, env)
        }
        NodeKind::Index { base, index } => {
            let collection = eval(base, this, env)?;
            let index_value = eval(index, this, env)?;
            let position = match index_value.as_slice() {
                [] => return Ok(Vec::new()),
                [one] => one.value().as_i64(),
                _ => None,
            }
            .ok_or_else(|| fail(index, "an index must be a single integer"))?;
            Ok(usize::try_from(position)
                .ok()
                .and_then(|p| collection.into_iter().nth(p))
                .into_iter()
                .collect())
        }
        NodeKind::Negate(operand) => {
            let Some(item) = single(eval(operand, this, env)?, node, "unary '-'")? else {
                return Ok(Vec::new());
            };
            let negated = match number(item.value()) {
                Some(Num::Int(i)) => i.checked_neg().map(Num::Int),
                Some(Num::Dec(d)) => Some(Num::Dec(-d)),
                None => return Err(fail(node, "unary '-' expects a number")),
            };
            Ok(negated.and_then(Num::into_item).into_iter().collect())
        }
        NodeKind::Binary { op, left, right } => binary(node, *op, left, right, this, env),
    }
}

/// The external constants a node refers to, with their positions.
pub(crate) fn collect_env_refs<'n>(node: &'n Node, found: &mut Vec<(&'n str, usize)>) {
    match &node.kind {
        NodeKind::Env(name) => found.push((name, node.pos)),
        NodeKind::Literal { .. } | NodeKind::Empty | NodeKind::This => {}
        NodeKind::Member { base, .. } => {
            if let Some(base) = base {
                collect_env_refs(base, found);
            }
        }
        NodeKind::Call { base, args, .. } => {
            if let Some(base) = base {
                collect_env_refs(base, found);
            }
            for arg in args {
                collect_env_refs(arg, found);
            }
        }
        NodeKind::Index { base, index } => {
            collect_env_refs(base, found);
            collect_env_refs(index, found);
        }
        NodeKind::Negate(operand) => collect_env_refs(operand, found),
        NodeKind::Binary { left, right, .. } => {
            collect_env_refs(left, found);
            collect_env_refs(right, found);
        }
    }
}

fn variable<'a>(name: &str, env: &Env<'a>) -> Option<Item<'a>> {
    match name {
        "rowIndex" => Some(Item::owned(
            Value::from(env.row_index as u64),
            Some("integer"),
        )),
        "resource" | "rootResource" => Some(Item::borrowed(env.resource)),
        _ => env
            .variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| Item::typed(&v.value, v.fhir_type)),
    }
}

/// The children named `name` of every item, arrays flattened. When no element has that exact
/// name, a choice element `name[x]` (e.g. `valueQuantity` for `value`) is looked for, and its
/// type recorded from the suffix.
fn children<'a>(input: &[Item<'a>], name: &str) -> Collection<'a> {
    let mut out = Vec::new();
    for item in input {
        match &item.value {
            Cow::Borrowed(value) => {
                each_child(value, name, |child, ty| out.push(Item::typed(child, ty)));
            }
            Cow::Owned(value) => {
                each_child(value, name, |child, ty| {
                    out.push(Item::owned(child.clone(), ty));
                });
            }
        }
    }
    out
}

fn each_child<'v>(
    value: &'v Value,
    name: &str,
    mut emit: impl FnMut(&'v Value, Option<&'static str>),
) {
    let Value::Object(map) = value else {
        return;
    };
    // JSON `null`s only pad arrays of primitives that carry extensions in `_name`.
    let mut flatten = |child: &'v Value, ty| match child {
        Value::Array(elements) => elements
            .iter()
            .filter(|e| !e.is_null())
            .for_each(|e| emit(e, ty)),
        Value::Null => {}
        other => emit(other, ty),
    };
    if let Some(child) = map.get(name) {
        flatten(child, None);
        return;
    }
    for (key, child) in map {
        if let Some(ty) = key.strip_prefix(name).and_then(choice_type) {
            flatten(child, Some(ty));
        }
    }
}

fn call<'a>(
    node: &'a Node,
    function: &'a Function,
    args: &'a [Node],
    input: Collection<'a>,
    this: &Item<'a>,
    env: &Env<'a>,
) -> EvalResult<'a> {
    let result = match function {
        Function::Where => {
            let criteria = &args[0];
            let mut kept = Vec::new();
            for item in input {
                if to_bool(eval(criteria, &item, env)?, criteria)? == Some(true) {
                    kept.push(item);
                }
            }
            kept
        }
        Function::Exists => {
            let found = match args.first() {
                None => !input.is_empty(),
                Some(criteria) => {
                    let mut found = false;
                    for item in &input {
                        if to_bool(eval(criteria, item, env)?, criteria)? == Some(true) {
                            found = true;
                            break;
                        }
                    }
                    found
                }
            };
            vec![boolean(found)]
        }
        Function::Empty => vec![boolean(input.is_empty())],
        Function::First => input.into_iter().take(1).collect(),
        Function::Not => match to_bool(input, node)? {
            Some(b) => vec![boolean(!b)],
            None => Vec::new(),
        },
        Function::Join => {
            let separator = match args.first() {
                Some(arg) => single_string(eval(arg, this, env)?, arg, "the separator of join()")?
                    .unwrap_or_default(),
                None => String::new(),
            };
            let mut parts = Vec::with_capacity(input.len());
            for item in &input {
                parts
                    .push(text(item.value()).ok_or_else(|| {
                        fail(node, "join() expects strings, numbers or booleans")
                    })?);
            }
            vec![Item::owned(
                Value::String(parts.join(&separator)),
                Some("string"),
            )]
        }
        Function::OfType(wanted) => input
            .into_iter()
            .filter(|item| matches_type(item.value(), item.fhir_type, wanted))
            .collect(),
        Function::Extension => {
            let url_arg = &args[0];
            let Some(url) =
                single_string(eval(url_arg, this, env)?, url_arg, "the url of extension()")?
            else {
                return Ok(Vec::new());
            };
            children(&input, "extension")
                .into_iter()
                .filter(|e| e.value().get("url").and_then(Value::as_str) == Some(url.as_str()))
                .collect()
        }
        Function::GetResourceKey => input
            .iter()
            .filter_map(|item| resource_key(item.value()))
            .map(|key| Item::owned(Value::String(key.to_owned()), Some("string")))
            .collect(),
        Function::GetReferenceKey(wanted) => input
            .iter()
            .filter_map(|item| reference_key(item.value(), wanted.as_deref()))
            .map(|key| Item::owned(Value::String(key.to_owned()), Some("string")))
            .collect(),
        Function::LowBoundary => boundary_of(input, End::Low, node, "lowBoundary()")?,
        Function::HighBoundary => boundary_of(input, End::High, node, "highBoundary()")?,
    };
    Ok(result)
}

/// The key of a resource: its `id`. Keys are per resource type (tables are too), and equal
/// the keys `getReferenceKey()` extracts from references to the resource.
fn resource_key(value: &Value) -> Option<&str> {
    value.get("resourceType")?;
    value.get("id")?.as_str()
}

/// The id in a reference `[base/]Type/id[/_history/version]`, if its type is `wanted` (or
/// any type when `wanted` is `None`). Contained (`#id`) and `urn:` references have no key.
fn reference_key<'v>(value: &'v Value, wanted: Option<&str>) -> Option<&'v str> {
    let reference = value.get("reference")?.as_str()?;
    let reference = reference.split("/_history/").next()?;
    let mut segments = reference.rsplit('/');
    let id = segments.next()?;
    let resource_type = segments.next()?;
    let plausible = !id.is_empty() && resource_type.starts_with(|c: char| c.is_ascii_uppercase());
    (plausible && wanted.is_none_or(|w| w == resource_type)).then_some(id)
}

fn boundary_of<'a>(input: Collection<'a>, end: End, node: &Node, function: &str) -> EvalResult<'a> {
    let Some(item) = single(input, node, function)? else {
        return Ok(Vec::new());
    };
    Ok(boundary::boundary(item.value(), item.fhir_type, end)
        .map(|(value, ty)| Item::owned(value, Some(ty)))
        .into_iter()
        .collect())
}

/// FHIRPath's singleton evaluation in a boolean context: empty is unknown, a single boolean is
/// itself, any other single item is true, and several items are an error.
fn to_bool(items: Collection<'_>, node: &Node) -> Result<Option<bool>, EvalError> {
    match items.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.value().as_bool().unwrap_or(true))),
        many => Err(fail(
            node,
            format!(
                "expected a single boolean, found a collection of {} items",
                many.len()
            ),
        )),
    }
}

/// The only item of a collection, `None` if it is empty, an error if it has several.
fn single<'a>(
    items: Collection<'a>,
    node: &Node,
    what: &str,
) -> Result<Option<Item<'a>>, EvalError> {
    if items.len() > 1 {
        return Err(fail(
            node,
            format!(
                "{what} expects a single item, found a collection of {} items",
                items.len()
            ),
        ));
    }
    Ok(items.into_iter().next())
}

fn single_string(
    items: Collection<'_>,
    node: &Node,
    what: &str,
) -> Result<Option<String>, EvalError> {
    match single(items, node, what)? {
        None => Ok(None),
        Some(item) => match item.value() {
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(fail(node, format!("{what} must be a string"))),
        },
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A noun phrase for the JSON kind of a value, for error messages (never the value itself).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Dec(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Dec(d) => d,
        }
    }

    fn into_item<'a>(self) -> Option<Item<'a>> {
        match self {
            Num::Int(i) => Some(Item::owned(Value::from(i), Some("integer"))),
            Num::Dec(d) => {
                Number::from_f64(d).map(|n| Item::owned(Value::Number(n), Some("decimal")))
            }
        }
    }
}

fn number(value: &Value) -> Option<Num> {
    let n = match value {
        Value::Number(n) => n,
        _ => return None,
    };
    match n.as_i64() {
        Some(i) => Some(Num::Int(i)),
        None => n.as_f64().map(Num::Dec),
    }
}

/// Equality of two items: numbers by value (`1 = 1.0`), objects and lists element by element.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => match (number(a), number(b)) {
            (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
            (Some(x), Some(y)) => x.as_f64() == y.as_f64(),
            _ => false,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| values_equal(v, w))
        }
        _ => a == b,
    }
}

fn binary<'a>(
    node: &'a Node,
    op: BinaryOp,
    left: &'a Node,
    right: &'a Node,
    this: &Item<'a>,
    env: &Env<'a>,
) -> EvalResult<'a> {
    match op {
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::Implies => {
            logic(op, left, right, this, env)
        }
        BinaryOp::Eq | BinaryOp::NotEq => {
            let l = eval(left, this, env)?;
            let r = eval(right, this, env)?;
            if l.is_empty() || r.is_empty() {
                return Ok(Vec::new());
            }
            let equal = l.len() == r.len()
                && l.iter()
                    .zip(&r)
                    .all(|(a, b)| values_equal(a.value(), b.value()));
            Ok(vec![boolean(equal == (op == BinaryOp::Eq))])
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let what = format!("operator '{}'", op.symbol());
            let l = single(eval(left, this, env)?, node, &what)?;
            let r = single(eval(right, this, env)?, node, &what)?;
            let (Some(a), Some(b)) = (l, r) else {
                return Ok(Vec::new());
            };
            let ordering = compare(a.value(), b.value()).ok_or_else(|| {
                fail(
                    node,
                    format!(
                        "{what} cannot compare {} with {}",
                        kind(a.value()),
                        kind(b.value())
                    ),
                )
            })?;
            let result = match op {
                BinaryOp::Lt => ordering == Ordering::Less,
                BinaryOp::Le => ordering != Ordering::Greater,
                BinaryOp::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            };
            Ok(vec![boolean(result)])
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
            let what = format!("operator '{}'", op.symbol());
            let l = single(eval(left, this, env)?, node, &what)?;
            let r = single(eval(right, this, env)?, node, &what)?;
            let (Some(a), Some(b)) = (l, r) else {
                return Ok(Vec::new());
            };
            if let (Some(x), Some(y)) = (number(a.value()), number(b.value())) {
                return Ok(arithmetic(op, x, y)
                    .and_then(Num::into_item)
                    .into_iter()
                    .collect());
            }
            if let (BinaryOp::Add, Value::String(x), Value::String(y)) = (op, a.value(), b.value())
            {
                return Ok(vec![Item::owned(
                    Value::String(format!("{x}{y}")),
                    Some("string"),
                )]);
            }
            Err(fail(
                node,
                format!(
                    "{what} cannot be applied to {} and {}",
                    kind(a.value()),
                    kind(b.value())
                ),
            ))
        }
    }
}

/// Three-valued logic; the right operand is not evaluated when the left decides the result.
fn logic<'a>(
    op: BinaryOp,
    left: &'a Node,
    right: &'a Node,
    this: &Item<'a>,
    env: &Env<'a>,
) -> EvalResult<'a> {
    let l = to_bool(eval(left, this, env)?, left)?;
    match (op, l) {
        (BinaryOp::And, Some(false)) => return Ok(vec![boolean(false)]),
        (BinaryOp::Or, Some(true)) | (BinaryOp::Implies, Some(false)) => {
            return Ok(vec![boolean(true)]);
        }
        _ => {}
    }
    let r = to_bool(eval(right, this, env)?, right)?;
    let result = match op {
        BinaryOp::And => match (l, r) {
            (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        BinaryOp::Or => match (l, r) {
            (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        BinaryOp::Xor => match (l, r) {
            (Some(a), Some(b)) => Some(a != b),
            _ => None,
        },
        // Implies: left is true or unknown here.
        _ => match (l, r) {
            (Some(true), r) => r,
            (None, Some(true)) => Some(true),
            _ => None,
        },
    };
    Ok(result.map(boolean).into_iter().collect())
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => match (number(a)?, number(b)?) {
            (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
            (x, y) => x.as_f64().partial_cmp(&y.as_f64()),
        },
    }
}

/// Integer arithmetic stays integer (overflow gives empty, as FHIRPath says); `/` and any
/// decimal operand give a decimal, rounded to the places the operands justify so that
/// `0.1 + 0.2` is `0.3`, not `0.30000000000000004`. Division by zero gives empty.
fn arithmetic(op: BinaryOp, x: Num, y: Num) -> Option<Num> {
    if let (Num::Int(a), Num::Int(b)) = (x, y) {
        let exact = match op {
            BinaryOp::Add => a.checked_add(b),
            BinaryOp::Sub => a.checked_sub(b),
            BinaryOp::Mul => a.checked_mul(b),
            _ => None,
        };
        if op != BinaryOp::Div {
            return exact.map(Num::Int);
        }
    }
    let (a, b) = (x.as_f64(), y.as_f64());
    let places = |n: Num| match n {
        Num::Int(_) => Some(0),
        Num::Dec(d) => boundary::decimal_places(d),
    };
    let (result, places) = match op {
        BinaryOp::Add => (a + b, places(x).zip(places(y)).map(|(p, q)| p.max(q))),
        BinaryOp::Sub => (a - b, places(x).zip(places(y)).map(|(p, q)| p.max(q))),
        BinaryOp::Mul => (a * b, places(x).zip(places(y)).map(|(p, q)| p + q)),
        _ if b == 0.0 => return None,
        _ => (a / b, None),
    };
    let result = match places {
        Some(places) => format!("{result:.places$}", places = places as usize)
            .parse()
            .unwrap_or(result),
        None => result,
    };
    Some(Num::Dec(result)).filter(|n| n.as_f64().is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhirpath::Expression;
    use serde_json::json;

    fn eval_on(resource: &Value, source: &str) -> Vec<Value> {
        Expression::parse(source)
            .unwrap()
            .evaluate(resource)
            .unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn eval_err(resource: &Value, source: &str) -> String {
        Expression::parse(source)
            .unwrap()
            .evaluate(resource)
            .unwrap_err()
            .to_string()
    }

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "active": true,
            "deceasedBoolean": false,
            "name": [
                {"use": "official", "family": "Alpha", "given": ["A1", "A2"]},
                {"use": "usual", "family": "Beta", "given": [null, "B1"]}
            ],
            "managingOrganization": {"reference": "https://x.org/fhir/Organization/o1/_history/2"},
            "extension": [
                {"url": "http://e/simple", "valueCode": "F"},
                {"url": "http://e/complex", "extension": [{"url": "part", "valueCoding": {"code": "c"}}]}
            ]
        })
    }

    #[test]
    fn navigates_and_flattens() {
        let p = patient();
        assert_eq!(
            eval_on(&p, "name.family"),
            vec![json!("Alpha"), json!("Beta")]
        );
        assert_eq!(
            eval_on(&p, "name.given"),
            vec![json!("A1"), json!("A2"), json!("B1")]
        );
        assert_eq!(eval_on(&p, "Patient.name[1].family"), vec![json!("Beta")]);
        assert_eq!(eval_on(&p, "name[2].family"), Vec::<Value>::new());
        assert_eq!(eval_on(&p, "name.nothing"), Vec::<Value>::new());
        assert_eq!(eval_on(&p, "$this.id"), vec![json!("p1")]);
        assert_eq!(eval_on(&p, "%resource.id"), vec![json!("p1")]);
    }

    #[test]
    fn choice_elements_resolve_and_carry_their_type() {
        let obs = json!({"resourceType": "Observation", "valueQuantity": {"value": 1.5},
                         "effectiveDateTime": "2020-01-01", "valueSet": "not-a-choice"});
        assert_eq!(
            eval_on(&obs, "value.ofType(Quantity).value"),
            vec![json!(1.5)]
        );
        assert_eq!(eval_on(&obs, "value.value"), vec![json!(1.5)]);
        assert_eq!(eval_on(&obs, "value.ofType(string)"), Vec::<Value>::new());
        assert_eq!(
            eval_on(&obs, "effective.ofType(dateTime)"),
            vec![json!("2020-01-01")]
        );
        assert_eq!(eval_on(&obs, "effective.ofType(date)"), Vec::<Value>::new());
        assert_eq!(
            eval_on(&obs, "effective.lowBoundary()"),
            vec![json!("2020-01-01T00:00:00.000+14:00")]
        );
        let p = patient();
        assert_eq!(eval_on(&p, "deceased.ofType(boolean)"), vec![json!(false)]);
    }

    #[test]
    fn where_exists_empty_first_not_join() {
        let p = patient();
        assert_eq!(
            eval_on(&p, "name.where(use = 'usual').family"),
            vec![json!("Beta")]
        );
        assert_eq!(eval_on(&p, "name.exists(use = 'temp')"), vec![json!(false)]);
        assert_eq!(eval_on(&p, "name.exists()"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "telecom.empty()"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "name.first().given.first()"), vec![json!("A1")]);
        assert_eq!(eval_on(&p, "active.not()"), vec![json!(false)]);
        assert_eq!(eval_on(&p, "telecom.not()"), Vec::<Value>::new());
        assert_eq!(
            eval_on(&p, "name.given.join(', ')"),
            vec![json!("A1, A2, B1")]
        );
        assert_eq!(eval_on(&p, "telecom.join('-')"), vec![json!("")]);
        assert_eq!(
            eval_on(&p, "name.where($this.use = 'official').given.join()"),
            vec![json!("A1A2")]
        );
    }

    #[test]
    fn extensions_and_keys() {
        let p = patient();
        assert_eq!(
            eval_on(&p, "extension('http://e/simple').value.ofType(code)"),
            vec![json!("F")]
        );
        assert_eq!(
            eval_on(
                &p,
                "extension('http://e/complex').extension('part').value.ofType(Coding).code"
            ),
            vec![json!("c")]
        );
        assert_eq!(eval_on(&p, "getResourceKey()"), vec![json!("p1")]);
        assert_eq!(
            eval_on(&p, "managingOrganization.getReferenceKey()"),
            vec![json!("o1")]
        );
        assert_eq!(
            eval_on(&p, "managingOrganization.getReferenceKey(Organization)"),
            vec![json!("o1")]
        );
        assert_eq!(
            eval_on(&p, "managingOrganization.getReferenceKey(Patient)"),
            Vec::<Value>::new()
        );
        let contained = json!({"reference": "#c1"});
        assert_eq!(
            eval_on(&contained, "getReferenceKey()"),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn three_valued_logic() {
        let p = patient();
        let cases = [
            ("true and {}", None),
            ("false and {}", Some(false)),
            ("{} or true", Some(true)),
            ("{} or false", None),
            ("true xor false", Some(true)),
            ("false implies {}", Some(true)),
            ("{} implies true", Some(true)),
            ("true implies {}", None),
            ("name.exists() and active", Some(true)),
            // A single non-boolean item counts as true.
            ("id and true", Some(true)),
        ];
        for (source, expected) in cases {
            let expected: Vec<Value> = expected.map(Value::Bool).into_iter().collect();
            assert_eq!(eval_on(&p, source), expected, "{source}");
        }
    }

    #[test]
    fn comparison_and_equality() {
        let p = patient();
        assert_eq!(eval_on(&p, "1 = 1.0"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "'a' != 'b'"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "name.family = 'Alpha'"), vec![json!(false)]);
        assert_eq!(eval_on(&p, "name.family = name.family"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "telecom = 'x'"), Vec::<Value>::new());
        assert_eq!(eval_on(&p, "2 < 2.5"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "@2020-01-02 >= @2020-01-01"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "'abc' <= 'abd'"), vec![json!(true)]);
        assert_eq!(eval_on(&p, "telecom < 3"), Vec::<Value>::new());
    }

    #[test]
    fn arithmetic_keeps_integers_and_rounds_decimals() {
        let p = patient();
        assert_eq!(eval_on(&p, "2 + 3 * 4"), vec![json!(14)]);
        assert_eq!(eval_on(&p, "3 / 2"), vec![json!(1.5)]);
        assert_eq!(eval_on(&p, "0.1 + 0.2"), vec![json!(0.3)]);
        assert_eq!(eval_on(&p, "1.1 * 1.1"), vec![json!(1.21)]);
        assert_eq!(eval_on(&p, "-(2 - 5)"), vec![json!(3)]);
        assert_eq!(eval_on(&p, "1 / 0"), Vec::<Value>::new());
        assert_eq!(eval_on(&p, "9223372036854775807 + 1"), Vec::<Value>::new());
        assert_eq!(eval_on(&p, "'a' + 'b'"), vec![json!("ab")]);
    }

    #[test]
    fn evaluation_errors_name_positions_not_values() {
        let p = patient();
        let e = eval_err(&p, "name.family < 'Z'");
        assert!(e.contains("position 12"), "{e}");
        assert!(e.contains("collection of 2 items"), "{e}");
        assert!(!e.contains("Alpha") && !e.contains("Beta"), "{e}");

        let e = eval_err(&p, "id + 1");
        assert!(
            e.contains("cannot be applied to a string and a number"),
            "{e}"
        );
        assert!(!e.contains("p1"), "{e}");

        let e = eval_err(&p, "name.where(given)");
        assert!(e.contains("collection of 2 items"), "{e}");

        let e = eval_err(&p, "%nope");
        assert!(e.contains("unknown constant %nope"), "{e}");

        let e = eval_err(&p, "name.join()");
        assert!(e.contains("join() expects strings"), "{e}");
    }

    #[test]
    fn row_index_and_constants_come_from_the_environment() {
        let p = patient();
        let variables = [Variable {
            name: "use".into(),
            value: json!("usual"),
            fhir_type: Some("code"),
        }];
        let env = Env {
            resource: &p,
            variables: &variables,
            row_index: 4,
        };
        let expr = Expression::parse("name.where(use = %use).family & ''").ok();
        assert!(expr.is_none(), "'&' is not supported");
        let expr = Expression::parse("name.where(use = %use).family").unwrap();
        let got: Vec<Value> = expr
            .eval(&Item::borrowed(&p), &env)
            .unwrap()
            .into_iter()
            .map(Item::into_value)
            .collect();
        assert_eq!(got, vec![json!("Beta")]);
        let expr = Expression::parse("%rowIndex + 1").unwrap();
        let got = expr.eval(&Item::borrowed(&p), &env).unwrap();
        assert_eq!(got[0].value(), &json!(5));
    }
}
