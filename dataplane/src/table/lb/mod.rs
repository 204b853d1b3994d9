//! How a cluster balances its requests: the policy the configuration
//! names, and whatever it needs precomputed from the endpoint list.
//!
//! Built once per cluster on the control core and shared by every worker
//! in the table: the weighted round-robin cycle, the hash ring or the
//! Maglev table are the same bytes for all of them, so a key hashes to the
//! same endpoint on every worker. What changes per request (cursors,
//! in-flight counts, latency estimates) is each worker's own, in
//! `upstream::balance`.

pub mod hash;
pub mod maglev;
pub mod ring;
pub mod schedule;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use self::maglev::Maglev;
use self::ring::Ring;

/// Largest endpoint weight.
pub const MAX_WEIGHT: u32 = 128;

/// Default decay of the peak-EWMA latency estimate.
pub const DEFAULT_EWMA_DECAY: Duration = Duration::from_secs(10);

/// Default latency an endpoint is assumed to have before its first answer.
pub const DEFAULT_EWMA_SEED: Duration = Duration::from_millis(30);

/// The algorithm, as configured (`lb = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Every endpoint in turn (`round_robin`).
    RoundRobin,
    /// Every endpoint in turn, as often as its weight
    /// (`weighted_round_robin`).
    WeightedRoundRobin,
    /// The less busy of two endpoints drawn at random, by requests (or TCP
    /// connections) in flight on this worker (`least_request`).
    LeastRequest,
    /// The cheaper of two endpoints drawn at random, by latency estimate ×
    /// (in flight + 1) (`peak_ewma`).
    PeakEwma(Ewma),
    /// Consistent hashing on a ring (`ring_hash`).
    RingHash(HashOn),
    /// Consistent hashing with a Maglev table (`maglev`).
    Maglev(HashOn),
}

impl Policy {
    /// The name the configuration uses.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::WeightedRoundRobin => "weighted_round_robin",
            Self::LeastRequest => "least_request",
            Self::PeakEwma(_) => "peak_ewma",
            Self::RingHash(_) => "ring_hash",
            Self::Maglev(_) => "maglev",
        }
    }

    /// Whether picks read each endpoint's load (in-flight count, latency).
    pub fn tracks_load(&self) -> bool {
        matches!(self, Self::LeastRequest | Self::PeakEwma(_))
    }

    /// What a hashing policy hashes.
    pub fn hash_on(&self) -> Option<&HashOn> {
        match self {
            Self::RingHash(on) | Self::Maglev(on) => Some(on),
            _ => None,
        }
    }
}

/// Settings of the peak-EWMA estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ewma {
    /// How fast the estimate forgets: after `decay` without a sample it has
    /// fallen to 1/e of what it was.
    pub decay: Duration,
    /// The estimate of an endpoint that has not answered yet.
    pub seed: Duration,
}

impl Default for Ewma {
    fn default() -> Self {
        Self {
            decay: DEFAULT_EWMA_DECAY,
            seed: DEFAULT_EWMA_SEED,
        }
    }
}

/// What a consistent-hashing policy hashes (`hash_on = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// The client's IP address (not its port): `client_address`.
    ClientAddress,
    /// The value of a request header (`header:NAME`, lowercase here).
    Header(Arc<str>),
    /// The value of a cookie (`cookie:NAME`).
    Cookie(Arc<str>),
}

impl std::fmt::Display for HashOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientAddress => f.write_str("client_address"),
            Self::Header(name) => write!(f, "header:{name}"),
            Self::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// A cluster's balancing: the policy, the endpoints' weights, and what the
/// policy precomputed from them.
#[derive(Debug, Clone)]
pub struct Balance {
    /// The policy.
    pub policy: Policy,
    /// One weight per endpoint, each from 1 to [`MAX_WEIGHT`]; empty when
    /// every endpoint weighs 1.
    weights: Box<[u32]>,
    lookup: Lookup,
}

/// What a policy precomputed.
#[derive(Debug, Clone)]
enum Lookup {
    None,
    Cycle(Box<[u32]>),
    Ring(Ring),
    Maglev(Maglev),
}

