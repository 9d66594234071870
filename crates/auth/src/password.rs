//! Password hashing: bcrypt over base64(SHA-256(password)).

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bcrypt::BcryptError;
use chat_domain::Password;
use chat_ports::PasswordHasher;
use chat_ports::auth::CryptoError;
use sha2::{Digest as _, Sha256};

/// Hashes passwords with bcrypt at `cost`.
///
/// bcrypt reads at most 72 bytes of its input, and a 128-character password
/// can be 512 bytes of UTF-8. So the password is first hashed with SHA-256 and
/// the digest encoded as standard base64 (always 44 ASCII bytes, never a NUL);
/// bcrypt hashes that. Every character of the password therefore counts.
///
/// bcrypt is slow on purpose, so hashing and verifying run in
/// [`tokio::task::spawn_blocking`] and never stall the async workers (this
/// needs a Tokio runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BcryptHasher {
    /// The bcrypt cost (log2 of the rounds), 4–31. Production wants 12 or
    /// more; tests use 4.
    pub cost: u32,
}

impl BcryptHasher {
    /// The cost for production use.
    pub const DEFAULT_COST: u32 = bcrypt::DEFAULT_COST;

    pub fn new(cost: u32) -> Self {
        Self { cost }
    }
}

impl Default for BcryptHasher {
    fn default() -> Self {
        Self::new(Self::DEFAULT_COST)
    }
}

/// base64(SHA-256(password)): the 44 bytes bcrypt actually sees.
fn prehash(password: &Password) -> String {
    STANDARD.encode(Sha256::digest(password.expose().as_bytes()))
}

fn crypto_error(what: &str, e: impl std::fmt::Display) -> CryptoError {
    CryptoError(format!("{what}: {e}"))
}

#[async_trait]
impl PasswordHasher for BcryptHasher {
    async fn hash(&self, password: &Password) -> Result<String, CryptoError> {
        let input = prehash(password);
        let cost = self.cost;
        tokio::task::spawn_blocking(move || bcrypt::non_truncating_hash(input, cost))
            .await
            .map_err(|e| crypto_error("password hashing task failed", e))?
            .map_err(|e| crypto_error("password hashing failed", e))
    }

