//! What the tasks of one generator thread share: the plan, the measured
//! window, the thread's record, the open-loop tickets and the stop signal.
//! Single-threaded (`Rc`, `Cell`, `RefCell`): nothing here crosses threads.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::Notify;

use super::pace::Tickets;
use super::plan::Plan;
use super::record::{new_histogram, ErrorKind, Record, MAX_LATENCY_US};

/// The measured window: load before `start` is warm-up, none is started
/// after `end`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start of the measured window (end of the warm-up).
    pub start: Instant,
    /// End of the measured window.
    pub end: Instant,
}

/// One thread's shared state.
#[derive(Debug)]
pub struct Ctx {
    /// The run's plan.
    pub plan: Arc<Plan>,
    /// The measured window.
    pub window: Window,
    /// Open loop: the due slots; `None` in a closed loop.
    pub tickets: Option<Tickets>,
    /// What this thread measured.
    pub record: RefCell<Record>,
    /// Latencies since the last progress report (warm-up included).
    pub interval: RefCell<Histogram<u64>>,
    stopping: Cell<bool>,
    stopped: Notify,
    /// An error that ended the thread's run early (the pacer's timer).
    pub fatal: RefCell<Option<String>>,
}

impl Ctx {
    /// A thread's state for `plan` over `window`.
    pub fn new(plan: Arc<Plan>, window: Window, open_loop: bool) -> Self {
        Self {
            plan,
            window,
            tickets: open_loop.then(Tickets::default),
            record: RefCell::new(Record::new()),
            interval: RefCell::new(new_histogram()),
            stopping: Cell::new(false),
            stopped: Notify::new(),
            fatal: RefCell::new(None),
        }
    }

    /// Stops the run now (Ctrl-C, or a fatal error): requests in flight are
    /// abandoned, no new one starts.
    pub fn stop(&self) {
        self.stopping.set(true);
        self.stopped.notify_waiters();
        if let Some(t) = &self.tickets {
            self.record.borrow_mut().unsent += t.close();
        }
    }

    /// Whether [`Ctx::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Resolves once the run is stopped.
    pub async fn until_stopped(&self) {
        // One thread: nothing can stop the run between the check and the
        // registration of the waiter, both made in this poll.
        while !self.stopping.get() {
            self.stopped.notified().await;
        }
    }

    /// The next request's reference time: the intended time of the oldest
    /// due slot (open loop, waiting for one), or now (closed loop). `None`
    /// when no more requests are to start.
    pub async fn next_request(&self) -> Option<Instant> {
        if self.stopping() {
            return None;
        }
        match &self.tickets {
            Some(t) => t.take().await,
            None => {
                let now = Instant::now();
                (now < self.window.end).then_some(now)
            }
        }
    }

    /// Whether a request that started at `at` and finished at `done` counts
    /// in the figures: started inside the window and, in a closed loop,
    /// finished inside it too (an open-loop request was due inside it and
    /// its whole wait counts).
    pub fn counts(&self, at: Instant, done: Instant) -> bool {
        at >= self.window.start && (self.tickets.is_some() || done <= self.window.end)
    }

    /// Records a request that started at `at` (intended or sent) and was
    /// answered well at `done`.
    pub fn ok(&self, at: Instant, done: Instant) {
        let us = u64::try_from(done.saturating_duration_since(at).as_micros()).unwrap_or(u64::MAX);
        self.interval
            .borrow_mut()
            .saturating_record(us.clamp(1, MAX_LATENCY_US));
        let mut r = self.record.borrow_mut();
        if self.counts(at, done) {
            r.ok(us);
        } else {
            r.outside += 1;
        }
    }

    /// Counts `n` bytes whose write completed at `done`.
    pub fn wrote(&self, n: usize, done: Instant) {
        let mut r = self.record.borrow_mut();
        r.bytes_sent += n as u64;
        if done >= self.window.start && done <= self.window.end {
            r.window_bytes_sent += n as u64;
        }
    }

    /// Records a failed request that started at `at`.
    pub fn fail(&self, at: Instant, kind: ErrorKind, detail: impl FnOnce() -> String) {
        let mut r = self.record.borrow_mut();
        if self.counts(at, Instant::now()) {
            r.fail(kind, detail);
        } else {
            r.outside += 1;
        }
    }
}
