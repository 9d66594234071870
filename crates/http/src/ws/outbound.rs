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

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_http::ws::{CloseReason, OpCode, Parser};
use actix_web::body::BoxBody;
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use tokio::sync::mpsc;

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

/// How far behind a connection is, shared by the hub (which adds) and the
/// body (which drains).
#[derive(Default)]
struct Backlog {
    bytes: AtomicUsize,
    /// When the body last wrote, in [`now_ms`].
    drained_ms: AtomicU64,
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
    tx: mpsc::UnboundedSender<ByteString>,
    backlog: std::sync::Arc<Backlog>,
    max_bytes: usize,
}

impl Outbox {
    /// Queues a frame, unless the connection is too far behind; `now` is
    /// [`now_ms`], read by the caller once for many pushes.
    pub fn push(&self, frame: &ByteString, now: u64) -> Result<(), Refused> {
        let waiting = self.backlog.bytes.load(Ordering::Relaxed);
        if waiting == 0 {
            // Nothing was waiting: the clock starts now.
            self.backlog.drained_ms.store(now, Ordering::Relaxed);
        } else {
            let idle = now.saturating_sub(self.backlog.drained_ms.load(Ordering::Relaxed));
            if waiting + frame.len() > self.max_bytes || idle >= STALLED.as_millis() as u64 {
                return Err(Refused::Slow);
            }
        }
        self.backlog.bytes.fetch_add(frame.len(), Ordering::Relaxed);
        self.tx.send(frame.clone()).map_err(|_| Refused::Closed)
    }

    /// Bytes waiting to be written.
    pub fn waiting(&self) -> usize {
        self.backlog.bytes.load(Ordering::Relaxed)
    }
}

/// An outbox whose frames the test reads as they are queued (never counted
/// as drained).
#[cfg(test)]
pub fn bare() -> (Outbox, mpsc::UnboundedReceiver<ByteString>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let outbox = Outbox {
        tx,
        backlog: std::sync::Arc::default(),
        max_bytes: usize::MAX,
    };
    (outbox, rx)
}

/// The body: the events queued by the hub and what the task says, framed.
pub struct Outbound {
    events: mpsc::UnboundedReceiver<ByteString>,
    said: mpsc::Receiver<Say>,
    backlog: std::sync::Arc<Backlog>,
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

/// A connection's queues: the hub's end, the task's end, and the body.
pub fn queues(max_bytes: usize, said: usize) -> (Outbox, mpsc::Sender<Say>, Outbound) {
    let (tx, events) = mpsc::unbounded_channel();
    let (say, said) = mpsc::channel(said.max(1));
    let backlog = std::sync::Arc::new(Backlog {
        bytes: AtomicUsize::new(0),
        drained_ms: AtomicU64::new(now_ms()),
    });
    (
        Outbox {
            tx,
            backlog: backlog.clone(),
            max_bytes,
        },
        say,
        Outbound {
            events,
            said,
            backlog,
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

    fn frame(&mut self, say: Say) {
        match say {
            Say::Text(text) => {
                Parser::write_message(&mut self.buf, text.as_bytes(), OpCode::Text, true, false)
            }
            Say::Ping => Parser::write_message(&mut self.buf, b"", OpCode::Ping, true, false),
            Say::Pong(bytes) => {
                let bytes = bytes.slice(..bytes.len().min(125));
                Parser::write_message(&mut self.buf, bytes, OpCode::Pong, true, false);
            }
            Say::Close(reason) => {
                Parser::write_close(&mut self.buf, reason, false);
                self.closing = true;
            }
        }
    }
}

impl Stream for Outbound {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // What the task says goes first.
        while !this.closing {
            match this.said.poll_recv(cx) {
                Poll::Ready(Some(say)) => {
                    this.frame(say);
                    this.opened = true;
                }
                Poll::Ready(None) => this.closing = true,
                Poll::Pending => break,
            }
        }
        if !this.closing && this.opened {
            let mut drained = 0;
            while this.buf.len() < MAX_WRITE {
                match this.events.poll_recv(cx) {
                    Poll::Ready(Some(text)) => {
                        drained += text.len();
                        Parser::write_message(
                            &mut this.buf,
                            text.as_bytes(),
                            OpCode::Text,
                            true,
                            false,
                        );
                    }
                    // The hub let go: the task closes the connection.
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            if drained > 0 {
                this.backlog.bytes.fetch_sub(drained, Ordering::Relaxed);
                this.backlog.drained_ms.store(now_ms(), Ordering::Relaxed);
            }
        }
        if !this.buf.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.buf).freeze())));
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
        say.send(Say::Text(text("hello"))).await.unwrap();
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
        say.send(Say::Text(text("ack"))).await.unwrap();
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
        say.send(Say::Text(text("hello"))).await.unwrap();
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
        say.send(Say::Close(Some(CloseReason {
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
