//! Who may do what in a room. Each rule takes the facts it needs (the room's
//! kind, the actor's role if a member, the target's role, bans, blocks) and
//! either allows the step, saying what it amounts to, or names why not.
//!
//! Checks run in the order a client should learn about them: first whether
//! the caller may know the room exists, then whether the step is allowed at
//! all in this kind of room, then the caller's role, then the target.

use crate::{Membership, Role, RoomKind, UserId};

/// Why a step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No such room or member, or a hidden room the caller may not know of.
    #[error("not found")]
    NotFound,
    /// A public room the caller must join first.
    #[error("you are not a member of this room")]
    NotAMember,
    /// Known, but not the caller's to do.
    #[error("you are not allowed to do that")]
    Forbidden,
    /// The user is banned from the room.
    #[error("the user is banned from this room")]
    Banned,
    /// One of the two users has blocked the other.
    #[error("the user has blocked you, or you have blocked them")]
    Blocked,
    /// The user is in the room already.
    #[error("the user is already a member")]
    AlreadyMember,
}

/// The caller's standing: their role if they are a member.
fn member_role(kind: RoomKind, actor: Option<Role>) -> Result<Role, Denied> {
    actor.ok_or(if kind.is_hidden() {
        Denied::NotFound
    } else {
        Denied::NotAMember
    })
}

/// Reading the room's content (history, receipts, changes) and writing in it:
/// members only. Answers as the contract requires for non-members.
pub fn access(kind: RoomKind, actor: Option<Role>) -> Result<Role, Denied> {
    member_role(kind, actor)
}

/// Seeing the room itself and its member list: anyone for a public room,
/// members only for a hidden one.
pub fn view(kind: RoomKind, is_member: bool) -> Result<(), Denied> {
    if kind.is_hidden() && !is_member {
        return Err(Denied::NotFound);
    }
    Ok(())
}

/// What joining amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Already a member: nothing changes.
    AlreadyMember,
    /// Becomes a member.
    Join,
}

/// Joining by oneself: public rooms only, not while banned; twice is no error.
pub fn join(kind: RoomKind, actor: Option<Role>, banned: bool) -> Result<Join, Denied> {
    if actor.is_some() {
        return Ok(Join::AlreadyMember);
    }
    if kind.is_hidden() {
        return Err(Denied::NotFound);
    }
    if banned {
        return Err(Denied::Banned);
    }
    Ok(Join::Join)
}

/// Adding someone: an owner or admin, not in a direct room, not a banned user,
/// not someone already in.
pub fn add_member(
    kind: RoomKind,
    actor: Option<Role>,
    target: Option<Role>,
    target_banned: bool,
) -> Result<(), Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor < Role::Admin {
        return Err(Denied::Forbidden);
    }
    if target_banned {
        return Err(Denied::Banned);
    }
    if target.is_some() {
        return Err(Denied::AlreadyMember);
    }
    Ok(())
}

/// Whether `actor` outranks `target` enough to kick or ban: an admin acts on
/// members, the owner on anyone else, nobody on the owner.
fn outranks(actor: Role, target: Role) -> bool {
    actor >= Role::Admin && actor > target
}

/// Kicking a member out.
pub fn kick(kind: RoomKind, actor: Option<Role>, target: Option<Role>) -> Result<(), Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor < Role::Admin {
        return Err(Denied::Forbidden);
    }
    let target = target.ok_or(Denied::NotFound)?;
    if !outranks(actor, target) {
        return Err(Denied::Forbidden);
    }
    Ok(())
}

/// Banning: as kicking, but the target need not be a member (a pre-emptive ban).
pub fn ban(kind: RoomKind, actor: Option<Role>, target: Option<Role>) -> Result<(), Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor < Role::Admin {
        return Err(Denied::Forbidden);
    }
    match target {
        Some(t) if !outranks(actor, t) => Err(Denied::Forbidden),
        _ => Ok(()),
    }
}

/// Lifting a ban: an owner or admin, and only a ban that exists.
pub fn unban(kind: RoomKind, actor: Option<Role>, target_banned: bool) -> Result<(), Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor < Role::Admin {
        return Err(Denied::Forbidden);
    }
    if !target_banned {
        return Err(Denied::NotFound);
    }
    Ok(())
}

/// What a role change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// The target has that role already: nothing changes.
    Unchanged,
    /// The target's role becomes the new one.
    Change,
}

