//! Editing and deleting messages, and replies to edited or deleted ones.

use actix_web::http::StatusCode;

use crate::support::*;

fn msg(id: &Value) -> String {
    format!("/api/v1/messages/{}", s(id))
}

fn msgs(room: &str) -> String {
    format!("/api/v1/rooms/{room}/messages")
}

// ------------------------------------------------------------ edit

#[actix_rt::test]
async fn the_sender_edits_a_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let m = api.say(&a, &room, "hello wrold").await;
    api.say(&b, &room, "after").await;
    let v0 = api.version(&a, &room).await;
    let r = api
        .patch(
            &msg(&m["id"]),
            &a.token,
            json!({"content": "  hello world  "}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    let e = r.1;
    assert_message(&e);
    assert_eq!(e["id"], m["id"]);
    assert_eq!(e["seq"], m["seq"]);
    assert_eq!(e["room_id"], m["room_id"]);
    assert_eq!(e["sender"], m["sender"]);
    assert_eq!(e["kind"], "text");
    assert_eq!(e["created_at"], m["created_at"]);
    assert_eq!(e["content"], "hello world", "kept trimmed");
    assert_eq!(e["deleted"], false);
    assert_timestamp(&e["edited_at"]);
    // One change, and the room's last seq stays.
    let room_now = api.room(&a, &room).await;
    assert_eq!(n(&room_now["version"]), v0 + 1);
    assert_eq!(room_now["last_seq"], 2);
    // Everyone reads the edited text.
    assert_eq!(api.message(&b, &room, &m["id"]).await, e);
    // Editing again moves edited_at no earlier and counts again.
    let r = api
        .patch(&msg(&m["id"]), &a.token, json!({"content": "hello, world"}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["content"], "hello, world");
    assert!(s(&r.1["edited_at"]) >= s(&e["edited_at"]), "{}", r.1);
    assert_eq!(api.version(&a, &room).await, v0 + 2);
}

#[actix_rt::test]
async fn only_the_sender_edits() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let m = api.say(&b, &room, "bob's words").await;
    let v0 = api.version(&a, &room).await;
    // Not even the room's owner.
    let r = api
        .patch(
            &msg(&m["id"]),
            &a.token,
            json!({"content": "alice's words"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.message(&a, &room, &m["id"]).await, m);
    assert_eq!(api.version(&a, &room).await, v0);
}

#[actix_rt::test]
async fn outsiders_cannot_edit() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let c = api.user("carol").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let public = api.public_room(&a, "pub").await;
    let hidden = api.say(&a, &private, "hidden").await;
    let open = api.say(&a, &public, "open").await;
    let (vp, vo) = (
        api.version(&a, &private).await,
        api.version(&a, &public).await,
    );
    let r = api
        .patch(&msg(&hidden["id"]), &c.token, json!({"content": "x"}))
        .await;
    assert_not_found(&r);
    let r = api
        .patch(&msg(&open["id"]), &c.token, json!({"content": "x"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    assert_eq!(api.message(&a, &private, &hidden["id"]).await, hidden);
    assert_eq!(api.message(&a, &public, &open["id"]).await, open);
    assert_eq!(api.version(&a, &private).await, vp);
    assert_eq!(api.version(&a, &public).await, vo);
}

#[actix_rt::test]
async fn a_sender_who_left_cannot_edit() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[&b]).await;
    api.join(&b, &public).await;
    let open = api.say(&b, &public, "open").await;
    let hidden = api.say(&b, &private, "hidden").await;
    api.leave(&b, &public).await;
    api.leave(&b, &private).await;
    let r = api
        .patch(&msg(&open["id"]), &b.token, json!({"content": "x"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    let r = api
        .patch(&msg(&hidden["id"]), &b.token, json!({"content": "x"}))
        .await;
    assert_not_found(&r);
    assert_eq!(api.message(&a, &public, &open["id"]).await, open);
    assert_eq!(api.message(&a, &private, &hidden["id"]).await, hidden);
}

#[actix_rt::test]
async fn a_deleted_or_unknown_message_cannot_be_edited() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let m = api.say(&a, &room, "soon gone").await;
    assert_status(
        &api.delete(&msg(&m["id"]), &a.token).await,
        StatusCode::NO_CONTENT,
    );
    let v0 = api.version(&a, &room).await;
    let r = api
        .patch(&msg(&m["id"]), &a.token, json!({"content": "back"}))
        .await;
    assert_not_found(&r);
    let gone = api.message(&a, &room, &m["id"]).await;
    assert_eq!(gone["deleted"], true);
    assert_eq!(gone["content"], "");
    assert_eq!(api.version(&a, &room).await, v0);
    let r = api
        .patch(
            &msg(&json!(unknown_id())),
            &a.token,
            json!({"content": "x"}),
        )
        .await;
    assert_not_found(&r);
}

#[actix_rt::test]
async fn edit_validates_content_and_id() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let m = api.say(&a, &room, "original").await;
    let v0 = api.version(&a, &room).await;
    for bad in [
        json!({"content": ""}),
        json!({"content": "   \n\t "}),
        json!({"content": "x".repeat(4001)}),
        json!({"content": "nul \u{0} inside"}),
        json!({"content": 5}),
        json!({"content": null}),
        json!({}),
    ] {
        let r = api.patch(&msg(&m["id"]), &a.token, bad.clone()).await;
        assert_only_field(&r, "content");
    }
    // 4000 characters exactly is fine (counted as characters, not bytes).
    let long = "é".repeat(4000);
    let r = api
        .patch(&msg(&m["id"]), &a.token, json!({"content": long}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["content"], long.as_str());
    assert_eq!(api.version(&a, &room).await, v0 + 1);
    let m = r.1;
    // Not a UUID.
    let r = api
        .patch(
            "/api/v1/messages/not-a-uuid",
            &a.token,
            json!({"content": "x"}),
        )
        .await;
    assert_only_field(&r, "id");
    // Not JSON.
    let r = api
        .call_raw(
            actix_web::http::Method::PATCH,
            &msg(&m["id"]),
            Some(&a.token),
            b"{\"content\": ",
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_json");
    // Without a token.
    let r = api
        .anon(
            actix_web::http::Method::PATCH,
            &msg(&m["id"]),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_unauthorized(&r);
    assert_eq!(api.message(&a, &room, &m["id"]).await, m);
    assert_eq!(api.version(&a, &room).await, v0 + 1);
}

#[actix_rt::test]
async fn a_system_message_cannot_be_edited() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let r = api
        .delete(&format!("/api/v1/rooms/{room}/members/{}", b.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let h = api.history(&a, &room, "").await;
    let system = arr(&h["messages"])
        .iter()
        .find(|m| m["kind"] == "system")
        .cloned()
        .unwrap_or_else(|| panic!("no system message after a kick: {h}"));
    assert_eq!(system["sender"]["id"], a.id.as_str(), "sent by who acted");
    let v0 = api.version(&a, &room).await;
    let r = api
        .patch(
            &msg(&system["id"]),
            &a.token,
            json!({"content": "rewritten"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.message(&a, &room, &system["id"]).await, system);
    assert_eq!(api.version(&a, &room).await, v0);
}

#[actix_rt::test]
async fn a_blocked_sender_cannot_edit_in_a_direct_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    let m = api.say(&a, &dm, "hi bob").await;
    let r = api
        .put(&format!("/api/v1/users/{}/block", a.id), &b.token, None)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let v0 = api.version(&a, &dm).await;
    let r = api
        .patch(&msg(&m["id"]), &a.token, json!({"content": "changed"}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "blocked");
    assert_eq!(api.message(&a, &dm, &m["id"]).await, m);
    assert_eq!(api.version(&a, &dm).await, v0);
}

// ------------------------------------------------------------ delete

#[actix_rt::test]
async fn the_sender_deletes_a_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let png = api.upload(&b, "cat.png", "image/png", PNG).await;
    let (st, m) = api
        .post(
            &msgs(&room),
            &b.token,
            json!({"content": "look", "attachment_id": png["id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let after = api.say(&a, &room, "nice").await;
    let r = api
        .put(
            &format!("{}/reactions/%F0%9F%91%8D", msg(&m["id"])),
            &a.token,
            None,
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let v0 = api.version(&a, &room).await;
    let r = api.delete(&msg(&m["id"]), &b.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(r.1, Value::Null, "204 has no body");
    let room_now = api.room(&a, &room).await;
    assert_eq!(n(&room_now["version"]), v0 + 1);
    assert_eq!(room_now["last_seq"], after["seq"], "seqs stay");
    for viewer in [&a, &b] {
        let h = api.history(viewer, &room, "").await;
        assert_eq!(Api::seqs(&h), vec![1, 2], "the tombstone keeps its place");
        let gone = &h["messages"][0];
        assert_message(gone);
        assert_eq!(gone["id"], m["id"]);
        assert_eq!(gone["seq"], m["seq"]);
        assert_eq!(gone["deleted"], true);
        assert_eq!(gone["content"], "");
        assert!(gone.get("attachment").is_none_or(Value::is_null), "{gone}");
        assert_eq!(gone["reactions"], json!([]));
        assert_eq!(h["messages"][1], after);
    }
}

#[actix_rt::test]
async fn room_admins_and_owners_delete_anyone_s_message() {
    let api = Api::new().await;
    let owner = api.user("alice").await;
    let admin = api.user("bob").await;
    let member = api.user("carol").await;
    let room = api.public_room(&owner, "pub").await;
    api.join(&admin, &room).await;
    api.join(&member, &room).await;
    api.set_role(&owner, &room, &admin, "admin").await;
    let m1 = api.say(&member, &room, "one").await;
    let m2 = api.say(&member, &room, "two").await;
    let m3 = api.say(&admin, &room, "three").await;
    for (by, m) in [(&admin, &m1), (&owner, &m2), (&owner, &m3)] {
        let v0 = api.version(&owner, &room).await;
        let r = api.delete(&msg(&m["id"]), &by.token).await;
        assert_status(&r, StatusCode::NO_CONTENT);
        assert_eq!(api.version(&owner, &room).await, v0 + 1);
        assert_eq!(api.message(&member, &room, &m["id"]).await["deleted"], true);
    }
}

#[actix_rt::test]
async fn a_plain_member_cannot_delete_another_s_message() {
    let api = Api::new().await;
    let owner = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.public_room(&owner, "pub").await;
    api.join(&b, &room).await;
    api.join(&c, &room).await;
    let by_c = api.say(&c, &room, "carol's").await;
    let by_owner = api.say(&owner, &room, "owner's").await;
    let v0 = api.version(&owner, &room).await;
    for m in [&by_c, &by_owner] {
        let r = api.delete(&msg(&m["id"]), &b.token).await;
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(api.message(&owner, &room, &m["id"]).await, *m);
    }
    // The owner of another room is nobody special here.
    let elsewhere = api.public_room(&b, "bob's").await;
    assert!(api.role_of(&b, &elsewhere, &b).await.is_some());
    let r = api.delete(&msg(&by_c["id"]), &b.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.version(&owner, &room).await, v0);
}

#[actix_rt::test]
async fn outsiders_cannot_delete() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let c = api.user("carol").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let public = api.public_room(&a, "pub").await;
    let hidden = api.say(&a, &private, "hidden").await;
    let open = api.say(&a, &public, "open").await;
    let (vp, vo) = (
        api.version(&a, &private).await,
        api.version(&a, &public).await,
    );
    assert_not_found(&api.delete(&msg(&hidden["id"]), &c.token).await);
    assert_error(
        &api.delete(&msg(&open["id"]), &c.token).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_eq!(api.message(&a, &private, &hidden["id"]).await, hidden);
    assert_eq!(api.message(&a, &public, &open["id"]).await, open);
    assert_eq!(api.version(&a, &private).await, vp);
    assert_eq!(api.version(&a, &public).await, vo);
}

#[actix_rt::test]
async fn a_global_admin_deletes_without_reading() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let root = api.user("root").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let m = api.say(&a, &private, "something awful").await;
    let v0 = api.version(&a, &private).await;
    let r = api.delete(&msg(&m["id"]), &root.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(api.version(&a, &private).await, v0 + 1);
    let gone = api.message(&a, &private, &m["id"]).await;
    assert_eq!(gone["deleted"], true);
    assert_eq!(gone["content"], "");
    // Deleting is not reading.
    let r = api
        .get(&format!("/api/v1/rooms/{private}/messages"), &root.token)
        .await;
    assert_not_found(&r);
    let r = api
        .get(&format!("/api/v1/rooms/{private}"), &root.token)
        .await;
    assert_not_found(&r);
    // Nor editing.
    let m2 = api.say(&a, &private, "more").await;
    let r = api
        .patch(&msg(&m2["id"]), &root.token, json!({"content": "x"}))
        .await;
    assert_not_found(&r);
}

#[actix_rt::test]
async fn deleting_twice_changes_nothing_more() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let m = api.say(&a, &room, "once").await;
    assert_status(
        &api.delete(&msg(&m["id"]), &a.token).await,
        StatusCode::NO_CONTENT,
    );
    let v1 = api.version(&a, &room).await;
    let gone = api.message(&a, &room, &m["id"]).await;
    assert_status(
        &api.delete(&msg(&m["id"]), &a.token).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v1);
    assert_eq!(api.message(&a, &room, &m["id"]).await, gone);
}

#[actix_rt::test]
async fn delete_of_an_unknown_or_malformed_id() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    assert_not_found(&api.delete(&msg(&json!(unknown_id())), &a.token).await);
    assert_only_field(&api.delete("/api/v1/messages/12345", &a.token).await, "id");
    let r = api
        .anon(
            actix_web::http::Method::DELETE,
            &msg(&json!(unknown_id())),
            None,
        )
        .await;
    assert_unauthorized(&r);
}

// ------------------------------------------------------------ replies

#[actix_rt::test]
async fn a_reply_must_stay_in_its_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let other = api.public_room(&a, "other").await;
    let elsewhere = api.say(&a, &other, "elsewhere").await;
    let v0 = api.version(&a, &room).await;
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
            json!({"content": "x", "reply_to_id": "not-a-uuid"}),
        )
        .await;
    assert_only_field(&r, "reply_to_id");
    let room_now = api.room(&a, &room).await;
    assert_eq!(room_now["last_seq"], 0);
    assert_eq!(n(&room_now["version"]), v0);
}

#[actix_rt::test]
async fn a_reply_may_name_a_deleted_or_edited_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let gone = api.say(&a, &room, "regret").await;
    let edited = api.say(&a, &room, "typo").await;
    assert_status(
        &api.delete(&msg(&gone["id"]), &a.token).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &api.patch(&msg(&edited["id"]), &a.token, json!({"content": "fixed"}))
            .await,
        StatusCode::OK,
    );
    for target in [&gone, &edited] {
        let r = api
            .post(
                &msgs(&room),
                &b.token,
                json!({"content": "replying", "reply_to_id": target["id"]}),
            )
            .await;
        assert_status(&r, StatusCode::CREATED);
        assert_eq!(r.1["reply_to_id"], target["id"]);
    }
    // Both replies are in the history, pointing where they were sent.
    let h = api.history(&b, &room, "").await;
    assert_eq!(Api::seqs(&h), vec![1, 2, 3, 4]);
    assert_eq!(h["messages"][2]["reply_to_id"], gone["id"]);
}

// ------------------------------------------------------------ resume

#[actix_rt::test]
async fn changes_carry_edits_deletes_and_reactions() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let untouched = api.say(&a, &room, "untouched").await;
    let edited = api.say(&a, &room, "to edit").await;
    let reacted = api.say(&b, &room, "to react to").await;
    let deleted = api.say(&b, &room, "to delete").await;
    let v0 = api.version(&a, &room).await;
    let r = api
        .patch(&msg(&edited["id"]), &a.token, json!({"content": "edited"}))
        .await;
    assert_status(&r, StatusCode::OK);
    let r = api
        .put(
            &format!("{}/reactions/:tada:", msg(&reacted["id"])),
            &a.token,
            None,
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(
        &api.delete(&msg(&deleted["id"]), &b.token).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 3);
    for (since, want) in [
        (v0, vec![&edited, &reacted, &deleted]),
        (v0 + 1, vec![&reacted, &deleted]),
        (v0 + 2, vec![&deleted]),
        (v0 + 3, vec![]),
    ] {
        for u in [&a, &b] {
            let (st, c) = api
                .get(
                    &format!("/api/v1/rooms/{room}/changes?since={since}"),
                    &u.token,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{c}");
            assert_eq!(n(&c["version"]), v0 + 3);
            let got: Vec<&Value> = arr(&c["messages"]).iter().collect();
            let ids: Vec<&Value> = got.iter().map(|m| &m["id"]).collect();
            let want_ids: Vec<&Value> = want.iter().map(|m| &m["id"]).collect();
            assert_eq!(ids, want_ids, "since {since}");
            assert!(!ids.contains(&&untouched["id"]));
            // Each as a fresh read shows it to this viewer.
            for m in got {
                assert_eq!(*m, api.message(u, &room, &m["id"]).await, "since {since}");
            }
        }
    }
}
