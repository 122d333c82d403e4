//! The FHIRPath subset SQL-on-FHIR v2 requires, evaluated over `serde_json::Value` resources
//! without a FHIR structure model.
//!
//! Supported: path navigation (with choice elements: `value.ofType(Quantity)` reads
//! `valueQuantity`), indexers `[n]`, `$this`, `%constants` and `%rowIndex`, `%resource`;
//! literals (string, integer, decimal, boolean, `@date`/`@dateTime`/`@T time`, `{}`);
//! `and`, `or`, `xor`, `implies`; `=`, `!=`, `<`, `<=`, `>`, `>=`; `+`, `-`, `*`, `/` and unary
//! minus; the functions `where`, `exists`, `empty`, `first`, `not`, `join`, `ofType`,
//! `extension`, `getResourceKey`, `getReferenceKey`, `lowBoundary`, `highBoundary`.
//! Anything else is refused when the expression is parsed.
//!
//! Known simplifications, all from the lack of a structure model: the type of an ordinary
//! element is inferred from its JSON shape (choice elements, literals and constants carry
//! their exact type); dates and times compare as strings (exact for values of the same
//! precision and time zone); decimals are `f64`.

mod boundary;
mod engine;
mod lexer;
mod parser;
mod types;

use serde_json::Value;

use crate::error::{Error, Result};
pub(crate) use engine::{Env, Item};
pub(crate) use types::known_type;

/// A parsed FHIRPath expression.
///
/// ```
/// use agora_fhir::fhirpath::Expression;
/// use serde_json::json;
///
/// let expr = Expression::parse("name.where(use = 'official').family")?;
/// let patient = json!({"resourceType": "Patient", "name": [
///     {"use": "usual", "family": "A"}, {"use": "official", "family": "B"}]});
/// assert_eq!(expr.evaluate(&patient)?, vec![json!("B")]);
/// # Ok::<(), agora_fhir::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    root: parser::Node,
}

impl Expression {
    /// Parses `source`, refusing syntax errors and anything outside the supported subset.
    pub fn parse(source: &str) -> Result<Expression> {
        let root = parser::parse(source).map_err(|e| Error::Syntax {
            expression: source.to_owned(),
            position: e.position,
            message: e.message,
        })?;
        Ok(Expression {
            source: source.to_owned(),
            root,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with `resource` as focus (and `%resource`), no constants and
    /// `%rowIndex` 0, returning the resulting collection.
    pub fn evaluate(&self, resource: &Value) -> Result<Vec<Value>> {
        let env = Env {
            resource,
            variables: &[],
            row_index: 0,
        };
        let items = self.eval(&Item::borrowed(resource), &env)?;
        Ok(items.into_iter().map(Item::into_value).collect())
    }

    /// Evaluates with `focus` as `$this` in `env`.
    pub(crate) fn eval<'a>(&'a self, focus: &Item<'a>, env: &Env<'a>) -> Result<Vec<Item<'a>>> {
        engine::eval(&self.root, focus, env).map_err(|e| Error::FhirPath {
            expression: self.source.clone(),
            position: e.position,
            message: e.message,
        })
    }

    /// The external constants (`%name`) the expression refers to, with their positions.
    pub(crate) fn constants_used(&self) -> Vec<(&str, usize)> {
        let mut found = Vec::new();
        engine::collect_env_refs(&self.root, &mut found);
        found
    }
}

/// A named value an expression can refer to as `%name`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variable {
    pub(crate) name: String,
    pub(crate) value: Value,
    pub(crate) fhir_type: Option<&'static str>,
}

/// The names every expression may use without declaring them as constants.
pub(crate) const BUILTIN_VARIABLES: &[&str] = &["rowIndex", "resource", "rootResource"];

/// A syntax error inside the FHIRPath modules, before the expression text is attached.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub(crate) position: usize,
    pub(crate) message: String,
}

impl SyntaxError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            position,
            message: message.into(),
        }
    }
}
