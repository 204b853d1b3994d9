//! A finished span, as a worker hands it to the exporter: plain data of a
//! fixed size (the texts are inline and capped), so queuing one allocates
//! nothing and the exporter, on the control core, does all the encoding.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::request::Reason;

/// A trace id: 16 bytes, never all zero.
pub type TraceId = [u8; 16];
/// A span id: 8 bytes, never all zero.
pub type SpanId = [u8; 8];

/// Which side of a call the span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// ringway's hop, as the server of the client's request.
    Server,
    /// One upstream attempt, ringway as the client.
    Client,
}

/// A short text kept inline, cut at `N` bytes (at a character boundary:
/// the bytes come from a request head, which ringway only lets through
/// as visible ASCII, but the cut never splits a character either way).
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    len: u16,
    bytes: [u8; N],
}

impl<const N: usize> Text<N> {
    /// The empty text.
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; N],
    };

    /// `src`, cut at `N` bytes.
    pub fn new(src: &[u8]) -> Self {
        let mut text = Self::EMPTY;
        let mut n = src.len().min(N);
        // Back off to a character boundary.
        while n > 0 && n < src.len() && (src[n] & 0xc0) == 0x80 {
            n -= 1;
        }
        text.bytes[..n].copy_from_slice(&src[..n]);
        text.len = n as u16;
        text
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The text kept, lossily where it is not UTF-8.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> std::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// The span it is a child of: the caller's for a server span (none
    /// when the trace starts here), ringway's server span for a client
    /// span.
    pub parent_id: Option<SpanId>,
    /// Server (the hop) or client (one attempt).
    pub kind: SpanKind,
    /// When it began, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// The request method (`http.request.method`).
    pub method: Text<16>,
    /// The request target as the client sent it: path and query
    /// (`url.path`, `url.query`).
    pub target: Text<256>,
    /// The `host` the client named (`server.address` of a server span).
    pub host: Text<128>,
    /// `http` or `https`: how the client reached ringway (`url.scheme`).
    pub tls: bool,
    /// The status sent to the client (server span) or received from the
    /// upstream (client span), if there was one
    /// (`http.response.status_code`).
    pub status: Option<u16>,
    /// Why the request (server span) or the attempt (client span) failed,
    /// if it did: the `x-ringway-error` vocabulary (`error.type`).
    pub error: Option<Reason>,
    /// The listener (`ringway.listener`).
    pub listener: Arc<str>,
    /// The route that matched, if one did (`ringway.route`).
    pub route: Option<Arc<str>>,
    /// The cluster the request went to, if any (`ringway.cluster`).
    pub cluster: Option<Arc<str>>,
    /// The endpoint of the attempt (client span), or of the last attempt
    /// (server span) (`network.peer.address`/`network.peer.port` on a
    /// client span, `ringway.upstream` on a server span).
    pub endpoint: Option<SocketAddr>,
    /// The client's address (`client.address`).
    pub client: IpAddr,
    /// For a client span, which attempt it is, from 1; a server span
    /// gives the number of attempts made (`http.request.resend_count` is
    /// this minus one on a client span).
    pub attempt: u32,
    /// The fault the route injected into the request, on a server span
    /// (`ringway.fault`).
    pub fault: Option<crate::request::Fault>,
}
