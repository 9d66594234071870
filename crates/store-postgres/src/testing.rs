//! Test databases (feature `testing`): one fresh database per test, cloned
//! from a migrated template, dropped when its guard goes. Used by this
//! crate's tests and by every other crate that runs its tests on PostgreSQL.
//!
//! The server comes from `TEST_DATABASE_URL`, else `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`. The database named in the
//! URL is only used to create and drop others. A server that cannot be
//! reached fails the test with one line saying how to get one; it never skips.
//!
//! The template is `chat_tpl_<hash of migrations/>`: built once (under an
//! advisory lock, so concurrent test binaries neither race nor duplicate the
//! work), reused by later runs while the migrations stay the same, and
//! replaced (the old one dropped) when they change. Each test's database is
//! `CREATE DATABASE chat_test_<uuid> TEMPLATE chat_tpl_<hash>`, dropped
//! `WITH (FORCE)` when its [`TestDb`] is dropped, a failed test included.
#![expect(
    clippy::expect_used,
    reason = "test support: a database that cannot be made should fail the test loudly"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::{PgConfig, PgStore, redact_url};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Held while the template is checked and built.
const TEMPLATE_LOCK: i64 = 0x6368_6174_7465_6d70; // "chattemp"

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{name}{query}")
}

/// A connection to the server's maintenance database, or `Err` with why not.
async fn try_admin() -> Result<AsyncPgConnection, String> {
    let url = server_url();
    match tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(&url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

/// A connection to the server's maintenance database; fails the test loudly
/// when there is no server.
pub async fn admin() -> AsyncPgConnection {
    match try_admin().await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL not reachable at {}: start one (`just up`, or set TEST_DATABASE_URL) ({e})",
            redact_url(&server_url())
        ),
    }
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS flag")
        .bind::<Text, _>(name)
        .get_result::<Flag>(conn)
        .await
        .expect("read pg_database")
        .flag
}

/// Closes every other session on database `name`.
async fn kick_sessions(conn: &mut AsyncPgConnection, name: &str) {
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind::<Text, _>(name)
    .execute(conn)
    .await
    .expect("terminate sessions");
}

/// FNV-1a over every file of `migrations/` (names and contents, in order):
/// a new or changed migration makes a new template.
fn migrations_hash() -> u64 {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read migrations/") {
            let path = entry.expect("read migrations/").path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for path in paths {
        let name = path.strip_prefix(&root).expect("under migrations/");
        let bytes = std::fs::read(&path).expect("read a migration");
        for b in name.to_string_lossy().bytes().chain([0]).chain(bytes) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The small pool a test store gets: tests run side by side on one server.
pub fn test_config(url: String) -> PgConfig {
    PgConfig {
        max_size: 5,
        run_migrations: false,
        ..PgConfig::new(url)
    }
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The migrated template's name, built if this is the first test to ask
/// (in this process, or on this server since the migrations last changed).
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("chat_tpl_{:016x}", migrations_hash());
            let mut admin = admin().await;
            admin
                .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
                .await
                .expect("take the template lock");
            if !database_exists(&mut admin, &name).await {
                // Built under another name and renamed when complete, so that
                // a run killed half-way never leaves a broken template.
                let building = format!("{name}_building");
                for sql in [
                    format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
                    format!("CREATE DATABASE {building}"),
                ] {
                    admin
                        .batch_execute(&sql)
                        .await
                        .expect("create the template database");
                }
                let config = PgConfig {
                    max_size: 1,
                    ..PgConfig::new(with_database(&server_url(), &building))
                };
                let store = PgStore::connect(&config)
                    .await
                    .expect("migrate the template");
                drop(store);
                kick_sessions(&mut admin, &building).await;
                admin
                    .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await
                    .expect("publish the template");
                // Templates of other migrations: whoever still needs one
                // builds it again.
                let stale: Vec<Name> = diesel::sql_query(
                    "SELECT datname AS name FROM pg_database \
                     WHERE datname LIKE 'chat\\_tpl\\_%' AND datname <> $1",
                )
                .bind::<Text, _>(&name)
                .load(&mut admin)
                .await
                .expect("list templates");
                for old in stale {
                    let _ = admin
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            old.name
                        ))
                        .await;
                }
            }
            admin
                .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
                .await
                .expect("release the template lock");
            name
        })
        .await
}

/// A database of a test's own, dropped with this guard.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// A fresh, migrated, empty database.
    pub async fn create() -> Self {
        let template = template().await;
        let db = Self::named();
        let mut admin = admin().await;
        let sql = format!("CREATE DATABASE {} TEMPLATE {template}", db.name);
        // A template may not be cloned while anyone is connected to it.
        let mut tries = 0;
        loop {
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if tries < 50 && e.to_string().contains("accessed by other users") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("create {} from {template}: {e}", db.name),
            }
        }
        db
    }

    /// A fresh database with nothing in it, not even the migrations.
    pub async fn empty() -> Self {
        let db = Self::named();
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .await
            .expect("create an empty database");
        db
    }

    fn named() -> Self {
        let name = format!("chat_test_{}", Uuid::new_v4().simple());
        let url = with_database(&server_url(), &name);
        Self { name, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store on this database, with the tests' small pool.
    pub async fn store(&self) -> Arc<PgStore> {
        Arc::new(
            PgStore::connect(&test_config(self.url.clone()))
                .await
                .expect("connect to the test database"),
        )
    }

    /// A plain connection to this database.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run on the test's runtime, which cannot wait on itself:
        // a thread with a runtime of its own drops the database.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = try_admin().await?;
                // Ending the sessions first, waiting for each (rather than
                // letting DROP ... FORCE poll for them every 100 ms), makes
                // the drop quick.
                diesel::sql_query(
                    "SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind::<Text, _>(&name)
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test database {}", self.name),
        }
    }
}

/// The group-commit writer's two lookup statements (locking the batch's
/// rooms, and the facts each send is decided on), for tests of their plans.
pub const SEND_LOOKUPS: [&str; 2] = [crate::writer::LOCK_ROOMS, crate::writer::FACTS];
