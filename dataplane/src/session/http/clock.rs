//! The connection's one deadline, and the watchdog that enforces it.
//!
//! A connection is always in one phase (waiting for a request, reading a
//! head, answering, in an exchange) and each phase but the exchange has one
//! deadline. Rather than a timer per phase, the connection keeps the
//! current deadline in a cell and a single watchdog waits for it with one
//! [`Alarm`]. A deadline that moves later costs nothing: the alarm wakes at
//! the old one, sees the new one and is set again. Only a deadline that
//! moves earlier moves the timer. With back-to-back keep-alive requests
//! that is one timer per timeout period, not one per request.
//!
//! An exchange keeps its own deadline (see [`super::deadline`]): it knows
//! what a deadline passing in it means, and an HTTP/2 connection will run
//! many at once. While one runs, the connection's clock has none.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::rt::{self, time::Alarm};

/// What a connection is doing, for telling what a timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the first byte of the next request.
    Idle,
    /// Reading a request head.
    Header,
    /// Writing an answer of ringway's own, or closing after one: a deadline
    /// passing here just closes the connection.
    Answering,
    /// Proxying a request: the exchange keeps the deadline.
    Exchange,
}

/// The current phase and its deadline.
#[derive(Debug)]
pub(super) struct Clock {
    phase: Cell<Phase>,
    deadline: Cell<Option<Instant>>,
}

impl Clock {
    /// Starts idle, with `idle` to go.
    pub(super) fn new(idle: Duration) -> Self {
        Self {
            phase: Cell::new(Phase::Idle),
            deadline: Cell::new(Some(rt::now() + idle)),
        }
    }

    /// Enters `phase`, which must end within `timeout` from now.
    pub(super) fn enter(&self, phase: Phase, timeout: Duration) {
        self.phase.set(phase);
        self.deadline.set(Some(rt::now() + timeout));
    }

    /// Enters an exchange, which keeps its own deadline.
    pub(super) fn enter_exchange(&self) {
        self.phase.set(Phase::Exchange);
        self.deadline.set(None);
    }

    /// The phase now.
    pub(super) fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Completes when the deadline of whatever phase the connection is in
    /// passes.
    pub(super) fn watchdog(&self) -> Watchdog<'_> {
        Watchdog {
            clock: self,
            alarm: Alarm::new(),
        }
    }
}

/// See [`Clock::watchdog`].
pub(super) struct Watchdog<'a> {
    clock: &'a Clock,
    alarm: Alarm,
}

impl Future for Watchdog<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match this.clock.deadline.get() {
            Some(deadline) => this.alarm.poll_until(deadline, cx),
            // In an exchange: an alarm set for an earlier phase may still
            // wake the task once, which then finds nothing due.
            None => Poll::Pending,
        }
    }
}
