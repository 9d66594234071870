//! `MessageRepo`, and reading messages as a viewer sees them (shared with
//! the room queries).

use std::collections::HashMap;

use async_trait::async_trait;
use chat_domain::{
    HistoryQuery, Message, MessageContent, MessageId, ReactionSummary, RoomId, Timestamp, UserId,
};
use chat_ports::{
    AppendError, Appended, Cursor, History, Markers, MessageRepo, MessageSearch, NewMessage, Page,
    PageRequest, Reacted, Reactors, Receipt, RoomSummary, SearchHit, StoreError,
};
use diesel::dsl::{AsSelect, count_star, min, not};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::error::TxError;
use crate::markers::Mark;
use crate::page::{overfetch, time_cursor, time_position};
use crate::rows::{
    AttachmentRow, MessageParts, MessageRow, RoomSummaryRow, SenderRow, to_i64, to_message, to_u64,
};
use crate::schema::{attachments, memberships, messages, reactions, read_markers, rooms, users};
use crate::sql::{TsMatches, bool_or, plainto_tsquery, simple, ts_rank};
use crate::{Conn, PgStore};

/// What a message is read with: the row, its sender, its attachment.
pub(crate) type PartsSelect = (
    AsSelect<MessageRow, Pg>,
    AsSelect<SenderRow, Pg>,
    AsSelect<Option<AttachmentRow>, Pg>,
);

pub(crate) fn parts() -> PartsSelect {
    (
        MessageRow::as_select(),
        SenderRow::as_select(),
        Option::<AttachmentRow>::as_select(),
    )
}

/// One emoji on one message: `(message, emoji, count, whether the viewer
/// is among those who reacted, when it was first used)`.
type ReactionRow = (Uuid, String, i64, Option<bool>, Option<Timestamp>);

/// The reactions on `ids` as `viewer` sees them: per message, each emoji in
/// the order it was first used (its `emoji_since`, ties by emoji bytes),
/// with its count and whether the viewer is among those who reacted.
async fn reactions_of(
    c: &mut Conn,
    ids: Vec<Uuid>,
    viewer: UserId,
) -> Result<HashMap<Uuid, Vec<ReactionSummary>>, TxError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut rows: Vec<ReactionRow> = reactions::table
        .filter(reactions::message_id.eq_any(ids))
        .group_by((reactions::message_id, reactions::emoji))
        .select((
            reactions::message_id,
            reactions::emoji,
            count_star(),
            bool_or(reactions::user_id.eq(viewer.0)),
            // One instant per emoji (`react_in`); `min` should it differ.
            min(reactions::emoji_since),
        ))
        .load(c)
        .await?;
    rows.sort_by(|a, b| (a.0, a.4, &a.1).cmp(&(b.0, b.4, &b.1)));
    let mut out: HashMap<Uuid, Vec<ReactionSummary>> = HashMap::new();
    for (message, emoji, count, me, _) in rows {
        out.entry(message).or_default().push(ReactionSummary {
            emoji,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            me: me.unwrap_or(false),
        });
    }
    Ok(out)
}

/// Turns message rows into the messages `viewer` sees, reactions included,
/// in the order given.
pub(crate) async fn as_seen_by(
    c: &mut Conn,
    rows: Vec<MessageParts>,
    viewer: UserId,
) -> Result<Vec<Message>, TxError> {
    let ids = rows.iter().map(|(m, _, _)| m.id).collect();
    let mut reactions = reactions_of(c, ids, viewer).await?;
    rows.into_iter()
        .map(|parts| {
            let mine = reactions.remove(&parts.0.id).unwrap_or_default();
            to_message(parts, mine).map_err(TxError::from)
        })
        .collect()
}

/// The message this sender sent to this room with this key, if any.
pub(crate) async fn by_client_id(
    c: &mut Conn,
    room: RoomId,
    sender: UserId,
    key: &str,
) -> Result<Option<Message>, TxError> {
    let row: Option<MessageParts> = messages::table
        .inner_join(users::table)
        .left_join(attachments::table)
        .filter(messages::room_id.eq(room.0))
        .filter(messages::sender_id.eq(sender.0))
        .filter(messages::client_msg_id.eq(key))
        .select(parts())
        .first(c)
        .await
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(as_seen_by(c, vec![row], sender).await?.pop())
}

