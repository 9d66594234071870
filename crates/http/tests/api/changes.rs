//! Resuming after a disconnect: `GET /rooms/{id}/changes?since=&limit=`
//! brings a client's stored copy of a room to exactly what a fresh read shows.

use std::collections::BTreeMap;

use actix_web::http::{Method, StatusCode};

use crate::support::*;

fn changes(room: &str, query: &str) -> String {
    format!("/api/v1/rooms/{room}/changes?{query}")
}

/// What a client keeps of a room: the room, its history by seq, its members.
#[derive(Debug, Clone, PartialEq)]
struct Copy {
    room: Value,
    messages: BTreeMap<u64, Value>,
    /// In join order, as the member list gives them.
    members: Vec<Value>,
}

impl Copy {
    /// Applies one `changes` answer; returns its `version`.
    fn apply(&mut self, c: &Value) -> u64 {
        self.room = c["room"].clone();
        for m in arr(&c["messages"]) {
            self.messages.insert(n(&m["seq"]), m.clone());
        }
        let gone: Vec<&Value> = arr(&c["left_member_ids"]).iter().collect();
        self.members.retain(|m| !gone.contains(&&m["user"]["id"]));
        for m in arr(&c["members"]) {
            self.members
                .retain(|old| old["user"]["id"] != m["user"]["id"]);
            self.members.push(m.clone());
        }
        // The member list's order: joined_at, then user id.
        self.members.sort_by_key(|m| {
            let at = chrono::DateTime::parse_from_rfc3339(&s(&m["joined_at"]))
                .unwrap_or_else(|_| panic!("joined_at of {m}"));
            (at, s(&m["user"]["id"]))
        });
        n(&c["version"])
    }
}

/// The room as a fresh read shows it to `u`: `GET /rooms/{id}`, the whole
/// history, the whole member list.
async fn fresh_read(api: &Api, u: &User, room: &str) -> Copy {
    let h = api.history(u, room, "limit=100").await;
    assert_eq!(
        h["has_more"], false,
        "the test rooms stay under 100 messages"
    );
    Copy {
        room: api.room(u, room).await,
        messages: arr(&h["messages"])
            .iter()
            .map(|m| (n(&m["seq"]), m.clone()))
            .collect(),
        members: api
            .walk(&u.token, &format!("/api/v1/rooms/{room}/members"), 100)
            .await,
    }
}

/// One `changes` answer; asserts 200 and the contract's shape.
async fn get_changes(api: &Api, u: &User, room: &str, query: &str) -> Value {
    let (st, b) = api.get(&changes(room, query), &u.token).await;
    assert_eq!(st, StatusCode::OK, "{query}: {b}");
    assert_keys(
        &b,
        &[
            "version",
            "room",
            "messages",
            "members",
            "left_member_ids",
            "has_more",
        ],
    );
    assert_room(&b["room"]);
    arr(&b["messages"]).iter().for_each(assert_message);
    arr(&b["members"]).iter().for_each(assert_member);
    arr(&b["left_member_ids"]).iter().for_each(assert_uuid);
    assert!(b["has_more"].is_boolean(), "{b}");
    let seqs = Api::seqs(&b);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order: {seqs:?}");
    b
}

/// Follows `has_more` from `since` with pages of `limit`, applying each
/// answer to `copy`; returns how many answers it took.
async fn catch_up(
    api: &Api,
    u: &User,
    room: &str,
    copy: &mut Copy,
    since: u64,
    limit: u32,
) -> usize {
    let mut since = since;
    for round in 1..=500 {
        let c = get_changes(api, u, room, &format!("since={since}&limit={limit}")).await;
        let page = arr(&c["messages"]).len();
        assert!(page <= limit as usize, "a page over the limit: {c}");
        let more = c["has_more"] == true;
        if more {
            assert_eq!(page, limit as usize, "a page with more is full: {c}");
            assert!(n(&c["version"]) > since, "no progress: {c}");
        } else {
            assert_eq!(c["version"], c["room"]["version"], "{c}");
        }
        since = copy.apply(&c);
        if !more {
            return round;
        }
    }
    panic!("changes never caught up");
}

