//! What only the PostgreSQL store can show: constraint names mapped to the
//! port's errors, case folding beyond ASCII, cascades, several pools (server
//! nodes) on one room, and timeouts that fail fast as `Unavailable`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_domain::room::direct_pair;
use chat_domain::{
    AttachmentId, DisplayName, Email, HistoryQuery, Login, MessageContent, MessageId, PageLimit,
    Role, RoomDescription, RoomId, RoomKind, RoomName, SessionId, Timestamp, UserId, Username,
};
use chat_ports::{
    AppendError, Appended, Conflict, NewMessage, NewRoom, NewUser, PageRequest, RoomOp, Rotation,
    SendRefused, Session, StoreError, Stores,
};
use chat_store_postgres::{PgConfig, PgStore};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use uuid::Uuid;

use chat_store_postgres::testing::{TestDb, test_config};

pub(crate) fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

pub(crate) fn new_user(name: &str, email: &str) -> NewUser {
    NewUser {
        id: UserId(Uuid::now_v7()),
        username: Username::parse(name).unwrap(),
        email: Email::parse(email).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        password_hash: "hash".to_owned(),
        created_at: at(0),
    }
}

pub(crate) async fn user(s: &Stores, name: &str) -> UserId {
    s.users
        .create(&new_user(name, &format!("{name}@example.com")))
        .await
        .unwrap()
        .id
}

pub(crate) fn new_room(kind: RoomKind, creator: UserId) -> NewRoom {
    NewRoom {
        id: RoomId(Uuid::now_v7()),
        kind,
        name: RoomName::parse("room").unwrap(),
        description: RoomDescription::default(),
        created_by: creator,
        created_at: at(0),
        direct_pair: None,
    }
}

pub(crate) async fn room(s: &Stores, owner: UserId, others: &[UserId]) -> RoomId {
    let mut members = vec![(owner, Role::Owner)];
    members.extend(others.iter().map(|u| (*u, Role::Member)));
    s.rooms
        .create(&new_room(RoomKind::Private, owner), &members)
        .await
        .unwrap()
        .id
}

pub(crate) fn message(room: RoomId, sender: UserId, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::now_v7()),
        room_id: room,
        sender,
        kind: None,
        content: MessageContent::parse(text, false).unwrap(),
        attachment: None,
        reply_to: None,
        client_msg_id: None,
        created_at: at(1),
    }
}

async fn send(s: &Stores, room: RoomId, sender: UserId, text: &str) -> chat_domain::Message {
    match s
        .messages
        .append(&message(room, sender, text))
        .await
        .unwrap()
    {
        Appended::New(m) => m,
        Appended::Existing(m) => panic!("a new message was expected, not {m:?}"),
    }
}

