//! Members: list, add, kick, role; bans and unbans.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;

use crate::support::*;

/// A public room owned by `alice`, with `bob` (admin), `carol` and `dave`
/// (members), joined in that order.
struct Setup {
    api: Api,
    alice: User,
    bob: User,
    carol: User,
    dave: User,
    eve: User,
    room: String,
}

async fn setup() -> Setup {
    let api = Api::new().await;
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;
    let carol = api.user("carol").await;
    let dave = api.user("dave").await;
    let eve = api.user("eve").await;
    let room = api.public_room(&alice, "pub").await;
    api.join(&bob, &room).await;
    api.join(&carol, &room).await;
    api.join(&dave, &room).await;
    api.set_role(&alice, &room, &bob, "admin").await;
    Setup {
        api,
        alice,
        bob,
        carol,
        dave,
        eve,
        room,
    }
}

fn members_uri(room: &str) -> String {
    format!("/api/v1/rooms/{room}/members")
}

fn member_uri(room: &str, user: &str) -> String {
    format!("/api/v1/rooms/{room}/members/{user}")
}

fn role_uri(room: &str, user: &str) -> String {
    format!("/api/v1/rooms/{room}/members/{user}/role")
}

fn bans_uri(room: &str) -> String {
    format!("/api/v1/rooms/{room}/bans")
}

fn ban_uri(room: &str, user: &str) -> String {
    format!("/api/v1/rooms/{room}/bans/{user}")
}

/// The last message of the room's history, as `u` reads it.
async fn last_message(api: &Api, u: &User, room: &str) -> Value {
    let h = api.history(u, room, "limit=1").await;
    h["messages"][0].clone()
}

// ------------------------------------------------------------ list

#[actix_rt::test]
async fn list_members_in_join_order() {
    let t = setup().await;
    let r = t.api.get(&members_uri(&t.room), &t.carol.token).await;
    assert_status(&r, StatusCode::OK);
    assert_keys(&r.1, &["items", "next_cursor"]);
    let items = r.1["items"].as_array().unwrap();
    for m in items {
        assert_member(m);
    }
    let got: Vec<(String, String)> = items
        .iter()
        .map(|m| (s(&m["user"]["id"]), s(&m["role"])))
        .collect();
    assert_eq!(
        got,
        vec![
            (t.alice.id.clone(), "owner".into()),
            (t.bob.id.clone(), "admin".into()),
            (t.carol.id.clone(), "member".into()),
            (t.dave.id.clone(), "member".into()),
        ]
    );
    for u in [&t.alice, &t.bob, &t.dave] {
        assert_no_email(&r.1, &u.email);
    }
}

#[actix_rt::test]
async fn a_public_member_list_is_readable_by_anyone_signed_in() {
    let t = setup().await;
    let r = t.api.get(&members_uri(&t.room), &t.eve.token).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["items"].as_array().unwrap().len(), 4);
    for u in [&t.alice, &t.bob, &t.carol, &t.dave] {
        assert_no_email(&r.1, &u.email);
    }
}

#[actix_rt::test]
async fn hidden_member_lists_are_404_to_outsiders() {
    let t = setup().await;
    let private = t.api.private_room(&t.alice, "priv", &[&t.bob]).await;
    let dm = t.api.dm(&t.alice, &t.bob).await;
    assert_not_found(&t.api.get(&members_uri(&private), &t.eve.token).await);
    assert_not_found(&t.api.get(&members_uri(&dm), &t.eve.token).await);
    assert_not_found(&t.api.get(&members_uri(&unknown_id()), &t.eve.token).await);
    assert_only_field(&t.api.get(&members_uri("nope"), &t.eve.token).await, "id");
    let r = t.api.get(&members_uri(&dm), &t.bob.token).await;
    assert_status(&r, StatusCode::OK);
    let roles: Vec<String> = r.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(&m["role"]))
        .collect();
    assert_eq!(
        roles,
        vec!["member", "member"],
        "both members of a direct room are members"
    );
}

