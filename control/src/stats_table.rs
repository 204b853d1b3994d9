//! `ringway stats`: the JSON of `/stats` as a table for a terminal.
//!
//! What it shows comes from the counters' declarations
//! ([`dataplane::counter::vocabulary`]): the worker's series marked as
//! columns make the table, the rest are listed on the `errors:` line once
//! they are not zero, and the ring's and buffer pools' series are listed
//! per worker. The certificates in service close it, with the time each
//! has left.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use dataplane::buf::PoolStats;
use dataplane::counter::vocabulary::{Cli, Declared};
use dataplane::rt::RingStats;
use dataplane::stats::WorkerStats;
use serde_json::Value;

/// The columns before the counters: header and JSON key.
const LEADING: [(&str, &str); 3] = [("worker", "index"), ("core", "core"), ("gen", "generation")];

/// Renders the statistics as text.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let latency = &v["publish_latency_us"];
    let _ = writeln!(
        out,
        "generation {} ({}), reloads {} applied / {} refused",
        v["generation"],
        if v["ready"].as_bool() == Some(true) {
            "ready"
        } else {
            "not ready"
        },
        v["reloads"],
        v["reload_failures"],
    );
    let _ = writeln!(
        out,
        "io backend: {}",
        v["io_backend"].as_str().unwrap_or("unknown")
    );
    let _ = writeln!(
        out,
        "publish latency: p50 {} us, p99 {} us, max {} us over {} publications\n",
        latency["p50"], latency["p99"], latency["max"], latency["count"],
    );
    let columns: Vec<(&str, &str)> = LEADING
        .into_iter()
        .chain(WorkerStats::FIELDS.iter().filter_map(|f| match f.cli {
            Cli::Column(header) => Some((header, f.json)),
            Cli::Listed => None,
        }))
        .collect();
    let mut rows: Vec<Vec<String>> = vec![columns.iter().map(|(h, _)| h.to_string()).collect()];
    let workers = v["workers"].as_array().cloned().unwrap_or_default();
    for w in &workers {
        rows.push(columns.iter().map(|(_, k)| w[k].to_string()).collect());
    }
    let mut total: Vec<String> = vec!["total".into(), String::new(), String::new()];
    total.extend(
        columns[LEADING.len()..]
            .iter()
            .map(|(_, k)| v["totals"][k].to_string()),
    );
    rows.push(total);
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let errors: Vec<String> = WorkerStats::FIELDS
        .iter()
        .filter(|f| f.cli == Cli::Listed)
        .filter_map(|f| {
            let n = v["totals"][f.json].as_u64().unwrap_or(0);
            (n > 0).then(|| format!("{}={n}", f.json))
        })
        .collect();
    let _ = writeln!(
        out,
        "\nerrors: {}",
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(" ")
        }
    );
    balance(&mut out, &v["balance"]);
    quantiles(&mut out, &v["latency"]);
    for w in &workers {
        let _ = writeln!(
            out,
            "ring of worker {}:{}",
            w["index"],
            listed::<RingStats>(&w["ring"])
        );
        if let Some(groups) = w["buffers"].as_object() {
            for (group, b) in groups {
                let _ = writeln!(
                    out,
                    "buffers of worker {} ({group}):{}",
                    w["index"],
                    listed::<PoolStats>(b)
                );
            }
        }
    }
    for r in v["rollouts"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}", crate::rollout::text::line(r));
    }
    if let Some(certs) = v["tls_certificates"].as_array().filter(|c| !c.is_empty()) {
        let _ = writeln!(out, "tls certificates:");
        for c in certs {
            let _ = writeln!(
                out,
                "  {} {}: {} expires {} ({})",
                c["owner"].as_str().unwrap_or("?"),
                c["name"].as_str().unwrap_or("?"),
                c["cert"].as_str().unwrap_or("?"),
                c["not_after"].as_i64().map_or("?".to_owned(), date),
                c["expiry_seconds"].as_i64().map_or("?".to_owned(), left),
            );
        }
    }
    out
}

/// The per-core balance: each worker's request rate, busy share and open
/// connections over the window, and the imbalance of each.
fn balance(out: &mut String, b: &Value) {
    let Some(workers) = b["workers"].as_array() else {
        return;
    };
    let _ = writeln!(
        out,
        "balance over the last {:.1}s (busiest / mean: requests {:.2}, busy {:.2}, connections {:.2}):",
        b["window_seconds"].as_f64().unwrap_or(0.0),
        b["imbalance"]["requests"].as_f64().unwrap_or(1.0),
        b["imbalance"]["busy"].as_f64().unwrap_or(1.0),
        b["imbalance"]["connections"].as_f64().unwrap_or(1.0),
    );
    for w in workers {
        let _ = writeln!(
            out,
            "  worker {}: {:.1} req/s, busy {:.1}%, {} connections",
            w["index"],
            w["requests_per_second"].as_f64().unwrap_or(0.0),
            w["busy"].as_f64().unwrap_or(0.0) * 100.0,
            w["connections"],
        );
    }
}

