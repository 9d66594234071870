//! The repository ports' contract as an executable suite (feature `testing`).
//!
//! One `pub async fn` per promise of a port. Each takes a fresh, empty
//! [`Stores`] bundle and asserts with plain `assert!`s, so every store runs
//! the same checks and the fake cannot drift from the real database. A store
//! runs the whole suite from its `tests/contract.rs` with [`contract_tests!`]:
//!
//! ```ignore
//! // The expression is evaluated afresh in every test and awaited; its output
//! // is a `Stores` bundle, or a `(Stores, Guard)` pair whose guard lives
//! // (and keeps, say, a per-test database alive) until the test ends.
//! chat_ports::contract_tests!(async { chat_store_memory::MemoryStore::new_stores() });
//! ```
//!
//! The calling crate needs `tokio` (features `macros` and `rt-multi-thread`)
//! among its dev-dependencies: each contract becomes a
//! `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step should fail the test loudly"
)]

use std::collections::HashSet;
use std::fmt::Debug;

use chat_domain::room::direct_pair;
use chat_domain::{
    Attachment, AttachmentId, ClientMsgId, DisplayName, Email, HistoryQuery, Login, Membership,
    Message, MessageContent, MessageId, MessageKind, PageLimit, ReactionSummary, Role, Room,
    RoomDescription, RoomId, RoomKind, RoomName, SenderInfo, SessionId, Timestamp, User, UserId,
    Username,
};
use uuid::Uuid;

use crate::{
    AppendError, Appended, Applied, Conflict, Cursor, History, Markers, MemberView, MessageSearch,
    MyRoom, NewAttachment, NewMessage, NewRoom, NewUser, Page, PageRequest, ProfilePatch, Reacted,
    Reactors, Receipt, RoomChange, RoomOp, RoomSummary, Rotation, SearchHit, SendRefused, Session,
    StoreError, Stores,
};

// ================================================================ harness

/// What [`contract_tests!`]'s set-up expression produces: the stores under
/// test, and whatever must stay alive while a test runs.
pub trait Fixture {
    fn stores(&self) -> Stores;
}

impl Fixture for Stores {
    fn stores(&self) -> Stores {
        self.clone()
    }
}

/// Stores with a guard (a per-test database, say) dropped when the test ends.
impl<G> Fixture for (Stores, G) {
    fn stores(&self) -> Stores {
        self.0.clone()
    }
}

/// Expands into one `#[tokio::test]` per contract of [`chat_ports::contract`](crate::contract).
///
/// The argument is an expression evaluated afresh in each test and then
/// `.await`ed, e.g. an `async { ... }` block; what it yields must implement
/// [`Fixture`](crate::contract::Fixture): a fresh, empty [`Stores`](crate::Stores),
/// or `(Stores, guard)`.
///
/// ```ignore
/// chat_ports::contract_tests!(async { chat_store_memory::MemoryStore::new_stores() });
/// chat_ports::contract_tests!(async {
///     let db = TestDb::create().await;      // dropped when the test ends
///     (PgStore::connect(db.url()).await.stores(), db)
/// });
/// ```
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            user_create_and_find,
            user_unique_ignoring_case,
            user_unique_under_race,
            user_find_credentials,
            user_search_prefix,
            user_search_pages,
            user_update_profile,
            user_set_last_seen,
            session_create_find_revoke,
            session_rotate,
            session_rotate_inactive,
            session_rotate_race,
            block_and_unblock,
            block_list_newest_first,
            room_create_and_find,
            room_direct_pair_unique,
            room_direct_pair_race,
            room_list_public,
            room_list_public_pages,
            room_list_mine,
            room_list_mine_pages,
            room_ids_of_user,
            room_members,
            room_invalid_cursors,
            room_apply_membership,
            room_apply_update,
            room_apply_ban_unban,
            room_apply_preconditions,
            room_apply_system_message,
            room_apply_delete,
            room_apply_delete_direct,
            room_apply_unknown_room,
            message_append_and_find,
            message_seq_concurrent,
            message_idempotent,
            message_idempotent_race,
            message_requires_membership,
            message_history_edges,
            message_read_markers,
            message_delivered_markers,
            room_version_counts_every_change,
            room_changes_after_membership_and_messages,
            room_changes_pages_reach_the_room_state,
            room_changes_since_current_version,
            room_changes_rejoined_member,
            message_edit,
            message_delete,
            message_react,
            message_changes_after_edit_delete_react,
            message_react_concurrent,
            message_reactors,
            message_reaction_order_survives_first_user_leaving,
            message_search_words_and_rank_order,
            message_search_only_my_rooms_never_deleted,
            message_search_pages,
            message_receipts,
            attachment_create_find,
            message_carries_its_attachment,
            attachment_readable_by,
            message_append_unknown_attachment_or_reply,
            message_append_refusals,
            message_replay_comes_before_the_body,
            user_avatar_must_exist,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let fixture = $make.await;
                let stores = $crate::contract::Fixture::stores(&fixture);
                $crate::contract::$name(stores).await;
                drop(fixture);
            }
        )+
    };
}

// ================================================================ helpers

/// 2026-01-01T00:00:00Z plus `secs` seconds: whole seconds, which every
/// store keeps exactly.
fn at(secs: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(1_767_225_600 + secs, 0).unwrap()
}

fn uuid() -> Uuid {
    Uuid::now_v7()
}

fn limit(n: i64) -> PageLimit {
    PageLimit::new(n).unwrap()
}

fn page(n: i64, after: Option<Cursor>) -> PageRequest {
    PageRequest {
        limit: limit(n),
        after,
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId(uuid()),
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        password_hash: format!("hash-of-{name}"),
        created_at: at(0),
    }
}

async fn user(s: &Stores, name: &str) -> User {
    s.users.create(&new_user(name)).await.unwrap()
}

async fn user_named(s: &Stores, name: &str, display_name: &str) -> User {
    let mut new = new_user(name);
    new.display_name = DisplayName::parse(display_name).unwrap();
    s.users.create(&new).await.unwrap()
}

fn new_room(kind: RoomKind, name: &str, creator: UserId, created_at: Timestamp) -> NewRoom {
    NewRoom {
        id: RoomId(uuid()),
        kind,
        name: RoomName::parse(name).unwrap(),
        description: RoomDescription::default(),
        created_by: creator,
        created_at,
        direct_pair: None,
    }
}

/// A room of `kind` created at `created_at`, the first member its creator.
async fn room_at(
    s: &Stores,
    kind: RoomKind,
    name: &str,
    created_at: Timestamp,
    members: &[(UserId, Role)],
) -> Room {
    let new = new_room(kind, name, members[0].0, created_at);
    s.rooms.create(&new, members).await.unwrap()
}

/// A private room owned by `owner` with `others` as members, created at 0.
async fn group(s: &Stores, owner: UserId, others: &[UserId]) -> Room {
    let mut members = vec![(owner, Role::Owner)];
    members.extend(others.iter().map(|u| (*u, Role::Member)));
    room_at(s, RoomKind::Private, "group", at(0), &members).await
}

fn new_direct(a: &User, b: &User) -> NewRoom {
    let mut new = new_room(RoomKind::Direct, "dm", a.id, at(0));
    new.name = RoomName::for_direct(&a.username, &b.username);
    new.direct_pair = Some(direct_pair(a.id, b.id));
    new
}

fn text(s: &str) -> MessageContent {
    MessageContent::parse(s, false).unwrap()
}

fn new_message(room: RoomId, sender: UserId, content: &str, created_at: Timestamp) -> NewMessage {
    NewMessage {
        id: MessageId(uuid()),
        room_id: room,
        sender,
        kind: None,
        content: text(content),
        attachment: None,
        reply_to: None,
        client_msg_id: None,
        created_at,
    }
}

fn with_client_id(mut m: NewMessage, key: &str) -> NewMessage {
    m.client_msg_id = Some(ClientMsgId::parse(key).unwrap());
    m
}

fn new_one(a: Appended) -> Message {
    match a {
        Appended::New(m) => m,
        Appended::Existing(m) => panic!("expected a new message, got the existing {m:?}"),
    }
}

/// Sends `content` as a new message; panics unless it is stored anew.
async fn send(
    s: &Stores,
    room: RoomId,
    sender: UserId,
    content: &str,
    created_at: Timestamp,
) -> Message {
    new_one(
        s.messages
            .append(&new_message(room, sender, content, created_at))
            .await
            .unwrap(),
    )
}

fn system_message(sender: UserId, content: &str, when: Timestamp) -> RoomOp {
    RoomOp::SystemMessage {
        id: MessageId(uuid()),
        sender,
        content: MessageContent::system(content.to_owned()),
        at: when,
    }
}

async fn room_now(s: &Stores, room: RoomId) -> Room {
    s.rooms.find(room).await.unwrap().expect("the room exists")
}

async fn latest(s: &Stores, room: RoomId, viewer: UserId) -> History {
    s.messages
        .history(room, HistoryQuery::Latest(limit(100)), viewer)
        .await
        .unwrap()
}

fn seqs(h: &History) -> Vec<u64> {
    h.messages.iter().map(|m| m.seq).collect()
}

#[track_caller]
fn assert_stale<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(e) if e.is_stale() => {}
        other => panic!("expected a stale conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: Debug>(r: Result<T, StoreError>, what: Conflict) {
    match r {
        Err(StoreError::Conflict(w)) if w == what => {}
        other => panic!("expected a conflict on {what}, got {other:?}"),
    }
}

#[track_caller]
fn assert_refused<T: Debug>(r: Result<T, AppendError>, why: SendRefused) {
    match r {
        Err(AppendError::Refused(w)) if w == why => {}
        other => panic!("expected the send refused as {why:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_cursor<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::InvalidCursor) => {}
        other => panic!("expected InvalidCursor, got {other:?}"),
    }
}

/// Reads a list page by page of `size` items until its end; asserts that
/// each page but the last is full and carries a cursor, and the last none.
async fn pages<T>(size: i64, fetch: impl AsyncFn(PageRequest) -> Page<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let p = fetch(page(size, after.take())).await;
        let len = p.items.len();
        out.push(p.items);
        match p.next_cursor {
            Some(c) => {
                assert_eq!(len, size as usize, "a page with a next cursor is full");
                after = Some(c);
            }
            None => {
                assert!(len <= size as usize);
                return out;
            }
        }
    }
    panic!("the listing never ended");
}

fn ids_of_users(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id).collect()
}

fn ids_of_rooms(rooms: &[Room]) -> Vec<RoomId> {
    rooms.iter().map(|r| r.id).collect()
}

// ================================================================ users

/// `UserRepo::create` keeps every field and `find` reads it back.
pub async fn user_create_and_find(s: Stores) {
    let mut new = new_user("Alice");
    new.display_name = DisplayName::parse("Alice A.").unwrap();
    new.created_at = at(42);
    let created = s.users.create(&new).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.username.as_str(), "Alice", "kept as typed");
    assert_eq!(created.email, new.email);
    assert_eq!(created.display_name.as_str(), "Alice A.");
    assert_eq!(created.avatar, None);
    assert_eq!(created.created_at, at(42));
    assert_eq!(created.last_seen_at, None);
    assert_eq!(s.users.find(new.id).await.unwrap(), Some(created));
    assert_eq!(s.users.find(UserId(uuid())).await.unwrap(), None);
}

/// Usernames and emails are unique ignoring case; the username is checked
/// first; a refused user is not stored.
pub async fn user_unique_ignoring_case(s: Stores) {
    user(&s, "Alice").await;

    let mut same_name = new_user("aLICE");
    same_name.email = Email::parse("other@example.com").unwrap();
    assert_conflict(s.users.create(&same_name).await, Conflict::Username);

    let mut same_email = new_user("bob");
    same_email.email = Email::parse("ALICE@Example.COM").unwrap();
    assert_conflict(s.users.create(&same_email).await, Conflict::Email);

    let both = new_user("ALICE");
    assert_conflict(s.users.create(&both).await, Conflict::Username);

    for refused in [&same_name, &same_email, &both] {
        assert_eq!(s.users.find(refused.id).await.unwrap(), None);
    }
    let all = s.users.search("", &PageRequest::default()).await.unwrap();
    assert_eq!(all.items.len(), 1);

    // Neither half of a refused user was kept: both are still free.
    let mut ok = new_user("bob");
    ok.email = Email::parse("other@example.com").unwrap();
    s.users.create(&ok).await.unwrap();
}

