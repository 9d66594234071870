//! Typed configuration, read once at start-up.
//!
//! Layers, later ones winning: `config/default.toml`, then
//! `config/{CHAT_ENV}.toml` (`CHAT_ENV` defaults to `development`), then
//! `config/local.toml`, then `CHAT__SECTION__KEY` environment variables, then
//! the plain `HOST`, `PORT`, `DATABASE_URL`, `REDIS_URL` and `JWT_SECRET`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl From<config::ConfigError> for SettingsError {
    fn from(e: config::ConfigError) -> Self {
        Self(e.to_string())
    }
}

/// A value that must never be printed: its `Debug` shows only whether it is set.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(Option<String>);

impl Secret {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.as_deref().is_some() {
            "Secret(set)"
        } else {
            "Secret(unset)"
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `development` (the default) or anything else, such as `production`.
    pub env: String,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub database: DatabaseSettings,
    pub http: HttpLimits,
    pub storage: StorageSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub redis: RedisSettings,
}

/// The event bus between server nodes.
#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    /// `redis://host:port`; unset runs one node with the in-process bus.
    pub url: Secret,
    /// The pub/sub channel the nodes of one deployment share; also the
    /// prefix of their presence keys.
    pub channel: String,
    /// A node that has not renewed its liveness for this long is dead: its
    /// users go offline on the others.
    pub node_ttl_secs: u64,
    /// How often a node renews its liveness and looks for dead ones.
    pub node_check_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; the number of cores when unset.
    pub workers: Option<usize>,
    /// On SIGTERM, how long in-flight requests get to finish.
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// At least 32 bytes outside development.
    pub jwt_secret: Secret,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub bcrypt_cost: u32,
    /// Usernames of global admins.
    #[serde(default)]
    pub admins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// PostgreSQL URL; unset runs the in-memory store.
    pub url: Secret,
    /// Connections in the pool at most.
    pub max_connections: usize,
    /// How long a request waits for a free connection before it fails (503).
    pub wait_timeout_ms: u64,
    /// How long opening a connection may take; also `/ready`'s budget.
    pub connect_timeout_ms: u64,
    /// The server-side limit on one statement.
    pub statement_timeout_ms: u64,
    /// Run pending migrations at start-up (off for operators who run
    /// `chat-server migrate` themselves).
    pub run_migrations: bool,
    /// Group commit: writer tasks ("lanes"; a room always uses the same one).
    pub writer_lanes: usize,
    /// Group commit: sends in one transaction at most.
    pub max_batch: usize,
    /// Group commit: sends waiting per lane at most; past it a send gets 503.
    pub send_queue: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpLimits {
    pub json_limit: usize,
    /// Frames a WebSocket connection may have queued before it is closed as too slow.
    pub ws_queue_bytes: usize,
}

/// Rate limits: a sustained rate per minute and a burst per bucket; a rate
/// of 0 turns the bucket off.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub auth_per_minute: u32,
    pub auth_burst: u32,
    pub messages_per_minute: u32,
    pub messages_burst: u32,
    pub uploads_per_minute: u32,
    pub uploads_burst: u32,
    pub trust_forwarded_for: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    /// Where attachments' bytes are kept. Empty: in memory with the in-memory
    /// store, `data/attachments` with PostgreSQL.
    pub dir: String,
    /// The largest upload accepted, in bytes (exactly this is allowed).
    pub max_upload_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// An `EnvFilter` directive such as `info` or `chat_app=debug,info`.
    pub level: String,
    /// JSON lines; unset means JSON everywhere but development.
    pub json: Option<bool>,
}

impl Settings {
    /// Reads the layers from the `config/` directory found at or above the
    /// working directory (or `CHAT_CONFIG_DIR`).
    pub fn load() -> Result<Self, SettingsError> {
        let dir = std::env::var_os("CHAT_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(find_config_dir)
            .ok_or_else(|| {
                SettingsError(
                    "no config/default.toml found here or above; set CHAT_CONFIG_DIR".into(),
                )
            })?;
        Self::load_from(&dir, &std::env::vars().collect())
    }

    /// Reads the layers from `dir`, with `env` as the environment.
    pub fn load_from(dir: &Path, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let chat_env = env
            .get("CHAT_ENV")
            .cloned()
            .unwrap_or_else(|| "development".to_owned());
        let vars: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("CHAT__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut b = Config::builder()
            .add_source(File::from(dir.join("default.toml")))
            .add_source(File::from(dir.join(format!("{chat_env}.toml"))).required(false))
            .add_source(File::from(dir.join("local.toml")).required(false))
            .add_source(
                Environment::with_prefix("CHAT")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("auth.admins")
                    .try_parsing(true)
                    .source(Some(vars)),
            )
            .set_override("env", chat_env)?;
        for (var, key) in [
            ("HOST", "server.host"),
            ("PORT", "server.port"),
            ("DATABASE_URL", "database.url"),
            ("REDIS_URL", "redis.url"),
            ("JWT_SECRET", "auth.jwt_secret"),
        ] {
            if let Some(v) = env.get(var) {
                b = b.set_override(key, v.as_str())?;
            }
        }
        Ok(b.build()?.try_deserialize()?)
    }

    pub fn is_development(&self) -> bool {
        self.env == "development"
    }
}

fn find_config_dir() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join("config");
        if candidate.join("default.toml").is_file() {
            return Some(candidate);
        }
        if !dir.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
    }

    fn load(vars: &[(&str, &str)]) -> Settings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_from(&dir(), &vars).unwrap()
    }

    #[test]
    fn defaults_are_development_in_memory() {
        let s = load(&[]);
        assert!(s.is_development());
        assert_eq!(s.database.url.as_deref(), None);
        assert!(s.database.run_migrations);
        assert!(s.database.wait_timeout_ms > 0 && s.database.max_connections > 0);
        assert_eq!(s.auth.jwt_secret.as_deref(), None);
        assert!(s.auth.admins.is_empty());
    }

    #[test]
    fn plain_variables_override_the_files() {
        let s = load(&[
            ("PORT", "9999"),
            ("HOST", "0.0.0.0"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("DATABASE_URL", "postgres://x"),
            ("CHAT_ENV", "production"),
        ]);
        assert_eq!(s.server.port, 9999);
        assert_eq!(s.server.host, "0.0.0.0");
        assert_eq!(s.database.url.as_deref(), Some("postgres://x"));
        assert!(!s.is_development());
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = load(&[("JWT_SECRET", "super-secret-value-that-is-long-enough")]);
        assert!(!format!("{s:?}").contains("super-secret"));
    }

    #[test]
    fn sectioned_variables_and_admin_lists() {
        let s = load(&[
            ("CHAT__AUTH__ADMINS", "alice,Bob"),
            ("CHAT__AUTH__BCRYPT_COST", "4"),
            ("CHAT__HTTP__JSON_LIMIT", "1024"),
        ]);
        assert_eq!(s.auth.admins, vec!["alice".to_owned(), "Bob".to_owned()]);
        assert_eq!(s.auth.bcrypt_cost, 4);
        assert_eq!(s.http.json_limit, 1024);
    }
}
