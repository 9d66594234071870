//! Rooms: create, directory, my rooms, get, patch, delete, join, leave.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;

use crate::support::*;

// ------------------------------------------------------------ create

#[actix_rt::test]
async fn create_a_public_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api
        .post("/api/v1/rooms", &a.token, json!({"name": "General"}))
        .await;
    assert_status(&r, StatusCode::CREATED);
    let room = r.1;
    assert_room(&room);
    assert_eq!(room["kind"], "public", "kind defaults to public");
    assert_eq!(room["name"], "General");
    assert_eq!(room["description"], "");
    assert_eq!(room["created_by"], a.id.as_str());
    assert_eq!(room["member_count"], 1);
    assert_eq!(room["last_seq"], 0);
    assert_eq!(room["version"], 1);
    // The creator is the owner, and creating writes no message.
    let id = s(&room["id"]);
    assert_eq!(
        api.roles(&a, &id).await,
        vec![(a.id.clone(), "owner".to_owned())]
    );
    let h = api.history(&a, &id, "").await;
    assert_eq!(h, json!({"messages": [], "has_more": false}));
    // GET answers the same room.
    assert_eq!(api.room(&a, &id).await, room);
}

#[actix_rt::test]
async fn create_a_private_group_with_members() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let r = api
        .post(
            "/api/v1/rooms",
            &a.token,
            json!({"name": "Group", "description": "just us", "kind": "private", "member_ids": [b.id, c.id]}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_room(&r.1);
    assert_eq!(r.1["kind"], "private");
    assert_eq!(r.1["description"], "just us");
    assert_eq!(r.1["member_count"], 3);
    assert_eq!(
        r.1["version"], 1,
        "a new room with its first members is at version 1"
    );
    assert_eq!(r.1["last_seq"], 0);
    let id = s(&r.1["id"]);
    let roles = api.roles(&b, &id).await;
    assert_eq!(roles.len(), 3);
    assert!(roles.contains(&(a.id.clone(), "owner".into())));
    assert!(roles.contains(&(b.id.clone(), "member".into())));
    assert!(roles.contains(&(c.id.clone(), "member".into())));
    // Members see it; the history is empty.
    assert_eq!(api.history(&c, &id, "").await["messages"], json!([]));
}

#[actix_rt::test]
async fn create_with_yourself_or_duplicates_in_member_ids() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let r = api
        .post(
            "/api/v1/rooms",
            &a.token,
            json!({"name": "g", "kind": "private", "member_ids": [b.id, b.id, a.id]}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(r.1["member_count"], 2);
    let roles = api.roles(&a, &s(&r.1["id"])).await;
    assert!(roles.contains(&(a.id.clone(), "owner".into())), "{roles:?}");
}

#[actix_rt::test]
async fn create_validates() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"description": "x"}), "name"),
        (
            json!({"name": "ok", "description": "d".repeat(1001)}),
            "description",
        ),
        (json!({"name": "ok", "description": 1}), "description"),
        (json!({"name": "ok", "kind": "bogus"}), "kind"),
        (json!({"name": "ok", "kind": "direct"}), "kind"),
        (json!({"name": "ok", "kind": 1}), "kind"),
        (json!({"name": "ok", "member_ids": "x"}), "member_ids"),
        (
            json!({"name": "ok", "member_ids": [unknown_id()]}),
            "member_ids",
        ),
    ];
    for (body, field) in cases {
        let r = api.post("/api/v1/rooms", &a.token, body.clone()).await;
        assert_only_field(&r, field);
    }
    // A member id that is not a UUID is named under member_ids.
    let r = api
        .post(
            "/api/v1/rooms",
            &a.token,
            json!({"name": "ok", "member_ids": ["nope"]}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "validation");
    let fields = r.1["fields"].as_object().unwrap();
    assert!(
        fields.keys().any(|k| k.starts_with("member_ids")),
        "fields: {}",
        r.1
    );
    // Both bad at once.
    let r = api
        .post(
            "/api/v1/rooms",
            &a.token,
            json!({"name": "", "description": "d".repeat(1001)}),
        )
        .await;
    assert_fields(&r, &["name", "description"]);
    // Nothing was created.
    let mine = api.walk(&a.token, "/api/v1/users/me/rooms", 100).await;
    assert!(mine.is_empty(), "{mine:?}");
}

