//! Rooms, direct rooms, membership and moderation.
//!
//! Changes to a room are decided on a snapshot (the room, the actor's and the
//! target's membership) and applied with [`RoomOp`] preconditions that restate
//! the facts the decision rested on. If the room moved on in between, the
//! store refuses, and the whole use case runs again on a fresh snapshot.

use std::sync::Arc;

use chat_domain::room::direct_pair;
use chat_domain::rules::{self, Denied, Join, Leave, ModerationStep, RoleChange};
use chat_domain::{
    GlobalRole, MessageContent, Role, Room, RoomDescription, RoomId, RoomKind, RoomName, User,
    UserId,
};
use chat_ports::{
    Applied, Changes, Conflict, Event, MemberView, MyRoom, NewRoom, Page, PageRequest, RoomChange,
    RoomOp, StoreError,
};

use crate::{AppError, Ctx, retry_stale};

/// A room to create, already validated.
#[derive(Debug, Clone)]
pub struct CreateRoom {
    pub name: RoomName,
    pub description: RoomDescription,
    /// Public or private; direct rooms come from [`Rooms::open_direct`].
    pub private: bool,
    pub member_ids: Vec<UserId>,
}

/// Changes to a room's name and description.
#[derive(Debug, Clone, Default)]
pub struct RoomPatch {
    pub name: Option<RoomName>,
    pub description: Option<RoomDescription>,
}

/// The direct room of a pair, and whether this call created it.
#[derive(Debug, Clone)]
pub struct DirectRoom {
    pub room: Room,
    pub created: bool,
}

/// The most members a room can be created with in one call.
pub const MAX_INITIAL_MEMBERS: usize = 1000;

#[derive(Clone)]
pub struct Rooms {
    ctx: Arc<Ctx>,
}

/// What a use case saw of a room before deciding.
struct Snapshot {
    room: Room,
    my_role: Option<Role>,
}

impl Rooms {
    /// The most messages one answer of [`Rooms::changes`] carries.
    pub const MAX_CHANGES: u32 = 1000;
    /// How many it carries when the client does not say.
    pub const DEFAULT_CHANGES: u32 = 100;

    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// Creates a public or private room with the caller as owner and
    /// `member_ids` as members. Creating writes no message.
    pub async fn create(&self, me: UserId, new: CreateRoom) -> Result<Room, AppError> {
        let c = &self.ctx;
        let mut others: Vec<UserId> = Vec::new();
        for id in new.member_ids {
            if id != me && !others.contains(&id) {
                others.push(id);
            }
        }
        if others.len() > MAX_INITIAL_MEMBERS {
            return Err(AppError::invalid(
                "member_ids",
                format!("at most {MAX_INITIAL_MEMBERS} members"),
            ));
        }
        for id in &others {
            if c.stores.users.find(*id).await?.is_none() {
                return Err(AppError::invalid("member_ids", format!("no user {id}")));
            }
        }
        let room = NewRoom {
            id: c.ids.new_id().into(),
            kind: if new.private {
                RoomKind::Private
            } else {
                RoomKind::Public
            },
            name: new.name,
            description: new.description,
            created_by: me,
            created_at: c.clock.now(),
            direct_pair: None,
        };
        let members: Vec<(UserId, Role)> = std::iter::once((me, Role::Owner))
            .chain(others.iter().map(|id| (*id, Role::Member)))
            .collect();
        let room = c.stores.rooms.create(&room, &members).await?;
        c.events
            .publish(Event::RoomCreated {
                room: room.clone(),
                member_ids: members.iter().map(|(id, _)| *id).collect(),
            })
            .await;
        Ok(room)
    }

