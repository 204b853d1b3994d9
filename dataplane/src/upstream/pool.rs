//! A worker's idle upstream HTTP connections, per endpoint address.
//!
//! Keyed by address rather than by cluster, so a pool survives table changes
//! that keep the endpoint. Connections are reused last-in first-out (the most
//! recently used one is the least likely to have been closed by the peer).
//!
//! An idle connection must hear nothing: a FIN or reset means the upstream
//! closed it, and a byte means the upstream wrote something no request asked
//! for. Sent a request, such a connection would hand those bytes to the
//! client as the response (another client's bytes, or garbage) and its real
//! answer, if any, to the next client. So a connection is checked when it is
//! taken (in the same loop turn as its request's send is queued) and at
//! every sweep, and dropped if it heard anything ([`RecvStream::heard`]);
//! bytes are counted in `pool_unsolicited`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rt::net::Heard;
use crate::stats::Counters;
use crate::table::breaker::OwnedSlot;
use crate::table::route::PoolSettings;
use crate::transport::{Receiver, Sender};

/// An upstream connection, plain or TLS.
#[derive(Debug)]
pub struct Upstream {
    /// What it receives.
    pub rx: Receiver,
    /// Where it sends.
    pub tx: Sender,
    /// The endpoint it is connected to.
    pub addr: SocketAddr,
    /// Room to gather a response head that spans reads, kept with the
    /// connection so that reusing it costs no allocation.
    pub scratch: Vec<u8>,
    /// Whether it came out of the pool (served an earlier request).
    pub reused: bool,
    /// Its place under the cluster's `max_connections`, when the cluster
    /// has breakers: given back when the connection closes.
    pub slot: Option<OwnedSlot>,
}

#[derive(Debug)]
struct Idle {
    conn: Upstream,
    since: Instant,
    timeout: Duration,
}

impl Idle {
    /// Whether the connection heard nothing while idle; counts bytes it
    /// heard.
    fn still_quiet(&mut self, counters: &Counters) -> bool {
        match self.conn.rx.heard() {
            Heard::Nothing => true,
            Heard::Closed => false,
            Heard::Bytes => {
                counters.pool_unsolicited.add(1);
                false
            }
        }
    }
}

/// One worker's pools.
#[derive(Debug, Default)]
pub struct Pool {
    idle: RefCell<HashMap<SocketAddr, Vec<Idle>>>,
}

impl Pool {
    /// An idle connection to `addr` that is still open and heard nothing,
    /// if there is one. Those expired or that heard anything are dropped
    /// (closing them) on the way.
    pub fn take(&self, addr: SocketAddr, now: Instant, counters: &Counters) -> Option<Upstream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        while let Some(mut entry) = list.pop() {
            if now.duration_since(entry.since) >= entry.timeout || !entry.still_quiet(counters) {
                continue;
            }
            entry.conn.reused = true;
            return Some(entry.conn);
        }
        None
    }

    /// Keeps `conn` for reuse, unless its endpoint's pool is full.
    pub fn put(&self, conn: Upstream, settings: PoolSettings, now: Instant) {
        if settings.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(conn.addr).or_default();
        if list.len() >= settings.max_idle {
            // The oldest goes: it is the likeliest to be closed by the peer.
            list.remove(0);
        }
        list.push(Idle {
            conn,
            since: now,
            timeout: settings.idle_timeout,
        });
    }

    /// Closes idle connections past their idle timeout, closed by the
    /// upstream or that heard bytes. Returns how many are left.
    pub fn sweep(&self, now: Instant, counters: &Counters) -> usize {
        let mut idle = self.idle.borrow_mut();
        let mut left = 0;
        idle.retain(|_, list| {
            list.retain_mut(|e| now.duration_since(e.since) < e.timeout && e.still_quiet(counters));
            left += list.len();
            !list.is_empty()
        });
        left
    }
}
