//! Group commit, seen from outside: sends queued behind one another share a
//! transaction, and every promise of `append` still holds per send.
//!
//! To make a batch form on purpose, a test holds its room's row lock from a
//! connection of its own: the writer's first transaction waits on it, the
//! other sends queue up behind, and when the lock goes they commit together
//! in the next transaction (the writer's statistics show how many there were).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::room::direct_pair;
use chat_domain::{
    ClientMsgId, HistoryQuery, MessageId, PageLimit, Role, RoomId, RoomKind, RoomName, UserId,
};
use chat_ports::{AppendError, Appended, NewMessage, SendRefused, Stores};
use chat_store_postgres::testing::{TestDb, test_config};
use chat_store_postgres::{PgStore, WriterConfig};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::adapter::{at, message, new_room, room, user};

/// A store whose sends all go through one writer.
async fn one_lane(db: &TestDb) -> Arc<PgStore> {
    let config = chat_store_postgres::PgConfig {
        writer: WriterConfig {
            lanes: 1,
            ..WriterConfig::default()
        },
        ..test_config(db.url().to_owned())
    };
    Arc::new(PgStore::connect(&config).await.unwrap())
}

/// Holds `room`'s row lock until the connection commits.
async fn hold(db: &TestDb, room: RoomId) -> AsyncPgConnection {
    let mut locker = db.connect().await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM rooms WHERE id = '{}' FOR UPDATE;",
            room.0
        ))
        .await
        .unwrap();
    locker
}

