//! The result of a load run: a summary for people and a JSON document for
//! programs (its schema is in docs/benchmarks.md, "`load --json`").

use std::time::Duration;

use serde_json::{json, Value};

use super::plan::{Mode, Plan};
use super::progress::fmt_us;
use super::record::{ErrorKind, Record};

/// The quantiles of the latency spectrum in the JSON output: evenly spaced
/// in "nines", as the spectrum plot draws them.
pub const SPECTRUM: [f64; 13] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0,
];

/// Version tag of the JSON document; bumped when a field changes meaning.
pub const SCHEMA: &str = "ringway-bench.load/1";

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    /// Every thread's record, merged.
    pub record: Record,
    /// The measured window as it ran.
    pub elapsed: Duration,
    /// Stopped by Ctrl-C.
    pub interrupted: bool,
    /// Why a thread could not run, if one could not.
    pub fatal: Vec<String>,
}

impl Outcome {
    /// Ok requests per second of the measured window.
    pub fn rps(&self) -> f64 {
        per_second(self.record.ok, self.elapsed)
    }

    /// Whether every request succeeded (and there was at least one, or one
    /// byte streamed).
    pub fn clean(&self, plan: &Plan) -> bool {
        let did_work = match plan.mode {
            Mode::Http => self.record.ok > 0,
            Mode::Tcp => self.record.window_bytes_sent > 0,
        };
        self.fatal.is_empty() && self.record.error_total() == 0 && did_work
    }
}

fn per_second(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// The run as a JSON document.
pub fn json(plan: &Plan, out: &Outcome) -> Value {
    let r = &out.record;
    let h = &r.latency;
    let latency = if h.is_empty() {
        Value::Null
    } else {
        json!({
            "count": h.len(),
            "min": h.min(),
            "mean": h.mean(),
            "stdev": h.stdev(),
            "p50": h.value_at_quantile(0.5),
            "p90": h.value_at_quantile(0.9),
            "p99": h.value_at_quantile(0.99),
            "p99_9": h.value_at_quantile(0.999),
            "p99_99": h.value_at_quantile(0.9999),
            "max": h.max(),
        })
    };
    let spectrum: Vec<Value> = if h.is_empty() {
        Vec::new()
    } else {
        SPECTRUM
            .iter()
            .map(|&q| json!({"quantile": q, "latency_us": h.value_at_quantile(q)}))
            .collect()
    };
    let mut errors = serde_json::Map::new();
    errors.insert("total".into(), json!(r.error_total()));
    for kind in ErrorKind::ALL {
        errors.insert(kind.name().into(), json!(r.errors[kind as usize]));
    }
    let tls = match &plan.tls {
        None => Value::Null,
        Some(_) => {
            let n = r.negotiated.as_ref();
            json!({
                "handshakes": {
                    "full": r.handshakes.full,
                    "hello_retries": r.handshakes.hello_retries,
                    "resumed": r.handshakes.resumed,
                },
                "suite": n.map(|n| n.suite.as_str()),
                "group": n.map(|n| n.group.as_str()),
                "alpn": n.and_then(|n| n.alpn.as_deref()),
            })
        }
    };
    json!({
        "schema": SCHEMA,
        "target": plan.target.to_string(),
        "mode": plan.mode.name(),
        "loop": if plan.rate.is_some() { "open" } else { "closed" },
        "rate": plan.rate,
        "connections": plan.connections,
        "cores": plan.cores,
        "keep_alive": plan.keep_alive,
        "warmup_s": plan.warmup.as_secs_f64(),
        "duration_s": plan.duration.as_secs_f64(),
        "elapsed_s": out.elapsed.as_secs_f64(),
        "interrupted": out.interrupted,
        "requests": {
            "ok": r.ok,
            "sent": r.sent,
            "unsent": r.unsent,
            "outside": r.outside,
            "per_second": out.rps(),
        },
        "bytes": {
            "sent": r.bytes_sent,
            "received": r.bytes_received,
            "sent_per_second": per_second(r.window_bytes_sent, out.elapsed),
        },
        "connects": r.connects,
        "tls": tls,
        "errors": errors,
        "first_errors": r.first_errors,
        "fatal": out.fatal,
        "latency_us": latency,
        "spectrum": spectrum,
    })
}

/// The run as a few lines for a person.
pub fn human(plan: &Plan, out: &Outcome) -> String {
    let r = &out.record;
    let mut s = format!("ringway-bench load: {}\n", plan.describe());
    if out.interrupted {
        s.push_str(&format!(
            "  interrupted after {:.2} s: the figures cover that much\n",
            out.elapsed.as_secs_f64()
        ));
    }
    for f in &out.fatal {
        s.push_str(&format!("  could not run: {f}\n"));
    }
    match plan.mode {
        Mode::Http => {
            s.push_str(&format!(
                "  requests   {} ok, {:.1} req/s   (sent {}, unsent {}, outside the window {})\n",
                r.ok,
                out.rps(),
                r.sent,
                r.unsent,
                r.outside
            ));
            let h = &r.latency;
            if h.is_empty() {
                s.push_str("  latency    no request completed\n");
            } else {
                let q = |q: f64| fmt_us(h.value_at_quantile(q));
                s.push_str(&format!(
                    "  latency    p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}\n",
                    q(0.5),
                    q(0.9),
                    q(0.99),
                    q(0.999),
                    q(0.9999),
                    fmt_us(h.max())
                ));
            }
        }
        Mode::Tcp => {
            let bps = per_second(r.window_bytes_sent, out.elapsed);
            s.push_str(&format!(
                "  streamed   {} bytes in the window ({} in all), {:.1} MB/s ({:.2} Gbit/s)\n",
                r.window_bytes_sent,
                r.bytes_sent,
                bps / 1e6,
                bps * 8.0 / 1e9
            ));
        }
    }
    if plan.tls.is_some() {
        let h = &r.handshakes;
        let what = r.negotiated.as_ref().map_or_else(String::new, |n| {
            format!(
                ", {} {} {}",
                n.suite,
                n.group,
                n.alpn.as_deref().unwrap_or("(no ALPN)")
            )
        });
        s.push_str(&format!(
            "  tls        {} full handshakes ({} after a HelloRetryRequest), {} resumed{what}\n",
            h.full, h.hello_retries, h.resumed
        ));
    }
    let kinds: Vec<String> = ErrorKind::ALL
        .iter()
        .map(|&k| format!("{} {}", k.name(), r.errors[k as usize]))
        .collect();
    s.push_str(&format!(
        "  errors     {} ({})\n",
        r.error_total(),
        kinds.join(", ")
    ));
    for e in &r.first_errors {
        s.push_str(&format!("  first {e}\n"));
    }
    s
}