impl Balance {
    /// The balancing of `endpoints` under `policy`, with `weights` (one per
    /// endpoint, or empty for all 1). Weights must be 1 to [`MAX_WEIGHT`]
    /// and a ring must fit [`ring::MAX_POINTS`]: the configuration checks
    /// both ([`Balance::check`]) before it builds.
    pub fn new(policy: Policy, endpoints: &[SocketAddr], weights: &[u32]) -> Self {
        let weights: Box<[u32]> = if weights.iter().all(|&w| w == 1) {
            Box::default()
        } else {
            weights.into()
        };
        let ones;
        let each: &[u32] = if weights.is_empty() {
            ones = vec![1; endpoints.len()];
            &ones
        } else {
            &weights
        };
        let lookup = match &policy {
            Policy::WeightedRoundRobin if !weights.is_empty() => {
                Lookup::Cycle(schedule::cycle(each))
            }
            Policy::RingHash(_) => Lookup::Ring(Ring::new(endpoints, each)),
            Policy::Maglev(_) => Lookup::Maglev(Maglev::new(endpoints, each)),
            _ => Lookup::None,
        };
        Self {
            policy,
            weights,
            lookup,
        }
    }

    /// Round robin over `endpoints`.
    pub fn round_robin() -> Self {
        Self {
            policy: Policy::RoundRobin,
            weights: Box::default(),
            lookup: Lookup::None,
        }
    }

    /// Why `policy` cannot balance endpoints of these `weights`, if it
    /// cannot.
    pub fn check(policy: &Policy, weights: &[u32]) -> Result<(), String> {
        if let Some(w) = weights.iter().find(|&&w| !(1..=MAX_WEIGHT).contains(&w)) {
            return Err(format!(
                "weight {w} is out of range: from 1 to {MAX_WEIGHT}"
            ));
        }
        if matches!(policy, Policy::RingHash(_)) {
            let points = ring::points(weights);
            if points > ring::MAX_POINTS {
                return Err(format!(
                    "a ring of these endpoints and weights needs {points} points, more than {}; lower the weights or use lb = \"maglev\"",
                    ring::MAX_POINTS
                ));
            }
        }
        Ok(())
    }

    /// The weight of endpoint `i`.
    pub fn weight(&self, i: usize) -> u32 {
        self.weights.get(i).copied().unwrap_or(1)
    }

    /// The weights as configured, one per endpoint (empty: all 1).
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The weighted round-robin cycle, if the policy has one (weighted
    /// round robin with unequal weights).
    pub fn cycle(&self) -> Option<&[u32]> {
        match &self.lookup {
            Lookup::Cycle(cycle) => Some(cycle),
            _ => None,
        }
    }

    /// The endpoint that owns `key` under a hashing policy.
    pub fn owner(&self, key: u64) -> Option<usize> {
        match &self.lookup {
            Lookup::Ring(ring) => ring.owner(key),
            Lookup::Maglev(table) => table.owner(key),
            _ => None,
        }
    }

    /// Bytes the precomputed lookup holds.
    pub fn heap_bytes(&self) -> usize {
        self.weights.len() * 4
            + match &self.lookup {
                Lookup::None => 0,
                Lookup::Cycle(cycle) => cycle.len() * 4,
                Lookup::Ring(ring) => ring.heap_bytes(),
                Lookup::Maglev(table) => table.heap_bytes(),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([10, 0, 2, 1], 7000 + i)))
            .collect()
    }

    #[test]
    fn equal_weights_keep_no_weights_and_no_cycle() {
        let b = Balance::new(Policy::WeightedRoundRobin, &addrs(3), &[2, 2, 2]);
        // Equal weights other than 1 still build a cycle (it is 0, 1, 2).
        assert_eq!(b.cycle(), Some(&[0u32, 1, 2][..]));
        let b = Balance::new(Policy::WeightedRoundRobin, &addrs(3), &[1, 1, 1]);
        assert_eq!(b.cycle(), None);
        assert_eq!(b.weight(2), 1);
        assert_eq!(b.heap_bytes(), 0);
    }

    #[test]
    fn out_of_range_weights_and_oversized_rings_are_refused() {
        assert!(Balance::check(&Policy::RoundRobin, &[0])
            .unwrap_err()
            .contains("out of range"));
        assert!(Balance::check(&Policy::RoundRobin, &[129]).is_err());
        let heavy = vec![MAX_WEIGHT; 100];
        let ring = Policy::RingHash(HashOn::ClientAddress);
        assert!(Balance::check(&ring, &heavy)
            .unwrap_err()
            .contains("maglev"));
        assert!(Balance::check(&Policy::Maglev(HashOn::ClientAddress), &heavy).is_ok());
    }

    #[test]
    fn hashing_policies_answer_an_owner() {
        for policy in [
            Policy::RingHash(HashOn::ClientAddress),
            Policy::Maglev(HashOn::Header("x-user".into())),
        ] {
            let b = Balance::new(policy, &addrs(4), &[]);
            let owner = b.owner(hash::stable(b"alice")).unwrap();
            assert!(owner < 4);
            assert_eq!(b.owner(hash::stable(b"alice")), Some(owner));
        }
        assert_eq!(Balance::round_robin().owner(1), None);
    }
}