/// Waits until a connection of this database waits on a lock (the writer's
/// transaction, stuck behind `hold`). Asked from a connection outside any
/// transaction: inside one, `pg_stat_activity` is a snapshot that never
/// changes.
async fn wait_for_lock_waiter(db: &TestDb) {
    let conn = &mut db.connect().await;
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(conn)
        .await
        .unwrap();
        if waiting.n > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer never reached the held lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn spawn_send(s: &Stores, new: NewMessage) -> JoinHandle<Result<Appended, AppendError>> {
    let messages = s.messages.clone();
    tokio::spawn(async move { messages.append(&new).await })
}

fn keyed(mut m: NewMessage, key: &str) -> NewMessage {
    m.client_msg_id = Some(ClientMsgId::parse(key).unwrap());
    m
}

/// Queues `sends` behind a held lock on `room`, lets them go, and returns
/// their answers in order, with the number of transactions they took.
async fn as_one_batch(
    db: &TestDb,
    store: &Arc<PgStore>,
    room: RoomId,
    sends: Vec<NewMessage>,
) -> (Vec<Result<Appended, AppendError>>, u64) {
    let s = store.clone().stores();
    let before = store
        .writer_stats()
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut locker = hold(db, room).await;
    // The first send takes the writer and waits on the lock.
    let mut sends = sends.into_iter();
    let mut tasks = vec![spawn_send(&s, sends.next().unwrap())];
    wait_for_lock_waiter(db).await;
    // The rest queue behind it, one at a time so that the queue's order is
    // the order of `sends` (spawned tasks may run in any order).
    for new in sends {
        let queued = store.writer_queued();
        tasks.push(spawn_send(&s, new));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.writer_queued() == queued {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a send never reached the queue"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    locker.batch_execute("COMMIT").await.unwrap();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let after = store
        .writer_stats()
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    (answers, after - before)
}

fn new_one(a: &Result<Appended, AppendError>) -> &chat_domain::Message {
    match a {
        Ok(Appended::New(m)) => m,
        other => panic!("expected a new message, got {other:?}"),
    }
}

async fn seqs_of(s: &Stores, room: RoomId, viewer: UserId) -> Vec<u64> {
    s.messages
        .history(
            room,
            HistoryQuery::Latest(PageLimit::new(100).unwrap()),
            viewer,
        )
        .await
        .unwrap()
        .messages
        .iter()
        .map(|m| m.seq)
        .collect()
}

/// One batch holding a send from a non-member, a reply into another room and
/// a send into a blocked direct room: each of those fails alone with its own
/// refusal, and the good sends around them commit with gapless seqs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_send_in_a_batch_fails_alone() {
    let db = TestDb::create().await;
    let store = one_lane(&db).await;
    let s = store.clone().stores();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let stranger = user(&s, "stranger").await;
    let here = room(&s, alice, &[bob]).await;
    let there = room(&s, alice, &[]).await;
    let elsewhere = match s
        .messages
        .append(&message(there, alice, "over there"))
        .await
        .unwrap()
    {
        Appended::New(m) => m,
        other => panic!("{other:?}"),
    };
    let mut dm = new_room(RoomKind::Direct, alice);
    dm.name = RoomName::parse("dm").unwrap();
    dm.direct_pair = Some(direct_pair(alice, bob));
    let dm = s
        .rooms
        .create(&dm, &[(alice, Role::Member), (bob, Role::Member)])
        .await
        .unwrap()
        .id;
    s.blocks.block(bob, alice, at(1)).await.unwrap();

    let mut bad_reply = message(here, bob, "re");
    bad_reply.reply_to = Some(elsewhere.id);
    let sends = vec![
        message(here, alice, "one"),
        message(here, bob, "two"),
        message(here, stranger, "let me in"),
        bad_reply,
        message(dm, alice, "hello?"),
        message(here, alice, "three"),
        message(here, bob, "four"),
    ];
    let (answers, batches) = as_one_batch(&db, &store, here, sends).await;
    assert!(
        batches <= 2,
        "the first send alone, then the rest together: {batches} transactions"
    );

    let good: Vec<u64> = [0, 1, 5, 6]
        .iter()
        .map(|&i| new_one(&answers[i]).seq)
        .collect();
    assert_eq!(good, vec![1, 2, 3, 4], "gapless, in queue order");
    let refusals: Vec<Option<SendRefused>> = [2, 3, 4]
        .iter()
        .map(|&i| match &answers[i] {
            Err(AppendError::Refused(why)) => Some(why.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        vec![
            Some(SendRefused::NotAMember {
                room_kind: RoomKind::Private
            }),
            Some(SendRefused::NoSuchReply),
            Some(SendRefused::Blocked),
        ]
    );
    assert_eq!(seqs_of(&s, here, alice).await, vec![1, 2, 3, 4]);
    let now = s.rooms.find(here).await.unwrap().unwrap();
    assert_eq!((now.last_seq, now.version), (4, 5), "nothing burned");
    assert_eq!(s.rooms.find(dm).await.unwrap().unwrap().last_seq, 0);
}

/// Ten sends with one `client_msg_id` in one batch store one message; the
/// same key in a later batch gets that message back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_in_a_batch_and_across_batches_stores_one_message() {
    let db = TestDb::create().await;
    let store = one_lane(&db).await;
    let s = store.clone().stores();
    let alice = user(&s, "alice").await;
    let r = room(&s, alice, &[]).await;

    let mut sends = vec![message(r, alice, "opener")];
    sends.extend((0..10).map(|i| keyed(message(r, alice, &format!("try {i}")), "same")));
    let (answers, _) = as_one_batch(&db, &store, r, sends).await;
    // Whichever of the ten reached the writer first is the one stored.
    let stored: Vec<&chat_domain::Message> = answers[1..]
        .iter()
        .filter_map(|a| match a {
            Ok(Appended::New(m)) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "{answers:?}");
    let first = stored[0].clone();
    assert_eq!(first.seq, 2);
    for a in &answers[1..] {
        match a {
            Ok(Appended::New(m)) | Ok(Appended::Existing(m)) => assert_eq!(m, &first),
            other => panic!("expected the first message back, got {other:?}"),
        }
    }
    let again = s
        .messages
        .append(&keyed(message(r, alice, "much later"), "same"))
        .await
        .unwrap();
    assert_eq!(again, Appended::Existing(first));
    assert_eq!(seqs_of(&s, r, alice).await, vec![1, 2]);
}

/// Two stores on one database, as two server processes, each with its own
/// writers and pool, send into one room at once: seqs are 1..=N with no gap
/// and no repeat, each send's version is its seq + 1, and every id is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_sending_at_once_get_gapless_seqs() {
    let db = TestDb::create().await;
    let node_a = db.store().await.stores();
    let node_b = db.store().await.stores();
    let mut members = Vec::new();
    for i in 0..8 {
        members.push(user(&node_a, &format!("sender{i}")).await);
    }
    let r = room(&node_a, members[0], &members[1..]).await;
    const SENDS: usize = 400;
    let tasks: Vec<_> = (0..SENDS)
        .map(|i| {
            let node = if i % 2 == 0 { &node_a } else { &node_b };
            spawn_send(node, message(r, members[i % 8], &format!("m{i}")))
        })
        .collect();
    let mut seqs = Vec::new();
    let mut ids = HashSet::new();
    for t in tasks {
        let m = new_one(&t.await.unwrap()).clone();
        assert_eq!(m.version, m.seq + 1);
        seqs.push(m.seq);
        ids.insert(m.id);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=SENDS as u64).collect::<Vec<_>>());
    let mut stored: HashSet<MessageId> = HashSet::new();
    let mut before = None;
    loop {
        let query = match before {
            None => HistoryQuery::Latest(PageLimit::new(100).unwrap()),
            Some(seq) => HistoryQuery::Before(seq, PageLimit::new(100).unwrap()),
        };
        let h = node_b.messages.history(r, query, members[0]).await.unwrap();
        stored.extend(h.messages.iter().map(|m| m.id));
        match h.messages.first() {
            Some(m) if h.has_more => before = Some(m.seq),
            _ => break,
        }
    }
    assert_eq!(stored, ids);
}

/// A room deleted while its sends wait in the queue: they are refused as
/// `NoRoom`, and nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_room_gone_refuses_its_queued_sends() {
    let db = TestDb::create().await;
    let store = one_lane(&db).await;
    let s = store.clone().stores();
    let alice = user(&s, "alice").await;
    let r = room(&s, alice, &[]).await;
    let ghost = RoomId(Uuid::now_v7());
    let (answers, _) = as_one_batch(
        &db,
        &store,
        r,
        vec![message(r, alice, "here"), message(ghost, alice, "nowhere")],
    )
    .await;
    assert_eq!(new_one(&answers[0]).seq, 1);
    assert!(matches!(
        answers[1],
        Err(AppendError::Refused(SendRefused::NoRoom))
    ));
}

#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The writer's lookups are planned once per connection, on whatever the
/// statistics say then. Planned on a new database (tables never analyzed)
/// and kept while the tables grow, they must look each send up by index,
/// never scan or hash a whole table: the first form of these statements,
/// with `EXISTS` subqueries, got a plan that hashed every message on each
/// batch, and sends slowed down as the table grew until the next ANALYZE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lookups_stay_index_lookups_when_planned_on_empty_tables() {
    use diesel_async::RunQueryDsl;
    let db = TestDb::create().await;
    let mut conn = db.connect().await;
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (i, sql) in chat_store_postgres::testing::SEND_LOOKUPS
        .iter()
        .enumerate()
    {
        conn.batch_execute(&format!("PREPARE lookup{i} AS {sql}"))
            .await
            .unwrap();
        let params = vec!["NULL"; sql.matches('$').count()].join(", ");
        let lines: Vec<PlanLine> =
            diesel::sql_query(format!("EXPLAIN EXECUTE lookup{i}({params})"))
                .load(&mut conn)
                .await
                .unwrap();
        let plan = lines
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
            .join("\n");
        for table in ["rooms", "messages", "memberships", "users", "attachments"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {table}")),
                "statement {i} scans {table}:\n{plan}"
            );
        }
        assert!(
            !plan.contains("Hash"),
            "statement {i} hashes a table:\n{plan}"
        );
    }
}

