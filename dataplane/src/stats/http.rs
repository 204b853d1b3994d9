//! HTTP counters, labelled by listener, route and cluster.
//!
//! The control agent creates one [`HttpTally`] per label set when it compiles
//! a table (and carries it over to the next table while the labels stay), so
//! it knows every label set without asking the workers. A tally holds one
//! block of [`Counter`]s per worker, each on cache lines of its own: a worker
//! writes only its own block, the agent sums them.

use crossbeam::utils::CachePadded;

use crate::counter::Counter;

/// Why a request did not get an ordinary proxied answer. Each reason is a
/// label value of `ringway_http_errors_total` and the value of the
/// `x-ringway-error` header on the answer ringway wrote itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Reason {
    /// Malformed or ambiguous request framing (400).
    BadRequest,
    /// Request head over the size or field-count limit (431).
    HeaderTooLarge,
    /// Request line over its limit (414).
    UriTooLong,
    /// The request head did not arrive within the header timeout (408).
    HeaderTimeout,
    /// Request body over the listener's limit (413).
    BodyTooLarge,
    /// A protocol upgrade or `CONNECT` was asked for; not supported yet
    /// (501).
    NotImplemented,
    /// No route matched (404).
    NoRoute,
    /// The cluster has no endpoint that accepted a connection (503).
    NoEndpoint,
    /// This process ran short of a resource of its own (file descriptors,
    /// memory, local ports) before it could reach the upstream (503). The
    /// endpoint is not blamed for it.
    LocalResources,
    /// The upstream refused or failed the connection (502).
    UpstreamRefused,
    /// The upstream reset or closed before a complete response head (502).
    UpstreamReset,
    /// The upstream's response was not valid HTTP/1.1 (502).
    UpstreamBadResponse,
    /// No response head within the request timeout (504).
    UpstreamTimeout,
    /// The upstream failed after the response head went to the client; the
    /// client connection was closed mid-body.
    UpstreamAbortedBody,
    /// The client stopped reading for longer than the send timeout.
    ClientSendTimeout,
    /// The client had not sent its whole request (its body) when the
    /// request timeout passed (408, or a reset once the response began).
    ClientTimeout,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 16] = [
        Reason::BadRequest,
        Reason::HeaderTooLarge,
        Reason::UriTooLong,
        Reason::HeaderTimeout,
        Reason::BodyTooLarge,
        Reason::NotImplemented,
        Reason::NoRoute,
        Reason::NoEndpoint,
        Reason::LocalResources,
        Reason::UpstreamRefused,
        Reason::UpstreamReset,
        Reason::UpstreamBadResponse,
        Reason::UpstreamTimeout,
        Reason::UpstreamAbortedBody,
        Reason::ClientSendTimeout,
        Reason::ClientTimeout,
    ];

    /// The label value and `x-ringway-error` value.
    pub fn name(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::HeaderTooLarge => "header_too_large",
            Reason::UriTooLong => "uri_too_long",
            Reason::HeaderTimeout => "header_timeout",
            Reason::BodyTooLarge => "body_too_large",
            Reason::NotImplemented => "not_implemented",
            Reason::NoRoute => "no_route",
            Reason::NoEndpoint => "no_endpoint",
            Reason::LocalResources => "local_resources",
            Reason::UpstreamRefused => "upstream_refused",
            Reason::UpstreamReset => "upstream_reset",
            Reason::UpstreamBadResponse => "upstream_bad_response",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamAbortedBody => "upstream_aborted_body",
            Reason::ClientSendTimeout => "client_send_timeout",
            Reason::ClientTimeout => "client_timeout",
        }
    }

    /// The status ringway answers with, or `None` where the connection is
    /// closed instead (a response was already under way, or the client
    /// is not reading).
    pub fn status(self) -> Option<u16> {
        match self {
            Reason::BadRequest => Some(400),
            Reason::HeaderTooLarge => Some(431),
            Reason::UriTooLong => Some(414),
            Reason::HeaderTimeout | Reason::ClientTimeout => Some(408),
            Reason::BodyTooLarge => Some(413),
            Reason::NotImplemented => Some(501),
            Reason::NoRoute => Some(404),
            Reason::NoEndpoint | Reason::LocalResources => Some(503),
            Reason::UpstreamRefused | Reason::UpstreamReset | Reason::UpstreamBadResponse => {
                Some(502)
            }
            Reason::UpstreamTimeout => Some(504),
            Reason::UpstreamAbortedBody | Reason::ClientSendTimeout => None,
        }
    }
}

/// One worker's counters for one label set.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Requests counted at this label set.
    pub requests: Counter,
    /// Final responses sent to clients by status class: index 0 for 1xx
    /// (never final, kept for shape) up to 4 for 5xx.
    pub responses: [Counter; 5],
    /// Errors by [`Reason`].
    pub errors: [Counter; Reason::ALL.len()],
}

impl HttpCounters {
    /// Counts a final response of `status`.
    #[inline]
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].add(1);
    }

    /// Counts an error.
    #[inline]
    pub fn error(&self, reason: Reason) {
        self.errors[reason as usize].add(1);
    }
}

/// A sum of [`HttpCounters`] over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HttpTotals {
    /// Requests.
    pub requests: u64,
    /// Responses by class, 1xx to 5xx.
    pub responses: [u64; 5],
    /// Errors by [`Reason`] (indexed as [`Reason::ALL`]).
    pub errors: [u64; Reason::ALL.len()],
}

/// The counters of one label set, one block per worker.
#[derive(Debug)]
pub struct HttpTally {
    workers: Box<[CachePadded<HttpCounters>]>,
}

impl HttpTally {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(HttpCounters::default()))
                .collect(),
        }
    }

    /// The block worker `worker` writes. The agent builds every table for
    /// the running worker count; an index past it would share the last block
    /// (a count could then be lost) rather than panic.
    #[inline]
    pub fn worker(&self, worker: usize) -> &HttpCounters {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn totals(&self) -> HttpTotals {
        let mut t = HttpTotals::default();
        for w in self.workers.iter() {
            t.requests += w.requests.get();
            for (sum, c) in t.responses.iter_mut().zip(&w.responses) {
                *sum += c.get();
            }
            for (sum, c) in t.errors.iter_mut().zip(&w.errors) {
                *sum += c.get();
            }
        }
        t
    }
}
