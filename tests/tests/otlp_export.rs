//! The span exporter (`control::telemetry::otlp`) against a real OTLP/HTTP
//! receiver, and that receiver and the exporter's encoding checked against
//! the OpenTelemetry Python SDK.
//!
//! The exporter runs in this process on queues the test fills as workers
//! do; the receiver is the harness's ([`ringway_tests::otlp_receiver`]).
//! Waits are on conditions with generous deadlines; what is asserted is
//! counts and contents, never how long something took.
//!
//! The Python checks need the SDK in `otel-venv` in the target directory
//! ([`ringway_tests::otel_python`] says how it gets there).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use control::telemetry::otlp::{Encoder, Endpoint, ExportStats, Exporter, OtlpSettings};
use crossbeam::queue::ArrayQueue;
use dataplane::request::Reason;
use dataplane::trace::span::{Span, SpanKind, Text};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use ringway_kit::wait;
use ringway_tests::otel_python;
use ringway_tests::otlp_receiver::{hex, Mode, OtlpReceiver, ReceivedSpan};

/// How long any wait may take before the test fails: far beyond what a
/// debug build on two busy cores needs.
const WAIT: Duration = Duration::from_secs(120);

/// A span told apart by `n`: its span id is `n + 1`, its trace id holds
/// `n` too. Even numbers are server spans, odd ones client spans under the
/// span before.
fn span(n: u64) -> Span {
    let mut trace_id = [0x7e; 16];
    trace_id[8..].copy_from_slice(&(n / 2 + 1).to_be_bytes());
    let server = n & 1 == 0;
    Span {
        trace_id,
        span_id: (n + 1).to_be_bytes(),
        parent_id: if server { None } else { Some(n.to_be_bytes()) },
        kind: if server {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        start_unix_ns: 1_700_000_000_000_000_000 + n * 1_000,
        end_unix_ns: 1_700_000_000_000_000_000 + n * 1_000 + 500,
        method: Text::new(b"POST"),
        target: Text::new(format!("/orders/{n}?page=2").as_bytes()),
        host: Text::new(b"shop.example"),
        tls: false,
        status: Some(if server { 502 } else { 200 }),
        error: server.then_some(Reason::UpstreamReset),
        listener: Arc::from("ingress"),
        route: Some(Arc::from("orders")),
        cluster: Some(Arc::from("backend")),
        endpoint: Some("127.0.0.9:8080".parse().expect("an address")),
        client: IpAddr::from([127, 0, 0, 1]),
        attempt: 2,
        fault: None,
    }
}

/// The `n` a received span was made from ([`span`]).
fn number(span: &ReceivedSpan) -> u64 {
    let id: [u8; 8] = span
        .span
        .span_id
        .as_slice()
        .try_into()
        .expect("8-byte span id");
    u64::from_be_bytes(id) - 1
}

/// Settings for `receiver` that keep tests short: a quick poll, batches of
/// `batch`, at most `held` spans held, a short backoff.
fn settings(receiver: &OtlpReceiver, batch: usize, held: usize) -> OtlpSettings {
    let endpoint = Endpoint::parse(&receiver.url()).expect("the receiver's URL");
    OtlpSettings {
        service_name: "export-test".to_owned(),
        instance_id: Some("node-a".to_owned()),
        poll_every: Duration::from_millis(5),
        batch_spans: batch,
        batch_delay: Duration::from_millis(50),
        max_held_spans: held,
        timeout: Duration::from_secs(30),
        backoff_first: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        stop_deadline: Duration::from_secs(30),
        ..OtlpSettings::new(endpoint)
    }
}

fn queue_with(capacity: usize, numbers: impl IntoIterator<Item = u64>) -> Arc<ArrayQueue<Span>> {
    let queue = Arc::new(ArrayQueue::new(capacity));
    for n in numbers {
        queue.push(span(n)).expect("room in the queue");
    }
    queue
}

/// Waits until the exporter's figures satisfy `done`.
fn wait_stats(
    what: &str,
    stats: &ExportStats,
    done: impl Fn(&control::telemetry::otlp::ExportCounts) -> bool,
) {
    wait::poll(what, WAIT, || {
        let counts = stats.snapshot();
        if done(&counts) {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
}

#[test]
fn spans_pushed_into_the_queues_arrive_intact() {
    let receiver = OtlpReceiver::start();
    // Two workers' queues; 2,500 spans, so two batches go full and the
    // rest goes when its time is up.
    let queues = vec![queue_with(4_096, 0..1_250), queue_with(4_096, 1_250..2_500)];
    let exporter = Exporter::spawn(settings(&receiver, 1_000, 10_000), queues.clone(), None)
        .expect("the exporter starts");

    let received = receiver.wait_spans(2_500, WAIT);
    let counts = exporter.stop();
    assert_eq!(received.len(), 2_500, "no span twice");
    let numbers: BTreeSet<u64> = received.iter().map(number).collect();
    assert_eq!(numbers, (0..2_500).collect::<BTreeSet<_>>());
    assert!(queues.iter().all(|q| q.is_empty()));

    let tally = receiver.tally();
    assert!(tally.largest_request <= 1_000, "{tally:?}");
    assert!(
        tally.accepted >= 3,
        "2,500 spans need three requests: {tally:?}"
    );
    assert_eq!(counts.exported, 2_500);
    assert_eq!(counts.batches, tally.accepted);
    assert_eq!(
        (counts.failed_posts, counts.rejected, counts.dropped_backlog),
        (0, 0, 0)
    );

    // One server span and one client span, field by field.
    let server = received.iter().find(|s| number(s) == 10).expect("span 10");
    assert_eq!(server.resource_str("service.name"), Some("export-test"));
    assert_eq!(server.resource_str("service.instance.id"), Some("node-a"));
    assert_eq!(server.scope, "ringway");
    assert_eq!(server.span.name, "POST");
    assert_eq!(server.span.kind, ProtoKind::Server as i32);
    assert_eq!(server.span.trace_id, span(10).trace_id);
    assert!(server.span.parent_span_id.is_empty());
    assert_eq!(server.span.start_time_unix_nano, span(10).start_unix_ns);
    assert_eq!(server.span.end_time_unix_nano, span(10).end_unix_ns);
    assert_eq!(
        server.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(server.str_attr("http.request.method"), Some("POST"));
    assert_eq!(server.str_attr("url.path"), Some("/orders/10"));
    assert_eq!(server.str_attr("url.query"), Some("page=2"));
    assert_eq!(server.str_attr("url.scheme"), Some("http"));
    assert_eq!(server.str_attr("server.address"), Some("shop.example"));
    assert_eq!(server.str_attr("client.address"), Some("127.0.0.1"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(502));
    assert_eq!(server.str_attr("error.type"), Some("upstream_reset"));
    assert_eq!(server.str_attr("ringway.listener"), Some("ingress"));
    assert_eq!(server.str_attr("ringway.route"), Some("orders"));
    assert_eq!(server.str_attr("ringway.cluster"), Some("backend"));
    assert_eq!(server.str_attr("ringway.upstream"), Some("127.0.0.9:8080"));

    let client = received.iter().find(|s| number(s) == 11).expect("span 11");
    assert_eq!(client.span.kind, ProtoKind::Client as i32);
    assert_eq!(client.span.trace_id, server.span.trace_id);
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    assert_eq!(
        client.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Unset as i32)
    );
    assert_eq!(client.str_attr("network.peer.address"), Some("127.0.0.9"));
    assert_eq!(client.int_attr("network.peer.port"), Some(8080));
    assert_eq!(client.int_attr("http.request.resend_count"), Some(1));
    assert_eq!(client.int_attr("http.response.status_code"), Some(200));
    assert_eq!(client.attr("error.type"), None);
    assert_eq!(client.attr("url.scheme"), None);
}

#[test]
fn a_collector_answering_503_gets_the_newest_spans_once_it_recovers() {
    let receiver = OtlpReceiver::start();
    receiver.set_mode(Mode::Refuse {
        status: 503,
        retry_after: None,
    });
    // 2,000 spans queued, at most 500 held: the exporter keeps the newest
    // five batches of 100 while the collector is down.
    let queue = queue_with(4_096, 0..2_000);
    let exporter = Exporter::spawn(settings(&receiver, 100, 500), vec![queue.clone()], None)
        .expect("the exporter starts");
    let stats = exporter.stats();

    receiver.wait_tally("three refused requests", WAIT, |t| t.refused >= 3);
    wait_stats(
        "every span taken and the backlog at its bound",
        &stats,
        |c| c.dropped_backlog == 1_500 && c.held == 500,
    );
    assert!(queue.is_empty());
    assert_eq!(receiver.tally().spans, 0);

    receiver.set_mode(Mode::Accept);
    let received = receiver.wait_spans(500, WAIT);
    let counts = exporter.stop();
    let numbers: Vec<u64> = received.iter().map(number).collect();
    assert_eq!(
        numbers,
        (1_500..2_000).collect::<Vec<_>>(),
        "the newest, in order"
    );
    assert_eq!(counts.exported, 500);
    assert_eq!(counts.dropped_backlog, 1_500);
    assert!(counts.held_peak <= 500, "the bound held: {counts:?}");
    assert!(counts.failed_posts >= 3, "{counts:?}");
    assert_eq!(counts.accounted(), 2_000);
    assert_eq!(receiver.tally().spans, 500, "nothing sent twice");
}

#[test]
fn a_stalled_collector_never_holds_up_a_worker() {
    let receiver = OtlpReceiver::start();
    receiver.set_mode(Mode::Stall);
    let queue: Arc<ArrayQueue<Span>> = Arc::new(ArrayQueue::new(256));
    let settings = OtlpSettings {
        // Each request gives up on the hung collector soon.
        timeout: Duration::from_millis(200),
        ..settings(&receiver, 100, 1_000)
    };
    let exporter =
        Exporter::spawn(settings, vec![queue.clone()], None).expect("the exporter starts");
    let stats = exporter.stats();

    // A worker pushes rounds of 200 spans into a queue of 256; each round
    // waits until the exporter has emptied the queue. Twenty rounds go
    // through while every request to the collector hangs.
    let worker = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let mut refused = 0;
            for round in 0..20u64 {
                for n in round * 200..(round + 1) * 200 {
                    if queue.push(span(n)).is_err() {
                        refused += 1;
                    }
                }
                wait::poll("the exporter empties the queue", WAIT, || {
                    if queue.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("{} spans queued", queue.len()))
                    }
                });
            }
            refused
        })
    };
    let refused = worker.join().expect("the worker ends");
    assert_eq!(refused, 0, "every push found room");
    receiver.wait_tally("a stalled request", WAIT, |t| t.stalled >= 1);
    wait_stats("all 4,000 spans taken", &stats, |c| {
        c.held + c.dropped_backlog == 4_000
    });
    let during = stats.snapshot();
    assert!(during.held_peak <= 1_000, "the bound held: {during:?}");
    assert_eq!(receiver.tally().spans, 0, "a stalled request keeps nothing");

    // The collector comes back: what is held goes out.
    receiver.set_mode(Mode::Accept);
    wait_stats("the backlog sent", &stats, |c| c.held == 0);
    let counts = exporter.stop();
    assert!(counts.failed_posts >= 1, "{counts:?}");
    assert_eq!(
        counts.exported + counts.dropped_backlog,
        4_000,
        "{counts:?}"
    );
    assert_eq!(receiver.tally().spans, counts.exported);
    assert!(counts.held_peak <= 1_000, "{counts:?}");
    assert_eq!(stats.held.load(Ordering::Relaxed), 0);
}

