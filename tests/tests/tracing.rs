//! Tracing end to end: the real binary with `[tracing]`, real clients
//! (curl, the tests' HTTP client, an application on the OpenTelemetry
//! Python SDK), an origin that records the trace headers it received, and
//! the harness's real OTLP/HTTP receiver as the collector.
//!
//! What is checked: W3C and B3 contexts are continued with ringway's own
//! spans (a server span per request, a client span per upstream attempt,
//! the attempt's span the upstream's parent); a caller's sampling decision
//! is kept; head sampling follows the ratio; invalid trace headers never
//! reach the upstream and are counted; retries show as client spans; the
//! access log names the exported trace; a collector that is down or hangs
//! never costs a request, and the exporter's memory stays within its
//! bound; bad `[tracing]` keys are refused by `ringway check`.
//!
//! No test waits a fixed time for something not to happen. To show that a
//! request left no spans, a sampled request follows it on the same
//! connection (so on the same worker, whose span queue is first in, first
//! out, and whose spans the exporter sends in the order it took them):
//! once that one's spans have arrived, any span of the earlier request
//! would have arrived before them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use ringway_kit::launcher::{run_to_exit, write_config};
use ringway_kit::{admin, wait, Ringway};
use ringway_tests::http_client::{curl, wait_metric, HttpConn, Req};
use ringway_tests::http_config::{quote, Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Recorded, Reply};
use ringway_tests::otel_python;
use ringway_tests::otlp_receiver::{hex, Mode, OtlpReceiver, ReceivedSpan};
use ringway_tests::trace::{
    full_trace_id, parent_id, span_id, spans_of, split_trace, wait_trace, B3Single, Traceparent,
    Tracing,
};

/// How long any wait may take before the test fails: far beyond what a
/// debug build on two busy cores needs, and beyond the exporter's longest
/// backoff (30 s) after a collector comes back.
const WAIT: Duration = Duration::from_secs(120);

/// The `service.name` the proxies under test report.
const SERVICE: &str = "ringway-e2e";

/// OTLP span flags: whether the parent's remoteness is known, and whether
/// it is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// A proxy whose one route `all` forwards everything to cluster `app` of
/// `endpoints`, tracing as `tracing` says.
fn start(endpoints: &[SocketAddr], tracing: &Tracing) -> (Ringway, HttpConfig) {
    let config = HttpConfig::forward_all(endpoints).tracing(&tracing.clone().service_name(SERVICE));
    (Ringway::start(&config.to_toml()), config)
}

/// Trace id number `n` of a test, as 32 hex digits.
fn trace_hex(n: u64) -> String {
    format!("{:016x}{:016x}", 0x7e57_0000_0000_0000 | n, 0x1000 + n)
}

/// Span id number `n` of a test, as 16 hex digits.
fn span_hex(n: u64) -> String {
    format!("{:016x}", 0xca11_e400_0000_0000 | n)
}

/// A sampled `traceparent` for trace `n`, from the caller's span `n`.
fn sampled_traceparent(n: u64) -> String {
    format!("00-{}-{}-01", trace_hex(n), span_hex(n))
}

/// The value of the one field `name` of `seen`; panics when there is none
/// or more than one.
fn only<'a>(seen: &'a Recorded, name: &str) -> &'a str {
    let values = seen.headers_named(name);
    assert_eq!(
        values.len(),
        1,
        "exactly one `{name}` at the origin: {:?}",
        seen.headers
    );
    values[0]
}

/// Panics when `seen` has any field named one of `names`.
fn none_of(seen: &Recorded, names: &[&str]) {
    for name in names {
        assert!(
            seen.headers_named(name).is_empty(),
            "no `{name}` at the origin: {:?}",
            seen.headers
        );
    }
}

