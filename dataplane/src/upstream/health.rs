//! What a worker knows of its endpoints' health, per endpoint address.
//!
//! Two passive signals, both per worker:
//!
//! - **The connect hold-down.** An endpoint whose connect failed is held out
//!   for [`HOLD_DOWN`], so every connection does not pay for a connect to a
//!   dead endpoint; a connect that succeeds clears the hold.
//! - **Ejection** (outlier detection, per the cluster's
//!   [`Outlier`](crate::table::outlier::Outlier) settings). Gateway failures
//!   in a row (a failed connect, a reset, no answer in time, a 502/503/504
//!   from the upstream) eject the endpoint: the n-th ejection lasts n times
//!   the base, plus up to half again at random, up to the maximum. When it
//!   ends, one request probes the endpoint while the others still pass it
//!   by: a success returns it, a failure ejects it again for longer. An
//!   ejection that would leave the cluster with more than
//!   `max_ejection_percent` of its endpoints out, or with none, does not
//!   happen.
//!
//! Keyed by address rather than by cluster, so what a worker learnt
//! survives table changes that keep the endpoint, and an endpoint in two
//! clusters is one endpoint. In the usual case (every endpoint answering)
//! the map is empty and asking about an endpoint costs no hashing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::random::Random;
use crate::table::outlier::Outlier;

/// How long an endpoint whose connect failed is held out on this worker.
/// Long enough that a dead endpoint costs one failed connect per couple of
/// seconds rather than one per connection; short enough that one that comes
/// back is used again almost at once.
pub const HOLD_DOWN: Duration = Duration::from_secs(2);

/// How long a probe may stay unanswered before another request may probe
/// the endpoint: a probe whose exchange ends without a verdict (the client
/// went away, the exchange was cut) must not keep the endpoint out for
/// good.
pub const PROBE_PATIENCE: Duration = Duration::from_secs(10);

/// How long an endpoint that came back from an ejection is remembered: its
/// next ejection within this lasts longer than the last; after it, the
/// next is the first again.
pub const REMEMBER: Duration = Duration::from_secs(300);

/// One worker's health records. Only endpoints with something to remember
/// have one.
#[derive(Debug)]
pub struct Health {
    records: RefCell<HashMap<SocketAddr, Record>>,
    /// For the ejections' jitter.
    rng: Random,
    /// The index of the worker whose records these are: a connect made
    /// along a walk of them is timed in that worker's block of the
    /// cluster's tally.
    worker: usize,
}

impl Default for Health {
    fn default() -> Self {
        Self::for_worker(0)
    }
}

impl Health {
    /// No records yet, for worker `worker`.
    pub fn for_worker(worker: usize) -> Self {
        Self {
            records: RefCell::default(),
            rng: Random::new(0x853c_49e6_748f_ea9b),
            worker,
        }
    }

    /// The index of the worker whose records these are.
    pub fn worker(&self) -> usize {
        self.worker
    }
}

/// What the worker remembers of one endpoint.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    /// Held out until then (its last connect failed).
    held_until: Option<Instant>,
    /// Gateway failures in a row.
    failures: u32,
    /// Ejected until then.
    ejected_until: Option<Instant>,
    /// Ejections so far (the next lasts one base longer); forgotten once
    /// the endpoint has been back for [`REMEMBER`].
    ejections: u32,
    /// The ejection ended and one request went to probe it, then: the
    /// others pass the endpoint by until that one's result, or for
    /// [`PROBE_PATIENCE`].
    probe_out: Option<Instant>,
    /// When it last came back (a probe succeeded).
    returned: Option<Instant>,
}

impl Record {
    fn ejection_over(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|t| t <= now)
    }

    fn is_down(&self, now: Instant) -> bool {
        self.held_until.is_some_and(|t| t > now)
            || self.ejected_until.is_some_and(|t| t > now)
            || (self.ejection_over(now) && self.probe_out.is_some_and(|t| now < t + PROBE_PATIENCE))
    }
}

/// What a gateway failure did to its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; the endpoint stays in.
    Counted,
    /// Ejected for this long.
    Ejected(Duration),
    /// Due for ejection, but the cluster's limit keeps it in.
    Spared,
}

impl Health {
    /// Whether `addr` is held out or ejected now (or its probe is out).
    pub fn is_down(&self, addr: SocketAddr, now: Instant) -> bool {
        let records = self.records.borrow();
        !records.is_empty() && records.get(&addr).is_some_and(|r| r.is_down(now))
    }

