//! The data of the memory store, with the indexes its queries need.
//!
//! Everything lives in one [`State`] behind one mutex. Indexes are kept in
//! step by the code that writes (the `impl`s in the sibling modules); the
//! invariants are stated on each field.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chat_domain::{
    Attachment, AttachmentId, ClientMsgId, Membership, Message, MessageId, MessageKind,
    ReactionSummary, RoomId, SenderInfo, SessionId, Timestamp, User, UserId,
};
use chat_ports::{Cursor, Markers, Session, StoreError};

/// Everything the store holds.
#[derive(Default)]
pub(crate) struct State {
    /// Every user, with their password hash.
    pub users: HashMap<UserId, UserRow>,
    /// Lower-cased username -> user: the uniqueness rule, and the order of
    /// user search.
    pub username_keys: BTreeMap<String, UserId>,
    /// Lower-cased email -> user: the uniqueness rule and the login lookup.
    pub email_keys: HashMap<String, UserId>,

    pub sessions: HashMap<SessionId, Session>,

    /// Per blocker, whom they block.
    pub blocks: HashMap<UserId, BlockList>,

    pub rooms: HashMap<RoomId, RoomState>,
    /// `(created_at, id)` of every public room: the directory's order.
    pub public_rooms: BTreeSet<(Timestamp, RoomId)>,
    /// The direct room of each pair, as `direct_pair` sorts it.
    pub direct_rooms: HashMap<(UserId, UserId), RoomId>,
    /// The rooms each user is a member of.
    pub rooms_of_user: HashMap<UserId, HashSet<RoomId>>,
    /// Where each message lives: its room and seq.
    pub message_index: HashMap<MessageId, (RoomId, u64)>,
    /// The reactions on each message, in the order they were added; a
    /// message without any (a deleted one among them) has no entry. All
    /// reactions of one emoji on one message share their `emoji_since`.
    /// Kept
    /// here rather than on [`StoredMessage`] so that the message rows stay
    /// as the room code builds them; read through [`seen_by`].
    pub reactions: HashMap<MessageId, Vec<StoredReaction>>,

    /// Every attachment's record.
    pub attachments: HashMap<AttachmentId, Attachment>,
    /// The live (not deleted) messages that carry each attachment: who may
    /// read it. An attachment carried by none has no entry.
    pub attachment_uses: HashMap<AttachmentId, HashSet<MessageId>>,
    /// The users whose current avatar each attachment is. An attachment
    /// that is nobody's avatar has no entry.
    pub avatars: HashMap<AttachmentId, HashSet<UserId>>,
}

/// One user's reaction with one emoji.
pub(crate) struct StoredReaction {
    pub user: UserId,
    pub emoji: String,
    /// When this user reacted so: the order of [`chat_ports::Reactors`]'
    /// users.
    pub created_at: Timestamp,
    /// When the emoji was first used on the message: inherited from the
    /// emoji's reactions already there, else this reaction's `created_at`.
    /// It outlives the first user's reaction as long as anyone still reacts
    /// so, and is forgotten with the emoji's last reaction, so the emoji
    /// keeps its place in the list until its count drops to 0. The order of
    /// the emojis.
    pub emoji_since: Timestamp,
}

/// The `emoji_since` a new reaction with `emoji` on a message whose
/// reactions are `reactions` takes: the emoji's, if anyone still reacts so,
/// else `at`.
pub(crate) fn emoji_since(reactions: &[StoredReaction], emoji: &str, at: Timestamp) -> Timestamp {
    reactions
        .iter()
        .find(|r| r.emoji == emoji)
        .map_or(at, |r| r.emoji_since)
}

/// A stored user.
pub(crate) struct UserRow {
    pub user: User,
    pub password_hash: String,
}

/// The users one user blocks, by user and in blocking order.
#[derive(Default)]
pub(crate) struct BlockList {
    pub by_user: HashMap<UserId, Timestamp>,
    /// `(blocked_at, blocked)`: the list's order is this, descending.
    pub order: BTreeSet<(Timestamp, UserId)>,
}

/// A room and everything in it.
pub(crate) struct RoomState {
    /// The room as the ports see it; `member_count`, `last_seq` and `version`
    /// are kept current.
    pub room: chat_domain::Room,
    pub members: HashMap<UserId, MemberRow>,
    /// `(joined_at, user)` of every member: the member list's order.
    pub join_order: BTreeSet<(Timestamp, UserId)>,
    pub bans: HashMap<UserId, BanRow>,
    /// The room version at which each user last left, for "changes since V".
    pub departures: HashMap<UserId, u64>,
    /// The history, by seq.
    pub messages: BTreeMap<u64, StoredMessage>,
    /// `(sender, client_msg_id)` -> seq, for idempotent sends.
    pub client_msg_ids: HashMap<(UserId, ClientMsgId), u64>,
    /// Read and delivered markers, by user (members and former members).
    pub markers: HashMap<UserId, Markers>,
    /// The newest message's `created_at`, else the room's: the order of
    /// "my rooms".
    pub last_activity: Timestamp,
}

/// A membership, with the room version of its latest change.
pub(crate) struct MemberRow {
    pub membership: Membership,
    pub version: u64,
}

/// A ban: who banned, and when.
pub(crate) struct BanRow {
    #[expect(dead_code, reason = "kept for a future ban list")]
    pub by: UserId,
    #[expect(dead_code, reason = "kept for a future ban list")]
    pub at: Timestamp,
}

/// A message as stored; [`to_message`] turns it into what a viewer sees.
#[derive(Clone)]
pub(crate) struct StoredMessage {
    pub id: MessageId,
    pub seq: u64,
    pub sender: UserId,
    pub kind: MessageKind,
    pub content: String,
    /// An attachment in `State::attachments` (a send checks it), read back
    /// whole. A delete clears it.
    pub attachment: Option<AttachmentId>,
    pub reply_to: Option<MessageId>,
    pub created_at: Timestamp,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    /// The room version of the message's latest change.
    pub version: u64,
}