/// Concurrent registrations of one username (or one email) in different
/// cases: exactly one wins.
pub async fn user_unique_under_race(s: Stores) {
    let names = [
        "carol", "Carol", "CAROL", "cArOl", "caROL", "CaRoL", "carOL", "CARol",
    ];
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut new = new_user(name);
        new.email = Email::parse(&format!("carol{i}@example.com")).unwrap();
        let users = s.users.clone();
        tasks.push(tokio::spawn(async move { users.create(&new).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            r => assert_conflict(r, Conflict::Username),
        }
    }
    assert_eq!(won, 1, "exactly one registration of the username wins");

    let emails = [
        "dan@example.com",
        "DAN@example.com",
        "Dan@Example.com",
        "dan@EXAMPLE.COM",
    ];
    let mut tasks = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let mut new = new_user(&format!("dan{i}"));
        new.email = Email::parse(email).unwrap();
        let users = s.users.clone();
        tasks.push(tokio::spawn(async move { users.create(&new).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            r => assert_conflict(r, Conflict::Email),
        }
    }
    assert_eq!(won, 1, "exactly one registration of the email wins");
    let all = s.users.search("", &PageRequest::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
}

/// `find_credentials` finds by username or by email, ignoring case, with the hash.
pub async fn user_find_credentials(s: Stores) {
    let dave = user(&s, "Dave").await;
    user(&s, "erin").await;
    let expected = Some((dave.clone(), "hash-of-Dave".to_owned()));
    for login in [
        Login::Username("Dave".into()),
        Login::Username("dave".into()),
        Login::Username("DAVE".into()),
        Login::Email("Dave@example.com".into()),
        Login::Email("DAVE@EXAMPLE.COM".into()),
    ] {
        assert_eq!(
            s.users.find_credentials(&login).await.unwrap(),
            expected,
            "{login:?}"
        );
    }
    for login in [
        Login::Username("nobody".into()),
        Login::Email("nobody@example.com".into()),
        Login::Username("Dave@example.com".into()),
        Login::Email("Dave".into()),
    ] {
        assert_eq!(
            s.users.find_credentials(&login).await.unwrap(),
            None,
            "{login:?}"
        );
    }
}

/// Search matches a prefix of the username or of the display name, ignoring
/// case, ordered by lower-cased username; an empty prefix lists everyone.
pub async fn user_search_prefix(s: Stores) {
    let bob = user_named(&s, "bob", "ALbert Bob").await;
    let alice = user_named(&s, "alice", "Alice Smith").await;
    let carol = user_named(&s, "carol", "Carol").await;
    let alfred = user_named(&s, "Alfred", "Fred").await;
    let all = PageRequest::default();
    let found = |p: Page<User>| {
        assert_eq!(p.next_cursor, None);
        ids_of_users(&p.items)
    };

    assert_eq!(
        found(s.users.search("AL", &all).await.unwrap()),
        vec![alfred.id, alice.id, bob.id]
    );
    assert_eq!(
        found(s.users.search("fr", &all).await.unwrap()),
        vec![alfred.id]
    );
    assert_eq!(
        found(s.users.search("alf", &all).await.unwrap()),
        vec![alfred.id]
    );
    assert_eq!(
        found(s.users.search("", &all).await.unwrap()),
        vec![alfred.id, alice.id, bob.id, carol.id]
    );
    assert_eq!(
        found(s.users.search("smith", &all).await.unwrap()),
        vec![],
        "a prefix, not a substring"
    );
    assert_eq!(found(s.users.search("zz", &all).await.unwrap()), vec![]);
    let got = s.users.search("CAROL", &all).await.unwrap();
    assert_eq!(got.items, vec![carol]);
}

/// Search pages follow each other with no duplicate and no gap.
pub async fn user_search_pages(s: Stores) {
    let mut expected = Vec::new();
    // Created out of order, so that neither id nor creation order is the answer.
    for i in [
        7, 3, 11, 0, 19, 5, 14, 1, 22, 9, 16, 2, 20, 8, 12, 4, 18, 6, 21, 10, 15, 13, 17,
    ] {
        let name = if i % 2 == 0 {
            format!("USER{i:02}")
        } else {
            format!("user{i:02}")
        };
        let u = user(&s, &name).await;
        expected.push((name.to_lowercase(), u.id));
    }
    user(&s, "zed").await;
    user_named(&s, "yann", "Someone").await;
    expected.sort();
    let expected: Vec<UserId> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(expected.len(), 23);

    for size in [1, 5, 7, 22, 23, 100] {
        let got = pages(size, async |p| s.users.search("user", &p).await.unwrap()).await;
        let flat: Vec<UserId> = got.iter().flat_map(|p| ids_of_users(p)).collect();
        assert_eq!(flat, expected, "pages of {size}");
        assert_eq!(
            got.len(),
            23usize.div_ceil(size as usize),
            "pages of {size}"
        );
    }
    // An empty prefix pages through everyone.
    let got = pages(4, async |p| s.users.search("", &p).await.unwrap()).await;
    let flat: HashSet<UserId> = got.iter().flat_map(|p| ids_of_users(p)).collect();
    assert_eq!(flat.len(), 25);
}

/// `update_profile` changes what the patch names and nothing else.
pub async fn user_update_profile(s: Stores) {
    let erin = user(&s, "erin").await;
    let patch = ProfilePatch {
        display_name: Some(DisplayName::parse("Erin E.").unwrap()),
        avatar: None,
    };
    let updated = s.users.update_profile(erin.id, &patch).await.unwrap();
    assert_eq!(updated.display_name.as_str(), "Erin E.");
    assert_eq!(
        User {
            display_name: erin.display_name.clone(),
            ..updated.clone()
        },
        erin,
        "nothing else changed"
    );
    assert_eq!(s.users.find(erin.id).await.unwrap(), Some(updated.clone()));

    let unchanged = s
        .users
        .update_profile(erin.id, &ProfilePatch::default())
        .await
        .unwrap();
    assert_eq!(unchanged, updated);
    let cleared = ProfilePatch {
        display_name: None,
        avatar: Some(None),
    };
    assert_eq!(
        s.users
            .update_profile(erin.id, &cleared)
            .await
            .unwrap()
            .avatar,
        None
    );

    assert_not_found(s.users.update_profile(UserId(uuid()), &patch).await);
}

/// `set_last_seen` is read back as `last_seen_at`, and changes nothing else.
pub async fn user_set_last_seen(s: Stores) {
    let fay = user(&s, "fay").await;
    s.users.set_last_seen(fay.id, at(30)).await.unwrap();
    let seen = s.users.find(fay.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, Some(at(30)));
    assert_eq!(
        User {
            last_seen_at: None,
            ..seen
        },
        fay,
        "nothing else changed"
    );
    s.users.set_last_seen(fay.id, at(40)).await.unwrap();
    let login = Login::Username("fay".to_owned());
    let (found, _) = s.users.find_credentials(&login).await.unwrap().unwrap();
    assert_eq!(found.last_seen_at, Some(at(40)), "the latest one counts");
    assert_not_found(s.users.set_last_seen(UserId(uuid()), at(1)).await);
}

// ================================================================ sessions

fn session(user: UserId, expires_at: Timestamp) -> Session {
    Session {
        id: SessionId(uuid()),
        user_id: user,
        generation: 0,
        created_at: at(0),
        expires_at,
        revoked: false,
    }
}

/// Sessions are stored and read back; `revoke` is true once.
pub async fn session_create_find_revoke(s: Stores) {
    let u = user(&s, "frank").await;
    let sess = session(u.id, at(3600));
    s.sessions.create(&sess).await.unwrap();
    assert_eq!(s.sessions.find(sess.id).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.sessions.find(SessionId(uuid())).await.unwrap(), None);

    assert!(s.sessions.revoke(sess.id).await.unwrap());
    assert!(
        !s.sessions.revoke(sess.id).await.unwrap(),
        "revoked already"
    );
    assert!(
        !s.sessions.revoke(SessionId(uuid())).await.unwrap(),
        "no such session"
    );
    let found = s.sessions.find(sess.id).await.unwrap().unwrap();
    assert!(found.revoked);
    assert!(!found.is_active(at(1)));
}

/// The current generation rotates; an older one revokes the session.
pub async fn session_rotate(s: Stores) {
    let u = user(&s, "gina").await;
    let sess = session(u.id, at(3600));
    s.sessions.create(&sess).await.unwrap();

    let first = s
        .sessions
        .rotate(sess.id, 0, at(10), at(5000))
        .await
        .unwrap();
    let expected = Session {
        generation: 1,
        expires_at: at(5000),
        ..sess.clone()
    };
    assert_eq!(
        first,
        Rotation::Rotated {
            session: expected.clone()
        }
    );
    assert_eq!(s.sessions.find(sess.id).await.unwrap(), Some(expected));

    let second = s
        .sessions
        .rotate(sess.id, 1, at(20), at(6000))
        .await
        .unwrap();
    let Rotation::Rotated { session: now } = second else {
        panic!("expected a rotation, got {second:?}");
    };
    assert_eq!(
        (now.generation, now.expires_at, now.revoked),
        (2, at(6000), false)
    );

    // Generation 1 again: a used token.
    assert_eq!(
        s.sessions
            .rotate(sess.id, 1, at(30), at(7000))
            .await
            .unwrap(),
        Rotation::Reused
    );
    let found = s.sessions.find(sess.id).await.unwrap().unwrap();
    assert!(found.revoked);
    assert_eq!(found.generation, 2);
    // Revoked: even the current generation no longer rotates.
    assert_eq!(
        s.sessions
            .rotate(sess.id, 2, at(40), at(8000))
            .await
            .unwrap(),
        Rotation::Inactive
    );
}

/// A missing, revoked or expired session does not rotate, and is left as it was.
pub async fn session_rotate_inactive(s: Stores) {
    let u = user(&s, "hank").await;
    assert_eq!(
        s.sessions
            .rotate(SessionId(uuid()), 0, at(1), at(100))
            .await
            .unwrap(),
        Rotation::Inactive
    );

    let expiring = session(u.id, at(100));
    s.sessions.create(&expiring).await.unwrap();
    assert_eq!(
        s.sessions
            .rotate(expiring.id, 0, at(100), at(200))
            .await
            .unwrap(),
        Rotation::Inactive,
        "expired at expires_at"
    );
    assert_eq!(
        s.sessions.find(expiring.id).await.unwrap(),
        Some(expiring.clone())
    );
    let Rotation::Rotated { session: rotated } = s
        .sessions
        .rotate(expiring.id, 0, at(99), at(200))
        .await
        .unwrap()
    else {
        panic!("still active just before it expires");
    };
    // Expired: an old generation is inactive too, and revokes nothing.
    assert_eq!(
        s.sessions
            .rotate(expiring.id, 0, at(300), at(400))
            .await
            .unwrap(),
        Rotation::Inactive
    );
    assert_eq!(s.sessions.find(expiring.id).await.unwrap(), Some(rotated));

    let revoked = session(u.id, at(3600));
    s.sessions.create(&revoked).await.unwrap();
    assert!(s.sessions.revoke(revoked.id).await.unwrap());
    assert_eq!(
        s.sessions
            .rotate(revoked.id, 0, at(1), at(100))
            .await
            .unwrap(),
        Rotation::Inactive
    );
}

/// Ten concurrent rotations of one generation: exactly one rotates, one
/// finds its token used (revoking the session), the rest find it inactive.
pub async fn session_rotate_race(s: Stores) {
    let u = user(&s, "iris").await;
    let sess = session(u.id, at(3600));
    s.sessions.create(&sess).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let sessions = s.sessions.clone();
            tokio::spawn(async move { sessions.rotate(sess.id, 0, at(10), at(5000 + i)).await })
        })
        .collect();
    let (mut rotated, mut reused, mut inactive) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Rotation::Rotated { session } => {
                assert_eq!(session.generation, 1);
                rotated += 1;
            }
            Rotation::Reused => reused += 1,
            Rotation::Inactive => inactive += 1,
        }
    }
    assert_eq!((rotated, reused, inactive), (1, 1, 8));
    let found = s.sessions.find(sess.id).await.unwrap().unwrap();
    assert_eq!(found.generation, 1);
    assert!(found.revoked);
}

// ================================================================ blocks

/// `block` and `unblock` say whether they changed anything; `either_blocks`
/// looks both ways.
pub async fn block_and_unblock(s: Stores) {
    let a = user(&s, "jack").await;
    let b = user(&s, "kate").await;
    let c = user(&s, "liam").await;
    assert!(!s.blocks.either_blocks(a.id, b.id).await.unwrap());
    assert!(s.blocks.block(a.id, b.id, at(1)).await.unwrap());
    assert!(
        !s.blocks.block(a.id, b.id, at(2)).await.unwrap(),
        "blocked already"
    );
    assert!(s.blocks.either_blocks(a.id, b.id).await.unwrap());
    assert!(s.blocks.either_blocks(b.id, a.id).await.unwrap());
    assert!(!s.blocks.either_blocks(a.id, c.id).await.unwrap());
    assert!(!s.blocks.either_blocks(b.id, c.id).await.unwrap());

    // Both ways at once; lifting one leaves the other.
    assert!(s.blocks.block(b.id, a.id, at(3)).await.unwrap());
    assert!(s.blocks.unblock(a.id, b.id).await.unwrap());
    assert!(
        !s.blocks.unblock(a.id, b.id).await.unwrap(),
        "no block left"
    );
    assert!(s.blocks.either_blocks(a.id, b.id).await.unwrap());
    assert!(s.blocks.unblock(b.id, a.id).await.unwrap());
    assert!(!s.blocks.either_blocks(a.id, b.id).await.unwrap());
    assert!(!s.blocks.unblock(c.id, a.id).await.unwrap());
    let listed = s.blocks.list(a.id, &PageRequest::default()).await.unwrap();
    assert_eq!(listed.items, vec![]);
    assert_eq!(listed.next_cursor, None);
}

