//! A worker's HTTP state: what every HTTP connection of the worker shares
//! besides the table and the upstream state (`upstream::Upstreams`, which
//! TCP listeners share too).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::access::AccessRing;
use crate::random::Random;
use crate::trace::span::Span;

/// A worker's HTTP state: its index, its drain flag and its random source.
#[derive(Debug)]
pub struct WorkerHttp {
    /// The worker's index (selects its counters in every tally).
    pub worker: usize,
    /// Set when the worker begins to drain (after its listeners stopped):
    /// every answer from then on says `connection: close`, and a
    /// connection waiting for its next request closes after a short grace
    /// unless one arrives.
    pub draining: Cell<bool>,
    rng: Random,
    /// The worker's end of its access log ring.
    pub access: RefCell<AccessRing>,
    /// Where the worker queues finished spans for the exporter.
    pub spans: Arc<ArrayQueue<Span>>,
}

impl WorkerHttp {
    /// State for worker `worker`; `seed` starts its random source.
    pub fn new(worker: usize, seed: u64, access: AccessRing, spans: Arc<ArrayQueue<Span>>) -> Self {
        Self {
            worker,
            draining: Cell::new(false),
            rng: Random::new(seed),
            access: RefCell::new(access),
            spans,
        }
    }

    /// A pseudo-random number (xorshift64*): for weighted picks and request
    /// ids. Not for secrets.
    pub fn random(&self) -> u64 {
        self.rng.next()
    }
}
