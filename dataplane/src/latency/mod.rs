//! Latency histograms a worker records into and the agent merges.
//!
//! A [`Histogram`] has the fixed buckets every ringway duration family is
//! exported with ([`BOUNDS`], 0.5 ms to 30 s, then +Inf) and a sum; a
//! [`Fine`] histogram has narrow log-linear cells, for quantiles. Both are
//! made of single-writer [`Counter`]s: only the worker that owns a block
//! records into it, with a plain load and store per cell, and the agent
//! reads copies ([`Histogram::totals`], [`Fine::add_to`]) whenever it likes.
//! Buckets are counted one by one; the cumulative `le` counts Prometheus
//! wants are made by the agent, at scrape time.

pub mod exemplar;
pub mod fine;

use std::time::Duration;

pub use self::exemplar::{Exemplar, ExemplarCopy};
pub use self::fine::{Fine, FineTotals};
use crate::counter::Counter;

/// The upper bounds of the buckets, in nanoseconds: a duration `d` falls in
/// the first bucket whose bound is at least `d`, or past the last in +Inf.
pub const BOUNDS: [u64; 15] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// [`BOUNDS`] as the `le` label values, in seconds, then `+Inf`.
pub const LE: [&str; BUCKETS] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10", "30", "+Inf",
];

/// Buckets, +Inf included.
pub const BUCKETS: usize = BOUNDS.len() + 1;

/// The bucket a duration of `ns` nanoseconds falls in.
#[inline]
pub fn bucket(ns: u64) -> usize {
    BOUNDS.partition_point(|&bound| bound < ns)
}

/// Nanoseconds in `d`, saturating (584 years).
#[inline]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The wall clock now, in nanoseconds since the Unix epoch (0 before it):
/// the time access log records, spans and exemplars carry. Read only for
/// requests that are logged or traced.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, nanos)
}

/// One worker's histogram of one series.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; BUCKETS],
    /// Sum of every duration recorded, in nanoseconds (wrapping).
    sum_ns: Counter,
}

impl Histogram {
    /// Records `d`; returns the bucket it fell in.
    #[inline]
    pub fn record(&self, d: Duration) -> usize {
        let ns = nanos(d);
        let b = bucket(ns);
        self.buckets[b].add(1);
        self.sum_ns.add(ns);
        b
    }

    /// Adds this worker's counts to `into`.
    pub fn add_to(&self, into: &mut HistogramTotals) {
        for (sum, cell) in into.buckets.iter_mut().zip(&self.buckets) {
            *sum += cell.get();
        }
        into.sum_ns = into.sum_ns.wrapping_add(self.sum_ns.get());
    }

    /// A copy of this worker's counts.
    pub fn totals(&self) -> HistogramTotals {
        let mut t = HistogramTotals::default();
        self.add_to(&mut t);
        t
    }
}

/// A copy of a [`Histogram`], or the sum of several.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HistogramTotals {
    /// Count per bucket (not cumulative), +Inf last.
    pub buckets: [u64; BUCKETS],
    /// Sum of the durations, in nanoseconds.
    pub sum_ns: u64,
}

impl HistogramTotals {
    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The cumulative count of each `le` bucket, as Prometheus writes them.
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut running = 0;
        self.buckets.map(|n| {
            running += n;
            running
        })
    }

    /// Adds `other` to this sum.
    pub fn merge(&mut self, other: &HistogramTotals) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
    }

    /// The sum in seconds, exactly (nanoseconds as a decimal fraction).
    pub fn sum_seconds(&self) -> String {
        format!(
            "{}.{:09}",
            self.sum_ns / 1_000_000_000,
            self.sum_ns % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_on_a_bound_is_in_that_bucket() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(500_000), 0);
        assert_eq!(bucket(500_001), 1);
        assert_eq!(bucket(30_000_000_000), 14);
        assert_eq!(bucket(30_000_000_001), 15);
        assert_eq!(bucket(u64::MAX), 15);
        for (i, b) in BOUNDS.iter().enumerate() {
            assert_eq!(bucket(*b), i);
            assert_eq!(bucket(b + 1), i + 1);
        }
    }

    #[test]
    fn the_labels_are_the_bounds_in_seconds() {
        for (bound, le) in BOUNDS.iter().zip(LE) {
            let secs: f64 = le.parse().expect("a number");
            assert_eq!((secs * 1e9).round() as u64, *bound, "{le}");
        }
        assert_eq!(LE[BUCKETS - 1], "+Inf");
    }

    #[test]
    fn totals_count_sum_and_accumulate() {
        let h = Histogram::default();
        h.record(Duration::from_micros(300));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(40));
        let t = h.totals();
        assert_eq!(t.count(), 4);
        assert_eq!(t.buckets[0], 1);
        assert_eq!(t.buckets[3], 2);
        assert_eq!(t.buckets[15], 1);
        assert_eq!(t.cumulative()[3], 3);
        assert_eq!(t.cumulative()[15], 4);
        assert_eq!(t.sum_seconds(), "40.006300000");
        let mut both = t;
        both.merge(&t);
        assert_eq!(both.count(), 8);
        assert_eq!(both.sum_ns, 2 * t.sum_ns);
    }
}
