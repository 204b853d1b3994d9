//! Buffers the kernel fills for us: provided buffer rings, one per group.
//!
//! Received data lands in a buffer the kernel picks from a ring; the proxy
//! sends it onward from that same buffer and the buffer returns to the ring
//! when the [`BufHandle`] is dropped. Buffer memory therefore follows active
//! traffic, not the number of open connections.
//!
//! Each worker has two rings ([`Group`]): one for what clients send and one
//! for what upstreams send, so bytes clients send can never take the buffers
//! the responses they wait for need. Within a ring, [`BufPool`] keeps the
//! holding fair when it runs low (see its docs): no set of connections can
//! take the buffers that others need.

mod handle;
mod pool;
pub mod spare;
mod tail;

pub use handle::BufHandle;
pub use pool::{BufPool, BufPoolError, PoolCounters, PoolStats};
pub use spare::Filling;
pub use tail::Tail;

/// Which provided buffer ring a receive draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Bytes clients send to ringway (requests, TCP client streams).
    Client = 0,
    /// Bytes upstreams send to ringway (responses, TCP upstream streams).
    Upstream = 1,
}

impl Group {
    /// Every group, in id order.
    pub const ALL: [Group; 2] = [Group::Client, Group::Upstream];

    /// The buffer group id registered with the kernel (and an index).
    pub fn id(self) -> u16 {
        self as u16
    }

    /// The label value of this group's metrics.
    pub fn name(self) -> &'static str {
        match self {
            Group::Client => "client",
            Group::Upstream => "upstream",
        }
    }
}