#[actix_rt::test]
async fn create_boundaries_are_accepted() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api
        .create_room(
            &a,
            json!({"name": "é".repeat(100), "description": "d".repeat(1000)}),
        )
        .await;
    assert_eq!(room["name"], "é".repeat(100).as_str());
    let room = api
        .create_room(&a, json!({"name": "x", "kind": "public"}))
        .await;
    assert_eq!(room["kind"], "public");
    // Names need not be unique.
    let again = api.create_room(&a, json!({"name": "x"})).await;
    assert_ne!(again["id"], room["id"]);
}

// ------------------------------------------------------------ directory

#[actix_rt::test]
async fn directory_lists_public_rooms_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let general = api.public_room(&a, "General").await;
    let random = api.public_room(&a, "random talk").await;
    let _secret = api.private_room(&a, "General secret", &[]).await;
    let _dm = api.dm(&a, &b).await;
    let items = api.walk(&b.token, "/api/v1/rooms", 50).await;
    let ids: BTreeSet<String> = items.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(ids, [general.clone(), random.clone()].into_iter().collect());
    for r in &items {
        assert_room(r);
        assert_eq!(r["kind"], "public");
    }
    // q: a case-insensitive substring of the name.
    for q in ["ener", "ENER", "General"] {
        let items = api
            .walk(&b.token, &format!("/api/v1/rooms?q={q}"), 50)
            .await;
        let ids: Vec<String> = items.iter().map(|r| s(&r["id"])).collect();
        assert_eq!(ids, vec![general.clone()], "q={q}");
    }
    let items = api.walk(&b.token, "/api/v1/rooms?q=TALK", 50).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], random.as_str());
    let items = api.walk(&b.token, "/api/v1/rooms?q=zzz", 50).await;
    assert!(items.is_empty());
    // A deleted room leaves the directory.
    api.delete(&format!("/api/v1/rooms/{random}"), &a.token)
        .await;
    let items = api.walk(&b.token, "/api/v1/rooms", 50).await;
    assert_eq!(items.len(), 1);
}

#[actix_rt::test]
async fn directory_pages_walk_without_gaps_or_duplicates() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let mut want = BTreeSet::new();
    for i in 0..7 {
        want.insert(api.public_room(&a, &format!("room {i}")).await);
    }
    api.private_room(&a, "room hidden", &[]).await;
    let items = api.walk(&a.token, "/api/v1/rooms", 2).await;
    let got: Vec<String> = items.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    let items = api.walk(&a.token, "/api/v1/rooms?q=room", 3).await;
    assert_eq!(items.len(), 7);
    for l in ["0", "101", "abc"] {
        let r = api.get(&format!("/api/v1/rooms?limit={l}"), &a.token).await;
        assert_only_field(&r, "limit");
    }
    let r = api.get("/api/v1/rooms?cursor=garbage", &a.token).await;
    assert_only_field(&r, "cursor");
    let r = api.get("/api/v1/rooms?limit=100", &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["items"].as_array().unwrap().len(), 7);
    assert_eq!(r.1["next_cursor"], Value::Null);
}

// ------------------------------------------------------------ my rooms

