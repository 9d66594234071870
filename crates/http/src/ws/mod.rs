//! The WebSocket gateway, `GET /api/v1/ws`: authenticated before the
//! upgrade, then one task per connection with one `select!` over the
//! client's frames, the hub's request to close, and the heartbeat. Client
//! frames call the same use cases as REST. Events never pass through that
//! task: the [`Hub`] queues their frames for the connection's response body
//! ([`outbound`]), which writes whatever is queued in one go; the task's
//! own replies go through the same body, ahead of the events.

mod frames;
mod hub;
pub mod outbound;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodyStream, BoxBody};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason};
use bytestring::ByteString;
use chat_app::AuthContext;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::Deserialize;

pub use frames::ClientFrame;
pub use hub::{CloseWhy, Hub, HubStats, Refill};

use crate::dto::{MessageDto, RoomDto, UserDto};
use crate::extract::{bearer, parse_json};
use crate::{ApiError, State};

/// The largest frame a client may send (1009 beyond).
pub const MAX_FRAME: usize = 64 * 1024;
/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A connection silent this long is closed.
pub const SILENCE: Duration = Duration::from_secs(60);
/// How long a close frame may wait behind a client that does not read.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Replies (acks, errors, pongs) a connection's task may have waiting to be
/// written; past it the task reads no further frames until the client reads.
const SAID_QUEUE: usize = MAX_SENDS_IN_FLIGHT + 16;
/// `message:send` frames of one connection in flight at once. Sends are
/// handed to the store in the order they came (so one client's messages to
/// a room keep their order) and committed together; their `ack`s go out in
/// that order too. Past this many the connection reads no further frames
/// until one is answered.
pub const MAX_SENDS_IN_FLIGHT: usize = 64;

/// `?token=` for browsers, which cannot set headers on a WebSocket.
#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The upgrade. A missing, bad, expired or revoked token is 401 before it.
pub async fn gateway(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<State>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req)
        .map(str::to_owned)
        .or_else(|| query.into_inner().token)
        .ok_or_else(ApiError::unauthorized)?;
    let auth = state.app.accounts.authenticate(&token).await?;
    let me = state.app.users.me(auth.user_id).await?;
    let (res, _session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "validation",
            e.to_string(),
        )
    })?;
    // The response body is ours: the hub's frames go straight into it.
    let (outbox, say, body) = outbound::queues(state.settings.ws_queue_bytes, SAID_QUEUE);
    let res = res.map_body(|_, theirs| BoxBody::new(BodyStream::new(body.keeping(theirs))));
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let hello = frames::frame(
        "hello",
        serde_json::json!({"user": UserDto::from(me), "session_id": auth.session_id.0}),
        None,
    );
    actix_web::rt::spawn(Connection::new(state.into_inner(), auth, say).run(stream, hello, outbox));
    Ok(res)
}

struct Connection {
    state: Arc<State>,
    auth: AuthContext,
    /// What the task says to the client, written ahead of the events.
    say: outbound::Mouth,
}

/// How a connection ended, from the server's side.
enum End {
    Close(CloseCode, &'static str),
    /// The client sent a Close: answered at once with its code (RFC 6455
    /// §5.5.1), whatever was still queued for it.
    Answer(Option<CloseReason>),
    /// The client closed, or the socket is gone: nothing left to say.
    Gone,
}

impl Connection {
    fn new(state: Arc<State>, auth: AuthContext, say: outbound::Mouth) -> Self {
        Self { state, auth, say }
    }

    async fn run(
        mut self,
        mut stream: AggregatedMessageStream,
        hello: ByteString,
        out: outbound::Outbox,
    ) {
        let hub = self.state.hub.clone();
        let user = self.auth.user_id;
        let closer = Arc::new(hub::Closer::default());
        let id = hub.next_id();
        let first = hub.connect(hub::Conn {
            id,
            user,
            session: self.auth.session_id,
            out,
            closer: closer.clone(),
        });
        let end = self.serve(&mut stream, &closer, hello, first).await;
        let reason = match end {
            End::Close(code, why) => Some(Some(CloseReason {
                code,
                description: Some(why.to_owned()),
            })),
            End::Answer(theirs) => Some(theirs.map(|r| CloseReason {
                code: r.code,
                description: None,
            })),
            End::Gone => None,
        };
        if let Some(reason) = reason {
            // The Close goes ahead of any events still queued; behind a
            // client that does not read, past CLOSE_WAIT the connection is
            // simply dropped.
            let close = self.say.say(outbound::Say::Close(reason));
            let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
        }
        if hub.disconnect(user, id)
            && let Err(e) = Box::pin(self.state.app.live.offline(user)).await
        {
            tracing::warn!(error = %e, "could not record going offline");
        }
    }