/// A blocker's list: most recently blocked first, paged with no gap.
pub async fn block_list_newest_first(s: Stores) {
    let me = user(&s, "mia").await;
    let mut others = Vec::new();
    for name in ["noah", "olga", "paul", "quin", "rita"] {
        others.push(user(&s, name).await);
    }
    // Blocked out of creation order: others[i] at time order[i].
    let order = [3, 1, 5, 2, 4];
    for (u, t) in others.iter().zip(order) {
        assert!(s.blocks.block(me.id, u.id, at(t)).await.unwrap());
    }
    s.blocks.block(others[0].id, me.id, at(9)).await.unwrap();
    let by_time = |t: i64| others[order.iter().position(|o| *o == t).unwrap()].id;
    let newest_first: Vec<UserId> = (1..=5).rev().map(by_time).collect();

    let got = pages(2, async |p| s.blocks.list(me.id, &p).await.unwrap()).await;
    assert_eq!(got.len(), 3);
    let flat: Vec<UserId> = got.iter().flat_map(|p| ids_of_users(p)).collect();
    assert_eq!(flat, newest_first);
    assert_eq!(got[0][0], others[2], "the users themselves");

    assert!(s.blocks.unblock(me.id, by_time(3)).await.unwrap());
    let got = s.blocks.list(me.id, &PageRequest::default()).await.unwrap();
    assert_eq!(
        ids_of_users(&got.items),
        vec![by_time(5), by_time(4), by_time(2), by_time(1)]
    );
    let theirs = s
        .blocks
        .list(others[1].id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(theirs.items, vec![]);
}

// ================================================================ rooms

/// A new room is at version 1 with `last_seq` 0 and its members; creating
/// writes no message.
pub async fn room_create_and_find(s: Stores) {
    let owner = user(&s, "sam").await;
    let m1 = user(&s, "tess").await;
    let m2 = user(&s, "ugo").await;
    let stranger = user(&s, "vera").await;
    let mut new = new_room(RoomKind::Public, "General", owner.id, at(10));
    new.description = RoomDescription::parse("All things").unwrap();
    let members = [
        (owner.id, Role::Owner),
        (m1.id, Role::Member),
        (m2.id, Role::Admin),
    ];
    let room = s.rooms.create(&new, &members).await.unwrap();
    assert_eq!(
        room,
        Room {
            id: new.id,
            kind: RoomKind::Public,
            name: new.name.clone(),
            description: new.description.clone(),
            created_by: owner.id,
            created_at: at(10),
            member_count: 3,
            last_seq: 0,
            version: 1,
            direct_pair: None,
        }
    );
    assert_eq!(s.rooms.find(room.id).await.unwrap(), Some(room.clone()));
    assert_eq!(s.rooms.find(RoomId(uuid())).await.unwrap(), None);

    let membership = |user: UserId, role: Role| Membership {
        room_id: room.id,
        user_id: user,
        role,
        joined_at: at(10),
    };
    assert_eq!(
        s.rooms.find_member(room.id, owner.id).await.unwrap(),
        Some(membership(owner.id, Role::Owner))
    );
    assert_eq!(
        s.rooms.find_member(room.id, m2.id).await.unwrap(),
        Some(membership(m2.id, Role::Admin))
    );
    assert_eq!(
        s.rooms.find_member(room.id, stranger.id).await.unwrap(),
        None
    );
    // All joined at once: the order they joined is the order of their ids.
    let mut expected: Vec<Membership> = members.iter().map(|(u, r)| membership(*u, *r)).collect();
    expected.sort_by_key(|m| m.user_id);
    assert_eq!(s.rooms.all_members(room.id).await.unwrap(), expected);
    assert!(!s.rooms.is_banned(room.id, stranger.id).await.unwrap());
    let h = latest(&s, room.id, owner.id).await;
    assert_eq!((h.messages.len(), h.has_more), (0, false));
}

/// One direct room per pair, found from its sorted pair; notes to self are a
/// pair of one user.
pub async fn room_direct_pair_unique(s: Stores) {
    let a = user(&s, "wade").await;
    let b = user(&s, "xena").await;
    let c = user(&s, "yuri").await;
    let pair = direct_pair(a.id, b.id);
    let new = new_direct(&a, &b);
    let dm = s
        .rooms
        .create(&new, &[(a.id, Role::Member), (b.id, Role::Member)])
        .await
        .unwrap();
    assert_eq!(
        (dm.kind, dm.direct_pair, dm.member_count, dm.version),
        (RoomKind::Direct, Some(pair), 2, 1)
    );
    assert_eq!(s.rooms.find_direct(pair).await.unwrap(), Some(dm.clone()));
    assert_eq!(
        s.rooms.find_direct(direct_pair(a.id, c.id)).await.unwrap(),
        None
    );

    // From the other side, with a new id: refused.
    let again = new_direct(&b, &a);
    assert_conflict(
        s.rooms
            .create(&again, &[(b.id, Role::Member), (a.id, Role::Member)])
            .await,
        Conflict::DirectPair,
    );
    assert_eq!(s.rooms.find(again.id).await.unwrap(), None);
    assert_eq!(s.rooms.find_member(again.id, b.id).await.unwrap(), None);

    let notes = new_direct(&a, &a);
    let notes = s
        .rooms
        .create(&notes, &[(a.id, Role::Member)])
        .await
        .unwrap();
    assert_eq!(notes.member_count, 1);
    assert_eq!(notes.direct_pair, Some((a.id, a.id)));
    assert_eq!(
        s.rooms.find_direct((a.id, a.id)).await.unwrap(),
        Some(notes)
    );
    assert_eq!(s.rooms.find_direct(pair).await.unwrap(), Some(dm));
}

/// Concurrent creations of one pair's direct room: exactly one wins.
pub async fn room_direct_pair_race(s: Stores) {
    let a = user(&s, "zack").await;
    let b = user(&s, "abby").await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let rooms = s.rooms.clone();
            let new = if i % 2 == 0 {
                new_direct(&a, &b)
            } else {
                new_direct(&b, &a)
            };
            let members = [
                (new.created_by, Role::Member),
                (if i % 2 == 0 { b.id } else { a.id }, Role::Member),
            ];
            tokio::spawn(async move { rooms.create(&new, &members).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(room) => winners.push(room),
            r => assert_conflict(r, Conflict::DirectPair),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        s.rooms.find_direct(direct_pair(a.id, b.id)).await.unwrap(),
        Some(winners.remove(0))
    );
    assert_eq!(
        s.rooms
            .list_mine(a.id, &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

/// The directory lists public rooms only, filtered by a case-insensitive
/// substring of the name, newest first.
pub async fn room_list_public(s: Stores) {
    let o = user(&s, "bart").await;
    let other = user(&s, "cleo").await;
    let owner = [(o.id, Role::Owner)];
    let rust = room_at(&s, RoomKind::Public, "Rust lovers", at(1), &owner).await;
    let rustaceans = room_at(&s, RoomKind::Public, "rustaceans", at(2), &owner).await;
    let go = room_at(&s, RoomKind::Public, "Go gophers", at(3), &owner).await;
    let trust = room_at(&s, RoomKind::Public, "TRUST issues", at(4), &owner).await;
    let cooking = room_at(&s, RoomKind::Public, "cooking", at(5), &owner).await;
    room_at(&s, RoomKind::Private, "rust private", at(6), &owner).await;
    s.rooms
        .create(
            &new_direct(&o, &other),
            &[(o.id, Role::Member), (other.id, Role::Member)],
        )
        .await
        .unwrap();

    let list = |q: &'static str| {
        let s = s.clone();
        async move {
            let p = s
                .rooms
                .list_public(q, &PageRequest::default())
                .await
                .unwrap();
            assert_eq!(p.next_cursor, None);
            p.items
        }
    };
    assert_eq!(
        list("").await,
        vec![
            cooking.clone(),
            trust.clone(),
            go,
            rustaceans.clone(),
            rust.clone()
        ]
    );
    assert_eq!(
        ids_of_rooms(&list("RUST").await),
        ids_of_rooms(&[trust, rustaceans, rust])
    );
    assert_eq!(ids_of_rooms(&list("ook").await), ids_of_rooms(&[cooking]));
    assert_eq!(list("nothing like it").await, vec![]);
    assert_eq!(list("dm").await, vec![], "direct rooms are never listed");
}

/// Directory pages: newest first (ties by id, descending), no dup, no gap.
pub async fn room_list_public_pages(s: Stores) {
    let o = user(&s, "dora").await;
    let owner = [(o.id, Role::Owner)];
    let mut expected = Vec::new();
    // Created out of time order; two pairs share a timestamp.
    for (i, t) in [5, 2, 9, 1, 7, 7, 3, 11, 4, 10, 2, 8]
        .into_iter()
        .enumerate()
    {
        let r = room_at(&s, RoomKind::Public, &format!("Room {i}"), at(t), &owner).await;
        expected.push((r.created_at, r.id));
    }
    room_at(&s, RoomKind::Private, "Room secret", at(6), &owner).await;
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<RoomId> = expected.into_iter().map(|(_, id)| id).collect();

    for size in [1, 5, 6, 12, 100] {
        let got = pages(size, async |p| {
            s.rooms.list_public("room", &p).await.unwrap()
        })
        .await;
        let flat: Vec<RoomId> = got.iter().flat_map(|p| ids_of_rooms(p)).collect();
        assert_eq!(flat, expected, "pages of {size}");
    }
}

/// A member's own rooms: newest activity first, with role, unread count and
/// last message.
pub async fn room_list_mine(s: Stores) {
    let me = user(&s, "eve").await;
    let other = user(&s, "finn").await;
    let a = room_at(
        &s,
        RoomKind::Public,
        "A",
        at(1),
        &[(me.id, Role::Owner), (other.id, Role::Member)],
    )
    .await;
    let b = room_at(
        &s,
        RoomKind::Private,
        "B",
        at(2),
        &[(other.id, Role::Owner), (me.id, Role::Member)],
    )
    .await;
    let c = room_at(
        &s,
        RoomKind::Public,
        "C",
        at(3),
        &[(other.id, Role::Owner), (me.id, Role::Admin)],
    )
    .await;
    let d = room_at(&s, RoomKind::Public, "D", at(4), &[(other.id, Role::Owner)]).await;

    let mine = |who: UserId| {
        let s = s.clone();
        async move {
            let p = s
                .rooms
                .list_mine(who, &PageRequest::default())
                .await
                .unwrap();
            assert_eq!(p.next_cursor, None);
            p.items
        }
    };
    let order = |rooms: &[MyRoom]| rooms.iter().map(|r| r.room.id).collect::<Vec<_>>();

    // No messages yet: by creation, newest first.
    let got = mine(me.id).await;
    assert_eq!(order(&got), vec![c.id, b.id, a.id]);
    assert_eq!(
        got[0],
        MyRoom {
            room: c.clone(),
            my_role: Role::Admin,
            unread_count: 0,
            last_message: None,
        }
    );
    assert_eq!(
        (got[1].my_role, got[2].my_role),
        (Role::Member, Role::Owner)
    );
    assert_eq!(order(&mine(other.id).await), vec![d.id, c.id, b.id, a.id]);

    let in_a = send(&s, a.id, other.id, "hello", at(10)).await;
    let got = mine(me.id).await;
    assert_eq!(order(&got), vec![a.id, c.id, b.id]);
    assert_eq!(got[0].unread_count, 1);
    assert_eq!(got[0].last_message, Some(in_a));
    assert_eq!(got[0].room, room_now(&s, a.id).await);

    let mine_in_b = send(&s, b.id, me.id, "me", at(11)).await;
    let got = mine(me.id).await;
    assert_eq!(order(&got), vec![b.id, a.id, c.id]);
    assert_eq!(got[0].unread_count, 0, "my own messages are never unread");
    assert_eq!(got[0].last_message, Some(mine_in_b));

    send(&s, a.id, other.id, "two", at(12)).await;
    let third = send(&s, a.id, other.id, "three", at(13)).await;
    send(&s, a.id, me.id, "mine", at(14)).await;
    let got = mine(me.id).await;
    assert_eq!(order(&got), vec![a.id, b.id, c.id]);
    assert_eq!(got[0].unread_count, 3);
    assert_eq!(got[0].last_message.as_ref().map(|m| m.seq), Some(4));

    assert!(s.messages.mark_read(a.id, me.id, 2).await.unwrap());
    assert_eq!(mine(me.id).await[0].unread_count, 1);
    assert!(s.messages.mark_read(a.id, me.id, third.seq).await.unwrap());
    assert_eq!(mine(me.id).await[0].unread_count, 0);

    // A system message is activity too, and unread when another wrote it.
    s.rooms
        .apply(
            b.id,
            &[system_message(other.id, "finn did something", at(20))],
        )
        .await
        .unwrap();
    let got = mine(me.id).await;
    assert_eq!(order(&got), vec![b.id, a.id, c.id]);
    assert_eq!(got[0].unread_count, 1);
    assert_eq!(
        got[0].last_message.as_ref().map(|m| m.kind),
        Some(MessageKind::System)
    );

    // Leaving takes the room off the list.
    s.rooms
        .apply(c.id, &[RoomOp::RemoveMember { user: me.id }])
        .await
        .unwrap();
    assert_eq!(order(&mine(me.id).await), vec![b.id, a.id]);
    let stranger = user(&s, "gail").await;
    assert_eq!(mine(stranger.id).await, vec![]);
}

/// "My rooms" pages follow each other with no dup and no gap.
pub async fn room_list_mine_pages(s: Stores) {
    let me = user(&s, "hugo").await;
    let mut expected = Vec::new();
    for (i, t) in [4, 8, 1, 6, 3, 3, 9].into_iter().enumerate() {
        let r = room_at(
            &s,
            RoomKind::Private,
            &format!("r{i}"),
            at(t),
            &[(me.id, Role::Owner)],
        )
        .await;
        expected.push((at(t), r.id));
    }
    // Activity moves two of them up.
    send(&s, expected[2].1, me.id, "bump", at(20)).await;
    expected[2].0 = at(20);
    send(&s, expected[5].1, me.id, "bump", at(15)).await;
    expected[5].0 = at(15);
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<RoomId> = expected.into_iter().map(|(_, id)| id).collect();
    for size in [1, 2, 3, 7, 50] {
        let got = pages(size, async |p| s.rooms.list_mine(me.id, &p).await.unwrap()).await;
        let flat: Vec<RoomId> = got.iter().flatten().map(|r| r.room.id).collect();
        assert_eq!(flat, expected, "pages of {size}");
    }
}

/// `room_ids_of` names every room the user is a member of, by room id, and
/// follows joins, leaves and deletions.
pub async fn room_ids_of_user(s: Stores) {
    let me = user(&s, "hana").await;
    let other = user(&s, "hank").await;
    assert_eq!(s.rooms.room_ids_of(me.id).await.unwrap(), vec![]);
    let a = group(&s, me.id, &[]).await;
    let b = group(&s, other.id, &[me.id]).await;
    let c = group(&s, other.id, &[]).await;
    let d = room_at(&s, RoomKind::Public, "d", at(0), &[(me.id, Role::Owner)]).await;
    let mut expected = vec![a.id, b.id, d.id];
    expected.sort();
    assert_eq!(s.rooms.room_ids_of(me.id).await.unwrap(), expected);
    let mut theirs = vec![b.id, c.id];
    theirs.sort();
    assert_eq!(s.rooms.room_ids_of(other.id).await.unwrap(), theirs);

    s.rooms
        .apply(b.id, &[RoomOp::RemoveMember { user: me.id }])
        .await
        .unwrap();
    s.rooms
        .apply(
            c.id,
            &[RoomOp::AddMember {
                user: me.id,
                role: Role::Member,
                at: at(1),
            }],
        )
        .await
        .unwrap();
    s.rooms.apply(d.id, &[RoomOp::Delete]).await.unwrap();
    let mut expected = vec![a.id, c.id];
    expected.sort();
    assert_eq!(s.rooms.room_ids_of(me.id).await.unwrap(), expected);
    assert_eq!(s.rooms.room_ids_of(UserId(uuid())).await.unwrap(), vec![]);
}

/// Members in the order they joined (ties by user id), with their users,
/// paged; `all_members` gives the same order.
pub async fn room_members(s: Stores) {
    let owner = user(&s, "ivan").await;
    let room = group(&s, owner.id, &[]).await;
    let mut joined = vec![(at(0), owner.id)];
    let mut users = vec![owner.clone()];
    for (i, t) in [5, 3, 8, 3, 1, 6, 5].into_iter().enumerate() {
        let u = user(&s, &format!("member{i}")).await;
        let applied = s
            .rooms
            .apply(
                room.id,
                &[RoomOp::AddMember {
                    user: u.id,
                    role: Role::Member,
                    at: at(t),
                }],
            )
            .await
            .unwrap();
        assert_eq!(
            applied.room.as_ref().map(|r| r.member_count),
            Some(i as u32 + 2)
        );
        joined.push((at(t), u.id));
        users.push(u);
    }
    joined.sort();
    let expected: Vec<UserId> = joined.iter().map(|(_, u)| *u).collect();

    let all = s.rooms.all_members(room.id).await.unwrap();
    assert_eq!(all.iter().map(|m| m.user_id).collect::<Vec<_>>(), expected);
    assert_eq!(all[0].role, Role::Owner);
    for size in [1, 3, 8, 100] {
        let got = pages(size, async |p| {
            s.rooms.list_members(room.id, &p).await.unwrap()
        })
        .await;
        let flat: Vec<MemberView> = got.into_iter().flatten().collect();
        assert_eq!(
            flat.iter()
                .map(|m| m.membership.user_id)
                .collect::<Vec<_>>(),
            expected
        );
        for (view, membership) in flat.iter().zip(&all) {
            assert_eq!(&view.membership, membership);
            let user = users.iter().find(|u| u.id == membership.user_id).unwrap();
            assert_eq!(&view.user, user);
        }
    }
    assert_eq!(room_now(&s, room.id).await.member_count, 8);
}

/// A cursor this store did not give out is refused with `InvalidCursor`.
pub async fn room_invalid_cursors(s: Stores) {
    let me = user(&s, "jane").await;
    let other = user(&s, "karl").await;
    s.blocks.block(me.id, other.id, at(1)).await.unwrap();
    let room = room_at(
        &s,
        RoomKind::Public,
        "pub",
        at(1),
        &[(me.id, Role::Owner), (other.id, Role::Member)],
    )
    .await;
    let bad = page(
        10,
        Some(Cursor::new("not a key of this listing", Uuid::nil())),
    );
    assert_invalid_cursor(s.rooms.list_public("", &bad).await);
    assert_invalid_cursor(s.rooms.list_mine(me.id, &bad).await);
    assert_invalid_cursor(s.rooms.list_members(room.id, &bad).await);
    assert_invalid_cursor(s.blocks.list(me.id, &bad).await);
}

// ================================================================ room changes

/// `AddMember`, `SetRole` and `RemoveMember` are each counted, in order.
pub async fn room_apply_membership(s: Stores) {
    let owner = user(&s, "lena").await;
    let u1 = user(&s, "marc").await;
    let u2 = user(&s, "nina").await;
    let room = group(&s, owner.id, &[]).await;

    let applied = s
        .rooms
        .apply(
            room.id,
            &[RoomOp::AddMember {
                user: u1.id,
                role: Role::Member,
                at: at(5),
            }],
        )
        .await
        .unwrap();
    let m1 = Membership {
        room_id: room.id,
        user_id: u1.id,
        role: Role::Member,
        joined_at: at(5),
    };
    assert_eq!(
        applied,
        Applied {
            room: Some(Room {
                member_count: 2,
                version: 2,
                ..room.clone()
            }),
            changes: vec![RoomChange::MemberAdded {
                membership: m1.clone(),
                version: 2
            }],
            deleted_members: vec![],
        }
    );
    assert_eq!(s.rooms.find_member(room.id, u1.id).await.unwrap(), Some(m1));
    assert_eq!(applied.room, s.rooms.find(room.id).await.unwrap());

    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::AddMember {
                    user: u2.id,
                    role: Role::Member,
                    at: at(6),
                },
                RoomOp::SetRole {
                    user: u2.id,
                    role: Role::Admin,
                },
            ],
        )
        .await
        .unwrap();
    let m2 = |role| Membership {
        room_id: room.id,
        user_id: u2.id,
        role,
        joined_at: at(6),
    };
    assert_eq!(
        applied.changes,
        vec![
            RoomChange::MemberAdded {
                membership: m2(Role::Member),
                version: 3
            },
            RoomChange::RoleChanged {
                membership: m2(Role::Admin),
                version: 4
            },
        ]
    );
    let now = applied.room.unwrap();
    assert_eq!((now.version, now.member_count), (4, 3));
    assert_eq!(
        s.rooms.find_member(room.id, u2.id).await.unwrap(),
        Some(m2(Role::Admin))
    );

    let applied = s
        .rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: u1.id }])
        .await
        .unwrap();
    assert_eq!(
        applied.changes,
        vec![RoomChange::MemberRemoved {
            user: u1.id,
            version: 5
        }]
    );
    let now = applied.room.unwrap();
    assert_eq!((now.version, now.member_count), (5, 2));
    assert_eq!(s.rooms.find_member(room.id, u1.id).await.unwrap(), None);
    assert_eq!(
        s.rooms
            .all_members(room.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.user_id)
            .collect::<Vec<_>>(),
        vec![owner.id, u2.id]
    );

    // A member who left may come back, with a new joining time.
    let applied = s
        .rooms
        .apply(
            room.id,
            &[RoomOp::AddMember {
                user: u1.id,
                role: Role::Member,
                at: at(9),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        applied.room.map(|r| (r.version, r.member_count)),
        Some((6, 3))
    );
    assert_eq!(
        s.rooms
            .find_member(room.id, u1.id)
            .await
            .unwrap()
            .map(|m| m.joined_at),
        Some(at(9))
    );
    // Nothing at all: nothing changes.
    let applied = s.rooms.apply(room.id, &[]).await.unwrap();
    assert_eq!(
        (applied.room.map(|r| r.version), applied.changes),
        (Some(6), vec![])
    );
}

/// `Update` renames and re-describes, counted once per step.
pub async fn room_apply_update(s: Stores) {
    let owner = user(&s, "omar").await;
    let room = group(&s, owner.id, &[]).await;
    let renamed = RoomName::parse("Renamed").unwrap();
    let applied = s
        .rooms
        .apply(
            room.id,
            &[RoomOp::Update {
                name: Some(renamed.clone()),
                description: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(applied.changes, vec![RoomChange::Updated { version: 2 }]);
    let now = applied.room.unwrap();
    assert_eq!(
        (&now.name, &now.description, now.version),
        (&renamed, &room.description, 2)
    );

    let described = RoomDescription::parse("About it").unwrap();
    let applied = s
        .rooms
        .apply(
            room.id,
            &[RoomOp::Update {
                name: None,
                description: Some(described.clone()),
            }],
        )
        .await
        .unwrap();
    assert_eq!(applied.changes, vec![RoomChange::Updated { version: 3 }]);
    assert_eq!(
        room_now(&s, room.id).await,
        Room {
            name: renamed,
            description: described,
            version: 3,
            ..room
        }
    );
}

/// `Ban` and `Unban` are not counted; a ban may be pre-emptive.
pub async fn room_apply_ban_unban(s: Stores) {
    let owner = user(&s, "pia").await;
    let u = user(&s, "quentin").await;
    let stranger = user(&s, "rosa").await;
    let room = room_at(
        &s,
        RoomKind::Public,
        "pub",
        at(0),
        &[(owner.id, Role::Owner), (u.id, Role::Member)],
    )
    .await;

    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::ExpectBanned {
                    user: u.id,
                    banned: false,
                },
                RoomOp::RemoveMember { user: u.id },
                RoomOp::Ban {
                    user: u.id,
                    by: owner.id,
                    at: at(1),
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        applied.changes,
        vec![RoomChange::MemberRemoved {
            user: u.id,
            version: 2
        }]
    );
    assert_eq!(applied.room.map(|r| r.version), Some(2));
    assert!(s.rooms.is_banned(room.id, u.id).await.unwrap());
    assert_eq!(s.rooms.find_member(room.id, u.id).await.unwrap(), None);

    let applied = s
        .rooms
        .apply(
            room.id,
            &[RoomOp::Ban {
                user: stranger.id,
                by: owner.id,
                at: at(2),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        (applied.changes, applied.room.map(|r| r.version)),
        (vec![], Some(2))
    );
    assert!(s.rooms.is_banned(room.id, stranger.id).await.unwrap());

    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::ExpectBanned {
                    user: u.id,
                    banned: true,
                },
                RoomOp::Unban { user: u.id },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (applied.changes, applied.room.map(|r| r.version)),
        (vec![], Some(2))
    );
    assert!(!s.rooms.is_banned(room.id, u.id).await.unwrap());
    assert!(s.rooms.is_banned(room.id, stranger.id).await.unwrap());
}

/// Preconditions see the steps before them; a failing one, or a step on a
/// member that is not there (or already is), fails the whole call as stale
/// and changes nothing.
pub async fn room_apply_preconditions(s: Stores) {
    let owner = user(&s, "saul").await;
    let u = user(&s, "tina").await;
    let v = user(&s, "umar").await;
    let room = room_at(
        &s,
        RoomKind::Public,
        "pub",
        at(0),
        &[(owner.id, Role::Owner), (u.id, Role::Member)],
    )
    .await;

    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::ExpectRole {
                    user: owner.id,
                    role: Some(Role::Owner),
                },
                RoomOp::ExpectRole {
                    user: u.id,
                    role: Some(Role::Member),
                },
                RoomOp::ExpectRole {
                    user: v.id,
                    role: None,
                },
                RoomOp::ExpectMembers {
                    at_least: 2,
                    at_most: 2,
                },
                RoomOp::ExpectMembers {
                    at_least: 1,
                    at_most: 5,
                },
                RoomOp::ExpectBanned {
                    user: v.id,
                    banned: false,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (applied.room.as_ref(), applied.changes),
        (Some(&room), vec![])
    );

    let add_v = || RoomOp::AddMember {
        user: v.id,
        role: Role::Member,
        at: at(1),
    };
    let failing: Vec<Vec<RoomOp>> = vec![
        vec![RoomOp::ExpectRole {
            user: u.id,
            role: Some(Role::Admin),
        }],
        vec![RoomOp::ExpectRole {
            user: owner.id,
            role: None,
        }],
        vec![RoomOp::ExpectRole {
            user: v.id,
            role: Some(Role::Member),
        }],
        vec![RoomOp::ExpectMembers {
            at_least: 3,
            at_most: 10,
        }],
        vec![RoomOp::ExpectMembers {
            at_least: 0,
            at_most: 1,
        }],
        vec![RoomOp::ExpectBanned {
            user: v.id,
            banned: true,
        }],
        vec![
            add_v(),
            RoomOp::ExpectRole {
                user: u.id,
                role: Some(Role::Admin),
            },
        ],
        vec![
            add_v(),
            RoomOp::ExpectRole {
                user: v.id,
                role: None,
            },
        ],
        vec![
            add_v(),
            RoomOp::ExpectMembers {
                at_least: 2,
                at_most: 2,
            },
        ],
        vec![
            RoomOp::Update {
                name: Some(RoomName::parse("x").unwrap()),
                description: None,
            },
            RoomOp::ExpectBanned {
                user: u.id,
                banned: true,
            },
        ],
        vec![
            system_message(owner.id, "sys", at(2)),
            RoomOp::ExpectMembers {
                at_least: 5,
                at_most: 9,
            },
        ],
        vec![
            RoomOp::Ban {
                user: v.id,
                by: owner.id,
                at: at(3),
            },
            RoomOp::ExpectBanned {
                user: v.id,
                banned: false,
            },
        ],
        vec![
            RoomOp::SetRole {
                user: u.id,
                role: Role::Admin,
            },
            RoomOp::ExpectRole {
                user: u.id,
                role: Some(Role::Member),
            },
        ],
        vec![
            RoomOp::RemoveMember { user: u.id },
            RoomOp::ExpectMembers {
                at_least: 2,
                at_most: 2,
            },
        ],
        // Steps on members that are not there, or already are.
        vec![RoomOp::RemoveMember { user: v.id }],
        vec![RoomOp::SetRole {
            user: v.id,
            role: Role::Admin,
        }],
        vec![RoomOp::AddMember {
            user: u.id,
            role: Role::Member,
            at: at(4),
        }],
        vec![add_v(), add_v()],
        vec![
            RoomOp::RemoveMember { user: u.id },
            RoomOp::RemoveMember { user: u.id },
        ],
    ];
    for ops in failing {
        assert_stale(s.rooms.apply(room.id, &ops).await);
        assert_eq!(
            room_now(&s, room.id).await,
            room,
            "{ops:?} changed the room"
        );
        assert_eq!(
            s.rooms.find_member(room.id, v.id).await.unwrap(),
            None,
            "{ops:?}"
        );
        assert_eq!(
            s.rooms
                .find_member(room.id, u.id)
                .await
                .unwrap()
                .map(|m| m.role),
            Some(Role::Member),
            "{ops:?}"
        );
        assert!(!s.rooms.is_banned(room.id, v.id).await.unwrap(), "{ops:?}");
        assert_eq!(
            latest(&s, room.id, owner.id).await.messages,
            vec![],
            "{ops:?}"
        );
    }

    // Passing after the steps before them.
    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                add_v(),
                RoomOp::ExpectRole {
                    user: v.id,
                    role: Some(Role::Member),
                },
                RoomOp::ExpectMembers {
                    at_least: 3,
                    at_most: 3,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        applied.room.map(|r| (r.version, r.member_count)),
        Some((2, 3))
    );
}

/// A system message takes the next seq, raises `last_seq` and is counted.
pub async fn room_apply_system_message(s: Stores) {
    let owner = user(&s, "vic").await;
    let u = user(&s, "wanda").await;
    let room = group(&s, owner.id, &[u.id]).await;
    send(&s, room.id, u.id, "one", at(1)).await;
    send(&s, room.id, u.id, "two", at(2)).await;

    let op = system_message(owner.id, "vic did something", at(3));
    let RoomOp::SystemMessage { id, .. } = &op else {
        unreachable!()
    };
    let id = *id;
    let applied = s.rooms.apply(room.id, &[op]).await.unwrap();
    let expected = Message {
        id,
        room_id: room.id,
        seq: 3,
        sender: SenderInfo {
            id: owner.id,
            username: owner.username.clone(),
            display_name: owner.display_name.as_str().to_owned(),
        },
        kind: MessageKind::System,
        content: "vic did something".to_owned(),
        attachment: None,
        reply_to_id: None,
        reactions: vec![],
        created_at: at(3),
        edited_at: None,
        deleted: false,
        version: 4,
    };
    assert_eq!(
        applied.changes,
        vec![RoomChange::MessageAdded {
            message: Box::new(expected.clone())
        }]
    );
    assert_eq!(applied.room.map(|r| (r.last_seq, r.version)), Some((3, 4)));
    assert_eq!(
        s.messages.find(id, u.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        latest(&s, room.id, u.id).await.messages.last(),
        Some(&expected)
    );

    let next = send(&s, room.id, u.id, "three", at(4)).await;
    assert_eq!((next.seq, next.version), (4, 5));

    // A kick: the membership change and its system message, two versions.
    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::ExpectRole {
                    user: u.id,
                    role: Some(Role::Member),
                },
                RoomOp::RemoveMember { user: u.id },
                system_message(owner.id, "vic removed wanda", at(5)),
            ],
        )
        .await
        .unwrap();
    let [
        RoomChange::MemberRemoved { version: 6, .. },
        RoomChange::MessageAdded { message },
    ] = applied.changes.as_slice()
    else {
        panic!("unexpected changes {:?}", applied.changes);
    };
    assert_eq!((message.seq, message.version), (5, 7));
    assert_eq!(applied.room.map(|r| (r.last_seq, r.version)), Some((5, 7)));
}

/// Deleting a room takes its memberships, bans, messages and markers with it.
pub async fn room_apply_delete(s: Stores) {
    let owner = user(&s, "xavi").await;
    let u = user(&s, "yara").await;
    let banned = user(&s, "zoe").await;
    let room = room_at(
        &s,
        RoomKind::Public,
        "doomed",
        at(0),
        &[(owner.id, Role::Owner), (u.id, Role::Member)],
    )
    .await;
    let keep = room_at(
        &s,
        RoomKind::Public,
        "kept",
        at(1),
        &[(owner.id, Role::Owner)],
    )
    .await;
    let msg = send(&s, room.id, u.id, "hi", at(2)).await;
    let kept_msg = send(&s, keep.id, owner.id, "still here", at(3)).await;
    s.messages.mark_read(room.id, owner.id, 1).await.unwrap();
    s.rooms
        .apply(
            room.id,
            &[RoomOp::Ban {
                user: banned.id,
                by: owner.id,
                at: at(3),
            }],
        )
        .await
        .unwrap();
    let members: Vec<UserId> = s
        .rooms
        .all_members(room.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.user_id)
        .collect();

    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::ExpectRole {
                    user: owner.id,
                    role: Some(Role::Owner),
                },
                RoomOp::Delete,
            ],
        )
        .await
        .unwrap();
    assert_eq!(applied.room, None);
    assert_eq!(applied.changes, vec![]);
    let mut deleted = applied.deleted_members.clone();
    deleted.sort();
    let mut expected = members.clone();
    expected.sort();
    assert_eq!(deleted, expected);

    assert_eq!(s.rooms.find(room.id).await.unwrap(), None);
    assert_eq!(s.rooms.find_member(room.id, owner.id).await.unwrap(), None);
    assert_eq!(s.rooms.all_members(room.id).await.unwrap(), vec![]);
    assert_eq!(
        s.rooms
            .list_members(room.id, &PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![]
    );
    assert!(!s.rooms.is_banned(room.id, banned.id).await.unwrap());
    assert_eq!(latest(&s, room.id, owner.id).await.messages, vec![]);
    assert_eq!(s.messages.find(msg.id, owner.id).await.unwrap(), None);
    assert_eq!(
        s.messages.markers(room.id, owner.id).await.unwrap(),
        Markers::default()
    );
    let listed = s
        .rooms
        .list_public("", &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(ids_of_rooms(&listed), vec![keep.id]);
    let mine = s
        .rooms
        .list_mine(owner.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(
        mine.iter().map(|r| r.room.id).collect::<Vec<_>>(),
        vec![keep.id]
    );
    assert_eq!(
        s.rooms
            .list_mine(u.id, &PageRequest::default())
            .await
            .unwrap()
            .items,
        vec![]
    );

    assert_not_found(
        s.rooms
            .apply(
                room.id,
                &[RoomOp::Update {
                    name: None,
                    description: None,
                }],
            )
            .await,
    );
    assert_refused(
        s.messages
            .append(&new_message(room.id, owner.id, "late", at(9)))
            .await,
        SendRefused::NoRoom,
    );
    // The other room is untouched.
    assert_eq!(
        s.messages.find(kept_msg.id, owner.id).await.unwrap(),
        Some(kept_msg)
    );
    assert_eq!(room_now(&s, keep.id).await.last_seq, 1);
}

/// Deleting a direct room frees its pair for a new one.
pub async fn room_apply_delete_direct(s: Stores) {
    let a = user(&s, "anna").await;
    let b = user(&s, "ben").await;
    let pair = direct_pair(a.id, b.id);
    let members = [(a.id, Role::Member), (b.id, Role::Member)];
    let dm = s.rooms.create(&new_direct(&a, &b), &members).await.unwrap();
    s.rooms
        .apply(
            dm.id,
            &[
                RoomOp::RemoveMember { user: a.id },
                RoomOp::ExpectMembers {
                    at_least: 1,
                    at_most: 1,
                },
                RoomOp::Delete,
            ],
        )
        .await
        .map(|applied| {
            assert_eq!(applied.room, None);
            assert_eq!(
                applied.deleted_members,
                vec![b.id],
                "who was a member when it went"
            );
            assert_eq!(
                applied.changes,
                vec![RoomChange::MemberRemoved {
                    user: a.id,
                    version: 2
                }]
            );
        })
        .unwrap();
    assert_eq!(s.rooms.find_direct(pair).await.unwrap(), None);
    let again = s.rooms.create(&new_direct(&b, &a), &members).await.unwrap();
    assert_ne!(again.id, dm.id);
    assert_eq!(s.rooms.find_direct(pair).await.unwrap(), Some(again));
}

/// Changing a room that does not exist is `NotFound`; `Delete` goes last.
pub async fn room_apply_unknown_room(s: Stores) {
    let owner = user(&s, "carl").await;
    assert_not_found(
        s.rooms
            .apply(
                RoomId(uuid()),
                &[RoomOp::Update {
                    name: None,
                    description: None,
                }],
            )
            .await,
    );
    assert_not_found(s.rooms.apply(RoomId(uuid()), &[]).await);
    let room = group(&s, owner.id, &[]).await;
    let misplaced = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::Delete,
                RoomOp::Update {
                    name: None,
                    description: None,
                },
            ],
        )
        .await;
    assert!(misplaced.is_err(), "Delete must come last");
    assert_eq!(room_now(&s, room.id).await, room);
}

// ================================================================ messages

/// `append` stores the message with the next seq and version; `find` reads it.
pub async fn message_append_and_find(s: Stores) {
    let owner = user(&s, "dina").await;
    let room = group(&s, owner.id, &[]).await;
    let mut new = new_message(room.id, owner.id, "  hello  ", at(5));
    new.client_msg_id = Some(ClientMsgId::parse("k").unwrap());
    let m = new_one(s.messages.append(&new).await.unwrap());
    assert_eq!(
        m,
        Message {
            id: new.id,
            room_id: room.id,
            seq: 1,
            sender: SenderInfo {
                id: owner.id,
                username: owner.username.clone(),
                display_name: owner.display_name.as_str().to_owned(),
            },
            kind: MessageKind::Text,
            content: "hello".to_owned(),
            attachment: None,
            reply_to_id: None,
            reactions: vec![],
            created_at: at(5),
            edited_at: None,
            deleted: false,
            version: 2,
        }
    );
    assert_eq!(room_now(&s, room.id).await.last_seq, 1);
    assert_eq!(room_now(&s, room.id).await.version, 2);
    assert_eq!(
        s.messages.find(m.id, owner.id).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        s.messages.find(MessageId(uuid()), owner.id).await.unwrap(),
        None
    );

    let mut reply = new_message(room.id, owner.id, "a reply", at(6));
    reply.reply_to = Some(m.id);
    let r = new_one(s.messages.append(&reply).await.unwrap());
    assert_eq!((r.seq, r.version, r.reply_to_id), (2, 3, Some(m.id)));
    assert_eq!(s.messages.find(r.id, owner.id).await.unwrap(), Some(r));
}

/// Fifty concurrent senders: seqs 1..=50, no gap, no repeat, in commit order.
pub async fn message_seq_concurrent(s: Stores) {
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(user(&s, &format!("sender{i}")).await.id);
    }
    let room = group(&s, members[0], &members[1..]).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let messages = s.messages.clone();
            let new = new_message(
                room.id,
                members[i % 5],
                &format!("message {i}"),
                at(i as i64),
            );
            tokio::spawn(async move { messages.append(&new).await })
        })
        .collect();
    let mut sent = Vec::new();
    for t in tasks {
        sent.push(new_one(t.await.unwrap().unwrap()));
    }
    let mut got: Vec<u64> = sent.iter().map(|m| m.seq).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=50).collect::<Vec<_>>());
    for m in &sent {
        assert_eq!(
            m.version,
            m.seq + 1,
            "seq and version advance together, in commit order"
        );
    }
    let now = room_now(&s, room.id).await;
    assert_eq!((now.last_seq, now.version), (50, 51));
    let h = latest(&s, room.id, members[0]).await;
    assert_eq!(seqs(&h), (1..=50).collect::<Vec<_>>());
    let stored: HashSet<MessageId> = h.messages.iter().map(|m| m.id).collect();
    assert_eq!(stored, sent.iter().map(|m| m.id).collect());
}