/// The `traceparent` the origin received, read strictly.
fn traceparent_of(seen: &Recorded) -> Traceparent {
    Traceparent::parse(only(seen, "traceparent")).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `req` on `conn`, expects a 200, and returns the request as the
/// origin received it.
fn send(conn: &mut HttpConn, origin: &HttpOrigin, req: &Req) -> Recorded {
    let before = origin.requests().len();
    let response = conn.exchange(req);
    assert_eq!(response.status, 200, "{response:?}");
    // The origin records a request before it answers it.
    let requests = origin.requests();
    assert_eq!(requests.len(), before + 1, "one request reached the origin");
    requests[before].clone()
}

/// `GET path` with the trace headers `headers`.
fn get_with(path: &str, headers: &[(&str, &str)]) -> Req {
    headers
        .iter()
        .fold(Req::get(path), |req, (name, value)| req.header(name, value))
}

/// The sum of metric `name` now (0 when absent).
fn metric(admin_addr: SocketAddr, name: &str) -> f64 {
    admin::metrics(admin_addr).try_sum(name).unwrap_or(0.0)
}

/// Polls `/metrics` until the sum of `name` satisfies `done`, and returns
/// it; panics after [`WAIT`].
fn wait_metric_until(
    admin_addr: SocketAddr,
    name: &str,
    what: &str,
    done: impl Fn(f64) -> bool,
) -> f64 {
    wait::poll(&format!("{name} {what}"), WAIT, || {
        let value = metric(admin_addr, name);
        if done(value) {
            Ok(value)
        } else {
            Err(format!("{name} is {value}"))
        }
    })
}

/// Sends a sampled request for trace `n` on `conn` and waits for its two
/// spans: everything the requests before it on this connection could have
/// queued has then reached the receiver.
fn sentinel(conn: &mut HttpConn, origin: &HttpOrigin, receiver: &OtlpReceiver, n: u64) {
    let traceparent = sampled_traceparent(n);
    send(
        conn,
        origin,
        &get_with("/sentinel", &[("traceparent", &traceparent)]),
    );
    wait_trace(receiver, &trace_hex(n), 2, WAIT);
}

/// The distinct trace ids (hex) among `spans`.
fn traces(spans: &[ReceivedSpan]) -> BTreeSet<String> {
    spans.iter().map(|s| hex(&s.span.trace_id)).collect()
}

/// The span's status code (UNSET when it has no status).
fn status_code(span: &ReceivedSpan) -> i32 {
    span.span.status.as_ref().map_or(0, |s| s.code)
}

#[test]
fn a_sampled_w3c_context_is_continued_with_the_attempt_as_the_upstream_parent() {
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    // Head sampling off: the caller's decision alone gets this traced.
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(0.0),
    );
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let url = format!("http://{}/orders/7?page=2", config.listen);
    let traceparent = format!("traceparent: 00-{caller_trace}-{caller_span}-01");
    let run = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &traceparent,
        "-H",
        "tracestate: k=v,x=y",
        &url,
    ]);
    assert!(run.success, "{run:?}");
    assert_eq!(run.stdout, "200", "{run:?}");

    // The upstream gets the same trace, sampled, with a parent of
    // ringway's making, and the tracestate whole.
    let seen = origin.wait_requests(1, WAIT)[0].clone();
    let up = traceparent_of(&seen);
    assert_eq!(up.trace_id, caller_trace);
    assert_ne!(
        up.parent_id, caller_span,
        "the caller's span is not the parent upstream"
    );
    assert_eq!(up.flags, "01");
    assert_eq!(seen.headers_named("tracestate"), ["k=v,x=y"]);

    let spans = wait_trace(&receiver, caller_trace, 2, WAIT);
    let (server, clients) = split_trace(&spans);
    assert_eq!(clients.len(), 1, "one attempt, one client span: {spans:#?}");
    let client = &clients[0];

    // The server span: a child of the caller's span, named for the method,
    // with the request, the route and where it went.
    assert_eq!(parent_id(&server), caller_span);
    assert_eq!(server.span.name, "GET");
    assert_eq!(server.resource_str("service.name"), Some(SERVICE));
    assert_eq!(server.scope, "ringway");
    assert_eq!(
        server.span.flags & (HAS_IS_REMOTE | IS_REMOTE),
        HAS_IS_REMOTE | IS_REMOTE,
        "the server span's parent is remote"
    );
    assert_eq!(server.str_attr("http.request.method"), Some("GET"));
    assert_eq!(server.str_attr("url.path"), Some("/orders/7"));
    assert_eq!(server.str_attr("url.query"), Some("page=2"));
    assert_eq!(server.str_attr("url.scheme"), Some("http"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert_eq!(server.str_attr("ringway.listener"), Some("web"));
    assert_eq!(server.str_attr("ringway.route"), Some("all"));
    assert_eq!(server.str_attr("ringway.cluster"), Some("app"));
    assert_eq!(
        server.str_attr("ringway.upstream"),
        Some(origin.addr().to_string().as_str())
    );
    assert_eq!(server.str_attr("client.address"), Some("127.0.0.1"));
    assert_eq!(server.attr("error.type"), None);
    assert_eq!(status_code(&server), StatusCode::Unset as i32);
    assert!(server.span.end_time_unix_nano >= server.span.start_time_unix_nano);

    // The client span: a child of the server span, and the parent the
    // origin was told about.
    assert_eq!(parent_id(client), span_id(&server));
    assert_eq!(span_id(client), up.parent_id);
    assert_ne!(span_id(client), span_id(&server));
    assert_eq!(client.span.name, "GET");
    assert_eq!(client.span.flags & IS_REMOTE, 0, "a local parent");
    assert_eq!(client.str_attr("network.peer.address"), Some("127.0.0.1"));
    assert_eq!(
        client.int_attr("network.peer.port"),
        Some(i64::from(origin.addr().port()))
    );
    assert_eq!(client.int_attr("http.response.status_code"), Some(200));
    assert_eq!(client.str_attr("ringway.route"), Some("all"));
    assert_eq!(client.str_attr("ringway.cluster"), Some("app"));
    assert_eq!(client.attr("http.request.resend_count"), None);
    assert_eq!(client.attr("error.type"), None);
    assert!(client.span.end_time_unix_nano >= client.span.start_time_unix_nano);
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 1.0);

    // Header names in any case are read; two tracestate fields go on as
    // they came, in order; a traceparent of a later version is read (its
    // sampled flag only) and written back in version 00.
    let mut conn = HttpConn::open(config.listen);
    let later = format!("cc-{}-{}-01-what-comes-next", trace_hex(2), span_hex(2));
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/two",
            &[
                ("TraceParent", &later),
                ("TraceState", "k=v"),
                ("tracestate", "x=y"),
            ],
        ),
    );
    let up = traceparent_of(&seen);
    assert_eq!(
        (up.trace_id.as_str(), up.flags.as_str()),
        (trace_hex(2).as_str(), "01")
    );
    assert_eq!(seen.headers_named("tracestate"), ["k=v", "x=y"]);
    let spans = wait_trace(&receiver, &trace_hex(2), 2, WAIT);
    let (server, clients) = split_trace(&spans);
    assert_eq!(parent_id(&server), span_hex(2));
    assert_eq!(span_id(&clients[0]), up.parent_id);
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 2.0);
    proxy.stop();
}

