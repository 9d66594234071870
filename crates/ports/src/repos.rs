//! The repository ports: everything the core stores and reads back.
//!
//! One port call is one transaction: it happens whole or not at all, and what
//! it reads is one consistent snapshot.

use async_trait::async_trait;
use chat_domain::{
    Attachment, AttachmentId, ClientMsgId, DisplayName, Email, HistoryQuery, Login, Membership,
    Message, MessageContent, MessageId, MessageKind, Role, Room, RoomDescription, RoomId, RoomKind,
    RoomName, SessionId, Timestamp, User, UserId, Username,
};

#[cfg(doc)]
use crate::SendRefused;
use crate::{AppendError, Page, PageRequest, StoreError};

// ---------------------------------------------------------------- users

/// A user about to be stored.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    pub display_name: Option<DisplayName>,
    pub avatar: Option<Option<AttachmentId>>,
}

#[async_trait]
pub trait UserRepo: Send + Sync + 'static {
    /// Stores a new user. MUST refuse a username or email that another user
    /// has, ignoring case, with `Conflict(Username)` or
    /// `Conflict(Email)` (username checked first), also when two
    /// registrations race.
    async fn create(&self, user: &NewUser) -> Result<User, StoreError>;
    /// `None` when no such user exists.
    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// The user and their password hash, found by username or email ignoring case.
    async fn find_credentials(&self, login: &Login) -> Result<Option<(User, String)>, StoreError>;
    /// Users whose username or display name starts with `prefix`, ignoring
    /// case (every user for an empty prefix), ordered by lower-cased username.
    async fn search(&self, prefix: &str, page: &PageRequest) -> Result<Page<User>, StoreError>;
    /// Applies the patch and returns the user as it now is; `NotFound` for no
    /// user, or for an avatar that is no stored attachment (and then nothing
    /// of the patch is applied).
    async fn update_profile(&self, id: UserId, patch: &ProfilePatch) -> Result<User, StoreError>;
    /// Records when the user was last seen (their last connection closed):
    /// `User::last_seen_at` reads it back. `NotFound` for no user.
    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> Result<(), StoreError>;
}

// ---------------------------------------------------------------- sessions

/// A login session. Its refresh token rotates: only the token of the current
/// `generation` is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub generation: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked: bool,
}

impl Session {
    /// Whether tokens of this session are still honoured at `now`.
    pub fn is_active(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: the session moved on to `generation`.
    Rotated { session: Session },
    /// The token had been used before: the session is now revoked.
    Reused,
    /// No such session, or it was revoked or expired.
    Inactive,
}

#[async_trait]
pub trait SessionRepo: Send + Sync + 'static {
    /// Stores a new session.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;
    /// `None` when no such session exists.
    async fn find(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// Atomically checks a presented refresh `generation` against the
    /// session's: equal moves it to `generation + 1` and sets `expires_at`; an
    /// older one revokes the session (`Reused`). Two concurrent calls with the
    /// same generation MUST NOT both rotate.
    async fn rotate(
        &self,
        id: SessionId,
        generation: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the session; `false` if it did not exist or was revoked already.
    async fn revoke(&self, id: SessionId) -> Result<bool, StoreError>;
}

// ---------------------------------------------------------------- blocks

#[async_trait]
pub trait BlockRepo: Send + Sync + 'static {
    /// Records that `blocker` blocks `blocked`; `false` if it did already.
    async fn block(
        &self,
        blocker: UserId,
        blocked: UserId,
        at: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Lifts the block; `false` if there was none.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError>;
    /// Whether either user blocks the other.
    async fn either_blocks(&self, a: UserId, b: UserId) -> Result<bool, StoreError>;
    /// The users `blocker` blocks, most recently blocked first.
    async fn list(&self, blocker: UserId, page: &PageRequest) -> Result<Page<User>, StoreError>;
}

// ---------------------------------------------------------------- rooms

/// A room about to be stored.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub id: RoomId,
    pub kind: RoomKind,
    pub name: RoomName,
    pub description: RoomDescription,
    pub created_by: UserId,
    pub created_at: Timestamp,
    /// For a direct room, [`chat_domain::room::direct_pair`] of its two users.
    pub direct_pair: Option<(UserId, UserId)>,
}

/// A member with their user, for member lists.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberView {
    pub membership: Membership,
    pub user: User,
}

