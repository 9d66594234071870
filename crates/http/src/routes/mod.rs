//! The routes. Each handler parses and validates its input into domain
//! values, calls one use case and returns a DTO.

mod attachments;
mod auth;
mod changes;
mod messages;
mod rooms;
mod users;

use actix_web::{HttpResponse, web};
use chrono::Utc;

use crate::dto::HealthDto;
use crate::{ApiDoc, ApiError, State};

pub use attachments::*;
pub use auth::*;
pub use changes::*;
pub use messages::*;
pub use rooms::*;
pub use users::*;

/// Routes outside `/api/v1`.
pub fn service(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(crate::metrics::metrics));
}

/// Routes under `/api/v1`.
pub fn api(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi))
        .route("/ws", web::get().to(crate::ws::gateway))
        .route("/auth/register", web::post().to(register))
        .route("/auth/login", web::post().to(login))
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/users/me", web::get().to(me))
        .route("/users/me", web::patch().to(update_me))
        .route("/users/me/rooms", web::get().to(my_rooms))
        .route("/users/me/blocks", web::get().to(blocks))
        .route("/users", web::get().to(search_users))
        .route("/users/{id}", web::get().to(get_user))
        .route("/users/{id}/block", web::put().to(block))
        .route("/users/{id}/block", web::delete().to(unblock))
        .route("/rooms", web::post().to(create_room))
        .route("/rooms", web::get().to(directory))
        .route("/dms", web::post().to(open_direct))
        .route("/rooms/{id}", web::get().to(get_room))
        .route("/rooms/{id}", web::patch().to(update_room))
        .route("/rooms/{id}", web::delete().to(delete_room))
        .route("/rooms/{id}/join", web::post().to(join_room))
        .route("/rooms/{id}/leave", web::post().to(leave_room))
        .route("/rooms/{id}/members", web::get().to(list_members))
        .route("/rooms/{id}/members", web::post().to(add_member))
        .route(
            "/rooms/{id}/members/{user_id}",
            web::delete().to(kick_member),
        )
        .route(
            "/rooms/{id}/members/{user_id}/role",
            web::put().to(set_role),
        )
        .route("/rooms/{id}/bans", web::post().to(ban_user))
        .route("/rooms/{id}/bans/{user_id}", web::delete().to(unban_user))
        .route("/rooms/{id}/messages", web::post().to(send_message))
        .route("/rooms/{id}/messages", web::get().to(history))
        .route("/rooms/{id}/changes", web::get().to(room_changes))
        .route("/rooms/{id}/read", web::post().to(mark_read))
        .route("/rooms/{id}/receipts", web::get().to(receipts))
        .route("/messages/{id}", web::patch().to(edit_message))
        .route("/messages/{id}", web::delete().to(delete_message))
        .route(
            "/messages/{id}/reactions/{emoji}",
            web::put().to(add_reaction),
        )
        .route(
            "/messages/{id}/reactions/{emoji}",
            web::delete().to(remove_reaction),
        )
        .route("/search/messages", web::get().to(search_messages))
        .route("/attachments", web::post().to(upload))
        .route("/attachments/{id}", web::get().to(download))
        .route("/attachments/{id}", web::head().to(download_head));
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, body = HealthDto)))]
pub async fn health() -> web::Json<HealthDto> {
    web::Json(HealthDto {
        status: "OK".to_owned(),
        timestamp: Utc::now(),
    })
}

/// The store and the event bus answer.
#[utoipa::path(get, path = "/ready", tag = "service",
    responses((status = 200, body = crate::dto::ReadyDto), (status = 503, body = crate::error::ErrorBody)))]
pub async fn ready(state: web::Data<State>) -> HttpResponse {
    for r in &state.readiness {
        if !r.check().await {
            return HttpResponse::ServiceUnavailable().json(crate::error::ErrorBody {
                error: "A dependency is not answering".to_owned(),
                code: "unavailable".to_owned(),
                fields: None,
                retry_after: None,
            });
        }
    }
    HttpResponse::Ok().json(crate::dto::ReadyDto {
        status: "OK".to_owned(),
        timestamp: Utc::now(),
        bus: state
            .bus
            .as_ref()
            .map(|b| if b.bus().connected { "up" } else { "down" }.to_owned()),
    })
}

/// This document.
pub async fn openapi() -> HttpResponse {
    use utoipa::OpenApi as _;
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// Anything no route matches.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::not_found())
}

/// A UUID path parameter.
pub(crate) fn path_id(name: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    crate::extract::uuid(name, raw)
}
