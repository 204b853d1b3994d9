//! The one declaration of every `/metrics` family the agent writes beside
//! the per-worker counters (those are declared with the counters
//! themselves, `dataplane::counter::vocabulary`): name, type, labels and
//! help. The writers take their `# HELP` and `# TYPE` from here, and the
//! metrics reference (docs/metrics.md, `ringway metrics-reference`) is
//! generated from here and from the counters' declarations, so no family
//! can be written under another name or type than the one documented.

use std::fmt::Write;

use dataplane::buf::PoolStats;
use dataplane::counter::vocabulary::{Declared, Kind};
use dataplane::rt::RingStats;
use dataplane::stats::WorkerStats;

/// A family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, a sum and a count.
    Histogram,
    /// Quantiles, a sum and a count.
    Summary,
}

impl FamilyKind {
    /// The name `# TYPE` gives it.
    pub fn name(self) -> &'static str {
        match self {
            FamilyKind::Counter => "counter",
            FamilyKind::Gauge => "gauge",
            FamilyKind::Histogram => "histogram",
            FamilyKind::Summary => "summary",
        }
    }
}

/// One family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The metric name (with `_total` for a counter).
    pub name: &'static str,
    /// Its type.
    pub kind: FamilyKind,
    /// Its labels, in the order written (`le` and `quantile` left out).
    pub labels: &'static [&'static str],
    /// Its `# HELP` text.
    pub help: &'static str,
}

