//! A cluster's passive outlier detection settings: when a worker ejects an
//! endpoint that keeps failing, and for how long.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default `consecutive_gateway_failures`.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Default `base_ejection_time`.
pub const DEFAULT_BASE_EJECTION: Duration = Duration::from_secs(1);
/// Default `max_ejection_time`.
pub const DEFAULT_MAX_EJECTION: Duration = Duration::from_secs(60);
/// Default `max_ejection_percent`.
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 50;

/// The settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlier {
    /// Gateway failures in a row (a failed connect, a reset, no answer in
    /// time, a 502/503/504 from the upstream) that eject an endpoint; 0
    /// turns ejection off.
    pub consecutive_failures: u32,
    /// The first ejection's length; the n-th lasts n times this, plus up to
    /// half again at random, up to `max_ejection`.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// Most endpoints of the cluster held out at once, in percent; never
    /// the last one.
    pub max_ejection_percent: u32,
}

impl Default for Outlier {
    fn default() -> Self {
        Self {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            base_ejection: DEFAULT_BASE_EJECTION,
            max_ejection: DEFAULT_MAX_EJECTION,
            max_ejection_percent: DEFAULT_MAX_EJECTION_PERCENT,
        }
    }
}

impl Outlier {
    /// The length of ejection number `n` (from 1), before jitter.
    pub fn ejection(&self, n: u32) -> Duration {
        self.base_ejection
            .saturating_mul(n.max(1))
            .min(self.max_ejection)
    }
}

/// What passive ejection did to one endpoint, node-wide: written by a
/// worker only when it ejects the endpoint or takes it back (rare next to
/// requests), read by the agent for `/stats`, `/metrics` and its log.
#[derive(Debug, Default)]
pub struct EndpointCells {
    /// Ejections after consecutive gateway failures, every worker's.
    pub ejections: AtomicU64,
    /// Returns: a probe after an ejection answered well.
    pub returns: AtomicU64,
    /// Ejections the cluster's limit did not allow (the endpoint was due).
    pub spared: AtomicU64,
}

/// The [`EndpointCells`] of a cluster's endpoints, in endpoint order. Each
/// endpoint's cells outlive table generations: a reload or an endpoint
/// update carries them over by address.
#[derive(Debug, Clone, Default)]
pub struct EndpointEvents {
    cells: Arc<[(SocketAddr, Arc<EndpointCells>)]>,
}

impl EndpointEvents {
    /// Cells for `endpoints`, the same ones as in `previous` for the
    /// addresses it has.
    pub fn new(endpoints: &[SocketAddr], previous: Option<&EndpointEvents>) -> Self {
        let cells = endpoints
            .iter()
            .map(|&addr| {
                let kept = previous.and_then(|p| p.of(addr)).map(Arc::clone);
                (addr, kept.unwrap_or_default())
            })
            .collect();
        Self { cells }
    }

    /// The cells of `addr`, if it is an endpoint of the cluster.
    pub fn of(&self, addr: SocketAddr) -> Option<&Arc<EndpointCells>> {
        self.cells.iter().find(|(a, _)| *a == addr).map(|(_, c)| c)
    }

    /// Every endpoint with its cells.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &EndpointCells)> {
        self.cells.iter().map(|(a, c)| (*a, &**c))
    }

    /// Counts one `what` of `addr` (nothing if it is not an endpoint).
    pub fn count(&self, addr: SocketAddr, what: impl Fn(&EndpointCells) -> &AtomicU64) {
        if let Some(cells) = self.of(addr) {
            what(cells).fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_cells_carry_over_by_address() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let first = EndpointEvents::new(&[a, b], None);
        first.count(b, |c| &c.ejections);
        first.count("127.0.0.1:9".parse().expect("addr"), |c| &c.ejections);
        let next = EndpointEvents::new(&[b], Some(&first));
        let counts: Vec<(SocketAddr, u64)> = next
            .iter()
            .map(|(addr, c)| (addr, c.ejections.load(Ordering::Relaxed)))
            .collect();
        assert_eq!(counts, vec![(b, 1)]);
    }
}