/// A room in its member's own list.
#[derive(Debug, Clone, PartialEq)]
pub struct MyRoom {
    pub room: Room,
    pub my_role: Role,
    /// Messages after the member's read marker that others sent and that are
    /// not deleted.
    pub unread_count: u64,
    /// The message with the highest seq, as the member sees it.
    pub last_message: Option<Message>,
}

/// What changed in a room after a version, as its current state: the answer
/// of [`RoomRepo::changes`].
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The room as it is now.
    pub room: Room,
    /// Messages whose latest change (send, edit, delete, reaction) came after
    /// `since`, as the viewer sees them now (deleted ones included), in
    /// ascending seq.
    pub messages: Vec<Message>,
    /// Current members who joined or changed role after `since`, with their
    /// users, in the order they joined.
    pub members: Vec<MemberView>,
    /// Users who left (or were removed) after `since` and are not members
    /// now, in the order they last left.
    pub left_member_ids: Vec<UserId>,
    /// Whether messages changed after `version` are still to be read.
    pub has_more: bool,
    /// The version this answer is complete up to: the room's version, or with
    /// `has_more` the version of the last message included.
    pub version: u64,
}

/// One step of a change to a room, applied by [`RoomRepo::apply`]. The
/// `Expect*` steps are preconditions: the domain decided on a snapshot, and
/// the store checks that the facts the decision rested on still hold.
#[derive(Debug, Clone)]
pub enum RoomOp {
    /// `user`'s role in the room is `role` (`None`: not a member).
    ExpectRole { user: UserId, role: Option<Role> },
    /// The room has between `at_least` and `at_most` members, inclusive.
    ExpectMembers { at_least: u32, at_most: u32 },
    /// Whether `user` is banned from the room.
    ExpectBanned { user: UserId, banned: bool },
    /// `user` joins with `role`, at `at`. Counted.
    AddMember {
        user: UserId,
        role: Role,
        at: Timestamp,
    },
    /// `user` leaves. Counted.
    RemoveMember { user: UserId },
    /// A member's role becomes `role`. Counted.
    SetRole { user: UserId, role: Role },
    /// Bans `user`. Not counted (its system message is).
    Ban {
        user: UserId,
        by: UserId,
        at: Timestamp,
    },
    /// Lifts `user`'s ban. Not counted.
    Unban { user: UserId },
    /// Renames or re-describes the room. Counted.
    Update {
        name: Option<RoomName>,
        description: Option<RoomDescription>,
    },
    /// Writes a `system` message from `sender`; it takes the next seq. Counted.
    SystemMessage {
        id: MessageId,
        sender: UserId,
        content: MessageContent,
        at: Timestamp,
    },
    /// Deletes the room, its memberships, bans and messages. Must come last.
    Delete,
}

/// What one counted step of [`RoomRepo::apply`] did, with the room version it
/// produced.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomChange {
    MemberAdded {
        membership: Membership,
        version: u64,
    },
    MemberRemoved {
        user: UserId,
        version: u64,
    },
    RoleChanged {
        membership: Membership,
        version: u64,
    },
    Updated {
        version: u64,
    },
    MessageAdded {
        message: Box<Message>,
    },
}

/// The result of [`RoomRepo::apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The room after the change; `None` when it was deleted.
    pub room: Option<Room>,
    /// Counted steps in the order applied; versions run on from the room's
    /// version before the change, one per entry.
    pub changes: Vec<RoomChange>,
    /// When the room was deleted, who its members were.
    pub deleted_members: Vec<UserId>,
}

