//! Waiting for a deadline: [`Alarm`], and [`sleep`] built on it.
//!
//! Both use the worker's timers ([`super::timer`]): no ring op and no
//! allocation per wait. Time is the ring clock ([`super::now`], read once
//! per loop turn), so a deadline counts as passed once the turn that
//! notices it began at or after it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::driver;
use super::timer::TimerKey;

/// One timer of this thread's, re-armed lazily: polled with a deadline, it
/// makes sure its task is woken by then, and moving the deadline later
/// costs nothing until the earlier one passes (the task is woken once
/// then, finds the deadline moved, and the alarm is set again). A deadline
/// that moves earlier brings the timer forward.
///
/// An alarm belongs to the task that polls it, as the future holding it
/// does: while its timer is set for a deadline no later than the one asked
/// for, a poll only compares the two, without looking at the waker again.
///
/// Dropping it takes its timer out.
#[derive(Debug, Default)]
pub struct Alarm {
    key: Option<TimerKey>,
    /// The deadline its timer is set for, until it fires.
    armed: Option<Instant>,
}

impl Alarm {
    /// An alarm not set yet.
    pub const fn new() -> Self {
        Self {
            key: None,
            armed: None,
        }
    }

    /// Ready once `deadline` has passed (the alarm is then cleared);
    /// otherwise the task of `cx` is woken when it passes, or earlier.
    pub fn poll_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        driver::with(|d| {
            let now = d.now();
            if now >= deadline {
                self.armed = None;
                if let Some(key) = self.key.take() {
                    d.timers().remove(key);
                }
                return Poll::Ready(());
            }
            // Set for this deadline or an earlier one that has not come:
            // it wakes the task in time.
            if self
                .armed
                .is_some_and(|armed| armed <= deadline && armed > now)
            {
                return Poll::Pending;
            }
            let timers = d.timers();
            match self.key {
                Some(key) if timers.arm(key, deadline, cx.waker()) => {}
                _ => self.key = Some(timers.insert(deadline, cx.waker())),
            }
            // `arm` leaves a timer set earlier as it is: that earlier
            // deadline is the one it wakes at.
            self.armed = Some(match self.armed {
                Some(armed) if armed > now => armed.min(deadline),
                _ => deadline,
            });
            Poll::Pending
        })
    }

    /// Takes the timer out, if set.
    pub fn clear(&mut self) {
        self.armed = None;
        if let Some(key) = self.key.take() {
            driver::try_with(|d| d.timers().remove(key));
        }
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Completes after `duration` (from now).
///
/// It never fails; the `io::Result` is what sleeps returned when they were
/// ring ops, which the ring could refuse, and callers still read it so.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Instant::now() + duration,
        alarm: Alarm::new(),
    }
}

/// See [`sleep`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    alarm: Alarm,
}

impl Future for Sleep {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.alarm.poll_until(this.deadline, cx).map(Ok)
    }
}
