//! Timeouts of an HTTP listener and its clusters: an idle keep-alive client
//! connection, an idle pooled upstream connection, a connect that never
//! completes.

use std::time::Duration;

use ringway_kit::Ringway;
use ringway_tests::http_client::{wait_metric, HttpConn, Req};
use ringway_tests::http_config::{Cluster, HttpConfig, Route};
use ringway_tests::http_origin::{ConnEnd, HttpOrigin};
use ringway_tests::net::Blackhole;

/// "Within a few seconds", for a 1 s timeout.
const PROMPTLY: Duration = Duration::from_secs(10);

#[test]
fn an_idle_keep_alive_client_connection_is_closed() {
    let origin = HttpOrigin::ok("hi");
    let config = HttpConfig::forward_all(&[origin.addr()]).idle_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    let response = conn.exchange(&Req::get("/"));
    assert_eq!(response.status, 200);
    // Nothing more is sent: the proxy closes after a second of quiet.
    conn.assert_closed(PROMPTLY);
}

#[test]
fn a_busy_keep_alive_client_connection_stays_open_past_the_idle_timeout() {
    let origin = HttpOrigin::ok("hi");
    let config = HttpConfig::forward_all(&[origin.addr()]).idle_timeout("1s");
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    // Requests every 200 ms for 3 s (the scenario, not a wait): never a
    // second of quiet.
    for i in 0..15 {
        let response = conn.exchange(&Req::get(&format!("/tick/{i}")));
        assert_eq!(response.status, 200, "tick {i}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(origin.requests().iter().all(|r| r.conn == 0));
}

#[test]
fn an_idle_pooled_upstream_connection_is_closed_after_the_pool_idle_timeout() {
    let origin = HttpOrigin::ok("pooled");
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(Cluster::new("app", &[origin.addr()]).pool_idle_timeout("1s"));
    let _proxy = Ringway::start(&config.to_toml());

    let mut conn = HttpConn::open(config.listen);
    assert_eq!(conn.exchange(&Req::get("/")).status, 200);
    // The client connection stays open; only the pooled one times out.
    assert_eq!(origin.wait_ended(0, PROMPTLY), ConnEnd::PeerClosed);
    // A later request gets a fresh upstream connection.
    assert_eq!(conn.exchange(&Req::get("/again")).status, 200);
    assert_eq!(origin.requests()[1].conn, 1, "{}", origin.summary());
}

#[test]
fn a_connect_that_never_completes_is_502_upstream_refused() {
    let blackhole = Blackhole::new();
    let config = HttpConfig::new()
        .route(Route::new("all").cluster("app"))
        .cluster_with(Cluster::new("app", &[blackhole.addr()]).connect_timeout("200ms"));
    let _proxy = Ringway::start(&config.to_toml());

    let response = HttpConn::open(config.listen).exchange(&Req::get("/"));
    response.assert_ringway_error(502, "upstream_refused");
    wait_metric(
        config.admin,
        "ringway_http_errors_total",
        &[
            ("listener", "web"),
            ("route", "all"),
            ("cluster", "app"),
            ("reason", "upstream_refused"),
        ],
        1.0,
    );
}

/// On SIGTERM a keep-alive connection waiting for its next request is closed
/// at once, and one whose request is under way gets its answer, marked
/// `connection: close`, then the close: the drain ends with nothing left to
/// cut, long before its timeout.
#[test]
fn a_drain_closes_idle_keep_alive_connections_and_answers_busy_ones_first() {
    use ringway_tests::http_origin::Reply;
    let origin = HttpOrigin::start(|r| {
        if r.path() == "/slow" {
            Reply::ok(b"slow").delay(Duration::from_secs(1))
        } else {
            Reply::ok(b"quick")
        }
    });
    // The drain timeout is far longer than anything here should take.
    let config = HttpConfig::forward_all(&[origin.addr()]);
    let proxy = Ringway::start(&config.to_toml());

    let mut idle = HttpConn::open(config.listen);
    assert_eq!(idle.exchange(&Req::get("/")).status, 200);
    let mut busy = HttpConn::open(config.listen);
    busy.set_timeouts(PROMPTLY);
    busy.send_raw(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    origin.wait_requests(2, PROMPTLY);

    proxy.terminate();
    let answer = busy.read();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"slow");
    assert_eq!(answer.header("connection"), Some("close"));
    busy.assert_closed(PROMPTLY);
    idle.assert_closed(PROMPTLY);

    let exit = proxy.wait(PROMPTLY);
    exit.assert_clean();
    assert_eq!(exit.total("cut_at_drain"), 0, "{}", exit.stderr);
}
