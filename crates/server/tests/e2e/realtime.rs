//! The WebSocket gateway, as clients meet it.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::*;

/// The seqs of the `message:new` frames among `frames`.
fn seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f["type"] == "message:new")
        .map(|f| f["payload"]["message"]["seq"].as_u64().unwrap())
        .collect()
}

both!(two_users_chat, |store| async move {
    let s = Server::start(store).await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let room = s.room(&alice, "public").await;
    s.join(&bob, &room).await;
    let mut a = s.connect(&alice.token).await;
    let mut b = s.connect(&bob.token).await;

    a.send(
        "message:send",
        json!({"room_id": room, "content": "hi bob", "client_msg_id": "k1"}),
        Some("r1"),
    )
    .await;
    let ack = a.next_of("ack").await;
    assert_eq!(ack["ref"], "r1");
    assert_eq!(ack["payload"]["message"]["seq"], 1);
    for c in [&mut a, &mut b] {
        let m = c.next_of("message:new").await;
        assert_eq!(m["payload"]["message"]["content"], "hi bob");
        assert_eq!(m["payload"]["room_id"], room.as_str());
        assert_eq!(
            m["payload"]["version"], 3,
            "created 1, bob joined 2, message 3"
        );
    }
    // A message sent over REST reaches both sockets too.
    s.send(&bob, &room, "hello alice").await;
    for c in [&mut a, &mut b] {
        let m = c.next_of("message:new").await;
        assert_eq!(m["payload"]["message"]["seq"], 2);
        assert_eq!(m["payload"]["message"]["sender"]["username"], "bob");
    }
});

both!(every_device_gets_every_event, |store| async move {
    let s = Server::start(store).await;
    let (alice, carol) = (s.user("alice").await, s.user("carol").await);
    let room = s.room(&alice, "public").await;
    s.join(&carol, &room).await;
    let phone = s.login("carol").await;
    let mut laptop = s.connect(&carol.token).await;
    let mut mobile = s.connect(&phone).await;
    s.send(&alice, &room, "one").await;
    laptop
        .send(
            "message:send",
            json!({"room_id": room, "content": "two"}),
            None,
        )
        .await;
    for c in [&mut laptop, &mut mobile] {
        let got: Vec<Value> = vec![
            c.next_of("message:new").await,
            c.next_of("message:new").await,
        ];
        assert_eq!(seqs(&got), vec![1, 2]);
    }
});

both!(
    a_non_member_hears_nothing_of_a_private_room,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, eve) = (s.user("alice").await, s.user("eve").await);
        let room = s.room(&alice, "private").await;
        let mut e = s.connect(&eve.token).await;
        s.send(&alice, &room, "secret").await;
        let heard = e.drain().await;
        assert!(
            heard.iter().all(|f| f["type"] != "message:new"),
            "{heard:?}"
        );
        // Nor may eve type there: the room does not exist for her.
        e.send("typing", json!({"room_id": room}), Some("t")).await;
        let err = e.next_of("error").await;
        assert_eq!(err["payload"]["code"], "not_found");
        assert_eq!(err["ref"], "t");
    }
);

both!(a_kick_stops_delivery_at_once, |store| async move {
    let s = Server::start(store).await;
    let (owner, bob) = (s.user("owner").await, s.user("bob").await);
    let room = s.room(&owner, "public").await;
    s.join(&bob, &room).await;
    let mut b = s.connect(&bob.token).await;
    s.send(&owner, &room, "before").await;
    assert_eq!(
        b.next_of("message:new").await["payload"]["message"]["content"],
        "before"
    );
    s.ok(
        "DELETE",
        &format!("/api/v1/rooms/{room}/members/{}", bob.id),
        &owner.token,
        None,
    )
    .await;
    let left = b.next_of("member:left").await;
    assert_eq!(left["payload"]["user_id"], bob.id.as_str());
    s.send(&owner, &room, "after").await;
    let heard = b.drain().await;
    assert!(
        heard.iter().all(|f| f["type"] != "message:new"),
        "nothing after member:left, not even the kick's system message: {heard:?}"
    );
});

