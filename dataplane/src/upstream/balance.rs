//! Load balancing across a cluster's endpoints: the order in which a
//! connection tries them.
//!
//! A [`Balancer`] chooses the endpoint to try first; a [`Pick`] walks the
//! cluster from there, skipping endpoints the worker holds out
//! ([`Health`]). Balancing algorithms other than round robin plug in here:
//! the balancer chooses the first endpoint (or, for an algorithm with an
//! order of its own, the whole order), the pick keeps the fail-over walk and
//! the health filter.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::health::Health;
use crate::table::{ClusterId, Table};

/// A worker's balancing state for one table: today a round-robin cursor per
/// cluster.
///
/// Each worker keeps its own cursors, so workers never contend; across
/// workers the spread is still even because each walks every endpoint in
/// turn.
#[derive(Debug)]
pub struct Balancer {
    cursors: Vec<Cell<usize>>,
}

impl Balancer {
    /// Cursors for every cluster of `table`, starting at `seed` (workers use
    /// their index so that they do not all start on the same endpoint).
    pub fn new(table: &Table, seed: usize) -> Self {
        Self {
            cursors: table
                .clusters
                .iter()
                .map(|c| Cell::new(seed % c.endpoints.len().max(1)))
                .collect(),
        }
    }

    /// Cursors for `table` that carry on where `previous` (built for
    /// `previous_table`) left off, for every cluster at the same position
    /// under the same name; the others start at `seed`. Without this, a
    /// worker that adopts tables often (endpoint updates many times a
    /// second) would restart every cluster at the same endpoint and send it
    /// nearly all the traffic.
    pub fn follow(previous: &Balancer, previous_table: &Table, table: &Table, seed: usize) -> Self {
        let next = Self::new(table, seed);
        for (i, cluster) in table.clusters.iter().enumerate() {
            let same = previous_table
                .clusters
                .get(i)
                .is_some_and(|old| Arc::ptr_eq(old, cluster) || old.name == cluster.name);
            if let (true, Some(cursor)) = (same, previous.cursors.get(i)) {
                next.cursors[i].set(cursor.get());
            }
        }
        next
    }

    /// The endpoint index to try first for cluster `cluster`, which has
    /// `len` endpoints; advances the cursor (once per pick, whether or not
    /// that endpoint is held out, so the walk stays even).
    pub fn first(&self, cluster: ClusterId, len: usize) -> usize {
        let cursor = &self.cursors[cluster.0 as usize];
        let i = cursor.get() % len.max(1);
        cursor.set(i + 1);
        i
    }
}

/// The endpoints of one cluster in the order a connection tries them: the
/// balancer's first choice, then the others in turn (fail-over), each one
/// skipped while the worker holds it out. Lazy: whether an endpoint is held
/// out is read when the walk reaches it, so a failure met meanwhile (by
/// this connection or another of the worker) counts.
#[derive(Debug, Clone)]
pub struct Pick<'a> {
    endpoints: &'a [SocketAddr],
    first: usize,
    attempt: usize,
    health: &'a Health,
    now: Instant,
}

impl<'a> Pick<'a> {
    /// The walk over `endpoints` from index `first`, filtered by `health` as
    /// of `now`.
    pub fn new(
        endpoints: &'a [SocketAddr],
        first: usize,
        health: &'a Health,
        now: Instant,
    ) -> Self {
        Self {
            endpoints,
            first,
            attempt: 0,
            health,
            now,
        }
    }

    /// The health records the walk filters by (and a connect along it
    /// updates).
    pub fn health(&self) -> &'a Health {
        self.health
    }
}

impl Iterator for Pick<'_> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        let n = self.endpoints.len();
        while self.attempt < n {
            let addr = self.endpoints[(self.first + self.attempt) % n];
            self.attempt += 1;
            if !self.health.is_down(addr, self.now) {
                return Some(addr);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.endpoints.len() - self.attempt))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::table::Cluster;

    fn cluster(name: &str, n: usize) -> Arc<Cluster> {
        Arc::new(Cluster {
            name: Arc::from(name),
            endpoints: (1..=n)
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port as u16)))
                .collect(),
            connect_timeout: Duration::from_secs(1),
            pool: crate::table::route::PoolSettings {
                max_idle: 1,
                idle_timeout: Duration::from_secs(1),
            },
        })
    }

    fn table(generation: u64, clusters: Vec<Arc<Cluster>>) -> Table {
        Table {
            generation,
            listeners: vec![],
            clusters,
        }
    }

    #[test]
    fn walks_every_endpoint_in_turn() {
        let table = table(1, vec![cluster("c", 3)]);
        let balancer = Balancer::new(&table, 1);
        let picks: Vec<usize> = (0..6).map(|_| balancer.first(ClusterId(0), 3)).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn a_new_table_carries_on_where_the_old_one_left_off() {
        let old = table(1, vec![cluster("a", 3), cluster("b", 3)]);
        let balancer = Balancer::new(&old, 0);
        assert_eq!(balancer.first(ClusterId(0), 3), 0);
        assert_eq!(balancer.first(ClusterId(1), 3), 0);
        // `a` keeps its place with a new endpoint list; the cluster now at
        // position 1 is another one and starts afresh.
        let new = table(2, vec![cluster("a", 4), cluster("c", 3)]);
        let balancer = Balancer::follow(&balancer, &old, &new, 0);
        let picks: Vec<usize> = (0..4).map(|_| balancer.first(ClusterId(0), 4)).collect();
        assert_eq!(picks, vec![1, 2, 3, 0]);
        assert_eq!(balancer.first(ClusterId(1), 3), 0);
    }

    #[test]
    fn a_pick_fails_over_in_turn_and_skips_endpoints_held_out() {
        let c = cluster("c", 4);
        let health = Health::default();
        let now = Instant::now();
        let order: Vec<SocketAddr> = Pick::new(&c.endpoints, 2, &health, now).collect();
        let expected: Vec<SocketAddr> = [2, 3, 0, 1].iter().map(|&i| c.endpoints[i]).collect();
        assert_eq!(order, expected);

        health.mark_down(c.endpoints[2], now);
        health.mark_down(c.endpoints[0], now);
        let order: Vec<SocketAddr> = Pick::new(&c.endpoints, 2, &health, now).collect();
        assert_eq!(order, vec![c.endpoints[3], c.endpoints[1]]);
    }

    #[test]
    fn a_pick_reads_health_as_it_walks() {
        let c = cluster("c", 3);
        let health = Health::default();
        let now = Instant::now();
        let mut pick = Pick::new(&c.endpoints, 0, &health, now);
        assert_eq!(pick.next(), Some(c.endpoints[0]));
        // Another connection of the worker found endpoint 1 dead meanwhile.
        health.mark_down(c.endpoints[1], now);
        assert_eq!(pick.next(), Some(c.endpoints[2]));
        assert_eq!(pick.next(), None);
    }

    #[test]
    fn every_endpoint_held_out_yields_nothing() {
        let c = cluster("c", 2);
        let health = Health::default();
        let now = Instant::now();
        for &addr in &c.endpoints {
            health.mark_down(addr, now);
        }
        assert_eq!(Pick::new(&c.endpoints, 1, &health, now).next(), None);
    }
}
