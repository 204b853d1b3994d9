//! Rate limits: a route's requests per second and a listener's new
//! connections per second, each a token bucket kept as GCRA state (the
//! generic cell rate algorithm): one "theoretical arrival time" (TAT) per
//! bucket, in nanoseconds since the limit's epoch.
//!
//! A bucket is one `AtomicU64`, shared by every worker and updated with a
//! compare-and-swap: the limit holds exactly however the clients spread
//! over the workers, and no lock is taken. A limited request costs one load
//! and one successful CAS (another on each lost race); the line moves
//! between cores only on routes that have a limit and take requests on
//! more than one worker.
//!
//! A keyed limit (one bucket per client address or per header value) keeps
//! its buckets in a [`KeyTable`] allocated once at its full size: a
//! set-associative table of `max_keys` slots (rounded up to a power of two)
//! in sets of [`WAYS`], 16 bytes a slot. A key not in the table takes the
//! way of its set whose bucket is full again (forgetting it loses nothing),
//! else the way with the smallest TAT (the bucket closest to full). See
//! docs/configuration.md ("Rate limiting") for the worst case this gives.
//!
//! The state lives with the table, as the retry budget does; the agent
//! carries it to the next table while the route (or listener) keeps the
//! same settings ([`RateLimit::new`]).

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam::utils::CachePadded;

use crate::counter::Counter;

/// Ways of a [`KeyTable`] set: four slots of 16 bytes fill one cache line.
pub const WAYS: usize = 4;
/// Most `max_keys` a keyed limit may ask for: 2^20 slots are 16 MiB.
pub const MAX_KEYS: u32 = 1 << 20;
/// Default `max_keys`: 16,384 slots, 256 KiB.
pub const DEFAULT_MAX_KEYS: u32 = 16_384;
/// Most requests (or connections) per second a limit may allow: one per
/// 100 ns, above what any worker serves.
pub const MAX_RATE: u32 = 10_000_000;
/// Largest `burst`.
pub const MAX_BURST: u32 = 1_000_000;
/// Nanoseconds in a second.
const NANOS: u64 = 1_000_000_000;

/// What a route's requests are counted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// One bucket for the whole route.
    Route,
    /// One bucket per client IP address (the connection's peer).
    ClientAddress,
    /// One bucket per value of this header (its name, lower-case); the
    /// requests without it share one bucket.
    Header(Box<str>),
}

impl RateKey {
    /// How the configuration writes it (`None` for [`RateKey::Route`],
    /// which is written by leaving `key` out).
    pub fn config_name(&self) -> Option<String> {
        match self {
            RateKey::Route => None,
            RateKey::ClientAddress => Some("client_address".to_owned()),
            RateKey::Header(name) => Some(format!("header:{name}")),
        }
    }
}

/// The settings of one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSettings {
    /// Requests (or connections) per second, from 1 to [`MAX_RATE`].
    pub per_second: u32,
    /// How many may go at once from a full bucket, from 1 to [`MAX_BURST`].
    pub burst: u32,
    /// What the requests are counted by.
    pub key: RateKey,
    /// Buckets of a keyed limit (before rounding up to a power of two);
    /// unused by an unkeyed one.
    pub max_keys: u32,
}

impl RateSettings {
    /// The default burst for `per_second`: a tenth of a second's worth,
    /// at least 1. A client sending at the limit in bursts smaller than
    /// that is never refused, and the most a fresh bucket adds to a
    /// second's count is a tenth of the limit.
    pub fn default_burst(per_second: u32) -> u32 {
        per_second.div_ceil(10).max(1)
    }
}

/// What a request (or connection) is counted as in a keyed limit.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// The client's address.
    Address(IpAddr),
    /// The first value of the limit's header.
    Value(&'a [u8]),
    /// The header is absent.
    Absent,
}

/// The request is over its limit; one would conform after this many
/// seconds (rounded up, at least 1): the `retry-after` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until one request would conform.
    pub retry_after: u64,
}

/// One route's or listener's limit: its settings and its shared state.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// The settings.
    pub settings: RateSettings,
    state: Arc<State>,
}

