//! Why a request did not get an ordinary proxied answer: the HTTP error
//! vocabulary, shared by every protocol driver (HTTP/1 today, HTTP/2 next),
//! by the counters and by the answers ringway writes itself.

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
    /// The listener's authorization refused the request: a rule denied
    /// it, or no rule allowed it under a default of deny (403).
    Forbidden,
    /// The cluster has no endpoint that accepted a connection (503).
    NoEndpoint,
    /// This process ran short of a resource of its own (file descriptors,
    /// memory, local ports) before it could reach the upstream (503). The
    /// endpoint is not blamed for it.
    LocalResources,
    /// The upstream refused or failed the connection (502).
    UpstreamRefused,
    /// The TLS handshake with the upstream failed: its certificate was
    /// refused (wrong CA, wrong name or identity, expired), or the
    /// handshake broke or did not finish within the connect timeout (502).
    UpstreamTls,
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
    /// A circuit breaker of the cluster was at its limit (`max_requests`,
    /// `max_pending_requests`, `max_connections`): refused at once (503).
    Overflow,
    /// The route's rate limit refused the request (429, with
    /// `retry-after`). Counted on the route.
    RateLimited,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 20] = [
        Reason::BadRequest,
        Reason::HeaderTooLarge,
        Reason::UriTooLong,
        Reason::HeaderTimeout,
        Reason::BodyTooLarge,
        Reason::NotImplemented,
        Reason::NoRoute,
        Reason::Forbidden,
        Reason::NoEndpoint,
        Reason::LocalResources,
        Reason::UpstreamRefused,
        Reason::UpstreamTls,
        Reason::UpstreamReset,
        Reason::UpstreamBadResponse,
        Reason::UpstreamTimeout,
        Reason::UpstreamAbortedBody,
        Reason::ClientSendTimeout,
        Reason::ClientTimeout,
        Reason::Overflow,
        Reason::RateLimited,
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
            Reason::Forbidden => "forbidden",
            Reason::NoEndpoint => "no_endpoint",
            Reason::LocalResources => "local_resources",
            Reason::UpstreamRefused => "upstream_refused",
            Reason::UpstreamTls => "upstream_tls",
            Reason::UpstreamReset => "upstream_reset",
            Reason::UpstreamBadResponse => "upstream_bad_response",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamAbortedBody => "upstream_aborted_body",
            Reason::ClientSendTimeout => "client_send_timeout",
            Reason::ClientTimeout => "client_timeout",
            Reason::Overflow => "overflow",
            Reason::RateLimited => "rate_limited",
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
            Reason::Forbidden => Some(403),
            Reason::NoEndpoint | Reason::LocalResources | Reason::Overflow => Some(503),
            Reason::UpstreamRefused
            | Reason::UpstreamTls
            | Reason::UpstreamReset
            | Reason::UpstreamBadResponse => Some(502),
            Reason::UpstreamTimeout => Some(504),
            Reason::RateLimited => Some(429),
            Reason::UpstreamAbortedBody | Reason::ClientSendTimeout => None,
        }
    }
}

impl Reason {
    /// Whether the client held the request up (it stopped reading, or did
    /// not send what it owed): such an error is the client's, counted on
    /// the listener, even in an exchange whose upstream was picked.
    pub fn is_clients(self) -> bool {
        matches!(self, Reason::ClientTimeout | Reason::ClientSendTimeout)
    }

    /// Whether the route's own policy refused the request, before any
    /// target was picked: counted on the route, not on the listener.
    pub fn is_routes(self) -> bool {
        matches!(self, Reason::RateLimited)
    }

    /// The reason a refused request head is answered with.
    pub fn of_request_head(refusal: crate::proto::h1::Refusal) -> Reason {
        use crate::proto::h1::Refusal;
        match refusal {
            Refusal::Malformed => Reason::BadRequest,
            Refusal::TooLarge => Reason::HeaderTooLarge,
            Refusal::LineTooLong => Reason::UriTooLong,
        }
    }
}