#[test]
fn b3_goes_upstream_in_the_format_it_came_in_with_the_attempt_as_the_span() {
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(0.0),
    );
    let mut conn = HttpConn::open(config.listen);

    // Multi-header, 128-bit, with the caller's own parent: the upstream
    // gets the set anew, ringway's client span as the span and its server
    // span as the parent.
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/multi",
            &[
                ("x-b3-traceid", &trace_hex(1)),
                ("x-b3-spanid", &span_hex(1)),
                ("x-b3-parentspanid", &span_hex(101)),
                ("x-b3-sampled", "1"),
            ],
        ),
    );
    none_of(&seen, &["traceparent", "tracestate", "b3", "x-b3-flags"]);
    assert_eq!(only(&seen, "x-b3-traceid"), trace_hex(1));
    assert_eq!(only(&seen, "x-b3-sampled"), "1");
    let (up_span, up_parent) = (
        only(&seen, "x-b3-spanid").to_owned(),
        only(&seen, "x-b3-parentspanid").to_owned(),
    );
    let spans = wait_trace(&receiver, &trace_hex(1), 2, WAIT);
    let (server, clients) = split_trace(&spans);
    assert_eq!(parent_id(&server), span_hex(1));
    assert_eq!(span_id(&clients[0]), up_span);
    assert_eq!(parent_id(&clients[0]), span_id(&server));
    assert_eq!(up_parent, span_id(&server));
    assert_ne!(up_span, span_hex(1));

    // Single header, 128-bit, with and without the caller's parent.
    for (n, value) in [
        (2, format!("{}-{}-1", trace_hex(2), span_hex(2))),
        (
            3,
            format!("{}-{}-1-{}", trace_hex(3), span_hex(3), span_hex(103)),
        ),
    ] {
        let seen = send(&mut conn, &origin, &get_with("/single", &[("b3", &value)]));
        none_of(
            &seen,
            &[
                "traceparent",
                "tracestate",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
                "x-b3-flags",
            ],
        );
        let up = B3Single::parse(only(&seen, "b3")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(up.trace_id, trace_hex(n));
        assert_eq!(up.state.as_deref(), Some("1"));
        let spans = wait_trace(&receiver, &trace_hex(n), 2, WAIT);
        let (server, clients) = split_trace(&spans);
        assert_eq!(
            parent_id(&server),
            span_hex(n),
            "the caller's span, not its parent"
        );
        assert_eq!(up.span_id, span_id(&clients[0]));
        if let Some(parent) = &up.parent_id {
            assert_eq!(*parent, span_id(&server));
        }
    }

    // 64-bit trace ids keep their width upstream, in both formats; the
    // exported trace id is the 128-bit one with the high half zero.
    let short_multi = "a3ce929d0e0e4004";
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/short-multi",
            &[
                ("x-b3-traceid", short_multi),
                ("x-b3-spanid", &span_hex(4)),
                ("x-b3-sampled", "1"),
            ],
        ),
    );
    assert_eq!(only(&seen, "x-b3-traceid"), short_multi);
    let spans = wait_trace(&receiver, &full_trace_id(short_multi), 2, WAIT);
    let (_, clients) = split_trace(&spans);
    assert_eq!(only(&seen, "x-b3-spanid"), span_id(&clients[0]));

    let short_single = "a3ce929d0e0e4005";
    let value = format!("{short_single}-{}-1", span_hex(5));
    let seen = send(
        &mut conn,
        &origin,
        &get_with("/short-single", &[("b3", &value)]),
    );
    let up = B3Single::parse(only(&seen, "b3")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(up.trace_id, short_single);
    let spans = wait_trace(&receiver, &full_trace_id(short_single), 2, WAIT);
    let (_, clients) = split_trace(&spans);
    assert_eq!(up.span_id, span_id(&clients[0]));

    // Debug goes on as debug: `d` in the single header, `x-b3-flags: 1`
    // (and no `x-b3-sampled`, which debug implies) in the set.
    let value = format!("{}-{}-d", trace_hex(6), span_hex(6));
    let seen = send(&mut conn, &origin, &get_with("/debug", &[("b3", &value)]));
    let up = B3Single::parse(only(&seen, "b3")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(up.state.as_deref(), Some("d"));
    wait_trace(&receiver, &trace_hex(6), 2, WAIT);
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/debug-multi",
            &[
                ("x-b3-traceid", &trace_hex(7)),
                ("x-b3-spanid", &span_hex(7)),
                ("x-b3-flags", "1"),
            ],
        ),
    );
    assert_eq!(only(&seen, "x-b3-flags"), "1");
    none_of(&seen, &["x-b3-sampled", "traceparent", "b3"]);
    wait_trace(&receiver, &trace_hex(7), 2, WAIT);

    // Nothing else was traced; every request above was.
    assert_eq!(receiver.spans().len(), 14, "{:#?}", receiver.spans());
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 7.0);
    proxy.stop();
}

#[test]
fn a_caller_decision_not_to_sample_is_kept_and_passed_on() {
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    // Head sampling would trace everything: only the callers' "no" stops it.
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(1.0),
    );
    let mut conn = HttpConn::open(config.listen);

    // W3C, not sampled: the upstream gets the caller's traceparent as it
    // was (no span of ringway's stands between them) and the tracestate.
    let unsampled = format!("00-{}-{}-00", trace_hex(1), span_hex(1));
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/w3c",
            &[("traceparent", &unsampled), ("tracestate", "a=b")],
        ),
    );
    assert_eq!(only(&seen, "traceparent"), unsampled);
    assert_eq!(seen.headers_named("tracestate"), ["a=b"]);

    // A lone `b3: 0`: the upstream is told "not sampled" in the same
    // format.
    let seen = send(&mut conn, &origin, &get_with("/b3-deny", &[("b3", "0")]));
    none_of(&seen, &["traceparent", "x-b3-sampled"]);
    let deny = only(&seen, "b3");
    let state = match deny {
        "0" => "0".to_owned(),
        other => B3Single::parse(other)
            .unwrap_or_else(|e| panic!("{e}"))
            .state
            .unwrap_or_default(),
    };
    assert_eq!(state, "0", "b3 upstream: {deny}");

    // A lone `x-b3-sampled: 0`.
    let seen = send(
        &mut conn,
        &origin,
        &get_with("/multi-deny", &[("x-b3-sampled", "0")]),
    );
    none_of(&seen, &["traceparent", "b3"]);
    assert_eq!(only(&seen, "x-b3-sampled"), "0");

    // Single B3 with ids, not sampled: unchanged upstream.
    let single = format!("{}-{}-0", trace_hex(4), span_hex(4));
    let seen = send(&mut conn, &origin, &get_with("/b3", &[("b3", &single)]));
    assert_eq!(only(&seen, "b3"), single);

    // Multi-header B3 with ids, not sampled: the trace and the caller's
    // span go on (what becomes of its parent is the next test's).
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/multi",
            &[
                ("x-b3-traceid", &trace_hex(5)),
                ("x-b3-spanid", &span_hex(5)),
                ("x-b3-sampled", "0"),
            ],
        ),
    );
    assert_eq!(only(&seen, "x-b3-traceid"), trace_hex(5));
    assert_eq!(only(&seen, "x-b3-spanid"), span_hex(5));
    assert_eq!(only(&seen, "x-b3-sampled"), "0");

    // None of them left a span: a sampled request after them on the same
    // connection has its spans exported, and they are all there is.
    sentinel(&mut conn, &origin, &receiver, 9);
    assert_eq!(
        traces(&receiver.spans()),
        BTreeSet::from([trace_hex(9)]),
        "only the sampled request was traced"
    );
    assert_eq!(receiver.spans().len(), 2);
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 1.0);
    proxy.stop();
}

