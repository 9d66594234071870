//! Time and identity: the two things tests want to control.

use chat_domain::Timestamp;
use uuid::Uuid;

/// The current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// New unique ids; production uses time-ordered UUIDv7.
pub trait IdGen: Send + Sync + 'static {
    fn new_id(&self) -> Uuid;
}

/// The wall clock, truncated to microseconds (what PostgreSQL keeps), so a
/// value read back from any store equals the value written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        use chrono::{DurationRound, TimeDelta};
        let now = chrono::Utc::now();
        now.duration_trunc(TimeDelta::microseconds(1))
            .unwrap_or(now)
    }
}

/// UUIDv7 ids.
#[derive(Debug, Default, Clone, Copy)]
pub struct V7Ids;

impl IdGen for V7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
