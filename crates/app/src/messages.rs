//! Sending messages, reading history, read markers.

use std::sync::Arc;

use chat_domain::message::{MarkerError, ReadMarker};
use chat_domain::rules;
use chat_domain::{
    AttachmentId, ClientMsgId, HistoryQuery, Message, MessageContent, MessageId, MessageKind, Role,
    Room, RoomId, RoomKind, UserId,
};
use chat_ports::{Appended, Event, History, NewMessage};

use crate::{AppError, Ctx, retry_stale};

/// A message to send, already validated.
#[derive(Debug, Clone)]
pub struct SendMessage {
    pub kind: MessageKind,
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
    pub async fn send(
        &self,
        me: UserId,
        room: RoomId,
        draft: SendMessage,
    ) -> Result<Sent, AppError> {
        let c = &self.ctx;
        if draft.kind == MessageKind::System {
            return Err(AppError::invalid(
                "kind",
                "system messages are written by the server",
            ));
        }
        if draft.kind.needs_attachment() && draft.attachment.is_none() {
            return Err(AppError::invalid(
                "attachment_id",
                "this kind of message needs an attachment",
            ));
        }
        if draft.attachment.is_some() {
            return Err(AppError::invalid("attachment_id", "no such attachment"));
        }
        retry_stale(|| async {
            let (room, _role) = self.writable(me, room).await?;
            if let Some(reply_to) = draft.reply_to {
                match c.stores.messages.find(reply_to, me).await? {
                    Some(m) if m.room_id == room.id => {}
                    _ => {
                        return Err(AppError::invalid(
                            "reply_to_id",
                            "must name a message of the same room",
                        ));
                    }
                }
            }
            let new = NewMessage {
                id: c.ids.new_id().into(),
                room_id: room.id,
                sender: me,
                kind: draft.kind,
                content: draft.content.clone(),
                attachment: draft.attachment,
                reply_to: draft.reply_to,
                client_msg_id: draft.client_msg_id.clone(),
                created_at: c.clock.now(),
            };
            match c.stores.messages.append(&new).await? {
                Appended::New(message) => {
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
                Appended::Existing(message) => Ok(Sent {
                    message,
                    created: false,
                }),
            }
        })
        .await
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
        let current = c.stores.messages.markers(room.id, me).await?;
        match ReadMarker::advance(current.last_read_seq, seq, room.last_seq) {
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
