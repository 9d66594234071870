//! Request and response bodies, and their conversions from domain values.
//! Field names and shapes follow `shared/API.md` exactly.

use chat_app::Profile;
use chat_domain::{GlobalRole, Message, MessageKind, Role, Room, RoomKind, User};
use chat_ports::{MyRoom, Page};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

// ------------------------------------------------------------ enums

/// A room's kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoomKindDto {
    Public,
    Private,
    Direct,
}

impl From<RoomKind> for RoomKindDto {
    fn from(k: RoomKind) -> Self {
        match k {
            RoomKind::Public => Self::Public,
            RoomKind::Private => Self::Private,
            RoomKind::Direct => Self::Direct,
        }
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleDto {
    Member,
    Admin,
    Owner,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => Self::Member,
            Role::Admin => Self::Admin,
            Role::Owner => Self::Owner,
        }
    }
}

impl From<RoleDto> for Role {
    fn from(r: RoleDto) -> Self {
        match r {
            RoleDto::Member => Self::Member,
            RoleDto::Admin => Self::Admin,
            RoleDto::Owner => Self::Owner,
        }
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MessageKindDto {
    Text,
    Image,
    Video,
    Audio,
    File,
    System,
}

impl From<MessageKind> for MessageKindDto {
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

impl From<MessageKindDto> for MessageKind {
    fn from(k: MessageKindDto) -> Self {
        match k {
            MessageKindDto::Text => Self::Text,
            MessageKindDto::Image => Self::Image,
            MessageKindDto::Video => Self::Video,
            MessageKindDto::Audio => Self::Audio,
            MessageKindDto::File => Self::File,
            MessageKindDto::System => Self::System,
        }
    }
}

// ------------------------------------------------------------ users

/// Yourself, as `GET /users/me` shows you.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub display_name: String,
    /// Where the avatar can be fetched; `null` when none is set.
    pub avatar_url: Option<String>,
    /// `admin` for a global admin named in the server's configuration.
    #[schema(example = "user")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<Profile> for UserDto {
    fn from(p: Profile) -> Self {
        let u = p.user;
        Self {
            id: u.id.0,
            avatar_url: avatar_url(&u),
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            display_name: u.display_name.as_str().to_owned(),
            role: match p.role {
                GlobalRole::User => "user",
                GlobalRole::Admin => "admin",
            }
            .to_owned(),
            created_at: u.created_at,
        }
    }
}

/// Anyone else: never their email.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicUserDto {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// `online` while the user holds a WebSocket connection.
    #[schema(example = "offline")]
    pub presence: String,
    /// When the user's last connection closed; `null` if never seen.
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl PublicUserDto {
    /// The user as others see them, `online` while they hold a connection.
    pub fn with_presence(u: User, online: bool) -> Self {
        Self {
            id: u.id.0,
            avatar_url: avatar_url(&u),
            username: u.username.as_str().to_owned(),
            display_name: u.display_name.as_str().to_owned(),
            presence: if online { "online" } else { "offline" }.to_owned(),
            last_seen_at: u.last_seen_at,
        }
    }
}

fn avatar_url(u: &User) -> Option<String> {
    u.avatar.map(|a| format!("/api/v1/attachments/{a}"))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3–32 of `[A-Za-z0-9_.-]`, unique ignoring case.
    #[schema(example = "alice")]
    pub username: String,
    /// Unique ignoring case.
    #[schema(example = "alice@example.com")]
    pub email: String,
    /// 8–128 characters, every one of which counts.
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// 1–64 characters; defaults to the username.
    pub display_name: Option<String>,
}

/// Log in by username or by email.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: Option<String>,
    #[schema(example = "alice")]
    pub username: Option<String>,
    #[schema(example = "correct horse battery")]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What login and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    /// The access token, for `Authorization: Bearer`.
    pub token: String,
    /// When the access token stops working.
    pub expires_at: DateTime<Utc>,
    /// Good for one `POST /auth/refresh`; a second use revokes the session.
    pub refresh_token: String,
    pub user: UserDto,
}

impl From<chat_app::Tokens> for TokenDto {
    fn from(t: chat_app::Tokens) -> Self {
        Self {
            token: t.access.token,
            expires_at: t.access.expires_at,
            refresh_token: t.refresh.token,
            user: t.profile.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMeRequest {
    /// 1–64 characters.
    pub display_name: Option<String>,
    /// An attachment you uploaded, or `null` to clear the avatar.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub avatar_attachment_id: Option<Option<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ------------------------------------------------------------ rooms

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomDto {
    pub id: Uuid,
    pub kind: RoomKindDto,
    /// For a direct room: its members' usernames, sorted, joined by ", ".
    pub name: String,
    pub description: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub member_count: u32,
    /// The seq of the newest message; 0 when there is none.
    pub last_seq: u64,
    /// Raised by exactly one for every change in the room.
    pub version: u64,
}

impl From<Room> for RoomDto {
    fn from(r: Room) -> Self {
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
        }
    }
}

/// A room in your own list.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyRoomDto {
    #[serde(flatten)]
    pub room: RoomDto,
    pub my_role: RoleDto,
    /// Messages after your read marker that others sent (deleted ones not counted).
    pub unread_count: u64,
    /// The newest message, `null` in an empty room.
    pub last_message: Option<MessageDto>,
}

impl From<MyRoom> for MyRoomDto {
    fn from(r: MyRoom) -> Self {
        Self {
            room: r.room.into(),
            my_role: r.my_role.into(),
            unread_count: r.unread_count,
            last_message: r.last_message.map(Into::into),
        }
    }
}

/// Only public and private rooms are created here; direct rooms come from `POST /dms`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NewRoomKind {
    Public,
    Private,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateRoomRequest {
    /// 1–100 characters; names need not be unique.
    #[schema(example = "general")]
    pub name: String,
    /// 0–1000 characters.
    pub description: Option<String>,
    /// Defaults to `public`.
    pub kind: Option<NewRoomKind>,
    /// Users who join as `member` (at most 1000).
    pub member_ids: Option<Vec<Uuid>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DirectRequest {
    pub user_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRoomRequest {
    pub name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberDto {
    pub user: PublicUserDto,
    pub role: RoleDto,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserRef {
    pub user_id: Uuid,
}

/// The role to give: `admin` or `member` (ownership moves only when an owner leaves).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AssignableRole {
    Admin,
    Member,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleRequest {
    pub role: AssignableRole,
}

// ------------------------------------------------------------ messages

/// The sender of a message.
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderDto {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionDto {
    pub emoji: String,
    pub count: u32,
    /// Whether you reacted with it.
    pub me: bool,
}

/// An uploaded file. Download it from `url` (with your bearer token).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b",
    "url": "/api/v1/attachments/0193a1b2-7c4d-7e5f-8a9b-0c1d2e3f4a5b",
    "filename": "cat.png", "content_type": "image/png", "size": 48213
}))]
pub struct AttachmentDto {
    pub id: Uuid,
    /// The relative path to download it from.
    pub url: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// A message. A deleted one keeps `id` and `seq`, with empty `content` and
/// no attachment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193a1b2-9999-7e5f-8a9b-0c1d2e3f4a5b",
    "room_id": "0193a1b2-1111-7e5f-8a9b-0c1d2e3f4a5b",
    "seq": 42,
    "sender": {"id": "0193a1b2-2222-7e5f-8a9b-0c1d2e3f4a5b", "username": "alice", "display_name": "Alice"},
    "kind": "text",
    "content": "see you at noon",
    "attachment": null,
    "reply_to_id": "0193a1b2-8888-7e5f-8a9b-0c1d2e3f4a5b",
    "reactions": [{"emoji": "👍", "count": 2, "me": true}, {"emoji": ":tada:", "count": 1, "me": false}],
    "created_at": "2026-11-21T12:00:00Z",
    "edited_at": "2026-11-21T12:01:30Z",
    "deleted": false
}))]
pub struct MessageDto {
    pub id: Uuid,
    pub room_id: Uuid,
    /// Per room: 1, 2, 3… gapless, in commit order.
    pub seq: u64,
    pub sender: SenderDto,
    pub kind: MessageKindDto,
    /// Empty once deleted.
    pub content: String,
    pub attachment: Option<AttachmentDto>,
    pub reply_to_id: Option<Uuid>,
    /// Each emoji in the order it was first used.
    pub reactions: Vec<ReactionDto>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl From<Message> for MessageDto {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.0,
            room_id: m.room_id.0,
            seq: m.seq,
            sender: SenderDto {
                id: m.sender.id.0,
                username: m.sender.username.as_str().to_owned(),
                display_name: m.sender.display_name,
            },
            kind: m.kind.into(),
            content: m.content,
            attachment: m.attachment.map(Into::into),
            reply_to_id: m.reply_to_id.map(|r| r.0),
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionDto {
                    emoji: r.emoji,
                    count: r.count,
                    me: r.me,
                })
                .collect(),
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// 1–4000 characters after trimming (may be empty with an attachment).
    #[schema(example = "hello")]
    pub content: Option<String>,
    /// `image`, `video`, `audio` and `file` need an attachment, and `image`,
    /// `video` and `audio` one of their own type; `text` carries none.
    /// Defaults to `text`, or with an attachment to the kind its type
    /// suggests (`file` for anything not image, video or audio).
    pub kind: Option<MessageKindDto>,
    /// An attachment you uploaded (`POST /attachments`).
    pub attachment_id: Option<Uuid>,
    /// A message of the same room (a deleted one is fine).
    pub reply_to_id: Option<Uuid>,
    /// Up to 64 characters: the same sender, room and key give back the
    /// first message (200) instead of a copy.
    pub client_msg_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryDto {
    /// Always ascending by seq.
    pub messages: Vec<MessageDto>,
    /// Whether more messages lie beyond these in the direction read.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// The new text: 1–4000 characters after trimming (may be empty when the
    /// message carries an attachment).
    #[schema(example = "see you at one")]
    pub content: String,
}

/// A member's markers, from which a client shows sent, delivered and read
/// per message: a message of seq S is read by everyone whose
/// `last_read_seq >= S`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "0193a1b2-2222-7e5f-8a9b-0c1d2e3f4a5b", "last_read_seq": 40, "last_delivered_seq": 42}))]
pub struct ReceiptDto {
    pub user_id: Uuid,
    /// 0 when the member has read nothing yet.
    pub last_read_seq: u64,
    /// Never below `last_read_seq`; 0 when nothing is delivered yet.
    pub last_delivered_seq: u64,
}

impl From<chat_ports::Receipt> for ReceiptDto {
    fn from(r: chat_ports::Receipt) -> Self {
        Self {
            user_id: r.user_id.0,
            last_read_seq: r.markers.last_read_seq,
            last_delivered_seq: r.markers.last_delivered_seq,
        }
    }
}

/// The room a search hit is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomRefDto {
    pub id: Uuid,
    pub name: String,
    pub kind: RoomKindDto,
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitDto {
    pub message: MessageDto,
    pub room: RoomRefDto,
    /// Higher is a better match; comparable only within one search.
    #[schema(example = 0.0759)]
    pub rank: f64,
}

impl From<chat_ports::SearchHit> for SearchHitDto {
    fn from(h: chat_ports::SearchHit) -> Self {
        Self {
            message: h.message.into(),
            room: RoomRefDto {
                id: h.room.id.0,
                name: h.room.name.as_str().to_owned(),
                kind: h.room.kind.into(),
            },
            rank: h.rank,
        }
    }
}

impl From<chat_domain::Attachment> for AttachmentDto {
    fn from(a: chat_domain::Attachment) -> Self {
        Self {
            id: a.id.0,
            url: format!("/api/v1/attachments/{}", a.id),
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadRequest {
    pub seq: i64,
}

// ------------------------------------------------------------ pages & service

/// One page of a list. Pass `next_cursor` as `cursor` for the next page;
/// `null` on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> PageDto<T> {
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(f).collect(),
            next_cursor: page.next_cursor.map(|c| c.encode()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDto {
    #[schema(example = "OK")]
    pub status: String,
    pub timestamp: DateTime<Utc>,
}

/// `/ready`: the node can serve.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyDto {
    #[schema(example = "OK")]
    pub status: String,
    pub timestamp: DateTime<Utc>,
    /// On a node of several (Redis configured): `up` while this node hears
    /// the others, `down` while it does not. A node whose bus is down still
    /// serves (sends are stored and acknowledged, its own sockets get their
    /// events), so it stays ready; the other nodes' events reach its
    /// clients through `changes` until the bus is back. Absent on a single
    /// node.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "up")]
    pub bus: Option<String>,
}

// ------------------------------------------------------------ resume

/// What changed in a room after a version, as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesDto {
    /// The version this answer brings you up to: the room's, or with
    /// `has_more` the version of the last message included (ask again from it).
    pub version: u64,
    /// The room as it is now.
    pub room: RoomDto,
    /// Messages sent, edited, deleted or reacted to after `since`, as they
    /// are now (deleted ones included), ascending by seq.
    pub messages: Vec<MessageDto>,
    /// Members who joined or changed role after `since`, in join order.
    pub members: Vec<MemberDto>,
    /// Users who left or were removed after `since` and are not members now.
    pub left_member_ids: Vec<Uuid>,
    /// Whether more changed messages remain after `version`.
    pub has_more: bool,
}
