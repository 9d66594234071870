//! `POST /dms` and direct rooms.

use actix_web::http::StatusCode;

use crate::support::*;

async fn open(api: &Api, me: &User, other: &str) -> (StatusCode, Value) {
    api.post("/api/v1/dms", &me.token, json!({"user_id": other}))
        .await
}

#[actix_rt::test]
async fn a_dm_is_created_once_and_found_from_either_side() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let r = open(&api, &a, &b.id).await;
    assert_status(&r, StatusCode::CREATED);
    assert_room(&r.1);
    assert_eq!(r.1["kind"], "direct");
    assert_eq!(r.1["member_count"], 2);
    assert_eq!(r.1["version"], 1);
    assert_eq!(r.1["last_seq"], 0);
    let id = s(&r.1["id"]);
    let again = open(&api, &a, &b.id).await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.1["id"], id.as_str());
    assert_eq!(again.1["version"], 1, "opening again changes nothing");
    let other_side = open(&api, &b, &a.id).await;
    assert_status(&other_side, StatusCode::OK);
    assert_eq!(other_side.1["id"], id.as_str());
    // Both are plain members.
    let roles = api.roles(&b, &id).await;
    assert_eq!(roles.len(), 2);
    assert!(roles.iter().all(|(_, r)| r == "member"), "{roles:?}");
    // Both can talk.
    api.say(&a, &id, "hi bob").await;
    api.say(&b, &id, "hi alice").await;
    assert_eq!(Api::seqs(&api.history(&a, &id, "").await), vec![1, 2]);
    // Another pair has another room.
    let c = api.user("carol").await;
    let r = open(&api, &c, &a.id).await;
    assert_status(&r, StatusCode::CREATED);
    assert_ne!(r.1["id"], id.as_str());
}

#[actix_rt::test]
async fn a_dm_with_yourself_has_one_member() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = open(&api, &a, &a.id).await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.1["kind"], "direct");
    assert_eq!(r.1["member_count"], 1);
    let id = s(&r.1["id"]);
    let again = open(&api, &a, &a.id).await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.1["id"], id.as_str());
    assert_eq!(again.1["member_count"], 1);
    assert_eq!(
        api.roles(&a, &id).await,
        vec![(a.id.clone(), "member".to_owned())]
    );
    api.say(&a, &id, "note to self").await;
}

#[actix_rt::test]
async fn a_dm_is_hidden_from_everyone_else_on_every_endpoint() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let dm = api.dm(&a, &b).await;
    api.say(&a, &dm, "private words").await;
    let t = &c.token;
    let bid = &b.id;
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}"), t).await);
    assert_not_found(
        &api.patch(&format!("/api/v1/rooms/{dm}"), t, json!({"name": "x"}))
            .await,
    );
    assert_not_found(&api.delete(&format!("/api/v1/rooms/{dm}"), t).await);
    assert_not_found(&api.post_empty(&format!("/api/v1/rooms/{dm}/join"), t).await);
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{dm}/leave"), t)
            .await,
    );
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}/members"), t).await);
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{dm}/members"),
            t,
            json!({"user_id": c.id}),
        )
        .await,
    );
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{dm}/members/{bid}"), t)
            .await,
    );
    assert_not_found(
        &api.put(
            &format!("/api/v1/rooms/{dm}/members/{bid}/role"),
            t,
            Some(json!({"role": "admin"})),
        )
        .await,
    );
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{dm}/bans"),
            t,
            json!({"user_id": bid}),
        )
        .await,
    );
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{dm}/bans/{bid}"), t)
            .await,
    );
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}/messages"), t).await);
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{dm}/messages"),
            t,
            json!({"content": "hi"}),
        )
        .await,
    );
    assert_not_found(
        &api.post(&format!("/api/v1/rooms/{dm}/read"), t, json!({"seq": 1}))
            .await,
    );
    // Nothing changed.
    let room = api.room(&a, &dm).await;
    assert_eq!(room["member_count"], 2);
    assert_eq!(room["last_seq"], 1);
    assert_eq!(room["version"], 2);
}

