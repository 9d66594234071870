//! Full-text message search: what is found, in what order, and never
//! anything of a room the searcher is not in.

use actix_web::http::StatusCode;

use crate::support::*;

/// The search path for this query (percent-encoded here).
fn search_uri(q: &str) -> String {
    format!("/api/v1/search/messages?q={}", pct(q))
}

/// The search path for this query in one room.
fn search_in(q: &str, room: &str) -> String {
    format!("{}&room_id={room}", search_uri(q))
}

/// Every hit of a search, all pages, with each hit's shape checked.
async fn hits(api: &Api, u: &User, uri: &str) -> Vec<Value> {
    let items = api.walk(&u.token, uri, 100).await;
    for h in &items {
        assert_keys(h, &["message", "room", "rank"]);
        assert_message(&h["message"]);
        assert_keys(&h["room"], &["id", "name", "kind"]);
        assert_eq!(h["room"]["id"], h["message"]["room_id"], "{h}");
        assert!(h["rank"].is_number(), "{h}");
        assert_eq!(h["message"]["deleted"], false, "{h}");
    }
    items
}

/// The contents of the hits, in order.
async fn found(api: &Api, u: &User, uri: &str) -> Vec<String> {
    hits(api, u, uri)
        .await
        .iter()
        .map(|h| s(&h["message"]["content"]))
        .collect()
}

fn rank(h: &Value) -> f64 {
    h["rank"]
        .as_f64()
        .unwrap_or_else(|| panic!("rank is not a number: {h}"))
}

#[actix_rt::test]
async fn finds_words_ignoring_case_and_punctuation() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.public_room(&a, "Lunch club").await;
    api.join(&b, &room).await;
    let first = api.say(&a, &room, "Lunch on FRIDAY, anyone?").await;
    api.say(&b, &room, "friday night lights").await;
    api.say(&b, &room, "lunch tomorrow").await;
    api.say(&b, &room, "nothing to see").await;
    // Every word must match, in any order, in any case.
    let h = hits(&api, &b, &search_uri("friday LUNCH")).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["message"], api.message(&b, &room, &first["id"]).await);
    assert_eq!(
        h[0]["room"],
        json!({"id": room, "name": "Lunch club", "kind": "public"})
    );
    assert_eq!(
        found(&api, &a, &search_uri("...friday?! (lunch)")).await,
        vec!["Lunch on FRIDAY, anyone?"]
    );
    let mut got = found(&api, &a, &search_uri("FRIDAY")).await;
    got.sort();
    assert_eq!(got, vec!["Lunch on FRIDAY, anyone?", "friday night lights"]);
    let mut got = found(&api, &a, &search_uri("lunch")).await;
    got.sort();
    assert_eq!(got, vec!["Lunch on FRIDAY, anyone?", "lunch tomorrow"]);
    // One word missing: no hit.
    assert!(
        found(&api, &a, &search_uri("lunch saturday"))
            .await
            .is_empty()
    );
    assert!(found(&api, &a, &search_uri("pizza")).await.is_empty());
    // Whole words only.
    assert!(found(&api, &a, &search_uri("lun")).await.is_empty());
    // The answer of a search without hits.
    let r = api.get(&search_uri("pizza"), &a.token).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.1, json!({"items": [], "next_cursor": null}));
}

#[actix_rt::test]
async fn the_best_match_comes_first() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    api.say(&a, &room, "mango").await;
    api.say(&a, &room, "mango, mango and mango").await;
    api.say(&a, &room, "mango and another mango").await;
    api.say(&a, &room, "papaya only").await;
    let h = hits(&api, &a, &search_uri("mango")).await;
    let contents: Vec<String> = h.iter().map(|h| s(&h["message"]["content"])).collect();
    assert_eq!(
        contents,
        vec!["mango, mango and mango", "mango and another mango", "mango"]
    );
    assert!(rank(&h[0]) > rank(&h[1]), "{h:?}");
    assert!(rank(&h[1]) > rank(&h[2]), "{h:?}");
}

#[actix_rt::test]
async fn equal_matches_come_newest_first() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(api.say(&a, &room, "guava").await["id"].clone());
    }
    ids.reverse();
    let h = hits(&api, &a, &search_uri("guava")).await;
    let got: Vec<Value> = h.iter().map(|h| h["message"]["id"].clone()).collect();
    assert_eq!(got, ids);
}

