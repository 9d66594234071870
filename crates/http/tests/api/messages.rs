//! Sending messages, history and read markers.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;

use crate::support::*;

fn msgs(room: &str) -> String {
    format!("/api/v1/rooms/{room}/messages")
}

fn read(room: &str) -> String {
    format!("/api/v1/rooms/{room}/read")
}

// ------------------------------------------------------------ send

#[actix_rt::test]
async fn send_a_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let r = api
        .post(&msgs(&room), &a.token, json!({"content": "hello world"}))
        .await;
    assert_status(&r, StatusCode::CREATED);
    let m = r.1;
    assert_message(&m);
    assert_eq!(m["room_id"], room.as_str());
    assert_eq!(m["seq"], 1);
    assert_eq!(m["kind"], "text");
    assert_eq!(m["content"], "hello world");
    assert_eq!(m["deleted"], false);
    assert_eq!(m["reactions"], json!([]));
    assert_eq!(
        m["sender"],
        json!({"id": a.id, "username": "alice", "display_name": "alice"})
    );
    assert!(m.get("attachment").is_none_or(Value::is_null), "{m}");
    assert!(m.get("reply_to_id").is_none_or(Value::is_null), "{m}");
    assert!(m.get("edited_at").is_none_or(Value::is_null), "{m}");
    let room_now = api.room(&a, &room).await;
    assert_eq!(room_now["last_seq"], 1);
    assert_eq!(
        room_now["version"], 2,
        "a message raises the version by one"
    );
    // The next one takes the next seq.
    let m2 = api.say(&a, &room, "again").await;
    assert_eq!(m2["seq"], 2);
    assert_ne!(m2["id"], m["id"]);
    let room_now = api.room(&a, &room).await;
    assert_eq!(room_now["last_seq"], 2);
    assert_eq!(room_now["version"], 3);
    // History has them, as sent.
    let h = api.history(&a, &room, "").await;
    assert_eq!(h["messages"][0], m);
    assert_eq!(h["messages"][1], m2);
}

#[actix_rt::test]
async fn send_with_an_explicit_text_kind_and_a_multibyte_body() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let long = "é".repeat(4000);
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": long, "kind": "text"}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.1["content"], long.as_str());
    let emoji = "😀".repeat(4000);
    let r = api
        .post(&msgs(&room), &a.token, json!({"content": emoji}))
        .await;
    assert_status(&r, StatusCode::CREATED);
}

#[actix_rt::test]
async fn send_validates_content() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for content in [
        json!(""),
        json!("   \n\t "),
        json!("x".repeat(4001)),
        json!("é".repeat(4001)),
        json!(5),
        json!(null),
        // Only zero-width characters: nothing anyone can see.
        json!("\u{200B}\u{200D}"),
        json!(" \u{FEFF} "),
    ] {
        let r = api
            .post(&msgs(&room), &a.token, json!({"content": content}))
            .await;
        assert_only_field(&r, "content");
    }
    let r = api.post(&msgs(&room), &a.token, json!({})).await;
    assert_only_field(&r, "content");
    for kind in [json!("bogus"), json!(3)] {
        let r = api
            .post(
                &msgs(&room),
                &a.token,
                json!({"content": "x", "kind": kind}),
            )
            .await;
        assert_only_field(&r, "kind");
    }
    // Only the server writes system messages.
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "kind": "system"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    for bad in [json!("nope"), json!(1)] {
        let r = api
            .post(
                &msgs(&room),
                &a.token,
                json!({"content": "x", "reply_to_id": bad}),
            )
            .await;
        assert_only_field(&r, "reply_to_id");
    }
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "client_msg_id": 7}),
        )
        .await;
    assert_only_field(&r, "client_msg_id");
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "", "client_msg_id": "k".repeat(65)}),
        )
        .await;
    assert_fields(&r, &["content", "client_msg_id"]);
    assert_eq!(api.room(&a, &room).await["last_seq"], 0);
    assert_eq!(api.room(&a, &room).await["version"], 1);
}

#[actix_rt::test]
async fn content_is_counted_after_trimming() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    // 4000 characters plus surrounding whitespace is still 4000.
    let body = format!("  {}  ", "y".repeat(4000));
    let r = api
        .post(&msgs(&room), &a.token, json!({"content": body}))
        .await;
    assert_status(&r, StatusCode::CREATED);
}

