//! How many client connections the workers take: `runtime.max_connections`
//! when it is set, else what the open-file limit leaves once ringway's own
//! descriptors and a reserve are set aside, at two descriptors per client
//! connection (the client's socket and one upstream socket).
//!
//! Why a cap at all: without one, a crowd of clients takes every descriptor,
//! and then the upstream connect for a request already accepted fails, the
//! admin API cannot accept, and the accept loop finds nothing to accept
//! with. With it, a worker holding its share closes new connections at once
//! (a reset, at accept), so what it has accepted can still be served and
//! the admin API still answers.
//!
//! To turn a connection away the worker must accept it first, and the
//! kernel creates its descriptor then: the descriptors of connections
//! accepted but not yet looked at are bounded by the accepts a worker keeps
//! in flight (one per listener and `listeners::SPARE_ACCEPTS`), and set
//! aside here.

use std::fmt;

use super::listeners::SPARE_ACCEPTS;

/// Descriptors a worker opens for itself besides listeners and connections:
/// its ring, its control eventfd and its end of the acknowledgement pipe.
const WORKER_FILES: u64 = 3;
/// Descriptors a worker holds per listener: its socket, and the connection
/// its armed accept may have taken from the backlog before the worker
/// looks at it.
const LISTENER_FILES: u64 = 2;
/// Descriptors no client connection may take, as a fraction of the limit
/// (1/8) kept between these bounds: for the admin API's connections, a
/// reload's new listeners and files, and idle pooled upstream connections
/// beyond the one per client counted. At the small end it leaves a 64-file
/// process room to serve; at the large end, 1,024 is plenty for all of that.
const RESERVE_MIN: u64 = 16;
/// See [`RESERVE_MIN`].
const RESERVE_MAX: u64 = 1024;
/// Descriptors per client connection: its own and one upstream connection
/// (a TCP connection always has one; an HTTP one while a request is out,
/// which may be any time).
const FILES_PER_CONNECTION: u64 = 2;
/// Descriptors assumed open at start-up when `/proc/self/fd` cannot be read.
const IN_USE_GUESS: u64 = 64;

/// The client connections the workers take, and where the figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// Client connections over all workers.
    pub total: usize,
    /// Each worker's share: a worker holding this many closes new ones.
    pub per_worker: usize,
    /// The soft open-file limit, if it could be read.
    pub open_files: Option<u64>,
    /// Whether `total` is `runtime.max_connections` (else it was derived).
    pub configured: bool,
    /// Descriptors ringway holds besides its connections, the workers' own
    /// included (with the connections their accepts in flight may hold).
    pub in_use: u64,
    /// Descriptors kept free of client connections.
    pub reserve: u64,
}

impl ConnectionBudget {
    /// The budget of `workers` workers serving `listeners` listeners, with
    /// `configured` client connections if `runtime.max_connections` is set;
    /// reads the open-file limit and the descriptors open now (call it
    /// before the workers start).
    pub fn plan(configured: Option<usize>, workers: usize, listeners: usize) -> Self {
        let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft);
        let open_now = open_descriptors().unwrap_or(IN_USE_GUESS);
        Self::from_parts(
            configured,
            workers,
            open_files,
            open_now.saturating_add(workers_own(workers, listeners)),
        )
    }

    fn from_parts(
        configured: Option<usize>,
        workers: usize,
        open_files: Option<u64>,
        in_use: u64,
    ) -> Self {
        let workers = workers.max(1);
        let reserve = open_files.map_or(0, |limit| (limit / 8).clamp(RESERVE_MIN, RESERVE_MAX));
        let total = match (configured, open_files) {
            (Some(n), _) => n,
            (None, Some(limit)) => {
                let spare = limit.saturating_sub(in_use).saturating_sub(reserve);
                usize::try_from(spare / FILES_PER_CONNECTION).unwrap_or(usize::MAX)
            }
            (None, None) => usize::MAX,
        }
        .max(workers);
        Self {
            total,
            per_worker: (total / workers).max(1),
            open_files,
            configured: configured.is_some(),
            in_use,
            reserve,
        }
    }

    /// A warning when `runtime.max_connections` lets clients take more
    /// descriptors than the open-file limit leaves for them.
    pub fn warning(&self) -> Option<String> {
        let limit = self.open_files?;
        let needed = (self.total as u64)
            .saturating_mul(FILES_PER_CONNECTION)
            .saturating_add(self.in_use)
            .saturating_add(self.reserve);
        (self.configured && needed > limit).then(|| {
            format!(
                "runtime.max_connections = {} may need {needed} open files ({FILES_PER_CONNECTION} \
                 per connection, {} held by ringway, {} in reserve) but the limit is {limit}: \
                 clients may take the descriptors upstream connects and the admin API need",
                self.total, self.in_use, self.reserve
            )
        })
    }
}

