//! One request's retries: which failures it may be sent again for, how
//! many times, whether its body can be sent again, and the places a retry
//! takes (the cluster's `max_retries` and its retry budget).

use std::cell::{Cell, RefCell};

use crate::proto::h1::request::RequestHead;
use crate::proto::h1::Known;
use crate::table::breaker::{Kind, Slot};
use crate::table::retry::{Cause, RetryPolicy};
use crate::table::Cluster;

/// Methods that may be sent twice with the effect of once (RFC 9110, 9.2.2),
/// less TRACE, which no service needs retried.
fn idempotent(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"PUT" | b"DELETE")
}

/// The request body as it went upstream (chunk framing included), kept so
/// that it can be sent again, up to the policy's `retry_buffer`; with the
/// client's head before it, since the head is consumed once the body
/// starts.
#[derive(Debug)]
pub(super) struct Keep {
    /// The client's head (`head` bytes), then the body sent so far.
    bytes: RefCell<Vec<u8>>,
    head: usize,
    /// The most body bytes kept.
    limit: usize,
    /// The body grew past `limit`: what is kept is not the whole of it.
    overflowed: Cell<bool>,
}

impl Keep {
    /// Keeps `head` (the client's head as read) and then up to `limit`
    /// bytes of body, in `room` (a buffer lent for the request).
    pub(super) fn new(mut room: Vec<u8>, head: &[u8], limit: usize) -> Self {
        room.clear();
        room.extend_from_slice(head);
        Self {
            bytes: RefCell::new(room),
            head: head.len(),
            limit,
            overflowed: Cell::new(false),
        }
    }

    /// Adds `data`, sent upstream as part of the body.
    pub(super) fn add(&self, data: &[u8]) {
        if self.overflowed.get() {
            return;
        }
        let mut bytes = self.bytes.borrow_mut();
        if bytes.len() - self.head + data.len() > self.limit {
            self.overflowed.set(true);
            bytes.truncate(self.head);
            return;
        }
        bytes.extend_from_slice(data);
    }

    /// Whether everything sent of the body is kept.
    pub(super) fn whole(&self) -> bool {
        !self.overflowed.get()
    }

    /// Calls `f` with the client's head and the body kept.
    pub(super) fn with<T>(&self, f: impl FnOnce(&[u8], &[u8]) -> T) -> T {
        let bytes = self.bytes.borrow();
        let (head, body) = bytes.split_at(self.head);
        f(head, body)
    }

    /// The buffer back, to be lent again.
    pub(super) fn into_room(self) -> Vec<u8> {
        self.bytes.into_inner()
    }
}

/// What one request may still do by way of retries.
pub(super) struct Tries<'a> {
    policy: &'a RetryPolicy,
    cluster: &'a Cluster,
    /// `retry_on` applies: an idempotent method (or the policy retries any),
    /// and no earlier ringway hop that retries it.
    extended: bool,
    /// Retries made.
    retried: Cell<u32>,
    /// The `max_retries` place the current retry holds.
    slot: Cell<Option<Slot<'a>>>,
}

impl<'a> Tries<'a> {
    /// The retries `policy` allows a request of `head` (whose bytes are
    /// `bytes`) to `cluster`.
    pub(super) fn new(
        policy: &'a RetryPolicy,
        cluster: &'a Cluster,
        head: &RequestHead,
        bytes: &[u8],
    ) -> Self {
        let marked = policy.leave_to_earlier_hop
            && head
                .headers
                .iter()
                .any(|h| h.kind == Known::XRingwayAttempt);
        Self {
            policy,
            cluster,
            extended: (policy.non_idempotent || idempotent(head.method(bytes))) && !marked,
            retried: Cell::new(0),
            slot: Cell::new(None),
        }
    }

    /// The policy.
    pub(super) fn policy(&self) -> &'a RetryPolicy {
        self.policy
    }

    /// Retries made so far.
    pub(super) fn retried(&self) -> u32 {
        self.retried.get()
    }

    /// Whether this hop writes `x-ringway-attempt`: it may retry the
    /// request for more than the always-safe reasons.
    pub(super) fn marks(&self) -> bool {
        self.extended && self.policy.retries_after_sending()
    }

    /// Whether an answer of `status` is one to retry, before counting or
    /// taking anything (see [`Tries::take`]).
    pub(super) fn wants_status(&self, status: u16) -> bool {
        self.extended && self.policy.retries_status(status)
    }

    /// Whether a failure of `cause` is one to retry, before counting or
    /// taking anything.
    pub(super) fn wants_failure(&self, cause: Cause) -> bool {
        match cause {
            Cause::Unsent => true,
            Cause::Status => false,
            _ => self.extended && self.policy.retries_failure(cause),
        }
    }

    /// Takes a retry for `cause`, or says why not (the retries are spent,
    /// the cluster is at its `max_retries`, its budget is spent; the last
    /// two are counted). A retry taken is counted and holds its
    /// `max_retries` place until the next retry or the end of the request.
    pub(super) fn take(&self, cause: Cause, now: std::time::Instant) -> bool {
        if self.retried.get() >= self.policy.retries {
            return false;
        }
        let counts = self.cluster.budget.counts();
        let slot = match &self.cluster.breaker {
            Some(breaker) => match breaker.enter(Kind::Retry) {
                Some(slot) => Some(slot),
                None => {
                    counts
                        .overflows
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return false;
                }
            },
            None => None,
        };
        if !self.cluster.budget.try_retry(now) {
            return false;
        }
        counts.sent(cause);
        self.retried.set(self.retried.get() + 1);
        self.slot.set(slot);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keep_holds_the_head_and_a_body_up_to_its_limit() {
        let keep = Keep::new(Vec::with_capacity(8), b"HEAD", 5);
        keep.add(b"abc");
        keep.add(b"de");
        assert!(keep.whole());
        keep.with(|head, body| assert_eq!((head, body), (&b"HEAD"[..], &b"abcde"[..])));
        keep.add(b"f");
        assert!(!keep.whole());
        keep.add(b"");
        assert!(!keep.whole(), "once over, always over");
        keep.with(|head, body| assert_eq!((head, body), (&b"HEAD"[..], &b""[..])));
    }

    #[test]
    fn only_idempotent_methods_are_retried_for_what_retry_on_names() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"] {
            assert!(idempotent(m.as_bytes()), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "TRACE", "get"] {
            assert!(!idempotent(m.as_bytes()), "{m}");
        }
    }
}
