//! Prometheus metrics, served at `/metrics` in the text format: HTTP
//! requests by route and status with latency histograms, WebSocket
//! connections, event delivery, slow consumers, messages stored, and the
//! database pool.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::State;
use crate::ws::HubStats;

/// How busy a connection pool is, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolGauges {
    /// The most connections the pool opens.
    pub max: usize,
    /// Connections handed out right now.
    pub in_use: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
    /// Group commit: transactions that committed sends, so far.
    pub send_batches: u64,
    /// Group commit: sends those transactions decided, so far.
    pub batched_sends: u64,
    /// Group commit: sends refused at once because the queue was full.
    pub queue_full: u64,
}

/// The bus between server nodes, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusGauges {
    /// Whether this node hears the other nodes now.
    pub connected: bool,
    /// Events this node published to the other nodes, so far.
    pub published: u64,
    /// Events this node received from the other nodes, so far.
    pub received: u64,
    /// Events not shared with the other nodes (queue full, bus down).
    pub dropped: u64,
    /// Times the subscription was (re)established.
    pub connects: u64,
    /// The received events' lag, summed, in microseconds.
    pub lag_us: u64,
    /// Room and user channels this node listens to now.
    pub topics: u64,
    /// Copies of one event heard on two channels, skipped.
    pub duplicates: u64,
}

/// A bus shared with other nodes (Redis), for `/metrics` and `/ready`.
pub trait BusStats: Send + Sync + 'static {
    fn bus(&self) -> BusGauges;
}