#[test]
fn an_unsampled_b3_set_goes_on_with_the_callers_parent_span() {
    let origin = HttpOrigin::ok("ok");
    let collector = format!("http://{}/v1/traces", ringway_tests::dead_endpoint());
    let (proxy, config) = start(&[origin.addr()], &Tracing::to(&collector).sample(1.0));
    let mut conn = HttpConn::open(config.listen);
    // Not sampled, so ringway makes no span of its own: the upstream's
    // parent is the caller's span, and that span's own parent is what the
    // caller said it was (none, or `x-b3-parentspanid`). A span is never
    // its own parent.
    let mut wrong = Vec::new();
    for (n, caller_parent) in [(1, None), (2, Some(span_hex(102)))] {
        let mut headers = vec![
            ("x-b3-traceid", trace_hex(n)),
            ("x-b3-spanid", span_hex(n)),
            ("x-b3-sampled", "0".to_owned()),
        ];
        if let Some(parent) = &caller_parent {
            headers.push(("x-b3-parentspanid", parent.clone()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let seen = send(&mut conn, &origin, &get_with("/multi", &headers));
        assert_eq!(only(&seen, "x-b3-traceid"), trace_hex(n));
        assert_eq!(only(&seen, "x-b3-spanid"), span_hex(n));
        assert_eq!(only(&seen, "x-b3-sampled"), "0");
        let got: Vec<&str> = seen.headers_named("x-b3-parentspanid");
        let want: Vec<&str> = caller_parent.iter().map(String::as_str).collect();
        if got != want {
            wrong.push(format!(
                "sent {headers:?}: x-b3-parentspanid upstream {got:?}, expected {want:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    proxy.stop();
}

#[test]
fn with_sample_zero_nothing_without_a_decision_is_traced_but_the_upstream_still_gets_a_context() {
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(0.0),
    );
    let mut conn = HttpConn::open(config.listen);
    let seen: Vec<Traceparent> = (0..20)
        .map(|i| traceparent_of(&send(&mut conn, &origin, &Req::get(&format!("/r/{i}")))))
        .collect();
    assert!(seen.iter().all(|tp| tp.flags == "00"), "{seen:?}");
    let trace_ids: BTreeSet<&str> = seen.iter().map(|tp| tp.trace_id.as_str()).collect();
    let parent_ids: BTreeSet<&str> = seen.iter().map(|tp| tp.parent_id.as_str()).collect();
    assert_eq!(trace_ids.len(), 20, "a new trace per request: {seen:?}");
    assert_eq!(parent_ids.len(), 20, "{seen:?}");

    sentinel(&mut conn, &origin, &receiver, 1);
    assert_eq!(traces(&receiver.spans()), BTreeSet::from([trace_hex(1)]));
    assert_eq!(receiver.spans().len(), 2);
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 1.0);
    proxy.stop();
}

#[test]
fn with_sample_one_every_request_is_traced_as_a_root() {
    const REQUESTS: usize = 50;
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(1.0),
    );
    let mut conn = HttpConn::open(config.listen);
    let seen: Vec<Traceparent> = (0..REQUESTS)
        .map(|i| traceparent_of(&send(&mut conn, &origin, &Req::get(&format!("/r/{i}")))))
        .collect();
    assert!(seen.iter().all(|tp| tp.flags == "01"), "{seen:?}");
    let trace_ids: BTreeSet<&str> = seen.iter().map(|tp| tp.trace_id.as_str()).collect();
    assert_eq!(trace_ids.len(), REQUESTS, "a new trace per request");

    let spans = receiver.wait_spans(2 * REQUESTS, WAIT);
    for tp in &seen {
        let (server, clients) = split_trace(&spans_of(&spans, &tp.trace_id));
        assert_eq!(clients.len(), 1);
        assert!(server.span.parent_span_id.is_empty(), "a root span");
        assert_eq!(server.span.flags & IS_REMOTE, 0);
        assert_eq!(parent_id(&clients[0]), span_id(&server));
        assert_eq!(span_id(&clients[0]), tp.parent_id);
    }
    wait_metric(
        config.admin,
        "ringway_trace_requests_total",
        &[],
        REQUESTS as f64,
    );
    assert_eq!(receiver.spans().len(), 2 * REQUESTS, "nothing sent twice");
    proxy.stop();
}

#[test]
fn with_sample_one_half_about_half_the_requests_are_traced() {
    // Binomial(400, 1/2): 200 expected, standard deviation 10. By
    // Hoeffding's inequality the count leaves 120..=280 (80 or more from
    // the mean) with probability at most 2 * exp(-2 * 80^2 / 400) =
    // 2 * e^-32, below 3e-14: a failure here is a broken sampler, not
    // bad luck.
    const REQUESTS: usize = 400;
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(0.5),
    );
    let mut conn = HttpConn::open(config.listen);
    let seen: Vec<Traceparent> = (0..REQUESTS)
        .map(|i| traceparent_of(&send(&mut conn, &origin, &Req::get(&format!("/r/{i}")))))
        .collect();
    let sampled: Vec<&Traceparent> = seen.iter().filter(|tp| tp.sampled()).collect();
    assert!(
        (120..=280).contains(&sampled.len()),
        "{} of {REQUESTS} sampled at a ratio of 0.5",
        sampled.len()
    );
    assert!(seen.iter().all(|tp| tp.flags == "00" || tp.flags == "01"));

    sentinel(&mut conn, &origin, &receiver, 1);
    let spans = receiver.spans();
    assert_eq!(
        spans.len(),
        2 * sampled.len() + 2,
        "two spans per sampled request"
    );
    for tp in &seen {
        let mine = spans_of(&spans, &tp.trace_id);
        let want = if tp.sampled() { 2 } else { 0 };
        assert_eq!(mine.len(), want, "trace {}: {mine:#?}", tp.trace_id);
    }
    wait_metric(
        config.admin,
        "ringway_trace_requests_total",
        &[],
        (sampled.len() + 1) as f64,
    );
    proxy.stop();
}

/// An invalid set of trace headers, and what in it must not reach the
/// upstream.
struct Invalid {
    what: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Invalid {
    fn new(what: &'static str, headers: &[(&'static str, &str)]) -> Self {
        Self {
            what,
            headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        }
    }
}

#[test]
fn invalid_trace_headers_are_never_forwarded_and_a_fresh_trace_takes_their_place() {
    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver).sample(1.0),
    );
    let (t, s) = (trace_hex(1), span_hex(1));
    let cases = [
        Invalid::new(
            "uppercase hex",
            &[
                (
                    "traceparent",
                    &format!("00-{}-{}-01", t.to_uppercase(), s.to_uppercase()),
                ),
                ("tracestate", "k=v"),
            ],
        ),
        Invalid::new(
            "a trace id one digit short",
            &[
                ("traceparent", &format!("00-{}-{s}-01", &t[1..])),
                ("tracestate", "k=v"),
            ],
        ),
        Invalid::new(
            "version ff",
            &[
                ("traceparent", &format!("ff-{t}-{s}-01")),
                ("tracestate", "k=v"),
            ],
        ),
        Invalid::new(
            "an all-zero trace id",
            &[
                ("traceparent", &format!("00-{}-{s}-01", "0".repeat(32))),
                ("tracestate", "k=v"),
            ],
        ),
        Invalid::new(
            "an all-zero parent id",
            &[("traceparent", &format!("00-{t}-{}-01", "0".repeat(16)))],
        ),
        Invalid::new(
            "version 00 with a field after the flags",
            &[("traceparent", &format!("00-{t}-{s}-01-more"))],
        ),
        Invalid::new(
            "two traceparent fields",
            &[
                ("traceparent", &sampled_traceparent(2)),
                ("traceparent", &sampled_traceparent(3)),
            ],
        ),
        Invalid::new(
            "b3 with a bad sampling state",
            &[("b3", &format!("{}-{}-x", trace_hex(4), span_hex(4)))],
        ),
        Invalid::new("b3 that is no b3", &[("b3", "not-a-b3-value")]),
        Invalid::new(
            "x-b3-traceid in uppercase",
            &[
                ("x-b3-traceid", &trace_hex(5).to_uppercase()),
                ("x-b3-spanid", &span_hex(5)),
                ("x-b3-sampled", "1"),
            ],
        ),
        Invalid::new(
            "x-b3-traceid without x-b3-spanid",
            &[("x-b3-traceid", &trace_hex(6)), ("x-b3-sampled", "1")],
        ),
    ];
    let mut conn = HttpConn::open(config.listen);
    let mut fresh = Vec::new();
    for case in &cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let seen = send(&mut conn, &origin, &get_with("/bad", &headers));
        let head = String::from_utf8_lossy(&seen.raw_head).into_owned();
        for (name, value) in &case.headers {
            assert!(
                !seen.headers_named(name).contains(&value.as_str()),
                "{}: the upstream got `{name}: {value}`:\n{head}",
                case.what
            );
            // An id-bearing value appears nowhere, under no name.
            assert!(
                value.len() < 16 || !head.contains(value.as_str()),
                "{}: the upstream got `{value}`:\n{head}",
                case.what
            );
        }
        // Without a valid traceparent a tracestate has nothing to go with.
        none_of(&seen, &["tracestate"]);
        none_of(
            &seen,
            &[
                "b3",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
                "x-b3-flags",
            ],
        );
        let up = traceparent_of(&seen);
        assert_eq!(up.flags, "01", "{}: sampled at a ratio of 1", case.what);
        for (_, value) in &case.headers {
            assert!(
                !value.to_lowercase().contains(&up.trace_id),
                "{}: the invalid header's trace went on: {up:?}",
                case.what
            );
        }
        fresh.push((case.what, up));
    }
    for (what, up) in &fresh {
        let spans = wait_trace(&receiver, &up.trace_id, 2, WAIT);
        let (server, clients) = split_trace(&spans);
        assert!(
            server.span.parent_span_id.is_empty(),
            "{what}: a new root, not a child of the invalid context"
        );
        assert_eq!(span_id(&clients[0]), up.parent_id, "{what}");
    }
    wait_metric(
        config.admin,
        "ringway_trace_invalid_headers_total",
        &[],
        cases.len() as f64,
    );

    // An invalid tracestate (an uppercase key) beside a valid traceparent
    // is dropped alone: the caller's trace goes on, and the request is
    // counted.
    let traceparent = sampled_traceparent(8);
    let seen = send(
        &mut conn,
        &origin,
        &get_with(
            "/bad-state",
            &[("traceparent", &traceparent), ("tracestate", "Key=v")],
        ),
    );
    none_of(&seen, &["tracestate"]);
    let up = traceparent_of(&seen);
    assert_eq!(
        (up.trace_id.as_str(), up.flags.as_str()),
        (trace_hex(8).as_str(), "01")
    );
    let (server, _) = split_trace(&wait_trace(&receiver, &trace_hex(8), 2, WAIT));
    assert_eq!(parent_id(&server), span_hex(8));
    let invalid = cases.len() + 1;
    wait_metric(
        config.admin,
        "ringway_trace_invalid_headers_total",
        &[],
        invalid as f64,
    );

    // A tracestate alone is dropped, but it is not invalid; a valid
    // request counts nothing.
    let seen = send(
        &mut conn,
        &origin,
        &get_with("/state-alone", &[("tracestate", "k=v")]),
    );
    none_of(&seen, &["tracestate"]);
    assert_eq!(traceparent_of(&seen).flags, "01");
    let traceparent = sampled_traceparent(7);
    send(
        &mut conn,
        &origin,
        &get_with("/valid", &[("traceparent", &traceparent)]),
    );
    wait_metric(
        config.admin,
        "ringway_trace_requests_total",
        &[],
        (invalid + 2) as f64,
    );
    assert_eq!(
        metric(config.admin, "ringway_trace_invalid_headers_total"),
        invalid as f64
    );
    proxy.stop();
}

