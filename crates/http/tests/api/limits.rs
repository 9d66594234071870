//! Rate limits: 429 `rate_limited` with `Retry-After`, before anything
//! changes; each key has its own allowance.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step should fail the test loudly"
)]

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;

use crate::support::*;

fn limited(per_minute: u32, burst: u32) -> Options {
    Options {
        limits: chat_http::LimitSettings {
            auth_per_minute: per_minute,
            auth_burst: burst,
            messages_per_minute: per_minute,
            messages_burst: burst,
            uploads_per_minute: per_minute,
            uploads_burst: burst,
            trust_forwarded_for: false,
        },
        ..Options::default()
    }
}

fn login_from(ip: &str, username: &str, password: &str) -> TestRequest {
    TestRequest::default()
        .method(Method::POST)
        .uri("/api/v1/auth/login")
        .peer_addr(format!("{ip}:40000").parse().unwrap())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(json!({"username": username, "password": password}).to_string())
}

fn assert_rate_limited(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["code"], "rate_limited");
    let secs = reply.body["retry_after"].as_u64().unwrap();
    assert!(secs >= 1, "{}", reply.body);
    let header = reply
        .headers
        .get(header::RETRY_AFTER)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(header, secs.to_string());
}

#[actix_rt::test]
async fn logins_are_limited_per_address() {
    let api = Api::with(limited(1, 3)).await;
    api.register("alice").await;
    for _ in 0..3 {
        let r = api
            .send(login_from("10.0.0.1", "alice", "wrong-password"))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // The fourth try from that address is refused before the password is checked...
    let r = api.send(login_from("10.0.0.1", "alice", PASSWORD)).await;
    assert_rate_limited(&r);
    // ...while another address still gets in.
    let r = api.send(login_from("10.0.0.2", "alice", PASSWORD)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[actix_rt::test]
async fn sends_are_limited_per_user_and_a_refused_send_stores_nothing() {
    let api = Api::with(limited(1, 2)).await;
    let (a, b) = (api.user("alice").await, api.user("bob").await);
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let uri = format!("/api/v1/rooms/{room}/messages");
    for text in ["one", "two"] {
        let r = api.post(&uri, &a.token, json!({"content": text})).await;
        assert_status(&r, StatusCode::CREATED);
    }
    let version = api.version(&a, &room).await;
    let r = api
        .request(
            Method::POST,
            &uri,
            Some(&format!("Bearer {}", a.token)),
            Some(json!({"content": "three"}).to_string().into_bytes()),
        )
        .await;
    assert_rate_limited(&r);
    assert_eq!(api.version(&a, &room).await, version, "nothing changed");
    assert_eq!(Api::seqs(&api.history(&a, &room, "").await), vec![1, 2]);
    // Bob has his own allowance.
    let r = api.post(&uri, &b.token, json!({"content": "mine"})).await;
    assert_status(&r, StatusCode::CREATED);
}

#[actix_rt::test]
async fn uploads_are_limited_per_user() {
    let api = Api::with(limited(1, 1)).await;
    let a = api.user("alice").await;
    assert_eq!(
        api.try_upload(&a, "a.png", Some("image/png"), PNG).await.0,
        StatusCode::CREATED
    );
    let (status, body) = api.try_upload(&a, "b.png", Some("image/png"), PNG).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
}

#[actix_rt::test]
async fn no_limits_unless_configured() {
    let api = Api::new().await;
    api.register("alice").await;
    for _ in 0..30 {
        let r = api.send(login_from("10.0.0.1", "alice", PASSWORD)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
}
