//! Access logs and traces in a comparison: the collector sink ringway's
//! span exporter posts to, and what each system's turn left behind.
//!
//! A cheap logger is easy to fake: drop the lines. So after each turn of a
//! system that logs, the runner counts the lines of its access log against
//! the requests the system carried in that turn (every load run's, the
//! profile run's, the memory run's, the admission checks'), and for
//! ringway reads its own counters from `/metrics` before stopping it:
//! records queued, dropped (the worker's ring was full), written and lost
//! to write failures. For a tracing ringway it reads the requests traced,
//! the spans dropped at the worker and exported, and the collector sink
//! says how many exports (POSTs) and bytes it received. A log short of its
//! requests, dropped records or spans, or a tracing system whose collector
//! heard nothing, is a problem of the run.
//!
//! The access log files are large (a few hundred bytes a request, a
//! million requests a turn): once counted, the first lines are kept beside
//! it ([`HEAD_FILE`]) and the file is removed.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ringway_kit::admin::AdminClient;
use ringway_kit::origin::{Answer, CountingOrigin, Settings};
use serde::Serialize;

/// The collector sink's answer to every export: an empty
/// `ExportTraceServiceResponse`, which is an empty protobuf message (full
/// success).
const EXPORT_ACCEPTED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
/// Lines of an access log kept once it has been counted.
const HEAD_LINES: usize = 5;
/// Where they are kept, beside the log.
pub const HEAD_FILE: &str = "access.head.log";
/// Largest share of a turn's requests a log may miss, or have more lines
/// than, without it being a problem: none. Every request the generator
/// wrote reaches the proxy and is settled there (answered, or cut when
/// the generator closes its connections at the end of a run), and each
/// system logs a request once it is settled either way.
const LOG_SLACK: f64 = 0.0;
/// Timeout of the `/metrics` read.
const METRICS_TIMEOUT: Duration = Duration::from_secs(10);

/// An OTLP/HTTP collector that accepts every export and counts them: the
/// kit's counting origin answering `200` with an empty export response, on
/// a loopback port it bound itself (port 0: nothing can take it between
/// the choice and the bind), its one thread pinned to `core`.
#[derive(Debug)]
pub struct Collector {
    sink: CountingOrigin,
}

/// What the collector received so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Exports (POSTs of a batch of spans).
    pub posts: u64,
    /// Bytes, heads and bodies.
    pub bytes: u64,
}

impl Collector {
    /// Starts the sink; `core`: where its thread runs (the origins' core:
    /// never the proxy's).
    pub fn start(core: Option<usize>) -> Result<Self, String> {
        let cores: Vec<usize> = core.into_iter().collect();
        CountingOrigin::start(Settings::answering(Answer::Whole(EXPORT_ACCEPTED)), &cores)
            .map(|sink| Self { sink })
            .map_err(|e| format!("cannot start the trace collector sink: {e}"))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.sink.addr()
    }

    /// What it received since it started.
    pub fn received(&self) -> Received {
        let served = self.sink.served();
        Received {
            posts: served.received,
            bytes: served.bytes_received,
        }
    }
}

/// What one system's turn in one round logged and traced, as
/// `results.json` holds it (`observed`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    /// The system.
    pub system: String,
    /// The round (0-based).
    pub round: usize,
    /// Requests the system carried in its turn: every load run's (the
    /// discarded and profile runs' too, warm-up included), one per idle
    /// connection of the memory run, and the admission checks' answered
    /// ones.
    pub requests: u64,
    /// Its access log, when it keeps one.
    pub access_log: Option<LogCheck>,
    /// Its tracing, when it traces.
    pub tracing: Option<TraceCheck>,
    /// Why ringway's `/metrics` could not be read, if it could not.
    pub metrics_problem: Option<String>,
}

/// An access log after a turn.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogCheck {
    /// Lines in the file.
    pub lines: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether its first line is a JSON object.
    pub json: bool,
    /// Why the file could not be read, if it could not.
    pub problem: Option<String>,
    /// ringway's own counters, summed over listeners and workers.
    pub ringway: Option<RingwayLog>,
}

