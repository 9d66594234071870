//! `/health`, `/ready`, `/api/v1/openapi.json`, unknown routes, and the
//! error answers every route shares (bad JSON, invalid UTF-8, NUL, 413, 401).

use actix_web::http::{Method, StatusCode};

use crate::support::*;

#[actix_rt::test]
async fn health_answers_ok_with_a_timestamp() {
    let api = Api::new().await;
    let r = api.anon(Method::GET, "/health", None).await;
    assert_status(&r, StatusCode::OK);
    assert_keys(&r.1, &["status", "timestamp"]);
    assert_eq!(r.1["status"], "OK");
    assert_timestamp(&r.1["timestamp"]);
}

#[actix_rt::test]
async fn ready_answers_200_when_everything_answers() {
    let api = Api::new().await;
    let r = api.anon(Method::GET, "/ready", None).await;
    assert_status(&r, StatusCode::OK);
}

struct Down;

impl chat_http::Readiness for Down {
    fn check(&self) -> futures_util::future::BoxFuture<'_, bool> {
        Box::pin(async { false })
    }
}

struct Up;

impl chat_http::Readiness for Up {
    fn check(&self) -> futures_util::future::BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

#[actix_rt::test]
async fn ready_answers_503_when_a_dependency_does_not() {
    let api = Api::with(Options {
        readiness: vec![std::sync::Arc::new(Up), std::sync::Arc::new(Down)],
        ..Options::default()
    })
    .await;
    let r = api.anon(Method::GET, "/ready", None).await;
    assert_eq!(r.0, StatusCode::SERVICE_UNAVAILABLE, "{}", r.1);
    assert!(r.1["code"].is_string(), "{}", r.1);
    assert!(r.1["error"].is_string(), "{}", r.1);

    let up = Api::with(Options {
        readiness: vec![std::sync::Arc::new(Up)],
        ..Options::default()
    })
    .await;
    assert_status(&up.anon(Method::GET, "/ready", None).await, StatusCode::OK);
}

#[actix_rt::test]
async fn health_ready_and_openapi_need_no_token() {
    let api = Api::new().await;
    for uri in ["/health", "/ready", "/api/v1/openapi.json"] {
        let r = api.anon(Method::GET, uri, None).await;
        assert_status(&r, StatusCode::OK);
        // A garbage token does not matter either.
        let r = api.get(uri, "garbage").await;
        assert_status(&r, StatusCode::OK);
    }
}

#[actix_rt::test]
async fn openapi_is_an_openapi_3_document_of_every_route() {
    let api = Api::new().await;
    let reply = api
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&reply.raw).expect("openapi.json is JSON");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "openapi version: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    let want: &[(&str, &[&str])] = &[
        ("/health", &["get"]),
        ("/ready", &["get"]),
        ("/api/v1/auth/register", &["post"]),
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/auth/refresh", &["post"]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/users/me", &["get", "patch"]),
        ("/api/v1/users/me/rooms", &["get"]),
        ("/api/v1/users/me/blocks", &["get"]),
        ("/api/v1/users", &["get"]),
        ("/api/v1/users/{id}", &["get"]),
        ("/api/v1/users/{id}/block", &["put", "delete"]),
        ("/api/v1/rooms", &["get", "post"]),
        ("/api/v1/dms", &["post"]),
        ("/api/v1/rooms/{id}", &["get", "patch", "delete"]),
        ("/api/v1/rooms/{id}/join", &["post"]),
        ("/api/v1/rooms/{id}/leave", &["post"]),
        ("/api/v1/rooms/{id}/members", &["get", "post"]),
        ("/api/v1/rooms/{id}/members/{user_id}", &["delete"]),
        ("/api/v1/rooms/{id}/members/{user_id}/role", &["put"]),
        ("/api/v1/rooms/{id}/bans", &["post"]),
        ("/api/v1/rooms/{id}/bans/{user_id}", &["delete"]),
        ("/api/v1/rooms/{id}/messages", &["get", "post"]),
        ("/api/v1/rooms/{id}/read", &["post"]),
    ];
    for (path, methods) in want {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("openapi.json lacks {path}"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "openapi.json lacks {m} {path}");
        }
    }
    // The bearer scheme the secured operations refer to is declared.
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "no bearer security scheme"
    );
    // The error body is documented.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[actix_rt::test]
