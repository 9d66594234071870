//! Rooms, direct rooms, membership and moderation.

use actix_web::{HttpResponse, web};
use chat_app::{CreateRoom, RoomPatch};
use chat_domain::{RoomDescription, RoomId, RoomName, UserId};

use super::path_id;
use crate::dto::{
    AssignableRole, CreateRoomRequest, DirectRequest, MemberDto, MyRoomDto, NewRoomKind, PageDto,
    RoleRequest, RoomDto, UpdateRoomRequest, UserRef,
};
use crate::error::ErrorBody;
use crate::extract::{Auth, Body, Fields, PageQuery, SearchQuery, page, search_text};
use crate::{ApiError, State};

fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    path_id("id", raw).map(RoomId)
}

/// The `{id}` and `{user_id}` of a member path.
fn member_path(p: &(String, String)) -> Result<(RoomId, UserId), ApiError> {
    let mut f = Fields::default();
    let room = f.check(
        "id",
        path_id("id", &p.0)
            .map(RoomId)
            .map_err(|_| "must be a UUID"),
    );
    let user = f.check(
        "user_id",
        path_id("user_id", &p.1)
            .map(UserId)
            .map_err(|_| "must be a UUID"),
    );
    f.finish()?;
    room.zip(user)
        .ok_or_else(|| ApiError::field("id", "must be a UUID"))
}

/// Create a public or private room; you become its owner and `member_ids`
/// join as members. A new room is at version 1 with `last_seq` 0.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    request_body = CreateRoomRequest,
    responses((status = 201, body = RoomDto), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create_room(
    state: web::Data<State>,
    auth: Auth,
    body: Body<CreateRoomRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let mut f = Fields::default();
    let name = f.check("name", RoomName::parse(&r.name));
    let description = f.check(
        "description",
        RoomDescription::parse(r.description.as_deref().unwrap_or("")),
    );
    f.finish()?;
    let (Some(name), Some(description)) = (name, description) else {
        return Err(ApiError::field("name", "invalid"));
    };
    let room = state
        .app
        .rooms
        .create(
            auth.user(),
            CreateRoom {
                name,
                description,
                private: r.kind == Some(NewRoomKind::Private),
                member_ids: r
                    .member_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(UserId)
                    .collect(),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(RoomDto::from(room)))
}

/// Open the direct room with a user: 201 the first time, 200 with the same
/// room on every later call, from either side. Whichever of you had left is
/// added back. A direct room with yourself is allowed (notes to self).
#[utoipa::path(post, path = "/api/v1/dms", tag = "rooms", security(("bearer" = [])),
    request_body = DirectRequest,
    responses((status = 201, body = RoomDto), (status = 200, body = RoomDto),
        (status = 403, description = "`blocked`", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn open_direct(
    state: web::Data<State>,
    auth: Auth,
    body: Body<DirectRequest>,
) -> Result<HttpResponse, ApiError> {
    let dm = state
        .app
        .rooms
        .open_direct(auth.user(), UserId(body.0.user_id))
        .await?;
    let mut res = if dm.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(RoomDto::from(dm.room)))
}

/// The directory of public rooms, newest first; `q` is a case-insensitive
/// substring of the name.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])), params(SearchQuery),
    responses((status = 200, body = PageDto<RoomDto>), (status = 400, body = ErrorBody)))]
pub async fn directory(
    state: web::Data<State>,
    _auth: Auth,
    q: web::Query<SearchQuery>,
) -> Result<web::Json<PageDto<RoomDto>>, ApiError> {
    let text = search_text(q.q.as_deref())?;
    let req = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let rooms = state.app.rooms.directory(text, &req).await?;
    Ok(web::Json(PageDto::from_page(rooms, Into::into)))
}

/// Every room you are in, newest activity first, with your role, unread
/// count and the last message.
#[utoipa::path(get, path = "/api/v1/users/me/rooms", tag = "rooms", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = PageDto<MyRoomDto>), (status = 400, body = ErrorBody)))]
pub async fn my_rooms(
    state: web::Data<State>,
    auth: Auth,
    q: web::Query<PageQuery>,
) -> Result<web::Json<PageDto<MyRoomDto>>, ApiError> {
    let req = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let rooms = state.app.rooms.mine(auth.user(), &req).await?;
    Ok(web::Json(PageDto::from_page(rooms, Into::into)))
}

/// A room. Private and direct rooms answer 404 to non-members.
#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RoomDto), (status = 404, body = ErrorBody)))]
pub async fn get_room(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<web::Json<RoomDto>, ApiError> {
    let room = state.app.rooms.get(auth.user(), room_id(&id)?).await?;
    Ok(web::Json(room.into()))
}

/// Rename or re-describe a room: owner or admin.
#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = UpdateRoomRequest,
    responses((status = 200, body = RoomDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_room(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<UpdateRoomRequest>,
) -> Result<web::Json<RoomDto>, ApiError> {
    let id = room_id(&id)?;
    let r = body.0;
    let mut f = Fields::default();
    let name = match r.name.as_deref() {
        None => None,
        Some(n) => f.check("name", RoomName::parse(n)),
    };
    let description = match r.description.as_deref() {
        None => None,
        Some(d) => f.check("description", RoomDescription::parse(d)),
    };
    f.finish()?;
    let room = state
        .app
        .rooms
        .update(auth.user(), id, RoomPatch { name, description })
        .await?;
    Ok(web::Json(room.into()))
}

/// Delete a room and its messages: owner, or a global admin.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_room(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.app.rooms.delete(auth.user(), room_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Join a public room; joining twice is no error. Answers with the room at
/// its new version.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/join", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RoomDto), (status = 403, description = "`banned`", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn join_room(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<web::Json<RoomDto>, ApiError> {
    let room = state.app.rooms.join(auth.user(), room_id(&id)?).await?;
    Ok(web::Json(room.into()))
}

/// Leave a room. An owner hands over to the earliest admin, else the
/// earliest member; the last member out deletes the room.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/leave", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn leave_room(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.app.rooms.leave(auth.user(), room_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The members, in the order they joined. Any signed-in user may read a
/// public room's list.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/members", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = PageDto<MemberDto>), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<PageDto<MemberDto>>, ApiError> {
    let id = room_id(&id)?;
    let req = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let members = state.app.rooms.members(auth.user(), id, &req).await?;
    Ok(web::Json(PageDto::from_page(members, |m| state.member(m))))
}

/// Add a user as a member: owner or admin.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/members", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = UserRef,
    responses((status = 201, body = MemberDto),
        (status = 403, description = "`forbidden` (also in a direct room) or `banned`", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "`already_member`", body = ErrorBody)))]