/// Each cluster's request duration quantiles.
fn quantiles(out: &mut String, l: &Value) {
    let Some(clusters) = l["clusters"].as_array() else {
        return;
    };
    let ms = |v: &Value| format!("{:.3}", v.as_f64().unwrap_or(0.0) / 1000.0);
    for c in clusters {
        let d = &c["duration_us"];
        let _ = writeln!(
            out,
            "cluster {}: {} requests, p50 {} ms, p99 {} ms, p99.9 {} ms",
            c["cluster"].as_str().unwrap_or("?"),
            c["requests"],
            ms(&d["p50"]),
            ms(&d["p99"]),
            ms(&d["p999"]),
        );
    }
}

/// `seconds` since the epoch as an RFC 3339 date.
fn date(seconds: i64) -> String {
    let at = match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH.checked_add(Duration::from_secs(after)),
        Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(seconds.unsigned_abs())),
    };
    at.map_or_else(
        || format!("@{seconds}"),
        |t| humantime::format_rfc3339_seconds(t).to_string(),
    )
}

/// Time left in days and hours (or minutes, under an hour), or how long
/// ago it ran out.
fn left(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let span = if s >= 86_400 {
        format!("{}d {}h", s / 86_400, s % 86_400 / 3_600)
    } else if s >= 3_600 {
        format!("{}h {}m", s / 3_600, s % 3_600 / 60)
    } else {
        format!("{}m {}s", s / 60, s % 60)
    };
    if seconds < 0 {
        format!("expired {span} ago")
    } else {
        format!("in {span}")
    }
}

/// ` name=value` for every declared series of `S`, read from `v`.
fn listed<S: Declared>(v: &Value) -> String {
    S::FIELDS
        .iter()
        .map(|f| format!(" {}={}", f.json, v[f.json]))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn balance_and_quantiles_are_shown() {
        let v = json!({
            "balance": {
                "window_seconds": 10.0,
                "imbalance": { "requests": 1.9, "busy": 1.5, "connections": 2.0 },
                "workers": [
                    { "index": 0, "requests_per_second": 950.0, "busy": 0.75, "connections": 4 },
                    { "index": 1, "requests_per_second": 50.0, "busy": 0.25, "connections": 0 },
                ],
            },
            "latency": { "clusters": [
                { "cluster": "api", "requests": 12, "duration_us": { "p50": 1500, "p99": 20000, "p999": 31000 } },
            ] },
        });
        let text = render(&v);
        assert!(text.contains("balance over the last 10.0s (busiest / mean: requests 1.90, busy 1.50, connections 2.00):\n"), "{text}");
        assert!(
            text.contains("  worker 0: 950.0 req/s, busy 75.0%, 4 connections\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "cluster api: 12 requests, p50 1.500 ms, p99 20.000 ms, p99.9 31.000 ms\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_io_backend_follows_the_generation_line() {
        for backend in ["io_uring", "epoll"] {
            let text = render(&json!({ "generation": 1, "ready": true, "io_backend": backend }));
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[0].starts_with("generation 1 (ready)"), "{text}");
            assert_eq!(lines[1], format!("io backend: {backend}"), "{text}");
        }
    }

    #[test]
    fn certificates_close_the_table_with_their_time_left() {
        let v = json!({
            "tls_certificates": [
                { "owner": "listener", "name": "web", "cert": "/etc/web.pem",
                  "not_after": 1_924_992_000, "expiry_seconds": 90_061 },
                { "owner": "cluster", "name": "api", "cert": "/etc/api.pem",
                  "not_after": 0, "expiry_seconds": -3_725 },
            ]
        });
        let text = render(&v);
        assert!(
            text.contains(
                "tls certificates:\n  listener web: /etc/web.pem expires 2031-01-01T00:00:00Z (in 1d 1h)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  cluster api: /etc/api.pem expires 1970-01-01T00:00:00Z (expired 1h 2m ago)\n"
            ),
            "{text}"
        );
        assert!(!render(&json!({"tls_certificates": []})).contains("tls certificates"));
    }
}