    async fn serve(
        &mut self,
        stream: &mut AggregatedMessageStream,
        closer: &hub::Closer,
        hello: ByteString,
        first: bool,
    ) -> End {
        let user = self.auth.user_id;
        // The hub knows the user's rooms before the client sees `hello`, so
        // every event after `hello` reaches it.
        match Box::pin(self.state.app.rooms.room_ids_of(user)).await {
            Ok(rooms) => self.state.hub.set_rooms(user, rooms),
            Err(e) => {
                tracing::warn!(error = %e, "could not read a user's rooms");
                return End::Close(CloseCode::Error, "try again");
            }
        }
        if let Err(end) = self.write(closer, hello).await {
            return end;
        }
        if first && let Err(e) = Box::pin(self.state.app.live.online(user)).await {
            tracing::warn!(error = %e, "could not announce presence");
        }
        let mut heartbeat = tokio::time::interval(PING_EVERY);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        let mut sends: FuturesOrdered<LocalBoxFuture<'static, ByteString>> = FuturesOrdered::new();
        loop {
            tokio::select! {
                biased;
                why = closer.closed() => return End::Close(why.code(), why.reason()),
                Some(reply) = sends.next(), if !sends.is_empty() => {
                    if let Err(end) = self.write(closer, reply).await {
                        return end;
                    }
                }
                msg = stream.recv(), if sends.len() < MAX_SENDS_IN_FLIGHT => {
                    heard = Instant::now();
                    let bytes = match &msg {
                        Some(Ok(AggregatedMessage::Text(text))) => Some(text.as_bytes().clone()),
                        Some(Ok(AggregatedMessage::Binary(bytes))) => Some(bytes.clone()),
                        _ => None,
                    };
                    if let Some(bytes) = bytes {
                        // Boxed: the use cases' futures are large, and an idle
                        // connection's task should not carry their room.
                        if let Err(end) = Box::pin(self.take(closer, &bytes, &mut sends)).await {
                            return end;
                        }
                        continue;
                    }
                    match msg {
                        Some(Ok(AggregatedMessage::Text(_) | AggregatedMessage::Binary(_))) => {}
                        Some(Ok(AggregatedMessage::Ping(p))) => {
                            if let Err(end) = self.tell(closer, outbound::Say::Pong(p)).await {
                                return end;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Ok(AggregatedMessage::Close(reason))) => return End::Answer(reason),
                        None => return End::Gone,
                        Some(Err(actix_ws::ProtocolError::Overflow)) => {
                            return End::Close(CloseCode::Size, "frame over 64 KiB");
                        }
                        Some(Err(_)) => return End::Close(CloseCode::Protocol, "protocol error"),
                    }
                }
                _ = heartbeat.tick() => {
                    if heard.elapsed() >= SILENCE {
                        return End::Close(CloseCode::Normal, "silent for 60 s");
                    }
                    if let Err(end) = self.tell(closer, outbound::Say::Ping).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Takes one client frame. A `message:send` joins the sends in flight
    /// (its store call starts now, in the order frames came); any other
    /// frame first waits for those to be answered, so that it never
    /// overtakes a send (a `read` of a message just sent, say), and is then
    /// answered here. A bad frame gets an `error`; the connection stays.
    async fn take(
        &mut self,
        closer: &hub::Closer,
        bytes: &[u8],
        sends: &mut FuturesOrdered<LocalBoxFuture<'static, ByteString>>,
    ) -> Result<(), End> {
        let envelope: frames::In = match parse_json(bytes) {
            Ok(f) => f,
            Err(e) => return self.write(closer, frames::error(&e, None)).await,
        };
        let reference = envelope.reference;
        let frame = match ClientFrame::read(&envelope.kind, envelope.payload) {
            Ok(frame) => frame,
            Err(e) => {
                return self
                    .write(closer, frames::error(&e, reference.as_deref()))
                    .await;
            }
        };
        if let ClientFrame::Send { room, draft } = frame {
            let state = self.state.clone();
            let me = self.auth.user_id;
            // The rate limit is asked here, one frame after the other (with
            // several nodes it is a round trip to Redis), so that the sends
            // still reach the store in the order they came.
            let limited = state.limits.message(me).await;
            let mut send: LocalBoxFuture<'static, ByteString> = Box::pin(async move {
                let acked = match limited {
                    Ok(()) => ack_send(&state, me, room, draft).await,
                    Err(e) => Err(e),
                };
                match acked {
                    Ok((kind, payload)) => frames::frame(kind, payload, reference.as_deref()),
                    Err(e) => frames::error(&e, reference.as_deref()),
                }
            });
            // Polled once here, so that the send reaches the store's queue
            // before the next frame is read: the order frames came in.
            let waker = futures_util::task::noop_waker();
            if let std::task::Poll::Ready(reply) = send
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
            {
                sends.push_back(Box::pin(std::future::ready(reply)));
            } else {
                sends.push_back(send);
            }
            return Ok(());
        }
        while let Some(reply) = sends.next().await {
            self.write(closer, reply).await?;
        }
        let reply = match self.answer(frame).await {
            Ok(Some((kind, payload))) => frames::frame(kind, payload, reference.as_deref()),
            Ok(None) => return Ok(()),
            Err(e) => frames::error(&e, reference.as_deref()),
        };
        self.write(closer, reply).await
    }

    /// Writes one reply frame.
    async fn write(&mut self, closer: &hub::Closer, frame: ByteString) -> Result<(), End> {
        self.tell(closer, outbound::Say::Text(frame)).await
    }

    /// Hands something to say to the body; gives up at once if the hub asks
    /// to close meanwhile (the queue waits while the client does not read).
    async fn tell(&mut self, closer: &hub::Closer, say: outbound::Say) -> Result<(), End> {
        tokio::select! {
            biased;
            why = closer.closed() => Err(End::Close(why.code(), why.reason())),
            sent = self.say.say(say) => sent.map_err(|_| End::Gone),
        }
    }

    /// Answers a frame other than `message:send`: `Some((type, payload))`
    /// for those that have a reply.
    async fn answer(
        &self,
        frame: ClientFrame,
    ) -> Result<Option<(&'static str, serde_json::Value)>, ApiError> {
        let app = &self.state.app;
        let me = self.auth.user_id;
        match frame {
            ClientFrame::Send { room, draft } => {
                self.state.limits.message(me).await?;
                ack_send(&self.state, me, room, draft).await.map(Some)
            }
            ClientFrame::Typing { room } => {
                app.live.typing(me, room).await?;
                Ok(None)
            }
            ClientFrame::Read { room, seq } => {
                app.messages.mark_read(me, room, seq).await?;
                Ok(None)
            }
            ClientFrame::Delivered { room, seq } => {
                app.messages.mark_delivered(me, room, seq).await?;
                Ok(None)
            }
            ClientFrame::Join { room } => {
                let room = app.rooms.join(me, room).await?;
                Ok(Some((
                    "ack",
                    serde_json::json!({"room": RoomDto::from(room)}),
                )))
            }
            ClientFrame::Ping => Ok(Some(("pong", serde_json::json!({})))),
        }
    }
}

/// A send, its rate limit already taken: the `ack` with the message.
async fn ack_send(
    state: &State,
    me: chat_domain::UserId,
    room: chat_domain::RoomId,
    draft: chat_app::SendMessage,
) -> Result<(&'static str, serde_json::Value), ApiError> {
    let sent = crate::send::send(state, me, room, draft).await?;
    Ok((
        "ack",
        serde_json::json!({"message": MessageDto::from(sent.message)}),
    ))
}
