//! PostgreSQL adapters for every repository port of `chat-ports`: the
//! production store. [`PgStore`] runs diesel-async (tokio-postgres, no libpq)
//! over a deadpool pool and meets exactly the contract that `chat-store-memory`
//! meets; both run the suite of `chat_ports::contract`. The schema lives in
//! the top-level `migrations/` directory, embedded here as [`MIGRATIONS`];
//! `schema.rs` is what `diesel print-schema` makes of it.
//!
//! One port call is one transaction (a single statement is its own). Writes
//! run at READ COMMITTED and lock the room row before anything else, which
//! serialises the changes of one room in commit order; reads of more than one
//! statement run at REPEATABLE READ, READ ONLY, so they see one snapshot.
//! Each call runs in its own task, so a caller that gives up (a dropped HTTP
//! request) never leaves a transaction half-done on a pooled connection.
//!
//! Errors: diesel and deadpool errors never cross the port. Inside, closures
//! fail with the crate's `TxError`; at the port every error is a
//! `chat_ports::StoreError` (`Unavailable` when the database cannot answer
//! in time, `Conflict`/`NotFound` for the rules the schema enforces).
//!
//! This crate must not know about HTTP, the use cases or any other adapter:
//! it depends on `chat-domain` and `chat-ports` only.

mod attachments;
mod blocks;
mod error;
mod markers;
mod messages;
mod page;
mod prepared;
mod rooms;
mod rows;
pub mod schema;
mod sessions;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
mod writer;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chat_ports::{StoreError, Stores};
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use crate::error::{TxError, map_pool};
use crate::markers::Marks;
use crate::writer::Writers;
pub use crate::writer::{WriterConfig, WriterStats};

/// Every migration of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Held while migrating, so that servers starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772; // "chatmigr"

type Conn = AsyncPgConnection;

/// What the closure of a port call returns: a future borrowing the connection.
pub(crate) type TxFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, TxError>> + Send + 'c>>;

/// How to reach the database and how long to wait for it.
#[derive(Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`. Never printed whole.
    pub url: String,
    /// Connections in the pool at most.
    pub max_size: usize,
    /// How long a port call waits for a free connection before it fails as
    /// `Unavailable`.
    pub wait_timeout: Duration,
    /// How long opening (and setting up) a connection may take; also the
    /// budget of [`PgStore::ping`].
    pub connect_timeout: Duration,
    /// The server-side limit on one statement (and on a transaction left
    /// idle). A whole port call is also cut off on the client side after
    /// `wait_timeout + connect_timeout + 2 × statement_timeout`, should the
    /// network itself hang.
    pub statement_timeout: Duration,
    /// What the connections call themselves in `pg_stat_activity`.
    pub application_name: String,
    /// Whether [`PgStore::connect`] runs pending migrations. Operators who
    /// migrate separately (`chat-server migrate`) turn this off.
    pub run_migrations: bool,
    /// The group-commit writers that persist sends.
    pub writer: WriterConfig,
}

impl PgConfig {
    /// The defaults, for `url`: 10 connections, 3 s to get one, 5 s to open
    /// one, 5 s per statement, migrations run on connect.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_size: 10,
            wait_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            application_name: "chat-server".to_owned(),
            run_migrations: true,
            writer: WriterConfig::default(),
        }
    }

    /// The client-side limit on a whole port call.
    fn call_deadline(&self) -> Duration {
        self.wait_timeout + self.connect_timeout + self.statement_timeout * 2
    }
}

/// The URL with its password, if any, blanked out.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redact_url(&self.url))
            .field("max_size", &self.max_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field("run_migrations", &self.run_migrations)
            .field("writer", &self.writer)
            .finish()
    }
}

/// Every repository on PostgreSQL. Share it as `Arc<PgStore>`; see
/// [`PgStore::stores`].
pub struct PgStore {
    pool: Pool<Conn>,
    config: PgConfig,
    writers: Writers,
    marks: Marks,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("config", &self.config)
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Which kind of transaction a port call runs in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// One statement, which is its own transaction.
    Single,
    /// Several reads that must see one snapshot.
    Read,
    /// Changes: all or nothing.
    Write,
}

