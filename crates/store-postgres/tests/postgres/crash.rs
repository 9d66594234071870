//! PostgreSQL killed under load: no acknowledged message is lost, and
//! retrying a send with its `client_msg_id` never stores it twice.
//!
//! This test runs a PostgreSQL server of its own (never the shared one, which
//! other tests use side by side): it kills it with `pg_ctl stop -m immediate`
//! (no checkpoint, crash recovery on the next start) while senders are
//! writing, keeps it down for a second and starts it again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use chat_domain::{
    ClientMsgId, DisplayName, Email, HistoryQuery, MessageContent, MessageId, PageLimit, Role,
    RoomDescription, RoomId, RoomKind, RoomName, UserId, Username,
};
use chat_ports::{AppendError, Appended, NewMessage, NewRoom, NewUser, Stores};
use chat_store_postgres::testing::test_config;
use chat_store_postgres::{PgConfig, PgStore};
use uuid::Uuid;

// ---------------------------------------------------------------- a private server

/// A PostgreSQL server of this test's own: a fresh cluster in a temporary
/// directory, on a free port of 127.0.0.1, its socket in that directory.
/// Dropping it stops the server (`immediate`) and removes the directory,
/// also when the test panics.
struct PrivatePg {
    /// The `bin/` of the newest PostgreSQL installed.
    bin: PathBuf,
    /// Owns everything: `data/`, `log` and the socket.
    dir: PathBuf,
    port: u16,
}

