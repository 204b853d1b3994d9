//! What a worker knows of each endpoint's load: requests (or TCP
//! connections) in flight from this worker, and a peak-EWMA estimate of
//! its latency.
//!
//! Per worker by design: a worker balances by what it sees itself, with no
//! cross-core traffic per request. With `SO_REUSEPORT` spreading clients
//! over the workers, each sees a fair sample of the node's traffic; an
//! endpoint slow for one worker is slow for all, and each worker's own
//! estimate finds that out from its own requests.
//!
//! The estimate (after Finagle's and Linkerd's peak EWMA): a sample above
//! the estimate replaces it at once (a slowdown is believed immediately);
//! a sample below pulls it down by a weight that grows with the time since
//! the last update (an improvement is believed gradually); and between
//! samples the estimate decays towards zero with time constant `decay`, so
//! that an endpoint nobody chose for a while is tried again. A failure
//! (no answer, a reset, a timeout, 429 or 503) counts as a sample of
//! twice the estimate, at least the seed: an endpoint that fails fast does
//! not look fast.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::table::lb::Ewma;

/// One endpoint's load as this worker sees it.
#[derive(Debug)]
pub struct Load {
    in_flight: Cell<u32>,
    /// Latency estimate in nanoseconds, as of `stamp`.
    estimate: Cell<f64>,
    /// When `estimate` was last updated or decayed; `None` before any
    /// sample (the estimate is then the seed).
    stamp: Cell<Option<Instant>>,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            in_flight: Cell::new(0),
            estimate: Cell::new(0.0),
            stamp: Cell::new(None),
        }
    }
}

impl Load {
    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.get()
    }

    /// The latency estimate at `now` (decayed since its last update), in
    /// nanoseconds.
    pub fn estimate(&self, ewma: &Ewma, now: Instant) -> f64 {
        match self.stamp.get() {
            None => ewma.seed.as_nanos() as f64,
            Some(at) => {
                let elapsed = now.saturating_duration_since(at);
                let decayed = self.estimate.get() * decay(elapsed, ewma.decay);
                self.estimate.set(decayed);
                self.stamp.set(Some(now.max(at)));
                decayed
            }
        }
    }

    /// The peak-EWMA cost of sending one more request: the estimate times
    /// the requests it would then have in flight.
    pub fn cost(&self, ewma: &Ewma, now: Instant) -> f64 {
        self.estimate(ewma, now) * f64::from(self.in_flight.get() + 1)
    }

    /// A latency sample: `rtt`, observed at `now`.
    pub fn observe(&self, ewma: &Ewma, rtt: Duration, now: Instant) {
        let sample = rtt.as_nanos() as f64;
        let Some(at) = self.stamp.get() else {
            // The first sample: the seed stood for it until now.
            let seed = ewma.seed.as_nanos() as f64;
            self.estimate.set(if sample > seed {
                sample
            } else {
                seed + (sample - seed) * 0.5
            });
            self.stamp.set(Some(now));
            return;
        };
        let current = self.estimate.get();
        let next = if sample > current {
            sample
        } else {
            let recency = 1.0 - decay(now.saturating_duration_since(at), ewma.decay);
            current + (sample - current) * recency
        };
        self.estimate.set(next);
        self.stamp.set(Some(now.max(at)));
    }

    /// A failure at `now`: a sample of twice the estimate, at least the
    /// seed.
    pub fn penalize(&self, ewma: &Ewma, now: Instant) {
        let current = self.estimate(ewma, now);
        let seed = ewma.seed.as_nanos() as f64;
        let penalty = (current * 2.0).max(seed);
        self.estimate.set(penalty);
        self.stamp.set(Some(now));
    }
}

/// e^(-elapsed / period).
fn decay(elapsed: Duration, period: Duration) -> f64 {
    (-(elapsed.as_secs_f64() / period.as_secs_f64().max(1e-9))).exp()
}

/// One request (or TCP connection) in flight to an endpoint: counted while
/// it lives.
#[derive(Debug)]
pub struct InFlight {
    load: Rc<Load>,
}

