//! What an HTTP listener does with a request: its settings and its routes.
//!
//! Routes are tried in order; the first whose every condition holds wins.
//! All strings a route compares against are stored in the form the match
//! needs (host names and header names lower-cased), so matching a request
//! costs comparisons only, no allocation. A listener's routes carry an
//! [index](RouteIndex), built with them, that narrows a request to the
//! routes that may match it.

mod index;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

pub use self::index::RouteIndex;
use super::ClusterId;
use crate::proto::h1::path::PathRules;
use crate::table::tally::HttpTally;

/// An HTTP listener's settings and routes.
#[derive(Debug, Clone)]
pub struct HttpService {
    /// Size limits on what a client may send.
    pub limits: HttpLimits,
    /// How request paths are normalized before routing.
    pub path_rules: PathRules,
    /// Timeouts of the exchange with the client and the upstream.
    pub timeouts: HttpTimeouts,
    /// Whether `X-Forwarded-*` headers that arrive are kept and extended
    /// (`true`: the client is another proxy we trust) or replaced with what
    /// this hop saw (`false`).
    pub trust_forwarded: bool,
    /// Routes in match order, with their index.
    pub routes: Routes,
    /// Counters of requests that ended before a route was chosen (framing
    /// errors, limits, no matching route), per worker.
    pub tally: Arc<HttpTally>,
    /// TLS termination, when the listener has `tls`: the certificate and
    /// key (built and checked on the control thread), shared by every
    /// worker; a connection keeps the one its handshake began with.
    pub tls: Option<ListenerTls>,
    /// The access log, when the listener has one.
    pub access_log: Option<super::access::AccessLog>,
    /// Tracing, when the configuration has a `[tracing]` section: the
    /// share of requests without a sampling decision that are traced.
    pub tracing: Option<crate::trace::context::Threshold>,
}

/// A listener's TLS termination: what rustls takes, and what it was built
/// from (for `GET /config` and the expiry gauge; the key material itself
/// is never shown).
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// The certificates, versions and client verification, as every
    /// handshake uses them.
    pub config: Arc<rustls::ServerConfig>,
    /// The certificates: the default first, then those chosen by SNI.
    pub certs: Vec<TlsCert>,
    /// Whether TLS 1.2 is accepted as well as 1.3.
    pub tls12: bool,
    /// Client certificates, when the listener asks for them.
    pub clients: Option<ClientAuth>,
}

/// A cluster's TLS to its endpoints: what rustls takes, and what it was
/// built from (for `GET /config`).
#[derive(Debug, Clone)]
pub struct ClusterTls {
    /// The anchors, the verification and the client certificate, as every
    /// handshake uses them.
    pub config: Arc<rustls::ClientConfig>,
    /// The name sent and verified; the endpoint's address when `None`.
    pub sni: Option<rustls::pki_types::ServerName<'static>>,
    /// The PEM file of the anchors (`None` only without verification).
    pub ca: Option<Box<str>>,
    /// Whether the upstream's certificate is verified.
    pub verify: bool,
    /// The SPIFFE IDs one of which the upstream must prove (the name is
    /// then not checked); empty to check the name.
    pub identities: Box<[Box<str>]>,
    /// The client certificate presented, if any.
    pub cert: Option<TlsCert>,
}

impl ClusterTls {
    /// The name to send and verify for an endpoint at `addr`.
    pub fn server_name(
        &self,
        addr: std::net::SocketAddr,
    ) -> rustls::pki_types::ServerName<'static> {
        match &self.sni {
            Some(name) => name.clone(),
            None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
        }
    }
}

/// One certificate of a listener or cluster, as configured.
#[derive(Debug, Clone)]
pub struct TlsCert {
    /// The server names it answers (none for a listener's default or a
    /// cluster's client certificate).
    pub names: Vec<Box<str>>,
    /// The certificate chain's PEM file.
    pub cert: Box<str>,
    /// The private key's PEM file.
    pub key: Box<str>,
    /// When the leaf expires (its notAfter, in seconds since the epoch).
    pub not_after: i64,
    /// The SPIFFE ID the leaf names, if it is an SVID.
    pub identity: Option<Box<str>>,
}

/// A listener's verification of client certificates.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The PEM file of the anchors.
    pub ca: Box<str>,
    /// Whether a client without a certificate is refused.
    pub required: bool,
    /// The trust domains whose SPIFFE IDs are accepted (any when empty).
    pub trust_domains: Box<[Box<str>]>,
}

/// A listener's routes in match (file) order, and their index. Reads as a
/// slice of routes.
#[derive(Debug)]
pub struct Routes {
    list: Vec<Route>,
    index: RouteIndex,
}

impl Routes {
    /// `list` (in match order) and its index.
    pub fn new(list: Vec<Route>) -> Self {
        let index = RouteIndex::new(&list);
        Self { list, index }
    }

