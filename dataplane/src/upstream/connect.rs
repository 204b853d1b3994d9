//! Reaching a cluster: walk a [`Pick`] until an endpoint answers.
//!
//! The one connect loop of both TCP and HTTP listeners. It counts each
//! failure once (`connect_failures`, `connect_timeouts`, or
//! `connect_local_failures` with the shortage note), holds a failed endpoint
//! out and clears the hold of one that answered. Nothing has been sent when
//! it moves on to the next endpoint, so moving on is always safe.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use super::balance::Pick;
use super::health::{Health, Verdict};
use crate::rt;
use crate::rt::net::TcpStream;
use crate::stats::{shortage, Counters};
use crate::table::Cluster;

/// Why no upstream connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// This host ran short of a resource of its own (descriptors, memory,
    /// local ports): no endpoint was at fault, and the others were not
    /// tried, since they would meet the same shortage.
    #[error("out of a local resource: {0}")]
    Local(io::Error),
    /// Every endpoint tried refused, failed or timed out; the last failure.
    #[error("no endpoint accepted a connection: {0}")]
    Unreachable(io::Error),
    /// Every endpoint is held out (its last connect failed a moment ago):
    /// none was tried.
    #[error("every endpoint is held out after a failed connect")]
    AllHeldOut,
}

/// An upstream connection [`connect_or_reuse`] found.
#[derive(Debug)]
pub enum Reached<T> {
    /// An idle connection the caller kept to this endpoint.
    Reused(T),
    /// A new connection to the endpoint at this address.
    New(TcpStream, SocketAddr),
}

/// A new connection to an endpoint of `cluster`, tried in the order of
/// `pick`.
pub async fn connect(
    pick: Pick<'_>,
    cluster: &Cluster,
    counters: &Counters,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    match connect_or_reuse(pick, cluster, counters, |_| None::<Infallible>).await? {
        Reached::New(stream, addr) => Ok((stream, addr)),
        Reached::Reused(never) => match never {},
    }
}

/// A connection to an endpoint of `cluster`, tried in the order of `pick`:
/// for each endpoint, first what `reuse` has for it (an idle connection
/// kept from an earlier request), else a new connection. A local shortage
/// ends the walk at once: every other endpoint would meet it too.
pub async fn connect_or_reuse<T>(
    pick: Pick<'_>,
    cluster: &Cluster,
    counters: &Counters,
    mut reuse: impl FnMut(SocketAddr) -> Option<T>,
) -> Result<Reached<T>, ConnectError> {
    let health = pick.health();
    // Built only when every endpoint failed: a connect that succeeds (the
    // usual case) formats and allocates nothing.
    let mut last_err = None;
    for addr in pick {
        if let Some(conn) = reuse(addr) {
            return Ok(Reached::Reused(conn));
        }
        match connect_to(addr, cluster, health, counters).await {
            Ok(stream) => return Ok(Reached::New(stream, addr)),
            Err(ConnectError::Unreachable(e)) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.map_or(ConnectError::AllHeldOut, ConnectError::Unreachable))
}

/// A new connection to `addr`, an endpoint of `cluster`. A failure holds the
/// endpoint out, unless it was this host's own shortage (descriptors,
/// memory, local ports): that is no sign of the endpoint's health, so it is
/// neither counted against the endpoint nor held against it.
pub async fn connect_to(
    addr: SocketAddr,
    cluster: &Cluster,
    health: &Health,
    counters: &Counters,
) -> Result<TcpStream, ConnectError> {
    let started = rt::now();
    match TcpStream::connect(addr, cluster.connect_timeout).await {
        Ok(stream) => {
            let took = rt::now().saturating_duration_since(started);
            cluster.tally.worker(health.worker()).connect.record(took);
            let _ = stream.socket().set_tcp_nodelay(true);
            health.mark_up(addr);
            Ok(stream)
        }
        Err(e) if shortage::is_local(&e) => {
            counters.connect_local_failures.add(1);
            shortage::note(counters, shortage::Doing::Connecting, &e);
            Err(ConnectError::Local(e))
        }
        Err(e) => {
            if e.kind() == io::ErrorKind::TimedOut {
                counters.connect_timeouts.add(1);
            } else {
                counters.connect_failures.add(1);
            }
            let now = rt::now();
            health.mark_down(addr, now);
            gateway_failure(health, addr, cluster, counters, now);
            Err(ConnectError::Unreachable(e))
        }
    }
}

/// A gateway failure of `addr`, an endpoint of `cluster` (a failed
/// connect, a reset, no answer in time, a 502/503/504 from it): counted
/// towards its ejection, and the ejection counted if it comes.
pub fn gateway_failure(
    health: &Health,
    addr: SocketAddr,
    cluster: &Cluster,
    counters: &Counters,
    now: std::time::Instant,
) {
    match health.failed(addr, &cluster.outlier, &cluster.endpoints, now) {
        Verdict::Ejected(_) => {
            counters.ejections.add(1);
            cluster.events.count(addr, |c| &c.ejections);
        }
        Verdict::Spared => {
            counters.ejections_spared.add(1);
            cluster.events.count(addr, |c| &c.spared);
        }
        Verdict::Counted => {}
    }
}

/// `addr`, an endpoint of `cluster`, answered well (or, for TCP, took the
/// connection): its run of failures ends, and a return from an ejection
/// is counted.
pub fn success(health: &Health, addr: SocketAddr, cluster: &Cluster, now: std::time::Instant) {
    if health.succeeded(addr, now) {
        cluster.events.count(addr, |c| &c.returns);
    }
}
