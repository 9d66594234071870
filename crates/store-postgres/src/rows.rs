//! Rows as diesel reads and writes them, and their conversions to and from
//! the domain. Domain types derive nothing from diesel; everything crosses
//! here, and a row the domain would refuse (a username that no longer parses,
//! a negative seq) is a broken invariant: `StoreError::Other`.

use chat_domain::{
    Attachment, AttachmentId, DisplayName, Email, Membership, Message, MessageId, MessageKind,
    ReactionSummary, Role, Room, RoomDescription, RoomId, RoomKind, RoomName, SenderInfo,
    Timestamp, User, UserId, Username,
};
use chat_ports::{RoomSummary, StoreError};
use diesel::prelude::*;
use uuid::Uuid;

use crate::schema::{attachments, memberships, messages, rooms, users};

/// A stored value the domain refuses.
pub(crate) fn corrupt(what: &'static str) -> StoreError {
    StoreError::other(format!("corrupt row: {what}"))
}

/// A count or sequence number from the database (`bigint`, never negative).
pub(crate) fn to_u64(n: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| corrupt(what))
}

/// A count or sequence number for the database. Values past `i64::MAX` are
/// out of reach of any real room.
pub(crate) fn to_i64(n: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::other(format!("{what} out of range")))
}

// ---------------------------------------------------------------- enums

pub(crate) fn role_str(role: Role) -> &'static str {
    role.as_str()
}

pub(crate) fn parse_role(s: &str) -> Result<Role, StoreError> {
    match s {
        "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        "owner" => Ok(Role::Owner),
        _ => Err(corrupt("memberships.role")),
    }
}

pub(crate) fn room_kind_str(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Public => "public",
        RoomKind::Private => "private",
        RoomKind::Direct => "direct",
    }
}

pub(crate) fn parse_room_kind(s: &str) -> Result<RoomKind, StoreError> {
    match s {
        "public" => Ok(RoomKind::Public),
        "private" => Ok(RoomKind::Private),
        "direct" => Ok(RoomKind::Direct),
        _ => Err(corrupt("rooms.kind")),
    }
}

pub(crate) fn message_kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::Video => "video",
        MessageKind::Audio => "audio",
        MessageKind::File => "file",
        MessageKind::System => "system",
    }
}

fn parse_message_kind(s: &str) -> Result<MessageKind, StoreError> {
    match s {
        "text" => Ok(MessageKind::Text),
        "image" => Ok(MessageKind::Image),
        "video" => Ok(MessageKind::Video),
        "audio" => Ok(MessageKind::Audio),
        "file" => Ok(MessageKind::File),
        "system" => Ok(MessageKind::System),
        _ => Err(corrupt("messages.kind")),
    }
}

// ---------------------------------------------------------------- users

/// A user without the password hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub avatar_attachment_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId(row.id),
            username: Username::parse(&row.username).map_err(|_| corrupt("users.username"))?,
            email: Email::parse(&row.email).map_err(|_| corrupt("users.email"))?,
            display_name: DisplayName::parse(&row.display_name)
                .map_err(|_| corrupt("users.display_name"))?,
            avatar: row.avatar_attachment_id.map(AttachmentId),
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub created_at: Timestamp,
}

/// What a message says about its sender.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SenderRow {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

impl TryFrom<SenderRow> for SenderInfo {
    type Error = StoreError;

    fn try_from(row: SenderRow) -> Result<Self, StoreError> {
        Ok(SenderInfo {
            id: UserId(row.id),
            username: Username::parse(&row.username).map_err(|_| corrupt("users.username"))?,
            display_name: row.display_name,
        })
    }
}

// ---------------------------------------------------------------- rooms

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rooms, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RoomRow {
    pub id: Uuid,
    pub kind: String,
    pub name: String,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: Timestamp,
    pub member_count: i32,
    pub last_seq: i64,
    pub version: i64,
    pub last_activity_at: Timestamp,
    pub direct_user_a: Option<Uuid>,
    pub direct_user_b: Option<Uuid>,
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;

    fn try_from(row: RoomRow) -> Result<Self, StoreError> {
        let direct_pair = match (row.direct_user_a, row.direct_user_b) {
            (Some(a), Some(b)) => Some((UserId(a), UserId(b))),
            (None, None) => None,
            _ => return Err(corrupt("rooms.direct_user_a/b")),
        };
        Ok(Room {
            id: RoomId(row.id),
            kind: parse_room_kind(&row.kind)?,
            name: RoomName::parse(&row.name).map_err(|_| corrupt("rooms.name"))?,
            description: RoomDescription::parse(&row.description)
                .map_err(|_| corrupt("rooms.description"))?,
            created_by: UserId(row.created_by),
            created_at: row.created_at,
            member_count: u32::try_from(row.member_count)
                .map_err(|_| corrupt("rooms.member_count"))?,
            last_seq: to_u64(row.last_seq, "rooms.last_seq")?,
            version: to_u64(row.version, "rooms.version")?,
            direct_pair,
        })
    }
}