#[actix_rt::test]
async fn members_page_without_gaps_or_duplicates() {
    let t = setup().await;
    let mut want: BTreeSet<String> = [&t.alice, &t.bob, &t.carol, &t.dave]
        .iter()
        .map(|u| u.id.clone())
        .collect();
    for i in 0..3 {
        let u = t.api.user(&format!("extra{i}")).await;
        t.api.join(&u, &t.room).await;
        want.insert(u.id);
    }
    let items = t.api.walk(&t.eve.token, &members_uri(&t.room), 2).await;
    let got: Vec<String> = items.iter().map(|m| s(&m["user"]["id"])).collect();
    assert_eq!(got.len(), 7, "{got:?}");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    // Join order, across pages too.
    assert_eq!(got[0], t.alice.id);
    assert_eq!(got[3], t.dave.id);
    for l in ["0", "101", "abc"] {
        let r = t
            .api
            .get(
                &format!("{}?limit={l}", members_uri(&t.room)),
                &t.alice.token,
            )
            .await;
        assert_only_field(&r, "limit");
    }
    let r = t
        .api
        .get(
            &format!("{}?cursor=garbage", members_uri(&t.room)),
            &t.alice.token,
        )
        .await;
    assert_only_field(&r, "cursor");
}

// ------------------------------------------------------------ add

#[actix_rt::test]
async fn add_a_member() {
    let t = setup().await;
    let before = t.api.room(&t.alice, &t.room).await;
    let v = n(&before["version"]);
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.alice.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_member(&r.1);
    assert_eq!(r.1["user"]["id"], t.eve.id.as_str());
    assert_eq!(r.1["role"], "member");
    assert_no_email(&r.1, &t.eve.email);
    let room = t.api.room(&t.alice, &t.room).await;
    assert_eq!(n(&room["version"]), v + 1);
    assert_eq!(room["member_count"], 5);
    assert_eq!(
        room["last_seq"], before["last_seq"],
        "adding writes no message"
    );
    // Again: already a member.
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.alice.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "already_member");
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.alice.token,
            json!({"user_id": t.carol.id}),
        )
        .await;
    assert_error(&r, StatusCode::CONFLICT, "already_member");
    assert_eq!(t.api.version(&t.alice, &t.room).await, v + 1);
}

#[actix_rt::test]
async fn an_admin_adds_too_into_a_private_room() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.private_room(&a, "priv", &[&b]).await;
    api.set_role(&a, &room, &b, "admin").await;
    let r = api
        .post(&members_uri(&room), &b.token, json!({"user_id": c.id}))
        .await;
    assert_status(&r, StatusCode::CREATED);
    assert_eq!(api.room(&c, &room).await["member_count"], 3);
}