#[actix_rt::test]
async fn send_refused_to_outsiders() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let c = api.user("carol").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let body = json!({"content": "hi"});
    let r = api.post(&msgs(&public), &c.token, body.clone()).await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    assert_not_found(&api.post(&msgs(&private), &c.token, body.clone()).await);
    assert_not_found(&api.post(&msgs(&unknown_id()), &c.token, body.clone()).await);
    assert_only_field(&api.post(&msgs("nope"), &c.token, body).await, "id");
    assert_eq!(api.room(&a, &public).await["last_seq"], 0);
}

#[actix_rt::test]
async fn client_msg_id_makes_a_send_idempotent() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let body = json!({"content": "once", "client_msg_id": "key-1"});
    let first = api.post(&msgs(&room), &a.token, body.clone()).await;
    assert_status(&first, StatusCode::CREATED);
    let v = api.version(&a, &room).await;
    let again = api.post(&msgs(&room), &a.token, body.clone()).await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.1["id"], first.1["id"]);
    assert_eq!(again.1["seq"], first.1["seq"]);
    assert_eq!(again.1["content"], "once");
    // Even with another body, the key gives back the first message.
    let other_body = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "twice?", "client_msg_id": "key-1"}),
        )
        .await;
    assert_status(&other_body, StatusCode::OK);
    assert_eq!(other_body.1["id"], first.1["id"]);
    assert_eq!(other_body.1["content"], "once");
    assert_eq!(api.version(&a, &room).await, v, "a replay raises nothing");
    let h = api.history(&a, &room, "").await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1, "one copy: {h}");
    // Another sender with the same key sends their own message.
    let bobs = api.post(&msgs(&room), &b.token, body.clone()).await;
    assert_status(&bobs, StatusCode::CREATED);
    assert_ne!(bobs.1["id"], first.1["id"]);
    assert_eq!(bobs.1["seq"], 2);
    // The same key in another room is another message.
    let room2 = api.public_room(&a, "pub2").await;
    let r = api.post(&msgs(&room2), &a.token, body).await;
    assert_status(&r, StatusCode::CREATED);
    // Without a key, the same text twice is two messages.
    api.say(&a, &room, "dup").await;
    api.say(&a, &room, "dup").await;
    assert_eq!(api.room(&a, &room).await["last_seq"], 4);
}

#[actix_rt::test]
async fn client_msg_id_is_up_to_64_characters() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for key in [
        "k".repeat(64),
        "é".repeat(64),
        "😀".repeat(64),
        String::new(),
    ] {
        let r = api
            .post(
                &msgs(&room),
                &a.token,
                json!({"content": "x", "client_msg_id": key}),
            )
            .await;
        assert_status(&r, StatusCode::CREATED);
    }
    for key in ["k".repeat(65), "é".repeat(65)] {
        let r = api
            .post(
                &msgs(&room),
                &a.token,
                json!({"content": "x", "client_msg_id": key}),
            )
            .await;
        assert_only_field(&r, "client_msg_id");
    }
    assert_eq!(api.room(&a, &room).await["last_seq"], 4);
}

#[actix_rt::test]
async fn reply_to_a_message_of_the_same_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let other = api.public_room(&a, "other").await;
    let first = api.say(&a, &room, "question").await;
    let elsewhere = api.say(&a, &other, "elsewhere").await;
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "answer", "reply_to_id": first["id"]}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.1["reply_to_id"], first["id"]);
    // A message of another room, or no message at all: 400.
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "reply_to_id": elsewhere["id"]}),
        )
        .await;
    assert_only_field(&r, "reply_to_id");
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "reply_to_id": unknown_id()}),
        )
        .await;
    assert_only_field(&r, "reply_to_id");
    // A room id is not a message id.
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "reply_to_id": room}),
        )
        .await;
    assert_only_field(&r, "reply_to_id");
    assert_eq!(api.room(&a, &room).await["last_seq"], 2);
}

#[actix_rt::test]
async fn a_reply_cannot_name_a_message_of_a_room_you_cannot_see() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let hidden = api.private_room(&b, "hidden", &[]).await;
    let secret = api.say(&b, &hidden, "secret").await;
    let room = api.public_room(&a, "pub").await;
    let r = api
        .post(
            &msgs(&room),
            &a.token,
            json!({"content": "x", "reply_to_id": secret["id"]}),
        )
        .await;
    assert_only_field(&r, "reply_to_id");
}

