//! The gateway protocol as API.md describes it: opening a connection, waiting for
//! `hello`, and the frames the bench reads and writes.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::target::Target;

pub type Ws = WebSocketStream<TcpStream>;

/// A frame from the server, parsed only as far as the bench needs. Strings borrow from
/// the frame text when they hold no escapes.
#[derive(Debug, Deserialize)]
pub struct InFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(rename = "ref", default, borrow)]
    pub reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub payload: Option<InPayload<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct InPayload<'a> {
    /// `message:new`, `message:updated`, `ack` of `message:send`.
    #[serde(default, borrow)]
    pub message: Option<InMessage<'a>>,
    /// `error`.
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct InMessage<'a> {
    #[serde(default, borrow)]
    pub room_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
}

/// Just the type, for frames whose payload has a shape [`InFrame`] does not expect.
#[derive(Debug, Deserialize)]
pub struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
}

#[derive(Serialize)]
struct OutFrame<'a, P> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: P,
    #[serde(rename = "ref")]
    reference: &'a str,
}

#[derive(Serialize)]
struct SendPayload<'a> {
    room_id: &'a str,
    content: &'a str,
    client_msg_id: &'a str,
}

/// A `message:send` frame; `ref` doubles as the idempotency key `client_msg_id`.
pub fn message_send(
    room_id: &str,
    content: &str,
    reference: &str,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&OutFrame {
        kind: "message:send",
        payload: SendPayload {
            room_id,
            content,
            client_msg_id: reference,
        },
        reference,
    })
}

/// A short, countable reason for a connection that could not be opened.
pub fn handshake_failure(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("http_{}", resp.status().as_u16()),
        tungstenite::Error::Io(io) => format!("io_{:?}", io.kind()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "closed".into(),
        tungstenite::Error::Protocol(_) => "protocol".into(),
        _ => "handshake".into(),
    }
}

/// A short, countable reason for a connection that went away.
pub fn read_failure(e: &tungstenite::Error) -> String {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Io(io) => format!("io_{:?}", io.kind()),
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "closed".into(),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "reset_without_close".into()
        }
        tungstenite::Error::Protocol(_) => "protocol_error".into(),
        tungstenite::Error::Capacity(_) => "capacity".into(),
        _ => "error".into(),
    }
}

/// The key a close frame is counted under: its code, or `no_code`.
pub fn close_key(frame: Option<&tungstenite::protocol::CloseFrame>) -> String {
    frame.map_or_else(|| "no_code".to_owned(), |f| u16::from(f.code).to_string())
}