#[async_trait]
pub trait RoomRepo: Send + Sync + 'static {
    /// Creates the room at version 1 with `members` (the first of them its
    /// creator), atomically. For a direct room, MUST refuse a second room for
    /// the same pair with `Conflict(DirectPair)`, also under a race.
    async fn create(&self, room: &NewRoom, members: &[(UserId, Role)]) -> Result<Room, StoreError>;
    /// `None` when no such room exists.
    async fn find(&self, id: RoomId) -> Result<Option<Room>, StoreError>;
    /// The direct room of a pair as [`chat_domain::room::direct_pair`] sorts it.
    async fn find_direct(&self, pair: (UserId, UserId)) -> Result<Option<Room>, StoreError>;
    /// Public rooms whose name contains `query` ignoring case (all for an
    /// empty query), newest first.
    async fn list_public(&self, query: &str, page: &PageRequest) -> Result<Page<Room>, StoreError>;
    /// The rooms `user` is in, most recent activity (newest message, else
    /// creation) first.
    async fn list_mine(&self, user: UserId, page: &PageRequest)
    -> Result<Page<MyRoom>, StoreError>;
    /// Every room `user` is a member of, ordered by room id.
    async fn room_ids_of(&self, user: UserId) -> Result<Vec<RoomId>, StoreError>;
    /// Everything in the room that changed after version `since`, as it is
    /// now, read from one snapshot (`viewer` decides reactions' `me`); `None`
    /// when no such room exists.
    ///
    /// - `messages`: of the messages whose version is greater than `since`,
    ///   the `limit` (at least 1) with the lowest versions. When more exist,
    ///   `has_more` is true and `version` is the version of the last one
    ///   included, so that every change up to `version` is in the answer;
    ///   otherwise `version` is the room's version. Returned in seq order.
    /// - `members`: whole, whatever `limit` says: every current member
    ///   whose membership changed (joined, role) after `since`.
    /// - `left_member_ids`: whole: every user whose last departure came after
    ///   `since` and who is not a member now (a user who left and came back
    ///   is in `members` instead).
    ///
    /// A store on disk MUST find these rows by version, not by replaying the
    /// room's history (PostgreSQL: range scans of its `(room_id, version)`
    /// indexes).
    async fn changes(
        &self,
        room: RoomId,
        since: u64,
        limit: u32,
        viewer: UserId,
    ) -> Result<Option<Changes>, StoreError>;
    /// `user`'s membership, `None` when not a member.
    async fn find_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError>;
    /// Every member, in the order they joined.
    async fn all_members(&self, room: RoomId) -> Result<Vec<Membership>, StoreError>;
    /// A page of members with their users, in the order they joined.
    async fn list_members(
        &self,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<MemberView>, StoreError>;
    /// Whether `user` is banned from the room.
    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;
    /// Applies the steps in order, atomically: all or nothing. A failed
    /// `Expect*` step fails the whole call with `Conflict(Stale)` and
    /// changes nothing; `NotFound` when the room does not exist. Each counted
    /// step raises the version by one, in commit order with every other change
    /// of the room (messages included).
    async fn apply(&self, room: RoomId, ops: &[RoomOp]) -> Result<Applied, StoreError>;
}

// ---------------------------------------------------------------- messages

/// A message about to be sent.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub room_id: RoomId,
    pub sender: UserId,
    /// `None`: `text`, or with an attachment the kind its content type
    /// suggests ([`chat_domain::attachment::kind_for`]). The store decides
    /// it, since only the store reads the attachment at commit time.
    pub kind: Option<MessageKind>,
    pub content: MessageContent,
    pub attachment: Option<AttachmentId>,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<ClientMsgId>,
    pub created_at: Timestamp,
}

/// What a send did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Stored with the next seq, raising the room's version by one.
    New(Message),
    /// The sender had sent this `client_msg_id` to this room before: that
    /// message, unchanged. Nothing was stored.
    Existing(Message),
}

/// A slice of history, in ascending seq.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub messages: Vec<Message>,
    /// Whether more messages lie beyond the slice in the direction read.
    pub has_more: bool,
}

/// What [`MessageRepo::react`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reacted {
    /// Whether a reaction was added or removed. `false` when the user had
    /// already reacted so (add) or had not (remove): then nothing was
    /// stored and the room's version did not move.
    pub changed: bool,
    /// The message after the call, as the reacting user sees it.
    pub message: Message,
}

/// One emoji's reactions on a message with every user who made one, in the
/// order they reacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reactors {
    pub emoji: String,
    pub user_ids: Vec<UserId>,
}

/// A member's markers in a room, for the receipts list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub user_id: UserId,
    pub markers: Markers,
}

