//! Sending a message, one way for REST (`POST /rooms/{id}/messages`) and
//! the WebSocket gateway (`message:send`): the request checked into a
//! draft, then the send itself. The rate limit is each caller's to take
//! first: the gateway takes it in frame order before a send goes in flight.

use chat_app::{SendMessage, Sent};
use chat_domain::{ClientMsgId, MessageContent, MessageId, RoomId, UserId};

use crate::dto::SendMessageRequest;
use crate::extract::Fields;
use crate::{ApiError, State};

/// Checks a send request into a draft: every field's problem at once.
pub(crate) fn draft(r: SendMessageRequest) -> Result<SendMessage, ApiError> {
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
        kind: r.kind.map(Into::into),
        content,
        attachment: r.attachment_id.map(Into::into),
        reply_to: r.reply_to_id.map(MessageId),
        client_msg_id,
    })
}

/// Sends the draft (its rate limit already taken) and counts a stored one.
pub(crate) async fn send(
    state: &State,
    me: UserId,
    room: RoomId,
    draft: SendMessage,
) -> Result<Sent, ApiError> {
    let sent = state.app.messages.send(me, room, draft).await?;
    if sent.created {
        state.metrics.message_persisted();
    }
    Ok(sent)
}
