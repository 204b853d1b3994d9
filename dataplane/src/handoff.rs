//! A lock-free slot through which the control agent hands a worker its
//! newest table.

use std::fmt;
use std::sync::Arc;

use crossbeam::atomic::AtomicCell;

/// A single-slot mailbox holding at most one `Arc<T>`: the newest value the
/// publisher put and the consumer has not taken yet.
///
/// Both operations are one atomic swap of a pointer-sized word
/// ([`Handoff::is_lock_free`] says so for the target), so neither side ever
/// waits for the other. Ownership moves with the swap: `put` receives the
/// value it displaced (never taken, so nobody else can be using it through
/// this slot) and `take` receives the value it removed. No pointer is read
/// without being removed, so nothing can be freed under a reader.
///
/// The latest value wins: when the publisher puts twice before the consumer
/// takes, the consumer gets only the second, and the first is dropped by the
/// publisher.
pub struct Handoff<T> {
    slot: AtomicCell<Option<Arc<T>>>,
}

impl<T> Handoff<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self {
            slot: AtomicCell::new(None),
        }
    }

    /// Whether `put` and `take` compile to lock-free atomics on this target.
    #[cfg(test)]
    pub fn is_lock_free() -> bool {
        AtomicCell::<Option<Arc<T>>>::is_lock_free()
    }

    /// Puts `value` in the slot and returns what it displaced, if the
    /// consumer had not taken it.
    pub fn put(&self, value: Arc<T>) -> Option<Arc<T>> {
        self.slot.swap(Some(value))
    }

    /// Takes the newest value, if one was put since the last take.
    pub fn take(&self) -> Option<Arc<T>> {
        self.slot.take()
    }
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Handoff<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handoff").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