    /// The direct room between the caller and `other`, created the first
    /// time. Whichever of the two had left is added back. Refused while
    /// either blocks the other.
    pub async fn open_direct(&self, me: UserId, other: UserId) -> Result<DirectRoom, AppError> {
        let c = &self.ctx;
        let me_user = self.user(me).await?;
        let other_user = self.user(other).await?;
        rules::open_direct(me != other && c.stores.blocks.either_blocks(me, other).await?)?;
        let pair = direct_pair(me, other);
        retry_stale(|| async {
            if let Some(room) = c.stores.rooms.find_direct(pair).await? {
                return Ok(DirectRoom {
                    room: self.rejoin_direct(room, pair).await?,
                    created: false,
                });
            }
            let new = NewRoom {
                id: c.ids.new_id().into(),
                kind: RoomKind::Direct,
                name: RoomName::for_direct(&me_user.username, &other_user.username),
                description: RoomDescription::default(),
                created_by: me,
                created_at: c.clock.now(),
                direct_pair: Some(pair),
            };
            let mut members = vec![(me, Role::Member)];
            if other != me {
                members.push((other, Role::Member));
            }
            match c.stores.rooms.create(&new, &members).await {
                Ok(room) => {
                    c.events
                        .publish(Event::RoomCreated {
                            room: room.clone(),
                            member_ids: members.iter().map(|(id, _)| *id).collect(),
                        })
                        .await;
                    Ok(DirectRoom {
                        room,
                        created: true,
                    })
                }
                // Someone else created it a moment ago: take theirs.
                Err(StoreError::Conflict(Conflict::DirectPair)) => {
                    Err(AppError::Store(StoreError::stale()))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Adds back whichever of the pair is missing from their direct room.
    async fn rejoin_direct(&self, room: Room, pair: (UserId, UserId)) -> Result<Room, AppError> {
        let c = &self.ctx;
        let mut ops = Vec::new();
        let now = c.clock.now();
        let people = if pair.0 == pair.1 {
            vec![pair.0]
        } else {
            vec![pair.0, pair.1]
        };
        for user in people {
            if c.stores.rooms.find_member(room.id, user).await?.is_none() {
                ops.push(RoomOp::ExpectRole { user, role: None });
                ops.push(RoomOp::AddMember {
                    user,
                    role: Role::Member,
                    at: now,
                });
            }
        }
        if ops.is_empty() {
            return Ok(room);
        }
        self.apply(&room, ops).await
    }

    /// The directory of public rooms.
    pub async fn directory(&self, query: &str, page: &PageRequest) -> Result<Page<Room>, AppError> {
        Ok(self
            .ctx
            .stores
            .rooms
            .list_public(query.trim(), page)
            .await?)
    }

    /// The caller's rooms, most recent activity first.
    pub async fn mine(&self, me: UserId, page: &PageRequest) -> Result<Page<MyRoom>, AppError> {
        Ok(self.ctx.stores.rooms.list_mine(me, page).await?)
    }

    /// The ids of every room the caller is in.
    pub async fn room_ids_of(&self, me: UserId) -> Result<Vec<RoomId>, AppError> {
        Ok(self.ctx.stores.rooms.room_ids_of(me).await?)
    }

    /// Everything in the room that changed after version `since`, as it is
    /// now: members only. At most `limit` messages (1 to
    /// [`Rooms::MAX_CHANGES`]); with `has_more`, ask again from the answer's
    /// `version`. A `since` past the room's version is refused.
    pub async fn changes(
        &self,
        me: UserId,
        room: RoomId,
        since: u64,
        limit: u32,
    ) -> Result<Changes, AppError> {
        if !(1..=Self::MAX_CHANGES).contains(&limit) {
            return Err(AppError::invalid(
                "limit",
                format!("must be an integer from 1 to {}", Self::MAX_CHANGES),
            ));
        }
        let s = self.snapshot(me, room).await?;
        rules::access(s.room.kind, s.my_role)?;
        if since > s.room.version {
            return Err(AppError::invalid(
                "since",
                format!("must be at most the room's version, {}", s.room.version),
            ));
        }
        // Versions only grow: `since` is no further ahead in this snapshot.
        Ok(self
            .ctx
            .stores
            .rooms
            .changes(room, since, limit, me)
            .await?
            .ok_or(Denied::NotFound)?)
    }

    /// For a node whose shared bus lost a room's events (versions after
    /// `since`, up to `upto`): the messages among them, back as events, from
    /// the store. A message this node's listeners have not seen
    /// (`seq > last_seq`) comes as `message:new`; one they have, as its
    /// latest edit or deletion. Messages changed again after `upto` are
    /// left to the later events, and changes that are not messages
    /// (membership, the room itself) to the clients, who see the versions
    /// still missing and ask for `changes`. Reactions' `me` is told per
    /// recipient, as for a live edit.
    pub async fn missed_events(
        &self,
        room: RoomId,
        since: u64,
        upto: u64,
        last_seq: u64,
    ) -> Result<Vec<Event>, AppError> {
        if upto <= since {
            return Ok(Vec::new());
        }
        let limit = u32::try_from(upto - since)
            .unwrap_or(u32::MAX)
            .min(Self::MAX_CHANGES);
        // Nobody's `me`: each recipient's is worked out from the reactors.
        let nobody = UserId(uuid::Uuid::nil());
        let Some(changes) = self
            .ctx
            .stores
            .rooms
            .changes(room, since, limit, nobody)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        for message in changes.messages {
            if message.version <= since || message.version > upto {
                continue;
            }
            let event = if message.deleted {
                Event::MessageDeleted {
                    room_id: message.room_id,
                    id: message.id,
                    seq: message.seq,
                    version: message.version,
                }
            } else if message.seq > last_seq {
                Event::MessageNew { message }
            } else {
                let reactors = if message.reactions.is_empty() {
                    Vec::new()
                } else {
                    self.ctx.stores.messages.reactors(message.id).await?
                };
                Event::MessageUpdated { message, reactors }
            };
            events.push(event);
        }
        events.sort_by_key(|e| e.version());
        Ok(events)
    }

    /// A room, if the caller may see it.
    pub async fn get(&self, me: UserId, room: RoomId) -> Result<Room, AppError> {
        let s = self.snapshot(me, room).await?;
        rules::view(s.room.kind, s.my_role.is_some())?;
        Ok(s.room)
    }

    /// Renames or re-describes a room: its owner or an admin. A patch that
    /// changes nothing raises nothing.
    pub async fn update(
        &self,
        me: UserId,
        room: RoomId,
        patch: RoomPatch,
    ) -> Result<Room, AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            rules::edit_room(s.room.kind, s.my_role)?;
            let name = patch.name.clone().filter(|n| *n != s.room.name);
            let description = patch
                .description
                .clone()
                .filter(|d| *d != s.room.description);
            if name.is_none() && description.is_none() {
                return Ok(s.room);
            }
            let ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::Update { name, description },
            ];
            self.apply(&s.room, ops).await
        })
        .await
    }

    /// Deletes a room and everything in it: its owner, or a global admin.
    pub async fn delete(&self, me: UserId, room: RoomId) -> Result<(), AppError> {
        let admin = self.ctx.role_of(&self.user(me).await?) == GlobalRole::Admin;
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            rules::delete_room(s.room.kind, s.my_role, admin)?;
            let mut ops = Vec::new();
            if !admin {
                ops.push(RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                });
            }
            ops.push(RoomOp::Delete);
            self.apply(&s.room, ops).await.map(drop)
        })
        .await
    }

    /// Joins a public room. Joining twice is no error and changes nothing.
    pub async fn join(&self, me: UserId, room: RoomId) -> Result<Room, AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            let banned = self.ctx.stores.rooms.is_banned(room, me).await?;
            match rules::join(s.room.kind, s.my_role, banned)? {
                Join::AlreadyMember => Ok(s.room),
                Join::Join => {
                    let ops = vec![
                        RoomOp::ExpectRole {
                            user: me,
                            role: None,
                        },
                        RoomOp::ExpectBanned {
                            user: me,
                            banned: false,
                        },
                        RoomOp::AddMember {
                            user: me,
                            role: Role::Member,
                            at: self.ctx.clock.now(),
                        },
                    ];
                    self.apply(&s.room, ops).await
                }
            }
        })
        .await
    }

    /// Leaves a room. An owner hands over to the earliest admin, else the
    /// earliest member; the last member out deletes the room.
    pub async fn leave(&self, me: UserId, room: RoomId) -> Result<(), AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            // Non-members learn nothing more than any member-only endpoint says.
            rules::access(s.room.kind, s.my_role)?;
            let members = self.ctx.stores.rooms.all_members(room).await?;
            let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
            let mut ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::ExpectMembers {
                    at_least: count.min(2),
                    at_most: if count <= 2 { count } else { u32::MAX },
                },
            ];
            match rules::leave(s.room.kind, me, &members)? {
                Leave::DeleteRoom => ops.push(RoomOp::Delete),
                Leave::Leave { new_owner } => {
                    ops.push(RoomOp::RemoveMember { user: me });
                    if let Some(heir) = new_owner {
                        let heir_role = members.iter().find(|m| m.user_id == heir).map(|m| m.role);
                        ops.insert(
                            0,
                            RoomOp::ExpectRole {
                                user: heir,
                                role: heir_role,
                            },
                        );
                        ops.push(RoomOp::SetRole {
                            user: heir,
                            role: Role::Owner,
                        });
                    }
                }
            }
            self.apply(&s.room, ops).await.map(drop)
        })
        .await
    }

    /// The member list: anyone signed in for a public room, members only for
    /// a hidden one.
    pub async fn members(
        &self,
        me: UserId,
        room: RoomId,
        page: &PageRequest,
    ) -> Result<Page<MemberView>, AppError> {
        let s = self.snapshot(me, room).await?;
        rules::view(s.room.kind, s.my_role.is_some())?;
        Ok(self.ctx.stores.rooms.list_members(room, page).await?)
    }

    /// Adds a user to the room as a member: an owner or admin.
    pub async fn add_member(
        &self,
        me: UserId,
        room: RoomId,
        target: UserId,
    ) -> Result<MemberView, AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            // The caller's standing first, so non-members learn nothing of the target.
            rules::access(s.room.kind, s.my_role)?;
            let user = self.user(target).await?;
            let target_role = self.role_in(room, target).await?;
            let banned = self.ctx.stores.rooms.is_banned(room, target).await?;
            rules::add_member(s.room.kind, s.my_role, target_role, banned)?;
            let ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::ExpectRole {
                    user: target,
                    role: None,
                },
                RoomOp::ExpectBanned {
                    user: target,
                    banned: false,
                },
                RoomOp::AddMember {
                    user: target,
                    role: Role::Member,
                    at: self.ctx.clock.now(),
                },
            ];
            let applied = self.apply_full(&s.room, ops).await?;
            applied
                .changes
                .into_iter()
                .find_map(|ch| match ch {
                    RoomChange::MemberAdded { membership, .. } => Some(MemberView {
                        membership,
                        user: user.clone(),
                    }),
                    _ => None,
                })
                .ok_or_else(|| {
                    AppError::Store(StoreError::other("member added without a membership"))
                })
        })
        .await
    }

    /// Removes a member of lower role, with a system message.
    pub async fn kick(&self, me: UserId, room: RoomId, target: UserId) -> Result<(), AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            let target_role = self.role_in(room, target).await?;
            rules::kick(s.room.kind, s.my_role, target_role)?;
            let mut ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::ExpectRole {
                    user: target,
                    role: target_role,
                },
                RoomOp::RemoveMember { user: target },
            ];
            ops.push(
                self.system_message(me, target, ModerationStep::Kick)
                    .await?,
            );
            self.apply(&s.room, ops).await.map(drop)
        })
        .await
    }

    /// Bans a user (a member of lower role, or anyone not in the room),
    /// removing them if they are in. Banning twice changes nothing.
    pub async fn ban(&self, me: UserId, room: RoomId, target: UserId) -> Result<(), AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            rules::access(s.room.kind, s.my_role)?;
            self.user(target).await?;
            let target_role = self.role_in(room, target).await?;
            rules::ban(s.room.kind, s.my_role, target_role)?;
            if self.ctx.stores.rooms.is_banned(room, target).await? {
                return Ok(());
            }
            let mut ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::ExpectRole {
                    user: target,
                    role: target_role,
                },
                RoomOp::ExpectBanned {
                    user: target,
                    banned: false,
                },
            ];
            if target_role.is_some() {
                ops.push(RoomOp::RemoveMember { user: target });
            }
            ops.push(RoomOp::Ban {
                user: target,
                by: me,
                at: self.ctx.clock.now(),
            });
            ops.push(self.system_message(me, target, ModerationStep::Ban).await?);
            self.apply(&s.room, ops).await.map(drop)
        })
        .await
    }

    /// Lifts a ban, with a system message.
    pub async fn unban(&self, me: UserId, room: RoomId, target: UserId) -> Result<(), AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            rules::access(s.room.kind, s.my_role)?;
            let banned = self.ctx.stores.rooms.is_banned(room, target).await?;
            rules::unban(s.room.kind, s.my_role, banned)?;
            let ops = vec![
                RoomOp::ExpectRole {
                    user: me,
                    role: s.my_role,
                },
                RoomOp::ExpectBanned {
                    user: target,
                    banned: true,
                },
                RoomOp::Unban { user: target },
                self.system_message(me, target, ModerationStep::Unban)
                    .await?,
            ];
            self.apply(&s.room, ops).await.map(drop)
        })
        .await
    }

    /// Makes a member an admin or a member again: the owner only. Giving
    /// someone the role they have changes nothing.
    pub async fn set_role(
        &self,
        me: UserId,
        room: RoomId,
        target: UserId,
        role: Role,
    ) -> Result<MemberView, AppError> {
        retry_stale(|| async {
            let s = self.snapshot(me, room).await?;
            let target_role = self.role_in(room, target).await?;
            let change = rules::change_role(s.room.kind, s.my_role, target_role, role)?;
            if change == RoleChange::Change {
                let ops = vec![
                    RoomOp::ExpectRole {
                        user: me,
                        role: s.my_role,
                    },
                    RoomOp::ExpectRole {
                        user: target,
                        role: target_role,
                    },
                    RoomOp::SetRole { user: target, role },
                    self.system_message(me, target, ModerationStep::Role(role))
                        .await?,
                ];
                self.apply(&s.room, ops).await?;
            }
            let membership = self
                .ctx
                .stores
                .rooms
                .find_member(room, target)
                .await?
                .ok_or(AppError::Store(StoreError::stale()))?;
            Ok(MemberView {
                membership,
                user: self.user(target).await?,
            })
        })
        .await
    }

    // ------------------------------------------------------------ helpers

    async fn snapshot(&self, me: UserId, room: RoomId) -> Result<Snapshot, AppError> {
        let (room, my_role) = self.ctx.room_and_role(me, room).await?;
        Ok(Snapshot { room, my_role })
    }

    async fn role_in(&self, room: RoomId, user: UserId) -> Result<Option<Role>, AppError> {
        Ok(self
            .ctx
            .stores
            .rooms
            .find_member(room, user)
            .await?
            .map(|m| m.role))
    }

    async fn user(&self, id: UserId) -> Result<User, AppError> {
        self.ctx
            .stores
            .users
            .find(id)
            .await?
            .ok_or(AppError::NotFound)
    }

    async fn system_message(
        &self,
        actor: UserId,
        target: UserId,
        step: ModerationStep,
    ) -> Result<RoomOp, AppError> {
        let a = self.user(actor).await?;
        let t = self.user(target).await?;
        Ok(RoomOp::SystemMessage {
            id: self.ctx.ids.new_id().into(),
            sender: actor,
            content: MessageContent::system(rules::system_text(
                step,
                a.username.as_str(),
                t.username.as_str(),
            )),
            at: self.ctx.clock.now(),
        })
    }

    /// Applies the ops and publishes their events; the room as it now is
    /// (the room as it was, if it was deleted).
    async fn apply(&self, room: &Room, ops: Vec<RoomOp>) -> Result<Room, AppError> {
        let applied = self.apply_full(room, ops).await?;
        Ok(applied.room.unwrap_or_else(|| room.clone()))
    }

    async fn apply_full(&self, room: &Room, ops: Vec<RoomOp>) -> Result<Applied, AppError> {
        let c = &self.ctx;
        let applied = c
            .stores
            .rooms
            .apply(room.id, &ops)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::Denied(Denied::NotFound),
                other => other.into(),
            })?;
        for change in &applied.changes {
            let event = match change.clone() {
                RoomChange::MemberAdded {
                    membership,
                    version,
                } => {
                    let Some(user) = c.stores.users.find(membership.user_id).await? else {
                        continue;
                    };
                    Event::MemberJoined {
                        membership,
                        user,
                        version,
                    }
                }
                RoomChange::MemberRemoved { user, version } => Event::MemberLeft {
                    room_id: room.id,
                    user_id: user,
                    version,
                },
                RoomChange::RoleChanged {
                    membership,
                    version,
                } => Event::MemberUpdated {
                    room_id: room.id,
                    user_id: membership.user_id,
                    role: membership.role,
                    version,
                },
                RoomChange::Updated { .. } => match &applied.room {
                    Some(r) => Event::RoomUpdated { room: r.clone() },
                    None => continue,
                },
                RoomChange::MessageAdded { message } => Event::MessageNew { message: *message },
            };
            c.events.publish(event).await;
        }
        if applied.room.is_none() {
            c.events
                .publish(Event::RoomDeleted {
                    room_id: room.id,
                    member_ids: applied.deleted_members.clone(),
                })
                .await;
        }
        Ok(applied)
    }
}