/// Every family the agent writes besides the declared per-worker
/// counters, in the order `/metrics` writes them.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "ringway_config_generation",
        kind: FamilyKind::Gauge,
        labels: &[],
        help: "Generation of the newest published routing table.",
    },
    Family {
        name: "ringway_config_reloads_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Configuration reloads applied.",
    },
    Family {
        name: "ringway_config_reload_failures_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Configuration reloads refused; the running configuration kept serving.",
    },
    Family {
        name: "ringway_ready",
        kind: FamilyKind::Gauge,
        labels: &[],
        help: "1 once every worker runs the first routing table.",
    },
    Family {
        name: "ringway_io_backend_info",
        kind: FamilyKind::Gauge,
        labels: &["backend"],
        help: "1 for the reactor every worker runs on: io_uring, or epoll where io_uring is refused (runtime.io_backend).",
    },
    Family {
        name: "ringway_publish_latency_seconds",
        kind: FamilyKind::Summary,
        labels: &[],
        help: "From handing a routing table to the workers until the last one runs it.",
    },
    Family {
        name: "ringway_worker_generation",
        kind: FamilyKind::Gauge,
        labels: &["worker"],
        help: "Generation of the routing table the worker runs.",
    },
    Family {
        name: "ringway_http_requests_total",
        kind: FamilyKind::Counter,
        labels: &["listener"],
        help: "HTTP requests received, per listener.",
    },
    Family {
        name: "ringway_http_route_requests_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route"],
        help: "HTTP requests a route matched.",
    },
    Family {
        name: "ringway_http_upstream_requests_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "cluster"],
        help: "HTTP requests a route sent to a cluster.",
    },
    Family {
        name: "ringway_http_responses_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "cluster", "class"],
        help: "Final HTTP responses sent to clients by status class; each is counted at one level: the listener (route=\"\"), the route (cluster=\"\") or the route's cluster.",
    },
    Family {
        name: "ringway_http_request_duration_seconds",
        kind: FamilyKind::Histogram,
        labels: &["listener", "route", "cluster"],
        help: "How long HTTP requests took, from the head read to the last byte of the answer; each request is timed at the one level its final status is counted at (as ringway_http_responses_total), so a sum over route and cluster gives a listener's.",
    },
    Family {
        name: "ringway_http_retries_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "reason"],
        help: "HTTP retries sent to a cluster, by what the attempt before met: unsent (the connection failed as the request went), reset, timeout (per_try_timeout), status (a retried answer).",
    },
    Family {
        name: "ringway_http_retry_budget_exhausted_total",
        kind: FamilyKind::Counter,
        labels: &["cluster"],
        help: "HTTP retries not sent because the cluster's retry budget was spent.",
    },
    Family {
        name: "ringway_http_retry_overflows_total",
        kind: FamilyKind::Counter,
        labels: &["cluster"],
        help: "HTTP retries not sent because the cluster was at its max_retries.",
    },
    Family {
        name: "ringway_http_faults_injected_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "fault"],
        help: "HTTP requests a route's fault injection aborted or delayed on purpose (routes with a fault only). Injected aborts are counted in responses by status, never in errors.",
    },
    Family {
        name: "ringway_tcp_faults_injected_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "fault"],
        help: "TCP connections a listener's fault injection reset at once (abort) or held before the upstream connect (delay), on purpose (listeners with a fault only).",
    },
    Family {
        name: "ringway_http_mirror_requests_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "cluster", "outcome"],
        help: "Requests a route chose to mirror to its mirror cluster, by what became of the copy: answered (the shadow's whole response was read), failed (no connection, a broken one, or no end within the request timeout), dropped (the worker had max_in_flight copies of the route under way), skipped_body (a chunked body, one over max_body, or one not received with the head).",
    },
    Family {
        name: "ringway_http_mirror_in_flight",
        kind: FamilyKind::Gauge,
        labels: &["listener", "route", "cluster"],
        help: "Copies of a route's requests under way to its mirror cluster now, over every worker.",
    },
    Family {
        name: "ringway_http_errors_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "cluster", "reason"],
        help: "HTTP requests that did not get an ordinary proxied answer, by reason (the x-ringway-error value), at the level they were counted.",
    },
    Family {
        name: "ringway_endpoint_ejections_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "endpoint", "reason"],
        help: "Ejections of an endpoint by passive outlier detection, every worker's, by reason.",
    },
    Family {
        name: "ringway_endpoint_returns_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "endpoint"],
        help: "Returns of an ejected endpoint after a good probe, every worker's.",
    },
    Family {
        name: "ringway_endpoint_ejections_spared_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "endpoint"],
        help: "Ejections of an endpoint the cluster's max_ejection_percent or its last endpoint did not allow.",
    },
    Family {
        name: "ringway_endpoint_healthy",
        kind: FamilyKind::Gauge,
        labels: &["cluster", "endpoint"],
        help: "1 while an endpoint passes its cluster's active health checks, 0 while it fails them.",
    },
    Family {
        name: "ringway_connections_rate_limited_total",
        kind: FamilyKind::Counter,
        labels: &["listener"],
        help: "Connections a listener's connection_rate_limit turned away at accept (reset at once), every worker's.",
    },
    Family {
        name: "ringway_authz_decisions_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "rule", "decision"],
        help: "HTTP requests and TCP connections judged by a listener's authorization, by the rule that decided (rule=\"\": the listener's default, no rule matched) and the decision.",
    },
    Family {
        name: "ringway_connection_duration_seconds",
        kind: FamilyKind::Histogram,
        labels: &["listener"],
        help: "How long client connections lasted, from accept to close, per listener.",
    },
    Family {
        name: "ringway_upstream_connect_duration_seconds",
        kind: FamilyKind::Histogram,
        labels: &["cluster"],
        help: "TCP connect times to the endpoints of a cluster (pooled connections are not connects; a TLS handshake is not included).",
    },
    Family {
        name: "ringway_upstream_first_byte_seconds",
        kind: FamilyKind::Histogram,
        labels: &["cluster"],
        help: "From the upstream connection ready for a request (its head goes at once) to the response head, per cluster.",
    },
    Family {
        name: "ringway_worker_busy_seconds_total",
        kind: FamilyKind::Counter,
        labels: &["worker"],
        help: "Time the worker thread ran, outside its waits for completions.",
    },
    Family {
        name: "ringway_worker_busy_ratio",
        kind: FamilyKind::Gauge,
        labels: &["worker"],
        help: "The share of the last seconds (up to 10) the worker thread ran.",
    },
    Family {
        name: "ringway_worker_imbalance",
        kind: FamilyKind::Gauge,
        labels: &["of"],
        help: "The busiest worker over the mean, of request rates and busy shares over the last seconds (up to 10) and of open connections now: 1 is even, the worker count means one worker carries all.",
    },
    Family {
        name: "ringway_access_log_written_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Access log records the writer wrote to their outputs.",
    },
    Family {
        name: "ringway_access_log_write_failures_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Access log records lost because their output could not be opened or written.",
    },
    Family {
        name: "ringway_upstream_endpoint_requests_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "endpoint"],
        help: "HTTP requests whose last attempt went to the endpoint (series of endpoints that left their cluster are kept for metrics.endpoint_expiry).",
    },
    Family {
        name: "ringway_upstream_endpoint_failures_total",
        kind: FamilyKind::Counter,
        labels: &["cluster", "endpoint"],
        help: "Of those, the ones that failed there: a 5xx from the endpoint, or an exchange that broke for a reason not the client's.",
    },
    Family {
        name: "ringway_upstream_endpoint_request_duration_seconds",
        kind: FamilyKind::Histogram,
        labels: &["cluster", "endpoint"],
        help: "How long the HTTP requests whose last attempt went to the endpoint took.",
    },
    Family {
        name: "ringway_trace_spans_exported_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Spans the collector accepted.",
    },
    Family {
        name: "ringway_trace_batches_exported_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Requests (batches of spans) the collector accepted.",
    },
    Family {
        name: "ringway_trace_spans_rejected_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Spans the collector refused for good.",
    },
    Family {
        name: "ringway_trace_spans_backlog_dropped_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Spans dropped unsent because the collector was away and the exporter held its most.",
    },
    Family {
        name: "ringway_trace_spans_abandoned_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Spans still unsent when an exporter stopped.",
    },
    Family {
        name: "ringway_trace_export_failures_total",
        kind: FamilyKind::Counter,
        labels: &[],
        help: "Requests to the collector that failed and were retried.",
    },
    Family {
        name: "ringway_trace_spans_held",
        kind: FamilyKind::Gauge,
        labels: &[],
        help: "Spans the exporter holds unsent now.",
    },
    Family {
        name: "ringway_tls_certificate_expiry_seconds",
        kind: FamilyKind::Gauge,
        labels: &["owner", "name", "cert"],
        help: "Seconds until the certificate's leaf expires (its notAfter); negative once expired.",
    },
    Family {
        name: "ringway_rollout_canary_weight",
        kind: FamilyKind::Gauge,
        labels: &["listener", "route"],
        help: "The canary's share of the rollout route's requests, in percent.",
    },
    Family {
        name: "ringway_rollout_state",
        kind: FamilyKind::Gauge,
        labels: &["listener", "route", "state"],
        help: "1 for the state the rollout is in (progressing, paused, complete, rolled_back, aborted), 0 for the others.",
    },
    Family {
        name: "ringway_rollout_decisions_total",
        kind: FamilyKind::Counter,
        labels: &["listener", "route", "decision"],
        help: "Rollout decisions taken, by kind (start, hold, step, complete, rollback, pause, resume, promote, abort).",
    },
];

