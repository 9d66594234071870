//! Sending, editing and deleting messages, reactions, history, read and
//! delivered markers, receipts and search.

use std::sync::Arc;

use chat_domain::message::{MarkerError, ReadMarker, search_words};
use chat_domain::rules::{self, Denied};
use chat_domain::{
    AttachmentId, ClientMsgId, Emoji, GlobalRole, HistoryQuery, Message, MessageContent, MessageId,
    MessageKind, Role, Room, RoomId, RoomKind, UserId,
};
use chat_ports::{
    AppendError, Appended, Event, History, MessageSearch, NewMessage, Page, PageRequest, Receipt,
    SearchHit, SendRefused, StoreError,
};

use crate::{AppError, Ctx};

/// A message to send, already validated.
#[derive(Debug, Clone)]
pub struct SendMessage {
    /// `None`: `text`, or with an attachment the kind its type suggests.
    pub kind: Option<MessageKind>,
    pub content: MessageContent,
    pub attachment: Option<AttachmentId>,
    pub reply_to: Option<MessageId>,
    pub client_msg_id: Option<ClientMsgId>,
}

/// What a send gave back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub message: Message,
    /// `false` when a replayed `client_msg_id` returned the first message.
    pub created: bool,
}

#[derive(Clone)]
pub struct Messages {
    ctx: Arc<Ctx>,
}

impl Messages {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// Sends a message into a room the caller is a member of. With a
    /// `client_msg_id` the caller used in this room before, gives back that
    /// first message and stores nothing.
    ///
    /// Nothing is read first: the store decides the send at commit time
    /// (the room, membership, a block, the reply, the attachment and its
    /// kind) and answers with its own refusal, which becomes the contract's
    /// answer here.
    pub async fn send(
        &self,
        me: UserId,
        room: RoomId,
        draft: SendMessage,
    ) -> Result<Sent, AppError> {
        let c = &self.ctx;
        let new = NewMessage {
            id: c.ids.new_id().into(),
            room_id: room,
            sender: me,
            kind: kind_asked(&draft)?,
            content: draft.content,
            attachment: draft.attachment,
            reply_to: draft.reply_to,
            client_msg_id: draft.client_msg_id,
            created_at: c.clock.now(),
        };
        match c.stores.messages.append(&new).await {
            Ok(Appended::New(message)) => {
                c.events
                    .publish(Event::MessageNew {
                        message: message.clone(),
                    })
                    .await;
                Ok(Sent {
                    message,
                    created: true,
                })
            }
            Ok(Appended::Existing(message)) => Ok(Sent {
                message,
                created: false,
            }),
            Err(AppendError::Refused(why)) => Err(refused(why)),
            Err(AppendError::Store(e)) => Err(e.into()),
        }
    }

    /// A slice of a room's history, ascending by seq: members only.
    pub async fn history(
        &self,
        me: UserId,
        room: RoomId,
        query: HistoryQuery,
    ) -> Result<History, AppError> {
        let (room, _) = self.readable(me, room).await?;
        Ok(self.ctx.stores.messages.history(room.id, query, me).await?)
    }

    /// Moves the caller's read marker forward to `seq`. An older seq is
    /// accepted and ignored; one past the room's last message is refused.
    pub async fn mark_read(&self, me: UserId, room: RoomId, seq: u64) -> Result<(), AppError> {
        let c = &self.ctx;
        let (room, _) = self.readable(me, room).await?;
        // Where the marker is now the store decides (it never moves back,
        // and says whether it moved); here only the bounds.
        match ReadMarker::advance(0, seq, room.last_seq) {
            Err(MarkerError::PastEnd) => {
                Err(AppError::invalid("seq", MarkerError::PastEnd.to_string()))
            }
            Ok(None) => Ok(()),
            Ok(Some(seq)) => {
                if c.stores.messages.mark_read(room.id, me, seq).await? {
                    c.events
                        .publish(Event::Read {
                            room_id: room.id,
                            user_id: me,
                            seq,
                        })
                        .await;
                }
                Ok(())
            }
        }
    }