both!(
    joining_over_the_socket_starts_delivery,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob) = (s.user("alice").await, s.user("bob").await);
        let room = s.room(&alice, "public").await;
        let mut a = s.connect(&alice.token).await;
        let mut b = s.connect(&bob.token).await;
        b.send("room:join", json!({"room_id": room}), Some("j"))
            .await;
        let ack = b.next_of("ack").await;
        assert_eq!(ack["payload"]["room"]["member_count"], 2);
        let joined = a.next_of("member:joined").await;
        assert_eq!(joined["payload"]["user"]["username"], "bob");
        assert_eq!(joined["payload"]["version"], 2);
        s.send(&alice, &room, "welcome").await;
        assert_eq!(
            b.next_of("message:new").await["payload"]["message"]["content"],
            "welcome"
        );
    }
);

both!(logout_closes_the_socket, |store| async move {
    let s = Server::start(store).await;
    let alice = s.user("alice").await;
    let mut a = s.connect(&alice.token).await;
    s.ok("POST", "/api/v1/auth/logout", &alice.token, None)
        .await;
    assert_eq!(a.closed().await, Ended::Closed(Some(1008)));
});

both!(
    a_bad_token_is_refused_before_the_upgrade,
    |store| async move {
        let s = Server::start(store).await;
        for token in ["", "garbage"] {
            let url = format!("ws://127.0.0.1:{}/api/v1/ws?token={token}", s.port);
            match tokio_tungstenite::connect_async(url).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                    assert_eq!(res.status(), 401)
                }
                other => panic!("expected 401, got {:?}", other.map(|_| ())),
            }
        }
    }
);

both!(
    concurrent_senders_arrive_complete_and_in_order,
    |store| async move {
        let s = std::sync::Arc::new(Server::start(store).await);
        let owner = s.user("owner").await;
        let room = s.room(&owner, "public").await;
        let mut senders = Vec::new();
        for i in 0..10 {
            let u = s.user(&format!("sender{i}")).await;
            s.join(&u, &room).await;
            senders.push(u);
        }
        let mut receivers = Vec::new();
        for i in 0..3 {
            let u = s.user(&format!("reader{i}")).await;
            s.join(&u, &room).await;
            receivers.push(s.connect(&u.token).await);
        }
        let tasks: Vec<_> = senders
            .into_iter()
            .map(|u| {
                let (s, room) = (s.clone(), room.clone());
                tokio::spawn(async move {
                    for n in 0..10 {
                        s.send(&u, &room, &format!("{} #{n}", u.name)).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        for r in &mut receivers {
            let mut got = Vec::new();
            while got.len() < 100 {
                got.push(r.next_of("message:new").await);
            }
            assert_eq!(
                seqs(&got),
                (1..=100).collect::<Vec<u64>>(),
                "complete and in seq order"
            );
            let versions: Vec<u64> = got
                .iter()
                .map(|f| f["payload"]["version"].as_u64().unwrap())
                .collect();
            assert!(
                versions.windows(2).all(|w| w[1] == w[0] + 1),
                "versions run on by one"
            );
        }
    }
);

// A burst as fast as the server can take it, to a reader that keeps up:
// every message arrives and the reader is never cut off (slow means bytes
// or time behind, not a count of frames).
both!(
    a_reader_that_keeps_up_is_never_cut_off,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob) = (s.user("alice").await, s.user("bob").await);
        let room = s.room(&alice, "public").await;
        s.join(&bob, &room).await;
        let mut reader = s.connect(&bob.token).await;
        let mut sender = s.connect(&alice.token).await;
        let count = 3000u64;
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            while (got.len() as u64) < count {
                got.push(reader.next_of("message:new").await);
            }
            reader.send("ping", json!({}), Some("still here")).await;
            assert_eq!(reader.next_of("pong").await["ref"], "still here");
            seqs(&got)
        });
        for i in 0..count {
            sender
                .send(
                    "message:send",
                    json!({"room_id": room, "content": format!("burst {i}")}),
                    None,
                )
                .await;
        }
        assert_eq!(reading.await.unwrap(), (1..=count).collect::<Vec<u64>>());
    }
);

both!(a_client_that_does_not_read_is_cut_off, |store| async move {
    let s = Server::start_with(store, &[("CHAT__HTTP__WS_QUEUE_BYTES", "65536")]).await;
    let (alice, slow, fast) = (
        s.user("alice").await,
        s.user("slow").await,
        s.user("fast").await,
    );
    let room = s.room(&alice, "public").await;
    s.join(&slow, &room).await;
    s.join(&fast, &room).await;
    let mut slowpoke = s.connect_small_buffer(&slow.token).await;
    let mut reader = s.connect(&fast.token).await;
    // 16 KB frames, 8 MB in all: more than the server's socket send buffer
    // (4 MB at most here) and the slow client's pinned receive buffer can
    // hold, so the server's queue for it backs up.
    let text = "\u{1F600}".repeat(4000);
    let count = 500;
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < count {
            got.push(reader.next_of("message:new").await);
        }
        seqs(&got)
    });
    for _ in 0..count {
        s.send(&alice, &room, &text).await;
    }
    assert_eq!(
        reading.await.unwrap(),
        (1..=count as u64).collect::<Vec<u64>>()
    );
    // Only now does the slow client read: what was buffered, then 1013.
    assert_eq!(slowpoke.closed().await, Ended::Closed(Some(1013)));
});