#[test]
fn each_attempt_of_a_retried_request_is_a_client_span_of_its_own() {
    let receiver = OtlpReceiver::start();
    // The endpoint that resets every request it reads: a GET is retried
    // on a reset by default.
    let reset = HttpOrigin::start(|_| Reply::reset());
    let good = HttpOrigin::ok("good");
    // Round robin, so first attempts meet the resetting endpoint in turn;
    // no ejection, so it stays in the rotation.
    let cluster = Cluster::new("app", &[reset.addr(), good.addr()])
        .lb("round_robin")
        .key("consecutive_gateway_failures", "0");
    let tracing = Tracing::to_receiver(&receiver)
        .sample(0.0)
        .service_name(SERVICE);
    let config = HttpConfig::new()
        .tracing(&tracing)
        .route(Route::new("all").cluster("app"))
        .cluster_with(cluster);
    let proxy = Ringway::start(&config.to_toml());

    const REQUESTS: u64 = 4;
    let mut conn = HttpConn::open(config.listen);
    for n in 1..=REQUESTS {
        let traceparent = sampled_traceparent(n);
        let response = conn.exchange(&get_with("/retried", &[("traceparent", &traceparent)]));
        assert_eq!(
            (response.status, response.body_text()),
            (200, "good".to_owned())
        );
    }
    let resets = reset.requests();
    assert!(
        !resets.is_empty(),
        "some first attempt met the resetting endpoint"
    );

    // A server span is queued after its client spans, on the same worker:
    // once every server span is in, every client span is.
    let spans = wait::poll("every server span", WAIT, || {
        let spans = receiver.spans();
        let servers = spans
            .iter()
            .filter(|s| ringway_tests::trace::is_server(s))
            .count();
        if servers as u64 >= REQUESTS {
            Ok(spans)
        } else {
            Err(format!("{servers} server spans"))
        }
    });
    let mut retried = 0;
    for n in 1..=REQUESTS {
        let (server, clients) = split_trace(&spans_of(&spans, &trace_hex(n)));
        assert_eq!(parent_id(&server), span_hex(n));
        assert_eq!(server.int_attr("http.response.status_code"), Some(200));
        assert_eq!(
            server.str_attr("ringway.upstream"),
            Some(good.addr().to_string().as_str()),
            "the last attempt's endpoint"
        );
        for client in &clients {
            assert_eq!(
                parent_id(client),
                span_id(&server),
                "every attempt under the server span"
            );
        }
        let ids: BTreeSet<String> = clients.iter().map(span_id).collect();
        assert_eq!(ids.len(), clients.len(), "a span id per attempt");
        let port = |span: &ReceivedSpan| span.int_attr("network.peer.port");
        let at_good_port = Some(i64::from(good.addr().port()));
        match clients.as_slice() {
            [only] => assert_eq!(port(only), at_good_port, "{clients:#?}"),
            [a, b] => {
                retried += 1;
                // Told apart by endpoint, not by the order they came in.
                let (first, second) = if port(a) == at_good_port {
                    (b, a)
                } else {
                    (a, b)
                };
                // The failed attempt: at the resetting endpoint, no answer,
                // an error type and an error status.
                assert_eq!(
                    first.int_attr("network.peer.port"),
                    Some(i64::from(reset.addr().port())),
                    "{clients:#?}"
                );
                assert_eq!(first.str_attr("error.type"), Some("upstream_reset"));
                assert_eq!(first.attr("http.response.status_code"), None);
                assert_eq!(status_code(first), StatusCode::Error as i32);
                assert_eq!(first.attr("http.request.resend_count"), None);
                // The retry: at the good endpoint, answered.
                assert_eq!(port(second), at_good_port, "{clients:#?}");
                assert_eq!(second.int_attr("http.response.status_code"), Some(200));
                assert_eq!(second.attr("error.type"), None);
                assert_eq!(second.int_attr("http.request.resend_count"), Some(1));
                // Each endpoint was told its own attempt as the parent.
                let at_reset = resets
                    .iter()
                    .map(traceparent_of)
                    .find(|tp| tp.trace_id == trace_hex(n))
                    .expect("the failed attempt reached the resetting endpoint");
                assert_eq!(at_reset.parent_id, span_id(first));
                let at_good = good
                    .requests()
                    .iter()
                    .map(traceparent_of)
                    .find(|tp| tp.trace_id == trace_hex(n))
                    .expect("the retry reached the good endpoint");
                assert_eq!(at_good.parent_id, span_id(second));
            }
            other => panic!("trace {n}: {} client spans: {other:#?}", other.len()),
        }
    }
    assert_eq!(retried, resets.len(), "one retried trace per reset");
    assert_eq!(
        receiver.spans().len() as u64,
        REQUESTS * 2 + retried as u64,
        "one server span per request, one client span per attempt"
    );
    proxy.stop();
}

