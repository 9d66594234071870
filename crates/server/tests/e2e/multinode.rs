//! Several server processes on one PostgreSQL database: the promises that
//! must hold across nodes, checked on the real binary.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_store_postgres::testing::TestDb;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::support::*;

/// Both nodes sign and check tokens with it, so a token works on either.
const SECRET: &str = "a-multinode-test-secret-0123456789abcdef";
/// Members of the room; the first half send through node A, the rest through B.
const USERS: usize = 6;
const SENDS_PER_USER: usize = 50;
/// Sends one REST sender or one WebSocket keeps in flight at once.
const IN_FLIGHT: usize = 5;
/// The whole scenario, start-up included.
const BUDGET: Duration = Duration::from_secs(45);
/// One step: a start-up, a request, a connection.
const STEP: Duration = Duration::from_secs(15);

/// `f`, or a panic naming `what` when it takes longer than [`STEP`].
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {STEP:?}"))
}

/// A `chat-server` process on the test database; killed when dropped, a
/// failed test included.
struct Node {
    child: tokio::process::Child,
    api: Arc<Server>,
}

impl Node {
    async fn start(name: &'static str, db: &TestDb, storage: &Path) -> Self {
        Self::start_with(name, db, storage, &[]).await
    }

    /// A node with these environment variables besides the usual ones.
    async fn start_with(
        name: &'static str,
        db: &TestDb,
        storage: &Path,
        extra: &[(&str, String)],
    ) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .env_clear()
            .env("PORT", "0")
            .env("CHAT_CONFIG_DIR", &config)
            .env("DATABASE_URL", db.url())
            .env("JWT_SECRET", SECRET)
            .env("CHAT__AUTH__BCRYPT_COST", "4")
            .env("CHAT__LIMITS__MESSAGES_PER_MINUTE", "0")
            .env("CHAT__LIMITS__AUTH_PER_MINUTE", "0")
            .env("CHAT__STORAGE__DIR", storage)
            .env("CHAT__LOG__JSON", "true")
            // Warnings and worse, plus the line that says which port it took.
            .env("RUST_LOG", "warn,chat_server=info")
            // Last, so that they win over the settings above.
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = within("the server starts", lines.next_line())
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("node {name} ended before it listened"));
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"] == "chat server listening" {
                break v["fields"]["port"].as_u64().unwrap();
            }
        };
        // Keep reading its log, so that a full pipe never stalls it, and show
        // anything it warns about.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                if v["level"] != "INFO" {
                    eprintln!("[node {name}] {line}");
                }
            }
        });
        Self {
            child,
            api: Arc::new(Server::at_port(u16::try_from(port).unwrap())),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A directory for the nodes' attachments, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    Rest,
    Ws,
}

/// What a client was told about a message it sent.
#[derive(Debug, Clone, PartialEq)]
struct Acked {
    id: String,
    seq: u64,
    sender: String,
    content: String,
}

impl Acked {
    fn of(m: &Value) -> Self {
        Self {
            id: m["id"].as_str().unwrap().to_owned(),
            seq: m["seq"].as_u64().unwrap(),
            sender: m["sender"]["id"].as_str().unwrap().to_owned(),
            content: m["content"].as_str().unwrap().to_owned(),
        }
    }
}

/// One send over REST: the status and the message.
async fn rest_send(
    node: &Server,
    who: &User,
    room: &str,
    content: &str,
    key: &str,
) -> (u16, Value) {
    let (status, m) = within(
        "a REST send",
        node.call(
            "POST",
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&who.token),
            Some(json!({"content": content, "client_msg_id": key})),
        ),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {m}");
    assert_eq!(m["content"], content, "{m}");
    (status, m)
}

