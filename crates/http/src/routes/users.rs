//! Profiles, user search and blocks.

use actix_web::{HttpResponse, web};
use chat_domain::{AttachmentId, DisplayName, UserId};
use chat_ports::ProfilePatch;

use super::path_id;
use crate::dto::{PageDto, PublicUserDto, UpdateMeRequest, UserDto};
use crate::error::ErrorBody;
use crate::extract::{Auth, Body, Fields, PageQuery, SearchQuery, page, search_text};
use crate::{ApiError, State};

/// Yourself.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody)))]
pub async fn me(state: web::Data<State>, auth: Auth) -> Result<web::Json<UserDto>, ApiError> {
    Ok(web::Json(state.app.users.me(auth.user()).await?.into()))
}

/// Change your display name or avatar. An avatar is an attachment you
/// uploaded (PNG, JPEG, GIF or WebP); `null` removes it. Anyone signed in may
/// download a user's current avatar.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses((status = 200, body = UserDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update_me(
    state: web::Data<State>,
    auth: Auth,
    body: Body<UpdateMeRequest>,
) -> Result<web::Json<UserDto>, ApiError> {
    let r = body.0;
    let mut f = Fields::default();
    let display_name = match r.display_name.as_deref() {
        None => None,
        Some(d) => f.check("display_name", DisplayName::parse(d)),
    };
    let avatar = match r.avatar_attachment_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(id)) => f
            .check(
                "avatar_attachment_id",
                uuid::Uuid::parse_str(&id).map_err(|_| "must be a UUID"),
            )
            .map(|id| Some(AttachmentId(id))),
    };
    f.finish()?;
    let patch = ProfilePatch {
        display_name,
        avatar,
    };
    Ok(web::Json(
        state.app.users.update_me(auth.user(), &patch).await?.into(),
    ))
}

/// Search users: a case-insensitive prefix of the username or display name.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = PageDto<PublicUserDto>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn search_users(
    state: web::Data<State>,
    _auth: Auth,
    q: web::Query<SearchQuery>,
) -> Result<web::Json<PageDto<PublicUserDto>>, ApiError> {
    let text = search_text(q.q.as_deref())?;
    let req = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let found = state.app.users.search(text, &req).await?;
    Ok(web::Json(PageDto::from_page(found, |u| {
        state.public_user(u)
    })))
}

/// Anyone, by id.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PublicUserDto), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    state: web::Data<State>,
    _auth: Auth,
    id: web::Path<String>,
) -> Result<web::Json<PublicUserDto>, ApiError> {
    let id = UserId(path_id("id", &id)?);
    Ok(web::Json(state.public_user(state.app.users.get(id).await?)))
}

/// Block a user: neither of you can open or write in a direct room with the
/// other until you unblock. Blocking twice is no error.
#[utoipa::path(put, path = "/api/v1/users/{id}/block", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 400, description = "blocking yourself", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn block(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(path_id("id", &id)?);
    state.app.users.block(auth.user(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a block; no error if there was none.
#[utoipa::path(delete, path = "/api/v1/users/{id}/block", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unblock(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(path_id("id", &id)?);
    state.app.users.unblock(auth.user(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The users you block, most recent first.
#[utoipa::path(get, path = "/api/v1/users/me/blocks", tag = "users", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = PageDto<PublicUserDto>), (status = 400, body = ErrorBody)))]
pub async fn blocks(
    state: web::Data<State>,
    auth: Auth,
    q: web::Query<PageQuery>,
) -> Result<web::Json<PageDto<PublicUserDto>>, ApiError> {
    let req = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let found = state.app.users.blocks(auth.user(), &req).await?;
    Ok(web::Json(PageDto::from_page(found, |u| {
        state.public_user(u)
    })))
}
