//! A worker's view of the table it runs.

use std::rc::Rc;
use std::sync::Arc;

use super::Table;
use crate::upstream::balance::RoundRobin;

/// One table as one worker runs it: the shared snapshot and the worker's own
/// state for it (its round-robin cursors).
#[derive(Debug)]
pub struct LocalTable {
    /// The snapshot every worker shares.
    pub table: Arc<Table>,
    /// This worker's balancer cursors for `table`.
    pub balancer: RoundRobin,
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
    /// A handle that starts on `table`; `seed` spreads the workers' first
    /// picks of each cluster (see [`RoundRobin::new`]).
    pub fn new(table: Arc<Table>, seed: usize) -> Self {
        Self {
            current: Rc::new(LocalTable {
                balancer: RoundRobin::new(&table, seed),
                table,
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
    /// was adopted.
    pub fn adopt(&mut self, table: Arc<Table>, seed: usize) -> bool {
        if table.generation <= self.generation() {
            return false;
        }
        let current = &self.current;
        let balancer = RoundRobin::follow(&current.balancer, &current.table, &table, seed);
        self.current = Rc::new(LocalTable { table, balancer });
        true
    }
}
