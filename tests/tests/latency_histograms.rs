//! Latency histograms whose counts equal the requests sent and whose
//! buckets agree with the delays the origin puts in: 20 requests answered
//! at once and 10 held for 300 ms (by path), through two workers, and one
//! request that matches no route.
//!
//! Only what the delays prove is asserted. A held request took at least
//! 300 ms from the proxy's point of view (its request duration, its time to
//! the first byte of the answer, and the life of its client connection),
//! so it is never in a bucket at or below 0.25 s, and each adds at least
//! 0.3 s to a `_sum`. The quick ones are not timed against any bound: a
//! slow machine may take as long as it likes over them.

use std::thread;
use std::time::Duration;

use ringway_kit::admin::{self, Metrics, Stats};
use ringway_kit::wait::poll;
use ringway_kit::Ringway;
use ringway_tests::histograms::must_histogram;
use ringway_tests::http_client::{metric_sum, HttpConn, Req};
use ringway_tests::http_config::{HttpConfig, Route};
use ringway_tests::http_origin::{HttpOrigin, Reply};
use ringway_tests::up_to_two_cores;

/// Bound on waits for the counts to show what was sent.
const WAIT: Duration = Duration::from_secs(10);
/// How long the origin holds an answer to `/app/slow/...`.
const SLOW: Duration = Duration::from_millis(300);
/// [`SLOW`] in seconds and in microseconds.
const SLOW_SECONDS: f64 = 0.3;
const SLOW_US: u64 = 300_000;
/// A bucket bound below [`SLOW`]: no held request can be at or below it.
const BELOW_SLOW: f64 = 0.25;
/// Requests answered at once, on [`FAST_CONNECTIONS`] kept-alive
/// connections; requests held, each on a connection of its own.
const FAST: usize = 20;
const FAST_CONNECTIONS: usize = 4;
const HELD: usize = 10;
/// Requests and client connections in all: the quick and held ones and a
/// request without a route, on its own connection.
const REQUESTS: usize = FAST + HELD + 1;
const CONNECTIONS: usize = FAST_CONNECTIONS + HELD + 1;

const DURATION: &str = "ringway_http_request_duration_seconds";
const FIRST_BYTE: &str = "ringway_upstream_first_byte_seconds";
const CONNECT: &str = "ringway_upstream_connect_duration_seconds";
const LIVED: &str = "ringway_connection_duration_seconds";

/// The labels of the request duration series of route `app` to cluster
/// `app`, where every proxied request is timed.
const PROXIED: [(&str, &str); 3] = [("listener", "web"), ("route", "app"), ("cluster", "app")];
/// ... and of the listener's own series, where a request without a route
/// is timed.
const NO_ROUTE: [(&str, &str); 3] = [("listener", "web"), ("route", ""), ("cluster", "")];