/// Waits until the access log at `path` has a JSON line whose `path` is
/// `target`, and returns it parsed.
fn wait_log_line(path: &std::path::Path, target: &str) -> serde_json::Value {
    wait::poll(&format!("an access log line for {target}"), WAIT, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|line| line["path"] == target)
            .ok_or_else(|| format!("{} lines so far:\n{text}", text.lines().count()))
    })
}

#[test]
fn an_sdk_client_ringway_and_the_access_log_agree_on_the_trace() {
    let receiver = OtlpReceiver::start();
    // The origin tells the client which traceparent it got.
    let origin = HttpOrigin::start(|r| {
        Reply::ok(b"ok").header(
            "x-seen-traceparent",
            r.header("traceparent").unwrap_or("none"),
        )
    });
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = dir.path().join("access.log");
    let config = HttpConfig::forward_all(&[origin.addr()])
        .tracing(
            &Tracing::to_receiver(&receiver)
                .sample(0.0)
                .service_name(SERVICE),
        )
        .listener_key(
            "access_log",
            &format!(
                "{{ path = {} }}",
                quote(log.to_str().expect("a UTF-8 path"))
            ),
        );
    let proxy = Ringway::start(&config.to_toml());

    // An application on the OpenTelemetry Python SDK calls through
    // ringway, sending its client span's context and exporting that span
    // to the same collector.
    let printed = otel_python::run(
        "otel_sdk_client.py",
        &[
            &format!("http://{}/sdk/call", config.listen),
            &receiver.url(),
        ],
        b"",
    );
    let sdk: serde_json::Value = serde_json::from_str(&printed).expect("the script's JSON");
    assert_eq!(sdk["status"], 200, "{sdk}");
    let trace_id = sdk["trace_id"].as_str().expect("a trace id").to_owned();
    let sdk_span = sdk["span_id"].as_str().expect("a span id").to_owned();
    let sent = Traceparent::parse(sdk["sent"].as_str().expect("a traceparent"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            sent.trace_id.as_str(),
            sent.parent_id.as_str(),
            sent.sampled()
        ),
        (trace_id.as_str(), sdk_span.as_str(), true),
        "the SDK sent its sampled span as the parent: {sdk}"
    );
    // The SDK sets flags beyond `sampled` (W3C level 2's random-trace-id
    // bit): ringway keeps the caller's flags with the caller's trace.
    let echoed = Traceparent::parse(sdk["echoed"].as_str().expect("a traceparent"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(echoed.flags, sent.flags, "{sdk}");

    // The SDK reads what ringway sent upstream as a valid, remote,
    // sampled context of the same trace, with a parent of ringway's.
    let seen = &sdk["seen"];
    assert_eq!(seen["valid"], true, "{sdk}");
    assert_eq!(seen["remote"], true, "{sdk}");
    assert_eq!(seen["sampled"], true, "{sdk}");
    assert_eq!(seen["trace_id"], trace_id.as_str(), "{sdk}");
    let upstream_parent = seen["span_id"].as_str().expect("a span id").to_owned();
    assert_ne!(upstream_parent, sdk_span);

    // One trace at the collector: the SDK's client span, ringway's server
    // span under it, ringway's client span under that, the one the origin
    // was given as its parent.
    let spans = wait_trace(&receiver, &trace_id, 3, WAIT);
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let from_sdk = spans
        .iter()
        .find(|s| s.resource_str("service.name") == Some("otel-python-client"))
        .expect("the SDK's span");
    assert_eq!(span_id(from_sdk), sdk_span);
    assert!(from_sdk.span.parent_span_id.is_empty());
    let ours: Vec<ReceivedSpan> = spans
        .iter()
        .filter(|s| s.resource_str("service.name") == Some(SERVICE))
        .cloned()
        .collect();
    let (server, clients) = split_trace(&ours);
    assert_eq!(parent_id(&server), sdk_span);
    assert_eq!(span_id(&clients[0]), upstream_parent);
    assert_eq!(parent_id(&clients[0]), span_id(&server));

    // The access log line of that request names the same trace; one that
    // was not traced names none.
    let line = wait_log_line(&log, "/sdk/call");
    assert_eq!(
        line["trace_id"],
        hex(&server.span.trace_id).as_str(),
        "{line}"
    );
    assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
    let unsampled = format!("00-{}-{}-00", trace_hex(1), span_hex(1));
    let response = HttpConn::open(config.listen)
        .exchange(&get_with("/not-traced", &[("traceparent", &unsampled)]));
    assert_eq!(response.status, 200);
    let line = wait_log_line(&log, "/not-traced");
    assert_eq!(line["trace_id"], serde_json::Value::Null, "{line}");
    proxy.stop();
}

/// Sends `per_client` GETs on each of `clients` connections at once, and
/// returns every status.
fn load(listen: SocketAddr, clients: usize, per_client: usize, path: &'static str) -> Vec<u16> {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let mut conn = HttpConn::open(listen);
                (0..per_client)
                    .map(|_| conn.exchange(&Req::get(path)).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client thread"))
        .collect()
}

#[test]
fn a_collector_that_is_not_there_costs_no_request() {
    // Nothing listens there, nor will: a connect is refused at once.
    let dead = ringway_tests::dead_endpoint();
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to(&format!("http://{dead}/v1/traces")).sample(1.0),
    );
    let statuses = load(config.listen, 4, 125, "/down");
    assert_eq!(statuses.len(), 500);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 500.0);
    wait_metric_until(
        config.admin,
        "ringway_trace_export_failures_total",
        "above 0",
        |v| v > 0.0,
    );
    // Every span was taken from the workers and is held for later (the
    // default bound, 10,000, is far above the 1,000 spans).
    wait_metric(config.admin, "ringway_trace_spans_held", &[], 1_000.0);
    let metrics = admin::metrics(config.admin);
    assert_eq!(metrics.sum("ringway_trace_spans_exported_total"), 0.0);
    assert_eq!(metrics.sum("ringway_trace_spans_dropped_total"), 0.0);
    assert_eq!(
        metrics.sum("ringway_trace_spans_backlog_dropped_total"),
        0.0
    );
    proxy.stop();
}

#[test]
fn a_stalled_collector_costs_no_request_and_the_held_spans_stay_bounded() {
    const MAX_HELD: f64 = 1_000.0;
    let receiver = OtlpReceiver::start();
    receiver.set_mode(Mode::Stall);
    let origin = HttpOrigin::ok("ok");
    let (proxy, config) = start(
        &[origin.addr()],
        &Tracing::to_receiver(&receiver)
            .sample(1.0)
            .max_held_spans(MAX_HELD as u64),
    );
    // The held-spans gauge, read as often as /metrics answers, for the
    // whole run: its highest reading.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, admin_addr) = (Arc::clone(&stop), config.admin);
        thread::spawn(move || {
            let (mut highest, mut reads) = (0.0f64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                highest = highest.max(metric(admin_addr, "ringway_trace_spans_held"));
                reads += 1;
                // Pacing only, so the readings do not crowd out the
                // proxy on a small machine; nothing waits on it.
                thread::sleep(Duration::from_millis(10));
            }
            (highest, reads)
        })
    };

    // 500 requests while the collector hangs: all served.
    let first = load(config.listen, 4, 125, "/stalled");
    assert!(first.iter().all(|&s| s == 200), "{first:?}");
    receiver.wait_tally("a request to the collector hangs", WAIT, |t| t.stalled >= 1);
    // 1,500 more: 2,000 sampled requests, 4,000 spans, four times what
    // the exporter may hold.
    let second = load(config.listen, 4, 375, "/stalled");
    assert_eq!(first.len() + second.len(), 2_000);
    assert!(second.iter().all(|&s| s == 200), "{second:?}");
    wait_metric(config.admin, "ringway_trace_requests_total", &[], 2_000.0);

    // The exporter takes every span from the workers and keeps the newest
    // within its bound: the rest is dropped and counted.
    wait::poll("every span taken: held or dropped", WAIT, || {
        let m = admin::metrics(config.admin);
        let (held, dropped) = (
            m.sum("ringway_trace_spans_held"),
            m.sum("ringway_trace_spans_backlog_dropped_total"),
        );
        if held + dropped == 4_000.0 {
            Ok(())
        } else {
            Err(format!("held {held}, backlog dropped {dropped}"))
        }
    });
    let during = admin::metrics(config.admin);
    assert!(during.sum("ringway_trace_spans_held") <= MAX_HELD);
    assert!(during.sum("ringway_trace_spans_backlog_dropped_total") >= 3_000.0);
    assert_eq!(during.sum("ringway_trace_spans_exported_total"), 0.0);
    assert_eq!(during.sum("ringway_trace_spans_dropped_total"), 0.0);
    assert_eq!(receiver.tally().spans, 0, "a stalled request keeps nothing");

    // The collector comes back: what is held goes out.
    receiver.set_mode(Mode::Accept);
    wait_metric_until(
        config.admin,
        "ringway_trace_spans_held",
        "back to 0 with spans exported",
        |held| held == 0.0 && metric(config.admin, "ringway_trace_spans_exported_total") > 0.0,
    );
    stop.store(true, Ordering::Relaxed);
    let (highest, reads) = sampler.join().expect("the sampler");
    let after = admin::metrics(config.admin);
    let exported = after.sum("ringway_trace_spans_exported_total");
    let dropped = after.sum("ringway_trace_spans_backlog_dropped_total");
    assert!(
        exported > 0.0 && exported <= MAX_HELD,
        "exported {exported}"
    );
    assert_eq!(
        exported + dropped,
        4_000.0,
        "every span exported or counted dropped"
    );
    assert!(after.sum("ringway_trace_export_failures_total") > 0.0);
    assert_eq!(
        receiver.tally().spans as f64,
        exported,
        "nothing sent twice"
    );
    assert!(
        highest <= MAX_HELD,
        "held {highest} spans at one reading of {reads}, over the bound"
    );
    eprintln!("held spans: at most {highest} over {reads} readings");
    proxy.stop();
}

