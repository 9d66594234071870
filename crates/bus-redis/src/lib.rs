//! [`RedisBus`]: the `EventBus` port over Redis pub/sub, so that several
//! server nodes behind one load balancer deliver each other's events;
//! [`RedisPresence`]: the `Presence` port, who is online on any node; and
//! [`RedisLimits`]: rate limits the nodes share.
//!
//! - **Publishing.** An event reaches this node's own subscribers at once,
//!   whatever Redis is doing, then goes to a bounded queue that one task
//!   drains into Redis, many `PUBLISH`es per round trip (a pipeline) on one
//!   multiplexed connection that reconnects by itself. A full queue drops
//!   the event for the other nodes and counts it; their clients fill such
//!   gaps from `GET /rooms/{id}/changes`, as after any missed event.
//! - **Receiving.** One subscriber connection per node, on the channel, in
//!   a task that reconnects with backoff when Redis goes away. Events this
//!   node published come back too and are skipped (delivered already).
//!
//! Redis pub/sub delivers at most once: what is published while a node is
//! cut off never reaches it. The gateway's hub puts each room's events back
//! in version order and, when one is missing, gives up on it after a while
//! and lets clients fetch it from the store.
//!
//! Client crate: `redis` (redis-rs), the Redis project's own Rust client:
//! async pub/sub, pipelines and a reconnecting multiplexed connection.
//!
//! This crate knows `chat-ports` (and `chat-domain`, for the wire format),
//! tokio and Redis; nothing of HTTP or storage.

mod limits;
mod presence;
pub mod wire;

pub use limits::RedisLimits;
pub use presence::RedisPresence;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_ports::{Event, EventBus, EventStream};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use uuid::Uuid;

/// How to reach Redis, and on which channel the nodes meet.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db`. Never printed whole.
    pub url: String,
    /// The pub/sub channel every node of one deployment uses.
    pub channel: String,
    /// Events waiting to be published at most; past it they are dropped
    /// for the other nodes (this node has delivered them already).
    pub queue: usize,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channel: "chat:events".to_owned(),
            queue: 65_536,
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"<redacted>")
            .field("channel", &self.channel)
            .field("queue", &self.queue)
            .finish()
    }
}

/// What the bus has done, for metrics and readiness.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Events published to Redis by this node.
    pub published: AtomicU64,
    /// Events received from other nodes.
    pub received: AtomicU64,
    /// Their lag, summed: from the publisher's clock at publishing to this
    /// node's at receiving, in microseconds (nodes' clocks are assumed in
    /// step, as NTP keeps them). Over `received`, the mean lag.
    pub lag_us: AtomicU64,
    /// Events not published: the queue was full or Redis refused them.
    pub dropped: AtomicU64,
    /// Messages on the channel that could not be read.
    pub malformed: AtomicU64,
    /// Times the subscriber connection was (re)established.
    pub connects: AtomicU64,
    /// Whether the subscriber connection is up now.
    pub subscribed: AtomicBool,
}

/// Why the bus could not start.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct BusError(#[from] redis::RedisError);

/// This node's subscribers (the gateway's hub): each has its own queue.
#[derive(Default)]
struct Local {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl Local {
    fn deliver(&self, event: Event) {
        let Ok(mut subs) = self.subscribers.lock() else {
            return;
        };
        subs.retain(|s| !s.is_closed());
        for s in subs.iter() {
            let _ = s.send(event.clone());
        }
    }

    fn subscribe(&self) -> Box<dyn EventStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        Box::new(Subscription(rx))
    }
}

struct Subscription(mpsc::UnboundedReceiver<Event>);

#[async_trait]
impl EventStream for Subscription {
    async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }
}

/// The bus. Its tasks stop when it is dropped.
pub struct RedisBus {
    node: Uuid,
    local: Arc<Local>,
    outbox: mpsc::Sender<Vec<u8>>,
    stats: Arc<BusStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A multiplexed connection that connects on first use and reconnects by
/// itself, each command answered within `response_timeout` or failed.
pub(crate) fn manager(
    client: &redis::Client,
    response_timeout: Duration,
) -> Result<ConnectionManager, BusError> {
    Ok(ConnectionManager::new_lazy_with_config(
        client.clone(),
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(response_timeout))
            .set_max_delay(Duration::from_secs(2)),
    )?)
}

