//! The immutable routing table a worker forwards by.
//!
//! The control side builds a [`Table`] once per configuration generation and
//! hands it to every worker as an `Arc`. A worker never mutates it; it reads
//! the listeners and clusters through its handle on the table it runs (with
//! its own upstream state beside it, `upstream::TableHandle`) and adopts a
//! newer generation only at a connection boundary.

pub mod access;
pub mod authz;
pub mod breaker;
pub mod certs;
pub mod checks;
pub mod fault;
pub mod lb;
pub mod mirror;
pub mod outlier;
pub mod rate;
pub mod retry;
pub mod rollout;
pub mod route;
pub mod tally;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One configuration generation: listeners and the clusters they send to,
/// always swapped together.
#[derive(Debug, Clone)]
pub struct Table {
    /// Monotonic generation number; the first table a process runs is 1.
    pub generation: u64,
    /// Listeners, in configuration order.
    pub listeners: Vec<Listener>,
    /// Clusters; a [`ClusterId`] indexes into this vector. Each is behind its
    /// own `Arc` so that the next generation shares every cluster it does
    /// not change: building, cloning and freeing a table of 10,000 clusters
    /// then costs 10,000 reference counts, not 10,000 allocations. Only the
    /// control agent touches these counts; workers read through `&Table`.
    pub clusters: Vec<Arc<Cluster>>,
}

impl Table {
    /// The cluster a [`ClusterId`] names.
    ///
    /// Ids are produced by the compiler of this very table, so an id out of
    /// range is a bug in that compiler, not bad input.
    pub fn cluster(&self, id: ClusterId) -> &Cluster {
        &self.clusters[id.0 as usize]
    }
}

/// Index of a cluster within its [`Table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterId(pub u32);

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Bytes are forwarded as they come (L4), half-close and resets included.
    Tcp,
    /// HTTP/1.1, routed request by request.
    Http,
}

/// What a listener does with its connections.
#[derive(Debug, Clone)]
pub enum Service {
    /// Forwards every connection's bytes to a cluster.
    Tcp {
        /// Where connections go.
        cluster: ClusterId,
        /// TLS termination, when the listener has `tls`.
        tls: Option<Arc<route::ListenerTls>>,
        /// Faults injected into a share of its connections, if any.
        fault: Option<Arc<fault::TcpFault>>,
    },
    /// Parses HTTP/1.1 requests and routes each one.
    Http(Arc<route::HttpService>),
}

/// A socket address every worker binds with `SO_REUSEPORT`.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Operator-given name, used in logs and statistics.
    pub name: Arc<str>,
    /// Address to bind.
    pub address: SocketAddr,
    /// What accepted connections get.
    pub service: Service,
    /// A connection with no byte moving in either direction for this long is
    /// closed (for HTTP: a keep-alive connection waiting this long for its
    /// next request).
    pub idle_timeout: Duration,
    /// Who may send what through the listener, when it has
    /// `[listeners.authorization]`: judged per request (HTTP) or per
    /// connection (TCP).
    pub authorization: Option<Arc<authz::Authorization>>,
    /// How long its connections lasted.
    pub connections: Arc<tally::ConnectionTally>,
    /// Its limit on new connections per second, if it has one.
    pub connection_rate_limit: Option<rate::ConnectionLimit>,
}

impl Listener {
    /// Its TLS termination, on either protocol.
    pub fn tls(&self) -> Option<&route::ListenerTls> {
        match &self.service {
            Service::Tcp { tls, .. } => tls.as_deref(),
            Service::Http(http) => http.tls.as_ref(),
        }
    }

    /// The protocol spoken on accepted connections.
    pub fn protocol(&self) -> Protocol {
        match self.service {
            Service::Tcp { .. } => Protocol::Tcp,
            Service::Http(_) => Protocol::Http,
        }
    }
}

/// A set of interchangeable upstream endpoints.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Operator-given name.
    pub name: Arc<str>,
    /// Endpoints, in configuration order. Never empty.
    pub endpoints: Vec<SocketAddr>,
    /// How a connection chooses among them (built from `endpoints`: rebuild
    /// it when they change).
    pub balance: lb::Balance,
    /// How long a connect may take before the next endpoint is tried.
    pub connect_timeout: Duration,
    /// Idle HTTP connections kept to each endpoint.
    pub pool: route::PoolSettings,
    /// Circuit breakers, when a limit is set.
    pub breaker: Option<breaker::Breaker>,
    /// When a worker ejects an endpoint that keeps failing.
    pub outlier: outlier::Outlier,
    /// What ejection did to each endpoint (built from `endpoints`: rebuild
    /// it when they change).
    pub events: outlier::EndpointEvents,
    /// Active health checks, when configured.
    pub checks: Option<checks::Checks>,
    /// How its requests are retried where the route does not say.
    pub retry: Arc<retry::RetryPolicy>,
    /// Its retry budget, shared by every worker.
    pub budget: retry::Budget,
    /// TLS to its endpoints, when configured.
    pub tls: Option<route::ClusterTls>,
    /// Its connect, first-byte and request timings.
    pub tally: Arc<tally::ClusterTally>,
    /// Each endpoint's requests, failures and durations (built from
    /// `endpoints`: rebuild it when they change).
    pub endpoint_tallies: tally::EndpointTallies,
}
