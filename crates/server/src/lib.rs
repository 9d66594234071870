//! The chat server: reads [`Settings`], builds the adapters, injects them
//! into `chat-app` and serves `chat-http`. Wiring only: no rule lives here.

mod settings;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App as ActixApp, HttpServer, dev::Server, middleware};
use chat_app::{App, Deps};
use chat_auth::{BcryptHasher, JwtTokens, secret_from_config};
use chat_bus_local::LocalBus;
use chat_http::Readiness;
use chat_ports::{EventBus, StoreError, Stores, SystemClock, V7Ids};
use chat_store_memory::MemoryStore;
use chat_store_postgres::{PgConfig, PgStore, redact_url};
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
    #[error("PostgreSQL at {url}")]
    Database {
        url: String,
        #[source]
        source: StoreError,
    },
}

/// A server ready to run, and the port it listens on.
pub struct Application {
    server: Server,
    port: u16,
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
        let (stores, readiness) = open_store(settings).await?;
        let bus = Arc::new(LocalBus::new());
        let hub = chat_http::ws::Hub::start(bus.subscribe());
        let app = App::new(Deps {
            stores,
            hasher: Arc::new(BcryptHasher::new(settings.auth.bcrypt_cost)),
            tokens: Arc::new(JwtTokens::new(
                secret.as_bytes(),
                chrono::Duration::seconds(settings.auth.access_ttl_secs),
                chrono::Duration::seconds(settings.auth.refresh_ttl_secs),
            )),
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids),
            events: bus,
            admins: settings.auth.admins.clone(),
        });
        let state = chat_http::State {
            app,
            settings: chat_http::HttpSettings {
                json_limit: settings.http.json_limit,
                ws_queue: settings.http.ws_queue,
            },
            readiness,
            hub,
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
                // %U is the path without its query string: tokens never reach the log.
                .wrap(
                    middleware::Logger::new("%{METHOD}xi %U %s %Dms")
                        .custom_request_replace("METHOD", |req| req.method().to_string()),
                )
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
        .workers(settings.server.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }))
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: format!("port {port}"),
            source,
        })?
        .run();
        Ok(Self { server, port })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
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
        ..PgConfig::new(url)
    }
}

/// PostgreSQL when a database URL is configured, the in-memory store otherwise.
async fn open_store(settings: &Settings) -> Result<(Stores, Vec<Arc<dyn Readiness>>), StartError> {
    let Some(url) = settings.database.url.as_deref() else {
        tracing::warn!(
            "no database configured: running on the IN-MEMORY store. \
             Nothing is kept: every account, room and message is lost when the server stops."
        );
        return Ok((MemoryStore::new_stores(), Vec::new()));
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
    Ok((store.stores(), vec![ready]))
}

/// `/ready` asks PostgreSQL.
struct PgReady(Arc<PgStore>);

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