#[actix_rt::test]
async fn room_id_narrows_the_search() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let one = api.public_room(&a, "one").await;
    let two = api.private_room(&a, "two", &[&b]).await;
    api.say(&a, &one, "quokka in one").await;
    api.say(&b, &two, "quokka in two").await;
    let mut all = found(&api, &a, &search_uri("quokka")).await;
    all.sort();
    assert_eq!(all, vec!["quokka in one", "quokka in two"]);
    assert_eq!(
        found(&api, &a, &search_in("quokka", &one)).await,
        vec!["quokka in one"]
    );
    let h = hits(&api, &a, &search_in("quokka", &two)).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["message"]["content"], "quokka in two");
    assert_eq!(
        h[0]["room"],
        json!({"id": two, "name": "two", "kind": "private"})
    );
    // bob sees only what he is in.
    assert_eq!(
        found(&api, &b, &search_uri("quokka")).await,
        vec!["quokka in two"]
    );
}

#[actix_rt::test]
async fn deleted_messages_are_never_found_and_edits_are() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    let gone = api.say(&a, &room, "kiwi one").await;
    api.say(&a, &room, "kiwi two").await;
    let edited = api.say(&a, &room, "durian").await;
    let r = api
        .delete(&format!("/api/v1/messages/{}", s(&gone["id"])), &a.token)
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(found(&api, &a, &search_uri("kiwi")).await, vec!["kiwi two"]);
    assert!(found(&api, &a, &search_uri("kiwi one")).await.is_empty());
    assert!(found(&api, &a, &search_in("one", &room)).await.is_empty());
    let r = api
        .patch(
            &format!("/api/v1/messages/{}", s(&edited["id"])),
            &a.token,
            json!({"content": "rambutan"}),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert!(found(&api, &a, &search_uri("durian")).await.is_empty());
    let h = hits(&api, &a, &search_uri("rambutan")).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["message"], r.1);
}

#[actix_rt::test]
async fn nothing_leaks_from_rooms_the_searcher_is_not_in() {
    let api = Api::new().await;
    let outsider = api.user("eve").await;
    let root = api.user("root").await;
    let b = api.user("bob").await;
    let c = api.user("carol").await;
    let private = api.private_room(&b, "secret", &[&c]).await;
    let dm = api.dm(&b, &c).await;
    let public = api.public_room(&b, "open").await;
    let word = "xylophonezebra";
    api.say(&b, &private, &format!("the {word} plan")).await;
    api.say(&c, &dm, &format!("{word} between us")).await;
    api.say(&b, &public, &format!("{word} in the open")).await;
    // The members find them: the plant worked.
    assert_eq!(found(&api, &b, &search_uri(word)).await.len(), 3);
    assert_eq!(found(&api, &c, &search_uri(word)).await.len(), 2);
    // The outsider, and a global admin, find none of them.
    for u in [&outsider, &root] {
        let r = api.get(&search_uri(word), &u.token).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(
            r.1,
            json!({"items": [], "next_cursor": null}),
            "{}",
            u.username
        );
        for q in [word, "plan", "between us", "the"] {
            assert!(
                found(&api, u, &search_uri(q)).await.is_empty(),
                "{} found {q}",
                u.username
            );
        }
        assert_not_found(&api.get(&search_in(word, &private), &u.token).await);
        assert_not_found(&api.get(&search_in(word, &dm), &u.token).await);
        assert_error(
            &api.get(&search_in(word, &public), &u.token).await,
            StatusCode::FORBIDDEN,
            "not_a_member",
        );
    }
    // Even with hits of their own to page through.
    let mine = api.public_room(&outsider, "mine").await;
    api.say(&outsider, &mine, &format!("my own {word}")).await;
    assert_eq!(
        found(&api, &outsider, &search_uri(word)).await,
        vec![format!("my own {word}")]
    );
    let paged: Vec<Value> = api.walk(&outsider.token, &search_uri(word), 1).await;
    assert_eq!(paged.len(), 1, "{paged:?}");
    // An unknown room answers as one.
    assert_not_found(
        &api.get(&search_in(word, &unknown_id()), &outsider.token)
            .await,
    );
}

