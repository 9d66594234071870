//! The WebSocket gateway, `GET /api/v1/ws`: authenticated before the
//! upgrade, then one task per connection with one `select!` over the
//! client's frames, the connection's bounded outbound queue (fed by the
//! [`Hub`]), the hub's request to close, and the heartbeat. Client frames
//! call the same use cases as REST; events come from the event bus through
//! the hub. The task is the only writer of its socket.

mod frames;
mod hub;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use chat_app::AuthContext;
use chat_domain::RoomId;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesOrdered, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

pub use hub::{CloseWhy, Hub, HubStats};

use crate::dto::{MessageDto, RoomDto, SendMessageRequest, UserDto};
use crate::extract::{bearer, from_value, parse_json};
use crate::{ApiError, State};

/// The largest frame a client may send (1009 beyond).
pub const MAX_FRAME: usize = 64 * 1024;
/// How often the server pings.
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// A connection silent this long is closed.
pub const SILENCE: Duration = Duration::from_secs(60);
/// How long a close frame may wait behind a client that does not read.
pub const CLOSE_WAIT: Duration = Duration::from_secs(10);
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
    let (res, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "validation",
            e.to_string(),
        )
    })?;
    let stream = stream
        .max_frame_size(MAX_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME);
    let hello = frames::frame(
        "hello",
        serde_json::json!({"user": UserDto::from(me), "session_id": auth.session_id.0}),
        None,
    );
    actix_web::rt::spawn(Connection::new(state.into_inner(), auth, session).run(stream, hello));
    Ok(res)
}

struct Connection {
    state: Arc<State>,
    auth: AuthContext,
    session: Session,
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
    fn new(state: Arc<State>, auth: AuthContext, session: Session) -> Self {
        Self {
            state,
            auth,
            session,
        }
    }