async fn unknown_routes_are_404_not_found() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    for uri in [
        "/nope",
        "/api/v1/nope",
        "/api/v1/rooms/x/y/z/w",
        "/api/v2/users/me",
    ] {
        let r = api.get(uri, &alice.token).await;
        assert_not_found(&r);
        let r = api.anon(Method::GET, uri, None).await;
        assert_not_found(&r);
    }
}

#[actix_rt::test]
async fn a_missing_or_bad_token_is_401_on_every_authenticated_route() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "general").await;
    let uid = alice.id.clone();
    let body = json!({});
    let routes: Vec<(Method, String)> = vec![
        (Method::POST, "/api/v1/auth/logout".into()),
        (Method::GET, "/api/v1/users/me".into()),
        (Method::PATCH, "/api/v1/users/me".into()),
        (Method::GET, "/api/v1/users/me/rooms".into()),
        (Method::GET, "/api/v1/users/me/blocks".into()),
        (Method::GET, "/api/v1/users?q=a".into()),
        (Method::GET, format!("/api/v1/users/{uid}")),
        (Method::PUT, format!("/api/v1/users/{uid}/block")),
        (Method::DELETE, format!("/api/v1/users/{uid}/block")),
        (Method::POST, "/api/v1/rooms".into()),
        (Method::GET, "/api/v1/rooms".into()),
        (Method::POST, "/api/v1/dms".into()),
        (Method::GET, format!("/api/v1/rooms/{room}")),
        (Method::PATCH, format!("/api/v1/rooms/{room}")),
        (Method::DELETE, format!("/api/v1/rooms/{room}")),
        (Method::POST, format!("/api/v1/rooms/{room}/join")),
        (Method::POST, format!("/api/v1/rooms/{room}/leave")),
        (Method::GET, format!("/api/v1/rooms/{room}/members")),
        (Method::POST, format!("/api/v1/rooms/{room}/members")),
        (
            Method::DELETE,
            format!("/api/v1/rooms/{room}/members/{uid}"),
        ),
        (
            Method::PUT,
            format!("/api/v1/rooms/{room}/members/{uid}/role"),
        ),
        (Method::POST, format!("/api/v1/rooms/{room}/bans")),
        (Method::DELETE, format!("/api/v1/rooms/{room}/bans/{uid}")),
        (Method::POST, format!("/api/v1/rooms/{room}/messages")),
        (Method::GET, format!("/api/v1/rooms/{room}/messages")),
        (Method::POST, format!("/api/v1/rooms/{room}/read")),
    ];
    let other = Api::with(Options {
        secret: b"another-secret-of-at-least-32-bytes!",
        ..Options::default()
    })
    .await;
    let forged = other.user("alice").await.token;
    for (m, uri) in &routes {
        let with_body = [Method::POST, Method::PATCH, Method::PUT].contains(m);
        let b = with_body.then(|| body.clone());
        for auth in [
            None,
            Some("Bearer garbage".to_owned()),
            Some("Bearer ".to_owned()),
            Some(format!("Basic {}", alice.token)),
            Some(alice.token.clone()),
            Some(format!("Bearer {forged}")),
            Some(format!("Bearer {}", alice.refresh)),
        ] {
            let bytes = b.as_ref().map(|v| serde_json::to_vec(v).unwrap());
            let r = api.request(m.clone(), uri, auth.as_deref(), bytes).await;
            assert_unauthorized(&(r.status, r.body));
        }
    }
    // And the room is untouched: nobody got through.
    assert_eq!(api.version(&alice, &room).await, 1);
}

