//! A route's progressive rollout, as the table carries it: the plan the
//! control agent follows (read only by the agent and `GET /config`), and
//! the figures the workers keep for it on the route's two targets.
//!
//! The workers never read the plan. They record, per target of a rollout
//! route, each request's outcome and duration into their own block of a
//! [`WatchTally`]; the agent sums the blocks at every evaluation and
//! compares the canary with the stable cluster over the interval.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::utils::CachePadded;

use crate::counter::Counter;
use crate::latency::{Fine, FineTotals};

/// A split route's rollout plan: the canary's share moves through `steps`
/// while it stays within bounds of the stable cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Index of the canary in the route's targets.
    pub canary: usize,
    /// Index of the stable cluster in the route's targets.
    pub stable: usize,
    /// The canary's share at each step, in percent: strictly increasing,
    /// the last 100.
    pub steps: Arc<[u32]>,
    /// Time between evaluations.
    pub interval: Duration,
    /// Largest canary error rate above the stable one that is not a
    /// rollback (a fraction: 0.01 is one point of percentage).
    pub max_error_rate_delta: f64,
    /// Largest ratio of the canary's p99 to the stable one's.
    pub max_p99_ratio: f64,
    /// Requests each side that had weight must have had before a decision.
    pub min_requests: u64,
    /// A canary p99 below this is never a reason to roll back.
    pub min_p99: Duration,
    /// The canary's and the stable cluster's weights as configured: where
    /// the rollout starts.
    pub configured: (u32, u32),
}

/// One worker's figures of one rollout target.
#[derive(Debug, Default)]
pub struct WatchCells {
    /// Requests the route sent to the target.
    pub requests: Counter,
    /// Those that failed: a 5xx the upstream gave, or an exchange that
    /// ended for a reason that is not the client's.
    pub failures: Counter,
    /// Their durations, fine enough for a p99.
    pub duration: Fine,
}

impl WatchCells {
    /// Counts one request.
    #[inline]
    pub fn record(&self, failed: bool, duration: Duration) {
        self.requests.add(1);
        if failed {
            self.failures.add(1);
        }
        self.duration.record(duration);
    }
}

/// A sum of [`WatchCells`] over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchTotals {
    /// Requests.
    pub requests: u64,
    /// Failures.
    pub failures: u64,
    /// Durations, fine cells.
    pub duration: FineTotals,
}

/// The rollout figures of one route target, one block per worker; carried
/// over reloads with the target's other tallies.
#[derive(Debug)]
pub struct WatchTally {
    workers: Box<[CachePadded<WatchCells>]>,
}

impl WatchTally {
    /// Zeroed figures for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(WatchCells::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes (the last one past the count, as
    /// [`super::tally::HttpTally::worker`] does).
    #[inline]
    pub fn worker(&self, worker: usize) -> &WatchCells {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> WatchTotals {
        let mut t = WatchTotals::default();
        for w in self.workers.iter() {
            t.requests += w.requests.get();
            t.failures += w.failures.get();
            w.duration.add_to(&mut t.duration);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_add_up() {
        let tally = WatchTally::new(2);
        tally.worker(0).record(false, Duration::from_millis(1));
        tally.worker(1).record(true, Duration::from_millis(3));
        tally.worker(5).record(false, Duration::from_millis(2));
        let t = tally.totals();
        assert_eq!((t.requests, t.failures), (3, 1));
        assert_eq!(t.duration.count(), 3);
    }
}