/// Publishes in one pipeline at most.
const MAX_PIPELINE: usize = 512;

impl RedisBus {
    /// Starts the publisher and the subscriber. Redis need not answer yet:
    /// both connect when they can and reconnect by themselves; meanwhile
    /// this node delivers its own events and the others miss them.
    pub async fn connect(config: &RedisConfig) -> Result<Self, BusError> {
        let client = redis::Client::open(config.url.as_str())?;
        let publisher = manager(&client, Duration::from_secs(2))?;
        let node = Uuid::now_v7();
        let local = Arc::new(Local::default());
        let stats = Arc::new(BusStats::default());
        let (outbox, pending) = mpsc::channel(config.queue.max(1));
        let tasks = vec![
            tokio::spawn(publish_loop(
                publisher,
                config.channel.clone(),
                pending,
                stats.clone(),
            )),
            tokio::spawn(subscribe_loop(
                client,
                config.channel.clone(),
                node,
                local.clone(),
                stats.clone(),
            )),
        ];
        Ok(Self {
            node,
            local,
            outbox,
            stats,
            tasks,
        })
    }

    /// What the bus has done so far.
    pub fn stats(&self) -> &Arc<BusStats> {
        &self.stats
    }

    /// This node's id on the channel.
    pub fn node(&self) -> Uuid {
        self.node
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, event: Event) {
        // Encoded first: the local delivery takes the event itself.
        let bytes = wire::encode(self.node, &event);
        self.local.deliver(event);
        match bytes {
            Ok(bytes) => {
                if self.outbox.try_send(bytes).is_err() {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not encode an event for the other nodes");
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn subscribe(&self) -> Box<dyn EventStream> {
        self.local.subscribe()
    }
}

/// Drains the outbox into Redis: whatever is queued, in one pipeline.
async fn publish_loop(
    mut conn: ConnectionManager,
    channel: String,
    mut pending: mpsc::Receiver<Vec<u8>>,
    stats: Arc<BusStats>,
) {
    let mut batch = Vec::with_capacity(MAX_PIPELINE);
    while pending.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
        let mut pipe = redis::pipe();
        for bytes in &batch {
            pipe.publish(&channel, bytes.as_slice()).ignore();
        }
        let n = batch.len() as u64;
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                stats.published.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                stats.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(error = %e, events = n, "could not publish events to the other nodes");
            }
        }
        batch.clear();
    }
}

/// Holds the subscriber connection: subscribe, hand every other node's
/// event to the local subscribers, and start again when the connection
/// goes (backoff from 100 ms to 2 s).
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: Uuid,
    local: Arc<Local>,
    stats: Arc<BusStats>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    stats.connects.fetch_add(1, Ordering::Relaxed);
                    stats.subscribed.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(100);
                    tracing::info!("subscribed to the other nodes' events");
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        match wire::decode_sent(msg.get_payload_bytes()) {
                            Ok((from, _, _)) if from == node => {}
                            Ok((_, sent_ms, event)) => {
                                let now_ms = chrono::Utc::now().timestamp_millis();
                                if sent_ms > 0 {
                                    let lag_us = (now_ms - sent_ms).max(0).unsigned_abs() * 1000;
                                    stats.lag_us.fetch_add(lag_us, Ordering::Relaxed);
                                }
                                stats.received.fetch_add(1, Ordering::Relaxed);
                                local.deliver(event);
                            }
                            Err(e) => {
                                stats.malformed.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(error = %e, "an unreadable event on the channel");
                            }
                        }
                    }
                    stats.subscribed.store(false, Ordering::Relaxed);
                    tracing::warn!(
                        "lost the subscription to the other nodes' events; reconnecting"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not subscribe to the other nodes' events")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "could not reach Redis for the other nodes' events")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