#[actix_rt::test]
async fn my_rooms_lists_every_room_i_am_in() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&b, "priv", &[&a]).await;
    let dm = api.dm(&b, &a).await;
    let notes = api.dm(&a, &a).await;
    let _not_mine = api.public_room(&b, "bob's").await;
    let items = api.walk(&a.token, "/api/v1/users/me/rooms", 50).await;
    let ids: BTreeSet<String> = items.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(
        ids,
        [public.clone(), private.clone(), dm.clone(), notes.clone()]
            .into_iter()
            .collect()
    );
    for r in &items {
        assert_my_room(r);
        assert_eq!(r["unread_count"], 0);
        assert_eq!(r["last_message"], Value::Null);
        let role = &r["my_role"];
        if r["id"] == public.as_str() {
            assert_eq!(role, "owner");
        } else {
            assert_eq!(role, "member");
        }
    }
    // A room I left is no longer mine.
    api.leave(&a, &private).await;
    let items = api.walk(&a.token, "/api/v1/users/me/rooms", 50).await;
    assert!(!items.iter().any(|r| r["id"] == private.as_str()));
}

#[actix_rt::test]
async fn my_rooms_are_ordered_by_newest_activity() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let r1 = api.public_room(&a, "one").await;
    let r2 = api.public_room(&a, "two").await;
    let r3 = api.public_room(&a, "three").await;
    let order = |items: Vec<Value>| -> Vec<String> { items.iter().map(|r| s(&r["id"])).collect() };
    assert_eq!(
        order(api.walk(&a.token, "/api/v1/users/me/rooms", 50).await),
        vec![r3.clone(), r2.clone(), r1.clone()],
        "newest room first"
    );
    api.say(&a, &r1, "wake up").await;
    assert_eq!(
        order(api.walk(&a.token, "/api/v1/users/me/rooms", 50).await),
        vec![r1.clone(), r3.clone(), r2.clone()]
    );
    // Someone else's message counts as activity too.
    api.join(&b, &r2).await;
    api.say(&b, &r2, "hi").await;
    let items = api.walk(&a.token, "/api/v1/users/me/rooms", 50).await;
    assert_eq!(
        order(items.clone()),
        vec![r2.clone(), r1.clone(), r3.clone()]
    );
    // The same order page by page.
    assert_eq!(
        order(api.walk(&a.token, "/api/v1/users/me/rooms", 1).await),
        vec![r2, r1, r3]
    );
}

#[actix_rt::test]
async fn my_rooms_have_unread_count_and_last_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "chat").await;
    api.join(&b, &room).await;
    for t in ["one", "two", "three"] {
        api.say(&b, &room, t).await;
    }
    let mine = api.my_room(&a, &room).await.unwrap();
    assert_my_room(&mine);
    assert_eq!(mine["unread_count"], 3);
    assert_eq!(mine["last_message"]["content"], "three");
    assert_eq!(mine["last_message"]["seq"], 3);
    assert_eq!(mine["last_seq"], 3);
    assert_no_email(&mine, &b.email);
    // My own messages are not unread for me.
    api.say(&a, &room, "four").await;
    let mine = api.my_room(&a, &room).await.unwrap();
    assert_eq!(mine["unread_count"], 3);
    assert_eq!(mine["last_message"]["content"], "four");
    assert_eq!(mine["last_message"]["sender"]["id"], a.id.as_str());
    // Bob has one unread: mine.
    assert_eq!(api.my_room(&b, &room).await.unwrap()["unread_count"], 1);
    // Reading moves the marker.
    let read = |seq: u64| json!({"seq": seq});
    let r = api
        .post(&format!("/api/v1/rooms/{room}/read"), &a.token, read(2))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(api.my_room(&a, &room).await.unwrap()["unread_count"], 1);
    // An older seq is accepted and ignored.
    let r = api
        .post(&format!("/api/v1/rooms/{room}/read"), &a.token, read(1))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(api.my_room(&a, &room).await.unwrap()["unread_count"], 1);
    let r = api
        .post(&format!("/api/v1/rooms/{room}/read"), &a.token, read(4))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(api.my_room(&a, &room).await.unwrap()["unread_count"], 0);
}

