//! One process-wide time base, and the send instant carried inside message content.
//!
//! Senders and receivers live in the same process, so a sender writes "nanoseconds since
//! the run's start" into the message text and a receiver subtracts it from its own reading
//! of the same clock: send-to-receive latency without any clock synchronisation.

use std::time::{Duration, Instant};

/// A monotonic clock counting nanoseconds from the start of the run.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        nanos(self.start.elapsed())
    }

    /// The instant `nanos` after the start.
    pub fn instant_at(&self, nanos: u64) -> Instant {
        self.start + Duration::from_nanos(nanos)
    }

    /// Nanoseconds since the run started at `at` (0 if before).
    pub fn at(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.start))
    }
}

pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

const PREFIX: &str = "bench:";

/// Message text: `bench:<run>:<sent nanos> ` followed by `pad` filler characters.
/// The run tag lets receivers ignore messages from anything but this run.
pub fn encode_content(run: &str, sent_nanos: u64, pad: usize) -> String {
    let mut s = format!("{PREFIX}{run}:{sent_nanos}");
    if pad > 0 {
        s.reserve(pad + 1);
        s.push(' ');
        s.extend(std::iter::repeat_n('x', pad));
    }
    s
}

/// The send instant written by [`encode_content`] for this run, if the text is ours.
pub fn decode_content(content: &str, run: &str) -> Option<u64> {
    let rest = content
        .strip_prefix(PREFIX)?
        .strip_prefix(run)?
        .strip_prefix(':')?;
    let digits = rest.split(' ').next()?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Latency in nanoseconds from a send instant to a receive instant (0 if the clock
/// readings are out of order, which a monotonic clock never produces).
pub fn latency(sent_nanos: u64, received_nanos: u64) -> u64 {
    received_nanos.saturating_sub(sent_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_round_trips() {
        for n in [0, 1, 42, 1_234_567_890_123, u64::MAX] {
            for pad in [0, 1, 100] {
                let c = encode_content("ab12cd", n, pad);
                assert_eq!(decode_content(&c, "ab12cd"), Some(n), "{c}");
            }
        }
        let c = encode_content("r1", 7, 10);
        assert_eq!(c, "bench:r1:7 xxxxxxxxxx");
        assert_eq!(c.chars().count(), "bench:r1:7 ".len() + 10);
    }

    #[test]
    fn foreign_or_garbled_content_is_ignored() {
        let c = encode_content("run1", 99, 0);
        assert_eq!(decode_content(&c, "run2"), None);
        assert_eq!(decode_content(&c, "run"), None);
        assert_eq!(decode_content("hello", "run1"), None);
        assert_eq!(decode_content("", "run1"), None);
        assert_eq!(decode_content("bench:run1:", "run1"), None);
        assert_eq!(decode_content("bench:run1:12a", "run1"), None);
        assert_eq!(decode_content("bench:run1:-5", "run1"), None);
        assert_eq!(decode_content("bench:run1:+5", "run1"), None);
        assert_eq!(
            decode_content("bench:run1:99999999999999999999999", "run1"),
            None
        );
        assert_eq!(decode_content(" bench:run1:5", "run1"), None);
    }

    #[test]
    fn latency_is_difference_and_never_negative() {
        assert_eq!(latency(100, 350), 250);
        assert_eq!(latency(350, 100), 0);
    }

    #[test]
    fn clock_is_monotonic_and_round_trips_instants() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        let at = c.instant_at(5_000_000);
        assert_eq!(c.at(at), 5_000_000);
    }
}