pub async fn add_member(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<UserRef>,
) -> Result<HttpResponse, ApiError> {
    let id = room_id(&id)?;
    let m = state
        .app
        .rooms
        .add_member(auth.user(), id, UserId(body.0.user_id))
        .await?;
    Ok(HttpResponse::Created().json(state.member(m)))
}

/// Kick a member of lower role (an admin kicks members, the owner anyone
/// else). Writes a `system` message. 404 for a non-member.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn kick_member(
    state: web::Data<State>,
    auth: Auth,
    p: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room, user) = member_path(&p)?;
    state.app.rooms.kick(auth.user(), room, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make a member an admin or a member again: owner only, never its own role.
/// Writes a `system` message when the role changes.
#[utoipa::path(put, path = "/api/v1/rooms/{id}/members/{user_id}/role", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)), request_body = RoleRequest,
    responses((status = 200, body = MemberDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_role(
    state: web::Data<State>,
    auth: Auth,
    p: web::Path<(String, String)>,
    body: Body<RoleRequest>,
) -> Result<web::Json<MemberDto>, ApiError> {
    let (room, user) = member_path(&p)?;
    let role = match body.0.role {
        AssignableRole::Admin => chat_domain::Role::Admin,
        AssignableRole::Member => chat_domain::Role::Member,
    };
    let m = state
        .app
        .rooms
        .set_role(auth.user(), room, user, role)
        .await?;
    Ok(web::Json(state.member(m)))
}

/// Ban a user: removes them if they are in, and keeps them out until
/// unbanned. A non-member may be banned ahead. Writes a `system` message.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/bans", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = UserRef,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn ban_user(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<UserRef>,
) -> Result<HttpResponse, ApiError> {
    let id = room_id(&id)?;
    state
        .app
        .rooms
        .ban(auth.user(), id, UserId(body.0.user_id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a ban (404 if there is none). Writes a `system` message.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/bans/{user_id}", tag = "members", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unban_user(
    state: web::Data<State>,
    auth: Auth,
    p: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (room, user) = member_path(&p)?;
    state.app.rooms.unban(auth.user(), room, user).await?;
    Ok(HttpResponse::NoContent().finish())
}
