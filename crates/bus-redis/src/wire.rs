//! Events on the wire between nodes: JSON, one envelope per event, naming
//! the node that published it (a node skips its own, which it delivered
//! locally already).
//!
//! Domain types derive no serde (they must not know how they travel), so
//! this module mirrors each one it carries and converts both ways. Values
//! read back go through the domain's own constructors: a malformed message
//! from the wire is an error, never a panic or an invalid value.

use chat_domain::{
    Attachment, AttachmentId, DisplayName, Email, Membership, Message, MessageId, MessageKind,
    ReactionSummary, Role, Room, RoomDescription, RoomId, RoomKind, RoomName, SenderInfo,
    SessionId, Timestamp, User, UserId, Username,
};
use chat_ports::{Event, Reactors};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What goes over the channel.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing node.
    pub node: Uuid,
    /// The envelope's place in its node's publishing order, from 1 (0:
    /// not numbered). One event may go to several channels; a node that
    /// listens to more than one of them keeps the first copy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub n: u64,
    /// When it was published (Unix milliseconds, the publisher's clock),
    /// for the receivers' lag; 0 from a publisher that did not say.
    #[serde(default)]
    pub sent_ms: i64,
    pub event: WireEvent,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a message from the wire could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not an event envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid {0} in an event")]
    Invalid(&'static str),
}

/// Encodes an event published by `node` now, not yet numbered (see
/// [`numbered`]).
pub fn encode(node: Uuid, event: &Event) -> Result<Vec<u8>, WireError> {
    Ok(serde_json::to_vec(&Envelope {
        node,
        n: 0,
        sent_ms: chrono::Utc::now().timestamp_millis(),
        event: WireEvent::from(event),
    })?)
}

/// The envelope `encoded` by [`encode`], numbered `n`: the number is put in
/// front, so that it can be given in publishing order after the event was
/// encoded wherever it was published.
pub fn numbered(n: u64, encoded: &[u8]) -> Vec<u8> {
    let rest = encoded.strip_prefix(b"{").unwrap_or(encoded);
    let mut out = Vec::with_capacity(encoded.len() + 24);
    out.extend_from_slice(format!("{{\"n\":{n},").as_bytes());
    out.extend_from_slice(rest);
    out
}

/// An envelope read back.
#[derive(Debug)]
pub struct Received {
    pub node: Uuid,
    pub n: u64,
    /// Unix ms by the publisher's clock; 0 if unknown.
    pub sent_ms: i64,
    pub event: Event,
}

/// Decodes an envelope: the publishing node and the event.
pub fn decode(bytes: &[u8]) -> Result<(Uuid, Event), WireError> {
    decode_all(bytes).map(|r| (r.node, r.event))
}