#[actix_rt::test]
async fn my_rooms_page_and_validate() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let mut want = BTreeSet::new();
    for i in 0..5 {
        want.insert(api.public_room(&a, &format!("r{i}")).await);
    }
    let items = api.walk(&a.token, "/api/v1/users/me/rooms", 2).await;
    let got: Vec<String> = items.iter().map(|r| s(&r["id"])).collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
    for l in ["0", "101", "abc"] {
        let r = api
            .get(&format!("/api/v1/users/me/rooms?limit={l}"), &a.token)
            .await;
        assert_only_field(&r, "limit");
    }
    let r = api
        .get("/api/v1/users/me/rooms?cursor=garbage", &a.token)
        .await;
    assert_only_field(&r, "cursor");
}

// ------------------------------------------------------------ get

#[actix_rt::test]
async fn get_room_visibility() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[&b]).await;
    let dm = api.dm(&a, &b).await;
    // A public room is visible to anyone signed in.
    let r = api.get(&format!("/api/v1/rooms/{public}"), &c.token).await;
    assert_status(&r, StatusCode::OK);
    assert_room(&r.1);
    // Private and direct rooms: members only, 404 to anyone else.
    assert_eq!(api.room(&b, &private).await["kind"], "private");
    assert_eq!(api.room(&b, &dm).await["kind"], "direct");
    assert_not_found(&api.get(&format!("/api/v1/rooms/{private}"), &c.token).await);
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}"), &c.token).await);
    // Unknown and malformed ids.
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{}", unknown_id()), &c.token)
            .await,
    );
    assert_only_field(&api.get("/api/v1/rooms/not-a-uuid", &c.token).await, "id");
}

// ------------------------------------------------------------ patch

#[actix_rt::test]
async fn patch_room_by_owner_or_admin() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.public_room(&a, "old").await;
    api.join(&b, &room).await;
    api.join(&c, &room).await;
    api.set_role(&a, &room, &b, "admin").await;
    let v = api.version(&a, &room).await;
    let r = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &a.token,
            json!({"name": "new", "description": "about"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_room(&r.1);
    assert_eq!(r.1["name"], "new");
    assert_eq!(r.1["description"], "about");
    assert_eq!(
        n(&r.1["version"]),
        v + 1,
        "a room change raises the version by one"
    );
    assert_eq!(api.room(&c, &room).await["name"], "new");
    // An admin may too; only what is given changes.
    let r = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &b.token,
            json!({"description": "by admin"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["name"], "new");
    assert_eq!(r.1["description"], "by admin");
    assert_eq!(n(&r.1["version"]), v + 2);
    // A plain member may not.
    let r = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &c.token,
            json!({"name": "nope"}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(api.room(&a, &room).await["name"], "new");
}

#[actix_rt::test]
async fn patch_room_refuses_outsiders_and_bad_input() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let dm = api.dm(&a, &b).await;
    let body = json!({"name": "x"});
    let r = api
        .patch(&format!("/api/v1/rooms/{public}"), &c.token, body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    let r = api
        .patch(&format!("/api/v1/rooms/{private}"), &c.token, body.clone())
        .await;
    assert_not_found(&r);
    let r = api
        .patch(&format!("/api/v1/rooms/{dm}"), &c.token, body.clone())
        .await;
    assert_not_found(&r);
    // In a direct room both are plain members.
    let r = api
        .patch(&format!("/api/v1/rooms/{dm}"), &a.token, body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api
        .patch(
            &format!("/api/v1/rooms/{}", unknown_id()),
            &a.token,
            body.clone(),
        )
        .await;
    assert_not_found(&r);
    let r = api.patch("/api/v1/rooms/xyz", &a.token, body).await;
    assert_only_field(&r, "id");
    for (b, f) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(101)}), "name"),
        (json!({"name": 1}), "name"),
        (json!({"description": "d".repeat(1001)}), "description"),
        (json!({"description": false}), "description"),
    ] {
        let r = api
            .patch(&format!("/api/v1/rooms/{public}"), &a.token, b)
            .await;
        assert_only_field(&r, f);
    }
    assert_eq!(api.room(&a, &public).await["version"], 1);
}

