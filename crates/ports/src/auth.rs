//! Password hashing and tokens.

use async_trait::async_trait;
use chat_domain::{Password, SessionId, Timestamp, UserId};

/// Something went wrong inside a hasher or token issuer (not a wrong password:
/// that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CryptoError(pub String);

/// Hashes and checks passwords.
#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// A salted, slow hash of the password. Every character of the password
    /// MUST count: no silent truncation. MUST NOT block the async workers.
    async fn hash(&self, password: &Password) -> Result<String, CryptoError>;
    /// Whether `password` matches `hash`. A malformed hash is `Ok(false)`.
    /// MUST NOT block the async workers.
    async fn verify(&self, password: &Password, hash: &str) -> Result<bool, CryptoError>;
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub expires_at: Timestamp,
}

/// What a refresh token says: which session, and which rotation of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshClaims {
    pub session_id: SessionId,
    pub generation: u64,
    pub expires_at: Timestamp,
}

/// A token and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: Timestamp,
}

/// Why a token was refused. Deliberately coarse: callers answer 401 either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

/// Issues and verifies signed tokens. Pure computation, so not async.
pub trait TokenIssuer: Send + Sync + 'static {
    /// How long an access token lives.
    fn access_ttl(&self) -> chrono::Duration;
    /// How long a refresh token (and so an idle session) lives.
    fn refresh_ttl(&self) -> chrono::Duration;
    /// A signed access token for the claims.
    fn issue_access(&self, claims: &AccessClaims) -> Result<IssuedToken, CryptoError>;
    /// The claims of a token this issuer signed, if it is still valid at
    /// `now`. A refresh token MUST NOT pass as an access token, nor the reverse.
    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError>;
    /// A signed refresh token for the claims.
    fn issue_refresh(&self, claims: &RefreshClaims) -> Result<IssuedToken, CryptoError>;
    /// The claims of a refresh token this issuer signed, if still valid at `now`.
    fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError>;
}
