//! `/stats` (JSON) and `/metrics` (Prometheus text format 0.0.4) from the
//! agent's figures and copies of every worker's counters.

use std::fmt::Write;

use dataplane::link::WorkerLink;
use dataplane::rt::RingStats;
use dataplane::stats::WorkerStats;
use serde_json::{json, Map, Value};

/// The agent's own figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentFigures {
    /// Newest published generation.
    pub generation: u64,
    /// Every worker runs the first table.
    pub ready: bool,
    /// Reloads applied.
    pub reloads: u64,
    /// Reloads refused.
    pub reload_failures: u64,
    /// Publications measured.
    pub publish_count: u64,
    /// Publish latency percentiles and total, in microseconds.
    pub publish_p50_us: u64,
    /// 99th percentile.
    pub publish_p99_us: u64,
    /// Largest.
    pub publish_max_us: u64,
    /// Sum of all.
    pub publish_sum_us: u64,
}

/// One worker's counters, copied once so that `/stats` and `/metrics` each
/// show one consistent read per worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerFigures {
    /// Worker index.
    pub index: usize,
    /// Its core.
    pub core: usize,
    /// The generation it runs.
    pub generation: u64,
    /// Its counters.
    pub stats: WorkerStats,
    /// Its ring's counters.
    pub ring: RingStats,
}

impl WorkerFigures {
    /// Reads a worker's counters through its link.
    pub fn read(link: &WorkerLink) -> Self {
        Self {
            index: link.index(),
            core: link.core(),
            generation: link.acked(),
            stats: link.stats(),
            ring: link.ring_stats(),
        }
    }
}

/// Every per-worker counter: its JSON name, metric name, metric type, help
/// text and how to read it. One list, so that `/stats` and `/metrics` can
/// never disagree on what they show.
struct Field {
    json: &'static str,
    metric: &'static str,
    kind: &'static str,
    help: &'static str,
    get: fn(&WorkerStats) -> u64,
}

const FIELDS: &[Field] = &[
    Field {
        json: "accepted",
        metric: "ringway_connections_accepted_total",
        kind: "counter",
        help: "Client connections accepted.",
        get: |s| s.accepted,
    },
    Field {
        json: "active",
        metric: "ringway_connections_active",
        kind: "gauge",
        help: "Client connections open now.",
        get: |s| s.active,
    },
    Field {
        json: "bytes_from_clients",
        metric: "ringway_bytes_from_clients_total",
        kind: "counter",
        help: "Bytes received from clients and sent upstream.",
        get: |s| s.bytes_from_clients,
    },
    Field {
        json: "bytes_from_upstreams",
        metric: "ringway_bytes_from_upstreams_total",
        kind: "counter",
        help: "Bytes received from upstreams and sent to clients.",
        get: |s| s.bytes_from_upstreams,
    },
    Field {
        json: "copied_bytes",
        metric: "ringway_copied_bytes_total",
        kind: "counter",
        help: "Bytes copied in userspace between buffers (0 on the TCP path).",
        get: |s| s.copied_bytes,
    },
    Field {
        json: "accept_errors",
        metric: "ringway_accept_errors_total",
        kind: "counter",
        help: "Accepts that failed, e.g. out of file descriptors.",
        get: |s| s.accept_errors,
    },
    Field {
        json: "connect_failures",
        metric: "ringway_upstream_connect_failures_total",
        kind: "counter",
        help: "Upstream connects refused or otherwise failed.",
        get: |s| s.connect_failures,
    },
    Field {
        json: "connect_timeouts",
        metric: "ringway_upstream_connect_timeouts_total",
        kind: "counter",
        help: "Upstream connects that hit the cluster's connect timeout.",
        get: |s| s.connect_timeouts,
    },
    Field {
        json: "no_upstream",
        metric: "ringway_no_upstream_total",
        kind: "counter",
        help: "Client connections reset because no endpoint answered.",
        get: |s| s.no_upstream,
    },
    Field {
        json: "resets",
        metric: "ringway_resets_total",
        kind: "counter",
        help: "Resets received on one side and passed on to the other.",
        get: |s| s.resets,
    },
    Field {
        json: "idle_timeouts",
        metric: "ringway_idle_timeouts_total",
        kind: "counter",
        help: "Connections closed by the idle timeout.",
        get: |s| s.idle_timeouts,
    },
    Field {
        json: "drain_cuts",
        metric: "ringway_drain_cuts_total",
        kind: "counter",
        help: "Connections of a removed listener closed at its drain timeout.",
        get: |s| s.drain_cuts,
    },
    Field {
        json: "bind_failures",
        metric: "ringway_listener_bind_failures_total",
        kind: "counter",
        help: "Listeners of a new table a worker could not bind.",
        get: |s| s.bind_failures,
    },
];

/// A ring counter: JSON name, metric name, help, getter.
type RingField = (
    &'static str,
    &'static str,
    &'static str,
    fn(&RingStats) -> u64,
);

