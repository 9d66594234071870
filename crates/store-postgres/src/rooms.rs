//! `RoomRepo`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chat_domain::{Membership, MessageId, MessageKind, Role, Room, RoomId, User, UserId};
use chat_ports::room_ops::{self, RoomFacts};
use chat_ports::{
    Applied, Changes, MemberView, MyRoom, NewRoom, Page, PageRequest, RoomChange, RoomOp, RoomRepo,
    StoreError,
};
use diesel::dsl::{count_star, exists, not};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::error::TxError;
use crate::messages::{as_seen_by, parts};
use crate::page::{overfetch, time_cursor, time_position};
use crate::rows::{
    MembershipRow, MessageParts, MessageRow, NewMembershipRow, NewMessageRow, NewRoomRow, RoomRow,
    SenderRow, UserRow, message_kind_str, parse_role, role_str, room_kind_str, to_i64, to_message,
    to_u64,
};
use crate::schema::{
    attachments, bans, memberships, messages, read_markers, room_departures, rooms, users,
};
use crate::sql::{casefold, coalesce_i64, strpos};
use crate::{Conn, PgStore};

fn count(n: usize) -> Result<i32, StoreError> {
    i32::try_from(n).map_err(|_| StoreError::other("too many members"))
}

#[async_trait]
impl RoomRepo for PgStore {
    async fn create(&self, new: &NewRoom, members: &[(UserId, Role)]) -> Result<Room, StoreError> {
        let new = new.clone();
        // A user named twice joins once, with the first role given.
        let mut seen = HashSet::new();
        let members: Vec<(UserId, Role)> = members
            .iter()
            .copied()
            .filter(|(user, _)| seen.insert(*user))
            .collect();
        let member_count = count(members.len())?;
        self.write(move |c| {
            Box::pin(async move {
                // The unique indexes answer a taken id, then a taken pair
                // (also when two creations race); the foreign keys, checked
                // after them, an unknown user: the memory store's order.
                let row = diesel::insert_into(rooms::table)
                    .values(NewRoomRow {
                        id: new.id.0,
                        kind: room_kind_str(new.kind),
                        name: new.name.as_str(),
                        description: new.description.as_str(),
                        created_by: new.created_by.0,
                        created_at: new.created_at,
                        member_count,
                        last_seq: 0,
                        version: 1,
                        last_activity_at: new.created_at,
                        direct_user_a: new.direct_pair.map(|(a, _)| a.0),
                        direct_user_b: new.direct_pair.map(|(_, b)| b.0),
                    })
                    .returning(RoomRow::as_returning())
                    .get_result(c)
                    .await?;
                let rows: Vec<NewMembershipRow> = members
                    .iter()
                    .map(|(user, role)| NewMembershipRow {
                        room_id: new.id.0,
                        user_id: user.0,
                        role: role_str(*role),
                        joined_at: new.created_at,
                        version: 1,
                    })
                    .collect();
                if !rows.is_empty() {
                    diesel::insert_into(memberships::table)
                        .values(&rows)
                        .execute(c)
                        .await?;
                }
                Ok(Room::try_from(row)?)
            })
        })
        .await
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row = rooms::table
                    .find(id.0)
                    .select(RoomRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Room::try_from).transpose()?)
            })
        })
        .await
    }

    async fn find_direct(&self, pair: (UserId, UserId)) -> Result<Option<Room>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row = rooms::table
                    .filter(rooms::direct_user_a.eq(pair.0.0))
                    .filter(rooms::direct_user_b.eq(pair.1.0))
                    .select(RoomRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Room::try_from).transpose()?)
            })
        })
        .await
    }

    async fn list_public(&self, query: &str, page: &PageRequest) -> Result<Page<Room>, StoreError> {
        let after = time_position(page.after.as_ref())?;
        // PostgreSQL text cannot hold NUL, and no room name has one.
        if query.contains('\0') {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let needle = query.to_lowercase();
        let limit = page.limit();
        let fetch = overfetch(page);
        self.query(move |c| {
            Box::pin(async move {
                let mut query = rooms::table
                    .filter(rooms::kind.eq(room_kind_str(chat_domain::RoomKind::Public)))
                    .filter(strpos(casefold(rooms::name), needle).gt(0))
                    .select(RoomRow::as_select())
                    .order((rooms::created_at.desc(), rooms::id.desc()))
                    .limit(fetch)
                    .into_boxed();
                if let Some((t, id)) = after {
                    query = query.filter(
                        rooms::created_at
                            .lt(t)
                            .or(rooms::created_at.eq(t).and(rooms::id.lt(id))),
                    );
                }
                let rooms = query
                    .load(c)
                    .await?
                    .into_iter()
                    .map(Room::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(rooms, limit, |r| {
                    time_cursor(r.created_at, r.id.0)
                }))
            })
        })
        .await
    }

    async fn list_mine(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<MyRoom>, StoreError> {
        let after = time_position(page.after.as_ref())?;
        let limit = page.limit();
        let fetch = overfetch(page);
        self.read(move |c| {
            Box::pin(async move {
                let mut query = memberships::table
                    .inner_join(rooms::table)
                    .filter(memberships::user_id.eq(user.0))
                    .select((RoomRow::as_select(), memberships::role))
                    .order((rooms::last_activity_at.desc(), rooms::id.desc()))
                    .limit(fetch)
                    .into_boxed();
                if let Some((t, id)) = after {
                    query = query.filter(
                        rooms::last_activity_at
                            .lt(t)
                            .or(rooms::last_activity_at.eq(t).and(rooms::id.lt(id))),
                    );
                }
                let mine: Vec<(RoomRow, String)> = query.load(c).await?;
                // The extra row only says that a next page exists.
                let ids: Vec<Uuid> = mine.iter().take(limit).map(|(r, _)| r.id).collect();

                // Unread: after the member's read marker, sent by others, not deleted.
                let unread: HashMap<Uuid, i64> = messages::table
                    .left_join(
                        read_markers::table.on(read_markers::room_id
                            .eq(messages::room_id)
                            .and(read_markers::user_id.eq(user.0))),
                    )
                    .filter(messages::room_id.eq_any(&ids))
                    .filter(messages::sender_id.ne(user.0))
                    .filter(messages::deleted.eq(false))
                    .filter(
                        messages::seq.gt(coalesce_i64(read_markers::last_read_seq.nullable(), 0)),
                    )
                    .group_by(messages::room_id)
                    .select((messages::room_id, count_star()))
                    .load::<(Uuid, i64)>(c)
                    .await?
                    .into_iter()
                    .collect();

                // The newest message of each room: seq = last_seq.
                let last: Vec<MessageParts> = messages::table
                    .inner_join(rooms::table)
                    .inner_join(users::table)
                    .left_join(attachments::table)
                    .filter(messages::room_id.eq_any(&ids))
                    .filter(messages::seq.eq(rooms::last_seq))
                    .select(parts())
                    .load(c)
                    .await?;
                let mut last: HashMap<Uuid, _> = as_seen_by(c, last, user)
                    .await?
                    .into_iter()
                    .map(|m| (m.room_id.0, m))
                    .collect();

                let mut items = Vec::with_capacity(mine.len());
                for (row, role) in mine {
                    let id = row.id;
                    let activity = row.last_activity_at;
                    items.push((
                        activity,
                        MyRoom {
                            room: Room::try_from(row)?,
                            my_role: parse_role(&role)?,
                            unread_count: to_u64(
                                unread.get(&id).copied().unwrap_or(0),
                                "unread count",
                            )?,
                            last_message: last.remove(&id),
                        },
                    ));
                }
                Ok(Page::from_overfetch(items, limit, |(activity, r)| {
                    time_cursor(*activity, r.room.id.0)
                })
                .map(|(_, r)| r))
            })
        })
        .await
    }

    async fn room_ids_of(&self, user: UserId) -> Result<Vec<RoomId>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                // An index-only scan of memberships_user_id_idx.
                let ids: Vec<Uuid> = memberships::table
                    .filter(memberships::user_id.eq(user.0))
                    .order(memberships::room_id.asc())
                    .select(memberships::room_id)
                    .load(c)
                    .await?;
                Ok(ids.into_iter().map(RoomId).collect())
            })
        })
        .await
    }

    async fn changes(
        &self,
        room: RoomId,
        since: u64,
        limit: u32,
        viewer: UserId,
    ) -> Result<Option<Changes>, StoreError> {
        // Versions are positive `bigint`s: past them, nothing is newer.
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let limit = limit.max(1);
        self.read(move |c| Box::pin(async move { changes_in(c, room, since, limit, viewer).await }))
            .await
    }

    async fn find_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let row = memberships::table
                    .find((room.0, user.0))
                    .select(MembershipRow::as_select())
                    .first(c)
                    .await
                    .optional()?;
                Ok(row.map(Membership::try_from).transpose()?)
            })
        })
        .await
    }

    async fn all_members(&self, room: RoomId) -> Result<Vec<Membership>, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                let rows: Vec<MembershipRow> = memberships::table
                    .filter(memberships::room_id.eq(room.0))
                    .order((memberships::joined_at.asc(), memberships::user_id.asc()))
                    .select(MembershipRow::as_select())
                    .load(c)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(Membership::try_from)
                    .collect::<Result<_, _>>()?)
            })
        })
        .await
    }

    async fn list_members(
        &self,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<MemberView>, StoreError> {
        let after = time_position(page.after.as_ref())?;
        let limit = page.limit();
        let fetch = overfetch(page);
        self.query(move |c| {
            Box::pin(async move {
                let mut query = memberships::table
                    .inner_join(users::table)
                    .filter(memberships::room_id.eq(room.0))
                    .select((MembershipRow::as_select(), UserRow::as_select()))
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
                let rows: Vec<(MembershipRow, UserRow)> = query.load(c).await?;
                let items = rows
                    .into_iter()
                    .map(|(m, u)| {
                        Ok(MemberView {
                            membership: Membership::try_from(m)?,
                            user: User::try_from(u)?,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(Page::from_overfetch(items, limit, |m| {
                    time_cursor(m.membership.joined_at, m.membership.user_id.0)
                }))
            })
        })
        .await
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.query(move |c| {
            Box::pin(async move {
                Ok(diesel::select(exists(bans::table.find((room.0, user.0))))
                    .get_result(c)
                    .await?)
            })
        })
        .await
    }

    async fn apply(&self, room: RoomId, ops: &[RoomOp]) -> Result<Applied, StoreError> {
        let ops = ops.to_vec();
        self.write(move |c| Box::pin(async move { apply_in(c, room, &ops).await }))
            .await
    }
}

// ---------------------------------------------------------------- changes

/// [`RoomRepo::changes`], in its read-only snapshot. Each of the three reads
/// is a range scan of a `(room_id, version)` index: `messages`,
/// `memberships` and `room_departures` each keep the room version of their
/// row's latest change.
async fn changes_in(
    c: &mut Conn,
    room: RoomId,
    since: i64,
    limit: u32,
    viewer: UserId,
) -> Result<Option<Changes>, TxError> {
    let row: Option<RoomRow> = rooms::table
        .find(room.0)
        .select(RoomRow::as_select())
        .first(c)
        .await
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let room = Room::try_from(row)?;

    // The `limit` lowest versions after `since`, one more to see whether
    // more follow.
    let mut rows: Vec<MessageParts> = messages::table
        .inner_join(users::table)
        .left_join(attachments::table)
        .filter(messages::room_id.eq(room.id.0))
        .filter(messages::version.gt(since))
        .order(messages::version.asc())
        .limit(i64::from(limit) + 1)
        .select(parts())
        .load(c)
        .await?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let version = match rows.last() {
        Some((last, _, _)) if has_more => to_u64(last.version, "messages.version")?,
        _ => room.version,
    };
    rows.sort_unstable_by_key(|(m, _, _)| m.seq);
    let messages = as_seen_by(c, rows, viewer).await?;

    let members: Vec<(MembershipRow, UserRow)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::room_id.eq(room.id.0))
        .filter(memberships::version.gt(since))
        .order((memberships::joined_at.asc(), memberships::user_id.asc()))
        .select((MembershipRow::as_select(), UserRow::as_select()))
        .load(c)
        .await?;
    let members = members
        .into_iter()
        .map(|(m, u)| {
            Ok(MemberView {
                membership: Membership::try_from(m)?,
                user: User::try_from(u)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    // Who left and has not come back.
    let still_member = memberships::table
        .filter(memberships::room_id.eq(room_departures::room_id))
        .filter(memberships::user_id.eq(room_departures::user_id));
    let left: Vec<Uuid> = room_departures::table
        .filter(room_departures::room_id.eq(room.id.0))
        .filter(room_departures::version.gt(since))
        .filter(not(exists(still_member)))
        .order((
            room_departures::version.asc(),
            room_departures::user_id.asc(),
        ))
        .select(room_departures::user_id)
        .load(c)
        .await?;

    Ok(Some(Changes {
        room,
        messages,
        members,
        left_member_ids: left.into_iter().map(UserId).collect(),
        has_more,
        version,
    }))
}

// ---------------------------------------------------------------- apply

/// What the steps' checks need to know, read once the room is locked: the
/// facts about every user and message id the steps name.
#[derive(Default)]
struct Facts {
    /// Members in the room now.
    member_count: u32,
    /// Roles of the named users who are members now.
    roles: HashMap<Uuid, Role>,
    /// The named users who are banned now.
    banned: HashSet<Uuid>,
    /// The named users who exist, with what a message shows of them.
    users: HashMap<Uuid, SenderRow>,
    /// The new message ids that are taken already.
    taken_ids: HashSet<Uuid>,
}

impl Facts {
    async fn load(c: &mut Conn, room: RoomId, ops: &[RoomOp]) -> Result<Self, TxError> {
        let (mut members, mut bans_of, mut users_of, mut ids) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for op in ops {
            match op {
                RoomOp::ExpectRole { user, .. }
                | RoomOp::RemoveMember { user }
                | RoomOp::SetRole { user, .. } => members.push(user.0),
                RoomOp::AddMember { user, .. } => {
                    members.push(user.0);
                    users_of.push(user.0);
                }
                RoomOp::ExpectBanned { user, .. } | RoomOp::Unban { user } => bans_of.push(user.0),
                RoomOp::Ban { user, by, .. } => {
                    users_of.extend([user.0, by.0]);
                }
                RoomOp::SystemMessage { id, sender, .. } => {
                    users_of.push(sender.0);
                    ids.push(id.0);
                }
                RoomOp::ExpectMembers { .. } | RoomOp::Update { .. } | RoomOp::Delete => {}
            }
        }
        let mut facts = Self::default();
        if !members.is_empty() {
            let rows: Vec<(Uuid, String)> = memberships::table
                .filter(memberships::room_id.eq(room.0))
                .filter(memberships::user_id.eq_any(&members))
                .select((memberships::user_id, memberships::role))
                .load(c)
                .await?;
            for (user, role) in rows {
                facts.roles.insert(user, parse_role(&role)?);
            }
        }
        if !bans_of.is_empty() {
            let rows: Vec<Uuid> = bans::table
                .filter(bans::room_id.eq(room.0))
                .filter(bans::user_id.eq_any(&bans_of))
                .select(bans::user_id)
                .load(c)
                .await?;
            facts.banned.extend(rows);
        }
        if !users_of.is_empty() {
            let rows: Vec<SenderRow> = users::table
                .filter(users::id.eq_any(&users_of))
                .select(SenderRow::as_select())
                .load(c)
                .await?;
            facts.users.extend(rows.into_iter().map(|u| (u.id, u)));
        }
        if !ids.is_empty() {
            let rows: Vec<Uuid> = messages::table
                .filter(messages::id.eq_any(&ids))
                .select(messages::id)
                .load(c)
                .await?;
            facts.taken_ids.extend(rows);
        }
        Ok(facts)
    }

    fn require_user(&self, user: UserId) -> Result<&SenderRow, StoreError> {
        self.users.get(&user.0).ok_or(StoreError::NotFound)
    }
}

impl RoomFacts for Facts {
    fn member_count(&self) -> u32 {
        self.member_count
    }
    fn role_of(&self, user: UserId) -> Option<Role> {
        self.roles.get(&user.0).copied()
    }
    fn is_banned(&self, user: UserId) -> bool {
        self.banned.contains(&user.0)
    }
    fn user_exists(&self, user: UserId) -> bool {
        self.users.contains_key(&user.0)
    }
    fn message_id_taken(&self, id: MessageId) -> bool {
        self.taken_ids.contains(&id.0)
    }
}

/// One change of the room, in its transaction: lock the room, check every
/// step, then apply them in order.
async fn apply_in(c: &mut Conn, room: RoomId, ops: &[RoomOp]) -> Result<Applied, TxError> {
    // The row lock serialises this with every other change of the room
    // (sends included). Deleting needs the strongest lock; anything else
    // leaves foreign-key checks of other tables (a read marker) free to go on.
    let locked = rooms::table.find(room.0).select(RoomRow::as_select());
    let row: Option<RoomRow> = if ops.iter().any(|op| matches!(op, RoomOp::Delete)) {
        locked.for_update().first(c).await.optional()?
    } else {
        locked.for_no_key_update().first(c).await.optional()?
    };
    let row = row.ok_or(StoreError::NotFound)?;
    let mut facts = Facts::load(c, room, ops).await?;
    facts.member_count = u32::try_from(row.member_count).unwrap_or(0);
    room_ops::check(&facts, ops)?;
    commit(c, row, &facts, ops).await
}

/// Applies `ops`, which [`check`] has passed.
async fn commit(
    c: &mut Conn,
    mut row: RoomRow,
    facts: &Facts,
    ops: &[RoomOp],
) -> Result<Applied, TxError> {
    let room = row.id;
    let mut version = to_u64(row.version, "rooms.version")?;
    let mut changes = Vec::new();
    for op in ops {
        match op {
            RoomOp::ExpectRole { .. }
            | RoomOp::ExpectMembers { .. }
            | RoomOp::ExpectBanned { .. } => {}
            RoomOp::AddMember { user, role, at } => {
                version += 1;
                diesel::insert_into(memberships::table)
                    .values(NewMembershipRow {
                        room_id: room,
                        user_id: user.0,
                        role: role_str(*role),
                        joined_at: *at,
                        version: to_i64(version, "version")?,
                    })
                    .execute(c)
                    .await?;
                row.member_count += 1;
                changes.push(RoomChange::MemberAdded {
                    membership: Membership {
                        room_id: RoomId(room),
                        user_id: *user,
                        role: *role,
                        joined_at: *at,
                    },
                    version,
                });
            }
            RoomOp::RemoveMember { user } => {
                version += 1;
                diesel::delete(memberships::table.find((room, user.0)))
                    .execute(c)
                    .await?;
                // Kept for "changes since V"; a later departure overwrites it.
                diesel::insert_into(room_departures::table)
                    .values((
                        room_departures::room_id.eq(room),
                        room_departures::user_id.eq(user.0),
                        room_departures::version.eq(to_i64(version, "version")?),
                    ))
                    .on_conflict((room_departures::room_id, room_departures::user_id))
                    .do_update()
                    .set(room_departures::version.eq(excluded(room_departures::version)))
                    .execute(c)
                    .await?;
                row.member_count = (row.member_count - 1).max(0);
                changes.push(RoomChange::MemberRemoved {
                    user: *user,
                    version,
                });
            }
            RoomOp::SetRole { user, role } => {
                version += 1;
                let updated: MembershipRow =
                    diesel::update(memberships::table.find((room, user.0)))
                        .set((
                            memberships::role.eq(role_str(*role)),
                            memberships::version.eq(to_i64(version, "version")?),
                        ))
                        .returning(MembershipRow::as_returning())
                        .get_result(c)
                        .await?;
                changes.push(RoomChange::RoleChanged {
                    membership: updated.try_into()?,
                    version,
                });
            }
            RoomOp::Ban { user, by, at } => {
                diesel::insert_into(bans::table)
                    .values((
                        bans::room_id.eq(room),
                        bans::user_id.eq(user.0),
                        bans::banned_by.eq(by.0),
                        bans::banned_at.eq(*at),
                    ))
                    .on_conflict((bans::room_id, bans::user_id))
                    .do_update()
                    .set((
                        bans::banned_by.eq(excluded(bans::banned_by)),
                        bans::banned_at.eq(excluded(bans::banned_at)),
                    ))
                    .execute(c)
                    .await?;
                // Not counted: its system message is.
            }
            RoomOp::Unban { user } => {
                diesel::delete(bans::table.find((room, user.0)))
                    .execute(c)
                    .await?;
            }
            RoomOp::Update { name, description } => {
                version += 1;
                if let Some(name) = name {
                    row.name = name.as_str().to_owned();
                }
                if let Some(description) = description {
                    row.description = description.as_str().to_owned();
                }
                changes.push(RoomChange::Updated { version });
            }
            RoomOp::SystemMessage {
                id,
                sender,
                content,
                at,
            } => {
                version += 1;
                row.last_seq += 1;
                row.last_activity_at = *at;
                let inserted: MessageRow = diesel::insert_into(messages::table)
                    .values(NewMessageRow {
                        id: id.0,
                        room_id: room,
                        seq: row.last_seq,
                        sender_id: sender.0,
                        kind: message_kind_str(MessageKind::System),
                        content: content.as_str(),
                        attachment_id: None,
                        reply_to_id: None,
                        client_msg_id: None,
                        created_at: *at,
                        version: to_i64(version, "version")?,
                    })
                    .returning(MessageRow::as_returning())
                    .get_result(c)
                    .await?;
                let sender = facts.require_user(*sender)?.clone();
                changes.push(RoomChange::MessageAdded {
                    message: Box::new(to_message((inserted, sender, None), Vec::new())?),
                });
            }
            RoomOp::Delete => {
                let deleted_members: Vec<Uuid> = memberships::table
                    .filter(memberships::room_id.eq(room))
                    .order((memberships::joined_at.asc(), memberships::user_id.asc()))
                    .select(memberships::user_id)
                    .load(c)
                    .await?;
                // Memberships, departures, bans, messages (with their
                // reactions) and read markers go with it: ON DELETE CASCADE.
                diesel::delete(rooms::table.find(room)).execute(c).await?;
                return Ok(Applied {
                    room: None,
                    changes,
                    deleted_members: deleted_members.into_iter().map(UserId).collect(),
                });
            }
        }
    }
    // Every counted step made one change.
    if !changes.is_empty() {
        row.version = to_i64(version, "version")?;
        diesel::update(rooms::table.find(room))
            .set((
                rooms::name.eq(&row.name),
                rooms::description.eq(&row.description),
                rooms::member_count.eq(row.member_count),
                rooms::last_seq.eq(row.last_seq),
                rooms::version.eq(row.version),
                rooms::last_activity_at.eq(row.last_activity_at),
            ))
            .execute(c)
            .await?;
    }
    Ok(Applied {
        room: Some(Room::try_from(row)?),
        changes,
        deleted_members: Vec::new(),
    })
}
