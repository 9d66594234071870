//! `RoomRepo`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use async_trait::async_trait;
use chat_domain::{Membership, MessageId, MessageKind, Role, Room, RoomId, RoomKind, UserId};
use chat_ports::room_ops::{self, RoomFacts};
use chat_ports::{
    Applied, Changes, Conflict, MemberView, MyRoom, NewRoom, Page, PageRequest, RoomChange, RoomOp,
    RoomRepo, StoreError,
};

use crate::MemoryStore;
use crate::state::{
    BanRow, MemberRow, RoomState, State, StoredMessage, forget_use, require_user, seen_by,
    time_cursor, time_position, to_message,
};

fn count(n: usize) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::other("too many members"))
}

#[async_trait]
impl RoomRepo for MemoryStore {
    async fn create(&self, new: &NewRoom, members: &[(UserId, Role)]) -> Result<Room, StoreError> {
        let mut state = self.lock()?;
        if state.rooms.contains_key(&new.id) {
            return Err(StoreError::Conflict(Conflict::Id));
        }
        if let Some(pair) = new.direct_pair
            && state.direct_rooms.contains_key(&pair)
        {
            return Err(StoreError::Conflict(Conflict::DirectPair));
        }
        require_user(&state.users, new.created_by)?;
        let mut rows = HashMap::new();
        let mut join_order = BTreeSet::new();
        for &(user, role) in members {
            require_user(&state.users, user)?;
            // A user named twice joins once, with the first role given.
            if rows.contains_key(&user) {
                continue;
            }
            let membership = Membership {
                room_id: new.id,
                user_id: user,
                role,
                joined_at: new.created_at,
            };
            rows.insert(
                user,
                MemberRow {
                    membership,
                    version: 1,
                },
            );
            join_order.insert((new.created_at, user));
        }
        let room = Room {
            id: new.id,
            kind: new.kind,
            name: new.name.clone(),
            description: new.description.clone(),
            created_by: new.created_by,
            created_at: new.created_at,
            member_count: count(rows.len())?,
            last_seq: 0,
            version: 1,
            direct_pair: new.direct_pair,
        };
        if room.kind == RoomKind::Public {
            state.public_rooms.insert((room.created_at, room.id));
        }
        if let Some(pair) = room.direct_pair {
            state.direct_rooms.insert(pair, room.id);
        }
        for user in rows.keys() {
            state
                .rooms_of_user
                .entry(*user)
                .or_default()
                .insert(room.id);
        }
        state.rooms.insert(
            room.id,
            RoomState {
                room: room.clone(),
                members: rows,
                join_order,
                bans: HashMap::new(),
                departures: HashMap::new(),
                messages: BTreeMap::new(),
                client_msg_ids: HashMap::new(),
                markers: HashMap::new(),
                last_activity: room.created_at,
            },
        );
        Ok(room)
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        Ok(self.lock()?.rooms.get(&id).map(|r| r.room.clone()))
    }

    async fn find_direct(&self, pair: (UserId, UserId)) -> Result<Option<Room>, StoreError> {
        let state = self.lock()?;
        Ok(state
            .direct_rooms
            .get(&pair)
            .and_then(|id| state.rooms.get(id))
            .map(|r| r.room.clone()))
    }

    async fn list_public(&self, query: &str, page: &PageRequest) -> Result<Page<Room>, StoreError> {
        let state = self.lock()?;
        let upper =
            time_position::<RoomId>(page.after.as_ref())?.map_or(Bound::Unbounded, Bound::Excluded);
        let query = query.to_lowercase();
        let rooms: Vec<Room> = state
            .public_rooms
            .range((Bound::Unbounded, upper))
            .rev()
            .filter_map(|(_, id)| state.rooms.get(id))
            .filter(|r| r.room.name.as_str().to_lowercase().contains(&query))
            .take(page.limit() + 1)
            .map(|r| r.room.clone())
            .collect();
        Ok(Page::from_overfetch(rooms, page.limit(), |r| {
            time_cursor(r.created_at, r.id.0)
        }))
    }

    async fn list_mine(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<MyRoom>, StoreError> {
        let state = self.lock()?;
        let after = time_position::<RoomId>(page.after.as_ref())?;
        let mut mine: Vec<(chat_domain::Timestamp, RoomId)> = state
            .rooms_of_user
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|id| state.rooms.get(id))
            .map(|r| (r.last_activity, r.room.id))
            .filter(|pos| after.is_none_or(|after| *pos < after))
            .collect();
        mine.sort_unstable_by(|a, b| b.cmp(a));
        mine.truncate(page.limit() + 1);
        let mut items = Vec::with_capacity(mine.len());
        for (activity, id) in mine {
            let Some(r) = state.rooms.get(&id) else {
                continue;
            };
            let my_role = r
                .role_of(user)
                .ok_or_else(|| StoreError::other("membership index out of step"))?;
            let last_message = r
                .messages
                .last_key_value()
                .map(|(_, m)| seen_by(&state, id, m, user))
                .transpose()?;
            items.push((
                activity,
                MyRoom {
                    room: r.room.clone(),
                    my_role,
                    unread_count: r.unread_count(user),
                    last_message,
                },
            ));
        }
        Ok(Page::from_overfetch(items, page.limit(), |(activity, r)| {
            time_cursor(*activity, r.room.id.0)
        })
        .map(|(_, r)| r))
    }