#[test]
fn the_receiver_refuses_what_is_not_otlp() {
    let receiver = OtlpReceiver::start();
    let addr = receiver.addr();
    let post = |path: &str, body: &str| {
        control::admin::client::request(addr, "POST", path, Some(body)).expect("an answer")
    };
    // No content type.
    assert_eq!(post("/v1/traces", "x").status, 415);
    assert_eq!(post("/v1/metrics", "x").status, 404);
    let get = control::admin::client::request(addr, "GET", "/v1/traces", None).expect("an answer");
    assert_eq!(get.status, 405);
    assert_eq!(receiver.tally().invalid, 3);
    assert_eq!(receiver.tally().spans, 0);
}

fn value_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => format!("{s:?}"),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a
                .values
                .iter()
                .map(|v| value_text(v.value.as_ref()))
                .collect();
            format!("[{}]", items.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn attributes(span: &ReceivedSpan) -> BTreeMap<String, String> {
    span.span
        .attributes
        .iter()
        .map(|kv| {
            let value = value_text(kv.value.as_ref().and_then(|v| v.value.as_ref()));
            (kv.key.clone(), value)
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_receiver_decodes_what_the_python_sdk_sends() {
    let receiver = OtlpReceiver::start();
    let printed = otel_python::run("otel_sdk_send.py", &[&receiver.url()], b"");
    let ids: serde_json::Value = serde_json::from_str(&printed).expect("the ids as JSON");
    let received = receiver.wait_spans(2, WAIT);
    assert_eq!(received.len(), 2, "{received:#?}");
    assert_eq!(receiver.tally().accepted, 2, "one request per span");

    let server = received
        .iter()
        .find(|s| s.span.kind == ProtoKind::Server as i32)
        .expect("a server span");
    let client = received
        .iter()
        .find(|s| s.span.kind == ProtoKind::Client as i32)
        .expect("a client span");
    for span in [server, client] {
        assert_eq!(span.resource_str("service.name"), Some("otel-python-check"));
        assert_eq!(span.scope, "ringway-tests");
        assert_eq!(hex(&span.span.trace_id), ids["trace_id"]);
        assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
        assert!(span.span.start_time_unix_nano > 0);
    }
    assert_eq!(server.span.name, "GET /items");
    assert_eq!(hex(&server.span.span_id), ids["server_id"]);
    assert!(server.span.parent_span_id.is_empty(), "a root span");
    assert_eq!(
        attributes(server),
        map(&[
            ("http.request.method", "\"GET\""),
            ("url.path", "\"/items/42\""),
            ("http.response.status_code", "200"),
            ("ringway.route", "\"items\""),
            ("ringway.sampled", "true"),
            ("ringway.ratio", "0.25"),
            ("ringway.tags", "[\"canary\", \"eu\"]"),
        ])
    );
    assert_eq!(client.span.name, "GET");
    assert_eq!(hex(&client.span.span_id), ids["client_id"]);
    assert_eq!(client.span.parent_span_id, server.span.span_id);
    assert_eq!(
        attributes(client),
        map(&[
            ("network.peer.address", "\"10.0.0.7\""),
            ("network.peer.port", "9000"),
            ("http.request.resend_count", "1"),
            ("error.type", "\"upstream_timeout\""),
        ])
    );
    let status = client.span.status.as_ref().expect("a status");
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "the upstream did not answer");
}

#[test]
fn the_python_sdk_reads_what_the_exporter_encodes() {
    let body = Encoder::new("ringway", Some("node-b")).encode(&[span(4), span(5)]);
    let printed = otel_python::run("otel_decode.py", &[], &body);
    let spans: serde_json::Value = serde_json::from_str(&printed).expect("spans as JSON");
    let spans = spans.as_array().expect("a list of spans");
    assert_eq!(spans.len(), 2, "{printed}");
    let (server, client) = (&spans[0], &spans[1]);
    for decoded in [server, client] {
        assert_eq!(
            decoded["resource"]["service.name"]["stringValue"],
            "ringway"
        );
        assert_eq!(
            decoded["resource"]["service.instance.id"]["stringValue"],
            "node-b"
        );
        assert_eq!(decoded["scope"], "ringway");
        assert_eq!(decoded["trace_id"], hex(&span(4).trace_id));
        assert_eq!(decoded["name"], "POST");
    }
    assert_eq!(server["span_id"], hex(&span(4).span_id));
    assert_eq!(server["parent_span_id"], "");
    assert_eq!(server["kind"], "SPAN_KIND_SERVER");
    assert_eq!(server["status"], "STATUS_CODE_ERROR");
    assert_eq!(server["start"], span(4).start_unix_ns);
    assert_eq!(server["end"], span(4).end_unix_ns);
    // Sampled, and the parent's remoteness known (none here).
    assert_eq!(server["flags"], 0x101);
    let attributes = &server["attributes"];
    assert_eq!(attributes["http.request.method"]["stringValue"], "POST");
    assert_eq!(attributes["url.path"]["stringValue"], "/orders/4");
    assert_eq!(attributes["url.query"]["stringValue"], "page=2");
    // int64 is a string in protobuf's JSON mapping.
    assert_eq!(attributes["http.response.status_code"]["intValue"], "502");
    assert_eq!(attributes["error.type"]["stringValue"], "upstream_reset");
    assert_eq!(
        attributes["ringway.upstream"]["stringValue"],
        "127.0.0.9:8080"
    );

    assert_eq!(client["span_id"], hex(&span(5).span_id));
    assert_eq!(client["parent_span_id"], hex(&span(4).span_id));
    assert_eq!(client["kind"], "SPAN_KIND_CLIENT");
    assert_eq!(client["status"], "STATUS_CODE_UNSET");
    assert_eq!(
        client["attributes"]["network.peer.port"]["intValue"],
        "8080"
    );
    assert_eq!(
        client["attributes"]["http.request.resend_count"]["intValue"],
        "1"
    );
}
