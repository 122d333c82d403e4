//! The access record: what the query service writes for every query before its answer
//! leaves, and for every refusal or failure.
//!
//! [`AccessLog`] is the seam: today [`StoreAccessLog`] inserts one row per event into the
//! metadata store (durable when the call returns); the tamper-evident audit log will
//! implement the same trait.

use std::future::Future;
use std::pin::Pin;

use agora_govern::MetaStore;
pub use agora_govern::{AccessEvent, AccessOutcome, AccessTarget};

use crate::Result;

/// Where access events go. `record` must not return before the event is durable: the
/// service releases an answer only after it returns `Ok`.
pub trait AccessLog: Send + Sync + std::fmt::Debug {
    /// Records one event durably.
    fn record<'a>(
        &'a self,
        event: &'a AccessEvent,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// Access events as rows of the metadata store's `access_events` table.
#[derive(Debug, Clone)]
pub struct StoreAccessLog {
    meta: MetaStore,
}

impl StoreAccessLog {
    /// A log writing to `meta`.
    pub fn new(meta: MetaStore) -> Self {
        Self { meta }
    }
}

impl AccessLog for StoreAccessLog {
    fn record<'a>(
        &'a self,
        event: &'a AccessEvent,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            self.meta.record_access(event).await?;
            Ok(())
        })
    }
}