// ------------------------------------------------------------ delete

#[actix_rt::test]
async fn delete_room_by_the_owner() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "doomed").await;
    api.join(&b, &room).await;
    api.say(&b, &room, "hello").await;
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &a.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null());
    // Gone, with its messages, for everyone.
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &a.token).await);
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &b.token).await);
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{room}/messages"), &b.token)
            .await,
    );
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{room}/members"), &b.token)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{room}/join"), &b.token)
            .await,
    );
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{room}/messages"),
            &b.token,
            json!({"content": "x"}),
        )
        .await,
    );
    assert_not_found(&api.delete(&format!("/api/v1/rooms/{room}"), &a.token).await);
    assert!(api.my_room(&b, &room).await.is_none());
}

#[actix_rt::test]
async fn delete_room_refused_to_others() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let d = api.user("dave").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    api.join(&c, &room).await;
    api.set_role(&a, &room, &b, "admin").await;
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &b.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &c.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // A signed-in outsider of a public room: 403 too.
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &d.token).await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    let private = api.private_room(&a, "priv", &[&b]).await;
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{private}"), &d.token)
            .await,
    );
    assert_error(
        &api.delete(&format!("/api/v1/rooms/{private}"), &b.token)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    // A direct room has no owner.
    let dm = api.dm(&a, &b).await;
    assert_error(
        &api.delete(&format!("/api/v1/rooms/{dm}"), &a.token).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_not_found(&api.delete(&format!("/api/v1/rooms/{dm}"), &d.token).await);
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{}", unknown_id()), &a.token)
            .await,
    );
    assert_only_field(&api.delete("/api/v1/rooms/zzz", &a.token).await, "id");
    // Still there.
    api.room(&c, &room).await;
    api.room(&b, &private).await;
    api.room(&b, &dm).await;
}

#[actix_rt::test]
async fn a_global_admin_deletes_any_room_but_reads_none_it_is_not_in() {
    let api = Api::new().await;
    let root = api.user("root").await;
    assert_eq!(
        api.get("/api/v1/users/me", &root.token).await.1["role"],
        "admin"
    );
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[&b]).await;
    let dm = api.dm(&a, &b).await;
    api.say(&a, &private, "secret").await;
    // Reading a room it is not in: as anyone else.
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{private}"), &root.token)
            .await,
    );
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{private}/messages"), &root.token)
            .await,
    );
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{private}/members"), &root.token)
            .await,
    );
    assert_not_found(&api.get(&format!("/api/v1/rooms/{dm}"), &root.token).await);
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{dm}/messages"), &root.token)
            .await,
    );
    assert_error(
        &api.get(&format!("/api/v1/rooms/{public}/messages"), &root.token)
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    // But deleting any of them works.
    for room in [&public, &private, &dm] {
        let r = api
            .delete(&format!("/api/v1/rooms/{room}"), &root.token)
            .await;
        assert_status(&r, StatusCode::NO_CONTENT);
        assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &a.token).await);
    }
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{}", unknown_id()), &root.token)
            .await,
    );
}

// ------------------------------------------------------------ join

