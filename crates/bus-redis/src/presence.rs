//! [`RedisPresence`]: who is online on any node, kept in Redis.
//!
//! - `{prefix}:presence:{user}`: a hash, one field per node that holds a
//!   connection of the user. The user's first connection anywhere is the
//!   one that makes the hash one field long; their last, the one that
//!   empties it. Each change is one Lua script, so two nodes never both
//!   see themselves first or last.
//! - `{prefix}:held:{node}`: the users a node holds, and
//!   `{prefix}:alive:{node}`, which the node renews every few seconds with
//!   an expiry (the `ttl` it was connected with). `{prefix}:nodes` lists
//!   the nodes.
//! - A node that dies stops renewing. Any other node's next
//!   [`Presence::orphans`] call claims it (one claimant: `SREM` from the
//!   node list), removes it from its users' hashes, and returns the users
//!   it left with no node: those go offline within that `ttl` plus the
//!   calling period.
//!
//! With Redis unreachable, a node answers as a single node would (its own
//! first and last connections are announced) and logs it; a user with
//! devices on two nodes may then be announced twice.

use std::time::Duration;

use async_trait::async_trait;
use chat_domain::UserId;
use chat_ports::Presence;
use redis::Script;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::BusError;

/// Presence over Redis; see the module's documentation.
pub struct RedisPresence {
    conn: ConnectionManager,
    node: String,
    prefix: String,
    ttl: Duration,
    arrive: Script,
    leave: Script,
    claim: Script,
}

/// `HSET` this node into the user's hash and note the user as held by it;
/// the hash's length after (1: first anywhere).
const ARRIVE: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HLEN', KEYS[1])";

/// The reverse; the hash's length after (0: last anywhere).
const LEAVE: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
return redis.call('HLEN', KEYS[1])";

/// Claims a dead node (KEYS[1] the node list, KEYS[2] its held set; ARGV[1]
/// the node, ARGV[2] the key prefix): only the caller that removes it from
/// the list gets its users. Returns the users it left with no node.
const CLAIM: &str = r"
if redis.call('EXISTS', ARGV[2] .. ':alive:' .. ARGV[1]) == 1 then return {} end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return {} end
local gone = {}
for _, user in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local key = ARGV[2] .. ':presence:' .. user
  redis.call('HDEL', key, ARGV[1])
  if redis.call('HLEN', key) == 0 then table.insert(gone, user) end
end
redis.call('DEL', KEYS[2])
return gone";

impl RedisPresence {
    /// Connects (when Redis answers) and says this node is alive for `ttl`
    /// (renewed by each [`Presence::orphans`] call, which must come more
    /// often than that).
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        let conn = crate::manager(&client, Duration::from_secs(2))?;
        let presence = Self {
            conn,
            node: Uuid::now_v7().to_string(),
            prefix: prefix.to_owned(),
            ttl,
            arrive: Script::new(ARRIVE),
            leave: Script::new(LEAVE),
            claim: Script::new(CLAIM),
        };
        if let Err(e) = presence.alive().await {
            tracing::warn!(error = %e, "presence: Redis does not answer yet; this node counts alone until it does");
        }
        Ok(presence)
    }

    /// This node's id in Redis.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn user_key(&self, user: UserId) -> String {
        format!("{}:presence:{}", self.prefix, user.0)
    }

    fn held_key(&self, node: &str) -> String {
        format!("{}:held:{node}", self.prefix)
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// Renews this node's liveness.
    async fn alive(&self) -> Result<(), BusError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .set_ex(
                format!("{}:alive:{}", self.prefix, self.node),
                1,
                self.ttl.as_secs().max(1),
            )
            .ignore()
            .sadd(self.nodes_key(), &self.node)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The hash length the script leaves, or the error.
    async fn change(&self, script: &Script, user: UserId) -> Result<i64, BusError> {
        let mut conn = self.conn.clone();
        Ok(script
            .key(self.user_key(user))
            .key(self.held_key(&self.node))
            .arg(&self.node)
            .arg(user.0.to_string())
            .invoke_async(&mut conn)
            .await?)
    }

    async fn reap(&self) -> Result<Vec<UserId>, BusError> {
        self.alive().await?;
        let mut conn = self.conn.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.nodes_key())
            .query_async(&mut conn)
            .await?;
        let mut gone = Vec::new();
        for node in nodes.iter().filter(|n| **n != self.node) {
            let users: Vec<String> = self
                .claim
                .key(self.nodes_key())
                .key(self.held_key(node))
                .arg(node)
                .arg(&self.prefix)
                .invoke_async(&mut conn)
                .await?;
            if !users.is_empty() {
                tracing::info!(node = %node, users = users.len(), "a node went away: its users are offline");
            }
            gone.extend(
                users
                    .iter()
                    .filter_map(|u| Uuid::parse_str(u).ok())
                    .map(UserId),
            );
        }
        Ok(gone)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn arrived(&self, user: UserId) -> bool {
        match self.change(&self.arrive, user).await {
            Ok(len) => len == 1,
            Err(e) => {
                tracing::warn!(error = %e, "presence: Redis did not answer; announcing this node's own");
                true
            }
        }
    }

    async fn left(&self, user: UserId) -> bool {
        match self.change(&self.leave, user).await {
            Ok(len) => len == 0,
            Err(e) => {
                tracing::warn!(error = %e, "presence: Redis did not answer; announcing this node's own");
                true
            }
        }
    }

    async fn orphans(&self) -> Vec<UserId> {
        match self.reap().await {
            Ok(gone) => gone,
            Err(e) => {
                tracing::warn!(error = %e, "presence: could not look for nodes that went away");
                Vec::new()
            }
        }
    }
}
