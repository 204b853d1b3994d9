//! How one request ended: the record every request leaves, proxied or
//! answered by ringway, whatever the wire version.
//!
//! A protocol driver fills it in as the request goes (the exchange its
//! upstream part) and settles it once, when the request is over. That one
//! place is where what must know how requests end plugs in: today the
//! HTTP counters (statuses and errors) are counted from it; retries,
//! access logs, latency histograms and traces will read the same record.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Reason;

/// How one request ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The final status the client was sent (or that was committed to be
    /// sent when the send failed), if any.
    pub status: Option<u16>,
    /// Whether ringway wrote that answer itself (else it is the upstream's).
    pub own_answer: bool,
    /// Why the request did not get an ordinary proxied answer, if it did
    /// not.
    pub reason: Option<Reason>,
    /// The index of the route that matched, in its listener.
    pub route: Option<usize>,
    /// The index of the target picked, in that route's forward.
    pub target: Option<usize>,
    /// The endpoint the request went to.
    pub upstream: Option<SocketAddr>,
    /// How many upstream connections the request was sent on (a pooled
    /// connection found closed is an attempt, and the request goes again).
    pub attempts: u32,
    /// Retries made (attempts on another endpoint, or again, after a
    /// failure), each counted once.
    pub retries: u32,
    /// The endpoints of the attempts before the last, in order (the last
    /// is `upstream`); empty unless the request was retried.
    pub tried: Vec<SocketAddr>,
    /// Bytes the client sent for this request (its head and its body).
    pub received: u64,
    /// Bytes sent to the client for this request (heads and body).
    pub sent: u64,
    /// The request id ringway gave the upstream request, when the request
    /// came without one.
    pub request_id: Option<u128>,
    /// The request's trace id, when it was traced.
    pub trace_id: Option<[u8; 16]>,
    /// The fault the route injected into it, if it did.
    pub fault: Option<super::Fault>,
    /// When it happened.
    pub timings: Timings,
}

/// When the steps of a request happened, on the worker's ring clock
/// (monotonic, read once per loop turn).
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// The request began: its head was read.
    pub start: Instant,
    /// The upstream connection was ready (made or taken from the pool).
    pub connected: Option<Instant>,
    /// The upstream's response head arrived.
    pub first_byte: Option<Instant>,
    /// The request was over.
    pub end: Option<Instant>,
}

impl Outcome {
    /// A request that began at `start`, nothing known yet.
    pub fn new(start: Instant) -> Self {
        Self {
            status: None,
            own_answer: false,
            reason: None,
            route: None,
            target: None,
            upstream: None,
            attempts: 0,
            retries: 0,
            tried: Vec::new(),
            received: 0,
            sent: 0,
            request_id: None,
            trace_id: None,
            fault: None,
            timings: Timings {
                start,
                connected: None,
                first_byte: None,
                end: None,
            },
        }
    }

    /// Notes that ringway answers with `status` itself.
    pub fn answered(&mut self, status: u16) {
        self.status = Some(status);
        self.own_answer = true;
    }

    /// Notes that the upstream's response, of `status`, goes to the client.
    pub fn responded(&mut self, status: u16) {
        self.status = Some(status);
        self.own_answer = false;
    }

    /// Notes why the request did not get an ordinary proxied answer (the
    /// first reason noted stands).
    pub fn failed(&mut self, reason: Reason) {
        self.reason.get_or_insert(reason);
    }

    /// Notes the end of the request at `now`.
    pub fn end(&mut self, now: Instant) {
        self.timings.end.get_or_insert(now);
    }

    /// From the start to the end (zero until it ended).
    pub fn duration(&self) -> Duration {
        self.timings
            .end
            .map_or(Duration::ZERO, |end| end - self.timings.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_and_the_first_end_stand() {
        let start = Instant::now();
        let mut o = Outcome::new(start);
        o.failed(Reason::UpstreamTimeout);
        o.failed(Reason::ClientSendTimeout);
        assert_eq!(o.reason, Some(Reason::UpstreamTimeout));
        o.end(start + Duration::from_millis(5));
        o.end(start + Duration::from_millis(9));
        assert_eq!(o.duration(), Duration::from_millis(5));
        o.responded(200);
        o.answered(504);
        assert_eq!((o.status, o.own_answer), (Some(504), true));
    }
}
