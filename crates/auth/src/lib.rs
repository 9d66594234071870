//! The authentication adapters: [`BcryptHasher`] behind the `PasswordHasher`
//! port (bcrypt over a SHA-256 pre-hash, so every character of a password
//! counts) and [`JwtTokens`] behind the `TokenIssuer` port (HS256 JSON Web
//! Tokens, checked against the application's clock), plus
//! [`secret_from_config`], which turns the configured signing secret into a
//! [`JwtSecret`] or refuses to start.
//!
//! This crate must not know about HTTP, storage, configuration files or the
//! use cases: it sees passwords, claims and secret bytes, and nothing of where
//! they came from or where they go. Secrets never `Debug`-print.

mod jwt;
mod password;
mod secret;

pub use jwt::JwtTokens;
pub use password::BcryptHasher;
pub use secret::{
    JwtSecret, MIN_SECRET_LEN, SecretError, WARN_GENERATED_SECRET, secret_from_config,
};
