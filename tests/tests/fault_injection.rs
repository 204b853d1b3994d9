//! Fault injection end to end: the real binary, real clients, a recording
//! origin.
//!
//! - a route's aborts and delays over 10,000 requests: their counts within
//!   a binomial tolerance; every aborted request answered by ringway with
//!   its status and `x-ringway-fault: abort`, never sent upstream; every
//!   delayed one answered by the origin with `x-ringway-fault: delay`
//!   added; the counters equal to what the client saw; no error counted;
//!   every access
//!   log line marked as its request was, a delayed one taking at least the
//!   delay;
//! - the header-triggered mode: requests without the header are never
//!   touched, those with it at the share;
//! - a TCP listener's aborts (a reset before any upstream connect) and
//!   delays (the upstream connect after the delay).
//!
//! Tolerances are on counts: each share is checked against 5 standard
//! deviations of its binomial count, which a correct implementation
//! exceeds with probability about 5.7e-7 per check (normal approximation,
//! two-sided); the few checks of this file together fail falsely less
//! than once in 100,000 runs.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use ringway_kit::admin;
use ringway_kit::Ringway;
use ringway_tests::access_log::{json, wait_lines, Counts};
use ringway_tests::http_client::{metric_sum, wait_metric, HttpConn, Req};
use ringway_tests::http_config::{AccessLog, HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::net::try_client;
use ringway_tests::origin::{self, Origin};
use ringway_tests::ProxyConfig;
use serde_json::Value;

/// Bound on every wait for counters and the log to catch up (a debug
/// build on two busy cores).
const WAIT: Duration = Duration::from_secs(60);

/// Whether `count` of `n` trials is within 5 standard deviations of a
/// binomial share of `percent`.
fn within_tolerance(count: usize, n: usize, percent: f64) -> bool {
    let p = percent / 100.0;
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    (count as f64 - mean).abs() <= 5.0 * sigma
}

/// What the client saw of one request.
#[derive(Debug)]
struct Seen {
    path: String,
    status: u16,
    fault: Option<String>,
    body: String,
}

/// Sends `n` GETs of `/r/{i}` (with `header` when given) over `clients`
/// keep-alive connections at once; returns what each got.
fn send_all(
    addr: std::net::SocketAddr,
    n: usize,
    clients: usize,
    header: Option<&'static str>,
) -> Vec<Seen> {
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            thread::spawn(move || {
                let mut conn = HttpConn::open(addr);
                let mut seen = Vec::new();
                for i in (c..n).step_by(clients) {
                    let path = format!("/r/{i}");
                    let mut req = Req::get(&path);
                    if let Some(name) = header {
                        req = req.header(name, "on");
                    }
                    let response = conn.exchange(&req);
                    seen.push(Seen {
                        path,
                        status: response.status,
                        fault: response.header("x-ringway-fault").map(str::to_owned),
                        body: response.body_text(),
                    });
                }
                seen
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("a client thread"))
        .collect()
}

/// The fault counter of route `route` for `fault`.
fn route_faults(admin: std::net::SocketAddr, route: &str, fault: &str) -> f64 {
    metric_sum(
        &admin::metrics(admin),
        "ringway_http_faults_injected_total",
        &[("listener", "web"), ("route", route), ("fault", fault)],
    )
}

#[test]
fn aborts_and_delays_take_their_shares_of_10000_requests_and_are_told_apart() {
    const N: usize = 10_000;
    const DELAY_MS: f64 = 20.0;
    let origin = HttpOrigin::start(|_| Reply::ok(b"from the origin"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("access.log");
    let config = HttpConfig::new()
        // Room for every record of the run: none may be dropped.
        .runtime_key("access_log_buffer", "16777216")
        .access_log(&AccessLog::to(log.to_str().expect("UTF-8 path")))
        .route(Route::new("all").cluster("app").key(
            "fault",
            r#"{ abort_status = 503, abort_percent = 5, delay = "20ms", delay_percent = 10 }"#,
        ))
        .cluster("app", &[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let seen = send_all(config.listen, N, 4, None);
    assert_eq!(seen.len(), N);

    // What the client saw: a 200 from the origin (marked when it was
    // delayed), or ringway's abort.
    let mut aborted = HashSet::new();
    let mut delayed = HashSet::new();
    for s in &seen {
        match (s.status, s.fault.as_deref()) {
            (200, None) => assert_eq!(s.body, "from the origin", "{s:?}"),
            (200, Some("delay")) => {
                assert_eq!(s.body, "from the origin", "{s:?}");
                delayed.insert(s.path.clone());
            }
            (503, Some("abort")) => {
                assert!(s.body.starts_with("ringway: fault injected"), "{s:?}");
                aborted.insert(s.path.clone());
            }
            _ => panic!("neither a proxied 200 nor an injected abort: {s:?}"),
        }
    }
    let aborts = aborted.len();
    assert!(
        within_tolerance(aborts, N, 5.0),
        "{aborts} aborts of {N} at 5%"
    );

    // The origin got exactly the requests that were not aborted.
    let reached: HashSet<String> = origin
        .wait_requests(N - aborts, WAIT)
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(reached.len(), N - aborts);
    assert!(reached.is_disjoint(&aborted));

    // The counters say what the client saw; nothing is an error.
    wait_metric(
        config.admin,
        "ringway_http_faults_injected_total",
        &[("route", "all"), ("fault", "abort")],
        aborts as f64,
    );
    wait_metric(config.admin, "ringway_http_requests_total", &[], N as f64);
    let metrics = admin::metrics(config.admin);
    let delays = metric_sum(
        &metrics,
        "ringway_http_faults_injected_total",
        &[("route", "all"), ("fault", "delay")],
    ) as usize;
    assert!(
        within_tolerance(delays, N, 10.0),
        "{delays} delays of {N} at 10%"
    );
    assert_eq!(delayed.len(), delays);
    assert_eq!(
        metric_sum(&metrics, "ringway_http_errors_total", &[]),
        0.0,
        "{}",
        metrics.text
    );
    // Aborts are the route's own 5xx answers; the cluster's are all 2xx.
    let responses = |cluster: &str, class: &str| {
        metric_sum(
            &metrics,
            "ringway_http_responses_total",
            &[("route", "all"), ("cluster", cluster), ("class", class)],
        )
    };
    assert_eq!(responses("", "5xx"), aborts as f64);
    assert_eq!(responses("app", "5xx"), 0.0);
    assert_eq!(responses("app", "2xx"), (N - aborts) as f64);
    let stats = admin::stats(config.admin);
    let route = &stats.json["http"]["listeners"][0]["routes"][0];
    assert_eq!(route["faults_injected"]["abort"], aborts);
    assert_eq!(route["faults_injected"]["delay"], delays);

    // Every line is marked as its request was; a delayed one took at
    // least the delay (a bound the code guarantees, not a timing).
    let counts = Counts::wait(config.admin, "every record written", WAIT, |c| {
        c.written >= N as u64
    });
    assert_eq!(counts.dropped, 0);
    let lines = wait_lines(&log, N, WAIT);
    let mut marked = (0, 0);
    for line in &lines {
        let v = json(line);
        let path = v["path"].as_str().expect("a path");
        match v["fault"].as_str() {
            Some("abort") => {
                assert!(aborted.contains(path), "{line}");
                assert_eq!(v["status"], 503, "{line}");
                assert_eq!(v["error"], Value::Null, "{line}");
                assert_eq!(v["upstream"], Value::Null, "{line}");
                assert_eq!(v["cluster"], Value::Null, "{line}");
                marked.0 += 1;
            }
            Some("delay") => {
                assert!(delayed.contains(path), "{line}");
                assert_eq!(v["status"], 200, "{line}");
                let ms = v["duration_ms"].as_f64().expect("a duration");
                assert!(ms >= DELAY_MS, "a delayed request took {ms} ms: {line}");
                marked.1 += 1;
            }
            None => assert!(!aborted.contains(path) && !delayed.contains(path), "{line}"),
            Some(other) => panic!("unknown fault {other}: {line}"),
        }
    }
    assert_eq!(marked, (aborts, delays));
    eprintln!("{N} requests: {aborts} aborted (5%), {delays} delayed (10%)");
    let exit = proxy.stop();
    exit.assert_clean();
}

#[test]
fn a_header_triggered_fault_touches_only_requests_with_the_header() {
    const N: usize = 2_000;
    let origin = HttpOrigin::ok("ok");
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app").key(
            "fault",
            r#"{ abort_status = 429, abort_percent = 20, header = "x-fault-test" }"#,
        ))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    // Without the header: never touched.
    let plain = send_all(config.listen, N, 2, None);
    assert!(
        plain.iter().all(|s| s.status == 200 && s.fault.is_none()),
        "a request without the header was faulted"
    );
    wait_metric(config.admin, "ringway_http_requests_total", &[], N as f64);
    assert_eq!(route_faults(config.admin, "all", "abort"), 0.0);

    // With it: aborted at the share, with the configured status.
    let marked = send_all(config.listen, N, 2, Some("X-Fault-Test"));
    let aborts = marked
        .iter()
        .filter(|s| s.status == 429 && s.fault.as_deref() == Some("abort"))
        .count();
    let ok = marked.iter().filter(|s| s.status == 200).count();
    assert_eq!(aborts + ok, N);
    assert!(
        within_tolerance(aborts, N, 20.0),
        "{aborts} aborts of {N} at 20%"
    );
    eprintln!("{N} requests with the header: {aborts} aborted (20%); {N} without: none");
    wait_metric(
        config.admin,
        "ringway_http_faults_injected_total",
        &[("route", "all"), ("fault", "abort")],
        aborts as f64,
    );
    assert_eq!(
        origin.wait_requests(2 * N - aborts, WAIT).len(),
        2 * N - aborts
    );
}

#[test]
fn an_aborted_request_with_a_body_closes_its_connection_and_others_go_on() {
    // Every request aborted: one with a body leaves it unread, so its
    // connection closes after the answer; a bodiless one keeps it.
    let origin = HttpOrigin::ok("ok");
    let config = HttpConfig::new()
        .route(
            Route::new("faulty")
                .path_prefix("/faulty")
                .cluster("app")
                .key("fault", "{ abort_percent = 100 }"),
        )
        .route(Route::new("rest").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let first = conn.exchange(&Req::get("/faulty/a"));
    assert_eq!(first.status, 503);
    assert_eq!(first.header("x-ringway-fault"), Some("abort"));
    assert_eq!(first.header("x-ringway-error"), None);
    // The same connection serves the next request, on another route.
    assert_eq!(conn.exchange(&Req::get("/other")).status, 200);
    let posted = conn.exchange(&Req::post("/faulty/b").body(&[b'x'; 4096]));
    assert_eq!(posted.status, 503);
    assert_eq!(posted.header("connection"), Some("close"));
    conn.assert_closed(WAIT);
    assert_eq!(origin.requests().len(), 1, "{}", origin.summary());
}

/// A TCP config whose listener has `fault`.
fn tcp_with_fault(config: &ProxyConfig, fault: &str) -> String {
    let text = config.to_toml();
    let listener = "protocol = \"tcp\"\ncluster = \"app\"\n";
    assert!(text.contains(listener));
    text.replacen(listener, &format!("{listener}fault = {fault}\n"), 1)
}

/// Whether one connection to `addr` echoes `ping` back whole (else it was
/// reset).
fn echoed(addr: std::net::SocketAddr) -> bool {
    // Reset right after the accept, the connection may fail as its
    // options are set.
    let Ok(mut stream) = try_client(addr) else {
        return false;
    };
    stream.set_read_timeout(Some(WAIT)).expect("a read timeout");
    if stream.write_all(b"ping").is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    while got.len() < 4 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    got == b"ping"
}

fn tcp_faults(admin: std::net::SocketAddr, fault: &str) -> f64 {
    metric_sum(
        &admin::metrics(admin),
        "ringway_tcp_faults_injected_total",
        &[("listener", "ingress"), ("fault", fault)],
    )
}

#[test]
fn a_tcp_listener_resets_and_delays_its_shares_of_connections() {
    const N: usize = 400;
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]);
    let text = tcp_with_fault(
        &config,
        r#"{ abort_percent = 25, delay = "10ms", delay_percent = 25 }"#,
    );
    let _proxy = Ringway::start(&text);

    let served = (0..N).filter(|_| echoed(config.listen)).count();
    let aborts = N - served;
    assert!(
        within_tolerance(aborts, N, 25.0),
        "{aborts} resets of {N} at 25%"
    );
    // An aborted connection never reached the origin.
    let reached = ringway_kit::wait::until(WAIT, || match origin.accepted() as usize {
        n if n == served => Ok(()),
        n => Err(n.to_string()),
    });
    assert!(
        reached.is_ok(),
        "the origin accepted {reached:?}, not {served}"
    );
    wait_metric(
        config.admin,
        "ringway_tcp_faults_injected_total",
        &[("fault", "abort")],
        aborts as f64,
    );
    let delays = tcp_faults(config.admin, "delay") as usize;
    assert!(
        within_tolerance(delays, N, 25.0),
        "{delays} delays of {N} at 25%"
    );
    eprintln!("{N} connections: {aborts} reset (25%), {delays} delayed (25%)");
    // Counted apart from every failure of the TCP path.
    let stats = admin::stats(config.admin);
    assert_eq!(stats.sum("no_upstream"), 0);
    assert_eq!(stats.json["http"]["tcp_faults"][0]["listener"], "ingress");
    assert_eq!(
        stats.json["http"]["tcp_faults"][0]["faults_injected"]["abort"],
        aborts
    );
}

#[test]
fn a_delayed_tcp_connection_reaches_its_upstream_after_the_delay() {
    let delay = Duration::from_millis(500);
    let origin = Origin::start(origin::echo);
    let config = ProxyConfig::new(&[origin.addr()]);
    let text = tcp_with_fault(&config, r#"{ delay = "500ms", delay_percent = 100 }"#);
    let _proxy = Ringway::start(&text);

    let served: Vec<bool> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let ok = echoed(config.listen);
            // The echo needs the upstream connect, which starts after the
            // delay: a lower bound the code guarantees.
            assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
            ok
        })
        .collect();
    assert_eq!(served, [true; 3]);
    wait_metric(
        config.admin,
        "ringway_tcp_faults_injected_total",
        &[("fault", "delay")],
        3.0,
    );
    assert_eq!(tcp_faults(config.admin, "abort"), 0.0);
}

#[test]
fn clients_that_ask_for_delays_hold_only_their_own_requests() {
    // Any client may send the header, and each delayed request holds its
    // connection and its request's parts for the delay: 100 of them at
    // once must not hold up the requests of others on the same route,
    // nor the worker (the wait is a timer on the ring).
    const HELD: usize = 100;
    let origin = HttpOrigin::ok("ok");
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app").key(
            "fault",
            r#"{ delay = "60s", delay_percent = 100, header = "x-fault-test" }"#,
        ))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let held: Vec<HttpConn> = (0..HELD)
        .map(|i| {
            let mut conn = HttpConn::open(config.listen);
            let req = Req::get(&format!("/held/{i}")).header("x-fault-test", "1");
            conn.send(&req);
            conn
        })
        .collect();
    wait_metric(
        config.admin,
        "ringway_http_faults_injected_total",
        &[("route", "all"), ("fault", "delay")],
        HELD as f64,
    );
    // Every held request is waiting; the others are served meanwhile.
    let others = send_all(config.listen, 200, 4, None);
    assert!(others.iter().all(|s| s.status == 200 && s.fault.is_none()));
    let reached = origin.requests();
    assert_eq!(reached.len(), 200);
    assert!(reached.iter().all(|r| !r.path().starts_with("/held/")));
    drop(held);
}

