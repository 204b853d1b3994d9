//! The request head: parsing, the strict framing rules, and the target.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::fields::{self, Summary};
use super::path::{self, PathRules};
use super::scan::{self, Bounds, Fault, First, Kind};
use super::{
    off, range, slice, HeadError, Header, Limits, Refusal, Status, Version, MAX_HEADERS_CAP,
};

#[cfg(test)]
pub(super) mod tests;

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// No body (neither Content-Length nor Transfer-Encoding).
    None,
    /// Exactly this many bytes follow the head (possibly 0).
    Length(u64),
    /// A chunked body follows; see [`super::chunked`].
    Chunked,
}

/// A parsed request head: ranges into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head including the final CRLF CRLF (and any empty lines
    /// before the request line).
    pub len: usize,
    /// The method.
    pub method: Range<u32>,
    /// The request-target as sent.
    pub target: Range<u32>,
    /// The path and query as sent: the target for origin-form (and for `*`
    /// and CONNECT's authority-form), the part from the first '/' for
    /// absolute-form. An absolute-form target with no path gets "/" (the
    /// second slash of its "//"). Routes and the upstream see the
    /// [normal form](RequestHead::normal_path) of its path instead.
    pub path: Range<u32>,
    /// Offset of the '?' that starts the query, if any (inside `path`).
    pub query_start: Option<u32>,
    /// The authority of an absolute-form target.
    pub authority: Option<Range<u32>>,
    /// The effective host: the absolute-form authority if any, else the
    /// Host header value (`None` only for HTTP/1.0 without a Host).
    pub host: Option<Range<u32>>,
    /// The protocol version.
    pub version: Version,
    /// Every header field in order.
    pub headers: Vec<Header>,
    /// How the body is framed.
    pub body: RequestBody,
    /// The connection may carry another request: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Expect: 100-continue` (ignored from HTTP/1.0 clients, RFC 9110
    /// §10.1.1).
    pub expect_continue: bool,
    /// An `Upgrade` field or a CONNECT: the session answers 501.
    pub upgrade: bool,
    /// The normal form of the path (see [`super::path`]) when it is not the
    /// path as sent; empty when it is. Kept from one request to the next,
    /// so rewriting a path allocates only until the buffer has grown.
    normal: Vec<u8>,
}

/// Fields a head usually carries; the vector grows past it only for unusual
/// heads, and keeps that capacity for the next request on the connection.
const INITIAL_FIELDS: usize = 32;

impl RequestHead {
    /// An empty head whose field vector is allocated once, for reuse.
    pub fn new() -> Self {
        Self {
            len: 0,
            method: 0..0,
            target: 0..0,
            path: 0..0,
            query_start: None,
            authority: None,
            host: None,
            version: Version::Http11,
            headers: Vec::with_capacity(INITIAL_FIELDS),
            body: RequestBody::None,
            keep_alive: false,
            expect_continue: false,
            upgrade: false,
            normal: Vec::new(),
        }
    }