impl RateLimit {
    /// A limit with `settings`, carrying on the buckets of `previous` (the
    /// same route or listener in the running table) when it has the same
    /// settings, with full buckets otherwise.
    pub fn new(settings: RateSettings, previous: Option<&RateLimit>) -> Self {
        let state = match previous {
            Some(p) if p.settings == settings => Arc::clone(&p.state),
            _ => Arc::new(State::new(&settings)),
        };
        Self { settings, state }
    }

    /// Counts one request with `key` at `now` (a worker's loop-turn clock;
    /// every worker's is read from the same monotonic clock, so their
    /// times compare): `Ok` if it conforms, its wait otherwise. A worker
    /// whose `now` is a little behind another's only finds the bucket a
    /// little emptier than it is.
    #[inline]
    pub fn check(&self, key: Key<'_>, now: Instant) -> Result<(), Limited> {
        let at = now.saturating_duration_since(self.state.epoch);
        let at = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.state.check(key, at)
    }

    /// Whether both limits share their buckets (a reload carried them).
    pub fn shares_state(&self, other: &RateLimit) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Keyed buckets in use (ways holding a key) and slots in all; `None`
    /// for an unkeyed limit. Reads every slot: for `/stats`, not for the
    /// hot path.
    pub fn occupancy(&self) -> Option<(usize, usize)> {
        match &self.state.buckets {
            Buckets::One(_) => None,
            Buckets::Keyed(table) => Some((table.in_use(), table.slots())),
        }
    }
}

/// The emission interval and tolerance of a limit, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Nanoseconds one request uses up: a second over the rate.
    interval: u64,
    /// How far ahead of now a bucket's TAT may be and still take one more:
    /// `(burst - 1) * interval`.
    tolerance: u64,
}

impl Gcra {
    /// The GCRA of `per_second` with `burst` (both at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = (NANOS / u64::from(per_second.max(1))).max(1);
        let tolerance = interval.saturating_mul(u64::from(burst.max(1)) - 1);
        Self {
            interval,
            tolerance,
        }
    }

    /// Counts one arrival at `now` on the TAT in `tat`: `Ok` and the TAT
    /// moved one interval on if it conforms; the wait in nanoseconds
    /// otherwise (the TAT untouched).
    #[inline]
    pub fn take(&self, tat: &AtomicU64, now: u64) -> Result<(), u64> {
        let mut seen = tat.load(Ordering::Relaxed);
        loop {
            let from = seen.max(now);
            let ahead = from - now;
            if ahead > self.tolerance {
                return Err(ahead - self.tolerance);
            }
            // Relaxed: the TAT orders nothing but itself, and a CAS on one
            // location sees every earlier write to it.
            match tat.compare_exchange_weak(
                seen,
                from + self.interval,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => seen = current,
            }
        }
    }
}

/// A wait in nanoseconds as `retry-after` seconds: rounded up, at least 1.
fn seconds(wait: u64) -> u64 {
    wait.div_ceil(NANOS).max(1)
}

/// The state of one limit.
#[derive(Debug)]
struct State {
    /// Where its nanoseconds count from.
    epoch: Instant,
    gcra: Gcra,
    buckets: Buckets,
}

impl State {
    fn new(settings: &RateSettings) -> Self {
        let gcra = Gcra::new(settings.per_second, settings.burst);
        let buckets = match settings.key {
            RateKey::Route => Buckets::One(CachePadded::new(AtomicU64::new(0))),
            RateKey::ClientAddress | RateKey::Header(_) => {
                Buckets::Keyed(KeyTable::new(settings.max_keys))
            }
        };
        Self {
            epoch: Instant::now(),
            gcra,
            buckets,
        }
    }

    #[inline]
    fn check(&self, key: Key<'_>, now: u64) -> Result<(), Limited> {
        let taken = match &self.buckets {
            Buckets::One(tat) => self.gcra.take(tat, now),
            Buckets::Keyed(table) => table.take(table.fingerprint(key), &self.gcra, now),
        };
        taken.map_err(|wait| Limited {
            retry_after: seconds(wait),
        })
    }
}