/// Sends `(content, client_msg_id)` pairs over one socket, [`IN_FLIGHT`] at a
/// time; the acked messages.
async fn ws_sends(c: &mut Client, room: &str, sends: &[(String, String)]) -> Vec<Value> {
    let mut acked = Vec::new();
    for (n, chunk) in sends.chunks(IN_FLIGHT).enumerate() {
        let mut waiting = HashMap::new();
        for (k, (content, key)) in chunk.iter().enumerate() {
            let r = format!("s{n}.{k}");
            let payload = json!({"room_id": room, "content": content, "client_msg_id": key});
            within(
                "a WebSocket send",
                c.send("message:send", payload, Some(&r)),
            )
            .await;
            waiting.insert(r, content.clone());
        }
        // Other frames (message:new, presence) pass by in between.
        while !waiting.is_empty() {
            let f = c.next().await;
            let Some(r) = f["ref"].as_str() else {
                continue;
            };
            let content = waiting
                .remove(r)
                .unwrap_or_else(|| panic!("an answer to no pending send: {f}"));
            assert_eq!(f["type"], "ack", "{f}");
            let m = &f["payload"]["message"];
            assert_eq!(m["content"], content.as_str(), "{f}");
            acked.push(m.clone());
        }
    }
    acked
}

/// One send over `via`: the REST status (`None` over the socket) and the message.
async fn send_once(
    node: &Server,
    via: Via,
    who: &User,
    room: &str,
    content: &str,
    key: &str,
) -> (Option<u16>, Value) {
    match via {
        Via::Rest => {
            let (status, m) = rest_send(node, who, room, content, key).await;
            (Some(status), m)
        }
        Via::Ws => {
            let mut c = within("a WebSocket connect", node.connect(&who.token)).await;
            let sends = [(content.to_owned(), key.to_owned())];
            let mut acked = ws_sends(&mut c, room, &sends).await;
            (None, acked.remove(0))
        }
    }
}

/// The sends of user number `i` through `node`: REST, WebSocket, or half of
/// each at once, as `i` says; every acked message and how it went.
async fn user_sends(node: Arc<Server>, who: User, room: String, i: usize) -> Vec<(Via, Value)> {
    let sends: Vec<(String, String)> = (0..SENDS_PER_USER)
        .map(|j| (format!("{} says {j}", who.name), format!("u{i}-m{j}")))
        .collect();
    let (rest, ws) = match i % 3 {
        0 => (sends, Vec::new()),
        1 => (Vec::new(), sends),
        _ => {
            let mut rest = sends;
            let ws = rest.split_off(SENDS_PER_USER / 2);
            (rest, ws)
        }
    };
    // REST: IN_FLIGHT lanes, each sending its share one after another.
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..IN_FLIGHT {
        let mine: Vec<_> = rest.iter().skip(lane).step_by(IN_FLIGHT).cloned().collect();
        let (node, who, room) = (node.clone(), who.clone(), room.clone());
        lanes.spawn(async move {
            let mut acked = Vec::new();
            for (content, key) in mine {
                let (status, m) = rest_send(&node, &who, &room, &content, &key).await;
                assert_eq!(status, 201, "a first send is created: {m}");
                acked.push((Via::Rest, m));
            }
            acked
        });
    }
    let socket = async {
        if ws.is_empty() {
            return Vec::new();
        }
        let mut c = within("a WebSocket connect", node.connect(&who.token)).await;
        let acked = ws_sends(&mut c, &room, &ws).await;
        acked.into_iter().map(|m| (Via::Ws, m)).collect::<Vec<_>>()
    };
    let (mut acked, lanes) = tokio::join!(socket, lanes.join_all());
    acked.extend(lanes.into_iter().flatten());
    acked
}

/// The same `client_msg_id` sent by `who` through two nodes, one after the
/// other or both at once (`race`): both answers carry one message.
async fn replay(
    first: (Arc<Server>, Via),
    second: (Arc<Server>, Via),
    race: bool,
    who: User,
    room: String,
    k: usize,
) -> Acked {
    let (content, key) = (format!("replay {k}"), format!("replay-{k}"));
    let send = |(node, via): &(Arc<Server>, Via)| {
        let (node, via) = (node.clone(), *via);
        let (who, room, content, key) = (who.clone(), room.clone(), content.clone(), key.clone());
        async move { send_once(&node, via, &who, &room, &content, &key).await }
    };
    let ((s1, m1), (s2, m2)) = if race {
        tokio::join!(send(&first), send(&second))
    } else {
        let one = send(&first).await;
        (one, send(&second).await)
    };
    let (a, b) = (Acked::of(&m1), Acked::of(&m2));
    assert_eq!(a, b, "replay {k}: one message, whichever node answers");
    match (race, s1, s2) {
        (false, Some(s), _) => assert_eq!(s, 201, "replay {k}: the first send creates"),
        (true, Some(x), Some(y)) => {
            let mut both = [x, y];
            both.sort_unstable();
            assert_eq!(both, [200, 201], "replay {k}: exactly one send creates");
        }
        _ => {}
    }
    if let (false, Some(s)) = (race, s2) {
        assert_eq!(
            s, 200,
            "replay {k}: the replay gives back the first message"
        );
    }
    a
}

