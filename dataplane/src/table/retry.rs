//! Retry policies (per route, with a cluster default) and each cluster's
//! retry budget.
//!
//! A policy is read-only table data. The budget is the one piece of retry
//! state shared by the workers: each worker counts its requests in cells of
//! its own (one writer per cell, so a request costs a load and a store on a
//! line no other core writes), and a retry, which is rare, sums every
//! worker's cells and takes its place in a shared cell with a
//! compare-and-swap. No lock anywhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;

/// Default `retries`: attempts after the first.
pub const DEFAULT_RETRIES: u32 = 2;
/// Most `retries` a policy may ask for.
pub const MAX_RETRIES: u32 = 5;
/// Default `retry_buffer`: the longest request body kept for a replay.
pub const DEFAULT_RETRY_BUFFER: u32 = 64 * 1024;
/// Largest `retry_buffer`.
pub const MAX_RETRY_BUFFER: u32 = 1 << 20;
/// Default `backoff_base`: the pause before the first retry (at most; see
/// [`RetryPolicy::backoff`]).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
/// Default `backoff_max`: the longest pause between attempts.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_millis(250);
/// The budget's window, in seconds (one cell per second).
pub const WINDOW_SECONDS: u64 = 10;
/// Default `retry_budget.percent`.
pub const DEFAULT_BUDGET_PERCENT: u32 = 20;
/// Default `retry_budget.min_per_second`.
pub const DEFAULT_BUDGET_MIN_PER_SECOND: u32 = 10;

/// What a retry is for: the failure of the attempt before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No byte of the request reached the upstream (the connection failed
    /// as the head was sent): safe for any method.
    Unsent,
    /// The upstream closed or reset the connection, or sent something that
    /// is not a response, before a response head.
    Reset,
    /// No response head within the policy's `per_try_timeout`.
    Timeout,
    /// The upstream answered with a status the policy retries.
    Status,
}

impl Cause {
    /// Every cause, in the order [`RetryCounts::by_cause`] keeps them.
    pub const ALL: [Cause; 4] = [Cause::Unsent, Cause::Reset, Cause::Timeout, Cause::Status];

    /// Its name in `/stats` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Unsent => "unsent",
            Cause::Reset => "reset",
            Cause::Timeout => "timeout",
            Cause::Status => "status",
        }
    }
}

/// The failures `retry_on` names, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn(u8);

impl RetryOn {
    /// `5xx`: any 5xx answer, a reset, no answer within the per-try timeout.
    pub const FIVE_XX: RetryOn = RetryOn(1);
    /// `gateway_error`: a 502, 503 or 504, a reset, no answer within the
    /// per-try timeout.
    pub const GATEWAY_ERROR: RetryOn = RetryOn(2);
    /// `reset`: a reset (or a broken response) before the response head.
    pub const RESET: RetryOn = RetryOn(4);
    /// `timeout`: no answer within the per-try timeout.
    pub const TIMEOUT: RetryOn = RetryOn(8);
    /// Every condition with its configuration name.
    pub const NAMES: [(RetryOn, &'static str); 4] = [
        (RetryOn::FIVE_XX, "5xx"),
        (RetryOn::GATEWAY_ERROR, "gateway_error"),
        (RetryOn::RESET, "reset"),
        (RetryOn::TIMEOUT, "timeout"),
    ];

    /// The condition named `name`, if there is one.
    pub fn named(name: &str) -> Option<RetryOn> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|&(on, _)| on)
    }

    /// The union of both sets.
    pub fn with(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// Whether any condition of `other` is in the set.
    pub fn any(self, other: RetryOn) -> bool {
        self.0 & other.0 != 0
    }

    /// The names in the set, in [`RetryOn::NAMES`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .filter(move |(on, _)| self.any(*on))
            .map(|&(_, n)| n)
    }
}