    /// Parses the head at the start of `buf`; on Complete every field is
    /// filled; on Partial nothing is promised. Reuses self's allocations (no
    /// allocation per request once warmed up).
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Status, HeadError> {
        let max_fields = limits.max_headers.min(MAX_HEADERS_CAP);
        let bounds = Bounds {
            line: limits.max_request_line,
            bytes: limits.max_header_bytes,
            fields: max_fields,
        };
        let scanned = match scan::scan(buf, Kind::Request, bounds) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Status::Partial),
            Err(Fault::LineTooLong) => {
                return Err(err(
                    Refusal::LineTooLong,
                    "request line longer than the limit",
                ))
            }
            Err(Fault::TooLarge(d)) => return Err(err(Refusal::TooLarge, d)),
            Err(Fault::Bad(d)) => return Err(bad(d)),
        };
        let First::Request {
            method,
            target,
            minor,
        } = scanned.first
        else {
            return Err(bad("not a request line"));
        };
        let head = &buf[..scanned.len];
        self.split_fields(buf, head, max_fields)?;
        let s = fields::summarize(buf, &mut self.headers).map_err(bad)?;

        self.len = scanned.len;
        self.version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        self.method = range(method);
        self.target = range(target);
        self.body = self.framing(&s)?;
        self.shape_target(buf)?;
        self.normalize_path(buf, &limits.path_rules)?;
        self.pick_host(buf, &s)?;
        self.keep_alive = match self.version {
            Version::Http11 => !s.close,
            Version::Http10 => s.keep_alive && !s.close,
        };
        self.expect_continue = s.expect_continue && self.version == Version::Http11;
        self.upgrade = s.upgrade || self.method(buf) == b"CONNECT";
        Ok(Status::Complete)
    }

    /// The method.
    pub fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.method)
    }

    /// The path and query (see [`RequestHead::path`]).
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        slice(buf, &self.path)
    }

    /// The path before the query, as sent.
    pub fn path_as_sent<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let end = self.query_start.unwrap_or(self.path.end);
        slice(buf, &(self.path.start..end))
    }

    /// The path before the query in its normal form: what routes match and
    /// what goes upstream. The path as sent when that is already normal
    /// (most requests: nothing is copied), the rewritten one otherwise.
    /// `*` and CONNECT's authority are not paths and stay as they are.
    pub fn normal_path<'a>(&'a self, buf: &'a [u8]) -> &'a [u8] {
        if self.normal.is_empty() {
            self.path_as_sent(buf)
        } else {
            &self.normal
        }
    }

    /// The query with its '?', as sent; empty when there is none.
    pub fn query<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        match self.query_start {
            Some(q) => slice(buf, &(q..self.path.end)),
            None => &[],
        }
    }

    /// Whether the method is HEAD, whose response never has a body.
    pub fn is_head(&self, buf: &[u8]) -> bool {
        self.method(buf) == b"HEAD"
    }

    /// Splits the (already scanned, clean) head into fields with httparse.
    fn split_fields(
        &mut self,
        buf: &[u8],
        head: &[u8],
        max_fields: usize,
    ) -> Result<(), HeadError> {
        // Uninitialised slots cost nothing to set up, where an array of
        // EMPTY_HEADER would be 16 KiB of writes per request; the parse
        // call is synchronous, so the array never lives in a future.
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
        let mut req = httparse::Request::new(&mut []);
        // The scanner is stricter than httparse, so a disagreement means a
        // bug in one of them; refusing is the safe side.
        match req.parse_with_uninit_headers(head, &mut slots[..max_fields]) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            _ => return Err(bad("head rejected by the field splitter")),
        }
        fields::collect(buf, req.headers, &mut self.headers);
        Ok(())
    }

    /// The body framing, RFC 9112 §6.
    fn framing(&self, s: &Summary) -> Result<RequestBody, HeadError> {
        if let Some(codings) = s.codings {
            // A 1.0 peer cannot have meant chunked framing (RFC 9112 §6.1):
            // the field is a smuggling attempt or a broken client.
            if self.version == Version::Http10 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            if !codings.final_chunked {
                return Err(bad("final transfer coding is not chunked"));
            }
            if !codings.only_chunked {
                return Err(bad(
                    "unsupported transfer coding (only chunked is accepted)",
                ));
            }
            return Ok(RequestBody::Chunked);
        }
        Ok(s.content_length
            .map_or(RequestBody::None, RequestBody::Length))
    }

    /// Sorts the target into its form (RFC 9112 §3.2) and sets `path`,
    /// `query_start` and `authority`.
    fn shape_target(&mut self, buf: &[u8]) -> Result<(), HeadError> {
        let t = slice(buf, &self.target);
        let t0 = self.target.start;
        let connect = self.method(buf) == b"CONNECT";
        self.authority = None;
        self.query_start = None;
        if connect {
            // Authority-form only; the session answers 501 to CONNECT.
            if !fields::valid_authority(t, true) {
                return Err(bad("CONNECT target is not host:port"));
            }
            self.path = self.target.clone();
            return Ok(());
        }
        if t.first() == Some(&b'/') {
            self.path = self.target.clone();
        } else if t == b"*" {
            if self.method(buf) != b"OPTIONS" {
                return Err(bad("asterisk-form target without OPTIONS"));
            }
            self.path = self.target.clone();
        } else if let Some(scheme) = absolute_scheme(t) {
            let rest = &t[scheme..];
            let auth_len = rest
                .iter()
                .position(|&b| matches!(b, b'/' | b'?'))
                .unwrap_or(rest.len());
            let auth = &rest[..auth_len];
            if !fields::valid_authority(auth, false) {
                return Err(bad("invalid authority in the request target"));
            }
            let a0 = t0 + off(scheme);
            self.authority = Some(a0..a0 + off(auth_len));
            match rest.get(auth_len) {
                Some(b'/') => self.path = a0 + off(auth_len)..self.target.end,
                // No path: the "/" it stands for is the second slash of
                // "//", so the range still points into the buffer.
                None => self.path = a0 - 1..a0,
                // "http://h?q" has no contiguous "/?q" to point at; such
                // targets are vanishingly rare, so refuse them.
                Some(_) => return Err(bad("absolute-form target with a query but no path")),
            }
        } else {
            return Err(bad("unsupported request target form"));
        }
        let path = slice(buf, &self.path);
        self.query_start = path
            .iter()
            .position(|&b| b == b'?')
            .map(|i| self.path.start + off(i));
        Ok(())
    }

    /// Sets `normal` when the path is not in its normal form; refuses a
    /// path that has none. The common case costs one scan of the path.
    fn normalize_path(&mut self, buf: &[u8], rules: &PathRules) -> Result<(), HeadError> {
        self.normal.clear();
        let path = self.path_as_sent(buf);
        if path.first() != Some(&b'/') || path::is_normal(path, rules) {
            return Ok(());
        }
        path::normalize(path, rules, &mut self.normal).map_err(|e| bad(e.detail()))?;
        if self.normal == path {
            // The scan only saw a ';' or an escape that needs no change:
            // the path as sent serves.
            self.normal.clear();
        }
        Ok(())
    }

    /// The Host rules (RFC 9112 §3.2) and the effective host.
    fn pick_host(&mut self, buf: &[u8], s: &Summary) -> Result<(), HeadError> {
        if s.hosts > 1 {
            return Err(bad("more than one Host header"));
        }
        if s.hosts == 0 && self.version == Version::Http11 {
            return Err(bad("missing Host header"));
        }
        let host = s.host.clone().filter(|r| !r.is_empty());
        if let Some(r) = &host {
            if !fields::valid_authority(slice(buf, r), false) {
                return Err(bad("invalid Host header"));
            }
        }
        self.host = match &self.authority {
            // A Host that differs from the absolute-form authority is
            // ignored (RFC 9112 §3.2.2), even an empty one.
            Some(a) => Some(a.clone()),
            None if host.is_none() && self.version == Version::Http11 => {
                return Err(bad("empty Host header"))
            }
            None => host,
        };
        Ok(())
    }
}

impl Default for RequestHead {
    fn default() -> Self {
        Self::new()
    }
}

/// The length of "http://" or "https://" (any case) at the start of `t`.
fn absolute_scheme(t: &[u8]) -> Option<usize> {
    [&b"http://"[..], b"https://"].into_iter().find_map(|s| {
        t.get(..s.len())
            .filter(|p| p.eq_ignore_ascii_case(s))
            .map(|_| s.len())
    })
}

fn err(kind: Refusal, detail: &'static str) -> HeadError {
    HeadError { kind, detail }
}

fn bad(detail: &'static str) -> HeadError {
    err(Refusal::Malformed, detail)
}