#[test]
fn histograms_count_every_request_and_agree_with_the_origin_delays() {
    let origin = HttpOrigin::start(|req| {
        if req.path().starts_with("/app/slow/") {
            Reply::ok(b"slow").delay(SLOW)
        } else {
            Reply::ok(b"fast")
        }
    });
    let mut config = HttpConfig::new()
        .route(Route::new("app").path_prefix("/app/").cluster("app"))
        .cluster("app", &[origin.addr()]);
    // Two workers where there are two cores: every figure is a sum.
    config.worker_cores = up_to_two_cores();
    let _proxy = Ringway::start(&config.to_toml());
    admin::wait_ready(config.admin, WAIT);

    send(&config);

    // Every request is counted and every connection has ended: the
    // figures read below are final.
    let metrics = poll("every request and connection is counted", WAIT, || {
        let m = admin::metrics(config.admin);
        let upstream_connections = origin.connections().len() as f64;
        let got = [
            m.sum("ringway_worker_requests_total"),
            metric_sum(&m, &format!("{DURATION}_count"), &PROXIED),
            metric_sum(&m, &format!("{DURATION}_count"), &NO_ROUTE),
            metric_sum(&m, &format!("{FIRST_BYTE}_count"), &[("cluster", "app")]),
            metric_sum(&m, &format!("{CONNECT}_count"), &[("cluster", "app")]),
            metric_sum(&m, &format!("{LIVED}_count"), &[("listener", "web")]),
        ];
        let want = [
            REQUESTS as f64,
            (FAST + HELD) as f64,
            1.0,
            (FAST + HELD) as f64,
            upstream_connections,
            CONNECTIONS as f64,
        ];
        if got == want {
            Ok(m)
        } else {
            Err(format!(
                "(worker requests, proxied, no route, first bytes, connects, \
                 connections) are {got:?}, not {want:?}"
            ))
        }
    });

    check_request_durations(&metrics);
    check_upstream_timings(&metrics, origin.connections().len());
    check_connection_durations(&metrics);

    let stats = poll("/stats counts every request", WAIT, || {
        let stats = admin::stats(config.admin);
        match cluster_latency(&stats, "app") {
            Some(c) if c["requests"] == (FAST + HELD) as u64 => Ok(stats),
            other => Err(format!("{other:?}")),
        }
    });
    check_stats(&stats, origin.connections().len());
}

/// Sends the quick requests (on a few kept-alive connections), the held
/// ones (at once, each on its own connection) and the one without a
/// route; checks every answer.
fn send(config: &HttpConfig) {
    for c in 0..FAST_CONNECTIONS {
        let mut conn = HttpConn::open(config.listen);
        for i in 0..FAST / FAST_CONNECTIONS {
            let response = conn.exchange(&Req::get(&format!("/app/fast/{c}/{i}")));
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(response.body, b"fast");
        }
    }
    thread::scope(|scope| {
        for i in 0..HELD {
            scope.spawn(move || {
                let response =
                    HttpConn::open(config.listen).exchange(&Req::get(&format!("/app/slow/{i}")));
                assert_eq!(response.status, 200, "{response:?}");
                assert_eq!(response.body, b"slow");
            });
        }
    });
    let response = HttpConn::open(config.listen).exchange(&Req::get("/elsewhere"));
    assert_eq!(response.status, 404, "{response:?}");
}

/// The request duration histogram: each request once, at the level its
/// status is counted at; the held ones above 0.25 s.
fn check_request_durations(metrics: &Metrics) {
    let proxied = must_histogram(metrics, DURATION, &PROXIED);
    assert_eq!(proxied.count, (FAST + HELD) as f64, "{proxied:?}");
    assert_eq!(proxied.bucket(f64::INFINITY), (FAST + HELD) as f64);
    assert!(
        proxied.bucket(BELOW_SLOW) <= FAST as f64,
        "a request held {SLOW:?} counted at or below {BELOW_SLOW} s: {proxied:?}"
    );
    assert!(
        proxied.sum >= HELD as f64 * SLOW_SECONDS,
        "the held requests alone add {HELD} x {SLOW:?}: {proxied:?}"
    );

    let no_route = must_histogram(metrics, DURATION, &NO_ROUTE);
    assert_eq!(
        no_route.count, 1.0,
        "the request without a route: {no_route:?}"
    );
    let route_only = [("listener", "web"), ("route", "app"), ("cluster", "")];
    let at_route = must_histogram(metrics, DURATION, &route_only);
    assert_eq!(
        at_route.count, 0.0,
        "nothing is answered by the route itself"
    );

    // Every series is timed where its final statuses are counted: per
    // label set, the duration count is the responses of every class.
    let series = metrics.of(&format!("{DURATION}_count"));
    assert_eq!(series.len(), 3, "listener, route, route's cluster");
    let mut timed = 0.0;
    for sample in series {
        let labels: Vec<(&str, &str)> = ["listener", "route", "cluster"]
            .iter()
            .map(|k| (*k, sample.labels.get(k).unwrap_or("")))
            .collect();
        let count = metric_sum(metrics, &format!("{DURATION}_count"), &labels);
        let answered = metric_sum(metrics, "ringway_http_responses_total", &labels);
        assert_eq!(count, answered, "{labels:?}:\n{}", metrics.text);
        timed += count;
    }
    assert_eq!(timed, REQUESTS as f64, "each request timed once");
    assert_eq!(
        metrics.sum("ringway_worker_requests_total"),
        REQUESTS as f64,
        "the workers' requests add up to those sent"
    );
}

