//! A worker's HTTP state: what every HTTP connection of the worker shares.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::link::WorkerLink;
use crate::rt::{self, time::sleep};
use crate::upstream::pool::Pool;

/// A worker's HTTP state: its upstream pools, its drain flag and its random
/// source.
#[derive(Debug)]
pub struct WorkerHttp {
    /// The worker's index (selects its counters in every tally).
    pub worker: usize,
    /// Idle upstream connections.
    pub pool: Pool,
    /// Set when the worker begins to drain (after its listeners stopped):
    /// every answer from then on says `connection: close`, and a
    /// connection waiting for its next request closes after a short grace
    /// unless one arrives.
    pub draining: Cell<bool>,
    rng: Cell<u64>,
}

impl WorkerHttp {
    /// State for worker `worker`; `seed` starts its random source.
    pub fn new(worker: usize, seed: u64) -> Self {
        Self {
            worker,
            pool: Pool::default(),
            draining: Cell::new(false),
            // xorshift must not start at 0.
            rng: Cell::new(seed | 1),
        }
    }

    /// A pseudo-random number (xorshift64*): for weighted picks and request
    /// ids. Not for secrets.
    pub fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Closes the worker's idle upstream connections that expired, that the
/// upstream closed or that heard bytes, once a second, for as long as the
/// worker runs; `link` holds the worker's counters.
pub async fn sweep_pool(http: Rc<WorkerHttp>, link: Arc<WorkerLink>) {
    loop {
        if sleep(Duration::from_secs(1)).await.is_err() {
            return;
        }
        http.pool.sweep(rt::now(), link.counters());
    }
}
