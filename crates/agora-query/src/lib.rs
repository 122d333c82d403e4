//! The query layer: **the only crate that builds a DataFusion session.**
//!
//! A session is built from an operator's [`Grant`] on one release of one dataset
//! ([`Workspace`]), or from a researcher's data permit ([`PermitScope`] →
//! [`PermitWorkspace`]: only the permit's tables, columns and rows, opted-out persons
//! removed — see the `permit` module). Whatever the grant, the session:
//!
//! * sees only the tables of the granted release, read from the lake's manifest;
//! * can reach no storage but the lake (`agora://lake`): no local files, no URLs;
//! * accepts read-only SQL: no DDL, DML, `COPY` or `SET`;
//! * runs under a memory pool that spills to disk, a time limit and a result-row limit.
//!
//! ```text
//!  Grant ──► QueryEngine::workspace ──► SessionContext (tables of the release, lake-only store)
//!                  │
//!   SQL ──► parse (PostgreSQL dialect) ──► verify read-only ──► run
//! ```
//!
//! ```no_run
//! # async fn f(lake: agora_lake::Lake, grant: agora_query::Grant) -> agora_query::Result<()> {
//! use agora_query::{QueryEngine, QueryLimits};
//! let engine = QueryEngine::new(lake); // once per process
//! let ws = engine.workspace(grant, QueryLimits::default()).await?;
//! let out = ws.sql("SELECT COUNT(*) FROM person").await?;
//! println!("{} rows", out.num_rows());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod barrier;
mod disclosure;
mod error;
mod guard;
mod identifiers;
mod limits;
mod params;
mod permit;
mod pseudonym;
mod registry;
mod runtime;
mod workspace;

pub use disclosure::Disclosure;
pub use error::{Error, Result};
pub use limits::{MAX_EXPRESSION_DEPTH, MAX_PLAN_DEPTH, MAX_SQL_BYTES};
pub use params::{Parameter, bind_parameters, count_parameters};
pub use permit::{PERSON_KEY, PermitScope, PermitWorkspace};
pub use runtime::{QUERY_THREAD_STACK, on_query_runtime};
pub use workspace::{
    Grant, Planned, QueryEngine, QueryLimits, QueryOutput, QueryStream, Workspace,
    default_target_partitions,
};
