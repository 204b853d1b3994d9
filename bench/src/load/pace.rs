//! The open-loop schedule of one generator thread.
//!
//! The pacer owns the schedule: slot `k` is due at `first + k / rate`. It
//! sleeps on a `timerfd` armed for the next due slot (the kernel's
//! high-resolution timers: microseconds, where tokio's timer wheel ticks in
//! milliseconds and would bunch sends into 1 ms bursts), and each time it
//! wakes it queues every slot that has come due as a ticket carrying its
//! intended time. Idle connections take tickets oldest first. A request's
//! latency counts from its ticket's intended time, so a target that falls
//! behind (every connection busy, tickets waiting) is charged for the wait:
//! stalls show in the percentiles instead of silently lowering the rate.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::sync::Notify;

/// Due slots waiting for a connection, shared by one thread's tasks.
#[derive(Debug, Default)]
pub struct Tickets {
    queue: RefCell<VecDeque<Instant>>,
    ready: Notify,
    closed: Cell<bool>,
}

impl Tickets {
    /// The oldest due slot's intended time; waits for one. `None` once the
    /// schedule has ended and the queue is empty, or the run is stopping.
    pub async fn take(&self) -> Option<Instant> {
        loop {
            if self.closed.get() {
                return None;
            }
            if let Some(due) = self.queue.borrow_mut().pop_front() {
                return Some(due);
            }
            self.ready.notified().await;
        }
    }

    /// Ends the schedule: waiting connections get `None`, and the tickets
    /// still queued are returned (the requests that were never sent).
    pub fn close(&self) -> u64 {
        self.closed.set(true);
        self.ready.notify_waiters();
        let left = self.queue.borrow().len() as u64;
        self.queue.borrow_mut().clear();
        left
    }

    fn push(&self, due: Instant) {
        self.queue.borrow_mut().push_back(due);
        self.ready.notify_one();
    }
}

/// A thread's schedule: `rate` slots per second from `first` until `end`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// The first slot's time.
    pub first: Instant,
    /// No slot at or after this time.
    pub end: Instant,
    /// Slots per second.
    pub rate: f64,
}

impl Schedule {
    /// The time of slot `k`, computed from the start (no drift from adding
    /// rounded intervals); `None` from the end on.
    pub fn slot(&self, k: u64) -> Option<Instant> {
        let offset = Duration::try_from_secs_f64(k as f64 / self.rate).ok()?;
        let due = self.first.checked_add(offset)?;
        (due < self.end).then_some(due)
    }
}

/// Feeds `tickets` along `schedule` until its end, then returns (leaving the
/// queue to the connections; [`Tickets::close`] ends it).
pub async fn run(schedule: Schedule, tickets: &Tickets) -> io::Result<()> {
    let timer = Timer::new()?;
    let mut k = 0u64;
    while let Some(mut due) = schedule.slot(k) {
        let now = Instant::now();
        if due > now {
            timer.sleep(due - now).await?;
            continue;
        }
        // Every slot that came due while the thread was busy goes out now,
        // each with its own intended time.
        while due <= now {
            tickets.push(due);
            k += 1;
            match schedule.slot(k) {
                Some(next) => due = next,
                None => return Ok(()),
            }
        }
    }
    Ok(())
}

/// A one-shot `timerfd`, waited on with a ring read: the 8-byte expiry
/// count arrives when the timer fires.
struct Timer {
    timer: TimerFd,
    /// The same timer description, as a file the ring can read.
    file: tokio_uring::fs::File,
    buf: Cell<Option<Vec<u8>>>,
}

impl Timer {
    fn new() -> io::Result<Self> {
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let file = std::fs::File::from(timer.as_fd().try_clone_to_owned()?);
        Ok(Self {
            timer,
            file: tokio_uring::fs::File::from_std(file),
            buf: Cell::new(Some(vec![0; 8])),
        })
    }

    /// Sleeps for `d` (at least 1 µs: a zero expiry would disarm the timer).
    async fn sleep(&self, d: Duration) -> io::Result<()> {
        let d = d.max(Duration::from_micros(1));
        self.timer
            .set(
                Expiration::OneShot(TimeSpec::from_duration(d)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)?;
        let buf = self.buf.take().unwrap_or_else(|| vec![0; 8]);
        // A timerfd ignores the offset.
        let (read, buf) = self.file.read_at(buf, 0).await;
        self.buf.set(Some(buf));
        match read? {
            8 => Ok(()),
            n => Err(io::Error::other(format!("timerfd read {n} bytes, not 8"))),
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_rate_and_stop_at_the_end() {
        let first = Instant::now();
        let s = Schedule {
            first,
            end: first + Duration::from_millis(10),
            rate: 1000.0,
        };
        assert_eq!(s.slot(0), Some(first));
        assert_eq!(s.slot(3), Some(first + Duration::from_millis(3)));
        assert_eq!(s.slot(9), Some(first + Duration::from_millis(9)));
        assert_eq!(s.slot(10), None);
    }

    #[test]
    fn the_pacer_queues_every_slot_with_its_intended_time() {
        tokio_uring::start(async {
            let first = Instant::now() + Duration::from_millis(5);
            let schedule = Schedule {
                first,
                end: first + Duration::from_millis(50),
                rate: 2000.0,
            };
            let tickets = Tickets::default();
            run(schedule, &tickets).await.unwrap();
            // Nobody took a ticket: all 100 slots wait, in order, at their
            // intended times, and the pacer did not return before the last.
            assert!(Instant::now() >= schedule.slot(99).unwrap());
            let queued: Vec<Instant> = tickets.queue.borrow().iter().copied().collect();
            assert_eq!(queued.len(), 100);
            for (k, due) in queued.iter().enumerate() {
                assert_eq!(Some(*due), schedule.slot(k as u64));
            }
            assert_eq!(tickets.close(), 100);
            assert_eq!(tickets.take().await, None);
        });
    }
}
