//! The server-to-client half of a WebSocket: the response body itself.
//!
//! The hub puts each event's frame (serialised once, shared by every
//! recipient) into the connection's queue; the body drains whatever is
//! queued when actix polls it, frames it all into one buffer and hands that
//! over as one write: one socket write per wake-up, however many frames
//! came, and no task of ours in between. The connection's task (replies,
//! pings, the closing handshake) has a small queue of its own that goes
//! first, so an `ack` or a Close never waits behind a backlog of events.
//!
//! A connection is slow when the bytes waiting for it pass a budget, or
//! when it has had frames waiting and drained none for [`STALLED`]: then
//! the hub closes it (1013). A client that keeps up never gets there,
//! whatever the burst; one that stops reading gets there alone.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::body::BoxBody;
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

/// A connection with frames waiting and none written for this long is
/// closed as slow.
pub const STALLED: Duration = Duration::from_secs(10);

/// One write gathers at most about this much.
const MAX_WRITE: usize = 256 * 1024;

/// What the connection's own task says to the client.
#[derive(Debug)]
pub enum Say {
    Text(ByteString),
    Ping,
    Pong(Bytes),
    /// The last frame: the body ends after it.
    Close(Option<CloseReason>),
}

/// Milliseconds since the process's first use of this clock: what the hub
/// reads once per event and hands to every [`Outbox::push`] of it.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection's two queues, behind one lock. Plain `VecDeque`s: an idle
/// connection holds no buffer until something is queued (a channel would
/// allocate a block of slots for each connection up front).
#[derive(Default)]
struct Queues {
    events: VecDeque<ByteString>,
    said: VecDeque<Say>,
    /// The body is gone (the socket closed): nothing more is taken.
    body_gone: bool,
    /// The task is gone: the body ends once it has written what was said.
    task_gone: bool,
}

/// What the hub, the task and the body share.
struct Shared {
    queues: Mutex<Queues>,
    /// Wakes the body when something is queued.
    body: AtomicWaker,
    /// Wakes the task when the body has made room in `said`.
    room: Notify,
    /// Bytes of events waiting.
    bytes: AtomicUsize,
    /// When the body last wrote (or the backlog began), in [`now_ms`].
    drained_ms: AtomicU64,
    said_max: usize,
}

impl Shared {
    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        // A panic while holding the lock cannot leave the queues half
        // changed (each change is one push or pop): go on with them.
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a frame could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The connection is too far behind: close it (1013).
    Slow,
    /// The connection is gone.
    Closed,
}

/// The hub's end of a connection's queue.
pub struct Outbox {
    shared: Arc<Shared>,
    max_bytes: usize,
}

impl Outbox {
    /// Queues a frame, unless the connection is too far behind; `now` is
    /// [`now_ms`], read by the caller once for many pushes.
    pub fn push(&self, frame: &ByteString, now: u64) -> Result<(), Refused> {
        let s = &self.shared;
        let waiting = s.bytes.load(Ordering::Relaxed);
        if waiting == 0 {
            // Nothing was waiting: the clock starts now.
            s.drained_ms.store(now, Ordering::Relaxed);
        } else {
            let idle = now.saturating_sub(s.drained_ms.load(Ordering::Relaxed));
            if waiting + frame.len() > self.max_bytes || idle >= STALLED.as_millis() as u64 {
                return Err(Refused::Slow);
            }
        }
        {
            let mut q = s.queues();
            if q.body_gone {
                return Err(Refused::Closed);
            }
            q.events.push_back(frame.clone());
        }
        s.bytes.fetch_add(frame.len(), Ordering::Relaxed);
        s.body.wake();
        Ok(())
    }

    /// Bytes waiting to be written.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }
}

/// The task's end: what it says goes out ahead of the events.
pub struct Mouth {
    shared: Arc<Shared>,
}

/// The body is gone: nothing can be said any more.
#[derive(Debug)]
pub struct Gone;

impl Mouth {
    /// Queues something to say; waits while `said` is full (the client
    /// does not read), fails once the body is gone.
    pub async fn say(&self, say: Say) -> Result<(), Gone> {
        let s = &self.shared;
        loop {
            let room = s.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut q = s.queues();
                if q.body_gone {
                    return Err(Gone);
                }
                if q.said.len() < s.said_max {
                    q.said.push_back(say);
                    drop(q);
                    s.body.wake();
                    return Ok(());
                }
            }
            room.await;
        }
    }
}

