//! Connecting to a cluster: try endpoints in turn until one answers.

use std::io;

use super::balance::RoundRobin;
use crate::rt::net::TcpStream;
use crate::stats::{shortage, Counters};
use crate::table::{Cluster, ClusterId};

/// Why no upstream connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// This host ran short of a resource of its own (descriptors, memory,
    /// local ports): no endpoint was at fault, and the others were not
    /// tried, since they would meet the same shortage.
    #[error("out of a local resource: {0}")]
    Local(io::Error),
    /// Every endpoint refused, failed or timed out; the last failure.
    #[error("no endpoint accepted a connection: {0}")]
    Unreachable(io::Error),
}

/// Connects to an endpoint of `cluster`, starting at the round-robin pick and
/// moving on to the next endpoint when one refuses or times out. Nothing has
/// been sent yet at this point, so moving on is always safe.
pub async fn connect_any(
    id: ClusterId,
    cluster: &Cluster,
    rr: &RoundRobin,
    counters: &Counters,
) -> Result<TcpStream, ConnectError> {
    let n = cluster.endpoints.len();
    let first = rr.next(id.0 as usize, n);
    // Built only when every endpoint failed: a connect that succeeds (the
    // usual case) formats and allocates nothing.
    let mut last_err = None;
    for attempt in 0..n {
        let addr = cluster.endpoints[(first + attempt) % n];
        match TcpStream::connect(addr, cluster.connect_timeout).await {
            Ok(stream) => {
                let _ = stream.socket().set_tcp_nodelay(true);
                return Ok(stream);
            }
            Err(e) if shortage::is_local(&e) => {
                counters.connect_local_failures.add(1);
                shortage::note(counters, shortage::Doing::Connecting, &e);
                return Err(ConnectError::Local(e));
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::TimedOut {
                    counters.connect_timeouts.add(1);
                } else {
                    counters.connect_failures.add(1);
                }
                last_err = Some(e);
            }
        }
    }
    Err(ConnectError::Unreachable(last_err.unwrap_or_else(|| {
        io::Error::other(format!("cluster `{}` has no endpoints", cluster.name))
    })))
}
