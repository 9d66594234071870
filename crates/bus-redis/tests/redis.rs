//! The Redis bus against real Redis servers: the shared one on
//! 127.0.0.1:6379 (each test on a channel of its own), and a private
//! `redis-server` on a free port for the test that stops and starts it.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step should fail the test loudly"
)]

use std::time::Duration;

use chat_bus_redis::{RedisBus, RedisConfig, wire};
use chat_domain::{
    Attachment, AttachmentId, DisplayName, Email, Membership, Message, MessageId, MessageKind,
    ReactionSummary, Role, Room, RoomDescription, RoomId, RoomKind, RoomName, SenderInfo,
    SessionId, User, UserId, Username,
};
use chat_ports::{Event, EventBus, EventStream, Reactors, Topic};
use uuid::Uuid;

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_767_225_600 + secs, 123_456_000).unwrap()
}

fn id() -> Uuid {
    Uuid::now_v7()
}

fn user() -> User {
    User {
        id: UserId(id()),
        username: Username::parse("bob_2").unwrap(),
        email: Email::parse("bob@example.com").unwrap(),
        display_name: DisplayName::parse("Bob").unwrap(),
        avatar: None,
        created_at: at(0),
        last_seen_at: None,
    }
}

fn sender() -> SenderInfo {
    SenderInfo {
        id: UserId(id()),
        username: Username::parse("alice").unwrap(),
        display_name: "Alice ✨".to_owned(),
    }
}

fn room() -> Room {
    Room {
        id: RoomId(id()),
        kind: RoomKind::Direct,
        name: RoomName::parse("alice, bob").unwrap(),
        description: RoomDescription::parse("notes").unwrap(),
        created_by: UserId(id()),
        created_at: at(1),
        member_count: 2,
        last_seq: 7,
        version: 12,
        direct_pair: Some((UserId(id()), UserId(id()))),
    }
}

fn message() -> Message {
    Message {
        id: MessageId(id()),
        room_id: RoomId(id()),
        seq: 3,
        sender: sender(),
        kind: MessageKind::Image,
        content: "look \u{1F600}".to_owned(),
        attachment: Some(Attachment {
            id: AttachmentId(id()),
            uploader: UserId(id()),
            filename: "cat.png".to_owned(),
            content_type: "image/png".to_owned(),
            size: 26,
            created_at: at(2),
        }),
        reply_to_id: Some(MessageId(id())),
        reactions: vec![ReactionSummary {
            emoji: "👍".to_owned(),
            count: 2,
            me: true,
        }],
        created_at: at(3),
        edited_at: Some(at(4)),
        deleted: false,
        version: 9,
    }
}

/// One event of every kind, with every optional part present somewhere.
fn every_event() -> Vec<Event> {
    let (r, u) = (RoomId(id()), UserId(id()));
    vec![
        Event::RoomCreated {
            room: room(),
            member_ids: vec![u, UserId(id())],
        },
        Event::MessageNew { message: message() },
        Event::MessageUpdated {
            message: message(),
            reactors: vec![Reactors {
                emoji: "👍".to_owned(),
                user_ids: vec![u],
            }],
        },
        Event::MessageDeleted {
            room_id: r,
            id: MessageId(id()),
            seq: 4,
            version: 10,
        },
        Event::ReactionUpdated {
            room_id: r,
            message_id: MessageId(id()),
            emoji: "🎉".to_owned(),
            user_id: u,
            added: true,
            reactions: vec![("🎉".to_owned(), 1), ("👍".to_owned(), 3)],
            version: 11,
        },
        Event::RoomUpdated { room: room() },
        Event::RoomDeleted {
            room_id: r,
            member_ids: vec![u],
        },
        Event::MemberJoined {
            membership: Membership {
                room_id: r,
                user_id: u,
                role: Role::Admin,
                joined_at: at(5),
            },
            user: User {
                id: u,
                username: Username::parse("bob_2").unwrap(),
                email: Email::parse("bob@example.com").unwrap(),
                display_name: DisplayName::parse("Bob").unwrap(),
                avatar: Some(AttachmentId(id())),
                created_at: at(0),
                last_seen_at: Some(at(6)),
            },
            version: 13,
        },
        Event::MemberUpdated {
            room_id: r,
            user_id: u,
            role: Role::Owner,
            version: 14,
        },
        Event::MemberLeft {
            room_id: r,
            user_id: u,
            version: 15,
        },
        Event::Read {
            room_id: r,
            user_id: u,
            seq: 7,
        },
        Event::Typing {
            room_id: r,
            user: sender(),
        },
        Event::Presence {
            user_id: u,
            online: false,
            last_seen_at: Some(at(8)),
            room_ids: vec![r, RoomId(id())],
        },
        Event::SessionEnded {
            user_id: u,
            session_id: SessionId(id()),
        },
    ]
}