/// Something with a connection pool worth watching (the PostgreSQL store).
pub trait PoolStats: Send + Sync + 'static {
    fn pool(&self) -> PoolGauges;
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route's pattern (`/api/v1/rooms/{id}`), never the raw path.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    ws_open: Gauge,
    delivered: Counter,
    dropped: Counter,
    slow_consumers: Counter,
    messages: Counter,
    pool: Family<PoolLabels, Gauge>,
    send_batches: Counter,
    batched_sends: Counter,
    queue_full: Counter,
    bus_connected: Gauge,
    bus_published: Counter,
    bus_received: Counter,
    bus_dropped: Counter,
    bus_connects: Counter,
    bus_lag_us: Counter,
    bus_topics: Gauge,
    bus_duplicates: Counter,
    gaps: Counter,
    refilled: Counter,
    /// One scrape at a time brings the mirrored counters up to date.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 8 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        let ws_open = Gauge::default();
        let delivered = Counter::default();
        let dropped = Counter::default();
        let slow_consumers = Counter::default();
        let messages = Counter::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        let send_batches = Counter::default();
        let batched_sends = Counter::default();
        let queue_full = Counter::default();
        let bus_connected = Gauge::default();
        let bus_published = Counter::default();
        let bus_received = Counter::default();
        let bus_dropped = Counter::default();
        let bus_connects = Counter::default();
        let bus_lag_us = Counter::default();
        let bus_topics = Gauge::default();
        let bus_duplicates = Counter::default();
        let gaps = Counter::default();
        let refilled = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route pattern and status",
            latency.clone(),
        );
        registry.register(
            "ws_connections",
            "WebSocket connections open on this server",
            ws_open.clone(),
        );
        registry.register(
            "ws_events_delivered",
            "Event frames queued to a WebSocket connection",
            delivered.clone(),
        );
        registry.register(
            "ws_events_dropped",
            "Event frames that found a connection's queue full",
            dropped.clone(),
        );
        registry.register(
            "ws_slow_consumer_disconnects",
            "WebSocket connections closed (1013) for not reading their events",
            slow_consumers.clone(),
        );
        registry.register(
            "messages_persisted",
            "Messages stored by sends on this server (replays of a client_msg_id not counted)",
            messages.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state: in_use, idle, waiting (requests queued for one), max",
            pool.clone(),
        );
        registry.register(
            "db_send_batches",
            "Transactions that committed message sends (group commit; sends / batches is the mean batch)",
            send_batches.clone(),
        );
        registry.register(
            "db_batched_sends",
            "Message sends decided by those transactions (stored, replayed or refused)",
            batched_sends.clone(),
        );
        registry.register(
            "db_send_queue_full",
            "Message sends answered 503 at once because the write queue was full",
            queue_full.clone(),
        );
        registry.register(
            "bus_connected",
            "1 while this node hears the other nodes through the bus (Redis), 0 while it does not",
            bus_connected.clone(),
        );
        registry.register(
            "bus_published",
            "Events this node published to the other nodes",
            bus_published.clone(),
        );
        registry.register(
            "bus_received",
            "Events this node received from the other nodes",
            bus_received.clone(),
        );
        registry.register(
            "bus_dropped",
            "Events not shared with the other nodes (queue full, or the bus down)",
            bus_dropped.clone(),
        );
        registry.register(
            "bus_connects",
            "Times this node's subscription to the bus was established (1 + reconnects)",
            bus_connects.clone(),
        );
        registry.register(
            "bus_lag_microseconds",
            "Lag of the events received from the other nodes, summed (publish to receipt); over chat_bus_received_total, the mean",
            bus_lag_us.clone(),
        );
        registry.register(
            "bus_topics",
            "Room and user channels this node listens to on the bus: those it has connections for",
            bus_topics.clone(),
        );
        registry.register(
            "bus_duplicates",
            "Second copies of an event heard on two channels this node listens to, skipped",
            bus_duplicates.clone(),
        );
        registry.register(
            "ws_gaps",
            "Room gaps (missing event versions) the hub could not wholly fill from the store; clients fill the rest from changes",
            gaps.clone(),
        );
        registry.register(
            "ws_refilled",
            "Events the bus lost that the hub read back from the store and delivered",
            refilled.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            ws_open,
            delivered,
            dropped,
            slow_consumers,
            messages,
            pool,
            send_batches,
            batched_sends,
            queue_full,
            bus_connected,
            bus_published,
            bus_received,
            bus_dropped,
            bus_connects,
            bus_lag_us,
            bus_topics,
            bus_duplicates,
            gaps,
            refilled,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            method: known_method(method),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts one stored message.
    pub(crate) fn message_persisted(&self) {
        self.messages.inc();
    }

    /// The text exposition, with the hub's, the pool's and the bus's
    /// readings as of now.
    pub fn render(
        &self,
        hub: &HubStats,
        pool: Option<PoolGauges>,
        bus: Option<BusGauges>,
    ) -> String {
        let _one_at_a_time = self.scrape.lock();
        mirror(&self.delivered, hub.delivered.load(Ordering::Relaxed));
        mirror(&self.dropped, hub.dropped.load(Ordering::Relaxed));
        mirror(
            &self.slow_consumers,
            hub.slow_consumers.load(Ordering::Relaxed),
        );
        mirror(&self.gaps, hub.gaps.load(Ordering::Relaxed));
        mirror(&self.refilled, hub.refilled.load(Ordering::Relaxed));
        self.ws_open
            .set(i64::try_from(hub.open.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        if let Some(p) = pool {
            mirror(&self.send_batches, p.send_batches);
            mirror(&self.batched_sends, p.batched_sends);
            mirror(&self.queue_full, p.queue_full);
            for (state, n) in [
                ("in_use", p.in_use),
                ("idle", p.idle),
                ("waiting", p.waiting),
                ("max", p.max),
            ] {
                self.pool
                    .get_or_create(&PoolLabels { state })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        if let Some(b) = bus {
            self.bus_connected.set(i64::from(b.connected));
            mirror(&self.bus_published, b.published);
            mirror(&self.bus_received, b.received);
            mirror(&self.bus_dropped, b.dropped);
            mirror(&self.bus_connects, b.connects);
            mirror(&self.bus_lag_us, b.lag_us);
            self.bus_topics
                .set(i64::try_from(b.topics).unwrap_or(i64::MAX));
            mirror(&self.bus_duplicates, b.duplicates);
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("could not encode the metrics");
        }
        out
    }
}

/// Brings a counter up to a total kept elsewhere.
fn mirror(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// A bounded label: the methods the API uses, else `other`.
fn known_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(state: web::Data<State>) -> HttpResponse {
    let pool = state.pool.as_ref().map(|p| p.pool());
    let bus = state.bus.as_ref().map(|b| b.bus());
    let body = state.metrics.render(&state.hub.stats, pool, bus);
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ))
        .body(body)
}