/// The message as `viewer` sees it, `None` if there is none.
pub(crate) async fn find_in(
    c: &mut Conn,
    id: MessageId,
    viewer: UserId,
) -> Result<Option<Message>, TxError> {
    let row: Option<MessageParts> = messages::table
        .inner_join(users::table)
        .left_join(attachments::table)
        .filter(messages::id.eq(id.0))
        .select(parts())
        .first(c)
        .await
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(as_seen_by(c, vec![row], viewer).await?.pop())
}

/// Begins a change of message `id`: takes its room's row lock (which every
/// change of the room takes: sends, edits, deletes, reactions, membership),
/// then checks under it that the message still exists and is not deleted.
/// Returns its room, or `None` (having changed nothing).
async fn lock_live(c: &mut Conn, id: MessageId) -> Result<Option<Uuid>, TxError> {
    // A message never moves to another room, so its room can be read first.
    let room: Option<Uuid> = messages::table
        .find(id.0)
        .select(messages::room_id)
        .first(c)
        .await
        .optional()?;
    let Some(room) = room else {
        return Ok(None);
    };
    let locked: Option<Uuid> = rooms::table
        .find(room)
        .select(rooms::id)
        .for_no_key_update()
        .first(c)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(None);
    }
    // Read after the lock: a change committed meanwhile is seen.
    let deleted: Option<bool> = messages::table
        .find(id.0)
        .select(messages::deleted)
        .first(c)
        .await
        .optional()?;
    Ok((deleted == Some(false)).then_some(room))
}

/// Raises the (locked) room's version by one and makes it the version of
/// message `id`.
async fn bump_version(c: &mut Conn, room: Uuid, id: MessageId) -> Result<i64, TxError> {
    let version: i64 = diesel::update(rooms::table.find(room))
        .set(rooms::version.eq(rooms::version + 1))
        .returning(rooms::version)
        .get_result(c)
        .await?;
    diesel::update(messages::table.find(id.0))
        .set(messages::version.eq(version))
        .execute(c)
        .await?;
    Ok(version)
}

/// Reads back a message just changed in this transaction.
async fn changed(c: &mut Conn, id: MessageId, viewer: UserId) -> Result<Message, TxError> {
    find_in(c, id, viewer)
        .await?
        .ok_or_else(|| StoreError::other("a changed message vanished").into())
}

async fn edit_in(
    c: &mut Conn,
    id: MessageId,
    content: &str,
    at: Timestamp,
    viewer: UserId,
) -> Result<Option<Message>, TxError> {
    let Some(room) = lock_live(c, id).await? else {
        return Ok(None);
    };
    bump_version(c, room, id).await?;
    diesel::update(messages::table.find(id.0))
        .set((messages::content.eq(content), messages::edited_at.eq(at)))
        .execute(c)
        .await?;
    changed(c, id, viewer).await.map(Some)
}

async fn delete_in(
    c: &mut Conn,
    id: MessageId,
    viewer: UserId,
) -> Result<Option<Message>, TxError> {
    let Some(room) = lock_live(c, id).await? else {
        return Ok(None);
    };
    bump_version(c, room, id).await?;
    diesel::update(messages::table.find(id.0))
        .set((
            messages::content.eq(""),
            messages::attachment_id.eq(None::<Uuid>),
            messages::deleted.eq(true),
        ))
        .execute(c)
        .await?;
    // A tombstone carries no reactions.
    diesel::delete(reactions::table.filter(reactions::message_id.eq(id.0)))
        .execute(c)
        .await?;
    changed(c, id, viewer).await.map(Some)
}