/// A client stores version V, then messages, a kick of someone else, a join,
/// a leave and a role change happen; `changes?since=V` brings its copy to
/// exactly what a fresh read shows.
#[actix_rt::test]
async fn a_stale_client_catches_up_exactly() {
    let api = Api::new().await;
    let owner = api.user("olga").await;
    let bert = api.user("bert").await;
    let carol = api.user("carol").await;
    let dave = api.user("dave").await;
    let erin = api.user("erin").await;
    let room = api.public_room(&owner, "lobby").await;
    for u in [&bert, &carol, &erin] {
        api.join(u, &room).await;
    }
    api.say(&owner, &room, "welcome").await;
    api.say(&bert, &room, "hi all").await;

    // Bert's copy, and the version it is good to.
    let mut copy = fresh_read(&api, &bert, &room).await;
    let since = n(&copy.room["version"]);

    api.say(&carol, &room, "bye soon").await;
    let (st, b) = api
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", carol.id),
            &owner.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "kick: {b}");
    api.join(&dave, &room).await;
    api.say(&dave, &room, "hello, I'm new").await;
    api.leave(&erin, &room).await;
    api.set_role(&owner, &room, &dave, "admin").await;
    api.say(&owner, &room, "dave is an admin now").await;
    let (st, b) = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &owner.token,
            json!({"description": "the front room"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    let c = get_changes(&api, &bert, &room, &format!("since={since}")).await;
    let now = fresh_read(&api, &bert, &room).await;
    assert_eq!(c["room"], now.room);
    assert_eq!(c["version"], now.room["version"]);
    assert_eq!(c["has_more"], false);
    // carol's message, the kick's note, dave's, the role change's note, the last.
    assert_eq!(Api::seqs(&c), vec![3, 4, 5, 6, 7]);
    assert_eq!(c["messages"][1]["kind"], "system");
    assert_eq!(c["messages"][3]["kind"], "system");
    let members: Vec<(String, String)> = arr(&c["members"])
        .iter()
        .map(|m| (s(&m["user"]["id"]), s(&m["role"])))
        .collect();
    assert_eq!(members, vec![(dave.id.clone(), "admin".to_owned())]);
    let mut left: Vec<String> = arr(&c["left_member_ids"]).iter().map(s).collect();
    left.sort();
    let mut want = vec![carol.id.clone(), erin.id.clone()];
    want.sort();
    assert_eq!(left, want);

    copy.apply(&c);
    assert_eq!(copy, now, "exactly what a fresh read shows");

    // Nothing since: nothing but the room.
    let again = get_changes(&api, &bert, &room, &format!("since={}", c["version"])).await;
    assert_eq!(again["messages"], json!([]));
    assert_eq!(again["members"], json!([]));
    assert_eq!(again["left_member_ids"], json!([]));
    assert_eq!(again["has_more"], false);
    assert_eq!(again["version"], c["version"]);
    assert_eq!(again["room"], now.room);
}

/// Small pages, each asked for from the last answer's `version`, reach the
/// same state as one big answer, from any starting point.
#[actix_rt::test]
async fn has_more_pages_with_small_limits() {
    let api = Api::new().await;
    let owner = api.user("owner").await;
    let peers = [
        api.user("peer1").await,
        api.user("peer2").await,
        api.user("peer3").await,
    ];
    let room = api.private_room(&owner, "group", &[&peers[0]]).await;
    let mut starts = vec![(
        0,
        Copy {
            room: Value::Null,
            messages: BTreeMap::new(),
            members: Vec::new(),
        },
    )];
    let first = fresh_read(&api, &owner, &room).await;
    starts.push((n(&first.room["version"]), first));
    for (i, p) in peers.iter().enumerate() {
        if i > 0 {
            let (st, b) = api
                .post(
                    &format!("/api/v1/rooms/{room}/members"),
                    &owner.token,
                    json!({"user_id": p.id}),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
        }
        for j in 0..4 {
            api.say(p, &room, &format!("{} #{j}", p.username)).await;
        }
        if i == 1 {
            api.set_role(&owner, &room, &peers[0], "admin").await;
        }
        if i == 2 {
            api.leave(&peers[1], &room).await;
        }
        let copy = fresh_read(&api, &owner, &room).await;
        starts.push((n(&copy.room["version"]), copy));
    }
    let now = fresh_read(&api, &owner, &room).await;
    let total = now.messages.len();
    assert_eq!(total, 13, "12 messages and the role change's note");

    for (since, start) in &starts {
        for limit in [1, 2, 5, 1000] {
            let mut copy = start.clone();
            let rounds = catch_up(&api, &owner, &room, &mut copy, *since, limit).await;
            assert_eq!(copy, now, "from {since} in pages of {limit}");
            if *since == 0 {
                assert_eq!(rounds, total.div_ceil(limit as usize), "pages of {limit}");
            }
        }
    }
}

/// `since` is required, a non-negative integer, at most the room's version;
/// `limit` is 1–1000 (default 100). Anything else is 400 naming the input.
#[actix_rt::test]
async fn since_and_limit_are_checked() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let room = api.public_room(&a, "pub").await;
    for i in 0..3 {
        api.say(&a, &room, &format!("m{i}")).await;
    }
    let version = api.version(&a, &room).await;
    let get = |query: String| {
        let (api, a, room) = (&api, &a, &room);
        async move { api.get(&changes(room, &query), &a.token).await }
    };

    assert_only_field(&get(String::new()).await, "since");
    assert_only_field(&get("limit=10".into()).await, "since");
    for bad in ["-1", "abc", "1.5", ""] {
        assert_only_field(&get(format!("since={bad}")).await, "since");
    }
    assert_only_field(&get(format!("since={}", version + 1)).await, "since");
    assert_only_field(&get("since=18446744073709551615".into()).await, "since");
    for bad in ["0", "1001", "-5", "x"] {
        assert_only_field(&get(format!("since=0&limit={bad}")).await, "limit");
    }
    let both = get("limit=0".into()).await;
    assert_fields(&both, &["since", "limit"]);

    // The edges are fine.
    let c = get_changes(&api, &a, &room, &format!("since={version}&limit=1000")).await;
    assert_eq!(c["messages"], json!([]));
    assert_eq!(c["version"], version);
    let c = get_changes(&api, &a, &room, "since=0&limit=1").await;
    assert_eq!(Api::seqs(&c), vec![1]);
    assert_eq!(c["has_more"], true);
    assert_eq!(c["version"], 2, "complete up to the first message");
    let c = get_changes(&api, &a, &room, "since=0").await;
    assert_eq!(Api::seqs(&c), vec![1, 2, 3], "default limit: 100");
    assert_eq!(c["has_more"], false);
}

/// Members only: a private room is 404 to others, a public one 403
/// `not_a_member`; no token is 401.
#[actix_rt::test]
async fn members_only() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let eve = api.user("eve").await;
    let public = api.public_room(&a, "pub").await;
    let private = api.private_room(&a, "priv", &[]).await;
    let dm = api.dm(&a, &a).await;
    assert_error(
        &api.get(&changes(&public, "since=0"), &eve.token).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_not_found(&api.get(&changes(&private, "since=0"), &eve.token).await);
    assert_not_found(&api.get(&changes(&dm, "since=0"), &eve.token).await);
    // A non-member learns nothing of the version either.
    assert_not_found(&api.get(&changes(&private, "since=999"), &eve.token).await);
    assert_not_found(&api.get(&changes(&unknown_id(), "since=0"), &a.token).await);
    assert_only_field(&api.get(&changes("nope", "since=0"), &a.token).await, "id");
    assert_unauthorized(
        &api.anon(Method::GET, &changes(&public, "since=0"), None)
            .await,
    );
    // Once joined, fine; once left, not again.
    api.join(&eve, &public).await;
    get_changes(&api, &eve, &public, "since=0").await;
    api.leave(&eve, &public).await;
    assert_error(
        &api.get(&changes(&public, "since=0"), &eve.token).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
}

/// A deleted room is not found, to its former members too.
#[actix_rt::test]
async fn a_deleted_room_is_not_found() {
    let api = Api::new().await;
    let a = api.user("alice").await;
    let b = api.user("bob").await;
    let room = api.private_room(&a, "doomed", &[&b]).await;
    api.say(&b, &room, "hi").await;
    get_changes(&api, &b, &room, "since=1").await;
    let (st, body) = api.delete(&format!("/api/v1/rooms/{room}"), &a.token).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    for u in [&a, &b] {
        assert_not_found(&api.get(&changes(&room, "since=1"), &u.token).await);
    }
}

/// The OpenAPI document describes the endpoint as the contract does.
#[actix_rt::test]
async fn the_endpoint_is_documented() {
    let api = Api::new().await;
    let (st, doc) = api.anon(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    let op = &doc["paths"]["/api/v1/rooms/{id}/changes"]["get"];
    assert!(op.is_object(), "no GET /api/v1/rooms/{{id}}/changes");
    for status in ["200", "400", "403", "404"] {
        assert!(
            op["responses"].get(status).is_some(),
            "{status} undocumented"
        );
    }
    assert!(
        arr(&op["security"])
            .iter()
            .any(|s| s.get("bearer").is_some()),
        "{op}"
    );
    let param = |name: &str| {
        arr(&op["parameters"])
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .clone()
    };
    let since = param("since");
    assert_eq!(
        (since["in"].clone(), since["required"].clone()),
        (json!("query"), json!(true))
    );
    let limit = param("limit");
    assert_eq!(limit["in"], "query");
    assert_ne!(limit["required"], true);
    assert_eq!(param("id")["in"], "path");
    let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
    let name = s(&schema["$ref"]);
    let name = name.rsplit('/').next().unwrap_or_default();
    let props: Vec<&String> = obj(&doc["components"]["schemas"][name]["properties"])
        .keys()
        .collect();
    let mut props: Vec<&str> = props.iter().map(|k| k.as_str()).collect();
    props.sort_unstable();
    assert_eq!(
        props,
        vec![
            "has_more",
            "left_member_ids",
            "members",
            "messages",
            "room",
            "version"
        ]
    );
}
