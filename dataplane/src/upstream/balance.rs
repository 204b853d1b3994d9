//! Load balancing across a cluster's endpoints.

use std::cell::Cell;

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
            })],
        };
        let rr = RoundRobin::new(&table, 1);
        let picks: Vec<usize> = (0..6).map(|_| rr.next(0, 3)).collect();
        assert_eq!(picks, vec![1, 2, 0, 1, 2, 0]);
    }
}
