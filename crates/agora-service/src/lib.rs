//! The query service and the hub context: **the one path from a principal's SQL to data.**
//!
//! Every front — the `agora` command line, the HTTP API, the quality profiler, and the
//! coming Arrow Flight SQL, PostgreSQL protocol, portal console and federation — opens a
//! [`Hub`] and reaches data only through its [`QueryService`]:
//!
//! ```text
//!   authenticate ─► open(target) ─► plan(sql) ─► execute() ─► Answer (stream of batches)
//!    credential      release: operators   read-only guard,      output step, access
//!    → principal     permit: its scope    policy rewriting,     event durable before
//!                                         schema known          the first batch leaves
//! ```
//!
//! Fronts depend on this crate, never on `agora-query`, `agora-lake` or the metadata store
//! (`agora-govern`) directly for data; `ci/dependency-rule.py` checks it from
//! `cargo metadata`. Sessions, grants and answers have no public constructors:
//!
//! ```compile_fail,E0451
//! // A front cannot make up an answer: its fields are private.
//! let answer = agora_service::Answer { stream: todo!(), failure: None };
//! ```
//!
//! ```compile_fail,E0451
//! // Nor a principal the service did not authenticate.
//! let who = agora_service::Authenticated { principal: todo!(), kind: todo!() };
//! ```
//!
//! ```no_run
//! # async fn f() -> agora_service::Result<()> {
//! use agora_service::{Credential, Front, Hub, QueryLimits, Target};
//! let hub = Hub::open(&agora_core::DataDir::new("./agora-data")).await?;
//! let who = hub.query().authenticate(Credential::DataDirectory { user: "alice" }).await?;
//! let target = Target::Release { dataset: "demo".parse().unwrap(), release: None };
//! let session = hub.query().open(&who, target, Front::Cli, QueryLimits::default()).await?;
//! let planned = session.plan("SELECT COUNT(*) AS n FROM person").await?;
//! println!("{:?}", planned.schema());
//! let rows = planned.execute().await?.collect().await?;
//! println!("{} row(s)", rows.num_rows());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod access;
pub mod audit;
pub mod catalogue;
mod error;
pub mod exports;
pub mod governance;
mod hub;
mod output;
mod profiles;
mod query;

use agora_core::ErrorKind;

pub use agora_lake::{ReleaseManifest, TableEntry};
pub use agora_query::{
    Disclosure, MAX_EXPRESSION_DEPTH, MAX_PLAN_DEPTH, MAX_SQL_BYTES, Parameter, QueryLimits,
    QueryOutput, count_parameters, default_target_partitions,
};
pub use error::{Error, Result};
pub use hub::{Hub, Initialized};
pub use query::{
    Answer, Authenticated, Credential, CredentialKind, DEFAULT_MAX_RUNNING_PER_PRINCIPAL, Front,
    PlannedQuery, QueryService, QuerySession, Target,
};

/// The stable name of an error kind, as fronts show it (`{"error": {"kind": ...}}`) and as
/// access events record it.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::Conflict => "conflict",
        ErrorKind::ResourceExhausted => "resource_exhausted",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Internal => "internal",
    }
}
