//! An exchange's own deadline, and what it was waiting on when it passed.
//!
//! The response head must come within the request timeout from the start
//! of the exchange; once it went to the client, each wait for more of the
//! response body gets that long again. The deadline also notes what the
//! exchange is waiting on (the client's body bytes, or a send to the
//! client), so that a deadline passing there is put down to the side that
//! held things up: a client that is slow to send or to read is the
//! client's fault, never the upstream's.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::request::Reason;
use crate::rt::{self, time::Alarm};

/// The deadline of one exchange.
#[derive(Debug)]
pub(super) struct Deadline {
    at: Cell<Instant>,
    /// The client has the response head.
    started: Cell<bool>,
    /// The request body is waiting for the client's bytes.
    body_wait: Cell<bool>,
    /// The client is due to send its body (false while an
    /// `Expect: 100-continue` request has had no interim answer: the client
    /// is entitled to wait for one).
    body_due: Cell<bool>,
    /// A send to the client is under way.
    sending: Cell<bool>,
}

impl Deadline {
    /// A deadline `timeout` from now for the response head; `body_due`:
    /// the client is to send its body without waiting for an interim
    /// answer.
    pub(super) fn new(timeout: Duration, body_due: bool) -> Self {
        Self {
            at: Cell::new(rt::now() + timeout),
            started: Cell::new(false),
            body_wait: Cell::new(false),
            body_due: Cell::new(body_due),
            sending: Cell::new(false),
        }
    }

    /// Moves the deadline to `timeout` from now: a response body that goes
    /// on flowing is given that long for each next piece.
    pub(super) fn extend(&self, timeout: Duration) {
        self.at.set(rt::now() + timeout);
    }

    /// Notes whether the request body is waiting for the client's bytes.
    #[inline]
    pub(super) fn waiting_for_body(&self, waiting: bool) {
        self.body_wait.set(waiting);
    }

    /// Notes that an interim answer went to the client: from now on it is
    /// due to send its body.
    pub(super) fn body_now_due(&self) {
        self.body_due.set(true);
    }

    /// Notes whether a send to the client is under way.
    #[inline]
    pub(super) fn sending(&self, sending: bool) {
        self.sending.set(sending);
    }

    /// Notes that the response head went to the client.
    pub(super) fn response_started(&self) {
        self.started.set(true);
    }

    /// Whether the client has the response head.
    pub(super) fn started(&self) -> bool {
        self.started.get()
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

    /// Completes when the deadline passes (as it stands then: it may move).
    pub(super) fn passed(&self) -> Passed<'_> {
        Passed {
            deadline: self,
            alarm: Alarm::new(),
        }
    }
}

/// See [`Deadline::passed`].
pub(super) struct Passed<'a> {
    deadline: &'a Deadline,
    alarm: Alarm,
}

impl Future for Passed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.alarm.poll_until(this.deadline.at.get(), cx)
    }
}
