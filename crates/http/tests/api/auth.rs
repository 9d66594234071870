//! `POST /auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`.

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use chat_auth::BcryptHasher;
use chat_ports::fakes::ManualClock;

use crate::support::*;

async fn register(api: &Api, body: Value) -> (StatusCode, Value) {
    api.anon(Method::POST, "/api/v1/auth/register", Some(body))
        .await
}

async fn login(api: &Api, body: Value) -> (StatusCode, Value) {
    api.anon(Method::POST, "/api/v1/auth/login", Some(body))
        .await
}

async fn refresh(api: &Api, token: &str) -> (StatusCode, Value) {
    api.anon(
        Method::POST,
        "/api/v1/auth/refresh",
        Some(json!({"refresh_token": token})),
    )
    .await
}

fn assert_tokens(v: &Value) {
    assert_keys(v, &["token", "expires_at", "refresh_token", "user"]);
    assert!(v["token"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    assert!(
        v["refresh_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{v}"
    );
    assert_ne!(v["token"], v["refresh_token"]);
    assert_timestamp(&v["expires_at"]);
    let exp = chrono::DateTime::parse_from_rfc3339(&s(&v["expires_at"]));
    assert!(exp.is_ok_and(|e| e > chrono::Utc::now()), "expires_at: {v}");
    assert_user(&v["user"]);
}

// ------------------------------------------------------------ register

#[actix_rt::test]
async fn register_answers_201_with_the_user() {
    let api = Api::new().await;
    let r = register(
        &api,
        json!({"username": "Alice", "email": "Alice@Example.com", "password": PASSWORD}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    assert_user(&r.1);
    assert_eq!(r.1["username"], "Alice");
    assert_eq!(r.1["email"], "Alice@Example.com");
    assert_eq!(
        r.1["display_name"], "Alice",
        "display_name defaults to the username"
    );
    assert_eq!(r.1["avatar_url"], Value::Null);
    assert_eq!(r.1["role"], "user");
    assert!(
        !r.1.to_string().contains(PASSWORD),
        "the password comes back: {}",
        r.1
    );

    let r = register(
        &api,
        json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD, "display_name": "Bobby B"}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.1["display_name"], "Bobby B");
}

#[actix_rt::test]
async fn register_validates_each_field() {
    let api = Api::new().await;
    let ok = |u: &str, e: &str, p: &str| json!({"username": u, "email": e, "password": p});
    let cases = [
        (ok("ab", "a@example.com", PASSWORD), "username"),
        (ok(&"a".repeat(33), "a@example.com", PASSWORD), "username"),
        (ok("al ice", "a@example.com", PASSWORD), "username"),
        (ok("alïce", "a@example.com", PASSWORD), "username"),
        (ok("al/ice", "a@example.com", PASSWORD), "username"),
        (ok("", "a@example.com", PASSWORD), "username"),
        (ok("alice", "not-an-email", PASSWORD), "email"),
        (ok("alice", "a@b", PASSWORD), "email"),
        (ok("alice", "", PASSWORD), "email"),
        (ok("alice", "a b@example.com", PASSWORD), "email"),
        (ok("alice", "a@example.com", "1234567"), "password"),
        (ok("alice", "a@example.com", ""), "password"),
        (ok("alice", "a@example.com", &"p".repeat(129)), "password"),
        (ok("alice", "a@example.com", &"é".repeat(7)), "password"),
        (ok("alice", "a@example.com", &"é".repeat(129)), "password"),
    ];
    for (body, field) in cases {
        let r = register(&api, body.clone()).await;
        assert_only_field(&r, field);
    }
    // Every bad input at once is named at once.
    let r = register(&api, ok("a", "nope", "short")).await;
    assert_fields(&r, &["username", "email", "password"]);
    // display_name, when given: 1-64 characters.
    for dn in [json!(""), json!("   "), json!("d".repeat(65))] {
        let r = register(
            &api,
            json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "display_name": dn}),
        )
        .await;
        assert_only_field(&r, "display_name");
    }
    // Nothing was created along the way.
    let r = register(&api, ok("alice", "a@example.com", PASSWORD)).await;
    assert_status(&r, StatusCode::CREATED);
}

#[actix_rt::test]
async fn register_boundaries_are_accepted() {
    let api = Api::new().await;
    let cases = [
        ("abc", "a1@example.com", "12345678".to_owned()),
        (&*"a".repeat(32), "a2@example.com", "p".repeat(128)),
        ("A_b.c-D9", "a3@example.com", "é".repeat(128)),
    ];
    for (u, e, p) in cases {
        let r = register(&api, json!({"username": u, "email": e, "password": p})).await;
        assert_status(&r, StatusCode::CREATED);
        let l = login(&api, json!({"username": u, "password": p})).await;
        assert_status(&l, StatusCode::OK);
    }
}

#[actix_rt::test]
async fn register_names_missing_and_mistyped_fields() {
    let api = Api::new().await;
    let r = register(
        &api,
        json!({"email": "a@example.com", "password": PASSWORD}),
    )
    .await;
    assert_only_field(&r, "username");
    let r = register(&api, json!({"username": "alice", "password": PASSWORD})).await;
    assert_only_field(&r, "email");
    let r = register(&api, json!({"username": "alice", "email": "a@example.com"})).await;
    assert_only_field(&r, "password");
    let r = register(
        &api,
        json!({"username": 5, "email": "a@example.com", "password": PASSWORD}),
    )
    .await;
    assert_only_field(&r, "username");
    let r = register(
        &api,
        json!({"username": "alice", "email": ["a"], "password": PASSWORD}),
    )
    .await;
    assert_only_field(&r, "email");
    let r = register(
        &api,
        json!({"username": "alice", "email": "a@example.com", "password": 12345678}),
    )
    .await;
    assert_only_field(&r, "password");
    let r = register(
        &api,
        json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "display_name": 7}),
    )
    .await;
    assert_only_field(&r, "display_name");
    let r = register(&api, json!({})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
}

#[actix_rt::test]
async fn username_and_email_are_unique_ignoring_case() {
    let api = Api::new().await;
    api.register("alice").await;
    let r = register(
        &api,
        json!({"username": "ALICE", "email": "other@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "username_taken");
    let r = register(
        &api,
        json!({"username": "alice", "email": "other@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "username_taken");
    let r = register(
        &api,
        json!({"username": "alice2", "email": "ALICE@EXAMPLE.COM", "password": PASSWORD}),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "email_taken");
    let r = register(
        &api,
        json!({"username": "alice3", "email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    assert_error(&r, StatusCode::CONFLICT, "email_taken");
    // The original account is unharmed and the others were not created.
    login(&api, json!({"username": "alice", "password": PASSWORD})).await;
    let r = login(&api, json!({"username": "alice2", "password": PASSWORD})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[actix_rt::test]
async fn password_length_counts_characters_not_bytes() {
    let api = Api::new().await;
    // 100 two-byte characters: 200 bytes, 100 characters.
    let p = "é".repeat(100);
    let r = register(
        &api,
        json!({"username": "alice", "email": "a@example.com", "password": p}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    assert_status(
        &login(&api, json!({"username": "alice", "password": p})).await,
        StatusCode::OK,
    );
    // 100 four-byte characters: 400 bytes.
    let p = "😀".repeat(100);
    let r = register(
        &api,
        json!({"username": "bob", "email": "b@example.com", "password": p}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    assert_status(
        &login(&api, json!({"username": "bob", "password": p})).await,
        StatusCode::OK,
    );
    // 8 characters of 4 bytes is long enough; 7 is not, though it is 28 bytes.
    let r = register(
        &api,
        json!({"username": "carol", "email": "c@example.com", "password": "😀".repeat(7)}),
    )
    .await;
    assert_only_field(&r, "password");
    let r = register(
        &api,
        json!({"username": "carol", "email": "c@example.com", "password": "😀".repeat(8)}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
}

#[actix_rt::test]
async fn every_character_of_a_password_counts_with_bcrypt() {
    // The real hasher: bcrypt alone would read only the first 72 bytes.
    let api = Api::with(Options {
        hasher: Arc::new(BcryptHasher::new(4)),
        ..Options::default()
    })
    .await;
    let base = "a".repeat(80);
    let p1 = format!("{base}X");
    let p2 = format!("{base}Y");
    let r = register(
        &api,
        json!({"username": "alice", "email": "a@example.com", "password": p1}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let r = login(&api, json!({"username": "alice", "password": p2})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login(&api, json!({"username": "alice", "password": base})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login(&api, json!({"username": "alice", "password": p1})).await;
    assert_status(&r, StatusCode::OK);
    // Multi-byte: the 72nd byte falls in the middle of these.
    let q1 = format!("{}x", "é".repeat(100));
    let q2 = format!("{}y", "é".repeat(100));
    let r = register(
        &api,
        json!({"username": "bob", "email": "b@example.com", "password": q1}),
    )
    .await;
    assert_status(&r, StatusCode::CREATED);
    let r = login(&api, json!({"username": "bob", "password": q2})).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = login(&api, json!({"username": "bob", "password": q1})).await;
    assert_status(&r, StatusCode::OK);
}

#[actix_rt::test]
async fn register_needs_no_token_and_ignores_a_bad_one() {
    let api = Api::new().await;
    let r = api
        .call(
            Method::POST,
            "/api/v1/auth/register",
            Some("garbage"),
            Some(&json!({"username": "alice", "email": "a@example.com", "password": PASSWORD})),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
}

// ------------------------------------------------------------ login

#[actix_rt::test]
async fn login_by_username_or_email_ignoring_case() {
    let api = Api::new().await;
    let reg = api.register("Alice").await;
    for body in [
        json!({"username": "Alice", "password": PASSWORD}),
        json!({"username": "alice", "password": PASSWORD}),
        json!({"username": "ALICE", "password": PASSWORD}),
        json!({"email": "Alice@example.com", "password": PASSWORD}),
        json!({"email": "alice@EXAMPLE.com", "password": PASSWORD}),
    ] {
        let r = login(&api, body.clone()).await;
        assert_status(&r, StatusCode::OK);
        assert_tokens(&r.1);
        assert_eq!(r.1["user"]["id"], reg["id"], "{body}");
        assert_eq!(r.1["user"]["username"], "Alice");
        assert_eq!(r.1["user"]["email"], "Alice@example.com");
        // The token works.
        let me = api.get("/api/v1/users/me", &s(&r.1["token"])).await;
        assert_status(&me, StatusCode::OK);
        assert_eq!(me.1["id"], reg["id"]);
    }
}

#[actix_rt::test]
async fn wrong_user_or_password_give_the_same_401() {
    let api = Api::new().await;
    api.register("alice").await;
    let mut bodies = Vec::new();
    for body in [
        json!({"username": "alice", "password": "wrong-password"}),
        json!({"username": "nobody", "password": PASSWORD}),
        json!({"email": "alice@example.com", "password": "wrong-password"}),
        json!({"email": "nobody@example.com", "password": PASSWORD}),
        json!({"username": "alice", "password": ""}),
        json!({"username": "alice", "password": "x".repeat(500)}),
    ] {
        let r = login(&api, body).await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
        bodies.push(r.1);
    }
    for b in &bodies {
        assert_eq!(*b, bodies[0], "login failures differ");
    }
}

#[actix_rt::test]
async fn login_validates_its_body() {
    let api = Api::new().await;
    api.register("alice").await;
    let r = login(&api, json!({"password": PASSWORD})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    let r = login(
        &api,
        json!({"username": "", "email": "", "password": PASSWORD}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    let r = login(&api, json!({"username": "alice"})).await;
    assert_only_field(&r, "password");
    let r = login(&api, json!({"username": "alice", "password": 5})).await;
    assert_only_field(&r, "password");
    let r = login(&api, json!({"username": ["alice"], "password": PASSWORD})).await;
    assert_only_field(&r, "username");
}

#[actix_rt::test]
async fn each_login_is_its_own_session() {
    let api = Api::new().await;
    let a1 = api.user("alice").await;
    let a2 = api.relogin(&a1).await;
    assert_ne!(a1.token, a2.token);
    let r = api.post_empty("/api/v1/auth/logout", &a1.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_unauthorized(&api.get("/api/v1/users/me", &a1.token).await);
    assert_status(
        &api.get("/api/v1/users/me", &a2.token).await,
        StatusCode::OK,
    );
    assert_status(&refresh(&api, &a2.refresh).await, StatusCode::OK);
}

// ------------------------------------------------------------ refresh

#[actix_rt::test]
async fn refresh_rotates_the_pair() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = refresh(&api, &a.refresh).await;
    assert_status(&r, StatusCode::OK);
    assert_tokens(&r.1);
    assert_eq!(r.1["user"]["id"], a.id.as_str());
    let token2 = s(&r.1["token"]);
    let refresh2 = s(&r.1["refresh_token"]);
    assert_ne!(refresh2, a.refresh);
    // The new access token works, and the one it replaced stays good.
    assert_status(&api.get("/api/v1/users/me", &token2).await, StatusCode::OK);
    assert_status(&api.get("/api/v1/users/me", &a.token).await, StatusCode::OK);
    // The new refresh token is good once more.
    let r = refresh(&api, &refresh2).await;
    assert_status(&r, StatusCode::OK);
    assert_tokens(&r.1);
    assert_status(
        &api.get("/api/v1/users/me", &s(&r.1["token"])).await,
        StatusCode::OK,
    );
}

/// Answers that carry tokens say no cache may keep them (RFC 6749 §5.1).
#[actix_rt::test]
async fn token_answers_are_never_cached() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let login = api
        .request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(
                json!({"username": "alice", "password": PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    let refresh = api
        .request(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": a.refresh}).to_string().into_bytes()),
        )
        .await;
    for r in [&login, &refresh] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.headers
                .get(actix_web::http::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
    }
}

#[actix_rt::test]
async fn a_reused_refresh_token_revokes_the_whole_session() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let other = api.relogin(&a).await;
    let r = refresh(&api, &a.refresh).await;
    assert_status(&r, StatusCode::OK);
    let token2 = s(&r.1["token"]);
    let refresh2 = s(&r.1["refresh_token"]);
    // The used one again: refused, and the session is over.
    assert_unauthorized(&refresh(&api, &a.refresh).await);
    // Even the newest tokens of that session stop working.
    assert_unauthorized(&refresh(&api, &refresh2).await);
    assert_unauthorized(&api.get("/api/v1/users/me", &token2).await);
    assert_unauthorized(&api.get("/api/v1/users/me", &a.token).await);
    // Another session of the same user is untouched.
    assert_status(
        &api.get("/api/v1/users/me", &other.token).await,
        StatusCode::OK,
    );
    assert_status(&refresh(&api, &other.refresh).await, StatusCode::OK);
}

#[actix_rt::test]
async fn refresh_refuses_anything_but_a_live_refresh_token() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    assert_unauthorized(&refresh(&api, "garbage").await);
    assert_unauthorized(&refresh(&api, "").await);
    assert_unauthorized(&refresh(&api, &a.token).await);
    let other = Api::with(Options {
        secret: b"another-secret-of-at-least-32-bytes!",
        ..Options::default()
    })
    .await;
    let forged = other.user("alice").await;
    assert_unauthorized(&refresh(&api, &forged.refresh).await);
    let r = api
        .anon(Method::POST, "/api/v1/auth/refresh", Some(json!({})))
        .await;
    assert_only_field(&r, "refresh_token");
    let r = api
        .anon(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({"refresh_token": 42})),
        )
        .await;
    assert_only_field(&r, "refresh_token");
    // None of that hurt the real session.
    assert_status(&refresh(&api, &a.refresh).await, StatusCode::OK);
}

#[actix_rt::test]
async fn an_access_token_expires_and_refresh_renews_it() {
    let clock = Arc::new(ManualClock::default());
    let api = Api::with(Options {
        clock: clock.clone(),
        ..Options::default()
    })
    .await;
    let a = api.user("alice").await;
    assert_status(&api.get("/api/v1/users/me", &a.token).await, StatusCode::OK);
    clock.advance(chrono::Duration::minutes(16));
    assert_unauthorized(&api.get("/api/v1/users/me", &a.token).await);
    let r = refresh(&api, &a.refresh).await;
    assert_status(&r, StatusCode::OK);
    assert_status(
        &api.get("/api/v1/users/me", &s(&r.1["token"])).await,
        StatusCode::OK,
    );
    // Past the refresh token's life, refresh is refused too.
    let r2 = s(&r.1["refresh_token"]);
    clock.advance(chrono::Duration::days(31));
    assert_unauthorized(&refresh(&api, &r2).await);
}

// ------------------------------------------------------------ logout

#[actix_rt::test]
async fn logout_ends_the_session_at_once() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api.post_empty("/api/v1/auth/logout", &a.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null(), "204 with a body: {}", r.1);
    assert_unauthorized(&api.get("/api/v1/users/me", &a.token).await);
    assert_unauthorized(
        &api.post("/api/v1/rooms", &a.token, json!({"name": "x"}))
            .await,
    );
    assert_unauthorized(&refresh(&api, &a.refresh).await);
    assert_unauthorized(&api.post_empty("/api/v1/auth/logout", &a.token).await);
    // Logging in again works.
    let b = api.relogin(&a).await;
    assert_status(&api.get("/api/v1/users/me", &b.token).await, StatusCode::OK);
}

#[actix_rt::test]
async fn logout_also_ends_tokens_refreshed_from_the_session() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = refresh(&api, &a.refresh).await;
    let token2 = s(&r.1["token"]);
    let refresh2 = s(&r.1["refresh_token"]);
    // Logging out with the old (still valid) access token ends the session.
    assert_status(
        &api.post_empty("/api/v1/auth/logout", &a.token).await,
        StatusCode::NO_CONTENT,
    );
    assert_unauthorized(&api.get("/api/v1/users/me", &token2).await);
    assert_unauthorized(&refresh(&api, &refresh2).await);
}

#[actix_rt::test]
async fn unauthorized_answers_say_bearer() {
    let api = Api::new().await;
    let r = api
        .request(Method::GET, "/api/v1/users/me", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["code"], "unauthorized");
    let www = r
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(www.starts_with("Bearer"), "WWW-Authenticate: {www:?}");
    // The bearer scheme is case-insensitive.
    let a = api.user("alice").await;
    let r = api
        .request(
            Method::GET,
            "/api/v1/users/me",
            Some(&format!("bearer {}", a.token)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
