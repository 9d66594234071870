//! Accounts and sessions.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_app::NewAccount;
use chat_domain::{DisplayName, Email, Login, Password, Username};

use crate::dto::{LoginRequest, RefreshRequest, RegisterRequest, TokenDto, UserDto};
use crate::error::ErrorBody;
use crate::extract::{Auth, Body, Fields};
use crate::{ApiError, State};

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserDto),
        (status = 400, description = "`bad_json` or `validation`", body = ErrorBody),
        (status = 409, description = "`username_taken` or `email_taken`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn register(
    state: web::Data<State>,
    req: HttpRequest,
    body: Body<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.auth(&req).await?;
    let r = body.0;
    let mut f = Fields::default();
    let username = f.check("username", Username::parse(&r.username));
    let email = f.check("email", Email::parse(&r.email));
    let password = f.check("password", Password::parse(&r.password));
    let display_name = match r.display_name.as_deref() {
        None => None,
        Some(d) => f.check("display_name", DisplayName::parse(d)),
    };
    f.finish()?;
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        return Err(ApiError::field("body", "invalid"));
    };
    let profile = state
        .app
        .accounts
        .register(NewAccount {
            username,
            email,
            password,
            display_name,
        })
        .await?;
    Ok(HttpResponse::Created().json(UserDto::from(profile)))
}

/// Log in with a username or an email, and a password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenDto, headers(("Cache-Control" = String, description = "`no-store`: tokens are never cached"))),
        (status = 400, body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: the same answer for a wrong name or password", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn login(
    state: web::Data<State>,
    req: HttpRequest,
    body: Body<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.auth(&req).await?;
    let r = body.0;
    let login = match (r.username, r.email) {
        (Some(u), _) if !u.trim().is_empty() => Login::Username(u.trim().to_owned()),
        (_, Some(e)) if !e.trim().is_empty() => Login::Email(e.trim().to_owned()),
        _ => {
            return Err(ApiError::field(
                "username",
                "a username or an email is required",
            ));
        }
    };
    let tokens = match state
        .app
        .accounts
        .login(&login, &Password::presented(&r.password))
        .await
    {
        Ok(tokens) => tokens,
        Err(e) => {
            if matches!(e, chat_app::AppError::InvalidCredentials) {
                // For the operator watching for guessing: who was tried,
                // from where. Never the password.
                let client = state
                    .limits
                    .client_ip(&req)
                    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                // At most 64 characters, quoted and escaped (`?`): the name
                // is the client's input, and must not forge log lines.
                let account: String = match &login {
                    Login::Username(name) | Login::Email(name) => name.chars().take(64).collect(),
                };
                tracing::warn!(%client, account = ?account, "failed login");
            }
            return Err(e.into());
        }
    };
    Ok(token_answer(tokens.into()))
}

/// Tokens, never to be kept by a cache on the way (RFC 6749 §5.1).
fn token_answer(tokens: TokenDto) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(tokens)
}

/// Trade a refresh token for a new pair. Each refresh token is good once;
/// presenting a used one revokes the whole session. The access token it
/// replaces stays good until it expires.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenDto, headers(("Cache-Control" = String, description = "`no-store`: tokens are never cached"))), (status = 401, body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many attempts from this address; `Retry-After` says when to try again", body = ErrorBody)))]
pub async fn refresh(
    state: web::Data<State>,
    req: HttpRequest,
    body: Body<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.auth(&req).await?;
    let tokens = state.app.accounts.refresh(&body.0.refresh_token).await?;
    Ok(token_answer(tokens.into()))
}

/// End this session: its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(state: web::Data<State>, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.app.accounts.logout(auth.0).await?;
    Ok(HttpResponse::NoContent().finish())
}
