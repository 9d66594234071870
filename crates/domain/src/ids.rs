//! Identifier newtypes. All are UUIDs (v7, time-ordered, when the id generator makes them).

use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Identifies a user account.
    UserId
);
id_type!(
    /// Identifies a room (public channel, private group or direct conversation).
    RoomId
);
id_type!(
    /// Identifies a message.
    MessageId
);
id_type!(
    /// Identifies a login session: one per login, shared by the access and refresh tokens it issues.
    SessionId
);
id_type!(
    /// Identifies an uploaded attachment.
    AttachmentId
);
