//! [`LocalBus`]: the in-process adapter of the `EventBus` port. Every event
//! published in this process reaches every subscriber in this process, in
//! publication order. One server node needs nothing more; several nodes need
//! a shared bus (Redis) behind the same port.
//!
//! Each subscriber has its own unbounded queue, so a publisher never waits
//! and nothing is dropped; subscribers (the gateway's hub) only sort and hand
//! events on, so their queues stay short. This crate knows `chat-ports` and
//! tokio, nothing of HTTP or storage.

use std::sync::Mutex;

use async_trait::async_trait;
use chat_ports::{Event, EventBus, EventStream};
use tokio::sync::mpsc;

/// The in-process bus.
#[derive(Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: Event) {
        let Ok(mut subs) = self.subscribers.lock() else {
            return;
        };
        // Forget subscribers that are gone; the last one takes the event
        // itself rather than a clone.
        subs.retain(|s| !s.is_closed());
        if let Some((last, rest)) = subs.split_last() {
            for s in rest {
                let _ = s.send(event.clone());
            }
            let _ = last.send(event);
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
}