#[actix_rt::test]
async fn malformed_json_is_bad_json_everywhere() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "general").await;
    let cases: Vec<(Method, String, bool)> = vec![
        (Method::POST, "/api/v1/auth/register".into(), false),
        (Method::POST, "/api/v1/auth/login".into(), false),
        (Method::POST, "/api/v1/auth/refresh".into(), false),
        (Method::PATCH, "/api/v1/users/me".into(), true),
        (Method::POST, "/api/v1/rooms".into(), true),
        (Method::POST, "/api/v1/dms".into(), true),
        (Method::PATCH, format!("/api/v1/rooms/{room}"), true),
        (Method::POST, format!("/api/v1/rooms/{room}/members"), true),
        (
            Method::PUT,
            format!("/api/v1/rooms/{room}/members/{}/role", alice.id),
            true,
        ),
        (Method::POST, format!("/api/v1/rooms/{room}/bans"), true),
        (Method::POST, format!("/api/v1/rooms/{room}/messages"), true),
        (Method::POST, format!("/api/v1/rooms/{room}/read"), true),
    ];
    for (m, uri, authed) in &cases {
        let token = authed.then_some(alice.token.as_str());
        for bad in [
            &b"{"[..],
            b"{\"content\": }",
            b"not json",
            b"{\"a\":1,}",
            b"",
        ] {
            let r = api.call_raw(m.clone(), uri, token, bad).await;
            assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
        }
        // Not valid UTF-8, though otherwise JSON-looking.
        let r = api
            .call_raw(m.clone(), uri, token, b"{\"content\": \"\xff\xfe\"}")
            .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
        let r = api.call_raw(m.clone(), uri, token, b"\xc3\x28").await;
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    }
    assert_eq!(api.room(&alice, &room).await["last_seq"], 0);
}

#[actix_rt::test]
async fn a_json_value_that_is_not_an_object_is_400() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "general").await;
    for body in [&b"[1, 2]"[..], b"\"text\"", b"42", b"null"] {
        let r = api
            .call_raw(
                Method::POST,
                &format!("/api/v1/rooms/{room}/messages"),
                Some(&alice.token),
                body,
            )
            .await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.1);
        assert!(
            r.1["code"] == "validation" || r.1["code"] == "bad_json",
            "{}",
            r.1
        );
    }
}

#[actix_rt::test]
async fn a_body_over_the_limit_is_413_too_large() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "general").await;
    let big = json!({"content": "x".repeat(70 * 1024)});
    let r = api
        .post(&format!("/api/v1/rooms/{room}/messages"), &alice.token, big)
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"username": "bob", "email": "bob@example.com", "password": "y".repeat(70 * 1024)})),
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
}

