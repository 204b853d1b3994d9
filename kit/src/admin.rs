//! The test conveniences around ringway's admin API (docs/admin.md): the
//! client itself is the product's own ([`control::admin::client`], the one
//! `ringway stats` and `ringway reload` use), re-exported here; this module
//! adds what tests and benches want on top of it: [`get`] and [`post`] that
//! panic with a message, a wait for `/ready`, and readers of `/stats` (JSON)
//! and `/metrics` (Prometheus text format).
//!
//! Three ways to send requests (see the client's documentation):
//! [`request`] (one request on a connection of its own), [`Connection`]
//! (several requests on one kept-alive connection, exactly as written) and
//! [`AdminClient`] (kept alive, opened again when the server closed it
//! while idle).

use std::net::SocketAddr;
use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};

pub use control::admin::client::{
    read_response, request, AdminClient, Connection, Response, CONNECT_TIMEOUT, IO_TIMEOUT,
};

use crate::wait::poll;

/// `GET path` on a connection of its own; panics if the request fails.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, None)
        .unwrap_or_else(|e| panic!("GET {path} from the admin API at {addr}: {e}"))
}

/// `POST path` with `body`; panics if the request fails.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(addr, "POST", path, Some(body))
        .unwrap_or_else(|e| panic!("POST {path} to the admin API at {addr}: {e}"))
}

/// Polls `GET /ready` until it answers 200 and returns that response.
/// Refused connections and other answers are retried: the API may not be up
/// yet. Panics after `timeout`, with the last outcome.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> Response {
    poll(
        &format!("GET /ready at {addr} answers 200"),
        timeout,
        || match request(addr, "GET", "/ready", None) {
            Ok(response) if response.status == 200 => Ok(response),
            Ok(response) => Err(format!("{} {:?}", response.status, response.body)),
            Err(e) => Err(e.to_string()),
        },
    )
}

/// Polls `/stats` until `generation` is the newest published one and every
/// worker runs it, and returns those stats; panics after `timeout`.
pub fn wait_generation(addr: SocketAddr, generation: u64, timeout: Duration) -> Stats {
    poll(
        &format!("every worker runs generation {generation}"),
        timeout,
        || {
            let stats = stats(addr);
            let workers = stats.worker_generations();
            if stats.generation() == generation && workers.iter().all(|&g| g == generation) {
                Ok(stats)
            } else {
                Err(stats.json.to_string())
            }
        },
    )
}

/// `GET /stats`, checked for a 200 and parsed.
pub fn stats(addr: SocketAddr) -> Stats {
    let response = get(addr, "/stats");
    assert_eq!(response.status, 200, "GET /stats: {response:?}");
    let json = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("GET /stats is not JSON ({e}): {}", response.body));
    Stats { json }
}

/// The JSON of `GET /stats`, with readers that panic, showing the whole
/// document, when a field is missing.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The parsed document.
    pub json: serde_json::Value,
}

impl Stats {
    /// The unsigned integer at JSON pointer `pointer`, e.g.
    /// `/workers/0/generation`.
    pub fn u64(&self, pointer: &str) -> u64 {
        self.json
            .pointer(pointer)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_else(|| panic!("/stats has no unsigned integer at {pointer}: {}", self.json))
    }

    /// The newest published generation.
    pub fn generation(&self) -> u64 {
        self.u64("/generation")
    }

    /// The worker entries.
    pub fn workers(&self) -> &[serde_json::Value] {
        self.json
            .get("workers")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("/stats has no `workers` array: {}", self.json))
    }

    /// The generation each worker runs, in worker order.
    pub fn worker_generations(&self) -> Vec<u64> {
        (0..self.workers().len())
            .map(|i| self.u64(&format!("/workers/{i}/generation")))
            .collect()
    }

    /// A worker counter summed over the workers.
    pub fn sum(&self, counter: &str) -> u64 {
        (0..self.workers().len())
            .map(|i| self.u64(&format!("/workers/{i}/{counter}")))
            .sum()
    }
}

/// `GET /metrics`, checked for a 200 and parsed with `prometheus-parse`.
pub fn metrics(addr: SocketAddr) -> Metrics {
    let response = get(addr, "/metrics");
    assert_eq!(response.status, 200, "GET /metrics: {response:?}");
    let lines = response.body.lines().map(|l| Ok(l.to_owned()));
    let scrape = Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("GET /metrics does not parse ({e}):\n{}", response.body));
    Metrics {
        text: response.body,
        samples: scrape.samples,
    }
}

/// A parsed `/metrics` exposition, and its text.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// The exposition as served.
    pub text: String,
    /// Its samples (a summary's quantiles are one sample; its `_sum` and
    /// `_count` are samples of their own).
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// The samples of metric `name`.
    pub fn of(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.metric == name).collect()
    }

    /// The sum of metric `name` over all its label sets; `None` when there
    /// is no such sample.
    pub fn try_sum(&self, name: &str) -> Option<f64> {
        let samples = self.of(name);
        (!samples.is_empty()).then(|| samples.iter().filter_map(|s| scalar(&s.value)).sum())
    }

    /// Like [`Metrics::try_sum`], but panics, showing the exposition, when
    /// the metric is missing.
    pub fn sum(&self, name: &str) -> f64 {
        self.try_sum(name)
            .unwrap_or_else(|| panic!("no metric {name} in /metrics:\n{}", self.text))
    }
}

/// The value of a counter, gauge or untyped sample.
pub fn scalar(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        Value::Histogram(_) | Value::Summary(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_metrics_over_labels() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\n\
                    a_total{worker=\"0\"} 3\na_total{worker=\"1\"} 4\n\
                    # HELP g A gauge.\n# TYPE g gauge\ng 1\n";
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
        let metrics = Metrics {
            text: text.to_owned(),
            samples: scrape.samples,
        };
        assert_eq!(metrics.sum("a_total"), 7.0);
        assert_eq!(metrics.sum("g"), 1.0);
        assert_eq!(metrics.try_sum("missing"), None);
    }
}
