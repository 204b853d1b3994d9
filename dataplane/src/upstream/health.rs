//! What a worker knows of its endpoints' health, per endpoint address.
//!
//! Today that is passive only: an endpoint whose connect failed is held out
//! for [`HOLD_DOWN`], so every connection does not pay for a connect to a
//! dead endpoint; a connect that succeeds clears the hold. Keyed by address
//! rather than by cluster, so what a worker learnt survives table changes
//! that keep the endpoint, and an endpoint in two clusters is one endpoint.
//!
//! Outlier detection (failure rates, ejections that grow) and active health
//! checks will keep their state in the same [`Record`], and feed the same
//! question the pick asks, [`Health::is_down`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an endpoint whose connect failed is held out on this worker.
/// Long enough that a dead endpoint costs one failed connect per couple of
/// seconds rather than one per connection; short enough that one that comes
/// back is used again almost at once. (Active health checks come later.)
pub const HOLD_DOWN: Duration = Duration::from_secs(2);

/// One worker's health records. Only endpoints with something to remember
/// have one: in the usual case (every endpoint answering) the map is empty
/// and asking about an endpoint costs no hashing.
#[derive(Debug, Default)]
pub struct Health {
    records: RefCell<HashMap<SocketAddr, Record>>,
}

/// What the worker remembers of one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Held out until then (its last connect failed).
    pub down_until: Instant,
}

impl Health {
    /// Whether `addr` is held out now.
    pub fn is_down(&self, addr: SocketAddr, now: Instant) -> bool {
        let records = self.records.borrow();
        !records.is_empty() && records.get(&addr).is_some_and(|r| r.down_until > now)
    }

    /// A connect to `addr` failed: holds it out until `now + HOLD_DOWN`.
    pub fn mark_down(&self, addr: SocketAddr, now: Instant) {
        self.records.borrow_mut().insert(
            addr,
            Record {
                down_until: now + HOLD_DOWN,
            },
        );
    }

    /// A connect to `addr` succeeded: clears its hold.
    pub fn mark_up(&self, addr: SocketAddr) {
        let mut records = self.records.borrow_mut();
        if !records.is_empty() {
            records.remove(&addr);
        }
    }

    /// Forgets records that no longer hold anything out.
    pub fn sweep(&self, now: Instant) {
        self.records.borrow_mut().retain(|_, r| r.down_until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_endpoint_is_held_out_for_the_hold_down_only() {
        let health = Health::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let now = Instant::now();
        assert!(!health.is_down(addr, now));
        health.mark_down(addr, now);
        assert!(health.is_down(addr, now));
        assert!(health.is_down(addr, now + HOLD_DOWN - Duration::from_millis(1)));
        assert!(!health.is_down(addr, now + HOLD_DOWN));
        assert!(!health.is_down(other, now));
    }

    #[test]
    fn a_success_clears_the_hold_and_a_sweep_forgets_expired_ones() {
        let health = Health::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let now = Instant::now();
        health.mark_down(a, now);
        health.mark_down(b, now);
        health.mark_up(a);
        assert!(!health.is_down(a, now));
        assert!(health.is_down(b, now));
        health.sweep(now + HOLD_DOWN);
        assert!(health.records.borrow().is_empty());
    }
}
