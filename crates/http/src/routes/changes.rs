//! Resuming after a disconnect: what changed in a room after a version.

use actix_web::web;
use chat_app::Rooms;
use chat_domain::RoomId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::path_id;
use crate::dto::{ChangesDto, RoomDto};
use crate::error::ErrorBody;
use crate::extract::{Auth, Fields};
use crate::{ApiError, State};

/// `since` and `limit` of a `changes` read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// The room version the client is up to date with: the `version` of its
    /// last answer, or of the last event it applied; 0 for everything. At
    /// most the room's current version.
    #[param(value_type = u64, required = true, minimum = 0)]
    pub since: Option<String>,
    /// At most this many messages, 1–1000; default 100. Members and departures
    /// always come whole.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// Everything in the room that changed after version `since`, as it is now:
/// the messages sent, edited, deleted or reacted to (deleted ones included),
/// the members who joined or changed role, the users who left, and the room.
/// Messages come in seq order, at most `limit` of them, those changed
/// earliest first; with `has_more`, ask again with `since` set to the
/// answer's `version`. A client that applies the answer is up to date with
/// `version`. Members only.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/changes", tag = "rooms", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ChangesParams),
    responses((status = 200, body = ChangesDto),
        (status = 400, description = "`since` missing or past the room's version, or `limit` out of range", body = ErrorBody),
        (status = 403, description = "`not_a_member` (public room)", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn room_changes(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    q: web::Query<ChangesParams>,
) -> Result<web::Json<ChangesDto>, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let (since, limit) = changes_query(&q)?;
    let c = state
        .app
        .rooms
        .changes(auth.user(), room, since, limit)
        .await?;
    Ok(web::Json(ChangesDto {
        version: c.version,
        room: RoomDto::from(c.room),
        messages: c.messages.into_iter().map(Into::into).collect(),
        members: c.members.into_iter().map(|m| state.member(m)).collect(),
        left_member_ids: c.left_member_ids.into_iter().map(|u| u.0).collect(),
        has_more: c.has_more,
    }))
}

/// `since` (required, a non-negative integer) and `limit` (1–1000, default 100).
fn changes_query(q: &ChangesParams) -> Result<(u64, u32), ApiError> {
    let mut f = Fields::default();
    let since = match q.since.as_deref() {
        None => {
            f.bad("since", "is required");
            None
        }
        Some(s) => f.check(
            "since",
            s.parse::<u64>()
                .map_err(|_| "must be a non-negative integer"),
        ),
    };
    let limit = match q.limit.as_deref() {
        None => Some(Rooms::DEFAULT_CHANGES),
        Some(s) => f.check(
            "limit",
            s.parse::<u32>()
                .ok()
                .filter(|n| (1..=Rooms::MAX_CHANGES).contains(n))
                .ok_or_else(|| format!("must be an integer from 1 to {}", Rooms::MAX_CHANGES)),
        ),
    };
    f.finish()?;
    match (since, limit) {
        (Some(since), Some(limit)) => Ok((since, limit)),
        _ => Err(ApiError::field("since", "is required")),
    }
}