fn session(user: UserId) -> Session {
    Session {
        id: SessionId(Uuid::now_v7()),
        user_id: user,
        generation: 0,
        created_at: at(0),
        expires_at: at(3600),
        revoked: false,
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, what: Conflict) {
    match r {
        Err(StoreError::Conflict(w)) if w == what => {}
        other => panic!("expected a conflict on {what}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "expected NotFound, got {r:?}"
    );
}

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {r:?}"
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str, room: RoomId) -> i64 {
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(room.0)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

async fn fresh() -> (TestDb, Stores) {
    let db = TestDb::create().await;
    let stores = db.store().await.stores();
    (db, stores)
}

// ---------------------------------------------------------------- errors

/// A taken id is `Conflict(Id)`, whichever table it is in; only an
/// attachment's is `Conflict(Attachment)`, as its port asks (see the
/// contract), and a message's is the send's own refusal, `IdTaken`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taken_id_is_a_conflict_on_id() {
    let (_db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let mut again = new_user("alice2", "alice2@example.com");
    again.id = alice;
    assert_conflict(s.users.create(&again).await, Conflict::Id);

    let sess = session(alice);
    s.sessions.create(&sess).await.unwrap();
    assert_conflict(s.sessions.create(&sess).await, Conflict::Id);

    let r = room(&s, alice, &[]).await;
    let mut same = new_room(RoomKind::Public, alice);
    same.id = r;
    assert_conflict(
        s.rooms.create(&same, &[(alice, Role::Owner)]).await,
        Conflict::Id,
    );

    let first = send(&s, r, alice, "one").await;
    let mut dup = message(r, alice, "two");
    dup.id = first.id;
    assert!(matches!(
        s.messages.append(&dup).await,
        Err(AppendError::Refused(SendRefused::IdTaken))
    ));
    let now = s.rooms.find(r).await.unwrap().unwrap();
    assert_eq!(
        (now.last_seq, now.version),
        (1, 2),
        "the refused send burned nothing"
    );
}

/// Naming a user that does not exist is `NotFound`, and leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_user_is_not_found() {
    let (_db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let ghost = UserId(Uuid::now_v7());
    assert_not_found(s.sessions.create(&session(ghost)).await);
    assert_not_found(s.blocks.block(alice, ghost, at(1)).await);
    assert_not_found(s.blocks.block(ghost, alice, at(1)).await);

    let new = new_room(RoomKind::Private, alice);
    assert_not_found(
        s.rooms
            .create(&new, &[(alice, Role::Owner), (ghost, Role::Member)])
            .await,
    );
    assert_eq!(
        s.rooms.find(new.id).await.unwrap(),
        None,
        "nothing half-made"
    );
    let mut dm = new_room(RoomKind::Direct, alice);
    dm.direct_pair = Some(direct_pair(alice, ghost));
    assert_not_found(s.rooms.create(&dm, &[(alice, Role::Member)]).await);

    let r = room(&s, alice, &[]).await;
    assert_not_found(
        s.rooms
            .apply(
                r,
                &[RoomOp::AddMember {
                    user: ghost,
                    role: Role::Member,
                    at: at(2),
                }],
            )
            .await,
    );
    assert_not_found(s.messages.mark_read(RoomId(Uuid::now_v7()), alice, 0).await);
}

/// A reply names a message of its own room; an attachment must exist. A
/// refused send burns no seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replies_stay_in_their_room() {
    let (_db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let here = room(&s, alice, &[]).await;
    let there = room(&s, alice, &[]).await;
    let elsewhere = send(&s, there, alice, "over there").await;
    let first = send(&s, here, alice, "first").await;

    let mut reply = message(here, alice, "re");
    reply.reply_to = Some(elsewhere.id);
    assert!(matches!(
        s.messages.append(&reply).await,
        Err(AppendError::Refused(SendRefused::NoSuchReply))
    ));
    let mut with_file = message(here, alice, "see attached");
    with_file.attachment = Some(AttachmentId(Uuid::now_v7()));
    assert!(matches!(
        s.messages.append(&with_file).await,
        Err(AppendError::Refused(SendRefused::NoSuchAttachment))
    ));
    let now = s.rooms.find(here).await.unwrap().unwrap();
    assert_eq!((now.last_seq, now.version), (1, 2), "no seq burned");

    reply.reply_to = Some(first.id);
    let ok = send_new(&s, &reply).await;
    assert_eq!((ok.seq, ok.reply_to_id), (2, Some(first.id)));
}

async fn send_new(s: &Stores, m: &NewMessage) -> chat_domain::Message {
    match s.messages.append(m).await.unwrap() {
        Appended::New(m) => m,
        Appended::Existing(m) => panic!("a new message was expected, not {m:?}"),
    }
}

/// Emails and display names fold case beyond ASCII, as Rust's
/// `to_lowercase` does (the memory store's rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn case_folding_is_unicode() {
    let (_db, s) = fresh().await;
    let mut odos = new_user("odos", "ΟΔΟΣ@example.gr");
    odos.display_name = DisplayName::parse("Émile Zola").unwrap();
    let odos = s.users.create(&odos).await.unwrap();
    assert_conflict(
        s.users.create(&new_user("other", "οδος@example.gr")).await,
        Conflict::Email,
    );
    let found = s
        .users
        .find_credentials(&Login::Email(" Οδος@EXAMPLE.GR ".to_owned()))
        .await
        .unwrap();
    assert_eq!(found.map(|(u, _)| u.id), Some(odos.id));
    for prefix in ["émi", "ÉMILE", "Émile Z"] {
        let got = s
            .users
            .search(prefix, &PageRequest::default())
            .await
            .unwrap();
        assert_eq!(got.items.len(), 1, "{prefix}");
    }
    // LIKE's wildcards are plain characters in a prefix.
    for prefix in ["%", "_", "o%", "\\"] {
        let got = s
            .users
            .search(prefix, &PageRequest::default())
            .await
            .unwrap();
        assert_eq!(got.items, vec![], "{prefix}");
    }
}

// ---------------------------------------------------------------- cascades

/// Deleting a room takes every row that belongs to it, replies, reactions
/// and departures included, and nothing of another room.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_room_leaves_no_row_behind() {
    let (db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let doomed = room(&s, alice, &[bob, carol]).await;
    let kept = room(&s, alice, &[bob]).await;
    for r in [doomed, kept] {
        let first = send(&s, r, alice, "first").await;
        let mut reply = message(r, bob, "reply");
        reply.reply_to = Some(first.id);
        send_new(&s, &reply).await;
        s.messages.mark_read(r, bob, 2).await.unwrap();
        s.rooms
            .apply(
                r,
                &[RoomOp::Ban {
                    user: carol,
                    by: alice,
                    at: at(3),
                }],
            )
            .await
            .unwrap();
    }
    s.rooms
        .apply(doomed, &[RoomOp::RemoveMember { user: carol }])
        .await
        .unwrap();
    let mut conn = db.connect().await;
    conn.batch_execute(&format!(
        "INSERT INTO reactions (message_id, user_id, emoji, created_at, emoji_since)
         SELECT id, '{bob}', '👍', now(), now() FROM messages"
    ))
    .await
    .unwrap();

    let tables = [
        "SELECT count(*) AS n FROM rooms WHERE id = $1",
        "SELECT count(*) AS n FROM memberships WHERE room_id = $1",
        "SELECT count(*) AS n FROM room_departures WHERE room_id = $1",
        "SELECT count(*) AS n FROM bans WHERE room_id = $1",
        "SELECT count(*) AS n FROM messages WHERE room_id = $1",
        "SELECT count(*) AS n FROM reactions r JOIN messages m ON m.id = r.message_id \
         WHERE m.room_id = $1",
        "SELECT count(*) AS n FROM read_markers WHERE room_id = $1",
    ];
    for sql in tables {
        assert!(count(&mut conn, sql, doomed).await > 0, "{sql}: set-up");
    }
    let before: Vec<i64> = {
        let mut v = Vec::new();
        for sql in tables {
            v.push(count(&mut conn, sql, kept).await);
        }
        v
    };
    let reactions = s.messages.find(
        s.messages
            .history(kept, HistoryQuery::Latest(PageLimit::DEFAULT), alice)
            .await
            .unwrap()
            .messages[0]
            .id,
        bob,
    );
    let reactions = reactions.await.unwrap().unwrap().reactions;
    assert_eq!(reactions.len(), 1);
    assert!(reactions[0].me && reactions[0].count == 1);

    s.rooms.apply(doomed, &[RoomOp::Delete]).await.unwrap();
    for sql in tables {
        assert_eq!(count(&mut conn, sql, doomed).await, 0, "{sql}");
    }
    let mut after = Vec::new();
    for sql in tables {
        after.push(count(&mut conn, sql, kept).await);
    }
    assert_eq!(after, before, "the other room is untouched");
}

// ---------------------------------------------------------------- concurrency

/// Two pools on one database, as two server nodes: fifty concurrent sends
/// to one room still take seqs 1..=50, each with its own version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_gapless_seq() {
    let db = TestDb::create().await;
    let node_a = db.store().await.stores();
    let node_b = db.store().await.stores();
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(user(&node_a, &format!("sender{i}")).await);
    }
    let r = room(&node_a, members[0], &members[1..]).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let node = if i % 2 == 0 { &node_a } else { &node_b };
            let messages = node.messages.clone();
            let new = message(r, members[i % 4], &format!("m{i}"));
            tokio::spawn(async move { messages.append(&new).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        let Appended::New(m) = t.await.unwrap().unwrap() else {
            panic!("a replay without a key");
        };
        assert_eq!(m.version, m.seq + 1);
        seqs.push(m.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    let h = node_b
        .messages
        .history(
            r,
            HistoryQuery::Latest(PageLimit::new(100).unwrap()),
            members[0],
        )
        .await
        .unwrap();
    assert_eq!(h.messages.len(), 50);
}

/// Callers that give up half-way (a dropped request) leave no transaction
/// open and no seq missing: each call runs to its end (commit or rollback)
/// in a task of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_calls_leave_no_lock_behind() {
    let (db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let r = room(&s, alice, &[]).await;
    let mut abandoned = Vec::new();
    for i in 0..20 {
        let messages = s.messages.clone();
        let new = message(r, alice, &format!("maybe {i}"));
        abandoned.push(tokio::spawn(async move {
            let _ =
                tokio::time::timeout(Duration::from_micros(50 * i), messages.append(&new)).await;
        }));
    }
    for t in abandoned {
        t.await.unwrap();
    }
    // What was let go of still finishes, on its own.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let last = send(&s, r, alice, "after").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the room is not locked"
    );
    let h = s
        .messages
        .history(r, HistoryQuery::Latest(PageLimit::new(100).unwrap()), alice)
        .await
        .unwrap();
    let seqs: Vec<u64> = h.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=last.seq).collect::<Vec<_>>(), "gapless");
    let room_now = s.rooms.find(r).await.unwrap().unwrap();
    assert_eq!(room_now.last_seq, last.seq);

    let mut conn = db.connect().await;
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = Text)]
        state: String,
    }
    let states: Vec<State> = diesel::sql_query(
        "SELECT coalesce(state, '') AS state FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(
        states.iter().all(|s| s.state != "idle in transaction"),
        "a connection was left in a transaction"
    );
}