#[actix_rt::test]
async fn join_a_public_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    let r = api
        .post_empty(&format!("/api/v1/rooms/{room}/join"), &b.token)
        .await;
    assert_status(&r, StatusCode::OK);
    assert_room(&r.1);
    assert_eq!(r.1["id"], room.as_str());
    assert_eq!(r.1["member_count"], 2);
    assert_eq!(
        r.1["version"], 2,
        "a join answers the room at its new version"
    );
    assert_eq!(r.1["last_seq"], 0, "joining writes no message");
    assert_eq!(api.room(&a, &room).await, r.1);
    assert_eq!(api.role_of(&a, &room, &b).await.as_deref(), Some("member"));
    // Joining twice changes nothing.
    let again = api
        .post_empty(&format!("/api/v1/rooms/{room}/join"), &b.token)
        .await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.1["version"], 2);
    assert_eq!(again.1["member_count"], 2);
    // The owner joining its own room changes nothing either.
    let own = api
        .post_empty(&format!("/api/v1/rooms/{room}/join"), &a.token)
        .await;
    assert_status(&own, StatusCode::OK);
    assert_eq!(own.1["version"], 2);
    assert_eq!(api.role_of(&a, &room, &a).await.as_deref(), Some("owner"));
}

#[actix_rt::test]
async fn join_is_for_public_rooms_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let dm = api.dm(&a, &b).await;
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{private}/join"), &c.token)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{dm}/join"), &c.token)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{}/join", unknown_id()), &c.token)
            .await,
    );
    assert_only_field(
        &api.post_empty("/api/v1/rooms/abc/join", &c.token).await,
        "id",
    );
    assert_eq!(api.room(&a, &private).await["member_count"], 1);
    assert_eq!(api.room(&a, &dm).await["member_count"], 2);
}

// ------------------------------------------------------------ leave

#[actix_rt::test]
async fn a_member_leaves() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let r = api
        .post_empty(&format!("/api/v1/rooms/{room}/leave"), &b.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let now = api.room(&a, &room).await;
    assert_eq!(now["member_count"], 1);
    assert_eq!(now["version"], 3, "a leave raises the version by one");
    assert_eq!(now["last_seq"], 0, "leaving writes no message");
    assert_eq!(api.role_of(&a, &room, &b).await, None);
    // Member-only endpoints now refuse Bob.
    assert_error(
        &api.get(&format!("/api/v1/rooms/{room}/messages"), &b.token)
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    // Leaving again answers as any member-only endpoint does.
    assert_error(
        &api.post_empty(&format!("/api/v1/rooms/{room}/leave"), &b.token)
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    // He can come back.
    assert_eq!(api.join(&b, &room).await["member_count"], 2);
}

#[actix_rt::test]
async fn leaving_a_room_you_are_not_in() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let dm = api.dm(&a, &b).await;
    assert_error(
        &api.post_empty(&format!("/api/v1/rooms/{public}/leave"), &c.token)
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{private}/leave"), &c.token)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{dm}/leave"), &c.token)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{}/leave", unknown_id()), &c.token)
            .await,
    );
    assert_only_field(
        &api.post_empty("/api/v1/rooms/nope/leave", &c.token).await,
        "id",
    );
    assert_eq!(api.room(&a, &public).await["version"], 1);
}