/// What a search hit says about its room.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rooms, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RoomSummaryRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
}

impl TryFrom<RoomSummaryRow> for RoomSummary {
    type Error = StoreError;

    fn try_from(row: RoomSummaryRow) -> Result<Self, StoreError> {
        Ok(RoomSummary {
            id: RoomId(row.id),
            name: RoomName::parse(&row.name).map_err(|_| corrupt("rooms.name"))?,
            kind: parse_room_kind(&row.kind)?,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = rooms)]
pub(crate) struct NewRoomRow<'a> {
    pub id: Uuid,
    pub kind: &'static str,
    pub name: &'a str,
    pub description: &'a str,
    pub created_by: Uuid,
    pub created_at: Timestamp,
    pub member_count: i32,
    pub last_seq: i64,
    pub version: i64,
    pub last_activity_at: Timestamp,
    pub direct_user_a: Option<Uuid>,
    pub direct_user_b: Option<Uuid>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = memberships, check_for_backend(diesel::pg::Pg))]
pub(crate) struct MembershipRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub role: String,
    pub joined_at: Timestamp,
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            room_id: RoomId(row.room_id),
            user_id: UserId(row.user_id),
            role: parse_role(&row.role)?,
            joined_at: row.joined_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = memberships)]
pub(crate) struct NewMembershipRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub role: &'static str,
    pub joined_at: Timestamp,
    pub version: i64,
}

// ---------------------------------------------------------------- messages

/// A message as stored, without its search vector and idempotency key.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::pg::Pg))]
pub(crate) struct MessageRow {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    pub kind: String,
    pub content: String,
    pub reply_to_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub version: i64,
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
pub(crate) struct NewMessageRow<'a> {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: i64,
    pub sender_id: Uuid,
    pub kind: &'static str,
    pub content: &'a str,
    pub attachment_id: Option<Uuid>,
    pub reply_to_id: Option<Uuid>,
    pub client_msg_id: Option<&'a str>,
    pub created_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attachments, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AttachmentRow {
    pub id: Uuid,
    pub uploader_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: Timestamp,
}

impl TryFrom<AttachmentRow> for Attachment {
    type Error = StoreError;

    fn try_from(row: AttachmentRow) -> Result<Self, StoreError> {
        Ok(Attachment {
            id: AttachmentId(row.id),
            uploader: UserId(row.uploader_id),
            filename: row.filename,
            content_type: row.content_type,
            size: to_u64(row.size, "attachments.size")?,
            created_at: row.created_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = attachments)]
pub(crate) struct NewAttachmentRow<'a> {
    pub id: Uuid,
    pub uploader_id: Uuid,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: i64,
    pub storage_key: String,
    pub created_at: Timestamp,
}

/// A message row with what it is shown with.
pub(crate) type MessageParts = (MessageRow, SenderRow, Option<AttachmentRow>);

/// Builds the message a viewer sees from its parts and its reactions (as
/// that viewer sees them, in the order each emoji was first used).
pub(crate) fn to_message(
    (row, sender, attachment): MessageParts,
    reactions: Vec<ReactionSummary>,
) -> Result<Message, StoreError> {
    Ok(Message {
        id: MessageId(row.id),
        room_id: RoomId(row.room_id),
        seq: to_u64(row.seq, "messages.seq")?,
        sender: sender.try_into()?,
        kind: parse_message_kind(&row.kind)?,
        // A deleted message keeps its id and seq, and nothing of what it said.
        content: if row.deleted {
            String::new()
        } else {
            row.content
        },
        attachment: if row.deleted {
            None
        } else {
            attachment.map(Attachment::try_from).transpose()?
        },
        reply_to_id: row.reply_to_id.map(MessageId),
        reactions,
        created_at: row.created_at,
        edited_at: row.edited_at,
        deleted: row.deleted,
        version: to_u64(row.version, "messages.version")?,
    })
}
