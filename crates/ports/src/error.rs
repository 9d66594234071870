//! The error types the repositories return: [`StoreError`] for every port
//! call, and [`SendRefused`] / [`AppendError`] for a send, which the store
//! itself decides.

use chat_domain::{MessageKind, RoomKind};

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which rule a [`StoreError::Conflict`] broke. An enum, not a string, so
/// that a caller matching on it cannot misspell one into a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conflict {
    /// Another user has this username (ignoring case).
    Username,
    /// Another user has this email (ignoring case).
    Email,
    /// The pair of users has a direct room already.
    DirectPair,
    /// An attachment with this id exists already.
    Attachment,
    /// The id is taken (a user, session, room or message id).
    Id,
    /// A precondition of a [`crate::RoomOp`] no longer holds: the room
    /// changed since the caller looked, so the caller should look again.
    Stale,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conflict::Username => "username",
            Conflict::Email => "email",
            Conflict::DirectPair => "direct_pair",
            Conflict::Attachment => "attachment",
            Conflict::Id => "id",
            Conflict::Stale => "stale",
        })
    }
}

/// What went wrong in a store. Adapters map their own errors onto this; no
/// driver type ever crosses a port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing the call names does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a stated precondition did not hold.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A page cursor this store did not give out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The store cannot be reached right now, or is too busy to take more
    /// (a full write queue); retrying later may work.
    #[error("store unavailable")]
    Unavailable(#[source] Source),
    /// Anything else: a bug or a broken invariant.
    #[error("store failure")]
    Other(#[source] Source),
}

impl StoreError {
    pub fn unavailable(e: impl Into<Source>) -> Self {
        Self::Unavailable(e.into())
    }

    pub fn other(e: impl Into<Source>) -> Self {
        Self::Other(e.into())
    }

    /// The conflict of a [`crate::RoomOp`] precondition that no longer holds.
    pub fn stale() -> Self {
        Self::Conflict(Conflict::Stale)
    }

    /// Whether this is the conflict of a precondition that no longer holds.
    pub fn is_stale(&self) -> bool {
        matches!(self, Self::Conflict(Conflict::Stale))
    }
}

/// Why a store refused one send. Each refusal is that send's own: when a
/// store commits sends in batches, one refused send never fails another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    /// No such room (or it was deleted).
    #[error("no such room")]
    NoRoom,
    /// The sender is not a member of the room at commit time. `room_kind`
    /// lets the caller answer as the room's visibility requires.
    #[error("the sender is not a member of the room")]
    NotAMember { room_kind: RoomKind },
    /// A direct room where one side blocks the other.
    #[error("one side of the direct room blocks the other")]
    Blocked,
    /// `reply_to` names no message of this room.
    #[error("reply_to names no message of this room")]
    NoSuchReply,
    /// The attachment is unknown, or not one the sender uploaded.
    #[error("no such attachment")]
    NoSuchAttachment,
    /// The kind the sender asked for does not fit the attachment's type.
    #[error("a {kind:?} message cannot carry a file of type {content_type}")]
    KindMismatch {
        kind: MessageKind,
        content_type: String,
    },
    /// A message with this id exists already.
    #[error("message id taken")]
    IdTaken,
}

/// What [`crate::MessageRepo::append`] fails with: a refusal of this send,
/// or the store failing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Refused(#[from] SendRefused),
    #[error(transparent)]
    Store(#[from] StoreError),
}