/// The cluster's connect and first-byte histograms: a first byte per
/// request, the held ones after 0.25 s; a connect per connection the
/// origin accepted.
fn check_upstream_timings(metrics: &Metrics, upstream_connections: usize) {
    let first_byte = must_histogram(metrics, FIRST_BYTE, &[("cluster", "app")]);
    assert_eq!(first_byte.count, (FAST + HELD) as f64, "{first_byte:?}");
    assert!(
        first_byte.bucket(BELOW_SLOW) <= FAST as f64,
        "an answer held {SLOW:?} had its first byte at or below {BELOW_SLOW} s: {first_byte:?}"
    );
    assert!(
        first_byte.sum >= HELD as f64 * SLOW_SECONDS,
        "{first_byte:?}"
    );

    let connect = must_histogram(metrics, CONNECT, &[("cluster", "app")]);
    assert!(upstream_connections >= 1);
    assert_eq!(
        connect.count, upstream_connections as f64,
        "one connect per connection the origin accepted: {connect:?}"
    );
}

/// The listener's connection durations: every client connection, those
/// of the held requests over 0.25 s.
fn check_connection_durations(metrics: &Metrics) {
    let lived = must_histogram(metrics, LIVED, &[("listener", "web")]);
    assert_eq!(lived.count, CONNECTIONS as f64, "{lived:?}");
    assert!(
        lived.bucket(BELOW_SLOW) <= (CONNECTIONS - HELD) as f64,
        "a connection that waited {SLOW:?} for its answer lived at most {BELOW_SLOW} s: {lived:?}"
    );
    assert!(lived.sum >= HELD as f64 * SLOW_SECONDS, "{lived:?}");
}

/// The `latency` section of `/stats` for `cluster`.
fn cluster_latency<'a>(stats: &'a Stats, cluster: &str) -> Option<&'a serde_json::Value> {
    stats.json["latency"]["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["cluster"] == cluster)
}

/// `/stats`: the cluster's requests, first bytes, connects and duration
/// quantiles, and the listener's closed connections.
fn check_stats(stats: &Stats, upstream_connections: usize) {
    let app = cluster_latency(stats, "app")
        .unwrap_or_else(|| panic!("no latency entry for cluster app: {}", stats.json));
    assert_eq!(app["requests"], (FAST + HELD) as u64, "{app}");
    assert_eq!(app["first_bytes"], (FAST + HELD) as u64, "{app}");
    assert_eq!(app["connects"], upstream_connections as u64, "{app}");
    let quantile = |q: &str| {
        app["duration_us"][q]
            .as_u64()
            .unwrap_or_else(|| panic!("no duration_us.{q}: {app}"))
    };
    let (p50, p99, p999) = (quantile("p50"), quantile("p99"), quantile("p999"));
    assert!(p50 <= p99 && p99 <= p999, "{app}");
    // A third of the requests were held, so the 99th percentile is one of
    // them. Quantiles are read from the fine histogram's cells, each taken
    // at its upper edge (`Quantiles::of` in control/src/agent/timings.rs),
    // so a quantile is never below the durations it stands for.
    assert!(
        p99 >= SLOW_US,
        "p99 {p99} µs: a third of the requests took at least {SLOW:?}: {app}"
    );

    let web = stats.json["latency"]["connections"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["listener"] == "web"))
        .unwrap_or_else(|| panic!("no connections entry for listener web: {}", stats.json));
    assert_eq!(web["closed"], CONNECTIONS as u64, "{web}");
}
