//! A cluster's passive outlier detection settings: when a worker ejects an
//! endpoint that keeps failing, and for how long.

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