    /// Moves the caller's delivered marker forward to `seq`: members only. An
    /// older seq is accepted and ignored; one past the room's last message is
    /// refused. Announces nothing.
    pub async fn mark_delivered(&self, me: UserId, room: RoomId, seq: u64) -> Result<(), AppError> {
        let (room, _) = self.readable(me, room).await?;
        // Where the marker is now the store decides; here only the bounds.
        match ReadMarker::advance(0, seq, room.last_seq) {
            Err(MarkerError::PastEnd) => {
                Err(AppError::invalid("seq", MarkerError::PastEnd.to_string()))
            }
            Ok(None) => Ok(()),
            Ok(Some(seq)) => {
                self.ctx
                    .stores
                    .messages
                    .mark_delivered(room.id, me, seq)
                    .await?;
                Ok(())
            }
        }
    }

    /// Replaces the text of one of the caller's own messages and sets
    /// `edited_at`. A deleted message is gone (404); a `system` message is
    /// nobody's to edit (403).
    pub async fn edit(
        &self,
        me: UserId,
        id: MessageId,
        content: &str,
    ) -> Result<Message, AppError> {
        let c = &self.ctx;
        // One read of the room: writing implies reading (404 for a hidden
        // room, 403 `not_a_member` for a public one).
        let message = self.message(me, id).await?;
        self.writable(me, message.room_id).await?;
        rules::edit_message(message.sender.id == me && message.kind != MessageKind::System)?;
        if message.deleted {
            return Err(AppError::NotFound);
        }
        let content = MessageContent::parse(content, message.attachment.is_some())
            .map_err(|e| AppError::invalid("content", e.to_string()))?;
        let now = c.clock.now();
        let edited = c
            .stores
            .messages
            .edit(id, &content, now, me)
            .await?
            .ok_or(AppError::NotFound)?;
        let reactors = if edited.reactions.is_empty() {
            Vec::new()
        } else {
            c.stores.messages.reactors(id).await?
        };
        c.events
            .publish(Event::MessageUpdated {
                message: edited.clone(),
                reactors,
            })
            .await;
        Ok(edited)
    }

    /// Deletes a message softly: its sender, an owner or admin of the room,
    /// or a global admin (member or not) may. Deleting a deleted message
    /// changes nothing and is no error.
    pub async fn delete(&self, me: UserId, id: MessageId) -> Result<(), AppError> {
        let c = &self.ctx;
        let user = c
            .stores
            .users
            .find(me)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let global_admin = c.role_of(&user) == GlobalRole::Admin;
        let message = self.message(me, id).await?;
        let (room, role) = c.room_and_role(me, message.room_id).await?;
        rules::delete_message(room.kind, role, message.sender.id == me, global_admin)?;
        if let Some(tombstone) = c.stores.messages.delete(id, me).await? {
            c.events
                .publish(Event::MessageDeleted {
                    room_id: tombstone.room_id,
                    id: tombstone.id,
                    seq: tombstone.seq,
                    version: tombstone.version,
                })
                .await;
        }
        Ok(())
    }

