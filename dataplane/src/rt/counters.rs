//! The counters of one ring: written by its worker thread, read by the
//! control agent (see [`crate::counter::Counter`]). Declared once, like the
//! worker's (see [`crate::counter::vocabulary`]).

use std::sync::Arc;

use crate::buf::{PoolCounters, PoolStats};
use crate::counter::counters;
use crate::counter::vocabulary::Cli::Listed;

counters! {
    /// A copy of one ring's counters at one moment.
    pub struct RingStats;
    /// The live counters of one ring: written by its thread only, readable
    /// from any (see [`crate::counter::Counter`]). Aligned to a cache line
    /// pair of its own, so that no other thread's data shares the lines its
    /// thread writes.
    #[repr(align(128))]
    pub struct RingCounters;
    exposed {
        /// SQEs handed to the kernel.
        submitted: Counter, "sqes", "ringway_ring_sqes_total", Listed,
            "Submission queue entries handed to the kernel.";
        /// CQEs reaped.
        completed: Counter, "cqes", "ringway_ring_cqes_total", Listed,
            "Completion queue entries reaped.";
        /// `io_uring_enter` calls.
        enters: Counter, "enters", "ringway_ring_enters_total", Listed,
            "io_uring_enter calls.";
        /// Recv ops that ended with `ENOBUFS` (the buffer ring ran dry).
        enobufs: Counter, "enobufs", "ringway_ring_enobufs_total", Listed,
            "Receives that found the buffer ring empty.";
        /// Multishot ops re-armed after they ended.
        rearms: Counter, "rearms", "ringway_ring_rearms_total", Listed,
            "Multishot operations re-armed after they ended.";
        /// `io_uring_enter` calls that met a transient error (`EAGAIN`,
        /// `ENOMEM`, `EBUSY`, `EINTR`) and were retried after reaping.
        enter_retries: Counter, "enter_retries", "ringway_ring_enter_retries_total", Listed,
            "io_uring_enter calls that met a transient error (EAGAIN, ENOMEM, EBUSY, EINTR) and were retried.";
        /// Completions the kernel dropped because the completion queue
        /// overflowed (their ops' slots are leaked, never reused).
        cq_dropped: Counter, "cq_dropped", "ringway_ring_cq_dropped_total", Listed,
            "Completions the kernel dropped because the completion queue overflowed.";
        /// Cancels that failed for an op nobody owns any more; its socket
        /// was shut down instead.
        cancel_failures: Counter, "cancel_failures", "ringway_ring_cancel_failures_total", Listed,
            "Cancels of abandoned receives that failed; their sockets were shut down instead.";
    }
    internal {
        /// Nanoseconds the thread ran: everything outside its waits for
        /// completions in `io_uring_enter` (the agent shows it as the
        /// worker's busy time, in seconds).
        busy_ns;
    }
    nested {
        /// Each buffer group's counters (shared with its pool), by
        /// [`crate::buf::Group`] id.
        pools: [PoolStats; 2] = [Arc<PoolCounters>; 2], by |pools: &[Arc<PoolCounters>; 2]| {
            [pools[0].snapshot(), pools[1].snapshot()]
        };
    }
}
