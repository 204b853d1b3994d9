//! Choosing and reaching upstream endpoints, for TCP and HTTP listeners
//! alike.
//!
//! Everything here is one worker's own: nothing is shared across cores.
//!
//! - [`balance`]: the order a connection tries a cluster's endpoints in (a
//!   [`balance::Balancer`] per table, a [`balance::Pick`] per connection);
//! - [`health`]: what the worker knows of each endpoint (the passive
//!   hold-down today);
//! - [`key`]: what a consistent-hashing policy hashes, from a request or a
//!   connection;
//! - [`load`]: requests in flight and latency estimates per endpoint, for
//!   the policies that balance by load;
//! - [`connect`]: the one connect loop, along a pick;
//! - [`pool`]: idle HTTP/1 upstream connections, per endpoint;
//! - [`local`]: a table as one worker runs it, with the state above.

pub mod balance;
pub mod connect;
pub mod health;
pub mod key;
pub mod load;
pub mod local;
pub mod pool;

pub use self::local::{LocalTable, TableHandle};

use std::time::Instant;

use self::health::Health;
use self::load::Loads;
use self::pool::Pool;
use crate::stats::Counters;

/// A worker's upstream state that outlives table generations: kept by
/// endpoint address, it is the same for every table the worker runs.
#[derive(Debug, Default)]
pub struct Upstreams {
    /// What the worker knows of each endpoint's health.
    pub health: Health,
    /// Idle upstream HTTP connections.
    pub pool: Pool,
    /// Requests in flight and latency estimates, per endpoint (only for
    /// endpoints of clusters that balance by load).
    pub loads: Loads,
}

impl Upstreams {
    /// Nothing known yet, for worker `worker`.
    pub fn for_worker(worker: usize) -> Self {
        Self {
            health: Health::for_worker(worker),
            ..Self::default()
        }
    }

    /// Closes idle connections that expired, that the upstream closed or
    /// that heard bytes, and forgets health records that hold nothing out
    /// any more and load records no table or request holds. Returns how many idle connections are left.
    pub fn sweep(&self, now: Instant, counters: &Counters) -> usize {
        self.health.sweep(now, health::REMEMBER);
        self.loads.sweep();
        self.pool.sweep(now, counters)
    }
}