/// ringway's access log counters (`/metrics`), read before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RingwayLog {
    /// Records the workers queued (`ringway_access_log_records_total`).
    pub records: f64,
    /// Records dropped because a worker's ring was full
    /// (`ringway_access_log_dropped_total`).
    pub dropped: f64,
    /// Records the writer wrote (`ringway_access_log_written_total`; it
    /// writes at 64 KiB or once a second, so this trails the records).
    pub written: f64,
    /// Records lost to failed writes (`ringway_access_log_write_failures_total`).
    pub write_failures: f64,
}

/// ringway's tracing after a turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TraceCheck {
    /// The share of requests traced.
    pub sample: f64,
    /// Requests traced (`ringway_trace_requests_total`).
    pub traced: f64,
    /// Spans dropped because a worker's queue was full
    /// (`ringway_trace_spans_dropped_total`).
    pub spans_dropped: f64,
    /// Spans the collector accepted (`ringway_trace_spans_exported_total`;
    /// read before the stop, so the last batch, up to its delay, may be
    /// missing).
    pub exported: f64,
    /// Exports (batches) the collector accepted.
    pub batches: f64,
    /// Spans dropped unsent by the exporter (its backlog was full), or
    /// refused by the collector.
    pub lost: f64,
    /// Spans still held unsent when the counters were read.
    pub held: f64,
    /// Exports the collector sink received during the turn (the stop
    /// included).
    pub collector_posts: u64,
    /// Bytes it received.
    pub collector_bytes: u64,
}

/// The names of the counters read.
mod names {
    pub const LOG_RECORDS: &str = "ringway_access_log_records_total";
    pub const LOG_DROPPED: &str = "ringway_access_log_dropped_total";
    pub const LOG_WRITTEN: &str = "ringway_access_log_written_total";
    pub const LOG_FAILURES: &str = "ringway_access_log_write_failures_total";
    pub const TRACED: &str = "ringway_trace_requests_total";
    pub const SPANS_DROPPED: &str = "ringway_trace_spans_dropped_total";
    pub const EXPORTED: &str = "ringway_trace_spans_exported_total";
    pub const BATCHES: &str = "ringway_trace_batches_exported_total";
    pub const REJECTED: &str = "ringway_trace_spans_rejected_total";
    pub const BACKLOG_DROPPED: &str = "ringway_trace_spans_backlog_dropped_total";
    pub const HELD: &str = "ringway_trace_spans_held";
}

/// `GET /metrics` from ringway's admin API.
pub fn read_metrics(admin: SocketAddr) -> Result<Exposition, String> {
    let mut client = AdminClient::new(admin, METRICS_TIMEOUT);
    let reply = client
        .request("GET", "/metrics", b"")
        .map_err(|e| format!("GET /metrics: {e}"))?;
    if reply.status != 200 {
        return Err(format!("GET /metrics answered {}", reply.status));
    }
    Ok(Exposition(reply.body))
}

/// A Prometheus text exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition(pub String);

impl Exposition {
    /// The sum of metric `name` over its label sets (0 when absent).
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(sample)
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// The sum of metric `name` over the label sets that have `label` set
    /// to `value` (0 when none has).
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> f64 {
        let wanted = format!("{label}=\"{value}\"");
        self.0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                label_pairs(l).is_some_and(|pairs| pairs.iter().any(|p| p.trim() == wanted))
            })
            .filter_map(sample)
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// ringway's access log counters.
    pub fn access_log(&self) -> RingwayLog {
        RingwayLog {
            records: self.sum(names::LOG_RECORDS),
            dropped: self.sum(names::LOG_DROPPED),
            written: self.sum(names::LOG_WRITTEN),
            write_failures: self.sum(names::LOG_FAILURES),
        }
    }

    /// ringway's tracing counters (the collector's figures left at 0).
    pub fn tracing(&self, sample: f64) -> TraceCheck {
        TraceCheck {
            sample,
            traced: self.sum(names::TRACED),
            spans_dropped: self.sum(names::SPANS_DROPPED),
            exported: self.sum(names::EXPORTED),
            batches: self.sum(names::BATCHES),
            lost: self.sum(names::BACKLOG_DROPPED) + self.sum(names::REJECTED),
            held: self.sum(names::HELD),
            collector_posts: 0,
            collector_bytes: 0,
        }
    }
}

