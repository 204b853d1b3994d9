//! Each endpoint's health as the node sees it: ejections, returns and
//! spared ejections (every worker's, from the cluster's node-wide cells)
//! and the active checks' verdict, for `/stats`, `/metrics` and the log.
//!
//! An endpoint is listed once it has something to say: an ejection or a
//! spared one, or a cluster with active checks. A table of 10,000 clusters
//! that never ejected anything adds nothing to the scrape.

use std::collections::HashMap;
use std::fmt::Write;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dataplane::table::Table;
use serde_json::{json, Value};

/// One endpoint's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFigures {
    /// Its cluster.
    pub cluster: Arc<str>,
    /// Its address.
    pub endpoint: SocketAddr,
    /// Ejections after consecutive gateway failures, every worker's.
    pub ejections: u64,
    /// Returns after a good probe.
    pub returns: u64,
    /// Ejections the cluster's limit did not allow.
    pub spared: u64,
    /// The active checks' verdict, for a cluster with checks.
    pub healthy: Option<bool>,
}

impl EndpointFigures {
    /// Every endpoint of `table` with something to say, in table order.
    pub fn read(table: &Table) -> Vec<Self> {
        let mut out = Vec::new();
        for cluster in &table.clusters {
            let verdicts = cluster.checks.as_ref().map(|c| &c.verdicts);
            for (i, (endpoint, cells)) in cluster.events.iter().enumerate() {
                let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
                let figures = Self {
                    cluster: Arc::clone(&cluster.name),
                    endpoint,
                    ejections: load(&cells.ejections),
                    returns: load(&cells.returns),
                    spared: load(&cells.spared),
                    healthy: verdicts.map(|v| v.passes(i)),
                };
                if figures.healthy.is_some() || figures.ejections > 0 || figures.spared > 0 {
                    out.push(figures);
                }
            }
        }
        out
    }

    /// Whether some worker may hold it ejected now: an ejection no return
    /// has answered yet (an ejection whose probe never came, the endpoint
    /// having left the traffic, stays counted until it does).
    pub fn ejected(&self) -> bool {
        self.ejections > self.returns
    }
}

/// The `/stats` array.
pub fn json(endpoints: &[EndpointFigures]) -> Value {
    Value::Array(
        endpoints
            .iter()
            .map(|e| {
                json!({
                    "cluster": &*e.cluster,
                    "endpoint": e.endpoint.to_string(),
                    "ejections": e.ejections,
                    "returns": e.returns,
                    "spared": e.spared,
                    "ejected": e.ejected(),
                    "healthy": e.healthy,
                })
            })
            .collect(),
    )
}

/// The `/metrics` families, with `escape` for label values.
pub fn metrics(out: &mut String, endpoints: &[EndpointFigures], escape: fn(&str) -> String) {
    let labels = |e: &EndpointFigures| {
        format!(
            "cluster=\"{}\",endpoint=\"{}\"",
            escape(&e.cluster),
            e.endpoint
        )
    };
    let name = "ringway_endpoint_ejections_total";
    super::families::header(out, name);
    for e in endpoints {
        let _ = writeln!(
            out,
            "{name}{{{},reason=\"consecutive_gateway_failures\"}} {}",
            labels(e),
            e.ejections
        );
    }
    for (name, value) in [
        (
            "ringway_endpoint_returns_total",
            (|e: &EndpointFigures| e.returns) as fn(&EndpointFigures) -> u64,
        ),
        (
            "ringway_endpoint_ejections_spared_total",
            |e: &EndpointFigures| e.spared,
        ),
    ] {
        super::families::header(out, name);
        for e in endpoints {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(e), value(e));
        }
    }
    let name = "ringway_endpoint_healthy";
    super::families::header(out, name);
    for e in endpoints {
        if let Some(healthy) = e.healthy {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(e), u8::from(healthy));
        }
    }
}

/// What the log said last of each endpoint, to log what changed since.
#[derive(Debug, Default)]
pub struct EndpointLog {
    last: HashMap<(Arc<str>, SocketAddr), (u64, u64, u64)>,
}

impl EndpointLog {
    /// Writes a line for each ejection, return and spared ejection since the
    /// last call (several of a kind in one line).
    pub fn write(&mut self, endpoints: &[EndpointFigures], out: &mut impl io::Write) {
        for e in endpoints {
            let key = (Arc::clone(&e.cluster), e.endpoint);
            let now = (e.ejections, e.returns, e.spared);
            let before = self.last.insert(key, now).unwrap_or_default();
            for (what, then, since) in [
                (
                    "ejected after consecutive gateway failures",
                    before.0,
                    now.0,
                ),
                ("back after a good probe", before.1, now.1),
                (
                    "due for ejection but kept in by the cluster's ejection limit",
                    before.2,
                    now.2,
                ),
            ] {
                if since > then {
                    let times = since - then;
                    let times = if times == 1 {
                        String::new()
                    } else {
                        format!(" ({times} times)")
                    };
                    let _ = writeln!(
                        out,
                        "ringway: cluster `{}` endpoint {}: {what}{times}; {} ejections so far",
                        e.cluster, e.endpoint, now.0
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(ejections: u64, returns: u64, spared: u64) -> EndpointFigures {
        EndpointFigures {
            cluster: "app".into(),
            endpoint: "127.0.0.1:8001".parse().expect("addr"),
            ejections,
            returns,
            spared,
            healthy: Some(false),
        }
    }

    #[test]
    fn the_log_says_what_changed_once() {
        let mut log = EndpointLog::default();
        let mut out = Vec::new();
        log.write(&[figures(1, 0, 0)], &mut out);
        log.write(&[figures(1, 0, 0)], &mut out);
        log.write(&[figures(3, 1, 2)], &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "ringway: cluster `app` endpoint 127.0.0.1:8001: ejected after consecutive gateway failures; 1 ejections so far\n\
             ringway: cluster `app` endpoint 127.0.0.1:8001: ejected after consecutive gateway failures (2 times); 3 ejections so far\n\
             ringway: cluster `app` endpoint 127.0.0.1:8001: back after a good probe; 3 ejections so far\n\
             ringway: cluster `app` endpoint 127.0.0.1:8001: due for ejection but kept in by the cluster's ejection limit (2 times); 3 ejections so far\n"
        );
    }

    #[test]
    fn every_family_is_declared_once_with_a_series_per_endpoint() {
        let mut out = String::new();
        let mut healthy = figures(2, 1, 0);
        healthy.healthy = Some(true);
        metrics(&mut out, &[figures(1, 0, 3), healthy], |s| s.to_owned());
        for family in [
            "ringway_endpoint_ejections_total",
            "ringway_endpoint_returns_total",
            "ringway_endpoint_ejections_spared_total",
            "ringway_endpoint_healthy",
        ] {
            assert_eq!(
                out.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{out}"
            );
        }
        assert!(out.contains("ringway_endpoint_ejections_total{cluster=\"app\",endpoint=\"127.0.0.1:8001\",reason=\"consecutive_gateway_failures\"} 1\n"), "{out}");
        assert!(out.contains("ringway_endpoint_ejections_spared_total{cluster=\"app\",endpoint=\"127.0.0.1:8001\"} 3\n"), "{out}");
        assert!(
            out.contains(
                "ringway_endpoint_healthy{cluster=\"app\",endpoint=\"127.0.0.1:8001\"} 0\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "ringway_endpoint_healthy{cluster=\"app\",endpoint=\"127.0.0.1:8001\"} 1\n"
            ),
            "{out}"
        );
        assert!(figures(2, 1, 0).ejected() && !figures(1, 1, 0).ejected());
    }
}