    /// `list` with an index of the given shape (see
    /// [`RouteIndex::with_limits`]), for tests that need every part of the
    /// index with a few routes.
    #[cfg(test)]
    pub(crate) fn with_limits(list: Vec<Route>, linear_max: usize, few_max: usize) -> Self {
        let index = RouteIndex::with_limits(&list, linear_max, few_max);
        Self { list, index }
    }

    /// The index of these routes.
    pub fn index(&self) -> &RouteIndex {
        &self.index
    }

    /// The forward of route `i`, to change (a rollout moves its weights;
    /// the index, built from the routes' conditions only, stays valid).
    pub fn forward_mut(&mut self, i: usize) -> Option<&mut Forward> {
        match &mut self.list.get_mut(i)?.action {
            RouteAction::Forward(forward) => Some(forward),
            _ => None,
        }
    }
}

/// A copy rebuilds the index from the routes: it is made on the control
/// thread (a rollout step changes one route's weights), never on a worker.
impl Clone for Routes {
    fn clone(&self) -> Self {
        Self::new(self.list.clone())
    }
}

impl Deref for Routes {
    type Target = [Route];

    fn deref(&self) -> &[Route] {
        &self.list
    }
}

impl<'a> IntoIterator for &'a Routes {
    type Item = &'a Route;
    type IntoIter = std::slice::Iter<'a, Route>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

/// Size limits on requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest request line (method, target, version; its CRLF not
    /// counted), in bytes: 414 past it.
    pub max_request_line: usize,
    /// Longest request head (request line and header fields), in bytes: 431
    /// past it.
    pub max_header_bytes: usize,
    /// Most header fields in one request: 431 past it.
    pub max_headers: usize,
    /// Largest request body, in bytes; `None` for no limit. 413 past it.
    pub max_body: Option<u64>,
}

/// Timeouts of an HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the first byte of a request to the end of its head: 408 past it.
    pub header: Duration,
    /// From the end of the request head to the end of the response: 504 if
    /// no response head came by then, otherwise the client connection is
    /// closed.
    pub request: Duration,
    /// How long a send to a client that stopped reading may wait before the
    /// connection is closed.
    pub send: Duration,
    /// How long a keep-alive client connection may wait for its next
    /// request.
    pub idle: Duration,
}

/// One route: conditions, an action, and header edits.
#[derive(Debug, Clone)]
pub struct Route {
    /// Operator-given name (unique within its listener), used in metrics.
    pub name: Arc<str>,
    /// Conditions, all of which must hold.
    pub matcher: RouteMatch,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Edits to the request before it goes upstream.
    pub request_headers: HeaderEdits,
    /// Edits to the response before it goes to the client.
    pub response_headers: HeaderEdits,
    /// Counters of this route, per worker.
    pub tally: Arc<HttpTally>,
    /// Its rate limit, if it has one.
    pub rate_limit: Option<super::rate::RateLimit>,
    /// The route's own timeouts and body limit, in place of the
    /// listener's for the requests it takes.
    pub limits: RouteLimits,
    /// Faults injected into a share of its requests, if any.
    pub fault: Option<Box<super::fault::RouteFault>>,
}

/// A route's own `request_timeout`, `idle_timeout` and `max_body`; each
/// `None` leaves the listener's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// In place of the listener's request timeout, for the exchange of a
    /// request this route takes.
    pub request_timeout: Option<Duration>,
    /// In place of the listener's idle timeout, for the wait for the next
    /// request on a connection after a request this route took.
    pub idle_timeout: Option<Duration>,
    /// In place of the listener's body limit (raising or lowering it).
    pub max_body: Option<u64>,
}

impl Route {
    /// The request timeout of an exchange of this route's on a listener
    /// with `timeouts`.
    #[inline]
    pub fn request_timeout(&self, timeouts: &HttpTimeouts) -> Duration {
        self.limits.request_timeout.unwrap_or(timeouts.request)
    }

    /// The response edits of a request of this route's into which
    /// `fault` was injected: the route's, with the delay marked.
    #[inline]
    pub fn response_edits(&self, fault: Option<crate::request::Fault>) -> &HeaderEdits {
        match (&self.fault, fault) {
            (Some(f), Some(crate::request::Fault::Delay)) => &f.delay_edits,
            _ => &self.response_headers,
        }
    }

    /// The body limit of a request of this route's on a listener with
    /// `limits`.
    #[inline]
    pub fn max_body(&self, limits: &HttpLimits) -> Option<u64> {
        self.limits.max_body.or(limits.max_body)
    }
}

/// Conditions on a request; an empty matcher matches everything.
#[derive(Debug, Default, Clone)]
pub struct RouteMatch {
    /// The `Host` header, port removed, compared case-insensitively.
    pub host: Option<HostMatch>,
    /// The path of the request target (before any `?`) in its normal form
    /// (see [`crate::proto::h1::path`]).
    pub path: Option<PathMatch>,
    /// Methods accepted (exact, case-sensitive as RFC 9110 says); empty for
    /// any.
    pub methods: Vec<Box<[u8]>>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderMatch>,
    /// The connection's verified SPIFFE ID must be exactly this; a request
    /// on a connection without one never matches. Not indexed: checked on
    /// every candidate the index yields.
    pub peer_identity: Option<Box<str>>,
}

