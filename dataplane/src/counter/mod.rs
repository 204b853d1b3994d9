//! A counter written by one thread and read by any, and the vocabulary
//! every per-worker counter is declared in ([`vocabulary`]).

pub mod vocabulary;

pub(crate) use self::vocabulary::counters;

use std::sync::atomic::{AtomicU64, Ordering};

/// A `u64` that only its owning thread writes and any thread may read.
///
/// Writes are a relaxed load and store, not a read-modify-write: with a
/// single writer no increment can be lost, and on x86-64 both compile to a
/// plain `mov` (no `lock` prefix, no bus traffic). A reader on another core
/// sees a value that may be a few increments old, never a torn one. This is
/// what lets the control agent read a worker's counters while the worker
/// forwards, with no lock and no shared write.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (wrapping). Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n`, stopping at 0. Only the owning thread may call this.
    #[inline]
    pub fn sub(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.saturating_sub(n), Ordering::Relaxed);
    }

    /// Stores `v` (a gauge). Only the owning thread may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The value now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