#[actix_rt::test]
async fn an_owner_leaving_hands_over_to_the_earliest_admin() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let d = api.user("dave").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    api.join(&c, &room).await;
    api.join(&d, &room).await;
    // Dave becomes admin first, but Carol joined before him.
    api.set_role(&a, &room, &d, "admin").await;
    api.set_role(&a, &room, &c, "admin").await;
    let before = api.room(&b, &room).await;
    api.leave(&a, &room).await;
    let after = api.room(&b, &room).await;
    assert_eq!(
        n(&after["version"]),
        n(&before["version"]) + 2,
        "an owner leaving is member:left plus member:updated"
    );
    assert_eq!(
        after["last_seq"], before["last_seq"],
        "no system message for a hand-over"
    );
    assert_eq!(after["member_count"], 3);
    let roles = api.roles(&b, &room).await;
    assert_eq!(
        api.role_of(&b, &room, &c).await.as_deref(),
        Some("owner"),
        "{roles:?}"
    );
    assert_eq!(api.role_of(&b, &room, &d).await.as_deref(), Some("admin"));
    assert_eq!(api.role_of(&b, &room, &b).await.as_deref(), Some("member"));
    assert_eq!(roles.iter().filter(|(_, r)| r == "owner").count(), 1);
    // The new owner can act as one.
    let r = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &c.token,
            json!({"name": "carol's"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    let r = api.delete(&format!("/api/v1/rooms/{room}"), &c.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
}

#[actix_rt::test]
async fn an_owner_leaving_without_admins_hands_over_to_the_earliest_member() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.private_room(&a, "priv", &[]).await;
    // Carol is added before Bob.
    for u in [&c, &b] {
        let r = api
            .post(
                &format!("/api/v1/rooms/{room}/members"),
                &a.token,
                json!({"user_id": u.id}),
            )
            .await;
        assert_status(&r, StatusCode::CREATED);
    }
    let v = api.version(&a, &room).await;
    api.leave(&a, &room).await;
    assert_eq!(api.version(&b, &room).await, v + 2);
    assert_eq!(api.role_of(&b, &room, &c).await.as_deref(), Some("owner"));
    assert_eq!(api.role_of(&b, &room, &b).await.as_deref(), Some("member"));
    // Alice is out: the private room is hidden from her now.
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &a.token).await);
}

#[actix_rt::test]
async fn the_last_member_leaving_deletes_the_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    api.say(&b, &room, "bye").await;
    api.leave(&a, &room).await;
    assert_eq!(api.role_of(&b, &room, &b).await.as_deref(), Some("owner"));
    api.leave(&b, &room).await;
    // Gone: a public room would be visible to anyone if it still existed.
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &a.token).await);
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &b.token).await);
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{room}/join"), &a.token)
            .await,
    );
    let dir = api.walk(&a.token, "/api/v1/rooms", 50).await;
    assert!(dir.iter().all(|r| r["id"] != room.as_str()), "{dir:?}");
    // A lone owner leaving does the same.
    let solo = api.private_room(&a, "solo", &[]).await;
    api.leave(&a, &solo).await;
    assert_not_found(&api.get(&format!("/api/v1/rooms/{solo}"), &a.token).await);
    let r = api
        .post_empty(&format!("/api/v1/rooms/{solo}/leave"), &a.token)
        .await;
    assert_not_found(&r);
}

