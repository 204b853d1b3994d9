//! What routing sees of a request, whatever the wire version: the method,
//! the authority as the client sent it, the path in its normal form, and
//! the header fields by name.
//!
//! A view borrows everything from the protocol driver that parsed the
//! request (HTTP/1 from its head buffer, HTTP/2 from its decoded header
//! block); building one copies nothing and allocates nothing.

/// A request as routing sees it. `F` is the driver's header fields.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a, F> {
    method: &'a [u8],
    authority: Option<&'a [u8]>,
    path: &'a [u8],
    fields: F,
    peer_identity: Option<&'a str>,
}

impl<'a, F: HeaderFields> RequestView<'a, F> {
    /// A view of a request with this method, authority as sent (`Host`, the
    /// authority of an absolute-form target, or HTTP/2's `:authority`;
    /// `None` when the request has none), path in its normal form without
    /// the query, and header fields.
    pub fn new(method: &'a [u8], authority: Option<&'a [u8]>, path: &'a [u8], fields: F) -> Self {
        Self {
            method,
            authority,
            path,
            fields,
            peer_identity: None,
        }
    }

    /// The same view of a request that came on a connection whose peer
    /// proved the SPIFFE ID `identity` (`None`: plain, or no client
    /// certificate). Only the transport's verification may set it, never
    /// anything the client sent.
    pub fn with_peer_identity(self, identity: Option<&'a str>) -> Self {
        Self {
            peer_identity: identity,
            ..self
        }
    }

    /// The connection's verified SPIFFE ID, if it has one.
    pub fn peer_identity(&self) -> Option<&'a str> {
        self.peer_identity
    }

    /// The method, as sent (methods are case-sensitive).
    pub fn method(&self) -> &'a [u8] {
        self.method
    }

    /// The authority as sent, port and any trailing dot included; `None`
    /// for a request without one (HTTP/1.0 without `Host`).
    pub fn authority(&self) -> Option<&'a [u8]> {
        self.authority
    }

    /// The path before any query, in its normal form (see
    /// [`crate::proto::h1::path`]): what routes match and what goes
    /// upstream.
    pub fn path(&self) -> &'a [u8] {
        self.path
    }

    /// The values of every field named `name` (compared without regard to
    /// ASCII case), in the order they arrived.
    pub fn values<'s>(&'s self, name: &'s [u8]) -> F::Values<'s> {
        self.fields.values(name)
    }
}

/// A request's header fields, looked up by name.
pub trait HeaderFields {
    /// The values of the fields of one name.
    type Values<'s>: Iterator<Item = &'s [u8]>
    where
        Self: 's;

    /// The values of every field named `name` (compared without regard to
    /// ASCII case), in arrival order, each without surrounding whitespace.
    fn values<'s>(&'s self, name: &'s [u8]) -> Self::Values<'s>;
}
