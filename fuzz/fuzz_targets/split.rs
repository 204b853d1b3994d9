//! Shared by the targets: where to cut an input, chosen from the input
//! itself so a crash reproduces from its file alone.

/// FNV-1a over the input: a cheap, stable seed.
pub fn seed(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Up to eight ascending cut points in `0..=len`.
pub fn points(seed: u64, len: usize) -> Vec<usize> {
    let mut x = seed | 1;
    let mut v: Vec<usize> = (0..(seed % 9) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (len as u64 + 1)) as usize
        })
        .collect();
    v.sort_unstable();
    v
}
