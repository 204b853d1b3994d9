//! The report's section on access logs and traces: per system and round,
//! the requests carried against the log lines written, ringway's record
//! counters, and the spans traced, exported and received.

use std::fmt::Write as _;

use crate::compare::results::Results;

/// `## Access logs and traces`, when a system logged or traced.
pub fn section(md: &mut String, r: &Results) {
    let Some(setup) = &r.setup.observe else {
        return;
    };
    let _ = writeln!(md, "## Access logs and traces\n");
    if !setup.access_log.is_empty() {
        let _ = writeln!(
            md,
            "Logging every request as a JSON line: {}. After each turn the runner counted the lines of the system's log against the requests it carried (load runs with their warm-up, discarded and profile runs, idle connections, admission checks); ringway's counters were read from `/metrics` just before it stopped (`written` trails `records` by what the writer still buffered). The first lines of each log are kept in `systems/<name>/access.head.log`.\n",
            setup.access_log.join(", ")
        );
        md.push_str("| system | round | requests | log lines | lines − requests | MB | ringway records | dropped | written |\n|---|---|---|---|---|---|---|---|---|\n");
        for o in &r.observed {
            let Some(log) = &o.access_log else {
                continue;
            };
            let (records, dropped, written) = log.ringway.map_or_else(
                || ("–".to_owned(), "–".to_owned(), "–".to_owned()),
                |w| {
                    (
                        format!("{:.0}", w.records),
                        format!("{:.0}", w.dropped),
                        format!("{:.0}", w.written),
                    )
                },
            );
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:+} | {:.1} | {records} | {dropped} | {written} |",
                o.system,
                o.round + 1,
                o.requests,
                log.lines,
                log.lines as i64 - o.requests as i64,
                log.bytes as f64 / 1e6,
            );
        }
        md.push('\n');
    }
    if !setup.tracing.is_empty() {
        let who: Vec<String> = setup
            .tracing
            .iter()
            .map(|(name, sample)| format!("{name} ({sample})"))
            .collect();
        let _ = writeln!(
            md,
            "Tracing (share of requests sampled; the requests carry no trace context): {}, exporting to the runner's collector sink at {} (OTLP/HTTP; it answers every export with an empty success). Spans exported and dropped are ringway's counters just before it stopped (the last batch may still have been on its way); the exports and bytes are what the sink received during the turn.\n",
            who.join(", "),
            setup.collector.as_deref().unwrap_or("–"),
        );
        md.push_str("| system | round | requests | traced | spans exported | spans dropped | lost at export | exports received | MB received |\n|---|---|---|---|---|---|---|---|---|\n");
        for o in &r.observed {
            let Some(t) = &o.tracing else {
                continue;
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.1} |",
                o.system,
                o.round + 1,
                o.requests,
                t.traced,
                t.exported,
                t.spans_dropped,
                t.lost,
                t.collector_posts,
                t.collector_bytes as f64 / 1e6,
            );
        }
        md.push('\n');
    }
}