// ------------------------------------------------------------ history

async fn room_with(api: &Api, u: &User, count: usize) -> String {
    let room = api.public_room(u, "hist").await;
    for i in 1..=count {
        api.say(u, &room, &format!("m{i}")).await;
    }
    room
}

#[actix_rt::test]
async fn history_of_an_empty_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "empty").await;
    for q in ["", "limit=10", "before=1", "after=0", "after=5"] {
        let h = api.history(&a, &room, q).await;
        assert_keys(&h, &["messages", "has_more"]);
        assert_eq!(h, json!({"messages": [], "has_more": false}), "?{q}");
    }
}

#[actix_rt::test]
async fn history_latest_before_and_after() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = room_with(&api, &a, 5).await;
    let cases: &[(&str, &[u64], bool)] = &[
        ("", &[1, 2, 3, 4, 5], false),
        ("limit=5", &[1, 2, 3, 4, 5], false),
        ("limit=100", &[1, 2, 3, 4, 5], false),
        ("limit=2", &[4, 5], true),
        ("limit=4", &[2, 3, 4, 5], true),
        ("limit=1", &[5], true),
        ("before=4&limit=2", &[2, 3], true),
        ("before=3&limit=2", &[1, 2], false),
        ("before=2&limit=2", &[1], false),
        ("before=1&limit=2", &[], false),
        ("before=6", &[1, 2, 3, 4, 5], false),
        ("before=100&limit=2", &[4, 5], true),
        ("after=0&limit=2", &[1, 2], true),
        ("after=1&limit=2", &[2, 3], true),
        ("after=3&limit=2", &[4, 5], false),
        ("after=4", &[5], false),
        ("after=5", &[], false),
        ("after=50", &[], false),
        ("after=0", &[1, 2, 3, 4, 5], false),
    ];
    for (q, want, more) in cases {
        let h = api.history(&a, &room, q).await;
        assert_eq!(Api::seqs(&h), want.to_vec(), "?{q}: {h}");
        assert_eq!(h["has_more"], *more, "has_more of ?{q}");
        for m in h["messages"].as_array().unwrap() {
            assert_message(m);
            assert_eq!(m["content"], format!("m{}", m["seq"]).as_str());
        }
    }
}

#[actix_rt::test]
async fn history_walks_back_and_forth_without_gaps() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = room_with(&api, &a, 23).await;
    // Backwards from the latest page.
    let mut seen = Vec::new();
    let mut h = api.history(&a, &room, "limit=5").await;
    loop {
        let page = Api::seqs(&h);
        assert!(page.windows(2).all(|w| w[0] < w[1]), "ascending: {page:?}");
        seen.splice(0..0, page.iter().copied());
        if h["has_more"] == false {
            break;
        }
        let first = page[0];
        h = api
            .history(&a, &room, &format!("before={first}&limit=5"))
            .await;
    }
    assert_eq!(seen, (1..=23).collect::<Vec<u64>>());
    // Forwards from the start (catch-up).
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let h = api
            .history(&a, &room, &format!("after={after}&limit=7"))
            .await;
        let page = Api::seqs(&h);
        seen.extend(page.iter().copied());
        if h["has_more"] == false {
            break;
        }
        after = *page.last().unwrap();
    }
    assert_eq!(seen, (1..=23).collect::<Vec<u64>>());
    let unique: BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), 23);
}

#[actix_rt::test]
async fn history_limits_at_100_and_defaults_to_50() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = room_with(&api, &a, 101).await;
    let h = api.history(&a, &room, "").await;
    assert_eq!(Api::seqs(&h), (52..=101).collect::<Vec<u64>>());
    assert_eq!(h["has_more"], true);
    let h = api.history(&a, &room, "limit=100").await;
    assert_eq!(Api::seqs(&h), (2..=101).collect::<Vec<u64>>());
    assert_eq!(h["has_more"], true);
    let h = api.history(&a, &room, "after=1&limit=100").await;
    assert_eq!(Api::seqs(&h), (2..=101).collect::<Vec<u64>>());
    assert_eq!(h["has_more"], false);
}

