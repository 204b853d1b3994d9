//! The HTTP counters a table carries, one block per label set (listener,
//! route, cluster).
//!
//! The control agent creates one [`HttpTally`] per label set when it compiles
//! a table (and carries it over to the next table while the labels stay), so
//! it knows every label set without asking the workers. A tally holds one
//! block of [`Counter`]s per worker, each on cache lines of its own: a worker
//! writes only its own block, the agent sums them.

use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam::utils::CachePadded;

use crate::counter::Counter;
use crate::latency::{
    Exemplar, ExemplarCopy, Fine, FineTotals, Histogram, HistogramTotals, BUCKETS,
};
use crate::request::{Fault, Reason};

/// One worker's counters for one label set.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests counted at this label set.
    pub requests: Counter,
    /// Final responses sent to clients by status class: index 0 for 1xx
    /// (never final, kept for shape) up to 4 for 5xx.
    pub responses: [Counter; 5],
    /// Errors by [`Reason`].
    pub errors: [Counter; Reason::ALL.len()],
    /// How long the requests counted here took, from the head read to
    /// the last byte of the answer (each request is timed at the one
    /// level its final status is counted at).
    pub duration: Histogram,
    /// The last traced request timed here.
    pub exemplar: Exemplar,
    /// Faults injected by the route's `fault`, by [`Fault`] (counted on
    /// the route's tally only).
    pub faults: [Counter; Fault::ALL.len()],
}

impl HttpCounters {
    /// Counts a final response of `status`.
    #[inline]
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].add(1);
    }

    /// Counts an error.
    #[inline]
    pub fn error(&self, reason: Reason) {
        self.errors[reason as usize].add(1);
    }

    /// Counts an injected fault.
    #[inline]
    pub fn fault(&self, fault: Fault) {
        self.faults[fault as usize].add(1);
    }
}

/// A sum of [`HttpCounters`] over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HttpTotals {
    /// Requests.
    pub requests: u64,
    /// Responses by class, 1xx to 5xx.
    pub responses: [u64; 5],
    /// Errors by [`Reason`] (indexed as [`Reason::ALL`]).
    pub errors: [u64; Reason::ALL.len()],
    /// Request durations.
    pub duration: HistogramTotals,
    /// The newest traced request of each bucket, over the workers' last
    /// ones.
    pub exemplars: [Option<ExemplarCopy>; BUCKETS],
    /// Injected faults by [`Fault`] (indexed as [`Fault::ALL`]).
    pub faults: [u64; Fault::ALL.len()],
}

/// The counters of one label set, one block per worker.
#[derive(Debug)]
pub struct HttpTally {
    workers: Box<[CachePadded<HttpCounters>]>,
}

impl HttpTally {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(HttpCounters::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes. The agent builds every table for
    /// the running worker count; an index past it would share the last block
    /// (a count could then be lost) rather than panic.
    #[inline]
    pub fn worker(&self, worker: usize) -> &HttpCounters {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> HttpTotals {
        let mut t = HttpTotals::default();
        for w in self.workers.iter() {
            t.requests += w.requests.get();
            for (sum, c) in t.responses.iter_mut().zip(&w.responses) {
                *sum += c.get();
            }
            for (sum, c) in t.errors.iter_mut().zip(&w.errors) {
                *sum += c.get();
            }
            for (sum, c) in t.faults.iter_mut().zip(&w.faults) {
                *sum += c.get();
            }
            w.duration.add_to(&mut t.duration);
            if let Some(e) = w.exemplar.get() {
                let slot = &mut t.exemplars[e.bucket.min(BUCKETS - 1)];
                if slot.is_none_or(|s| s.unix_ms <= e.unix_ms) {
                    *slot = Some(e);
                }
            }
        }
        t
    }
}

/// One worker's timings of one cluster's upstream work.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// From the start of a TCP connect to an endpoint to its completion
    /// (a TLS handshake after it is not included). Connections taken from
    /// the pool are not connects and are not timed; failed connects are
    /// counted as failures, not timed.
    pub connect: Histogram,
    /// From the upstream connection being ready for the request's last
    /// attempt (its head is sent at once) to the response head read.
    pub first_byte: Histogram,
    /// Whole request durations, finely, for quantiles.
    pub duration: Fine,
}

/// A sum of [`ClusterCounters`] over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClusterTotals {
    /// Connect times.
    pub connect: HistogramTotals,
    /// Times to the response head.
    pub first_byte: HistogramTotals,
    /// Request durations, fine cells.
    pub duration: FineTotals,
}

/// One cluster's timings, one block per worker. The agent carries it over
/// reloads and endpoint updates by cluster name, as it does the retry
/// budget.
#[derive(Debug)]
pub struct ClusterTally {
    workers: Box<[CachePadded<ClusterCounters>]>,
}

impl ClusterTally {
    /// Zeroed timings for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(ClusterCounters::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes (the last one past the count, as
    /// [`HttpTally::worker`] does).
    #[inline]
    pub fn worker(&self, worker: usize) -> &ClusterCounters {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> ClusterTotals {
        let mut t = ClusterTotals::default();
        for w in self.workers.iter() {
            w.connect.add_to(&mut t.connect);
            w.first_byte.add_to(&mut t.first_byte);
            w.duration.add_to(&mut t.duration);
        }
        t
    }
}

/// One worker's figures of one endpoint.
#[derive(Debug, Default)]
pub struct EndpointCells {
    /// Requests whose last attempt went to the endpoint.
    pub requests: Counter,
    /// Those that failed there: a 5xx from the endpoint, or an exchange
    /// that broke for a reason not the client's.
    pub failures: Counter,
    /// Their durations.
    pub duration: Histogram,
}

/// A sum of [`EndpointCells`] over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EndpointTotals {
    /// Requests.
    pub requests: u64,
    /// Failures.
    pub failures: u64,
    /// Durations.
    pub duration: HistogramTotals,
}

