//! Load balancing across a cluster's endpoints: the order in which a
//! connection tries them.
//!
//! A [`Balancer`] chooses the endpoint to try first, by the cluster's
//! policy ([`crate::table::lb::Policy`]); a [`Pick`] walks the cluster from
//! there, skipping endpoints the worker holds out ([`Health`]). The
//! balancer's state is this worker's own: round-robin cursors, a random
//! number generator for the two draws of least-request and peak-EWMA, and
//! the load records those two read ([`super::load`]). What is shared (the
//! weighted cycle, the hash ring, the Maglev table) comes built in the
//! table.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::health::Health;
use super::load::{Load, Loads};
use crate::random::Random;
use crate::table::checks::Verdicts;
use crate::table::lb::Policy;
use crate::table::{Cluster, ClusterId, Table};

/// A worker's balancing state for one table.
///
/// Each worker keeps its own cursors, so workers never contend; across
/// workers the spread is still even because each walks every endpoint in
/// turn.
#[derive(Debug)]
pub struct Balancer {
    cursors: Vec<Cell<usize>>,
    /// Per cluster, the load records of its endpoints by index; empty for
    /// a cluster whose policy does not read load (and empty altogether
    /// when no cluster's does).
    loads: Vec<Box<[Rc<Load>]>>,
    rng: Random,
}

