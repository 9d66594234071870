//! The harness: the real actix app in process on the memory store, request
//! helpers that answer `(StatusCode, serde_json::Value)`, and assertions on
//! the contract's shapes and error bodies.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use chat_auth::JwtTokens;
use chat_ports::fakes::{PlainHasher, RecordingBus};
use chat_ports::{Clock, PasswordHasher, SystemClock, V7Ids};
pub use serde_json::{Value, json};

pub const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes!!";
pub const PASSWORD: &str = "password123";

/// A whole answer, for the tests that look at headers or raw bytes.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
}

type Caller = Box<dyn Fn(TestRequest) -> Pin<Box<dyn Future<Output = Reply>>>>;

/// Puts a test double in front of the message repository.
pub type WrapMessages = fn(Arc<dyn chat_ports::MessageRepo>) -> Arc<dyn chat_ports::MessageRepo>;

/// How to build an app that differs from the default one.
pub struct Options {
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub secret: &'static [u8],
    pub readiness: Vec<Arc<dyn chat_http::Readiness>>,
    pub settings: chat_http::HttpSettings,
    pub limits: chat_http::LimitSettings,
    /// Wraps the message repository (a test double in front of the store).
    pub messages: Option<WrapMessages>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hasher: Arc::new(PlainHasher),
            clock: Arc::new(SystemClock),
            secret: SECRET,
            readiness: Vec::new(),
            settings: Default::default(),
            limits: Default::default(),
            messages: None,
        }
    }
}