impl RoomState {
    /// The role of `user`, `None` when not a member.
    pub fn role_of(&self, user: UserId) -> Option<chat_domain::Role> {
        self.members.get(&user).map(|m| m.membership.role)
    }

    /// Messages after `user`'s read marker that others sent and that are not
    /// deleted.
    pub fn unread_count(&self, user: UserId) -> u64 {
        let read = self.markers.get(&user).map_or(0, |m| m.last_read_seq);
        let unread = self
            .messages
            .range(read.saturating_add(1)..)
            .filter(|(_, m)| m.sender != user && !m.deleted)
            .count();
        u64::try_from(unread).unwrap_or(u64::MAX)
    }
}

/// The message as `viewer` sees it, without its reactions (see [`seen_by`]).
pub(crate) fn to_message(
    users: &HashMap<UserId, UserRow>,
    attachments: &HashMap<AttachmentId, Attachment>,
    room_id: RoomId,
    stored: &StoredMessage,
    _viewer: UserId,
) -> Result<Message, StoreError> {
    let sender = users
        .get(&stored.sender)
        .ok_or_else(|| StoreError::other("a message's sender is missing"))?;
    Ok(Message {
        id: stored.id,
        room_id,
        seq: stored.seq,
        sender: SenderInfo {
            id: sender.user.id,
            username: sender.user.username.clone(),
            display_name: sender.user.display_name.as_str().to_owned(),
        },
        kind: stored.kind,
        content: if stored.deleted {
            String::new()
        } else {
            stored.content.clone()
        },
        attachment: match stored.attachment {
            Some(id) if !stored.deleted => Some(
                attachments
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| StoreError::other("a message's attachment is missing"))?,
            ),
            _ => None,
        },
        reply_to_id: stored.reply_to,
        // Reactions live in `State::reactions`: [`seen_by`] adds them.
        reactions: Vec::new(),
        created_at: stored.created_at,
        edited_at: stored.edited_at,
        deleted: stored.deleted,
        version: stored.version,
    })
}

/// The reactions as `viewer` sees them: one entry per emoji, in the order
/// each was first used (its `emoji_since`, ties by emoji bytes), with its
/// count and whether the viewer is among those who reacted.
pub(crate) fn reaction_summaries(
    reactions: &[StoredReaction],
    viewer: UserId,
) -> Vec<ReactionSummary> {
    let mut by_emoji: Vec<(Timestamp, ReactionSummary)> = Vec::new();
    for r in reactions {
        match by_emoji.iter_mut().find(|(_, s)| s.emoji == r.emoji) {
            Some((first, summary)) => {
                // One instant per emoji; `min` should it ever differ.
                *first = (*first).min(r.emoji_since);
                summary.count = summary.count.saturating_add(1);
                summary.me |= r.user == viewer;
            }
            None => by_emoji.push((
                r.emoji_since,
                ReactionSummary {
                    emoji: r.emoji.clone(),
                    count: 1,
                    me: r.user == viewer,
                },
            )),
        }
    }
    by_emoji.sort_by(|(a, x), (b, y)| (a, &x.emoji).cmp(&(b, &y.emoji)));
    by_emoji.into_iter().map(|(_, s)| s).collect()
}

/// The message as `viewer` sees it, reactions included.
pub(crate) fn seen_by(
    state: &State,
    room_id: RoomId,
    stored: &StoredMessage,
    viewer: UserId,
) -> Result<Message, StoreError> {
    let mut message = to_message(&state.users, &state.attachments, room_id, stored, viewer)?;
    if let Some(reactions) = state.reactions.get(&stored.id) {
        message.reactions = reaction_summaries(reactions, viewer);
    }
    Ok(message)
}

/// Records that message `id`, live, carries `attachment`.
pub(crate) fn record_use(state: &mut State, attachment: AttachmentId, id: MessageId) {
    state
        .attachment_uses
        .entry(attachment)
        .or_default()
        .insert(id);
}

/// Forgets that message `id` carries `attachment` (it was deleted, or its
/// room was).
pub(crate) fn forget_use(state: &mut State, attachment: AttachmentId, id: MessageId) {
    if let Some(uses) = state.attachment_uses.get_mut(&attachment) {
        uses.remove(&id);
        if uses.is_empty() {
            state.attachment_uses.remove(&attachment);
        }
    }
}

/// A timestamp as a cursor key: RFC 3339, every digit kept.
pub(crate) fn time_key(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Reads back a [`time_key`]; `InvalidCursor` for anything else.
pub(crate) fn parse_time_key(key: &str) -> Result<Timestamp, StoreError> {
    chrono::DateTime::parse_from_rfc3339(key)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| StoreError::InvalidCursor)
}

/// A cursor over `(timestamp, id)`.
pub(crate) fn time_cursor(t: Timestamp, id: uuid::Uuid) -> Cursor {
    Cursor::new(time_key(t), id)
}

/// The `(timestamp, id)` a time cursor points at, if any.
pub(crate) fn time_position<I: From<uuid::Uuid>>(
    cursor: Option<&Cursor>,
) -> Result<Option<(Timestamp, I)>, StoreError> {
    cursor
        .map(|c| Ok((parse_time_key(&c.key)?, I::from(c.id))))
        .transpose()
}

/// Whether `user` exists; `NotFound` if not.
pub(crate) fn require_user(
    users: &HashMap<UserId, UserRow>,
    user: UserId,
) -> Result<&UserRow, StoreError> {
    users.get(&user).ok_or(StoreError::NotFound)
}