const RING_FIELDS: &[RingField] = &[
    (
        "sqes",
        "ringway_ring_sqes_total",
        "Submission queue entries handed to the kernel.",
        |r| r.submitted,
    ),
    (
        "cqes",
        "ringway_ring_cqes_total",
        "Completion queue entries reaped.",
        |r| r.completed,
    ),
    (
        "enters",
        "ringway_ring_enters_total",
        "io_uring_enter calls.",
        |r| r.enters,
    ),
    (
        "enobufs",
        "ringway_ring_enobufs_total",
        "Receives that found the buffer ring empty.",
        |r| r.enobufs,
    ),
    (
        "rearms",
        "ringway_ring_rearms_total",
        "Multishot operations re-armed after they ended.",
        |r| r.rearms,
    ),
];

/// `/stats` as JSON.
pub fn stats_json(agent: &AgentFigures, workers: &[WorkerFigures]) -> Value {
    let mut totals = Map::new();
    for f in FIELDS {
        let sum: u64 = workers.iter().map(|w| (f.get)(&w.stats)).sum();
        totals.insert(f.json.to_owned(), json!(sum));
    }
    let workers: Vec<Value> = workers
        .iter()
        .map(|w| {
            let mut obj = Map::new();
            obj.insert("index".into(), json!(w.index));
            obj.insert("core".into(), json!(w.core));
            obj.insert("generation".into(), json!(w.generation));
            for f in FIELDS {
                obj.insert(f.json.into(), json!((f.get)(&w.stats)));
            }
            let ring: Map<String, Value> = RING_FIELDS
                .iter()
                .map(|(name, _, _, get)| ((*name).to_owned(), json!(get(&w.ring))))
                .collect();
            obj.insert("ring".into(), Value::Object(ring));
            Value::Object(obj)
        })
        .collect();
    json!({
        "generation": agent.generation,
        "ready": agent.ready,
        "reloads": agent.reloads,
        "reload_failures": agent.reload_failures,
        "publish_latency_us": {
            "count": agent.publish_count,
            "p50": agent.publish_p50_us,
            "p99": agent.publish_p99_us,
            "max": agent.publish_max_us,
        },
        "totals": totals,
        "workers": workers,
    })
}

/// `/metrics` in the Prometheus text exposition format.
pub fn metrics_text(agent: &AgentFigures, workers: &[WorkerFigures]) -> String {
    let mut out = String::with_capacity(4096);
    let mut scalar = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    scalar(
        "ringway_config_generation",
        "gauge",
        "Generation of the newest published routing table.",
        agent.generation,
    );
    scalar(
        "ringway_config_reloads_total",
        "counter",
        "Configuration reloads applied.",
        agent.reloads,
    );
    scalar(
        "ringway_config_reload_failures_total",
        "counter",
        "Configuration reloads refused; the running configuration kept serving.",
        agent.reload_failures,
    );
    scalar(
        "ringway_ready",
        "gauge",
        "1 once every worker runs the first routing table.",
        u64::from(agent.ready),
    );

    let name = "ringway_publish_latency_seconds";
    let _ = write!(
        out,
        "# HELP {name} From handing a routing table to the workers until the last one runs it.\n\
         # TYPE {name} summary\n"
    );
    for (q, us) in [
        ("0.5", agent.publish_p50_us),
        ("0.99", agent.publish_p99_us),
        ("1", agent.publish_max_us),
    ] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", seconds(us));
    }
    let _ = writeln!(out, "{name}_sum {}", seconds(agent.publish_sum_us));
    let _ = writeln!(out, "{name}_count {}", agent.publish_count);

    per_worker(
        &mut out,
        "ringway_worker_generation",
        "gauge",
        "Generation of the routing table the worker runs.",
        workers,
        |w| w.generation,
    );
    for f in FIELDS {
        per_worker(&mut out, f.metric, f.kind, f.help, workers, |w| {
            (f.get)(&w.stats)
        });
    }
    for (_, metric, help, get) in RING_FIELDS {
        per_worker(&mut out, metric, "counter", help, workers, |w| get(&w.ring));
    }
    out
}

fn per_worker(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    workers: &[WorkerFigures],
    value: impl Fn(&WorkerFigures) -> u64,
) {
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    for w in workers {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.index, value(w));
    }
}

/// Microseconds as seconds, exactly (no float rounding in the text).
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(index: usize, accepted: u64) -> WorkerFigures {
        WorkerFigures {
            index,
            core: index,
            generation: 3,
            stats: WorkerStats {
                accepted,
                ..WorkerStats::default()
            },
            ring: RingStats::default(),
        }
    }

    #[test]
    fn every_metric_family_has_help_and_type_once() {
        let text = metrics_text(&AgentFigures::default(), &[worker(0, 1), worker(1, 2)]);
        let mut families = std::collections::HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().expect("a sample has a name");
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            families.insert(family.to_owned());
        }
        for family in families {
            assert_eq!(
                text.matches(&format!("# HELP {family} ")).count(),
                1,
                "{family}"
            );
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
        assert!(text.contains("ringway_connections_accepted_total{worker=\"1\"} 2\n"));
    }

    #[test]
    fn totals_sum_the_workers() {
        let v = stats_json(&AgentFigures::default(), &[worker(0, 1), worker(1, 2)]);
        assert_eq!(v["totals"]["accepted"], 3);
        assert_eq!(v["workers"][1]["accepted"], 2);
        assert_eq!(v["workers"][0]["ring"]["sqes"], 0);
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(1), "0.000001");
        assert_eq!(seconds(2_500_000), "2.500000");
    }
}