/// The app under test.
pub struct Api {
    call: Caller,
    /// Keeps the store's backing (a per-test database) alive as long as the app.
    _store_guard: Box<dyn std::any::Any>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl Api {
    /// The app exactly as the brief wires it.
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(o: Options) -> Self {
        // The test binary's root says which store the suite runs on.
        let (mut stores, guard) = crate::fresh_stores().await;
        if let Some(wrap) = o.messages {
            stores.messages = wrap(stores.messages);
        }
        let bus = Arc::new(RecordingBus::default());
        let hub = chat_http::ws::Hub::start(chat_ports::EventBus::subscribe(&*bus), None);
        let state = chat_http::State {
            app: chat_app::App::new(chat_app::Deps {
                stores,
                blobs: Arc::new(chat_store_memory::MemoryBlobs::new()),
                hasher: o.hasher,
                tokens: Arc::new(JwtTokens::new(
                    o.secret,
                    chrono::Duration::minutes(15),
                    chrono::Duration::days(30),
                )),
                clock: o.clock,
                ids: Arc::new(V7Ids),
                events: bus,
                presence: std::sync::Arc::new(chat_ports::OneNode),
                admins: vec!["root".into()],
            }),
            settings: o.settings,
            readiness: o.readiness,
            hub,
            metrics: Default::default(),
            pool: None,
            bus: None,
            limits: Arc::new(chat_http::RateLimits::new(&o.limits)),
        };
        let svc = Rc::new(
            test::init_service(actix_web::App::new().configure(chat_http::configure(state))).await,
        );
        let call: Caller = Box::new(move |req: TestRequest| {
            let svc = Rc::clone(&svc);
            Box::pin(async move {
                let res = test::call_service(&*svc, req.to_request()).await;
                let status = res.status();
                let headers = res.headers().clone();
                let raw = test::read_body(res).await.to_vec();
                let body = if raw.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&raw).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&raw).into_owned())
                    })
                };
                Reply {
                    status,
                    headers,
                    raw,
                    body,
                }
            })
        });
        Self {
            call,
            _store_guard: guard,
        }
    }

    // ------------------------------------------------------------ raw requests

    /// Any request: `auth` is the whole `Authorization` header value.
    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = TestRequest::default().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.insert_header((header::AUTHORIZATION, a.to_owned()));
        }
        if let Some(b) = body {
            req = req
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(b);
        }
        (self.call)(req).await
    }

    /// A request with a bearer token (or none) and a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let bytes = body.map(|b| b.to_string().into_bytes());
        let r = self.request(method, uri, auth.as_deref(), bytes).await;
        (r.status, r.body)
    }

    /// A request whose body is exactly these bytes.
    /// Any request, as built by the test.
    pub async fn send(&self, req: TestRequest) -> Reply {
        (self.call)(req).await
    }

    pub async fn call_raw(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let r = self
            .request(method, uri, auth.as_deref(), Some(bytes.to_vec()))
            .await;
        (r.status, r.body)
    }

    pub async fn get(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(token), Some(&body)).await
    }

    /// A POST without a body (join, leave, logout).
    pub async fn post_empty(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(token), None).await
    }

    pub async fn patch(&self, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, uri, Some(token), Some(&body))
            .await
    }

    pub async fn put(&self, uri: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::PUT, uri, Some(token), body.as_ref())
            .await
    }

    pub async fn delete(&self, uri: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, uri, Some(token), None).await
    }

    /// A request without any token.
    pub async fn anon(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, uri, None, body.as_ref()).await
    }

    // ------------------------------------------------------------ accounts

    /// Registers `username` (email `<username>@example.com`, password
    /// [`PASSWORD`]) and returns the 201 body.
    pub async fn register(&self, username: &str) -> Value {
        let (s, b) = self
            .anon(
                Method::POST,
                "/api/v1/auth/register",
                Some(json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": PASSWORD,
                })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "register {username}: {b}");
        b
    }

    /// Logs in by username and returns the 200 body.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let (s, b) = self
            .anon(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "login {username}: {b}");
        b
    }

    /// Registers and logs in.
    pub async fn user(&self, username: &str) -> User {
        let reg = self.register(username).await;
        let login = self.login(username, PASSWORD).await;
        User {
            id: s(&reg["id"]),
            username: username.to_owned(),
            email: s(&reg["email"]),
            token: s(&login["token"]),
            refresh: s(&login["refresh_token"]),
        }
    }

    /// A fresh session of an existing user.
    pub async fn relogin(&self, u: &User) -> User {
        let login = self.login(&u.username, PASSWORD).await;
        User {
            token: s(&login["token"]),
            refresh: s(&login["refresh_token"]),
            ..u.clone()
        }
    }

    // ------------------------------------------------------------ rooms

    /// Creates a room from this body; asserts 201.
    pub async fn create_room(&self, owner: &User, body: Value) -> Value {
        let (st, b) = self.post("/api/v1/rooms", &owner.token, body).await;
        assert_eq!(st, StatusCode::CREATED, "create room: {b}");
        b
    }

    pub async fn public_room(&self, owner: &User, name: &str) -> String {
        s(&self.create_room(owner, json!({"name": name})).await["id"])
    }

    pub async fn private_room(&self, owner: &User, name: &str, members: &[&User]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        s(&self
            .create_room(
                owner,
                json!({"name": name, "kind": "private", "member_ids": ids}),
            )
            .await["id"])
    }

    /// The direct room of `a` and `b` (any status but an error).
    pub async fn dm(&self, a: &User, b: &User) -> String {
        let (st, body) = self
            .post("/api/v1/dms", &a.token, json!({"user_id": b.id}))
            .await;
        assert!(
            st == StatusCode::CREATED || st == StatusCode::OK,
            "dm: {st} {body}"
        );
        s(&body["id"])
    }

    /// `GET /rooms/{id}` as `u`; asserts 200.
    pub async fn room(&self, u: &User, room: &str) -> Value {
        let (st, b) = self.get(&format!("/api/v1/rooms/{room}"), &u.token).await;
        assert_eq!(st, StatusCode::OK, "get room: {b}");
        b
    }

    pub async fn version(&self, u: &User, room: &str) -> u64 {
        n(&self.room(u, room).await["version"])
    }

    pub async fn join(&self, u: &User, room: &str) -> Value {
        let (st, b) = self
            .post_empty(&format!("/api/v1/rooms/{room}/join"), &u.token)
            .await;
        assert_eq!(st, StatusCode::OK, "join: {b}");
        b
    }

    pub async fn leave(&self, u: &User, room: &str) {
        let (st, b) = self
            .post_empty(&format!("/api/v1/rooms/{room}/leave"), &u.token)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "leave: {b}");
    }

    pub async fn set_role(&self, by: &User, room: &str, target: &User, role: &str) {
        let (st, b) = self
            .put(
                &format!("/api/v1/rooms/{room}/members/{}/role", target.id),
                &by.token,
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "set role: {b}");
    }

    /// Every member of a room, as `u` sees them: `(user id, role)`.
    pub async fn roles(&self, u: &User, room: &str) -> Vec<(String, String)> {
        self.walk(&u.token, &format!("/api/v1/rooms/{room}/members"), 100)
            .await
            .iter()
            .map(|m| (s(&m["user"]["id"]), s(&m["role"])))
            .collect()
    }

    pub async fn role_of(&self, u: &User, room: &str, who: &User) -> Option<String> {
        self.roles(u, room)
            .await
            .into_iter()
            .find(|(id, _)| *id == who.id)
            .map(|(_, r)| r)
    }

    // ------------------------------------------------------------ messages

    /// Sends a text message; asserts 201.
    pub async fn say(&self, u: &User, room: &str, text: &str) -> Value {
        let (st, b) = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &u.token,
                json!({"content": text}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "send: {b}");
        b
    }

    /// `GET /rooms/{id}/messages?{query}`; asserts 200.
    pub async fn history(&self, u: &User, room: &str, query: &str) -> Value {
        let (st, b) = self
            .get(&format!("/api/v1/rooms/{room}/messages?{query}"), &u.token)
            .await;
        assert_eq!(st, StatusCode::OK, "history: {b}");
        b
    }

    /// The seqs of a history answer.
    pub fn seqs(history: &Value) -> Vec<u64> {
        arr(&history["messages"])
            .iter()
            .map(|m| n(&m["seq"]))
            .collect()
    }

    /// My entry in `GET /users/me/rooms` for this room.
    pub async fn my_room(&self, u: &User, room: &str) -> Option<Value> {
        self.walk(&u.token, "/api/v1/users/me/rooms", 100)
            .await
            .into_iter()
            .find(|r| r["id"] == room)
    }

    // ------------------------------------------------------------ pages

    /// Follows `next_cursor` from the first page to the last, with `limit`;
    /// checks every page's shape and size. `path` may carry a query already.
    pub async fn walk(&self, token: &str, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let uri = match &cursor {
                None => format!("{path}{sep}limit={limit}"),
                Some(c) => format!("{path}{sep}limit={limit}&cursor={}", pct(c)),
            };
            let (st, b) = self.get(&uri, token).await;
            assert_eq!(st, StatusCode::OK, "{uri}: {b}");
            assert_keys(&b, &["items", "next_cursor"]);
            let page = arr(&b["items"]);
            assert!(
                page.len() <= limit as usize,
                "{uri}: a page over the limit: {b}"
            );
            items.extend(page.iter().cloned());
            match &b["next_cursor"] {
                Value::Null => return items,
                Value::String(c) => {
                    assert!(!page.is_empty(), "{uri}: an empty page with a next_cursor");
                    cursor = Some(c.clone());
                }
                other => panic!("{uri}: next_cursor is {other}"),
            }
        }
        panic!("{path}: the cursor never ended");
    }
}