impl Balancer {
    /// Cursors for every cluster of `table`, starting at `seed` (workers use
    /// their index so that they do not all start on the same endpoint), and
    /// the load records of the clusters that read load, from `loads`.
    pub fn new(table: &Table, seed: usize, loads: &Loads) -> Self {
        let tracked = table
            .clusters
            .iter()
            .any(|c| c.balance.policy.tracks_load());
        Self {
            cursors: table
                .clusters
                .iter()
                .map(|c| Cell::new(seed % c.endpoints.len().max(1)))
                .collect(),
            loads: if tracked {
                table
                    .clusters
                    .iter()
                    .map(|c| {
                        if c.balance.policy.tracks_load() {
                            c.endpoints.iter().map(|&a| loads.of(a)).collect()
                        } else {
                            Box::default()
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            },
            // Different per worker.
            rng: Random::new(0x2545_f491_4f6c_dd1d ^ (seed as u64).wrapping_mul(0x9e37_79b9)),
        }
    }

    /// Cursors for `table` that carry on where `previous` (built for
    /// `previous_table`) left off, for every cluster at the same position
    /// under the same name; the others start at `seed`. Without this, a
    /// worker that adopts tables often (endpoint updates many times a
    /// second) would restart every cluster at the same endpoint and send it
    /// nearly all the traffic. Load records are kept by endpoint address in
    /// `loads`, so they carry over by themselves.
    pub fn follow(
        previous: &Balancer,
        previous_table: &Table,
        table: &Table,
        seed: usize,
        loads: &Loads,
    ) -> Self {
        let mut next = Self::new(table, seed, loads);
        for (i, cluster) in table.clusters.iter().enumerate() {
            let same = previous_table
                .clusters
                .get(i)
                .is_some_and(|old| Arc::ptr_eq(old, cluster) || old.name == cluster.name);
            if let (true, Some(cursor)) = (same, previous.cursors.get(i)) {
                next.cursors[i].set(cursor.get());
            }
        }
        next.rng = previous.rng.carry_on();
        next
    }

    /// The endpoint index to try first for `cluster` (id `id`), by its
    /// policy; `key` is the request's hash key for a hashing policy (none:
    /// round robin instead). A round-robin cursor that falls on an endpoint
    /// held out or ejected moves on to the next endpoint that is not, so
    /// the turns of an endpoint that is out are shared by all the others
    /// rather than all given to the one after it.
    pub fn first(
        &self,
        id: ClusterId,
        cluster: &Cluster,
        key: Option<u64>,
        health: &Health,
        now: Instant,
    ) -> usize {
        let n = cluster.endpoints.len();
        let balance = &cluster.balance;
        match &balance.policy {
            Policy::RingHash(_) | Policy::Maglev(_) => {
                if let Some(owner) = key.and_then(|k| balance.owner(k)) {
                    return owner;
                }
                self.next_up(id, cluster, health, now)
            }
            Policy::LeastRequest | Policy::PeakEwma(_) if n > 1 => {
                let loads = &self.loads[id.0 as usize];
                let a = self.rng.below(n);
                let b = (a + 1 + self.rng.below(n - 1)) % n;
                let (da, db) = (
                    health.is_down(cluster.endpoints[a], now),
                    health.is_down(cluster.endpoints[b], now),
                );
                if da != db {
                    return if da { b } else { a };
                }
                let score = |i: usize| -> f64 {
                    let load = &loads[i];
                    let raw = match &balance.policy {
                        Policy::PeakEwma(ewma) => load.cost(ewma, now),
                        _ => f64::from(load.in_flight()),
                    };
                    raw / f64::from(balance.weight(i))
                };
                if score(b) < score(a) {
                    b
                } else {
                    a
                }
            }
            Policy::WeightedRoundRobin => match balance.cycle() {
                Some(cycle) => {
                    let cursor = &self.cursors[id.0 as usize];
                    let at = cursor.get() % cycle.len();
                    cursor.set(at + 1);
                    cycle[at] as usize
                }
                None => self.next_in_turn(id, n),
            },
            _ => self.next_up(id, cluster, health, now),
        }
    }

    /// The next endpoint in turn that is not held out or ejected (the
    /// plain next one when all are).
    fn next_up(&self, id: ClusterId, cluster: &Cluster, health: &Health, now: Instant) -> usize {
        let n = cluster.endpoints.len();
        let first = self.next_in_turn(id, n);
        if n == 1 || !health.is_down(cluster.endpoints[first], now) {
            return first;
        }
        for _ in 1..n {
            let i = self.next_in_turn(id, n);
            if !health.is_down(cluster.endpoints[i], now) {
                return i;
            }
        }
        // None is up: the turns go on from `first` as if none had been
        // skipped.
        self.cursors[id.0 as usize].set(first + 1);
        first
    }

    /// The load record of endpoint `i` of cluster `id`, if its policy
    /// reads load.
    pub fn load(&self, id: ClusterId, i: usize) -> Option<&Rc<Load>> {
        self.loads.get(id.0 as usize)?.get(i)
    }

    fn next_in_turn(&self, id: ClusterId, n: usize) -> usize {
        let cursor = &self.cursors[id.0 as usize];
        let i = cursor.get() % n.max(1);
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
    /// The cluster's active check verdicts, if it has checks.
    checks: Option<&'a Verdicts>,
    /// Endpoints a retry should not go back to: walked only after every
    /// other one.
    avoid: &'a [SocketAddr],
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
            checks: None,
            avoid: &[],
        }
    }

    /// The same walk, taking the endpoints in `avoid` (those a request
    /// already failed on) only after every other one: a retry goes to
    /// another endpoint when there is one.
    pub fn avoiding(mut self, avoid: &'a [SocketAddr]) -> Self {
        self.avoid = avoid;
        self
    }

    /// The same walk, also skipping endpoints that fail the cluster's
    /// active checks (unless every endpoint does).
    pub fn checked(mut self, checks: Option<&'a Verdicts>) -> Self {
        self.checks = checks;
        self
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
        // With endpoints to avoid, two rounds: the others, then those.
        let rounds = if self.avoid.is_empty() { 1 } else { 2 };
        while self.attempt < n * rounds {
            let second = self.attempt >= n;
            let i = (self.first + self.attempt) % n;
            let addr = self.endpoints[i];
            self.attempt += 1;
            if !self.avoid.is_empty() && self.avoid.contains(&addr) != second {
                continue;
            }
            if self.checks.is_none_or(|v| v.admits(i)) && self.health.admit(addr, self.now) {
                return Some(addr);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let rounds = if self.avoid.is_empty() { 1 } else { 2 };
        (
            0,
            Some((self.endpoints.len() * rounds).saturating_sub(self.attempt)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::table::lb::{Balance, Ewma, HashOn};
    use crate::upstream::load::InFlight;

    fn cluster(name: &str, n: usize) -> Arc<Cluster> {
        Arc::new(Cluster {
            name: Arc::from(name),
            endpoints: (1..=n)
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port as u16)))
                .collect(),
            balance: crate::table::lb::Balance::round_robin(),
            connect_timeout: Duration::from_secs(1),
            pool: crate::table::route::PoolSettings {
                max_idle: 1,
                idle_timeout: Duration::from_secs(1),
            },
            breaker: None,
            outlier: crate::table::outlier::Outlier::default(),
            events: Default::default(),
            checks: None,
            retry: Arc::default(),
            budget: crate::table::retry::Budget::new(Default::default(), 1, None),
            tls: None,
            tally: Arc::new(crate::table::tally::ClusterTally::new(1)),
            endpoint_tallies: Default::default(),
        })
    }

    fn table(generation: u64, clusters: Vec<Arc<Cluster>>) -> Table {
        Table {
            generation,
            listeners: vec![],
            clusters,
        }
    }

    /// The first choice of `balancer` for cluster `id` of `table`, with no
    /// key and nothing held out.
    fn first(balancer: &Balancer, table: &Table, id: u32) -> usize {
        let id = ClusterId(id);
        balancer.first(
            id,
            table.cluster(id),
            None,
            &Health::default(),
            Instant::now(),
        )
    }

    fn with_policy(name: &str, n: usize, policy: Policy, weights: &[u32]) -> Arc<Cluster> {
        let mut c = (*cluster(name, n)).clone();
        c.balance = Balance::new(policy, &c.endpoints, weights);
        Arc::new(c)
    }

    #[test]
    fn walks_every_endpoint_in_turn() {
        let table = table(1, vec![cluster("c", 3)]);
        let balancer = Balancer::new(&table, 1, &Loads::default());
        let picks: Vec<usize> = (0..6).map(|_| first(&balancer, &table, 0)).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn weighted_round_robin_follows_the_cycle() {
        let c = with_policy("w", 3, Policy::WeightedRoundRobin, &[1, 2, 3]);
        let table = table(1, vec![c]);
        let balancer = Balancer::new(&table, 0, &Loads::default());
        let mut counts = [0; 3];
        for _ in 0..60 {
            counts[first(&balancer, &table, 0)] += 1;
        }
        assert_eq!(counts, [10, 20, 30]);
    }

    #[test]
    fn least_request_prefers_the_endpoint_with_fewer_in_flight() {
        let c = with_policy("l", 2, Policy::LeastRequest, &[]);
        let table = table(1, vec![c]);
        let loads = Loads::default();
        let balancer = Balancer::new(&table, 0, &loads);
        let busy = InFlight::start(Rc::clone(balancer.load(ClusterId(0), 0).unwrap()));
        // With two endpoints both are drawn every time: the idle one wins.
        for _ in 0..50 {
            assert_eq!(first(&balancer, &table, 0), 1);
        }
        drop(busy);
        let mut counts = [0; 2];
        for _ in 0..200 {
            counts[first(&balancer, &table, 0)] += 1;
        }
        assert!(
            counts[0] > 50 && counts[1] > 50,
            "ties go either way: {counts:?}"
        );
    }

    #[test]
    fn round_robin_shares_the_turns_of_an_endpoint_that_is_out() {
        let c = cluster("r", 3);
        let table = table(1, vec![Arc::clone(&c)]);
        let balancer = Balancer::new(&table, 0, &Loads::default());
        let health = Health::default();
        let now = Instant::now();
        health.mark_down(c.endpoints[0], now);
        let mut counts = [0; 3];
        for _ in 0..60 {
            counts[balancer.first(ClusterId(0), &c, None, &health, now)] += 1;
        }
        assert_eq!(counts, [0, 30, 30]);
        // Every endpoint out: the turns go on as before.
        health.mark_down(c.endpoints[1], now);
        health.mark_down(c.endpoints[2], now);
        let mut counts = [0; 3];
        for _ in 0..30 {
            counts[balancer.first(ClusterId(0), &c, None, &health, now)] += 1;
        }
        assert_eq!(counts, [10, 10, 10]);
    }

    #[test]
    fn least_request_skips_a_held_out_draw() {
        let c = with_policy("l", 2, Policy::LeastRequest, &[]);
        let table = table(1, vec![Arc::clone(&c)]);
        let balancer = Balancer::new(&table, 0, &Loads::default());
        let health = Health::default();
        let now = Instant::now();
        health.mark_down(c.endpoints[1], now);
        // Endpoint 1 has fewer in flight but is held out.
        let _busy = InFlight::start(Rc::clone(balancer.load(ClusterId(0), 0).unwrap()));
        for _ in 0..20 {
            assert_eq!(balancer.first(ClusterId(0), &c, None, &health, now), 0);
        }
    }

    #[test]
    fn peak_ewma_avoids_the_slow_endpoint() {
        let ewma = Ewma::default();
        let c = with_policy("p", 2, Policy::PeakEwma(ewma), &[]);
        let table = table(1, vec![c]);
        let balancer = Balancer::new(&table, 0, &Loads::default());
        let now = Instant::now();
        let slow = balancer.load(ClusterId(0), 0).unwrap();
        let fast = balancer.load(ClusterId(0), 1).unwrap();
        slow.observe(&ewma, Duration::from_millis(200), now);
        fast.observe(&ewma, Duration::from_millis(2), now);
        for _ in 0..50 {
            assert_eq!(
                balancer.first(
                    ClusterId(0),
                    table.cluster(ClusterId(0)),
                    None,
                    &Health::default(),
                    now
                ),
                1
            );
        }
    }

    #[test]
    fn hashing_sends_a_key_to_one_endpoint_and_no_key_in_turn() {
        let c = with_policy("h", 5, Policy::Maglev(HashOn::ClientAddress), &[]);
        let table = table(1, vec![c]);
        let balancer = Balancer::new(&table, 0, &Loads::default());
        let cluster = table.cluster(ClusterId(0));
        let health = Health::default();
        let now = Instant::now();
        let key = Some(crate::table::lb::hash::stable(b"10.1.2.3"));
        let owner = balancer.first(ClusterId(0), cluster, key, &health, now);
        for _ in 0..20 {
            assert_eq!(
                balancer.first(ClusterId(0), cluster, key, &health, now),
                owner
            );
        }
        let picks: Vec<usize> = (0..5).map(|_| first(&balancer, &table, 0)).collect();
        assert_eq!(picks, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn load_records_carry_over_to_the_next_table() {
        let loads = Loads::default();
        let old = table(1, vec![with_policy("l", 2, Policy::LeastRequest, &[])]);
        let balancer = Balancer::new(&old, 0, &loads);
        let _busy = InFlight::start(Rc::clone(balancer.load(ClusterId(0), 1).unwrap()));
        let new = table(2, vec![with_policy("l", 3, Policy::LeastRequest, &[])]);
        let next = Balancer::follow(&balancer, &old, &new, 0, &loads);
        assert_eq!(next.load(ClusterId(0), 1).unwrap().in_flight(), 1);
        assert_eq!(next.load(ClusterId(0), 2).unwrap().in_flight(), 0);
    }

    #[test]
    fn a_new_table_carries_on_where_the_old_one_left_off() {
        let old = table(1, vec![cluster("a", 3), cluster("b", 3)]);
        let balancer = Balancer::new(&old, 0, &Loads::default());
        assert_eq!(first(&balancer, &old, 0), 0);
        assert_eq!(first(&balancer, &old, 1), 0);
        // `a` keeps its place with a new endpoint list; the cluster now at
        // position 1 is another one and starts afresh.
        let new = table(2, vec![cluster("a", 4), cluster("c", 3)]);
        let balancer = Balancer::follow(&balancer, &old, &new, 0, &Loads::default());
        let picks: Vec<usize> = (0..4).map(|_| first(&balancer, &new, 0)).collect();
        assert_eq!(picks, vec![1, 2, 3, 0]);
        assert_eq!(first(&balancer, &new, 1), 0);
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

    #[test]
    fn a_retry_walks_the_endpoints_it_failed_on_last() {
        let c = cluster("c", 4);
        let health = Health::default();
        let now = Instant::now();
        let tried = [c.endpoints[2], c.endpoints[0]];
        let order: Vec<SocketAddr> = Pick::new(&c.endpoints, 2, &health, now)
            .avoiding(&tried)
            .collect();
        let expected: Vec<SocketAddr> = [3, 1, 2, 0].iter().map(|&i| c.endpoints[i]).collect();
        assert_eq!(order, expected);
        // Every endpoint tried: the walk still offers them, in turn.
        let order: Vec<SocketAddr> = Pick::new(&c.endpoints[..2], 1, &health, now)
            .avoiding(&c.endpoints[..2])
            .collect();
        assert_eq!(order, vec![c.endpoints[1], c.endpoints[0]]);
    }
}