// The closing handshake (RFC 6455 §5.5.1): a client's Close is answered
// with a Close carrying its code, so the client sees a clean 1000 and not
// 1006 (no Close frame, the TCP connection just gone).
both!(
    a_clients_close_is_answered_with_a_close,
    |store| async move {
        let s = Server::start(store).await;
        let alice = s.user("alice").await;
        let mut a = s.connect(&alice.token).await;
        a.ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        assert_eq!(a.closed().await, Ended::Closed(Some(1000)));
        // The other codes a client may send are echoed too.
        let mut b = s.connect(&alice.token).await;
        b.ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        })))
        .await
        .unwrap();
        assert_eq!(b.closed().await, Ended::Closed(Some(1001)));
    }
);

both!(an_oversize_frame_closes_with_1009, |store| async move {
    let s = Server::start(store).await;
    let alice = s.user("alice").await;
    let mut a = s.connect(&alice.token).await;
    a.send_raw(&"x".repeat(70 * 1024)).await;
    assert_eq!(a.closed().await, Ended::Closed(Some(1009)));
});

both!(
    a_bad_frame_gets_an_error_and_the_socket_stays,
    |store| async move {
        let s = Server::start(store).await;
        let alice = s.user("alice").await;
        let mut a = s.connect(&alice.token).await;
        a.send_raw("this is not json").await;
        assert_eq!(a.next_of("error").await["payload"]["code"], "bad_json");
        a.send("dance", json!({}), Some("d")).await;
        let e = a.next_of("error").await;
        assert_eq!(
            (e["payload"]["code"].as_str(), e["ref"].as_str()),
            (Some("unknown_type"), Some("d"))
        );
        a.send("message:send", json!({"content": "no room"}), Some("m"))
            .await;
        let e = a.next_of("error").await;
        assert_eq!(e["payload"]["code"], "validation");
        assert!(e["payload"]["fields"]["room_id"].is_string(), "{e}");
        a.send("ping", json!({}), Some("p")).await;
        let pong = a.next_of("pong").await;
        assert_eq!(pong["ref"], "p");
    }
);