#[actix_rt::test]
async fn a_nul_character_in_text_is_validation_never_500() {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "general").await;

    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"username": "bo\u{0}b", "email": "bob@example.com", "password": PASSWORD})),
        )
        .await;
    assert_only_field(&r, "username");
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"username": "bob", "email": "b\u{0}ob@example.com", "password": PASSWORD})),
        )
        .await;
    assert_only_field(&r, "email");
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"username": "bob", "email": "bob@example.com", "password": "pass\u{0}word123"})),
        )
        .await;
    assert_only_field(&r, "password");
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD, "display_name": "B\u{0}b"})),
        )
        .await;
    assert_only_field(&r, "display_name");
    let r = api
        .patch(
            "/api/v1/users/me",
            &alice.token,
            json!({"display_name": "A\u{0}"}),
        )
        .await;
    assert_only_field(&r, "display_name");
    let r = api
        .post("/api/v1/rooms", &alice.token, json!({"name": "ro\u{0}om"}))
        .await;
    assert_only_field(&r, "name");
    let r = api
        .post(
            "/api/v1/rooms",
            &alice.token,
            json!({"name": "room", "description": "d\u{0}"}),
        )
        .await;
    assert_only_field(&r, "description");
    let r = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &alice.token,
            json!({"name": "x\u{0}y"}),
        )
        .await;
    assert_only_field(&r, "name");
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice.token,
            json!({"content": "hello\u{0}world"}),
        )
        .await;
    assert_only_field(&r, "content");
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice.token,
            json!({"content": "hello", "client_msg_id": "k\u{0}"}),
        )
        .await;
    assert_only_field(&r, "client_msg_id");
    // The escaped form `\u0000` in the raw JSON is the same NUL.
    let r = api
        .call_raw(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&alice.token),
            br#"{"content": "a\u0000b"}"#,
        )
        .await;
    assert_only_field(&r, "content");
    // A NUL at login is not a server fault either.
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"username": "alice", "password": "pass\u{0}word"})),
        )
        .await;
    assert!(
        r.0 == StatusCode::UNAUTHORIZED || r.0 == StatusCode::BAD_REQUEST,
        "{} {}",
        r.0,
        r.1
    );
    let r = api.get("/api/v1/users?q=a%00b", &alice.token).await;
    assert!(
        r.0 == StatusCode::OK || r.0 == StatusCode::BAD_REQUEST,
        "{} {}",
        r.0,
        r.1
    );
    assert_eq!(api.room(&alice, &room).await["last_seq"], 0);
}

#[actix_rt::test]
async fn answers_are_json() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let auth = format!("Bearer {}", a.token);
    for (m, uri, auth, status) in [
        (Method::GET, "/health", None, StatusCode::OK),
        (
            Method::GET,
            "/api/v1/users/me",
            Some(auth.as_str()),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/v1/users/me",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (Method::GET, "/api/v1/nope", None, StatusCode::NOT_FOUND),
        (
            Method::GET,
            "/api/v1/users/x",
            Some(auth.as_str()),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = api.request(m, uri, auth, None).await;
        assert_eq!(r.status, status, "{uri}: {}", r.body);
        let ct = r
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "{uri}: content-type {ct:?}"
        );
    }
}

#[actix_rt::test]
async fn a_repeated_query_parameter_is_named_in_fields() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for uri in [
        "/api/v1/users?limit=1&limit=2".to_owned(),
        "/api/v1/rooms?limit=1&limit=2".to_owned(),
        format!("/api/v1/rooms/{room}/messages?limit=1&limit=2"),
    ] {
        let r = api.get(&uri, &a.token).await;
        assert_only_field(&r, "limit");
    }
}

#[actix_rt::test]
async fn a_nul_character_in_a_text_query_is_validation() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for base in ["/api/v1/users", "/api/v1/rooms"] {
        for q in ["a%00b", "%00"] {
            let r = api.get(&format!("{base}?q={q}"), &a.token).await;
            assert_only_field(&r, "q");
        }
    }
}

#[actix_rt::test]
async fn invalid_utf8_in_a_text_query_is_never_a_server_fault() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    for base in ["/api/v1/users", "/api/v1/rooms"] {
        for q in ["a%FFb", "%C3%28"] {
            let r = api.get(&format!("{base}?q={q}"), &a.token).await;
            if r.0 == StatusCode::OK {
                assert_keys(&r.1, &["items", "next_cursor"]);
            } else {
                assert_only_field(&r, "q");
            }
        }
    }
}

/// A store that takes no sends right now (its write queue is full): every
/// other call goes through.
struct Full(std::sync::Arc<dyn chat_ports::MessageRepo>);

