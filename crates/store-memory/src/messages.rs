//! `MessageRepo`.

use async_trait::async_trait;
use chat_domain::{HistoryQuery, Message, MessageId, RoomId, UserId};
use chat_ports::{Appended, History, Markers, MessageRepo, NewMessage, StoreError};

use crate::MemoryStore;
use crate::state::{StoredMessage, to_message};

#[async_trait]
impl MessageRepo for MemoryStore {
    async fn append(&self, new: &NewMessage) -> Result<Appended, StoreError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let r = state
            .rooms
            .get_mut(&new.room_id)
            .ok_or(StoreError::NotFound)?;
        // A replay answers with the first message whatever happened since.
        if let Some(cmid) = &new.client_msg_id
            && let Some(seq) = r.client_msg_ids.get(&(new.sender, cmid.clone()))
        {
            let first = r
                .messages
                .get(seq)
                .ok_or_else(|| StoreError::other("client_msg_id index out of step"))?;
            return to_message(&state.users, new.room_id, first, new.sender)
                .map(Appended::Existing);
        }
        if !r.members.contains_key(&new.sender) {
            return Err(StoreError::Conflict {
                what: StoreError::STALE,
            });
        }
        if state.message_index.contains_key(&new.id) {
            return Err(StoreError::Conflict { what: "id" });
        }
        let stored = StoredMessage {
            id: new.id,
            seq: r.room.last_seq + 1,
            sender: new.sender,
            kind: new.kind,
            content: new.content.as_str().to_owned(),
            attachment: new.attachment,
            reply_to: new.reply_to,
            created_at: new.created_at,
            edited_at: None,
            deleted: false,
            version: r.room.version + 1,
        };
        // Build the answer first: nothing is written if that fails.
        let message = to_message(&state.users, new.room_id, &stored, new.sender)?;
        r.room.last_seq = stored.seq;
        r.room.version = stored.version;
        r.last_activity = stored.created_at;
        if let Some(cmid) = &new.client_msg_id {
            r.client_msg_ids
                .insert((new.sender, cmid.clone()), stored.seq);
        }
        state
            .message_index
            .insert(stored.id, (new.room_id, stored.seq));
        r.messages.insert(stored.seq, stored);
        Ok(Appended::New(message))
    }

    async fn find(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError> {
        let state = self.lock()?;
        let Some(&(room, seq)) = state.message_index.get(&id) else {
            return Ok(None);
        };
        state
            .rooms
            .get(&room)
            .and_then(|r| r.messages.get(&seq))
            .map(|m| to_message(&state.users, room, m, viewer))
            .transpose()
    }

    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        viewer: UserId,
    ) -> Result<History, StoreError> {
        let state = self.lock()?;
        let Some(r) = state.rooms.get(&room) else {
            return Ok(History {
                messages: Vec::new(),
                has_more: false,
            });
        };
        let limit = query.limit().get() as usize;
        // Read one more than asked: its presence says whether more follow.
        let mut slice: Vec<&StoredMessage> = match query {
            HistoryQuery::Latest(_) => r.messages.values().rev().take(limit + 1).collect(),
            HistoryQuery::Before(seq, _) => r
                .messages
                .range(..seq)
                .rev()
                .map(|(_, m)| m)
                .take(limit + 1)
                .collect(),
            HistoryQuery::After(seq, _) => match seq.checked_add(1) {
                Some(from) => r
                    .messages
                    .range(from..)
                    .map(|(_, m)| m)
                    .take(limit + 1)
                    .collect(),
                None => Vec::new(),
            },
        };
        let has_more = slice.len() > limit;
        slice.truncate(limit);
        if !matches!(query, HistoryQuery::After(..)) {
            slice.reverse();
        }
        let messages = slice
            .into_iter()
            .map(|m| to_message(&state.users, room, m, viewer))
            .collect::<Result<_, _>>()?;
        Ok(History { messages, has_more })
    }

    async fn markers(&self, room: RoomId, user: UserId) -> Result<Markers, StoreError> {
        Ok(self
            .lock()?
            .rooms
            .get(&room)
            .and_then(|r| r.markers.get(&user))
            .copied()
            .unwrap_or_default())
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: u64) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let r = state.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let markers = r.markers.entry(user).or_default();
        markers.last_delivered_seq = markers.last_delivered_seq.max(seq);
        if seq > markers.last_read_seq {
            markers.last_read_seq = seq;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let r = state.rooms.get_mut(&room).ok_or(StoreError::NotFound)?;
        let markers = r.markers.entry(user).or_default();
        // Delivered is never behind read, so moving it forward keeps it so.
        if seq > markers.last_delivered_seq {
            markers.last_delivered_seq = seq;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