/// A full-text search over the messages of the rooms a user is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSearch {
    /// Plain words, lower-cased, at least one: a message matches when it
    /// contains every one of them as a word (no stemming, no prefixes).
    pub words: Vec<String>,
    /// Only this room (the caller has checked that the viewer may read it).
    pub room: Option<RoomId>,
}

/// The little a search hit says about its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub id: RoomId,
    pub name: RoomName,
    pub kind: RoomKind,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub message: Message,
    pub room: RoomSummary,
    /// Higher is a better match; comparable only within one search.
    pub rank: f64,
}

/// A member's markers in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Markers {
    pub last_read_seq: u64,
    pub last_delivered_seq: u64,
}

#[async_trait]
pub trait MessageRepo: Send + Sync + 'static {
    /// Stores a message with the room's next seq, atomically: the seq is
    /// gapless and strictly increasing in commit order, also with concurrent
    /// senders (and other servers on the same store), and a refused or
    /// failed send burns no seq. Resolves only once the message is durable.
    ///
    /// The store decides the send, at commit time, refusing it with its own
    /// [`SendRefused`], checked in this order:
    /// 1. `NoRoom`: the room does not exist;
    /// 2. `NotAMember`: the sender is not a member;
    /// 3. `Blocked`: a direct room whose two users block one another;
    /// 4. then a `client_msg_id` this sender already used in this room
    ///    returns `Existing` with the first message (whatever this send
    ///    says), also when the two sends race or share one batch;
    /// 5. `IdTaken`: the message id is taken;
    /// 6. `NoSuchAttachment`: the attachment is unknown or another user's;
    /// 7. `KindMismatch`: the asked `kind` does not fit the attachment
    ///    ([`chat_domain::attachment::kind_fits`]);
    /// 8. `NoSuchReply`: `reply_to` names no message of this room.
    ///
    /// A store that commits sends in batches MUST keep every one of these
    /// promises per send: one send's refusal is never another's, and a
    /// failed commit fails (never acknowledges) every send it held. A store
    /// too busy to queue the send fails at once with `Unavailable`.
    async fn append(&self, message: &NewMessage) -> Result<Appended, AppendError>;
    /// The message as `viewer` sees it (reactions' `me`); `None` if none.
    async fn find(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError>;
    /// A slice of the room's history as `viewer` sees it.
    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        viewer: UserId,
    ) -> Result<History, StoreError>;
    /// Replaces the content of a message that is not deleted and sets its
    /// `edited_at` to `at`, atomically: the room's version rises by one (in
    /// commit order with every other change of the room, as a send's does)
    /// and the message's `version` becomes it. Returns the message as
    /// `viewer` sees it; `None` when no such message exists or it is deleted
    /// (a deleted message cannot be edited), and then nothing changes.
    /// Authorisation (sender only) is the caller's.
    async fn edit(
        &self,
        id: MessageId,
        content: &MessageContent,
        at: Timestamp,
        viewer: UserId,
    ) -> Result<Option<Message>, StoreError>;
    /// Deletes a message softly, atomically: it keeps its `id`, `seq`,
    /// sender, kind, `created_at`, `edited_at` and `reply_to_id`, becomes
    /// `deleted` with empty `content` and no attachment, and loses every
    /// reaction (a tombstone carries none; a reaction on it is refused, see
    /// [`MessageRepo::react`]). The room's version rises by one and the
    /// message's `version` becomes it, so [`RoomRepo::changes`] hands out the
    /// tombstone. Returns the tombstone as `viewer` sees it; `None` when no
    /// such message exists or it is deleted already, and then nothing
    /// changes (deleting twice raises no version). Replies to it keep
    /// pointing at it. Authorisation is the caller's.
    async fn delete(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError>;
    /// Adds (`add`) or removes `user`'s reaction `emoji` (stored as given,
    /// compared byte for byte) on a message that is not deleted, atomically.
    /// A change (`changed: true`) raises the room's version by one and sets
    /// the message's `version` to it; adding a reaction the user has already
    /// made, or removing one they have not, changes nothing (`changed:
    /// false`, no version raised). `None` when no such message exists or it
    /// is deleted, and then nothing changes.
    ///
    /// Every [`Message`] lists its reactions one entry per emoji, in the
    /// order each emoji was first used, ties by emoji bytes. An emoji's
    /// first use is the `at` of the add that brought it onto the message
    /// while no reaction with it was there; it stays the emoji's for as long
    /// as at least one user still reacts with it, whoever made that first
    /// add and whether or not they have since removed theirs (so an emoji
    /// never moves while its count stays above 0). An emoji whose last
    /// reaction is removed leaves the list and is forgotten: used again, its
    /// first use is that new add's `at`, and so it comes last. Concurrent
    /// adds of one emoji on one message are serialised, so the emoji has
    /// one first use. `count` is how many users reacted with it and `me`
    /// whether the viewer is one of them. Membership and emoji validation
    /// are the caller's.
    async fn react(
        &self,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
    ) -> Result<Option<Reacted>, StoreError>;
    /// Every user's current reactions on the message, one entry per emoji in
    /// the order of [`Message::reactions`] (by each emoji's first use, as
    /// [`react`](Self::react) states it, ties by emoji bytes: an emoji keeps
    /// its place while anyone still reacts with it, even once its first user
    /// has removed theirs), users in the order they reacted (the `at` of
    /// their add, ties by user id). Empty for a deleted or unknown message.
    async fn reactors(&self, id: MessageId) -> Result<Vec<Reactors>, StoreError>;
    /// Messages of the rooms `viewer` is a member of *now* (or of
    /// `search.room` only, and then only if `viewer` is a member of it) that
    /// contain every word, never a deleted one, as `viewer` sees them.
    /// Best match first (highest `rank`), ties newest first (highest id);
    /// the cursor of a hit carries its rank and id, so paging is stable
    /// while new messages arrive. PostgreSQL: the `search` tsvector column
    /// with its GIN index and `ts_rank`; the memory store: word match, rank
    /// the number of occurrences of the words.
    async fn search(
        &self,
        viewer: UserId,
        search: &MessageSearch,
        page: &PageRequest,
    ) -> Result<Page<SearchHit>, StoreError>;
    /// The markers of every current member of the room (zeros where none
    /// yet), in the order they joined.
    async fn receipts(&self, room: RoomId, page: &PageRequest)
    -> Result<Page<Receipt>, StoreError>;
    /// `user`'s markers in the room (zeros where none yet).
    async fn markers(&self, room: RoomId, user: UserId) -> Result<Markers, StoreError>;
    /// Moves `user`'s read marker (and with it the delivered one) forward to
    /// `seq`; never back. `true` when the read marker moved.
    async fn mark_read(&self, room: RoomId, user: UserId, seq: u64) -> Result<bool, StoreError>;
    /// Moves `user`'s delivered marker forward to `seq`; never back, and so
    /// never below the read marker; the read marker stays. `true` when the
    /// delivered marker moved. `NotFound` when the room does not exist.
    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: u64,
    ) -> Result<bool, StoreError>;
}