#[async_trait::async_trait]
impl chat_ports::MessageRepo for Full {
    async fn append(
        &self,
        _: &chat_ports::NewMessage,
    ) -> Result<chat_ports::Appended, chat_ports::AppendError> {
        Err(chat_ports::StoreError::unavailable("the send queue is full").into())
    }
    async fn find(
        &self,
        id: chat_domain::MessageId,
        viewer: chat_domain::UserId,
    ) -> Result<Option<chat_domain::Message>, chat_ports::StoreError> {
        self.0.find(id, viewer).await
    }
    async fn history(
        &self,
        room: chat_domain::RoomId,
        query: chat_domain::HistoryQuery,
        viewer: chat_domain::UserId,
    ) -> Result<chat_ports::History, chat_ports::StoreError> {
        self.0.history(room, query, viewer).await
    }
    async fn edit(
        &self,
        id: chat_domain::MessageId,
        content: &chat_domain::MessageContent,
        at: chat_domain::Timestamp,
        viewer: chat_domain::UserId,
    ) -> Result<Option<chat_domain::Message>, chat_ports::StoreError> {
        self.0.edit(id, content, at, viewer).await
    }
    async fn delete(
        &self,
        id: chat_domain::MessageId,
        viewer: chat_domain::UserId,
    ) -> Result<Option<chat_domain::Message>, chat_ports::StoreError> {
        self.0.delete(id, viewer).await
    }
    async fn react(
        &self,
        id: chat_domain::MessageId,
        user: chat_domain::UserId,
        emoji: &str,
        add: bool,
        at: chat_domain::Timestamp,
    ) -> Result<Option<chat_ports::Reacted>, chat_ports::StoreError> {
        self.0.react(id, user, emoji, add, at).await
    }
    async fn reactors(
        &self,
        id: chat_domain::MessageId,
    ) -> Result<Vec<chat_ports::Reactors>, chat_ports::StoreError> {
        self.0.reactors(id).await
    }
    async fn search(
        &self,
        viewer: chat_domain::UserId,
        search: &chat_ports::MessageSearch,
        page: &chat_ports::PageRequest,
    ) -> Result<chat_ports::Page<chat_ports::SearchHit>, chat_ports::StoreError> {
        self.0.search(viewer, search, page).await
    }
    async fn receipts(
        &self,
        room: chat_domain::RoomId,
        page: &chat_ports::PageRequest,
    ) -> Result<chat_ports::Page<chat_ports::Receipt>, chat_ports::StoreError> {
        self.0.receipts(room, page).await
    }
    async fn markers(
        &self,
        room: chat_domain::RoomId,
        user: chat_domain::UserId,
    ) -> Result<chat_ports::Markers, chat_ports::StoreError> {
        self.0.markers(room, user).await
    }
    async fn mark_read(
        &self,
        room: chat_domain::RoomId,
        user: chat_domain::UserId,
        seq: u64,
    ) -> Result<bool, chat_ports::StoreError> {
        self.0.mark_read(room, user, seq).await
    }
    async fn mark_delivered(
        &self,
        room: chat_domain::RoomId,
        user: chat_domain::UserId,
        seq: u64,
    ) -> Result<bool, chat_ports::StoreError> {
        self.0.mark_delivered(room, user, seq).await
    }
}

/// A store too busy to take a send (the group-commit queue full) answers
/// 503 `unavailable` with `Retry-After`, and `retry_after` in the body for
/// clients that see no header (a WebSocket's `error` frame carries the
/// same body); nothing is stored.
#[actix_rt::test]
async fn a_send_the_store_cannot_take_now_is_503_with_retry_after() {
    let api = Api::with(Options {
        messages: Some(|inner| std::sync::Arc::new(Full(inner))),
        ..Options::default()
    })
    .await;
    let alice = api.user("alice").await;
    let room = api.public_room(&alice, "busy").await;
    let body = serde_json::json!({"content": "hello", "client_msg_id": "k1"});
    let r = api
        .request(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&format!("Bearer {}", alice.token)),
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body["code"], "unavailable");
    assert_eq!(r.body["retry_after"], 1);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let h = api.history(&alice, &room, "").await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(0), "{h}");
}
