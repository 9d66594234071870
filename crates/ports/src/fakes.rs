//! Test doubles for the non-store ports (feature `testing`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use chat_domain::{Password, Timestamp};

use crate::auth::CryptoError;
use crate::{Clock, Event, EventBus, PasswordHasher};

/// A clock that stands still until told to move. Starts at 2026-01-01T00:00:00Z.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            micros: AtomicI64::new(1_767_225_600_000_000),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: chrono::Duration) {
        let us = by.num_microseconds().unwrap_or(i64::MAX);
        self.micros.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let us = self.micros.fetch_add(1, Ordering::SeqCst);
        chrono::DateTime::from_timestamp_micros(us).unwrap_or_default()
    }
}

/// A fast, insecure hasher for tests: `plain:` + the password.
#[derive(Debug, Default)]
pub struct PlainHasher;

#[async_trait]
impl PasswordHasher for PlainHasher {
    async fn hash(&self, password: &Password) -> Result<String, CryptoError> {
        Ok(format!("plain:{}", password.expose()))
    }
    async fn verify(&self, password: &Password, hash: &str) -> Result<bool, CryptoError> {
        Ok(hash.strip_prefix("plain:") == Some(password.expose()))
    }
}

/// An event bus that keeps what it was given, for assertions.
#[derive(Debug, Default)]
pub struct RecordingBus {
    events: Mutex<Vec<Event>>,
}

impl RecordingBus {
    /// Everything published so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Forgets what was published so far.
    pub fn clear(&self) {
        if let Ok(mut e) = self.events.lock() {
            e.clear();
        }
    }
}

#[async_trait]
impl EventBus for RecordingBus {
    async fn publish(&self, event: Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    /// Nothing is ever delivered to a subscriber: this bus only records.
    fn subscribe(&self) -> Box<dyn crate::EventStream> {
        Box::new(Silent)
    }
}

/// A subscription that never yields.
struct Silent;

#[async_trait]
impl crate::EventStream for Silent {
    async fn next(&mut self) -> Option<Event> {
        std::future::pending().await
    }
}
