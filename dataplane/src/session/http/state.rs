//! A worker's HTTP state: what every HTTP connection of the worker shares
//! besides the table and the upstream state (`upstream::Upstreams`, which
//! TCP listeners share too).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use super::mirror::Shadows;
use crate::access::AccessRing;
use crate::random::Random;
use crate::stats::Counters;
use crate::trace::span::Span;

/// The worker's state as a task of its own reaches it when it outlives the
/// request that started it (a mirrored request's shadow exchange, which
/// holds no connection and no borrow of the connection's task).
pub trait Home {
    /// The worker's connection counters.
    fn counters(&self) -> &Counters;
    /// The worker's HTTP state.
    fn http(&self) -> &WorkerHttp;
}

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
    /// The worker's state, for tasks that outlive a request (weak: the
    /// state holds this).
    home: Weak<dyn Home>,
    /// Shadow exchanges under way, and their spare buffers.
    shadows: Shadows,
}

impl WorkerHttp {
    /// State for worker `worker`; `seed` starts its random source. `home`
    /// is the worker state this is part of (made with `Rc::new_cyclic`).
    pub fn new(
        worker: usize,
        seed: u64,
        access: AccessRing,
        spans: Arc<ArrayQueue<Span>>,
        home: Weak<dyn Home>,
    ) -> Self {
        Self {
            worker,
            draining: Cell::new(false),
            rng: Random::new(seed),
            access: RefCell::new(access),
            spans,
            home,
            shadows: Shadows::default(),
        }
    }

    /// The worker's state, while the worker runs.
    pub(super) fn home(&self) -> Option<Rc<dyn Home>> {
        self.home.upgrade()
    }

    /// The worker's shadow exchanges.
    pub(super) fn shadows(&self) -> &Shadows {
        &self.shadows
    }

    /// A pseudo-random number (xorshift64*): for weighted picks and request
    /// ids. Not for secrets.
    pub fn random(&self) -> u64 {
        self.rng.next()
    }
}
