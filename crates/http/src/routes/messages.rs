//! Messages, history and read markers.

use actix_web::{HttpResponse, web};
use chat_domain::{HistoryQuery, MessageId, PageLimit, RoomId};
use serde::Deserialize;
use utoipa::IntoParams;

use super::path_id;
use crate::dto::{
    EditMessageRequest, HistoryDto, MessageDto, PageDto, ReadRequest, ReceiptDto, SearchHitDto,
    SendMessageRequest,
};
use crate::error::ErrorBody;
use crate::extract::{Auth, Body, Fields, PageQuery, page, page_limit, search_text};
use crate::{ApiError, State};

/// Send a message. With a `client_msg_id` you used in this room before, the
/// first message comes back with 200 and nothing is stored.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = SendMessageRequest,
    responses((status = 201, body = MessageDto), (status = 200, description = "a replayed `client_msg_id`", body = MessageDto),
        (status = 400, body = ErrorBody), (status = 403, description = "`not_a_member` (public room) or `blocked` (direct room)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many sends by you; `Retry-After` says when to try again", body = ErrorBody),
        (status = 503, description = "`unavailable`: the database cannot take the send now (its write queue is full, or it is down); nothing was stored unless an earlier try was acknowledged. Retry after `Retry-After` seconds with the same `client_msg_id`", body = ErrorBody)))]
pub async fn send_message(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let draft = crate::send::draft(body.0)?;
    state.limits.message(auth.user()).await?;
    let sent = crate::send::send(&state, auth.user(), room, draft).await?;
    let mut res = if sent.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(MessageDto::from(sent.message)))
}

/// `before`, `after` and `limit` of a history read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The `limit` messages just before this seq.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub before: Option<String>,
    /// The `limit` messages just after this seq (catch-up). Not with `before`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub after: Option<String>,
    /// Page size, 1–100; default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// Read history, always ascending by seq. Without `before` or `after`, the
/// newest `limit` messages; both at once is 400. Members only (join a public
/// room first).
#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), HistoryParams),
    responses((status = 200, body = HistoryDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    q: web::Query<HistoryParams>,
) -> Result<web::Json<HistoryDto>, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let query = history_query(&q)?;
    let h = state.app.messages.history(auth.user(), room, query).await?;
    Ok(web::Json(HistoryDto {
        messages: h.messages.into_iter().map(Into::into).collect(),
        has_more: h.has_more,
    }))
}

fn history_query(q: &HistoryParams) -> Result<HistoryQuery, ApiError> {
    const SEQ: &str = "must be a non-negative integer";
    let mut f = Fields::default();
    let limit = f.check("limit", page_limit(q.limit.as_deref()));
    let before = q
        .before
        .as_deref()
        .and_then(|s| f.check("before", s.parse::<u64>().map_err(|_| SEQ)));
    let after = q
        .after
        .as_deref()
        .and_then(|s| f.check("after", s.parse::<u64>().map_err(|_| SEQ)));
    if q.before.is_some() && q.after.is_some() {
        f.bad("before", "give before or after, not both");
        f.bad("after", "give before or after, not both");
    }
    f.finish()?;
    let limit = limit.unwrap_or(PageLimit::DEFAULT);
    Ok(match (before, after) {
        (Some(b), _) => HistoryQuery::Before(b, limit),
        (_, Some(a)) => HistoryQuery::After(a, limit),
        _ => HistoryQuery::Latest(limit),
    })
}

/// Move your read marker forward. An older seq is accepted and ignored; one
/// past `last_seq` is 400. Reading implies delivered.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/read", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = ReadRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mark_read(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<ReadRequest>,
) -> Result<HttpResponse, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let seq = u64::try_from(body.0.seq)
        .map_err(|_| ApiError::field("seq", "must be a non-negative integer"))?;
    state.app.messages.mark_read(auth.user(), room, seq).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Edit one of your own messages: replaces `content` and sets `edited_at`.
