//! What a worker has to say, carried to the control thread, which writes
//! it.
//!
//! A worker never writes to stderr itself: stderr is a lock every thread
//! shares and a write that can block, on a core that forwards. It pushes a
//! [`Line`] (data, not text: nothing is formatted on the worker) into its
//! own bounded queue, lock-free, through its link
//! ([`crate::link::WorkerLink`]); the control thread, the queue's only
//! reader, drains every queue ([`WorkerLogs::drain`]) once a second, after
//! a failed start and at exit, and writes the lines. A line that finds the
//! queue full is dropped, never waited for, and counted in the worker's
//! `log_dropped` (`ringway_log_dropped_total`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

/// Lines one worker's queue holds before it drops: far more than a worker
/// says between two drains (a second apart); a burst past it is a storm
/// that the count describes as well as the lines would.
pub const CAPACITY: usize = 64;

/// One thing a worker has to say.
#[derive(Debug)]
pub enum Line {
    /// A listener that a new table added could not be bound; the other
    /// listeners and workers carry on.
    BindFailed {
        /// The listener's name.
        listener: Arc<str>,
        /// Its address.
        address: SocketAddr,
        /// What the kernel said.
        error: io::Error,
    },
    /// The eventfd the agent wakes the worker through failed: the worker
    /// can no longer hear the agent and stops as if asked.
    WakeupFailed(io::Error),
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::BindFailed {
                listener,
                address,
                error,
            } => write!(
                f,
                "listener `{listener}`: cannot bind {address}: {}",
                bind_reason(error)
            ),
            Line::WakeupFailed(e) => write!(f, "control eventfd failed: {e}"),
        }
    }
}

/// Every worker's log queue, held by the control thread (the one reader).
#[derive(Debug, Default)]
pub struct WorkerLogs {
    queues: Vec<Arc<ArrayQueue<Line>>>,
}

impl WorkerLogs {
    /// Adds the queue of the next worker (index: the number opened before)
    /// and returns its writing end.
    pub fn open(&mut self) -> LogWriter {
        let queue = Arc::new(ArrayQueue::new(CAPACITY));
        self.queues.push(Arc::clone(&queue));
        LogWriter(queue)
    }

    /// Takes every line queued so far, worker by worker, each worker's in
    /// the order it queued them.
    pub fn drain(&self, mut each: impl FnMut(usize, Line)) {
        for (index, queue) in self.queues.iter().enumerate() {
            while let Some(line) = queue.pop() {
                each(index, line);
            }
        }
    }
}

/// The writing end of one worker's log queue: only that worker pushes.
#[derive(Debug)]
pub struct LogWriter(Arc<ArrayQueue<Line>>);

impl LogWriter {
    /// Queues `line`, or hands it back when the queue is full. Never
    /// blocks, never allocates.
    pub fn push(&self, line: Line) -> Result<(), Line> {
        self.0.push(line)
    }
}

/// A sentence saying why a listening address could not be bound.
pub fn bind_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "the address is in use by another process".to_string(),
        Some(libc::EADDRNOTAVAIL) => "no local interface has this address".to_string(),
        Some(libc::EACCES) => "permission denied (ports below 1024 need privileges)".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wakeup(n: i32) -> Line {
        Line::WakeupFailed(io::Error::from_raw_os_error(n))
    }

    #[test]
    fn a_full_queue_hands_the_line_back_and_drains_in_order() {
        let mut logs = WorkerLogs::default();
        let first = logs.open();
        let second = logs.open();
        for n in 0..CAPACITY {
            first.push(wakeup(n as i32)).expect("room in the queue");
        }
        let refused = first.push(wakeup(-1)).expect_err("the queue is full");
        assert!(matches!(refused, Line::WakeupFailed(e) if e.raw_os_error() == Some(-1)));
        second.push(wakeup(7)).expect("room in the other queue");

        let mut seen = Vec::new();
        logs.drain(|index, line| match line {
            Line::WakeupFailed(e) => seen.push((index, e.raw_os_error())),
            Line::BindFailed { .. } => panic!("no bind failure was queued"),
        });
        let expected: Vec<(usize, Option<i32>)> = (0..CAPACITY as i32)
            .map(|n| (0, Some(n)))
            .chain([(1, Some(7))])
            .collect();
        assert_eq!(seen, expected);
        let mut again = 0;
        logs.drain(|_, _| again += 1);
        assert_eq!(again, 0, "drained lines are gone");
        first.push(wakeup(1)).expect("room again once drained");
    }

    #[test]
    fn lines_say_what_the_worker_used_to_write() {
        let line = Line::BindFailed {
            listener: "ingress".into(),
            address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            error: io::Error::from_raw_os_error(libc::EADDRINUSE),
        };
        assert_eq!(
            line.to_string(),
            "listener `ingress`: cannot bind 127.0.0.1:8080: the address is in use by another process"
        );
        let line = Line::WakeupFailed(io::Error::from_raw_os_error(libc::EBADF));
        assert!(
            line.to_string().starts_with("control eventfd failed: "),
            "{line}"
        );
    }
}