/// A replayed `client_msg_id` gives back the first message and stores
/// nothing; the key is per sender and per room.
pub async fn message_idempotent(s: Stores) {
    let a = user(&s, "eli").await;
    let b = user(&s, "fay").await;
    let room = group(&s, a.id, &[b.id]).await;
    let other_room = group(&s, a.id, &[]).await;

    let first = new_one(
        s.messages
            .append(&with_client_id(
                new_message(room.id, a.id, "first", at(1)),
                "k1",
            ))
            .await
            .unwrap(),
    );
    let replay = with_client_id(new_message(room.id, a.id, "different text", at(2)), "k1");
    assert_eq!(
        s.messages.append(&replay).await.unwrap(),
        Appended::Existing(first.clone())
    );
    assert_eq!(s.messages.find(replay.id, a.id).await.unwrap(), None);
    let now = room_now(&s, room.id).await;
    assert_eq!(
        (now.last_seq, now.version),
        (1, 2),
        "a replay changes nothing"
    );

    let by_b = with_client_id(new_message(room.id, b.id, "b's", at(3)), "k1");
    assert_eq!(new_one(s.messages.append(&by_b).await.unwrap()).seq, 2);
    let elsewhere = with_client_id(new_message(other_room.id, a.id, "there", at(4)), "k1");
    assert_eq!(new_one(s.messages.append(&elsewhere).await.unwrap()).seq, 1);
    let other_key = with_client_id(new_message(room.id, a.id, "k2", at(5)), "k2");
    assert_eq!(new_one(s.messages.append(&other_key).await.unwrap()).seq, 3);
    // Without a key, every send is new.
    assert_eq!(send(&s, room.id, a.id, "same", at(6)).await.seq, 4);
    assert_eq!(send(&s, room.id, a.id, "same", at(6)).await.seq, 5);
    assert_eq!(
        s.messages
            .append(&with_client_id(
                new_message(room.id, a.id, "again", at(7)),
                "k1"
            ))
            .await
            .unwrap(),
        Appended::Existing(first)
    );
}

/// Ten concurrent sends with one `client_msg_id`: one message, one `New`.
pub async fn message_idempotent_race(s: Stores) {
    let a = user(&s, "gus").await;
    let room = group(&s, a.id, &[]).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let messages = s.messages.clone();
            let new = with_client_id(
                new_message(room.id, a.id, &format!("try {i}"), at(i)),
                "same-key",
            );
            tokio::spawn(async move { messages.append(&new).await })
        })
        .collect();
    let mut new = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Appended::New(m) => new.push(m),
            Appended::Existing(m) => existing.push(m),
        }
    }
    assert_eq!(new.len(), 1);
    assert_eq!(existing.len(), 9);
    for m in &existing {
        assert_eq!(m, &new[0]);
    }
    let now = room_now(&s, room.id).await;
    assert_eq!((now.last_seq, now.version), (1, 2));
    assert_eq!(latest(&s, room.id, a.id).await.messages, new);
}

/// Only members send; a refused send burns no seq and counts nothing.
pub async fn message_requires_membership(s: Stores) {
    let owner = user(&s, "hal").await;
    let stranger = user(&s, "ida").await;
    let leaver = user(&s, "joe").await;
    let room = room_at(
        &s,
        RoomKind::Public,
        "pub",
        at(0),
        &[(owner.id, Role::Owner), (leaver.id, Role::Member)],
    )
    .await;

    let not_a_member = SendRefused::NotAMember {
        room_kind: RoomKind::Public,
    };
    assert_refused(
        s.messages
            .append(&new_message(room.id, stranger.id, "hi", at(1)))
            .await,
        not_a_member.clone(),
    );
    assert_refused(
        s.messages
            .append(&with_client_id(
                new_message(room.id, stranger.id, "hi", at(1)),
                "k",
            ))
            .await,
        not_a_member.clone(),
    );
    let now = room_now(&s, room.id).await;
    assert_eq!((now.last_seq, now.version), (0, 1));
    assert_eq!(send(&s, room.id, owner.id, "first", at(2)).await.seq, 1);

    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: leaver.id }])
        .await
        .unwrap();
    assert_refused(
        s.messages
            .append(&new_message(room.id, leaver.id, "bye", at(3)))
            .await,
        not_a_member,
    );
    let next = send(&s, room.id, owner.id, "second", at(4)).await;
    assert_eq!((next.seq, next.version), (2, 4));
    assert_eq!(seqs(&latest(&s, room.id, owner.id).await), vec![1, 2]);

    assert_refused(
        s.messages
            .append(&new_message(RoomId(uuid()), owner.id, "void", at(5)))
            .await,
        SendRefused::NoRoom,
    );
}

/// History slices: always ascending, `has_more` right in each direction.
pub async fn message_history_edges(s: Stores) {
    let a = user(&s, "kim").await;
    let room = group(&s, a.id, &[]).await;
    let read = |q: HistoryQuery| {
        let s = s.clone();
        async move {
            let h = s.messages.history(room.id, q, a.id).await.unwrap();
            (seqs(&h), h.has_more)
        }
    };
    let none: Vec<u64> = vec![];
    assert_eq!(
        read(HistoryQuery::Latest(limit(50))).await,
        (none.clone(), false)
    );
    assert_eq!(
        read(HistoryQuery::After(0, limit(50))).await,
        (none.clone(), false)
    );
    assert_eq!(
        read(HistoryQuery::Before(1, limit(50))).await,
        (none.clone(), false)
    );

    for i in 1..=101 {
        send(&s, room.id, a.id, &format!("m{i}"), at(i)).await;
    }
    let range = |from: u64, to: u64| (from..=to).collect::<Vec<u64>>();
    let cases = [
        (HistoryQuery::Latest(limit(1)), range(101, 101), true),
        (HistoryQuery::Latest(limit(50)), range(52, 101), true),
        (HistoryQuery::Latest(limit(100)), range(2, 101), true),
        (HistoryQuery::Before(1, limit(100)), none.clone(), false),
        (HistoryQuery::Before(2, limit(100)), range(1, 1), false),
        (HistoryQuery::Before(2, limit(1)), range(1, 1), false),
        (HistoryQuery::Before(3, limit(1)), range(2, 2), true),
        (HistoryQuery::Before(101, limit(1)), range(100, 100), true),
        (HistoryQuery::Before(101, limit(100)), range(1, 100), false),
        (HistoryQuery::Before(100, limit(100)), range(1, 99), false),
        (HistoryQuery::Before(102, limit(100)), range(2, 101), true),
        (HistoryQuery::Before(60, limit(10)), range(50, 59), true),
        (HistoryQuery::After(101, limit(100)), none.clone(), false),
        (HistoryQuery::After(500, limit(100)), none.clone(), false),
        (HistoryQuery::After(0, limit(100)), range(1, 100), true),
        (HistoryQuery::After(1, limit(100)), range(2, 101), false),
        (HistoryQuery::After(0, limit(1)), range(1, 1), true),
        (HistoryQuery::After(99, limit(1)), range(100, 100), true),
        (HistoryQuery::After(100, limit(1)), range(101, 101), false),
        (HistoryQuery::After(40, limit(10)), range(41, 50), true),
    ];
    for (q, expected, more) in cases {
        assert_eq!(read(q).await, (expected, more), "{q:?}");
    }
    let h = s
        .messages
        .history(room.id, HistoryQuery::Latest(limit(3)), a.id)
        .await
        .unwrap();
    let texts: Vec<&str> = h.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, vec!["m99", "m100", "m101"]);
}

