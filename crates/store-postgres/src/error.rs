//! From diesel and deadpool errors to the port's `StoreError`. Nothing of
//! either crosses the port: everything goes through [`map_diesel`] and
//! [`map_pool`], with the driver error kept only as the `source()`.

use chat_domain::Message;
use chat_ports::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;

/// What the closure of one port call can fail with.
#[derive(Debug)]
pub(crate) enum TxError {
    /// A database error, mapped by [`map_diesel`].
    Db(DieselError),
    /// A decision of the adapter itself (not found, stale, ...).
    Store(StoreError),
    /// A send found its `client_msg_id` already used, after it had started
    /// writing: roll back, and answer with the first message.
    Replay(Box<Message>),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl TxError {
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Self::Db(e) => map_diesel(e),
            Self::Store(e) => e,
            Self::Replay(_) => StoreError::other("a replayed send escaped its port call"),
        }
    }
}

/// The `what` of `StoreError::Conflict` for each unique index or constraint
/// a port call may break. [`CLIENT_MSG_ID`] never leaves the adapter: a send
/// that breaks it answers with the first message instead.
fn conflict_what(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "users_username_key" => "username",
        "users_email_key" => "email",
        "rooms_direct_pair_key" => "direct_pair",
        "messages_client_msg_id_key" => CLIENT_MSG_ID,
        // `storage_key` is the id's string: the two break together.
        "attachments_pkey" | "attachments_storage_key_key" => "attachment",
        "users_pkey" | "sessions_pkey" | "rooms_pkey" | "messages_pkey" => "id",
        _ => return None,
    })
}

/// The conflict of two sends with one `client_msg_id`; internal.
pub(crate) const CLIENT_MSG_ID: &str = "client_msg_id";

/// Server messages that mean "not now": retrying later may work. diesel's
/// tokio-postgres backend keeps no SQLSTATE for these (its kind is
/// `Unknown`), so the (English) message is what there is to go by.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: [&str; 8] = [
        "canceling statement due to statement timeout",
        "canceling statement due to lock timeout",
        "canceling statement due to user request",
        "deadlock detected",
        "could not serialize access",
        "terminating connection",
        "the database system is",
        "idle-in-transaction timeout",
    ];
    TRANSIENT.iter().any(|t| message.contains(t))
}

/// Maps a diesel error: unique violations to `Conflict { what }` by
/// constraint name, foreign-key violations to `NotFound` (the row named does
/// not exist), a lost connection or a timeout to `Unavailable`, everything
/// else to `Other`.
pub(crate) fn map_diesel(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => {
                match info.constraint_name().and_then(conflict_what) {
                    Some(what) => StoreError::Conflict { what },
                    None => StoreError::other(e),
                }
            }
            DatabaseErrorKind::ForeignKeyViolation => StoreError::NotFound,
            DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::SerializationFailure => StoreError::unavailable(e),
            _ if is_transient(info.message()) => StoreError::unavailable(e),
            _ => StoreError::other(e),
        },
        DieselError::BrokenTransactionManager => StoreError::unavailable(e),
        _ => StoreError::other(e),
    }
}

/// Maps a pool error: no connection to be had (a timeout, the server down,
/// a failed set-up) is `Unavailable`.
pub(crate) fn map_pool(e: PoolError) -> StoreError {
    match e {
        deadpool::managed::PoolError::NoRuntimeSpecified => StoreError::other(e),
        _ => StoreError::unavailable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unique_rule_of_the_ports_has_its_name() {
        assert_eq!(conflict_what("users_username_key"), Some("username"));
        assert_eq!(conflict_what("users_email_key"), Some("email"));
        assert_eq!(conflict_what("rooms_direct_pair_key"), Some("direct_pair"));
        assert_eq!(conflict_what("rooms_pkey"), Some("id"));
        assert_eq!(conflict_what("attachments_pkey"), Some("attachment"));
        assert_eq!(conflict_what("memberships_pkey"), None);
    }

    #[test]
    fn timeouts_are_transient() {
        assert!(is_transient("canceling statement due to statement timeout"));
        assert!(!is_transient("syntax error at or near \"x\""));
    }
}