/// One endpoint's figures, one block per worker.
#[derive(Debug)]
pub struct EndpointTally {
    workers: Box<[CachePadded<EndpointCells>]>,
}

impl EndpointTally {
    /// Zeroed figures for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(EndpointCells::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes.
    #[inline]
    pub fn worker(&self, worker: usize) -> &EndpointCells {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> EndpointTotals {
        let mut t = EndpointTotals::default();
        for w in self.workers.iter() {
            t.requests += w.requests.get();
            t.failures += w.failures.get();
            w.duration.add_to(&mut t.duration);
        }
        t
    }
}

/// The figures of every endpoint of a cluster, sorted by address so a
/// worker finds one by binary search. Built with the cluster's endpoints
/// (rebuild it when they change) and carried over by address, as the
/// ejection cells are: an endpoint that stays keeps counting on.
#[derive(Debug, Clone, Default)]
pub struct EndpointTallies {
    sorted: Arc<[(SocketAddr, Arc<EndpointTally>)]>,
}

impl EndpointTallies {
    /// Figures for `endpoints` on `workers` workers, the same ones as in
    /// `previous` for the addresses it has.
    pub fn new(
        endpoints: &[SocketAddr],
        workers: usize,
        previous: Option<&EndpointTallies>,
    ) -> Self {
        let mut sorted: Vec<_> = endpoints
            .iter()
            .map(|&addr| {
                let kept = previous.and_then(|p| p.of(addr)).map(Arc::clone);
                (
                    addr,
                    kept.unwrap_or_else(|| Arc::new(EndpointTally::new(workers))),
                )
            })
            .collect();
        sorted.sort_by_key(|(addr, _)| *addr);
        sorted.dedup_by_key(|(addr, _)| *addr);
        Self {
            sorted: sorted.into(),
        }
    }

    /// The figures of `addr`, if it is an endpoint of the cluster.
    #[inline]
    pub fn of(&self, addr: SocketAddr) -> Option<&Arc<EndpointTally>> {
        let i = self.sorted.binary_search_by_key(&addr, |(a, _)| *a).ok()?;
        Some(&self.sorted[i].1)
    }

    /// Every endpoint with its figures, by address.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Arc<EndpointTally>)> {
        self.sorted.iter().map(|(a, t)| (*a, t))
    }
}

/// The faults a TCP listener's `fault` injected, by [`Fault`], one block
/// per worker; carried over reloads by listener name.
#[derive(Debug)]
pub struct FaultTally {
    workers: Box<[CachePadded<[Counter; Fault::ALL.len()]>]>,
}

impl FaultTally {
    /// Zeroed counts for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(Default::default()))
                .collect(),
        }
    }

    /// Counts `fault` on worker `worker`'s block (the last one past the
    /// count, as [`HttpTally::worker`] does).
    #[inline]
    pub fn add(&self, worker: usize, fault: Fault) {
        self.workers[worker.min(self.workers.len() - 1)][fault as usize].add(1);
    }

    /// The sums over every worker, indexed as [`Fault::ALL`].
    pub fn totals(&self) -> [u64; Fault::ALL.len()] {
        let mut t = [0; Fault::ALL.len()];
        for w in self.workers.iter() {
            for (sum, c) in t.iter_mut().zip(w.iter()) {
                *sum += c.get();
            }
        }
        t
    }
}

/// How long one listener's client connections lasted, from accept to
/// close, one histogram per worker; carried over reloads by listener
/// name.
#[derive(Debug)]
pub struct ConnectionTally {
    workers: Box<[CachePadded<Histogram>]>,
}

impl ConnectionTally {
    /// Zeroed histograms for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(Histogram::default()))
                .collect(),
        }
    }

    /// The histogram worker `worker` records into.
    #[inline]
    pub fn worker(&self, worker: usize) -> &Histogram {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> HistogramTotals {
        let mut t = HistogramTotals::default();
        for w in self.workers.iter() {
            w.add_to(&mut t);
        }
        t
    }
}

/// One worker's counts of one authorization rule's decisions (or a
/// listener's default's).
#[derive(Debug, Default)]
pub struct AuthzCounters {
    /// Requests or connections the rule let through.
    pub allowed: Counter,
    /// Requests or connections the rule refused.
    pub denied: Counter,
}

/// A sum of [`AuthzCounters`] over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuthzTotals {
    /// Let through.
    pub allowed: u64,
    /// Refused.
    pub denied: u64,
}

/// The decision counts of one authorization rule, one block per worker,
/// kept as [`HttpTally`] keeps its counters: each worker writes its own
/// block (on cache lines of its own), the agent sums them, and a reload
/// that keeps the rule's name carries the tally over.
#[derive(Debug)]
pub struct AuthzTally {
    workers: Box<[CachePadded<AuthzCounters>]>,
}

impl AuthzTally {
    /// Zeroed counts for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(AuthzCounters::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes (the last one past the count, as
    /// [`HttpTally::worker`] does).
    #[inline]
    pub fn worker(&self, worker: usize) -> &AuthzCounters {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> AuthzTotals {
        self.workers
            .iter()
            .fold(AuthzTotals::default(), |t, w| AuthzTotals {
                allowed: t.allowed + w.allowed.get(),
                denied: t.denied + w.denied.get(),
            })
    }
}
