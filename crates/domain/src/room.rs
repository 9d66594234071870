//! Rooms and memberships.

use crate::text::{self, LengthError};
use crate::{RoomId, Timestamp, UserId, Username};

/// What sort of room it is; decides who may see and join it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomKind {
    /// Listed in the directory; anyone signed in may join.
    Public,
    /// Members are added by an owner or admin; invisible (404) to everyone else.
    Private,
    /// A conversation between two users (or one user with themself).
    Direct,
}

impl RoomKind {
    /// Rooms a non-member may not know exist.
    pub fn is_hidden(self) -> bool {
        !matches!(self, RoomKind::Public)
    }
}

/// A room name: 1–100 characters after trimming. Names need not be unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX: usize = 100;

    pub fn parse(s: &str) -> Result<Self, LengthError> {
        text::bounded(s, 1, Self::MAX).map(|t| Self(t.to_owned()))
    }

    /// The stored name of a direct room: its members' usernames, sorted, joined
    /// by ", " (one name for notes to self). Usernames never change, so the
    /// name never goes stale; clients usually show the other person instead.
    pub fn for_direct(a: &Username, b: &Username) -> Self {
        let (mut x, mut y) = (a.as_str(), b.as_str());
        if a.key() > b.key() {
            std::mem::swap(&mut x, &mut y);
        }
        if a.key() == b.key() {
            Self(x.to_owned())
        } else {
            Self(format!("{x}, {y}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room description: 0–1000 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomDescription(String);

impl RoomDescription {
    pub const MAX: usize = 1000;

    pub fn parse(s: &str) -> Result<Self, LengthError> {
        text::bounded(s, 0, Self::MAX).map(|t| Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    pub name: RoomName,
    pub description: RoomDescription,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub member_count: u32,
    /// The seq of the newest message; 0 for a room with none.
    pub last_seq: u64,
    /// Counts every change in the room; a new room is at 1 and each counted
    /// change raises it by exactly one, in commit order.
    pub version: u64,
    /// For a direct room, its two members' ids as [`direct_pair`] sorts them
    /// (the same id twice for notes to self); `None` for other kinds.
    pub direct_pair: Option<(UserId, UserId)>,
}

/// A member's role in a room, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// A user's membership of a room.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// The key that makes a direct room one per pair of users: the two ids, sorted.
pub fn direct_pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn room_name_bounds() {
        assert!(RoomName::parse("").is_err());
        assert!(RoomName::parse("  ").is_err());
        assert_eq!(RoomName::parse(" general ").unwrap().as_str(), "general");
        assert!(RoomName::parse(&"é".repeat(100)).is_ok());
        assert!(RoomName::parse(&"é".repeat(101)).is_err());
        assert!(RoomName::parse("a\0").is_err());
    }

    #[test]
    fn description_may_be_empty_but_bounded() {
        assert_eq!(RoomDescription::parse("").unwrap().as_str(), "");
        assert!(RoomDescription::parse(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
    }

    #[test]
    fn direct_pair_is_symmetric() {
        let a = UserId(Uuid::from_u128(1));
        let b = UserId(Uuid::from_u128(2));
        assert_eq!(direct_pair(a, b), direct_pair(b, a));
        assert_eq!(direct_pair(a, a), (a, a));
    }

    #[test]
    fn direct_name_is_the_same_from_either_side() {
        let a = Username::parse("bob").unwrap();
        let b = Username::parse("Alice").unwrap();
        assert_eq!(RoomName::for_direct(&a, &b), RoomName::for_direct(&b, &a));
        assert_eq!(RoomName::for_direct(&a, &b).as_str(), "Alice, bob");
        assert_eq!(RoomName::for_direct(&a, &a).as_str(), "bob");
    }
}