/// Opens one connection, within `timeout`.
async fn establish(url: &str, timeout: Duration) -> Result<Conn, ConnectionError> {
    match tokio::time::timeout(timeout, Conn::establish(url)).await {
        Ok(conn) => conn,
        Err(_) => Err(ConnectionError::BadConnection(format!(
            "no connection within {timeout:?}"
        ))),
    }
}

impl PgStore {
    /// Builds the pool and, when `config.run_migrations` says so, runs the
    /// pending migrations. Without migrations no connection is opened yet:
    /// a database that is down now makes port calls fail as `Unavailable`
    /// (and [`PgStore::ping`] false) until it is back.
    pub async fn connect(config: &PgConfig) -> Result<Self, StoreError> {
        let pool = build_pool(config, config.max_size, RecyclingMethod::Verified)?;
        // The batch writers (sends, markers) have connections of their
        // own: reads never make a commit wait for a connection, nor the
        // other way round. They skip the test query on every checkout (a
        // round trip per batch): a connection that died with the server
        // fails its batch, whose calls all fail as `Unavailable` (never
        // acknowledged), and is dropped.
        let writer_pool = build_pool(
            config,
            config.writer.lanes.max(1) + 2,
            RecyclingMethod::Fast,
        )?;
        let writers = Writers::start(writer_pool.clone(), config.call_deadline(), config.writer);
        let marks = Marks::start(writer_pool, config.call_deadline());
        let store = Self {
            pool,
            config: config.clone(),
            writers,
            marks,
        };
        if config.run_migrations {
            let applied = store.migrate().await?;
            tracing::info!(applied = applied.len(), "database migrated");
        }
        Ok(store)
    }

    /// Runs every pending migration, one server at a time (under an advisory
    /// lock), and returns the versions it applied. diesel's synchronous
    /// harness runs through diesel-async's `AsyncConnectionWrapper` on
    /// tokio's blocking pool (`spawn_blocking`), while the calling runtime
    /// drives the connection; either runtime flavour will do.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        use diesel_migrations::MigrationHarness;

        // Its own connection, free of the pool's statement timeout: a
        // migration may take a while.
        let conn = establish(&self.config.url, self.config.connect_timeout)
            .await
            .map_err(StoreError::unavailable)?;
        let task = tokio::task::spawn_blocking(move || {
            let mut conn: AsyncConnectionWrapper<Conn> = AsyncConnectionWrapper::from(conn);
            diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")),
                &mut conn,
            )
            .map_err(StoreError::unavailable)?;
            let applied = conn
                .run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(StoreError::Other);
            // Closing the connection would release the lock too.
            let _ = diesel::RunQueryDsl::execute(
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")),
                &mut conn,
            );
            applied
        });
        task.await.map_err(StoreError::other)?
    }

    /// Whether the database answers `SELECT 1` within `connect_timeout`:
    /// the check behind `/ready`.
    /// The pool as it is now: `(max, open, idle, waiting)` connections
    /// (`waiting`: callers queued for one).
    pub fn pool_status(&self) -> (usize, usize, usize, usize) {
        let s = self.pool.status();
        (s.max_size, s.size, s.available, s.waiting)
    }

    pub async fn ping(&self) -> bool {
        let probe = self.query(|c| {
            Box::pin(async move {
                use diesel::IntoSql as _;
                let one = diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
                    .get_result::<i32>(c)
                    .await?;
                Ok(one == 1)
            })
        });
        matches!(
            tokio::time::timeout(self.config.connect_timeout, probe).await,
            Ok(Ok(true))
        )
    }

    /// The repository bundle, every port served by this one store.
    pub fn stores(self: Arc<Self>) -> Stores {
        Stores {
            users: self.clone(),
            sessions: self.clone(),
            blocks: self.clone(),
            rooms: self.clone(),
            messages: self.clone(),
            attachments: self,
        }
    }

    /// Runs `f` on a pooled connection in the transaction `mode` asks for;
    /// see [`run_on`].
    async fn run<T, F>(&self, mode: Mode, f: F) -> Result<T, TxError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> TxFuture<'c, T> + Send + 'static,
    {
        run_on(&self.pool, self.config.call_deadline(), mode, f).await
    }

    /// What the group-commit writers have done so far.
    pub fn writer_stats(&self) -> &WriterStats {
        self.writers.stats()
    }

    /// Sends queued for the writers and not yet in a transaction.
    pub fn writer_queued(&self) -> usize {
        self.writers.queued()
    }

    /// One statement.
    async fn query<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> TxFuture<'c, T> + Send + 'static,
    {
        self.run(Mode::Single, f).await.map_err(TxError::into_store)
    }

    /// Several reads, one snapshot.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> TxFuture<'c, T> + Send + 'static,
    {
        self.run(Mode::Read, f).await.map_err(TxError::into_store)
    }

    /// Changes, all or nothing.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> TxFuture<'c, T> + Send + 'static,
    {
        self.run(Mode::Write, f).await.map_err(TxError::into_store)
    }
}

