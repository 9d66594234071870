//! `ApiError`: every failure as the contract's body,
//! `{"error": "...", "code": "...", "fields"?: {...}}`.

use std::collections::BTreeMap;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use chat_app::{AppError, Taken};
use chat_domain::rules::Denied;
use chat_ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"error": "Email already registered", "code": "email_taken"}))]
pub struct ErrorBody {
    /// Human-readable text; may change between versions.
    pub error: String,
    /// Stable machine code: `bad_json`, `validation`, `unauthorized`,
    /// `invalid_credentials`, `forbidden`, `not_a_member`, `banned`, `blocked`,
    /// `not_found`, `username_taken`, `email_taken`, `already_member`,
    /// `too_large`, `rate_limited`, `unavailable`, `internal`.
    pub code: String,
    /// With `validation`: each bad input (body field, query or path
    /// parameter) and what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// With `rate_limited`: seconds to wait before trying again (REST
    /// answers also carry it as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                code: code.to_owned(),
                fields: None,
                retry_after: None,
            },
        }
    }

    /// 400 `validation` naming each bad input.
    pub fn validation(fields: BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "validation",
            format!("Invalid input: {}", names.join(", ")),
        );
        e.body.fields = Some(fields);
        e
    }

    /// 400 `validation` for one input.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        Self::validation(BTreeMap::from([(name.to_owned(), problem.into())]))
    }

    pub fn bad_json(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_json", why)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing, invalid or expired token",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("Body over the limit of {limit} bytes"),
        )
    }

    /// 429 `rate_limited`: try again in `secs` seconds (at least 1).
    pub fn rate_limited(secs: u64) -> Self {
        let secs = secs.max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests; try again in {secs} s"),
        );
        e.body.retry_after = Some(secs);
        e
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
    }

    /// 503, with `retry_after` in the body too, so that a WebSocket
    /// client (which sees no header) knows when to try again.
    fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service temporarily unavailable, try again",
        );
        e.body.retry_after = Some(1);
        e
    }

    /// A query string that does not fit its parameters, naming the
    /// parameter where serde does (`duplicate field `limit``).
    pub fn query(e: &actix_web::error::QueryPayloadError) -> Self {
        let text = e.to_string();
        let name = text
            .split('`')
            .nth(1)
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or("query");
        Self::field(name, text.rsplit(": ").next().unwrap_or(&text))
    }

    pub fn code(&self) -> &str {
        &self.body.code
    }

    /// The body, as REST answers it and WebSocket `error` frames carry it.
    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.body.error, self.body.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        match self.status {
            StatusCode::UNAUTHORIZED => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                let secs = self.body.retry_after.unwrap_or(1);
                res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
            }
            _ => {}
        }
        res.json(&self.body)
    }
}

fn denied(d: Denied) -> ApiError {
    let (status, code, text) = match d {
        Denied::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
        Denied::NotAMember => (
            StatusCode::FORBIDDEN,
            "not_a_member",
            "You are not a member of this room",
        ),
        Denied::Forbidden => (
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do that",
        ),
        Denied::Banned => (
            StatusCode::FORBIDDEN,
            "banned",
            "The user is banned from this room",
        ),
        Denied::Blocked => (
            StatusCode::FORBIDDEN,
            "blocked",
            "One of you has blocked the other",
        ),
        Denied::AlreadyMember => (
            StatusCode::CONFLICT,
            "already_member",
            "The user is already a member",
        ),
    };
    ApiError::new(status, code, text)
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid { field, reason } => ApiError::field(field, reason),
            AppError::Denied(d) => denied(d),
            AppError::NotFound => ApiError::not_found(),
            AppError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid username, email or password",
            ),
            AppError::Unauthorized => ApiError::unauthorized(),
            AppError::Taken(Taken::Email) => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "Email already registered",
            ),
            AppError::Taken(Taken::Username) => ApiError::new(
                StatusCode::CONFLICT,
                "username_taken",
                "Username already taken",
            ),
            AppError::Busy => ApiError::unavailable(),
            AppError::Store(StoreError::InvalidCursor) => {
                ApiError::field("cursor", "is not a cursor this server gave out")
            }
            AppError::Store(StoreError::NotFound) => ApiError::not_found(),
            AppError::Store(ref s @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %chain(s), "store unavailable");
                ApiError::unavailable()
            }
            AppError::Store(ref s) => {
                tracing::error!(error = %chain(s), "store failure");
                ApiError::internal()
            }
            AppError::Crypto(ref c) => {
                tracing::error!(error = %chain(c), "crypto failure");
                ApiError::internal()
            }
        }
    }
}

/// An error with its `source()` chain, for the log (never for the client).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
