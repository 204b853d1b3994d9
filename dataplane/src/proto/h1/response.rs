//! The response head: parsing and the strict framing rules.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::fields::{self, Summary};
use super::scan::{self, Bounds, Fault, First, Kind};
use super::{range, HeadError, Header, Refusal, Status, Version, MAX_HEADERS_CAP};

#[cfg(test)]
pub(super) mod tests;

/// How the response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body: 1xx, 204, 304, or the answer to a HEAD.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// A chunked body follows; see [`super::chunked`].
    Chunked,
    /// The body runs until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head: ranges into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head including the final CRLF CRLF.
    pub len: usize,
    /// The status code, 100 to 599.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: Range<u32>,
    /// The protocol version.
    pub version: Version,
    /// Every header field in order.
    pub headers: Vec<Header>,
    /// How the body is framed.
    pub body: ResponseBody,
    /// The upstream connection may carry another request after this
    /// response: not for bodies delimited by close, `Connection: close`, or
    /// HTTP/1.0 without `Connection: keep-alive`.
    pub keep_alive: bool,
}

/// See the request head's constant of the same name.
const INITIAL_FIELDS: usize = 32;

impl ResponseHead {
    /// An empty head whose field vector is allocated once, for reuse.
    pub fn new() -> Self {
        Self {
            len: 0,
            status: 0,
            reason: 0..0,
            version: Version::Http11,
            headers: Vec::with_capacity(INITIAL_FIELDS),
            body: ResponseBody::None,
            keep_alive: false,
        }
    }

    /// Parses the head at the start of `buf`; on Complete every field is
    /// filled, on Partial nothing is promised. `request_was_head`: the
    /// request was HEAD, so the response has no body whatever its headers
    /// say.
    pub fn parse(
        &mut self,
        buf: &[u8],
        max_header_bytes: usize,
        max_headers: usize,
        request_was_head: bool,
    ) -> Result<Status, HeadError> {
        let max_fields = max_headers.min(MAX_HEADERS_CAP);
        let bounds = Bounds {
            // The status line has no limit of its own; the head limit
            // bounds it.
            line: max_header_bytes,
            bytes: max_header_bytes,
            fields: max_fields,
        };
        let scanned = match scan::scan(buf, Kind::Response, bounds) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Status::Partial),
            Err(Fault::LineTooLong) => return Err(bad("header block larger than the limit")),
            Err(Fault::TooLarge(d) | Fault::Bad(d)) => return Err(bad(d)),
        };
        let First::Response {
            minor,
            status,
            reason,
        } = scanned.first
        else {
            return Err(bad("not a status line"));
        };
        let head = &buf[..scanned.len];
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
        let mut resp = httparse::Response::new(&mut []);
        match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            head,
            &mut slots[..max_fields],
        ) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            _ => return Err(bad("head rejected by the field splitter")),
        }
        fields::collect(buf, resp.headers, &mut self.headers);
        let s = fields::summarize(buf, &mut self.headers).map_err(bad)?;

        self.len = scanned.len;
        self.status = status;
        self.reason = range(reason);
        self.version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        if status == 101 {
            return Err(bad("101 Switching Protocols (upgrades are not forwarded)"));
        }
        self.body = self.framing(&s, request_was_head)?;
        self.keep_alive = self.body != ResponseBody::UntilClose
            && !s.close
            && (self.version == Version::Http11 || s.keep_alive);
        Ok(Status::Complete)
    }

    /// A 1xx interim response; the final response follows it.
    pub fn is_interim(&self) -> bool {
        (100..=199).contains(&self.status)
    }

    /// The body framing, RFC 9112 §6.3. The framing fields are checked even
    /// where the body is known to be empty: a response that lies about its
    /// framing is not trusted for the rest of the connection.
    fn framing(&self, s: &Summary, request_was_head: bool) -> Result<ResponseBody, HeadError> {
        let framed = if let Some(codings) = s.codings {
            if self.version == Version::Http10 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 response"));
            }
            // Earlier codings (gzip, chunked) are content the client
            // decodes; only the final chunked matters for framing.
            if !codings.final_chunked {
                return Err(bad("final transfer coding is not chunked"));
            }
            ResponseBody::Chunked
        } else {
            s.content_length
                .map_or(ResponseBody::UntilClose, ResponseBody::Length)
        };
        let bodiless =
            request_was_head || self.is_interim() || self.status == 204 || self.status == 304;
        Ok(if bodiless { ResponseBody::None } else { framed })
    }
}

impl Default for ResponseHead {
    fn default() -> Self {
        Self::new()
    }
}

fn bad(detail: &'static str) -> HeadError {
    HeadError {
        kind: Refusal::Malformed,
        detail,
    }
}