/// The read marker only moves forward, and moves the delivered one with it;
/// neither counts as a change of the room.
pub async fn message_read_markers(s: Stores) {
    let a = user(&s, "lou").await;
    let b = user(&s, "max").await;
    let room = group(&s, a.id, &[b.id]).await;
    for i in 1..=5 {
        send(&s, room.id, b.id, "m", at(i)).await;
    }
    let version = room_now(&s, room.id).await.version;
    let marks = |who: UserId| {
        let s = s.clone();
        async move {
            let m = s.messages.markers(room.id, who).await.unwrap();
            (m.last_read_seq, m.last_delivered_seq)
        }
    };
    assert_eq!(marks(a.id).await, (0, 0));
    assert!(s.messages.mark_read(room.id, a.id, 3).await.unwrap());
    assert_eq!(marks(a.id).await, (3, 3));
    assert!(
        !s.messages.mark_read(room.id, a.id, 2).await.unwrap(),
        "never back"
    );
    assert_eq!(marks(a.id).await, (3, 3));
    assert!(
        !s.messages.mark_read(room.id, a.id, 3).await.unwrap(),
        "nor in place"
    );
    assert!(s.messages.mark_read(room.id, a.id, 5).await.unwrap());
    assert_eq!(marks(a.id).await, (5, 5));
    assert_eq!(marks(b.id).await, (0, 0), "markers are per user");
    assert_eq!(room_now(&s, room.id).await.version, version);
    let mine = s
        .rooms
        .list_mine(a.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.items[0].unread_count, 0);
}

/// The delivered marker only moves forward and leaves the read marker
/// where it is; it counts as no change of the room.
pub async fn message_delivered_markers(s: Stores) {
    let a = user(&s, "lia").await;
    let b = user(&s, "mat").await;
    let room = group(&s, a.id, &[b.id]).await;
    for i in 1..=6 {
        send(&s, room.id, b.id, "m", at(i)).await;
    }
    let version = room_now(&s, room.id).await.version;
    let marks = |who: UserId| {
        let s = s.clone();
        async move {
            let m = s.messages.markers(room.id, who).await.unwrap();
            (m.last_read_seq, m.last_delivered_seq)
        }
    };
    assert!(
        !s.messages.mark_delivered(room.id, a.id, 0).await.unwrap(),
        "0 is where it starts"
    );
    assert_eq!(marks(a.id).await, (0, 0));
    assert!(s.messages.mark_delivered(room.id, a.id, 2).await.unwrap());
    assert_eq!(marks(a.id).await, (0, 2), "reading is not implied");
    assert!(
        !s.messages.mark_delivered(room.id, a.id, 1).await.unwrap(),
        "never back"
    );
    assert!(
        !s.messages.mark_delivered(room.id, a.id, 2).await.unwrap(),
        "nor in place"
    );
    assert_eq!(marks(a.id).await, (0, 2));
    assert!(s.messages.mark_read(room.id, a.id, 4).await.unwrap());
    assert_eq!(marks(a.id).await, (4, 4), "reading implies delivery");
    assert!(
        !s.messages.mark_delivered(room.id, a.id, 3).await.unwrap(),
        "never below the read marker"
    );
    assert_eq!(marks(a.id).await, (4, 4));
    assert!(s.messages.mark_delivered(room.id, a.id, 6).await.unwrap());
    assert_eq!(marks(a.id).await, (4, 6));
    assert!(
        !s.messages.mark_read(room.id, a.id, 4).await.unwrap(),
        "the read marker did not move"
    );
    assert!(s.messages.mark_read(room.id, a.id, 5).await.unwrap());
    assert_eq!(
        marks(a.id).await,
        (5, 6),
        "reading behind the delivered marker keeps it"
    );
    assert_eq!(marks(b.id).await, (0, 0), "markers are per user");
    assert_eq!(room_now(&s, room.id).await.version, version);
    assert_not_found(s.messages.mark_delivered(RoomId(uuid()), a.id, 1).await);
}

/// Every counted change raises the version by exactly one, messages
/// included; anything that changes nothing raises nothing.
pub async fn room_version_counts_every_change(s: Stores) {
    let owner = user(&s, "ned").await;
    let u = user(&s, "ora").await;
    let room = room_at(
        &s,
        RoomKind::Public,
        "counted",
        at(0),
        &[(owner.id, Role::Owner)],
    )
    .await;
    assert_eq!(room.version, 1);
    let version = || {
        let s = s.clone();
        async move { room_now(&s, room.id).await.version }
    };

    let m1 = send(&s, room.id, owner.id, "one", at(1)).await;
    assert_eq!((m1.version, version().await), (2, 2));
    s.rooms
        .apply(
            room.id,
            &[RoomOp::AddMember {
                user: u.id,
                role: Role::Member,
                at: at(2),
            }],
        )
        .await
        .unwrap();
    assert_eq!(version().await, 3);
    let m2 = new_one(
        s.messages
            .append(&with_client_id(
                new_message(room.id, u.id, "two", at(3)),
                "c",
            ))
            .await
            .unwrap(),
    );
    assert_eq!((m2.seq, m2.version, version().await), (2, 4, 4));
    s.messages
        .append(&with_client_id(
            new_message(room.id, u.id, "two again", at(4)),
            "c",
        ))
        .await
        .unwrap();
    assert_eq!(version().await, 4, "a replay counts nothing");
    s.rooms
        .apply(
            room.id,
            &[RoomOp::Update {
                name: Some(RoomName::parse("renamed").unwrap()),
                description: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(version().await, 5);
    s.rooms
        .apply(
            room.id,
            &[
                RoomOp::Ban {
                    user: owner.id,
                    by: owner.id,
                    at: at(5),
                },
                RoomOp::Unban { user: owner.id },
            ],
        )
        .await
        .unwrap();
    assert_eq!(version().await, 5, "bans are not counted");
    assert_stale(
        s.rooms
            .apply(
                room.id,
                &[
                    RoomOp::SetRole {
                        user: u.id,
                        role: Role::Admin,
                    },
                    RoomOp::ExpectMembers {
                        at_least: 9,
                        at_most: 9,
                    },
                ],
            )
            .await,
    );
    assert_eq!(version().await, 5, "a failed change counts nothing");
    s.messages.mark_read(room.id, owner.id, 2).await.unwrap();
    assert_eq!(version().await, 5, "reads are not counted");
    let applied = s
        .rooms
        .apply(
            room.id,
            &[
                RoomOp::SetRole {
                    user: u.id,
                    role: Role::Admin,
                },
                system_message(owner.id, "ned made ora an admin", at(6)),
            ],
        )
        .await
        .unwrap();
    let versions: Vec<u64> = applied
        .changes
        .iter()
        .map(|c| match c {
            RoomChange::MemberAdded { version, .. }
            | RoomChange::MemberRemoved { version, .. }
            | RoomChange::RoleChanged { version, .. }
            | RoomChange::Updated { version } => *version,
            RoomChange::MessageAdded { message } => message.version,
        })
        .collect();
    assert_eq!(versions, vec![6, 7]);
    assert_eq!(version().await, 7);
    let m3 = send(&s, room.id, owner.id, "three", at(7)).await;
    assert_eq!((m3.seq, m3.version, version().await), (4, 8, 8));
    let h = latest(&s, room.id, owner.id).await;
    let message_versions: Vec<u64> = h.messages.iter().map(|m| m.version).collect();
    assert_eq!(message_versions, vec![2, 4, 7, 8]);
}

// ================================================================ changes

/// A client's copy of a room: what a full read gives, or what applying
/// `changes` to an older copy gives.
#[derive(Debug, Clone, PartialEq)]
struct Replica {
    room: Room,
    /// By seq.
    messages: std::collections::BTreeMap<u64, Message>,
    /// In join order.
    members: Vec<MemberView>,
}

impl Replica {
    /// Applies one answer of `changes`; returns the version it is good to.
    fn apply(&mut self, c: crate::Changes) -> u64 {
        self.room = c.room;
        for m in c.messages {
            self.messages.insert(m.seq, m);
        }
        self.members
            .retain(|m| !c.left_member_ids.contains(&m.membership.user_id));
        for m in c.members {
            self.members
                .retain(|old| old.membership.user_id != m.membership.user_id);
            self.members.push(m);
        }
        self.members
            .sort_by_key(|m| (m.membership.joined_at, m.membership.user_id));
        c.version
    }
}

/// The room as a fresh full read shows it to `viewer`.
async fn full_read(s: &Stores, room: RoomId, viewer: UserId) -> Replica {
    let h = latest(s, room, viewer).await;
    assert!(!h.has_more, "the test rooms hold at most 100 messages");
    let members = s.rooms.list_members(room, &page(100, None)).await.unwrap();
    assert!(members.next_cursor.is_none());
    Replica {
        room: room_now(s, room).await,
        messages: h.messages.into_iter().map(|m| (m.seq, m)).collect(),
        members: members.items,
    }
}

/// Walks `changes` from `since` with pages of `limit` until `has_more` is
/// false, checking each page, and applies them all to `replica`.
async fn catch_up(
    s: &Stores,
    replica: &mut Replica,
    since: u64,
    limit: u32,
    viewer: UserId,
) -> usize {
    let mut since = since;
    for round in 1..=1000 {
        let c = s
            .rooms
            .changes(replica.room.id, since, limit, viewer)
            .await
            .unwrap()
            .expect("the room exists");
        assert!(c.messages.len() <= limit as usize, "at most {limit}");
        let seqs: Vec<u64> = c.messages.iter().map(|m| m.seq).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(seqs, sorted, "messages in ascending seq");
        assert!(
            c.messages
                .iter()
                .all(|m| m.version > since && m.version <= c.version),
            "only changes after {since}, up to {}",
            c.version
        );
        assert!(c.version >= since && c.version <= c.room.version);
        let has_more = c.has_more;
        if has_more {
            assert_eq!(c.messages.len(), limit as usize, "a page with more is full");
            assert!(c.version > since, "a page with more makes progress");
        } else {
            assert_eq!(c.version, c.room.version);
        }
        since = replica.apply(c);
        if !has_more {
            return round;
        }
    }
    panic!("changes never caught up");
}

fn member_ids(views: &[MemberView]) -> Vec<UserId> {
    views.iter().map(|m| m.membership.user_id).collect()
}

/// `changes` after joins, leaves, kicks, role changes, system messages and
/// messages: each part holds exactly what changed after `since`, as it is now.
pub async fn room_changes_after_membership_and_messages(s: Stores) {
    let owner = user(&s, "olga").await;
    let a = user(&s, "abel").await;
    let b = user(&s, "bert").await;
    let c = user(&s, "cleo").await;
    let d = user(&s, "dora").await;
    let room = group(&s, owner.id, &[a.id, b.id]).await;
    assert_eq!(room.version, 1);
    let add = |user: UserId, t: i64| RoomOp::AddMember {
        user,
        role: Role::Member,
        at: at(t),
    };

    let m1 = send(&s, room.id, a.id, "one", at(1)).await; // v2
    s.rooms.apply(room.id, &[add(c.id, 2)]).await.unwrap(); // v3
    let role = [
        RoomOp::SetRole {
            user: a.id,
            role: Role::Admin,
        },
        system_message(owner.id, "olga made abel an admin", at(3)),
    ];
    s.rooms.apply(room.id, &role).await.unwrap(); // v4, v5
    let kick = [
        RoomOp::RemoveMember { user: b.id },
        system_message(owner.id, "olga removed bert", at(4)),
    ];
    s.rooms.apply(room.id, &kick).await.unwrap(); // v6, v7
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: c.id }])
        .await
        .unwrap(); // v8
    let m2 = send(&s, room.id, owner.id, "two", at(5)).await; // v9
    s.rooms.apply(room.id, &[add(d.id, 6)]).await.unwrap(); // v10
    let now = room_now(&s, room.id).await;
    assert_eq!(now.version, 10);
    let full = full_read(&s, room.id, owner.id).await;

    let changes = |since: u64| {
        let s = s.clone();
        async move {
            s.rooms
                .changes(room.id, since, 100, owner.id)
                .await
                .unwrap()
                .expect("the room exists")
        }
    };

    let all = changes(1).await;
    assert_eq!(all.room, now);
    assert_eq!((all.version, all.has_more), (10, false));
    let history: Vec<Message> = full.messages.values().cloned().collect();
    assert_eq!(
        all.messages, history,
        "every message, as a full read shows it"
    );
    assert_eq!(
        all.messages.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![2, 5, 7, 9]
    );
    assert_eq!(all.messages[0], m1);
    assert_eq!(all.messages[3], m2);
    assert_eq!(all.messages[1].kind, MessageKind::System);
    assert_eq!(
        member_ids(&all.members),
        vec![a.id, d.id],
        "owner unchanged"
    );
    assert_eq!(all.members[0].membership.role, Role::Admin);
    assert_eq!(all.members[0].user, a);
    assert_eq!(all.members[1].membership.joined_at, at(6));
    assert_eq!(
        all.members,
        full.members
            .iter()
            .filter(|m| [a.id, d.id].contains(&m.membership.user_id))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all.left_member_ids,
        vec![b.id, c.id],
        "kicked and left, in the order they went (cleo came and went)"
    );

    let from5 = changes(5).await;
    assert_eq!(
        from5.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![3, 4],
        "the kick's system message and the second message"
    );
    assert_eq!(member_ids(&from5.members), vec![d.id]);
    assert_eq!(from5.left_member_ids, vec![b.id, c.id]);
    assert_eq!(from5.version, 10);

    let from8 = changes(8).await;
    assert_eq!(from8.messages, vec![m2]);
    assert_eq!(member_ids(&from8.members), vec![d.id]);
    assert_eq!(
        from8.left_member_ids,
        vec![],
        "cleo left at 8: not after it"
    );

    let from0 = changes(0).await;
    assert_eq!(
        from0.members, full.members,
        "from 0, every member: the creators too"
    );
    assert_eq!(from0.messages, history);

    let update = [RoomOp::Update {
        name: Some(RoomName::parse("renamed").unwrap()),
        description: None,
    }];
    s.rooms.apply(room.id, &update).await.unwrap(); // v11
    let renamed = changes(10).await;
    assert_eq!(renamed.room.name.as_str(), "renamed");
    assert_eq!(renamed.version, 11);
    assert!(renamed.messages.is_empty() && renamed.members.is_empty());
    assert!(renamed.left_member_ids.is_empty());
}

/// Walking `changes` page by page with the returned version brings a copy
/// taken at any version to exactly the state a full read gives.
pub async fn room_changes_pages_reach_the_room_state(s: Stores) {
    let owner = user(&s, "pia").await;
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(user(&s, &format!("peer{i}")).await);
    }
    let room = room_at(
        &s,
        RoomKind::Public,
        "busy",
        at(0),
        &[(owner.id, Role::Owner), (people[0].id, Role::Member)],
    )
    .await;
    let mut copies: Vec<(u64, Replica)> = vec![(
        0,
        Replica {
            room: room.clone(),
            messages: Default::default(),
            members: Vec::new(),
        },
    )];
    copies.push((1, full_read(&s, room.id, owner.id).await));
    // Rounds of messages and membership changes; a copy after each.
    for (i, p) in people.iter().enumerate().skip(1) {
        let t = i as i64 * 10;
        s.rooms
            .apply(
                room.id,
                &[RoomOp::AddMember {
                    user: p.id,
                    role: Role::Member,
                    at: at(t),
                }],
            )
            .await
            .unwrap();
        for j in 0..3 {
            send(&s, room.id, p.id, &format!("p{i} says {j}"), at(t + 1 + j)).await;
        }
        if i % 2 == 0 {
            let prev = &people[i - 1];
            s.rooms
                .apply(
                    room.id,
                    &[
                        RoomOp::SetRole {
                            user: prev.id,
                            role: Role::Admin,
                        },
                        system_message(owner.id, "promoted", at(t + 5)),
                    ],
                )
                .await
                .unwrap();
        }
        if i == 3 {
            s.rooms
                .apply(
                    room.id,
                    &[
                        RoomOp::RemoveMember { user: people[0].id },
                        system_message(owner.id, "kicked", at(t + 6)),
                    ],
                )
                .await
                .unwrap();
        }
        if i == 4 {
            s.rooms
                .apply(room.id, &[RoomOp::RemoveMember { user: people[2].id }])
                .await
                .unwrap();
        }
        let now = full_read(&s, room.id, owner.id).await;
        copies.push((now.room.version, now));
    }
    send(&s, room.id, owner.id, "last word", at(100)).await;
    let target = full_read(&s, room.id, owner.id).await;
    assert_eq!(
        target.room.version, 29,
        "1 + 5 × (join + 3 messages) + 2 × 2 + 2 + 1 + 1"
    );

    for (since, copy) in &copies {
        for limit in [1, 2, 3, 7, 1000] {
            let mut replica = copy.clone();
            let rounds = catch_up(&s, &mut replica, *since, limit, owner.id).await;
            assert_eq!(replica, target, "from version {since} in pages of {limit}");
            let changed = target
                .messages
                .values()
                .filter(|m| m.version > *since)
                .count();
            assert_eq!(
                rounds,
                changed.div_ceil(limit as usize).max(1),
                "from {since} in pages of {limit}: {changed} changed messages"
            );
        }
    }
}

