//! Reactions: adding, removing, their order and who may react.

use actix_web::http::StatusCode;

use crate::support::*;

/// 👍, percent-encoded for the path.
const THUMBS: &str = "%F0%9F%91%8D";
/// 🎉, percent-encoded for the path.
const TADA: &str = "%F0%9F%8E%89";

fn reaction(message: &Value, emoji: &str) -> String {
    format!("/api/v1/messages/{}/reactions/{emoji}", s(message))
}

/// `PUT` (add) or `DELETE` (remove) a reaction.
async fn react(api: &Api, u: &User, m: &Value, emoji: &str, add: bool) -> (StatusCode, Value) {
    let path = reaction(&m["id"], emoji);
    if add {
        api.put(&path, &u.token, None).await
    } else {
        api.delete(&path, &u.token).await
    }
}

/// The reactions of a message as `u` sees them.
async fn reactions(api: &Api, u: &User, room: &str, m: &Value) -> Value {
    api.message(u, room, &m["id"]).await["reactions"].clone()
}

/// A public room of alice with bob in it, and one message of alice.
async fn setup(api: &Api) -> (User, User, String, Value) {
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "pub").await;
    api.join(&b, &room).await;
    let m = api.say(&a, &room, "react to me").await;
    (a, b, room, m)
}