#[test]
fn the_server_span_names_the_injected_fault() {
    use ringway_tests::otlp_receiver::OtlpReceiver;
    use ringway_tests::trace::{is_client, split_trace, wait_trace, Tracing};

    let receiver = OtlpReceiver::start();
    let origin = HttpOrigin::ok("ok");
    let config = HttpConfig::new()
        .tracing(&Tracing::to_receiver(&receiver).sample(1.0))
        .route(
            Route::new("aborting")
                .path_prefix("/abort")
                .cluster("app")
                .key("fault", "{ abort_percent = 100 }"),
        )
        .route(
            Route::new("delaying")
                .path_prefix("/delay")
                .cluster("app")
                .key("fault", r#"{ delay = "10ms", delay_percent = 100 }"#),
        )
        .route(Route::new("plain").cluster("app"))
        .cluster("app", &[origin.addr()]);
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let traced = |conn: &mut HttpConn, path: &str, n: u8| {
        let trace_id = format!("{:032x}", 0xfa00 + u32::from(n));
        let parent = format!("00-{trace_id}-00000000000000aa-01");
        let response = conn.exchange(&Req::get(path).header("traceparent", &parent));
        (trace_id, response.status)
    };
    let (aborted, status) = traced(&mut conn, "/abort", 1);
    assert_eq!(status, 503);
    let (delayed, status) = traced(&mut conn, "/delay", 2);
    assert_eq!(status, 200);
    let (plain, status) = traced(&mut conn, "/plain", 3);
    assert_eq!(status, 200);

    // An abort has no attempt: its server span alone.
    let spans = wait_trace(&receiver, &aborted, 1, WAIT);
    let (server, clients) = split_trace(&spans);
    assert!(clients.is_empty(), "{clients:#?}");
    assert_eq!(server.str_attr("ringway.fault"), Some("abort"));
    assert_eq!(server.int_attr("http.response.status_code"), Some(503));
    // A delayed request goes upstream: the mark is on the server span
    // only.
    let spans = wait_trace(&receiver, &delayed, 2, WAIT);
    let (server, clients) = split_trace(&spans);
    assert_eq!(server.str_attr("ringway.fault"), Some("delay"));
    assert!(clients.iter().all(is_client));
    assert!(clients.iter().all(|c| c.attr("ringway.fault").is_none()));
    let spans = wait_trace(&receiver, &plain, 2, WAIT);
    let (server, _) = split_trace(&spans);
    assert_eq!(server.attr("ringway.fault"), None);
}

#[test]
fn a_fault_whose_shares_exceed_100_is_refused_by_check() {
    use ringway_kit::launcher::{run_to_exit, write_config};
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app").key(
            "fault",
            r#"{ abort_percent = 60, delay = "1s", delay_percent = 50 }"#,
        ))
        .cluster("app", &["127.0.0.1:9".parse().expect("an address")]);
    let text = config.to_toml();
    let file = write_config(&text);
    let path = file.path().to_str().expect("a UTF-8 temp path");
    let output = run_to_exit(&["check", path], WAIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let line = 1 + text
        .lines()
        .position(|l| l.contains("fault ="))
        .expect("the fault line");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("an error line");
    assert!(
        error.starts_with(&format!("error: {path}:{line}:")),
        "{error}"
    );
    assert!(
        error.contains(": listeners[0].routes[0].fault.delay_percent: "),
        "{error}"
    );
    assert!(error.contains("add up to more than 100"), "{error}");
}