#[actix_rt::test]
async fn dm_input_and_unknown_users() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    assert_not_found(&open(&api, &a, &unknown_id()).await);
    assert_only_field(&open(&api, &a, "nope").await, "user_id");
    assert_only_field(
        &api.post("/api/v1/dms", &a.token, json!({})).await,
        "user_id",
    );
    assert_only_field(
        &api.post("/api/v1/dms", &a.token, json!({"user_id": 1}))
            .await,
        "user_id",
    );
}

#[actix_rt::test]
async fn a_blocked_user_cannot_open_a_dm() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    api.put(&format!("/api/v1/users/{}/block", a.id), &b.token, None)
        .await;
    // Bob blocks Alice: Alice cannot open a direct room with him.
    assert_error(
        &open(&api, &a, &b.id).await,
        StatusCode::FORBIDDEN,
        "blocked",
    );
    assert!(
        api.walk(&a.token, "/api/v1/users/me/rooms", 50)
            .await
            .is_empty()
    );
    // After the unblock she can.
    api.delete(&format!("/api/v1/users/{}/block", a.id), &b.token)
        .await;
    assert_status(&open(&api, &a, &b.id).await, StatusCode::CREATED);
}

#[actix_rt::test]
async fn a_blocked_user_cannot_message_in_an_existing_dm() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    api.say(&a, &dm, "hello").await;
    api.put(&format!("/api/v1/users/{}/block", a.id), &b.token, None)
        .await;
    let r = api
        .post(
            &format!("/api/v1/rooms/{dm}/messages"),
            &a.token,
            json!({"content": "hello?"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "blocked");
    // The existing room is still there, and re-opening it is refused too.
    assert_error(
        &open(&api, &a, &b.id).await,
        StatusCode::FORBIDDEN,
        "blocked",
    );
    assert_eq!(api.room(&a, &dm).await["last_seq"], 1);
    // Blocking does not touch group rooms.
    let room = api.public_room(&b, "pub").await;
    api.join(&a, &room).await;
    api.say(&a, &room, "still here").await;
    // Unblocked: talking resumes.
    api.delete(&format!("/api/v1/users/{}/block", a.id), &b.token)
        .await;
    api.say(&a, &dm, "back").await;
    assert_eq!(api.room(&a, &dm).await["last_seq"], 2);
}

#[actix_rt::test]
async fn a_leaver_is_added_back_by_a_later_post_dms() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    api.say(&a, &dm, "one").await;
    api.leave(&b, &dm).await;
    assert_eq!(api.room(&a, &dm).await["member_count"], 1);
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}"), &b.token).await);
    // Alice opens it again: Bob is back, same room.
    let r = open(&api, &a, &b.id).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["id"], dm.as_str());
    assert_eq!(r.1["member_count"], 2);
    assert_eq!(api.room(&b, &dm).await["member_count"], 2);
    assert_eq!(Api::seqs(&api.history(&b, &dm, "").await), vec![1]);
    // Bob leaves again and opens it himself.
    api.leave(&b, &dm).await;
    let r = open(&api, &b, &a.id).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["id"], dm.as_str());
    assert_eq!(r.1["member_count"], 2);
}

#[actix_rt::test]
async fn after_both_left_a_new_dm_is_created() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    api.say(&a, &dm, "old").await;
    api.leave(&a, &dm).await;
    api.leave(&b, &dm).await;
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}"), &a.token).await);
    let r = open(&api, &b, &a.id).await;
    assert_status(&r, StatusCode::CREATED);
    assert_ne!(r.1["id"], dm.as_str());
    assert_eq!(r.1["member_count"], 2);
    assert_eq!(r.1["version"], 1);
    assert_eq!(r.1["last_seq"], 0);
    let new = s(&r.1["id"]);
    assert_eq!(api.history(&a, &new, "").await["messages"], json!([]));
    // Notes to self work the same way.
    let notes = api.dm(&a, &a).await;
    api.leave(&a, &notes).await;
    let r = open(&api, &a, &a.id).await;
    assert_status(&r, StatusCode::CREATED);
    assert_ne!(r.1["id"], notes.as_str());
}
