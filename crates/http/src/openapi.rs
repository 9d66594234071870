//! The OpenAPI document, generated from the handlers' annotations and the
//! DTOs, served at `/api/v1/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::dto::*;
use crate::error::ErrorBody;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chat API",
        version = "1",
        description = "The public contract of the chat backend. Errors always have the body \
            `{\"error\", \"code\"}` (plus `fields` for `validation`). Lists take `limit` (1–100, \
            default 50) and an opaque `cursor`, and answer `{items, next_cursor}`; message history \
            pages by per-room `seq`. Private and direct rooms answer 404 to non-members on every \
            endpoint; a public room answers 403 `not_a_member` where membership is needed."
    ),
    paths(
        routes::health, routes::ready,
        routes::register, routes::login, routes::refresh, routes::logout,
        routes::me, routes::update_me, routes::search_users, routes::get_user,
        routes::block, routes::unblock, routes::blocks,
        routes::create_room, routes::open_direct, routes::directory, routes::my_rooms,
        routes::get_room, routes::update_room, routes::delete_room, routes::join_room, routes::leave_room,
        routes::list_members, routes::add_member, routes::kick_member, routes::set_role,
        routes::ban_user, routes::unban_user,
        routes::send_message, routes::history, routes::mark_read,
        routes::edit_message, routes::delete_message, routes::add_reaction, routes::remove_reaction,
        routes::receipts, routes::search_messages,
        routes::upload, routes::download, routes::download_head,
        routes::room_changes,
    ),
    components(schemas(
        ErrorBody, UserDto, PublicUserDto, TokenDto, RoomDto, MyRoomDto, MemberDto, MessageDto,
        SenderDto, ReactionDto, AttachmentDto, HistoryDto, HealthDto, ReadyDto, RoomKindDto, RoleDto, MessageKindDto,
        ChangesDto, EditMessageRequest, ReceiptDto, SearchHitDto, RoomRefDto, routes::UploadForm,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Health and readiness"),
        (name = "auth", description = "Accounts and sessions"),
        (name = "users", description = "Profiles, search and blocks"),
        (name = "rooms", description = "Rooms and direct rooms"),
        (name = "members", description = "Membership, roles and moderation"),
        (name = "messages", description = "Messages, history, edits, deletes, reactions, markers, receipts and search"),
        (name = "attachments", description = "File uploads and downloads"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
