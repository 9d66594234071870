//! One simulated client: a WebSocket connection that reads everything the server sends
//! (counting deliveries and their latency) and, when it is a sender, sends on a schedule.
//! Also the REST sender used with `--via rest`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::api::{Api, PostOutcome};
use crate::clock::{Clock, decode_content, encode_content, latency};
use crate::stats::{Counts, LatencySink, bump};
use crate::target::Target;
use crate::ws::{self, InFrame, TypeOnly};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Connecting,
    Measuring,
    Draining,
    Closing,
}

/// Live counters, read by the progress line and the drain check.
#[derive(Default)]
pub struct Live {
    pub held: AtomicU64,
    pub held_peak: AtomicU64,
    pub dropped: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub inflight: AtomicU64,
    /// Flushed by each connection after each batch of frames it reads.
    pub deliveries: AtomicU64,
}

/// Per room: connections held and messages acknowledged, for the expected-deliveries sum.
#[derive(Default)]
pub struct RoomLive {
    pub held: AtomicU64,
    pub acked: AtomicU64,
}

/// What every client task shares.
pub struct Shared {
    pub clock: Clock,
    pub run: String,
    pub target: Target,
    pub phase: watch::Sender<Phase>,
    /// Start and end of the measured window, clock nanoseconds (set before `Measuring`).
    pub t0: AtomicU64,
    pub t1: AtomicU64,
    pub live: Live,
    pub rooms: Vec<RoomLive>,
    pub pad: usize,
    pub ack_timeout: Duration,
    pub read_buffer: usize,
    pub connect_timeout: Duration,
}

impl Shared {
    fn t0(&self) -> Instant {
        self.clock.instant_at(self.t0.load(Relaxed))
    }
    fn t1(&self) -> Instant {
        self.clock.instant_at(self.t1.load(Relaxed))
    }
}

/// A sender's schedule.
#[derive(Debug, Clone)]
pub struct SenderPlan {
    /// Unique over the run; part of every `ref` / `client_msg_id`.
    pub id: usize,
    /// Time between two sends; `None`: flat out, limited only by `window`.
    pub interval: Option<Duration>,
    /// Delay of the first send after the window opens, to spread senders out.
    pub offset: Duration,
    pub max_messages: u64,
    pub window: usize,
}

/// One connection's part in the run.
pub struct ConnPlan {
    pub token: Arc<str>,
    /// Index into `Shared::rooms` and the room id, if the user is in a bench room.
    pub room: Option<(usize, Arc<str>)>,
    /// Set when this connection sends `message:send` frames.
    pub ws_sender: Option<SenderPlan>,
}

#[derive(Debug, Default)]
pub struct SenderReport {
    pub sent: u64,
    pub acked: u64,
    pub acked_in_window: u64,
    pub send_errors: Counts,
    pub ack_timeouts: u64,
    pub unacked_at_end: u64,
    pub behind_schedule: u64,
}

#[derive(Debug, Default)]
pub struct ConnReport {
    /// Index of the connection's room in `Shared::rooms`.
    pub room: Option<usize>,
    /// Why the connection could not be opened.
    pub connect_error: Option<String>,
    /// Why it went away before the bench closed it (close code or error).
    pub dropped: Option<String>,
    pub deliveries: u64,
    pub deliveries_in_window: u64,
    pub seq_gaps: u64,
    pub seq_out_of_order: u64,
    pub foreign_messages: u64,
    /// `error` frames not answering one of our sends, by code.
    pub errors: Counts,
    /// Every other server event, by type.
    pub events: Counts,
    pub sender: Option<SenderReport>,
}

struct SenderState {
    plan: SenderPlan,
    room_idx: usize,
    room_id: Arc<str>,
    /// `<run>-<sender id>-`; a send's `ref` is this plus its number.
    ref_prefix: String,
    n: u64,
    next: Option<Instant>,
    done: bool,
    inflight: HashMap<u64, u64>,
    report: SenderReport,
}