impl Drop for Mouth {
    fn drop(&mut self) {
        self.shared.queues().task_gone = true;
        self.shared.body.wake();
    }
}

/// The body: the events queued by the hub and what the task says, framed.
pub struct Outbound {
    shared: Arc<Shared>,
    buf: BytesMut,
    closing: bool,
    /// Whether the task has said its first frame (`hello`): events wait
    /// until then, so that `hello` is always first.
    opened: bool,
    /// actix-ws's own body, never polled, kept while this one lives: its
    /// drop is what tells actix-ws's reading half that the connection is
    /// over.
    theirs: Option<BoxBody>,
}

impl Drop for Outbound {
    fn drop(&mut self) {
        let mut q = self.shared.queues();
        q.body_gone = true;
        q.events.clear();
        q.said.clear();
        drop(q);
        self.shared.room.notify_waiters();
    }
}

/// An outbox whose frames a test reads one by one, as from a channel
/// (never counted as drained).
#[cfg(test)]
pub fn bare() -> (Outbox, TestQueue) {
    let (outbox, mouth, body) = queues(usize::MAX, 8);
    let shared = outbox.shared.clone();
    (
        outbox,
        TestQueue {
            shared,
            _mouth: mouth,
            _body: body,
        },
    )
}

/// The frames a [`bare`] outbox queued.
#[cfg(test)]
pub struct TestQueue {
    shared: Arc<Shared>,
    _mouth: Mouth,
    _body: Outbound,
}

#[cfg(test)]
impl TestQueue {
    pub async fn recv(&mut self) -> Option<ByteString> {
        std::future::poll_fn(|cx| {
            self.shared.body.register(cx.waker());
            match self.shared.queues().events.pop_front() {
                Some(frame) => Poll::Ready(Some(frame)),
                None => Poll::Pending,
            }
        })
        .await
    }
}

/// A connection's queues: the hub's end, the task's end, and the body.
pub fn queues(max_bytes: usize, said: usize) -> (Outbox, Mouth, Outbound) {
    let shared = Arc::new(Shared {
        queues: Mutex::default(),
        body: AtomicWaker::new(),
        room: Notify::new(),
        bytes: AtomicUsize::new(0),
        drained_ms: AtomicU64::new(now_ms()),
        said_max: said.max(1),
    });
    (
        Outbox {
            shared: shared.clone(),
            max_bytes,
        },
        Mouth {
            shared: shared.clone(),
        },
        Outbound {
            shared,
            buf: BytesMut::new(),
            closing: false,
            opened: false,
            theirs: None,
        },
    )
}

impl Outbound {
    /// Keeps actix-ws's own response body alive as long as this one.
    pub fn keeping(mut self, theirs: BoxBody) -> Self {
        self.theirs = Some(theirs);
        self
    }

    fn frame(buf: &mut BytesMut, say: Say) -> bool {
        match say {
            Say::Text(text) => {
                Parser::write_message(buf, text.as_bytes(), OpCode::Text, true, false)
            }
            Say::Ping => Parser::write_message(buf, b"", OpCode::Ping, true, false),
            Say::Pong(bytes) => {
                let bytes = bytes.slice(..bytes.len().min(125));
                Parser::write_message(buf, bytes, OpCode::Pong, true, false);
            }
            Say::Close(reason) => {
                Parser::write_close(buf, reason, false);
                return true;
            }
        }
        false
    }
}

impl Stream for Outbound {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.closing {
            this.shared.body.register(cx.waker());
            let shared = &this.shared;
            let mut q = shared.queues();
            // What the task says goes first.
            let said_any = !q.said.is_empty();
            while let Some(say) = q.said.pop_front() {
                this.opened = true;
                if Self::frame(&mut this.buf, say) {
                    this.closing = true;
                    break;
                }
            }
            if q.task_gone && q.said.is_empty() {
                this.closing = true;
            }
            let mut drained = 0;
            if !this.closing && this.opened {
                while this.buf.len() < MAX_WRITE {
                    let Some(text) = q.events.pop_front() else {
                        break;
                    };
                    drained += text.len();
                    Parser::write_message(
                        &mut this.buf,
                        text.as_bytes(),
                        OpCode::Text,
                        true,
                        false,
                    );
                }
                if q.events.is_empty() && q.events.capacity() > 64 {
                    // A burst is over: give its buffer back.
                    q.events = VecDeque::new();
                }
            }
            drop(q);
            if drained > 0 {
                shared.bytes.fetch_sub(drained, Ordering::Relaxed);
                shared.drained_ms.store(now_ms(), Ordering::Relaxed);
            }
            if said_any {
                shared.room.notify_waiters();
            }
        }
        if !this.buf.is_empty() {
            let out = std::mem::take(&mut this.buf).freeze();
            if out.len() >= MAX_WRITE {
                // More may be queued: come back at once.
                cx.waker().wake_by_ref();
            }
            return Poll::Ready(Some(Ok(out)));
        }
        if this.closing {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn text(s: &str) -> ByteString {
        ByteString::from(s.to_owned())
    }

    /// Reads the WebSocket frames back out of one write: (opcode, payload).
    fn frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let op = b[0] & 0x0f;
            let (len, head) = match b[1] & 0x7f {
                126 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            out.push((op, b[head..head + len].to_vec()));
            b = &b[head + len..];
        }
        out
    }