/// The room's whole history, paged backwards from the newest message.
async fn history(node: &Server, who: &User, room: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            None => format!("/api/v1/rooms/{room}/messages?limit=100"),
            Some(s) => format!("/api/v1/rooms/{room}/messages?before={s}&limit=100"),
        };
        let page = within("a history page", node.ok("GET", &path, &who.token, None)).await;
        let messages = page["messages"].as_array().unwrap().clone();
        let first = messages.first().map(|m| m["seq"].as_u64().unwrap());
        pages.push(messages);
        assert!(pages.len() <= 100, "history does not end");
        match (page["has_more"].as_bool().unwrap(), first) {
            (true, Some(s)) => before = Some(s),
            _ => break,
        }
    }
    pages.into_iter().rev().flatten().collect()
}

/// Two server processes on one database give one room gapless seqs; a
/// `client_msg_id` replayed to the other node returns the first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_gapless_room() {
    tokio::time::timeout(BUDGET, two_nodes())
        .await
        .expect("the scenario finishes within its budget");
}

async fn two_nodes() {
    let started = Instant::now();
    // Dropped in reverse: the nodes are killed, then the directory and the
    // database go.
    let db = TestDb::create().await;
    let storage = TempDir(
        std::env::temp_dir().join(format!("chat-multinode-{}", uuid::Uuid::new_v4().simple())),
    );
    let (node_a, node_b) = tokio::join!(
        Node::start("A", &db, &storage.0),
        Node::start("B", &db, &storage.0)
    );
    let (a, b) = (node_a.api.clone(), node_b.api.clone());

    // Everyone signs up and joins through node A.
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(within("sign-up", a.user(&format!("user{i}"))).await);
    }
    let room = within("create the room", a.room(&users[0], "public")).await;
    for u in &users[1..] {
        within("join", a.join(u, &room)).await;
    }
    // Creating and joining write no message, says the contract; count
    // whatever they did write rather than assume.
    let reader = &users[USERS - 1];
    let before_sends = within("history", history(&b, reader, &room)).await.len();

    // Everyone sends at once, half through each node, while a few keys are
    // replayed across the nodes.
    let mut load = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        let node = if i < USERS / 2 { a.clone() } else { b.clone() };
        load.spawn(user_sends(node, u.clone(), room.clone(), i));
    }
    let plans = [
        (0, (&a, Via::Rest), (&b, Via::Rest), false),
        (3, (&b, Via::Rest), (&a, Via::Rest), false),
        (1, (&a, Via::Ws), (&b, Via::Ws), false),
        (4, (&a, Via::Rest), (&b, Via::Ws), false),
        (2, (&a, Via::Rest), (&b, Via::Rest), true),
        (5, (&b, Via::Ws), (&a, Via::Rest), true),
    ];
    let mut replays = tokio::task::JoinSet::new();
    for (k, (i, (n1, v1), (n2, v2), race)) in plans.into_iter().enumerate() {
        let (first, second) = ((n1.clone(), v1), (n2.clone(), v2));
        replays.spawn(replay(
            first,
            second,
            race,
            users[i].clone(),
            room.clone(),
            k,
        ));
    }
    let sent: Vec<(Via, Value)> = load.join_all().await.into_iter().flatten().collect();
    let replayed = replays.join_all().await;
    let over_rest = sent.iter().filter(|(via, _)| *via == Via::Rest).count();
    assert_eq!(sent.len(), USERS * SENDS_PER_USER);

    // Every acked message, by id; each acked once with one seq.
    let mut acked: HashMap<String, Acked> = HashMap::new();
    for m in sent
        .iter()
        .map(|(_, m)| Acked::of(m))
        .chain(replayed.clone())
    {
        let id = m.id.clone();
        assert!(acked.insert(id, m.clone()).is_none(), "acked twice: {m:?}");
    }
    let seqs: HashSet<u64> = acked.values().map(|m| m.seq).collect();
    assert_eq!(seqs.len(), acked.len(), "two acked messages share a seq");

    // History, read through the other node.
    let stored = history(&b, reader, &room).await;
    let n = stored.len();
    let got: Vec<u64> = stored.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let want: Vec<u64> = (1..=n as u64).collect();
    assert!(
        got == want,
        "seqs are 1..={n} with no gap or repeat: {got:?}"
    );
    let by_id: HashMap<String, Acked> = stored
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), Acked::of(m)))
        .collect();
    assert_eq!(by_id.len(), n, "a message is stored twice");
    for m in acked.values() {
        assert_eq!(by_id.get(&m.id), Some(m), "stored as acked");
    }
    assert_eq!(
        n,
        before_sends + acked.len(),
        "nothing stored that was not acked"
    );
    for node in [&a, &b] {
        let r = within(
            "the room",
            node.ok("GET", &format!("/api/v1/rooms/{room}"), &reader.token, None),
        )
        .await;
        assert_eq!(r["last_seq"], n, "{r}");
    }
    // How often seq order passes from a node A sender to a node B sender:
    // the nodes' sends interleaved, not one after the other.
    let on_a: HashSet<&str> = users[..USERS / 2].iter().map(|u| u.id.as_str()).collect();
    let node_of: Vec<bool> = stored
        .iter()
        .filter(|m| !m["content"].as_str().unwrap().starts_with("replay"))
        .map(|m| on_a.contains(m["sender"]["id"].as_str().unwrap()))
        .collect();
    let switches = node_of.windows(2).filter(|w| w[0] != w[1]).count();
    eprintln!(
        "multinode: {} sends ({over_rest} REST, {} WebSocket) and {} replays \
         across 2 nodes: {} distinct acked messages, {before_sends} before the \
         sends, seqs 1..={n} gapless, {switches} switches between the nodes' \
         senders in seq order, in {:.1?}",
        sent.len(),
        sent.len() - over_rest,
        replayed.len(),
        acked.len(),
        started.elapsed(),
    );
}

