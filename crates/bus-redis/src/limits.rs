//! [`RedisLimits`]: rate limits shared by every node (GCRA on Redis).
//!
//! Each key holds its theoretical arrival time (milliseconds, Redis's own
//! clock, so the nodes' clocks do not matter) and expires once refilled. One
//! Lua script reads and advances it, so concurrent requests on any number
//! of nodes draw from one allowance. When Redis does not answer within
//! [`TIMEOUT`], the caller falls back to its own limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_ports::SharedLimits;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::BusError;

/// How long a limit check waits for Redis before the node decides alone.
pub const TIMEOUT: Duration = Duration::from_millis(250);

/// GCRA: KEYS[1] the key; ARGV[1] the emission interval (ms), ARGV[2] the
/// burst. Returns 0 to go ahead, else the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + emission
local allowed_at = next_tat - emission * burst
if allowed_at > now then return math.ceil(allowed_at - now) end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1)
return 0";

/// Shared limits on Redis; see the module's documentation.
pub struct RedisLimits {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
    /// Whether the last check fell back (logged once per outage).
    down: AtomicBool,
}

impl RedisLimits {
    /// Connects when first used; until Redis answers, every check falls
    /// back to the node's own limits.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let client = redis::Client::open(url)?;
        let conn = crate::manager(&client, TIMEOUT)?;
        Ok(Self {
            conn,
            prefix: format!("{prefix}:limit"),
            script: Script::new(GCRA),
            down: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl SharedLimits for RedisLimits {
    async fn take(&self, key: &str, per_minute: u32, burst: u32) -> Option<Result<(), Duration>> {
        if per_minute == 0 {
            return Some(Ok(()));
        }
        let mut conn = self.conn.clone();
        let emission_ms = 60_000.0 / f64::from(per_minute);
        let mut invocation = self.script.key(format!("{}:{key}", self.prefix));
        invocation.arg(emission_ms).arg(burst.max(1));
        let call = invocation.invoke_async::<u64>(&mut conn);
        match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(wait_ms)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("shared rate limits are back");
                }
                Some(if wait_ms == 0 {
                    Ok(())
                } else {
                    Err(Duration::from_millis(wait_ms))
                })
            }
            Ok(Err(e)) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "shared rate limits unavailable: this node limits alone");
                }
                None
            }
            Err(_) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "shared rate limits did not answer in time: this node limits alone"
                    );
                }
                None
            }
        }
    }
}