    async fn room_ids_of(&self, user: UserId) -> Result<Vec<RoomId>, StoreError> {
        let state = self.lock()?;
        let mut ids: Vec<RoomId> = state
            .rooms_of_user
            .get(&user)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn changes(
        &self,
        room: RoomId,
        since: u64,
        limit: u32,
        viewer: UserId,
    ) -> Result<Option<Changes>, StoreError> {
        let state = self.lock()?;
        let Some(r) = state.rooms.get(&room) else {
            return Ok(None);
        };
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        // The memory store keeps no index by version: it filters the room's
        // messages. A message's version moves with every edit, delete or
        // reaction, so an index would have to move with it in every writer;
        // a scan of one room in memory cannot fall out of step.
        let mut changed: Vec<&StoredMessage> =
            r.messages.values().filter(|m| m.version > since).collect();
        changed.sort_unstable_by_key(|m| m.version);
        let has_more = changed.len() > limit;
        changed.truncate(limit);
        let version = match changed.last() {
            Some(last) if has_more => last.version,
            _ => r.room.version,
        };
        changed.sort_unstable_by_key(|m| m.seq);
        let messages = changed
            .into_iter()
            .map(|m| seen_by(&state, room, m, viewer))
            .collect::<Result<Vec<_>, _>>()?;

        let mut members = Vec::new();
        for (_, user) in &r.join_order {
            let row = r
                .members
                .get(user)
                .ok_or_else(|| StoreError::other("member index out of step"))?;
            if row.version <= since {
                continue;
            }
            let user = require_user(&state.users, *user)
                .map_err(|_| StoreError::other("a member's user is missing"))?
                .user
                .clone();
            members.push(MemberView {
                membership: row.membership.clone(),
                user,
            });
        }

        let mut left: Vec<(u64, UserId)> = r
            .departures
            .iter()
            .filter(|(user, version)| **version > since && !r.members.contains_key(user))
            .map(|(user, version)| (*version, *user))
            .collect();
        left.sort_unstable();

        Ok(Some(Changes {
            room: r.room.clone(),
            messages,
            members,
            left_member_ids: left.into_iter().map(|(_, user)| user).collect(),
            has_more,
            version,
        }))
    }

    async fn find_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(self
            .lock()?
            .rooms
            .get(&room)
            .and_then(|r| r.members.get(&user))
            .map(|m| m.membership.clone()))
    }

    async fn all_members(&self, room: RoomId) -> Result<Vec<Membership>, StoreError> {
        let state = self.lock()?;
        let Some(r) = state.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(r.join_order
            .iter()
            .filter_map(|(_, user)| r.members.get(user))
            .map(|m| m.membership.clone())
            .collect())
    }

    async fn list_members(
        &self,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<MemberView>, StoreError> {
        let state = self.lock()?;
        let lower =
            time_position::<UserId>(page.after.as_ref())?.map_or(Bound::Unbounded, Bound::Excluded);
        let Some(r) = state.rooms.get(&room) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let mut items = Vec::with_capacity(page.limit() + 1);
        for (_, user) in r
            .join_order
            .range((lower, Bound::Unbounded))
            .take(page.limit() + 1)
        {
            let membership = r
                .members
                .get(user)
                .map(|m| m.membership.clone())
                .ok_or_else(|| StoreError::other("member index out of step"))?;
            let user = require_user(&state.users, *user)
                .map_err(|_| StoreError::other("a member's user is missing"))?
                .user
                .clone();
            items.push(MemberView { membership, user });
        }
        Ok(Page::from_overfetch(items, page.limit(), |m| {
            time_cursor(m.membership.joined_at, m.membership.user_id.0)
        }))
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .lock()?
            .rooms
            .get(&room)
            .is_some_and(|r| r.bans.contains_key(&user)))
    }

    async fn apply(&self, room: RoomId, ops: &[RoomOp]) -> Result<Applied, StoreError> {
        let mut state = self.lock()?;
        let r = state.rooms.get(&room).ok_or(StoreError::NotFound)?;
        room_ops::check(
            &Facts {
                state: &state,
                room: r,
            },
            ops,
        )?;
        Ok(commit(&mut state, room, ops))
    }
}

