//! `ringway stats`: the JSON of `/stats` as a table for a terminal.

use std::fmt::Write;

use serde_json::Value;

/// Worker columns: header and JSON key.
const COLUMNS: &[(&str, &str)] = &[
    ("worker", "index"),
    ("core", "core"),
    ("gen", "generation"),
    ("accepted", "accepted"),
    ("active", "active"),
    ("from_clients", "bytes_from_clients"),
    ("from_upstreams", "bytes_from_upstreams"),
    ("copied", "copied_bytes"),
];

/// Counters shown only when they are not zero.
const ERRORS: &[&str] = &[
    "accept_errors",
    "refused",
    "connect_failures",
    "connect_timeouts",
    "connect_local_failures",
    "pool_unsolicited",
    "no_upstream",
    "resets",
    "idle_timeouts",
    "drain_cuts",
    "bind_failures",
];

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
        "publish latency: p50 {} us, p99 {} us, max {} us over {} publications\n",
        latency["p50"], latency["p99"], latency["max"], latency["count"],
    );
    let mut rows: Vec<Vec<String>> = vec![COLUMNS.iter().map(|(h, _)| h.to_string()).collect()];
    let workers = v["workers"].as_array().cloned().unwrap_or_default();
    for w in &workers {
        rows.push(COLUMNS.iter().map(|(_, k)| w[k].to_string()).collect());
    }
    let mut total: Vec<String> = vec!["total".into(), String::new(), String::new()];
    total.extend(COLUMNS[3..].iter().map(|(_, k)| v["totals"][k].to_string()));
    rows.push(total);
    let widths: Vec<usize> = (0..COLUMNS.len())
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
    let errors: Vec<String> = ERRORS
        .iter()
        .filter_map(|k| {
            let n = v["totals"][k].as_u64().unwrap_or(0);
            (n > 0).then(|| format!("{k}={n}"))
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
    for w in &workers {
        let r = &w["ring"];
        let _ = writeln!(
            out,
            "ring of worker {}: sqes={} cqes={} enters={} enobufs={} rearms={} \
             enter_retries={} cq_dropped={} cancel_failures={}",
            w["index"],
            r["sqes"],
            r["cqes"],
            r["enters"],
            r["enobufs"],
            r["rearms"],
            r["enter_retries"],
            r["cq_dropped"],
            r["cancel_failures"]
        );
        if let Some(groups) = w["buffers"].as_object() {
            for (group, b) in groups {
                let _ = writeln!(
                    out,
                    "buffers of worker {} ({group}): in_use={}/{} enobufs={} copied={} copied_bytes={}",
                    w["index"],
                    b["in_use"],
                    b["capacity"],
                    b["enobufs"],
                    b["copied"],
                    b["copied_bytes"]
                );
            }
        }
    }
    out
}
