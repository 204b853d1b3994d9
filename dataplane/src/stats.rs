//! Per-worker counters, kept in plain memory by the worker that owns them.
//!
//! Only the owning worker writes them; the control side gets copies
//! ([`WorkerStats`]) and never touches the live ones, so no counter on the
//! forwarding path is shared between cores.

use std::cell::Cell;

/// A copy of one worker's counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections open now.
    pub active: u64,
    /// Accepts that failed (for example out of file descriptors).
    pub accept_errors: u64,
    /// Upstream connects refused, unreachable or otherwise failed.
    pub connect_failures: u64,
    /// Upstream connects that hit the cluster's connect timeout.
    pub connect_timeouts: u64,
    /// Client connections closed because no endpoint of the cluster answered.
    pub no_upstream: u64,
    /// Connections closed by the idle timeout.
    pub idle_timeouts: u64,
    /// Resets received on one side and passed on to the other.
    pub resets: u64,
    /// Bytes received from clients and sent upstream.
    pub bytes_from_clients: u64,
    /// Bytes received from upstreams and sent to clients.
    pub bytes_from_upstreams: u64,
    /// Bytes this worker copied in userspace between buffers. The TCP path
    /// sends from the buffer the kernel received into, so there it stays 0.
    pub copied_bytes: u64,
}

/// The live counters of one worker.
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) accepted: Cell<u64>,
    pub(crate) active: Cell<u64>,
    pub(crate) accept_errors: Cell<u64>,
    pub(crate) connect_failures: Cell<u64>,
    pub(crate) connect_timeouts: Cell<u64>,
    pub(crate) no_upstream: Cell<u64>,
    pub(crate) idle_timeouts: Cell<u64>,
    pub(crate) resets: Cell<u64>,
    pub(crate) bytes_from_clients: Cell<u64>,
    pub(crate) bytes_from_upstreams: Cell<u64>,
    pub(crate) copied_bytes: Cell<u64>,
}

impl Counters {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            accepted: self.accepted.get(),
            active: self.active.get(),
            accept_errors: self.accept_errors.get(),
            connect_failures: self.connect_failures.get(),
            connect_timeouts: self.connect_timeouts.get(),
            no_upstream: self.no_upstream.get(),
            idle_timeouts: self.idle_timeouts.get(),
            resets: self.resets.get(),
            bytes_from_clients: self.bytes_from_clients.get(),
            bytes_from_upstreams: self.bytes_from_upstreams.get(),
            copied_bytes: self.copied_bytes.get(),
        }
    }
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &Cell<u64>, n: u64) {
    counter.set(counter.get().wrapping_add(n));
}