#[actix_rt::test]
async fn add_member_refusals() {
    let t = setup().await;
    let body = json!({"user_id": t.eve.id});
    // A plain member may not add.
    let r = t
        .api
        .post(&members_uri(&t.room), &t.carol.token, body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // An outsider of a public room: not a member.
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.eve.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    // An outsider of a private room: 404.
    let private = t.api.private_room(&t.alice, "priv", &[]).await;
    let r = t
        .api
        .post(
            &members_uri(&private),
            &t.eve.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_not_found(&r);
    // A direct room takes nobody else.
    let dm = t.api.dm(&t.alice, &t.bob).await;
    let r = t
        .api
        .post(&members_uri(&dm), &t.alice.token, body.clone())
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    let r = t
        .api
        .post(
            &members_uri(&dm),
            &t.eve.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_not_found(&r);
    // Unknown user, unknown room.
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.alice.token,
            json!({"user_id": unknown_id()}),
        )
        .await;
    assert_not_found(&r);
    let r = t
        .api
        .post(&members_uri(&unknown_id()), &t.alice.token, body.clone())
        .await;
    assert_not_found(&r);
    // Bad input.
    let r = t
        .api
        .post(
            &members_uri(&t.room),
            &t.alice.token,
            json!({"user_id": "nope"}),
        )
        .await;
    assert_only_field(&r, "user_id");
    let r = t
        .api
        .post(&members_uri(&t.room), &t.alice.token, json!({}))
        .await;
    assert_only_field(&r, "user_id");
    let r = t.api.post(&members_uri("nope"), &t.alice.token, body).await;
    assert_only_field(&r, "id");
    assert_eq!(t.api.room(&t.alice, &t.room).await["member_count"], 4);
}

// ------------------------------------------------------------ kick

#[actix_rt::test]
async fn the_owner_kicks_a_member_with_a_system_message() {
    let t = setup().await;
    let before = t.api.room(&t.alice, &t.room).await;
    let dave_unread = n(&t.api.my_room(&t.dave, &t.room).await.unwrap()["unread_count"]);
    let alice_unread = n(&t.api.my_room(&t.alice, &t.room).await.unwrap()["unread_count"]);
    let r = t
        .api
        .delete(&member_uri(&t.room, &t.carol.id), &t.alice.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null());
    let after = t.api.room(&t.alice, &t.room).await;
    assert_eq!(
        n(&after["version"]),
        n(&before["version"]) + 2,
        "kick = member:left + system message"
    );
    assert_eq!(n(&after["last_seq"]), n(&before["last_seq"]) + 1);
    assert_eq!(after["member_count"], 3);
    let sys = last_message(&t.api, &t.alice, &t.room).await;
    assert_message(&sys);
    assert_eq!(sys["kind"], "system");
    assert_eq!(sys["seq"], after["last_seq"]);
    assert_eq!(
        sys["sender"]["id"],
        t.alice.id.as_str(),
        "sent by whoever acted"
    );
    assert!(!s(&sys["content"]).is_empty());
    // It counts as a message sent by Alice: unread for others, not for her.
    let dave_room = t.api.my_room(&t.dave, &t.room).await.unwrap();
    assert_eq!(n(&dave_room["unread_count"]), dave_unread + 1);
    assert_eq!(dave_room["last_message"]["id"], sys["id"]);
    let alice_room = t.api.my_room(&t.alice, &t.room).await.unwrap();
    assert_eq!(n(&alice_room["unread_count"]), alice_unread);
    // Carol is out of a public room: member-only endpoints say not_a_member.
    assert_error(
        &t.api
            .get(
                &format!("/api/v1/rooms/{}/messages", t.room),
                &t.carol.token,
            )
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    // Not banned: she may join again.
    t.api.join(&t.carol, &t.room).await;
}

#[actix_rt::test]
async fn kick_follows_the_role_order() {
    let t = setup().await;
    let (a, b, c, d) = (&t.alice, &t.bob, &t.carol, &t.dave);
    // An admin kicks members.
    let r = t.api.delete(&member_uri(&t.room, &d.id), &b.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    // A member kicks nobody, not even themself.
    t.api.join(d, &t.room).await;
    let r = t.api.delete(&member_uri(&t.room, &c.id), &c.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = t.api.delete(&member_uri(&t.room, &d.id), &c.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = t.api.delete(&member_uri(&t.room, &b.id), &c.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // An admin does not kick an admin or the owner.
    t.api.set_role(a, &t.room, c, "admin").await;
    let r = t.api.delete(&member_uri(&t.room, &c.id), &b.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = t.api.delete(&member_uri(&t.room, &a.id), &b.token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // Nobody acts on the owner, the owner included.
    let r = t.api.delete(&member_uri(&t.room, &a.id), &a.token).await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // The owner kicks an admin.
    let v = t.api.version(a, &t.room).await;
    let r = t.api.delete(&member_uri(&t.room, &c.id), &a.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(t.api.version(a, &t.room).await, v + 2);
    assert_eq!(t.api.role_of(a, &t.room, c).await, None);
}

#[actix_rt::test]
async fn kick_refusals() {
    let t = setup().await;
    let (a, e) = (&t.alice, &t.eve);
    // A non-member: 404.
    assert_not_found(&t.api.delete(&member_uri(&t.room, &e.id), &a.token).await);
    assert_not_found(
        &t.api
            .delete(&member_uri(&t.room, &unknown_id()), &a.token)
            .await,
    );
    // An outsider of a public room.
    let r = t
        .api
        .delete(&member_uri(&t.room, &t.dave.id), &e.token)
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // Hidden rooms: 404 to outsiders.
    let private = t.api.private_room(a, "priv", &[&t.bob]).await;
    assert_not_found(
        &t.api
            .delete(&member_uri(&private, &t.bob.id), &e.token)
            .await,
    );
    let dm = t.api.dm(a, &t.bob).await;
    assert_not_found(&t.api.delete(&member_uri(&dm, &t.bob.id), &e.token).await);
    // In a direct room: 403.
    let r = t.api.delete(&member_uri(&dm, &t.bob.id), &a.token).await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // Bad ids name the bad part.
    assert_only_field(
        &t.api.delete(&member_uri(&t.room, "nope"), &a.token).await,
        "user_id",
    );
    assert_only_field(
        &t.api.delete(&member_uri("nope", &e.id), &a.token).await,
        "id",
    );
    assert_fields(
        &t.api.delete(&member_uri("x", "y"), &a.token).await,
        &["id", "user_id"],
    );
    assert_eq!(t.api.room(a, &t.room).await["member_count"], 4);
    assert_eq!(t.api.room(a, &dm).await["member_count"], 2);
}

// ------------------------------------------------------------ role

#[actix_rt::test]
async fn the_owner_changes_roles_with_a_system_message() {
    let t = setup().await;
    let before = t.api.room(&t.alice, &t.room).await;
    let r = t
        .api
        .put(
            &role_uri(&t.room, &t.carol.id),
            &t.alice.token,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_member(&r.1);
    assert_eq!(r.1["user"]["id"], t.carol.id.as_str());
    assert_eq!(r.1["role"], "admin");
    assert_no_email(&r.1, &t.carol.email);
    let after = t.api.room(&t.alice, &t.room).await;
    assert_eq!(n(&after["version"]), n(&before["version"]) + 2);
    assert_eq!(n(&after["last_seq"]), n(&before["last_seq"]) + 1);
    let sys = last_message(&t.api, &t.carol, &t.room).await;
    assert_eq!(sys["kind"], "system");
    assert_eq!(sys["sender"]["id"], t.alice.id.as_str());
    assert_eq!(
        t.api.role_of(&t.dave, &t.room, &t.carol).await.as_deref(),
        Some("admin")
    );
    // And back.
    let r = t
        .api
        .put(
            &role_uri(&t.room, &t.carol.id),
            &t.alice.token,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["role"], "member");
    assert_eq!(
        t.api.version(&t.alice, &t.room).await,
        n(&after["version"]) + 2
    );
    // The same role again changes nothing.
    let v = t.api.version(&t.alice, &t.room).await;
    let r = t
        .api
        .put(
            &role_uri(&t.room, &t.carol.id),
            &t.alice.token,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1["role"], "member");
    assert_eq!(t.api.version(&t.alice, &t.room).await, v);
}

#[actix_rt::test]
async fn role_changes_are_for_the_owner_only() {
    let t = setup().await;
    let body = Some(json!({"role": "admin"}));
    // An admin may not.
    let r = t
        .api
        .put(&role_uri(&t.room, &t.carol.id), &t.bob.token, body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // A member may not.
    let r = t
        .api
        .put(&role_uri(&t.room, &t.dave.id), &t.carol.token, body.clone())
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // The owner cannot change its own role.
    let r = t
        .api
        .put(
            &role_uri(&t.room, &t.alice.id),
            &t.alice.token,
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // A non-member target: 404.
    let r = t
        .api
        .put(&role_uri(&t.room, &t.eve.id), &t.alice.token, body.clone())
        .await;
    assert_not_found(&r);
    // An outsider: 403 in a public room, 404 in a hidden one.
    let r = t
        .api
        .put(&role_uri(&t.room, &t.dave.id), &t.eve.token, body.clone())
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    let private = t.api.private_room(&t.alice, "priv", &[&t.bob]).await;
    let r = t
        .api
        .put(&role_uri(&private, &t.bob.id), &t.eve.token, body.clone())
        .await;
    assert_not_found(&r);
    // A direct room: 403.
    let dm = t.api.dm(&t.alice, &t.bob).await;
    let r = t
        .api
        .put(&role_uri(&dm, &t.bob.id), &t.alice.token, body.clone())
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    assert_eq!(
        t.api.role_of(&t.alice, &t.room, &t.carol).await.as_deref(),
        Some("member")
    );
}

#[actix_rt::test]
async fn role_validates() {
    let t = setup().await;
    for role in [
        json!("owner"),
        json!("bogus"),
        json!(""),
        json!(1),
        json!(null),
    ] {
        let r = t
            .api
            .put(
                &role_uri(&t.room, &t.carol.id),
                &t.alice.token,
                Some(json!({"role": role})),
            )
            .await;
        assert_only_field(&r, "role");
    }
    let r = t
        .api
        .put(
            &role_uri(&t.room, &t.carol.id),
            &t.alice.token,
            Some(json!({})),
        )
        .await;
    assert_only_field(&r, "role");
    let r = t
        .api
        .put(
            &role_uri(&t.room, "nope"),
            &t.alice.token,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_only_field(&r, "user_id");
    let r = t
        .api
        .put(
            &role_uri("nope", &t.carol.id),
            &t.alice.token,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_only_field(&r, "id");
    assert_eq!(
        t.api.role_of(&t.alice, &t.room, &t.alice).await.as_deref(),
        Some("owner")
    );
}

// ------------------------------------------------------------ bans

#[actix_rt::test]
async fn ban_removes_and_keeps_out_until_unbanned() {
    let t = setup().await;
    let (a, d) = (&t.alice, &t.dave);
    let before = t.api.room(a, &t.room).await;
    let r = t
        .api
        .post(&bans_uri(&t.room), &a.token, json!({"user_id": d.id}))
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(r.1.is_null());
    let after = t.api.room(a, &t.room).await;
    assert_eq!(
        n(&after["version"]),
        n(&before["version"]) + 2,
        "ban = member:left + system message"
    );
    assert_eq!(n(&after["last_seq"]), n(&before["last_seq"]) + 1);
    assert_eq!(after["member_count"], 3);
    let sys = last_message(&t.api, a, &t.room).await;
    assert_eq!(sys["kind"], "system");
    assert_eq!(sys["sender"]["id"], a.id.as_str());
    assert_eq!(t.api.role_of(a, &t.room, d).await, None);
    // Out and kept out.
    let r = t
        .api
        .post_empty(&format!("/api/v1/rooms/{}/join", t.room), &d.token)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "banned");
    let r = t
        .api
        .post(&members_uri(&t.room), &a.token, json!({"user_id": d.id}))
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "banned");
    let r = t
        .api
        .post(
            &format!("/api/v1/rooms/{}/messages", t.room),
            &d.token,
            json!({"content": "let me in"}),
        )
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // Unban: a system message only.
    let v = n(&after["version"]);
    let r = t.api.delete(&ban_uri(&t.room, &d.id), &a.token).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let unbanned = t.api.room(a, &t.room).await;
    assert_eq!(
        n(&unbanned["version"]),
        v + 1,
        "an unban writes only its system message"
    );
    assert_eq!(n(&unbanned["last_seq"]), n(&after["last_seq"]) + 1);
    assert_eq!(unbanned["member_count"], 3, "unbanning does not add back");
    let sys = last_message(&t.api, a, &t.room).await;
    assert_eq!(sys["kind"], "system");
    // Now he may join again.
    let joined = t.api.join(d, &t.room).await;
    assert_eq!(joined["member_count"], 4);
}

#[actix_rt::test]
async fn a_non_member_may_be_banned_ahead() {
    let t = setup().await;
    let before = t.api.room(&t.alice, &t.room).await;
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.bob.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    // No membership changed: only the system message is counted.
    let after = t.api.room(&t.alice, &t.room).await;
    assert_eq!(n(&after["version"]), n(&before["version"]) + 1);
    assert_eq!(n(&after["last_seq"]), n(&before["last_seq"]) + 1);
    let sys = last_message(&t.api, &t.alice, &t.room).await;
    assert_eq!(sys["kind"], "system");
    assert_eq!(sys["sender"]["id"], t.bob.id.as_str());
    let r = t
        .api
        .post_empty(&format!("/api/v1/rooms/{}/join", t.room), &t.eve.token)
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "banned");
    assert_eq!(t.api.room(&t.alice, &t.room).await["member_count"], 4);
    // Banning twice changes nothing.
    let v = t.api.version(&t.alice, &t.room).await;
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.bob.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(t.api.version(&t.alice, &t.room).await, v);
    // Also in a private room.
    let private = t.api.private_room(&t.alice, "priv", &[]).await;
    let r = t
        .api
        .post(
            &bans_uri(&private),
            &t.alice.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = t
        .api
        .post(
            &members_uri(&private),
            &t.alice.token,
            json!({"user_id": t.eve.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "banned");
}

#[actix_rt::test]
async fn ban_follows_the_role_order() {
    let t = setup().await;
    // A member bans nobody.
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.carol.token,
            json!({"user_id": t.dave.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    // An admin does not ban an admin or the owner.
    t.api.set_role(&t.alice, &t.room, &t.carol, "admin").await;
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.bob.token,
            json!({"user_id": t.carol.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.bob.token,
            json!({"user_id": t.alice.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.alice.token,
            json!({"user_id": t.alice.id}),
        )
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // An admin bans a member; the owner bans an admin.
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.bob.token,
            json!({"user_id": t.dave.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.alice.token,
            json!({"user_id": t.carol.id}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(t.api.room(&t.alice, &t.room).await["member_count"], 2);
    // An outsider may not unban.
    let r = t
        .api
        .delete(&ban_uri(&t.room, &t.dave.id), &t.eve.token)
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // An admin may.
    let r = t
        .api
        .delete(&ban_uri(&t.room, &t.dave.id), &t.bob.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
}

#[actix_rt::test]
async fn ban_and_unban_refusals() {
    let t = setup().await;
    let a = &t.alice;
    // Unbanning someone not banned: 404.
    assert_not_found(&t.api.delete(&ban_uri(&t.room, &t.eve.id), &a.token).await);
    assert_not_found(
        &t.api
            .delete(&ban_uri(&t.room, &unknown_id()), &a.token)
            .await,
    );
    // Banning an unknown user.
    assert_not_found(
        &t.api
            .post(
                &bans_uri(&t.room),
                &a.token,
                json!({"user_id": unknown_id()}),
            )
            .await,
    );
    // Hidden rooms are 404 to outsiders, public rooms 403.
    let private = t.api.private_room(a, "priv", &[&t.bob]).await;
    let dm = t.api.dm(a, &t.bob).await;
    for room in [&private, &dm] {
        assert_not_found(
            &t.api
                .post(&bans_uri(room), &t.eve.token, json!({"user_id": t.bob.id}))
                .await,
        );
        assert_not_found(&t.api.delete(&ban_uri(room, &t.bob.id), &t.eve.token).await);
    }
    let r = t
        .api
        .post(
            &bans_uri(&t.room),
            &t.eve.token,
            json!({"user_id": t.dave.id}),
        )
        .await;
    assert_error(&r, StatusCode::FORBIDDEN, "not_a_member");
    // In a direct room: 403.
    let r = t
        .api
        .post(&bans_uri(&dm), &a.token, json!({"user_id": t.bob.id}))
        .await;
    assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    // Bad input.
    assert_only_field(
        &t.api.post(&bans_uri(&t.room), &a.token, json!({})).await,
        "user_id",
    );
    assert_only_field(
        &t.api
            .post(&bans_uri(&t.room), &a.token, json!({"user_id": "x"}))
            .await,
        "user_id",
    );
    assert_only_field(
        &t.api
            .post(&bans_uri("x"), &a.token, json!({"user_id": t.eve.id}))
            .await,
        "id",
    );
    assert_only_field(
        &t.api.delete(&ban_uri(&t.room, "x"), &a.token).await,
        "user_id",
    );
    assert_only_field(
        &t.api.delete(&ban_uri("x", &t.eve.id), &a.token).await,
        "id",
    );
    assert_not_found(
        &t.api
            .post(
                &bans_uri(&unknown_id()),
                &a.token,
                json!({"user_id": t.eve.id}),
            )
            .await,
    );
    assert_eq!(t.api.room(a, &t.room).await["member_count"], 4);
    assert_eq!(t.api.room(a, &dm).await["member_count"], 2);
}