// ------------------------------------------------------------ value helpers

/// A JSON string, or a panic.
pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// A JSON array, or a panic.
pub fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// A JSON object, or a panic.
pub fn obj(v: &Value) -> &serde_json::Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
}

/// A JSON non-negative integer, or a panic.
pub fn n(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

/// Percent-encodes a query parameter value.
pub fn pct(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A syntactically fine id that names nothing.
pub fn unknown_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

// ------------------------------------------------------------ assertions

/// The object has exactly these keys.
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let got: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(got, want, "keys of {v}");
}

/// The object has at least these keys.
pub fn assert_has_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for k in keys {
        assert!(obj.contains_key(*k), "missing key {k} in {v}");
    }
}

/// A UUID string (v7, as the contract says).
pub fn assert_uuid(v: &Value) {
    let id = uuid::Uuid::parse_str(&s(v)).unwrap_or_else(|_| panic!("not a UUID: {v}"));
    assert_eq!(id.get_version_num(), 7, "not a v7 UUID: {v}");
}

/// An RFC 3339 timestamp in UTC.
pub fn assert_timestamp(v: &Value) {
    let t = chrono::DateTime::parse_from_rfc3339(&s(v))
        .unwrap_or_else(|_| panic!("not an RFC 3339 timestamp: {v}"));
    assert_eq!(t.offset().local_minus_utc(), 0, "not UTC: {v}");
}

/// An error answer: this status, the contract's body with this code.
#[track_caller]
pub fn assert_error(r: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (st, b) = r;
    assert_eq!(*st, status, "status of {b}");
    assert!(
        b["error"].as_str().is_some_and(|e| !e.is_empty()),
        "no error text in {b}"
    );
    assert_eq!(b["code"], code, "code of {b}");
    if code == "validation" {
        let fields = b["fields"]
            .as_object()
            .unwrap_or_else(|| panic!("validation without fields: {b}"));
        assert!(!fields.is_empty(), "validation with empty fields: {b}");
        for (k, why) in fields {
            assert!(
                why.as_str().is_some_and(|w| !w.is_empty()),
                "field {k} has no reason: {b}"
            );
        }
    }
}