/// One bucket, or one per key.
#[derive(Debug)]
enum Buckets {
    /// The route's (or listener's) only bucket, on a line of its own.
    One(CachePadded<AtomicU64>),
    /// One per key.
    Keyed(KeyTable),
}

/// A fixed-size, set-associative table of keyed buckets. See the module
/// documentation.
#[derive(Debug)]
pub struct KeyTable {
    /// Hashes keys into fingerprints. Its keys are drawn at random per
    /// process, so no client can choose values that land in one set.
    hasher: std::collections::hash_map::RandomState,
    sets: Box<[Set]>,
}

/// One set: [`WAYS`] slots on one cache line, so that keys of different
/// sets never share a line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Set([Slot; WAYS]);

/// One slot: the fingerprint of the key it holds (0: none) and its TAT.
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    tat: AtomicU64,
}

impl KeyTable {
    /// A table of at least `max_keys` slots (a power of two, at least one
    /// set), allocated here once.
    pub fn new(max_keys: u32) -> Self {
        let slots = Self::slots_for(max_keys);
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            sets: (0..slots / WAYS).map(|_| Set::default()).collect(),
        }
    }

    /// The slots of a table for `max_keys` (clamped to [`MAX_KEYS`]):
    /// the next power of two, at least one set.
    pub fn slots_for(max_keys: u32) -> usize {
        (max_keys.clamp(1, MAX_KEYS) as usize)
            .next_power_of_two()
            .max(WAYS)
    }

    /// Its slots: the keys it can hold at once.
    pub fn slots(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Slots that hold a key.
    pub fn in_use(&self) -> usize {
        self.sets
            .iter()
            .flat_map(|s| &s.0)
            .filter(|slot| slot.key.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// The fingerprint of `key`: a keyed hash, never 0 (an empty slot's).
    #[inline]
    pub fn fingerprint(&self, key: Key<'_>) -> u64 {
        let hash = match key {
            Key::Address(ip) => self.hasher.hash_one((0u8, ip)),
            Key::Value(bytes) => self.hasher.hash_one((1u8, bytes)),
            Key::Absent => self.hasher.hash_one(2u8),
        };
        hash.max(1)
    }

    /// Counts one arrival of the key with fingerprint `key` at `now`.
    ///
    /// A key that is not in its set takes a way: the first whose bucket is
    /// full again (TAT at or before `now`; an empty slot's is 0), else the
    /// one with the smallest TAT. It claims the way in two CASes: first the
    /// TAT, from what it saw to a full bucket, then the fingerprint, from
    /// what it saw to its own (a CAS that fails means another worker got
    /// there first: it looks again). So a request of the new key, which
    /// other workers can find only once the fingerprint is there, is never
    /// forgotten; what the race costs is on the key being evicted: its
    /// requests between the two CASes are taken from the full bucket (and
    /// charged to the new key). Two workers adding the same new key at the
    /// same moment may each take a way for it: one request more, and a
    /// way held by the copy until it is evicted.
    #[inline]
    pub fn take(&self, key: u64, gcra: &Gcra, now: u64) -> Result<(), u64> {
        let set = &self.sets[(key as usize) & (self.sets.len() - 1)].0;
        loop {
            if let Some(slot) = set.iter().find(|s| s.key.load(Ordering::Relaxed) == key) {
                return gcra.take(&slot.tat, now);
            }
            let victim = set
                .iter()
                .find(|s| s.tat.load(Ordering::Relaxed) <= now)
                .unwrap_or_else(|| {
                    set.iter()
                        .min_by_key(|s| s.tat.load(Ordering::Relaxed))
                        .unwrap_or(&set[0])
                });
            let old_key = victim.key.load(Ordering::Relaxed);
            let old_tat = victim.tat.load(Ordering::Relaxed);
            // A full bucket for the new key: nothing the old one owed
            // carries over.
            let full = old_tat.min(now);
            let (ok, seen) = (Ordering::Relaxed, Ordering::Relaxed);
            if victim
                .tat
                .compare_exchange(old_tat, full, ok, seen)
                .is_err()
            {
                continue;
            }
            if victim.key.compare_exchange(old_key, key, ok, seen).is_ok() {
                return gcra.take(&victim.tat, now);
            }
        }
    }
}

/// The connections a listener's `connection_rate_limit` turned away, one
/// counter per worker (each on its own cache lines); carried over reloads
/// by listener name.
#[derive(Debug)]
pub struct LimitedTally {
    workers: Box<[CachePadded<Counter>]>,
}

impl LimitedTally {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::new(Counter::default()))
                .collect(),
        }
    }

    /// The counter worker `worker` writes (the last one past the count).
    #[inline]
    pub fn worker(&self, worker: usize) -> &Counter {
        &self.workers[worker.min(self.workers.len() - 1)]
    }

    /// The sum over every worker.
    pub fn total(&self) -> u64 {
        self.workers.iter().map(|c| c.get()).sum()
    }
}