/// The Redis every machine of this project runs; each test takes a channel
/// of its own on it.
const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Two nodes on a new database and attachment folder, sharing Redis at
/// `redis_url` on a channel of their own, with `extra` settings on both.
/// Dropped in field order: the nodes are killed, then the folder and the
/// database go.
struct Pair {
    a: Node,
    b: Node,
    _storage: TempDir,
    _db: TestDb,
}

async fn two_on_redis(redis_url: &str, extra: &[(&str, String)]) -> Pair {
    let db = TestDb::create().await;
    let storage = TempDir(
        std::env::temp_dir().join(format!("chat-e2e-pair-{}", uuid::Uuid::new_v4().simple())),
    );
    let mut env = vec![
        ("REDIS_URL", redis_url.to_owned()),
        (
            "CHAT__REDIS__CHANNEL",
            format!("chat:e2e:{}", uuid::Uuid::new_v4()),
        ),
    ];
    env.extend(extra.iter().cloned());
    let a = Node::start_with("A", &db, &storage.0, &env).await;
    let b = Node::start_with("B", &db, &storage.0, &env).await;
    Pair {
        a,
        b,
        _storage: storage,
        _db: db,
    }
}

/// With `REDIS_URL` set on both, two server processes deliver each other's
/// events: a REST send on node A and a WebSocket send on node B reach the
/// sockets on both nodes, once each; typing, a kick and a logout cross too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_cross_nodes_through_redis() {
    within_budget(async {
        let pair = two_on_redis(SHARED_REDIS, &[]).await;
        let (a, b) = (&pair.a, &pair.b);
        let alice = a.api.user("alice").await;
        let bob = a.api.user("bob").await;
        let room = a.api.room(&alice, "public").await;
        a.api.join(&bob, &room).await;
        let mut on_a = a.api.connect(&alice.token).await;
        let mut on_b = b.api.connect(&bob.token).await;

        a.api.send(&alice, &room, "from A over REST").await;
        for c in [&mut on_a, &mut on_b] {
            let m = c.next_of("message:new").await;
            assert_eq!(m["payload"]["message"]["content"], "from A over REST");
        }
        on_b.send(
            "message:send",
            json!({"room_id": room, "content": "from B over WebSocket"}),
            Some("b1"),
        )
        .await;
        assert_eq!(on_b.next_of("ack").await["ref"], "b1");
        for c in [&mut on_a, &mut on_b] {
            let m = c.next_of("message:new").await;
            assert_eq!(m["payload"]["message"]["content"], "from B over WebSocket");
            assert_eq!(m["payload"]["message"]["seq"], 2);
        }
        on_b.send("typing", json!({"room_id": room}), None).await;
        let t = on_a.next_of("typing").await;
        assert_eq!(t["payload"]["user"]["username"], "bob");
        // A read marker moved on node B reaches node A.
        on_b.send("read", json!({"room_id": room, "seq": 2}), None)
            .await;
        let r = on_a.next_of("read").await;
        assert_eq!(
            (
                r["payload"]["user_id"].as_str(),
                r["payload"]["seq"].as_u64()
            ),
            (Some(bob.id.as_str()), Some(2)),
            "{r}"
        );
        // Once each: nothing else is on its way.
        for c in [&mut on_a, &mut on_b] {
            assert!(
                c.drain().await.iter().all(|f| f["type"] != "message:new"),
                "a message delivered twice"
            );
        }
        // A kick on node A reaches bob's socket on node B, and a logout on
        // node A closes bob's socket on node B (1008).
        let (status, _) = a
            .api
            .call(
                "DELETE",
                &format!("/api/v1/rooms/{room}/members/{}", bob.id),
                Some(&alice.token),
                None,
            )
            .await;
        assert_eq!(status, 204);
        let left = on_b.next_of("member:left").await;
        assert_eq!(left["payload"]["user_id"], bob.id.as_str(), "{left}");
        a.api
            .ok("POST", "/api/v1/auth/logout", &bob.token, None)
            .await;
        assert_eq!(on_b.closed().await, Ended::Closed(Some(1008)));
        // The operator sees it: /ready says the bus is up, and node B's
        // metrics count what it received from A.
        let (status, ready) = b.api.call("GET", "/ready", None, None).await;
        assert_eq!(
            (status, ready["bus"].as_str()),
            (200, Some("up")),
            "{ready}"
        );
        let metrics = Metrics::of(&b.api.base).await;
        let sample = |name: &str| metrics.sample(name);
        assert_eq!(sample("chat_bus_connected "), 1, "{metrics}");
        assert!(sample("chat_bus_received_total ") >= 1, "{metrics}");
        assert!(sample("chat_bus_published_total ") >= 1, "{metrics}");
        assert!(
            metrics.0.contains("chat_bus_lag_microseconds_total ")
                && metrics.0.contains("chat_ws_gaps_total "),
            "{metrics}"
        );
    })
    .await;
}

