//! A route's request mirroring (shadow traffic): which cluster sees a copy
//! of the route's requests, how many of them, and what became of each copy.
//!
//! The copy is the request head the primary sent upstream, and its body
//! when the body was already received with the head and is small; the
//! shadow's response is read and dropped. Nothing the shadow does reaches
//! the client or the primary's cluster (see `session::http::mirror`).

use std::sync::Arc;

use crossbeam::utils::CachePadded;

use super::ClusterId;
use crate::counter::Counter;

/// Parts per million of requests: `percent` 100 is this.
pub const MILLION: u32 = 1_000_000;

/// A route's `mirror`.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The cluster the copies go to.
    pub cluster: ClusterId,
    /// The share of the route's requests mirrored, in parts per million
    /// (`percent` times 10,000; 0 mirrors none, [`MILLION`] every one).
    pub ppm: u32,
    /// Whether the copy's `host` gets `-shadow` after its host name (before
    /// any port), so that the shadow can tell it from real traffic.
    pub host_suffix: bool,
    /// The largest request body copied, in bytes; a request with a longer
    /// one is not mirrored.
    pub max_body: u64,
    /// The most copies of this route one worker has under way at once;
    /// past it a copy is dropped.
    pub max_in_flight: u32,
    /// What became of the copies, per worker.
    pub tally: Arc<MirrorTally>,
}

impl Mirror {
    /// Whether a request rolling `random` is mirrored.
    #[inline]
    pub fn chosen(&self, random: u64) -> bool {
        self.ppm >= MILLION || (random % u64::from(MILLION)) < u64::from(self.ppm)
    }
}

/// What became of a request chosen for mirroring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum MirrorOutcome {
    /// The shadow answered and its whole response was read.
    Answered = 0,
    /// The copy went out but the shadow exchange failed: no endpoint took
    /// the connection, it broke, or it did not end within the route's
    /// request timeout.
    Failed = 1,
    /// Not sent: the worker had `max_in_flight` copies under way.
    Dropped = 2,
    /// Not sent: the body was chunked, longer than `max_body`, or not yet
    /// received with the head.
    SkippedBody = 3,
}

impl MirrorOutcome {
    /// Every outcome, in index order.
    pub const ALL: [MirrorOutcome; 4] = [
        MirrorOutcome::Answered,
        MirrorOutcome::Failed,
        MirrorOutcome::Dropped,
        MirrorOutcome::SkippedBody,
    ];

    /// The name in `/stats` and `/metrics` (the `outcome` label).
    pub fn name(self) -> &'static str {
        match self {
            MirrorOutcome::Answered => "answered",
            MirrorOutcome::Failed => "failed",
            MirrorOutcome::Dropped => "dropped",
            MirrorOutcome::SkippedBody => "skipped_body",
        }
    }
}

/// One route's mirror outcomes and copies under way, one block per
/// worker.
#[derive(Debug)]
pub struct MirrorTally {
    workers: Box<[CachePadded<MirrorCells>]>,
}

/// One worker's cells of one route's mirror.
#[derive(Debug, Default)]
struct MirrorCells {
    /// Copies by outcome, indexed as [`MirrorOutcome::ALL`].
    outcomes: [Counter; 4],
    /// Copies under way now (the worker adds and takes off).
    in_flight: Counter,
}

impl MirrorTally {
    /// Zeroed counts for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(Default::default()))
                .collect(),
        }
    }

    /// Worker `worker`'s block (the last one past the count, as the other
    /// tallies do).
    #[inline]
    fn cells(&self, worker: usize) -> &MirrorCells {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// Counts `outcome` on worker `worker`'s block.
    #[inline]
    pub fn count(&self, worker: usize, outcome: MirrorOutcome) {
        self.cells(worker).outcomes[outcome as usize].add(1);
    }

    /// Copies worker `worker` has under way for this route.
    #[inline]
    pub fn in_flight(&self, worker: usize) -> u64 {
        self.cells(worker).in_flight.get()
    }

    /// One more copy under way on worker `worker`.
    #[inline]
    pub fn start(&self, worker: usize) {
        self.cells(worker).in_flight.add(1);
    }

    /// A copy of worker `worker` is over.
    #[inline]
    pub fn end(&self, worker: usize) {
        let cell = &self.cells(worker).in_flight;
        cell.set(cell.get().saturating_sub(1));
    }

    /// The sums over every worker, indexed as [`MirrorOutcome::ALL`].
    pub fn totals(&self) -> [u64; 4] {
        let mut t = [0; 4];
        for w in self.workers.iter() {
            for (sum, c) in t.iter_mut().zip(&w.outcomes) {
                *sum += c.get();
            }
        }
        t
    }

    /// Copies under way now, over every worker.
    pub fn in_flight_total(&self) -> u64 {
        self.workers.iter().map(|w| w.in_flight.get()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(ppm: u32) -> Mirror {
        Mirror {
            cluster: ClusterId(0),
            ppm,
            host_suffix: false,
            max_body: 0,
            max_in_flight: 1,
            tally: Arc::new(MirrorTally::new(2)),
        }
    }

    #[test]
    fn the_roll_takes_the_configured_share() {
        assert!((0..1000).all(|r| mirror(MILLION).chosen(r * 7919)));
        assert!((0..1000).all(|r| !mirror(0).chosen(r * 7919)));
        // 10%: rolls 0..99,999 of each million are chosen.
        let m = mirror(100_000);
        assert!(m.chosen(99_999));
        assert!(!m.chosen(100_000));
        assert!(m.chosen(u64::from(MILLION) + 5));
    }

    #[test]
    fn outcomes_are_summed_over_workers() {
        let t = MirrorTally::new(2);
        t.count(0, MirrorOutcome::Answered);
        t.count(1, MirrorOutcome::Answered);
        t.count(1, MirrorOutcome::Dropped);
        t.count(7, MirrorOutcome::SkippedBody);
        assert_eq!(t.totals(), [2, 0, 1, 1]);
        t.start(0);
        t.start(1);
        t.start(1);
        t.end(1);
        assert_eq!((t.in_flight(0), t.in_flight(1)), (1, 1));
        assert_eq!(t.in_flight_total(), 2);
        t.end(0);
        t.end(0);
        assert_eq!(t.in_flight(0), 0, "never below zero");
        let names: Vec<_> = MirrorOutcome::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["answered", "failed", "dropped", "skipped_body"]);
    }
}
