//! The chat's domain: entities (users, rooms, memberships, messages), the value
//! objects that cannot be built invalid (usernames, emails, passwords, room names,
//! message content), and the rules of who may do what in a room.
//!
//! Everything here is synchronous and pure. This crate must not know about async
//! runtimes, HTTP, databases or serialisation formats: it is std plus `uuid`,
//! `chrono` and `thiserror`, and a test fails the build if that ever changes.

pub mod attachment;
pub mod ids;
pub mod message;
pub mod room;
pub mod rules;
pub mod text;
pub mod user;

pub use ids::{AttachmentId, MessageId, RoomId, SessionId, UserId};
pub use message::{
    Attachment, ClientMsgId, Emoji, HistoryQuery, Message, MessageContent, MessageKind, PageLimit,
    ReactionSummary, ReadMarker, SenderInfo,
};
pub use room::{Membership, Role, Room, RoomDescription, RoomKind, RoomName};
pub use user::{DisplayName, Email, GlobalRole, Login, Password, User, Username};

/// Timestamps are UTC instants everywhere in the domain.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
