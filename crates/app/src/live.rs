//! What only a live connection does: typing notices and presence. Neither
//! is stored but `last_seen_at`; both go out as ephemeral events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_domain::rules;
use chat_domain::{RoomId, SenderInfo, Timestamp, UserId};
use chat_ports::Event;

use crate::{AppError, Ctx};

/// How often one user's typing in one room is announced at most; clients
/// show it for about five seconds.
pub const TYPING_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

#[derive(Clone)]
pub struct Live {
    ctx: Arc<Ctx>,
    /// When each (user, room) last announced typing.
    typing: Arc<Mutex<HashMap<(UserId, RoomId), Timestamp>>>,
}

impl Live {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            typing: Arc::default(),
        }
    }

    /// The caller is typing in `room`: members only; announced to the other
    /// members at most once per [`TYPING_EVERY`].
    pub async fn typing(&self, me: UserId, room: RoomId) -> Result<(), AppError> {
        let c = &self.ctx;
        let (room, role) = c.room_and_role(me, room).await?;
        rules::access(room.kind, role)?;
        let now = c.clock.now();
        if !self.first_in_window(me, room.id, now) {
            return Ok(());
        }
        let user = c.stores.users.find(me).await?.ok_or(AppError::NotFound)?;
        c.events
            .publish(Event::Typing {
                room_id: room.id,
                user: SenderInfo {
                    id: user.id,
                    username: user.username,
                    display_name: user.display_name.as_str().to_owned(),
                },
            })
            .await;
        Ok(())
    }

    /// Whether `now` opens a new throttle window for (user, room). Also
    /// forgets windows long closed, so the map stays as small as the set of
    /// people typing.
    fn first_in_window(&self, me: UserId, room: RoomId, now: Timestamp) -> bool {
        let Ok(mut last) = self.typing.lock() else {
            return true;
        };
        if last.len() > 10_000 {
            last.retain(|_, at| now - *at < TYPING_EVERY);
        }
        match last.get(&(me, room)) {
            Some(at) if now - *at < TYPING_EVERY => false,
            _ => {
                last.insert((me, room), now);
                true
            }
        }
    }

    /// The user's first connection on this node opened: when it is their
    /// first on any node, tell the people they share a room with.
    pub async fn online(&self, me: UserId) -> Result<(), AppError> {
        if !self.ctx.presence.arrived(me).await {
            return Ok(());
        }
        let room_ids = self.ctx.stores.rooms.room_ids_of(me).await?;
        self.ctx
            .events
            .publish(Event::Presence {
                user_id: me,
                online: true,
                last_seen_at: None,
                room_ids,
            })
            .await;
        Ok(())
    }

    /// The user's last connection on this node closed: when no node holds
    /// one now, remember when, and tell the people they share a room with.
    pub async fn offline(&self, me: UserId) -> Result<(), AppError> {
        if !self.ctx.presence.left(me).await {
            return Ok(());
        }
        self.gone(me).await
    }

    /// Announces offline the users whose last connections were on a node
    /// that died; the server calls this every few seconds. Returns how many.
    pub async fn reap(&self) -> Result<usize, AppError> {
        let orphans = self.ctx.presence.orphans().await;
        for user in &orphans {
            self.gone(*user).await?;
        }
        Ok(orphans.len())
    }

    async fn gone(&self, me: UserId) -> Result<(), AppError> {
        let c = &self.ctx;
        let now = c.clock.now();
        c.stores.users.set_last_seen(me, now).await?;
        let room_ids = c.stores.rooms.room_ids_of(me).await?;
        c.events
            .publish(Event::Presence {
                user_id: me,
                online: false,
                last_seen_at: Some(now),
                room_ids,
            })
            .await;
        Ok(())
    }
}