// ---------------------------------------------------------------- availability

/// A session row locked by someone else, so that `rotate` waits on it.
async fn lock_session(db: &TestDb, id: SessionId) -> AsyncPgConnection {
    let mut locker = db.connect().await;
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM sessions WHERE id = '{}' FOR UPDATE;",
            id.0
        ))
        .await
        .unwrap();
    locker
}

/// Every connection busy: the next call fails as `Unavailable` once
/// `wait_timeout` is up, not whenever a connection frees up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_pool_is_unavailable_fast() {
    let db = TestDb::create().await;
    let config = PgConfig {
        max_size: 1,
        wait_timeout: Duration::from_millis(200),
        ..test_config(db.url().to_owned())
    };
    let s = Arc::new(PgStore::connect(&config).await.unwrap()).stores();
    let alice = user(&s, "alice").await;
    let sess = session(alice);
    s.sessions.create(&sess).await.unwrap();

    let mut locker = lock_session(&db, sess.id).await;
    let sessions = s.sessions.clone();
    let stuck = tokio::spawn(async move { sessions.rotate(sess.id, 0, at(1), at(100)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    assert_unavailable(s.users.find(alice).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    locker.batch_execute("ROLLBACK").await.unwrap();
    assert!(matches!(
        stuck.await.unwrap().unwrap(),
        Rotation::Rotated { .. }
    ));
    assert!(
        s.users.find(alice).await.unwrap().is_some(),
        "back to normal"
    );
}

/// A statement stuck longer than `statement_timeout` is cut off by the
/// server (set up on every pooled connection) and reads as `Unavailable`;
/// the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_statement_is_cut_off() {
    let db = TestDb::create().await;
    let config = PgConfig {
        max_size: 1,
        statement_timeout: Duration::from_millis(300),
        application_name: "chat-store-test".to_owned(),
        ..test_config(db.url().to_owned())
    };
    let s = Arc::new(PgStore::connect(&config).await.unwrap()).stores();
    let alice = user(&s, "alice").await;
    let sess = session(alice);
    s.sessions.create(&sess).await.unwrap();

    let mut locker = lock_session(&db, sess.id).await;
    let started = Instant::now();
    assert_unavailable(s.sessions.rotate(sess.id, 0, at(1), at(100)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(s.sessions.find(sess.id).await.unwrap(), Some(sess));

    #[derive(QueryableByName)]
    struct App {
        #[diesel(sql_type = Text)]
        application_name: String,
    }
    let apps: Vec<App> = diesel::sql_query(
        "SELECT application_name FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut locker)
    .await
    .unwrap();
    assert!(
        apps.iter().any(|a| a.application_name == "chat-store-test"),
        "the pool's connections name themselves"
    );
}

/// No server: connecting without migrations succeeds (the pool is lazy),
/// `ping` says false, and calls fail fast as `Unavailable`; connecting with
/// migrations fails as `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_server_is_unavailable_fast() {
    let url = "postgres://postgres@127.0.0.1:1/nothing";
    let config = PgConfig {
        connect_timeout: Duration::from_secs(1),
        wait_timeout: Duration::from_millis(500),
        ..test_config(url.to_owned())
    };
    let store = Arc::new(PgStore::connect(&config).await.unwrap());
    let started = Instant::now();
    assert!(!store.ping().await);
    let s = store.stores();
    assert_unavailable(s.users.find(UserId(Uuid::now_v7())).await);
    assert!(matches!(
        s.messages
            .append(&message(
                RoomId(Uuid::now_v7()),
                UserId(Uuid::now_v7()),
                "x",
            ))
            .await,
        Err(AppendError::Store(StoreError::Unavailable(_)))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let migrating = PgConfig {
        run_migrations: true,
        ..config
    };
    assert_unavailable(PgStore::connect(&migrating).await);
}

/// What one store wrote, another store (a restarted server) reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_outlives_the_store() {
    let db = TestDb::create().await;
    let first = db.store().await;
    assert!(first.ping().await);
    let s = first.clone().stores();
    let alice = user(&s, "alice").await;
    let r = room(&s, alice, &[]).await;
    let sent = send(&s, r, alice, "still here?").await;
    drop(s);
    drop(first);

    let s = db.store().await.stores();
    let h = s
        .messages
        .history(r, HistoryQuery::Latest(PageLimit::DEFAULT), alice)
        .await
        .unwrap();
    assert_eq!(h.messages, vec![sent]);
}

/// Text from a client that PostgreSQL cannot hold (a NUL) is no error:
/// it matches nothing, as it does in the memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_in_a_query_matches_nothing() {
    let (_db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    s.rooms
        .create(&new_room(RoomKind::Public, alice), &[(alice, Role::Owner)])
        .await
        .unwrap();
    let all = PageRequest::default();
    assert_eq!(s.users.search("a\0", &all).await.unwrap().items, vec![]);
    assert_eq!(s.rooms.list_public("\0", &all).await.unwrap().items, vec![]);
    for login in [Login::Username("alice\0".into()), Login::Email("\0".into())] {
        assert_eq!(s.users.find_credentials(&login).await.unwrap(), None);
    }
    // A cursor key with a NUL reads as the key up to it.
    let after_alice = PageRequest {
        limit: PageLimit::DEFAULT,
        after: Some(chat_ports::Cursor::new("alice\0zzz", Uuid::nil())),
    };
    let got = s.users.search("", &after_alice).await.unwrap();
    assert_eq!(
        got.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![bob]
    );
}

// ---------------------------------------------------------------- changes

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// The plan PostgreSQL picks for `sql`, bound to a room and a version.
async fn plan(conn: &mut AsyncPgConnection, sql: &str, room: RoomId, since: i64) -> String {
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .bind::<diesel::sql_types::Uuid, _>(room.0)
        .bind::<BigInt, _>(since)
        .load(conn)
        .await
        .unwrap();
    lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `changes` reads by version: on rooms with long histories and many
/// members, each of its three reads (the statements diesel sends, as
/// `debug_query` prints them) is a range scan of a `(room_id, version)`
/// index, never a scan of the room's history or member list.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_are_index_range_scans() {
    let (db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let mut rooms = Vec::new();
    for _ in 0..4 {
        rooms.push(room(&s, alice, &[]).await);
    }
    let mut conn = db.connect().await;
    conn.batch_execute(&format!(
        "INSERT INTO users (id, username, email, display_name, password_hash, created_at)
             SELECT gen_random_uuid(), 'bulk' || i, 'bulk' || i || '@example.com',
                    'bulk' || i, '', now()
             FROM generate_series(1, 400) i;
         INSERT INTO memberships (room_id, user_id, role, joined_at, version)
             SELECT r.id, u.id, 'member', now() - (random() * interval '1 day'),
                    2 + row_number() OVER (PARTITION BY r.id ORDER BY u.id)
             FROM rooms r CROSS JOIN users u WHERE u.id <> '{alice}';
         INSERT INTO room_departures (room_id, user_id, version)
             SELECT r.id, u.id, 1000 + row_number() OVER (PARTITION BY r.id ORDER BY u.id)
             FROM rooms r CROSS JOIN users u WHERE u.id <> '{alice}';
         INSERT INTO messages (id, room_id, seq, sender_id, kind, content, created_at, version)
             SELECT gen_random_uuid(), r.id, i, '{alice}', 'text', 'm' || i, now(), 2000 + i
             FROM rooms r CROSS JOIN generate_series(1, 3000) i;
         UPDATE rooms SET version = 5000, last_seq = 3000;
         ANALYZE;",
        alice = alice.0
    ))
    .await
    .unwrap();
    let room = rooms[1];

    let messages = r#"SELECT "messages"."id", "messages"."room_id", "messages"."seq", "messages"."kind", "messages"."content", "messages"."attachment_id", "messages"."reply_to_id", "messages"."created_at", "messages"."edited_at", "messages"."deleted", "messages"."version", "users"."id", "users"."username", "users"."display_name", "attachments"."id", "attachments"."uploader_id", "attachments"."filename", "attachments"."content_type", "attachments"."size", "attachments"."created_at" FROM (("messages" INNER JOIN "users" ON ("messages"."sender_id" = "users"."id")) LEFT OUTER JOIN "attachments" ON ("messages"."attachment_id" = "attachments"."id")) WHERE (("messages"."room_id" = $1) AND ("messages"."version" > $2)) ORDER BY "messages"."version" ASC LIMIT 101"#;
    let members = r#"SELECT "memberships"."room_id", "memberships"."user_id", "memberships"."role", "memberships"."joined_at", "users"."id", "users"."username", "users"."email", "users"."display_name", "users"."avatar_attachment_id", "users"."created_at", "users"."last_seen_at" FROM ("memberships" INNER JOIN "users" ON ("memberships"."user_id" = "users"."id")) WHERE (("memberships"."room_id" = $1) AND ("memberships"."version" > $2)) ORDER BY "memberships"."joined_at" ASC, "memberships"."user_id" ASC"#;
    let departures = r#"SELECT "room_departures"."user_id" FROM "room_departures" WHERE ((("room_departures"."room_id" = $1) AND ("room_departures"."version" > $2)) AND  NOT (EXISTS (SELECT "memberships"."room_id", "memberships"."user_id", "memberships"."role", "memberships"."joined_at", "memberships"."version" FROM "memberships" WHERE (("memberships"."room_id" = "room_departures"."room_id") AND ("memberships"."user_id" = "room_departures"."user_id"))))) ORDER BY "room_departures"."version" ASC, "room_departures"."user_id" ASC"#;

    // A client a few changes behind, and one that was away a long time.
    for (since, what) in [(4990, "recent"), (0, "from the start")] {
        let p = plan(&mut conn, messages, room, since).await;
        // An index scan or a bitmap index scan: a range of the index either way.
        assert!(
            p.contains("messages_room_id_version_idx"),
            "messages, {what}:\n{p}"
        );
        assert!(!p.contains("Seq Scan on messages"), "{what}:\n{p}");
    }
    for (sql, index, since) in [
        (members, "memberships_room_id_version_idx", 395),
        (departures, "room_departures_room_id_version_idx", 1395),
    ] {
        let p = plan(&mut conn, sql, room, since).await;
        assert!(p.contains(index), "{index}:\n{p}");
        assert!(!p.contains("Seq Scan on memberships"), "{p}");
        assert!(!p.contains("Seq Scan on room_departures"), "{p}");
    }

    // And the store answers from those rows.
    let c = s
        .rooms
        .changes(room, 4990, 100, alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.messages.len(), 10);
    assert_eq!(c.version, 5000);
    let c = s
        .rooms
        .changes(room, 4000, 100, alice)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.messages.len(), c.has_more, c.version), (100, true, 4100));
    assert_eq!(c.messages[0].seq, 2001);
}

// ---------------------------------------------------------------- search

async fn search_ids(s: &Stores, viewer: UserId, words: &[&str]) -> Vec<MessageId> {
    let search = chat_ports::MessageSearch {
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        room: None,
    };
    s.messages
        .search(viewer, &search, &PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|h| h.message.id)
        .collect()
}

/// The words are bound as plain text, never read as query syntax: no `|`
/// (or), no `:*` (prefix), no quoting; a NUL or mere punctuation matches
/// nothing, without an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_words_are_plain_text() {
    let (_db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let here = room(&s, alice, &[]).await;
    let fox = send(&s, here, alice, "the quick fox").await;
    send(&s, here, alice, "quickly").await;

    assert_eq!(search_ids(&s, alice, &["quick"]).await, vec![fox.id]);
    assert_eq!(search_ids(&s, alice, &["quick", "|", "cat"]).await, vec![]);
    assert_eq!(search_ids(&s, alice, &["quick:*"]).await, vec![fox.id]);
    assert_eq!(
        search_ids(&s, alice, &["fox'", "&", "!the"]).await,
        vec![fox.id]
    );
    assert_eq!(
        search_ids(&s, alice, &["'); DROP TABLE messages; --"]).await,
        vec![]
    );
    assert_eq!(search_ids(&s, alice, &["!!!"]).await, vec![]);
    assert_eq!(search_ids(&s, alice, &["qu\0ick"]).await, vec![]);
    assert_eq!(search_ids(&s, alice, &["quick"]).await, vec![fox.id]);
}

/// A search finds its candidates through the partial GIN index on
/// `messages.search` (the statement diesel sends for a first page, as
/// `debug_query` prints it), never by a scan of every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_uses_the_gin_index() {
    let (db, s) = fresh().await;
    let alice = user(&s, "alice").await;
    let mut rooms = Vec::new();
    for _ in 0..4 {
        rooms.push(room(&s, alice, &[]).await);
    }
    let mut conn = db.connect().await;
    conn.batch_execute(&format!(
        "INSERT INTO messages (id, room_id, seq, sender_id, kind, content, created_at, version)
             SELECT gen_random_uuid(), r.id, i, '{alice}', 'text',
                    'filler text number ' || i || CASE WHEN i % 1000 = 0 THEN ' zebra' ELSE '' END,
                    now(), 1 + i
             FROM rooms r CROSS JOIN generate_series(1, 5000) i;
         UPDATE rooms SET version = 5001, last_seq = 5000;",
        alice = alice.0
    ))
    .await
    .unwrap();
    // Flushes the GIN index's pending list (as autovacuum would), which
    // the planner otherwise counts as a scan of its own.
    conn.batch_execute("VACUUM ANALYZE").await.unwrap();

    let sql = r#"SELECT "messages"."id", "messages"."room_id", "messages"."seq", "messages"."kind", "messages"."content", "messages"."attachment_id", "messages"."reply_to_id", "messages"."created_at", "messages"."edited_at", "messages"."deleted", "messages"."version", "users"."id", "users"."username", "users"."display_name", "attachments"."id", "attachments"."uploader_id", "attachments"."filename", "attachments"."content_type", "attachments"."size", "attachments"."created_at", "rooms"."id", "rooms"."name", "rooms"."kind", ts_rank("messages"."search", plainto_tsquery('simple'::regconfig, $1)) FROM (((("messages" INNER JOIN "users" ON ("messages"."sender_id" = "users"."id")) LEFT OUTER JOIN "attachments" ON ("messages"."attachment_id" = "attachments"."id")) INNER JOIN "rooms" ON ("messages"."room_id" = "rooms"."id")) INNER JOIN "memberships" ON (("memberships"."room_id" = "messages"."room_id") AND ("memberships"."user_id" = $2))) WHERE ("messages"."search" @@ plainto_tsquery('simple'::regconfig, $3) AND  NOT ("messages"."deleted")) ORDER BY ts_rank("messages"."search", plainto_tsquery('simple'::regconfig, $4)) DESC, "messages"."id" DESC LIMIT $5"#;
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {sql}"))
        .bind::<Text, _>("zebra")
        .bind::<diesel::sql_types::Uuid, _>(alice.0)
        .bind::<Text, _>("zebra")
        .bind::<Text, _>("zebra")
        .bind::<BigInt, _>(51_i64)
        .load(&mut conn)
        .await
        .unwrap();
    let p = lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(p.contains("messages_search_idx"), "{p}");
    assert!(!p.contains("Seq Scan on messages"), "{p}");

    // And the store answers from those rows.
    assert_eq!(search_ids(&s, alice, &["zebra"]).await.len(), 20);
    assert_eq!(search_ids(&s, alice, &["zebra", "5000"]).await.len(), 4);
}

// ---------------------------------------------------------------- reactions

/// One emoji on one message as stored: how many reactions, how many
/// distinct `emoji_since` among them (1 always), and the earliest.
#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct EmojiRows {
    #[diesel(sql_type = Text)]
    emoji: String,
    #[diesel(sql_type = BigInt)]
    reactions: i64,
    #[diesel(sql_type = BigInt)]
    instants: i64,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    since: Timestamp,
}

async fn emoji_rows(conn: &mut AsyncPgConnection, message: MessageId) -> Vec<EmojiRows> {
    diesel::sql_query(
        "SELECT emoji, count(*) AS reactions, count(DISTINCT emoji_since) AS instants, \
                min(emoji_since) AS since \
           FROM reactions WHERE message_id = $1 GROUP BY emoji ORDER BY since, emoji",
    )
    .bind::<diesel::sql_types::Uuid, _>(message.0)
    .load(conn)
    .await
    .unwrap()
}

fn emoji_row(emoji: &str, reactions: i64, since: i64) -> EmojiRows {
    EmojiRows {
        emoji: emoji.to_owned(),
        reactions,
        instants: 1,
        since: at(since),
    }
}

fn emojis(m: &chat_domain::Message) -> Vec<(&str, u32)> {
    m.reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count))
        .collect()
}