/// What the shared check of [`chat_ports::room_ops`] needs, read from the
/// state under its lock.
struct Facts<'a> {
    state: &'a State,
    room: &'a RoomState,
}

impl RoomFacts for Facts<'_> {
    fn member_count(&self) -> u32 {
        self.room.room.member_count
    }
    fn role_of(&self, user: UserId) -> Option<Role> {
        self.room.role_of(user)
    }
    fn is_banned(&self, user: UserId) -> bool {
        self.room.bans.contains_key(&user)
    }
    fn user_exists(&self, user: UserId) -> bool {
        self.state.users.contains_key(&user)
    }
    fn message_id_taken(&self, id: MessageId) -> bool {
        self.state.message_index.contains_key(&id)
    }
}

/// Applies `ops`, which [`room_ops::check`] has passed, to the room.
fn commit(state: &mut State, room: RoomId, ops: &[RoomOp]) -> Applied {
    let mut changes = Vec::new();
    for op in ops {
        let Some(r) = state.rooms.get_mut(&room) else {
            break;
        };
        match op {
            RoomOp::ExpectRole { .. }
            | RoomOp::ExpectMembers { .. }
            | RoomOp::ExpectBanned { .. } => {}
            RoomOp::AddMember { user, role, at } => {
                r.room.version += 1;
                let membership = Membership {
                    room_id: room,
                    user_id: *user,
                    role: *role,
                    joined_at: *at,
                };
                r.members.insert(
                    *user,
                    MemberRow {
                        membership: membership.clone(),
                        version: r.room.version,
                    },
                );
                r.join_order.insert((*at, *user));
                r.room.member_count += 1;
                state.rooms_of_user.entry(*user).or_default().insert(room);
                changes.push(RoomChange::MemberAdded {
                    membership,
                    version: r.room.version,
                });
            }
            RoomOp::RemoveMember { user } => {
                r.room.version += 1;
                if let Some(row) = r.members.remove(user) {
                    r.join_order.remove(&(row.membership.joined_at, *user));
                }
                r.departures.insert(*user, r.room.version);
                r.room.member_count = r.room.member_count.saturating_sub(1);
                if let Some(rooms) = state.rooms_of_user.get_mut(user) {
                    rooms.remove(&room);
                    if rooms.is_empty() {
                        state.rooms_of_user.remove(user);
                    }
                }
                changes.push(RoomChange::MemberRemoved {
                    user: *user,
                    version: r.room.version,
                });
            }
            RoomOp::SetRole { user, role } => {
                r.room.version += 1;
                if let Some(row) = r.members.get_mut(user) {
                    row.membership.role = *role;
                    row.version = r.room.version;
                    changes.push(RoomChange::RoleChanged {
                        membership: row.membership.clone(),
                        version: r.room.version,
                    });
                }
            }
            RoomOp::Ban { user, by, at } => {
                r.bans.insert(*user, BanRow { by: *by, at: *at });
            }
            RoomOp::Unban { user } => {
                r.bans.remove(user);
            }
            RoomOp::Update { name, description } => {
                r.room.version += 1;
                if let Some(name) = name {
                    r.room.name = name.clone();
                }
                if let Some(description) = description {
                    r.room.description = description.clone();
                }
                changes.push(RoomChange::Updated {
                    version: r.room.version,
                });
            }
            RoomOp::SystemMessage {
                id,
                sender,
                content,
                at,
            } => {
                r.room.version += 1;
                r.room.last_seq += 1;
                let stored = StoredMessage {
                    id: *id,
                    seq: r.room.last_seq,
                    sender: *sender,
                    kind: MessageKind::System,
                    content: content.as_str().to_owned(),
                    attachment: None,
                    reply_to: None,
                    created_at: *at,
                    edited_at: None,
                    deleted: false,
                    version: r.room.version,
                };
                r.last_activity = *at;
                state.message_index.insert(*id, (room, stored.seq));
                // `check` made sure the sender exists.
                if let Ok(message) =
                    to_message(&state.users, &state.attachments, room, &stored, *sender)
                {
                    changes.push(RoomChange::MessageAdded {
                        message: Box::new(message),
                    });
                }
                r.messages.insert(stored.seq, stored);
            }
            RoomOp::Delete => {
                let deleted_members = delete_room(state, room);
                return Applied {
                    room: None,
                    changes,
                    deleted_members,
                };
            }
        }
    }
    Applied {
        room: state.rooms.get(&room).map(|r| r.room.clone()),
        changes,
        deleted_members: Vec::new(),
    }
}

