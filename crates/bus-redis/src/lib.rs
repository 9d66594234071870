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
//! - **Channels.** Each event goes where [`Event::audience`] says: a room's
//!   channel (`{channel}:room:{id}`), a user's (`{channel}:user:{id}`), or
//!   the deployment's own (`{channel}`) for what every node needs. One
//!   event sent to several channels is one numbered envelope; a node that
//!   hears it twice keeps the first copy.
//! - **Receiving.** One subscriber connection per node, in a task that
//!   reconnects with backoff when Redis goes away. It listens to the
//!   deployment's channel and to the rooms and users the node's hub says
//!   it has someone for ([`Interest`]), subscribing and unsubscribing as
//!   that changes, and everything again after a reconnect. Events this
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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_ports::{Audience, Event, EventBus, EventStream, Interest, Topic};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use tokio::sync::{Notify, mpsc};
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
    /// Room and user channels listened to now.
    pub topics: AtomicU64,
    /// Copies of an event heard on more than one channel, skipped.
    pub duplicates: AtomicU64,
    /// Whether the subscriber connection is up now.
    pub subscribed: AtomicBool,
}

/// Why the bus could not start.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct BusError(#[from] redis::RedisError);

/// Events a local subscriber may have waiting; past it, delivery waits
/// for the subscriber (the gateway's hub): publishers and the Redis reader
/// slow down rather than a queue growing.
const SUBSCRIPTION_QUEUE: usize = 16_384;

/// This node's subscribers (the gateway's hub): each has its own queue.
#[derive(Default)]
struct Local {
    subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
}

impl Local {
    async fn deliver(&self, event: Event) {
        let subs: Vec<mpsc::Sender<Event>> = match self.subscribers.lock() {
            Ok(mut subs) => {
                subs.retain(|s| !s.is_closed());
                subs.clone()
            }
            Err(_) => return,
        };
        // The last subscriber takes the event itself rather than a clone.
        if let Some((last, rest)) = subs.split_last() {
            for s in rest {
                let _ = s.send(event.clone()).await;
            }
            let _ = last.send(event).await;
        }
    }

    fn subscribe(&self, topics: Arc<Topics>) -> Box<dyn EventStream> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        Box::new(Subscription(rx, topics))
    }
}

struct Subscription(mpsc::Receiver<Event>, Arc<Topics>);

#[async_trait]
impl EventStream for Subscription {
    async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    fn interest(&self) -> Option<Arc<dyn Interest>> {
        Some(self.1.clone())
    }
}

/// The topics this node's subscribers want, counted, and the ones changed
/// since the subscriber task last looked.
struct Topics {
    prefix: String,
    state: Mutex<TopicState>,
    changed: Notify,
}

#[derive(Default)]
struct TopicState {
    wanted: HashMap<Topic, usize>,
    dirty: HashSet<Topic>,
}

impl Topics {
    fn new(prefix: String) -> Self {
        Self {
            prefix,
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    fn channel(&self, topic: Topic) -> String {
        match topic {
            Topic::Room(r) => format!("{}:room:{}", self.prefix, r.0),
            Topic::User(u) => format!("{}:user:{}", self.prefix, u.0),
        }
    }

    /// Everything wanted now; what was dirty is settled by it.
    fn all(&self) -> Vec<Topic> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        s.dirty.clear();
        s.wanted.keys().copied().collect()
    }

    /// The topics changed since the last look, each with whether it is
    /// wanted now.
    fn changes(&self) -> Vec<(Topic, bool)> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        let dirty = std::mem::take(&mut s.dirty);
        dirty
            .into_iter()
            .map(|t| (t, s.wanted.contains_key(&t)))
            .collect()
    }
}

impl Interest for Topics {
    fn listen(&self, topic: Topic) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        let n = s.wanted.entry(topic).or_insert(0);
        *n += 1;
        if *n == 1 {
            s.dirty.insert(topic);
            drop(s);
            self.changed.notify_one();
        }
    }

    fn unlisten(&self, topic: Topic) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        let Some(n) = s.wanted.get_mut(&topic) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            s.wanted.remove(&topic);
            s.dirty.insert(topic);
            drop(s);
            self.changed.notify_one();
        }
    }
}

/// An event on its way to Redis: its envelope, not yet numbered, and the
/// channels it goes to.
struct Outgoing {
    channels: Vec<String>,
    envelope: Vec<u8>,
}