both!(typing_reaches_others_not_oneself, |store| async move {
    let s = Server::start(store).await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let room = s.room(&alice, "public").await;
    s.join(&bob, &room).await;
    let mut a = s.connect(&alice.token).await;
    let mut b = s.connect(&bob.token).await;
    b.send("typing", json!({"room_id": room}), None).await;
    let t = a.next_of("typing").await;
    assert_eq!(t["payload"]["user"]["username"], "bob");
    assert_eq!(t["payload"]["room_id"], room.as_str());
    // Throttled: a second notice right away is not announced again.
    b.send("typing", json!({"room_id": room}), None).await;
    let later = a.drain().await;
    assert!(later.iter().all(|f| f["type"] != "typing"), "{later:?}");
    let own = b.drain().await;
    assert!(
        own.iter().all(|f| f["type"] != "typing"),
        "nobody gets their own typing"
    );
});

both!(
    presence_follows_the_first_and_last_connection,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob) = (s.user("alice").await, s.user("bob").await);
        let room = s.room(&alice, "public").await;
        s.join(&bob, &room).await;
        let mut a = s.connect(&alice.token).await;
        let b1 = s.connect(&bob.token).await;
        let on = a.next_of("presence").await;
        assert_eq!(
            (
                on["payload"]["user_id"].as_str(),
                on["payload"]["presence"].as_str()
            ),
            (Some(bob.id.as_str()), Some("online"))
        );
        let (_, u) = s
            .call(
                "GET",
                &format!("/api/v1/users/{}", bob.id),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(u["presence"], "online");
        let b2 = s.connect(&bob.token).await;
        drop(b1);
        let quiet = a.drain().await;
        assert!(
            quiet.iter().all(|f| f["type"] != "presence"),
            "bob still has a connection: {quiet:?}"
        );
        drop(b2);
        let off = a.next_of("presence").await;
        assert_eq!(off["payload"]["presence"], "offline");
        assert!(off["payload"]["last_seen_at"].is_string());
        let (_, u) = s
            .call(
                "GET",
                &format!("/api/v1/users/{}", bob.id),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(u["presence"], "offline");
        assert_eq!(u["last_seen_at"], off["payload"]["last_seen_at"]);
    }
);

both!(
    read_markers_reach_the_room_and_ones_other_devices,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob) = (s.user("alice").await, s.user("bob").await);
        let room = s.room(&alice, "public").await;
        s.join(&bob, &room).await;
        s.send(&alice, &room, "one").await;
        s.send(&alice, &room, "two").await;
        let mut a = s.connect(&alice.token).await;
        let second = s.login("bob").await;
        let mut b = s.connect(&bob.token).await;
        let mut b2 = s.connect(&second).await;
        b.send("read", json!({"room_id": room, "seq": 2}), None)
            .await;
        for c in [&mut a, &mut b2] {
            let r = c.next_of("read").await;
            assert_eq!(
                (
                    r["payload"]["user_id"].as_str(),
                    r["payload"]["seq"].as_u64()
                ),
                (Some(bob.id.as_str()), Some(2))
            );
        }
        b.send("read", json!({"room_id": room, "seq": 9}), Some("past"))
            .await;
        let e = b.next_of("error").await;
        assert_eq!(
            (e["payload"]["code"].as_str(), e["ref"].as_str()),
            (Some("validation"), Some("past"))
        );
        b.send("delivered", json!({"room_id": room, "seq": 2}), Some("d"))
            .await;
        let after = b.drain().await;
        assert!(
            after.iter().all(|f| f["type"] != "error"),
            "delivered has no reply: {after:?}"
        );
    }
);

both!(rooms_created_with_me_reach_me_live, |store| async move {
    let s = Server::start(store).await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let mut b = s.connect(&bob.token).await;
    let r = s
        .ok(
            "POST",
            "/api/v1/rooms",
            &alice.token,
            Some(json!({"name": "group", "kind": "private", "member_ids": [bob.id]})),
        )
        .await;
    let room = r["id"].as_str().unwrap();
    let upd = b.next_of("room:updated").await;
    assert_eq!(upd["payload"]["room"]["id"], room);
    s.send(&alice, room, "hi group").await;
    assert_eq!(
        b.next_of("message:new").await["payload"]["message"]["content"],
        "hi group"
    );
    s.ok(
        "DELETE",
        &format!("/api/v1/rooms/{room}"),
        &alice.token,
        None,
    )
    .await;
    let gone = b.next_of("room:deleted").await;
    assert_eq!(gone["payload"]["room_id"], room);
});

