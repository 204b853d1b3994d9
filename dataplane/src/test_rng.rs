//! The property tests' random numbers: a fixed-seed xorshift64, tiny and
//! deterministic, so that a failing case reproduces from its seed.

/// xorshift64 (Marsaglia): good enough to draw test cases, not for
/// anything else. The seed must not be zero.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One element of `from`, which must not be empty.
    pub(crate) fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }

    /// True once in `n` draws, on average.
    pub(crate) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn draws_are_fixed_by_the_seed_and_stay_in_range() {
        let draws = |seed| {
            let mut rng = Rng(seed);
            (0..1000).map(|_| rng.next()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let mut rng = Rng(7);
        for _ in 0..1000 {
            assert!(rng.below(10) < 10);
            assert_eq!(rng.below(0), 0);
            assert!([1, 2, 3].contains(rng.pick(&[1, 2, 3])));
            assert!(rng.one_in(1));
        }
    }
}