    #[tokio::test]
    async fn no_event_goes_before_the_first_thing_the_task_says() {
        let (outbox, say, mut body) = queues(1 << 20, 8);
        outbox.push(&text("early event"), now_ms()).unwrap();
        let waiting = futures_util::poll!(body.next());
        assert!(waiting.is_pending(), "the event waits for hello");
        say.say(Say::Text(text("hello"))).await.unwrap();
        let write = body.next().await.unwrap().unwrap();
        assert_eq!(
            frames(&write),
            vec![(1, b"hello".to_vec()), (1, b"early event".to_vec())]
        );
    }

    #[tokio::test]
    async fn everything_queued_goes_out_in_one_write_replies_first() {
        let (outbox, say, mut body) = queues(1 << 20, 8);
        for i in 0..100 {
            outbox.push(&text(&format!("event {i}")), now_ms()).unwrap();
        }
        say.say(Say::Text(text("ack"))).await.unwrap();
        let write = body.next().await.unwrap().unwrap();
        let got = frames(&write);
        assert_eq!(got.len(), 101, "one write for every frame queued");
        assert_eq!(got[0], (1, b"ack".to_vec()), "the reply first");
        assert_eq!(got[100], (1, b"event 99".to_vec()));
        assert_eq!(outbox.waiting(), 0, "drained");
    }

    #[tokio::test]
    async fn a_connection_past_its_byte_budget_is_slow_and_one_that_drains_is_not() {
        let (outbox, say, mut body) = queues(1000, 8);
        say.say(Say::Text(text("hello"))).await.unwrap();
        let frame = text(&"x".repeat(300));
        for _ in 0..3 {
            outbox.push(&frame, now_ms()).unwrap();
        }
        assert_eq!(
            outbox.push(&frame, now_ms()),
            Err(Refused::Slow),
            "1,200 bytes > 1,000"
        );
        // A reader that keeps up never gets there, however much goes by.
        let _ = body.next().await.unwrap().unwrap();
        assert_eq!(outbox.waiting(), 0);
        for _ in 0..100 {
            for _ in 0..3 {
                outbox.push(&frame, now_ms()).unwrap();
            }
            // (tokio's cooperative budget may end a drain early: the body
            // is woken again at once.)
            while outbox.waiting() > 0 {
                let _ = body.next().await.unwrap().unwrap();
            }
        }
    }

    #[test]
    fn a_connection_that_writes_nothing_for_a_while_is_slow() {
        let (outbox, _say, _body) = queues(1 << 20, 8);
        let frame = text("tiny");
        outbox.push(&frame, 1_000).unwrap();
        let stalled = STALLED.as_millis() as u64;
        outbox.push(&frame, 1_000 + stalled - 1).unwrap();
        assert_eq!(outbox.push(&frame, 1_000 + stalled), Err(Refused::Slow));
    }

    #[tokio::test]
    async fn a_close_ends_the_body_and_drops_the_backlog() {
        let (outbox, say, mut body) = queues(1 << 20, 8);
        outbox.push(&text("never sent"), now_ms()).unwrap();
        say.say(Say::Close(Some(CloseReason {
            code: actix_http::ws::CloseCode::Again,
            description: None,
        })))
        .await
        .unwrap();
        let write = body.next().await.unwrap().unwrap();
        assert_eq!(frames(&write), vec![(8, 1013u16.to_be_bytes().to_vec())]);
        assert!(body.next().await.is_none(), "nothing after the Close");
    }
}