/// What a client keeps of a room: its messages by seq and its members by id.
#[derive(Debug, PartialEq)]
struct Copy {
    room: Value,
    messages: std::collections::BTreeMap<u64, Value>,
    members: std::collections::BTreeMap<String, Value>,
}

impl Copy {
    /// A fresh read of everything: what a client that never left would hold.
    async fn read(s: &Server, who: &User, room: &str) -> Self {
        let room_v = s
            .ok("GET", &format!("/api/v1/rooms/{room}"), &who.token, None)
            .await;
        let h = s
            .ok(
                "GET",
                &format!("/api/v1/rooms/{room}/messages?limit=100"),
                &who.token,
                None,
            )
            .await;
        let m = s
            .ok(
                "GET",
                &format!("/api/v1/rooms/{room}/members?limit=100"),
                &who.token,
                None,
            )
            .await;
        Self {
            room: room_v,
            messages: h["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["seq"].as_u64().unwrap(), m.clone()))
                .collect(),
            members: m["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["user"]["id"].as_str().unwrap().to_owned(),
                        strip_presence(m.clone()),
                    )
                })
                .collect(),
        }
    }

    /// Applies one `changes` answer; the version it is complete up to.
    fn apply(&mut self, c: &Value) -> u64 {
        self.room = c["room"].clone();
        for m in c["messages"].as_array().unwrap() {
            self.messages.insert(m["seq"].as_u64().unwrap(), m.clone());
        }
        for m in c["members"].as_array().unwrap() {
            self.members.insert(
                m["user"]["id"].as_str().unwrap().to_owned(),
                strip_presence(m.clone()),
            );
        }
        for id in c["left_member_ids"].as_array().unwrap() {
            self.members.remove(id.as_str().unwrap());
        }
        c["version"].as_u64().unwrap()
    }
}

/// Presence (and when a user was last seen) is live state, not room state:
/// leave it out of comparisons.
fn strip_presence(mut member: Value) -> Value {
    member["user"]["presence"] = Value::Null;
    member["user"]["last_seen_at"] = Value::Null;
    member
}

both!(
    a_client_back_from_away_catches_up_exactly,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob, carol, dave) = (
            s.user("alice").await,
            s.user("bob").await,
            s.user("carol").await,
            s.user("dave").await,
        );
        let room = s.room(&alice, "public").await;
        s.join(&bob, &room).await;
        s.join(&carol, &room).await;
        s.send(&alice, &room, "before").await;
        // Bob holds a copy and its version, then goes away.
        let b = s.connect(&bob.token).await;
        let mut copy = Copy::read(&s, &bob, &room).await;
        let mut version = copy.room["version"].as_u64().unwrap();
        drop(b);
        // While he is away: messages, a kick of someone else, a join, a role change.
        for i in 0..5 {
            s.send(&alice, &room, &format!("missed {i}")).await;
        }
        s.ok(
            "DELETE",
            &format!("/api/v1/rooms/{room}/members/{}", carol.id),
            &alice.token,
            None,
        )
        .await;
        s.join(&dave, &room).await;
        s.ok(
            "PUT",
            &format!("/api/v1/rooms/{room}/members/{}/role", dave.id),
            &alice.token,
            Some(json!({"role": "admin"})),
        )
        .await;
        s.send(&dave, &room, "hello as admin").await;
        // Back: catch up in small pages.
        loop {
            let c = s
                .ok(
                    "GET",
                    &format!("/api/v1/rooms/{room}/changes?since={version}&limit=3"),
                    &bob.token,
                    None,
                )
                .await;
            version = copy.apply(&c);
            if !c["has_more"].as_bool().unwrap() {
                break;
            }
        }
        let fresh = Copy::read(&s, &bob, &room).await;
        assert_eq!(version, fresh.room["version"].as_u64().unwrap());
        assert_eq!(copy, fresh, "exactly the state of a client that never left");
        assert!(!copy.members.contains_key(&carol.id));
        assert_eq!(copy.members[&dave.id]["role"], "admin");
    }
);