/// A sample line's `key="value"` label pairs, as written; `None` for a
/// line without labels.
fn label_pairs(line: &str) -> Option<Vec<&str>> {
    let line = line.trim();
    let open = line.find(['{', ' '])?;
    let rest = line[open..].strip_prefix('{')?;
    let mut pairs = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' | '}' if !quoted => {
                if !rest[start..i].trim().is_empty() {
                    pairs.push(&rest[start..i]);
                }
                if c == '}' {
                    return Some(pairs);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// A sample line's metric name and value (`name{labels} value
/// [timestamp]`); `None` for a line that is not one.
fn sample(line: &str) -> Option<(&str, f64)> {
    let line = line.trim();
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        // Skip the labels: quoted values may hold `}` and spaces.
        let mut quoted = false;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        rest = &rest[end? + 1..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, value))
}

/// Counts the lines of the access log at `path`, notes whether the first
/// is a JSON object, keeps the first [`HEAD_LINES`] in [`HEAD_FILE`]
/// beside it and removes it.
pub fn count_log(path: &Path) -> LogCheck {
    let mut check = LogCheck::default();
    let counted = File::open(path).and_then(|f| count_lines(f, HEAD_LINES));
    match counted {
        Ok(c) => {
            check.lines = c.lines;
            check.bytes = c.bytes;
            check.json = c.head.first().is_some_and(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object())
            });
            if let Some(dir) = path.parent() {
                let _ = File::create(dir.join(HEAD_FILE)).and_then(|mut f| {
                    c.head
                        .iter()
                        .try_for_each(|l| f.write_all(l.as_bytes()).and(f.write_all(b"\n")))
                });
            }
            let _ = std::fs::remove_file(path);
        }
        Err(e) => check.problem = Some(format!("cannot read {}: {e}", path.display())),
    }
    check
}

/// What [`count_lines`] found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counted {
    lines: u64,
    bytes: u64,
    head: Vec<String>,
}

/// Counts the newlines of `input` and keeps its first `keep` lines.
fn count_lines(input: impl Read, keep: usize) -> io::Result<Counted> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut c = Counted::default();
    let mut partial = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        for &b in buf {
            if b == b'\n' {
                c.lines += 1;
                if c.head.len() < keep {
                    c.head.push(String::from_utf8_lossy(&partial).into_owned());
                    partial.clear();
                }
            } else if c.head.len() < keep {
                partial.push(b);
            }
        }
        c.bytes += n as u64;
        reader.consume(n);
    }
    Ok(c)
}

/// What is wrong with a turn's record, for the report's problems: a log
/// that does not have one line per request, records or spans dropped, a
/// tracing system the collector did not hear from.
pub fn problems(o: &Observed) -> Vec<String> {
    let at = format!("round {}: {}", o.round + 1, o.system);
    let mut out = Vec::new();
    if let Some(why) = &o.metrics_problem {
        out.push(format!("{at}: cannot read its counters: {why}"));
    }
    if let Some(log) = &o.access_log {
        if let Some(why) = &log.problem {
            out.push(format!("{at}: access log: {why}"));
        } else {
            let off = log.lines.abs_diff(o.requests) as f64;
            if off > LOG_SLACK * o.requests as f64 {
                out.push(format!(
                    "{at}: its access log has {} lines for {} requests",
                    log.lines, o.requests
                ));
            }
            if log.lines > 0 && !log.json {
                out.push(format!("{at}: its access log's first line is not JSON"));
            }
        }
        if let Some(r) = log
            .ringway
            .filter(|r| r.dropped > 0.0 || r.write_failures > 0.0)
        {
            out.push(format!(
                "{at}: {} access log records dropped, {} lost to write failures",
                r.dropped, r.write_failures
            ));
        }
    }
    if let Some(t) = &o.tracing {
        if t.spans_dropped > 0.0 || t.lost > 0.0 {
            out.push(format!(
                "{at}: {} spans dropped at the workers, {} dropped or refused at export",
                t.spans_dropped, t.lost
            ));
        }
        if t.sample > 0.0 && o.requests > 0 && (t.traced == 0.0 || t.collector_posts == 0) {
            out.push(format!(
                "{at}: tracing at {} traced {} requests and the collector received {} exports",
                t.sample, t.traced, t.collector_posts
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
