//! Messages, history and read markers.

use actix_web::{HttpResponse, web};
use chat_app::SendMessage;
use chat_domain::{
    ClientMsgId, HistoryQuery, MessageContent, MessageId, MessageKind, PageLimit, RoomId,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::path_id;
use crate::dto::{HistoryDto, MessageDto, ReadRequest, SendMessageRequest};
use crate::error::ErrorBody;
use crate::extract::{Auth, Body, Fields, page_limit};
use crate::{ApiError, State};

/// Send a message. With a `client_msg_id` you used in this room before, the
/// first message comes back with 200 and nothing is stored.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path)), request_body = SendMessageRequest,
    responses((status = 201, body = MessageDto), (status = 200, description = "a replayed `client_msg_id`", body = MessageDto),
        (status = 400, body = ErrorBody), (status = 403, description = "`not_a_member` (public room) or `blocked` (direct room)", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn send_message(
    state: web::Data<State>,
    auth: Auth,
    id: web::Path<String>,
    body: Body<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let room = RoomId(path_id("id", &id)?);
    let draft = parse_draft(body.0)?;
    let sent = state.app.messages.send(auth.user(), room, draft).await?;
    let mut res = if sent.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(MessageDto::from(sent.message)))
}

/// Validates a send request into a draft (shared with the WebSocket gateway).
pub(crate) fn parse_draft(r: SendMessageRequest) -> Result<SendMessage, ApiError> {
    let mut f = Fields::default();
    let has_attachment = r.attachment_id.is_some();
    let content = f.check(
        "content",
        MessageContent::parse(r.content.as_deref().unwrap_or(""), has_attachment),
    );
    let client_msg_id = match r.client_msg_id.as_deref() {
        None => None,
        Some(k) => f.check("client_msg_id", ClientMsgId::parse(k)),
    };
    f.finish()?;
    let content = content.ok_or_else(|| ApiError::field("content", "invalid"))?;
    Ok(SendMessage {
        kind: r.kind.map_or(MessageKind::Text, Into::into),
        content,
        attachment: r.attachment_id.map(Into::into),
        reply_to: r.reply_to_id.map(MessageId),
        client_msg_id,
    })
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
