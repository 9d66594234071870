//! Domain events: what the use cases announce after a change commits, for the
//! real-time gateway (on this and, through a shared bus, every other server
//! node) to deliver.
//!
//! Events are plain values keyed by room and user: an adapter can carry them
//! between processes without the core knowing. Every event of a change
//! counted in a room's `version` carries the version after the change, so a
//! subscriber can put a room's events back in commit order whatever order
//! they arrive in.

use crate::Reactors;
use async_trait::async_trait;
use chat_domain::{
    Membership, Message, MessageId, Role, Room, RoomId, SenderInfo, SessionId, Timestamp, User,
    UserId,
};

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A room was created with these first members (version 1; not counted).
    RoomCreated { room: Room, member_ids: Vec<UserId> },
    /// A message was sent (its `version` is the room's version after it).
    MessageNew { message: Message },
    /// A message was edited. `reactors` say who made each of its reactions,
    /// so each recipient can be told its own `me`.
    MessageUpdated {
        message: Message,
        reactors: Vec<Reactors>,
    },
    /// A message was deleted (soft: it keeps its id and seq).
    MessageDeleted {
        room_id: RoomId,
        id: MessageId,
        seq: u64,
        version: u64,
    },
    /// `user_id` added (`added`) or removed a reaction; `reactions` are the
    /// message's counts after it, in list order.
    ReactionUpdated {
        room_id: RoomId,
        message_id: MessageId,
        emoji: String,
        user_id: UserId,
        added: bool,
        reactions: Vec<(String, u32)>,
        version: u64,
    },
    /// The room's name or description changed.
    RoomUpdated { room: Room },
    /// The room is gone; these were its members.
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
    /// A read marker moved (ephemeral: not counted).
    Read {
        room_id: RoomId,
        user_id: UserId,
        seq: u64,
    },
    /// Someone is typing in a room (ephemeral).
    Typing { room_id: RoomId, user: SenderInfo },
    /// A user came online or went offline; `room_ids` are the rooms they are
    /// in, whose members are the ones to tell (ephemeral).
    Presence {
        user_id: UserId,
        online: bool,
        last_seen_at: Option<Timestamp>,
        room_ids: Vec<RoomId>,
    },
    /// A login session ended (logout or refresh-token reuse): its sockets close.
    SessionEnded {
        user_id: UserId,
        session_id: SessionId,
    },
}

impl Event {
    /// The room the event belongs to, if it belongs to one.
    pub fn room_id(&self) -> Option<RoomId> {
        match self {
            Event::RoomCreated { room, .. } | Event::RoomUpdated { room } => Some(room.id),
            Event::MessageNew { message } | Event::MessageUpdated { message, .. } => {
                Some(message.room_id)
            }
            Event::MemberJoined { membership, .. } => Some(membership.room_id),
            Event::RoomDeleted { room_id, .. }
            | Event::MemberUpdated { room_id, .. }
            | Event::MemberLeft { room_id, .. }
            | Event::MessageDeleted { room_id, .. }
            | Event::ReactionUpdated { room_id, .. }
            | Event::Read { room_id, .. }
            | Event::Typing { room_id, .. } => Some(*room_id),
            Event::Presence { .. } | Event::SessionEnded { .. } => None,
        }
    }

    /// Which nodes of a deployment need the event: those listening to one
    /// of these topics, or every node. A node listens to the rooms that
    /// have members connected to it and to the users connected to it (see
    /// [`Interest`]); a shared bus sends an event only where it is needed.
    ///
    /// - A new room goes everywhere: no node listens to it yet.
    /// - A join goes to the room and to the one who joined, whose other
    ///   devices may be on a node that did not listen to the room before.
    /// - Presence goes everywhere: each node answers "is this user online"
    ///   for anyone who asks over REST, not only for its own listeners.
    /// - A session's end goes to its user.
    /// - Everything else goes to its room.
    pub fn audience(&self) -> Audience {
        match self {
            Event::RoomCreated { .. } | Event::Presence { .. } => Audience::Everyone,
            Event::MemberJoined { membership, .. } => Audience::Topics(vec![
                Topic::Room(membership.room_id),
                Topic::User(membership.user_id),
            ]),
            Event::SessionEnded { user_id, .. } => Audience::Topics(vec![Topic::User(*user_id)]),
            other => match other.room_id() {
                Some(room) => Audience::Topics(vec![Topic::Room(room)]),
                None => Audience::Everyone,
            },
        }
    }