/// At the current version nothing has changed: only the room comes back.
/// No room, no answer; a deleted room is no room.
pub async fn room_changes_since_current_version(s: Stores) {
    let owner = user(&s, "quin").await;
    let other = user(&s, "rhea").await;
    let room = group(&s, owner.id, &[other.id]).await;
    send(&s, room.id, other.id, "hi", at(1)).await;
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: other.id }])
        .await
        .unwrap();
    let now = room_now(&s, room.id).await;
    let c = s
        .rooms
        .changes(room.id, now.version, 50, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c,
        crate::Changes {
            room: now.clone(),
            messages: vec![],
            members: vec![],
            left_member_ids: vec![],
            has_more: false,
            version: now.version,
        }
    );
    assert_eq!(
        s.rooms
            .changes(RoomId(uuid()), 0, 50, owner.id)
            .await
            .unwrap(),
        None
    );
    s.rooms.apply(room.id, &[RoomOp::Delete]).await.unwrap();
    assert_eq!(
        s.rooms.changes(room.id, 0, 50, owner.id).await.unwrap(),
        None
    );
}

/// A member who left and came back after `since` is a member, not gone;
/// one who left before `since` and came back after is a member too.
pub async fn room_changes_rejoined_member(s: Stores) {
    let owner = user(&s, "sven").await;
    let a = user(&s, "tara").await;
    let b = user(&s, "ugo").await;
    let room = group(&s, owner.id, &[a.id, b.id]).await;
    let rejoin = |user: UserId, t: i64| RoomOp::AddMember {
        user,
        role: Role::Member,
        at: at(t),
    };
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: b.id }])
        .await
        .unwrap(); // v2
    let since = room_now(&s, room.id).await.version;
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: a.id }])
        .await
        .unwrap(); // v3
    s.rooms.apply(room.id, &[rejoin(a.id, 5)]).await.unwrap(); // v4
    s.rooms.apply(room.id, &[rejoin(b.id, 6)]).await.unwrap(); // v5
    let c = s
        .rooms
        .changes(room.id, since, 10, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member_ids(&c.members), vec![a.id, b.id]);
    assert_eq!(
        c.members[0].membership.joined_at,
        at(5),
        "the new membership"
    );
    assert_eq!(c.left_member_ids, vec![]);
    assert_eq!(c.version, 5);
    // Gone again: gone.
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: a.id }])
        .await
        .unwrap(); // v6
    let c = s
        .rooms
        .changes(room.id, since, 10, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member_ids(&c.members), vec![b.id]);
    assert_eq!(c.left_member_ids, vec![a.id]);
}

// ================================================================ edits, deletes, reactions

fn summary(emoji: &str, count: u32, me: bool) -> ReactionSummary {
    ReactionSummary {
        emoji: emoji.to_owned(),
        count,
        me,
    }
}

/// `(emoji, count, me)` of each reaction, in order.
fn reactions_of(m: &Message) -> Vec<(&str, u32, bool)> {
    m.reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count, r.me))
        .collect()
}

async fn react(s: &Stores, id: MessageId, user: UserId, emoji: &str, add: bool, t: i64) -> Reacted {
    s.messages
        .react(id, user, emoji, add, at(t))
        .await
        .unwrap()
        .expect("the message exists and is not deleted")
}

/// `edit` replaces the content, sets `edited_at`, raises the room's version
/// by one and gives it to the message; nothing else moves. No such message:
/// `None`, nothing raised.
pub async fn message_edit(s: Stores) {
    let owner = user(&s, "edna").await;
    let other = user(&s, "fred").await;
    let room = group(&s, owner.id, &[other.id]).await;
    let m1 = send(&s, room.id, owner.id, "first", at(1)).await; // v2
    let m2 = send(&s, room.id, other.id, "second", at(2)).await; // v3
    react(&s, m1.id, other.id, "👍", true, 3).await; // v4

    let edited = s
        .messages
        .edit(m1.id, &text("  first, fixed  "), at(10), other.id)
        .await
        .unwrap()
        .expect("a live message can be edited");
    let now = room_now(&s, room.id).await;
    assert_eq!(now.version, 5);
    assert_eq!(now.last_seq, 2, "an edit takes no seq");
    assert_eq!(
        edited,
        Message {
            content: "first, fixed".to_owned(),
            edited_at: Some(at(10)),
            version: 5,
            reactions: vec![summary("👍", 1, true)],
            ..m1.clone()
        },
        "as the viewer sees it, reactions kept"
    );
    assert_eq!(
        s.messages.find(m1.id, other.id).await.unwrap(),
        Some(edited.clone())
    );
    assert_eq!(s.messages.find(m2.id, owner.id).await.unwrap(), Some(m2));

    // Edited again: a new version each time.
    let again = s
        .messages
        .edit(m1.id, &text("third take"), at(11), owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.version, again.edited_at), (6, Some(at(11))));
    assert_eq!(again.content, "third take");
    assert_eq!(again.reactions, vec![summary("👍", 1, false)]);
    assert_eq!(latest(&s, room.id, owner.id).await.messages[0], again);

    assert_eq!(
        s.messages
            .edit(MessageId(uuid()), &text("x"), at(12), owner.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(room_now(&s, room.id).await.version, 6);
}

/// `delete` leaves a tombstone: id, seq, sender, times and reply link kept;
/// no content, no attachment, no reactions; `deleted`; a new version. Twice:
/// `None`, nothing raised. A tombstone can be neither edited nor reacted to.
pub async fn message_delete(s: Stores) {
    let owner = user(&s, "gail").await;
    let other = user(&s, "hugo").await;
    let room = group(&s, owner.id, &[other.id]).await;
    let m1 = send(&s, room.id, owner.id, "doomed", at(1)).await; // v2
    let mut reply = new_message(room.id, other.id, "a reply", at(2));
    reply.reply_to = Some(m1.id);
    let reply = new_one(s.messages.append(&reply).await.unwrap()); // v3
    react(&s, m1.id, other.id, "👍", true, 3).await; // v4
    react(&s, m1.id, owner.id, "🎉", true, 4).await; // v5
    s.messages
        .edit(m1.id, &text("doomed, edited"), at(5), owner.id)
        .await
        .unwrap()
        .unwrap(); // v6

    let tomb = s
        .messages
        .delete(m1.id, other.id)
        .await
        .unwrap()
        .expect("a live message can be deleted");
    assert_eq!(
        tomb,
        Message {
            content: String::new(),
            attachment: None,
            reactions: vec![],
            edited_at: Some(at(5)),
            deleted: true,
            version: 7,
            ..m1.clone()
        }
    );
    let now = room_now(&s, room.id).await;
    assert_eq!((now.version, now.last_seq), (7, 2));
    assert_eq!(
        s.messages.find(m1.id, owner.id).await.unwrap(),
        Some(tomb.clone())
    );
    let h = latest(&s, room.id, owner.id).await;
    assert_eq!(seqs(&h), vec![1, 2], "a tombstone keeps its place");
    assert_eq!(h.messages[0], tomb);
    assert_eq!(h.messages[1], reply, "a reply keeps its link");

    // Twice, an edit, a reaction either way: nothing, nothing raised.
    assert_eq!(s.messages.delete(m1.id, owner.id).await.unwrap(), None);
    assert_eq!(
        s.messages
            .edit(m1.id, &text("back"), at(8), owner.id)
            .await
            .unwrap(),
        None
    );
    for add in [true, false] {
        assert_eq!(
            s.messages
                .react(m1.id, other.id, "👍", add, at(9))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        s.messages
            .delete(MessageId(uuid()), owner.id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(room_now(&s, room.id).await.version, 7);
    assert_eq!(s.messages.find(m1.id, owner.id).await.unwrap(), Some(tomb));
}

/// Reactions: one entry per emoji in the order first used, with count and
/// the viewer's `me`; every change one version, repeats none; an emoji
/// that drops to zero leaves, and used again comes last.
pub async fn message_react(s: Stores) {
    let owner = user(&s, "ines").await;
    let a = user(&s, "jack").await;
    let b = user(&s, "kurt").await;
    let room = group(&s, owner.id, &[a.id, b.id]).await;
    let m = send(&s, room.id, owner.id, "react to me", at(1)).await; // v2
    let other = send(&s, room.id, owner.id, "not me", at(2)).await; // v3

    let r = react(&s, m.id, a.id, "👍", true, 10).await; // v4
    assert!(r.changed);
    assert_eq!(r.message.version, 4);
    assert_eq!(reactions_of(&r.message), vec![("👍", 1, true)]);
    assert_eq!(r.message.content, "react to me");
    let r = react(&s, m.id, b.id, ":heart:", true, 11).await; // v5
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 1, false), (":heart:", 1, true)]
    );
    let r = react(&s, m.id, b.id, "👍", true, 12).await; // v6
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 2, true), (":heart:", 1, true)]
    );
    assert_eq!(r.message.version, 6);
    assert_eq!(room_now(&s, room.id).await.version, 6);

    // Repeats change nothing and raise nothing.
    let r = react(&s, m.id, a.id, "👍", true, 13).await;
    assert!(!r.changed);
    assert_eq!(r.message.version, 6);
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 2, true), (":heart:", 1, false)]
    );
    let r = react(&s, m.id, a.id, ":heart:", false, 14).await;
    assert!(!r.changed);
    assert_eq!(room_now(&s, room.id).await.version, 6);

    // Each viewer sees their own `me`, in every read.
    let seen = |viewer: UserId| {
        let s = s.clone();
        async move { s.messages.find(m.id, viewer).await.unwrap().unwrap() }
    };
    assert_eq!(
        reactions_of(&seen(owner.id).await),
        vec![("👍", 2, false), (":heart:", 1, false)]
    );
    assert_eq!(
        reactions_of(&seen(a.id).await),
        vec![("👍", 2, true), (":heart:", 1, false)]
    );
    assert_eq!(
        reactions_of(&seen(b.id).await),
        vec![("👍", 2, true), (":heart:", 1, true)]
    );
    let h = latest(&s, room.id, a.id).await;
    assert_eq!(h.messages[0], seen(a.id).await);
    assert_eq!(h.messages[1], other, "the other message has none");

    // a's 👍 (at 10, its first use) goes; b still uses it (since 12, after
    // :heart: at 11): 👍 keeps its place, first use is not the earliest
    // reaction still standing.
    let r = react(&s, m.id, a.id, "👍", false, 15).await; // v7
    assert!(r.changed);
    assert_eq!(r.message.version, 7);
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 1, false), (":heart:", 1, false)]
    );
    // Down to zero: 👍 leaves the list; used again it comes last.
    let r = react(&s, m.id, b.id, "👍", false, 16).await; // v8
    assert_eq!(reactions_of(&r.message), vec![(":heart:", 1, true)]);
    let r = react(&s, m.id, a.id, "🎉", true, 17).await; // v9
    let r2 = react(&s, m.id, owner.id, "👍", true, 18).await; // v10
    assert!(r.changed && r2.changed);
    assert_eq!(
        reactions_of(&r2.message),
        vec![(":heart:", 1, false), ("🎉", 1, false), ("👍", 1, true)]
    );
    assert_eq!(r2.message.version, 10);
    assert_eq!(room_now(&s, room.id).await.version, 10);
    assert_eq!(
        room_now(&s, room.id).await.last_seq,
        2,
        "reactions take no seq"
    );
    assert_eq!(s.messages.find(other.id, a.id).await.unwrap(), Some(other));

    assert!(
        s.messages
            .react(MessageId(uuid()), a.id, "👍", true, at(19))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(room_now(&s, room.id).await.version, 10);
}

/// `RoomRepo::changes` hands out edited, reacted and deleted messages (a
/// tombstone included) by their new versions, and nothing for a change
/// that changed nothing.
pub async fn message_changes_after_edit_delete_react(s: Stores) {
    let owner = user(&s, "lena").await;
    let other = user(&s, "mike").await;
    let room = group(&s, owner.id, &[other.id]).await;
    let m1 = send(&s, room.id, owner.id, "one", at(1)).await; // v2
    let m2 = send(&s, room.id, owner.id, "two", at(2)).await; // v3
    let m3 = send(&s, room.id, owner.id, "three", at(3)).await; // v4
    let m4 = send(&s, room.id, owner.id, "four", at(4)).await; // v5
    let since = room_now(&s, room.id).await.version;
    assert_eq!(since, 5);

    s.messages.delete(m3.id, owner.id).await.unwrap().unwrap(); // v6
    react(&s, m2.id, other.id, "👍", true, 5).await; // v7
    s.messages
        .edit(m1.id, &text("one, edited"), at(6), owner.id)
        .await
        .unwrap()
        .unwrap(); // v8
    // Nothing changes: no version.
    react(&s, m2.id, other.id, "👍", true, 7).await;
    assert_eq!(s.messages.delete(m3.id, owner.id).await.unwrap(), None);

    let ch = s
        .rooms
        .changes(room.id, since, 100, other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ch.version, ch.has_more), (8, false));
    assert_eq!(ch.room.version, 8);
    let got: Vec<(MessageId, u64, bool, &str)> = ch
        .messages
        .iter()
        .map(|m| (m.id, m.version, m.deleted, m.content.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (m1.id, 8, false, "one, edited"),
            (m2.id, 7, false, "two"),
            (m3.id, 6, true, ""),
        ],
        "in seq order; m4 did not change"
    );
    assert_eq!(ch.messages[0].edited_at, Some(at(6)));
    // The reacted message carries its reactions, as the viewer sees them.
    let reactions: Vec<(&str, u32, bool)> = ch.messages[1]
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count, r.me))
        .collect();
    assert_eq!(reactions, vec![("👍", 1, true)]);
    assert!(ch.messages[2].reactions.is_empty(), "a tombstone has none");

    // Paged by version: the lowest versions first.
    let first = s
        .rooms
        .changes(room.id, since, 1, other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.version, first.has_more), (6, true));
    assert_eq!(first.messages.len(), 1);
    assert_eq!(
        (first.messages[0].id, first.messages[0].deleted),
        (m3.id, true)
    );

    // Past the last change: nothing.
    let none = s
        .rooms
        .changes(room.id, 8, 100, other.id)
        .await
        .unwrap()
        .unwrap();
    assert!(none.messages.is_empty());
    assert_eq!(s.messages.find(m4.id, other.id).await.unwrap(), Some(m4));
}

/// Concurrent reactions and edits of one message: every change counted once,
/// each with its own version, none lost.
pub async fn message_react_concurrent(s: Stores) {
    let owner = user(&s, "nora").await;
    let mut members = Vec::new();
    for i in 0..12 {
        members.push(user(&s, &format!("fan{i}")).await.id);
    }
    let room = group(&s, owner.id, &members).await;
    let m = send(&s, room.id, owner.id, "popular", at(1)).await; // v2
    let mut tasks = Vec::new();
    for (i, u) in members.iter().copied().enumerate() {
        let messages = s.messages.clone();
        tasks.push(tokio::spawn(async move {
            let r = messages
                .react(m.id, u, "👍", true, at(10 + i as i64))
                .await
                .unwrap()
                .unwrap();
            assert!(r.changed);
            r.message.version
        }));
    }
    let messages = s.messages.clone();
    let edit = tokio::spawn(async move {
        messages
            .edit(m.id, &text("popular, edited"), at(5), owner.id)
            .await
            .unwrap()
            .unwrap()
            .version
    });
    let mut versions: Vec<u64> = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.push(edit.await.unwrap());
    versions.sort_unstable();
    assert_eq!(versions, (3..=15).collect::<Vec<u64>>(), "one version each");
    assert_eq!(room_now(&s, room.id).await.version, 15);
    let now = s.messages.find(m.id, owner.id).await.unwrap().unwrap();
    assert_eq!(now.version, 15);
    assert_eq!(now.content, "popular, edited");
    assert_eq!(now.reactions, vec![summary("👍", 12, false)]);
}

// ================================================================ reactors, search, receipts

/// `reactors`: each emoji in the order of the message's `reactions`, with
/// every user who reacted with it in the order they reacted (ties by user
/// id); empty for a message without reactions, a deleted or an unknown one.
pub async fn message_reactors(s: Stores) {
    let owner = user(&s, "olga").await;
    let a = user(&s, "paul").await;
    let b = user(&s, "quin").await;
    let c = user(&s, "rosa").await;
    let room = group(&s, owner.id, &[a.id, b.id, c.id]).await;
    let m = send(&s, room.id, owner.id, "react to me", at(1)).await;
    let plain = send(&s, room.id, owner.id, "not me", at(2)).await;
    assert_eq!(s.messages.reactors(m.id).await.unwrap(), vec![]);

    react(&s, m.id, b.id, "👍", true, 10).await;
    react(&s, m.id, a.id, ":heart:", true, 11).await;
    react(&s, m.id, a.id, "👍", true, 12).await;
    // Two reactions at one instant: by user id.
    react(&s, m.id, c.id, ":heart:", true, 13).await;
    react(&s, m.id, owner.id, ":heart:", true, 13).await;
    let mut tied = vec![c.id, owner.id];
    tied.sort();
    let r = react(&s, m.id, c.id, "🎉", true, 14).await;
    let expected = vec![
        Reactors {
            emoji: "👍".to_owned(),
            user_ids: vec![b.id, a.id],
        },
        Reactors {
            emoji: ":heart:".to_owned(),
            user_ids: [vec![a.id], tied].concat(),
        },
        Reactors {
            emoji: "🎉".to_owned(),
            user_ids: vec![c.id],
        },
    ];
    let got = s.messages.reactors(m.id).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        got.iter()
            .map(|r| (r.emoji.as_str(), r.user_ids.len() as u32))
            .collect::<Vec<_>>(),
        r.message
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count))
            .collect::<Vec<_>>(),
        "the order and counts of the message's reactions"
    );

    // b's 👍 (at 10, its first use) goes; a still uses it (since 12, after
    // :heart: at 11): 👍 keeps its place.
    let r = react(&s, m.id, b.id, "👍", false, 15).await;
    let got = s.messages.reactors(m.id).await.unwrap();
    assert_eq!(
        got.iter().map(|r| r.emoji.as_str()).collect::<Vec<_>>(),
        vec!["👍", ":heart:", "🎉"]
    );
    assert_eq!(got[0].user_ids, vec![a.id]);
    assert_eq!(
        got.iter().map(|r| r.emoji.as_str()).collect::<Vec<_>>(),
        r.message
            .reactions
            .iter()
            .map(|r| r.emoji.as_str())
            .collect::<Vec<_>>()
    );

    assert_eq!(s.messages.reactors(plain.id).await.unwrap(), vec![]);
    s.messages.delete(m.id, owner.id).await.unwrap().unwrap();
    assert_eq!(s.messages.reactors(m.id).await.unwrap(), vec![]);
    assert_eq!(
        s.messages.reactors(MessageId(uuid())).await.unwrap(),
        vec![]
    );
}

