//! Starting a server and talking to it.

use std::collections::HashMap;
use std::time::Duration;

use chat_server::{Application, Settings};
use chat_store_postgres::testing::TestDb;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Which store the server under test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    Memory,
    Postgres,
}

/// A running server.
pub struct Server {
    pub base: String,
    pub port: u16,
    http: reqwest::Client,
    /// Stops the server as SIGTERM does (`None` for a server in another process).
    pub shutdown: Option<chat_server::Shutdown>,
    /// The server's task: it ends when the server has stopped.
    pub running: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: Option<TestDb>,
}

pub const PASSWORD: &str = "password123";

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

impl Server {
    pub async fn start(store: Store) -> Self {
        Self::start_with(store, &[]).await
    }

    pub async fn start_with(store: Store, extra: &[(&str, &str)]) -> Self {
        let db = match store {
            Store::Memory => None,
            Store::Postgres => Some(TestDb::create().await),
        };
        let mut env: HashMap<String, String> = [
            ("PORT", "0"),
            ("JWT_SECRET", "an-end-to-end-test-secret-0123456789"),
            ("CHAT__AUTH__BCRYPT_COST", "4"),
            ("CHAT__SERVER__WORKERS", "2"),
            // Scenarios send and sign up faster than people do; the rate
            // limits have scenarios of their own.
            ("CHAT__LIMITS__AUTH_PER_MINUTE", "0"),
            ("CHAT__LIMITS__MESSAGES_PER_MINUTE", "0"),
            ("CHAT__LIMITS__UPLOADS_PER_MINUTE", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(db) = &db {
            env.insert("DATABASE_URL".into(), db.url().to_owned());
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let settings = Settings::load_from(&dir, &env).unwrap();
        let app = Application::build(&settings).await.unwrap();
        let port = app.port();
        let shutdown = app.shutdown_handle();
        let running = tokio::spawn(app.run());
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            running: Some(running),
            _db: db,
        }
    }

    /// A server someone else started, on this port.
    pub fn at_port(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            http: reqwest::Client::new(),
            shutdown: None,
            running: None,
            _db: None,
        }
    }

    /// A REST call; the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    pub async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, Some(token), body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Registers and logs in a user.
    pub async fn user(&self, name: &str) -> User {
        let (s, u) = self
            .call(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, 201, "{u}");
        let token = self.login(name).await;
        User {
            id: u["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            token,
        }
    }

    /// A new session for an existing user.
    pub async fn login(&self, name: &str) -> String {
        let (s, t) = self
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(s, 200, "{t}");
        t["token"].as_str().unwrap().to_owned()
    }

    pub async fn room(&self, owner: &User, kind: &str) -> String {
        let r = self
            .ok(
                "POST",
                "/api/v1/rooms",
                &owner.token,
                Some(json!({"name": "room", "kind": kind})),
            )
            .await;
        r["id"].as_str().unwrap().to_owned()
    }

    pub async fn join(&self, who: &User, room: &str) -> Value {
        self.ok(
            "POST",
            &format!("/api/v1/rooms/{room}/join"),
            &who.token,
            None,
        )
        .await
    }

    pub async fn send(&self, who: &User, room: &str, text: &str) -> Value {
        self.ok(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            &who.token,
            Some(json!({"content": text})),
        )
        .await
    }

    /// Opens a WebSocket with the token in the query (as browsers do) and
    /// reads its `hello`.
    pub async fn connect(&self, token: &str) -> Client {
        let url = format!("ws://127.0.0.1:{}/api/v1/ws?token={token}", self.port);
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut c = Client { ws };
        let hello = c.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        c
    }

    /// As [`Server::connect`], over a socket with a small fixed receive
    /// buffer (no autotuning), for a client meant to fall behind.
    pub async fn connect_small_buffer(&self, token: &str) -> Client {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let tcp = sock
            .connect(([127, 0, 0, 1], self.port).into())
            .await
            .unwrap();
        let url = format!("ws://127.0.0.1:{}/api/v1/ws?token={token}", self.port);
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
        let mut c = Client { ws };
        let hello = c.next().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        c
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Client {
    pub async fn send(&mut self, kind: &str, payload: Value, reference: Option<&str>) {
        let mut frame = json!({"type": kind, "payload": payload});
        if let Some(r) = reference {
            frame["ref"] = json!(r);
        }
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next JSON frame, within [`WAIT`].
    pub async fn next(&mut self) -> Value {
        self.try_next(WAIT).await.expect("a frame within the wait")
    }

    /// The next JSON frame within `wait`, if any.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg.ok()? {
                Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others (presence, typing...).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// Every frame that arrives within [`QUIET`].
    pub async fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(f) = self.try_next(QUIET).await {
            out.push(f);
        }
        out
    }

    /// Reads until the server closes the socket; the close code.
    pub async fn closed(&mut self) -> Ended {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("the socket did not close"),
                Ok(None) | Ok(Some(Err(_))) => return Ended::Dropped,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

/// Runs the scenario on both stores: `both!(name, |store| async move {...})`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                ($body)(Store::Memory).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(Store::Postgres).await
            }
        }
    };
}
pub(crate) use both;