    /// The room version after the change, for the events of counted changes.
    pub fn version(&self) -> Option<u64> {
        match self {
            Event::MessageNew { message } | Event::MessageUpdated { message, .. } => {
                Some(message.version)
            }
            Event::RoomUpdated { room } => Some(room.version),
            Event::MemberJoined { version, .. }
            | Event::MemberUpdated { version, .. }
            | Event::MemberLeft { version, .. }
            | Event::MessageDeleted { version, .. }
            | Event::ReactionUpdated { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// What a node listens to on a shared bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// The events of a room.
    Room(RoomId),
    /// The events addressed to a user (see [`Event::audience`]).
    User(UserId),
}

/// Which nodes need an event: see [`Event::audience`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Topics(Vec<Topic>),
}

/// How a subscriber tells a shared bus which topics it needs, so that the
/// other nodes' events for rooms and users it has nobody for never reach
/// it. Counted per topic: a topic is listened to while anyone wants it.
/// A bus that delivers everything anyway has no `Interest`.
pub trait Interest: Send + Sync + 'static {
    /// Starts (or counts one more reason for) listening to `topic`.
    fn listen(&self, topic: Topic);
    /// One reason fewer to listen to `topic`; at none, it stops.
    fn unlisten(&self, topic: Topic);
}

/// Where events go once their change has committed, and where the gateway
/// hears them from.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Hands the event on for delivery. MUST NOT fail the caller's change,
    /// which has already committed: an adapter that cannot deliver logs it.
    async fn publish(&self, event: Event);
    /// Every event published from now on, by this process or (for a shared
    /// bus) any other, in the order this process receives them.
    fn subscribe(&self) -> Box<dyn EventStream>;
}

/// A subscription to an [`EventBus`].
#[async_trait]
pub trait EventStream: Send + 'static {
    /// The next event; `None` once the bus is gone.
    async fn next(&mut self) -> Option<Event>;

    /// Where to say which topics this subscriber needs, on a bus that
    /// narrows what it sends by topic (each node's own events always
    /// come). `None`: every event comes.
    fn interest(&self) -> Option<std::sync::Arc<dyn Interest>> {
        None
    }
}

/// Who is online on any node. The gateway counts its own connections and
/// tells this port when a user's first connection on this node opens and
/// when their last one here closes; the port says whether that was their
/// first or last on every node, so that `presence` is announced once for
/// the whole deployment (a second device on another node changes nothing).
#[async_trait]
pub trait Presence: Send + Sync + 'static {
    /// `user`'s first connection on this node opened. `true` when no node
    /// held one before.
    async fn arrived(&self, user: UserId) -> bool;
    /// `user`'s last connection on this node closed. `true` when no node
    /// holds one now.
    async fn left(&self, user: UserId) -> bool;
    /// Users whose last connections were on nodes that died (stopped
    /// without saying goodbye), now held by no node: each is returned once,
    /// to one caller in the deployment, which announces them offline.
    /// Called every few seconds; it also tells the others this node lives.
    async fn orphans(&self) -> Vec<UserId>;
}

/// [`Presence`] for one node: this node's first and last connections are
/// everyone's, and no other node can die.
#[derive(Debug, Default, Clone, Copy)]
pub struct OneNode;

#[async_trait]
impl Presence for OneNode {
    async fn arrived(&self, _: UserId) -> bool {
        true
    }
    async fn left(&self, _: UserId) -> bool {
        true
    }
    async fn orphans(&self) -> Vec<UserId> {
        Vec::new()
    }
}

/// Rate limits shared by every node of a deployment (GCRA), so that
/// several nodes do not multiply anyone's allowance.
#[async_trait]
pub trait SharedLimits: Send + Sync + 'static {
    /// Takes one request from `key`'s allowance: `per_minute` sustained,
    /// bursts of `burst`. `Some(Ok(()))` to go ahead, `Some(Err(wait))` to
    /// come back after `wait`, `None` when the shared store cannot answer
    /// now (the caller falls back to limits of its own).
    async fn take(
        &self,
        key: &str,
        per_minute: u32,
        burst: u32,
    ) -> Option<Result<(), std::time::Duration>>;
}