/// When and how a request is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first (0: none, not even the safe ones).
    pub retries: u32,
    /// The failures retried for idempotent methods (and for any method
    /// with `non_idempotent`); a request that never reached the upstream
    /// is retried whatever this says.
    pub on: RetryOn,
    /// Statuses retried besides those `on` names.
    pub statuses: Box<[u16]>,
    /// How long each attempt may wait for its response head once the
    /// whole request went (`None`: only the exchange's own deadline).
    pub per_try_timeout: Option<Duration>,
    /// `retry_non_idempotent`: `on` also applies to POST, PATCH and other
    /// methods that are not idempotent.
    pub non_idempotent: bool,
    /// The longest request body kept to be sent again.
    pub buffer: u32,
    /// The longest pause before the first retry; it doubles per retry.
    pub backoff_base: Duration,
    /// The longest pause before any retry.
    pub backoff_max: Duration,
    /// A request that arrives marked by an earlier ringway that retries it
    /// (`x-ringway-attempt`) is not retried here for what `on` names:
    /// that hop retries, and two hops retrying would multiply attempts.
    pub leave_to_earlier_hop: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            on: RetryOn::RESET,
            statuses: Box::new([]),
            per_try_timeout: None,
            non_idempotent: false,
            buffer: DEFAULT_RETRY_BUFFER,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            leave_to_earlier_hop: false,
        }
    }
}

impl RetryPolicy {
    /// Whether a response of `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.on.any(RetryOn::FIVE_XX) && (500..=599).contains(&status))
            || (self.on.any(RetryOn::GATEWAY_ERROR) && (502..=504).contains(&status))
            || self.statuses.contains(&status)
    }

    /// Whether a failure of `cause` (other than a status) is retried.
    pub fn retries_failure(&self, cause: Cause) -> bool {
        let broad = RetryOn::FIVE_XX.with(RetryOn::GATEWAY_ERROR);
        match cause {
            Cause::Unsent => true,
            Cause::Reset => self.on.any(broad.with(RetryOn::RESET)),
            Cause::Timeout => self.on.any(broad.with(RetryOn::TIMEOUT)),
            Cause::Status => false,
        }
    }

    /// Whether anything beyond the always-safe retries is configured, so
    /// that a request may be retried after it reached the upstream.
    pub fn retries_after_sending(&self) -> bool {
        self.retries > 0 && (self.on != RetryOn::default() || !self.statuses.is_empty())
    }

    /// The pause before retry number `n` (from 1): the cap doubles from
    /// `backoff_base` per retry up to `backoff_max`, and the pause is drawn
    /// between half the cap and the cap from `random`, so that the retries
    /// of requests that failed together do not arrive together.
    pub fn backoff(&self, n: u32, random: u64) -> Duration {
        let doubling = 1u32 << n.saturating_sub(1).min(16);
        let cap = self
            .backoff_base
            .saturating_mul(doubling)
            .min(self.backoff_max);
        let half = cap / 2;
        let span = (cap - half).as_micros() as u64;
        half + Duration::from_micros(if span == 0 { 0 } else { random % (span + 1) })
    }
}

/// `retry_budget`: retries may be at most `percent` of the requests plus
/// `min_per_second` per second, over the last [`WINDOW_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    /// Retries allowed per 100 requests.
    pub percent: u32,
    /// Retries allowed per second whatever the requests.
    pub min_per_second: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            percent: DEFAULT_BUDGET_PERCENT,
            min_per_second: DEFAULT_BUDGET_MIN_PER_SECOND,
        }
    }
}

/// What a cluster's retries did, node-wide (written only when a retry is
/// considered: rare next to requests).
#[derive(Debug, Default)]
pub struct RetryCounts {
    /// Retries sent, by [`Cause`] (indexed as [`Cause::ALL`]).
    pub by_cause: [AtomicU64; 4],
    /// Retries not sent because the budget was spent.
    pub budget_exhausted: AtomicU64,
    /// Retries not sent because the cluster was at its `max_retries`.
    pub overflows: AtomicU64,
}

