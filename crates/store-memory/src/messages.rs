//! `MessageRepo`.

use async_trait::async_trait;
use chat_domain::{HistoryQuery, Message, MessageContent, MessageId, RoomId, Timestamp, UserId};
use chat_ports::{Appended, History, Markers, MessageRepo, NewMessage, Reacted, StoreError};

use crate::MemoryStore;
use crate::state::{State, StoredMessage, StoredReaction, seen_by, to_message};

/// The live (not deleted) message `id`, with its room, for a change: `None`
/// when there is no such message or it is deleted.
fn live_message(state: &mut State, id: MessageId) -> Option<(RoomId, &mut StoredMessage)> {
    let &(room, seq) = state.message_index.get(&id)?;
    let stored = state.rooms.get_mut(&room)?.messages.get_mut(&seq)?;
    (!stored.deleted).then_some((room, stored))
}

/// Raises the room's version by one for a change of one of its messages and
/// returns the new version.
fn bump_version(state: &mut State, room: RoomId) -> Result<u64, StoreError> {
    let r = state
        .rooms
        .get_mut(&room)
        .ok_or_else(|| StoreError::other("message index out of step"))?;
    r.room.version += 1;
    Ok(r.room.version)
}

/// Reads back message `id` as `viewer` sees it.
fn read_back(state: &State, id: MessageId, viewer: UserId) -> Result<Message, StoreError> {
    let &(room, seq) = state
        .message_index
        .get(&id)
        .ok_or_else(|| StoreError::other("message index out of step"))?;
    let stored = state
        .rooms
        .get(&room)
        .and_then(|r| r.messages.get(&seq))
        .ok_or_else(|| StoreError::other("message index out of step"))?;
    seen_by(state, room, stored, viewer)
}

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
            let first = first.clone();
            return seen_by(state, new.room_id, &first, new.sender).map(Appended::Existing);
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
            .map(|m| seen_by(&state, room, m, viewer))
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
            .map(|m| seen_by(&state, room, m, viewer))
            .collect::<Result<_, _>>()?;
        Ok(History { messages, has_more })
    }

    async fn edit(
        &self,
        id: MessageId,
        content: &MessageContent,
        at: Timestamp,
        viewer: UserId,
    ) -> Result<Option<Message>, StoreError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let Some((room, _)) = live_message(state, id) else {
            return Ok(None);
        };
        let version = bump_version(state, room)?;
        if let Some((_, stored)) = live_message(state, id) {
            stored.content = content.as_str().to_owned();
            stored.edited_at = Some(at);
            stored.version = version;
        }
        read_back(state, id, viewer).map(Some)
    }

    async fn delete(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let Some((room, _)) = live_message(state, id) else {
            return Ok(None);
        };
        let version = bump_version(state, room)?;
        if let Some((_, stored)) = live_message(state, id) {
            stored.content = String::new();
            stored.attachment = None;
            stored.deleted = true;
            stored.version = version;
        }
        // A tombstone carries no reactions.
        state.reactions.remove(&id);
        read_back(state, id, viewer).map(Some)
    }

    async fn react(
        &self,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
    ) -> Result<Option<Reacted>, StoreError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let Some((room, _)) = live_message(state, id) else {
            return Ok(None);
        };
        let list = state.reactions.entry(id).or_default();
        let existing = list.iter().position(|r| r.user == user && r.emoji == emoji);
        let changed = match (add, existing) {
            (true, None) => {
                list.push(StoredReaction {
                    user,
                    emoji: emoji.to_owned(),
                    created_at: at,
                });
                true
            }
            (false, Some(i)) => {
                list.remove(i);
                true
            }
            _ => false,
        };
        if list.is_empty() {
            state.reactions.remove(&id);
        }
        if changed {
            let version = bump_version(state, room)?;
            if let Some((_, stored)) = live_message(state, id) {
                stored.version = version;
            }
        }
        let message = read_back(state, id, user)?;
        Ok(Some(Reacted { changed, message }))
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