/// Changing a member's role to admin or member: the owner only, never its own
/// role, never in a direct room. Ownership moves only when an owner leaves.
pub fn change_role(
    kind: RoomKind,
    actor: Option<Role>,
    target: Option<Role>,
    new_role: Role,
) -> Result<RoleChange, Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor != Role::Owner {
        return Err(Denied::Forbidden);
    }
    let target = target.ok_or(Denied::NotFound)?;
    if target == Role::Owner || new_role == Role::Owner {
        return Err(Denied::Forbidden);
    }
    Ok(if target == new_role {
        RoleChange::Unchanged
    } else {
        RoleChange::Change
    })
}

/// What leaving amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// The leaver was the last member: the room goes with them.
    DeleteRoom,
    /// The leaver goes; when it was the owner, `new_owner` takes over.
    Leave { new_owner: Option<UserId> },
}

/// Leaving. `members` is everyone in the room, the leaver included. An owner
/// who leaves hands ownership to the admin who joined first, else to the member
/// who joined first; the last member leaving deletes the room.
pub fn leave(kind: RoomKind, leaver: UserId, members: &[Membership]) -> Result<Leave, Denied> {
    let me = members.iter().find(|m| m.user_id == leaver);
    let me = member_role(kind, me.map(|m| m.role))?;
    let others = || members.iter().filter(|m| m.user_id != leaver);
    if others().next().is_none() {
        return Ok(Leave::DeleteRoom);
    }
    if me != Role::Owner {
        return Ok(Leave::Leave { new_owner: None });
    }
    let earliest = |role: Role| {
        others()
            .filter(|m| m.role == role)
            .min_by_key(|m| (m.joined_at, m.user_id))
            .map(|m| m.user_id)
    };
    Ok(Leave::Leave {
        new_owner: earliest(Role::Admin).or_else(|| earliest(Role::Member)),
    })
}

/// Renaming or re-describing a room: an owner or admin; nobody for a direct room.
pub fn edit_room(kind: RoomKind, actor: Option<Role>) -> Result<(), Denied> {
    let actor = member_role(kind, actor)?;
    if kind == RoomKind::Direct || actor < Role::Admin {
        return Err(Denied::Forbidden);
    }
    Ok(())
}

/// Deleting a room: its owner, or a global admin (member or not).
pub fn delete_room(kind: RoomKind, actor: Option<Role>, global_admin: bool) -> Result<(), Denied> {
    if global_admin {
        return Ok(());
    }
    if member_role(kind, actor)? != Role::Owner {
        return Err(Denied::Forbidden);
    }
    Ok(())
}

/// Opening (or reopening) a direct room: refused when either user has blocked
/// the other. A direct room with oneself is allowed.
pub fn open_direct(blocked_either_way: bool) -> Result<(), Denied> {
    if blocked_either_way {
        return Err(Denied::Blocked);
    }
    Ok(())
}

/// Writing in a room: members only, and in a direct room not while either side
/// blocks the other.
pub fn send(kind: RoomKind, actor: Option<Role>, blocked_either_way: bool) -> Result<Role, Denied> {
    let role = member_role(kind, actor)?;
    if kind == RoomKind::Direct && blocked_either_way {
        return Err(Denied::Blocked);
    }
    Ok(role)
}

