//! From diesel and deadpool errors to the port's `StoreError`. Nothing of
//! either crosses the port: everything goes through [`map_diesel`] and
//! [`map_pool`], with the driver error kept only as the `source()`.

use chat_ports::{Conflict, StoreError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;

/// What the closure of one port call can fail with.
#[derive(Debug)]
pub(crate) enum TxError {
    /// A database error, mapped by [`map_diesel`].
    Db(DieselError),
    /// A decision of the adapter itself (not found, stale, ...).
    Store(StoreError),
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
        }
    }
}

/// The [`Conflict`] for each unique index or constraint a port call may
/// break. The `client_msg_id` index is not among them: a send that breaks it
/// answers with the first message instead (see [`breaks_client_msg_id`]).
fn conflict_of(constraint: &str) -> Option<Conflict> {
    Some(match constraint {
        "users_username_key" => Conflict::Username,
        "users_email_key" => Conflict::Email,
        "rooms_direct_pair_key" => Conflict::DirectPair,
        // `storage_key` is the id's string: the two break together.
        "attachments_pkey" | "attachments_storage_key_key" => Conflict::Attachment,
        "users_pkey" | "sessions_pkey" | "rooms_pkey" | "messages_pkey" => Conflict::Id,
        _ => return None,
    })
}

/// Whether the error is a send breaking the `client_msg_id` index: an
/// identical send won the race.
pub(crate) fn breaks_client_msg_id(e: &TxError) -> bool {
    matches!(
        e,
        TxError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.constraint_name() == Some("messages_client_msg_id_key")
    )
}

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

/// Maps a diesel error: unique violations to `Conflict` by
/// constraint name, foreign-key violations to `NotFound` (the row named does
/// not exist), a lost connection or a timeout to `Unavailable`, everything
/// else to `Other`.
pub(crate) fn map_diesel(e: DieselError) -> StoreError {
    match &e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => {
                match info.constraint_name().and_then(conflict_of) {
                    Some(what) => StoreError::Conflict(what),
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
        assert_eq!(conflict_of("users_username_key"), Some(Conflict::Username));
        assert_eq!(conflict_of("users_email_key"), Some(Conflict::Email));
        assert_eq!(
            conflict_of("rooms_direct_pair_key"),
            Some(Conflict::DirectPair)
        );
        assert_eq!(conflict_of("rooms_pkey"), Some(Conflict::Id));
        assert_eq!(conflict_of("attachments_pkey"), Some(Conflict::Attachment));
        assert_eq!(conflict_of("memberships_pkey"), None);
    }

    #[test]
    fn timeouts_are_transient() {
        assert!(is_transient("canceling statement due to statement timeout"));
        assert!(!is_transient("syntax error at or near \"x\""));
    }
}
