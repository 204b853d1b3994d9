//! HTTP/1.1 codec, sans-IO: bytes in, positions and verdicts out.
//!
//! Nothing here reads a socket or copies a message. A head parser takes the
//! bytes gathered so far (the head starts at `buf[0]`) and answers
//! [`Status::Partial`] (gather more and call again with the longer buffer),
//! [`Status::Complete`] with byte ranges into that buffer, or a
//! [`HeadError`] naming the answer the peer deserves. The chunked decoder
//! only tells the session where a chunked body ends and how much payload it
//! carried; the session forwards the framing bytes verbatim.
//!
//! The parsers are strict on purpose. A proxy that accepts a message its
//! upstream reads differently is the classic request-smuggling hole, so any
//! framing a reasonable peer could read two ways (two lengths, a length and
//! chunking, a bare LF, folded lines, whitespace before a colon) is refused
//! rather than repaired.
//!
//! - [`request`]: the request head and its framing.
//! - [`path`]: the normal form of the request path.
//! - [`response`]: the response head and its framing.
//! - [`chunked`]: the chunked body decoder.
//!
//! Byte-level checks are done by a line scanner of our own (`scan`) before
//! `httparse` splits the fields: the scanner judges each line in order, so a
//! head fed in pieces fails at the same place, for the same reason, as the
//! head fed whole.

use std::ops::Range;

use self::path::PathRules;

pub mod chunked;
pub mod path;
pub mod request;
pub mod response;

mod chars;
mod fields;
mod scan;

#[cfg(test)]
mod prop_tests;

/// Most header fields any limit may allow (config caps max_headers at this);
/// sizes the parser's stack array.
///
/// 512 fields is far beyond what browsers and API clients send (a few dozen)
/// while keeping the parser's stack array to 16 KiB.
pub const MAX_HEADERS_CAP: usize = 512;

/// One header field of a parsed head, as byte ranges into the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as sent.
    pub name: Range<u32>,
    /// The field value without surrounding optional whitespace.
    pub value: Range<u32>,
    /// The field, if it is one the proxy acts on.
    pub kind: Known,
    /// A hop-by-hop field (RFC 9110 §7.6.1): `Connection`, `Keep-Alive`,
    /// `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`, and every
    /// field a `Connection` header names. Such a field is not forwarded.
    pub hop: bool,
}

impl Header {
    /// The field name, from the buffer the head was parsed from (empty if
    /// `buf` is not that buffer and too short).
    pub fn name<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.name)
    }

    /// The field value, trimmed of surrounding whitespace, from the buffer the
    /// head was parsed from.
    pub fn value<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.value)
    }
}

/// Header fields the proxy reads or rewrites; everything else is `Other`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Known {
    /// A field the proxy passes through untouched.
    Other,
    /// `Host`.
    Host,
    /// `Content-Length`.
    ContentLength,
    /// `Transfer-Encoding`.
    TransferEncoding,
    /// `Connection`.
    Connection,
    /// `Keep-Alive`.
    KeepAlive,
    /// `Proxy-Connection` (never standard, still sent by old clients).
    ProxyConnection,
    /// `TE`.
    Te,
    /// `Upgrade`.
    Upgrade,
    /// `Expect`.
    Expect,
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// `X-Forwarded-Proto`.
    XForwardedProto,
    /// `X-Forwarded-Host`.
    XForwardedHost,
    /// `X-Request-Id`.
    XRequestId,
    /// `X-Ringway-Attempt`: set by a ringway that retries the request,
    /// to the attempt number.
    XRingwayAttempt,
    /// `X-Ringway-Peer-Identity`: the client's SPIFFE ID, as ringway
    /// verified it; never taken from a request.
    XRingwayPeerIdentity,
}

/// The HTTP versions this codec speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Whether a parse call found a whole head.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// The head is complete; every field of the parsed head is filled.
    Complete,
    /// The head is not complete yet but within the limits; call again with
    /// more bytes.
    Partial,
}

/// What a request head may be: size limits, and the rules its path is
/// normalized by.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest request line, its CRLF not counted (longer: 414).
    pub max_request_line: usize,
    /// Largest head, from the first byte to the final CRLF CRLF (larger: 431).
    pub max_header_bytes: usize,
    /// Most header fields (more: 431); at most [`MAX_HEADERS_CAP`] is used.
    pub max_headers: usize,
    /// How the path is normalized (a path with no normal form: 400).
    pub path_rules: PathRules,
}

/// Which limit or rule a refused head broke; the session maps it to the
/// answer the peer gets and the counter that is bumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or ambiguous framing.
    Malformed,
    /// The head is over its size or field-count limit.
    TooLarge,
    /// The request line is over its limit.
    LineTooLong,
}

impl Refusal {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::TooLarge => "too_large",
            Refusal::LineTooLong => "line_too_long",
        }
    }
}

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadError {
    /// The rule broken.
    pub kind: Refusal,
    /// A one-line explanation for logs, e.g. "obsolete line folding".
    pub detail: &'static str,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for HeadError {}

/// `buf[range]`, or empty when the range does not fit (a range from another
/// buffer must not panic the worker).
fn slice<'a>(buf: &'a [u8], range: &Range<u32>) -> &'a [u8] {
    buf.get(range.start as usize..range.end as usize)
        .unwrap_or(&[])
}

/// A buffer offset as stored in the ranges. Offsets are below the head limit,
/// which the scanner clamps to `u32::MAX`, so saturating never happens in
/// practice; it only keeps a broken invariant from panicking.
fn off(x: usize) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// A byte range as stored in the heads.
fn range(r: Range<usize>) -> Range<u32> {
    off(r.start)..off(r.end)
}