    async fn verify(&self, password: &Password, hash: &str) -> Result<bool, CryptoError> {
        let input = prehash(password);
        let hash = hash.to_owned();
        let outcome =
            tokio::task::spawn_blocking(move || bcrypt::non_truncating_verify(input, &hash))
                .await
                .map_err(|e| crypto_error("password verification task failed", e))?;
        match outcome {
            Ok(matches) => Ok(matches),
            // A stored hash that does not parse, or names an impossible cost,
            // matches no password.
            Err(
                BcryptError::InvalidCost(_)
                | BcryptError::CostNotAllowed(_)
                | BcryptError::InvalidPrefix(_)
                | BcryptError::InvalidHash(_)
                | BcryptError::InvalidSaltLen(_)
                | BcryptError::InvalidBase64(_),
            ) => Ok(false),
            Err(e) => Err(crypto_error("password verification failed", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_COST: u32 = 4;

    fn hasher() -> BcryptHasher {
        BcryptHasher::new(TEST_COST)
    }

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[test]
    fn prehash_is_44_bytes_whatever_the_password() {
        for s in ["12345678", &"é".repeat(128), &"a".repeat(128)] {
            let p = prehash(&pw(s));
            assert_eq!(p.len(), 44, "{s}");
            assert!(p.is_ascii());
        }
    }

    #[tokio::test]
    async fn a_right_password_verifies_and_a_wrong_one_does_not() {
        let h = hasher();
        let hash = h.hash(&pw("correct horse battery")).await.unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(h.verify(&pw("correct horse battery"), &hash).await.unwrap());
        assert!(
            !h.verify(&pw("correct horse battery!"), &hash)
                .await
                .unwrap()
        );
        assert!(!h.verify(&pw("wrong password"), &hash).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_salted() {
        let h = hasher();
        let a = h.hash(&pw("same password")).await.unwrap();
        let b = h.hash(&pw("same password")).await.unwrap();
        assert_ne!(a, b);
        assert!(h.verify(&pw("same password"), &a).await.unwrap());
        assert!(h.verify(&pw("same password"), &b).await.unwrap());
    }

    #[tokio::test]
    async fn characters_after_byte_72_count() {
        let h = hasher();
        let common = "x".repeat(110);
        let one = pw(&format!("{common}A"));
        let two = pw(&format!("{common}B"));
        assert!(one.expose().len() > 100);
        let hash_one = h.hash(&one).await.unwrap();
        let hash_two = h.hash(&two).await.unwrap();
        assert!(h.verify(&one, &hash_one).await.unwrap());
        assert!(h.verify(&two, &hash_two).await.unwrap());
        assert!(!h.verify(&two, &hash_one).await.unwrap());
        assert!(!h.verify(&one, &hash_two).await.unwrap());
    }

    #[tokio::test]
    async fn multibyte_characters_after_byte_72_count() {
        // 60 three-byte characters: 180 bytes, 60 characters.
        let h = hasher();
        let common = "€".repeat(60);
        let one = pw(&format!("{common}ü"));
        let two = pw(&format!("{common}ö"));
        let hash_one = h.hash(&one).await.unwrap();
        assert!(h.verify(&one, &hash_one).await.unwrap());
        assert!(!h.verify(&two, &hash_one).await.unwrap());
    }

    #[tokio::test]
    async fn unicode_passwords_work() {
        let h = hasher();
        for s in [
            "pässwörd",
            "パスワードですよ",
            "🔑🔑🔑🔑🔑🔑🔑🔑",
            "Ωmega-ℵ0-∞",
        ] {
            let hash = h.hash(&pw(s)).await.unwrap();
            assert!(h.verify(&pw(s), &hash).await.unwrap(), "{s}");
            assert!(!h.verify(&pw("12345678"), &hash).await.unwrap(), "{s}");
        }
        // Canonically equivalent but differently encoded strings are different
        // passwords: no normalisation happens here.
        let composed = pw("caf\u{e9}-latte");
        let decomposed = pw("cafe\u{301}-latte");
        let hash = h.hash(&composed).await.unwrap();
        assert!(!h.verify(&decomposed, &hash).await.unwrap());
    }

    #[tokio::test]
    async fn presented_passwords_of_any_length_are_accepted() {
        let h = hasher();
        let hash = h.hash(&pw("12345678")).await.unwrap();
        assert!(!h.verify(&Password::presented(""), &hash).await.unwrap());
        let long = Password::presented(&"z".repeat(10_000));
        assert!(!h.verify(&long, &hash).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_hash_verifies_as_false() {
        let h = hasher();
        let good = h.hash(&pw("12345678")).await.unwrap();
        let bad_cost = good.replacen("$04$", "$99$", 1);
        let bad_base64 = format!("{}!", &good[..good.len() - 1]);
        for bad in [
            "",
            "not a hash",
            "$2b$04$",
            "$2b$xx$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
            "$9z$04$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0",
            &good[..good.len() - 1],
            &bad_cost,
            &bad_base64,
        ] {
            assert!(!h.verify(&pw("12345678"), bad).await.unwrap(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_bad_cost_is_a_crypto_error_when_hashing() {
        let err = BcryptHasher::new(3)
            .hash(&pw("12345678"))
            .await
            .unwrap_err();
        assert!(err.0.contains("hashing"), "{err}");
        assert!(BcryptHasher::new(32).hash(&pw("12345678")).await.is_err());
    }

    #[tokio::test]
    async fn a_hash_from_plain_bcrypt_of_the_raw_password_does_not_verify() {
        // Guards the pre-hash: the stored hash is of the digest, not the password.
        let raw = bcrypt::hash("12345678", TEST_COST).unwrap();
        assert!(!hasher().verify(&pw("12345678"), &raw).await.unwrap());
    }
}