async fn react_in(
    c: &mut Conn,
    id: MessageId,
    user: UserId,
    emoji: &str,
    add: bool,
    at: Timestamp,
) -> Result<Option<Reacted>, TxError> {
    let Some(room) = lock_live(c, id).await? else {
        return Ok(None);
    };
    // An unknown user breaks a foreign key: NotFound.
    let written = if add {
        // The emoji keeps its place while anyone still uses it: a new
        // reaction inherits the first use of the emoji's reactions already
        // there (all share it), else starts it. Read under the room's lock,
        // which every reaction on the message takes first, and (read
        // committed) after whatever committed before it: two first uses
        // cannot both miss each other, so every reaction of an emoji
        // carries one instant.
        let since: Option<Timestamp> = reactions::table
            .filter(reactions::message_id.eq(id.0))
            .filter(reactions::emoji.eq(emoji))
            .select(min(reactions::emoji_since))
            .first(c)
            .await?;
        diesel::insert_into(reactions::table)
            .values((
                reactions::message_id.eq(id.0),
                reactions::user_id.eq(user.0),
                reactions::emoji.eq(emoji),
                reactions::created_at.eq(at),
                reactions::emoji_since.eq(since.unwrap_or(at)),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await?
    } else {
        diesel::delete(
            reactions::table
                .filter(reactions::message_id.eq(id.0))
                .filter(reactions::user_id.eq(user.0))
                .filter(reactions::emoji.eq(emoji)),
        )
        .execute(c)
        .await?
    };
    let changed_any = written > 0;
    if changed_any {
        bump_version(c, room, id).await?;
    }
    let message = changed(c, id, user).await?;
    Ok(Some(Reacted {
        changed: changed_any,
        message,
    }))
}

/// The users who reacted to message `id`, grouped by emoji: emojis in the
/// order of [`reactions_of`] (each emoji's `emoji_since`, ties by emoji
/// bytes), users in the order they reacted (ties by user id).
async fn reactors_in(c: &mut Conn, id: MessageId) -> Result<Vec<Reactors>, TxError> {
    // A deleted message has no reactions left.
    let rows: Vec<(String, Uuid, Timestamp)> = reactions::table
        .filter(reactions::message_id.eq(id.0))
        .select((reactions::emoji, reactions::user_id, reactions::emoji_since))
        .order((reactions::created_at.asc(), reactions::user_id.asc()))
        .load(c)
        .await?;
    // In reaction order: each emoji's users in the order they reacted.
    let mut by_emoji: Vec<(Timestamp, String, Vec<UserId>)> = Vec::new();
    for (emoji, user, since) in rows {
        match by_emoji.iter_mut().find(|(_, e, _)| *e == emoji) {
            Some((first, _, users)) => {
                // One instant per emoji (`react_in`); `min` should it differ.
                *first = (*first).min(since);
                users.push(UserId(user));
            }
            None => by_emoji.push((since, emoji, vec![UserId(user)])),
        }
    }
    by_emoji.sort_by(|(a, x, _), (b, y, _)| (a, x).cmp(&(b, y)));
    Ok(by_emoji
        .into_iter()
        .map(|(_, emoji, user_ids)| Reactors { emoji, user_ids })
        .collect())
}

/// A rank as a cursor key: Rust's shortest form of the `real` that
/// PostgreSQL computed, which reads back to exactly that `real`.
fn rank_key(rank: f32) -> String {
    format!("{rank:?}")
}

/// Reads back a [`rank_key`]; `InvalidCursor` for anything else.
fn parse_rank_key(key: &str) -> Result<f32, StoreError> {
    key.parse::<f32>()
        .ok()
        .filter(|r| r.is_finite())
        .ok_or(StoreError::InvalidCursor)
}

/// One page of a search: the hits after `after` (a rank and a message id),
/// best first. The match runs on `messages.search` (its GIN index is
/// partial, `WHERE NOT deleted`, and so is the query), in the rooms
/// `viewer` is a member of, joined through `memberships`.
async fn search_in(
    c: &mut Conn,
    viewer: UserId,
    words: String,
    room: Option<RoomId>,
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> Result<Vec<(SearchHit, f32)>, TxError> {
    // The words go in as one bound parameter: plain text, parsed by the
    // 'simple' configuration as the column's words were, ANDed.
    let query = || plainto_tsquery(simple(), words.clone());
    let rank = || ts_rank(messages::search, query());
    let mut q = messages::table
        .inner_join(users::table)
        .left_join(attachments::table)
        .inner_join(rooms::table)
        .inner_join(
            memberships::table.on(memberships::room_id
                .eq(messages::room_id)
                .and(memberships::user_id.eq(viewer.0))),
        )
        .filter(TsMatches::new(messages::search, query()))
        .filter(not(messages::deleted))
        .select((
            MessageRow::as_select(),
            SenderRow::as_select(),
            Option::<AttachmentRow>::as_select(),
            RoomSummaryRow::as_select(),
            rank(),
        ))
        .order((rank().desc(), messages::id.desc()))
        .limit(fetch)
        .into_boxed();
    if let Some(room) = room {
        q = q.filter(messages::room_id.eq(room.0));
    }
    if let Some((at_rank, at_id)) = after {
        // In `real`, as ts_rank computes it: the cursor's rank is exactly
        // the rank of its hit.
        q = q.filter(
            rank()
                .lt(at_rank)
                .or(rank().eq(at_rank).and(messages::id.lt(at_id))),
        );
    }
    type Row = (
        MessageRow,
        SenderRow,
        Option<AttachmentRow>,
        RoomSummaryRow,
        f32,
    );
    let rows: Vec<Row> = q.load(c).await?;
    let mut found = Vec::with_capacity(rows.len());
    let mut rest = Vec::with_capacity(rows.len());
    for (message, sender, attachment, room, rank) in rows {
        found.push((message, sender, attachment));
        rest.push((room, rank));
    }
    let messages = as_seen_by(c, found, viewer).await?;
    messages
        .into_iter()
        .zip(rest)
        .map(|(message, (room, rank))| {
            Ok((
                SearchHit {
                    message,
                    room: RoomSummary::try_from(room)?,
                    rank: f64::from(rank),
                },
                rank,
            ))
        })
        .collect()
}

#[async_trait]
impl MessageRepo for PgStore {
    async fn append(&self, new: &NewMessage) -> Result<Appended, AppendError> {
        // Group commit: see the `writer` module.
        self.writers.append(new).await
    }

    async fn find(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError> {
        self.read(move |c| Box::pin(async move { find_in(c, id, viewer).await }))
            .await
    }

    async fn edit(
        &self,
        id: MessageId,
        content: &MessageContent,
        at: Timestamp,
        viewer: UserId,
    ) -> Result<Option<Message>, StoreError> {
        let content = content.as_str().to_owned();
        self.write(move |c| Box::pin(async move { edit_in(c, id, &content, at, viewer).await }))
            .await
    }

    async fn delete(&self, id: MessageId, viewer: UserId) -> Result<Option<Message>, StoreError> {
        self.write(move |c| Box::pin(async move { delete_in(c, id, viewer).await }))
            .await
    }

    async fn react(
        &self,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        at: Timestamp,
    ) -> Result<Option<Reacted>, StoreError> {
        let emoji = emoji.to_owned();
        self.write(move |c| Box::pin(async move { react_in(c, id, user, &emoji, add, at).await }))
            .await
    }

    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        viewer: UserId,
    ) -> Result<History, StoreError> {
        let limit = query.limit().get() as usize;
        self.read(move |c| {
            Box::pin(async move {
                let base = messages::table
                    .inner_join(users::table)
                    .left_join(attachments::table)
                    .filter(messages::room_id.eq(room.0))
                    .select(parts())
                    // One more than asked: its presence says whether more follow.
                    .limit(i64::try_from(limit + 1).unwrap_or(i64::MAX))
                    .into_boxed();
                // Seqs are positive `bigint`s; a bound past them reads as
                // "everything" (before) or "nothing" (after).
                let (slice, ascending) = match query {
                    HistoryQuery::Latest(_) => (base.order(messages::seq.desc()), false),
                    HistoryQuery::Before(seq, _) => {
                        let base = match i64::try_from(seq) {
                            Ok(seq) => base.filter(messages::seq.lt(seq)),
                            Err(_) => base,
                        };
                        (base.order(messages::seq.desc()), false)
                    }
                    HistoryQuery::After(seq, _) => match i64::try_from(seq) {
                        Ok(seq) => (
                            base.filter(messages::seq.gt(seq))
                                .order(messages::seq.asc()),
                            true,
                        ),
                        Err(_) => {
                            return Ok(History {
                                messages: Vec::new(),
                                has_more: false,
                            });
                        }
                    },
                };
                let mut rows: Vec<MessageParts> = slice.load(c).await?;
                let has_more = rows.len() > limit;
                rows.truncate(limit);
                if !ascending {
                    rows.reverse();
                }
                let messages = as_seen_by(c, rows, viewer).await?;
                Ok(History { messages, has_more })
            })
        })
        .await
    }

    async fn reactors(&self, id: MessageId) -> Result<Vec<Reactors>, StoreError> {
        self.query(move |c| Box::pin(async move { reactors_in(c, id).await }))
            .await
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
            .map(|c| Ok::<_, StoreError>((parse_rank_key(&c.key)?, c.id)))
            .transpose()?;
        // No words match nothing; nor does a NUL, which no text can hold.
        if search.words.is_empty() || search.words.iter().any(|w| w.contains('\0')) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let words = search.words.join(" ");
        let room = search.room;
        let limit = page.limit();
        let fetch = overfetch(page);
        let hits = self
            .read(move |c| {
                Box::pin(async move { search_in(c, viewer, words, room, after, fetch).await })
            })
            .await?;
        Ok(Page::from_overfetch(hits, limit, |(hit, rank)| {
            Cursor::new(rank_key(*rank), hit.message.id.0)
        })
        .map(|(hit, _)| hit))
    }

    async fn receipts(
        &self,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<Receipt>, StoreError> {
        let after = time_position(page.after.as_ref())?;
        let limit = page.limit();
        let fetch = overfetch(page);
        self.query(move |c| {
            Box::pin(async move {
                let mut query = memberships::table
                    .left_join(
                        read_markers::table.on(read_markers::room_id
                            .eq(memberships::room_id)
                            .and(read_markers::user_id.eq(memberships::user_id))),
                    )
                    .filter(memberships::room_id.eq(room.0))
                    .select((
                        memberships::user_id,
                        memberships::joined_at,
                        read_markers::last_read_seq.nullable(),
                        read_markers::last_delivered_seq.nullable(),
                    ))
                    .order((memberships::joined_at.asc(), memberships::user_id.asc()))
                    .limit(fetch)
                    .into_boxed();
                if let Some((t, id)) = after {
                    query = query.filter(
                        memberships::joined_at.gt(t).or(memberships::joined_at
                            .eq(t)
                            .and(memberships::user_id.gt(id))),
                    );
                }
                let rows: Vec<(Uuid, Timestamp, Option<i64>, Option<i64>)> = query.load(c).await?;
                let items = rows
                    .into_iter()
                    .map(|(user, joined_at, read, delivered)| {
                        let markers = Markers {
                            last_read_seq: to_u64(read.unwrap_or(0), "read_markers.last_read_seq")?,
                            last_delivered_seq: to_u64(
                                delivered.unwrap_or(0),
                                "read_markers.last_delivered_seq",
                            )?,
                        };
                        Ok((
                            joined_at,
                            Receipt {
                                user_id: UserId(user),
                                markers,
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(Page::from_overfetch(items, limit, |(joined_at, receipt)| {
                    time_cursor(*joined_at, receipt.user_id.0)
                })
                .map(|(_, receipt)| receipt))
            })
        })
        .await
    }

    async fn markers(&self, room: RoomId, user: UserId) -> Result<Markers, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row: Option<(i64, i64)> = read_markers::table
                    .find((room.0, user.0))
                    .select((
                        read_markers::last_read_seq,
                        read_markers::last_delivered_seq,
                    ))
                    .first(c)
                    .await
                    .optional()?;
                let Some((read, delivered)) = row else {
                    return Ok(Markers::default());
                };
                Ok(Markers {
                    last_read_seq: to_u64(read, "read_markers.last_read_seq")?,
                    last_delivered_seq: to_u64(delivered, "read_markers.last_delivered_seq")?,
                })
            })
        })
        .await
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: u64) -> Result<bool, StoreError> {
        // Batched with every other marker write: see the `markers` module.
        let seq = to_i64(seq, "seq")?;
        self.marks
            .mark(Mark::Read {
                room: room.0,
                user: user.0,
                seq,
            })
            .await
    }

    async fn mark_delivered(
        &self,
        room: RoomId,
        user: UserId,
        seq: u64,
    ) -> Result<bool, StoreError> {
        let seq = to_i64(seq, "seq")?;
        self.marks
            .mark(Mark::Delivered {
                room: room.0,
                user: user.0,
                seq,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_keys_read_back_to_the_same_real() {
        for rank in [0.0_f32, 0.060_792_71, 0.1, 1.0 / 3.0, 1e-20, f32::MAX] {
            assert_eq!(
                parse_rank_key(&rank_key(rank)).ok().map(f32::to_bits),
                Some(rank.to_bits())
            );
        }
        for bad in ["", "x", "NaN", "inf", "1,5"] {
            assert!(matches!(
                parse_rank_key(bad),
                Err(StoreError::InvalidCursor)
            ));
        }
    }
}