/// The declaration of `name`, if it is one of [`FAMILIES`].
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// Writes the `# HELP` and `# TYPE` lines of family `name` from its
/// declaration (an undeclared name, which a unit test rules out, gets
/// none: its samples then read as untyped).
pub fn header(out: &mut String, name: &str) {
    if let Some(f) = family(name) {
        let _ = write!(
            out,
            "# HELP {} {}\n# TYPE {} {}\n",
            f.name,
            f.help,
            f.name,
            f.kind.name()
        );
    }
}

/// Every family `/metrics` can write, the per-worker counters first: the
/// declared ones and [`FAMILIES`].
pub fn all() -> Vec<Family> {
    fn declared<S: Declared>(labels: &'static [&'static str]) -> impl Iterator<Item = Family> {
        S::FIELDS.iter().map(move |f| Family {
            name: f.metric,
            kind: match f.kind {
                Kind::Counter => FamilyKind::Counter,
                Kind::Gauge => FamilyKind::Gauge,
            },
            labels,
            help: f.help,
        })
    }
    declared::<WorkerStats>(&["worker"])
        .chain(declared::<RingStats>(&["worker"]))
        .chain(declared::<PoolStats>(&["worker", "group"]))
        .chain(FAMILIES.iter().copied())
        .collect()
}

/// The metrics reference, as markdown: every family with its type, labels
/// and help.
pub fn reference() -> String {
    let mut out = String::from(
        "# ringway metrics reference\n\n\
         Every family `GET /metrics` writes, generated from the declarations in the \
         source (`ringway metrics-reference` prints this file; a unit test keeps the \
         two the same). Histograms have the buckets 0.0005, 0.001, 0.0025, 0.005, \
         0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 and +Inf seconds. \
         Scrapers that ask for `application/openmetrics-text` get the OpenMetrics \
         format, with exemplars on `ringway_http_request_duration_seconds`.\n\n\
         | family | type | labels | help |\n|---|---|---|---|\n",
    );
    for f in all() {
        let labels = if f.labels.is_empty() {
            "-".to_owned()
        } else {
            f.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            f.name,
            f.kind.name(),
            labels,
            f.help.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_declared_once() {
        let all = all();
        let mut names: Vec<&str> = all.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a family declared twice");
        for f in &all {
            if f.kind == FamilyKind::Counter {
                assert!(f.name.ends_with("_total"), "{}", f.name);
            }
        }
    }

    #[test]
    fn the_reference_in_docs_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md");
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == reference(),
            "docs/metrics.md is not the generated reference; regenerate it with \
             `cargo run -p ringway-control --bin ringway -- metrics-reference > docs/metrics.md`"
        );
    }
}
