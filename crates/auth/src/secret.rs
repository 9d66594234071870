//! The token-signing secret, as configured (or, in development, made up).

/// The fewest bytes a configured secret may have, in every environment
/// (256 bits, HS256's own strength).
pub const MIN_SECRET_LEN: usize = 32;

/// How many random bytes a development secret gets when none is configured.
const GENERATED_SECRET_LEN: usize = 64;

/// The warning [`secret_from_config`] returns when it made a secret up.
pub const WARN_GENERATED_SECRET: &str = "no JWT secret configured: using a random one for this \
     development run; every token becomes invalid when the server restarts";

/// The bytes tokens are signed with. Never `Debug`-printed, never compared
/// (there is no `PartialEq`, which would not be constant-time).
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    /// Wraps `bytes` as they are. Prefer [`secret_from_config`], which
    /// enforces the length rules.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret itself, for [`crate::JwtTokens::new`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// How many bytes the secret has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn random() -> Result<Self, SecretError> {
        let mut bytes = vec![0u8; GENERATED_SECRET_LEN];
        getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret([redacted])")
    }
}

/// Why no usable secret could be had. Each is a reason to refuse to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no JWT secret configured (set JWT_SECRET); one is required outside development")]
    Missing,
    #[error(
        "the JWT secret is {len} bytes; at least {MIN_SECRET_LEN} are required (leave it unset in development for a random one)"
    )]
    TooShort { len: usize },
    #[error("could not generate a random JWT secret: {0}")]
    Random(String),
}

/// The signing secret to use, from the configured value, and a warning for
/// the server to log if it had to bend a rule.
///
/// | configured                    | `development`             | otherwise             |
/// |-------------------------------|---------------------------|-----------------------|
/// | ≥ 32 bytes                    | it, no warning            | it, no warning        |
/// | 1–31 bytes                    | [`SecretError::TooShort`] | [`SecretError::TooShort`] |
/// | `None` or the empty string    | 64 random bytes, [`WARN_GENERATED_SECRET`] | [`SecretError::Missing`] |
///
/// A short secret is refused even in development: a weak key configured
/// on purpose is a mistake wherever it is made, and a development server
/// that needs none gets a random one.
///
/// The length is in bytes of the string as given (it is not trimmed or
/// decoded). An empty string counts as unset, as an empty `JWT_SECRET=`
/// variable usually means.
pub fn secret_from_config(
    secret: Option<&str>,
    development: bool,
) -> Result<(JwtSecret, Option<&'static str>), SecretError> {
    match secret.filter(|s| !s.is_empty()) {
        Some(s) if s.len() >= MIN_SECRET_LEN => Ok((JwtSecret::from_bytes(s), None)),
        Some(s) => Err(SecretError::TooShort { len: s.len() }),
        None if development => Ok((JwtSecret::random()?, Some(WARN_GENERATED_SECRET))),
        None => Err(SecretError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_long_secret_is_used_as_is_everywhere() {
        for dev in [false, true] {
            let (secret, warning) = secret_from_config(Some(LONG), dev).unwrap();
            assert_eq!(secret.as_bytes(), LONG.as_bytes());
            assert_eq!(warning, None);
        }
    }

    #[test]
    fn the_limit_is_32_bytes_not_characters() {
        assert_eq!(
            secret_from_config(Some(&LONG[..31]), false).unwrap_err(),
            SecretError::TooShort { len: 31 }
        );
        // 16 two-byte characters: 32 bytes.
        let (secret, warning) = secret_from_config(Some(&"é".repeat(16)), false).unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(warning, None);
        assert!(secret_from_config(Some(&"é".repeat(15)), false).is_err());
    }

    #[test]
    fn a_short_secret_is_refused_in_every_environment() {
        for dev in [false, true] {
            assert_eq!(
                secret_from_config(Some("short"), dev).unwrap_err(),
                SecretError::TooShort { len: 5 }
            );
        }
    }

    #[test]
    fn a_missing_secret_is_refused_outside_development() {
        assert_eq!(
            secret_from_config(None, false).unwrap_err(),
            SecretError::Missing
        );
        assert_eq!(
            secret_from_config(Some(""), false).unwrap_err(),
            SecretError::Missing
        );
    }

    #[test]
    fn a_missing_secret_is_made_up_in_development_with_a_warning() {
        for configured in [None, Some("")] {
            let (a, warning) = secret_from_config(configured, true).unwrap();
            assert_eq!(a.len(), 64);
            assert_eq!(warning, Some(WARN_GENERATED_SECRET));
            let (b, _) = secret_from_config(configured, true).unwrap();
            assert_ne!(a.as_bytes(), b.as_bytes(), "each run gets a fresh secret");
            assert!(a.as_bytes().iter().any(|&byte| byte != 0));
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let (secret, _) = secret_from_config(Some(LONG), false).unwrap();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "JwtSecret([redacted])");
        assert!(!shown.contains("0123"));
    }

    #[test]
    fn errors_do_not_carry_the_secret() {
        let err = secret_from_config(Some("hunter2"), false).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn a_configured_secret_signs_tokens() {
        use chat_ports::TokenIssuer as _;
        let (secret, _) = secret_from_config(Some(LONG), false).unwrap();
        let tokens = crate::JwtTokens::new(
            secret.as_bytes(),
            chrono::Duration::minutes(5),
            chrono::Duration::days(1),
        );
        let now = chrono::Utc::now();
        let claims = chat_ports::RefreshClaims {
            session_id: chat_domain::SessionId(uuid::Uuid::now_v7()),
            generation: 0,
            expires_at: now + chrono::Duration::days(1),
        };
        let issued = tokens.issue_refresh(&claims).unwrap();
        assert!(tokens.verify_refresh(&issued.token, now).is_ok());
    }
}