    /// Whether a connection may go to `addr` now; if its ejection just
    /// ended, this connection is the probe, and the others wait for it.
    pub fn admit(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut records = self.records.borrow_mut();
        if records.is_empty() {
            return true;
        }
        let Some(r) = records.get_mut(&addr) else {
            return true;
        };
        if r.is_down(now) {
            return false;
        }
        if r.ejection_over(now) {
            r.probe_out = Some(now);
        }
        true
    }

    /// A connect to `addr` failed: holds it out until `now + HOLD_DOWN`.
    pub fn mark_down(&self, addr: SocketAddr, now: Instant) {
        let mut records = self.records.borrow_mut();
        records.entry(addr).or_default().held_until = Some(now + HOLD_DOWN);
    }

    /// A connect to `addr` succeeded: clears its hold.
    pub fn mark_up(&self, addr: SocketAddr) {
        let mut records = self.records.borrow_mut();
        if records.is_empty() {
            return;
        }
        if let Some(r) = records.get_mut(&addr) {
            r.held_until = None;
        }
    }

    /// `addr` answered well (or, for TCP, took the connection): its run of
    /// failures ends, and if it was being probed it is back (`true`).
    pub fn succeeded(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut records = self.records.borrow_mut();
        if records.is_empty() {
            return false;
        }
        let Some(r) = records.get_mut(&addr) else {
            return false;
        };
        r.failures = 0;
        if !r.ejection_over(now) {
            return false;
        }
        r.ejected_until = None;
        r.probe_out = None;
        r.returned = Some(now);
        true
    }

    /// A gateway failure of `addr`, an endpoint of a cluster of
    /// `endpoints` with `outlier` settings.
    pub fn failed(
        &self,
        addr: SocketAddr,
        outlier: &Outlier,
        endpoints: &[SocketAddr],
        now: Instant,
    ) -> Verdict {
        if outlier.consecutive_failures == 0 {
            return Verdict::Counted;
        }
        let mut records = self.records.borrow_mut();
        let r = records.entry(addr).or_default();
        r.failures += 1;
        let probe_failed = r.ejection_over(now) && r.probe_out.is_some();
        if !probe_failed && r.failures < outlier.consecutive_failures {
            return Verdict::Counted;
        }
        if !probe_failed && r.ejected_until.is_some_and(|t| t > now) {
            // Already out (a request sent before the ejection failed too).
            return Verdict::Counted;
        }
        // The limit: never the last endpoint, never past the share.
        let out = endpoints
            .iter()
            .filter(|&&e| e != addr && records.get(&e).is_some_and(|o| o.is_down(now)))
            .count();
        let n = endpoints.len();
        let allowed = (n * outlier.max_ejection_percent as usize) / 100;
        if out + 1 >= n.max(1) || out + 1 > allowed {
            return Verdict::Spared;
        }
        let jitter = self.rng.unit();
        let r = records.entry(addr).or_default();
        r.ejections += 1;
        let length = outlier.ejection(r.ejections).mul_f64(1.0 + 0.5 * jitter);
        r.ejected_until = Some(now + length);
        r.probe_out = None;
        r.failures = 0;
        Verdict::Ejected(length)
    }

    /// Forgets records that hold nothing any more: no hold, no failures,
    /// no ejection that ended less than `forget_after` ago ([`REMEMBER`]
    /// outside tests; an endpoint no request probed since is forgotten too,
    /// say one that left the configuration), and back for longer than
    /// `forget_after`.
    pub fn sweep(&self, now: Instant, forget_after: Duration) {
        self.records.borrow_mut().retain(|_, r| {
            r.held_until.is_some_and(|t| t > now)
                || r.ejected_until
                    .is_some_and(|t| now.saturating_duration_since(t) < forget_after)
                || r.failures > 0
                || r.returned
                    .is_some_and(|t| now.saturating_duration_since(t) < forget_after)
        });
    }

