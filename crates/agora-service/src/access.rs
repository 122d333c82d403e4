//! The access record: what the query service writes for every query before its answer
//! leaves, and for every refusal or failure.
//!
//! [`AccessLog`] is the seam: the hub's implementation is the tamper-evident audit log's
//! [`crate::audit::AuditAccessLog`] (group commit; durable when the call returns).

use std::future::Future;
use std::pin::Pin;

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