/// A pool of `max_size` connections to `config.url`, each set up with the
/// config's timeouts and name before it is first handed out.
fn build_pool(
    config: &PgConfig,
    max_size: usize,
    recycling: RecyclingMethod<Conn>,
) -> Result<Pool<Conn>, StoreError> {
    let connect_timeout = config.connect_timeout;
    let mut manager_config = ManagerConfig::<Conn>::default();
    manager_config.recycling_method = recycling;
    manager_config.custom_setup = Box::new(move |url: &str| {
        let url = url.to_owned();
        Box::pin(async move { establish(&url, connect_timeout).await })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(&config.url, manager_config);

    // Set on every new connection, before it is first handed out.
    let statement_ms = config.statement_timeout.as_millis().max(1).to_string();
    let application_name = config.application_name.clone();
    let set_up = Hook::async_fn(move |conn: &mut Conn, _| {
        let statement_ms = statement_ms.clone();
        let application_name = application_name.clone();
        Box::pin(async move {
            let settings = diesel::sql_query(
                "SELECT set_config('statement_timeout', $1, false), \
                 set_config('idle_in_transaction_session_timeout', $1, false), \
                 set_config('application_name', $2, false)",
            )
            .bind::<diesel::sql_types::Text, _>(statement_ms)
            .bind::<diesel::sql_types::Text, _>(application_name)
            .execute(conn);
            match tokio::time::timeout(connect_timeout, settings).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(HookError::Backend(PoolError::QueryError(e))),
                Err(_) => Err(HookError::message("connection set-up timed out")),
            }
        })
    });

    Pool::builder(manager)
        .max_size(max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .post_create(set_up)
        .build()
        .map_err(StoreError::other)
}

/// Runs `f` on a connection of `pool` in the transaction `mode` asks for,
/// in a task of its own: a caller that stops waiting does not cut the
/// transaction short. The whole call, waiting for a connection included, is
/// bounded by `deadline`.
pub(crate) async fn run_on<T, F>(
    pool: &Pool<Conn>,
    deadline: Duration,
    mode: Mode,
    f: F,
) -> Result<T, TxError>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut Conn) -> TxFuture<'c, T> + Send + 'static,
{
    let pool = pool.clone();
    let mut task = tokio::spawn(async move {
        let mut pooled = pool.get().await.map_err(map_pool)?;
        let conn: &mut Conn = &mut pooled;
        match mode {
            Mode::Single => f(conn).await,
            Mode::Read => {
                conn.build_transaction()
                    .repeatable_read()
                    .read_only()
                    .run(async move |c: &mut Conn| f(c).await)
                    .await
            }
            Mode::Write => conn.transaction(async move |c: &mut Conn| f(c).await).await,
        }
    });
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Ok(Err(join)) => Err(StoreError::unavailable(join).into()),
        Err(_) => {
            // The connection goes back with its transaction open; the
            // pool's recycling check throws it away.
            task.abort();
            Err(StoreError::unavailable("the database did not answer in time").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_print_without_their_password() {
        assert_eq!(
            redact_url("postgres://chat:s3cret@db:5432/chat?sslmode=disable"),
            "postgres://chat:***@db:5432/chat?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/postgres"),
            "postgres://postgres@127.0.0.1/postgres"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let config = PgConfig::new("postgres://u:pw@h/d");
        assert!(!format!("{config:?}").contains("pw"));
    }
}