/// A condition on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    /// This host exactly (stored lower-case).
    Exact(Box<str>),
    /// Any host ending in this suffix, which starts with a dot: written
    /// `*.example.com`, stored `.example.com`; it does not match
    /// `example.com` itself.
    Suffix(Box<str>),
}

/// A condition on the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path is exactly this.
    Exact(Box<str>),
    /// The path starts with this (a byte prefix: `/api` matches `/apix`).
    Prefix(Box<str>),
}

/// A condition on one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Header name, lower-case.
    pub name: Box<str>,
    /// What its value must be.
    pub test: HeaderTest,
}

/// What a header's value must be. With several fields of the name, one
/// matching field is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderTest {
    /// The header is present, with any value.
    Present,
    /// The value is exactly this.
    Exact(Box<[u8]>),
    /// The value starts with this.
    Prefix(Box<[u8]>),
}

/// What a route does.
#[derive(Debug, Clone)]
pub enum RouteAction {
    /// Forward upstream to one of the clusters, picked by weight.
    Forward(Forward),
    /// Answer with a redirect.
    Redirect(Redirect),
    /// Answer with a fixed response.
    Direct(DirectResponse),
}

/// Forwarding upstream.
#[derive(Debug, Clone)]
pub struct Forward {
    /// Clusters with their weights; one entry for a plain forward, several
    /// for a split (canary, gray release). Never empty; weights are not all 0.
    pub targets: Vec<Target>,
    /// Sum of the weights.
    pub total_weight: u32,
    /// Replaces the matched path prefix with this before forwarding (only
    /// with a `PathMatch::Prefix` condition). The builder only accepts one
    /// whose result stays a normal path under it, whatever the request.
    pub rewrite_prefix: Option<Box<str>>,
    /// The route's retry policy, for every target; `None`: each target's
    /// cluster's own.
    pub retry: Option<Arc<super::retry::RetryPolicy>>,
    /// Where copies of the route's requests go, if anywhere.
    pub mirror: Option<super::mirror::Mirror>,
    /// The route's progressive rollout, when it has one: the control
    /// agent moves the weights of its two targets (workers never read it).
    pub rollout: Option<Arc<super::rollout::Rollout>>,
}

/// One cluster of a forward and its share.
#[derive(Debug, Clone)]
pub struct Target {
    /// The cluster.
    pub cluster: ClusterId,
    /// Relative weight.
    pub weight: u32,
    /// Counters of requests this route sent to this cluster, per worker.
    pub tally: Arc<HttpTally>,
    /// The figures a rollout compares, on the two targets of a route with
    /// a rollout only.
    pub watch: Option<Arc<super::rollout::WatchTally>>,
}

impl Forward {
    /// The index of the target a roll in `0..total_weight` falls on.
    pub fn pick(&self, roll: u32) -> usize {
        let mut left = roll;
        for (i, target) in self.targets.iter().enumerate() {
            if left < target.weight {
                return i;
            }
            left -= target.weight;
        }
        // Only reached for a roll out of range; the last target is as good
        // an answer as any.
        self.targets.len() - 1
    }
}

/// A redirect answer. Parts not given are taken from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// New scheme (`http` or `https`).
    pub scheme: Option<Box<str>>,
    /// New host (with an optional port).
    pub host: Option<Box<str>>,
    /// New path (the query of the request is kept).
    pub path: Option<Box<str>>,
}

/// A fixed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    /// The status code.
    pub status: u16,
    /// The body, sent with a `Content-Length`.
    pub body: Arc<[u8]>,
    /// The `Content-Type` of the body, if any.
    pub content_type: Option<Box<str>>,
}

/// Header edits, applied in this order: remove, set, add.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Names to remove (lower-case).
    pub remove: Vec<Box<str>>,
    /// Names to set: every existing field of the name is replaced by this one.
    pub set: Vec<(Box<str>, Box<str>)>,
    /// Fields to add alongside any existing ones.
    pub add: Vec<(Box<str>, Box<str>)>,
}

impl HeaderEdits {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Whether an arriving header named `name` (any case) must be dropped:
    /// it is removed, or set (replaced).
    pub fn drops(&self, name: &[u8]) -> bool {
        self.remove
            .iter()
            .chain(self.set.iter().map(|(n, _)| n))
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Settings of a cluster's per-worker connection pools (one pool per
/// endpoint per worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most idle connections kept per endpoint per worker.
    pub max_idle: usize,
    /// An idle connection unused this long is closed.
    pub idle_timeout: Duration,
}