/// A 400 `validation` naming (at least) each of these inputs in `fields`.
#[track_caller]
pub fn assert_fields(r: &(StatusCode, Value), fields: &[&str]) {
    assert_error(r, StatusCode::BAD_REQUEST, "validation");
    for f in fields {
        assert!(
            r.1["fields"].get(*f).is_some(),
            "fields do not name {f}: {}",
            r.1
        );
    }
}

/// A 400 `validation` naming only this input.
#[track_caller]
pub fn assert_only_field(r: &(StatusCode, Value), field: &str) {
    assert_fields(r, &[field]);
    let keys: Vec<&String> = obj(&r.1["fields"]).keys().collect();
    assert_eq!(keys, vec![field], "fields of {}", r.1);
}

#[track_caller]
pub fn assert_status(r: &(StatusCode, Value), status: StatusCode) {
    assert_eq!(r.0, status, "body: {}", r.1);
}

/// 401 `unauthorized`.
#[track_caller]
pub fn assert_unauthorized(r: &(StatusCode, Value)) {
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// 404 `not_found`.
#[track_caller]
pub fn assert_not_found(r: &(StatusCode, Value)) {
    assert_error(r, StatusCode::NOT_FOUND, "not_found");
}

/// No `email` key anywhere, and this address nowhere in the text.
#[track_caller]
pub fn assert_no_email(v: &Value, email: &str) {
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    assert_ne!(k, "email", "an email at {path}.{k}");
                    walk(x, &format!("{path}.{k}"));
                }
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            _ => {}
        }
    }
    walk(v, "");
    let text = v.to_string().to_lowercase();
    assert!(
        !text.contains(&email.to_lowercase()),
        "{email} appears in {v}"
    );
}

/// The `User` shape (yourself).
pub fn assert_user(v: &Value) {
    assert_keys(
        v,
        &[
            "id",
            "username",
            "email",
            "display_name",
            "avatar_url",
            "role",
            "created_at",
        ],
    );
    assert_uuid(&v["id"]);
    assert_timestamp(&v["created_at"]);
    assert!(v["role"] == "user" || v["role"] == "admin", "role of {v}");
    assert!(
        v["avatar_url"].is_null() || v["avatar_url"].is_string(),
        "{v}"
    );
}

/// The `PublicUser` shape (anyone else).
pub fn assert_public_user(v: &Value) {
    assert_keys(
        v,
        &[
            "id",
            "username",
            "display_name",
            "avatar_url",
            "presence",
            "last_seen_at",
        ],
    );
    assert_uuid(&v["id"]);
    assert!(
        v["presence"] == "online" || v["presence"] == "offline",
        "presence of {v}"
    );
    assert!(
        v["last_seen_at"].is_null() || v["last_seen_at"].is_string(),
        "{v}"
    );
}

pub const ROOM_KEYS: &[&str] = &[
    "id",
    "kind",
    "name",
    "description",
    "created_by",
    "created_at",
    "member_count",
    "last_seq",
    "version",
];

/// The `Room` shape.
pub fn assert_room(v: &Value) {
    assert_keys(v, ROOM_KEYS);
    assert_uuid(&v["id"]);
    assert_uuid(&v["created_by"]);
    assert_timestamp(&v["created_at"]);
    assert!(
        ["public", "private", "direct"].contains(&v["kind"].as_str().unwrap_or("")),
        "{v}"
    );
    n(&v["member_count"]);
    n(&v["last_seq"]);
    assert!(n(&v["version"]) >= 1, "{v}");
}

/// The `Room` shape of a list of your own rooms.
pub fn assert_my_room(v: &Value) {
    let mut keys = ROOM_KEYS.to_vec();
    keys.extend(["my_role", "unread_count", "last_message"]);
    assert_keys(v, &keys);
    assert!(
        ["member", "admin", "owner"].contains(&v["my_role"].as_str().unwrap_or("")),
        "{v}"
    );
    n(&v["unread_count"]);
    if !v["last_message"].is_null() {
        assert_message(&v["last_message"]);
    }
}

/// The member shape `{user: PublicUser, role, joined_at}`.
pub fn assert_member(v: &Value) {
    assert_keys(v, &["user", "role", "joined_at"]);
    assert_public_user(&v["user"]);
    assert!(
        ["member", "admin", "owner"].contains(&v["role"].as_str().unwrap_or("")),
        "{v}"
    );
    assert_timestamp(&v["joined_at"]);
}