/// A node's `/metrics`, read once.
struct Metrics(String);

impl Metrics {
    async fn of(base: &str) -> Self {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Self(text)
    }

    /// The value of the sample whose line starts with `name` (0 if none).
    fn sample(&self, name: &str) -> u64 {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scenario within [`BUDGET`].
async fn within_budget(f: impl Future<Output = ()>) {
    tokio::time::timeout(BUDGET, f)
        .await
        .unwrap_or_else(|_| panic!("the scenario took over {BUDGET:?}"));
}

/// Presence across nodes: a user is online while any node holds one of
/// their connections. A second device on another node announces nothing,
/// closing one of two devices announces nothing, and when the node holding
/// the last one is SIGKILLed, the others announce the user offline (here
/// within seconds: the test shortens the liveness expiry).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_spans_nodes_and_survives_a_killed_node() {
    within_budget(async {
        let mut pair = two_on_redis(
            SHARED_REDIS,
            &[
                ("CHAT__REDIS__NODE_TTL_SECS", "2".to_owned()),
                ("CHAT__REDIS__NODE_CHECK_SECS", "1".to_owned()),
            ],
        )
        .await;
        let (a, b) = (&pair.a, &mut pair.b);
        let alice = a.api.user("alice").await;
        let bob = a.api.user("bob").await;
        let room = a.api.room(&alice, "public").await;
        a.api.join(&bob, &room).await;
        let mut watcher = a.api.connect(&bob.token).await;
        watcher.drain().await;

        let laptop = a.api.connect(&alice.token).await;
        let on = watcher.next_of("presence").await;
        assert_eq!(
            (
                on["payload"]["user_id"].as_str(),
                on["payload"]["presence"].as_str()
            ),
            (Some(alice.id.as_str()), Some("online"))
        );
        let phone = b.api.connect(&alice.token).await;
        assert!(
            watcher
                .drain()
                .await
                .iter()
                .all(|f| f["type"] != "presence"),
            "a second device on another node is no news"
        );
        drop(laptop);
        assert!(
            watcher
                .drain()
                .await
                .iter()
                .all(|f| f["type"] != "presence"),
            "alice is still online on node B"
        );
        // A user list on node A says so too.
        let (_, member) = a
            .api
            .call(
                "GET",
                &format!("/api/v1/users/{}", alice.id),
                Some(&bob.token),
                None,
            )
            .await;
        assert_eq!(member["presence"], "online", "{member}");

        // Node B dies without a word, with alice's phone on it.
        b.child.start_kill().unwrap();
        let _ = b.child.wait().await;
        drop(phone);
        let off = tokio::time::timeout(Duration::from_secs(20), watcher.next_of("presence"))
            .await
            .expect("alice went offline within 20 s of her node dying");
        assert_eq!(
            (
                off["payload"]["user_id"].as_str(),
                off["payload"]["presence"].as_str()
            ),
            (Some(alice.id.as_str()), Some("offline"))
        );
        assert!(off["payload"]["last_seen_at"].is_string(), "{off}");
    })
    .await;
}

/// Rate limits are the deployment's: with a burst of 3 sends a minute,
/// three sends spread over two nodes use it up, and the fourth is 429 on
/// either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_rate_limit() {
    within_budget(async {
        let pair = two_on_redis(
            SHARED_REDIS,
            &[
                ("CHAT__LIMITS__MESSAGES_PER_MINUTE", "6".to_owned()),
                ("CHAT__LIMITS__MESSAGES_BURST", "3".to_owned()),
            ],
        )
        .await;
        let (a, b) = (&pair.a, &pair.b);
        let alice = a.api.user("alice").await;
        let room = a.api.room(&alice, "private").await;
        let path = format!("/api/v1/rooms/{room}/messages");
        let send = |node: &Node, text: &str| {
            let api = node.api.clone();
            let (path, token, body) = (path.clone(), alice.token.clone(), json!({"content": text}));
            async move { api.call("POST", &path, Some(&token), Some(body)).await }
        };
        assert_eq!(send(a, "one").await.0, 201);
        assert_eq!(send(b, "two").await.0, 201);
        assert_eq!(send(a, "three").await.0, 201);
        for node in [&a, &b] {
            let (status, body) = send(node, "too many").await;
            assert_eq!(
                (status, body["code"].as_str()),
                (429, Some("rate_limited")),
                "{body}"
            );
            assert!(
                body["retry_after"].as_u64().is_some_and(|s| s >= 1),
                "{body}"
            );
        }
    })
    .await;
}

