//! The report as JSON, for scripts.

use serde_json::{json, Value};

use super::super::load::{Counts, ErrorKind};
use super::{spread_of, PhaseKind, PhaseResult, RunReport};

impl RunReport {
    /// The report as JSON.
    pub fn json(&self) -> Value {
        let clk = self.clk_tck;
        let phase_json = |p: &PhaseResult| {
            json!({
                "round": p.round,
                "phase": p.kind.name(),
                "attempt": p.attempt,
                "disturbed": p.disturbed,
                "other_work_pct": p.foreign_pct,
                "ticks_lost_pct": p.lost_pct,
                "seconds": p.seconds,
                "ok": p.counts.ok,
                "errors": counts_json(&p.counts),
                "requests_per_second": p.rps(),
                "latency_p50_us": p.p50_us,
                "latency_p99_us": p.p99_us,
                "worker_ticks": p.worker_ticks,
                "control_ticks": p.control_ticks,
                "process_ticks": p.process_ticks,
                "worker_cpu_us_per_request": finite(p.worker_us_per_request(clk)),
                "cores_busy_pct": p.cores.iter().map(|c| json!({"core": c.core, "pct": c.pct})).collect::<Vec<_>>(),
                "tables_published": p.published,
                "puts_failed": p.put_failed,
                "puts_late": p.late,
                "puts_skipped": p.skipped,
                "bench_ticks": p.bench_ticks,
            })
        };
        let phases: Vec<Value> = self.phases.iter().map(phase_json).collect();
        let discarded: Vec<Value> = self.discarded.iter().map(phase_json).collect();
        let quiet = self.of_kind(PhaseKind::Quiet);
        let churn = self.of_kind(PhaseKind::Churn);
        let q_rps = spread_of(&quiet, |p| p.rps());
        let c_rps = spread_of(&churn, |p| p.rps());
        let q_cpu = spread_of(&quiet, |p| p.worker_us_per_request(clk));
        let c_cpu = spread_of(&churn, |p| p.worker_us_per_request(clk));
        let h = &self.put_rtt;
        json!({
            "header": self.header.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "command": self.command,
            "clk_tck": clk,
            "phases": phases,
            "discarded_phases": discarded,
            "summary": {
                "throughput_ratio": finite(c_rps.median / q_rps.median),
                "worker_cpu_per_request_ratio": finite(c_cpu.median / q_cpu.median),
                "quiet_requests_per_second_median": finite(q_rps.median),
                "churn_requests_per_second_median": finite(c_rps.median),
                "quiet_worker_cpu_us_per_request_median": finite(q_cpu.median),
                "churn_worker_cpu_us_per_request_median": finite(c_cpu.median),
            },
            "request_errors": counts_json(&self.request_errors()),
            "outside_phases": { "ok": self.outside.ok, "errors": counts_json(&self.outside) },
            "publish_latency_us": self.publish.map(|p| json!({"count": p.count, "p50": p.p50, "p99": p.p99, "max": p.max})),
            "put_rtt_us": { "count": h.len(), "p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "max": h.max() },
            "put_failures": self.put_failures,
            "generations": { "start": self.generations.0, "end": self.generations.1 },
            "ringway_totals": self.ringway_totals,
            "origin": { "served": self.origin.0, "errors": self.origin.1 },
            "ringway_exit": match &self.ringway_exit { Ok(c) => json!(c), Err(e) => json!(e) },
            "failures": self.failures(),
            "pass": self.failures().is_empty(),
        })
    }
}

fn counts_json(counts: &Counts) -> Value {
    let mut map = serde_json::Map::new();
    for kind in ErrorKind::ALL {
        map.insert(kind.name().replace(' ', "_"), json!(counts.of(kind)));
    }
    map.insert("total".into(), json!(counts.error_total()));
    Value::Object(map)
}

/// JSON has no NaN: `null` instead.
fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}