#[actix_rt::test]
async fn add_a_reaction() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    let v0 = api.version(&a, &room).await;
    let r = react(&api, &b, &m, THUMBS, true).await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(r.1, Value::Null);
    assert_eq!(api.version(&a, &room).await, v0 + 1);
    assert_eq!(
        reactions(&api, &b, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
    // A second reactor counts; `me` is per viewer.
    assert_status(
        &react(&api, &a, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 2);
    for u in [&a, &b] {
        assert_eq!(
            reactions(&api, u, &room, &m).await,
            json!([{"emoji": "👍", "count": 2, "me": true}])
        );
    }
    let c = api.user("carol").await;
    api.join(&c, &room).await;
    assert_eq!(
        reactions(&api, &c, &room, &m).await,
        json!([{"emoji": "👍", "count": 2, "me": false}])
    );
    // The message itself is not edited by a reaction.
    let seen = api.message(&a, &room, &m["id"]).await;
    assert_eq!(seen["content"], m["content"]);
    assert!(seen.get("edited_at").is_none_or(Value::is_null), "{seen}");
}

#[actix_rt::test]
async fn adding_twice_changes_nothing() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    let v1 = api.version(&a, &room).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    // The same glyph, encoded in lower case, is the same reaction.
    assert_status(
        &react(&api, &b, &m, &THUMBS.to_lowercase(), true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v1);
    assert_eq!(
        reactions(&api, &b, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
}

#[actix_rt::test]
async fn reactions_keep_the_order_of_first_use() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    assert_status(
        &react(&api, &a, &m, TADA, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    // A later reactor of the first emoji does not move it.
    assert_status(
        &react(&api, &b, &m, TADA, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([
            {"emoji": "🎉", "count": 2, "me": true},
            {"emoji": "👍", "count": 1, "me": false},
        ])
    );
    // Down to one reactor (the first one left), it keeps its place.
    let v0 = api.version(&a, &room).await;
    assert_status(
        &react(&api, &b, &m, TADA, false).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 1);
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([
            {"emoji": "🎉", "count": 1, "me": true},
            {"emoji": "👍", "count": 1, "me": false},
        ])
    );
    // At zero it leaves the list; used again, it goes last.
    assert_status(
        &react(&api, &a, &m, TADA, false).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 2);
    assert_eq!(
        reactions(&api, &b, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
    assert_status(
        &react(&api, &a, &m, TADA, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 3);
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([
            {"emoji": "👍", "count": 1, "me": false},
            {"emoji": "🎉", "count": 1, "me": true},
        ])
    );
}

/// The contract: each emoji in the order it was *first used*; only a count
/// that drops to 0 sends it to the end. When the first user of an emoji
/// takes theirs back while someone else still uses it, the emoji keeps its
/// place rather than moving behind emoji first used after it.
#[actix_rt::test]
async fn an_emoji_keeps_its_place_while_anyone_still_uses_it() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    assert_status(
        &react(&api, &a, &m, TADA, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &react(&api, &b, &m, TADA, true).await,
        StatusCode::NO_CONTENT,
    );
    // The first to use 🎉 takes it back; bob still uses it.
    assert_status(
        &react(&api, &a, &m, TADA, false).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([
            {"emoji": "🎉", "count": 1, "me": false},
            {"emoji": "👍", "count": 1, "me": false},
        ])
    );
}

#[actix_rt::test]
async fn removing_an_absent_reaction_changes_nothing() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    let v0 = api.version(&a, &room).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, false).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0);
    assert_eq!(reactions(&api, &a, &room, &m).await, json!([]));
    // Someone else's reaction is not mine to remove.
    assert_status(
        &react(&api, &a, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    let v1 = api.version(&a, &room).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, false).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v1);
    assert_eq!(
        reactions(&api, &a, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
}

#[actix_rt::test]
async fn glyphs_and_short_names() {
    let api = Api::new().await;
    let (a, _b, room, m) = setup(&api).await;
    let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
    let x64 = "x".repeat(64);
    for emoji in [THUMBS, ":thumbs_up:", ":+1:", &pct(family), &x64] {
        assert_status(
            &react(&api, &a, &m, emoji, true).await,
            StatusCode::NO_CONTENT,
        );
    }
    let got: Vec<String> = arr(&reactions(&api, &a, &room, &m).await)
        .iter()
        .map(|r| s(&r["emoji"]))
        .collect();
    assert_eq!(got, vec!["👍", ":thumbs_up:", ":+1:", family, x64.as_str()]);
    // And removed by the same names.
    for emoji in [THUMBS, ":thumbs_up:", ":+1:", &pct(family), &x64] {
        assert_status(
            &react(&api, &a, &m, emoji, false).await,
            StatusCode::NO_CONTENT,
        );
    }
    assert_eq!(reactions(&api, &a, &room, &m).await, json!([]));
}

#[actix_rt::test]
async fn bad_emoji_are_refused() {
    let api = Api::new().await;
    let (a, _b, room, m) = setup(&api).await;
    let v0 = api.version(&a, &room).await;
    let x65 = "x".repeat(65);
    // 16 four-byte glyphs are 64 bytes; 17 are too many.
    let glyphs17 = THUMBS.repeat(17);
    for bad in [
        x65.as_str(),
        glyphs17.as_str(),
        "a%20b",
        "%20",
        "tab%09",
        "nl%0A",
        "%E3%80%80",
        "nul%00",
        // Not UTF-8: must not be stored as U+FFFD.
        "%FF",
        "x%C3",
    ] {
        for add in [true, false] {
            let r = react(&api, &a, &m, bad, add).await;
            assert_only_field(&r, "emoji");
        }
    }
    assert_status(
        &react(&api, &a, &m, &THUMBS.repeat(16), true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(api.version(&a, &room).await, v0 + 1);
    assert_eq!(arr(&reactions(&api, &a, &room, &m).await).len(), 1);
}

#[actix_rt::test]
async fn reactions_on_a_malformed_or_unknown_message() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let r = api
        .put(
            &format!("/api/v1/messages/nope/reactions/{THUMBS}"),
            &a.token,
            None,
        )
        .await;
    assert_only_field(&r, "id");
    let r = react(&api, &a, &json!({"id": unknown_id()}), THUMBS, true).await;
    assert_not_found(&r);
    let r = react(&api, &a, &json!({"id": unknown_id()}), THUMBS, false).await;
    assert_not_found(&r);
    let r = api
        .anon(
            actix_web::http::Method::PUT,
            &reaction(&json!(unknown_id()), THUMBS),
            None,
        )
        .await;
    assert_unauthorized(&r);
}

#[actix_rt::test]
async fn outsiders_cannot_react() {
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
    for add in [true, false] {
        assert_not_found(&react(&api, &c, &hidden, THUMBS, add).await);
        assert_error(
            &react(&api, &c, &open, THUMBS, add).await,
            StatusCode::FORBIDDEN,
            "not_a_member",
        );
    }
    assert_eq!(api.version(&a, &private).await, vp);
    assert_eq!(api.version(&a, &public).await, vo);
    assert_eq!(reactions(&api, &a, &private, &hidden).await, json!([]));
    assert_eq!(reactions(&api, &a, &public, &open).await, json!([]));
}

#[actix_rt::test]
async fn a_deleted_message_takes_no_reactions() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    let r = api
        .delete(&format!("/api/v1/messages/{}", s(&m["id"])), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let v0 = api.version(&a, &room).await;
    for add in [true, false] {
        assert_not_found(&react(&api, &b, &m, TADA, add).await);
        assert_not_found(&react(&api, &b, &m, THUMBS, add).await);
    }
    assert_eq!(api.version(&a, &room).await, v0);
    assert_eq!(reactions(&api, &b, &room, &m).await, json!([]));
}

#[actix_rt::test]
async fn no_reactions_across_a_block() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    let m = api.say(&a, &dm, "hi bob").await;
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    let r = api
        .put(&format!("/api/v1/users/{}/block", b.id), &a.token, None)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let v0 = api.version(&a, &dm).await;
    // Neither side, adding or removing.
    for u in [&a, &b] {
        for add in [true, false] {
            assert_error(
                &react(&api, u, &m, THUMBS, add).await,
                StatusCode::FORBIDDEN,
                "blocked",
            );
        }
    }
    assert_eq!(api.version(&a, &dm).await, v0);
    assert_eq!(
        reactions(&api, &a, &dm, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
    // Unblocked, it works again.
    let r = api
        .delete(&format!("/api/v1/users/{}/block", b.id), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_status(
        &react(&api, &a, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    assert_eq!(
        reactions(&api, &a, &dm, &m).await,
        json!([{"emoji": "👍", "count": 2, "me": true}])
    );
}

#[actix_rt::test]
async fn an_edit_keeps_the_reactions() {
    let api = Api::new().await;
    let (a, b, room, m) = setup(&api).await;
    assert_status(
        &react(&api, &b, &m, THUMBS, true).await,
        StatusCode::NO_CONTENT,
    );
    let r = api
        .patch(
            &format!("/api/v1/messages/{}", s(&m["id"])),
            &a.token,
            json!({"content": "edited"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(
        r.1["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}]),
        "as the editor sees them"
    );
    assert_eq!(
        reactions(&api, &b, &room, &m).await,
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
}
