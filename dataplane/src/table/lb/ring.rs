//! A consistent-hash ring (`lb = "ring_hash"`).
//!
//! Each endpoint puts [`POINTS_PER_WEIGHT`] × its weight points on a 64-bit
//! circle, at hashes of its own address; a key goes to the owner of the
//! first point at or after the key's hash. An endpoint's points depend on
//! its address and weight only, so removing an endpoint moves exactly the
//! keys it owned (to the owners of the next points), and adding one takes
//! keys only for itself.

use std::net::SocketAddr;

use super::hash;

/// Points per unit of weight: with 100 points an endpoint's share of the
/// circle is within a few percent of its weight's share.
pub const POINTS_PER_WEIGHT: usize = 100;

/// Most points a ring may have (12 bytes each): 1,048,576, 12 MiB.
pub const MAX_POINTS: usize = 1 << 20;

/// The circle: point hashes in ascending order, and the endpoint index that
/// owns each.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    hashes: Box<[u64]>,
    owners: Box<[u32]>,
}

impl Ring {
    /// The ring of `endpoints` with their `weights` (one per endpoint).
    /// Callers check [`points`] against [`MAX_POINTS`] first.
    pub fn new(endpoints: &[SocketAddr], weights: &[u32]) -> Self {
        let mut points: Vec<(u64, u64, u32)> = Vec::with_capacity(points(weights));
        for (i, (&addr, &weight)) in endpoints.iter().zip(weights).enumerate() {
            let base = hash::endpoint(addr);
            for replica in 0..weight as u64 * POINTS_PER_WEIGHT as u64 {
                let at = hash::mix(base ^ hash::mix(replica.wrapping_add(1)));
                // The endpoint's own hash breaks ties, so that two points
                // on the same spot order alike whatever the list order.
                points.push((at, base, i as u32));
            }
        }
        points.sort_unstable();
        Self {
            hashes: points.iter().map(|p| p.0).collect(),
            owners: points.iter().map(|p| p.2).collect(),
        }
    }

    /// The endpoint index that owns `key` (a hash), or `None` on an empty
    /// ring.
    pub fn owner(&self, key: u64) -> Option<usize> {
        if self.hashes.is_empty() {
            return None;
        }
        let at = self.hashes.partition_point(|&h| h < key);
        let at = if at == self.hashes.len() { 0 } else { at };
        Some(self.owners[at] as usize)
    }

    /// Bytes the ring holds.
    pub fn heap_bytes(&self) -> usize {
        self.hashes.len() * 12
    }
}

/// How many points `weights` put on a ring.
pub fn points(weights: &[u32]) -> usize {
    weights
        .iter()
        .map(|&w| w as usize * POINTS_PER_WEIGHT)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u16) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([10, 0, 0, 1], 8000 + i)))
            .collect()
    }

    fn keys() -> impl Iterator<Item = u64> {
        (0..20_000u32).map(|k| hash::stable(&k.to_le_bytes()))
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_own_keys() {
        let all = addrs(5);
        let ring = Ring::new(&all, &[1; 5]);
        let mut fewer = all.clone();
        let gone = fewer.remove(2);
        let smaller = Ring::new(&fewer, &[1; 4]);
        let mut moved_from_gone = 0;
        for key in keys() {
            let before = all[ring.owner(key).unwrap()];
            let after = fewer[smaller.owner(key).unwrap()];
            if before == gone {
                moved_from_gone += 1;
            } else {
                assert_eq!(before, after, "a key of a staying endpoint moved");
            }
        }
        // The removed endpoint owned about a fifth of the keys.
        assert!(
            (2_000..6_000).contains(&moved_from_gone),
            "{moved_from_gone}"
        );
    }

    #[test]
    fn the_list_order_does_not_matter() {
        let all = addrs(4);
        let mut reversed = all.clone();
        reversed.reverse();
        let (a, b) = (
            Ring::new(&all, &[1, 2, 3, 4]),
            Ring::new(&reversed, &[4, 3, 2, 1]),
        );
        for key in keys() {
            assert_eq!(all[a.owner(key).unwrap()], reversed[b.owner(key).unwrap()]);
        }
    }

    #[test]
    fn shares_follow_the_weights() {
        let all = addrs(3);
        let ring = Ring::new(&all, &[1, 2, 5]);
        let mut counts = [0usize; 3];
        for key in keys() {
            counts[ring.owner(key).unwrap()] += 1;
        }
        let share = |i: usize| counts[i] as f64 / 20_000.0;
        // Expected 1/8, 2/8, 5/8.
        assert!((share(0) - 0.125).abs() < 0.04, "{counts:?}");
        assert!((share(1) - 0.25).abs() < 0.05, "{counts:?}");
        assert!((share(2) - 0.625).abs() < 0.06, "{counts:?}");
    }

    #[test]
    fn an_empty_ring_owns_nothing() {
        assert_eq!(Ring::default().owner(7), None);
    }
}