    /// Adds (`add`) or removes the caller's reaction `emoji` on a message of
    /// a room they are in. Adding twice or removing an absent one changes
    /// nothing. A deleted message takes no reactions (404).
    pub async fn react(
        &self,
        me: UserId,
        id: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<(), AppError> {
        let c = &self.ctx;
        let emoji = Emoji::parse(emoji).map_err(|e| AppError::invalid("emoji", e.to_string()))?;
        let message = self.message(me, id).await?;
        self.writable(me, message.room_id).await?;
        let now = c.clock.now();
        let reacted = c
            .stores
            .messages
            .react(id, me, emoji.as_str(), add, now)
            .await?
            .ok_or(AppError::NotFound)?;
        if reacted.changed {
            let m = reacted.message;
            c.events
                .publish(Event::ReactionUpdated {
                    room_id: m.room_id,
                    message_id: m.id,
                    emoji: emoji.as_str().to_owned(),
                    user_id: me,
                    added: add,
                    reactions: m
                        .reactions
                        .into_iter()
                        .map(|r| (r.emoji, r.count))
                        .collect(),
                    version: m.version,
                })
                .await;
        }
        Ok(())
    }

    /// Every member's read and delivered markers: members only.
    pub async fn receipts(
        &self,
        me: UserId,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<Receipt>, AppError> {
        let (room, _) = self.readable(me, room).await?;
        Ok(self.ctx.stores.messages.receipts(room.id, page).await?)
    }

    /// Full-text search over the rooms the caller is in (or one of them):
    /// every word must match; best match first; never a deleted message.
    pub async fn search(
        &self,
        me: UserId,
        q: &str,
        room: Option<RoomId>,
        page: &PageRequest,
    ) -> Result<Page<SearchHit>, AppError> {
        let words = search_words(q);
        if words.is_empty() {
            return Err(AppError::invalid("q", "must contain at least one word"));
        }
        if let Some(room) = room {
            self.readable(me, room).await?;
        }
        let search = MessageSearch { words, room };
        Ok(self.ctx.stores.messages.search(me, &search, page).await?)
    }

    /// A message by id; whether the caller may see it is the caller's check
    /// ([`Self::writable`] answers 404 for a room they may not know of).
    async fn message(&self, me: UserId, id: MessageId) -> Result<Message, AppError> {
        self.ctx
            .stores
            .messages
            .find(id, me)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// The room and the caller's role, if the caller may read it.
    async fn readable(&self, me: UserId, room: RoomId) -> Result<(Room, Role), AppError> {
        let (room, role) = self.ctx.room_and_role(me, room).await?;
        let role = rules::access(room.kind, role)?;
        Ok((room, role))
    }

    /// The room and the caller's role, if the caller may write in it: as
    /// reading, and in a direct room neither side may block the other.
    async fn writable(&self, me: UserId, room: RoomId) -> Result<(Room, Role), AppError> {
        let (room, role) = self.ctx.room_and_role(me, room).await?;
        let blocked = match (room.kind, room.direct_pair) {
            (RoomKind::Direct, Some((a, b))) if a != b && role.is_some() => {
                let other = if a == me { b } else { a };
                self.ctx.stores.blocks.either_blocks(me, other).await?
            }
            _ => false,
        };
        let role = rules::send(room.kind, role, blocked)?;
        Ok((room, role))
    }
}

/// The kind a draft asks for, as far as it can be decided without reading
/// anything: `system` is the server's, and a kind that needs a file needs
/// one. With an attachment, `None` lets the store take the file's kind.
fn kind_asked(draft: &SendMessage) -> Result<Option<MessageKind>, AppError> {
    match (draft.kind, draft.attachment) {
        (Some(MessageKind::System), _) => Err(AppError::invalid(
            "kind",
            "system messages are written by the server",
        )),
        (Some(kind), None) if kind.needs_attachment() => Err(AppError::invalid(
            "attachment_id",
            "this kind of message needs an attachment",
        )),
        (kind, None) => Ok(Some(kind.unwrap_or(MessageKind::Text))),
        (kind, Some(_)) => Ok(kind),
    }
}

/// The contract's answer to a send the store refused.
fn refused(why: SendRefused) -> AppError {
    match why {
        SendRefused::NoRoom => Denied::NotFound.into(),
        // As the room's kind says a non-member is answered: a room they
        // may not know of is not found.
        SendRefused::NotAMember { room_kind } => match rules::send(room_kind, None, false) {
            Err(denied) => denied.into(),
            Ok(_) => Denied::NotAMember.into(),
        },
        SendRefused::Blocked => Denied::Blocked.into(),
        SendRefused::NoSuchReply => {
            AppError::invalid("reply_to_id", "must name a message of the same room")
        }
        SendRefused::NoSuchAttachment => AppError::invalid("attachment_id", "no such attachment"),
        SendRefused::KindMismatch {
            kind: MessageKind::Text,
            ..
        } => AppError::invalid(
            "kind",
            "a text message carries no attachment: use image, video, audio or file",
        ),
        SendRefused::KindMismatch { content_type, .. } => AppError::invalid(
            "kind",
            format!("does not fit an attachment of type {content_type}"),
        ),
        SendRefused::IdTaken => StoreError::other("a new message id was taken").into(),
    }
}
