//! Users and the value objects of an account.

use crate::text::{self, LengthError};
use crate::{AttachmentId, Timestamp, UserId};

/// A username: 3–32 characters of `[A-Za-z0-9_.-]`. Kept as typed; compared
/// ignoring ASCII case (see [`Username::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be 3-32 characters")]
    Length,
    #[error("may contain only letters, digits, '_', '.' and '-'")]
    Charset,
}

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(s: &str) -> Result<Self, UsernameError> {
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(UsernameError::Charset);
        }
        // All characters are ASCII here, so bytes are characters.
        if !(Self::MIN..=Self::MAX).contains(&s.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on: lower case.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// An email address. Checked for shape only (one `@`, a dotted domain, no
/// spaces, at most 254 characters); kept as typed, compared ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must be a valid email address")]
    Invalid,
}

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(s: &str) -> Result<Self, EmailError> {
        let s = s.trim();
        if s.is_empty()
            || text::char_len(s) > Self::MAX
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(EmailError::Invalid);
        }
        let (local, domain) = s.split_once('@').ok_or(EmailError::Invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(EmailError::Invalid);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A plain-text password on its way to the hasher: 8–128 characters, every one
/// of which counts. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be 8-128 characters")]
    Length,
    #[error("must not contain a NUL character")]
    Nul,
}

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 128;

    pub fn parse(s: &str) -> Result<Self, PasswordError> {
        if text::has_nul(s) {
            return Err(PasswordError::Nul);
        }
        if !(Self::MIN..=Self::MAX).contains(&text::char_len(s)) {
            return Err(PasswordError::Length);
        }
        Ok(Self(s.to_owned()))
    }

    /// A password presented at login is not length-checked (a wrong one is just
    /// wrong), but it still must be something a hasher can take.
    pub fn presented(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A display name: 1–64 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, LengthError> {
        text::bounded(s, 1, Self::MAX).map(|t| Self(t.to_owned()))
    }

    /// A new account's display name when none is given: its username.
    pub fn from_username(u: &Username) -> Self {
        Self(u.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a user names themself at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Username(String),
    Email(String),
}

/// A user's standing on the whole server. Not stored: operators name the
/// global admins in configuration, and the application applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalRole {
    User,
    /// May delete any room or message, without reading rooms it is not in.
    Admin,
}

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub avatar: Option<AttachmentId>,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_bounds() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::Charset));
        assert_eq!(Username::parse("alïce"), Err(UsernameError::Charset));
        assert!(Username::parse("a_b.c-D9").is_ok());
    }

    #[test]
    fn username_key_ignores_case() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("aLICE").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "Alice.Smith+tag@example.org", "x@sub.example.com"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a@@b.co", "a b@c.de", "a@b..co", "a@-b.co",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse("A@B.CO").unwrap().key(),
            Email::parse("a@b.co").unwrap().key()
        );
    }

    #[test]
    fn password_counts_characters_not_bytes() {
        assert_eq!(Password::parse("1234567"), Err(PasswordError::Length));
        assert!(Password::parse("12345678").is_ok());
        // 8 two-byte characters: 16 bytes, 8 characters.
        assert!(Password::parse("éééééééé").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok());
        assert_eq!(
            Password::parse(&"a".repeat(129)),
            Err(PasswordError::Length)
        );
        assert_eq!(Password::parse("abc\0defgh"), Err(PasswordError::Nul));
    }

    #[test]
    fn password_debug_hides_it() {
        let p = Password::parse("supersecret").unwrap();
        assert!(!format!("{p:?}").contains("supersecret"));
    }

    #[test]
    fn display_name_is_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Al  ").unwrap().as_str(), "Al");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(65)).is_err());
        assert!(DisplayName::parse("a\0b").is_err());
    }
}
