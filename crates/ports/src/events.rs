//! Domain events: what the use cases announce after a change commits, for the
//! real-time gateway (and, later, other server nodes) to deliver.
//!
//! Events are plain values keyed by room and user, so an adapter can carry
//! them between processes without the core knowing.

use async_trait::async_trait;
use chat_domain::{Membership, Message, Role, Room, RoomId, SessionId, User, UserId};

/// Something that happened. Counted changes carry the room's version after
/// the change.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A room was created with these first members (version 1; not counted).
    RoomCreated {
        room: Room,
        member_ids: Vec<UserId>,
    },
    MessageNew {
        message: Message,
    },
    RoomUpdated {
        room: Room,
    },
    RoomDeleted {
        room_id: RoomId,
        member_ids: Vec<UserId>,
    },
    MemberJoined {
        membership: Membership,
        user: User,
        version: u64,
    },
    MemberUpdated {
        room_id: RoomId,
        user_id: UserId,
        role: Role,
        version: u64,
    },
    MemberLeft {
        room_id: RoomId,
        user_id: UserId,
        version: u64,
    },
    Read {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// A login session ended (logout or refresh-token reuse): its sockets close.
    SessionEnded {
        user_id: UserId,
        session_id: SessionId,
    },
}

/// Where events go once their change has committed.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Hands the event on for delivery. MUST NOT fail the caller's change,
    /// which has already committed: an adapter that cannot deliver logs it.
    async fn publish(&self, event: Event);
}