    async fn run(mut self, mut stream: AggregatedMessageStream, hello: ByteString) {
        let hub = self.state.hub.clone();
        let user = self.auth.user_id;
        let (out, mut queue) = mpsc::channel(self.state.settings.ws_queue);
        let closer = Arc::new(hub::Closer::default());
        let id = hub.next_id();
        let first = hub.connect(hub::Conn {
            id,
            user,
            session: self.auth.session_id,
            out,
            closer: closer.clone(),
        });
        let end = self
            .serve(&mut stream, &mut queue, &closer, hello, first)
            .await;
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
            // Behind a client that does not read, the close frame waits its
            // turn; past CLOSE_WAIT the connection is simply dropped.
            let close = self.session.clone().close(reason);
            let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
        }
        if hub.disconnect(user, id)
            && let Err(e) = self.state.app.live.offline(user).await
        {
            tracing::warn!(error = %e, "could not record going offline");
        }
    }

    async fn serve(
        &mut self,
        stream: &mut AggregatedMessageStream,
        queue: &mut mpsc::Receiver<ByteString>,
        closer: &hub::Closer,
        hello: ByteString,
        first: bool,
    ) -> End {
        let user = self.auth.user_id;
        // The hub knows the user's rooms before the client sees `hello`, so
        // every event after `hello` reaches it.
        match self.state.app.rooms.room_ids_of(user).await {
            Ok(rooms) => self.state.hub.set_rooms(user, rooms),
            Err(e) => {
                tracing::warn!(error = %e, "could not read a user's rooms");
                return End::Close(CloseCode::Error, "try again");
            }
        }
        if let Err(end) = self.write(closer, hello).await {
            return end;
        }
        if first && let Err(e) = self.state.app.live.online(user).await {
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
                frame = queue.recv() => {
                    let Some(frame) = frame else { return End::Gone };
                    if let Err(end) = self.write(closer, frame).await {
                        return end;
                    }
                    // Whatever else is waiting goes out now, without another turn of the loop.
                    while let Ok(frame) = queue.try_recv() {
                        if let Err(end) = self.write(closer, frame).await {
                            return end;
                        }
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
                        if let Err(end) = self.take(closer, &bytes, &mut sends).await {
                            return end;
                        }
                        continue;
                    }
                    match msg {
                        Some(Ok(AggregatedMessage::Text(_) | AggregatedMessage::Binary(_))) => {}
                        Some(Ok(AggregatedMessage::Ping(p))) => {
                            if self.session.pong(&p).await.is_err() {
                                return End::Gone;
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
                    if self.session.ping(b"").await.is_err() {
                        return End::Gone;
                    }
                }
            }
        }
    }

    /// Takes one client frame. A `message:send` joins the sends in flight
    /// (its store call starts now, in the order frames came); any other
    /// frame first waits for those to be answered, so that it never
    /// overtakes a send (a `read` of a message just sent, say), and is then
    /// answered here.
    async fn take(
        &mut self,
        closer: &hub::Closer,
        bytes: &[u8],
        sends: &mut FuturesOrdered<LocalBoxFuture<'static, ByteString>>,
    ) -> Result<(), End> {
        let frame: frames::In = match parse_json(bytes) {
            Ok(f) => f,
            Err(e) => return self.write(closer, frames::error(&e, None)).await,
        };
        if frame.kind == "message:send" {
            let state = self.state.clone();
            let me = self.auth.user_id;
            // The rate limit is asked here, one frame after the other (with
            // several nodes it is a round trip to Redis), so that the sends
            // still reach the store in the order they came.
            let limited = state.limits.message(me).await;
            let mut send: LocalBoxFuture<'static, ByteString> = Box::pin(async move {
                let reference = frame.reference.as_deref();
                let sent = match limited {
                    Ok(()) => send_frame(&state, me, &frame).await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok((kind, payload)) => frames::frame(kind, payload, reference),
                    Err(e) => frames::error(&e, reference),
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
        match self.handle(frame).await {
            Some(reply) => self.write(closer, reply).await,
            None => Ok(()),
        }
    }

    /// Writes one frame; gives up at once if the hub asks to close meanwhile
    /// (a write waits while the client does not read).
    async fn write(&mut self, closer: &hub::Closer, frame: ByteString) -> Result<(), End> {
        tokio::select! {
            biased;
            why = closer.closed() => Err(End::Close(why.code(), why.reason())),
            sent = self.session.text(frame) => sent.map_err(|_| End::Gone),
        }
    }

    /// Answers one client frame: `Some(reply)`, or `None` for frames that
    /// have none. A bad frame gets an `error`; the connection stays.
    async fn handle(&self, frame: frames::In) -> Option<ByteString> {
        let reference = frame.reference.as_deref();
        match self.dispatch(&frame).await {
            Ok(reply) => reply.map(|(kind, payload)| frames::frame(kind, payload, reference)),
            Err(e) => Some(frames::error(&e, reference)),
        }
    }

    async fn dispatch(
        &self,
        frame: &frames::In,
    ) -> Result<Option<(&'static str, serde_json::Value)>, ApiError> {
        let app = &self.state.app;
        let me = self.auth.user_id;
        let payload = || frame.payload.clone();
        match frame.kind.as_str() {
            "message:send" => {
                self.state.limits.message(me).await?;
                send_frame(&self.state, me, frame).await.map(Some)
            }
            "typing" => {
                let r: frames::RoomRef = from_value(payload())?;
                app.live.typing(me, RoomId(r.room_id)).await?;
                Ok(None)
            }
            "read" => {
                let r: frames::SeqRef = from_value(payload())?;
                app.messages
                    .mark_read(me, RoomId(r.room_id), seq(r.seq)?)
                    .await?;
                Ok(None)
            }
            "delivered" => {
                let r: frames::SeqRef = from_value(payload())?;
                app.messages
                    .mark_delivered(me, RoomId(r.room_id), seq(r.seq)?)
                    .await?;
                Ok(None)
            }
            "room:join" => {
                let r: frames::RoomRef = from_value(payload())?;
                let room = app.rooms.join(me, RoomId(r.room_id)).await?;
                Ok(Some((
                    "ack",
                    serde_json::json!({"room": RoomDto::from(room)}),
                )))
            }
            "ping" => Ok(Some(("pong", serde_json::json!({})))),
            other => Err(ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "unknown_type",
                format!("Unknown frame type {other:?}"),
            )),
        }
    }
}

/// A `message:send` frame, its rate limit already taken: the `ack` with
/// the message, or the error.
async fn send_frame(
    state: &State,
    me: chat_domain::UserId,
    frame: &frames::In,
) -> Result<(&'static str, serde_json::Value), ApiError> {
    #[derive(Deserialize)]
    struct Send {
        room_id: uuid::Uuid,
        #[serde(flatten)]
        message: SendMessageRequest,
    }
    let send: Send = from_value(frame.payload.clone())?;
    let draft = crate::routes::parse_draft(send.message)?;
    let sent = state
        .app
        .messages
        .send(me, RoomId(send.room_id), draft)
        .await?;
    if sent.created {
        state.metrics.message_persisted();
    }
    Ok((
        "ack",
        serde_json::json!({"message": MessageDto::from(sent.message)}),
    ))
}

fn seq(n: i64) -> Result<u64, ApiError> {
    u64::try_from(n).map_err(|_| ApiError::field("seq", "must be a non-negative integer"))
}
