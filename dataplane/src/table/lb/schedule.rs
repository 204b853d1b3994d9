//! The order of weighted round robin (`lb = "weighted_round_robin"`).
//!
//! Built once per cluster: one cycle of endpoint indices in which each
//! endpoint appears as often as its weight (weights divided by their
//! greatest common divisor), spread out rather than in runs. Each worker
//! walks it with its own cursor, so a pick costs what plain round robin
//! costs. The spreading is the smooth scheme: every step each endpoint
//! gains its weight, the richest is chosen and pays the total.

/// The cycle for `weights` (each at least 1).
pub fn cycle(weights: &[u32]) -> Box<[u32]> {
    let divisor = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    let reduced: Vec<i64> = weights.iter().map(|&w| i64::from(w / divisor)).collect();
    let total: i64 = reduced.iter().sum();
    let mut credit = vec![0i64; reduced.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in reduced.iter().enumerate() {
            credit[i] += w;
            if credit[i] > credit[best] {
                best = i;
            }
        }
        credit[best] -= total;
        order.push(best as u32);
    }
    order.into_boxed_slice()
}

/// Length of the cycle for `weights`, without building it.
pub fn cycle_len(weights: &[u32]) -> u64 {
    let divisor = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    weights.iter().map(|&w| u64::from(w / divisor)).sum()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_appears_as_often_as_its_weight_spread_out() {
        let order = cycle(&[5, 1, 1]);
        assert_eq!(&*order, &[0, 0, 1, 0, 2, 0, 0]);
        let order = cycle(&[2, 4, 6]);
        // Divided by 2: 1, 2, 3.
        assert_eq!(order.len(), 6);
        assert_eq!(cycle_len(&[2, 4, 6]), 6);
        let count = |i: u32| order.iter().filter(|&&x| x == i).count();
        assert_eq!((count(0), count(1), count(2)), (1, 2, 3));
    }

    #[test]
    fn equal_weights_are_plain_round_robin() {
        assert_eq!(&*cycle(&[3, 3, 3]), &[0, 1, 2]);
    }
}
