//! Median, minimum and maximum of a figure over repeated runs: how every
//! bench report shows a figure measured more than once.

/// Median, minimum and maximum of a set of figures.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest figure.
    pub min: f64,
    /// The largest figure.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, NaNs left out; all NaN when none is left.
    pub fn new(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        v.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (v.first(), v.last()) else {
            return Self {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        };
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Self { median, min, max }
    }

    /// `median (min–max)`, or the single figure when all are equal.
    pub fn show(&self, decimals: usize) -> String {
        self.show_with(decimals, "")
    }

    /// Like [`Spread::show`], with `unit` after each figure.
    pub fn show_with(&self, decimals: usize, unit: &str) -> String {
        if self.median.is_nan() {
            return "–".to_owned();
        }
        if self.min == self.max {
            return format!("{:.*}{unit}", decimals, self.median);
        }
        format!(
            "{:.*}{unit} ({:.*}–{:.*}{unit})",
            decimals, self.median, decimals, self.min, decimals, self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_without_nans() {
        let s = Spread::new(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::new(&[1.0, 2.0]).median, 1.5);
        assert!(Spread::new(&[]).median.is_nan());
        assert_eq!(Spread::new(&[5.0]).show(1), "5.0");
        assert_eq!(Spread::new(&[1.0, 3.0]).show(0), "2 (1–3)");
        assert_eq!(Spread::new(&[]).show(0), "–");
    }
}