/// A valid config with `[tracing]` holding `tracing` (the section's
/// lines, written as given).
fn config_with_tracing(tracing: &str) -> String {
    let origin: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let base = HttpConfig::forward_all(&[origin]).to_toml();
    format!("{tracing}\n{base}")
}

/// `ringway check` on `text` fails with exit code 2 and one error naming
/// the file, the line holding `line_with`, `key` and `reason`.
fn assert_check_refuses(text: &str, line_with: &str, key: &str, reason: &str) {
    let file = write_config(text);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let output = run_to_exit(&["check", path], Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stderr:\n{stderr}\nfile:\n{text}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error expected; stderr:\n{stderr}");
    let line = 1 + text
        .lines()
        .position(|l| l.contains(line_with))
        .unwrap_or_else(|| panic!("{line_with:?} is not in the file"));
    let error = errors[0];
    assert!(
        error.starts_with(&format!("error: {path}:{line}:")),
        "the error names the file and line {line}: {error}"
    );
    assert!(
        error.contains(&format!(": {key}: ")),
        "the error names `{key}`: {error}"
    );
    assert!(error.contains(reason), "the error says {reason:?}: {error}");
}

#[test]
fn ringway_check_refuses_bad_tracing_keys_naming_them() {
    // The valid section passes.
    let valid = config_with_tracing(
        "[tracing]\ncollector = \"http://127.0.0.1:4318/v1/traces\"\nsample = 0.1\n",
    );
    let file = write_config(&valid);
    let output = run_to_exit(
        &["check", file.path().to_str().expect("a UTF-8 temp path")],
        Duration::from_secs(20),
    );
    assert!(
        output.status.success(),
        "{}\n{valid}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert_check_refuses(
        &config_with_tracing("[tracing]\ncollector = \"https://otel.example:4318/v1/traces\"\n"),
        "https://",
        "tracing.collector",
        "https is not supported yet",
    );
    assert_check_refuses(
        &config_with_tracing(
            "[tracing]\ncollector = \"http://127.0.0.1:4318/v1/traces\"\nsample = 1.5\n",
        ),
        "sample = 1.5",
        "tracing.sample",
        "sample 1.5 is not from 0 to 1",
    );
    assert_check_refuses(
        &config_with_tracing("[tracing]\nsample = 0.5\n"),
        "[tracing]",
        "tracing.collector",
        "missing required key `collector`",
    );
    assert_check_refuses(
        &config_with_tracing(
            "[tracing]\ncollector = \"http://127.0.0.1:4318/v1/traces\"\nmax_held_spans = 10\n",
        ),
        "max_held_spans",
        "tracing.max_held_spans",
        "10 is not from 1000 to 1000000",
    );
    assert_check_refuses(
        &config_with_tracing(
            "[tracing]\ncollector = \"http://127.0.0.1:4318/v1/traces\"\nbatch_delay = \"soon\"\n",
        ),
        "batch_delay",
        "tracing.batch_delay",
        "soon",
    );
}
