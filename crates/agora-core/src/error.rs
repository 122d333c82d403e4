/// The few kinds of failure every Agora error maps to.
///
/// The server turns a kind into an HTTP status, a SQLSTATE or a Flight status in exactly one
/// place, so library crates never choose protocol codes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something malformed; repeating it will fail again.
    InvalidInput,
    /// The object does not exist *and* the caller may know that.
    NotFound,
    /// The caller may not do this. Never reveals whether the object exists.
    PermissionDenied,
    /// The request conflicts with the current state (e.g. a concurrent commit won).
    Conflict,
    /// A resource limit (memory, time, result size) was reached.
    ResourceExhausted,
    /// A dependency (store, database) is temporarily unavailable; retrying may succeed.
    Unavailable,
    /// A bug or a broken invariant.
    Internal,
}

/// Implemented by every crate's error type.
pub trait HasKind {
    /// The kind this error maps to, which alone decides the status a front answers with.
    fn kind(&self) -> ErrorKind;
}