#[actix_rt::test]
async fn history_validates_its_query() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = room_with(&api, &a, 3).await;
    let get = |q: String| {
        let uri = format!("{}?{q}", msgs(&room));
        let token = a.token.clone();
        let api = &api;
        async move { api.get(&uri, &token).await }
    };
    for l in ["0", "101", "abc", "-1", "1.5"] {
        assert_only_field(&get(format!("limit={l}")).await, "limit");
    }
    for b in ["abc", "-1", "1.5"] {
        assert_only_field(&get(format!("before={b}")).await, "before");
        assert_only_field(&get(format!("after={b}")).await, "after");
    }
    let r = get("before=3&after=1".into()).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    let f = r.1["fields"].as_object().unwrap();
    assert!(
        f.contains_key("before") || f.contains_key("after"),
        "{}",
        r.1
    );
    let r = get("limit=0&before=x".into()).await;
    assert_fields(&r, &["limit", "before"]);
}

#[actix_rt::test]
async fn history_is_for_members_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let public = room_with(&api, &a, 2).await;
    let private = api.private_room(&a, "priv", &[]).await;
    let dm = api.dm(&a, &b).await;
    assert_error(
        &api.get(&msgs(&public), &c.token).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_not_found(&api.get(&msgs(&private), &c.token).await);
    assert_not_found(&api.get(&msgs(&dm), &c.token).await);
    assert_not_found(&api.get(&msgs(&unknown_id()), &c.token).await);
    assert_only_field(&api.get(&msgs("x"), &c.token).await, "id");
    // A join opens the public room's history, earlier messages included.
    api.join(&c, &public).await;
    assert_eq!(Api::seqs(&api.history(&c, &public, "").await), vec![1, 2]);
}

#[actix_rt::test]
async fn history_shows_senders_without_emails() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    api.say(&b, &room, "from bob").await;
    let h = api.history(&a, &room, "").await;
    assert_eq!(h["messages"][0]["sender"]["id"], b.id.as_str());
    assert_eq!(h["messages"][0]["sender"]["username"], "bob");
    assert_no_email(&h, &b.email);
}

// ------------------------------------------------------------ read

#[actix_rt::test]
async fn read_markers_move_forward_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    for i in 1..=4 {
        api.say(&a, &room, &format!("m{i}")).await;
    }
    let v = api.version(&a, &room).await;
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 4);
    let r = api.post(&read(&room), &b.token, json!({"seq": 3})).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null());
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 1);
    // Older, or the same: accepted and ignored.
    for seq in [1, 3, 0] {
        let r = api.post(&read(&room), &b.token, json!({"seq": seq})).await;
        assert_status(&r, StatusCode::NO_CONTENT);
        assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 1);
    }
    // Up to last_seq is fine; past it is 400.
    let r = api.post(&read(&room), &b.token, json!({"seq": 5})).await;
    assert_only_field(&r, "seq");
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 1);
    let r = api.post(&read(&room), &b.token, json!({"seq": 4})).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 0);
    // Read markers are not counted in the room's version.
    assert_eq!(api.version(&a, &room).await, v);
    // New messages are unread again.
    api.say(&a, &room, "m5").await;
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 1);
}

#[actix_rt::test]
async fn read_in_an_empty_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let r = api.post(&read(&room), &a.token, json!({"seq": 0})).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = api.post(&read(&room), &a.token, json!({"seq": 1})).await;
    assert_only_field(&r, "seq");
}

#[actix_rt::test]
async fn read_validates_and_is_for_members_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = room_with(&api, &a, 2).await;
    for seq in [json!(-1), json!("1"), json!("abc"), json!(1.5), json!(null)] {
        let r = api.post(&read(&room), &a.token, json!({"seq": seq})).await;
        assert_only_field(&r, "seq");
    }
    assert_only_field(&api.post(&read(&room), &a.token, json!({})).await, "seq");
    let r = api
        .post(&read(&room), &a.token, json!({"seq": u64::MAX}))
        .await;
    assert_only_field(&r, "seq");
    let body = json!({"seq": 1});
    assert_error(
        &api.post(&read(&room), &c.token, body.clone()).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    let private = api.private_room(&a, "priv", &[]).await;
    assert_not_found(&api.post(&read(&private), &c.token, json!({"seq": 0})).await);
    let dm = api.dm(&a, &b).await;
    assert_not_found(&api.post(&read(&dm), &c.token, json!({"seq": 0})).await);
    assert_not_found(&api.post(&read(&unknown_id()), &c.token, body.clone()).await);
    assert_only_field(&api.post(&read("x"), &c.token, body).await, "id");
}
