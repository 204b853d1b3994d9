//! A cluster's circuit breakers: node-wide limits on what the cluster may
//! have at once, refused at the limit rather than queued.
//!
//! The counts are atomics shared by every worker, so a limit holds for the
//! node, not per worker: splitting a limit into per-worker shares would
//! refuse requests on a busy worker while others had room, and a breaker
//! exists to protect the upstream's capacity, which is the node's total.
//! They exist only for clusters with a limit set, so a cluster without one
//! pays nothing; with one, each request adds an atomic increment and
//! decrement on a line the workers share. The counts outlive table
//! generations (a reload carries them over by cluster name), so requests and
//! connections begun under the old table are still counted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// The limits, as configured (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Upstream connections open at once (HTTP: in use and idle in the
    /// pools; TCP: relayed connections).
    pub max_connections: Option<u32>,
    /// HTTP requests waiting for an upstream connection (connecting) at
    /// once.
    pub max_pending_requests: Option<u32>,
    /// HTTP requests in flight at once.
    pub max_requests: Option<u32>,
    /// HTTP retries in flight at once.
    pub max_retries: Option<u32>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_connections.is_some()
            || self.max_pending_requests.is_some()
            || self.max_requests.is_some()
            || self.max_retries.is_some()
    }
}

/// What is open now, node-wide.
#[derive(Debug, Default)]
pub struct Counts {
    connections: AtomicU32,
    pending: AtomicU32,
    requests: AtomicU32,
    retries: AtomicU32,
}

/// A cluster's breakers: its limits and the shared counts.
#[derive(Debug, Clone)]
pub struct Breaker {
    /// The limits.
    pub limits: Limits,
    counts: Arc<Counts>,
}

/// Which count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `max_connections`.
    Connection,
    /// `max_pending_requests`.
    Pending,
    /// `max_requests`.
    Request,
    /// `max_retries`.
    Retry,
}

impl Kind {
    /// The configuration key of its limit.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Connection => "max_connections",
            Kind::Pending => "max_pending_requests",
            Kind::Request => "max_requests",
            Kind::Retry => "max_retries",
        }
    }
}

impl Breaker {
    /// Breakers with `limits`, carrying on the counts of `previous` (the
    /// same cluster in the running table) when there is one.
    pub fn new(limits: Limits, previous: Option<&Breaker>) -> Self {
        Self {
            limits,
            counts: previous.map_or_else(Arc::default, |p| Arc::clone(&p.counts)),
        }
    }

    fn cell(&self, kind: Kind) -> (&AtomicU32, Option<u32>) {
        match kind {
            Kind::Connection => (&self.counts.connections, self.limits.max_connections),
            Kind::Pending => (&self.counts.pending, self.limits.max_pending_requests),
            Kind::Request => (&self.counts.requests, self.limits.max_requests),
            Kind::Retry => (&self.counts.retries, self.limits.max_retries),
        }
    }

    /// Takes one place of `kind`, or `None` at the limit. Never admits more
    /// than the limit at once: a place is taken first and given back if it
    /// was one too many.
    pub fn enter(&self, kind: Kind) -> Option<Slot<'_>> {
        let (cell, limit) = self.cell(kind);
        let before = cell.fetch_add(1, Ordering::Relaxed);
        if limit.is_some_and(|max| before >= max) {
            cell.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Slot { cell })
    }

    /// Like [`Breaker::enter`], for a place held past the table that granted
    /// it (an upstream connection kept in a pool).
    pub fn enter_owned(&self, kind: Kind) -> Option<OwnedSlot> {
        let slot = self.enter(kind)?;
        std::mem::forget(slot);
        Some(OwnedSlot {
            counts: Arc::clone(&self.counts),
            kind,
        })
    }

    /// How many of `kind` are open now.
    pub fn open(&self, kind: Kind) -> u32 {
        self.cell(kind).0.load(Ordering::Relaxed)
    }
}

/// A place taken; given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    cell: &'a AtomicU32,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.cell.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A place taken that owns its count; given back when dropped.
#[derive(Debug)]
pub struct OwnedSlot {
    counts: Arc<Counts>,
    kind: Kind,
}

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        let cell = match self.kind {
            Kind::Connection => &self.counts.connections,
            Kind::Pending => &self.counts.pending,
            Kind::Request => &self.counts.requests,
            Kind::Retry => &self.counts.retries,
        };
        cell.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_admits_that_many_at_once_and_frees_on_drop() {
        let b = Breaker::new(
            Limits {
                max_requests: Some(2),
                ..Limits::default()
            },
            None,
        );
        let one = b.enter(Kind::Request).expect("first");
        let two = b.enter(Kind::Request).expect("second");
        assert!(b.enter(Kind::Request).is_none());
        assert_eq!(b.open(Kind::Request), 2);
        drop(one);
        let three = b.enter(Kind::Request).expect("a place came free");
        drop((two, three));
        assert_eq!(b.open(Kind::Request), 0);
        // No limit on connections: counted, never refused.
        let many: Vec<_> = (0..100)
            .map(|_| b.enter(Kind::Connection).unwrap())
            .collect();
        assert_eq!(b.open(Kind::Connection), 100);
        drop(many);
    }

    #[test]
    fn counts_carry_over_to_the_next_generation() {
        let old = Breaker::new(
            Limits {
                max_connections: Some(1),
                ..Limits::default()
            },
            None,
        );
        let held = old.enter_owned(Kind::Connection).expect("room");
        let new = Breaker::new(
            Limits {
                max_connections: Some(1),
                ..Limits::default()
            },
            Some(&old),
        );
        assert!(
            new.enter(Kind::Connection).is_none(),
            "the old table's connection counts"
        );
        drop(held);
        assert!(new.enter(Kind::Connection).is_some());
    }
}
