//! Reading ringway's counters, counting log lines, judging a turn, and
//! the collector sink answering an export.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use super::*;

const EXPOSITION: &str = r#"# HELP ringway_access_log_records_total Access log records a worker queued for the writer.
# TYPE ringway_access_log_records_total counter
ringway_access_log_records_total{listener="bench",worker="0"} 1200
ringway_access_log_records_total{listener="other } \" x",worker="1"} 34
ringway_access_log_dropped_total{listener="bench",worker="0"} 0
ringway_access_log_written_total 1100
ringway_access_log_write_failures_total 0
ringway_trace_requests_total{listener="bench",worker="0"} 120
ringway_trace_spans_dropped_total{listener="bench",worker="0"} 2
ringway_trace_spans_exported_total 200 1700000000000
ringway_trace_batches_exported_total 1
ringway_trace_spans_rejected_total 1
ringway_trace_spans_backlog_dropped_total 3
ringway_trace_spans_held 40
ringway_trace_spans_held_not_this 5
"#;

#[test]
fn sums_a_metric_over_its_label_sets_whatever_the_labels_hold() {
    let m = Exposition(EXPOSITION.to_owned());
    assert_eq!(m.sum("ringway_access_log_records_total"), 1234.0);
    assert_eq!(
        m.sum("ringway_trace_spans_held"),
        40.0,
        "not a prefix match"
    );
    assert_eq!(
        m.sum("ringway_trace_spans_exported_total"),
        200.0,
        "timestamp ignored"
    );
    assert_eq!(m.sum("absent_total"), 0.0);
    assert_eq!(
        m.access_log(),
        RingwayLog {
            records: 1234.0,
            dropped: 0.0,
            written: 1100.0,
            write_failures: 0.0,
        }
    );
    let t = m.tracing(0.1);
    assert_eq!(
        (t.sample, t.traced, t.spans_dropped, t.exported, t.batches),
        (0.1, 120.0, 2.0, 200.0, 1.0)
    );
    assert_eq!((t.lost, t.held), (4.0, 40.0));
}

#[test]
fn sample_lines_that_are_not_samples_are_skipped() {
    assert_eq!(sample("a 1"), Some(("a", 1.0)));
    assert_eq!(sample("a{b=\"c\"} 2.5"), Some(("a", 2.5)));
    assert_eq!(sample("a{b=\"unclosed 2"), None);
    assert_eq!(sample("a notanumber"), None);
    assert_eq!(sample(""), None);
}

#[test]
fn counts_lines_and_keeps_the_first_ones() {
    let text = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
    let c = count_lines(&text[..], 2).expect("read");
    assert_eq!(c.lines, 3);
    assert_eq!(c.bytes, text.len() as u64);
    assert_eq!(c.head, ["{\"a\":1}", "{\"a\":2}"]);
    // A line cut short at the end is not a line.
    let c = count_lines(&b"x\ny"[..], 5).expect("read");
    assert_eq!((c.lines, c.head.len()), (1, 1));
}

#[test]
fn a_counted_log_is_replaced_by_its_head() {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("access.log");
    let mut lines = String::new();
    for i in 0..10 {
        lines.push_str(&format!("{{\"n\":{i}}}\n"));
    }
    std::fs::write(&path, &lines).expect("write the log");
    let check = count_log(&path);
    assert_eq!((check.lines, check.json), (10, true));
    assert!(check.problem.is_none());
    assert!(!path.exists(), "the counted log is removed");
    let head = std::fs::read_to_string(dir.path().join(HEAD_FILE)).expect("the head");
    assert_eq!(head.lines().count(), HEAD_LINES);
    assert!(head.starts_with("{\"n\":0}\n"));

    let missing = count_log(&dir.path().join("never-written.log"));
    assert!(missing.problem.is_some());
}

fn turn(requests: u64, lines: u64) -> Observed {
    Observed {
        system: "ringway-log".into(),
        round: 1,
        requests,
        access_log: Some(LogCheck {
            lines,
            bytes: lines * 300,
            json: true,
            problem: None,
            ringway: Some(RingwayLog {
                records: lines as f64,
                ..RingwayLog::default()
            }),
        }),
        tracing: None,
        metrics_problem: None,
    }
}

#[test]
fn a_log_with_a_line_per_request_passes_and_a_short_one_does_not() {
    assert!(problems(&turn(1000, 1000)).is_empty());
    let short = problems(&turn(1000, 990));
    assert_eq!(short.len(), 1, "{short:?}");
    assert!(
        short[0].contains("round 2: ringway-log") && short[0].contains("990 lines for 1000"),
        "{short:?}"
    );
    let mut dropped = turn(1000, 1000);
    if let Some(log) = dropped.access_log.as_mut() {
        log.ringway = Some(RingwayLog {
            dropped: 7.0,
            ..RingwayLog::default()
        });
        log.json = false;
    }
    let why = problems(&dropped);
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why
        .iter()
        .any(|w| w.contains("7 access log records dropped")));
    assert!(why.iter().any(|w| w.contains("not JSON")));
}

#[test]
fn tracing_must_reach_the_collector_without_drops() {
    let traced = |traced: f64, posts: u64, dropped: f64| Observed {
        system: "ringway-traced".into(),
        round: 0,
        requests: 10_000,
        tracing: Some(TraceCheck {
            sample: 0.1,
            traced,
            spans_dropped: dropped,
            exported: traced * 2.0,
            collector_posts: posts,
            ..TraceCheck::default()
        }),
        ..Observed::default()
    };
    assert!(problems(&traced(1000.0, 3, 0.0)).is_empty());
    assert_eq!(problems(&traced(1000.0, 0, 0.0)).len(), 1);
    assert_eq!(problems(&traced(0.0, 3, 0.0)).len(), 1);
    let dropped = problems(&traced(1000.0, 3, 5.0));
    assert!(dropped[0].contains("5 spans dropped"), "{dropped:?}");
}

#[test]
fn the_collector_sink_accepts_an_export_and_counts_it() {
    let collector = Collector::start(None).expect("the sink starts");
    let mut conn = TcpStream::connect(collector.addr()).expect("connect");
    let body = vec![0x0a; 1000];
    for _ in 0..2 {
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).expect("send the head");
        conn.write_all(&body).expect("send the body");
    }
    let mut reader = BufReader::new(conn);
    for _ in 0..2 {
        let mut status = String::new();
        reader.read_line(&mut status).expect("a status line");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut line = String::new();
        let mut protobuf = false;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("a header line");
            protobuf |= line.eq_ignore_ascii_case("content-type: application/x-protobuf\r\n");
            if line == "\r\n" {
                break;
            }
        }
        assert!(protobuf);
    }
    let received = collector.received();
    assert_eq!(received.posts, 2);
    assert!(received.bytes > 2 * body.len() as u64, "{received:?}");
}
