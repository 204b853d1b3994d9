//! ringway's own answers, as data: the status, the fields and the body of
//! every answer ringway gives instead of a proxied one (a redirect, a
//! direct response, an error answer), for a protocol driver to write in its
//! own framing. The HTTP/1 writer turns one into a head and a body; an
//! HTTP/2 driver will turn the same into a HEADERS and a DATA frame.

use super::Reason;

/// A header field a route sets or adds: name, value.
pub type Field = (Box<str>, Box<str>);

/// An answer ringway gives itself.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The status.
    pub status: u16,
    /// Where a redirect points.
    pub location: Option<Location<'a>>,
    /// The body's media type.
    pub content_type: Option<&'a str>,
    /// Why ringway answered instead of an upstream: the `x-ringway-error`
    /// field.
    pub error: Option<Reason>,
    /// Fields the route sets, then those it adds, after ringway's own.
    pub fields: [&'a [Field]; 2],
    /// The body.
    pub body: Body<'a>,
    /// The request was HEAD: the body's length is announced, its bytes are
    /// not sent.
    pub head_only: bool,
    /// Seconds the client should wait before asking again: the
    /// `retry-after` field.
    pub retry_after: Option<u64>,
}

/// The body of an [`Answer`].
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// None (a length of zero).
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
    /// One line for a person: `ringway: <detail>` and a line feed.
    Explained(&'a str),
}

impl Body<'_> {
    /// The prefix of an explained body.
    pub const EXPLAINED_PREFIX: &'static str = "ringway: ";

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len(),
            Body::Explained(detail) => Self::EXPLAINED_PREFIX.len() + detail.len() + 1,
        }
    }

    /// Whether it has no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A redirect's target, `scheme://host` followed by the path and query.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    /// The scheme.
    pub scheme: &'a str,
    /// The host, with its port if it has one (empty: none known).
    pub host: &'a [u8],
    /// The path.
    pub path: &'a [u8],
    /// The query with its `?`, or empty.
    pub query: &'a [u8],
}

impl<'a> Answer<'a> {
    /// The answer to a request that failed for `reason`, with `detail` as
    /// its one line; `None` where the reason gets no answer (the
    /// connection is closed instead: see [`Reason::status`]).
    pub fn failure(reason: Reason, detail: &'a str) -> Option<Self> {
        Some(Self {
            status: reason.status()?,
            location: None,
            content_type: Some("text/plain; charset=utf-8"),
            error: Some(reason),
            fields: [&[], &[]],
            body: Body::Explained(detail),
            head_only: false,
            retry_after: None,
        })
    }

    /// A redirect with `status` to `location`, with the route's fields.
    pub fn redirect(status: u16, location: Location<'a>, fields: [&'a [Field]; 2]) -> Self {
        Self {
            status,
            location: Some(location),
            content_type: None,
            error: None,
            fields,
            body: Body::Empty,
            head_only: false,
            retry_after: None,
        }
    }

    /// A response the route gives directly: `status`, `body` of
    /// `content_type`, the route's fields; `head_only` for a HEAD request.
    pub fn direct(
        status: u16,
        content_type: Option<&'a str>,
        body: &'a [u8],
        fields: [&'a [Field]; 2],
        head_only: bool,
    ) -> Self {
        Self {
            status,
            location: None,
            content_type,
            error: None,
            fields,
            body: Body::Bytes(body),
            head_only,
            retry_after: None,
        }
    }
}
