//! A sidecar pair: one system run as two processes of the same kind, an
//! outbound half the clients talk to and an inbound half in front of the
//! origins, the outbound forwarding to the inbound (over TLS when the
//! scenario has it). Both run on the proxy core, each as a single system
//! does; the pair is one [`Running`] whose figures (CPU, memory, processes)
//! are the two halves' sums, with each half's CPU also given apart.

use std::net::SocketAddr;

use super::{Binaries, Kind, Running, SystemError};
use crate::compare::configs::{Layout, ListenerTls};

impl Running {
    /// Starts `kind` as a pair: the inbound half for `inbound` first, then
    /// the outbound half for `outbound`, whose upstream is the inbound's
    /// listener. If the outbound half cannot start, the inbound one is
    /// stopped. The load goes to the outbound half.
    pub fn start_pair(
        kind: Kind,
        outbound: &Layout,
        inbound: &Layout,
        bins: &Binaries,
    ) -> Result<Running, SystemError> {
        let half = |half, source| SystemError::Half {
            half,
            source: Box::new(source),
        };
        let inner = Running::start(kind, inbound, bins).map_err(|e| half("inbound", e))?;
        match Running::start(kind, outbound, bins) {
            Ok(mut outer) => {
                outer.inbound = Some(Box::new(inner));
                Ok(outer)
            }
            Err(e) => {
                // The inbound half's own trouble stopping is secondary.
                let _ = inner.stop();
                Err(half("outbound", e))
            }
        }
    }

    /// The inbound half of a pair: its listener and the TLS on it.
    pub fn inbound(&self) -> Option<(SocketAddr, Option<&ListenerTls>)> {
        self.inbound.as_deref().map(|i| (i.target, i.tls.as_ref()))
    }

    /// A pair's CPU time by half, outbound then inbound, in clock ticks;
    /// `None` for a single system.
    pub fn half_ticks(&self) -> Option<[u64; 2]> {
        let inbound = self.inbound.as_deref()?;
        Some([self.own_ticks(), inbound.own_ticks()])
    }
}