impl RetryCounts {
    /// Counts a retry sent for `cause`.
    pub fn sent(&self, cause: Cause) {
        let i = Cause::ALL.iter().position(|&c| c == cause).unwrap_or(0);
        self.by_cause[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// One second's count in a cell: the second (since the budget began) in
/// the high half, the count in the low half.
fn pack(second: u64, count: u64) -> u64 {
    (second << 32) | (count & 0xffff_ffff)
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> 32, v & 0xffff_ffff)
}

/// The cells of one budget.
#[derive(Debug)]
struct Cells {
    /// Second 0.
    base: Instant,
    /// Requests per second, per worker: written by that worker alone.
    requests: Box<[CachePadded<[AtomicU64; WINDOW_SECONDS as usize]>]>,
    /// Retries per second, written by every worker with compare-and-swap.
    retries: CachePadded<[AtomicU64; WINDOW_SECONDS as usize]>,
    counts: RetryCounts,
}

/// A cluster's retry budget, node-wide; the cells outlive table
/// generations (a reload carries them over by cluster name).
#[derive(Debug, Clone)]
pub struct Budget {
    /// The limits.
    pub settings: BudgetSettings,
    cells: Arc<Cells>,
}

impl Budget {
    /// A budget with `settings` for `workers` workers, carrying on the
    /// cells of `previous` (the same cluster in the running table) when it
    /// has cells for as many workers.
    pub fn new(settings: BudgetSettings, workers: usize, previous: Option<&Budget>) -> Self {
        let workers = workers.max(1);
        let cells = match previous {
            Some(p) if p.cells.requests.len() == workers => Arc::clone(&p.cells),
            _ => Arc::new(Cells {
                base: Instant::now(),
                requests: (0..workers)
                    .map(|_| CachePadded::new(Default::default()))
                    .collect(),
                retries: CachePadded::new(Default::default()),
                counts: RetryCounts::default(),
            }),
        };
        Self { settings, cells }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.cells.base).as_secs()
    }

    /// Counts a request of worker `worker` at `now`.
    #[inline]
    pub fn request(&self, worker: usize, now: Instant) {
        let cells = &self.cells.requests;
        let second = self.second(now);
        let cell = &cells[worker.min(cells.len() - 1)][(second % WINDOW_SECONDS) as usize];
        let (at, count) = unpack(cell.load(Ordering::Relaxed));
        let next = if at == second { count + 1 } else { 1 };
        cell.store(pack(second, next), Ordering::Relaxed);
    }

    /// Requests and retries over the window that ends at `now`.
    pub fn window(&self, now: Instant) -> (u64, u64) {
        let second = self.second(now);
        let live = |v: u64| {
            let (at, count) = unpack(v);
            // A worker's clock may run a little ahead of this one's.
            if at + WINDOW_SECONDS > second && at <= second + 1 {
                count
            } else {
                0
            }
        };
        let requests = self
            .cells
            .requests
            .iter()
            .flat_map(|w| w.iter())
            .map(|c| live(c.load(Ordering::Relaxed)))
            .sum();
        let retries = self
            .cells
            .retries
            .iter()
            .map(|c| live(c.load(Ordering::Relaxed)))
            .sum();
        (requests, retries)
    }

    /// Takes a retry from the budget at `now`, or counts it refused. Two
    /// workers deciding at the same instant may both pass the last place,
    /// so the budget can be passed by at most one retry per worker.
    pub fn try_retry(&self, now: Instant) -> bool {
        let (requests, retries) = self.window(now);
        let allowed = requests * u64::from(self.settings.percent) / 100
            + u64::from(self.settings.min_per_second) * WINDOW_SECONDS;
        if retries >= allowed {
            self.cells
                .counts
                .budget_exhausted
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let second = self.second(now);
        let cell = &self.cells.retries[(second % WINDOW_SECONDS) as usize];
        let mut v = cell.load(Ordering::Relaxed);
        loop {
            let (at, count) = unpack(v);
            let next = pack(second, if at == second { count + 1 } else { 1 });
            match cell.compare_exchange_weak(v, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now_there) => v = now_there,
            }
        }
    }

    /// What the cluster's retries did.
    pub fn counts(&self) -> &RetryCounts {
        &self.cells.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_failures_follow_retry_on() {
        let mut p = RetryPolicy::default();
        assert_eq!(p.on, RetryOn::RESET, "resets are retried by default");
        assert!(p.retries_after_sending());
        p.on = RetryOn::default();
        assert!(!p.retries_after_sending());
        assert!(p.retries_failure(Cause::Unsent), "always safe");
        assert!(!p.retries_failure(Cause::Reset) && !p.retries_status(503));
        p.on = RetryOn::GATEWAY_ERROR;
        assert!(p.retries_after_sending());
        assert!(p.retries_status(502) && p.retries_status(504) && !p.retries_status(500));
        assert!(p.retries_failure(Cause::Reset) && p.retries_failure(Cause::Timeout));
        p.on = RetryOn::FIVE_XX;
        assert!(p.retries_status(500) && p.retries_status(599) && !p.retries_status(429));
        p.on = RetryOn::RESET;
        assert!(p.retries_failure(Cause::Reset) && !p.retries_failure(Cause::Timeout));
        assert!(!p.retries_status(503));
        p.on = RetryOn::TIMEOUT;
        assert!(!p.retries_failure(Cause::Reset) && p.retries_failure(Cause::Timeout));
        p.on = RetryOn::default();
        p.statuses = Box::new([409]);
        assert!(p.retries_after_sending() && p.retries_status(409) && !p.retries_status(503));
        p.retries = 0;
        assert!(!p.retries_after_sending());
        assert_eq!(
            RetryOn::named("gateway_error"),
            Some(RetryOn::GATEWAY_ERROR)
        );
        assert_eq!(RetryOn::named("4xx"), None);
        let both = RetryOn::RESET.with(RetryOn::FIVE_XX);
        assert_eq!(both.names().collect::<Vec<_>>(), ["5xx", "reset"]);
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let p = RetryPolicy::default();
        for (n, cap) in [(1, 25), (2, 50), (3, 100), (4, 200), (5, 250), (9, 250)] {
            let cap = Duration::from_millis(cap);
            let mut seen = (Duration::MAX, Duration::ZERO);
            for r in 0..2000u64 {
                let d = p.backoff(n, r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                assert!(d >= cap / 2 && d <= cap, "retry {n}: {d:?} outside {cap:?}");
                seen = (seen.0.min(d), seen.1.max(d));
            }
            assert!(seen.1 - seen.0 > cap / 4, "retry {n}: no spread: {seen:?}");
        }
    }

    #[test]
    fn the_budget_allows_a_share_of_requests_plus_a_floor_over_its_window() {
        let settings = BudgetSettings {
            percent: 20,
            min_per_second: 1,
        };
        let b = Budget::new(settings, 2, None);
        let t0 = b.cells.base;
        // The floor alone: 1 per second over 10 seconds.
        let taken = (0..50).filter(|_| b.try_retry(t0)).count();
        assert_eq!(taken, 10);
        assert_eq!(b.counts().budget_exhausted.load(Ordering::Relaxed), 40);
        // 100 requests over both workers add 20.
        for i in 0..100 {
            b.request(i % 2, t0 + Duration::from_millis(500));
        }
        assert_eq!(b.window(t0 + Duration::from_millis(900)), (100, 10));
        let taken = (0..50)
            .filter(|_| b.try_retry(t0 + Duration::from_millis(900)))
            .count();
        assert_eq!(taken, 20);
        // Ten seconds on, the window has moved past all of it.
        let later = t0 + Duration::from_secs(10) + Duration::from_millis(100);
        assert_eq!(b.window(later), (0, 0));
        // A cell is reused for its second ten seconds on, not added to.
        b.request(0, later);
        assert_eq!(b.window(later), (1, 0));
    }

    #[test]
    fn a_reload_keeps_the_cells_and_the_counts() {
        let a = Budget::new(BudgetSettings::default(), 2, None);
        a.request(1, Instant::now());
        a.counts().sent(Cause::Reset);
        let b = Budget::new(
            BudgetSettings {
                percent: 50,
                min_per_second: 0,
            },
            2,
            Some(&a),
        );
        assert_eq!(b.window(Instant::now()).0, 1);
        assert_eq!(b.counts().by_cause[1].load(Ordering::Relaxed), 1);
        let c = Budget::new(BudgetSettings::default(), 3, Some(&a));
        assert_eq!(c.window(Instant::now()).0, 0, "other workers: new cells");
    }
}