/// How late a scheduled send may go out before it counts as behind schedule.
const LATE: Duration = Duration::from_millis(10);

impl SenderState {
    /// When the next send is due, or `None` if none should happen now.
    fn due(&mut self, shared: &Shared, phase: Phase) -> Option<Instant> {
        if phase != Phase::Measuring || self.done {
            return None;
        }
        if self.n >= self.plan.max_messages || Instant::now() >= shared.t1() {
            self.done = true;
            return None;
        }
        if self.inflight.len() >= self.plan.window {
            return None; // wait for acks
        }
        let start = shared.t0() + self.plan.offset;
        Some(*self.next.get_or_insert(start))
    }

    fn new(shared: &Shared, plan: SenderPlan, room_idx: usize, room_id: Arc<str>) -> Self {
        Self {
            ref_prefix: format!("{}-{}-", shared.run, plan.id),
            plan,
            room_idx,
            room_id,
            n: 0,
            next: None,
            done: false,
            inflight: HashMap::new(),
            report: SenderReport::default(),
        }
    }

    fn make_ref(&self) -> String {
        format!("{}{}", self.ref_prefix, self.n)
    }

    /// The number of one of our sends from its `ref`.
    fn parse_ref(&self, reference: &str) -> Option<u64> {
        reference
            .strip_prefix(self.ref_prefix.as_str())?
            .parse()
            .ok()
    }

    /// After one send: the next due time.
    fn advance(&mut self, scheduled: Instant, now: Instant) {
        self.n += 1;
        self.next = Some(match self.plan.interval {
            Some(i) => {
                if now.saturating_duration_since(scheduled) > LATE {
                    self.report.behind_schedule += 1;
                }
                scheduled + i
            }
            None => now,
        });
    }
}