/// Decodes an envelope with everything it says.
pub fn decode_all(bytes: &[u8]) -> Result<Received, WireError> {
    let envelope: Envelope = serde_json::from_slice(bytes)?;
    Ok(Received {
        node: envelope.node,
        n: envelope.n,
        sent_ms: envelope.sent_ms,
        event: envelope.event.try_into()?,
    })
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireEvent {
    RoomCreated {
        room: WireRoom,
        member_ids: Vec<Uuid>,
    },
    MessageNew {
        message: WireMessage,
    },
    MessageUpdated {
        message: WireMessage,
        reactors: Vec<WireReactors>,
    },
    MessageDeleted {
        room_id: Uuid,
        id: Uuid,
        seq: u64,
        version: u64,
    },
    ReactionUpdated {
        room_id: Uuid,
        message_id: Uuid,
        emoji: String,
        user_id: Uuid,
        added: bool,
        reactions: Vec<(String, u32)>,
        version: u64,
    },
    RoomUpdated {
        room: WireRoom,
    },
    RoomDeleted {
        room_id: Uuid,
        member_ids: Vec<Uuid>,
    },
    MemberJoined {
        membership: WireMembership,
        user: WireUser,
        version: u64,
    },
    MemberUpdated {
        room_id: Uuid,
        user_id: Uuid,
        role: WireRole,
        version: u64,
    },
    MemberLeft {
        room_id: Uuid,
        user_id: Uuid,
        version: u64,
    },
    Read {
        room_id: Uuid,
        user_id: Uuid,
        seq: u64,
    },
    Typing {
        room_id: Uuid,
        user: WireSender,
    },
    Presence {
        user_id: Uuid,
        online: bool,
        last_seen_at: Option<Timestamp>,
        room_ids: Vec<Uuid>,
    },
    SessionEnded {
        user_id: Uuid,
        session_id: Uuid,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireRole {
    Member,
    Admin,
    Owner,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireRoomKind {
    Public,
    Private,
    Direct,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireMessageKind {
    Text,
    Image,
    Video,
    Audio,
    File,
    System,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireRoom {
    id: Uuid,
    kind: WireRoomKind,
    name: String,
    description: String,
    created_by: Uuid,
    created_at: Timestamp,
    member_count: u32,
    last_seq: u64,
    version: u64,
    direct_pair: Option<(Uuid, Uuid)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireMembership {
    room_id: Uuid,
    user_id: Uuid,
    role: WireRole,
    joined_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireUser {
    id: Uuid,
    username: String,
    email: String,
    display_name: String,
    avatar: Option<Uuid>,
    created_at: Timestamp,
    last_seen_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireSender {
    id: Uuid,
    username: String,
    display_name: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireAttachment {
    id: Uuid,
    uploader: Uuid,
    filename: String,
    content_type: String,
    size: u64,
    created_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireReaction {
    emoji: String,
    count: u32,
    me: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireMessage {
    id: Uuid,
    room_id: Uuid,
    seq: u64,
    sender: WireSender,
    kind: WireMessageKind,
    content: String,
    attachment: Option<WireAttachment>,
    reply_to_id: Option<Uuid>,
    reactions: Vec<WireReaction>,
    created_at: Timestamp,
    edited_at: Option<Timestamp>,
    deleted: bool,
    version: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireReactors {
    emoji: String,
    user_ids: Vec<Uuid>,
}

// ---------------------------------------------------------------- to the wire

impl From<Role> for WireRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => Self::Member,
            Role::Admin => Self::Admin,
            Role::Owner => Self::Owner,
        }
    }
}

impl From<WireRole> for Role {
    fn from(r: WireRole) -> Self {
        match r {
            WireRole::Member => Self::Member,
            WireRole::Admin => Self::Admin,
            WireRole::Owner => Self::Owner,
        }
    }
}

impl From<RoomKind> for WireRoomKind {
    fn from(k: RoomKind) -> Self {
        match k {
            RoomKind::Public => Self::Public,
            RoomKind::Private => Self::Private,
            RoomKind::Direct => Self::Direct,
        }
    }
}

impl From<WireRoomKind> for RoomKind {
    fn from(k: WireRoomKind) -> Self {
        match k {
            WireRoomKind::Public => Self::Public,
            WireRoomKind::Private => Self::Private,
            WireRoomKind::Direct => Self::Direct,
        }
    }
}

impl From<MessageKind> for WireMessageKind {
    fn from(k: MessageKind) -> Self {
        match k {
            MessageKind::Text => Self::Text,
            MessageKind::Image => Self::Image,
            MessageKind::Video => Self::Video,
            MessageKind::Audio => Self::Audio,
            MessageKind::File => Self::File,
            MessageKind::System => Self::System,
        }
    }
}

impl From<WireMessageKind> for MessageKind {
    fn from(k: WireMessageKind) -> Self {
        match k {
            WireMessageKind::Text => Self::Text,
            WireMessageKind::Image => Self::Image,
            WireMessageKind::Video => Self::Video,
            WireMessageKind::Audio => Self::Audio,
            WireMessageKind::File => Self::File,
            WireMessageKind::System => Self::System,
        }
    }
}

impl From<&Room> for WireRoom {
    fn from(r: &Room) -> Self {
        Self {
            id: r.id.0,
            kind: r.kind.into(),
            name: r.name.as_str().to_owned(),
            description: r.description.as_str().to_owned(),
            created_by: r.created_by.0,
            created_at: r.created_at,
            member_count: r.member_count,
            last_seq: r.last_seq,
            version: r.version,
            direct_pair: r.direct_pair.map(|(a, b)| (a.0, b.0)),
        }
    }
}

impl From<&SenderInfo> for WireSender {
    fn from(s: &SenderInfo) -> Self {
        Self {
            id: s.id.0,
            username: s.username.as_str().to_owned(),
            display_name: s.display_name.clone(),
        }
    }
}

impl From<&Message> for WireMessage {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.0,
            room_id: m.room_id.0,
            seq: m.seq,
            sender: (&m.sender).into(),
            kind: m.kind.into(),
            content: m.content.clone(),
            attachment: m.attachment.as_ref().map(|a| WireAttachment {
                id: a.id.0,
                uploader: a.uploader.0,
                filename: a.filename.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                created_at: a.created_at,
            }),
            reply_to_id: m.reply_to_id.map(|r| r.0),
            reactions: m
                .reactions
                .iter()
                .map(|r| WireReaction {
                    emoji: r.emoji.clone(),
                    count: r.count,
                    me: r.me,
                })
                .collect(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted,
            version: m.version,
        }
    }
}

fn ids<T>(v: &[T], id: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    v.iter().map(id).collect()
}

impl From<&Event> for WireEvent {
    fn from(e: &Event) -> Self {
        match e {
            Event::RoomCreated { room, member_ids } => Self::RoomCreated {
                room: room.into(),
                member_ids: ids(member_ids, |u| u.0),
            },
            Event::MessageNew { message } => Self::MessageNew {
                message: message.into(),
            },
            Event::MessageUpdated { message, reactors } => Self::MessageUpdated {
                message: message.into(),
                reactors: reactors
                    .iter()
                    .map(|r| WireReactors {
                        emoji: r.emoji.clone(),
                        user_ids: ids(&r.user_ids, |u| u.0),
                    })
                    .collect(),
            },
            Event::MessageDeleted {
                room_id,
                id,
                seq,
                version,
            } => Self::MessageDeleted {
                room_id: room_id.0,
                id: id.0,
                seq: *seq,
                version: *version,
            },
            Event::ReactionUpdated {
                room_id,
                message_id,
                emoji,
                user_id,
                added,
                reactions,
                version,
            } => Self::ReactionUpdated {
                room_id: room_id.0,
                message_id: message_id.0,
                emoji: emoji.clone(),
                user_id: user_id.0,
                added: *added,
                reactions: reactions.clone(),
                version: *version,
            },
            Event::RoomUpdated { room } => Self::RoomUpdated { room: room.into() },
            Event::RoomDeleted {
                room_id,
                member_ids,
            } => Self::RoomDeleted {
                room_id: room_id.0,
                member_ids: ids(member_ids, |u| u.0),
            },
            Event::MemberJoined {
                membership,
                user,
                version,
            } => Self::MemberJoined {
                membership: WireMembership {
                    room_id: membership.room_id.0,
                    user_id: membership.user_id.0,
                    role: membership.role.into(),
                    joined_at: membership.joined_at,
                },
                user: WireUser {
                    id: user.id.0,
                    username: user.username.as_str().to_owned(),
                    email: user.email.as_str().to_owned(),
                    display_name: user.display_name.as_str().to_owned(),
                    avatar: user.avatar.map(|a| a.0),
                    created_at: user.created_at,
                    last_seen_at: user.last_seen_at,
                },
                version: *version,
            },
            Event::MemberUpdated {
                room_id,
                user_id,
                role,
                version,
            } => Self::MemberUpdated {
                room_id: room_id.0,
                user_id: user_id.0,
                role: (*role).into(),
                version: *version,
            },
            Event::MemberLeft {
                room_id,
                user_id,
                version,
            } => Self::MemberLeft {
                room_id: room_id.0,
                user_id: user_id.0,
                version: *version,
            },
            Event::Read {
                room_id,
                user_id,
                seq,
            } => Self::Read {
                room_id: room_id.0,
                user_id: user_id.0,
                seq: *seq,
            },
            Event::Typing { room_id, user } => Self::Typing {
                room_id: room_id.0,
                user: user.into(),
            },
            Event::Presence {
                user_id,
                online,
                last_seen_at,
                room_ids,
            } => Self::Presence {
                user_id: user_id.0,
                online: *online,
                last_seen_at: *last_seen_at,
                room_ids: ids(room_ids, |r| r.0),
            },
            Event::SessionEnded {
                user_id,
                session_id,
            } => Self::SessionEnded {
                user_id: user_id.0,
                session_id: session_id.0,
            },
        }
    }
}

// ---------------------------------------------------------------- from the wire

impl TryFrom<WireRoom> for Room {
    type Error = WireError;

    fn try_from(r: WireRoom) -> Result<Self, WireError> {
        Ok(Room {
            id: RoomId(r.id),
            kind: r.kind.into(),
            name: RoomName::parse(&r.name).map_err(|_| WireError::Invalid("room name"))?,
            description: RoomDescription::parse(&r.description)
                .map_err(|_| WireError::Invalid("room description"))?,
            created_by: UserId(r.created_by),
            created_at: r.created_at,
            member_count: r.member_count,
            last_seq: r.last_seq,
            version: r.version,
            direct_pair: r.direct_pair.map(|(a, b)| (UserId(a), UserId(b))),
        })
    }
}

impl TryFrom<WireSender> for SenderInfo {
    type Error = WireError;

    fn try_from(s: WireSender) -> Result<Self, WireError> {
        Ok(SenderInfo {
            id: UserId(s.id),
            username: Username::parse(&s.username).map_err(|_| WireError::Invalid("username"))?,
            display_name: s.display_name,
        })
    }
}

impl TryFrom<WireMessage> for Message {
    type Error = WireError;

    fn try_from(m: WireMessage) -> Result<Self, WireError> {
        Ok(Message {
            id: MessageId(m.id),
            room_id: RoomId(m.room_id),
            seq: m.seq,
            sender: m.sender.try_into()?,
            kind: m.kind.into(),
            content: m.content,
            attachment: m.attachment.map(|a| Attachment {
                id: AttachmentId(a.id),
                uploader: UserId(a.uploader),
                filename: a.filename,
                content_type: a.content_type,
                size: a.size,
                created_at: a.created_at,
            }),
            reply_to_id: m.reply_to_id.map(MessageId),
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionSummary {
                    emoji: r.emoji,
                    count: r.count,
                    me: r.me,
                })
                .collect(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted,
            version: m.version,
        })
    }
}

fn user_ids(v: Vec<Uuid>) -> Vec<UserId> {
    v.into_iter().map(UserId).collect()
}

impl TryFrom<WireEvent> for Event {
    type Error = WireError;

    fn try_from(e: WireEvent) -> Result<Self, WireError> {
        Ok(match e {
            WireEvent::RoomCreated { room, member_ids } => Event::RoomCreated {
                room: room.try_into()?,
                member_ids: user_ids(member_ids),
            },
            WireEvent::MessageNew { message } => Event::MessageNew {
                message: message.try_into()?,
            },
            WireEvent::MessageUpdated { message, reactors } => Event::MessageUpdated {
                message: message.try_into()?,
                reactors: reactors
                    .into_iter()
                    .map(|r| Reactors {
                        emoji: r.emoji,
                        user_ids: user_ids(r.user_ids),
                    })
                    .collect(),
            },
            WireEvent::MessageDeleted {
                room_id,
                id,
                seq,
                version,
            } => Event::MessageDeleted {
                room_id: RoomId(room_id),
                id: MessageId(id),
                seq,
                version,
            },
            WireEvent::ReactionUpdated {
                room_id,
                message_id,
                emoji,
                user_id,
                added,
                reactions,
                version,
            } => Event::ReactionUpdated {
                room_id: RoomId(room_id),
                message_id: MessageId(message_id),
                emoji,
                user_id: UserId(user_id),
                added,
                reactions,
                version,
            },
            WireEvent::RoomUpdated { room } => Event::RoomUpdated {
                room: room.try_into()?,
            },
            WireEvent::RoomDeleted {
                room_id,
                member_ids,
            } => Event::RoomDeleted {
                room_id: RoomId(room_id),
                member_ids: user_ids(member_ids),
            },
            WireEvent::MemberJoined {
                membership,
                user,
                version,
            } => Event::MemberJoined {
                membership: Membership {
                    room_id: RoomId(membership.room_id),
                    user_id: UserId(membership.user_id),
                    role: membership.role.into(),
                    joined_at: membership.joined_at,
                },
                user: User {
                    id: UserId(user.id),
                    username: Username::parse(&user.username)
                        .map_err(|_| WireError::Invalid("username"))?,
                    email: Email::parse(&user.email).map_err(|_| WireError::Invalid("email"))?,
                    display_name: DisplayName::parse(&user.display_name)
                        .map_err(|_| WireError::Invalid("display name"))?,
                    avatar: user.avatar.map(AttachmentId),
                    created_at: user.created_at,
                    last_seen_at: user.last_seen_at,
                },
                version,
            },
            WireEvent::MemberUpdated {
                room_id,
                user_id,
                role,
                version,
            } => Event::MemberUpdated {
                room_id: RoomId(room_id),
                user_id: UserId(user_id),
                role: role.into(),
                version,
            },
            WireEvent::MemberLeft {
                room_id,
                user_id,
                version,
            } => Event::MemberLeft {
                room_id: RoomId(room_id),
                user_id: UserId(user_id),
                version,
            },
            WireEvent::Read {
                room_id,
                user_id,
                seq,
            } => Event::Read {
                room_id: RoomId(room_id),
                user_id: UserId(user_id),
                seq,
            },
            WireEvent::Typing { room_id, user } => Event::Typing {
                room_id: RoomId(room_id),
                user: user.try_into()?,
            },
            WireEvent::Presence {
                user_id,
                online,
                last_seen_at,
                room_ids,
            } => Event::Presence {
                user_id: UserId(user_id),
                online,
                last_seen_at,
                room_ids: room_ids.into_iter().map(RoomId).collect(),
            },
            WireEvent::SessionEnded {
                user_id,
                session_id,
            } => Event::SessionEnded {
                user_id: UserId(user_id),
                session_id: SessionId(session_id),
            },
        })
    }
}