/// The bus. Its tasks stop when it is dropped.
pub struct RedisBus {
    node: Uuid,
    local: Arc<Local>,
    topics: Arc<Topics>,
    outbox: mpsc::Sender<Outgoing>,
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
        let topics = Arc::new(Topics::new(config.channel.clone()));
        let (outbox, pending) = mpsc::channel(config.queue.max(1));
        let tasks = vec![
            tokio::spawn(publish_loop(publisher, pending, stats.clone())),
            tokio::spawn(subscribe_loop(
                client,
                config.channel.clone(),
                node,
                local.clone(),
                topics.clone(),
                stats.clone(),
            )),
        ];
        Ok(Self {
            node,
            local,
            topics,
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
        let channels = match event.audience() {
            Audience::Everyone => vec![self.topics.prefix.clone()],
            Audience::Topics(topics) => {
                topics.into_iter().map(|t| self.topics.channel(t)).collect()
            }
        };
        self.local.deliver(event).await;
        match bytes {
            Ok(envelope) => {
                let out = Outgoing { channels, envelope };
                if self.outbox.try_send(out).is_err() {
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
        self.local.subscribe(self.topics.clone())
    }
}

/// Drains the outbox into Redis: whatever is queued, in one pipeline,
/// each envelope numbered in the order it goes out.
async fn publish_loop(
    mut conn: ConnectionManager,
    mut pending: mpsc::Receiver<Outgoing>,
    stats: Arc<BusStats>,
) {
    let mut batch = Vec::with_capacity(MAX_PIPELINE);
    let mut n: u64 = 0;
    while pending.recv_many(&mut batch, MAX_PIPELINE).await > 0 {
        let mut pipe = redis::pipe();
        for out in &batch {
            n += 1;
            let envelope = wire::numbered(n, &out.envelope);
            for channel in &out.channels {
                pipe.publish(channel, envelope.as_slice()).ignore();
            }
        }
        let events = batch.len() as u64;
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                stats.published.fetch_add(events, Ordering::Relaxed);
            }
            Err(e) => {
                stats.dropped.fetch_add(events, Ordering::Relaxed);
                tracing::warn!(error = %e, events, "could not publish events to the other nodes");
            }
        }
        batch.clear();
    }
}

/// Holds the subscriber connection: subscribe, hand every other node's
/// event to the local subscribers, follow the hub's interest, and start
/// again when the connection goes (backoff from 100 ms to 2 s).
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: Uuid,
    local: Arc<Local>,
    topics: Arc<Topics>,
    stats: Arc<BusStats>,
) {
    let mut backoff = Duration::from_millis(100);
    // The last envelope number heard from each node, to skip the copies of
    // an event sent to several channels this node listens to.
    let mut last: HashMap<Uuid, u64> = HashMap::new();
    loop {
        match listen(&client, &channel, node, &local, &topics, &stats, &mut last).await {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                tracing::warn!("lost the subscription to the other nodes' events; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not subscribe to the other nodes' events")
            }
        }
        stats.subscribed.store(false, Ordering::Relaxed);
        stats.topics.store(0, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Subscribes at most this many channels per command.
const SUBSCRIBE_CHUNK: usize = 1024;

/// One subscriber connection, until it goes: `Ok` once it was up and then
/// lost, `Err` if it never came up.
async fn listen(
    client: &redis::Client,
    channel: &str,
    node: Uuid,
    local: &Local,
    topics: &Topics,
    stats: &BusStats,
    last: &mut HashMap<Uuid, u64>,
) -> Result<(), redis::RedisError> {
    let (mut sink, mut messages) = client.get_async_pubsub().await?.split();
    sink.subscribe(channel).await?;
    let mut subscribed: HashSet<Topic> = HashSet::new();
    let everything = topics.all();
    follow(
        &mut sink,
        topics,
        &mut subscribed,
        everything.into_iter().map(|t| (t, true)),
    )
    .await?;
    stats
        .topics
        .store(subscribed.len() as u64, Ordering::Relaxed);
    stats.connects.fetch_add(1, Ordering::Relaxed);
    stats.subscribed.store(true, Ordering::Relaxed);
    tracing::info!("subscribed to the other nodes' events");
    loop {
        tokio::select! {
            msg = messages.next() => {
                let Some(msg) = msg else { return Ok(()) };
                receive(msg.get_payload_bytes(), node, local, stats, last).await;
            }
            () = topics.changed.notified() => {
                let changes = topics.changes();
                if follow(&mut sink, topics, &mut subscribed, changes.into_iter()).await.is_err() {
                    return Ok(());
                }
                stats.topics.store(subscribed.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Brings the subscriptions in line with `changes` (topic, wanted now).
async fn follow(
    sink: &mut PubSubSink,
    topics: &Topics,
    subscribed: &mut HashSet<Topic>,
    changes: impl Iterator<Item = (Topic, bool)>,
) -> Result<(), redis::RedisError> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for (topic, wanted) in changes {
        if wanted && subscribed.insert(topic) {
            on.push(topics.channel(topic));
        } else if !wanted && subscribed.remove(&topic) {
            off.push(topics.channel(topic));
        }
    }
    for chunk in on.chunks(SUBSCRIBE_CHUNK) {
        sink.subscribe(chunk).await?;
    }
    for chunk in off.chunks(SUBSCRIBE_CHUNK) {
        sink.unsubscribe(chunk).await?;
    }
    Ok(())
}

/// One message from the channel: decoded, checked against what this node
/// has heard, handed on.
async fn receive(
    bytes: &[u8],
    node: Uuid,
    local: &Local,
    stats: &BusStats,
    last: &mut HashMap<Uuid, u64>,
) {
    let got = match wire::decode_all(bytes) {
        Ok(got) => got,
        Err(e) => {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "an unreadable event on the channel");
            return;
        }
    };
    if got.node == node {
        return;
    }
    if got.n > 0 {
        let seen = last.entry(got.node).or_insert(0);
        if got.n <= *seen {
            stats.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *seen = got.n;
    }
    if got.sent_ms > 0 {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let lag_us = (now_ms - got.sent_ms).max(0).unsigned_abs() * 1000;
        stats.lag_us.fetch_add(lag_us, Ordering::Relaxed);
    }
    stats.received.fetch_add(1, Ordering::Relaxed);
    local.deliver(got.event).await;
}