impl InFlight {
    /// Counts one more in flight on `load`.
    pub fn start(load: Rc<Load>) -> Self {
        load.in_flight.set(load.in_flight.get() + 1);
        Self { load }
    }

    /// The endpoint's load.
    pub fn load(&self) -> &Load {
        &self.load
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = self.load.in_flight.get();
        self.load.in_flight.set(n.saturating_sub(1));
    }
}

/// The worker's load records, one per endpoint address (an endpoint in two
/// clusters is one endpoint, and a record outlives table generations).
/// Only endpoints of clusters whose policy reads load have one.
#[derive(Debug, Default)]
pub struct Loads {
    records: RefCell<HashMap<SocketAddr, Rc<Load>>>,
}

impl Loads {
    /// The record of `addr`, made if it has none.
    pub fn of(&self, addr: SocketAddr) -> Rc<Load> {
        Rc::clone(self.records.borrow_mut().entry(addr).or_default())
    }

    /// The record of `addr`, if it has one.
    pub fn get(&self, addr: SocketAddr) -> Option<Rc<Load>> {
        self.records.borrow().get(&addr).cloned()
    }

    /// Forgets records no table and no request holds any more.
    pub fn sweep(&self) {
        self.records
            .borrow_mut()
            .retain(|_, r| Rc::strong_count(r) > 1);
    }

    /// Records held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.borrow().len()
    }

    /// Whether no record is held.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.records.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn ewma() -> Ewma {
        Ewma {
            decay: Duration::from_secs(10),
            seed: 30 * MS,
        }
    }

    #[test]
    fn a_slow_sample_is_believed_at_once_a_fast_one_gradually() {
        let e = ewma();
        let t0 = Instant::now();
        let load = Load::default();
        assert_eq!(load.estimate(&e, t0), 30e6);
        load.observe(&e, 200 * MS, t0);
        assert_eq!(load.estimate(&e, t0), 200e6);
        // A fast answer 100 ms later moves it by about 1%.
        let t1 = t0 + 100 * MS;
        load.observe(&e, MS, t1);
        let after = load.estimate(&e, t1);
        assert!(after > 190e6 && after < 199e6, "{after}");
    }

    #[test]
    fn the_estimate_decays_while_nobody_asks() {
        let e = ewma();
        let t0 = Instant::now();
        let load = Load::default();
        load.observe(&e, 100 * MS, t0);
        let later = load.estimate(&e, t0 + Duration::from_secs(10));
        assert!((later - 100e6 / std::f64::consts::E).abs() < 1e3, "{later}");
    }

    #[test]
    fn a_failure_costs_at_least_the_seed_and_doubles() {
        let e = ewma();
        let t0 = Instant::now();
        let load = Load::default();
        load.penalize(&e, t0);
        assert_eq!(load.estimate(&e, t0), 60e6);
        load.penalize(&e, t0);
        assert_eq!(load.estimate(&e, t0), 120e6);
        // Below the seed, a failure still costs the seed.
        let fast = Load::default();
        fast.observe(&e, MS, t0);
        fast.observe(&e, MS, t0 + Duration::from_secs(60));
        assert!(fast.estimate(&e, t0 + Duration::from_secs(60)) < 2e6);
        fast.penalize(&e, t0 + Duration::from_secs(60));
        assert_eq!(fast.estimate(&e, t0 + Duration::from_secs(60)), 30e6);
    }

    #[test]
    fn in_flight_counts_while_held_and_cost_grows_with_it() {
        let e = ewma();
        let now = Instant::now();
        let load = Rc::new(Load::default());
        let one = InFlight::start(Rc::clone(&load));
        let two = InFlight::start(Rc::clone(&load));
        assert_eq!(load.in_flight(), 2);
        assert_eq!(load.cost(&e, now), 3.0 * 30e6);
        drop(one);
        drop(two);
        assert_eq!(load.in_flight(), 0);
    }

    #[test]
    fn records_outlive_nothing_that_holds_them() {
        let loads = Loads::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let held = loads.of(addr);
        assert!(Rc::ptr_eq(&held, &loads.of(addr)));
        loads.sweep();
        assert_eq!(loads.len(), 1);
        drop(held);
        loads.sweep();
        assert!(loads.is_empty());
    }
}
