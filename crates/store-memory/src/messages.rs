//! `MessageRepo`.

use std::cmp::Ordering;
use std::ops::Bound;

use async_trait::async_trait;
use chat_domain::attachment::{kind_fits, kind_for};
use chat_domain::{
    HistoryQuery, Message, MessageContent, MessageId, MessageKind, RoomId, Timestamp, UserId,
};
use chat_ports::{
    AppendError, Appended, Cursor, History, Markers, MessageRepo, MessageSearch, NewMessage, Page,
    PageRequest, Reacted, Reactors, Receipt, RoomSummary, SearchHit, SendRefused, StoreError,
};

use crate::MemoryStore;
use crate::state::{
    RoomState, State, StoredMessage, StoredReaction, emoji_since, forget_use, record_use, seen_by,
    time_cursor, time_position, to_message,
};

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

/// The reactions of one message grouped by emoji: emojis in the order of
/// [`crate::state::reaction_summaries`] (each emoji's `emoji_since`, ties
/// by emoji bytes), users in the order they reacted (ties by user id).
fn reactors_of(list: &[StoredReaction]) -> Vec<Reactors> {
    let mut in_order: Vec<&StoredReaction> = list.iter().collect();
    in_order.sort_unstable_by_key(|r| (r.created_at, r.user));
    let mut by_emoji: Vec<(Timestamp, &str, Vec<UserId>)> = Vec::new();
    for r in in_order {
        match by_emoji.iter_mut().find(|(_, emoji, _)| *emoji == r.emoji) {
            Some((first, _, users)) => {
                // One instant per emoji; `min` should it ever differ.
                *first = (*first).min(r.emoji_since);
                users.push(r.user);
            }
            None => by_emoji.push((r.emoji_since, &r.emoji, vec![r.user])),
        }
    }
    by_emoji.sort_by(|(a, x, _), (b, y, _)| (a, x).cmp(&(b, y)));
    by_emoji
        .into_iter()
        .map(|(_, emoji, user_ids)| Reactors {
            emoji: emoji.to_owned(),
            user_ids,
        })
        .collect()
}

/// The words of a message's text: split at every character that is not a
/// letter or a digit, lower-cased.
fn tokens(content: &str) -> impl Iterator<Item = String> + '_ {
    content
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// How well `content` matches `words`: `None` unless every word is one of
/// its tokens; else how many of its tokens are one of the words.
fn rank_of(content: &str, words: &[String]) -> Option<f64> {
    let mut found = vec![false; words.len()];
    let mut occurrences = 0_u32;
    for token in tokens(content) {
        let mut hit = false;
        for (i, word) in words.iter().enumerate() {
            if *word == token {
                found[i] = true;
                hit = true;
            }
        }
        occurrences += u32::from(hit);
    }
    found.iter().all(|f| *f).then_some(f64::from(occurrences))
}

/// A rank as a cursor key: Rust's shortest form that reads back exactly.
fn rank_key(rank: f64) -> String {
    format!("{rank:?}")
}

/// Reads back a [`rank_key`]; `InvalidCursor` for anything else.
fn parse_rank_key(key: &str) -> Result<f64, StoreError> {
    key.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite())
        .ok_or(StoreError::InvalidCursor)
}

