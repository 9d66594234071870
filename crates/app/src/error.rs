//! The one error type of the use cases.
//!
//! Every failure of every use case lands on the contract's small set of
//! answers, so one enum keeps the mapping to them in one place (the HTTP
//! adapter's `ApiError`) instead of a dozen near-identical ones.

use chat_domain::rules::Denied;
use chat_ports::StoreError;
use chat_ports::auth::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An input that is well-formed but wrong here (a reply into another
    /// room, a seq past the end, an unknown member id).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A domain rule refused the step.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// No such user or message (rooms answer through [`Denied::NotFound`]).
    #[error("not found")]
    NotFound,
    /// Wrong username, email or password: deliberately one answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// A missing, invalid, expired or revoked token.
    #[error("unauthorized")]
    Unauthorized,
    /// The username or the email belongs to someone else already.
    #[error("{0:?} taken")]
    Taken(Taken),
    /// The room kept changing under a decision; the caller may try again.
    #[error("the room is busy, try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// What [`AppError::Taken`] says is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

impl AppError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