/// Connects, reports the outcome on `connected`, then reads (and sends, if a sender)
/// until the phase becomes `Closing` or the server drops the connection.
pub async fn run_connection(
    shared: Arc<Shared>,
    plan: ConnPlan,
    permit: OwnedSemaphorePermit,
    connected: mpsc::UnboundedSender<bool>,
    mut deliver: LatencySink,
    mut acks: LatencySink,
) -> ConnReport {
    let mut report = ConnReport {
        room: plan.room.as_ref().map(|(i, _)| *i),
        ..ConnReport::default()
    };
    let opened = ws::open(
        &shared.target,
        &plan.token,
        shared.read_buffer,
        shared.connect_timeout,
    )
    .await;
    drop(permit);
    let ws = match opened {
        Ok(ws) => ws,
        Err(why) => {
            report.connect_error = Some(why);
            let _ = connected.send(false);
            return report;
        }
    };
    let live = &shared.live;
    let held = live.held.fetch_add(1, Relaxed) + 1;
    live.held_peak.fetch_max(held, Relaxed);
    let room_idx = plan.room.as_ref().map(|(i, _)| *i);
    if let Some(i) = room_idx {
        shared.rooms[i].held.fetch_add(1, Relaxed);
    }
    let _ = connected.send(true);

    let (mut sink, mut stream) = ws.split();
    // One long-lived subscription, not a new waiter registered on every turn of the loop.
    let mut phases = std::pin::pin!(phase_changes(shared.phase.subscribe()));
    let mut phase = *shared.phase.borrow();
    let mut sender = match (plan.ws_sender, plan.room) {
        (Some(p), Some((room_idx, room_id))) => {
            Some(SenderState::new(&shared, p, room_idx, room_id))
        }
        _ => None,
    };
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    let mut next_expiry = Instant::now() + Duration::from_secs(1);

    let dropped: Option<String> = loop {
        if phase >= Phase::Closing {
            break None;
        }
        let due = sender.as_mut().and_then(|s| s.due(&shared, phase));
        let expiring = sender.as_ref().is_some_and(|s| !s.inflight.is_empty());
        tokio::select! {
            p = phases.next() => match p {
                Some(p) => phase = p,
                None => break None,
            },
            msg = stream.next() => {
                // Handle this frame and whatever else is already buffered (up to a
                // batch), then publish the counts once.
                let before = report.deliveries;
                let mut msg = msg;
                let mut handled = 0;
                let gone = loop {
                    if let Some(why) = on_message(&shared, msg, &mut report, sender.as_mut(), &mut last_seq, &mut deliver, &mut acks) {
                        break Some(why);
                    }
                    handled += 1;
                    if handled >= 64 {
                        break None;
                    }
                    match stream.next().now_or_never() {
                        Some(m) => msg = m,
                        None => break None,
                    }
                };
                live.deliveries.fetch_add(report.deliveries - before, Relaxed);
                if gone.is_some() {
                    break gone;
                }
            }
            () = sleep_until(due), if due.is_some() => {
                if let (Some(s), Some(scheduled)) = (sender.as_mut(), due) {
                    let now = Instant::now();
                    if now >= shared.t1() {
                        s.done = true;
                        continue;
                    }
                    let sent_at = shared.clock.at(now);
                    let content = encode_content(&shared.run, sent_at, shared.pad);
                    let reference = s.make_ref();
                    let frame = match ws::message_send(&s.room_id, &content, &reference) {
                        Ok(f) => f,
                        Err(_) => { s.done = true; continue; }
                    };
                    s.inflight.insert(s.n, sent_at);
                    live.inflight.fetch_add(1, Relaxed);
                    s.report.sent += 1;
                    live.sent.fetch_add(1, Relaxed);
                    s.advance(scheduled, now);
                    if let Err(e) = sink.send(Message::text(frame)).await {
                        break Some(ws::read_failure(&e));
                    }
                }
            }
            () = sleep_until(Some(next_expiry)), if expiring => {
                if let Some(s) = sender.as_mut() {
                    let now = shared.clock.now();
                    let limit = crate::clock::nanos(shared.ack_timeout);
                    let before = s.inflight.len();
                    s.inflight.retain(|_, sent| latency(*sent, now) < limit);
                    let expired = (before - s.inflight.len()) as u64;
                    s.report.ack_timeouts += expired;
                    live.inflight.fetch_sub(expired, Relaxed);
                }
                next_expiry = Instant::now() + Duration::from_secs(1);
            }
        }
    };

    if let Some(s) = sender.as_mut() {
        let left = s.inflight.len() as u64;
        s.report.unacked_at_end = left;
        live.inflight.fetch_sub(left, Relaxed);
        s.inflight.clear();
    }
    report.sender = sender.map(|s| s.report);
    live.held.fetch_sub(1, Relaxed);
    if let Some(i) = room_idx {
        shared.rooms[i].held.fetch_sub(1, Relaxed);
    }
    match dropped {
        Some(why) => {
            live.dropped.fetch_add(1, Relaxed);
            report.dropped = Some(why);
        }
        None => {
            // Our own close: say goodbye and give the server a moment to answer.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bench done".into(),
                    })))
                    .await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
    }
    deliver.flush();
    acks.flush();
    report
}

/// The phase each time it changes; ends when the run's sender is gone.
fn phase_changes(rx: watch::Receiver<Phase>) -> impl futures_util::Stream<Item = Phase> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let p = *rx.borrow_and_update();
        Some((p, rx))
    })
}