#[async_trait]
impl MessageRepo for MemoryStore {
    async fn append(&self, new: &NewMessage) -> Result<Appended, AppendError> {
        let mut state = self.lock()?;
        let state = &mut *state;
        // The port's checks, in the port's order.
        let blocked = |a: UserId, b: UserId| {
            state
                .blocks
                .get(&a)
                .is_some_and(|list| list.by_user.contains_key(&b))
        };
        let r = state.rooms.get(&new.room_id).ok_or(SendRefused::NoRoom)?;
        if !r.members.contains_key(&new.sender) {
            return Err(SendRefused::NotAMember {
                room_kind: r.room.kind,
            }
            .into());
        }
        if let Some((a, b)) = r.room.direct_pair
            && a != b
            && (blocked(a, b) || blocked(b, a))
        {
            return Err(SendRefused::Blocked.into());
        }
        // A replay answers with the first message whatever this send says.
        if let Some(cmid) = &new.client_msg_id
            && let Some(seq) = r.client_msg_ids.get(&(new.sender, cmid.clone()))
        {
            let first = r
                .messages
                .get(seq)
                .ok_or_else(|| StoreError::other("client_msg_id index out of step"))?;
            let first = first.clone();
            return Ok(Appended::Existing(seen_by(
                state,
                new.room_id,
                &first,
                new.sender,
            )?));
        }
        if state.message_index.contains_key(&new.id) {
            return Err(SendRefused::IdTaken.into());
        }
        let kind = match new.attachment {
            None => new.kind.unwrap_or(MessageKind::Text),
            Some(id) => {
                let file = state
                    .attachments
                    .get(&id)
                    .filter(|a| a.uploader == new.sender)
                    .ok_or(SendRefused::NoSuchAttachment)?;
                match new.kind {
                    None => kind_for(&file.content_type),
                    Some(kind) if kind_fits(kind, &file.content_type) => kind,
                    Some(kind) => {
                        return Err(SendRefused::KindMismatch {
                            kind,
                            content_type: file.content_type.clone(),
                        }
                        .into());
                    }
                }
            }
        };
        if let Some(reply_to) = new.reply_to
            && state
                .message_index
                .get(&reply_to)
                .is_none_or(|(room, _)| *room != new.room_id)
        {
            return Err(SendRefused::NoSuchReply.into());
        }
        let r = state
            .rooms
            .get_mut(&new.room_id)
            .ok_or(SendRefused::NoRoom)?;
        let stored = StoredMessage {
            id: new.id,
            seq: r.room.last_seq + 1,
            sender: new.sender,
            kind,
            content: new.content.as_str().to_owned(),
            attachment: new.attachment,
            reply_to: new.reply_to,
            created_at: new.created_at,
            edited_at: None,
            deleted: false,
            version: r.room.version + 1,
        };
        // Build the answer first: nothing is written if that fails.
        let message = to_message(
            &state.users,
            &state.attachments,
            new.room_id,
            &stored,
            new.sender,
        )?;
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
        if let Some(attachment) = new.attachment {
            record_use(state, attachment, new.id);
        }
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
        let mut carried = None;
        if let Some((_, stored)) = live_message(state, id) {
            stored.content = String::new();
            carried = stored.attachment.take();
            stored.deleted = true;
            stored.version = version;
        }
        if let Some(attachment) = carried {
            forget_use(state, attachment, id);
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
                // The emoji keeps its place while anyone still uses it.
                let emoji_since = emoji_since(list, emoji, at);
                list.push(StoredReaction {
                    user,
                    emoji: emoji.to_owned(),
                    created_at: at,
                    emoji_since,
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

    async fn reactors(&self, id: MessageId) -> Result<Vec<Reactors>, StoreError> {
        let state = self.lock()?;
        // A deleted message has no reactions left: no entry.
        Ok(state
            .reactions
            .get(&id)
            .map(|list| reactors_of(list))
            .unwrap_or_default())
    }

    async fn search(
        &self,
        viewer: UserId,
        search: &MessageSearch,
        page: &PageRequest,
    ) -> Result<Page<SearchHit>, StoreError> {
        let after = page
            .after
            .as_ref()
            .map(|c| Ok::<_, StoreError>((parse_rank_key(&c.key)?, MessageId(c.id))))
            .transpose()?;
        if search.words.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let state = self.lock()?;
        let Some(mine) = state.rooms_of_user.get(&viewer) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let rooms: Vec<RoomId> = match search.room {
            Some(room) => mine.contains(&room).then_some(room).into_iter().collect(),
            None => mine.iter().copied().collect(),
        };
        let mut hits: Vec<(f64, &RoomState, &StoredMessage)> = Vec::new();
        for room in rooms {
            let Some(r) = state.rooms.get(&room) else {
                continue;
            };
            for m in r.messages.values().filter(|m| !m.deleted) {
                let Some(rank) = rank_of(&m.content, &search.words) else {
                    continue;
                };
                let past_cursor =
                    after.is_none_or(|(at_rank, at_id)| match rank.total_cmp(&at_rank) {
                        Ordering::Less => true,
                        Ordering::Equal => m.id < at_id,
                        Ordering::Greater => false,
                    });
                if past_cursor {
                    hits.push((rank, r, m));
                }
            }
        }
        // Best match first, ties newest first.
        hits.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.2.id.cmp(&a.2.id)));
        hits.truncate(page.limit() + 1);
        let items = hits
            .into_iter()
            .map(|(rank, r, m)| {
                Ok(SearchHit {
                    message: seen_by(&state, r.room.id, m, viewer)?,
                    room: RoomSummary {
                        id: r.room.id,
                        name: r.room.name.clone(),
                        kind: r.room.kind,
                    },
                    rank,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, page.limit(), |h| {
            Cursor::new(rank_key(h.rank), h.message.id.0)
        }))
    }

    async fn receipts(
        &self,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<Receipt>, StoreError> {
        let state = self.lock()?;
        let lower =
            time_position::<UserId>(page.after.as_ref())?.map_or(Bound::Unbounded, Bound::Excluded);
        let Some(r) = state.rooms.get(&room) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let items: Vec<(Timestamp, Receipt)> = r
            .join_order
            .range((lower, Bound::Unbounded))
            .take(page.limit() + 1)
            .map(|&(joined_at, user_id)| {
                let markers = r.markers.get(&user_id).copied().unwrap_or_default();
                (joined_at, Receipt { user_id, markers })
            })
            .collect();
        Ok(
            Page::from_overfetch(items, page.limit(), |(joined_at, receipt)| {
                time_cursor(*joined_at, receipt.user_id.0)
            })
            .map(|(_, receipt)| receipt),
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn tokens_split_at_everything_but_letters_and_digits() {
        assert_eq!(
            tokens("Hello, WORLD! it's v2.0 — Ünïcode_ok").collect::<Vec<_>>(),
            vec!["hello", "world", "it", "s", "v2", "0", "ünïcode", "ok"]
        );
        assert_eq!(tokens(" ,;! ").count(), 0);
    }

    #[test]
    fn every_word_must_match_and_rank_counts_occurrences() {
        let text = "Quick! quick fox, QUICK brown fox";
        assert_eq!(rank_of(text, &words(&["quick"])), Some(3.0));
        assert_eq!(rank_of(text, &words(&["quick", "fox"])), Some(5.0));
        assert_eq!(rank_of(text, &words(&["fox", "fox"])), Some(2.0));
        assert_eq!(rank_of(text, &words(&["quick", "cat"])), None);
        assert_eq!(rank_of(text, &words(&["qui"])), None, "no prefixes");
        assert_eq!(rank_of("quickly", &words(&["quick"])), None);
    }

    #[test]
    fn rank_keys_read_back_exactly() {
        for rank in [0.0, 1.0, 3.0, 0.1, 1.0 / 3.0, 1e-20, 12_345.678] {
            assert_eq!(parse_rank_key(&rank_key(rank)).ok(), Some(rank));
        }
        for bad in ["", "x", "NaN", "inf", "-inf", "1,5"] {
            assert!(matches!(
                parse_rank_key(bad),
                Err(StoreError::InvalidCursor)
            ));
        }
    }
}