/// Each emoji in the order of its *first use*, not of the earliest reaction
/// still standing: an emoji keeps its place while anyone still reacts with
/// it, also once the user who first used it has taken theirs back (and
/// through a chain of such hand-overs); only a count that drops to 0 makes
/// it leave, and used again it comes last. `reactors` and every read of the
/// message (the reaction's own answer, `find`, `history`, `changes`) agree.
/// Concurrent first uses of one emoji give it one place.
pub async fn message_reaction_order_survives_first_user_leaving(s: Stores) {
    let owner = user(&s, "sven").await;
    let alice = user(&s, "tara").await;
    let bob = user(&s, "umar").await;
    let carol = user(&s, "vera").await;
    let room = group(&s, owner.id, &[alice.id, bob.id, carol.id]).await;
    let m = send(&s, room.id, owner.id, "react to me", at(1)).await;

    // The emoji's order as every read gives it, for `viewer`; the reads must
    // agree with each other and with `reactors`.
    let order = |viewer: UserId| {
        let s = s.clone();
        async move {
            let found = s.messages.find(m.id, viewer).await.unwrap().unwrap();
            let h = latest(&s, room.id, viewer).await;
            assert_eq!(h.messages, vec![found.clone()], "history = find");
            let ch = s
                .rooms
                .changes(room.id, 0, 100, viewer)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ch.messages, vec![found.clone()], "changes = find");
            let reactors = s.messages.reactors(m.id).await.unwrap();
            assert_eq!(
                reactors
                    .iter()
                    .map(|r| (r.emoji.clone(), r.user_ids.len() as u32))
                    .collect::<Vec<_>>(),
                found
                    .reactions
                    .iter()
                    .map(|r| (r.emoji.clone(), r.count))
                    .collect::<Vec<_>>(),
                "reactors in the order and with the counts of the reactions"
            );
            (found, reactors)
        }
    };
    let reactors = |list: &[(&str, &[UserId])]| -> Vec<Reactors> {
        list.iter()
            .map(|(emoji, users)| Reactors {
                emoji: (*emoji).to_owned(),
                user_ids: users.to_vec(),
            })
            .collect()
    };

    // The example of the contract: alice 🎉, bob 👍, bob 🎉, alice takes
    // her 🎉 back. 🎉 (bytes F0 9F 8E 89) sorts before 👍 (F0 9F 91 8D), so
    // the ties rule alone cannot tell these orders apart: the instants do.
    react(&s, m.id, alice.id, "🎉", true, 10).await;
    react(&s, m.id, bob.id, "👍", true, 11).await;
    react(&s, m.id, bob.id, "🎉", true, 12).await;
    let r = react(&s, m.id, alice.id, "🎉", false, 13).await;
    assert!(r.changed);
    assert_eq!(
        reactions_of(&r.message),
        vec![("🎉", 1, false), ("👍", 1, false)],
        "🎉 keeps its place: bob still uses it"
    );
    let (found, got) = order(bob.id).await;
    assert_eq!(reactions_of(&found), vec![("🎉", 1, true), ("👍", 1, true)]);
    assert_eq!(got, reactors(&[("🎉", &[bob.id]), ("👍", &[bob.id])]));
    assert_eq!(
        reactions_of(&order(alice.id).await.0),
        vec![("🎉", 1, false), ("👍", 1, false)]
    );

    // alice comes back to 🎉, then bob, who kept its place for her, leaves
    // it: still alice's alone, 🎉 is still first.
    let r = react(&s, m.id, alice.id, "🎉", true, 14).await;
    assert_eq!(
        reactions_of(&r.message),
        vec![("🎉", 2, true), ("👍", 1, false)]
    );
    assert_eq!(
        order(owner.id).await.1,
        reactors(&[("🎉", &[bob.id, alice.id]), ("👍", &[bob.id])]),
        "users in the order they reacted"
    );
    // A later emoji in between.
    react(&s, m.id, carol.id, ":heart:", true, 15).await;
    let r = react(&s, m.id, bob.id, "🎉", false, 16).await;
    assert_eq!(
        reactions_of(&r.message),
        vec![("🎉", 1, false), ("👍", 1, true), (":heart:", 1, false)]
    );
    assert_eq!(
        order(alice.id).await.1,
        reactors(&[
            ("🎉", &[alice.id]),
            ("👍", &[bob.id]),
            (":heart:", &[carol.id]),
        ])
    );

    // Down to zero: 🎉 leaves, and nothing remembers it. Used again it comes
    // last, behind the emoji first used after it the first time, whoever
    // uses it.
    let r = react(&s, m.id, alice.id, "🎉", false, 17).await;
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 1, false), (":heart:", 1, false)]
    );
    let r = react(&s, m.id, bob.id, "🎉", true, 18).await;
    assert_eq!(
        reactions_of(&r.message),
        vec![("👍", 1, true), (":heart:", 1, false), ("🎉", 1, true)]
    );
    // Its new first use is what a later user inherits.
    react(&s, m.id, carol.id, "🎉", true, 19).await;
    react(&s, m.id, bob.id, "🎉", false, 20).await;
    let (found, got) = order(carol.id).await;
    assert_eq!(
        reactions_of(&found),
        vec![("👍", 1, false), (":heart:", 1, true), ("🎉", 1, true)]
    );
    assert_eq!(
        got,
        reactors(&[
            ("👍", &[bob.id]),
            (":heart:", &[carol.id]),
            ("🎉", &[carol.id]),
        ])
    );
    // 👍 too: its only user leaves, and it comes back last.
    react(&s, m.id, bob.id, "👍", false, 21).await;
    let r = react(&s, m.id, owner.id, "👍", true, 22).await;
    assert_eq!(
        reactions_of(&r.message),
        vec![(":heart:", 1, false), ("🎉", 1, false), ("👍", 1, true)]
    );

    // Concurrent first uses of one emoji, at instants before and after
    // another emoji's first use: whichever comes first, they agree on one
    // place, which then holds while any of them is left.
    let other = send(&s, room.id, owner.id, "react to me too", at(2)).await;
    react(&s, other.id, owner.id, "👍", true, 50).await;
    let fans = [alice.id, bob.id, carol.id];
    let mut tasks = Vec::new();
    for (i, u) in fans.iter().copied().enumerate() {
        let messages = s.messages.clone();
        // 40, 61, 42: on either side of 👍's 50.
        let t = if i % 2 == 0 {
            40 + i as i64
        } else {
            60 + i as i64
        };
        tasks.push(tokio::spawn(async move {
            let r = messages
                .react(other.id, u, "✨", true, at(t))
                .await
                .unwrap()
                .unwrap();
            assert!(r.changed);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let emojis =
        |m: &Message| -> Vec<String> { m.reactions.iter().map(|r| r.emoji.clone()).collect() };
    let placed = emojis(&s.messages.find(other.id, owner.id).await.unwrap().unwrap());
    assert_eq!(placed.len(), 2);
    assert!(placed.contains(&"✨".to_owned()), "{placed:?}");
    let reactor_emojis = |s: Stores| async move {
        s.messages
            .reactors(other.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.emoji)
            .collect::<Vec<_>>()
    };
    assert_eq!(reactor_emojis(s.clone()).await, placed);
    // The earliest instants leave first: one place or none.
    for (i, u) in [alice.id, carol.id].into_iter().enumerate() {
        let r = react(&s, other.id, u, "✨", false, 70 + i as i64).await;
        assert_eq!(emojis(&r.message), placed, "✨ keeps its place");
        assert_eq!(reactor_emojis(s.clone()).await, placed);
    }
    let r = react(&s, other.id, bob.id, "✨", false, 72).await;
    assert_eq!(emojis(&r.message), vec!["👍".to_owned()]);
}

fn search_for(words: &[&str], room: Option<RoomId>) -> MessageSearch {
    MessageSearch {
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        room,
    }
}

/// The whole answer of a search (at most 100 hits).
async fn search_all(
    s: &Stores,
    viewer: UserId,
    words: &[&str],
    room: Option<RoomId>,
) -> Vec<SearchHit> {
    let p = s
        .messages
        .search(viewer, &search_for(words, room), &page(100, None))
        .await
        .unwrap();
    assert_eq!(p.next_cursor, None);
    p.items
}

async fn search_ids(
    s: &Stores,
    viewer: UserId,
    words: &[&str],
    room: Option<RoomId>,
) -> Vec<MessageId> {
    search_all(s, viewer, words, room)
        .await
        .iter()
        .map(|h| h.message.id)
        .collect()
}

/// Best match first (highest rank), ties newest first (highest id).
#[track_caller]
fn assert_best_first(hits: &[SearchHit]) {
    for pair in hits.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let in_order = match a.rank.total_cmp(&b.rank) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => a.message.id > b.message.id,
            std::cmp::Ordering::Less => false,
        };
        assert!(in_order, "out of order: {a:?} before {b:?}");
    }
}

/// `search`: every word must be a word of the message (whole words, any
/// case in the text); more occurrences rank higher; ties newest first;
/// each hit is the message as the viewer sees it, with its room.
pub async fn message_search_words_and_rank_order(s: Stores) {
    let me = user(&s, "sara").await;
    let other = user(&s, "tom").await;
    let room = group(&s, me.id, &[other.id]).await;
    let once = send(&s, room.id, other.id, "The quick brown fox", at(1)).await;
    let thrice = send(&s, room.id, me.id, "Quick! quick, QUICK", at(2)).await;
    let once2 = send(&s, room.id, other.id, "quick thinking", at(3)).await;
    let twice = send(&s, room.id, other.id, "quick (very quick)", at(4)).await;
    let prefixed = send(&s, room.id, other.id, "quickly, quicker", at(5)).await;
    let once3 = send(&s, room.id, me.id, "brown fox: quick", at(6)).await;
    let again = send(&s, room.id, other.id, "The quick brown fox", at(7)).await;
    react(&s, thrice.id, other.id, "👍", true, 8).await;

    let hits = search_all(&s, me.id, &["quick"], None).await;
    assert_eq!(
        hits.iter().map(|h| h.message.id).collect::<Vec<_>>(),
        vec![thrice.id, twice.id, again.id, once3.id, once2.id, once.id]
    );
    assert_best_first(&hits);
    let ranks: Vec<f64> = hits.iter().map(|h| h.rank).collect();
    assert!(ranks[0] > ranks[1] && ranks[1] > ranks[2], "{ranks:?}");
    assert!(
        ranks[2..].iter().all(|r| r.total_cmp(&ranks[2]).is_eq()),
        "one occurrence each: one rank: {ranks:?}"
    );
    assert!(ranks.iter().all(|r| *r > 0.0), "{ranks:?}");
    for hit in &hits {
        assert_eq!(
            Some(&hit.message),
            s.messages
                .find(hit.message.id, me.id)
                .await
                .unwrap()
                .as_ref(),
            "a hit is the message as the viewer sees it"
        );
        assert_eq!(
            hit.room,
            RoomSummary {
                id: room.id,
                name: room.name.clone(),
                kind: RoomKind::Private,
            }
        );
    }
    assert_eq!(hits[0].message.reactions, vec![summary("👍", 1, false)]);

    // Every word, in any order.
    for words in [["fox", "quick"], ["quick", "fox"]] {
        let hits = search_all(&s, me.id, &words, None).await;
        assert_best_first(&hits);
        let ids: Vec<MessageId> = hits.iter().map(|h| h.message.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, vec![once.id, once3.id, again.id], "{words:?}");
        let pos = |id| ids.iter().position(|i| *i == id).unwrap();
        assert!(pos(again.id) < pos(once.id), "the same text: newest first");
    }
    assert_eq!(search_ids(&s, me.id, &["quick", "cat"], None).await, vec![]);
    // Whole words: no prefixes, no stemming.
    assert_eq!(search_ids(&s, me.id, &["quic"], None).await, vec![]);
    assert_eq!(search_ids(&s, me.id, &["quicke"], None).await, vec![]);
    assert_eq!(
        search_ids(&s, me.id, &["quickly"], None).await,
        vec![prefixed.id]
    );
    assert_eq!(
        search_ids(&s, me.id, &["very"], Some(room.id)).await,
        vec![twice.id]
    );

    // An edited message is found by its new text only.
    s.messages
        .edit(once2.id, &text("slow thinking"), at(9), other.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !search_ids(&s, me.id, &["quick"], None)
            .await
            .contains(&once2.id)
    );
    let hits = search_all(&s, me.id, &["slow"], None).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message.content, "slow thinking");
}

/// `search` looks in the rooms the viewer is a member of now, or in the
/// one room asked for only if the viewer is a member of it; it never finds
/// a deleted message.
pub async fn message_search_only_my_rooms_never_deleted(s: Stores) {
    let me = user(&s, "uma").await;
    let other = user(&s, "vic").await;
    let mine = group(&s, me.id, &[other.id]).await;
    let secret = room_at(
        &s,
        RoomKind::Private,
        "secret",
        at(0),
        &[(other.id, Role::Owner)],
    )
    .await;
    let public = room_at(
        &s,
        RoomKind::Public,
        "lobby",
        at(0),
        &[(other.id, Role::Owner)],
    )
    .await;
    let left = room_at(
        &s,
        RoomKind::Public,
        "left",
        at(0),
        &[(other.id, Role::Owner), (me.id, Role::Member)],
    )
    .await;
    let dm = s
        .rooms
        .create(
            &new_direct(&me, &other),
            &[(me.id, Role::Member), (other.id, Role::Member)],
        )
        .await
        .unwrap();

    let kept = send(&s, mine.id, other.id, "the treasure map", at(1)).await;
    let in_secret = send(&s, secret.id, other.id, "the treasure map", at(2)).await;
    let in_public = send(&s, public.id, other.id, "the treasure map", at(3)).await;
    let in_left = send(&s, left.id, me.id, "the treasure map", at(4)).await;
    let in_dm = send(&s, dm.id, other.id, "treasure", at(5)).await;
    let gone = send(&s, mine.id, me.id, "treasure treasure treasure", at(6)).await;
    let dm_gone = send(&s, dm.id, me.id, "treasure treasure", at(7)).await;
    s.messages.delete(gone.id, me.id).await.unwrap().unwrap();
    s.messages
        .delete(dm_gone.id, other.id)
        .await
        .unwrap()
        .unwrap();
    s.rooms
        .apply(left.id, &[RoomOp::RemoveMember { user: me.id }])
        .await
        .unwrap();

    let hits = search_all(&s, me.id, &["treasure"], None).await;
    assert_eq!(
        hits.iter().map(|h| h.message.id).collect::<Vec<_>>(),
        vec![in_dm.id, kept.id],
        "one occurrence each: newest first"
    );
    assert_eq!(
        hits[0].room,
        RoomSummary {
            id: dm.id,
            name: dm.name.clone(),
            kind: RoomKind::Direct,
        }
    );
    assert_eq!(
        search_ids(&s, me.id, &["treasure"], Some(mine.id)).await,
        vec![kept.id]
    );
    assert_eq!(
        search_ids(&s, me.id, &["treasure"], Some(dm.id)).await,
        vec![in_dm.id]
    );
    for room in [secret.id, public.id, left.id, RoomId(uuid())] {
        assert_eq!(
            search_ids(&s, me.id, &["treasure"], Some(room)).await,
            vec![],
            "not a member of {room}"
        );
    }

    // Whoever is in every room finds everything but the deleted ones.
    let theirs = search_ids(&s, other.id, &["treasure"], None).await;
    let mut sorted = theirs.clone();
    sorted.sort();
    let mut expected = vec![kept.id, in_secret.id, in_public.id, in_left.id, in_dm.id];
    expected.sort();
    assert_eq!(sorted, expected);
    for room in [mine.id, dm.id] {
        let ids = search_ids(&s, other.id, &["treasure"], Some(room)).await;
        assert!(!ids.contains(&gone.id) && !ids.contains(&dm_gone.id));
        assert_eq!(ids.len(), 1);
    }

    // Back in the room: its messages are found again.
    s.rooms
        .apply(
            left.id,
            &[RoomOp::AddMember {
                user: me.id,
                role: Role::Member,
                at: at(8),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        search_ids(&s, me.id, &["treasure"], Some(left.id)).await,
        vec![in_left.id]
    );
    assert_eq!(search_ids(&s, me.id, &["treasure"], None).await.len(), 3);
}

/// `search` pages by rank and id: every hit once, in order, whatever the
/// page size, and a cursor holds its place while new messages arrive.
pub async fn message_search_pages(s: Stores) {
    let me = user(&s, "walt").await;
    let room = group(&s, me.id, &[]).await;
    let mut sent = Vec::new();
    for (i, n) in [1, 3, 2, 1, 3, 2, 1].into_iter().enumerate() {
        let content = vec!["kiwi"; n].join(" ");
        let m = send(&s, room.id, me.id, &content, at(i as i64 + 1)).await;
        sent.push((n, m.id));
    }
    send(&s, room.id, me.id, "no fruit here", at(10)).await;
    sent.sort_by(|a, b| b.cmp(a));
    let expected: Vec<MessageId> = sent.iter().map(|(_, id)| *id).collect();
    let words = search_for(&["kiwi"], None);
    for size in [1, 2, 3, 7, 100] {
        let got = pages(size, async |p| {
            s.messages.search(me.id, &words, &p).await.unwrap()
        })
        .await;
        let flat: Vec<SearchHit> = got.into_iter().flatten().collect();
        assert_best_first(&flat);
        assert_eq!(
            flat.iter().map(|h| h.message.id).collect::<Vec<_>>(),
            expected,
            "pages of {size}"
        );
    }

    // Three read; then a better match and a new weak one arrive. The rest
    // of the listing goes on from the third: the better match sorts before
    // it and is not seen, the weak one takes its place among its equals.
    let first = s
        .messages
        .search(me.id, &words, &page(3, None))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|h| h.message.id).collect::<Vec<_>>(),
        expected[..3]
    );
    let best = send(&s, room.id, me.id, "kiwi kiwi kiwi kiwi", at(11)).await;
    let weak = send(&s, room.id, me.id, "kiwi", at(12)).await;
    let mut rest = Vec::new();
    let mut after = first.next_cursor;
    while let Some(cursor) = after.take() {
        let p = s
            .messages
            .search(me.id, &words, &page(2, Some(cursor)))
            .await
            .unwrap();
        rest.extend(p.items.iter().map(|h| h.message.id));
        after = p.next_cursor;
    }
    // expected: [3, 3, 2 | 2, 1, 1, 1]; the weak one is the newest 1.
    let mut tail = vec![expected[3], weak.id];
    tail.extend_from_slice(&expected[4..]);
    assert_eq!(rest, tail);
    assert!(!rest.contains(&best.id));
    assert_eq!(
        search_ids(&s, me.id, &["kiwi"], None).await[0],
        best.id,
        "a new listing has it first"
    );

    let bad = page(
        10,
        Some(Cursor::new("not a key of this listing", Uuid::nil())),
    );
    assert_invalid_cursor(s.messages.search(me.id, &words, &bad).await);
}