/// Opens `GET /api/v1/ws?token=...` and waits for `hello`. Any failure comes back as a
/// short reason to count (`http_401`, `timeout`, `io_ConnectionRefused`, ...).
pub async fn open(
    target: &Target,
    token: &str,
    read_buffer: usize,
    timeout: Duration,
) -> Result<Ws, String> {
    let attempt = async {
        let socket = if target.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| format!("socket_{:?}", e.kind()))?;
        let tcp = socket
            .connect(target.addr)
            .await
            .map_err(|e| format!("tcp_{:?}", e.kind()))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("tcp_{:?}", e.kind()))?;
        let config = WebSocketConfig::default()
            .read_buffer_size(read_buffer)
            .write_buffer_size(0);
        let (mut ws, _resp) =
            client_async_with_config(target.ws_with_token(token), tcp, Some(config))
                .await
                .map_err(|e| handshake_failure(&e))?;
        // API.md: `hello {user, session_id}` is the first frame.
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return match serde_json::from_str::<TypeOnly>(text.as_str()) {
                        Ok(f) if f.kind == "hello" => Ok(ws),
                        Ok(f) => Err(format!("first_frame_{}", f.kind)),
                        Err(_) => Err("first_frame_not_json".into()),
                    };
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(format!("closed_before_hello_{}", close_key(frame.as_ref())));
                }
                Some(Ok(_)) => {} // ping/pong before hello: keep waiting
                Some(Err(e)) => return Err(read_failure(&e)),
                None => return Err("eof_before_hello".into()),
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn parses_server_frames() -> anyhow::Result<()> {
        let f: InFrame = serde_json::from_str(
            r#"{"type":"message:new","payload":{"message":{"id":"0190","room_id":"r1","seq":7,
               "sender":{"id":"u","username":"a","display_name":null},"kind":"text",
               "content":"bench:x:5","reactions":[],"created_at":"2025-01-01T00:00:00Z",
               "deleted":false},"version":9}}"#,
        )?;
        assert_eq!(f.kind, "message:new");
        let m = f
            .payload
            .and_then(|p| p.message)
            .ok_or_else(|| anyhow::anyhow!("no message"))?;
        assert_eq!(m.room_id.as_deref(), Some("r1"));
        assert_eq!(m.seq, Some(7));
        assert_eq!(m.content.as_deref(), Some("bench:x:5"));

        let f: InFrame = serde_json::from_str(
            r#"{"type":"error","payload":{"code":"not_a_member","error":"Not a member"},"ref":"r-1-2"}"#,
        )?;
        assert_eq!(f.reference.as_deref(), Some("r-1-2"));
        assert_eq!(
            f.payload.and_then(|p| p.code).as_deref(),
            Some("not_a_member")
        );

        let f: InFrame = serde_json::from_str(r#"{"type":"pong"}"#)?;
        assert!(f.payload.is_none());

        // A payload of a shape the bench does not model still yields its type.
        let raw = r#"{"type":"weird","payload":{"message":5}}"#;
        assert!(serde_json::from_str::<InFrame>(raw).is_err());
        assert_eq!(serde_json::from_str::<TypeOnly>(raw)?.kind, "weird");
        Ok(())
    }

    #[test]
    fn builds_message_send() -> anyhow::Result<()> {
        let s = message_send("room-1", "bench:r:1 \"q\"", "r-0-1")?;
        let v: serde_json::Value = serde_json::from_str(&s)?;
        assert_eq!(v["type"], "message:send");
        assert_eq!(v["ref"], "r-0-1");
        assert_eq!(v["payload"]["room_id"], "room-1");
        assert_eq!(v["payload"]["client_msg_id"], "r-0-1");
        assert_eq!(v["payload"]["content"], "bench:r:1 \"q\"");
        Ok(())
    }

    /// A stand-in gateway on a free loopback port: `script` decides each connection's fate.
    pub(crate) async fn fake_gateway<F, Fut>(script: F) -> anyhow::Result<Target>
    where
        F: Fn(usize, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            let mut i = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(script(i, tcp));
                i += 1;
            }
        });
        Target::resolve(&format!("http://127.0.0.1:{port}")).await
    }

    #[tokio::test]
    async fn open_waits_for_hello_and_names_failures() -> anyhow::Result<()> {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
        let target = fake_gateway(|i, tcp| async move {
            if i == 2 {
                #[expect(
                    clippy::result_large_err,
                    reason = "the callback type is tungstenite's"
                )]
                let reject = |_: &Request, _: Response| -> Result<Response, ErrorResponse> {
                    let mut r = ErrorResponse::new(None);
                    *r.status_mut() = tungstenite::http::StatusCode::UNAUTHORIZED;
                    Err(r)
                };
                let _ = tokio_tungstenite::accept_hdr_async(tcp, reject).await;
                return;
            }
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let first = if i == 0 {
                r#"{"type":"hello","payload":{"user":{},"session_id":"s"}}"#
            } else {
                r#"{"type":"pong","payload":{}}"#
            };
            let _ = ws.send(Message::text(first)).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await?;
        let t = Duration::from_secs(5);
        assert!(open(&target, "tok", 4096, t).await.is_ok());
        assert_eq!(
            open(&target, "tok", 4096, t).await.err().as_deref(),
            Some("first_frame_pong")
        );
        assert_eq!(
            open(&target, "tok", 4096, t).await.err().as_deref(),
            Some("http_401")
        );
        Ok(())
    }
}
