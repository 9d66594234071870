//! The chat server: reads [`Settings`], builds the adapters, injects them
//! into `chat-app` and serves `chat-http`. Wiring only: no rule lives here.

mod settings;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{App as ActixApp, HttpServer, dev::Server, middleware};
use chat_app::{App, Deps};
use chat_auth::{BcryptHasher, JwtTokens, secret_from_config};
use chat_blob_disk::DiskBlobs;
use chat_bus_local::LocalBus;
use chat_http::{PoolGauges, PoolStats, Readiness};
use chat_ports::{
    BlobStore, EventBus, OneNode, Presence, SharedLimits, StoreError, Stores, SystemClock, V7Ids,
};
use chat_store_memory::{MemoryBlobs, MemoryStore};
use chat_store_postgres::{PgConfig, PgStore, WriterConfig, redact_url};
use futures_util::future::BoxFuture;

pub use settings::{Settings, SettingsError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("JWT secret: {0}")]
    Secret(#[from] chat_auth::SecretError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("no database configured: set DATABASE_URL (or database.url)")]
    NoDatabase,
    #[error("attachment storage: {0}")]
    Storage(#[source] StoreError),
    #[error("PostgreSQL at {url}")]
    Database {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("Redis (the event bus between nodes)")]
    Redis(#[source] chat_bus_redis::BusError),
}

/// A server ready to run, and the port it listens on.
pub struct Application {
    server: Server,
    port: u16,
    hub: chat_http::ws::Hub,
}

/// Stops a running server gracefully: stop accepting, close every
/// WebSocket with 1001 (going away), let in-flight requests finish within
/// `server.shutdown_timeout_secs`.
#[derive(Clone)]
pub struct Shutdown {
    handle: actix_web::dev::ServerHandle,
    hub: chat_http::ws::Hub,
}

impl Shutdown {
    /// Starts the shutdown and waits until the server has stopped.
    pub async fn shutdown(&self) {
        // Stop accepting first (the command is sent at once), then say
        // goodbye to the sockets, which would otherwise hold the workers.
        let stopped = self.handle.stop(true);
        self.hub.close_all(chat_http::ws::CloseWhy::GoingAway);
        stopped.await;
    }
}

impl Application {
    /// Builds everything and binds the port (0 picks a free one).
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let (secret, warning) = secret_from_config(
            settings.auth.jwt_secret.as_deref(),
            settings.is_development(),
        )?;
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        let (stores, readiness, pool) = open_store(settings).await?;
        let blobs = open_blobs(settings).await?;
        let (bus, bus_stats, presence, shared_limits) = open_bus(settings).await?;
        let events = bus.subscribe();
        let app = App::new(Deps {
            stores,
            blobs,
            hasher: Arc::new(BcryptHasher::new(settings.auth.bcrypt_cost)),
            tokens: Arc::new(JwtTokens::new(
                secret.as_bytes(),
                chrono::Duration::seconds(settings.auth.access_ttl_secs),
                chrono::Duration::seconds(settings.auth.refresh_ttl_secs),
            )),
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids),
            events: bus,
            presence,
            admins: settings.auth.admins.clone(),
        });
        let hub = chat_http::ws::Hub::start(events, Some(Arc::new(app.rooms.clone())));
        if settings.redis.url.as_deref().is_some() {
            // Users whose last connection was on a node that died go offline.
            let live = app.live.clone();
            let reap_every = Duration::from_secs(settings.redis.node_check_secs.max(1));
            tokio::spawn(async move {
                let mut every = tokio::time::interval(reap_every);
                loop {
                    every.tick().await;
                    if let Err(e) = live.reap().await {
                        tracing::warn!(error = %e, "could not announce the users of a node that went away");
                    }
                }
            });
        }
        let state = chat_http::State {
            app,
            settings: chat_http::HttpSettings {
                json_limit: settings.http.json_limit,
                ws_queue_bytes: settings.http.ws_queue_bytes,
                upload_limit: settings.storage.max_upload_bytes,
            },
            readiness,
            hub: hub.clone(),
            metrics: Arc::default(),
            pool,
            bus: bus_stats,
            limits: Arc::new(match shared_limits {
                Some(shared) => chat_http::RateLimits::new(&rate_limits(settings)).shared(shared),
                None => chat_http::RateLimits::new(&rate_limits(settings)),
            }),
        };
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?
            .port();
        let server = HttpServer::new(move || {
            ActixApp::new()
                // A request id on every log line of a request, one line per
                // answer (path without its query: tokens never reach the log),
                // and the HTTP metrics.
                .wrap(middleware::from_fn(chat_http::observe))
                .configure(chat_http::configure(state.clone()))
        })
        // Chat frames are small and latency matters more than packet count:
        // without TCP_NODELAY an ack can wait on Nagle for the client's next frame.
        .on_connect(|conn, _| {
            if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>()
                && let Err(e) = tcp.set_nodelay(true)
            {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        })
        // SIGTERM and Ctrl-C are handled by `Application::run`, which closes
        // the WebSockets first.
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .workers(settings.server.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }))
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: format!("port {port}"),
            source,
        })?
        .run();
        Ok(Self { server, port, hub })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that shuts the server down gracefully, as SIGTERM does.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            handle: self.server.handle(),
            hub: self.hub.clone(),
        }
    }

    /// Serves until the server is stopped, or until SIGTERM or Ctrl-C, which
    /// shut it down gracefully (see [`Shutdown`]).
    pub async fn run(self) -> std::io::Result<()> {
        let shutdown = self.shutdown_handle();
        let mut server = self.server;
        tokio::select! {
            done = &mut server => return done,
            signal = termination() => {
                tracing::info!(signal, "shutting down: no new connections, closing WebSockets (1001), finishing requests");
            }
        }
        // The server future handles the stop command: poll both.
        let ((), done) = tokio::join!(shutdown.shutdown(), server);
        done?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Waits for SIGTERM (or Ctrl-C) and says which came.
async fn termination() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// The rate limits as the HTTP layer takes them.
fn rate_limits(settings: &Settings) -> chat_http::LimitSettings {
    let l = &settings.limits;
    chat_http::LimitSettings {
        auth_per_minute: l.auth_per_minute,
        auth_burst: l.auth_burst,
        messages_per_minute: l.messages_per_minute,
        messages_burst: l.messages_burst,
        uploads_per_minute: l.uploads_per_minute,
        uploads_burst: l.uploads_burst,
        trust_forwarded_for: l.trust_forwarded_for,
    }
}

/// The PostgreSQL settings as the store takes them.
fn pg_config(settings: &Settings, url: &str) -> PgConfig {
    let db = &settings.database;
    PgConfig {
        max_size: db.max_connections,
        wait_timeout: Duration::from_millis(db.wait_timeout_ms),
        connect_timeout: Duration::from_millis(db.connect_timeout_ms),
        statement_timeout: Duration::from_millis(db.statement_timeout_ms),
        run_migrations: db.run_migrations,
        writer: WriterConfig {
            lanes: db.writer_lanes,
            max_batch: db.max_batch,
            queue: db.send_queue,
        },
        ..PgConfig::new(url)
    }
}

/// The bus; for a bus shared with other nodes, its readings; presence; and
/// the rate limits the nodes share, if they do.
type Bus = (
    Arc<dyn EventBus>,
    Option<Arc<dyn chat_http::BusStats>>,
    Arc<dyn Presence>,
    Option<Arc<dyn SharedLimits>>,
);

/// The Redis bus when a Redis URL is configured (several nodes), the
/// in-process bus otherwise (one node).
async fn open_bus(settings: &Settings) -> Result<Bus, StartError> {
    let Some(url) = settings.redis.url.as_deref() else {
        return Ok((Arc::new(LocalBus::new()), None, Arc::new(OneNode), None));
    };
    let config = chat_bus_redis::RedisConfig {
        channel: settings.redis.channel.clone(),
        ..chat_bus_redis::RedisConfig::new(url)
    };
    let bus = chat_bus_redis::RedisBus::connect(&config)
        .await
        .map_err(StartError::Redis)?;
    tracing::info!(node = %bus.node(), channel = %config.channel, "events shared with the other nodes through Redis");
    let stats: Arc<dyn chat_http::BusStats> = Arc::new(RedisReadings(bus.stats().clone()));
    // A dead node's users go offline elsewhere within node_ttl + node_check
    // (40 s by default).
    let presence = chat_bus_redis::RedisPresence::connect(
        url,
        &config.channel,
        Duration::from_secs(settings.redis.node_ttl_secs.max(1)),
    )
    .await
    .map_err(StartError::Redis)?;
    let limits = chat_bus_redis::RedisLimits::connect(url, &config.channel)
        .await
        .map_err(StartError::Redis)?;
    Ok((
        Arc::new(bus),
        Some(stats),
        Arc::new(presence),
        Some(Arc::new(limits)),
    ))
}

/// `/metrics` and `/ready` read the Redis bus's counters.
struct RedisReadings(Arc<chat_bus_redis::BusStats>);

impl chat_http::BusStats for RedisReadings {
    fn bus(&self) -> chat_http::BusGauges {
        let s = &self.0;
        chat_http::BusGauges {
            connected: s.subscribed.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            connects: s.connects.load(Ordering::Relaxed),
            lag_us: s.lag_us.load(Ordering::Relaxed),
            topics: s.topics.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
        }
    }
}

/// PostgreSQL when a database URL is configured, the in-memory store otherwise.
async fn open_store(
    settings: &Settings,
) -> Result<(Stores, Vec<Arc<dyn Readiness>>, Option<Arc<dyn PoolStats>>), StartError> {
    let Some(url) = settings.database.url.as_deref() else {
        tracing::warn!(
            "no database configured: running on the IN-MEMORY store. \
             Nothing is kept: every account, room and message is lost when the server stops."
        );
        return Ok((MemoryStore::new_stores(), Vec::new(), None));
    };
    let store = PgStore::connect(&pg_config(settings, url))
        .await
        .map_err(|source| StartError::Database {
            url: redact_url(url),
            source,
        })?;
    tracing::info!(url = %redact_url(url), "using PostgreSQL");
    let store = Arc::new(store);
    let ready: Arc<dyn Readiness> = Arc::new(PgReady(store.clone()));
    let pool: Arc<dyn PoolStats> = Arc::new(PgReady(store.clone()));
    Ok((store.stores(), vec![ready], Some(pool)))
}

/// Where attachments' bytes go: `storage.dir` on disk; without one, memory
/// beside the in-memory store and `data/attachments` beside PostgreSQL.
async fn open_blobs(settings: &Settings) -> Result<Arc<dyn BlobStore>, StartError> {
    let dir = match (
        settings.storage.dir.trim(),
        settings.database.url.as_deref().is_some(),
    ) {
        ("", false) => return Ok(Arc::new(MemoryBlobs::new())),
        ("", true) => "data/attachments",
        (dir, _) => dir,
    };
    let blobs = DiskBlobs::open(dir).await.map_err(StartError::Storage)?;
    tracing::info!(dir, "attachments on disk");
    Ok(Arc::new(blobs))
}

/// `/ready` asks PostgreSQL, and `/metrics` reads its pool.
struct PgReady(Arc<PgStore>);

impl PoolStats for PgReady {
    fn pool(&self) -> PoolGauges {
        let (max, open, idle, waiting) = self.0.pool_status();
        let writer = self.0.writer_stats();
        PoolGauges {
            max,
            in_use: open.saturating_sub(idle),
            idle,
            waiting,
            send_batches: writer.batches.load(Ordering::Relaxed),
            batched_sends: writer.sends.load(Ordering::Relaxed),
            queue_full: writer.rejected.load(Ordering::Relaxed),
        }
    }
}

impl Readiness for PgReady {
    fn check(&self) -> BoxFuture<'_, bool> {
        Box::pin(self.0.ping())
    }
}

/// `chat-server migrate`: runs pending migrations and says which.
pub async fn migrate(settings: &Settings) -> Result<Vec<String>, StartError> {
    let url = settings
        .database
        .url
        .as_deref()
        .ok_or(StartError::NoDatabase)?;
    let config = PgConfig {
        run_migrations: false,
        ..pg_config(settings, url)
    };
    let fail = |source| StartError::Database {
        url: redact_url(url),
        source,
    };
    let store = PgStore::connect(&config).await.map_err(fail)?;
    store.migrate().await.map_err(fail)
}
