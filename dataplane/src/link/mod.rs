//! What the control agent and one worker share.

pub mod log;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crossbeam::utils::CachePadded;

use self::log::{Line, LogWriter};
use crate::handoff::Handoff;
use crate::rt::wake::Notifier;
use crate::rt::{RingCounters, RingStats};
use crate::stats::{Counters, WorkerStats};
use crate::table::Table;

/// The only memory the control agent and a worker share: the table handoff,
/// the stop flag, the generation the worker acknowledged, whether it exited,
/// the worker's counters (written by the worker alone, on cache lines of
/// their own) and the writing end of its log queue. The agent writes the handoff and the flag and then notifies
/// the worker's eventfd; the worker writes the acknowledgement and notifies
/// the agent's ack pipe (one for all workers). No lock is taken on either
/// side: each direction is atomics plus one `write(2)`.
#[derive(Debug)]
pub struct WorkerLink {
    index: usize,
    core: usize,
    tables: Handoff<Table>,
    stop: AtomicBool,
    wake: Notifier,
    acked: AtomicU64,
    /// When the worker stored `acked`, on the [`clock_ns`] clock.
    acked_at: AtomicU64,
    /// Set when the worker thread has ended, for whatever reason.
    exited: AtomicBool,
    /// The agent's ack pipe.
    ack_notify: Notifier,
    counters: CachePadded<Counters>,
    ring: OnceLock<Arc<RingCounters>>,
    /// Where the worker's log lines go (see [`crate::link::log`]).
    log: LogWriter,
}

impl WorkerLink {
    pub(crate) fn new(
        index: usize,
        core: usize,
        wake: Notifier,
        ack_notify: Notifier,
        log: LogWriter,
    ) -> Self {
        Self {
            index,
            core,
            tables: Handoff::new(),
            stop: AtomicBool::new(false),
            wake,
            acked: AtomicU64::new(0),
            acked_at: AtomicU64::new(0),
            exited: AtomicBool::new(false),
            ack_notify,
            counters: CachePadded::new(Counters::default()),
            ring: OnceLock::new(),
            log,
        }
    }

    /// The worker's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The core the worker is pinned to.
    pub fn core(&self) -> usize {
        self.core
    }

    /// Hands `table` to the worker and wakes it. A table the worker had not
    /// taken yet is replaced (and freed here, on the agent's thread).
    pub fn publish(&self, table: Arc<Table>) -> io::Result<()> {
        drop(self.tables.put(table));
        self.wake.notify()
    }

    /// Asks the worker to stop accepting and drain.
    pub fn request_stop(&self) -> io::Result<()> {
        self.stop.store(true, Ordering::Release);
        self.wake.notify()
    }

    /// The generation of the table the worker runs (0 before its first).
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    /// When the worker acknowledged [`WorkerLink::acked`], on the
    /// [`clock_ns`] clock: read after `acked`, it is at least as late as the
    /// acknowledgement of that generation.
    pub fn acked_at_ns(&self) -> u64 {
        self.acked_at.load(Ordering::Acquire)
    }

    /// Whether the worker thread has ended (after a stop, or because its
    /// ring failed).
    pub fn exited(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// A copy of the worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        self.counters.snapshot()
    }

    /// A copy of the worker's ring counters now (zeros before its ring
    /// exists).
    pub fn ring_stats(&self) -> RingStats {
        self.ring.get().map(|r| r.snapshot()).unwrap_or_default()
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Queues `line` for the control thread to write; counts it in
    /// `log_dropped` instead when the queue is full. Only the worker calls
    /// this (the queue has one writer, and so has the counter).
    pub(crate) fn log(&self, line: Line) {
        if self.log.push(line).is_err() {
            self.counters.log_dropped.add(1);
        }
    }

    pub(crate) fn attach_ring(&self, ring: Arc<RingCounters>) {
        let _ = self.ring.set(ring);
    }

    pub(crate) fn take_table(&self) -> Option<Arc<Table>> {
        self.tables.take()
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    pub(crate) fn ack(&self, generation: u64) {
        self.acked_at.store(clock_ns(), Ordering::Release);
        self.acked.store(generation, Ordering::Release);
        // Only a closed or full pipe refuses; the agent re-reads
        // every link whenever it wakes, so nothing is lost either way.
        let _ = self.ack_notify.notify();
    }

    pub(crate) fn mark_exited(&self) {
        self.exited.store(true, Ordering::Release);
        let _ = self.ack_notify.notify();
    }
}

/// Nanoseconds on a monotonic clock shared by every thread of the process
/// (counted from its first use), so that a time the worker stamps and a time
/// the agent stamps can be subtracted.
pub fn clock_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(elapsed).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::log::{WorkerLogs, CAPACITY};
    use crate::rt::wake::eventfd;

    #[test]
    fn a_full_log_queue_drops_and_counts() {
        let (wake, _wakeup) = eventfd().expect("an eventfd");
        let (ack, _acks) = eventfd().expect("an eventfd");
        let mut logs = WorkerLogs::default();
        let link = WorkerLink::new(0, 0, wake, ack, logs.open());
        let line = |n: i32| Line::WakeupFailed(io::Error::from_raw_os_error(n));
        for n in 0..CAPACITY as i32 + 3 {
            link.log(line(n));
        }
        assert_eq!(link.stats().log_dropped, 3);
        let mut kept = Vec::new();
        logs.drain(|index, line| {
            assert_eq!(index, 0);
            if let Line::WakeupFailed(e) = line {
                kept.extend(e.raw_os_error());
            }
        });
        // The first lines are kept, the overflow is what is dropped.
        assert_eq!(kept, (0..CAPACITY as i32).collect::<Vec<_>>());
        link.log(line(1));
        assert_eq!(link.stats().log_dropped, 3, "room again once drained");
    }
}