/// The `Message` shape. Optional fields may be absent or `null`.
pub fn assert_message(v: &Value) {
    assert_has_keys(
        v,
        &[
            "id",
            "room_id",
            "seq",
            "sender",
            "kind",
            "content",
            "reactions",
            "created_at",
            "deleted",
        ],
    );
    let allowed: BTreeSet<&str> = [
        "id",
        "room_id",
        "seq",
        "sender",
        "kind",
        "content",
        "attachment",
        "reply_to_id",
        "reactions",
        "created_at",
        "edited_at",
        "deleted",
    ]
    .into_iter()
    .collect();
    for k in obj(v).keys() {
        assert!(allowed.contains(k.as_str()), "unexpected key {k} in {v}");
    }
    assert_uuid(&v["id"]);
    assert_uuid(&v["room_id"]);
    assert!(n(&v["seq"]) >= 1, "{v}");
    assert_keys(&v["sender"], &["id", "username", "display_name"]);
    assert!(
        ["text", "image", "video", "audio", "file", "system"]
            .contains(&v["kind"].as_str().unwrap_or("")),
        "{v}"
    );
    assert!(v["content"].is_string(), "{v}");
    assert!(v["reactions"].is_array(), "{v}");
    assert_timestamp(&v["created_at"]);
    assert!(v["deleted"].is_boolean(), "{v}");
}

// ------------------------------------------------------------ attachments

/// The smallest bytes that pass for a PNG: its signature, then anything.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-not-really-an-image";

/// The boundary of the multipart bodies built here.
pub const BOUNDARY: &str = "chat-test-boundary-7MA4YWxkTrZu0gW";

/// One part of a multipart form: its name, filename and type (if any), bytes.
pub struct Part<'a> {
    pub name: &'a str,
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub bytes: &'a [u8],
}

/// A `multipart/form-data` body of these parts, built by hand, with
/// [`BOUNDARY`].
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut cd = format!("Content-Disposition: form-data; name=\"{}\"", p.name);
        if let Some(f) = p.filename {
            cd.push_str(&format!("; filename=\"{}\"", f.replace('"', "\\\"")));
        }
        body.extend_from_slice(cd.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = p.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

impl Api {
    /// `POST /attachments` with exactly this `Content-Type` and body, and a
    /// bearer token (or none).
    pub async fn upload_raw(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = TestRequest::default()
            .method(Method::POST)
            .uri("/api/v1/attachments")
            .insert_header((header::CONTENT_TYPE, content_type.to_owned()))
            .set_payload(body);
        if let Some(t) = token {
            req = req.insert_header((header::AUTHORIZATION, format!("Bearer {t}")));
        }
        (self.call)(req).await
    }

    /// Uploads one `file` part as `u`; the answer as it came.
    pub async fn try_upload(
        &self,
        u: &User,
        filename: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> (StatusCode, Value) {
        let body = multipart(&[Part {
            name: "file",
            filename: Some(filename),
            content_type,
            bytes,
        }]);
        let r = self
            .upload_raw(
                Some(&u.token),
                &format!("multipart/form-data; boundary={BOUNDARY}"),
                body,
            )
            .await;
        (r.status, r.body)
    }

    /// Uploads a file as `u`; asserts 201 and returns the `Attachment`.
    pub async fn upload(
        &self,
        u: &User,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Value {
        let (st, b) = self
            .try_upload(u, filename, Some(content_type), bytes)
            .await;
        assert_eq!(st, StatusCode::CREATED, "upload {filename}: {b}");
        b
    }

    /// `GET /attachments/{id}` as `u`, whole.
    pub async fn download(&self, u: &User, id: &str) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/attachments/{id}"),
            Some(&format!("Bearer {}", u.token)),
            None,
        )
        .await
    }

    /// One message of a room's history as `u` sees it (the latest 100).
    pub async fn message(&self, u: &User, room: &str, id: &Value) -> Value {
        let h = self.history(u, room, "limit=100").await;
        arr(&h["messages"])
            .iter()
            .find(|m| m["id"] == *id)
            .cloned()
            .unwrap_or_else(|| panic!("message {id} not in the history: {h}"))
    }
}

/// The `Attachment` shape.
pub fn assert_attachment(v: &Value) {
    assert_keys(v, &["id", "url", "filename", "content_type", "size"]);
    assert_uuid(&v["id"]);
    assert_eq!(
        v["url"],
        format!("/api/v1/attachments/{}", s(&v["id"])),
        "url of {v}"
    );
    assert!(v["filename"].as_str().is_some_and(|f| !f.is_empty()), "{v}");
    assert!(v["content_type"].is_string(), "{v}");
    n(&v["size"]);
}

/// A header of a reply as text ("" when absent).
pub fn header_of(r: &Reply, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
