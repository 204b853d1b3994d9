//! Per-endpoint series with bounded cardinality: each endpoint's
//! requests, failures and request durations, as long as it is an endpoint
//! of its cluster and for `metrics.endpoint_expiry` after it left.
//!
//! A table that drops an endpoint drops its figures with it; the agent
//! keeps them (the cells themselves, so requests still finishing on an
//! older table count too) with the time the endpoint left, and writes
//! them until the expiry passes. Then the label set is gone from
//! `/metrics` for good: endpoints that come and go (autoscaling, rolling
//! restarts) do not leave series behind forever.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::table::tally::{EndpointTallies, EndpointTally, EndpointTotals};
use dataplane::table::Table;

use super::{families, timings};

/// How long the series of an endpoint that left are kept by default.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(10 * 60);

/// One endpoint's figures, and whether it has left.
#[derive(Debug, Clone)]
pub struct EndpointSeriesFigures {
    /// Its cluster.
    pub cluster: Arc<str>,
    /// Its address.
    pub endpoint: SocketAddr,
    /// Its figures, every worker's.
    pub totals: EndpointTotals,
    /// How long ago it left its cluster, if it did.
    pub gone_for: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    tally: Arc<EndpointTally>,
    gone_since: Option<Instant>,
}

/// Every endpoint the agent writes series for.
#[derive(Debug)]
pub struct EndpointSeries {
    expiry: Duration,
    known: HashMap<(Arc<str>, SocketAddr), Entry>,
}

impl EndpointSeries {
    /// None known yet; series of departed endpoints kept for `expiry`.
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            known: HashMap::new(),
        }
    }

    /// Changes how long departed endpoints are kept (a reload).
    pub fn set_expiry(&mut self, expiry: Duration) {
        self.expiry = expiry;
    }

    /// Brings the list up to `table` at `now`: its endpoints are live
    /// (an endpoint that came back is live again, its old figures carried
    /// on only if the table kept its cells), the others departed since the
    /// first time they were missed, and those departed longer than the
    /// expiry are forgotten.
    pub fn reconcile(&mut self, table: &Table, now: Instant) {
        let clusters: Vec<_> = table
            .clusters
            .iter()
            .map(|c| (Arc::clone(&c.name), c.endpoint_tallies.clone()))
            .collect();
        self.reconcile_with(&clusters, now);
    }

    /// [`EndpointSeries::reconcile`] on each cluster's name and endpoint
    /// figures.
    fn reconcile_with(&mut self, clusters: &[(Arc<str>, EndpointTallies)], now: Instant) {
        let mut live = std::collections::HashSet::new();
        for (name, tallies) in clusters {
            for (addr, tally) in tallies.iter() {
                let key = (Arc::clone(name), addr);
                live.insert(key.clone());
                let entry = self.known.entry(key).or_insert_with(|| Entry {
                    tally: Arc::clone(tally),
                    gone_since: None,
                });
                entry.tally = Arc::clone(tally);
                entry.gone_since = None;
            }
        }
        for (key, entry) in &mut self.known {
            if !live.contains(key) {
                entry.gone_since.get_or_insert(now);
            }
        }
        let expiry = self.expiry;
        self.known.retain(|_, e| {
            e.gone_since
                .is_none_or(|since| now.duration_since(since) < expiry)
        });
    }

    /// The figures of every endpoint written now, sorted by cluster and
    /// address.
    pub fn figures(&self, now: Instant) -> Vec<EndpointSeriesFigures> {
        let mut out: Vec<_> = self
            .known
            .iter()
            .map(|((cluster, endpoint), e)| EndpointSeriesFigures {
                cluster: Arc::clone(cluster),
                endpoint: *endpoint,
                totals: e.tally.totals(),
                gone_for: e.gone_since.map(|s| now.duration_since(s)),
            })
            .collect();
        out.sort_by(|a, b| (&a.cluster, a.endpoint).cmp(&(&b.cluster, b.endpoint)));
        out
    }
}

/// The per-endpoint families.
pub fn metrics(out: &mut String, figures: &[EndpointSeriesFigures], escape: fn(&str) -> String) {
    let labels = |f: &EndpointSeriesFigures| {
        format!(
            "cluster=\"{}\",endpoint=\"{}\"",
            escape(&f.cluster),
            f.endpoint
        )
    };
    for (name, value) in [
        (
            "ringway_upstream_endpoint_requests_total",
            (|t: &EndpointTotals| t.requests) as fn(&EndpointTotals) -> u64,
        ),
        (
            "ringway_upstream_endpoint_failures_total",
            |t: &EndpointTotals| t.failures,
        ),
    ] {
        families::header(out, name);
        for f in figures {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(f), value(&f.totals));
        }
    }
    let name = "ringway_upstream_endpoint_request_duration_seconds";
    families::header(out, name);
    for f in figures {
        timings::series(out, name, &labels(f), &f.totals.duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_departed_endpoint_is_written_until_the_expiry_then_never_again() {
        let t0 = Instant::now();
        let mut series = EndpointSeries::new(Duration::from_secs(60));
        let both = EndpointTallies::new(&[addr(1), addr(2)], 1, None);
        both.of(addr(2))
            .expect("an endpoint")
            .worker(0)
            .requests
            .add(5);
        let mut by_cluster = vec![(Arc::<str>::from("app"), both.clone())];
        let read = |series: &mut EndpointSeries, tallies: &[(Arc<str>, EndpointTallies)], now| {
            series.reconcile_with(tallies, now);
            series.figures(now)
        };
        let f = read(&mut series, &by_cluster, t0);
        assert_eq!(f.len(), 2);
        // Endpoint 2 leaves: written, with its count, until the expiry.
        by_cluster[0].1 = EndpointTallies::new(&[addr(1)], 1, Some(&both));
        let f = read(&mut series, &by_cluster, t0 + Duration::from_secs(1));
        let gone = f
            .iter()
            .find(|f| f.endpoint == addr(2))
            .expect("still written");
        assert_eq!(gone.totals.requests, 5);
        assert_eq!(gone.gone_for, Some(Duration::ZERO));
        let f = read(&mut series, &by_cluster, t0 + Duration::from_secs(60));
        assert!(f.iter().any(|f| f.endpoint == addr(2)));
        let f = read(&mut series, &by_cluster, t0 + Duration::from_secs(61));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].endpoint, addr(1));
    }
}
