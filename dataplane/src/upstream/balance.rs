//! Load balancing across a cluster's endpoints.

use std::cell::Cell;
use std::sync::Arc;

use crate::table::Table;

/// Per-worker round-robin cursors, one per cluster of a table.
///
/// Each worker keeps its own cursors, so workers never contend; across
/// workers the spread is still even because each walks every endpoint in
/// turn.
#[derive(Debug)]
pub struct RoundRobin {
    generation: u64,
    cursors: Vec<Cell<usize>>,
}

impl RoundRobin {
    /// Cursors for every cluster of `table`, starting at `seed` (workers use
    /// their index so that they do not all start on the same endpoint).
    pub fn new(table: &Table, seed: usize) -> Self {
        Self {
            generation: table.generation,
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
    pub fn follow(
        previous: &RoundRobin,
        previous_table: &Table,
        table: &Table,
        seed: usize,
    ) -> Self {
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

    /// The table generation these cursors were built for.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The endpoint index to try first for cluster `cluster`, which has
    /// `len` endpoints; advances the cursor.
    pub fn next(&self, cluster: usize, len: usize) -> usize {
        let cursor = &self.cursors[cluster];
        let i = cursor.get() % len.max(1);
        cursor.set(i + 1);
        i
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::table::Cluster;

    #[test]
    fn walks_every_endpoint_in_turn() {
        let table = Table {
            generation: 1,
            listeners: vec![],
            clusters: vec![Arc::new(Cluster {
                name: Arc::from("c"),
                endpoints: vec!["127.0.0.1:1".parse().unwrap(); 3],
                connect_timeout: Duration::from_secs(1),
                pool: crate::table::route::PoolSettings {
                    max_idle: 1,
                    idle_timeout: Duration::from_secs(1),
                },
            })],
        };
        let rr = RoundRobin::new(&table, 1);
        let picks: Vec<usize> = (0..6).map(|_| rr.next(0, 3)).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn a_new_table_carries_on_where_the_old_one_left_off() {
        let cluster = |name: &str, n: usize| {
            Arc::new(Cluster {
                name: Arc::from(name),
                endpoints: vec!["127.0.0.1:1".parse().unwrap(); n],
                connect_timeout: Duration::from_secs(1),
                pool: crate::table::route::PoolSettings {
                    max_idle: 1,
                    idle_timeout: Duration::from_secs(1),
                },
            })
        };
        let old = Table {
            generation: 1,
            listeners: vec![],
            clusters: vec![cluster("a", 3), cluster("b", 3)],
        };
        let rr = RoundRobin::new(&old, 0);
        assert_eq!(rr.next(0, 3), 0);
        assert_eq!(rr.next(1, 3), 0);
        // `a` keeps its place with a new endpoint list; the cluster now at
        // position 1 is another one and starts afresh.
        let new = Table {
            generation: 2,
            listeners: vec![],
            clusters: vec![cluster("a", 4), cluster("c", 3)],
        };
        let rr = RoundRobin::follow(&rr, &old, &new, 0);
        let picks: Vec<usize> = (0..4).map(|_| rr.next(0, 4)).collect();
        assert_eq!(picks, vec![1, 2, 3, 0]);
        assert_eq!(rr.next(1, 3), 0);
    }
}