    /// Endpoints with a record (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (1..=n)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    fn outlier(failures: u32) -> Outlier {
        Outlier {
            consecutive_failures: failures,
            ..Outlier::default()
        }
    }

    #[test]
    fn a_failed_endpoint_is_held_out_for_the_hold_down_only() {
        let health = Health::default();
        let [addr, other] = addrs(2)[..] else {
            unreachable!()
        };
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
        let [a, b] = addrs(2)[..] else { unreachable!() };
        let now = Instant::now();
        health.mark_down(a, now);
        health.mark_down(b, now);
        health.mark_up(a);
        assert!(!health.is_down(a, now));
        assert!(health.is_down(b, now));
        health.sweep(now + HOLD_DOWN, Duration::from_secs(60));
        assert_eq!(health.len(), 0);
    }

    #[test]
    fn failures_in_a_row_eject_and_a_success_between_resets_the_run() {
        let health = Health::default();
        let all = addrs(4);
        let o = outlier(3);
        let now = Instant::now();
        assert_eq!(health.failed(all[0], &o, &all, now), Verdict::Counted);
        assert_eq!(health.failed(all[0], &o, &all, now), Verdict::Counted);
        health.succeeded(all[0], now);
        assert_eq!(health.failed(all[0], &o, &all, now), Verdict::Counted);
        assert_eq!(health.failed(all[0], &o, &all, now), Verdict::Counted);
        let Verdict::Ejected(length) = health.failed(all[0], &o, &all, now) else {
            panic!("not ejected after 3 in a row");
        };
        assert!(length >= Duration::from_secs(1) && length < Duration::from_millis(1500));
        assert!(health.is_down(all[0], now));
        assert!(!health.is_down(all[0], now + length));
    }

    #[test]
    fn one_probe_goes_after_an_ejection_and_its_result_decides() {
        let health = Health::default();
        let all = addrs(4);
        let o = outlier(1);
        let now = Instant::now();
        let Verdict::Ejected(first) = health.failed(all[0], &o, &all, now) else {
            panic!()
        };
        let later = now + first;
        assert!(health.admit(all[0], later), "the probe goes");
        assert!(!health.admit(all[0], later), "the others wait for it");
        // A probe that never reports does not keep the endpoint out: after
        // the patience another request probes.
        assert!(health.admit(all[0], later + PROBE_PATIENCE));
        // The probe fails: ejected again, for longer (the 2nd: 2 s + jitter).
        let Verdict::Ejected(second) = health.failed(all[0], &o, &all, later) else {
            panic!("a failed probe ejects again")
        };
        assert!(second >= Duration::from_secs(2), "{second:?}");
        let later = later + second;
        assert!(health.admit(all[0], later));
        health.succeeded(all[0], later);
        assert!(
            health.admit(all[0], later) && health.admit(all[0], later),
            "back for everyone"
        );
        health.sweep(later + Duration::from_secs(61), Duration::from_secs(60));
        assert_eq!(health.len(), 0);
    }

    #[test]
    fn ejections_stop_at_the_cluster_share_and_never_take_the_last() {
        let health = Health::default();
        let all = addrs(4);
        let o = outlier(1);
        let now = Instant::now();
        assert!(matches!(
            health.failed(all[0], &o, &all, now),
            Verdict::Ejected(_)
        ));
        assert!(matches!(
            health.failed(all[1], &o, &all, now),
            Verdict::Ejected(_)
        ));
        // Half of four are out: the third is spared.
        assert_eq!(health.failed(all[2], &o, &all, now), Verdict::Spared);
        assert!(!health.is_down(all[2], now));
        // A cluster of one never loses its endpoint, whatever the share.
        let one = &all[3..];
        let all_out = Outlier {
            max_ejection_percent: 100,
            ..o
        };
        assert_eq!(health.failed(all[3], &all_out, one, now), Verdict::Spared);
    }

    #[test]
    fn zero_failures_turns_ejection_off() {
        let health = Health::default();
        let all = addrs(2);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                health.failed(all[0], &outlier(0), &all, now),
                Verdict::Counted
            );
        }
        assert!(!health.is_down(all[0], now));
    }

    #[test]
    fn an_ejected_endpoint_nobody_probes_is_forgotten() {
        let health = Health::default();
        let all: Vec<SocketAddr> = (1..=4)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let o = Outlier {
            consecutive_failures: 1,
            ..Outlier::default()
        };
        let now = Instant::now();
        let Verdict::Ejected(length) = health.failed(all[0], &o, &all, now) else {
            panic!()
        };
        health.sweep(now + length, REMEMBER);
        assert_eq!(health.len(), 1, "just over: kept, its probe is due");
        health.sweep(now + length + REMEMBER, REMEMBER);
        assert_eq!(health.len(), 0);
    }
}
