//! Agora's FHIR flattening: [SQL-on-FHIR v2](https://sql-on-fhir.org) ViewDefinitions applied
//! to FHIR R4 resources given as `serde_json::Value`, producing rows for a table.
//!
//! What it is:
//! - [`ViewDefinition::from_json`] parses and **validates** a view (unknown elements, missing
//!   names or paths, duplicate columns, mismatched `unionAll` branches, undeclared
//!   `%constants`, FHIRPath syntax...), with errors naming the element (`select[1].column[0]:
//!   missing name`). Every FHIRPath expression is parsed once, here.
//! - [`evaluate`] / [`evaluate_resource`] flatten resources: `column`, nested `select`,
//!   `forEach`, `forEachOrNull`, `repeat`, `unionAll`, `where`, `constant`, `%rowIndex`.
//!   A [`Row`] holds one JSON value per column of [`ViewDefinition::columns`], in order;
//!   [`Column`] gives each column's name, declared FHIR type and collection flag, so a caller
//!   can build a typed table.
//! - [`fhirpath`]: the FHIRPath subset the specification requires, evaluated without a FHIR
//!   structure model (see that module for the few consequences).
//! - [`conformance::run_suite`] runs the official conformance suite; the crate passes it.
//!
//! What it is not: it reads no files (besides the conformance runner's), no NDJSON and no
//! Bundles, and writes no Parquet — that is `agora-ingest`'s job. It never logs, and its
//! error messages name view elements, expressions and input positions (`resource #3`), never
//! a value read from a resource, nor a resource id: these are health records.
//!
//! ```
//! use agora_fhir::{ViewDefinition, evaluate};
//! use serde_json::json;
//!
//! let view = ViewDefinition::from_json(&json!({
//!     "resource": "Patient",
//!     "select": [
//!         {"column": [{"name": "id", "path": "getResourceKey()"}]},
//!         {"forEach": "name", "column": [{"name": "family", "path": "family", "type": "string"}]}
//!     ]
//! }))?;
//! let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]});
//! let rows = evaluate(&view, &[patient])?;
//! assert_eq!(view.columns()[1].name, "family");
//! assert_eq!(rows[0].values(), &[json!("p1"), json!("Doe")]);
//! # Ok::<(), agora_fhir::Error>(())
//! ```

#![warn(missing_docs)]

pub mod conformance;
mod error;
mod eval;
pub mod fhirpath;
mod view;

pub use error::{Error, Result};
pub use eval::{Row, evaluate, evaluate_resource};
pub use view::{Column, ViewDefinition};
