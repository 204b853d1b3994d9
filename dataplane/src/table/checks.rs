//! Active health checks of a cluster's endpoints: what to check, and each
//! endpoint's verdict, which the control core writes and every worker
//! reads.
//!
//! The checks run once per node, on the control core, not once per worker.
//! Each endpoint's verdict is one atomic flag with a single writer (the
//! control thread's checker of that cluster), read by the workers when they
//! pick; a cluster keeps a count of endpoints passing, so that a pick can
//! tell "every endpoint fails its checks" without looking at each (then the
//! checks are ignored rather than refusing everything: a check that is
//! wrong must not take a whole cluster down).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default time between two checks of one endpoint (HAProxy's `inter`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// Default time a check may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default checks in a row that bring an endpoint back (HAProxy's `rise`).
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Default checks in a row that take it out (HAProxy's `fall`).
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect that succeeds.
    Tcp,
    /// `GET path` answered with one of `statuses`.
    Http {
        /// The path (and query) asked for.
        path: Arc<str>,
        /// The `Host` sent; the endpoint's address when `None`.
        host: Option<Arc<str>>,
        /// Statuses that pass, as inclusive ranges.
        statuses: Vec<(u16, u16)>,
    },
}

/// The settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// What a check does.
    pub probe: Probe,
    /// Time between two checks of one endpoint.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Passes in a row that bring a failing endpoint back.
    pub healthy_threshold: u32,
    /// Failures in a row that take a passing endpoint out.
    pub unhealthy_threshold: u32,
}

/// A cluster's checks: the settings and the endpoints' verdicts.
#[derive(Debug, Clone)]
pub struct Checks {
    /// The settings.
    pub settings: CheckSettings,
    /// The verdicts, one per endpoint of the cluster, in its order.
    pub verdicts: Arc<Verdicts>,
}

/// Each endpoint's verdict, and how many pass.
#[derive(Debug)]
pub struct Verdicts {
    endpoints: Vec<(SocketAddr, AtomicBool)>,
    passing: AtomicU32,
}

impl Verdicts {
    /// Verdicts for `endpoints`: each one's as `previous` has it (the same
    /// cluster before a change), passing if it is new.
    pub fn new(endpoints: &[SocketAddr], previous: Option<&Verdicts>) -> Self {
        let endpoints: Vec<(SocketAddr, AtomicBool)> = endpoints
            .iter()
            .map(|&addr| {
                let passing = previous
                    .and_then(|p| p.endpoints.iter().find(|(a, _)| *a == addr))
                    .is_none_or(|(_, ok)| ok.load(Ordering::Relaxed));
                (addr, AtomicBool::new(passing))
            })
            .collect();
        let passing = endpoints
            .iter()
            .filter(|(_, ok)| ok.load(Ordering::Relaxed))
            .count() as u32;
        Self {
            endpoints,
            passing: AtomicU32::new(passing),
        }
    }

    /// Whether a connection may go to endpoint `i` as far as the checks
    /// tell: it passes, or no endpoint of the cluster does.
    pub fn admits(&self, i: usize) -> bool {
        self.endpoints
            .get(i)
            .is_none_or(|(_, ok)| ok.load(Ordering::Relaxed))
            || self.passing.load(Ordering::Relaxed) == 0
    }

    /// The endpoints, in order.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.endpoints.iter().map(|(a, _)| *a)
    }

    /// Whether endpoint `i` passes.
    pub fn passes(&self, i: usize) -> bool {
        self.endpoints
            .get(i)
            .is_some_and(|(_, ok)| ok.load(Ordering::Relaxed))
    }

    /// Sets endpoint `i`'s verdict (the checker, on the control core, is the
    /// one writer); returns whether it changed.
    pub fn set(&self, i: usize, passing: bool) -> bool {
        let Some((_, ok)) = self.endpoints.get(i) else {
            return false;
        };
        if ok.swap(passing, Ordering::Relaxed) == passing {
            return false;
        }
        if passing {
            self.passing.fetch_add(1, Ordering::Relaxed);
        } else {
            self.passing.fetch_sub(1, Ordering::Relaxed);
        }
        true
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

    #[test]
    fn a_failing_endpoint_is_not_admitted_unless_every_one_fails() {
        let v = Verdicts::new(&addrs(2), None);
        assert!(v.admits(0) && v.admits(1));
        assert!(v.set(0, false));
        assert!(!v.set(0, false), "no change");
        assert!(!v.admits(0) && v.admits(1));
        v.set(1, false);
        assert!(
            v.admits(0) && v.admits(1),
            "all failing: the checks are ignored"
        );
        v.set(1, true);
        assert!(!v.admits(0) && v.admits(1));
    }

    #[test]
    fn verdicts_carry_over_by_address() {
        let old = Verdicts::new(&addrs(3), None);
        old.set(1, false);
        let mut next = addrs(3);
        next.remove(0);
        next.push(SocketAddr::from(([127, 0, 0, 1], 9)));
        let new = Verdicts::new(&next, Some(&old));
        assert!(!new.passes(0), "127.0.0.1:2 failed before");
        assert!(new.passes(1) && new.passes(2));
        assert!(!new.admits(0));
    }
}