/// Removes the room and everything in it; returns who its members were, in
/// the order they joined.
fn delete_room(state: &mut State, room: RoomId) -> Vec<UserId> {
    let Some(r) = state.rooms.remove(&room) else {
        return Vec::new();
    };
    let members: Vec<UserId> = r.join_order.iter().map(|(_, user)| *user).collect();
    for user in &members {
        if let Some(rooms) = state.rooms_of_user.get_mut(user) {
            rooms.remove(&room);
            if rooms.is_empty() {
                state.rooms_of_user.remove(user);
            }
        }
    }
    for message in r.messages.values() {
        state.message_index.remove(&message.id);
        state.reactions.remove(&message.id);
        if let Some(attachment) = message.attachment {
            forget_use(state, attachment, message.id);
        }
    }
    state.public_rooms.remove(&(r.room.created_at, room));
    if let Some(pair) = r.room.direct_pair {
        state.direct_rooms.remove(&pair);
    }
    members
}

#[cfg(test)]
mod tests {
    use chat_domain::{DisplayName, Email, RoomDescription, RoomName, Timestamp, Username};
    use chat_ports::{NewUser, UserRepo};
    use uuid::Uuid;

    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
    }

    async fn user(store: &MemoryStore, name: &str) -> UserId {
        let new = NewUser {
            id: UserId(Uuid::now_v7()),
            username: Username::parse(name).unwrap(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            display_name: DisplayName::parse(name).unwrap(),
            password_hash: String::new(),
            created_at: at(0),
        };
        UserRepo::create(store, &new).await.unwrap().id
    }

    async fn room(store: &MemoryStore, members: &[(UserId, Role)]) -> RoomId {
        let new = NewRoom {
            id: RoomId(Uuid::now_v7()),
            kind: RoomKind::Public,
            name: RoomName::parse("r").unwrap(),
            description: RoomDescription::default(),
            created_by: members[0].0,
            created_at: at(0),
            direct_pair: None,
        };
        RoomRepo::create(store, &new, members).await.unwrap().id
    }

    fn member_versions(store: &MemoryStore, room: RoomId) -> Vec<(UserId, u64)> {
        let state = store.lock().unwrap();
        let mut v: Vec<_> = state.rooms[&room]
            .members
            .iter()
            .map(|(u, m)| (*u, m.version))
            .collect();
        v.sort();
        v
    }

    fn departures(store: &MemoryStore, room: RoomId) -> Vec<(UserId, u64)> {
        let state = store.lock().unwrap();
        let mut v: Vec<_> = state.rooms[&room]
            .departures
            .iter()
            .map(|(u, v)| (*u, *v))
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn memberships_and_departures_keep_their_versions() {
        let store = MemoryStore::new();
        let owner = user(&store, "owner").await;
        let a = user(&store, "alice").await;
        let b = user(&store, "bob").await;
        let id = room(&store, &[(owner, Role::Owner), (a, Role::Member)]).await;
        let mut expected = vec![(owner, 1), (a, 1)];
        expected.sort();
        assert_eq!(member_versions(&store, id), expected);

        let add_b = RoomOp::AddMember {
            user: b,
            role: Role::Member,
            at: at(1),
        };
        store.apply(id, &[add_b]).await.unwrap(); // v2
        store
            .apply(
                id,
                &[RoomOp::SetRole {
                    user: a,
                    role: Role::Admin,
                }],
            )
            .await
            .unwrap(); // v3
        store
            .apply(id, &[RoomOp::RemoveMember { user: b }])
            .await
            .unwrap(); // v4
        let mut expected = vec![(owner, 1), (a, 3)];
        expected.sort();
        assert_eq!(member_versions(&store, id), expected);
        assert_eq!(departures(&store, id), vec![(b, 4)]);

        // A failed call records nothing.
        let failing = [
            RoomOp::RemoveMember { user: a },
            RoomOp::ExpectMembers {
                at_least: 9,
                at_most: 9,
            },
        ];
        assert!(store.apply(id, &failing).await.unwrap_err().is_stale());
        assert_eq!(departures(&store, id), vec![(b, 4)]);
        assert_eq!(member_versions(&store, id), expected);
    }

    #[tokio::test]
    async fn delete_leaves_no_index_behind() {
        let store = MemoryStore::new();
        let owner = user(&store, "owner").await;
        let id = room(&store, &[(owner, Role::Owner)]).await;
        let op = RoomOp::SystemMessage {
            id: MessageId(Uuid::now_v7()),
            sender: owner,
            content: chat_domain::MessageContent::system("hi".into()),
            at: at(1),
        };
        store.apply(id, &[op]).await.unwrap();
        store.apply(id, &[RoomOp::Delete]).await.unwrap();
        let state = store.lock().unwrap();
        assert!(state.rooms.is_empty());
        assert!(state.public_rooms.is_empty());
        assert!(state.rooms_of_user.is_empty());
        assert!(state.message_index.is_empty());
    }
}