/// A `redis-server` of the test's own, on a free port, stopped on drop.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self { port, child: None }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `/ready`'s word on the bus, polled until it is `want`.
async fn bus_becomes(node: &Node, want: &str) {
    for _ in 0..100 {
        let (_, ready) = node.api.call("GET", "/ready", None, None).await;
        if ready["bus"] == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bus never became {want}");
}

/// Redis down and up under two server processes: the nodes start without
/// it and join up when it comes; while it is away, sends are stored and
/// acknowledged and each node still serves its own sockets; when it is
/// back, delivery across nodes resumes, and what the other node missed is
/// in `changes` (nothing lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_outage_loses_nothing() {
    within_budget(async {
        let mut redis = OwnRedis::new();
        let pair = two_on_redis(&redis.url(), &[]).await;
        let (a, b) = (&pair.a, &pair.b);
        bus_becomes(a, "down").await;
        redis.start().await;
        bus_becomes(a, "up").await;
        bus_becomes(b, "up").await;

        let alice = a.api.user("alice").await;
        let bob = a.api.user("bob").await;
        let room = a.api.room(&alice, "public").await;
        a.api.join(&bob, &room).await;
        let mut on_a = a.api.connect(&alice.token).await;
        let mut on_b = b.api.connect(&bob.token).await;
        a.api.send(&alice, &room, "before").await;
        for c in [&mut on_a, &mut on_b] {
            assert_eq!(
                c.next_of("message:new").await["payload"]["message"]["content"],
                "before"
            );
        }

        redis.stop();
        bus_becomes(b, "down").await;
        let during = a.api.send(&alice, &room, "during").await;
        assert_eq!(during["seq"], 2, "stored and acknowledged: {during}");
        assert_eq!(
            on_a.next_of("message:new").await["payload"]["message"]["content"],
            "during",
            "node A still serves its own sockets"
        );
        assert!(
            on_b.drain()
                .await
                .iter()
                .all(|f| f["type"] != "message:new"),
            "node B cannot hear it"
        );

        redis.start().await;
        bus_becomes(a, "up").await;
        bus_becomes(b, "up").await;
        // The publisher reconnects on its next use: send until one crosses.
        let mut crossed = None;
        let mut last_sent = 2;
        for i in 0..20 {
            let sent = a.api.send(&alice, &room, &format!("after {i}")).await;
            last_sent = sent["seq"].as_u64().unwrap();
            if let Some(m) = on_b.try_next(Duration::from_millis(300)).await
                && m["type"] == "message:new"
            {
                crossed = Some(m);
                break;
            }
        }
        let crossed = crossed.expect("delivery across nodes resumed");
        // B's hub saw the versions jump, read what its bus lost back from
        // the store and delivered it first: B's client sees every seq from
        // 2 on, once each, in order, "during" included.
        let mut seen = vec![crossed];
        while seen.last().unwrap()["payload"]["message"]["seq"].as_u64() < Some(last_sent) {
            seen.push(on_b.next_of("message:new").await);
        }
        let seqs: Vec<u64> = seen
            .iter()
            .map(|m| m["payload"]["message"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (2..=last_sent).collect::<Vec<_>>(), "{seen:?}");
        assert_eq!(seen[0]["payload"]["message"]["content"], "during");
        let metrics = Metrics::of(&b.api.base).await;
        assert!(metrics.sample("chat_ws_refilled_total ") >= 1, "{metrics}");
        // What B's client missed is in `changes`.
        let changes = b
            .api
            .ok(
                "GET",
                &format!("/api/v1/rooms/{room}/changes?since=0"),
                &bob.token,
                None,
            )
            .await;
        let contents: Vec<&str> = changes["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert!(contents.contains(&"during"), "{contents:?}");
    })
    .await;
}

/// Senders on both nodes into one room at once, with Redis between them:
/// a watcher on each node sees every message once, seqs 1..=N in order
/// (each hub puts the room's events back in version order, whichever node
/// they came from).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_sees_one_rooms_messages_in_order() {
    within_budget(async {
        let pair = two_on_redis(SHARED_REDIS, &[]).await;
        let (a, b) = (&pair.a, &pair.b);
        let owner = a.api.user("owner").await;
        let room = a.api.room(&owner, "public").await;
        let mut senders = Vec::new();
        for i in 0..4 {
            let u = a.api.user(&format!("sender{i}")).await;
            a.api.join(&u, &room).await;
            senders.push(u);
        }
        let mut watch_a = a.api.connect(&owner.token).await;
        let mut watch_b = b.api.connect(&owner.token).await;
        const EACH: usize = 25;
        let tasks: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let node = if i % 2 == 0 {
                    a.api.clone()
                } else {
                    b.api.clone()
                };
                let (u, room) = (u.clone(), room.clone());
                tokio::spawn(async move {
                    for n in 0..EACH {
                        node.send(&u, &room, &format!("{i}-{n}")).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let total = senders.len() * EACH;
        for watcher in [&mut watch_a, &mut watch_b] {
            let mut seqs = Vec::new();
            while seqs.len() < total {
                let f = watcher
                    .try_next(Duration::from_secs(5))
                    .await
                    .expect("every message arrives");
                if f["type"] == "message:new" {
                    seqs.push(f["payload"]["message"]["seq"].as_u64().unwrap());
                }
            }
            assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>());
        }
    })
    .await;
}