impl fmt::Display for ConnectionBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == usize::MAX {
            return write!(
                f,
                "no cap on client connections (the open-file limit is unknown)"
            );
        }
        write!(
            f,
            "up to {} client connections at once ({} per worker)",
            self.total, self.per_worker
        )?;
        match (self.configured, self.open_files) {
            (true, _) => write!(f, ", runtime.max_connections"),
            (false, Some(limit)) => write!(
                f,
                ", from an open-file limit of {limit} ({FILES_PER_CONNECTION} per connection, \
                 {} held by ringway, {} in reserve)",
                self.in_use, self.reserve
            ),
            (false, None) => Ok(()),
        }
    }
}

/// The descriptors `workers` workers serving `listeners` listeners hold
/// besides their connections: their own files, their listeners, and what
/// their accepts in flight may have accepted before the workers look.
fn workers_own(workers: usize, listeners: usize) -> u64 {
    let each = (listeners as u64)
        .saturating_mul(LISTENER_FILES)
        .saturating_add(WORKER_FILES + SPARE_ACCEPTS as u64);
    (workers as u64).saturating_mul(each)
}

/// How many descriptors this process has open (Linux: the entries of
/// `/proc/self/fd`, less the one reading it).
fn open_descriptors() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(entries.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_from_the_limit_at_two_files_per_connection() {
        // 64 files: 21 held, 16 in reserve, 27 left: 13 connections.
        let b = ConnectionBudget::from_parts(None, 1, Some(64), 21);
        assert_eq!((b.total, b.per_worker, b.reserve), (13, 13, 16));
        // A common hard limit: the reserve stops at 1,024.
        let b = ConnectionBudget::from_parts(None, 2, Some(1 << 20), 40);
        assert_eq!(b.reserve, 1024);
        assert_eq!(b.total, ((1 << 20) - 40 - 1024) / 2);
        assert_eq!(b.per_worker, b.total / 2);
        assert!(!b.configured);
    }

    #[test]
    fn every_worker_gets_at_least_one() {
        let b = ConnectionBudget::from_parts(None, 4, Some(32), 40);
        assert_eq!((b.total, b.per_worker), (4, 1));
        let b = ConnectionBudget::from_parts(Some(1), 2, Some(1024), 30);
        assert_eq!((b.total, b.per_worker), (2, 1));
    }

    #[test]
    fn a_configured_total_is_split_and_checked_against_the_limit() {
        let b = ConnectionBudget::from_parts(Some(10_000), 2, Some(30_000), 30);
        assert_eq!((b.total, b.per_worker), (10_000, 5_000));
        assert!(b.configured);
        assert_eq!(b.warning(), None);
        let b = ConnectionBudget::from_parts(Some(10_000), 2, Some(15_000), 30);
        let warning = b.warning().expect("too many for 15,000 files");
        assert!(warning.contains("the limit is 15000"), "{warning}");
        assert!(ConnectionBudget::from_parts(None, 1, Some(64), 21)
            .warning()
            .is_none());
    }

    #[test]
    fn accepts_in_flight_are_set_aside() {
        // Per worker: ring, eventfd, ack pipe; per listener its socket and
        // the connection its armed accept may hold; the spare accepts.
        assert_eq!(workers_own(1, 1), 3 + 2 + 16);
        assert_eq!(workers_own(2, 3), 2 * (3 + 6 + 16));
    }

    #[test]
    fn no_cap_when_the_limit_is_unknown() {
        let b = ConnectionBudget::from_parts(None, 2, None, 30);
        assert_eq!(b.total, usize::MAX);
        assert!(b.to_string().starts_with("no cap"), "{b}");
    }
}
