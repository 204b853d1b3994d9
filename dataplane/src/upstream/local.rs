//! A worker's view of the table it runs, with its upstream state.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::balance::{Balancer, Pick};
use super::load::InFlight;
use super::Upstreams;
use crate::table::{ClusterId, Table};

/// One table as one worker runs it: the shared snapshot, the worker's
/// balancer for it, and the worker's upstream state (the same for every
/// table the worker runs).
#[derive(Debug)]
pub struct LocalTable {
    /// The snapshot every worker shares.
    pub table: Arc<Table>,
    /// This worker's balancer for `table` (indexed by its cluster ids).
    pub balancer: Balancer,
    /// This worker's endpoint health and idle connections.
    pub upstreams: Rc<Upstreams>,
}

impl LocalTable {
    /// The endpoints of cluster `id` in the order a connection tries them
    /// (see [`Pick`]); advances the cluster's balancer. `key` is the hash
    /// of what a hashing policy hashes, when the request has it.
    pub fn pick(&self, id: ClusterId, now: Instant, key: Option<u64>) -> Pick<'_> {
        let cluster = self.table.cluster(id);
        let health = &self.upstreams.health;
        let first = self.balancer.first(id, cluster, key, health, now);
        Pick::new(&cluster.endpoints, first, health, now)
            .checked(cluster.checks.as_ref().map(|c| &*c.verdicts))
    }

    /// Counts a request (or TCP connection) in flight to `addr`, an
    /// endpoint of cluster `id`, for as long as the guard lives, when the
    /// cluster's policy reads load.
    pub fn track(&self, id: ClusterId, addr: std::net::SocketAddr) -> Option<InFlight> {
        let cluster = self.table.cluster(id);
        if !cluster.balance.policy.tracks_load() {
            return None;
        }
        // The balancer holds the records in endpoint order: for a cluster
        // of a few endpoints a scan is cheaper than hashing the address.
        let endpoints = &cluster.endpoints;
        if endpoints.len() <= 16 {
            let i = endpoints.iter().position(|&e| e == addr)?;
            return self.balancer.load(id, i).cloned().map(InFlight::start);
        }
        self.upstreams.loads.get(addr).map(InFlight::start)
    }
}

/// The table a worker currently runs.
///
/// Connections hold an `Rc` of the [`LocalTable`] current when they were
/// accepted, so work in flight finishes on its own generation while the
/// handle moves on. Cloning that `Rc` is a plain increment in the worker's
/// own memory: the shared `Arc`'s count (a cache line every worker could
/// write) changes once per worker per table, not once per connection.
#[derive(Debug)]
pub struct TableHandle {
    current: Rc<LocalTable>,
}

impl TableHandle {
    /// A handle that starts on `table`, with the worker's `upstreams`;
    /// `seed` spreads the workers' first picks of each cluster (see
    /// [`Balancer::new`]).
    pub fn new(table: Arc<Table>, seed: usize, upstreams: Rc<Upstreams>) -> Self {
        Self {
            current: Rc::new(LocalTable {
                balancer: Balancer::new(&table, seed, &upstreams.loads),
                table,
                upstreams,
            }),
        }
    }

    /// The table new connections start on.
    pub fn current(&self) -> &Rc<LocalTable> {
        &self.current
    }

    /// The generation running.
    pub fn generation(&self) -> u64 {
        self.current.table.generation
    }

    /// Adopts `table` if it is newer than the one running; returns whether it
    /// was adopted. The balancer carries on where the old one left off
    /// ([`Balancer::follow`]); health and idle connections, kept by endpoint
    /// address, carry over whole.
    pub fn adopt(&mut self, table: Arc<Table>, seed: usize) -> bool {
        if table.generation <= self.generation() {
            return false;
        }
        let current = &self.current;
        let balancer = Balancer::follow(
            &current.balancer,
            &current.table,
            &table,
            seed,
            &current.upstreams.loads,
        );
        self.current = Rc::new(LocalTable {
            table,
            balancer,
            upstreams: Rc::clone(&current.upstreams),
        });
        true
    }
}
