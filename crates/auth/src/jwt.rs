//! Access and refresh tokens: HS256 JSON Web Tokens.

use chat_domain::{SessionId, Timestamp, UserId};
use chat_ports::auth::CryptoError;
use chat_ports::{AccessClaims, IssuedToken, RefreshClaims, TokenError, TokenIssuer};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ACCESS: &str = "access";
const REFRESH: &str = "refresh";

/// The payload of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct AccessJwt {
    /// The user id.
    sub: String,
    /// The session id.
    sid: String,
    iat: i64,
    exp: i64,
    typ: String,
}

/// The payload of a refresh token.
#[derive(Debug, Serialize, Deserialize)]
struct RefreshJwt {
    /// The session id.
    sid: String,
    /// The rotation of the session this token belongs to.
    #[serde(rename = "gen")]
    generation: u64,
    iat: i64,
    exp: i64,
    typ: String,
}

/// Issues and verifies HS256 JSON Web Tokens.
///
/// - Access token claims: `sub` (user id), `sid` (session id), `iat`, `exp`,
///   `typ: "access"`.
/// - Refresh token claims: `sid`, `gen` (the session's rotation), `iat`,
///   `exp`, `typ: "refresh"`.
///
/// `exp` and `iat` are Unix seconds. `exp` is the claims' `expires_at`
/// rounded down to the whole second, and the [`IssuedToken::expires_at`]
/// returned is that same rounded instant; `iat` is `exp` minus the token's
/// TTL (the issuer has no clock of its own).
///
/// Verification accepts only HS256 (so `alg: none` and algorithm swaps fail),
/// checks the signature, then the `typ` (an access token never passes as a
/// refresh token, nor the reverse), then the expiry against the `now` it is
/// given, never the wall clock: a token is expired from the second `exp`
/// names onwards. Anything wrong but the expiry is [`TokenError::Invalid`].
pub struct JwtTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl JwtTokens {
    /// An issuer signing with `secret`. Checking the secret's strength is
    /// [`crate::secret_from_config`]'s job, not this constructor's.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // Expiry is checked against the caller's `now`, not jsonwebtoken's
        // wall clock; `exp` must still be present.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    fn sign<T: Serialize>(&self, claims: &T, exp: i64) -> Result<IssuedToken, CryptoError> {
        let expires_at = unix_to_timestamp(exp)
            .ok_or_else(|| CryptoError(format!("token expiry {exp} is out of range")))?;
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| CryptoError(format!("token signing failed: {e}")))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The verified payload of `token`, or why not. Only the signature,
    /// algorithm and shape are checked here.
    fn decode<T: DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                // Not produced while `validate_exp` is off; kept for safety.
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokens")
            .field("algorithm", &Algorithm::HS256)
            .field("secret", &"[redacted]")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

fn unix_to_timestamp(secs: i64) -> Option<Timestamp> {
    DateTime::<Utc>::from_timestamp(secs, 0)
}

fn parse_id(s: &str) -> Result<Uuid, TokenError> {
    Uuid::parse_str(s).map_err(|_| TokenError::Invalid)
}

/// `Ok(expires_at)` when `typ` is `want` and `exp` is after `now`.
fn check(typ: &str, want: &str, exp: i64, now: Timestamp) -> Result<Timestamp, TokenError> {
    if typ != want {
        return Err(TokenError::Invalid);
    }
    let expires_at = unix_to_timestamp(exp).ok_or(TokenError::Invalid)?;
    if now >= expires_at {
        return Err(TokenError::Expired);
    }
    Ok(expires_at)
}

/// `iat` for a token expiring at `exp` that lives `ttl`.
fn issued_at(exp: i64, ttl: Duration) -> i64 {
    exp.saturating_sub(ttl.num_seconds())
}

impl TokenIssuer for JwtTokens {
    fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    fn issue_access(&self, claims: &AccessClaims) -> Result<IssuedToken, CryptoError> {
        let exp = claims.expires_at.timestamp();
        let jwt = AccessJwt {
            sub: claims.user_id.to_string(),
            sid: claims.session_id.to_string(),
            iat: issued_at(exp, self.access_ttl),
            exp,
            typ: ACCESS.to_owned(),
        };
        self.sign(&jwt, exp)
    }

    fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
        let jwt: AccessJwt = self.decode(token)?;
        let expires_at = check(&jwt.typ, ACCESS, jwt.exp, now)?;
        Ok(AccessClaims {
            user_id: UserId(parse_id(&jwt.sub)?),
            session_id: SessionId(parse_id(&jwt.sid)?),
            expires_at,
        })
    }

    fn issue_refresh(&self, claims: &RefreshClaims) -> Result<IssuedToken, CryptoError> {
        let exp = claims.expires_at.timestamp();
        let jwt = RefreshJwt {
            sid: claims.session_id.to_string(),
            generation: claims.generation,
            iat: issued_at(exp, self.refresh_ttl),
            exp,
            typ: REFRESH.to_owned(),
        };
        self.sign(&jwt, exp)
    }

    fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError> {
        let jwt: RefreshJwt = self.decode(token)?;
        let expires_at = check(&jwt.typ, REFRESH, jwt.exp, now)?;
        Ok(RefreshClaims {
            session_id: SessionId(parse_id(&jwt.sid)?),
            generation: jwt.generation,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::TimeZone as _;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

    fn tokens() -> JwtTokens {
        JwtTokens::new(SECRET, Duration::minutes(15), Duration::days(30))
    }

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
    }

    fn access_claims(now: Timestamp, t: &JwtTokens) -> AccessClaims {
        AccessClaims {
            user_id: UserId(Uuid::now_v7()),
            session_id: SessionId(Uuid::now_v7()),
            expires_at: now + t.access_ttl(),
        }
    }

    fn refresh_claims(now: Timestamp, t: &JwtTokens) -> RefreshClaims {
        RefreshClaims {
            session_id: SessionId(Uuid::now_v7()),
            generation: 7,
            expires_at: now + t.refresh_ttl(),
        }
    }

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn header(token: &str) -> serde_json::Value {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// `token` with its payload replaced by `claims`, keeping the old signature.
    fn with_payload(token: &str, claims: &serde_json::Value) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        format!("{}.{}.{}", parts[0], body, parts[2])
    }

    #[test]
    fn ttls_are_reported() {
        let t = tokens();
        assert_eq!(t.access_ttl(), Duration::minutes(15));
        assert_eq!(t.refresh_ttl(), Duration::days(30));
    }

    #[test]
    fn access_round_trip() {
        let t = tokens();
        let claims = access_claims(t0(), &t);
        let issued = t.issue_access(&claims).unwrap();
        assert_eq!(issued.expires_at, t0() + Duration::minutes(15));
        let back = t.verify_access(&issued.token, t0()).unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn refresh_round_trip() {
        let t = tokens();
        let claims = refresh_claims(t0(), &t);
        let issued = t.issue_refresh(&claims).unwrap();
        assert_eq!(issued.expires_at, claims.expires_at);
        assert_eq!(t.verify_refresh(&issued.token, t0()).unwrap(), claims);
    }

    #[test]
    fn access_token_shape() {
        let t = tokens();
        let claims = access_claims(t0(), &t);
        let token = t.issue_access(&claims).unwrap().token;
        assert_eq!(header(&token)["alg"], "HS256");
        let p = payload(&token);
        assert_eq!(p["sub"], claims.user_id.to_string());
        assert_eq!(p["sid"], claims.session_id.to_string());
        assert_eq!(p["typ"], "access");
        assert_eq!(p["exp"], claims.expires_at.timestamp());
        assert_eq!(p["iat"], t0().timestamp());
        assert_eq!(p.as_object().unwrap().len(), 5, "{p}");
    }

    #[test]
    fn refresh_token_shape() {
        let t = tokens();
        let claims = refresh_claims(t0(), &t);
        let token = t.issue_refresh(&claims).unwrap().token;
        assert_eq!(header(&token)["alg"], "HS256");
        let p = payload(&token);
        assert_eq!(p["sid"], claims.session_id.to_string());
        assert_eq!(p["gen"], 7);
        assert_eq!(p["typ"], "refresh");
        assert_eq!(p["exp"], claims.expires_at.timestamp());
        assert_eq!(p["iat"], t0().timestamp());
        assert_eq!(p.as_object().unwrap().len(), 5, "{p}");
    }

    #[test]
    fn generation_survives_large_values() {
        let t = tokens();
        let mut claims = refresh_claims(t0(), &t);
        claims.generation = u64::MAX;
        let issued = t.issue_refresh(&claims).unwrap();
        assert_eq!(
            t.verify_refresh(&issued.token, t0()).unwrap().generation,
            u64::MAX
        );
    }

    #[test]
    fn sub_second_expiry_is_rounded_down_consistently() {
        let t = tokens();
        let mut claims = access_claims(t0(), &t);
        claims.expires_at += Duration::milliseconds(750);
        let issued = t.issue_access(&claims).unwrap();
        assert_eq!(issued.expires_at, t0() + Duration::minutes(15));
        let back = t.verify_access(&issued.token, t0()).unwrap();
        assert_eq!(back.expires_at, issued.expires_at);
    }

    #[test]
    fn expiry_follows_the_given_clock_not_the_wall_clock() {
        let t = tokens();
        // Long past by the wall clock; still valid by the app's clock.
        let then = Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).unwrap();
        let access = t.issue_access(&access_claims(then, &t)).unwrap();
        let refresh = t.issue_refresh(&refresh_claims(then, &t)).unwrap();
        assert!(t.verify_access(&access.token, then).is_ok());
        assert!(t.verify_refresh(&refresh.token, then).is_ok());
        assert_eq!(
            t.verify_access(&access.token, Utc::now()),
            Err(TokenError::Expired)
        );
        assert_eq!(
            t.verify_refresh(&refresh.token, Utc::now()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_expires_at_exactly_exp() {
        let t = tokens();
        let access = t.issue_access(&access_claims(t0(), &t)).unwrap();
        let at = access.expires_at;
        assert!(
            t.verify_access(&access.token, at - Duration::seconds(1))
                .is_ok()
        );
        assert!(
            t.verify_access(&access.token, at - Duration::milliseconds(1))
                .is_ok()
        );
        assert_eq!(t.verify_access(&access.token, at), Err(TokenError::Expired));
        assert_eq!(
            t.verify_access(&access.token, at + Duration::days(1)),
            Err(TokenError::Expired)
        );

        let refresh = t.issue_refresh(&refresh_claims(t0(), &t)).unwrap();
        let at = refresh.expires_at;
        assert!(
            t.verify_refresh(&refresh.token, at - Duration::seconds(1))
                .is_ok()
        );
        assert_eq!(
            t.verify_refresh(&refresh.token, at),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token_nor_the_reverse() {
        let t = tokens();
        let access = t.issue_access(&access_claims(t0(), &t)).unwrap();
        let refresh = t.issue_refresh(&refresh_claims(t0(), &t)).unwrap();
        assert_eq!(
            t.verify_access(&refresh.token, t0()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify_refresh(&access.token, t0()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn the_typ_claim_alone_decides_the_kind() {
        // A correctly signed token carrying every claim of both kinds but the
        // wrong `typ` is still refused.
        let t = tokens();
        let mut both = serde_json::json!({
            "sub": Uuid::now_v7().to_string(),
            "sid": Uuid::now_v7().to_string(),
            "gen": 1,
            "iat": t0().timestamp(),
            "exp": (t0() + Duration::hours(1)).timestamp(),
            "typ": "refresh",
        });
        let key = EncodingKey::from_secret(SECRET);
        let sign =
            |v: &serde_json::Value| jsonwebtoken::encode(&Header::default(), v, &key).unwrap();
        assert_eq!(
            t.verify_access(&sign(&both), t0()),
            Err(TokenError::Invalid)
        );
        assert!(t.verify_refresh(&sign(&both), t0()).is_ok());
        both["typ"] = "access".into();
        assert!(t.verify_access(&sign(&both), t0()).is_ok());
        assert_eq!(
            t.verify_refresh(&sign(&both), t0()),
            Err(TokenError::Invalid)
        );
        for typ in [serde_json::json!("ACCESS"), serde_json::json!(null)] {
            both["typ"] = typ;
            assert_eq!(
                t.verify_access(&sign(&both), t0()),
                Err(TokenError::Invalid)
            );
        }
        both.as_object_mut().unwrap().remove("typ");
        assert_eq!(
            t.verify_access(&sign(&both), t0()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_token_without_exp_is_invalid() {
        let t = tokens();
        let claims = serde_json::json!({
            "sub": Uuid::now_v7().to_string(),
            "sid": Uuid::now_v7().to_string(),
            "iat": t0().timestamp(),
            "typ": "access",
        });
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(t.verify_access(&token, t0()), Err(TokenError::Invalid));
    }

    #[test]
    fn bad_ids_are_invalid() {
        let t = tokens();
        let claims = serde_json::json!({
            "sub": "not-a-uuid",
            "sid": Uuid::now_v7().to_string(),
            "iat": t0().timestamp(),
            "exp": (t0() + Duration::hours(1)).timestamp(),
            "typ": "access",
        });
        let token = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(t.verify_access(&token, t0()), Err(TokenError::Invalid));
    }

    #[test]
    fn a_tampered_token_is_invalid() {
        let t = tokens();
        let claims = access_claims(t0(), &t);
        let token = t.issue_access(&claims).unwrap().token;

        // Another user, same signature.
        let mut p = payload(&token);
        p["sub"] = Uuid::now_v7().to_string().into();
        assert_eq!(
            t.verify_access(&with_payload(&token, &p), t0()),
            Err(TokenError::Invalid)
        );

        // Later expiry, same signature.
        let mut p = payload(&token);
        p["exp"] = (t0() + Duration::days(365)).timestamp().into();
        assert_eq!(
            t.verify_access(&with_payload(&token, &p), t0()),
            Err(TokenError::Invalid)
        );

        // A flipped signature character.
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(t.verify_access(&flipped, t0()), Err(TokenError::Invalid));

        // Signature stripped.
        let unsigned = token.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert_eq!(t.verify_access(&unsigned, t0()), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_is_invalid() {
        let t = tokens();
        for garbage in [
            "",
            ".",
            "..",
            "abc",
            "a.b.c",
            "Bearer x.y.z",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
            "💥.💥.💥",
        ] {
            assert_eq!(
                t.verify_access(garbage, t0()),
                Err(TokenError::Invalid),
                "{garbage:?}"
            );
            assert_eq!(
                t.verify_refresh(garbage, t0()),
                Err(TokenError::Invalid),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn a_token_from_another_secret_is_invalid() {
        let t = tokens();
        let other = JwtTokens::new(
            b"another-secret-another-secret-another",
            Duration::minutes(15),
            Duration::days(30),
        );
        let access = other.issue_access(&access_claims(t0(), &t)).unwrap();
        let refresh = other.issue_refresh(&refresh_claims(t0(), &t)).unwrap();
        assert_eq!(
            t.verify_access(&access.token, t0()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify_refresh(&refresh.token, t0()),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn alg_none_is_invalid() {
        let t = tokens();
        let token = t.issue_access(&access_claims(t0(), &t)).unwrap().token;
        let body = token.split('.').nth(1).unwrap();
        for alg_header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"None","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let head = URL_SAFE_NO_PAD.encode(alg_header);
            for sig in ["", token.rsplit('.').next().unwrap()] {
                let forged = format!("{head}.{body}.{sig}");
                assert_eq!(
                    t.verify_access(&forged, t0()),
                    Err(TokenError::Invalid),
                    "{alg_header} {sig:?}"
                );
            }
        }
    }

    #[test]
    fn other_algorithms_are_invalid_even_with_the_right_secret() {
        let t = tokens();
        let claims = payload(&t.issue_access(&access_claims(t0(), &t)).unwrap().token);
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let token = jsonwebtoken::encode(
                &Header::new(alg),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            assert_eq!(
                t.verify_access(&token, t0()),
                Err(TokenError::Invalid),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", tokens());
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        let bytes = format!("{:?}", SECRET.to_vec());
        assert!(!shown.contains(&bytes[1..20]), "{shown}");
    }
}
