//! Histogram series read out of a parsed `/metrics` exposition
//! ([`ringway_kit::admin::Metrics`]): the cumulative buckets, `_sum` and
//! `_count` of one label set, checked for the shape the text format
//! requires before a test reads figures from them.
//!
//! `prometheus-parse` gathers a family's `_bucket` lines into one sample
//! named after the family (its labels without `le`), and keeps `_sum` and
//! `_count` as samples of their own; [`histogram`] puts the three back
//! together.

use prometheus_parse::Value;
use ringway_kit::admin::{scalar, Metrics};

/// One histogram series: its cumulative buckets by upper bound, its sum
/// and its count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// `(le, cumulative count)`, by increasing bound, `+Inf` last.
    pub buckets: Vec<(f64, f64)>,
    /// `_sum`, in the family's unit.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

impl HistogramSeries {
    /// The cumulative count of the bucket whose upper bound is `le`;
    /// panics when the series has no such bound.
    pub fn bucket(&self, le: f64) -> f64 {
        self.buckets
            .iter()
            .find(|(bound, _)| *bound == le)
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("no bucket le={le} in {self:?}"))
    }

    /// Whether the series has the shape the text format requires: bounds
    /// strictly increasing and ending in `+Inf`, counts never decreasing,
    /// the `+Inf` bucket equal to `_count`. Says what is wrong otherwise.
    pub fn check_shape(&self) -> Result<(), String> {
        let Some(&(last, inf)) = self.buckets.last() else {
            return Err("no buckets".to_owned());
        };
        if last != f64::INFINITY {
            return Err(format!("the last bucket is le={last}, not +Inf"));
        }
        for pair in self.buckets.windows(2) {
            let [(a, n), (b, m)] = [pair[0], pair[1]];
            if a >= b {
                return Err(format!("bound {b} does not follow {a}"));
            }
            if m < n {
                return Err(format!("bucket le={b} ({m}) below le={a} ({n})"));
            }
        }
        if inf != self.count {
            return Err(format!("le=+Inf is {inf}, _count is {}", self.count));
        }
        Ok(())
    }
}

/// The series of histogram `family` whose labels (`le` aside) are exactly
/// `labels`; `None` when the exposition has no such series, or only part
/// of one.
pub fn histogram(
    metrics: &Metrics,
    family: &str,
    labels: &[(&str, &str)],
) -> Option<HistogramSeries> {
    let exactly = |sample: &prometheus_parse::Sample| {
        sample.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
    };
    let mut buckets = metrics
        .of(family)
        .into_iter()
        .filter(|s| exactly(s))
        .find_map(|s| match &s.value {
            Value::Histogram(counts) => Some(
                counts
                    .iter()
                    .map(|c| (c.less_than, c.count))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })?;
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let single = |name: String| {
        metrics
            .of(&name)
            .into_iter()
            .filter(|s| exactly(s))
            .find_map(|s| scalar(&s.value))
    };
    Some(HistogramSeries {
        buckets,
        sum: single(format!("{family}_sum"))?,
        count: single(format!("{family}_count"))?,
    })
}

/// Like [`histogram`], but panics, showing the exposition, when the series
/// is missing or misshapen.
pub fn must_histogram(metrics: &Metrics, family: &str, labels: &[(&str, &str)]) -> HistogramSeries {
    let series = histogram(metrics, family, labels).unwrap_or_else(|| {
        panic!(
            "no series {family}{labels:?} in /metrics:\n{}",
            metrics.text
        )
    });
    if let Err(wrong) = series.check_shape() {
        panic!("{family}{labels:?}: {wrong}; /metrics:\n{}", metrics.text);
    }
    series
}

#[cfg(test)]
mod tests {
    use prometheus_parse::Scrape;

    use super::*;

    fn parsed(text: &str) -> Metrics {
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
        Metrics {
            text: text.to_owned(),
            samples: scrape.samples,
        }
    }

    #[test]
    fn puts_buckets_sum_and_count_of_one_label_set_together() {
        let metrics = parsed(
            "# HELP d_seconds D.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{route=\"a\",cluster=\"\",le=\"0.1\"} 2\n\
             d_seconds_bucket{route=\"a\",cluster=\"\",le=\"+Inf\"} 3\n\
             d_seconds_sum{route=\"a\",cluster=\"\"} 0.9\n\
             d_seconds_count{route=\"a\",cluster=\"\"} 3\n\
             d_seconds_bucket{route=\"a\",cluster=\"c\",le=\"0.1\"} 0\n\
             d_seconds_bucket{route=\"a\",cluster=\"c\",le=\"+Inf\"} 1\n\
             d_seconds_sum{route=\"a\",cluster=\"c\"} 4\n\
             d_seconds_count{route=\"a\",cluster=\"c\"} 1\n",
        );
        let a = must_histogram(&metrics, "d_seconds", &[("route", "a"), ("cluster", "")]);
        assert_eq!(a.buckets, vec![(0.1, 2.0), (f64::INFINITY, 3.0)]);
        assert_eq!((a.sum, a.count), (0.9, 3.0));
        assert_eq!(a.bucket(0.1), 2.0);
        let c = must_histogram(&metrics, "d_seconds", &[("route", "a"), ("cluster", "c")]);
        assert_eq!((c.bucket(f64::INFINITY), c.sum), (1.0, 4.0));
        assert_eq!(histogram(&metrics, "d_seconds", &[("route", "a")]), None);
    }

    #[test]
    fn tells_a_misshapen_series() {
        let series = |buckets: &[(f64, f64)], count| HistogramSeries {
            buckets: buckets.to_vec(),
            sum: 0.0,
            count,
        };
        assert!(series(&[(1.0, 1.0), (f64::INFINITY, 2.0)], 2.0)
            .check_shape()
            .is_ok());
        assert!(series(&[(1.0, 1.0)], 1.0).check_shape().is_err());
        assert!(series(&[(1.0, 3.0), (f64::INFINITY, 2.0)], 2.0)
            .check_shape()
            .is_err());
        assert!(series(&[(1.0, 1.0), (f64::INFINITY, 2.0)], 3.0)
            .check_shape()
            .is_err());
    }
}