both!(
    edits_deletes_and_reactions_reach_members_only,
    |store| async move {
        let s = Server::start(store).await;
        let (alice, bob, eve) = (
            s.user("alice").await,
            s.user("bob").await,
            s.user("eve").await,
        );
        // A private room of alice and bob; eve is outside it.
        let room = s
            .ok(
                "POST",
                "/api/v1/rooms",
                &alice.token,
                Some(json!({"name": "pair", "kind": "private", "member_ids": [bob.id]})),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let m = s.send(&alice, &room, "lunch at noon?").await;
        let id = m["id"].as_str().unwrap().to_owned();
        let mut a = s.connect(&alice.token).await;
        let mut b = s.connect(&bob.token).await;
        let mut e = s.connect(&eve.token).await;

        // Bob reacts: both hear reaction:updated with the counts and the version.
        s.ok(
            "PUT",
            &format!("/api/v1/messages/{id}/reactions/%F0%9F%91%8D"),
            &bob.token,
            None,
        )
        .await;
        for c in [&mut a, &mut b] {
            let r = c.next_of("reaction:updated").await;
            let p = &r["payload"];
            assert_eq!(p["room_id"], room.as_str());
            assert_eq!(p["message_id"], id.as_str());
            assert_eq!(p["emoji"], "👍");
            assert_eq!(p["user_id"], bob.id.as_str());
            assert_eq!(p["added"], true);
            assert_eq!(p["reactions"], json!([{"emoji": "👍", "count": 1}]));
            assert_eq!(p["version"], 3, "created 1, message 2, reaction 3");
        }
        // Reacting the same way again changes nothing and says nothing.
        s.ok(
            "PUT",
            &format!("/api/v1/messages/{id}/reactions/%F0%9F%91%8D"),
            &bob.token,
            None,
        )
        .await;

        // Alice edits: each member's copy says whether the reaction is theirs.
        s.ok(
            "PATCH",
            &format!("/api/v1/messages/{id}"),
            &alice.token,
            Some(json!({"content": "lunch at one?"})),
        )
        .await;
        let mine = |f: &Value| f["payload"]["message"]["reactions"][0]["me"].clone();
        let ua = a.next_of("message:updated").await;
        let ub = b.next_of("message:updated").await;
        for u in [&ua, &ub] {
            assert_eq!(u["payload"]["message"]["content"], "lunch at one?");
            assert!(u["payload"]["message"]["edited_at"].is_string());
            assert_eq!(
                u["payload"]["version"], 4,
                "the repeated reaction counted nothing"
            );
        }
        assert_eq!(mine(&ua), json!(false), "alice did not react");
        assert_eq!(mine(&ub), json!(true), "bob did");

        // Bob takes the reaction back; alice deletes the message.
        s.ok(
            "DELETE",
            &format!("/api/v1/messages/{id}/reactions/%F0%9F%91%8D"),
            &bob.token,
            None,
        )
        .await;
        s.ok(
            "DELETE",
            &format!("/api/v1/messages/{id}"),
            &alice.token,
            None,
        )
        .await;
        for c in [&mut a, &mut b] {
            let r = c.next_of("reaction:updated").await;
            assert_eq!(r["payload"]["added"], false);
            assert_eq!(r["payload"]["reactions"], json!([]));
            assert_eq!(r["payload"]["version"], 5);
            let d = c.next_of("message:deleted").await;
            assert_eq!(
                d["payload"],
                json!({"room_id": room, "id": id, "seq": 1, "version": 6})
            );
        }
        // Deleting again is quiet.
        s.ok(
            "DELETE",
            &format!("/api/v1/messages/{id}"),
            &alice.token,
            None,
        )
        .await;
        for c in [&mut a, &mut b] {
            let heard = c.drain().await;
            assert!(
                heard
                    .iter()
                    .all(|f| f["type"] != "message:deleted" && f["type"] != "reaction:updated"),
                "{heard:?}"
            );
        }
        // Eve heard none of it.
        let heard = e.drain().await;
        assert!(
            heard.iter().all(|f| !matches!(
                f["type"].as_str(),
                Some("reaction:updated" | "message:updated" | "message:deleted")
            )),
            "{heard:?}"
        );
    }
);

both!(read_frames_move_receipts, |store| async move {
    let s = Server::start(store).await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let room = s.room(&alice, "public").await;
    s.join(&bob, &room).await;
    for text in ["one", "two", "three"] {
        s.send(&alice, &room, text).await;
    }
    let mut a = s.connect(&alice.token).await;
    let mut b = s.connect(&bob.token).await;
    b.send("delivered", json!({"room_id": room, "seq": 3}), None)
        .await;
    b.send("read", json!({"room_id": room, "seq": 2}), None)
        .await;
    let r = a.next_of("read").await;
    assert_eq!(
        r["payload"],
        json!({"room_id": room, "user_id": bob.id, "seq": 2})
    );
    let receipts = s
        .ok(
            "GET",
            &format!("/api/v1/rooms/{room}/receipts"),
            &alice.token,
            None,
        )
        .await;
    let bob_receipt = receipts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        bob_receipt,
        json!({"user_id": bob.id, "last_read_seq": 2, "last_delivered_seq": 3})
    );
    // A marker past the end is refused on the socket, which stays open.
    b.send("delivered", json!({"room_id": room, "seq": 9}), Some("x"))
        .await;
    let err = b.next_of("error").await;
    assert_eq!(err["payload"]["code"], "validation");
    assert_eq!(err["ref"], "x");
});

