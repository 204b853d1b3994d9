//! A worker's pseudo-random source: xorshift64*, in a `Cell`, so the one
//! thread that owns it draws without `&mut`. For weighted picks, the two
//! draws of least-request and peak-EWMA, request ids and jitter; not for
//! secrets.

use std::cell::Cell;

/// xorshift64*. Never zero (xorshift's one fixed point): a zero seed is
/// made odd.
#[derive(Debug)]
pub struct Random(Cell<u64>);

impl Random {
    /// A source starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Cell::new(seed | 1))
    }

    /// A source that carries on where this one stands (for the state of a
    /// new table that continues the old one's).
    pub fn carry_on(&self) -> Self {
        Self(Cell::new(self.0.get()))
    }

    /// The next 64 pseudo-random bits.
    pub fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0), by multiplication of the high bits (no
    /// division, and no bias worth the name for the sizes it is used for).
    pub fn below(&self, n: usize) -> usize {
        ((u128::from(self.next() >> 32) * n as u128) >> 32) as usize
    }

    /// A number in [0, 1).
    pub fn unit(&self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_a_seed_replays() {
        let (a, b) = (Random::new(7), Random::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next(), b.next());
            assert!(a.below(3) < 3);
            assert!(b.below(3) < 3);
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
            assert_eq!(b.unit(), u);
        }
        let c = a.carry_on();
        assert_eq!(a.next(), c.next());
        // A zero seed still moves.
        let z = Random::new(0);
        assert_ne!(z.next(), z.next());
    }
}
