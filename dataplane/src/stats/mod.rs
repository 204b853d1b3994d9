//! Per-worker counters, written only by the worker that owns them.
//!
//! Each is a [`Counter`]: the owner adds with a plain load and store, and the
//! control agent reads copies ([`WorkerStats`]) whenever it likes, without a
//! lock. No counter on the forwarding path is written by two cores.

pub mod shortage;

use crate::counter::Counter;

/// A copy of one worker's counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections open now.
    pub active: u64,
    /// Accepts that failed (for example out of file descriptors).
    pub accept_errors: u64,
    /// Client connections closed at once on accept because the worker held
    /// its share of `runtime.max_connections`.
    pub refused: u64,
    /// Upstream connects refused, unreachable or otherwise failed.
    pub connect_failures: u64,
    /// Upstream connects that hit the cluster's connect timeout.
    pub connect_timeouts: u64,
    /// Upstream connects that failed for want of a local resource (file
    /// descriptors, memory, local ports): not counted against the endpoint.
    pub connect_local_failures: u64,
    /// Shortages of a local resource met, connecting or accepting (see
    /// [`shortage`]).
    pub shortages: u64,
    /// The last of them: what the worker was doing (high 32 bits, a
    /// [`shortage::Doing`]) and the errno (low 32 bits).
    pub last_shortage: u64,
    /// Idle pooled upstream connections closed because the upstream sent
    /// bytes that no request asked for.
    pub pool_unsolicited: u64,
    /// Client connections closed because no endpoint of the cluster answered.
    pub no_upstream: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Resets received on one side and passed on to the other.
    pub resets: u64,
    /// Bytes received from clients and sent upstream (for HTTP, message
    /// bodies: heads are rewritten, not forwarded).
    pub bytes_from_clients: u64,
    /// Bytes received from upstreams and sent to clients (for HTTP, message
    /// bodies).
    pub bytes_from_upstreams: u64,
    /// Bytes this worker copied in userspace between buffers. The TCP path
    /// sends from the buffer the kernel received into, so there it stays 0.
    pub copied_bytes: u64,
    /// Connections of a removed listener closed when its drain timeout ended.
    pub drain_cuts: u64,
    /// Listeners a new table added that this worker could not bind.
    pub bind_failures: u64,
}

/// The live counters of one worker.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) accepted: Counter,
    pub(crate) active: Counter,
    pub(crate) accept_errors: Counter,
    pub(crate) refused: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) connect_timeouts: Counter,
    pub(crate) connect_local_failures: Counter,
    pub(crate) shortages: Counter,
    pub(crate) last_shortage: Counter,
    pub(crate) pool_unsolicited: Counter,
    pub(crate) no_upstream: Counter,
    pub(crate) idle_timeouts: Counter,
    pub(crate) resets: Counter,
    pub(crate) bytes_from_clients: Counter,
    pub(crate) bytes_from_upstreams: Counter,
    pub(crate) copied_bytes: Counter,
    pub(crate) drain_cuts: Counter,
    pub(crate) bind_failures: Counter,
}

impl Counters {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            accepted: self.accepted.get(),
            active: self.active.get(),
            accept_errors: self.accept_errors.get(),
            refused: self.refused.get(),
            connect_failures: self.connect_failures.get(),
            connect_timeouts: self.connect_timeouts.get(),
            connect_local_failures: self.connect_local_failures.get(),
            shortages: self.shortages.get(),
            last_shortage: self.last_shortage.get(),
            pool_unsolicited: self.pool_unsolicited.get(),
            no_upstream: self.no_upstream.get(),
            idle_timeouts: self.idle_timeouts.get(),
            resets: self.resets.get(),
            bytes_from_clients: self.bytes_from_clients.get(),
            bytes_from_upstreams: self.bytes_from_upstreams.get(),
            copied_bytes: self.copied_bytes.get(),
            drain_cuts: self.drain_cuts.get(),
            bind_failures: self.bind_failures.get(),
        }
    }
}