/// A listener's limit on new connections, and its count of refusals.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    /// The limit (unkeyed).
    pub limit: RateLimit,
    /// Connections turned away.
    pub limited: Arc<LimitedTally>,
}

impl ConnectionLimit {
    /// Counts a connection accepted by worker `worker` at `now`: whether it
    /// may be served (if not, it is counted as turned away).
    #[inline]
    pub fn admit(&self, worker: usize, now: Instant) -> bool {
        let ok = self.limit.check(Key::Absent, now).is_ok();
        if !ok {
            self.limited.worker(worker).add(1);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn settings(per_second: u32, burst: u32, key: RateKey, max_keys: u32) -> RateSettings {
        RateSettings {
            per_second,
            burst,
            key,
            max_keys,
        }
    }

    #[test]
    fn a_full_bucket_takes_its_burst_then_one_per_interval() {
        let gcra = Gcra::new(1000, 20);
        let tat = AtomicU64::new(0);
        let now = 5_000 * MS;
        for _ in 0..20 {
            assert_eq!(gcra.take(&tat, now), Ok(()));
        }
        // The 21st at the same instant waits one interval.
        assert_eq!(gcra.take(&tat, now), Err(MS));
        // One interval later exactly one more conforms.
        assert_eq!(gcra.take(&tat, now + MS), Ok(()));
        assert_eq!(gcra.take(&tat, now + MS), Err(MS));
        // Half an interval on, still half an interval to wait.
        assert_eq!(gcra.take(&tat, now + MS + MS / 2), Err(MS / 2));
    }

    #[test]
    fn the_long_run_rate_is_the_limit_plus_one_burst() {
        // 3 arrivals per interval for 10 s: 10,000 intervals of 1 ms.
        let gcra = Gcra::new(1000, 20);
        let tat = AtomicU64::new(0);
        let mut accepted = 0u64;
        let start = 1_000 * MS;
        for i in 0..30_000u64 {
            if gcra.take(&tat, start + i * MS / 3).is_ok() {
                accepted += 1;
            }
        }
        // 20 at once, then one per millisecond over the 9,999.67 ms that
        // follow the first arrival.
        assert_eq!(accepted, 20 + 9_999);
    }

    #[test]
    fn threads_racing_on_one_bucket_never_take_more_than_it_holds() {
        // Four threads, 10,000 tries each, all at the same instant and at
        // each of the next ten intervals: every token is taken once, by one
        // of them, whatever the interleaving of their CASes.
        let gcra = Gcra::new(1000, 50);
        let tat = AtomicU64::new(0);
        let t0 = 1_000 * MS;
        let taken: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut ok = 0u64;
                        for step in 0..=10 {
                            for _ in 0..10_000 {
                                ok += u64::from(gcra.take(&tat, t0 + step * MS).is_ok());
                            }
                        }
                        ok
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a racing thread"))
                .sum()
        });
        // However the threads' steps interleave, the bucket ends full at
        // the last instant: the burst and one token per interval since the
        // first, each taken once.
        assert_eq!(taken, 50 + 10);
        // A key's slot in a keyed table under the same race (the key is in
        // the table first: two workers adding one new key at the same
        // moment may each take a way, as `KeyTable::take` says).
        let table = KeyTable::new(64);
        let key = table.fingerprint(Key::Value(b"k"));
        assert!(table.take(key, &gcra, t0).is_ok());
        let taken: u64 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..10_000)
                            .map(|_| u64::from(table.take(key, &gcra, t0).is_ok()))
                            .sum::<u64>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a racing thread"))
                .sum()
        });
        assert_eq!(taken, 49);
    }

    #[test]
    fn an_idle_bucket_fills_up_to_its_burst_and_no_more() {
        let gcra = Gcra::new(10, 3);
        let tat = AtomicU64::new(0);
        let t0 = 10_000 * MS;
        for _ in 0..3 {
            assert!(gcra.take(&tat, t0).is_ok());
        }
        assert!(gcra.take(&tat, t0).is_err());
        // An hour idle: three again, not 36,000.
        let later = t0 + 3_600_000 * MS;
        for _ in 0..3 {
            assert!(gcra.take(&tat, later).is_ok());
        }
        assert!(gcra.take(&tat, later).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(seconds(1), 1);
        assert_eq!(seconds(NANOS), 1);
        assert_eq!(seconds(NANOS + 1), 2);
        // One request per 2 s, burst 1: the second waits 2 s.
        let state = State::new(&settings(1, 1, RateKey::Route, 0));
        let now = 7 * NANOS;
        assert_eq!(state.check(Key::Absent, now), Ok(()));
        assert_eq!(
            state.check(Key::Absent, now),
            Err(Limited { retry_after: 1 })
        );
        let slow = State::new(&settings(1, 2, RateKey::Route, 0));
        for _ in 0..2 {
            assert!(slow.check(Key::Absent, now).is_ok());
        }
        // The TAT is now + 2 s; one more conforms from now + 1 s.
        assert_eq!(
            slow.check(Key::Absent, now + NANOS / 2),
            Err(Limited { retry_after: 1 })
        );
    }

    #[test]
    fn keys_have_buckets_of_their_own() {
        let state = State::new(&settings(1, 2, RateKey::ClientAddress, 64));
        let a = Key::Address(IpAddr::from([10, 0, 0, 1]));
        let b = Key::Address(IpAddr::from([10, 0, 0, 2]));
        let now = 3 * NANOS;
        assert!(state.check(a, now).is_ok());
        assert!(state.check(a, now).is_ok());
        assert!(state.check(a, now).is_err());
        assert!(state.check(b, now).is_ok());
        assert!(state.check(b, now).is_ok());
        assert!(state.check(b, now).is_err());
        // Values and absence are keys too.
        let h = State::new(&settings(1, 1, RateKey::Header("x-k".into()), 64));
        assert!(h.check(Key::Value(b"one"), now).is_ok());
        assert!(h.check(Key::Value(b"two"), now).is_ok());
        assert!(h.check(Key::Absent, now).is_ok());
        assert!(h.check(Key::Absent, now).is_err());
        assert!(h.check(Key::Value(b"one"), now).is_err());
    }

    #[test]
    fn the_table_is_allocated_once_at_a_power_of_two() {
        assert_eq!(KeyTable::new(1).slots(), WAYS);
        assert_eq!(KeyTable::new(64).slots(), 64);
        assert_eq!(KeyTable::new(100).slots(), 128);
        assert_eq!(KeyTable::new(MAX_KEYS + 5).slots(), MAX_KEYS as usize);
        assert_eq!(std::mem::size_of::<Set>(), 64);
        assert_eq!(std::mem::align_of::<Set>(), 64);
        // However many keys arrive, the slots stay what they were.
        let table = KeyTable::new(64);
        let gcra = Gcra::new(1, 1);
        for i in 0..10_000u64 {
            let _ = table.take(
                table.fingerprint(Key::Value(&i.to_le_bytes())),
                &gcra,
                NANOS,
            );
        }
        assert_eq!(table.slots(), 64);
        assert_eq!(table.in_use(), 64);
    }

    /// Fingerprints chosen to land in set 0 of a one-set table.
    fn in_one_set(table: &KeyTable, n: usize) -> Vec<u64> {
        assert_eq!(table.sets.len(), 1);
        (1..=n as u64).map(|i| i << 8).collect()
    }

    #[test]
    fn a_new_key_takes_a_full_bucket_first_then_the_closest_to_full() {
        // One set of four ways; 1 request/s, burst 1: a key's TAT is one
        // second after its last request.
        let table = KeyTable::new(4);
        let gcra = Gcra::new(1, 1);
        let keys = in_one_set(&table, 6);
        let held = || -> Vec<u64> {
            table.sets[0]
                .0
                .iter()
                .map(|s| s.key.load(Ordering::Relaxed))
                .collect()
        };
        // Four keys at 10.0, 10.2, 10.4, 10.6 s: TATs 11.0 to 11.6 s.
        for (i, &k) in keys[..4].iter().enumerate() {
            assert!(table
                .take(k, &gcra, 10_000 * MS + 200 * MS * i as u64)
                .is_ok());
        }
        assert_eq!(held(), keys[..4]);
        // At 11.3 s the buckets of keys 0 and 1 (TAT 11.0, 11.2 s) are
        // full again: the new key takes the first of them.
        let now = 11_300 * MS;
        assert!(table.take(keys[4], &gcra, now).is_ok());
        assert_eq!(held(), [keys[4], keys[1], keys[2], keys[3]]);
        // Key 0 comes back with a full bucket, in key 1's way (full too).
        assert!(table.take(keys[0], &gcra, now).is_ok());
        assert_eq!(held(), [keys[4], keys[0], keys[2], keys[3]]);
        // At 11.35 s no bucket is full (TATs 12.3, 12.3, 11.4, 11.6 s): the
        // smallest TAT, key 2's, is evicted.
        let now = 11_350 * MS;
        assert!(table.take(keys[5], &gcra, now).is_ok());
        assert_eq!(held(), [keys[4], keys[0], keys[5], keys[3]]);
        // Key 2 was not full when evicted: it comes back with a full
        // bucket (the one extra burst per eviction the docs state), in
        // the way of the smallest TAT again (key 3's, 11.6 s).
        assert!(table.take(keys[2], &gcra, now).is_ok());
        assert_eq!(held(), [keys[4], keys[0], keys[5], keys[2]]);
        // A key still in the table stays limited.
        assert_eq!(table.take(keys[5], &gcra, now), Err(1_000 * MS));
    }

    #[test]
    fn a_limit_keeps_its_buckets_over_a_reload_only_with_the_same_settings() {
        let first = RateLimit::new(settings(5, 1, RateKey::Route, 0), None);
        let same = RateLimit::new(settings(5, 1, RateKey::Route, 0), Some(&first));
        assert!(same.shares_state(&first));
        let other = RateLimit::new(settings(6, 1, RateKey::Route, 0), Some(&first));
        assert!(!other.shares_state(&first));
        let keyed = RateLimit::new(settings(5, 1, RateKey::ClientAddress, 8), Some(&first));
        assert!(!keyed.shares_state(&first));
        assert_eq!(keyed.occupancy(), Some((0, 8)));
        assert_eq!(first.occupancy(), None);
    }

    #[test]
    fn the_default_burst_is_a_tenth_of_a_second() {
        assert_eq!(RateSettings::default_burst(1), 1);
        assert_eq!(RateSettings::default_burst(1000), 100);
        assert_eq!(RateSettings::default_burst(15), 2);
    }

    #[test]
    fn a_connection_limit_counts_what_it_turns_away() {
        let limit = ConnectionLimit {
            limit: RateLimit::new(settings(1, 2, RateKey::Route, 0), None),
            limited: Arc::new(LimitedTally::new(2)),
        };
        let now = Instant::now();
        assert!(limit.admit(0, now));
        assert!(limit.admit(1, now));
        assert!(!limit.admit(1, now));
        assert!(!limit.admit(0, now));
        assert_eq!(limit.limited.total(), 2);
        assert_eq!(limit.limited.worker(1).get(), 1);
    }
}