#[actix_rt::test]
async fn leaving_a_room_ends_finding_its_messages() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[&b]).await;
    api.join(&b, &public).await;
    api.say(&a, &public, "walrus on the beach").await;
    api.say(&a, &private, "walrus in the bath").await;
    api.say(&b, &private, "walrus by bob").await;
    assert_eq!(found(&api, &b, &search_uri("walrus")).await.len(), 3);
    api.leave(&b, &public).await;
    assert_eq!(found(&api, &b, &search_uri("walrus")).await.len(), 2);
    assert_error(
        &api.get(&search_in("walrus", &public), &b.token).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    // Kicked from the private room, not even his own message.
    let r = api
        .delete(
            &format!("/api/v1/rooms/{private}/members/{}", b.id),
            &a.token,
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert!(found(&api, &b, &search_uri("walrus")).await.is_empty());
    assert!(found(&api, &b, &search_uri("bob")).await.is_empty());
    assert_not_found(&api.get(&search_in("walrus", &private), &b.token).await);
    // Joining again finds them again.
    api.join(&b, &public).await;
    assert_eq!(
        found(&api, &b, &search_uri("walrus")).await,
        vec!["walrus on the beach"]
    );
}

#[actix_rt::test]
async fn search_validates_its_query() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    api.say(&a, &room, "hello").await;
    for uri in [
        "/api/v1/search/messages".to_owned(),
        "/api/v1/search/messages?q=".to_owned(),
        search_uri("   "),
        search_uri(",;!? -- ..."),
        search_uri("hello\0"),
        format!("/api/v1/search/messages?room_id={room}"),
    ] {
        let r = api.get(&uri, &a.token).await;
        assert_only_field(&r, "q");
    }
    for bad in ["nope", "123", &room[..room.len() - 1]] {
        let r = api.get(&search_in("hello", bad), &a.token).await;
        assert_only_field(&r, "room_id");
    }
    for l in ["0", "101", "x", "-1"] {
        let r = api
            .get(&format!("{}&limit={l}", search_uri("hello")), &a.token)
            .await;
        assert_only_field(&r, "limit");
    }
    let r = api
        .get(&format!("{}&cursor=garbage", search_uri("hello")), &a.token)
        .await;
    assert_only_field(&r, "cursor");
    let r = api
        .anon(actix_web::http::Method::GET, &search_uri("hello"), None)
        .await;
    assert_unauthorized(&r);
    // And a good one still works.
    assert_eq!(found(&api, &a, &search_uri("hello")).await, vec!["hello"]);
}

#[actix_rt::test]
async fn paging_returns_each_hit_once_in_a_stable_order() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let one = api.public_room(&a, "one").await;
    let two = api.public_room(&b, "two").await;
    api.join(&a, &two).await;
    // Ranks that differ and ranks that tie, across two rooms.
    for (u, room, text) in [
        (&a, &one, "otter"),
        (&b, &two, "otter otter"),
        (&a, &one, "otter"),
        (&b, &two, "otter"),
        (&a, &two, "otter otter otter"),
        (&a, &one, "otter otter"),
        (&b, &two, "otter and not much else"),
    ] {
        api.say(u, room, text).await;
    }
    api.say(&a, &one, "no match here").await;
    let all = hits(&api, &a, &search_uri("otter")).await;
    assert_eq!(all.len(), 7);
    let ids: Vec<Value> = all.iter().map(|h| h["message"]["id"].clone()).collect();
    let mut unique = ids.clone();
    unique.sort_by_key(Value::to_string);
    unique.dedup();
    assert_eq!(unique.len(), 7, "each hit once");
    for w in all.windows(2) {
        assert!(rank(&w[0]) >= rank(&w[1]), "best first: {all:?}");
    }
    for limit in [1, 2, 3] {
        let paged = api.walk(&a.token, &search_uri("otter"), limit).await;
        let paged_ids: Vec<Value> = paged.iter().map(|h| h["message"]["id"].clone()).collect();
        assert_eq!(paged_ids, ids, "limit {limit}");
    }
    // The first page says there is more.
    let r = api
        .get(&format!("{}&limit=1", search_uri("otter")), &a.token)
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(arr(&r.1["items"]).len(), 1);
    assert!(r.1["next_cursor"].is_string(), "{}", r.1);
    // Walking within one room pages the same way.
    let in_two = api.walk(&a.token, &search_in("otter", &two), 1).await;
    assert_eq!(in_two.len(), 4);
}

#[actix_rt::test]
async fn hits_show_the_message_as_the_searcher_sees_it() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let dm = api.dm(&a, &b).await;
    let png = api.upload(&a, "cat.png", "image/png", PNG).await;
    let (st, m) = api
        .post(
            &format!("/api/v1/rooms/{dm}/messages"),
            &a.token,
            json!({"content": "capybara picture", "attachment_id": png["id"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let r = api
        .put(
            &format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", s(&m["id"])),
            &b.token,
            None,
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    for (u, me) in [(&a, false), (&b, true)] {
        let h = hits(&api, u, &search_uri("capybara")).await;
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["message"], api.message(u, &dm, &m["id"]).await);
        assert_eq!(h[0]["message"]["attachment"], png);
        assert_eq!(
            h[0]["message"]["reactions"],
            json!([{"emoji": "👍", "count": 1, "me": me}])
        );
        assert_eq!(h[0]["room"]["id"], dm.as_str());
        assert_eq!(h[0]["room"]["kind"], "direct");
        assert!(h[0]["room"]["name"].is_string(), "{h:?}");
        let narrowed = hits(&api, u, &search_in("picture", &dm)).await;
        assert_eq!(narrowed.len(), 1);
    }
}