/// Editing a message: its sender only.
pub fn edit_message(is_sender: bool) -> Result<(), Denied> {
    if is_sender {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// Deleting a message: its sender, an owner or admin of the room, or a global
/// admin (member or not).
pub fn delete_message(
    kind: RoomKind,
    actor: Option<Role>,
    is_sender: bool,
    global_admin: bool,
) -> Result<(), Denied> {
    if global_admin {
        return Ok(());
    }
    let role = member_role(kind, actor)?;
    if is_sender || role >= Role::Admin {
        Ok(())
    } else {
        Err(Denied::Forbidden)
    }
}

/// The text of the `system` message a moderation step writes into the room.
pub fn system_text(step: ModerationStep, actor: &str, target: &str) -> String {
    match step {
        ModerationStep::Kick => format!("{actor} removed {target} from the room"),
        ModerationStep::Ban => format!("{actor} banned {target}"),
        ModerationStep::Unban => format!("{actor} lifted the ban on {target}"),
        ModerationStep::Role(Role::Admin) => format!("{actor} made {target} an admin"),
        ModerationStep::Role(Role::Member) => format!("{actor} made {target} a member"),
        ModerationStep::Role(Role::Owner) => format!("{actor} made {target} the owner"),
    }
}

/// A moderation step that writes a system message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationStep {
    Kick,
    Ban,
    Unban,
    Role(Role),
}

#[cfg(test)]
mod tests {
    use super::*;
    use RoomKind::*;
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    const M: Option<Role> = Some(Role::Member);
    const A: Option<Role> = Some(Role::Admin);
    const O: Option<Role> = Some(Role::Owner);
    const NONE: Option<Role> = None;

    fn uid(n: u128) -> UserId {
        UserId(Uuid::from_u128(n))
    }

    fn member(n: u128, role: Role, joined_secs: i64) -> Membership {
        Membership {
            room_id: crate::RoomId(Uuid::from_u128(999)),
            user_id: uid(n),
            role,
            joined_at: Utc.timestamp_opt(joined_secs, 0).unwrap(),
        }
    }

    #[test]
    fn non_members_learn_nothing_of_hidden_rooms() {
        assert_eq!(access(Private, NONE), Err(Denied::NotFound));
        assert_eq!(access(Direct, NONE), Err(Denied::NotFound));
        assert_eq!(access(Public, NONE), Err(Denied::NotAMember));
        assert_eq!(access(Public, M), Ok(Role::Member));
        assert_eq!(view(Private, false), Err(Denied::NotFound));
        assert_eq!(view(Public, false), Ok(()));
        assert_eq!(view(Direct, true), Ok(()));
    }

    #[test]
    fn join_rules() {
        assert_eq!(join(Public, NONE, false), Ok(Join::Join));
        assert_eq!(join(Public, M, false), Ok(Join::AlreadyMember));
        assert_eq!(join(Public, NONE, true), Err(Denied::Banned));
        assert_eq!(join(Private, NONE, false), Err(Denied::NotFound));
        assert_eq!(join(Direct, NONE, false), Err(Denied::NotFound));
    }

    #[test]
    fn ban_then_rejoin_is_refused_until_unbanned() {
        assert_eq!(ban(Public, O, M), Ok(()));
        assert_eq!(join(Public, NONE, true), Err(Denied::Banned));
        assert_eq!(add_member(Public, O, NONE, true), Err(Denied::Banned));
        assert_eq!(unban(Public, O, true), Ok(()));
        assert_eq!(join(Public, NONE, false), Ok(Join::Join));
    }

    #[test]
    fn add_member_rules() {
        assert_eq!(add_member(Private, A, NONE, false), Ok(()));
        assert_eq!(add_member(Private, O, NONE, false), Ok(()));
        assert_eq!(add_member(Private, M, NONE, false), Err(Denied::Forbidden));
        assert_eq!(
            add_member(Private, NONE, NONE, false),
            Err(Denied::NotFound)
        );
        assert_eq!(add_member(Private, O, M, false), Err(Denied::AlreadyMember));
        assert_eq!(add_member(Direct, M, NONE, false), Err(Denied::Forbidden));
    }

    #[test]
    fn kick_acts_only_downwards() {
        assert_eq!(kick(Public, A, M), Ok(()));
        assert_eq!(kick(Public, A, A), Err(Denied::Forbidden));
        assert_eq!(kick(Public, O, A), Ok(()));
        assert_eq!(kick(Public, M, M), Err(Denied::Forbidden));
    }

    #[test]
    fn nobody_kicks_the_owner() {
        assert_eq!(kick(Public, A, O), Err(Denied::Forbidden));
        assert_eq!(
            kick(Public, O, O),
            Err(Denied::Forbidden),
            "not even itself"
        );
    }

    #[test]
    fn kick_of_a_non_member_is_not_found_but_ban_is_allowed() {
        assert_eq!(kick(Public, O, NONE), Err(Denied::NotFound));
        assert_eq!(ban(Public, O, NONE), Ok(()));
        assert_eq!(ban(Public, A, A), Err(Denied::Forbidden));
        assert_eq!(ban(Public, A, O), Err(Denied::Forbidden));
    }

    #[test]
    fn moderation_is_forbidden_in_direct_rooms() {
        assert_eq!(kick(Direct, M, M), Err(Denied::Forbidden));
        assert_eq!(ban(Direct, M, M), Err(Denied::Forbidden));
        assert_eq!(unban(Direct, M, true), Err(Denied::Forbidden));
        assert_eq!(
            change_role(Direct, M, M, Role::Admin),
            Err(Denied::Forbidden)
        );
    }

    #[test]
    fn unban_needs_a_ban() {
        assert_eq!(unban(Public, A, false), Err(Denied::NotFound));
        assert_eq!(unban(Public, M, true), Err(Denied::Forbidden));
    }

    #[test]
    fn role_changes_are_the_owners() {
        assert_eq!(
            change_role(Public, O, M, Role::Admin),
            Ok(RoleChange::Change)
        );
        assert_eq!(
            change_role(Public, O, A, Role::Member),
            Ok(RoleChange::Change)
        );
        assert_eq!(
            change_role(Public, O, A, Role::Admin),
            Ok(RoleChange::Unchanged)
        );
        assert_eq!(
            change_role(Public, A, M, Role::Admin),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            change_role(Public, O, NONE, Role::Admin),
            Err(Denied::NotFound)
        );
        assert_eq!(
            change_role(Public, O, O, Role::Member),
            Err(Denied::Forbidden),
            "own role"
        );
        assert_eq!(
            change_role(Public, O, M, Role::Owner),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            change_role(Private, NONE, M, Role::Admin),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn owner_leaving_hands_over_to_the_earliest_admin() {
        let members = [
            member(1, Role::Owner, 0),
            member(2, Role::Member, 10),
            member(3, Role::Admin, 30),
            member(4, Role::Admin, 20),
        ];
        assert_eq!(
            leave(Public, uid(1), &members),
            Ok(Leave::Leave {
                new_owner: Some(uid(4))
            })
        );
    }

    #[test]
    fn owner_leaving_without_admins_hands_over_to_the_earliest_member() {
        let members = [
            member(1, Role::Owner, 0),
            member(3, Role::Member, 30),
            member(2, Role::Member, 10),
        ];
        assert_eq!(
            leave(Private, uid(1), &members),
            Ok(Leave::Leave {
                new_owner: Some(uid(2))
            })
        );
    }

    #[test]
    fn a_member_leaving_changes_no_ownership() {
        let members = [member(1, Role::Owner, 0), member(2, Role::Member, 10)];
        assert_eq!(
            leave(Public, uid(2), &members),
            Ok(Leave::Leave { new_owner: None })
        );
    }

    #[test]
    fn the_last_member_leaving_deletes_the_room() {
        assert_eq!(
            leave(Public, uid(1), &[member(1, Role::Owner, 0)]),
            Ok(Leave::DeleteRoom)
        );
        assert_eq!(
            leave(Direct, uid(2), &[member(2, Role::Member, 0)]),
            Ok(Leave::DeleteRoom)
        );
    }

    #[test]
    fn leaving_a_room_you_are_not_in() {
        let members = [member(1, Role::Owner, 0)];
        assert_eq!(leave(Public, uid(2), &members), Err(Denied::NotAMember));
        assert_eq!(leave(Private, uid(2), &members), Err(Denied::NotFound));
    }

    #[test]
    fn direct_rooms_leave_without_owner() {
        let members = [member(1, Role::Member, 0), member(2, Role::Member, 0)];
        assert_eq!(
            leave(Direct, uid(1), &members),
            Ok(Leave::Leave { new_owner: None })
        );
    }

    #[test]
    fn blocks_stop_direct_rooms_only() {
        assert_eq!(open_direct(true), Err(Denied::Blocked));
        assert_eq!(open_direct(false), Ok(()));
        assert_eq!(send(Direct, M, true), Err(Denied::Blocked));
        assert_eq!(send(Public, M, true), Ok(Role::Member));
        assert_eq!(send(Private, NONE, false), Err(Denied::NotFound));
    }

    #[test]
    fn room_edit_and_delete() {
        assert_eq!(edit_room(Public, A), Ok(()));
        assert_eq!(edit_room(Public, M), Err(Denied::Forbidden));
        assert_eq!(edit_room(Direct, M), Err(Denied::Forbidden));
        assert_eq!(delete_room(Public, O, false), Ok(()));
        assert_eq!(delete_room(Public, A, false), Err(Denied::Forbidden));
        assert_eq!(delete_room(Private, NONE, true), Ok(()), "global admin");
        assert_eq!(delete_room(Private, NONE, false), Err(Denied::NotFound));
        assert_eq!(delete_room(Direct, M, false), Err(Denied::Forbidden));
    }

    #[test]
    fn message_edit_and_delete() {
        assert_eq!(edit_message(true), Ok(()));
        assert_eq!(edit_message(false), Err(Denied::Forbidden));
        assert_eq!(delete_message(Public, M, true, false), Ok(()));
        assert_eq!(delete_message(Public, A, false, false), Ok(()));
        assert_eq!(
            delete_message(Public, M, false, false),
            Err(Denied::Forbidden)
        );
        assert_eq!(delete_message(Private, NONE, false, true), Ok(()));
        assert_eq!(
            delete_message(Private, NONE, false, false),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn system_texts_name_both_sides() {
        let t = system_text(ModerationStep::Ban, "alice", "bob");
        assert!(t.contains("alice") && t.contains("bob"));
    }
}
