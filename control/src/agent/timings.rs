//! The latency figures of a table, summed over workers: how long each
//! listener's connections lasted, and each cluster's connect times, times
//! to the response head and request duration quantiles. Written as
//! Prometheus histograms in `/metrics`, and as quantiles in `/stats` and
//! `ringway stats`.

use std::fmt::Write;
use std::sync::Arc;

use dataplane::latency::{ExemplarCopy, FineTotals, HistogramTotals, BUCKETS, LE};
use dataplane::table::Table;
use hdrhistogram::Histogram;

use super::families;
use serde_json::{json, Value};

/// The timings of one table.
#[derive(Debug, Clone, Default)]
pub struct TimingFigures {
    /// Each listener's connection durations, in table order.
    pub connections: Vec<(Arc<str>, HistogramTotals)>,
    /// Each cluster's timings, in table order.
    pub clusters: Vec<ClusterTimings>,
}

/// One cluster's timings.
#[derive(Debug, Clone)]
pub struct ClusterTimings {
    /// Cluster name.
    pub name: Arc<str>,
    /// TCP connect times.
    pub connect: HistogramTotals,
    /// From the upstream connection ready to the response head.
    pub first_byte: HistogramTotals,
    /// Request duration quantiles.
    pub quantiles: Quantiles,
}

/// Quantiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quantiles {
    /// Durations counted.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
}

impl Quantiles {
    /// Reads the quantiles of `fine` through an HdrHistogram loaded with
    /// the upper edge of every cell: a quantile is never below the
    /// durations it stands for, and at most a cell (1/32) above.
    pub fn of(fine: &FineTotals) -> Self {
        let Ok(mut h) = Histogram::<u64>::new(3) else {
            return Self::default();
        };
        for (us, n) in fine.points() {
            // Recording into an auto-resizing histogram only fails on a
            // count overflow, which 64-bit counts of requests do not meet.
            let _ = h.record_n(us.max(1), n);
        }
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
        }
    }
}

impl TimingFigures {
    /// Sums the timing tallies of `table`.
    pub fn read(table: &Table) -> Self {
        Self {
            connections: table
                .listeners
                .iter()
                .map(|l| (Arc::clone(&l.name), l.connections.totals()))
                .collect(),
            clusters: table
                .clusters
                .iter()
                .map(|c| {
                    let t = c.tally.totals();
                    ClusterTimings {
                        name: Arc::clone(&c.name),
                        connect: t.connect,
                        first_byte: t.first_byte,
                        quantiles: Quantiles::of(&t.duration),
                    }
                })
                .collect(),
        }
    }
}

/// The samples of one histogram series: cumulative `_bucket`s, `_sum` (in
/// seconds) and `_count`, with `labels` (already escaped, comma-joined,
/// without braces; may be empty).
pub fn series(out: &mut String, name: &str, labels: &str, h: &HistogramTotals) {
    series_with(out, name, labels, h, None);
}

/// [`series`], with the exemplar of each bucket that has one (OpenMetrics
/// only: the 0.0.4 text format has no exemplars).
pub fn series_with(
    out: &mut String,
    name: &str,
    labels: &str,
    h: &HistogramTotals,
    exemplars: Option<&[Option<ExemplarCopy>; BUCKETS]>,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (i, (le, n)) in LE.iter().zip(h.cumulative()).enumerate() {
        let _ = write!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {n}");
        if let Some(e) = exemplars.and_then(|e| e[i]) {
            exemplar(out, &e);
        }
        out.push('\n');
    }
    let braces = |l: &str| {
        if l.is_empty() {
            String::new()
        } else {
            format!("{{{l}}}")
        }
    };
    let _ = writeln!(out, "{name}_sum{} {}", braces(labels), h.sum_seconds());
    let _ = writeln!(out, "{name}_count{} {}", braces(labels), h.count());
}

/// ` # {trace_id="..."} VALUE TIMESTAMP`: an OpenMetrics exemplar, the
/// value and the timestamp in seconds.
fn exemplar(out: &mut String, e: &ExemplarCopy) {
    out.push_str(" # {trace_id=\"");
    for b in e.trace_id {
        let _ = write!(out, "{b:02x}");
    }
    let _ = write!(
        out,
        "\"}} {}.{:09} {}.{:03}",
        e.value_ns / 1_000_000_000,
        e.value_ns % 1_000_000_000,
        e.unix_ms / 1000,
        e.unix_ms % 1000
    );
}

/// The listener and cluster timing families.
pub fn metrics(out: &mut String, t: &TimingFigures, escape: fn(&str) -> String) {
    let name = "ringway_connection_duration_seconds";
    families::header(out, name);
    for (listener, h) in &t.connections {
        series(out, name, &format!("listener=\"{}\"", escape(listener)), h);
    }
    for (name, pick) in [
        (
            "ringway_upstream_connect_duration_seconds",
            (|c: &ClusterTimings| &c.connect) as fn(&ClusterTimings) -> &HistogramTotals,
        ),
        (
            "ringway_upstream_first_byte_seconds",
            |c: &ClusterTimings| &c.first_byte,
        ),
    ] {
        families::header(out, name);
        for c in &t.clusters {
            series(
                out,
                name,
                &format!("cluster=\"{}\"", escape(&c.name)),
                pick(c),
            );
        }
    }
}

/// The `clusters` timing section of `/stats`: per cluster, the request
/// duration quantiles and the connect and first-byte counts.
pub fn json(t: &TimingFigures) -> Value {
    let clusters: Vec<Value> = t
        .clusters
        .iter()
        .map(|c| {
            let q = c.quantiles;
            json!({
                "cluster": &*c.name,
                "requests": q.count,
                "duration_us": { "p50": q.p50_us, "p99": q.p99_us, "p999": q.p999_us },
                "connects": c.connect.count(),
                "first_bytes": c.first_byte.count(),
            })
        })
        .collect();
    let connections: Vec<Value> = t
        .connections
        .iter()
        .map(|(l, h)| json!({ "listener": &**l, "closed": h.count() }))
        .collect();
    json!({ "clusters": clusters, "connections": connections })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::latency::{Fine, Histogram as Buckets};
    use std::time::Duration;

    #[test]
    fn quantiles_come_within_a_cell() {
        let fine = Fine::default();
        for ms in 1..=1000u64 {
            fine.record(Duration::from_micros(ms * 1000));
        }
        let mut t = FineTotals::default();
        fine.add_to(&mut t);
        let q = Quantiles::of(&t);
        assert_eq!(q.count, 1000);
        let near = |got: u64, want: u64| got >= want && (got - want) * 32 <= want;
        assert!(near(q.p50_us, 500_000), "{q:?}");
        assert!(near(q.p99_us, 990_000), "{q:?}");
        assert!(near(q.p999_us, 999_000), "{q:?}");
        assert_eq!(Quantiles::of(&FineTotals::default()), Quantiles::default());
    }

    #[test]
    fn a_series_is_cumulative_and_ends_in_inf() {
        let h = Buckets::default();
        h.record(Duration::from_millis(2));
        h.record(Duration::from_millis(20));
        let mut out = String::new();
        series(&mut out, "x_seconds", "cluster=\"c\"", &h.totals());
        assert!(
            out.contains("x_seconds_bucket{cluster=\"c\",le=\"0.001\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{cluster=\"c\",le=\"0.0025\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{cluster=\"c\",le=\"0.025\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{cluster=\"c\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_sum{cluster=\"c\"} 0.022000000\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_count{cluster=\"c\"} 2\n"), "{out}");
    }
}
