//! The use cases on the in-memory store, with fake hashing and a real JWT
//! issuer: the rules as a client of `chat-app` meets them, concurrency
//! included.
#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step should fail the test loudly"
)]

use std::sync::Arc;

use chat_app::{App, AppError, CreateRoom, Deps, NewAccount, Rooms, SendMessage, Taken};
use chat_domain::rules::Denied;
use chat_domain::{
    ClientMsgId, DisplayName, Email, GlobalRole, HistoryQuery, Login, MessageContent, MessageKind,
    PageLimit, Password, Role, RoomDescription, RoomName, UserId, Username,
};
use chat_ports::fakes::{ManualClock, PlainHasher, RecordingBus};
use chat_ports::{Event, PageRequest, SystemClock, V7Ids};
use chat_store_memory::MemoryStore;

struct TestApp {
    app: App,
    bus: Arc<RecordingBus>,
}

impl TestApp {
    fn in_memory() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    fn with_clock(clock: Arc<dyn chat_ports::Clock>) -> Self {
        let bus = Arc::new(RecordingBus::default());
        let app = App::new(Deps {
            stores: MemoryStore::new_stores(),
            blobs: Arc::new(chat_store_memory::MemoryBlobs::new()),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(chat_auth_stub::tokens()),
            clock,
            ids: Arc::new(V7Ids),
            events: bus.clone(),
            presence: std::sync::Arc::new(chat_ports::OneNode),
            admins: vec!["Root".into()],
        });
        Self { app, bus }
    }

    async fn user(&self, name: &str) -> UserId {
        self.app
            .accounts
            .register(NewAccount {
                username: Username::parse(name).unwrap(),
                email: Email::parse(&format!("{name}@example.com")).unwrap(),
                password: Password::parse("password123").unwrap(),
                display_name: None,
            })
            .await
            .unwrap()
            .user
            .id
    }

    async fn room(&self, owner: UserId, private: bool) -> chat_domain::RoomId {
        self.app
            .rooms
            .create(
                owner,
                CreateRoom {
                    name: RoomName::parse("general").unwrap(),
                    description: RoomDescription::default(),
                    private,
                    member_ids: vec![],
                },
            )
            .await
            .unwrap()
            .id
    }

    async fn send(
        &self,
        by: UserId,
        room: chat_domain::RoomId,
        text: &str,
    ) -> Result<chat_app::Sent, AppError> {
        self.app.messages.send(by, room, draft(text, None)).await
    }

    async fn version(&self, by: UserId, room: chat_domain::RoomId) -> u64 {
        self.app.rooms.get(by, room).await.unwrap().version
    }
}

fn draft(text: &str, key: Option<&str>) -> SendMessage {
    SendMessage {
        kind: None,
        content: MessageContent::parse(text, false).unwrap(),
        attachment: None,
        reply_to: None,
        client_msg_id: key.map(|k| ClientMsgId::parse(k).unwrap()),
    }
}

/// The JWT adapter is an adapter: the app's tests use a tiny in-file issuer
/// with the same observable behaviour (signed, typed, expiring tokens).
mod chat_auth_stub {
    use chat_domain::{SessionId, Timestamp, UserId};
    use chat_ports::auth::CryptoError;
    use chat_ports::{AccessClaims, IssuedToken, RefreshClaims, TokenError, TokenIssuer};
    use uuid::Uuid;

    pub struct Tokens;

    pub fn tokens() -> Tokens {
        Tokens
    }

    fn parse(token: &str, kind: &str) -> Result<(Uuid, u128, i64), TokenError> {
        let parts: Vec<&str> = token.split(':').collect();
        match parts.as_slice() {
            [k, a, b, exp] if *k == kind => Ok((
                a.parse().map_err(|_| TokenError::Invalid)?,
                b.parse().map_err(|_| TokenError::Invalid)?,
                exp.parse().map_err(|_| TokenError::Invalid)?,
            )),
            _ => Err(TokenError::Invalid),
        }
    }

    fn at(micros: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_micros(micros).unwrap()
    }