/// Members see `message:updated`. A deleted message cannot be edited (404);
/// nobody edits a `system` message or another's (403).
#[utoipa::path(patch, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = EditMessageRequest,
    responses((status = 200, body = MessageDto), (status = 400, body = ErrorBody),
        (status = 403, description = "not the sender (`forbidden`), `not_a_member` or `blocked`", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn edit_message(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<EditMessageRequest>,
) -> Result<web::Json<MessageDto>, ApiError> {
    let id = MessageId(path_id("id", &id)?);
    let message = state
        .app
        .messages
        .edit(auth.user(), id, &body.0.content)
        .await?;
    Ok(web::Json(message.into()))
}

/// Delete a message, softly: it keeps its `id` and `seq`, loses its content,
/// attachment and reactions. Its sender, an owner or admin of the room, or a
/// global admin may. Members see `message:deleted`. Deleting it again is 204
/// and changes nothing.
#[utoipa::path(delete, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_message(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = MessageId(path_id("id", &id)?);
    state.app.messages.delete(auth.user(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add your reaction. `emoji` is 1–64 bytes with no whitespace (a glyph,
/// percent-encoded in the path, or a `:short_name:`). Adding it twice
/// changes nothing. Members see `reaction:updated`. A deleted message takes
/// no reactions (404).
#[utoipa::path(put, path = "/api/v1/messages/{id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("emoji" = String, Path, example = "%F0%9F%91%8D")),
    responses((status = 204), (status = 400, description = "a bad `emoji`", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn add_reaction(
    state: web::Data<State>,
    auth: Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    react(&state, &auth, &path, true).await
}

/// Remove your reaction; removing one you have not made changes nothing.
#[utoipa::path(delete, path = "/api/v1/messages/{id}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), ("emoji" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_reaction(
    state: web::Data<State>,
    auth: Auth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    react(&state, &auth, &path, false).await
}

async fn react(
    state: &State,
    auth: &Auth,
    path: &(String, String),
    add: bool,
) -> Result<HttpResponse, ApiError> {
    let id = MessageId(path_id("id", &path.0)?);
    state
        .app
        .messages
        .react(auth.user(), id, &path.1, add)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every member's read and delivered markers (0 where none yet), in the
/// order they joined. Members only.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/receipts", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = PageDto<ReceiptDto>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn receipts(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<web::Json<PageDto<ReceiptDto>>, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let page = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let receipts = state
        .app
        .messages
        .receipts(auth.user(), room, &page)
        .await?;
    Ok(web::Json(PageDto::from_page(receipts, Into::into)))
}

/// `q`, `room_id`, `limit` and `cursor` of a message search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageSearchParams {
    /// Plain words, all of which must appear in a message as whole words
    /// (case and punctuation ignored; no stemming, no prefixes; at most 16
    /// words count). Required.
    #[param(example = "lunch friday")]
    pub q: Option<String>,
    /// Only this room. A room you may not read answers as it would
    /// elsewhere (404, or 403 `not_a_member` for a public room).
    #[param(value_type = Option<uuid::Uuid>)]
    pub room_id: Option<String>,
    /// Page size, 1–100; default 50.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Full-text search over the messages of the rooms you are in, best match
/// first (ties: newest first). Never a deleted message, never a room you
/// are not in.
#[utoipa::path(get, path = "/api/v1/search/messages", tag = "messages", security(("bearer" = [])),
    params(MessageSearchParams),
    responses((status = 200, body = PageDto<SearchHitDto>), (status = 400, description = "no word in `q`", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn search_messages(
    state: web::Data<State>,
    auth: Auth,
    q: web::Query<MessageSearchParams>,
) -> Result<web::Json<PageDto<SearchHitDto>>, ApiError> {
    let text = search_text(q.q.as_deref())?;
    let room = match q.room_id.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => Some(RoomId(path_id("room_id", r)?)),
    };
    let page = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let hits = state
        .app
        .messages
        .search(auth.user(), text, room, &page)
        .await?;
    Ok(web::Json(PageDto::from_page(hits, Into::into)))
}
