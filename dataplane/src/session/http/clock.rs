//! One deadline per connection, and the watchdog that enforces it.
//!
//! A connection is always in one phase (waiting for a request, reading a
//! head, in an exchange) and each phase has one deadline. Rather than a
//! timer per phase, the connection keeps the current deadline in a cell and
//! a single watchdog waits for it with one [`Alarm`]. A deadline that moves
//! later costs nothing: the alarm wakes at the old one, sees the new one
//! and is set again. Only a deadline that moves earlier moves the timer.
//! With back-to-back keep-alive requests that is one timer per timeout
//! period, not one per request.
//!
//! In an exchange the clock also notes what the connection is waiting on
//! (the client's body bytes, or a send to the client), so that a deadline
//! passing there is put down to the side that held things up: a client
//! that is slow to send or to read is the client's fault, never the
//! upstream's.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::request::Reason;
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
    /// Proxying request `route` to target `target`; `started` once the
    /// response head went to the client.
    Exchange {
        /// Index of the route in its listener.
        route: usize,
        /// Index of the target in the route's forward.
        target: usize,
        /// Whether the client has the response head already.
        started: bool,
    },
}

/// The current phase and its deadline.
#[derive(Debug)]
pub(super) struct Clock {
    phase: Cell<Phase>,
    deadline: Cell<Instant>,
    /// In an exchange: the request body is waiting for the client's bytes.
    body_wait: Cell<bool>,
    /// In an exchange: the client is due to send its body (false while an
    /// `Expect: 100-continue` request has had no interim answer: the
    /// client is entitled to wait for one).
    body_due: Cell<bool>,
    /// In an exchange: a send to the client is under way.
    sending: Cell<bool>,
}

impl Clock {
    /// Starts idle, with `idle` to go.
    pub(super) fn new(idle: Duration) -> Self {
        Self {
            phase: Cell::new(Phase::Idle),
            deadline: Cell::new(rt::now() + idle),
            body_wait: Cell::new(false),
            body_due: Cell::new(false),
            sending: Cell::new(false),
        }
    }

    /// Enters `phase`, which must end within `timeout` from now.
    pub(super) fn enter(&self, phase: Phase, timeout: Duration) {
        self.phase.set(phase);
        self.deadline.set(rt::now() + timeout);
    }

    /// Enters the exchange of request `route` to target `target`, whose
    /// response head must come within `timeout`; `body_due`: the client
    /// is to send its body without waiting for an interim answer.
    pub(super) fn exchange(&self, route: usize, target: usize, timeout: Duration, body_due: bool) {
        self.body_wait.set(false);
        self.sending.set(false);
        self.body_due.set(body_due);
        self.enter(
            Phase::Exchange {
                route,
                target,
                started: false,
            },
            timeout,
        );
    }

    /// Moves the deadline to `timeout` from now, keeping the phase: a
    /// response body that goes on flowing is given that long for each next
    /// piece.
    pub(super) fn extend(&self, timeout: Duration) {
        self.deadline.set(rt::now() + timeout);
    }

    /// Notes whether the request body is waiting for the client's bytes.
    #[inline]
    pub(super) fn waiting_for_body(&self, waiting: bool) {
        self.body_wait.set(waiting);
    }

    /// Notes that an interim answer went to the client: from now on it
    /// is due to send its body.
    pub(super) fn body_now_due(&self) {
        self.body_due.set(true);
    }

    /// Notes whether a send to the client is under way.
    #[inline]
    pub(super) fn sending(&self, sending: bool) {
        self.sending.set(sending);
    }

    /// Why an exchange whose deadline passed is the client's fault, if it
    /// is: it was not reading what ringway sent it, or ringway was waiting
    /// for body bytes the client owed.
    pub(super) fn client_fault(&self) -> Option<Reason> {
        if self.sending.get() {
            Some(Reason::ClientSendTimeout)
        } else if self.body_wait.get() && self.body_due.get() {
            Some(Reason::ClientTimeout)
        } else {
            None
        }
    }

    /// Marks the response of the exchange as started (keeps the deadline).
    pub(super) fn response_started(&self) {
        if let Phase::Exchange { route, target, .. } = self.phase.get() {
            self.phase.set(Phase::Exchange {
                route,
                target,
                started: true,
            });
        }
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
        this.alarm.poll_until(this.clock.deadline.get(), cx)
    }
}
