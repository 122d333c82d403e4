//! Governance state and the metadata store behind it.
//!
//! The metadata store is SQLite (embedded default, WAL, foreign keys on) or PostgreSQL
//! (multi-node), chosen by URL; both run the same portable SQL through `sqlx::Any`.
//! It holds the dataset registry, the release table — **inserting a release row is the commit
//! point of an ingest** — the person-key registry that makes pseudonyms collision-free, and
//! API tokens (hashes only).
//!
//! Not here: data (the lake), query sessions (`agora-query`), HTTP (`agora-server`).
//!
//! ```no_run
//! # async fn f() -> agora_govern::Result<()> {
//! let store = agora_govern::MetaStore::open_sqlite("./agora-data/meta.db".as_ref()).await?;
//! for ds in store.list_datasets().await? {
//!     println!("{} (latest release {:?})", ds.name, ds.latest_release);
//! }
//! # Ok(()) }
//! ```

mod error;
mod migrate;
mod store;
mod tokens;

pub use error::{Error, Result};
pub use store::{DatasetInfo, MetaStore, NewRelease, ReleaseInfo};
pub use tokens::{Principal, Role};

/// Current UTC time in the one textual form the store uses (sorts like time).
pub fn now_utc() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
