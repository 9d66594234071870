//! Read receipts: every member's read and delivered markers.

use actix_web::http::StatusCode;

use crate::support::*;

fn receipts(room: &str) -> String {
    format!("/api/v1/rooms/{room}/receipts")
}

async fn read(api: &Api, u: &User, room: &str, seq: u64) {
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &u.token,
            json!({"seq": seq}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
}

/// Every receipt of a room as `u` sees them: `(user id, read, delivered)`.
async fn markers(api: &Api, u: &User, room: &str) -> Vec<(String, u64, u64)> {
    api.walk(&u.token, &receipts(room), 100)
        .await
        .iter()
        .map(|r| {
            assert_keys(r, &["user_id", "last_read_seq", "last_delivered_seq"]);
            assert_uuid(&r["user_id"]);
            (
                s(&r["user_id"]),
                n(&r["last_read_seq"]),
                n(&r["last_delivered_seq"]),
            )
        })
        .collect()
}

fn of(markers: &[(String, u64, u64)], u: &User) -> (u64, u64) {
    markers
        .iter()
        .find(|(id, _, _)| *id == u.id)
        .map(|(_, r, d)| (*r, *d))
        .unwrap_or_else(|| panic!("no receipt of {}: {markers:?}", u.username))
}

#[actix_rt::test]
async fn every_member_starts_at_zero() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let room = api.private_room(&a, "group", &[&b, &c]).await;
    api.say(&a, &room, "one").await;
    api.say(&b, &room, "two").await;
    let r = api.get(&receipts(&room), &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_keys(&r.1, &["items", "next_cursor"]);
    assert_eq!(r.1["next_cursor"], Value::Null);
    let m = markers(&api, &a, &room).await;
    let mut ids: Vec<&str> = m.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![a.id.as_str(), b.id.as_str(), c.id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "every member, once");
    for (_, read, delivered) in &m {
        assert_eq!((*read, *delivered), (0, 0), "{m:?}");
    }
    // Any member sees the same.
    assert_eq!(markers(&api, &c, &room).await, m);
}

#[actix_rt::test]
async fn reading_moves_read_and_delivered() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    for i in 1..=3 {
        api.say(&a, &room, &format!("m{i}")).await;
    }
    let v0 = api.version(&a, &room).await;
    read(&api, &b, &room, 2).await;
    let m = markers(&api, &a, &room).await;
    assert_eq!(of(&m, &b), (2, 2), "reading implies delivered");
    assert_eq!(of(&m, &a), (0, 0));
    read(&api, &b, &room, 3).await;
    read(&api, &a, &room, 1).await;
    let m = markers(&api, &b, &room).await;
    assert_eq!(of(&m, &b), (3, 3));
    assert_eq!(of(&m, &a), (1, 1));
    // Back is ignored.
    read(&api, &b, &room, 1).await;
    assert_eq!(of(&markers(&api, &a, &room).await, &b), (3, 3));
    // Past the end is refused and moves nothing.
    let r = api
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            &b.token,
            json!({"seq": 4}),
        )
        .await;
    assert_only_field(&r, "seq");
    assert_eq!(of(&markers(&api, &a, &room).await, &b), (3, 3));
    // Markers are not counted changes of the room.
    assert_eq!(api.version(&a, &room).await, v0);
}

#[actix_rt::test]
async fn members_joining_and_leaving_come_and_go() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.say(&a, &room, "hello").await;
    assert_eq!(markers(&api, &a, &room).await.len(), 1);
    api.join(&b, &room).await;
    let m = markers(&api, &a, &room).await;
    assert_eq!(m.len(), 2);
    assert_eq!(of(&m, &b), (0, 0));
    read(&api, &b, &room, 1).await;
    api.leave(&b, &room).await;
    let m = markers(&api, &a, &room).await;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(of(&m, &a), (0, 0));
}

#[actix_rt::test]
async fn receipts_page_through_every_member() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let mut others = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        others.push(api.user(name).await);
    }
    let refs: Vec<&User> = others.iter().collect();
    let room = api.private_room(&a, "group", &refs).await;
    api.say(&a, &room, "hi").await;
    read(&api, &others[1], &room, 1).await;
    let all = api.walk(&a.token, &receipts(&room), 100).await;
    assert_eq!(all.len(), 5);
    let one_by_one = api.walk(&a.token, &receipts(&room), 1).await;
    assert_eq!(one_by_one, all, "the same members in the same order");
    let two_by_two = api.walk(&a.token, &receipts(&room), 2).await;
    assert_eq!(two_by_two, all);
    let first = api
        .get(&format!("{}?limit=1", receipts(&room)), &a.token)
        .await;
    assert_status(&first, StatusCode::OK);
    assert_eq!(arr(&first.1["items"]).len(), 1);
    assert!(first.1["next_cursor"].is_string(), "{}", first.1);
}

#[actix_rt::test]
async fn receipts_are_for_members_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let c = api.user("carol").await;
    let root = api.user("root").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let public = api.public_room(&a, "pub").await;
    let dm = api.dm(&a, &api.user("bob").await).await;
    for u in [&c, &root] {
        assert_not_found(&api.get(&receipts(&private), &u.token).await);
        assert_not_found(&api.get(&receipts(&dm), &u.token).await);
        assert_error(
            &api.get(&receipts(&public), &u.token).await,
            StatusCode::FORBIDDEN,
            "not_a_member",
        );
    }
    assert_not_found(&api.get(&receipts(&unknown_id()), &a.token).await);
    let r = api
        .anon(actix_web::http::Method::GET, &receipts(&public), None)
        .await;
    assert_unauthorized(&r);
}

#[actix_rt::test]
async fn receipts_validate_their_query() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for limit in ["0", "101", "-1", "x", "1.5"] {
        let r = api
            .get(&format!("{}?limit={limit}", receipts(&room)), &a.token)
            .await;
        assert_only_field(&r, "limit");
    }
    let r = api
        .get(&format!("{}?cursor=garbage", receipts(&room)), &a.token)
        .await;
    assert_only_field(&r, "cursor");
    let r = api.get("/api/v1/rooms/not-a-room/receipts", &a.token).await;
    assert_only_field(&r, "id");
    let r = api
        .get(&format!("{}?limit=100", receipts(&room)), &a.token)
        .await;
    assert_status(&r, StatusCode::OK);
}
