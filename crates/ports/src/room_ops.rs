//! The checking half of [`RoomRepo::apply`](crate::RoomRepo::apply), shared
//! by every store so that they cannot disagree on it: whether a list of
//! [`RoomOp`]s can be applied, given what the store knows at that moment.
//! Each store reads the [`RoomFacts`] its own way (a lock on its state, a
//! transaction with the room row locked) and applies the steps itself.

use std::collections::{HashMap, HashSet};

use chat_domain::{MessageId, Role, UserId};

use crate::{Conflict, RoomOp, StoreError};

/// What a store knows, once the room is locked, about the room and about
/// every user and message id the steps name.
pub trait RoomFacts {
    /// Members in the room now.
    fn member_count(&self) -> u32;
    /// `user`'s role in the room now; `None` when not a member.
    fn role_of(&self, user: UserId) -> Option<Role>;
    /// Whether `user` is banned from the room now.
    fn is_banned(&self, user: UserId) -> bool;
    /// Whether `user` exists.
    fn user_exists(&self, user: UserId) -> bool;
    /// Whether a message with this id exists already.
    fn message_id_taken(&self, id: MessageId) -> bool;
}

fn stale() -> StoreError {
    StoreError::stale()
}

/// Runs the steps against an overlay of the facts, changing nothing: `Ok`
/// exactly when every step can be applied in order. Each step's check sees
/// the steps before it. A failed `Expect*`, adding a member twice, or
/// removing or re-roling a non-member is `Conflict(Stale)`; an
/// unknown user is `NotFound`; a message id in use is `Conflict(Id)`; `Delete` anywhere but last is `Other`.
pub fn check(facts: &impl RoomFacts, ops: &[RoomOp]) -> Result<(), StoreError> {
    // What the steps so far changed; everything else is as the facts say.
    let mut roles: HashMap<UserId, Option<Role>> = HashMap::new();
    let mut bans: HashMap<UserId, bool> = HashMap::new();
    let mut member_count = facts.member_count();
    let mut new_messages: HashSet<MessageId> = HashSet::new();
    let role_of = |roles: &HashMap<UserId, Option<Role>>, user: UserId| {
        roles
            .get(&user)
            .copied()
            .unwrap_or_else(|| facts.role_of(user))
    };
    let require_user = |user: UserId| {
        if facts.user_exists(user) {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    };
    for (i, op) in ops.iter().enumerate() {
        match op {
            RoomOp::ExpectRole { user, role } => {
                if role_of(&roles, *user) != *role {
                    return Err(stale());
                }
            }
            RoomOp::ExpectMembers { at_least, at_most } => {
                if !(*at_least..=*at_most).contains(&member_count) {
                    return Err(stale());
                }
            }
            RoomOp::ExpectBanned { user, banned } => {
                let is = bans
                    .get(user)
                    .copied()
                    .unwrap_or_else(|| facts.is_banned(*user));
                if is != *banned {
                    return Err(stale());
                }
            }
            RoomOp::AddMember { user, role, .. } => {
                require_user(*user)?;
                if role_of(&roles, *user).is_some() {
                    return Err(stale());
                }
                roles.insert(*user, Some(*role));
                member_count += 1;
            }
            RoomOp::RemoveMember { user } => {
                if role_of(&roles, *user).is_none() {
                    return Err(stale());
                }
                roles.insert(*user, None);
                member_count = member_count.saturating_sub(1);
            }
            RoomOp::SetRole { user, role } => {
                if role_of(&roles, *user).is_none() {
                    return Err(stale());
                }
                roles.insert(*user, Some(*role));
            }
            RoomOp::Ban { user, by, .. } => {
                require_user(*user)?;
                require_user(*by)?;
                bans.insert(*user, true);
            }
            RoomOp::Unban { user } => {
                bans.insert(*user, false);
            }
            RoomOp::Update { .. } => {}
            RoomOp::SystemMessage { id, sender, .. } => {
                require_user(*sender)?;
                if facts.message_id_taken(*id) || !new_messages.insert(*id) {
                    return Err(StoreError::Conflict(Conflict::Id));
                }
            }
            RoomOp::Delete => {
                if i + 1 != ops.len() {
                    return Err(StoreError::other("RoomOp::Delete must be the last step"));
                }
            }
        }
    }
    Ok(())
}