both!(
    pipelined_sends_keep_their_order_and_a_read_waits_for_them,
    |store| async move {
        // A client that sends without waiting for each ack: every send is
        // acknowledged, acks come back in the order the frames went, the
        // seqs follow that order, and a `read` sent right behind them is
        // applied after them (it names the last seq, which must exist).
        let s = Server::start(store).await;
        let alice = s.user("alice").await;
        let room = s.room(&alice, "private").await;
        let mut a = s.connect(&alice.token).await;
        const N: usize = 40;
        for i in 0..N {
            a.send(
                "message:send",
                json!({"room_id": room, "content": format!("m{i}"), "client_msg_id": format!("k{i}")}),
                Some(&format!("r{i}")),
            )
            .await;
        }
        a.send("read", json!({"room_id": room, "seq": N}), Some("read"))
            .await;
        let mut acks = Vec::new();
        while acks.len() < N {
            let f = a.next().await;
            match f["type"].as_str() {
                Some("ack") => acks.push(f),
                Some("error") => panic!("a send failed: {f}"),
                _ => {}
            }
        }
        for (i, ack) in acks.iter().enumerate() {
            assert_eq!(ack["ref"], format!("r{i}").as_str());
            assert_eq!(
                ack["payload"]["message"]["content"],
                format!("m{i}").as_str()
            );
            assert_eq!(ack["payload"]["message"]["seq"], i + 1);
        }
        // The read marker landed after the sends: no error came back, and
        // the receipts say so.
        assert!(
            a.drain().await.iter().all(|f| f["type"] != "error"),
            "the read was refused"
        );
        let receipts = s
            .ok(
                "GET",
                &format!("/api/v1/rooms/{room}/receipts"),
                &alice.token,
                None,
            )
            .await;
        assert_eq!(receipts["items"][0]["last_read_seq"], N);
    }
);
