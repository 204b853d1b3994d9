//! A worker's view of the current table.

use std::sync::Arc;

use super::Table;

/// The table a worker currently runs.
///
/// Each worker owns one handle. Connections clone the `Arc` they started with
/// so that work in flight finishes on its own generation while the handle
/// moves on; the old table is freed when its last connection ends.
#[derive(Debug)]
pub struct TableHandle {
    current: Arc<Table>,
}

impl TableHandle {
    /// A handle that starts on `table`.
    pub fn new(table: Arc<Table>) -> Self {
        Self { current: table }
    }

    /// The table new connections should use.
    pub fn current(&self) -> &Arc<Table> {
        &self.current
    }

    /// Adopt `table` if it is newer than the one running; returns whether it
    /// was adopted.
    pub fn adopt(&mut self, table: Arc<Table>) -> bool {
        if table.generation > self.current.generation {
            self.current = table;
            true
        } else {
            false
        }
    }
}
