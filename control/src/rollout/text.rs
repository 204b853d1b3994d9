//! Rollouts as `ringway stats` and `ringway rollout status` print them,
//! from the JSON of the admin API.

use std::fmt::Write as _;

use serde_json::Value;

/// One line for rollout `r`: where it stands and its last decision.
pub fn line(r: &Value) -> String {
    let mut out = format!(
        "rollout {}/{}: {}, canary {} {}% / stable {} {}%",
        r["listener"].as_str().unwrap_or("?"),
        r["route"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        r["canary"].as_str().unwrap_or("?"),
        r["canary_weight"],
        r["stable"].as_str().unwrap_or("?"),
        r["stable_weight"],
    );
    let steps = r["steps"].as_array().map_or(0, Vec::len);
    let _ = write!(out, ", step {} of {steps}", r["step"]);
    if let Some(next) = r["next_step"].as_u64() {
        let _ = write!(out, " (next {next}%)");
    }
    let last = &r["last_decision"];
    if let Some(kind) = last["decision"].as_str() {
        let _ = write!(
            out,
            "; last: {kind} at +{}: {}",
            seconds(&last["at_ms"]),
            last["reason"].as_str().unwrap_or("")
        );
    }
    out
}

/// Rollout `r` in full: its line, its bounds and its decision history.
pub fn status(r: &Value) -> String {
    let mut out = line(r);
    out.push('\n');
    let _ = writeln!(
        out,
        "  every {}, at least {} requests a side; roll back above {:.2} points of error rate or {}x the stable p99 (from {} us)",
        seconds(&r["interval_ms"]),
        r["min_requests"],
        r["max_error_rate_delta"].as_f64().unwrap_or(0.0) * 100.0,
        r["max_p99_ratio"],
        r["min_p99_us"],
    );
    let _ = writeln!(out, "  history:");
    for d in r["history"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "    +{:>8} {:<8} canary {:>3} stable {:>3}",
            seconds(&d["at_ms"]),
            d["decision"].as_str().unwrap_or("?"),
            d["canary_weight"],
            d["stable_weight"],
        );
        for side in ["canary", "stable"] {
            let s = &d[side];
            if s.is_object() {
                let _ = write!(
                    out,
                    " | {side} {} req {} fail ({:.2}%) p99 {}",
                    s["requests"],
                    s["failures"],
                    s["error_rate"].as_f64().unwrap_or(0.0) * 100.0,
                    s["p99_us"]
                        .as_u64()
                        .map_or("-".to_owned(), |us| format!("{us} us")),
                );
            }
        }
        if let Some(g) = d["generation"].as_u64() {
            let _ = write!(out, " | generation {g}");
        }
        let _ = writeln!(out, " | {}", d["reason"].as_str().unwrap_or(""));
    }
    out
}

/// Milliseconds as seconds with a tenth.
fn seconds(ms: &Value) -> String {
    format!("{:.1}s", ms.as_u64().unwrap_or(0) as f64 / 1000.0)
}