/// Marker writes are batched too, and each keeps its own answer: in one
/// batch, a mark on a room that does not exist is `NotFound` alone, one
/// user's marks of one room apply in order ("moved" as one call at a time
/// would say), and last-seen times land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn marker_writes_in_one_batch_keep_their_own_answers() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let s = store.clone().stores();
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let r = room(&s, alice, &[bob]).await;
    for i in 0..5 {
        s.messages
            .append(&message(r, alice, &format!("m{i}")))
            .await
            .unwrap();
    }
    // A first mark makes alice's row, which the test then holds locked.
    assert!(s.messages.mark_read(r, alice, 1).await.unwrap());
    let mut locker = db.connect().await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM read_markers WHERE room_id = '{}' AND user_id = '{}' FOR UPDATE;",
            r.0, alice.0
        ))
        .await
        .unwrap();
    let first = {
        let m = s.messages.clone();
        tokio::spawn(async move { m.mark_read(r, alice, 2).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ghost = RoomId(Uuid::now_v7());
    let m = s.messages.clone();
    let u = s.users.clone();
    let rest = tokio::spawn(async move {
        tokio::join!(
            m.mark_read(r, alice, 4),
            m.mark_read(r, alice, 3),
            m.mark_delivered(r, bob, 5),
            m.mark_read(ghost, bob, 1),
            u.set_last_seen(bob, at(99)),
        )
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    locker.batch_execute("COMMIT").await.unwrap();

    assert!(first.await.unwrap().unwrap());
    let (four, three, delivered, ghostly, seen) = rest.await.unwrap();
    assert!(four.unwrap(), "2 -> 4 moves");
    assert!(!three.unwrap(), "4 -> 3 never moves back");
    assert!(delivered.unwrap());
    assert!(matches!(ghostly, Err(chat_ports::StoreError::NotFound)));
    seen.unwrap();
    let a = s.messages.markers(r, alice).await.unwrap();
    assert_eq!((a.last_read_seq, a.last_delivered_seq), (4, 4));
    let b = s.messages.markers(r, bob).await.unwrap();
    assert_eq!((b.last_read_seq, b.last_delivered_seq), (0, 5));
    assert_eq!(
        s.users.find(bob).await.unwrap().unwrap().last_seen_at,
        Some(at(99))
    );
}

/// The queue is bounded: with the writer stuck behind a lock and its queue
/// full, a further send fails at once as `Unavailable` (503 with
/// `Retry-After` over HTTP) instead of waiting; the queued ones commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_at_once() {
    let db = TestDb::create().await;
    let config = chat_store_postgres::PgConfig {
        writer: WriterConfig {
            lanes: 1,
            max_batch: 256,
            queue: 1,
        },
        ..test_config(db.url().to_owned())
    };
    let store = Arc::new(PgStore::connect(&config).await.unwrap());
    let s = store.clone().stores();
    let alice = user(&s, "alice").await;
    let r = room(&s, alice, &[]).await;
    let mut locker = hold(&db, r).await;
    let stuck = spawn_send(&s, message(r, alice, "first"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let queued = spawn_send(&s, message(r, alice, "second"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = s.messages.append(&message(r, alice, "third")).await;
    assert!(
        matches!(
            refused,
            Err(AppendError::Store(chat_ports::StoreError::Unavailable(_)))
        ),
        "{refused:?}"
    );
    assert_eq!(
        store
            .writer_stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    locker.batch_execute("COMMIT").await.unwrap();
    assert_eq!(new_one(&stuck.await.unwrap()).seq, 1);
    assert_eq!(new_one(&queued.await.unwrap()).seq, 2);
    assert_eq!(seqs_of(&s, r, alice).await, vec![1, 2]);
}
