//! Counting and latency aggregation.
//!
//! Latency samples are batched per connection and handed to one aggregator task that owns
//! the HdrHistogram, so 10,000 connections do not each carry a histogram.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;

/// Named counters (error codes, close codes, event types), sorted for stable output.
pub type Counts = BTreeMap<String, u64>;

pub fn bump(counts: &mut Counts, key: &str) {
    bump_by(counts, key, 1);
}

pub fn bump_by(counts: &mut Counts, key: &str, n: u64) {
    if n == 0 {
        return;
    }
    match counts.get_mut(key) {
        Some(v) => *v += n,
        None => {
            counts.insert(key.to_owned(), n);
        }
    }
}

pub fn merge_counts(into: &mut Counts, from: &Counts) {
    for (k, v) in from {
        bump_by(into, k, *v);
    }
}

pub fn total(counts: &Counts) -> u64 {
    counts.values().sum()
}

/// Events per second over `secs` (0 when no time passed).
pub fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round2(count as f64 / secs)
    } else {
        0.0
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The highest latency the histogram resolves: one hour, in microseconds. Anything above is
/// clamped (and still counted); the exact maximum is kept beside the histogram.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency distribution in microseconds, 3 significant figures.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
    max_nanos: u64,
    sum_nanos: u128,
}

impl Latency {
    pub fn new() -> Result<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .context("creating a latency histogram")?,
            max_nanos: 0,
            sum_nanos: 0,
        })
    }

    pub fn record_nanos(&mut self, nanos: u64) {
        let micros = (nanos / 1_000).clamp(1, MAX_MICROS);
        self.hist.saturating_record(micros);
        self.max_nanos = self.max_nanos.max(nanos);
        self.sum_nanos += u128::from(nanos);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let count = self.count();
        if count == 0 {
            return LatencySummary::default();
        }
        let ms = |micros: u64| round3(micros as f64 / 1_000.0);
        LatencySummary {
            count,
            mean_ms: round3(self.sum_nanos as f64 / count as f64 / 1e6),
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p95_ms: ms(self.hist.value_at_quantile(0.95)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: round3(self.max_nanos as f64 / 1e6),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Percentiles in milliseconds (histogram values, 3 significant figures; `max` exact).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

const BATCH: usize = 256;

/// A connection's handle on an aggregator: buffers samples, sends them in batches.
pub struct LatencySink {
    buf: Vec<u64>,
    tx: mpsc::UnboundedSender<Vec<u64>>,
}

impl LatencySink {
    pub fn record(&mut self, nanos: u64) {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(BATCH);
        }
        self.buf.push(nanos);
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            // A closed aggregator only means the run is over; the samples are moot.
            let _ = self.tx.send(std::mem::take(&mut self.buf));
        }
    }
}

impl Drop for LatencySink {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Owns one histogram; connections feed it through [`LatencySink`]s.
pub struct Aggregator {
    tx: mpsc::UnboundedSender<Vec<u64>>,
    task: tokio::task::JoinHandle<Latency>,
}

impl Aggregator {
    pub fn spawn(template: Latency) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u64>>();
        let task = tokio::spawn(async move {
            let mut lat = template;
            while let Some(batch) = rx.recv().await {
                for n in batch {
                    lat.record_nanos(n);
                }
            }
            lat
        });
        Self { tx, task }
    }

    pub fn sink(&self) -> LatencySink {
        LatencySink {
            buf: Vec::new(),
            tx: self.tx.clone(),
        }
    }

    /// Waits for every sink to be dropped, then returns the distribution.
    pub async fn finish(self) -> Result<Latency> {
        drop(self.tx);
        self.task.await.context("latency aggregator panicked")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_merge_and_total() {
        let mut a = Counts::new();
        bump(&mut a, "1013");
        bump(&mut a, "1013");
        bump(&mut a, "io");
        let mut b = Counts::new();
        bump_by(&mut b, "1013", 3);
        bump_by(&mut b, "eof", 0);
        bump(&mut b, "1008");
        merge_counts(&mut a, &b);
        assert_eq!(a.get("1013"), Some(&5));
        assert_eq!(a.get("1008"), Some(&1));
        assert_eq!(a.get("io"), Some(&1));
        assert_eq!(a.get("eof"), None);
        assert_eq!(total(&a), 7);
    }

    #[test]
    fn rates() {
        assert_eq!(per_sec(1000, 4.0), 250.0);
        assert_eq!(per_sec(10, 0.0), 0.0);
        assert_eq!(per_sec(1, 3.0), 0.33);
    }

    #[test]
    fn percentiles_of_a_known_distribution() -> Result<()> {
        let mut l = Latency::new()?;
        // 1 ms .. 100 ms, one sample each.
        for ms in 1..=100u64 {
            l.record_nanos(ms * 1_000_000);
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p95_ms - 95.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9, "{s:?}");
        Ok(())
    }

    #[test]
    fn empty_and_extreme_samples() -> Result<()> {
        let l = Latency::new()?;
        assert_eq!(l.summary(), LatencySummary::default());
        let mut l = Latency::new()?;
        l.record_nanos(0); // clamps to 1 µs
        l.record_nanos(u64::MAX); // clamps to the top bucket, max stays exact
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_ms > 1e12);
        Ok(())
    }

    #[tokio::test]
    async fn aggregator_collects_batches_from_many_sinks() -> Result<()> {
        let agg = Aggregator::spawn(Latency::new()?);
        let mut handles = Vec::new();
        for i in 0..10u64 {
            let mut sink = agg.sink();
            handles.push(tokio::spawn(async move {
                for j in 0..1000u64 {
                    sink.record((i * 1000 + j + 1) * 1_000);
                }
            }));
        }
        for h in handles {
            h.await?;
        }
        let lat = agg.finish().await?;
        let s = lat.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max_ms, 10.0);
        Ok(())
    }
}
