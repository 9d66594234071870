//! [`LocalBus`]: the in-process adapter of the `EventBus` port. Every event
//! published in this process reaches every subscriber in this process, in
//! publication order. One server node needs nothing more; several nodes need
//! a shared bus (Redis) behind the same port.
//!
//! Each subscriber has its own bounded queue ([`SUBSCRIPTION_QUEUE`]):
//! nothing is dropped, and a publisher waits only when a subscriber (the
//! gateway's hub, which only sorts and hands events on) has fallen that far
//! behind. This crate knows `chat-ports` and tokio, nothing of HTTP or
//! storage.

use std::sync::Mutex;

use async_trait::async_trait;
use chat_ports::{Event, EventBus, EventStream};
use tokio::sync::mpsc;

/// The in-process bus.
/// Events a subscriber may have waiting; past it, publishing waits for
/// the subscriber (the gateway's hub) to catch up: back-pressure, not an
/// unbounded queue.
pub const SUBSCRIPTION_QUEUE: usize = 16_384;

#[derive(Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: Event) {
        // Forget subscribers that are gone; the last one takes the event
        // itself rather than a clone.
        let subs: Vec<mpsc::Sender<Event>> = match self.subscribers.lock() {
            Ok(mut subs) => {
                subs.retain(|s| !s.is_closed());
                subs.clone()
            }
            Err(_) => return,
        };
        if let Some((last, rest)) = subs.split_last() {
            for s in rest {
                let _ = s.send(event.clone()).await;
            }
            let _ = last.send(event).await;
        }
    }

    fn subscribe(&self) -> Box<dyn EventStream> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        Box::new(Subscription(rx))
    }
}

struct Subscription(mpsc::Receiver<Event>);

#[async_trait]
impl EventStream for Subscription {
    async fn next(&mut self) -> Option<Event> {
        self.0.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_domain::{RoomId, UserId};
    use uuid::Uuid;

    fn read(n: u64) -> Event {
        Event::Read {
            room_id: RoomId(Uuid::nil()),
            user_id: UserId(Uuid::nil()),
            seq: n,
        }
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let bus = LocalBus::new();
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        for n in 1..=3 {
            bus.publish(read(n)).await;
        }
        for s in [&mut a, &mut b] {
            for n in 1..=3 {
                assert_eq!(s.next().await, Some(read(n)));
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_hears_only_what_comes_after_it() {
        let bus = LocalBus::new();
        bus.publish(read(1)).await;
        let mut s = bus.subscribe();
        bus.publish(read(2)).await;
        assert_eq!(s.next().await, Some(read(2)));
    }

    #[tokio::test]
    async fn a_dropped_subscriber_is_forgotten() {
        let bus = LocalBus::new();
        let s = bus.subscribe();
        drop(s);
        bus.publish(read(1)).await;
        assert_eq!(bus.subscribers.lock().unwrap().len(), 0);
    }

    /// A subscriber that falls behind by a full queue holds the next
    /// publish back until it takes an event: nothing is dropped and nothing
    /// piles up past the bound.
    #[tokio::test]
    async fn a_full_subscriber_holds_publishing_back() {
        let bus = std::sync::Arc::new(LocalBus::new());
        let mut s = bus.subscribe();
        for n in 0..SUBSCRIPTION_QUEUE as u64 {
            bus.publish(read(n)).await;
        }
        let publishing = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.publish(read(u64::MAX)).await })
        };
        tokio::task::yield_now().await;
        assert!(!publishing.is_finished(), "waits for room in the queue");
        assert_eq!(s.next().await, Some(read(0)));
        publishing.await.unwrap();
        for n in 1..SUBSCRIPTION_QUEUE as u64 {
            assert_eq!(s.next().await, Some(read(n)));
        }
        assert_eq!(s.next().await, Some(read(u64::MAX)));
    }
}
