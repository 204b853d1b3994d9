//! The counters of one ring: written by its worker thread, read by the
//! control agent (see [`crate::counter::Counter`]).

use std::sync::Arc;

use crate::buf::{PoolCounters, PoolStats};
use crate::counter::Counter;

/// A copy of one ring's counters at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub struct RingStats {
    /// SQEs handed to the kernel.
    pub submitted: u64,
    /// CQEs reaped.
    pub completed: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Recv ops that ended with `ENOBUFS` (the buffer ring ran dry).
    pub enobufs: u64,
    /// Multishot ops re-armed after they ended.
    pub rearms: u64,
    /// `io_uring_enter` calls that met a transient error (`EAGAIN`,
    /// `ENOMEM`, `EBUSY`, `EINTR`) and were retried after reaping.
    pub enter_retries: u64,
    /// Completions the kernel dropped because the completion queue
    /// overflowed (their ops' slots are leaked, never reused).
    pub cq_dropped: u64,
    /// Cancels that failed for an op nobody owns any more; its socket was
    /// shut down instead.
    pub cancel_failures: u64,
    /// Each buffer group's figures, by [`crate::buf::Group`] id.
    pub pools: [PoolStats; 2],
}

/// The live counters of one ring: written by its thread only, readable from
/// any (see [`Counter`]). Aligned to a cache line pair of its own, so that no
/// other thread's data shares the lines its thread writes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct RingCounters {
    pub(crate) submitted: Counter,
    pub(crate) completed: Counter,
    pub(crate) enters: Counter,
    pub(crate) enobufs: Counter,
    pub(crate) rearms: Counter,
    pub(crate) enter_retries: Counter,
    pub(crate) cq_dropped: Counter,
    pub(crate) cancel_failures: Counter,
    /// Each buffer group's counters, shared with its pool.
    pub(crate) pools: [Arc<PoolCounters>; 2],
}

impl RingCounters {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> RingStats {
        RingStats {
            submitted: self.submitted.get(),
            completed: self.completed.get(),
            enters: self.enters.get(),
            enobufs: self.enobufs.get(),
            rearms: self.rearms.get(),
            enter_retries: self.enter_retries.get(),
            cq_dropped: self.cq_dropped.get(),
            cancel_failures: self.cancel_failures.get(),
            pools: [self.pools[0].snapshot(), self.pools[1].snapshot()],
        }
    }
}