/// The migration that brings `emoji_since` dates each emoji of a message
/// from its earliest reaction (the best that is known of reactions made
/// before it), the same instant for all of them; the store then keeps that
/// place while anyone still reacts so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrating_dates_each_emoji_from_its_earliest_reaction() {
    let db = TestDb::create().await;
    let before = db.store().await.stores();
    let alice = user(&before, "alice").await;
    let bob = user(&before, "bob").await;
    let carol = user(&before, "carol").await;
    let r = room(&before, alice, &[bob, carol]).await;
    let m1 = send(&before, r, alice, "one").await.id;
    let m2 = send(&before, r, alice, "two").await.id;
    drop(before);

    // Back to the schema before the migration, with reactions made then.
    let conn = db.connect().await;
    let (mut conn, reverted) = tokio::task::spawn_blocking(move || {
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        use diesel_migrations::MigrationHarness;
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = conn.into();
        let reverted = conn
            .revert_last_migration(chat_store_postgres::MIGRATIONS)
            .expect("revert the last migration")
            .to_string();
        (conn.into_inner(), reverted)
    })
    .await
    .unwrap();
    assert!(reverted.ends_with("000500"), "{reverted}");
    let rows = [
        (m1, alice, "👍", 30),
        (m1, bob, "👍", 10),
        (m1, bob, "🎉", 20),
        (m1, carol, "👍", 40),
        (m1, carol, "🎉", 15),
        (m2, alice, "👍", 5),
    ];
    for (m, u, emoji, t) in rows {
        diesel::sql_query(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind::<diesel::sql_types::Uuid, _>(m.0)
        .bind::<diesel::sql_types::Uuid, _>(u.0)
        .bind::<Text, _>(emoji)
        .bind::<diesel::sql_types::Timestamptz, _>(at(t))
        .execute(&mut conn)
        .await
        .unwrap();
    }

    let store = db.store().await;
    assert_eq!(store.migrate().await.unwrap().len(), 1, "the one reverted");
    assert_eq!(
        emoji_rows(&mut conn, m1).await,
        vec![emoji_row("👍", 3, 10), emoji_row("🎉", 2, 15)]
    );
    assert_eq!(emoji_rows(&mut conn, m2).await, vec![emoji_row("👍", 1, 5)]);

    let s = store.stores();
    let found = s.messages.find(m1, alice).await.unwrap().unwrap();
    assert_eq!(emojis(&found), vec![("👍", 3), ("🎉", 2)]);
    // bob's 👍 (at 10) was its first use; without it 👍 still comes first.
    let r = s
        .messages
        .react(m1, bob, "👍", false, at(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(emojis(&r.message), vec![("👍", 2), ("🎉", 2)]);
    // A new reaction inherits the migrated instant.
    s.messages
        .react(m1, bob, "👍", true, at(51))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        emoji_rows(&mut conn, m1).await,
        vec![emoji_row("👍", 3, 10), emoji_row("🎉", 2, 15)]
    );
}

/// Two pools on one database, as two server nodes: concurrent first uses
/// of an emoji, each at its own instant, are serialised by the room's lock,
/// so every reaction of the emoji carries one and the same first use.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_agree_on_an_emojis_first_use() {
    let db = TestDb::create().await;
    let node_a = db.store().await.stores();
    let node_b = db.store().await.stores();
    let mut members = Vec::new();
    for i in 0..8 {
        members.push(user(&node_a, &format!("fan{i}")).await);
    }
    let r = room(&node_a, members[0], &members[1..]).await;
    let m = send(&node_a, r, members[0], "react to me").await.id;
    let mut conn = db.connect().await;
    for round in 0..5_i64 {
        let emoji = format!(":e{round}:");
        let tasks: Vec<_> = members
            .iter()
            .copied()
            .enumerate()
            .map(|(i, u)| {
                let node = if i % 2 == 0 { &node_a } else { &node_b };
                let messages = node.messages.clone();
                let emoji = emoji.clone();
                // Instants in no particular order.
                let t = 100 * round + i64::try_from((i * 5) % 8).unwrap();
                tokio::spawn(async move { messages.react(m, u, &emoji, true, at(t)).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().unwrap().changed);
        }
        let rows = emoji_rows(&mut conn, m).await;
        let row = rows.iter().find(|e| e.emoji == emoji).unwrap();
        assert_eq!((row.reactions, row.instants), (8, 1), "{rows:?}");
    }
    let found = node_b.messages.find(m, members[0]).await.unwrap().unwrap();
    let expected: Vec<String> = (0..5).map(|i| format!(":e{i}:")).collect();
    assert_eq!(
        emojis(&found),
        expected.iter().map(|e| (e.as_str(), 8)).collect::<Vec<_>>(),
        "each round's emoji after the one before"
    );
}