/// `receipts`: every current member in the order they joined, with their
/// markers (zeros where none yet), paged like the member list.
pub async fn message_receipts(s: Stores) {
    let owner = user(&s, "xena").await;
    let room = group(&s, owner.id, &[]).await;
    let mut joined = vec![(at(0), owner.id)];
    let mut readers = Vec::new();
    for (i, t) in [4, 2, 7, 2, 5].into_iter().enumerate() {
        let u = user(&s, &format!("reader{i}")).await;
        s.rooms
            .apply(
                room.id,
                &[RoomOp::AddMember {
                    user: u.id,
                    role: Role::Member,
                    at: at(t),
                }],
            )
            .await
            .unwrap();
        joined.push((at(t), u.id));
        readers.push(u.id);
    }
    for i in 1..=6 {
        send(&s, room.id, owner.id, "m", at(10 + i)).await;
    }
    let m = &s.messages;
    m.mark_read(room.id, owner.id, 6).await.unwrap();
    m.mark_read(room.id, readers[0], 3).await.unwrap();
    m.mark_delivered(room.id, readers[1], 5).await.unwrap();
    m.mark_read(room.id, readers[2], 2).await.unwrap();
    m.mark_delivered(room.id, readers[2], 4).await.unwrap();
    // A member who leaves is no longer listed, markers or not.
    m.mark_read(room.id, readers[4], 6).await.unwrap();
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: readers[4] }])
        .await
        .unwrap();
    joined.retain(|(_, u)| *u != readers[4]);
    joined.sort();

    let marks = |user: UserId, read: u64, delivered: u64| Receipt {
        user_id: user,
        markers: Markers {
            last_read_seq: read,
            last_delivered_seq: delivered,
        },
    };
    let by_user = [
        marks(owner.id, 6, 6),
        marks(readers[0], 3, 3),
        marks(readers[1], 0, 5),
        marks(readers[2], 2, 4),
        marks(readers[3], 0, 0),
    ];
    let expected: Vec<Receipt> = joined
        .iter()
        .map(|(_, u)| *by_user.iter().find(|r| r.user_id == *u).unwrap())
        .collect();
    for size in [1, 2, 5, 100] {
        let got = pages(size, async |p| {
            s.messages.receipts(room.id, &p).await.unwrap()
        })
        .await;
        let flat: Vec<Receipt> = got.into_iter().flatten().collect();
        assert_eq!(flat, expected, "pages of {size}");
    }
    for r in &expected {
        assert_eq!(m.markers(room.id, r.user_id).await.unwrap(), r.markers);
    }
    let bad = page(
        10,
        Some(Cursor::new("not a key of this listing", Uuid::nil())),
    );
    assert_invalid_cursor(s.messages.receipts(room.id, &bad).await);
}

// ================================================================ attachments

fn new_attachment(uploader: UserId, filename: &str, created_at: Timestamp) -> NewAttachment {
    NewAttachment {
        id: AttachmentId(uuid()),
        uploader,
        filename: filename.to_owned(),
        content_type: "application/pdf".to_owned(),
        size: 10 * 1024 * 1024,
        created_at,
    }
}

async fn upload(s: &Stores, uploader: UserId, filename: &str) -> Attachment {
    s.attachments
        .create(&new_attachment(uploader, filename, at(1)))
        .await
        .unwrap()
}

fn with_attachment(mut m: NewMessage, attachment: &Attachment) -> NewMessage {
    m.kind = Some(MessageKind::File);
    m.attachment = Some(attachment.id);
    m
}

/// `AttachmentRepo::create` keeps every field and `find` reads it back; an
/// id is taken once; the uploader must exist.
pub async fn attachment_create_find(s: Stores) {
    let me = user(&s, "yuri").await;
    let new = new_attachment(me.id, "report.pdf", at(3));
    let a = s.attachments.create(&new).await.unwrap();
    assert_eq!(
        a,
        Attachment {
            id: new.id,
            uploader: me.id,
            filename: "report.pdf".to_owned(),
            content_type: "application/pdf".to_owned(),
            size: 10 * 1024 * 1024,
            created_at: at(3),
        }
    );
    assert_eq!(s.attachments.find(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.attachments.find(AttachmentId(uuid())).await.unwrap(),
        None
    );

    let empty = NewAttachment {
        filename: "notes – draft 2.txt".to_owned(),
        content_type: "text/plain; charset=utf-8".to_owned(),
        size: 0,
        ..new_attachment(me.id, "", at(4))
    };
    let e = s.attachments.create(&empty).await.unwrap();
    assert_eq!((e.filename.as_str(), e.size), ("notes – draft 2.txt", 0));
    assert_eq!(s.attachments.find(e.id).await.unwrap(), Some(e));

    let again = NewAttachment {
        id: new.id,
        ..new_attachment(me.id, "other.txt", at(5))
    };
    assert_conflict(s.attachments.create(&again).await, Conflict::Attachment);
    assert_eq!(s.attachments.find(a.id).await.unwrap(), Some(a));

    let orphan = new_attachment(UserId(uuid()), "who.txt", at(6));
    assert_not_found(s.attachments.create(&orphan).await);
    assert_eq!(s.attachments.find(orphan.id).await.unwrap(), None);
}

/// A message carries its whole attachment in every read, and none once
/// deleted.
pub async fn message_carries_its_attachment(s: Stores) {
    let me = user(&s, "zack").await;
    let other = user(&s, "abby").await;
    let room = group(&s, me.id, &[other.id]).await;
    let file = upload(&s, me.id, "report.pdf").await;
    let new = with_attachment(new_message(room.id, me.id, "see attached", at(2)), &file);
    let m = new_one(s.messages.append(&new).await.unwrap());
    assert_eq!(m.attachment, Some(file.clone()));
    assert_eq!(m.kind, MessageKind::File);
    let mut bare = with_attachment(new_message(room.id, me.id, "x", at(3)), &file);
    bare.content = MessageContent::parse("", true).unwrap();
    let b = new_one(s.messages.append(&bare).await.unwrap());
    assert_eq!(
        (b.content.as_str(), b.attachment.as_ref()),
        ("", Some(&file))
    );

    assert_eq!(
        s.messages.find(m.id, other.id).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        latest(&s, room.id, other.id).await.messages,
        vec![m.clone(), b.clone()]
    );
    let changes = s
        .rooms
        .changes(room.id, 0, 100, other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changes.messages, vec![m.clone(), b.clone()]);
    let mine = s
        .rooms
        .list_mine(other.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.items[0].last_message, Some(b.clone()));
    let hits = search_all(&s, other.id, &["attached"], None).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message, m);

    let tomb = s.messages.delete(m.id, me.id).await.unwrap().unwrap();
    assert_eq!(tomb.attachment, None);
    assert_eq!(
        s.messages
            .find(m.id, other.id)
            .await
            .unwrap()
            .unwrap()
            .attachment,
        None
    );
    assert_eq!(
        s.messages
            .find(b.id, other.id)
            .await
            .unwrap()
            .unwrap()
            .attachment,
        Some(file.clone()),
        "the other message keeps it"
    );
    assert_eq!(s.attachments.find(file.id).await.unwrap(), Some(file));
}

/// `readable_by`: the uploader; members of a room where a live message
/// carries it; everyone while it is someone's avatar; nobody else, and
/// nobody for an unknown attachment.
pub async fn attachment_readable_by(s: Stores) {
    let up = user(&s, "bert").await;
    let member = user(&s, "cleo").await;
    let stranger = user(&s, "dave").await;
    let leaver = user(&s, "ella").await;
    let room = group(&s, up.id, &[member.id, leaver.id]).await;
    let file = upload(&s, up.id, "plan.pdf").await;
    let can = |who: UserId| {
        let s = s.clone();
        async move { s.attachments.readable_by(file.id, who).await.unwrap() }
    };

    // Not posted yet: the uploader only.
    assert!(can(up.id).await);
    assert!(!can(member.id).await);
    assert!(!can(stranger.id).await);

    // Posted: the room's members.
    let m = new_one(
        s.messages
            .append(&with_attachment(
                new_message(room.id, up.id, "the plan", at(2)),
                &file,
            ))
            .await
            .unwrap(),
    );
    assert!(can(member.id).await);
    assert!(can(leaver.id).await);
    assert!(!can(stranger.id).await);

    // A member who leaves loses it.
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: leaver.id }])
        .await
        .unwrap();
    assert!(!can(leaver.id).await);
    assert!(can(member.id).await);

    // The message deleted: the members lose it, the uploader keeps it.
    s.messages.delete(m.id, up.id).await.unwrap().unwrap();
    assert!(!can(member.id).await);
    assert!(can(up.id).await);

    // Posted twice: one deletion leaves the other.
    let post = |sender: UserId, t: i64| {
        let s = s.clone();
        let file = file.clone();
        async move {
            new_one(
                s.messages
                    .append(&with_attachment(
                        new_message(room.id, sender, "again", at(t)),
                        &file,
                    ))
                    .await
                    .unwrap(),
            )
        }
    };
    let m1 = post(up.id, 3).await;
    let m2 = post(up.id, 4).await;
    s.messages.delete(m1.id, up.id).await.unwrap().unwrap();
    assert!(can(member.id).await);
    s.messages.delete(m2.id, member.id).await.unwrap().unwrap();
    assert!(!can(member.id).await);

    // Someone's avatar: everyone, until it is nobody's.
    let avatar = |a: Option<AttachmentId>| ProfilePatch {
        display_name: None,
        avatar: Some(a),
    };
    s.users
        .update_profile(member.id, &avatar(Some(file.id)))
        .await
        .unwrap();
    assert!(can(stranger.id).await);
    assert!(can(leaver.id).await);
    s.users
        .update_profile(up.id, &avatar(Some(file.id)))
        .await
        .unwrap();
    s.users
        .update_profile(member.id, &avatar(None))
        .await
        .unwrap();
    assert!(can(stranger.id).await, "still the uploader's avatar");
    let other_file = upload(&s, up.id, "face.png").await;
    s.users
        .update_profile(up.id, &avatar(Some(other_file.id)))
        .await
        .unwrap();
    assert!(!can(stranger.id).await);
    assert!(can(up.id).await);
    assert!(
        s.attachments
            .readable_by(other_file.id, stranger.id)
            .await
            .unwrap()
    );

    for who in [up.id, member.id, stranger.id] {
        assert!(
            !s.attachments
                .readable_by(AttachmentId(uuid()), who)
                .await
                .unwrap()
        );
    }
}

/// A send naming an attachment that does not exist, or replying to a
/// message that is not in its room, is refused and burns no seq.
pub async fn message_append_unknown_attachment_or_reply(s: Stores) {
    let me = user(&s, "finn").await;
    let room = group(&s, me.id, &[]).await;
    let elsewhere = group(&s, me.id, &[]).await;
    let first = send(&s, room.id, me.id, "first", at(1)).await;
    let over_there = send(&s, elsewhere.id, me.id, "over there", at(2)).await;

    let missing = new_attachment(me.id, "later.pdf", at(3));
    let mut with_file = new_message(room.id, me.id, "see attached", at(4));
    with_file.attachment = Some(missing.id);
    assert_refused(
        s.messages.append(&with_file).await,
        SendRefused::NoSuchAttachment,
    );
    for reply_to in [over_there.id, MessageId(uuid())] {
        let mut reply = new_message(room.id, me.id, "re", at(5));
        reply.reply_to = Some(reply_to);
        assert_refused(s.messages.append(&reply).await, SendRefused::NoSuchReply);
    }
    let now = room_now(&s, room.id).await;
    assert_eq!((now.last_seq, now.version), (1, 2), "no seq burned");
    assert_eq!(seqs(&latest(&s, room.id, me.id).await), vec![1]);

    // Once uploaded, the same send goes through.
    let file = s.attachments.create(&missing).await.unwrap();
    let m = new_one(s.messages.append(&with_file).await.unwrap());
    assert_eq!((m.seq, m.attachment), (2, Some(file)));
    let mut reply = new_message(room.id, me.id, "re", at(6));
    reply.reply_to = Some(first.id);
    assert_eq!(
        new_one(s.messages.append(&reply).await.unwrap()).reply_to_id,
        Some(first.id)
    );
}

/// The store decides a send: a blocked direct room, someone else's
/// attachment, a kind that does not fit the file and a taken id are each
/// refused with their own reason, and burn no seq. Without a kind, a file
/// decides it.
pub async fn message_append_refusals(s: Stores) {
    let a = user(&s, "ada").await;
    let b = user(&s, "bob").await;
    let dm = s
        .rooms
        .create(
            &new_direct(&a, &b),
            &[(a.id, Role::Member), (b.id, Role::Member)],
        )
        .await
        .unwrap();
    assert_eq!(send(&s, dm.id, a.id, "hi", at(1)).await.seq, 1);
    s.blocks.block(b.id, a.id, at(2)).await.unwrap();
    for sender in [a.id, b.id] {
        assert_refused(
            s.messages
                .append(&new_message(dm.id, sender, "still there?", at(3)))
                .await,
            SendRefused::Blocked,
        );
    }
    s.blocks.unblock(b.id, a.id).await.unwrap();
    assert_eq!(send(&s, dm.id, b.id, "sorry", at(4)).await.seq, 2);

    let room = group(&s, a.id, &[b.id]).await;
    let bobs = upload(&s, b.id, "bob.pdf").await;
    let mut stolen = new_message(room.id, a.id, "mine now", at(5));
    stolen.attachment = Some(bobs.id);
    assert_refused(
        s.messages.append(&stolen).await,
        SendRefused::NoSuchAttachment,
    );

    let pdf = upload(&s, a.id, "plan.pdf").await;
    let mut as_image = new_message(room.id, a.id, "look", at(6));
    as_image.attachment = Some(pdf.id);
    as_image.kind = Some(MessageKind::Image);
    assert_refused(
        s.messages.append(&as_image).await,
        SendRefused::KindMismatch {
            kind: MessageKind::Image,
            content_type: "application/pdf".to_owned(),
        },
    );
    let first = send(&s, room.id, a.id, "first", at(7)).await;
    let mut same_id = new_message(room.id, a.id, "again", at(8));
    same_id.id = first.id;
    assert_refused(s.messages.append(&same_id).await, SendRefused::IdTaken);
    let now = room_now(&s, room.id).await;
    assert_eq!((now.last_seq, now.version), (1, 2), "no seq burned");

    // No kind asked: the file decides it.
    let mut inferred = new_message(room.id, a.id, "the plan", at(9));
    inferred.attachment = Some(pdf.id);
    let m = new_one(s.messages.append(&inferred).await.unwrap());
    assert_eq!((m.seq, m.kind), (2, MessageKind::File));
    assert_eq!(
        s.messages.find(m.id, a.id).await.unwrap().map(|m| m.kind),
        Some(MessageKind::File)
    );
}

/// A replay answers with the first message even when the rest of the send
/// would now be refused (its reply or file named differently), but not to
/// someone who is no longer a member.
pub async fn message_replay_comes_before_the_body(s: Stores) {
    let a = user(&s, "cal").await;
    let b = user(&s, "dee").await;
    let room = group(&s, a.id, &[b.id]).await;
    let first = new_one(
        s.messages
            .append(&with_client_id(
                new_message(room.id, b.id, "one", at(1)),
                "k",
            ))
            .await
            .unwrap(),
    );
    let mut odd = with_client_id(new_message(room.id, b.id, "two", at(2)), "k");
    odd.reply_to = Some(MessageId(uuid()));
    assert_eq!(
        s.messages.append(&odd).await.unwrap(),
        Appended::Existing(first)
    );
    s.rooms
        .apply(room.id, &[RoomOp::RemoveMember { user: b.id }])
        .await
        .unwrap();
    assert_refused(
        s.messages
            .append(&with_client_id(
                new_message(room.id, b.id, "one", at(3)),
                "k",
            ))
            .await,
        SendRefused::NotAMember {
            room_kind: RoomKind::Private,
        },
    );
}

/// An avatar must be a stored attachment: else `NotFound`, and nothing of
/// the patch is applied.
pub async fn user_avatar_must_exist(s: Stores) {
    let gus = user(&s, "gus").await;
    let patch = ProfilePatch {
        display_name: Some(DisplayName::parse("Gus G.").unwrap()),
        avatar: Some(Some(AttachmentId(uuid()))),
    };
    assert_not_found(s.users.update_profile(gus.id, &patch).await);
    assert_eq!(s.users.find(gus.id).await.unwrap(), Some(gus.clone()));

    let pic = upload(&s, gus.id, "me.png").await;
    let patch = ProfilePatch {
        display_name: None,
        avatar: Some(Some(pic.id)),
    };
    let updated = s.users.update_profile(gus.id, &patch).await.unwrap();
    assert_eq!(updated.avatar, Some(pic.id));
    assert_eq!(
        updated,
        User {
            avatar: Some(pic.id),
            ..gus
        }
    );
    assert_eq!(s.users.find(updated.id).await.unwrap(), Some(updated));
}

#[cfg(test)]
mod tests {
    /// Every contract in this file is run by [`contract_tests!`]: a contract
    /// missing from the macro would silently never run.
    #[test]
    fn the_macro_runs_every_contract() {
        let source = include_str!("contract.rs");
        let (head, _) = source
            .split_once(
                "// ================================================================ helpers",
            )
            .unwrap();
        let listed: Vec<&str> = head
            .split_once("@each $make;")
            .unwrap()
            .1
            .split_once(");")
            .unwrap()
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let defined: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|l| l.split_once('(').map(|(name, _)| name))
            .collect();
        assert_eq!(listed, defined);
    }
}