// ---------------------------------------------------------------- attachments

/// An uploaded file's record, stored once its bytes are in the [`crate::BlobStore`].
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub id: AttachmentId,
    pub uploader: UserId,
    /// Sanitised already: the name to offer on download.
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait AttachmentRepo: Send + Sync + 'static {
    /// Stores the record; `Conflict(Attachment)` for a known id.
    async fn create(&self, attachment: &NewAttachment) -> Result<Attachment, StoreError>;
    /// `None` when no such attachment exists.
    async fn find(&self, id: AttachmentId) -> Result<Option<Attachment>, StoreError>;
    /// Whether `user` may download it: they uploaded it, or they are a member
    /// of a room where a message that is not deleted carries it, or it is
    /// some user's current avatar (avatars are shown to everyone signed in).
    /// `false` for an unknown attachment.
    async fn readable_by(&self, id: AttachmentId, user: UserId) -> Result<bool, StoreError>;
}

/// Every repository, as one bundle: what the app is built from and what the
/// contract suite runs against.
#[derive(Clone)]
pub struct Stores {
    pub users: std::sync::Arc<dyn UserRepo>,
    pub sessions: std::sync::Arc<dyn SessionRepo>,
    pub blocks: std::sync::Arc<dyn BlockRepo>,
    pub rooms: std::sync::Arc<dyn RoomRepo>,
    pub messages: std::sync::Arc<dyn MessageRepo>,
    pub attachments: std::sync::Arc<dyn AttachmentRepo>,
}