impl PrivatePg {
    /// Creates the cluster (`initdb`) and starts the server, waiting until it
    /// accepts connections.
    fn start() -> Self {
        let bin = postgres_bin();
        let dir = std::env::temp_dir().join(format!("chat-crash-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("create the server's directory");
        // The guard exists from here on, so that a failed step still cleans up.
        let pg = Self {
            bin,
            dir,
            port: free_port(),
        };
        if running_as_root() {
            // initdb refuses to run as root: the server runs as `postgres`.
            pg.check(
                "chown the server's directory",
                Command::new("chown").arg("postgres:").arg(&pg.dir).output(),
            );
        }
        let initdb = pg
            .as_server_user(&pg.bin.join("initdb"))
            .arg("-D")
            .arg(pg.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .output();
        pg.check("initdb", initdb);
        pg.restart();
        pg
    }

    /// `postgres://` URL of the server's `postgres` database.
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kills the server as a crash would: `pg_ctl stop -m immediate` ends
    /// every backend at once, with no checkpoint. Returns once it is down.
    fn kill(&self) {
        let out = self.pg_ctl().args(["stop", "-m", "immediate"]).output();
        self.check("pg_ctl stop -m immediate", out);
    }

    /// Starts the (stopped) server on the same port and data, waiting until
    /// it accepts connections (after crash recovery, if it was killed).
    fn restart(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let out = self
            .pg_ctl()
            .args(["start", "-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .output();
        self.check("pg_ctl start", out);
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `pg_ctl -D <data>`, run as the server's user.
    fn pg_ctl(&self) -> Command {
        let mut cmd = self.as_server_user(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.data());
        cmd
    }

    /// `program`, run as `postgres` when we are root (through `runuser`),
    /// else as ourselves; in the server's directory, which that user can read
    /// (our own working directory may not be).
    fn as_server_user(&self, program: &Path) -> Command {
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// Panics, with the command's output and the server log's tail, unless
    /// `out` is a success.
    #[track_caller]
    fn check(&self, what: &str, out: std::io::Result<Output>) {
        let out = out.unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "{what} failed ({}):\n{}{}\n--- server log (last lines) ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            );
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        // Fails harmlessly when the server is down already.
        let _ = self.pg_ctl().args(["stop", "-m", "immediate"]).output();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// The `bin/` of the newest `/usr/lib/postgresql/<version>` with an `initdb`.
fn postgres_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL binaries under {}/*/bin: install the server package",
            root.display()
        )
    })
}

/// A port of 127.0.0.1 nobody listens on (just now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

/// Whether this process runs as root.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

// ---------------------------------------------------------------- the load

const SENDERS: usize = 16;
const ROOMS: usize = 4;
/// Messages one sender sends at most.
const PER_SENDER: usize = 400;
/// How long one message is retried before the sender gives up on it.
const RETRY_FOR: Duration = Duration::from_secs(20);
/// The client-side limit on one call, should the store itself hang.
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// The pause between two tries of one message.
const BACKOFF: Duration = Duration::from_millis(100);
/// The senders stop after this, whatever happens to the server.
const LOAD_LIMIT: Duration = Duration::from_secs(30);

/// Where the server is in the test's life.
const UP: u8 = 0;
const DOWN: u8 = 1;
const RESTARTED: u8 = 2;

/// One acknowledged send.
#[derive(Debug)]
struct Ack {
    room: RoomId,
    key: String,
    /// Every message id the sender tried under this key: the ack must be
    /// one of them.
    tried: Vec<MessageId>,
    id: MessageId,
    seq: u64,
    /// Whether the store answered `Existing` (an earlier try had committed).
    existing: bool,
    /// Whether the acknowledged try began after the restart.
    after_restart: bool,
}

/// What one sender did.
#[derive(Debug, Default)]
struct Report {
    acks: Vec<Ack>,
    /// Tries that failed (not acknowledged), by the server's phase when
    /// they ended.
    failed: [u64; 3],
    /// Keys never acknowledged within [`RETRY_FOR`].
    gave_up: Vec<String>,
}

fn user(i: usize) -> NewUser {
    let name = format!("sender{i:02}");
    NewUser {
        id: UserId(Uuid::now_v7()),
        username: Username::parse(&name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        display_name: DisplayName::parse(&name).unwrap(),
        password_hash: "hash".to_owned(),
        created_at: chrono::Utc::now(),
    }
}

fn new_room(i: usize, creator: UserId) -> NewRoom {
    NewRoom {
        id: RoomId(Uuid::now_v7()),
        kind: RoomKind::Private,
        name: RoomName::parse(&format!("crash{i}")).unwrap(),
        description: RoomDescription::default(),
        created_by: creator,
        created_at: chrono::Utc::now(),
        direct_pair: None,
    }
}

/// Sends numbered messages to `room` until `stop` (or [`PER_SENDER`]),
/// retrying each with the same `client_msg_id` (and a fresh message id, as a
/// server taking the client's retry would) until it is acknowledged.
async fn sender(
    stores: Stores,
    me: usize,
    user: UserId,
    room: RoomId,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> Report {
    let began = Instant::now();
    let mut report = Report::default();
    for n in 0..PER_SENDER {
        if stop.load(Ordering::SeqCst) || began.elapsed() > LOAD_LIMIT {
            break;
        }
        // The content is the key too: history does not show client_msg_id.
        let key = format!("s{me:02}-{n:04}");
        let first_try = Instant::now();
        let mut tried = Vec::new();
        loop {
            let message = NewMessage {
                id: MessageId(Uuid::now_v7()),
                room_id: room,
                sender: user,
                kind: None,
                content: MessageContent::parse(&key, false).unwrap(),
                attachment: None,
                reply_to: None,
                client_msg_id: Some(ClientMsgId::parse(&key).unwrap()),
                created_at: chrono::Utc::now(),
            };
            tried.push(message.id);
            let started_in = phase.load(Ordering::SeqCst);
            let result = tokio::time::timeout(CALL_LIMIT, stores.messages.append(&message)).await;
            let (m, existing) = match result {
                Ok(Ok(Appended::New(m))) => (m, false),
                Ok(Ok(Appended::Existing(m))) => (m, true),
                Ok(Err(AppendError::Refused(r))) => {
                    panic!("{key} was refused ({r:?}): nothing here should be")
                }
                // The store failed, or did not answer in time: not
                // acknowledged, so try again with the same key.
                Ok(Err(AppendError::Store(_))) | Err(_) => {
                    report.failed[usize::from(phase.load(Ordering::SeqCst))] += 1;
                    if first_try.elapsed() > RETRY_FOR {
                        report.gave_up.push(key);
                        break;
                    }
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            };
            report.acks.push(Ack {
                room,
                key,
                tried,
                id: m.id,
                seq: m.seq,
                existing,
                after_restart: started_in == RESTARTED,
            });
            break;
        }
    }
    report
}

/// Every message of `room`, oldest first, paging forward through history.
/// A read that fails is tried again for a while: reading is not what this
/// test is about.
async fn whole_history(stores: &Stores, room: RoomId, viewer: UserId) -> Vec<chat_domain::Message> {
    let limit = PageLimit::new(i64::from(PageLimit::MAX)).unwrap();
    let mut all: Vec<chat_domain::Message> = Vec::new();
    loop {
        let after = all.last().map_or(0, |m| m.seq);
        let query = HistoryQuery::After(after, limit);
        let deadline = Instant::now() + RETRY_FOR;
        let page = loop {
            match stores.messages.history(room, query, viewer).await {
                Ok(page) => break page,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("history of {room:?} after {after}: {e}; trying again");
                    tokio::time::sleep(BACKOFF).await;
                }
                Err(e) => panic!("history of {room:?} after {after}: {e}"),
            }
        };
        all.extend(page.messages);
        if !page.has_more {
            return all;
        }
    }
}

/// 16 senders in 4 rooms; about a second in, PostgreSQL is killed, stays down
/// a second and comes back. Every acknowledged send is then in its room's
/// history with the seq it was acknowledged with, no key is stored twice,
/// and each room's seqs are exactly 1..=N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_message_and_retries_duplicate_none() {
    let pg = Arc::new(tokio::task::spawn_blocking(PrivatePg::start).await.unwrap());
    // Short timeouts, so that calls fail fast while the server is down.
    let config = PgConfig {
        wait_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(2),
        run_migrations: true,
        ..test_config(pg.url())
    };
    let store = PgStore::connect(&config)
        .await
        .expect("connect to the private server and migrate it");
    let stores = Arc::new(store).stores();

    // Senders 4r..4r+3 share room r; the first of them owns it.
    let mut users = Vec::new();
    for i in 0..SENDERS {
        users.push(stores.users.create(&user(i)).await.unwrap().id);
    }
    let per_room = SENDERS / ROOMS;
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let members = &users[r * per_room..(r + 1) * per_room];
        let mut roles = vec![(members[0], Role::Owner)];
        roles.extend(members[1..].iter().map(|u| (*u, Role::Member)));
        let room = stores
            .rooms
            .create(&new_room(r, members[0]), &roles)
            .await
            .unwrap();
        rooms.push((room.id, members[0]));
    }

    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            tokio::spawn(sender(
                stores.clone(),
                i,
                users[i],
                rooms[i / per_room].0,
                phase.clone(),
                stop.clone(),
            ))
        })
        .collect();

    // About a second in: kill, a second down, start again, a second more load.
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(DOWN, Ordering::SeqCst);
    let killer = pg.clone();
    tokio::task::spawn_blocking(move || killer.kill())
        .await
        .unwrap();
    let killed_at = began.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let starter = pg.clone();
    tokio::task::spawn_blocking(move || starter.restart())
        .await
        .unwrap();
    let restarted_at = began.elapsed();
    phase.store(RESTARTED, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);

    let mut reports = Vec::new();
    for s in senders {
        reports.push(s.await.expect("a sender panicked"));
    }
    let acks: Vec<&Ack> = reports.iter().flat_map(|r| &r.acks).collect();
    let failed = reports.iter().fold([0; 3], |mut sum, r| {
        for (s, f) in sum.iter_mut().zip(r.failed) {
            *s += f;
        }
        sum
    });
    let gave_up: Vec<&String> = reports.iter().flat_map(|r| &r.gave_up).collect();
    eprintln!(
        "killed at {killed_at:?}, back at {restarted_at:?}, senders done at {:?}: \
         {} sends acknowledged ({} as Existing, {} begun after the restart); \
         failed tries: {} before the kill, {} while down, {} after the restart; \
         {} given up",
        began.elapsed(),
        acks.len(),
        acks.iter().filter(|a| a.existing).count(),
        acks.iter().filter(|a| a.after_restart).count(),
        failed[usize::from(UP)],
        failed[usize::from(DOWN)],
        failed[usize::from(RESTARTED)],
        gave_up.len(),
    );

    // The test proves something only if the kill hit sends in flight and the
    // store served again afterwards.
    assert!(
        failed.iter().sum::<u64>() > 0,
        "no send failed: the kill did not take effect"
    );
    assert!(
        acks.iter().any(|a| a.after_restart),
        "no send was acknowledged after the restart"
    );
    assert!(
        gave_up.is_empty(),
        "sends never acknowledged within {RETRY_FOR:?} of the first try: {gave_up:?}"
    );

    for (room, owner) in &rooms {
        let history = whole_history(&stores, *room, *owner).await;
        let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
        let expected: Vec<u64> = (1..=history.len() as u64).collect();
        assert_eq!(seqs, expected, "the seqs of {room:?} are not 1..=N");

        let mut stored: HashMap<&str, &chat_domain::Message> = HashMap::new();
        for m in &history {
            if let Some(first) = stored.insert(m.content.as_str(), m) {
                panic!(
                    "{} is stored twice in {room:?}: seq {} and seq {}",
                    m.content, first.seq, m.seq
                );
            }
        }

        let acked: Vec<&&Ack> = acks.iter().filter(|a| a.room == *room).collect();
        for ack in &acked {
            let m = stored
                .get(ack.key.as_str())
                .unwrap_or_else(|| panic!("{} was acknowledged but is lost", ack.key));
            assert_eq!(
                (m.id, m.seq),
                (ack.id, ack.seq),
                "{} is stored otherwise than acknowledged",
                ack.key
            );
            assert!(
                ack.tried.contains(&ack.id),
                "{} was acknowledged with an id it never sent",
                ack.key
            );
        }
        // Every send was acknowledged in the end, so nothing else is stored.
        let acked_keys: HashSet<&str> = acked.iter().map(|a| a.key.as_str()).collect();
        let stored_keys: HashSet<&str> = stored.keys().copied().collect();
        assert_eq!(
            stored_keys, acked_keys,
            "{room:?} holds other messages than those acknowledged"
        );
    }
    // `pg` goes last: the server is stopped and its directory removed.
}