#[actix_rt::test]
async fn room_versions_count_each_change_once() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.public_room(&a, "pub").await;
    let mut v = 1;
    let check = |want: u64, room: Value, what: &str| {
        assert_eq!(n(&room["version"]), want, "after {what}: {room}");
    };
    check(v, api.room(&a, &room).await, "create");
    v += 1;
    check(v, api.join(&b, &room).await, "join");
    check(v, api.join(&b, &room).await, "join twice");
    v += 1;
    api.say(&b, &room, "hi").await;
    check(v, api.room(&a, &room).await, "a message");
    v += 1;
    api.patch(
        &format!("/api/v1/rooms/{room}"),
        &a.token,
        json!({"name": "renamed"}),
    )
    .await;
    check(v, api.room(&a, &room).await, "a rename");
    // Read markers are not counted.
    api.post(
        &format!("/api/v1/rooms/{room}/read"),
        &a.token,
        json!({"seq": 1}),
    )
    .await;
    check(v, api.room(&a, &room).await, "a read marker");
    v += 2;
    api.set_role(&a, &room, &b, "admin").await;
    check(v, api.room(&a, &room).await, "a role change");
    api.set_role(&a, &room, &b, "admin").await;
    check(v, api.room(&a, &room).await, "the same role again");
    v += 1;
    api.join(&c, &room).await;
    check(v, api.room(&a, &room).await, "another join");
    v += 2;
    let r = api
        .delete(&format!("/api/v1/rooms/{room}/members/{}", c.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    check(v, api.room(&a, &room).await, "a kick");
    v += 1;
    api.join(&c, &room).await;
    check(v, api.room(&a, &room).await, "a rejoin after a kick");
    v += 2;
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/bans"),
            &a.token,
            json!({"user_id": c.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    check(v, api.room(&a, &room).await, "a ban");
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/bans"),
            &a.token,
            json!({"user_id": c.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    check(v, api.room(&a, &room).await, "a ban twice");
    v += 1;
    let r = api
        .delete(&format!("/api/v1/rooms/{room}/bans/{}", c.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    check(v, api.room(&a, &room).await, "an unban");
    v += 1;
    api.leave(&b, &room).await;
    check(v, api.room(&a, &room).await, "a member leaving");
    // Each message in the system and text flow took exactly one seq.
    let h = api.history(&a, &room, "").await;
    let seqs = Api::seqs(&h);
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(n(&api.room(&a, &room).await["last_seq"]), seqs.len() as u64);
    // text, role change, kick, ban, unban
    assert_eq!(seqs.len(), 5, "{h}");
}

#[actix_rt::test]
async fn a_private_room_is_hidden_from_outsiders_on_every_endpoint() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.private_room(&a, "priv", &[&b]).await;
    api.say(&a, &room, "private words").await;
    let t = &c.token;
    let bid = &b.id;
    let cid = &c.id;
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), t).await);
    assert_not_found(
        &api.patch(&format!("/api/v1/rooms/{room}"), t, json!({"name": "x"}))
            .await,
    );
    assert_not_found(&api.delete(&format!("/api/v1/rooms/{room}"), t).await);
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{room}/join"), t)
            .await,
    );
    assert_not_found(
        &api.post_empty(&format!("/api/v1/rooms/{room}/leave"), t)
            .await,
    );
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}/members"), t).await);
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{room}/members"),
            t,
            json!({"user_id": cid}),
        )
        .await,
    );
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{room}/members/{bid}"), t)
            .await,
    );
    assert_not_found(
        &api.put(
            &format!("/api/v1/rooms/{room}/members/{bid}/role"),
            t,
            Some(json!({"role": "admin"})),
        )
        .await,
    );
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{room}/bans"),
            t,
            json!({"user_id": bid}),
        )
        .await,
    );
    assert_not_found(
        &api.delete(&format!("/api/v1/rooms/{room}/bans/{bid}"), t)
            .await,
    );
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}/messages"), t).await);
    assert_not_found(
        &api.post(
            &format!("/api/v1/rooms/{room}/messages"),
            t,
            json!({"content": "hi"}),
        )
        .await,
    );
    assert_not_found(
        &api.post(&format!("/api/v1/rooms/{room}/read"), t, json!({"seq": 1}))
            .await,
    );
    assert!(api.walk(t, "/api/v1/rooms", 50).await.is_empty());
    // The same 404 as a room that does not exist.
    let ghost = api.get(&format!("/api/v1/rooms/{}", unknown_id()), t).await;
    let hidden = api.get(&format!("/api/v1/rooms/{room}"), t).await;
    assert_eq!(ghost, hidden);
    // Nothing changed.
    let r = api.room(&a, &room).await;
    assert_eq!(r["member_count"], 2);
    assert_eq!(r["last_seq"], 1);
    assert_eq!(r["version"], 2);
}

#[actix_rt::test]
async fn a_banned_or_kicked_user_loses_the_room_from_their_list() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.private_room(&a, "priv", &[&b, &c]).await;
    assert!(api.my_room(&b, &room).await.is_some());
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/bans"),
            &a.token,
            json!({"user_id": b.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(api.my_room(&b, &room).await.is_none());
    assert_not_found(&api.get(&format!("/api/v1/rooms/{room}"), &b.token).await);
    let r = api
        .delete(&format!("/api/v1/rooms/{room}/members/{}", c.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(api.my_room(&c, &room).await.is_none());
    assert_not_found(
        &api.get(&format!("/api/v1/rooms/{room}/messages"), &c.token)
            .await,
    );
}