#[test]
fn every_event_survives_the_wire() {
    let node = id();
    for event in every_event() {
        let bytes = wire::encode(node, &event).unwrap();
        let (from, back) = wire::decode(&bytes).unwrap();
        assert_eq!(from, node);
        assert_eq!(back, event);
    }
}

#[test]
fn a_bad_message_is_an_error_not_a_panic() {
    assert!(wire::decode(b"not json").is_err());
    assert!(
        wire::decode(br#"{"node":"00000000-0000-0000-0000-000000000000","event":{"type":"nope"}}"#)
            .is_err()
    );
    // Well-formed JSON, but a username the domain refuses.
    let mut bytes = wire::encode(
        id(),
        &Event::Typing {
            room_id: RoomId(id()),
            user: sender(),
        },
    )
    .unwrap();
    let text = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("\"alice\"", "\"a\"");
    bytes = text.into_bytes();
    assert!(matches!(
        wire::decode(&bytes),
        Err(wire::WireError::Invalid("username"))
    ));
}

fn config(url: &str) -> RedisConfig {
    RedisConfig {
        channel: format!("chat:test:{}", id()),
        ..RedisConfig::new(url)
    }
}

async fn next(s: &mut Box<dyn EventStream>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .ok()
        .flatten()
}

async fn quiet(s: &mut Box<dyn EventStream>) -> bool {
    tokio::time::timeout(Duration::from_millis(300), s.next())
        .await
        .is_err()
}

fn read(seq: u64) -> Event {
    Event::Read {
        room_id: RoomId(Uuid::nil()),
        user_id: UserId(Uuid::nil()),
        seq,
    }
}

/// Subscribes to `bus` listening to `topics`, and waits until Redis
/// says the bus's subscriber connection has them all.
async fn listening(bus: &RedisBus, topics: &[Topic]) -> Box<dyn EventStream> {
    let stream = bus.subscribe();
    let interest = stream.interest().expect("a narrowing bus");
    for t in topics {
        interest.listen(*t);
    }
    wait_for_topics(bus, topics.len() as u64).await;
    stream
}

async fn wait_for_topics(bus: &RedisBus, n: u64) {
    for _ in 0..100 {
        let s = bus.stats();
        if s.subscribed.load(std::sync::atomic::Ordering::Relaxed)
            && s.topics.load(std::sync::atomic::Ordering::Relaxed) == n
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the bus never listened to {n} topics");
}

const NIL_ROOM: Topic = Topic::Room(RoomId(Uuid::nil()));

/// Waits until the bus's subscriber connection is up.
async fn subscribed(bus: &RedisBus) {
    for _ in 0..100 {
        if bus
            .stats()
            .subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bus never subscribed");
}

/// Two nodes on one channel: what either publishes reaches both, once
/// each, in the order published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_once_each_in_order() {
    let config = config("redis://127.0.0.1:6379");
    let a = RedisBus::connect(&config).await.unwrap();
    let b = RedisBus::connect(&config).await.unwrap();
    let mut at_a = listening(&a, &[NIL_ROOM]).await;
    let mut at_b = listening(&b, &[NIL_ROOM]).await;
    for seq in 1..=50 {
        a.publish(read(seq)).await;
    }
    b.publish(read(100)).await;
    // A hears its own at once and B's from Redis; B hears its own at once,
    // wherever that falls among A's.
    let mut heard_a = Vec::new();
    let mut heard_b = Vec::new();
    for _ in 0..51 {
        heard_a.push(next(&mut at_a).await.unwrap());
        heard_b.push(next(&mut at_b).await.unwrap());
    }
    let theirs_in_order: Vec<Event> = (1..=50).map(read).collect();
    assert_eq!(heard_a[..50], theirs_in_order[..]);
    assert_eq!(heard_a[50], read(100));
    let at_b_from_a: Vec<Event> = heard_b
        .iter()
        .filter(|e| **e != read(100))
        .cloned()
        .collect();
    assert_eq!(at_b_from_a, theirs_in_order);
    assert_eq!(heard_b.iter().filter(|e| **e == read(100)).count(), 1);
    assert!(quiet(&mut at_a).await, "no echo of a node's own events");
    assert!(quiet(&mut at_b).await);
    assert_eq!(
        b.stats()
            .received
            .load(std::sync::atomic::Ordering::Relaxed),
        50
    );
}

/// A private `redis-server` of the test's own, on a free port.
struct PrivateRedis {
    port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (it runs on every machine of this project)");
        let me = Self { port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return me;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Redis stopped and started under two nodes: meanwhile each node still
/// delivers its own events (nothing waits, nothing panics); once Redis is
/// back, the nodes resubscribe by themselves and cross-node delivery
/// resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_keeps_local_delivery_and_heals() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let config = config(&redis.url());
    let a = RedisBus::connect(&config).await.unwrap();
    let b = RedisBus::connect(&config).await.unwrap();
    let mut at_a = listening(&a, &[NIL_ROOM]).await;
    let mut at_b = listening(&b, &[NIL_ROOM]).await;
    a.publish(read(1)).await;
    assert_eq!(next(&mut at_a).await, Some(read(1)));
    assert_eq!(next(&mut at_b).await, Some(read(1)));

    redis.stop();
    for _ in 0..100 {
        if !b
            .stats()
            .subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !b.stats()
            .subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let publishing = tokio::time::timeout(Duration::from_secs(1), a.publish(read(2))).await;
    assert!(publishing.is_ok(), "a publish never waits for Redis");
    assert_eq!(
        next(&mut at_a).await,
        Some(read(2)),
        "local delivery goes on"
    );
    assert!(quiet(&mut at_b).await, "the other node cannot hear it");

    let _redis = PrivateRedis::start(port);
    // Back, each node listens to its topics again by itself.
    wait_for_topics(&a, 1).await;
    wait_for_topics(&b, 1).await;
    // The publisher's connection comes back on its next use: retry until
    // an event crosses.
    let mut crossed = false;
    for seq in 3..60 {
        a.publish(read(seq)).await;
        assert_eq!(next(&mut at_a).await, Some(read(seq)));
        if let Some(e) = tokio::time::timeout(Duration::from_millis(200), at_b.next())
            .await
            .ok()
            .flatten()
        {
            assert!(matches!(e, Event::Read { seq: s, .. } if s >= 3));
            crossed = true;
            break;
        }
    }
    assert!(crossed, "delivery across nodes resumed");
    assert!(
        b.stats()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

/// A node hears another node's events only for the rooms and users it
/// listens to, from the moment Redis has its subscription to the moment it
/// lets go; presence reaches every node; an event sent to two channels the
/// node listens to (a join: its room and its user) is heard once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_only_what_it_listens_to_and_each_event_once() {
    let config = config("redis://127.0.0.1:6379");
    let a = RedisBus::connect(&config).await.unwrap();
    let b = RedisBus::connect(&config).await.unwrap();
    let _at_a = a.subscribe();
    let mut at_b = b.subscribe();
    subscribed(&b).await;
    let interest = at_b.interest().unwrap();
    let (here, elsewhere) = (RoomId(id()), RoomId(id()));
    let who = sender();
    let typing = |room| Event::Typing {
        room_id: room,
        user: who.clone(),
    };

    // Not listening to anything: only what goes everywhere comes.
    a.publish(typing(here)).await;
    let online = Event::Presence {
        user_id: UserId(id()),
        online: true,
        last_seen_at: None,
        room_ids: vec![elsewhere],
    };
    a.publish(online.clone()).await;
    assert_eq!(next(&mut at_b).await, Some(online));

    // Listening to `here` (twice: counted), not to `elsewhere`.
    interest.listen(Topic::Room(here));
    interest.listen(Topic::Room(here));
    wait_for_topics(&b, 1).await;
    a.publish(typing(elsewhere)).await;
    a.publish(typing(here)).await;
    assert_eq!(next(&mut at_b).await, Some(typing(here)));

    // A join into `here` of a user B also listens to: one copy.
    let joiner = user();
    interest.listen(Topic::User(joiner.id));
    wait_for_topics(&b, 2).await;
    let joined = Event::MemberJoined {
        membership: Membership {
            room_id: here,
            user_id: joiner.id,
            role: Role::Member,
            joined_at: at(1),
        },
        user: joiner.clone(),
        version: 2,
    };
    a.publish(joined.clone()).await;
    assert_eq!(next(&mut at_b).await, Some(joined));
    assert!(quiet(&mut at_b).await, "the second copy is skipped");
    assert_eq!(
        b.stats()
            .duplicates
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // Let go once: still listening (the other reason holds); twice: gone.
    interest.unlisten(Topic::Room(here));
    interest.unlisten(Topic::User(joiner.id));
    wait_for_topics(&b, 1).await;
    a.publish(typing(here)).await;
    assert_eq!(next(&mut at_b).await, Some(typing(here)));
    interest.unlisten(Topic::Room(here));
    wait_for_topics(&b, 0).await;
    a.publish(typing(here)).await;
    assert!(
        quiet(&mut at_b).await,
        "nobody here listens to the room now"
    );
}

// ---------------------------------------------------------------- presence

use chat_bus_redis::RedisPresence;
use chat_ports::Presence;

async fn node(prefix: &str) -> RedisPresence {
    RedisPresence::connect("redis://127.0.0.1:6379", prefix, Duration::from_secs(30))
        .await
        .unwrap()
}

/// A user's first connection anywhere and their last anywhere are each
/// seen by exactly one node; a second device on another node changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_and_last_are_across_nodes() {
    let prefix = format!("chat:test:{}", id());
    let (a, b) = (node(&prefix).await, node(&prefix).await);
    let u = UserId(id());
    assert!(a.arrived(u).await, "the first device anywhere");
    assert!(!b.arrived(u).await, "a second device on another node");
    assert!(!a.left(u).await, "one device still on B");
    assert!(b.left(u).await, "the last device anywhere");

    // Two nodes at once: one of them is first.
    let v = UserId(id());
    let (x, y) = tokio::join!(a.arrived(v), b.arrived(v));
    assert!(x ^ y, "exactly one first: {x} {y}");
    let (x, y) = tokio::join!(a.left(v), b.left(v));
    assert!(x ^ y, "exactly one last: {x} {y}");
}

/// A node that stops saying it lives is dead: one other node claims its
/// users, and those no other node holds come back, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_are_orphans_once() {
    let prefix = format!("chat:test:{}", id());
    let (a, b, dead) = (
        node(&prefix).await,
        node(&prefix).await,
        node(&prefix).await,
    );
    let (only_there, also_on_a) = (UserId(id()), UserId(id()));
    assert!(dead.arrived(only_there).await);
    assert!(dead.arrived(also_on_a).await);
    assert!(!a.arrived(also_on_a).await);
    assert!(a.orphans().await.is_empty(), "everyone is alive");

    // The node dies: its liveness key goes as its expiry would take it.
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}:alive:{}", dead.node()))
        .query_async(&mut conn)
        .await
        .unwrap();

    let (from_a, from_b) = tokio::join!(a.orphans(), b.orphans());
    let mut all: Vec<UserId> = from_a.into_iter().chain(from_b).collect();
    all.sort();
    assert_eq!(
        all,
        vec![only_there],
        "once, and not the user A still holds"
    );
    assert!(a.orphans().await.is_empty());
    assert!(b.orphans().await.is_empty());
    assert!(a.left(also_on_a).await, "A held the last connection");
}

// ---------------------------------------------------------------- limits

use chat_bus_redis::RedisLimits;
use chat_ports::SharedLimits;

/// Two nodes draw from one allowance: a burst of 3 is 3 requests in all,
/// whichever node they reach; the next waits about one emission interval.
/// Another key has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_allowance() {
    let prefix = format!("chat:test:{}", id());
    let a = RedisLimits::connect("redis://127.0.0.1:6379", &prefix)
        .await
        .unwrap();
    let b = RedisLimits::connect("redis://127.0.0.1:6379", &prefix)
        .await
        .unwrap();
    assert_eq!(a.take("messages:u1", 60, 3).await, Some(Ok(())));
    assert_eq!(b.take("messages:u1", 60, 3).await, Some(Ok(())));
    assert_eq!(a.take("messages:u1", 60, 3).await, Some(Ok(())));
    match b.take("messages:u1", 60, 3).await {
        Some(Err(wait)) => assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_millis(1000),
            "{wait:?}"
        ),
        other => panic!("the fourth should wait, got {other:?}"),
    }
    assert_eq!(a.take("messages:u2", 60, 3).await, Some(Ok(())));
}

/// With Redis gone the limiter says so (`None`: the node limits alone)
/// instead of waiting or refusing everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_node_limits_alone() {
    let mut redis = PrivateRedis::start(free_port());
    let limits = RedisLimits::connect(&redis.url(), "chat:test")
        .await
        .unwrap();
    assert_eq!(limits.take("auth:ip", 20, 10).await, Some(Ok(())));
    redis.stop();
    let answered = tokio::time::timeout(Duration::from_secs(2), limits.take("auth:ip", 20, 10))
        .await
        .expect("a check never hangs on a missing Redis");
    assert_eq!(answered, None);
}