/// One read from the socket; `Some(reason)` when the connection is gone.
fn on_message(
    shared: &Shared,
    msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    report: &mut ConnReport,
    sender: Option<&mut SenderState>,
    last_seq: &mut HashMap<String, u64>,
    deliver: &mut LatencySink,
    acks: &mut LatencySink,
) -> Option<String> {
    match msg {
        Some(Ok(Message::Text(text))) => {
            on_text(
                shared,
                text.as_str(),
                report,
                sender,
                last_seq,
                deliver,
                acks,
            );
            None
        }
        Some(Ok(Message::Close(frame))) => Some(ws::close_key(frame.as_ref())),
        Some(Ok(Message::Binary(_))) => {
            bump(&mut report.errors, "binary_frame");
            None
        }
        Some(Ok(_)) => None, // ping (answered by tungstenite as we read), pong
        Some(Err(e)) => Some(ws::read_failure(&e)),
        None => Some("eof".to_owned()),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

fn on_text(
    shared: &Shared,
    text: &str,
    report: &mut ConnReport,
    sender: Option<&mut SenderState>,
    last_seq: &mut HashMap<String, u64>,
    deliver: &mut LatencySink,
    acks: &mut LatencySink,
) {
    let live = &shared.live;
    let frame: InFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(_) => {
            match serde_json::from_str::<TypeOnly>(text) {
                Ok(t) => bump(&mut report.events, &t.kind),
                Err(_) => bump(&mut report.errors, "bad_frame"),
            }
            return;
        }
    };
    match frame.kind.as_ref() {
        "message:new" => {
            let now = shared.clock.now();
            let Some(msg) = frame.payload.and_then(|p| p.message) else {
                bump(&mut report.errors, "message_new_without_message");
                return;
            };
            let Some(sent) = msg
                .content
                .as_deref()
                .and_then(|c| decode_content(c, &shared.run))
            else {
                report.foreign_messages += 1;
                return;
            };
            report.deliveries += 1;
            if now <= shared.t1.load(Relaxed) {
                report.deliveries_in_window += 1;
            }
            deliver.record(latency(sent, now));
            if let (Some(room), Some(seq)) = (msg.room_id, msg.seq) {
                match last_seq.get_mut(room.as_ref()) {
                    Some(last) => {
                        if seq == *last + 1 {
                        } else if seq > *last {
                            report.seq_gaps += seq - *last - 1;
                        } else {
                            report.seq_out_of_order += 1;
                        }
                        *last = (*last).max(seq);
                    }
                    None => {
                        last_seq.insert(room.into_owned(), seq);
                    }
                }
            }
        }
        "ack" | "error" => {
            let is_ack = frame.kind == "ack";
            let ours = match (sender, frame.reference.as_deref()) {
                (Some(s), Some(r)) => match s.parse_ref(r).and_then(|n| s.inflight.remove(&n)) {
                    Some(sent) => {
                        live.inflight.fetch_sub(1, Relaxed);
                        Some((s, sent))
                    }
                    None => None,
                },
                _ => None,
            };
            let code = frame
                .payload
                .as_ref()
                .and_then(|p| p.code.as_deref())
                .unwrap_or("no_code")
                .to_owned();
            match (ours, is_ack) {
                (Some((s, sent)), true) => {
                    let now = shared.clock.now();
                    s.report.acked += 1;
                    live.acked.fetch_add(1, Relaxed);
                    shared.rooms[s.room_idx].acked.fetch_add(1, Relaxed);
                    if now <= shared.t1.load(Relaxed) {
                        s.report.acked_in_window += 1;
                    }
                    acks.record(latency(sent, now));
                }
                (Some((s, _)), false) => bump(&mut s.report.send_errors, &code),
                (None, true) => bump(&mut report.events, "ack_unmatched"),
                (None, false) => bump(&mut report.errors, &code),
            }
        }
        other => bump(&mut report.events, other),
    }
}

/// `--via rest`: posts on the sender's schedule, up to `window` requests in flight.
pub async fn run_rest_sender(
    shared: Arc<Shared>,
    api: Api,
    token: Arc<str>,
    room_idx: usize,
    room_id: Arc<str>,
    plan: SenderPlan,
    mut acks: LatencySink,
) -> SenderReport {
    let mut phase_rx = shared.phase.subscribe();
    if phase_rx.wait_for(|p| *p >= Phase::Measuring).await.is_err() {
        return SenderReport::default();
    }
    let mut state = SenderState::new(&shared, plan, room_idx, room_id);
    let mut pending = FuturesUnordered::new();
    let live = &shared.live;
    loop {
        let phase = *phase_rx.borrow_and_update();
        if phase >= Phase::Closing {
            break;
        }
        // `inflight` is not used for REST: the window is the number of pending requests.
        let due = if pending.len() < state.plan.window {
            state.due(&shared, phase)
        } else {
            None
        };
        if due.is_none() && pending.is_empty() && (state.done || phase > Phase::Measuring) {
            break;
        }
        tokio::select! {
            changed = phase_rx.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some((sent, outcome)) = pending.next(), if !pending.is_empty() => {
                live.inflight.fetch_sub(1, Relaxed);
                match outcome {
                    PostOutcome::Created => {
                        let now = shared.clock.now();
                        state.report.acked += 1;
                        live.acked.fetch_add(1, Relaxed);
                        shared.rooms[room_idx].acked.fetch_add(1, Relaxed);
                        if now <= shared.t1.load(Relaxed) {
                            state.report.acked_in_window += 1;
                        }
                        acks.record(latency(sent, now));
                    }
                    PostOutcome::Failed(code) => bump(&mut state.report.send_errors, &code),
                }
            }
            () = sleep_until(due), if due.is_some() => {
                if let Some(scheduled) = due {
                    let now = Instant::now();
                    if now >= shared.t1() {
                        state.done = true;
                        continue;
                    }
                    let sent_at = shared.clock.at(now);
                    let content = encode_content(&shared.run, sent_at, shared.pad);
                    let reference = state.make_ref();
                    let (api, token, room) = (api.clone(), token.clone(), state.room_id.clone());
                    pending.push(async move {
                        let out = api.post_message(&token, &room, &content, &reference).await;
                        (sent_at, out)
                    });
                    state.report.sent += 1;
                    live.sent.fetch_add(1, Relaxed);
                    live.inflight.fetch_add(1, Relaxed);
                    state.advance(scheduled, now);
                }
            }
        }
    }
    let left = pending.len() as u64;
    state.report.unacked_at_end = left;
    live.inflight.fetch_sub(left, Relaxed);
    acks.flush();
    state.report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Result<Shared, url::ParseError> {
        let (phase, _) = watch::channel(Phase::Connecting);
        Ok(Shared {
            clock: Clock::new(),
            run: "abc123".into(),
            target: Target {
                origin: url::Url::parse("http://127.0.0.1:1")?,
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
                ws_url: "ws://127.0.0.1:1/api/v1/ws".into(),
            },
            phase,
            t0: AtomicU64::new(0),
            t1: AtomicU64::new(u64::MAX / 2),
            live: Live::default(),
            rooms: vec![RoomLive::default()],
            pad: 0,
            ack_timeout: Duration::from_secs(10),
            read_buffer: 4096,
            connect_timeout: Duration::from_secs(1),
        })
    }

    fn plan(interval: Option<Duration>, window: usize) -> SenderPlan {
        SenderPlan {
            id: 17,
            interval,
            offset: Duration::ZERO,
            max_messages: 3,
            window,
        }
    }

    #[test]
    fn refs_round_trip_and_foreign_refs_are_ignored() -> anyhow::Result<()> {
        let sh = shared()?;
        let mut s = SenderState::new(&sh, plan(None, 4), 0, "room".into());
        s.n = 42;
        let r = s.make_ref();
        assert_eq!(r, "abc123-17-42");
        assert_eq!(s.parse_ref(&r), Some(42));
        assert_eq!(s.parse_ref("abc123-1-42"), None);
        assert_eq!(s.parse_ref("abc123-17-x"), None);
        assert_eq!(s.parse_ref("zzz-17-42"), None);
        assert!(r.len() <= 64);
        Ok(())
    }

    #[test]
    fn schedule_respects_phase_window_and_cap() -> anyhow::Result<()> {
        let sh = shared()?;
        let mut s = SenderState::new(
            &sh,
            plan(Some(Duration::from_millis(10)), 2),
            0,
            "room".into(),
        );
        assert_eq!(s.due(&sh, Phase::Connecting), None);
        let first = s
            .due(&sh, Phase::Measuring)
            .ok_or_else(|| anyhow::anyhow!("not due"))?;
        s.inflight.insert(0, 0);
        s.advance(first, first);
        let second = s
            .due(&sh, Phase::Measuring)
            .ok_or_else(|| anyhow::anyhow!("not due"))?;
        assert_eq!(second - first, Duration::from_millis(10));
        s.inflight.insert(1, 0);
        // Window of 2 is full.
        assert_eq!(s.due(&sh, Phase::Measuring), None);
        s.inflight.clear();
        s.advance(second, second + Duration::from_millis(50));
        assert_eq!(s.report.behind_schedule, 1);
        s.advance(second, second);
        // Cap of 3 reached.
        assert_eq!(s.due(&sh, Phase::Measuring), None);
        assert!(s.done);
        Ok(())
    }

    #[tokio::test]
    async fn deliveries_are_counted_with_seq_checks() -> anyhow::Result<()> {
        let sh = shared()?;
        let agg = crate::stats::Aggregator::spawn(crate::stats::Latency::new()?);
        let (mut d, mut a) = (agg.sink(), agg.sink());
        let mut r = ConnReport::default();
        let mut seqs = HashMap::new();
        let frame = |seq: u64, content: &str| {
            format!(
                r#"{{"type":"message:new","payload":{{"message":{{"room_id":"r","seq":{seq},"content":"{content}"}}}}}}"#
            )
        };
        let mine = encode_content("abc123", 0, 0);
        for seq in [1, 2, 4, 3] {
            on_text(
                &sh,
                &frame(seq, &mine),
                &mut r,
                None,
                &mut seqs,
                &mut d,
                &mut a,
            );
        }
        on_text(
            &sh,
            &frame(5, "hello"),
            &mut r,
            None,
            &mut seqs,
            &mut d,
            &mut a,
        );
        on_text(
            &sh,
            r#"{"type":"presence","payload":{"user_id":"u"}}"#,
            &mut r,
            None,
            &mut seqs,
            &mut d,
            &mut a,
        );
        on_text(
            &sh,
            r#"{"type":"error","payload":{"code":"bad_json","error":"x"}}"#,
            &mut r,
            None,
            &mut seqs,
            &mut d,
            &mut a,
        );
        on_text(&sh, "not json", &mut r, None, &mut seqs, &mut d, &mut a);
        assert_eq!(r.deliveries, 4);
        assert_eq!(r.seq_gaps, 1);
        assert_eq!(r.seq_out_of_order, 1);
        assert_eq!(r.foreign_messages, 1);
        assert_eq!(r.events.get("presence"), Some(&1));
        assert_eq!(r.errors.get("bad_json"), Some(&1));
        assert_eq!(r.errors.get("bad_frame"), Some(&1));
        Ok(())
    }

    #[tokio::test]
    async fn acks_and_errors_settle_our_sends() -> anyhow::Result<()> {
        let sh = shared()?;
        let agg = crate::stats::Aggregator::spawn(crate::stats::Latency::new()?);
        let (mut d, mut a) = (agg.sink(), agg.sink());
        let mut r = ConnReport::default();
        let mut seqs = HashMap::new();
        let mut s = SenderState::new(&sh, plan(None, 8), 0, "room".into());
        s.inflight.insert(0, 0);
        s.inflight.insert(1, 0);
        sh.live.inflight.store(2, Relaxed);
        let ack = r#"{"type":"ack","ref":"abc123-17-0","payload":{"message":{"room_id":"room","seq":1,"content":"x"}}}"#;
        let err =
            r#"{"type":"error","ref":"abc123-17-1","payload":{"code":"validation","error":"x"}}"#;
        let stray = r#"{"type":"ack","ref":"abc123-17-9","payload":{}}"#;
        on_text(&sh, ack, &mut r, Some(&mut s), &mut seqs, &mut d, &mut a);
        on_text(&sh, err, &mut r, Some(&mut s), &mut seqs, &mut d, &mut a);
        on_text(&sh, stray, &mut r, Some(&mut s), &mut seqs, &mut d, &mut a);
        assert_eq!(s.report.acked, 1);
        assert_eq!(s.report.send_errors.get("validation"), Some(&1));
        assert!(s.inflight.is_empty());
        assert_eq!(sh.live.inflight.load(Relaxed), 0);
        assert_eq!(sh.rooms[0].acked.load(Relaxed), 1);
        assert_eq!(r.events.get("ack_unmatched"), Some(&1));
        Ok(())
    }

    /// A stand-in gateway: `hello`, then for every `message:send` an `ack` echoing `ref`
    /// and a `message:new` with the same content and the next seq.
    async fn echo_gateway() -> anyhow::Result<Target> {
        crate::ws::tests::fake_gateway(|_, tcp| async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
            let (mut tx, mut rx) = ws.split();
            let _ = tx.send(Message::text(r#"{"type":"hello","payload":{"user":{},"session_id":"s"}}"#)).await;
            let mut seq = 0;
            while let Some(Ok(Message::Text(t))) = rx.next().await {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else { continue };
                seq += 1;
                let message = serde_json::json!({
                    "room_id": v["payload"]["room_id"], "seq": seq, "content": v["payload"]["content"],
                });
                let ack = serde_json::json!({"type": "ack", "ref": v["ref"], "payload": {"message": message}});
                let new = serde_json::json!({"type": "message:new", "payload": {"message": message}});
                let _ = tx.send(Message::text(ack.to_string())).await;
                let _ = tx.send(Message::text(new.to_string())).await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_sending_connection_against_an_echo_gateway() -> anyhow::Result<()> {
        let target = echo_gateway().await?;
        let mut sh = shared()?;
        sh.target = target;
        let sh = Arc::new(sh);
        let deliveries = crate::stats::Aggregator::spawn(crate::stats::Latency::new()?);
        let acks = crate::stats::Aggregator::spawn(crate::stats::Latency::new()?);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let permit = Arc::new(tokio::sync::Semaphore::new(1))
            .acquire_owned()
            .await?;
        let plan = ConnPlan {
            token: "tok".into(),
            room: Some((0, "room-1".into())),
            ws_sender: Some(SenderPlan {
                id: 0,
                interval: Some(Duration::from_millis(5)),
                offset: Duration::ZERO,
                max_messages: 20,
                window: 4,
            }),
        };
        let task = tokio::spawn(run_connection(
            sh.clone(),
            plan,
            permit,
            tx,
            deliveries.sink(),
            acks.sink(),
        ));
        assert_eq!(rx.recv().await, Some(true));
        let now = sh.clock.now();
        sh.t0.store(now, Relaxed);
        sh.t1.store(now + 10_000_000_000, Relaxed);
        let _ = sh.phase.send(Phase::Measuring);
        tokio::time::timeout(Duration::from_secs(5), async {
            while sh.live.acked.load(Relaxed) < 20 || sh.live.deliveries.load(Relaxed) < 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await?;
        let _ = sh.phase.send(Phase::Closing);
        let report = task.await?;
        let s = report
            .sender
            .ok_or_else(|| anyhow::anyhow!("no sender report"))?;
        assert_eq!((s.sent, s.acked, s.unacked_at_end), (20, 20, 0));
        assert_eq!(report.deliveries, 20);
        assert_eq!((report.seq_gaps, report.seq_out_of_order), (0, 0));
        assert_eq!(report.dropped, None);
        assert_eq!(sh.rooms[0].acked.load(Relaxed), 20);
        assert_eq!(sh.live.held.load(Relaxed), 0);
        assert_eq!(deliveries.finish().await?.summary().count, 20);
        assert_eq!(acks.finish().await?.summary().count, 20);
        Ok(())
    }
}
