//! Governance state and the metadata store behind it.
//!
//! The metadata store is SQLite (embedded default, WAL, foreign keys on) or PostgreSQL
//! (multi-node), chosen by URL; both run the same portable SQL through `sqlx::Any`, with
//! embedded, ordered migrations. It holds:
//!
//! * the dataset registry and the release table — **inserting a release row is the commit
//!   point of an ingest** — and the person-key registry that makes pseudonyms collision-free
//!   (`store`);
//! * **accounts** ([`accounts`]): users with roles, argon2id passwords with failed-login
//!   throttling, sessions, OpenID Connect identities; **API tokens** (hashes only) tied to
//!   users;
//! * **project applications** and their review workflow ([`projects`]: the transition
//!   matrix, who may do what) with due dates per review step ([`deadlines`]);
//! * **data permits** ([`permits`]): the single source of truth for access, versioned,
//!   effective (and ineffective) at once — [`MetaStore::active_permits_for`] and
//!   [`MetaStore::permit_for_query`] are what the query layer asks;
//! * the **public project registry** ([`registry`]), generated from applications and
//!   permits;
//! * the **citizen opt-out registry** ([`optout`]): hub person keys only, for a query-time
//!   anti-join ([`MetaStore::opted_out_keys`]);
//! * operator-written **catalogue metadata** per dataset ([`catalogue`]);
//! * **export requests** ([`exports`]): result files a researcher asks to take out, their
//!   content hash and every decision on them;
//! * the **audit log** ([`audit`]): every access, governance and operations event as an
//!   entry of `agora-audit`'s Merkle tree, appended in the transaction of the change it
//!   records, and the signed tree heads;
//! * each project's **privacy budget ledger** ([`dp_budget`]): differential-privacy spends
//!   per query, refused once the permit's budget is spent, a repeated question free.
//!
//! Everything public is also re-exported at the crate root.
//!
//! Authorization decisions that concern governance objects are taken here, from a
//! [`Principal`]: a caller who may not see an object gets [`Error::NotFound`], exactly as if
//! it did not exist. Time comes from the store's [`Clock`] (injectable for tests). No error
//! message or log line carries a data value, a secret or a citizen identifier.
//!
//! Not here: data (the lake), query sessions (`agora-query`), HTTP (`agora-http`) and the
//! OpenID Connect protocol (`agora-auth`).
//!
//! ```no_run
//! # async fn f() -> agora_govern::Result<()> {
//! let store = agora_govern::MetaStore::open_sqlite("./agora-data/meta.db".as_ref()).await?;
//! for ds in store.list_datasets().await? {
//!     println!("{} (latest release {:?})", ds.name, ds.latest_release);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod access;
pub mod accounts;
pub mod audit;
pub mod catalogue;
mod clock;
mod config;
pub mod deadlines;
pub mod dp_budget;
mod error;
pub mod exports;
mod migrate;
pub mod optout;
pub mod permits;
pub mod projects;
pub mod registry;
pub mod scram;
mod store;
mod tokens;

pub use access::{AccessEvent, AccessOutcome, AccessTarget};
pub use accounts::{NewUser, SessionToken, User};
pub use audit::{ArchivedSegment, AuditFilter, NewAuditEntry};
pub use catalogue::{AccessRights, DatasetDescription, DatasetMetadata};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{GovernConfig, LoginPolicy, PasswordPolicy, PermitPolicy, SessionPolicy};
pub use deadlines::{
    Deadlines, Period, Step, StepDeadline, add_period, add_working_days, is_working_day,
};
pub use dp_budget::{BudgetSpend, BudgetStatus};
pub use error::{Error, Result};
pub use exports::{
    ExportDecision, ExportEvent, ExportEventKind, ExportFormat, ExportRequest, ExportStatus,
    NewExport,
};
pub use optout::{OPT_OUT_RESERVATION, OptOutChannel, OptOutReceipt, OptOutStatus, RecordedOptOut};
pub use permits::{
    DatasetScope, DisclosureProfile, DisclosureRules, DpPolicy, OutputPolicy, PERMIT_SCHEMA,
    Permit, PermitAmendment, PermitGrant, PermitStatus, PermitTerms, PermitVersion, Precision,
    ReleasePolicy, ReleaseSelector, RowFilter, TableScope,
};
pub use projects::{
    Application, ApplicationEvent, ApplicationForm, ApplicationState, DateRange, EventKind,
    MAX_DURATION_MONTHS, Party, PotentialIdentifier, RequestedDataset, RequestedTable, TRANSITIONS,
    TransitionRule, transition_rule,
};
pub use registry::{
    NewProjectResult, ProjectResult, RegistryDataset, RegistryEntry, RegistryStatus,
};
pub use store::{DatasetInfo, MetaStore, NewRelease, ReleaseInfo, SourceFingerprint};
pub use tokens::{ApiTokenInfo, Principal, Role, token_id};

/// Current UTC time in the one textual form the store uses (sorts like time).
pub fn now_utc() -> String {
    clock::format_ts(chrono::Utc::now())
}

/// A fresh secret token: `prefix` + 256 random bits in hex.
pub(crate) fn random_token(prefix: &str) -> String {
    random_hex(prefix, 32)
}

/// A fresh unguessable id: `prefix` + 128 random bits in hex.
pub(crate) fn random_id(prefix: &str) -> String {
    random_hex(prefix, 16)
}

fn random_hex(prefix: &str, n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}
