//! The exporter's figures, for `/metrics` and `/stats`: written by the
//! exporter thread alone, read by anyone. The spans a worker could not
//! queue are counted by that worker, not here.

use std::sync::atomic::{AtomicU64, Ordering};

/// The exporter's counters and gauges (spans unless said otherwise).
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Requests (batches) the collector accepted.
    pub batches: AtomicU64,
    /// Spans the collector refused for good: a batch answered with a status
    /// that is not worth retrying (400, 404, 413, 500, ...), or the spans
    /// an accepted request reported as rejected (OTLP's partial success).
    pub rejected: AtomicU64,
    /// Spans dropped unsent because the collector was down or slow and the
    /// exporter already held its most (`max_held_spans`): the oldest whole
    /// batches go first.
    pub dropped_backlog: AtomicU64,
    /// Spans still unsent when [`super::Exporter::stop`]'s deadline passed.
    pub abandoned: AtomicU64,
    /// Requests that failed in a way worth retrying (no connection, a
    /// timeout, 429, 502, 503, 504); their batch was kept for the next try.
    pub failed_posts: AtomicU64,
    /// Spans held now, unsent: the batch being filled and those waiting to
    /// go (a gauge).
    pub held: AtomicU64,
    /// The most spans held at once since the exporter started (a gauge
    /// that only rises): what the bound on its memory was tested against.
    pub held_peak: AtomicU64,
}

impl ExportStats {
    /// The figures now, as plain numbers.
    pub fn snapshot(&self) -> ExportCounts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ExportCounts {
            exported: get(&self.exported),
            batches: get(&self.batches),
            rejected: get(&self.rejected),
            dropped_backlog: get(&self.dropped_backlog),
            abandoned: get(&self.abandoned),
            failed_posts: get(&self.failed_posts),
            held: get(&self.held),
            held_peak: get(&self.held_peak),
        }
    }

    /// Adds `n` to `counter` (only the exporter thread writes).
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the spans held now, raising the peak when it is passed.
    pub(crate) fn set_held(&self, held: usize) {
        let held = held as u64;
        self.held.store(held, Ordering::Relaxed);
        self.held_peak.fetch_max(held, Ordering::Relaxed);
    }
}

/// A copy of [`ExportStats`] at one moment; each field means what the
/// counter of the same name does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    /// See [`ExportStats::exported`].
    pub exported: u64,
    /// See [`ExportStats::batches`].
    pub batches: u64,
    /// See [`ExportStats::rejected`].
    pub rejected: u64,
    /// See [`ExportStats::dropped_backlog`].
    pub dropped_backlog: u64,
    /// See [`ExportStats::abandoned`].
    pub abandoned: u64,
    /// See [`ExportStats::failed_posts`].
    pub failed_posts: u64,
    /// See [`ExportStats::held`].
    pub held: u64,
    /// See [`ExportStats::held_peak`].
    pub held_peak: u64,
}

impl ExportCounts {
    /// Every span the exporter took from the queues and settled one way or
    /// another, plus those it holds: equal to the spans the workers queued
    /// once the queues are empty.
    pub fn accounted(&self) -> u64 {
        self.exported + self.rejected + self.dropped_backlog + self.abandoned + self.held
    }
}
