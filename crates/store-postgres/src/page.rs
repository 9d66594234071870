//! Cursor keys of the lists ordered by a timestamp: the same RFC 3339 form
//! the memory store uses, every digit kept.

use chat_domain::Timestamp;
use chat_ports::{Cursor, StoreError};
use uuid::Uuid;

/// A cursor over `(timestamp, id)`.
pub(crate) fn time_cursor(t: Timestamp, id: Uuid) -> Cursor {
    Cursor::new(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), id)
}

/// The `(timestamp, id)` a time cursor points at, if any; `InvalidCursor`
/// for a key this store did not write.
pub(crate) fn time_position(
    cursor: Option<&Cursor>,
) -> Result<Option<(Timestamp, Uuid)>, StoreError> {
    cursor
        .map(|c| {
            chrono::DateTime::parse_from_rfc3339(&c.key)
                .map(|t| (t.with_timezone(&chrono::Utc), c.id))
                .map_err(|_| StoreError::InvalidCursor)
        })
        .transpose()
}

/// The page size plus one: the extra row only says whether a next page exists.
pub(crate) fn overfetch(page: &chat_ports::PageRequest) -> i64 {
    i64::from(page.limit.get()) + 1
}
