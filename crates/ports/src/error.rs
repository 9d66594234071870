//! The one error type every repository returns.

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a store. Adapters map their own errors onto this; no
/// driver type ever crosses a port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing the call names does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a stated precondition did not hold. `what` names
    /// it: `"username"`, `"email"`, `"direct_pair"`, `"attachment"`, `"id"`
    /// (a taken id), or [`StoreError::STALE`].
    #[error("conflict: {what}")]
    Conflict { what: &'static str },
    /// A page cursor this store did not give out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The store cannot be reached right now; retrying later may work.
    #[error("store unavailable")]
    Unavailable(#[source] Source),
    /// Anything else: a bug or a broken invariant.
    #[error("store failure")]
    Other(#[source] Source),
}

impl StoreError {
    /// The `what` of a conflict on a [`crate::RoomOp`] precondition: the room
    /// changed since the caller looked, so the caller should look again.
    pub const STALE: &'static str = "stale";

    pub fn unavailable(e: impl Into<Source>) -> Self {
        Self::Unavailable(e.into())
    }

    pub fn other(e: impl Into<Source>) -> Self {
        Self::Other(e.into())
    }

    /// Whether this is the conflict of a precondition that no longer holds.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Conflict { what } if *what == Self::STALE)
    }
}