    impl TokenIssuer for Tokens {
        fn access_ttl(&self) -> chrono::Duration {
            chrono::Duration::minutes(15)
        }
        fn refresh_ttl(&self) -> chrono::Duration {
            chrono::Duration::days(30)
        }
        fn issue_access(&self, c: &AccessClaims) -> Result<IssuedToken, CryptoError> {
            let token = format!(
                "access:{}:{}:{}",
                c.user_id,
                c.session_id.0.as_u128(),
                c.expires_at.timestamp_micros()
            );
            Ok(IssuedToken {
                token,
                expires_at: c.expires_at,
            })
        }
        fn verify_access(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenError> {
            let (user, sid, exp) = parse(token, "access")?;
            if now.timestamp_micros() >= exp {
                return Err(TokenError::Expired);
            }
            Ok(AccessClaims {
                user_id: UserId(user),
                session_id: SessionId(Uuid::from_u128(sid)),
                expires_at: at(exp),
            })
        }
        fn issue_refresh(&self, c: &RefreshClaims) -> Result<IssuedToken, CryptoError> {
            let token = format!(
                "refresh:{}:{}:{}",
                c.session_id,
                c.generation,
                c.expires_at.timestamp_micros()
            );
            Ok(IssuedToken {
                token,
                expires_at: c.expires_at,
            })
        }
        fn verify_refresh(&self, token: &str, now: Timestamp) -> Result<RefreshClaims, TokenError> {
            let (sid, generation, exp) = parse(token, "refresh")?;
            if now.timestamp_micros() >= exp {
                return Err(TokenError::Expired);
            }
            Ok(RefreshClaims {
                session_id: SessionId(sid),
                generation: u64::try_from(generation).map_err(|_| TokenError::Invalid)?,
                expires_at: at(exp),
            })
        }
    }
}

// ------------------------------------------------------------ accounts

#[tokio::test]
async fn register_then_login_by_username_or_email() {
    let t = TestApp::in_memory();
    let id = t.user("alice").await;
    let pw = Password::parse("password123").unwrap();
    let by_name = t
        .app
        .accounts
        .login(&Login::Username("ALICE".into()), &pw)
        .await
        .unwrap();
    let by_mail = t
        .app
        .accounts
        .login(&Login::Email("Alice@Example.com".into()), &pw)
        .await
        .unwrap();
    assert_eq!(by_name.profile.user.id, id);
    assert_eq!(by_mail.profile.user.id, id);
    assert_ne!(by_name.session_id, by_mail.session_id);
}

#[tokio::test]
async fn wrong_name_and_wrong_password_look_the_same() {
    let t = TestApp::in_memory();
    t.user("alice").await;
    let wrong_pw = t
        .app
        .accounts
        .login(
            &Login::Username("alice".into()),
            &Password::presented("nope-nope"),
        )
        .await;
    let wrong_name = t
        .app
        .accounts
        .login(
            &Login::Username("nobody".into()),
            &Password::presented("password123"),
        )
        .await;
    assert!(matches!(wrong_pw, Err(AppError::InvalidCredentials)));
    assert!(matches!(wrong_name, Err(AppError::InvalidCredentials)));
}

#[tokio::test]
async fn duplicate_username_and_email_ignoring_case() {
    let t = TestApp::in_memory();
    t.user("alice").await;
    let again = |u: &str, e: &str| NewAccount {
        username: Username::parse(u).unwrap(),
        email: Email::parse(e).unwrap(),
        password: Password::parse("password123").unwrap(),
        display_name: Some(DisplayName::parse("A").unwrap()),
    };
    let e = t
        .app
        .accounts
        .register(again("ALICE", "x@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Taken(Taken::Username)));
    let e = t
        .app
        .accounts
        .register(again("alice2", "ALICE@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Taken(Taken::Email)));
}

#[tokio::test]
async fn logout_revokes_the_access_token_at_once() {
    let t = TestApp::in_memory();
    t.user("alice").await;
    let pw = Password::parse("password123").unwrap();
    let tokens = t
        .app
        .accounts
        .login(&Login::Username("alice".into()), &pw)
        .await
        .unwrap();
    let ctx = t
        .app
        .accounts
        .authenticate(&tokens.access.token)
        .await
        .unwrap();
    t.app.accounts.logout(ctx).await.unwrap();
    assert!(matches!(
        t.app.accounts.authenticate(&tokens.access.token).await,
        Err(AppError::Unauthorized)
    ));
    assert!(matches!(
        t.app.accounts.refresh(&tokens.refresh.token).await,
        Err(AppError::Unauthorized)
    ));
    assert!(
        t.bus
            .events()
            .iter()
            .any(|e| matches!(e, Event::SessionEnded { .. }))
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let t = TestApp::in_memory();
    t.user("alice").await;
    let pw = Password::parse("password123").unwrap();
    let first = t
        .app
        .accounts
        .login(&Login::Username("alice".into()), &pw)
        .await
        .unwrap();
    let second = t.app.accounts.refresh(&first.refresh.token).await.unwrap();
    assert_ne!(first.refresh.token, second.refresh.token);
    // The replaced access token stays good until it expires.
    assert!(
        t.app
            .accounts
            .authenticate(&first.access.token)
            .await
            .is_ok()
    );
    // Reusing the first refresh token revokes the whole session.
    assert!(matches!(
        t.app.accounts.refresh(&first.refresh.token).await,
        Err(AppError::Unauthorized)
    ));
    assert!(
        t.app
            .accounts
            .authenticate(&second.access.token)
            .await
            .is_err()
    );
    assert!(t.app.accounts.refresh(&second.refresh.token).await.is_err());
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let clock = Arc::new(ManualClock::default());
    let t = TestApp::with_clock(clock.clone());
    t.user("alice").await;
    let pw = Password::parse("password123").unwrap();
    let tokens = t
        .app
        .accounts
        .login(&Login::Username("alice".into()), &pw)
        .await
        .unwrap();
    assert!(
        t.app
            .accounts
            .authenticate(&tokens.access.token)
            .await
            .is_ok()
    );
    clock.advance(chrono::Duration::minutes(16));
    assert!(
        t.app
            .accounts
            .authenticate(&tokens.access.token)
            .await
            .is_err()
    );
    // The refresh token still works, and gives a fresh access token.
    let renewed = t.app.accounts.refresh(&tokens.refresh.token).await.unwrap();
    assert!(
        t.app
            .accounts
            .authenticate(&renewed.access.token)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn configured_admins_are_admins_whenever_they_register() {
    let t = TestApp::in_memory();
    let root = t.user("root").await;
    let alice = t.user("alice").await;
    assert_eq!(t.app.users.me(root).await.unwrap().role, GlobalRole::Admin);
    assert_eq!(t.app.users.me(alice).await.unwrap().role, GlobalRole::User);
}

// ------------------------------------------------------------ messages

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_senders_get_seqs_one_to_fifty() {
    let t = Arc::new(TestApp::in_memory());
    let owner = t.user("owner").await;
    let room = t.room(owner, false).await;
    let mut senders = Vec::new();
    for i in 0..50 {
        let u = t.user(&format!("user{i}")).await;
        t.app.rooms.join(u, room).await.unwrap();
        senders.push(u);
    }
    let before = t.version(owner, room).await;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|u| {
            let t = t.clone();
            tokio::spawn(async move { t.send(u, room, "hi").await.unwrap().message.seq })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let r = t.app.rooms.get(owner, room).await.unwrap();
    assert_eq!(r.last_seq, 50);
    assert_eq!(r.version, before + 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_client_msg_id_ten_times_at_once_stores_one_message() {
    let t = Arc::new(TestApp::in_memory());
    let alice = t.user("alice").await;
    let room = t.room(alice, false).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move {
                t.app
                    .messages
                    .send(alice, room, draft("once", Some("key-1")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(task.await.unwrap());
    }
    assert_eq!(sent.iter().filter(|s| s.created).count(), 1);
    assert!(sent.iter().all(|s| s.message.id == sent[0].message.id));
    let h = t
        .app
        .messages
        .history(alice, room, HistoryQuery::Latest(PageLimit::DEFAULT))
        .await
        .unwrap();
    assert_eq!(h.messages.len(), 1);
    let new_events = t
        .bus
        .events()
        .iter()
        .filter(|e| matches!(e, Event::MessageNew { .. }))
        .count();
    assert_eq!(new_events, 1, "a replay publishes nothing");
}

#[tokio::test]
async fn non_members_cannot_post() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let public = t.room(alice, false).await;
    let private = t.room(alice, true).await;
    assert!(matches!(
        t.send(bob, public, "hi").await,
        Err(AppError::Denied(Denied::NotAMember))
    ));
    assert!(matches!(
        t.send(bob, private, "hi").await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test]
async fn a_reply_must_stay_in_its_room() {
    let t = TestApp::in_memory();
    let alice = t.user("alice").await;
    let a = t.room(alice, false).await;
    let b = t.room(alice, false).await;
    let first = t.send(alice, a, "first").await.unwrap().message;
    let mut reply = draft("re", None);
    reply.reply_to = Some(first.id);
    assert!(t.app.messages.send(alice, a, reply.clone()).await.is_ok());
    let e = t.app.messages.send(alice, b, reply).await.unwrap_err();
    assert!(matches!(
        e,
        AppError::Invalid {
            field: "reply_to_id",
            ..
        }
    ));
}

#[tokio::test]
async fn read_marker_moves_forward_only_and_not_past_the_end() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let room = t.room(alice, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    for i in 0..3 {
        t.send(alice, room, &format!("m{i}")).await.unwrap();
    }
    let unread = |t: &TestApp| {
        let app = t.app.clone();
        async move {
            app.rooms
                .mine(bob, &PageRequest::default())
                .await
                .unwrap()
                .items[0]
                .unread_count
        }
    };
    assert_eq!(unread(&t).await, 3);
    t.app.messages.mark_read(bob, room, 2).await.unwrap();
    assert_eq!(unread(&t).await, 1);
    t.app.messages.mark_read(bob, room, 1).await.unwrap();
    assert_eq!(unread(&t).await, 1, "moving back is ignored");
    let e = t.app.messages.mark_read(bob, room, 4).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid { field: "seq", .. }));
    let reads = t
        .bus
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Read { .. }))
        .count();
    assert_eq!(reads, 1, "only a marker that moved is announced");
}

// ------------------------------------------------------------ rooms

#[tokio::test]
async fn owner_leaving_hands_over_and_counts_two_versions() {
    let t = TestApp::in_memory();
    let (owner, early, admin) = (
        t.user("owner").await,
        t.user("early").await,
        t.user("admin").await,
    );
    let room = t.room(owner, false).await;
    t.app.rooms.join(early, room).await.unwrap();
    t.app.rooms.join(admin, room).await.unwrap();
    t.app
        .rooms
        .set_role(owner, room, admin, Role::Admin)
        .await
        .unwrap();
    let before = t.version(owner, room).await;
    t.app.rooms.leave(owner, room).await.unwrap();
    assert_eq!(t.version(early, room).await, before + 2);
    let members = t
        .app
        .rooms
        .members(early, room, &PageRequest::default())
        .await
        .unwrap();
    let role_of = |u: UserId| {
        members
            .items
            .iter()
            .find(|m| m.user.id == u)
            .map(|m| m.membership.role)
    };
    assert_eq!(
        role_of(admin),
        Some(Role::Owner),
        "the admin, though it joined later"
    );
    assert_eq!(role_of(early), Some(Role::Member));
    assert_eq!(role_of(owner), None);
}

#[tokio::test]
async fn the_last_member_out_deletes_the_room() {
    let t = TestApp::in_memory();
    let alice = t.user("alice").await;
    let room = t.room(alice, false).await;
    t.app.rooms.leave(alice, room).await.unwrap();
    assert!(matches!(
        t.app.rooms.get(alice, room).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
    assert!(
        t.bus
            .events()
            .iter()
            .any(|e| matches!(e, Event::RoomDeleted { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_last_members_leaving_at_once_leave_no_empty_room() {
    for _ in 0..20 {
        let t = Arc::new(TestApp::in_memory());
        let (a, b) = (t.user("alice").await, t.user("bob").await);
        let room = t.room(a, false).await;
        t.app.rooms.join(b, room).await.unwrap();
        let (ta, tb) = (t.clone(), t.clone());
        let la = tokio::spawn(async move { ta.app.rooms.leave(a, room).await });
        let lb = tokio::spawn(async move { tb.app.rooms.leave(b, room).await });
        la.await.unwrap().unwrap();
        lb.await.unwrap().unwrap();
        assert!(t.app.rooms.get(a, room).await.is_err(), "the room is gone");
    }
}

#[tokio::test]
async fn kick_writes_a_system_message_and_counts_two() {
    let t = TestApp::in_memory();
    let (owner, bob) = (t.user("owner").await, t.user("bob").await);
    let room = t.room(owner, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    let before = t.version(owner, room).await;
    t.app.rooms.kick(owner, room, bob).await.unwrap();
    assert_eq!(t.version(owner, room).await, before + 2);
    let h = t
        .app
        .messages
        .history(owner, room, HistoryQuery::Latest(PageLimit::DEFAULT))
        .await
        .unwrap();
    let last = h.messages.last().unwrap();
    assert_eq!(last.kind, MessageKind::System);
    assert_eq!(last.sender.id, owner);
    assert!(last.content.contains("bob"));
    // Nobody kicks the owner, and a non-member is not found.
    assert!(matches!(
        t.app.rooms.kick(owner, room, owner).await,
        Err(AppError::Denied(Denied::Forbidden))
    ));
    assert!(matches!(
        t.app.rooms.kick(owner, room, bob).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test]
async fn ban_keeps_out_until_unbanned() {
    let t = TestApp::in_memory();
    let (owner, bob) = (t.user("owner").await, t.user("bob").await);
    let room = t.room(owner, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    let v0 = t.version(owner, room).await;
    t.app.rooms.ban(owner, room, bob).await.unwrap();
    assert_eq!(
        t.version(owner, room).await,
        v0 + 2,
        "member:left + system message"
    );
    assert!(matches!(
        t.app.rooms.join(bob, room).await,
        Err(AppError::Denied(Denied::Banned))
    ));
    t.app.rooms.ban(owner, room, bob).await.unwrap();
    assert_eq!(
        t.version(owner, room).await,
        v0 + 2,
        "banning twice changes nothing"
    );
    t.app.rooms.unban(owner, room, bob).await.unwrap();
    assert_eq!(
        t.version(owner, room).await,
        v0 + 3,
        "unban: its system message only"
    );
    t.app.rooms.join(bob, room).await.unwrap();
    assert!(matches!(
        t.app.rooms.unban(owner, room, bob).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_and_sends_racing_all_succeed() {
    // Membership changes retry on a stale snapshot; busy rooms must not make them fail.
    let t = Arc::new(TestApp::in_memory());
    let owner = t.user("owner").await;
    let room = t.room(owner, false).await;
    let mut joiners = Vec::new();
    for i in 0..20 {
        joiners.push(t.user(&format!("joiner{i}")).await);
    }
    let chatter = {
        let t = t.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                t.send(owner, room, &format!("m{i}")).await.unwrap();
            }
        })
    };
    let joins: Vec<_> = joiners
        .iter()
        .map(|u| {
            let (t, u) = (t.clone(), *u);
            tokio::spawn(async move { t.app.rooms.join(u, room).await })
        })
        .collect();
    for j in joins {
        j.await.unwrap().unwrap();
    }
    chatter.await.unwrap();
    let r = t.app.rooms.get(owner, room).await.unwrap();
    assert_eq!(r.member_count, 21);
    assert_eq!(r.version, 1 + 200 + 20);
}

#[tokio::test]
async fn direct_rooms_are_one_per_pair_and_respect_blocks() {
    let t = TestApp::in_memory();
    let (a, b) = (t.user("alice").await, t.user("bob").await);
    let first = t.app.rooms.open_direct(a, b).await.unwrap();
    assert!(first.created);
    let again = t.app.rooms.open_direct(b, a).await.unwrap();
    assert!(!again.created);
    assert_eq!(first.room.id, again.room.id);
    let me = t.app.rooms.open_direct(a, a).await.unwrap();
    assert_eq!(me.room.member_count, 1);
    t.app.users.block(b, a).await.unwrap();
    assert!(matches!(
        t.send(a, first.room.id, "hi").await,
        Err(AppError::Denied(Denied::Blocked))
    ));
    assert!(matches!(
        t.app.rooms.open_direct(a, b).await,
        Err(AppError::Denied(Denied::Blocked))
    ));
    t.app.users.unblock(b, a).await.unwrap();
    assert!(t.send(a, first.room.id, "hi").await.is_ok());
}

#[tokio::test]
async fn a_direct_room_leaver_is_added_back() {
    let t = TestApp::in_memory();
    let (a, b) = (t.user("alice").await, t.user("bob").await);
    let dm = t.app.rooms.open_direct(a, b).await.unwrap().room;
    t.app.rooms.leave(b, dm.id).await.unwrap();
    let back = t.app.rooms.open_direct(a, b).await.unwrap();
    assert!(!back.created);
    assert_eq!(back.room.member_count, 2);
    t.app.rooms.leave(a, dm.id).await.unwrap();
    t.app.rooms.leave(b, dm.id).await.unwrap();
    let fresh = t.app.rooms.open_direct(b, a).await.unwrap();
    assert!(
        fresh.created,
        "after both left the room is gone and a new one is made"
    );
    assert_ne!(fresh.room.id, dm.id);
}

#[tokio::test]
async fn global_admins_delete_but_do_not_read() {
    let t = TestApp::in_memory();
    let (root, alice) = (t.user("root").await, t.user("alice").await);
    let room = t.room(alice, true).await;
    assert!(matches!(
        t.app.rooms.get(root, room).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
    t.app.rooms.delete(root, room).await.unwrap();
    assert!(t.app.rooms.get(alice, room).await.is_err());
}

// ------------------------------------------------------------ resume

#[tokio::test]
async fn changes_bring_a_stale_copy_up_to_date() {
    let t = TestApp::in_memory();
    let (owner, bob, carol, dave) = (
        t.user("owner").await,
        t.user("bob").await,
        t.user("carol").await,
        t.user("dave").await,
    );
    let room = t.room(owner, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    t.app.rooms.join(carol, room).await.unwrap();
    t.send(bob, room, "before").await.unwrap();
    let since = t.version(owner, room).await;

    t.send(bob, room, "one").await.unwrap();
    t.app.rooms.kick(owner, room, carol).await.unwrap();
    t.app.rooms.join(dave, room).await.unwrap();
    t.app
        .rooms
        .set_role(owner, room, bob, Role::Admin)
        .await
        .unwrap();
    t.send(dave, room, "two").await.unwrap();

    let c = t
        .app
        .rooms
        .changes(bob, room, since, Rooms::DEFAULT_CHANGES)
        .await
        .unwrap();
    let now = t.app.rooms.get(bob, room).await.unwrap();
    assert_eq!(c.room, now);
    assert_eq!((c.version, c.has_more), (now.version, false));
    let texts: Vec<&str> = c.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts.len(), 4, "two messages and two system messages");
    assert_eq!((texts[0], texts[3]), ("one", "two"));
    let members: Vec<(UserId, Role)> = c
        .members
        .iter()
        .map(|m| (m.user.id, m.membership.role))
        .collect();
    assert_eq!(members, vec![(bob, Role::Admin), (dave, Role::Member)]);
    assert_eq!(c.left_member_ids, vec![carol]);

    // Small pages reach the same place.
    let mut from = since;
    let mut seen = Vec::new();
    loop {
        let page = t.app.rooms.changes(bob, room, from, 1).await.unwrap();
        seen.extend(page.messages.iter().map(|m| m.seq));
        from = page.version;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(from, now.version);
    assert_eq!(seen, c.messages.iter().map(|m| m.seq).collect::<Vec<_>>());
}

/// What a node's bus lost, read back from the store as events: a message
/// new to the node's listeners as `message:new`, one they had as its edit
/// (with who reacted, for each recipient's `me`) or deletion; versions that
/// are not messages (the role change itself; its system line is one), and
/// messages changed again after the gap, left out.
#[tokio::test]
async fn missed_events_tell_a_gaps_messages_again() {
    let t = TestApp::in_memory();
    let (owner, bob) = (t.user("owner").await, t.user("bob").await);
    let room = t.room(owner, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    let seen = t.send(bob, room, "seen").await.unwrap().message;
    let gone = t.send(bob, room, "gone").await.unwrap().message;
    let since = t.version(owner, room).await;

    t.app
        .messages
        .edit(bob, seen.id, "seen, edited")
        .await
        .unwrap();
    t.app
        .messages
        .react(owner, seen.id, "👍", true)
        .await
        .unwrap();
    t.app.messages.delete(bob, gone.id).await.unwrap();
    let fresh = t.send(owner, room, "fresh").await.unwrap().message;
    t.app
        .rooms
        .set_role(owner, room, bob, Role::Admin)
        .await
        .unwrap();
    let upto = t.version(owner, room).await;
    let later = t.send(owner, room, "later").await.unwrap().message;
    t.app
        .messages
        .edit(owner, later.id, "later, edited")
        .await
        .unwrap();

    let events = t
        .app
        .rooms
        .missed_events(room, since, upto, gone.seq)
        .await
        .unwrap();
    let versions: Vec<u64> = events.iter().filter_map(Event::version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(versions.iter().all(|v| (since + 1..=upto).contains(v)));
    match &events[..] {
        [
            Event::MessageUpdated { message, reactors },
            Event::MessageDeleted { id, .. },
            Event::MessageNew { message: new },
            Event::MessageNew { message: system },
        ] => {
            assert_eq!(system.kind, MessageKind::System, "the role change's line");
            assert_eq!(message.content.as_str(), "seen, edited");
            assert_eq!(reactors.len(), 1);
            assert_eq!(reactors[0].user_ids, vec![owner]);
            assert_eq!(*id, gone.id);
            assert_eq!(new.id, fresh.id);
        }
        other => panic!("{other:?}"),
    }
    // Nothing missed, nothing told.
    let none = t.app.rooms.missed_events(room, upto, upto, later.seq).await;
    assert!(none.unwrap().is_empty());
}

#[tokio::test]
async fn changes_are_for_members_with_a_version_they_could_have() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let public = t.room(alice, false).await;
    let private = t.room(alice, true).await;
    let version = t.version(alice, public).await;
    assert!(matches!(
        t.app.rooms.changes(bob, public, 0, 100).await,
        Err(AppError::Denied(Denied::NotAMember))
    ));
    assert!(matches!(
        t.app.rooms.changes(bob, private, 0, 100).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
    assert!(matches!(
        t.app.rooms.changes(alice, public, version + 1, 100).await,
        Err(AppError::Invalid { field: "since", .. })
    ));
    for limit in [0, Rooms::MAX_CHANGES + 1] {
        assert!(matches!(
            t.app.rooms.changes(alice, public, 0, limit).await,
            Err(AppError::Invalid { field: "limit", .. })
        ));
    }
    let c = t
        .app
        .rooms
        .changes(alice, public, version, Rooms::MAX_CHANGES)
        .await
        .unwrap();
    assert!(c.messages.is_empty() && c.members.is_empty() && c.left_member_ids.is_empty());
    assert_eq!(c.version, version);
    t.app.rooms.delete(alice, public).await.unwrap();
    assert!(matches!(
        t.app.rooms.changes(alice, public, 0, 100).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test]
async fn delivered_moves_forward_quietly_and_not_past_the_end() {
    let t = TestApp::in_memory();
    let (alice, bob, eve) = (
        t.user("alice").await,
        t.user("bob").await,
        t.user("eve").await,
    );
    let room = t.room(alice, true).await;
    t.app.rooms.add_member(alice, room, bob).await.unwrap();
    for i in 0..3 {
        t.send(alice, room, &format!("m{i}")).await.unwrap();
    }
    let version = t.version(alice, room).await;
    let events = t.bus.events().len();
    t.app.messages.mark_delivered(bob, room, 2).await.unwrap();
    t.app.messages.mark_delivered(bob, room, 1).await.unwrap();
    t.app.messages.mark_delivered(bob, room, 0).await.unwrap();
    t.app.messages.mark_read(bob, room, 1).await.unwrap();
    assert!(matches!(
        t.app.messages.mark_delivered(bob, room, 4).await,
        Err(AppError::Invalid { field: "seq", .. })
    ));
    assert!(matches!(
        t.app.messages.mark_delivered(eve, room, 1).await,
        Err(AppError::Denied(Denied::NotFound))
    ));
    t.app.messages.mark_delivered(bob, room, 3).await.unwrap();
    assert_eq!(t.version(alice, room).await, version, "not counted");
    let announced: Vec<_> = t.bus.events()[events..].to_vec();
    assert!(
        announced.iter().all(|e| matches!(e, Event::Read { .. })),
        "delivery announces nothing: {announced:?}"
    );
}

#[tokio::test]
async fn room_ids_and_last_seen() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let a = t.room(alice, false).await;
    let b = t.room(bob, false).await;
    t.app.rooms.join(alice, b).await.unwrap();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(t.app.rooms.room_ids_of(alice).await.unwrap(), want);
    t.app.rooms.leave(alice, b).await.unwrap();
    assert_eq!(t.app.rooms.room_ids_of(alice).await.unwrap(), vec![a]);

    assert_eq!(t.app.users.get(alice).await.unwrap().last_seen_at, None);
    let at = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    t.app.users.set_last_seen(alice, at).await.unwrap();
    assert_eq!(t.app.users.get(alice).await.unwrap().last_seen_at, Some(at));
    assert!(matches!(
        t.app
            .users
            .set_last_seen(UserId(uuid::Uuid::now_v7()), at)
            .await,
        Err(AppError::NotFound)
    ));
}

// ------------------------------------------------------------ rich messaging

#[tokio::test]
async fn edits_announce_the_message_with_who_reacted() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let room = t.room(alice, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    let m = t.send(alice, room, "first").await.unwrap().message;
    t.app.messages.react(bob, m.id, "👍", true).await.unwrap();
    t.bus.clear();

    // Only the sender edits; the others' attempt changes nothing.
    let refused = t.app.messages.edit(bob, m.id, "hijacked").await;
    assert!(matches!(refused, Err(AppError::Denied(Denied::Forbidden))));
    assert!(t.bus.events().is_empty());

    let edited = t.app.messages.edit(alice, m.id, "  second ").await.unwrap();
    assert_eq!(edited.content, "second");
    assert!(edited.edited_at.is_some());
    match t.bus.events().as_slice() {
        [Event::MessageUpdated { message, reactors }] => {
            assert_eq!(message.id, m.id);
            assert_eq!(message.version, t.version(alice, room).await);
            assert_eq!(reactors.len(), 1);
            assert_eq!(reactors[0].emoji, "👍");
            assert_eq!(reactors[0].user_ids, vec![bob]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn deletes_by_sender_room_admin_or_global_admin_only() {
    let t = TestApp::in_memory();
    let (owner, bob, carol, root) = (
        t.user("owner").await,
        t.user("bob").await,
        t.user("carol").await,
        t.user("root").await,
    );
    let room = t.room(owner, true).await;
    for u in [bob, carol] {
        t.app.rooms.add_member(owner, room, u).await.unwrap();
    }
    let by_bob = t.send(bob, room, "bob's").await.unwrap().message;
    // Carol is a plain member: not hers to delete.
    assert!(matches!(
        t.app.messages.delete(carol, by_bob.id).await,
        Err(AppError::Denied(Denied::Forbidden))
    ));
    // The owner may.
    t.bus.clear();
    t.app.messages.delete(owner, by_bob.id).await.unwrap();
    assert!(matches!(
        t.bus.events().as_slice(),
        [Event::MessageDeleted { seq: 1, .. }]
    ));
    // Twice is no error and no event.
    t.bus.clear();
    t.app.messages.delete(bob, by_bob.id).await.unwrap();
    assert!(t.bus.events().is_empty());
    // A global admin who is not a member may delete, but cannot read.
    let by_carol = t.send(carol, room, "carol's").await.unwrap().message;
    t.app.messages.delete(root, by_carol.id).await.unwrap();
    let h = t
        .app
        .messages
        .history(carol, room, HistoryQuery::Latest(PageLimit::DEFAULT))
        .await
        .unwrap();
    assert!(h.messages.iter().all(|m| m.deleted && m.content.is_empty()));
    assert!(matches!(
        t.app
            .messages
            .history(root, room, HistoryQuery::Latest(PageLimit::DEFAULT))
            .await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test]
async fn reactions_announce_changes_only() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let room = t.room(alice, false).await;
    let m = t.send(alice, room, "hi").await.unwrap().message;
    // Bob is not in the room yet.
    assert!(matches!(
        t.app.messages.react(bob, m.id, "👍", true).await,
        Err(AppError::Denied(Denied::NotAMember))
    ));
    assert!(matches!(
        t.app.messages.react(alice, m.id, "two words", true).await,
        Err(AppError::Invalid { field: "emoji", .. })
    ));
    t.bus.clear();
    t.app.messages.react(alice, m.id, "👍", true).await.unwrap();
    t.app.messages.react(alice, m.id, "👍", true).await.unwrap();
    t.app
        .messages
        .react(alice, m.id, "🎉", false)
        .await
        .unwrap();
    match t.bus.events().as_slice() {
        [
            Event::ReactionUpdated {
                emoji,
                added: true,
                reactions,
                ..
            },
        ] => {
            assert_eq!(emoji, "👍");
            assert_eq!(reactions, &vec![("👍".to_owned(), 1)]);
        }
        other => panic!("one event for one change: {other:?}"),
    }
}

#[tokio::test]
async fn search_needs_a_word_and_a_readable_room() {
    let t = TestApp::in_memory();
    let (alice, eve) = (t.user("alice").await, t.user("eve").await);
    let private = t.room(alice, true).await;
    t.send(alice, private, "the launch code is swordfish")
        .await
        .unwrap();
    let page = PageRequest::default();
    assert!(matches!(
        t.app.messages.search(alice, " ?! ", None, &page).await,
        Err(AppError::Invalid { field: "q", .. })
    ));
    let mine = t
        .app
        .messages
        .search(alice, "SWORDFISH", None, &page)
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 1);
    let theirs = t
        .app
        .messages
        .search(eve, "swordfish", None, &page)
        .await
        .unwrap();
    assert!(theirs.items.is_empty());
    assert!(matches!(
        t.app
            .messages
            .search(eve, "swordfish", Some(private), &page)
            .await,
        Err(AppError::Denied(Denied::NotFound))
    ));
}

#[tokio::test]
async fn uploads_are_checked_and_read_only_by_who_may() {
    let t = TestApp::in_memory();
    let (alice, bob) = (t.user("alice").await, t.user("bob").await);
    let png = b"\x89PNG\r\n\x1a\n-rest-of-image".to_vec();
    // A file that says it is a PNG must be one.
    let fake = t
        .app
        .attachments
        .upload(
            alice,
            chat_app::Upload {
                filename: Some("x.png".into()),
                content_type: Some("image/png".into()),
                bytes: b"<script>".to_vec(),
            },
        )
        .await;
    assert!(matches!(fake, Err(AppError::Invalid { field: "file", .. })));
    // No type given: the extension says.
    let a = t
        .app
        .attachments
        .upload(
            alice,
            chat_app::Upload {
                filename: Some("../cat.png".into()),
                content_type: None,
                bytes: png.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(a.content_type, "image/png");
    assert_eq!(a.filename, "cat.png");
    assert_eq!(a.size, png.len() as u64);
    let (_, bytes) = t.app.attachments.download(alice, a.id).await.unwrap();
    assert_eq!(bytes, png);
    assert!(matches!(
        t.app.attachments.download(bob, a.id).await,
        Err(AppError::NotFound)
    ));
    // Posted in a room bob is in, bob may read it; the kind comes from the type.
    let room = t.room(alice, false).await;
    t.app.rooms.join(bob, room).await.unwrap();
    let sent = t
        .app
        .messages
        .send(
            alice,
            room,
            SendMessage {
                kind: None,
                content: MessageContent::parse("", true).unwrap(),
                attachment: Some(a.id),
                reply_to: None,
                client_msg_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(sent.message.kind, MessageKind::Image);
    assert_eq!(sent.message.attachment.as_ref().map(|x| x.id), Some(a.id));
    assert!(t.app.attachments.download(bob, a.id).await.is_ok());
    // Bob cannot post alice's file as his own.
    let stolen = t
        .app
        .messages
        .send(
            bob,
            room,
            SendMessage {
                kind: None,
                content: MessageContent::parse("mine", true).unwrap(),
                attachment: Some(a.id),
                reply_to: None,
                client_msg_id: None,
            },
        )
        .await;
    assert!(matches!(
        stolen,
        Err(AppError::Invalid {
            field: "attachment_id",
            ..
        })
    ));
}
