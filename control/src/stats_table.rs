//! `ringway stats`: the JSON of `/stats` as a table for a terminal.
//!
//! What it shows comes from the counters' declarations
//! ([`dataplane::counter::vocabulary`]): the worker's series marked as
//! columns make the table, the rest are listed on the `errors:` line once
//! they are not zero, and the ring's and buffer pools' series are listed
//! per worker.

use std::fmt::Write;

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
    out
}

/// ` name=value` for every declared series of `S`, read from `v`.
fn listed<S: Declared>(v: &Value) -> String {
    S::FIELDS
        .iter()
        .map(|f| format!(" {}={}", f.json, v[f.json]))
        .collect()
}
