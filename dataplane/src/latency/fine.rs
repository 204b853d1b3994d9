//! A histogram fine enough for quantiles: log-linear cells over
//! microseconds, exact below 64 µs and then 32 cells per power of two, so
//! no cell is wider than 1/32 of its lower edge (about 3%). 1,056 cells
//! cover up to 2^37 µs (38 hours); anything longer is counted in the last.
//!
//! Each worker records into its own [`Fine`]; the agent adds the workers'
//! cells into a [`FineTotals`], which reads quantiles through an
//! HdrHistogram (on the control thread, never on a worker).

use std::time::Duration;

use crate::counter::Counter;

/// Sub-cells per power of two above the exact range.
const SUB: u64 = 32;
/// Values below this are counted exactly, one cell each.
const EXACT: u64 = 2 * SUB;
/// The highest power of two with cells of its own.
const TOP: u32 = 36;
/// Cells in all.
pub const CELLS: usize = (EXACT + (TOP as u64 - 5) * SUB) as usize;

/// The cell of `us` microseconds.
#[inline]
pub fn cell(us: u64) -> usize {
    if us < EXACT {
        return us as usize;
    }
    let power = (63 - us.leading_zeros()).min(TOP);
    if power == TOP && us >> TOP > 1 {
        return CELLS - 1;
    }
    let shift = power - 5;
    let sub = (us >> shift) - SUB;
    (EXACT + u64::from(power - 6) * SUB + sub) as usize
}

/// The lowest value of cell `i` and its width, in microseconds.
pub fn span(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, 1);
    }
    let power = 6 + (i - EXACT) / SUB;
    let sub = (i - EXACT) % SUB;
    let shift = power - 5;
    ((SUB + sub) << shift, 1 << shift)
}

/// One worker's fine histogram of one series.
#[derive(Debug)]
pub struct Fine {
    cells: Box<[Counter]>,
}

impl Default for Fine {
    fn default() -> Self {
        Self {
            cells: (0..CELLS).map(|_| Counter::default()).collect(),
        }
    }
}

impl Fine {
    /// Records `d`.
    #[inline]
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.cells[cell(us)].add(1);
    }

    /// Adds this worker's cells to `into`.
    pub fn add_to(&self, into: &mut FineTotals) {
        for (sum, c) in into.cells.iter_mut().zip(self.cells.iter()) {
            *sum += c.get();
        }
    }
}

/// The sum of several workers' [`Fine`] cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineTotals {
    /// Count per cell.
    pub cells: Box<[u64]>,
}

impl Default for FineTotals {
    fn default() -> Self {
        Self {
            cells: vec![0; CELLS].into_boxed_slice(),
        }
    }
}

impl FineTotals {
    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.cells.iter().sum()
    }

    /// What was counted after `earlier`, an older sum of the same cells.
    pub fn since(&self, earlier: &FineTotals) -> FineTotals {
        FineTotals {
            cells: self
                .cells
                .iter()
                .zip(earlier.cells.iter())
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
        }
    }

    /// Every non-empty cell as (the highest value of the cell in
    /// microseconds, count): what a quantile reader loads, so that no
    /// quantile reads below the durations it stands for.
    pub fn points(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let (low, width) = span(i);
                (low + width - 1, *n)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_tile_the_range_without_gaps() {
        let mut next = 0;
        for i in 0..CELLS {
            let (low, width) = span(i);
            assert_eq!(low, next, "cell {i}");
            assert_eq!(cell(low), i);
            assert_eq!(cell(low + width - 1), i);
            // No cell wider than 1/32 of where it starts.
            assert!(low < EXACT || width * SUB <= low, "cell {i}");
            next = low + width;
        }
        assert_eq!(next, 1 << (TOP + 1));
        assert_eq!(cell(next), CELLS - 1);
        assert_eq!(cell(u64::MAX), CELLS - 1);
    }

    #[test]
    fn workers_add_up() {
        let a = Fine::default();
        let b = Fine::default();
        a.record(Duration::from_micros(10));
        b.record(Duration::from_micros(10));
        b.record(Duration::from_millis(100));
        let mut t = FineTotals::default();
        a.add_to(&mut t);
        b.add_to(&mut t);
        assert_eq!(t.count(), 3);
        let points: Vec<_> = t.points().collect();
        assert_eq!(points[0], (10, 2));
        let earlier = t.clone();
        a.record(Duration::from_micros(10));
        let mut later = FineTotals::default();
        a.add_to(&mut later);
        b.add_to(&mut later);
        let since = later.since(&earlier);
        assert_eq!(since.count(), 1);
        assert_eq!(since.points().collect::<Vec<_>>(), [(10, 1)]);
        let (top, n) = points[1];
        assert_eq!(n, 1);
        assert!(top >= 100_000 && (top - 100_000) * 32 <= 100_000, "{top}");
    }
}
