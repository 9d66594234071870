//! What the operator sees: metrics that move, request ids, and a graceful
//! shutdown.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use crate::support::*;

/// The value of one sample line of the metrics text, 0 when absent.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

async fn metrics(s: &Server) -> String {
    let res = reqwest::get(format!("{}/metrics", s.base)).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.contains("text"), "{ct}");
    res.text().await.unwrap()
}

both!(metrics_move_with_traffic, |store| async move {
    let postgres = matches!(store, Store::Postgres);
    let s = Server::start(store).await;
    let before = metrics(&s).await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let room = s.room(&alice, "public").await;
    s.join(&bob, &room).await;
    let mut b = s.connect(&bob.token).await;
    for i in 0..3 {
        s.send(&alice, &room, &format!("m{i}")).await;
    }
    for _ in 0..3 {
        b.next_of("message:new").await;
    }
    let after = metrics(&s).await;
    let route = r#"chat_http_requests_total{method="POST",route="/api/v1/rooms/{id}/messages",status="201"}"#;
    assert_eq!(sample(&before, route), 0.0);
    assert_eq!(sample(&after, route), 3.0, "{after}");
    let latency = r#"chat_http_request_duration_seconds_count{method="POST",route="/api/v1/rooms/{id}/messages",status="201"}"#;
    assert_eq!(sample(&after, latency), 3.0);
    assert_eq!(sample(&after, "chat_messages_persisted_total"), 3.0);
    assert_eq!(sample(&after, "chat_ws_connections"), 1.0);
    assert!(sample(&after, "chat_ws_events_delivered_total") >= 3.0);
    assert!(after.contains("chat_ws_events_dropped_total"));
    assert!(after.contains("chat_ws_slow_consumer_disconnects_total"));
    if postgres {
        let max = sample(&after, r#"chat_db_pool_connections{state="max"}"#);
        assert!(max >= 1.0, "{after}");
        assert!(after.contains(r#"chat_db_pool_connections{state="in_use"}"#));
        assert!(after.contains(r#"chat_db_pool_connections{state="waiting"}"#));
    }
    // Raw paths never become labels: an unknown id is still the pattern.
    assert!(!after.contains(&room), "a room id leaked into a label");
    drop(b);
    // The gauge follows the socket going away.
    let mut open = 1.0;
    for _ in 0..50 {
        open = sample(&metrics(&s).await, "chat_ws_connections");
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0.0);
});

both!(every_answer_carries_a_request_id, |store| async move {
    let s = Server::start(store).await;
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/health", s.base)).send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // A sane id from the client is kept, so logs can be joined across hops.
    let res = http
        .get(format!("{}/api/v1/users/me", s.base))
        .header("x-request-id", "edge-42.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.headers()["x-request-id"], "edge-42.abc");
    // One that is not is replaced.
    let res = http
        .get(format!("{}/health", s.base))
        .header("x-request-id", "bad id\twith spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id\twith spaces");
});

both!(
    shutdown_closes_sockets_with_1001_and_stops,
    |store| async move {
        let s = Server::start(store).await;
        let alice = s.user("alice").await;
        let room = s.room(&alice, "public").await;
        let mut a = s.connect(&alice.token).await;
        a.send(
            "message:send",
            json!({"room_id": room, "content": "before the end"}),
            Some("r1"),
        )
        .await;
        let ack = a.next_of("ack").await;
        assert_eq!(ack["payload"]["message"]["seq"], 1);
        let stop = s.shutdown.clone().unwrap();
        let stopping = tokio::spawn(async move { stop.shutdown().await });
        assert_eq!(a.closed().await, Ended::Closed(Some(1001)));
        tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
        let ran = tokio::time::timeout(WAIT, s.running.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(ran.is_ok(), "{ran:?}");
        // Nothing listens any more.
        let refused = reqwest::get(format!("{}/health", s.base)).await;
        assert!(refused.is_err());
    }
);

/// The server binary itself, run with JSON logs on stdout, read line by
/// line.
struct LoggingBinary {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    server: Server,
}

impl LoggingBinary {
    /// Starts it on a free port and waits until it says it listens.
    async fn start(secret: &str) -> Self {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .env_clear()
            .env("PORT", "0")
            .env("CHAT_CONFIG_DIR", &config)
            .env("CHAT__LOG__JSON", "true")
            .env("CHAT__AUTH__BCRYPT_COST", "4")
            .env("JWT_SECRET", secret)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = log_saying(&mut lines, "chat server listening").await;
        let port = listening["fields"]["port"].as_u64().unwrap() as u16;
        Self {
            child,
            lines,
            server: Server::at_port(port),
        }
    }

    /// The next log line whose message is `message`.
    async fn next_log_saying(&mut self, message: &str) -> serde_json::Value {
        log_saying(&mut self.lines, message).await
    }
}

/// The next of `lines` (JSON logs) whose message is `message`, within
/// [`WAIT`] a line.
async fn log_saying(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    message: &str,
) -> serde_json::Value {
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("the server keeps logging");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == message {
            return v;
        }
    }
}

/// The binary itself, on SIGTERM: the WebSocket hears 1001 and the process
/// exits 0.
#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let mut bin = LoggingBinary::start("a-sigterm-test-secret-0123456789abcdef").await;
    let s = &bin.server;
    let alice = s.user("alice").await;
    let mut a = s.connect(&alice.token).await;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &bin.child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(a.closed().await, Ended::Closed(Some(1001)));
    let status = tokio::time::timeout(WAIT, bin.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A failed login is logged with the client's address and the account
/// tried, never the password.
#[tokio::test]
async fn a_failed_login_is_logged_with_the_clients_address() {
    let mut bin = LoggingBinary::start("a-failed-login-test-secret-0123456789").await;
    let s = &bin.server;
    s.user("alice").await;
    let wrong = "not-alices-password-42";
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": wrong})),
        )
        .await;
    assert_eq!(status, 401);
    let logged = bin.next_log_saying("failed login").await;
    assert_eq!(logged["fields"]["client"], "127.0.0.1", "{logged}");
    assert_eq!(logged["fields"]["account"], "\"alice\"", "{logged}");
    assert!(!logged.to_string().contains(wrong), "{logged}");
}

/// A request already being served when the shutdown starts is answered.
#[tokio::test]
async fn in_flight_requests_finish_during_shutdown() {
    // A slow password hash makes a login that is still running when the
    // shutdown begins.
    let s = Server::start_with(Store::Memory, &[("CHAT__AUTH__BCRYPT_COST", "11")]).await;
    s.user("alice").await;
    let url = format!("{}/api/v1/auth/login", s.base);
    let login = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stop = s.shutdown.clone().unwrap();
    let started = std::time::Instant::now();
    stop.shutdown().await;
    assert_eq!(login.await.unwrap().unwrap(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped within the configured time"
    );
}

both!(websocket_sends_share_the_rate_limit, |store| async move {
    let s = Server::start_with(
        store,
        &[
            ("CHAT__LIMITS__MESSAGES_PER_MINUTE", "1"),
            ("CHAT__LIMITS__MESSAGES_BURST", "2"),
        ],
    )
    .await;
    let alice = s.user("alice").await;
    let room = s.room(&alice, "public").await;
    // One over REST, one over the socket: the allowance is the user's.
    s.send(&alice, &room, "over rest").await;
    let mut a = s.connect(&alice.token).await;
    for (i, want) in [(1, "ack"), (2, "error")] {
        a.send(
            "message:send",
            json!({"room_id": room, "content": format!("ws {i}")}),
            Some(&format!("r{i}")),
        )
        .await;
        let reply = loop {
            let f = a.next().await;
            if f["ref"] == format!("r{i}") {
                break f;
            }
        };
        assert_eq!(reply["type"], want, "{reply}");
        if want == "error" {
            assert_eq!(reply["payload"]["code"], "rate_limited");
            assert!(reply["payload"]["retry_after"].as_u64().unwrap() >= 1);
        }
    }
    // The socket stays open, and the refused send stored nothing.
    a.send("ping", json!({}), Some("p")).await;
    assert_eq!(a.next_of("pong").await["ref"], "p");
    let h = s
        .ok(
            "GET",
            &format!("/api/v1/rooms/{room}/messages"),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 2);
});
